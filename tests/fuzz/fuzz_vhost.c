/*
 * fuzz_vhost.c: libFuzzer harness for the vhost-user back-end and the
 * virtio-vsock device (vhost/).
 *
 * The first byte picks what the rest is:
 *   even: guest memory. Two queues of 8 entries and everything they point
 *         to live in it, so the input is the descriptor tables, the ring
 *         indices and the packets a hostile guest writes. The vsock device
 *         serves them; host sockets it asks for get a few bytes to send.
 *   odd:  the byte stream a front-end sends on the vhost-user socket.
 * Guest memory is a heap block of exactly its size, so a read or write one
 * byte outside it is an AddressSanitizer report.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vhost.h"
#include "vsock.h"

#define MEM_SIZE	8192
#define GPA		0x1000
#define UVA		0x10000
#define MAX_SLOTS	16

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct slot {
	int	 fd;
	void	(*ready)(void *, unsigned);
	void	*obj;
};

struct fz {
	struct slot	 s[MAX_SLOTS];
	int		 peers[MAX_SLOTS];
	int		 npeers;
};

static int
fz_watch(void *arg, void **slot, int fd, unsigned events,
    void (*ready)(void *, unsigned), void *obj)
{
	struct fz *f = arg;
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

/* Host sockets for the guest's connections: a few, each with data. */
static int
fz_connect(void *arg, uint32_t guest_port, int *fd)
{
	struct fz *f = arg;
	int sv[2];

	if (f->npeers == 4)
		return -ECONNREFUSED;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
		return -errno;
	(void)!write(sv[0], "PH-host-bytes", 13 + guest_port % 3);
	f->peers[f->npeers++] = sv[0];
	*fd = sv[1];
	return 0;
}

/* Guest memory mode: the device against whatever the input wrote. */
static void
fuzz_guest(const uint8_t *data, size_t size, uint8_t mode)
{
	const struct vhost_user_device *v = vsock_dev_vhost();
	struct vsock_dev_ops ops = { fz_connect, NULL };
	struct vhost_watch w = { fz_watch, fz_release, NULL };
	struct vsock_dev_config cfg = { 3, 7390, 4096 };
	struct vhost_vq_config qc;
	struct vhost_vq *rx = NULL, *tx = NULL;
	struct vhost_mem *m = NULL;
	struct vsock_dev *d = NULL;
	uint8_t *mem;
	struct fz f;

	memset(&f, 0, sizeof(f));
	w.arg = &f;
	if ((mem = calloc(1, MEM_SIZE)) == NULL)
		return;
	memcpy(mem, data, size < MEM_SIZE ? size : MEM_SIZE);
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
	w.arg = &f;
	ops.connect = fz_connect;
	if (vsock_dev_new(&cfg, &ops, &f, &w, &d) < 0)
		goto out;
	v->start(d, VSOCK_QUEUE_RX, rx);
	v->start(d, VSOCK_QUEUE_TX, tx);
	for (int round = 0; round < 3; round++) {
		v->kick(d, VSOCK_QUEUE_TX);
		v->kick(d, VSOCK_QUEUE_RX);
		/* Every host socket turns readable and writable. */
		for (int i = 0; i < MAX_SLOTS; i++)
			if (f.s[i].ready != NULL)
				f.s[i].ready(f.s[i].obj,
				    VHOST_EV_READ | VHOST_EV_WRITE);
	}
	v->stop(d, VSOCK_QUEUE_RX);
	v->stop(d, VSOCK_QUEUE_TX);
out:
	vsock_dev_free(d);
	vhost_vq_free(rx);
	vhost_vq_free(tx);
	vhost_mem_free(m);
	for (int i = 0; i < f.npeers; i++)
		close(f.peers[i]);
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
	struct fz f;
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
