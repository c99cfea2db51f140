/*
 * state.c: SQLite settings store.
 */
#include <errno.h>
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
	sqlite3	*db;
};

/* Runs SQL that returns no rows. */
static int
state_exec(struct state *st, const char *sql)
{
	return sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ?
	    0 : -EIO;
}

/* Reads a PRAGMA that returns one integer. */
static int
state_pragma_int(struct state *st, const char *sql, int *out)
{
	sqlite3_stmt *stmt = NULL;
	int err = -EIO;

	*out = 0;
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		*out = sqlite3_column_int(stmt, 0);
		err = 0;
	}
	sqlite3_finalize(stmt);
	return err;
}

/* Creates the schema, or checks that an existing one is ours. */
static int
state_schema(struct state *st, char *err, size_t errlen)
{
	int version;

	if (state_pragma_int(st, "PRAGMA user_version", &version) < 0) {
		snprintf(err, errlen, "cannot read the schema version: %s",
		    sqlite3_errmsg(st->db));
		return -EIO;
	}
	if (version > STATE_SCHEMA_VERSION) {
		snprintf(err, errlen, "schema version %d is newer than this "
		    "portholed understands (%d)", version,
		    STATE_SCHEMA_VERSION);
		return -EPROTO;
	}
	if (version == STATE_SCHEMA_VERSION)
		return 0;
	/* Version 0 is a new, empty database. */
	if (state_exec(st, "BEGIN IMMEDIATE") < 0 ||
	    state_exec(st, "CREATE TABLE IF NOT EXISTS settings ("
	    "key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)") < 0 ||
	    state_exec(st, "PRAGMA user_version = 1") < 0 ||
	    state_exec(st, "COMMIT") < 0) {
		snprintf(err, errlen, "cannot create the schema: %s",
		    sqlite3_errmsg(st->db));
		(void)state_exec(st, "ROLLBACK");
		return -EIO;
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
	sqlite3_close(st->db);
	free(st);
}

const char *
state_errmsg(struct state *st)
{
	return sqlite3_errmsg(st->db);
}

/* Reads one setting. */
int
state_get(struct state *st, const char *key, char **value)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *text;
	int err = -EIO, rc;

	*value = NULL;
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

	if (sqlite3_prepare_v2(st->db,
	    "INSERT INTO settings (key, value) VALUES (?1, ?2) "
	    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", -1,
	    &stmt, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_text(stmt, 2, value, -1, SQLITE_STATIC) ==
	    SQLITE_OK && sqlite3_step(stmt) == SQLITE_DONE)
		err = 0;
	sqlite3_finalize(stmt);
	return err;
}
