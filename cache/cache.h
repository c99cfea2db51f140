/*
 * cache.h: Porthole's content cache: blobs addressed by SHA-256 under a
 * byte budget with least-recently-used eviction, and a catalog that maps
 * repository paths to the digest of their content.
 *
 * Persistence: one SQLite database (WAL) holds the catalog and the blob
 * index; blob files live under the blob directory, two hex digits of
 * fan-out: DIR/ab/abcd...ef (raw content) or DIR/ab/abcd...ef.zst (zstd
 * frames, see below). Files being written live in DIR/tmp/ until they are
 * complete and checked, then are renamed into place, so a crash at any
 * point never leaves a partial blob under a blob name. cache_open()
 * reconciles the index with the files it finds.
 *
 * In memory: a hash table from digest to blob and a doubly linked LRU list,
 * so lookup, touch and eviction are O(1). Access times reach the database
 * in batches (cache_sync()), not on every hit.
 *
 * Threads: the struct cache and everything reached from it belong to one
 * thread (the daemon's loop thread). Functions marked "any thread" touch
 * only the object passed to them and may run on a worker thread while the
 * owner thread goes on, as long as one object is used by one thread at a
 * time.
 *
 * Errors: every function that can fail returns 0 (or a documented positive
 * value) on success and a negative errno otherwise. Nothing here logs.
 */
#ifndef PORTHOLE_CACHE_H
#define PORTHOLE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define CACHE_SHA256_LEN	32
/* A compressed blob is a run of zstd frames, each this many bytes decoded
 * (the last one fewer), the same chunk size as DATA frames on the wire. */
#define CACHE_CHUNK		(1024u * 1024u)
/* Compressed form is kept only when it saves at least this percentage. */
#define CACHE_MIN_SAVING_PCT	10

struct cache;
struct cache_blob;
struct cache_fill;
struct cache_pack;

struct cache_config {
	const char	*db_path;	/* SQLite file; created if missing */
	const char	*blob_dir;	/* created (0700) if missing */
	uint64_t	 budget;	/* bytes of blob files on disk */
	int		 zstd_level;	/* at-rest level; 0 picks a fast one */
};

/*
 * Opens or creates the cache. Reconciles: removes DIR/tmp/ leftovers,
 * blob files the index does not know, index rows whose file is missing;
 * then evicts down to the budget. (One directory read per fan-out
 * directory, no stat per file: a file that is not the recorded size is
 * found and removed when it is next pinned.) Returns 0 and sets *out,
 * -EINVAL for a bad config, -EBUSY if another cache has the blob
 * directory open, -ENOMEM, or the errno of a failed file or database
 * operation (-EIO for SQLite errors and for a database from a newer
 * version).
 */
int	cache_open(const struct cache_config *cfg, struct cache **out);

/* Writes pending access times and closes. Blobs must all be put back and
 * fills ended first. Accepts NULL. */
void	cache_close(struct cache *c);

/* Changes the budget and evicts unpinned blobs down to it. */
int	cache_set_budget(struct cache *c, uint64_t budget);

/* Writes the batched access times to the database. Cheap when none are
 * pending; the daemon calls it every few seconds and at exit. */
int	cache_sync(struct cache *c);

/* ---- Catalog: repository path -> content ------------------------------- */

struct cache_cat {
	uint64_t	size;
	int64_t		mtime_ns;
	int64_t		ctime_ns;
	uint64_t	ino;
	uint64_t	dev;
	uint32_t	mode;		/* permission bits and type (st_mode) */
	uint8_t		sha256[CACHE_SHA256_LEN];
};

/*
 * Fills *e for the file st (its lstat or fstat) whose content has digest
 * sha256: size, times, inode, device and mode, the fields that tell
 * whether it changed.
 */
void	cache_db_cat_from_stat(struct cache_cat *e, const struct stat *st,
	    const uint8_t sha256[CACHE_SHA256_LEN]);

/* True when e still describes the file st (size, times, inode, device). */
bool	cache_db_cat_matches(const struct cache_cat *e, const struct stat *st);

/* Looks path up. Returns 0 and fills *out, or -ENOENT. */
int	cache_db_cat_get(struct cache *c, const char *path,
	    struct cache_cat *out);

/* Records (or replaces) path's entry. */
int	cache_db_cat_put(struct cache *c, const char *path,
	    const struct cache_cat *e);

/* Forgets path. Returns 0 or -ENOENT. */
int	cache_db_cat_del(struct cache *c, const char *path);

/* Calls cb for each catalog entry in path order; a non-zero return from cb
 * stops the walk and is returned. */
typedef int cache_cat_cb(void *arg, const char *path,
    const struct cache_cat *e);
int	cache_db_cat_each(struct cache *c, cache_cat_cb *cb, void *arg);

/* Number of catalog entries. */
uint64_t cache_db_cat_count(struct cache *c);

/* ---- Blobs --------------------------------------------------------------- */

enum cache_form {
	CACHE_FORM_RAW = 1,	/* the file is the content */
	CACHE_FORM_ZSTD = 2,	/* the file is zstd frames, one per chunk */
};

/*
 * Finds the blob with this digest, pins it (it will not be evicted or
 * removed while pinned), opens it read-only and marks it most recently
 * used. Counts a hit or a miss. Returns 0 and sets *out, or -ENOENT (also
 * when its file turned out to be missing or not its recorded size: the
 * blob is then removed), or the errno of opening the file.
 */
int	cache_blob_get(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN],
	    struct cache_blob **out);

/* True if a blob with this digest is stored; counts nothing, pins nothing. */
bool	cache_blob_has(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN]);

/* Like cache_blob_get() but counts nothing and leaves the LRU order as it
 * is: for administrative walks (cache_each() for the digests, then one
 * pin at a time, as `cache verify` does for more blobs than it can hold
 * open at once). */
int	cache_blob_pin(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN],
	    struct cache_blob **out);

/* Unpins and closes. A blob removed while pinned goes now. Accepts NULL. */
void	cache_blob_put(struct cache_blob *b);

/* The pinned blob's open, read-only file descriptor (owned by b). Its form
 * and file stay as they were when pinned, even if the blob is repacked. */
int	cache_blob_fd(const struct cache_blob *b);
enum cache_form cache_blob_form(const struct cache_blob *b);
/* Content size (decoded), and size on disk. */
uint64_t cache_blob_size(const struct cache_blob *b);
uint64_t cache_blob_stored(const struct cache_blob *b);
const uint8_t *cache_blob_sha256(const struct cache_blob *b);
/* True once repacking found the content not worth compressing. */
bool	cache_blob_incompressible(const struct cache_blob *b);

/*
 * Zstd form only: the number of frames, and frame i's place in the file.
 * Frame i decodes to CACHE_CHUNK bytes (the last to the rest), content
 * bytes [i * CACHE_CHUNK, ...). Returns 0, or -EINVAL for a raw blob or an
 * index out of range.
 */
uint32_t cache_blob_frames(const struct cache_blob *b);
int	cache_blob_frame(const struct cache_blob *b, uint32_t i,
	    uint64_t *offset, uint32_t *length);

/*
 * Any thread: reads the whole blob (decoding zstd frames, each checked
 * against its declared size) and compares the SHA-256 with its name.
 * Returns 0, -EBADMSG if it does not match or does not decode, or the
 * errno of a failed read.
 */
int	cache_pack_verify(struct cache_blob *b);

/* Removes a pinned blob from the index, the database and its directory at
 * once (cache_blob_has() is false afterwards); the pins keep reading their
 * open files, and its bytes count against the budget until the last pin
 * goes. b stays valid until put. */
int	cache_blob_remove(struct cache_blob *b);

/* ---- Filling: writing a new blob ---------------------------------------- */

/*
 * Starts a blob of exactly size bytes. Reserves the bytes in the budget,
 * evicting unpinned blobs from the least recently used end, and creates
 * the temporary file. Returns 0 and sets *out; -EFBIG if size is more than
 * the whole budget; -ENOSPC if pinned blobs and other fills leave no room;
 * or the errno of creating the file.
 */
int	cache_fill_begin(struct cache *c, uint64_t size,
	    struct cache_fill **out);

/*
 * Starts a fill of exactly size bytes that will not be kept: for when the
 * disk has no room for the blob but its bytes must still be streamed and
 * checked. They go to an anonymous memory file (memfd), not the blob
 * directory, and count against no budget; the caller bounds how much it
 * holds this way. Writing, reading through cache_fill_fd() and
 * cache_fill_finish() work as for any fill; cache_fill_commit() refuses
 * it (-EINVAL), so it ends with cache_fill_abort(). Returns 0 and sets
 * *out, -ENOMEM, or the errno of memfd_create().
 */
int	cache_fill_begin_unkept(struct cache *c, uint64_t size,
	    struct cache_fill **out);

/*
 * Starts an unkept fill that goes on where f stopped: a copy of the bytes
 * written to f so far (cache_fill_written(), whatever write failed after
 * them) and of their hash, for a fill that ran out of disk and whose
 * readers must still get the file. f is unchanged and still needs
 * cache_fill_abort(); not after cache_fill_finish() returned 0 (-EINVAL),
 * and not while another thread writes to f. Returns 0 and sets *out, or
 * an errno of memfd_create() or of copying.
 */
int	cache_fill_unkept_copy(const struct cache_fill *f,
	    struct cache_fill **out);

/* False for a fill from cache_fill_begin_unkept(). Any thread. */
bool	cache_fill_kept(const struct cache_fill *f);

/*
 * Any thread: appends len bytes, hashing them. Returns 0, -EFBIG past the
 * declared size, or the errno of the write (-ENOSPC on a full disk, and
 * for a file size limit). After a failure only cache_fill_abort() is
 * valid.
 */
int	cache_fill_write(struct cache_fill *f, const void *buf, size_t len);

/* Bytes written so far. Any thread. */
uint64_t cache_fill_written(const struct cache_fill *f);

/* A descriptor of the temporary file open for reading, owned by f, for
 * requests that stream bytes as they land (pread/sendfile up to
 * cache_fill_written()). Valid until commit or abort: a reader that must
 * outlive the fill dup()s it (the file stays readable after the rename or
 * unlink). */
int	cache_fill_fd(const struct cache_fill *f);

/*
 * Any thread: checks that exactly size bytes were written and, when expect
 * is not NULL, that their SHA-256 matches it; fdatasyncs the file. Returns
 * 0, -EBADMSG on a digest mismatch, -EPIPE if short, or a write errno.
 * The digest computed is copied to sha256 when not NULL, match or not.
 */
int	cache_fill_finish(struct cache_fill *f,
	    const uint8_t *expect, uint8_t sha256[CACHE_SHA256_LEN]);

/*
 * After cache_fill_finish() returned 0: renames the file into place, adds
 * the blob to the index and the database as most recently used, frees f,
 * and returns the blob pinned in *out (when out is not NULL; else it is
 * not pinned). If a blob with the same digest appeared meanwhile, the new
 * file is dropped and the existing blob is returned. Returns 0 or an errno
 * (f is freed and its file removed in every case).
 */
int	cache_fill_commit(struct cache_fill *f, struct cache_blob **out);

/* Removes the temporary file, releases the reservation, frees f. Accepts
 * NULL. Not while another thread is inside cache_fill_write(). */
void	cache_fill_abort(struct cache_fill *f);

/* ---- Repacking: compression at rest ------------------------------------- */

/*
 * Prepares to store the raw blob b (pinned by the caller, who may put it
 * once this returns) as zstd frames. Returns 1 and sets *out when it is
 * worth trying, 0 when not (already compressed, known incompressible,
 * or smaller than one frame's overhead), or a negative errno.
 */
int	cache_pack_begin(struct cache *c, struct cache_blob *b,
	    struct cache_pack **out);

/* Any thread: compresses into a temporary file, chunk by chunk. */
int	cache_pack_run(struct cache_pack *p);

/*
 * On the owner thread after cache_pack_run(): if it succeeded and saved at
 * least CACHE_MIN_SAVING_PCT percent, the blob becomes the zstd form (the
 * raw file is removed; pins taken before keep reading it), else it is
 * marked incompressible and stays raw. Frees p. Returns 1 if the blob was
 * compressed, 0 if it stayed raw, or a negative errno (p freed too).
 */
int	cache_pack_finish(struct cache_pack *p, int run_status);

/* Drops p without applying it. Accepts NULL. */
void	cache_pack_abort(struct cache_pack *p);

/* ---- Administration ------------------------------------------------------ */

struct cache_stats {
	uint64_t	entries;	/* blobs stored */
	uint64_t	bytes;		/* their size on disk */
	uint64_t	content_bytes;	/* their decoded size */
	uint64_t	budget;
	uint64_t	reserved;	/* bytes held by fills in progress */
	uint64_t	pinned;		/* blobs pinned now */
	uint64_t	hits;		/* cache_blob_get found it */
	uint64_t	misses;		/* cache_blob_get did not */
	uint64_t	evictions;
	uint64_t	fills;		/* blobs committed */
	uint64_t	compressed;	/* blobs in zstd form */
	uint64_t	catalog;	/* catalog entries */
};

void	cache_stats(struct cache *c, struct cache_stats *out);

struct cache_entry_info {
	uint8_t		sha256[CACHE_SHA256_LEN];
	uint64_t	size;		/* decoded */
	uint64_t	stored;		/* on disk */
	enum cache_form	form;
	int64_t		atime_ns;	/* last use, wall clock */
	uint32_t	pins;
};

/* Calls cb for each blob from most to least recently used; a non-zero
 * return stops the walk and is returned. cb must not change the cache. */
typedef int cache_each_cb(void *arg, const struct cache_entry_info *e);
int	cache_each(struct cache *c, cache_each_cb *cb, void *arg);

/* Pins up to max blobs, most recently used first, into out[], without
 * counting or reordering; the caller puts each one back. For `cache
 * verify`. Each pin holds a file descriptor open, so max must stay well
 * under the process's limit (see cache_blob_pin()). Returns the count, or
 * a negative errno (-ENOMEM, -EMFILE, ...) with nothing left pinned. */
int	cache_pin_all(struct cache *c, struct cache_blob **out, size_t max);

/* Removes every blob from the index, the database and the directory;
 * pinned ones keep their files' space until their last pin goes. Returns
 * the number of blobs that were not pinned. The catalog is kept (it holds
 * digests, not data). */
int	cache_clear(struct cache *c);

#endif /* PORTHOLE_CACHE_H */
