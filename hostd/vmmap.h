/*
 * vmmap.h: who a vsock peer is, according to libvirt.
 *
 * Maps each vsock CID to the libvirt domain (name, UUID) whose live
 * definition carries it, and runs the `vm` admin commands. libvirt runs on
 * a thread of its own with libvirt's default event loop: it connects
 * (retrying with backoff while libvirt is unavailable), rebuilds the map on
 * every domain lifecycle event, and hands results to the loop thread
 * through a uv_async, so no libvirt call ever blocks the serving loop. The
 * loop thread reads the map without locking: it owns its copy.
 *
 * Without libvirt support in the build, or with the URI "none", the map
 * stays empty (peers are known by CID only) and the `vm` commands answer
 * UNAVAILABLE.
 *
 * Ownership: main() creates it; the server takes it over and calls
 * vmmap_close() at the end of its shutdown, then vmmap_free() after
 * uv_run() returned.
 */
#ifndef HOSTD_VMMAP_H
#define HOSTD_VMMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto.h"

struct log;
struct vmmap;
struct vmmap_req;

#define VMMAP_NAME_MAX		255
#define VMMAP_UUID_LEN		36
/* The URI that turns libvirt off. */
#define VMMAP_URI_NONE		"none"
/* Reconnect attempts back off from the first delay to the last. */
#define VMMAP_RETRY_MIN_MS	1000
#define VMMAP_RETRY_MAX_MS	30000

/* A peer's identity. */
struct vmmap_dom {
	char		 name[VMMAP_NAME_MAX + 1];
	char		 uuid[VMMAP_UUID_LEN + 1];	/* lowercase */
};

/* One domain in `vm ls`. */
struct vmmap_info {
	char		 name[VMMAP_NAME_MAX + 1];
	char		 uuid[VMMAP_UUID_LEN + 1];
	const char	*state;		/* "running", "shut off", ... */
	uint32_t	 cid;		/* from the live definition; 0: none */
	bool		 persistent;
	bool		 enabled;	/* the persistent definition (the live
					   one if transient) has a vsock */
};

enum vmmap_op {
	VMMAP_LIST = 1,		/* every domain */
	VMMAP_ENABLE,		/* add the vsock device to a definition */
	VMMAP_DISABLE,		/* remove it */
};

/* What a request came back with; valid during the callback only. */
struct vmmap_reply {
	enum ph_err	 status;	/* PH_OK, NOT_FOUND, UNAVAILABLE, ... */
	const char	*message;	/* the outcome or the error, one line */
	bool		 changed;	/* ENABLE/DISABLE changed the
					   definition */
	const struct vmmap_info *doms;	/* LIST: sorted by name */
	size_t		 ndoms;
};

typedef void (*vmmap_cb)(void *arg, const struct vmmap_reply *reply);

/*
 * Creates the map and, unless uri is NULL or "none" or libvirt support is
 * not built, starts the libvirt thread, which connects to uri. log is
 * borrowed and must outlive it. A libvirt that cannot even be set up is
 * logged, not fatal. Returns 0 and sets *out, or -ENOMEM.
 */
int	vmmap_new(uv_loop_t *loop, struct log *log, const char *uri,
	    struct vmmap **out);

/* True when the build has libvirt support. */
bool	vmmap_built(void);

/*
 * Looks up the domain with this CID in the latest map. Returns true and
 * fills out, or false when the CID is unknown (or vm is NULL).
 */
bool	vmmap_lookup(const struct vmmap *vm, uint32_t cid,
	    struct vmmap_dom *out);

/*
 * A number that changes whenever the map does, so a caller can tell
 * whether its last lookup is still current. 0 until the first map.
 */
uint64_t vmmap_generation(const struct vmmap *vm);

/*
 * One line on the libvirt connection for `status`: "connected to URI (N
 * domains with a vsock CID)", "unavailable: REASON", "disabled", "not
 * built". Into buf; returns buf.
 */
const char *vmmap_status(struct vmmap *vm, char *buf, size_t cap);

/*
 * Queues op (domain: its name or UUID; NULL for VMMAP_LIST) for the
 * libvirt thread. cb(arg, reply) runs later on the loop thread, never
 * inside this call, unless vmmap_cancel() came first. Returns 0 and sets
 * *out; -ENOTSUP when libvirt support is not built, -ENOTCONN when the
 * URI is "none", -ESHUTDOWN once closing, -ENOMEM.
 */
int	vmmap_request(struct vmmap *vm, enum vmmap_op op, const char *domain,
	    vmmap_cb cb, void *arg, struct vmmap_req **out);

/*
 * Forgets a queued request: its callback will not run. The request's
 * memory is released by the map. Accepts NULL.
 */
void	vmmap_cancel(struct vmmap *vm, struct vmmap_req *req);

/*
 * Stops the libvirt thread (waiting for the call it is in to return),
 * drops unanswered requests, and calls done(arg) once its handle is
 * closed. Accepts a map without a thread.
 */
void	vmmap_close(struct vmmap *vm, void (*done)(void *), void *arg);

/* Frees the map; only after the done callback of vmmap_close(). NULL ok. */
void	vmmap_free(struct vmmap *vm);

#endif /* HOSTD_VMMAP_H */
