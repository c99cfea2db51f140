/*
 * test_virtq.c: the guest memory table and split virtqueues, fed the
 * descriptor tables a hostile guest could write: indices out of range,
 * buffers outside guest memory or running past its end, chain loops,
 * indirect tables abused every way the specification forbids. Each must
 * break the queue with a reason, never read outside the mapping (the
 * sanitizers watch), and never hang.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vhost.h"
#include "vq_fixture.h"

#define NUM	16
#define F_EVENT	(1ull << VHOST_F_EVENT_IDX)
#define F_IND	(1ull << VHOST_F_INDIRECT_DESC)

struct ctx {
	struct fx	fx;
	struct fq	q;
};

static int
setup_plain(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	fx_init(&c->fx);
	if (fq_init(&c->q, &c->fx, NUM, 0, 0) < 0)
		return -1;
	*state = c;
	return 0;
}

static int
setup_indirect(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	fx_init(&c->fx);
	if (fq_init(&c->q, &c->fx, NUM, 0, F_IND | F_EVENT) < 0)
		return -1;
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	struct ctx *c = *state;

	fq_free(&c->q);
	fx_free(&c->fx);
	free(c);
	return 0;
}

/* Pops and expects the queue to break with a reason. */
static void
expect_broken(struct fq *q)
{
	struct vhost_chain ch;

	assert_int_equal(vhost_vq_pop(q->vq, &ch), -EIO);
	assert_true(vhost_vq_broken(q->vq));
	assert_non_null(vhost_vq_error(q->vq));
	/* The front-end hears of it once, and the queue stays broken. */
	assert_int_equal(fx_eventfd_take(q->err_fd), 1);
	assert_int_equal(vhost_vq_pop(q->vq, &ch), -EIO);
	assert_int_equal(vhost_vq_push(q->vq, 0, 0), -EIO);
	assert_int_equal(fx_eventfd_take(q->err_fd), 0);
}

/* ---- The memory table ------------------------------------------------- */

static void
test_mem_translate(void **state)
{
	struct vhost_mem *m;
	uint8_t *a = malloc(8192), *b = malloc(4096);
	struct iovec iov[4];
	size_t n = 0;

	(void)state;
	assert_int_equal(vhost_mem_new(&m), 0);
	assert_int_equal(vhost_mem_add(m, 0x1000, 8192, 0x10000, a), 0);
	/* Adjacent in guest physical space, elsewhere in ours. */
	assert_int_equal(vhost_mem_add(m, 0x3000, 4096, 0x90000, b), 0);
	assert_int_equal(vhost_mem_count(m), 2);
	assert_int_equal(vhost_mem_gpa(m, 0x2f00, 0x200, iov, &n, 4), 0);
	assert_int_equal(n, 2);
	assert_ptr_equal(iov[0].iov_base, a + 0x1f00);
	assert_int_equal(iov[0].iov_len, 0x100);
	assert_ptr_equal(iov[1].iov_base, b);
	assert_int_equal(iov[1].iov_len, 0x100);
	/* One byte past the end of the last region. */
	n = 0;
	assert_int_equal(vhost_mem_gpa(m, 0x3f00, 0x101, iov, &n, 4), -EFAULT);
	assert_int_equal(n, 0);
	/* Below the first region, and wrapping around 2^64. */
	assert_int_equal(vhost_mem_gpa(m, 0xfff, 1, iov, &n, 4), -EFAULT);
	assert_int_equal(vhost_mem_gpa(m, 0x1000, UINT64_MAX, iov, &n, 4),
	    -EFAULT);
	/* Too many pieces for the caller's array. */
	assert_int_equal(vhost_mem_gpa(m, 0x2f00, 0x200, iov, &n, 1), -E2BIG);
	assert_int_equal(n, 0);
	/* Pointers into one region only. */
	assert_ptr_equal(vhost_mem_gpa_ptr(m, 0x1000, 8192), a);
	assert_null(vhost_mem_gpa_ptr(m, 0x2f00, 0x200));
	assert_null(vhost_mem_gpa_ptr(m, 0x1000, 0));
	assert_ptr_equal(vhost_mem_uva_ptr(m, 0x90010, 16), b + 0x10);
	assert_null(vhost_mem_uva_ptr(m, 0x90000, 4097));
	assert_null(vhost_mem_uva_ptr(m, 0x8ffff, 2));
	assert_null(vhost_mem_uva_ptr(m, UINT64_MAX, 1));
	vhost_mem_free(m);
	free(a);
	free(b);
}

static void
test_mem_refuses_bad_regions(void **state)
{
	struct vhost_mem *m;
	uint8_t *a = malloc(4096);

	(void)state;
	assert_int_equal(vhost_mem_new(&m), 0);
	assert_int_equal(vhost_mem_add(m, 0x1000, 0, 0x1000, a), -EINVAL);
	assert_int_equal(vhost_mem_add(m, UINT64_MAX - 10, 4096, 0x1000, a),
	    -EINVAL);
	assert_int_equal(vhost_mem_add(m, 0x1000, 4096, UINT64_MAX - 10, a),
	    -EINVAL);
	assert_int_equal(vhost_mem_add(m, 0x10000, 4096, 0x10000, a), 0);
	/* Overlaps in either address space. */
	assert_int_equal(vhost_mem_add(m, 0x10800, 4096, 0x90000, a), -EINVAL);
	assert_int_equal(vhost_mem_add(m, 0x90000, 4096, 0x10fff, a), -EINVAL);
	for (uint64_t i = 1; i < VHOST_MEM_MAX_REGIONS; i++)
		assert_int_equal(vhost_mem_add(m, 0x100000 * (i + 1), 4096,
		    0x100000 * (i + 1), a), 0);
	assert_int_equal(vhost_mem_add(m, 0x10000000, 4096, 0x10000000, a),
	    -E2BIG);
	vhost_mem_free(m);
	vhost_mem_free(NULL);
	free(a);
}

/* ---- Setting a queue up -------------------------------------------------- */

static void
test_vq_config_checked(void **state)
{
	struct vhost_vq_config cfg;
	struct vhost_vq *vq;
	struct fx fx;

	(void)state;
	fx_init(&fx);
	memset(&cfg, 0, sizeof(cfg));
	cfg.desc = FX_UVA;
	cfg.avail = FX_UVA + 0x1000;
	cfg.used = FX_UVA + 0x2000;
	cfg.call_fd = cfg.kick_fd = cfg.err_fd = -1;
	cfg.num = 24;		/* not a power of 2 */
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), -EINVAL);
	assert_null(vq);
	cfg.num = 0;
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), -EINVAL);
	cfg.num = 65536;
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), -EINVAL);
	cfg.num = 16;
	cfg.desc = FX_UVA + 8;	/* misaligned table */
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), -EINVAL);
	cfg.desc = FX_UVA + FX_MEM_SIZE - 128;	/* runs past the region */
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), -EFAULT);
	cfg.desc = FX_UVA;
	cfg.used = FX_UVA - 0x1000;	/* not in the table at all */
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), -EFAULT);
	cfg.used = FX_UVA + 0x2000;
	assert_int_equal(vhost_vq_new(fx.m, &cfg, &vq), 0);
	assert_int_equal(vhost_vq_num(vq), 16);
	vhost_vq_free(vq);
	vhost_vq_free(NULL);
	fx_free(&fx);
}

/* ---- Good chains ------------------------------------------------------------ */

static void
test_pop_chain(void **state)
{
	struct ctx *c = *state;
	struct vhost_chain ch;
	uint32_t id, len;

	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 0);
	fq_desc(&c->q, 3, fx_gpa(FX_DATA), 44, FX_F_NEXT, 7);
	fq_desc(&c->q, 7, fx_gpa(FX_DATA + 100), 4096, FX_F_WRITE, 0);
	fq_avail(&c->q, 3);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(ch.head, 3);
	assert_int_equal(ch.nout, 1);
	assert_int_equal(ch.nin, 1);
	assert_int_equal(ch.out_len, 44);
	assert_int_equal(ch.in_len, 4096);
	assert_ptr_equal(ch.iov[0].iov_base, c->fx.mem + FX_DATA);
	assert_ptr_equal(ch.iov[1].iov_base, c->fx.mem + FX_DATA + 100);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 0);
	assert_int_equal(vhost_vq_last_avail(c->q.vq), 1);
	/* Used entry, then the index; the driver wants an interrupt. */
	assert_int_equal(vhost_vq_push(c->q.vq, 3, 1234), 0);
	assert_int_equal(fq_used(&c->q, &id, &len), 1);
	assert_int_equal(id, 3);
	assert_int_equal(len, 1234);
	assert_int_equal(vhost_vq_notify(c->q.vq), 1);
	assert_int_equal(fx_eventfd_take(c->q.call_fd), 1);
	/* Nothing new: no second interrupt. */
	assert_int_equal(vhost_vq_notify(c->q.vq), 0);
	assert_false(vhost_vq_broken(c->q.vq));
}

static void
test_unpop(void **state)
{
	struct ctx *c = *state;
	struct vhost_chain ch;

	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 64, FX_F_WRITE, 0);
	fq_desc(&c->q, 1, fx_gpa(FX_DATA + 64), 64, FX_F_WRITE, 0);
	fq_avail(&c->q, 0);
	fq_avail(&c->q, 1);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(ch.head, 0);
	vhost_vq_unpop(c->q.vq);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(ch.head, 0);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(ch.head, 1);
}

static void
test_no_interrupt_flag(void **state)
{
	struct ctx *c = *state;
	struct vhost_chain ch;

	fx_put16(&c->fx, c->q.avail, 1);	/* VRING_AVAIL_F_NO_INTERRUPT */
	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 64, FX_F_WRITE, 0);
	fq_avail(&c->q, 0);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(vhost_vq_push(c->q.vq, 0, 0), 0);
	assert_int_equal(vhost_vq_notify(c->q.vq), 0);
	assert_int_equal(fx_eventfd_take(c->q.call_fd), 0);
}

static void
test_event_idx(void **state)
{
	struct ctx *c = *state;
	struct vhost_chain ch;

	/* An empty pop asks for a kick at the next entry (avail_event). */
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 0);
	assert_int_equal(fx_get16(&c->fx, c->q.used + 4 + 8 * NUM), 0);
	for (int i = 0; i < 4; i++) {
		fq_desc(&c->q, (uint32_t)i, fx_gpa(FX_DATA + 64 * (size_t)i), 64,
		    FX_F_WRITE, 0);
		fq_avail(&c->q, (uint16_t)i);
	}
	for (int i = 0; i < 4; i++)
		assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 0);
	assert_int_equal(fx_get16(&c->fx, c->q.used + 4 + 8 * NUM), 4);
	/* The driver wants an interrupt once used_idx passes 2. */
	fx_put16(&c->fx, c->q.avail + 4 + 2 * NUM, 2);
	assert_int_equal(vhost_vq_push(c->q.vq, 0, 0), 0);
	assert_int_equal(vhost_vq_push(c->q.vq, 1, 0), 0);
	assert_int_equal(vhost_vq_notify(c->q.vq), 1);	/* first one: always */
	assert_int_equal(vhost_vq_push(c->q.vq, 2, 0), 0);
	assert_int_equal(vhost_vq_notify(c->q.vq), 1);	/* 2 -> 3 passes 2 */
	assert_int_equal(vhost_vq_push(c->q.vq, 3, 0), 0);
	assert_int_equal(vhost_vq_notify(c->q.vq), 0);	/* 3 -> 4 does not */
	assert_int_equal(fx_eventfd_take(c->q.call_fd), 2);
}

static void
test_indirect_ok(void **state)
{
	struct ctx *c = *state;
	struct vhost_chain ch;
	size_t t = FX_DATA + 0x8000;

	/* A table of two: a readable header and a writable buffer. */
	fx_desc_at(&c->fx, t, 0, fx_gpa(FX_DATA), 44, FX_F_NEXT, 1);
	fx_desc_at(&c->fx, t, 1, fx_gpa(FX_DATA + 64), 4096, FX_F_WRITE, 0);
	fq_desc(&c->q, 5, fx_gpa(t), 32, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 5);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	assert_int_equal(ch.head, 5);
	assert_int_equal(ch.nout, 1);
	assert_int_equal(ch.nin, 1);
	assert_int_equal(ch.out_len, 44);
	assert_int_equal(ch.in_len, 4096);
	assert_ptr_equal(ch.iov[1].iov_base, c->fx.mem + FX_DATA + 64);
}

/* ---- Hostile chains ------------------------------------------------------------ */

static void
test_head_out_of_range(void **state)
{
	struct ctx *c = *state;

	fq_avail(&c->q, NUM);		/* one past the table */
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "descriptor index out of range");
}

static void
test_next_out_of_range(void **state)
{
	struct ctx *c = *state;

	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 16, FX_F_NEXT, 0xffff);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "next descriptor index out of range");
}

static void
test_addr_outside_memory(void **state)
{
	struct ctx *c = *state;

	fq_desc(&c->q, 0, FX_GPA - 4096, 16, 0, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "descriptor buffer outside guest memory");
}

static void
test_len_past_region(void **state)
{
	struct ctx *c = *state;

	/* Starts inside, ends one byte past the end of guest memory. */
	fq_desc(&c->q, 0, fx_gpa(FX_MEM_SIZE - 100), 101, FX_F_WRITE, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_len_wraps(void **state)
{
	struct ctx *c = *state;

	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 0xffffffffu, 0, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_chain_loop(void **state)
{
	struct ctx *c = *state;

	/* 0 -> 1 -> 2 -> 0 ... */
	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 16, FX_F_NEXT, 1);
	fq_desc(&c->q, 1, fx_gpa(FX_DATA), 16, FX_F_NEXT, 2);
	fq_desc(&c->q, 2, fx_gpa(FX_DATA), 16, FX_F_NEXT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "descriptor chain loops or is longer than its table");
}

static void
test_self_loop(void **state)
{
	struct ctx *c = *state;

	fq_desc(&c->q, 9, fx_gpa(FX_DATA), 0, FX_F_NEXT, 9);
	fq_avail(&c->q, 9);
	expect_broken(&c->q);
}

static void
test_avail_idx_jump(void **state)
{
	struct ctx *c = *state;

	fq_set_avail_idx(&c->q, NUM + 1);
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "available index moved by more than the queue size");
}

static void
test_readable_after_writable(void **state)
{
	struct ctx *c = *state;

	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 16, FX_F_WRITE | FX_F_NEXT, 1);
	fq_desc(&c->q, 1, fx_gpa(FX_DATA), 16, 0, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_too_many_pieces(void **state)
{
	struct ctx *c = *state;
	struct fq big;

	/* A 128-entry queue with one chain of 100 descriptors. */
	assert_int_equal(fq_init(&big, &c->fx, 128, 0x10000, 0), 0);
	for (uint32_t i = 0; i < 100; i++)
		fq_desc(&big, i, fx_gpa(FX_DATA), 8, FX_F_NEXT, (uint16_t)(i +
		    1));
	fq_desc(&big, 99, fx_gpa(FX_DATA), 8, 0, 0);
	fq_avail(&big, 0);
	expect_broken(&big);
	assert_string_equal(vhost_vq_error(big.vq),
	    "descriptor chain has too many buffers");
	fq_free(&big);
}

static void
test_indirect_without_feature(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fx_desc_at(&c->fx, t, 0, fx_gpa(FX_DATA), 44, 0, 0);
	fq_desc(&c->q, 0, fx_gpa(t), 16, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_indirect_nested(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fx_desc_at(&c->fx, t, 0, fx_gpa(t), 16, FX_F_INDIRECT, 0);
	fq_desc(&c->q, 0, fx_gpa(t), 16, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "indirect descriptor inside an indirect table");
}

static void
test_indirect_with_next(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fx_desc_at(&c->fx, t, 0, fx_gpa(FX_DATA), 44, 0, 0);
	fq_desc(&c->q, 0, fx_gpa(t), 16, FX_F_INDIRECT | FX_F_NEXT, 1);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_indirect_bad_len(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fq_desc(&c->q, 0, fx_gpa(t), 24, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_indirect_zero_len(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fq_desc(&c->q, 0, fx_gpa(t), 0, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_indirect_outside_memory(void **state)
{
	struct ctx *c = *state;

	/* The table's last entry would lie past the end of guest memory. */
	fq_desc(&c->q, 0, fx_gpa(FX_MEM_SIZE - 16), 32, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
	assert_string_equal(vhost_vq_error(c->q.vq),
	    "indirect table outside guest memory");
}

static void
test_indirect_loop(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fx_desc_at(&c->fx, t, 0, fx_gpa(FX_DATA), 8, FX_F_NEXT, 1);
	fx_desc_at(&c->fx, t, 1, fx_gpa(FX_DATA), 8, FX_F_NEXT, 0);
	fq_desc(&c->q, 0, fx_gpa(t), 32, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_indirect_next_past_table(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	/* Index 5 is inside the queue's table but past the indirect one. */
	fx_desc_at(&c->fx, t, 0, fx_gpa(FX_DATA), 8, FX_F_NEXT, 5);
	fq_desc(&c->q, 0, fx_gpa(t), 32, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_indirect_buffer_outside(void **state)
{
	struct ctx *c = *state;
	size_t t = FX_DATA + 0x8000;

	fx_desc_at(&c->fx, t, 0, 0x10, 8, 0, 0);
	fq_desc(&c->q, 0, fx_gpa(t), 16, FX_F_INDIRECT, 0);
	fq_avail(&c->q, 0);
	expect_broken(&c->q);
}

static void
test_remap_loses_rings(void **state)
{
	struct ctx *c = *state;
	struct vhost_mem *m;
	struct vhost_chain ch;
	uint8_t *other = malloc(4096);

	assert_int_equal(vhost_mem_new(&m), 0);
	assert_int_equal(vhost_mem_add(m, FX_GPA, 4096, 0x1000, other), 0);
	assert_int_equal(vhost_vq_remap(c->q.vq, m), -EFAULT);
	assert_true(vhost_vq_broken(c->q.vq));
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), -EIO);
	/* Back to the full table: still broken until set up again. */
	assert_int_equal(vhost_vq_remap(c->q.vq, c->fx.m), 0);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), -EIO);
	vhost_mem_free(m);
	free(other);
}

/* A guest rewriting a descriptor while we walk it changes nothing we
 * already checked: each descriptor is read once, into our own copy. */
static void
test_descriptor_read_once(void **state)
{
	struct ctx *c = *state;
	struct vhost_chain ch;

	fq_desc(&c->q, 0, fx_gpa(FX_DATA), 100, FX_F_WRITE, 0);
	fq_avail(&c->q, 0);
	assert_int_equal(vhost_vq_pop(c->q.vq, &ch), 1);
	fq_desc(&c->q, 0, FX_GPA - 4096, 0xffffffffu, FX_F_WRITE, 0);
	assert_int_equal(ch.in_len, 100);
	assert_ptr_equal(ch.iov[0].iov_base, c->fx.mem + FX_DATA);
	assert_int_equal(ch.iov[0].iov_len, 100);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mem_translate),
		cmocka_unit_test(test_mem_refuses_bad_regions),
		cmocka_unit_test(test_vq_config_checked),
		cmocka_unit_test_setup_teardown(test_pop_chain, setup_plain,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unpop, setup_plain,
		    teardown),
		cmocka_unit_test_setup_teardown(test_no_interrupt_flag,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_event_idx, setup_indirect,
		    teardown),
		cmocka_unit_test_setup_teardown(test_indirect_ok,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_head_out_of_range,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_next_out_of_range,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_addr_outside_memory,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_len_past_region,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_len_wraps, setup_plain,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chain_loop, setup_plain,
		    teardown),
		cmocka_unit_test_setup_teardown(test_self_loop, setup_plain,
		    teardown),
		cmocka_unit_test_setup_teardown(test_avail_idx_jump,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_readable_after_writable,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_too_many_pieces,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_without_feature,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_nested,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_with_next,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_bad_len,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_zero_len,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_outside_memory,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_loop,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_next_past_table,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_indirect_buffer_outside,
		    setup_indirect, teardown),
		cmocka_unit_test_setup_teardown(test_remap_loses_rings,
		    setup_plain, teardown),
		cmocka_unit_test_setup_teardown(test_descriptor_read_once,
		    setup_plain, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
