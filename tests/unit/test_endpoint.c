/*
 * test_endpoint.c: endpoint strings, and unix sockets in a temporary
 * directory. vsock is tested at the string level only: this suite must
 * never open an AF_VSOCK socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <linux/vm_sockets.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

struct good_case {
	const char	*in;
	enum ph_ep_kind	 kind;
	uint32_t	 cid;
	uint32_t	 port;
	const char	*path;
	const char	*canon;		/* ph_endpoint_format() of the result */
};

static const struct good_case good[] = {
	{ "vsock:2:7390", PH_EP_VSOCK, 2, 7390, "", "vsock:2:7390" },
	{ "vsock::7390", PH_EP_VSOCK, PH_VSOCK_CID_ANY, 7390, "",
	    "vsock::7390" },
	{ "vsock:0:0", PH_EP_VSOCK, 0, 0, "", "vsock:0:0" },
	{ "vsock:3:1", PH_EP_VSOCK, 3, 1, "", "vsock:3:1" },
	{ "vsock:4294967294:4294967295", PH_EP_VSOCK, 4294967294u,
	    4294967295u, "", "vsock:4294967294:4294967295" },
	{ "vsock:4294967295:5", PH_EP_VSOCK, PH_VSOCK_CID_ANY, 5, "",
	    "vsock::5" },
	{ "vsock:007:0010", PH_EP_VSOCK, 7, 10, "", "vsock:7:10" },
	{ "unix:/run/porthole/portholed.ctl", PH_EP_UNIX, 0, 0,
	    "/run/porthole/portholed.ctl",
	    "unix:/run/porthole/portholed.ctl" },
	{ "unix:rel.sock", PH_EP_UNIX, 0, 0, "rel.sock", "unix:rel.sock" },
	{ "unix:a:b:c", PH_EP_UNIX, 0, 0, "a:b:c", "unix:a:b:c" },
	{ "unix:/tmp/x y", PH_EP_UNIX, 0, 0, "/tmp/x y", "unix:/tmp/x y" },
};

static const char *const bad[] = {
	"",
	"vsock",
	"vsock:",
	"vsock::",
	"vsock:2",
	"vsock:2:",
	"vsock::x",
	"vsock:x:1",
	"vsock:2:7390x",
	"vsock:2x:7390",
	"vsock:2:7390:",
	"vsock:2:7390:1",
	"vsock:2::7390",
	"vsock:::7390",
	"vsock:-1:7390",
	"vsock:2:-1",
	"vsock:+2:7390",
	"vsock:2:+7390",
	"vsock: 2:7390",
	"vsock:2: 7390",
	"vsock:2:7390 ",
	"vsock:0x2:7390",
	"vsock:2:0x1ce",
	"vsock:4294967296:1",
	"vsock:1:4294967296",
	"vsock:99999999999999999999999:1",
	"vsock:1:18446744073709551617",
	"VSOCK:2:7390",
	"vsock2:7390",
	" vsock:2:7390",
	"unix:",
	"unix",
	"UNIX:/tmp/a",
	"tcp:127.0.0.1:7390",
	"/tmp/a.sock",
	"2:7390",
};

static void
test_parse_good(void **state)
{
	struct ph_endpoint	ep;
	char			buf[160];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (ph_endpoint_parse(good[i].in, &ep) != 0)
			fail_msg("refused \"%s\"", good[i].in);
		assert_int_equal(ep.kind, good[i].kind);
		assert_int_equal(ep.cid, good[i].cid);
		assert_int_equal(ep.port, good[i].port);
		assert_string_equal(ep.path, good[i].path);
		assert_int_equal(ph_endpoint_format(&ep, buf, sizeof(buf)), 0);
		assert_string_equal(buf, good[i].canon);
	}
}

static void
test_parse_bad(void **state)
{
	struct ph_endpoint	ep;
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&ep, 0xa5, sizeof(ep));
		if (ph_endpoint_parse(bad[i], &ep) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_int_equal(ep.kind, 0);
		assert_int_equal(ep.port, 0);
	}
	assert_int_equal(ph_endpoint_parse(NULL, &ep), -EINVAL);
}

/* A format of the parse of a canonical string gives the string back. */
static void
test_round_trip(void **state)
{
	struct ph_endpoint	ep, ep2;
	char			buf[160];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(ph_endpoint_parse(good[i].canon, &ep), 0);
		assert_int_equal(ph_endpoint_format(&ep, buf, sizeof(buf)), 0);
		assert_string_equal(buf, good[i].canon);
		assert_int_equal(ph_endpoint_parse(buf, &ep2), 0);
		assert_memory_equal(&ep, &ep2, sizeof(ep));
	}
	assert_int_equal(ph_endpoint_parse(PH_DEFAULT_GUEST_ENDPOINT, &ep), 0);
	assert_int_equal(ep.cid, 2);
	assert_int_equal(ep.port, PH_DEFAULT_PORT);
	assert_int_equal(ph_endpoint_parse(PH_DEFAULT_LISTEN_ENDPOINT, &ep),
	    0);
	assert_int_equal(ep.cid, PH_VSOCK_CID_ANY);
	assert_int_equal(ep.port, PH_DEFAULT_PORT);
}

/* sun_path holds 107 bytes and the NUL. */
static void
test_unix_path_length(void **state)
{
	struct ph_endpoint	ep;
	char			s[5 + 120];
	char			buf[200];
	size_t			cap;

	(void)state;
	memcpy(s, "unix:", 5);
	memset(s + 5, 'p', 107);
	s[5 + 107] = '\0';
	assert_int_equal(ph_endpoint_parse(s, &ep), 0);
	assert_int_equal(strlen(ep.path), 107);
	assert_int_equal(ph_endpoint_format(&ep, buf, sizeof(buf)), 0);
	assert_string_equal(buf, s);
	/* Every buffer too small is -ENOBUFS, with an empty string. */
	for (cap = 0; cap <= strlen(s); cap++) {
		memset(buf, 'z', sizeof(buf));
		assert_int_equal(ph_endpoint_format(&ep, buf, cap), -ENOBUFS);
		if (cap > 0)
			assert_string_equal(buf, "");
	}
	s[5 + 107] = 'p';
	s[5 + 108] = '\0';
	assert_int_equal(ph_endpoint_parse(s, &ep), -EINVAL);
}

static void
test_format_bad_kind(void **state)
{
	struct ph_endpoint	ep;
	char			buf[64];

	(void)state;
	memset(&ep, 0, sizeof(ep));
	assert_int_equal(ph_endpoint_format(&ep, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(ph_endpoint_listen(&ep, 1), -EINVAL);
	assert_int_equal(ph_endpoint_connect(&ep, 100), -EINVAL);
	ep.kind = 99;
	assert_int_equal(ph_endpoint_format(&ep, buf, sizeof(buf)), -EINVAL);
}

/* A temporary directory per test, removed with its socket files after. */
struct sock_dir {
	char	dir[64];
	char	path[128];
	char	spec[140];
};

static int
dir_setup(void **state)
{
	struct sock_dir	*d = calloc(1, sizeof(*d));
	const char	*tmp = getenv("TMPDIR");

	if (d == NULL)
		return -1;
	/* sun_path is short: fall back to /tmp if TMPDIR is long. */
	if (tmp == NULL || *tmp == '\0' || strlen(tmp) > 40)
		tmp = "/tmp";
	snprintf(d->dir, sizeof(d->dir), "%s/ph-ep-XXXXXX", tmp);
	if (mkdtemp(d->dir) == NULL) {
		free(d);
		return -1;
	}
	snprintf(d->path, sizeof(d->path), "%s/s.sock", d->dir);
	snprintf(d->spec, sizeof(d->spec), "unix:%s", d->path);
	*state = d;
	return 0;
}

static int
dir_teardown(void **state)
{
	struct sock_dir	*d = *state;

	(void)unlink(d->path);
	(void)rmdir(d->dir);
	free(d);
	return 0;
}

static void
assert_fd_flags(int fd, bool nonblock)
{
	int	fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);

	assert_true(fl != -1 && fdfl != -1);
	assert_int_equal((fl & O_NONBLOCK) != 0, nonblock);
	assert_true((fdfl & FD_CLOEXEC) != 0);
}

static void
test_unix_listen_connect(void **state)
{
	struct sock_dir		*d = *state;
	struct ph_endpoint	 ep;
	int			 lfd, cfd, afd;
	char			 c = 0;

	assert_int_equal(ph_endpoint_parse(d->spec, &ep), 0);
	lfd = ph_endpoint_listen(&ep, 4);
	assert_true(lfd >= 0);
	assert_fd_flags(lfd, true);
	cfd = ph_endpoint_connect(&ep, 1000);
	assert_true(cfd >= 0);
	assert_fd_flags(cfd, false);
	afd = accept(lfd, NULL, NULL);
	assert_true(afd >= 0);
	assert_int_equal(write(cfd, "k", 1), 1);
	assert_int_equal(read(afd, &c, 1), 1);
	assert_int_equal(c, 'k');

	/* A second listener on a live socket must not steal it. */
	assert_int_equal(ph_endpoint_listen(&ep, 4), -EADDRINUSE);
	close(afd);
	close(cfd);

	/* Connecting without a timeout works too. */
	cfd = ph_endpoint_connect(&ep, 0);
	assert_true(cfd >= 0);
	assert_fd_flags(cfd, false);
	close(cfd);
	close(lfd);
}

/* A socket file nobody listens on is stale and gets replaced. */
static void
test_unix_stale_socket(void **state)
{
	struct sock_dir		*d = *state;
	struct ph_endpoint	 ep;
	struct sockaddr_un	 sun;
	int			 fd, lfd, cfd;

	assert_int_equal(ph_endpoint_parse(d->spec, &ep), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, d->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);	/* leaves the file behind, like a crashed daemon */

	assert_int_equal(ph_endpoint_connect(&ep, 500), -ECONNREFUSED);
	lfd = ph_endpoint_listen(&ep, 4);
	assert_true(lfd >= 0);
	cfd = ph_endpoint_connect(&ep, 500);
	assert_true(cfd >= 0);
	close(cfd);
	close(lfd);
}

/* A regular file in the way is never removed. */
static void
test_unix_not_a_socket(void **state)
{
	struct sock_dir		*d = *state;
	struct ph_endpoint	 ep;
	struct stat		 st;
	int			 fd;

	assert_int_equal(ph_endpoint_parse(d->spec, &ep), 0);
	fd = open(d->path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(ph_endpoint_listen(&ep, 4), -EADDRINUSE);
	assert_int_equal(stat(d->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 4);
}

static void
test_unix_connect_errors(void **state)
{
	struct sock_dir		*d = *state;
	struct ph_endpoint	 ep;
	char			 spec[160];

	assert_int_equal(ph_endpoint_parse(d->spec, &ep), 0);
	assert_int_equal(ph_endpoint_connect(&ep, 200), -ENOENT);
	assert_int_equal(ph_endpoint_connect(&ep, -1), -EINVAL);
	snprintf(spec, sizeof(spec), "unix:%s/no/such/dir/s", d->dir);
	assert_int_equal(ph_endpoint_parse(spec, &ep), 0);
	assert_int_equal(ph_endpoint_listen(&ep, 4), -ENOENT);
}

/*
 * A listener with a full backlog never accepts: the connect must give up
 * after its timeout rather than hang.
 */
static void
test_unix_connect_timeout(void **state)
{
	struct sock_dir		*d = *state;
	struct ph_endpoint	 ep;
	struct timespec		 t0, t1;
	int			 lfd, fds[8], n = 0, rc;
	long			 ms;

	assert_int_equal(ph_endpoint_parse(d->spec, &ep), 0);
	lfd = ph_endpoint_listen(&ep, 0);
	assert_true(lfd >= 0);
	/* Fill the backlog. */
	for (;;) {
		assert_true(n < 8);
		rc = ph_endpoint_connect(&ep, 50);
		if (rc < 0)
			break;
		fds[n++] = rc;
	}
	assert_int_equal(rc, -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(ph_endpoint_connect(&ep, 300), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 250 && ms < 5000);
	while (n > 0)
		close(fds[--n]);
	close(lfd);
}

/*
 * The socket address behind each endpoint kind, the longest unix path that
 * fits and the ones that do not, and a bad kind, which leaves nothing
 * behind. Only fills structures: no vsock socket is opened.
 */
static void
test_sockaddr(void **state)
{
	struct sockaddr_storage	 ss, zero;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ss;
	struct sockaddr_vm	*svm = (struct sockaddr_vm *)&ss;
	struct ph_endpoint	 ep;
	socklen_t		 len;

	(void)state;
	memset(&zero, 0, sizeof(zero));
	assert_int_equal(ph_endpoint_parse("unix:/run/x.sock", &ep), 0);
	memset(&ss, 0xa5, sizeof(ss));
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_un));
	assert_int_equal(sun->sun_family, AF_UNIX);
	assert_string_equal(sun->sun_path, "/run/x.sock");
	/* The rest of the structure is zeroed, not left as it was. */
	assert_int_equal(sun->sun_path[sizeof(sun->sun_path) - 1], 0);

	assert_int_equal(ph_endpoint_parse("vsock:3:7390", &ep), 0);
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), 0);
	assert_int_equal(len, sizeof(struct sockaddr_vm));
	assert_int_equal(svm->svm_family, AF_VSOCK);
	assert_int_equal(svm->svm_cid, 3);
	assert_int_equal(svm->svm_port, 7390);
	assert_int_equal(ph_endpoint_parse("vsock::5", &ep), 0);
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), 0);
	assert_int_equal(svm->svm_cid, VMADDR_CID_ANY);
	assert_int_equal(svm->svm_port, 5);

	/* sun_path holds 107 bytes and the NUL. */
	memset(&ep, 0, sizeof(ep));
	ep.kind = PH_EP_UNIX;
	memset(ep.path, 'p', 107);
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), 0);
	assert_int_equal(strlen(sun->sun_path), 107);
	memset(ep.path, 'p', sizeof(ep.path));
	len = 99;
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), -EINVAL);
	assert_int_equal(len, 0);
	assert_memory_equal(&ss, &zero, sizeof(ss));
	memset(ep.path, 0, sizeof(ep.path));
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), -EINVAL);
	ep.kind = (enum ph_ep_kind)0;
	assert_int_equal(ph_endpoint_sockaddr(&ep, &ss, &len), -EINVAL);
	assert_int_equal(len, 0);
	assert_memory_equal(&ss, &zero, sizeof(ss));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unix_path_length),
		cmocka_unit_test(test_format_bad_kind),
		cmocka_unit_test(test_sockaddr),
		cmocka_unit_test_setup_teardown(test_unix_listen_connect,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_unix_stale_socket,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_unix_not_a_socket,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_unix_connect_errors,
		    dir_setup, dir_teardown),
		cmocka_unit_test_setup_teardown(test_unix_connect_timeout,
		    dir_setup, dir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
