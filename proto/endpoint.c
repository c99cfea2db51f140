/*
 * endpoint.c: endpoint strings and the sockets behind them.
 *
 * "vsock:CID:PORT", "vsock::PORT" and "unix:PATH" are the only forms; the
 * same string works on the command line, in logs and in tests.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <linux/vm_sockets.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define VSOCK_PREFIX	"vsock:"
#define UNIX_PREFIX	"unix:"

/*
 * Parses a decimal u32 at *sp up to the first non-digit. No sign, no
 * spaces, at least one digit. Advances *sp past the digits.
 */
static int
ph_endpoint_parse_u32(const char **sp, uint32_t *v)
{
	const char	*s = *sp;
	uint64_t	 x = 0;

	*v = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	while (*s >= '0' && *s <= '9') {
		x = x * 10 + (uint64_t)(*s - '0');
		if (x > UINT32_MAX)
			return -EINVAL;
		s++;
	}
	*v = (uint32_t)x;
	*sp = s;
	return 0;
}

int
ph_endpoint_parse(const char *s, struct ph_endpoint *ep)
{
	size_t	n;

	memset(ep, 0, sizeof(*ep));
	if (s == NULL)
		return -EINVAL;
	if (strncmp(s, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
		s += strlen(UNIX_PREFIX);
		n = strlen(s);
		if (n == 0 || n >= sizeof(ep->path))
			return -EINVAL;
		ep->kind = PH_EP_UNIX;
		memcpy(ep->path, s, n + 1);
		return 0;
	}
	if (strncmp(s, VSOCK_PREFIX, strlen(VSOCK_PREFIX)) != 0)
		return -EINVAL;
	s += strlen(VSOCK_PREFIX);
	if (*s == ':')
		ep->cid = PH_VSOCK_CID_ANY;
	else if (ph_endpoint_parse_u32(&s, &ep->cid) != 0)
		goto bad;
	if (*s++ != ':')
		goto bad;
	if (ph_endpoint_parse_u32(&s, &ep->port) != 0 || *s != '\0')
		goto bad;
	ep->kind = PH_EP_VSOCK;
	return 0;
bad:
	memset(ep, 0, sizeof(*ep));
	return -EINVAL;
}

int
ph_endpoint_format(const struct ph_endpoint *ep, char *buf, size_t cap)
{
	int	n;

	if (cap > 0)
		buf[0] = '\0';
	switch (ep->kind) {
	case PH_EP_UNIX:
		n = snprintf(buf, cap, "%s%s", UNIX_PREFIX, ep->path);
		break;
	case PH_EP_VSOCK:
		if (ep->cid == PH_VSOCK_CID_ANY)
			n = snprintf(buf, cap, "%s:%u", VSOCK_PREFIX,
			    (unsigned int)ep->port);
		else
			n = snprintf(buf, cap, "%s%u:%u", VSOCK_PREFIX,
			    (unsigned int)ep->cid, (unsigned int)ep->port);
		break;
	default:
		return -EINVAL;
	}
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= cap) {
		if (cap > 0)
			buf[0] = '\0';
		return -ENOBUFS;
	}
	return 0;
}

int
ph_endpoint_sockaddr(const struct ph_endpoint *ep, struct sockaddr_storage *ss,
    socklen_t *sslen)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)ss;
	struct sockaddr_vm	*svm = (struct sockaddr_vm *)ss;
	size_t			 n;

	memset(ss, 0, sizeof(*ss));
	*sslen = 0;
	switch (ep->kind) {
	case PH_EP_UNIX:
		n = strnlen(ep->path, sizeof(ep->path));
		if (n == 0 || n >= sizeof(sun->sun_path))
			return -EINVAL;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, ep->path, n);
		*sslen = (socklen_t)sizeof(*sun);
		return 0;
	case PH_EP_VSOCK:
		svm->svm_family = AF_VSOCK;
		svm->svm_cid = ep->cid == PH_VSOCK_CID_ANY ?
		    VMADDR_CID_ANY : ep->cid;
		svm->svm_port = ep->port;
		*sslen = (socklen_t)sizeof(*svm);
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * Decides whether the unix socket file at path is stale: only a socket that
 * refuses connections is. A live socket, or a file that is not a socket at
 * all, is left alone.
 */
static int
ph_endpoint_unix_socket_stale(const struct sockaddr_storage *ss,
    socklen_t sslen, const char *path)
{
	struct stat	st;
	int		fd, rc;

	if (lstat(path, &st) == -1)
		return errno == ENOENT ? 1 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (connect(fd, (const struct sockaddr *)ss, sslen) == 0)
		rc = 0;
	else if (errno == ECONNREFUSED || errno == ENOENT)
		rc = 1;
	else if (errno == EAGAIN || errno == EINPROGRESS)
		rc = 0;		/* alive, its backlog is just full */
	else
		rc = -errno;
	close(fd);
	return rc;
}

/* Binds a unix socket, replacing a stale socket file once. */
static int
ph_endpoint_bind_unix(int fd, const struct ph_endpoint *ep,
    const struct sockaddr_storage *ss, socklen_t sslen)
{
	int	stale;

	if (bind(fd, (const struct sockaddr *)ss, sslen) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -errno;
	if ((stale = ph_endpoint_unix_socket_stale(ss, sslen, ep->path)) < 0)
		return stale;
	if (stale == 0)
		return -EADDRINUSE;
	if (unlink(ep->path) == -1 && errno != ENOENT)
		return -errno;
	if (bind(fd, (const struct sockaddr *)ss, sslen) == -1)
		return -errno;
	return 0;
}

int
ph_endpoint_listen(const struct ph_endpoint *ep, int backlog)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen;
	int			fd = -1, rc;

	if ((rc = ph_endpoint_sockaddr(ep, &ss, &sslen)) != 0)
		return rc;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -errno;
	if (ep->kind == PH_EP_UNIX)
		rc = ph_endpoint_bind_unix(fd, ep, &ss, sslen);
	else if (bind(fd, (const struct sockaddr *)&ss, sslen) == -1)
		rc = -errno;
	if (rc != 0)
		goto fail;
	if (listen(fd, backlog) == -1) {
		rc = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}

/* Milliseconds on the monotonic clock. */
static int64_t
ph_endpoint_now_ms(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Waits for a non-blocking connect to finish, until deadline (-1: no
 * deadline of ours), and returns its result.
 */
static int
ph_endpoint_connect_wait(int fd, int64_t deadline)
{
	struct pollfd	pfd;
	socklen_t	len;
	int		err, timeout, n;

	for (;;) {
		timeout = -1;
		if (deadline >= 0) {
			int64_t left = deadline - ph_endpoint_now_ms();

			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > 0x7fffffff ? 0x7fffffff : (int)left;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		pfd.revents = 0;
		n = poll(&pfd, 1, timeout);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -errno;
		if (n == 0)
			continue;	/* the deadline check returns */
		break;
	}
	err = 0;
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		return -errno;
	return -err;
}

/*
 * Connects with a non-blocking socket so that the timeout is ours, then
 * switches it back to blocking for the caller. A unix listener with a full
 * backlog answers EAGAIN at once; we retry that until the deadline.
 */
int
ph_endpoint_connect(const struct ph_endpoint *ep, int timeout_ms)
{
	struct sockaddr_storage	ss;
	socklen_t		sslen;
	int64_t			deadline = -1;
	int			fd = -1, rc, flags;

	if (timeout_ms < 0)
		return -EINVAL;
	if ((rc = ph_endpoint_sockaddr(ep, &ss, &sslen)) != 0)
		return rc;
	if (timeout_ms > 0)
		deadline = ph_endpoint_now_ms() + timeout_ms;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1)
		return -errno;
	for (;;) {
		if (connect(fd, (const struct sockaddr *)&ss, sslen) == 0) {
			rc = 0;
			break;
		}
		if (errno == EINPROGRESS || errno == EINTR) {
			rc = ph_endpoint_connect_wait(fd, deadline);
			break;
		}
		if (errno != EAGAIN || ep->kind != PH_EP_UNIX) {
			rc = -errno;
			break;
		}
		if (deadline >= 0 && ph_endpoint_now_ms() >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		(void)poll(NULL, 0, 10);
	}
	if (rc != 0)
		goto fail;
	if ((flags = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
		rc = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}
