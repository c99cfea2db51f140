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

struct cache;
struct digest;
struct fill;
struct log;
struct pack_job;
struct store_req;
struct upstream;

struct store {
	uv_loop_t	*loop;
	struct log	*log;
	struct digest	*digest;
	struct cache	*cache;
	struct upstream	*upstream;
	LIST_HEAD(, fill) fills;	/* in progress: single flight */
	size_t		 nfills;
	LIST_HEAD(, store_req) reqs;
	TAILQ_HEAD(, pack_job) packs;	/* compression at rest, in order */
	bool		 packing;	/* the first job is on the pool */
	uv_timer_t	 sync_timer;
	bool		 timer_open;
	bool		 stopping;
	uint64_t	 full_until_ms;	/* disk full: no fills until then */
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
