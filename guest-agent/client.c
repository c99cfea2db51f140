/*
 * client.c: one porthole connection to portholed (blocking sockets).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#include "backoff.h"
#include "client.h"
#include "config.h"
#include "fmt.h"
#include "progress.h"
#include "sockopt.h"

/*
 * Replies are read in blocks: a read asks for at least this many bytes, so
 * the small frames of a reply (META, END, a small file's DATA) usually
 * arrive with one system call, and the header of a large frame comes with
 * the start of its payload.
 */
#define CLIENT_READAHEAD	(64 * 1024)
#define CLIENT_RBUF_LEN		(PH_HDR_LEN + PH_MAX_PAYLOAD + CLIENT_READAHEAD)

/* The socket receive buffer we ask for: a few DATA frames. */
#define CLIENT_RCVBUF		(4 * 1024 * 1024)

struct client {
	int		 fd;
	bool		 ready;		/* HELLO_ACK received on fd */
	bool		 broken;
	uint16_t	 version;
	uint32_t	 features;
	char		 agent[PH_MAX_MESSAGE + 1];
	char		*endpoint;
	struct ph_endpoint ep;
	uint32_t	 features_offered;
	uint32_t	 wait_ms;	/* --wait: how long to keep trying */
	bool		 gave_up;	/* a wait ran out; the host is silent */
	bool		 said_busy;	/* "host busy, retrying" printed */
	int		 connect_err;	/* the last try's connect() error */
	bool		 hello_busy;	/* the last try's HELLO got BUSY */
	struct ph_error	 busy;		/* ... and this is what it said */
	struct progress	*progress;	/* not owned; cleared before messages */
	uint8_t		*rbuf;		/* CLIENT_RBUF_LEN bytes */
	struct ph_framer in;		/* frames read into rbuf */
	uint8_t		 wbuf[PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD];
	/* client_request()'s request, kept to be sent again after BUSY. */
	uint8_t		 rq[PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD];
};

enum px_exit
client_exit_for(unsigned int ph_err)
{
	switch (ph_err) {
	case PH_ERR_BAD_PATH:
	case PH_ERR_USAGE:
		return PX_USAGE;
	case PH_ERR_NOT_FOUND:
	case PH_ERR_NOT_FILE:
	case PH_ERR_NOT_DIR:
		return PX_NOT_FOUND;
	case PH_ERR_FORBIDDEN:
	case PH_ERR_PATH_ESCAPE:
		return PX_FORBIDDEN;
	case PH_ERR_BUSY:
		return PX_BUSY;
	case PH_ERR_PROTOCOL:
	case PH_ERR_VERSION:
	case PH_ERR_UNAVAILABLE:
	case PH_ERR_TIMEOUT:
	case PH_ERR_SHUTDOWN:
		return PX_CONN;
	case PH_ERR_CHANGED:
	case PH_ERR_INTEGRITY:
		return PX_INTEGRITY;
	default:
		return PX_REMOTE;
	}
}

/* Whether the server closes the connection after sending this code. */
static bool
client_err_closes_connection(unsigned int ph_err)
{
	return ph_err == PH_ERR_PROTOCOL || ph_err == PH_ERR_VERSION ||
	    ph_err == PH_ERR_TIMEOUT || ph_err == PH_ERR_SHUTDOWN;
}

enum px_exit
client_remote_error(struct client *c, const char *subject,
    const struct ph_error *e)
{
	progress_clear(c->progress);
	fputs("porthole: ", stderr);
	fmt_safe_str(stderr, subject);
	fputs(": ", stderr);
	fmt_safe_str(stderr, e->message[0] != '\0' ? e->message :
	    ph_err_text(e->code));
	fprintf(stderr, " (%s)\n", ph_err_name(e->code));
	if (client_err_closes_connection(e->code))
		c->broken = true;
	return client_exit_for(e->code);
}

enum px_exit
client_protocol_error(struct client *c, const char *fmt, ...)
{
	va_list ap;

	progress_clear(c->progress);
	fputs("porthole: ", stderr);
	fmt_safe_str(stderr, c->endpoint);
	fputs(": protocol error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	c->broken = true;
	return PX_CONN;
}

enum px_exit
client_unexpected(struct client *c, const char *subject,
    const struct ph_msg *m)
{
	if (m->type == PH_ERROR)
		return client_remote_error(c, subject, &m->u.error);
	return client_protocol_error(c, "unexpected %s frame",
	    ph_message_type_name(m->type));
}

/* Prints a transport failure on c and returns PX_CONN. */
static enum px_exit
client_report_io_error(struct client *c, const char *doing, int err)
{
	progress_clear(c->progress);
	fputs("porthole: ", stderr);
	fmt_safe_str(stderr, c->endpoint);
	if (err == -ECONNRESET || err == -EPIPE)
		fputs(": connection lost\n", stderr);
	else if (err == -EAGAIN || err == -EWOULDBLOCK || err == -ETIMEDOUT)
		fprintf(stderr, ": no reply for %d seconds\n",
		    CLIENT_IO_TIMEOUT_MS / 1000);
	else
		fprintf(stderr, ": %s: %s\n", doing, strerror(-err));
	c->broken = true;
	return PX_CONN;
}

/*
 * Encodes m into buf (cap bytes) and sets *len. A request that does not
 * encode is ours to blame (a path over the limit): printed, PX_USAGE.
 */
static enum px_exit
client_encode(const struct ph_msg *m, uint8_t *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	if ((n = ph_message_encode(m, buf, cap)) < 0) {
		fprintf(stderr, "porthole: request too large to send: %s\n",
		    strerror((int)-n));
		return PX_USAGE;
	}
	*len = (size_t)n;
	return PX_OK;
}

enum px_exit
client_send(struct client *c, const struct ph_msg *m)
{
	enum px_exit ex;
	size_t len;
	int rc;

	if (c->broken)
		return client_report_io_error(c, "send", -ECONNRESET);
	if ((ex = client_encode(m, c->wbuf, sizeof(c->wbuf), &len)) != PX_OK)
		return ex;
	if ((rc = ph_io_write_all(c->fd, c->wbuf, len)) < 0)
		return client_report_io_error(c, "send", rc);
	return PX_OK;
}

/* Reads up to len bytes into buf. The count, or -errno; EOF is -ECONNRESET. */
static ssize_t
client_read_some(int fd, uint8_t *buf, size_t len)
{
	ssize_t n;

	do
		n = read(fd, buf, len);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	return n;
}

/*
 * One read towards what the framer still needs. Each read asks for
 * CLIENT_READAHEAD bytes or more, so it may take bytes of the frames after
 * this one, but never more than that. Unread bytes move to the front only
 * when the frame would not fit after them, which moves at most
 * CLIENT_READAHEAD bytes.
 */
static int
client_fill(struct client *c)
{
	size_t need = ph_framer_need(&c->in), want, room;
	uint8_t *dst;
	ssize_t n;

	dst = ph_framer_space(&c->in, need + CLIENT_READAHEAD, &room);
	want = need < CLIENT_READAHEAD ? CLIENT_READAHEAD : need;
	if (want > room)
		want = room;
	if ((n = client_read_some(c->fd, dst, want)) < 0)
		return (int)n;
	ph_framer_commit(&c->in, (size_t)n);
	return 0;
}

/*
 * Reads one frame and decodes it into m. The framer validates the header
 * (type, version, the length limit of its type) before the length is
 * trusted. A DATA payload goes to data (cap bytes) when data is not NULL:
 * what was read ahead is copied, the rest is read straight into place.
 */
static int
client_recv_frame(struct client *c, struct ph_msg *m, uint8_t *data, size_t cap)
{
	struct ph_header h;
	const uint8_t *p;
	uint8_t *payload;
	size_t got;
	ssize_t n;
	int rc;

	while ((rc = ph_framer_header(&c->in, &h)) == -EAGAIN)
		if ((rc = client_fill(c)) < 0)
			return rc;
	if (rc < 0)
		return rc;
	if (data != NULL && h.type == PH_DATA && h.length <= cap) {
		(void)ph_framer_take_header(&c->in, &h);
		if ((got = ph_framer_body(&c->in, h.length, &p)) > 0)
			memcpy(data, p, got);
		for (; got < h.length; got += (size_t)n) {
			if ((n = client_read_some(c->fd, data + got,
			    h.length - got)) < 0)
				return (int)n;
			ph_framer_body_skip(&c->in, (size_t)n);
		}
		return ph_message_decode(h.type, data, h.length, m);
	}
	/* The framer's buffer holds any frame the header check allows. */
	while ((rc = ph_framer_next(&c->in, &h, &payload)) == 0)
		if ((rc = client_fill(c)) < 0)
			return rc;
	if (rc < 0)
		return rc;
	return ph_message_decode(h.type, payload, h.length, m);
}

enum px_exit
client_recv(struct client *c, struct ph_msg *m)
{
	return client_recv_data(c, m, NULL, 0);
}

enum px_exit
client_recv_data(struct client *c, struct ph_msg *m, uint8_t *data,
    size_t cap)
{
	int rc;

	/*
	 * ph_message_decode() clears the member it fills; clearing all of m
	 * would cost more than most frames (its path buffers are 4 KB each).
	 */
	m->type = 0;
	if (c->broken)
		return client_report_io_error(c, "receive", -ECONNRESET);
	rc = client_recv_frame(c, m, data, cap);
	switch (rc) {
	case 0:
		/* A host that answers is there: a later wait may be long. */
		if (!client_reply_busy(m))
			c->gave_up = false;
		return PX_OK;
	case -EPROTO:
	case -EBADMSG:
	case -EMSGSIZE:
	case -EILSEQ:
	case -ENOBUFS:
	case -EPROTONOSUPPORT:
		return client_protocol_error(c, "malformed frame (%s)",
		    strerror(-rc));
	default:
		return client_report_io_error(c, "receive", rc);
	}
}

enum px_exit
client_path(const char *arg, char norm[PH_MAX_PATH + 1],
    char shown[PH_MAX_PATH + 2])
{
	unsigned int code;
	int rc;

	rc = ph_path_normalize(arg, strlen(arg), norm, PH_MAX_PATH + 1);
	if (rc == 0) {
		ph_path_display(norm, shown, PH_MAX_PATH + 2);
		return PX_OK;
	}
	code = rc == -EPERM ? PH_ERR_PATH_ESCAPE : PH_ERR_BAD_PATH;
	fputs("porthole: ", stderr);
	fmt_safe_str(stderr, arg);
	fprintf(stderr, ": %s (%s)\n", ph_err_text(code), ph_err_name(code));
	return client_exit_for(code);
}

/*
 * Asks for a receive buffer of CLIENT_RCVBUF bytes, so that a fast server
 * can run further ahead of us. On vsock the buffer that counts is
 * SO_VM_SOCKETS_BUFFER_SIZE, which also sets the credit the host may send
 * ahead; its maximum must be raised first. Best effort: the kernel may cap
 * SO_RCVBUF (net.core.rmem_max) or refuse the vsock options, and the
 * transfer works either way.
 */
static void
client_set_rcvbuf(int fd, enum ph_ep_kind kind)
{
	unsigned long long vsz = CLIENT_RCVBUF;
	int sz = CLIENT_RCVBUF;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (kind != PH_EP_VSOCK)
		return;
	(void)setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_MAX_SIZE, &vsz,
	    sizeof(vsz));
	(void)setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &vsz,
	    sizeof(vsz));
}

/*
 * Sends HELLO and checks the HELLO_ACK that must answer it. A BUSY answer
 * is kept in c, not printed, and the connection closed at once: the caller
 * may try again later.
 */
static enum px_exit
client_hello(struct client *c)
{
	uint32_t features = c->features_offered;
	struct ph_msg m;
	enum px_exit ex;

	memset(&m, 0, sizeof(m));
	m.type = PH_HELLO;
	m.u.hello.min_version = PH_PROTO_MIN_VERSION;
	m.u.hello.max_version = PH_PROTO_VERSION;
	m.u.hello.features = features;
	snprintf(m.u.hello.agent, sizeof(m.u.hello.agent), "porthole %s",
	    PORTHOLE_VERSION);
	if ((ex = client_send(c, &m)) != PX_OK)
		return ex;
	if ((ex = client_recv(c, &m)) != PX_OK)
		return ex;
	if (client_reply_busy(&m)) {
		c->busy = m.u.error;
		c->hello_busy = true;
		close(c->fd);
		c->fd = -1;
		c->broken = true;
		return PX_BUSY;
	}
	if (m.type != PH_HELLO_ACK)
		return client_unexpected(c, c->endpoint, &m);
	if (m.u.hello_ack.version < PH_PROTO_MIN_VERSION ||
	    m.u.hello_ack.version > PH_PROTO_VERSION)
		return client_protocol_error(c,
		    "server chose protocol version %u",
		    m.u.hello_ack.version);
	c->version = m.u.hello_ack.version;
	/* Never trust a feature we did not offer. */
	c->features = m.u.hello_ack.features & features;
	memcpy(c->agent, m.u.hello_ack.agent, sizeof(c->agent));
	return PX_OK;
}

enum px_exit
client_new(const char *endpoint, uint32_t features, unsigned int wait_s,
    struct client **out)
{
	struct client *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto nomem;
	c->fd = -1;
	c->features_offered = features;
	c->wait_ms = wait_s > CLIENT_WAIT_MAX ? CLIENT_WAIT_MAX * 1000u :
	    wait_s * 1000u;
	if ((c->endpoint = strdup(endpoint)) == NULL ||
	    (c->rbuf = malloc(CLIENT_RBUF_LEN)) == NULL)
		goto nomem;
	ph_framer_init(&c->in, c->rbuf, CLIENT_RBUF_LEN);
	if (ph_endpoint_parse(endpoint, &c->ep) < 0 ||
	    (c->ep.kind == PH_EP_VSOCK && c->ep.cid == PH_VSOCK_CID_ANY)) {
		fputs("porthole: bad endpoint '", stderr);
		fmt_safe_str(stderr, endpoint);
		fputs("' (want vsock:CID:PORT or unix:PATH)\n", stderr);
		client_close(c);
		return PX_USAGE;
	}
	*out = c;
	return PX_OK;
nomem:
	fprintf(stderr, "porthole: %s\n", strerror(ENOMEM));
	client_close(c);
	return PX_LOCAL_IO;
}

bool
client_reply_busy(const struct ph_msg *m)
{
	return m->type == PH_ERROR && m->u.error.code == PH_ERR_BUSY;
}

bool
client_wait_more(struct client *c, struct backoff *b)
{
	int64_t now = (int64_t)(progress_now() * 1000.0), pause;

	/* After a wait that ran out, do not wait again for a silent host. */
	if (!b->running)
		backoff_start(b, now, c->gave_up ? 0 : c->wait_ms);
	if ((pause = backoff_next(b, now, backoff_random())) < 0) {
		c->gave_up = true;
		return false;
	}
	if (!c->said_busy && isatty(STDERR_FILENO)) {
		progress_clear(c->progress);
		fputs("porthole: host busy, retrying\n", stderr);
		c->said_busy = true;
	}
	backoff_sleep(pause);
	return true;
}

/*
 * Whether a connect() that failed with err may work later: nobody listens
 * yet (no socket file; refused, which vsock reports as a reset), or the
 * listener's backlog stayed full (EAGAIN, which ph_endpoint_connect()
 * retries until its timeout).
 */
static bool
client_connect_retryable(int err)
{
	return err == -ECONNREFUSED || err == -ENOENT || err == -ETIMEDOUT ||
	    err == -EAGAIN || err == -ECONNRESET;
}

/* Prints why c could not connect, the way the last try failed. */
static enum px_exit
client_connect_failed(struct client *c)
{
	if (c->hello_busy)
		return client_remote_error(c, c->endpoint, &c->busy);
	progress_clear(c->progress);
	fputs("porthole: cannot connect to ", stderr);
	fmt_safe_str(stderr, c->endpoint);
	fprintf(stderr, ": %s\n", strerror(-c->connect_err));
	return PX_CONN;
}

/*
 * One try at connecting and exchanging HELLO. Returns PX_OK; or sets
 * *again and returns the exit code of a failure that may pass, unprinted
 * (the connect error is in c->connect_err, a BUSY answer in c->busy); or
 * prints any other failure and returns its exit code.
 */
static enum px_exit
client_connect_once(struct client *c, bool *again)
{
	enum px_exit ex;
	int fd, rc;

	*again = false;
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
	c->ready = false;
	c->broken = false;
	c->connect_err = 0;
	c->hello_busy = false;
	/* Whatever was read ahead belonged to the old connection. */
	ph_framer_reset(&c->in);
	fd = ph_endpoint_connect(&c->ep, CLIENT_CONNECT_TIMEOUT_MS);
	if (fd < 0) {
		c->broken = true;
		c->connect_err = fd;
		if ((*again = client_connect_retryable(fd)))
			return PX_CONN;
		return client_connect_failed(c);
	}
	c->fd = fd;
	client_set_rcvbuf(fd, c->ep.kind);
	if ((rc = sockopt_io_timeout(fd, CLIENT_IO_TIMEOUT_MS)) < 0)
		return client_report_io_error(c, "setsockopt", rc);
	if ((ex = client_hello(c)) != PX_OK) {
		*again = c->hello_busy;
		c->broken = true;
		return ex;
	}
	c->ready = true;
	return PX_OK;
}

enum px_exit
client_connect(struct client *c)
{
	struct backoff b = { .running = false };
	enum px_exit ex;
	bool again;

	if (c->ready && !c->broken)
		return PX_OK;
	while ((ex = client_connect_once(c, &again)) != PX_OK && again)
		if (!client_wait_more(c, &b))
			return client_connect_failed(c);
	return ex;
}

enum px_exit
client_request(struct client *c, struct ph_msg *m)
{
	struct backoff b = { .running = false };
	enum px_exit ex;
	size_t len;
	int rc;

	if ((ex = client_encode(m, c->rq, sizeof(c->rq), &len)) != PX_OK)
		return ex;
	do {
		/* A server may also close a connection it turned away. */
		if ((ex = client_connect(c)) != PX_OK)
			return ex;
		if ((rc = ph_io_write_all(c->fd, c->rq, len)) < 0)
			return client_report_io_error(c, "send", rc);
		if ((ex = client_recv(c, m)) != PX_OK)
			return ex;
	} while (client_reply_busy(m) && client_wait_more(c, &b));
	return PX_OK;
}

enum px_exit
client_open(const char *endpoint, uint32_t features, unsigned int wait_s,
    struct client **out)
{
	enum px_exit ex;

	if ((ex = client_new(endpoint, features, wait_s, out)) != PX_OK)
		return ex;
	if ((ex = client_connect(*out)) != PX_OK) {
		client_close(*out);
		*out = NULL;
	}
	return ex;
}

void
client_close(struct client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	free(c->rbuf);
	free(c->endpoint);
	free(c);
}

void
client_set_progress(struct client *c, struct progress *p)
{
	c->progress = p;
}

uint16_t
client_version(const struct client *c)
{
	return c->version;
}

uint32_t
client_features(const struct client *c)
{
	return c->features;
}

const char *
client_server_agent(const struct client *c)
{
	return c->agent;
}

const char *
client_endpoint(const struct client *c)
{
	return c->endpoint;
}

bool
client_is_broken(const struct client *c)
{
	return c->broken;
}

void
client_set_broken(struct client *c)
{
	c->broken = true;
}
