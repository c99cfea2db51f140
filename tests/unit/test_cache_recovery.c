/*
 * test_cache_recovery.c: cache_open() after crashes and damage: leftover
 * temporary files, orphan blob files, rows whose file is missing or the
 * wrong size, corrupt rows (the frame table above all), a process killed
 * in the middle of a fill or a pack, and bad configurations.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_cache_common.h"

static void
write_file(const char *path, const void *buf, size_t len)
{
	int	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static bool
exists(const char *path)
{
	struct stat	st;

	return lstat(path, &st) == 0;
}

/* "x'<hex>'": a digest as an SQL blob literal. */
static void
sql_hex(const uint8_t *sha, char out[70])
{
	out[0] = 'x';
	out[1] = '\'';
	ph_util_hex_encode(sha, CACHE_SHA256_LEN, out + 2);
	out[66] = '\'';
	out[67] = '\0';
}

/* Runs "UPDATE blobs SET <set> WHERE sha256 = <sha>". */
static void
update_row(const struct tdir *t, const uint8_t *sha, const char *set)
{
	char	hex[70], sql[512];

	sql_hex(sha, hex);
	snprintf(sql, sizeof(sql), "UPDATE blobs SET %s WHERE sha256 = %s",
	    set, hex);
	tsql(t, sql);
}

static void
put_bytes(struct cache *c, int tag, size_t len, uint8_t sha[32])
{
	uint8_t	*buf = malloc(len);

	assert_non_null(buf);
	memset(buf, tag, len);
	tsha(buf, len, sha);
	assert_int_equal(tput(c, buf, len, NULL), 0);
	free(buf);
}

static void
test_bad_config(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = (struct cache *)&c;
	struct cache_config	 cfg = {
		.db_path = t->db,
		.blob_dir = t->blobs,
		.budget = 1000,
	};
	char			 db[4200];

	assert_int_equal(cache_open(NULL, &c), -EINVAL);
	assert_null(c);
	cfg.db_path = NULL;
	assert_int_equal(cache_open(&cfg, &c), -EINVAL);
	cfg.db_path = "";
	assert_int_equal(cache_open(&cfg, &c), -EINVAL);
	cfg.db_path = t->db;
	cfg.blob_dir = "";
	assert_int_equal(cache_open(&cfg, &c), -EINVAL);
	cfg.blob_dir = t->blobs;
	cfg.zstd_level = 1000;
	assert_int_equal(cache_open(&cfg, &c), -EINVAL);
	assert_null(c);
	/* The database's directory must exist. */
	cfg.zstd_level = 1;
	snprintf(db, sizeof(db), "%s/no/such/dir/cache.db", t->root);
	cfg.db_path = db;
	assert_int_equal(cache_open(&cfg, &c), -ENOENT);
	assert_null(c);
}

/* Two caches on one blob dir would delete each other's files. */
static void
test_locked(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1000), *c2 = NULL;
	struct cache_config	 cfg = {
		.db_path = t->db,
		.blob_dir = t->blobs,
		.budget = 1000,
	};

	assert_int_equal(cache_open(&cfg, &c2), -EBUSY);
	assert_null(c2);
	cache_close(c);
	c = tcache_open(t, 1000);
	cache_close(c);
}

/* A database from a newer version is refused, not misread. */
static void
test_newer_schema(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1000);
	struct cache_config	 cfg = {
		.db_path = t->db,
		.blob_dir = t->blobs,
		.budget = 1000,
	};

	cache_close(c);
	tsql(t, "PRAGMA user_version = 2");
	assert_int_equal(cache_open(&cfg, &c), -EIO);
	assert_null(c);
}

static void
test_tmp_leftovers(void **state)
{
	struct tdir	*t = *state;
	struct cache	*c = tcache_open(t, 1 << 20);
	char		 p1[4200], p2[4200], p3[4200], sub[4200];
	uint8_t		 a[32];

	put_bytes(c, 'a', 5000, a);
	cache_close(c);
	snprintf(p1, sizeof(p1), "%s/tmp/fill.0123456789abcdef", t->blobs);
	snprintf(p2, sizeof(p2), "%s/tmp/pack.fedcba9876543210", t->blobs);
	snprintf(p3, sizeof(p3), "%s/tmp/whatever", t->blobs);
	snprintf(sub, sizeof(sub), "%s/tmp/sub", t->blobs);
	write_file(p1, "partial", 7);
	write_file(p2, "partial", 7);
	write_file(p3, "x", 1);
	assert_int_equal(mkdir(sub, 0700), 0);

	c = tcache_open(t, 1 << 20);
	assert_false(exists(p1));
	assert_false(exists(p2));
	assert_false(exists(p3));
	assert_true(exists(sub));
	assert_true(cache_blob_has(c, a));
	cache_close(c);
}

/*
 * Blob-named files the index does not know go, in either form and in the
 * wrong fan-out directory too; a blob's file in the other form than its
 * row says is an orphan as well. Names that are not blob names stay.
 */
static void
test_orphans(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*b = NULL;
	struct cache_stats	 st;
	uint8_t			 a[32], o[32];
	char			 pa_zst[1024], po[1024], po_zst[1024];
	char			 wrong[2048], readme[2048], dir[1024];
	char			 upper[1024];
	size_t			 i;

	put_bytes(c, 'a', 3000, a);
	cache_close(c);

	tsha("orphan", 6, o);
	tblob_path(t, a, CACHE_FORM_ZSTD, pa_zst, sizeof(pa_zst));
	tblob_path(t, o, CACHE_FORM_RAW, po, sizeof(po));
	tblob_path(t, o, CACHE_FORM_ZSTD, po_zst, sizeof(po_zst));
	snprintf(dir, sizeof(dir), "%s", po);
	dir[strlen(t->blobs) + 3] = '\0';
	mkdir(dir, 0700);
	write_file(pa_zst, "zz", 2);
	write_file(po, "orphan", 6);
	write_file(po_zst, "zz", 2);
	/* o's name, but filed under a's fan-out directory. */
	snprintf(wrong, sizeof(wrong), "%.*s%s", (int)strlen(t->blobs) + 4,
	    pa_zst, po + strlen(t->blobs) + 4);
	write_file(wrong, "orphan", 6);
	snprintf(readme, sizeof(readme), "%s/README", dir);
	write_file(readme, "mine", 4);
	/* Upper-case hex is not a name the cache writes. */
	snprintf(upper, sizeof(upper), "%s", po);
	for (i = strlen(t->blobs) + 4; upper[i] != '\0'; i++)
		if (upper[i] >= 'a' && upper[i] <= 'f')
			upper[i] = (char)(upper[i] - 'a' + 'A');
	write_file(upper, "x", 1);

	c = tcache_open(t, 1 << 20);
	assert_false(exists(pa_zst));
	assert_false(exists(po));
	assert_false(exists(po_zst));
	assert_false(exists(wrong));
	assert_true(exists(readme));
	assert_true(exists(upper));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, 3000);
	assert_int_equal(cache_blob_get(c, a, &b), 0);
	assert_int_equal(cache_pack_verify(b), 0);
	cache_blob_put(b);
	cache_close(c);
	unlink(readme);
	unlink(upper);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
}

/* A row whose file is missing goes at open; one whose file is not the
 * recorded size goes, with the file, the first time it is pinned (open
 * reads directories, it does not stat every file). */
static void
test_missing_and_wrong_size(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*bl = NULL;
	struct cache_stats	 st;
	uint8_t			 a[32], b[32], d[32];
	char			 pa[4200], pb[4200];
	int			 fd;

	put_bytes(c, 'a', 1000, a);
	put_bytes(c, 'b', 2000, b);
	put_bytes(c, 'd', 4000, d);
	cache_close(c);
	tblob_path(t, a, CACHE_FORM_RAW, pa, sizeof(pa));
	tblob_path(t, b, CACHE_FORM_RAW, pb, sizeof(pb));
	assert_int_equal(unlink(pa), 0);
	fd = open(pb, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "!", 1), 1);
	close(fd);

	c = tcache_open(t, 1 << 20);
	assert_false(cache_blob_has(c, a));
	assert_true(cache_blob_has(c, d));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(tsql_int(t, "SELECT count(*) FROM blobs"), 2);
	assert_int_equal(cache_blob_get(c, b, &bl), -ENOENT);
	assert_null(bl);
	assert_false(cache_blob_has(c, b));
	assert_false(exists(pb));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, 4000);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.hits, 0);
	assert_int_equal(cache_blob_get(c, d, &bl), 0);
	cache_blob_put(bl);
	cache_close(c);
	assert_int_equal(tsql_int(t, "SELECT count(*) FROM blobs"), 1);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
}

/* Stores a compressible blob of len bytes and packs it. */
static void
put_packed(struct cache *c, size_t len, uint64_t seed, uint8_t sha[32])
{
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;
	uint8_t			*buf = malloc(len);

	assert_non_null(buf);
	ttext(buf, len, seed);
	tsha(buf, len, sha);
	assert_int_equal(tput(c, buf, len, &b), 0);
	assert_int_equal(cache_pack_begin(c, b, &p), 1);
	assert_int_equal(cache_pack_finish(p, cache_pack_run(p)), 1);
	cache_blob_put(b);
	free(buf);
}

/*
 * Each kind of damage to a row: the row is dropped at open and its file
 * removed; the healthy rows and files stay.
 */
static void
test_corrupt_rows(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 64u << 20);
	struct cache_stats	 st;
	struct cache_blob	*b = NULL;
	uint8_t			 z[7][32], r[5][32], ok_z[32], ok_r[32];
	char			 path[4200];
	size_t			 i;

	for (i = 0; i < 7; i++)
		put_packed(c, CACHE_CHUNK + 5000, i + 1, z[i]);
	for (i = 0; i < 5; i++)
		put_bytes(c, 'a' + (int)i, 1000, r[i]);
	put_packed(c, 2 * CACHE_CHUNK, 99, ok_z);
	put_bytes(c, 'z', 777, ok_r);
	cache_close(c);

	/* The frame table: wrong length; one frame missing; lengths that do
	 * not add up; a length past any frame; a zero length; present on a
	 * zstd row marked incompressible; one (empty) frame too many. */
	update_row(t, z[0], "frames = x'00000001'");
	update_row(t, z[1], "frames = substr(frames, 1, 4)");
	update_row(t, z[2], "frames = CAST(x'00000010' ||"
	    " substr(frames, 5) AS BLOB)");
	update_row(t, z[3], "frames = CAST(x'7fffffff' ||"
	    " substr(frames, 5) AS BLOB)");
	update_row(t, z[4], "frames = CAST(x'00000000' ||"
	    " substr(frames, 5) AS BLOB)");
	update_row(t, z[5], "incompressible = 1");
	update_row(t, z[6], "frames = CAST(frames || x'00000000' AS BLOB)");
	/* Raw rows: a negative size, an unknown form, frames on a raw
	 * blob, stored != size, a bad incompressible flag. */
	update_row(t, r[0], "size = -1");
	update_row(t, r[1], "form = 9");
	update_row(t, r[2], "frames = x'000003e8'");
	update_row(t, r[3], "stored = 999");
	update_row(t, r[4], "incompressible = 2");
	/* And a row that does not even have a digest. */
	tsql(t, "INSERT INTO blobs VALUES (x'0102', 1, 1, 1, 0, 0, NULL)");

	c = tcache_open(t, 64u << 20);
	for (i = 0; i < 7; i++) {
		assert_false(cache_blob_has(c, z[i]));
		tblob_path(t, z[i], CACHE_FORM_ZSTD, path, sizeof(path));
		assert_false(exists(path));
	}
	for (i = 0; i < 5; i++) {
		assert_false(cache_blob_has(c, r[i]));
		tblob_path(t, r[i], CACHE_FORM_RAW, path, sizeof(path));
		assert_false(exists(path));
	}
	cache_stats(c, &st);
	assert_int_equal(st.entries, 2);
	assert_int_equal(st.compressed, 1);
	assert_int_equal(cache_blob_get(c, ok_z, &b), 0);
	assert_int_equal(cache_blob_frames(b), 2);
	assert_int_equal(cache_pack_verify(b), 0);
	cache_blob_put(b);
	assert_int_equal(cache_blob_get(c, ok_r, &b), 0);
	assert_int_equal(cache_pack_verify(b), 0);
	cache_blob_put(b);
	cache_close(c);
	assert_int_equal(tsql_int(t, "SELECT count(*) FROM blobs"), 2);
	assert_int_equal(tcount_files(t->blobs, NULL), 2);
}

/* Bad catalog rows are dropped at open and never returned. */
static void
test_corrupt_catalog(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1000);
	struct cache_cat	 e = { .size = 10, .mode = 0100644 }, got;

	memset(e.sha256, 7, 32);
	assert_int_equal(cache_db_cat_put(c, "good", &e), 0);
	assert_int_equal(cache_db_cat_put(c, "short", &e), 0);
	assert_int_equal(cache_db_cat_put(c, "negative", &e), 0);
	assert_int_equal(cache_db_cat_put(c, "mode", &e), 0);
	cache_close(c);
	tsql(t, "UPDATE catalog SET sha256 = x'0102' WHERE path = 'short'");
	tsql(t, "UPDATE catalog SET size = -3 WHERE path = 'negative'");
	tsql(t, "UPDATE catalog SET mode = 4294967296 WHERE path = 'mode'");
	tsql(t, "INSERT INTO catalog VALUES ('', 1, 0, 0, 0, 0, 0,"
	    " zeroblob(32))");

	c = tcache_open(t, 1000);
	assert_int_equal(cache_db_cat_count(c), 1);
	assert_int_equal(cache_db_cat_get(c, "good", &got), 0);
	assert_int_equal(got.size, 10);
	assert_int_equal(cache_db_cat_get(c, "short", &got), -ENOENT);
	assert_int_equal(cache_db_cat_get(c, "negative", &got), -ENOENT);
	assert_int_equal(cache_db_cat_get(c, "mode", &got), -ENOENT);
	cache_close(c);
}

/*
 * Child: stores blob a, then starts more work and is killed with SIGKILL
 * at the point named by how: 0 while writing a fill, 1 after finishing a
 * fill but before its commit, 2 after a pack ran but before its finish.
 * Exits with a status instead when something fails.
 */
static void
crash_child(const struct tdir *t, int how)
{
	struct cache_config	 cfg = {
		.db_path = t->db,
		.blob_dir = t->blobs,
		.budget = 64u << 20,
	};
	struct cache		*c = NULL;
	struct cache_fill	*f = NULL;
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;
	static uint8_t		 buf[300000];
	uint8_t			 sha[32];

	ttext(buf, sizeof(buf), 42);
	tsha(buf, sizeof(buf), sha);
	if (cache_open(&cfg, &c) != 0)
		_exit(10);
	if (tput(c, buf, sizeof(buf), &b) != 0)
		_exit(11);
	switch (how) {
	case 0:
		if (cache_fill_begin(c, 100000, &f) != 0 ||
		    cache_fill_write(f, buf + 7, 50000) != 0)
			_exit(12);
		break;
	case 1:
		if (cache_fill_begin(c, 100000, &f) != 0 ||
		    cache_fill_write(f, buf + 7, 100000) != 0 ||
		    cache_fill_finish(f, NULL, NULL) != 0)
			_exit(13);
		break;
	default:
		if (cache_pack_begin(c, b, &p) != 1 || cache_pack_run(p) != 0)
			_exit(14);
		break;
	}
	kill(getpid(), SIGKILL);
	_exit(15);
}

static void
crash_at(void **state, int how)
{
	struct tdir		*t = *state;
	struct cache		*c;
	struct cache_blob	*b = NULL;
	struct cache_stats	 st;
	static uint8_t		 buf[300000];
	uint8_t			 sha[32], other[32];
	char			 tmp[4200];
	pid_t			 pid;
	int			 status = 0;

	ttext(buf, sizeof(buf), 42);
	tsha(buf, sizeof(buf), sha);
	tsha(buf + 7, 100000, other);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(t, how);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);

	/* The killed process left its temporary file behind. */
	snprintf(tmp, sizeof(tmp), "%s/tmp", t->blobs);
	assert_int_equal(tcount_files(tmp, NULL), 1);

	c = tcache_open(t, 64u << 20);
	assert_int_equal(tcount_files(tmp, NULL), 0);
	assert_false(cache_blob_has(c, other));
	assert_int_equal(cache_blob_get(c, sha, &b), 0);
	assert_int_equal(cache_blob_form(b), CACHE_FORM_RAW);
	assert_int_equal(cache_pack_verify(b), 0);
	cache_blob_put(b);
	cache_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, sizeof(buf));
	cache_close(c);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
}

static void
test_crash_writing(void **state)
{
	crash_at(state, 0);
}

static void
test_crash_before_commit(void **state)
{
	crash_at(state, 1);
}

static void
test_crash_before_pack_finish(void **state)
{
	crash_at(state, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_config,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_locked,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_tmp_leftovers,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_orphans,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_missing_and_wrong_size,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_rows,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_catalog,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_crash_writing,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_commit,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_pack_finish,
		    tdir_setup, tdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
