/*
 * test_wbuf.c: portholed's output buffer as an in-process peer reads it:
 * frames and a file tail copied into scattered memory, in any slice
 * sizes, and a file that ends early padded with zeros and reported.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wbuf.h"

#define FILE_LEN	(200 * 1024)

/* A temporary file of FILE_LEN bytes of a known pattern. */
static int
pattern_file(uint8_t *want)
{
	char path[] = "/tmp/test_wbuf.XXXXXX";
	int fd;

	assert_true((fd = mkstemp(path)) >= 0);
	unlink(path);
	for (size_t i = 0; i < FILE_LEN; i++)
		want[i] = (uint8_t)(i * 7 + i / 251);
	assert_int_equal(ph_io_write_full(fd, want, FILE_LEN), 0);
	return fd;
}

/* Copies everything out of w through pieces of odd sizes into out. */
static size_t
drain(struct wbuf *w, uint8_t *out, size_t cap, size_t step)
{
	struct iovec iov[2];
	size_t got = 0, n, want;

	while (!wbuf_empty(w)) {
		want = step < cap - got ? step : cap - got;
		assert_true(want > 0);
		/* Two pieces; the first begins with a byte that is skipped. */
		iov[0].iov_base = out + got - 1;
		iov[0].iov_len = 1 + want / 3;
		iov[1].iov_base = out + got + want / 3;
		iov[1].iov_len = want - want / 3;
		n = wbuf_copy_out(w, iov, 2, 1, want);
		assert_true(n == want || wbuf_empty(w));
		got += n;
	}
	return got;
}

static void
test_frames_and_tail(void **state)
{
	static uint8_t want[FILE_LEN], out[FILE_LEN + 64];
	static const size_t steps[] = { 1, 7, 4096, 65536, FILE_LEN + 64 };
	struct wbuf *w;
	uint8_t *p;
	int fd;

	(void)state;
	fd = pattern_file(want);
	for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		assert_int_equal(wbuf_new(&w), 0);
		assert_non_null(p = wbuf_reserve(w, 5));
		memcpy(p, "HEADR", 5);
		wbuf_commit(w, 5);
		wbuf_set_tail(w, fd, 1000, FILE_LEN - 1000);
		memset(out, 0xee, sizeof(out));
		/* out[-1] is never written: the first piece starts before. */
		assert_int_equal(drain(w, out + 1, sizeof(out) - 1, steps[s]),
		    5 + FILE_LEN - 1000);
		assert_int_equal(out[0], 0xee);
		assert_memory_equal(out + 1, "HEADR", 5);
		assert_memory_equal(out + 6, want + 1000, FILE_LEN - 1000);
		assert_int_equal(wbuf_file_error(w), 0);
		wbuf_free(w);
	}
	close(fd);
}

static void
test_short_file_padded(void **state)
{
	static uint8_t want[FILE_LEN], out[FILE_LEN + 64];
	struct wbuf *w;
	int fd;

	(void)state;
	fd = pattern_file(want);
	assert_int_equal(ftruncate(fd, 5000), 0);
	assert_int_equal(wbuf_new(&w), 0);
	wbuf_set_tail(w, fd, 0, 9000);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(drain(w, out + 1, sizeof(out) - 1, 3000), 9000);
	assert_memory_equal(out + 1, want, 5000);
	for (size_t i = 5000; i < 9000; i++)
		assert_int_equal(out[1 + i], 0);
	assert_int_equal(wbuf_file_error(w), -ENODATA);
	assert_int_equal(wbuf_file_error(w), 0);
	wbuf_free(w);
	close(fd);
}

static void
test_unreadable_file_padded(void **state)
{
	uint8_t out[256];
	struct iovec iov = { out, sizeof(out) };
	struct wbuf *w;
	int fd;

	(void)state;
	/* A write-only descriptor: preadv fails with EBADF. */
	assert_true((fd = open("/dev/null", O_WRONLY)) >= 0);
	assert_int_equal(wbuf_new(&w), 0);
	wbuf_set_tail(w, fd, 0, 100);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(wbuf_copy_out(w, &iov, 1, 0, sizeof(out)), 100);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(out[100], 0xee);
	assert_int_equal(wbuf_file_error(w), -EBADF);
	assert_true(wbuf_empty(w));
	wbuf_free(w);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frames_and_tail),
		cmocka_unit_test(test_short_file_padded),
		cmocka_unit_test(test_unreadable_file_padded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
