/*
 * backoff.c: pauses between tries while the host is busy (see backoff.h).
 */
#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"

void
backoff_start(struct backoff *b, int64_t now_ms, uint32_t wait_ms)
{
	b->running = true;
	b->deadline_ms = now_ms + (int64_t)wait_ms;
	b->delay_ms = BACKOFF_FIRST_MS;
}

int64_t
backoff_next(struct backoff *b, int64_t now_ms, uint32_t rnd)
{
	int64_t left = b->deadline_ms - now_ms, pause;
	uint32_t half = b->delay_ms / 2;

	if (left <= 0)
		return -1;
	/* "Equal jitter": never less than half the delay, never more. */
	pause = (int64_t)half + (int64_t)(rnd % (b->delay_ms - half + 1));
	if (pause > left)
		pause = left;
	b->delay_ms = b->delay_ms >= BACKOFF_MAX_MS / 2 ? BACKOFF_MAX_MS :
	    b->delay_ms * 2;
	return pause;
}

uint32_t
backoff_random(void)
{
	struct timespec ts;
	uint32_t r;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == (ssize_t)sizeof(r))
		return r;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16);
}

void
backoff_sleep(int64_t ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000;
	/* nanosleep() leaves what is left in ts when a signal interrupts. */
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
