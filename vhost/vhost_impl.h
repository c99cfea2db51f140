/*
 * vhost_impl.h: what the vhost library's files share and callers must not
 * use: little-endian reads through the bounded reader, and regions the
 * memory table maps itself.
 */
#ifndef PORTHOLE_VHOST_IMPL_H
#define PORTHOLE_VHOST_IMPL_H

#include <endian.h>
#include <stdint.h>

#include "proto.h"
#include "vhost.h"

/*
 * Virtio structures are little-endian and vhost-user messages are in the
 * machine's order (little-endian on every host QEMU runs vhost-user on).
 * Both are read through ph_reader so a short input is an error, never an
 * overread; these turn its raw bytes into numbers.
 */
static inline int
vh_get_le16(struct ph_reader *r, uint16_t *v)
{
	uint16_t x;
	int err;

	if ((err = ph_reader_get_bytes(r, &x, sizeof(x))) < 0)
		return err;
	*v = le16toh(x);
	return 0;
}

static inline int
vh_get_le32(struct ph_reader *r, uint32_t *v)
{
	uint32_t x;
	int err;

	if ((err = ph_reader_get_bytes(r, &x, sizeof(x))) < 0)
		return err;
	*v = le32toh(x);
	return 0;
}

static inline int
vh_get_le64(struct ph_reader *r, uint64_t *v)
{
	uint64_t x;
	int err;

	if ((err = ph_reader_get_bytes(r, &x, sizeof(x))) < 0)
		return err;
	*v = le64toh(x);
	return 0;
}

static inline int
vh_put_le16(struct ph_writer *w, uint16_t v)
{
	uint16_t x = htole16(v);

	return ph_writer_put_bytes(w, &x, sizeof(x));
}

static inline int
vh_put_le32(struct ph_writer *w, uint32_t v)
{
	uint32_t x = htole32(v);

	return ph_writer_put_bytes(w, &x, sizeof(x));
}

static inline int
vh_put_le64(struct ph_writer *w, uint64_t v)
{
	uint64_t x = htole64(v);

	return ph_writer_put_bytes(w, &x, sizeof(x));
}

/*
 * Adds a region like vhost_mem_add(), but one the table mapped itself:
 * map_base/map_len are unmapped with the table.
 */
int	vhost_mem_add_mapped(struct vhost_mem *m, uint64_t gpa, uint64_t size,
	    uint64_t uva, void *host, void *map_base, size_t map_len);

/*
 * Replaces a running queue's call and error descriptors (the front-end
 * masks and unmasks interrupts by swapping call descriptors at any time).
 */
void	vhost_vq_set_fds(struct vhost_vq *vq, int call_fd, int err_fd);

#endif /* PORTHOLE_VHOST_IMPL_H */
