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
/* Symlinks followed in one lookup, as many as the kernel allows. */
#define REPO_MAX_LINKS		40

struct repo {
	int	 dirfd;
	char	*path;
	bool	 no_openat2;	/* the kernel said ENOSYS once */
};

struct repo_dir {
	int	 rootfd;	/* a duplicate of the repository's fd */
	int	 fd;		/* the listed directory */
	char	*rel;		/* its real path in the repository */
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
	return ph_util_timespec_ns(ts);
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
 * Opens rel beneath dirfd with openat2() when no symlink is on the way, so
 * the common case costs one call. Returns the fd, -ELOOP when a symlink
 * is met (the caller then walks), or another negative errno.
 */
static int
repo_open_plain(int dirfd, bool *no_openat2, const char *rel, int flags)
{
	struct open_how how;
	long fd;

	if (!*no_openat2) {
		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)flags;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
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

/* Appends the component comp (len bytes) to the resolved path. */
static int
repo_real_push(char *real, size_t *rlen, const char *comp, size_t len)
{
	size_t need = *rlen + (*rlen > 0) + len;

	if (need > PH_MAX_PATH)
		return -ENAMETOOLONG;
	if (*rlen > 0)
		real[(*rlen)++] = '/';
	memcpy(real + *rlen, comp, len);
	*rlen = need;
	real[need] = '\0';
	return 0;
}

/* Drops the last component of the resolved path. */
static void
repo_real_pop(char *real, size_t *rlen)
{
	char *slash = strrchr(real, '/');

	*rlen = slash != NULL ? (size_t)(slash - real) : 0;
	real[*rlen] = '\0';
}

/*
 * Puts the symlink target link in front of the components still to
 * resolve, pend[*pos..], in place.
 */
static int
repo_splice(char *pend, size_t cap, size_t *pos, const char *link)
{
	size_t llen = strlen(link), rest = strlen(pend + *pos);

	if (llen + 1 + rest + 1 > cap)
		return -ENAMETOOLONG;
	memmove(pend + llen + 1, pend + *pos, rest + 1);
	memcpy(pend, link, llen);
	pend[llen] = '/';
	*pos = 0;
	return 0;
}

/*
 * Resolves rel the way the kernel would beneath dirfd, one component at
 * a time, following symlinks only while they stay inside, and builds the
 * path the object really has in the repository. Every step opens one
 * name with O_NOFOLLOW relative to the directory found by the step
 * before, so the descriptor returned is the object that path names.
 * Returns an O_PATH fd, or a negative errno (-EXDEV: a link leads
 * outside; -ELOOP: too many links). real gets the path either way: on
 * failure, as far as it resolved and the name that failed.
 */
static int
repo_follow(int dirfd, const char *rel, char real[PH_MAX_PATH + 1])
{
	char pend[2 * PH_MAX_PATH + 2], link[PH_MAX_PATH + 1];
	size_t pos = 0, rlen = 0, len;
	int cur = dirfd, fd = -1, links = 0, err;
	const char *comp;
	struct stat st;
	ssize_t n;

	real[0] = '\0';
	snprintf(pend, sizeof(pend), "%s", strcmp(rel, ".") == 0 ? "" : rel);
	for (;;) {
		while (pend[pos] == '/')
			pos++;
		if (pend[pos] == '\0')
			break;
		comp = pend + pos;
		len = strcspn(comp, "/");
		pos += len;
		if (len == 1 && comp[0] == '.')
			continue;
		if (len == 2 && comp[0] == '.' && comp[1] == '.') {
			/* Climbing above the root is leaving it. */
			if (rlen == 0) {
				err = -EXDEV;
				goto fail;
			}
			repo_real_pop(real, &rlen);
			/* Back along the resolved path: no links on it. */
			if (cur != dirfd)
				close(cur);
			cur = repo_walk(dirfd, rlen > 0 ? real : ".",
			    O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (cur < 0) {
				err = cur;
				cur = dirfd;
				goto fail;
			}
			continue;
		}
		if (len > PH_MAX_NAME) {
			err = -ENAMETOOLONG;
			goto fail;
		}
		if ((err = repo_real_push(real, &rlen, comp, len)) < 0)
			goto fail;
		/* A name no request could carry (LIST hides it) is none. */
		if (!repo_name_ok(real + rlen - len)) {
			repo_real_pop(real, &rlen);
			err = -ENOENT;
			goto fail;
		}
		fd = openat(cur, real + rlen - len, O_PATH | O_NOFOLLOW |
		    O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			err = -errno;
			goto fail;
		}
		if (S_ISLNK(st.st_mode)) {
			if (++links > REPO_MAX_LINKS) {
				err = -ELOOP;
				goto fail;
			}
			n = readlinkat(fd, "", link, sizeof(link));
			if (n < 0 || (size_t)n >= sizeof(link)) {
				err = n < 0 ? -errno : -ENAMETOOLONG;
				goto fail;
			}
			link[n] = '\0';
			/* An absolute target names something outside. */
			if (link[0] == '/' || n == 0) {
				err = link[0] == '/' ? -EXDEV : -ENOENT;
				goto fail;
			}
			if ((err = repo_splice(pend, sizeof(pend), &pos,
			    link)) < 0)
				goto fail;
			repo_real_pop(real, &rlen);
			close(fd);
			fd = -1;
			continue;
		}
		/* Something follows: this must be a directory. */
		if (pend[pos + strspn(pend + pos, "/")] != '\0' &&
		    !S_ISDIR(st.st_mode)) {
			err = -ENOTDIR;
			goto fail;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		fd = -1;
	}
	if (rlen == 0)
		snprintf(real, PH_MAX_PATH + 1, ".");
	if (cur == dirfd && (cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 0)) < 0)
		return -errno;
	return cur;

fail:
	if (fd >= 0)
		close(fd);
	if (cur != dirfd)
		close(cur);
	if (real[0] == '\0')
		snprintf(real, PH_MAX_PATH + 1, ".");
	return err;
}

/*
 * Finds rel beneath dirfd without following any symlink out of it and
 * returns an O_PATH fd of the object; real (never NULL here) gets its
 * path in the repository, which differs from rel when a symlink was on
 * the way. Returns the fd or a negative errno.
 */
static int
repo_resolve(int dirfd, bool *no_openat2, const char *rel,
    char real[PH_MAX_PATH + 1])
{
	int fd;

	fd = repo_open_plain(dirfd, no_openat2, rel, O_PATH | O_CLOEXEC);
	if (fd != -ELOOP) {
		snprintf(real, PH_MAX_PATH + 1, "%s", rel);
		return fd;
	}
	return repo_follow(dirfd, rel, real);
}

/*
 * Opens for real the object an O_PATH descriptor holds, through its
 * /proc/self/fd link: the same inode, whatever its name means by now.
 */
static int
repo_reopen(int pathfd, int flags)
{
	char proc[40];
	int fd;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
	if ((fd = open(proc, flags | O_CLOEXEC)) < 0)
		return errno == ENOENT ? -ENOSYS : -errno;
	return fd;
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
	/* Files are opened through /proc/self/fd: make sure it is there. */
	if ((err = repo_reopen(fd, O_RDONLY | O_DIRECTORY)) < 0)
		goto fail_fd;
	close(err);
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

/* The path for a caller that does not want it. */
static char *
repo_real_buf(char *real, char *scratch)
{
	return real != NULL ? real : scratch;
}

int
repo_stat(struct repo *r, const char *rel, struct stat *st,
    char real[PH_MAX_PATH + 1])
{
	char scratch[PH_MAX_PATH + 1];
	int fd, err = 0;

	fd = repo_resolve(r->dirfd, &r->no_openat2, rel,
	    repo_real_buf(real, scratch));
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

/*
 * Opens a regular file beneath the repository for reading: looks at it
 * through O_PATH (opening a device or a FIFO can have side effects), then
 * reopens that very descriptor, never the name again, so nothing swapped
 * in between is ever opened.
 */
int
repo_open_file(struct repo *r, const char *rel, int *fdp, struct stat *st,
    char real[PH_MAX_PATH + 1])
{
	char scratch[PH_MAX_PATH + 1];
	struct stat now;
	int pfd, fd = -1, err;

	*fdp = -1;
	pfd = repo_resolve(r->dirfd, &r->no_openat2, rel,
	    repo_real_buf(real, scratch));
	if (pfd < 0)
		return pfd;
	if (fstat(pfd, st) < 0) {
		err = -errno;
		goto fail;
	}
	if ((err = repo_need_regular(st->st_mode)) < 0)
		goto fail;
	fd = repo_reopen(pfd, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		err = fd;
		goto fail;
	}
	if (fstat(fd, &now) < 0) {
		err = -errno;
		goto fail;
	}
	/* The same inode by construction; say so rather than assume it. */
	if (now.st_dev != st->st_dev || now.st_ino != st->st_ino) {
		err = -ESTALE;
		goto fail;
	}
	if ((err = repo_need_regular(now.st_mode)) < 0)
		goto fail;
	*st = now;
	*fdp = fd;
	close(pfd);
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	close(pfd);
	return err;
}

/* Orders names by their bytes, as the protocol requires. */
static int
repo_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
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
repo_dir_read(struct repo *r, const char *rel, struct repo_dir **out,
    char real[PH_MAX_PATH + 1])
{
	char scratch[PH_MAX_PATH + 1], *rp = repo_real_buf(real, scratch);
	struct repo_dir *d;
	struct dirent *de;
	DIR *dir = NULL;
	int fd, pfd, err;

	*out = NULL;
	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->rootfd = d->fd = -1;
	if ((pfd = repo_resolve(r->dirfd, &r->no_openat2, rel, rp)) < 0) {
		err = pfd;
		goto fail;
	}
	/* The directory found, opened through its own descriptor. */
	d->fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	err = -errno;
	close(pfd);
	if (d->fd < 0)
		goto fail;
	/* Entries are named from where the directory really is. */
	if ((d->rel = strdup(rp)) == NULL) {
		err = -ENOMEM;
		goto fail;
	}
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
repo_dir_entry(struct repo_dir *d, size_t i, struct ph_list_entry *e,
    char target[PH_MAX_PATH + 1])
{
	char path[PH_MAX_PATH + PH_MAX_NAME + 2], scratch[PH_MAX_PATH + 1];
	char *tp = repo_real_buf(target, scratch);
	const char *name = d->names[i];
	struct stat st, to;
	int fd, n;

	memset(e, 0, sizeof(*e));
	tp[0] = '\0';
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
	/* Too long to resolve: nothing to describe, nowhere it leads. */
	if (n < 0 || (size_t)n > PH_MAX_PATH) {
		snprintf(tp, PH_MAX_PATH + 1, "%s", d->rel);
		return 0;
	}
	fd = repo_follow(d->rootfd, path, tp);
	if (fd < 0)
		return 0;
	if (fstat(fd, &to) == 0)
		repo_entry_fill(e, &to);
	close(fd);
	return 0;
}
