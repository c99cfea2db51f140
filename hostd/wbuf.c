/*
 * wbuf.c: outgoing frames, with file data sent by sendfile() or read
 * straight into the reader's buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "wbuf.h"

/* Pieces of a destination one preadv() fills at most. */
#define WBUF_MAX_IOV		64
/* Small frames are encoded into this much reserved space. */
#define WBUF_SMALL_FRAME	(PH_HDR_LEN + 4096)

struct wbuf {
	uint8_t		*buf;
	size_t		 off;		/* first unsent byte */
	size_t		 len;		/* end of the bytes */
	size_t		 cap;
	int		 tail_fd;
	uint64_t	 tail_off;
	size_t		 tail_len;	/* bytes of the tail still to send */
	bool		 tail_pad;	/* the file failed: zeros instead */
	int		 file_err;
};

/* Zero bytes for padding a frame whose file ended early. */
static const uint8_t wbuf_zeros[64 * 1024];

int
wbuf_new(struct wbuf **out)
{
	struct wbuf *w;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->tail_fd = -1;
	*out = w;
	return 0;
}

void
wbuf_free(struct wbuf *w)
{
	if (w == NULL)
		return;
	free(w->buf);
	free(w);
}

/* Compacts, then grows the buffer so n more bytes fit at its end. */
uint8_t *
wbuf_reserve(struct wbuf *w, size_t n)
{
	size_t want;
	uint8_t *p;

	if (w->tail_len > 0)
		abort();	/* frames must not be queued behind a tail */
	if (w->off > 0) {
		memmove(w->buf, w->buf + w->off, w->len - w->off);
		w->len -= w->off;
		w->off = 0;
	}
	if (w->cap - w->len < n) {
		want = w->len + n;
		if (want < 2 * w->cap)
			want = 2 * w->cap;
		if ((p = realloc(w->buf, want)) == NULL)
			return NULL;
		w->buf = p;
		w->cap = want;
	}
	return w->buf + w->len;
}

void
wbuf_commit(struct wbuf *w, size_t n)
{
	if (n > w->cap - w->len)
		abort();
	w->len += n;
}

/* Encodes a small frame in place at the end of the buffer. */
int
wbuf_put_msg(struct wbuf *w, const struct ph_msg *m)
{
	uint8_t *p;
	ssize_t n;

	if ((p = wbuf_reserve(w, WBUF_SMALL_FRAME)) == NULL)
		return -ENOMEM;
	n = ph_message_encode(m, p, WBUF_SMALL_FRAME);
	if (n < 0)
		return (int)n;
	wbuf_commit(w, (size_t)n);
	return 0;
}

void
wbuf_set_tail(struct wbuf *w, int fd, uint64_t off, size_t len)
{
	if (w->tail_len > 0)
		abort();
	w->tail_fd = fd;
	w->tail_off = off;
	w->tail_len = len;
	w->tail_pad = false;
}

bool
wbuf_empty(const struct wbuf *w)
{
	return w->off == w->len && w->tail_len == 0;
}

int
wbuf_file_error(struct wbuf *w)
{
	int err = w->file_err;

	w->file_err = 0;
	return err;
}

void
wbuf_trim(struct wbuf *w)
{
	if (wbuf_empty(w) && w->cap > 0) {
		free(w->buf);
		w->buf = NULL;
		w->off = w->len = w->cap = 0;
	}
}

/* True for errors that say the socket, not the file, failed in sendfile. */
static bool
wbuf_socket_errno(int e)
{
	switch (e) {
	case EPIPE: case ECONNRESET: case ENOTCONN: case ESHUTDOWN:
	case ECONNABORTED: case ETIMEDOUT: case EHOSTUNREACH: case EHOSTDOWN:
	case ENETDOWN: case ENETUNREACH: case EBADF: case ENOTSOCK:
	case ENOBUFS: case ENOMEM:
		return true;
	default:
		return false;
	}
}

/* n bytes of the tail have gone out. */
static void
wbuf_tail_sent(struct wbuf *w, size_t n)
{
	w->tail_off += (uint64_t)n;
	w->tail_len -= n;
	if (w->tail_len == 0) {
		w->tail_fd = -1;
		w->tail_pad = false;
	}
}

/*
 * The tail's file ended early (r == 0) or failed (r < 0, errno): pad the
 * rest with zeros from now on and keep the error for wbuf_file_error().
 */
static void
wbuf_tail_failed(struct wbuf *w, ssize_t r)
{
	w->file_err = r == 0 ? -ENODATA : -errno;
	w->tail_pad = true;
}

/* Sends part of the file tail (or its zero padding); returns as send(). */
static ssize_t
wbuf_send_tail(struct wbuf *w, int sock, size_t n)
{
	ssize_t r;
	off_t off;

	if (w->tail_pad) {
		if (n > sizeof(wbuf_zeros))
			n = sizeof(wbuf_zeros);
		return send(sock, wbuf_zeros, n, MSG_NOSIGNAL);
	}
	off = (off_t)w->tail_off;
	r = sendfile(sock, w->tail_fd, &off, n);
	/*
	 * The file ended early or failed: switch to padding and report 0
	 * bytes sent, so the caller simply goes round again.
	 */
	if (r == 0) {
		wbuf_tail_failed(w, r);
	} else if (r < 0 && errno != EAGAIN && errno != EINTR &&
	    !wbuf_socket_errno(errno)) {
		wbuf_tail_failed(w, r);
		r = 0;
	}
	return r;
}

/* Sends the bytes, then the file tail: until done, full or out of budget. */
int
wbuf_flush(struct wbuf *w, int sock, size_t *budget)
{
	ssize_t r;
	size_t n;

	while (*budget > 0) {
		if (w->off < w->len) {
			n = w->len - w->off;
			if (n > *budget)
				n = *budget;
			/* Hint that the tail follows the DATA header. */
			r = send(sock, w->buf + w->off, n, MSG_NOSIGNAL |
			    (w->tail_len > 0 ? MSG_MORE : 0));
		} else if (w->tail_len > 0) {
			n = w->tail_len;
			if (n > *budget)
				n = *budget;
			r = wbuf_send_tail(w, sock, n);
		} else {
			w->off = w->len = 0;
			return 0;
		}
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ?
			    -EAGAIN : -errno;
		}
		*budget -= (size_t)r;
		if (w->off < w->len)
			w->off += (size_t)r;
		else
			wbuf_tail_sent(w, (size_t)r);
	}
	if (wbuf_empty(w)) {
		w->off = w->len = 0;
		return 0;
	}
	return 1;
}

/* Buffered bytes by copy, then the tail by preadv() into iov itself. */
size_t
wbuf_copy_out(struct wbuf *w, const struct iovec *iov, size_t niov,
    size_t skip, size_t len)
{
	struct iovec sub[WBUF_MAX_IOV];
	size_t done = 0, n, nsub;
	ssize_t r;

	while (done < len) {
		if (w->off < w->len) {
			n = w->len - w->off;
			if (n > len - done)
				n = len - done;
			n = ph_io_iov_write(iov, niov, skip + done,
			    w->buf + w->off, n);
			if (n == 0)
				break;		/* iov is shorter than len */
			w->off += n;
			done += n;
			continue;
		}
		if (w->tail_len == 0)
			break;
		n = w->tail_len < len - done ? w->tail_len : len - done;
		nsub = ph_io_iov_slice(iov, niov, skip + done, n, sub,
		    WBUF_MAX_IOV);
		if (nsub == 0)
			break;
		if (w->tail_pad) {
			r = 0;
			for (size_t i = 0; i < nsub; i++) {
				memset(sub[i].iov_base, 0, sub[i].iov_len);
				r += (ssize_t)sub[i].iov_len;
			}
		} else {
			r = preadv(w->tail_fd, sub, (int)nsub,
			    (off_t)w->tail_off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				wbuf_tail_failed(w, r);
				continue;
			}
		}
		wbuf_tail_sent(w, (size_t)r);
		done += (size_t)r;
	}
	if (wbuf_empty(w))
		w->off = w->len = 0;
	return done;
}
