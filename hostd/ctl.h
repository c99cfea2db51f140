/*
 * ctl.h: what a control command's handler (hostd/ctl_*.c) may use.
 *
 * ctl.c owns the socket and the connections; it looks each CTL up in
 * the command table (common/ctltab.h) and calls the entry's handler with
 * the operands. A handler answers with exactly one ctl_reply() or
 * ctl_error(), at once or later: a handler that replies later calls
 * ctl_defer() first, and the connection reads nothing more until the
 * reply is sent. Replies are JSON objects built with jansson; portholectl
 * turns them into text. Everything runs on the loop thread.
 */
#ifndef HOSTD_CTL_H
#define HOSTD_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "ctltab.h"
#include "proto.h"

struct ctl_conn;
struct log;
struct server;
struct state;
struct vsockdev;

/* A CTL_REPLY body: the payload less status and length. */
#define CTL_BODY_MAX		(PH_MAX_PAYLOAD - 6)

/* The daemon's side of a command: operands are argv[0..argc). */
typedef void ctl_handler(struct ctl_conn *cc, size_t argc,
    const char *const *argv);

#define CTL_HANDLER_DECL(id, w, mn, mx, ops, fl, handler, show, sum)	\
	ctl_handler handler;
CTLTAB_COMMANDS(CTL_HANDLER_DECL)
#undef CTL_HANDLER_DECL

/* ---- Replies ------------------------------------------------------------ */

/*
 * Sends body (a JSON object; the reference is taken over, NULL means the
 * building ran out of memory) with status, and logs the request's result.
 */
void	ctl_reply(struct ctl_conn *cc, enum ph_err status, json_t *body);

/* Sends {"error": NAME, "message": MESSAGE} with status code. */
void	ctl_error(struct ctl_conn *cc, enum ph_err code, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/*
 * The reply comes later. cancel(cc, job) runs if the connection closes
 * first; after it, the reply must not be sent. ctl_reply() ends it.
 */
typedef void ctl_cancel_fn(struct ctl_conn *cc, void *job);
void	ctl_defer(struct ctl_conn *cc, ctl_cancel_fn *cancel, void *job);

/* ---- JSON values ------------------------------------------------------- */

/* s as a JSON string; bytes that are not UTF-8 become U+FFFD. */
json_t *ctl_json_str(const char *s);

/* s as a JSON string, or null for NULL. */
json_t *ctl_json_str_or_null(const char *s);

/* An unsigned counter as a JSON integer (saturating at INT64_MAX). */
json_t *ctl_json_u64(uint64_t v);

/*
 * An array that stops growing before its JSON passes max bytes, so that a
 * reply stays under CTL_BODY_MAX: ctl_json_list_add() takes item over and
 * returns false (dropping it, and setting cut) once it would not fit.
 * ctl_json_list_init() returns false when out of memory (array NULL).
 */
#define CTL_JSON_LIST_MAX		(CTL_BODY_MAX - 4096)
struct ctl_json_list {
	json_t		*array;
	size_t		 bytes;		/* dumped size so far */
	size_t		 max;
	bool		 cut;
};
bool	ctl_json_list_init(struct ctl_json_list *l, size_t max);
bool	ctl_json_list_add(struct ctl_json_list *l, json_t *item);

/* Parses a decimal count from 1 to max (no sign, no leading zero). */
bool	ctl_parse_count(const char *s, uint32_t max, uint32_t *out);

/* ---- What the handlers work on ----------------------------------------- */

uv_loop_t	*ctl_loop(const struct ctl_conn *cc);
struct log	*ctl_log(const struct ctl_conn *cc);
struct server	*ctl_server(const struct ctl_conn *cc);
struct state	*ctl_state(const struct ctl_conn *cc);
struct vsockdev	*ctl_vsockdev(const struct ctl_conn *cc);	/* or NULL */
/* "unix:uid=0,pid=42": who sent the command, for log lines. */
const char	*ctl_peer(const struct ctl_conn *cc);

#endif /* HOSTD_CTL_H */
