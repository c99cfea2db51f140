/*
 * util.c: small helpers shared by the daemon and the tools.
 */
#include <errno.h>

#include "proto.h"

void
ph_sha256_hex(const uint8_t digest[PH_SHA256_LEN], char out[65])
{
	static const char	hex[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < PH_SHA256_LEN; i++) {
		out[i * 2] = hex[digest[i] >> 4];
		out[i * 2 + 1] = hex[digest[i] & 0x0f];
	}
	out[PH_SHA256_LEN * 2] = '\0';
}

/*
 * Accepts only digits and one optional suffix letter, so "10 M", "-1" and
 * "1MB" are errors rather than something strtoull would half-accept.
 */
int
ph_parse_size(const char *s, uint64_t *out)
{
	uint64_t	v = 0, mul = 1;
	unsigned int	shift = 0;

	*out = 0;
	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	while (*s >= '0' && *s <= '9') {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	switch (*s) {
	case '\0':
		break;
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		return -EINVAL;
	}
	if (*s != '\0' && s[1] != '\0')
		return -EINVAL;
	mul <<= shift;
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}
