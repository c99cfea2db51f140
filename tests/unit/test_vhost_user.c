/*
 * test_vhost_user.c: the vhost-user control protocol, with the test as the
 * front-end on the other end of a socketpair: real messages, real
 * descriptors (a memfd for guest memory, eventfds for the rings). Covered:
 * the handshake QEMU performs, a ring's whole life (set up, started,
 * kicked, stopped), replies and acknowledgements, and the messages that
 * must end the connection: oversized, wrong version, too many descriptors,
 * unknown requests, features never offered, inconsistent memory tables.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost.h"

#define REQ_GET_FEATURES	1
#define REQ_SET_FEATURES	2
#define REQ_SET_OWNER		3
#define REQ_RESET_OWNER		4
#define REQ_SET_MEM_TABLE	5
#define REQ_SET_LOG_BASE	6
#define REQ_SET_VRING_NUM	8
#define REQ_SET_VRING_ADDR	9
#define REQ_SET_VRING_BASE	10
#define REQ_GET_VRING_BASE	11
#define REQ_SET_VRING_KICK	12
#define REQ_SET_VRING_CALL	13
#define REQ_GET_PROTOCOL_FEATURES 15
#define REQ_SET_PROTOCOL_FEATURES 16
#define REQ_GET_QUEUE_NUM	17
#define REQ_SET_VRING_ENABLE	18
#define REQ_GET_CONFIG		24
#define REQ_SET_CONFIG		25
#define FLAG_V1			0x1u
#define FLAG_REPLY		0x4u
#define FLAG_NEED_REPLY		0x8u

#define MEM_SIZE	(1024 * 1024)
#define GPA		0x100000ull
#define NUM		16
#define DEV_FEATURE	(1ull << 1)

struct tdev {
	int		 starts[3];
	int		 stops[3];
	int		 kicks[3];
	int		 popped;
	bool		 resumed[3];	/* what the last start said */
	struct vhost_vq	*vq[3];
};

struct uctx {
	int			 fe;		/* our end: the front-end */
	int			 be;		/* the library's end */
	struct vhost_user	*u;
	struct tdev		 dev;
	struct vhost_user_device ops;
	struct vhost_watch	 w;
	/* The one kick descriptor watched, and how to fire it. */
	void			(*kick_ready)(void *, unsigned);
	void			*kick_obj;
	int			 kick_watched;
	int			 released;
	int			 memfd;
	uint8_t			*mem;		/* our view of guest memory */
};

static void
d_get_config(void *arg, uint32_t off, void *buf, uint32_t len)
{
	(void)arg;
	for (uint32_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)(0xa0 + off + i);
}

static void
d_start(void *arg, uint32_t q, struct vhost_vq *vq)
{
	struct tdev *d = arg;

	d->starts[q]++;
	d->resumed[q] = vhost_vq_resumed(vq);
	d->vq[q] = vq;
}

/* A device that consumes whatever it is given. */
static void
d_kick(void *arg, uint32_t q)
{
	struct tdev *d = arg;
	struct vhost_chain ch;

	d->kicks[q]++;
	while (d->vq[q] != NULL && vhost_vq_pop(d->vq[q], &ch) == 1) {
		d->popped++;
		(void)vhost_vq_push(d->vq[q], ch.head, 0);
	}
}

static void
d_stop(void *arg, uint32_t q)
{
	struct tdev *d = arg;

	d->stops[q]++;
	d->vq[q] = NULL;
}

static int
w_watch(void *arg, void **slot, int fd, unsigned events,
    void (*ready)(void *, unsigned), void *obj)
{
	struct uctx *c = arg;

	(void)fd;
	(void)events;
	*slot = c;
	c->kick_ready = ready;
	c->kick_obj = obj;
	c->kick_watched++;
	return 0;
}

static void
w_release(void *arg, void **slot, int fd)
{
	struct uctx *c = arg;

	*slot = NULL;
	c->released++;
	close(fd);
}

static int
setup(void **state)
{
	struct uctx *c = calloc(1, sizeof(*c));
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
	    sv), 0);
	c->fe = sv[0];
	c->be = sv[1];
	c->ops.features = DEV_FEATURE;
	c->ops.nqueues = 2;
	c->ops.config_len = 8;
	c->ops.get_config = d_get_config;
	c->ops.start = d_start;
	c->ops.kick = d_kick;
	c->ops.stop = d_stop;
	c->w.watch = w_watch;
	c->w.release = w_release;
	c->w.arg = c;
	assert_int_equal(vhost_user_new(c->be, &c->ops, &c->dev, &c->w,
	    &c->u), 0);
	c->memfd = memfd_create("guest", MFD_CLOEXEC);
	assert_true(c->memfd >= 0);
	assert_int_equal(ftruncate(c->memfd, MEM_SIZE), 0);
	c->mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
	    c->memfd, 0);
	assert_true(c->mem != MAP_FAILED);
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	struct uctx *c = *state;

	vhost_user_free(c->u);
	close(c->fe);
	close(c->be);
	close(c->memfd);
	munmap(c->mem, MEM_SIZE);
	free(c);
	return 0;
}

/* Sends one message with its descriptors. */
static void
fe_send(struct uctx *c, uint32_t req, uint32_t flags, const void *payload,
    uint32_t len, const int *fds, int nfds)
{
	uint8_t buf[1024];
	uint32_t hdr[3] = { req, flags, len };
	union {
		struct cmsghdr	align;
		char		buf[CMSG_SPACE(16 * sizeof(int))];
	} ctl;
	struct msghdr mh;
	struct iovec iov;
	struct cmsghdr *cm;

	memcpy(buf, hdr, 12);
	if (len > 0)
		memcpy(buf + 12, payload, len);
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = buf;
	iov.iov_len = 12 + len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds > 0) {
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, (size_t)nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(c->fe, &mh, 0), (ssize_t)(12 + len));
}

static void
fe_send_u64(struct uctx *c, uint32_t req, uint32_t flags, uint64_t v)
{
	fe_send(c, req, flags, &v, 8, NULL, 0);
}

static void
fe_send_state(struct uctx *c, uint32_t req, uint32_t index, uint32_t num)
{
	uint32_t p[2] = { index, num };

	fe_send(c, req, FLAG_V1, p, 8, NULL, 0);
}

/* Reads one reply; returns its payload length. */
static uint32_t
fe_reply(struct uctx *c, uint32_t req, void *payload, size_t cap)
{
	uint8_t buf[1024];
	uint32_t hdr[3];
	ssize_t n;

	/* Exactly one message: the header, then the size it announces. */
	n = recv(c->fe, buf, 12, 0);
	assert_int_equal(n, 12);
	memcpy(hdr, buf, 12);
	assert_int_equal(hdr[0], req);
	assert_int_equal(hdr[1], FLAG_V1 | FLAG_REPLY);
	assert_true(hdr[2] <= cap && hdr[2] <= sizeof(buf));
	if (hdr[2] > 0)
		assert_int_equal(recv(c->fe, buf, hdr[2], 0), (ssize_t)hdr[2]);
	memcpy(payload, buf, hdr[2]);
	return hdr[2];
}

static uint64_t
fe_reply_u64(struct uctx *c, uint32_t req)
{
	uint64_t v;

	assert_int_equal(fe_reply(c, req, &v, sizeof(v)), 8);
	return v;
}

static bool
fe_no_reply(struct uctx *c)
{
	char b[16];

	return recv(c->fe, b, sizeof(b), 0) < 0 && errno == EAGAIN;
}

/* The memory table: one region, the whole memfd, at GPA and uva. */
static void
fe_mem_table(struct uctx *c, uint64_t size, uint64_t off)
{
	uint64_t p[5] = { 1, GPA, size, (uint64_t)(uintptr_t)c->mem, off };

	fe_send(c, REQ_SET_MEM_TABLE, FLAG_V1, p, sizeof(p), &c->memfd, 1);
}

/* Sets up queue 0 with rings at the start of guest memory. */
static void
fe_ring(struct uctx *c, int kick, int call)
{
	uint64_t base = (uint64_t)(uintptr_t)c->mem;
	uint32_t addr[10];
	uint64_t a[4] = { base, base + 0x2000, base + 0x1000, 0 };

	fe_send_state(c, REQ_SET_VRING_NUM, 0, NUM);
	addr[0] = 0;
	addr[1] = 0;
	memcpy(addr + 2, a, sizeof(a));
	fe_send(c, REQ_SET_VRING_ADDR, FLAG_V1, addr, 40, NULL, 0);
	fe_send_state(c, REQ_SET_VRING_BASE, 0, 0);
	fe_send(c, REQ_SET_VRING_CALL, FLAG_V1, &(uint64_t){ 0 }, 8, &call, 1);
	fe_send(c, REQ_SET_VRING_KICK, FLAG_V1, &(uint64_t){ 0 }, 8, &kick, 1);
}

/* ---- Tests ----------------------------------------------------------------- */

static void
test_handshake(void **state)
{
	struct uctx *c = *state;
	uint8_t cfg[64];
	uint32_t creq[3] = { 2, 4, 0 };
	uint8_t reqbuf[16];
	uint64_t f;

	fe_send(c, REQ_GET_FEATURES, FLAG_V1, NULL, 0, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	f = fe_reply_u64(c, REQ_GET_FEATURES);
	assert_true(f & (1ull << VHOST_F_VERSION_1));
	assert_true(f & (1ull << VHOST_F_EVENT_IDX));
	assert_true(f & (1ull << VHOST_F_INDIRECT_DESC));
	assert_true(f & (1ull << VHOST_F_PROTOCOL_FEATURES));
	assert_true(f & DEV_FEATURE);
	fe_send(c, REQ_GET_PROTOCOL_FEATURES, FLAG_V1, NULL, 0, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	f = fe_reply_u64(c, REQ_GET_PROTOCOL_FEATURES);
	assert_int_equal(f, (1ull << VHOST_USER_PROTOCOL_F_MQ) |
	    (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
	    (1ull << VHOST_USER_PROTOCOL_F_CONFIG));
	fe_send_u64(c, REQ_SET_PROTOCOL_FEATURES, FLAG_V1, f);
	fe_send(c, REQ_GET_QUEUE_NUM, FLAG_V1, NULL, 0, NULL, 0);
	fe_send(c, REQ_SET_OWNER, FLAG_V1 | FLAG_NEED_REPLY, NULL, 0, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply_u64(c, REQ_GET_QUEUE_NUM), 2);
	assert_int_equal(fe_reply_u64(c, REQ_SET_OWNER), 0);	/* REPLY_ACK */
	assert_true(vhost_user_owned(c->u));
	/* The configuration space, as QEMU asks for a vsock CID. */
	memcpy(reqbuf, creq, 12);
	memset(reqbuf + 12, 0, 4);
	fe_send(c, REQ_GET_CONFIG, FLAG_V1, reqbuf, 16, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply(c, REQ_GET_CONFIG, cfg, sizeof(cfg)), 16);
	assert_int_equal(cfg[12], 0xa2);
	assert_int_equal(cfg[15], 0xa5);
	/* Past the end of the space: an empty reply is the error. */
	creq[0] = 6;
	memcpy(reqbuf, creq, 12);
	fe_send(c, REQ_GET_CONFIG, FLAG_V1, reqbuf, 16, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply(c, REQ_GET_CONFIG, cfg, sizeof(cfg)), 0);
	/* Writing the read-only space is refused, not fatal. */
	fe_send(c, REQ_SET_CONFIG, FLAG_V1 | FLAG_NEED_REPLY, reqbuf, 16, NULL,
	    0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply_u64(c, REQ_SET_CONFIG), 1);
	assert_true(fe_no_reply(c));
}

static void
test_ring_life(void **state)
{
	struct uctx *c = *state;
	int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);
	uint64_t feat = (1ull << VHOST_F_VERSION_1) |
	    (1ull << VHOST_F_PROTOCOL_FEATURES), one = 1, v;
	uint32_t st[2];
	uint16_t idx = 1;

	fe_send_u64(c, REQ_SET_FEATURES, FLAG_V1, feat);
	fe_mem_table(c, MEM_SIZE, 0);
	fe_ring(c, kick, call);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(vhost_user_features(c->u), feat);
	/* Protocol features negotiated: started, but not yet enabled. */
	assert_int_equal(c->dev.starts[0], 0);
	assert_int_equal(c->kick_watched, 1);
	fe_send_state(c, REQ_SET_VRING_ENABLE, 0, 1);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(c->dev.starts[0], 1);
	/* The guest adds a buffer and kicks. */
	memset(c->mem, 0, 16);
	*(uint64_t *)(void *)c->mem = GPA + 0x8000;
	*(uint32_t *)(void *)(c->mem + 8) = 64;
	*(uint16_t *)(void *)(c->mem + 0x1004) = 0;
	*(uint16_t *)(void *)(c->mem + 0x1002) = idx;
	assert_int_equal(write(kick, &one, 8), 8);
	c->kick_ready(c->kick_obj, VHOST_EV_READ);
	assert_int_equal(c->dev.kicks[0], 2);	/* at enable, and now */
	assert_int_equal(c->dev.popped, 1);
	assert_int_equal(read(kick, &v, 8), -1);	/* the kick was drained */
	assert_int_equal(*(uint16_t *)(void *)(c->mem + 0x2002), 1);
	/* Stopping the ring reports where it stopped. */
	fe_send_state(c, REQ_GET_VRING_BASE, 0, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply(c, REQ_GET_VRING_BASE, st, sizeof(st)), 8);
	assert_int_equal(st[0], 0);
	assert_int_equal(st[1], 1);
	assert_int_equal(c->dev.stops[0], 1);
	assert_int_equal(c->released, 1);	/* its kick descriptor */
	close(kick);
	close(call);
}

static void
test_new_mem_table_while_running(void **state)
{
	struct uctx *c = *state;
	int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);

	fe_send_u64(c, REQ_SET_FEATURES, FLAG_V1, 1ull << VHOST_F_VERSION_1);
	fe_mem_table(c, MEM_SIZE, 0);
	fe_ring(c, kick, call);
	assert_int_equal(vhost_user_input(c->u), 0);
	/* No protocol features: the kick descriptor started it enabled. */
	assert_int_equal(c->dev.starts[0], 1);
	fe_mem_table(c, MEM_SIZE, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_non_null(c->dev.vq[0]);
	assert_false(vhost_vq_broken(c->dev.vq[0]));
	/* A table without the rings breaks the queue, not the link. */
	fe_mem_table(c, 4096, 0x80000);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_true(vhost_vq_broken(c->dev.vq[0]));
	close(kick);
	close(call);
}

static void
test_reset_owner(void **state)
{
	struct uctx *c = *state;
	int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);

	fe_send_u64(c, REQ_SET_FEATURES, FLAG_V1, 1ull << VHOST_F_VERSION_1);
	fe_mem_table(c, MEM_SIZE, 0);
	fe_ring(c, kick, call);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(c->dev.starts[0], 1);
	/* Rings stop and the memory goes; the link stays. */
	fe_send(c, REQ_RESET_OWNER, FLAG_V1, NULL, 0, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(c->dev.stops[0], 1);
	assert_null(c->dev.vq[0]);
	assert_int_equal(c->released, 1);
	/* Set up again: no start without a new memory table. */
	fe_ring(c, kick, call);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(c->dev.starts[0], 1);
	fe_mem_table(c, MEM_SIZE, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(c->dev.starts[0], 2);
	close(kick);
	close(call);
}

/* Stops queue 0 as QEMU does when the VM pauses: the base it reports. */
static uint32_t
fe_stop_ring(struct uctx *c)
{
	uint32_t st[2];

	fe_send_state(c, REQ_GET_VRING_BASE, 0, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply(c, REQ_GET_VRING_BASE, st, sizeof(st)), 8);
	return st[1];
}

/* Restarts queue 0 at base with a new kick descriptor. */
static void
fe_restart_ring(struct uctx *c, uint32_t base, int kick)
{
	fe_send_state(c, REQ_SET_VRING_BASE, 0, base);
	fe_send(c, REQ_SET_VRING_KICK, FLAG_V1, &(uint64_t){ 0 }, 8, &kick, 1);
	assert_int_equal(vhost_user_input(c->u), 0);
}

static void
test_pause_resume(void **state)
{
	struct uctx *c = *state;
	int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);
	int k2 = eventfd(0, EFD_NONBLOCK), k3 = eventfd(0, EFD_NONBLOCK);
	int k4 = eventfd(0, EFD_NONBLOCK), k5 = eventfd(0, EFD_NONBLOCK);

	fe_send_u64(c, REQ_SET_FEATURES, FLAG_V1, 1ull << VHOST_F_VERSION_1);
	fe_mem_table(c, MEM_SIZE, 0);
	fe_ring(c, kick, call);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(c->dev.starts[0], 1);
	assert_false(c->dev.resumed[0]);	/* a new device */
	/* Restarted elsewhere than where it stopped: a new ring. */
	assert_int_equal(fe_stop_ring(c), 0);
	fe_restart_ring(c, 7, k2);
	assert_int_equal(c->dev.starts[0], 2);
	assert_false(c->dev.resumed[0]);
	/* Paused and resumed where it stopped: the same ring goes on. */
	assert_int_equal(fe_stop_ring(c), 7);
	fe_restart_ring(c, 7, k3);
	assert_int_equal(c->dev.starts[0], 3);
	assert_true(c->dev.resumed[0]);
	/* Reset: the driver starts again at 0, a new ring. */
	assert_int_equal(fe_stop_ring(c), 7);
	fe_restart_ring(c, 0, k4);
	assert_int_equal(c->dev.starts[0], 4);
	assert_false(c->dev.resumed[0]);
	/* Stopped at 0, restarted at 0: nothing tells it from a reset. */
	assert_int_equal(fe_stop_ring(c), 0);
	fe_restart_ring(c, 0, k5);
	assert_int_equal(c->dev.starts[0], 5);
	assert_false(c->dev.resumed[0]);
	close(kick);
	close(call);
	close(k2);
	close(k3);
	close(k4);
	close(k5);
}

static void
test_ring_outside_memory(void **state)
{
	struct uctx *c = *state;
	int kick = eventfd(0, EFD_NONBLOCK), call = eventfd(0, EFD_NONBLOCK);
	uint32_t addr[10];
	uint64_t a[4] = { 0x1000, 0x2000, 0x3000, 0 };

	fe_send_u64(c, REQ_SET_FEATURES, FLAG_V1, 1ull << VHOST_F_VERSION_1);
	fe_mem_table(c, MEM_SIZE, 0);
	fe_ring(c, kick, call);
	addr[0] = 0;
	addr[1] = 0;
	memcpy(addr + 2, a, sizeof(a));
	fe_send(c, REQ_SET_VRING_ADDR, FLAG_V1, addr, 40, NULL, 0);
	assert_int_equal(vhost_user_input(c->u), 0);
	/* Restarted at the new place, which is not guest memory: stopped. */
	assert_null(c->dev.vq[0]);
	assert_int_equal(c->dev.stops[0], 1);
	close(kick);
	close(call);
}

static void
test_partial_message(void **state)
{
	struct uctx *c = *state;
	uint32_t hdr[3] = { REQ_GET_QUEUE_NUM, FLAG_V1, 0 };

	assert_int_equal(write(c->fe, hdr, 5), 5);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_true(fe_no_reply(c));
	assert_int_equal(write(c->fe, (uint8_t *)hdr + 5, 7), 7);
	assert_int_equal(vhost_user_input(c->u), 0);
	assert_int_equal(fe_reply_u64(c, REQ_GET_QUEUE_NUM), 2);
}

/* ---- Messages that end the connection ------------------------------------- */

static void
expect_fail(struct uctx *c, int err)
{
	assert_int_equal(vhost_user_input(c->u), err);
	assert_true(strlen(vhost_user_error(c->u)) > 0);
}

static void
test_oversized(void **state)
{
	struct uctx *c = *state;
	uint32_t hdr[3] = { REQ_SET_MEM_TABLE, FLAG_V1, 1u << 20 };

	assert_int_equal(write(c->fe, hdr, 12), 12);
	expect_fail(c, -EMSGSIZE);
}

static void
test_bad_version(void **state)
{
	struct uctx *c = *state;

	fe_send(c, REQ_GET_FEATURES, 0x2, NULL, 0, NULL, 0);
	expect_fail(c, -EPROTO);
}

static void
test_reply_flag_from_front_end(void **state)
{
	struct uctx *c = *state;

	fe_send(c, REQ_GET_FEATURES, FLAG_V1 | FLAG_REPLY, NULL, 0, NULL, 0);
	expect_fail(c, -EPROTO);
}

static void
test_unknown_request(void **state)
{
	struct uctx *c = *state;

	fe_send(c, 99, FLAG_V1, NULL, 0, NULL, 0);
	expect_fail(c, -EPROTO);
}

static void
test_log_base_refused(void **state)
{
	struct uctx *c = *state;

	fe_send_u64(c, REQ_SET_LOG_BASE, FLAG_V1, 0);
	expect_fail(c, -EPROTO);
}

static void
test_queue_index_out_of_range(void **state)
{
	struct uctx *c = *state;

	fe_send_state(c, REQ_SET_VRING_NUM, 2, NUM);
	expect_fail(c, -EPROTO);
}

static void
test_features_not_offered(void **state)
{
	struct uctx *c = *state;

	fe_send_u64(c, REQ_SET_FEATURES, FLAG_V1, 1ull << 26);	/* LOG_ALL */
	expect_fail(c, -EPROTO);
}

static void
test_wrong_payload_size(void **state)
{
	struct uctx *c = *state;

	fe_send(c, REQ_SET_FEATURES, FLAG_V1, "1234", 4, NULL, 0);
	expect_fail(c, -EPROTO);
}

static void
test_mem_table_fd_mismatch(void **state)
{
	struct uctx *c = *state;
	uint64_t p[9] = { 2, GPA, 4096, 0x1000, 0, GPA + 8192, 4096, 0x9000,
	    0 };

	fe_send(c, REQ_SET_MEM_TABLE, FLAG_V1, p, sizeof(p), &c->memfd, 1);
	expect_fail(c, -EPROTO);
}

static void
test_mem_table_past_file(void **state)
{
	struct uctx *c = *state;

	fe_mem_table(c, MEM_SIZE, 4096);	/* offset + size > file */
	expect_fail(c, -EPROTO);
}

static void
test_mem_table_overlap(void **state)
{
	struct uctx *c = *state;
	uint64_t p[9] = { 2, GPA, 8192, 0x100000, 0, GPA + 4096, 4096,
	    0x900000, 0 };
	int fds[2] = { c->memfd, c->memfd };

	fe_send(c, REQ_SET_MEM_TABLE, FLAG_V1, p, sizeof(p), fds, 2);
	expect_fail(c, -EPROTO);
}

static void
test_kick_without_fd(void **state)
{
	struct uctx *c = *state;

	fe_send_u64(c, REQ_SET_VRING_KICK, FLAG_V1, 0);
	expect_fail(c, -EPROTO);
}

static void
test_too_many_fds(void **state)
{
	struct uctx *c = *state;
	int fds[9];

	for (int i = 0; i < 9; i++)
		fds[i] = c->memfd;
	fe_send(c, REQ_GET_FEATURES, FLAG_V1, NULL, 0, fds, 9);
	expect_fail(c, -EPROTO);
}

static void
test_eof(void **state)
{
	struct uctx *c = *state;

	shutdown(c->fe, SHUT_WR);
	expect_fail(c, -ECONNRESET);
}

static void
test_bad_device(void **state)
{
	struct vhost_user_device ops;
	struct vhost_watch w = { w_watch, w_release, NULL };
	struct vhost_user *u;

	(void)state;
	memset(&ops, 0, sizeof(ops));
	assert_int_equal(vhost_user_new(0, &ops, NULL, &w, &u), -EINVAL);
	assert_null(u);
	ops.nqueues = 9;
	assert_int_equal(vhost_user_new(0, &ops, NULL, &w, &u), -EINVAL);
	vhost_user_free(NULL);
}

int
main(void)
{
#define T(f)	cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_handshake),
		T(test_ring_life),
		T(test_new_mem_table_while_running),
		T(test_reset_owner),
		T(test_pause_resume),
		T(test_ring_outside_memory),
		T(test_partial_message),
		T(test_oversized),
		T(test_bad_version),
		T(test_reply_flag_from_front_end),
		T(test_unknown_request),
		T(test_log_base_refused),
		T(test_queue_index_out_of_range),
		T(test_features_not_offered),
		T(test_wrong_payload_size),
		T(test_mem_table_fd_mismatch),
		T(test_mem_table_past_file),
		T(test_mem_table_overlap),
		T(test_kick_without_fd),
		T(test_too_many_fds),
		T(test_eof),
		cmocka_unit_test(test_bad_device),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
