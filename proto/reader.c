/*
 * reader.c: the bounded reader every decoder uses.
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
ph_reader_get_u8(struct ph_reader *r, uint8_t *v)
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
ph_reader_get_u16(struct ph_reader *r, uint16_t *v)
{
	uint64_t	x;
	int		rc = ph_reader_get_be(r, 2, &x);

	*v = (uint16_t)x;
	return rc;
}

int
ph_reader_get_u32(struct ph_reader *r, uint32_t *v)
{
	uint64_t	x;
	int		rc = ph_reader_get_be(r, 4, &x);

	*v = (uint32_t)x;
	return rc;
}

int
ph_reader_get_u64(struct ph_reader *r, uint64_t *v)
{
	return ph_reader_get_be(r, 8, v);
}

int
ph_reader_get_bytes(struct ph_reader *r, void *dst, size_t n)
{
	if (ph_reader_left(r) < n)
		return -EBADMSG;
	if (n > 0)
		memcpy(dst, r->buf + r->off, n);
	r->off += n;
	return 0;
}

int
ph_reader_get_ref(struct ph_reader *r, size_t n, const uint8_t **p)
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
ph_reader_get_str(struct ph_reader *r, char *dst, size_t cap, size_t max)
{
	struct ph_reader	 t = *r;
	const uint8_t		*p;
	uint16_t		 n;
	int			 rc;

	if (cap > 0)
		dst[0] = '\0';
	if ((rc = ph_reader_get_u16(&t, &n)) != 0)
		return rc;
	if (n > max || (size_t)n >= cap)
		return -EMSGSIZE;
	if ((rc = ph_reader_get_ref(&t, n, &p)) != 0)
		return rc;
	if (n > 0 && memchr(p, '\0', n) != NULL)
		return -EILSEQ;
	if (n > 0)
		memcpy(dst, p, n);
	dst[n] = '\0';
	*r = t;
	return 0;
}
