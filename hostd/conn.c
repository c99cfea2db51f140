/*
 * conn.c: a data connection's frame state machine.
 *
 * States: waiting for HELLO, then ready for a request; while a request is
 * in flight (from the moment it is read until its last reply frame has left
 * the buffer) any further frame is a protocol error. A request may wait for
 * its digest on the thread pool, then streams through a transfer.
 *
 * Two transports carry the bytes: an accepted socket, watched with a
 * uv_poll, or an in-process port (a guest's vsock connection on our own
 * virtio device), which pushes input in with conn_port_write() and pulls
 * output with conn_port_read(), straight into its own buffers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <zstd.h>

#include "config.h"
#include "acl.h"
#include "audit.h"
#include "cache.h"
#include "conn.h"
#include "log.h"
#include "proto.h"
#include "queue.h"
#include "repo.h"
#include "server.h"
#include "state.h"
#include "store.h"
#include "store_fill.h"
#include "transfer.h"
#include "upstream.h"
#include "vmmap.h"
#include "wbuf.h"

/* Bytes one connection may send per wakeup, so no peer starves others. */
#define CONN_BUDGET		(4u * 1024 * 1024)
/* How long a connection that is being closed may take to drain. */
#define CONN_LINGER_MS		5000
/* While a GET waits for its digest or a slot, a QUEUED frame this often. */
#define CONN_KEEPALIVE_MS	10000
/* A port's connection looks at its input once more before a deadline. */
#define CONN_AGAIN_MS		1
/* How often a connection holding a slot checks that its peer still reads. */
#define CONN_STALL_TICK_MS	500
/* The input buffer: one maximal request. */
#define CONN_RBUF		(PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD)
#define CONN_ZSTD_LEVEL		1
/* The largest LIST_REPLY frame: 256 entries with 255-byte names. */
#define CONN_LIST_FRAME		(PH_HDR_LEN + 10 + \
	PH_MAX_LIST_ENTRIES * (1 + 8 + 8 + 4 + 2 + PH_MAX_NAME))
#define CONN_LOG_PATH		1024

enum conn_state {
	CONN_HELLO,		/* nothing but HELLO is valid */
	CONN_READY,		/* handshake done */
};

/* What the connection's one timer is doing. */
enum conn_tmode {
	CONN_TM_NONE,
	CONN_TM_REQUEST,	/* the first request is due, or the rest
				   of a frame that has begun */
	CONN_TM_IDLE,		/* between requests */
	CONN_TM_KEEPALIVE,	/* hashing, or waiting for a slot */
	CONN_TM_SLOT,		/* holding a slot: is the peer reading? */
	CONN_TM_LINGER,		/* closing: the last frames must leave */
};

/* The request in flight, if any. */
struct conn_req {
	bool		 active;
	uint8_t		 op;		/* frame type */
	char		 path[CONN_LOG_PATH];	/* escaped, for the log */
	uint64_t	 start_ns;
	enum ph_err	 result;
	uint64_t	 bytes;
	bool		 final_queued;	/* the last reply frame is queued */
	struct store_req *sreq;		/* being resolved by the store */
	bool		 resolving;	/* inside store_get()/store_stat() */
	char		 rel[PH_MAX_PATH + 1];	/* normalised path */
	/* The source until a transfer owns it, and its metadata. */
	struct store_src src;
	uint64_t	 offset;
	bool		 zstd;		/* GET may answer with DATA_ZSTD */
	bool		 stale;		/* a copy not revalidated upstream */
	struct transfer	*xfer;
	struct queue_ticket *ticket;	/* its place in the transfer queue */
	uint32_t	 position;	/* last place in line we heard of */
	bool		 position_due;	/* a QUEUED frame is owed */
	bool		 trickle;	/* paused: one frame as a keepalive */
	uint64_t	 slice_base;	/* transfer bytes at the slice start */
	uint64_t	 stream_ns;	/* when streaming first began */
	uint32_t	 denied_by;	/* FORBIDDEN by this rule; 0: default */
	bool		 denied;	/* refused by the access rules */
};

struct conn {
	TAILQ_ENTRY(conn) link;
	struct conn_list *list;
	struct server	*srv;
	struct log	*log;
	uv_poll_t	 poll;
	uv_timer_t	 timer;		/* see enum conn_tmode */
	enum conn_tmode	 tmode;
	uint64_t	 connect_ms;	/* uv_now() at accept */
	uint64_t	 progress_ms;	/* uv_now() when bytes last left, or
					   when output began to wait */
	uint64_t	 ack_ms;	/* uv_now() when HELLO_ACK left */
	uint64_t	 frame_ms;	/* uv_now() when the input buffer got
					   its first byte */
	bool		 served;	/* a request after HELLO was read */
	uint64_t	 nreq;		/* whole frames read, HELLO too */
	uint64_t	 tm_nreq;	/* nreq when the timer was aimed */
	bool		 tm_again;	/* the deadline passed once: one more
					   look at the input first */
	bool		 trust_declared; /* HELLO's declared_peer names it */
	int		 fd;		/* the socket; -1 for a port */
	const struct conn_port_ops *pops; /* a port's calls, or NULL */
	void		*port;		/* the port; NULL once either closed */
	bool		 pulling;	/* inside conn_port_read() */
	bool		 input_blocked;	/* the port holds input we had no
					   room for */
	int		 open_handles;
	bool		 polled;	/* poll is a handle of ours */
	int		 poll_events;	/* events the poll handle watches */
	char		 peer[192];	/* display form, then ",vm=NAME" */
	char		 qpeer[64];	/* identity for fair queueing */
	uint32_t	 cid;		/* vsock CID (declared, on test
					   listeners); 0 for other peers */
	size_t		 peer_base;	/* length of peer without ",vm=" */
	uint64_t	 vm_gen;	/* map generation vm is from */
	bool		 has_vm;
	struct vmmap_dom vm;		/* the libvirt domain with cid */
	enum conn_state	 state;
	uint32_t	 features;	/* negotiated */
	struct wbuf	*wb;
	ZSTD_CCtx	*cctx;		/* created on the first zstd GET */
	ZSTD_DCtx	*dctx;		/* created for the first zstd blob */
	bool		 want_write;	/* output waits for the socket */
	bool		 closing;	/* handles are being closed */
	bool		 close_after;	/* close once the output is sent */
	bool		 draining;	/* close when no request is in flight */
	bool		 peer_eof;
	bool		 abort_pending;	/* send an ERROR at the next boundary */
	uint8_t		 abort_op;
	uint16_t	 abort_code;
	char		 abort_msg[256];
	const char	*lost_as;	/* result logged for a cut request */
	struct conn_req	 req;
	size_t		 rlen;
	uint8_t		*rbuf;		/* CONN_RBUF bytes while input waits */
};

static void	conn_close(struct conn *c, const char *why);
static void	conn_kick(struct conn *c);
static void	conn_limit_peer(struct conn *c);
static void	conn_on_linger(uv_timer_t *t);
static void	conn_on_poll(uv_poll_t *h, int status, int events);

struct conn *
conn_first(struct conn_list *list)
{
	return TAILQ_FIRST(list);
}

struct conn *
conn_next(struct conn *c)
{
	return TAILQ_NEXT(c, link);
}

/* ---- Requests ---------------------------------------------------------- */

/* Marks the start of a request (or of a refused frame, for the log). */
static void
conn_req_begin(struct conn *c, uint8_t op)
{
	memset(&c->req, 0, sizeof(c->req));
	c->req.active = true;
	c->req.op = op;
	store_src_init(&c->req.src);
	c->req.result = PH_OK;
	c->req.start_ns = uv_hrtime();
	snprintf(c->req.path, sizeof(c->req.path), "-");
}

/* Releases what a request holds: its lookup, source and transfer. */
static void
conn_req_release(struct conn *c)
{
	store_cancel(c->req.sreq);
	c->req.sreq = NULL;
	queue_leave(c->req.ticket);
	c->req.ticket = NULL;
	transfer_free(c->req.xfer);
	c->req.xfer = NULL;
	store_src_release(&c->req.src);
}

/* ---- Identity and audit ------------------------------------------------- */

/* The CID in a display form "vsock:N"; 0 for any other peer. */
static uint32_t
conn_peer_cid(const char *peer)
{
	unsigned long v;
	char *end;

	if (strncmp(peer, "vsock:", 6) != 0 || peer[6] < '0' || peer[6] > '9')
		return 0;
	errno = 0;
	v = strtoul(peer + 6, &end, 10);
	if (errno != 0 || (*end != '\0' && *end != ',') || v > UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

/*
 * Names the peer after the libvirt domain that has its CID, when the map
 * changed since the last look: ",vm=NAME" goes after the display form so
 * log lines and `portholectl queue` show it.
 */
static void
conn_identify(struct conn *c)
{
	struct vmmap *vm = server_vmmap(c->srv);
	uint64_t gen = vmmap_generation(vm);

	if (c->cid == 0 || gen == c->vm_gen)
		return;
	c->vm_gen = gen;
	c->has_vm = vmmap_lookup(vm, c->cid, &c->vm);
	c->peer[c->peer_base] = '\0';
	/* A vhost-user device named by the admin keeps that name. */
	if (memmem(c->peer, c->peer_base, ",vm=", 4) != NULL)
		return;
	if (c->has_vm && c->peer_base + 5 < sizeof(c->peer)) {
		memcpy(c->peer + c->peer_base, ",vm=", 5);
		ph_util_escape(c->vm.name, strlen(c->vm.name), false,
		    c->peer + c->peer_base + 4, sizeof(c->peer) -
		    c->peer_base - 4);
	}
}

/* Who the access rules see. */
static void
conn_acl_peer(const struct conn *c, struct acl_peer *p)
{
	p->cid = c->cid;
	p->name = c->has_vm ? c->vm.name : NULL;
	p->uuid = c->has_vm && c->vm.uuid[0] != '\0' ? c->vm.uuid : NULL;
}

/* Appends the request to the audit trail: GET, STAT and LIST only. */
static void
conn_audit(struct conn *c, const char *result, uint64_t ms)
{
	struct state_audit_row row;
	char peer[sizeof(c->peer)];

	if (c->req.op != PH_GET && c->req.op != PH_STAT &&
	    c->req.op != PH_LIST)
		return;
	/* The peer without ",vm=": the domain has a column of its own. */
	snprintf(peer, sizeof(peer), "%.*s", (int)c->peer_base, c->peer);
	memset(&row, 0, sizeof(row));
	row.time_ms = audit_now_ms() - (int64_t)ms;
	row.cid = c->cid;
	row.peer = peer;
	row.domain = c->has_vm ? c->vm.name : NULL;
	row.uuid = c->has_vm && c->vm.uuid[0] != '\0' ? c->vm.uuid : NULL;
	row.op = ph_message_type_name(c->req.op);
	row.path = c->req.path;
	row.result = result;
	row.bytes = c->req.bytes;
	row.ms = ms;
	audit_record(server_audit(c->srv), &row);
}

/* Writes the request's log line; result is the word after "result=". */
static void
conn_req_log(struct conn *c, const char *result)
{
	uint64_t ms = (uv_hrtime() - c->req.start_ns) / 1000000;
	char why[32] = "";

	if (c->req.op == PH_HELLO && c->req.result == PH_OK) {
		log_debug(c->log, "peer=%s op=HELLO result=OK features=0x%x",
		    c->peer, c->features);
		return;
	}
	if (c->req.denied && c->req.denied_by != 0)
		snprintf(why, sizeof(why), " denied_by=rule:%u",
		    c->req.denied_by);
	else if (c->req.denied)
		snprintf(why, sizeof(why), " denied_by=default");
	log_info(c->log, "peer=%s op=%s path=%s result=%s bytes=%" PRIu64
	    " ms=%" PRIu64 "%s", c->peer, ph_message_type_name(c->req.op),
	    c->req.path, result, c->req.bytes, ms, why);
	conn_audit(c, result, ms);
}

/* The request's last frame has been sent: log it and get ready for more. */
static void
conn_req_end(struct conn *c)
{
	conn_req_log(c, ph_err_name(c->req.result));
	if (c->req.op != PH_HELLO)
		server_count(c->srv, c->req.bytes);
	if (c->req.op == PH_HELLO && c->req.result == PH_OK) {
		c->state = CONN_READY;
		c->ack_ms = uv_now(server_loop(c->srv));
	}
	conn_req_release(c);
	c->req.active = false;
	wbuf_trim(c->wb);
}

/* Queues a message; on failure the connection can only be dropped. */
static bool
conn_put(struct conn *c, const struct ph_msg *m)
{
	int err;

	if ((err = wbuf_put_msg(c->wb, m)) < 0) {
		log_warn(c->log, "peer=%s cannot queue %s: %s", c->peer,
		    ph_message_type_name(m->type), strerror(-err));
		conn_close(c, "out of memory");
		return false;
	}
	return true;
}

/* Ends the request with an ERROR frame; the connection stays usable. */
static void
conn_reply_error(struct conn *c, enum ph_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conn_reply_error(struct conn *c, enum ph_err code, const char *fmt, ...)
{
	struct ph_msg m;
	va_list ap;

	memset(&m, 0, sizeof(m));
	m.type = PH_ERROR;
	m.u.error.code = (uint16_t)code;
	va_start(ap, fmt);
	vsnprintf(m.u.error.message, sizeof(m.u.error.message), fmt, ap);
	va_end(ap);
	conn_req_release(c);
	c->req.result = code;
	c->req.final_queued = true;
	(void)conn_put(c, &m);
}

/*
 * Ends the connection with ERROR code: now if the output is at a frame
 * boundary, else as soon as it is. op names the offending frame in the log
 * when no request is in flight.
 */
static void
conn_fail(struct conn *c, uint8_t op, enum ph_err code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
conn_fail(struct conn *c, uint8_t op, enum ph_err code, const char *fmt, ...)
{
	va_list ap;

	if (c->closing || c->abort_pending || c->close_after)
		return;
	c->abort_pending = true;
	c->abort_op = op;
	c->abort_code = (uint16_t)code;
	va_start(ap, fmt);
	vsnprintf(c->abort_msg, sizeof(c->abort_msg), fmt, ap);
	va_end(ap);
	c->close_after = true;
	/* Nothing more will be read from a peer we are dropping. */
	c->rlen = 0;
	store_cancel(c->req.sreq);
	c->req.sreq = NULL;
	c->tmode = CONN_TM_LINGER;
	uv_timer_start(&c->timer, conn_on_linger, CONN_LINGER_MS, 0);
}

/* Sends the pending ERROR; called only at a frame boundary. */
static void
conn_send_abort(struct conn *c)
{
	struct ph_msg m;

	c->abort_pending = false;
	if (!c->req.active)
		conn_req_begin(c, c->abort_op);
	memset(&m, 0, sizeof(m));
	m.type = PH_ERROR;
	m.u.error.code = c->abort_code;
	snprintf(m.u.error.message, sizeof(m.u.error.message), "%s",
	    c->abort_msg);
	conn_req_release(c);
	c->req.result = c->abort_code;
	c->req.final_queued = true;
	(void)conn_put(c, &m);
}

/* ---- Paths and file-system errors -------------------------------------- */

/*
 * Normalises the request's path into rel and records its display form.
 * Returns true, or answers the request with BAD_PATH / PATH_ESCAPE.
 */
static bool
conn_path(struct conn *c, const char *raw, char *rel, size_t cap)
{
	char disp[PH_MAX_PATH + 2];
	int r;

	r = ph_path_normalize(raw, strlen(raw), rel, cap);
	if (r < 0) {
		ph_util_escape(raw, strlen(raw), true, c->req.path,
		    sizeof(c->req.path));
		if (r == -EPERM)
			conn_reply_error(c, PH_ERR_PATH_ESCAPE,
			    "path climbs above the repository root");
		else if (r == -ENAMETOOLONG)
			conn_reply_error(c, PH_ERR_BAD_PATH, "path too long");
		else
			conn_reply_error(c, PH_ERR_BAD_PATH, "invalid path "
			    "(not UTF-8, or a NUL or control byte)");
		return false;
	}
	ph_path_display(rel, disp, sizeof(disp));
	ph_util_escape(disp, strlen(disp), false, c->req.path,
	    sizeof(c->req.path));
	return true;
}

/* Answers the request with the error code for a failed file operation. */
static void
conn_reply_fs_error(struct conn *c, int err, const char *rel)
{
	char d[PH_MAX_PATH + 2];

	ph_path_display(rel, d, sizeof(d));
	switch (err) {
	case -ENOENT:
		conn_reply_error(c, PH_ERR_NOT_FOUND,
		    "no such file or directory: %s", d);
		break;
	case -ENOTDIR:
		if (c->req.op == PH_LIST)
			conn_reply_error(c, PH_ERR_NOT_DIR,
			    "not a directory: %s", d);
		else
			conn_reply_error(c, PH_ERR_NOT_FOUND,
			    "no such file or directory: %s", d);
		break;
	case -EACCES:
	case -EPERM:
		conn_reply_error(c, PH_ERR_FORBIDDEN, "permission denied: %s",
		    d);
		break;
	case -EXDEV:
	case -ELOOP:
		conn_reply_error(c, PH_ERR_PATH_ESCAPE,
		    "path leads outside the repository: %s", d);
		break;
	case -EISDIR:
		conn_reply_error(c, PH_ERR_NOT_FILE,
		    "not a regular file: %s is a directory", d);
		break;
	case -ENODEV:
		conn_reply_error(c, PH_ERR_NOT_FILE,
		    "not a regular file: %s", d);
		break;
	case -ENAMETOOLONG:
		conn_reply_error(c, PH_ERR_BAD_PATH, "path too long");
		break;
	default:
		conn_reply_error(c, PH_ERR_IO, "cannot read %s: %s", d,
		    strerror(-err));
		break;
	}
}

/* The current repository, or NULL after answering UNAVAILABLE. */
static struct repo *
conn_repo(struct conn *c)
{
	struct repo *r = server_repo(c->srv);

	if (r == NULL)
		conn_reply_error(c, PH_ERR_UNAVAILABLE,
		    "no repository configured");
	return r;
}

/*
 * Queues META for st; sha256 NULL when there is no digest; stale when the
 * copy could not be revalidated (said only to a client that negotiated
 * STALE: an older one refuses the bit).
 */
static bool
conn_put_meta(struct conn *c, const struct stat *st, const uint8_t *sha256,
    bool stale)
{
	struct ph_msg m;

	memset(&m, 0, sizeof(m));
	m.type = PH_META;
	m.u.meta.ftype = repo_ftype(st->st_mode);
	m.u.meta.size = m.u.meta.ftype == PH_FT_OTHER ? 0 :
	    (uint64_t)st->st_size;
	m.u.meta.mtime_ns = repo_ns(&st->st_mtim);
	m.u.meta.mode = (uint32_t)(st->st_mode & 07777);
	if (sha256 != NULL) {
		m.u.meta.has_digest = 1;
		memcpy(m.u.meta.sha256, sha256, PH_SHA256_LEN);
	}
	m.u.meta.stale = stale && (c->features & PH_FEAT_STALE);
	return conn_put(c, &m);
}

/* ---- Access rules ----------------------------------------------------- */

/*
 * Asks the access rules whether the peer may read rel (normalised), or
 * with browse (STAT, LIST) also pass through it to something it may read.
 * rel NULL is a path whose real place is unknown (a relay's parent did not
 * say): allowed only to a peer the rules restrict in nothing. A refusal
 * is recorded for the audit trail and explained in msg, naming the path
 * the peer asked for (shown), never where a link leads.
 */
static bool
conn_check(struct conn *c, const char *rel, const char *shown, bool browse,
    char *msg, size_t cap)
{
	char d[PH_MAX_PATH + 2];
	struct acl_verdict v;
	struct acl_peer p;

	conn_identify(c);
	conn_acl_peer(c, &p);
	if (rel == NULL) {
		v.allow = !acl_restricts(server_acl(c->srv), &p);
		v.rule = 0;
	} else if (browse)
		acl_check_browse(server_acl(c->srv), &p, rel, &v);
	else
		acl_check(server_acl(c->srv), &p, rel, &v);
	if (v.allow)
		return true;
	ph_path_display(shown, d, sizeof(d));
	c->req.denied = true;
	c->req.denied_by = v.rule;
	if (rel == NULL)
		snprintf(msg, cap, "access denied: the upstream server does "
		    "not report where %s leads, so this relay's rules cannot "
		    "be checked", d);
	else if (v.rule != 0)
		snprintf(msg, cap, "access denied by rule %u: %s", v.rule, d);
	else
		snprintf(msg, cap, "access denied by the default policy: %s",
		    d);
	return false;
}

/*
 * Checks rel as conn_check() does and, if refused, answers FORBIDDEN.
 * Returns true when allowed.
 */
static bool
conn_allowed(struct conn *c, const char *rel, const char *shown,
    bool browse)
{
	char msg[PH_MAX_PATH + 128];

	if (conn_check(c, rel, shown, browse, msg, sizeof(msg)))
		return true;
	conn_reply_error(c, PH_ERR_FORBIDDEN, "%s", msg);
	return false;
}

/*
 * Tells a client that asked for PATH frames (a relay, so it can apply its
 * own rules) where the request, or LIST entry number entry, really leads.
 * Nothing is said about a refused request. Returns false if the frame
 * could not be queued (the connection is closing).
 */
static bool
conn_put_path(struct conn *c, uint16_t entry, const char *real)
{
	struct ph_msg m;

	if (!(c->features & PH_FEAT_REALPATH) || c->req.denied)
		return true;
	m.type = PH_PATH;
	m.u.path.entry = entry;
	snprintf(m.u.path.path, sizeof(m.u.path.path), "%s", real);
	return conn_put(c, &m);
}

/*
 * Before the answer to a GET or STAT: the PATH frame, if asked for and
 * the lookup got that far. An answer whose real path is unknown (a relay
 * whose own parent does not say, or a cached copy while it is down) gets
 * an empty PATH, so that the client's own rules treat it as unknown.
 * False when the connection is closing.
 */
static bool
conn_tell_path(struct conn *c, const struct store_res *res)
{
	if (!(c->features & PH_FEAT_REALPATH) || c->req.denied)
		return true;
	if (res->real[0] != '\0' || res->code == PH_OK)
		return conn_put_path(c, 0, res->real);
	return true;
}

/* The store's gate: GET reads the real path, STAT browses it. */
static bool
conn_gate(void *arg, const char *real, char *msg, size_t cap)
{
	struct conn *c = arg;

	return conn_check(c, real, c->req.rel, c->req.op != PH_GET, msg, cap);
}

/* True if the rules let a LIST show path, the way to something readable. */
static bool
conn_may_pass(const struct conn *c, const char *dir, const char *name)
{
	char child[PH_MAX_PATH + PH_MAX_NAME + 2];
	struct acl_verdict v;
	struct acl_peer p;
	int n;

	if (name[0] == '\0')
		n = snprintf(child, sizeof(child), "%s", dir);
	else
		n = snprintf(child, sizeof(child), "%s%s%s", strcmp(dir, ".") ==
		    0 ? "" : dir, strcmp(dir, ".") == 0 ? "" : "/", name);
	/* Too long to ask for is too long to show. */
	if (n < 0 || (size_t)n > PH_MAX_PATH)
		return false;
	conn_acl_peer(c, &p);
	acl_check_browse(server_acl(c->srv), &p, child, &v);
	return v.allow;
}

/*
 * True if a LIST of dir (real: where it really is) may show the entry
 * name: both of its paths lead somewhere, and so does its target, the
 * real path of a symlink ("" for an entry that is none; NULL: unknown).
 */
static bool
conn_may_see(const struct conn *c, const char *dir, const char *real,
    const char *name, const char *target)
{
	struct acl_peer p;

	if (server_acl(c->srv) == NULL)
		return true;
	if (target == NULL) {
		conn_acl_peer(c, &p);
		if (acl_restricts(server_acl(c->srv), &p))
			return false;
	}
	return conn_may_pass(c, dir, name) &&
	    (strcmp(real, dir) == 0 || conn_may_pass(c, real, name)) &&
	    (target == NULL || target[0] == '\0' ||
	    conn_may_pass(c, target, ""));
}

/* A LIST page being built: its entries, and where its symlinks lead. */
struct conn_page {
	uint8_t		 buf[CONN_LIST_FRAME - PH_HDR_LEN - 10];
	struct ph_writer w;
	uint16_t	 n;
	char		*target[PH_MAX_LIST_ENTRIES];
};

/* An empty page, or NULL after closing the connection (no memory). */
static struct conn_page *
conn_page_new(struct conn *c)
{
	struct conn_page *pg;

	if ((pg = calloc(1, sizeof(*pg))) == NULL) {
		conn_close(c, "out of memory");
		return NULL;
	}
	ph_writer_init(&pg->w, pg->buf, sizeof(pg->buf));
	return pg;
}

static void
conn_page_free(struct conn_page *pg)
{
	if (pg == NULL)
		return;
	for (size_t i = 0; i < PH_MAX_LIST_ENTRIES; i++)
		free(pg->target[i]);
	free(pg);
}

/*
 * Adds an entry and its link target (NULL or "" if none) to the page.
 * Returns false when the page is full. Without memory for the target the
 * entry is left out, as if it had vanished.
 */
static bool
conn_page_add(struct conn_page *pg, const struct ph_list_entry *e,
    const char *target)
{
	char *t = NULL;

	if (pg->n >= PH_MAX_LIST_ENTRIES)
		return false;
	if (target != NULL && target[0] != '\0' &&
	    (t = strdup(target)) == NULL)
		return true;
	if (ph_message_list_entry_put(&pg->w, e) < 0) {
		free(t);
		return false;
	}
	pg->target[pg->n++] = t;
	return true;
}

/*
 * Answers a LIST with the page: for a client that asked for them, PATH
 * frames first (the directory's real path, empty when real is NULL:
 * unknown; then each symlink's target), then LIST_REPLY. Frees the page.
 */
static void
conn_page_send(struct conn *c, struct conn_page *pg, const char *real,
    uint64_t next_cursor)
{
	struct ph_writer hw;
	uint8_t *p;

	/* Unknown (a relay behind a parent that does not say): empty. */
	if (!conn_put_path(c, 0, real != NULL ? real : ""))
		goto out;
	for (uint16_t i = 0; real != NULL && i < pg->n; i++)
		if (pg->target[i] != NULL &&
		    !conn_put_path(c, (uint16_t)(i + 1), pg->target[i]))
			goto out;
	if ((p = wbuf_reserve(c->wb, PH_HDR_LEN + 10 + pg->w.off)) == NULL) {
		conn_close(c, "out of memory");
		goto out;
	}
	ph_frame_header_write(p, PH_LIST_REPLY, (uint32_t)(10 + pg->w.off));
	ph_writer_init(&hw, p + PH_HDR_LEN, 10);
	(void)ph_writer_put_u64(&hw, next_cursor);
	(void)ph_writer_put_u16(&hw, pg->n);
	memcpy(p + PH_HDR_LEN + 10, pg->buf, pg->w.off);
	wbuf_commit(c->wb, PH_HDR_LEN + 10 + pg->w.off);
	c->req.bytes = 0;
	c->req.final_queued = true;
out:
	conn_page_free(pg);
}

/*
 * Copies the entries of a parent's LIST page the peer may see into pg.
 * The page was validated when it was decoded; paths is where its
 * directory and symlinks lead, as the parent said.
 */
static void
conn_list_filter(const struct conn *c, const char *dir,
    const struct ph_list_reply *page, const struct upstream_paths *paths,
    struct conn_page *pg)
{
	const char *target;
	struct ph_list_entry e;
	struct ph_reader r;

	ph_reader_init(&r, page->entries, page->entries_len);
	for (uint16_t i = 0; i < page->count; i++) {
		if (ph_message_list_entry_next(&r, &e) < 0)
			break;
		target = !paths->known ? NULL : paths->target[i] != NULL ?
		    paths->target[i] : "";
		if (!conn_may_see(c, dir, paths->known ? paths->real : dir,
		    e.name, target))
			continue;
		if (!conn_page_add(pg, &e, target))
			break;
	}
}

/* ---- GET and STAT -------------------------------------------------------- */

/* The per-connection compressor, created on first use; NULL if it fails. */
static ZSTD_CCtx *
conn_cctx(struct conn *c)
{
	if (c->cctx != NULL)
		return c->cctx;
	if ((c->cctx = ZSTD_createCCtx()) == NULL)
		return NULL;
	/* Level 1, and the content size in every frame header. */
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
	    ZSTD_c_compressionLevel, CONN_ZSTD_LEVEL)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
	    ZSTD_c_contentSizeFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->cctx,
	    ZSTD_c_checksumFlag, 0))) {
		ZSTD_freeCCtx(c->cctx);
		c->cctx = NULL;
	}
	return c->cctx;
}

/* The per-connection decompressor, for zstd blobs; NULL if it fails. */
static ZSTD_DCtx *
conn_dctx(struct conn *c)
{
	if (c->dctx == NULL)
		c->dctx = ZSTD_createDCtx();
	return c->dctx;
}

/* A fill this GET follows grew or ended. */
static void
conn_on_fill(void *arg)
{
	struct conn *c = arg;

	if (!c->closing)
		conn_kick(c);
}

/* Sends META and hands the source to a transfer: the GET has a slot. */
static void
conn_get_stream(struct conn *c)
{
	struct transfer_params p;
	enum ph_err code;
	const char *msg;
	bool digest = c->features & PH_FEAT_SHA256;
	int err;

	/* A fill that ended while we waited knows the digest by now. */
	if (c->req.src.fill != NULL && !c->req.src.has_digest &&
	    store_fill_status(c->req.src.fill, c->req.src.sha256, &code,
	    &msg) == 1)
		c->req.src.has_digest = true;
	if (!conn_put_meta(c, &c->req.src.st, c->req.src.has_digest &&
	    digest ? c->req.src.sha256 : NULL, c->req.stale))
		return;
	memset(&p, 0, sizeof(p));
	store_src_init(&p.src);
	store_src_move(&p.src, &c->req.src);
	p.offset = c->req.offset;
	p.want_zstd = c->req.zstd;
	p.cctx = c->req.zstd ? conn_cctx(c) : NULL;
	p.dctx = p.src.blob != NULL && cache_blob_form(p.src.blob) ==
	    CACHE_FORM_ZSTD ? conn_dctx(c) : NULL;
	p.wake = conn_on_fill;
	p.wake_arg = c;
	p.send_digest = digest;
	p.send_stale = (c->features & PH_FEAT_STALE) != 0;
	p.stale = c->req.stale;
	c->req.stream_ns = uv_hrtime();
	c->req.slice_base = 0;
	c->progress_ms = uv_now(server_loop(c->srv));
	if ((err = transfer_new(&p, &c->req.xfer)) < 0)
		conn_reply_error(c, PH_ERR_INTERNAL, "out of memory");
}

/*
 * Gives the slot to the next in line: the slice is over (by its bytes, at
 * a frame boundary, or by its time, wherever the output is). A frame begun
 * is still sent; the next waits for the slot to come back.
 */
static void
conn_slice_yield(struct conn *c, const char *by)
{
	if (c->req.xfer == NULL || !queue_active(c->req.ticket))
		return;
	log_debug(c->log, "peer=%s %s: slice over %s after %" PRIu64
	    " bytes%s, yielding", c->peer, c->req.path, by,
	    transfer_bytes(c->req.xfer) - c->req.slice_base,
	    wbuf_empty(c->wb) ? "" : ", in the middle of a frame");
	queue_yield(c->req.ticket);
	wbuf_trim(c->wb);
}

/*
 * The queue moved: a slot is ours (start or resume streaming), our slice
 * is over (yield it), or our place in line changed (tell the client,
 * before META only: a paused transfer sends nothing but its keepalive
 * frames).
 */
static void
conn_on_queue(void *owner, enum queue_event ev, uint32_t position)
{
	struct conn *c = owner;

	if (c->closing || c->close_after || !c->req.active)
		return;
	if (ev == QUEUE_SLICE_OVER) {
		conn_slice_yield(c, "by its time");
	} else if (ev == QUEUE_GRANTED) {
		c->req.position_due = false;
		c->req.trickle = false;
		if (c->req.xfer != NULL) {
			/* The stall clock runs on: see conn_flush(). */
			c->req.slice_base = transfer_bytes(c->req.xfer);
			log_debug(c->log, "peer=%s %s: resuming", c->peer,
			    c->req.path);
		} else
			conn_get_stream(c);
	} else if (c->req.xfer == NULL) {
		c->req.position = position;
		c->req.position_due = true;
	}
	conn_kick(c);
}

/*
 * The source is known: take a place in the transfer queue, or stream at
 * once when a slot is free. A full queue answers BUSY.
 */
static void
conn_get_start(struct conn *c)
{
	struct queue *q = server_queue(c->srv);
	int r;

	/* Nothing to send: META and END need no slot. */
	if (c->req.offset == (uint64_t)c->req.src.st.st_size) {
		conn_get_stream(c);
		return;
	}
	r = queue_enter(q, c->qpeer, conn_on_queue, c, &c->req.ticket);
	if (r == 1) {
		conn_get_stream(c);
	} else if (r == 0) {
		log_debug(c->log, "peer=%s %s: waiting for a transfer slot",
		    c->peer, c->req.path);
	} else if (r == -EAGAIN) {
		conn_reply_error(c, PH_ERR_BUSY, "the server is busy: %u "
		    "requests are already waiting; try again later",
		    queue_config(q)->max_queue);
	} else if (r == -EDQUOT) {
		conn_reply_error(c, PH_ERR_BUSY, "the server is busy: this "
		    "client already has %u requests waiting or in progress; "
		    "try again later", queue_config(q)->max_per_peer);
	} else {
		conn_reply_error(c, PH_ERR_INTERNAL, "cannot queue: %s",
		    strerror(-r));
	}
}

/*
 * Looking up a large file, or waiting for a slot, takes a while before
 * META can go out. A QUEUED frame tells the client the request is alive,
 * so its read timeout does not fire. A transfer paused between slices
 * cannot send QUEUED after its META: it sends its next frame instead.
 */
static void
conn_on_keepalive(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (!c->req.active || c->req.op != PH_GET)
		return;
	if (c->req.xfer != NULL) {
		c->req.trickle = true;
	} else {
		c->req.position_due = true;
		if (c->req.position == 0)
			c->req.position = 1;
	}
	conn_kick(c);
}

/* Answers a failed lookup with the store's error. */
static void
conn_reply_store_error(struct conn *c, const struct store_res *res)
{
	if (res->fs_err != 0)
		conn_reply_fs_error(c, res->fs_err, c->req.rel);
	else
		conn_reply_error(c, res->code, "%s", res->msg);
}

/* The store resolved a GET: check the offset, then queue or stream. */
static void
conn_get_resolved(void *arg, struct store_res *res)
{
	struct conn *c = arg;

	c->req.sreq = NULL;
	if (!conn_tell_path(c, res))
		goto out;
	if (res->code != PH_OK) {
		conn_reply_store_error(c, res);
		goto out;
	}
	c->req.stale = res->stale;
	store_src_move(&c->req.src, &res->src);
	if (c->req.offset > (uint64_t)c->req.src.st.st_size) {
		conn_reply_error(c, PH_ERR_BAD_OFFSET, "offset %" PRIu64
		    " is past the end of the file (%jd bytes)", c->req.offset,
		    (intmax_t)c->req.src.st.st_size);
		goto out;
	}
	conn_get_start(c);
out:
	if (!c->req.resolving)
		conn_kick(c);
}

/* The store resolved a STAT: META, with the digest when negotiated. */
static void
conn_stat_resolved(void *arg, struct store_res *res)
{
	struct conn *c = arg;

	c->req.sreq = NULL;
	if (!conn_tell_path(c, res))
		;
	else if (res->code != PH_OK)
		conn_reply_store_error(c, res);
	else if (conn_put_meta(c, &res->src.st, res->src.has_digest &&
	    (c->features & PH_FEAT_SHA256) ? res->src.sha256 : NULL,
	    res->stale))
		c->req.final_queued = true;
	if (!c->req.resolving)
		conn_kick(c);
}

/* GET: find the content (cache, fill or repository), then stream it. */
static void
conn_handle_get(struct conn *c, const struct ph_get *g)
{
	struct store_req *r;

	conn_req_begin(c, PH_GET);
	if (!conn_path(c, g->path, c->req.rel, sizeof(c->req.rel)))
		return;
	if (!conn_allowed(c, c->req.rel, c->req.rel, false))
		return;
	if (g->offset > 0 && !(c->features & PH_FEAT_RESUME)) {
		conn_fail(c, PH_GET, PH_ERR_PROTOCOL,
		    "GET offset without the RESUME feature");
		return;
	}
	c->req.offset = g->offset;
	c->req.zstd = (g->flags & PH_GET_WANT_ZSTD) &&
	    (c->features & PH_FEAT_ZSTD);
	c->req.resolving = true;
	/* Honoured even unnegotiated: it costs the client nothing. */
	r = store_get(server_store(c->srv), server_repo(c->srv), c->req.rel,
	    (g->flags & PH_GET_REVERIFY) != 0, conn_gate, conn_get_resolved,
	    c);
	c->req.resolving = false;
	c->req.sreq = r;
}

/* STAT: metadata, with the digest of a regular file when negotiated. */
static void
conn_handle_stat(struct conn *c, const struct ph_path_req *s)
{
	struct store_req *r;

	conn_req_begin(c, PH_STAT);
	if (!conn_path(c, s->path, c->req.rel, sizeof(c->req.rel)))
		return;
	if (!conn_allowed(c, c->req.rel, c->req.rel, true))
		return;
	c->req.resolving = true;
	r = store_stat(server_store(c->srv), server_repo(c->srv), c->req.rel,
	    conn_gate, conn_stat_resolved, c);
	c->req.resolving = false;
	c->req.sreq = r;
}

/* ---- LIST --------------------------------------------------------------- */

/* A relay's LIST page from its parent: passed on as it came. */
static void
conn_list_relayed(void *arg, enum ph_err code, const char *msg,
    const struct ph_list_reply *page, const struct upstream_paths *paths)
{
	struct conn *c = arg;
	struct conn_page *pg;

	c->req.sreq = NULL;
	/* Where the parent says the directory is must be allowed too. */
	if (paths != NULL && (!paths->known || paths->real[0] != '\0') &&
	    !conn_allowed(c, paths->known ? paths->real : NULL, c->req.rel,
	    true))
		goto out;
	if (code != PH_OK) {
		conn_reply_error(c, code, "%s", msg);
		goto out;
	}
	if ((pg = conn_page_new(c)) == NULL)
		return;
	/* Only the names this peer may read (all of them, without rules). */
	conn_list_filter(c, c->req.rel, page, paths, pg);
	conn_page_send(c, pg, paths->known ? paths->real : NULL,
	    page->next_cursor);
out:
	if (!c->req.resolving)
		conn_kick(c);
}

/* LIST: one page of sorted entries, built in the output buffer. */
static void
conn_handle_list(struct conn *c, const struct ph_list *l)
{
	char rel[PH_MAX_PATH + 1], real[PH_MAX_PATH + 1];
	char target[PH_MAX_PATH + 1];
	struct ph_list_entry e;
	struct conn_page *pg;
	struct repo_dir *d = NULL;
	struct repo *repo;
	size_t count, i;
	int err;

	conn_req_begin(c, PH_LIST);
	if (!conn_path(c, l->path, rel, sizeof(rel)))
		return;
	if (!conn_allowed(c, rel, rel, true))
		return;
	/* A relayed page is filtered against it when it comes back. */
	snprintf(c->req.rel, sizeof(c->req.rel), "%s", rel);
	if (store_upstream(server_store(c->srv)) != NULL) {
		struct store_req *r;

		c->req.resolving = true;
		r = store_list(server_store(c->srv), rel, l->cursor,
		    conn_list_relayed, c);
		c->req.resolving = false;
		c->req.sreq = r;
		return;
	}
	if ((repo = conn_repo(c)) == NULL)
		return;
	err = repo_dir_read(repo, rel, &d, real);
	/* Even "not found" is not said about a place the peer may not see. */
	if (!conn_allowed(c, real, rel, true)) {
		repo_dir_free(d);
		return;
	}
	if (err < 0) {
		if (err == -E2BIG)
			conn_reply_error(c, PH_ERR_IO,
			    "directory too large to list");
		else
			conn_reply_fs_error(c, err, rel);
		return;
	}
	if ((pg = conn_page_new(c)) == NULL) {
		repo_dir_free(d);
		return;
	}
	count = repo_dir_count(d);
	i = l->cursor < count ? (size_t)l->cursor : count;
	for (; i < count; i++) {
		/* An entry that vanished since the read is skipped. */
		if (repo_dir_entry(d, i, &e, target) < 0)
			continue;
		/* A LIST never shows a name the peer may not read. */
		if (!conn_may_see(c, rel, real, e.name, target))
			continue;
		if (!conn_page_add(pg, &e, target))
			break;
	}
	repo_dir_free(d);
	conn_page_send(c, pg, real, i < count ? (uint64_t)i : 0);
}

/* ---- HELLO and PING ------------------------------------------------------ */

/* HELLO: pick the highest common version and the common features. */
static void
conn_handle_hello(struct conn *c, const struct ph_hello *h)
{
	char agent[128];
	struct ph_msg m;
	uint16_t lo, hi;

	conn_req_begin(c, PH_HELLO);
	lo = h->min_version > PH_PROTO_MIN_VERSION ? h->min_version :
	    PH_PROTO_MIN_VERSION;
	hi = h->max_version < PH_PROTO_VERSION ? h->max_version :
	    PH_PROTO_VERSION;
	if (lo > hi) {
		conn_fail(c, PH_HELLO, PH_ERR_VERSION, "no common protocol "
		    "version: server speaks %d to %d, client %u to %u",
		    PH_PROTO_MIN_VERSION, PH_PROTO_VERSION, h->min_version,
		    h->max_version);
		return;
	}
	c->features = h->features & (PH_FEAT_ALL | PH_FEAT_REALPATH);
	log_debug(c->log, "peer=%s hello agent=%s features=0x%x "
	    "declared_peer=%u (%s)", c->peer, ph_util_escape(h->agent,
	    strlen(h->agent), false, agent, sizeof(agent)), h->features,
	    h->declared_peer, c->trust_declared && h->declared_peer != 0 ?
	    "trusted: test listener" : "ignored");
	/* Test listeners only: the harness plays several guests. */
	if (c->trust_declared && h->declared_peer != 0) {
		snprintf(c->qpeer, sizeof(c->qpeer), "declared:%u",
		    h->declared_peer);
		snprintf(c->peer + strlen(c->peer), sizeof(c->peer) -
		    strlen(c->peer), ",declared=%u", h->declared_peer);
		/* It stands for a vsock CID: rules and names follow it. */
		c->cid = h->declared_peer;
		c->peer_base = strlen(c->peer);
		c->vm_gen = UINT64_MAX;
		conn_identify(c);
		/* Counted as that guest from now on. */
		conn_limit_peer(c);
		if (c->close_after)
			return;
	}
	memset(&m, 0, sizeof(m));
	m.type = PH_HELLO_ACK;
	m.u.hello_ack.version = hi;
	m.u.hello_ack.features = c->features;
	m.u.hello_ack.max_payload = PH_MAX_PAYLOAD;
	snprintf(m.u.hello_ack.agent, sizeof(m.u.hello_ack.agent),
	    "portholed/%s", PORTHOLE_VERSION);
	if (conn_put(c, &m))
		c->req.final_queued = true;
}

/* PING: echo the nonce. */
static void
conn_handle_ping(struct conn *c, uint64_t nonce)
{
	struct ph_msg m;

	conn_req_begin(c, PH_PING);
	memset(&m, 0, sizeof(m));
	m.type = PH_PONG;
	m.u.ping_nonce = nonce;
	if (conn_put(c, &m))
		c->req.final_queued = true;
}

/* ---- Input --------------------------------------------------------------- */

/* True if a frame of this type may arrive in the connection's state. */
static bool
conn_type_ok(const struct conn *c, uint8_t type)
{
	if (c->state == CONN_HELLO)
		return type == PH_HELLO;
	return type == PH_GET || type == PH_STAT || type == PH_LIST ||
	    type == PH_PING;
}

/*
 * Handles the frame at the front of the input buffer, if it is complete.
 * Returns true when something was done (a request or an error), false
 * when more bytes are needed.
 */
static bool
conn_process_one(struct conn *c)
{
	struct ph_framer f;
	struct ph_header h;
	struct ph_msg m;
	uint8_t *payload;
	int r;

	if (c->closing || c->close_after) {
		c->rlen = 0;
		return false;
	}
	ph_framer_init(&f, c->rbuf, CONN_RBUF);
	ph_framer_commit(&f, c->rlen);
	if ((r = ph_framer_header(&f, &h)) == -EAGAIN)
		return false;
	/* A request right behind HELLO waits until HELLO's reply has left. */
	if (c->req.active && c->req.op == PH_HELLO && c->req.final_queued)
		return false;
	if (c->req.active) {
		conn_fail(c, r == 0 ? h.type : 0, PH_ERR_PROTOCOL,
		    "a request is already in flight");
		return true;
	}
	if (r == -EPROTONOSUPPORT && c->state == CONN_HELLO) {
		conn_fail(c, PH_HELLO, PH_ERR_VERSION, "frame version %u is "
		    "not supported (server speaks %d)", h.version,
		    PH_PROTO_VERSION);
		return true;
	}
	if (r < 0) {
		conn_fail(c, h.type, PH_ERR_PROTOCOL,
		    "bad frame header: %s", strerror(-r));
		return true;
	}
	if (!conn_type_ok(c, h.type)) {
		conn_fail(c, h.type, PH_ERR_PROTOCOL, "%s is not valid %s",
		    ph_message_type_name(h.type), c->state == CONN_HELLO ?
		    "before HELLO" : "here");
		return true;
	}
	if ((r = ph_framer_next(&f, &h, &payload)) == -ENOBUFS) {
		conn_fail(c, h.type, PH_ERR_PROTOCOL, "frame too large");
		return true;
	}
	if (r == 0)
		return false;
	r = ph_message_decode(h.type, payload, h.length, &m);
	if (r < 0) {
		conn_fail(c, h.type, PH_ERR_PROTOCOL, "malformed %s: %s",
		    ph_message_type_name(h.type), strerror(-r));
		return true;
	}
	/* Requests decode to copies, so the frame can go before handling. */
	c->rlen = ph_framer_compact(&f);
	/* A connection waiting in the queue keeps no input buffer. */
	if (c->rlen == 0) {
		free(c->rbuf);
		c->rbuf = NULL;
	}
	c->nreq++;
	if (h.type != PH_HELLO)
		c->served = true;
	/*
	 * Bytes behind a request were sent before its reply existed: the
	 * peer pipelines, which the protocol forbids. (A request right
	 * behind HELLO is tolerated.)
	 */
	if (c->rlen > 0 && h.type != PH_HELLO) {
		conn_fail(c, h.type, PH_ERR_PROTOCOL,
		    "a request is already in flight");
		return true;
	}
	if (server_stopping(c->srv)) {
		conn_fail(c, h.type, PH_ERR_SHUTDOWN, "the daemon is stopping");
		return true;
	}
	switch (h.type) {
	case PH_HELLO:
		conn_handle_hello(c, &m.u.hello);
		break;
	case PH_GET:
		conn_handle_get(c, &m.u.get);
		break;
	case PH_STAT:
		conn_handle_stat(c, &m.u.stat);
		break;
	case PH_LIST:
		conn_handle_list(c, &m.u.list);
		break;
	case PH_PING:
		conn_handle_ping(c, m.u.ping_nonce);
		break;
	default:
		abort();	/* conn_type_ok() let it through */
	}
	return true;
}

/*
 * The peer finished sending. It may still read: answer the request in
 * flight, then close.
 */
static void
conn_peer_done(struct conn *c)
{
	c->peer_eof = true;
	if (!c->req.active || c->rlen > 0 || c->close_after)
		conn_close(c, "peer closed the connection");
}

/*
 * Reads what the socket has, up to the room in the input buffer. Returns
 * the bytes read, 0 when there were none (or the connection is closing).
 */
static ssize_t
conn_read(struct conn *c)
{
	uint8_t scratch[4096];
	uint8_t *dst;
	size_t room;
	ssize_t n;

	/* A connection on its way out only drains what the peer sends. */
	if (c->close_after) {
		dst = scratch;
		room = sizeof(scratch);
	} else {
		if (c->rbuf == NULL && (c->rbuf = malloc(CONN_RBUF)) == NULL) {
			conn_close(c, "out of memory");
			return 0;
		}
		dst = c->rbuf + c->rlen;
		room = CONN_RBUF - c->rlen;
	}
	if (room == 0)
		return 0;
	n = recv(c->fd, dst, room, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			conn_close(c, strerror(errno));
		return 0;
	}
	if (n == 0) {
		conn_peer_done(c);
		return 0;
	}
	if (!c->close_after) {
		if (c->rlen == 0)
			c->frame_ms = uv_now(server_loop(c->srv));
		c->rlen += (size_t)n;
	}
	return n;
}

/* ---- Output -------------------------------------------------------------- */

/*
 * Sends what is queued, feeding the transfer frame by frame, within this
 * wakeup's budget. Ends requests whose last frame has gone out.
 */
static void
conn_flush(struct conn *c)
{
	size_t budget = CONN_BUDGET, before;
	bool waited = c->want_write;
	struct ph_msg m;
	int r;

	c->want_write = false;
	while (!c->closing) {
		before = budget;
		/* A port pulls output itself: it is told there is some. */
		if (c->pops != NULL)
			r = wbuf_empty(c->wb) ? 0 : -EAGAIN;
		else
			r = wbuf_flush(c->wb, c->fd, &budget);
		if (budget != before)
			c->progress_ms = uv_now(server_loop(c->srv));
		if (r == -EAGAIN || r == 1) {
			/*
			 * The stall clock counts from the last byte the peer
			 * took, or from when output began to wait: never
			 * from a grant, a slice or a frame.
			 */
			if (!waited)
				c->progress_ms = uv_now(server_loop(c->srv));
			c->want_write = true;
			return;
		}
		if (r < 0) {
			conn_close(c, strerror(-r));
			return;
		}
		/* Everything queued has been sent: a frame boundary. */
		if (c->req.active && c->req.final_queued) {
			conn_req_end(c);
			continue;
		}
		if (c->abort_pending) {
			conn_send_abort(c);
			continue;
		}
		/* Waiting for a slot: the client hears its place in line. */
		if (c->req.active && c->req.position_due &&
		    c->req.xfer == NULL) {
			c->req.position_due = false;
			memset(&m, 0, sizeof(m));
			m.type = PH_QUEUED;
			m.u.queued_position = c->req.position;
			if (!conn_put(c, &m))
				return;
			continue;
		}
		if (c->req.xfer != NULL && c->req.ticket != NULL &&
		    !queue_active(c->req.ticket)) {
			/* Paused between slices. */
			if (!c->req.trickle) {
				wbuf_trim(c->wb);
				return;
			}
			c->req.trickle = false;
		} else if (c->req.xfer != NULL && c->req.ticket != NULL &&
		    queue_slice_over(c->req.ticket,
		    transfer_bytes(c->req.xfer) - c->req.slice_base)) {
			conn_slice_yield(c, "at a frame boundary");
			return;
		}
		if (c->req.xfer != NULL) {
			r = transfer_fill(c->req.xfer, c->wb);
			if (r == 2) {
				/* Waiting for a fill: its watcher kicks us. */
				wbuf_trim(c->wb);
				return;
			}
			if (r < 0) {
				conn_fail(c, PH_GET, PH_ERR_INTERNAL,
				    "out of memory");
				continue;
			}
			c->req.bytes = transfer_bytes(c->req.xfer);
			if (r == 0) {
				c->req.result = transfer_result(c->req.xfer);
				if (transfer_zstd_frames(c->req.xfer) > 0)
					log_debug(c->log, "peer=%s %s: %" PRIu64
					    " zstd frames", c->peer,
					    c->req.path, transfer_zstd_frames(
					    c->req.xfer));
				transfer_free(c->req.xfer);
				c->req.xfer = NULL;
				c->req.final_queued = true;
			}
			continue;
		}
		if (c->close_after && !c->req.active) {
			conn_close(c, "done");
			return;
		}
		if ((c->draining || c->peer_eof) && !c->req.active) {
			conn_close(c, c->peer_eof ?
			    "peer closed the connection" : "shutting down");
			return;
		}
		/* Waiting costs little: no output buffer either. */
		if (c->req.active && c->req.xfer == NULL)
			wbuf_trim(c->wb);
		return;
	}
}

static void	conn_on_timer(uv_timer_t *t);

/* The timer's job in the connection's current state. */
static enum conn_tmode
conn_want_tmode(const struct conn *c)
{
	/* Bytes of a frame do not make a request: only a whole frame does. */
	if (!c->req.active)
		return c->served && c->rlen == 0 ? CONN_TM_IDLE :
		    CONN_TM_REQUEST;
	if (c->req.op != PH_GET)
		return CONN_TM_NONE;
	if (c->req.sreq != NULL || (c->req.ticket != NULL &&
	    !queue_active(c->req.ticket)))
		return CONN_TM_KEEPALIVE;
	if (c->req.ticket != NULL)
		return CONN_TM_SLOT;
	return CONN_TM_NONE;
}

/* Points the timer at the current state's job, if that changed. */
static void
conn_arm_timer(struct conn *c)
{
	const struct server_config *cfg = server_config(c->srv);
	enum conn_tmode want;
	uint64_t now, due;

	if (c->closing || c->close_after || c->tmode == CONN_TM_LINGER)
		return;
	want = conn_want_tmode(c);
	/* A request answered at once, idle again: the clock restarts. */
	if (want == c->tmode && c->nreq == c->tm_nreq)
		return;
	c->tmode = want;
	c->tm_nreq = c->nreq;
	c->tm_again = false;
	switch (want) {
	case CONN_TM_NONE:
		uv_timer_stop(&c->timer);
		break;
	case CONN_TM_REQUEST:
		/*
		 * HELLO from the accept on, the first request from the
		 * HELLO_ACK on (the client waits for it), a later request
		 * from its first byte.
		 */
		now = uv_now(server_loop(c->srv));
		due = (c->served ? c->frame_ms : c->state == CONN_READY ?
		    c->ack_ms : c->connect_ms) + cfg->request_timeout_ms;
		uv_timer_start(&c->timer, conn_on_timer, due > now ? due - now :
		    0, 0);
		break;
	case CONN_TM_IDLE:
		uv_timer_start(&c->timer, conn_on_timer,
		    cfg->idle_timeout_ms, 0);
		break;
	case CONN_TM_KEEPALIVE:
		uv_timer_start(&c->timer, conn_on_keepalive, CONN_KEEPALIVE_MS,
		    CONN_KEEPALIVE_MS);
		break;
	case CONN_TM_SLOT:
		uv_timer_start(&c->timer, conn_on_timer, CONN_STALL_TICK_MS,
		    CONN_STALL_TICK_MS);
		break;
	case CONN_TM_LINGER:
		break;
	}
}

/*
 * Watches for input always and for output while some is waiting; a port
 * is woken instead (not while it is pulling: it sees for itself).
 */
static void
conn_update_poll(struct conn *c)
{
	int events = 0, err;

	if (c->closing)
		return;
	conn_arm_timer(c);
	if (c->pops != NULL) {
		if (c->port != NULL && ((c->want_write && !c->pulling) ||
		    (c->input_blocked && c->rlen < CONN_RBUF))) {
			c->input_blocked = false;
			c->pops->wake(c->port);
		}
		return;
	}
	if (!c->peer_eof)
		events |= UV_READABLE;
	if (c->want_write)
		events |= UV_WRITABLE;
	if (events == c->poll_events)
		return;
	if (events == 0)
		err = uv_poll_stop(&c->poll);
	else
		err = uv_poll_start(&c->poll, events, conn_on_poll);
	if (err < 0) {
		conn_close(c, uv_strerror(err));
		return;
	}
	c->poll_events = events;
}

/* Makes all the progress possible now: output, then queued input. */
static void
conn_kick(struct conn *c)
{
	while (!c->closing) {
		conn_flush(c);
		if (c->closing || !conn_process_one(c))
			break;
	}
	conn_update_poll(c);
}

/* The socket is ready: read, then make what progress we can. */
static void
conn_on_poll(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;

	if (status < 0) {
		conn_close(c, uv_strerror(status));
		return;
	}
	if (events & UV_READABLE)
		conn_read(c);
	if (!c->closing)
		conn_kick(c);
}

/*
 * A deadline passed: first takes in what the peer sent, because a late
 * loop runs its due timers before it polls. A socket is read at once; a
 * port's input comes through its device, so the port's connection gets
 * one more turn of the loop. Returns true when the deadline no longer
 * applies: a whole request arrived, or the connection is going.
 */
static bool
conn_catch_up(struct conn *c)
{
	enum conn_tmode was = c->tmode;
	uint64_t nreq = c->nreq;

	if (c->fd >= 0)
		while (!c->closing && conn_read(c) > 0)
			;
	if (!c->closing)
		conn_kick(c);
	if (c->closing || c->close_after || c->nreq != nreq ||
	    c->tmode != was)
		return true;
	if (c->pops != NULL && !c->tm_again) {
		c->tm_again = true;
		uv_timer_start(&c->timer, conn_on_timer, CONN_AGAIN_MS, 0);
		return true;
	}
	return false;
}

/*
 * True while the client has not read all we sent, the HELLO_ACK it waits
 * for before its first request: it has not had a turn since, so the
 * request deadline waits, as long as for a stalled reader.
 */
static bool
conn_ack_unread(const struct conn *c, uint64_t now)
{
	const struct server_config *cfg = server_config(c->srv);
	int queued = 0;

	if (c->fd < 0 || c->served || c->state != CONN_READY ||
	    now - c->ack_ms >= cfg->stall_timeout_ms)
		return false;
	return ioctl(c->fd, TIOCOUTQ, &queued) == 0 && queued > 0;
}

/*
 * Request and idle deadlines, and the check that a peer holding a slot
 * still reads: one that stopped loses the slot and its connection.
 */
static void
conn_on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct server_config *cfg = server_config(c->srv);
	uint64_t now = uv_now(server_loop(c->srv));

	switch (c->tmode) {
	case CONN_TM_REQUEST:
		if (conn_catch_up(c))
			break;
		if (conn_ack_unread(c, now)) {
			uv_timer_start(&c->timer, conn_on_timer,
			    CONN_STALL_TICK_MS, 0);
			break;
		}
		if (c->served) {
			log_info(c->log, "peer=%s request still incomplete %"
			    PRIu64 " ms after its first byte: closing",
			    c->peer, cfg->request_timeout_ms);
			conn_fail(c, c->rlen > 3 ? c->rbuf[3] : 0,
			    PH_ERR_TIMEOUT, "request incomplete after %"
			    PRIu64 " ms", cfg->request_timeout_ms);
		} else {
			log_info(c->log, "peer=%s no request within %" PRIu64
			    " ms of %s: closing", c->peer,
			    cfg->request_timeout_ms, c->state == CONN_HELLO ?
			    "connecting" : "the HELLO_ACK");
			conn_fail(c, c->state == CONN_HELLO ? PH_HELLO : 0,
			    PH_ERR_TIMEOUT, "no request within %" PRIu64 " ms",
			    cfg->request_timeout_ms);
		}
		conn_kick(c);
		break;
	case CONN_TM_IDLE:
		if (!conn_catch_up(c))
			conn_close(c, "idle timeout");
		break;
	case CONN_TM_SLOT:
		/*
		 * A socket reports room only once much of its buffer has
		 * drained: ask it, so that a peer that reads slowly shows
		 * its progress.
		 */
		if (c->want_write && c->pops == NULL) {
			conn_kick(c);
			if (c->closing || c->tmode != CONN_TM_SLOT)
				break;
		}
		if (!c->want_write || now - c->progress_ms <
		    cfg->stall_timeout_ms)
			break;
		log_warn(c->log, "peer=%s %s: stopped reading for %" PRIu64
		    " ms while holding a transfer slot: dropping the "
		    "connection", c->peer, c->req.path, now - c->progress_ms);
		c->lost_as = "TIMEOUT";
		conn_close(c, "stalled");
		break;
	default:
		break;
	}
}

/* A closing connection whose peer stopped reading is dropped. */
static void
conn_on_linger(uv_timer_t *t)
{
	struct conn *c = t->data;

	conn_close(c, "the peer did not take the final frames in time");
}

/* ---- Lifetime ------------------------------------------------------------ */

/* Frees the connection once its handles have closed. */
static void
conn_on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->open_handles > 0)
		return;
	if (c->fd >= 0)
		close(c->fd);
	TAILQ_REMOVE(c->list, c, link);
	server_conn_gone(c->srv, c);
	free(c->rbuf);
	wbuf_free(c->wb);
	ZSTD_freeCCtx(c->cctx);
	ZSTD_freeDCtx(c->dctx);
	free(c);
}

/* Starts closing: drops the request in flight and both handles. */
static void
conn_close(struct conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	/*
	 * A request cut short is logged with the reason we ended it (the
	 * ERROR that could not be sent), else as lost with its peer.
	 */
	if (c->req.active && c->abort_pending)
		conn_req_log(c, ph_err_name(c->abort_code));
	else if (c->req.active)
		conn_req_log(c, c->req.final_queued ?
		    ph_err_name(c->req.result) : c->lost_as != NULL ?
		    c->lost_as : "DISCONNECTED");
	log_debug(c->log, "peer=%s closed: %s", c->peer, why);
	conn_req_release(c);
	c->req.active = false;
	if (c->port != NULL) {
		void *port = c->port;

		c->port = NULL;
		c->pops->closed(port);
	}
	if (c->polled)
		uv_close((uv_handle_t *)&c->poll, conn_on_closed);
	uv_close((uv_handle_t *)&c->timer, conn_on_closed);
}

/* A connection in its first state, on no transport yet; NULL: no memory. */
static struct conn *
conn_alloc(struct server *srv, struct conn_list *list, const char *peer,
    bool trust_declared)
{
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (wbuf_new(&c->wb) < 0) {
		free(c);
		return NULL;
	}
	c->srv = srv;
	c->list = list;
	c->log = server_log(srv);
	c->fd = -1;
	store_src_init(&c->req.src);
	c->state = CONN_HELLO;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->qpeer, sizeof(c->qpeer), "%s", peer);
	c->cid = conn_peer_cid(peer);
	c->peer_base = strlen(c->peer);
	conn_identify(c);
	c->trust_declared = trust_declared;
	c->connect_ms = uv_now(server_loop(srv));
	/* uv_timer_init() cannot fail once the loop exists. */
	uv_timer_init(server_loop(srv), &c->timer);
	c->timer.data = c;
	c->open_handles = 1;
	return c;
}

/* ---- Connection accounting --------------------------------------------- */

/* Made a request and has none in flight nor half read: safe to close. */
static bool
conn_is_idle(const struct conn *c)
{
	return !c->closing && !c->close_after && c->served &&
	    !c->req.active && c->rlen == 0 && wbuf_empty(c->wb);
}

/* Closes the oldest idle connection of like's peer, or of any peer. */
bool
conn_shed_idle(struct conn_list *list, const struct conn *like)
{
	struct conn *c;

	TAILQ_FOREACH(c, list, link) {
		if (c == like || !conn_is_idle(c) || (like != NULL &&
		    strcmp(c->qpeer, like->qpeer) != 0))
			continue;
		log_info(c->log, "peer=%s closing an idle connection: %s",
		    c->peer, like != NULL ? "the client opened one more than "
		    "its limit" : "the daemon is short of descriptors");
		conn_close(c, "idle, making room");
		return true;
	}
	return false;
}

/*
 * Holds c's peer, now that c's identity is known, to its number of open
 * connections: its oldest idle ones make room for c; if none is idle, c
 * gets ERROR BUSY once its HELLO arrives.
 */
static void
conn_limit_peer(struct conn *c)
{
	uint32_t max = server_config(c->srv)->max_conns_per_peer;
	struct conn *o;
	size_t n = 0;

	if (max == 0 || c->closing || c->close_after)
		return;
	TAILQ_FOREACH(o, c->list, link)
		if (!o->closing && !o->close_after &&
		    strcmp(o->qpeer, c->qpeer) == 0)
			n++;
	while (n > max && conn_shed_idle(c->list, c))
		n--;
	if (n <= max)
		return;
	log_info(c->log, "peer=%s has %zu connections open, none idle "
	    "(limit %" PRIu32 "): refusing one", c->peer, n - 1, max);
	conn_fail(c, PH_HELLO, PH_ERR_BUSY, "too many connections from this "
	    "client (limit %" PRIu32 "): try again later", max);
}

/* Links a set-up connection into the table and starts its clock. */
static void
conn_link(struct conn *c)
{
	TAILQ_INSERT_TAIL(c->list, c, link);
	log_debug(c->log, "peer=%s connected", c->peer);
	conn_arm_timer(c);
}

/* Sets up a connection and starts watching its socket for HELLO. */
int
conn_new(struct server *srv, struct conn_list *list, int fd,
    const char *peer, bool trust_declared)
{
	struct conn *c;
	int err;

	if ((c = conn_alloc(srv, list, peer, trust_declared)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	if ((err = uv_poll_init_socket(server_loop(srv), &c->poll, fd)) < 0) {
		/* Only the timer is open: closing it frees the rest. */
		TAILQ_INSERT_TAIL(list, c, link);
		conn_close(c, uv_strerror(err));
		return err;
	}
	c->poll.data = c;
	c->polled = true;
	c->open_handles = 2;
	conn_link(c);
	if ((err = uv_poll_start(&c->poll, UV_READABLE, conn_on_poll)) < 0) {
		conn_close(c, uv_strerror(err));
		return err;
	}
	c->poll_events = UV_READABLE;
	conn_limit_peer(c);
	return 0;
}

int
conn_new_port(struct server *srv, struct conn_list *list, const char *peer,
    const struct conn_port_ops *ops, void *port, struct conn **out)
{
	struct conn *c;

	*out = NULL;
	if ((c = conn_alloc(srv, list, peer, false)) == NULL)
		return -ENOMEM;
	c->pops = ops;
	c->port = port;
	conn_link(c);
	conn_limit_peer(c);
	*out = c;
	return 0;
}

/* Input from the port: what fits in the input buffer, then progress. */
ssize_t
conn_port_write(struct conn *c, const struct iovec *iov, size_t niov,
    size_t len)
{
	size_t n;

	if (c->closing)
		return -EPIPE;
	/* A connection on its way out only drains what the peer sends. */
	if (c->close_after)
		return (ssize_t)len;
	if (c->rbuf == NULL && (c->rbuf = malloc(CONN_RBUF)) == NULL) {
		conn_close(c, "out of memory");
		return -ENOMEM;
	}
	n = ph_io_iov_read(iov, niov, 0, c->rbuf + c->rlen,
	    CONN_RBUF - c->rlen);
	if (c->rlen == 0 && n > 0)
		c->frame_ms = uv_now(server_loop(c->srv));
	c->rlen += n;
	if (n < len)
		c->input_blocked = true;
	conn_kick(c);
	return (ssize_t)n;
}

/*
 * Output for the port: queued bytes copied (file data read straight into
 * its buffers), the connection going on at each frame boundary, until
 * len bytes are there or nothing more can be sent now.
 */
ssize_t
conn_port_read(struct conn *c, const struct iovec *iov, size_t niov,
    size_t len)
{
	size_t got = 0;

	if (c->closing)
		return 0;
	c->pulling = true;
	for (;;) {
		got += wbuf_copy_out(c->wb, iov, niov, got, len - got);
		if (got == len || !wbuf_empty(c->wb))
			break;
		/* A frame boundary: the next frame, or the next request. */
		conn_kick(c);
		if (c->closing || wbuf_empty(c->wb))
			break;
	}
	c->pulling = false;
	if (got > 0)
		c->progress_ms = uv_now(server_loop(c->srv));
	if (!c->closing && wbuf_empty(c->wb))
		c->want_write = false;
	if (got == 0)
		return c->closing ? 0 : -EAGAIN;
	return (ssize_t)got;
}

void
conn_port_eof(struct conn *c)
{
	if (c->closing)
		return;
	conn_peer_done(c);
	if (!c->closing)
		conn_kick(c);
}

void
conn_port_gone(struct conn *c)
{
	c->port = NULL;
	conn_close(c, "the peer reset the connection");
}

/* Shutdown step one: idle connections go now, busy ones later. */
void
conn_stop(struct conn *c)
{
	c->draining = true;
	if (!c->req.active && wbuf_empty(c->wb))
		conn_close(c, "shutting down");
}

/* Shutdown step two: ERROR SHUTDOWN at the next frame boundary. */
void
conn_abort(struct conn *c)
{
	if (c->closing)
		return;
	if (!c->req.active && !c->abort_pending) {
		conn_close(c, "shutting down");
		return;
	}
	conn_fail(c, c->req.op, PH_ERR_SHUTDOWN, "the daemon is stopping");
	conn_kick(c);
}

void
conn_kill(struct conn *c)
{
	conn_close(c, "shutting down: the peer did not finish in time");
}

void
conn_xfer_info(const struct conn *c, struct conn_xfer_info *out)
{
	memset(out, 0, sizeof(*out));
	out->peer = c->peer;
	out->vm = c->has_vm ? c->vm.name : NULL;
	out->path = c->req.active ? c->req.path : "-";
	out->size = c->req.active ? (uint64_t)c->req.src.st.st_size : 0;
	out->offset = c->req.offset;
	out->bytes = c->req.xfer != NULL ? transfer_bytes(c->req.xfer) : 0;
	if (c->req.stream_ns != 0)
		out->stream_ms = (uv_hrtime() - c->req.stream_ns) / 1000000;
}
