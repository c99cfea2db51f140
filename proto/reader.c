/*
 * reader.c: the bounded reader and writer every encoder and decoder uses.
 *
 * Each get checks the bytes left before touching the buffer and leaves the
 * cursor where it was on failure, so a decoder can never read past a frame.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"

void
ph_reader_init(struct ph_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = buf == NULL ? 0 : len;
	r->off = 0;
}

size_t
ph_reader_left(const struct ph_reader *r)
{
	return r->len - r->off;
}

int
ph_get_u8(struct ph_reader *r, uint8_t *v)
{
	*v = 0;
	if (ph_reader_left(r) < 1)
		return -EBADMSG;
	*v = r->buf[r->off];
	r->off += 1;
	return 0;
}

/* Takes n big-endian bytes as a number; the cursor moves only on success. */
static int
ph_reader_get_be(struct ph_reader *r, size_t n, uint64_t *v)
{
	uint64_t	x = 0;

	*v = 0;
	if (ph_reader_left(r) < n)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		x = x << 8 | r->buf[r->off + i];
	*v = x;
	r->off += n;
	return 0;
}

int
ph_get_u16(struct ph_reader *r, uint16_t *v)
{
	uint64_t	x;
	int		rc = ph_reader_get_be(r, 2, &x);

	*v = (uint16_t)x;
	return rc;
}

int
ph_get_u32(struct ph_reader *r, uint32_t *v)
{
	uint64_t	x;
	int		rc = ph_reader_get_be(r, 4, &x);

	*v = (uint32_t)x;
	return rc;
}

int
ph_get_u64(struct ph_reader *r, uint64_t *v)
{
	return ph_reader_get_be(r, 8, v);
}

int
ph_get_bytes(struct ph_reader *r, void *dst, size_t n)
{
	if (ph_reader_left(r) < n)
		return -EBADMSG;
	if (n > 0)
		memcpy(dst, r->buf + r->off, n);
	r->off += n;
	return 0;
}

int
ph_get_ref(struct ph_reader *r, size_t n, const uint8_t **p)
{
	*p = NULL;
	if (ph_reader_left(r) < n)
		return -EBADMSG;
	*p = r->buf + r->off;
	r->off += n;
	return 0;
}

/*
 * Reads the length and the bytes through a local copy of the cursor, so that
 * every failure, including a bad length after a good prefix, leaves r as it
 * was.
 */
int
ph_get_str(struct ph_reader *r, char *dst, size_t cap, size_t max)
{
	struct ph_reader	 t = *r;
	const uint8_t		*p;
	uint16_t		 n;
	int			 rc;

	if (cap > 0)
		dst[0] = '\0';
	if ((rc = ph_get_u16(&t, &n)) != 0)
		return rc;
	if (n > max || (size_t)n >= cap)
		return -EMSGSIZE;
	if ((rc = ph_get_ref(&t, n, &p)) != 0)
		return rc;
	if (n > 0 && memchr(p, '\0', n) != NULL)
		return -EILSEQ;
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
	*r = t;
	return 0;
}

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
ph_put_u8(struct ph_writer *w, uint8_t v)
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
ph_put_u16(struct ph_writer *w, uint16_t v)
{
	return ph_writer_put_be(w, v, 2);
}

int
ph_put_u32(struct ph_writer *w, uint32_t v)
{
	return ph_writer_put_be(w, v, 4);
}

int
ph_put_u64(struct ph_writer *w, uint64_t v)
{
	return ph_writer_put_be(w, v, 8);
}

int
ph_put_bytes(struct ph_writer *w, const void *src, size_t n)
{
	if (writer_left(w) < n)
		return -ENOBUFS;
	if (n > 0)
		memcpy(w->buf + w->off, src, n);
	w->off += n;
	return 0;
}

int
ph_put_str(struct ph_writer *w, const char *s)
{
	size_t	n = strlen(s);

	if (n > UINT16_MAX)
		return -EMSGSIZE;
	if (writer_left(w) < 2 + n)
		return -ENOBUFS;
	(void)ph_put_u16(w, (uint16_t)n);
	(void)ph_put_bytes(w, s, n);
	return 0;
}
