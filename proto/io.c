/*
 * io.c: blocking frame I/O for the clients, and the whole-buffer file
 * read and write loops and scatter-list copies every component uses.
 *
 * The daemon reads frames through its event loop; the CLI tools use these
 * simple blocking helpers, which apply the same header-first limit check.
 */
#include <sys/socket.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

/* The system calls the whole-buffer loops below repeat. */
enum ph_io_op {
	PH_IO_SEND,
	PH_IO_WRITE,
	PH_IO_READ,
	PH_IO_PREAD,
};

/* One call of op on len bytes at p; off is used by PH_IO_PREAD only. */
static ssize_t
ph_io_once(enum ph_io_op op, int fd, uint8_t *p, size_t len, uint64_t off)
{
	switch (op) {
	case PH_IO_SEND:
		return send(fd, p, len, MSG_NOSIGNAL);
	case PH_IO_WRITE:
		return write(fd, p, len);
	case PH_IO_PREAD:
		return pread(fd, p, len, (off_t)off);
	default:
		return read(fd, p, len);
	}
}

/*
 * Repeats op until len bytes have moved or a call moves none, retrying
 * EINTR. PH_IO_SEND uses MSG_NOSIGNAL, so a peer that went away is an
 * -EPIPE for the caller rather than a SIGPIPE, and goes on with write()
 * on pipes and files. Returns the bytes moved or -errno.
 */
static ssize_t
ph_io_loop(enum ph_io_op op, int fd, uint8_t *p, size_t len, uint64_t off)
{
	size_t	done = 0;
	ssize_t	n;

	while (done < len) {
		n = ph_io_once(op, fd, p + done, len - done, off + done);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == ENOTSOCK && op == PH_IO_SEND) {
			op = PH_IO_WRITE;
			continue;
		}
		if (n == -1)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* ph_io_loop() for exactly len bytes: short_err when fewer moved. */
static int
ph_io_all(enum ph_io_op op, int fd, uint8_t *p, size_t len, uint64_t off,
    int short_err)
{
	ssize_t	n = ph_io_loop(op, fd, p, len, off);

	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : short_err;
}

/* The loop only reads buf when it writes, so dropping const is safe. */
int
ph_io_write_all(int fd, const void *buf, size_t len)
{
	return ph_io_all(PH_IO_SEND, fd, (uint8_t *)(uintptr_t)buf, len, 0,
	    -EIO);
}

int
ph_io_write_full(int fd, const void *buf, size_t len)
{
	return ph_io_all(PH_IO_WRITE, fd, (uint8_t *)(uintptr_t)buf, len, 0,
	    -EIO);
}

int
ph_io_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	return ph_io_all(PH_IO_PREAD, fd, buf, len, off, -ENODATA);
}

ssize_t
ph_io_read_full(int fd, void *buf, size_t len)
{
	return ph_io_loop(PH_IO_READ, fd, buf, len, 0);
}

int
ph_io_send_msg(int fd, const struct ph_msg *m, uint8_t *buf, size_t cap)
{
	ssize_t	n;

	if ((n = ph_message_encode(m, buf, cap)) < 0)
		return (int)n;
	return ph_io_write_all(fd, buf, (size_t)n);
}

/*
 * Reads exactly what the framer says is missing, the header alone first, so
 * an over-limit length is refused before a single payload byte is read and
 * no byte of the next frame is taken from fd.
 */
int
ph_io_recv_msg(int fd, uint8_t *buf, size_t cap, struct ph_msg *m)
{
	struct ph_framer	f;
	struct ph_header	h;
	uint8_t			*payload;
	uint8_t			*dst;
	size_t			need, room;
	int			rc;

	m->type = 0;
	if (buf == NULL || cap < PH_HDR_LEN)
		return -ENOBUFS;
	ph_framer_init(&f, buf, cap);
	while ((rc = ph_framer_next(&f, &h, &payload)) == 0) {
		need = ph_framer_need(&f);
		dst = ph_framer_space(&f, need, &room);
		if ((rc = ph_io_all(PH_IO_READ, fd, dst, need, 0,
		    -ECONNRESET)) != 0)
			return rc;
		ph_framer_commit(&f, need);
	}
	if (rc < 0)
		return rc;
	return ph_message_decode(h.type, payload, h.length, m);
}

size_t
ph_io_iov_slice(const struct iovec *iov, size_t niov, size_t off, size_t len,
    struct iovec *out, size_t cap)
{
	size_t n = 0, take;

	for (size_t i = 0; i < niov && len > 0 && n < cap; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		take = iov[i].iov_len - off;
		if (take > len)
			take = len;
		out[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		out[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	return n;
}

size_t
ph_io_iov_len(const struct iovec *iov, size_t niov)
{
	size_t len = 0;

	for (size_t i = 0; i < niov; i++)
		len += iov[i].iov_len;
	return len;
}

/* Copies between iov (from byte off on) and buf, in the direction asked. */
static size_t
ph_io_iov_copy(const struct iovec *iov, size_t niov, size_t off, uint8_t *buf,
    size_t len, bool into_iov)
{
	size_t done = 0, n;

	for (size_t i = 0; i < niov && done < len; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		n = iov[i].iov_len - off;
		if (n > len - done)
			n = len - done;
		if (into_iov)
			memcpy((uint8_t *)iov[i].iov_base + off, buf + done, n);
		else
			memcpy(buf + done, (uint8_t *)iov[i].iov_base + off, n);
		done += n;
		off = 0;
	}
	return done;
}

size_t
ph_io_iov_read(const struct iovec *iov, size_t niov, size_t off, void *dst,
    size_t len)
{
	return ph_io_iov_copy(iov, niov, off, dst, len, false);
}

size_t
ph_io_iov_write(const struct iovec *iov, size_t niov, size_t off,
    const void *src, size_t len)
{
	/* The source is only read: into_iov never writes to buf. */
	return ph_io_iov_copy(iov, niov, off, (uint8_t *)(uintptr_t)src, len,
	    true);
}
