/*
 * state.h: the daemon's persistent settings, in SQLite.
 *
 * One file, DIR/state.db, in WAL mode, with a settings(key, value) table.
 * PRAGMA user_version holds the schema version: a database from a newer
 * portholed is refused rather than misread. Calls block briefly on the
 * loop thread; they happen only at startup, on SIGHUP and on control
 * commands.
 */
#ifndef HOSTD_STATE_H
#define HOSTD_STATE_H

#include <stddef.h>

struct state;

/* The schema version this code reads and writes. */
#define STATE_SCHEMA_VERSION	1

/* The setting that holds the repository's absolute path. */
#define STATE_KEY_REPO		"repo"

/*
 * Opens (creating it, and dir with mode 0750, when missing) the state
 * database in dir. Returns 0 and sets *out; on failure a negative errno and
 * a one-line reason in err (errlen bytes). Close with state_close().
 */
int	state_open(const char *dir, struct state **out, char *err,
	    size_t errlen);

/* Closes the database. Accepts NULL. */
void	state_close(struct state *st);

/*
 * Reads a setting. Returns 0 and sets *value to a malloc'd copy the caller
 * frees, or to NULL when the key is not set; -EIO on a database error.
 */
int	state_get(struct state *st, const char *key, char **value);

/* Stores a setting, replacing any old value. Returns 0 or -EIO. */
int	state_set(struct state *st, const char *key, const char *value);

/* The last database error message, for logs. */
const char *state_errmsg(struct state *st);

#endif /* HOSTD_STATE_H */
