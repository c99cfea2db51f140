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
fmt_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + strlen(s);
	size_t n;

	fputc('"', f);
	while (*p != '\0') {
		n = ph_path_utf8_seq_len(p, (size_t)(end - p));
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
	const unsigned char *end = p + strlen(s);
	size_t n;

	while (*p != '\0') {
		n = ph_path_utf8_seq_len(p, (size_t)(end - p));
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
