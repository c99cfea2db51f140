/*
 * raw_send: the sending half of the benchmark's "raw limit".
 *
 * Listens on a unix stream socket. Each client writes one relative path
 * ended by a newline; raw_send forks, opens that path under ROOT and pushes
 * the whole file with sendfile(), then closes. No framing, no digest, no
 * compression: this is the least any file server on this transport can do,
 * so Porthole's throughput is compared against it.
 *
 * usage: raw_send ROOT SOCKET
 * Runs until killed. One line on stderr per failed request.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define RAW_MAX_REQUEST	4096
#define RAW_SENDFILE_MAX	0x7ffff000	/* the kernel's cap per call */

/* Reads "path\n" from the client into buf; returns 0 or -1 on a bad request. */
static int
raw_read_request(int fd, char *buf, size_t bufsz)
{
	size_t	 len = 0;
	ssize_t	 n;
	char	*nl;

	buf[0] = '\0';
	for (;;) {
		if (len + 1 >= bufsz)
			return -1;
		n = read(fd, buf + len, bufsz - 1 - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if ((nl = memchr(buf, '\n', len)) != NULL) {
			*nl = '\0';
			return 0;
		}
	}
}

/* Refuses absolute paths and any ".." component, so clients stay under ROOT. */
static int
raw_path_ok(const char *path)
{
	const char	*p = path;
	size_t		 n;

	if (*path == '\0' || *path == '/')
		return 0;
	while (*p != '\0') {
		n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return 0;
		p += n;
		if (*p == '/')
			p++;
	}
	return 1;
}

/* Serves one connection in a child process: request, open, sendfile, close. */
static int
raw_serve(int rootfd, int cfd)
{
	char		 path[RAW_MAX_REQUEST];
	struct stat	 st;
	off_t		 off = 0;
	ssize_t		 n;
	int		 fd = -1, rc = 1;

	if (raw_read_request(cfd, path, sizeof(path)) == -1) {
		fprintf(stderr, "raw_send: bad request\n");
		goto out;
	}
	if (!raw_path_ok(path)) {
		fprintf(stderr, "raw_send: refused path %s\n", path);
		goto out;
	}
	if ((fd = openat(rootfd, path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		fprintf(stderr, "raw_send: %s: %s\n", path, strerror(errno));
		goto out;
	}
	while (off < st.st_size) {
		size_t want = (size_t)(st.st_size - off);

		if (want > RAW_SENDFILE_MAX)
			want = RAW_SENDFILE_MAX;
		n = sendfile(cfd, fd, &off, want);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(stderr, "raw_send: sendfile %s: %s\n", path,
			    strerror(errno));
			goto out;
		}
		if (n == 0)
			break;	/* the file shrank: send what there was */
	}
	rc = 0;
out:
	if (fd != -1)
		close(fd);
	close(cfd);
	return rc;
}

int
main(int argc, char *argv[])
{
	struct sockaddr_un	 sun;
	int			 rootfd, lfd, cfd;
	pid_t			 pid;

	if (argc != 3) {
		fprintf(stderr, "usage: raw_send ROOT SOCKET\n");
		return 2;
	}
	if ((rootfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "raw_send: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(argv[2]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "raw_send: socket path too long\n");
		return 2;
	}
	strcpy(sun.sun_path, argv[2]);
	/* Children are reaped by the kernel; the server never waits for them. */
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
	    (unlink(argv[2]) == -1 && errno != ENOENT) ||
	    bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
	    listen(lfd, 256) == -1) {
		fprintf(stderr, "raw_send: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	for (;;) {
		if ((cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "raw_send: accept: %s\n", strerror(errno));
			return 1;
		}
		if ((pid = fork()) == -1) {
			fprintf(stderr, "raw_send: fork: %s\n", strerror(errno));
			close(cfd);
			continue;
		}
		if (pid == 0) {
			close(lfd);
			_exit(raw_serve(rootfd, cfd));
		}
		close(cfd);
	}
}
