/*
 * dest.h: the local side of a download.
 *
 * Bytes go to NAME.part next to the final NAME; only dest_rename() puts
 * them under NAME, once they are durable, so NAME never holds a partial
 * file. "-" writes to standard output instead, with no temporary file,
 * and so does a NAME that is a device or a FIFO (a stream): it is written
 * into, like a shell redirection, with no .part, no rename and no sync,
 * and is never unlinked or replaced. Functions return 0 or a negative
 * errno and print nothing.
 */
#ifndef PORTHOLE_DEST_H
#define PORTHOLE_DEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct dest;

/*
 * Prepares to write local ("-" for standard output). When local exists
 * and is a device or a FIFO (not a regular file, directory or symlink),
 * opens it for writing (a FIFO: waiting for a reader) as a stream, the
 * type checked on the object opened. Otherwise opens or creates
 * LOCAL.part in local's directory and locks it against other porthole
 * runs. With resume its contents are kept, to be replayed by
 * dest_read_part() and continued; without, they are discarded (a stream
 * has nothing to resume). Returns 0 with *out set, or a negative errno
 * with *out NULL: -EISDIR if local names a directory, -EINVAL if
 * LOCAL.part is not a regular file, -EBUSY if another run holds it, -ELOOP
 * if it is a symlink, -ESTALE if local was replaced while it was opened.
 */
int	dest_open(const char *local, bool resume, struct dest **out);

/* True when writing to standard output. */
bool	dest_is_stdout(const struct dest *d);

/* True for a stream: standard output, or a LOCAL that is a device or a
 * FIFO. Bytes written to it cannot be taken back. */
bool	dest_is_stream(const struct dest *d);

/*
 * The temporary file's path as the user would write it ("dir/x.part"); for
 * a stream, local itself ("-" for standard output).
 */
const char *dest_part_path(const struct dest *d);

/*
 * Reads up to cap bytes of LOCAL.part at offset off. Returns the count, 0
 * at its end (always, for standard output), or -errno.
 */
ssize_t	dest_read_part(struct dest *d, uint64_t off, void *buf, size_t cap);

/*
 * Starts writing at offset: LOCAL.part is cut to offset bytes, which it
 * must still hold (else -ESTALE), and the next write lands there. 0 or
 * -errno.
 */
int	dest_begin(struct dest *d, uint64_t offset);

/*
 * Appends len bytes: with write(), or with send() when standard output is
 * a socket (decided once, in dest_open()). Every 8 MiB of LOCAL.part are
 * handed to the disk at once, without waiting. 0 or -errno.
 */
int	dest_write(struct dest *d, const void *buf, size_t len);

/*
 * Durability. A verified file is made durable before it gets its name, and
 * the name is made durable before porthole exits 0:
 *
 *   dest_finish()              mode and mtime
 *   dest_sync()                fsync: the data and inode are on disk; or,
 *   dest_syncfs() once,        for a group of files, one syncfs() per file
 *     then dest_check_written()  system (one cache flush for the group, not
 *     on each file               one per file) and each file's own write
 *                              errors, which syncfs() reports only since
 *                              Linux 5.8
 *   dest_rename()              LOCAL.part -> LOCAL, still under the lock
 *   dest_dirsync_run()              fsync each directory that got a new name
 *
 * What is guaranteed: LOCAL never names part of a file, even after a
 * crash: it is what it was before (or nothing), or the whole verified new
 * file, whose data and inode were on disk before the rename. A crash after
 * the rename but before the directory's fsync may find the old LOCAL (and
 * the complete LOCAL.part) again. Once porthole exits 0, every file's data
 * and name are on disk. Writing back starts during dest_write() for large
 * files. A stream (standard output, a device, a FIFO) skips all of it.
 */

/* Sets mode (& 0777) and mtime. 0 or -errno. */
int	dest_finish(struct dest *d, uint32_t mode, int64_t mtime_ns);

/* fsync()s LOCAL.part. 0 or -errno. */
int	dest_sync(struct dest *d);

/*
 * After dest_syncfs(): the first write error on LOCAL.part since it was
 * opened, if any. 0 or -errno.
 */
int	dest_check_written(struct dest *d);

/* syncfs() of the file system holding d. 0 or -errno. */
int	dest_syncfs(struct dest *d);

/* True when a and b are on the same file system (one syncfs covers both). */
bool	dest_same_fs(const struct dest *a, const struct dest *b);

/*
 * Directories whose new names still need an fsync, at most DIRSYNC_MAX
 * (more are synced at once by dest_rename()).
 */
#define DIRSYNC_MAX	32
struct dirsync;

/* An empty set; NULL when out of memory. */
struct dirsync *dest_dirsync_new(void);

/*
 * fsyncs every directory in ds and empties it. Returns 0, or the first
 * error with that directory's path copied to failed (cap bytes).
 */
int	dest_dirsync_run(struct dirsync *ds, char *failed, size_t cap);

/* Frees ds without syncing. Accepts NULL. */
void	dest_dirsync_free(struct dirsync *ds);

/*
 * Renames LOCAL.part to LOCAL; call it once the data is durable. A LOCAL
 * that has become anything but a regular file or a symlink since
 * dest_open() is left alone: -EEXIST. The directory's fsync is left to
 * dest_dirsync_run() on ds, or done here when ds is NULL or full. 0 or -errno;
 * once the rename is done, d counts as committed even if the directory's
 * fsync then fails.
 */
int	dest_rename(struct dest *d, struct dirsync *ds);

/*
 * Releases d. An uncommitted LOCAL.part is removed unless keep_part is set
 * and it holds at least one byte (worth resuming). Accepts NULL.
 */
void	dest_close(struct dest *d, bool keep_part);

#endif /* PORTHOLE_DEST_H */
