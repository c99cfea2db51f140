/*
 * vq_fixture.h: a fake guest for the vhost tests: one block of "guest
 * memory" in our own heap registered as a region of a memory table, split
 * virtqueues laid out in it, and the driver side of those queues written
 * the way a (possibly hostile) guest would: little-endian, by hand.
 */
#ifndef TESTS_VQ_FIXTURE_H
#define TESTS_VQ_FIXTURE_H

#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vhost.h"

#define FX_MEM_SIZE	(4 * 1024 * 1024)
#define FX_GPA		0x40000000ull		/* guest physical base */
#define FX_UVA		0x7f0000000000ull	/* front-end virtual base */
#define FX_DATA		0x40000			/* buffers start here */

#define FX_F_NEXT	1
#define FX_F_WRITE	2
#define FX_F_INDIRECT	4

struct fx {
	uint8_t			*mem;
	struct vhost_mem	*m;
};

/* One queue: rings at base (desc), base + 0x1000 (avail), + 0x2000 (used). */
struct fq {
	struct fx		*fx;
	uint32_t		 num;
	size_t			 desc, avail, used;
	uint16_t		 avail_idx;	/* driver's next avail index */
	uint16_t		 used_seen;	/* driver's next used entry to read */
	int			 call_fd;
	int			 kick_fd;
	int			 err_fd;
	uint64_t		 features;
	struct vhost_vq		*vq;
};

static inline void
fx_init(struct fx *fx)
{
	fx->mem = aligned_alloc(4096, FX_MEM_SIZE);
	if (fx->mem == NULL)
		abort();
	memset(fx->mem, 0, FX_MEM_SIZE);
	if (vhost_mem_new(&fx->m) < 0 ||
	    vhost_mem_add(fx->m, FX_GPA, FX_MEM_SIZE, FX_UVA, fx->mem) < 0)
		abort();
}

static inline void
fx_free(struct fx *fx)
{
	vhost_mem_free(fx->m);
	free(fx->mem);
}

static inline uint64_t
fx_gpa(size_t off)
{
	return FX_GPA + off;
}

static inline void
fx_put16(struct fx *fx, size_t off, uint16_t v)
{
	v = htole16(v);
	memcpy(fx->mem + off, &v, 2);
}

static inline void
fx_put32(struct fx *fx, size_t off, uint32_t v)
{
	v = htole32(v);
	memcpy(fx->mem + off, &v, 4);
}

static inline void
fx_put64(struct fx *fx, size_t off, uint64_t v)
{
	v = htole64(v);
	memcpy(fx->mem + off, &v, 8);
}

static inline uint16_t
fx_get16(struct fx *fx, size_t off)
{
	uint16_t v;

	memcpy(&v, fx->mem + off, 2);
	return le16toh(v);
}

static inline uint32_t
fx_get32(struct fx *fx, size_t off)
{
	uint32_t v;

	memcpy(&v, fx->mem + off, 4);
	return le32toh(v);
}

/* Writes a descriptor into the table at table_off (a queue's or not). */
static inline void
fx_desc_at(struct fx *fx, size_t table_off, uint32_t i, uint64_t gpa,
    uint32_t len, uint16_t flags, uint16_t next)
{
	size_t o = table_off + 16 * (size_t)i;

	fx_put64(fx, o, gpa);
	fx_put32(fx, o + 8, len);
	fx_put16(fx, o + 12, flags);
	fx_put16(fx, o + 14, next);
}

/*
 * Lays out a queue of num entries at base and creates its vhost_vq with
 * features; eventfds for call, kick and err. Returns vhost_vq_new()'s
 * result.
 */
static inline int
fq_init(struct fq *q, struct fx *fx, uint32_t num, size_t base,
    uint64_t features)
{
	struct vhost_vq_config cfg;

	memset(q, 0, sizeof(*q));
	q->fx = fx;
	q->num = num;
	q->desc = base;
	q->avail = base + 0x1000;
	q->used = base + 0x2000;
	q->call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->err_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	q->features = features;
	memset(&cfg, 0, sizeof(cfg));
	cfg.num = num;
	cfg.desc = FX_UVA + q->desc;
	cfg.avail = FX_UVA + q->avail;
	cfg.used = FX_UVA + q->used;
	cfg.features = features;
	cfg.call_fd = q->call_fd;
	cfg.kick_fd = q->kick_fd;
	cfg.err_fd = q->err_fd;
	return vhost_vq_new(fx->m, &cfg, &q->vq);
}

/*
 * Replaces a stopped queue's vhost_vq with a new one on the same rings, at
 * the index the old one reached: resumed (a paused VM going on) or not.
 */
static inline int
fq_restart(struct fq *q, bool resumed)
{
	struct vhost_vq_config cfg;
	struct vhost_vq *old = q->vq;
	int err;

	memset(&cfg, 0, sizeof(cfg));
	cfg.num = q->num;
	cfg.desc = FX_UVA + q->desc;
	cfg.avail = FX_UVA + q->avail;
	cfg.used = FX_UVA + q->used;
	cfg.last_avail = vhost_vq_last_avail(old);
	cfg.features = q->features;
	cfg.call_fd = q->call_fd;
	cfg.kick_fd = q->kick_fd;
	cfg.err_fd = q->err_fd;
	cfg.resumed = resumed;
	err = vhost_vq_new(q->fx->m, &cfg, &q->vq);
	vhost_vq_free(old);
	return err;
}

static inline void
fq_free(struct fq *q)
{
	vhost_vq_free(q->vq);
	close(q->call_fd);
	close(q->kick_fd);
	close(q->err_fd);
}

static inline void
fq_desc(struct fq *q, uint32_t i, uint64_t gpa, uint32_t len, uint16_t flags,
    uint16_t next)
{
	fx_desc_at(q->fx, q->desc, i, gpa, len, flags, next);
}

/* Offers the chain at head to the device (ring entry, then the index). */
static inline void
fq_avail(struct fq *q, uint16_t head)
{
	fx_put16(q->fx, q->avail + 4 + 2 * (size_t)(q->avail_idx % q->num),
	    head);
	q->avail_idx++;
	fx_put16(q->fx, q->avail + 2, q->avail_idx);
}

/* Sets the avail ring's index to any value (a hostile guest). */
static inline void
fq_set_avail_idx(struct fq *q, uint16_t idx)
{
	q->avail_idx = idx;
	fx_put16(q->fx, q->avail + 2, idx);
}

static inline uint16_t
fq_used_idx(struct fq *q)
{
	return fx_get16(q->fx, q->used + 2);
}

/* Takes the next used entry; 0 when there is none. */
static inline int
fq_used(struct fq *q, uint32_t *id, uint32_t *len)
{
	size_t e;

	if (fq_used_idx(q) == q->used_seen)
		return 0;
	e = q->used + 4 + 8 * (size_t)(q->used_seen % q->num);
	*id = fx_get32(q->fx, e);
	*len = fx_get32(q->fx, e + 4);
	q->used_seen++;
	return 1;
}

/* Reads and clears an eventfd; its count, 0 if it was not signalled. */
static inline uint64_t
fx_eventfd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

#endif /* TESTS_VQ_FIXTURE_H */
