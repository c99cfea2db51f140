/*
 * io.c: blocking frame I/O for the clients, and the whole-buffer file
 * read and write loops every component uses.
 *
 * The daemon reads frames through its event loop; the CLI tools use these
 * simple blocking helpers, which apply the same header-first limit check.
 */
#include <sys/socket.h>

#include <errno.h>
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
