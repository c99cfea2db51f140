/*
 * log.c: one line per write(2) on stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"

#define LOG_LINE_MAX	4096

struct log {
	bool	verbose;
};

int
log_new(bool verbose, struct log **out)
{
	struct log *lg;

	*out = NULL;
	if ((lg = calloc(1, sizeof(*lg))) == NULL)
		return -ENOMEM;
	lg->verbose = verbose;
	*out = lg;
	return 0;
}

void
log_free(struct log *lg)
{
	free(lg);
}

bool
log_verbose(const struct log *lg)
{
	return lg->verbose;
}

/* Formats the prefix, the message and a newline, then writes them at once. */
static void
log_emit(const char *kind, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void
log_emit(const char *kind, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t len;
	ssize_t n;
	int r;

	r = snprintf(line, sizeof(line), "portholed: %s", kind);
	len = (size_t)r;
	r = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (r < 0)
		return;
	len += (size_t)r;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	for (size_t off = 0; off < len; off += (size_t)n) {
		n = write(STDERR_FILENO, line + off, len - off);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			return;
	}
}

void
log_info(struct log *lg, const char *fmt, ...)
{
	va_list ap;

	(void)lg;
	va_start(ap, fmt);
	log_emit("", fmt, ap);
	va_end(ap);
}

void
log_warn(struct log *lg, const char *fmt, ...)
{
	va_list ap;

	(void)lg;
	va_start(ap, fmt);
	log_emit("warning: ", fmt, ap);
	va_end(ap);
}

void
log_debug(struct log *lg, const char *fmt, ...)
{
	va_list ap;

	if (!lg->verbose)
		return;
	va_start(ap, fmt);
	log_emit("debug: ", fmt, ap);
	va_end(ap);
}

/* Escapes a path or name so it stays one field of a log line. */
char *
log_escape(const char *s, size_t len, bool escape_high, char *out, size_t cap)
{
	size_t o = 0;

	if (cap == 0)
		return out;
	for (size_t i = 0, seq = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool esc;
		size_t need;

		/* Bytes of a valid multi-byte sequence pass as they are. */
		if (seq == 0 && c >= 0x80 && !escape_high)
			seq = ph_path_utf8_seq_len((const unsigned char *)s + i,
			    len - i);
		esc = c < 0x21 || c == 0x7f || c == '\\' ||
		    (c >= 0x80 && seq == 0);
		if (seq > 0)
			seq--;
		need = esc ? 4 : 1;

		/* Keep room for "..." and the NUL. */
		if (o + need + 4 > cap) {
			if (cap >= 4) {
				while (o + 4 > cap)
					o--;
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		if (esc) {
			out[o++] = '\\';
			out[o++] = 'x';
			/* its NUL fits: see above */
			ph_util_hex_encode(&c, 1, out + o);
			o += 2;
		} else
			out[o++] = (char)c;
	}
	out[o] = '\0';
	return out;
}
