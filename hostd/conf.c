/*
 * conf.c: the configuration file (INI, read with libinih) and the one
 * check per option that the file and the command line share.
 */
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "proto.h"
#include "vsockdev.h"

#define CONF_MAX_GRACE	86400
/* Transfer queue and timeout defaults (see portholed --help). */
#define CONF_DEF_GRACE	10
#define CONF_DEF_MAX_ACTIVE	1
#define CONF_DEF_MAX_QUEUE	256
#define CONF_DEF_MAX_PER_PEER	8
#define CONF_DEF_QUANTUM_BYTES (64ull * 1024 * 1024)
#define CONF_DEF_QUANTUM_MS	1000
#define CONF_DEF_REQ_TIMEOUT	3
#define CONF_DEF_IDLE_TIMEOUT	900
#define CONF_DEF_STALL_TIMEOUT 30
#define CONF_DEF_MAX_CONNS_PER_PEER 16
#define CONF_DEF_LIBVIRT	"qemu:///system"
#define CONF_DEF_AUDIT_ROWS	100000
#define CONF_DEF_AUDIT_DAYS	90
#define CONF_DEF_CACHE_SIZE	(4ull * 1024 * 1024 * 1024)

/* Where each option lives in the file. */
static const struct conf_key {
	const char	*section;
	const char	*name;
	enum conf_opt	 opt;
} conf_keys[] = {
	{ "daemon", "listen", CONF_LISTEN },
	{ "daemon", "repo", CONF_REPO },
	{ "daemon", "control", CONF_CONTROL },
	{ "daemon", "state-dir", CONF_STATE_DIR },
	{ "daemon", "cache-dir", CONF_CACHE_DIR },
	{ "daemon", "cache-size", CONF_CACHE_SIZE },
	{ "daemon", "upstream", CONF_UPSTREAM },
	{ "daemon", "vhost-user", CONF_VHOST_USER },
	{ "daemon", "shutdown-grace", CONF_SHUTDOWN_GRACE },
	{ "daemon", "verbose", CONF_VERBOSE },
	{ "queue", "max-active", CONF_MAX_ACTIVE },
	{ "queue", "max-queue", CONF_MAX_QUEUE },
	{ "queue", "max-per-peer", CONF_MAX_PER_PEER },
	{ "queue", "quantum-bytes", CONF_QUANTUM_BYTES },
	{ "queue", "quantum-ms", CONF_QUANTUM_MS },
	{ "limits", "request-timeout", CONF_REQUEST_TIMEOUT },
	{ "limits", "idle-timeout", CONF_IDLE_TIMEOUT },
	{ "limits", "stall-timeout", CONF_STALL_TIMEOUT },
	{ "limits", "max-conns-per-peer", CONF_MAX_CONNS_PER_PEER },
	{ "daemon", "libvirt", CONF_LIBVIRT },
	{ "access", "acl-default", CONF_ACL_DEFAULT },
	{ "access", "audit-max-rows", CONF_AUDIT_MAX_ROWS },
	{ "access", "audit-max-days", CONF_AUDIT_MAX_DAYS },
};

/* The state of one file being read. */
struct conf_file {
	struct conf	*c;
	FILE		*f;
	const char	*path;
	int		 line;		/* of the line inih is looking at */
	int		 err;		/* first error, 0 while none */
	int		 err_line;
	char		*msg;
	size_t		 msglen;
};

int
conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	c->grace_s = CONF_DEF_GRACE;
	c->cache_size = CONF_DEF_CACHE_SIZE;
	c->srv.queue.max_active = CONF_DEF_MAX_ACTIVE;
	c->srv.queue.max_queue = CONF_DEF_MAX_QUEUE;
	c->srv.queue.max_per_peer = CONF_DEF_MAX_PER_PEER;
	c->srv.queue.quantum_bytes = CONF_DEF_QUANTUM_BYTES;
	c->srv.queue.quantum_ms = CONF_DEF_QUANTUM_MS;
	c->srv.request_timeout_ms = CONF_DEF_REQ_TIMEOUT * 1000;
	c->srv.idle_timeout_ms = CONF_DEF_IDLE_TIMEOUT * 1000;
	c->srv.stall_timeout_ms = CONF_DEF_STALL_TIMEOUT * 1000;
	c->srv.max_conns_per_peer = CONF_DEF_MAX_CONNS_PER_PEER;
	c->audit_max_rows = CONF_DEF_AUDIT_ROWS;
	c->audit_max_days = CONF_DEF_AUDIT_DAYS;
	if ((c->libvirt = strdup(CONF_DEF_LIBVIRT)) == NULL)
		return -ENOMEM;
	if ((c->control = strdup(PH_DEFAULT_CONTROL)) == NULL ||
	    (c->state_dir = strdup(PH_DEFAULT_STATE_DIR)) == NULL ||
	    (c->cache_dir = strdup(PH_DEFAULT_CACHE_DIR)) == NULL)
		return -ENOMEM;
	return 0;
}

/* Frees the n strings of a repeatable option and empties it. */
static void
conf_list_clear(char **list, size_t *n)
{
	for (size_t i = 0; i < *n; i++) {
		free(list[i]);
		list[i] = NULL;
	}
	*n = 0;
}

/* Appends a copy of value to a repeatable option of at most max values. */
static int
conf_list_add(char **list, size_t *n, size_t max, const char *value,
    const char *name, char *err, size_t errlen)
{
	if (*n == max) {
		snprintf(err, errlen, "too many %s options (at most %zu)", name,
		    max);
		return -E2BIG;
	}
	if ((list[*n] = strdup(value)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*n)++;
	return 0;
}

void
conf_clear_listen(struct conf *c)
{
	conf_list_clear(c->listen, &c->nlisten);
}

void
conf_clear_vhost_user(struct conf *c)
{
	conf_list_clear(c->vhost_user, &c->nvhost_user);
}

/* Checks a vhost-user device (PATH,cid=N[,name=NAME]) and appends it. */
static int
conf_add_vhost_user(struct conf *c, const char *value, const char *name,
    char *err, size_t errlen)
{
	struct vsockdev_spec spec;
	char why[256];

	if (vsockdev_parse(value, &spec, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "invalid %s '%s': %s", name, value, why);
		return -EINVAL;
	}
	return conf_list_add(c->vhost_user, &c->nvhost_user,
	    CONF_MAX_VHOST_USER, value, name, err, errlen);
}

void
conf_clear(struct conf *c)
{
	if (c == NULL)
		return;
	conf_clear_listen(c);
	conf_clear_vhost_user(c);
	free(c->repo);
	free(c->control);
	free(c->state_dir);
	free(c->cache_dir);
	free(c->upstream);
	free(c->libvirt);
	memset(c, 0, sizeof(*c));
}

/* Makes a path absolute against the current directory, without resolving. */
static char *
conf_absolute(const char *path)
{
	char cwd[PATH_MAX];
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	if (asprintf(&out, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd,
	    path) < 0)
		return NULL;
	return out;
}

/* Parses a decimal number in [min, max]; false if it is not one. */
static bool
conf_num(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || n < min || n > max)
		return false;
	*v = n;
	return true;
}

/* Replaces a string setting with a copy of a non-empty value. */
static int
conf_str(char **slot, const char *value, const char *what, char *err,
    size_t errlen)
{
	char *copy;

	if (value[0] == '\0') {
		snprintf(err, errlen, "empty %s", what);
		return -EINVAL;
	}
	if ((copy = strdup(value)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* Stores a numeric option in range, scaled, or explains the range. */
static int
conf_set_num(struct conf *c, enum conf_opt opt, const char *value,
    const char *name, char *err, size_t errlen)
{
	struct server_config *s = &c->srv;
	uint64_t v;

	switch (opt) {
	case CONF_SHUTDOWN_GRACE:
		if (!conf_num(value, 0, CONF_MAX_GRACE, &v))
			goto bad_seconds0;
		c->grace_s = v;
		return 0;
	case CONF_MAX_ACTIVE:
		if (!conf_num(value, 1, 4096, &v))
			goto bad;
		s->queue.max_active = (uint32_t)v;
		return 0;
	case CONF_MAX_QUEUE:
		if (!conf_num(value, 0, 1000000, &v))
			goto bad;
		s->queue.max_queue = (uint32_t)v;
		return 0;
	case CONF_MAX_PER_PEER:
	case CONF_MAX_CONNS_PER_PEER:
		if (!conf_num(value, 1, 1000000, &v))
			goto bad;
		if (opt == CONF_MAX_PER_PEER)
			s->queue.max_per_peer = (uint32_t)v;
		else
			s->max_conns_per_peer = (uint32_t)v;
		return 0;
	case CONF_QUANTUM_BYTES:
		if (!conf_num(value, 1, UINT64_MAX, &v))
			goto bad;
		s->queue.quantum_bytes = v;
		return 0;
	case CONF_QUANTUM_MS:
		if (!conf_num(value, 1, 86400000, &v))
			goto bad;
		s->queue.quantum_ms = v;
		return 0;
	case CONF_REQUEST_TIMEOUT:
	case CONF_IDLE_TIMEOUT:
	case CONF_STALL_TIMEOUT:
		if (!conf_num(value, 1, 86400, &v))
			goto bad_seconds1;
		if (opt == CONF_REQUEST_TIMEOUT)
			s->request_timeout_ms = v * 1000;
		else if (opt == CONF_IDLE_TIMEOUT)
			s->idle_timeout_ms = v * 1000;
		else
			s->stall_timeout_ms = v * 1000;
		return 0;
	case CONF_AUDIT_MAX_ROWS:
		if (!conf_num(value, 0, 1000000000, &v))
			goto bad;
		c->audit_max_rows = v;
		return 0;
	case CONF_AUDIT_MAX_DAYS:
		if (!conf_num(value, 0, 36500, &v))
			goto bad;
		c->audit_max_days = v;
		return 0;
	default:
		abort();
	}

bad:
	switch (opt) {
	case CONF_MAX_ACTIVE:
		snprintf(err, errlen, "invalid %s '%s' (1 to 4096)", name,
		    value);
		break;
	case CONF_MAX_QUEUE:
		snprintf(err, errlen, "invalid %s '%s' (0 to 1000000)", name,
		    value);
		break;
	case CONF_MAX_PER_PEER:
	case CONF_MAX_CONNS_PER_PEER:
		snprintf(err, errlen, "invalid %s '%s' (1 to 1000000)", name,
		    value);
		break;
	case CONF_QUANTUM_BYTES:
		snprintf(err, errlen, "invalid %s '%s' (at least 1)", name,
		    value);
		break;
	case CONF_AUDIT_MAX_ROWS:
		snprintf(err, errlen, "invalid %s '%s' (rows, 0 to 1000000000; "
		    "0 turns the audit trail off)", name, value);
		break;
	case CONF_AUDIT_MAX_DAYS:
		snprintf(err, errlen, "invalid %s '%s' (days, 0 to 36500; 0 "
		    "keeps rows of any age)", name, value);
		break;
	default:
		snprintf(err, errlen, "invalid %s '%s' (1 to 86400000)", name,
		    value);
		break;
	}
	return -EINVAL;
bad_seconds0:
	snprintf(err, errlen, "invalid %s '%s' (seconds, 0 to 86400)", name,
	    value);
	return -EINVAL;
bad_seconds1:
	snprintf(err, errlen, "invalid %s '%s' (seconds, 1 to 86400)", name,
	    value);
	return -EINVAL;
}

/* The option's name as the user wrote it: "--max-active" or "max-active". */
static void
conf_opt_name(enum conf_opt opt, const char *prefix, char *buf,
    size_t cap)
{
	for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]);
	    i++) {
		if (conf_keys[i].opt == opt) {
			snprintf(buf, cap, "%s%s", prefix,
			    conf_keys[i].name);
			return;
		}
	}
	abort();
}

int
conf_set(struct conf *c, enum conf_opt opt, const char *value,
    const char *prefix, char *err, size_t errlen)
{
	struct ph_endpoint ep;
	char name[64], *abs;

	err[0] = '\0';
	conf_opt_name(opt, prefix, name, sizeof(name));
	switch (opt) {
	case CONF_LISTEN:
		if (ph_endpoint_parse(value, &ep) < 0) {
			snprintf(err, errlen, "invalid endpoint '%s' (expected "
			    "vsock:CID:PORT, vsock::PORT or unix:PATH)", value);
			return -EINVAL;
		}
		return conf_list_add(c->listen, &c->nlisten, CONF_MAX_LISTEN,
		    value, name, err, errlen);
	case CONF_VHOST_USER:
		return conf_add_vhost_user(c, value, name, err, errlen);
	case CONF_REPO:
		if (value[0] == '\0') {
			snprintf(err, errlen, "empty repository path");
			return -EINVAL;
		}
		if ((abs = conf_absolute(value)) == NULL) {
			snprintf(err, errlen, "cannot make %s absolute: %s",
			    value, strerror(errno));
			return -ENOMEM;
		}
		free(c->repo);
		c->repo = abs;
		return 0;
	case CONF_CONTROL:
		return conf_str(&c->control, value, "control socket path",
		    err, errlen);
	case CONF_STATE_DIR:
		return conf_str(&c->state_dir, value, "state directory",
		    err, errlen);
	case CONF_CACHE_DIR:
		return conf_str(&c->cache_dir, value, "cache directory",
		    err, errlen);
	case CONF_CACHE_SIZE:
		if (ph_util_parse_size(value, &c->cache_size) < 0) {
			snprintf(err, errlen, "invalid %s '%s' (bytes, with "
			    "an optional K, M, G or T suffix)", name, value);
			return -EINVAL;
		}
		return 0;
	case CONF_UPSTREAM:
		if (ph_endpoint_parse(value, &ep) < 0) {
			snprintf(err, errlen, "invalid %s '%s' (vsock:CID:PORT "
			    "or unix:PATH)", name, value);
			return -EINVAL;
		}
		return conf_str(&c->upstream, value, "upstream endpoint",
		    err, errlen);
	case CONF_LIBVIRT:
		return conf_str(&c->libvirt, value, "libvirt URI", err, errlen);
	case CONF_ACL_DEFAULT:
		if (strcmp(value, "allow") == 0)
			c->acl_deny = false;
		else if (strcmp(value, "deny") == 0)
			c->acl_deny = true;
		else {
			snprintf(err, errlen, "invalid %s '%s' (allow or deny)",
			    name, value);
			return -EINVAL;
		}
		return 0;
	case CONF_VERBOSE:
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "on") == 0 || strcmp(value, "1") == 0)
			c->verbose = true;
		else if (strcmp(value, "no") == 0 ||
		    strcmp(value, "false") == 0 || strcmp(value, "off") == 0 ||
		    strcmp(value, "0") == 0)
			c->verbose = false;
		else {
			snprintf(err, errlen, "invalid %s '%s' (yes or no)",
			    name, value);
			return -EINVAL;
		}
		return 0;
	default:
		return conf_set_num(c, opt, value, name, err, errlen);
	}
}

/* Records the first error of a file with its line number. */
static void
conf_file_error(struct conf_file *cf, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
conf_file_error(struct conf_file *cf, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cf->err != 0)
		return;
	cf->err = err;
	cf->err_line = cf->line;
	n = snprintf(cf->msg, cf->msglen, "%s:%d: ", cf->path, cf->line);
	if (n < 0 || (size_t)n >= cf->msglen)
		return;
	va_start(ap, fmt);
	vsnprintf(cf->msg + n, cf->msglen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* inih's line reader: counts lines, so errors can name theirs. */
static char *
conf_read_line(char *str, int num, void *stream)
{
	struct conf_file *cf = stream;
	size_t len;

	if (cf->err != 0 || fgets(str, num, cf->f) == NULL)
		return NULL;
	cf->line++;
	len = strlen(str);
	/* inih would silently cut a longer line in two. */
	if (len > 0 && str[len - 1] != '\n' && !feof(cf->f)) {
		conf_file_error(cf, -EINVAL, "line too long (at most %d "
		    "characters)", num - 2);
		return NULL;
	}
	return str;
}

/* inih's handler: one key = value, found in the table, checked and set. */
static int
conf_on_key(void *user, const char *section, const char *key,
    const char *value)
{
	struct conf_file *cf = user;
	char why[512];
	int err;

	if (cf->err != 0)
		return 0;
	/* inih reports a new section with a NULL key when asked to; skip. */
	if (key == NULL)
		return 1;
	if (section[0] == '\0') {
		conf_file_error(cf, -EINVAL, "key \"%s\" outside any section "
		    "(use [daemon], [queue], [limits] or [access])", key);
		return 0;
	}
	if (strcmp(section, "daemon") != 0 && strcmp(section, "queue") != 0 &&
	    strcmp(section, "limits") != 0 && strcmp(section, "access") != 0) {
		conf_file_error(cf, -EINVAL, "unknown section [%s]",
		    section);
		return 0;
	}
	for (size_t i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]);
	    i++) {
		if (strcmp(conf_keys[i].section, section) != 0 ||
		    strcmp(conf_keys[i].name, key) != 0)
			continue;
		err = conf_set(cf->c, conf_keys[i].opt, value, "", why,
		    sizeof(why));
		if (err < 0) {
			conf_file_error(cf, err, "%s", why);
			return 0;
		}
		return 1;
	}
	conf_file_error(cf, -EINVAL, "unknown key \"%s\" in [%s]", key,
	    section);
	return 0;
}

int
conf_load(struct conf *c, const char *path, char *err, size_t errlen)
{
	struct conf_file cf;
	int r, rc;

	memset(&cf, 0, sizeof(cf));
	err[0] = '\0';
	cf.c = c;
	cf.path = path;
	cf.msg = err;
	cf.msglen = errlen;
	if ((cf.f = fopen(path, "re")) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
		return rc;
	}
	r = ini_parse_stream(conf_read_line, &cf, conf_on_key, &cf);
	if (r > 0 && (cf.err == 0 || r < cf.err_line)) {
		/* A line that is neither a section, a key nor a comment. */
		cf.err = 0;
		cf.line = r;
		conf_file_error(&cf, -EINVAL, "syntax error (expected "
		    "[section], key = value or a # comment)");
		rc = cf.err;
	} else if (cf.err != 0) {
		rc = cf.err;
	} else if (ferror(cf.f)) {
		rc = -EIO;
		snprintf(err, errlen, "cannot read %s: %s", path,
		    strerror(EIO));
	} else if (r < 0) {
		rc = -ENOMEM;
		snprintf(err, errlen, "cannot read %s: out of memory", path);
	} else {
		rc = 0;
	}
	fclose(cf.f);
	return rc;
}
