/*
 * cache.c: opening and reconciling the cache, the in-memory index (hash
 * table and LRU list), pins, eviction and the administration calls.
 *
 * The index is the truth while the cache is open; the database follows it
 * row by row (access times in batches), and cache_open() rebuilds the index
 * from the database, keeping only rows whose file is there with the right
 * size.
 */
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#include "cache_int.h"

#define HT_MIN_BITS	10
/* Default at-rest level: zstd's own default, fast to compress and decode. */
#define DEFAULT_LEVEL	3

/* ---- Small helpers ------------------------------------------------------ */

uint32_t
cache__nframes(uint64_t size)
{
	return (uint32_t)((size + CACHE_CHUNK - 1) / CACHE_CHUNK);
}

/* The blob's file name under the blob directory: "ab/<64 hex>[.zst]". */
void
cache__ent_name(const struct cache_ent *e, int form,
    char name[CACHE__NAME_MAX])
{
	ph_util_hex_encode(e->sha256, 1, name);
	name[2] = '/';
	ph_util_hex_encode(e->sha256, CACHE_SHA256_LEN, name + 3);
	if (form == CACHE_FORM_ZSTD)
		memcpy(name + 3 + 2 * CACHE_SHA256_LEN, ".zst", 5);
}

/* Parses n lowercase hex digits into n / 2 bytes; false on anything else. */
static bool
cache_unhex(const char *s, size_t n, uint8_t *out)
{
	size_t	i;
	int	hi, lo;

	for (i = 0; i < n; i += 2) {
		hi = (s[i] >= '0' && s[i] <= '9') ? s[i] - '0' :
		    (s[i] >= 'a' && s[i] <= 'f') ? s[i] - 'a' + 10 : -1;
		lo = (s[i + 1] >= '0' && s[i + 1] <= '9') ? s[i + 1] - '0' :
		    (s[i + 1] >= 'a' && s[i + 1] <= 'f') ? s[i + 1] - 'a' + 10 :
		    -1;
		if (hi < 0 || lo < 0)
			return false;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

/* Wall-clock access times, strictly increasing so that the order of uses
 * survives a restart exactly. */
int64_t
cache__atime(struct cache *c)
{
	struct timespec	ts;
	int64_t		t;

	clock_gettime(CLOCK_REALTIME, &ts);
	t = ph_util_timespec_ns(&ts);
	if (t <= c->last_atime)
		t = c->last_atime + 1;
	c->last_atime = t;
	return t;
}

/* Syncs a directory so that a rename or mkdir in it survives a crash. */
static int
cache_sync_dir(int dirfd, const char *path)
{
	int	fd, rc = 0;

	if ((fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) ==
	    -1)
		return -errno;
	if (fsync(fd) == -1)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Creates a new temporary file in DIR/tmp/ with a visible name (so that
 * cache_open() finds and removes it after a crash), open read-write.
 */
int
cache__tmp_create(struct cache *c, const char *prefix,
    char name[CACHE__TMPNAME_MAX])
{
	uint64_t	r;
	int		fd, tries;

	for (tries = 0; tries < 100; tries++) {
		r = (c->seed ^ (++c->tmp_serial * 0x9e3779b97f4a7c15ULL));
		r ^= (uint64_t)getpid() << 32;
		snprintf(name, CACHE__TMPNAME_MAX, "%s.%016llx", prefix,
		    (unsigned long long)r);
		fd = openat(c->tmpfd, name,
		    O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

/*
 * Moves a complete, synced temporary file to its blob name and syncs the
 * fan-out directory, creating it the first time it is needed.
 */
int
cache__place(struct cache *c, const char *tmpname, const char *name)
{
	char	sub[3] = { name[0], name[1], '\0' };
	int	rc;

	if (renameat(c->tmpfd, tmpname, c->dirfd, name) == -1) {
		if (errno != ENOENT)
			return -errno;
		if (mkdirat(c->dirfd, sub, 0700) == -1 && errno != EEXIST)
			return -errno;
		if ((rc = cache_sync_dir(c->dirfd, ".")) != 0)
			return rc;
		if (renameat(c->tmpfd, tmpname, c->dirfd, name) == -1)
			return -errno;
	}
	if ((rc = cache_sync_dir(c->dirfd, sub)) != 0) {
		unlinkat(c->dirfd, name, 0);
		return rc;
	}
	return 0;
}

/* ---- Hash table --------------------------------------------------------- */

/*
 * The digest's first 8 bytes, mixed with a per-cache random seed: the
 * digests are uniform, but whoever writes the repository chooses them, and
 * a seed they cannot see keeps them from piling files into one probe run.
 * The slot index is the top bits of the hash.
 */
static uint64_t
cache_ht_hash(const struct cache *c, const uint8_t *sha)
{
	uint64_t	k;

	memcpy(&k, sha, sizeof(k));
	k = (k ^ c->seed) * 0x9e3779b97f4a7c15ULL;
	k ^= k >> 31;
	return k * 0xbf58476d1ce4e5b9ULL;
}

static uint64_t
cache_ht_home(const struct cache *c, uint64_t hash)
{
	return hash >> (64 - c->bits);
}

/* Looks a digest up; probes compare stored hashes before digests. */
struct cache_ent *
cache__find(const struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN])
{
	uint64_t		mask = ((uint64_t)1 << c->bits) - 1;
	uint64_t		h = cache_ht_hash(c, sha256),
	    i = cache_ht_home(c, h);
	struct cache_ent	*e;

	while ((e = c->slots[i].e) != NULL) {
		if (c->slots[i].hash == h &&
		    memcmp(e->sha256, sha256, CACHE_SHA256_LEN) == 0)
			return e;
		i = (i + 1) & mask;
	}
	return NULL;
}

static void
cache_ht_put(struct cache *c, uint64_t h, struct cache_ent *e)
{
	uint64_t	mask = ((uint64_t)1 << c->bits) - 1;
	uint64_t	i = cache_ht_home(c, h);

	while (c->slots[i].e != NULL)
		i = (i + 1) & mask;
	c->slots[i].hash = h;
	c->slots[i].e = e;
}

/* Doubles the table once it is 70% full, keeping probe runs short. */
static int
cache_ht_reserve(struct cache *c)
{
	struct cache__slot	*old = c->slots;
	uint64_t		 oldn = (uint64_t)1 << c->bits, i;

	if ((c->count + 1) * 10 < oldn * 7)
		return 0;
	if ((c->slots = calloc(oldn * 2, sizeof(*c->slots))) == NULL) {
		c->slots = old;
		return -ENOMEM;
	}
	c->bits++;
	for (i = 0; i < oldn; i++)
		if (old[i].e != NULL)
			cache_ht_put(c, old[i].hash, old[i].e);
	free(old);
	return 0;
}

/* Backward-shift deletion: no tombstones, so lookups never slow down. */
static void
cache_ht_del(struct cache *c, const struct cache_ent *e)
{
	uint64_t	mask = ((uint64_t)1 << c->bits) - 1;
	uint64_t	i = cache_ht_home(c, cache_ht_hash(c, e->sha256)), j, k;

	while (c->slots[i].e != e) {
		if (c->slots[i].e == NULL)
			abort();	/* an indexed entry must be found */
		i = (i + 1) & mask;
	}
	c->slots[i].e = NULL;
	for (j = (i + 1) & mask; c->slots[j].e != NULL; j = (j + 1) & mask) {
		k = cache_ht_home(c, c->slots[j].hash);
		/* Move it back unless its home lies in (i, j]. */
		if (((j - k) & mask) >= ((j - i) & mask)) {
			c->slots[i] = c->slots[j];
			c->slots[j].e = NULL;
			i = j;
		}
	}
	c->count--;
}

/* ---- LRU list ----------------------------------------------------------- */

static void
cache_lru_unlink(struct cache *c, struct cache_ent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
cache_lru_push_head(struct cache *c, struct cache_ent *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	else
		c->tail = e;
	c->head = e;
}

/* ---- Index -------------------------------------------------------------- */

/* Adds e as the most recently used blob; the caller accounts its bytes. */
int
cache__index_add(struct cache *c, struct cache_ent *e)
{
	int	rc;

	if ((rc = cache_ht_reserve(c)) != 0)
		return rc;
	cache_ht_put(c, cache_ht_hash(c, e->sha256), e);
	c->count++;
	cache_lru_push_head(c, e);
	c->idx_bytes += e->stored;
	c->idx_content += e->size;
	if (e->form == CACHE_FORM_ZSTD)
		c->nzstd++;
	return 0;
}

static void
cache_ent_free(struct cache_ent *e)
{
	if (e == NULL)
		return;
	free(e->foff);
	free(e);
}

/*
 * Takes e out of the index, the database and the blob directory. The file
 * goes now, so a new blob with the same digest can take its name; a pinned
 * entry stays allocated, and its bytes counted, until its last pin goes.
 */
void
cache__drop(struct cache *c, struct cache_ent *e)
{
	char	name[CACHE__NAME_MAX];

	cache_ht_del(c, e);
	cache_lru_unlink(c, e);
	c->idx_bytes -= e->stored;
	c->idx_content -= e->size;
	if (e->form == CACHE_FORM_ZSTD)
		c->nzstd--;
	if (e->flags & ENT_DIRTY) {
		e->flags &= (uint8_t)~ENT_DIRTY;
		c->ndirty--;
	}
	/* A row left behind by a failed delete has no file and is dropped
	 * at the next open; nothing can be served from it meanwhile. */
	(void)cache__db_blob_del(c, e->sha256);
	cache__ent_name(e, e->form, name);
	unlinkat(c->dirfd, name, 0);
	if (e->pins > 0) {
		e->flags |= ENT_ZOMBIE;
		return;
	}
	c->disk -= e->stored;
	cache_ent_free(e);
}

/*
 * Evicts unpinned blobs from the least recently used end until need more
 * bytes fit in the budget. Pinned blobs stay in the list where they are:
 * one is pinned because it is being used, so it was touched recently and
 * sits near the head, and walking past the few that do not costs little.
 */
int
cache__make_room(struct cache *c, uint64_t need)
{
	struct cache_ent	*e = c->tail, *victim;

	if (need > c->budget)
		return -ENOSPC;
	while (c->disk + c->reserved > c->budget - need) {
		while (e != NULL && e->pins > 0)
			e = e->prev;
		if (e == NULL)
			return -ENOSPC;
		victim = e;
		e = e->prev;
		c->evictions++;
		cache__drop(c, victim);
	}
	return 0;
}

/* Marks e most recently used; the database learns of it at cache_sync(). */
void
cache__touch(struct cache *c, struct cache_ent *e)
{
	e->atime_ns = cache__atime(c);
	if (!(e->flags & ENT_DIRTY)) {
		e->flags |= ENT_DIRTY;
		c->ndirty++;
	}
	if (c->head != e) {
		cache_lru_unlink(c, e);
		cache_lru_push_head(c, e);
	}
}

/*
 * Pins e into a new handle. fd is a descriptor of the blob's file the
 * handle takes over on success (the caller keeps it on failure), or -1 to
 * open it; a file that is gone or not its recorded size is dropped from
 * the cache and -ENOENT returned.
 */
int
cache__pin(struct cache *c, struct cache_ent *e, int fd,
    struct cache_blob **out)
{
	struct cache_blob	*b;
	struct stat		 st;
	char			 name[CACHE__NAME_MAX];
	int			 rc;

	*out = NULL;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -ENOMEM;
	if (fd < 0) {
		cache__ent_name(e, e->form, name);
		fd = openat(c->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd == -1) {
			rc = -errno;
			if (rc == -ENOENT || rc == -ELOOP)
				goto gone;
			goto fail;
		}
		if (fstat(fd, &st) == -1) {
			rc = -errno;
			goto fail;
		}
		if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->stored)
			goto gone;
	}
	b->c = c;
	b->e = e;
	b->fd = fd;
	b->form = e->form;
	b->stored = e->stored;
	if (e->form == CACHE_FORM_ZSTD) {
		b->foff = e->foff;
		b->nframes = e->nframes;
	}
	if (e->pins++ == 0)
		c->npinned++;
	*out = b;
	return 0;

gone:
	rc = -ENOENT;
	cache__drop(c, e);
fail:
	/* Only reached for a file opened here. */
	if (fd >= 0)
		close(fd);
	free(b);
	return rc;
}

/* ---- Opening ------------------------------------------------------------ */

/* Reads directory fd, which it takes over: closed on failure too. */
static int
cache_opendir_fd(int fd, DIR **out)
{
	int	err;

	if ((*out = fdopendir(fd)) != NULL)
		return 0;
	err = -errno;
	close(fd);
	return err;
}

/* Removes whatever a crash left in DIR/tmp/: none of it is a blob yet. */
static int
cache_clean_tmp(struct cache *c)
{
	struct dirent	*d;
	DIR		*dir;
	int		 fd, rc;

	if ((fd = dup(c->tmpfd)) == -1)
		return -errno;
	if ((rc = cache_opendir_fd(fd, &dir)) != 0)
		return rc;
	while ((d = readdir(dir)) != NULL) {
		if (d->d_type == DT_DIR || strcmp(d->d_name, ".") == 0 ||
		    strcmp(d->d_name, "..") == 0)
			continue;
		unlinkat(c->tmpfd, d->d_name, 0);
	}
	closedir(dir);
	return 0;
}

/*
 * Checks the names in one fan-out directory against the index: a file the
 * index knows in the same form marks its entry seen; a blob-named file the
 * index does not know (or in the other form, or not a regular file) is an
 * orphan and goes. Names that are not blob names are left alone: they are
 * not ours. No stat per file: on a cold start it would cost more than all
 * the rest, and cache__pin() checks type and size before any use.
 */
static int
cache_reconcile_dir(struct cache *c, const char *sub, uint8_t first)
{
	struct cache_ent	*e;
	struct dirent		*d;
	DIR			*dir;
	size_t			 len;
	uint8_t			 sha[CACHE_SHA256_LEN];
	int			 fd, form, rc;

	fd = openat(c->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);
	if (fd == -1)
		return errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
	if ((rc = cache_opendir_fd(fd, &dir)) != 0)
		return rc;
	while ((d = readdir(dir)) != NULL) {
		len = strlen(d->d_name);
		if (len == 2 * CACHE_SHA256_LEN)
			form = CACHE_FORM_RAW;
		else if (len == 2 * CACHE_SHA256_LEN + 4 &&
		    strcmp(d->d_name + 2 * CACHE_SHA256_LEN, ".zst") == 0)
			form = CACHE_FORM_ZSTD;
		else
			continue;
		if (!cache_unhex(d->d_name, 2 * CACHE_SHA256_LEN, sha) ||
		    d->d_type == DT_DIR)
			continue;
		e = sha[0] == first ? cache__find(c, sha) : NULL;
		if (e == NULL || e->form != form || (e->flags & ENT_SEEN) ||
		    (d->d_type != DT_REG && d->d_type != DT_UNKNOWN)) {
			unlinkat(fd, d->d_name, 0);
			continue;
		}
		e->flags |= ENT_SEEN;
	}
	closedir(dir);
	return 0;
}

/* Walks the fan-out directories once, then drops every indexed blob whose
 * file was not found. */
static int
cache_reconcile(struct cache *c)
{
	struct cache_ent	*e, *next;
	struct dirent		*d;
	DIR			*dir;
	uint8_t			 first;
	int			 fd, rc = 0;

	if ((fd = dup(c->dirfd)) == -1)
		return -errno;
	if ((rc = cache_opendir_fd(fd, &dir)) != 0)
		return rc;
	while ((d = readdir(dir)) != NULL) {
		if (strlen(d->d_name) != 2 || !cache_unhex(d->d_name, 2,
		    &first))
			continue;
		if ((rc = cache_reconcile_dir(c, d->d_name, first)) != 0)
			break;
	}
	closedir(dir);
	if (rc != 0)
		return rc;
	for (e = c->head; e != NULL; e = next) {
		next = e->next;
		if (e->flags & ENT_SEEN)
			e->flags &= (uint8_t)~ENT_SEEN;
		else
			cache__drop(c, e);
	}
	return 0;
}

/*
 * Locks the blob directory, clears tmp/, loads the index from the database
 * and checks it against the directories, all in one transaction so that a
 * failure part way leaves the database as it was.
 */
int
cache_open(const struct cache_config *cfg, struct cache **out)
{
	struct cache	*c = NULL;
	int		 rc;

	*out = NULL;
	if (cfg == NULL || cfg->db_path == NULL || cfg->blob_dir == NULL ||
	    cfg->db_path[0] == '\0' || cfg->blob_dir[0] == '\0' ||
	    cfg->zstd_level < ZSTD_minCLevel() ||
	    cfg->zstd_level > ZSTD_maxCLevel())
		return -EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->dirfd = c->tmpfd = -1;
	c->budget = cfg->budget;
	c->level = cfg->zstd_level != 0 ? cfg->zstd_level : DEFAULT_LEVEL;
	if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(c->seed))
		c->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^
		    (uint64_t)(uintptr_t)c;
	c->bits = HT_MIN_BITS;
	if ((c->slots = calloc((size_t)1 << c->bits, sizeof(*c->slots))) ==
	    NULL) {
		rc = -ENOMEM;
		goto fail;
	}

	if (mkdir(cfg->blob_dir, 0700) == -1 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	if ((c->dirfd = open(cfg->blob_dir, O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1) {
		rc = -errno;
		goto fail;
	}
	/* Two caches on one directory would delete each other's files. */
	if (flock(c->dirfd, LOCK_EX | LOCK_NB) == -1) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	if (mkdirat(c->dirfd, "tmp", 0700) == -1 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	if ((c->tmpfd = openat(c->dirfd, "tmp", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC | O_NOFOLLOW)) == -1) {
		rc = -errno;
		goto fail;
	}
	if ((rc = cache_clean_tmp(c)) != 0)
		goto fail;

	if ((rc = cache__db_open(c, cfg->db_path)) != 0)
		goto fail;
	if ((rc = cache__db_exec(c, ST_BEGIN)) != 0)
		goto fail;
	if ((rc = cache__db_load(c)) == 0)
		rc = cache_reconcile(c);
	if (rc != 0) {
		(void)cache__db_exec(c, ST_ROLLBACK);
		goto fail;
	}
	if ((rc = cache__db_exec(c, ST_COMMIT)) != 0) {
		(void)cache__db_exec(c, ST_ROLLBACK);
		goto fail;
	}
	/* Nothing is pinned yet, so this cannot fail for want of room. */
	(void)cache__make_room(c, 0);
	*out = c;
	return 0;

fail:
	cache_close(c);
	return rc;
}

/* Writes pending access times and frees everything; also cleans up after
 * a cache_open() that failed part way. */
void
cache_close(struct cache *c)
{
	struct cache_ent	*e, *next;

	if (c == NULL)
		return;
	if (c->db != NULL)
		(void)cache_sync(c);
	cache__db_close(c);
	for (e = c->head; e != NULL; e = next) {
		next = e->next;
		cache_ent_free(e);
	}
	free(c->slots);
	if (c->tmpfd >= 0)
		close(c->tmpfd);
	if (c->dirfd >= 0)
		close(c->dirfd);
	free(c);
}

int
cache_set_budget(struct cache *c, uint64_t budget)
{
	c->budget = budget;
	/* Pinned blobs may keep it over for now; their last put evicts. */
	(void)cache__make_room(c, 0);
	return 0;
}

int
cache_sync(struct cache *c)
{
	if (c->ndirty == 0)
		return 0;
	return cache__db_atimes(c);
}

/* ---- Blobs -------------------------------------------------------------- */

/* A file found missing or the wrong size when pinned counts as a miss. */
int
cache_blob_get(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN],
    struct cache_blob **out)
{
	struct cache_ent	*e;
	int			 rc;

	*out = NULL;
	if ((e = cache__find(c, sha256)) == NULL) {
		c->misses++;
		return -ENOENT;
	}
	if ((rc = cache__pin(c, e, -1, out)) != 0) {
		if (rc == -ENOENT)
			c->misses++;
		return rc;
	}
	cache__touch(c, e);
	c->hits++;
	return 0;
}

bool
cache_blob_has(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN])
{
	return cache__find(c, sha256) != NULL;
}

int
cache_blob_pin(struct cache *c, const uint8_t sha256[CACHE_SHA256_LEN],
    struct cache_blob **out)
{
	struct cache_ent	*e;

	*out = NULL;
	if ((e = cache__find(c, sha256)) == NULL)
		return -ENOENT;
	return cache__pin(c, e, -1, out);
}

/* The last put frees a removed blob, or lets eviction at it again. */
void
cache_blob_put(struct cache_blob *b)
{
	struct cache		*c;
	struct cache_ent	*e;

	if (b == NULL)
		return;
	c = b->c;
	e = b->e;
	close(b->fd);
	free(b);
	if (--e->pins > 0)
		return;
	c->npinned--;
	if (e->flags & ENT_ZOMBIE) {
		c->disk -= e->stored;
		cache_ent_free(e);
		return;
	}
	/* The budget may have shrunk while this blob held it up. */
	(void)cache__make_room(c, 0);
}

int
cache_blob_fd(const struct cache_blob *b)
{
	return b->fd;
}

enum cache_form
cache_blob_form(const struct cache_blob *b)
{
	return (enum cache_form)b->form;
}

uint64_t
cache_blob_size(const struct cache_blob *b)
{
	return b->e->size;
}

uint64_t
cache_blob_stored(const struct cache_blob *b)
{
	return b->stored;
}

const uint8_t *
cache_blob_sha256(const struct cache_blob *b)
{
	return b->e->sha256;
}

bool
cache_blob_incompressible(const struct cache_blob *b)
{
	return (b->e->flags & ENT_INCOMPRESSIBLE) != 0;
}

uint32_t
cache_blob_frames(const struct cache_blob *b)
{
	return b->form == CACHE_FORM_ZSTD ? b->nframes : 0;
}

int
cache_blob_frame(const struct cache_blob *b, uint32_t i, uint64_t *offset,
    uint32_t *length)
{
	*offset = 0;
	*length = 0;
	if (b->form != CACHE_FORM_ZSTD || i >= b->nframes)
		return -EINVAL;
	*offset = b->foff[i];
	*length = (uint32_t)(b->foff[i + 1] - b->foff[i]);
	return 0;
}

int
cache_blob_remove(struct cache_blob *b)
{
	if (!(b->e->flags & ENT_ZOMBIE))
		cache__drop(b->c, b->e);
	return 0;
}

/* ---- Administration ----------------------------------------------------- */

void
cache_stats(struct cache *c, struct cache_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->entries = c->count;
	out->bytes = c->idx_bytes;
	out->content_bytes = c->idx_content;
	out->budget = c->budget;
	out->reserved = c->reserved;
	out->pinned = c->npinned;
	out->hits = c->hits;
	out->misses = c->misses;
	out->evictions = c->evictions;
	out->fills = c->fills;
	out->compressed = c->nzstd;
	out->catalog = cache_db_cat_count(c);
}

/* Walks the LRU list from its head, pinned blobs included. */
int
cache_each(struct cache *c, cache_each_cb *cb, void *arg)
{
	struct cache_entry_info	 info;
	struct cache_ent	*e;
	int			 rc;

	for (e = c->head; e != NULL; e = e->next) {
		memset(&info, 0, sizeof(info));
		memcpy(info.sha256, e->sha256, CACHE_SHA256_LEN);
		info.size = e->size;
		info.stored = e->stored;
		info.form = (enum cache_form)e->form;
		info.atime_ns = e->atime_ns;
		info.pins = e->pins;
		if ((rc = cb(arg, &info)) != 0)
			return rc;
	}
	return 0;
}

/* Pins without touching: verifying every blob is not a use of it, and
 * must not reorder the LRU list. */
int
cache_pin_all(struct cache *c, struct cache_blob **out, size_t max)
{
	struct cache_ent	*e, *next;
	size_t			 n = 0, i;
	int			 rc;

	for (e = c->head; e != NULL && n < max; e = next) {
		next = e->next;
		rc = cache__pin(c, e, -1, &out[n]);
		if (rc == -ENOENT)
			continue;	/* its file was gone: dropped */
		if (rc != 0) {
			for (i = 0; i < n; i++) {
				cache_blob_put(out[i]);
				out[i] = NULL;
			}
			return rc;
		}
		n++;
	}
	return (int)(n > INT32_MAX ? INT32_MAX : n);
}

/* Drops every blob; cache__drop() keeps the pinned ones allocated. */
int
cache_clear(struct cache *c)
{
	struct cache_ent	*e, *next;
	int			 n = 0, rc;

	/* One transaction: deleting row by row in autocommit is slow. */
	rc = cache__db_exec(c, ST_BEGIN);
	for (e = c->head; e != NULL; e = next) {
		next = e->next;
		if (e->pins == 0 && n < INT32_MAX)
			n++;
		cache__drop(c, e);
	}
	if (rc == 0 && cache__db_exec(c, ST_COMMIT) != 0)
		(void)cache__db_exec(c, ST_ROLLBACK);
	return n;
}
