/*
 * test_access_state.c: the state database's access rules and audit trail
 * (hostd/state.c), the rules parsed from its rows and the rule cache
 * reload (hostd/acl.c) and the audit trail's time syntax (hostd/audit.c):
 * positions kept in order through inserts and removals, rows handed back
 * as saved, a bad saved rule refused, the upgrade from schema version 1, retention by rows and by age, and queries by time, domain,
 * CID and limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "acl.h"
#include "audit.h"
#include "state.h"

struct fixture {
	char		 dir[PATH_MAX];
	char		 db[PATH_MAX + 16];
	struct state	*st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "%s/ph-state-XXXXXX",
	    getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	assert_int_equal(state_open(f->dir, &f->st, err, sizeof(err)), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX + 32];

	state_close(f->st);
	/* The WAL files go with the database. */
	snprintf(path, sizeof(path), "%s-wal", f->db);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s-shm", f->db);
	(void)unlink(path);
	(void)unlink(f->db);
	(void)rmdir(f->dir);
	free(f);
	return 0;
}

/* Runs SQL on the database file behind the state's back. */
static void
raw_sql(const char *db, const char *sql)
{
	sqlite3 *h;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static struct acl_rule
rule(const char *action, const char *match, const char *prefix)
{
	struct acl_rule r;
	char err[512];

	assert_int_equal(acl_rule_parse(action, match, prefix, &r, err,
	    sizeof(err)), 0);
	return r;
}

/* The rules as "1:deny web1 secret|2:..." for compact checks. */
static void
rules_text(struct state *st, char *buf, size_t cap)
{
	struct acl_rule *v;
	size_t n, off = 0;

	assert_int_equal(acl_load(st, &v, &n), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, cap - off, "%s%u:%s %s %s",
		    i ? "|" : "", v[i].position, v[i].allow ? "allow" : "deny",
		    v[i].match, v[i].prefix);
	free(v);
}

/*
 * A write the disk refuses (a file size limit stands in for a full disk:
 * it needs no privileges) fails `acl add` and `acl rm` with the first
 * error, not with what a ROLLBACK after SQLite's own said, and changes
 * nothing.
 */
static void
test_acl_write_fails(void **state)
{
	struct fixture *f = *state;
	struct acl_rule r = rule("deny", "web1", "/secret");
	struct rlimit old, lim;
	void (*oldsig)(int);
	uint32_t pos;
	char text[1024];
	int add, rm;

	assert_int_equal(acl_save(f->st, 0, &r, &pos), 0);
	r = rule("allow", "cid:9", "/pub");
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	oldsig = signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 1;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	add = acl_save(f->st, 1, &r, &pos);
	snprintf(text, sizeof(text), "%s", state_errmsg(f->st));
	rm = state_acl_remove(f->st, 1);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, oldsig);
	assert_int_equal(add, -EIO);
	assert_int_equal(pos, 0);
	assert_null(strstr(text, "no transaction"));
	assert_non_null(strstr(text, "I/O error"));
	assert_int_equal(rm, -EIO);
	assert_null(strstr(state_errmsg(f->st), "no transaction"));
	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "1:deny web1 secret");
	assert_int_equal(acl_save(f->st, 1, &r, &pos), 0);
	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "1:allow cid:9 pub|2:deny web1 secret");
}

static void
test_acl_positions(void **state)
{
	struct fixture *f = *state;
	struct acl_rule r;
	uint32_t pos;
	char text[1024];

	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "");
	r = rule("deny", "web1", "/secret");
	assert_int_equal(acl_save(f->st, 0, &r, &pos), 0);
	assert_int_equal(pos, 1);
	r = rule("allow", "*", "/");
	assert_int_equal(acl_save(f->st, 0, &r, &pos), 0);
	assert_int_equal(pos, 2);
	r = rule("allow", "cid:9", "/secret/pub");
	assert_int_equal(acl_save(f->st, 1, &r, &pos), 0);
	assert_int_equal(pos, 1);
	r = rule("deny", "name:cid:5", "/x");
	assert_int_equal(acl_save(f->st, 4, &r, &pos), 0);
	assert_int_equal(pos, 4);
	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "1:allow cid:9 secret/pub|2:deny web1 secret|"
	    "3:allow * .|4:deny cid:5 x");
	/* Past the end plus one: refused, nothing changes. */
	assert_int_equal(acl_save(f->st, 6, &r, &pos), -ERANGE);
	assert_int_equal(state_acl_remove(f->st, 5), -ENOENT);
	assert_int_equal(state_acl_remove(f->st, 0), -ENOENT);
	assert_int_equal(state_acl_remove(f->st, 2), 0);
	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "1:allow cid:9 secret/pub|2:allow * .|"
	    "3:deny cid:5 x");

	/* The name that looks like a CID is still a name when read back. */
	{
		struct acl_rule *v;
		size_t n;

		assert_int_equal(acl_load(f->st, &v, &n), 0);
		assert_int_equal(n, 3);
		assert_int_equal(v[2].kind, ACL_NAME);
		assert_int_equal(v[0].kind, ACL_CID);
		free(v);
	}

	/* Gaps in saved positions are closed on the next change. */
	raw_sql(f->db, "UPDATE acl SET position = position * 10");
	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "1:allow cid:9 secret/pub|2:allow * .|"
	    "3:deny cid:5 x");
	r = rule("deny", "*", "/late");
	assert_int_equal(acl_save(f->st, 2, &r, &pos), 0);
	rules_text(f->st, text, sizeof(text));
	assert_string_equal(text, "1:allow cid:9 secret/pub|2:deny * late|"
	    "3:allow * .|4:deny cid:5 x");
}

static void
test_acl_reload_and_bad_row(void **state)
{
	struct fixture *f = *state;
	struct acl_peer web = { 5, "web1", NULL };
	struct acl_verdict v;
	struct acl_rule r;
	struct acl *acl;
	uint32_t pos;

	assert_int_equal(acl_new(true, &acl), 0);
	r = rule("deny", "web1", "/");
	assert_int_equal(acl_save(f->st, 0, &r, &pos), 0);
	assert_int_equal(acl_reload(acl, f->st), 0);
	acl_check(acl, &web, "a", &v);
	assert_false(v.allow);
	assert_int_equal(v.rule, 1);

	/* A row nobody could have added: refused, the cache is kept. */
	raw_sql(f->db, "INSERT INTO acl (position, action, kind, match, "
	    "prefix) VALUES (2, 'allow', 'name', 'a/b', '.')");
	assert_int_equal(acl_reload(acl, f->st), -EINVAL);
	assert_non_null(strstr(state_errmsg(f->st), "rule 2"));
	assert_int_equal(acl_count(acl), 1);
	acl_check(acl, &web, "a", &v);
	assert_false(v.allow);
	acl_free(acl);
}

/*
 * The database hands back a rule's words as saved, a bad one too (it does
 * not judge them); acl_load() is what refuses it, naming its position.
 */
static void
test_acl_rows_raw(void **state)
{
	struct fixture *f = *state;
	struct state_acl_row *rows;
	struct acl_rule r = rule("allow", "cid:7", "/pub"), *v;
	uint32_t pos;
	size_t n;

	assert_int_equal(acl_save(f->st, 0, &r, &pos), 0);
	raw_sql(f->db, "INSERT INTO acl (position, action, kind, match, "
	    "prefix) VALUES (5, 'deny', 'name', 'a/b', '.')");
	assert_int_equal(state_acl_rows(f->st, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].position, 1);
	assert_string_equal(rows[0].action, "allow");
	assert_string_equal(rows[0].kind, "cid");
	assert_string_equal(rows[0].match, "7");
	assert_string_equal(rows[0].prefix, "pub");
	assert_int_equal(rows[1].position, 5);
	assert_string_equal(rows[1].action, "deny");
	assert_string_equal(rows[1].match, "a/b");
	state_acl_rows_free(rows, n);
	assert_int_equal(acl_load(f->st, &v, &n), -EINVAL);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_non_null(strstr(state_errmsg(f->st), "rule 5"));
	state_acl_rows_free(NULL, 0);
}

/* Appends rows: time t0 + i seconds, domain by i, cid 3 + i % 3. */
static void
add_rows(struct state *st, int64_t t0, int n)
{
	static const char *doms[] = { "web1", "db1", NULL };
	struct state_audit_row rows[64];
	char paths[64][32];
	uint64_t deleted;

	assert_true(n <= 64);
	for (int i = 0; i < n; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/f%d", i);
		memset(&rows[i], 0, sizeof(rows[i]));
		rows[i].time_ms = t0 + i * 1000;
		rows[i].cid = 3 + (uint32_t)(i % 3);
		rows[i].peer = "vsock:3";
		rows[i].domain = doms[i % 3];
		rows[i].uuid = i % 3 == 0 ?
		    "aaaaaaaa-2222-3333-4444-555555555555" : NULL;
		rows[i].op = "GET";
		rows[i].path = paths[i];
		rows[i].result = i % 2 ? "FORBIDDEN" : "OK";
		rows[i].bytes = (uint64_t)i;
		rows[i].ms = 1;
	}
	assert_int_equal(state_audit_append(st, rows, (size_t)n, 1000000, 0,
	    &deleted), 0);
	assert_int_equal(deleted, 0);
}

struct seen {
	char	 paths[2048];
	size_t	 n;
};

static void
collect(void *arg, const struct state_audit_row *row)
{
	struct seen *s = arg;
	size_t off = strlen(s->paths);

	snprintf(s->paths + off, sizeof(s->paths) - off, "%s%s",
	    s->n ? " " : "", row->path);
	s->n++;
}

/* Runs a query and returns the paths it gave, oldest first. */
static struct seen
query(struct state *st, int64_t since, const char *domain, uint32_t cid,
    uint32_t limit, bool *more)
{
	struct state_audit_query q = { since, domain, cid, limit };
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(state_audit_query(st, &q, collect, &s, more), 0);
	return s;
}

static void
test_audit_query(void **state)
{
	struct fixture *f = *state;
	struct seen s;
	bool more;

	add_rows(f->st, 1000000, 9);
	s = query(f->st, INT64_MIN, NULL, 0, 100, &more);
	assert_string_equal(s.paths, "/f0 /f1 /f2 /f3 /f4 /f5 /f6 /f7 /f8");
	assert_false(more);
	/* The newest N, still oldest first. */
	s = query(f->st, INT64_MIN, NULL, 0, 3, &more);
	assert_string_equal(s.paths, "/f6 /f7 /f8");
	assert_true(more);
	s = query(f->st, INT64_MIN, NULL, 0, 9, &more);
	assert_int_equal(s.n, 9);
	assert_false(more);
	s = query(f->st, 1000000 + 6000, NULL, 0, 100, &more);
	assert_string_equal(s.paths, "/f6 /f7 /f8");
	s = query(f->st, INT64_MIN, "db1", 0, 100, &more);
	assert_string_equal(s.paths, "/f1 /f4 /f7");
	/* By UUID, in either case. */
	s = query(f->st, INT64_MIN, "aaaaaaaa-2222-3333-4444-555555555555", 0,
	    100, &more);
	assert_string_equal(s.paths, "/f0 /f3 /f6");
	s = query(f->st, INT64_MIN, "AAAAAAAA-2222-3333-4444-555555555555", 0,
	    100, &more);
	assert_string_equal(s.paths, "/f0 /f3 /f6");
	s = query(f->st, INT64_MIN, NULL, 5, 100, &more);
	assert_string_equal(s.paths, "/f2 /f5 /f8");
	s = query(f->st, 1000000 + 3000, "web1", 0, 1, &more);
	assert_string_equal(s.paths, "/f6");
	assert_true(more);
	s = query(f->st, INT64_MIN, "nosuch", 0, 100, &more);
	assert_int_equal(s.n, 0);
	assert_false(more);
}

static void
test_audit_retention(void **state)
{
	struct fixture *f = *state;
	uint64_t deleted;
	struct seen s;
	bool more;

	add_rows(f->st, 1000000, 20);
	/* By age: everything before t0 + 5 s goes. */
	assert_int_equal(state_audit_prune(f->st, 1000, 1000000 + 5000,
	    &deleted), 0);
	assert_int_equal(deleted, 5);
	s = query(f->st, INT64_MIN, NULL, 0, 100, &more);
	assert_int_equal(s.n, 15);
	/* By rows: the newest 4 stay. */
	assert_int_equal(state_audit_prune(f->st, 4, 0, &deleted), 0);
	assert_int_equal(deleted, 11);
	s = query(f->st, INT64_MIN, NULL, 0, 100, &more);
	assert_string_equal(s.paths, "/f16 /f17 /f18 /f19");
	/* Nothing more to do. */
	assert_int_equal(state_audit_prune(f->st, 4, 0, &deleted), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(state_audit_prune(f->st, 0, 0, &deleted), 0);
	assert_int_equal(deleted, 4);
	/* Appending nothing is fine. */
	assert_int_equal(state_audit_append(f->st, NULL, 0, 10, 0, &deleted),
	    0);
	assert_int_equal(deleted, 0);
	/* Appending applies retention in the same transaction. */
	add_rows(f->st, 5000000, 6);
	{
		struct state_audit_row row = { 9000000, 3, "vsock:3", NULL,
		    NULL, "GET", "/late", "OK", 1, 1 };

		assert_int_equal(state_audit_append(f->st, &row, 1, 3,
		    5000000 + 2000, &deleted), 0);
		assert_int_equal(deleted, 4);
	}
	s = query(f->st, INT64_MIN, NULL, 0, 100, &more);
	assert_string_equal(s.paths, "/f4 /f5 /late");
}

/* A version 1 database (settings only) is upgraded in place. */
static void
test_upgrade_from_v1(void **state)
{
	struct fixture *f = *state;
	struct acl_rule r;
	uint32_t pos;
	char *repo = NULL, err[512];

	state_close(f->st);
	f->st = NULL;
	(void)unlink(f->db);
	raw_sql(f->db, "CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, "
	    "value TEXT NOT NULL); INSERT INTO settings VALUES ('repo', "
	    "'/srv/r'); PRAGMA user_version = 1;");
	assert_int_equal(state_open(f->dir, &f->st, err, sizeof(err)), 0);
	assert_int_equal(state_get(f->st, STATE_KEY_REPO, &repo), 0);
	assert_string_equal(repo, "/srv/r");
	free(repo);
	r = rule("allow", "*", "/");
	assert_int_equal(acl_save(f->st, 0, &r, &pos), 0);
	add_rows(f->st, 0, 1);
	/* A newer schema is refused. */
	state_close(f->st);
	f->st = NULL;
	raw_sql(f->db, "PRAGMA user_version = 99");
	assert_int_equal(state_open(f->dir, &f->st, err, sizeof(err)),
	    -EPROTO);
	assert_non_null(strstr(err, "newer"));
	raw_sql(f->db, "PRAGMA user_version = 2");
	assert_int_equal(state_open(f->dir, &f->st, err, sizeof(err)), 0);
}

static void
test_time_syntax(void **state)
{
	/* 2024-05-01T12:30:15.250Z */
	const int64_t now = INT64_C(1714566615250);
	char buf[AUDIT_TIME_STRLEN];
	int64_t t;

	(void)state;
	assert_string_equal(audit_time_string(now, buf, sizeof(buf)),
	    "2024-05-01T12:30:15.250Z");
	assert_string_equal(audit_time_string(0, buf, sizeof(buf)),
	    "1970-01-01T00:00:00.000Z");
	assert_string_equal(audit_time_string(-1, buf, sizeof(buf)),
	    "1969-12-31T23:59:59.999Z");

	assert_int_equal(audit_parse_time("30s", now, &t), 0);
	assert_true(t == now - 30000);
	assert_int_equal(audit_parse_time("15m", now, &t), 0);
	assert_true(t == now - 15 * 60000);
	assert_int_equal(audit_parse_time("1h", now, &t), 0);
	assert_true(t == now - 3600000);
	assert_int_equal(audit_parse_time("2d", now, &t), 0);
	assert_true(t == now - 2 * 86400000LL);
	assert_int_equal(audit_parse_time("1w", now, &t), 0);
	assert_true(t == now - 7 * 86400000LL);
	assert_int_equal(audit_parse_time("0s", now, &t), 0);
	assert_true(t == now);

	assert_int_equal(audit_parse_time("2024-05-01T12:30:15.250Z", now, &t),
	    0);
	assert_true(t == now);
	assert_int_equal(audit_parse_time("2024-05-01t12:30:15.25z", now, &t),
	    0);
	assert_true(t == now);
	assert_int_equal(audit_parse_time("2024-05-01 12:30:15.2509", now, &t),
	    0);
	assert_true(t == now);
	assert_int_equal(audit_parse_time("2024-05-01", now, &t), 0);
	assert_true(t == INT64_C(1714521600000));
	assert_int_equal(audit_parse_time("2024-05-01T12:30", now, &t), 0);
	assert_true(t == INT64_C(1714566600000));
	assert_int_equal(audit_parse_time("2024-05-01T14:30:15.250+02:00", now,
	    &t), 0);
	assert_true(t == now);
	assert_int_equal(audit_parse_time("2024-05-01T07:00:15.250-0530", now,
	    &t), 0);
	assert_true(t == now);
	assert_int_equal(audit_parse_time("2024-02-29", now, &t), 0);
	assert_int_equal(audit_parse_time("1969-12-31T23:59:59Z", now, &t), 0);
	assert_true(t == -1000);

	assert_int_equal(audit_parse_time("", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("1", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("h", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("1y", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("-1h", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("1hh", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("99999999999999d", now, &t),
	    -EINVAL);
	assert_int_equal(audit_parse_time("2023-02-29", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("2024-13-01", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("2024-04-31", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("2024-5-1", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("2024-05-01T24:00", now, &t),
	    -EINVAL);
	assert_int_equal(audit_parse_time("2024-05-01T12", now, &t), -EINVAL);
	assert_int_equal(audit_parse_time("2024-05-01T12:30:15.", now, &t),
	    -EINVAL);
	assert_int_equal(audit_parse_time("2024-05-01T12:30Zjunk", now, &t),
	    -EINVAL);
	assert_int_equal(audit_parse_time("2024-05-01T12:30+2", now, &t),
	    -EINVAL);
	assert_int_equal(audit_parse_time("yesterday", now, &t), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_acl_positions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_acl_write_fails, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_acl_rows_raw, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_acl_reload_and_bad_row,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_query, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_audit_retention, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_upgrade_from_v1, setup,
		    teardown),
		cmocka_unit_test(test_time_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
