/*
 * server.h: the data listeners, the table of client connections, the
 * current repository and the daemon's counters.
 *
 * Ownership: the server owns its listeners, its connections (each frees
 * itself in its close callback and leaves the table then) and the current
 * repository. main() creates it, and frees it with server_free() only after
 * the done callback of server_shutdown() ran and uv_run() returned.
 */
#ifndef HOSTD_SERVER_H
#define HOSTD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "queue.h"

struct conn;
struct conn_port_ops;
struct digest;
struct log;
struct repo;
struct server;
struct store;
struct acl;
struct audit;
struct vmmap;

/* Scheduling and timeouts, fixed at startup. */
struct server_config {
	struct queue_config queue;
	uint64_t	 request_timeout_ms;	/* HELLO from the accept, the
						   first request from the
						   HELLO_ACK, a later one
						   from its first byte */
	uint64_t	 idle_timeout_ms;	/* after the last request */
	uint64_t	 stall_timeout_ms;	/* a slot holder not reading */
	uint32_t	 max_conns_per_peer;	/* open connections of one
						   peer; 0: no limit */
	bool		 trust_declared;	/* test only: unix listeners
						   take HELLO's declared_peer
						   as the peer identity */
};

/* Counters for `status`. */
struct server_stats {
	uint64_t	 requests;	/* requests answered, any result */
	uint64_t	 bytes_sent;	/* file bytes sent by GETs */
	size_t		 connections;	/* open client connections */
	size_t		 listeners;
	uint64_t	 started_ms;	/* uv_now() at server_new() */
};

/*
 * Creates the server on loop with cfg (copied). log and digest are borrowed
 * and must outlive it. Returns 0 and sets *out, or -ENOMEM, or -EINVAL for
 * a bad cfg.
 */
int	server_new(uv_loop_t *loop, struct log *log, struct digest *digest,
	    const struct server_config *cfg, struct server **out);

/*
 * Frees the server. Every handle must be closed (the shutdown done
 * callback ran) and uv_run() must have returned. Accepts NULL.
 */
void	server_free(struct server *srv);

/*
 * Starts listening on the endpoint string (as ph_endpoint_parse() takes
 * it). Returns 0, or a negative errno with a one-line reason in err.
 */
int	server_listen(struct server *srv, const char *endpoint, char *err,
	    size_t errlen);

/*
 * Takes over fd, a listening unix or vsock stream socket passed by the
 * service manager (socket activation), and accepts on it. The server owns
 * fd afterwards, also on error. Returns 0, or a negative errno with a
 * one-line reason in err.
 */
int	server_adopt(struct server *srv, int fd, char *err, size_t errlen);

/* The listening endpoints as "unix:/a, vsock::7390", into buf. */
void	server_listeners(const struct server *srv, char *buf, size_t cap);

/* The endpoint string of listener i (i < stats.listeners). */
const char *server_listener_name(const struct server *srv, size_t i);

/*
 * Replaces the repository (NULL: none). The server takes ownership of repo
 * and frees the old one. Requests already in progress keep the files they
 * opened; new requests use the new repository.
 */
void	server_set_repo(struct server *srv, struct repo *repo);

/* The current repository, or NULL. Valid until the next set. */
struct repo *server_repo(struct server *srv);

/* Fills the counters. */
void	server_get_stats(const struct server *srv, struct server_stats *st);

/*
 * Begins shutting down: stops accepting, closes idle connections, lets
 * active requests run for grace_ms, then ends them with ERROR SHUTDOWN at a
 * frame boundary; a connection that still cannot finish (its peer stopped
 * reading) is closed a little later. done(arg) is called once every
 * connection and listener is closed. A second call cuts the grace short.
 */
void	server_shutdown(struct server *srv, uint64_t grace_ms,
	    void (*done)(void *), void *arg);

/*
 * Hands an in-process stream (a guest connection carried by a vsock
 * device, see vsockdev.h; ops and port as conn_new_port() takes them) to
 * request handling, with peer as its display form and identity
 * ("vsock:3"). Returns 0 and sets *out, -ESHUTDOWN once the server is
 * stopping, or -ENOMEM.
 */
int	server_add_port(struct server *srv, const char *peer,
	    const struct conn_port_ops *ops, void *port, struct conn **out);

/* ---- For conn.c ------------------------------------------------------- */

uv_loop_t *server_loop(struct server *srv);
struct log *server_log(struct server *srv);
struct digest *server_digest(struct server *srv);

/*
 * Peer names, access rules and the audit trail; set once by main() (each
 * may be NULL: every CID unnamed, everything allowed, nothing recorded).
 * The server owns them from then on: it closes the map and the audit
 * trail once the last connection is gone, and frees all three in
 * server_free().
 */
void	server_set_access(struct server *srv, struct vmmap *vm,
	    struct acl *acl, struct audit *audit);
struct vmmap *server_vmmap(struct server *srv);
struct acl *server_acl(struct server *srv);
struct audit *server_audit(struct server *srv);

/* The content store (cache, fills, upstream); set once by main(). */
void	server_set_store(struct server *srv, struct store *store);
struct store *server_store(struct server *srv);

/* The transfer queue, for connections and `portholectl queue`. */
struct queue *server_queue(struct server *srv);

/* The configuration given to server_new(). */
const struct server_config *server_config(const struct server *srv);

/*
 * Calls fn for every GET that holds or waits for a transfer slot: the
 * streaming ones first, then the waiting ones in serving order.
 */
void	server_queue_walk(struct server *srv, void (*fn)(void *arg,
	    const struct queue_view *v, const struct conn *c), void *arg);

/* True once server_shutdown() was called. */
bool	server_stopping(const struct server *srv);

/* Counts a finished request and the file bytes it sent. */
void	server_count(struct server *srv, uint64_t bytes);

/* Called by a connection when it has closed and is about to be freed. */
void	server_conn_gone(struct server *srv, struct conn *c);

#endif /* HOSTD_SERVER_H */
