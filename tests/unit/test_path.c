/*
 * test_path.c: the path normaliser, against a table of inputs and their
 * exact expected results.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

struct path_case {
	const char	*in;
	size_t		 len;	/* 0: strlen(in) */
	int		 rc;
	const char	*out;	/* expected result when rc is 0 */
};

/* Inputs holding a NUL give their length explicitly. */
static const struct path_case cases[] = {
	/* Root forms. */
	{ "", 0, 0, "." },
	{ "/", 0, 0, "." },
	{ "//", 0, 0, "." },
	{ "///", 0, 0, "." },
	{ ".", 0, 0, "." },
	{ "./", 0, 0, "." },
	{ "/./.", 0, 0, "." },
	{ "a/..", 0, 0, "." },
	{ "/a/b/../..", 0, 0, "." },
	/* Plain paths. */
	{ "a", 0, 0, "a" },
	{ "/abs/path", 0, 0, "abs/path" },
	{ "rel/path", 0, 0, "rel/path" },
	{ "a//b", 0, 0, "a/b" },
	{ "a/./b", 0, 0, "a/b" },
	{ "a/b/", 0, 0, "a/b" },
	{ "a/b//", 0, 0, "a/b" },
	{ "./a", 0, 0, "a" },
	{ "/./a/./", 0, 0, "a" },
	{ "a/b/../c", 0, 0, "a/c" },
	{ "a//b/../c", 0, 0, "a/c" },
	{ "a/b/c/../../d", 0, 0, "a/d" },
	{ "/tools/a.deb", 0, 0, "tools/a.deb" },
	/* Names that only look special. */
	{ "...", 0, 0, "..." },
	{ "a/.../b", 0, 0, "a/.../b" },
	{ ".hidden", 0, 0, ".hidden" },
	{ "..a", 0, 0, "..a" },
	{ "a..", 0, 0, "a.." },
	{ "%2e%2e", 0, 0, "%2e%2e" },
	{ "%2e%2e/%2e%2e", 0, 0, "%2e%2e/%2e%2e" },
	{ "..%2f", 0, 0, "..%2f" },
	{ "..%2f..%2fetc", 0, 0, "..%2f..%2fetc" },
	{ "a\\..\\b", 0, 0, "a\\..\\b" },
	{ "with space", 0, 0, "with space" },
	{ "~user", 0, 0, "~user" },
	/* Escapes. */
	{ "..", 0, -EPERM, NULL },
	{ "/..", 0, -EPERM, NULL },
	{ "/../", 0, -EPERM, NULL },
	{ "../a", 0, -EPERM, NULL },
	{ "a/../..", 0, -EPERM, NULL },
	{ "a/b/../../..", 0, -EPERM, NULL },
	{ "a/../../b", 0, -EPERM, NULL },
	{ "./..", 0, -EPERM, NULL },
	{ "//..//a", 0, -EPERM, NULL },
	/* Valid multibyte UTF-8. */
	{ "caf\xc3\xa9", 0, 0, "caf\xc3\xa9" },
	{ "/\xe2\x82\xac/\xe6\x97\xa5\xe6\x9c\xac", 0, 0,
	    "\xe2\x82\xac/\xe6\x97\xa5\xe6\x9c\xac" },
	{ "\xf0\x9f\x98\x80.txt", 0, 0, "\xf0\x9f\x98\x80.txt" },
	{ "\xc2\x80", 0, 0, "\xc2\x80" },		/* U+0080 */
	{ "\xed\x9f\xbf", 0, 0, "\xed\x9f\xbf" },	/* U+D7FF */
	{ "\xee\x80\x80", 0, 0, "\xee\x80\x80" },	/* U+E000 */
	{ "\xef\xbf\xbf", 0, 0, "\xef\xbf\xbf" },	/* U+FFFF */
	{ "\xf4\x8f\xbf\xbf", 0, 0, "\xf4\x8f\xbf\xbf" },	/* U+10FFFF */
	/* Invalid UTF-8. */
	{ "\x80", 0, -EILSEQ, NULL },			/* lone continuation */
	{ "a/\xbf/b", 0, -EILSEQ, NULL },
	{ "\xc0\xaf", 0, -EILSEQ, NULL },		/* overlong '/' */
	{ "\xc1\xbf", 0, -EILSEQ, NULL },		/* overlong */
	{ "\xe0\x80\xaf", 0, -EILSEQ, NULL },		/* overlong '/' */
	{ "\xe0\x9f\xbf", 0, -EILSEQ, NULL },		/* overlong */
	{ "\xf0\x80\x80\xaf", 0, -EILSEQ, NULL },	/* overlong '/' */
	{ "\xf0\x8f\xbf\xbf", 0, -EILSEQ, NULL },	/* overlong */
	{ "\xed\xa0\x80", 0, -EILSEQ, NULL },		/* surrogate D800 */
	{ "\xed\xbf\xbf", 0, -EILSEQ, NULL },		/* surrogate DFFF */
	{ "\xf4\x90\x80\x80", 0, -EILSEQ, NULL },	/* U+110000 */
	{ "\xf5\x80\x80\x80", 0, -EILSEQ, NULL },
	{ "\xf8\x88\x80\x80\x80", 0, -EILSEQ, NULL },
	{ "\xfe", 0, -EILSEQ, NULL },
	{ "\xff", 0, -EILSEQ, NULL },
	{ "\xc3", 0, -EILSEQ, NULL },			/* truncated */
	{ "a\xe2\x82", 0, -EILSEQ, NULL },		/* truncated */
	{ "\xe2\x82/", 0, -EILSEQ, NULL },
	{ "\xc3\x28", 0, -EILSEQ, NULL },		/* bad continuation */
	/* NUL and control bytes. */
	{ "a\0b", 3, -EILSEQ, NULL },
	{ "\0", 1, -EILSEQ, NULL },
	{ "a/\0", 3, -EILSEQ, NULL },
	{ "a\nb", 0, -EILSEQ, NULL },
	{ "a\tb", 0, -EILSEQ, NULL },
	{ "\x1f", 0, -EILSEQ, NULL },
	{ "\x7f", 0, -EILSEQ, NULL },
	{ "a\rb", 0, -EILSEQ, NULL },
	{ "\x1b[0m", 0, -EILSEQ, NULL },
	/* Bad bytes win over an escape. */
	{ "../\x01", 0, -EILSEQ, NULL },
};

static void
test_table(void **state)
{
	char	out[PH_MAX_PATH + 1];
	size_t	i, len;
	int	rc;

	(void)state;
	assert_true(sizeof(cases) / sizeof(cases[0]) >= 40);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].in);
		memset(out, 'X', sizeof(out));
		rc = ph_path_normalize(cases[i].in, len, out, sizeof(out));
		if (rc != cases[i].rc)
			fail_msg("case %zu: got %d, want %d", i, rc,
			    cases[i].rc);
		if (rc == 0) {
			if (strcmp(out, cases[i].out) != 0)
				fail_msg("case %zu: got \"%s\", want \"%s\"",
				    i, out, cases[i].out);
		} else
			assert_string_equal(out, "");
	}
}

/* Only len bytes count: a longer buffer's tail is never looked at. */
static void
test_len_bounds_input(void **state)
{
	char	out[16];

	(void)state;
	assert_int_equal(ph_path_normalize("a/b/../..", 3, out, sizeof(out)),
	    0);
	assert_string_equal(out, "a/b");
	assert_int_equal(ph_path_normalize("..", 1, out, sizeof(out)), 0);
	assert_string_equal(out, ".");
	assert_int_equal(ph_path_normalize(NULL, 0, out, sizeof(out)), 0);
	assert_string_equal(out, ".");
}

static void
test_length_limits(void **state)
{
	char	*in, *out;
	size_t	 i;

	(void)state;
	in = malloc(PH_MAX_PATH + 1);
	out = malloc(PH_MAX_PATH + 1);
	assert_non_null(in);
	assert_non_null(out);

	/* Exactly 4096 bytes is accepted, as is its normal form. */
	memset(in, 'a', PH_MAX_PATH);
	assert_int_equal(ph_path_normalize(in, PH_MAX_PATH, out,
	    PH_MAX_PATH + 1), 0);
	assert_int_equal(strlen(out), PH_MAX_PATH);
	/* One byte more is refused before anything else is looked at. */
	memset(in, 'a', PH_MAX_PATH + 1);
	assert_int_equal(ph_path_normalize(in, PH_MAX_PATH + 1, out,
	    PH_MAX_PATH + 1), -ENAMETOOLONG);
	in[0] = '\0';
	assert_int_equal(ph_path_normalize(in, PH_MAX_PATH + 1, out,
	    PH_MAX_PATH + 1), -ENAMETOOLONG);

	/* 4096 bytes of "/" and "a/" mixtures. */
	for (i = 0; i < PH_MAX_PATH; i++)
		in[i] = i % 2 == 0 ? '/' : 'b';
	assert_int_equal(ph_path_normalize(in, PH_MAX_PATH, out,
	    PH_MAX_PATH + 1), 0);
	assert_int_equal(strlen(out), PH_MAX_PATH - 1);
	free(in);
	free(out);
}

/* The output cap bounds the result only, not intermediate states. */
static void
test_output_cap(void **state)
{
	char	out[8];

	(void)state;
	assert_int_equal(ph_path_normalize("abc/def", 7, out, 8), 0);
	assert_string_equal(out, "abc/def");
	assert_int_equal(ph_path_normalize("abc/defg", 8, out, 8),
	    -ENAMETOOLONG);
	assert_string_equal(out, "");
	assert_int_equal(ph_path_normalize("abcdefghij/../x", 15, out, 2), 0);
	assert_string_equal(out, "x");
	assert_int_equal(ph_path_normalize("/", 1, out, 2), 0);
	assert_string_equal(out, ".");
	assert_int_equal(ph_path_normalize("/", 1, out, 1), -ENAMETOOLONG);
	assert_int_equal(ph_path_normalize("/", 1, out, 0), -ENAMETOOLONG);
}

/* A normal form is a fixed point: normalising it again changes nothing. */
static void
test_idempotent(void **state)
{
	char	once[PH_MAX_PATH + 1], twice[PH_MAX_PATH + 1];
	size_t	i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].rc != 0)
			continue;
		len = cases[i].len != 0 ? cases[i].len : strlen(cases[i].in);
		assert_int_equal(ph_path_normalize(cases[i].in, len, once,
		    sizeof(once)), 0);
		assert_int_equal(ph_path_normalize(once, strlen(once), twice,
		    sizeof(twice)), 0);
		assert_string_equal(once, twice);
		assert_true(once[0] != '/');
		assert_null(strstr(once, "//"));
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_len_bounds_input),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_output_cap),
		cmocka_unit_test(test_idempotent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
