/*
 * pack.c: compression at rest, and verifying a blob against its name.
 *
 * A packed blob is a run of independent zstd frames, one per CACHE_CHUNK
 * of content, each carrying its content size, so a frame can go out as a
 * DATA_ZSTD payload as it is and a reader can check what a frame will
 * decode to before decoding it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "cache_int.h"

/* Frames compressed before judging whether the rest is worth it, and the
 * size (percent of the input) above which it is not. */
#define PACK_SAMPLE_FRAMES	4
#define PACK_SAMPLE_PCT		97

#define FRAME_MAX	ZSTD_COMPRESSBOUND(CACHE_CHUNK)
/* Below this, a frame header and block header eat any saving. */
#define PACK_MIN_SIZE	64

static uint32_t
cache_pack_chunk_len(uint64_t size, uint32_t i)
{
	uint64_t	left = size - (uint64_t)i * CACHE_CHUNK;

	return left < CACHE_CHUNK ? (uint32_t)left : CACHE_CHUNK;
}

/*
 * Reserves the most the packed form may take (it is given up as soon as
 * it would take more), and takes a pin of its own on the raw blob so that
 * it stays while the worker reads it.
 */
int
cache_pack_begin(struct cache *c, struct cache_blob *b,
    struct cache_pack **out)
{
	struct cache_ent	*e = b->e;
	struct cache_pack	*p;
	int			 rc;

	*out = NULL;
	if ((e->flags & (ENT_ZOMBIE | ENT_INCOMPRESSIBLE | ENT_PACKING)) ||
	    e->form != CACHE_FORM_RAW || e->size < PACK_MIN_SIZE)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->c = c;
	p->fd = -1;
	p->size = e->size;
	p->level = c->level;
	p->nframes = cache__nframes(e->size);
	p->limit = e->size * (100 - CACHE_MIN_SAVING_PCT) / 100;
	memcpy(p->sha256, e->sha256, CACHE_SHA256_LEN);
	if ((p->lens = calloc(p->nframes, sizeof(*p->lens))) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = cache__pin(c, e, -1, &p->src)) != 0)
		goto fail;
	if ((rc = cache__make_room(c, p->limit)) != 0)
		goto fail;
	if ((rc = cache__tmp_create(c, "pack", p->name)) < 0)
		goto fail;
	p->fd = rc;
	c->reserved += p->limit;
	e->flags |= ENT_PACKING;
	*out = p;
	return 1;

fail:
	cache_blob_put(p->src);
	free(p->lens);
	free(p);
	return rc;
}

/*
 * Any thread. Hashes the raw bytes as it reads them: packing a corrupt
 * blob would give its damage a fresh, valid-looking form.
 */
int
cache_pack_run(struct cache_pack *p)
{
	ZSTD_CCtx	*cctx = NULL;
	EVP_MD_CTX	*md = NULL;
	uint8_t		*in = NULL, *zb = NULL, got[CACHE_SHA256_LEN];
	unsigned int	 mdlen = 0;
	size_t		 z;
	uint32_t	 i, len;
	int		 rc;

	p->fits = 0;
	p->out = 0;
	in = malloc(CACHE_CHUNK);
	zb = malloc(FRAME_MAX);
	cctx = ZSTD_createCCtx();
	md = EVP_MD_CTX_new();
	if (in == NULL || zb == NULL || cctx == NULL || md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel,
	    p->level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag,
	    1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag,
	    0)) || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = -EIO;
		goto out;
	}
	for (i = 0; i < p->nframes; i++) {
		len = cache_pack_chunk_len(p->size, i);
		rc = ph_io_pread_full(p->src->fd, in, len,
		    (uint64_t)i * CACHE_CHUNK);
		if (rc == -ENODATA) {
			p->corrupt = true;
			rc = -EBADMSG;
		}
		if (rc != 0)
			goto out;
		if (EVP_DigestUpdate(md, in, len) != 1) {
			rc = -EIO;
			goto out;
		}
		z = ZSTD_compress2(cctx, zb, FRAME_MAX, in, len);
		if (ZSTD_isError(z)) {
			rc = -EIO;
			goto out;
		}
		/* Over the limit: not worth it, and no need to go on. */
		if (p->out + z > p->limit) {
			rc = 0;
			goto out;
		}
		if ((rc = ph_io_write_full(p->fd, zb, z)) != 0)
			goto out;
		p->lens[i] = (uint32_t)z;
		p->out += z;
		/*
		 * Already-compressed content (archives, images, random data)
		 * shows itself in the first frames: stop there rather than
		 * spend a core on the whole blob for nothing.
		 */
		if (i + 1 == PACK_SAMPLE_FRAMES && i + 1 < p->nframes &&
		    p->out * 100 > (uint64_t)(i + 1) * CACHE_CHUNK *
		    PACK_SAMPLE_PCT) {
			rc = 0;
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(md, got, &mdlen) != 1 ||
	    mdlen != CACHE_SHA256_LEN) {
		rc = -EIO;
		goto out;
	}
	if (memcmp(got, p->sha256, CACHE_SHA256_LEN) != 0) {
		p->corrupt = true;
		rc = -EBADMSG;
		goto out;
	}
	if (fdatasync(p->fd) == -1) {
		rc = -errno;
		goto out;
	}
	p->fits = 1;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	ZSTD_freeCCtx(cctx);
	free(zb);
	free(in);
	return rc;
}

/* Releases everything p holds; the pin last, since it may free the entry. */
static void
pack_free(struct cache_pack *p)
{
	struct cache	*c = p->c;

	p->src->e->flags &= (uint8_t)~ENT_PACKING;
	c->reserved -= p->limit;
	if (p->fd >= 0)
		close(p->fd);
	unlinkat(c->tmpfd, p->name, 0);
	cache_blob_put(p->src);
	free(p->lens);
	free(p);
}

/* Makes the packed file the blob: it is in place and in the database
 * before the raw file goes, so a crash leaves one of them to keep and the
 * other as an orphan. */
static int
pack_apply(struct cache_pack *p)
{
	struct cache		*c = p->c;
	struct cache_ent	*e = p->src->e;
	uint64_t		*foff, old_stored = e->stored;
	char			 raw[CACHE__NAME_MAX], zst[CACHE__NAME_MAX];
	uint32_t		 i;
	int			 rc;

	if ((foff = calloc((size_t)p->nframes + 1, sizeof(*foff))) == NULL)
		return -ENOMEM;
	for (i = 0; i < p->nframes; i++)
		foff[i + 1] = foff[i] + p->lens[i];
	cache__ent_name(e, CACHE_FORM_RAW, raw);
	cache__ent_name(e, CACHE_FORM_ZSTD, zst);
	if ((rc = cache__place(c, p->name, zst)) != 0) {
		free(foff);
		return rc;
	}
	e->form = CACHE_FORM_ZSTD;
	e->stored = p->out;
	e->foff = foff;
	e->nframes = p->nframes;
	if ((rc = cache__db_blob_put(c, e)) != 0) {
		e->form = CACHE_FORM_RAW;
		e->stored = old_stored;
		e->foff = NULL;
		e->nframes = 0;
		free(foff);
		unlinkat(c->dirfd, zst, 0);
		return rc;
	}
	/* Pins taken before keep reading the raw file through their fds. */
	unlinkat(c->dirfd, raw, 0);
	c->disk = c->disk - old_stored + e->stored;
	c->idx_bytes = c->idx_bytes - old_stored + e->stored;
	c->nzstd++;
	return 1;
}

/* Applies a run's outcome: the packed form, the incompressible mark, or
 * (for a corrupt source) removing the blob. */
int
cache_pack_finish(struct cache_pack *p, int run_status)
{
	struct cache		*c = p->c;
	struct cache_ent	*e = p->src->e;
	sqlite3_stmt		*st;
	int			 rc;

	if (run_status != 0) {
		rc = run_status < 0 ? run_status : -EINVAL;
		/* The raw file is not what its name says: it must go. */
		if (p->corrupt && !(e->flags & ENT_ZOMBIE))
			cache__drop(c, e);
	} else if (e->flags & ENT_ZOMBIE) {
		rc = 0;		/* removed meanwhile: nothing to apply */
	} else if (p->fits) {
		rc = pack_apply(p);
	} else {
		e->flags |= ENT_INCOMPRESSIBLE;
		st = c->st[ST_BLOB_INCOMP];
		sqlite3_bind_blob(st, 1, e->sha256, CACHE_SHA256_LEN,
		    SQLITE_STATIC);
		rc = cache__db_exec(c, ST_BLOB_INCOMP);
	}
	pack_free(p);
	return rc;
}

void
cache_pack_abort(struct cache_pack *p)
{
	if (p == NULL)
		return;
	pack_free(p);
}

/* ---- Verify ------------------------------------------------------------- */

/* Reads and hashes a raw blob. */
static int
cache_pack_verify_raw(const struct cache_blob *b, EVP_MD_CTX *md, uint8_t *buf)
{
	uint64_t	off;
	uint32_t	len;
	int		rc;

	for (off = 0; off < b->e->size; off += len) {
		len = b->e->size - off < CACHE_CHUNK ?
		    (uint32_t)(b->e->size - off) : CACHE_CHUNK;
		if ((rc = ph_io_pread_full(b->fd, buf, len, off)) != 0)
			return rc == -ENODATA ? -EBADMSG : rc;
		if (EVP_DigestUpdate(md, buf, len) != 1)
			return -EIO;
	}
	return 0;
}

/*
 * Decodes and hashes a zstd blob frame by frame. Each frame must be one
 * whole frame that declares exactly its chunk's size, checked before
 * anything is decoded, and must decode to exactly that.
 */
static int
cache_pack_verify_zstd(const struct cache_blob *b, EVP_MD_CTX *md, uint8_t *buf)
{
	ZSTD_DCtx		*dctx;
	uint8_t			*zb;
	unsigned long long	 fcs;
	size_t			 n, d;
	uint32_t		 i, want;
	int			 rc = 0;

	zb = malloc(FRAME_MAX);
	dctx = ZSTD_createDCtx();
	if (zb == NULL || dctx == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < b->nframes; i++) {
		n = (size_t)(b->foff[i + 1] - b->foff[i]);
		want = cache_pack_chunk_len(b->e->size, i);
		if ((rc = ph_io_pread_full(b->fd, zb, n, b->foff[i])) != 0) {
			if (rc == -ENODATA)
				rc = -EBADMSG;
			goto out;
		}
		fcs = ZSTD_getFrameContentSize(zb, n);
		if (fcs != want || ZSTD_findFrameCompressedSize(zb, n) != n) {
			rc = -EBADMSG;
			goto out;
		}
		d = ZSTD_decompressDCtx(dctx, buf, want, zb, n);
		if (ZSTD_isError(d) || d != want) {
			rc = -EBADMSG;
			goto out;
		}
		if (EVP_DigestUpdate(md, buf, want) != 1) {
			rc = -EIO;
			goto out;
		}
	}
out:
	ZSTD_freeDCtx(dctx);
	free(zb);
	return rc;
}

/* Checks the size on disk first: a truncated file is corrupt before any
 * byte is read. */
int
cache_pack_verify(struct cache_blob *b)
{
	EVP_MD_CTX	*md = NULL;
	struct stat	 st;
	uint8_t		*buf = NULL, got[CACHE_SHA256_LEN];
	unsigned int	 mdlen = 0;
	int		 rc;

	if (fstat(b->fd, &st) == -1)
		return -errno;
	if ((uint64_t)st.st_size != b->stored)
		return -EBADMSG;
	buf = malloc(CACHE_CHUNK);
	md = EVP_MD_CTX_new();
	if (buf == NULL || md == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = -EIO;
		goto out;
	}
	rc = b->form == CACHE_FORM_ZSTD ? cache_pack_verify_zstd(b, md, buf) :
	    cache_pack_verify_raw(b, md, buf);
	if (rc != 0)
		goto out;
	if (EVP_DigestFinal_ex(md, got, &mdlen) != 1 ||
	    mdlen != CACHE_SHA256_LEN) {
		rc = -EIO;
		goto out;
	}
	rc = memcmp(got, b->e->sha256, CACHE_SHA256_LEN) == 0 ? 0 : -EBADMSG;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}
