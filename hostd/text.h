/*
 * text.h: a bounded, growable text buffer for control-socket reply bodies.
 *
 * A value type used on the stack: text_init(), append, read buf/len, then
 * text_free(). Appends never fail loudly: past the bound or on allocation
 * failure the buffer stops growing and text_full() turns true, so a caller
 * can finish a body and say it was truncated.
 */
#ifndef HOSTD_TEXT_H
#define HOSTD_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct text {
	char	*buf;		/* NUL-terminated when len > 0 */
	size_t	 len;
	size_t	 cap;
	size_t	 max;		/* bytes the body may reach */
	bool	 full;		/* an append did not fit */
};

/* Starts an empty buffer that will hold at most max bytes. */
void	text_init(struct text *t, size_t max);

/* Releases the buffer. Accepts NULL. */
void	text_free(struct text *t);

/* Appends formatted text; nothing at all when it would not fit. */
void	text_printf(struct text *t, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * Appends s as a JSON string literal with its quotes. Control characters
 * and quotes are escaped; bytes that are not valid UTF-8 become U+FFFD so
 * the result is always valid JSON.
 */
void	text_json_str(struct text *t, const char *s);


/* True when an append was refused because of the bound (or memory). */
bool	text_full(const struct text *t);

/* Bytes still free below the bound. */
size_t	text_room(const struct text *t);

#endif /* HOSTD_TEXT_H */
