/*
 * transfer.c: DATA / DATA_ZSTD frames for one GET.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "repo.h"
#include "store.h"
#include "store_fill.h"
#include "transfer.h"

/* After this many chunks in a row that did not shrink, stop trying. */
#define TRANSFER_ZSTD_GIVE_UP	4

struct transfer {
	struct store_src src;		/* owned: fd, blob or fill */
	int		 fd;		/* what is read: src's fd, the blob's or
					   the fill's */
	bool		 frames;	/* the blob is zstd frames */
	void		(*wake)(void *);
	void		*wake_arg;
	uint64_t	 pos;		/* next byte to queue */
	uint64_t	 end;		/* content size */
	uint64_t	 sent;
	bool		 want_zstd;
	ZSTD_CCtx	*cctx;		/* NULL: compression off */
	ZSTD_DCtx	*dctx;
	uint8_t		*zbuf;		/* one compressed chunk */
	size_t		 zcap;
	unsigned int	 incompressible;
	uint64_t	 zframes;
	bool		 send_digest;	/* SHA256 was negotiated */
	bool		 send_stale;	/* STALE was negotiated */
	bool		 stale;
	enum ph_err	 result;
};

/* Takes over the source, positioned at the offset. */
int
transfer_new(struct transfer_params *p, struct transfer **out)
{
	struct transfer *t;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		store_src_release(&p->src);
		return -ENOMEM;
	}
	store_src_init(&t->src);
	store_src_move(&t->src, &p->src);
	t->pos = p->offset;
	t->end = (uint64_t)t->src.st.st_size;
	t->want_zstd = p->want_zstd;
	t->cctx = p->cctx;
	t->dctx = p->dctx;
	t->send_digest = p->send_digest;
	t->send_stale = p->send_stale;
	t->stale = p->stale;
	t->src.has_digest = t->src.has_digest && p->send_digest;
	if (t->src.fd >= 0)
		t->fd = t->src.fd;
	else if (t->src.blob != NULL) {
		t->fd = cache_blob_fd(t->src.blob);
		t->frames = cache_blob_form(t->src.blob) == CACHE_FORM_ZSTD;
		/* Known incompressible: no point trying per chunk. */
		if (t->frames || cache_blob_incompressible(t->src.blob))
			t->cctx = NULL;
	} else {
		t->fd = store_fill_fd(t->src.fill);
		t->wake = p->wake;
		t->wake_arg = p->wake_arg;
	}
	if (!t->frames)
		(void)posix_fadvise(t->fd, (off_t)t->pos, 0,
		    POSIX_FADV_SEQUENTIAL);
	*out = t;
	return 0;
}

void
transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	if (t->src.fill != NULL)
		store_fill_watch(t->src.fill, NULL, t->wake_arg);
	store_src_release(&t->src);
	free(t->zbuf);
	free(t);
}

enum ph_err
transfer_result(const struct transfer *t)
{
	return t->result;
}

uint64_t
transfer_bytes(const struct transfer *t)
{
	return t->sent;
}

uint64_t
transfer_zstd_frames(const struct transfer *t)
{
	return t->zframes;
}

/* Ends the transfer with an ERROR frame. */
static int
transfer_error(struct transfer *t, struct wbuf *w, enum ph_err code,
    const char *msg)
{
	struct ph_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PH_ERROR;
	m.u.error.code = (uint16_t)code;
	snprintf(m.u.error.message, sizeof(m.u.error.message), "%s", msg);
	if (wbuf_put_msg(w, &m) < 0)
		return -ENOMEM;
	t->result = code;
	return 0;
}

/* Ends the transfer with END, unless the file changed while it was sent. */
static int
transfer_finish(struct transfer *t, struct wbuf *w)
{
	struct stat now;
	struct ph_msg m;

	if (t->src.fd >= 0) {
		if (fstat(t->fd, &now) < 0)
			return transfer_error(t, w, PH_ERR_IO,
			    strerror(errno));
		if (now.st_size != t->src.st.st_size ||
		    repo_ns(&now.st_mtim) != repo_ns(&t->src.st.st_mtim))
			return transfer_error(t, w, PH_ERR_CHANGED,
			    "the file changed while it was being sent");
	}
	memset(&m, 0, sizeof(m));
	m.type = PH_END;
	m.u.end.bytes = t->sent;
	m.u.end.has_digest = t->src.has_digest;
	if (t->src.has_digest)
		memcpy(m.u.end.sha256, t->src.sha256, PH_SHA256_LEN);
	m.u.end.stale = t->send_stale &&
	    (t->stale || (t->src.fill != NULL &&
	    store_fill_stale(t->src.fill)));
	if (wbuf_put_msg(w, &m) < 0)
		return -ENOMEM;
	t->result = PH_OK;
	return 0;
}

/*
 * The zstd blob does not decode: it is damaged on disk. It leaves the
 * cache now (our own finding, not a client's claim) and the client hears
 * INTEGRITY, which its retry answers with a fresh copy.
 */
static int
transfer_damaged(struct transfer *t, struct wbuf *w, const char *what)
{
	char msg[160];

	(void)cache_blob_remove(t->src.blob);
	snprintf(msg, sizeof(msg), "the cached copy is damaged (%s): removed "
	    "from the cache; ask again", what);
	return transfer_error(t, w, PH_ERR_INTEGRITY, msg);
}

/* Grows the compressed-chunk buffer to n bytes. */
static int
transfer_zbuf(struct transfer *t, size_t n)
{
	uint8_t *p;

	if (t->zcap >= n)
		return 0;
	if ((p = realloc(t->zbuf, n)) == NULL)
		return -ENOMEM;
	t->zbuf = p;
	t->zcap = n;
	return 0;
}

/*
 * Queues one chunk read into the buffer and, when that saves at least a
 * tenth, replaced by its zstd frame.
 */
static int
transfer_fill_zstd(struct transfer *t, struct wbuf *w, size_t chunk)
{
	size_t cap = chunk - chunk / 10, z;
	uint8_t *p;
	int err;

	if (transfer_zbuf(t, PH_DATA_CHUNK) < 0)
		return -ENOMEM;
	if ((p = wbuf_reserve(w, PH_HDR_LEN + chunk)) == NULL)
		return -ENOMEM;
	if ((err = ph_io_pread_full(t->fd, p + PH_HDR_LEN, chunk,
	    t->pos)) < 0) {
		if (err == -ENODATA)
			return transfer_error(t, w, PH_ERR_CHANGED,
			    "the file shrank while it was being sent");
		return transfer_error(t, w, PH_ERR_IO, strerror(-err));
	}
	z = ZSTD_compress2(t->cctx, t->zbuf, cap, p + PH_HDR_LEN, chunk);
	if (!ZSTD_isError(z) && z > 0 && z <= cap) {
		memcpy(p + PH_HDR_LEN, t->zbuf, z);
		ph_frame_header_write(p, PH_DATA_ZSTD, (uint32_t)z);
		wbuf_commit(w, PH_HDR_LEN + z);
		t->incompressible = 0;
		t->zframes++;
	} else {
		ph_frame_header_write(p, PH_DATA, (uint32_t)chunk);
		wbuf_commit(w, PH_HDR_LEN + chunk);
		if (++t->incompressible >= TRANSFER_ZSTD_GIVE_UP) {
			/* Not worth the CPU: plain sendfile from here on. */
			t->cctx = NULL;
		}
	}
	t->pos += chunk;
	t->sent += chunk;
	return 1;
}

/*
 * Zstd blob: the next chunk as its stored frame when the client takes
 * DATA_ZSTD and the chunk starts at the frame, else decoded into DATA.
 */
static int
transfer_fill_frame(struct transfer *t, struct wbuf *w)
{
	uint32_t idx = (uint32_t)(t->pos / CACHE_CHUNK), zlen;
	uint64_t base = (uint64_t)idx * CACHE_CHUNK, zoff;
	size_t clen, skip, n;
	unsigned long long declared;
	uint8_t *p;
	int err;

	clen = t->end - base < CACHE_CHUNK ? (size_t)(t->end - base) :
	    CACHE_CHUNK;
	skip = (size_t)(t->pos - base);
	if (cache_blob_frame(t->src.blob, idx, &zoff, &zlen) < 0)
		return transfer_damaged(t, w, "no frame for this offset");
	if (t->want_zstd && skip == 0 && zlen <= PH_MAX_PAYLOAD) {
		if ((p = wbuf_reserve(w, PH_HDR_LEN)) == NULL)
			return -ENOMEM;
		ph_frame_header_write(p, PH_DATA_ZSTD, zlen);
		wbuf_commit(w, PH_HDR_LEN);
		wbuf_set_tail(w, t->fd, zoff, zlen);
		t->zframes++;
		t->pos += clen;
		t->sent += clen;
		return 1;
	}
	/* A frame larger than the chunk bound is a corrupt index. */
	if (zlen > ZSTD_compressBound(CACHE_CHUNK))
		return transfer_damaged(t, w, "a frame larger than its chunk");
	if (t->dctx == NULL || transfer_zbuf(t, zlen) < 0)
		return -ENOMEM;
	if ((err = ph_io_pread_full(t->fd, t->zbuf, zlen, zoff)) < 0) {
		if (err == -ENODATA)
			return transfer_damaged(t, w, "truncated");
		return transfer_error(t, w, PH_ERR_IO, strerror(-err));
	}
	declared = ZSTD_getFrameContentSize(t->zbuf, zlen);
	if (declared != clen)
		return transfer_damaged(t, w, "a frame of the wrong size");
	if ((p = wbuf_reserve(w, PH_HDR_LEN + clen)) == NULL)
		return -ENOMEM;
	n = ZSTD_decompressDCtx(t->dctx, p + PH_HDR_LEN, clen, t->zbuf, zlen);
	if (ZSTD_isError(n) || n != clen) {
		/* Nothing of the reserved frame was committed. */
		return transfer_damaged(t, w, "a frame does not decompress");
	}
	if (skip > 0)
		memmove(p + PH_HDR_LEN, p + PH_HDR_LEN + skip, clen - skip);
	ph_frame_header_write(p, PH_DATA, (uint32_t)(clen - skip));
	wbuf_commit(w, PH_HDR_LEN + clen - skip);
	t->pos += clen - skip;
	t->sent += clen - skip;
	return 1;
}

/*
 * Following a fill: how many bytes may be read now. Returns the count, or
 * 0 with *r set: 2 to wait for the fill, 0/-ENOMEM after queuing the end.
 */
static uint64_t
transfer_fill_room(struct transfer *t, struct wbuf *w, int *r)
{
	uint64_t avail = store_fill_available(t->src.fill);
	enum ph_err code = PH_OK;
	const char *msg = NULL;
	int st;

	if (avail > t->pos)
		return avail - t->pos;
	st = store_fill_status(t->src.fill, t->src.sha256, &code, &msg);
	if (st < 0) {
		*r = transfer_error(t, w, code, msg);
		return 0;
	}
	if (st == 1 && t->pos >= t->end) {
		t->src.has_digest = t->send_digest;
		*r = transfer_finish(t, w);
		return 0;
	}
	if (st == 1) {
		*r = transfer_error(t, w, PH_ERR_IO, "the cached copy is "
		    "shorter than the file");
		return 0;
	}
	store_fill_watch(t->src.fill, t->wake, t->wake_arg);
	*r = 2;
	return 0;
}

/* Queues the next DATA frame, or the END / ERROR that ends the GET. */
int
transfer_fill(struct transfer *t, struct wbuf *w)
{
	uint64_t room = t->end - t->pos;
	size_t chunk;
	uint8_t *p;
	int err, r;

	if (!wbuf_empty(w))
		abort();
	/* The previous tail hit a short or failing file: no END now. */
	if ((err = wbuf_file_error(w)) < 0) {
		if (err == -ENODATA)
			return transfer_error(t, w, PH_ERR_CHANGED,
			    "the file shrank while it was being sent");
		return transfer_error(t, w, PH_ERR_IO, strerror(-err));
	}
	if (t->src.fill != NULL) {
		if ((room = transfer_fill_room(t, w, &r)) == 0)
			return r;
	} else if (t->pos >= t->end)
		return transfer_finish(t, w);
	if (t->frames)
		return transfer_fill_frame(t, w);
	chunk = room < PH_DATA_CHUNK ? (size_t)room : PH_DATA_CHUNK;
	if (t->cctx != NULL)
		return transfer_fill_zstd(t, w, chunk);
	if ((p = wbuf_reserve(w, PH_HDR_LEN)) == NULL)
		return -ENOMEM;
	ph_frame_header_write(p, PH_DATA, (uint32_t)chunk);
	wbuf_commit(w, PH_HDR_LEN);
	wbuf_set_tail(w, t->fd, t->pos, chunk);
	t->pos += chunk;
	t->sent += chunk;
	return 1;
}
