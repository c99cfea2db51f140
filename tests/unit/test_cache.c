/*
 * test_cache.c: the content cache's blobs: fills, LRU eviction, the budget,
 * pins, removal, clearing, access times across a reopen, and the catalog.
 * Each test runs in its own temp dir.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/stat.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cache_common.h"

#define KIB	1024u

/* Stores a blob of len bytes filled with tag and returns its digest. */
static void
put_tagged(struct cache *c, int tag, size_t len, uint8_t sha[32])
{
	uint8_t	*buf = malloc(len);

	assert_non_null(buf);
	memset(buf, tag, len);
	tsha(buf, len, sha);
	assert_int_equal(tput(c, buf, len, NULL), 0);
	free(buf);
}

/* Gets and puts a blob back: one use. */
static void
use(struct cache *c, const uint8_t sha[32])
{
	struct cache_blob	*b = NULL;

	assert_int_equal(cache_blob_get(c, sha, &b), 0);
	cache_blob_put(b);
}

struct order {
	uint8_t	sha[8][CACHE_SHA256_LEN];
	int64_t	atime[8];
	size_t	n;
};

static int
collect(void *arg, const struct cache_entry_info *e)
{
	struct order	*o = arg;

	if (o->n == 8)
		return 1;
	memcpy(o->sha[o->n], e->sha256, CACHE_SHA256_LEN);
	o->atime[o->n] = e->atime_ns;
	o->n++;
	return 0;
}

/* Asserts the LRU order, most recently used first. */
static void
expect_order(struct cache *c, size_t n, const uint8_t (*want[])[32])
{
	struct order	o = { .n = 0 };
	size_t		i;

	assert_int_equal(cache_each(c, collect, &o), 0);
	assert_int_equal(o.n, n);
	for (i = 0; i < n; i++) {
		assert_memory_equal(o.sha[i], *want[i], CACHE_SHA256_LEN);
		if (i > 0)
			assert_true(o.atime[i - 1] > o.atime[i]);
	}
}

static void
test_fill_get(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*b = NULL, *b2 = NULL;
	struct cache_stats	 st;
	uint8_t			 data[5000], sha[32], none[32] = { 0 };
	uint8_t			*back;
	uint64_t		 off = 1;
	uint32_t		 flen = 1;

	tnoise(data, sizeof(data), 1);
	tsha(data, sizeof(data), sha);
	assert_false(cache_blob_has(c, sha));
	assert_int_equal(tput(c, data, sizeof(data), &b), 0);
	assert_non_null(b);
	assert_int_equal(cache_blob_form(b), CACHE_FORM_RAW);
	assert_int_equal(cache_blob_size(b), sizeof(data));
	assert_int_equal(cache_blob_stored(b), sizeof(data));
	assert_memory_equal(cache_blob_sha256(b), sha, 32);
	assert_false(cache_blob_incompressible(b));
	assert_int_equal(cache_blob_frames(b), 0);
	assert_int_equal(cache_blob_frame(b, 0, &off, &flen), -EINVAL);
	assert_int_equal(off, 0);
	assert_int_equal(flen, 0);
	back = tread_fd(cache_blob_fd(b), sizeof(data));
	assert_memory_equal(back, data, sizeof(data));
	free(back);
	assert_int_equal(cache_pack_verify(b), 0);

	cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, sizeof(data));
	assert_int_equal(st.content_bytes, sizeof(data));
	assert_int_equal(st.pinned, 1);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.hits, 0);
	cache_blob_put(b);

	assert_true(cache_blob_has(c, sha));
	assert_int_equal(cache_blob_get(c, sha, &b2), 0);
	assert_int_equal(cache_blob_get(c, none, &b), -ENOENT);
	assert_null(b);
	cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.pinned, 1);
	cache_blob_put(b2);
	cache_blob_put(NULL);
	cache_stats(c, &st);
	assert_int_equal(st.pinned, 0);
	/* One blob file, nothing left in tmp/. */
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	cache_close(c);
	cache_close(NULL);
}

static void
test_empty_blob(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1000);
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;

	assert_int_equal(tput(c, "", 0, &b), 0);
	assert_int_equal(cache_blob_size(b), 0);
	assert_int_equal(cache_pack_verify(b), 0);
	assert_int_equal(cache_pack_begin(c, b, &p), 0);
	assert_null(p);
	cache_blob_put(b);
	cache_close(c);
}

/* Least recently used goes first; a use moves a blob to the front. */
static void
test_eviction_order(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 3000);
	struct cache_stats	 st;
	uint8_t			 a[32], b[32], cc[32], d[32], e[32];

	put_tagged(c, 'a', 1000, a);
	put_tagged(c, 'b', 1000, b);
	put_tagged(c, 'c', 1000, cc);
	expect_order(c, 3, (const uint8_t (*[])[32]){ &cc, &b, &a });
	use(c, a);
	expect_order(c, 3, (const uint8_t (*[])[32]){ &a, &cc, &b });

	put_tagged(c, 'd', 1000, d);	/* b is least recently used */
	assert_false(cache_blob_has(c, b));
	assert_true(cache_blob_has(c, a));
	expect_order(c, 3, (const uint8_t (*[])[32]){ &d, &a, &cc });

	use(c, cc);
	put_tagged(c, 'e', 1000, e);	/* now a is */
	assert_false(cache_blob_has(c, a));
	expect_order(c, 3, (const uint8_t (*[])[32]){ &e, &cc, &d });

	cache_stats(c, &st);
	assert_int_equal(st.evictions, 2);
	assert_int_equal(st.entries, 3);
	assert_int_equal(st.bytes, 3000);
	assert_int_equal(tcount_files(t->blobs, NULL), 3);

	/* A 1500-byte blob needs two evictions: d, then cc. */
	put_tagged(c, 'f', 1500, a);
	cache_stats(c, &st);
	assert_int_equal(st.evictions, 4);
	assert_int_equal(st.entries, 2);
	assert_true(cache_blob_has(c, e));
	assert_false(cache_blob_has(c, d));
	assert_false(cache_blob_has(c, cc));
	cache_close(c);
}

/*
 * A churn of fills of random sizes: after every step the accounted bytes
 * stay within the budget, match the files on disk exactly, and stay close
 * to the budget once it is full.
 */
static void
test_budget_churn(void **state)
{
	struct tdir		*t = *state;
	const uint64_t		 budget = 1 << 20;
	struct cache		*c = tcache_open(t, budget);
	struct cache_stats	 st;
	uint8_t			*buf = malloc(64 * KIB);
	uint64_t		 s = 12345, disk, filled = 0;
	size_t			 len, files;
	int			 i;

	assert_non_null(buf);
	for (i = 0; i < 300; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		len = 1 + (size_t)((s >> 33) % (64 * KIB));
		tnoise(buf, len, (uint64_t)i);
		assert_int_equal(tput(c, buf, len, NULL), 0);
		filled += len;
		cache_stats(c, &st);
		files = tcount_files(t->blobs, &disk);
		assert_int_equal(st.reserved, 0);
		assert_int_equal(files, st.entries);
		assert_int_equal(disk, st.bytes);
		assert_true(st.bytes <= budget);
		assert_true(disk <= budget + budget / 100);
		if (filled > 2 * budget)
			assert_true(st.bytes > budget - 64 * KIB);
	}
	assert_true(st.evictions > 0);
	assert_int_equal(st.fills, 300);
	free(buf);
	cache_close(c);
}

/* Pinned blobs are never evicted; a fill that only they could make room
 * for gets -ENOSPC, and one larger than the budget -EFBIG. */
static void
test_pinned_not_evicted(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 2000);
	struct cache_blob	*pa = NULL, *pb = NULL;
	struct cache_fill	*f = NULL, *g = NULL;
	struct cache_stats	 st;
	uint8_t			 a[32], b[32];

	put_tagged(c, 'a', 1000, a);
	put_tagged(c, 'b', 1000, b);
	assert_int_equal(cache_blob_get(c, a, &pa), 0);
	assert_int_equal(cache_blob_get(c, b, &pb), 0);
	assert_int_equal(cache_fill_begin(c, 1, &f), -ENOSPC);
	assert_null(f);
	assert_int_equal(cache_fill_begin(c, 2001, &f), -EFBIG);
	assert_true(cache_blob_has(c, a));
	assert_true(cache_blob_has(c, b));

	/* Once put, b is the only unpinned blob, so it makes the room. */
	cache_blob_put(pb);
	assert_int_equal(cache_fill_begin(c, 500, &f), 0);
	assert_false(cache_blob_has(c, b));
	assert_true(cache_blob_has(c, a));
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 500);
	assert_int_equal(st.bytes, 1000);

	/* Reservations count like blobs: 1000 + 500 leaves 500. */
	assert_int_equal(cache_fill_begin(c, 501, &g), -ENOSPC);
	assert_int_equal(cache_fill_begin(c, 500, &g), 0);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 1000);
	cache_fill_abort(g);
	cache_fill_abort(f);
	cache_fill_abort(NULL);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	cache_blob_put(pa);
	cache_close(c);
}

/* A pinned blob under a lowered budget goes when its pin does. */
static void
test_set_budget(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 4000);
	struct cache_blob	*pa = NULL;
	struct cache_stats	 st;
	uint8_t			 a[32], b[32], d[32];

	put_tagged(c, 'a', 1000, a);
	put_tagged(c, 'b', 1000, b);
	put_tagged(c, 'd', 1000, d);
	assert_int_equal(cache_blob_get(c, a, &pa), 0);
	assert_int_equal(cache_set_budget(c, 1500), 0);
	/* a is pinned: b and d had to go, and it alone is over. */
	cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.budget, 1500);
	assert_int_equal(cache_set_budget(c, 500), 0);
	assert_true(cache_blob_has(c, a));
	cache_blob_put(pa);
	assert_false(cache_blob_has(c, a));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.evictions, 3);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	cache_close(c);
}

/* A digest mismatch stores nothing and gives the reservation back. */
static void
test_fill_mismatch(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_fill	*f = NULL;
	struct cache_blob	*b = (struct cache_blob *)&b;
	struct cache_stats	 st;
	uint8_t			 data[3000], sha[32], wrong[32], got[32];

	tnoise(data, sizeof(data), 2);
	tsha(data, sizeof(data), sha);
	memcpy(wrong, sha, 32);
	wrong[31] ^= 1;
	assert_int_equal(cache_fill_begin(c, sizeof(data), &f), 0);
	assert_int_equal(cache_fill_write(f, data, 1000), 0);
	assert_int_equal(cache_fill_write(f, data + 1000, 2000), 0);
	assert_int_equal(cache_fill_written(f), 3000);
	assert_int_equal(cache_fill_finish(f, wrong, got), -EBADMSG);
	assert_memory_equal(got, sha, 32);
	assert_int_equal(cache_fill_commit(f, &b), -EBADMSG);
	assert_null(b);
	assert_false(cache_blob_has(c, sha));
	assert_false(cache_blob_has(c, wrong));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.fills, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	cache_close(c);
}

/* Short is -EPIPE, past the declared size -EFBIG; errors stick. */
static void
test_fill_size(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_fill	*f = NULL;
	struct cache_stats	 st;
	uint8_t			 data[100], got[32];

	memset(data, 'x', sizeof(data));
	assert_int_equal(cache_fill_begin(c, 100, &f), 0);
	assert_int_equal(cache_fill_write(f, data, 99), 0);
	memset(got, 0xff, sizeof(got));
	assert_int_equal(cache_fill_finish(f, NULL, got), -EPIPE);
	assert_memory_equal(got, (uint8_t[32]){ 0 }, 32);
	assert_int_equal(cache_fill_write(f, data, 1), -EPIPE);
	cache_fill_abort(f);

	assert_int_equal(cache_fill_begin(c, 100, &f), 0);
	assert_int_equal(cache_fill_write(f, data, 60), 0);
	assert_int_equal(cache_fill_write(f, data, 41), -EFBIG);
	assert_int_equal(cache_fill_written(f), 60);
	assert_int_equal(cache_fill_finish(f, NULL, NULL), -EFBIG);
	assert_int_equal(cache_fill_commit(f, NULL), -EFBIG);

	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	cache_close(c);
}

/* Two fills of the same bytes: the second commit returns the first blob. */
static void
test_duplicate_commit(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_fill	*f1 = NULL, *f2 = NULL;
	struct cache_blob	*b1 = NULL, *b2 = NULL;
	struct cache_stats	 st;
	uint8_t			 data[4096], sha[32];

	ttext(data, sizeof(data), 3);
	tsha(data, sizeof(data), sha);
	assert_int_equal(cache_fill_begin(c, sizeof(data), &f1), 0);
	assert_int_equal(cache_fill_begin(c, sizeof(data), &f2), 0);
	assert_int_equal(cache_fill_write(f1, data, sizeof(data)), 0);
	assert_int_equal(cache_fill_write(f2, data, sizeof(data)), 0);
	assert_int_equal(cache_fill_finish(f1, sha, NULL), 0);
	assert_int_equal(cache_fill_finish(f2, sha, NULL), 0);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 2 * sizeof(data));
	assert_int_equal(cache_fill_commit(f1, &b1), 0);
	assert_int_equal(cache_fill_commit(f2, &b2), 0);
	assert_non_null(b1);
	assert_non_null(b2);
	assert_memory_equal(cache_blob_sha256(b2), sha, 32);
	assert_int_equal(cache_pack_verify(b2), 0);
	cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.fills, 1);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.bytes, sizeof(data));
	assert_int_equal(st.pinned, 1);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	cache_blob_put(b1);
	cache_blob_put(b2);
	cache_close(c);
}

/* The fill's read descriptor sees bytes as they land, and stays good
 * across the commit for a reader that dup()ed it. */
static void
test_fill_fd(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_fill	*f = NULL;
	struct cache_blob	*b = NULL;
	uint8_t			 data[2048], back[2048], sha[32];
	int			 fd;

	tnoise(data, sizeof(data), 4);
	tsha(data, sizeof(data), sha);
	assert_int_equal(cache_fill_begin(c, sizeof(data), &f), 0);
	assert_int_equal(cache_fill_write(f, data, 1000), 0);
	assert_int_equal(cache_fill_written(f), 1000);
	assert_int_equal(pread(cache_fill_fd(f), back, sizeof(back), 0), 1000);
	assert_memory_equal(back, data, 1000);
	/* Read-only: a reader cannot damage the fill. */
	assert_int_equal(pwrite(cache_fill_fd(f), data, 1, 0), -1);
	assert_int_equal(errno, EBADF);
	fd = dup(cache_fill_fd(f));
	assert_true(fd >= 0);
	assert_int_equal(cache_fill_write(f, data + 1000, 1048), 0);
	assert_int_equal(cache_fill_finish(f, sha, NULL), 0);
	assert_int_equal(cache_fill_commit(f, &b), 0);
	assert_int_equal(pread(fd, back, sizeof(back), 0), 2048);
	assert_memory_equal(back, data, sizeof(data));
	close(fd);
	cache_blob_put(b);
	cache_close(c);
}

/* Removing a pinned blob: gone from the index and disk at once, still
 * readable through the pins, its bytes counted until the last put. */
static void
test_remove_pinned(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 10000);
	struct cache_blob	*b1 = NULL, *b2 = NULL, *b3 = NULL;
	struct cache_fill	*f = NULL;
	struct cache_stats	 st;
	uint8_t			 data[3000], sha[32], *back;

	ttext(data, sizeof(data), 5);
	tsha(data, sizeof(data), sha);
	assert_int_equal(tput(c, data, sizeof(data), &b1), 0);
	assert_int_equal(cache_blob_get(c, sha, &b2), 0);
	assert_int_equal(cache_blob_remove(b1), 0);
	assert_int_equal(cache_blob_remove(b2), 0);
	assert_false(cache_blob_has(c, sha));
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.pinned, 1);
	/* Its disk space is still held: 10000 - 3000 is what is left. */
	assert_int_equal(cache_fill_begin(c, 7001, &f), -ENOSPC);
	back = tread_fd(cache_blob_fd(b2), sizeof(data));
	assert_memory_equal(back, data, sizeof(data));
	free(back);

	/* The same bytes can be stored again meanwhile. */
	assert_int_equal(tput(c, data, sizeof(data), &b3), 0);
	assert_true(cache_blob_has(c, sha));
	cache_blob_put(b1);
	cache_blob_put(b2);
	assert_int_equal(cache_fill_begin(c, 7000, &f), 0);
	cache_fill_abort(f);
	assert_int_equal(cache_pack_verify(b3), 0);
	cache_blob_put(b3);
	assert_true(cache_blob_has(c, sha));
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	cache_close(c);
}

static void
test_clear(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*pb = NULL;
	struct cache_stats	 st;
	struct cache_cat	 e = { .size = 1000 };
	uint8_t			 a[32], b[32], d[32], *back;

	put_tagged(c, 'a', 1000, a);
	put_tagged(c, 'b', 1000, b);
	put_tagged(c, 'd', 1000, d);
	memcpy(e.sha256, a, 32);
	assert_int_equal(cache_db_cat_put(c, "x/a", &e), 0);
	assert_int_equal(cache_blob_get(c, b, &pb), 0);
	assert_int_equal(cache_clear(c), 2);
	assert_false(cache_blob_has(c, a));
	assert_false(cache_blob_has(c, b));
	assert_false(cache_blob_has(c, d));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.bytes, 0);
	assert_int_equal(st.pinned, 1);
	assert_int_equal(st.catalog, 1);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	back = tread_fd(cache_blob_fd(pb), 1000);
	assert_int_equal(back[999], 'b');
	free(back);
	cache_blob_put(pb);
	cache_stats(c, &st);
	assert_int_equal(st.pinned, 0);
	assert_int_equal(cache_clear(c), 0);
	cache_close(c);
	assert_int_equal(tsql_int(t, "SELECT count(*) FROM blobs"), 0);
	assert_int_equal(tsql_int(t, "SELECT count(*) FROM catalog"), 1);
}

/* Access times reach the database at cache_sync() (or close), and the LRU
 * order comes back from them. */
static void
test_reopen_order(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*b = NULL;
	uint8_t			 a[32], bb[32], d[32], *back;
	int64_t			 before;

	put_tagged(c, 'a', 1000, a);
	put_tagged(c, 'b', 2000, bb);
	put_tagged(c, 'd', 3000, d);
	use(c, a);
	use(c, bb);
	expect_order(c, 3, (const uint8_t (*[])[32]){ &bb, &a, &d });
	before = tsql_int(t, "SELECT max(atime_ns) FROM blobs");
	assert_int_equal(cache_sync(c), 0);
	assert_true(tsql_int(t, "SELECT max(atime_ns) FROM blobs") > before);
	assert_int_equal(cache_sync(c), 0);
	cache_close(c);

	c = tcache_open(t, 1 << 20);
	expect_order(c, 3, (const uint8_t (*[])[32]){ &bb, &a, &d });
	/* Uses without an explicit sync: cache_close() writes them. */
	use(c, d);
	use(c, a);
	cache_close(c);

	c = tcache_open(t, 1 << 20);
	expect_order(c, 3, (const uint8_t (*[])[32]){ &a, &d, &bb });
	assert_int_equal(cache_blob_get(c, d, &b), 0);
	assert_int_equal(cache_blob_size(b), 3000);
	back = tread_fd(cache_blob_fd(b), 3000);
	assert_int_equal(back[0], 'd');
	assert_int_equal(back[2999], 'd');
	free(back);
	cache_blob_put(b);
	/* A smaller budget on reopen evicts the least recently used. */
	cache_close(c);
	c = tcache_open(t, 5000);
	assert_false(cache_blob_has(c, bb));
	expect_order(c, 2, (const uint8_t (*[])[32]){ &d, &a });
	cache_close(c);
}

/*
 * A file size limit stands in for a full disk (it needs no privileges):
 * the write fails with -ENOSPC, the fill is dropped, and the cache stays
 * as it was, reservation released.
 */
static void
test_fill_enospc(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_fill	*f = NULL;
	struct cache_stats	 st;
	struct rlimit		 old, lim;
	uint8_t			*buf = malloc(64 * KIB), a[32];
	void			(*oldsig)(int);
	int			 rc;

	assert_non_null(buf);
	put_tagged(c, 'a', 1000, a);
	tnoise(buf, 64 * KIB, 6);
	assert_int_equal(cache_fill_begin(c, 64 * KIB, &f), 0);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 16 * KIB;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = cache_fill_write(f, buf, 64 * KIB);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);

	assert_int_equal(rc, -ENOSPC);
	assert_int_equal(cache_fill_write(f, buf, 1), -ENOSPC);
	assert_int_equal(cache_fill_finish(f, NULL, NULL), -ENOSPC);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 64 * KIB);
	cache_fill_abort(f);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, 1000);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	/* And the cache still works. */
	assert_int_equal(tput(c, buf, 64 * KIB, NULL), 0);
	cache_stats(c, &st);
	assert_int_equal(st.entries, 2);
	free(buf);
	cache_close(c);
}

/*
 * A fill that runs out of disk goes on in memory: the copy holds the bytes
 * counted so far (not the part of the failed write that landed) and their
 * hash, the whole file then checks against its digest, reads back from the
 * copy's descriptor, and is never committed; the original is aborted as
 * usual. An unkept fill reserves nothing and writes nothing to the blob
 * directory.
 */
static void
test_fill_unkept(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_fill	*f = NULL, *m = NULL, *u = NULL;
	struct cache_stats	 st;
	struct rlimit		 old, lim;
	uint8_t			*buf = malloc(64 * KIB), *back, sha[32];
	void			(*oldsig)(int);
	int			 rc;

	assert_non_null(buf);
	tnoise(buf, 64 * KIB, 9);
	tsha(buf, 64 * KIB, sha);
	assert_int_equal(cache_fill_begin(c, 64 * KIB, &f), 0);
	assert_true(cache_fill_kept(f));
	assert_int_equal(cache_fill_write(f, buf, 8 * KIB), 0);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 16 * KIB;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = cache_fill_write(f, buf + 8 * KIB, 32 * KIB);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	assert_int_equal(rc, -ENOSPC);

	assert_int_equal(cache_fill_unkept_copy(f, &m), 0);
	assert_false(cache_fill_kept(m));
	assert_int_equal(cache_fill_written(m), 8 * KIB);
	cache_fill_abort(f);
	assert_int_equal(cache_fill_write(m, buf + 8 * KIB, 56 * KIB), 0);
	assert_int_equal(cache_fill_finish(m, sha, NULL), 0);
	back = tread_fd(cache_fill_fd(m), 64 * KIB);
	assert_memory_equal(back, buf, 64 * KIB);
	free(back);
	assert_int_equal(cache_fill_commit(m, NULL), -EINVAL);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);

	assert_int_equal(cache_fill_begin_unkept(c, 64 * KIB, &u), 0);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	assert_int_equal(cache_fill_write(u, buf, 64 * KIB), 0);
	sha[0] ^= 1;
	assert_int_equal(cache_fill_finish(u, sha, NULL), -EBADMSG);
	cache_fill_abort(u);
	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.reserved, 0);
	free(buf);
	cache_close(c);
}

struct cat_walk {
	char	paths[4][32];
	size_t	n;
	int	stop_at;
};

static int
cat_collect(void *arg, const char *path, const struct cache_cat *e)
{
	struct cat_walk	*w = arg;

	assert_true(w->n < 4);
	snprintf(w->paths[w->n], sizeof(w->paths[0]), "%s", path);
	assert_int_equal(e->size, strlen(path));
	if ((int)++w->n == w->stop_at)
		return 7;
	return 0;
}

static void
test_catalog(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1000);
	struct cache_cat	 e, got;
	struct cat_walk		 w = { .n = 0 };
	char			 longp[4098];

	memset(&e, 0, sizeof(e));
	e.size = 3;
	e.mtime_ns = -5;	/* before 1970 is a valid time */
	e.ctime_ns = 1700000000123456789LL;
	e.ino = UINT64_MAX;
	e.dev = 0x8000000000000001ULL;
	e.mode = 0100644;
	memset(e.sha256, 0xab, 32);
	assert_int_equal(cache_db_cat_get(c, "a/b", &got), -ENOENT);
	assert_int_equal(cache_db_cat_put(c, "a/b", &e), 0);
	assert_int_equal(cache_db_cat_count(c), 1);
	assert_int_equal(cache_db_cat_get(c, "a/b", &got), 0);
	assert_memory_equal(&got, &e, sizeof(e));

	e.size = 4;
	assert_int_equal(cache_db_cat_put(c, "b/cc", &e), 0);
	e.size = 3;
	e.mtime_ns = 42;
	assert_int_equal(cache_db_cat_put(c, "a/b", &e), 0);	/* replace */
	assert_int_equal(cache_db_cat_count(c), 2);
	assert_int_equal(cache_db_cat_get(c, "a/b", &got), 0);
	assert_int_equal(got.mtime_ns, 42);
	e.size = 2;
	assert_int_equal(cache_db_cat_put(c, "a.", &e), 0);

	/* Byte order: "a." < "a/b" < "b/cc". */
	assert_int_equal(cache_db_cat_each(c, cat_collect, &w), 0);
	assert_int_equal(w.n, 3);
	assert_string_equal(w.paths[0], "a.");
	assert_string_equal(w.paths[1], "a/b");
	assert_string_equal(w.paths[2], "b/cc");
	w.n = 0;
	w.stop_at = 2;
	assert_int_equal(cache_db_cat_each(c, cat_collect, &w), 7);
	assert_int_equal(w.n, 2);

	assert_int_equal(cache_db_cat_del(c, "a/b"), 0);
	assert_int_equal(cache_db_cat_del(c, "a/b"), -ENOENT);
	assert_int_equal(cache_db_cat_get(c, "a/b", &got), -ENOENT);
	assert_int_equal(cache_db_cat_count(c), 2);

	/* Bad arguments. */
	assert_int_equal(cache_db_cat_put(c, "", &e), -EINVAL);
	assert_int_equal(cache_db_cat_put(c, NULL, &e), -EINVAL);
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(cache_db_cat_put(c, longp, &e), -EINVAL);
	e.size = (uint64_t)INT64_MAX + 1;
	assert_int_equal(cache_db_cat_put(c, "big", &e), -EINVAL);
	assert_int_equal(cache_db_cat_count(c), 2);
	cache_close(c);

	/* And it all persists. */
	c = tcache_open(t, 1000);
	assert_int_equal(cache_db_cat_count(c), 2);
	assert_int_equal(cache_db_cat_get(c, "b/cc", &got), 0);
	assert_int_equal(got.size, 4);
	assert_int_equal(got.ino, UINT64_MAX);
	assert_int_equal(got.dev, 0x8000000000000001ULL);
	cache_close(c);
}

/* cache_pin_all pins most recent first, up to max, without reordering;
 * cache_blob_pin pins one without counting or reordering. */
static void
test_pin_all(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*pins[4] = { NULL };
	struct cache_stats	 st;
	uint8_t			 a[32], b[32], d[32];
	int			 i;

	put_tagged(c, 'a', 100, a);
	put_tagged(c, 'b', 100, b);
	put_tagged(c, 'd', 100, d);
	use(c, a);
	assert_int_equal(cache_pin_all(c, pins, 2), 2);
	assert_memory_equal(cache_blob_sha256(pins[0]), a, 32);
	assert_memory_equal(cache_blob_sha256(pins[1]), d, 32);
	for (i = 0; i < 2; i++)
		cache_blob_put(pins[i]);
	assert_int_equal(cache_pin_all(c, pins, 4), 3);
	cache_stats(c, &st);
	assert_int_equal(st.pinned, 3);
	assert_int_equal(st.hits, 1);
	for (i = 0; i < 3; i++) {
		assert_int_equal(cache_pack_verify(pins[i]), 0);
		cache_blob_put(pins[i]);
	}
	expect_order(c, 3, (const uint8_t (*[])[32]){ &a, &d, &b });

	/* One at a time, the same: no hit counted, no reordering. */
	assert_int_equal(cache_blob_pin(c, b, &pins[0]), 0);
	assert_int_equal(cache_pack_verify(pins[0]), 0);
	cache_blob_put(pins[0]);
	assert_int_equal(cache_blob_pin(c, (uint8_t[32]){ 1 }, &pins[0]),
	    -ENOENT);
	assert_null(pins[0]);
	cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 0);
	expect_order(c, 3, (const uint8_t (*[])[32]){ &a, &d, &b });
	cache_close(c);
}

struct listed {
	struct cache	*c;
	size_t		 n;
};

static int
check_listed(void *arg, const struct cache_entry_info *e)
{
	struct listed	*l = arg;

	assert_true(cache_blob_has(l->c, e->sha256));
	assert_int_equal(e->size, 8);
	l->n++;
	return 0;
}

/*
 * Many small blobs through a table kept near its fullest (700 entries in
 * 1024 slots), with evictions and uses mixed in: afterwards every blob the
 * LRU list holds is found, and every other one is not.
 */
static void
test_index_stress(void **state)
{
	struct tdir		*t = *state;
	const size_t		 total = 2000, keep = 700;
	struct cache		*c = tcache_open(t, 8 * keep);
	struct cache_stats	 st;
	struct listed		 l = { .c = c };
	uint8_t			(*sha)[32] = calloc(total, 32);
	uint64_t		 v;
	size_t			 i, found = 0;

	assert_non_null(sha);
	for (i = 0; i < total; i++) {
		v = i * 0x9e3779b97f4a7c15ULL;
		tsha(&v, sizeof(v), sha[i]);
		assert_int_equal(tput(c, &v, sizeof(v), NULL), 0);
		assert_true(cache_blob_has(c, sha[i]));
		if (i >= 10 && i % 3 == 0)
			use(c, sha[i - 10]);
	}
	cache_stats(c, &st);
	assert_int_equal(st.entries, keep);
	assert_int_equal(st.evictions, total - keep);
	for (i = 0; i < total; i++)
		found += cache_blob_has(c, sha[i]);
	assert_int_equal(found, keep);
	/* The newest blobs are all still there. */
	for (i = total - keep / 2; i < total; i++)
		assert_true(cache_blob_has(c, sha[i]));
	assert_int_equal(cache_each(c, check_listed, &l), 0);
	assert_int_equal(l.n, keep);
	assert_int_equal(cache_clear(c), (int)keep);
	for (i = 0; i < total; i++)
		assert_false(cache_blob_has(c, sha[i]));
	free(sha);
	cache_close(c);
}

struct worker {
	struct cache_fill	*f;
	struct cache_pack	*p;
	const uint8_t		*buf;
	size_t			 len;
	const uint8_t		*sha;
	int			 rc;
};

/* A fill's writes and finish, as a worker thread does them. */
static void *
fill_worker(void *arg)
{
	struct worker	*w = arg;
	size_t		 off, n;

	for (off = 0; off < w->len; off += n) {
		n = w->len - off < 4096 ? w->len - off : 4096;
		if ((w->rc = cache_fill_write(w->f, w->buf + off, n)) != 0)
			return NULL;
	}
	w->rc = cache_fill_finish(w->f, w->sha, NULL);
	return NULL;
}

static void *
pack_worker(void *arg)
{
	struct worker	*w = arg;

	w->rc = cache_pack_run(w->p);
	return NULL;
}

/*
 * The owner thread keeps using the cache (and reads the fill as it grows)
 * while one worker fills a blob and another packs one: the "any thread"
 * calls touch only their own object.
 */
static void
test_workers(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 64u << 20);
	struct cache_blob	*b = NULL, *x = NULL;
	struct worker		 wf = { 0 }, wp = { 0 };
	pthread_t		 tf, tp;
	size_t			 len = 3 * CACHE_CHUNK;
	uint8_t			*data = malloc(len), *text = malloc(len);
	uint8_t			*seen = malloc(len), sha[32], stext[32], a[32];
	uint64_t		 got = 0, w;
	ssize_t			 n;
	int			 i;

	assert_non_null(data);
	assert_non_null(text);
	assert_non_null(seen);
	tnoise(data, len, 11);
	ttext(text, len, 12);
	tsha(data, len, sha);
	tsha(text, len, stext);
	assert_int_equal(tput(c, text, len, &b), 0);

	wf.buf = data;
	wf.len = len;
	wf.sha = sha;
	assert_int_equal(cache_fill_begin(c, len, &wf.f), 0);
	assert_int_equal(cache_pack_begin(c, b, &wp.p), 1);
	assert_int_equal(pthread_create(&tf, NULL, fill_worker, &wf), 0);
	assert_int_equal(pthread_create(&tp, NULL, pack_worker, &wp), 0);
	/* Stream the fill as it lands, and keep the cache busy. */
	for (i = 0; got < len; i++) {
		w = cache_fill_written(wf.f);
		if (w > got) {
			n = pread(cache_fill_fd(wf.f), seen + got, w - got,
			    (off_t)got);
			assert_true(n > 0);
			got += (uint64_t)n;
		}
		if (i < 50) {
			put_tagged(c, i, 1000 + i, a);
			assert_int_equal(cache_blob_get(c, stext, &x), 0);
			cache_blob_put(x);
		}
	}
	assert_memory_equal(seen, data, len);
	assert_int_equal(pthread_join(tf, NULL), 0);
	assert_int_equal(pthread_join(tp, NULL), 0);
	assert_int_equal(wf.rc, 0);
	assert_int_equal(wp.rc, 0);
	assert_int_equal(cache_fill_commit(wf.f, &x), 0);
	assert_int_equal(cache_pack_finish(wp.p, wp.rc), 1);
	assert_int_equal(cache_pack_verify(x), 0);
	cache_blob_put(x);
	cache_blob_put(b);
	assert_int_equal(cache_blob_get(c, stext, &x), 0);
	assert_int_equal(cache_blob_form(x), CACHE_FORM_ZSTD);
	assert_int_equal(cache_pack_verify(x), 0);
	cache_blob_put(x);
	free(data);
	free(text);
	free(seen);
	cache_close(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fill_get,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_empty_blob,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_eviction_order,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_budget_churn,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pinned_not_evicted,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_set_budget,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_fill_mismatch,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_fill_size,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_commit,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_fill_fd,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_remove_pinned,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_clear,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_reopen_order,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_fill_enospc,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_fill_unkept,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_catalog,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pin_all,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_index_stress,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_workers,
		    tdir_setup, tdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
