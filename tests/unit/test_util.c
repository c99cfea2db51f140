/*
 * test_util.c: hex and digest formatting, the display form of paths,
 * timespecs in nanoseconds and size parsing.
 */
#include <stdlib.h>
#include <time.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "proto.h"

static void
test_sha256_hex(void **state)
{
	uint8_t	d[PH_SHA256_LEN];
	char	out[65];
	int	i;

	(void)state;
	for (i = 0; i < PH_SHA256_LEN; i++)
		d[i] = (uint8_t)(i * 8 + 7);
	memset(out, 'Z', sizeof(out));
	ph_util_sha256_hex(d, out);
	assert_int_equal(strlen(out), 64);
	assert_string_equal(out,
	    "070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff");
	memset(d, 0, sizeof(d));
	ph_util_sha256_hex(d, out);
	assert_string_equal(out,
	    "0000000000000000000000000000000000000000000000000000000000000000");
}

static void
test_hex_encode(void **state)
{
	static const uint8_t	in[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
	char			out[2 * sizeof(in) + 2];

	(void)state;
	memset(out, 'Z', sizeof(out));
	ph_util_hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "00017f80abff");
	/* 2 * n digits and the NUL, not a byte more. */
	assert_int_equal(out[sizeof(out) - 1], 'Z');
	memset(out, 'Z', sizeof(out));
	ph_util_hex_encode(in + 4, 1, out);
	assert_memory_equal(out, "ab\0Z", 4);
	memset(out, 'Z', sizeof(out));
	ph_util_hex_encode(NULL, 0, out);
	assert_memory_equal(out, "\0Z", 2);
}

static void
test_path_display(void **state)
{
	static char	long_rel[PH_MAX_PATH + 1];
	char		buf[PH_MAX_PATH + 2];

	(void)state;
	assert_string_equal(ph_path_display(".", buf, sizeof(buf)), "/");
	assert_string_equal(ph_path_display("", buf, sizeof(buf)), "/");
	assert_string_equal(ph_path_display("a", buf, sizeof(buf)), "/a");
	assert_string_equal(ph_path_display("tools/a.deb", buf, sizeof(buf)),
	    "/tools/a.deb");
	/* Only the root is ".": other dot names are names. */
	assert_string_equal(ph_path_display("./x", buf, sizeof(buf)), "/./x");
	assert_string_equal(ph_path_display("..", buf, sizeof(buf)), "/..");
	assert_ptr_equal(ph_path_display("a", buf, sizeof(buf)), buf);
	/* Cut short like snprintf, NUL included; nothing at cap 0. */
	assert_string_equal(ph_path_display("abc", buf, 3), "/a");
	assert_string_equal(ph_path_display("abc", buf, 1), "");
	assert_string_equal(ph_path_display(".", buf, 1), "");
	buf[0] = 'Z';
	ph_path_display("abc", buf, 0);
	assert_int_equal(buf[0], 'Z');
	/* The longest normalised path fits PH_MAX_PATH + 2 bytes. */
	memset(long_rel, 'n', PH_MAX_PATH);
	ph_path_display(long_rel, buf, sizeof(buf));
	assert_int_equal(strlen(buf), PH_MAX_PATH + 1);
	assert_memory_equal(buf + 1, long_rel, PH_MAX_PATH);
}

static void
test_timespec_ns(void **state)
{
	struct timespec	ts = { .tv_sec = 0, .tv_nsec = 0 };

	(void)state;
	assert_int_equal(ph_util_timespec_ns(&ts), 0);
	ts.tv_sec = 1700000000;
	ts.tv_nsec = 999999999;
	assert_int_equal(ph_util_timespec_ns(&ts), 1700000000999999999ll);
	/* Before 1970: tv_nsec still counts forwards. */
	ts.tv_sec = -1;
	ts.tv_nsec = 500000000;
	assert_int_equal(ph_util_timespec_ns(&ts), -500000000ll);
}

struct size_case {
	const char	*in;
	int		 rc;
	uint64_t	 want;
};

static const struct size_case size_cases[] = {
	{ "0", 0, 0 },
	{ "1", 0, 1 },
	{ "1234", 0, 1234 },
	{ "1K", 0, 1024 },
	{ "1k", 0, 1024 },
	{ "10M", 0, 10485760 },
	{ "3m", 0, 3145728 },
	{ "2G", 0, 2147483648ull },
	{ "1T", 0, 1099511627776ull },
	{ "0T", 0, 0 },
	{ "007", 0, 7 },
	{ "18446744073709551615", 0, UINT64_MAX },
	{ "16777215T", 0, 16777215ull << 40 },
	{ "18446744073709551616", -ERANGE, 0 },
	{ "99999999999999999999999", -ERANGE, 0 },
	{ "16777216T", -ERANGE, 0 },
	{ "17179869184G", -ERANGE, 0 },
	{ "", -EINVAL, 0 },
	{ "K", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1 ", -EINVAL, 0 },
	{ "1 K", -EINVAL, 0 },
	{ "1KB", -EINVAL, 0 },
	{ "1KiB", -EINVAL, 0 },
	{ "1P", -EINVAL, 0 },
	{ "1.5G", -EINVAL, 0 },
	{ "0x10", -EINVAL, 0 },
	{ "1e3", -EINVAL, 0 },
};

static void
test_parse_size(void **state)
{
	uint64_t	v;
	size_t		i;
	int		rc;

	(void)state;
	for (i = 0; i < sizeof(size_cases) / sizeof(size_cases[0]); i++) {
		v = 12345;
		rc = ph_util_parse_size(size_cases[i].in, &v);
		if (rc != size_cases[i].rc)
			fail_msg("\"%s\": got %d, want %d", size_cases[i].in,
			    rc, size_cases[i].rc);
		if (v != size_cases[i].want)
			fail_msg("\"%s\": got %llu", size_cases[i].in,
			    (unsigned long long)v);
	}
	assert_int_equal(ph_util_parse_size(NULL, &v), -EINVAL);
}

/* The ls-style mode string porthole ls -l and portholectl repo ls share. */
static void
test_mode_string(void **state)
{
	char buf[PH_MODE_STRLEN];

	(void)state;
	ph_util_mode_string(PH_FT_REGULAR, 0644, buf);
	assert_string_equal(buf, "-rw-r--r--");
	ph_util_mode_string(PH_FT_DIR, 0755, buf);
	assert_string_equal(buf, "drwxr-xr-x");
	ph_util_mode_string(PH_FT_OTHER, 0600, buf);
	assert_string_equal(buf, "?rw-------");
	ph_util_mode_string(PH_FT_REGULAR, 04755, buf);
	assert_string_equal(buf, "-rwsr-xr-x");
	ph_util_mode_string(PH_FT_REGULAR, 02644, buf);
	assert_string_equal(buf, "-rw-r-Sr--");
	ph_util_mode_string(PH_FT_DIR, 01777, buf);
	assert_string_equal(buf, "drwxrwxrwt");
	ph_util_mode_string(PH_FT_DIR, 01770, buf);
	assert_string_equal(buf, "drwxrwx--T");
	assert_string_equal(ph_util_ftype_name(PH_FT_REGULAR), "file");
	assert_string_equal(ph_util_ftype_name(PH_FT_DIR), "dir");
	assert_string_equal(ph_util_ftype_name(PH_FT_OTHER), "other");
	assert_string_equal(ph_util_ftype_name(0), "other");
}

/* Times convert in UTC here, including one before 1970 (floor division). */
static void
test_time_string(void **state)
{
	char buf[PH_TIME_STRLEN];

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	ph_util_time_string(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01 00:00:00");
	ph_util_time_string(1795305600LL * 1000000000 + 999999999, buf,
	    sizeof(buf));
	assert_string_equal(buf, "2026-11-22 00:00:00");
	ph_util_time_string(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31 23:59:59");
}

/* One log or text field: control bytes, backslash, bad UTF-8 escaped. */
static void
test_escape(void **state)
{
	char out[64];

	(void)state;
	assert_string_equal(ph_util_escape("a b\\c", 5, false, out,
	    sizeof(out)), "a\\x20b\\x5cc");
	/* Valid UTF-8 passes, unless every high byte is asked for. */
	assert_string_equal(ph_util_escape("\xc3\xa9", 2, false, out,
	    sizeof(out)), "\xc3\xa9");
	assert_string_equal(ph_util_escape("\xc3\xa9", 2, true, out,
	    sizeof(out)), "\\xc3\\xa9");
	/* A lone continuation byte is not UTF-8. */
	assert_string_equal(ph_util_escape("x\xa9", 2, false, out,
	    sizeof(out)), "x\\xa9");
	assert_string_equal(ph_util_escape("\x7f\n", 2, false, out,
	    sizeof(out)), "\\x7f\\x0a");
	/* Cut short with "...", always NUL-terminated. */
	assert_string_equal(ph_util_escape("abcdefghij", 10, false, out, 8),
	    "abcd...");
	assert_string_equal(ph_util_escape("", 0, false, out, 1), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_path_display),
		cmocka_unit_test(test_timespec_ns),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_mode_string),
		cmocka_unit_test(test_time_string),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
