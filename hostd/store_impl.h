/*
 * store_impl.h: the store's state, shared by store.c (requests) and
 * store_fill.c (fills). Nothing else includes it; the control commands
 * (ctl_cache.c) go through the functions in store.h.
 */
#ifndef HOSTD_STORE_IMPL_H
#define HOSTD_STORE_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#define STORE_CHECKED_N	8	/* blobs remembered as checked */
/* A disk with less free is full (else only the file at hand is too big). */
#define STORE_FULL_BELOW	(1024u * 1024)

struct cache;
struct cache_blob;
struct digest;
struct log;
struct stat;
struct store_check;
struct store_fill;
struct store_pack_job;
struct store_req;
struct upstream;

/* A file system the store writes to, watched for room. */
struct store_disk {
	int		 fd;		/* the directory, for fstatvfs(); or -1 */
	const char	*what;		/* "cache disk", "state directory" */
	char		*path;
	uint64_t	 refused;	/* bytes free when a write last found no
					   room; UINT64_MAX: none since the last
					   blob stored */
	bool		 full;		/* the log said so */
};

struct store {
	uv_loop_t	*loop;
	struct log	*log;
	struct digest	*digest;
	struct cache	*cache;
	struct upstream	*upstream;
	LIST_HEAD(, store_fill) fills;	/* in progress: single flight */
	size_t		 nfills;
	LIST_HEAD(, store_req) reqs;
	LIST_HEAD(, store_check) checks;	/* blobs a client reported, being
					   re-hashed: single flight */
	/* Blobs that passed such a check lately: not re-read again soon. */
	struct {
		uint8_t	 sha256[32];
		uint64_t at_ms;
	}		 checked[STORE_CHECKED_N];
	size_t		 checked_next;
	TAILQ_HEAD(, store_pack_job) packs;	/* compression at rest, in order */
	bool		 packing;	/* the first job is on the pool */
	uv_timer_t	 sync_timer;
	bool		 timer_open;
	bool		 stopping;
	struct store_disk cache_disk;	/* blobs */
	struct store_disk state_disk;	/* the catalog database */
	uint64_t	 unkept;	/* bytes of relay fills held in memory */
	/* Counters for `cache stats`. */
	uint64_t	 repo_reads;	/* reads of repository files started */
	uint64_t	 upstream_fetches;
	uint64_t	 fills_done;
	uint64_t	 fill_failures;
	uint64_t	 fill_joins;	/* requests that joined a running fill */
	uint64_t	 cat_misses;	/* files not known unchanged */
	uint64_t	 uncached;	/* GETs served around the cache */
};

/* ---- store.c, for store_fill.c ---------------------------------------- */

/* Bytes free on d's file system for us, or UINT64_MAX if it cannot tell. */
uint64_t store_disk_free(const struct store_disk *d);

/* True if need bytes may fit on d (logs when the disk is full). */
bool	store_disk_room(struct store *s, struct store_disk *d, uint64_t need);

/* A write to d failed for lack of room. */
void	store_disk_refused(struct store *s, struct store_disk *d);

/* A blob was stored: both disks took their writes. */
void	store_disk_ok(struct store *s);

/* Queues blob b for compression at rest, when it is worth it. */
void	store_pack_schedule(struct store *s, struct cache_blob *b);

/* ---- store_fill.c, for store.c ------------------------------------------ */

/*
 * Starts copying the open repository file fd (fstat st) into the cache on
 * the pool, or joins the fill of that file that runs. Takes a duplicate of
 * fd. Returns the fill with one reference for the caller, or NULL with
 * *err (-EFBIG, -ENOSPC: no room to cache it; else an error).
 */
struct store_fill *store_fill_start_local(struct store *s, const char *rel,
	    int fd, const struct stat *st, const uint8_t *expect, int *err);

/*
 * Fetches rel (digest sha256, size bytes) from upstream into the cache, or
 * into memory when there is no room, or joins the fill that runs. Returns
 * the fill with one reference for the caller, or NULL with *err.
 */
struct store_fill *store_fill_start_upstream(struct store *s,
	    const char *rel, uint64_t size, const uint8_t *sha256, int *err);

/* Passes a client's report of a bad copy on to the parent of a relay
 * fill (nothing for a fill from the repository). */
void	store_fill_reverify(struct store_fill *f);

/* Asks every fill from the repository to stop; relay fills end through
 * their upstream callbacks when the upstream client goes. */
void	store_fill_abort_all(struct store *s);

#endif /* HOSTD_STORE_IMPL_H */
