/*
 * raw_recv: the receiving half of the benchmark's "raw limit".
 *
 * Connects to raw_send, asks for one path and moves the bytes from the
 * socket into OUT with splice() through a pipe, so they are never copied
 * into user space. OUT may be a file (created or truncated) or "-" for
 * standard output, which the benchmark points at /dev/null.
 *
 * usage: raw_recv [-f] [-e BYTES] SOCKET PATH OUT
 *   -f        fsync OUT before exiting (the file benchmarks time durable data)
 *   -e BYTES  fail unless exactly BYTES arrived
 * Exit 0 on success, 1 on any error (one line on stderr), 2 on usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RAW_PIPE_SIZE	(1024 * 1024)

/* Connects to the unix socket at path; returns the fd or -1. */
static int
raw_connect(const char *path)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Writes all of buf, retrying short writes. */
static int
raw_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Moves everything from sfd to ofd through the pipe; returns bytes or -1. */
static int64_t
raw_splice_all(int sfd, int ofd, const int pfd[2])
{
	int64_t	total = 0;
	ssize_t	in, out;

	for (;;) {
		in = splice(sfd, NULL, pfd[1], NULL, RAW_PIPE_SIZE,
		    SPLICE_F_MOVE | SPLICE_F_MORE);
		if (in == -1 && errno == EINTR)
			continue;
		if (in == -1)
			return -1;
		if (in == 0)
			return total;
		while (in > 0) {
			out = splice(pfd[0], NULL, ofd, NULL, (size_t)in,
			    SPLICE_F_MOVE | SPLICE_F_MORE);
			if (out == -1 && errno == EINTR)
				continue;
			if (out <= 0)
				return -1;
			in -= out;
			total += out;
		}
	}
}

int
main(int argc, char *argv[])
{
	const char	*sock, *path, *outpath;
	char		*req = NULL, *end;
	int64_t		 expect = -1, got;
	int		 ch, do_fsync = 0, sfd = -1, ofd = -1, rc = 1;
	int		 pfd[2] = { -1, -1 };
	size_t		 reqlen;

	while ((ch = getopt(argc, argv, "fe:")) != -1) {
		switch (ch) {
		case 'f':
			do_fsync = 1;
			break;
		case 'e':
			errno = 0;
			expect = strtoll(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || expect < 0) {
				fprintf(stderr, "raw_recv: bad -e %s\n", optarg);
				return 2;
			}
			break;
		default:
			goto usage;
		}
	}
	if (argc - optind != 3)
		goto usage;
	sock = argv[optind];
	path = argv[optind + 1];
	outpath = argv[optind + 2];

	if (strcmp(outpath, "-") == 0)
		ofd = STDOUT_FILENO;
	else if ((ofd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1) {
		fprintf(stderr, "raw_recv: %s: %s\n", outpath, strerror(errno));
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		fprintf(stderr, "raw_recv: pipe: %s\n", strerror(errno));
		goto out;
	}
	/* A bigger pipe means fewer splice round trips; the default is 64 KiB. */
	(void)fcntl(pfd[1], F_SETPIPE_SZ, RAW_PIPE_SIZE);
	if ((sfd = raw_connect(sock)) == -1) {
		fprintf(stderr, "raw_recv: connect %s: %s\n", sock,
		    strerror(errno));
		goto out;
	}
	reqlen = strlen(path) + 1;
	if ((req = malloc(reqlen + 1)) == NULL) {
		fprintf(stderr, "raw_recv: out of memory\n");
		goto out;
	}
	snprintf(req, reqlen + 1, "%s\n", path);
	if (raw_write_all(sfd, req, reqlen) == -1) {
		fprintf(stderr, "raw_recv: send request: %s\n", strerror(errno));
		goto out;
	}
	if ((got = raw_splice_all(sfd, ofd, pfd)) == -1) {
		fprintf(stderr, "raw_recv: splice: %s\n", strerror(errno));
		goto out;
	}
	if (expect >= 0 && got != expect) {
		fprintf(stderr, "raw_recv: %s: got %" PRId64 " bytes, expected %"
		    PRId64 "\n", path, got, expect);
		goto out;
	}
	if (do_fsync && fsync(ofd) == -1) {
		fprintf(stderr, "raw_recv: fsync %s: %s\n", outpath,
		    strerror(errno));
		goto out;
	}
	rc = 0;
out:
	free(req);
	if (sfd != -1)
		close(sfd);
	if (pfd[0] != -1)
		close(pfd[0]);
	if (pfd[1] != -1)
		close(pfd[1]);
	if (ofd != -1 && ofd != STDOUT_FILENO && close(ofd) == -1 && rc == 0) {
		fprintf(stderr, "raw_recv: close %s: %s\n", outpath,
		    strerror(errno));
		rc = 1;
	}
	return rc;
usage:
	fprintf(stderr, "usage: raw_recv [-f] [-e BYTES] SOCKET PATH OUT\n");
	return 2;
}
