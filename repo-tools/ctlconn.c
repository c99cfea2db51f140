/*
 * ctlconn.c: one request on portholed's control socket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctlconn.h"
#include "sockopt.h"

/* Connects to the control socket, with the message the brief promises. */
static enum cx_exit
ctlconn_connect(const char *path, int *fd)
{
	struct ph_endpoint ep;
	char *spec = NULL;
	int rc;

	*fd = -1;
	if (asprintf(&spec, "unix:%s", path) == -1) {
		fprintf(stderr, "portholectl: %s\n", strerror(ENOMEM));
		return CX_ERROR;
	}
	rc = ph_endpoint_parse(spec, &ep);
	free(spec);
	if (rc < 0) {
		fprintf(stderr, "portholectl: %s: not a usable socket path\n",
		    path);
		return CX_USAGE;
	}
	rc = ph_endpoint_connect(&ep, CTLCONN_CONNECT_TIMEOUT_MS);
	if (rc < 0) {
		fprintf(stderr, "portholectl: cannot connect to %s: %s "
		    "(is portholed running?)\n", path, strerror(-rc));
		return CX_UNREACHABLE;
	}
	*fd = rc;
	if ((rc = sockopt_io_timeout(*fd, CTLCONN_TIMEOUT_MS)) < 0) {
		fprintf(stderr, "portholectl: %s: %s\n", path, strerror(-rc));
		return CX_UNREACHABLE;
	}
	return CX_OK;
}

static enum cx_exit
ctlconn_send(int fd, const char *path, const struct ctl_request *req,
    struct ph_msg *m)
{
	uint8_t buf[PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD];
	size_t i;
	int rc;

	memset(m, 0, sizeof(*m));
	m->type = PH_CTL;
	m->u.ctl.flags = 0;	/* the reply is JSON either way */
	m->u.ctl.argc = (uint16_t)req->argc;
	for (i = 0; i < req->argc; i++)
		m->u.ctl.argv[i] = req->argv[i];
	rc = ph_io_send_msg(fd, m, buf, sizeof(buf));
	if (rc == -ENOBUFS || rc == -EMSGSIZE || rc == -EINVAL) {
		fprintf(stderr, "portholectl: the command is longer than a "
		    "request may be (%d bytes)\n", PH_MAX_REQUEST_PAYLOAD);
		return CX_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, "portholectl: %s: %s\n", path, strerror(-rc));
		return CX_UNREACHABLE;
	}
	return CX_OK;
}

/* Reads the one frame that answers a CTL request. */
static enum cx_exit
ctlconn_recv(int fd, const char *path, struct ctl_reply *reply,
    struct ph_msg *m)
{
	int rc;

	if ((reply->buf = malloc(PH_HDR_LEN + PH_MAX_PAYLOAD)) == NULL) {
		fprintf(stderr, "portholectl: %s\n", strerror(ENOMEM));
		return CX_ERROR;
	}
	rc = ph_io_recv_msg(fd, reply->buf, PH_HDR_LEN + PH_MAX_PAYLOAD, m);
	if (rc == -ECONNRESET || rc == -EAGAIN || rc == -EWOULDBLOCK) {
		fprintf(stderr, "portholectl: %s: %s\n", path,
		    rc == -ECONNRESET ? "the daemon closed the connection" :
		    "no reply from the daemon");
		return CX_UNREACHABLE;
	}
	if (rc < 0) {
		fprintf(stderr, "portholectl: %s: bad reply: %s\n", path,
		    strerror(-rc));
		return CX_ERROR;
	}
	if (m->type == PH_ERROR) {
		fprintf(stderr, "portholectl: %s (%s)\n",
		    m->u.error.message[0] != '\0' ? m->u.error.message :
		    ph_err_text(m->u.error.code), ph_err_name(m->u.error.code));
		return m->u.error.code == PH_ERR_USAGE ? CX_USAGE : CX_ERROR;
	}
	if (m->type != PH_CTL_REPLY) {
		fprintf(stderr, "portholectl: %s: unexpected %s reply\n", path,
		    ph_message_type_name(m->type));
		return CX_ERROR;
	}
	reply->status = m->u.ctl_reply.status;
	reply->body = m->u.ctl_reply.body;
	reply->body_len = m->u.ctl_reply.body_len;
	return CX_OK;
}

enum cx_exit
ctlconn_request(const char *path, const struct ctl_request *req,
    struct ctl_reply *reply)
{
	struct ph_msg *m;
	enum cx_exit ex;
	int fd = -1;

	memset(reply, 0, sizeof(*reply));
	/* A CTL message holds 32 path-sized strings: too big for the stack. */
	if ((m = malloc(sizeof(*m))) == NULL) {
		fprintf(stderr, "portholectl: %s\n", strerror(ENOMEM));
		return CX_ERROR;
	}
	if ((ex = ctlconn_connect(path, &fd)) == CX_OK &&
	    (ex = ctlconn_send(fd, path, req, m)) == CX_OK)
		ex = ctlconn_recv(fd, path, reply, m);
	if (fd != -1)
		close(fd);
	free(m);
	return ex;
}

void
ctlconn_reply_free(struct ctl_reply *reply)
{
	if (reply == NULL)
		return;
	free(reply->buf);
	reply->buf = NULL;
	reply->body = NULL;
}
