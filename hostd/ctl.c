/*
 * ctl.c: the control socket: connections, CTL frames in, one JSON
 * reply out per request, dispatch through the command table.
 *
 * The commands themselves live in ctl_*.c, one file per group (ctl.h is
 * their interface); portholectl renders the replies as text.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control.h"
#include "ctl.h"
#include "fsutil.h"
#include "log.h"
#include "proto.h"
#include "server.h"

#define CTL_BACKLOG		16
/* The command's words as logged: escaped, joined with ",". */
#define CTL_CMD_LOG		1024

struct ctl_conn {
	TAILQ_ENTRY(ctl_conn) link;
	struct control	*ctl;
	uv_pipe_t	 pipe;
	uv_write_t	 wreq;
	uint8_t		*out;		/* the reply being written */
	bool		 writing;
	bool		 reading;
	bool		 close_after;
	bool		 closing;
	bool		 pending;	/* a command has not replied yet */
	ctl_cancel_fn	*cancel;	/* its job, if it replies later */
	void		*job;
	char		 cmd[CTL_CMD_LOG];	/* its words, for the log */
	char		 peer[64];
	size_t		 rlen;
	uint8_t		 rbuf[PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD];
};

struct control {
	uv_loop_t	*loop;
	struct log	*log;
	struct server	*srv;
	struct state	*state;
	struct vsockdev	*vsd;		/* --vhost-user endpoints, or NULL */
	uv_pipe_t	 listener;
	bool		 listener_open;	/* until its close callback */
	bool		 closed;
	char		 path[sizeof(((struct ph_endpoint *)0)->path)];
	bool		 have_inode;
	dev_t		 dev;
	ino_t		 ino;
	TAILQ_HEAD(, ctl_conn) conns;
};

/* The handlers, in the table's order. */
#define CTL_HANDLER_ENTRY(id, w, mn, mx, ops, fl, handler, show, sum) \
	[CTLTAB_##id] = handler,
static ctl_handler *const ctl_handlers[CTLTAB_NCOMMANDS] = {
	CTLTAB_COMMANDS(CTL_HANDLER_ENTRY)
};
#undef CTL_HANDLER_ENTRY

static void	ctl_conn_close(struct ctl_conn *cc);
static void	ctl_process(struct ctl_conn *cc);
static void	ctl_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void	ctl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- Replies ------------------------------------------------------------- */

/* A reply has been written: read the next request, or close. */
static void
ctl_on_write(uv_write_t *req, int status)
{
	struct ctl_conn *cc = req->data;

	free(cc->out);
	cc->out = NULL;
	cc->writing = false;
	if (status < 0 || cc->close_after || cc->ctl->closed) {
		ctl_conn_close(cc);
		return;
	}
	ctl_process(cc);
}

/*
 * Sends one CTL_REPLY whose body is the JSON text json and a newline;
 * reading pauses until it is written. NULL json: memory ran out, close.
 */
static void
ctl_send(struct ctl_conn *cc, enum ph_err status, const char *json)
{
	struct ph_writer w;
	uv_buf_t b;
	size_t len, total;
	int err;

	if (json == NULL) {
		ctl_conn_close(cc);
		return;
	}
	len = strlen(json) + 1;
	total = PH_HDR_LEN + 6 + len;
	if ((cc->out = malloc(total)) == NULL) {
		ctl_conn_close(cc);
		return;
	}
	ph_frame_header_write(cc->out, PH_CTL_REPLY, (uint32_t)(6 + len));
	ph_writer_init(&w, cc->out + PH_HDR_LEN, 6 + len);
	(void)ph_writer_put_u16(&w, (uint16_t)status);
	(void)ph_writer_put_u32(&w, (uint32_t)len);
	(void)ph_writer_put_bytes(&w, json, len - 1);
	(void)ph_writer_put_u8(&w, '\n');
	b = uv_buf_init((char *)cc->out, (unsigned int)total);
	cc->wreq.data = cc;
	if ((err = uv_write(&cc->wreq, (uv_stream_t *)&cc->pipe, &b, 1,
	    ctl_on_write)) < 0) {
		free(cc->out);
		cc->out = NULL;
		ctl_conn_close(cc);
		return;
	}
	cc->writing = true;
	cc->reading = false;
	uv_read_stop((uv_stream_t *)&cc->pipe);
}

/* The error object; a fixed one when even that cannot be built. */
static char *
ctl_error_body(enum ph_err code, const char *msg)
{
	json_t *o;
	char *s;

	o = json_pack("{s:s, s:o}", "error", ph_err_name(code), "message",
	    ctl_json_str(msg));
	s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

void
ctl_reply(struct ctl_conn *cc, enum ph_err status, json_t *body)
{
	char *s = NULL;

	cc->pending = false;
	cc->cancel = NULL;
	cc->job = NULL;
	if (body != NULL)
		s = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(body);
	if (s != NULL && strlen(s) + 1 > CTL_BODY_MAX) {
		/* The lists are bounded (ctl_json_list): this is a bug. */
		free(s);
		status = PH_ERR_INTERNAL;
		s = ctl_error_body(status, "the reply does not fit a frame");
	} else if (s == NULL) {
		status = PH_ERR_INTERNAL;
		s = ctl_error_body(status, "out of memory");
	}
	log_info(cc->ctl->log, "peer=%s op=CTL cmd=%s result=%s", cc->peer,
	    cc->cmd[0] != '\0' ? cc->cmd : "-", ph_err_name(status));
	ctl_send(cc, status, s);
	free(s);
}

void
ctl_error(struct ctl_conn *cc, enum ph_err code, const char *fmt, ...)
{
	char msg[PH_MAX_PATH + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ctl_reply(cc, code, json_pack("{s:s, s:o}", "error", ph_err_name(code),
	    "message", ctl_json_str(msg)));
}

void
ctl_defer(struct ctl_conn *cc, ctl_cancel_fn *cancel, void *job)
{
	cc->cancel = cancel;
	cc->job = job;
}

/* ---- What the handlers work on ----------------------------------------- */

uv_loop_t *
ctl_loop(const struct ctl_conn *cc)
{
	return cc->ctl->loop;
}

struct log *
ctl_log(const struct ctl_conn *cc)
{
	return cc->ctl->log;
}

struct server *
ctl_server(const struct ctl_conn *cc)
{
	return cc->ctl->srv;
}

struct state *
ctl_state(const struct ctl_conn *cc)
{
	return cc->ctl->state;
}

struct vsockdev *
ctl_vsockdev(const struct ctl_conn *cc)
{
	return cc->ctl->vsd;
}

const char *
ctl_peer(const struct ctl_conn *cc)
{
	return cc->peer;
}

bool
ctl_parse_count(const char *s, uint32_t max, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (s[0] < '1' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* ---- Dispatch ------------------------------------------------------------ */

/* Notes the command's words, escaped, for its log line. */
static void
ctl_note_words(struct ctl_conn *cc, const struct ph_ctl *m)
{
	char word[512];
	size_t off = 0;

	cc->cmd[0] = '\0';
	for (uint16_t i = 0; i < m->argc && off < sizeof(cc->cmd); i++) {
		ph_util_escape(m->argv[i], strlen(m->argv[i]), false, word,
		    sizeof(word));
		off += (size_t)snprintf(cc->cmd + off, sizeof(cc->cmd) - off,
		    "%s%s", i ? "," : "", word);
	}
}

/* Looks the command up in the table and runs its handler. */
static void
ctl_dispatch(struct ctl_conn *cc, const struct ph_ctl *m)
{
	const char *argv[PH_MAX_CTL_ARGS];
	const struct ctltab_cmd *cmd;
	char list[1024], syn[128];
	size_t nwords;

	for (uint16_t i = 0; i < m->argc; i++)
		argv[i] = m->argv[i];
	ctl_note_words(cc, m);
	cc->pending = true;
	switch (ctltab_lookup(m->argc, argv, &cmd, &nwords)) {
	case CTLTAB_FOUND:
		ctl_handlers[cmd->id](cc, m->argc - nwords, argv + nwords);
		break;
	case CTLTAB_ARITY:
		ctltab_synopsis(cmd, syn, sizeof(syn));
		ctl_error(cc, PH_ERR_USAGE, "wrong number of arguments; usage: "
		    "%s", syn);
		break;
	case CTLTAB_PARTIAL:
		ctltab_list(argv[0], list, sizeof(list));
		ctl_error(cc, PH_ERR_USAGE, "missing %s command; usage: %s",
		    argv[0], list);
		break;
	case CTLTAB_UNKNOWN:
		ctltab_list(NULL, list, sizeof(list));
		if (m->argc == 0)
			ctl_error(cc, PH_ERR_USAGE, "no command given; "
			    "commands: %s", list);
		else
			ctl_error(cc, PH_ERR_USAGE, "unknown command '%s%s%s'; "
			    "commands: %s", argv[0], m->argc > 1 ? " " : "",
			    m->argc > 1 ? argv[1] : "", list);
		break;
	}
	/* A handler that neither answered nor deferred is a bug. */
	if (cc->pending && cc->cancel == NULL && !cc->closing)
		ctl_error(cc, PH_ERR_INTERNAL, "the command did not answer");
}

/* ---- Connections ------------------------------------------------------ */

/* Answers a frame that is not a valid CTL and closes the connection. */
static void
ctl_protocol_error(struct ctl_conn *cc, const char *why)
{
	char msg[256], *body;

	log_info(cc->ctl->log, "peer=%s op=CTL cmd=- result=PROTOCOL (%s)",
	    cc->peer, why);
	cc->close_after = true;
	cc->rlen = 0;
	snprintf(msg, sizeof(msg), "protocol error: %s", why);
	body = ctl_error_body(PH_ERR_PROTOCOL, msg);
	ctl_send(cc, PH_ERR_PROTOCOL, body);
	free(body);
}

/*
 * Handles every complete frame in the buffer, one reply at a time. The
 * arguments are decoded in place, so the frame leaves the buffer only once
 * the command has read them.
 */
static void
ctl_process(struct ctl_conn *cc)
{
	struct ph_framer f;
	struct ph_header h;
	struct ph_msg m;
	uint8_t *payload;
	int r;

	while (!cc->closing && !cc->writing && !cc->pending) {
		ph_framer_init(&f, cc->rbuf, sizeof(cc->rbuf));
		ph_framer_commit(&f, cc->rlen);
		if ((r = ph_framer_header(&f, &h)) == -EAGAIN)
			break;
		if (r < 0) {
			ctl_protocol_error(cc, strerror(-r));
			return;
		}
		if (h.type != PH_CTL) {
			ctl_protocol_error(cc,
			    "only CTL frames are valid here");
			return;
		}
		if ((r = ph_framer_next(&f, &h, &payload)) < 0) {
			ctl_protocol_error(cc, "frame too large");
			return;
		}
		if (r == 0)
			break;
		if ((r = ph_message_decode(h.type, payload, h.length,
		    &m)) < 0) {
			ctl_protocol_error(cc, strerror(-r));
			return;
		}
		ctl_dispatch(cc, &m.u.ctl);
		/* Unless the command dropped the input (a protocol error). */
		if (cc->rlen > 0)
			cc->rlen = ph_framer_compact(&f);
	}
	if (!cc->closing && !cc->writing && !cc->pending && !cc->reading) {
		if (uv_read_start((uv_stream_t *)&cc->pipe, ctl_on_alloc,
		    ctl_on_read) < 0) {
			ctl_conn_close(cc);
			return;
		}
		cc->reading = true;
	}
}

/* Reads go straight into the free part of the bounded input buffer. */
static void
ctl_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ctl_conn *cc = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)cc->rbuf + cc->rlen,
	    (unsigned int)(sizeof(cc->rbuf) - cc->rlen));
}

/* Input arrived (or the peer left): handle complete frames. */
static void
ctl_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl_conn *cc = s->data;

	(void)buf;
	if (nread < 0) {
		ctl_conn_close(cc);
		return;
	}
	cc->rlen += (size_t)nread;
	ctl_process(cc);
}

/* The connection's handle is closed: free it. */
static void
ctl_conn_on_closed(uv_handle_t *h)
{
	struct ctl_conn *cc = h->data;

	TAILQ_REMOVE(&cc->ctl->conns, cc, link);
	free(cc->out);
	free(cc);
}

/* Starts closing a control connection; it frees itself when closed. */
static void
ctl_conn_close(struct ctl_conn *cc)
{
	if (cc->closing)
		return;
	cc->closing = true;
	/* A command still running must not answer a closed connection. */
	if (cc->pending && cc->cancel != NULL)
		cc->cancel(cc, cc->job);
	cc->cancel = NULL;
	cc->job = NULL;
	uv_close((uv_handle_t *)&cc->pipe, ctl_conn_on_closed);
}

/* Accepts a control client and notes who it is. */
static void
ctl_on_connection(uv_stream_t *server, int status)
{
	struct control *ctl = server->data;
	struct ctl_conn *cc;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;
	int err;

	if (status < 0) {
		log_warn(ctl->log, "control socket: %s", uv_strerror(status));
		return;
	}
	if ((cc = calloc(1, sizeof(*cc))) == NULL)
		return;
	cc->ctl = ctl;
	uv_pipe_init(ctl->loop, &cc->pipe, 0);
	cc->pipe.data = cc;
	TAILQ_INSERT_TAIL(&ctl->conns, cc, link);
	if ((err = uv_accept(server, (uv_stream_t *)&cc->pipe)) < 0) {
		log_warn(ctl->log, "control socket: cannot accept: %s",
		    uv_strerror(err));
		ctl_conn_close(cc);
		return;
	}
	if (uv_fileno((uv_handle_t *)&cc->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		snprintf(cc->peer, sizeof(cc->peer), "unix:uid=%u,pid=%d",
		    (unsigned)cred.uid, (int)cred.pid);
	else
		snprintf(cc->peer, sizeof(cc->peer), "unix:unknown");
	ctl_process(cc);
}

/* ---- Setup and teardown ----------------------------------------------- */

/* Creates the 0600 control socket and starts accepting. */
int
ctl_new(uv_loop_t *loop, struct log *log, struct server *srv,
    struct state *state, const char *path, struct control **out, char *err,
    size_t errlen)
{
	struct control *ctl;
	struct ph_endpoint ep;
	struct stat st;
	mode_t old;
	int fd, r;

	*out = NULL;
	err[0] = '\0';
	memset(&ep, 0, sizeof(ep));
	ep.kind = PH_EP_UNIX;
	if (path[0] == '\0' || strlen(path) >= sizeof(ep.path)) {
		snprintf(err, errlen, "control socket path is empty or longer "
		    "than %zu bytes: %s", sizeof(ep.path) - 1, path);
		return -ENAMETOOLONG;
	}
	snprintf(ep.path, sizeof(ep.path), "%s", path);
	if ((r = fsutil_mkparent(path, 0755)) < 0) {
		snprintf(err, errlen, "cannot create the directory of %s: %s",
		    path, strerror(-r));
		return r;
	}
	if ((ctl = calloc(1, sizeof(*ctl))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ctl->loop = loop;
	ctl->log = log;
	ctl->srv = srv;
	ctl->state = state;
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	TAILQ_INIT(&ctl->conns);
	/* Born 0600: nobody else can connect, not even for a moment. */
	old = umask(0177);
	fd = ph_endpoint_listen(&ep, CTL_BACKLOG);
	umask(old);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create the control socket %s: %s",
		    path, strerror(-fd));
		free(ctl);
		return fd;
	}
	if (stat(path, &st) == 0) {
		ctl->have_inode = true;
		ctl->dev = st.st_dev;
		ctl->ino = st.st_ino;
	}
	uv_pipe_init(loop, &ctl->listener, 0);
	ctl->listener.data = ctl;
	ctl->listener_open = true;
	if ((r = uv_pipe_open(&ctl->listener, fd)) < 0) {
		close(fd);
		goto fail;
	}
	if ((r = uv_listen((uv_stream_t *)&ctl->listener, CTL_BACKLOG,
	    ctl_on_connection)) < 0)
		goto fail;
	*out = ctl;
	return 0;

fail:
	snprintf(err, errlen, "cannot use the control socket %s: %s", path,
	    uv_strerror(r));
	/* The handle exists: it is released through ctl_close/free. */
	*out = ctl;
	ctl_close(ctl);
	return r;
}

const char *
ctl_path(const struct control *ctl)
{
	return ctl->path;
}

void
ctl_set_vsockdev(struct control *ctl, struct vsockdev *vd)
{
	ctl->vsd = vd;
}

/* The listening handle is closed; ctl_free() may run. */
static void
ctl_on_listener_closed(uv_handle_t *h)
{
	struct control *ctl = h->data;

	ctl->listener_open = false;
}

/* Stops the control socket and removes its file if it is still ours. */
void
ctl_close(struct control *ctl)
{
	struct ctl_conn *cc;
	struct stat st;

	if (ctl == NULL || ctl->closed)
		return;
	ctl->closed = true;
	if (ctl->have_inode && stat(ctl->path, &st) == 0 &&
	    S_ISSOCK(st.st_mode) && st.st_dev == ctl->dev &&
	    st.st_ino == ctl->ino)
		(void)unlink(ctl->path);
	uv_close((uv_handle_t *)&ctl->listener, ctl_on_listener_closed);
	/* A reply still being written is cancelled: its peer is not reading. */
	TAILQ_FOREACH(cc, &ctl->conns, link)
		ctl_conn_close(cc);
}

void
ctl_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	if (ctl->listener_open || !TAILQ_EMPTY(&ctl->conns))
		abort();	/* handles still refer to ctl */
	free(ctl);
}
