/*
 * ctl_cache.c: the control commands of the cache and the catalog:
 * `cache stats|ls|clear|verify`, `repo scan|verify`.
 *
 * verify and scan read whole files, so they run on the thread pool and
 * reply later; the cache itself is only touched on the loop thread, before
 * (pinning blobs, copying the catalog) and after (recording results, through
 * the store's catalog functions).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "ctl.h"
#include "log.h"
#include "repo.h"
#include "server.h"
#include "store.h"
#include "upstream.h"

/* Deeper trees are not walked: a repository is not a file system dump. */
#define CTL_CACHE_SCAN_DEPTH		64
#define CTL_CACHE_READ		(1024 * 1024)
/* Blobs pinned at once by `cache verify` (each pin is an open file). */
#define CTL_CACHE_BATCH		32

enum ctl_cache_kind {
	CTL_CACHE_VERIFY,
	CTL_CACHE_REPO_SCAN,
	CTL_CACHE_REPO_VERIFY,
};

/* A file the walk found, and what hashing it said. */
struct ctl_cache_item {
	char		*rel;
	struct stat	 st;
	bool		 known;		/* the catalog entry matched st */
	uint8_t		 cat_sha[PH_SHA256_LEN];
	int		 status;	/* 0, or the errno of reading it */
	bool		 hashed;
	uint8_t		 sha256[PH_SHA256_LEN];
};

struct ctl_cache_cat {
	char		*path;
	struct cache_cat e;
};

struct ctl_cache_job {
	struct ctl_conn	*cc;		/* to answer */
	struct store	*s;
	struct cache	*cache;
	uv_loop_t	*loop;
	struct log	*log;
	enum ctl_cache_kind kind;
	bool		 cancelled;
	atomic_bool	 abort;
	uv_work_t	 work;
	/* cache verify */
	struct cache_blob **blobs;
	int		*blob_status;
	size_t		 nblobs;	/* in the batch being verified */
	uint8_t		(*digs)[PH_SHA256_LEN];	/* every blob, at the start */
	size_t		 ndigs;
	size_t		 capdigs;
	size_t		 next;		/* first digest not yet pinned */
	size_t		 verified;
	uint8_t		(*bad)[PH_SHA256_LEN];	/* corrupt ones found */
	size_t		 nbad;
	/* repo scan / verify */
	char		*root;
	struct ctl_cache_cat *cat;
	size_t		 ncat;
	struct ctl_cache_item *items;
	size_t		 nitems;
	size_t		 capitems;
	int		 walk_err;
	uint64_t	 skipped;	/* not regular files, too deep, ... */
};

/* ---- Replies on the loop ------------------------------------------------ */

/* `cache stats`: the cache library's numbers and the store's. */
void
ctl_cache_stats(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct store *s = server_store(ctl_server(cc));
	struct upstream *u = store_upstream(s);
	struct store_counters sc;
	struct cache_stats st;
	uint64_t lookups;
	double ratio;

	(void)argc;
	(void)argv;
	cache_stats(store_cache(s), &st);
	store_counters(s, &sc);
	lookups = st.hits + st.misses;
	ratio = lookups > 0 ? (double)st.hits / (double)lookups : 0.0;
	ctl_reply(cc, PH_OK, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
	    "s:o, s:f, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o, s:o, "
	    "s:o, s:b}",
	    "entries", ctl_json_u64(st.entries),
	    "bytes", ctl_json_u64(st.bytes),
	    "content_bytes", ctl_json_u64(st.content_bytes),
	    "budget", ctl_json_u64(st.budget),
	    "reserved", ctl_json_u64(st.reserved),
	    "pinned", ctl_json_u64(st.pinned),
	    "hits", ctl_json_u64(st.hits),
	    "misses", ctl_json_u64(st.misses),
	    "hit_ratio", (double)(int64_t)(ratio * 10000 + 0.5) / 10000,
	    "evictions", ctl_json_u64(st.evictions),
	    "compressed", ctl_json_u64(st.compressed),
	    "saved_bytes", ctl_json_u64(st.content_bytes > st.bytes ?
	    st.content_bytes - st.bytes : 0),
	    "fills", ctl_json_u64(sc.fills_done),
	    "fill_failures", ctl_json_u64(sc.fill_failures),
	    "fill_joins", ctl_json_u64(sc.fill_joins),
	    "fills_in_progress", (json_int_t)sc.fills_in_progress,
	    "repo_reads", ctl_json_u64(sc.repo_reads),
	    "upstream_fetches", ctl_json_u64(sc.upstream_fetches),
	    "uncached", ctl_json_u64(sc.uncached),
	    "catalog", ctl_json_u64(st.catalog),
	    "upstream", u != NULL ? ctl_json_str(upstream_endpoint(u)) :
	    json_null(),
	    "upstream_connected", u != NULL && upstream_connected(u)));
}

/* Copies one catalog entry into the job (or a `cache ls` table). */
static int
ctl_cache_cat_collect(void *arg, const char *path, const struct cache_cat *e)
{
	struct ctl_cache_job *j = arg;
	struct ctl_cache_cat *n;

	if (j->ncat % 1024 == 0) {
		if ((n = realloc(j->cat, (j->ncat + 1024) * sizeof(*n))) ==
		    NULL)
			return -ENOMEM;
		j->cat = n;
	}
	if ((j->cat[j->ncat].path = strdup(path)) == NULL)
		return -ENOMEM;
	j->cat[j->ncat].e = *e;
	j->ncat++;
	return 0;
}

/* Orders catalog copies by digest. */
static int
ctl_cache_cmp_sha(const void *a, const void *b)
{
	const struct ctl_cache_cat *x = a, *y = b;

	return memcmp(x->e.sha256, y->e.sha256, PH_SHA256_LEN);
}

/* Orders catalog copies by path, for the walk's lookups. */
static int
ctl_cache_cmp_path(const void *a, const void *b)
{
	const struct ctl_cache_cat *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* Frees a job and everything it holds (blobs are put back). */
static void
ctl_cache_job_free(struct ctl_cache_job *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < j->nblobs; i++)
		cache_blob_put(j->blobs[i]);
	free(j->blobs);
	free(j->blob_status);
	free(j->digs);
	free(j->bad);
	for (size_t i = 0; i < j->ncat; i++)
		free(j->cat[i].path);
	free(j->cat);
	for (size_t i = 0; i < j->nitems; i++)
		free(j->items[i].rel);
	free(j->items);
	free(j->root);
	free(j);
}

/* `cache ls` state: the catalog sorted by digest, and the list. */
struct ctl_cache_ls {
	struct ctl_cache_job	 cat;	/* only cat and ncat are used */
	struct ctl_json_list	 list;
};

/* Adds one blob, with a path that has its content (or null). */
static int
ctl_cache_ls_one(void *arg, const struct cache_entry_info *e)
{
	struct ctl_cache_ls *ls = arg;
	char hex[PH_SHA256_LEN * 2 + 1], disp[PH_MAX_PATH + 2];
	const struct ctl_cache_cat *hit = NULL;
	struct ctl_cache_cat key;

	if (ls->cat.ncat > 0) {
		memcpy(key.e.sha256, e->sha256, PH_SHA256_LEN);
		hit = bsearch(&key, ls->cat.cat, ls->cat.ncat,
		    sizeof(*ls->cat.cat), ctl_cache_cmp_sha);
	}
	if (hit != NULL)
		snprintf(disp, sizeof(disp), "/%s", hit->path);
	ph_util_sha256_hex(e->sha256, hex);
	return ctl_json_list_add(&ls->list, json_pack("{s:s, s:o, s:o, s:s, "
	    "s:I, s:I, s:o}", "sha256", hex, "size", ctl_json_u64(e->size),
	    "stored", ctl_json_u64(e->stored), "form", e->form ==
	    CACHE_FORM_ZSTD ? "zstd" : "raw", "atime_ns",
	    (json_int_t)e->atime_ns, "pins", (json_int_t)e->pins, "path",
	    ctl_json_str_or_null(hit != NULL ? disp : NULL))) ? 0 : 1;
}

/* `cache ls`: blobs, most recently used first, with a path for each. */
void
ctl_cache_ls(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct cache *cache = store_cache(server_store(ctl_server(cc)));
	struct ctl_cache_ls ls;

	(void)argc;
	(void)argv;
	memset(&ls, 0, sizeof(ls));
	if (cache_db_cat_each(cache, ctl_cache_cat_collect, &ls.cat) < 0 ||
	    !ctl_json_list_init(&ls.list, CTL_JSON_LIST_MAX)) {
		ctl_error(cc, PH_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (ls.cat.ncat > 1)
		qsort(ls.cat.cat, ls.cat.ncat, sizeof(*ls.cat.cat),
		    ctl_cache_cmp_sha);
	(void)cache_each(cache, ctl_cache_ls_one, &ls);
	ctl_reply(cc, PH_OK, json_pack("{s:o, s:b}", "blobs", ls.list.array,
	    "truncated", ls.list.cut));
	ls.list.array = NULL;
out:
	json_decref(ls.list.array);
	for (size_t i = 0; i < ls.cat.ncat; i++)
		free(ls.cat.cat[i].path);
	free(ls.cat.cat);
}

/* `cache clear`: every blob goes (pinned ones when they are put back). */
void
ctl_cache_clear(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	int n = cache_clear(store_cache(server_store(ctl_server(cc))));

	(void)argc;
	(void)argv;
	ctl_reply(cc, n < 0 ? PH_ERR_IO : PH_OK, json_pack("{s:i}", "removed",
	    n < 0 ? 0 : n));
}

/* ---- Work on the pool --------------------------------------------------- */

/* Hashes a whole open file; 0 or a negative errno. */
static int
ctl_cache_hash_fd(int fd, uint8_t sha256[PH_SHA256_LEN],
    atomic_bool *abort_flag)
{
	EVP_MD_CTX *md;
	uint8_t *buf;
	unsigned int len = 0;
	ssize_t n;
	int err = 0;

	if ((md = EVP_MD_CTX_new()) == NULL || (buf = malloc(CTL_CACHE_READ)) ==
	    NULL) {
		EVP_MD_CTX_free(md);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		err = -EIO;
		goto out;
	}
	for (;;) {
		if (atomic_load(abort_flag)) {
			err = -ECANCELED;
			break;
		}
		n = read(fd, buf, CTL_CACHE_READ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1) {
			err = -EIO;
			break;
		}
	}
	if (err == 0 && (EVP_DigestFinal_ex(md, sha256, &len) != 1 ||
	    len != PH_SHA256_LEN))
		err = -EIO;
out:
	free(buf);
	EVP_MD_CTX_free(md);
	return err;
}

/* Adds a file the walk found, noting whether the catalog knows it. */
static int
ctl_cache_scan_add(struct ctl_cache_job *j, const char *rel,
    const struct stat *st)
{
	const struct ctl_cache_cat *c = NULL;
	struct ctl_cache_item *n, *it;
	struct ctl_cache_cat key;

	if (j->nitems == j->capitems) {
		size_t cap = j->capitems ? j->capitems * 2 : 256;

		if ((n = realloc(j->items, cap * sizeof(*n))) == NULL)
			return -ENOMEM;
		j->items = n;
		j->capitems = cap;
	}
	it = &j->items[j->nitems];
	memset(it, 0, sizeof(*it));
	if ((it->rel = strdup(rel)) == NULL)
		return -ENOMEM;
	it->st = *st;
	if (j->ncat > 0) {
		key.path = (char *)rel;
		c = bsearch(&key, j->cat, j->ncat, sizeof(*j->cat),
		    ctl_cache_cmp_path);
	}
	if (c != NULL && cache_db_cat_matches(&c->e, st)) {
		it->known = true;
		memcpy(it->cat_sha, c->e.sha256, PH_SHA256_LEN);
	}
	j->nitems++;
	return 0;
}

/*
 * Walks the directory dfd (path rel, "" for the root) without following
 * symbolic links, noting every regular file.
 */
static int
ctl_cache_scan_dir(struct ctl_cache_job *j, int dfd, const char *rel,
    int depth)
{
	char child[PH_MAX_PATH + 1];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int fd, err = 0;

	if ((d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return -errno;
	}
	while (err == 0 && (de = readdir(d)) != NULL) {
		if (atomic_load(&j->abort)) {
			err = -ECANCELED;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(child, sizeof(child), "%s%s%s", rel,
		    rel[0] ? "/" : "", de->d_name) >= sizeof(child) ||
		    fstatat(dirfd(d), de->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) < 0) {
			j->skipped++;
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < CTL_CACHE_SCAN_DEPTH) {
			fd = openat(dirfd(d), de->d_name, O_RDONLY |
			    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				j->skipped++;
			else if ((err = ctl_cache_scan_dir(j, fd, child,
			    depth + 1)) == -EACCES) {
				j->skipped++;
				err = 0;
			}
		} else if (S_ISREG(st.st_mode))
			err = ctl_cache_scan_add(j, child, &st);
		else
			j->skipped++;
	}
	closedir(d);
	return err;
}

/* Worker: re-hashes the pinned blobs, or walks and hashes the repository. */
static void
ctl_cache_work(uv_work_t *w)
{
	struct ctl_cache_job *j = w->data;
	struct ctl_cache_item *it;
	int fd, root;

	if (j->kind == CTL_CACHE_VERIFY) {
		for (size_t i = 0; i < j->nblobs; i++) {
			if (atomic_load(&j->abort))
				break;
			j->blob_status[i] = cache_pack_verify(j->blobs[i]);
		}
		return;
	}
	if ((root = open(j->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		j->walk_err = -errno;
		return;
	}
	/* ctl_cache_scan_dir() owns the descriptor it is given; keep root. */
	if ((fd = fcntl(root, F_DUPFD_CLOEXEC, 0)) < 0) {
		j->walk_err = -errno;
		close(root);
		return;
	}
	if ((j->walk_err = ctl_cache_scan_dir(j, fd, "", 0)) < 0) {
		close(root);
		return;
	}
	for (size_t i = 0; i < j->nitems; i++) {
		it = &j->items[i];
		/* scan hashes what is new; verify what is known. */
		if ((j->kind == CTL_CACHE_REPO_SCAN) == it->known)
			continue;
		if (atomic_load(&j->abort)) {
			j->walk_err = -ECANCELED;
			break;
		}
		fd = openat(root, it->rel, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			it->status = -errno;
			continue;
		}
		it->status = ctl_cache_hash_fd(fd, it->sha256, &j->abort);
		it->hashed = it->status == 0;
		close(fd);
	}
	close(root);
}

static void	ctl_cache_after(uv_work_t *w, int status);

/*
 * Pins the next batch of blobs to verify. Returns 1 when a batch went to
 * the pool, 0 when every blob has been seen.
 */
static int
ctl_cache_batch_start(struct ctl_cache_job *j)
{
	struct cache_blob *b;

	j->nblobs = 0;
	while (j->next < j->ndigs && j->nblobs < CTL_CACHE_BATCH) {
		/* Evicted or removed since the list was made: skip it. */
		if (cache_blob_pin(j->cache, j->digs[j->next++], &b) < 0)
			continue;
		j->blob_status[j->nblobs] = 0;
		j->blobs[j->nblobs++] = b;
	}
	if (j->nblobs == 0)
		return 0;
	j->work.data = j;
	if (uv_queue_work(j->loop, &j->work, ctl_cache_work,
	    ctl_cache_after) < 0)
		return 0;
	return 1;
}

/*
 * A verified batch: corrupt blobs are removed and remembered, the pins go.
 * Returns 1 if another batch is running, 0 when done.
 */
static int
ctl_cache_batch_done(struct ctl_cache_job *j)
{
	char hex[PH_SHA256_LEN * 2 + 1];

	for (size_t i = 0; i < j->nblobs; i++) {
		j->verified++;
		if (j->blob_status[i] != 0) {
			ph_util_sha256_hex(cache_blob_sha256(j->blobs[i]), hex);
			log_warn(j->log, "cache verify: blob sha256:%s is "
			    "corrupt (%s): removed", hex,
			    j->blob_status[i] == -EBADMSG ? "digest mismatch" :
			    strerror(-j->blob_status[i]));
			memcpy(j->bad[j->nbad++],
			    cache_blob_sha256(j->blobs[i]), PH_SHA256_LEN);
			(void)cache_blob_remove(j->blobs[i]);
		}
		cache_blob_put(j->blobs[i]);
	}
	j->nblobs = 0;
	return ctl_cache_batch_start(j);
}

/* `cache verify`'s reply: how many were verified, the corrupt ones. */
static void
ctl_cache_verify_reply(struct ctl_cache_job *j)
{
	char hex[PH_SHA256_LEN * 2 + 1];
	struct ctl_json_list l;

	if (!ctl_json_list_init(&l, CTL_JSON_LIST_MAX)) {
		ctl_reply(j->cc, PH_ERR_INTERNAL, NULL);
		return;
	}
	for (size_t i = 0; i < j->nbad; i++) {
		ph_util_sha256_hex(j->bad[i], hex);
		(void)ctl_json_list_add(&l, json_string(hex));
	}
	ctl_reply(j->cc, j->nbad > 0 ? PH_ERR_INTEGRITY : PH_OK, json_pack(
	    "{s:o, s:o, s:o, s:b}", "verified", ctl_json_u64(j->verified),
	    "corrupt", l.array, "corrupt_count", ctl_json_u64(j->nbad),
	    "truncated", l.cut));
}

/*
 * `repo scan` and `repo verify`'s reply, after recording what the walk
 * found: scan records new digests, verify forgets the ones that differ.
 */
static void
ctl_cache_walk_reply(struct ctl_cache_job *j)
{
	bool scan = j->kind == CTL_CACHE_REPO_SCAN;
	uint64_t bad = 0, hashed = 0, known = 0, unreadable = 0;
	char disp[PH_MAX_PATH + 2];
	struct ctl_json_list l, why;
	enum ph_err rc = PH_OK;

	if (j->walk_err < 0) {
		ctl_error(j->cc, j->walk_err == -ECANCELED ? PH_ERR_SHUTDOWN :
		    PH_ERR_IO, "cannot walk the repository: %s",
		    strerror(-j->walk_err));
		return;
	}
	if (!ctl_json_list_init(&l, CTL_JSON_LIST_MAX / 2) ||
	    !ctl_json_list_init(&why, CTL_JSON_LIST_MAX / 2)) {
		json_decref(l.array);
		ctl_reply(j->cc, PH_ERR_INTERNAL, NULL);
		return;
	}
	for (size_t i = 0; i < j->nitems; i++) {
		struct ctl_cache_item *it = &j->items[i];

		snprintf(disp, sizeof(disp), "/%s", it->rel);
		if (it->known)
			known++;
		if (it->status < 0) {
			unreadable++;
			if (scan && ctl_json_list_add(&l, ctl_json_str(disp)))
				(void)ctl_json_list_add(&why,
				    json_string(strerror(-it->status)));
			continue;
		}
		if (!it->hashed)
			continue;
		hashed++;
		if (scan) {
			store_catalog_record(j->s, it->rel, &it->st,
			    it->sha256);
		} else if (memcmp(it->sha256, it->cat_sha, PH_SHA256_LEN) !=
		    0) {
			/* Changed with no trace in its metadata: re-hash. */
			(void)store_catalog_forget(j->s, it->rel);
			log_warn(j->log, "repo verify: %s no longer matches "
			    "its recorded digest", disp);
			(void)ctl_json_list_add(&l, ctl_json_str(disp));
			bad++;
		}
	}
	if (scan) {
		ctl_reply(j->cc, PH_OK, json_pack("{s:o, s:o, s:o, s:o, s:o, "
		    "s:o, s:o, s:b}", "files", ctl_json_u64(j->nitems),
		    "unreadable", l.array, "unreadable_errors", why.array,
		    "unreadable_count", ctl_json_u64(unreadable),
		    "hashed", ctl_json_u64(hashed),
		    "unchanged", ctl_json_u64(known),
		    "skipped", ctl_json_u64(j->skipped),
		    "truncated", l.cut));
		return;
	}
	json_decref(why.array);
	rc = bad > 0 ? PH_ERR_INTEGRITY : PH_OK;
	ctl_reply(j->cc, rc, json_pack("{s:o, s:o, s:o, s:o, s:o, s:b}",
	    "files", ctl_json_u64(j->nitems), "mismatched", l.array,
	    "mismatched_count", ctl_json_u64(bad),
	    "verified", ctl_json_u64(hashed),
	    "not_in_catalog", ctl_json_u64(j->nitems - known),
	    "truncated", l.cut));
}

/* Loop: a batch or the walk is done; record the results and reply. */
static void
ctl_cache_after(uv_work_t *w, int status)
{
	struct ctl_cache_job *j = w->data;

	if (j->cancelled || status < 0) {
		ctl_cache_job_free(j);
		return;
	}
	if (j->kind == CTL_CACHE_VERIFY) {
		if (ctl_cache_batch_done(j) == 1)
			return;		/* the next batch is on the pool */
		ctl_cache_verify_reply(j);
	} else
		ctl_cache_walk_reply(j);
	ctl_cache_job_free(j);
}

/* The connection closed: the job stops early and frees itself. */
static void
ctl_cache_cancel(struct ctl_conn *cc, void *job)
{
	struct ctl_cache_job *j = job;

	(void)cc;
	j->cancelled = true;
	atomic_store(&j->abort, true);
}

/* A job for cc, or NULL after answering that memory ran out. */
static struct ctl_cache_job *
ctl_cache_job_new(struct ctl_conn *cc, enum ctl_cache_kind kind)
{
	struct ctl_cache_job *j;

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		ctl_error(cc, PH_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	j->cc = cc;
	j->s = server_store(ctl_server(cc));
	j->cache = store_cache(j->s);
	j->loop = ctl_loop(cc);
	j->log = ctl_log(cc);
	j->kind = kind;
	return j;
}

/* Notes each blob's digest for `cache verify`. */
static int
ctl_cache_verify_collect(void *arg, const struct cache_entry_info *e)
{
	struct ctl_cache_job *j = arg;

	if (j->ndigs == j->capdigs)
		return 1;
	memcpy(j->digs[j->ndigs++], e->sha256, PH_SHA256_LEN);
	return 0;
}

/* `cache verify`: re-hashes every blob on the pool, a batch at a time. */
void
ctl_cache_verify(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct ctl_cache_job *j;
	struct cache_stats st;

	(void)argc;
	(void)argv;
	if ((j = ctl_cache_job_new(cc, CTL_CACHE_VERIFY)) == NULL)
		return;
	cache_stats(j->cache, &st);
	if ((j->blobs = calloc(CTL_CACHE_BATCH, sizeof(*j->blobs))) == NULL ||
	    (j->blob_status = calloc(CTL_CACHE_BATCH, sizeof(int))) == NULL ||
	    (j->digs = calloc(st.entries + 1, sizeof(*j->digs))) == NULL ||
	    (j->bad = calloc(st.entries + 1, sizeof(*j->bad))) == NULL ||
	    (j->capdigs = st.entries + 1) == 0 ||
	    cache_each(j->cache, ctl_cache_verify_collect, j) < 0) {
		ctl_error(cc, PH_ERR_INTERNAL, "out of memory");
		ctl_cache_job_free(j);
		return;
	}
	if (ctl_cache_batch_start(j) == 0) {
		ctl_cache_verify_reply(j);
		ctl_cache_job_free(j);
		return;
	}
	ctl_defer(cc, ctl_cache_cancel, j);
}

/* `repo scan` and `repo verify`: a walk of the repository on the pool. */
static void
ctl_cache_walk(struct ctl_conn *cc, enum ctl_cache_kind kind)
{
	struct repo *repo = server_repo(ctl_server(cc));
	struct ctl_cache_job *j;
	int r;

	if (store_upstream(server_store(ctl_server(cc))) != NULL) {
		ctl_error(cc, PH_ERR_UNAVAILABLE, "a relay has no local "
		    "repository: scan and verify run on the host that has it");
		return;
	}
	if (repo == NULL) {
		ctl_error(cc, PH_ERR_UNAVAILABLE, "no repository configured");
		return;
	}
	if ((j = ctl_cache_job_new(cc, kind)) == NULL)
		return;
	if ((j->root = strdup(repo_path(repo))) == NULL ||
	    cache_db_cat_each(j->cache, ctl_cache_cat_collect, j) < 0) {
		ctl_error(cc, PH_ERR_INTERNAL, "out of memory");
		ctl_cache_job_free(j);
		return;
	}
	if (j->ncat > 1)
		qsort(j->cat, j->ncat, sizeof(*j->cat), ctl_cache_cmp_path);
	j->work.data = j;
	if ((r = uv_queue_work(j->loop, &j->work, ctl_cache_work,
	    ctl_cache_after)) < 0) {
		ctl_error(cc, PH_ERR_INTERNAL, "cannot start: %s",
		    uv_strerror(r));
		ctl_cache_job_free(j);
		return;
	}
	ctl_defer(cc, ctl_cache_cancel, j);
}

/* `repo scan`: hash what the catalog does not know, on the pool. */
void
ctl_cache_repo_scan(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	(void)argc;
	(void)argv;
	ctl_cache_walk(cc, CTL_CACHE_REPO_SCAN);
}

/* `repo verify`: re-hash what the catalog knows, on the pool. */
void
ctl_cache_repo_verify(struct ctl_conn *cc, size_t argc,
    const char *const *argv)
{
	(void)argc;
	(void)argv;
	ctl_cache_walk(cc, CTL_CACHE_REPO_VERIFY);
}
