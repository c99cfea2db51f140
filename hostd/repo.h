/*
 * repo.h: the repository directory, and every open beneath it.
 *
 * All paths here are already normalised by ph_path_normalize() (relative,
 * no '..', "." for the root). Resolution uses openat2() with
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS so no symlink can lead outside;
 * on kernels without openat2 a component walk that refuses every symlink
 * takes its place. Errors are negative errnos; -EXDEV and -ELOOP mean the
 * path tried to leave the repository.
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
 * directory the daemon can read and search. Returns 0 and sets *out, or
 * -ENOENT, -ENOTDIR, -EACCES, -ENOMEM or another -errno. Free with
 * repo_free().
 */
int	repo_open(const char *path, struct repo **out);

/* Closes the directory and frees r. Accepts NULL. */
void	repo_free(struct repo *r);

/* The path the repository was opened with. */
const char *repo_path(const struct repo *r);

/*
 * Looks up rel without opening it for reading (no side effects on devices
 * or FIFOs) and fills *st. Returns 0 or a negative errno.
 */
int	repo_stat(struct repo *r, const char *rel, struct stat *st);

/*
 * Opens the regular file rel for reading. On success *fdp is a read-only,
 * close-on-exec descriptor the caller owns and *st its fstat. Returns
 * -EISDIR for a directory and -ENODEV for anything else that is not a
 * regular file, or another negative errno. *fdp is -1 on failure.
 */
int	repo_open_file(struct repo *r, const char *rel, int *fdp,
	    struct stat *st);

/*
 * Reads the directory rel: its names, filtered (no "." or "..", none over
 * PH_MAX_NAME bytes, none that path normalisation would change) and sorted
 * by their bytes. Returns 0 and sets *out, or -ENOTDIR and other negative
 * errnos. The result keeps the directory open for repo_dir_entry(). Free
 * with repo_dir_free().
 */
int	repo_dir_read(struct repo *r, const char *rel, struct repo_dir **out);

/* Frees a listing. Accepts NULL. */
void	repo_dir_free(struct repo_dir *d);

/* The number of names in the listing. */
size_t	repo_dir_count(const struct repo_dir *d);

/*
 * Fills e for entry i (i < repo_dir_count()). A symlink is described by
 * what it leads to, resolved beneath the repository; one that leads outside,
 * loops or dangles is PH_FT_OTHER with size 0, mode 0 and the link's own
 * mtime, so nothing about an outside file is revealed. Returns 0, or
 * -ENOENT if the entry vanished since the listing was read.
 */
int	repo_dir_entry(struct repo_dir *d, size_t i, struct ph_list_entry *e);

/* The PH_FT_* type for a stat mode. */
uint8_t	repo_ftype(mode_t mode);

/* Nanoseconds since the epoch of a timestamp. */
int64_t	repo_ns(const struct timespec *ts);

#endif /* HOSTD_REPO_H */
