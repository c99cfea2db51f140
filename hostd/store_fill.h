/*
 * store_fill.h: a fill, for the transfers that follow one. A fill is a
 * file being copied into the cache (store.h says when one starts); a GET
 * that resolves to one holds a reference in its source (struct store_src)
 * and reads the bytes that landed so far, woken as more land.
 *
 * All calls on the loop thread.
 */
#ifndef HOSTD_STORE_FILL_H
#define HOSTD_STORE_FILL_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct store_fill;

/* Bytes of the file available to read from store_fill_fd() so far. */
uint64_t store_fill_available(const struct store_fill *f);

/* The temporary file, open for reading; valid while a reference is held. */
int	store_fill_fd(const struct store_fill *f);

/*
 * 0 while filling, 1 when complete (the digest is then in sha256), or -1
 * when it failed (code and msg say why).
 */
int	store_fill_status(const struct store_fill *f,
	    uint8_t sha256[PH_SHA256_LEN], enum ph_err *code, const char **msg);

/* True once a relay fill's parent said its copy was not revalidated. */
bool	store_fill_stale(const struct store_fill *f);

/* Asks for cb(arg) on the loop whenever the fill grows or ends; one
 * watcher per reference. NULL cb stops it. */
void	store_fill_watch(struct store_fill *f, void (*cb)(void *),
	    void *arg);

/* Drops a reference (and its watcher). Accepts NULL. */
void	store_fill_unref(struct store_fill *f);

#endif /* HOSTD_STORE_FILL_H */
