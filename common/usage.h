/*
 * usage.h: command line usage errors, worded the same way by the porthole
 * and portholectl clients.
 */
#ifndef PORTHOLE_USAGE_H
#define PORTHOLE_USAGE_H

#define USAGE_EXIT	2	/* both programs' exit code for usage errors */

/*
 * Prints "PROG: CMD: MSG 'ARG'" (CMD and ARG may be NULL) and a pointer
 * to PROG --help on stderr. Returns USAGE_EXIT.
 */
int	usage_error(const char *prog, const char *cmd, const char *msg,
	    const char *arg);

/*
 * Reports the option getopt_long() just refused: ch is what it returned,
 * '?' (unknown) or ':' (missing argument; the optstring must start with
 * ':' and opterr be 0). Returns USAGE_EXIT.
 */
int	usage_bad_option(const char *prog, const char *cmd, int ch,
	    char *const *argv);

#endif /* PORTHOLE_USAGE_H */
