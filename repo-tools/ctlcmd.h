/*
 * ctlcmd.h: portholectl's command table and the CTL request it builds.
 *
 * The daemon implements the commands; portholectl knows only enough about
 * each to catch plain usage mistakes early (a missing PATH) and to prepare
 * arguments that must be resolved on this side (a relative PATH). A command
 * it does not know is passed through unchanged, and the daemon answers
 * USAGE if it does not know it either.
 */
#ifndef PORTHOLE_CTLCMD_H
#define PORTHOLE_CTLCMD_H

#include <stdio.h>

#include "proto.h"

/* portholectl exit codes. */
enum cx_exit {
	CX_OK		= 0,
	CX_ERROR	= 1,	/* the daemon, or a local check, said no */
	CX_USAGE	= 2,
	CX_UNREACHABLE	= 3,	/* cannot connect, or no reply */
};

/* The arguments of one CTL frame. */
struct ctl_request {
	size_t		 argc;
	const char	*argv[PH_MAX_CTL_ARGS];
	char		*owned[PH_MAX_CTL_ARGS];	/* argv[i] made here */
};

/*
 * Builds req from the command words and operands on the command line,
 * checking the known commands' operand counts and preparing their
 * operands. Prints a message and returns CX_USAGE or CX_ERROR on failure.
 * req must be released with ctl_request_free() either way.
 */
enum cx_exit ctlcmd_prepare(int argc, char *const *argv,
	    struct ctl_request *req);

/* Frees the strings req owns. Accepts NULL. */
void	ctl_request_free(struct ctl_request *req);

/* Prints the known commands, one per line, for --help. */
void	ctlcmd_print_help(FILE *f);

#endif /* PORTHOLE_CTLCMD_H */
