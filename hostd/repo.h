/*
 * repo.h: the repository directory, and every open beneath it.
 *
 * All paths here are already normalised by ph_path_normalize() (relative,
 * no '..', "." for the root). A path without symlinks is opened in one
 * openat2() with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS. A path with one is
 * walked a component at a time (O_NOFOLLOW, each name opened relative to
 * the directory found before it), following symlinks only while they stay
 * inside, as RESOLVE_BENEATH would. Either way the lookup yields the
 * object and its real path in the repository ("real" below: what access
 * rules are checked on, since "alias/key.txt" may be "secret/key.txt"),
 * and that path names exactly the object opened. A hard link cannot be
 * told from the file: it has the path it was looked up by. Errors are
 * negative errnos; -EXDEV and -ELOOP mean the path tried to leave the
 * repository (or looped).
 *
 * Where real is an argument it may be NULL; otherwise it receives the real
 * path ("." for the root) on success and, on failure, the path as far as
 * it resolved followed by the name that failed, so a caller can refuse to
 * say even "not found" about a place it may not show.
 *
 * Blocking file-system calls: these run on the event loop thread and are
 * limited to metadata (open, fstat, getdents); file contents are read
 * elsewhere.
 */
#ifndef HOSTD_REPO_H
#define HOSTD_REPO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto.h"

struct repo;
struct repo_dir;

/*
 * Opens the repository directory at the absolute path. Checks that it is a
 * directory the daemon can read and search, and that /proc/self/fd works
 * (files are opened through it). Returns 0 and sets *out, or -ENOENT,
 * -ENOTDIR, -EACCES, -ENOSYS (no /proc), -ENOMEM or another -errno. Free
 * with repo_free().
 */
int	repo_open(const char *path, struct repo **out);

/* Closes the directory and frees r. Accepts NULL. */
void	repo_free(struct repo *r);

/* The path the repository was opened with. */
const char *repo_path(const struct repo *r);

/*
 * Looks up rel without opening it for reading (no side effects on devices
 * or FIFOs) and fills *st and real. Returns 0 or a negative errno.
 */
int	repo_stat(struct repo *r, const char *rel, struct stat *st,
	    char real[PH_MAX_PATH + 1]);

/*
 * Opens the regular file rel for reading. It is looked up through O_PATH
 * and that descriptor is reopened (/proc/self/fd), so the object checked
 * is the object opened: a device node or FIFO renamed over the file in
 * between is never opened. On success *fdp is a read-only, non-blocking,
 * close-on-exec descriptor the caller owns, *st its fstat and real its
 * path. Returns -EISDIR for a directory and -ENODEV for anything else that
 * is not a regular file, or another negative errno. *fdp is -1 on failure.
 */
int	repo_open_file(struct repo *r, const char *rel, int *fdp,
	    struct stat *st, char real[PH_MAX_PATH + 1]);

/*
 * Reads the directory rel: its names, filtered (no "." or "..", none over
 * PH_MAX_NAME bytes, none that path normalisation would change) and sorted
 * by their bytes, and the directory's real path in real. Returns 0 and
 * sets *out, or -ENOTDIR and other negative errnos. The result keeps the
 * directory open for repo_dir_entry(). Free with repo_dir_free().
 */
int	repo_dir_read(struct repo *r, const char *rel, struct repo_dir **out,
	    char real[PH_MAX_PATH + 1]);

/* Frees a listing. Accepts NULL. */
void	repo_dir_free(struct repo_dir *d);

/* The number of names in the listing. */
size_t	repo_dir_count(const struct repo_dir *d);

/*
 * Fills e for entry i (i < repo_dir_count()). A symlink is described by
 * what it leads to, resolved beneath the repository; one that leads outside,
 * loops or dangles is PH_FT_OTHER with size 0, mode 0 and the link's own
 * mtime, so nothing about an outside file is revealed. target (may be
 * NULL) is "" for an entry that is not a symlink and otherwise the real
 * path the link leads to (on failure: as far as it resolved). Returns 0,
 * or -ENOENT if the entry vanished since the listing was read.
 */
int	repo_dir_entry(struct repo_dir *d, size_t i, struct ph_list_entry *e,
	    char target[PH_MAX_PATH + 1]);

/* The PH_FT_* type for a stat mode. */
uint8_t	repo_ftype(mode_t mode);

/* Nanoseconds since the epoch of a timestamp. */
int64_t	repo_ns(const struct timespec *ts);

#endif /* HOSTD_REPO_H */
