/*
 * text.c: bounded text buffer with JSON string escaping.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "text.h"

void
text_init(struct text *t, size_t max)
{
	memset(t, 0, sizeof(*t));
	t->max = max;
}

void
text_free(struct text *t)
{
	if (t == NULL)
		return;
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
}

bool
text_full(const struct text *t)
{
	return t->full;
}

size_t
text_room(const struct text *t)
{
	return t->max > t->len ? t->max - t->len : 0;
}

/* Makes room for n more bytes plus a NUL; false (and full) if it cannot. */
static bool
text_reserve(struct text *t, size_t n)
{
	size_t want;
	char *p;

	if (t->full)
		return false;
	if (n > t->max - t->len) {
		t->full = true;
		return false;
	}
	want = t->len + n + 1;
	if (want <= t->cap)
		return true;
	if (want < 2 * t->cap)
		want = 2 * t->cap;
	if (want < 256)
		want = 256;
	if (want > t->max + 1)
		want = t->max + 1;
	if ((p = realloc(t->buf, want)) == NULL) {
		t->full = true;
		return false;
	}
	t->buf = p;
	t->cap = want;
	return true;
}

/* Appends n bytes as they are. */
static void
text_put(struct text *t, const char *s, size_t n)
{
	if (!text_reserve(t, n))
		return;
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

/* Appends formatted text, or nothing if it would pass the bound. */
void
text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !text_reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

/* Appends a JSON string literal, valid whatever bytes str holds. */
void
text_json_str(struct text *t, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t left = strlen(str);
	char esc[8];

	text_put(t, "\"", 1);
	while (left > 0) {
		size_t n = ph_utf8_seq_len(s, left);

		if (n == 0) {
			text_put(t, "\\ufffd", 6);
			n = 1;
		} else if (*s == '"' || *s == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*s;
			text_put(t, esc, 2);
		} else if (*s < 0x20 || *s == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *s);
			text_put(t, esc, 6);
		} else
			text_put(t, (const char *)s, n);
		s += n;
		left -= n;
	}
	text_put(t, "\"", 1);
}
