/*
 * transfer.c: DATA / DATA_ZSTD frames for one GET.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "repo.h"
#include "transfer.h"

/* After this many chunks in a row that did not shrink, stop trying. */
#define TRANSFER_ZSTD_GIVE_UP	4

struct transfer {
	int		 fd;
	struct stat	 st;
	uint64_t	 pos;		/* next byte to queue */
	uint64_t	 end;		/* file size at the start */
	uint64_t	 sent;
	ZSTD_CCtx	*cctx;		/* NULL: compression off */
	uint8_t		*zbuf;		/* compressed output, one chunk */
	unsigned int	 incompressible;
	uint64_t	 zframes;
	bool		 has_digest;
	uint8_t		 sha256[PH_SHA256_LEN];
	enum ph_err	 result;
};

/* Takes over the open file, positioned at the offset. */
int
transfer_new(const struct transfer_params *p, struct transfer **out)
{
	struct transfer *t;

	*out = NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		close(p->fd);
		return -ENOMEM;
	}
	t->fd = p->fd;
	t->st = p->st;
	t->pos = p->offset;
	t->end = (uint64_t)p->st.st_size;
	t->cctx = p->cctx;
	t->has_digest = p->has_digest;
	memcpy(t->sha256, p->sha256, PH_SHA256_LEN);
	(void)posix_fadvise(t->fd, (off_t)t->pos, 0, POSIX_FADV_SEQUENTIAL);
	*out = t;
	return 0;
}

void
transfer_free(struct transfer *t)
{
	if (t == NULL)
		return;
	close(t->fd);
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

	if (fstat(t->fd, &now) < 0)
		return transfer_error(t, w, PH_ERR_IO, strerror(errno));
	if (now.st_size != t->st.st_size ||
	    repo_ns(&now.st_mtim) != repo_ns(&t->st.st_mtim))
		return transfer_error(t, w, PH_ERR_CHANGED,
		    "the file changed while it was being sent");
	memset(&m, 0, sizeof(m));
	m.type = PH_END;
	m.u.end.bytes = t->sent;
	m.u.end.has_digest = t->has_digest;
	if (t->has_digest)
		memcpy(m.u.end.sha256, t->sha256, PH_SHA256_LEN);
	if (wbuf_put_msg(w, &m) < 0)
		return -ENOMEM;
	t->result = PH_OK;
	return 0;
}

/* Reads exactly n bytes at off; -ENODATA if the file ends first. */
static int
transfer_pread(int fd, uint8_t *buf, size_t n, uint64_t off)
{
	ssize_t r;

	for (size_t got = 0; got < n; got += (size_t)r) {
		r = pread(fd, buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR) {
			r = 0;
			continue;
		}
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA;
	}
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

	if (t->zbuf == NULL && (t->zbuf = malloc(PH_DATA_CHUNK)) == NULL)
		return -ENOMEM;
	if ((p = wbuf_reserve(w, PH_HDR_LEN + chunk)) == NULL)
		return -ENOMEM;
	if ((err = transfer_pread(t->fd, p + PH_HDR_LEN, chunk, t->pos)) < 0) {
		if (err == -ENODATA)
			return transfer_error(t, w, PH_ERR_CHANGED,
			    "the file shrank while it was being sent");
		return transfer_error(t, w, PH_ERR_IO, strerror(-err));
	}
	z = ZSTD_compress2(t->cctx, t->zbuf, cap, p + PH_HDR_LEN, chunk);
	if (!ZSTD_isError(z) && z > 0 && z <= cap) {
		memcpy(p + PH_HDR_LEN, t->zbuf, z);
		ph_header_write(p, PH_DATA_ZSTD, (uint32_t)z);
		wbuf_commit(w, PH_HDR_LEN + z);
		t->incompressible = 0;
		t->zframes++;
	} else {
		ph_header_write(p, PH_DATA, (uint32_t)chunk);
		wbuf_commit(w, PH_HDR_LEN + chunk);
		if (++t->incompressible >= TRANSFER_ZSTD_GIVE_UP) {
			/* Not worth the CPU: plain sendfile from here on. */
			t->cctx = NULL;
			free(t->zbuf);
			t->zbuf = NULL;
		}
	}
	t->pos += chunk;
	t->sent += chunk;
	return 1;
}

/* Queues the next DATA frame, or the END / ERROR that ends the GET. */
int
transfer_fill(struct transfer *t, struct wbuf *w)
{
	size_t chunk;
	uint8_t *p;
	int err;

	if (!wbuf_empty(w))
		abort();
	/* The previous tail hit a short or failing file: no END now. */
	if ((err = wbuf_file_error(w)) < 0) {
		if (err == -ENODATA)
			return transfer_error(t, w, PH_ERR_CHANGED,
			    "the file shrank while it was being sent");
		return transfer_error(t, w, PH_ERR_IO, strerror(-err));
	}
	if (t->pos >= t->end)
		return transfer_finish(t, w);
	chunk = t->end - t->pos < PH_DATA_CHUNK ?
	    (size_t)(t->end - t->pos) : PH_DATA_CHUNK;
	if (t->cctx != NULL)
		return transfer_fill_zstd(t, w, chunk);
	if ((p = wbuf_reserve(w, PH_HDR_LEN)) == NULL)
		return -ENOMEM;
	ph_header_write(p, PH_DATA, (uint32_t)chunk);
	wbuf_commit(w, PH_HDR_LEN);
	wbuf_set_tail(w, t->fd, t->pos, chunk);
	t->pos += chunk;
	t->sent += chunk;
	return 1;
}
