/*
 * test_cache_common.c: helpers for the cache tests (see the header).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "test_cache_common.h"

int
tdir_setup(void **state)
{
	struct tdir	*t = calloc(1, sizeof(*t));
	const char	*tmp = getenv("TMPDIR");

	if (t == NULL)
		return -1;
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	if ((size_t)snprintf(t->root, sizeof(t->root),
	    "%s/porthole-cache-test.XXXXXX", tmp) >= sizeof(t->root) ||
	    mkdtemp(t->root) == NULL) {
		free(t);
		return -1;
	}
	snprintf(t->db, sizeof(t->db), "%s/cache.db", t->root);
	snprintf(t->blobs, sizeof(t->blobs), "%s/blobs", t->root);
	*state = t;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : -1;
}

int
tdir_teardown(void **state)
{
	struct tdir	*t = *state;

	if (t == NULL)
		return 0;
	nftw(t->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(t);
	return 0;
}

struct cache *
tcache_open(const struct tdir *t, uint64_t budget)
{
	struct cache_config	cfg = {
		.db_path = t->db,
		.blob_dir = t->blobs,
		.budget = budget,
		.zstd_level = 0,
	};
	struct cache		*c = NULL;

	assert_int_equal(cache_open(&cfg, &c), 0);
	assert_non_null(c);
	return c;
}

void
tsha(const void *buf, size_t len, uint8_t out[CACHE_SHA256_LEN])
{
	unsigned int	n = 0;

	assert_int_equal(EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, CACHE_SHA256_LEN);
}

int
tput(struct cache *c, const void *buf, size_t len, struct cache_blob **out)
{
	struct cache_fill	*f = NULL;
	uint8_t			 want[CACHE_SHA256_LEN], got[CACHE_SHA256_LEN];
	int			 rc;

	tsha(buf, len, want);
	if ((rc = cache_fill_begin(c, len, &f)) != 0)
		return rc;
	if ((rc = cache_fill_write(f, buf, len)) != 0 ||
	    (rc = cache_fill_finish(f, want, got)) != 0) {
		cache_fill_abort(f);
		return rc;
	}
	assert_memory_equal(got, want, CACHE_SHA256_LEN);
	return cache_fill_commit(f, out);
}

/* xorshift64*: fast, deterministic, and zstd finds nothing in it. */
static uint64_t
next_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

void
tnoise(void *buf, size_t len, uint64_t seed)
{
	uint8_t		*p = buf;
	uint64_t	 s = seed * 0x9e3779b97f4a7c15ULL + 1, r = 0;
	size_t		 i;

	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			r = next_rand(&s);
		p[i] = (uint8_t)(r >> (8 * (i % 8)));
	}
}

void
ttext(void *buf, size_t len, uint64_t seed)
{
	static const char *const words[] = {
		"porthole", "cache", "blob", "frame", "guest", "host",
		"vsock", "digest", "budget", "evict", "the", "a", "of",
		"file", "repository", "zstd", "chunk", "pin", "\n",
	};
	char		*p = buf;
	uint64_t	 s = seed * 0x9e3779b97f4a7c15ULL + 7;
	size_t		 i = 0, n;
	const char	*w;

	while (i < len) {
		w = words[next_rand(&s) % (sizeof(words) / sizeof(words[0]))];
		n = strlen(w);
		if (n > len - i)
			n = len - i;
		memcpy(p + i, w, n);
		i += n;
		if (i < len)
			p[i++] = ' ';
	}
}

void
tblob_path(const struct tdir *t, const uint8_t *sha, int form, char *out,
    size_t cap)
{
	char	hex[2 * CACHE_SHA256_LEN + 1];

	ph_util_hex_encode(sha, CACHE_SHA256_LEN, hex);
	snprintf(out, cap, "%s/%.2s/%s%s", t->blobs, hex, hex,
	    form == CACHE_FORM_ZSTD ? ".zst" : "");
}

static size_t	count_n;
static uint64_t	count_bytes;

static int
count_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F && S_ISREG(st->st_mode)) {
		count_n++;
		count_bytes += (uint64_t)st->st_size;
	}
	return 0;
}

size_t
tcount_files(const char *dir, uint64_t *bytes)
{
	count_n = 0;
	count_bytes = 0;
	assert_int_equal(nftw(dir, count_one, 16, FTW_PHYS), 0);
	if (bytes != NULL)
		*bytes = count_bytes;
	return count_n;
}

uint8_t *
tread_fd(int fd, uint64_t len)
{
	uint8_t	*buf = malloc(len ? len : 1);
	ssize_t	 n;
	uint64_t off = 0;

	assert_non_null(buf);
	while (off < len) {
		n = pread(fd, buf + off, len - off, (off_t)off);
		assert_true(n > 0);
		off += (uint64_t)n;
	}
	return buf;
}

void
tsql(const struct tdir *t, const char *sql)
{
	sqlite3	*db = NULL;
	char	*err = NULL;
	int	 rc;

	assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
	sqlite3_free(err);
	sqlite3_close(db);
}

int64_t
tsql_int(const struct tdir *t, const char *sql)
{
	sqlite3		*db = NULL;
	sqlite3_stmt	*st = NULL;
	int64_t		 v;

	assert_int_equal(sqlite3_open(t->db, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

void
tflip(const char *path, uint64_t off)
{
	uint8_t	b;
	int	fd = open(path, O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= 0x5a;
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}
