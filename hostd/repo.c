/*
 * repo.c: safe opens beneath the repository directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "repo.h"

/* A directory with more names than this is refused rather than listed. */
#define REPO_DIR_MAX_NAMES	(1u << 20)

/* openat2() retries when a concurrent rename makes it return EAGAIN. */
#define REPO_OPENAT2_TRIES	16

struct repo {
	int	 dirfd;
	char	*path;
	bool	 no_openat2;	/* the kernel said ENOSYS once */
};

struct repo_dir {
	int	 rootfd;	/* a duplicate of the repository's fd */
	int	 fd;		/* the listed directory */
	bool	 no_openat2;
	char	*rel;		/* the listed directory, normalised */
	char	**names;	/* sorted */
	size_t	 count;
	size_t	 cap;
};

uint8_t
repo_ftype(mode_t mode)
{
	if (S_ISREG(mode))
		return PH_FT_REGULAR;
	if (S_ISDIR(mode))
		return PH_FT_DIR;
	return PH_FT_OTHER;
}

int64_t
repo_ns(const struct timespec *ts)
{
	return ph_timespec_ns(ts);
}

/*
 * Opens rel beneath dirfd by walking one component at a time with
 * O_NOFOLLOW, for kernels without openat2(). Every symlink is refused with
 * -ELOOP, which is stricter than openat2 but never unsafe: '..' cannot
 * appear in a normalised path, so only symlinks could lead outside.
 */
static int
repo_walk(int dirfd, const char *rel, int flags)
{
	char buf[PH_MAX_PATH + 1];
	char *comp, *slash;
	int cur = dirfd, fd, err;
	struct stat st;

	if (strlen(rel) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, rel);
	comp = buf;
	while ((slash = strchr(comp, '/')) != NULL) {
		*slash = '\0';
		fd = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		err = errno;
		if (fd < 0 && err == ENOTDIR &&
		    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISLNK(st.st_mode))
			err = ELOOP;
		if (cur != dirfd)
			close(cur);
		if (fd < 0)
			return -err;
		cur = fd;
		comp = slash + 1;
	}
	fd = openat(cur, comp, flags | O_NOFOLLOW);
	err = errno;
	if (fd < 0 && err == ENOTDIR &&
	    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		err = ELOOP;
	if (fd >= 0 && (flags & O_PATH)) {
		/* O_PATH | O_NOFOLLOW opens a symlink itself: refuse it. */
		if (fstat(fd, &st) < 0 || S_ISLNK(st.st_mode)) {
			close(fd);
			fd = -1;
			err = ELOOP;
		}
	}
	if (cur != dirfd)
		close(cur);
	return fd < 0 ? -err : fd;
}

/*
 * Opens rel beneath dirfd so that nothing (symlinks, "..", magic links)
 * can resolve outside it. Returns the fd or a negative errno.
 */
static int
repo_resolve(int dirfd, bool *no_openat2, const char *rel, int flags)
{
	struct open_how how;
	long fd;

	if (!*no_openat2) {
		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)flags;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		for (int i = 0; i < REPO_OPENAT2_TRIES; i++) {
			fd = syscall(SYS_openat2, dirfd, rel, &how,
			    sizeof(how));
			if (fd >= 0)
				return (int)fd;
			if (errno != EAGAIN && errno != EINTR)
				break;
		}
		if (errno != ENOSYS)
			return -errno;
		*no_openat2 = true;
	}
	return repo_walk(dirfd, rel, flags);
}

/* Opens and checks the repository directory. */
int
repo_open(const char *path, struct repo **out)
{
	struct repo *r = NULL;
	struct stat st;
	size_t len;
	int fd, err;

	*out = NULL;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto fail_fd;
	}
	if (!S_ISDIR(st.st_mode)) {
		err = -ENOTDIR;
		goto fail_fd;
	}
	/* Reading is what the open checked; searching needs a look too. */
	if (faccessat(fd, ".", R_OK | X_OK, AT_EACCESS) < 0) {
		err = -errno;
		goto fail_fd;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		err = -ENOMEM;
		goto fail_fd;
	}
	if ((r->path = strdup(path)) == NULL) {
		err = -ENOMEM;
		goto fail_repo;
	}
	/* "/srv/repo/" and "/srv/repo" are the same repository. */
	len = strlen(r->path);
	while (len > 1 && r->path[len - 1] == '/')
		r->path[--len] = '\0';
	r->dirfd = fd;
	*out = r;
	return 0;

fail_repo:
	free(r);
fail_fd:
	close(fd);
	return err;
}

void
repo_free(struct repo *r)
{
	if (r == NULL)
		return;
	close(r->dirfd);
	free(r->path);
	free(r);
}

const char *
repo_path(const struct repo *r)
{
	return r->path;
}

int
repo_stat(struct repo *r, const char *rel, struct stat *st)
{
	int fd, err = 0;

	fd = repo_resolve(r->dirfd, &r->no_openat2, rel, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0)
		err = -errno;
	close(fd);
	return err;
}

/* -EISDIR, -ENODEV or 0 for a file type, as repo_open_file() reports. */
static int
repo_need_regular(mode_t mode)
{
	if (S_ISDIR(mode))
		return -EISDIR;
	if (!S_ISREG(mode))
		return -ENODEV;
	return 0;
}

/* Opens a regular file beneath the repository for reading. */
int
repo_open_file(struct repo *r, const char *rel, int *fdp, struct stat *st)
{
	int fd, err;

	*fdp = -1;
	/*
	 * Look first through O_PATH, so a device node is never opened (an
	 * open can have side effects), then open the regular file for real.
	 */
	if ((err = repo_stat(r, rel, st)) < 0)
		return err;
	if ((err = repo_need_regular(st->st_mode)) < 0)
		return err;
	fd = repo_resolve(r->dirfd, &r->no_openat2, rel,
	    O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fd;
	if (fstat(fd, st) < 0) {
		err = -errno;
		goto fail;
	}
	/* Replaced between the two opens by something that is not a file. */
	if ((err = repo_need_regular(st->st_mode)) < 0)
		goto fail;
	*fdp = fd;
	return 0;

fail:
	close(fd);
	return err;
}

/* Orders names by their bytes, as the protocol requires. */
static int
repo_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* True for a name the protocol can carry and a client could fetch. */
static bool
repo_name_ok(const char *name)
{
	char norm[PH_MAX_NAME + 1];
	size_t len = strlen(name);

	if (len == 0 || len > PH_MAX_NAME)
		return false;
	if (ph_path_normalize(name, len, norm, sizeof(norm)) < 0)
		return false;
	return strcmp(norm, name) == 0;
}

/* Appends a copy of name to the listing. */
static int
repo_dir_add(struct repo_dir *d, const char *name)
{
	char **names;
	size_t cap;

	if (d->count == d->cap) {
		if (d->count >= REPO_DIR_MAX_NAMES)
			return -E2BIG;
		cap = d->cap ? 2 * d->cap : 64;
		names = reallocarray(d->names, cap, sizeof(*names));
		if (names == NULL)
			return -ENOMEM;
		d->names = names;
		d->cap = cap;
	}
	if ((d->names[d->count] = strdup(name)) == NULL)
		return -ENOMEM;
	d->count++;
	return 0;
}

/* Reads, filters and sorts the names of a directory. */
int
repo_dir_read(struct repo *r, const char *rel, struct repo_dir **out)
{
	struct repo_dir *d;
	struct dirent *de;
	DIR *dir = NULL;
	int fd, err;

	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->rootfd = d->fd = -1;
	if ((d->rel = strdup(rel)) == NULL) {
		err = -ENOMEM;
		goto fail;
	}
	d->fd = repo_resolve(r->dirfd, &r->no_openat2, rel,
	    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0) {
		err = d->fd;
		goto fail;
	}
	d->no_openat2 = r->no_openat2;
	d->rootfd = fcntl(r->dirfd, F_DUPFD_CLOEXEC, 0);
	if (d->rootfd < 0) {
		err = -errno;
		goto fail;
	}
	/* readdir() owns the descriptor it is given: give it a duplicate. */
	if ((fd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		err = -errno;
		goto fail;
	}
	if ((dir = fdopendir(fd)) == NULL) {
		err = -errno;
		close(fd);
		goto fail;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0) {
				err = -errno;
				goto fail;
			}
			break;
		}
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 || !repo_name_ok(de->d_name))
			continue;
		if ((err = repo_dir_add(d, de->d_name)) < 0)
			goto fail;
	}
	closedir(dir);
	if (d->count > 0)
		qsort(d->names, d->count, sizeof(*d->names), repo_name_cmp);
	*out = d;
	return 0;

fail:
	if (dir != NULL)
		closedir(dir);
	repo_dir_free(d);
	return err;
}

void
repo_dir_free(struct repo_dir *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->count; i++)
		free(d->names[i]);
	free(d->names);
	free(d->rel);
	if (d->fd >= 0)
		close(d->fd);
	if (d->rootfd >= 0)
		close(d->rootfd);
	free(d);
}

size_t
repo_dir_count(const struct repo_dir *d)
{
	return d->count;
}

/* Fills the type, size, mtime and mode of e from st. */
static void
repo_entry_fill(struct ph_list_entry *e, const struct stat *st)
{
	e->ftype = repo_ftype(st->st_mode);
	e->size = e->ftype == PH_FT_OTHER ? 0 : (uint64_t)st->st_size;
	e->mtime_ns = repo_ns(&st->st_mtim);
	e->mode = (uint32_t)(st->st_mode & 07777);
}

/* Describes one entry, following symlinks only inside the repository. */
int
repo_dir_entry(struct repo_dir *d, size_t i, struct ph_list_entry *e)
{
	char path[PH_MAX_PATH + PH_MAX_NAME + 2];
	const char *name = d->names[i];
	struct stat st, target;
	int fd, n;

	memset(e, 0, sizeof(*e));
	strcpy(e->name, name);
	if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (!S_ISLNK(st.st_mode)) {
		repo_entry_fill(e, &st);
		return 0;
	}
	/* Describe where the link leads, if that is inside the repository. */
	e->ftype = PH_FT_OTHER;
	e->mtime_ns = repo_ns(&st.st_mtim);
	if (strcmp(d->rel, ".") == 0)
		n = snprintf(path, sizeof(path), "%s", name);
	else
		n = snprintf(path, sizeof(path), "%s/%s", d->rel, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	fd = repo_resolve(d->rootfd, &d->no_openat2, path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &target) == 0)
		repo_entry_fill(e, &target);
	close(fd);
	return 0;
}
