/*
 * progress.h: the progress line porthole draws on stderr.
 *
 * A disabled progress (stderr is not a terminal, or -q) accepts every call
 * and draws nothing, so callers need not check.
 */
#ifndef PORTHOLE_PROGRESS_H
#define PORTHOLE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress;

/* Seconds on a monotonic clock, for measuring transfers. */
double	progress_now(void);

/* A progress line drawer; NULL only when out of memory. */
struct progress *progress_new(bool enabled);

/* Frees p after clearing its line. Accepts NULL. */
void	progress_free(struct progress *p);

/*
 * Starts a transfer of label: total is the file's size, already the bytes
 * present before this transfer (a resumed .part).
 */
void	progress_start(struct progress *p, const char *label, uint64_t total,
	    uint64_t already);

/* Reports done bytes of total; redraws at most ten times a second. */
void	progress_update(struct progress *p, uint64_t done);

/* Shows that the request for label waits in the host's queue. */
void	progress_queued(struct progress *p, const char *label,
	    uint32_t position);

/* Erases the line, e.g. before printing a message or at the end. */
void	progress_clear(struct progress *p);

#endif /* PORTHOLE_PROGRESS_H */
