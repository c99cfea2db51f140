/*
 * vq.c: split virtqueues (virtio 1.x, section 2.7) over guest memory.
 *
 * The rings live in memory the guest writes while we read it. Each
 * descriptor is copied out once and checked in the copy; indices are
 * reduced modulo the queue size or checked against the table they index;
 * a chain walk is bounded by the size of the table it walks, so a loop
 * ends as an error instead of running forever.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vhost_impl.h"

#define VRING_DESC_F_NEXT	1
#define VRING_DESC_F_WRITE	2
#define VRING_DESC_F_INDIRECT	4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_DESC_SIZE		16

struct vhost_vq {
	const struct vhost_mem	*mem;
	struct vhost_vq_config	 cfg;
	uint8_t			*desc;		/* num descriptors */
	uint8_t			*avail;		/* flags, idx, ring[num], used_event */
	uint8_t			*used;		/* flags, idx, ring[num], avail_event */
	uint16_t		 last_avail;	/* next entry of avail->ring to take */
	uint16_t		 used_idx;	/* our copy of used->idx */
	uint16_t		 signalled;	/* used_idx at the last interrupt */
	bool			 signalled_valid;
	bool			 event_idx;
	bool			 indirect;
	const char		*why;		/* non-NULL: broken */
};

/* Reads a little-endian u16 of guest memory once. */
static uint16_t
vhost_vq_load16(const uint8_t *p)
{
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)p,
	    __ATOMIC_RELAXED));
}

/* Writes a little-endian u16 of guest memory in one store. */
static void
vhost_vq_store16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(void *)p, htole16(v), __ATOMIC_RELAXED);
}

/* Bytes of the available ring for num entries. */
static uint64_t
vhost_vq_avail_size(uint32_t num, bool event_idx)
{
	return 4 + 2 * (uint64_t)num + (event_idx ? 2 : 0);
}

/* Bytes of the used ring for num entries. */
static uint64_t
vhost_vq_used_size(uint32_t num, bool event_idx)
{
	return 4 + 8 * (uint64_t)num + (event_idx ? 2 : 0);
}

/* Translates the three rings through mem and checks their alignment. */
static int
vhost_vq_map(struct vhost_vq *vq, const struct vhost_mem *mem)
{
	const struct vhost_vq_config *c = &vq->cfg;
	uint8_t *d, *a, *u;

	if ((c->desc & 15) || (c->avail & 1) || (c->used & 3))
		return -EINVAL;
	d = vhost_mem_uva_ptr(mem, c->desc, (uint64_t)c->num * VRING_DESC_SIZE);
	a = vhost_mem_uva_ptr(mem, c->avail, vhost_vq_avail_size(c->num,
	    vq->event_idx));
	u = vhost_mem_uva_ptr(mem, c->used, vhost_vq_used_size(c->num,
	    vq->event_idx));
	if (d == NULL || a == NULL || u == NULL)
		return -EFAULT;
	/* Our view of the rings must be aligned for the atomic accesses. */
	if (((uintptr_t)a & 1) || ((uintptr_t)u & 3))
		return -EINVAL;
	vq->mem = mem;
	vq->desc = d;
	vq->avail = a;
	vq->used = u;
	return 0;
}

int
vhost_vq_new(const struct vhost_mem *mem, const struct vhost_vq_config *cfg,
    struct vhost_vq **out)
{
	struct vhost_vq *vq;
	int err;

	*out = NULL;
	if (cfg->num == 0 || cfg->num > VHOST_QUEUE_MAX ||
	    (cfg->num & (cfg->num - 1)) != 0)
		return -EINVAL;
	if ((vq = calloc(1, sizeof(*vq))) == NULL)
		return -ENOMEM;
	vq->cfg = *cfg;
	vq->event_idx = (cfg->features >> VHOST_F_EVENT_IDX) & 1;
	vq->indirect = (cfg->features >> VHOST_F_INDIRECT_DESC) & 1;
	if ((err = vhost_vq_map(vq, mem)) < 0) {
		free(vq);
		return err;
	}
	vq->last_avail = cfg->last_avail;
	/* The used index is the driver's to reset; continue where it is. */
	vq->used_idx = vhost_vq_load16(vq->used + 2);
	vq->signalled = vq->used_idx;
	*out = vq;
	return 0;
}

void
vhost_vq_free(struct vhost_vq *vq)
{
	free(vq);
}

void
vhost_vq_set_fds(struct vhost_vq *vq, int call_fd, int err_fd)
{
	vq->cfg.call_fd = call_fd;
	vq->cfg.err_fd = err_fd;
}

void
vhost_vq_break(struct vhost_vq *vq, const char *why)
{
	uint64_t one = 1;

	if (vq->why != NULL)
		return;
	vq->why = why;
	/* The front-end learns of it through the error eventfd, if any. */
	if (vq->cfg.err_fd >= 0)
		(void)!write(vq->cfg.err_fd, &one, sizeof(one));
}

int
vhost_vq_remap(struct vhost_vq *vq, const struct vhost_mem *mem)
{
	int err;

	if ((err = vhost_vq_map(vq, mem)) < 0) {
		vq->mem = mem;
		vhost_vq_break(vq, "a ring is outside the new memory table");
		return -EFAULT;
	}
	return 0;
}

bool
vhost_vq_broken(const struct vhost_vq *vq)
{
	return vq->why != NULL;
}

const char *
vhost_vq_error(const struct vhost_vq *vq)
{
	return vq->why;
}

uint32_t
vhost_vq_num(const struct vhost_vq *vq)
{
	return vq->cfg.num;
}

uint16_t
vhost_vq_last_avail(const struct vhost_vq *vq)
{
	return vq->last_avail;
}

bool
vhost_vq_resumed(const struct vhost_vq *vq)
{
	return vq->cfg.resumed;
}

/* One descriptor, copied out of guest memory and decoded. */
struct vq_desc {
	uint64_t	addr;
	uint32_t	len;
	uint16_t	flags;
	uint16_t	next;
};

/* Copies descriptor i of a table into our memory, then decodes the copy. */
static void
vhost_vq_read_desc(const uint8_t *table, uint32_t i, struct vq_desc *d)
{
	uint8_t raw[VRING_DESC_SIZE];
	struct ph_reader r;

	memset(d, 0, sizeof(*d));
	memcpy(raw, table + (size_t)i * VRING_DESC_SIZE, sizeof(raw));
	ph_reader_init(&r, raw, sizeof(raw));
	/* Sixteen bytes hold exactly these four fields: none can fail. */
	(void)vh_get_le64(&r, &d->addr);
	(void)vh_get_le32(&r, &d->len);
	(void)vh_get_le16(&r, &d->flags);
	(void)vh_get_le16(&r, &d->next);
}

/*
 * Walks the chain at head into c. Returns 0, or -EIO with the queue broken
 * for the first rule the chain breaks.
 */
static int
vhost_vq_walk(struct vhost_vq *vq, uint16_t head, struct vhost_chain *c)
{
	const uint8_t *table = vq->desc;
	uint32_t size = vq->cfg.num, i = head, seen = 0;
	bool in_indirect = false;
	struct vq_desc d;
	size_t n = 0;
	int err;

	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		/* More steps than the table has entries means a loop. */
		if (++seen > size) {
			vhost_vq_break(vq, "descriptor chain loops or is "
			    "longer than its table");
			return -EIO;
		}
		vhost_vq_read_desc(table, i, &d);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (!vq->indirect) {
				vhost_vq_break(vq, "indirect descriptor "
				    "without the INDIRECT_DESC feature");
				return -EIO;
			}
			if (in_indirect) {
				vhost_vq_break(vq, "indirect descriptor inside "
				    "an indirect table");
				return -EIO;
			}
			if (d.flags & VRING_DESC_F_NEXT) {
				vhost_vq_break(vq, "indirect descriptor with "
				    "NEXT set");
				return -EIO;
			}
			if (d.len == 0 || d.len % VRING_DESC_SIZE != 0 ||
			    d.len / VRING_DESC_SIZE > VHOST_QUEUE_MAX) {
				vhost_vq_break(vq, "indirect table length is "
				    "not a multiple of 16 in 16..512 KiB");
				return -EIO;
			}
			table = vhost_mem_gpa_ptr(vq->mem, d.addr, d.len);
			if (table == NULL) {
				vhost_vq_break(vq, "indirect table outside "
				    "guest memory");
				return -EIO;
			}
			in_indirect = true;
			size = d.len / VRING_DESC_SIZE;
			i = 0;
			seen = 0;
			continue;
		}
		if (d.flags & VRING_DESC_F_WRITE) {
			err = vhost_mem_gpa(vq->mem, d.addr, d.len, c->iov, &n,
			    VHOST_CHAIN_MAX_IOV);
			c->in_len += d.len;
			c->nin = n - c->nout;
		} else {
			/* Readable buffers come first (virtio 1.x, 2.7.4.2). */
			if (c->nin > 0 || c->in_len > 0) {
				vhost_vq_break(vq, "device-readable descriptor "
				    "after a writable one");
				return -EIO;
			}
			err = vhost_mem_gpa(vq->mem, d.addr, d.len, c->iov, &n,
			    VHOST_CHAIN_MAX_IOV);
			c->out_len += d.len;
			c->nout = n;
		}
		if (err == -E2BIG) {
			vhost_vq_break(vq, "descriptor chain has too many "
			    "buffers");
			return -EIO;
		}
		if (err < 0) {
			vhost_vq_break(vq, "descriptor buffer outside guest "
			    "memory");
			return -EIO;
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= size) {
			vhost_vq_break(vq, "next descriptor index out of "
			    "range");
			return -EIO;
		}
		i = d.next;
	}
}

/*
 * Reads the available index once, checks how far it moved, then the ring
 * entry and the chain: each value from guest memory is read exactly once.
 */
int
vhost_vq_pop(struct vhost_vq *vq, struct vhost_chain *c)
{
	uint16_t avail_idx, head;
	uint32_t num = vq->cfg.num;

	if (vq->why != NULL)
		return -EIO;
	avail_idx = vhost_vq_load16(vq->avail + 2);
	if (avail_idx == vq->last_avail && vq->event_idx) {
		/*
		 * Empty: ask for a kick at the next buffer, then look again
		 * in case the driver added one before it could see that.
		 */
		vhost_vq_store16(vq->used + 4 + 8 * (size_t)num,
		    vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail_idx = vhost_vq_load16(vq->avail + 2);
	}
	if (avail_idx == vq->last_avail)
		return 0;
	if ((uint16_t)(avail_idx - vq->last_avail) > num) {
		vhost_vq_break(vq, "available index moved by more than the "
		    "queue size");
		return -EIO;
	}
	/* The ring entry and descriptors are read after the index. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head = vhost_vq_load16(vq->avail + 4 + 2 * (size_t)(vq->last_avail &
	    (num - 1)));
	if (head >= num) {
		vhost_vq_break(vq, "descriptor index out of range");
		return -EIO;
	}
	if (vhost_vq_walk(vq, head, c) < 0)
		return -EIO;
	vq->last_avail++;
	return 1;
}

void
vhost_vq_unpop(struct vhost_vq *vq)
{
	vq->last_avail--;
}

int
vhost_vq_push(struct vhost_vq *vq, uint16_t head, uint32_t len)
{
	uint8_t *e;
	uint32_t v;

	if (vq->why != NULL)
		return -EIO;
	e = vq->used + 4 + 8 * (size_t)(vq->used_idx & (vq->cfg.num - 1));
	v = htole32(head);
	memcpy(e, &v, 4);
	v = htole32(len);
	memcpy(e + 4, &v, 4);
	vq->used_idx++;
	/* The entry must be visible before the index that publishes it. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	vhost_vq_store16(vq->used + 2, vq->used_idx);
	return 0;
}

/* Virtio 1.x, 2.7.7.2 and 2.7.10: the driver's wish decides, not ours. */
int
vhost_vq_notify(struct vhost_vq *vq)
{
	uint16_t old = vq->signalled, now = vq->used_idx, event;
	uint64_t one = 1;
	bool want;

	if (vq->why != NULL || old == now)
		return 0;
	/* Our used index must be visible before we read the driver's wish. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (vq->event_idx) {
		event = vhost_vq_load16(vq->avail + 4 +
		    2 * (size_t)vq->cfg.num);
		/* Did used_idx pass used_event since the last interrupt? */
		want = !vq->signalled_valid ||
		    (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	} else {
		want = !(vhost_vq_load16(vq->avail) &
		    VRING_AVAIL_F_NO_INTERRUPT);
	}
	vq->signalled = now;
	vq->signalled_valid = true;
	if (!want)
		return 0;
	if (vq->cfg.call_fd >= 0 &&
	    write(vq->cfg.call_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 1;
}

int
vhost_vq_rekick(struct vhost_vq *vq)
{
	uint64_t one = 1;

	if (vq->cfg.kick_fd < 0)
		return -EBADF;
	if (write(vq->cfg.kick_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}
