/*
 * store.c: resolving requests to the cache, a fill, or the repository.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
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
#include "store_fill.h"
#include "store_impl.h"
#include "upstream.h"

/* Access times reach the catalog database this often. */
#define STORE_SYNC_MS		5000
/* Smaller blobs are not worth compressing at rest. */
#define STORE_PACK_MIN		(64u * 1024)
#define STORE_CATALOG_DB	"cache.db"
/* A blob that passed a client-reported check is not re-read for so long. */
#define STORE_CHECKED_MS	30000

struct store_pack_job {
	TAILQ_ENTRY(store_pack_job) link;
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
	struct store_check *check;	/* the re-hash it waits for */
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
struct store_check {
	LIST_ENTRY(store_check) link;	/* in s->checks */
	struct store	*s;
	struct cache_blob *b;
	LIST_HEAD(, store_req) waiters;
	uv_work_t	 work;
	int		 status;
};

/* ---- Small helpers ----------------------------------------------------- */

/* Sets res to an error with a formatted message. */
static void
store_res_error(struct store_res *res, enum ph_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
store_res_error(struct store_res *res, enum ph_err code, const char *fmt, ...)
{
	va_list ap;

	res->code = code;
	va_start(ap, fmt);
	vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
	va_end(ap);
}

/* ---- Room on the disks ---------------------------------------------------- */

/* Bytes free on d's file system for us, or UINT64_MAX if it cannot tell. */
uint64_t
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
bool
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
void
store_disk_refused(struct store *s, struct store_disk *d)
{
	d->refused = store_disk_free(d);
	store_disk_full(s, d, d->refused, 0);
}

/* A blob was stored: both disks took their writes. */
void
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
store_src_init(struct store_src *src)
{
	memset(src, 0, sizeof(*src));
	src->fd = -1;
}

void
store_src_move(struct store_src *dst, struct store_src *src)
{
	store_src_release(dst);
	*dst = *src;
	src->fd = -1;
	src->blob = NULL;
	src->fill = NULL;
}

void
store_src_release(struct store_src *src)
{
	if (src == NULL)
		return;
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
	cache_blob_put(src->blob);
	src->blob = NULL;
	store_fill_unref(src->fill);
	src->fill = NULL;
}

/* Records the digest of the repository file st under rel. */
void
store_catalog_record(struct store *s, const char *rel, const struct stat *st,
    const uint8_t sha256[PH_SHA256_LEN])
{
	struct cache_cat e;

	cache_db_cat_from_stat(&e, st, sha256);
	if (cache_db_cat_put(s->cache, rel, &e) < 0)
		log_debug(s->log, "cannot record the digest of /%s", rel);
}

/* A stat built from a catalog entry (relay mode keeps no inode). */
static void
store_cat_to_stat(const struct cache_cat *e, struct stat *st)
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
store_meta_to_stat(const struct ph_meta *m, struct stat *st)
{
	struct cache_cat e;

	memset(&e, 0, sizeof(e));
	e.size = m->size;
	e.mtime_ns = m->mtime_ns;
	e.mode = (m->ftype == PH_FT_REGULAR ? S_IFREG : m->ftype ==
	    PH_FT_DIR ? S_IFDIR : S_IFIFO) | (m->mode & 07777);
	store_cat_to_stat(&e, st);
}

/* ---- Requests --------------------------------------------------------- */

/* A new request, linked so shutdown can find it. */
static struct store_req *
store_req_new(struct store *s, uint8_t op, const char *rel, void *arg)
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
	store_src_init(&r->res.src);
	LIST_INSERT_HEAD(&s->reqs, r, link);
	return r;
}

/* Unlinks and frees a request, releasing what its result still holds. */
static void
store_req_free(struct store_req *r)
{
	if (r == NULL)
		return;
	LIST_REMOVE(r, link);
	digest_cancel(r->dw);
	upstream_cancel(r->ureq);
	if (r->check != NULL)
		LIST_REMOVE(r, check_link);
	store_src_release(&r->res.src);
	free(r->rel);
	free(r);
}

/*
 * Asks the request's gate about what it really names (NULL: unknown);
 * false when it refused, with the request's result set to say so.
 */
static bool
store_req_gate(struct store_req *r, const char *real)
{
	char msg[sizeof(r->res.msg)];

	if (r->gate == NULL || r->gate(r->arg, real, msg, sizeof(msg)))
		return true;
	store_src_release(&r->res.src);
	r->res.fs_err = 0;
	r->res.src.has_digest = false;
	store_res_error(&r->res, PH_ERR_FORBIDDEN, "%s", msg);
	return false;
}

/* Delivers the result and frees the request. */
static void
store_req_done(struct store_req *r)
{
	r->dw = NULL;
	r->ureq = NULL;
	if (r->cb != NULL)
		r->cb(r->arg, &r->res);
	store_req_free(r);
}

void
store_cancel(struct store_req *r)
{
	store_req_free(r);
}

/* Queues the blob for compression at rest, one job at a time. */
static void	store_pack_next(struct store *s);

void
store_pack_schedule(struct store *s, struct cache_blob *b)
{
	struct cache_pack *p = NULL;
	struct store_pack_job *j;

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
	store_pack_next(s);
}

/* ---- Local GET and STAT -------------------------------------------------- */

/* A hashing pass ended for a request waiting on the digest module. */
static void
store_req_digest_done(void *arg, int status, const uint8_t *sha256)
{
	struct store_req *r = arg;

	r->dw = NULL;
	if (status == 0) {
		r->res.src.has_digest = true;
		memcpy(r->res.src.sha256, sha256, PH_SHA256_LEN);
		store_catalog_record(r->s, r->rel, &r->res.src.st, sha256);
	} else if (status == -ESTALE)
		store_res_error(&r->res, PH_ERR_CHANGED,
		    "the file changed while it was being hashed");
	else if (status == -ECANCELED)
		store_res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is "
		    "stopping");
	else {
		r->res.code = PH_ERR_IO;
		r->res.fs_err = status;
	}
	if (r->res.code != PH_OK || r->op == PH_STAT) {
		if (r->res.src.fd >= 0)
			close(r->res.src.fd);
		r->res.src.fd = -1;
	}
	store_req_done(r);
}

/*
 * Gets the digest of r->res.src.fd the slow way (memo, else a pass on the
 * pool), then finishes the request. Returns r, or NULL if it is done.
 */
static struct store_req *
store_req_hash(struct store_req *r)
{
	struct store *s = r->s;
	uint8_t sha256[PH_SHA256_LEN];
	int err;

	if (digest_lookup(s->digest, &r->res.src.st, sha256)) {
		store_req_digest_done(r, 0, sha256);
		return NULL;
	}
	s->repo_reads++;
	err = digest_start(s->digest, r->res.src.fd, &r->res.src.st,
	    store_req_digest_done, r, &r->dw);
	if (err == 0)
		return r;
	if (err == -ECANCELED)
		store_res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is "
		    "stopping");
	else
		store_res_error(&r->res, PH_ERR_INTERNAL, "cannot hash: %s",
		    strerror(-err));
	store_src_release(&r->res.src);
	store_req_done(r);
	return NULL;
}

/* ---- Re-checking a blob a client reported ------------------------------ */

static struct store_req *store_get_local_miss(struct store_req *r);
static void	store_relay_fetch(struct store_req *r);

/*
 * The reported blob turned out bad and is gone: the GET goes on as a miss,
 * from the repository file still open, or from the parent. A relay whose
 * parent is down has nothing else to offer. Returns r while that goes on,
 * NULL once the result was delivered.
 */
static struct store_req *
store_check_bad(struct store_req *r)
{
	char d[PH_MAX_PATH + 2];

	r->reverified = true;
	cache_blob_put(r->res.src.blob);
	r->res.src.blob = NULL;
	if (r->s->stopping) {
		store_res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is "
		    "stopping");
		store_src_release(&r->res.src);
	} else if (r->res.src.fd >= 0)
		return store_get_local_miss(r);
	else if (r->fallback)
		store_res_error(&r->res, PH_ERR_UNAVAILABLE, "upstream "
		    "unavailable and the cached copy of %s is damaged",
		    ph_path_display(r->rel, d, sizeof(d)));
	else
		store_relay_fetch(r);
	store_req_done(r);
	return NULL;
}

/* True if the blob with this digest passed a check a moment ago. */
static bool
store_check_recent(struct store *s, const uint8_t *sha256)
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
store_check_after(uv_work_t *w, int status)
{
	struct store_check *k = w->data;
	struct store *s = k->s;
	struct store_req *r;
	char hex[PH_SHA256_LEN * 2 + 1];
	bool ok = status == 0 && k->status == 0;

	LIST_REMOVE(k, link);
	ph_util_sha256_hex(cache_blob_sha256(k->b), hex);
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
			(void)store_check_bad(r);
			continue;
		}
		if (r->res.src.fd >= 0)
			close(r->res.src.fd);
		r->res.src.fd = -1;
		store_req_done(r);
	}
	cache_blob_put(k->b);
	free(k);
}

/* Worker: the blob's whole content against its digest. */
static void
store_check_work(uv_work_t *w)
{
	struct store_check *k = w->data;

	k->status = cache_pack_verify(k->b);
}

/*
 * Starts (or joins) the check of r's blob. Returns false when it cannot,
 * for want of memory: the blob is then served unchecked.
 */
static bool
store_check_start(struct store_req *r)
{
	struct store *s = r->s;
	const uint8_t *sha256 = cache_blob_sha256(r->res.src.blob);
	struct store_check *k;

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
	    uv_queue_work(s->loop, &k->work, store_check_work,
	    store_check_after) < 0) {
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
 * until then (res.src.fd beside res.src.blob), in case the blob is bad.
 */
static struct store_req *
store_req_deliver(struct store_req *r)
{
	const uint8_t *sha256;

	if (r->reverify && !r->reverified && r->res.code == PH_OK &&
	    r->res.src.blob != NULL) {
		sha256 = cache_blob_sha256(r->res.src.blob);
		/* Removed since we pinned it: found bad by someone else. */
		if (!cache_blob_has(r->s->cache, sha256))
			return store_check_bad(r);
		if (!store_check_recent(r->s, sha256) && store_check_start(r))
			return r;
	}
	if (r->res.src.blob != NULL && r->res.src.fd >= 0) {
		close(r->res.src.fd);
		r->res.src.fd = -1;
	}
	store_req_done(r);
	return NULL;
}

/* GET from the repository: cache hit, fill, or the file itself. */
static struct store_req *
store_get_local(struct store_req *r, struct repo *repo)
{
	struct store *s = r->s;
	struct cache_cat e;
	struct cache_blob *b = NULL;
	int err;

	err = repo_open_file(repo, r->rel, &r->res.src.fd, &r->res.src.st,
	    r->res.real);
	/* Refused or not found, a place the peer may not see is refused. */
	if (!store_req_gate(r, r->res.real) || err < 0) {
		if (err < 0 && r->res.code == PH_OK) {
			r->res.code = PH_ERR_IO;
			r->res.fs_err = err;
		}
		store_req_done(r);
		return NULL;
	}
	if (cache_db_cat_get(s->cache, r->rel, &e) == 0 &&
	    cache_db_cat_matches(&e, &r->res.src.st)) {
		r->res.src.has_digest = true;
		memcpy(r->res.src.sha256, e.sha256, PH_SHA256_LEN);
		if (cache_blob_get(s->cache, e.sha256, &b) == 0) {
			r->res.src.blob = b;
			return store_req_deliver(r);
		}
	} else
		s->cat_misses++;
	return store_get_local_miss(r);
}

/* A local GET the cache cannot serve: a fill, or the file itself. */
static struct store_req *
store_get_local_miss(struct store_req *r)
{
	struct store *s = r->s;
	struct store_fill *f;
	int err;

	f = store_fill_start_local(s, r->rel, r->res.src.fd, &r->res.src.st,
	    r->res.src.has_digest ? r->res.src.sha256 : NULL, &err);
	if (f != NULL) {
		close(r->res.src.fd);
		r->res.src.fd = -1;
		r->res.src.fill = f;
		/* A fill that already ended tells META its digest. */
		if (store_fill_status(f, r->res.src.sha256, &(enum ph_err){ 0 },
		    &(const char *){ NULL }) == 1)
			r->res.src.has_digest = true;
		goto done;
	}
	/* Too large, or no room: the file itself, uncached. */
	s->uncached++;
	if (r->res.src.has_digest) {
		s->repo_reads++;
		goto done;
	}
	return store_req_hash(r);

done:
	store_req_done(r);
	return NULL;
}

/* STAT in the repository; regular files get their digest. */
static struct store_req *
store_stat_local(struct store_req *r, struct repo *repo)
{
	struct store *s = r->s;
	char real[PH_MAX_PATH + 1];
	struct cache_cat e;
	struct stat st;
	int err, fd;

	err = repo_stat(repo, r->rel, &r->res.src.st, r->res.real);
	if (!store_req_gate(r, r->res.real))
		goto done;
	if (err < 0) {
		r->res.code = PH_ERR_IO;
		r->res.fs_err = err;
		goto done;
	}
	if (!S_ISREG(r->res.src.st.st_mode))
		goto done;
	if (cache_db_cat_get(s->cache, r->rel, &e) == 0 &&
	    cache_db_cat_matches(&e, &r->res.src.st)) {
		r->res.src.has_digest = true;
		memcpy(r->res.src.sha256, e.sha256, PH_SHA256_LEN);
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
	r->res.src.st = st;
	r->res.src.fd = fd;
	return store_req_hash(r);

done:
	store_req_done(r);
	return NULL;
}

/* ---- Relay GET, STAT and LIST --------------------------------------------- */

/* The parent cannot answer: a cached copy of rel, if there is one. */
static bool
store_relay_fallback(struct store_req *r)
{
	struct store *s = r->s;
	struct cache_cat e;
	struct cache_blob *b = NULL;

	if (cache_db_cat_get(s->cache, r->rel, &e) < 0)
		return false;
	if (r->op == PH_GET) {
		if (cache_blob_get(s->cache, e.sha256, &b) < 0)
			return false;
		r->res.src.blob = b;
	} else if (!cache_blob_has(s->cache, e.sha256))
		return false;
	store_cat_to_stat(&e, &r->res.src.st);
	/* Served, but nobody could say it is still the parent's file. */
	r->res.stale = true;
	r->fallback = true;
	r->res.src.has_digest = true;
	memcpy(r->res.src.sha256, e.sha256, PH_SHA256_LEN);
	r->res.code = PH_OK;
	r->res.msg[0] = '\0';
	return true;
}

/* Maps an upstream failure to the request's error. */
static void
store_relay_error(struct store_req *r, int status,
    const struct upstream_error *e)
{
	char d[PH_MAX_PATH + 2];

	if (status == -EREMOTE)
		store_res_error(&r->res, (enum ph_err)e->code, "%s",
		    e->message);
	else if (status == -ECANCELED)
		store_res_error(&r->res, PH_ERR_SHUTDOWN, "the daemon is "
		    "stopping");
	else
		store_res_error(&r->res, PH_ERR_UNAVAILABLE, "upstream "
		    "unavailable (%s) and no cached copy of %s",
		    status == -EHOSTDOWN ? "cannot reach it" :
		    status == -ECONNRESET ? "connection lost" :
		    status == -ETIMEDOUT ? "no answer" : status == -EBADMSG ?
		    "protocol error" : strerror(-status),
		    ph_path_display(r->rel, d, sizeof(d)));
}

/*
 * Asks the gate about what the parent says the path leads to: the real
 * path it reported, or NULL when it reports none (an old parent, or no
 * parent at all: a cached copy). A parent that failed before it resolved
 * the path has nothing to check. False when refused.
 */
static bool
store_relay_gate(struct store_req *r, const struct upstream_paths *paths)
{
	if (paths != NULL && paths->known && paths->real[0] == '\0')
		return true;
	if (paths != NULL && paths->known)
		snprintf(r->res.real, sizeof(r->res.real), "%s", paths->real);
	return store_req_gate(r, paths != NULL && paths->known ? paths->real :
	    NULL);
}

/* The parent's STAT answer, for a relay GET or STAT. */
static void
store_relay_on_stat(void *arg, int status, const struct upstream_error *e,
    const struct ph_meta *meta, const struct upstream_paths *paths)
{
	struct store_req *r = arg;
	struct store *s = r->s;
	struct cache_blob *b = NULL;
	char d[PH_MAX_PATH + 2];

	r->ureq = NULL;
	if (status == -ECANCELED || (status == -EREMOTE &&
	    store_relay_gate(r, paths))) {
		store_relay_error(r, status, e);
		goto done;
	}
	if (status != 0) {
		/* A cached copy does not say where its path leads. */
		if (status != -EREMOTE && store_relay_gate(r, NULL) &&
		    !store_relay_fallback(r))
			store_relay_error(r, status, e);
		(void)store_req_deliver(r);
		return;
	}
	if (!store_relay_gate(r, paths))
		goto done;
	store_meta_to_stat(meta, &r->res.src.st);
	r->res.src.has_digest = meta->has_digest;
	r->res.stale = meta->stale;
	memcpy(r->res.src.sha256, meta->sha256, PH_SHA256_LEN);
	if (r->op == PH_STAT || meta->ftype != PH_FT_REGULAR) {
		if (r->op == PH_GET)
			store_res_error(&r->res, PH_ERR_NOT_FILE, "not a "
			    "regular file: %s", ph_path_display(r->rel, d,
			    sizeof(d)));
		goto done;
	}
	if (!meta->has_digest) {
		store_res_error(&r->res, PH_ERR_INTEGRITY, "upstream sent no "
		    "SHA-256 for %s", ph_path_display(r->rel, d, sizeof(d)));
		goto done;
	}
	if (cache_blob_get(s->cache, meta->sha256, &b) == 0) {
		r->res.src.blob = b;
		(void)store_req_deliver(r);
		return;
	}
	store_relay_fetch(r);
done:
	store_req_done(r);
}

/*
 * Fetches a relay GET's file (size and digest in r->res, from the parent's
 * META) from the parent into the cache; r->res says how it went.
 */
static void
store_relay_fetch(struct store_req *r)
{
	uint64_t size = (uint64_t)r->res.src.st.st_size;
	char d[PH_MAX_PATH + 2];
	struct store_fill *f;
	int err;

	if ((f = store_fill_start_upstream(r->s, r->rel, size,
	    r->res.src.sha256, &err)) == NULL) {
		if (err == -EFBIG)
			store_res_error(&r->res, PH_ERR_IO, "%s (%" PRIu64 " "
			    "bytes) is larger than this relay's cache "
			    "(--cache-size) and than it streams uncached",
			    ph_path_display(r->rel, d, sizeof(d)), size);
		else if (err == -ENOSPC)
			store_res_error(&r->res, PH_ERR_IO, "no room to cache "
			    "%s (%" PRIu64 " bytes), and it is more than this "
			    "relay streams uncached now",
			    ph_path_display(r->rel, d, sizeof(d)), size);
		else if (err == -EHOSTDOWN)
			store_relay_error(r, err, NULL);
		else
			store_res_error(&r->res, PH_ERR_IO, "cannot cache %s: "
			    "%s", ph_path_display(r->rel, d, sizeof(d)),
			    strerror(-err));
		return;
	}
	/* Our requester's report goes on to the parent's cache. */
	if (r->reverify)
		store_fill_reverify(f);
	r->res.src.fill = f;
}

/* Asks the parent for the STAT behind a relay GET or STAT. */
static struct store_req *
store_relay_stat(struct store_req *r)
{
	int err;

	err = upstream_stat(r->s->upstream, r->rel, store_relay_on_stat, r,
	    &r->ureq);
	if (err == 0)
		return r;
	if (err != -EHOSTDOWN || (store_relay_gate(r, NULL) &&
	    !store_relay_fallback(r)))
		store_relay_error(r, err, NULL);
	return store_req_deliver(r);
}

static void
store_relay_on_list(void *arg, int status, const struct upstream_error *e,
    const struct ph_list_reply *page, const struct upstream_paths *paths)
{
	struct store_req *r = arg;

	r->ureq = NULL;
	if (status != 0) {
		store_relay_error(r, status, e);
		r->list_cb(r->arg, r->res.code, r->res.msg, NULL, paths);
	} else
		r->list_cb(r->arg, PH_OK, "", page, paths);
	r->list_cb = NULL;
	store_req_free(r);
}

struct store_req *
store_list(struct store *s, const char *rel, uint64_t cursor,
    store_list_cb *cb, void *arg)
{
	struct store_req *r;
	int err;

	if ((r = store_req_new(s, PH_LIST, rel, arg)) == NULL) {
		cb(arg, PH_ERR_INTERNAL, "out of memory", NULL, NULL);
		return NULL;
	}
	r->list_cb = cb;
	err = upstream_list(s->upstream, rel, cursor, store_relay_on_list, r,
	    &r->ureq);
	if (err == 0)
		return r;
	store_relay_error(r, err, NULL);
	cb(arg, r->res.code, r->res.msg, NULL, NULL);
	store_req_free(r);
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

	if (s->stopping || (r = store_req_new(s, op, rel, arg)) == NULL) {
		memset(&res, 0, sizeof(res));
		store_src_init(&res.src);
		if (s->stopping)
			store_res_error(&res, PH_ERR_SHUTDOWN,
			    "the daemon is stopping");
		else
			store_res_error(&res, PH_ERR_INTERNAL, "out of memory");
		cb(arg, &res);
		return NULL;
	}
	r->cb = cb;
	r->gate = gate;
	r->reverify = reverify;
	if (s->upstream != NULL)
		return store_relay_stat(r);
	if (repo == NULL) {
		store_res_error(&r->res, PH_ERR_UNAVAILABLE,
		    "no repository configured");
		store_req_done(r);
		return NULL;
	}
	return op == PH_GET ? store_get_local(r, repo) : store_stat_local(r,
	    repo);
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
store_pack_work(uv_work_t *w)
{
	struct store_pack_job *j = w->data;

	j->status = cache_pack_run(j->p);
}

static void
store_pack_after(uv_work_t *w, int status)
{
	struct store_pack_job *j = w->data;
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
	store_pack_next(s);
}

/* Starts the next compression job if none runs. */
static void
store_pack_next(struct store *s)
{
	struct store_pack_job *j;

	if (s->packing || s->stopping || (j = TAILQ_FIRST(&s->packs)) == NULL)
		return;
	if (uv_queue_work(s->loop, &j->work, store_pack_work,
	    store_pack_after) < 0) {
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
	struct store_pack_job *j, *jn;

	if (s == NULL || s->stopping)
		return;
	s->stopping = true;
	store_fill_abort_all(s);
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
		store_req_free(r);
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

int
store_catalog_forget(struct store *s, const char *rel)
{
	return cache_db_cat_del(s->cache, rel);
}
