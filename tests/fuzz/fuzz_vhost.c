/*
 * fuzz_vhost.c: libFuzzer harness for the vhost-user back-end and the
 * virtio-vsock device (vhost/).
 *
 * The first byte picks what the rest is:
 *   even: guest memory. Two queues of 8 entries and everything they point
 *         to live in it, so the input is the descriptor tables, the ring
 *         indices and the packets a hostile guest writes. Bits 1 and 2 of
 *         the first byte pick EVENT_IDX and INDIRECT_DESC; bits 3 and 4
 *         how many transmit entries the guest makes available per round
 *         (0: all at once), so that a connection can get its RESPONSE
 *         before its data. The vsock device serves them to a small
 *         in-memory service: each connection has a few bytes to send and
 *         takes a bounded amount of input per round; the guest's port
 *         picks how it ends (EOF, closing, from inside a callback or not)
 *         and whether it wakes from inside write.
 *   odd:  the byte stream a front-end sends on the vhost-user socket.
 * Guest memory is a heap block of exactly its size, so a read or write one
 * byte outside it (by the device, or by the service through the iovecs
 * the device hands it) is an AddressSanitizer report. The service aborts
 * when the device breaks its contract: a call inside another, a call after
 * ops.gone or vsock_conn_close(), lengths that do not add up, or an end
 * that never heard ops.gone.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vhost.h"
#include "vsock.h"

#define MEM_SIZE	8192
#define GPA		0x1000
#define UVA		0x10000
#define MAX_SLOTS	16
#define FZ_CONNS	4	/* more are refused */
#define FZ_IN_CAP	64	/* input a service takes per round */
#define FZ_ROUNDS	8
/* The transmit ring's available index, as an offset into guest memory. */
#define FZ_TX_AVAIL_IDX	(384 + 2)

/* What a service does, from its guest port's bits. */
#define FZ_EOF		0x04	/* read says 0 after its bytes */
#define FZ_CLOSE_READ	0x08	/* closes in read, after its bytes */
#define FZ_WAKE_WRITE	0x10	/* wakes from inside write */
#define FZ_CLOSE	0x20	/* closes between rounds */
#define FZ_LIE		0x40	/* read says one byte more than len */

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fz_reply[] = "PH-host-bytes!!";

struct fz;

/* The service's end of one guest connection. */
struct fz_svc {
	struct fz		*f;
	struct vsock_conn	*vc;
	uint32_t		 gport;
	bool			 live;		/* not yet gone or closed */
	size_t			 in_len;	/* taken this round */
	size_t			 out_len;	/* bytes for the guest */
	size_t			 out_off;	/* handed over so far */
};

struct fz {
	struct fz_svc	 svc[FZ_CONNS];
	int		 nsvc;
	int		 depth;		/* service calls running */
};

/* The message mode's watches: kept, never run. */
struct slot {
	int	 fd;
	void	(*ready)(void *, unsigned);
	void	*obj;
};

struct fz_watches {
	struct slot	 s[MAX_SLOTS];
};

static int
fz_watch(void *arg, void **slot, int fd, unsigned events,
    void (*ready)(void *, unsigned), void *obj)
{
	struct fz_watches *f = arg;
	struct slot *s = *slot;

	(void)events;
	for (int i = 0; i < MAX_SLOTS && s == NULL; i++)
		if (f->s[i].ready == NULL)
			s = &f->s[i];
	if (s == NULL)
		return -ENOMEM;
	s->fd = fd;
	s->ready = ready;
	s->obj = obj;
	*slot = s;
	return 0;
}

static void
fz_release(void *arg, void **slot, int fd)
{
	struct slot *s = *slot;

	(void)arg;
	if (s != NULL)
		memset(s, 0, sizeof(*s));
	*slot = NULL;
	close(fd);
}

/* ---- The in-memory service ----------------------------------------------- */

/* A call into the service: it must be for a live end, and not nested. */
static void
fz_enter(struct fz_svc *s)
{
	if (!s->live || s->f->depth != 0)
		abort();
	s->f->depth++;
}

static void
fz_leave(struct fz_svc *s)
{
	s->f->depth--;
}

/*
 * Copies the first len bytes of the pieces to or from buf (NULL: just
 * touch them), so that any piece outside guest memory is an ASan report;
 * aborts when the pieces hold fewer than len bytes, or len is 0.
 */
static void
fz_iov(const struct iovec *iov, size_t niov, size_t len, uint8_t *buf,
    bool store)
{
	volatile uint8_t sink = 0;
	size_t done = 0, k;
	uint8_t *p;

	if (len == 0)
		abort();
	for (size_t i = 0; i < niov && done < len; i++) {
		p = iov[i].iov_base;
		k = iov[i].iov_len < len - done ? iov[i].iov_len : len - done;
		for (size_t j = 0; j < k; j++) {
			if (store)
				p[j] = buf != NULL ? buf[done + j] : (uint8_t)j;
			else if (buf != NULL)
				buf[done + j] = p[j];
			else
				sink ^= p[j];
		}
		done += k;
	}
	(void)sink;
	if (done < len)
		abort();
}

static int
fz_connect(void *arg, uint32_t guest_port, struct vsock_conn *vc,
    void **end)
{
	struct fz *f = arg;
	struct fz_svc *s;

	if (f->depth != 0 || vc == NULL)
		abort();
	if (f->nsvc == FZ_CONNS)
		return -ECONNREFUSED;
	s = &f->svc[f->nsvc++];
	memset(s, 0, sizeof(*s));
	s->f = f;
	s->vc = vc;
	s->gport = guest_port;
	s->live = true;
	s->out_len = 13 + guest_port % 3;
	*end = s;
	return 0;
}

/* Takes up to FZ_IN_CAP bytes a round; may wake from inside. */
static ssize_t
fz_write(void *end, const struct iovec *iov, size_t niov, size_t len)
{
	struct fz_svc *s = end;
	size_t n;

	fz_enter(s);
	fz_iov(iov, niov, len, NULL, false);
	n = FZ_IN_CAP - s->in_len < len ? FZ_IN_CAP - s->in_len : len;
	s->in_len += n;
	if (s->gport & FZ_WAKE_WRITE)
		vsock_conn_wake(s->vc);
	fz_leave(s);
	return (ssize_t)n;
}

/* Hands over its few bytes, then -EAGAIN, EOF or a close. */
static ssize_t
fz_read(void *end, const struct iovec *iov, size_t niov, size_t len)
{
	struct fz_svc *s = end;
	size_t n = s->out_len - s->out_off;
	uint8_t out[sizeof(fz_reply)];
	ssize_t r;

	fz_enter(s);
	/* All the room it was given is the guest's buffer, and writable. */
	fz_iov(iov, niov, len, NULL, true);
	if (n == 0)
		r = s->gport & FZ_EOF ? 0 : -EAGAIN;
	else {
		if (n > len)
			n = len;
		memcpy(out, fz_reply + s->out_off, n);
		fz_iov(iov, niov, n, out, true);
		s->out_off += n;
		r = (ssize_t)n;
	}
	if ((s->gport & FZ_CLOSE_READ) && r > 0) {
		s->live = false;
		vsock_conn_close(s->vc);
	}
	if (s->gport & FZ_LIE)
		r = (ssize_t)len + 1;
	fz_leave(s);
	return r;
}

static void
fz_eof(void *end)
{
	struct fz_svc *s = end;

	fz_enter(s);
	fz_leave(s);
}

static void
fz_gone(void *end)
{
	struct fz_svc *s = end;

	fz_enter(s);
	s->live = false;
	fz_leave(s);
}

/* Between rounds: every live service has room again and says so. */
static void
fz_round(struct fz *f, int round)
{
	for (int i = 0; i < f->nsvc; i++) {
		struct fz_svc *s = &f->svc[i];

		if (!s->live)
			continue;
		s->in_len = 0;
		if (round == 2 && (s->gport & FZ_CLOSE)) {
			s->live = false;
			vsock_conn_close(s->vc);
		} else
			vsock_conn_wake(s->vc);
	}
}

/* ---- Modes --------------------------------------------------------------- */

/* Guest memory mode: the device against whatever the input wrote. */
static void
fuzz_guest(const uint8_t *data, size_t size, uint8_t mode)
{
	const struct vhost_user_device *v = vsock_dev_vhost();
	const struct vsock_dev_ops ops = {
		.connect = fz_connect,
		.write = fz_write,
		.read = fz_read,
		.eof = fz_eof,
		.gone = fz_gone,
		.broken = NULL,
	};
	struct vsock_dev_config cfg = { 3, 7390, 4096 };
	struct vhost_vq_config qc;
	struct vhost_vq *rx = NULL, *tx = NULL;
	struct vhost_mem *m = NULL;
	struct vsock_dev *d = NULL;
	unsigned step = (mode >> 3) & 3;
	uint16_t full, idx;
	uint8_t *mem;
	struct fz f;

	memset(&f, 0, sizeof(f));
	if ((mem = calloc(1, MEM_SIZE)) == NULL)
		return;
	memcpy(mem, data, size < MEM_SIZE ? size : MEM_SIZE);
	memcpy(&full, mem + FZ_TX_AVAIL_IDX, sizeof(full));
	full = le16toh(full);
	if (vhost_mem_new(&m) < 0 ||
	    vhost_mem_add(m, GPA, MEM_SIZE, UVA, mem) < 0)
		goto out;
	memset(&qc, 0, sizeof(qc));
	qc.num = 8;
	qc.call_fd = qc.kick_fd = qc.err_fd = -1;
	qc.features = (mode & 2 ? 1ull << VHOST_F_EVENT_IDX : 0) |
	    (mode & 4 ? 1ull << VHOST_F_INDIRECT_DESC : 0);
	qc.desc = UVA;
	qc.avail = UVA + 128;
	qc.used = UVA + 160;
	if (vhost_vq_new(m, &qc, &rx) < 0)
		goto out;
	qc.desc = UVA + 256;
	qc.avail = UVA + 384;
	qc.used = UVA + 416;
	if (vhost_vq_new(m, &qc, &tx) < 0)
		goto out;
	if (vsock_dev_new(&cfg, &ops, &f, &d) < 0)
		goto out;
	v->start(d, VSOCK_QUEUE_RX, rx);
	v->start(d, VSOCK_QUEUE_TX, tx);
	for (int round = 0; round < FZ_ROUNDS; round++) {
		/* The guest makes the next few packets available. */
		if (step != 0) {
			idx = (uint16_t)(step * (unsigned)(round + 1));
			if (idx > full)
				idx = full;
			idx = htole16(idx);
			memcpy(mem + FZ_TX_AVAIL_IDX, &idx, sizeof(idx));
		}
		v->kick(d, VSOCK_QUEUE_TX);
		v->kick(d, VSOCK_QUEUE_RX);
		fz_round(&f, round);
	}
	v->stop(d, VSOCK_QUEUE_RX);
	v->stop(d, VSOCK_QUEUE_TX);
out:
	vsock_dev_free(d);
	/* Every end heard ops.gone, or closed itself. */
	for (int i = 0; i < f.nsvc; i++)
		if (f.svc[i].live)
			abort();
	vhost_vq_free(rx);
	vhost_vq_free(tx);
	vhost_mem_free(m);
	free(mem);
}

static void
stub_config(void *arg, uint32_t off, void *buf, uint32_t len)
{
	(void)arg;
	memset(buf, (int)off, len);
}

static void
stub_start(void *arg, uint32_t q, struct vhost_vq *vq)
{
	(void)arg;
	(void)q;
	(void)vq;
}

static void
stub_kick(void *arg, uint32_t q)
{
	(void)arg;
	(void)q;
}

/* Front-end mode: the input is what arrives on the vhost-user socket. */
static void
fuzz_messages(const uint8_t *data, size_t size)
{
	struct vhost_user_device dev = { 0, 3, 8, stub_config, stub_start,
	    stub_kick, stub_kick };
	struct vhost_watch w = { fz_watch, fz_release, NULL };
	struct vhost_user *u = NULL;
	struct fz_watches f;
	char sink[4096];
	int sv[2];

	memset(&f, 0, sizeof(f));
	w.arg = &f;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return;
	if (size > 65536)
		size = 65536;
	if (write(sv[0], data, size) < 0 || vhost_user_new(sv[1], &dev, NULL,
	    &w, &u) < 0)
		goto out;
	shutdown(sv[0], SHUT_WR);
	for (int i = 0; i < 1000; i++) {
		if (vhost_user_input(u) < 0)
			break;
		/* Replies must not fill the socket. */
		while (read(sv[0], sink, sizeof(sink)) > 0)
			;
	}
out:
	vhost_user_free(u);
	close(sv[0]);
	close(sv[1]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_messages(data + 1, size - 1);
	else
		fuzz_guest(data + 1, size - 1, data[0]);
	return 0;
}
