/*
 * dest.c: the local side of a download (write NAME.part, rename to NAME).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest.h"
#include "proto.h"

#define PART_SUFFIX	".part"

/*
 * A large file's bytes are handed to the disk every this many bytes while
 * the download goes on, so that the sync at the end finds little left to
 * write instead of the whole file. Smaller files are left to that sync,
 * which writes a group's files together.
 */
#define DEST_WRITEBACK	(8 * 1024 * 1024)

struct dest {
	bool	 is_stdout;
	bool	 stream;	/* stdout, or LOCAL is a device or FIFO */
	bool	 is_sock;	/* standard output is a socket */
	bool	 committed;
	bool	 have_part;	/* LOCAL.part is ours, locked */
	int	 dirfd;		/* the directory holding LOCAL */
	int	 fd;		/* LOCAL.part, flocked; or the stream */
	dev_t	 dev;		/* LOCAL.part's file system */
	uint64_t written;	/* LOCAL.part's size while writing */
	uint64_t wb_start;	/* bytes before it are being written back */
	char	*dir;		/* the directory as given, for messages */
	char	*name;		/* LOCAL's last component */
	char	*part_name;	/* NAME.part, relative to dirfd */
	char	*part_path;	/* LOCAL.part (a stream: LOCAL) as given */
};

struct dirsync_dir {
	dev_t	 dev;
	ino_t	 ino;
	int	 fd;
	char	*path;
};

struct dirsync {
	size_t			n;
	struct dirsync_dir	dir[DIRSYNC_MAX];
};

/*
 * Splits local into its directory (opened as *dirfd, its path in *dirp)
 * and last component, which must be a real file name.
 */
static int
dest_open_parent(const char *local, int *dirfd, char **dirp, char **name)
{
	const char *slash, *base;
	char *dir = NULL;
	int rc = 0;

	*dirfd = -1;
	*dirp = NULL;
	*name = NULL;
	slash = strrchr(local, '/');
	base = slash != NULL ? slash + 1 : local;
	/* "x/", "x/." and "x/.." name directories, not files. */
	if (*base == '\0' || strcmp(base, ".") == 0 ||
	    strcmp(base, "..") == 0)
		return -EISDIR;
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == local)
		dir = strdup("/");
	else
		dir = strndup(local, (size_t)(slash - local));
	if (dir == NULL || (*name = strdup(base)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd == -1) {
		rc = -errno;
		free(*name);
		*name = NULL;
		goto out;
	}
	*dirp = dir;
	dir = NULL;
out:
	free(dir);
	return rc;
}

/*
 * Opens LOCAL.part, creating it if needed, and takes an exclusive flock on
 * it, so that two porthole runs aimed at the same LOCAL never write into
 * or rename each other's file: the second gets -EBUSY. Only the holder of
 * the lock on the inode that NAME.part names changes that name, which is
 * why the name is checked again once the lock is held. Unless keep, the
 * contents are discarded.
 */
static int
dest_open_part_locked(struct dest *d, bool keep)
{
	struct stat st, named;
	int attempt;

	for (attempt = 0; attempt < 3; attempt++) {
		/* O_NONBLOCK so that a FIFO planted here cannot hang us. */
		d->fd = openat(d->dirfd, d->part_name, O_RDWR | O_CREAT |
		    O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
		if (d->fd == -1)
			return -errno;
		if (fstat(d->fd, &st) == -1)
			return -errno;
		if (!S_ISREG(st.st_mode))
			return -EINVAL;
		d->dev = st.st_dev;
		if (flock(d->fd, LOCK_EX | LOCK_NB) == -1)
			return errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (fstatat(d->dirfd, d->part_name, &named,
		    AT_SYMLINK_NOFOLLOW) == 0 && named.st_dev == st.st_dev &&
		    named.st_ino == st.st_ino) {
			d->have_part = true;
			/* named is fresh: taken under the lock. */
			if (!keep && named.st_size != 0 &&
			    ftruncate(d->fd, 0) == -1)
				return -errno;
			return 0;
		}
		/* Renamed or removed by the run that held it: start over. */
		close(d->fd);
		d->fd = -1;
	}
	return -EBUSY;
}

/*
 * When LOCAL is there and is neither a regular file, a directory nor a
 * symlink (a device, a FIFO), opens it for writing as d's stream and
 * returns 1: the bytes go into it, as with a shell redirection, and it is
 * never replaced. Returns 0 when LOCAL is missing, a regular file or a
 * symlink (replaced by the rename, as always), or -errno. The type is
 * that of the object opened, not of a name looked up before: it is
 * checked on an O_PATH descriptor, and the descriptor opened for writing
 * must be the same inode.
 */
static int
dest_open_special(struct dest *d)
{
	struct stat st, wst;
	int pfd, flags, rc = 0;

	pfd = openat(d->dirfd, d->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd == -1)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(pfd, &st) == -1) {
		rc = -errno;
		goto out;
	}
	if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
		goto out;
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	/*
	 * A FIFO waits for its reader, as a shell redirection does; nothing
	 * else may block the open (a tty that waits for carrier).
	 */
	flags = O_WRONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC;
	if (!S_ISFIFO(st.st_mode))
		flags |= O_NONBLOCK;
	do
		d->fd = openat(d->dirfd, d->name, flags);
	while (d->fd == -1 && errno == EINTR);
	if (d->fd == -1) {
		rc = -errno;
		goto out;
	}
	if (fstat(d->fd, &wst) == -1 || fcntl(d->fd, F_SETFL,
	    fcntl(d->fd, F_GETFL) & ~O_NONBLOCK) == -1) {
		rc = -errno;
		goto out;
	}
	/* Replaced between the two opens: write into nothing we did not see. */
	if (wst.st_dev != st.st_dev || wst.st_ino != st.st_ino) {
		rc = -ESTALE;
		goto out;
	}
	d->stream = true;
	d->dev = wst.st_dev;
	rc = 1;
out:
	close(pfd);
	return rc;
}

int
dest_open(const char *local, bool resume, struct dest **out)
{
	struct stat st;
	struct dest *d;
	int rc;

	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->dirfd = -1;
	d->fd = -1;
	if (strcmp(local, "-") == 0) {
		d->is_stdout = d->stream = true;
		d->fd = STDOUT_FILENO;
		/* Decided once: only a socket needs send()'s MSG_NOSIGNAL. */
		d->is_sock = fstat(d->fd, &st) == 0 && S_ISSOCK(st.st_mode);
		*out = d;
		return 0;
	}
	if ((rc = dest_open_parent(local, &d->dirfd, &d->dir, &d->name)) < 0)
		goto fail;
	if ((rc = dest_open_special(d)) != 0) {
		if (rc < 0 || (d->part_path = strdup(local)) == NULL) {
			rc = rc < 0 ? rc : -ENOMEM;
			goto fail;
		}
		*out = d;
		return 0;
	}
	if (asprintf(&d->part_name, "%s" PART_SUFFIX, d->name) == -1 ||
	    asprintf(&d->part_path, "%s" PART_SUFFIX, local) == -1) {
		d->part_name = d->part_path = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = dest_open_part_locked(d, resume)) < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	dest_close(d, true);
	return rc;
}

bool
dest_is_stdout(const struct dest *d)
{
	return d->is_stdout;
}

bool
dest_is_stream(const struct dest *d)
{
	return d->stream;
}

const char *
dest_part_path(const struct dest *d)
{
	return d->is_stdout ? "-" : d->part_path;
}

ssize_t
dest_read_part(struct dest *d, uint64_t off, void *buf, size_t cap)
{
	ssize_t n;

	if (d->stream || d->fd == -1)
		return 0;
	do
		n = pread(d->fd, buf, cap, (off_t)off);
	while (n == -1 && errno == EINTR);
	return n == -1 ? -errno : n;
}

int
dest_begin(struct dest *d, uint64_t offset)
{
	struct stat st;

	if (d->stream)
		return 0;
	/* Someone shortened the .part since it was hashed. */
	if (fstat(d->fd, &st) == -1)
		return -errno;
	if ((uint64_t)st.st_size < offset)
		return -ESTALE;
	if (((uint64_t)st.st_size != offset &&
	    ftruncate(d->fd, (off_t)offset) == -1) ||
	    lseek(d->fd, (off_t)offset, SEEK_SET) == -1)
		return -errno;
	d->written = d->wb_start = offset;
	return 0;
}

int
dest_write(struct dest *d, const void *buf, size_t len)
{
	int rc;

	if (d->fd == -1)
		return -EBADF;
	if (d->is_sock)
		return ph_io_write_all(d->fd, buf, len);
	if ((rc = ph_io_write_full(d->fd, buf, len)) < 0)
		return rc;
	d->written += len;
	if (!d->stream && d->written - d->wb_start >= DEST_WRITEBACK) {
		/*
		 * Start writing back, without waiting; errors surface in
		 * the sync that makes the file durable.
		 */
		(void)sync_file_range(d->fd, (off_t)d->wb_start,
		    (off_t)(d->written - d->wb_start), SYNC_FILE_RANGE_WRITE);
		d->wb_start = d->written;
	}
	return 0;
}

int
dest_finish(struct dest *d, uint32_t mode, int64_t mtime_ns)
{
	struct timespec ts[2];

	if (d->stream)
		return 0;
	if (d->fd == -1)
		return -EBADF;
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	/* Floor division keeps tv_nsec in range for times before 1970. */
	ts[1].tv_sec = (time_t)(mtime_ns / 1000000000);
	ts[1].tv_nsec = (long)(mtime_ns % 1000000000);
	if (ts[1].tv_nsec < 0) {
		ts[1].tv_sec--;
		ts[1].tv_nsec += 1000000000;
	}
	if (fchmod(d->fd, mode & 0777) == -1 || futimens(d->fd, ts) == -1)
		return -errno;
	return 0;
}

int
dest_sync(struct dest *d)
{
	if (d->stream)
		return 0;
	return fsync(d->fd) == -1 ? -errno : 0;
}

int
dest_check_written(struct dest *d)
{
	if (d->stream)
		return 0;
	/*
	 * Waits for writeback already under way (none, after a syncfs) and
	 * reports a write error seen on this file since it was opened.
	 */
	if (sync_file_range(d->fd, 0, 0, SYNC_FILE_RANGE_WAIT_AFTER) == -1 &&
	    errno != EINVAL && errno != ESPIPE && errno != ENOSYS)
		return -errno;
	return 0;
}

int
dest_syncfs(struct dest *d)
{
	if (d->stream)
		return 0;
	return syncfs(d->fd) == -1 ? -errno : 0;
}

bool
dest_same_fs(const struct dest *a, const struct dest *b)
{
	/* A stream syncs nothing, so it covers no file's syncfs(). */
	return !a->stream && !b->stream && a->dev == b->dev;
}

struct dirsync *
dest_dirsync_new(void)
{
	return calloc(1, sizeof(struct dirsync));
}

/*
 * Remembers d's directory in ds unless it is there already. False when it
 * cannot (ds full, out of fds or memory): the caller syncs it at once.
 */
static bool
dest_dirsync_add(struct dirsync *ds, const struct dest *d)
{
	struct dirsync_dir *e;
	struct stat st;
	size_t i;

	if (fstat(d->dirfd, &st) == -1)
		return false;
	for (i = 0; i < ds->n; i++)
		if (ds->dir[i].dev == st.st_dev && ds->dir[i].ino == st.st_ino)
			return true;
	if (ds->n == DIRSYNC_MAX)
		return false;
	e = &ds->dir[ds->n];
	if ((e->path = strdup(d->dir)) == NULL)
		return false;
	if ((e->fd = fcntl(d->dirfd, F_DUPFD_CLOEXEC, 0)) == -1) {
		free(e->path);
		e->path = NULL;
		return false;
	}
	e->dev = st.st_dev;
	e->ino = st.st_ino;
	ds->n++;
	return true;
}

int
dest_dirsync_run(struct dirsync *ds, char *failed, size_t cap)
{
	int rc = 0;
	size_t i;

	if (cap > 0)
		failed[0] = '\0';
	for (i = 0; i < ds->n; i++) {
		if (fsync(ds->dir[i].fd) == -1 && rc == 0) {
			rc = -errno;
			snprintf(failed, cap, "%s", ds->dir[i].path);
		}
		close(ds->dir[i].fd);
		free(ds->dir[i].path);
	}
	ds->n = 0;
	return rc;
}

void
dest_dirsync_free(struct dirsync *ds)
{
	size_t i;

	if (ds == NULL)
		return;
	for (i = 0; i < ds->n; i++) {
		close(ds->dir[i].fd);
		free(ds->dir[i].path);
	}
	free(ds);
}

/*
 * Renames LOCAL.part (still locked, so the name is still our inode's) to
 * LOCAL, which dest_open() found missing, a regular file or a symlink.
 * Anything else that has appeared there since (a device, a FIFO) is never
 * replaced: -EEXIST. RENAME_NOREPLACE makes that exact while LOCAL does not
 * exist; an existing LOCAL is checked just before it is replaced.
 */
static int
dest_rename_over(struct dest *d)
{
	struct stat st;

	if (renameat2(d->dirfd, d->part_name, d->dirfd, d->name,
	    RENAME_NOREPLACE) == 0)
		return 0;
	/* EINVAL, ENOSYS: a file system or kernel without the flag. */
	if (errno != EEXIST && errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (fstatat(d->dirfd, d->name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return -EEXIST;
	if (renameat(d->dirfd, d->part_name, d->dirfd, d->name) == -1)
		return -errno;
	return 0;
}

int
dest_rename(struct dest *d, struct dirsync *ds)
{
	int rc;

	if (d->stream)
		return 0;
	if (d->fd == -1)
		return -EBADF;
	if ((rc = dest_rename_over(d)) < 0)
		return rc;
	d->committed = true;
	if (ds != NULL && dest_dirsync_add(ds, d))
		return 0;
	if (fsync(d->dirfd) == -1)
		return -errno;
	return 0;
}

void
dest_close(struct dest *d, bool keep_part)
{
	struct stat st;

	if (d == NULL)
		return;
	if (!d->is_stdout) {
		/*
		 * Unlink before close: only the lock holder owns the name. A
		 * stream has no .part (have_part is false).
		 */
		if (d->have_part && !d->committed && (!keep_part ||
		    fstat(d->fd, &st) == -1 || st.st_size == 0))
			unlinkat(d->dirfd, d->part_name, 0);
		if (d->fd != -1)
			close(d->fd);
		if (d->dirfd != -1)
			close(d->dirfd);
	}
	free(d->dir);
	free(d->name);
	free(d->part_name);
	free(d->part_path);
	free(d);
}
