/*
 * backoff.h: how long porthole waits between tries while the host is busy
 * or not listening yet: exponential backoff with jitter, up to a deadline.
 * Nothing here prints or keeps global state; the caller owns the struct.
 */
#ifndef PORTHOLE_BACKOFF_H
#define PORTHOLE_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

/* The first pause, and the most one pause grows to. */
#define BACKOFF_FIRST_MS	100
#define BACKOFF_MAX_MS		5000

/*
 * One wait: from its first pause to its deadline. A zeroed struct is a wait
 * not started yet; backoff_start() starts it.
 */
struct backoff {
	bool	 running;
	int64_t	 deadline_ms;	/* monotonic; no pause ends after it */
	uint32_t delay_ms;	/* the next pause before jitter */
};

/* Starts b: pauses from now_ms on, none ending later than now_ms + wait_ms. */
void	backoff_start(struct backoff *b, int64_t now_ms, uint32_t wait_ms);

/*
 * The next pause in milliseconds at now_ms: a random share rnd of the
 * current delay, between half and all of it (so that clients turned away
 * together do not come back together), cut to the time left. The delay
 * then doubles, up to BACKOFF_MAX_MS. Returns -1 once the deadline is
 * reached: stop trying.
 */
int64_t	backoff_next(struct backoff *b, int64_t now_ms, uint32_t rnd);

/*
 * A random number for the jitter, from getrandom(); if that fails (an old
 * kernel, a seccomp filter), from the clock and the process id.
 */
uint32_t backoff_random(void);

/* Sleeps ms milliseconds, continuing after signal handlers. */
void	backoff_sleep(int64_t ms);

#endif /* PORTHOLE_BACKOFF_H */
