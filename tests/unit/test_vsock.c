/*
 * test_vsock.c: the virtio-vsock device against a fake guest driver.
 *
 * The test plays the guest (it writes packets into the transmit queue and
 * posts receive buffers, in its own "guest memory") and the host service
 * (it holds the other end of every socket the device asks for). Covered:
 * the connection handshake, RST for wrong ports and strays, credit
 * accounting both ways, lying lengths and spoofed CIDs, shutdown in both
 * directions, device reset, and a hostile queue breaking only the device.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost.h"
#include "vq_fixture.h"
#include "vsock.h"

#define GUEST_CID	3
#define PORT		7390
#define QNUM		64
#define RX_BUF		4096
#define RXBUF(h)	(FX_DATA + (size_t)(h) * 0x2000)
#define TXBUF(s)	(0x100000 + (size_t)(s) * 0x20000)
#define TX_SLOTS	16
#define MAX_WATCH	64

struct wslot {
	bool		 used;
	int		 fd;
	unsigned	 ev;
	void		(*ready)(void *, unsigned);
	void		*obj;
};

struct vctx {
	struct fx		 fx;
	struct fq		 rx;
	struct fq		 tx;
	struct vsock_dev	*d;
	struct vhost_watch	 w;
	struct vsock_dev_ops	 ops;
	struct wslot		 ws[MAX_WATCH];
	int			 peer[16];	/* our ends, in connect order */
	int			 npeer;
	int			 connects;
	bool			 prefill;	/* fill the device's socket */
	int			 broken;
	uint16_t		 rx_posted;
	uint32_t		 tx_slot;
	uint32_t		 buf_alloc;	/* the device's, as it announces it */
};

/* ---- The embedder's side: sockets and watches ------------------------------ */

static int
t_connect(void *arg, uint32_t guest_port, int *fd)
{
	struct vctx *c = arg;
	char junk[4096];
	int sv[2];

	(void)guest_port;
	c->connects++;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	if (c->prefill) {
		/* The host service reads nothing: the device's writes stall. */
		memset(junk, 'j', sizeof(junk));
		while (write(sv[1], junk, sizeof(junk)) > 0)
			;
	}
	c->peer[c->npeer++] = sv[0];
	*fd = sv[1];
	return 0;
}

static void
t_broken(void *arg, const char *why)
{
	struct vctx *c = arg;

	assert_non_null(why);
	c->broken++;
}

static int
t_watch(void *arg, void **slot, int fd, unsigned events,
    void (*ready)(void *, unsigned), void *obj)
{
	struct vctx *c = arg;
	struct wslot *s = *slot;

	if (s == NULL) {
		for (int i = 0; i < MAX_WATCH && s == NULL; i++)
			if (!c->ws[i].used)
				s = &c->ws[i];
		assert_non_null(s);
		s->used = true;
		*slot = s;
	}
	assert_int_equal(s->fd = fd, fd);
	s->ev = events;
	s->ready = ready;
	s->obj = obj;
	return 0;
}

static void
t_release(void *arg, void **slot, int fd)
{
	struct wslot *s = *slot;

	(void)arg;
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	*slot = NULL;
	close(fd);
}

/* Runs the "event loop" until no watched descriptor is ready. */
static void
pump(struct vctx *c)
{
	struct pollfd p[MAX_WATCH];
	int idx[MAX_WATCH], n, rounds = 0;

	for (;;) {
		n = 0;
		for (int i = 0; i < MAX_WATCH; i++) {
			if (!c->ws[i].used || c->ws[i].ev == 0)
				continue;
			p[n].fd = c->ws[i].fd;
			p[n].events = (short)(((c->ws[i].ev & VHOST_EV_READ) ?
			    POLLIN : 0) | ((c->ws[i].ev & VHOST_EV_WRITE) ?
			    POLLOUT : 0));
			p[n].revents = 0;
			idx[n++] = i;
		}
		if (n == 0 || poll(p, (nfds_t)n, 0) <= 0)
			return;
		for (int k = 0; k < n; k++) {
			struct wslot *s = &c->ws[idx[k]];
			unsigned ev = 0;

			if (p[k].revents == 0 || !s->used || s->fd != p[k].fd)
				continue;
			if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
				ev |= VHOST_EV_READ;
			if (p[k].revents & POLLOUT)
				ev |= VHOST_EV_WRITE;
			s->ready(s->obj, ev & (s->ev | VHOST_EV_READ));
		}
		assert_true(++rounds < 1000);
	}
}

/* ---- The guest's side ---------------------------------------------------------- */

/* Posts n receive buffers of a header plus RX_BUF bytes, then kicks. */
static void
rx_post(struct vctx *c, int n)
{
	for (int i = 0; i < n; i++) {
		uint16_t h = c->rx_posted++ % QNUM;

		fq_desc(&c->rx, h, fx_gpa(RXBUF(h)), VSOCK_HDR_LEN + RX_BUF,
		    FX_F_WRITE, 0);
		fq_avail(&c->rx, h);
	}
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_RX);
}

/* Takes the next packet the device sent; its payload length or -1. */
static int
rx_take(struct vctx *c, struct vsock_hdr *h, void *payload, size_t cap)
{
	uint32_t id, len;

	if (!fq_used(&c->rx, &id, &len))
		return -1;
	assert_true(len >= VSOCK_HDR_LEN);
	vsock_hdr_decode(c->fx.mem + RXBUF(id), h);
	assert_int_equal(h->len, len - VSOCK_HDR_LEN);
	assert_true(h->len <= cap);
	memcpy(payload, c->fx.mem + RXBUF(id) + VSOCK_HDR_LEN, h->len);
	return (int)h->len;
}

/* A header from the guest's port gport to the host. */
static struct vsock_hdr
ghdr(uint32_t gport, uint16_t op, uint32_t len)
{
	struct vsock_hdr h;

	memset(&h, 0, sizeof(h));
	h.src_cid = GUEST_CID;
	h.dst_cid = VSOCK_HOST_CID;
	h.src_port = gport;
	h.dst_port = PORT;
	h.len = len;
	h.type = VSOCK_TYPE_STREAM;
	h.op = op;
	h.buf_alloc = 256 * 1024;
	return h;
}

/*
 * Sends a packet: header h, then n payload bytes (which may differ from
 * h.len, to lie), as one readable descriptor; kicks the transmit queue.
 */
static void
tx_send(struct vctx *c, const struct vsock_hdr *h, const void *payload,
    size_t n)
{
	uint16_t slot = (uint16_t)(c->tx_slot++ % TX_SLOTS);
	uint32_t id, len;

	vsock_hdr_encode(h, c->fx.mem + TXBUF(slot));
	if (n > 0)
		memcpy(c->fx.mem + TXBUF(slot) + VSOCK_HDR_LEN, payload, n);
	fq_desc(&c->tx, slot, fx_gpa(TXBUF(slot)),
	    (uint32_t)(VSOCK_HDR_LEN + n), 0, 0);
	fq_avail(&c->tx, slot);
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_TX);
	/* Every packet is returned, good or bad. */
	if (!vhost_vq_broken(c->tx.vq)) {
		assert_int_equal(fq_used(&c->tx, &id, &len), 1);
		assert_int_equal(id, slot);
	}
}

/* Connects guest port gport; expects RESPONSE. */
static void
g_connect(struct vctx *c, uint32_t gport, uint32_t buf_alloc)
{
	struct vsock_hdr h = ghdr(gport, VSOCK_OP_REQUEST, 0), r;
	char b[8];

	h.buf_alloc = buf_alloc;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RESPONSE);
	assert_int_equal(r.src_cid, VSOCK_HOST_CID);
	assert_int_equal(r.dst_cid, GUEST_CID);
	assert_int_equal(r.src_port, PORT);
	assert_int_equal(r.dst_port, gport);
	assert_int_equal(r.type, VSOCK_TYPE_STREAM);
	assert_int_equal(r.buf_alloc, c->buf_alloc);
}

/* ---- Fixture ------------------------------------------------------------------- */

static int
setup_cfg(void **state, uint32_t buf_alloc)
{
	struct vctx *c = calloc(1, sizeof(*c));
	struct vsock_dev_config cfg;
	uint64_t feat = (1ull << VHOST_F_EVENT_IDX) |
	    (1ull << VHOST_F_INDIRECT_DESC);

	fx_init(&c->fx);
	assert_int_equal(fq_init(&c->rx, &c->fx, QNUM, 0, feat), 0);
	assert_int_equal(fq_init(&c->tx, &c->fx, QNUM, 0x10000, feat), 0);
	c->w.watch = t_watch;
	c->w.release = t_release;
	c->w.arg = c;
	c->ops.connect = t_connect;
	c->ops.broken = t_broken;
	memset(&cfg, 0, sizeof(cfg));
	cfg.guest_cid = GUEST_CID;
	cfg.port = PORT;
	cfg.buf_alloc = buf_alloc;
	c->buf_alloc = buf_alloc != 0 ? buf_alloc : 64 * 1024;
	assert_int_equal(vsock_dev_new(&cfg, &c->ops, c, &c->w, &c->d), 0);
	vsock_dev_vhost()->start(c->d, VSOCK_QUEUE_RX, c->rx.vq);
	vsock_dev_vhost()->start(c->d, VSOCK_QUEUE_TX, c->tx.vq);
	*state = c;
	return 0;
}

static int
setup(void **state)
{
	return setup_cfg(state, 0);
}

static int
setup_small(void **state)
{
	return setup_cfg(state, 4096);
}

static int
teardown(void **state)
{
	struct vctx *c = *state;

	vsock_dev_free(c->d);
	for (int i = 0; i < c->npeer; i++)
		close(c->peer[i]);
	fq_free(&c->rx);
	fq_free(&c->tx);
	fx_free(&c->fx);
	free(c);
	return 0;
}

/* True once the host service's end sees EOF (the device let go). */
static bool
peer_eof(int fd)
{
	char b[8192];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		;
	return n == 0;
}

/* ---- Tests ---------------------------------------------------------------------------- */

static void
test_config_space(void **state)
{
	const struct vhost_user_device *v = vsock_dev_vhost();
	struct vctx *c = *state;
	uint8_t cfg[8];

	assert_int_equal(v->config_len, 8);
	v->get_config(c->d, 0, cfg, 8);
	assert_int_equal(cfg[0], GUEST_CID);
	for (int i = 1; i < 8; i++)
		assert_int_equal(cfg[i], 0);
}

static void
test_bad_config(void **state)
{
	struct vsock_dev_config cfg;
	struct vsock_dev_ops ops = { t_connect, NULL };
	struct vhost_watch w = { t_watch, t_release, NULL };
	struct vsock_dev *d;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.port = PORT;
	cfg.guest_cid = 2;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &w, &d), -EINVAL);
	assert_null(d);
	cfg.guest_cid = 0xffffffffull;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &w, &d), -EINVAL);
	cfg.guest_cid = 3;
	cfg.buf_alloc = 100;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &w, &d), -EINVAL);
	vsock_dev_free(NULL);
}

static void
test_connect_and_echo(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct vsock_dev_stats st;
	char buf[RX_BUF];

	rx_post(c, 8);
	g_connect(c, 1000, 256 * 1024);
	assert_int_equal(c->connects, 1);
	/* Guest to host: the bytes come out of the host service's end. */
	h = ghdr(1000, VSOCK_OP_RW, 5);
	tx_send(c, &h, "hello", 5);
	assert_int_equal(read(c->peer[0], buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	/* Host to guest: straight into the posted buffer. */
	assert_int_equal(write(c->peer[0], "world!", 6), 6);
	pump(c);
	assert_int_equal(rx_take(c, &r, buf, sizeof(buf)), 6);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(r.fwd_cnt, 5);	/* it passed our 5 bytes on */
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.to_guest, 6);
	assert_int_equal(st.from_guest, 5);
	assert_true(st.running);
	assert_false(st.broken);
}

static void
test_wrong_port_rst(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h = ghdr(1001, VSOCK_OP_REQUEST, 0), r;
	struct vsock_dev_stats st;
	char b[8];

	rx_post(c, 4);
	h.dst_port = 22;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.src_port, 22);
	assert_int_equal(r.dst_port, 1001);
	assert_int_equal(r.dst_cid, GUEST_CID);
	assert_int_equal(c->connects, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.connections, 0);
	/* Data for a connection that does not exist: RST as well. */
	h = ghdr(1002, VSOCK_OP_RW, 3);
	tx_send(c, &h, "abc", 3);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	/* Never an RST for an RST. */
	h = ghdr(1003, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
}

static void
test_wrong_dst_cid(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h = ghdr(1001, VSOCK_OP_REQUEST, 0), r;
	char b[8];

	rx_post(c, 4);
	h.dst_cid = 7;		/* another guest */
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(c->connects, 0);
}

static void
test_spoofed_cid_dropped(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h = ghdr(1001, VSOCK_OP_REQUEST, 0), r;
	struct vsock_dev_stats st;
	char b[8];

	rx_post(c, 4);
	h.src_cid = 4;		/* pretends to be another guest */
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	assert_int_equal(c->connects, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.dropped, 1);
}

static void
test_lying_len(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct vsock_dev_stats st;
	char b[64];

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	/* Says 1000 bytes, carries 10. */
	h = ghdr(1000, VSOCK_OP_RW, 1000);
	tx_send(c, &h, "0123456789", 10);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_true(peer_eof(c->peer[0]));
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 0);
	assert_int_equal(st.resets, 1);
	/* More than a packet may carry, and a short header. */
	h = ghdr(1001, VSOCK_OP_RW, VSOCK_MAX_PKT + 1);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	fq_desc(&c->tx, 15, fx_gpa(TXBUF(15)), 20, 0, 0);
	fq_avail(&c->tx, 15);
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_TX);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.dropped, 3);
	assert_false(st.broken);
}

static void
test_host_credit(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	static char big[20000], got[RX_BUF];
	uint32_t total = 0;
	int n;

	rx_post(c, 32);
	/* The guest can take 1000 bytes now. */
	g_connect(c, 1000, 1000);
	memset(big, 'x', sizeof(big));
	assert_int_equal(write(c->peer[0], big, sizeof(big)), sizeof(big));
	pump(c);
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		total += (uint32_t)n;
	}
	assert_int_equal(total, 1000);
	/* The guest read 600 of them: 600 more may come, no more. */
	h = ghdr(1000, VSOCK_OP_CREDIT_UPDATE, 0);
	h.buf_alloc = 1000;
	h.fwd_cnt = 600;
	tx_send(c, &h, NULL, 0);
	pump(c);
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0)
		total += (uint32_t)n;
	assert_int_equal(total, 1600);
	/* A bigger buffer: the rest comes, in packets that fit the buffers. */
	h.buf_alloc = 1 << 20;
	tx_send(c, &h, NULL, 0);
	pump(c);
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0) {
		assert_true(n <= RX_BUF);
		total += (uint32_t)n;
	}
	assert_int_equal(total, sizeof(big));
}

static void
test_credit_request(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[64];

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	h = ghdr(1000, VSOCK_OP_RW, 7);
	tx_send(c, &h, "payload", 7);
	h = ghdr(1000, VSOCK_OP_CREDIT_REQUEST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 7);
	assert_int_equal(r.buf_alloc, 64 * 1024);
}

static void
test_guest_credit_overrun(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	static char data[4096];
	char b[64];

	/* The device offers 4 KiB and its host socket takes nothing. */
	c->prefill = true;
	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	memset(data, 'd', sizeof(data));
	h = ghdr(1000, VSOCK_OP_RW, 4096);
	tx_send(c, &h, data, 4096);	/* exactly the credit: kept */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	h = ghdr(1000, VSOCK_OP_RW, 1);
	tx_send(c, &h, "!", 1);		/* one byte too many */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
}

static void
test_buffered_then_flushed(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	static char data[4096], sink[65536];
	char b[64];
	size_t got = 0;
	ssize_t n;

	c->prefill = true;
	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	memset(data, 'd', sizeof(data));
	h = ghdr(1000, VSOCK_OP_RW, 4096);
	tx_send(c, &h, data, 4096);
	/* The host service starts reading: the buffer drains. */
	while ((n = read(c->peer[0], sink, sizeof(sink))) > 0)
		got += (size_t)n;
	pump(c);
	while ((n = read(c->peer[0], sink, sizeof(sink))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			assert_int_equal(sink[i], 'd');
		got += (size_t)n;
		pump(c);
	}
	/* Half the window passed on: the guest hears its new credit. */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 4096);
	assert_true(got > 4096);
}

static void
test_guest_shutdown(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[64];

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	g_connect(c, 1001, 65536);
	/* Half-close: the host service reads EOF, the connection stays. */
	h = ghdr(1000, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	tx_send(c, &h, NULL, 0);
	assert_true(peer_eof(c->peer[0]));
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	assert_int_equal(write(c->peer[0], "late", 4), 4);
	pump(c);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 4);
	/* Both ways: RST, and the device lets go of the socket. */
	h.flags = VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.dst_port, 1000);
	/* An RST from the guest closes the other one silently. */
	h = ghdr(1001, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	assert_true(peer_eof(c->peer[1]));
}

static void
test_host_close(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	char b[64];

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	assert_int_equal(write(c->peer[0], "bye", 3), 3);
	close(c->peer[0]);
	c->peer[0] = open("/dev/null", O_RDONLY);
	pump(c);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 3);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
}

static void
test_rw_before_response(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[64];

	/* No receive buffers yet: the RESPONSE cannot go out. */
	h = ghdr(1000, VSOCK_OP_REQUEST, 0);
	tx_send(c, &h, NULL, 0);
	h = ghdr(1000, VSOCK_OP_RW, 2);
	tx_send(c, &h, "hi", 2);
	rx_post(c, 4);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
}

static void
test_unknown_op_and_type(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[64];

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	h = ghdr(1000, 99, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	h = ghdr(1001, VSOCK_OP_REQUEST, 0);
	h.type = 2;		/* SEQPACKET was never offered */
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(c->connects, 1);
}

static void
test_reset_drops_all(void **state)
{
	struct vctx *c = *state;
	struct vsock_dev_stats st;

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	g_connect(c, 1001, 65536);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 2);
	/* The driver resets the device: the front-end stops the rings. */
	vsock_dev_vhost()->stop(c->d, VSOCK_QUEUE_RX);
	vsock_dev_vhost()->stop(c->d, VSOCK_QUEUE_TX);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 0);
	assert_false(st.running);
	assert_true(peer_eof(c->peer[0]));
	assert_true(peer_eof(c->peer[1]));
	/* Started again, the device serves new connections. */
	vsock_dev_vhost()->start(c->d, VSOCK_QUEUE_RX, c->rx.vq);
	vsock_dev_vhost()->start(c->d, VSOCK_QUEUE_TX, c->tx.vq);
	g_connect(c, 1002, 65536);
	assert_int_equal(c->connects, 3);
}

static void
test_hostile_queue_breaks_device(void **state)
{
	struct vctx *c = *state;
	struct vsock_dev_stats st;
	struct vsock_hdr h = ghdr(1001, VSOCK_OP_REQUEST, 0);

	rx_post(c, 8);
	g_connect(c, 1000, 65536);
	/* A transmit chain that loops forever. */
	fq_desc(&c->tx, 0, fx_gpa(TXBUF(0)), 44, FX_F_NEXT, 1);
	fq_desc(&c->tx, 1, fx_gpa(TXBUF(0)), 44, FX_F_NEXT, 0);
	fq_avail(&c->tx, 0);
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_TX);
	assert_int_equal(c->broken, 1);
	vsock_dev_stats(c->d, &st);
	assert_true(st.broken);
	assert_int_equal(st.connections, 0);
	assert_true(peer_eof(c->peer[0]));
	/* It stays silent: no work, no second report. */
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_TX);
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_RX);
	assert_int_equal(c->broken, 1);
	(void)h;
}

static void
test_tiny_rx_buffer_breaks_device(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h = ghdr(1000, VSOCK_OP_REQUEST, 0);

	fq_desc(&c->rx, 0, fx_gpa(RXBUF(0)), 20, FX_F_WRITE, 0);
	fq_avail(&c->rx, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(c->broken, 1);
	assert_true(vhost_vq_broken(c->rx.vq));
}

static void
test_rst_queue_bounded(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[8];
	int n = 0;

	/* 100 refusals while the guest posts no buffers: 64 are kept. */
	for (uint32_t i = 0; i < 100; i++) {
		h = ghdr(2000 + i, VSOCK_OP_REQUEST, 0);
		h.dst_port = 1;
		tx_send(c, &h, NULL, 0);
	}
	rx_post(c, QNUM);
	while (rx_take(c, &r, b, sizeof(b)) == 0) {
		assert_int_equal(r.op, VSOCK_OP_RST);
		assert_int_equal(r.dst_port, 2000 + (uint32_t)n);
		n++;
	}
	assert_int_equal(n, 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config_space, setup,
		    teardown),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test_setup_teardown(test_connect_and_echo, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_port_rst, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_wrong_dst_cid, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_spoofed_cid_dropped, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lying_len, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_host_credit, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_credit_request, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_guest_credit_overrun,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_buffered_then_flushed,
		    setup_small, teardown),
		cmocka_unit_test_setup_teardown(test_guest_shutdown, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_host_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rw_before_response, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_op_and_type, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reset_drops_all, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_hostile_queue_breaks_device,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_tiny_rx_buffer_breaks_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rst_queue_bounded, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
