/*
 * test_vectors.c: the pinned frames in tests/vectors/messages.txt.
 *
 * Each vector is decoded and encoded again, and must come back byte for
 * byte. Every vector line must also appear verbatim in proto/PROTOCOL.md and
 * every vector line of PROTOCOL.md must be in the file, so the document, the
 * vectors and the code cannot drift apart. The two paths come from the
 * environment (PH_VECTORS, PH_PROTOCOL_MD) or from argv[1] and argv[2].
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MAX_LINES	1024

/* The lines of a text file, without their newlines. */
struct lines {
	char	*v[MAX_LINES];
	size_t	 n;
};

static const char *vectors_path;
static const char *doc_path;

static void
lines_free(struct lines *l)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static void
lines_read(const char *path, struct lines *l)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 n;

	l->n = 0;
	if (path == NULL)
		fail_msg("no path given (set PH_VECTORS and PH_PROTOCOL_MD)");
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	while ((n = getline(&line, &cap, f)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		assert_true(l->n < MAX_LINES);
		l->v[l->n] = strdup(line);
		assert_non_null(l->v[l->n]);
		l->n++;
	}
	free(line);
	fclose(f);
}

static int
hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;	/* uppercase is not allowed in vectors */
}

/* Decodes lowercase hex into a new buffer; fails the test on bad hex. */
static uint8_t *
hex_decode(const char *hex, size_t *len)
{
	size_t	 n = strlen(hex), i;
	uint8_t	*out;
	int	 hi, lo;

	if (n == 0 || n % 2 != 0)
		fail_msg("odd or empty hex: %s", hex);
	out = malloc(n / 2);
	assert_non_null(out);
	for (i = 0; i < n / 2; i++) {
		hi = hex_nibble(hex[2 * i]);
		lo = hex_nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			fail_msg("bad hex digit in %s", hex);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

static bool
is_vector_line(const char *line)
{
	return strncmp(line, "vector ", 7) == 0;
}

/* Splits "vector NAME HEX" into its name and hex; fails on anything else. */
static void
split_vector(const char *line, char *name, size_t namecap, const char **hex)
{
	const char	*p = line + 7, *sp = strchr(p, ' ');

	if (sp == NULL || sp == p || (size_t)(sp - p) >= namecap ||
	    strchr(sp + 1, ' ') != NULL)
		fail_msg("malformed vector line: %s", line);
	memcpy(name, p, (size_t)(sp - p));
	name[sp - p] = '\0';
	*hex = sp + 1;
}

static void
test_vectors_roundtrip(void **state)
{
	struct lines		 l;
	struct ph_header	 h;
	struct ph_msg		*m = calloc(1, sizeof(*m));
	uint8_t			*frame, *copy, *again;
	const char		*hex;
	char			 name[64];
	bool			 seen[256] = { false };
	static const uint8_t	 types[] = { PH_HELLO, PH_GET, PH_STAT,
	    PH_LIST, PH_PING, PH_CTL, PH_HELLO_ACK, PH_QUEUED, PH_META,
	    PH_DATA, PH_DATA_ZSTD, PH_END, PH_ERROR, PH_LIST_REPLY, PH_PONG,
	    PH_CTL_REPLY };
	size_t			 i, j, len, nvec = 0;
	ssize_t			 n;

	(void)state;
	assert_non_null(m);
	lines_read(vectors_path, &l);
	for (i = 0; i < l.n; i++) {
		if (l.v[i][0] == '\0' || l.v[i][0] == '#')
			continue;
		if (!is_vector_line(l.v[i]))
			fail_msg("line %zu is neither comment nor vector", i + 1);
		split_vector(l.v[i], name, sizeof(name), &hex);
		for (j = 0; j < i; j++)
			if (is_vector_line(l.v[j]) && strncmp(l.v[j] + 7,
			    name, strlen(name)) == 0 &&
			    l.v[j][7 + strlen(name)] == ' ')
				fail_msg("duplicate vector name %s", name);
		frame = hex_decode(hex, &len);
		if (ph_frame_header_parse(frame, len, &h) != 0)
			fail_msg("%s: bad header", name);
		if (h.length != len - PH_HDR_LEN)
			fail_msg("%s: header says %u payload bytes, have %zu",
			    name, h.length, len - PH_HDR_LEN);
		/* Decoded from a copy: a CTL is decoded in place. */
		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, frame, len);
		if (ph_message_decode(h.type, copy + PH_HDR_LEN, h.length,
		    m) != 0)
			fail_msg("%s: does not decode", name);
		again = malloc(len);
		assert_non_null(again);
		n = ph_message_encode(m, again, len);
		if (n != (ssize_t)len || memcmp(frame, again, len) != 0)
			fail_msg("%s: re-encoding differs", name);
		seen[h.type] = true;
		nvec++;
		free(again);
		free(copy);
		free(frame);
	}
	/* Every message type is pinned by at least one vector. */
	for (i = 0; i < sizeof(types); i++)
		if (!seen[types[i]])
			fail_msg("no vector for %s",
			    ph_message_type_name(types[i]));
	assert_true(nvec >= sizeof(types));
	lines_free(&l);
	free(m);
}

/* True if line is one of the lines of l, exactly. */
static bool
has_line(const struct lines *l, const char *line)
{
	size_t	i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], line) == 0)
			return true;
	return false;
}

static void
test_vectors_in_doc(void **state)
{
	struct lines	vec, doc;
	size_t		i, ndoc = 0;

	(void)state;
	lines_read(vectors_path, &vec);
	lines_read(doc_path, &doc);
	for (i = 0; i < vec.n; i++)
		if (is_vector_line(vec.v[i]) && !has_line(&doc, vec.v[i]))
			fail_msg("PROTOCOL.md lacks: %s", vec.v[i]);
	for (i = 0; i < doc.n; i++) {
		if (!is_vector_line(doc.v[i]))
			continue;
		ndoc++;
		if (!has_line(&vec, doc.v[i]))
			fail_msg("messages.txt lacks: %s", doc.v[i]);
	}
	assert_true(ndoc > 0);
	lines_free(&vec);
	lines_free(&doc);
}

int
main(int argc, char *argv[])
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_roundtrip),
		cmocka_unit_test(test_vectors_in_doc),
	};

	vectors_path = getenv("PH_VECTORS");
	doc_path = getenv("PH_PROTOCOL_MD");
	if (argc > 1)
		vectors_path = argv[1];
	if (argc > 2)
		doc_path = argv[2];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
