/*
 * mem.c: the guest memory table. Every address the guest or the front-end
 * gives us goes through here before it is dereferenced.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vhost_impl.h"

struct vhost_region {
	uint64_t	 gpa;		/* guest physical start */
	uint64_t	 uva;		/* front-end virtual start */
	uint64_t	 size;
	uint8_t		*host;		/* our address of the first byte */
	void		*map_base;	/* our mmap(), or NULL */
	size_t		 map_len;
};

struct vhost_mem {
	struct vhost_region	r[VHOST_MEM_MAX_REGIONS];
	size_t			n;
};

int
vhost_mem_new(struct vhost_mem **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? -ENOMEM : 0;
}

void
vhost_mem_free(struct vhost_mem *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (m->r[i].map_base != NULL)
			(void)munmap(m->r[i].map_base, m->r[i].map_len);
	free(m);
}

size_t
vhost_mem_count(const struct vhost_mem *m)
{
	return m->n;
}

/* True when [a, a + alen) and [b, b + blen) share a byte (no wrap). */
static bool
vhost_mem_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

int
vhost_mem_add_mapped(struct vhost_mem *m, uint64_t gpa, uint64_t size,
    uint64_t uva, void *host, void *map_base, size_t map_len)
{
	struct vhost_region *r;

	if (size == 0 || gpa + size < gpa || uva + size < uva ||
	    (uintptr_t)host + size < (uintptr_t)host)
		return -EINVAL;
	if (m->n == VHOST_MEM_MAX_REGIONS)
		return -E2BIG;
	/* Overlaps would make a translation depend on the table's order. */
	for (size_t i = 0; i < m->n; i++)
		if (vhost_mem_overlap(gpa, size, m->r[i].gpa, m->r[i].size) ||
		    vhost_mem_overlap(uva, size, m->r[i].uva, m->r[i].size))
			return -EINVAL;
	r = &m->r[m->n++];
	r->gpa = gpa;
	r->uva = uva;
	r->size = size;
	r->host = host;
	r->map_base = map_base;
	r->map_len = map_len;
	return 0;
}

int
vhost_mem_add(struct vhost_mem *m, uint64_t gpa, uint64_t size, uint64_t uva,
    void *host)
{
	return vhost_mem_add_mapped(m, gpa, size, uva, host, NULL, 0);
}

/* The region holding guest physical address gpa, or NULL. */
static const struct vhost_region *
vhost_mem_find_gpa(const struct vhost_mem *m, uint64_t gpa)
{
	for (size_t i = 0; i < m->n; i++)
		if (gpa >= m->r[i].gpa && gpa - m->r[i].gpa < m->r[i].size)
			return &m->r[i];
	return NULL;
}

int
vhost_mem_gpa(const struct vhost_mem *m, uint64_t gpa, uint64_t len,
    struct iovec *iov, size_t *niov, size_t max)
{
	const struct vhost_region *r;
	size_t n = *niov;
	uint64_t off, piece;

	if (gpa + len < gpa)
		return -EFAULT;
	while (len > 0) {
		if ((r = vhost_mem_find_gpa(m, gpa)) == NULL)
			return -EFAULT;
		if (n == max)
			return -E2BIG;
		off = gpa - r->gpa;
		piece = r->size - off < len ? r->size - off : len;
		iov[n].iov_base = r->host + off;
		iov[n].iov_len = (size_t)piece;
		n++;
		gpa += piece;
		len -= piece;
	}
	*niov = n;
	return 0;
}

void *
vhost_mem_gpa_ptr(const struct vhost_mem *m, uint64_t gpa, uint64_t len)
{
	const struct vhost_region *r;
	uint64_t off;

	if (len == 0 || (r = vhost_mem_find_gpa(m, gpa)) == NULL)
		return NULL;
	off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	return r->host + off;
}

void *
vhost_mem_uva_ptr(const struct vhost_mem *m, uint64_t uva, uint64_t len)
{
	const struct vhost_region *r;
	uint64_t off;

	if (len == 0)
		return NULL;
	for (size_t i = 0; i < m->n; i++) {
		r = &m->r[i];
		if (uva < r->uva || uva - r->uva >= r->size)
			continue;
		off = uva - r->uva;
		if (len > r->size - off)
			return NULL;
		return r->host + off;
	}
	return NULL;
}
