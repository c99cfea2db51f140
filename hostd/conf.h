/*
 * conf.h: portholed's settings, from the configuration file and the
 * command line.
 *
 * Both sources go through conf_set(), one check per option, so a value
 * is accepted or refused the same way wherever it comes from. The file is
 * read first (conf_load()), then the command line is applied on top.
 * A struct conf owns every string it holds; conf_clear() frees them.
 */
#ifndef HOSTD_CONF_H
#define HOSTD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

#define CONF_DEFAULT_FILE	"/etc/porthole/portholed.conf"
#define CONF_MAX_LISTEN	16
#define CONF_MAX_VHOST_USER	16

/* Every option the file and the command line share. */
enum conf_opt {
	CONF_LISTEN,
	CONF_REPO,
	CONF_CONTROL,
	CONF_STATE_DIR,
	CONF_CACHE_DIR,
	CONF_CACHE_SIZE,
	CONF_UPSTREAM,
	CONF_VHOST_USER,
	CONF_SHUTDOWN_GRACE,
	CONF_VERBOSE,
	CONF_MAX_ACTIVE,
	CONF_MAX_QUEUE,
	CONF_MAX_PER_PEER,
	CONF_QUANTUM_BYTES,
	CONF_QUANTUM_MS,
	CONF_REQUEST_TIMEOUT,
	CONF_IDLE_TIMEOUT,
	CONF_STALL_TIMEOUT,
	CONF_MAX_CONNS_PER_PEER,
	CONF_LIBVIRT,
	CONF_ACL_DEFAULT,
	CONF_AUDIT_MAX_ROWS,
	CONF_AUDIT_MAX_DAYS,
};

struct conf {
	char		*listen[CONF_MAX_LISTEN];
	size_t		 nlisten;
	char		*repo;		/* absolute, or NULL */
	char		*control;
	char		*state_dir;
	char		*cache_dir;	/* content cache blobs */
	uint64_t	 cache_size;	/* bytes; 0: catalog only, no blobs */
	char		*upstream;	/* relay mode: the parent, or NULL */
	char		*vhost_user[CONF_MAX_VHOST_USER];	/* PATH,cid=N[,name=] */
	size_t		 nvhost_user;
	uint64_t	 grace_s;
	char		*libvirt;	/* libvirt URI; "none": off */
	bool		 acl_deny;	/* default policy: deny */
	uint64_t	 audit_max_rows;	/* 0: no audit trail */
	uint64_t	 audit_max_days;	/* 0: no age limit */
	struct server_config srv;
	bool		 verbose;
};

/*
 * Fills c with the defaults (no listener: the caller picks the default
 * endpoint once it knows nothing else listens). Returns 0 or -ENOMEM;
 * call conf_clear() either way.
 */
int	conf_defaults(struct conf *c);

/* Frees the strings c owns and zeroes it. Accepts NULL. */
void	conf_clear(struct conf *c);

/*
 * Checks value for opt and stores it in c (strings are copied; a repository
 * is made absolute against the current directory; CONF_LISTEN appends).
 * Returns 0, -EINVAL with a reason in err naming the option with prefix
 * ("--" on the command line, "" in the file), -E2BIG for too many
 * listeners, or -ENOMEM.
 */
int	conf_set(struct conf *c, enum conf_opt opt, const char *value,
	    const char *prefix, char *err, size_t errlen);

/* Drops the listeners, so the command line's replace the file's. */
void	conf_clear_listen(struct conf *c);

/* Drops the vhost-user devices, so the command line's replace the file's. */
void	conf_clear_vhost_user(struct conf *c);

/*
 * Reads the INI file at path into c. A missing file is -ENOENT (err says
 * so; the caller decides whether that matters). An unknown section or key,
 * a syntax error or a bad value is -EINVAL with "PATH:LINE: reason" in
 * err. Other failures are a negative errno with err filled in.
 */
int	conf_load(struct conf *c, const char *path, char *err,
	    size_t errlen);

#endif /* HOSTD_CONF_H */
