/*
 * test_framer.c: the incremental frame reader (ph_framer_*).
 *
 * A stream of frames must come out the same however it is cut: whole,
 * split at every byte, or a byte at a time. Truncated input waits,
 * oversized and malformed headers are refused before their payload is
 * read, and a header taken alone hands its payload out piece by piece.
 * Buffers are heap blocks of exactly the tested size, so the sanitizers
 * catch a byte too far.
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

/* Room for the sample stream's largest frame and no more. */
#define FRAMER_CAP	(PH_HDR_LEN + 600)

struct sample {
	uint8_t	*bytes;		/* the frames, back to back */
	size_t	 len;
	size_t	 off[4];	/* where each frame starts */
	size_t	 n;
};

/* Appends the encoding of m to s. */
static void
sample_add(struct sample *s, const struct ph_msg *m)
{
	ssize_t	n;

	s->off[s->n++] = s->len;
	n = ph_message_encode(m, s->bytes + s->len, 4096 - s->len);
	assert_true(n > 0);
	s->len += (size_t)n;
}

/* PING, GET, DATA (600 bytes) and ERROR, back to back. */
static void
sample_make(struct sample *s, uint8_t *data)
{
	struct ph_msg	m;

	memset(s, 0, sizeof(*s));
	s->bytes = malloc(4096);
	assert_non_null(s->bytes);
	memset(&m, 0, sizeof(m));
	m.type = PH_PING;
	m.u.ping_nonce = 0x0102030405060708ull;
	sample_add(s, &m);
	m.type = PH_GET;
	m.u.get.offset = 7;
	strcpy(m.u.get.path, "dir/file.txt");
	sample_add(s, &m);
	for (size_t i = 0; i < 600; i++)
		data[i] = (uint8_t)(i * 7);
	m.type = PH_DATA;
	m.u.data.bytes = data;
	m.u.data.len = 600;
	sample_add(s, &m);
	memset(&m, 0, sizeof(m));
	m.type = PH_ERROR;
	m.u.error.code = PH_ERR_NOT_FOUND;
	strcpy(m.u.error.message, "no such file");
	sample_add(s, &m);
}

/* Checks that (h, p) is frame i of s, byte for byte. */
static void
sample_check(const struct sample *s, size_t i, const struct ph_header *h,
    const uint8_t *p)
{
	size_t	end = i + 1 < s->n ? s->off[i + 1] : s->len;

	assert_int_equal(h->type, s->bytes[s->off[i] + 3]);
	assert_int_equal(PH_HDR_LEN + h->length, end - s->off[i]);
	assert_memory_equal(p, s->bytes + s->off[i] + PH_HDR_LEN, h->length);
}

/*
 * Feeds s in two pieces, cut at k, then in pieces of step bytes, taking
 * every frame that is complete after each piece.
 */
static void
run_split(const struct sample *s, size_t k, size_t step)
{
	struct ph_framer	 f;
	struct ph_header	 h;
	uint8_t			*fp;
	uint8_t			*buf = malloc(FRAMER_CAP);
	size_t			 fed = 0, got = 0, n;
	int			 r;

	assert_non_null(buf);
	ph_framer_init(&f, buf, FRAMER_CAP);
	while (fed < s->len) {
		n = fed < k ? k - fed : step;
		if (n > s->len - fed)
			n = s->len - fed;
		/* The buffer holds the largest frame, not the whole stream. */
		n = ph_framer_feed(&f, s->bytes + fed, n);
		fed += n;
		while ((r = ph_framer_next(&f, &h, &fp)) == 1) {
			sample_check(s, got++, &h, fp);
			n++;
		}
		assert_true(n > 0);
		assert_int_equal(r, 0);
		assert_null(fp);
		/* What is missing is exactly the rest of the next frame. */
		if (got < s->n)
			assert_true(ph_framer_need(&f) > 0);
	}
	assert_int_equal(got, s->n);
	assert_int_equal(ph_framer_pending(&f), 0);
	assert_int_equal(ph_framer_need(&f), PH_HDR_LEN);
	free(buf);
}

static void
test_whole_and_split_at_every_byte(void **state)
{
	struct sample	s;
	uint8_t		data[600];

	(void)state;
	sample_make(&s, data);
	run_split(&s, s.len, 1);
	for (size_t k = 0; k <= s.len; k++)
		run_split(&s, k, s.len);
	run_split(&s, 0, 1);
	run_split(&s, 0, 13);
	free(s.bytes);
}

static void
test_truncated(void **state)
{
	struct sample		 s;
	struct ph_framer	 f;
	struct ph_header	 h;
	uint8_t			*fp;
	uint8_t			 data[600], *buf = malloc(FRAMER_CAP);
	size_t			 flen;

	(void)state;
	assert_non_null(buf);
	sample_make(&s, data);
	flen = s.off[1];

	/* Nothing, then a header short of one byte. */
	ph_framer_init(&f, buf, FRAMER_CAP);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 0);
	assert_int_equal(ph_framer_header(&f, &h), -EAGAIN);
	assert_int_equal(ph_framer_need(&f), PH_HDR_LEN);
	ph_framer_feed(&f, s.bytes, PH_HDR_LEN - 1);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 0);
	assert_int_equal(ph_framer_need(&f), 1);

	/* The header, and a payload short of one byte. */
	ph_framer_feed(&f, s.bytes + PH_HDR_LEN - 1, flen - PH_HDR_LEN);
	assert_int_equal(ph_framer_header(&f, &h), 0);
	assert_int_equal(h.type, PH_PING);
	assert_int_equal(h.length, 8);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 0);
	assert_int_equal(ph_framer_need(&f), 1);
	assert_int_equal(ph_framer_pending(&f), flen - 1);
	ph_framer_feed(&f, s.bytes + flen - 1, 1);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 1);
	sample_check(&s, 0, &h, fp);

	/* A reset forgets a half frame. */
	ph_framer_feed(&f, s.bytes, 5);
	ph_framer_reset(&f);
	assert_int_equal(ph_framer_pending(&f), 0);
	assert_int_equal(ph_framer_need(&f), PH_HDR_LEN);

	/* No storage at all: it needs bytes forever. */
	ph_framer_init(&f, NULL, 100);
	assert_int_equal(ph_framer_feed(&f, s.bytes, 8), 0);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 0);
	free(s.bytes);
	free(buf);
}

/* Feeds the 8 header bytes hdr to a fresh framer; returns next()'s code. */
static int
next_after_header(const uint8_t hdr[PH_HDR_LEN], struct ph_header *h)
{
	struct ph_framer	 f;
	uint8_t			*fp;
	uint8_t			*buf = malloc(PH_HDR_LEN + 64);
	int			 r;

	assert_non_null(buf);
	ph_framer_init(&f, buf, PH_HDR_LEN + 64);
	assert_int_equal(ph_framer_feed(&f, hdr, PH_HDR_LEN), PH_HDR_LEN);
	r = ph_framer_next(&f, h, &fp);
	if (r < 0) {
		/* A refused frame stays unread. */
		assert_int_equal(ph_framer_pending(&f), PH_HDR_LEN);
		assert_int_equal(ph_framer_need(&f),
		    r == -ENOBUFS ? h->length : 0);
		assert_null(fp);
	}
	free(buf);
	return r;
}

static void
test_oversized_and_bad_headers(void **state)
{
	struct ph_header	h;
	uint8_t			hdr[PH_HDR_LEN];

	(void)state;
	/* Per-type limits, before any payload byte. */
	ph_frame_header_write(hdr, PH_PING, 9);
	assert_int_equal(next_after_header(hdr, &h), -EMSGSIZE);
	assert_int_equal(h.type, PH_PING);
	assert_int_equal(h.length, 0);
	ph_frame_header_write(hdr, PH_CTL, PH_MAX_REQUEST_PAYLOAD + 1);
	assert_int_equal(next_after_header(hdr, &h), -EMSGSIZE);
	ph_frame_header_write(hdr, PH_DATA, PH_DATA_CHUNK + 1);
	assert_int_equal(next_after_header(hdr, &h), -EMSGSIZE);
	ph_frame_header_write(hdr, PH_CTL_REPLY, 0xffffffffu);
	assert_int_equal(next_after_header(hdr, &h), -EMSGSIZE);

	/* Allowed by the protocol, larger than this buffer. */
	ph_frame_header_write(hdr, PH_DATA, 65);
	assert_int_equal(next_after_header(hdr, &h), -ENOBUFS);
	assert_int_equal(h.type, PH_DATA);
	ph_frame_header_write(hdr, PH_DATA, 64);
	assert_int_equal(next_after_header(hdr, &h), 0);

	/* Magic, type and version, with the raw bytes kept. */
	ph_frame_header_write(hdr, PH_PING, 8);
	hdr[0] = 'X';
	assert_int_equal(next_after_header(hdr, &h), -EPROTO);
	ph_frame_header_write(hdr, 0x06, 0);
	assert_int_equal(next_after_header(hdr, &h), -EPROTO);
	assert_int_equal(h.type, 0x06);
	ph_frame_header_write(hdr, PH_HELLO, 12);
	hdr[2] = PH_PROTO_VERSION + 1;
	assert_int_equal(next_after_header(hdr, &h), -EPROTONOSUPPORT);
	assert_int_equal(h.version, PH_PROTO_VERSION + 1);
	assert_int_equal(h.type, PH_HELLO);
	hdr[2] = 0;
	assert_int_equal(next_after_header(hdr, &h), -EPROTONOSUPPORT);
}

static void
test_header_only(void **state)
{
	struct sample		 s;
	struct ph_framer	 f;
	struct ph_header	 h;
	const uint8_t		*p;
	uint8_t			*fp;
	uint8_t			 data[600], out[600];
	uint8_t			*buf = malloc(PH_HDR_LEN + 100);
	size_t			 got, n, fed, end;

	(void)state;
	assert_non_null(buf);
	sample_make(&s, data);
	/* The DATA frame (600 bytes) cannot fit, so it is taken header first. */
	ph_framer_init(&f, buf, PH_HDR_LEN + 100);
	fed = ph_framer_feed(&f, s.bytes + s.off[2], PH_HDR_LEN + 100);
	assert_int_equal(ph_framer_next(&f, &h, &fp), -ENOBUFS);
	assert_int_equal(ph_framer_body_left(&f), 0);
	assert_int_equal(ph_framer_take_header(&f, &h), 0);
	assert_int_equal(h.type, PH_DATA);
	assert_int_equal(h.length, 600);
	assert_int_equal(ph_framer_body_left(&f), 600);
	assert_int_equal(ph_framer_next(&f, &h, &fp), -EBUSY);
	assert_int_equal(ph_framer_header(&f, &h), -EBUSY);

	/* What was read along with the header, at most max at a time. */
	assert_int_equal(ph_framer_body(&f, 30, &p), 30);
	memcpy(out, p, 30);
	got = 30;
	assert_int_equal(ph_framer_body(&f, SIZE_MAX, &p), 70);
	memcpy(out + got, p, 70);
	got += 70;
	assert_int_equal(ph_framer_body(&f, SIZE_MAX, &p), 0);
	assert_null(p);
	assert_int_equal(ph_framer_need(&f), 500);

	/* Part read around the framer, straight into place. */
	memcpy(out + got, s.bytes + s.off[2] + fed, 200);
	ph_framer_body_skip(&f, 200);
	got += 200;
	fed += 200;
	assert_int_equal(ph_framer_body_left(&f), 300);

	/* The rest through the buffer, with the next frame behind it. */
	end = s.len - s.off[2];
	while (fed < end) {
		n = end - fed < 64 ? end - fed : 64;
		assert_int_equal(ph_framer_feed(&f, s.bytes + s.off[2] + fed,
		    n), n);
		fed += n;
		while ((n = ph_framer_body(&f, SIZE_MAX, &p)) > 0) {
			memcpy(out + got, p, n);
			got += n;
		}
	}
	assert_int_equal(got, 600);
	assert_memory_equal(out, data, 600);
	assert_int_equal(ph_framer_body_left(&f), 0);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 1);
	sample_check(&s, 3, &h, fp);

	/* A skip past the payload is clamped. */
	ph_framer_reset(&f);
	ph_framer_feed(&f, s.bytes + s.off[2], PH_HDR_LEN);
	assert_int_equal(ph_framer_take_header(&f, &h), 0);
	ph_framer_body_skip(&f, 1000);
	assert_int_equal(ph_framer_body_left(&f), 0);
	assert_int_equal(ph_framer_need(&f), PH_HDR_LEN);
	free(s.bytes);
	free(buf);
}

static void
test_space_and_compact(void **state)
{
	struct ph_framer	 f;
	struct ph_header	 h;
	uint8_t			*fp;
	uint8_t			*buf = malloc(32), *dst, frame[PH_HDR_LEN + 8];
	size_t			 room;

	(void)state;
	assert_non_null(buf);
	memset(frame, 0, sizeof(frame));
	ph_frame_header_write(frame, PH_PING, 8);
	ph_framer_init(&f, buf, 32);
	dst = ph_framer_space(&f, SIZE_MAX, &room);
	assert_ptr_equal(dst, buf);
	assert_int_equal(room, 32);
	/* One frame and 4 bytes of the next. */
	memcpy(dst, frame, sizeof(frame));
	memcpy(dst + sizeof(frame), frame, 4);
	ph_framer_commit(&f, sizeof(frame) + 4);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 1);
	assert_ptr_equal(fp, buf + PH_HDR_LEN);

	/* Enough room behind the unread bytes: nothing moves. */
	dst = ph_framer_space(&f, 12, &room);
	assert_ptr_equal(dst, buf + 20);
	assert_int_equal(room, 12);
	/* Not enough: the 4 unread bytes move to the front. */
	dst = ph_framer_space(&f, 13, &room);
	assert_ptr_equal(dst, buf + 4);
	assert_int_equal(room, 28);
	assert_memory_equal(buf, frame, 4);
	/* Commit is clamped to the room; feed takes what fits. */
	ph_framer_commit(&f, 100);
	assert_int_equal(ph_framer_pending(&f), 32);
	assert_int_equal(ph_framer_feed(&f, frame, 1), 0);
	assert_int_equal(ph_framer_compact(&f), 32);

	/* Compact for a caller that keeps its own count. */
	ph_framer_reset(&f);
	ph_framer_feed(&f, frame, sizeof(frame));
	ph_framer_feed(&f, frame, 3);
	assert_int_equal(ph_framer_next(&f, &h, &fp), 1);
	assert_int_equal(ph_framer_compact(&f), 3);
	assert_int_equal(ph_framer_pending(&f), 3);
	assert_memory_equal(buf, frame, 3);
	/* Nothing unread: the whole buffer is free again. */
	ph_framer_reset(&f);
	ph_framer_feed(&f, frame, sizeof(frame));
	assert_int_equal(ph_framer_next(&f, &h, &fp), 1);
	dst = ph_framer_space(&f, 0, &room);
	assert_ptr_equal(dst, buf);
	assert_int_equal(room, 32);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_and_split_at_every_byte),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized_and_bad_headers),
		cmocka_unit_test(test_header_only),
		cmocka_unit_test(test_space_and_compact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
