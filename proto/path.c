/*
 * path.c: the one repository path normaliser, and the form paths are shown
 * in.
 *
 * Every component that turns a path from the wire or the command line into
 * something it opens goes through ph_path_normalize(), so there is exactly
 * one place that decides what "inside the repository" means.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

size_t
ph_path_utf8_seq_len(const uint8_t *p, size_t n)
{
	uint8_t	lo = 0x80, hi = 0xbf;
	size_t	len, i;

	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* below is overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* above is a surrogate */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* below is overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* above is past U+10FFFF */
	} else
		return 0;
	if (n < len)
		return 0;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* Checks the whole input for bytes no path may hold, before any resolving. */
static int
path_bytes_valid(const uint8_t *p, size_t len)
{
	size_t	i = 0, n;

	while (i < len) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return -EILSEQ;
		if ((n = ph_path_utf8_seq_len(p + i, len - i)) == 0)
			return -EILSEQ;
		i += n;
	}
	return 0;
}

/*
 * Builds the result in a local buffer that can hold any accepted input, so
 * a small cap only matters for the final result; a '..' drops the last
 * component already written, which is exact because components never
 * contain '/'.
 */
int
ph_path_normalize(const char *in, size_t len, char *out, size_t cap)
{
	char		 tmp[PH_MAX_PATH + 1];
	const uint8_t	*p = (const uint8_t *)in;
	size_t		 olen = 0, i = 0, start, n;
	char		*slash;
	int		 rc;

	if (cap > 0)
		out[0] = '\0';
	if (len > PH_MAX_PATH)
		return -ENAMETOOLONG;
	if (len > 0 && in == NULL)
		return -EINVAL;
	if ((rc = path_bytes_valid(p, len)) != 0)
		return rc;

	while (i < len) {
		start = i;
		while (i < len && p[i] != '/')
			i++;
		n = i - start;
		if (i < len)
			i++;	/* skip the '/' */
		if (n == 0 || (n == 1 && p[start] == '.'))
			continue;
		if (n == 2 && p[start] == '.' && p[start + 1] == '.') {
			if (olen == 0)
				return -EPERM;
			tmp[olen] = '\0';
			slash = strrchr(tmp, '/');
			olen = slash == NULL ? 0 : (size_t)(slash - tmp);
			continue;
		}
		/* Cannot overflow: the result is never longer than the input. */
		if (olen > 0)
			tmp[olen++] = '/';
		memcpy(tmp + olen, p + start, n);
		olen += n;
	}
	if (olen == 0)
		tmp[olen++] = '.';
	tmp[olen] = '\0';
	if (olen + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out, tmp, olen + 1);
	return 0;
}

const char *
ph_path_display(const char *rel, char *buf, size_t cap)
{
	snprintf(buf, cap, "/%s", strcmp(rel, ".") == 0 ? "" : rel);
	return buf;
}
