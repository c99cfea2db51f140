/*
 * digest.h: SHA-256 of whole files, computed on the libuv thread pool and
 * remembered in memory.
 *
 * The memo is keyed by (dev, inode, size, mtime, ctime), so a file that is
 * rewritten in place gets a new key and is hashed again; its new digest
 * replaces the old one of the same inode. It holds a bounded number of
 * entries, found through a hash table on (dev, inode); the oldest is
 * dropped first. Concurrent requests for the same file share one hashing
 * job.
 */
#ifndef HOSTD_DIGEST_H
#define HOSTD_DIGEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "proto.h"

struct digest;
struct digest_wait;

/*
 * Called on the loop thread when a job ends: status 0 and the digest
 * (sha256 is NULL on any other status); -ESTALE if the file changed
 * while it was read; -ECANCELED if the job was aborted by
 * digest_shutdown(); another negative errno on a read error.
 * The wait handle is freed right after the call returns.
 */
typedef void digest_cb(void *arg, int status,
    const uint8_t sha256[PH_SHA256_LEN]);

/*
 * Creates the digest service for loop with room for max_entries memoised
 * digests. Returns 0 and sets *out, or -ENOMEM.
 */
int	digest_new(uv_loop_t *loop, size_t max_entries, struct digest **out);

/*
 * Frees the service. No job may be running: call it after digest_shutdown()
 * and after uv_run() returned. Accepts NULL.
 */
void	digest_free(struct digest *d);

/*
 * Looks st (the fstat of an open file) up in the memo. Returns 1 and fills
 * sha256 when known, else 0.
 */
int	digest_lookup(struct digest *d, const struct stat *st,
	    uint8_t sha256[PH_SHA256_LEN]);

/*
 * Starts hashing the regular file open as fd, whose fstat is st, or joins
 * a job already hashing the same file. The service duplicates fd; the
 * caller keeps its own. cb(arg, ...) is called later on the loop thread,
 * unless digest_cancel() is called first. Returns 0 and sets *out, or
 * -ENOMEM, -EMFILE (dup failed), -ECANCELED after digest_shutdown().
 */
int	digest_start(struct digest *d, int fd, const struct stat *st,
	    digest_cb *cb, void *arg, struct digest_wait **out);

/*
 * Withdraws a wait: its callback will not be called, and the handle is
 * freed. The job itself keeps running, so its result still lands in the
 * memo for the next request. Accepts NULL.
 */
void	digest_cancel(struct digest_wait *w);

/*
 * Aborts every job (they end with -ECANCELED) and refuses new ones, so the
 * loop can finish quickly at shutdown. Accepts NULL.
 */
void	digest_shutdown(struct digest *d);

/* Jobs running or queued, for status output. */
size_t	digest_jobs(const struct digest *d);

#endif /* HOSTD_DIGEST_H */
