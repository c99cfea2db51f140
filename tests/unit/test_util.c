/*
 * test_util.c: digest formatting and size parsing.
 */
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
	ph_sha256_hex(d, out);
	assert_int_equal(strlen(out), 64);
	assert_string_equal(out,
	    "070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff");
	memset(d, 0, sizeof(d));
	ph_sha256_hex(d, out);
	assert_string_equal(out,
	    "0000000000000000000000000000000000000000000000000000000000000000");
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
		rc = ph_parse_size(size_cases[i].in, &v);
		if (rc != size_cases[i].rc)
			fail_msg("\"%s\": got %d, want %d", size_cases[i].in,
			    rc, size_cases[i].rc);
		if (v != size_cases[i].want)
			fail_msg("\"%s\": got %llu", size_cases[i].in,
			    (unsigned long long)v);
	}
	assert_int_equal(ph_parse_size(NULL, &v), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha256_hex),
		cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
