/*
 * transfer.h: streaming one file for a GET, frame by frame.
 *
 * A transfer turns the byte range [offset, size) of an open file into DATA
 * frames (the header in the buffer, the bytes as a sendfile tail) or, when
 * the client asked for it, DATA_ZSTD frames of one complete zstd frame per
 * chunk. The caller asks for one frame at a time, whenever its output
 * buffer is empty, so memory stays bounded by one chunk whatever the file
 * size. After the last chunk a repository file is checked again: if its
 * size or mtime moved, the transfer ends with ERROR CHANGED instead of END.
 * A cached blob in zstd form goes out as its stored frames to a client that
 * takes DATA_ZSTD (no compression per request), decoded for one that does
 * not; a raw blob goes out with sendfile. A zstd blob that does not decode
 * is damaged: it is removed from the cache at once and the transfer ends
 * with ERROR INTEGRITY, so that the client's retry is served afresh.
 */
#ifndef HOSTD_TRANSFER_H
#define HOSTD_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zstd.h>

#include "proto.h"
#include "store.h"
#include "wbuf.h"

struct transfer;

/* What a transfer sends, and how. */
struct transfer_params {
	struct store_src src;		/* the source, its size, and its
					   digest when known (sent in END
					   if send_digest); moves to the
					   transfer */
	uint64_t	 offset;	/* first byte to send, <= the size */
	bool		 want_zstd;	/* the client takes DATA_ZSTD */
	ZSTD_CCtx	*cctx;		/* borrowed; NULL: no per-chunk zstd */
	ZSTD_DCtx	*dctx;		/* borrowed; needed for zstd blobs */
	void		(*wake)(void *); /* a fill grew or ended */
	void		*wake_arg;
	bool		 send_digest;	/* SHA256 negotiated: END has one */
	bool		 send_stale;	/* STALE negotiated: END may say so */
	bool		 stale;		/* the copy was not revalidated (END
					   also says so if a fill's parent
					   does) */
};

/*
 * Creates a transfer. It takes p->src's source (store_src_move()), even on
 * failure (it is released then), and leaves p->src empty. cctx and dctx, when given, must outlive the transfer.
 * Returns 0 and sets *out, or -ENOMEM.
 */
int	transfer_new(struct transfer_params *p, struct transfer **out);

/* Releases the source and frees t. Accepts NULL. */
void	transfer_free(struct transfer *t);

/*
 * Appends the next frame to w, which must be empty. Returns 1 when a DATA
 * or DATA_ZSTD frame was queued and more follow, 0 when the last frame
 * (END, or an ERROR: see transfer_result()) was queued, 2 when nothing can
 * be sent until the fill grows (wake is called then), or -ENOMEM (nothing
 * queued).
 */
int	transfer_fill(struct transfer *t, struct wbuf *w);

/* The outcome once transfer_fill() returned 0: PH_OK or the error sent. */
enum ph_err transfer_result(const struct transfer *t);

/* File bytes queued so far, counted before compression. */
uint64_t transfer_bytes(const struct transfer *t);

/* Frames sent as DATA_ZSTD so far, for debug logs. */
uint64_t transfer_zstd_frames(const struct transfer *t);

#endif /* HOSTD_TRANSFER_H */
