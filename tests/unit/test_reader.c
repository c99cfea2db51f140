/*
 * test_reader.c: the bounded reader and writer.
 *
 * Every get must fail on short input and leave the cursor where it was;
 * every put must fail on a full buffer and leave the cursor where it was.
 * Buffers are heap copies of exactly the tested length, so the sanitizers
 * catch a read one byte too far.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const uint8_t sample[] = {
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
};

/* A heap copy of the first n bytes of src, so overreads are caught. */
static uint8_t *
dup_bytes(const void *src, size_t n)
{
	uint8_t	*p = malloc(n == 0 ? 1 : n);

	assert_non_null(p);
	if (n > 0)
		memcpy(p, src, n);
	return p;
}

static void
test_integers_big_endian(void **state)
{
	struct ph_reader	r;
	uint8_t			u8;
	uint16_t		u16;
	uint32_t		u32;
	uint64_t		u64;

	(void)state;
	ph_reader_init(&r, sample, sizeof(sample));
	assert_int_equal(ph_reader_left(&r), 10);
	assert_int_equal(ph_reader_get_u8(&r, &u8), 0);
	assert_int_equal(u8, 0x01);
	assert_int_equal(ph_reader_get_u16(&r, &u16), 0);
	assert_int_equal(u16, 0x0203);
	assert_int_equal(ph_reader_get_u32(&r, &u32), 0);
	assert_int_equal(u32, 0x04050607);
	assert_int_equal(ph_reader_left(&r), 3);
	assert_int_equal(ph_reader_get_u64(&r, &u64), -EBADMSG);
	assert_int_equal(ph_reader_left(&r), 3);

	ph_reader_init(&r, sample, sizeof(sample));
	assert_int_equal(ph_reader_get_u64(&r, &u64), 0);
	assert_true(u64 == 0x0102030405060708ull);
	assert_int_equal(ph_reader_left(&r), 2);
}

/* Each integer get, on every length shorter than it needs. */
static void
test_short_integers(void **state)
{
	struct ph_reader	 r;
	uint8_t			*p, u8;
	uint16_t		 u16;
	uint32_t		 u32;
	uint64_t		 u64;
	size_t			 n;

	(void)state;
	for (n = 0; n < 8; n++) {
		p = dup_bytes(sample, n);
		ph_reader_init(&r, p, n);
		u64 = 99;
		assert_int_equal(ph_reader_get_u64(&r, &u64), -EBADMSG);
		assert_true(u64 == 0);
		assert_int_equal(r.off, 0);
		if (n < 4) {
			assert_int_equal(ph_reader_get_u32(&r, &u32), -EBADMSG);
			assert_int_equal(r.off, 0);
		}
		if (n < 2) {
			assert_int_equal(ph_reader_get_u16(&r, &u16), -EBADMSG);
			assert_int_equal(r.off, 0);
		}
		if (n < 1) {
			assert_int_equal(ph_reader_get_u8(&r, &u8), -EBADMSG);
			assert_int_equal(r.off, 0);
		}
		free(p);
	}
}

/* Short input after a partial read must leave the cursor mid-buffer. */
static void
test_short_after_progress(void **state)
{
	struct ph_reader	r;
	uint8_t			u8, dst[8];
	uint32_t		u32;
	const uint8_t		*ref;

	(void)state;
	ph_reader_init(&r, sample, 5);
	assert_int_equal(ph_reader_get_u8(&r, &u8), 0);
	assert_int_equal(ph_reader_get_u8(&r, &u8), 0);
	assert_int_equal(ph_reader_get_u32(&r, &u32), -EBADMSG);
	assert_int_equal(r.off, 2);
	assert_int_equal(ph_reader_get_bytes(&r, dst, 4), -EBADMSG);
	assert_int_equal(r.off, 2);
	assert_int_equal(ph_reader_get_ref(&r, 4, &ref), -EBADMSG);
	assert_null(ref);
	assert_int_equal(r.off, 2);
	assert_int_equal(ph_reader_get_bytes(&r, dst, 3), 0);
	assert_memory_equal(dst, sample + 2, 3);
	assert_int_equal(ph_reader_left(&r), 0);
	assert_int_equal(ph_reader_get_bytes(&r, dst, 0), 0);
	assert_int_equal(ph_reader_get_u8(&r, &u8), -EBADMSG);
}

static void
test_bytes_and_ref(void **state)
{
	struct ph_reader	 r;
	const uint8_t		*ref;
	uint8_t			 dst[10];
	size_t			 n;

	(void)state;
	for (n = 0; n <= sizeof(sample); n++) {
		ph_reader_init(&r, sample, n);
		if (n < sizeof(sample)) {
			assert_int_equal(ph_reader_get_bytes(&r, dst, n + 1),
			    -EBADMSG);
			assert_int_equal(ph_reader_get_ref(&r, n + 1, &ref),
			    -EBADMSG);
			assert_int_equal(r.off, 0);
		}
		assert_int_equal(ph_reader_get_ref(&r, n, &ref), 0);
		assert_ptr_equal(ref, sample);
		assert_int_equal(ph_reader_left(&r), 0);
	}
	/* A huge n must not wrap around. */
	ph_reader_init(&r, sample, sizeof(sample));
	assert_int_equal(ph_reader_get_u8(&r, dst), 0);
	assert_int_equal(ph_reader_get_ref(&r, SIZE_MAX, &ref), -EBADMSG);
	assert_int_equal(r.off, 1);
}

static void
test_str_ok(void **state)
{
	static const uint8_t	 in[] = { 0x00, 0x03, 'a', 'b', 'c',
	    0x00, 0x00 };
	struct ph_reader	 r;
	char			 s[8];

	(void)state;
	ph_reader_init(&r, in, sizeof(in));
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 16), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(r.off, 5);
	memset(s, 'x', sizeof(s));
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 16), 0);
	assert_string_equal(s, "");
	assert_int_equal(ph_reader_left(&r), 0);
}

/* Every truncation of a string fails and leaves the cursor unchanged. */
static void
test_str_short(void **state)
{
	static const uint8_t	 in[] = { 0x00, 0x04, 'a', 'b', 'c', 'd' };
	struct ph_reader	 r;
	uint8_t			*p;
	char			 s[16];
	size_t			 n;

	(void)state;
	for (n = 0; n < sizeof(in); n++) {
		p = dup_bytes(in, n);
		ph_reader_init(&r, p, n);
		assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 16),
		    -EBADMSG);
		assert_int_equal(r.off, 0);
		assert_string_equal(s, "");
		free(p);
	}
}

static void
test_str_embedded_nul(void **state)
{
	static const uint8_t	in[] = { 0x00, 0x03, 'a', 0x00, 'c' };
	static const uint8_t	in2[] = { 0x00, 0x01, 0x00 };
	struct ph_reader	r;
	char			s[8];

	(void)state;
	ph_reader_init(&r, in, sizeof(in));
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 16), -EILSEQ);
	assert_int_equal(r.off, 0);
	ph_reader_init(&r, in2, sizeof(in2));
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 16), -EILSEQ);
	assert_int_equal(r.off, 0);
}

/* The length is checked against max and cap before the bytes are read. */
static void
test_str_over_max(void **state)
{
	static const uint8_t	in[] = { 0x00, 0x05, 'a', 'b', 'c', 'd', 'e' };
	static const uint8_t	huge[] = { 0xff, 0xff, 'a' };
	struct ph_reader	r;
	char			s[8];

	(void)state;
	ph_reader_init(&r, in, sizeof(in));
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 4), -EMSGSIZE);
	assert_int_equal(r.off, 0);
	/* Fits max but not cap (5 bytes need 6 with the NUL). */
	assert_int_equal(ph_reader_get_str(&r, s, 5, 100), -EMSGSIZE);
	assert_int_equal(r.off, 0);
	/* Exactly max and exactly cap. */
	assert_int_equal(ph_reader_get_str(&r, s, 6, 5), 0);
	assert_string_equal(s, "abcde");
	/* A length far past the data is over max, not short. */
	ph_reader_init(&r, huge, sizeof(huge));
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 7), -EMSGSIZE);
	assert_int_equal(r.off, 0);
	assert_int_equal(ph_reader_get_str(&r, s, 0, 7), -EMSGSIZE);
}

static void
test_writer_roundtrip(void **state)
{
	uint8_t			buf[64];
	struct ph_writer	w;
	struct ph_reader	r;
	uint8_t			u8;
	uint16_t		u16;
	uint32_t		u32;
	uint64_t		u64;
	char			s[16];

	(void)state;
	ph_writer_init(&w, buf, sizeof(buf));
	assert_int_equal(ph_writer_put_u8(&w, 0xab), 0);
	assert_int_equal(ph_writer_put_u16(&w, 0xcdef), 0);
	assert_int_equal(ph_writer_put_u32(&w, 0x01234567), 0);
	assert_int_equal(ph_writer_put_u64(&w, 0x89abcdef01234567ull), 0);
	assert_int_equal(ph_writer_put_str(&w, "port"), 0);
	assert_int_equal(ph_writer_put_bytes(&w, "xy", 2), 0);
	assert_int_equal(w.off, 1 + 2 + 4 + 8 + 6 + 2);
	assert_int_equal(buf[1], 0xcd);
	assert_int_equal(buf[2], 0xef);

	ph_reader_init(&r, buf, w.off);
	assert_int_equal(ph_reader_get_u8(&r, &u8), 0);
	assert_int_equal(u8, 0xab);
	assert_int_equal(ph_reader_get_u16(&r, &u16), 0);
	assert_int_equal(u16, 0xcdef);
	assert_int_equal(ph_reader_get_u32(&r, &u32), 0);
	assert_int_equal(u32, 0x01234567);
	assert_int_equal(ph_reader_get_u64(&r, &u64), 0);
	assert_true(u64 == 0x89abcdef01234567ull);
	assert_int_equal(ph_reader_get_str(&r, s, sizeof(s), 16), 0);
	assert_string_equal(s, "port");
	assert_int_equal(ph_reader_left(&r), 2);
}

/* Each put on every buffer too small for it. */
static void
test_writer_full(void **state)
{
	struct ph_writer	 w;
	uint8_t			*buf;
	size_t			 cap;

	(void)state;
	for (cap = 0; cap < 8; cap++) {
		buf = malloc(cap == 0 ? 1 : cap);
		assert_non_null(buf);
		ph_writer_init(&w, buf, cap);
		assert_int_equal(ph_writer_put_u64(&w, 1), -ENOBUFS);
		if (cap < 4)
			assert_int_equal(ph_writer_put_u32(&w, 1), -ENOBUFS);
		if (cap < 2)
			assert_int_equal(ph_writer_put_u16(&w, 1), -ENOBUFS);
		if (cap < 1)
			assert_int_equal(ph_writer_put_u8(&w, 1), -ENOBUFS);
		if (cap < 7)
			assert_int_equal(ph_writer_put_str(&w, "abcde"),
			    -ENOBUFS);
		assert_int_equal(ph_writer_put_bytes(&w, sample, cap + 1),
		    -ENOBUFS);
		assert_int_equal(w.off, 0);
		free(buf);
	}
	/* After some progress too. */
	buf = malloc(3);
	assert_non_null(buf);
	ph_writer_init(&w, buf, 3);
	assert_int_equal(ph_writer_put_u16(&w, 7), 0);
	assert_int_equal(ph_writer_put_u16(&w, 7), -ENOBUFS);
	assert_int_equal(w.off, 2);
	assert_int_equal(ph_writer_put_u8(&w, 7), 0);
	assert_int_equal(ph_writer_put_u8(&w, 7), -ENOBUFS);
	assert_int_equal(w.off, 3);
	free(buf);
}

static void
test_put_str_too_long(void **state)
{
	struct ph_writer	 w;
	char			*s;
	uint8_t			*buf;
	size_t			 big = 70000;

	(void)state;
	s = malloc(big + 1);
	buf = malloc(big + 2);
	assert_non_null(s);
	assert_non_null(buf);
	memset(s, 'a', big);
	s[big] = '\0';
	ph_writer_init(&w, buf, big + 2);
	assert_int_equal(ph_writer_put_str(&w, s), -EMSGSIZE);
	assert_int_equal(w.off, 0);
	s[65535] = '\0';
	assert_int_equal(ph_writer_put_str(&w, s), 0);
	assert_int_equal(w.off, 65537);
	assert_int_equal(buf[0], 0xff);
	assert_int_equal(buf[1], 0xff);
	free(s);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_integers_big_endian),
		cmocka_unit_test(test_short_integers),
		cmocka_unit_test(test_short_after_progress),
		cmocka_unit_test(test_bytes_and_ref),
		cmocka_unit_test(test_str_ok),
		cmocka_unit_test(test_str_short),
		cmocka_unit_test(test_str_embedded_nul),
		cmocka_unit_test(test_str_over_max),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_writer_full),
		cmocka_unit_test(test_put_str_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
