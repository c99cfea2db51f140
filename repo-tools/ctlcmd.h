/*
 * ctlcmd.h: the CTL request portholectl builds from its command line.
 *
 * The commands are the daemon's table (common/ctltab.h): portholectl
 * checks the words and operand counts against it before connecting,
 * prepares operands that must be resolved on this side (a relative PATH),
 * and knows from the entry how to print the reply.
 */
#ifndef PORTHOLE_CTLCMD_H
#define PORTHOLE_CTLCMD_H

#include "ctltab.h"
#include "proto.h"

/* portholectl exit codes. */
enum cx_exit {
	CX_OK		= 0,
	CX_ERROR	= 1,	/* the daemon, or a local check, said no */
	CX_USAGE	= 2,
	CX_UNREACHABLE	= 3,	/* cannot connect, or no reply */
};

/* The arguments of one CTL frame, and the command they name. */
struct ctl_request {
	const struct ctltab_cmd *cmd;
	size_t		 argc;
	const char	*argv[PH_MAX_CTL_ARGS];
	char		*owned[PH_MAX_CTL_ARGS];	/* argv[i] made here */
};

/*
 * Builds req from the command words and operands on the command line,
 * checking them against the command table and preparing the operands.
 * Prints a message and returns CX_USAGE (an unknown command, a wrong
 * operand count) or CX_ERROR (a PATH that does not resolve) on failure.
 * req must be released with ctlcmd_request_free() either way.
 */
enum cx_exit ctlcmd_prepare(int argc, char *const *argv,
	    struct ctl_request *req);

/* Frees the strings req owns. Accepts NULL. */
void	ctlcmd_request_free(struct ctl_request *req);

#endif /* PORTHOLE_CTLCMD_H */
