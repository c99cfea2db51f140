/*
 * hasher.h: the SHA-256 of a download, computed on a second thread.
 *
 * Hashing a large file costs about as much CPU as receiving and writing
 * it, so the thread that receives hands each chunk to a hashing thread and
 * goes on with the next chunk. Chunks live in a ring of HASHER_SLOTS
 * buffers of PH_DATA_CHUNK bytes owned by the hasher: hasher_slot() lends
 * the next free one (waiting while all of them are queued), the caller
 * fills it and queues it with hasher_submit(), and may go on reading the
 * slot (to write it out) until its next hasher_slot() call. Bytes are
 * hashed in the order they were given. Small chunks are hashed at once on
 * the caller's thread when nothing is queued, which is cheaper than waking
 * the other thread; the thread is started only when a chunk is queued.
 *
 * One thread, the owner, makes all calls. Functions return 0 or a negative
 * errno and print nothing.
 */
#ifndef PORTHOLE_HASHER_H
#define PORTHOLE_HASHER_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/*
 * Hashing is the slower side, so more slots only add memory: 2, 3 and 4
 * slots measured the same throughput; 3 leaves room for jitter.
 */
#define HASHER_SLOTS	3

struct hasher;

/* Allocates a hasher and its slots. 0 with *out set, or -ENOMEM. */
int	hasher_new(struct hasher **out);

/* Stops the thread (dropping queued chunks) and frees h. Accepts NULL. */
void	hasher_free(struct hasher *h);

/*
 * Starts a new digest once the chunks of the previous one are done (they
 * are dropped in effect: the old digest is discarded). 0 or -EIO.
 */
int	hasher_begin(struct hasher *h);

/*
 * Lends the next free slot, PH_DATA_CHUNK bytes, waiting while every slot
 * is queued. It stays the caller's until hasher_submit(); without a
 * submit the same slot is lent again.
 */
uint8_t *hasher_slot(struct hasher *h);

/*
 * Queues the first len bytes (1..PH_DATA_CHUNK) of the slot from the last
 * hasher_slot() call. 0, or the first error of the digest so far.
 */
int	hasher_submit(struct hasher *h, size_t len);

/*
 * Finishes the digest once every queued chunk is hashed. 0 with digest
 * set, or -EIO if any chunk could not be hashed.
 */
int	hasher_final(struct hasher *h, uint8_t digest[PH_SHA256_LEN]);

#endif /* PORTHOLE_HASHER_H */
