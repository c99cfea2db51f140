/*
 * vsockdev.c: vhost-user endpoints, their QEMU sessions, and the in-process
 * link from each guest connection to request handling.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "proto.h"
#include "server.h"
#include "vhost.h"
#include "vsock.h"
#include "vsockdev.h"

#define VSOCKDEV_BACKLOG	4
#define VSOCKDEV_MAX		64

struct vsd_ep;

/* One QEMU connected to an endpoint: its vhost-user link and device. */
struct vsd_session {
	struct vsd_ep		*ep;
	int			 fd;
	uv_poll_t		 poll;
	struct vhost_user	*vu;
	struct vsock_dev	*dev;
	struct vhost_watch	 watch;
	uint64_t		 started_ms;
	bool			 was_running;
};

/* One --vhost-user endpoint. */
struct vsd_ep {
	struct vsockdev		*vd;
	struct vsockdev_spec	 spec;
	char			 label[160];	/* for log lines */
	char			 peer[96];	/* "vsock:N[,vm=NAME]" */
	int			 fd;
	uv_poll_t		 poll;
	bool			 listening;
	dev_t			 dev;		/* the socket file we made */
	ino_t			 ino;
	struct vsd_session	*sess;
};

struct vsockdev {
	uv_loop_t		*loop;
	struct log		*log;
	struct server		*srv;
	struct vsd_ep		*eps[VSOCKDEV_MAX];
	size_t			 neps;
	size_t			 open_handles;
	bool			 closed;
};

/* A descriptor the vhost library asked us to watch. */
struct vsockdev_watch {
	struct vsockdev		*vd;
	uv_poll_t		 poll;
	void			(*ready)(void *, unsigned);
	void			*obj;
};

/* ---- Parsing ---------------------------------------------------------------- */

/* True for a name that is one safe log field and file name part. */
static bool
vsockdev_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > VSOCKDEV_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		    s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/* The path runs to the first comma; then KEY=VALUE pairs, each once. */
int
vsockdev_parse(const char *s, struct vsockdev_spec *out, char *err,
    size_t errlen)
{
	const char *p, *comma, *eq;
	unsigned long long v;
	size_t n, klen;
	bool have_cid = false;
	char num[24], *end;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	comma = strchr(s, ',');
	n = comma != NULL ? (size_t)(comma - s) : strlen(s);
	if (n == 0 || n >= sizeof(out->path)) {
		snprintf(err, errlen, "vhost-user socket path must be 1 to %zu "
		    "bytes", sizeof(out->path) - 1);
		return -EINVAL;
	}
	memcpy(out->path, s, n);
	for (p = comma; p != NULL; p = comma) {
		p++;
		comma = strchr(p, ',');
		n = comma != NULL ? (size_t)(comma - p) : strlen(p);
		if ((eq = memchr(p, '=', n)) == NULL) {
			snprintf(err, errlen, "'%.*s' is not KEY=VALUE (cid=N "
			    "or name=NAME)", (int)n, p);
			return -EINVAL;
		}
		klen = (size_t)(eq - p);
		n -= klen + 1;
		if (klen == 3 && memcmp(p, "cid", 3) == 0) {
			if (have_cid || n == 0 || n >= sizeof(num) ||
			    eq[1] < '0' || eq[1] > '9')
				goto bad_cid;
			memcpy(num, eq + 1, n);
			num[n] = '\0';
			errno = 0;
			v = strtoull(num, &end, 10);
			if (errno != 0 || *end != '\0' || v <= VSOCK_HOST_CID ||
			    v >= UINT32_MAX)
				goto bad_cid;
			out->cid = (uint32_t)v;
			have_cid = true;
		} else if (klen == 4 && memcmp(p, "name", 4) == 0) {
			if (out->name[0] != '\0' || !vsockdev_name_ok(eq + 1,
			    n)) {
				snprintf(err, errlen, "invalid VM name '%.*s' "
				    "(1 to %d letters, digits, '.', '_', '-')",
				    (int)n, eq + 1, VSOCKDEV_NAME_MAX);
				return -EINVAL;
			}
			memcpy(out->name, eq + 1, n);
		} else {
			snprintf(err, errlen, "unknown key '%.*s' (cid or "
			    "name)", (int)klen, p);
			return -EINVAL;
		}
	}
	if (!have_cid) {
		snprintf(err, errlen, "'%s' has no cid=N (the guest's CID, "
		    "3 to 4294967294)", s);
		return -EINVAL;
	}
	return 0;

bad_cid:
	snprintf(err, errlen, "invalid or repeated cid in '%s' (3 to "
	    "4294967294)", s);
	return -EINVAL;
}

/* ---- Watching for the vhost library ------------------------------------------ */

/* A handle of ours is closed: count it and free what carried it. */
static void
vsockdev_on_watch_closed(uv_handle_t *h)
{
	struct vsockdev_watch *w = h->data;

	w->vd->open_handles--;
	free(w);
}

/* Passes a descriptor's readiness (or its error) on to the library. */
static void
vsockdev_on_watch(uv_poll_t *h, int status, int events)
{
	struct vsockdev_watch *w = h->data;
	unsigned ev = 0;

	if (events & UV_READABLE)
		ev |= VHOST_EV_READ;
	if (events & UV_WRITABLE)
		ev |= VHOST_EV_WRITE;
	/* On an error the library's next read or write finds out why. */
	if (status < 0)
		ev = VHOST_EV_READ | VHOST_EV_WRITE;
	w->ready(w->obj, ev);
}

/* The library's watch: a uv_poll per descriptor, made on first use. */
static int
vsockdev_watch(void *arg, void **slot, int fd, unsigned events,
    void (*ready)(void *, unsigned), void *obj)
{
	struct vsockdev *vd = arg;
	struct vsockdev_watch *w = *slot;
	int uvev = 0, err;

	if (w == NULL) {
		if ((w = calloc(1, sizeof(*w))) == NULL)
			return -ENOMEM;
		if ((err = uv_poll_init(vd->loop, &w->poll, fd)) < 0) {
			free(w);
			return err;
		}
		w->vd = vd;
		w->poll.data = w;
		vd->open_handles++;
		*slot = w;
	}
	w->ready = ready;
	w->obj = obj;
	if (events & VHOST_EV_READ)
		uvev |= UV_READABLE;
	if (events & VHOST_EV_WRITE)
		uvev |= UV_WRITABLE;
	if (uvev == 0)
		return uv_poll_stop(&w->poll);
	return uv_poll_start(&w->poll, uvev, vsockdev_on_watch);
}

/* The library is done with fd: stop its poll, free it later, close fd. */
static void
vsockdev_release(void *arg, void **slot, int fd)
{
	struct vsockdev_watch *w = *slot;

	(void)arg;
	if (w != NULL) {
		/* Stopped polling first, so closing fd below is safe. */
		uv_poll_stop(&w->poll);
		uv_close((uv_handle_t *)&w->poll, vsockdev_on_watch_closed);
		*slot = NULL;
	}
	close(fd);
}

/* ---- Guest connections --------------------------------------------------------- */

/* The connection has output for the guest, or room for its input. */
static void
vsockdev_port_wake(void *port)
{
	vsock_conn_wake(port);
}

/* The connection ends: the guest hears SHUTDOWN. */
static void
vsockdev_port_closed(void *port)
{
	vsock_conn_close(port);
}

static const struct conn_port_ops vsd_port_ops = {
	.wake = vsockdev_port_wake,
	.closed = vsockdev_port_closed,
};

/*
 * The guest connects to the served port: a connection of the server whose
 * transport is the device's side of the guest connection.
 */
static int
vsockdev_connect(void *arg, uint32_t guest_port, struct vsock_conn *vc,
    void **end)
{
	struct vsd_session *s = arg;
	struct vsd_ep *ep = s->ep;
	struct conn *c;
	int err;

	*end = NULL;
	if ((err = server_add_port(ep->vd->srv, ep->peer, &vsd_port_ops, vc,
	    &c)) < 0) {
		if (err != -ESHUTDOWN)
			log_warn(ep->vd->log, "peer=%s cannot set up the "
			    "connection from guest port %u: %s", ep->peer,
			    guest_port, strerror(-err));
		return err;
	}
	*end = c;
	return 0;
}

/* The device hands guest bytes to the connection. */
static ssize_t
vsockdev_write(void *end, const struct iovec *iov, size_t niov, size_t len)
{
	return conn_port_write(end, iov, niov, len);
}

/* The device asks the connection to fill the guest's receive buffers. */
static ssize_t
vsockdev_read(void *end, const struct iovec *iov, size_t niov, size_t len)
{
	return conn_port_read(end, iov, niov, len);
}

static void
vsockdev_eof(void *end)
{
	conn_port_eof(end);
}

static void
vsockdev_gone(void *end)
{
	conn_port_gone(end);
}

/* The guest broke its queues: say so once; only its device suffers. */
static void
vsockdev_broken(void *arg, const char *why)
{
	struct vsd_session *s = arg;

	log_warn(s->ep->vd->log, "%s: guest broke its vsock device: %s; its "
	    "connections are dropped until the guest resets the device",
	    s->ep->label, why);
}

static const struct vsock_dev_ops vsd_dev_ops = {
	.connect = vsockdev_connect,
	.write = vsockdev_write,
	.read = vsockdev_read,
	.eof = vsockdev_eof,
	.gone = vsockdev_gone,
	.broken = vsockdev_broken,
};

/* ---- QEMU sessions --------------------------------------------------------- */

/* The session's socket handle is closed: free the rest. */
static void
vsockdev_on_session_closed(uv_handle_t *h)
{
	struct vsd_session *s = h->data;
	struct vsockdev *vd = s->ep->vd;

	close(s->fd);
	vd->open_handles--;
	free(s);
}

/* Ends a session: rings stop, guest memory is unmapped, sockets close. */
static void
vsockdev_session_end(struct vsd_session *s, const char *why)
{
	struct vsd_ep *ep = s->ep;
	struct vsock_dev_stats st;

	vsock_dev_stats(s->dev, &st);
	log_info(ep->vd->log, "%s: QEMU %s after %" PRIu64 " s; %" PRIu64
	    " connections, %" PRIu64 " bytes to the guest, %" PRIu64 " from "
	    "it", ep->label, why, (uv_now(ep->vd->loop) - s->started_ms) /
	    1000, st.accepted, st.to_guest, st.from_guest);
	uv_poll_stop(&s->poll);
	vhost_user_free(s->vu);
	vsock_dev_free(s->dev);
	ep->sess = NULL;
	uv_close((uv_handle_t *)&s->poll, vsockdev_on_session_closed);
}

/* QEMU sent something: handle it; a closed or broken link ends it. */
static void
vsockdev_on_session(uv_poll_t *h, int status, int events)
{
	struct vsd_session *s = h->data;
	struct vsock_dev_stats st;
	char why[256];
	int err;

	(void)status;
	(void)events;
	if ((err = vhost_user_input(s->vu)) < 0) {
		if (err == -ECONNRESET)
			vsockdev_session_end(s, "disconnected");
		else {
			snprintf(why, sizeof(why), "dropped: %s",
			    vhost_user_error(s->vu));
			vsockdev_session_end(s, why);
		}
		return;
	}
	/* Tell the story of the device's lifetime, not each message. */
	vsock_dev_stats(s->dev, &st);
	if (st.running != s->was_running) {
		s->was_running = st.running;
		if (st.running)
			log_info(s->ep->vd->log, "%s: device running (features "
			    "0x%" PRIx64 ")%s", s->ep->label,
			    vhost_user_features(s->vu), st.connections > 0 ?
			    "; its guest connections go on" : "");
		else
			log_info(s->ep->vd->log, "%s: device stopped (the VM "
			    "paused, or its driver reset it)", s->ep->label);
	}
}

/* A QEMU connects; one at a time per endpoint. */
static void
vsockdev_on_accept(uv_poll_t *h, int status, int events)
{
	struct vsd_ep *ep = h->data;
	struct vsockdev *vd = ep->vd;
	struct vsock_dev_config cfg;
	struct vsd_session *s = NULL;
	int fd, err = -ENOMEM;

	(void)events;
	if (status < 0)
		return;
	fd = accept4(ep->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			log_warn(vd->log, "%s: cannot accept: %s", ep->label,
			    strerror(errno));
		return;
	}
	if (ep->sess != NULL) {
		log_warn(vd->log, "%s: a second front-end connected while "
		    "one is active; refused", ep->label);
		close(fd);
		return;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		goto fail;
	s->ep = ep;
	s->fd = fd;
	s->started_ms = uv_now(vd->loop);
	s->watch.watch = vsockdev_watch;
	s->watch.release = vsockdev_release;
	s->watch.arg = vd;
	memset(&cfg, 0, sizeof(cfg));
	cfg.guest_cid = ep->spec.cid;
	cfg.port = PH_DEFAULT_PORT;
	if ((err = vsock_dev_new(&cfg, &vsd_dev_ops, s, &s->dev)) < 0 ||
	    (err = vhost_user_new(fd, vsock_dev_vhost(), s->dev, &s->watch,
	    &s->vu)) < 0 ||
	    (err = uv_poll_init_socket(vd->loop, &s->poll, fd)) < 0)
		goto fail;
	s->poll.data = s;
	vd->open_handles++;
	ep->sess = s;
	if ((err = uv_poll_start(&s->poll, UV_READABLE,
	    vsockdev_on_session)) < 0) {
		vsockdev_session_end(s, "could not be watched");
		return;
	}
	log_info(vd->log, "%s: QEMU connected; guest CID %" PRIu32,
	    ep->label, ep->spec.cid);
	return;

fail:
	log_warn(vd->log, "%s: cannot serve the front-end: %s", ep->label,
	    strerror(-err));
	if (s != NULL) {
		vhost_user_free(s->vu);
		vsock_dev_free(s->dev);
		free(s);
	}
	close(fd);
}

/* ---- Endpoints -------------------------------------------------------------- */

int
vsockdev_new(uv_loop_t *loop, struct log *log, struct server *srv,
    struct vsockdev **out)
{
	struct vsockdev *vd;

	*out = NULL;
	if ((vd = calloc(1, sizeof(*vd))) == NULL)
		return -ENOMEM;
	vd->loop = loop;
	vd->log = log;
	vd->srv = srv;
	*out = vd;
	return 0;
}

/* One endpoint: parsed, checked against the others, listening. */
int
vsockdev_add(struct vsockdev *vd, const char *spec, char *err,
    size_t errlen)
{
	struct ph_endpoint pe;
	struct vsd_ep *ep;
	struct stat st;
	mode_t old;
	int fd, r;

	if ((ep = calloc(1, sizeof(*ep))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if ((r = vsockdev_parse(spec, &ep->spec, err, errlen)) < 0)
		goto fail;
	r = -EINVAL;
	if (vd->neps == VSOCKDEV_MAX) {
		snprintf(err, errlen, "too many --vhost-user endpoints (at "
		    "most %d)", VSOCKDEV_MAX);
		goto fail;
	}
	for (size_t i = 0; i < vd->neps; i++) {
		if (strcmp(vd->eps[i]->spec.path, ep->spec.path) == 0 ||
		    vd->eps[i]->spec.cid == ep->spec.cid) {
			snprintf(err, errlen, "vhost-user endpoints %s and %s "
			    "share a path or a CID", vd->eps[i]->spec.path,
			    ep->spec.path);
			goto fail;
		}
	}
	ep->vd = vd;
	if (ep->spec.name[0] != '\0') {
		snprintf(ep->peer, sizeof(ep->peer), "vsock:%" PRIu32 ",vm=%s",
		    ep->spec.cid, ep->spec.name);
		snprintf(ep->label, sizeof(ep->label), "vhost-user:%s "
		    "(cid %" PRIu32 ", vm %s)", ep->spec.path, ep->spec.cid,
		    ep->spec.name);
	} else {
		snprintf(ep->peer, sizeof(ep->peer), "vsock:%" PRIu32,
		    ep->spec.cid);
		snprintf(ep->label, sizeof(ep->label), "vhost-user:%s "
		    "(cid %" PRIu32 ")", ep->spec.path, ep->spec.cid);
	}
	memset(&pe, 0, sizeof(pe));
	pe.kind = PH_EP_UNIX;
	memcpy(pe.path, ep->spec.path, sizeof(pe.path));
	/* Born 0600: only our user's QEMU may become this guest's host. */
	old = umask(0177);
	fd = ph_endpoint_listen(&pe, VSOCKDEV_BACKLOG);
	umask(old);
	if (fd < 0) {
		r = fd;
		snprintf(err, errlen, "cannot listen on vhost-user socket %s: "
		    "%s", ep->spec.path, strerror(-fd));
		goto fail;
	}
	ep->fd = fd;
	if (stat(ep->spec.path, &st) == 0) {
		ep->dev = st.st_dev;
		ep->ino = st.st_ino;
	}
	if ((r = uv_poll_init_socket(vd->loop, &ep->poll, fd)) < 0) {
		snprintf(err, errlen, "cannot watch %s: %s", ep->spec.path,
		    uv_strerror(r));
		(void)unlink(ep->spec.path);
		close(fd);
		goto fail;
	}
	ep->poll.data = ep;
	vd->open_handles++;
	ep->listening = true;
	vd->eps[vd->neps++] = ep;
	if ((r = uv_poll_start(&ep->poll, UV_READABLE,
	    vsockdev_on_accept)) < 0) {
		snprintf(err, errlen, "cannot watch %s: %s", ep->spec.path,
		    uv_strerror(r));
		return r;	/* closed by vsockdev_close() */
	}
	return 0;

fail:
	free(ep);
	return r;
}

size_t
vsockdev_count(const struct vsockdev *vd)
{
	return vd->neps;
}

void
vsockdev_info(const struct vsockdev *vd, size_t i, struct vsockdev_info *out)
{
	const struct vsd_ep *ep = vd->eps[i];
	struct vsock_dev_stats st;

	memset(out, 0, sizeof(*out));
	out->path = ep->spec.path;
	out->cid = ep->spec.cid;
	out->name = ep->spec.name;
	if (ep->sess == NULL)
		return;
	vsock_dev_stats(ep->sess->dev, &st);
	out->frontend = true;
	out->running = st.running && !st.broken;
	out->connections = st.connections;
	out->to_guest = st.to_guest;
}

void
vsockdev_names(const struct vsockdev *vd, char *buf, size_t cap)
{
	size_t off = 0;
	int n;

	if (cap == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < vd->neps && off < cap; i++) {
		n = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "",
		    vd->eps[i]->label);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* The listening socket's handle is closed. */
static void
vsockdev_on_listener_closed(uv_handle_t *h)
{
	struct vsd_ep *ep = h->data;

	close(ep->fd);
	ep->fd = -1;
	ep->vd->open_handles--;
}

void
vsockdev_stop(struct vsockdev *vd)
{
	struct vsd_ep *ep;
	struct stat st;

	if (vd == NULL)
		return;
	for (size_t i = 0; i < vd->neps; i++) {
		ep = vd->eps[i];
		if (!ep->listening)
			continue;
		ep->listening = false;
		/* Remove the socket file only if it is still the one we made. */
		if (stat(ep->spec.path, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    st.st_dev == ep->dev && st.st_ino == ep->ino)
			(void)unlink(ep->spec.path);
		uv_close((uv_handle_t *)&ep->poll, vsockdev_on_listener_closed);
	}
}

void
vsockdev_close(struct vsockdev *vd)
{
	if (vd == NULL || vd->closed)
		return;
	vd->closed = true;
	vsockdev_stop(vd);
	for (size_t i = 0; i < vd->neps; i++)
		if (vd->eps[i]->sess != NULL)
			vsockdev_session_end(vd->eps[i]->sess, "dropped: the "
			    "daemon is stopping");
}

void
vsockdev_free(struct vsockdev *vd)
{
	if (vd == NULL)
		return;
	if (vd->open_handles > 0)
		abort();	/* handles still refer to vd */
	for (size_t i = 0; i < vd->neps; i++)
		free(vd->eps[i]);
	free(vd);
}
