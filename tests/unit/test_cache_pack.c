/*
 * test_cache_pack.c: compression at rest (cache_pack_*), the frame table,
 * and cache_pack_verify() on both forms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "test_cache_common.h"

/* Three whole frames and a partial one. */
#define TEXT_LEN	(3 * CACHE_CHUNK + 12345)

/* Packs b's blob through the three steps; returns cache_pack_finish()'s
 * result (or cache_pack_begin()'s when that is not 1). */
static int
pack(struct cache *c, struct cache_blob *b)
{
	struct cache_pack	*p = NULL;
	int			 rc;

	if ((rc = cache_pack_begin(c, b, &p)) != 1) {
		assert_null(p);
		return rc;
	}
	assert_non_null(p);
	return cache_pack_finish(p, cache_pack_run(p));
}

/* Decodes every frame of a zstd blob through the frame API, checking each
 * frame's declared size first, and returns the content. */
static uint8_t *
decode_frames(struct cache_blob *b)
{
	uint64_t	size = cache_blob_size(b), off, pos = 0;
	uint32_t	n = cache_blob_frames(b), i, len;
	uint8_t		*out = malloc(size), *z;
	size_t		 want, d;

	assert_non_null(out);
	assert_int_equal(n, (size + CACHE_CHUNK - 1) / CACHE_CHUNK);
	for (i = 0; i < n; i++) {
		/* Frames follow each other with no gap. */
		assert_int_equal(cache_blob_frame(b, i, &off, &len), 0);
		assert_int_equal(off, pos);
		assert_true(len > 0 && len <= ZSTD_COMPRESSBOUND(CACHE_CHUNK));
		z = malloc(len);
		assert_non_null(z);
		assert_int_equal(pread(cache_blob_fd(b), z, len, (off_t)off),
		    len);
		want = size - (uint64_t)i * CACHE_CHUNK < CACHE_CHUNK ?
		    (size_t)(size - (uint64_t)i * CACHE_CHUNK) : CACHE_CHUNK;
		assert_int_equal(ZSTD_getFrameContentSize(z, len), want);
		d = ZSTD_decompress(out + (uint64_t)i * CACHE_CHUNK, want,
		    z, len);
		assert_false(ZSTD_isError(d));
		assert_int_equal(d, want);
		free(z);
		pos = off + len;
	}
	assert_int_equal(pos, cache_blob_stored(b));
	assert_int_equal(cache_blob_frame(b, n, &off, &len), -EINVAL);
	return out;
}

static void
test_pack_text(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 64u << 20);
	struct cache_blob	*raw = NULL, *z = NULL;
	struct cache_stats	 st;
	uint8_t			*data = malloc(TEXT_LEN), sha[32], *back;
	char			 path[4096];
	struct stat		 sb;

	assert_non_null(data);
	ttext(data, TEXT_LEN, 1);
	tsha(data, TEXT_LEN, sha);
	assert_int_equal(tput(c, data, TEXT_LEN, &raw), 0);
	assert_int_equal(pack(c, raw), 1);

	/* The pin taken before keeps the raw form and file. */
	assert_int_equal(cache_blob_form(raw), CACHE_FORM_RAW);
	assert_int_equal(cache_blob_stored(raw), TEXT_LEN);
	back = tread_fd(cache_blob_fd(raw), TEXT_LEN);
	assert_memory_equal(back, data, TEXT_LEN);
	free(back);
	assert_int_equal(cache_pack_verify(raw), 0);
	cache_blob_put(raw);

	assert_int_equal(cache_blob_get(c, sha, &z), 0);
	assert_int_equal(cache_blob_form(z), CACHE_FORM_ZSTD);
	assert_int_equal(cache_blob_size(z), TEXT_LEN);
	assert_true(cache_blob_stored(z) * 100 <= (uint64_t)TEXT_LEN * 90);
	assert_false(cache_blob_incompressible(z));
	assert_int_equal(cache_blob_frames(z), 4);
	back = decode_frames(z);
	assert_memory_equal(back, data, TEXT_LEN);
	free(back);
	assert_int_equal(cache_pack_verify(z), 0);

	cache_stats(c, &st);
	assert_int_equal(st.compressed, 1);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.bytes, cache_blob_stored(z));
	assert_int_equal(st.content_bytes, TEXT_LEN);
	assert_int_equal(st.reserved, 0);
	/* Only the .zst file is left. */
	tblob_path(t, sha, CACHE_FORM_RAW, path, sizeof(path));
	assert_int_equal(stat(path, &sb), -1);
	tblob_path(t, sha, CACHE_FORM_ZSTD, path, sizeof(path));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, cache_blob_stored(z));
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	/* Already packed: nothing to do. */
	assert_int_equal(pack(c, z), 0);
	cache_blob_put(z);
	cache_close(c);

	/* The frame table survives a reopen. */
	c = tcache_open(t, 64u << 20);
	assert_int_equal(cache_blob_get(c, sha, &z), 0);
	assert_int_equal(cache_blob_form(z), CACHE_FORM_ZSTD);
	back = decode_frames(z);
	assert_memory_equal(back, data, TEXT_LEN);
	free(back);
	assert_int_equal(cache_pack_verify(z), 0);
	cache_blob_put(z);
	cache_close(c);
	free(data);
}

/* Noise stays raw, is marked incompressible, and is never tried again,
 * not even after a reopen. */
static void
test_pack_noise(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 64u << 20);
	struct cache_blob	*b = NULL;
	struct cache_stats	 st;
	size_t			 len = CACHE_CHUNK + 1000;
	uint8_t			*data = malloc(len), sha[32];

	assert_non_null(data);
	tnoise(data, len, 2);
	tsha(data, len, sha);
	assert_int_equal(tput(c, data, len, &b), 0);
	assert_int_equal(pack(c, b), 0);
	assert_true(cache_blob_incompressible(b));
	assert_int_equal(cache_blob_form(b), CACHE_FORM_RAW);
	assert_int_equal(pack(c, b), 0);
	cache_stats(c, &st);
	assert_int_equal(st.compressed, 0);
	assert_int_equal(st.bytes, len);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	cache_blob_put(b);
	cache_close(c);

	assert_int_equal(tsql_int(t, "SELECT incompressible FROM blobs"), 1);
	c = tcache_open(t, 64u << 20);
	assert_int_equal(cache_blob_get(c, sha, &b), 0);
	assert_true(cache_blob_incompressible(b));
	assert_int_equal(pack(c, b), 0);
	assert_int_equal(cache_pack_verify(b), 0);
	cache_blob_put(b);
	cache_close(c);
	free(data);
}

/* Tiny blobs are not worth a frame. */
static void
test_pack_small(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 1 << 20);
	struct cache_blob	*b = NULL;
	uint8_t			 data[63];

	memset(data, 'z', sizeof(data));
	assert_int_equal(tput(c, data, sizeof(data), &b), 0);
	assert_int_equal(pack(c, b), 0);
	assert_false(cache_blob_incompressible(b));
	cache_blob_put(b);
	cache_close(c);
}

/* Aborting, or a failed run, leaves the blob as it was. */
static void
test_pack_abort(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 16u << 20);
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;
	struct cache_stats	 st;
	size_t			 len = 200000;
	uint8_t			*data = malloc(len);

	assert_non_null(data);
	ttext(data, len, 3);
	assert_int_equal(tput(c, data, len, &b), 0);
	assert_int_equal(cache_pack_begin(c, b, &p), 1);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, len * 90 / 100);
	/* One pack per blob at a time. */
	{
		struct cache_pack	*q = NULL;

		assert_int_equal(cache_pack_begin(c, b, &q), 0);
		assert_null(q);
	}
	cache_pack_abort(p);
	cache_pack_abort(NULL);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.compressed, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);

	/* A run that failed (here: canceled) is reported and changes
	 * nothing. */
	assert_int_equal(cache_pack_begin(c, b, &p), 1);
	assert_int_equal(cache_pack_finish(p, -ECANCELED), -ECANCELED);
	assert_false(cache_blob_incompressible(b));
	assert_int_equal(cache_blob_form(b), CACHE_FORM_RAW);
	assert_int_equal(tcount_files(t->blobs, NULL), 1);
	assert_int_equal(pack(c, b), 1);
	cache_blob_put(b);
	cache_close(c);
	free(data);
}

/* The pack reservation is part of the budget: with the blob itself taking
 * 1 MiB of a 1.5 MiB budget, there is no room for 900 KiB more. */
static void
test_pack_no_room(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, CACHE_CHUNK * 3 / 2);
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;
	struct cache_stats	 st;
	uint8_t			*data = malloc(CACHE_CHUNK);

	assert_non_null(data);
	ttext(data, CACHE_CHUNK, 4);
	assert_int_equal(tput(c, data, CACHE_CHUNK, &b), 0);
	assert_int_equal(cache_pack_begin(c, b, &p), -ENOSPC);
	assert_null(p);
	cache_stats(c, &st);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(st.entries, 1);
	/* 1 MiB + 90% of it fits in 2 MiB. */
	assert_int_equal(cache_set_budget(c, 2 * CACHE_CHUNK), 0);
	assert_int_equal(pack(c, b), 1);
	cache_blob_put(b);
	cache_close(c);
	free(data);
}

/* Packing hashes what it reads: a damaged raw file is found and dropped
 * rather than given a fresh compressed form. */
static void
test_pack_corrupt_source(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 16u << 20);
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;
	size_t			 len = 100000;
	uint8_t			*data = malloc(len), sha[32];
	char			 path[4096];
	int			 rc;

	assert_non_null(data);
	ttext(data, len, 5);
	tsha(data, len, sha);
	assert_int_equal(tput(c, data, len, &b), 0);
	tblob_path(t, sha, CACHE_FORM_RAW, path, sizeof(path));
	tflip(path, 777);
	assert_int_equal(cache_pack_begin(c, b, &p), 1);
	rc = cache_pack_run(p);
	assert_int_equal(rc, -EBADMSG);
	assert_int_equal(cache_pack_finish(p, rc), -EBADMSG);
	assert_false(cache_blob_has(c, sha));
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	cache_blob_put(b);
	cache_close(c);
	free(data);
}

/* A blob removed while it was being packed stays removed. */
static void
test_pack_removed(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 16u << 20);
	struct cache_blob	*b = NULL;
	struct cache_pack	*p = NULL;
	struct cache_stats	 st;
	size_t			 len = 100000;
	uint8_t			*data = malloc(len), sha[32];

	assert_non_null(data);
	ttext(data, len, 6);
	tsha(data, len, sha);
	assert_int_equal(tput(c, data, len, &b), 0);
	assert_int_equal(cache_pack_begin(c, b, &p), 1);
	cache_blob_put(b);	/* the pack holds its own pin */
	assert_int_equal(cache_pack_run(p), 0);
	assert_int_equal(cache_clear(c), 0);
	assert_int_equal(cache_pack_finish(p, 0), 0);
	assert_false(cache_blob_has(c, sha));
	cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.pinned, 0);
	assert_int_equal(st.reserved, 0);
	assert_int_equal(tcount_files(t->blobs, NULL), 0);
	cache_close(c);
	assert_int_equal(tsql_int(t, "SELECT count(*) FROM blobs"), 0);
	free(data);
}

/* verify finds one flipped byte in either form, and a truncated file. */
static void
test_verify_corrupt(void **state)
{
	struct tdir		*t = *state;
	struct cache		*c = tcache_open(t, 64u << 20);
	struct cache_blob	*b = NULL, *z = NULL;
	size_t			 len = 2 * CACHE_CHUNK + 99;
	uint8_t			*raw = malloc(len), *text = malloc(len);
	uint8_t			 sraw[32], stext[32];
	char			 path[4096];
	uint64_t		 off;
	uint32_t		 flen;

	assert_non_null(raw);
	assert_non_null(text);
	tnoise(raw, len, 7);
	ttext(text, len, 8);
	tsha(raw, len, sraw);
	tsha(text, len, stext);
	assert_int_equal(tput(c, raw, len, NULL), 0);
	assert_int_equal(tput(c, text, len, &z), 0);
	assert_int_equal(pack(c, z), 1);
	cache_blob_put(z);

	/* Raw: one byte in the middle. */
	tblob_path(t, sraw, CACHE_FORM_RAW, path, sizeof(path));
	tflip(path, CACHE_CHUNK + 5);
	assert_int_equal(cache_blob_get(c, sraw, &b), 0);
	assert_int_equal(cache_pack_verify(b), -EBADMSG);
	cache_blob_remove(b);
	cache_blob_put(b);
	assert_false(cache_blob_has(c, sraw));

	/* Zstd: one byte inside the second frame. */
	assert_int_equal(cache_blob_get(c, stext, &z), 0);
	assert_int_equal(cache_pack_verify(z), 0);
	assert_int_equal(cache_blob_frame(z, 1, &off, &flen), 0);
	tblob_path(t, stext, CACHE_FORM_ZSTD, path, sizeof(path));
	tflip(path, off + flen / 2);
	assert_int_equal(cache_pack_verify(z), -EBADMSG);
	/* Put back as it was, then damage a frame header's declared size. */
	tflip(path, off + flen / 2);
	assert_int_equal(cache_pack_verify(z), 0);
	tflip(path, off + 5);
	assert_int_equal(cache_pack_verify(z), -EBADMSG);
	tflip(path, off + 5);
	assert_int_equal(cache_pack_verify(z), 0);
	/* A file one byte short. */
	assert_int_equal(truncate(path, (off_t)cache_blob_stored(z) - 1), 0);
	assert_int_equal(cache_pack_verify(z), -EBADMSG);
	cache_blob_put(z);
	/* And such a file is not served again. */
	assert_int_equal(cache_blob_get(c, stext, &z), -ENOENT);
	assert_false(cache_blob_has(c, stext));
	cache_close(c);
	free(raw);
	free(text);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pack_text,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pack_noise,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pack_small,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pack_abort,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pack_no_room,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pack_corrupt_source,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_pack_removed,
		    tdir_setup, tdir_teardown),
		cmocka_unit_test_setup_teardown(test_verify_corrupt,
		    tdir_setup, tdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
