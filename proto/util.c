/*
 * util.c: small helpers shared by the daemon and the tools.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "proto.h"

void
ph_util_hex_encode(const void *src, size_t n, char *out)
{
	static const char	hex[] = "0123456789abcdef";
	const uint8_t		*p = src;
	size_t			i;

	for (i = 0; i < n; i++) {
		out[i * 2] = hex[p[i] >> 4];
		out[i * 2 + 1] = hex[p[i] & 0x0f];
	}
	out[n * 2] = '\0';
}

void
ph_util_sha256_hex(const uint8_t digest[PH_SHA256_LEN], char out[65])
{
	ph_util_hex_encode(digest, PH_SHA256_LEN, out);
}

int64_t
ph_util_timespec_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

/*
 * Accepts only digits and one optional suffix letter, so "10 M", "-1" and
 * "1MB" are errors rather than something strtoull would half-accept.
 */
int
ph_util_parse_size(const char *s, uint64_t *out)
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

const char *
ph_util_ftype_name(uint8_t ftype)
{
	switch (ftype) {
	case PH_FT_REGULAR:
		return "file";
	case PH_FT_DIR:
		return "dir";
	default:
		return "other";
	}
}

void
ph_util_mode_string(uint8_t ftype, uint32_t mode, char buf[PH_MODE_STRLEN])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	buf[0] = ftype == PH_FT_REGULAR ? '-' : ftype == PH_FT_DIR ? 'd' : '?';
	for (i = 0; i < 9; i++)
		buf[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	/* setuid, setgid and sticky, the way ls shows them. */
	if (mode & 04000)
		buf[3] = (mode & 0100) ? 's' : 'S';
	if (mode & 02000)
		buf[6] = (mode & 0010) ? 's' : 'S';
	if (mode & 01000)
		buf[9] = (mode & 0001) ? 't' : 'T';
	buf[10] = '\0';
}

void
ph_util_time_string(int64_t ns, char *buf, size_t cap)
{
	struct tm tm;
	time_t t;
	int64_t s;

	s = ns / 1000000000;
	if (ns % 1000000000 < 0)
		s--;
	t = (time_t)s;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, cap, "@%" PRId64, s);
}

char *
ph_util_escape(const char *s, size_t len, bool escape_high, char *out, size_t cap)
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
