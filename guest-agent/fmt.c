/*
 * fmt.c: text formatting for the porthole CLI.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fmt.h"
#include "proto.h"

void
fmt_size(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = {
		"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"
	};
	double v;
	size_t i;

	if (bytes < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", bytes);
		return;
	}
	v = (double)bytes / 1024.0;
	for (i = 0; v >= 1024.0 && i + 1 < sizeof(units) / sizeof(units[0]);
	    i++)
		v /= 1024.0;
	snprintf(buf, cap, "%.1f %s", v, units[i]);
}

void
fmt_rate(uint64_t bytes, double seconds, char *buf, size_t cap)
{
	char size[FMT_SIZE_LEN];
	double per_second;

	if (seconds <= 0.0) {
		snprintf(buf, cap, "-");
		return;
	}
	per_second = (double)bytes / seconds;
	if (per_second >= 18446744073709551615.0)
		per_second = 18446744073709551615.0;
	fmt_size((uint64_t)per_second, size, sizeof(size));
	snprintf(buf, cap, "%s/s", size);
}

void
fmt_duration(double seconds, char *buf, size_t cap)
{
	unsigned long s;

	/* Beyond 100 days an estimate says nothing useful. */
	if (!(seconds >= 0.0) || seconds > 100.0 * 86400.0) {
		snprintf(buf, cap, "--:--");
		return;
	}
	s = (unsigned long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, cap, "%lu:%02lu:%02lu", s / 3600, s / 60 % 60,
		    s % 60);
	else
		snprintf(buf, cap, "%lu:%02lu", s / 60, s % 60);
}

void
fmt_mode(uint8_t ftype, uint32_t mode, char buf[FMT_MODE_LEN])
{
	static const char rwx[] = "rwxrwxrwx";
	int i;

	switch (ftype) {
	case PH_FT_REGULAR:
		buf[0] = '-';
		break;
	case PH_FT_DIR:
		buf[0] = 'd';
		break;
	default:
		buf[0] = '?';
		break;
	}
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
fmt_time(int64_t mtime_ns, char *buf, size_t cap)
{
	struct tm tm;
	time_t t;
	int64_t s;

	/* Floor division, so times before 1970 land on the right second. */
	s = mtime_ns / 1000000000;
	if (mtime_ns % 1000000000 < 0)
		s--;
	t = (time_t)s;
	if (localtime_r(&t, &tm) == NULL ||
	    strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, cap, "@%" PRId64, s);
}

const char *
fmt_ftype(uint8_t ftype)
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

/*
 * Length of the well-formed UTF-8 sequence at s (1-4), or 0 if the bytes
 * there are not one (overlong forms, surrogates and values past U+10FFFF
 * included). A NUL ends the string, so it is never part of a sequence.
 */
static size_t
utf8_seq_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

void
fmt_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	fputc('"', f);
	while (*p != '\0') {
		n = utf8_seq_len(p);
		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
		} else if (*p == '"' || *p == '\\') {
			fputc('\\', f);
			fputc(*p++, f);
		} else if (*p == '\n') {
			fputs("\\n", f);
			p++;
		} else if (*p == '\t') {
			fputs("\\t", f);
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

void
fmt_safe_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p != '\0') {
		n = utf8_seq_len(p);
		/* C0 controls, DEL, and the C1 controls U+0080..U+009F. */
		if (n == 0 || *p < 0x20 || *p == 0x7f ||
		    (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
			fputc('?', f);
			p++;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
}
