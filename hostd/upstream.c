/*
 * upstream.c: a relay's one connection to its parent daemon.
 *
 * The client is in one of four states. DOWN: the last attempt failed and
 * the retry timer backs off (100 ms doubling to 5 s); new requests are
 * refused with -EHOSTDOWN, so a relay says "upstream unavailable" at once
 * instead of making its clients wait. CONNECTING and HELLO: a connect and
 * then the handshake are under way; requests wait. READY: requests leave a
 * FIFO one at a time and every reply frame is checked against the request
 * it answers. A frame that breaks the protocol resets the connection; bytes
 * that do not match their digest only fail their request.
 *
 * Each connection starts with a PING. Once anything is answered the
 * connection is "healthy": when it drops, the client reconnects at once and
 * requests that were still waiting keep their place. One that never
 * answered counts as a failed attempt and backs off, so a parent that
 * accepts and then misbehaves cannot make us spin.
 *
 * DATA frames are handed on as their bytes arrive rather than once whole, so
 * each relay level adds a read's worth of latency, not a frame's.
 *
 * I/O is uv_poll on a non-blocking socket. Calls that start a request never
 * run a callback: they queue and start the kick timer, which answers from
 * the STAT/LIST memo or sends the next request from the loop.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <linux/vm_sockets.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <uv.h>
#include <zstd.h>

#include "config.h"
#include "log.h"
#include "proto.h"
#include "upstream.h"

#define UP_BACKOFF_MIN_MS	100
#define UP_BACKOFF_MAX_MS	5000
/* Connect and HELLO together, at most (and never more than the stall). */
#define UP_CONNECT_MS		5000
/* A unix listener with a full backlog refuses with EAGAIN: retry soon. */
#define UP_EAGAIN_MS		10
/* An idle connection pings this often: parents close silent ones. */
#define UP_KEEPALIVE_MS		30000
#define UP_DEF_TTL_MS		2000
#define UP_DEF_STALL_MS		30000
/* The input buffer holds one maximal frame. */
#define UP_RBUF			(PH_HDR_LEN + PH_MAX_PAYLOAD)
#define UP_WBUF			(PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD)
/* Reads per wakeup, so one fast parent cannot starve the guests. */
#define UP_READS_PER_WAKEUP	32
/* The memo's bounds: STAT entries are small, LIST pages up to ~70 KB. */
#define UP_MEMO_BUCKETS		1024
#define UP_MEMO_MAX		4096
#define UP_MEMO_MAX_BYTES	(16u * 1024 * 1024)
#define UP_WHY_LEN		256

enum upstream_state {
	UP_DOWN,	/* backing off; requests get -EHOSTDOWN */
	UP_CONNECTING,	/* connect() in progress, or due at once */
	UP_HELLO,	/* HELLO sent, HELLO_ACK awaited */
	UP_READY,
	UP_CLOSED,	/* upstream_free() ran */
};

/* Where a request is, so upstream_cancel() knows what to undo. */
enum req_where {
	REQ_WAITING,	/* in u->waiting */
	REQ_FLIGHT,	/* u->cur: sent, reply not finished */
	REQ_DONE,	/* in u->done: a memo answer due from the kick timer */
	REQ_ENDING,	/* its last callback is running */
};

/* One socket; freed in its poll handle's close callback. */
struct upstream_conn {
	uv_poll_t	 poll;
	struct upstream	*u;
	int		 fd;
	int		 events;	/* what the poll handle watches */
};

/* A remembered STAT or LIST answer. */
struct memo {
	TAILQ_ENTRY(memo) age;		/* u->memo_age, oldest first */
	struct memo	*chain;		/* hash bucket */
	uint64_t	 hash;
	uint64_t	 expires_ms;
	uint8_t		 op;		/* PH_STAT or PH_LIST */
	uint64_t	 cursor;
	struct ph_meta	 meta;		/* STAT */
	uint64_t	 next_cursor;	/* LIST */
	uint16_t	 count;
	uint32_t	 entries_len;
	uint8_t		*entries;
	struct upstream_paths *paths;	/* where they lead, a copy */
	size_t		 cost;
	char		 path[];
};

struct upstream_req {
	TAILQ_ENTRY(upstream_req) link;
	struct upstream	*u;
	enum req_where	 where;
	uint8_t		 op;		/* PH_GET, PH_STAT, PH_LIST, PH_PING */
	bool		 cancelled;	/* in flight, but nobody listens */
	char		 path[PH_MAX_PATH + 1];
	uint64_t	 arg64;		/* GET offset, LIST cursor, PING nonce */
	struct upstream_get_cbs gcbs;
	upstream_stat_cb *stat_cb;
	upstream_list_cb *list_cb;
	void		*arg;
	uint64_t	 memo_gen;	/* u->memo_gen when it was sent */
	/* A GET's progress. */
	bool		 reverify;	/* send PH_GET_REVERIFY */
	bool		 zstd;
	bool		 have_meta;
	struct ph_meta	 meta;
	uint64_t	 received;
	uint8_t		 digest[PH_SHA256_LEN];
	/* The parent's PATH frames, or a memo's copy of them. */
	struct upstream_paths paths;
	/* A memo answer waiting in u->done. */
	struct ph_meta	 rmeta;
	struct ph_list_reply rpage;
	uint8_t		*rentries;
};

TAILQ_HEAD(req_list, upstream_req);

struct upstream {
	uv_loop_t	*loop;
	struct log	*log;
	struct ph_endpoint ep;
	char		 endpoint[PH_MAX_PATH + 16];
	uint64_t	 ttl_ms;
	uint64_t	 stall_ms;
	bool		 hash;		/* hash GET bytes (not caller_hashes) */
	enum upstream_state state;
	struct upstream_conn *conn;
	uint64_t	 gen;		/* bumped whenever a connection ends */
	uv_timer_t	 retry;		/* the next connect attempt */
	uv_timer_t	 watch;		/* connect deadline, stall, keepalive */
	uv_timer_t	 kick;		/* memo answers and the next send */
	int		 open_handles;
	bool		 attempting;	/* an attempt's deadline is running */
	uint64_t	 delay_ms;	/* the next backoff */
	bool		 healthy;	/* this connection answered a request */
	int		 reported;	/* 1 up, -1 down, 0 nothing logged */
	char		 down_why[UP_WHY_LEN];
	uint32_t	 features;	/* negotiated */
	uint64_t	 nonce;
	struct req_list	 waiting;
	struct req_list	 done;
	struct upstream_req *cur;
	uint8_t		*rbuf;		/* UP_RBUF bytes, read by frames */
	struct ph_framer frames;
	uint8_t		 wbuf[UP_WBUF];
	size_t		 wlen;
	size_t		 woff;
	struct ph_msg	*in;		/* the decoded frame */
	struct ph_msg	*out;		/* the request being encoded */
	uint8_t		*chunk;		/* PH_DATA_CHUNK decoded bytes */
	ZSTD_DCtx	*dctx;
	EVP_MD_CTX	*md;
	struct memo	*buckets[UP_MEMO_BUCKETS];
	TAILQ_HEAD(, memo) memo_age;
	size_t		 memo_n;
	size_t		 memo_bytes;
	uint64_t	 memo_gen;	/* bumped by upstream_forget() */
};

static void	upstream_attempt_failed(struct upstream *u, int status,
		    const char *why);
static void	upstream_lost(struct upstream *u, int status, const char *why);
static void	upstream_pump(struct upstream *u);
static void	upstream_on_retry(uv_timer_t *t);
static void	upstream_on_watch(uv_timer_t *t);
static void	upstream_on_kick(uv_timer_t *t);
static void	upstream_on_poll(uv_poll_t *h, int status, int events);

/* ---- Small helpers ------------------------------------------------------- */

static void
upstream_err_set(struct upstream_error *e, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fills an error for a callback: a code and one line of text. */
static void
upstream_err_set(struct upstream_error *e, uint16_t code, const char *fmt, ...)
{
	va_list ap;

	memset(e, 0, sizeof(*e));
	e->code = code;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

/* The closest protocol code for a local status, for the error's code. */
static uint16_t
upstream_status_code(int status)
{
	switch (status) {
	case -EILSEQ:
		return PH_ERR_INTEGRITY;
	case -ETIMEDOUT:
		return PH_ERR_TIMEOUT;
	case -ECANCELED:
		return PH_ERR_SHUTDOWN;
	case -ENOMEM:
		return PH_ERR_INTERNAL;
	default:
		return PH_ERR_UNAVAILABLE;
	}
}

/* Frees the link targets of p and forgets everything it said. */
static void
upstream_paths_clear(struct upstream_paths *p)
{
	for (size_t i = 0; i < PH_MAX_LIST_ENTRIES; i++) {
		free(p->target[i]);
		p->target[i] = NULL;
	}
	p->known = false;
	p->told = false;
	p->real[0] = '\0';
}

/* A deep copy of src into dst (cleared); its bytes, or 0 without memory. */
static size_t
upstream_paths_copy(struct upstream_paths *dst,
    const struct upstream_paths *src)
{
	size_t cost = sizeof(*dst);

	upstream_paths_clear(dst);
	dst->known = src->known;
	dst->told = src->told;
	memcpy(dst->real, src->real, sizeof(dst->real));
	for (size_t i = 0; i < PH_MAX_LIST_ENTRIES; i++) {
		if (src->target[i] == NULL)
			continue;
		if ((dst->target[i] = strdup(src->target[i])) == NULL) {
			upstream_paths_clear(dst);
			return 0;
		}
		cost += strlen(src->target[i]) + 1;
	}
	return cost;
}

static void
upstream_req_free(struct upstream_req *r)
{
	if (r == NULL)
		return;
	upstream_paths_clear(&r->paths);
	free(r->rentries);
	free(r);
}

/*
 * Runs a request's failure callback and frees it. The request has left
 * every list before, so the callback may call anything here, even
 * upstream_free().
 */
static void
upstream_req_fail(struct upstream_req *r, int status,
    const struct upstream_error *e)
{
	r->where = REQ_ENDING;
	if (!r->cancelled) {
		switch (r->op) {
		case PH_GET:
			r->gcbs.on_end(r->arg, status, e, NULL);
			break;
		case PH_STAT:
			r->stat_cb(r->arg, status, e, NULL,
			    status == -EREMOTE ? &r->paths : NULL);
			break;
		case PH_LIST:
			r->list_cb(r->arg, status, e, NULL,
			    status == -EREMOTE ? &r->paths : NULL);
			break;
		default:
			break;		/* our own keepalive PING */
		}
	}
	upstream_req_free(r);
}

/* Fails every waiting request with status; new ones may join meanwhile. */
static void
upstream_fail_waiting(struct upstream *u, int status,
    const struct upstream_error *e)
{
	struct upstream_req *r;

	while ((r = TAILQ_FIRST(&u->waiting)) != NULL) {
		TAILQ_REMOVE(&u->waiting, r, link);
		upstream_req_fail(r, status, e);
	}
}

/* ---- The STAT/LIST memo -------------------------------------------------- */

/* FNV-1a over the key: operation, cursor and path. */
static uint64_t
upstream_memo_hash(uint8_t op, uint64_t cursor, const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int i;

	h = (h ^ op) * 0x100000001b3ull;
	for (i = 0; i < 8; i++)
		h = (h ^ ((cursor >> (i * 8)) & 0xff)) * 0x100000001b3ull;
	for (; *path != '\0'; path++)
		h = (h ^ (uint8_t)*path) * 0x100000001b3ull;
	return h;
}

static void
upstream_memo_remove(struct upstream *u, struct memo *m)
{
	struct memo **pp;

	for (pp = &u->buckets[m->hash % UP_MEMO_BUCKETS]; *pp != NULL;
	    pp = &(*pp)->chain) {
		if (*pp == m) {
			*pp = m->chain;
			break;
		}
	}
	TAILQ_REMOVE(&u->memo_age, m, age);
	u->memo_n--;
	u->memo_bytes -= m->cost;
	if (m->paths != NULL)
		upstream_paths_clear(m->paths);
	free(m->paths);
	free(m->entries);
	free(m);
}

static void
upstream_memo_clear(struct upstream *u)
{
	struct memo *m;

	while ((m = TAILQ_FIRST(&u->memo_age)) != NULL)
		upstream_memo_remove(u, m);
}

/* A fresh entry for the key, or NULL; an expired one is dropped. */
static struct memo *
upstream_memo_find(struct upstream *u, uint8_t op, uint64_t cursor,
    const char *path)
{
	uint64_t h = upstream_memo_hash(op, cursor, path);
	struct memo *m;

	for (m = u->buckets[h % UP_MEMO_BUCKETS]; m != NULL; m = m->chain) {
		if (m->hash != h || m->op != op || m->cursor != cursor ||
		    strcmp(m->path, path) != 0)
			continue;
		if (m->expires_ms <= uv_now(u->loop)) {
			upstream_memo_remove(u, m);
			return NULL;
		}
		return m;
	}
	return NULL;
}

/*
 * Remembers an answer for the TTL. The LIST page is copied: the reply's
 * entries point into the input buffer. Failure to remember is not an
 * error; the next request just asks again.
 */
static void
upstream_memo_put(struct upstream *u, uint8_t op, uint64_t cursor,
    const char *path, const struct ph_meta *meta,
    const struct ph_list_reply *page, const struct upstream_paths *paths)
{
	size_t plen = strlen(path), cost, pcost;
	struct upstream_paths *pc;
	struct memo *m, *old;
	uint64_t now = uv_now(u->loop);

	/* What the paths say is part of the answer: no copy, no memo. */
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return;
	if ((pcost = upstream_paths_copy(pc, paths)) == 0) {
		free(pc);
		return;
	}

	if ((old = upstream_memo_find(u, op, cursor, path)) != NULL)
		upstream_memo_remove(u, old);
	cost = sizeof(*m) + plen + 1 + (page != NULL ? page->entries_len : 0) +
	    pcost;
	/* Entries share one TTL, so the oldest is also the first to expire. */
	while ((old = TAILQ_FIRST(&u->memo_age)) != NULL &&
	    (old->expires_ms <= now || u->memo_n >= UP_MEMO_MAX ||
	    u->memo_bytes + cost > UP_MEMO_MAX_BYTES))
		upstream_memo_remove(u, old);
	if (cost > UP_MEMO_MAX_BYTES || (m = calloc(1, sizeof(*m) + plen +
	    1)) == NULL) {
		upstream_paths_clear(pc);
		free(pc);
		return;
	}
	m->paths = pc;
	if (page != NULL && page->entries_len > 0) {
		if ((m->entries = malloc(page->entries_len)) == NULL) {
			upstream_paths_clear(pc);
			free(pc);
			free(m);
			return;
		}
		memcpy(m->entries, page->entries, page->entries_len);
	}
	if (page != NULL) {
		m->next_cursor = page->next_cursor;
		m->count = page->count;
		m->entries_len = page->entries_len;
	}
	if (meta != NULL)
		m->meta = *meta;
	memcpy(m->path, path, plen + 1);
	m->op = op;
	m->cursor = cursor;
	m->cost = cost;
	m->hash = upstream_memo_hash(op, cursor, path);
	m->expires_ms = now + u->ttl_ms;
	m->chain = u->buckets[m->hash % UP_MEMO_BUCKETS];
	u->buckets[m->hash % UP_MEMO_BUCKETS] = m;
	TAILQ_INSERT_TAIL(&u->memo_age, m, age);
	u->memo_n++;
	u->memo_bytes += cost;
}

/*
 * Copies a fresh memo answer into r (which then owns its copy: a callback
 * may forget the memo). False when there is none.
 */
static bool
upstream_memo_answer(struct upstream *u, struct upstream_req *r)
{
	struct memo *m;

	if ((m = upstream_memo_find(u, r->op, r->op == PH_LIST ? r->arg64 : 0,
	    r->path)) == NULL)
		return false;
	if (upstream_paths_copy(&r->paths, m->paths) == 0)
		return false;
	if (r->op == PH_STAT) {
		r->rmeta = m->meta;
		return true;
	}
	if (m->entries_len > 0) {
		if ((r->rentries = malloc(m->entries_len)) == NULL)
			return false;
		memcpy(r->rentries, m->entries, m->entries_len);
	}
	r->rpage.next_cursor = m->next_cursor;
	r->rpage.count = m->count;
	r->rpage.entries = r->rentries;
	r->rpage.entries_len = m->entries_len;
	return true;
}

/* Delivers a memo answer held by r and frees r. */
static void
upstream_req_answer(struct upstream_req *r)
{
	r->where = REQ_ENDING;
	if (r->op == PH_STAT)
		r->stat_cb(r->arg, 0, NULL, &r->rmeta, &r->paths);
	else
		r->list_cb(r->arg, 0, NULL, &r->rpage, &r->paths);
	upstream_req_free(r);
}

/* ---- Logging state changes ----------------------------------------------- */

static void
upstream_report_up(struct upstream *u, const char *agent)
{
	char esc[128];

	if (u->reported == 1 || u->log == NULL) {
		u->reported = 1;
		return;
	}
	u->reported = 1;
	log_info(u->log, "upstream %s: connected (%s)", u->endpoint,
	    ph_util_escape(agent, strlen(agent), false, esc, sizeof(esc)));
}

static void
upstream_report_down(struct upstream *u)
{
	if (u->reported == -1 || u->log == NULL) {
		u->reported = -1;
		return;
	}
	u->reported = -1;
	log_info(u->log, "upstream %s: unavailable: %s (retrying in the "
	    "background)", u->endpoint, u->down_why);
}

/* ---- The socket ------------------------------------------------------------ */

/* A handle has closed; the last one after upstream_free() frees u. */
static void
upstream_handle_gone(struct upstream *u)
{
	if (--u->open_handles > 0 || u->state != UP_CLOSED)
		return;
	free(u->rbuf);
	free(u->in);
	free(u->out);
	free(u->chunk);
	ZSTD_freeDCtx(u->dctx);
	EVP_MD_CTX_free(u->md);
	free(u);
}

/* The poll handle is closed: now the fd may go. */
static void
upstream_conn_on_closed(uv_handle_t *h)
{
	struct upstream_conn *c = h->data;
	struct upstream *u = c->u;

	close(c->fd);
	free(c);
	upstream_handle_gone(u);
}

/* Ends the current socket, if any; its buffers are forgotten. */
static void
upstream_conn_close(struct upstream *u)
{
	struct upstream_conn *c = u->conn;

	u->gen++;
	ph_framer_reset(&u->frames);
	u->wlen = u->woff = 0;
	if (c == NULL)
		return;
	u->conn = NULL;
	uv_poll_stop(&c->poll);
	uv_close((uv_handle_t *)&c->poll, upstream_conn_on_closed);
}

/* Takes fd into a poll handle. Closes fd on failure. */
static int
upstream_conn_open(struct upstream *u, int fd)
{
	struct upstream_conn *c;
	int err;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	if ((err = uv_poll_init_socket(u->loop, &c->poll, fd)) < 0) {
		close(fd);
		free(c);
		return err;
	}
	c->poll.data = c;
	c->u = u;
	c->fd = fd;
	u->open_handles++;
	u->conn = c;
	ph_framer_reset(&u->frames);
	u->wlen = u->woff = 0;
	u->healthy = false;
	return 0;
}

/* Watches what the state needs: the connect, input, pending output. */
static void
upstream_conn_update(struct upstream *u)
{
	struct upstream_conn *c = u->conn;
	int ev = 0, err;

	if (c == NULL)
		return;
	if (u->state == UP_CONNECTING)
		ev = UV_WRITABLE;
	else {
		ev = UV_READABLE;
		if (u->woff < u->wlen)
			ev |= UV_WRITABLE;
	}
	if (ev == c->events)
		return;
	if ((err = uv_poll_start(&c->poll, ev, upstream_on_poll)) < 0) {
		if (u->state == UP_READY)
			upstream_lost(u, -ECONNRESET, uv_strerror(err));
		else
			upstream_attempt_failed(u, -EHOSTDOWN,
			    uv_strerror(err));
		return;
	}
	c->events = ev;
}

/* Writes what is pending; a full socket waits for UV_WRITABLE. */
static void
upstream_conn_flush(struct upstream *u)
{
	char why[UP_WHY_LEN];
	ssize_t n;

	while (u->conn != NULL && u->woff < u->wlen) {
		n = send(u->conn->fd, u->wbuf + u->woff, u->wlen - u->woff,
		    MSG_NOSIGNAL);
		if (n >= 0) {
			u->woff += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		snprintf(why, sizeof(why), "send: %s", strerror(errno));
		if (u->state == UP_READY)
			upstream_lost(u, -ECONNRESET, why);
		else
			upstream_attempt_failed(u, -EHOSTDOWN, why);
		return;
	}
	upstream_conn_update(u);
}

/* Encodes u->out and sends it. */
static void
upstream_conn_send(struct upstream *u)
{
	ssize_t n;

	if ((n = ph_message_encode(u->out, u->wbuf, sizeof(u->wbuf))) < 0)
		abort();	/* our own request does not encode */
	u->wlen = (size_t)n;
	u->woff = 0;
	upstream_conn_flush(u);
}

/* ---- Connecting -------------------------------------------------------------- */

static void
upstream_send_hello(struct upstream *u)
{
	memset(u->out, 0, sizeof(*u->out));
	u->out->type = PH_HELLO;
	u->out->u.hello.min_version = PH_PROTO_MIN_VERSION;
	u->out->u.hello.max_version = PH_PROTO_VERSION;
	u->out->u.hello.features = PH_FEAT_ALL | PH_FEAT_REALPATH;
	snprintf(u->out->u.hello.agent, sizeof(u->out->u.hello.agent),
	    "portholed/%s relay", PORTHOLE_VERSION);
	u->state = UP_HELLO;
	upstream_conn_send(u);
}

/*
 * One connect(). The socket is non-blocking, so a vsock connect that takes
 * its time completes in upstream_on_poll(); the attempt's deadline is the watch
 * timer's.
 */
static void
upstream_try_connect(struct upstream *u)
{
	struct sockaddr_storage ss;
	char why[UP_WHY_LEN];
	socklen_t len;
	bool connected;
	int fd, err;

	/* upstream_new() refused the "any" CID: this is the parent's address. */
	if ((err = ph_endpoint_sockaddr(&u->ep, &ss, &len)) < 0) {
		upstream_attempt_failed(u, -EHOSTDOWN, "bad endpoint");
		return;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd == -1) {
		snprintf(why, sizeof(why), "socket: %s", strerror(errno));
		upstream_attempt_failed(u, -EHOSTDOWN, why);
		return;
	}
	if (connect(fd, (const struct sockaddr *)&ss, len) == 0)
		err = 0;
	else if (errno == EINPROGRESS || errno == EINTR)
		err = -EINPROGRESS;
	else
		err = -errno;
	if (err == -EAGAIN && u->ep.kind == PH_EP_UNIX) {
		close(fd);
		uv_timer_start(&u->retry, upstream_on_retry, UP_EAGAIN_MS, 0);
		return;
	}
	if (err != 0 && err != -EINPROGRESS) {
		close(fd);
		snprintf(why, sizeof(why), "connect: %s", strerror(-err));
		upstream_attempt_failed(u, -EHOSTDOWN, why);
		return;
	}
	connected = err == 0;
	if ((err = upstream_conn_open(u, fd)) < 0) {
		snprintf(why, sizeof(why), "poll: %s", uv_strerror(err));
		upstream_attempt_failed(u, -EHOSTDOWN, why);
		return;
	}
	if (connected)
		upstream_send_hello(u);
	else
		upstream_conn_update(u);
}

/* Starts an attempt: its deadline covers connect() and HELLO together. */
static void
upstream_attempt(struct upstream *u)
{
	uint64_t limit = u->stall_ms < UP_CONNECT_MS ? u->stall_ms :
	    UP_CONNECT_MS;

	u->state = UP_CONNECTING;
	u->attempting = true;
	uv_timer_start(&u->watch, upstream_on_watch, limit, 0);
	upstream_try_connect(u);
}

static void
upstream_on_retry(uv_timer_t *t)
{
	struct upstream *u = t->data;

	if (u->state != UP_CONNECTING && u->state != UP_DOWN)
		return;
	if (!u->attempting)
		upstream_attempt(u);
	else
		upstream_try_connect(u);	/* after EAGAIN */
}

/*
 * An attempt failed (or a connection never answered a request): back off,
 * and fail what waits with -EHOSTDOWN, since it would wait longer than a
 * guest should. The request in flight, if any, gets status.
 */
static void
upstream_attempt_failed(struct upstream *u, int status, const char *why)
{
	struct upstream_req *r = u->cur;
	struct upstream_error e;

	upstream_conn_close(u);
	u->cur = NULL;
	u->state = UP_DOWN;
	u->attempting = false;
	snprintf(u->down_why, sizeof(u->down_why), "%s", why);
	uv_timer_stop(&u->watch);
	uv_timer_start(&u->retry, upstream_on_retry, u->delay_ms, 0);
	u->delay_ms = u->delay_ms * 2 > UP_BACKOFF_MAX_MS ?
	    UP_BACKOFF_MAX_MS : u->delay_ms * 2;
	upstream_report_down(u);
	if (r != NULL) {
		upstream_err_set(&e, upstream_status_code(status), "%s", why);
		upstream_req_fail(r, status, &e);
	}
	upstream_err_set(&e, PH_ERR_UNAVAILABLE, "upstream unavailable: %s",
	    why);
	upstream_fail_waiting(u, -EHOSTDOWN, &e);
}

/*
 * The connection ended while ready. A healthy one is replaced at once and
 * the waiting requests keep their place; the one in flight gets status.
 */
static void
upstream_lost(struct upstream *u, int status, const char *why)
{
	struct upstream_req *r = u->cur;
	struct upstream_error e;

	if (!u->healthy) {
		upstream_attempt_failed(u, status, why);
		return;
	}
	if (u->log != NULL)
		log_debug(u->log, "upstream %s: connection ended: %s; "
		    "reconnecting", u->endpoint, why);
	upstream_conn_close(u);
	u->cur = NULL;
	u->state = UP_CONNECTING;
	u->attempting = false;
	uv_timer_stop(&u->watch);
	uv_timer_start(&u->retry, upstream_on_retry, 0, 0);
	if (r != NULL) {
		upstream_err_set(&e, upstream_status_code(status), "%s", why);
		upstream_req_fail(r, status, &e);
	}
}

static void
upstream_violation(struct upstream *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The parent broke the protocol: the stream is out of step, reset it. */
static void
upstream_violation(struct upstream *u, const char *fmt, ...)
{
	char why[UP_WHY_LEN];
	int n;
	va_list ap;

	n = snprintf(why, sizeof(why), "protocol error from the parent: ");
	va_start(ap, fmt);
	vsnprintf(why + n, sizeof(why) - (size_t)n, fmt, ap);
	va_end(ap);
	if (u->log != NULL)
		log_debug(u->log, "upstream %s: %s", u->endpoint, why);
	if (u->state == UP_READY)
		upstream_lost(u, -EBADMSG, why);
	else
		upstream_attempt_failed(u, -EHOSTDOWN, why);
}

/* ---- Replies ----------------------------------------------------------------- */

/* HELLO_ACK (or a refusal) for our HELLO. */
static void
upstream_on_hello_reply(struct upstream *u, const struct ph_msg *m)
{
	char why[UP_WHY_LEN];
	struct upstream_req *r;

	if (m->type == PH_ERROR) {
		snprintf(why, sizeof(why), "the parent refused the "
		    "handshake: %s: %.160s", ph_err_name(m->u.error.code),
		    m->u.error.message);
		upstream_attempt_failed(u, -EHOSTDOWN, why);
		return;
	}
	if (m->type != PH_HELLO_ACK) {
		upstream_violation(u, "%s instead of HELLO_ACK",
		    ph_message_type_name(m->type));
		return;
	}
	if (m->u.hello_ack.version < PH_PROTO_MIN_VERSION ||
	    m->u.hello_ack.version > PH_PROTO_VERSION) {
		upstream_violation(u, "HELLO_ACK for version %u",
		    (unsigned int)m->u.hello_ack.version);
		return;
	}
	/* Every level checks what it caches: no digests, no relay. */
	if (!(m->u.hello_ack.features & PH_FEAT_SHA256)) {
		upstream_attempt_failed(u, -EHOSTDOWN, "the parent offers no "
		    "SHA-256 digests");
		return;
	}
	u->features = m->u.hello_ack.features & (PH_FEAT_ALL |
	    PH_FEAT_REALPATH);
	u->state = UP_READY;
	u->attempting = false;
	upstream_report_up(u, m->u.hello_ack.agent);
	/*
	 * A PING goes first, even before requests that waited for this
	 * connection: a parent drops a connection that sends no request soon
	 * after HELLO, and its answer proves the link (makes it healthy), so
	 * a request the parent chokes on costs that request only.
	 */
	if ((r = calloc(1, sizeof(*r))) != NULL) {
		r->u = u;
		r->op = PH_PING;
		r->arg64 = ++u->nonce;
		r->where = REQ_WAITING;
		TAILQ_INSERT_HEAD(&u->waiting, r, link);
	}
}

/* A request ended well: the link is proven, the backoff starts over. */
static void
upstream_answered(struct upstream *u)
{
	u->healthy = true;
	u->delay_ms = UP_BACKOFF_MIN_MS;
	u->cur = NULL;
}

/* Ends the request in flight with an ERROR from the parent. */
static void
upstream_remote_error(struct upstream *u, struct upstream_req *r,
    const struct ph_error *pe)
{
	struct upstream_error e;

	upstream_answered(u);
	memset(&e, 0, sizeof(e));
	e.code = pe->code;
	memcpy(e.message, pe->message, sizeof(e.message));
	/* No PATH: the lookup failed before it resolved anything. */
	r->paths.known = (u->features & PH_FEAT_REALPATH) != 0 &&
	    !(r->paths.told && r->paths.real[0] == '\0');
	upstream_req_fail(r, -EREMOTE, &e);
}

/* Ends the request in flight with an integrity failure (stream in step). */
static void
upstream_integrity(struct upstream *u, struct upstream_req *r, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
upstream_integrity(struct upstream *u, struct upstream_req *r, const char *fmt,
    ...)
{
	struct upstream_error e;
	va_list ap;

	upstream_answered(u);
	memset(&e, 0, sizeof(e));
	e.code = PH_ERR_INTEGRITY;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	if (u->log != NULL)
		log_debug(u->log, "upstream %s: /%s: %s", u->endpoint,
		    r->path, e.message);
	upstream_req_fail(r, -EILSEQ, &e);
}

/*
 * A PATH frame for the request in flight: where its path, or a symlink on
 * the LIST page to come, really leads. Each is said once, normalised.
 */
static void
upstream_path_frame(struct upstream *u, struct upstream_req *r,
    const struct ph_path *p)
{
	char norm[PH_MAX_PATH + 1];
	size_t i = (size_t)p->entry - 1;

	if (!(u->features & PH_FEAT_REALPATH) || r->op == PH_PING) {
		upstream_violation(u, "PATH that was not asked for");
		return;
	}
	/* An empty PATH for the request: the parent cannot tell either. */
	if (p->entry == 0 && p->path[0] == '\0') {
		if (r->paths.told) {
			upstream_violation(u, "a second PATH for the request");
			return;
		}
		r->paths.told = true;
		return;
	}
	if (ph_path_normalize(p->path, strlen(p->path), norm,
	    sizeof(norm)) < 0 || strcmp(norm, p->path) != 0) {
		upstream_violation(u, "PATH that is not a normalised path");
		return;
	}
	if (p->entry == 0) {
		if (r->paths.told) {
			upstream_violation(u, "a second PATH for the request");
			return;
		}
		r->paths.told = true;
		snprintf(r->paths.real, sizeof(r->paths.real), "%s", p->path);
		return;
	}
	if (r->op != PH_LIST || i >= PH_MAX_LIST_ENTRIES ||
	    r->paths.target[i] != NULL) {
		upstream_violation(u, "PATH for LIST entry %u", p->entry);
		return;
	}
	if ((r->paths.target[i] = strdup(p->path)) == NULL)
		upstream_lost(u, -ENOMEM, "out of memory");
}

/*
 * The final answer to a STAT or LIST is here: what the PATH frames said
 * is complete. False (the connection reset) when the parent promised PATH
 * frames and sent none, or named an entry the page does not have.
 */
static bool
upstream_paths_done(struct upstream *u, struct upstream_req *r, uint16_t count)
{
	if (!(u->features & PH_FEAT_REALPATH))
		return true;
	if (!r->paths.told) {
		upstream_violation(u, "%s without a PATH",
		    ph_message_type_name(u->in->type));
		return false;
	}
	/* An empty PATH: known stays false, as behind an older parent. */
	r->paths.known = r->paths.real[0] != '\0';
	for (size_t i = count; i < PH_MAX_LIST_ENTRIES; i++) {
		if (r->paths.target[i] != NULL) {
			upstream_violation(u, "PATH for LIST entry %zu of %u",
			    i + 1, (unsigned int)count);
			return false;
		}
	}
	return true;
}

/*
 * A frame of the reply to a STAT or LIST: QUEUED and PATH frames, then
 * META (STAT) or LIST_REPLY (LIST), or an ERROR.
 */
static void
upstream_query_frame(struct upstream *u, struct upstream_req *r,
    const struct ph_msg *m)
{
	bool stat = r->op == PH_STAT;
	uint8_t final = stat ? PH_META : PH_LIST_REPLY;

	switch (m->type) {
	case PH_QUEUED:
		return;
	case PH_PATH:
		upstream_path_frame(u, r, &m->u.path);
		return;
	case PH_ERROR:
		upstream_remote_error(u, r, &m->u.error);
		return;
	default:
		break;
	}
	if (m->type != final) {
		upstream_violation(u, "%s in reply to %s",
		    ph_message_type_name(m->type),
		    ph_message_type_name(r->op));
		return;
	}
	if (!upstream_paths_done(u, r, stat ? 0 : m->u.list_reply.count))
		return;
	if (r->memo_gen == u->memo_gen)
		upstream_memo_put(u, r->op, stat ? 0 : r->arg64, r->path,
		    stat ? &m->u.meta : NULL, stat ? NULL : &m->u.list_reply,
		    &r->paths);
	upstream_answered(u);
	r->where = REQ_ENDING;
	if (!r->cancelled && stat)
		r->stat_cb(r->arg, 0, NULL, &m->u.meta, &r->paths);
	else if (!r->cancelled)
		r->list_cb(r->arg, 0, NULL, &m->u.list_reply, &r->paths);
	upstream_req_free(r);
}

static void
upstream_ping_frame(struct upstream *u, struct upstream_req *r,
    const struct ph_msg *m)
{
	if (m->type == PH_PONG && m->u.ping_nonce == r->arg64) {
		upstream_answered(u);
		upstream_req_free(r);
	} else if (m->type == PH_ERROR)
		upstream_remote_error(u, r, &m->u.error);
	else
		upstream_violation(u, "%s in reply to PING",
		    ph_message_type_name(m->type));
}

/*
 * File bytes of the GET in flight: counted against META, hashed, handed on.
 * Returns false when the stream was ended (the caller stops reading it).
 */
static bool
upstream_get_bytes(struct upstream *u, struct upstream_req *r, const uint8_t *b,
    size_t n)
{
	uint64_t gen = u->gen;

	if (n == 0 || n > r->meta.size - r->arg64 - r->received) {
		/* The rest of this reply cannot be trusted to line up. */
		upstream_lost(u, -EILSEQ, "the parent sent more bytes than its "
		    "META announced");
		return false;
	}
	if (r->arg64 == 0 && u->hash && EVP_DigestUpdate(u->md, b, n) != 1) {
		upstream_lost(u, -EILSEQ, "SHA-256 failed");
		return false;
	}
	r->received += n;
	if (!r->cancelled)
		r->gcbs.on_data(r->arg, b, n);
	return u->gen == gen;
}

/*
 * Unpacks one DATA_ZSTD frame into the chunk buffer. The declared size is
 * checked before any decompression, so a hostile frame can neither overrun
 * the buffer nor make us work for bytes we would refuse. A frame that
 * arrived whole but does not decode is damaged data (the parent's cached
 * copy gone bad), not a broken stream: the GET fails with an integrity
 * error (-EILSEQ), and the connection is reset because what follows cannot
 * be trusted either.
 */
static void
upstream_get_zstd(struct upstream *u, struct upstream_req *r,
    const struct ph_data *d)
{
	unsigned long long declared;
	char why[UP_WHY_LEN];
	size_t n;

	declared = ZSTD_getFrameContentSize(d->bytes, d->len);
	if (declared == ZSTD_CONTENTSIZE_UNKNOWN ||
	    declared == ZSTD_CONTENTSIZE_ERROR || declared == 0 ||
	    declared > PH_DATA_CHUNK) {
		upstream_lost(u, -EILSEQ, "damaged data from the parent: "
		    "DATA_ZSTD content size unknown or out of range");
		return;
	}
	n = ZSTD_findFrameCompressedSize(d->bytes, d->len);
	if (ZSTD_isError(n) || n != d->len) {
		upstream_lost(u, -EILSEQ, "damaged data from the parent: "
		    "DATA_ZSTD is not exactly one zstd frame");
		return;
	}
	n = ZSTD_decompressDCtx(u->dctx, u->chunk, PH_DATA_CHUNK, d->bytes,
	    d->len);
	if (ZSTD_isError(n) || n != declared) {
		snprintf(why, sizeof(why), "damaged data from the parent: "
		    "DATA_ZSTD does not decompress: %s", ZSTD_isError(n) ?
		    ZSTD_getErrorName(n) : "wrong size");
		upstream_lost(u, -EILSEQ, why);
		return;
	}
	(void)upstream_get_bytes(u, r, u->chunk, n);
}

/* META of the GET in flight. */
static void
upstream_get_meta(struct upstream *u, struct upstream_req *r,
    const struct ph_meta *meta)
{
	if (r->have_meta) {
		upstream_violation(u, "a second META");
		return;
	}
	if (meta->ftype != PH_FT_REGULAR || meta->size < r->arg64) {
		upstream_violation(u, "META for a GET is not a regular file of "
		    "at least %" PRIu64 " bytes", r->arg64);
		return;
	}
	if (r->arg64 == 0 && u->hash &&
	    EVP_DigestInit_ex(u->md, EVP_sha256(), NULL) != 1) {
		upstream_lost(u, -EILSEQ, "SHA-256 failed");
		return;
	}
	r->meta = *meta;
	r->have_meta = true;
	if (!r->cancelled)
		r->gcbs.on_meta(r->arg, meta);
}

/* END of the GET in flight: the count and both digests must agree. */
static void
upstream_get_end(struct upstream *u, struct upstream_req *r,
    const struct ph_end *end)
{
	unsigned int len = 0;
	char want[65], got[65];

	if (!r->have_meta) {
		upstream_violation(u, "END before META");
		return;
	}
	if (r->received != r->meta.size - r->arg64 ||
	    end->bytes != r->received) {
		upstream_integrity(u, r, "END after %" PRIu64 " of %" PRIu64
		    " bytes counts %" PRIu64, r->received,
		    r->meta.size - r->arg64, end->bytes);
		return;
	}
	if (!end->has_digest) {
		upstream_integrity(u, r, "END carries no SHA-256");
		return;
	}
	if (r->meta.has_digest &&
	    memcmp(r->meta.sha256, end->sha256, PH_SHA256_LEN) != 0) {
		upstream_integrity(u, r, "the file changed upstream during the "
		    "transfer (META and END digests differ)");
		return;
	}
	/*
	 * From offset 0 we hash every byte ourselves. From a later offset the
	 * earlier bytes never passed here, so the whole file's digest cannot
	 * be recomputed: we trust END's (and META's, which must agree). The
	 * relay itself always fetches from offset 0 for its cache, and its
	 * cache hashes what it stores (caller_hashes): hashing here as well
	 * would only cost a second pass on the loop thread.
	 */
	if (r->arg64 == 0 && u->hash) {
		if (EVP_DigestFinal_ex(u->md, r->digest, &len) != 1 ||
		    len != PH_SHA256_LEN) {
			upstream_integrity(u, r, "SHA-256 failed");
			return;
		}
		if (memcmp(r->digest, end->sha256, PH_SHA256_LEN) != 0) {
			ph_util_sha256_hex(end->sha256, want);
			ph_util_sha256_hex(r->digest, got);
			upstream_integrity(u, r, "SHA-256 mismatch: expected "
			    "%s, got %s", want, got);
			return;
		}
	} else
		memcpy(r->digest, end->sha256, PH_SHA256_LEN);
	upstream_answered(u);
	r->where = REQ_ENDING;
	if (!r->cancelled)
		r->gcbs.on_end(r->arg, 0, NULL, r->digest);
	upstream_req_free(r);
}

static void
upstream_get_frame(struct upstream *u, struct upstream_req *r,
    const struct ph_msg *m)
{
	switch (m->type) {
	case PH_QUEUED:
		return;		/* waiting in the parent's queue: a keepalive */
	case PH_PATH:
		/* The STAT before this GET was checked; only well-formed. */
		upstream_path_frame(u, r, &m->u.path);
		return;
	case PH_META:
		upstream_get_meta(u, r, &m->u.meta);
		return;
	case PH_DATA:
	case PH_DATA_ZSTD:
		if (!r->have_meta) {
			upstream_violation(u, "file data before META");
			return;
		}
		if (m->type == PH_DATA)
			(void)upstream_get_bytes(u, r, m->u.data.bytes,
			    m->u.data.len);
		else if (!r->zstd)
			upstream_violation(u, "DATA_ZSTD that was not asked "
			    "for");
		else
			upstream_get_zstd(u, r, &m->u.data);
		return;
	case PH_END:
		upstream_get_end(u, r, &m->u.end);
		return;
	case PH_ERROR:
		upstream_remote_error(u, r, &m->u.error);
		return;
	default:
		upstream_violation(u, "%s in reply to GET",
		    ph_message_type_name(m->type));
	}
}

/* One whole frame from the parent. */
static void
upstream_on_frame(struct upstream *u, const struct ph_header *h, uint8_t *payload)
{
	struct upstream_req *r;
	int err;

	if (!(h->type & 0x80)) {
		upstream_violation(u, "a %s request",
		    ph_message_type_name(h->type));
		return;
	}
	if ((err = ph_message_decode(h->type, payload, h->length, u->in)) < 0) {
		upstream_violation(u, "%s does not decode: %s",
		    ph_message_type_name(h->type), strerror(-err));
		return;
	}
	if (u->state == UP_HELLO) {
		upstream_on_hello_reply(u, u->in);
		return;
	}
	if ((r = u->cur) == NULL) {
		/* An ERROR while idle is the parent saying goodbye. */
		if (u->in->type == PH_ERROR)
			upstream_lost(u, -ECONNRESET, "the parent closed the "
			    "connection");
		else
			upstream_violation(u, "%s with no request in flight",
			    ph_message_type_name(u->in->type));
		return;
	}
	uv_timer_start(&u->watch, upstream_on_watch, u->stall_ms, 0);
	switch (r->op) {
	case PH_GET:
		upstream_get_frame(u, r, u->in);
		break;
	case PH_STAT:
	case PH_LIST:
		upstream_query_frame(u, r, u->in);
		break;
	default:
		upstream_ping_frame(u, r, u->in);
		break;
	}
}

/*
 * True when the frame whose header is h can be handed on piece by piece as
 * it arrives: a DATA frame of the GET in flight, after META, that fits in
 * what META announced. Its bytes need no decoding, so waiting for all of
 * them would only add a frame's worth of latency at every relay level.
 */
static bool
upstream_streamable(const struct upstream *u, const struct ph_header *h)
{
	const struct upstream_req *r = u->cur;

	return h->type == PH_DATA && u->state == UP_READY && r != NULL &&
	    r->op == PH_GET && r->have_meta && h->length > 0 &&
	    h->length <= r->meta.size - r->arg64 - r->received;
}

/* Splits the input into frames; stops when the connection ends. */
static void
upstream_parse(struct upstream *u)
{
	struct ph_framer *f = &u->frames;
	struct ph_header h;
	const uint8_t *p;
	uint8_t *payload;
	uint64_t gen = u->gen;
	size_t n;
	int err;

	while (ph_framer_pending(f) > 0) {
		if (ph_framer_body_left(f) > 0) {
			/* The rest of a DATA frame, as far as it came. */
			n = ph_framer_body(f, SIZE_MAX, &p);
			uv_timer_start(&u->watch, upstream_on_watch, u->stall_ms, 0);
			if (!upstream_get_bytes(u, u->cur, p, n))
				return;
			continue;
		}
		if ((err = ph_framer_header(f, &h)) == -EAGAIN)
			break;
		if (err < 0) {
			upstream_violation(u, "bad frame header: %s",
			    strerror(-err));
			return;
		}
		if (upstream_streamable(u, &h)) {
			(void)ph_framer_take_header(f, &h);
			continue;
		}
		if ((err = ph_framer_next(f, &h, &payload)) == 0)
			break;
		if (err < 0) {
			upstream_violation(u, "bad frame: %s", strerror(-err));
			return;
		}
		upstream_on_frame(u, &h, payload);
		if (u->gen != gen)
			return;
	}
}

/* Reads what the parent sent, a bounded number of times per wakeup. */
static void
upstream_read(struct upstream *u)
{
	char why[UP_WHY_LEN];
	uint64_t gen = u->gen;
	uint8_t *dst;
	size_t space;
	ssize_t n;
	int i;

	for (i = 0; i < UP_READS_PER_WAKEUP && u->gen == gen; i++) {
		dst = ph_framer_space(&u->frames, SIZE_MAX, &space);
		n = read(u->conn->fd, dst, space);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			snprintf(why, sizeof(why), "%s", n == 0 ?
			    "the parent closed the connection" :
			    strerror(errno));
			if (u->state == UP_READY)
				upstream_lost(u, -ECONNRESET, why);
			else
				upstream_attempt_failed(u, -EHOSTDOWN, why);
			return;
		}
		ph_framer_commit(&u->frames, (size_t)n);
		upstream_parse(u);
		if ((size_t)n < space)
			return;
	}
}

/* The socket is ready: finish a connect, write, read, send the next. */
static void
upstream_on_poll(uv_poll_t *h, int status, int events)
{
	struct upstream_conn *c = h->data;
	struct upstream *u = c->u;
	char why[UP_WHY_LEN];
	socklen_t len;
	int err;

	if (u->conn != c)
		return;
	if (status < 0) {
		snprintf(why, sizeof(why), "poll: %s", uv_strerror(status));
		if (u->state == UP_READY)
			upstream_lost(u, -ECONNRESET, why);
		else
			upstream_attempt_failed(u, -EHOSTDOWN, why);
		return;
	}
	if (u->state == UP_CONNECTING) {
		err = 0;
		len = sizeof(err);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err != 0) {
			snprintf(why, sizeof(why), "connect: %s",
			    strerror(err));
			upstream_attempt_failed(u, -EHOSTDOWN, why);
			return;
		}
		upstream_send_hello(u);
		return;
	}
	if (events & UV_WRITABLE)
		upstream_conn_flush(u);
	if (u->conn == c && (events & (UV_READABLE | UV_DISCONNECT)))
		upstream_read(u);
	if (u->conn == c)
		upstream_pump(u);
}

/* ---- Sending requests ---------------------------------------------------- */

/* Puts r on the wire; the caller made it the request in flight. */
static void
upstream_send_req(struct upstream *u, struct upstream_req *r)
{
	struct ph_msg *m = u->out;

	memset(m, 0, sizeof(*m));
	m->type = r->op;
	switch (r->op) {
	case PH_GET:
		r->zstd = (u->features & PH_FEAT_ZSTD) != 0;
		m->u.get.offset = r->arg64;
		m->u.get.flags = r->zstd ? PH_GET_WANT_ZSTD : 0;
		if (r->reverify && (u->features & PH_FEAT_REVERIFY))
			m->u.get.flags |= PH_GET_REVERIFY;
		memcpy(m->u.get.path, r->path, sizeof(m->u.get.path));
		break;
	case PH_STAT:
		memcpy(m->u.stat.path, r->path, sizeof(m->u.stat.path));
		break;
	case PH_LIST:
		m->u.list.cursor = r->arg64;
		memcpy(m->u.list.path, r->path, sizeof(m->u.list.path));
		break;
	default:
		m->u.ping_nonce = r->arg64;
		break;
	}
	r->memo_gen = u->memo_gen;
	uv_timer_start(&u->watch, upstream_on_watch, u->stall_ms, 0);
	upstream_conn_send(u);
}

/*
 * Sends the next waiting request when nothing is in flight. A STAT or LIST
 * that an earlier reply already answered is answered from the memo instead,
 * so a burst of identical requests costs one round trip.
 */
static void
upstream_pump(struct upstream *u)
{
	struct upstream_req *r;
	uint64_t gen = u->gen;

	while (u->state == UP_READY && u->gen == gen && u->cur == NULL &&
	    (r = TAILQ_FIRST(&u->waiting)) != NULL) {
		TAILQ_REMOVE(&u->waiting, r, link);
		if ((r->op == PH_STAT || r->op == PH_LIST) &&
		    upstream_memo_answer(u, r)) {
			upstream_req_answer(r);
			continue;
		}
		r->where = REQ_FLIGHT;
		u->cur = r;
		upstream_send_req(u, r);
	}
	if (u->state == UP_READY && u->gen == gen && u->cur == NULL)
		uv_timer_start(&u->watch, upstream_on_watch, UP_KEEPALIVE_MS,
		    0);
}

/* Connect deadline, stall, or time for a keepalive PING. */
static void
upstream_on_watch(uv_timer_t *t)
{
	struct upstream *u = t->data;
	struct upstream_req *r;
	char why[UP_WHY_LEN];

	switch (u->state) {
	case UP_CONNECTING:
	case UP_HELLO:
		if (!u->attempting)
			break;
		snprintf(why, sizeof(why), "no answer within %" PRIu64
		    " ms of connecting", u->stall_ms < UP_CONNECT_MS ?
		    u->stall_ms : (uint64_t)UP_CONNECT_MS);
		upstream_attempt_failed(u, -EHOSTDOWN, why);
		break;
	case UP_READY:
		if (u->cur != NULL) {
			snprintf(why, sizeof(why), "the parent sent nothing "
			    "for %" PRIu64 " ms", u->stall_ms);
			upstream_lost(u, -ETIMEDOUT, why);
			break;
		}
		if (TAILQ_EMPTY(&u->waiting) &&
		    (r = calloc(1, sizeof(*r))) != NULL) {
			r->u = u;
			r->op = PH_PING;
			r->arg64 = ++u->nonce;
			r->where = REQ_WAITING;
			TAILQ_INSERT_TAIL(&u->waiting, r, link);
		}
		upstream_pump(u);
		break;
	default:
		break;
	}
}

/* Memo answers found when the request was made, then the next send. */
static void
upstream_on_kick(uv_timer_t *t)
{
	struct upstream *u = t->data;
	struct upstream_req *r;

	while (u->state != UP_CLOSED && (r = TAILQ_FIRST(&u->done)) != NULL) {
		TAILQ_REMOVE(&u->done, r, link);
		upstream_req_answer(r);
	}
	upstream_pump(u);
}

/* ---- The interface ------------------------------------------------------- */

static void
upstream_on_handle_closed(uv_handle_t *h)
{
	upstream_handle_gone(h->data);
}

int
upstream_new(uv_loop_t *loop, const struct upstream_config *cfg,
    struct log *log, struct upstream **out)
{
	struct upstream *u;
	int err;

	*out = NULL;
	if ((u = calloc(1, sizeof(*u))) == NULL)
		return -ENOMEM;
	if (ph_endpoint_parse(cfg->endpoint, &u->ep) < 0 ||
	    (u->ep.kind == PH_EP_VSOCK && u->ep.cid == PH_VSOCK_CID_ANY)) {
		err = -EINVAL;
		goto fail;
	}
	(void)ph_endpoint_format(&u->ep, u->endpoint, sizeof(u->endpoint));
	if ((u->rbuf = malloc(UP_RBUF)) == NULL ||
	    (u->chunk = malloc(PH_DATA_CHUNK)) == NULL ||
	    (u->in = malloc(sizeof(*u->in))) == NULL ||
	    (u->out = malloc(sizeof(*u->out))) == NULL ||
	    (u->dctx = ZSTD_createDCtx()) == NULL ||
	    (u->md = EVP_MD_CTX_new()) == NULL) {
		err = -ENOMEM;
		goto fail;
	}
	ph_framer_init(&u->frames, u->rbuf, UP_RBUF);
	u->loop = loop;
	u->log = log;
	u->ttl_ms = cfg->meta_ttl_ms != 0 ? cfg->meta_ttl_ms : UP_DEF_TTL_MS;
	u->stall_ms = cfg->stall_ms != 0 ? cfg->stall_ms : UP_DEF_STALL_MS;
	u->hash = !cfg->caller_hashes;
	u->delay_ms = UP_BACKOFF_MIN_MS;
	TAILQ_INIT(&u->waiting);
	TAILQ_INIT(&u->done);
	TAILQ_INIT(&u->memo_age);
	/* uv_timer_init() cannot fail once the loop exists. */
	uv_timer_init(loop, &u->retry);
	uv_timer_init(loop, &u->watch);
	uv_timer_init(loop, &u->kick);
	u->retry.data = u->watch.data = u->kick.data = u;
	u->open_handles = 3;
	/* The first attempt runs from the loop, like every later one. */
	u->state = UP_CONNECTING;
	uv_timer_start(&u->retry, upstream_on_retry, 0, 0);
	*out = u;
	return 0;
fail:
	free(u->rbuf);
	free(u->chunk);
	free(u->in);
	free(u->out);
	ZSTD_freeDCtx(u->dctx);
	EVP_MD_CTX_free(u->md);
	free(u);
	return err;
}

void
upstream_free(struct upstream *u)
{
	struct upstream_error e;
	struct upstream_req *r;

	if (u == NULL || u->state == UP_CLOSED)
		return;
	r = u->cur;
	u->cur = NULL;
	upstream_conn_close(u);
	u->state = UP_CLOSED;
	uv_close((uv_handle_t *)&u->retry, upstream_on_handle_closed);
	uv_close((uv_handle_t *)&u->watch, upstream_on_handle_closed);
	uv_close((uv_handle_t *)&u->kick, upstream_on_handle_closed);
	upstream_memo_clear(u);
	upstream_err_set(&e, PH_ERR_SHUTDOWN, "the relay is stopping");
	if (r != NULL)
		upstream_req_fail(r, -ECANCELED, &e);
	upstream_fail_waiting(u, -ECANCELED, &e);
	while ((r = TAILQ_FIRST(&u->done)) != NULL) {
		TAILQ_REMOVE(&u->done, r, link);
		upstream_req_fail(r, -ECANCELED, &e);
	}
}

bool
upstream_connected(const struct upstream *u)
{
	return u->state == UP_READY;
}

const char *
upstream_endpoint(const struct upstream *u)
{
	return u->endpoint;
}

/*
 * The common start of a request: a memo answer is queued for the kick
 * timer; otherwise the request waits for the connection, unless the parent
 * is known to be down.
 */
static int
upstream_request(struct upstream *u, uint8_t op, const char *path,
    uint64_t arg64, void *arg, struct upstream_req **out)
{
	struct upstream_req *r;
	size_t n = strlen(path);

	*out = NULL;
	if (u->state == UP_CLOSED)
		return -EHOSTDOWN;
	if (n > PH_MAX_PATH)
		return -ENAMETOOLONG;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->u = u;
	r->op = op;
	r->arg64 = arg64;
	r->arg = arg;
	memcpy(r->path, path, n + 1);
	if ((op == PH_STAT || op == PH_LIST) && upstream_memo_answer(u, r)) {
		r->where = REQ_DONE;
		TAILQ_INSERT_TAIL(&u->done, r, link);
	} else if (u->state == UP_DOWN) {
		upstream_req_free(r);
		return -EHOSTDOWN;
	} else {
		r->where = REQ_WAITING;
		TAILQ_INSERT_TAIL(&u->waiting, r, link);
	}
	uv_timer_start(&u->kick, upstream_on_kick, 0, 0);
	*out = r;
	return 0;
}

int
upstream_get(struct upstream *u, const char *path, uint64_t offset,
    const struct upstream_get_cbs *cbs, void *arg, struct upstream_req **out)
{
	int err;

	if ((err = upstream_request(u, PH_GET, path, offset, arg, out)) == 0)
		(*out)->gcbs = *cbs;
	return err;
}

void
upstream_get_reverify(struct upstream_req *r)
{
	if (r->op == PH_GET && r->where == REQ_WAITING)
		r->reverify = true;
}

int
upstream_stat(struct upstream *u, const char *path, upstream_stat_cb *cb,
    void *arg, struct upstream_req **out)
{
	int err;

	if ((err = upstream_request(u, PH_STAT, path, 0, arg, out)) == 0)
		(*out)->stat_cb = cb;
	return err;
}

int
upstream_list(struct upstream *u, const char *path, uint64_t cursor,
    upstream_list_cb *cb, void *arg, struct upstream_req **out)
{
	int err;

	if ((err = upstream_request(u, PH_LIST, path, cursor, arg, out)) == 0)
		(*out)->list_cb = cb;
	return err;
}

void
upstream_cancel(struct upstream_req *r)
{
	struct upstream *u;

	if (r == NULL)
		return;
	u = r->u;
	switch (r->where) {
	case REQ_WAITING:
		TAILQ_REMOVE(&u->waiting, r, link);
		upstream_req_free(r);
		break;
	case REQ_DONE:
		TAILQ_REMOVE(&u->done, r, link);
		upstream_req_free(r);
		break;
	case REQ_FLIGHT:
		r->cancelled = true;
		/* A reply to STAT or LIST is short: let it come and drop
		 * it. A file is not: cut it and start a fresh connection. */
		if (r->op == PH_GET) {
			u->healthy = true;
			upstream_lost(u, -ECANCELED, "a GET was withdrawn");
		}
		break;
	case REQ_ENDING:
		break;
	}
}

void
upstream_forget(struct upstream *u)
{
	upstream_memo_clear(u);
	u->memo_gen++;
}
