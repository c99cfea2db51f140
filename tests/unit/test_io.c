/*
 * test_io.c: blocking frame I/O over socket pairs and pipes, and the
 * scatter-list copies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

#define RECV_CAP	(PH_HDR_LEN + PH_MAX_PAYLOAD)

struct io_state {
	int		 sv[2];
	uint8_t		*buf;
	struct ph_msg	*m;
};

static int
io_setup(void **state)
{
	struct io_state	*s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->sv) == -1)
		return -1;
	s->buf = malloc(RECV_CAP);
	s->m = calloc(1, sizeof(*s->m));
	if (s->buf == NULL || s->m == NULL)
		return -1;
	*state = s;
	return 0;
}

static int
io_teardown(void **state)
{
	struct io_state	*s = *state;

	if (s->sv[0] >= 0)
		close(s->sv[0]);
	if (s->sv[1] >= 0)
		close(s->sv[1]);
	free(s->buf);
	free(s->m);
	free(s);
	return 0;
}

/* Closes the write side so the reader sees end of file. */
static void
close_writer(struct io_state *s)
{
	close(s->sv[0]);
	s->sv[0] = -1;
}

static void
test_send_recv_frames(void **state)
{
	struct io_state	*s = *state;
	struct ph_msg	*out = calloc(1, sizeof(*out));
	uint8_t		 scratch[PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD];

	assert_non_null(out);
	out->type = PH_PING;
	out->u.ping_nonce = 42;
	assert_int_equal(ph_io_send_msg(s->sv[0], out, scratch,
	    sizeof(scratch)), 0);
	memset(out, 0, sizeof(*out));
	out->type = PH_GET;
	out->u.get.offset = 7;
	strcpy(out->u.get.path, "/a/b");
	assert_int_equal(ph_io_send_msg(s->sv[0], out, scratch,
	    sizeof(scratch)), 0);
	memset(out, 0, sizeof(*out));
	out->type = PH_ERROR;
	out->u.error.code = PH_ERR_BUSY;
	strcpy(out->u.error.message, "queue full");
	assert_int_equal(ph_io_send_msg(s->sv[0], out, scratch,
	    sizeof(scratch)), 0);

	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m), 0);
	assert_int_equal(s->m->type, PH_PING);
	assert_int_equal(s->m->u.ping_nonce, 42);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m), 0);
	assert_int_equal(s->m->type, PH_GET);
	assert_int_equal(s->m->u.get.offset, 7);
	assert_string_equal(s->m->u.get.path, "/a/b");
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m), 0);
	assert_int_equal(s->m->type, PH_ERROR);
	assert_int_equal(s->m->u.error.code, PH_ERR_BUSY);
	assert_string_equal(s->m->u.error.message, "queue full");

	/* Then end of file between frames. */
	close_writer(s);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m),
	    -ECONNRESET);
	free(out);
}

/* A full 1 MiB DATA frame, written by a child while the parent reads. */
static void
test_large_frame(void **state)
{
	struct io_state	*s = *state;
	uint8_t		*data = malloc(PH_DATA_CHUNK);
	uint8_t		 hdr[PH_HDR_LEN];
	pid_t		 pid;
	size_t		 i;
	int		 status;

	assert_non_null(data);
	for (i = 0; i < PH_DATA_CHUNK; i++)
		data[i] = (uint8_t)(i * 7 + i / 251);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(s->sv[1]);
		ph_frame_header_write(hdr, PH_DATA, PH_DATA_CHUNK);
		if (ph_io_write_all(s->sv[0], hdr, sizeof(hdr)) != 0 ||
		    ph_io_write_all(s->sv[0], data, PH_DATA_CHUNK) != 0)
			_exit(1);
		_exit(0);
	}
	close_writer(s);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m), 0);
	assert_int_equal(s->m->type, PH_DATA);
	assert_int_equal(s->m->u.data.len, PH_DATA_CHUNK);
	assert_memory_equal(s->m->u.data.bytes, data, PH_DATA_CHUNK);
	assert_ptr_equal(s->m->u.data.bytes, s->buf + PH_HDR_LEN);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(data);
}

/* End of file at every point inside a frame is -ECONNRESET. */
static void
test_eof_mid_frame(void **state)
{
	struct io_state	*s = *state;
	struct ph_msg	*out = calloc(1, sizeof(*out));
	uint8_t		 frame[64];
	ssize_t		 n;
	size_t		 k;
	int		 sv[2];

	(void)s;
	assert_non_null(out);
	out->type = PH_STAT;
	strcpy(out->u.stat.path, "some/path");
	n = ph_message_encode(out, frame, sizeof(frame));
	assert_true(n > PH_HDR_LEN);
	for (k = 0; k < (size_t)n; k++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		assert_int_equal(ph_io_write_all(sv[0], frame, k), 0);
		close(sv[0]);
		assert_int_equal(ph_io_recv_msg(sv[1], s->buf, RECV_CAP, s->m),
		    -ECONNRESET);
		assert_int_equal(s->m->type, 0);
		close(sv[1]);
	}
	free(out);
}

/*
 * An over-limit length is refused from the header alone: the payload bytes
 * that follow stay unread in the socket.
 */
static void
test_oversize_header(void **state)
{
	struct io_state	*s = *state;
	uint8_t		 hdr[PH_HDR_LEN], rest[4];

	ph_frame_header_write(hdr, PH_GET, PH_MAX_REQUEST_PAYLOAD + 1);
	assert_int_equal(ph_io_write_all(s->sv[0], hdr, sizeof(hdr)), 0);
	assert_int_equal(ph_io_write_all(s->sv[0], "abcd", 4), 0);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m),
	    -EMSGSIZE);
	assert_int_equal(read(s->sv[1], rest, sizeof(rest)), 4);
	assert_memory_equal(rest, "abcd", 4);

	ph_frame_header_write(hdr, PH_DATA, 0xffffffffu);
	assert_int_equal(ph_io_write_all(s->sv[0], hdr, sizeof(hdr)), 0);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m),
	    -EMSGSIZE);
}

static void
test_header_errors(void **state)
{
	struct io_state	*s = *state;
	uint8_t		 hdr[PH_HDR_LEN];

	ph_frame_header_write(hdr, PH_PING, 8);
	hdr[2] = 9;
	assert_int_equal(ph_io_write_all(s->sv[0], hdr, sizeof(hdr)), 0);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m),
	    -EPROTONOSUPPORT);
	ph_frame_header_write(hdr, 0x42, 0);
	assert_int_equal(ph_io_write_all(s->sv[0], hdr, sizeof(hdr)), 0);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m),
	    -EPROTO);
	/* A valid header with a malformed payload. */
	ph_frame_header_write(hdr, PH_ERROR, 4);
	assert_int_equal(ph_io_write_all(s->sv[0], hdr, sizeof(hdr)), 0);
	assert_int_equal(ph_io_write_all(s->sv[0], "\0\0\0\0", 4), 0);
	assert_int_equal(ph_io_recv_msg(s->sv[1], s->buf, RECV_CAP, s->m),
	    -EPROTO);
}

/* A frame larger than the caller's buffer is -ENOBUFS, not an overflow. */
static void
test_recv_small_buffer(void **state)
{
	struct io_state	*s = *state;
	uint8_t		 hdr[PH_HDR_LEN], *small;

	small = malloc(PH_HDR_LEN + 4);
	assert_non_null(small);
	ph_frame_header_write(hdr, PH_PING, 8);
	assert_int_equal(ph_io_write_all(s->sv[0], hdr, sizeof(hdr)), 0);
	assert_int_equal(ph_io_write_all(s->sv[0], "12345678", 8), 0);
	assert_int_equal(ph_io_recv_msg(s->sv[1], small, PH_HDR_LEN + 4, s->m),
	    -ENOBUFS);
	assert_int_equal(ph_io_recv_msg(s->sv[1], small, 4, s->m), -ENOBUFS);
	free(small);
}

static void
test_send_errors(void **state)
{
	struct io_state	*s = *state;
	struct ph_msg	*out = calloc(1, sizeof(*out));
	uint8_t		 scratch[16];

	assert_non_null(out);
	out->type = PH_STAT;
	strcpy(out->u.stat.path, "a/path/longer/than/the/buffer");
	assert_int_equal(ph_io_send_msg(s->sv[0], out, scratch,
	    sizeof(scratch)), -ENOBUFS);
	out->type = 0x33;
	assert_int_equal(ph_io_send_msg(s->sv[0], out, scratch,
	    sizeof(scratch)), -EINVAL);
	free(out);
}

/* Writing to a closed peer is -EPIPE, without a SIGPIPE killing us. */
static void
test_write_closed_peer(void **state)
{
	struct io_state	*s = *state;
	void		(*old)(int);

	old = signal(SIGPIPE, SIG_DFL);
	close(s->sv[1]);
	s->sv[1] = -1;
	assert_int_equal(ph_io_write_all(s->sv[0], "x", 1), -EPIPE);
	signal(SIGPIPE, old);
	assert_int_equal(ph_io_write_all(-1, "x", 1), -EBADF);
}

/* Pipes are not sockets: the write falls back to write(2). */
static void
test_pipe(void **state)
{
	struct io_state	*s = *state;
	struct ph_msg	*out = calloc(1, sizeof(*out));
	uint8_t		 scratch[64];
	int		 p[2];

	assert_non_null(out);
	assert_int_equal(pipe(p), 0);
	out->type = PH_QUEUED;
	out->u.queued_position = 5;
	assert_int_equal(ph_io_send_msg(p[1], out, scratch, sizeof(scratch)),
	    0);
	close(p[1]);
	assert_int_equal(ph_io_recv_msg(p[0], s->buf, RECV_CAP, s->m), 0);
	assert_int_equal(s->m->type, PH_QUEUED);
	assert_int_equal(s->m->u.queued_position, 5);
	assert_int_equal(ph_io_recv_msg(p[0], s->buf, RECV_CAP, s->m),
	    -ECONNRESET);
	close(p[0]);
	free(out);
}

/*
 * ph_io_read_full() gathers what arrives in pieces until the buffer is full,
 * returns less only at end of file, and an error as -errno.
 */
static void
test_read_full(void **state)
{
	uint8_t	buf[16];
	int	p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	/* Two writes, one read: a pipe returns them in two pieces. */
	assert_int_equal(ph_io_write_full(p[1], "abcd", 4), 0);
	assert_int_equal(ph_io_write_full(p[1], "efgh", 4), 0);
	assert_int_equal(ph_io_read_full(p[0], buf, 6), 6);
	assert_memory_equal(buf, "abcdef", 6);
	assert_int_equal(ph_io_read_full(p[0], buf, 0), 0);
	close(p[1]);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(ph_io_read_full(p[0], buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "gh", 2);
	assert_int_equal(ph_io_read_full(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
	assert_int_equal(ph_io_read_full(p[0], buf, sizeof(buf)), -EBADF);
}

/* Three uneven pieces of one buffer, as a receive chain might be. */
static void
iov_three(uint8_t *mem, struct iovec iov[3])
{
	iov[0].iov_base = mem;
	iov[0].iov_len = 3;
	iov[1].iov_base = mem + 10;
	iov[1].iov_len = 5;
	iov[2].iov_base = mem + 20;
	iov[2].iov_len = 7;
}

static void
test_iov_slice(void **state)
{
	uint8_t mem[32];
	struct iovec iov[3], out[3];
	size_t n;

	(void)state;
	iov_three(mem, iov);
	assert_int_equal(ph_io_iov_len(iov, 3), 15);
	/* Bytes 2..10: the last of piece 0, all of 1, the first 2 of 2. */
	n = ph_io_iov_slice(iov, 3, 2, 8, out, 3);
	assert_int_equal(n, 3);
	assert_ptr_equal(out[0].iov_base, mem + 2);
	assert_int_equal(out[0].iov_len, 1);
	assert_ptr_equal(out[1].iov_base, mem + 10);
	assert_int_equal(out[1].iov_len, 5);
	assert_ptr_equal(out[2].iov_base, mem + 20);
	assert_int_equal(out[2].iov_len, 2);
	/* Too few slots: fewer bytes. */
	n = ph_io_iov_slice(iov, 3, 2, 8, out, 2);
	assert_int_equal(n, 2);
	assert_int_equal(ph_io_iov_len(out, n), 6);
	/* Past the end: nothing; running off the end: what there is. */
	assert_int_equal(ph_io_iov_slice(iov, 3, 15, 4, out, 3), 0);
	n = ph_io_iov_slice(iov, 3, 12, 100, out, 3);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].iov_len, 3);
}

static void
test_iov_copy(void **state)
{
	uint8_t mem[32], back[16];
	struct iovec iov[3];

	(void)state;
	memset(mem, '.', sizeof(mem));
	iov_three(mem, iov);
	assert_int_equal(ph_io_iov_write(iov, 3, 1, "abcdefghijklmn", 14), 14);
	assert_memory_equal(mem, ".ab.", 4);
	assert_memory_equal(mem + 10, "cdefg.", 6);
	assert_memory_equal(mem + 20, "hijklmn.", 8);
	assert_int_equal(ph_io_iov_read(iov, 3, 4, back, sizeof(back)), 11);
	assert_memory_equal(back, "defghijklmn", 11);
	/* A copy that runs off the end is short, never past it. */
	assert_int_equal(ph_io_iov_write(iov, 3, 13, "XYZW", 4), 2);
	assert_memory_equal(mem + 25, "XY.", 3);
	assert_int_equal(ph_io_iov_read(iov, 3, 40, back, 4), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_send_recv_frames,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_large_frame,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_eof_mid_frame,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_oversize_header,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_header_errors,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_recv_small_buffer,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_send_errors,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_write_closed_peer,
		    io_setup, io_teardown),
		cmocka_unit_test_setup_teardown(test_pipe,
		    io_setup, io_teardown),
		cmocka_unit_test(test_read_full),
		cmocka_unit_test(test_iov_slice),
		cmocka_unit_test(test_iov_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
