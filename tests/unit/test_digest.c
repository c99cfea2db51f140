/*
 * test_digest.c: portholed's digest memo (hostd/digest.c) with real files
 * hashed on the libuv thread pool: a lookup finds exactly the file state
 * that was hashed, a rewritten file replaces its inode's entry in place,
 * and a full memo drops its oldest entry first, also with far more files
 * than hash buckets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digest.h"

#define MANY		300	/* files for the eviction test */
#define MANY_CAP	64	/* memo entries in it: 128 buckets */

struct fixture {
	uv_loop_t	 loop;
	char		 dir[64];
	struct digest	*d;
};

struct result {
	bool	 done;
	int	 status;
	uint8_t	 sha256[PH_SHA256_LEN];
};

/* A memo of cap entries on a fresh loop, in a temp dir of its own. */
static struct fixture *
fixture_new(size_t cap)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_digest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(digest_new(&f->loop, cap, &f->d), 0);
	return f;
}

/* Removes the files f0.. fn-1 and the dir, and frees everything. */
static void
fixture_free(struct fixture *f, int n)
{
	char path[128];

	digest_shutdown(f->d);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	digest_free(f->d);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%d", f->dir, i);
		unlink(path);
	}
	assert_int_equal(rmdir(f->dir), 0);
	free(f);
}

static void
on_digest(void *arg, int status, const uint8_t sha256[PH_SHA256_LEN])
{
	struct result *r = arg;

	r->done = true;
	r->status = status;
	if (sha256 != NULL)
		memcpy(r->sha256, sha256, PH_SHA256_LEN);
}

/*
 * Writes text to file f<i> (created, or rewritten in place), hashes it
 * through the service and returns its fstat in *st and digest in sha256.
 */
static void
hash_file(struct fixture *f, int i, const char *text, struct stat *st,
    uint8_t sha256[PH_SHA256_LEN])
{
	struct digest_wait *w;
	struct result r = { .done = false };
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/f%d", f->dir, i);
	assert_true((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0600)) >= 0);
	assert_int_equal(ph_io_write_full(fd, text, strlen(text)), 0);
	assert_int_equal(fstat(fd, st), 0);
	assert_int_equal(digest_start(f->d, fd, st, on_digest, &r, &w), 0);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	close(fd);
	assert_true(r.done);
	assert_int_equal(r.status, 0);
	memcpy(sha256, r.sha256, PH_SHA256_LEN);
}

/* True when the memo knows st, checking that it answers with want. */
static bool
known(struct fixture *f, const struct stat *st,
    const uint8_t want[PH_SHA256_LEN])
{
	uint8_t got[PH_SHA256_LEN];

	memset(got, 0, sizeof(got));
	if (digest_lookup(f->d, st, got) != 1)
		return false;
	assert_memory_equal(got, want, PH_SHA256_LEN);
	return true;
}

static void
test_lookup(void **state)
{
	struct fixture *f = fixture_new(8);
	uint8_t sha[PH_SHA256_LEN];
	char hex[65];
	struct stat st, other;

	(void)state;
	hash_file(f, 0, "abc", &st, sha);
	ph_util_sha256_hex(sha, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	assert_true(known(f, &st, sha));
	/* Any field of the key that differs is another file state. */
	other = st;
	other.st_mtim.tv_nsec ^= 1;
	assert_false(known(f, &other, sha));
	other = st;
	other.st_ctim.tv_sec++;
	assert_false(known(f, &other, sha));
	other = st;
	other.st_size++;
	assert_false(known(f, &other, sha));
	other = st;
	other.st_ino++;
	assert_false(known(f, &other, sha));
	other = st;
	other.st_dev++;
	assert_false(known(f, &other, sha));
	fixture_free(f, 1);
}

/*
 * With two slots: a rewritten file takes its old entry's slot and age, so
 * the next new file drops it, not the other one.
 */
static void
test_replacement(void **state)
{
	struct fixture *f = fixture_new(2);
	uint8_t sa[PH_SHA256_LEN], sa2[PH_SHA256_LEN], sb[PH_SHA256_LEN],
	    sc[PH_SHA256_LEN], sd[PH_SHA256_LEN];
	struct stat a, a2, b, c, d;

	(void)state;
	hash_file(f, 0, "first", &a, sa);
	hash_file(f, 1, "second", &b, sb);
	assert_true(known(f, &a, sa));
	assert_true(known(f, &b, sb));

	hash_file(f, 0, "first, rewritten", &a2, sa2);
	assert_int_equal(a2.st_ino, a.st_ino);
	assert_memory_not_equal(sa, sa2, PH_SHA256_LEN);
	assert_false(known(f, &a, sa));
	assert_true(known(f, &a2, sa2));
	assert_true(known(f, &b, sb));

	/* B rewritten with the same bytes stays in B's slot. */
	hash_file(f, 1, "second", &b, sb);
	assert_true(known(f, &a2, sa2));
	assert_true(known(f, &b, sb));

	hash_file(f, 2, "third", &c, sc);
	assert_false(known(f, &a2, sa2));
	assert_true(known(f, &b, sb));
	assert_true(known(f, &c, sc));

	hash_file(f, 3, "fourth", &d, sd);
	assert_false(known(f, &b, sb));
	assert_true(known(f, &c, sc));
	assert_true(known(f, &d, sd));
	fixture_free(f, 4);
}

/*
 * A memo of one entry (asked for 0) keeps only the last file. Its two
 * buckets see many files land in the bucket the entry just left, the case
 * where an evicted entry that stayed in its chain would loop it.
 */
static void
test_one_slot(void **state)
{
	struct fixture *f = fixture_new(0);
	uint8_t sha[2][PH_SHA256_LEN];
	struct stat st[2];
	char text[32];

	(void)state;
	for (int i = 0; i < 16; i++) {
		snprintf(text, sizeof(text), "file %d", i);
		hash_file(f, i, text, &st[i % 2], sha[i % 2]);
		assert_true(known(f, &st[i % 2], sha[i % 2]));
		if (i > 0)
			assert_false(known(f, &st[(i + 1) % 2],
			    sha[(i + 1) % 2]));
	}
	fixture_free(f, 16);
}

/*
 * MANY files through MANY_CAP slots: exactly the last MANY_CAP are known,
 * after every insertion, so chains stay right through each eviction.
 */
static void
test_eviction(void **state)
{
	struct fixture *f = fixture_new(MANY_CAP);
	static struct stat st[MANY];
	static uint8_t sha[MANY][PH_SHA256_LEN];
	char text[32];

	(void)state;
	for (int i = 0; i < MANY; i++) {
		snprintf(text, sizeof(text), "file %d", i);
		hash_file(f, i, text, &st[i], sha[i]);
		for (int j = 0; j <= i; j++)
			assert_int_equal(known(f, &st[j], sha[j]),
			    j > i - MANY_CAP);
	}
	fixture_free(f, MANY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_replacement),
		cmocka_unit_test(test_one_slot),
		cmocka_unit_test(test_eviction),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
