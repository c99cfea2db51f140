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
