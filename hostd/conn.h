/*
 * conn.h: one client connection on a data listener.
 *
 * The connection reads frames into a buffer bounded at one maximal request,
 * answers HELLO and then one request at a time (GET, STAT, LIST, PING), and
 * writes through a wbuf so file data goes out with sendfile() as fast as the
 * peer reads it. A malformed or out-of-sequence frame gets ERROR PROTOCOL
 * and closes this connection only.
 *
 * Lifetime: conn_new() links the connection into the table; it frees itself
 * in its close callback after calling server_conn_gone(). Nobody else frees
 * it. The conn_* calls below may be made until server_conn_gone() runs.
 */
#ifndef HOSTD_CONN_H
#define HOSTD_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <sys/uio.h>

struct conn;
struct server;

TAILQ_HEAD(conn_list, conn);

/*
 * Takes over the accepted, non-blocking socket fd (closed on failure too),
 * with peer its display form ("unix:uid=0,pid=1" or "vsock:3"), and appends
 * the connection to list. peer is also its identity in the transfer queue,
 * unless trust_declared (test listeners only) lets the HELLO's
 * declared_peer replace it. A peer keeps at most max_conns_per_peer
 * connections: over it, its oldest idle one is closed, or if none is idle
 * this one is answered ERROR BUSY and closed. Returns 0 or a negative
 * errno.
 */
int	conn_new(struct server *srv, struct conn_list *list, int fd,
	    const char *peer, bool trust_declared);

/*
 * An in-process peer (a guest connection on portholed's own vsock device)
 * in place of a socket. The connection calls these with the port it was
 * given.
 */
struct conn_port_ops {
	/*
	 * The connection has output to pull again, or room for input the
	 * port held back. Not called while the port is inside
	 * conn_port_read() for output it sees there.
	 */
	void	(*wake)(void *port);
	/*
	 * The connection is closing: it makes no more calls, and the port
	 * must not call conn_port_*() with it again.
	 */
	void	(*closed)(void *port);
};

/*
 * Like conn_new(), on a port (the same limit per peer applies): appends
 * the connection to list and sets *out. Returns 0 or -ENOMEM.
 */
int	conn_new_port(struct server *srv, struct conn_list *list,
	    const char *peer, const struct conn_port_ops *ops, void *port,
	    struct conn **out);

/*
 * Input from the port: len bytes in niov pieces, read now. Returns the
 * bytes taken (fewer when the input buffer is full: ops.wake follows once
 * there is room; all of them from a connection being dropped), or a
 * negative errno when the connection is closing.
 */
ssize_t	conn_port_write(struct conn *c, const struct iovec *iov, size_t niov,
	    size_t len);

/*
 * Output for the port: up to len bytes written into niov pieces (file
 * data read straight into them). Returns the bytes written, -EAGAIN when
 * there are none now (ops.wake follows when there are), or 0 once the
 * connection is closing.
 */
ssize_t	conn_port_read(struct conn *c, const struct iovec *iov, size_t niov,
	    size_t len);

/* The port's peer sends nothing more (as recv() returning 0). */
void	conn_port_eof(struct conn *c);

/* The port dropped the connection: it closes, without calling the port. */
void	conn_port_gone(struct conn *c);

/* A GET's progress, for `portholectl queue`. */
struct conn_xfer_info {
	const char	*peer;		/* display form; valid while c is */
	const char	*vm;		/* libvirt domain name, or NULL */
	const char	*path;		/* escaped, "/"-rooted; "-" if none */
	uint64_t	 size;		/* file size */
	uint64_t	 offset;	/* where the GET started */
	uint64_t	 bytes;		/* file bytes queued for sending */
	uint64_t	 stream_ms;	/* streaming for; 0 if not yet */
};

/* Fills out for c's request in flight. */
void	conn_xfer_info(const struct conn *c, struct conn_xfer_info *out);

/*
 * Closes the oldest idle connection in list (one that has made a request
 * and has none in flight) of the same peer as like, or of any peer when
 * like is NULL; like itself is never chosen. Returns true if it closed
 * one (it leaves the list in its close callback).
 */
bool	conn_shed_idle(struct conn_list *list, const struct conn *like);

/* First of list, or the one after c, for walking the table. */
struct conn *conn_first(struct conn_list *list);
struct conn *conn_next(struct conn *c);

/*
 * Shutdown, step one: close now if no request is in flight, else close
 * once the current request is answered.
 */
void	conn_stop(struct conn *c);

/*
 * Shutdown, step two: end the request in flight with ERROR SHUTDOWN at the
 * next frame boundary and close after it is sent.
 */
void	conn_abort(struct conn *c);

/* Shutdown, last step: close at once, whatever is in flight. */
void	conn_kill(struct conn *c);

#endif /* HOSTD_CONN_H */
