/*
 * test_backoff.c: the pauses porthole makes while the host is busy
 * (guest-agent/backoff.c): jitter within half to all of a delay that
 * doubles up to its cap, and never a pause past the deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "backoff.h"

/* --wait 0: no pause at all, the first failure is the last. */
static void
test_wait_zero(void **state)
{
	struct backoff b = { .running = false };

	(void)state;
	backoff_start(&b, 1000, 0);
	assert_true(b.running);
	assert_int_equal(backoff_next(&b, 1000, 0), -1);
	assert_int_equal(backoff_next(&b, 5000, 12345), -1);
}

/* The smallest and the largest random numbers bound every pause. */
static void
test_jitter_bounds(void **state)
{
	static const uint32_t rnds[] = { 0, UINT32_MAX };
	struct backoff b;
	int64_t p, delay;
	size_t r;
	int i;

	(void)state;
	for (r = 0; r < 2; r++) {
		backoff_start(&b, 0, 3600 * 1000);
		delay = BACKOFF_FIRST_MS;
		for (i = 0; i < 12; i++) {
			p = backoff_next(&b, 0, rnds[r]);
			assert_true(p >= delay / 2);
			assert_true(p <= delay);
			delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			    delay * 2;
		}
		/* Grown to the cap and stays there. */
		assert_int_equal(b.delay_ms, BACKOFF_MAX_MS);
	}
}

/* Random numbers spread the pauses rather than picking one value. */
static void
test_jitter_spreads(void **state)
{
	struct backoff b;
	int64_t p, lo = INT64_MAX, hi = 0;
	int i;

	(void)state;
	for (i = 0; i < 200; i++) {
		backoff_start(&b, 0, 60000);
		p = backoff_next(&b, 0, backoff_random());
		lo = p < lo ? p : lo;
		hi = p > hi ? p : hi;
	}
	assert_true(lo >= BACKOFF_FIRST_MS / 2);
	assert_true(hi <= BACKOFF_FIRST_MS);
	assert_true(hi - lo >= 10);
}

/* The last pause ends at the deadline; after it there is none. */
static void
test_deadline(void **state)
{
	struct backoff b;
	int64_t now = 50000, p, total = 0;

	(void)state;
	backoff_start(&b, now, 2000);
	while ((p = backoff_next(&b, now, UINT32_MAX)) >= 0) {
		assert_true(p > 0);
		now += p;
		total += p;
		assert_true(total <= 2000);
	}
	assert_int_equal(total, 2000);
	/* A clock past the deadline (a slow try) stops at once too. */
	backoff_start(&b, 0, 1000);
	assert_int_equal(backoff_next(&b, 1001, 0), -1);
}

/* The longest --wait neither overflows nor shortens the pauses. */
static void
test_long_wait(void **state)
{
	struct backoff b;

	(void)state;
	backoff_start(&b, INT64_C(1) << 40, UINT32_MAX);
	assert_int_equal(b.deadline_ms, (INT64_C(1) << 40) + UINT32_MAX);
	assert_int_equal(backoff_next(&b, INT64_C(1) << 40, 0),
	    BACKOFF_FIRST_MS / 2);
}

/* A short sleep really sleeps about that long. */
static void
test_sleep(void **state)
{
	struct timespec a, b;
	int64_t dt;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &a);
	backoff_sleep(30);
	clock_gettime(CLOCK_MONOTONIC, &b);
	dt = (int64_t)(b.tv_sec - a.tv_sec) * 1000 +
	    (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(dt >= 30);
	assert_true(dt < 3000);
	backoff_sleep(0);
	backoff_sleep(-5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wait_zero),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_jitter_spreads),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_long_wait),
		cmocka_unit_test(test_sleep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
