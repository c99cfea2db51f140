/*
 * wbuf.h: a connection's outgoing bytes.
 *
 * Whole frames are appended to a byte buffer. The last frame may instead
 * end in a "file tail": a range of a file that goes out with sendfile() to
 * a socket, or is read with preadv() straight into the reader's memory (an
 * in-process peer's buffers), so file data is never copied in between. Only one tail may be pending;
 * nothing can be appended until it has been sent, so the end of the buffer
 * is always a frame boundary once the tail is gone.
 *
 * If the file ends early or cannot be read while its tail is sent, the rest
 * of the tail is sent as zero bytes so the frame stays well formed, and the
 * error is kept for wbuf_file_error(): the transfer must then end with an
 * ERROR frame, never with END.
 */
#ifndef HOSTD_WBUF_H
#define HOSTD_WBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "proto.h"

struct wbuf;

/* Creates an empty buffer. Returns 0 and sets *out, or -ENOMEM. */
int	wbuf_new(struct wbuf **out);

/* Frees the buffer (not the tail's file, which the caller owns). NULL ok. */
void	wbuf_free(struct wbuf *w);

/*
 * Returns space for n more bytes at the end of the buffer, or NULL if out
 * of memory. The bytes count once wbuf_commit() is called. Must not be
 * called while a file tail is pending.
 */
uint8_t	*wbuf_reserve(struct wbuf *w, size_t n);

/* Adds n bytes written into the space from wbuf_reserve(). */
void	wbuf_commit(struct wbuf *w, size_t n);

/*
 * Encodes m as a whole frame at the end of the buffer. For small frames
 * (everything but DATA, DATA_ZSTD, LIST_REPLY and CTL_REPLY). Returns 0,
 * -ENOMEM, or the encoder's error.
 */
int	wbuf_put_msg(struct wbuf *w, const struct ph_msg *m);

/*
 * Queues len bytes of fd at offset off as the tail, after everything in the
 * buffer. The caller keeps fd open until the tail is sent or the buffer is
 * freed.
 */
void	wbuf_set_tail(struct wbuf *w, int fd, uint64_t off, size_t len);

/* True when nothing at all is waiting to be sent. */
bool	wbuf_empty(const struct wbuf *w);

/*
 * Sends to the non-blocking socket sock, at most *budget bytes, and lowers
 * *budget by what went out. Returns 0 when everything was sent, 1 when the
 * budget ran out first, -EAGAIN when the socket is full, or a negative
 * errno when the socket failed (the connection is then unusable).
 */
int	wbuf_flush(struct wbuf *w, int sock, size_t *budget);

/*
 * Copies up to len queued bytes into iov (niov pieces), from byte skip of
 * iov on: buffered bytes with memcpy, the file tail with preadv() into iov
 * itself. Returns the bytes copied; fewer than len only when the buffer
 * is now empty. File errors are handled as for wbuf_flush().
 */
size_t	wbuf_copy_out(struct wbuf *w, const struct iovec *iov, size_t niov,
	    size_t skip, size_t len);

/*
 * The file error seen while sending a tail (-ENODATA if the file ended
 * early, else the read error), or 0; the error is cleared.
 */
int	wbuf_file_error(struct wbuf *w);

/*
 * Releases the buffer once it is empty, so idle and waiting connections
 * stay small; the next append allocates again.
 */
void	wbuf_trim(struct wbuf *w);

#endif /* HOSTD_WBUF_H */
