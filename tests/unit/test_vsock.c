/*
 * test_vsock.c: the virtio-vsock device against a fake guest driver and a
 * fake host service.
 *
 * The test plays the guest (it writes packets into the transmit queue and
 * posts receive buffers, in its own "guest memory") and the host service:
 * an in-memory one per connection, whose input buffer has a room the test
 * sets (to be "full") and whose output buffer the test fills. The service
 * checks the device's side of the contract on every call: no call inside
 * another, none after ops.gone or vsock_conn_close(), lengths that add up.
 *
 * Covered: the connection handshake, RST for wrong ports and strays,
 * credit accounting both ways, lying lengths and spoofed CIDs, shutdown in
 * both directions, device reset, a hostile queue breaking only the device;
 * and the service's side: input held back while it is full and delivered
 * in order after a wake, output read straight into the guest's buffers
 * within credit and packet size, closing (also from inside a callback),
 * wakes from inside a callback, ops.gone exactly once, and a service that
 * lies about its lengths.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto.h"
#include "vhost.h"
#include "vq_fixture.h"
#include "vsock.h"

#define GUEST_CID	3
#define PORT		7390
#define QNUM		64
#define RX_BUF		4096
#define RXBUF(h)	(FX_DATA + (size_t)(h) * 0x2000)
/* Indirect descriptor tables, one per head. */
#define RXIND(h)	(0xc0000 + (size_t)(h) * 0x100)
#define TXBUF(s)	(0x100000 + (size_t)(s) * 0x20000)
#define TX_SLOTS	16
#define BIGBUF		0x300000	/* 1 MiB for odd receive chains */
#define MAX_SVC		16
#define SVC_IN		(256 * 1024)
#define SVC_OUT		(256 * 1024)

struct vctx;

/* The host service's end of one guest connection. */
struct svc {
	struct vctx		*c;
	struct vsock_conn	*vc;
	uint32_t		 gport;
	bool			 closed;	/* it called vsock_conn_close */
	int			 gone;		/* ops.gone calls */
	int			 eofs;		/* ops.eof calls */
	int			 writes;
	int			 reads;
	/* Guest to host: what it took, and how much it may hold. */
	uint8_t			 in[SVC_IN];
	size_t			 in_len;
	size_t			 in_cap;
	size_t			 write_len;	/* the last write's len */
	size_t			 write_niov;
	/* Host to guest: what the test queued, and how far read got. */
	uint8_t			 out[SVC_OUT];
	size_t			 out_len;
	size_t			 out_off;
	bool			 out_eof;	/* then read says 0 (EOF) */
	size_t			 read_len;	/* the last read's len */
	size_t			 read_niov;
	struct iovec		 read_iov[2];	/* its first pieces */
	/* Behaviour the tests switch on. */
	bool			 echo;		/* write echoes what it took */
	bool			 wake_in_write;
	bool			 close_in_read;	/* after handing bytes over */
	bool			 write_over;	/* write claims len + 1 */
	bool			 read_over;	/* read claims len + 1 */
	bool			 close_in_write; /* after taking bytes */
	/* Output that turns up during a read that had none (then a wake). */
	uint8_t			 later[64];
	size_t			 later_len;
	struct svc		*wake_on_gone;	/* woken from inside gone */
	ssize_t			 write_err;	/* != 0: write returns it */
	ssize_t			 read_err;	/* != 0: read returns it */
};

struct vctx {
	struct fx		 fx;
	struct fq		 rx;
	struct fq		 tx;
	struct vsock_dev	*d;
	struct vsock_dev_ops	 ops;
	struct svc		*svc[MAX_SVC];	/* in connect order */
	int			 nsvc;
	int			 connects;
	bool			 refuse;	/* connect says no */
	size_t			 in_cap;	/* room of services made next */
	int			 depth;		/* calls into the service now */
	int			 max_depth;
	int			 broken;
	uint16_t		 rx_posted;
	size_t			 rxaddr[QNUM];	/* buffer of each head */
	uint32_t		 tx_slot;
	uint32_t		 buf_alloc;	/* the device's, announced */
};

/* ---- Byte helpers -------------------------------------------------------- */

/* A stream of bytes that does not repeat every 256, so order shows. */
static uint8_t
pat(size_t i)
{
	return (uint8_t)((i % 251) ^ (i / 251));
}

static void
pat_fill(uint8_t *buf, size_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat(off + i);
}

/* Copies n bytes between buf and the front of iov, all of them. */
static void
iov_copy(const struct iovec *iov, size_t niov, uint8_t *buf, size_t n,
    bool into_iov)
{
	assert_int_equal(into_iov ? ph_io_iov_write(iov, niov, 0, buf, n) :
	    ph_io_iov_read(iov, niov, 0, buf, n), n);
}

/* ---- The host service ---------------------------------------------------- */

/* Every call into the service passes here: none may run inside another. */
static void
svc_enter(struct vctx *c)
{
	c->depth++;
	if (c->depth > c->max_depth)
		c->max_depth = c->depth;
}

static void
svc_leave(struct vctx *c)
{
	c->depth--;
}

/* A call for an end the device must have forgotten fails the test. */
static void
svc_live(const struct svc *s)
{
	assert_false(s->closed);
	assert_int_equal(s->gone, 0);
}

static int
t_connect(void *arg, uint32_t guest_port, struct vsock_conn *vc, void **end)
{
	struct vctx *c = arg;
	struct svc *s;

	svc_enter(c);
	c->connects++;
	assert_non_null(vc);
	if (c->refuse || c->nsvc == MAX_SVC) {
		svc_leave(c);
		return -ECONNREFUSED;
	}
	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->c = c;
	s->vc = vc;
	s->gport = guest_port;
	s->in_cap = c->in_cap;
	c->svc[c->nsvc++] = s;
	*end = s;
	svc_leave(c);
	return 0;
}

/* Takes what fits in the input buffer; the switches make it misbehave. */
static ssize_t
t_write(void *end, const struct iovec *iov, size_t niov, size_t len)
{
	struct svc *s = end;
	size_t n;

	svc_enter(s->c);
	svc_live(s);
	s->writes++;
	assert_true(len > 0);
	assert_int_equal(ph_io_iov_len(iov, niov), len);
	s->write_len = len;
	s->write_niov = niov;
	n = s->in_cap - s->in_len < len ? s->in_cap - s->in_len : len;
	iov_copy(iov, niov, s->in + s->in_len, n, false);
	if (s->echo) {
		assert_true(n <= SVC_OUT - s->out_len);
		memcpy(s->out + s->out_len, s->in + s->in_len, n);
		s->out_len += n;
	}
	s->in_len += n;
	if (s->wake_in_write)
		vsock_conn_wake(s->vc);
	if (s->close_in_write && n > 0) {
		s->closed = true;
		vsock_conn_close(s->vc);
	}
	svc_leave(s->c);
	if (s->write_over)
		return (ssize_t)len + 1;
	if (s->write_err != 0)
		return s->write_err;
	return (ssize_t)n;
}

/* Copies queued output into the guest's buffer, as far as len allows. */
static ssize_t
t_read(void *end, const struct iovec *iov, size_t niov, size_t len)
{
	struct svc *s = end;
	size_t avail = s->out_len - s->out_off, n;
	ssize_t r;

	svc_enter(s->c);
	svc_live(s);
	s->reads++;
	assert_true(len > 0);
	assert_true(ph_io_iov_len(iov, niov) >= len);
	s->read_len = len;
	s->read_niov = niov;
	memset(s->read_iov, 0, sizeof(s->read_iov));
	memcpy(s->read_iov, iov, (niov < 2 ? niov : 2) * sizeof(*iov));
	if (s->read_err != 0)
		r = s->read_err;
	else if (avail == 0 && s->later_len > 0) {
		/* Output arrives while it says there is none: it wakes. */
		memcpy(s->out + s->out_len, s->later, s->later_len);
		s->out_len += s->later_len;
		s->later_len = 0;
		vsock_conn_wake(s->vc);
		r = -EAGAIN;
	} else if (avail == 0)
		r = s->out_eof ? 0 : -EAGAIN;
	else {
		n = avail < len ? avail : len;
		iov_copy(iov, niov, s->out + s->out_off, n, true);
		s->out_off += n;
		r = (ssize_t)n;
	}
	if (s->close_in_read && r > 0) {
		s->closed = true;
		vsock_conn_close(s->vc);
	}
	if (s->read_over)
		r = (ssize_t)len + 1;
	svc_leave(s->c);
	return r;
}

static void
t_eof(void *end)
{
	struct svc *s = end;

	svc_enter(s->c);
	svc_live(s);
	s->eofs++;
	svc_leave(s->c);
}

static void
t_gone(void *end)
{
	struct svc *s = end;

	svc_enter(s->c);
	svc_live(s);
	s->gone++;
	if (s->wake_on_gone != NULL && !s->wake_on_gone->closed &&
	    s->wake_on_gone->gone == 0)
		vsock_conn_wake(s->wake_on_gone->vc);
	svc_leave(s->c);
}

static void
t_broken(void *arg, const char *why)
{
	struct vctx *c = arg;

	assert_non_null(why);
	c->broken++;
}

/* The service has n more bytes for the guest. */
static void
svc_send(struct svc *s, const void *data, size_t n)
{
	assert_true(n <= SVC_OUT - s->out_len);
	memcpy(s->out + s->out_len, data, n);
	s->out_len += n;
	vsock_conn_wake(s->vc);
}

/* The service will send nothing more after what it queued. */
static void
svc_finish(struct svc *s)
{
	s->out_eof = true;
	vsock_conn_wake(s->vc);
}

/* The service makes room for cap bytes of input in all. */
static void
svc_room(struct svc *s, size_t cap)
{
	s->in_cap = cap;
	vsock_conn_wake(s->vc);
}

static void
svc_close(struct svc *s)
{
	s->closed = true;
	vsock_conn_close(s->vc);
}

/* ---- The guest's side ---------------------------------------------------- */

/* Posts n receive buffers of a header plus RX_BUF bytes, then kicks. */
static void
rx_post(struct vctx *c, int n)
{
	for (int i = 0; i < n; i++) {
		uint16_t h = c->rx_posted++ % QNUM;

		fq_desc(&c->rx, h, fx_gpa(RXBUF(h)), VSOCK_HDR_LEN + RX_BUF,
		    FX_F_WRITE, 0);
		fq_avail(&c->rx, h);
		c->rxaddr[h] = RXBUF(h);
	}
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_RX);
}

/*
 * Posts one receive chain of n pieces of lens[i] bytes, back to back from
 * guest offset off (through an indirect table, so it takes one ring
 * entry), then kicks.
 */
static void
rx_post_chain(struct vctx *c, size_t off, const uint32_t *lens, int n)
{
	uint16_t h = c->rx_posted++ % QNUM;
	size_t p = off;

	for (int i = 0; i < n; i++) {
		fx_desc_at(&c->fx, RXIND(h), (uint32_t)i, fx_gpa(p), lens[i],
		    FX_F_WRITE | (i + 1 < n ? FX_F_NEXT : 0),
		    (uint16_t)(i + 1));
		p += lens[i];
	}
	fq_desc(&c->rx, h, fx_gpa(RXIND(h)), 16 * (uint32_t)n, FX_F_INDIRECT,
	    0);
	fq_avail(&c->rx, h);
	c->rxaddr[h] = off;
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_RX);
}

/* Takes the next packet the device sent; its payload length or -1. */
static int
rx_take(struct vctx *c, struct vsock_hdr *h, void *payload, size_t cap)
{
	uint32_t id, len;

	if (!fq_used(&c->rx, &id, &len))
		return -1;
	assert_true(id < QNUM);
	assert_true(len >= VSOCK_HDR_LEN);
	vsock_hdr_decode(c->fx.mem + c->rxaddr[id], h);
	assert_int_equal(h->len, len - VSOCK_HDR_LEN);
	assert_true(h->len <= cap);
	memcpy(payload, c->fx.mem + c->rxaddr[id] + VSOCK_HDR_LEN, h->len);
	return (int)h->len;
}

/* Takes the next packet and expects it to be op with no payload. */
static void
rx_expect(struct vctx *c, uint16_t op, uint32_t gport)
{
	struct vsock_hdr r;
	char b[8];

	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, op);
	assert_int_equal(r.dst_port, gport);
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

/* Sends n bytes of the pattern stream from off as one RW packet. */
static void
tx_pat(struct vctx *c, uint32_t gport, size_t off, size_t n)
{
	static uint8_t data[VSOCK_MAX_PKT];
	struct vsock_hdr h = ghdr(gport, VSOCK_OP_RW, (uint32_t)n);

	assert_true(n <= sizeof(data));
	pat_fill(data, off, n);
	tx_send(c, &h, data, n);
}

/* Connects guest port gport; expects RESPONSE. Returns its service. */
static struct svc *
g_connect(struct vctx *c, uint32_t gport, uint32_t buf_alloc)
{
	struct vsock_hdr h = ghdr(gport, VSOCK_OP_REQUEST, 0), r;
	char b[8];
	int before = c->nsvc;

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
	assert_int_equal(c->nsvc, before + 1);
	assert_int_equal(c->svc[before]->gport, gport);
	return c->svc[before];
}

/*
 * The driver resets the device: the front-end stops both data queues and
 * starts them again, set up afresh.
 */
static void
dev_reset(struct vctx *c)
{
	const struct vhost_user_device *v = vsock_dev_vhost();

	v->stop(c->d, VSOCK_QUEUE_RX);
	v->stop(c->d, VSOCK_QUEUE_TX);
	v->start(c->d, VSOCK_QUEUE_RX, c->rx.vq);
	v->start(c->d, VSOCK_QUEUE_TX, c->tx.vq);
}

/* ---- Fixture ------------------------------------------------------------- */

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
	c->ops.connect = t_connect;
	c->ops.write = t_write;
	c->ops.read = t_read;
	c->ops.eof = t_eof;
	c->ops.gone = t_gone;
	c->ops.broken = t_broken;
	c->in_cap = SVC_IN;
	memset(&cfg, 0, sizeof(cfg));
	cfg.guest_cid = GUEST_CID;
	cfg.port = PORT;
	cfg.buf_alloc = buf_alloc;
	c->buf_alloc = buf_alloc != 0 ? buf_alloc : 64 * 1024;
	assert_int_equal(vsock_dev_new(&cfg, &c->ops, c, &c->d), 0);
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

/*
 * Frees the device, then checks what must hold after any test: every end
 * the service did not close heard ops.gone exactly once, and no call into
 * the service ever ran inside another.
 */
static int
teardown(void **state)
{
	struct vctx *c = *state;

	vsock_dev_free(c->d);
	assert_int_equal(c->depth, 0);
	assert_true(c->max_depth <= 1);
	for (int i = 0; i < c->nsvc; i++) {
		assert_int_equal(c->svc[i]->gone, c->svc[i]->closed ? 0 : 1);
		free(c->svc[i]);
	}
	fq_free(&c->rx);
	fq_free(&c->tx);
	fx_free(&c->fx);
	free(c);
	return 0;
}

/* ---- Tests --------------------------------------------------------------- */

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
	struct vsock_dev_ops ops = {
		.connect = t_connect,
		.write = t_write,
		.read = t_read,
		.eof = t_eof,
		.gone = t_gone,
	};
	struct vsock_dev *d;

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.port = PORT;
	cfg.guest_cid = 2;
	d = (struct vsock_dev *)(uintptr_t)1;	/* set on entry */
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &d), -EINVAL);
	assert_null(d);
	cfg.guest_cid = 0xffffffffull;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &d), -EINVAL);
	cfg.guest_cid = 3;
	cfg.buf_alloc = 100;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &d), -EINVAL);
	cfg.buf_alloc = 16 * 1024 * 1024 + 1;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &d), -EINVAL);
	assert_null(d);
	/* The edges themselves are fine; broken may be NULL. */
	cfg.guest_cid = 0xfffffffeull;
	cfg.buf_alloc = 16 * 1024 * 1024;
	assert_int_equal(vsock_dev_new(&cfg, &ops, NULL, &d), 0);
	assert_non_null(d);
	vsock_dev_free(d);
	vsock_dev_free(NULL);
}

static void
test_connect_and_echo(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct vsock_dev_stats st;
	struct svc *s;
	char buf[RX_BUF];

	rx_post(c, 8);
	s = g_connect(c, 1000, 256 * 1024);
	assert_int_equal(c->connects, 1);
	/* Guest to host: the bytes reach the service. */
	h = ghdr(1000, VSOCK_OP_RW, 5);
	tx_send(c, &h, "hello", 5);
	assert_int_equal(s->in_len, 5);
	assert_memory_equal(s->in, "hello", 5);
	/* Host to guest: straight into the posted buffer. */
	svc_send(s, "world!", 6);
	assert_int_equal(rx_take(c, &r, buf, sizeof(buf)), 6);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_int_equal(r.dst_port, 1000);
	assert_memory_equal(buf, "world!", 6);
	assert_int_equal(r.fwd_cnt, 5);	/* it passed our 5 bytes on */
	assert_int_equal(rx_take(c, &r, buf, sizeof(buf)), -1);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.to_guest, 6);
	assert_int_equal(st.from_guest, 5);
	assert_true(st.running);
	assert_false(st.broken);
	assert_int_equal(s->gone, 0);
	assert_int_equal(s->eofs, 0);
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
test_service_refuses(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h = ghdr(1000, VSOCK_OP_REQUEST, 0);
	struct vsock_dev_stats st;

	rx_post(c, 4);
	c->refuse = true;
	tx_send(c, &h, NULL, 0);
	rx_expect(c, VSOCK_OP_RST, 1000);
	assert_int_equal(c->connects, 1);
	assert_int_equal(c->nsvc, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.accepted, 0);
	assert_int_equal(st.connections, 0);
	/* The next one is welcome. */
	c->refuse = false;
	(void)g_connect(c, 1000, 65536);
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
	struct svc *s;
	char b[8];

	rx_post(c, 4);
	h.src_cid = 4;		/* pretends to be another guest */
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	assert_int_equal(c->connects, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.dropped, 1);
	/* Nor can it speak for a connection of its own. */
	s = g_connect(c, 1002, 65536);
	h = ghdr(1002, VSOCK_OP_RW, 3);
	h.src_cid = 4;
	tx_send(c, &h, "abc", 3);
	assert_int_equal(s->writes, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.connections, 1);
}

static void
test_lying_len(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct vsock_dev_stats st;
	struct svc *s;
	char b[64];

	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	/* Says 1000 bytes, carries 10. */
	h = ghdr(1000, VSOCK_OP_RW, 1000);
	tx_send(c, &h, "0123456789", 10);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(s->writes, 0);
	assert_int_equal(s->gone, 1);
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
	static uint8_t big[20000], got[RX_BUF], all[20000];
	struct svc *s;
	uint32_t total = 0;
	int n;

	rx_post(c, 32);
	/* The guest can take 1000 bytes now. */
	s = g_connect(c, 1000, 1000);
	pat_fill(big, 0, sizeof(big));
	svc_send(s, big, sizeof(big));
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		memcpy(all + total, got, (size_t)n);
		total += (uint32_t)n;
	}
	assert_int_equal(total, 1000);
	/* The guest read 600 of them: 600 more may come, no more. */
	h = ghdr(1000, VSOCK_OP_CREDIT_UPDATE, 0);
	h.buf_alloc = 1000;
	h.fwd_cnt = 600;
	tx_send(c, &h, NULL, 0);
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0) {
		memcpy(all + total, got, (size_t)n);
		total += (uint32_t)n;
	}
	assert_int_equal(total, 1600);
	/* A bigger buffer: the rest comes, in packets that fit the buffers. */
	h.buf_alloc = 1 << 20;
	tx_send(c, &h, NULL, 0);
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0) {
		assert_true(n <= RX_BUF);
		assert_true(total + (uint32_t)n <= sizeof(all));
		memcpy(all + total, got, (size_t)n);
		total += (uint32_t)n;
	}
	assert_int_equal(total, sizeof(big));
	assert_memory_equal(all, big, sizeof(big));
}

static void
test_credit_request(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[64];

	rx_post(c, 8);
	(void)g_connect(c, 1000, 65536);
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
	struct vsock_dev_stats st;
	struct svc *s;
	char b[64];

	/* The device offers 4 KiB and its service takes nothing. */
	c->in_cap = 0;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	tx_pat(c, 1000, 0, 4096);	/* exactly the credit: kept */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	assert_int_equal(s->writes, 1);
	h = ghdr(1000, VSOCK_OP_RW, 1);
	tx_send(c, &h, "!", 1);		/* one byte too many */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(s->gone, 1);
	/* The extra byte never went on. */
	assert_int_equal(s->writes, 1);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.resets, 1);
	assert_int_equal(st.from_guest, 0);
}

static void
test_buffered_then_flushed(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	static uint8_t want[4096];
	struct svc *s;
	char b[64];

	c->in_cap = 0;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	tx_pat(c, 1000, 0, 4096);
	assert_int_equal(s->in_len, 0);
	/* The service makes room: the buffer drains. */
	svc_room(s, SVC_IN);
	assert_int_equal(s->in_len, 4096);
	pat_fill(want, 0, sizeof(want));
	assert_memory_equal(s->in, want, sizeof(want));
	/* Half the window passed on: the guest hears its new credit. */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 4096);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
}

/*
 * A service that fills up: the device holds back up to buf_alloc bytes
 * (wrapping its ring), offers nothing newer before the older bytes, and
 * delivers them in order once woken, then tells the guest its credit.
 */
static void
test_service_full_then_wake(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	static uint8_t want[5596];
	struct vsock_dev_stats st;
	struct svc *s;
	char b[64];
	int writes;

	c->in_cap = 1000;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	tx_pat(c, 1000, 0, 3000);
	assert_int_equal(s->writes, 1);
	assert_int_equal(s->write_len, 3000);
	assert_int_equal(s->in_len, 1000);
	/* 1000 passed on is less than half the buffer: no news yet. */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/* A little room: the held bytes are offered, 500 go. */
	svc_room(s, 1500);
	assert_true(s->writes >= 2);
	assert_int_equal(s->in_len, 1500);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/*
	 * The guest uses the rest of its credit (4096 - 1500 in flight): all
	 * of it is held, behind the older bytes, not offered before them.
	 */
	writes = s->writes;
	tx_pat(c, 1000, 3000, 2596);
	assert_int_equal(s->writes, writes);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.resets, 0);
	/* Room for all: the full ring comes in two pieces, in order. */
	svc_room(s, SVC_IN);
	assert_int_equal(s->writes, writes + 1);
	assert_int_equal(s->write_len, 4096);
	assert_int_equal(s->write_niov, 2);
	assert_int_equal(s->in_len, sizeof(want));
	pat_fill(want, 0, sizeof(want));
	assert_memory_equal(s->in, want, sizeof(want));
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.dst_port, 1000);
	assert_int_equal(r.fwd_cnt, 5596);
	assert_int_equal(r.buf_alloc, 4096);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.from_guest, 5596);
	/* A wake with nothing held offers nothing. */
	vsock_conn_wake(s->vc);
	assert_int_equal(s->writes, writes + 1);
}

static void
test_guest_shutdown(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct svc *s0, *s1;
	char b[64];

	rx_post(c, 8);
	s0 = g_connect(c, 1000, 65536);
	s1 = g_connect(c, 1001, 65536);
	/* Half-close: the service hears EOF, the connection stays. */
	h = ghdr(1000, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(s0->eofs, 1);
	assert_int_equal(s0->gone, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	svc_send(s0, "late", 4);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 4);
	assert_memory_equal(b, "late", 4);
	/* Data after its own SHUTDOWN is a protocol error. */
	h = ghdr(1001, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(s1->eofs, 1);
	h = ghdr(1001, VSOCK_OP_RW, 2);
	tx_send(c, &h, "no", 2);
	rx_expect(c, VSOCK_OP_RST, 1001);
	assert_int_equal(s1->writes, 0);
	assert_int_equal(s1->gone, 1);
	/* Both ways: RST, and the device lets go of the service. */
	h = ghdr(1000, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.dst_port, 1000);
	assert_int_equal(s0->eofs, 1);	/* once */
	assert_int_equal(s0->gone, 1);
}

/* ops.eof waits until the service has taken every byte the guest sent. */
static void
test_eof_after_held_bytes(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct svc *s;
	char b[64];

	c->in_cap = 0;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	tx_pat(c, 1000, 0, 100);
	h = ghdr(1000, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(s->eofs, 0);
	svc_room(s, 60);
	assert_int_equal(s->in_len, 60);
	assert_int_equal(s->eofs, 0);
	svc_room(s, SVC_IN);
	assert_int_equal(s->in_len, 100);
	assert_int_equal(s->eofs, 1);
	vsock_conn_wake(s->vc);
	assert_int_equal(s->eofs, 1);
	/* The other direction still works. */
	svc_send(s, "ok", 2);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 2);
	assert_int_equal(r.op, VSOCK_OP_RW);
}

static void
test_host_close(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	struct svc *s;
	char b[64];

	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	svc_send(s, "bye", 3);
	svc_finish(s);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 3);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_memory_equal(b, "bye", 3);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/* The end stays until the guest answers: it may still send. */
	tx_pat(c, 1000, 0, 10);
	assert_int_equal(s->in_len, 10);
	assert_int_equal(s->gone, 0);
}

/*
 * vsock_conn_close(): what the service held back is dropped (but
 * credited), the guest gets SHUTDOWN, and the end hears nothing more.
 */
static void
test_service_close_drops_held(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct vsock_dev_stats st;
	struct svc *s;
	char b[64];
	int reads;

	c->in_cap = 0;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	reads = s->reads;
	s->out_len = 100;	/* output it never hands over */
	tx_pat(c, 1000, 0, 3000);
	assert_int_equal(s->writes, 1);
	svc_close(s);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
	assert_int_equal(r.fwd_cnt, 3000);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/* The guest may use all its credit again: dropped, credited. */
	tx_pat(c, 1000, 3000, 4096);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 7096);
	h = ghdr(1000, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	tx_send(c, &h, NULL, 0);
	h = ghdr(1000, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	assert_int_equal(s->writes, 1);
	assert_int_equal(s->reads, reads);
	assert_int_equal(s->eofs, 0);
	assert_int_equal(s->gone, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 0);
	assert_int_equal(st.from_guest, 0);
	assert_int_equal(st.resets, 0);
}

/* The service closes before the guest heard RESPONSE: both, in order. */
static void
test_close_before_response(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h = ghdr(1000, VSOCK_OP_REQUEST, 0);
	struct svc *s;

	tx_send(c, &h, NULL, 0);
	assert_int_equal(c->nsvc, 1);
	s = c->svc[0];
	svc_close(s);
	rx_post(c, 4);
	rx_expect(c, VSOCK_OP_RESPONSE, 1000);
	rx_expect(c, VSOCK_OP_SHUTDOWN, 1000);
	assert_int_equal(s->reads, 0);
}

/*
 * The service's read gets the guest's receive buffer itself: its pieces,
 * right after the header, as much as the guest's credit allows and no
 * more, and nothing at all while the credit is used up.
 */
static void
test_read_into_guest_buffer(void **state)
{
	struct vctx *c = *state;
	/* The header spans two pieces; the payload starts in the second. */
	const uint32_t lens[3] = { 20, 1024, 3052 };
	static uint8_t data[3000], want[1500];
	struct vsock_hdr h, r;
	struct svc *s;
	char b[RX_BUF];
	int reads;

	rx_post(c, 1);		/* for RESPONSE */
	s = g_connect(c, 1000, 1500);
	rx_post_chain(c, BIGBUF, lens, 3);
	pat_fill(data, 0, sizeof(data));
	svc_send(s, data, sizeof(data));
	assert_int_equal(s->read_len, 1500);
	assert_int_equal(s->read_niov, 2);
	assert_ptr_equal(s->read_iov[0].iov_base,
	    c->fx.mem + BIGBUF + VSOCK_HDR_LEN);
	assert_int_equal(s->read_iov[0].iov_len, 1000);
	assert_ptr_equal(s->read_iov[1].iov_base, c->fx.mem + BIGBUF + 1044);
	assert_int_equal(s->read_iov[1].iov_len, 500);
	/* The packet is where the service wrote it. */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 1500);
	assert_int_equal(r.op, VSOCK_OP_RW);
	pat_fill(want, 0, sizeof(want));
	assert_memory_equal(c->fx.mem + BIGBUF + VSOCK_HDR_LEN, want,
	    sizeof(want));
	/* Credit used up: buffers and wakes do not make it ask. */
	reads = s->reads;
	rx_post(c, 4);
	vsock_conn_wake(s->vc);
	assert_int_equal(s->reads, reads);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/* The guest read 200: exactly 200 more are asked for. */
	h = ghdr(1000, VSOCK_OP_CREDIT_UPDATE, 0);
	h.buf_alloc = 1500;
	h.fwd_cnt = 200;
	tx_send(c, &h, NULL, 0);
	assert_int_equal(s->reads, reads + 1);
	assert_int_equal(s->read_len, 200);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 200);
	pat_fill(want, 1500, 200);
	assert_memory_equal(b, want, 200);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
}

/* However big the guest's buffer and credit, one packet is 64 KiB. */
static void
test_read_bounded_by_max_pkt(void **state)
{
	struct vctx *c = *state;
	const uint32_t lens[1] = { VSOCK_HDR_LEN + 100000 };
	static uint8_t data[100000], got[VSOCK_MAX_PKT];
	struct vsock_hdr r;
	struct vsock_dev_stats st;
	struct svc *s;
	size_t total;
	int n;

	rx_post(c, 1);
	s = g_connect(c, 1000, 1u << 20);
	rx_post_chain(c, BIGBUF, lens, 1);
	pat_fill(data, 0, sizeof(data));
	svc_send(s, data, sizeof(data));
	assert_int_equal(s->read_len, VSOCK_MAX_PKT);
	assert_int_equal(s->read_niov, 1);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), VSOCK_MAX_PKT);
	assert_memory_equal(got, data, VSOCK_MAX_PKT);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), -1);
	/* The rest, into ordinary buffers. */
	total = VSOCK_MAX_PKT;
	rx_post(c, 16);
	while ((n = rx_take(c, &r, got, sizeof(got))) >= 0) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		assert_true(n <= RX_BUF);
		assert_memory_equal(got, data + total, (size_t)n);
		total += (size_t)n;
	}
	assert_int_equal(total, sizeof(data));
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.to_guest, sizeof(data));
}

/*
 * The service closes from inside read, after handing bytes over: the
 * guest gets them (one read fills several receive buffers), then
 * SHUTDOWN, and the end hears nothing more.
 */
static void
test_close_inside_read(void **state)
{
	struct vctx *c = *state;
	static uint8_t data[10000], got[RX_BUF];
	struct vsock_hdr h, r;
	struct vsock_dev_stats st;
	struct svc *s;
	size_t total = 0;
	int reads, n;

	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	reads = s->reads;
	s->close_in_read = true;
	pat_fill(data, 0, sizeof(data));
	svc_send(s, data, sizeof(data));
	while ((n = rx_take(c, &r, got, sizeof(got))) > 0) {
		assert_int_equal(r.op, VSOCK_OP_RW);
		assert_memory_equal(got, data + total, (size_t)n);
		total += (size_t)n;
	}
	assert_int_equal(total, sizeof(data));
	assert_int_equal(n, 0);
	assert_int_equal(r.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(r.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), -1);
	/* What it did not hand over is not asked for. */
	assert_int_equal(s->reads, reads + 1);
	/* Nothing of the guest's reaches it any more. */
	tx_pat(c, 1000, 0, 50);
	h = ghdr(1000, VSOCK_OP_CREDIT_REQUEST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), 0);
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 50);
	h = ghdr(1000, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	tx_send(c, &h, NULL, 0);
	h = ghdr(1000, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(s->writes, 0);
	assert_int_equal(s->eofs, 0);
	assert_int_equal(s->gone, 0);
	assert_int_equal(s->reads, reads + 1);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 0);
	assert_int_equal(st.to_guest, sizeof(data));
}

/*
 * An echo service wakes its connection from inside write: the wake waits
 * until write returned (no call inside another), then the reply goes out.
 */
static void
test_wake_inside_write(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct svc *s;
	char b[64];

	c->in_cap = 6;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	s->echo = true;
	s->wake_in_write = true;
	h = ghdr(1000, VSOCK_OP_RW, 4);
	tx_send(c, &h, "ping", 4);
	assert_int_equal(s->writes, 1);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 4);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_memory_equal(b, "ping", 4);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/* Held back, flushed after an outside wake, waking again inside. */
	h = ghdr(1000, VSOCK_OP_RW, 6);
	tx_send(c, &h, "abcdef", 6);
	assert_int_equal(s->in_len, 6);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 2);
	assert_memory_equal(b, "ab", 2);
	s->in_cap = SVC_IN;
	vsock_conn_wake(s->vc);
	assert_int_equal(s->in_len, 10);
	assert_memory_equal(s->in, "pingabcdef", 10);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 4);
	assert_memory_equal(b, "cdef", 4);
	assert_int_equal(c->max_depth, 1);
	assert_int_equal(c->depth, 0);
}

/*
 * A service that wakes from inside write but never takes a byte: the
 * device gives up after a few rounds and comes back through a kick, so
 * one wakeup's work stays bounded; the bytes arrive once there is room.
 */
static void
test_wake_storm_bounded(void **state)
{
	struct vctx *c = *state;
	struct svc *s;

	c->in_cap = 0;
	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	s->wake_in_write = true;
	(void)fx_eventfd_take(c->rx.kick_fd);
	tx_pat(c, 1000, 0, 10);
	assert_true(s->writes >= 2);		/* the wake was acted on */
	assert_true(s->writes <= 17);		/* but not forever */
	assert_int_equal(s->in_len, 0);
	assert_true(fx_eventfd_take(c->rx.kick_fd) > 0);
	assert_int_equal(c->max_depth, 1);
	/* Room, and the kick it asked for: the bytes go. */
	s->wake_in_write = false;
	s->in_cap = SVC_IN;
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_RX);
	assert_int_equal(s->in_len, 10);
}

/*
 * ops.gone comes exactly once for an end the device forgets, and never
 * for one the service closed itself.
 */
static void
test_gone_once(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	struct svc *a, *b, *e, *f;
	char buf[64];

	rx_post(c, 16);
	a = g_connect(c, 1000, 65536);
	b = g_connect(c, 1001, 65536);
	e = g_connect(c, 1002, 65536);
	f = g_connect(c, 1003, 65536);
	/* The guest resets a: gone once, silently; a second RST is a stray. */
	h = ghdr(1000, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(a->gone, 1);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(a->gone, 1);
	assert_int_equal(rx_take(c, &r, buf, sizeof(buf)), -1);
	/* b closes itself; the guest's RST then reaches nobody. */
	svc_close(b);
	rx_expect(c, VSOCK_OP_SHUTDOWN, 1001);
	h = ghdr(1001, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(b->gone, 0);
	/* e closes itself; a device reset forgets it without a word. */
	svc_close(e);
	rx_expect(c, VSOCK_OP_SHUTDOWN, 1002);
	dev_reset(c);
	assert_int_equal(e->gone, 0);
	assert_int_equal(f->gone, 1);
	assert_int_equal(a->gone, 1);
	assert_int_equal(b->gone, 0);
}

/* Freeing the device tells every open end, whatever state it is in. */
static void
test_free_calls_gone(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h;
	struct svc *a, *b, *e, *f, *g;

	/* Five RESPONSEs and e's SHUTDOWN: g's output finds no buffer. */
	rx_post(c, 6);
	a = g_connect(c, 1000, 65536);
	c->in_cap = 0;
	b = g_connect(c, 1001, 65536);
	tx_pat(c, 1001, 0, 3000);		/* b holds bytes back */
	e = g_connect(c, 1002, 65536);
	svc_close(e);
	rx_expect(c, VSOCK_OP_SHUTDOWN, 1002);
	f = g_connect(c, 1003, 65536);
	h = ghdr(1003, VSOCK_OP_RST, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(f->gone, 1);
	g = g_connect(c, 1004, 65536);
	svc_send(g, "unsent", 6);		/* output waits for buffers */
	assert_int_equal(a->gone + b->gone + e->gone + g->gone, 0);
	vsock_dev_free(c->d);
	c->d = NULL;
	assert_int_equal(a->gone, 1);
	assert_int_equal(b->gone, 1);
	assert_int_equal(e->gone, 0);
	assert_int_equal(f->gone, 1);
	assert_int_equal(g->gone, 1);
}

/*
 * A service that claims more than it was offered (write) or than there
 * was room for (read), or fails: that connection is reset, the others go
 * on, and the guest is not blamed.
 */
static void
test_service_lies(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	struct vsock_dev_stats st;
	struct svc *wo, *ro, *ok, *we, *re;
	char b[64];

	rx_post(c, 32);
	wo = g_connect(c, 1000, 65536);
	ro = g_connect(c, 1001, 65536);
	ok = g_connect(c, 1002, 65536);
	we = g_connect(c, 1003, 65536);
	re = g_connect(c, 1004, 65536);
	wo->write_over = true;
	ro->read_over = true;
	we->write_err = -EPIPE;
	re->read_err = -EIO;
	tx_pat(c, 1000, 0, 10);
	rx_expect(c, VSOCK_OP_RST, 1000);
	assert_int_equal(wo->gone, 1);
	svc_send(ro, "0123456789", 10);
	/* An RST, without what read wrote. */
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(r.dst_port, 1001);
	assert_int_equal(ro->gone, 1);
	tx_pat(c, 1003, 0, 10);
	rx_expect(c, VSOCK_OP_RST, 1003);
	assert_int_equal(we->gone, 1);
	vsock_conn_wake(re->vc);
	rx_expect(c, VSOCK_OP_RST, 1004);
	assert_int_equal(re->gone, 1);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), -1);
	/* The honest one is untouched. */
	tx_pat(c, 1002, 0, 10);
	assert_int_equal(ok->in_len, 10);
	svc_send(ok, "fine", 4);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 4);
	assert_int_equal(r.dst_port, 1002);
	assert_memory_equal(b, "fine", 4);
	assert_int_equal(ok->gone, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 1);
	assert_int_equal(st.resets, 0);
	assert_int_equal(st.from_guest, 10);
	assert_int_equal(st.to_guest, 4);
	assert_false(st.broken);
	assert_int_equal(c->broken, 0);
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
	assert_int_equal(c->nsvc, 1);
	assert_int_equal(c->svc[0]->writes, 0);
	assert_int_equal(c->svc[0]->gone, 1);
}

static void
test_unknown_op_and_type(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr h, r;
	char b[64];

	rx_post(c, 8);
	(void)g_connect(c, 1000, 65536);
	h = ghdr(1000, 99, 0);
	tx_send(c, &h, NULL, 0);
	assert_int_equal(rx_take(c, &r, b, sizeof(b)), 0);
	assert_int_equal(r.op, VSOCK_OP_RST);
	assert_int_equal(c->svc[0]->gone, 1);
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
	struct svc *s0, *s1;

	rx_post(c, 8);
	s0 = g_connect(c, 1000, 65536);
	s1 = g_connect(c, 1001, 65536);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 2);
	/* The driver resets the device: the front-end stops the rings. */
	vsock_dev_vhost()->stop(c->d, VSOCK_QUEUE_RX);
	vsock_dev_vhost()->stop(c->d, VSOCK_QUEUE_TX);
	vsock_dev_stats(c->d, &st);
	assert_false(st.running);
	/* It sets them up afresh: the old connections are gone. */
	vsock_dev_vhost()->start(c->d, VSOCK_QUEUE_RX, c->rx.vq);
	vsock_dev_vhost()->start(c->d, VSOCK_QUEUE_TX, c->tx.vq);
	vsock_dev_stats(c->d, &st);
	assert_true(st.running);
	assert_int_equal(st.connections, 0);
	assert_int_equal(s0->gone, 1);
	assert_int_equal(s1->gone, 1);
	/* And the device serves new ones. */
	(void)g_connect(c, 1002, 65536);
	assert_int_equal(c->connects, 3);
}

static void
test_hostile_queue_breaks_device(void **state)
{
	struct vctx *c = *state;
	struct vsock_dev_stats st;
	struct svc *s;

	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	/* A transmit chain that loops forever. */
	fq_desc(&c->tx, 0, fx_gpa(TXBUF(0)), 44, FX_F_NEXT, 1);
	fq_desc(&c->tx, 1, fx_gpa(TXBUF(0)), 44, FX_F_NEXT, 0);
	fq_avail(&c->tx, 0);
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_TX);
	assert_int_equal(c->broken, 1);
	vsock_dev_stats(c->d, &st);
	assert_true(st.broken);
	assert_int_equal(st.connections, 0);
	assert_int_equal(s->gone, 1);
	/* It stays silent: no work, no second report. */
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_TX);
	vsock_dev_vhost()->kick(c->d, VSOCK_QUEUE_RX);
	assert_int_equal(c->broken, 1);
	assert_int_equal(s->gone, 1);
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
	/* The connection it accepted is dropped with the device. */
	assert_int_equal(c->nsvc, 1);
	assert_int_equal(c->svc[0]->gone, 1);
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

/*
 * Output turns up while read is saying there is none, and the service
 * wakes its connection from inside that read: the wake is not lost.
 */
static void
test_wake_inside_read(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	uint8_t got[RX_BUF];
	struct svc *s;

	rx_post(c, 4);
	s = g_connect(c, 1000, 65536);
	memcpy(s->later, "late news", 9);
	s->later_len = 9;
	vsock_conn_wake(s->vc);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), 9);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_memory_equal(got, "late news", 9);
}

/*
 * A read shorter than the room is not the end of the story: a service
 * with its last bytes and EOF queued gets asked again, so the guest sees
 * the bytes and then SHUTDOWN from one wake.
 */
static void
test_short_read_then_eof(void **state)
{
	struct vctx *c = *state;
	struct vsock_hdr r;
	uint8_t got[RX_BUF];
	struct svc *s;

	rx_post(c, 4);
	s = g_connect(c, 1000, 65536);
	memcpy(s->out, "bye", 3);
	s->out_len = 3;
	svc_finish(s);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), 3);
	assert_int_equal(r.op, VSOCK_OP_RW);
	assert_memory_equal(got, "bye", 3);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), 0);
	assert_int_equal(r.op, VSOCK_OP_SHUTDOWN);
}

/*
 * A service that wakes another connection from inside ops.gone (a freed
 * slot handed on) while a reset and then the device's end drop them all:
 * no call runs inside another (the teardown checks the depth).
 */
static void
test_wake_from_gone(void **state)
{
	struct vctx *c = *state;
	struct svc *s0, *s1;

	rx_post(c, 8);
	s0 = g_connect(c, 1000, 65536);
	s1 = g_connect(c, 1001, 65536);
	s0->wake_on_gone = s1;
	memcpy(s1->out, "x", 1);
	s1->out_len = 1;
	dev_reset(c);
	assert_int_equal(s0->gone, 1);
	assert_int_equal(s1->gone, 1);
	assert_int_equal(c->max_depth, 1);
	s0 = g_connect(c, 1002, 65536);
	s1 = g_connect(c, 1003, 65536);
	s1->wake_on_gone = s0;
	s0->out_len = 0;
	/* The teardown frees the device with both open. */
}

/*
 * The service closes from inside the write that drains what the device
 * held back for it: the bytes it took count, the rest is dropped, and all
 * of it is credit to the guest, counted once.
 */
static void
test_close_inside_held_write(void **state)
{
	struct vctx *c = *state;
	struct vsock_dev_stats st;
	struct vsock_hdr h, r;
	uint8_t got[RX_BUF];
	struct svc *s;

	rx_post(c, 8);
	c->in_cap = 100;
	s = g_connect(c, 1000, 65536);
	tx_pat(c, 1000, 0, 1000);
	assert_int_equal(s->in_len, 100);	/* 900 held back */
	s->close_in_write = true;
	svc_room(s, 400);
	assert_true(s->closed);
	assert_int_equal(s->in_len, 400);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.from_guest, 400);
	/* More from the guest is dropped but credited, once. */
	tx_pat(c, 1000, 1000, 24);
	h = ghdr(1000, VSOCK_OP_CREDIT_REQUEST, 0);
	tx_send(c, &h, NULL, 0);
	while (rx_take(c, &r, got, sizeof(got)) >= 0 &&
	    r.op != VSOCK_OP_CREDIT_UPDATE)
		;
	assert_int_equal(r.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(r.fwd_cnt, 1024);
	assert_int_equal(s->writes, 2);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.from_guest, 400);
}

/*
 * The VM pauses: both rings stop and come back where they were. The
 * connection lives on and its transfer goes on; rings set up afresh
 * afterwards (a reset) drop it, with ops.gone once.
 */
static void
test_pause_keeps_connections(void **state)
{
	struct vctx *c = *state;
	const struct vhost_user_device *v = vsock_dev_vhost();
	struct vsock_dev_stats st;
	struct vsock_hdr r;
	uint8_t got[RX_BUF];
	struct svc *s;

	rx_post(c, 8);
	s = g_connect(c, 1000, 65536);
	v->stop(c->d, VSOCK_QUEUE_RX);
	v->stop(c->d, VSOCK_QUEUE_TX);
	/* Output produced during the pause waits for the rings. */
	svc_send(s, "held", 4);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), -1);
	assert_int_equal(fq_restart(&c->rx, true), 0);
	assert_int_equal(fq_restart(&c->tx, true), 0);
	v->start(c->d, VSOCK_QUEUE_RX, c->rx.vq);
	v->start(c->d, VSOCK_QUEUE_TX, c->tx.vq);
	assert_int_equal(rx_take(c, &r, got, sizeof(got)), 4);
	assert_memory_equal(got, "held", 4);
	tx_pat(c, 1000, 0, 10);
	assert_int_equal(s->in_len, 10);
	assert_int_equal(s->gone, 0);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 1);
	/* A reset: the same stop, then rings that do not resume. */
	v->stop(c->d, VSOCK_QUEUE_RX);
	v->stop(c->d, VSOCK_QUEUE_TX);
	assert_int_equal(s->gone, 0);
	assert_int_equal(fq_restart(&c->rx, false), 0);
	assert_int_equal(fq_restart(&c->tx, false), 0);
	v->start(c->d, VSOCK_QUEUE_RX, c->rx.vq);
	v->start(c->d, VSOCK_QUEUE_TX, c->tx.vq);
	assert_int_equal(s->gone, 1);
	vsock_dev_stats(c->d, &st);
	assert_int_equal(st.connections, 0);
}

#define T(f)		cmocka_unit_test_setup_teardown(f, setup, teardown)
#define T_SMALL(f)	cmocka_unit_test_setup_teardown(f, setup_small, \
			    teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_config_space),
		cmocka_unit_test(test_bad_config),
		T(test_connect_and_echo),
		T(test_wrong_port_rst),
		T(test_service_refuses),
		T(test_wrong_dst_cid),
		T(test_spoofed_cid_dropped),
		T(test_lying_len),
		T(test_host_credit),
		T(test_credit_request),
		T_SMALL(test_guest_credit_overrun),
		T_SMALL(test_buffered_then_flushed),
		T_SMALL(test_service_full_then_wake),
		T(test_guest_shutdown),
		T(test_eof_after_held_bytes),
		T(test_host_close),
		T_SMALL(test_service_close_drops_held),
		T(test_close_before_response),
		T(test_read_into_guest_buffer),
		T(test_read_bounded_by_max_pkt),
		T(test_close_inside_read),
		T(test_wake_inside_write),
		T(test_wake_storm_bounded),
		T(test_gone_once),
		T(test_free_calls_gone),
		T(test_service_lies),
		T(test_rw_before_response),
		T(test_unknown_op_and_type),
		T(test_reset_drops_all),
		T(test_hostile_queue_breaks_device),
		T(test_tiny_rx_buffer_breaks_device),
		T(test_rst_queue_bounded),
		T(test_wake_inside_read),
		T(test_short_read_then_eof),
		T(test_wake_from_gone),
		T(test_close_inside_held_write),
		T(test_pause_keeps_connections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
