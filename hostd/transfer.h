/*
 * transfer.h: streaming one file for a GET, frame by frame.
 *
 * A transfer turns the byte range [offset, size) of an open file into DATA
 * frames (the header in the buffer, the bytes as a sendfile tail) or, when
 * the client asked for it, DATA_ZSTD frames of one complete zstd frame per
 * chunk. The caller asks for one frame at a time, whenever its output
 * buffer is empty, so memory stays bounded by one chunk whatever the file
 * size. After the last chunk the file is checked again: if its size or
 * mtime moved, the transfer ends with ERROR CHANGED instead of END.
 */
#ifndef HOSTD_TRANSFER_H
#define HOSTD_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zstd.h>

#include "proto.h"
#include "wbuf.h"

struct transfer;

struct transfer_params {
	int		 fd;		/* open regular file; ownership moves */
	struct stat	 st;		/* its fstat as the digest saw it */
	uint64_t	 offset;	/* first byte to send, <= st.st_size */
	ZSTD_CCtx	*cctx;		/* borrowed; NULL: plain DATA only */
	bool		 has_digest;
	uint8_t		 sha256[PH_SHA256_LEN];
};

/*
 * Creates a transfer. It owns p->fd from then on, even on failure (it is
 * closed). cctx, when given, must outlive the transfer. Returns 0 and sets
 * *out, or -ENOMEM.
 */
int	transfer_new(const struct transfer_params *p, struct transfer **out);

/* Closes the file and frees t. Accepts NULL. */
void	transfer_free(struct transfer *t);

/*
 * Appends the next frame to w, which must be empty. Returns 1 when a DATA
 * or DATA_ZSTD frame was queued and more follow, 0 when the last frame
 * (END, or an ERROR: see transfer_result()) was queued, or -ENOMEM (nothing
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
