/*
 * client.h: one porthole connection to portholed, and the exit codes of
 * the porthole command.
 *
 * Convention in the porthole CLI: functions that run a command, or a step
 * of one, print their own one-line message to stderr and return an exit
 * code (enum px_exit, PX_OK on success). Helpers below that level (dest.c,
 * fmt.c) return 0 or a negative errno and print nothing.
 */
#ifndef PORTHOLE_CLIENT_H
#define PORTHOLE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* porthole exit codes; `porthole --help` documents them. */
enum px_exit {
	PX_OK		= 0,
	PX_REMOTE	= 1,	/* other remote error (IO, INTERNAL, ...) */
	PX_USAGE	= 2,	/* bad command line, or BAD_PATH */
	PX_NOT_FOUND	= 3,	/* NOT_FOUND, NOT_FILE, NOT_DIR */
	PX_FORBIDDEN	= 4,	/* FORBIDDEN, PATH_ESCAPE */
	PX_BUSY		= 5,	/* the host's queue is full */
	PX_CONN		= 6,	/* cannot connect, protocol error, lost */
	PX_INTEGRITY	= 7,	/* digest mismatch, CHANGED, INTEGRITY */
	PX_LOCAL_IO	= 8,	/* writing the local file failed */
};

#define CLIENT_CONNECT_TIMEOUT_MS	5000	/* one try */
#define CLIENT_IO_TIMEOUT_MS		60000	/* without a single byte */

/*
 * --wait: seconds to keep trying while the host is not listening yet or
 * turns requests away as BUSY. CLIENT_WAIT_MAX keeps milliseconds in 32
 * bits.
 */
#define CLIENT_WAIT_DEFAULT		60
#define CLIENT_WAIT_MAX			4294967

struct backoff;
struct client;

/* The exit code for an error code from an ERROR frame. */
enum px_exit client_exit_for(unsigned int ph_err);

/*
 * Normalises a repository path typed by the user (ph_path_normalize) into
 * norm, relative or "." for the root, and shown, the same with a leading
 * '/' for messages. Prints and returns PX_USAGE (BAD_PATH) or PX_FORBIDDEN
 * (PATH_ESCAPE) for a path the server would refuse anyway.
 */
enum px_exit client_path(const char *arg, char norm[PH_MAX_PATH + 1],
	    char shown[PH_MAX_PATH + 2]);

/*
 * Makes a client for endpoint (a string as the user gave it, also used in
 * messages) that will offer features (PH_FEAT_*) and keep trying for up to
 * wait_s seconds (--wait, at most CLIENT_WAIT_MAX; 0: fail at once) each
 * time the host cannot be reached yet or is busy; nothing is connected
 * yet. Allocates the buffer replies are read into. Returns PX_OK with *out
 * set, or prints why not (a bad endpoint: PX_USAGE) and returns an exit
 * code with *out NULL. Free *out with client_close().
 */
enum px_exit client_new(const char *endpoint, uint32_t features,
	    unsigned int wait_s, struct client **out);

/*
 * Connects and exchanges HELLO / HELLO_ACK, unless c is connected and not
 * broken already; a broken connection is replaced by a new one. A connect
 * that is refused or times out, a unix socket that is not there yet and a
 * BUSY answer to HELLO are tried again (client_wait_more()) until c's wait
 * is over. Returns PX_OK, or prints why not (the last try's failure) and
 * returns an exit code (c stays broken).
 */
enum px_exit client_connect(struct client *c);

/* client_new() and client_connect() in one; *out is NULL on failure. */
enum px_exit client_open(const char *endpoint, uint32_t features,
	    unsigned int wait_s, struct client **out);

/* True when m is an ERROR BUSY: the host turned the request away. */
bool	client_reply_busy(const struct ph_msg *m);

/*
 * Called after a try the host turned away (BUSY, or not listening): while
 * c's wait, which starts at the first call with a zeroed b, has time
 * left, pauses (exponential backoff with jitter, see backoff.h) and
 * returns true: try again. The first pause of c prints "porthole: host
 * busy, retrying" when stderr is a terminal. Returns false, without a
 * pause, once the wait is over; after one wait ran out, the next ones end
 * at once until the host answers a request again.
 */
bool	client_wait_more(struct client *c, struct backoff *b);

/*
 * Sends the request m (STAT, LIST, PING: one reply frame) and receives its
 * reply into m, connecting first if needed (client_connect()). A BUSY
 * reply is sent again, as long as client_wait_more() allows, from a copy
 * kept in c. Returns PX_OK with the reply in m (an ERROR too, BUSY
 * included once the wait is over: the caller reports it), or prints the
 * failure and returns its exit code as client_send() and client_recv() do.
 */
enum px_exit client_request(struct client *c, struct ph_msg *m);

/*
 * Gives c a progress line to erase before it prints a message, so errors
 * never land in the middle of a bar. p may be NULL; c does not own it.
 */
struct progress;
void	client_set_progress(struct client *c, struct progress *p);

/* Closes the connection and frees c. Accepts NULL. */
void	client_close(struct client *c);

/* The negotiated protocol version, features and the server's agent. */
uint16_t client_version(const struct client *c);
uint32_t client_features(const struct client *c);
const char *client_server_agent(const struct client *c);
const char *client_endpoint(const struct client *c);

/*
 * True once the connection cannot carry another request: it was lost, the
 * server closed it, or a reply stream was abandoned half way.
 */
bool	client_is_broken(const struct client *c);

/* Marks c unusable, e.g. after giving up on a reply stream mid-way. */
void	client_set_broken(struct client *c);

/*
 * Sends one request. Returns PX_OK, or prints the error, marks c broken and
 * returns PX_CONN.
 */
enum px_exit client_send(struct client *c, const struct ph_msg *m);

/*
 * Receives one reply frame into c's buffer and decodes it into m; pointers
 * in m stay valid until the next client_recv(). Returns PX_OK, or prints
 * the error (connection lost, timeout, malformed frame), marks c broken and
 * returns PX_CONN.
 */
enum px_exit client_recv(struct client *c, struct ph_msg *m);

/*
 * client_recv(), except that the payload of a DATA frame is stored in data
 * (cap bytes; PH_DATA_CHUNK holds any) instead of c's buffer, and
 * m->u.data.bytes points there: the caller owns those bytes, which outlive
 * the next client_recv(). Any other frame, or a DATA frame larger than cap,
 * is received as by client_recv(). data may be NULL.
 */
enum px_exit client_recv_data(struct client *c, struct ph_msg *m,
	    uint8_t *data, size_t cap);

/*
 * Prints an ERROR frame about subject as "porthole: SUBJECT: MESSAGE
 * (CODE)" and returns its exit code. Codes after which the server closes
 * the connection mark c broken.
 */
enum px_exit client_remote_error(struct client *c, const char *subject,
	    const struct ph_error *e);

/*
 * Prints "porthole: ENDPOINT: protocol error: ..." for a reply that breaks
 * the protocol, marks c broken and returns PX_CONN.
 */
enum px_exit client_protocol_error(struct client *c, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * Prints an unexpected reply (an ERROR frame is reported as itself) for a
 * request about subject and returns the exit code; see above.
 */
enum px_exit client_unexpected(struct client *c, const char *subject,
	    const struct ph_msg *m);

#endif /* PORTHOLE_CLIENT_H */
