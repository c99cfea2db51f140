/*
 * fsutil.h: small file-system helpers shared by the daemon's modules.
 */
#ifndef HOSTD_FSUTIL_H
#define HOSTD_FSUTIL_H

#include <sys/types.h>

/*
 * Creates dir and any missing parents (mode 0755); dir itself, if it has
 * to be created, gets mode (less the umask). An existing directory is
 * fine. Returns 0 or a negative errno.
 */
int	fsutil_mkdirs(const char *dir, mode_t mode);

/*
 * Creates the parent directory of path like fsutil_mkdirs(). A path
 * without a '/' needs nothing. Returns 0 or a negative errno.
 */
int	fsutil_mkparent(const char *path, mode_t mode);

#endif /* HOSTD_FSUTIL_H */
