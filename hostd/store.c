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
/* A full disk makes fills pointless for a while: serve uncached. */
#define STORE_FULL_BACKOFF_MS	30000
#define STORE_CATALOG_DB	"cache.db"
/* Readers of a relay fill are woken every this many new bytes. */
#define STORE_NOTIFY_STEP	(256u * 1024)

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
	char		*rel;
	store_cb	*cb;
	store_list_cb	*list_cb;
	void		*arg;
	struct store_res res;
	struct digest_wait *dw;
	struct upstream_req *ureq;
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

/* The client's view of a relative path: "/a/b", or "/" for the root. */
static const char *
store_disp(const char *rel, char *buf, size_t cap)
{
	snprintf(buf, cap, "/%s", strcmp(rel, ".") == 0 ? "" : rel);
	return buf;
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

/* True if the catalog entry still describes the file st. */
static bool
cat_matches(const struct cache_cat *e, const struct stat *st)
{
	return e->size == (uint64_t)st->st_size &&
	    e->mtime_ns == repo_ns(&st->st_mtim) &&
	    e->ctime_ns == repo_ns(&st->st_ctim) &&
	    e->ino == (uint64_t)st->st_ino && e->dev == (uint64_t)st->st_dev;
}

/* Records the digest of the repository file st under rel. */
static void
cat_record(struct store *s, const char *rel, const struct stat *st,
    const uint8_t *sha256)
{
	struct cache_cat e;

	memset(&e, 0, sizeof(e));
	e.size = (uint64_t)st->st_size;
	e.mtime_ns = repo_ns(&st->st_mtim);
	e.ctime_ns = repo_ns(&st->st_ctim);
	e.ino = (uint64_t)st->st_ino;
	e.dev = (uint64_t)st->st_dev;
	e.mode = (uint32_t)st->st_mode;
	memcpy(e.sha256, sha256, PH_SHA256_LEN);
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
	store_res_release(&r->res);
	free(r->rel);
	free(r);
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

/* A finished fill: its blob goes into the index, readers hear the end. */
static void
fill_complete(struct fill *f)
{
	struct store *s = f->s;
	struct cache_blob *b = NULL;
	char hex[PH_SHA256_LEN * 2 + 1];
	int err;

	err = cache_fill_commit(f->cf, &b);
	f->cf = NULL;
	if (err < 0) {
		fill_fail(f, PH_ERR_IO, "cannot store the file in the cache: "
		    "%s", strerror(-err));
		return;
	}
	f->state = FILL_DONE;
	s->fills_done++;
	ph_sha256_hex(f->sha256, hex);
	log_debug(s->log, "cached /%s: %" PRIu64 " bytes, sha256:%s", f->rel,
	    f->size, hex);
	fill_unlist(f);
	pack_schedule(s, b);
	cache_blob_put(b);
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
		s->full_until_ms = uv_now(s->loop) + STORE_FULL_BACKOFF_MS;
		fill_fail(f, PH_ERR_IO, "the cache disk is full; try again "
		    "(the file is served uncached meanwhile)");
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

/*
 * A new fill of size bytes under key, listed for single flight (the table
 * holds no reference: a fill leaves it when it ends or is freed). Returns
 * it with one reference for the caller, or NULL with *err set (-EFBIG:
 * larger than the cache; -ENOSPC: no room; else a file or memory error).
 */
static struct fill *
fill_new(struct store *s, const char *key, const char *rel, uint64_t size,
    const uint8_t *expect, int *err)
{
	struct fill *f;

	*err = 0;
	if (uv_now(s->loop) < s->full_until_ms) {
		*err = -ENOSPC;
		return NULL;
	}
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
	if ((*err = cache_fill_begin(s->cache, size, &f->cf)) < 0) {
		if (*err == -ENOSPC)
			s->full_until_ms = uv_now(s->loop) + 1000;
		goto fail;
	}
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
	if ((f = fill_new(s, key, rel, (uint64_t)st->st_size, expect,
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
	if (meta->size != f->size || (meta->has_digest && f->has_expect &&
	    memcmp(meta->sha256, f->expect, PH_SHA256_LEN) != 0)) {
		f->write_err = -ESTALE;
		upstream_forget(f->s->upstream);
	}
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
	if ((err = cache_fill_write(f->cf, buf, len)) < 0) {
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
		f->s->full_until_ms = uv_now(f->s->loop) +
		    STORE_FULL_BACKOFF_MS;
		fill_fail(f, PH_ERR_IO, "the cache disk is full");
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
	if ((f = fill_new(s, key, rel, size, sha256, err)) == NULL)
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

/* GET from the repository: cache hit, fill, or the file itself. */
static struct store_req *
get_local(struct store_req *r, struct repo *repo)
{
	struct store *s = r->s;
	struct cache_cat e;
	struct cache_blob *b = NULL;
	struct fill *f;
	int err;

	if ((err = repo_open_file(repo, r->rel, &r->res.fd, &r->res.st)) < 0) {
		r->res.code = PH_ERR_IO;
		r->res.fs_err = err;
		goto done;
	}
	if (cache_cat_get(s->cache, r->rel, &e) == 0 &&
	    cat_matches(&e, &r->res.st)) {
		r->res.has_digest = true;
		memcpy(r->res.sha256, e.sha256, PH_SHA256_LEN);
		if (cache_blob_get(s->cache, e.sha256, &b) == 0) {
			close(r->res.fd);
			r->res.fd = -1;
			r->res.blob = b;
			goto done;
		}
	} else
		s->cat_misses++;
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
	struct cache_cat e;
	int err, fd;

	if ((err = repo_stat(repo, r->rel, &r->res.st)) < 0) {
		r->res.code = PH_ERR_IO;
		r->res.fs_err = err;
		goto done;
	}
	if (!S_ISREG(r->res.st.st_mode))
		goto done;
	if (cache_cat_get(s->cache, r->rel, &e) == 0 &&
	    cat_matches(&e, &r->res.st)) {
		r->res.has_digest = true;
		memcpy(r->res.sha256, e.sha256, PH_SHA256_LEN);
		goto done;
	}
	/* An unreadable file still has metadata, only no digest. */
	if (repo_open_file(repo, r->rel, &fd, &r->res.st) < 0)
		goto done;
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
		    store_disp(r->rel, d, sizeof(d)));
}

/* The parent's STAT answer, for a relay GET or STAT. */
static void
relay_on_stat(void *arg, int status, const struct upstream_error *e,
    const struct ph_meta *meta)
{
	struct store_req *r = arg;
	struct store *s = r->s;
	struct cache_blob *b = NULL;
	struct fill *f;
	char d[PH_MAX_PATH + 2];
	int err;

	r->ureq = NULL;
	if (status != 0) {
		if (status == -EREMOTE || status == -ECANCELED ||
		    !relay_fallback(r))
			relay_error(r, status, e);
		goto done;
	}
	meta_to_stat(meta, &r->res.st);
	r->res.has_digest = meta->has_digest;
	memcpy(r->res.sha256, meta->sha256, PH_SHA256_LEN);
	if (r->op == PH_STAT || meta->ftype != PH_FT_REGULAR) {
		if (r->op == PH_GET)
			res_error(&r->res, PH_ERR_NOT_FILE, "not a regular "
			    "file: %s", store_disp(r->rel, d, sizeof(d)));
		goto done;
	}
	if (!meta->has_digest) {
		res_error(&r->res, PH_ERR_INTEGRITY, "upstream sent no "
		    "SHA-256 for %s", store_disp(r->rel, d, sizeof(d)));
		goto done;
	}
	if (cache_blob_get(s->cache, meta->sha256, &b) == 0) {
		r->res.blob = b;
		goto done;
	}
	if ((f = fill_start_upstream(s, r->rel, meta->size, meta->sha256,
	    &err)) == NULL) {
		if (err == -EFBIG)
			res_error(&r->res, PH_ERR_IO, "%s (%" PRIu64 " bytes) "
			    "is larger than this relay's cache (--cache-size)",
			    store_disp(r->rel, d, sizeof(d)), meta->size);
		else if (err == -EHOSTDOWN)
			relay_error(r, err, NULL);
		else
			res_error(&r->res, PH_ERR_IO, "cannot cache %s: %s",
			    store_disp(r->rel, d, sizeof(d)), strerror(-err));
		goto done;
	}
	r->res.fill = f;
done:
	req_done(r);
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
	if (err != -EHOSTDOWN || !relay_fallback(r))
		relay_error(r, err, NULL);
	req_done(r);
	return NULL;
}

static void
relay_on_list(void *arg, int status, const struct upstream_error *e,
    const struct ph_list_reply *page)
{
	struct store_req *r = arg;

	r->ureq = NULL;
	if (status != 0) {
		relay_error(r, status, e);
		r->list_cb(r->arg, r->res.code, r->res.msg, NULL);
	} else
		r->list_cb(r->arg, PH_OK, "", page);
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
		cb(arg, PH_ERR_INTERNAL, "out of memory", NULL);
		return NULL;
	}
	r->list_cb = cb;
	err = upstream_list(s->upstream, rel, cursor, relay_on_list, r,
	    &r->ureq);
	if (err == 0)
		return r;
	relay_error(r, err, NULL);
	cb(arg, r->res.code, r->res.msg, NULL);
	req_free(r);
	return NULL;
}

/* ---- Entry points ------------------------------------------------------------ */

/* Common start of GET and STAT. */
static struct store_req *
store_resolve(struct store *s, struct repo *repo, uint8_t op,
    const char *rel, store_cb *cb, void *arg)
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
store_get(struct store *s, struct repo *repo, const char *rel, store_cb *cb,
    void *arg)
{
	return store_resolve(s, repo, PH_GET, rel, cb, arg);
}

struct store_req *
store_stat(struct store *s, struct repo *repo, const char *rel, store_cb *cb,
    void *arg)
{
	return store_resolve(s, repo, PH_STAT, rel, cb, arg);
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
	TAILQ_INIT(&s->packs);
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

bool
store_catalog_matches(const struct cache_cat *e, const struct stat *st)
{
	return cat_matches(e, st);
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
