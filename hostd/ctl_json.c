/*
 * ctl_json.c: JSON values for control replies: strings whatever their
 * bytes, counters, and lists bounded to fit one CTL_REPLY.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

json_t *
ctl_json_str(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t left = strlen(str), o = 0, n;
	json_t *v;
	char *clean;

	if ((v = json_string(str)) != NULL)
		return v;
	/* Not UTF-8 (a file name may be any bytes): 3 bytes per bad one. */
	if ((clean = malloc(3 * left + 1)) == NULL)
		return NULL;
	while (left > 0) {
		if ((n = ph_path_utf8_seq_len(s, left)) == 0) {
			memcpy(clean + o, "\xef\xbf\xbd", 3);
			o += 3;
			n = 1;
		} else {
			memcpy(clean + o, s, n);
			o += n;
		}
		s += n;
		left -= n;
	}
	clean[o] = '\0';
	v = json_string(clean);
	free(clean);
	return v;
}

json_t *
ctl_json_str_or_null(const char *s)
{
	return s != NULL ? ctl_json_str(s) : json_null();
}

json_t *
ctl_json_u64(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

bool
ctl_json_list_init(struct ctl_json_list *l, size_t max)
{
	memset(l, 0, sizeof(*l));
	l->max = max;
	l->array = json_array();
	return l->array != NULL;
}

/* Appends item if the array's JSON stays within its bound. */
bool
ctl_json_list_add(struct ctl_json_list *l, json_t *item)
{
	size_t n;

	if (item == NULL || l->cut) {
		l->cut = true;
		json_decref(item);
		return false;
	}
	n = json_dumpb(item, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY |
	    JSON_REAL_PRECISION(10));
	if (n == 0 || l->bytes + n + 1 > l->max ||
	    json_array_append_new(l->array, item) < 0) {
		if (n == 0 || l->bytes + n + 1 > l->max)
			json_decref(item);
		l->cut = true;
		return false;
	}
	l->bytes += n + 1;
	return true;
}

