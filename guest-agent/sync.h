/*
 * sync.h: `porthole sync`, keeping the files a manifest lists up to date.
 */
#ifndef PORTHOLE_SYNC_H
#define PORTHOLE_SYNC_H

#include <stdbool.h>

#include "client.h"

#define SYNC_DEFAULT_MANIFEST	"/etc/porthole/sync.manifest"

struct sync_opts {
	const char	*endpoint;
	unsigned int	 wait_s;	/* --wait */
	bool		 quiet;		/* -q: print only failures */
	bool		 dry_run;	/* --dry-run: change nothing */
};

/*
 * Parses the whole manifest at path, then, over one connection, brings
 * each entry's LOCAL file to the host's REMOTE: unchanged files (same
 * SHA-256) are only given the manifest's mode, changed or missing ones are
 * downloaded and verified, given the mode, and their hook is run. Prints
 * one summary line per entry on standard output. A bad manifest changes
 * nothing and returns PX_USAGE. Otherwise the result is the first failed
 * entry's exit code (a failed hook counts as PX_LOCAL_IO), or PX_OK.
 */
enum px_exit sync_run(const struct sync_opts *o, const char *path);

#endif /* PORTHOLE_SYNC_H */
