/*
 * test_queue.c: portholed's transfer queue on a real libuv loop: a slot
 * holder hears that its slice is over when its quantum of time is up and
 * another peer waits, without reaching a frame boundary; not when only its
 * own peer waits or nobody does; and a yield hands the slot on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "queue.h"

#define QUANTUM_MS	100

/* One owner: what its ticket was told, and when. */
struct owner {
	struct queue_ticket *t;
	uv_loop_t	*loop;
	bool		 yield;		/* yield on QUEUE_SLICE_OVER */
	int		 granted;
	int		 slice_over;
	uint64_t	 slice_over_ms;	/* uv_now() of the first one */
	uint64_t	 granted_ms;
};

struct fixture {
	uv_loop_t	 loop;
	uv_timer_t	 stop;
	struct queue	*q;
};

static void
owner_cb(void *arg, enum queue_event ev, uint32_t position)
{
	struct owner *o = arg;

	(void)position;
	if (ev == QUEUE_GRANTED) {
		o->granted++;
		o->granted_ms = uv_now(o->loop);
	} else if (ev == QUEUE_SLICE_OVER) {
		if (o->slice_over++ == 0)
			o->slice_over_ms = uv_now(o->loop);
		assert_true(queue_active(o->t));
		if (o->yield)
			queue_yield(o->t);
	}
}

static int
setup(void **state)
{
	struct queue_config cfg = {
		.max_active = 1, .max_queue = 16, .max_per_peer = 4,
		.quantum_bytes = UINT64_MAX, .quantum_ms = QUANTUM_MS,
	};
	struct fixture *f;

	assert_non_null(f = calloc(1, sizeof(*f)));
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uv_timer_init(&f->loop, &f->stop), 0);
	assert_int_equal(queue_new(&f->loop, &cfg, &f->q), 0);
	*state = f;
	return 0;
}

static void
fixture_done(void *arg)
{
	(void)arg;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	queue_close(f->q, fixture_done, NULL);
	uv_close((uv_handle_t *)&f->stop, NULL);
	assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
	queue_free(f->q);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f);
	return 0;
}

static void
stop_loop(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs the loop for ms milliseconds. */
static void
run_for(struct fixture *f, uint64_t ms)
{
	uv_timer_start(&f->stop, stop_loop, ms, 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

/* Enters owner o for peer; want is queue_enter()'s result. */
static void
enter(struct fixture *f, struct owner *o, const char *peer, int want)
{
	o->loop = &f->loop;
	assert_int_equal(queue_enter(f->q, peer, owner_cb, o, &o->t), want);
}

/* The holder is told at the end of its quantum, and yielding hands on. */
static void
test_slice_over_by_time(void **state)
{
	struct fixture *f = *state;
	struct owner a = { .yield = true }, b = { 0 };
	uint64_t t0;

	uv_update_time(&f->loop);
	t0 = uv_now(&f->loop);
	enter(f, &a, "vsock:3", 1);
	enter(f, &b, "vsock:4", 0);
	run_for(f, QUANTUM_MS / 2);
	assert_int_equal(a.slice_over, 0);
	assert_int_equal(b.granted, 0);
	run_for(f, QUANTUM_MS);
	assert_int_equal(a.slice_over, 1);
	assert_true(a.slice_over_ms - t0 >= QUANTUM_MS);
	/* Long before any frame boundary, which never comes here. */
	assert_true(a.slice_over_ms - t0 < 3 * QUANTUM_MS);
	assert_false(queue_active(a.t));
	assert_int_equal(b.granted, 1);
	assert_true(queue_active(b.t));
	/* b now holds the slot with a waiting: its turn ends in time too. */
	b.yield = true;
	run_for(f, QUANTUM_MS + 50);
	assert_int_equal(b.slice_over, 1);
	assert_int_equal(a.granted, 1);
	queue_leave(a.t);
	queue_leave(b.t);
}

/* A waiter that comes after the quantum ended is served at once. */
static void
test_slice_over_late_waiter(void **state)
{
	struct fixture *f = *state;
	struct owner a = { .yield = true }, b = { 0 };
	uint64_t t1;

	enter(f, &a, "vsock:3", 1);
	run_for(f, QUANTUM_MS * 2);
	assert_int_equal(a.slice_over, 0);
	uv_update_time(&f->loop);
	t1 = uv_now(&f->loop);
	enter(f, &b, "vsock:4", 0);
	run_for(f, 20);
	assert_int_equal(a.slice_over, 1);
	assert_int_equal(b.granted, 1);
	assert_true(b.granted_ms - t1 < QUANTUM_MS);
	queue_leave(b.t);
	queue_leave(a.t);
}

/* Only the holder's own peer waiting, or nobody: the slice goes on. */
static void
test_no_slice_over_for_own_peer(void **state)
{
	struct fixture *f = *state;
	struct owner a = { .yield = true }, b = { 0 };

	enter(f, &a, "vsock:3", 1);
	run_for(f, QUANTUM_MS * 2);
	enter(f, &b, "vsock:3", 0);
	run_for(f, QUANTUM_MS * 2);
	assert_int_equal(a.slice_over, 0);
	assert_true(queue_active(a.t));
	assert_int_equal(b.granted, 0);
	queue_leave(a.t);
	run_for(f, 20);
	assert_int_equal(b.granted, 1);
	queue_leave(b.t);
}

/* A holder that does not yield is told once per slice, not in a loop. */
static void
test_slice_over_told_once(void **state)
{
	struct fixture *f = *state;
	struct owner a = { 0 }, b = { 0 };

	enter(f, &a, "vsock:3", 1);
	enter(f, &b, "vsock:4", 0);
	run_for(f, QUANTUM_MS * 3);
	assert_int_equal(a.slice_over, 1);
	assert_true(queue_active(a.t));
	/* It yields later, at a frame boundary: b is served. */
	queue_yield(a.t);
	run_for(f, 20);
	assert_int_equal(b.granted, 1);
	queue_leave(b.t);
	run_for(f, 20);
	assert_int_equal(a.granted, 1);
	queue_leave(a.t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slice_over_by_time,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_slice_over_late_waiter,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_no_slice_over_for_own_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slice_over_told_once,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
