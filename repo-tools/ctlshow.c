/*
 * ctlshow.c: each command's JSON reply as the text people read.
 *
 * Every function unpacks the fields it prints (json_unpack fails on a
 * missing or mistyped one) and prints lines; the wording is what
 * portholectl always printed, so scripts that read the text keep working.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctlshow.h"
#include "proto.h"

/* Lines of a long list printed before the summary line. */
#define CTLSHOW_LIST_MAX	200

#define CTLSHOW_ENTRY(id, w, mn, mx, ops, fl, handler, show, sum)	\
	[CTLTAB_##id] = show,
static ctlshow_fn *const ctlshow_fns[CTLTAB_NCOMMANDS] = {
	CTLTAB_COMMANDS(CTLSHOW_ENTRY)
};
#undef CTLSHOW_ENTRY

ctlshow_fn *
ctlshow_for(enum ctltab_id id)
{
	return ctlshow_fns[id];
}

int
ctlshow_error(FILE *f, json_t *r)
{
	const char *msg;

	if (json_unpack(r, "{s:s}", "message", &msg) < 0)
		return -1;
	fprintf(f, "%s\n", msg);
	return 0;
}

/*
 * Copies s escaped as the daemon's log shows names (ph_util_escape()).
 * Returns a string to free, or NULL.
 */
static char *
ctlshow_escape(const char *s)
{
	size_t n = strlen(s), cap = 4 * n + 4;
	char *out;

	if ((out = malloc(cap)) == NULL)
		return NULL;
	return ph_util_escape(s, n, false, out, cap);
}

/* A string field that may be null (or absent): NULL then. */
static const char *
ctlshow_opt_str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A JSON integer that may also be a counter, as an unsigned number. */
static uint64_t
ctlshow_u64(json_int_t v)
{
	return v < 0 ? 0 : (uint64_t)v;
}

/* "1.5 GiB" style. */
static const char *
ctlshow_human(json_int_t v, char *buf, size_t cap)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	uint64_t n = ctlshow_u64(v);
	double d = (double)n;
	int u = 0;

	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", n);
	else
		snprintf(buf, cap, "%.1f %s", d, units[u]);
	return buf;
}

/* Seconds as "2d 3h 4m 5s", leaving out leading zero units. */
static void
ctlshow_uptime(uint64_t s, char *buf, size_t cap)
{
	uint64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;

	if (d > 0)
		snprintf(buf, cap, "%" PRIu64 "d %" PRIu64 "h %" PRIu64 "m %"
		    PRIu64 "s", d, h, m, s % 60);
	else if (h > 0)
		snprintf(buf, cap, "%" PRIu64 "h %" PRIu64 "m %" PRIu64 "s", h,
		    m, s % 60);
	else if (m > 0)
		snprintf(buf, cap, "%" PRIu64 "m %" PRIu64 "s", m, s % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "s", s);
}

/* ---- status, queue ------------------------------------------------------ */

/* One line per --vhost-user endpoint. */
static int
ctlshow_vhost(FILE *f, json_t *list)
{
	const char *path, *vm;
	json_int_t cid, conns, bytes;
	int frontend, running;
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		if (json_unpack(v, "{s:s, s:I, s:s, s:b, s:b, s:I, s:I}",
		    "path", &path, "cid", &cid, "vm", &vm, "frontend",
		    &frontend, "running", &running, "connections", &conns,
		    "bytes_to_guest", &bytes) < 0)
			return -1;
		fprintf(f, "vhost-user:      %s (cid %" PRIu64 "%s%s): %s",
		    path, ctlshow_u64(cid), vm[0] != '\0' ? ", vm " : "", vm,
		    !frontend ? "waiting for QEMU" : !running ?
		    "QEMU connected, device stopped" : "running");
		if (running)
			fprintf(f, ", %" PRIu64 " connections, %" PRIu64
			    " bytes to the guest", ctlshow_u64(conns),
			    ctlshow_u64(bytes));
		fputc('\n', f);
	}
	return 0;
}

/* The lines of `status`, aligned at column 18. */
int
ctlshow_status(FILE *f, json_t *r)
{
	const char *version, *repo, *libvirt, *def;
	json_int_t uptime, rules, conns, reqs, bytes;
	json_t *listeners, *vhost, *v;
	char up[64];
	size_t i;

	repo = ctlshow_opt_str(r, "repository");
	if (json_unpack(r, "{s:s, s:I, s:o, s:o, s:s, s:I, s:s, s:I, s:I, "
	    "s:I}", "version", &version, "uptime_s", &uptime,
	    "listeners", &listeners, "vhost_user", &vhost,
	    "libvirt", &libvirt, "acl_rules", &rules, "acl_default", &def,
	    "connections", &conns, "requests_served", &reqs, "bytes_sent",
	    &bytes) < 0)
		return -1;
	ctlshow_uptime(ctlshow_u64(uptime), up, sizeof(up));
	fprintf(f, "portholed %s\n", version);
	fprintf(f, "uptime:          %s\n", up);
	fputs("listeners:       ", f);
	json_array_foreach(listeners, i, v)
		fprintf(f, "%s%s", i > 0 ? ", " : "", json_string_value(v) !=
		    NULL ? json_string_value(v) : "?");
	fprintf(f, "%s\n", json_array_size(listeners) == 0 ? "(none)" : "");
	if (ctlshow_vhost(f, vhost) < 0)
		return -1;
	fprintf(f, "repository:      %s\n", repo != NULL ? repo : "(none)");
	fprintf(f, "libvirt:         %s\n", libvirt);
	fprintf(f, "access rules:    %" PRIu64 ", default %s\n",
	    ctlshow_u64(rules), def);
	fprintf(f, "connections:     %" PRIu64 "\n", ctlshow_u64(conns));
	fprintf(f, "requests served: %" PRIu64 "\n", ctlshow_u64(reqs));
	fprintf(f, "bytes sent:      %" PRIu64 "\n", ctlshow_u64(bytes));
	return 0;
}

/* One streaming (active) or waiting GET. */
static int
ctlshow_queue_one(FILE *f, json_t *v, bool active)
{
	const char *peer, *vm, *path;
	json_int_t bytes, size, rate, waited, pos = 0;
	char who[1024], *evm;
	int paused;

	vm = ctlshow_opt_str(v, "vm");
	if (json_unpack(v, "{s:s, s:s, s:I, s:I, s:I, s:b, s:I}",
	    "peer", &peer, "path", &path, "bytes_sent", &bytes,
	    "size", &size, "rate_bps", &rate, "paused", &paused, "waited_ms",
	    &waited) < 0 || (!active && json_unpack(v, "{s:I}", "position",
	    &pos) < 0))
		return -1;
	/* The peer key, and the libvirt domain it is when known. */
	evm = vm != NULL ? ctlshow_escape(vm) : NULL;
	snprintf(who, sizeof(who), "%s%s%s", peer, evm != NULL ? ",vm=" : "",
	    evm != NULL ? evm : "");
	free(evm);
	if (active)
		fprintf(f, "  %-28s %s  %" PRIu64 "/%" PRIu64 " bytes  %" PRIu64
		    " KiB/s\n", who, path, ctlshow_u64(bytes),
		    ctlshow_u64(size), ctlshow_u64(rate) / 1024);
	else
		fprintf(f, "  %4" PRIu64 "  %-28s %s  waited %" PRIu64 ".%01"
		    PRIu64 " s%s\n", ctlshow_u64(pos), who, path,
		    ctlshow_u64(waited) / 1000,
		    ctlshow_u64(waited) % 1000 / 100,
		    paused ? "  (paused after a slice)" : "");
	return 0;
}

/* The slots in use, then the line of waiting requests. */
int
ctlshow_queue(FILE *f, json_t *r)
{
	json_int_t max_active, max_queue, nactive, nwaiting;
	json_t *active, *waiting, *v;
	int cut;
	size_t i;

	if (json_unpack(r, "{s:I, s:I, s:o, s:o, s:I, s:I, s:b}",
	    "max_active", &max_active, "max_queue", &max_queue, "active",
	    &active, "waiting", &waiting, "active_count", &nactive,
	    "waiting_count", &nwaiting, "truncated", &cut) < 0)
		return -1;
	fprintf(f, "active: %" PRIu64 " of %" PRIu64 " slots\n",
	    ctlshow_u64(nactive), ctlshow_u64(max_active));
	json_array_foreach(active, i, v)
		if (ctlshow_queue_one(f, v, true) < 0)
			return -1;
	fprintf(f, "waiting: %" PRIu64 " (at most %" PRIu64 ")\n",
	    ctlshow_u64(nwaiting), ctlshow_u64(max_queue));
	json_array_foreach(waiting, i, v)
		if (ctlshow_queue_one(f, v, false) < 0)
			return -1;
	if (cut)
		fputs("... list cut short\n", f);
	return 0;
}

/* ---- repo --------------------------------------------------------------- */

/* {"repository": PATH} as a line: PATH after prefix. */
static int
ctlshow_repository(FILE *f, json_t *r, const char *prefix)
{
	const char *path;

	if (json_unpack(r, "{s:s}", "repository", &path) < 0)
		return -1;
	fprintf(f, "%s%s\n", prefix, path);
	return 0;
}

int
ctlshow_repo_get(FILE *f, json_t *r)
{
	return ctlshow_repository(f, r, "");
}

int
ctlshow_repo_set(FILE *f, json_t *r)
{
	return ctlshow_repository(f, r, "repository set to ");
}

/* The file type named by `repo ls` ("file", "dir", "other"). */
static uint8_t
ctlshow_ftype(const char *name)
{
	static const uint8_t types[] = { PH_FT_REGULAR, PH_FT_DIR };

	for (size_t i = 0; i < sizeof(types); i++)
		if (strcmp(name, ph_util_ftype_name(types[i])) == 0)
			return types[i];
	return PH_FT_OTHER;
}

/* One `ls -l` style line per entry. */
int
ctlshow_repo_ls(FILE *f, json_t *r)
{
	char mode[PH_MODE_STRLEN], mtime[PH_TIME_STRLEN];
	const char *name, *type, *perm;
	json_int_t size, mtime_ns, more;
	json_t *entries, *v;
	int cut;
	size_t i;

	if (json_unpack(r, "{s:o, s:b, s:I}", "entries", &entries, "truncated",
	    &cut, "not_shown", &more) < 0)
		return -1;
	json_array_foreach(entries, i, v) {
		if (json_unpack(v, "{s:s, s:s, s:I, s:s, s:I}", "name", &name,
		    "type", &type, "size", &size, "mode", &perm, "mtime_ns",
		    &mtime_ns) < 0)
			return -1;
		ph_util_mode_string(ctlshow_ftype(type),
		    (uint32_t)strtoul(perm, NULL, 8), mode);
		ph_util_time_string(mtime_ns, mtime, sizeof(mtime));
		fprintf(f, "%s %12" PRIu64 "  %s  %s\n", mode,
		    ctlshow_u64(size), mtime, name);
	}
	if (cut)
		fprintf(f, "... %" PRIu64 " more entries not shown\n",
		    ctlshow_u64(more));
	return 0;
}

/* The unreadable files (the first 200), then the counts. */
int
ctlshow_repo_scan(FILE *f, json_t *r)
{
	json_int_t files, hashed, unchanged, unreadable, skipped;
	json_t *paths, *why, *v;
	size_t i;

	if (json_unpack(r, "{s:I, s:o, s:o, s:I, s:I, s:I, s:I}", "files",
	    &files, "unreadable", &paths, "unreadable_errors", &why,
	    "unreadable_count", &unreadable, "hashed", &hashed, "unchanged",
	    &unchanged, "skipped", &skipped) < 0)
		return -1;
	json_array_foreach(paths, i, v) {
		if (i >= CTLSHOW_LIST_MAX)
			break;
		fprintf(f, "unreadable: %s: %s\n",
		    json_string_value(v) != NULL ? json_string_value(v) : "?",
		    json_string_value(json_array_get(why, i)) != NULL ?
		    json_string_value(json_array_get(why, i)) : "?");
	}
	fprintf(f, "scanned %" PRIu64 " files: %" PRIu64 " hashed, %" PRIu64
	    " unchanged, %" PRIu64 " unreadable, %" PRIu64 " other entries "
	    "skipped\n", ctlshow_u64(files), ctlshow_u64(hashed),
	    ctlshow_u64(unchanged), ctlshow_u64(unreadable),
	    ctlshow_u64(skipped));
	return 0;
}

/* The mismatched files (the first 200), then the counts. */
int
ctlshow_repo_verify(FILE *f, json_t *r)
{
	json_int_t verified, bad, missing;
	json_t *paths, *v;
	size_t i;

	if (json_unpack(r, "{s:o, s:I, s:I, s:I}", "mismatched", &paths,
	    "mismatched_count", &bad, "verified", &verified,
	    "not_in_catalog", &missing) < 0)
		return -1;
	json_array_foreach(paths, i, v) {
		if (i >= CTLSHOW_LIST_MAX)
			break;
		fprintf(f, "mismatch: %s\n", json_string_value(v) != NULL ?
		    json_string_value(v) : "?");
	}
	fprintf(f, "verified %" PRIu64 " files against the catalog: %" PRIu64
	    " mismatched, %" PRIu64 " not hashed yet (run repo scan)\n",
	    ctlshow_u64(verified), ctlshow_u64(bad), ctlshow_u64(missing));
	return 0;
}

/* ---- cache -------------------------------------------------------------- */

/* The cache and the store's work, sizes in binary units. */
int
ctlshow_cache_stats(FILE *f, json_t *r)
{
	json_int_t entries, bytes, content, budget, pinned, hits, misses;
	json_int_t evictions, compressed, saved, fills, failed, joins, nfills;
	json_int_t reads, fetches, uncached, catalog;
	const char *upstream;
	int connected;
	double ratio;
	char a[32], b[32], c[32];

	if (json_unpack(r, "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:F, s:I, "
	    "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}",
	    "entries", &entries, "bytes", &bytes, "content_bytes", &content,
	    "budget", &budget, "pinned", &pinned, "hits", &hits, "misses",
	    &misses, "hit_ratio", &ratio, "evictions", &evictions,
	    "compressed", &compressed, "saved_bytes", &saved, "fills", &fills,
	    "fill_failures", &failed, "fill_joins", &joins,
	    "fills_in_progress", &nfills, "repo_reads", &reads,
	    "upstream_fetches", &fetches, "uncached", &uncached, "catalog",
	    &catalog, "upstream_connected", &connected) < 0)
		return -1;
	upstream = ctlshow_opt_str(r, "upstream");
	fprintf(f, "entries:          %" PRIu64 " blobs (%" PRIu64
	    " compressed, %" PRIu64 " pinned)\n", ctlshow_u64(entries),
	    ctlshow_u64(compressed), ctlshow_u64(pinned));
	fprintf(f, "size:             %s on disk of %s budget (%s of "
	    "content)\n", ctlshow_human(bytes, a, sizeof(a)),
	    ctlshow_human(budget, b, sizeof(b)),
	    ctlshow_human(content, c, sizeof(c)));
	fprintf(f, "saved by zstd:    %s\n",
	    ctlshow_human(saved, a, sizeof(a)));
	fprintf(f, "hits / misses:    %" PRIu64 " / %" PRIu64 " (hit ratio "
	    "%.1f%%)\n", ctlshow_u64(hits), ctlshow_u64(misses), ratio * 100);
	fprintf(f, "evictions:        %" PRIu64 "\n", ctlshow_u64(evictions));
	fprintf(f, "fills:            %" PRIu64 " done, %" PRIu64 " failed, %"
	    PRIu64 " in progress, %" PRIu64 " requests joined one\n",
	    ctlshow_u64(fills), ctlshow_u64(failed), ctlshow_u64(nfills),
	    ctlshow_u64(joins));
	fprintf(f, "repository reads: %" PRIu64 " (%" PRIu64 " served "
	    "uncached)\n", ctlshow_u64(reads), ctlshow_u64(uncached));
	if (upstream != NULL)
		fprintf(f, "upstream:         %s (%s), %" PRIu64 " fetches\n",
		    upstream, connected ? "connected" : "not connected",
		    ctlshow_u64(fetches));
	fprintf(f, "catalog:          %" PRIu64 " paths\n",
	    ctlshow_u64(catalog));
	return 0;
}

/* A table of blobs with their last use in local time. */
int
ctlshow_cache_ls(FILE *f, json_t *r)
{
	const char *sha, *form, *path;
	json_int_t size, stored, atime_ns;
	char when[64];
	json_t *blobs, *v;
	struct tm tm;
	time_t secs;
	size_t i;

	if (json_unpack(r, "{s:o}", "blobs", &blobs) < 0)
		return -1;
	fprintf(f, "%-16s  %12s  %12s  %-4s  %-19s  %s\n", "SHA256", "SIZE",
	    "STORED", "FORM", "LAST USED", "PATH");
	json_array_foreach(blobs, i, v) {
		if (json_unpack(v, "{s:s, s:I, s:I, s:s, s:I}", "sha256",
		    &sha, "size", &size, "stored", &stored, "form", &form,
		    "atime_ns", &atime_ns) < 0)
			return -1;
		path = ctlshow_opt_str(v, "path");
		secs = (time_t)(atime_ns / 1000000000);
		localtime_r(&secs, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(f, "%.16s  %12" PRIu64 "  %12" PRIu64
		    "  %-4s  %s  %s\n", sha, ctlshow_u64(size),
		    ctlshow_u64(stored), form, when, path != NULL ? path : "-");
	}
	return 0;
}

int
ctlshow_cache_clear(FILE *f, json_t *r)
{
	json_int_t n;

	if (json_unpack(r, "{s:I}", "removed", &n) < 0)
		return -1;
	fprintf(f, "removed %" PRIu64 " blobs\n", ctlshow_u64(n));
	return 0;
}

/* The corrupt blobs (the first 200), then the counts. */
int
ctlshow_cache_verify(FILE *f, json_t *r)
{
	json_int_t verified, bad;
	json_t *corrupt, *v;
	size_t i;

	if (json_unpack(r, "{s:I, s:o, s:I}", "verified", &verified,
	    "corrupt", &corrupt, "corrupt_count", &bad) < 0)
		return -1;
	json_array_foreach(corrupt, i, v) {
		if (i >= CTLSHOW_LIST_MAX)
			break;
		fprintf(f, "corrupt: sha256:%s (removed)\n",
		    json_string_value(v) != NULL ? json_string_value(v) : "?");
	}
	fprintf(f, "verified %" PRIu64 " blobs: %" PRIu64 " corrupt\n",
	    ctlshow_u64(verified), ctlshow_u64(bad));
	return 0;
}

/* ---- vm ----------------------------------------------------------------- */

/* A table of domains. */
int
ctlshow_vm_ls(FILE *f, json_t *r)
{
	const char *name, *uuid, *state;
	json_t *doms, *v, *cidv;
	int persistent, enabled, cut;
	char cid[24];
	size_t i;

	if (json_unpack(r, "{s:o, s:b}", "domains", &doms, "truncated",
	    &cut) < 0)
		return -1;
	fprintf(f, "%-20s %-36s %-13s %-10s %s\n", "NAME", "UUID", "STATE",
	    "CID", "PORTHOLE");
	json_array_foreach(doms, i, v) {
		if (json_unpack(v, "{s:s, s:s, s:s, s:o, s:b, s:b}", "name",
		    &name, "uuid", &uuid, "state", &state, "cid", &cidv,
		    "persistent", &persistent, "enabled", &enabled) < 0)
			return -1;
		if (json_is_integer(cidv))
			snprintf(cid, sizeof(cid), "%" PRIu64,
			    ctlshow_u64(json_integer_value(cidv)));
		else
			snprintf(cid, sizeof(cid), "-");
		fprintf(f, "%-20s %-36s %-13s %-10s %s%s\n", name, uuid, state,
		    cid, enabled ? "enabled" : "disabled", persistent ? "" :
		    " (transient)");
	}
	if (cut)
		fputs("... list cut short\n", f);
	return 0;
}

/* The outcome libvirt reported, one line. */
int
ctlshow_vm_change(FILE *f, json_t *r)
{
	return ctlshow_error(f, r);	/* the same one line: "message" */
}

/* ---- acl ---------------------------------------------------------------- */

/* Unpacks one rule. */
static int
ctlshow_rule(json_t *v, json_int_t *pos, const char **action,
    const char **match, const char **prefix)
{
	return json_unpack(v, "{s:I, s:s, s:s, s:s}", "position", pos,
	    "action", action, "match", match, "prefix", prefix);
}

/* The default policy, then one line per rule. */
int
ctlshow_acl_ls(FILE *f, json_t *r)
{
	const char *def, *action, *match, *prefix;
	json_t *rules, *v;
	json_int_t pos;
	size_t i, n;

	if (json_unpack(r, "{s:s, s:o}", "default", &def, "rules", &rules) < 0)
		return -1;
	n = json_array_size(rules);
	fprintf(f, "%zu rule%s, first match wins; default policy: %s\n", n,
	    n == 1 ? "" : "s", def);
	json_array_foreach(rules, i, v) {
		if (ctlshow_rule(v, &pos, &action, &match, &prefix) < 0)
			return -1;
		fprintf(f, "%4" PRIu64 "  %-5s  %-36s  %s\n", ctlshow_u64(pos),
		    action, match, prefix);
	}
	return 0;
}

/* "rule N added: ..." or "rule N removed: ...". */
int
ctlshow_acl_change(FILE *f, json_t *r)
{
	const char *what, *action, *match, *prefix;
	json_int_t pos;
	json_t *rule;

	what = json_object_get(r, "added") != NULL ? "added" : "removed";
	if ((rule = json_object_get(r, what)) == NULL ||
	    ctlshow_rule(rule, &pos, &action, &match, &prefix) < 0)
		return -1;
	fprintf(f, "rule %" PRIu64 " %s: %s %s %s\n", ctlshow_u64(pos), what,
	    action, match, prefix);
	return 0;
}

/* ---- audit -------------------------------------------------------------- */

/* A row's string field, "-" when empty or missing. */
static const char *
ctlshow_dash(json_t *row, const char *key)
{
	const char *s = json_string_value(json_object_get(row, key));

	return s != NULL && s[0] != '\0' ? s : "-";
}

/* One key=value line per row, then why rows were left out. */
int
ctlshow_audit(FILE *f, json_t *r)
{
	json_int_t bytes, ms, limit;
	json_t *entries, *v, *cidv;
	const char *when, *domain;
	int cut, more;
	char cid[24], *vm;
	size_t i;

	if (json_unpack(r, "{s:o, s:b, s:b, s:I}", "entries", &entries, "cut",
	    &cut, "more", &more, "limit", &limit) < 0)
		return -1;
	json_array_foreach(entries, i, v) {
		if (json_unpack(v, "{s:s, s:o, s:I, s:I}", "time", &when,
		    "cid", &cidv, "bytes", &bytes, "ms", &ms) < 0)
			return -1;
		domain = ctlshow_opt_str(v, "domain");
		if (json_is_integer(cidv))
			snprintf(cid, sizeof(cid), "%" PRIu64,
			    ctlshow_u64(json_integer_value(cidv)));
		else
			snprintf(cid, sizeof(cid), "-");
		vm = domain != NULL ? ctlshow_escape(domain) : NULL;
		fprintf(f, "%s cid=%s vm=%s peer=%s op=%s path=%s result=%s "
		    "bytes=%" PRIu64 " ms=%" PRIu64 "\n", when, cid,
		    vm != NULL ? vm : "-", ctlshow_dash(v, "peer"),
		    ctlshow_dash(v, "op"), ctlshow_dash(v, "path"),
		    ctlshow_dash(v, "result"),
		    ctlshow_u64(bytes), ctlshow_u64(ms));
		free(vm);
	}
	if (cut)
		fprintf(f, "... cut short after %zu entries; narrow it with "
		    "--since, --domain or --limit\n", json_array_size(entries));
	else if (more)
		fprintf(f, "... older entries not shown (--limit %" PRIu64
		    ")\n", ctlshow_u64(limit));
	return 0;
}
