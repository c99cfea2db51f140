/*
 * upstream.h: a relay's connection to its parent daemon.
 *
 * With --upstream ENDPOINT, portholed's repository is another portholed.
 * This module keeps one persistent connection to it (HELLO with every
 * feature, PH_FEAT_ALL, and REALPATH), reconnecting with exponential backoff
 * (100 ms doubling to 5 s) whenever it drops, and runs requests on it one at a
 * time, in the order they were made (the protocol allows one request in
 * flight per connection). STAT and LIST replies are remembered for a short
 * TTL so a tree walk does not cost a round trip per name.
 *
 * Everything runs on the loop thread; callbacks are never called from
 * inside the call that started the request (always from the loop).
 */
#ifndef HOSTD_UPSTREAM_H
#define HOSTD_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "proto.h"

struct log;
struct upstream;
struct upstream_req;

/*
 * How a request ended, for every callback's status argument:
 *   0            success;
 *   -EREMOTE     the parent answered ERROR: code and message are given;
 *   -EHOSTDOWN   the parent cannot be reached (connect failed, or it is
 *                backing off after a failure): "upstream unavailable";
 *   -ECONNRESET  the connection dropped while this request was in flight;
 *   -EBADMSG     the parent broke the protocol (the connection is reset);
 *   -EILSEQ      GET only: the bytes do not match the digest (or their
 *                count does not match META/END), or a DATA_ZSTD frame
 *                does not decode (the connection is reset then):
 *                integrity error;
 *   -ETIMEDOUT   no frame from the parent for the stall timeout (30 s);
 *   -ECANCELED   upstream_free() ran first.
 * e is NULL on success and set on every failure: for -EREMOTE the parent's
 * code and message, otherwise the closest code and what happened.
 */
struct upstream_error {
	uint16_t	code;		/* enum ph_err when status is -EREMOTE */
	char		message[PH_MAX_MESSAGE + 1];
};

struct upstream_get_cbs {
	/* META arrived: the file's size, mtime, mode, and digest if the
	 * parent knew it already (else it comes with END). */
	void	(*on_meta)(void *arg, const struct ph_meta *meta);
	/* Decoded file bytes, in order, starting at the GET's offset
	 * (DATA_ZSTD frames are decompressed and size-checked first). The
	 * buffer is valid during the call only. */
	void	(*on_data)(void *arg, const uint8_t *buf, size_t len);
	/* The end: status 0 means END arrived, the byte count matched, and
	 * the SHA-256 of the whole file (of the bytes received when offset is
	 * 0, unless caller_hashes) equals END's digest and META's when META
	 * had one; sha256 is then that digest. Called exactly once, last,
	 * unless cancelled. */
	void	(*on_end)(void *arg, int status, const struct upstream_error *e,
		    const uint8_t *sha256);
};

/*
 * Where a STAT's or LIST's path really leads in the parent's repository,
 * and where the symlinks on a LIST page lead, from the parent's PATH
 * frames. known is false when the parent does not report them (it did not
 * negotiate REALPATH); then nothing else is set. real is "" when the
 * parent answered ERROR before it resolved the path. target[i] is the real
 * path of entry i of the page when it is a symlink, else NULL.
 */
struct upstream_paths {
	bool		 known;		/* real and target say where it leads */
	bool		 told;		/* the request's PATH arrived */
	char		 real[PH_MAX_PATH + 1];
	char		*target[PH_MAX_LIST_ENTRIES];
};

/* STAT result: meta valid when status is 0; paths when status is 0 or
 * -EREMOTE, else NULL. */
typedef void upstream_stat_cb(void *arg, int status,
    const struct upstream_error *e, const struct ph_meta *meta,
    const struct upstream_paths *paths);

/* LIST result: one page, as the parent sent it (its entries are valid
 * during the call only); paths as for STAT. */
typedef void upstream_list_cb(void *arg, int status,
    const struct upstream_error *e, const struct ph_list_reply *page,
    const struct upstream_paths *paths);

struct upstream_config {
	const char	*endpoint;	/* "vsock:2:7390", "unix:/path" */
	uint64_t	 meta_ttl_ms;	/* STAT/LIST memo; 0 = 2000 */
	uint64_t	 stall_ms;	/* 0 = 30000 */
	bool		 caller_hashes;	/* the caller hashes every GET's bytes
					   itself and checks them against the
					   sha256 on_end passes (a cache fill
					   does): then END's digest is passed
					   without hashing the bytes twice */
};

/*
 * Creates the client and starts connecting. Returns 0 and sets *out,
 * -EINVAL for an endpoint that does not parse, or -ENOMEM. log may be NULL
 * (connect/disconnect lines at info level otherwise).
 */
int	upstream_new(uv_loop_t *loop, const struct upstream_config *cfg,
	    struct log *log, struct upstream **out);

/* Cancels every request (callbacks with -ECANCELED), closes the handles.
 * The memory is freed once the loop has run the close callbacks. Accepts
 * NULL. */
void	upstream_free(struct upstream *u);

/* True while a connection is established and its HELLO answered. */
bool	upstream_connected(const struct upstream *u);

/* The endpoint string, for status and logs. */
const char *upstream_endpoint(const struct upstream *u);

/*
 * GET path (relative, normalised, as after ph_path_normalize) from offset,
 * asking for DATA_ZSTD. Returns 0 and sets *out (a handle for
 * upstream_cancel), -EHOSTDOWN at once when the parent is known to be
 * unreachable, or -ENOMEM.
 */
int	upstream_get(struct upstream *u, const char *path, uint64_t offset,
	    const struct upstream_get_cbs *cbs, void *arg,
	    struct upstream_req **out);

/*
 * Makes a GET that upstream_get() just returned carry PH_GET_REVERIFY, when
 * the parent offers it: our requester found the bytes damaged, so the
 * parent is asked to re-check its cached copy before it sends it.
 */
void	upstream_get_reverify(struct upstream_req *r);

/* STAT path; answered from the memo when fresh. Same returns. */
int	upstream_stat(struct upstream *u, const char *path,
	    upstream_stat_cb *cb, void *arg, struct upstream_req **out);

/* LIST path from cursor; answered from the memo when fresh. */
int	upstream_list(struct upstream *u, const char *path, uint64_t cursor,
	    upstream_list_cb *cb, void *arg, struct upstream_req **out);

/* Withdraws a request: no callback follows. A GET already streaming is
 * cut by resetting the connection (it reconnects at once). Accepts NULL. */
void	upstream_cancel(struct upstream_req *r);

/* Forgets memoised STAT/LIST replies (SIGHUP, `repo scan`). */
void	upstream_forget(struct upstream *u);

#endif /* HOSTD_UPSTREAM_H */
