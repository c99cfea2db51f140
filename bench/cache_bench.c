/*
 * cache_bench.c: the content cache library on its own (cache/cache.h):
 *
 *   open    cache_open() time and the process's memory (VmHWM, VmRSS) with
 *           ENTRIES blobs of SIZE bytes and ENTRIES catalog rows, measured
 *           in a fresh process per run (hot page cache); then lookups and
 *           get/put pairs on that cache.
 *   churn   random requests over a working set of WSET blobs of CSIZE
 *           bytes with a budget of 10% of it: a hit is a get/put, a miss a
 *           whole fill (write, hash, fdatasync, rename, index). Reports
 *           requests/s, the hit ratio and the highest the accounted bytes
 *           went relative to the budget.
 *
 * usage: cache_bench [-n ENTRIES] [-s SIZE] [-w WSET] [-c CSIZE]
 *                    [-o OPS] [-r RUNS] DIR
 * DIR is created if missing; DIR/open is kept and reused by later runs with
 * the same ENTRIES and SIZE, DIR/churn is rebuilt each time.
 * Prints a plain table on standard output.
 */
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cache.h"

struct opts {
	uint64_t	 entries;
	uint64_t	 size;
	uint64_t	 wset;
	uint64_t	 csize;
	uint64_t	 ops;
	int		 runs;
	const char	*dir;
};

static void
die(const char *what, int err)
{
	fprintf(stderr, "cache_bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static double
now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: content and request order, reproducible. */
static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Blob number key's content: distinct for every key. */
static void
content(uint8_t *buf, uint64_t len, uint64_t key)
{
	uint64_t	i, r;

	for (i = 0; i < len; i += 8) {
		r = mix(key * 0x100000001b3ULL + i);
		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

static void
sha256(const void *buf, size_t len, uint8_t out[CACHE_SHA256_LEN])
{
	unsigned int	n = 0;

	if (EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) != 1)
		die("sha256", EIO);
}

static int
store(struct cache *c, const uint8_t *buf, uint64_t len, const uint8_t *sha)
{
	struct cache_fill	*f = NULL;
	int			 rc;

	if ((rc = cache_fill_begin(c, len, &f)) != 0)
		return rc;
	if ((rc = cache_fill_write(f, buf, len)) != 0 ||
	    (rc = cache_fill_finish(f, sha, NULL)) != 0) {
		cache_fill_abort(f);
		return rc;
	}
	return cache_fill_commit(f, NULL);
}

static struct cache *
open_at(const char *dir, uint64_t budget)
{
	struct cache_config	 cfg = { .budget = budget };
	struct cache		*c = NULL;
	char			 db[PATH_MAX], blobs[PATH_MAX];
	int			 rc;

	snprintf(db, sizeof(db), "%s/cache.db", dir);
	snprintf(blobs, sizeof(blobs), "%s/blobs", dir);
	cfg.db_path = db;
	cfg.blob_dir = blobs;
	if ((rc = cache_open(&cfg, &c)) != 0)
		die("cache_open", -rc);
	return c;
}

/* Reads a "Name:   N kB" line of /proc/self/status, in KiB. */
static long
status_kib(const char *name)
{
	char	line[256];
	size_t	n = strlen(name);
	long	v = -1;
	FILE	*f = fopen("/proc/self/status", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* ---- open --------------------------------------------------------------- */

/* Builds DIR/open once: ENTRIES blobs and as many catalog rows. */
static void
setup_open(const struct opts *o, const char *dir)
{
	struct cache		*c;
	struct cache_stats	 st;
	struct cache_cat	 e;
	uint8_t			*buf = malloc(o->size);
	char			 path[64];
	uint64_t		 i;
	double			 t0;
	int			 rc;

	if (buf == NULL)
		die("malloc", ENOMEM);
	c = open_at(dir, UINT64_MAX / 4);
	cache_stats(c, &st);
	if (st.entries == o->entries && st.catalog == o->entries &&
	    st.bytes == o->entries * o->size) {
		cache_close(c);
		free(buf);
		return;
	}
	if (st.entries > 0 || st.catalog > 0)
		die("DIR/open holds another data set; remove it", EEXIST);
	fprintf(stderr, "cache_bench: storing %" PRIu64 " blobs of %" PRIu64
	    " bytes (once; kept in %s)\n", o->entries, o->size, dir);
	t0 = now();
	memset(&e, 0, sizeof(e));
	for (i = 0; i < o->entries; i++) {
		content(buf, o->size, i);
		sha256(buf, o->size, e.sha256);
		if ((rc = store(c, buf, o->size, e.sha256)) != 0)
			die("fill", -rc);
		snprintf(path, sizeof(path), "set/%02" PRIu64 "/f%08" PRIu64,
		    i % 100, i);
		e.size = o->size;
		e.mtime_ns = (int64_t)i;
		e.ino = i;
		e.mode = 0100644;
		if ((rc = cache_db_cat_put(c, path, &e)) != 0)
			die("cache_db_cat_put", -rc);
		if (i % 10000 == 9999)
			fprintf(stderr, "cache_bench:   %" PRIu64 " (%.0f/s)\n",
			    i + 1, (double)(i + 1) / (now() - t0));
	}
	cache_close(c);
	free(buf);
	fprintf(stderr, "cache_bench: stored in %.1f s\n", now() - t0);
}

/* In a fresh process: time cache_open, read the memory figures, then time
 * lookups and get/put pairs. Prints one line of numbers. */
static int
open_child(const char *dir, uint64_t entries, uint64_t size)
{
	struct cache		*c;
	struct cache_blob	*b = NULL;
	struct cache_stats	 st;
	uint8_t			*buf = malloc(size), sha[CACHE_SHA256_LEN];
	uint8_t			(*keys)[CACHE_SHA256_LEN];
	uint64_t		 i, n = entries < 10000 ? entries : 10000;
	uint64_t		 found = 0;
	double			 t0, t_open, t_has, t_get;
	long			 hwm0, hwm, rss;
	int			 rc;

	keys = calloc(n ? n : 1, sizeof(*keys));
	if (buf == NULL || keys == NULL)
		die("malloc", ENOMEM);
	/* The digests to look up are computed before anything is measured. */
	for (i = 0; i < n; i++) {
		content(buf, size, mix(i) % entries);
		sha256(buf, size, keys[i]);
	}
	hwm0 = status_kib("VmHWM");
	t0 = now();
	c = open_at(dir, UINT64_MAX / 4);
	t_open = now() - t0;
	hwm = status_kib("VmHWM");
	rss = status_kib("VmRSS");
	cache_stats(c, &st);

	t0 = now();
	for (i = 0; i < 100 * n; i++) {
		memcpy(sha, keys[i % n], sizeof(sha));
		sha[31] ^= (uint8_t)(i / n);	/* mostly misses */
		found += cache_blob_has(c, sha);
	}
	t_has = now() - t0;
	t0 = now();
	for (i = 0; i < n; i++) {
		if ((rc = cache_blob_get(c, keys[i], &b)) != 0)
			die("cache_blob_get", -rc);
		cache_blob_put(b);
	}
	t_get = now() - t0;
	t0 = now();
	if ((rc = cache_sync(c)) != 0)
		die("cache_sync", -rc);
	printf("%.6f %" PRIu64 " %" PRIu64 " %ld %ld %ld %.1f %.1f %.6f %"
	    PRIu64 "\n", t_open, st.entries, st.catalog, hwm0, hwm, rss,
	    (double)(100 * n) / t_has, (double)n / t_get, now() - t0, found);
	cache_close(c);
	free(keys);
	free(buf);
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double	x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void
bench_open(const struct opts *o)
{
	char	dir[PATH_MAX], cmd[PATH_MAX + 128], line[512];
	double	t[16], has_rate = 0, get_rate = 0, sync_s = 0;
	long	hwm0 = 0, hwm = 0, rss = 0, max_hwm = 0;
	int	i, runs = o->runs > 16 ? 16 : o->runs;
	uint64_t entries = 0, cat = 0, found = 0;
	FILE	*p;

	snprintf(dir, sizeof(dir), "%s/open", o->dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		die(dir, errno);
	setup_open(o, dir);
	for (i = 0; i < runs; i++) {
		snprintf(cmd, sizeof(cmd), "/proc/%d/exe --open-child '%s' %"
		    PRIu64 " %" PRIu64, (int)getpid(), dir, o->entries,
		    o->size);
		if ((p = popen(cmd, "r")) == NULL)
			die("popen", errno);
		if (fgets(line, sizeof(line), p) == NULL ||
		    sscanf(line, "%lf %" SCNu64 " %" SCNu64 " %ld %ld %ld %lf"
		    " %lf %lf %" SCNu64, &t[i], &entries, &cat, &hwm0, &hwm,
		    &rss, &has_rate, &get_rate, &sync_s, &found) != 10)
			die("open child: bad output", EIO);
		if (pclose(p) != 0)
			die("open child failed", EIO);
		if (hwm > max_hwm)
			max_hwm = hwm;
	}
	qsort(t, (size_t)runs, sizeof(t[0]), cmp_double);
	printf("%-44s %14s\n", "open: measure", "value");
	printf("%-44s %14" PRIu64 "\n", "blobs indexed", entries);
	printf("%-44s %14" PRIu64 "\n", "catalog entries", cat);
	printf("%-44s %14" PRIu64 "\n", "blob size (bytes)", o->size);
	printf("%-44s %14.1f\n", "cache_open, median of runs (ms)",
	    t[runs / 2] * 1e3);
	printf("%-44s %14.1f\n", "cache_open, best (ms)", t[0] * 1e3);
	printf("%-44s %14.1f\n", "cache_open, worst (ms)", t[runs - 1] * 1e3);
	printf("%-44s %14.1f\n", "VmHWM before open (MiB)", hwm0 / 1024.0);
	printf("%-44s %14.1f\n", "VmHWM after open, worst run (MiB)",
	    max_hwm / 1024.0);
	printf("%-44s %14.1f\n", "VmRSS after open (MiB)", rss / 1024.0);
	printf("%-44s %14.0f\n", "cache_blob_has, mostly misses (ops/s)",
	    has_rate);
	printf("%-44s %14.0f\n", "cache_blob_get + put, hits (ops/s)",
	    get_rate);
	printf("%-44s %14.1f\n", "cache_sync of those atimes (ms)",
	    sync_s * 1e3);
	printf("%-44s %14d\n", "runs", runs);
	printf("\n");
}

/* ---- churn -------------------------------------------------------------- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

static void
bench_churn(const struct opts *o)
{
	struct cache		*c;
	struct cache_blob	*b = NULL;
	struct cache_stats	 st;
	uint8_t			*buf = malloc(o->csize);
	uint8_t			(*keys)[CACHE_SHA256_LEN];
	uint64_t		 budget = o->wset * o->csize / 10, i, k;
	uint64_t		 hits = 0, misses = 0, worst = 0;
	double			 t0, secs;
	char			 dir[PATH_MAX];
	int			 rc;

	keys = calloc(o->wset, sizeof(*keys));
	if (buf == NULL || keys == NULL)
		die("malloc", ENOMEM);
	for (k = 0; k < o->wset; k++) {
		content(buf, o->csize, ~k);
		sha256(buf, o->csize, keys[k]);
	}
	snprintf(dir, sizeof(dir), "%s/churn", o->dir);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0700) == -1)
		die(dir, errno);
	c = open_at(dir, budget);

	t0 = now();
	for (i = 0; i < o->ops; i++) {
		k = mix(i ^ 0xc0ffee) % o->wset;
		rc = cache_blob_get(c, keys[k], &b);
		if (rc == 0) {
			hits++;
			cache_blob_put(b);
		} else if (rc == -ENOENT) {
			misses++;
			content(buf, o->csize, ~k);
			if ((rc = store(c, buf, o->csize, keys[k])) != 0)
				die("fill", -rc);
		} else
			die("cache_blob_get", -rc);
		cache_stats(c, &st);
		if (st.bytes + st.reserved > worst)
			worst = st.bytes + st.reserved;
		if (i % 1000 == 999 && (rc = cache_sync(c)) != 0)
			die("cache_sync", -rc);
	}
	secs = now() - t0;
	cache_stats(c, &st);
	printf("%-44s %14s\n", "churn: measure", "value");
	printf("%-44s %14" PRIu64 "\n", "working set (blobs)", o->wset);
	printf("%-44s %14" PRIu64 "\n", "blob size (bytes)", o->csize);
	printf("%-44s %14.1f\n", "working set (MiB)",
	    (double)(o->wset * o->csize) / 1048576.0);
	printf("%-44s %14.1f\n", "budget, 10% (MiB)", budget / 1048576.0);
	printf("%-44s %14" PRIu64 "\n", "requests", o->ops);
	printf("%-44s %14.0f\n", "requests/s", (double)o->ops / secs);
	printf("%-44s %14.0f\n", "fills/s (misses)", (double)misses / secs);
	printf("%-44s %14.1f\n", "hit ratio (%)",
	    100.0 * (double)hits / (double)(o->ops ? o->ops : 1));
	printf("%-44s %14" PRIu64 "\n", "evictions", st.evictions);
	printf("%-44s %14.0f\n", "evictions/s", (double)st.evictions / secs);
	printf("%-44s %14.3f\n", "peak (bytes + reserved) / budget",
	    (double)worst / (double)budget);
	printf("%-44s %14.3f\n", "final bytes / budget",
	    (double)st.bytes / (double)budget);
	cache_close(c);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(keys);
	free(buf);
}

static uint64_t
num(const char *s)
{
	char			*end;
	unsigned long long	 v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		die(s, EINVAL);
	return v;
}

int
main(int argc, char **argv)
{
	struct opts	o = {
		.entries = 100000,
		.size = 256,
		.wset = 4096,
		.csize = 32768,
		.ops = 20000,
		.runs = 5,
	};
	int		ch;

	if (argc == 5 && strcmp(argv[1], "--open-child") == 0)
		return open_child(argv[2], num(argv[3]), num(argv[4]));
	while ((ch = getopt(argc, argv, "n:s:w:c:o:r:")) != -1) {
		switch (ch) {
		case 'n':
			o.entries = num(optarg);
			break;
		case 's':
			o.size = num(optarg);
			break;
		case 'w':
			o.wset = num(optarg);
			break;
		case 'c':
			o.csize = num(optarg);
			break;
		case 'o':
			o.ops = num(optarg);
			break;
		case 'r':
			o.runs = (int)num(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (optind != argc - 1 || o.entries == 0 || o.size == 0 ||
	    o.wset < 10 || o.csize == 0 || o.runs < 1)
		goto usage;
	o.dir = argv[optind];
	if (mkdir(o.dir, 0700) == -1 && errno != EEXIST)
		die(o.dir, errno);
	bench_open(&o);
	bench_churn(&o);
	return 0;
usage:
	fprintf(stderr, "usage: cache_bench [-n ENTRIES] [-s SIZE] [-w WSET]"
	    " [-c CSIZE] [-o OPS] [-r RUNS] DIR\n");
	return 2;
}
