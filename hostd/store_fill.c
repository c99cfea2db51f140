/*
 * store_fill.c: copying a file into the cache while it is read, from the
 * repository on the pool or from the parent on the loop; one fill per file
 * (single flight), its readers woken as its bytes land.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "repo.h"
#include "store.h"
#include "store_fill.h"
#include "store_impl.h"
#include "upstream.h"

/* Room a blob file needs beyond its size: blocks, directory entries. */
#define STORE_FILL_DISK_SLACK	(64u * 1024)
/* Free space the catalog database wants in the state directory. */
#define STORE_FILL_DB_ROOM	(1024u * 1024)
/* Relay fills that cannot be stored stream from memory, this much at once
 * at most (the parent sends as fast as it can, whatever the readers do). */
#define STORE_FILL_UNKEPT_MAX	((uint64_t)512 * 1024 * 1024)
/* Readers of a relay fill are woken every this many new bytes. */
#define STORE_FILL_NOTIFY_STEP	(256u * 1024)

enum store_fill_state {
	STORE_FILL_RUNNING,
	STORE_FILL_DONE,
	STORE_FILL_FAILED,
};

struct store_fill_watcher {
	void		(*cb)(void *);
	void		*arg;
};

struct store_fill {
	LIST_ENTRY(store_fill) link;		/* in the single-flight table */
	bool		 listed;
	struct store	*s;
	int		 refs;
	char		 key[96];
	char		*rel;		/* catalog path */
	enum store_fill_state	 state;
	enum ph_err	 code;
	char		 msg[200];
	uint64_t	 size;
	struct cache_fill *cf;
	uint64_t	 unkept;	/* bytes counted in s->unkept */
	int		 read_fd;	/* our own duplicate of the temp file */
	_Atomic uint64_t written;
	bool		 has_expect;
	uint8_t		 expect[PH_SHA256_LEN];
	uint8_t		 sha256[PH_SHA256_LEN];
	/* From the repository, on the pool. */
	int		 repo_fd;
	struct stat	 st0;
	uv_work_t	 work;
	uv_async_t	 async;
	bool		 async_open;
	atomic_bool	 abort;
	int		 work_err;
	/* From upstream, on the loop. */
	struct upstream_req *ureq;
	struct ph_meta	 umeta;
	bool		 stale;		/* the parent's META said stale */
	int		 write_err;
	uint64_t	 notified;	/* written when readers last heard */
	/* Readers following the fill. */
	struct store_fill_watcher *watchers;
	size_t		 nwatchers;
	size_t		 capwatchers;
	int		 notifying;
};


/* ---- Fills ------------------------------------------------------------- */

uint64_t
store_fill_available(const struct store_fill *f)
{
	return atomic_load(&f->written);
}

int
store_fill_fd(const struct store_fill *f)
{
	return f->read_fd;
}

bool
store_fill_stale(const struct store_fill *f)
{
	return f->stale;
}

int
store_fill_status(const struct store_fill *f, uint8_t sha256[PH_SHA256_LEN],
    enum ph_err *code, const char **msg)
{
	if (f->state == STORE_FILL_DONE) {
		memcpy(sha256, f->sha256, PH_SHA256_LEN);
		return 1;
	}
	if (f->state == STORE_FILL_FAILED) {
		*code = f->code;
		*msg = f->msg;
		return -1;
	}
	return 0;
}

void
store_fill_watch(struct store_fill *f, void (*cb)(void *), void *arg)
{
	struct store_fill_watcher *nw;
	size_t i;

	for (i = 0; i < f->nwatchers; i++)
		if (f->watchers[i].arg == arg)
			break;
	if (cb == NULL) {
		if (i < f->nwatchers)
			f->watchers[i].cb = NULL;
		return;
	}
	if (i < f->nwatchers) {
		f->watchers[i].cb = cb;
		return;
	}
	if (f->nwatchers == f->capwatchers) {
		size_t cap = f->capwatchers ? f->capwatchers * 2 : 4;

		/* Out of memory: the reader only learns at the next kick. */
		if ((nw = realloc(f->watchers, cap * sizeof(*nw))) == NULL)
			return;
		f->watchers = nw;
		f->capwatchers = cap;
	}
	f->watchers[f->nwatchers].cb = cb;
	f->watchers[f->nwatchers].arg = arg;
	f->nwatchers++;
}

/* Tells every reader the fill moved; readers may drop out meanwhile. */
static void
store_fill_notify(struct store_fill *f)
{
	size_t i, j;

	f->refs++;
	f->notifying++;
	for (i = 0; i < f->nwatchers; i++)
		if (f->watchers[i].cb != NULL)
			f->watchers[i].cb(f->watchers[i].arg);
	if (--f->notifying == 0) {
		for (i = j = 0; i < f->nwatchers; i++)
			if (f->watchers[i].cb != NULL)
				f->watchers[j++] = f->watchers[i];
		f->nwatchers = j;
	}
	store_fill_unref(f);
}

static void	store_fill_unlist(struct store_fill *f);

/* Frees a fill whose last reference went. */
static void
store_fill_destroy(struct store_fill *f)
{
	store_fill_unlist(f);
	cache_fill_abort(f->cf);
	f->s->unkept -= f->unkept;
	if (f->read_fd >= 0)
		close(f->read_fd);
	if (f->repo_fd >= 0)
		close(f->repo_fd);
	free(f->watchers);
	free(f->rel);
	free(f);
}

void
store_fill_unref(struct store_fill *f)
{
	if (f == NULL)
		return;
	if (--f->refs == 0)
		store_fill_destroy(f);
}

/* Drops a fill from the single-flight table: new requests look again. */
static void
store_fill_unlist(struct store_fill *f)
{
	if (!f->listed)
		return;
	LIST_REMOVE(f, link);
	f->listed = false;
	f->s->nfills--;
}

/* Ends a fill with an error: the temporary file goes, readers hear it. */
static void
store_fill_fail(struct store_fill *f, enum ph_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
store_fill_fail(struct store_fill *f, enum ph_err code, const char *fmt, ...)
{
	va_list ap;

	if (f->state != STORE_FILL_RUNNING)
		return;
	f->state = STORE_FILL_FAILED;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	f->s->fill_failures++;
	log_info(f->s->log, "cache fill of /%s failed: %s", f->rel, f->msg);
	cache_fill_abort(f->cf);
	f->cf = NULL;
	store_fill_unlist(f);
	store_fill_notify(f);
}

/*
 * A finished fill: its blob goes into the index, readers hear the end. The
 * bytes are complete and checked by then, so a blob that cannot be stored
 * (a full state directory, a fill kept in memory) is still served: readers
 * go on from read_fd, which the rename or unlink leaves readable.
 */
static void
store_fill_complete(struct store_fill *f)
{
	struct store *s = f->s;
	struct cache_blob *b = NULL;
	char hex[PH_SHA256_LEN * 2 + 1];
	bool kept = cache_fill_kept(f->cf);
	int err = 0;

	if (kept)
		err = cache_fill_commit(f->cf, &b);
	else
		cache_fill_abort(f->cf);	/* counted uncached at start */
	f->cf = NULL;
	f->state = STORE_FILL_DONE;
	store_fill_unlist(f);
	/* The index (state directory) or the rename (cache disk) found no
	 * room: the one short of it is to blame. */
	if (err == -ENOSPC)
		store_disk_refused(s, store_disk_free(&s->state_disk) <
		    STORE_FULL_BELOW ? &s->state_disk : &s->cache_disk);
	else if (err < 0)
		log_info(s->log, "cannot store /%s in the cache: %s; served "
		    "uncached", f->rel, strerror(-err));
	if (err < 0)
		s->uncached++;
	else if (kept) {
		store_disk_ok(s);
		s->fills_done++;
		ph_util_sha256_hex(f->sha256, hex);
		log_debug(s->log, "cached /%s: %" PRIu64 " bytes, sha256:%s",
		    f->rel, f->size, hex);
		store_pack_schedule(s, b);
		cache_blob_put(b);
	}
	store_fill_notify(f);
}

/* Worker thread: copies the repository file into the cache, hashing. */
static void
store_fill_work(uv_work_t *w)
{
	struct store_fill *f = w->data;
	uint8_t *buf;
	uint64_t pos = 0;
	size_t want;
	int err = 0;

	if ((buf = malloc(CACHE_CHUNK)) == NULL) {
		f->work_err = -ENOMEM;
		return;
	}
	(void)posix_fadvise(f->repo_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (pos < f->size) {
		if (atomic_load(&f->abort)) {
			err = -ECANCELED;
			break;
		}
		want = f->size - pos < CACHE_CHUNK ? (size_t)(f->size - pos) :
		    CACHE_CHUNK;
		/* -ENODATA: the file shrank. */
		if ((err = ph_io_pread_full(f->repo_fd, buf, want, pos)) < 0 ||
		    (err = cache_fill_write(f->cf, buf, want)) < 0)
			break;
		pos += want;
		atomic_store(&f->written, pos);
		(void)uv_async_send(&f->async);
	}
	free(buf);
	if (err == 0)
		err = cache_fill_finish(f->cf, f->has_expect ? f->expect : NULL,
		    f->sha256);
	f->work_err = err;
}

/* The async handle is closed: it held a reference. */
static void
store_fill_on_async_closed(uv_handle_t *h)
{
	store_fill_unref(h->data);
}

/* Worker progress, on the loop. */
static void
store_fill_on_async(uv_async_t *a)
{
	struct store_fill *f = a->data;

	if (f->state == STORE_FILL_RUNNING)
		store_fill_notify(f);
}

/* The worker is done: check the file did not change, then commit. */
static void
store_fill_after_work(uv_work_t *w, int status)
{
	struct store_fill *f = w->data;
	struct store *s = f->s;
	struct stat now;
	int err = status < 0 ? -ECANCELED : f->work_err;

	uv_close((uv_handle_t *)&f->async, store_fill_on_async_closed);
	if (err == 0 && (fstat(f->repo_fd, &now) < 0 ||
	    now.st_size != f->st0.st_size ||
	    repo_ns(&now.st_mtim) != repo_ns(&f->st0.st_mtim) ||
	    repo_ns(&now.st_ctim) != repo_ns(&f->st0.st_ctim)))
		err = -ESTALE;
	if (err == -ENOSPC) {
		store_fill_fail(f, PH_ERR_IO, "the cache disk is full; try "
		    "again (the file is served uncached meanwhile)");
		store_disk_refused(s, &s->cache_disk);
	} else if (err == -ECANCELED)
		store_fill_fail(f, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else if (err == -ESTALE || err == -ENODATA || err == -EBADMSG)
		store_fill_fail(f, PH_ERR_CHANGED, "the file changed while it "
		    "was being read");
	else if (err < 0)
		store_fill_fail(f, PH_ERR_IO, "cannot read the file: %s",
		    strerror(-err));
	else {
		store_catalog_record(s, f->rel, &f->st0, f->sha256);
		store_fill_complete(f);
	}
	store_fill_unref(f);		/* the worker's reference */
}

/* A fill in progress under key, or NULL. */
static struct store_fill *
store_fill_find(struct store *s, const char *key)
{
	struct store_fill *f;

	LIST_FOREACH(f, &s->fills, link)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* Bytes the running fills have yet to write to the cache disk. */
static uint64_t
store_fill_pending(struct store *s)
{
	struct store_fill *f;
	uint64_t n = 0;

	LIST_FOREACH(f, &s->fills, link)
		if (f->cf != NULL && cache_fill_kept(f->cf))
			n += f->size - atomic_load(&f->written);
	return n;
}

/*
 * Starts f's cache fill: a blob file when keep and both disks have room
 * (-ENOSPC otherwise), else memory within STORE_FILL_UNKEPT_MAX (-ENOBUFS).
 */
static int
store_fill_begin(struct store_fill *f, bool keep)
{
	struct store *s = f->s;
	uint64_t pending;
	int err;

	if (!keep) {
		if (f->size > STORE_FILL_UNKEPT_MAX - s->unkept)
			return -ENOBUFS;
		if ((err = cache_fill_begin_unkept(s->cache, f->size,
		    &f->cf)) < 0)
			return err;
		f->unkept = f->size;
		s->unkept += f->unkept;
		return 0;
	}
	/* Eviction to the budget first: it may free the room checked. */
	pending = store_fill_pending(s);
	if ((err = cache_fill_begin(s->cache, f->size, &f->cf)) < 0)
		return err;
	if (!store_disk_room(s, &s->cache_disk, f->size + pending +
	    STORE_FILL_DISK_SLACK) || !store_disk_room(s, &s->state_disk,
	    STORE_FILL_DB_ROOM)) {
		cache_fill_abort(f->cf);
		f->cf = NULL;
		return -ENOSPC;
	}
	return 0;
}

/*
 * A new fill of size bytes under key, listed for single flight (the table
 * holds no reference: a fill leaves it when it ends or is freed); keep
 * false makes it one that streams from memory and is not stored. Returns
 * it with one reference for the caller, or NULL with *err set (-EFBIG:
 * larger than the cache; -ENOSPC: no room; -ENOBUFS: no memory room; else
 * a file or memory error).
 */
static struct store_fill *
store_fill_new(struct store *s, const char *key, const char *rel, uint64_t size,
    const uint8_t *expect, bool keep, int *err)
{
	struct store_fill *f;

	*err = 0;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->rel = strdup(rel)) == NULL) {
		free(f);
		*err = -ENOMEM;
		return NULL;
	}
	f->s = s;
	f->refs = 1;
	f->repo_fd = -1;
	f->read_fd = -1;
	f->size = size;
	snprintf(f->key, sizeof(f->key), "%s", key);
	if (expect != NULL) {
		f->has_expect = true;
		memcpy(f->expect, expect, PH_SHA256_LEN);
	}
	if ((*err = store_fill_begin(f, keep)) < 0)
		goto fail;
	if ((f->read_fd = fcntl(cache_fill_fd(f->cf), F_DUPFD_CLOEXEC, 0)) <
	    0) {
		*err = -errno;
		goto fail;
	}
	LIST_INSERT_HEAD(&s->fills, f, link);
	f->listed = true;
	s->nfills++;
	return f;

fail:
	store_fill_destroy(f);
	return NULL;
}

/*
 * Starts copying the open repository file fd (fstat st) into the cache on
 * the pool. Takes a duplicate of fd. Returns the fill (one reference for
 * the caller) or NULL with *err.
 */
struct store_fill *
store_fill_start_local(struct store *s, const char *rel, int fd,
    const struct stat *st, const uint8_t *expect, int *err)
{
	char key[96];
	struct store_fill *f;
	int r;

	snprintf(key, sizeof(key), "L:%ju:%ju:%jd:%" PRId64 ":%" PRId64,
	    (uintmax_t)st->st_dev, (uintmax_t)st->st_ino,
	    (intmax_t)st->st_size, repo_ns(&st->st_mtim),
	    repo_ns(&st->st_ctim));
	if ((f = store_fill_find(s, key)) != NULL) {
		f->refs++;
		s->fill_joins++;
		return f;
	}
	if ((f = store_fill_new(s, key, rel, (uint64_t)st->st_size, expect,
	    true, err)) == NULL)
		return NULL;
	f->st0 = *st;
	if ((f->repo_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		*err = -errno;
		goto fail;
	}
	if ((r = uv_async_init(s->loop, &f->async, store_fill_on_async)) < 0) {
		*err = r;
		goto fail;
	}
	f->async.data = f;
	f->refs++;		/* the async handle's */
	f->work.data = f;
	if ((r = uv_queue_work(s->loop, &f->work, store_fill_work,
	    store_fill_after_work)) < 0) {
		*err = r;
		store_fill_unlist(f);
		uv_close((uv_handle_t *)&f->async, store_fill_on_async_closed);
		store_fill_unref(f);
		return NULL;
	}
	f->refs++;		/* the worker's */
	s->repo_reads++;
	return f;		/* with the caller's reference */

fail:
	store_fill_unlist(f);
	store_fill_unref(f);
	return NULL;
}

/* ---- Upstream fills ------------------------------------------------------ */

static void
store_fill_up_on_meta(void *arg, const struct ph_meta *meta)
{
	struct store_fill *f = arg;

	f->umeta = *meta;
	f->stale = meta->stale;
	if (meta->size != f->size || (meta->has_digest && f->has_expect &&
	    memcmp(meta->sha256, f->expect, PH_SHA256_LEN) != 0)) {
		f->write_err = -ESTALE;
		upstream_forget(f->s->upstream);
	}
}

/*
 * A relay fill ran out of disk: it goes on in memory, not to be kept, so
 * its readers still get the file. Readers read store_fill_fd() by number, so
 * that number is made to name the copy (dup3 on the loop thread, between
 * their reads; both hold the same bytes).
 */
static int
store_fill_up_spill(struct store_fill *f)
{
	struct store *s = f->s;
	struct cache_fill *nf = NULL;
	int err;

	if (!cache_fill_kept(f->cf))
		return -ENOSPC;
	if (f->size > STORE_FILL_UNKEPT_MAX - s->unkept)
		return -ENOBUFS;
	if ((err = cache_fill_unkept_copy(f->cf, &nf)) < 0)
		return err;
	if (dup3(cache_fill_fd(nf), f->read_fd, O_CLOEXEC) < 0) {
		err = -errno;
		cache_fill_abort(nf);
		return err;
	}
	cache_fill_abort(f->cf);
	f->cf = nf;
	f->unkept = f->size;
	s->unkept += f->unkept;
	s->uncached++;
	store_disk_refused(s, &s->cache_disk);
	log_debug(s->log, "relaying /%s uncached from memory: the cache disk "
	    "is full", f->rel);
	return 0;
}

/*
 * Bytes from the parent land in the cache; readers hear of them in steps
 * (the first bytes at once, for the time to first byte), so a trickle of
 * small reads does not become a trickle of small DATA frames.
 */
static void
store_fill_up_on_data(void *arg, const uint8_t *buf, size_t len)
{
	struct store_fill *f = arg;
	uint64_t now;
	int err;

	if (f->write_err != 0 || f->state != STORE_FILL_RUNNING)
		return;
	if ((err = cache_fill_write(f->cf, buf, len)) == -ENOSPC &&
	    store_fill_up_spill(f) == 0)
		err = cache_fill_write(f->cf, buf, len);
	if (err < 0) {
		f->write_err = err;
		return;
	}
	now = atomic_load(&f->written) + len;
	atomic_store(&f->written, now);
	if (f->notified == 0 || now - f->notified >= STORE_FILL_NOTIFY_STEP ||
	    now == f->size) {
		f->notified = now;
		store_fill_notify(f);
	}
}

/* Worker: the size and digest check and the fdatasync of a relay fill. */
static void
store_fill_up_finish_work(uv_work_t *w)
{
	struct store_fill *f = w->data;

	f->work_err = cache_fill_finish(f->cf, f->has_expect ? f->expect :
	    NULL, f->sha256);
}

static void
store_fill_up_finish_after(uv_work_t *w, int status)
{
	struct store_fill *f = w->data;
	struct store *s = f->s;
	int err = status < 0 ? -ECANCELED : f->work_err;

	if (f->state != STORE_FILL_RUNNING)
		;
	else if (err == -EBADMSG)
		store_fill_fail(f, PH_ERR_INTEGRITY, "the data from upstream "
		    "does not match its SHA-256: not cached");
	else if (err == -ECANCELED)
		store_fill_fail(f, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else if (err < 0)
		store_fill_fail(f, PH_ERR_IO, "cannot store the file in the "
		    "cache: %s", strerror(-err));
	else {
		struct cache_cat e;

		memset(&e, 0, sizeof(e));
		e.size = f->size;
		e.mtime_ns = f->umeta.mtime_ns;
		e.mode = (uint32_t)(S_IFREG | (f->umeta.mode & 07777));
		memcpy(e.sha256, f->sha256, PH_SHA256_LEN);
		if (f->unkept == 0)
			(void)cache_db_cat_put(s->cache, f->rel, &e);
		store_fill_complete(f);
	}
	store_fill_unref(f);
}

static void
store_fill_up_on_end(void *arg, int status, const struct upstream_error *e,
    const uint8_t *sha256)
{
	struct store_fill *f = arg;
	int r;

	f->ureq = NULL;
	if (f->state != STORE_FILL_RUNNING) {
		store_fill_unref(f);
		return;
	}
	if (status == 0 && f->write_err == 0) {
		if (f->has_expect && sha256 != NULL &&
		    memcmp(sha256, f->expect, PH_SHA256_LEN) != 0)
			f->has_expect = false;	/* checked against END below */
		if (!f->has_expect && sha256 != NULL) {
			f->has_expect = true;
			memcpy(f->expect, sha256, PH_SHA256_LEN);
		}
		f->work.data = f;
		if ((r = uv_queue_work(f->s->loop, &f->work,
		    store_fill_up_finish_work,
		    store_fill_up_finish_after)) == 0)
			return;		/* the reference moves to the work */
		store_fill_fail(f, PH_ERR_INTERNAL, "cannot queue work: %s",
		    uv_strerror(r));
	} else if (f->write_err == -ESTALE)
		store_fill_fail(f, PH_ERR_CHANGED, "the file changed upstream "
		    "while it was being fetched");
	else if (f->write_err == -ENOSPC) {
		store_fill_fail(f, PH_ERR_IO, "the cache disk is full; try "
		    "again");
		store_disk_refused(f->s, &f->s->cache_disk);
	} else if (f->write_err < 0)
		store_fill_fail(f, PH_ERR_IO, "cannot write the cache: %s",
		    strerror(-f->write_err));
	else if (status == -EREMOTE)
		store_fill_fail(f, (enum ph_err)e->code, "%s", e->message);
	else if (status == -EILSEQ)
		store_fill_fail(f, PH_ERR_INTEGRITY, "corrupt data from "
		    "upstream: not cached");
	else if (status == -ECANCELED)
		store_fill_fail(f, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else
		store_fill_fail(f, PH_ERR_UNAVAILABLE, "upstream unavailable: "
		    "%s", status == -EHOSTDOWN ? "cannot reach it" :
		    status == -ECONNRESET ? "connection lost" :
		    status == -ETIMEDOUT ? "it stopped sending" :
		    strerror(-status));
	store_fill_unref(f);
}

static const struct upstream_get_cbs store_fill_up_cbs = {
	.on_meta = store_fill_up_on_meta,
	.on_data = store_fill_up_on_data,
	.on_end = store_fill_up_on_end,
};

/* Fetches rel (digest sha256, size bytes) from upstream into the cache. */
struct store_fill *
store_fill_start_upstream(struct store *s, const char *rel, uint64_t size,
    const uint8_t *sha256, int *err)
{
	char key[96], hex[PH_SHA256_LEN * 2 + 1];
	struct store_fill *f;

	ph_util_sha256_hex(sha256, hex);
	snprintf(key, sizeof(key), "U:%s", hex);
	if ((f = store_fill_find(s, key)) != NULL) {
		f->refs++;
		s->fill_joins++;
		return f;
	}
	/* No room to store it: stream it from memory, not kept. */
	if ((f = store_fill_new(s, key, rel, size, sha256, true,
	    err)) == NULL && (*err == -ENOSPC || *err == -EFBIG)) {
		int kerr = *err;

		if ((f = store_fill_new(s, key, rel, size, sha256, false,
		    err)) == NULL && *err == -ENOBUFS)
			*err = kerr;
		else if (f != NULL)
			s->uncached++;
	}
	if (f == NULL)
		return NULL;
	if ((*err = upstream_get(s->upstream, rel, 0, &store_fill_up_cbs, f,
	    &f->ureq)) < 0) {
		store_fill_unlist(f);
		store_fill_unref(f);
		return NULL;
	}
	f->refs++;		/* the upstream request's */
	s->upstream_fetches++;
	return f;		/* with the caller's reference */
}

void
store_fill_reverify(struct store_fill *f)
{
	if (f->ureq != NULL)
		upstream_get_reverify(f->ureq);
}

void
store_fill_abort_all(struct store *s)
{
	struct store_fill *f;

	LIST_FOREACH(f, &s->fills, link)
		atomic_store(&f->abort, true);
}
