/*
 * control.h: the control socket (portholectl's side of the daemon), as
 * main() sees it; ctl.c implements it.
 *
 * A unix socket, mode 0600, that takes CTL frames and answers each with one
 * CTL_REPLY whose body is a JSON object. The commands are the table in
 * common/ctltab.h; their handlers are in ctl_*.c (see ctl.h). No
 * handshake; several requests may follow one another on a connection.
 * Anything but a well formed CTL closes that connection after a PROTOCOL
 * reply.
 *
 * Ownership: main() creates it and calls ctl_close() when stopping;
 * its memory is released by ctl_free() after uv_run() returned.
 */
#ifndef HOSTD_CONTROL_H
#define HOSTD_CONTROL_H

#include <stddef.h>
#include <uv.h>

struct control;
struct log;
struct server;
struct state;
struct vsockdev;

/*
 * Creates the socket at path (making its parent directory if missing) and
 * starts accepting. log, srv and state are borrowed and must outlive the
 * control socket. Returns 0 and sets *out, or a negative errno with a
 * one-line reason in err; *out may then still be set, to a closed control
 * socket that ctl_free() releases after uv_run().
 */
int	ctl_new(uv_loop_t *loop, struct log *log, struct server *srv,
	    struct state *state, const char *path, struct control **out,
	    char *err, size_t errlen);

/* The socket path. */
const char *ctl_path(const struct control *ctl);

/*
 * Lets `status` show the --vhost-user endpoints too; vd is borrowed and
 * must outlive the control socket. NULL: there are none.
 */
void	ctl_set_vsockdev(struct control *ctl, struct vsockdev *vd);

/*
 * Stops accepting, closes every control connection and removes the socket
 * file. Idempotent. The handles finish closing inside uv_run().
 */
void	ctl_close(struct control *ctl);

/* Frees everything; only after ctl_close() and uv_run(). NULL ok. */
void	ctl_free(struct control *ctl);

#endif /* HOSTD_CONTROL_H */
