/*
 * manifest.c: parsing the sync manifest.
 *
 * The whole file is read into memory (bounded) and walked through the
 * bounded reader one line at a time; the first bad line stops the parse,
 * so a manifest is used either completely or not at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "proto.h"

struct manifest {
	struct manifest_entry	*entries;
	size_t			 count;
};

/* The line being parsed: its bytes and a cursor into them. */
struct mline {
	char		 buf[MANIFEST_MAX_LINE + 1];
	size_t		 len;
	size_t		 pos;
	unsigned int	 no;
};

/* Fills err with a formatted reason; returns -EINVAL. */
static int
manifest_bad(struct manifest_error *err, unsigned int line, const char *fmt,
    ...)
	__attribute__((format(printf, 3, 4)));

static int
manifest_bad(struct manifest_error *err, unsigned int line, const char *fmt,
    ...)
{
	va_list ap;

	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/*
 * Reads the next line (without its newline) into l. Returns 1 with a line,
 * 0 at the end of the input, or -EINVAL for a line that is too long or
 * holds a NUL or another control byte.
 */
static int
manifest_read_line(struct ph_reader *r, struct mline *l,
    struct manifest_error *err)
{
	uint8_t c;

	if (ph_reader_left(r) == 0)
		return 0;
	l->no++;
	l->len = 0;
	l->pos = 0;
	while (ph_reader_get_u8(r, &c) == 0 && c != '\n') {
		if (c == '\0')
			return manifest_bad(err, l->no, "NUL byte in the line");
		if (c == '\r')
			return manifest_bad(err, l->no, "carriage return in "
			    "the line (DOS line endings are not accepted)");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return manifest_bad(err, l->no, "control byte 0x%02x "
			    "in the line", c);
		if (l->len == MANIFEST_MAX_LINE)
			return manifest_bad(err, l->no, "line longer than %d "
			    "bytes", MANIFEST_MAX_LINE);
		l->buf[l->len++] = (char)c;
	}
	l->buf[l->len] = '\0';
	return 1;
}

static bool
manifest_is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void
manifest_skip_blanks(struct mline *l)
{
	while (l->pos < l->len && manifest_is_blank(l->buf[l->pos]))
		l->pos++;
}

/*
 * Takes the next field into out (cap bytes): either a run of bytes up to a
 * blank, or a double-quoted string in which \" and \\ stand for " and \.
 * Returns 1 with a field, 0 at the end of the line, -EINVAL.
 */
static int
manifest_next_field(struct mline *l, const char *what, char *out, size_t cap,
    struct manifest_error *err)
{
	size_t n = 0;
	char c;

	manifest_skip_blanks(l);
	if (l->pos == l->len)
		return 0;
	if (l->buf[l->pos] != '"') {
		while (l->pos < l->len && !manifest_is_blank(l->buf[l->pos])) {
			c = l->buf[l->pos++];
			if (c == '"')
				return manifest_bad(err, l->no, "quote inside "
				    "%s (quote the whole field)", what);
			if (n + 1 >= cap)
				return manifest_bad(err, l->no, "%s is too "
				    "long", what);
			out[n++] = c;
		}
		out[n] = '\0';
		return 1;
	}
	l->pos++;
	for (;;) {
		if (l->pos == l->len)
			return manifest_bad(err, l->no, "unterminated quote in "
			    "%s", what);
		c = l->buf[l->pos++];
		if (c == '"')
			break;
		if (c == '\\') {
			if (l->pos == l->len || (l->buf[l->pos] != '"' &&
			    l->buf[l->pos] != '\\'))
				return manifest_bad(err, l->no, "only \\\" and "
				    "\\\\ may follow a backslash in %s", what);
			c = l->buf[l->pos++];
		}
		if (n + 1 >= cap)
			return manifest_bad(err, l->no, "%s is too long", what);
		out[n++] = c;
	}
	if (l->pos < l->len && !manifest_is_blank(l->buf[l->pos]))
		return manifest_bad(err, l->no, "blank expected after the "
		    "quoted %s", what);
	out[n] = '\0';
	return 1;
}

/*
 * Checks LOCAL: absolute, and already in normal form (no empty, '.' or
 * '..' components, no trailing '/'), so that two spellings of one file
 * cannot slip past the duplicate check.
 */
static int
manifest_check_local(const char *local, unsigned int line,
    struct manifest_error *err)
{
	const char *p, *end;
	size_t n;

	if (local[0] != '/')
		return manifest_bad(err, line, "LOCAL '%s' is not an absolute "
		    "path", local);
	if (local[1] == '\0')
		return manifest_bad(err, line, "LOCAL '/' is a directory, not "
		    "a file");
	for (p = local + 1; ; p = end + 1) {
		end = strchr(p, '/');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return manifest_bad(err, line, "LOCAL '%s' has an "
			    "empty, '.' or '..' component or a trailing '/'",
			    local);
		if (end == NULL)
			break;
	}
	return 0;
}

/* Parses MODE: one to four octal digits, 0000 to 0777. */
static int
manifest_parse_mode(const char *s, uint32_t *mode, unsigned int line,
    struct manifest_error *err)
{
	uint32_t v = 0;
	size_t i, n = strlen(s);

	*mode = 0;
	if (n == 0 || n > 4)
		goto fail;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '7')
			goto fail;
		v = v * 8 + (uint32_t)(s[i] - '0');
	}
	if (v > 0777)
		goto fail;
	*mode = v;
	return 0;
fail:
	return manifest_bad(err, line, "MODE '%s' is not an octal mode from "
	    "0000 to 0777", s);
}

static void
manifest_entry_clear(struct manifest_entry *e)
{
	free(e->remote);
	free(e->shown);
	free(e->local);
	free(e->hook);
	memset(e, 0, sizeof(*e));
}

/* Parses one non-blank, non-comment line into e. */
static int
manifest_parse_entry(struct mline *l, struct manifest_entry *e,
    struct manifest_error *err)
{
	char remote[PH_MAX_PATH + 1], norm[PH_MAX_PATH + 1];
	char local[MANIFEST_MAX_LOCAL + 1], mode[16];
	const char *hook;
	size_t hlen;
	int rc;

	memset(e, 0, sizeof(*e));
	e->line = l->no;
	if ((rc = manifest_next_field(l, "REMOTE", remote, sizeof(remote),
	    err)) < 0 || (rc == 1 && (rc = manifest_next_field(l, "LOCAL",
	    local, sizeof(local), err)) < 0) || (rc == 1 &&
	    (rc = manifest_next_field(l, "MODE", mode, sizeof(mode), err)) < 0))
		return rc;
	if (rc == 0)
		return manifest_bad(err, l->no, "expected REMOTE LOCAL MODE "
		    "[HOOK]");
	rc = ph_path_normalize(remote, strlen(remote), norm, sizeof(norm));
	if (rc == -EPERM)
		return manifest_bad(err, l->no, "REMOTE '%s' climbs out of the "
		    "repository with '..'", remote);
	if (rc < 0)
		return manifest_bad(err, l->no, "REMOTE '%s' is not a valid "
		    "path", remote);
	if (strcmp(norm, ".") == 0)
		return manifest_bad(err, l->no, "REMOTE '%s' names the "
		    "repository root, not a file", remote);
	if ((rc = manifest_check_local(local, l->no, err)) < 0 ||
	    (rc = manifest_parse_mode(mode, &e->mode, l->no, err)) < 0)
		return rc;
	/* The hook is the rest of the line, as written, minus end blanks. */
	manifest_skip_blanks(l);
	hook = l->buf + l->pos;
	hlen = l->len - l->pos;
	while (hlen > 0 && manifest_is_blank(hook[hlen - 1]))
		hlen--;
	e->remote = strdup(norm);
	e->local = strdup(local);
	if (asprintf(&e->shown, "/%s", norm) == -1)
		e->shown = NULL;
	if (hlen > 0)
		e->hook = strndup(hook, hlen);
	if (e->remote == NULL || e->local == NULL || e->shown == NULL ||
	    (hlen > 0 && e->hook == NULL)) {
		manifest_entry_clear(e);
		return -ENOMEM;
	}
	return 0;
}

/* Refuses a LOCAL path that an earlier entry already writes. */
static int
manifest_check_duplicate(const struct manifest *m,
    const struct manifest_entry *e, struct manifest_error *err)
{
	size_t i;

	for (i = 0; i < m->count; i++)
		if (strcmp(m->entries[i].local, e->local) == 0)
			return manifest_bad(err, e->line, "LOCAL '%s' is "
			    "already written by line %u", e->local,
			    m->entries[i].line);
	return 0;
}

int
manifest_parse(const void *buf, size_t len, struct manifest **out,
    struct manifest_error *err)
{
	struct manifest *m = NULL;
	struct manifest_entry e;
	struct ph_reader r;
	struct mline *l = NULL;
	int rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	if (len > MANIFEST_MAX_BYTES) {
		rc = manifest_bad(err, 0, "larger than %d bytes",
		    MANIFEST_MAX_BYTES);
		goto out;
	}
	m = calloc(1, sizeof(*m));
	l = calloc(1, sizeof(*l));
	if (m == NULL || l == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	ph_reader_init(&r, buf, len);
	while ((rc = manifest_read_line(&r, l, err)) == 1) {
		manifest_skip_blanks(l);
		if (l->pos == l->len || l->buf[l->pos] == '#')
			continue;
		if (m->count == MANIFEST_MAX_ENTRIES) {
			rc = manifest_bad(err, l->no, "more than %d entries",
			    MANIFEST_MAX_ENTRIES);
			goto out;
		}
		if (m->entries == NULL) {
			m->entries = calloc(MANIFEST_MAX_ENTRIES,
			    sizeof(*m->entries));
			if (m->entries == NULL) {
				rc = -ENOMEM;
				goto out;
			}
		}
		if ((rc = manifest_parse_entry(l, &e, err)) < 0)
			goto out;
		if ((rc = manifest_check_duplicate(m, &e, err)) < 0) {
			manifest_entry_clear(&e);
			goto out;
		}
		m->entries[m->count++] = e;
	}
	if (rc == 0) {
		*out = m;
		m = NULL;
	}
out:
	if (rc == -ENOMEM)
		manifest_bad(err, 0, "%s", strerror(ENOMEM));
	free(l);
	manifest_free(m);
	return rc;
}

int
manifest_load(const char *path, struct manifest **out,
    struct manifest_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	/* O_NONBLOCK: a FIFO put in its place must not hang a boot. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1) {
		rc = -errno;
		goto fail;
	}
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		manifest_bad(err, 0, "not a regular file");
		goto out;
	}
	/* One byte more than allowed tells a too large file apart. */
	if ((buf = malloc(MANIFEST_MAX_BYTES + 1)) == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((n = ph_io_read_full(fd, buf, MANIFEST_MAX_BYTES + 1)) < 0) {
		rc = (int)n;
		goto fail;
	}
	len = (size_t)n;
	rc = manifest_parse(buf, len, out, err);
	goto out;
fail:
	manifest_bad(err, 0, "%s", strerror(-rc));
out:
	free(buf);
	if (fd != -1)
		close(fd);
	return rc;
}

size_t
manifest_count(const struct manifest *m)
{
	return m->count;
}

const struct manifest_entry *
manifest_entry(const struct manifest *m, size_t i)
{
	return &m->entries[i];
}

void
manifest_free(struct manifest *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->count; i++)
		manifest_entry_clear(&m->entries[i]);
	free(m->entries);
	free(m);
}
