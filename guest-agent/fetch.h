/*
 * fetch.h: `porthole get`, downloading verified files from portholed.
 */
#ifndef PORTHOLE_FETCH_H
#define PORTHOLE_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"

struct fetch_opts {
	const char	*endpoint;
	bool		 quiet;		/* -q: no progress, no verified line */
	bool		 resume;	/* --resume: continue LOCAL.part */
	bool		 verify;	/* cleared by --no-verify */
	bool		 json;		/* --json: one object per file */
	bool		 zstd;		/* cleared by --no-zstd */
};

/*
 * Downloads nremotes repository paths over one connection, one after the
 * other. local is NULL (basenames in the current directory), "-" (standard
 * output, one file only), a directory (existing, or written with a trailing
 * '/'), or the file name for a single remote. A failed file does not stop
 * the others; the result is the first failure's exit code, or PX_OK.
 */
enum px_exit fetch_run(const struct fetch_opts *o, char *const *remotes,
	    size_t nremotes, const char *local);

#endif /* PORTHOLE_FETCH_H */
