/*
 * queue.h: the transfer slots and the fair wait queue in front of them.
 *
 * At most max_active GETs stream at once; the others wait. Waiting requests
 * are grouped by peer (a VM, or a unix client): the next free slot goes to
 * the peers in turn (round robin), and within one peer to its requests in
 * arrival order. A transfer that has held its slot for a quantum while
 * another peer waits yields it and takes its place at the head of its own
 * peer's line. The owner learns of a slice's end in two ways: it asks at
 * each frame boundary (queue_slice_over()), and, since a peer that reads
 * slowly may take far longer than a quantum to reach the next boundary,
 * the queue tells it when the quantum's time is up (QUEUE_SLICE_OVER).
 *
 * Callbacks never run inside a queue_* call: grants, slice ends and
 * position changes are worked out on a later loop iteration, so the owner
 * may enter, leave or yield from anywhere, its callback included.
 *
 * Ownership: the server creates the queue, calls queue_close() when it
 * shuts down and queue_free() after the done callback ran. A ticket belongs
 * to its owner (a connection), which must queue_leave() it before going
 * away; the ticket's memory is released then.
 */
#ifndef HOSTD_QUEUE_H
#define HOSTD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct queue;
struct queue_ticket;

struct queue_config {
	uint32_t	 max_active;	/* transfers streaming at once, >= 1 */
	uint32_t	 max_queue;	/* requests waiting, all peers */
	uint32_t	 max_per_peer;	/* requests of one peer, waiting or
					   streaming */
	uint64_t	 quantum_bytes;	/* a slice ends after this many bytes */
	uint64_t	 quantum_ms;	/* ... or after this long */
};

/* What a ticket's callback is told. */
enum queue_event {
	QUEUE_GRANTED = 1,	/* the ticket holds a slot now */
	QUEUE_POSITION,		/* its place in line changed (1 = next) */
	QUEUE_SLICE_OVER,	/* the slot was held for quantum_ms while
				   another peer waits: yield now, even
				   in the middle of a frame */
};

typedef void (*queue_cb)(void *owner, enum queue_event ev, uint32_t position);

/* One line of `portholectl queue`, in serving order. */
struct queue_view {
	void		*owner;
	const char	*peer;		/* the peer key */
	bool		 active;	/* holds a slot */
	bool		 paused;	/* waiting again after a slice */
	uint32_t	 position;	/* waiting: 1 = next; 0 when active */
	uint64_t	 since_ms;	/* uv_now() when it entered the queue */
};

/*
 * Creates a queue on loop with the limits in cfg (copied). Returns 0 and
 * sets *out, or -ENOMEM or -EINVAL (max_active 0).
 */
int	queue_new(uv_loop_t *loop, const struct queue_config *cfg,
	    struct queue **out);

/*
 * Closes the queue's timer; done(arg) runs from its close callback. Every
 * ticket must have left by then, or leave before the loop ends.
 */
void	queue_close(struct queue *q, void (*done)(void *), void *arg);

/* Frees the queue after queue_close()'s done callback. Accepts NULL. */
void	queue_free(struct queue *q);

/* The limits in force. */
const struct queue_config *queue_config(const struct queue *q);

/*
 * Asks for a slot for owner, a request of peer (a key such as "vsock:3",
 * copied). Returns 1 and sets *out when a slot was free and nobody waited
 * (the caller may stream at once; no callback follows), 0 and sets *out
 * when the ticket waits (QUEUE_POSITION and later QUEUE_GRANTED follow
 * through cb), -EAGAIN when max_queue requests already wait, -EDQUOT when
 * the peer already has max_per_peer requests, or -ENOMEM.
 */
int	queue_enter(struct queue *q, const char *peer, queue_cb cb,
	    void *owner, struct queue_ticket **out);

/*
 * Gives the ticket up, whether it waits or streams; a slot it held goes to
 * the next in line. Frees the ticket. Accepts NULL.
 */
void	queue_leave(struct queue_ticket *t);

/* True while the ticket holds a slot. */
bool	queue_active(const struct queue_ticket *t);

/*
 * Called by a streaming ticket at a frame boundary with the bytes sent so
 * far in its current slice. True when the slice is over and another peer
 * is waiting for a slot: the caller must then stop sending and call
 * queue_yield(). Cheap: nothing is scanned.
 */
bool	queue_slice_over(const struct queue_ticket *t, uint64_t slice_bytes);

/*
 * Gives up the slot and waits again at the head of the ticket's own peer's
 * line; QUEUE_GRANTED follows when its turn comes. The owner may still
 * finish sending a frame it had begun, but starts no new one until then.
 */
void	queue_yield(struct queue_ticket *t);

/* Counts: tickets streaming and waiting. */
void	queue_counts(const struct queue *q, size_t *active, size_t *waiting);

/*
 * Calls fn for every ticket: the streaming ones first, then the waiting
 * ones in the order they would be served.
 */
void	queue_walk(struct queue *q,
	    void (*fn)(void *arg, const struct queue_view *v), void *arg);

#endif /* HOSTD_QUEUE_H */
