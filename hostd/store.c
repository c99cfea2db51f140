/*
 * store.c: resolving requests to the cache, a fill, or the repository.
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
#include <sys/statvfs.h>
#include <unistd.h>

#include "cache.h"
#include "digest.h"
#include "fsutil.h"
#include "log.h"
#include "repo.h"
#include "store.h"
#include "store_impl.h"
#include "upstream.h"

/* Access times reach the catalog database this often. */
#define STORE_SYNC_MS		5000
/* Smaller blobs are not worth compressing at rest. */
#define STORE_PACK_MIN		(64u * 1024)
/* Room a blob file needs beyond its size: blocks, directory entries. */
#define STORE_DISK_SLACK	(64u * 1024)
/* Free space the catalog database wants in the state directory. */
#define STORE_DB_ROOM		(1024u * 1024)
/* A disk with less free is full (else only the file at hand is too big). */
#define STORE_FULL_BELOW	(1024u * 1024)
/* Relay fills that cannot be stored stream from memory, this much at once
 * at most (the parent sends as fast as it can, whatever the readers do). */
#define STORE_UNKEPT_MAX	((uint64_t)512 * 1024 * 1024)
#define STORE_CATALOG_DB	"cache.db"
/* Readers of a relay fill are woken every this many new bytes. */
#define STORE_NOTIFY_STEP	(256u * 1024)
/* A blob that passed a client-reported check is not re-read for so long. */
#define STORE_CHECKED_MS	30000

enum fill_state {
	FILL_RUNNING,
	FILL_DONE,
	FILL_FAILED,
};

struct fill_watcher {
	void		(*cb)(void *);
	void		*arg;
};

struct fill {
	LIST_ENTRY(fill) link;		/* in the single-flight table */
	bool		 listed;
	struct store	*s;
	int		 refs;
	char		 key[96];
	char		*rel;		/* catalog path */
	enum fill_state	 state;
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
	struct fill_watcher *watchers;
	size_t		 nwatchers;
	size_t		 capwatchers;
	int		 notifying;
};

struct pack_job {
	TAILQ_ENTRY(pack_job) link;
	struct store	*s;
	struct cache_pack *p;
	uv_work_t	 work;
	int		 status;
};

struct store_req {
	LIST_ENTRY(store_req) link;
	struct store	*s;
	uint8_t		 op;		/* PH_GET, PH_STAT, PH_LIST */
	bool		 reverify;	/* the client found its last copy bad */
	bool		 reverified;	/* the blob was re-hashed for it */
	bool		 fallback;	/* a relay's copy, its parent down */
	struct blob_check *check;	/* the re-hash it waits for */
	LIST_ENTRY(store_req) check_link; /* in check->waiters */
	char		*rel;
	store_cb	*cb;
	store_gate	*gate;
	store_list_cb	*list_cb;
	void		*arg;
	struct store_res res;
	struct digest_wait *dw;
	struct upstream_req *ureq;
};

/*
 * A cached blob re-hashed on the pool before the GETs that reported a bad
 * copy of it get it: one check per blob at a time, however many report it
 * meanwhile (each waiter keeps its own pin; the check has one for the
 * worker). A request that goes away only leaves the waiters.
 */
struct blob_check {
	LIST_ENTRY(blob_check) link;	/* in s->checks */
	struct store	*s;
	struct cache_blob *b;
	LIST_HEAD(, store_req) waiters;
	uv_work_t	 work;
	int		 status;
};

/* ---- Small helpers ----------------------------------------------------- */

/* Sets res to an error with a formatted message. */
static void
res_error(struct store_res *res, enum ph_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
res_error(struct store_res *res, enum ph_err code, const char *fmt, ...)
{
	va_list ap;

	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	va_end(ap);
}

/* ---- Room on the disks ---------------------------------------------------- */

/* Bytes free on d's file system for us, or UINT64_MAX if it cannot tell. */
static uint64_t
store_disk_free(const struct store_disk *d)
{
	struct statvfs v;

	if (d->fd < 0 || fstatvfs(d->fd, &v) < 0)
		return UINT64_MAX;
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/*
 * Says once, not per request, that files go uncached for lack of room:
 * need bytes were wanted with avail free, or (need 0) a write failed.
 */
static void
store_disk_full(struct store *s, struct store_disk *d, uint64_t avail,
    uint64_t need)
{
	char why[96];

	if (d->full)
		return;
	d->full = true;
	if (need == 0)
		snprintf(why, sizeof(why), "a write failed");
	else
		snprintf(why, sizeof(why), "%" PRIu64 " bytes wanted, %" PRIu64
		    " free", need, avail);
	log_warn(s->log, "no room on the %s %s (%s): serving files uncached "
	    "until there is room", d->what, d->path, why);
}

/*
 * True if need bytes may fit on d: statvfs says so, and more is free than
 * when a write there last failed (a file system can refuse what statvfs
 * promises: quotas, other writers). Checked for every new fill, so a fill
 * is tried again as soon as space may be free, never after a lockout. Only
 * a disk with almost nothing free counts as full; one file too large for
 * what is free is a debug line.
 */
static bool
store_disk_room(struct store *s, struct store_disk *d, uint64_t need)
{
	uint64_t avail = store_disk_free(d);

	if (avail == UINT64_MAX || (avail >= need && (d->refused ==
	    UINT64_MAX || avail > d->refused)))
		return true;
	if (avail < need && avail >= STORE_FULL_BELOW)
		log_debug(s->log, "no room for %" PRIu64 " bytes on the %s %s "
		    "(%" PRIu64 " free): that file goes uncached", need,
		    d->what, d->path, avail);
	else
		store_disk_full(s, d, avail, need);
	return false;
}

/* A write to d failed for lack of room. */
static void
store_disk_refused(struct store *s, struct store_disk *d)
{
	d->refused = store_disk_free(d);
	store_disk_full(s, d, d->refused, 0);
}

/* A blob was stored: both disks took their writes. */
static void
store_disk_ok(struct store *s)
{
	struct store_disk *d[] = { &s->cache_disk, &s->state_disk };

	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		d[i]->refused = UINT64_MAX;
		if (d[i]->full)
			log_info(s->log, "the %s %s has room again: caching "
			    "files again", d[i]->what, d[i]->path);
		d[i]->full = false;
	}
}

/*
 * Opens dir for store_disk_free(). A directory that does not open (the
 * cache and the database did) is never found short of room. Returns 0 or
 * -ENOMEM.
 */
static int
store_disk_open(struct store_disk *d, const char *what, const char *dir)
{
	d->what = what;
	d->refused = UINT64_MAX;
	if ((d->path = strdup(dir)) == NULL)
		return -ENOMEM;
	d->fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return 0;
}

static void
store_disk_close(struct store_disk *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
	free(d->path);
	d->path = NULL;
}

void
store_res_release(struct store_res *res)
{
	if (res == NULL)
		return;
	if (res->fd >= 0)
		close(res->fd);
	res->fd = -1;
	cache_blob_put(res->blob);
	res->blob = NULL;
	fill_unref(res->fill);
	res->fill = NULL;
}

/* Records the digest of the repository file st under rel. */
static void
cat_record(struct store *s, const char *rel, const struct stat *st,
    const uint8_t *sha256)
{
	struct cache_cat e;

	cache_cat_from_stat(&e, st, sha256);
	if (cache_cat_put(s->cache, rel, &e) < 0)
		log_debug(s->log, "cannot record the digest of /%s", rel);
}

/* A stat built from a catalog entry (relay mode keeps no inode). */
static void
cat_to_stat(const struct cache_cat *e, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_size = (off_t)e->size;
	st->st_mode = (mode_t)(e->mode != 0 ? e->mode : (S_IFREG | 0644));
	st->st_mtim.tv_sec = (time_t)(e->mtime_ns / 1000000000);
	st->st_mtim.tv_nsec = (long)(e->mtime_ns % 1000000000);
	if (st->st_mtim.tv_nsec < 0) {
		st->st_mtim.tv_sec--;
		st->st_mtim.tv_nsec += 1000000000;
	}
}

/* A stat built from a parent's META. */
static void
meta_to_stat(const struct ph_meta *m, struct stat *st)
{
	struct cache_cat e;

	memset(&e, 0, sizeof(e));
	e.size = m->size;
	e.mtime_ns = m->mtime_ns;
	e.mode = (m->ftype == PH_FT_REGULAR ? S_IFREG : m->ftype ==
	    PH_FT_DIR ? S_IFDIR : S_IFIFO) | (m->mode & 07777);
	cat_to_stat(&e, st);
}

/* ---- Requests --------------------------------------------------------- */

/* A new request, linked so shutdown can find it. */
static struct store_req *
req_new(struct store *s, uint8_t op, const char *rel, void *arg)
{
	struct store_req *r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->rel = strdup(rel)) == NULL) {
		free(r);
		return NULL;
	}
	r->s = s;
	r->op = op;
	r->arg = arg;
	r->res.fd = -1;
	LIST_INSERT_HEAD(&s->reqs, r, link);
	return r;
}

/* Unlinks and frees a request, releasing what its result still holds. */
static void
req_free(struct store_req *r)
{
	if (r == NULL)
		return;
	LIST_REMOVE(r, link);
	digest_cancel(r->dw);
	upstream_cancel(r->ureq);
	if (r->check != NULL)
		LIST_REMOVE(r, check_link);
	store_res_release(&r->res);
	free(r->rel);
	free(r);
}

/*
 * Asks the request's gate about what it really names (NULL: unknown);
 * false when it refused, with the request's result set to say so.
 */
static bool
req_gate(struct store_req *r, const char *real)
{
	char msg[sizeof(r->res.msg)];

	if (r->gate == NULL || r->gate(r->arg, real, msg, sizeof(msg)))
		return true;
	store_res_release(&r->res);
	r->res.fs_err = 0;
	r->res.has_digest = false;
	res_error(&r->res, PH_ERR_FORBIDDEN, "%s", msg);
	return false;
}

/* Delivers the result and frees the request. */
static void
req_done(struct store_req *r)
{
	r->dw = NULL;
	r->ureq = NULL;
	if (r->cb != NULL)
		r->cb(r->arg, &r->res);
	req_free(r);
}

void
store_cancel(struct store_req *r)
{
	req_free(r);
}

/* ---- Fills ------------------------------------------------------------- */

uint64_t
fill_available(const struct fill *f)
{
	return atomic_load(&f->written);
}

int
fill_fd(const struct fill *f)
{
	return f->read_fd;
}

bool
fill_stale(const struct fill *f)
{
	return f->stale;
}

int
fill_status(const struct fill *f, uint8_t sha256[PH_SHA256_LEN],
    enum ph_err *code, const char **msg)
{
	if (f->state == FILL_DONE) {
		memcpy(sha256, f->sha256, PH_SHA256_LEN);
		return 1;
	}
	if (f->state == FILL_FAILED) {
		*code = f->code;
		*msg = f->msg;
		return -1;
	}
	return 0;
}

void
fill_watch(struct fill *f, void (*cb)(void *), void *arg)
{
	struct fill_watcher *nw;
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
fill_notify(struct fill *f)
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
	fill_unref(f);
}

static void	fill_unlist(struct fill *f);

/* Frees a fill whose last reference went. */
static void
fill_destroy(struct fill *f)
{
	fill_unlist(f);
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
fill_unref(struct fill *f)
{
	if (f == NULL)
		return;
	if (--f->refs == 0)
		fill_destroy(f);
}

/* Drops a fill from the single-flight table: new requests look again. */
static void
fill_unlist(struct fill *f)
{
	if (!f->listed)
		return;
	LIST_REMOVE(f, link);
	f->listed = false;
	f->s->nfills--;
}

/* Ends a fill with an error: the temporary file goes, readers hear it. */
static void
fill_fail(struct fill *f, enum ph_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fill_fail(struct fill *f, enum ph_err code, const char *fmt, ...)
{
	va_list ap;

	if (f->state != FILL_RUNNING)
		return;
	f->state = FILL_FAILED;
	f->code = code;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
	f->s->fill_failures++;
	log_info(f->s->log, "cache fill of /%s failed: %s", f->rel, f->msg);
	cache_fill_abort(f->cf);
	f->cf = NULL;
	fill_unlist(f);
	fill_notify(f);
}

/* Queues the blob for compression at rest, one job at a time. */
static void	pack_next(struct store *s);

static void
pack_schedule(struct store *s, struct cache_blob *b)
{
	struct cache_pack *p = NULL;
	struct pack_job *j;

	if (s->stopping || cache_blob_size(b) < STORE_PACK_MIN)
		return;
	if (cache_pack_begin(s->cache, b, &p) != 1)
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		cache_pack_abort(p);
		return;
	}
	j->s = s;
	j->p = p;
	j->work.data = j;
	TAILQ_INSERT_TAIL(&s->packs, j, link);
	pack_next(s);
}

/*
 * A finished fill: its blob goes into the index, readers hear the end. The
 * bytes are complete and checked by then, so a blob that cannot be stored
 * (a full state directory, a fill kept in memory) is still served: readers
 * go on from read_fd, which the rename or unlink leaves readable.
 */
static void
fill_complete(struct fill *f)
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
	f->state = FILL_DONE;
	fill_unlist(f);
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
		ph_sha256_hex(f->sha256, hex);
		log_debug(s->log, "cached /%s: %" PRIu64 " bytes, sha256:%s",
		    f->rel, f->size, hex);
		pack_schedule(s, b);
		cache_blob_put(b);
	}
	fill_notify(f);
}

/* Worker thread: copies the repository file into the cache, hashing. */
static void
fill_work(uv_work_t *w)
{
	struct fill *f = w->data;
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
		if ((err = ph_pread_full(f->repo_fd, buf, want, pos)) < 0 ||
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
fill_on_async_closed(uv_handle_t *h)
{
	fill_unref(h->data);
}

/* Worker progress, on the loop. */
static void
fill_on_async(uv_async_t *a)
{
	struct fill *f = a->data;

	if (f->state == FILL_RUNNING)
		fill_notify(f);
}

/* The worker is done: check the file did not change, then commit. */
static void
fill_after_work(uv_work_t *w, int status)
{
	struct fill *f = w->data;
	struct store *s = f->s;
	struct stat now;
	int err = status < 0 ? -ECANCELED : f->work_err;

	uv_close((uv_handle_t *)&f->async, fill_on_async_closed);
	if (err == 0 && (fstat(f->repo_fd, &now) < 0 ||
	    now.st_size != f->st0.st_size ||
	    repo_ns(&now.st_mtim) != repo_ns(&f->st0.st_mtim) ||
	    repo_ns(&now.st_ctim) != repo_ns(&f->st0.st_ctim)))
		err = -ESTALE;
	if (err == -ENOSPC) {
		fill_fail(f, PH_ERR_IO, "the cache disk is full; try again "
		    "(the file is served uncached meanwhile)");
		store_disk_refused(s, &s->cache_disk);
	} else if (err == -ECANCELED)
		fill_fail(f, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else if (err == -ESTALE || err == -ENODATA || err == -EBADMSG)
		fill_fail(f, PH_ERR_CHANGED, "the file changed while it was "
		    "being read");
	else if (err < 0)
		fill_fail(f, PH_ERR_IO, "cannot read the file: %s",
		    strerror(-err));
	else {
		cat_record(s, f->rel, &f->st0, f->sha256);
		fill_complete(f);
	}
	fill_unref(f);		/* the worker's reference */
}

/* A fill in progress under key, or NULL. */
static struct fill *
fill_find(struct store *s, const char *key)
{
	struct fill *f;

	LIST_FOREACH(f, &s->fills, link)
		if (strcmp(f->key, key) == 0)
			return f;
	return NULL;
}

/* Bytes the running fills have yet to write to the cache disk. */
static uint64_t
fill_pending(struct store *s)
{
	struct fill *f;
	uint64_t n = 0;

	LIST_FOREACH(f, &s->fills, link)
		if (f->cf != NULL && cache_fill_kept(f->cf))
			n += f->size - atomic_load(&f->written);
	return n;
}

/*
 * Starts f's cache fill: a blob file when keep and both disks have room
 * (-ENOSPC otherwise), else memory within STORE_UNKEPT_MAX (-ENOBUFS).
 */
static int
fill_begin(struct fill *f, bool keep)
{
	struct store *s = f->s;
	uint64_t pending;
	int err;

	if (!keep) {
		if (f->size > STORE_UNKEPT_MAX - s->unkept)
			return -ENOBUFS;
		if ((err = cache_fill_begin_unkept(s->cache, f->size,
		    &f->cf)) < 0)
			return err;
		f->unkept = f->size;
		s->unkept += f->unkept;
		return 0;
	}
	/* Eviction to the budget first: it may free the room checked. */
	pending = fill_pending(s);
	if ((err = cache_fill_begin(s->cache, f->size, &f->cf)) < 0)
		return err;
	if (!store_disk_room(s, &s->cache_disk, f->size + pending +
	    STORE_DISK_SLACK) || !store_disk_room(s, &s->state_disk,
	    STORE_DB_ROOM)) {
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
static struct fill *
fill_new(struct store *s, const char *key, const char *rel, uint64_t size,
    const uint8_t *expect, bool keep, int *err)
{
	struct fill *f;

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
	if ((*err = fill_begin(f, keep)) < 0)
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
	fill_destroy(f);
	return NULL;
}

/*
 * Starts copying the open repository file fd (fstat st) into the cache on
 * the pool. Takes a duplicate of fd. Returns the fill (one reference for
 * the caller) or NULL with *err.
 */
static struct fill *
fill_start_local(struct store *s, const char *rel, int fd,
    const struct stat *st, const uint8_t *expect, int *err)
{
	char key[96];
	struct fill *f;
	int r;

	snprintf(key, sizeof(key), "L:%ju:%ju:%jd:%" PRId64 ":%" PRId64,
	    (uintmax_t)st->st_dev, (uintmax_t)st->st_ino,
	    (intmax_t)st->st_size, repo_ns(&st->st_mtim),
	    repo_ns(&st->st_ctim));
	if ((f = fill_find(s, key)) != NULL) {
		f->refs++;
		s->fill_joins++;
		return f;
	}
	if ((f = fill_new(s, key, rel, (uint64_t)st->st_size, expect, true,
	    err)) == NULL)
		return NULL;
	f->st0 = *st;
	if ((f->repo_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		*err = -errno;
		goto fail;
	}
	if ((r = uv_async_init(s->loop, &f->async, fill_on_async)) < 0) {
		*err = r;
		goto fail;
	}
	f->async.data = f;
	f->refs++;		/* the async handle's */
	f->work.data = f;
	if ((r = uv_queue_work(s->loop, &f->work, fill_work,
	    fill_after_work)) < 0) {
		*err = r;
		fill_unlist(f);
		uv_close((uv_handle_t *)&f->async, fill_on_async_closed);
		fill_unref(f);
		return NULL;
	}
	f->refs++;		/* the worker's */
	s->repo_reads++;
	return f;		/* with the caller's reference */

fail:
	fill_unlist(f);
	fill_unref(f);
	return NULL;
}

/* ---- Upstream fills ------------------------------------------------------ */

static void
ufill_on_meta(void *arg, const struct ph_meta *meta)
{
	struct fill *f = arg;

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
 * its readers still get the file. Readers read fill_fd() by number, so
 * that number is made to name the copy (dup3 on the loop thread, between
 * their reads; both hold the same bytes).
 */
static int
ufill_spill(struct fill *f)
{
	struct store *s = f->s;
	struct cache_fill *nf = NULL;
	int err;

	if (!cache_fill_kept(f->cf))
		return -ENOSPC;
	if (f->size > STORE_UNKEPT_MAX - s->unkept)
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
ufill_on_data(void *arg, const uint8_t *buf, size_t len)
{
	struct fill *f = arg;
	uint64_t now;
	int err;

	if (f->write_err != 0 || f->state != FILL_RUNNING)
		return;
	if ((err = cache_fill_write(f->cf, buf, len)) == -ENOSPC &&
	    ufill_spill(f) == 0)
		err = cache_fill_write(f->cf, buf, len);
	if (err < 0) {
		f->write_err = err;
		return;
	}
	now = atomic_load(&f->written) + len;
	atomic_store(&f->written, now);
	if (f->notified == 0 || now - f->notified >= STORE_NOTIFY_STEP ||
	    now == f->size) {
		f->notified = now;
		fill_notify(f);
	}
}

/* Worker: the size and digest check and the fdatasync of a relay fill. */
static void
ufill_finish_work(uv_work_t *w)
{
	struct fill *f = w->data;

	f->work_err = cache_fill_finish(f->cf, f->has_expect ? f->expect :
	    NULL, f->sha256);
}

static void
ufill_finish_after(uv_work_t *w, int status)
{
	struct fill *f = w->data;
	struct store *s = f->s;
	int err = status < 0 ? -ECANCELED : f->work_err;

	if (f->state != FILL_RUNNING)
		;
	else if (err == -EBADMSG)
		fill_fail(f, PH_ERR_INTEGRITY, "the data from upstream does "
		    "not match its SHA-256: not cached");
	else if (err == -ECANCELED)
		fill_fail(f, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else if (err < 0)
		fill_fail(f, PH_ERR_IO, "cannot store the file in the cache: "
		    "%s", strerror(-err));
	else {
		struct cache_cat e;

		memset(&e, 0, sizeof(e));
		e.size = f->size;
		e.mtime_ns = f->umeta.mtime_ns;
		e.mode = (uint32_t)(S_IFREG | (f->umeta.mode & 07777));
		memcpy(e.sha256, f->sha256, PH_SHA256_LEN);
		if (f->unkept == 0)
			(void)cache_cat_put(s->cache, f->rel, &e);
		fill_complete(f);
	}
	fill_unref(f);
}

static void
ufill_on_end(void *arg, int status, const struct upstream_error *e,
    const uint8_t *sha256)
{
	struct fill *f = arg;
	int r;

	f->ureq = NULL;
	if (f->state != FILL_RUNNING) {
		fill_unref(f);
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
		if ((r = uv_queue_work(f->s->loop, &f->work, ufill_finish_work,
		    ufill_finish_after)) == 0)
			return;		/* the reference moves to the work */
		fill_fail(f, PH_ERR_INTERNAL, "cannot queue work: %s",
		    uv_strerror(r));
	} else if (f->write_err == -ESTALE)
		fill_fail(f, PH_ERR_CHANGED, "the file changed upstream while "
		    "it was being fetched");
	else if (f->write_err == -ENOSPC) {
		fill_fail(f, PH_ERR_IO, "the cache disk is full; try again");
		store_disk_refused(f->s, &f->s->cache_disk);
	} else if (f->write_err < 0)
		fill_fail(f, PH_ERR_IO, "cannot write the cache: %s",
		    strerror(-f->write_err));
	else if (status == -EREMOTE)
		fill_fail(f, (enum ph_err)e->code, "%s", e->message);
	else if (status == -EILSEQ)
		fill_fail(f, PH_ERR_INTEGRITY, "corrupt data from upstream: "
		    "not cached");
	else if (status == -ECANCELED)
		fill_fail(f, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else
		fill_fail(f, PH_ERR_UNAVAILABLE, "upstream unavailable: %s",
		    status == -EHOSTDOWN ? "cannot reach it" :
		    status == -ECONNRESET ? "connection lost" :
		    status == -ETIMEDOUT ? "it stopped sending" :
		    strerror(-status));
	fill_unref(f);
}

static const struct upstream_get_cbs ufill_cbs = {
	.on_meta = ufill_on_meta,
	.on_data = ufill_on_data,
	.on_end = ufill_on_end,
};

/* Fetches rel (digest sha256, size bytes) from upstream into the cache. */
static struct fill *
fill_start_upstream(struct store *s, const char *rel, uint64_t size,
    const uint8_t *sha256, int *err)
{
	char key[96], hex[PH_SHA256_LEN * 2 + 1];
	struct fill *f;

	ph_sha256_hex(sha256, hex);
	snprintf(key, sizeof(key), "U:%s", hex);
	if ((f = fill_find(s, key)) != NULL) {
		f->refs++;
		s->fill_joins++;
		return f;
	}
	/* No room to store it: stream it from memory, not kept. */
	if ((f = fill_new(s, key, rel, size, sha256, true, err)) == NULL &&
	    (*err == -ENOSPC || *err == -EFBIG)) {
		int kerr = *err;

		if ((f = fill_new(s, key, rel, size, sha256, false, err)) ==
		    NULL && *err == -ENOBUFS)
			*err = kerr;
		else if (f != NULL)
			s->uncached++;
	}
	if (f == NULL)
		return NULL;
	if ((*err = upstream_get(s->upstream, rel, 0, &ufill_cbs, f,
	    &f->ureq)) < 0) {
		fill_unlist(f);
		fill_unref(f);
		return NULL;
	}
	f->refs++;		/* the upstream request's */
	s->upstream_fetches++;
	return f;		/* with the caller's reference */
}

/* ---- Local GET and STAT -------------------------------------------------- */

/* A hashing pass ended for a request waiting on the digest module. */
static void
req_digest_done(void *arg, int status, const uint8_t *sha256)
{
	struct store_req *r = arg;

	r->dw = NULL;
	if (status == 0) {
		r->res.has_digest = true;
		memcpy(r->res.sha256, sha256, PH_SHA256_LEN);
		cat_record(r->s, r->rel, &r->res.st, sha256);
	} else if (status == -ESTALE)
		res_error(&r->res, PH_ERR_CHANGED,
		    "the file changed while it was being hashed");
	else if (status == -ECANCELED)
		res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else {
		r->res.code = PH_ERR_IO;
		r->res.fs_err = status;
	}
	if (r->res.code != PH_OK || r->op == PH_STAT) {
		if (r->res.fd >= 0)
			close(r->res.fd);
		r->res.fd = -1;
	}
	req_done(r);
}

/*
 * Gets the digest of r->res.fd the slow way (memo, else a pass on the
 * pool), then finishes the request. Returns r, or NULL if it is done.
 */
static struct store_req *
req_hash(struct store_req *r)
{
	struct store *s = r->s;
	uint8_t sha256[PH_SHA256_LEN];
	int err;

	if (digest_lookup(s->digest, &r->res.st, sha256)) {
		req_digest_done(r, 0, sha256);
		return NULL;
	}
	s->repo_reads++;
	err = digest_start(s->digest, r->res.fd, &r->res.st, req_digest_done,
	    r, &r->dw);
	if (err == 0)
		return r;
	if (err == -ECANCELED)
		res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else
		res_error(&r->res, PH_ERR_INTERNAL, "cannot hash: %s",
		    strerror(-err));
	store_res_release(&r->res);
	req_done(r);
	return NULL;
}

/* ---- Re-checking a blob a client reported ------------------------------ */

static struct store_req *get_local_miss(struct store_req *r);
static void	relay_fetch(struct store_req *r);

/*
 * The reported blob turned out bad and is gone: the GET goes on as a miss,
 * from the repository file still open, or from the parent. A relay whose
 * parent is down has nothing else to offer. Returns r while that goes on,
 * NULL once the result was delivered.
 */
static struct store_req *
check_bad(struct store_req *r)
{
	char d[PH_MAX_PATH + 2];

	r->reverified = true;
	cache_blob_put(r->res.blob);
	r->res.blob = NULL;
	if (r->s->stopping) {
		res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is stopping");
		store_res_release(&r->res);
	} else if (r->res.fd >= 0)
		return get_local_miss(r);
	else if (r->fallback)
		res_error(&r->res, PH_ERR_UNAVAILABLE, "upstream unavailable "
		    "and the cached copy of %s is damaged",
		    ph_path_display(r->rel, d, sizeof(d)));
	else
		relay_fetch(r);
	req_done(r);
	return NULL;
}

/* True if the blob with this digest passed a check a moment ago. */
static bool
check_recent(struct store *s, const uint8_t *sha256)
{
	uint64_t now = uv_now(s->loop);

	for (size_t i = 0; i < STORE_CHECKED_N; i++)
		if (s->checked[i].at_ms != 0 &&
		    now - s->checked[i].at_ms < STORE_CHECKED_MS &&
		    memcmp(s->checked[i].sha256, sha256, PH_SHA256_LEN) == 0)
			return true;
	return false;
}

/*
 * Loop: a sound blob is served to every waiter as it is (and remembered
 * for a while, so that reports cannot make us re-read it over and over);
 * a bad one is removed first and every waiter goes on as a miss.
 */
static void
check_after(uv_work_t *w, int status)
{
	struct blob_check *k = w->data;
	struct store *s = k->s;
	struct store_req *r;
	char hex[PH_SHA256_LEN * 2 + 1];
	bool ok = status == 0 && k->status == 0;

	LIST_REMOVE(k, link);
	ph_sha256_hex(cache_blob_sha256(k->b), hex);
	if (ok) {
		memcpy(s->checked[s->checked_next].sha256,
		    cache_blob_sha256(k->b), PH_SHA256_LEN);
		s->checked[s->checked_next].at_ms = uv_now(s->loop);
		s->checked_next = (s->checked_next + 1) % STORE_CHECKED_N;
		log_info(s->log, "a client reported a bad copy: cached blob "
		    "sha256:%s checks out, sent again", hex);
	} else if (status == 0 && k->status != -ECANCELED) {
		log_warn(s->log, "a client reported a bad copy: cached blob "
		    "sha256:%s is corrupt (%s): removed", hex,
		    k->status == -EBADMSG ? "digest mismatch" :
		    strerror(-k->status));
		(void)cache_blob_remove(k->b);
	}
	while ((r = LIST_FIRST(&k->waiters)) != NULL) {
		LIST_REMOVE(r, check_link);
		r->check = NULL;
		r->reverified = true;
		if (!ok) {
			(void)check_bad(r);
			continue;
		}
		if (r->res.fd >= 0)
			close(r->res.fd);
		r->res.fd = -1;
		req_done(r);
	}
	cache_blob_put(k->b);
	free(k);
}

/* Worker: the blob's whole content against its digest. */
static void
check_work(uv_work_t *w)
{
	struct blob_check *k = w->data;

	k->status = cache_blob_verify(k->b);
}

/*
 * Starts (or joins) the check of r's blob. Returns false when it cannot,
 * for want of memory: the blob is then served unchecked.
 */
static bool
check_start(struct store_req *r)
{
	struct store *s = r->s;
	const uint8_t *sha256 = cache_blob_sha256(r->res.blob);
	struct blob_check *k;

	LIST_FOREACH(k, &s->checks, link)
		if (memcmp(cache_blob_sha256(k->b), sha256,
		    PH_SHA256_LEN) == 0)
			goto join;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return false;
	k->s = s;
	LIST_INIT(&k->waiters);
	k->work.data = k;
	if (cache_blob_pin(s->cache, sha256, &k->b) < 0 ||
	    uv_queue_work(s->loop, &k->work, check_work, check_after) < 0) {
		cache_blob_put(k->b);
		free(k);
		return false;
	}
	LIST_INSERT_HEAD(&s->checks, k, link);
join:
	LIST_INSERT_HEAD(&k->waiters, r, check_link);
	r->check = k;
	return true;
}

/*
 * Delivers a GET's result, unless its client reported a bad copy and the
 * result is a cached blob: that blob is re-hashed on the pool first, unless
 * it passed a check moments ago. Returns r while the check runs, NULL once
 * the result was delivered. A local GET keeps its repository file open
 * until then (res.fd beside res.blob), in case the blob is bad.
 */
static struct store_req *
req_deliver(struct store_req *r)
{
	const uint8_t *sha256;

	if (r->reverify && !r->reverified && r->res.code == PH_OK &&
	    r->res.blob != NULL) {
		sha256 = cache_blob_sha256(r->res.blob);
		/* Removed since we pinned it: found bad by someone else. */
		if (!cache_blob_has(r->s->cache, sha256))
			return check_bad(r);
		if (!check_recent(r->s, sha256) && check_start(r))
			return r;
	}
	if (r->res.blob != NULL && r->res.fd >= 0) {
		close(r->res.fd);
		r->res.fd = -1;
	}
	req_done(r);
	return NULL;
}

/* GET from the repository: cache hit, fill, or the file itself. */
static struct store_req *
get_local(struct store_req *r, struct repo *repo)
{
	struct store *s = r->s;
	struct cache_cat e;
	struct cache_blob *b = NULL;
	int err;

	err = repo_open_file(repo, r->rel, &r->res.fd, &r->res.st,
	    r->res.real);
	/* Refused or not found, a place the peer may not see is refused. */
	if (!req_gate(r, r->res.real) || err < 0) {
		if (err < 0 && r->res.code == PH_OK) {
			r->res.code = PH_ERR_IO;
			r->res.fs_err = err;
		}
		req_done(r);
		return NULL;
	}
	if (cache_cat_get(s->cache, r->rel, &e) == 0 &&
	    cache_cat_matches(&e, &r->res.st)) {
		r->res.has_digest = true;
		memcpy(r->res.sha256, e.sha256, PH_SHA256_LEN);
		if (cache_blob_get(s->cache, e.sha256, &b) == 0) {
			r->res.blob = b;
			return req_deliver(r);
		}
	} else
		s->cat_misses++;
	return get_local_miss(r);
}

/* A local GET the cache cannot serve: a fill, or the file itself. */
static struct store_req *
get_local_miss(struct store_req *r)
{
	struct store *s = r->s;
	struct fill *f;
	int err;

	f = fill_start_local(s, r->rel, r->res.fd, &r->res.st,
	    r->res.has_digest ? r->res.sha256 : NULL, &err);
	if (f != NULL) {
		close(r->res.fd);
		r->res.fd = -1;
		r->res.fill = f;
		/* A fill that already ended tells META its digest. */
		if (fill_status(f, r->res.sha256, &(enum ph_err){ 0 },
		    &(const char *){ NULL }) == 1)
			r->res.has_digest = true;
		goto done;
	}
	/* Too large, or no room: the file itself, uncached. */
	s->uncached++;
	if (r->res.has_digest) {
		s->repo_reads++;
		goto done;
	}
	return req_hash(r);

done:
	req_done(r);
	return NULL;
}

/* STAT in the repository; regular files get their digest. */
static struct store_req *
stat_local(struct store_req *r, struct repo *repo)
{
	struct store *s = r->s;
	char real[PH_MAX_PATH + 1];
	struct cache_cat e;
	struct stat st;
	int err, fd;

	err = repo_stat(repo, r->rel, &r->res.st, r->res.real);
	if (!req_gate(r, r->res.real))
		goto done;
	if (err < 0) {
		r->res.code = PH_ERR_IO;
		r->res.fs_err = err;
		goto done;
	}
	if (!S_ISREG(r->res.st.st_mode))
		goto done;
	if (cache_cat_get(s->cache, r->rel, &e) == 0 &&
	    cache_cat_matches(&e, &r->res.st)) {
		r->res.has_digest = true;
		memcpy(r->res.sha256, e.sha256, PH_SHA256_LEN);
		goto done;
	}
	/* An unreadable file still has metadata, only no digest. */
	if (repo_open_file(repo, r->rel, &fd, &st, real) < 0)
		goto done;
	/* A link that moved in between leads elsewhere: no digest. */
	if (strcmp(real, r->res.real) != 0) {
		close(fd);
		goto done;
	}
	r->res.st = st;
	r->res.fd = fd;
	return req_hash(r);

done:
	req_done(r);
	return NULL;
}

/* ---- Relay GET, STAT and LIST --------------------------------------------- */

/* The parent cannot answer: a cached copy of rel, if there is one. */
static bool
relay_fallback(struct store_req *r)
{
	struct store *s = r->s;
	struct cache_cat e;
	struct cache_blob *b = NULL;

	if (cache_cat_get(s->cache, r->rel, &e) < 0)
		return false;
	if (r->op == PH_GET) {
		if (cache_blob_get(s->cache, e.sha256, &b) < 0)
			return false;
		r->res.blob = b;
	} else if (!cache_blob_has(s->cache, e.sha256))
		return false;
	cat_to_stat(&e, &r->res.st);
	/* Served, but nobody could say it is still the parent's file. */
	r->res.stale = true;
	r->fallback = true;
	r->res.has_digest = true;
	memcpy(r->res.sha256, e.sha256, PH_SHA256_LEN);
	r->res.code = PH_OK;
	r->res.msg[0] = '\0';
	return true;
}

/* Maps an upstream failure to the request's error. */
static void
relay_error(struct store_req *r, int status, const struct upstream_error *e)
{
	char d[PH_MAX_PATH + 2];

	if (status == -EREMOTE)
		res_error(&r->res, (enum ph_err)e->code, "%s", e->message);
	else if (status == -ECANCELED)
		res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is stopping");
	else
		res_error(&r->res, PH_ERR_UNAVAILABLE, "upstream unavailable "
		    "(%s) and no cached copy of %s", status == -EHOSTDOWN ?
		    "cannot reach it" : status == -ECONNRESET ?
		    "connection lost" : status == -ETIMEDOUT ? "no answer" :
		    status == -EBADMSG ? "protocol error" : strerror(-status),
		    ph_path_display(r->rel, d, sizeof(d)));
}

/*
 * Asks the gate about what the parent says the path leads to: the real
 * path it reported, or NULL when it reports none (an old parent, or no
 * parent at all: a cached copy). A parent that failed before it resolved
 * the path has nothing to check. False when refused.
 */
static bool
relay_gate(struct store_req *r, const struct upstream_paths *paths)
{
	if (paths != NULL && paths->known && paths->real[0] == '\0')
		return true;
	if (paths != NULL && paths->known)
		snprintf(r->res.real, sizeof(r->res.real), "%s", paths->real);
	return req_gate(r, paths != NULL && paths->known ? paths->real :
	    NULL);
}

/* The parent's STAT answer, for a relay GET or STAT. */
static void
relay_on_stat(void *arg, int status, const struct upstream_error *e,
    const struct ph_meta *meta, const struct upstream_paths *paths)
{
	struct store_req *r = arg;
	struct store *s = r->s;
	struct cache_blob *b = NULL;
	char d[PH_MAX_PATH + 2];

	r->ureq = NULL;
	if (status == -ECANCELED || (status == -EREMOTE &&
	    relay_gate(r, paths))) {
		relay_error(r, status, e);
		goto done;
	}
	if (status != 0) {
		/* A cached copy does not say where its path leads. */
		if (status != -EREMOTE && relay_gate(r, NULL) &&
		    !relay_fallback(r))
			relay_error(r, status, e);
		(void)req_deliver(r);
		return;
	}
	if (!relay_gate(r, paths))
		goto done;
	meta_to_stat(meta, &r->res.st);
	r->res.has_digest = meta->has_digest;
	r->res.stale = meta->stale;
	memcpy(r->res.sha256, meta->sha256, PH_SHA256_LEN);
	if (r->op == PH_STAT || meta->ftype != PH_FT_REGULAR) {
		if (r->op == PH_GET)
			res_error(&r->res, PH_ERR_NOT_FILE, "not a regular "
			    "file: %s", ph_path_display(r->rel, d, sizeof(d)));
		goto done;
	}
	if (!meta->has_digest) {
		res_error(&r->res, PH_ERR_INTEGRITY, "upstream sent no "
		    "SHA-256 for %s", ph_path_display(r->rel, d, sizeof(d)));
		goto done;
	}
	if (cache_blob_get(s->cache, meta->sha256, &b) == 0) {
		r->res.blob = b;
		(void)req_deliver(r);
		return;
	}
	relay_fetch(r);
done:
	req_done(r);
}

/*
 * Fetches a relay GET's file (size and digest in r->res, from the parent's
 * META) from the parent into the cache; r->res says how it went.
 */
static void
relay_fetch(struct store_req *r)
{
	uint64_t size = (uint64_t)r->res.st.st_size;
	char d[PH_MAX_PATH + 2];
	struct fill *f;
	int err;

	if ((f = fill_start_upstream(r->s, r->rel, size, r->res.sha256,
	    &err)) == NULL) {
		if (err == -EFBIG)
			res_error(&r->res, PH_ERR_IO, "%s (%" PRIu64 " bytes) "
			    "is larger than this relay's cache (--cache-size) "
			    "and than it streams uncached",
			    ph_path_display(r->rel, d, sizeof(d)), size);
		else if (err == -ENOSPC)
			res_error(&r->res, PH_ERR_IO, "no room to cache %s "
			    "(%" PRIu64 " bytes), and it is more than this "
			    "relay streams uncached now",
			    ph_path_display(r->rel, d, sizeof(d)), size);
		else if (err == -EHOSTDOWN)
			relay_error(r, err, NULL);
		else
			res_error(&r->res, PH_ERR_IO, "cannot cache %s: %s",
			    ph_path_display(r->rel, d, sizeof(d)),
			    strerror(-err));
		return;
	}
	/* Our requester's report goes on to the parent's cache. */
	if (r->reverify && f->ureq != NULL)
		upstream_get_reverify(f->ureq);
	r->res.fill = f;
}

/* Asks the parent for the STAT behind a relay GET or STAT. */
static struct store_req *
relay_stat(struct store_req *r)
{
	int err;

	err = upstream_stat(r->s->upstream, r->rel, relay_on_stat, r,
	    &r->ureq);
	if (err == 0)
		return r;
	if (err != -EHOSTDOWN || (relay_gate(r, NULL) && !relay_fallback(r)))
		relay_error(r, err, NULL);
	return req_deliver(r);
}

static void
relay_on_list(void *arg, int status, const struct upstream_error *e,
    const struct ph_list_reply *page, const struct upstream_paths *paths)
{
	struct store_req *r = arg;

	r->ureq = NULL;
	if (status != 0) {
		relay_error(r, status, e);
		r->list_cb(r->arg, r->res.code, r->res.msg, NULL, paths);
	} else
		r->list_cb(r->arg, PH_OK, "", page, paths);
	r->list_cb = NULL;
	req_free(r);
}

struct store_req *
store_list(struct store *s, const char *rel, uint64_t cursor,
    store_list_cb *cb, void *arg)
{
	struct store_req *r;
	int err;

	if ((r = req_new(s, PH_LIST, rel, arg)) == NULL) {
		cb(arg, PH_ERR_INTERNAL, "out of memory", NULL, NULL);
		return NULL;
	}
	r->list_cb = cb;
	err = upstream_list(s->upstream, rel, cursor, relay_on_list, r,
	    &r->ureq);
	if (err == 0)
		return r;
	relay_error(r, err, NULL);
	cb(arg, r->res.code, r->res.msg, NULL, NULL);
	req_free(r);
	return NULL;
}

/* ---- Entry points ------------------------------------------------------------ */

/* Common start of GET and STAT. */
static struct store_req *
store_resolve(struct store *s, struct repo *repo, uint8_t op,
    const char *rel, bool reverify, store_gate *gate, store_cb *cb,
    void *arg)
{
	struct store_res res;
	struct store_req *r;

	if (s->stopping || (r = req_new(s, op, rel, arg)) == NULL) {
		memset(&res, 0, sizeof(res));
		res.fd = -1;
		if (s->stopping)
			res_error(&res, PH_ERR_SHUTDOWN,
			    "the daemon is stopping");
		else
			res_error(&res, PH_ERR_INTERNAL, "out of memory");
		cb(arg, &res);
		return NULL;
	}
	r->cb = cb;
	r->gate = gate;
	r->reverify = reverify;
	if (s->upstream != NULL)
		return relay_stat(r);
	if (repo == NULL) {
		res_error(&r->res, PH_ERR_UNAVAILABLE,
		    "no repository configured");
		req_done(r);
		return NULL;
	}
	return op == PH_GET ? get_local(r, repo) : stat_local(r, repo);
}

struct store_req *
store_get(struct store *s, struct repo *repo, const char *rel, bool reverify,
    store_gate *gate, store_cb *cb, void *arg)
{
	return store_resolve(s, repo, PH_GET, rel, reverify, gate, cb, arg);
}

struct store_req *
store_stat(struct store *s, struct repo *repo, const char *rel,
    store_gate *gate, store_cb *cb, void *arg)
{
	return store_resolve(s, repo, PH_STAT, rel, false, gate, cb, arg);
}

/* ---- Compression at rest ------------------------------------------------ */

static void
pack_work(uv_work_t *w)
{
	struct pack_job *j = w->data;

	j->status = cache_pack_run(j->p);
}

static void
pack_after(uv_work_t *w, int status)
{
	struct pack_job *j = w->data;
	struct store *s = j->s;
	int r;

	s->packing = false;
	TAILQ_REMOVE(&s->packs, j, link);
	if (status < 0) {
		cache_pack_abort(j->p);
	} else {
		r = cache_pack_finish(j->p, j->status);
		if (r < 0)
			log_debug(s->log, "compressing a cached blob failed: "
			    "%s", strerror(-r));
	}
	free(j);
	pack_next(s);
}

/* Starts the next compression job if none runs. */
static void
pack_next(struct store *s)
{
	struct pack_job *j;

	if (s->packing || s->stopping || (j = TAILQ_FIRST(&s->packs)) == NULL)
		return;
	if (uv_queue_work(s->loop, &j->work, pack_work, pack_after) < 0) {
		TAILQ_REMOVE(&s->packs, j, link);
		cache_pack_abort(j->p);
		free(j);
		return;
	}
	s->packing = true;
}

/* ---- Lifetime ----------------------------------------------------------- */

static void
store_on_sync(uv_timer_t *t)
{
	struct store *s = t->data;

	if (cache_sync(s->cache) < 0)
		log_debug(s->log, "cannot save cache access times");
}

static void
store_on_timer_closed(uv_handle_t *h)
{
	struct store *s = h->data;

	s->timer_open = false;
}

int
store_new(uv_loop_t *loop, struct log *log, struct digest *digest,
    const struct store_config *cfg, struct store **out, char *err,
    size_t errlen)
{
	struct cache_config cc;
	struct upstream_config uc;
	struct store *s;
	char db[4096];
	int r;

	*out = NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->loop = loop;
	s->log = log;
	s->digest = digest;
	LIST_INIT(&s->fills);
	LIST_INIT(&s->reqs);
	LIST_INIT(&s->checks);
	TAILQ_INIT(&s->packs);
	s->cache_disk.fd = s->state_disk.fd = -1;
	if ((r = fsutil_mkdirs(cfg->state_dir, 0750)) < 0) {
		snprintf(err, errlen, "cannot create the state directory %s: "
		    "%s", cfg->state_dir, strerror(-r));
		goto fail;
	}
	snprintf(db, sizeof(db), "%s/%s", cfg->state_dir, STORE_CATALOG_DB);
	memset(&cc, 0, sizeof(cc));
	cc.db_path = db;
	cc.blob_dir = cfg->cache_dir;
	cc.budget = cfg->cache_size;
	if ((r = cache_open(&cc, &s->cache)) < 0) {
		snprintf(err, errlen, "cannot open the cache (%s, catalog %s): "
		    "%s", cfg->cache_dir, db, strerror(-r));
		goto fail;
	}
	if ((r = store_disk_open(&s->cache_disk, "cache disk",
	    cfg->cache_dir)) < 0 || (r = store_disk_open(&s->state_disk,
	    "state directory", cfg->state_dir)) < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (cfg->upstream != NULL) {
		memset(&uc, 0, sizeof(uc));
		uc.endpoint = cfg->upstream;
		/* The fill hashes what it writes and checks END's digest. */
		uc.caller_hashes = true;
		if ((r = upstream_new(loop, &uc, log, &s->upstream)) < 0) {
			snprintf(err, errlen, "bad upstream endpoint '%s': %s",
			    cfg->upstream, r == -EINVAL ? "expected "
			    "vsock:CID:PORT or unix:PATH" : strerror(-r));
			goto fail;
		}
	}
	uv_timer_init(loop, &s->sync_timer);
	s->sync_timer.data = s;
	s->timer_open = true;
	uv_timer_start(&s->sync_timer, store_on_sync, STORE_SYNC_MS,
	    STORE_SYNC_MS);
	uv_unref((uv_handle_t *)&s->sync_timer);
	*out = s;
	return 0;

fail:
	store_disk_close(&s->cache_disk);
	store_disk_close(&s->state_disk);
	cache_close(s->cache);
	free(s);
	return r;
}

void
store_shutdown(struct store *s)
{
	struct fill *f, *next;
	struct pack_job *j, *jn;

	if (s == NULL || s->stopping)
		return;
	s->stopping = true;
	/* Relay fills end through their upstream callbacks (-ECANCELED). */
	for (f = LIST_FIRST(&s->fills); f != NULL; f = next) {
		next = LIST_NEXT(f, link);
		atomic_store(&f->abort, true);
	}
	for (j = TAILQ_FIRST(&s->packs); j != NULL; j = jn) {
		jn = TAILQ_NEXT(j, link);
		if (s->packing && j == TAILQ_FIRST(&s->packs))
			continue;	/* running: it finishes on its own */
		TAILQ_REMOVE(&s->packs, j, link);
		cache_pack_abort(j->p);
		free(j);
	}
	upstream_free(s->upstream);
	s->upstream = NULL;
	if (s->timer_open)
		uv_close((uv_handle_t *)&s->sync_timer, store_on_timer_closed);
}

void
store_free(struct store *s)
{
	struct store_req *r;

	if (s == NULL)
		return;
	while ((r = LIST_FIRST(&s->reqs)) != NULL)
		req_free(r);
	(void)cache_sync(s->cache);
	cache_close(s->cache);
	store_disk_close(&s->cache_disk);
	store_disk_close(&s->state_disk);
	free(s);
}

struct cache *
store_cache(struct store *s)
{
	return s->cache;
}

struct upstream *
store_upstream(struct store *s)
{
	return s->upstream;
}

uint64_t
store_repo_reads(const struct store *s)
{
	return s->repo_reads;
}

/* ---- For the control commands (ctl_cache.c) ------------------------------ */

void
store_counters(const struct store *s, struct store_counters *out)
{
	memset(out, 0, sizeof(*out));
	out->repo_reads = s->repo_reads;
	out->upstream_fetches = s->upstream_fetches;
	out->fills_done = s->fills_done;
	out->fill_failures = s->fill_failures;
	out->fill_joins = s->fill_joins;
	out->uncached = s->uncached;
	out->fills_in_progress = s->nfills;
}

void
store_catalog_record(struct store *s, const char *rel, const struct stat *st,
    const uint8_t sha256[PH_SHA256_LEN])
{
	cat_record(s, rel, st, sha256);
}

int
store_catalog_forget(struct store *s, const char *rel)
{
	return cache_cat_del(s->cache, rel);
}
