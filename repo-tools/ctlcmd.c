/*
 * ctlcmd.c: portholectl's command table.
 *
 * To add a command: one line in ctl_commands, and a prepare function only
 * if an operand must be resolved on the client side.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcmd.h"
#include "usage.h"

struct ctl_command {
	const char	*words;		/* the command, space separated */
	int		 min_operands;
	int		 max_operands;
	const char	*operands;	/* for the help text */
	const char	*summary;
	/* Rewrites req->argv[i], the command's first operand, and on. */
	enum cx_exit	(*prepare)(struct ctl_request *req, size_t i);
};

static enum cx_exit prepare_abs_path(struct ctl_request *, size_t);

static const struct ctl_command ctl_commands[] = {
	{ "status", 0, 0, "",
	    "Version, uptime, listeners, counters, repository.", NULL },
	{ "repo set", 1, 1, "PATH",
	    "Serve the directory PATH, now and after restarts.",
	    prepare_abs_path },
	{ "repo get", 0, 0, "", "Print the repository path.", NULL },
	{ "repo ls", 0, 1, "[PATH]",
	    "List the repository, or a directory in it.", NULL },
	{ "vm ls", 0, 0, "",
	    "libvirt domains: state, vsock CID, porthole access.", NULL },
	{ "vm enable", 1, 1, "DOMAIN",
	    "Add a vsock device to DOMAIN (from its next boot).", NULL },
	{ "vm disable", 1, 1, "DOMAIN",
	    "Remove DOMAIN's vsock device (from its next boot).", NULL },
	{ "acl ls", 0, 0, "", "The access rules in order, and the default.",
	    NULL },
	{ "acl add", 3, 5, "[--at N] allow|deny MATCH PREFIX",
	    "Add a rule; MATCH is a domain, UUID, cid:N or *.", NULL },
	{ "acl rm", 1, 1, "N", "Remove access rule N.", NULL },
	{ "audit", 0, 6, "[--since T] [--domain D] [--limit N]",
	    "The newest audited requests.", NULL },
};

#define NCOMMANDS	(sizeof(ctl_commands) / sizeof(ctl_commands[0]))

/* Makes the operand absolute here: the daemon has another cwd. */
static enum cx_exit
prepare_abs_path(struct ctl_request *req, size_t i)
{
	char *abs;

	if ((abs = realpath(req->argv[i], NULL)) == NULL) {
		fprintf(stderr, "portholectl: %s: %s\n", req->argv[i],
		    strerror(errno));
		return CX_ERROR;
	}
	req->owned[i] = abs;
	req->argv[i] = abs;
	return CX_OK;
}

/*
 * Compares the space separated words with the first arguments. Returns the
 * number of words if all of them match, with *all_args set when the
 * arguments ran out first (a prefix of the command, like "repo"); 0 if a
 * word differs.
 */
static size_t
match_words(const char *words, int argc, char *const *argv, bool *all_args)
{
	const char *w = words;
	size_t n = 0, len;

	*all_args = false;
	while (*w != '\0') {
		len = strcspn(w, " ");
		if ((int)n == argc) {
			*all_args = true;
			return 0;
		}
		if (strlen(argv[n]) != len || strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		w += strspn(w, " ");
	}
	return n;
}

/* Prints "portholectl: ARGS: missing subcommand (a, b)" for "repo". */
static enum cx_exit
missing_subcommand(int argc, char *const *argv)
{
	const char *sep = "", *w;
	bool prefix;
	size_t i;
	int j;

	fputs("portholectl:", stderr);
	for (j = 0; j < argc; j++)
		fprintf(stderr, " %s", argv[j]);
	fputs(": missing subcommand (", stderr);
	for (i = 0; i < NCOMMANDS; i++) {
		match_words(ctl_commands[i].words, argc, argv, &prefix);
		if (prefix) {
			/* The word after the ones typed. */
			w = ctl_commands[i].words;
			for (j = 0; j < argc; j++)
				w += strcspn(w, " ") + 1;
			fprintf(stderr, "%s%.*s", sep, (int)strcspn(w, " "), w);
			sep = ", ";
		}
	}
	fputs(")\nTry 'portholectl --help'.\n", stderr);
	return CX_USAGE;
}

/* The known command the arguments start with, or NULL. */
static const struct ctl_command *
find_command(int argc, char *const *argv, size_t *nwords, bool *prefix)
{
	const struct ctl_command *best = NULL;
	bool is_prefix;
	size_t i, n;

	*nwords = 0;
	*prefix = false;
	for (i = 0; i < NCOMMANDS; i++) {
		n = match_words(ctl_commands[i].words, argc, argv, &is_prefix);
		*prefix = *prefix || is_prefix;
		if (n > *nwords) {
			*nwords = n;
			best = &ctl_commands[i];
		}
	}
	return best;
}

/* Checks a known command's operand count. */
static enum cx_exit
check_operands(const struct ctl_command *cmd, int noperands)
{
	if (noperands >= cmd->min_operands && noperands <= cmd->max_operands)
		return CX_OK;
	fprintf(stderr, "portholectl: %s: %s\nusage: portholectl %s%s%s\n",
	    cmd->words, noperands < cmd->min_operands ?
	    "missing argument" : "too many arguments", cmd->words,
	    cmd->operands[0] != '\0' ? " " : "", cmd->operands);
	return CX_USAGE;
}

enum cx_exit
ctlcmd_prepare(int argc, char *const *argv, struct ctl_request *req)
{
	const struct ctl_command *cmd;
	size_t nwords, i;
	bool prefix;
	enum cx_exit ex;

	memset(req, 0, sizeof(*req));
	if (argc < 1)
		return (enum cx_exit)usage_error("portholectl", NULL,
		    "missing COMMAND", NULL);
	if ((size_t)argc > PH_MAX_CTL_ARGS) {
		fprintf(stderr, "portholectl: more than %d arguments\n",
		    PH_MAX_CTL_ARGS);
		return CX_USAGE;
	}
	for (i = 0; i < (size_t)argc; i++) {
		if (strlen(argv[i]) > PH_MAX_PATH) {
			fprintf(stderr, "portholectl: argument %zu is longer "
			    "than %d bytes\n", i + 1, PH_MAX_PATH);
			return CX_USAGE;
		}
		req->argv[i] = argv[i];
	}
	req->argc = (size_t)argc;
	cmd = find_command(argc, argv, &nwords, &prefix);
	if (cmd == NULL) {
		/* "repo" alone is ours to catch; anything else the daemon's. */
		if (prefix)
			return missing_subcommand(argc, argv);
		return CX_OK;
	}
	if ((ex = check_operands(cmd, argc - (int)nwords)) != CX_OK)
		return ex;
	if (cmd->prepare != NULL && argc > (int)nwords)
		return cmd->prepare(req, nwords);
	return CX_OK;
}

void
ctl_request_free(struct ctl_request *req)
{
	size_t i;

	if (req == NULL)
		return;
	for (i = 0; i < PH_MAX_CTL_ARGS; i++) {
		free(req->owned[i]);
		req->owned[i] = NULL;
	}
}

void
ctlcmd_print_help(FILE *f)
{
	char synopsis[64];
	size_t i;

	for (i = 0; i < NCOMMANDS; i++) {
		snprintf(synopsis, sizeof(synopsis), "%s%s%s",
		    ctl_commands[i].words,
		    ctl_commands[i].operands[0] != '\0' ? " " : "",
		    ctl_commands[i].operands);
		/* A long synopsis gets its summary on a line of its own. */
		if (strlen(synopsis) > 16)
			fprintf(f, "  %s\n  %-16s %s\n", synopsis, "",
			    ctl_commands[i].summary);
		else
			fprintf(f, "  %-16s %s\n", synopsis,
			    ctl_commands[i].summary);
	}
}
