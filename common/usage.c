/*
 * usage.c: command line usage errors shared by porthole and portholectl.
 */
#include <getopt.h>
#include <stdio.h>

#include "usage.h"

int
usage_error(const char *prog, const char *cmd, const char *msg,
    const char *arg)
{
	fprintf(stderr, "%s: %s%s%s", prog, cmd != NULL ? cmd : "",
	    cmd != NULL ? ": " : "", msg);
	if (arg != NULL)
		fprintf(stderr, " '%s'", arg);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return USAGE_EXIT;
}

int
usage_bad_option(const char *prog, const char *cmd, int ch,
    char *const *argv)
{
	char shortopt[3] = { '-', (char)optopt, '\0' };
	/* getopt_long sets optopt for short options only. */
	const char *opt = optopt != 0 && optopt < 256 ? shortopt :
	    argv[optind - 1];

	if (ch == ':')
		return usage_error(prog, cmd, "missing argument to option",
		    opt);
	return usage_error(prog, cmd, "unknown option", opt);
}
