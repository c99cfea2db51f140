/*
 * store.h: where the bytes of a GET or the answer to a STAT come from.
 *
 * The store sits between connections and the content: the repository
 * directory or, in relay mode, the parent daemon (upstream.h), with the
 * content cache (cache/cache.h) in front of either. It resolves a request
 * to metadata, a digest when known, and a source to stream from:
 *   - a cached blob, pinned while it is read;
 *   - a fill: a file being copied into the cache right now, read as its
 *     bytes land (cut-through); one fill per file however many requests
 *     want it (single flight), so the repository is read once;
 *   - the repository file itself (no cache, or a file larger than the
 *     cache), hashed first.
 * A fill from the repository runs on the libuv thread pool; a fill from
 * upstream runs on the loop as frames arrive. Both hash what they write,
 * and a fill whose file changed underneath, or whose bytes do not match
 * the expected digest, is thrown away and its readers get an error.
 *
 * No room: a fill starts only when the cache disk and the state directory
 * have room for it (statvfs, and more free than when a write there last
 * failed), checked per fill, so caching resumes with the first request
 * after space is freed. Otherwise a local GET goes to the repository file
 * and a relay fill is held in memory and not kept (bounded; also when the
 * disk fills in the middle of it). A fill whose blob cannot be indexed
 * still ends well for its readers. The log says once when a disk has no
 * room and once when it has again.
 *
 * All calls on the loop thread.
 */
#ifndef HOSTD_STORE_H
#define HOSTD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "proto.h"

struct cache;
struct cache_blob;
struct digest;
struct store_fill;
struct log;
struct repo;
struct store;
struct store_req;
struct upstream;

struct store_config {
	const char	*cache_dir;	/* blobs */
	const char	*state_dir;	/* the catalog database goes here */
	uint64_t	 cache_size;	/* 0: no cache */
	const char	*upstream;	/* parent endpoint, or NULL */
};

/*
 * Creates the store: opens the cache (reconciling it with its files) and
 * starts the upstream connection. Returns 0 and sets *out, or a negative
 * errno with a one-line reason in err.
 */
int	store_new(uv_loop_t *loop, struct log *log, struct digest *digest,
	    const struct store_config *cfg, struct store **out, char *err,
	    size_t errlen);

/* Ends fills (their readers get SHUTDOWN), cancels upstream requests and
 * closes the store's handles; the loop then runs dry. Accepts NULL. */
void	store_shutdown(struct store *s);

/* Frees the store after store_shutdown() and uv_run() returned. */
void	store_free(struct store *s);

/* The cache, or NULL without one; the upstream client, or NULL. */
struct cache *store_cache(struct store *s);
struct upstream *store_upstream(struct store *s);

/* ---- Resolving requests --------------------------------------------------- */

/*
 * The source of a GET, with what is known of its bytes: exactly one of fd,
 * blob and fill is set while it holds one (none for a STAT, or once its
 * source moved on). Whoever holds it owns that source, from the store's
 * result to the connection to the transfer: store_src_move() hands it on,
 * store_src_release() lets it go.
 */
struct store_src {
	int		 fd;		/* a repository file, or -1 */
	struct cache_blob *blob;	/* a pinned cached blob, or NULL */
	struct store_fill *fill;	/* a reference to a fill, or NULL */
	struct stat	 st;		/* for META: size, mtime, mode; fd's
					   fstat as the digest saw it */
	bool		 has_digest;
	uint8_t		 sha256[PH_SHA256_LEN];
};

/* Makes src empty: no source (fd -1), no metadata, no digest. */
void	store_src_init(struct store_src *src);

/*
 * Hands src's source over to dst, releasing what dst held first: src keeps
 * its metadata and digest, but no longer holds fd, blob or fill.
 */
void	store_src_move(struct store_src *dst, struct store_src *src);

/* Releases src's source (closes fd, unpins blob, drops the fill
 * reference); the metadata stays. Accepts NULL. */
void	store_src_release(struct store_src *src);

/* The outcome of store_get() or store_stat(). */
struct store_res {
	enum ph_err	 code;		/* PH_OK, or the error to answer */
	int		 fs_err;	/* with code PH_ERR_IO: a negative errno
					   from the file system, mapped by
					   the caller; 0 if msg says it */
	char		 msg[256];
	/* Metadata and digest; for a GET whose code is PH_OK also its
	 * source, which the callback may take with store_src_move(). */
	struct store_src src;
	bool		 stale;		/* a relay's cached copy that its parent
					   could not confirm (it is down, or
					   said stale itself) */
	/* Where the path leads in the repository (real path, "." for the
	 * root), when known: set by a lookup that got that far, even if it
	 * then failed; "" when not known (a relay whose parent does not
	 * report it, or no lookup yet). */
	char		 real[PH_MAX_PATH + 1];
};

/* Called once with the result; res is the caller's until it returns.
 * A source left in res->src is released after the callback. */
typedef void store_cb(void *arg, struct store_res *res);

/*
 * The access check on what a GET or STAT really names, asked once the
 * lookup knows (or cannot learn) its real path and before any content is
 * read or fetched: real is that path, or NULL when it cannot be known
 * (relay mode, a parent that does not report it). Returns true to go on;
 * false with a message in msg ends the request with PH_ERR_FORBIDDEN.
 */
typedef bool store_gate(void *arg, const char *real, char *msg,
    size_t cap);

/*
 * Resolves GET rel (normalised) in repo (NULL in relay mode or without a
 * repository), asking gate (if not NULL) before anything is read. cb may
 * run before this returns; then NULL is returned. Otherwise the returned
 * handle may be given to store_cancel() until cb runs. Returns NULL also
 * when cb ran with an error.
 *
 * reverify: the client says its last copy of rel from us failed its
 * check. A cached blob is then re-hashed on the pool before it is used;
 * one that fails is removed (logged) and the GET is served as a miss, and
 * a relay passes the flag to its parent. The claim alone removes nothing.
 */
struct store_req *store_get(struct store *s, struct repo *repo,
	    const char *rel, bool reverify, store_gate *gate, store_cb *cb,
	    void *arg);

/* Resolves STAT rel: metadata, with the digest of a regular file. */
struct store_req *store_stat(struct store *s, struct repo *repo,
	    const char *rel, store_gate *gate, store_cb *cb, void *arg);

/*
 * LIST through upstream (relay mode): the parent's page, or an error.
 * paths says where the directory and the page's symlinks lead, as the
 * parent reported them (upstream.h); its known is false when the parent
 * does not report them. paths is NULL when the parent was not reached.
 */
struct upstream_paths;
typedef void store_list_cb(void *arg, enum ph_err code, const char *msg,
    const struct ph_list_reply *page, const struct upstream_paths *paths);
struct store_req *store_list(struct store *s, const char *rel,
	    uint64_t cursor, store_list_cb *cb, void *arg);

/* Withdraws a request: its callback will not run. Accepts NULL. */
void	store_cancel(struct store_req *r);

/* ---- Administration, for the control socket ----------------------------- */

/* Repository reads started (fills, uncached transfers, hashing passes). */
uint64_t store_repo_reads(const struct store *s);

/* What `cache stats` shows of the store's own work. */
struct store_counters {
	uint64_t	 repo_reads;	/* reads of repository files started */
	uint64_t	 upstream_fetches;
	uint64_t	 fills_done;
	uint64_t	 fill_failures;
	uint64_t	 fill_joins;	/* requests that joined a fill */
	uint64_t	 uncached;	/* GETs served around the cache */
	size_t		 fills_in_progress;
};

/* Fills out with the counters since the store was created. */
void	store_counters(const struct store *s, struct store_counters *out);

/*
 * The catalog, for `repo scan` and `repo verify` (cache_db_cat_matches() tells
 * whether an entry still describes a file): record that the repository
 * file st at rel (no leading "/") has the digest sha256 (a failure only
 * costs a re-hash later); forget rel (0, or a negative errno: -ENOENT if it
 * was not there).
 */
void	store_catalog_record(struct store *s, const char *rel,
	    const struct stat *st, const uint8_t sha256[PH_SHA256_LEN]);
int	store_catalog_forget(struct store *s, const char *rel);

#endif /* HOSTD_STORE_H */
