/*
 * user.c: the vhost-user control protocol, back-end side (QEMU's
 * docs/interop/vhost-user.rst). One struct vhost_user per front-end
 * connection: it reads messages with their descriptors, maps guest memory,
 * collects each ring's settings and starts a ring for the device once it
 * has everything it needs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vhost_impl.h"

/* Requests (front-end message types). */
enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
};

#define VU_HDR_LEN		12
#define VU_VERSION		0x1u
#define VU_VERSION_MASK		0x3u
#define VU_FLAG_REPLY		0x4u
#define VU_FLAG_NEED_REPLY	0x8u
/* The largest payload we accept: a full memory table is 8 + 8 * 32. */
#define VU_MAX_PAYLOAD		512
#define VU_MAX_FDS		VHOST_MEM_MAX_REGIONS
#define VU_MAX_QUEUES		8
/* Config space bytes one GET_CONFIG may ask for. */
#define VU_MAX_CONFIG		256
/* Messages handled per vhost_user_input() call. */
#define VU_BATCH		32
#define VU_VRING_IDX_MASK	0xffu
#define VU_VRING_NOFD		0x100u
#define VU_REGION_LEN		32

/* Everything the back-end offers on top of the device's own features. */
#define VU_RING_FEATURES	((1ull << VHOST_F_VERSION_1) | \
	(1ull << VHOST_F_EVENT_IDX) | (1ull << VHOST_F_INDIRECT_DESC) | \
	(1ull << VHOST_F_PROTOCOL_FEATURES))
#define VU_PROTOCOL_FEATURES	((1ull << VHOST_USER_PROTOCOL_F_MQ) | \
	(1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
	(1ull << VHOST_USER_PROTOCOL_F_CONFIG))

struct vu_queue {
	struct vhost_user	*u;
	uint32_t		 index;
	uint32_t		 num;
	uint64_t		 desc, used, avail;
	bool			 addr_set;
	uint16_t		 base;
	bool			 paused;	/* stopped while running, at */
	uint16_t		 paused_at;	/* this available index */
	int			 kick_fd;
	int			 call_fd;
	int			 err_fd;
	void			*kick_slot;
	bool			 started;	/* a kick descriptor arrived */
	bool			 enabled;
	bool			 failed;	/* could not be started */
	struct vhost_vq		*vq;		/* non-NULL: the device has it */
};

struct vhost_user {
	int			 sock;
	const struct vhost_user_device *dev;
	void			*dev_arg;
	struct vhost_watch	 w;
	uint64_t		 features;
	uint64_t		 protocol_features;
	bool			 owned;
	struct vhost_mem	*mem;
	struct vu_queue		 q[VU_MAX_QUEUES];
	/* The message being read: header, payload and its descriptors. */
	uint8_t			 buf[VU_HDR_LEN + VU_MAX_PAYLOAD];
	size_t			 have;
	uint32_t		 req, flags, size;
	int			 fds[VU_MAX_FDS];
	size_t			 nfds;
	char			 err[160];
};

/* Records why the connection fails; returns code for the caller. */
static int
vhost_user_fail(struct vhost_user *u, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
vhost_user_fail(struct vhost_user *u, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(u->err, sizeof(u->err), fmt, ap);
	va_end(ap);
	return code;
}

/* Closes the descriptors of the current message nobody took. */
static void
vhost_user_close_fds(struct vhost_user *u)
{
	for (size_t i = 0; i < u->nfds; i++)
		if (u->fds[i] >= 0)
			close(u->fds[i]);
	u->nfds = 0;
}

/* Takes the message's only descriptor; -1 if it has none. */
static int
vhost_user_take_fd(struct vhost_user *u)
{
	int fd;

	if (u->nfds != 1)
		return -1;
	fd = u->fds[0];
	u->fds[0] = -1;
	u->nfds = 0;
	return fd;
}

/* ---- Rings ----------------------------------------------------------------- */

static void	vhost_user_on_kick(void *obj, unsigned events);

/* Hands the ring to the device, or takes it back, as its state says. */
static void
vhost_user_queue_update(struct vu_queue *q)
{
	struct vhost_user *u = q->u;
	struct vhost_vq_config cfg;
	bool run;

	run = q->started && q->enabled && q->addr_set && u->mem != NULL &&
	    !q->failed;
	if (!run && q->vq != NULL) {
		u->dev->stop(u->dev_arg, q->index);
		q->base = vhost_vq_last_avail(q->vq);
		q->paused = true;
		q->paused_at = q->base;
		vhost_vq_free(q->vq);
		q->vq = NULL;
		return;
	}
	if (!run || q->vq != NULL)
		return;
	memset(&cfg, 0, sizeof(cfg));
	cfg.num = q->num;
	cfg.desc = q->desc;
	cfg.avail = q->avail;
	cfg.used = q->used;
	cfg.last_avail = q->base;
	cfg.features = u->features;
	cfg.call_fd = q->call_fd;
	cfg.kick_fd = q->kick_fd;
	cfg.err_fd = q->err_fd;
	/*
	 * A reset driver starts its rings at 0; a paused VM's rings go on
	 * from where they stopped (0 then only after 64 Ki requests: such a
	 * ring is taken as new, which costs only its connections).
	 */
	cfg.resumed = q->paused && q->base == q->paused_at && q->base != 0;
	q->paused = false;
	if (vhost_vq_new(u->mem, &cfg, &q->vq) < 0) {
		/*
		 * The guest programmed a ring we cannot use: this device
		 * stays stopped until it is set up again; the front-end
		 * hears of it on the error descriptor.
		 */
		q->failed = true;
		if (q->err_fd >= 0) {
			uint64_t one = 1;

			(void)!write(q->err_fd, &one, sizeof(one));
		}
		return;
	}
	u->dev->start(u->dev_arg, q->index, q->vq);
}

/* Stops a ring and forgets its kick descriptor (GET_VRING_BASE, reset). */
static void
vhost_user_queue_stop(struct vu_queue *q)
{
	struct vhost_user *u = q->u;

	q->started = false;
	vhost_user_queue_update(q);
	if (q->kick_fd >= 0)
		u->w.release(u->w.arg, &q->kick_slot, q->kick_fd);
	q->kick_fd = -1;
	q->kick_slot = NULL;
	q->failed = false;
}

/* The driver notified a ring: drain the eventfd, tell the device. */
static void
vhost_user_on_kick(void *obj, unsigned events)
{
	struct vu_queue *q = obj;
	uint64_t v;

	(void)events;
	if (q->kick_fd >= 0)
		(void)!read(q->kick_fd, &v, sizeof(v));
	if (q->vq != NULL)
		q->u->dev->kick(q->u->dev_arg, q->index);
}

/* ---- Replies -------------------------------------------------------------- */

/* Sends a reply to the current request with len bytes of payload. */
static int
vhost_user_reply(struct vhost_user *u, const void *payload, uint32_t len)
{
	uint8_t msg[VU_HDR_LEN + VU_MAX_PAYLOAD];
	uint32_t hdr[3] = { u->req, VU_VERSION | VU_FLAG_REPLY, len };
	ssize_t n;

	memcpy(msg, hdr, sizeof(hdr));
	if (len > 0)
		memcpy(msg + VU_HDR_LEN, payload, len);
	do
		n = send(u->sock, msg, VU_HDR_LEN + len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return vhost_user_fail(u, -errno, "cannot reply: %s",
		    strerror(errno));
	if ((size_t)n != VU_HDR_LEN + len)
		return vhost_user_fail(u, -EIO, "cannot reply: socket full");
	return 0;
}

static int
vhost_user_reply_u64(struct vhost_user *u, uint64_t v)
{
	return vhost_user_reply(u, &v, sizeof(v));
}

/* ---- Requests ----------------------------------------------------------------- */

/* Checks a vring index against the queues the back-end serves. */
static int
vhost_user_queue_index(struct vhost_user *u, uint32_t index,
    struct vu_queue **q)
{
	if (index >= u->dev->nqueues)
		return vhost_user_fail(u, -EPROTO, "request %u for queue %u, "
		    "the device has %u", u->req, index, u->dev->nqueues);
	*q = &u->q[index];
	return 0;
}

/* SET_MEM_TABLE: maps every region; the new table replaces the old. */
static int
vhost_user_set_mem_table(struct vhost_user *u, struct ph_reader *r)
{
	struct vhost_mem *m = NULL;
	uint32_t n, pad;
	uint64_t gpa = 0, size = 0, uva = 0, off = 0, len;
	struct stat st;
	void *base;
	int err;

	if (vh_get_le32(r, &n) < 0 || vh_get_le32(r, &pad) < 0)
		return vhost_user_fail(u, -EPROTO, "short memory table");
	if (n == 0 || n > VHOST_MEM_MAX_REGIONS ||
	    ph_reader_left(r) != (size_t)n * VU_REGION_LEN)
		return vhost_user_fail(u, -EPROTO, "memory table with %u "
		    "regions in %u bytes", n, u->size);
	if (u->nfds != n)
		return vhost_user_fail(u, -EPROTO, "memory table with %u "
		    "regions and %zu descriptors", n, u->nfds);
	if ((err = vhost_mem_new(&m)) < 0)
		return vhost_user_fail(u, err, "out of memory");
	for (uint32_t i = 0; i < n; i++) {
		(void)vh_get_le64(r, &gpa);
		(void)vh_get_le64(r, &size);
		(void)vh_get_le64(r, &uva);
		(void)vh_get_le64(r, &off);
		len = off + size;
		if (size == 0 || len < off || len > SIZE_MAX) {
			err = vhost_user_fail(u, -EPROTO, "memory region %u: "
			    "size %llu at offset %llu", i,
			    (unsigned long long)size, (unsigned long long)off);
			goto fail;
		}
		/* A file shorter than the region would fault on access. */
		if (fstat(u->fds[i], &st) < 0 ||
		    (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)) {
			err = vhost_user_fail(u, -EPROTO, "memory region %u: "
			    "its file is shorter than offset + size", i);
			goto fail;
		}
		base = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_NORESERVE, u->fds[i], 0);
		if (base == MAP_FAILED) {
			err = vhost_user_fail(u, -errno, "memory region %u: "
			    "cannot map %llu bytes: %s", i,
			    (unsigned long long)len, strerror(errno));
			goto fail;
		}
		if ((err = vhost_mem_add_mapped(m, gpa, size, uva,
		    (uint8_t *)base + off, base, (size_t)len)) < 0) {
			(void)munmap(base, (size_t)len);
			err = vhost_user_fail(u, -EPROTO, "memory region %u "
			    "overlaps another or wraps around", i);
			goto fail;
		}
	}
	/* Running rings move to the new table before the old one goes. */
	for (uint32_t i = 0; i < u->dev->nqueues; i++)
		if (u->q[i].vq != NULL)
			(void)vhost_vq_remap(u->q[i].vq, m);
	vhost_mem_free(u->mem);
	u->mem = m;
	for (uint32_t i = 0; i < u->dev->nqueues; i++)
		vhost_user_queue_update(&u->q[i]);
	return 0;

fail:
	vhost_mem_free(m);
	return err;
}

/* SET_VRING_KICK, _CALL and _ERR: a u64 index and maybe a descriptor. */
static int
vhost_user_set_vring_fd(struct vhost_user *u, struct ph_reader *r)
{
	struct vu_queue *q = NULL;
	uint64_t v;
	int fd = -1, err;

	if (vh_get_le64(r, &v) < 0 || ph_reader_left(r) != 0)
		return vhost_user_fail(u, -EPROTO, "request %u: payload of %u "
		    "bytes, not 8", u->req, u->size);
	if (v & ~(uint64_t)(VU_VRING_IDX_MASK | VU_VRING_NOFD))
		return vhost_user_fail(u, -EPROTO, "request %u: unknown bits "
		    "in 0x%llx", u->req, (unsigned long long)v);
	if ((err = vhost_user_queue_index(u, (uint32_t)(v & VU_VRING_IDX_MASK),
	    &q)) < 0)
		return err;
	if (!(v & VU_VRING_NOFD) && (fd = vhost_user_take_fd(u)) < 0)
		return vhost_user_fail(u, -EPROTO, "request %u without its "
		    "descriptor", u->req);
	if ((v & VU_VRING_NOFD) && u->nfds != 0)
		return vhost_user_fail(u, -EPROTO, "request %u: descriptor "
		    "with the no-descriptor flag", u->req);
	switch (u->req) {
	case VU_SET_VRING_KICK:
		if (q->kick_fd >= 0)
			u->w.release(u->w.arg, &q->kick_slot, q->kick_fd);
		q->kick_slot = NULL;
		q->kick_fd = fd;
		/* A kick descriptor starts the ring (as libvhost-user does). */
		q->started = true;
		/* Without protocol features no SET_VRING_ENABLE will come. */
		if (!((u->features >> VHOST_F_PROTOCOL_FEATURES) & 1))
			q->enabled = true;
		q->failed = false;
		if (fd >= 0) {
			(void)fcntl(fd, F_SETFL, fcntl(fd,
			    F_GETFL) | O_NONBLOCK);
			if ((err = u->w.watch(u->w.arg, &q->kick_slot, fd,
			    VHOST_EV_READ, vhost_user_on_kick, q)) < 0)
				return vhost_user_fail(u, err, "cannot watch "
				    "the kick descriptor");
		}
		if (q->vq != NULL) {
			/* A new kick descriptor for a running ring. */
			q->started = false;
			vhost_user_queue_update(q);
			q->started = true;
		}
		vhost_user_queue_update(q);
		/* Buffers the driver added before we started are work too. */
		if (q->vq != NULL)
			u->dev->kick(u->dev_arg, q->index);
		break;
	case VU_SET_VRING_CALL:
		if (q->call_fd >= 0)
			close(q->call_fd);
		q->call_fd = fd;
		if (q->vq != NULL)
			vhost_vq_set_fds(q->vq, q->call_fd, q->err_fd);
		break;
	default:
		if (q->err_fd >= 0)
			close(q->err_fd);
		q->err_fd = fd;
		if (q->vq != NULL)
			vhost_vq_set_fds(q->vq, q->call_fd, q->err_fd);
		break;
	}
	return 0;
}

/* SET_VRING_NUM, _BASE, _ENABLE and GET_VRING_BASE: index and number. */
static int
vhost_user_vring_state(struct vhost_user *u, struct ph_reader *r)
{
	struct vu_queue *q = NULL;
	uint32_t index, num, reply[2];
	int err;

	if (vh_get_le32(r, &index) < 0 || vh_get_le32(r, &num) < 0 ||
	    ph_reader_left(r) != 0)
		return vhost_user_fail(u, -EPROTO, "request %u: payload of %u "
		    "bytes, not 8", u->req, u->size);
	if ((err = vhost_user_queue_index(u, index, &q)) < 0)
		return err;
	switch (u->req) {
	case VU_SET_VRING_NUM:
		if (q->vq != NULL)
			return vhost_user_fail(u, -EPROTO, "queue %u resized "
			    "while running", index);
		/* Checked when the ring starts: the guest chose it. */
		q->num = num;
		q->failed = false;
		return 0;
	case VU_SET_VRING_BASE:
		if (q->vq != NULL)
			return vhost_user_fail(u, -EPROTO, "queue %u rebased "
			    "while running", index);
		q->base = (uint16_t)num;
		return 0;
	case VU_SET_VRING_ENABLE:
		if (num > 1)
			return vhost_user_fail(u, -EPROTO, "queue %u: enable "
			    "%u", index, num);
		q->enabled = num == 1;
		vhost_user_queue_update(q);
		if (q->vq != NULL)
			u->dev->kick(u->dev_arg, q->index);
		return 0;
	default:
		vhost_user_queue_stop(q);
		reply[0] = index;
		reply[1] = q->base;
		return vhost_user_reply(u, reply, sizeof(reply));
	}
}

/* SET_VRING_ADDR: the three ring addresses, in front-end addresses. */
static int
vhost_user_set_vring_addr(struct vhost_user *u, struct ph_reader *r)
{
	struct vu_queue *q = NULL;
	uint32_t index, flags;
	uint64_t desc, used, avail, log;
	int err;

	if (vh_get_le32(r, &index) < 0 || vh_get_le32(r, &flags) < 0 ||
	    vh_get_le64(r, &desc) < 0 || vh_get_le64(r, &used) < 0 ||
	    vh_get_le64(r, &avail) < 0 || vh_get_le64(r, &log) < 0 ||
	    ph_reader_left(r) != 0)
		return vhost_user_fail(u, -EPROTO, "ring address of %u bytes, "
		    "not 40", u->size);
	if ((err = vhost_user_queue_index(u, index, &q)) < 0)
		return err;
	if (flags != 0)
		return vhost_user_fail(u, -EPROTO, "queue %u: ring flags 0x%x "
		    "(no logging is offered)", index, flags);
	q->desc = desc;
	q->used = used;
	q->avail = avail;
	q->addr_set = true;
	q->failed = false;
	if (q->vq != NULL) {
		/* Moved while running: restart it at the new place. */
		q->started = false;
		vhost_user_queue_update(q);
		q->started = true;
		vhost_user_queue_update(q);
	}
	return 0;
}

/* GET_CONFIG: offset, size, flags; the reply carries the bytes. */
static int
vhost_user_get_config(struct vhost_user *u, struct ph_reader *r)
{
	uint8_t out[12 + VU_MAX_CONFIG];
	uint32_t off, size, flags;

	if (vh_get_le32(r, &off) < 0 || vh_get_le32(r, &size) < 0 ||
	    vh_get_le32(r, &flags) < 0 || ph_reader_left(r) != size)
		return vhost_user_fail(u, -EPROTO, "config request of %u bytes",
		    u->size);
	if (size > VU_MAX_CONFIG || off > u->dev->config_len ||
	    size > u->dev->config_len - off)
		return vhost_user_reply(u, NULL, 0);	/* an empty reply is an error */
	memcpy(out, &off, 4);
	memcpy(out + 4, &size, 4);
	memcpy(out + 8, &flags, 4);
	memset(out + 12, 0, size);
	if (size > 0)
		u->dev->get_config(u->dev_arg, off, out + 12, size);
	return vhost_user_reply(u, out, 12 + size);
}

/* A u64 payload (SET_FEATURES, SET_PROTOCOL_FEATURES). */
static int
vhost_user_get_u64(struct vhost_user *u, struct ph_reader *r, uint64_t *v)
{
	if (vh_get_le64(r, v) < 0 || ph_reader_left(r) != 0)
		return vhost_user_fail(u, -EPROTO, "request %u: payload of %u "
		    "bytes, not 8", u->req, u->size);
	return 0;
}

/*
 * Handles the complete message in u->buf. Returns 0, or a negative errno
 * to end the connection. *ack is set when a REPLY_ACK answer is due: 0 for
 * success, 1 for a refused request.
 */
static int
vhost_user_dispatch(struct vhost_user *u, uint64_t *ack)
{
	struct ph_reader r;
	uint64_t v = 0, offer;
	int err;

	*ack = 0;
	ph_reader_init(&r, u->buf + VU_HDR_LEN, u->size);
	switch (u->req) {
	case VU_GET_FEATURES:
		return vhost_user_reply_u64(u,
		    u->dev->features | VU_RING_FEATURES);
	case VU_SET_FEATURES:
		if ((err = vhost_user_get_u64(u, &r, &v)) < 0)
			return err;
		offer = u->dev->features | VU_RING_FEATURES;
		if (v & ~offer)
			return vhost_user_fail(u, -EPROTO, "features 0x%llx "
			    "were never offered",
			    (unsigned long long)(v & ~offer));
		u->features = v;
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		return vhost_user_reply_u64(u, VU_PROTOCOL_FEATURES);
	case VU_SET_PROTOCOL_FEATURES:
		if ((err = vhost_user_get_u64(u, &r, &v)) < 0)
			return err;
		if (v & ~VU_PROTOCOL_FEATURES)
			return vhost_user_fail(u, -EPROTO, "protocol features "
			    "0x%llx were never offered",
			    (unsigned long long)(v & ~VU_PROTOCOL_FEATURES));
		u->protocol_features = v;
		return 0;
	case VU_GET_QUEUE_NUM:
		return vhost_user_reply_u64(u, u->dev->nqueues);
	case VU_SET_OWNER:
		u->owned = true;
		return 0;
	case VU_RESET_OWNER:
		/*
		 * Deprecated; the specification suggests disabling rings. The
		 * memory goes too: a new table must come before they restart.
		 */
		for (uint32_t i = 0; i < u->dev->nqueues; i++) {
			vhost_user_queue_stop(&u->q[i]);
			u->q[i].paused = false;
		}
		vhost_mem_free(u->mem);
		u->mem = NULL;
		return 0;
	case VU_SET_MEM_TABLE:
		return vhost_user_set_mem_table(u, &r);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		return vhost_user_vring_state(u, &r);
	case VU_SET_VRING_ADDR:
		return vhost_user_set_vring_addr(u, &r);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return vhost_user_set_vring_fd(u, &r);
	case VU_GET_CONFIG:
		return vhost_user_get_config(u, &r);
	case VU_SET_CONFIG:
		/* The configuration space is read-only. */
		*ack = 1;
		return 0;
	case VU_SET_LOG_BASE:
	case VU_SET_LOG_FD:
		return vhost_user_fail(u, -EPROTO, "dirty page logging "
		    "(request %u) was never offered", u->req);
	default:
		return vhost_user_fail(u, -EPROTO, "unsupported request %u",
		    u->req);
	}
}

/* Requests that answer with a reply of their own, REPLY_ACK or not. */
static bool
vhost_user_has_reply(uint32_t req)
{
	return req == VU_GET_FEATURES || req == VU_GET_PROTOCOL_FEATURES ||
	    req == VU_GET_VRING_BASE || req == VU_GET_QUEUE_NUM ||
	    req == VU_GET_CONFIG;
}

/* Handles one complete message and its acknowledgement. */
static int
vhost_user_handle(struct vhost_user *u)
{
	uint64_t ack;
	int err;

	err = vhost_user_dispatch(u, &ack);
	vhost_user_close_fds(u);
	if (err < 0)
		return err;
	if ((u->flags & VU_FLAG_NEED_REPLY) && !vhost_user_has_reply(u->req) &&
	    (u->protocol_features >> VHOST_USER_PROTOCOL_F_REPLY_ACK) & 1)
		return vhost_user_reply_u64(u, ack);
	return 0;
}

/* Keeps the descriptors that came with a read; refuses too many. */
static int
vhost_user_collect_fds(struct vhost_user *u, struct msghdr *mh)
{
	struct cmsghdr *c;
	size_t n;
	int *fds, bad = 0;

	for (c = CMSG_FIRSTHDR(mh); c != NULL; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		fds = (int *)(void *)CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, &fds[i], sizeof(fd));
			if (u->nfds < VU_MAX_FDS)
				u->fds[u->nfds++] = fd;
			else {
				close(fd);
				bad = 1;
			}
		}
	}
	if (bad || (mh->msg_flags & MSG_CTRUNC))
		return vhost_user_fail(u, -EPROTO, "more than %d descriptors "
		    "with one message", VU_MAX_FDS);
	return 0;
}

/*
 * Reads messages one exact piece at a time (header, then the payload it
 * announces), so descriptors always arrive with the message they belong to.
 */
int
vhost_user_input(struct vhost_user *u)
{
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	} ctl;
	struct msghdr mh;
	struct iovec iov;
	struct ph_reader r;
	size_t want;
	ssize_t n;
	int err;

	for (int done = 0; done < VU_BATCH; ) {
		/* Read the header, then exactly its payload: never beyond. */
		want = u->have < VU_HDR_LEN ? VU_HDR_LEN - u->have :
		    VU_HDR_LEN + u->size - u->have;
		if (want > 0) {
			memset(&mh, 0, sizeof(mh));
			iov.iov_base = u->buf + u->have;
			iov.iov_len = want;
			mh.msg_iov = &iov;
			mh.msg_iovlen = 1;
			mh.msg_control = ctl.buf;
			mh.msg_controllen = sizeof(ctl.buf);
			n = recvmsg(u->sock, &mh, MSG_CMSG_CLOEXEC);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				return 0;
			if (n < 0)
				return vhost_user_fail(u, -errno, "read: %s",
				    strerror(errno));
			if ((err = vhost_user_collect_fds(u, &mh)) < 0)
				return err;
			if (n == 0)
				return vhost_user_fail(u, -ECONNRESET,
				    "front-end closed the connection");
			u->have += (size_t)n;
			if (u->have < VU_HDR_LEN)
				continue;
			if (u->have == VU_HDR_LEN) {
				ph_reader_init(&r, u->buf, VU_HDR_LEN);
				(void)ph_reader_get_bytes(&r, &u->req, 4);
				(void)ph_reader_get_bytes(&r, &u->flags, 4);
				(void)ph_reader_get_bytes(&r, &u->size, 4);
				if ((u->flags & VU_VERSION_MASK) != VU_VERSION)
					return vhost_user_fail(u, -EPROTO,
					    "message version %u",
					    u->flags & VU_VERSION_MASK);
				if (u->flags & VU_FLAG_REPLY)
					return vhost_user_fail(u, -EPROTO, "a "
					    "reply where a request belongs");
				if (u->size > VU_MAX_PAYLOAD)
					return vhost_user_fail(u, -EMSGSIZE,
					    "request %u with %u bytes of "
					    "payload", u->req, u->size);
			}
			if (u->have < VU_HDR_LEN + u->size)
				continue;
		}
		u->have = 0;
		done++;
		if ((err = vhost_user_handle(u)) < 0)
			return err;
	}
	return 0;
}

int
vhost_user_new(int sock, const struct vhost_user_device *dev, void *dev_arg,
    const struct vhost_watch *w, struct vhost_user **out)
{
	struct vhost_user *u;

	*out = NULL;
	if (dev->nqueues == 0 || dev->nqueues > VU_MAX_QUEUES ||
	    dev->config_len > VU_MAX_CONFIG)
		return -EINVAL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -ENOMEM;
	u->sock = sock;
	u->dev = dev;
	u->dev_arg = dev_arg;
	u->w = *w;
	for (uint32_t i = 0; i < VU_MAX_QUEUES; i++) {
		u->q[i].u = u;
		u->q[i].index = i;
		u->q[i].kick_fd = u->q[i].call_fd = u->q[i].err_fd = -1;
	}
	*out = u;
	return 0;
}

void
vhost_user_free(struct vhost_user *u)
{
	if (u == NULL)
		return;
	for (uint32_t i = 0; i < u->dev->nqueues; i++) {
		vhost_user_queue_stop(&u->q[i]);
		if (u->q[i].call_fd >= 0)
			close(u->q[i].call_fd);
		if (u->q[i].err_fd >= 0)
			close(u->q[i].err_fd);
	}
	vhost_user_close_fds(u);
	vhost_mem_free(u->mem);
	free(u);
}

const char *
vhost_user_error(const struct vhost_user *u)
{
	return u->err;
}

uint64_t
vhost_user_features(const struct vhost_user *u)
{
	return u->features;
}

bool
vhost_user_owned(const struct vhost_user *u)
{
	return u->owned;
}
