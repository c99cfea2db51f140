/*
 * hasher.c: the SHA-256 of a download, computed on a second thread.
 *
 * The slots form a ring: the owner fills slot[head], the thread hashes
 * slot[tail], and queued counts the slots in between. The thread lowers
 * queued only after it has finished with a slot, so queued == 0 (read
 * under the lock) means the thread is idle and the owner may use the
 * digest context itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "hasher.h"

/*
 * Chunks up to this size are hashed on the owner's thread when nothing is
 * queued: a small file's bytes cost less to hash than a thread wake-up.
 */
#define HASHER_INLINE_MAX	(64 * 1024)

struct hasher {
	pthread_mutex_t	 lock;
	pthread_cond_t	 work;		/* queued went up, or quit */
	pthread_cond_t	 freed;		/* queued went down */
	pthread_t	 thread;
	bool		 started;	/* the thread runs */
	bool		 quit;
	int		 error;		/* first failure since hasher_begin */
	unsigned int	 head;		/* next slot to lend */
	unsigned int	 tail;		/* next slot to hash */
	unsigned int	 queued;
	size_t		 len[HASHER_SLOTS];
	uint8_t		*slot[HASHER_SLOTS];
	EVP_MD_CTX	*md;
};

/* The hashing thread: takes queued slots in order until told to quit. */
static void *
hasher_main(void *arg)
{
	struct hasher *h = arg;
	unsigned int i;
	int ok;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (h->queued == 0 && !h->quit)
			pthread_cond_wait(&h->work, &h->lock);
		if (h->quit)
			break;
		i = h->tail;
		pthread_mutex_unlock(&h->lock);
		ok = EVP_DigestUpdate(h->md, h->slot[i], h->len[i]);
		pthread_mutex_lock(&h->lock);
		if (ok != 1 && h->error == 0)
			h->error = -EIO;
		h->tail = (h->tail + 1) % HASHER_SLOTS;
		h->queued--;
		pthread_cond_signal(&h->freed);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int
hasher_new(struct hasher **out)
{
	struct hasher *h;
	unsigned int i;

	*out = NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->work, NULL);
	pthread_cond_init(&h->freed, NULL);
	h->md = EVP_MD_CTX_new();
	for (i = 0; i < HASHER_SLOTS; i++)
		h->slot[i] = malloc(PH_DATA_CHUNK);
	for (i = 0; i < HASHER_SLOTS; i++)
		if (h->slot[i] == NULL)
			break;
	if (h->md == NULL || i < HASHER_SLOTS) {
		hasher_free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void
hasher_free(struct hasher *h)
{
	unsigned int i;

	if (h == NULL)
		return;
	if (h->started) {
		pthread_mutex_lock(&h->lock);
		h->quit = true;
		pthread_cond_signal(&h->work);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	for (i = 0; i < HASHER_SLOTS; i++)
		free(h->slot[i]);
	EVP_MD_CTX_free(h->md);
	pthread_cond_destroy(&h->freed);
	pthread_cond_destroy(&h->work);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Waits, with the lock held, until the thread has hashed every slot. */
static void
hasher_wait_idle(struct hasher *h)
{
	while (h->queued > 0)
		pthread_cond_wait(&h->freed, &h->lock);
}

int
hasher_begin(struct hasher *h)
{
	pthread_mutex_lock(&h->lock);
	hasher_wait_idle(h);
	h->error = 0;
	pthread_mutex_unlock(&h->lock);
	if (EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) != 1)
		return -EIO;
	return 0;
}

uint8_t *
hasher_slot(struct hasher *h)
{
	uint8_t *p;

	pthread_mutex_lock(&h->lock);
	while (h->queued == HASHER_SLOTS)
		pthread_cond_wait(&h->freed, &h->lock);
	p = h->slot[h->head];
	pthread_mutex_unlock(&h->lock);
	return p;
}

int
hasher_submit(struct hasher *h, size_t len)
{
	int rc, ok;

	if (len == 0 || len > PH_DATA_CHUNK)
		abort();	/* a caller's bug: slots hold PH_DATA_CHUNK */
	pthread_mutex_lock(&h->lock);
	if (!h->started && len > HASHER_INLINE_MAX) {
		/* If no thread can be had, everything is hashed here. */
		h->started = pthread_create(&h->thread, NULL, hasher_main,
		    h) == 0;
	}
	if (h->queued == 0 && (len <= HASHER_INLINE_MAX || !h->started)) {
		/* The thread is idle: the context is ours for a moment. */
		pthread_mutex_unlock(&h->lock);
		ok = EVP_DigestUpdate(h->md, h->slot[h->head], len);
		pthread_mutex_lock(&h->lock);
		if (ok != 1 && h->error == 0)
			h->error = -EIO;
	} else {
		h->len[h->head] = len;
		h->head = (h->head + 1) % HASHER_SLOTS;
		h->queued++;
		pthread_cond_signal(&h->work);
	}
	rc = h->error;
	pthread_mutex_unlock(&h->lock);
	return rc;
}

int
hasher_final(struct hasher *h, uint8_t digest[PH_SHA256_LEN])
{
	unsigned int len = 0;
	int rc;

	pthread_mutex_lock(&h->lock);
	hasher_wait_idle(h);
	rc = h->error;
	pthread_mutex_unlock(&h->lock);
	if (rc < 0)
		return rc;
	if (EVP_DigestFinal_ex(h->md, digest, &len) != 1 ||
	    len != PH_SHA256_LEN)
		return -EIO;
	return 0;
}
