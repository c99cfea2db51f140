/*
 * query.h: `porthole stat`, `porthole ls` and `porthole ping`.
 */
#ifndef PORTHOLE_QUERY_H
#define PORTHOLE_QUERY_H

#include <stdbool.h>

#include "client.h"

struct query_opts {
	const char	*endpoint;
	unsigned int	 wait_s;	/* --wait */
	bool		 json;		/* --json */
	bool		 long_format;	/* ls -l */
};

/* Prints a repository path's metadata (and digest, for a file). */
enum px_exit query_stat(const struct query_opts *o, const char *remote);

/* Lists a repository directory, following LIST cursors to the end. */
enum px_exit query_ls(const struct query_opts *o, const char *remote);

/* Prints the round trip time, negotiated protocol and server agent. */
enum px_exit query_ping(const struct query_opts *o);

#endif /* PORTHOLE_QUERY_H */
