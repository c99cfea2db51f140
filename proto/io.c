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

/*
 * Uses send() with MSG_NOSIGNAL where it can, so a peer that went away is
 * an -EPIPE for the caller rather than a SIGPIPE; pipes and files fall back
 * to write().
 */
int
ph_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n == -1 && errno == ENOTSOCK)
			return ph_write_full(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ph_write_full(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ph_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t	*p = buf;
	ssize_t	 n;

	while (len > 0) {
		n = pread(fd, p, len, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int
ph_send_msg(int fd, const struct ph_msg *m, uint8_t *buf, size_t cap)
{
	ssize_t	n;

	if ((n = ph_encode(m, buf, cap)) < 0)
		return (int)n;
	return ph_write_all(fd, buf, (size_t)n);
}

/* Reads exactly len bytes; end of file at any point is -ECONNRESET. */
static int
read_exact(int fd, uint8_t *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		n = read(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			return -ECONNRESET;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Reads the header alone first, so an over-limit length is refused before a
 * single payload byte is read.
 */
int
ph_recv_msg(int fd, uint8_t *buf, size_t cap, struct ph_msg *m)
{
	struct ph_header	h;
	int			rc;

	m->type = 0;
	if (buf == NULL || cap < PH_HDR_LEN)
		return -ENOBUFS;
	if ((rc = read_exact(fd, buf, PH_HDR_LEN)) != 0)
		return rc;
	if ((rc = ph_header_parse(buf, PH_HDR_LEN, &h)) != 0)
		return rc;
	if (h.length > cap - PH_HDR_LEN)
		return -ENOBUFS;
	if ((rc = read_exact(fd, buf + PH_HDR_LEN, h.length)) != 0)
		return rc;
	return ph_decode(h.type, buf + PH_HDR_LEN, h.length, m);
}

size_t
ph_iov_slice(const struct iovec *iov, size_t niov, size_t off, size_t len,
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
ph_iov_len(const struct iovec *iov, size_t niov)
{
	size_t len = 0;

	for (size_t i = 0; i < niov; i++)
		len += iov[i].iov_len;
	return len;
}

/* Copies between iov (from byte off on) and buf, in the direction asked. */
static size_t
ph_iov_copy(const struct iovec *iov, size_t niov, size_t off, uint8_t *buf,
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
ph_iov_read(const struct iovec *iov, size_t niov, size_t off, void *dst,
    size_t len)
{
	return ph_iov_copy(iov, niov, off, dst, len, false);
}

size_t
ph_iov_write(const struct iovec *iov, size_t niov, size_t off,
    const void *src, size_t len)
{
	/* The source is only read: into_iov never writes to buf. */
	return ph_iov_copy(iov, niov, off, (uint8_t *)(uintptr_t)src, len,
	    true);
}
