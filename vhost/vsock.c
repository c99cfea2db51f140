/*
 * vsock.c: the virtio-vsock device: connection table, packets and credit.
 *
 * Flow control (virtio 1.x, 5.10.6.3): each side tells the other, in every
 * header, how big its receive buffer is (buf_alloc) and how many bytes it
 * has passed on so far (fwd_cnt). A sender may have at most buf_alloc -
 * (sent - fwd_cnt) bytes in flight. Towards the guest we never ask the
 * service for more than that; from the guest we keep what the service
 * cannot take yet in a buffer of exactly buf_alloc bytes, so a guest that
 * keeps to its credit never loses a byte, and one that does not is reset.
 *
 * The service's own calls (wake, close) may come from inside a callback;
 * they only mark the connection then, and the device acts on the marks
 * when its outermost piece of work ends (vsock_leave), so no callback ever
 * runs inside another.
 *
 * The receive queue is shared by all connections: connections with
 * something to send wait in a round-robin list, and each wakeup sends a
 * bounded number of packets before it lets the event loop run again.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/uio.h>

#include "vhost_impl.h"
#include "vsock.h"

/* Packets per queue per wakeup, so one busy guest cannot starve others. */
#define VSOCK_BUDGET		64
/* RST replies to packets without a connection, waiting for rx buffers. */
#define VSOCK_RST_QUEUE		64
#define VSOCK_DEF_BUF		(64u * 1024)
#define VSOCK_MIN_BUF		4096u
#define VSOCK_MAX_BUF		(16u * 1024 * 1024)

/* Receive chains one read of the service fills at most, and its pieces. */
#define VSOCK_RX_BATCH		16
#define VSOCK_RX_IOV		64
/* Rounds of deferred wakes one vsock_leave() serves before it yields. */
#define VSOCK_WAKE_ROUNDS	4

struct vsock_conn {
	TAILQ_ENTRY(vsock_conn)	 link;		/* the device's table */
	TAILQ_ENTRY(vsock_conn)	 rxq;		/* waiting to send to the guest */
	struct vsock_dev	*d;
	uint32_t		 gport;		/* the guest's port */
	void			*end;		/* the service; NULL once it
						   closed */
	bool			 in_rxq;
	bool			 need_response;
	bool			 need_credit;	/* a CREDIT_UPDATE is due */
	bool			 need_rst;	/* reset, then forget it */
	bool			 connected;	/* RESPONSE sent */
	bool			 readable;	/* the service may have output */
	bool			 woken;		/* a wake waits for vsock_leave */
	bool			 host_eof;	/* the service sends no more */
	bool			 shutdown_sent;
	bool			 guest_no_send;
	bool			 guest_no_rcv;
	bool			 eof_told;	/* ops.eof called */
	/* Credit towards the guest. */
	uint32_t		 peer_buf_alloc;
	uint32_t		 peer_fwd_cnt;
	uint32_t		 tx_cnt;
	/* Credit from the guest: bytes the service took, last announced. */
	uint32_t		 fwd_cnt;
	uint32_t		 fwd_sent;
	/* Guest bytes the service could not take yet: a ring of buf_alloc. */
	uint8_t			*buf;
	uint32_t		 buf_head;
	uint32_t		 buf_len;
};

TAILQ_HEAD(vsock_conn_list, vsock_conn);

struct vsock_rst {
	uint32_t	gport;
	uint32_t	hport;
};

struct vsock_dev {
	struct vsock_dev_config	 cfg;
	const struct vsock_dev_ops *ops;
	void			*arg;
	unsigned		 busy;		/* depth of device work */
	bool			 wake_pending;	/* some conn is woken */
	struct vhost_vq		*rx;
	struct vhost_vq		*tx;
	struct vsock_conn_list	 conns;
	struct vsock_conn_list	 rxq;
	struct vsock_rst	 rst[VSOCK_RST_QUEUE];
	struct vhost_chain	 batch[VSOCK_RX_BATCH];	/* rx chains at hand */
	size_t			 rst_head;
	size_t			 nrst;
	bool			 broken;
	struct vsock_dev_stats	 st;
};

static void	vsock_rx_pass(struct vsock_dev *d);
static void	vsock_kick(void *arg, uint32_t q);

/* ---- Headers --------------------------------------------------------------- */

void
vsock_hdr_decode(const uint8_t *buf, struct vsock_hdr *h)
{
	struct ph_reader r;

	ph_reader_init(&r, buf, VSOCK_HDR_LEN);
	/* Exactly VSOCK_HDR_LEN bytes hold these fields: none can fail. */
	(void)vh_get_le64(&r, &h->src_cid);
	(void)vh_get_le64(&r, &h->dst_cid);
	(void)vh_get_le32(&r, &h->src_port);
	(void)vh_get_le32(&r, &h->dst_port);
	(void)vh_get_le32(&r, &h->len);
	(void)vh_get_le16(&r, &h->type);
	(void)vh_get_le16(&r, &h->op);
	(void)vh_get_le32(&r, &h->flags);
	(void)vh_get_le32(&r, &h->buf_alloc);
	(void)vh_get_le32(&r, &h->fwd_cnt);
}

void
vsock_hdr_encode(const struct vsock_hdr *h, uint8_t *buf)
{
	struct ph_writer w;

	ph_writer_init(&w, buf, VSOCK_HDR_LEN);
	(void)vh_put_le64(&w, h->src_cid);
	(void)vh_put_le64(&w, h->dst_cid);
	(void)vh_put_le32(&w, h->src_port);
	(void)vh_put_le32(&w, h->dst_port);
	(void)vh_put_le32(&w, h->len);
	(void)vh_put_le16(&w, h->type);
	(void)vh_put_le16(&w, h->op);
	(void)vh_put_le32(&w, h->flags);
	(void)vh_put_le32(&w, h->buf_alloc);
	(void)vh_put_le32(&w, h->fwd_cnt);
}

/* ---- Connections --------------------------------------------------------- */

/* Bytes the guest lets us send it now. */
static uint32_t
vsock_credit(const struct vsock_conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;

	return inflight >= c->peer_buf_alloc ? 0 :
	    c->peer_buf_alloc - inflight;
}

/* True while asking the service could produce a packet. */
static bool
vsock_can_read(const struct vsock_conn *c)
{
	return c->connected && !c->host_eof && !c->guest_no_rcv &&
	    !c->need_rst && vsock_credit(c) > 0;
}

/* True when the connection has a packet for the guest. */
static bool
vsock_has_output(const struct vsock_conn *c)
{
	return c->need_rst || c->need_response || c->need_credit ||
	    (c->readable && vsock_can_read(c)) ||
	    (c->host_eof && !c->shutdown_sent);
}

/* Queues the connection for the receive queue if it has a packet. */
static void
vsock_schedule(struct vsock_conn *c)
{
	if (c->in_rxq || !vsock_has_output(c))
		return;
	TAILQ_INSERT_TAIL(&c->d->rxq, c, rxq);
	c->in_rxq = true;
}

/* Forgets a connection; its service hears of it if it is still there. */
static void
vsock_conn_free(struct vsock_conn *c)
{
	struct vsock_dev *d = c->d;
	void *end = c->end;

	if (c->in_rxq)
		TAILQ_REMOVE(&d->rxq, c, rxq);
	TAILQ_REMOVE(&d->conns, c, link);
	d->st.connections--;
	free(c->buf);
	free(c);
	if (end != NULL)
		d->ops->gone(end);
}

/* Resets a connection: RST to the guest, then it is forgotten. */
static void
vsock_conn_reset(struct vsock_conn *c)
{
	c->need_rst = true;
	c->buf_len = 0;
	vsock_schedule(c);
}

/* The connection from guest port gport to host port hport, or NULL. */
static struct vsock_conn *
vsock_conn_find(struct vsock_dev *d, uint32_t gport, uint32_t hport)
{
	struct vsock_conn *c;

	if (hport != d->cfg.port)
		return NULL;
	TAILQ_FOREACH(c, &d->conns, link)
		if (c->gport == gport)
			return c;
	return NULL;
}

/* Queues an RST for a packet that has no connection (bounded). */
static void
vsock_rst_queue(struct vsock_dev *d, uint32_t gport, uint32_t hport)
{
	struct vsock_rst *r;

	if (d->nrst == VSOCK_RST_QUEUE)
		return;		/* the guest's connect times out instead */
	r = &d->rst[(d->rst_head + d->nrst) % VSOCK_RST_QUEUE];
	r->gport = gport;
	r->hport = hport;
	d->nrst++;
}

/* Drops every connection without a word to the guest (reset or stop). */
static void
vsock_drop_all(struct vsock_dev *d)
{
	struct vsock_conn *c;

	while ((c = TAILQ_FIRST(&d->conns)) != NULL)
		vsock_conn_free(c);
	d->nrst = 0;
	d->rst_head = 0;
}

/* The guest broke a queue: stop serving it until the driver resets. */
static void
vsock_break(struct vsock_dev *d, struct vhost_vq *vq)
{
	if (d->broken)
		return;
	d->broken = true;
	vsock_drop_all(d);
	if (d->ops->broken != NULL)
		d->ops->broken(d->arg, vhost_vq_error(vq) != NULL ?
		    vhost_vq_error(vq) : "queue broken");
}

/* ---- Guest to host -------------------------------------------------------- */

/*
 * Counts n guest bytes as passed on (taken by the service, or dropped for
 * a service that has closed): they are credit the guest may use again.
 */
static void
vsock_forwarded(struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	/* Half a buffer unannounced is news worth a packet. */
	if (c->fwd_cnt - c->fwd_sent >= c->d->cfg.buf_alloc / 2) {
		c->need_credit = true;
		vsock_schedule(c);
	}
}

/*
 * Offers len guest bytes to the service. Returns the bytes passed on (all
 * of them once the service has closed), or a negative errno.
 */
static ssize_t
vsock_offer(struct vsock_conn *c, const struct iovec *iov, size_t niov,
    uint32_t len)
{
	ssize_t n;

	if (c->end == NULL)
		n = len;
	else {
		if ((n = c->d->ops->write(c->end, iov, niov, len)) < 0)
			return n;
		if ((size_t)n > len)
			return -EIO;
		c->d->st.from_guest += (uint64_t)n;
		if (c->end == NULL)
			n = len;	/* it closed meanwhile: drop the rest */
	}
	vsock_forwarded(c, (uint32_t)n);
	return n;
}

/* Offers the service what waits in the connection's buffer. */
static int
vsock_flush(struct vsock_conn *c)
{
	uint32_t cap = c->d->cfg.buf_alloc, first;
	struct iovec iov[2];
	ssize_t n;

	while (c->buf_len > 0) {
		first = cap - c->buf_head < c->buf_len ? cap - c->buf_head :
		    c->buf_len;
		iov[0].iov_base = c->buf + c->buf_head;
		iov[0].iov_len = first;
		iov[1].iov_base = c->buf;
		iov[1].iov_len = c->buf_len - first;
		n = vsock_offer(c, iov, iov[1].iov_len > 0 ? 2 : 1,
		    c->buf_len);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 0;	/* full: it wakes us when it has room */
		c->buf_head = (uint32_t)((c->buf_head + (size_t)n) % cap);
		c->buf_len -= (uint32_t)n;
	}
	c->buf_head = 0;
	return 0;
}

/* Tells the service the guest is done sending, once it has every byte. */
static void
vsock_maybe_eof(struct vsock_conn *c)
{
	if (c->guest_no_send && c->buf_len == 0 && !c->eof_told &&
	    c->end != NULL) {
		c->eof_told = true;
		c->d->ops->eof(c->end);
	}
}

/*
 * Payload from the guest for the service: offered at once when nothing
 * waits before it, the rest into the connection's buffer. Returns 0 or
 * -EPROTO when the guest sent more than its credit.
 */
static int
vsock_deliver(struct vsock_conn *c, const struct vhost_chain *ch,
    uint32_t len)
{
	uint32_t cap = c->d->cfg.buf_alloc, tail, n1, first;
	struct iovec sub[VHOST_CHAIN_MAX_IOV];
	size_t nsub;
	ssize_t n = 0;

	if (len > cap - c->buf_len)
		return -EPROTO;
	nsub = ph_io_iov_slice(ch->iov, ch->nout, VSOCK_HDR_LEN, len, sub,
	    VHOST_CHAIN_MAX_IOV);
	if (c->buf_len == 0 && (n = vsock_offer(c, sub, nsub, len)) < 0)
		return (int)n;
	if ((uint32_t)n < len) {
		if (c->buf == NULL && (c->buf = malloc(cap)) == NULL)
			return -ENOMEM;
		tail = (c->buf_head + c->buf_len) % cap;
		n1 = len - (uint32_t)n;
		/* The rest goes in after what waits there; the ring may wrap. */
		first = cap - tail < n1 ? cap - tail : n1;
		(void)ph_io_iov_read(sub, nsub, (size_t)n, c->buf + tail,
		    first);
		(void)ph_io_iov_read(sub, nsub, (size_t)n + first, c->buf,
		    n1 - first);
		c->buf_len += n1;
	}
	return 0;
}

/* A REQUEST for a connection we do not have yet. */
static void
vsock_accept(struct vsock_dev *d, const struct vsock_hdr *h)
{
	struct vsock_conn *c = NULL;
	void *end = NULL;

	if (h->dst_port != d->cfg.port || d->st.connections >=
	    VSOCK_MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL ||
	    d->ops->connect(d->arg, h->src_port, c, &end) < 0) {
		free(c);
		d->st.refused++;
		vsock_rst_queue(d, h->src_port, h->dst_port);
		return;
	}
	c->d = d;
	c->gport = h->src_port;
	c->end = end;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->need_response = true;
	c->readable = true;
	TAILQ_INSERT_TAIL(&d->conns, c, link);
	d->st.connections++;
	d->st.accepted++;
	vsock_schedule(c);
}

/* One packet from the guest's transmit queue. */
static void
vsock_tx_packet(struct vsock_dev *d, const struct vhost_chain *ch)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_conn *c;
	struct vsock_hdr h;
	int err;

	if (ch->out_len < VSOCK_HDR_LEN) {
		d->st.dropped++;
		return;
	}
	(void)ph_io_iov_read(ch->iov, ch->nout, 0, raw, sizeof(raw));
	vsock_hdr_decode(raw, &h);
	/* A guest speaks only for itself. */
	if (h.src_cid != d->cfg.guest_cid) {
		d->st.dropped++;
		return;
	}
	c = vsock_conn_find(d, h.src_port, h.dst_port);
	if (h.dst_cid != VSOCK_HOST_CID || h.type != VSOCK_TYPE_STREAM ||
	    h.len > VSOCK_MAX_PKT || h.len > ch->out_len - VSOCK_HDR_LEN ||
	    (h.op != VSOCK_OP_RW && h.len != 0)) {
		/* A lying length or a stray packet: reset what it names. */
		d->st.dropped++;
		if (h.op == VSOCK_OP_RST)
			return;
		if (c != NULL) {
			d->st.resets++;
			vsock_conn_reset(c);
		} else
			vsock_rst_queue(d, h.src_port, h.dst_port);
		return;
	}
	if (c == NULL) {
		if (h.op == VSOCK_OP_REQUEST)
			vsock_accept(d, &h);
		else if (h.op != VSOCK_OP_RST)
			vsock_rst_queue(d, h.src_port, h.dst_port);
		return;
	}
	if (c->need_rst)
		return;		/* already being reset */
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VSOCK_OP_RW:
		if (!c->connected || c->guest_no_send) {
			d->st.resets++;
			vsock_conn_reset(c);
			return;
		}
		if (h.len == 0)
			break;
		if ((err = vsock_deliver(c, ch, h.len)) < 0) {
			if (err == -EPROTO)
				d->st.resets++;
			vsock_conn_reset(c);
			return;
		}
		vsock_maybe_eof(c);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->need_credit = true;
		break;
	case VSOCK_OP_SHUTDOWN:
		if (h.flags & VSOCK_SHUTDOWN_RCV)
			c->guest_no_rcv = true;
		if (h.flags & VSOCK_SHUTDOWN_SEND)
			c->guest_no_send = true;
		if (c->guest_no_rcv && c->guest_no_send) {
			/* Closed on its side: confirm with RST and forget. */
			vsock_conn_reset(c);
			return;
		}
		vsock_maybe_eof(c);
		break;
	case VSOCK_OP_RST:
		vsock_conn_free(c);
		return;
	default:
		/* REQUEST on an open connection, RESPONSE, or unknown. */
		d->st.resets++;
		vsock_conn_reset(c);
		return;
	}
	/* New credit may let the service be asked again. */
	vsock_schedule(c);
}

/* ---- Host to guest --------------------------------------------------------- */

/* Fills the header of a packet from the host port to the guest. */
static void
vsock_hdr_init(const struct vsock_dev *d, struct vsock_hdr *h,
    uint32_t gport, uint32_t hport, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_HOST_CID;
	h->dst_cid = d->cfg.guest_cid;
	h->src_port = hport;
	h->dst_port = gport;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = d->cfg.buf_alloc;
}

/*
 * Writes the header of the connection's packet op (plen payload bytes)
 * into receive chain ch; every packet carries our credit news.
 */
static void
vsock_rx_put_hdr(struct vsock_conn *c, const struct vhost_chain *ch,
    uint16_t op, uint32_t plen, uint32_t flags)
{
	uint8_t raw[VSOCK_HDR_LEN];
	struct vsock_hdr h;

	vsock_hdr_init(c->d, &h, c->gport, c->d->cfg.port, op);
	h.fwd_cnt = c->fwd_cnt;
	h.len = plen;
	h.flags = flags;
	c->fwd_sent = c->fwd_cnt;
	c->need_credit = false;
	vsock_hdr_encode(&h, raw);
	(void)ph_io_iov_write(ch->iov + ch->nout, ch->nin, 0, raw, sizeof(raw));
}

/* True when the connection's next packet is payload from the service. */
static bool
vsock_rx_is_data(const struct vsock_conn *c)
{
	return !c->need_rst && !c->need_response && c->readable &&
	    vsock_can_read(c);
}

/*
 * Builds the connection's next packet other than payload in the receive
 * chain ch. Returns the bytes written to ch, or 0 when there was nothing
 * to send after all (the chain is unused). The connection may be freed.
 */
static uint32_t
vsock_rx_conn(struct vsock_conn *c, const struct vhost_chain *ch,
    bool *freed)
{
	uint16_t op;
	uint32_t flags = 0;

	*freed = false;
	if (c->need_rst)
		op = VSOCK_OP_RST;
	else if (c->need_response) {
		op = VSOCK_OP_RESPONSE;
		c->need_response = false;
		c->connected = true;
	} else if (c->host_eof && !c->shutdown_sent) {
		op = VSOCK_OP_SHUTDOWN;
		flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
		c->shutdown_sent = true;
	} else if (c->need_credit)
		op = VSOCK_OP_CREDIT_UPDATE;
	else
		return 0;
	vsock_rx_put_hdr(c, ch, op, 0, flags);
	if (op == VSOCK_OP_RST) {
		vsock_conn_free(c);
		*freed = true;
	}
	return VSOCK_HDR_LEN;
}

/*
 * Gathers the payload room of receive chains for one read: d->batch[0]
 * (popped by the caller) and more popped here, while the credit, budget,
 * batch and iovec space last. Returns the chains gathered (their rooms in
 * room[], the pieces in iov[0 .. *niov)), or -1 when the queue broke.
 */
static int
vsock_rx_gather(struct vsock_dev *d, uint32_t credit, int budget,
    struct iovec *iov, size_t *niov, uint32_t *room)
{
	const struct vhost_chain *ch;
	uint32_t want = 0, r;
	size_t k;
	int n = 0, p;

	*niov = 0;
	for (;;) {
		ch = &d->batch[n];
		r = credit - want;
		if (r > VSOCK_MAX_PKT)
			r = VSOCK_MAX_PKT;
		if (ch->in_len - VSOCK_HDR_LEN < r)
			r = (uint32_t)(ch->in_len - VSOCK_HDR_LEN);
		k = ph_io_iov_slice(ch->iov + ch->nout, ch->nin, VSOCK_HDR_LEN,
		    r, iov + *niov, VSOCK_RX_IOV - *niov);
		room[n] = (uint32_t)ph_io_iov_len(iov + *niov, k);
		if (room[n] == 0) {
			vhost_vq_unpop(d->rx);	/* no iovec space left */
			return n;
		}
		*niov += k;
		want += room[n];
		if (++n == VSOCK_RX_BATCH || n == budget || want == credit ||
		    *niov == VSOCK_RX_IOV)
			return n;
		if ((p = vhost_vq_pop(d->rx, &d->batch[n])) < 0)
			return -1;
		if (p == 0)
			return n;
		if (d->batch[n].in_len <= VSOCK_HDR_LEN) {
			vhost_vq_break(d->rx, "receive buffer without room "
			    "for a header and payload");
			return -1;
		}
	}
}

/*
 * Payload for the guest: one read of the service straight into several
 * receive chains (d->batch[0], popped, and more), then one RW packet per
 * chain filled. Returns the packets pushed (0: none; the chains went back,
 * and the connection may now owe RST or SHUTDOWN instead), or -1 when the
 * queue broke.
 */
static int
vsock_rx_data(struct vsock_conn *c, int budget)
{
	struct vsock_dev *d = c->d;
	struct iovec iov[VSOCK_RX_IOV];
	uint32_t room[VSOCK_RX_BATCH], want = 0, plen;
	size_t niov;
	ssize_t got;
	int n, i;

	if ((n = vsock_rx_gather(d, vsock_credit(c), budget, iov, &niov,
	    room)) < 0)
		return -1;
	for (i = 0; i < n; i++)
		want += room[i];
	/* A wake during the call sets it again. */
	c->readable = false;
	got = d->ops->read(c->end, iov, niov, want);
	if (got > 0 && (size_t)got <= want)
		c->readable = c->end != NULL;
	else if (got == 0)
		c->host_eof = true;
	else if (got != -EAGAIN)
		c->need_rst = true;	/* its error, or more than asked */
	if (got <= 0 || (size_t)got > want) {
		for (i = 0; i < n; i++)
			vhost_vq_unpop(d->rx);
		return 0;
	}
	for (i = 0; i < n && got > 0; i++) {
		plen = room[i] < (size_t)got ? room[i] : (uint32_t)got;
		vsock_rx_put_hdr(c, &d->batch[i], VSOCK_OP_RW, plen, 0);
		(void)vhost_vq_push(d->rx, d->batch[i].head,
		    VSOCK_HDR_LEN + plen);
		c->tx_cnt += plen;
		d->st.to_guest += plen;
		got -= plen;
	}
	/* Chains the payload did not reach go back, last popped first. */
	for (int j = n - 1; j >= i; j--)
		vhost_vq_unpop(d->rx);
	return i;
}

/* Fills the receive queue: RSTs first, then connections round-robin. */
static void
vsock_rx_pass(struct vsock_dev *d)
{
	struct vhost_chain *ch = &d->batch[0];
	struct vsock_conn *c;
	struct vsock_hdr h;
	uint8_t raw[VSOCK_HDR_LEN];
	uint32_t len;
	int budget, r, pushed = 0;
	bool freed;

	if (d->rx == NULL || d->broken)
		return;
	for (budget = VSOCK_BUDGET; budget > 0; ) {
		c = TAILQ_FIRST(&d->rxq);
		if (d->nrst == 0 && c == NULL)
			break;
		if (c != NULL && d->nrst == 0 && !vsock_has_output(c)) {
			TAILQ_REMOVE(&d->rxq, c, rxq);
			c->in_rxq = false;
			continue;
		}
		if ((r = vhost_vq_pop(d->rx, ch)) < 0) {
			vsock_break(d, d->rx);
			return;
		}
		if (r == 0)
			break;		/* wait for the driver to add buffers */
		/* Room for a header and some payload, as drivers post. */
		if (ch->in_len <= VSOCK_HDR_LEN) {
			vhost_vq_break(d->rx, "receive buffer without room "
			    "for a header and payload");
			vsock_break(d, d->rx);
			return;
		}
		if (d->nrst > 0) {
			budget--;
			vsock_hdr_init(d, &h, d->rst[d->rst_head].gport,
			    d->rst[d->rst_head].hport, VSOCK_OP_RST);
			d->rst_head = (d->rst_head + 1) % VSOCK_RST_QUEUE;
			d->nrst--;
			vsock_hdr_encode(&h, raw);
			(void)ph_io_iov_write(ch->iov + ch->nout, ch->nin, 0,
			    raw, sizeof(raw));
			(void)vhost_vq_push(d->rx, ch->head, VSOCK_HDR_LEN);
			pushed++;
			continue;
		}
		if (vsock_rx_is_data(c)) {
			if ((r = vsock_rx_data(c, budget)) < 0) {
				vsock_break(d, d->rx);
				return;
			}
			budget -= r > 0 ? r : 1;
			pushed += r;
			freed = false;
		} else {
			budget--;
			len = vsock_rx_conn(c, ch, &freed);
			if (len == 0) {
				vhost_vq_unpop(d->rx);
			} else {
				(void)vhost_vq_push(d->rx, ch->head, len);
				pushed++;
			}
		}
		if (freed)
			continue;
		/* Round-robin: to the back of the line, or out of it. */
		TAILQ_REMOVE(&d->rxq, c, rxq);
		c->in_rxq = false;
		vsock_schedule(c);
	}
	if (pushed > 0)
		(void)vhost_vq_notify(d->rx);
	if (budget <= 0 && (d->nrst > 0 || !TAILQ_EMPTY(&d->rxq)))
		(void)vhost_vq_rekick(d->rx);
}

/* ---- Device work and the service's calls ------------------------------------ */

/* Device work begins: the service's calls are only marked from now on. */
static void
vsock_enter(struct vsock_dev *d)
{
	d->busy++;
}

/*
 * Device work ends: when it was the outermost, serve the connections the
 * service woke meanwhile (their held-back payload, then the receive
 * queue), a few rounds at most; further wakes wait for the next kick.
 */
static void
vsock_leave(struct vsock_dev *d)
{
	struct vsock_conn *c;

	for (int round = 0; d->busy == 1 && d->wake_pending &&
	    round < VSOCK_WAKE_ROUNDS; round++) {
		d->wake_pending = false;
		TAILQ_FOREACH(c, &d->conns, link) {
			if (!c->woken)
				continue;
			c->woken = false;
			if (!c->need_rst && vsock_flush(c) < 0)
				vsock_conn_reset(c);
			else
				vsock_maybe_eof(c);
			vsock_schedule(c);
		}
		vsock_rx_pass(d);
	}
	if (d->busy == 1 && d->wake_pending && d->rx != NULL)
		(void)vhost_vq_rekick(d->rx);
	d->busy--;
}

void
vsock_conn_wake(struct vsock_conn *c)
{
	struct vsock_dev *d = c->d;

	if (c->end == NULL)
		return;
	c->readable = true;
	c->woken = true;
	d->wake_pending = true;
	vsock_enter(d);
	vsock_leave(d);
}

void
vsock_conn_close(struct vsock_conn *c)
{
	struct vsock_dev *d = c->d;

	c->end = NULL;
	c->host_eof = true;
	c->readable = false;
	/*
	 * Held-back payload has nobody to go to: the flush in vsock_leave()
	 * credits and drops it (not here: a flush may be in progress).
	 */
	c->woken = true;
	d->wake_pending = true;
	vsock_schedule(c);
	vsock_enter(d);
	vsock_leave(d);
}

/* Serves the transmit queue: a bounded batch per wakeup. */
static void
vsock_tx_run(struct vsock_dev *d)
{
	struct vhost_chain ch;
	int budget, r;

	if (d->tx == NULL || d->broken)
		return;
	for (budget = VSOCK_BUDGET; budget > 0; budget--) {
		if ((r = vhost_vq_pop(d->tx, &ch)) < 0) {
			vsock_break(d, d->tx);
			return;
		}
		if (r == 0)
			break;
		vsock_tx_packet(d, &ch);
		(void)vhost_vq_push(d->tx, ch.head, 0);
	}
	(void)vhost_vq_notify(d->tx);
	if (budget == 0)
		(void)vhost_vq_rekick(d->tx);
	vsock_rx_pass(d);
}

/* ---- vhost-user glue -------------------------------------------------------- */

/* The configuration space: le64 guest_cid. */
static void
vsock_get_config(void *arg, uint32_t offset, void *buf, uint32_t len)
{
	struct vsock_dev *d = arg;
	uint64_t cid = htole64(d->cfg.guest_cid);

	memcpy(buf, (const uint8_t *)&cid + offset, len);
}

/*
 * A queue starts: the data queues are ours, the event queue stays idle.
 * A data queue the driver set up afresh means the guest's sockets are
 * gone (a reset or reboot): so are ours. One that resumes (the VM was
 * paused) keeps them, and they go on.
 */
static void
vsock_start(void *arg, uint32_t q, struct vhost_vq *vq)
{
	struct vsock_dev *d = arg;

	if (q == VSOCK_QUEUE_RX)
		d->rx = vq;
	else if (q == VSOCK_QUEUE_TX)
		d->tx = vq;
	else
		return;		/* the event queue: we have no events */
	if (!vhost_vq_resumed(vq) || d->broken) {
		vsock_enter(d);
		vsock_drop_all(d);
		vsock_leave(d);
		/* A queue set up again after a break starts afresh. */
		d->broken = false;
		return;
	}
	/* What waited through the pause goes out now. */
	vsock_kick(d, q);
}

/*
 * A queue stops: a pause, a reset or QEMU leaving. Connections wait: the
 * next start tells which it was (QEMU leaving frees the device).
 */
static void
vsock_stop(void *arg, uint32_t q)
{
	struct vsock_dev *d = arg;

	if (q == VSOCK_QUEUE_RX)
		d->rx = NULL;
	else if (q == VSOCK_QUEUE_TX)
		d->tx = NULL;
}

/* The driver added packets to send, or buffers to receive into. */
static void
vsock_kick(void *arg, uint32_t q)
{
	struct vsock_dev *d = arg;

	vsock_enter(d);
	if (q == VSOCK_QUEUE_TX)
		vsock_tx_run(d);
	else if (q == VSOCK_QUEUE_RX)
		vsock_rx_pass(d);
	vsock_leave(d);
}

static const struct vhost_user_device vsock_vhost_device = {
	.features = 0,
	.nqueues = 3,
	.config_len = 8,
	.get_config = vsock_get_config,
	.start = vsock_start,
	.kick = vsock_kick,
	.stop = vsock_stop,
};

const struct vhost_user_device *
vsock_dev_vhost(void)
{
	return &vsock_vhost_device;
}

int
vsock_dev_new(const struct vsock_dev_config *cfg,
    const struct vsock_dev_ops *ops, void *arg, struct vsock_dev **out)
{
	struct vsock_dev *d;

	*out = NULL;
	if (cfg->guest_cid <= VSOCK_HOST_CID || cfg->guest_cid >= UINT32_MAX)
		return -EINVAL;
	if (cfg->buf_alloc != 0 && (cfg->buf_alloc < VSOCK_MIN_BUF ||
	    cfg->buf_alloc > VSOCK_MAX_BUF))
		return -EINVAL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->cfg = *cfg;
	if (d->cfg.buf_alloc == 0)
		d->cfg.buf_alloc = VSOCK_DEF_BUF;
	d->ops = ops;
	d->arg = arg;
	TAILQ_INIT(&d->conns);
	TAILQ_INIT(&d->rxq);
	*out = d;
	return 0;
}

void
vsock_dev_free(struct vsock_dev *d)
{
	if (d == NULL)
		return;
	/* No ring is left (the vhost_user went first): no work follows. */
	vsock_enter(d);
	vsock_drop_all(d);
	vsock_leave(d);
	free(d);
}

void
vsock_dev_stats(const struct vsock_dev *d, struct vsock_dev_stats *st)
{
	*st = d->st;
	st->running = d->rx != NULL && d->tx != NULL;
	st->broken = d->broken;
}
