/*
 * store_impl.h: the store's state. Only store.c includes it; the control
 * commands (ctl_cache.c) go through the functions in store.h.
 */
#ifndef HOSTD_STORE_IMPL_H
#define HOSTD_STORE_IMPL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <uv.h>

#define STORE_CHECKED_N	8	/* blobs remembered as checked */

struct blob_check;
struct cache;
struct digest;
struct fill;
struct log;
struct pack_job;
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
	LIST_HEAD(, fill) fills;	/* in progress: single flight */
	size_t		 nfills;
	LIST_HEAD(, store_req) reqs;
	LIST_HEAD(, blob_check) checks;	/* blobs a client reported, being
					   re-hashed: single flight */
	/* Blobs that passed such a check lately: not re-read again soon. */
	struct {
		uint8_t	 sha256[32];
		uint64_t at_ms;
	}		 checked[STORE_CHECKED_N];
	size_t		 checked_next;
	TAILQ_HEAD(, pack_job) packs;	/* compression at rest, in order */
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

#endif /* HOSTD_STORE_IMPL_H */
