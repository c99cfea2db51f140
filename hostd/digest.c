/*
 * digest.c: SHA-256 on the thread pool, memoised by file identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "digest.h"

#define DIGEST_READ_SIZE	(1024 * 1024)
#define DIGEST_NONE		SIZE_MAX	/* the end of a bucket's chain */

struct digest_key {
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	int64_t		mtime_ns;
	int64_t		ctime_ns;
};

struct digest_memo {
	struct digest_key key;
	uint8_t		sha256[PH_SHA256_LEN];
	bool		used;
	size_t		next;		/* next slot in its bucket, or DIGEST_NONE */
};

struct digest_wait {
	TAILQ_ENTRY(digest_wait) link;
	struct digest_job *job;
	digest_cb	*cb;
	void		*arg;
};

struct digest_job {
	uv_work_t	work;		/* data points back at the job */
	struct digest	*d;
	TAILQ_ENTRY(digest_job) link;
	TAILQ_HEAD(, digest_wait) waiters;
	struct digest_key key;
	int		fd;		/* our own duplicate */
	uint8_t		*buf;
	atomic_bool	abort;		/* set by the loop, read by a worker */
	int		status;		/* written by the worker */
	uint8_t		sha256[PH_SHA256_LEN];
};

struct digest {
	uv_loop_t	*loop;
	struct digest_memo *memo;	/* a ring: the oldest entry goes first */
	size_t		memo_cap;
	size_t		memo_next;	/* slot the next new entry takes */
	size_t		*buckets;	/* first slot of each chain, by inode */
	size_t		nbuckets;	/* a power of two, at least 2 * memo_cap */
	TAILQ_HEAD(, digest_job) jobs;
	size_t		njobs;
	bool		stopping;
};

/* The memo key of an fstat result. */
static void
digest_key_of(const struct stat *st, struct digest_key *k)
{
	memset(k, 0, sizeof(*k));
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = st->st_size;
	k->mtime_ns = ph_util_timespec_ns(&st->st_mtim);
	k->ctime_ns = ph_util_timespec_ns(&st->st_ctim);
}

/* True when two keys name the same file contents. */
static bool
digest_key_eq(const struct digest_key *a, const struct digest_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns;
}

/*
 * The bucket of a file. The memo holds at most one entry per inode, so
 * chains are keyed by (dev, inode) alone: a lookup and a replacement both
 * find the inode's one entry there.
 */
static size_t
digest_bucket(const struct digest *d, const struct digest_key *k)
{
	uint64_t h = (uint64_t)k->ino * 0x9e3779b97f4a7c15u ^ (uint64_t)k->dev;

	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93u;
	h ^= h >> 32;
	return (size_t)h & (d->nbuckets - 1);
}

/* The slot holding the entry of k's inode, or DIGEST_NONE. */
static size_t
digest_find_inode(const struct digest *d, const struct digest_key *k)
{
	size_t i = d->buckets[digest_bucket(d, k)];

	while (i != DIGEST_NONE && (d->memo[i].key.dev != k->dev ||
	    d->memo[i].key.ino != k->ino))
		i = d->memo[i].next;
	return i;
}

/* Takes the entry in slot i out of its bucket's chain. */
static void
digest_unlink(struct digest *d, size_t i)
{
	size_t *pp = &d->buckets[digest_bucket(d, &d->memo[i].key)];

	while (*pp != i)
		pp = &d->memo[*pp].next;
	*pp = d->memo[i].next;
	d->memo[i].used = false;
}

int
digest_new(uv_loop_t *loop, size_t max_entries, struct digest **out)
{
	struct digest *d;
	size_t nb = 2;

	*out = NULL;
	if (max_entries == 0)
		max_entries = 1;
	if (max_entries > SIZE_MAX / 4)
		return -ENOMEM;
	while (nb < 2 * max_entries)
		nb *= 2;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	if ((d->memo = calloc(max_entries, sizeof(*d->memo))) == NULL ||
	    (d->buckets = malloc(nb * sizeof(*d->buckets))) == NULL) {
		free(d->memo);
		free(d);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nb; i++)
		d->buckets[i] = DIGEST_NONE;
	d->nbuckets = nb;
	d->memo_cap = max_entries;
	d->loop = loop;
	TAILQ_INIT(&d->jobs);
	*out = d;
	return 0;
}

void
digest_free(struct digest *d)
{
	if (d == NULL)
		return;
	if (!TAILQ_EMPTY(&d->jobs))
		abort();	/* a job still references d */
	free(d->buckets);
	free(d->memo);
	free(d);
}

size_t
digest_jobs(const struct digest *d)
{
	return d->njobs;
}

int
digest_lookup(struct digest *d, const struct stat *st,
    uint8_t sha256[PH_SHA256_LEN])
{
	struct digest_key k;
	size_t i;

	digest_key_of(st, &k);
	i = digest_find_inode(d, &k);
	if (i == DIGEST_NONE || !digest_key_eq(&d->memo[i].key, &k))
		return 0;
	memcpy(sha256, d->memo[i].sha256, PH_SHA256_LEN);
	return 1;
}

/*
 * Remembers a digest. An older one of the same inode is replaced in its
 * slot and keeps its age; a new inode takes the next slot of the ring,
 * dropping the oldest entry when the memo is full.
 */
static void
digest_memo_put(struct digest *d, const struct digest_key *k,
    const uint8_t sha256[PH_SHA256_LEN])
{
	struct digest_memo *m;
	size_t i, b;

	if ((i = digest_find_inode(d, k)) == DIGEST_NONE) {
		i = d->memo_next;
		d->memo_next = (d->memo_next + 1) % d->memo_cap;
		if (d->memo[i].used)
			digest_unlink(d, i);
		b = digest_bucket(d, k);
		d->memo[i].next = d->buckets[b];
		d->buckets[b] = i;
	}
	m = &d->memo[i];
	m->key = *k;
	memcpy(m->sha256, sha256, PH_SHA256_LEN);
	m->used = true;
}

/* Reads the whole file and hashes it; runs on a pool thread. */
static void
digest_work(uv_work_t *req)
{
	struct digest_job *job = req->data;
	EVP_MD_CTX *ctx;
	struct digest_key now;
	struct stat st;
	uint64_t off = 0, size = (uint64_t)job->key.size;
	unsigned int mdlen = 0;
	ssize_t n;

	job->status = 0;
	if ((ctx = EVP_MD_CTX_new()) == NULL) {
		job->status = -ENOMEM;
		return;
	}
	if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		job->status = -EIO;
		goto done;
	}
	(void)posix_fadvise(job->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (off < size) {
		size_t want = size - off < DIGEST_READ_SIZE ?
		    (size_t)(size - off) : DIGEST_READ_SIZE;

		if (atomic_load(&job->abort)) {
			job->status = -ECANCELED;
			goto done;
		}
		n = pread(job->fd, job->buf, want, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			job->status = -errno;
			goto done;
		}
		if (n == 0) {
			/* Shorter than it was: it changed under us. */
			job->status = -ESTALE;
			goto done;
		}
		if (EVP_DigestUpdate(ctx, job->buf, (size_t)n) != 1) {
			job->status = -EIO;
			goto done;
		}
		off += (uint64_t)n;
	}
	if (fstat(job->fd, &st) < 0) {
		job->status = -errno;
		goto done;
	}
	digest_key_of(&st, &now);
	if (!digest_key_eq(&now, &job->key)) {
		job->status = -ESTALE;
		goto done;
	}
	if (EVP_DigestFinal_ex(ctx, job->sha256, &mdlen) != 1 ||
	    mdlen != PH_SHA256_LEN)
		job->status = -EIO;
done:
	EVP_MD_CTX_free(ctx);
}

/* Frees a job that no longer has waiters and is off the list. */
static void
digest_job_free(struct digest_job *job)
{
	if (job == NULL)
		return;
	if (job->fd >= 0)
		close(job->fd);
	free(job->buf);
	free(job);
}

/* Back on the loop: memoise the result and tell every waiter. */
static void
digest_after_work(uv_work_t *req, int status)
{
	struct digest_job *job = req->data;
	struct digest *d = job->d;
	struct digest_wait *w;

	if (status == UV_ECANCELED)
		job->status = -ECANCELED;
	TAILQ_REMOVE(&d->jobs, job, link);
	d->njobs--;
	if (job->status == 0)
		digest_memo_put(d, &job->key, job->sha256);
	/* A callback may cancel other waits, so take them one at a time. */
	while ((w = TAILQ_FIRST(&job->waiters)) != NULL) {
		TAILQ_REMOVE(&job->waiters, w, link);
		w->cb(w->arg, job->status, job->status == 0 ? job->sha256 :
		    NULL);
		free(w);
	}
	digest_job_free(job);
}

/* Joins a running job for the same file, or queues a new one. */
int
digest_start(struct digest *d, int fd, const struct stat *st,
    digest_cb *cb, void *arg, struct digest_wait **out)
{
	struct digest_job *job;
	struct digest_wait *w;
	struct digest_key k;
	int err;

	*out = NULL;
	if (d->stopping)
		return -ECANCELED;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->cb = cb;
	w->arg = arg;
	digest_key_of(st, &k);
	TAILQ_FOREACH(job, &d->jobs, link) {
		if (digest_key_eq(&job->key, &k)) {
			w->job = job;
			TAILQ_INSERT_TAIL(&job->waiters, w, link);
			*out = w;
			return 0;
		}
	}
	if ((job = calloc(1, sizeof(*job))) == NULL) {
		err = -ENOMEM;
		goto fail_wait;
	}
	job->fd = -1;
	if ((job->buf = malloc(DIGEST_READ_SIZE)) == NULL) {
		err = -ENOMEM;
		goto fail_job;
	}
	if ((job->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		err = -errno;
		goto fail_job;
	}
	job->d = d;
	job->key = k;
	atomic_init(&job->abort, false);
	TAILQ_INIT(&job->waiters);
	job->work.data = job;
	if ((err = uv_queue_work(d->loop, &job->work, digest_work,
	    digest_after_work)) < 0)
		goto fail_job;
	TAILQ_INSERT_TAIL(&d->jobs, job, link);
	d->njobs++;
	w->job = job;
	TAILQ_INSERT_TAIL(&job->waiters, w, link);
	*out = w;
	return 0;

fail_job:
	digest_job_free(job);
fail_wait:
	free(w);
	return err;
}

void
digest_cancel(struct digest_wait *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(&w->job->waiters, w, link);
	free(w);
}

/* Aborts every job: queued ones are cancelled, running ones stop early. */
void
digest_shutdown(struct digest *d)
{
	struct digest_job *job;

	if (d == NULL)
		return;
	d->stopping = true;
	TAILQ_FOREACH(job, &d->jobs, link) {
		atomic_store(&job->abort, true);
		/* Fails harmlessly for a job a thread already runs. */
		(void)uv_cancel((uv_req_t *)&job->work);
	}
}
