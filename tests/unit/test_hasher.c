/*
 * test_hasher.c: the client's SHA-256 on a second thread (guest-agent/
 * hasher.c) against a one-shot digest of the same bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hasher.h"

#define DATA_LEN	(24 * 1024 * 1024)

struct hasher_state {
	struct hasher	*h;
	uint8_t		*data;		/* DATA_LEN pseudo-random bytes */
};

static int
hasher_setup(void **state)
{
	struct hasher_state *s = calloc(1, sizeof(*s));
	uint32_t x = 0x12345678;
	size_t i;

	if (s == NULL || (s->data = malloc(DATA_LEN)) == NULL)
		return -1;
	for (i = 0; i < DATA_LEN; i++) {
		/* xorshift32: the same bytes on every run. */
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		s->data[i] = (uint8_t)x;
	}
	if (hasher_new(&s->h) != 0)
		return -1;
	*state = s;
	return 0;
}

static int
hasher_teardown(void **state)
{
	struct hasher_state *s = *state;

	hasher_free(s->h);
	free(s->data);
	free(s);
	return 0;
}

/* The SHA-256 of len bytes in one call. */
static void
one_shot(const uint8_t *p, size_t len, uint8_t out[PH_SHA256_LEN])
{
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(p, len, out, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(n, PH_SHA256_LEN);
}

/* Feeds data through the slots in chunks of the given sizes, in turn. */
static size_t
feed(struct hasher *h, const uint8_t *data, size_t total,
    const size_t *sizes, size_t nsizes)
{
	size_t off = 0, i = 0, n;
	uint8_t *slot;

	while (off < total) {
		n = sizes[i++ % nsizes];
		if (n > total - off)
			n = total - off;
		slot = hasher_slot(h);
		assert_non_null(slot);
		memcpy(slot, data + off, n);
		assert_int_equal(hasher_submit(h, n), 0);
		off += n;
	}
	return off;
}

/* Chunk sizes around the inline threshold and the slot size, mixed. */
static void
test_mixed_chunks(void **state)
{
	static const size_t sizes[] = {
		1, 4096, 64 * 1024, 64 * 1024 + 1, PH_DATA_CHUNK, 7,
		PH_DATA_CHUNK - 1, 300000, 65535, PH_DATA_CHUNK,
	};
	struct hasher_state *s = *state;
	uint8_t want[PH_SHA256_LEN], got[PH_SHA256_LEN];

	assert_int_equal(hasher_begin(s->h), 0);
	feed(s->h, s->data, DATA_LEN, sizes, sizeof(sizes) / sizeof(sizes[0]));
	assert_int_equal(hasher_final(s->h, got), 0);
	one_shot(s->data, DATA_LEN, want);
	assert_memory_equal(got, want, PH_SHA256_LEN);
}

/* Only full slots: the queue fills up and the owner waits for room. */
static void
test_backpressure(void **state)
{
	static const size_t sizes[] = { PH_DATA_CHUNK };
	struct hasher_state *s = *state;
	uint8_t want[PH_SHA256_LEN], got[PH_SHA256_LEN];

	assert_int_equal(hasher_begin(s->h), 0);
	feed(s->h, s->data, DATA_LEN, sizes, 1);
	assert_int_equal(hasher_final(s->h, got), 0);
	one_shot(s->data, DATA_LEN, want);
	assert_memory_equal(got, want, PH_SHA256_LEN);
}

/* Small chunks only, hashed on the caller's thread. */
static void
test_small_chunks(void **state)
{
	static const size_t sizes[] = { 4096, 100, 65536 };
	struct hasher_state *s = *state;
	uint8_t want[PH_SHA256_LEN], got[PH_SHA256_LEN];

	assert_int_equal(hasher_begin(s->h), 0);
	feed(s->h, s->data, 3 * 1024 * 1024, sizes, 3);
	assert_int_equal(hasher_final(s->h, got), 0);
	one_shot(s->data, 3 * 1024 * 1024, want);
	assert_memory_equal(got, want, PH_SHA256_LEN);
}

/* No bytes at all: the digest of the empty string. */
static void
test_empty(void **state)
{
	struct hasher_state *s = *state;
	uint8_t want[PH_SHA256_LEN], got[PH_SHA256_LEN];

	assert_int_equal(hasher_begin(s->h), 0);
	assert_int_equal(hasher_final(s->h, got), 0);
	one_shot(s->data, 0, want);
	assert_memory_equal(got, want, PH_SHA256_LEN);
}

/*
 * A file abandoned with chunks still queued: the next begin waits for
 * them and starts clean, so nothing of the old file leaks into the new.
 */
static void
test_abandoned(void **state)
{
	static const size_t sizes[] = { PH_DATA_CHUNK };
	struct hasher_state *s = *state;
	uint8_t want[PH_SHA256_LEN], got[PH_SHA256_LEN];
	size_t i;

	for (i = 0; i < 3; i++) {
		assert_int_equal(hasher_begin(s->h), 0);
		feed(s->h, s->data + i, (HASHER_SLOTS + 1) * PH_DATA_CHUNK,
		    sizes, 1);
	}
	assert_int_equal(hasher_begin(s->h), 0);
	feed(s->h, s->data + 5, 5 * PH_DATA_CHUNK + 3, sizes, 1);
	assert_int_equal(hasher_final(s->h, got), 0);
	one_shot(s->data + 5, 5 * PH_DATA_CHUNK + 3, want);
	assert_memory_equal(got, want, PH_SHA256_LEN);
}

/* A slot the owner took but did not submit is lent again, not hashed. */
static void
test_slot_not_submitted(void **state)
{
	static const size_t sizes[] = { PH_DATA_CHUNK };
	struct hasher_state *s = *state;
	uint8_t want[PH_SHA256_LEN], got[PH_SHA256_LEN];
	uint8_t *a, *b;

	assert_int_equal(hasher_begin(s->h), 0);
	a = hasher_slot(s->h);
	memset(a, 0xee, PH_DATA_CHUNK);
	b = hasher_slot(s->h);
	assert_ptr_equal(a, b);
	feed(s->h, s->data, 2 * PH_DATA_CHUNK, sizes, 1);
	assert_int_equal(hasher_final(s->h, got), 0);
	one_shot(s->data, 2 * PH_DATA_CHUNK, want);
	assert_memory_equal(got, want, PH_SHA256_LEN);
}

/* Freeing with work queued stops the thread without hashing it all. */
static void
test_free_while_queued(void **state)
{
	static const size_t sizes[] = { PH_DATA_CHUNK };
	struct hasher *h = NULL;

	assert_int_equal(hasher_new(&h), 0);
	assert_int_equal(hasher_begin(h), 0);
	feed(h, ((struct hasher_state *)*state)->data,
	    HASHER_SLOTS * PH_DATA_CHUNK, sizes, 1);
	hasher_free(h);
	hasher_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mixed_chunks),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_small_chunks),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_abandoned),
		cmocka_unit_test(test_slot_not_submitted),
		cmocka_unit_test(test_free_while_queued),
	};

	return cmocka_run_group_tests(tests, hasher_setup, hasher_teardown);
}
