/*
 * manifest.h: the sync manifest, the list of files `porthole sync` keeps
 * up to date. guest-agent/README.md describes the format.
 *
 * Functions return 0 or a negative errno and print nothing; on a bad
 * manifest they fill a struct manifest_error with the line and the reason.
 */
#ifndef PORTHOLE_MANIFEST_H
#define PORTHOLE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MANIFEST_MAX_BYTES	(1024 * 1024)	/* the whole file */
#define MANIFEST_MAX_LINE	8192		/* bytes, without the newline */
#define MANIFEST_MAX_ENTRIES	1024
#define MANIFEST_MAX_LOCAL	4095		/* bytes of a LOCAL path */

/* One file to keep in sync. */
struct manifest_entry {
	char		*remote;	/* normalised, relative ("etc/x") */
	char		*shown;		/* "/" + remote, for messages */
	char		*local;		/* absolute, normalised */
	uint32_t	 mode;		/* 0000 .. 0777 */
	char		*hook;		/* shell command, or NULL */
	unsigned int	 line;		/* where it was written */
};

/* Why a manifest was refused. line is 0 when no line is to blame. */
struct manifest_error {
	unsigned int	 line;
	char		 msg[256];
};

struct manifest;

/*
 * Parses len bytes of manifest text, all of it, before anything else is
 * done with it. Returns 0 with *out set (free it with manifest_free()), or
 * with *out NULL: -EINVAL for a bad manifest (err says where and why),
 * -ENOMEM.
 */
int	manifest_parse(const void *buf, size_t len, struct manifest **out,
	    struct manifest_error *err);

/*
 * Reads the regular file path (at most MANIFEST_MAX_BYTES) and parses it.
 * Returns as manifest_parse(), or another negative errno if the file
 * cannot be read (err->msg then says what failed, line 0).
 */
int	manifest_load(const char *path, struct manifest **out,
	    struct manifest_error *err);

/* The number of entries, and entry i (< count) in file order. */
size_t	manifest_count(const struct manifest *m);
const struct manifest_entry *manifest_entry(const struct manifest *m,
	    size_t i);

/* Frees m and its entries. Accepts NULL. */
void	manifest_free(struct manifest *m);

#endif /* PORTHOLE_MANIFEST_H */
