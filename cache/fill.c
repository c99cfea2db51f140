/*
 * fill.c: writing a new blob. The bytes go to a temporary file in DIR/tmp/
 * and are hashed as they are written (on any thread); the owner thread
 * then renames the checked, synced file into place and indexes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "cache_int.h"

/* A fill with its hash started and no file yet. */
static int
fill_new(struct cache *c, uint64_t size, struct cache_fill **out)
{
	struct cache_fill	*f;

	*out = NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return -ENOMEM;
	f->c = c;
	f->size = size;
	f->fd = f->rfd = -1;
	atomic_init(&f->written, 0);
	if ((f->md = EVP_MD_CTX_new()) == NULL) {
		free(f);
		return -ENOMEM;
	}
	if (EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(f->md);
		free(f);
		return -EIO;
	}
	*out = f;
	return 0;
}

/* Reserves the declared size first, so a fill can never take the cache
 * over its budget however many run at once. */
int
cache_fill_begin(struct cache *c, uint64_t size, struct cache_fill **out)
{
	struct cache_fill	*f;
	int			 rc;

	*out = NULL;
	if (size > c->budget || size > CACHE__MAX_SIZE)
		return -EFBIG;
	if ((rc = fill_new(c, size, &f)) < 0)
		return rc;
	if ((rc = cache__make_room(c, size)) != 0)
		goto fail;
	if ((rc = cache__tmp_create(c, "fill", f->name)) < 0)
		goto fail;
	f->fd = rc;
	if ((f->rfd = openat(c->tmpfd, f->name, O_RDONLY | O_CLOEXEC)) == -1) {
		rc = -errno;
		goto fail_file;
	}
	f->kept = true;
	c->reserved += size;
	*out = f;
	return 0;

fail_file:
	close(f->fd);
	unlinkat(c->tmpfd, f->name, 0);
fail:
	EVP_MD_CTX_free(f->md);
	free(f);
	return rc;
}

/* Memory, not the blob directory: the point is a disk without room. */
int
cache_fill_begin_unkept(struct cache *c, uint64_t size,
    struct cache_fill **out)
{
	struct cache_fill	*f;
	int			 rc;

	if ((rc = fill_new(c, size, &f)) < 0)
		return rc;
	if ((f->fd = memfd_create("porthole-unkept", MFD_CLOEXEC)) == -1 ||
	    (f->rfd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0)) == -1) {
		rc = -errno;
		if (f->fd >= 0)
			close(f->fd);
		EVP_MD_CTX_free(f->md);
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

/* The bytes move in the kernel; the hash state is copied, not redone. */
int
cache_fill_unkept_copy(const struct cache_fill *f, struct cache_fill **out)
{
	struct cache_fill	*n;
	uint64_t		 w;
	off_t			 off = 0;
	ssize_t			 r;
	int			 rc;

	*out = NULL;
	if (f->finished)
		return -EINVAL;
	w = atomic_load_explicit(&((struct cache_fill *)f)->written,
	    memory_order_acquire);
	if ((rc = cache_fill_begin_unkept(f->c, f->size, &n)) < 0)
		return rc;
	if (EVP_MD_CTX_copy_ex(n->md, f->md) != 1) {
		rc = -EIO;
		goto fail;
	}
	while ((uint64_t)off < w) {
		r = sendfile(n->fd, f->rfd, &off, (size_t)(w - (uint64_t)off <
		    CACHE_CHUNK ? w - (uint64_t)off : CACHE_CHUNK));
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r == -1 ? -errno : -ENODATA;
			goto fail;
		}
	}
	atomic_store_explicit(&n->written, w, memory_order_release);
	*out = n;
	return 0;

fail:
	cache_fill_abort(n);
	return rc;
}

bool
cache_fill_kept(const struct cache_fill *f)
{
	return f->kept;
}

/*
 * A file size limit (EFBIG from write) is reported as -ENOSPC, the same as
 * a full disk: both mean there is no room for this blob, and -EFBIG is
 * kept for writing past the declared size.
 */
int
cache_fill_write(struct cache_fill *f, const void *buf, size_t len)
{
	uint64_t	w;
	int		rc;

	if (f->err != 0)
		return f->err;
	if (f->finished)
		return f->err = -EINVAL;
	w = atomic_load_explicit(&f->written, memory_order_relaxed);
	if (len > f->size - w)
		return f->err = -EFBIG;
	if (len == 0)
		return 0;
	if ((rc = ph_io_write_full(f->fd, buf, len)) != 0)
		return f->err = rc == -EFBIG ? -ENOSPC : rc;
	if (EVP_DigestUpdate(f->md, buf, len) != 1)
		return f->err = -EIO;
	/* Release: a reader that sees the new count also sees the bytes. */
	atomic_store_explicit(&f->written, w + len, memory_order_release);
	return 0;
}

uint64_t
cache_fill_written(const struct cache_fill *f)
{
	return atomic_load_explicit(&((struct cache_fill *)f)->written,
	    memory_order_acquire);
}

int
cache_fill_fd(const struct cache_fill *f)
{
	return f->rfd;
}

/* Checks size, then digest, and only then syncs: a fill that will be
 * thrown away is not worth an fdatasync. */
int
cache_fill_finish(struct cache_fill *f, const uint8_t *expect,
    uint8_t sha256[CACHE_SHA256_LEN])
{
	unsigned int	mdlen = 0;

	if (sha256 != NULL)
		memset(sha256, 0, CACHE_SHA256_LEN);
	if (f->err != 0)
		return f->err;
	if (f->finished)
		return f->err = -EINVAL;
	if (atomic_load_explicit(&f->written, memory_order_relaxed) !=
	    f->size)
		return f->err = -EPIPE;
	if (EVP_DigestFinal_ex(f->md, f->sha256, &mdlen) != 1 ||
	    mdlen != CACHE_SHA256_LEN)
		return f->err = -EIO;
	if (sha256 != NULL)
		memcpy(sha256, f->sha256, CACHE_SHA256_LEN);
	if (expect != NULL &&
	    memcmp(expect, f->sha256, CACHE_SHA256_LEN) != 0)
		return f->err = -EBADMSG;
	if (fdatasync(f->fd) == -1)
		return f->err = -errno;
	f->finished = true;
	return 0;
}

/* Frees f, removing its temporary file if it is still there. */
static void
fill_free(struct cache_fill *f, bool release)
{
	if (f->fd >= 0)
		close(f->fd);
	if (f->rfd >= 0)
		close(f->rfd);
	if (f->kept) {
		unlinkat(f->c->tmpfd, f->name, 0);
		if (release)
			f->c->reserved -= f->size;
	}
	EVP_MD_CTX_free(f->md);
	free(f);
}

/*
 * The entry is allocated and the table grown before the rename, so that
 * once the file has its blob name nothing but the database can fail; the
 * read-only descriptor follows the file and becomes the pin's.
 */
int
cache_fill_commit(struct cache_fill *f, struct cache_blob **out)
{
	struct cache		*c = f->c;
	struct cache_ent	*e = NULL, *old;
	struct cache_blob	*b = NULL;
	char			 name[CACHE__NAME_MAX];
	int			 rc;

	if (out != NULL)
		*out = NULL;
	if (!f->finished || !f->kept) {
		rc = f->err != 0 ? f->err : -EINVAL;
		goto out;
	}
	if ((old = cache__find(c, f->sha256)) != NULL) {
		/* Someone else stored these bytes first: keep theirs. */
		rc = out != NULL ? cache__pin(c, old, -1, &b) : 0;
		if (rc == 0)
			cache__touch(c, old);
		/* -ENOENT: its file had gone and it was dropped; ours
		 * takes its place. */
		if (rc != -ENOENT)
			goto out;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(e->sha256, f->sha256, CACHE_SHA256_LEN);
	e->size = e->stored = f->size;
	e->form = CACHE_FORM_RAW;
	e->atime_ns = cache__atime(c);
	if ((rc = cache__index_add(c, e)) != 0) {
		free(e);
		goto out;
	}
	/* Counted on disk from here; the reservation goes in fill_free(). */
	c->disk += e->stored;
	cache__ent_name(e, CACHE_FORM_RAW, name);
	if ((rc = cache__place(c, f->name, name)) != 0 ||
	    (rc = cache__db_blob_put(c, e)) != 0) {
		cache__drop(c, e);
		goto out;
	}
	c->fills++;
	if (out != NULL) {
		rc = cache__pin(c, e, f->rfd, &b);
		if (rc == 0)
			f->rfd = -1;
	}
out:
	fill_free(f, true);
	if (out != NULL)
		*out = b;
	return rc;
}

void
cache_fill_abort(struct cache_fill *f)
{
	if (f == NULL)
		return;
	fill_free(f, true);
}
