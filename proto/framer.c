/*
 * framer.c: the one incremental frame reader every peer goes through.
 *
 * Bytes go into a caller-owned buffer; whole frames (or a header alone,
 * for payloads the caller wants to place itself) come out. The header is
 * checked by ph_frame_header_parse() before its length is trusted, so the
 * per-type limits and the version check live in one place.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"

void
ph_framer_init(struct ph_framer *f, void *buf, size_t cap)
{
	f->buf = buf;
	f->cap = buf == NULL ? 0 : cap;
	f->start = 0;
	f->end = 0;
	f->body_left = 0;
}

void
ph_framer_reset(struct ph_framer *f)
{
	f->start = 0;
	f->end = 0;
	f->body_left = 0;
}

size_t
ph_framer_pending(const struct ph_framer *f)
{
	return f->end - f->start;
}

/* Moves the unread bytes to the front of the buffer. */
static void
ph_framer_shift(struct ph_framer *f)
{
	size_t have = f->end - f->start;

	if (f->start == 0)
		return;
	if (have > 0)
		memmove(f->buf, f->buf + f->start, have);
	f->start = 0;
	f->end = have;
}

size_t
ph_framer_compact(struct ph_framer *f)
{
	ph_framer_shift(f);
	return f->end;
}

/* Moves the unread bytes only when the room behind them is short. */
uint8_t *
ph_framer_space(struct ph_framer *f, size_t want, size_t *room)
{
	if (f->start == f->end)
		f->start = f->end = 0;
	else if (f->cap - f->end < want)
		ph_framer_shift(f);
	*room = f->cap - f->end;
	return f->buf == NULL ? NULL : f->buf + f->end;
}

void
ph_framer_commit(struct ph_framer *f, size_t n)
{
	if (n > f->cap - f->end)
		n = f->cap - f->end;
	f->end += n;
}

/* ph_framer_space() and ph_framer_commit() for bytes already in memory. */
size_t
ph_framer_feed(struct ph_framer *f, const void *src, size_t n)
{
	uint8_t *dst;
	size_t room;

	dst = ph_framer_space(f, n, &room);
	if (n > room)
		n = room;
	if (n > 0)
		memcpy(dst, src, n);
	f->end += n;
	return n;
}

/*
 * Like ph_frame_header_parse(), but on failure h keeps the raw version and type
 * bytes, which callers quote in their answer.
 */
int
ph_framer_header(const struct ph_framer *f, struct ph_header *h)
{
	const uint8_t *p;
	int rc;

	h->version = 0;
	h->type = 0;
	h->length = 0;
	if (f->body_left > 0)
		return -EBUSY;
	if (f->end - f->start < PH_HDR_LEN)
		return -EAGAIN;
	p = f->buf + f->start;
	if ((rc = ph_frame_header_parse(p, PH_HDR_LEN, h)) < 0) {
		h->version = p[2];
		h->type = p[3];
	}
	return rc;
}

/* The header check first, so a length is trusted only once it passed. */
int
ph_framer_next(struct ph_framer *f, struct ph_header *h, uint8_t **payload)
{
	size_t flen;
	int rc;

	*payload = NULL;
	if ((rc = ph_framer_header(f, h)) == -EAGAIN)
		return 0;
	if (rc < 0)
		return rc;
	flen = PH_HDR_LEN + (size_t)h->length;
	if (flen > f->cap)
		return -ENOBUFS;
	if (f->end - f->start < flen)
		return 0;
	*payload = f->buf + f->start + PH_HDR_LEN;
	f->start += flen;
	return 1;
}

/* What is missing of the header, the frame or a taken payload. */
size_t
ph_framer_need(const struct ph_framer *f)
{
	struct ph_header h;
	size_t have = f->end - f->start, want;

	if (f->body_left > 0)
		return have >= f->body_left ? 0 : f->body_left - have;
	if (have < PH_HDR_LEN)
		return PH_HDR_LEN - have;
	if (ph_framer_header(f, &h) < 0)
		return 0;
	want = PH_HDR_LEN + (size_t)h.length;
	return have >= want ? 0 : want - have;
}

/* The payload that follows may be larger than the buffer. */
int
ph_framer_take_header(struct ph_framer *f, struct ph_header *h)
{
	int rc;

	if ((rc = ph_framer_header(f, h)) < 0)
		return rc;
	f->start += PH_HDR_LEN;
	f->body_left = h->length;
	return 0;
}

uint32_t
ph_framer_body_left(const struct ph_framer *f)
{
	return f->body_left;
}

/* Hands out buffered payload bytes in place. */
size_t
ph_framer_body(struct ph_framer *f, size_t max, const uint8_t **p)
{
	size_t n = f->end - f->start;

	if (n > f->body_left)
		n = f->body_left;
	if (n > max)
		n = max;
	*p = n > 0 ? f->buf + f->start : NULL;
	f->start += n;
	f->body_left -= (uint32_t)n;
	return n;
}

void
ph_framer_body_skip(struct ph_framer *f, size_t n)
{
	if (n > f->body_left)
		n = f->body_left;
	f->body_left -= (uint32_t)n;
}
