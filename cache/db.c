/*
 * db.c: the cache's SQLite database: schema and migrations, the prepared
 * statements, loading the blob index, and the catalog calls.
 *
 * Nothing read back is trusted: every row is checked (types, ranges, the
 * frame table against the sizes) before it is used, and a row that fails
 * is deleted. A crash, a full disk or someone's editing must at worst cost
 * a cache entry, never serve wrong bytes.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "cache_int.h"

/* Longest a frame of CACHE_CHUNK bytes can compress to. */
#define FRAME_MAX	ZSTD_COMPRESSBOUND(CACHE_CHUNK)

static const char schema_v1[] =
	"CREATE TABLE IF NOT EXISTS catalog ("
	" path TEXT PRIMARY KEY NOT NULL,"
	" size INTEGER NOT NULL,"
	" mtime_ns INTEGER NOT NULL,"
	" ctime_ns INTEGER NOT NULL,"
	" ino INTEGER NOT NULL,"
	" dev INTEGER NOT NULL,"
	" mode INTEGER NOT NULL,"
	" sha256 BLOB NOT NULL"
	") STRICT, WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS blobs ("
	" sha256 BLOB PRIMARY KEY NOT NULL,"
	" size INTEGER NOT NULL,"
	" stored INTEGER NOT NULL,"
	" form INTEGER NOT NULL,"
	" incompressible INTEGER NOT NULL DEFAULT 0,"
	" atime_ns INTEGER NOT NULL,"
	" frames BLOB"		/* u32 big-endian frame lengths, zstd only */
	") STRICT, WITHOUT ROWID;"
	"PRAGMA user_version = 1;";

/* Blob rows too broken to even name a blob; cache__db_load() runs this
 * only when it met one. */
static const char blobs_clean[] =
	"DELETE FROM blobs WHERE typeof(sha256) != 'blob'"
	" OR length(sha256) != 32";

/* Catalog rows that fail the checks cache_db_cat_from_row() makes; run
 * before the catalog is first counted. */
static const char catalog_clean[] =
	"DELETE FROM catalog WHERE typeof(sha256) != 'blob'"
	" OR length(sha256) != 32 OR typeof(size) != 'integer' OR size < 0"
	" OR typeof(mode) != 'integer' OR mode < 0 OR mode > 4294967295"
	" OR typeof(mtime_ns) != 'integer' OR typeof(ctime_ns) != 'integer'"
	" OR typeof(ino) != 'integer' OR typeof(dev) != 'integer'"
	" OR typeof(path) != 'text' OR length(path) = 0"
	" OR length(CAST(path AS BLOB)) > 4096"
	" OR instr(CAST(path AS BLOB), x'00') > 0";

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_CAT_GET] = "SELECT size, mtime_ns, ctime_ns, ino, dev, mode,"
	    " sha256 FROM catalog WHERE path = ?1",
	[ST_CAT_UPDATE] = "UPDATE catalog SET size = ?2, mtime_ns = ?3,"
	    " ctime_ns = ?4, ino = ?5, dev = ?6, mode = ?7, sha256 = ?8"
	    " WHERE path = ?1",
	[ST_CAT_INSERT] = "INSERT INTO catalog (path, size, mtime_ns,"
	    " ctime_ns, ino, dev, mode, sha256)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_CAT_DEL] = "DELETE FROM catalog WHERE path = ?1",
	[ST_BLOB_PUT] = "INSERT OR REPLACE INTO blobs (sha256, size, stored,"
	    " form, incompressible, atime_ns, frames)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_BLOB_DEL] = "DELETE FROM blobs WHERE sha256 = ?1",
	[ST_BLOB_ATIME] = "UPDATE blobs SET atime_ns = ?2 WHERE sha256 = ?1",
	[ST_BLOB_INCOMP] = "UPDATE blobs SET incompressible = 1"
	    " WHERE sha256 = ?1",
};

static const char cat_each_sql[] =
	"SELECT path, size, mtime_ns, ctime_ns, ino, dev, mode, sha256"
	" FROM catalog ORDER BY path";

/* In key order: sorting by access time is quicker in memory. */
static const char load_sql[] =
	"SELECT sha256, size, stored, form, incompressible, atime_ns, frames"
	" FROM blobs";

/* Maps an SQLite result to a negative errno, keeping the system's own
 * errno where SQLite failed on a file operation. */
int
cache__db_err(struct cache *c, int rc)
{
	int	e;

	switch (rc & 0xff) {
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_CANTOPEN:
	case SQLITE_IOERR:
		e = c->db != NULL ? sqlite3_system_errno(c->db) : 0;
		return e > 0 ? -e : -EIO;
	default:
		return -EIO;
	}
}

/* Runs a statement that returns no rows and resets it. */
static int
cache_db_step_done(struct cache *c, sqlite3_stmt *st)
{
	int	rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : cache__db_err(c, rc);
}

int
cache__db_exec(struct cache *c, enum cache__stmt s)
{
	return cache_db_step_done(c, c->st[s]);
}

/* Reads a single integer from a one-row statement such as a PRAGMA. */
static int
cache_db_query_int(struct cache *c, const char *sql, int64_t *out)
{
	sqlite3_stmt	*st = NULL;
	int		 rc;

	*out = 0;
	if ((rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL)) != SQLITE_OK)
		return cache__db_err(c, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else
		rc = rc == SQLITE_ROW ? -EIO : cache__db_err(c, rc);
	sqlite3_finalize(st);
	return rc;
}

/* Asks for WAL; a file system that cannot do it gets the rollback journal,
 * and then full syncs, since NORMAL is only crash-safe with WAL. */
static int
cache_db_set_journal(struct cache *c)
{
	sqlite3_stmt	*st = NULL;
	const char	*mode;
	bool		 wal = false;
	int		 rc;

	rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode = WAL", -1, &st,
	    NULL);
	if (rc != SQLITE_OK)
		return cache__db_err(c, rc);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		mode = (const char *)sqlite3_column_text(st, 0);
		wal = mode != NULL && strcmp(mode, "wal") == 0;
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return cache__db_err(c, rc);
	rc = sqlite3_exec(c->db, wal ? "PRAGMA synchronous = NORMAL" :
	    "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	return rc == SQLITE_OK ? 0 : cache__db_err(c, rc);
}

/* Brings the schema to CACHE__DB_VERSION; a newer one is refused rather
 * than misread. */
static int
cache_db_migrate(struct cache *c)
{
	int64_t	version;
	int	rc;

	if ((rc = cache_db_query_int(c, "PRAGMA user_version", &version)) != 0)
		return rc;
	if (version == CACHE__DB_VERSION)
		return 0;
	if (version != 0)
		return -EIO;
	if ((rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) !=
	    SQLITE_OK)
		return cache__db_err(c, rc);
	if ((rc = sqlite3_exec(c->db, schema_v1, NULL, NULL, NULL)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL)) !=
	    SQLITE_OK) {
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
		return cache__db_err(c, rc);
	}
	return 0;
}

/*
 * Opens the database. The catalog is not read here: on a cold start,
 * reading every row would cost more than the rest of cache_open(); its
 * rows are checked as they are read, and counted on first demand
 * (cat_count()).
 */
int
cache__db_open(struct cache *c, const char *path)
{
	size_t	i;
	int	rc;

	rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
	    NULL);
	if (rc != SQLITE_OK)
		return cache__db_err(c, rc);
	if ((rc = sqlite3_exec(c->db, "PRAGMA trusted_schema = OFF;"
	    "PRAGMA cell_size_check = ON;", NULL, NULL, NULL)) != SQLITE_OK)
		return cache__db_err(c, rc);
	sqlite3_busy_timeout(c->db, 2000);
	if ((rc = cache_db_set_journal(c)) != 0 ||
	    (rc = cache_db_migrate(c)) != 0)
		return rc;
	for (i = 0; i < ST__COUNT; i++) {
		rc = sqlite3_prepare_v3(c->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
		if (rc != SQLITE_OK)
			return cache__db_err(c, rc);
	}
	return 0;
}

void
cache__db_close(struct cache *c)
{
	size_t	i;

	for (i = 0; i < ST__COUNT; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	if (c->db != NULL)
		sqlite3_close(c->db);
	c->db = NULL;
}

/* ---- Blob rows ---------------------------------------------------------- */

/*
 * Builds an entry from a blobs row, or returns NULL if any field is out of
 * range or the pieces disagree: raw means stored == size and no frames;
 * zstd means one length per CACHE_CHUNK of content, each a possible frame,
 * adding up to the stored size, which saved what packing requires.
 */
static struct cache_ent *
cache_db_ent_from_row(sqlite3_stmt *st)
{
	struct cache_ent	*e = NULL;
	const uint8_t		*fr;
	int64_t			 size, stored, form, incomp;
	uint64_t		 sum = 0, len;
	uint32_t		 n, i;
	int			 k;

	for (k = 1; k <= 5; k++)
		if (sqlite3_column_type(st, k) != SQLITE_INTEGER)
			return NULL;
	size = sqlite3_column_int64(st, 1);
	stored = sqlite3_column_int64(st, 2);
	form = sqlite3_column_int64(st, 3);
	incomp = sqlite3_column_int64(st, 4);
	if (size < 0 || (uint64_t)size > CACHE__MAX_SIZE || stored < 0 ||
	    (incomp != 0 && incomp != 1))
		return NULL;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	memcpy(e->sha256, sqlite3_column_blob(st, 0), CACHE_SHA256_LEN);
	e->size = (uint64_t)size;
	e->stored = (uint64_t)stored;
	e->atime_ns = sqlite3_column_int64(st, 5);
	e->form = (uint8_t)form;
	if (incomp)
		e->flags |= ENT_INCOMPRESSIBLE;

	if (form == CACHE_FORM_RAW) {
		if (e->stored != e->size ||
		    sqlite3_column_type(st, 6) != SQLITE_NULL)
			goto bad;
		return e;
	}
	if (form != CACHE_FORM_ZSTD || incomp || e->size == 0 ||
	    sqlite3_column_type(st, 6) != SQLITE_BLOB)
		goto bad;
	n = cache__nframes(e->size);
	fr = sqlite3_column_blob(st, 6);
	if (fr == NULL || (uint64_t)sqlite3_column_bytes(st, 6) !=
	    (uint64_t)n * 4)
		goto bad;
	if ((e->foff = calloc((size_t)n + 1, sizeof(*e->foff))) == NULL)
		goto bad;
	for (i = 0; i < n; i++) {
		len = (uint64_t)fr[4 * i] << 24 | (uint64_t)fr[4 * i + 1] << 16 |
		    (uint64_t)fr[4 * i + 2] << 8 | fr[4 * i + 3];
		if (len == 0 || len > FRAME_MAX)
			goto bad;
		e->foff[i] = sum;
		sum += len;
	}
	e->foff[n] = sum;
	e->nframes = n;
	if (sum != e->stored ||
	    e->stored * 100 > e->size * (100 - CACHE_MIN_SAVING_PCT))
		goto bad;
	return e;

bad:
	free(e->foff);
	free(e);
	return NULL;
}

static int
cache_db_cmp_atime(const void *a, const void *b)
{
	const struct cache_ent	*x = *(struct cache_ent *const *)a;
	const struct cache_ent	*y = *(struct cache_ent *const *)b;

	if (x->atime_ns != y->atime_ns)
		return x->atime_ns < y->atime_ns ? -1 : 1;
	return memcmp(x->sha256, y->sha256, CACHE_SHA256_LEN);
}

/*
 * Loads every blob row into the index, then sorts by access time and adds
 * them least recently used first, so that each lands at the head and the
 * list comes out in use order. Bad rows are deleted; their files are then
 * orphans and go in reconcile().
 */
int
cache__db_load(struct cache *c)
{
	sqlite3_stmt		*st = NULL;
	struct cache_ent	*e, **all = NULL, **na;
	uint8_t			(*bad)[CACHE_SHA256_LEN] = NULL, (*nb)[32];
	size_t			 n = 0, cap = 0, nbad = 0, capbad = 0, i;
	bool			 junk = false;
	int			 rc;

	if ((rc = sqlite3_prepare_v2(c->db, load_sql, -1, &st, NULL)) !=
	    SQLITE_OK)
		return cache__db_err(c, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_BLOB ||
		    sqlite3_column_bytes(st, 0) != CACHE_SHA256_LEN) {
			junk = true;
			continue;
		}
		if ((e = cache_db_ent_from_row(st)) != NULL) {
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				if ((na = realloc(all, cap * sizeof(*all))) ==
				    NULL) {
					free(e->foff);
					free(e);
					rc = -ENOMEM;
					goto out;
				}
				all = na;
			}
			all[n++] = e;
			continue;
		}
		if (nbad == capbad) {
			capbad = capbad ? capbad * 2 : 16;
			if ((nb = realloc(bad,
			    capbad * sizeof(*bad))) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			bad = nb;
		}
		memcpy(bad[nbad++], sqlite3_column_blob(st, 0),
		    CACHE_SHA256_LEN);
	}
	if (rc != SQLITE_DONE) {
		rc = cache__db_err(c, rc);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (n > 0)
		qsort(all, n, sizeof(*all), cache_db_cmp_atime);
	for (i = 0; i < n; i++) {
		/* Only a damaged primary key index could repeat a digest. */
		if (cache__find(c, all[i]->sha256) != NULL)
			continue;
		if ((rc = cache__index_add(c, all[i])) != 0)
			goto out;
		c->disk += all[i]->stored;
		if (all[i]->atime_ns > c->last_atime)
			c->last_atime = all[i]->atime_ns;
		all[i] = NULL;
	}
	rc = 0;
	for (i = 0; i < nbad && rc == 0; i++)
		rc = cache__db_blob_del(c, bad[i]);
	if (rc == 0 && junk &&
	    (rc = sqlite3_exec(c->db, blobs_clean, NULL, NULL, NULL)) !=
	    SQLITE_OK)
		rc = cache__db_err(c, rc);
out:
	sqlite3_finalize(st);
	for (i = 0; i < n; i++) {
		if (all[i] != NULL) {
			free(all[i]->foff);
			free(all[i]);
		}
	}
	free(all);
	free(bad);
	return rc;
}

/* Writes e's row; the frame table is rebuilt from the offsets. */
int
cache__db_blob_put(struct cache *c, const struct cache_ent *e)
{
	sqlite3_stmt	*st = c->st[ST_BLOB_PUT];
	uint8_t		*fr = NULL;
	uint64_t	 len;
	uint32_t	 i;
	int		 rc;

	if (e->form == CACHE_FORM_ZSTD) {
		if ((fr = malloc((size_t)e->nframes * 4)) == NULL)
			return -ENOMEM;
		for (i = 0; i < e->nframes; i++) {
			len = e->foff[i + 1] - e->foff[i];
			fr[4 * i] = (uint8_t)(len >> 24);
			fr[4 * i + 1] = (uint8_t)(len >> 16);
			fr[4 * i + 2] = (uint8_t)(len >> 8);
			fr[4 * i + 3] = (uint8_t)len;
		}
	}
	sqlite3_bind_blob(st, 1, e->sha256, CACHE_SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)e->size);
	sqlite3_bind_int64(st, 3, (int64_t)e->stored);
	sqlite3_bind_int64(st, 4, e->form);
	sqlite3_bind_int64(st, 5, (e->flags & ENT_INCOMPRESSIBLE) ? 1 : 0);
	sqlite3_bind_int64(st, 6, e->atime_ns);
	if (fr != NULL)
		sqlite3_bind_blob(st, 7, fr, (int)e->nframes * 4,
		    SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	rc = cache_db_step_done(c, st);
	free(fr);
	return rc;
}

int
cache__db_blob_del(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN])
{
	sqlite3_stmt	*st = c->st[ST_BLOB_DEL];

	sqlite3_bind_blob(st, 1, sha256, CACHE_SHA256_LEN, SQLITE_STATIC);
	return cache_db_step_done(c, st);
}

/*
 * Writes every pending access time in one transaction. Touched entries
 * moved to the head of the list, so the walk stops as soon as it has seen
 * them all.
 */
int
cache__db_atimes(struct cache *c)
{
	sqlite3_stmt		*st = c->st[ST_BLOB_ATIME];
	struct cache_ent	*e;
	uint64_t		 left;
	int			 rc;

	if ((rc = cache__db_exec(c, ST_BEGIN)) != 0)
		return rc;
	for (e = c->head, left = c->ndirty; e != NULL && left > 0;
	    e = e->next) {
		if (!(e->flags & ENT_DIRTY))
			continue;
		sqlite3_bind_blob(st, 1, e->sha256, CACHE_SHA256_LEN,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, e->atime_ns);
		if ((rc = cache_db_step_done(c, st)) != 0)
			goto fail;
		left--;
	}
	if ((rc = cache__db_exec(c, ST_COMMIT)) != 0)
		goto fail;
	for (e = c->head; e != NULL && c->ndirty > 0; e = e->next) {
		if (e->flags & ENT_DIRTY) {
			e->flags &= (uint8_t)~ENT_DIRTY;
			c->ndirty--;
		}
	}
	return 0;

fail:
	(void)cache__db_exec(c, ST_ROLLBACK);
	return rc;
}

/* ---- Catalog ------------------------------------------------------------ */

static int
cache_db_check_path(const char *path)
{
	size_t	len;

	if (path == NULL)
		return -EINVAL;
	len = strnlen(path, CACHE__PATH_MAX + 1);
	return len == 0 || len > CACHE__PATH_MAX ? -EINVAL : 0;
}

/* Reads columns first..first+6 of a catalog row into *out; false if any
 * is out of range. */
static bool
cache_db_cat_from_row(sqlite3_stmt *st, int first, struct cache_cat *out)
{
	int64_t	size, mode;
	int	k;

	memset(out, 0, sizeof(*out));
	for (k = first; k < first + 6; k++)
		if (sqlite3_column_type(st, k) != SQLITE_INTEGER)
			return false;
	if (sqlite3_column_type(st, first + 6) != SQLITE_BLOB ||
	    sqlite3_column_bytes(st, first + 6) != CACHE_SHA256_LEN)
		return false;
	size = sqlite3_column_int64(st, first);
	mode = sqlite3_column_int64(st, first + 5);
	if (size < 0 || mode < 0 || mode > UINT32_MAX)
		return false;
	out->size = (uint64_t)size;
	out->mtime_ns = sqlite3_column_int64(st, first + 1);
	out->ctime_ns = sqlite3_column_int64(st, first + 2);
	out->ino = (uint64_t)sqlite3_column_int64(st, first + 3);
	out->dev = (uint64_t)sqlite3_column_int64(st, first + 4);
	out->mode = (uint32_t)mode;
	memcpy(out->sha256, sqlite3_column_blob(st, first + 6),
	    CACHE_SHA256_LEN);
	return true;
}

void
cache_db_cat_from_stat(struct cache_cat *e, const struct stat *st,
    const uint8_t sha256[CACHE_SHA256_LEN])
{
	memset(e, 0, sizeof(*e));
	e->size = (uint64_t)st->st_size;
	e->mtime_ns = ph_util_timespec_ns(&st->st_mtim);
	e->ctime_ns = ph_util_timespec_ns(&st->st_ctim);
	e->ino = (uint64_t)st->st_ino;
	e->dev = (uint64_t)st->st_dev;
	e->mode = (uint32_t)st->st_mode;
	memcpy(e->sha256, sha256, CACHE_SHA256_LEN);
}

bool
cache_db_cat_matches(const struct cache_cat *e, const struct stat *st)
{
	return e->size == (uint64_t)st->st_size &&
	    e->mtime_ns == ph_util_timespec_ns(&st->st_mtim) &&
	    e->ctime_ns == ph_util_timespec_ns(&st->st_ctim) &&
	    e->ino == (uint64_t)st->st_ino && e->dev == (uint64_t)st->st_dev;
}

int
cache_db_cat_get(struct cache *c, const char *path, struct cache_cat *out)
{
	sqlite3_stmt	*st = c->st[ST_CAT_GET];
	bool		 ok;
	int		 rc;

	memset(out, 0, sizeof(*out));
	if ((rc = cache_db_check_path(path)) != 0)
		return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ok = cache_db_cat_from_row(st, 0, out);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (ok)
			return 0;
		/* A row we cannot trust is as good as none. */
		(void)cache_db_cat_del(c, path);
		memset(out, 0, sizeof(*out));
		return -ENOENT;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? -ENOENT : cache__db_err(c, rc);
}

static void
cache_db_cat_bind(sqlite3_stmt *st, const char *path, const struct cache_cat *e)
{
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)e->size);
	sqlite3_bind_int64(st, 3, e->mtime_ns);
	sqlite3_bind_int64(st, 4, e->ctime_ns);
	sqlite3_bind_int64(st, 5, (int64_t)e->ino);
	sqlite3_bind_int64(st, 6, (int64_t)e->dev);
	sqlite3_bind_int64(st, 7, e->mode);
	sqlite3_bind_blob(st, 8, e->sha256, CACHE_SHA256_LEN, SQLITE_STATIC);
}

/* Updates in place, else inserts, which keeps the entry count exact. */
int
cache_db_cat_put(struct cache *c, const char *path, const struct cache_cat *e)
{
	int	rc;

	if ((rc = cache_db_check_path(path)) != 0)
		return rc;
	if (e == NULL || e->size > INT64_MAX)
		return -EINVAL;
	cache_db_cat_bind(c->st[ST_CAT_UPDATE], path, e);
	if ((rc = cache_db_step_done(c, c->st[ST_CAT_UPDATE])) != 0)
		return rc;
	if (sqlite3_changes(c->db) > 0)
		return 0;
	cache_db_cat_bind(c->st[ST_CAT_INSERT], path, e);
	if ((rc = cache_db_step_done(c, c->st[ST_CAT_INSERT])) != 0)
		return rc;
	if (c->ncat_known)
		c->ncat++;
	return 0;
}

int
cache_db_cat_del(struct cache *c, const char *path)
{
	sqlite3_stmt	*st = c->st[ST_CAT_DEL];
	int		 rc;

	if ((rc = cache_db_check_path(path)) != 0)
		return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	if ((rc = cache_db_step_done(c, st)) != 0)
		return rc;
	if (sqlite3_changes(c->db) == 0)
		return -ENOENT;
	if (c->ncat_known)
		c->ncat--;
	return 0;
}

/*
 * Walks with a statement of its own, so that cb may use the other catalog
 * calls (even start another walk). Rows that fail the checks are skipped.
 */
int
cache_db_cat_each(struct cache *c, cache_cat_cb *cb, void *arg)
{
	sqlite3_stmt		*st = NULL;
	struct cache_cat	 e;
	const char		*path;
	int			 rc, len;

	if ((rc = sqlite3_prepare_v2(c->db, cat_each_sql, -1, &st, NULL)) !=
	    SQLITE_OK)
		return cache__db_err(c, rc);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		path = (const char *)sqlite3_column_text(st, 0);
		len = sqlite3_column_bytes(st, 0);
		if (path == NULL || len <= 0 || len > CACHE__PATH_MAX ||
		    strlen(path) != (size_t)len || !cache_db_cat_from_row(st, 1,
		    &e))
			continue;
		if ((rc = cb(arg, path, &e)) != 0)
			goto out;
	}
	rc = rc == SQLITE_DONE ? 0 : cache__db_err(c, rc);
out:
	sqlite3_finalize(st);
	return rc;
}

/* The count is made the first time it is asked for, after deleting the
 * rows that fail the checks, and kept up to date from then on. A failure
 * is retried on the next call; meanwhile the answer is 0. */
uint64_t
cache_db_cat_count(struct cache *c)
{
	int64_t	n;

	if (c->ncat_known)
		return c->ncat;
	if (sqlite3_exec(c->db, catalog_clean, NULL, NULL, NULL) != SQLITE_OK ||
	    cache_db_query_int(c, "SELECT count(*) FROM catalog", &n) != 0)
		return 0;
	c->ncat = (uint64_t)n;
	c->ncat_known = true;
	return c->ncat;
}
