/*
 * control.c: the control socket and its commands.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "acl.h"
#include "audit.h"
#include "conn.h"
#include "control.h"
#include "fsutil.h"
#include "log.h"
#include "proto.h"
#include "queue.h"
#include "repo.h"
#include "server.h"
#include "state.h"
#include "store.h"
#include "upstream.h"
#include "text.h"
#include "vmmap.h"
#include "vsockdev.h"

#define CTL_BACKLOG		16
/* A CTL_REPLY body: the payload less status and length. */
#define CTL_BODY_MAX		(PH_MAX_PAYLOAD - 6)
/* Room kept free for the end of a listing that had to be cut short. */
#define CTL_LS_TRAILER		128
/* `audit` rows by default, and at most. */
#define CTL_AUDIT_LIMIT		100
#define CTL_AUDIT_MAX		10000

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
	void		*job;		/* a store command still running */
	char		 job_cmd[1024];	/* its words, for the log line */
	struct vmmap_req *vmreq;	/* a `vm` command still running */
	enum vmmap_op	 vm_op;
	bool		 vm_json;
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

/* Sends one CTL_REPLY with the body; reading pauses until it is written. */
static void
ctl_send(struct ctl_conn *cc, enum ph_err status, const struct text *body)
{
	struct ph_writer w;
	uv_buf_t b;
	size_t len = body->len, total;
	int err;

	if (len > CTL_BODY_MAX)
		len = CTL_BODY_MAX;
	total = PH_HDR_LEN + 6 + len;
	if ((cc->out = malloc(total)) == NULL) {
		ctl_conn_close(cc);
		return;
	}
	ph_header_write(cc->out, PH_CTL_REPLY, (uint32_t)(6 + len));
	ph_writer_init(&w, cc->out + PH_HDR_LEN, 6 + len);
	(void)ph_put_u16(&w, (uint16_t)status);
	(void)ph_put_u32(&w, (uint32_t)len);
	if (len > 0)
		(void)ph_put_bytes(&w, body->buf, len);
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

/* Sends an error reply: the message as a line, or as a JSON object. */
static void
ctl_error(struct ctl_conn *cc, bool json, enum ph_err code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
ctl_error(struct ctl_conn *cc, bool json, enum ph_err code, const char *fmt,
    ...)
{
	char msg[PH_MAX_PATH + 256];
	struct text t;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	text_init(&t, CTL_BODY_MAX);
	if (json) {
		text_printf(&t, "{\"error\":\"%s\",\"message\":",
		    ph_err_name(code));
		text_json_str(&t, msg);
		text_printf(&t, "}\n");
	} else
		text_printf(&t, "%s\n", msg);
	ctl_send(cc, code, &t);
	text_free(&t);
}

/*
 * Answers a failed filesystem call on path with the error code and message
 * a person expects; beneath says whether path was resolved beneath the
 * repository, where EXDEV and ELOOP mean it tried to leave. Returns the code.
 */
static enum ph_err
ctl_fs_error(struct ctl_conn *cc, bool json, int err, const char *verb,
    const char *path, bool beneath)
{
	enum ph_err code;

	if (beneath && (err == -EXDEV || err == -ELOOP)) {
		code = PH_ERR_PATH_ESCAPE;
		ctl_error(cc, json, code, "path leads outside the repository: %s",
		    path);
		return code;
	}
	switch (err) {
	case -ENOENT:
		code = PH_ERR_NOT_FOUND;
		ctl_error(cc, json, code, "no such file or directory: %s", path);
		break;
	case -ENOTDIR:
		code = PH_ERR_NOT_DIR;
		ctl_error(cc, json, code, "not a directory: %s", path);
		break;
	case -EACCES:
	case -EPERM:
		code = PH_ERR_FORBIDDEN;
		ctl_error(cc, json, code, "cannot read %s: %s", path,
		    strerror(-err));
		break;
	default:
		code = PH_ERR_IO;
		ctl_error(cc, json, code, "cannot %s %s: %s", verb, path,
		    strerror(-err));
		break;
	}
	return code;
}

/*
 * Answers with the repository path: {"repository": PATH} in JSON, or the
 * path after prefix as a line of text.
 */
static enum ph_err
ctl_reply_repo(struct ctl_conn *cc, bool json, const struct repo *repo,
    const char *prefix)
{
	struct text t;

	text_init(&t, CTL_BODY_MAX);
	if (json) {
		text_printf(&t, "{\"repository\":");
		text_json_str(&t, repo_path(repo));
		text_printf(&t, "}\n");
	} else
		text_printf(&t, "%s%s\n", prefix, repo_path(repo));
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* ---- Commands ------------------------------------------------------------ */

/* Splits seconds into "2d 3h 4m 5s", leaving out leading zero units. */
static void
ctl_uptime(uint64_t s, char *buf, size_t cap)
{
	uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d > 0)
		snprintf(buf, cap, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m %"
		    PRIu64 "s", d, h, m, s % 60);
	else if (h > 0)
		snprintf(buf, cap, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", h,
		    m, s % 60);
	else if (m > 0)
		snprintf(buf, cap, "%" PRIu64 "m %" PRIu64 "s", m, s % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "s", s);
}

/* One line (or JSON object) per --vhost-user endpoint. */
static void
ctl_status_vhost(const struct control *ctl, struct text *t, bool json)
{
	struct vsockdev_info vi;
	size_t n = ctl->vsd != NULL ? vsockdev_count(ctl->vsd) : 0;

	if (json)
		text_printf(t, ",\"vhost_user\":[");
	for (size_t i = 0; i < n; i++) {
		vsockdev_info(ctl->vsd, i, &vi);
		if (json) {
			text_printf(t, "%s{\"path\":", i > 0 ? "," : "");
			text_json_str(t, vi.path);
			text_printf(t, ",\"cid\":%" PRIu32 ",\"vm\":", vi.cid);
			text_json_str(t, vi.name);
			text_printf(t, ",\"frontend\":%s,\"running\":%s,"
			    "\"connections\":%" PRIu32 ",\"bytes_to_guest\":%"
			    PRIu64 "}", vi.frontend ? "true" : "false",
			    vi.running ? "true" : "false", vi.connections,
			    vi.to_guest);
			continue;
		}
		text_printf(t, "vhost-user:      %s (cid %" PRIu32 "%s%s): %s",
		    vi.path, vi.cid, vi.name[0] != '\0' ? ", vm " : "",
		    vi.name, !vi.frontend ? "waiting for QEMU" : !vi.running ?
		    "QEMU connected, device stopped" : "running");
		if (vi.running)
			text_printf(t, ", %" PRIu32 " connections, %" PRIu64
			    " bytes to the guest", vi.connections, vi.to_guest);
		text_printf(t, "\n");
	}
	if (json)
		text_printf(t, "]");
}

/* `status`: version, uptime, listeners, repository and counters. */
static enum ph_err
ctl_status(struct ctl_conn *cc, bool json)
{
	struct control *ctl = cc->ctl;
	struct server_stats st;
	struct repo *repo = server_repo(ctl->srv);
	struct acl *acl = server_acl(ctl->srv);
	char up[64], ls[1024], lv[1024];
	uint64_t secs;
	struct text t;

	server_get_stats(ctl->srv, &st);
	vmmap_status(server_vmmap(ctl->srv), lv, sizeof(lv));
	secs = (uv_now(ctl->loop) - st.started_ms) / 1000;
	text_init(&t, CTL_BODY_MAX);
	if (json) {
		text_printf(&t, "{\"version\":\"%s\",\"uptime_s\":%" PRIu64
		    ",\"listeners\":[", PORTHOLE_VERSION, secs);
		for (size_t i = 0; i < st.listeners; i++) {
			if (i > 0)
				text_printf(&t, ",");
			text_json_str(&t, server_listener_name(ctl->srv, i));
		}
		text_printf(&t, "]");
		ctl_status_vhost(ctl, &t, true);
		text_printf(&t, ",\"repository\":");
		if (repo != NULL)
			text_json_str(&t, repo_path(repo));
		else
			text_printf(&t, "null");
		text_printf(&t, ",\"libvirt\":");
		text_json_str(&t, lv);
		text_printf(&t, ",\"acl_rules\":%zu,\"acl_default\":\"%s\"",
		    acl != NULL ? acl_count(acl) : 0, acl == NULL ||
		    acl_default_allow(acl) ? "allow" : "deny");
		text_printf(&t, ",\"connections\":%zu,\"requests_served\":%"
		    PRIu64 ",\"bytes_sent\":%" PRIu64 "}\n", st.connections,
		    st.requests, st.bytes_sent);
	} else {
		ctl_uptime(secs, up, sizeof(up));
		server_listeners(ctl->srv, ls, sizeof(ls));
		text_printf(&t, "portholed %s\n", PORTHOLE_VERSION);
		text_printf(&t, "uptime:          %s\n", up);
		text_printf(&t, "listeners:       %s\n", ls[0] != '\0' ? ls :
		    "(none)");
		ctl_status_vhost(ctl, &t, false);
		text_printf(&t, "repository:      %s\n", repo != NULL ?
		    repo_path(repo) : "(none)");
		text_printf(&t, "libvirt:         %s\n", lv);
		text_printf(&t, "access rules:    %zu, default %s\n",
		    acl != NULL ? acl_count(acl) : 0, acl == NULL ||
		    acl_default_allow(acl) ? "allow" : "deny");
		text_printf(&t, "connections:     %zu\n", st.connections);
		text_printf(&t, "requests served: %" PRIu64 "\n", st.requests);
		text_printf(&t, "bytes sent:      %" PRIu64 "\n",
		    st.bytes_sent);
	}
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* Rendering state for `queue`: streaming and waiting parts, built at once. */
struct ctl_queue {
	struct text	 active;
	struct text	 waiting;
	size_t		 nactive;
	size_t		 nwaiting;
	uint64_t	 now_ms;
	bool		 json;
};

/* Bytes per second over ms milliseconds. */
static uint64_t
ctl_rate(uint64_t bytes, uint64_t ms)
{
	return ms == 0 ? 0 : bytes * 1000 / ms;
}

/* Appends one streaming or waiting GET to the `queue` rendering. */
static void
ctl_queue_one(void *arg, const struct queue_view *v, const struct conn *c)
{
	struct ctl_queue *cq = arg;
	struct conn_xfer_info xi;
	uint64_t waited = cq->now_ms - v->since_ms, rate;
	struct text *t = v->active ? &cq->active : &cq->waiting;
	bool first = v->active ? cq->nactive == 0 : cq->nwaiting == 0;
	char who[VMMAP_NAME_MAX + 96], vm[VMMAP_NAME_MAX + 1];

	conn_xfer_info(c, &xi);
	rate = ctl_rate(xi.bytes, xi.stream_ms);
	/* The peer key, and the libvirt domain it is when known. */
	if (xi.vm != NULL)
		snprintf(who, sizeof(who), "%s,vm=%s", v->peer,
		    log_escape(xi.vm, strlen(xi.vm), false, vm, sizeof(vm)));
	else
		snprintf(who, sizeof(who), "%s", v->peer);
	if (cq->json) {
		text_printf(t, "%s{", first ? "" : ",");
		if (!v->active)
			text_printf(t, "\"position\":%u,", v->position);
		text_printf(t, "\"peer\":");
		text_json_str(t, v->peer);
		text_printf(t, ",\"vm\":");
		if (xi.vm != NULL)
			text_json_str(t, xi.vm);
		else
			text_printf(t, "null");
		text_printf(t, ",\"path\":");
		text_json_str(t, xi.path);
		text_printf(t, ",\"bytes_sent\":%" PRIu64 ",\"size\":%"
		    PRIu64 ",\"offset\":%" PRIu64 ",\"rate_bps\":%" PRIu64
		    ",\"paused\":%s,\"waited_ms\":%" PRIu64 "}", xi.bytes,
		    xi.size, xi.offset, rate, v->paused ? "true" : "false",
		    waited);
	} else if (v->active) {
		text_printf(t, "  %-28s %s  %" PRIu64 "/%" PRIu64 " bytes  %"
		    PRIu64 " KiB/s\n", who, xi.path, xi.bytes, xi.size,
		    rate / 1024);
	} else {
		text_printf(t, "  %4u  %-28s %s  waited %" PRIu64 ".%01" PRIu64
		    " s%s\n", v->position, who, xi.path, waited / 1000,
		    waited % 1000 / 100, v->paused ? "  (paused after a "
		    "slice)" : "");
	}
	if (v->active)
		cq->nactive++;
	else
		cq->nwaiting++;
}

/* `queue`: the transfers streaming now and the requests waiting. */
static enum ph_err
ctl_queue(struct ctl_conn *cc, bool json)
{
	struct control *ctl = cc->ctl;
	const struct queue_config *qc = queue_config(server_queue(ctl->srv));
	struct ctl_queue cq;
	struct text t;

	memset(&cq, 0, sizeof(cq));
	cq.json = json;
	cq.now_ms = uv_now(ctl->loop);
	text_init(&cq.active, CTL_BODY_MAX / 2);
	text_init(&cq.waiting, CTL_BODY_MAX / 2);
	server_queue_walk(ctl->srv, ctl_queue_one, &cq);
	text_init(&t, CTL_BODY_MAX);
	if (json) {
		text_printf(&t, "{\"max_active\":%u,\"max_queue\":%u,"
		    "\"max_per_peer\":%u,\"active\":[%s],\"waiting\":[%s],"
		    "\"truncated\":%s}\n", qc->max_active, qc->max_queue,
		    qc->max_per_peer, cq.active.len ? cq.active.buf : "",
		    cq.waiting.len ? cq.waiting.buf : "",
		    text_full(&cq.active) || text_full(&cq.waiting) ? "true" :
		    "false");
	} else {
		text_printf(&t, "active: %zu of %u slots\n%s", cq.nactive,
		    qc->max_active, cq.active.len ? cq.active.buf : "");
		text_printf(&t, "waiting: %zu (at most %u)\n%s", cq.nwaiting,
		    qc->max_queue, cq.waiting.len ? cq.waiting.buf : "");
		if (text_full(&cq.active) || text_full(&cq.waiting))
			text_printf(&t, "... list cut short\n");
	}
	text_free(&cq.active);
	text_free(&cq.waiting);
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* `repo get`: the repository path. */
static enum ph_err
ctl_repo_get(struct ctl_conn *cc, bool json)
{
	struct repo *repo = server_repo(cc->ctl->srv);
	struct upstream *u = store_upstream(server_store(cc->ctl->srv));

	if (u != NULL) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE, "this daemon is a "
		    "relay: its repository is upstream %s",
		    upstream_endpoint(u));
		return PH_ERR_UNAVAILABLE;
	}
	if (repo == NULL) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE,
		    "no repository configured");
		return PH_ERR_UNAVAILABLE;
	}
	return ctl_reply_repo(cc, json, repo, "");
}

/* `repo set PATH`: check the directory, save it, then switch to it. */
static enum ph_err
ctl_repo_set(struct ctl_conn *cc, bool json, const char *path)
{
	struct control *ctl = cc->ctl;
	struct repo *repo = NULL, *old;
	char was[1024], now[1024];
	int err;

	if (store_upstream(server_store(ctl->srv)) != NULL) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE, "this daemon is a "
		    "relay: its repository is its upstream; restart it "
		    "without --upstream to serve a directory");
		return PH_ERR_UNAVAILABLE;
	}
	if (path[0] != '/') {
		ctl_error(cc, json, PH_ERR_USAGE,
		    "the repository path must be absolute: %s", path);
		return PH_ERR_USAGE;
	}
	if ((err = repo_open(path, &repo)) < 0)
		return ctl_fs_error(cc, json, err, "open", path, false);
	/* Saved first: the switch happens only if a restart would keep it. */
	if (state_set(ctl->state, STATE_KEY_REPO, repo_path(repo)) < 0) {
		ctl_error(cc, json, PH_ERR_INTERNAL, "cannot save the "
		    "repository in the state database: %s",
		    state_errmsg(ctl->state));
		repo_free(repo);
		return PH_ERR_INTERNAL;
	}
	old = server_repo(ctl->srv);
	if (old != NULL)
		log_escape(repo_path(old), strlen(repo_path(old)), false, was,
		    sizeof(was));
	else
		snprintf(was, sizeof(was), "none");
	log_escape(repo_path(repo), strlen(repo_path(repo)), false, now,
	    sizeof(now));
	server_set_repo(ctl->srv, repo);
	log_info(ctl->log, "repository set to %s (was %s) by control peer=%s",
	    now, was, cc->peer);
	return ctl_reply_repo(cc, json, repo, "repository set to ");
}

/* Appends the listing of one entry; false when the body is full. */
static bool
ctl_ls_entry(struct text *t, bool json, bool first,
    const struct ph_list_entry *e)
{
	char mode[PH_MODE_STRLEN], mtime[PH_TIME_STRLEN];
	struct text line;
	bool ok;

	text_init(&line, CTL_BODY_MAX);
	if (json) {
		text_printf(&line, "%s{\"name\":", first ? "" : ",");
		text_json_str(&line, e->name);
		text_printf(&line, ",\"type\":\"%s\",\"size\":%" PRIu64
		    ",\"mode\":\"%04o\",\"mtime_ns\":%" PRId64 "}",
		    ph_ftype_name(e->ftype), e->size, (unsigned)(e->mode & 07777),
		    e->mtime_ns);
	} else {
		ph_mode_string(e->ftype, e->mode, mode);
		ph_time_string(e->mtime_ns, mtime, sizeof(mtime));
		text_printf(&line, "%s %12" PRIu64 "  %s  %s\n", mode, e->size,
		    mtime, e->name);
	}
	ok = !text_full(&line) && line.len + CTL_LS_TRAILER <= text_room(t);
	if (ok)
		text_printf(t, "%s", line.buf);
	text_free(&line);
	return ok;
}

/* `repo ls [PATH]`: the listing in one body, cut short at the limit. */
static enum ph_err
ctl_repo_ls(struct ctl_conn *cc, bool json, const char *path)
{
	struct repo *repo = server_repo(cc->ctl->srv);
	char rel[PH_MAX_PATH + 1], shown[PH_MAX_PATH + 2];
	struct ph_list_entry e;
	struct repo_dir *d = NULL;
	size_t i, count, listed = 0;
	struct text t;
	int err;

	err = ph_path_normalize(path, strlen(path), rel, sizeof(rel));
	if (err == -EPERM) {
		ctl_error(cc, json, PH_ERR_PATH_ESCAPE,
		    "path climbs above the repository root: %s", path);
		return PH_ERR_PATH_ESCAPE;
	} else if (err < 0) {
		ctl_error(cc, json, PH_ERR_BAD_PATH, "invalid path");
		return PH_ERR_BAD_PATH;
	}
	ph_path_display(rel, shown, sizeof(shown));
	if (repo == NULL) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE,
		    "no repository configured");
		return PH_ERR_UNAVAILABLE;
	}
	if ((err = repo_dir_read(repo, rel, &d, NULL)) < 0)
		return ctl_fs_error(cc, json, err, "list", shown, true);
	text_init(&t, CTL_BODY_MAX);
	if (json) {
		text_printf(&t, "{\"path\":");
		text_json_str(&t, shown);
		text_printf(&t, ",\"entries\":[");
	}
	count = repo_dir_count(d);
	for (i = 0; i < count; i++) {
		if (repo_dir_entry(d, i, &e, NULL) < 0)
			continue;
		if (!ctl_ls_entry(&t, json, listed == 0, &e))
			break;
		listed++;
	}
	repo_dir_free(d);
	if (json)
		text_printf(&t, "],\"truncated\":%s}\n", i < count ? "true" :
		    "false");
	else if (i < count)
		text_printf(&t, "... %zu more entries not shown\n", count - i);
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* A store command that ran on the pool has its reply. */
static void
ctl_store_done(void *arg, enum ph_err status, const struct text *body)
{
	struct ctl_conn *cc = arg;

	cc->job = NULL;
	log_info(cc->ctl->log, "peer=%s op=CTL cmd=%s result=%s", cc->peer,
	    cc->job_cmd, ph_err_name(status));
	ctl_send(cc, status, body);
}

/* cache ... and repo scan|verify: the store's commands. */
static enum ph_err
ctl_store(struct ctl_conn *cc, bool json, const struct ph_ctl *m)
{
	struct store *s = server_store(cc->ctl->srv);
	char word[512];
	size_t off = 0;
	struct text t;
	int r;

	text_init(&t, CTL_BODY_MAX);
	(void)json;
	r = store_ctl(s, server_repo(cc->ctl->srv), m, &t, ctl_store_done, cc,
	    &cc->job);
	if (r == -EINPROGRESS) {
		cc->job_cmd[0] = '\0';
		for (uint16_t i = 0; i < m->argc && off < sizeof(cc->job_cmd);
		    i++) {
			log_escape(m->argv[i], strlen(m->argv[i]), false, word,
			    sizeof(word));
			off += (size_t)snprintf(cc->job_cmd + off,
			    sizeof(cc->job_cmd) - off, "%s%s", i ? "," : "",
			    word);
		}
		text_free(&t);
		return PH_OK;
	}
	ctl_send(cc, (enum ph_err)r, &t);
	text_free(&t);
	return (enum ph_err)r;
}

/* ---- vm, acl and audit ------------------------------------------------- */

/* The command's words joined with ",", escaped, for a deferred log line. */
static void
ctl_words(const struct ph_ctl *m, char *buf, size_t cap)
{
	char word[512];
	size_t off = 0;

	buf[0] = '\0';
	for (uint16_t i = 0; i < m->argc && off < cap; i++) {
		log_escape(m->argv[i], strlen(m->argv[i]), false, word,
		    sizeof(word));
		off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? "," :
		    "", word);
	}
}

/* `vm ls`: one line (or object) per domain. */
static void
ctl_vm_render_list(struct text *t, bool json, const struct vmmap_reply *r)
{
	char cid[16];

	if (json)
		text_printf(t, "{\"domains\":[");
	else
		text_printf(t, "%-20s %-36s %-13s %-10s %s\n", "NAME", "UUID",
		    "STATE", "CID", "PORTHOLE");
	for (size_t i = 0; i < r->ndoms; i++) {
		const struct vmmap_info *d = &r->doms[i];

		if (json) {
			text_printf(t, "%s{\"name\":", i ? "," : "");
			text_json_str(t, d->name);
			text_printf(t, ",\"uuid\":");
			text_json_str(t, d->uuid);
			text_printf(t, ",\"state\":\"%s\",\"cid\":", d->state);
			if (d->cid != 0)
				text_printf(t, "%u", d->cid);
			else
				text_printf(t, "null");
			text_printf(t, ",\"persistent\":%s,\"enabled\":%s}",
			    d->persistent ? "true" : "false", d->enabled ?
			    "true" : "false");
			continue;
		}
		if (d->cid != 0)
			snprintf(cid, sizeof(cid), "%u", d->cid);
		else
			snprintf(cid, sizeof(cid), "-");
		text_printf(t, "%-20s %-36s %-13s %-10s %s%s\n", d->name,
		    d->uuid, d->state, cid, d->enabled ? "enabled" :
		    "disabled", d->persistent ? "" : " (transient)");
	}
	if (json)
		text_printf(t, "],\"truncated\":%s}\n", text_full(t) ? "true" :
		    "false");
	else if (text_full(t))
		text_printf(t, "... list cut short\n");
}

/* The libvirt thread answered a `vm` command: reply and log it now. */
static void
ctl_vm_done(void *arg, const struct vmmap_reply *r)
{
	struct ctl_conn *cc = arg;
	struct text t;

	cc->vmreq = NULL;
	log_info(cc->ctl->log, "peer=%s op=CTL cmd=%s result=%s", cc->peer,
	    cc->job_cmd, ph_err_name(r->status));
	if (r->status != PH_OK) {
		ctl_error(cc, cc->vm_json, r->status, "%s", r->message);
		return;
	}
	text_init(&t, CTL_BODY_MAX);
	if (cc->vm_op == VMMAP_LIST)
		ctl_vm_render_list(&t, cc->vm_json, r);
	else if (cc->vm_json) {
		text_printf(&t, "{\"changed\":%s,\"enabled\":%s,\"message\":",
		    r->changed ? "true" : "false", cc->vm_op == VMMAP_ENABLE ?
		    "true" : "false");
		text_json_str(&t, r->message);
		text_printf(&t, "}\n");
	} else
		text_printf(&t, "%s\n", r->message);
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
}

/* `vm ls | enable DOMAIN | disable DOMAIN`, answered by the libvirt thread. */
static enum ph_err
ctl_vm(struct ctl_conn *cc, bool json, const struct ph_ctl *m)
{
	const char *sub = m->argc > 1 ? m->argv[1] : "";
	enum vmmap_op op;
	int r;

	if (strcmp(sub, "ls") == 0 && m->argc == 2)
		op = VMMAP_LIST;
	else if (strcmp(sub, "enable") == 0 && m->argc == 3)
		op = VMMAP_ENABLE;
	else if (strcmp(sub, "disable") == 0 && m->argc == 3)
		op = VMMAP_DISABLE;
	else {
		ctl_error(cc, json, PH_ERR_USAGE, "usage: vm ls | vm enable "
		    "DOMAIN | vm disable DOMAIN");
		return PH_ERR_USAGE;
	}
	r = vmmap_request(server_vmmap(cc->ctl->srv), op, op == VMMAP_LIST ?
	    NULL : m->argv[2], ctl_vm_done, cc, &cc->vmreq);
	if (r == -ENOTSUP || r == -ENOTCONN || r == -ESHUTDOWN) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE, "%s", r == -ENOTSUP ?
		    "libvirt support not built into this portholed" :
		    r == -ENOTCONN ? "libvirt is turned off (--libvirt none)" :
		    "the daemon is stopping");
		return PH_ERR_UNAVAILABLE;
	} else if (r < 0) {
		ctl_error(cc, json, PH_ERR_INTERNAL, "cannot queue the "
		    "request: %s", strerror(-r));
		return PH_ERR_INTERNAL;
	}
	cc->vm_op = op;
	cc->vm_json = json;
	ctl_words(m, cc->job_cmd, sizeof(cc->job_cmd));
	return PH_OK;
}

/* Appends one rule, as a line or a JSON object. */
static void
ctl_acl_rule(struct text *t, bool json, bool first, const struct acl_rule *r)
{
	static const char *kinds[] = { "", "any", "name", "uuid", "cid" };
	char prefix[PH_MAX_PATH + 2];

	acl_prefix_disp(r, prefix, sizeof(prefix));
	if (!json) {
		text_printf(t, "%4u  %-5s  %-36s  %s\n", r->position, r->allow ?
		    "allow" : "deny", r->match, prefix);
		return;
	}
	text_printf(t, "%s{\"position\":%u,\"action\":\"%s\",\"kind\":\"%s\","
	    "\"match\":", first ? "" : ",", r->position, r->allow ? "allow" :
	    "deny", kinds[r->kind]);
	text_json_str(t, r->match);
	text_printf(t, ",\"prefix\":");
	text_json_str(t, prefix);
	text_printf(t, "}");
}

/* `acl ls`: the default policy and the rules in evaluation order. */
static enum ph_err
ctl_acl_ls(struct ctl_conn *cc, bool json, const struct acl *acl)
{
	const char *def = acl_default_allow(acl) ? "allow" : "deny";
	size_t n = acl_count(acl);
	struct text t;

	text_init(&t, CTL_BODY_MAX);
	if (json)
		text_printf(&t, "{\"default\":\"%s\",\"rules\":[", def);
	else
		text_printf(&t, "%zu rule%s, first match wins; default policy: "
		    "%s\n", n, n == 1 ? "" : "s", def);
	for (size_t i = 0; i < n; i++)
		ctl_acl_rule(&t, json, i == 0, acl_rule_at(acl, i));
	if (json)
		text_printf(&t, "]}\n");
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* Parses a rule position: 1 to 1000000. */
static bool
ctl_position(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (s[0] < '1' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > 1000000)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Answers after a rule change: the reloaded set, or why it did not load. */
static enum ph_err
ctl_acl_changed(struct ctl_conn *cc, bool json, const char *what,
    const struct acl_rule *r, uint32_t pos)
{
	struct control *ctl = cc->ctl;
	char prefix[PH_MAX_PATH + 2], msg[PH_MAX_PATH + 512];
	char ematch[4 * ACL_NAME_MAX + 1], eprefix[1024];
	struct acl_rule shown;
	struct text t;
	int err;

	acl_prefix_disp(r, prefix, sizeof(prefix));
	snprintf(msg, sizeof(msg), "rule %u %s: %s %s %s", pos, what,
	    r->allow ? "allow" : "deny", r->match, prefix);
	log_info(ctl->log, "access rule %u %s: %s %s %s by control peer=%s",
	    pos, what, r->allow ? "allow" : "deny", log_escape(r->match,
	    strlen(r->match), false, ematch, sizeof(ematch)),
	    log_escape(prefix, strlen(prefix), false, eprefix,
	    sizeof(eprefix)), cc->peer);
	if ((err = acl_reload(server_acl(ctl->srv), ctl->state)) < 0) {
		log_warn(ctl->log, "access rules saved but not reloaded: %s",
		    err == -ENOMEM ? "out of memory" :
		    state_errmsg(ctl->state));
		ctl_error(cc, json, PH_ERR_INTERNAL, "%s, but the rules could "
		    "not be reloaded: %s", msg, err == -ENOMEM ?
		    "out of memory" : state_errmsg(ctl->state));
		return PH_ERR_INTERNAL;
	}
	text_init(&t, CTL_BODY_MAX);
	if (json) {
		shown = *r;
		shown.position = pos;
		text_printf(&t, "{\"%s\":", what);
		ctl_acl_rule(&t, true, true, &shown);
		text_printf(&t, "}\n");
	} else
		text_printf(&t, "%s\n", msg);
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* `acl add [--at N] allow|deny MATCH PREFIX`: save, then reload. */
static enum ph_err
ctl_acl_add(struct ctl_conn *cc, bool json, const struct ph_ctl *m)
{
	struct control *ctl = cc->ctl;
	struct acl_rule r;
	uint32_t at = 0, pos;
	char why[512];
	uint16_t i = 2;
	int err;

	if (i < m->argc && strncmp(m->argv[i], "--at=", 5) == 0) {
		if (!ctl_position(m->argv[i] + 5, &at))
			goto bad_at;
		i++;
	} else if (i < m->argc && strcmp(m->argv[i], "--at") == 0) {
		if (i + 1 >= m->argc || !ctl_position(m->argv[i + 1], &at))
			goto bad_at;
		i += 2;
	}
	if (m->argc - i != 3) {
		ctl_error(cc, json, PH_ERR_USAGE, "usage: acl add [--at N] "
		    "allow|deny MATCH PREFIX (MATCH: a domain name or UUID, "
		    "cid:N or *)");
		return PH_ERR_USAGE;
	}
	if (acl_rule_parse(m->argv[i], m->argv[i + 1], m->argv[i + 2], &r, why,
	    sizeof(why)) < 0) {
		ctl_error(cc, json, PH_ERR_USAGE, "%s", why);
		return PH_ERR_USAGE;
	}
	if ((err = acl_save(ctl->state, at, &r, &pos)) == -ERANGE) {
		ctl_error(cc, json, PH_ERR_USAGE, "--at %u is past the end: "
		    "there are %zu rules", at, acl_count(server_acl(ctl->srv)));
		return PH_ERR_USAGE;
	} else if (err < 0) {
		ctl_error(cc, json, PH_ERR_INTERNAL, "cannot save the rule in "
		    "the state database: %s", state_errmsg(ctl->state));
		return PH_ERR_INTERNAL;
	}
	return ctl_acl_changed(cc, json, "added", &r, pos);
bad_at:
	ctl_error(cc, json, PH_ERR_USAGE, "--at needs a rule position (1, 2, "
	    "...)");
	return PH_ERR_USAGE;
}

/* `acl rm N`: delete the rule at position N, then reload. */
static enum ph_err
ctl_acl_rm(struct ctl_conn *cc, bool json, const char *arg)
{
	struct control *ctl = cc->ctl;
	const struct acl_rule *cur;
	struct acl_rule r;
	uint32_t pos;
	int err;

	if (!ctl_position(arg, &pos)) {
		ctl_error(cc, json, PH_ERR_USAGE, "usage: acl rm N (the "
		    "position `acl ls` shows)");
		return PH_ERR_USAGE;
	}
	/* The cached copy is what `acl ls` showed: name the rule from it. */
	cur = acl_rule_at(server_acl(ctl->srv), pos - 1);
	if (cur != NULL)
		r = *cur;
	if ((err = state_acl_remove(ctl->state, pos)) == -ENOENT ||
	    (err == 0 && cur == NULL)) {
		ctl_error(cc, json, PH_ERR_NOT_FOUND, "no rule %u (see acl ls)",
		    pos);
		return PH_ERR_NOT_FOUND;
	} else if (err < 0) {
		ctl_error(cc, json, PH_ERR_INTERNAL, "cannot remove the rule "
		    "from the state database: %s", state_errmsg(ctl->state));
		return PH_ERR_INTERNAL;
	}
	return ctl_acl_changed(cc, json, "removed", &r, pos);
}

/* `acl add|rm|ls`: the access rules. */
static enum ph_err
ctl_acl(struct ctl_conn *cc, bool json, const struct ph_ctl *m)
{
	const char *sub = m->argc > 1 ? m->argv[1] : "";
	struct acl *acl = server_acl(cc->ctl->srv);

	if (acl == NULL) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE, "access rules are not "
		    "set up");
		return PH_ERR_UNAVAILABLE;
	}
	if (strcmp(sub, "ls") == 0 && m->argc == 2)
		return ctl_acl_ls(cc, json, acl);
	if (strcmp(sub, "add") == 0)
		return ctl_acl_add(cc, json, m);
	if (strcmp(sub, "rm") == 0 && m->argc == 3)
		return ctl_acl_rm(cc, json, m->argv[2]);
	ctl_error(cc, json, PH_ERR_USAGE, "usage: acl ls | acl add [--at N] "
	    "allow|deny MATCH PREFIX | acl rm N");
	return PH_ERR_USAGE;
}

/* Rendering state for `audit`. */
struct ctl_audit {
	struct text	*t;
	bool		 json;
	size_t		 shown;
	bool		 cut;		/* the body filled up */
};

/* Appends one audit row, unless the body is (nearly) full. */
static void
ctl_audit_row(void *arg, const struct state_audit_row *row)
{
	struct ctl_audit *ca = arg;
	char when[AUDIT_TIME_STRLEN], cid[16];
	struct text line;

	if (ca->cut)
		return;
	audit_time_string(row->time_ms, when, sizeof(when));
	text_init(&line, CTL_BODY_MAX);
	if (ca->json) {
		text_printf(&line, "%s{\"time\":\"%s\",\"time_ms\":%" PRId64
		    ",\"cid\":", ca->shown ? "," : "", when, row->time_ms);
		if (row->cid != 0)
			text_printf(&line, "%u", row->cid);
		else
			text_printf(&line, "null");
		text_printf(&line, ",\"peer\":");
		text_json_str(&line, row->peer != NULL ? row->peer : "");
		text_printf(&line, ",\"domain\":");
		if (row->domain != NULL)
			text_json_str(&line, row->domain);
		else
			text_printf(&line, "null");
		text_printf(&line, ",\"uuid\":");
		if (row->uuid != NULL)
			text_json_str(&line, row->uuid);
		else
			text_printf(&line, "null");
		text_printf(&line, ",\"op\":");
		text_json_str(&line, row->op != NULL ? row->op : "");
		text_printf(&line, ",\"path\":");
		text_json_str(&line, row->path != NULL ? row->path : "");
		text_printf(&line, ",\"result\":");
		text_json_str(&line, row->result != NULL ? row->result : "");
		text_printf(&line, ",\"bytes\":%" PRIu64 ",\"ms\":%" PRIu64 "}",
		    row->bytes, row->ms);
	} else {
		char vm[VMMAP_NAME_MAX * 4 + 1];

		if (row->cid != 0)
			snprintf(cid, sizeof(cid), "%u", row->cid);
		else
			snprintf(cid, sizeof(cid), "-");
		if (row->domain != NULL)
			log_escape(row->domain, strlen(row->domain), false, vm,
			    sizeof(vm));
		else
			snprintf(vm, sizeof(vm), "-");
		text_printf(&line, "%s cid=%s vm=%s peer=%s op=%s path=%s "
		    "result=%s bytes=%" PRIu64 " ms=%" PRIu64 "\n", when, cid,
		    vm, row->peer != NULL ? row->peer : "-", row->op != NULL ?
		    row->op : "-", row->path != NULL ? row->path : "-",
		    row->result != NULL ? row->result : "-", row->bytes,
		    row->ms);
	}
	if (text_full(&line) || line.len + CTL_LS_TRAILER > text_room(ca->t))
		ca->cut = true;
	else {
		text_printf(ca->t, "%s", line.buf);
		ca->shown++;
	}
	text_free(&line);
}

/* Parses a CID: decimal, 1 to 2^32-2. */
static bool
ctl_cid(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* True if arg is "--NAME" or "--NAME=...". */
static bool
ctl_is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);

	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* `audit [--since T] [--domain D] [--limit N]`: the newest matching rows. */
static enum ph_err
ctl_audit(struct ctl_conn *cc, bool json, const struct ph_ctl *m)
{
	struct control *ctl = cc->ctl;
	struct audit *a = server_audit(ctl->srv);
	struct state_audit_query q;
	struct ctl_audit ca;
	const char *opt, *val;
	int64_t now = audit_now_ms();
	bool more;
	struct text t;

	memset(&q, 0, sizeof(q));
	q.since_ms = INT64_MIN;
	q.limit = CTL_AUDIT_LIMIT;
	for (uint16_t i = 1; i < m->argc; i++) {
		opt = m->argv[i];
		if (!ctl_is_opt(opt, "--since") &&
		    !ctl_is_opt(opt, "--domain") &&
		    !ctl_is_opt(opt, "--limit")) {
			ctl_error(cc, json, PH_ERR_USAGE, "unknown argument "
			    "'%s'; usage: audit [--since T] [--domain D] "
			    "[--limit N]", opt);
			return PH_ERR_USAGE;
		}
		if ((val = strchr(opt, '=')) != NULL)
			val++;
		else if (i + 1 < m->argc)
			val = m->argv[++i];
		else {
			ctl_error(cc, json, PH_ERR_USAGE, "%s needs a value",
			    opt);
			return PH_ERR_USAGE;
		}
		if (ctl_is_opt(opt, "--since")) {
			if (audit_parse_time(val, now, &q.since_ms) < 0) {
				ctl_error(cc, json, PH_ERR_USAGE, "invalid "
				    "--since '%s' (30m, 2h, 1d, 1w, or an ISO "
				    "8601 time such as 2024-05-01T12:00:00Z)",
				    val);
				return PH_ERR_USAGE;
			}
		} else if (ctl_is_opt(opt, "--domain")) {
			q.domain = NULL;
			q.cid = 0;
			if (strncmp(val, "cid:", 4) != 0)
				q.domain = val;
			else if (!ctl_cid(val + 4, &q.cid)) {
				ctl_error(cc, json, PH_ERR_USAGE, "invalid "
				    "--domain '%s' (a domain name or UUID, or "
				    "cid:N)", val);
				return PH_ERR_USAGE;
			}
		} else if (!ctl_position(val, &q.limit) ||
		    q.limit > CTL_AUDIT_MAX) {
			ctl_error(cc, json, PH_ERR_USAGE, "invalid --limit "
			    "'%s' (1 to %d)", val, CTL_AUDIT_MAX);
			return PH_ERR_USAGE;
		}
	}
	if (!audit_enabled(a)) {
		ctl_error(cc, json, PH_ERR_UNAVAILABLE, "the audit trail is "
		    "off (--audit-max-rows 0)");
		return PH_ERR_UNAVAILABLE;
	}
	/* What is still in memory belongs in the answer. */
	(void)audit_flush(a);
	text_init(&t, CTL_BODY_MAX);
	memset(&ca, 0, sizeof(ca));
	ca.t = &t;
	ca.json = json;
	if (json)
		text_printf(&t, "{\"entries\":[");
	if (state_audit_query(ctl->state, &q, ctl_audit_row, &ca, &more) < 0) {
		text_free(&t);
		ctl_error(cc, json, PH_ERR_INTERNAL, "cannot read the audit "
		    "trail: %s", state_errmsg(ctl->state));
		return PH_ERR_INTERNAL;
	}
	if (json)
		text_printf(&t, "],\"truncated\":%s}\n", more || ca.cut ?
		    "true" : "false");
	else if (ca.cut)
		text_printf(&t, "... cut short after %zu entries; narrow it "
		    "with --since, --domain or --limit\n", ca.shown);
	else if (more)
		text_printf(&t, "... older entries not shown (--limit %u)\n",
		    q.limit);
	ctl_send(cc, PH_OK, &t);
	text_free(&t);
	return PH_OK;
}

/* Runs one command; returns the reply status, for the log. */
static enum ph_err
ctl_dispatch(struct ctl_conn *cc, const struct ph_ctl *m)
{
	bool json = m->flags & PH_CTL_JSON;
	uint16_t argc = m->argc;
	const char *cmd = argc > 0 ? m->argv[0] : "";
	const char *sub = argc > 1 ? m->argv[1] : "";

	if (strcmp(cmd, "cache") == 0 || (strcmp(cmd, "repo") == 0 &&
	    (strcmp(sub, "scan") == 0 || strcmp(sub, "verify") == 0)))
		return ctl_store(cc, json, m);
	if (strcmp(cmd, "vm") == 0)
		return ctl_vm(cc, json, m);
	if (strcmp(cmd, "acl") == 0)
		return ctl_acl(cc, json, m);
	if (strcmp(cmd, "audit") == 0)
		return ctl_audit(cc, json, m);
	if (strcmp(cmd, "status") == 0 && argc == 1)
		return ctl_status(cc, json);
	if (strcmp(cmd, "queue") == 0 && argc == 1)
		return ctl_queue(cc, json);
	if (strcmp(cmd, "repo") == 0 && strcmp(sub, "get") == 0 && argc == 2)
		return ctl_repo_get(cc, json);
	if (strcmp(cmd, "repo") == 0 && strcmp(sub, "set") == 0 && argc == 3)
		return ctl_repo_set(cc, json, m->argv[2]);
	if (strcmp(cmd, "repo") == 0 && strcmp(sub, "ls") == 0 &&
	    (argc == 2 || argc == 3))
		return ctl_repo_ls(cc, json, argc == 3 ? m->argv[2] : "/");
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "queue") == 0 ||
	    (strcmp(cmd, "repo") == 0 &&
	    (strcmp(sub, "get") == 0 || strcmp(sub, "set") == 0 ||
	    strcmp(sub, "ls") == 0)))
		ctl_error(cc, json, PH_ERR_USAGE, "wrong number of arguments; "
		    "usage: status | queue | repo get | repo set PATH | "
		    "repo ls [PATH]");
	else if (strcmp(cmd, "repo") == 0 && argc > 1)
		ctl_error(cc, json, PH_ERR_USAGE, "unknown repo command '%s'; "
		    "usage: repo get | repo set PATH | repo ls [PATH]", sub);
	else if (strcmp(cmd, "repo") == 0)
		ctl_error(cc, json, PH_ERR_USAGE, "missing repo command; "
		    "usage: repo get | repo set PATH | repo ls [PATH]");
	else if (argc == 0)
		ctl_error(cc, json, PH_ERR_USAGE, "no command given; commands: "
		    "status, queue, repo get, repo set PATH, repo ls [PATH], "
		    "vm, acl, audit");
	else
		ctl_error(cc, json, PH_ERR_USAGE, "unknown command '%s%s%s'; "
		    "commands: status, queue, repo get, repo set PATH, "
		    "repo ls [PATH], vm, acl, audit", cmd, argc > 1 ? " " : "",
		    sub);
	return PH_ERR_USAGE;
}

/* ---- Connections ------------------------------------------------------ */

/* Logs one control request: peer, the command's words, the result. */
static void
ctl_log(struct ctl_conn *cc, const struct ph_ctl *m, enum ph_err result)
{
	char cmd[1024], word[512];
	size_t off = 0;

	cmd[0] = '\0';
	for (uint16_t i = 0; i < m->argc && off < sizeof(cmd); i++) {
		log_escape(m->argv[i], strlen(m->argv[i]), false, word,
		    sizeof(word));
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, "%s%s",
		    i ? "," : "", word);
	}
	log_info(cc->ctl->log, "peer=%s op=CTL cmd=%s result=%s", cc->peer,
	    m->argc > 0 ? cmd : "-", ph_err_name(result));
}

/* Answers a frame that is not a valid CTL and closes the connection. */
static void
ctl_protocol_error(struct ctl_conn *cc, const char *why)
{
	log_info(cc->ctl->log, "peer=%s op=CTL cmd=- result=PROTOCOL (%s)",
	    cc->peer, why);
	cc->close_after = true;
	cc->rlen = 0;
	ctl_error(cc, false, PH_ERR_PROTOCOL, "protocol error: %s", why);
}

/* Handles every complete frame in the buffer, one reply at a time. */
static void
ctl_process(struct ctl_conn *cc)
{
	struct ph_header h;
	struct ph_msg *m;
	size_t flen;
	enum ph_err result;
	int r;

	while (!cc->closing && !cc->writing && cc->job == NULL &&
	    cc->vmreq == NULL && cc->rlen >= PH_HDR_LEN) {
		if ((r = ph_header_parse(cc->rbuf, cc->rlen, &h)) < 0) {
			ctl_protocol_error(cc, strerror(-r));
			return;
		}
		if (h.type != PH_CTL) {
			ctl_protocol_error(cc,
			    "only CTL frames are valid here");
			return;
		}
		flen = PH_HDR_LEN + h.length;
		if (flen > sizeof(cc->rbuf)) {
			ctl_protocol_error(cc, "frame too large");
			return;
		}
		if (cc->rlen < flen)
			break;
		/* A decoded CTL is large (32 arguments of 4 KiB): heap. */
		if ((m = malloc(sizeof(*m))) == NULL) {
			ctl_conn_close(cc);
			return;
		}
		r = ph_decode(h.type, cc->rbuf + PH_HDR_LEN, h.length, m);
		if (r < 0) {
			free(m);
			ctl_protocol_error(cc, strerror(-r));
			return;
		}
		memmove(cc->rbuf, cc->rbuf + flen, cc->rlen - flen);
		cc->rlen -= flen;
		result = ctl_dispatch(cc, &m->u.ctl);
		/* A command still running is logged when it ends. */
		if (cc->job == NULL && cc->vmreq == NULL)
			ctl_log(cc, &m->u.ctl, result);
		free(m);
	}
	if (!cc->closing && !cc->writing && cc->job == NULL &&
	    cc->vmreq == NULL && !cc->reading) {
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
	store_ctl_cancel(cc->job);
	cc->job = NULL;
	vmmap_cancel(server_vmmap(cc->ctl->srv), cc->vmreq);
	cc->vmreq = NULL;
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
control_new(uv_loop_t *loop, struct log *log, struct server *srv,
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
	/* The handle exists: it is released through control_close/free. */
	*out = ctl;
	control_close(ctl);
	return r;
}

const char *
control_path(const struct control *ctl)
{
	return ctl->path;
}

void
control_set_vsockdev(struct control *ctl, struct vsockdev *vd)
{
	ctl->vsd = vd;
}

/* The listening handle is closed; control_free() may run. */
static void
ctl_on_listener_closed(uv_handle_t *h)
{
	struct control *ctl = h->data;

	ctl->listener_open = false;
}

/* Stops the control socket and removes its file if it is still ours. */
void
control_close(struct control *ctl)
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
control_free(struct control *ctl)
{
	if (ctl == NULL)
		return;
	if (ctl->listener_open || !TAILQ_EMPTY(&ctl->conns))
		abort();	/* handles still refer to ctl */
	free(ctl);
}
