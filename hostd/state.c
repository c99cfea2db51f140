/*
 * state.c: SQLite settings store.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h"
#include "state.h"

#define STATE_BUSY_MS	5000

struct state {
	sqlite3		*db;
	sqlite3_stmt	*audit_ins;	/* prepared once, reused per row */
	char		 msg[256];	/* the call's first error, or our own */
	int		 err;		/* its errno: -ENOSPC, -EIO; or 0 */
};

/* The tables version 2 adds: rules in order, and the audit trail. */
static const char state_schema_v2[] =
    "CREATE TABLE IF NOT EXISTS acl ("
    " position INTEGER NOT NULL,"
    " action TEXT NOT NULL CHECK (action IN ('allow', 'deny')),"
    " kind TEXT NOT NULL CHECK (kind IN ('any', 'name', 'uuid', 'cid')),"
    " match TEXT NOT NULL,"
    " prefix TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " time_ms INTEGER NOT NULL,"
    " cid INTEGER NOT NULL,"
    " peer TEXT NOT NULL,"
    " domain TEXT,"
    " uuid TEXT,"
    " op TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " result TEXT NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " ms INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms);";

/* Starts a public call: no error yet. */
static void
state_begin_call(struct state *st)
{
	st->msg[0] = '\0';
	st->err = 0;
}

/*
 * Keeps the call's first SQLite error (later statements, a ROLLBACK
 * above all, would replace it) and returns its errno: -ENOSPC when the
 * disk or the database is full, else -EIO.
 */
static int
state_sqlerr(struct state *st)
{
	if (st->err != 0)
		return st->err;
	if ((sqlite3_errcode(st->db) & 0xff) == SQLITE_FULL) {
		st->err = -ENOSPC;
		snprintf(st->msg, sizeof(st->msg), "%s (%s)", strerror(ENOSPC),
		    sqlite3_errmsg(st->db));
	} else {
		st->err = -EIO;
		snprintf(st->msg, sizeof(st->msg), "%s", sqlite3_errmsg(st->db));
	}
	return st->err;
}

/*
 * Ends a failed transaction and returns err, or the first SQLite error's
 * errno when err is -EIO. SQLite rolls some failures back by itself (a
 * full disk among them): ROLLBACK only while one is still open.
 */
static int
state_abort(struct state *st, int err)
{
	if (err == -EIO && st->err != 0)
		err = st->err;
	if (!sqlite3_get_autocommit(st->db))
		(void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/* Runs SQL that returns no rows. */
static int
state_exec(struct state *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return state_sqlerr(st);
	return 0;
}

/* Reads the one integer a query (or PRAGMA) returns. */
static int
state_query_int(struct state *st, const char *sql, int64_t *out)
{
	sqlite3_stmt *stmt = NULL;
	int err = -EIO;

	*out = 0;
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return state_sqlerr(st);
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		*out = sqlite3_column_int64(stmt, 0);
		err = 0;
	} else
		err = state_sqlerr(st);
	sqlite3_finalize(stmt);
	return err;
}

/* Creates the schema, or checks that an existing one is ours. */
static int
state_schema(struct state *st, char *err, size_t errlen)
{
	int64_t version;

	if (state_query_int(st, "PRAGMA user_version", &version) < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s",
		    sqlite3_errmsg(st->db));
		return -EIO;
	}
	if (version > STATE_SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %jd is newer than this "
		    "portholed understands (%d)", (intmax_t)version,
		    STATE_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version == STATE_SCHEMA_VERSION)
		return 0;
	/* Version 0 is a new, empty database; 1 lacks the acl and audit. */
	if (state_exec(st, "BEGIN IMMEDIATE") < 0 ||
	    state_exec(st, "CREATE TABLE IF NOT EXISTS settings ("
	    "key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)") < 0 ||
	    state_exec(st, state_schema_v2) < 0 ||
	    state_exec(st, "PRAGMA user_version = 2") < 0 ||
	    state_exec(st, "COMMIT") < 0) {
		snprintf(err, errlen, "cannot create the schema: %s",
		    state_errmsg(st));
		return state_abort(st, -EIO);
	}
	return 0;
}

/* Opens the database in WAL mode and makes sure the schema is ours. */
int
state_open(const char *dir, struct state **out, char *err, size_t errlen)
{
	struct state *st;
	sqlite3_stmt *stmt = NULL;
	char path[PATH_MAX];
	const unsigned char *mode;
	int r;

	*out = NULL;
	err[0] = '\0';
	if ((r = fsutil_mkdirs(dir, 0750)) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir,
		    strerror(-r));
		return r;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/state.db", dir) >=
	    sizeof(path)) {
		snprintf(err, errlen, "state directory path too long");
		return -ENAMETOOLONG;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    st->db ? sqlite3_errmsg(st->db) : "out of memory");
		r = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(st->db, STATE_BUSY_MS);
	/* WAL: readers never block the writer, and a crash loses nothing. */
	r = -EIO;
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt,
	    NULL) != SQLITE_OK || sqlite3_step(stmt) != SQLITE_ROW ||
	    (mode = sqlite3_column_text(stmt, 0)) == NULL ||
	    strcmp((const char *)mode, "wal") != 0) {
		snprintf(err, errlen, "cannot use %s in WAL mode: %s", path,
		    sqlite3_errmsg(st->db));
		goto fail;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if ((r = state_schema(st, err, errlen)) < 0) {
		char reason[256];

		snprintf(reason, sizeof(reason), "%s", err);
		snprintf(err, errlen, "%s: %s", path, reason);
		goto fail;
	}
	*out = st;
	return 0;

fail:
	sqlite3_finalize(stmt);
	state_close(st);
	return r;
}

void
state_close(struct state *st)
{
	if (st == NULL)
		return;
	sqlite3_finalize(st->audit_ins);
	sqlite3_close(st->db);
	free(st);
}

const char *
state_errmsg(struct state *st)
{
	return st->msg[0] != '\0' ? st->msg : sqlite3_errmsg(st->db);
}

/* Reads one setting. */
int
state_get(struct state *st, const char *key, char **value)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *text;
	int err = -EIO, rc;

	*value = NULL;
	state_begin_call(st);
	if (sqlite3_prepare_v2(st->db,
	    "SELECT value FROM settings WHERE key = ?1", -1, &stmt,
	    NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) != SQLITE_OK)
		goto done;
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_DONE) {
		err = 0;
		goto done;
	}
	if (rc != SQLITE_ROW)
		goto done;
	if ((text = sqlite3_column_text(stmt, 0)) == NULL) {
		err = 0;
		goto done;
	}
	if ((*value = strdup((const char *)text)) == NULL) {
		err = -ENOMEM;
		goto done;
	}
	err = 0;
done:
	sqlite3_finalize(stmt);
	return err;
}

/* Inserts or replaces one setting. */
int
state_set(struct state *st, const char *key, const char *value)
{
	sqlite3_stmt *stmt = NULL;
	int err = -EIO;

	state_begin_call(st);
	if (sqlite3_prepare_v2(st->db,
	    "INSERT INTO settings (key, value) VALUES (?1, ?2) "
	    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", -1,
	    &stmt, NULL) != SQLITE_OK)
		return state_sqlerr(st);
	if (sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC) ==
	    SQLITE_OK && sqlite3_step(stmt) == SQLITE_DONE)
		err = 0;
	else
		err = state_sqlerr(st);
	sqlite3_finalize(stmt);
	return err;
}

/* ---- Access rules ------------------------------------------------------ */

/* A copy of column i of the current row, NULL when it is NULL. */
static int
state_column_dup(sqlite3_stmt *stmt, int i, char **out)
{
	const unsigned char *t = sqlite3_column_text(stmt, i);

	*out = NULL;
	if (t != NULL && (*out = strdup((const char *)t)) == NULL)
		return -ENOMEM;
	return 0;
}

void
state_acl_rows_free(struct state_acl_row *rows, size_t n)
{
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		free(rows[i].action);
		free(rows[i].kind);
		free(rows[i].match);
		free(rows[i].prefix);
	}
	free(rows);
}

/* Reads every rule as saved, in position order; acl.c judges them. */
int
state_acl_rows(struct state *st, struct state_acl_row **rows, size_t *n)
{
	sqlite3_stmt *stmt = NULL;
	struct state_acl_row *v = NULL, *nv, *r;
	size_t len = 0, cap = 0;
	int err = -EIO, rc;

	*rows = NULL;
	*n = 0;
	state_begin_call(st);
	if (sqlite3_prepare_v2(st->db, "SELECT action, kind, match, prefix, "
	    "position FROM acl ORDER BY position, rowid", -1, &stmt,
	    NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			if ((nv = reallocarray(v, cap, sizeof(*v))) == NULL) {
				err = -ENOMEM;
				goto done;
			}
			v = nv;
		}
		r = &v[len++];
		memset(r, 0, sizeof(*r));
		r->position = sqlite3_column_int64(stmt, 4);
		if ((err = state_column_dup(stmt, 0, &r->action)) < 0 ||
		    (err = state_column_dup(stmt, 1, &r->kind)) < 0 ||
		    (err = state_column_dup(stmt, 2, &r->match)) < 0 ||
		    (err = state_column_dup(stmt, 3, &r->prefix)) < 0)
			goto done;
	}
	if (rc != SQLITE_DONE) {
		err = -EIO;
		goto done;
	}
	*rows = v;
	*n = len;
	v = NULL;
	len = 0;
	err = 0;
done:
	state_acl_rows_free(v, len);
	sqlite3_finalize(stmt);
	return err;
}

void
state_set_errmsg(struct state *st, const char *msg)
{
	snprintf(st->msg, sizeof(st->msg), "%s", msg);
}

/* Runs one statement with up to three integer parameters. */
static int
state_run_int(struct state *st, const char *sql, int64_t a, int64_t b,
    int64_t c)
{
	sqlite3_stmt *stmt = NULL;
	int n, err = -EIO;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return state_sqlerr(st);
	n = sqlite3_bind_parameter_count(stmt);
	if ((n < 1 || sqlite3_bind_int64(stmt, 1, a) == SQLITE_OK) &&
	    (n < 2 || sqlite3_bind_int64(stmt, 2, b) == SQLITE_OK) &&
	    (n < 3 || sqlite3_bind_int64(stmt, 3, c) == SQLITE_OK) &&
	    sqlite3_step(stmt) == SQLITE_DONE)
		err = 0;
	else
		err = state_sqlerr(st);
	sqlite3_finalize(stmt);
	return err;
}

/*
 * Numbers the rules 1..n in their current order, so positions match the
 * ones the rules are shown with even if the saved ones had gaps. Inside a
 * transaction.
 */
static int
state_acl_renumber(struct state *st)
{
	sqlite3_stmt *sel = NULL;
	int64_t *ids = NULL, *nids;
	size_t n = 0, cap = 0, i;
	int err = -EIO, rc;

	if (sqlite3_prepare_v2(st->db, "SELECT rowid FROM acl ORDER BY "
	    "position, rowid", -1, &sel, NULL) != SQLITE_OK)
		return state_sqlerr(st);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			if ((nids = reallocarray(ids, cap, sizeof(*ids))) ==
			    NULL) {
				err = -ENOMEM;
				goto done;
			}
			ids = nids;
		}
		ids[n++] = sqlite3_column_int64(sel, 0);
	}
	if (rc != SQLITE_DONE)
		goto done;
	for (i = 0; i < n; i++)
		if (state_run_int(st, "UPDATE acl SET position = ?1 WHERE "
		    "rowid = ?2", (int64_t)i + 1, ids[i], 0) < 0)
			goto done;
	err = 0;
done:
	sqlite3_finalize(sel);
	free(ids);
	return err;
}

/* Opens a gap at position at (or appends) and fills it, atomically. */
int
state_acl_add(struct state *st, uint32_t at, const struct state_acl_row *r,
    uint32_t *pos)
{
	sqlite3_stmt *stmt = NULL;
	int64_t count;
	int err = -EIO;

	*pos = 0;
	state_begin_call(st);
	if ((err = state_exec(st, "BEGIN IMMEDIATE")) < 0)
		return err;
	err = -EIO;
	if (state_query_int(st, "SELECT count(*) FROM acl", &count) < 0)
		goto fail;
	if (at == 0)
		at = (uint32_t)count + 1;
	else if ((int64_t)at > count + 1) {
		err = -ERANGE;
		goto fail;
	}
	/* Renumber first, so positions stay 1..n whatever was saved. */
	if (state_acl_renumber(st) < 0 ||
	    state_run_int(st, "UPDATE acl SET position = position + 1 WHERE "
	    "position >= ?1", at, 0, 0) < 0)
		goto fail;
	if (sqlite3_prepare_v2(st->db, "INSERT INTO acl (position, action, "
	    "kind, match, prefix) VALUES (?1, ?2, ?3, ?4, ?5)", -1, &stmt,
	    NULL) != SQLITE_OK) {
		(void)state_sqlerr(st);
		goto fail;
	}
	if (sqlite3_bind_int64(stmt, 1, at) != SQLITE_OK ||
	    sqlite3_bind_text(stmt, 2, r->action, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(stmt, 3, r->kind, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(stmt, 4, r->match, -1, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(stmt, 5, r->prefix, -1, SQLITE_STATIC) !=
	    SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE) {
		(void)state_sqlerr(st);
		goto fail;
	}
	sqlite3_finalize(stmt);
	stmt = NULL;
	if (state_exec(st, "COMMIT") < 0)
		goto fail;
	*pos = at;
	return 0;
fail:
	sqlite3_finalize(stmt);
	return state_abort(st, err);
}

/* Deletes one rule and moves the later ones up, atomically. */
int
state_acl_remove(struct state *st, uint32_t pos)
{
	int64_t count;
	int err = -EIO;

	state_begin_call(st);
	if ((err = state_exec(st, "BEGIN IMMEDIATE")) < 0)
		return err;
	err = -EIO;
	if (state_query_int(st, "SELECT count(*) FROM acl", &count) < 0)
		goto fail;
	if (pos == 0 || (int64_t)pos > count) {
		err = -ENOENT;
		goto fail;
	}
	if (state_acl_renumber(st) < 0 ||
	    state_run_int(st, "DELETE FROM acl WHERE position = ?1", pos, 0,
	    0) < 0 ||
	    state_run_int(st, "UPDATE acl SET position = position - 1 WHERE "
	    "position > ?1", pos, 0, 0) < 0 ||
	    state_exec(st, "COMMIT") < 0)
		goto fail;
	return 0;
fail:
	return state_abort(st, err);
}

/* ---- Audit trail --------------------------------------------------- */

/* Binds a string, or NULL, to parameter i. */
static bool
state_bind_str(sqlite3_stmt *stmt, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(stmt, i) == SQLITE_OK;
	return sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC) == SQLITE_OK;
}

/* Retention inside the caller's transaction: by age, then by count. */
static int
state_audit_prune_tx(struct state *st, uint64_t max_rows, int64_t before_ms,
    uint64_t *deleted)
{
	int64_t keep = max_rows > INT64_MAX ? INT64_MAX : (int64_t)max_rows;

	*deleted = 0;
	if (before_ms != 0) {
		if (state_run_int(st, "DELETE FROM audit WHERE time_ms < ?1",
		    before_ms, 0, 0) < 0)
			return -EIO;
		*deleted += (uint64_t)sqlite3_changes(st->db);
	}
	/* Everything older than the max_rows-th newest row goes. */
	if (keep == 0) {
		if (state_run_int(st, "DELETE FROM audit", 0, 0, 0) < 0)
			return -EIO;
	} else if (state_run_int(st, "DELETE FROM audit WHERE id < (SELECT id "
	    "FROM audit ORDER BY id DESC LIMIT 1 OFFSET ?1)", keep - 1, 0,
	    0) < 0)
		return -EIO;
	*deleted += (uint64_t)sqlite3_changes(st->db);
	return 0;
}

/*
 * Inserts the rows with the one prepared statement and applies retention,
 * all in one transaction: one commit, one sync per batch.
 */
int
state_audit_append(struct state *st, const struct state_audit_row *rows,
    size_t n, uint64_t max_rows, int64_t before_ms, uint64_t *deleted)
{
	sqlite3_stmt *s;
	size_t i;

	*deleted = 0;
	state_begin_call(st);
	if (st->audit_ins == NULL && sqlite3_prepare_v3(st->db,
	    "INSERT INTO audit (time_ms, cid, peer, domain, uuid, op, path, "
	    "result, bytes, ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10)", -1, SQLITE_PREPARE_PERSISTENT, &st->audit_ins,
	    NULL) != SQLITE_OK)
		return state_sqlerr(st);
	s = st->audit_ins;
	if (state_exec(st, "BEGIN IMMEDIATE") < 0)
		return st->err;
	for (i = 0; i < n; i++) {
		const struct state_audit_row *r = &rows[i];

		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		if (sqlite3_bind_int64(s, 1, r->time_ms) != SQLITE_OK ||
		    sqlite3_bind_int64(s, 2, r->cid) != SQLITE_OK ||
		    !state_bind_str(s, 3, r->peer) ||
		    !state_bind_str(s, 4, r->domain) ||
		    !state_bind_str(s, 5, r->uuid) ||
		    !state_bind_str(s, 6, r->op) ||
		    !state_bind_str(s, 7, r->path) ||
		    !state_bind_str(s, 8, r->result) ||
		    sqlite3_bind_int64(s, 9, r->bytes > INT64_MAX ? INT64_MAX :
		    (int64_t)r->bytes) != SQLITE_OK ||
		    sqlite3_bind_int64(s, 10, r->ms > INT64_MAX ? INT64_MAX :
		    (int64_t)r->ms) != SQLITE_OK ||
		    sqlite3_step(s) != SQLITE_DONE) {
			(void)state_sqlerr(st);
			goto fail;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (state_audit_prune_tx(st, max_rows, before_ms, deleted) < 0 ||
	    state_exec(st, "COMMIT") < 0)
		goto fail;
	return 0;
fail:
	*deleted = 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return state_abort(st, -EIO);
}

/* Retention on its own, in a transaction of its own. */
int
state_audit_prune(struct state *st, uint64_t max_rows, int64_t before_ms,
    uint64_t *deleted)
{
	*deleted = 0;
	state_begin_call(st);
	if (state_exec(st, "BEGIN IMMEDIATE") < 0)
		return st->err;
	if (state_audit_prune_tx(st, max_rows, before_ms, deleted) < 0 ||
	    state_exec(st, "COMMIT") < 0) {
		*deleted = 0;
		return state_abort(st, -EIO);
	}
	return 0;
}

/* Reads a text column, or NULL. */
static const char *
state_col_str(sqlite3_stmt *stmt, int i)
{
	return (const char *)sqlite3_column_text(stmt, i);
}

/* The newest matching rows, handed out oldest first. */
int
state_audit_query(struct state *st, const struct state_audit_query *q,
    void (*fn)(void *arg, const struct state_audit_row *row), void *arg,
    bool *more)
{
	sqlite3_stmt *stmt = NULL;
	struct state_audit_row row;
	bool first = true;
	int err = -EIO, rc;

	*more = false;
	state_begin_call(st);
	/*
	 * One row more than the limit, counted by the window function, tells
	 * whether older rows were left out; that oldest one is not shown.
	 */
	if (sqlite3_prepare_v2(st->db, "SELECT *, count(*) OVER () FROM ("
	    "SELECT id, time_ms, cid, peer, domain, uuid, op, path, result, "
	    "bytes, ms FROM audit WHERE time_ms >= ?1 AND (?2 IS NULL OR "
	    "domain = ?2 OR uuid = lower(?2)) AND (?3 = 0 OR cid = ?3) "
	    "ORDER BY id DESC LIMIT ?4) ORDER BY id ASC", -1, &stmt,
	    NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_bind_int64(stmt, 1, q->since_ms) != SQLITE_OK ||
	    !state_bind_str(stmt, 2, q->domain) ||
	    sqlite3_bind_int64(stmt, 3, q->cid) != SQLITE_OK ||
	    sqlite3_bind_int64(stmt, 4, (int64_t)q->limit + 1) != SQLITE_OK)
		goto done;
	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (first && sqlite3_column_int64(stmt, 11) >
		    (int64_t)q->limit) {
			first = false;
			*more = true;
			continue;
		}
		first = false;
		memset(&row, 0, sizeof(row));
		row.time_ms = sqlite3_column_int64(stmt, 1);
		row.cid = (uint32_t)sqlite3_column_int64(stmt, 2);
		row.peer = state_col_str(stmt, 3);
		row.domain = state_col_str(stmt, 4);
		row.uuid = state_col_str(stmt, 5);
		row.op = state_col_str(stmt, 6);
		row.path = state_col_str(stmt, 7);
		row.result = state_col_str(stmt, 8);
		row.bytes = (uint64_t)sqlite3_column_int64(stmt, 9);
		row.ms = (uint64_t)sqlite3_column_int64(stmt, 10);
		fn(arg, &row);
	}
	if (rc == SQLITE_DONE)
		err = 0;
done:
	sqlite3_finalize(stmt);
	return err;
}
