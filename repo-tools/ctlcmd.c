/*
 * ctlcmd.c: a command line checked against the command table, as a CTL
 * request.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctlcmd.h"
#include "usage.h"

/* Makes the operand absolute here: the daemon has another cwd. */
static enum cx_exit
ctlcmd_abs_path(struct ctl_request *req, size_t i)
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

/* Says what is wrong with a command line the table does not accept. */
static enum cx_exit
ctlcmd_refuse(enum ctltab_match how, const struct ctltab_cmd *cmd,
    size_t argc, char *const *argv, size_t nwords)
{
	char list[1024], syn[128];

	switch (how) {
	case CTLTAB_ARITY:
		ctltab_synopsis(cmd, syn, sizeof(syn));
		fprintf(stderr, "portholectl: %s: %s\nusage: portholectl %s\n",
		    cmd->words, argc - nwords < (size_t)cmd->min_operands ?
		    "missing argument" : "too many arguments", syn);
		break;
	case CTLTAB_PARTIAL:
		ctltab_list(argv[0], list, sizeof(list));
		fprintf(stderr, "portholectl: %s: missing subcommand (%s)\n"
		    "Try 'portholectl --help'.\n", argv[0], list);
		break;
	default:
		ctltab_list(NULL, list, sizeof(list));
		fprintf(stderr, "portholectl: unknown command '%s%s%s'\n"
		    "commands: %s\nTry 'portholectl --help'.\n", argv[0],
		    argc > 1 ? " " : "", argc > 1 ? argv[1] : "", list);
		break;
	}
	return CX_USAGE;
}

enum cx_exit
ctlcmd_prepare(int argc, char *const *argv, struct ctl_request *req)
{
	const struct ctltab_cmd *cmd;
	enum ctltab_match how;
	size_t nwords, i;

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
	how = ctltab_lookup(req->argc, req->argv, &cmd, &nwords);
	if (how != CTLTAB_FOUND)
		return ctlcmd_refuse(how, cmd, req->argc, argv, nwords);
	req->cmd = cmd;
	if ((cmd->flags & CTLTAB_ABS_PATH) && req->argc > nwords)
		return ctlcmd_abs_path(req, nwords);
	return CX_OK;
}

void
ctlcmd_request_free(struct ctl_request *req)
{
	size_t i;

	if (req == NULL)
		return;
	for (i = 0; i < PH_MAX_CTL_ARGS; i++) {
		free(req->owned[i]);
		req->owned[i] = NULL;
	}
}
