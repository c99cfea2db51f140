/*
 * ctl_queue.c: `queue`: the transfers holding a slot and the requests
 * waiting for one, with the limits.
 */
#include <string.h>

#include "conn.h"
#include "ctl.h"
#include "queue.h"
#include "server.h"

/* The two lists, filled in one walk of the queue. */
struct ctl_queue {
	struct ctl_json_list active;
	struct ctl_json_list waiting;
	size_t		 nactive;
	size_t		 nwaiting;
	uint64_t	 now_ms;
};

/* Bytes per second over ms milliseconds. */
static uint64_t
ctl_queue_rate(uint64_t bytes, uint64_t ms)
{
	return ms == 0 ? 0 : bytes * 1000 / ms;
}

/* Adds one streaming or waiting GET to its list. */
static void
ctl_queue_one(void *arg, const struct queue_view *v, const struct conn *c)
{
	struct ctl_queue *cq = arg;
	struct conn_xfer_info xi;
	json_t *o;

	conn_xfer_info(c, &xi);
	o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:o}",
	    "peer", ctl_json_str(v->peer),
	    "vm", ctl_json_str_or_null(xi.vm),
	    "path", ctl_json_str(xi.path),
	    "bytes_sent", ctl_json_u64(xi.bytes),
	    "size", ctl_json_u64(xi.size),
	    "offset", ctl_json_u64(xi.offset),
	    "rate_bps", ctl_json_u64(ctl_queue_rate(xi.bytes, xi.stream_ms)),
	    "paused", v->paused,
	    "waited_ms", ctl_json_u64(cq->now_ms - v->since_ms));
	if (v->active) {
		cq->nactive++;
		(void)ctl_json_list_add(&cq->active, o);
		return;
	}
	cq->nwaiting++;
	if (o != NULL && json_object_set_new(o, "position",
	    json_integer(v->position)) < 0) {
		json_decref(o);
		o = NULL;
	}
	(void)ctl_json_list_add(&cq->waiting, o);
}

/* `queue`: the limits, the slots in use and the line, in one walk. */
void
ctl_queue_run(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct server *srv = ctl_server(cc);
	const struct queue_config *qc = queue_config(server_queue(srv));
	struct ctl_queue cq;
	bool cut;

	(void)argc;
	(void)argv;
	memset(&cq, 0, sizeof(cq));
	cq.now_ms = uv_now(ctl_loop(cc));
	if (!ctl_json_list_init(&cq.active, CTL_JSON_LIST_MAX / 2) ||
	    !ctl_json_list_init(&cq.waiting, CTL_JSON_LIST_MAX / 2)) {
		json_decref(cq.active.array);
		json_decref(cq.waiting.array);
		ctl_reply(cc, PH_OK, NULL);
		return;
	}
	server_queue_walk(srv, ctl_queue_one, &cq);
	cut = cq.active.cut || cq.waiting.cut;
	ctl_reply(cc, PH_OK, json_pack("{s:I, s:I, s:I, s:o, s:o, s:I, s:I, "
	    "s:b}", "max_active", (json_int_t)qc->max_active,
	    "max_queue", (json_int_t)qc->max_queue,
	    "max_per_peer", (json_int_t)qc->max_per_peer,
	    "active", cq.active.array, "waiting", cq.waiting.array,
	    "active_count", (json_int_t)cq.nactive,
	    "waiting_count", (json_int_t)cq.nwaiting,
	    "truncated", cut));
}
