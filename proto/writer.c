/*
 * writer.c: the bounded writer every encoder uses.
 *
 * Each put checks the room left before touching the buffer and writes
 * nothing on failure, so an encoder can never write past its buffer.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"

void
ph_writer_init(struct ph_writer *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = buf == NULL ? 0 : cap;
	w->off = 0;
}

/* Room left in the output buffer. */
static size_t
writer_left(const struct ph_writer *w)
{
	return w->cap - w->off;
}

int
ph_writer_put_u8(struct ph_writer *w, uint8_t v)
{
	if (writer_left(w) < 1)
		return -ENOBUFS;
	w->buf[w->off++] = v;
	return 0;
}

/* Appends the low n bytes of v, big-endian, if they all fit. */
static int
ph_writer_put_be(struct ph_writer *w, uint64_t v, size_t n)
{
	if (writer_left(w) < n)
		return -ENOBUFS;
	while (n-- > 0)
		w->buf[w->off++] = (uint8_t)(v >> (n * 8));
	return 0;
}

int
ph_writer_put_u16(struct ph_writer *w, uint16_t v)
{
	return ph_writer_put_be(w, v, 2);
}

int
ph_writer_put_u32(struct ph_writer *w, uint32_t v)
{
	return ph_writer_put_be(w, v, 4);
}

int
ph_writer_put_u64(struct ph_writer *w, uint64_t v)
{
	return ph_writer_put_be(w, v, 8);
}

int
ph_writer_put_bytes(struct ph_writer *w, const void *src, size_t n)
{
	if (writer_left(w) < n)
		return -ENOBUFS;
	if (n > 0)
		memcpy(w->buf + w->off, src, n);
	w->off += n;
	return 0;
}

int
ph_writer_put_str(struct ph_writer *w, const char *s)
{
	size_t	n = strlen(s);

	if (n > UINT16_MAX)
		return -EMSGSIZE;
	if (writer_left(w) < 2 + n)
		return -ENOBUFS;
	(void)ph_writer_put_u16(w, (uint16_t)n);
	(void)ph_writer_put_bytes(w, s, n);
	return 0;
}
