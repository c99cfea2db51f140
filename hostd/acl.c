/*
 * acl.c: access rules, first match wins.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "state.h"

struct acl {
	bool		 default_allow;
	struct acl_rule	*rules;
	size_t		 n;
};

/* True for the canonical 8-4-4-4-12 hex form, either case. */
static bool
acl_is_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != ACL_UUID_LEN)
		return false;
	for (i = 0; i < ACL_UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* True for text a domain name can be: UTF-8, no '/', no control bytes. */
static bool
acl_name_ok(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t len = strlen(s), i = 0, n;

	if (len == 0 || len > ACL_NAME_MAX)
		return false;
	while (i < len) {
		if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '/')
			return false;
		if ((n = ph_path_utf8_seq_len(p + i, len - i)) == 0)
			return false;
		i += n;
	}
	return true;
}

/* Parses the N of "cid:N": decimal, 1 to 2^32-2 (-1 is "any"). */
static bool
acl_parse_cid(const char *s, uint32_t *cid)
{
	unsigned long long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v == 0 || v >= UINT32_MAX)
		return false;
	*cid = (uint32_t)v;
	return true;
}

int
acl_rule_parse(const char *action, const char *match, const char *prefix,
    struct acl_rule *r, char *err, size_t errlen)
{
	const char *name;
	int e;

	memset(r, 0, sizeof(*r));
	err[0] = '\0';
	if (strcmp(action, "allow") == 0)
		r->allow = true;
	else if (strcmp(action, "deny") != 0) {
		snprintf(err, errlen, "invalid action '%s' (allow or deny)",
		    action);
		return -EINVAL;
	}
	if (strcmp(match, "*") == 0) {
		r->kind = ACL_ANY;
		snprintf(r->match, sizeof(r->match), "*");
	} else if (strncmp(match, "cid:", 4) == 0) {
		if (!acl_parse_cid(match + 4, &r->cid)) {
			snprintf(err, errlen, "invalid CID in '%s' (cid:N, N "
			    "from 1 to 4294967294)", match);
			return -EINVAL;
		}
		r->kind = ACL_CID;
		snprintf(r->match, sizeof(r->match), "cid:%u", r->cid);
	} else if (acl_is_uuid(match)) {
		r->kind = ACL_UUID;
		for (size_t i = 0; i <= ACL_UUID_LEN; i++)
			r->match[i] = (char)tolower((unsigned char)match[i]);
	} else {
		/* "name:" lets a name that looks like another form through. */
		name = strncmp(match, "name:", 5) == 0 ? match + 5 : match;
		if (!acl_name_ok(name)) {
			snprintf(err, errlen, "invalid match '%.300s' (*, "
			    "cid:N, a domain UUID or a domain name: up to %d "
			    "bytes of UTF-8, no '/' or control characters)",
			    match, ACL_NAME_MAX);
			return -EINVAL;
		}
		r->kind = ACL_NAME;
		snprintf(r->match, sizeof(r->match), "%s", name);
	}
	e = ph_path_normalize(prefix, strlen(prefix), r->prefix,
	    sizeof(r->prefix));
	if (e < 0) {
		snprintf(err, errlen, "invalid path prefix '%.300s' (%s)",
		    prefix, e == -EPERM ? "it climbs above the root" :
		    e == -ENAMETOOLONG ? "too long" :
		    "not UTF-8, or a control byte");
		return -EINVAL;
	}
	return 0;
}

const char *
acl_prefix_disp(const struct acl_rule *r, char *buf, size_t cap)
{
	return ph_path_display(r->prefix, buf, cap);
}

int
acl_new(bool default_allow, struct acl **out)
{
	struct acl *acl;

	*out = NULL;
	if ((acl = calloc(1, sizeof(*acl))) == NULL)
		return -ENOMEM;
	acl->default_allow = default_allow;
	*out = acl;
	return 0;
}

void
acl_free(struct acl *acl)
{
	if (acl == NULL)
		return;
	free(acl->rules);
	free(acl);
}

bool
acl_default_allow(const struct acl *acl)
{
	return acl->default_allow;
}

int
acl_set_rules(struct acl *acl, const struct acl_rule *rules, size_t n)
{
	struct acl_rule *copy = NULL;

	if (n > 0) {
		if ((copy = calloc(n, sizeof(*copy))) == NULL)
			return -ENOMEM;
		memcpy(copy, rules, n * sizeof(*copy));
	}
	free(acl->rules);
	acl->rules = copy;
	acl->n = n;
	return 0;
}

/* Loads the saved rules and swaps them in only when all were read. */
/*
 * Rebuilds one saved rule through the same check `acl add` uses; false
 * for a row nobody could have added.
 */
static bool
acl_row_parse(const struct state_acl_row *row, struct acl_rule *r)
{
	char word[ACL_NAME_MAX + 8], why[512];

	if (row->action == NULL || row->kind == NULL || row->match == NULL ||
	    row->prefix == NULL)
		return false;
	/* A name is saved bare; "name:" keeps it a name when re-read. */
	if (strcmp(row->kind, "any") == 0)
		snprintf(word, sizeof(word), "*");
	else if (strcmp(row->kind, "cid") == 0)
		snprintf(word, sizeof(word), "cid:%s", row->match);
	else if (strcmp(row->kind, "name") == 0)
		snprintf(word, sizeof(word), "name:%.*s", ACL_NAME_MAX,
		    row->match);
	else
		snprintf(word, sizeof(word), "%.*s", ACL_NAME_MAX, row->match);
	if (acl_rule_parse(row->action, word, row->prefix, r, why,
	    sizeof(why)) < 0)
		return false;
	return (strcmp(row->kind, "uuid") == 0) == (r->kind == ACL_UUID);
}

int
acl_load(struct state *st, struct acl_rule **rules, size_t *n)
{
	struct state_acl_row *rows = NULL;
	struct acl_rule *v = NULL;
	char msg[96];
	size_t len = 0;
	int err;

	*rules = NULL;
	*n = 0;
	if ((err = state_acl_rows(st, &rows, &len)) < 0)
		return err;
	if (len > 0 && (v = calloc(len, sizeof(*v))) == NULL) {
		err = -ENOMEM;
		goto done;
	}
	for (size_t i = 0; i < len; i++) {
		if (!acl_row_parse(&rows[i], &v[i])) {
			snprintf(msg, sizeof(msg), "access rule %" PRId64
			    " in the state database is not valid",
			    rows[i].position);
			state_set_errmsg(st, msg);
			err = -EINVAL;
			goto done;
		}
		v[i].position = (uint32_t)(i + 1);
	}
	*rules = v;
	*n = len;
	v = NULL;
	err = 0;
done:
	free(v);
	state_acl_rows_free(rows, len);
	return err;
}

int
acl_save(struct state *st, uint32_t at, const struct acl_rule *r,
    uint32_t *pos)
{
	struct state_acl_row row;
	char action[8], kind[8], match[ACL_NAME_MAX + 1];
	char prefix[PH_MAX_PATH + 1];

	memset(&row, 0, sizeof(row));
	snprintf(action, sizeof(action), "%s", r->allow ? "allow" : "deny");
	snprintf(kind, sizeof(kind), "%s", r->kind == ACL_CID ? "cid" :
	    r->kind == ACL_UUID ? "uuid" : r->kind == ACL_NAME ? "name" :
	    "any");
	/* Saved bare: the CID's number, else the name or UUID as shown. */
	if (r->kind == ACL_CID)
		snprintf(match, sizeof(match), "%u", r->cid);
	else
		snprintf(match, sizeof(match), "%s", r->match);
	snprintf(prefix, sizeof(prefix), "%s", r->prefix);
	row.action = action;
	row.kind = kind;
	row.match = match;
	row.prefix = prefix;
	return state_acl_add(st, at, &row, pos);
}

int
acl_reload(struct acl *acl, struct state *st)
{
	struct acl_rule *rules = NULL;
	size_t n = 0;
	int err;

	if ((err = acl_load(st, &rules, &n)) < 0)
		return err;
	err = acl_set_rules(acl, rules, n);
	free(rules);
	return err;
}

size_t
acl_count(const struct acl *acl)
{
	return acl->n;
}

const struct acl_rule *
acl_rule_at(const struct acl *acl, size_t i)
{
	return i < acl->n ? &acl->rules[i] : NULL;
}

bool
acl_rule_matches_peer(const struct acl_rule *r, const struct acl_peer *peer)
{
	switch (r->kind) {
	case ACL_ANY:
		return true;
	case ACL_CID:
		return peer->cid != 0 && peer->cid == r->cid;
	case ACL_NAME:
		return peer->name != NULL && strcmp(peer->name, r->match) == 0;
	case ACL_UUID:
		return peer->uuid != NULL &&
		    strcasecmp(peer->uuid, r->match) == 0;
	}
	return false;
}

bool
acl_rule_covers(const struct acl_rule *r, const char *rel)
{
	size_t n = strlen(r->prefix);

	if (strcmp(r->prefix, ".") == 0)
		return true;
	/* A whole component: "tools" is not a prefix of "toolsx". */
	return strncmp(rel, r->prefix, n) == 0 &&
	    (rel[n] == '\0' || rel[n] == '/');
}

void
acl_check(const struct acl *acl, const struct acl_peer *peer,
    const char *rel, struct acl_verdict *out)
{
	out->allow = true;
	out->rule = 0;
	if (acl == NULL)
		return;
	out->allow = acl->default_allow;
	for (size_t i = 0; i < acl->n; i++) {
		const struct acl_rule *r = &acl->rules[i];

		if (acl_rule_matches_peer(r, peer) &&
		    acl_rule_covers(r, rel)) {
			out->allow = r->allow;
			out->rule = r->position;
			return;
		}
	}
}

/*
 * Walks the peer's rules in order: a deny decides some path; an allow of
 * the whole tree decides every path no earlier rule did.
 */
bool
acl_restricts(const struct acl *acl, const struct acl_peer *peer)
{
	if (acl == NULL)
		return false;
	for (size_t i = 0; i < acl->n; i++) {
		const struct acl_rule *r = &acl->rules[i];

		if (!acl_rule_matches_peer(r, peer))
			continue;
		if (!r->allow)
			return true;
		if (strcmp(r->prefix, ".") == 0)
			return false;
	}
	return !acl->default_allow;
}

/* True if prefix lies strictly beneath rel, whole components. */
static bool
acl_beneath(const char *prefix, const char *rel)
{
	size_t n = strlen(rel);

	if (strcmp(prefix, ".") == 0)
		return false;
	if (strcmp(rel, ".") == 0)
		return true;
	return strncmp(prefix, rel, n) == 0 && prefix[n] == '/';
}

void
acl_check_browse(const struct acl *acl, const struct acl_peer *peer,
    const char *rel, struct acl_verdict *out)
{
	struct acl_verdict v;

	acl_check(acl, peer, rel, out);
	if (out->allow)
		return;
	/* Is rel on the way to a prefix this peer really may read? */
	for (size_t i = 0; i < acl->n; i++) {
		const struct acl_rule *r = &acl->rules[i];

		if (!r->allow || !acl_rule_matches_peer(r, peer) ||
		    !acl_beneath(r->prefix, rel))
			continue;
		acl_check(acl, peer, r->prefix, &v);
		if (v.allow) {
			out->allow = true;
			out->rule = v.rule;
			return;
		}
	}
}
