/*
 * cache_int.h: the structures behind cache.h's opaque types, shared by the
 * files of cache/ and by nothing else.
 *
 * Accounting: c->disk is the size of every blob file the cache is
 * answerable for (indexed blobs, plus removed ones whose last pin has not
 * gone yet); c->reserved is what fills and packs in progress may still
 * write. disk + reserved stays within the budget; only pinned blobs can
 * hold it above, after the budget was lowered.
 */
#ifndef PORTHOLE_CACHE_INT_H
#define PORTHOLE_CACHE_INT_H

#include <sqlite3.h>
#include <stdatomic.h>

#include <openssl/evp.h>

#include "cache.h"
#include "proto.h"

/* The schema version in PRAGMA user_version; bump it with a migration. */
#define CACHE__DB_VERSION	1
/* "ab/" + 64 hex digits + ".zst" + NUL. */
#define CACHE__NAME_MAX		72
/* Temporary names: "fill." or "pack." + 16 hex digits + NUL. */
#define CACHE__TMPNAME_MAX	24
/* Largest blob: the frame count must fit in 32 bits, and sizes in SQLite's
 * signed 64-bit integers with room to add them up. */
#define CACHE__MAX_SIZE		((uint64_t)CACHE_CHUNK * UINT32_MAX)
/* Longest catalog path accepted (a normalized repository path). */
#define CACHE__PATH_MAX		4096

enum cache__ent_flag {
	ENT_INCOMPRESSIBLE = 0x01,	/* packing did not pay; never retried */
	ENT_ZOMBIE = 0x02,		/* out of the index, waiting for its pins */
	ENT_DIRTY = 0x04,		/* atime_ns not yet in the database */
	ENT_SEEN = 0x08,		/* its file was found (cache_open only) */
	ENT_PACKING = 0x10,		/* a cache_pack holds it */
};

/*
 * One blob. Indexed entries are in the hash table and on the LRU list
 * (pinned ones too: eviction skips them). sha256, size and, once the form
 * is zstd, foff and nframes never change, which is what lets a pinned
 * handle read them from a worker thread.
 */
struct cache_ent {
	struct cache_ent	*prev;		/* towards most recently used */
	struct cache_ent	*next;		/* towards least recently used */
	uint64_t		*foff;		/* zstd: nframes + 1 offsets */
	uint64_t		 size;
	uint64_t		 stored;
	int64_t			 atime_ns;
	uint32_t		 pins;
	uint32_t		 nframes;
	uint8_t			 sha256[CACHE_SHA256_LEN];
	uint8_t			 form;
	uint8_t			 flags;
};

/* A hash table slot keeps the entry's hash, so that probing past other
 * entries and moving them never has to touch the entries themselves. */
struct cache__slot {
	uint64_t		 hash;
	struct cache_ent	*e;		/* NULL: empty */
};

/* A pin: what the holder sees stays as it was when pinned. */
struct cache_blob {
	struct cache		*c;
	struct cache_ent	*e;
	const uint64_t		*foff;		/* NULL for the raw form */
	uint64_t		 stored;
	uint32_t		 nframes;
	int			 fd;
	uint8_t			 form;
};

enum cache__stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_CAT_GET,
	ST_CAT_UPDATE,
	ST_CAT_INSERT,
	ST_CAT_DEL,
	ST_BLOB_PUT,
	ST_BLOB_DEL,
	ST_BLOB_ATIME,
	ST_BLOB_INCOMP,
	ST__COUNT
};

struct cache {
	sqlite3			*db;
	sqlite3_stmt		*st[ST__COUNT];
	int			 dirfd;		/* blob dir, flock()ed */
	int			 tmpfd;		/* blob dir/tmp */
	int			 level;		/* zstd level for packing */

	uint64_t		 budget;
	uint64_t		 disk;
	uint64_t		 reserved;

	/* Hash table: open addressing, linear probing, 2^bits slots. */
	struct cache__slot	*slots;
	uint64_t		 seed;
	unsigned		 bits;
	uint64_t		 count;

	/* LRU list: head is most recently used. */
	struct cache_ent	*head;
	struct cache_ent	*tail;

	int64_t			 last_atime;
	uint64_t		 tmp_serial;

	uint64_t		 idx_bytes;	/* stored size of indexed blobs */
	uint64_t		 idx_content;	/* decoded size of indexed blobs */
	uint64_t		 ndirty;
	uint64_t		 npinned;
	uint64_t		 nzstd;
	uint64_t		 ncat;
	bool			 ncat_known;	/* ncat counted yet */
	uint64_t		 hits;
	uint64_t		 misses;
	uint64_t		 evictions;
	uint64_t		 fills;
};

struct cache_fill {
	struct cache		*c;
	EVP_MD_CTX		*md;
	uint64_t		 size;
	_Atomic uint64_t	 written;
	int			 fd;		/* read-write, appended to */
	int			 rfd;		/* read-only, for cache_fill_fd() */
	int			 err;		/* first failure, sticky */
	bool			 finished;
	bool			 kept;		/* a blob file in DIR/tmp/, not
						   memory */
	uint8_t			 sha256[CACHE_SHA256_LEN];
	char			 name[CACHE__TMPNAME_MAX];
};

struct cache_pack {
	struct cache		*c;
	struct cache_blob	*src;		/* our own pin on the raw blob */
	uint32_t		*lens;		/* compressed frame lengths */
	uint64_t		 size;
	uint64_t		 limit;		/* most the packed form may take */
	uint64_t		 out;		/* bytes written so far */
	uint32_t		 nframes;
	int			 level;
	int			 fd;
	int			 fits;		/* 1: complete and within limit */
	bool			 corrupt;	/* the raw file is not its digest */
	uint8_t			 sha256[CACHE_SHA256_LEN];
	char			 name[CACHE__TMPNAME_MAX];
};

/* cache.c: the index. */
struct cache_ent *cache__find(const struct cache *c,
	    const uint8_t sha256[CACHE_SHA256_LEN]);
int	cache__index_add(struct cache *c, struct cache_ent *e);
void	cache__drop(struct cache *c, struct cache_ent *e);
int	cache__make_room(struct cache *c, uint64_t need);
int64_t	cache__atime(struct cache *c);
void	cache__touch(struct cache *c, struct cache_ent *e);
void	cache__ent_name(const struct cache_ent *e, int form,
	    char name[CACHE__NAME_MAX]);
int	cache__pin(struct cache *c, struct cache_ent *e, int fd,
	    struct cache_blob **out);
int	cache__tmp_create(struct cache *c, const char *prefix,
	    char name[CACHE__TMPNAME_MAX]);
int	cache__place(struct cache *c, const char *tmpname,
	    const char *name);
uint32_t cache__nframes(uint64_t size);

/* db.c: the database. */
int	cache__db_open(struct cache *c, const char *path);
void	cache__db_close(struct cache *c);
int	cache__db_err(struct cache *c, int rc);
int	cache__db_load(struct cache *c);
int	cache__db_blob_put(struct cache *c, const struct cache_ent *e);
int	cache__db_blob_del(struct cache *c,
	    const uint8_t sha256[CACHE_SHA256_LEN]);
int	cache__db_exec(struct cache *c, enum cache__stmt s);
int	cache__db_atimes(struct cache *c);

#endif /* PORTHOLE_CACHE_INT_H */
