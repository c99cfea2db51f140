/*
 * ctlconn.h: one request on portholed's control socket.
 */
#ifndef PORTHOLE_CTLCONN_H
#define PORTHOLE_CTLCONN_H

#include <stdbool.h>
#include <stdint.h>

#include "ctlcmd.h"

#define CTLCONN_CONNECT_TIMEOUT_MS	5000
#define CTLCONN_TIMEOUT_MS		60000	/* waiting for the reply */

/* The daemon's answer; body points into buf. */
struct ctl_reply {
	uint16_t	 status;	/* enum ph_err */
	const uint8_t	*body;
	uint32_t	 body_len;
	uint8_t		*buf;		/* owned frame buffer */
};

/*
 * Connects to the unix socket at path, sends req as one CTL frame and
 * reads the CTL_REPLY (its body is JSON) into *reply. Returns CX_OK,
 * or prints a message and returns CX_UNREACHABLE (no connection, no reply),
 * CX_USAGE (bad socket path, request too large) or CX_ERROR (a malformed
 * or unexpected reply). Release *reply with ctlconn_reply_free() either way.
 */
enum cx_exit ctlconn_request(const char *path, const struct ctl_request *req,
	    struct ctl_reply *reply);

/* Frees reply's buffer. Accepts NULL. */
void	ctlconn_reply_free(struct ctl_reply *reply);

#endif /* PORTHOLE_CTLCONN_H */
