/*
 * queue.c: transfer slots handed out round robin by peer, FIFO per peer.
 *
 * Peers with waiting tickets form a ring. A free slot goes to the first
 * ticket of the peer at the head of the ring, and that peer moves to the
 * tail. So the serving order is: every peer's first ticket in ring order,
 * then every peer's second, and so on; a ticket's position is its place in
 * that order. A peer with many tickets therefore delays another peer's one
 * request by at most one turn.
 *
 * One timer does all the work: at 0 ms after a change, else at the end of
 * the earliest slice that another peer waits behind, so a holder whose
 * socket is full hears of it on time, not at its next frame boundary.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "queue.h"

struct queue_peer {
	TAILQ_ENTRY(queue_peer) ring;	/* in q->ring while it has waiters */
	TAILQ_HEAD(, queue_ticket) waiting;
	struct queue_ticket *cur;	/* cursor for the serving-order walk */
	bool		 in_ring;
	uint32_t	 nwaiting;
	uint32_t	 ntickets;	/* waiting and streaming */
	char		 key[64];
	TAILQ_ENTRY(queue_peer) link;	/* q->peers */
};

struct queue_ticket {
	struct queue	*q;
	struct queue_peer *peer;
	TAILQ_ENTRY(queue_ticket) link;	/* peer->waiting or q->active */
	TAILQ_ENTRY(queue_ticket) notify;
	queue_cb	 cb;
	void		*owner;
	uint64_t	 since_ms;
	uint64_t	 slice_start_ms;
	uint32_t	 pos;		/* computed place in line */
	uint32_t	 sent_pos;	/* last place told to the owner */
	bool		 active;
	bool		 paused;	/* has streamed before */
	bool		 in_notify;
	bool		 grant_pending;
	bool		 slice_pending;	/* QUEUE_SLICE_OVER is owed */
	bool		 slice_told;	/* ... or was sent, this slice */
};

struct queue {
	uv_loop_t	*loop;
	uv_timer_t	 timer;		/* runs queue_dispatch(): now, or
					   when a slice ends */
	struct queue_config cfg;
	TAILQ_HEAD(, queue_peer) peers;
	TAILQ_HEAD(, queue_peer) ring;
	size_t		 nring;
	TAILQ_HEAD(, queue_ticket) active;
	TAILQ_HEAD(, queue_ticket) notify;
	size_t		 nactive;
	size_t		 nwaiting;
	bool		 scheduled;
	bool		 closed;
	void		(*done)(void *);
	void		*done_arg;
};

int
queue_new(uv_loop_t *loop, const struct queue_config *cfg, struct queue **out)
{
	struct queue *q;

	*out = NULL;
	if (cfg->max_active == 0)
		return -EINVAL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -ENOMEM;
	q->loop = loop;
	q->cfg = *cfg;
	TAILQ_INIT(&q->peers);
	TAILQ_INIT(&q->ring);
	TAILQ_INIT(&q->active);
	TAILQ_INIT(&q->notify);
	uv_timer_init(loop, &q->timer);
	q->timer.data = q;
	*out = q;
	return 0;
}

/* The timer is closed: the server may finish. */
static void
queue_on_closed(uv_handle_t *h)
{
	struct queue *q = h->data;

	if (q->done != NULL)
		q->done(q->done_arg);
}

void
queue_close(struct queue *q, void (*done)(void *), void *arg)
{
	if (q->closed)
		return;
	q->closed = true;
	q->done = done;
	q->done_arg = arg;
	uv_close((uv_handle_t *)&q->timer, queue_on_closed);
}

void
queue_free(struct queue *q)
{
	struct queue_peer *p;

	if (q == NULL)
		return;
	if (!TAILQ_EMPTY(&q->active) || q->nwaiting > 0)
		abort();	/* tickets still refer to q */
	while ((p = TAILQ_FIRST(&q->peers)) != NULL) {
		TAILQ_REMOVE(&q->peers, p, link);
		free(p);
	}
	free(q);
}

const struct queue_config *
queue_config(const struct queue *q)
{
	return &q->cfg;
}

void
queue_counts(const struct queue *q, size_t *active, size_t *waiting)
{
	*active = q->nactive;
	*waiting = q->nwaiting;
}

bool
queue_active(const struct queue_ticket *t)
{
	return t != NULL && t->active;
}

/* True when a peer other than the ticket's own waits for a slot. */
static bool
queue_other_waits(const struct queue_ticket *t)
{
	const struct queue *q = t->q;

	return q->nring > 1 || (q->nring == 1 && !t->peer->in_ring);
}

/* True when an active ticket's slice has to end for someone else. */
static bool
queue_must_yield(const struct queue_ticket *t)
{
	const struct queue *q = t->q;

	return t->active && q->nactive >= q->cfg.max_active &&
	    queue_other_waits(t);
}

static void	queue_dispatch(uv_timer_t *timer);

/* Works out grants and positions on the next loop iteration. */
static void
queue_schedule(struct queue *q)
{
	if (q->scheduled || q->closed)
		return;
	q->scheduled = true;
	uv_timer_start(&q->timer, queue_dispatch, 0, 0);
}

/* Marks a ticket for a callback in the dispatch in progress. */
static void
queue_notify_add(struct queue_ticket *t)
{
	if (t->in_notify)
		return;
	t->in_notify = true;
	TAILQ_INSERT_TAIL(&t->q->notify, t, notify);
}

/* Puts a peer that has waiters at the tail of the ring. */
static void
queue_ring_tail(struct queue *q, struct queue_peer *p)
{
	if (p->in_ring) {
		TAILQ_REMOVE(&q->ring, p, ring);
		q->nring--;
		p->in_ring = false;
	}
	if (p->nwaiting > 0) {
		TAILQ_INSERT_TAIL(&q->ring, p, ring);
		q->nring++;
		p->in_ring = true;
	}
}

/*
 * Visits the waiting tickets in serving order: round k takes the k-th
 * ticket of each peer, peers in ring order. Returns how many were visited.
 */
static uint32_t
queue_order(struct queue *q, void (*fn)(struct queue_ticket *, uint32_t,
    void *), void *arg)
{
	struct queue_peer *p;
	uint32_t pos = 0;
	bool any;

	TAILQ_FOREACH(p, &q->ring, ring)
		p->cur = TAILQ_FIRST(&p->waiting);
	do {
		any = false;
		TAILQ_FOREACH(p, &q->ring, ring) {
			if (p->cur == NULL)
				continue;
			fn(p->cur, ++pos, arg);
			p->cur = TAILQ_NEXT(p->cur, link);
			any = true;
		}
	} while (any);
	return pos;
}

/* Records a ticket's place in line and flags it when it changed. */
static void
queue_set_pos(struct queue_ticket *t, uint32_t pos, void *arg)
{
	(void)arg;
	t->pos = pos;
	if (pos != t->sent_pos)
		queue_notify_add(t);
}

/*
 * Flags the holders whose quantum of time is up while another peer waits:
 * each hears QUEUE_SLICE_OVER once per slice.
 */
static void
queue_slices(struct queue *q)
{
	uint64_t now = uv_now(q->loop);
	struct queue_ticket *t;

	TAILQ_FOREACH(t, &q->active, link) {
		if (t->slice_told || t->grant_pending || !queue_must_yield(t) ||
		    now - t->slice_start_ms < q->cfg.quantum_ms)
			continue;
		t->slice_told = true;
		t->slice_pending = true;
		queue_notify_add(t);
	}
}

/*
 * Unless a dispatch is due anyway, sets the timer for the first slice
 * that will have to end, or stops it when no slice has to.
 */
static void
queue_slice_timer(struct queue *q)
{
	uint64_t now = uv_now(q->loop), end, due = UINT64_MAX;
	struct queue_ticket *t;

	if (q->scheduled || q->closed)
		return;
	TAILQ_FOREACH(t, &q->active, link) {
		if (t->slice_told || !queue_must_yield(t))
			continue;
		end = t->slice_start_ms + q->cfg.quantum_ms;
		if (end < due)
			due = end;
	}
	if (due == UINT64_MAX)
		uv_timer_stop(&q->timer);
	else
		uv_timer_start(&q->timer, queue_dispatch, due > now ?
		    due - now : 0, 0);
}

/*
 * Hands free slots to the next peers in turn, ends the slices that are
 * over, then tells everyone.
 */
static void
queue_dispatch(uv_timer_t *timer)
{
	struct queue *q = timer->data;
	struct queue_peer *p;
	struct queue_ticket *t;

	q->scheduled = false;
	while (q->nactive < q->cfg.max_active &&
	    (p = TAILQ_FIRST(&q->ring)) != NULL) {
		t = TAILQ_FIRST(&p->waiting);
		TAILQ_REMOVE(&p->waiting, t, link);
		p->nwaiting--;
		q->nwaiting--;
		queue_ring_tail(q, p);
		t->active = true;
		t->slice_start_ms = uv_now(q->loop);
		t->slice_told = false;
		t->grant_pending = true;
		TAILQ_INSERT_TAIL(&q->active, t, link);
		q->nactive++;
		queue_notify_add(t);
	}
	queue_slices(q);
	(void)queue_order(q, queue_set_pos, NULL);
	/* A callback may leave or yield; leaving takes it off this list. */
	while ((t = TAILQ_FIRST(&q->notify)) != NULL) {
		TAILQ_REMOVE(&q->notify, t, notify);
		t->in_notify = false;
		if (t->grant_pending) {
			t->grant_pending = false;
			t->sent_pos = 0;
			t->cb(t->owner, QUEUE_GRANTED, 0);
		} else if (t->slice_pending) {
			t->slice_pending = false;
			if (t->active)
				t->cb(t->owner, QUEUE_SLICE_OVER, 0);
		} else if (!t->active && t->pos != t->sent_pos) {
			t->sent_pos = t->pos;
			t->cb(t->owner, QUEUE_POSITION, t->pos);
		}
	}
	queue_slice_timer(q);
}

/* The peer with this key, created if new; NULL when out of memory. */
static struct queue_peer *
queue_peer_get(struct queue *q, const char *key)
{
	struct queue_peer *p;

	TAILQ_FOREACH(p, &q->peers, link) {
		if (strcmp(p->key, key) == 0)
			return p;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	TAILQ_INIT(&p->waiting);
	snprintf(p->key, sizeof(p->key), "%s", key);
	TAILQ_INSERT_TAIL(&q->peers, p, link);
	return p;
}

/* Frees a peer that has no tickets left. */
static void
queue_peer_put(struct queue *q, struct queue_peer *p)
{
	if (p->ntickets > 0 || p->in_ring)
		return;
	TAILQ_REMOVE(&q->peers, p, link);
	free(p);
}

int
queue_enter(struct queue *q, const char *peer, queue_cb cb, void *owner,
    struct queue_ticket **out)
{
	struct queue_ticket *t;
	struct queue_peer *p;
	bool now;

	*out = NULL;
	now = q->nwaiting == 0 && q->nactive < q->cfg.max_active;
	if (!now && q->nwaiting >= q->cfg.max_queue)
		return -EAGAIN;
	if ((p = queue_peer_get(q, peer)) == NULL)
		return -ENOMEM;
	if (p->ntickets >= q->cfg.max_per_peer) {
		queue_peer_put(q, p);
		return -EDQUOT;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		queue_peer_put(q, p);
		return -ENOMEM;
	}
	t->q = q;
	t->peer = p;
	t->cb = cb;
	t->owner = owner;
	t->since_ms = uv_now(q->loop);
	p->ntickets++;
	*out = t;
	if (now) {
		t->active = true;
		t->slice_start_ms = t->since_ms;
		TAILQ_INSERT_TAIL(&q->active, t, link);
		q->nactive++;
		return 1;
	}
	TAILQ_INSERT_TAIL(&p->waiting, t, link);
	p->nwaiting++;
	q->nwaiting++;
	if (!p->in_ring)
		queue_ring_tail(q, p);
	queue_schedule(q);
	return 0;
}

void
queue_leave(struct queue_ticket *t)
{
	struct queue *q;
	struct queue_peer *p;

	if (t == NULL)
		return;
	q = t->q;
	p = t->peer;
	if (t->in_notify)
		TAILQ_REMOVE(&q->notify, t, notify);
	if (t->active) {
		TAILQ_REMOVE(&q->active, t, link);
		q->nactive--;
	} else {
		TAILQ_REMOVE(&p->waiting, t, link);
		p->nwaiting--;
		q->nwaiting--;
		if (p->nwaiting == 0 && p->in_ring) {
			TAILQ_REMOVE(&q->ring, p, ring);
			q->nring--;
			p->in_ring = false;
		}
	}
	p->ntickets--;
	queue_peer_put(q, p);
	free(t);
	/* A freed slot, or everyone behind it moving up. */
	queue_schedule(q);
}

bool
queue_slice_over(const struct queue_ticket *t, uint64_t slice_bytes)
{
	const struct queue *q = t->q;

	/* Only this peer's own requests waiting: no reason to stop. */
	if (!queue_must_yield(t))
		return false;
	return slice_bytes >= q->cfg.quantum_bytes ||
	    uv_now(q->loop) - t->slice_start_ms >= q->cfg.quantum_ms;
}

void
queue_yield(struct queue_ticket *t)
{
	struct queue *q = t->q;
	struct queue_peer *p = t->peer;

	if (!t->active)
		return;
	TAILQ_REMOVE(&q->active, t, link);
	q->nactive--;
	t->active = false;
	t->paused = true;
	t->sent_pos = 0;
	/* Nothing is owed now; the next dispatch works out its place. */
	t->slice_pending = false;
	if (t->in_notify) {
		TAILQ_REMOVE(&q->notify, t, notify);
		t->in_notify = false;
	}
	/* First in its peer's line, but the peer's turn has just been. */
	TAILQ_INSERT_HEAD(&p->waiting, t, link);
	p->nwaiting++;
	q->nwaiting++;
	queue_ring_tail(q, p);
	queue_schedule(q);
}

struct queue_walk_arg {
	void	(*fn)(void *, const struct queue_view *);
	void	*arg;
};

/* Describes one ticket for the walker. */
static void
queue_view_one(struct queue_ticket *t, uint32_t pos, void *arg)
{
	struct queue_walk_arg *wa = arg;
	struct queue_view v;

	memset(&v, 0, sizeof(v));
	v.owner = t->owner;
	v.peer = t->peer->key;
	v.active = t->active;
	v.paused = t->paused;
	v.position = pos;
	v.since_ms = t->since_ms;
	wa->fn(wa->arg, &v);
}

void
queue_walk(struct queue *q, void (*fn)(void *arg, const struct queue_view *v),
    void *arg)
{
	struct queue_walk_arg wa = { fn, arg };
	struct queue_ticket *t;

	TAILQ_FOREACH(t, &q->active, link)
		queue_view_one(t, 0, &wa);
	(void)queue_order(q, queue_view_one, &wa);
}
