/*
 * dest.h: the local side of a download.
 *
 * Bytes go to NAME.part next to the final NAME; only dest_commit() puts
 * them under NAME, by rename after fsync, so NAME never holds a partial
 * file. "-" writes to standard output instead, with no temporary file.
 * Functions return 0 or a negative errno and print nothing.
 */
#ifndef PORTHOLE_DEST_H
#define PORTHOLE_DEST_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct dest;

/*
 * Prepares to write local ("-" for standard output): opens or creates
 * LOCAL.part in local's directory and locks it against other porthole runs.
 * With resume its contents are kept, to be replayed by dest_read_part() and
 * continued; without, they are discarded. Returns 0 with *out set, or a
 * negative errno with *out NULL: -EISDIR if local names a directory,
 * -EINVAL if LOCAL.part is not a regular file, -EBUSY if another run holds
 * it, -ELOOP if it is a symlink.
 */
int	dest_open(const char *local, bool resume, struct dest **out);

/* True when writing to standard output. */
bool	dest_is_stdout(const struct dest *d);

/* The temporary file's path as the user would write it ("dir/x.part"). */
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

/* Appends len bytes. 0 or -errno. */
int	dest_write(struct dest *d, const void *buf, size_t len);

/*
 * Finishes a verified file: sets mode (& 0777) and mtime, fsyncs it,
 * renames LOCAL.part to LOCAL and fsyncs the directory. For standard output
 * it does nothing. 0 or -errno; on failure LOCAL is untouched unless only
 * the final directory fsync failed.
 */
int	dest_commit(struct dest *d, uint32_t mode, int64_t mtime_ns);

/*
 * Releases d. An uncommitted LOCAL.part is removed unless keep_part is set
 * and it holds at least one byte (worth resuming). Accepts NULL.
 */
void	dest_close(struct dest *d, bool keep_part);

#endif /* PORTHOLE_DEST_H */
