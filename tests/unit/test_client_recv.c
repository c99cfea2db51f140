/*
 * test_client_recv.c: how the porthole client (guest-agent/client.c) reads
 * replies: in blocks, with DATA payloads placed in the caller's buffer.
 * A forked server on a unix socket answers HELLO and then writes a script
 * of frames cut into pieces at chosen offsets, with pauses between them,
 * so that frames and headers arrive split in every way that matters.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

/* One connection's worth of reply bytes, written in pieces. */
struct script {
	const uint8_t	*bytes;
	size_t		 len;
	const size_t	*cuts;		/* ascending offsets to pause at */
	size_t		 ncuts;
	unsigned int	 pause_us;	/* after each piece */
};

struct server {
	char	 dir[64];
	char	 endpoint[128];
	pid_t	 pid;
};

/* Writes all of len bytes; the child exits on failure. */
static void
child_write(int fd, const uint8_t *p, size_t len)
{
	if (ph_io_write_full(fd, p, len) < 0)
		_exit(3);
}

/* Reads one request frame, whatever it is; the child exits on failure. */
static void
child_read_frame(int fd)
{
	uint8_t buf[PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD];
	size_t need = PH_HDR_LEN, got = 0;
	ssize_t n;

	while (got < need) {
		n = read(fd, buf + got, need - got);
		if (n <= 0)
			_exit(4);
		got += (size_t)n;
		if (got == PH_HDR_LEN && need == PH_HDR_LEN) {
			need += ((size_t)buf[4] << 24) | ((size_t)buf[5] << 16) |
			    ((size_t)buf[6] << 8) | buf[7];
			if (need > sizeof(buf))
				_exit(5);
		}
	}
}

/* The child: one connection per script, HELLO_ACK first, then the bytes. */
static void
child_serve(int lfd, const struct script *sc, size_t nsc)
{
	static uint8_t ack[PH_HDR_LEN + 64];
	struct ph_msg m;
	size_t i, k, off;
	ssize_t alen;
	uint8_t sink[4096];
	int fd;

	memset(&m, 0, sizeof(m));
	m.type = PH_HELLO_ACK;
	m.u.hello_ack.version = PH_PROTO_VERSION;
	m.u.hello_ack.features = PH_FEAT_ALL;
	m.u.hello_ack.max_payload = PH_MAX_PAYLOAD;
	snprintf(m.u.hello_ack.agent, sizeof(m.u.hello_ack.agent), "test");
	if ((alen = ph_message_encode(&m, ack, sizeof(ack))) < 0)
		_exit(2);
	for (i = 0; i < nsc; i++) {
		if ((fd = accept(lfd, NULL, NULL)) == -1)
			_exit(1);
		child_read_frame(fd);
		child_write(fd, ack, (size_t)alen);
		for (off = 0, k = 0; k <= sc[i].ncuts; k++) {
			size_t end = k < sc[i].ncuts ? sc[i].cuts[k] :
			    sc[i].len;

			child_write(fd, sc[i].bytes + off, end - off);
			off = end;
			usleep(sc[i].pause_us);
		}
		/* Done writing; wait for the client to go away. */
		shutdown(fd, SHUT_WR);
		while (read(fd, sink, sizeof(sink)) > 0)
			;
		close(fd);
	}
	_exit(0);
}

/* Starts the server child for the scripts. */
static void
server_start(struct server *s, const struct script *sc, size_t nsc)
{
	struct sockaddr_un sun;
	int lfd;

	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/ph-test-client.XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/s", s->dir);
	snprintf(s->endpoint, sizeof(s->endpoint), "unix:%s", sun.sun_path);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0)
		child_serve(lfd, sc, nsc);
	close(lfd);
}

/* Waits for the server child, which must have served every script. */
static void
server_stop(struct server *s)
{
	char path[128];
	int status = 0;

	assert_int_equal(waitpid(s->pid, &status, 0), s->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	snprintf(path, sizeof(path), "%s/s", s->dir);
	unlink(path);
	rmdir(s->dir);
}

/* Appends one encoded message to buf at *len. */
static void
put_msg(uint8_t *buf, size_t cap, size_t *len, const struct ph_msg *m)
{
	ssize_t n = ph_message_encode(m, buf + *len, cap - *len);

	assert_true(n > 0);
	*len += (size_t)n;
}

static void
put_pong(uint8_t *buf, size_t cap, size_t *len, uint64_t nonce)
{
	struct ph_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PH_PONG;
	m.u.ping_nonce = nonce;
	put_msg(buf, cap, len, &m);
}

static void
put_data(uint8_t *buf, size_t cap, size_t *len, uint8_t type,
    const uint8_t *bytes, uint32_t n)
{
	struct ph_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	m.u.data.bytes = bytes;
	m.u.data.len = n;
	put_msg(buf, cap, len, &m);
}

static void
expect_pong(struct client *c, struct ph_msg *m, uint64_t nonce)
{
	assert_int_equal(client_recv(c, m), PX_OK);
	assert_int_equal(m->type, PH_PONG);
	assert_int_equal(m->u.ping_nonce, nonce);
}

/*
 * Many small frames sent at once: several arrive per read, and more bytes
 * pass through than the buffer holds, so unread bytes are moved.
 */
static void
test_many_small_frames(void **state)
{
	enum { N = 100000 };
	size_t cap = (size_t)N * 16, len = 0, i;
	uint8_t *buf = malloc(cap);
	struct script sc;
	struct server srv;
	struct client *c = NULL;
	struct ph_msg *m = calloc(1, sizeof(*m));

	(void)state;
	assert_non_null(buf);
	assert_non_null(m);
	for (i = 0; i < N; i++)
		put_pong(buf, cap, &len, i);
	sc = (struct script){ buf, len, NULL, 0, 0 };
	server_start(&srv, &sc, 1);
	assert_int_equal(client_open(srv.endpoint, PH_FEAT_ALL, 0, &c), PX_OK);
	for (i = 0; i < N; i++)
		expect_pong(c, m, i);
	client_close(c);
	server_stop(&srv);
	free(buf);
	free(m);
}

/*
 * Large and small DATA, DATA_ZSTD and PONG frames, cut at the offsets
 * below their length with a pause of pause_us after each piece.
 */
static void
run_mixed(const size_t *cuts, size_t ncuts, unsigned int pause_us)
{
	size_t cap = 4 * (PH_HDR_LEN + PH_MAX_PAYLOAD), len = 0, i;
	uint8_t *buf = malloc(cap), *big = malloc(PH_DATA_CHUNK);
	uint8_t *slot = malloc(PH_DATA_CHUNK);
	struct ph_msg *m = calloc(1, sizeof(*m));
	struct client *c = NULL;
	struct server srv;
	struct script sc;

	assert_non_null(buf);
	assert_non_null(big);
	assert_non_null(slot);
	assert_non_null(m);
	for (i = 0; i < PH_DATA_CHUNK; i++)
		big[i] = (uint8_t)(i * 7 + (i >> 11));
	put_pong(buf, cap, &len, 1);
	put_data(buf, cap, &len, PH_DATA, big, PH_DATA_CHUNK);
	put_pong(buf, cap, &len, 2);
	put_data(buf, cap, &len, PH_DATA, big + 3, 5);
	put_data(buf, cap, &len, PH_DATA_ZSTD, big + 1, PH_DATA_CHUNK - 1);
	put_data(buf, cap, &len, PH_DATA, big + 9, PH_DATA_CHUNK - 9);
	put_pong(buf, cap, &len, 3);
	while (ncuts > 0 && cuts[ncuts - 1] >= len)
		ncuts--;
	sc = (struct script){ buf, len, cuts, ncuts, pause_us };
	server_start(&srv, &sc, 1);
	assert_int_equal(client_open(srv.endpoint, PH_FEAT_ALL, 0, &c), PX_OK);

	expect_pong(c, m, 1);
	memset(slot, 0, PH_DATA_CHUNK);
	assert_int_equal(client_recv_data(c, m, slot, PH_DATA_CHUNK), PX_OK);
	assert_int_equal(m->type, PH_DATA);
	assert_ptr_equal(m->u.data.bytes, slot);
	assert_int_equal(m->u.data.len, PH_DATA_CHUNK);
	assert_memory_equal(slot, big, PH_DATA_CHUNK);
	/* A frame that is not DATA is not put in the caller's buffer. */
	assert_int_equal(client_recv_data(c, m, slot, PH_DATA_CHUNK), PX_OK);
	assert_int_equal(m->type, PH_PONG);
	assert_int_equal(m->u.ping_nonce, 2);
	assert_int_equal(client_recv_data(c, m, slot, PH_DATA_CHUNK), PX_OK);
	assert_int_equal(m->type, PH_DATA);
	assert_ptr_equal(m->u.data.bytes, slot);
	assert_int_equal(m->u.data.len, 5);
	assert_memory_equal(slot, big + 3, 5);
	assert_int_equal(client_recv_data(c, m, slot, PH_DATA_CHUNK), PX_OK);
	assert_int_equal(m->type, PH_DATA_ZSTD);
	assert_true(m->u.data.bytes != slot);
	assert_int_equal(m->u.data.len, PH_DATA_CHUNK - 1);
	assert_memory_equal(m->u.data.bytes, big + 1, PH_DATA_CHUNK - 1);
	/* Without a buffer of its own, DATA lands in the client's. */
	assert_int_equal(client_recv(c, m), PX_OK);
	assert_int_equal(m->type, PH_DATA);
	assert_int_equal(m->u.data.len, PH_DATA_CHUNK - 9);
	assert_memory_equal(m->u.data.bytes, big + 9, PH_DATA_CHUNK - 9);
	expect_pong(c, m, 3);
	/* The server is done: end of stream. */
	assert_int_equal(client_recv(c, m), PX_CONN);
	assert_true(client_is_broken(c));

	client_close(c);
	server_stop(&srv);
	free(buf);
	free(big);
	free(slot);
	free(m);
}

static void
test_mixed_one_write(void **state)
{
	(void)state;
	run_mixed(NULL, 0, 0);
}

/* Cuts inside headers, right after them, and inside payloads. */
static void
test_mixed_split(void **state)
{
	static const size_t cuts[] = {
		3,			/* inside the first header */
		16 + 8,			/* right after DATA's header */
		16 + 8 + 70000,		/* inside DATA's payload */
		16 + 8 + PH_DATA_CHUNK + 12,	/* inside PONG's payload */
		16 + 8 + PH_DATA_CHUNK + 16 + 2,	/* small DATA's header */
	};

	(void)state;
	run_mixed(cuts, sizeof(cuts) / sizeof(cuts[0]), 20000);
}

/* Every 4093 bytes: frames start anywhere within a read. */
static void
test_mixed_odd_pieces(void **state)
{
	size_t cuts[1100], n = 0, off;

	(void)state;
	for (off = 4093; n < sizeof(cuts) / sizeof(cuts[0]); off += 4093)
		cuts[n++] = off;
	run_mixed(cuts, n, 500);
}

/* A header whose length is over its type's limit is refused as such. */
static void
test_oversized_header(void **state)
{
	static const uint8_t bad[] = {
		PH_MAGIC0, PH_MAGIC1, PH_PROTO_VERSION, PH_DATA,
		0x00, 0x10, 0x00, 0x01,		/* 1 MiB + 1 */
		0xaa, 0xbb,
	};
	struct ph_msg *m = calloc(1, sizeof(*m));
	uint8_t *slot = malloc(PH_DATA_CHUNK);
	struct client *c = NULL;
	struct server srv;
	struct script sc = { bad, sizeof(bad), NULL, 0, 0 };

	(void)state;
	assert_non_null(m);
	assert_non_null(slot);
	server_start(&srv, &sc, 1);
	assert_int_equal(client_open(srv.endpoint, PH_FEAT_ALL, 0, &c), PX_OK);
	assert_int_equal(client_recv_data(c, m, slot, PH_DATA_CHUNK),
	    PX_CONN);
	assert_true(client_is_broken(c));
	client_close(c);
	server_stop(&srv);
	free(slot);
	free(m);
}

/* The stream ends inside a frame: the connection is lost, not a frame. */
static void
test_eof_inside_frame(void **state)
{
	uint8_t buf[64];
	size_t len = 0;
	struct ph_msg *m = calloc(1, sizeof(*m));
	struct client *c = NULL;
	struct server srv;
	struct script sc;

	(void)state;
	assert_non_null(m);
	put_pong(buf, sizeof(buf), &len, 42);
	put_pong(buf, sizeof(buf), &len, 43);
	sc = (struct script){ buf, len - 3, NULL, 0, 0 };
	server_start(&srv, &sc, 1);
	assert_int_equal(client_open(srv.endpoint, PH_FEAT_ALL, 0, &c), PX_OK);
	expect_pong(c, m, 42);
	assert_int_equal(client_recv(c, m), PX_CONN);
	client_close(c);
	server_stop(&srv);
	free(m);
}

/*
 * Bytes read ahead on a connection that broke are not served on the next
 * one: after a reconnect the first frame is the new server's.
 */
static void
test_reconnect_drops_readahead(void **state)
{
	uint8_t first[64], second[64];
	size_t flen = 0, slen = 0;
	struct ph_msg *m = calloc(1, sizeof(*m));
	struct client *c = NULL;
	struct server srv;
	struct script sc[2];

	(void)state;
	assert_non_null(m);
	put_pong(first, sizeof(first), &flen, 1);
	put_pong(first, sizeof(first), &flen, 2);
	put_pong(second, sizeof(second), &slen, 7);
	sc[0] = (struct script){ first, flen, NULL, 0, 0 };
	sc[1] = (struct script){ second, slen, NULL, 0, 0 };
	server_start(&srv, sc, 2);
	assert_int_equal(client_open(srv.endpoint, PH_FEAT_ALL, 0, &c), PX_OK);
	expect_pong(c, m, 1);
	client_set_broken(c);
	assert_int_equal(client_connect(c), PX_OK);
	expect_pong(c, m, 7);
	client_close(c);
	server_stop(&srv);
	free(m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_small_frames),
		cmocka_unit_test(test_mixed_one_write),
		cmocka_unit_test(test_mixed_split),
		cmocka_unit_test(test_mixed_odd_pieces),
		cmocka_unit_test(test_oversized_header),
		cmocka_unit_test(test_eof_inside_frame),
		cmocka_unit_test(test_reconnect_drops_readahead),
	};

	/* The client may write to a server that has gone. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
