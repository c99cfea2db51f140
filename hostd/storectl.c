/*
 * storectl.c: the control commands of the cache and the catalog:
 * cache stats|ls|clear|verify, repo scan|verify.
 *
 * verify and scan read whole files, so they run on the thread pool and
 * reply later; the cache itself is only touched on the loop thread, before
 * (pinning blobs, copying the catalog) and after (recording results).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "repo.h"
#include "store.h"
#include "store_impl.h"
#include "text.h"
#include "upstream.h"

#define CTL_BODY_MAX		(PH_MAX_PAYLOAD - 6)
/* Deeper trees are not walked: a repository is not a file system dump. */
#define SCAN_MAX_DEPTH		64
#define SCAN_READ		(1024 * 1024)
/* Blobs pinned at once by `cache verify` (each pin is an open file). */
#define VERIFY_BATCH		32
/* Names listed in a reply before "... and N more". */
#define LIST_MAX_SHOWN		200

enum job_kind {
	JOB_CACHE_VERIFY,
	JOB_REPO_SCAN,
	JOB_REPO_VERIFY,
};

/* A file the walk found, and what hashing it said. */
struct scan_item {
	char		*rel;
	struct stat	 st;
	bool		 known;		/* the catalog entry matched st */
	uint8_t		 cat_sha[PH_SHA256_LEN];
	int		 status;	/* 0, or the errno of reading it */
	bool		 hashed;
	uint8_t		 sha256[PH_SHA256_LEN];
};

struct cat_copy {
	char		*path;
	struct cache_cat e;
};

struct ctl_job {
	struct store	*s;
	enum job_kind	 kind;
	bool		 json;
	store_ctl_done	*done;
	void		*arg;
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
	struct cat_copy	*cat;
	size_t		 ncat;
	struct scan_item *items;
	size_t		 nitems;
	size_t		 capitems;
	int		 walk_err;
	uint64_t	 skipped;	/* not regular files, too deep, ... */
};

/* ---- Formatting -------------------------------------------------------- */

/* "1.5 GiB" style, for the text replies. */
static const char *
human(uint64_t n, char *buf, size_t cap)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", n);
	else
		snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

/* `cache stats`. */
static enum ph_err
ctl_cache_stats(struct store *s, bool json, struct text *t)
{
	struct cache_stats st;
	struct upstream *u = s->upstream;
	char a[32], b[32], c[32];
	uint64_t lookups, saved;
	double ratio;

	cache_stats(s->cache, &st);
	lookups = st.hits + st.misses;
	ratio = lookups > 0 ? (double)st.hits / (double)lookups : 0.0;
	saved = st.content_bytes > st.bytes ? st.content_bytes - st.bytes : 0;
	if (json) {
		text_printf(t, "{\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64
		    ",\"content_bytes\":%" PRIu64 ",\"budget\":%" PRIu64
		    ",\"reserved\":%" PRIu64 ",\"pinned\":%" PRIu64
		    ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64
		    ",\"hit_ratio\":%.4f,\"evictions\":%" PRIu64
		    ",\"compressed\":%" PRIu64 ",\"saved_bytes\":%" PRIu64
		    ",\"fills\":%" PRIu64 ",\"fill_failures\":%" PRIu64
		    ",\"fill_joins\":%" PRIu64 ",\"fills_in_progress\":%zu"
		    ",\"repo_reads\":%" PRIu64 ",\"upstream_fetches\":%" PRIu64
		    ",\"uncached\":%" PRIu64 ",\"catalog\":%" PRIu64
		    ",\"upstream\":", st.entries, st.bytes, st.content_bytes,
		    st.budget, st.reserved, st.pinned, st.hits, st.misses,
		    ratio, st.evictions, st.compressed, saved, s->fills_done,
		    s->fill_failures, s->fill_joins, s->nfills, s->repo_reads,
		    s->upstream_fetches, s->uncached, st.catalog);
		if (u != NULL) {
			text_json_str(t, upstream_endpoint(u));
			text_printf(t, ",\"upstream_connected\":%s}\n",
			    upstream_connected(u) ? "true" : "false");
		} else
			text_printf(t, "null,\"upstream_connected\":false}\n");
		return PH_OK;
	}
	text_printf(t, "entries:          %" PRIu64 " blobs (%" PRIu64
	    " compressed, %" PRIu64 " pinned)\n", st.entries, st.compressed,
	    st.pinned);
	text_printf(t, "size:             %s on disk of %s budget "
	    "(%s of content)\n", human(st.bytes, a, sizeof(a)),
	    human(st.budget, b, sizeof(b)),
	    human(st.content_bytes, c, sizeof(c)));
	text_printf(t, "saved by zstd:    %s\n", human(saved, a, sizeof(a)));
	text_printf(t, "hits / misses:    %" PRIu64 " / %" PRIu64
	    " (hit ratio %.1f%%)\n", st.hits, st.misses, ratio * 100);
	text_printf(t, "evictions:        %" PRIu64 "\n", st.evictions);
	text_printf(t, "fills:            %" PRIu64 " done, %" PRIu64
	    " failed, %zu in progress, %" PRIu64 " requests joined one\n",
	    s->fills_done, s->fill_failures, s->nfills, s->fill_joins);
	text_printf(t, "repository reads: %" PRIu64 " (%" PRIu64
	    " served uncached)\n", s->repo_reads, s->uncached);
	if (u != NULL)
		text_printf(t, "upstream:         %s (%s), %" PRIu64
		    " fetches\n", upstream_endpoint(u), upstream_connected(u) ?
		    "connected" : "not connected", s->upstream_fetches);
	text_printf(t, "catalog:          %" PRIu64 " paths\n", st.catalog);
	return PH_OK;
}

/* Catalog paths by digest, for `cache ls`. */
struct ls_ctx {
	struct text	*t;
	bool		 json;
	size_t		 n;
	struct cat_copy	*cat;
	size_t		 ncat;
};

/* Orders catalog copies by digest. */
static int
cat_cmp_sha(const void *a, const void *b)
{
	const struct cat_copy *x = a, *y = b;

	return memcmp(x->e.sha256, y->e.sha256, PH_SHA256_LEN);
}

/* A path whose content is sha256, or NULL. */
static const char *
ls_path(const struct ls_ctx *ls, const uint8_t *sha256)
{
	struct cat_copy key;
	const struct cat_copy *hit;

	if (ls->ncat == 0)
		return NULL;
	memcpy(key.e.sha256, sha256, PH_SHA256_LEN);
	hit = bsearch(&key, ls->cat, ls->ncat, sizeof(*ls->cat), cat_cmp_sha);
	return hit != NULL ? hit->path : NULL;
}

static int
ls_one(void *arg, const struct cache_entry_info *e)
{
	struct ls_ctx *ls = arg;
	char hex[PH_SHA256_LEN * 2 + 1], when[64], disp[PH_MAX_PATH + 2];
	const char *path = ls_path(ls, e->sha256);
	time_t secs = (time_t)(e->atime_ns / 1000000000);
	struct tm tm;

	if (text_full(ls->t))
		return 1;
	ph_sha256_hex(e->sha256, hex);
	if (path != NULL)
		snprintf(disp, sizeof(disp), "/%s", path);
	if (ls->json) {
		text_printf(ls->t, "%s{\"sha256\":\"%s\",\"size\":%" PRIu64
		    ",\"stored\":%" PRIu64 ",\"form\":\"%s\",\"atime_ns\":%"
		    PRId64 ",\"pins\":%u,\"path\":", ls->n ? "," : "", hex,
		    e->size, e->stored, e->form == CACHE_FORM_ZSTD ? "zstd" :
		    "raw", e->atime_ns, e->pins);
		if (path != NULL)
			text_json_str(ls->t, disp);
		else
			text_printf(ls->t, "null");
		text_printf(ls->t, "}");
	} else {
		localtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		text_printf(ls->t, "%.16s  %12" PRIu64 "  %12" PRIu64 "  %-4s  "
		    "%s  %s\n", hex, e->size, e->stored, e->form ==
		    CACHE_FORM_ZSTD ? "zstd" : "raw", when, path != NULL ?
		    disp : "-");
	}
	ls->n++;
	return 0;
}

static int
cat_collect(void *arg, const char *path, const struct cache_cat *e)
{
	struct ctl_job *j = arg;
	struct cat_copy *n;

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

/* Frees a job and everything it holds (blobs are put back). */
static void
job_free(struct ctl_job *j)
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

/* `cache ls`: blobs, most recently used first, with a path for each. */
static enum ph_err
ctl_cache_ls(struct store *s, bool json, struct text *t)
{
	struct ctl_job tmp;
	struct ls_ctx ls;
	enum ph_err rc = PH_OK;

	memset(&tmp, 0, sizeof(tmp));
	if (cache_cat_each(s->cache, cat_collect, &tmp) < 0) {
		text_printf(t, "out of memory\n");
		rc = PH_ERR_INTERNAL;
		goto out;
	}
	if (tmp.ncat > 1)
		qsort(tmp.cat, tmp.ncat, sizeof(*tmp.cat), cat_cmp_sha);
	memset(&ls, 0, sizeof(ls));
	ls.t = t;
	ls.json = json;
	ls.cat = tmp.cat;
	ls.ncat = tmp.ncat;
	if (json)
		text_printf(t, "{\"blobs\":[");
	else
		text_printf(t, "%-16s  %12s  %12s  %-4s  %-19s  %s\n", "SHA256",
		    "SIZE", "STORED", "FORM", "LAST USED", "PATH");
	(void)cache_each(s->cache, ls_one, &ls);
	if (json)
		text_printf(t, "]}\n");
out:
	for (size_t i = 0; i < tmp.ncat; i++)
		free(tmp.cat[i].path);
	free(tmp.cat);
	return rc;
}

/* ---- Work on the pool ---------------------------------------------------- */

/* Hashes a whole open file; 0 or a negative errno. */
static int
hash_fd(int fd, uint8_t sha256[PH_SHA256_LEN], atomic_bool *abort_flag)
{
	EVP_MD_CTX *md;
	uint8_t *buf;
	unsigned int len = 0;
	ssize_t n;
	int err = 0;

	if ((md = EVP_MD_CTX_new()) == NULL || (buf = malloc(SCAN_READ)) ==
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
		n = read(fd, buf, SCAN_READ);
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

/* Orders catalog copies by path, for the walk's lookups. */
static int
cat_cmp_path(const void *a, const void *b)
{
	const struct cat_copy *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* The catalog copy for rel, or NULL. */
static const struct cat_copy *
cat_find(const struct ctl_job *j, const char *rel)
{
	struct cat_copy key;

	if (j->ncat == 0)
		return NULL;
	key.path = (char *)rel;
	return bsearch(&key, j->cat, j->ncat, sizeof(*j->cat), cat_cmp_path);
}

/* Adds a file the walk found. */
static int
scan_add(struct ctl_job *j, const char *rel, const struct stat *st)
{
	const struct cat_copy *c;
	struct scan_item *n, *it;

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
	if ((c = cat_find(j, rel)) != NULL && cache_cat_matches(&c->e, st)) {
		it->known = true;
		memcpy(it->cat_sha, c->e.sha256, PH_SHA256_LEN);
	}
	j->nitems++;
	return 0;
}

/*
 * Walks the directory dfd (path rel, "" for the root) without following
 * symbolic links, hashing what the job needs hashed.
 */
static int
scan_dir(struct ctl_job *j, int dfd, const char *rel, int depth)
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
		if (S_ISDIR(st.st_mode) && depth < SCAN_MAX_DEPTH) {
			fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				j->skipped++;
			else if ((err = scan_dir(j, fd, child, depth + 1)) ==
			    -EACCES) {
				j->skipped++;
				err = 0;
			}
		} else if (S_ISREG(st.st_mode))
			err = scan_add(j, child, &st);
		else
			j->skipped++;
	}
	closedir(d);
	return err;
}

/* Worker: cache verify re-hashes every pinned blob. */
static void
job_work(uv_work_t *w)
{
	struct ctl_job *j = w->data;
	struct scan_item *it;
	int fd, root;

	if (j->kind == JOB_CACHE_VERIFY) {
		for (size_t i = 0; i < j->nblobs; i++) {
			if (atomic_load(&j->abort))
				break;
			j->blob_status[i] = cache_blob_verify(j->blobs[i]);
		}
		return;
	}
	if ((root = open(j->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		j->walk_err = -errno;
		return;
	}
	/* scan_dir() owns the descriptor it is given; keep root. */
	if ((fd = fcntl(root, F_DUPFD_CLOEXEC, 0)) < 0) {
		j->walk_err = -errno;
		close(root);
		return;
	}
	if ((j->walk_err = scan_dir(j, fd, "", 0)) < 0) {
		close(root);
		return;
	}
	for (size_t i = 0; i < j->nitems; i++) {
		it = &j->items[i];
		/* scan hashes what is new; verify what is known. */
		if ((j->kind == JOB_REPO_SCAN) == it->known)
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
		it->status = hash_fd(fd, it->sha256, &j->abort);
		it->hashed = it->status == 0;
		close(fd);
	}
	close(root);
}

static void	job_after(uv_work_t *w, int status);

/*
 * Pins the next batch of blobs to verify. Returns 1 when a batch went to
 * the pool, 0 when every blob has been seen.
 */
static int
verify_batch_start(struct ctl_job *j)
{
	struct cache_blob *b;

	j->nblobs = 0;
	while (j->next < j->ndigs && j->nblobs < VERIFY_BATCH) {
		/* Evicted or removed since the list was made: skip it. */
		if (cache_blob_pin(j->s->cache, j->digs[j->next++], &b) < 0)
			continue;
		j->blob_status[j->nblobs] = 0;
		j->blobs[j->nblobs++] = b;
	}
	if (j->nblobs == 0)
		return 0;
	j->work.data = j;
	if (uv_queue_work(j->s->loop, &j->work, job_work, job_after) < 0)
		return 0;
	return 1;
}

/*
 * A verified batch: corrupt blobs are removed and remembered, the pins go.
 * Returns 1 if another batch is running, 0 when done.
 */
static int
verify_batch_done(struct ctl_job *j)
{
	char hex[PH_SHA256_LEN * 2 + 1];

	for (size_t i = 0; i < j->nblobs; i++) {
		j->verified++;
		if (j->blob_status[i] != 0) {
			ph_sha256_hex(cache_blob_sha256(j->blobs[i]), hex);
			log_warn(j->s->log, "cache verify: blob sha256:%s is "
			    "corrupt (%s): removed", hex,
			    j->blob_status[i] == -EBADMSG ? "digest mismatch" :
			    strerror(-j->blob_status[i]));
			memcpy(j->bad[j->nbad++], cache_blob_sha256(j->blobs[i]),
			    PH_SHA256_LEN);
			(void)cache_blob_remove(j->blobs[i]);
		}
		cache_blob_put(j->blobs[i]);
	}
	j->nblobs = 0;
	return verify_batch_start(j);
}

/* Loop: records results and sends the reply. */
static void
job_after(uv_work_t *w, int status)
{
	struct ctl_job *j = w->data;
	struct store *s = j->s;
	struct text t;
	char hex[PH_SHA256_LEN * 2 + 1];
	enum ph_err rc = PH_OK;
	uint64_t bad = 0, hashed = 0, known = 0, unreadable = 0;
	size_t shown = 0;

	if (j->cancelled || status < 0) {
		job_free(j);
		return;
	}
	if (j->kind == JOB_CACHE_VERIFY && verify_batch_done(j) == 1)
		return;		/* the next batch is on the pool */
	text_init(&t, CTL_BODY_MAX);
	if (j->kind == JOB_CACHE_VERIFY) {
		if (j->json)
			text_printf(&t, "{\"verified\":%zu,\"corrupt\":[",
			    j->verified);
		for (size_t i = 0; i < j->nbad; i++) {
			ph_sha256_hex(j->bad[i], hex);
			if (j->json)
				text_printf(&t, "%s\"%s\"", i ? "," : "", hex);
			else if (shown++ < LIST_MAX_SHOWN)
				text_printf(&t, "corrupt: sha256:%s (removed)\n",
				    hex);
		}
		bad = j->nbad;
		if (j->json)
			text_printf(&t, "]}\n");
		else
			text_printf(&t, "verified %zu blobs: %" PRIu64
			    " corrupt\n", j->verified, bad);
		rc = bad > 0 ? PH_ERR_INTEGRITY : PH_OK;
		goto reply;
	}
	if (j->walk_err < 0) {
		rc = j->walk_err == -ECANCELED ? PH_ERR_SHUTDOWN : PH_ERR_IO;
		text_printf(&t, j->json ? "{\"error\":\"%s\",\"message\":"
		    "\"cannot walk the repository: %s\"}\n" :
		    "%.0scannot walk the repository: %s\n", ph_err_name(rc),
		    strerror(-j->walk_err));
		goto reply;
	}
	if (j->json)
		text_printf(&t, "{\"files\":%zu,\"%s\":[", j->nitems,
		    j->kind == JOB_REPO_SCAN ? "unreadable" : "mismatched");
	for (size_t i = 0; i < j->nitems; i++) {
		struct scan_item *it = &j->items[i];
		char disp[PH_MAX_PATH + 2];

		snprintf(disp, sizeof(disp), "/%s", it->rel);
		if (it->known)
			known++;
		if (it->status < 0) {
			unreadable++;
			if (j->kind != JOB_REPO_SCAN)
				continue;
			if (j->json) {
				text_printf(&t, "%s", unreadable > 1 ? "," : "");
				text_json_str(&t, disp);
			} else if (shown++ < LIST_MAX_SHOWN)
				text_printf(&t, "unreadable: %s: %s\n", disp,
				    strerror(-it->status));
			continue;
		}
		if (!it->hashed)
			continue;
		hashed++;
		if (j->kind == JOB_REPO_SCAN) {
			struct cache_cat e;

			cache_cat_from_stat(&e, &it->st, it->sha256);
			(void)cache_cat_put(s->cache, it->rel, &e);
		} else if (memcmp(it->sha256, it->cat_sha, PH_SHA256_LEN) !=
		    0) {
			/* Changed with no trace in its metadata: re-hash. */
			(void)cache_cat_del(s->cache, it->rel);
			log_warn(s->log, "repo verify: %s no longer matches its "
			    "recorded digest", disp);
			if (j->json) {
				text_printf(&t, "%s", bad ? "," : "");
				text_json_str(&t, disp);
			} else if (shown++ < LIST_MAX_SHOWN)
				text_printf(&t, "mismatch: %s\n", disp);
			bad++;
		}
	}
	if (j->kind == JOB_REPO_SCAN) {
		if (j->json)
			text_printf(&t, "],\"hashed\":%" PRIu64 ",\"unchanged\":%"
			    PRIu64 ",\"skipped\":%" PRIu64 "}\n", hashed, known,
			    j->skipped);
		else
			text_printf(&t, "scanned %zu files: %" PRIu64
			    " hashed, %" PRIu64 " unchanged, %" PRIu64
			    " unreadable, %" PRIu64 " other entries skipped\n",
			    j->nitems, hashed, known, unreadable, j->skipped);
	} else {
		if (j->json)
			text_printf(&t, "],\"verified\":%" PRIu64
			    ",\"not_in_catalog\":%" PRIu64 "}\n", hashed,
			    (uint64_t)j->nitems - known);
		else
			text_printf(&t, "verified %" PRIu64 " files against "
			    "the catalog: %" PRIu64 " mismatched, %" PRIu64
			    " not hashed yet (run repo scan)\n", hashed, bad,
			    (uint64_t)j->nitems - known);
		rc = bad > 0 ? PH_ERR_INTEGRITY : PH_OK;
	}
reply:
	j->done(j->arg, rc, &t);
	text_free(&t);
	job_free(j);
}

void
store_ctl_cancel(void *job)
{
	struct ctl_job *j = job;

	if (j == NULL)
		return;
	j->cancelled = true;
	atomic_store(&j->abort, true);
}

/* Starts a job on the pool; -EINPROGRESS, or an error in t. */
static int
job_start(struct ctl_job *j, struct text *t, void **out)
{
	int r;

	j->work.data = j;
	if ((r = uv_queue_work(j->s->loop, &j->work, job_work, job_after)) <
	    0) {
		text_printf(t, "cannot start: %s\n", uv_strerror(r));
		job_free(j);
		return PH_ERR_INTERNAL;
	}
	*out = j;
	return -EINPROGRESS;
}

/* Notes each blob's digest for `cache verify`. */
static int
verify_collect(void *arg, const struct cache_entry_info *e)
{
	struct ctl_job *j = arg;

	if (j->ndigs == j->capdigs)
		return 1;
	memcpy(j->digs[j->ndigs++], e->sha256, PH_SHA256_LEN);
	return 0;
}

/* `cache verify`: re-hashes every blob on the pool, a batch at a time. */
static int
ctl_cache_verify(struct ctl_job *j, struct text *t, void **out)
{
	struct cache_stats st;
	int n;

	cache_stats(j->s->cache, &st);
	if ((j->blobs = calloc(VERIFY_BATCH, sizeof(*j->blobs))) == NULL ||
	    (j->blob_status = calloc(VERIFY_BATCH, sizeof(int))) == NULL ||
	    (j->digs = calloc(st.entries + 1, sizeof(*j->digs))) == NULL ||
	    (j->bad = calloc(st.entries + 1, sizeof(*j->bad))) == NULL ||
	    (j->capdigs = st.entries + 1) == 0 ||
	    (n = cache_each(j->s->cache, verify_collect, j)) < 0) {
		text_printf(t, "out of memory\n");
		job_free(j);
		return PH_ERR_INTERNAL;
	}
	if (verify_batch_start(j) == 0) {
		text_printf(t, j->json ? "{\"verified\":0,\"corrupt\":[]}\n" :
		    "verified 0 blobs: 0 corrupt\n");
		job_free(j);
		return PH_OK;
	}
	*out = j;
	return -EINPROGRESS;
}

/* `repo scan` and `repo verify`: a walk of the repository on the pool. */
static int
ctl_repo_walk(struct ctl_job *j, struct repo *repo, struct text *t,
    void **out)
{
	if (j->s->upstream != NULL || repo == NULL) {
		text_printf(t, "%s\n", j->s->upstream != NULL ? "a relay has "
		    "no local repository: scan and verify run on the host "
		    "that has it" : "no repository configured");
		job_free(j);
		return PH_ERR_UNAVAILABLE;
	}
	if ((j->root = strdup(repo_path(repo))) == NULL ||
	    cache_cat_each(j->s->cache, cat_collect, j) < 0) {
		text_printf(t, "out of memory\n");
		job_free(j);
		return PH_ERR_INTERNAL;
	}
	if (j->ncat > 1)
		qsort(j->cat, j->ncat, sizeof(*j->cat), cat_cmp_path);
	return job_start(j, t, out);
}

int
store_ctl(struct store *s, struct repo *repo, const struct ph_ctl *m,
    struct text *out, store_ctl_done *done, void *arg, void **job)
{
	bool json = m->flags & PH_CTL_JSON;
	const char *cmd = m->argc > 0 ? m->argv[0] : "";
	const char *sub = m->argc > 1 ? m->argv[1] : "";
	struct ctl_job *j;
	int n;

	*job = NULL;
	if (strcmp(cmd, "cache") == 0 && m->argc == 2) {
		if (strcmp(sub, "stats") == 0)
			return ctl_cache_stats(s, json, out);
		if (strcmp(sub, "ls") == 0)
			return ctl_cache_ls(s, json, out);
		if (strcmp(sub, "clear") == 0) {
			n = cache_clear(s->cache);
			text_printf(out, json ? "{\"removed\":%d}\n" :
			    "removed %d blobs\n", n < 0 ? 0 : n);
			return n < 0 ? PH_ERR_IO : PH_OK;
		}
	}
	if (m->argc != 2 || (strcmp(cmd, "cache") == 0 &&
	    strcmp(sub, "verify") != 0)) {
		text_printf(out, json ? "{\"error\":\"USAGE\",\"message\":"
		    "\"usage: cache stats|ls|clear|verify, repo scan|verify\"}\n"
		    : "usage: cache stats | cache ls | cache clear | "
		    "cache verify | repo scan | repo verify\n");
		return PH_ERR_USAGE;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL) {
		text_printf(out, "out of memory\n");
		return PH_ERR_INTERNAL;
	}
	j->s = s;
	j->json = json;
	j->done = done;
	j->arg = arg;
	if (strcmp(cmd, "cache") == 0) {
		j->kind = JOB_CACHE_VERIFY;
		return ctl_cache_verify(j, out, job);
	}
	j->kind = strcmp(sub, "scan") == 0 ? JOB_REPO_SCAN : JOB_REPO_VERIFY;
	return ctl_repo_walk(j, repo, out, job);
}
