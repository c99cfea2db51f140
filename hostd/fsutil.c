/*
 * fsutil.c: mkdir -p.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"

/* Creates each missing component of dir in turn. */
int
fsutil_mkdirs(const char *dir, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(dir);
	struct stat st;

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, dir, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0) {
		if (errno != EEXIST)
			return -errno;
		if (stat(buf, &st) < 0)
			return -errno;
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
	}
	return 0;
}

/* Creates the directory that will hold path. */
int
fsutil_mkparent(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *slash;
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	if ((slash = strrchr(buf, '/')) == NULL)
		return 0;
	while (slash > buf && slash[-1] == '/')
		slash--;
	if (slash == buf)
		return 0;	/* the root */
	*slash = '\0';
	return fsutil_mkdirs(buf, mode);
}
