/*
 * state.h: the daemon's persistent settings, in SQLite.
 *
 * One file, DIR/state.db, in WAL mode, with a settings(key, value) table,
 * the access rules (acl) and the audit trail (audit). PRAGMA user_version
 * holds the schema version: an older database is upgraded in place, one
 * from a newer portholed is refused rather than misread. Calls block
 * briefly on the loop thread; they happen at startup, on SIGHUP, on
 * control commands and when the audit trail flushes a batch.
 */
#ifndef HOSTD_STATE_H
#define HOSTD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct state;

/*
 * The schema version this code reads and writes. 1: settings; 2: acl and
 * audit tables.
 */
#define STATE_SCHEMA_VERSION	2

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

/* Stores a setting, replacing any old value. Returns 0, -ENOSPC when the
 * disk is full, or -EIO. */
int	state_set(struct state *st, const char *key, const char *value);

/*
 * Why the last call failed, for logs: its first database error (not what
 * undoing the transaction said afterwards), "No space left on device
 * (...)" for a full disk, or our own reason.
 */
const char *state_errmsg(struct state *st);

/* Makes state_errmsg() say msg until the next call: for a caller that
 * found something it read from the database unusable. */
void	state_set_errmsg(struct state *st, const char *msg);

/* ---- Access rules ------------------------------------------------------ */

/*
 * One saved access rule, as its words. The database does not judge them:
 * acl.c parses them with the check `acl add` uses (acl_load()).
 */
struct state_acl_row {
	int64_t		 position;	/* as saved (gaps possible) */
	char		*action;	/* "allow" or "deny" */
	char		*kind;		/* "any", "cid", "uuid" or "name" */
	char		*match;		/* bare: the CID number, the UUID or
					   the name */
	char		*prefix;	/* normalised: "." or "a/b" */
};

/*
 * Reads the saved rules in position order into a malloc'd array for
 * state_acl_rows_free() (*rows NULL when there are none); a column saved
 * NULL is a NULL string. Returns 0, -EIO on a database error, or -ENOMEM.
 */
int	state_acl_rows(struct state *st, struct state_acl_row **rows,
	    size_t *n);

/* Frees what state_acl_rows() returned. Accepts NULL. */
void	state_acl_rows_free(struct state_acl_row *rows, size_t n);

/*
 * Saves rule r (its position ignored) before the rule at position at
 * (1-based; 0 appends), moving that rule and the ones after it down by
 * one, in one transaction. Sets *pos to the new rule's position. Returns
 * 0, -ERANGE when at is past the end plus one, -ENOSPC when the disk is
 * full, or -EIO; on failure nothing changed.
 */
int	state_acl_add(struct state *st, uint32_t at,
	    const struct state_acl_row *r, uint32_t *pos);

/*
 * Removes the rule at position pos and closes the gap. Returns 0, -ENOENT
 * when there is no such rule, -ENOSPC when the disk is full, or -EIO; on
 * failure nothing changed.
 */
int	state_acl_remove(struct state *st, uint32_t pos);

/* ---- Audit trail --------------------------------------------------- */

/* One audited request. The strings are borrowed for the call. */
struct state_audit_row {
	int64_t		 time_ms;	/* wall clock at the request's start */
	uint32_t	 cid;		/* vsock CID, 0 if none */
	const char	*peer;		/* display form */
	const char	*domain;	/* libvirt name, or NULL */
	const char	*uuid;		/* libvirt UUID, or NULL */
	const char	*op;		/* "GET", "STAT", "LIST" */
	const char	*path;		/* escaped, "/"-rooted */
	const char	*result;	/* "OK", "FORBIDDEN", ... */
	uint64_t	 bytes;
	uint64_t	 ms;		/* duration */
};

/*
 * Appends n rows and applies retention as state_audit_prune() does, all
 * in one transaction (one commit, one sync). Sets *deleted to the rows
 * retention removed. Returns 0, or -ENOSPC (a full disk) or -EIO and then
 * nothing changed.
 */
int	state_audit_append(struct state *st, const struct state_audit_row *rows,
	    size_t n, uint64_t max_rows, int64_t before_ms, uint64_t *deleted);

/*
 * Deletes the rows older than before_ms (0: no age limit), then the
 * oldest rows beyond the newest max_rows (0: all of them), in one
 * transaction. Sets *deleted. Returns 0, -ENOSPC or -EIO.
 */
int	state_audit_prune(struct state *st, uint64_t max_rows,
	    int64_t before_ms, uint64_t *deleted);

/* What `audit` asks for. */
struct state_audit_query {
	int64_t		 since_ms;	/* rows from this time on; INT64_MIN:
					   all */
	const char	*domain;	/* a domain name or UUID; NULL: any */
	uint32_t	 cid;		/* this vsock CID only; 0: any */
	uint32_t	 limit;		/* the newest rows only, >= 1 */
};

/*
 * Calls fn for each matching row, at most q->limit of the newest, oldest
 * first. The row's strings are valid during the call only. Sets *more when
 * older matching rows were left out. Returns 0 or -EIO.
 */
int	state_audit_query(struct state *st, const struct state_audit_query *q,
	    void (*fn)(void *arg, const struct state_audit_row *row), void *arg,
	    bool *more);

#endif /* HOSTD_STATE_H */
