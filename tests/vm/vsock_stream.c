/*
 * vsock_stream: raw AF_VSOCK stream throughput, the baseline that Porthole's
 * transfers are compared with in the VM tests.  It runs only inside a test
 * guest (over the vsock loopback transport), never on the host.
 *
 *   vsock_stream recv PORT              accept one connection, read to EOF
 *   vsock_stream send CID PORT BYTES    connect, send BYTES, wait for the count
 *   vsock_stream loop PORT BYTES        both, over the loopback CID (1)
 *
 * Every 4096-byte block of the stream starts with its own offset as a
 * big-endian u64, so the receiver notices lost, repeated or reordered data
 * without the cost of hashing every byte.  After EOF the receiver answers
 * with the count it saw (u64 big-endian); the sender checks it and prints
 *   VSOCK-STREAM bytes=N ms=T mb_s=R
 * Exit status: 0 success, 1 failure (with a message on stderr), 2 usage.
 * It refuses to run unless PH_VM_GUEST=1 is in the environment, which only
 * the test guest's /init sets, so it never touches a real host's vsock.
 */

#include <sys/socket.h>
#include <sys/wait.h>

#include <linux/vm_sockets.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VS_BLOCK	4096
#define VS_CHUNK	(256 * 1024)

static _Noreturn void
usage(void)
{
	fprintf(stderr,
	    "usage: vsock_stream recv PORT\n"
	    "       vsock_stream send CID PORT BYTES\n"
	    "       vsock_stream loop PORT BYTES\n");
	exit(2);
}

static int
parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	*out = 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Listen on PORT for any CID; the socket is ready before we fork a sender. */
static int
listen_port(unsigned int port)
{
	struct sockaddr_vm sa;
	int fd;

	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("vsock_stream: socket(AF_VSOCK)");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = VMADDR_CID_ANY;
	sa.svm_port = port;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 1) < 0) {
		perror("vsock_stream: bind/listen");
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Check the offset stamps that fall into buf, which holds stream bytes
 * [pos, pos + n); stamps may straddle two reads, so go byte by byte over
 * only the first 8 bytes of each block.
 */
static int
check_stamps(const unsigned char *buf, size_t n, uint64_t pos)
{
	uint64_t blk, first, last, j, want;
	unsigned int k;

	if (n == 0)
		return 0;
	first = pos / VS_BLOCK;
	last = (pos + n - 1) / VS_BLOCK;
	for (blk = first; blk <= last; blk++) {
		for (k = 0; k < 8; k++) {
			j = blk * VS_BLOCK + k;
			if (j < pos || j >= pos + n)
				continue;
			want = ((blk * VS_BLOCK) >> (56 - 8 * k)) & 0xff;
			if (buf[j - pos] != want) {
				fprintf(stderr, "vsock_stream: corrupt stream "
				    "at byte %" PRIu64 "\n", j);
				return -1;
			}
		}
	}
	return 0;
}

/* Accept one connection, count and check its bytes, answer the count. */
static int
serve_one(int lfd)
{
	unsigned char *buf = NULL, ack[8];
	uint64_t total = 0;
	ssize_t r;
	int cfd = -1, rc = -1;

	cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (cfd < 0) {
		perror("vsock_stream: accept");
		goto out;
	}
	if ((buf = malloc(VS_CHUNK)) == NULL)
		goto out;
	for (;;) {
		r = read(cfd, buf, VS_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("vsock_stream: read");
			goto out;
		}
		if (r == 0)
			break;
		if (check_stamps(buf, (size_t)r, total) < 0)
			goto out;
		total += (uint64_t)r;
	}
	put_be64(ack, total);
	if (write_all(cfd, ack, sizeof(ack)) < 0) {
		perror("vsock_stream: write ack");
		goto out;
	}
	rc = 0;
out:
	free(buf);
	if (cfd >= 0)
		close(cfd);
	return rc;
}

/* Send BYTES to CID:PORT, wait for the receiver's count and report. */
static int
send_stream(unsigned int cid, unsigned int port, uint64_t bytes)
{
	struct sockaddr_vm sa;
	unsigned char *buf = NULL, ack[8];
	uint64_t sent = 0, got;
	size_t n, i, have = 0;
	ssize_t r;
	double t0, dt;
	int fd = -1, rc = -1;

	if ((buf = malloc(VS_CHUNK)) == NULL)
		goto out;
	for (i = 0; i < VS_CHUNK; i++)
		buf[i] = (unsigned char)(i * 31 + 7);
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("vsock_stream: socket(AF_VSOCK)");
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = cid;
	sa.svm_port = port;
	t0 = now_s();
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("vsock_stream: connect");
		goto out;
	}
	while (sent < bytes) {
		n = bytes - sent < VS_CHUNK ? (size_t)(bytes - sent) : VS_CHUNK;
		/* VS_CHUNK is a multiple of VS_BLOCK, so blocks align. */
		for (i = 0; i < n; i += VS_BLOCK)
			put_be64(buf + i, sent + i);
		if (write_all(fd, buf, n) < 0) {
			perror("vsock_stream: write");
			goto out;
		}
		sent += n;
	}
	if (shutdown(fd, SHUT_WR) < 0) {
		perror("vsock_stream: shutdown");
		goto out;
	}
	while (have < sizeof(ack)) {
		r = read(fd, ack + have, sizeof(ack) - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fprintf(stderr, "vsock_stream: no count from receiver\n");
			goto out;
		}
		have += (size_t)r;
	}
	dt = now_s() - t0;
	got = get_be64(ack);
	if (got != bytes) {
		fprintf(stderr, "vsock_stream: receiver counted %" PRIu64
		    " of %" PRIu64 " bytes\n", got, bytes);
		goto out;
	}
	printf("VSOCK-STREAM bytes=%" PRIu64 " ms=%.0f mb_s=%.1f\n", bytes,
	    dt * 1000.0, dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
	rc = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Loopback: the receiver is a child on a socket that already listens. */
static int
loop(unsigned int port, uint64_t bytes)
{
	pid_t pid;
	int lfd, status, rc;

	if ((lfd = listen_port(port)) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		perror("vsock_stream: fork");
		close(lfd);
		return -1;
	}
	if (pid == 0)
		_exit(serve_one(lfd) == 0 ? 0 : 1);
	close(lfd);
	rc = send_stream(VMADDR_CID_LOCAL, port, bytes);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "vsock_stream: receiver failed\n");
		rc = -1;
	}
	return rc;
}

int
main(int argc, char *argv[])
{
	uint64_t port, cid, bytes;
	int lfd, rc = -1;

	if (argc < 2)
		usage();
	if (getenv("PH_VM_GUEST") == NULL ||
	    strcmp(getenv("PH_VM_GUEST"), "1") != 0) {
		fprintf(stderr, "vsock_stream: runs only inside the VM test "
		    "guests (PH_VM_GUEST=1)\n");
		return 2;
	}
	if (strcmp(argv[1], "recv") == 0 && argc == 3) {
		if (parse_u64(argv[2], UINT32_MAX, &port) < 0)
			usage();
		if ((lfd = listen_port((unsigned int)port)) < 0)
			return 1;
		rc = serve_one(lfd);
		close(lfd);
	} else if (strcmp(argv[1], "send") == 0 && argc == 5) {
		if (parse_u64(argv[2], UINT32_MAX, &cid) < 0 ||
		    parse_u64(argv[3], UINT32_MAX, &port) < 0 ||
		    parse_u64(argv[4], UINT64_MAX, &bytes) < 0)
			usage();
		rc = send_stream((unsigned int)cid, (unsigned int)port, bytes);
	} else if (strcmp(argv[1], "loop") == 0 && argc == 4) {
		if (parse_u64(argv[2], UINT32_MAX, &port) < 0 ||
		    parse_u64(argv[3], UINT64_MAX, &bytes) < 0)
			usage();
		rc = loop((unsigned int)port, bytes);
	} else
		usage();
	return rc == 0 ? 0 : 1;
}
