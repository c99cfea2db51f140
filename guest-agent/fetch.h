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
	unsigned int	 wait_s;	/* --wait */
	bool		 quiet;		/* -q: no progress, no verified line */
	bool		 resume;	/* --resume: continue LOCAL.part */
	bool		 verify;	/* cleared by --no-verify */
	bool		 json;		/* --json: one object per file */
	bool		 zstd;		/* cleared by --no-zstd */
	bool		 fresh;		/* --fresh: refuse a copy the host
					   could not revalidate (exit 6) */
};

/*
 * Downloads nremotes repository paths over one connection, one after the
 * other. local is NULL (basenames in the current directory), "-" (standard
 * output, one file only), a directory (existing, or written with a trailing
 * '/'), or the file name for a single remote. A failed file does not stop
 * the others; the result is the first failure's exit code, or PX_OK, which
 * means every file is in place and durable, with its name.
 */
enum px_exit fetch_run(const struct fetch_opts *o, char *const *remotes,
	    size_t nremotes, const char *local);

/*
 * A download session for other commands (sync): o (which must outlive it)
 * sets the options, usually quiet with verify and zstd on. Nothing is
 * connected yet. Returns PX_OK with *out set, or prints why not and returns
 * an exit code with *out NULL. Free with fetch_free().
 */
struct fetcher;
enum px_exit fetch_new(const struct fetch_opts *o, struct fetcher **out);

/*
 * The session's connection, for requests of the caller's own (STAT). Owned
 * by f; it may be broken or not connected yet, which client_request()
 * mends.
 */
struct client *fetch_client(struct fetcher *f);

/*
 * Downloads remote into the file local exactly as `get REMOTE LOCAL` does
 * (LOCAL.part, verified, fsynced, renamed into place), over f's
 * connection, which is (re)connected if needed, but gives the file mode
 * (& 0777) instead of META's. On PX_OK digest holds the file's SHA-256 and
 * the file is in place with its data durable; its directory is fsynced by
 * fetch_finish(). Otherwise the reason has been printed and LOCAL is
 * untouched.
 */
enum px_exit fetch_get(struct fetcher *f, const char *remote,
	    const char *local, uint32_t mode, uint8_t digest[PH_SHA256_LEN]);

/*
 * Ends a session's work: fsyncs, once each, the directories files were
 * renamed into, so that their names are durable too. Returns PX_OK, or
 * prints the directory that failed and returns PX_LOCAL_IO.
 */
enum px_exit fetch_finish(struct fetcher *f);

/*
 * Closes the connection and frees f, after fetch_finish() if the caller
 * did not call it. Accepts NULL.
 */
void	fetch_free(struct fetcher *f);

#endif /* PORTHOLE_FETCH_H */
