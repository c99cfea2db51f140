/*
 * test_cache_common.h: helpers shared by the cache's cmocka tests: a temp
 * dir per test, opening a cache in it, storing a blob in one call, and
 * deterministic content (compressible text and incompressible noise).
 */
#ifndef TEST_CACHE_COMMON_H
#define TEST_CACHE_COMMON_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "proto.h"

struct tdir {
	char	root[256];
	char	db[512];
	char	blobs[512];
};

/* cmocka setup/teardown: *state becomes a struct tdir in a fresh dir. */
int	tdir_setup(void **state);
int	tdir_teardown(void **state);

/* Opens the cache of t with this budget and the default level; asserts. */
struct cache *tcache_open(const struct tdir *t, uint64_t budget);

/* SHA-256 of buf. */
void	tsha(const void *buf, size_t len, uint8_t out[CACHE_SHA256_LEN]);

/* Stores len bytes as a blob through a whole fill and returns
 * cache_fill_commit()'s result; *out as there (may be NULL). */
int	tput(struct cache *c, const void *buf, size_t len,
	    struct cache_blob **out);

/* Deterministic noise (incompressible) and text (compresses well). */
void	tnoise(void *buf, size_t len, uint64_t seed);
void	ttext(void *buf, size_t len, uint64_t seed);

/* The path of a blob's file in t, in the given form. */
void	tblob_path(const struct tdir *t, const uint8_t *sha, int form,
	    char *out, size_t cap);

/* Number of regular files under dir (recursively), and their total size. */
size_t	tcount_files(const char *dir, uint64_t *bytes);

/* Reads a whole file into a malloc'd buffer; asserts. */
uint8_t	*tread_fd(int fd, uint64_t len);

/* Runs one SQL statement on the cache's database (closed or open). */
void	tsql(const struct tdir *t, const char *sql);

/* Runs a query returning one integer. */
int64_t	tsql_int(const struct tdir *t, const char *sql);

/* Flips one byte of a file at off. */
void	tflip(const char *path, uint64_t off);

#endif /* TEST_CACHE_COMMON_H */
