/*
 * vsockdev.h: portholed as its VMs' virtio-vsock device, in user space,
 * over QEMU's vhost-user protocol (--vhost-user PATH,cid=N[,name=VM]).
 *
 * Each endpoint is a unix socket (mode 0600) that one QEMU connects to
 * (-chardev socket,path=PATH -device vhost-user-vsock-pci). The guest
 * gets CID N from us (QEMU asks with GET_CONFIG) and its connections to
 * the host's CID 2, port 7390, become ordinary client connections of the
 * server with peer "vsock:N" (",vm=VM" when named); other ports get RST.
 * When QEMU exits, the endpoint waits for the next one; a guest reset
 * drops that guest's connections; a guest that breaks the virtqueue rules
 * breaks only its own device.
 *
 * In process: every guest connection is a connection of the server whose
 * transport is the device itself (conn_new_port): the guest's bytes are
 * handed over from its mapped memory, and replies, file data included,
 * are written straight into its receive buffers, with no socket between.
 *
 * Ownership: main() creates the vsockdev, closes it on shutdown and frees
 * it after uv_run() returned.
 */
#ifndef HOSTD_VSOCKDEV_H
#define HOSTD_VSOCKDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct log;
struct server;
struct vsockdev;

#define VSOCKDEV_NAME_MAX	64

/* One --vhost-user value, parsed. */
struct vsockdev_spec {
	char		path[108];	/* the unix socket QEMU connects to */
	uint32_t	cid;		/* the guest's CID, 3 .. 0xfffffffe */
	char		name[VSOCKDEV_NAME_MAX + 1];	/* "" when unnamed */
};

/*
 * Parses "PATH,cid=N[,name=NAME]" (NAME: letters, digits, '.', '_', '-').
 * Returns 0, or -EINVAL with a one-line reason in err.
 */
int	vsockdev_parse(const char *s, struct vsockdev_spec *out, char *err,
	    size_t errlen);

/*
 * Creates the (empty) set of endpoints on loop; log and srv are borrowed
 * and must outlive it. Returns 0 and sets *out, or -ENOMEM.
 */
int	vsockdev_new(uv_loop_t *loop, struct log *log, struct server *srv,
	    struct vsockdev **out);

/*
 * Listens on the endpoint spec describes (as vsockdev_parse() takes it).
 * Returns 0, or a negative errno with a one-line reason in err: a bad
 * spec, a path or CID used twice, or a socket that cannot be made.
 */
int	vsockdev_add(struct vsockdev *vd, const char *spec, char *err,
	    size_t errlen);

/* Endpoints added. */
size_t	vsockdev_count(const struct vsockdev *vd);

/* One endpoint's state, for `portholectl status`. */
struct vsockdev_info {
	const char	*path;		/* valid while vd is */
	uint32_t	 cid;
	const char	*name;		/* "" when unnamed */
	bool		 frontend;	/* a QEMU is connected */
	bool		 running;	/* its guest driver runs the device */
	uint32_t	 connections;	/* guest connections open */
	uint64_t	 to_guest;	/* payload bytes, this QEMU session */
};

/* Fills out for endpoint i (< vsockdev_count()). */
void	vsockdev_info(const struct vsockdev *vd, size_t i,
	    struct vsockdev_info *out);

/* The endpoints as "vhost-user:PATH (cid 3, vm a), ...", into buf. */
void	vsockdev_names(const struct vsockdev *vd, char *buf, size_t cap);

/*
 * Shutdown, step one: stops accepting new QEMU connections and removes the
 * socket files; guests already connected keep their devices, so transfers
 * in flight can finish. Accepts NULL.
 */
void	vsockdev_stop(struct vsockdev *vd);

/*
 * Shutdown, last step: drops every device (and with it every guest
 * connection) and closes all handles; the loop can then end. Accepts NULL.
 */
void	vsockdev_close(struct vsockdev *vd);

/*
 * Frees everything. vsockdev_close() must have been called and uv_run()
 * must have returned. Accepts NULL.
 */
void	vsockdev_free(struct vsockdev *vd);

#endif /* HOSTD_VSOCKDEV_H */
