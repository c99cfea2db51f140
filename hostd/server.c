/*
 * server.c: data listeners, accepting, the connection table, shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "acl.h"
#include "audit.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "queue.h"
#include "repo.h"
#include "server.h"
#include "vmmap.h"

/* Send buffer asked for on unix data connections. */
#define SERVER_SNDBUF		(4 * 1024 * 1024)
/*
 * Connections the kernel holds for us while we are busy: a burst of clients
 * larger than this finds the queue full and fails to connect.
 */
#define SERVER_BACKLOG		SOMAXCONN
/* Connections accepted per wakeup of one listener. */
#define SERVER_ACCEPT_BATCH	64
/* Pause after accept() ran out of descriptors or memory. */
#define SERVER_ACCEPT_PAUSE_MS	100
/*
 * Descriptors data connections leave free, so that the control socket,
 * the files of running transfers and the database always find one; at
 * most a quarter of the limit.
 */
#define SERVER_FD_RESERVE	32
/* After the grace time and ERROR SHUTDOWN, how long before a hard close. */
#define SERVER_KILL_MS		3000

struct listener {
	struct server	*srv;
	uv_poll_t	 poll;
	uv_timer_t	 retry;		/* resumes accepting after a pause */
	int		 fd;
	int		 open_handles;
	char		 name[160];
	struct ph_endpoint ep;
	bool		 starved;	/* out of descriptors, said so once */
	bool		 reserved;	/* at the reserve, said so once */
	bool		 have_inode;	/* unix: the socket file we made */
	dev_t		 dev;
	ino_t		 ino;
};

enum server_phase {
	SERVER_RUNNING,
	SERVER_GRACE,		/* active requests may finish */
	SERVER_ABORTING,	/* ERROR SHUTDOWN sent, waiting for closes */
	SERVER_DONE,		/* closing the last handles */
};

struct server {
	uv_loop_t	*loop;
	struct log	*log;
	struct digest	*digest;
	struct store	*store;
	struct repo	*repo;
	struct vmmap	*vmmap;		/* CID -> libvirt domain */
	struct acl	*acl;
	struct audit	*audit;
	struct server_config cfg;
	struct queue	*queue;
	struct listener	**listeners;
	size_t		 nlisteners;
	size_t		 open_listeners;	/* not yet fully closed */
	struct conn_list conns;
	uint64_t	 requests;
	uint64_t	 bytes_sent;
	uint64_t	 started_ms;
	int		 fd_cap;	/* an accepted descriptor this high
					   eats into the reserve */
	bool		 fds_short;	/* one did, and none is free below */
	enum server_phase phase;
	uv_timer_t	 grace_timer;
	uv_timer_t	 kill_timer;
	int		 open_timers;
	void		(*done)(void *);
	void		*done_arg;
};

static void	server_check_done(struct server *srv);

int
server_new(uv_loop_t *loop, struct log *log, struct digest *digest,
    const struct server_config *cfg, struct server **out)
{
	struct server *srv;
	struct rlimit rl;
	rlim_t reserve;
	int err;

	*out = NULL;
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return -ENOMEM;
	srv->fd_cap = INT_MAX;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur <= INT_MAX) {
		reserve = rl.rlim_cur / 4 < SERVER_FD_RESERVE ?
		    rl.rlim_cur / 4 : SERVER_FD_RESERVE;
		srv->fd_cap = (int)(rl.rlim_cur - reserve);
	}
	if ((err = queue_new(loop, &cfg->queue, &srv->queue)) < 0) {
		free(srv);
		return err;
	}
	srv->cfg = *cfg;
	srv->loop = loop;
	srv->log = log;
	srv->digest = digest;
	srv->started_ms = uv_now(loop);
	TAILQ_INIT(&srv->conns);
	uv_timer_init(loop, &srv->grace_timer);
	uv_timer_init(loop, &srv->kill_timer);
	srv->grace_timer.data = srv;
	srv->kill_timer.data = srv;
	srv->open_timers = 3;	/* the queue's timer too */
	*out = srv;
	return 0;
}

void
server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	if (!TAILQ_EMPTY(&srv->conns) || srv->open_listeners > 0 ||
	    srv->open_timers > 0)
		abort();	/* handles still refer to srv */
	for (size_t i = 0; i < srv->nlisteners; i++)
		free(srv->listeners[i]);
	free(srv->listeners);
	queue_free(srv->queue);
	repo_free(srv->repo);
	vmmap_free(srv->vmmap);
	acl_free(srv->acl);
	audit_free(srv->audit);
	free(srv);
}

uv_loop_t *
server_loop(struct server *srv)
{
	return srv->loop;
}

struct log *
server_log(struct server *srv)
{
	return srv->log;
}

void
server_set_access(struct server *srv, struct vmmap *vm, struct acl *acl,
    struct audit *audit)
{
	srv->vmmap = vm;
	srv->acl = acl;
	srv->audit = audit;
}

struct vmmap *
server_vmmap(struct server *srv)
{
	return srv->vmmap;
}

struct acl *
server_acl(struct server *srv)
{
	return srv->acl;
}

struct audit *
server_audit(struct server *srv)
{
	return srv->audit;
}

void
server_set_store(struct server *srv, struct store *store)
{
	srv->store = store;
}

struct store *
server_store(struct server *srv)
{
	return srv->store;
}

struct digest *
server_digest(struct server *srv)
{
	return srv->digest;
}

struct queue *
server_queue(struct server *srv)
{
	return srv->queue;
}

const struct server_config *
server_config(const struct server *srv)
{
	return &srv->cfg;
}

struct server_walk {
	void	(*fn)(void *, const struct queue_view *, const struct conn *);
	void	*arg;
};

/* Hands the connection behind a queue ticket to the caller's function. */
static void
server_walk_one(void *arg, const struct queue_view *v)
{
	struct server_walk *w = arg;

	w->fn(w->arg, v, v->owner);
}

void
server_queue_walk(struct server *srv, void (*fn)(void *arg,
    const struct queue_view *v, const struct conn *c), void *arg)
{
	struct server_walk w = { fn, arg };

	queue_walk(srv->queue, server_walk_one, &w);
}

bool
server_stopping(const struct server *srv)
{
	return srv->phase != SERVER_RUNNING;
}

void
server_count(struct server *srv, uint64_t bytes)
{
	srv->requests++;
	srv->bytes_sent += bytes;
}

void
server_set_repo(struct server *srv, struct repo *repo)
{
	repo_free(srv->repo);
	srv->repo = repo;
}

struct repo *
server_repo(struct server *srv)
{
	return srv->repo;
}

/* Counts the open connections and copies the counters. */
void
server_get_stats(const struct server *srv, struct server_stats *st)
{
	const struct conn *c;

	memset(st, 0, sizeof(st[0]));
	st->requests = srv->requests;
	st->bytes_sent = srv->bytes_sent;
	st->listeners = srv->nlisteners;
	st->started_ms = srv->started_ms;
	for (c = conn_first((struct conn_list *)&srv->conns); c != NULL;
	    c = conn_next((struct conn *)c))
		st->connections++;
}

/* Joins the listener names with ", ". */
void
server_listeners(const struct server *srv, char *buf, size_t cap)
{
	size_t off = 0;
	int n;

	if (cap == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < srv->nlisteners && off < cap; i++) {
		n = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "",
		    srv->listeners[i]->name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

const char *
server_listener_name(const struct server *srv, size_t i)
{
	return i < srv->nlisteners ? srv->listeners[i]->name : NULL;
}

/* ---- Accepting ---------------------------------------------------------- */

/* Formats who is on the other end of an accepted socket. */
static void
server_peer_name(int fd, const struct sockaddr_storage *ss, char *buf,
    size_t cap)
{
	const struct sockaddr_vm *vm;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (ss->ss_family == AF_VSOCK) {
		vm = (const struct sockaddr_vm *)ss;
		snprintf(buf, cap, "vsock:%u", vm->svm_cid);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
	    len == sizeof(cred))
		snprintf(buf, cap, "unix:uid=%u,pid=%d", (unsigned)cred.uid,
		    (int)cred.pid);
	else
		snprintf(buf, cap, "unix:unknown");
}

static void	server_listener_on_accept(uv_poll_t *h, int status, int events);
static void	server_listener_on_retry(uv_timer_t *t);

/*
 * True while the lowest free descriptor lies in the reserve, so that the
 * next connection accepted would take one the control socket may need.
 */
static bool
server_fds_low(const struct server *srv, int fd)
{
	int probe;

	if ((probe = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return true;
	close(probe);
	return probe >= srv->fd_cap;
}

/* Stops accepting for a moment; the kernel keeps new clients waiting. */
static void
server_listener_pause(struct listener *l)
{
	uv_poll_stop(&l->poll);
	uv_timer_start(&l->retry, server_listener_on_retry,
	    SERVER_ACCEPT_PAUSE_MS, 0);
}

/*
 * The pause is over: accept again, unless descriptors are still short
 * (then an idle connection is closed to make room, and we wait again).
 */
static void
server_listener_on_retry(uv_timer_t *t)
{
	struct listener *l = t->data;
	int err;

	if (l->srv->phase != SERVER_RUNNING)
		return;
	if (l->reserved && server_fds_low(l->srv, l->fd)) {
		(void)conn_shed_idle(&l->srv->conns, NULL);
		server_listener_pause(l);
		return;
	}
	if (l->reserved)
		log_info(l->srv->log, "%s: accepting again", l->name);
	l->reserved = false;
	if ((err = uv_poll_start(&l->poll, UV_READABLE,
	    server_listener_on_accept)) < 0)
		log_warn(l->srv->log, "%s: cannot resume accepting: %s",
		    l->name, uv_strerror(err));
}

/* Accepts a batch of connections; pauses when descriptors run out. */
static void
server_listener_on_accept(uv_poll_t *h, int status, int events)
{
	struct listener *l = h->data;
	struct server *srv = l->srv;
	struct sockaddr_storage ss;
	socklen_t sslen;
	char peer[64];
	int fd, err;

	(void)events;
	if (status < 0) {
		log_warn(srv->log, "%s: %s", l->name, uv_strerror(status));
		return;
	}
	for (int i = 0; i < SERVER_ACCEPT_BATCH; i++) {
		sslen = sizeof(ss);
		memset(&ss, 0, sizeof(ss));
		fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
				continue;
			case EAGAIN:
				return;
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				/* One line per episode, not one per retry. */
				if (!l->starved)
					log_warn(srv->log, "%s: cannot accept: "
					    "%s; retrying every %d ms", l->name,
					    strerror(errno),
					    SERVER_ACCEPT_PAUSE_MS);
				l->starved = true;
				/* Nothing else may give one back soon. */
				(void)conn_shed_idle(&srv->conns, NULL);
				server_listener_pause(l);
				return;
			default:
				log_warn(srv->log, "%s: cannot accept: %s",
				    l->name, strerror(errno));
				return;
			}
		}
		if (l->starved) {
			log_info(srv->log, "%s: accepting again", l->name);
			l->starved = false;
		}
		server_peer_name(fd, &ss, peer, sizeof(peer));
		/*
		 * A unix socket's default send buffer (~200 KiB) splits each
		 * 1 MiB DATA frame into several wakeups on both sides; vsock
		 * sizes its buffers from the receiver. Best effort.
		 */
		if (l->ep.kind == PH_EP_UNIX)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF,
			    &(int){ SERVER_SNDBUF }, sizeof(int));
		if ((err = conn_new(srv, &srv->conns, fd, peer,
		    srv->cfg.trust_declared && l->ep.kind == PH_EP_UNIX)) < 0)
			log_warn(srv->log, "peer=%s cannot set up the "
			    "connection: %s", peer, strerror(-err));
		/*
		 * That one took a descriptor of the reserve (or, while they
		 * are short, a hole below it that another one left): an idle
		 * connection gives its own back (once its close callback has
		 * run: no more this wakeup), or the next clients wait in the
		 * kernel's queue until one is free.
		 */
		srv->fds_short = fd >= srv->fd_cap || (srv->fds_short &&
		    server_fds_low(srv, l->fd));
		if (srv->fds_short) {
			if (conn_shed_idle(&srv->conns, NULL))
				return;
			if (!l->reserved)
				log_warn(srv->log, "%s: descriptor %d of at "
				    "most %d for connections: waiting for one "
				    "to close before accepting more", l->name,
				    fd, srv->fd_cap);
			l->reserved = true;
			server_listener_pause(l);
			return;
		}
	}
}

/*
 * Watches a listening fd (owned by l from now on) and adds l to the
 * table. On error l, its fd and a socket file it made are gone.
 */
static int
server_listener_start(struct server *srv, struct listener *l, int fd, char *err,
    size_t errlen)
{
	struct listener **ls;
	int r;

	l->srv = srv;
	l->fd = fd;
	ls = reallocarray(srv->listeners, srv->nlisteners + 1, sizeof(*ls));
	if (ls == NULL) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	srv->listeners = ls;
	if ((r = uv_poll_init_socket(srv->loop, &l->poll, fd)) < 0) {
		snprintf(err, errlen, "cannot watch %s: %s", l->name,
		    uv_strerror(r));
		goto fail;
	}
	uv_timer_init(srv->loop, &l->retry);
	l->poll.data = l;
	l->retry.data = l;
	l->open_handles = 2;
	srv->listeners[srv->nlisteners++] = l;
	srv->open_listeners++;
	if ((r = uv_poll_start(&l->poll, UV_READABLE,
	    server_listener_on_accept)) < 0) {
		snprintf(err, errlen, "cannot watch %s: %s", l->name,
		    uv_strerror(r));
		return r;	/* closed by server_shutdown() */
	}
	return 0;

fail:
	if (l->have_inode)
		(void)unlink(l->ep.path);
	close(fd);
	free(l);
	return r;
}

/* Creates a listener for an endpoint and starts accepting on it. */
int
server_listen(struct server *srv, const char *endpoint, char *err,
    size_t errlen)
{
	struct listener *l;
	struct stat st;
	int fd;

	err[0] = '\0';
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (ph_endpoint_parse(endpoint, &l->ep) < 0) {
		snprintf(err, errlen, "invalid endpoint '%s'", endpoint);
		free(l);
		return -EINVAL;
	}
	if (ph_endpoint_format(&l->ep, l->name, sizeof(l->name)) < 0)
		snprintf(l->name, sizeof(l->name), "%s", endpoint);
	if ((fd = ph_endpoint_listen(&l->ep, SERVER_BACKLOG)) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", l->name,
		    strerror(-fd));
		free(l);
		return fd;
	}
	/* Remember our socket file, so shutdown removes only ours. */
	if (l->ep.kind == PH_EP_UNIX && stat(l->ep.path, &st) == 0) {
		l->have_inode = true;
		l->dev = st.st_dev;
		l->ino = st.st_ino;
	}
	return server_listener_start(srv, l, fd, err, errlen);
}

/*
 * Takes a listening socket handed over by the service manager. Its socket
 * file, if any, belongs to the manager: shutdown leaves it alone.
 */
int
server_adopt(struct server *srv, int fd, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	const struct sockaddr_un *un;
	const struct sockaddr_vm *vm;
	struct listener *l;
	socklen_t len = sizeof(ss);
	int fl, e;

	err[0] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		e = errno;
		snprintf(err, errlen, "passed socket %d: %s", fd, strerror(e));
		close(fd);
		return -e;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "out of memory");
		close(fd);
		return -ENOMEM;
	}
	if (ss.ss_family == AF_VSOCK) {
		vm = (const struct sockaddr_vm *)&ss;
		l->ep.kind = PH_EP_VSOCK;
		l->ep.cid = vm->svm_cid == VMADDR_CID_ANY ? PH_VSOCK_CID_ANY :
		    vm->svm_cid;
		l->ep.port = vm->svm_port;
	} else if (ss.ss_family == AF_UNIX) {
		un = (const struct sockaddr_un *)&ss;
		l->ep.kind = PH_EP_UNIX;
		/* An abstract or unnamed socket keeps an empty path. */
		if (len > offsetof(struct sockaddr_un, sun_path) &&
		    un->sun_path[0] != '\0')
			snprintf(l->ep.path, sizeof(l->ep.path), "%.*s",
			    (int)(len - offsetof(struct sockaddr_un,
			    sun_path)), un->sun_path);
	} else {
		snprintf(err, errlen, "passed socket %d is neither unix nor "
		    "vsock", fd);
		free(l);
		close(fd);
		return -EAFNOSUPPORT;
	}
	if (l->ep.kind == PH_EP_UNIX && l->ep.path[0] == '\0')
		snprintf(l->name, sizeof(l->name), "unix:(fd %d)", fd);
	else if (ph_endpoint_format(&l->ep, l->name, sizeof(l->name)) < 0)
		snprintf(l->name, sizeof(l->name), "fd %d", fd);
	/* accept4() gives each connection its own flags; the listener too. */
	if ((fl = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		e = errno;
		snprintf(err, errlen, "passed socket %d: %s", fd, strerror(e));
		free(l);
		close(fd);
		return -e;
	}
	return server_listener_start(srv, l, fd, err, errlen);
}

/* The listener's handles are closed: release its socket. */
static void
server_listener_on_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	struct server *srv = l->srv;

	if (--l->open_handles > 0)
		return;
	close(l->fd);
	l->fd = -1;
	srv->open_listeners--;
	server_check_done(srv);
}

/* Stops accepting and removes the socket file if it is still ours. */
static void
server_listener_close(struct listener *l)
{
	struct stat st;

	if (l->fd < 0 || uv_is_closing((uv_handle_t *)&l->poll))
		return;
	if (l->have_inode && stat(l->ep.path, &st) == 0 &&
	    S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		(void)unlink(l->ep.path);
	uv_close((uv_handle_t *)&l->poll, server_listener_on_closed);
	uv_close((uv_handle_t *)&l->retry, server_listener_on_closed);
}

/* A stream from a vsock device: served like an accepted socket. */
int
server_add_port(struct server *srv, const char *peer,
    const struct conn_port_ops *ops, void *port, struct conn **out)
{
	*out = NULL;
	if (srv->phase != SERVER_RUNNING)
		return -ESHUTDOWN;
	return conn_new_port(srv, &srv->conns, peer, ops, port, out);
}

/* ---- Shutdown ------------------------------------------------------------ */

void
server_conn_gone(struct server *srv, struct conn *c)
{
	(void)c;
	server_check_done(srv);
}

/* The shutdown's timers are closed: tell main() the server is done. */
static void
server_on_timer_closed(uv_handle_t *h)
{
	struct server *srv = h->data;

	if (--srv->open_timers == 0 && srv->done != NULL)
		srv->done(srv->done_arg);
}

/* The queue's timer (or the audit trail's, or the map's handle) is closed. */
static void
server_on_queue_closed(void *arg)
{
	struct server *srv = arg;

	if (--srv->open_timers == 0 && srv->done != NULL)
		srv->done(srv->done_arg);
}

/* Once nothing is left open, closes the timers and reports done. */
static void
server_check_done(struct server *srv)
{
	if (srv->phase == SERVER_RUNNING || srv->phase == SERVER_DONE)
		return;
	if (!TAILQ_EMPTY(&srv->conns) || srv->open_listeners > 0)
		return;
	srv->phase = SERVER_DONE;
	uv_close((uv_handle_t *)&srv->grace_timer, server_on_timer_closed);
	uv_close((uv_handle_t *)&srv->kill_timer, server_on_timer_closed);
	queue_close(srv->queue, server_on_queue_closed, srv);
	/* Every request has been logged: the audit trail can flush last. */
	if (srv->audit != NULL) {
		srv->open_timers++;
		audit_close(srv->audit, server_on_queue_closed, srv);
	}
	if (srv->vmmap != NULL) {
		srv->open_timers++;
		vmmap_close(srv->vmmap, server_on_queue_closed, srv);
	}
}

/* Connections that ignored ERROR SHUTDOWN are closed now. */
static void
server_on_kill(uv_timer_t *t)
{
	struct server *srv = t->data;
	struct conn *c, *next;

	for (c = conn_first(&srv->conns); c != NULL; c = next) {
		next = conn_next(c);
		conn_kill(c);
	}
}

/* The grace time is over: end whatever is still running. */
static void
server_on_grace(uv_timer_t *t)
{
	struct server *srv = t->data;
	struct conn *c, *next;
	size_t n = 0;

	if (srv->phase != SERVER_GRACE)
		return;
	srv->phase = SERVER_ABORTING;
	for (c = conn_first(&srv->conns); c != NULL; c = conn_next(c))
		n++;
	if (n > 0)
		log_info(srv->log, "grace time over: ending %zu connection%s "
		    "with SHUTDOWN", n, n == 1 ? "" : "s");
	for (c = conn_first(&srv->conns); c != NULL; c = next) {
		next = conn_next(c);
		conn_abort(c);
	}
	uv_timer_start(&srv->kill_timer, server_on_kill, SERVER_KILL_MS, 0);
	server_check_done(srv);
}

/* Stops listening and drains the connections in phases. */
void
server_shutdown(struct server *srv, uint64_t grace_ms, void (*done)(void *),
    void *arg)
{
	struct conn *c, *next;

	if (srv->phase == SERVER_GRACE) {
		/* Asked again: do not wait any longer. */
		uv_timer_stop(&srv->grace_timer);
		server_on_grace(&srv->grace_timer);
		return;
	}
	if (srv->phase != SERVER_RUNNING)
		return;
	srv->phase = SERVER_GRACE;
	srv->done = done;
	srv->done_arg = arg;
	for (size_t i = 0; i < srv->nlisteners; i++)
		server_listener_close(srv->listeners[i]);
	for (c = conn_first(&srv->conns); c != NULL; c = next) {
		next = conn_next(c);
		conn_stop(c);
	}
	uv_timer_start(&srv->grace_timer, server_on_grace, grace_ms, 0);
	server_check_done(srv);
}
