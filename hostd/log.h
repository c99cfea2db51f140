/*
 * log.h: portholed's log lines.
 *
 * Every line goes to stderr as one write(2), prefixed "portholed: ", so
 * lines from a busy daemon never interleave. Debug lines appear only with
 * -v.
 */
#ifndef HOSTD_LOG_H
#define HOSTD_LOG_H

#include <stdbool.h>
#include <stddef.h>

struct log;

/*
 * Creates a logger writing to stderr; debug lines only when verbose.
 * Returns 0 and sets *out, or -ENOMEM. Free with log_free().
 */
int	log_new(bool verbose, struct log **out);

/* Frees the logger. Accepts NULL. */
void	log_free(struct log *lg);

/* True when debug lines are shown. */
bool	log_verbose(const struct log *lg);

/* One line (no trailing newline in fmt); longer lines are truncated. */
void	log_info(struct log *lg, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A line prefixed "warning: ". */
void	log_warn(struct log *lg, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A line prefixed "debug: ", written only in verbose mode. */
void	log_debug(struct log *lg, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#endif /* HOSTD_LOG_H */
