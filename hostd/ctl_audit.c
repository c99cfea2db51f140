/*
 * ctl_audit.c: `audit [--since T] [--domain D] [--limit N]`: the newest
 * rows of the audit trail that match.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "ctl.h"
#include "server.h"
#include "state.h"

/* `audit` rows by default, and at most. */
#define CTL_AUDIT_LIMIT		100
#define CTL_AUDIT_MAX		10000

/* Adds one audit row to the list, unless the list is full. */
static void
ctl_audit_row(void *arg, const struct state_audit_row *row)
{
	struct ctl_json_list *l = arg;
	char when[AUDIT_TIME_STRLEN];

	if (l->cut)
		return;
	audit_time_string(row->time_ms, when, sizeof(when));
	(void)ctl_json_list_add(l, json_pack("{s:s, s:I, s:o, s:o, s:o, s:o, "
	    "s:o, s:o, s:o, s:o, s:o}", "time", when, "time_ms",
	    (json_int_t)row->time_ms, "cid", row->cid != 0 ?
	    json_integer(row->cid) : json_null(), "peer",
	    ctl_json_str(row->peer != NULL ? row->peer : ""), "domain",
	    ctl_json_str_or_null(row->domain), "uuid",
	    ctl_json_str_or_null(row->uuid), "op",
	    ctl_json_str(row->op != NULL ? row->op : ""), "path",
	    ctl_json_str(row->path != NULL ? row->path : ""), "result",
	    ctl_json_str(row->result != NULL ? row->result : ""), "bytes",
	    ctl_json_u64(row->bytes), "ms", ctl_json_u64(row->ms)));
}

/* Parses a CID: decimal, 1 to 2^32-2. */
static bool
ctl_audit_cid(const char *s, uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v >= UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* True if arg is "--NAME" or "--NAME=...". */
static bool
ctl_audit_is_opt(const char *arg, const char *name)
{
	size_t n = strlen(name);

	return strncmp(arg, name, n) == 0 && (arg[n] == '\0' || arg[n] == '=');
}

/* Reads the options into q; false after answering a usage error. */
static bool
ctl_audit_query(struct ctl_conn *cc, size_t argc, const char *const *argv,
    struct state_audit_query *q)
{
	int64_t now = audit_now_ms();
	const char *opt, *val;

	for (size_t i = 0; i < argc; i++) {
		opt = argv[i];
		if (!ctl_audit_is_opt(opt, "--since") &&
		    !ctl_audit_is_opt(opt, "--domain") &&
		    !ctl_audit_is_opt(opt, "--limit")) {
			ctl_error(cc, PH_ERR_USAGE, "unknown argument '%s'; "
			    "usage: audit [--since T] [--domain D] "
			    "[--limit N]", opt);
			return false;
		}
		if ((val = strchr(opt, '=')) != NULL)
			val++;
		else if (i + 1 < argc)
			val = argv[++i];
		else {
			ctl_error(cc, PH_ERR_USAGE, "%s needs a value", opt);
			return false;
		}
		if (ctl_audit_is_opt(opt, "--since")) {
			if (audit_parse_time(val, now, &q->since_ms) < 0) {
				ctl_error(cc, PH_ERR_USAGE, "invalid --since "
				    "'%s' (30m, 2h, 1d, 1w, or an ISO 8601 "
				    "time such as 2024-05-01T12:00:00Z)", val);
				return false;
			}
		} else if (ctl_audit_is_opt(opt, "--domain")) {
			q->domain = NULL;
			q->cid = 0;
			if (strncmp(val, "cid:", 4) != 0)
				q->domain = val;
			else if (!ctl_audit_cid(val + 4, &q->cid)) {
				ctl_error(cc, PH_ERR_USAGE, "invalid --domain "
				    "'%s' (a domain name or UUID, or cid:N)",
				    val);
				return false;
			}
		} else if (!ctl_parse_count(val, CTL_AUDIT_MAX, &q->limit)) {
			ctl_error(cc, PH_ERR_USAGE, "invalid --limit '%s' "
			    "(1 to %d)", val, CTL_AUDIT_MAX);
			return false;
		}
	}
	return true;
}

/* `audit`: the newest matching rows, oldest first, flushed first. */
void
ctl_audit_run(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct audit *a = server_audit(ctl_server(cc));
	struct state *state = ctl_state(cc);
	struct state_audit_query q;
	struct ctl_json_list l;
	bool more = false;

	memset(&q, 0, sizeof(q));
	q.since_ms = INT64_MIN;
	q.limit = CTL_AUDIT_LIMIT;
	if (!ctl_audit_query(cc, argc, argv, &q))
		return;
	if (!audit_enabled(a)) {
		ctl_error(cc, PH_ERR_UNAVAILABLE, "the audit trail is off "
		    "(--audit-max-rows 0)");
		return;
	}
	/* What is still in memory belongs in the answer. */
	(void)audit_flush(a);
	if (!ctl_json_list_init(&l, CTL_JSON_LIST_MAX)) {
		ctl_reply(cc, PH_OK, NULL);
		return;
	}
	if (state_audit_query(state, &q, ctl_audit_row, &l, &more) < 0) {
		json_decref(l.array);
		ctl_error(cc, PH_ERR_INTERNAL, "cannot read the audit trail: "
		    "%s", state_errmsg(state));
		return;
	}
	/* truncated: anything left out; cut and more say why. */
	ctl_reply(cc, PH_OK, json_pack("{s:o, s:b, s:b, s:b, s:I}", "entries",
	    l.array, "truncated", more || l.cut, "cut", l.cut, "more", more,
	    "limit", (json_int_t)q.limit));
}
