/*
 * test_messages.c: encoding and decoding of every message type.
 *
 * Round trips, every truncation, trailing bytes, over-limit length fields,
 * out-of-range fields and header faults. Payloads under test are heap copies
 * of exactly their length so the sanitizers see any read past the end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define FRAME_CAP	(PH_HDR_LEN + PH_MAX_PAYLOAD)

static const uint8_t all_types[] = {
	PH_HELLO, PH_GET, PH_STAT, PH_LIST, PH_PING, PH_CTL,
	PH_HELLO_ACK, PH_QUEUED, PH_META, PH_DATA, PH_DATA_ZSTD, PH_END,
	PH_ERROR, PH_LIST_REPLY, PH_PONG, PH_PATH, PH_CTL_REPLY,
};
#define NTYPES	(sizeof(all_types) / sizeof(all_types[0]))

static const uint8_t data_bytes[] = "file bytes\n";
static uint8_t entry_block[1024];

/* Builds the LIST_REPLY entry block used by the samples; returns its size. */
static size_t
build_entries(void)
{
	struct ph_writer	w;
	struct ph_list_entry	e;

	ph_writer_init(&w, entry_block, sizeof(entry_block));
	memset(&e, 0, sizeof(e));
	e.ftype = PH_FT_REGULAR;
	e.size = 123456789;
	e.mtime_ns = -5;
	e.mode = 0644;
	strcpy(e.name, "a.txt");
	assert_int_equal(ph_message_list_entry_put(&w, &e), 0);
	e.ftype = PH_FT_DIR;
	e.size = 4096;
	e.mtime_ns = INT64_MAX;
	e.mode = 07777;
	strcpy(e.name, "\xe2\x82\xac dir");
	assert_int_equal(ph_message_list_entry_put(&w, &e), 0);
	e.ftype = PH_FT_OTHER;
	e.mode = 0;
	strcpy(e.name, "...");
	assert_int_equal(ph_message_list_entry_put(&w, &e), 0);
	return w.off;
}

/* Allocates a message of type with every field set to something non-zero. */
static struct ph_msg *
sample(uint8_t type)
{
	struct ph_msg	*m = calloc(1, sizeof(*m));
	int		 i;

	assert_non_null(m);
	m->type = type;
	switch (type) {
	case PH_HELLO:
		m->u.hello.min_version = 1;
		m->u.hello.max_version = 2;
		m->u.hello.features = 0xffffffff;
		m->u.hello.declared_peer = 77;
		strcpy(m->u.hello.agent, "porthole/test");
		break;
	case PH_GET:
		m->u.get.offset = 0x1122334455667788ull;
		m->u.get.flags = PH_GET_WANT_ZSTD | PH_GET_REVERIFY;
		strcpy(m->u.get.path, "/a/b/c.deb");
		break;
	case PH_STAT:
		strcpy(m->u.stat.path, "x");
		break;
	case PH_LIST:
		m->u.list.cursor = 512;
		strcpy(m->u.list.path, "dir/sub");
		break;
	case PH_PING:
	case PH_PONG:
		m->u.ping_nonce = 0xfedcba9876543210ull;
		break;
	case PH_PATH:
		m->u.path.entry = 256;
		memcpy(m->u.path.path, "a/b", 4);
		break;
	case PH_CTL:
		m->u.ctl.flags = PH_CTL_JSON;
		m->u.ctl.argc = 3;
		m->u.ctl.argv[0] = "repo";
		m->u.ctl.argv[1] = "set";
		m->u.ctl.argv[2] = "/srv/r";
		break;
	case PH_HELLO_ACK:
		m->u.hello_ack.version = 1;
		m->u.hello_ack.features = PH_FEAT_ALL;
		m->u.hello_ack.max_payload = PH_MAX_PAYLOAD;
		strcpy(m->u.hello_ack.agent, "portholed/test");
		break;
	case PH_QUEUED:
		m->u.queued_position = 0x01020304;
		break;
	case PH_META:
		m->u.meta.size = 99;
		m->u.meta.mtime_ns = -1234567890123ll;
		m->u.meta.mode = 0755;
		m->u.meta.ftype = PH_FT_REGULAR;
		m->u.meta.has_digest = 1;
		m->u.meta.stale = 1;
		for (i = 0; i < PH_SHA256_LEN; i++)
			m->u.meta.sha256[i] = (uint8_t)(i + 1);
		break;
	case PH_DATA:
	case PH_DATA_ZSTD:
		m->u.data.bytes = data_bytes;
		m->u.data.len = sizeof(data_bytes) - 1;
		break;
	case PH_END:
		m->u.end.bytes = 99;
		m->u.end.has_digest = 1;
		m->u.end.stale = 1;
		for (i = 0; i < PH_SHA256_LEN; i++)
			m->u.end.sha256[i] = (uint8_t)(0xff - i);
		break;
	case PH_ERROR:
		m->u.error.code = PH_ERR_NOT_FOUND;
		strcpy(m->u.error.message, "gone");
		break;
	case PH_LIST_REPLY:
		m->u.list_reply.next_cursor = 3;
		m->u.list_reply.count = 3;
		m->u.list_reply.entries = entry_block;
		m->u.list_reply.entries_len = (uint32_t)build_entries();
		break;
	case PH_CTL_REPLY:
		m->u.ctl_reply.status = PH_ERR_USAGE;
		m->u.ctl_reply.body = (const uint8_t *)"usage: x\n";
		m->u.ctl_reply.body_len = 9;
		break;
	default:
		fail_msg("no sample for type %#x", type);
	}
	return m;
}

/* Encodes m into a fresh heap buffer of exactly the frame's size. */
static uint8_t *
encode_exact(const struct ph_msg *m, size_t *len)
{
	uint8_t	*big, *frame;
	ssize_t	 n;

	big = malloc(FRAME_CAP);
	assert_non_null(big);
	n = ph_message_encode(m, big, FRAME_CAP);
	assert_true(n >= PH_HDR_LEN);
	frame = malloc((size_t)n);
	assert_non_null(frame);
	memcpy(frame, big, (size_t)n);
	free(big);
	*len = (size_t)n;
	return frame;
}

/* Decodes len payload bytes from a heap copy of exactly that length. */
static int
decode_copy(uint8_t type, const uint8_t *payload, size_t len,
    struct ph_msg *m)
{
	uint8_t	*p = malloc(len == 0 ? 1 : len);
	int	 rc;

	assert_non_null(p);
	if (len > 0)
		memcpy(p, payload, len);
	rc = ph_message_decode(type, p, len, m);
	free(p);
	return rc;
}

/* Compares the decoded fields with the sample's, member by member. */
static void
assert_same(const struct ph_msg *a, const struct ph_msg *b)
{
	uint16_t	i;

	assert_int_equal(a->type, b->type);
	switch (a->type) {
	case PH_HELLO:
		assert_int_equal(a->u.hello.min_version, b->u.hello.min_version);
		assert_int_equal(a->u.hello.max_version, b->u.hello.max_version);
		assert_int_equal(a->u.hello.features, b->u.hello.features);
		assert_int_equal(a->u.hello.declared_peer,
		    b->u.hello.declared_peer);
		assert_string_equal(a->u.hello.agent, b->u.hello.agent);
		break;
	case PH_GET:
		assert_true(a->u.get.offset == b->u.get.offset);
		assert_int_equal(a->u.get.flags, b->u.get.flags);
		assert_string_equal(a->u.get.path, b->u.get.path);
		break;
	case PH_STAT:
		assert_string_equal(a->u.stat.path, b->u.stat.path);
		break;
	case PH_LIST:
		assert_true(a->u.list.cursor == b->u.list.cursor);
		assert_string_equal(a->u.list.path, b->u.list.path);
		break;
	case PH_PING:
	case PH_PONG:
		assert_true(a->u.ping_nonce == b->u.ping_nonce);
		break;
	case PH_PATH:
		assert_int_equal(a->u.path.entry, b->u.path.entry);
		assert_string_equal(a->u.path.path, b->u.path.path);
		break;
	case PH_CTL:
		assert_int_equal(a->u.ctl.flags, b->u.ctl.flags);
		assert_int_equal(a->u.ctl.argc, b->u.ctl.argc);
		for (i = 0; i < a->u.ctl.argc; i++)
			assert_string_equal(a->u.ctl.argv[i], b->u.ctl.argv[i]);
		break;
	case PH_HELLO_ACK:
		assert_int_equal(a->u.hello_ack.version, b->u.hello_ack.version);
		assert_int_equal(a->u.hello_ack.features,
		    b->u.hello_ack.features);
		assert_int_equal(a->u.hello_ack.max_payload,
		    b->u.hello_ack.max_payload);
		assert_string_equal(a->u.hello_ack.agent, b->u.hello_ack.agent);
		break;
	case PH_QUEUED:
		assert_int_equal(a->u.queued_position, b->u.queued_position);
		break;
	case PH_META:
		assert_memory_equal(&a->u.meta, &b->u.meta, sizeof(a->u.meta));
		break;
	case PH_DATA:
	case PH_DATA_ZSTD:
		assert_int_equal(a->u.data.len, b->u.data.len);
		assert_memory_equal(a->u.data.bytes, b->u.data.bytes,
		    a->u.data.len);
		break;
	case PH_END:
		assert_memory_equal(&a->u.end, &b->u.end, sizeof(a->u.end));
		break;
	case PH_ERROR:
		assert_int_equal(a->u.error.code, b->u.error.code);
		assert_string_equal(a->u.error.message, b->u.error.message);
		break;
	case PH_LIST_REPLY:
		assert_true(a->u.list_reply.next_cursor ==
		    b->u.list_reply.next_cursor);
		assert_int_equal(a->u.list_reply.count, b->u.list_reply.count);
		assert_int_equal(a->u.list_reply.entries_len,
		    b->u.list_reply.entries_len);
		assert_memory_equal(a->u.list_reply.entries,
		    b->u.list_reply.entries, a->u.list_reply.entries_len);
		break;
	case PH_CTL_REPLY:
		assert_int_equal(a->u.ctl_reply.status, b->u.ctl_reply.status);
		assert_int_equal(a->u.ctl_reply.body_len,
		    b->u.ctl_reply.body_len);
		assert_memory_equal(a->u.ctl_reply.body, b->u.ctl_reply.body,
		    a->u.ctl_reply.body_len);
		break;
	default:
		fail();
	}
}

static void
test_roundtrip_all(void **state)
{
	struct ph_msg		*m, *d;
	struct ph_header	 h;
	uint8_t			*frame, *copy, *again;
	size_t			 len, len2, i;

	(void)state;
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	for (i = 0; i < NTYPES; i++) {
		m = sample(all_types[i]);
		frame = encode_exact(m, &len);
		assert_int_equal(ph_frame_header_parse(frame, len, &h), 0);
		assert_int_equal(h.version, PH_PROTO_VERSION);
		assert_int_equal(h.type, all_types[i]);
		assert_int_equal(h.length, len - PH_HDR_LEN);
		/* Decoded from a copy: a CTL is decoded in place. */
		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, frame, len);
		assert_int_equal(ph_message_decode(h.type, copy + PH_HDR_LEN,
		    h.length, d), 0);
		assert_same(m, d);
		again = encode_exact(d, &len2);
		assert_int_equal(len, len2);
		assert_memory_equal(frame, again, len);
		free(again);
		free(copy);
		free(frame);
		free(m);
	}
	free(d);
}

/*
 * Every strict prefix of every payload must be refused; for DATA a non-empty
 * prefix is itself a valid DATA frame and must decode as exactly that.
 */
static void
test_truncation_all(void **state)
{
	struct ph_msg		*m, *d;
	struct ph_header	 h;
	uint8_t			*frame;
	size_t			 len, i, k, plen;
	int			 rc;

	(void)state;
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	for (i = 0; i < NTYPES; i++) {
		m = sample(all_types[i]);
		frame = encode_exact(m, &len);
		plen = len - PH_HDR_LEN;
		for (k = 0; k < PH_HDR_LEN; k++)
			assert_int_equal(ph_frame_header_parse(frame, k, &h),
			    -EAGAIN);
		for (k = 0; k < plen; k++) {
			rc = decode_copy(m->type, frame + PH_HDR_LEN, k, d);
			if ((m->type == PH_DATA || m->type == PH_DATA_ZSTD) &&
			    k > 0) {
				assert_int_equal(rc, 0);
				assert_int_equal(d->u.data.len, k);
				continue;
			}
			if (rc == 0)
				fail_msg("%s truncated to %zu decoded",
				    ph_message_type_name(m->type), k);
			assert_true(rc == -EBADMSG || rc == -EPROTO);
			assert_int_equal(d->type, 0);
		}
		free(frame);
		free(m);
	}
	free(d);
}

/* One extra byte after the last field is refused for every fixed layout. */
static void
test_trailing_bytes(void **state)
{
	struct ph_msg	*m, *d;
	uint8_t		*frame, *longer;
	size_t		 len, i, plen;
	int		 rc;

	(void)state;
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	for (i = 0; i < NTYPES; i++) {
		m = sample(all_types[i]);
		if (m->type == PH_DATA || m->type == PH_DATA_ZSTD) {
			free(m);
			continue;
		}
		frame = encode_exact(m, &len);
		plen = len - PH_HDR_LEN;
		longer = malloc(plen + 1);
		assert_non_null(longer);
		memcpy(longer, frame + PH_HDR_LEN, plen);
		longer[plen] = 'x';
		rc = ph_message_decode(m->type, longer, plen + 1, d);
		/* Over the exact size of a fixed-size type is over its limit. */
		if (m->type == PH_PING || m->type == PH_PONG ||
		    m->type == PH_QUEUED || m->type == PH_META ||
		    m->type == PH_END)
			assert_int_equal(rc, -EMSGSIZE);
		else
			assert_int_equal(rc, -EBADMSG);
		assert_int_equal(d->type, 0);
		free(longer);
		free(frame);
		free(m);
	}
	free(d);
}

static void
test_header_faults(void **state)
{
	uint8_t			hdr[PH_HDR_LEN], *exact;
	struct ph_header	h;
	size_t			i;
	static const uint8_t	unknown[] = { 0x00, 0x06, 0x0f, 0x11, 0x7f,
	    0x80, 0x8b, 0x8f, 0x91, 0xff };

	(void)state;
	ph_frame_header_write(hdr, PH_PING, 8);
	assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h), 0);

	hdr[0] = 'X';
	assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h), -EPROTO);
	ph_frame_header_write(hdr, PH_PING, 8);
	hdr[1] = 'h';
	assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h), -EPROTO);

	ph_frame_header_write(hdr, PH_PING, 8);
	hdr[2] = 0;
	assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h),
	    -EPROTONOSUPPORT);
	hdr[2] = PH_PROTO_VERSION + 1;
	assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h),
	    -EPROTONOSUPPORT);
	hdr[2] = 0xff;
	assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h),
	    -EPROTONOSUPPORT);
	assert_int_equal(h.type, 0);
	assert_int_equal(h.length, 0);

	for (i = 0; i < sizeof(unknown); i++) {
		ph_frame_header_write(hdr, unknown[i], 0);
		assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h),
		    -EPROTO);
		assert_string_equal(ph_message_type_name(unknown[i]), "?");
	}

	/* The header alone is enough to refuse a frame: an 8-byte buffer. */
	exact = malloc(PH_HDR_LEN);
	assert_non_null(exact);
	ph_frame_header_write(exact, PH_GET, PH_MAX_REQUEST_PAYLOAD + 1);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_CTL, PH_MAX_REQUEST_PAYLOAD);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h), 0);
	ph_frame_header_write(exact, PH_CTL, PH_MAX_REQUEST_PAYLOAD + 1);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_DATA, PH_MAX_PAYLOAD);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h), 0);
	assert_int_equal(h.length, PH_MAX_PAYLOAD);
	ph_frame_header_write(exact, PH_DATA, PH_MAX_PAYLOAD + 1);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_CTL_REPLY, UINT32_MAX);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_PING, 9);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_META, 55);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_LIST_REPLY, 71179);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h),
	    -EMSGSIZE);
	ph_frame_header_write(exact, PH_LIST_REPLY, 71178);
	assert_int_equal(ph_frame_header_parse(exact, PH_HDR_LEN, &h), 0);
	free(exact);
	assert_int_equal(ph_frame_header_parse(NULL, 0, &h), -EAGAIN);
}

/* The per-type payload ceilings, as PROTOCOL.md lists them. */
static void
test_type_limits(void **state)
{
	static const struct {
		uint8_t		type;
		uint32_t	max;
	} limits[] = {
		{ PH_HELLO, 1038 }, { PH_GET, 4110 }, { PH_STAT, 4098 },
		{ PH_LIST, 4106 }, { PH_PING, 8 }, { PH_CTL, 8192 },
		{ PH_HELLO_ACK, 1036 }, { PH_QUEUED, 4 }, { PH_META, 54 },
		{ PH_DATA, 1048576 }, { PH_DATA_ZSTD, 1048576 },
		{ PH_END, 41 }, { PH_ERROR, 1028 }, { PH_LIST_REPLY, 71178 },
		{ PH_PONG, 8 }, { PH_PATH, 4100 }, { PH_CTL_REPLY, 1048576 },
	};
	uint8_t			hdr[PH_HDR_LEN];
	struct ph_header	h;
	size_t			i;

	(void)state;
	assert_int_equal(sizeof(limits) / sizeof(limits[0]), NTYPES);
	for (i = 0; i < NTYPES; i++) {
		ph_frame_header_write(hdr, limits[i].type, limits[i].max);
		assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h),
		    0);
		assert_int_equal(h.length, limits[i].max);
		ph_frame_header_write(hdr, limits[i].type, limits[i].max + 1);
		assert_int_equal(ph_frame_header_parse(hdr, sizeof(hdr), &h),
		    -EMSGSIZE);
		if (limits[i].type < 0x80)
			assert_true(limits[i].max <= PH_MAX_REQUEST_PAYLOAD);
		assert_true(limits[i].max <= PH_MAX_PAYLOAD);
	}
}

static void
test_decode_unknown_type(void **state)
{
	struct ph_msg	*d = calloc(1, sizeof(*d));
	uint8_t		 payload[8] = { 0 };

	(void)state;
	assert_non_null(d);
	assert_int_equal(ph_message_decode(0x00, payload, 8, d), -EPROTO);
	assert_int_equal(ph_message_decode(0x06, payload, 8, d), -EPROTO);
	assert_int_equal(ph_message_decode(0xff, payload, 8, d), -EPROTO);
	assert_int_equal(d->type, 0);
	free(d);
}

/* Writes a str field with a declared length and n actual bytes. */
static void
put_raw_str(struct ph_writer *w, uint16_t declared, size_t n, char fill)
{
	size_t	i;

	assert_int_equal(ph_writer_put_u16(w, declared), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(ph_writer_put_u8(w, (uint8_t)fill), 0);
}

static void
test_oversized_length_fields(void **state)
{
	static uint8_t		buf[80000];
	struct ph_writer	w;
	struct ph_msg		*d = calloc(1, sizeof(*d));
	int			i;

	(void)state;
	assert_non_null(d);

	/* GET path of 4097 bytes, all present. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u32(&w, 0);
	put_raw_str(&w, PH_MAX_PATH + 1, PH_MAX_PATH + 1, 'a');
	assert_int_equal(ph_message_decode(PH_GET, buf, w.off, d), -EMSGSIZE);

	/* GET path of exactly 4096 bytes is fine. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u32(&w, 0);
	put_raw_str(&w, PH_MAX_PATH, PH_MAX_PATH, 'a');
	assert_int_equal(ph_message_decode(PH_GET, buf, w.off, d), 0);
	assert_int_equal(strlen(d->u.get.path), PH_MAX_PATH);

	/* A length of 65535 over only a few bytes: over the limit first. */
	ph_writer_init(&w, buf, sizeof(buf));
	put_raw_str(&w, 0xffff, 3, 'a');
	assert_int_equal(ph_message_decode(PH_STAT, buf, w.off, d), -EMSGSIZE);

	/* HELLO agent and ERROR message over 1024. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 1);
	ph_writer_put_u16(&w, 1);
	ph_writer_put_u32(&w, 0);
	ph_writer_put_u32(&w, 0);
	put_raw_str(&w, PH_MAX_MESSAGE + 1, PH_MAX_MESSAGE + 1, 'b');
	assert_int_equal(ph_message_decode(PH_HELLO, buf, w.off, d), -EMSGSIZE);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, PH_ERR_IO);
	put_raw_str(&w, PH_MAX_MESSAGE + 1, PH_MAX_MESSAGE + 1, 'b');
	assert_int_equal(ph_message_decode(PH_ERROR, buf, w.off, d), -EMSGSIZE);

	/* LIST_REPLY with 257 entries declared. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u16(&w, PH_MAX_LIST_ENTRIES + 1);
	assert_int_equal(ph_message_decode(PH_LIST_REPLY, buf, w.off, d),
	    -EMSGSIZE);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u16(&w, 0xffff);
	assert_int_equal(ph_message_decode(PH_LIST_REPLY, buf, w.off, d),
	    -EMSGSIZE);

	/* LIST entry name over 255. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u16(&w, 1);
	ph_writer_put_u8(&w, PH_FT_REGULAR);
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u32(&w, 0644);
	put_raw_str(&w, PH_MAX_NAME + 1, PH_MAX_NAME + 1, 'n');
	assert_int_equal(ph_message_decode(PH_LIST_REPLY, buf, w.off, d),
	    -EMSGSIZE);

	/* CTL with 33 arguments, and an argument of 4097 bytes. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u8(&w, 0);
	ph_writer_put_u16(&w, PH_MAX_CTL_ARGS + 1);
	for (i = 0; i < PH_MAX_CTL_ARGS + 1; i++)
		put_raw_str(&w, 1, 1, 'c');
	assert_int_equal(ph_message_decode(PH_CTL, buf, w.off, d), -EMSGSIZE);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u8(&w, 0);
	ph_writer_put_u16(&w, 1);
	put_raw_str(&w, PH_MAX_PATH + 1, PH_MAX_PATH + 1, 'c');
	assert_int_equal(ph_message_decode(PH_CTL, buf, w.off, d), -EMSGSIZE);

	/* CTL_REPLY body_len past the payload limit, and past the payload. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 0);
	ph_writer_put_u32(&w, PH_MAX_PAYLOAD + 1);
	assert_int_equal(ph_message_decode(PH_CTL_REPLY, buf, w.off, d),
	    -EMSGSIZE);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 0);
	ph_writer_put_u32(&w, 10);
	put_raw_str(&w, 0x4142, 4, 'd');
	assert_int_equal(ph_message_decode(PH_CTL_REPLY, buf, w.off, d),
	    -EBADMSG);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 0);
	ph_writer_put_u32(&w, 2);
	put_raw_str(&w, 0x4142, 4, 'd');
	assert_int_equal(ph_message_decode(PH_CTL_REPLY, buf, w.off, d),
	    -EBADMSG);

	/*
	 * Payload lengths past the type's limit, given to ph_message_decode
	 * directly.
	 */
	assert_int_equal(ph_message_decode(PH_DATA, buf, PH_MAX_PAYLOAD + 1, d),
	    -EMSGSIZE);
	assert_int_equal(ph_message_decode(PH_GET, buf,
	    PH_MAX_REQUEST_PAYLOAD + 1, d), -EMSGSIZE);
	assert_int_equal(d->type, 0);
	free(d);
}

/* Builds a payload for type from a writer callback and decodes it. */
static int
decode_meta_like(uint8_t type, uint8_t ftype, uint32_t mode, uint8_t has,
    uint8_t digest_byte)
{
	uint8_t			buf[64];
	struct ph_writer	w;
	struct ph_msg		*d = calloc(1, sizeof(*d));
	int			i, rc;

	assert_non_null(d);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 10);
	if (type == PH_META) {
		ph_writer_put_u64(&w, 0);
		ph_writer_put_u32(&w, mode);
		ph_writer_put_u8(&w, ftype);
	}
	ph_writer_put_u8(&w, has);
	for (i = 0; i < PH_SHA256_LEN; i++)
		ph_writer_put_u8(&w, i == 5 ? digest_byte : 0);
	rc = ph_message_decode(type, buf, w.off, d);
	free(d);
	return rc;
}

/* One LIST_REPLY with a single entry of the given fields. */
static int
decode_one_entry(uint64_t next, uint8_t ftype, uint32_t mode,
    const char *name, size_t nlen)
{
	uint8_t			buf[512];
	struct ph_writer	w;
	struct ph_msg		*d = calloc(1, sizeof(*d));
	int			rc;

	assert_non_null(d);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, next);
	ph_writer_put_u16(&w, 1);
	ph_writer_put_u8(&w, ftype);
	ph_writer_put_u64(&w, 1);
	ph_writer_put_u64(&w, 2);
	ph_writer_put_u32(&w, mode);
	ph_writer_put_u16(&w, (uint16_t)nlen);
	ph_writer_put_bytes(&w, name, nlen);
	rc = ph_message_decode(PH_LIST_REPLY, buf, w.off, d);
	free(d);
	return rc;
}

static void
test_fields_out_of_range(void **state)
{
	uint8_t			buf[64];
	struct ph_writer	w;
	struct ph_msg		*d = calloc(1, sizeof(*d));

	(void)state;
	assert_non_null(d);
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 1, 9), 0);
	assert_int_equal(decode_meta_like(PH_META, 2, 07777, 0, 0), 0);
	assert_int_equal(decode_meta_like(PH_META, 0, 0644, 0, 0), -EPROTO);
	assert_int_equal(decode_meta_like(PH_META, 4, 0644, 0, 0), -EPROTO);
	assert_int_equal(decode_meta_like(PH_META, 1, 010000, 0, 0), -EPROTO);
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 4, 0), -EPROTO);
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 0x80, 0), -EPROTO);
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 0, 1), -EPROTO);
	/* The stale bit, with or without a digest; never digest bytes alone. */
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 2, 0), 0);
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 3, 9), 0);
	assert_int_equal(decode_meta_like(PH_META, 1, 0644, 2, 9), -EPROTO);
	assert_int_equal(decode_meta_like(PH_END, 0, 0, 1, 1), 0);
	assert_int_equal(decode_meta_like(PH_END, 0, 0, 0, 0), 0);
	assert_int_equal(decode_meta_like(PH_END, 0, 0, 3, 1), 0);
	assert_int_equal(decode_meta_like(PH_END, 0, 0, 4, 0), -EPROTO);
	assert_int_equal(decode_meta_like(PH_END, 0, 0, 7, 1), -EPROTO);
	assert_int_equal(decode_meta_like(PH_END, 0, 0, 0, 7), -EPROTO);

	/* ERROR codes 0 and past the last. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 0);
	ph_writer_put_u16(&w, 0);
	assert_int_equal(ph_message_decode(PH_ERROR, buf, w.off, d), -EPROTO);
	buf[1] = PH_ERR_MAX + 1;
	assert_int_equal(ph_message_decode(PH_ERROR, buf, w.off, d), -EPROTO);
	buf[1] = PH_ERR_MAX;
	assert_int_equal(ph_message_decode(PH_ERROR, buf, w.off, d), 0);

	/* CTL_REPLY status past the last code. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, PH_ERR_MAX + 1);
	ph_writer_put_u32(&w, 0);
	assert_int_equal(ph_message_decode(PH_CTL_REPLY, buf, w.off, d),
	    -EPROTO);

	/* GET and CTL flags outside the defined bits. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 0);
	ph_writer_put_u32(&w, 4);
	ph_writer_put_u16(&w, 0);
	assert_int_equal(ph_message_decode(PH_GET, buf, w.off, d), -EPROTO);
	buf[11] = PH_GET_WANT_ZSTD | PH_GET_REVERIFY;
	assert_int_equal(ph_message_decode(PH_GET, buf, w.off, d), 0);
	assert_int_equal(d->u.get.flags, PH_GET_WANT_ZSTD | PH_GET_REVERIFY);
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u8(&w, 0x80);
	ph_writer_put_u16(&w, 0);
	assert_int_equal(ph_message_decode(PH_CTL, buf, w.off, d), -EPROTO);

	/* HELLO version ranges that are malformed. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 0);
	ph_writer_put_u16(&w, 1);
	ph_writer_put_u32(&w, 0);
	ph_writer_put_u32(&w, 0);
	ph_writer_put_u16(&w, 0);
	assert_int_equal(ph_message_decode(PH_HELLO, buf, w.off, d), -EPROTO);
	buf[1] = 3;
	buf[3] = 2;
	assert_int_equal(ph_message_decode(PH_HELLO, buf, w.off, d), -EPROTO);
	buf[3] = 3;
	assert_int_equal(ph_message_decode(PH_HELLO, buf, w.off, d), 0);

	/* HELLO_ACK version 0. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u16(&w, 0);
	ph_writer_put_u32(&w, 0);
	ph_writer_put_u32(&w, 0);
	ph_writer_put_u16(&w, 0);
	assert_int_equal(ph_message_decode(PH_HELLO_ACK, buf, w.off, d),
	    -EPROTO);

	/* Empty DATA frames. */
	assert_int_equal(ph_message_decode(PH_DATA, buf, 0, d), -EBADMSG);
	assert_int_equal(ph_message_decode(PH_DATA_ZSTD, buf, 0, d), -EBADMSG);

	/* An empty page that promises more. */
	ph_writer_init(&w, buf, sizeof(buf));
	ph_writer_put_u64(&w, 5);
	ph_writer_put_u16(&w, 0);
	assert_int_equal(ph_message_decode(PH_LIST_REPLY, buf, w.off, d),
	    -EPROTO);

	/* Entry fields and names. */
	assert_int_equal(decode_one_entry(0, 1, 0644, "ok", 2), 0);
	assert_int_equal(decode_one_entry(1, 3, 0, "...", 3), 0);
	assert_int_equal(decode_one_entry(0, 0, 0644, "ok", 2), -EPROTO);
	assert_int_equal(decode_one_entry(0, 4, 0644, "ok", 2), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 010644, "ok", 2), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "", 0), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, ".", 1), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "..", 2), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "a/b", 3), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "/", 1), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "a\nb", 3), -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "\xc0\xaf", 2),
	    -EPROTO);
	assert_int_equal(decode_one_entry(0, 1, 0644, "a\0b", 3), -EILSEQ);
	free(d);
}

/* The largest LIST_REPLY: 256 entries with 255-byte names. */
static void
test_list_reply_full(void **state)
{
	static uint8_t		 block[PH_MAX_LIST_ENTRIES * 300];
	struct ph_writer	 w;
	struct ph_reader	 r;
	struct ph_list_entry	 e;
	struct ph_msg		*m, *d;
	uint8_t			*frame;
	ssize_t			 n;
	int			 i;

	(void)state;
	m = calloc(1, sizeof(*m));
	d = calloc(1, sizeof(*d));
	frame = malloc(FRAME_CAP);
	assert_non_null(m);
	assert_non_null(d);
	assert_non_null(frame);
	ph_writer_init(&w, block, sizeof(block));
	for (i = 0; i < PH_MAX_LIST_ENTRIES; i++) {
		memset(&e, 0, sizeof(e));
		e.ftype = PH_FT_REGULAR;
		e.size = (uint64_t)i;
		e.mtime_ns = i;
		e.mode = 0600;
		memset(e.name, 'a' + i % 26, PH_MAX_NAME);
		e.name[0] = (char)('0' + i / 100);
		e.name[1] = (char)('0' + i / 10 % 10);
		e.name[2] = (char)('0' + i % 10);
		assert_int_equal(ph_message_list_entry_put(&w, &e), 0);
	}
	m->type = PH_LIST_REPLY;
	m->u.list_reply.count = PH_MAX_LIST_ENTRIES;
	m->u.list_reply.entries = block;
	m->u.list_reply.entries_len = (uint32_t)w.off;
	n = ph_message_encode(m, frame, FRAME_CAP);
	assert_int_equal(n, PH_HDR_LEN + 71178);
	assert_int_equal(ph_message_decode(PH_LIST_REPLY, frame + PH_HDR_LEN,
	    (size_t)n - PH_HDR_LEN, d), 0);
	ph_reader_init(&r, d->u.list_reply.entries,
	    d->u.list_reply.entries_len);
	for (i = 0; i < PH_MAX_LIST_ENTRIES; i++) {
		assert_int_equal(ph_message_list_entry_next(&r, &e), 1);
		assert_int_equal(e.size, i);
		assert_int_equal(strlen(e.name), PH_MAX_NAME);
	}
	assert_int_equal(ph_message_list_entry_next(&r, &e), 0);

	/* count says fewer or more entries than the block holds. */
	m->u.list_reply.count = PH_MAX_LIST_ENTRIES - 1;
	assert_int_equal(ph_message_encode(m, frame, FRAME_CAP), -EINVAL);
	m->u.list_reply.count = PH_MAX_LIST_ENTRIES + 1;
	assert_int_equal(ph_message_encode(m, frame, FRAME_CAP), -EMSGSIZE);
	free(frame);
	free(d);
	free(m);
}

static void
test_list_entry_put_errors(void **state)
{
	uint8_t			buf[300];
	struct ph_writer	w;
	struct ph_list_entry	e;
	size_t			cap;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.ftype = PH_FT_REGULAR;
	strcpy(e.name, "name");
	/* 1 + 8 + 8 + 4 + 2 + 4 bytes: every smaller cap fails cleanly. */
	for (cap = 0; cap < 27; cap++) {
		ph_writer_init(&w, buf, cap);
		assert_int_equal(ph_message_list_entry_put(&w, &e), -ENOBUFS);
		assert_int_equal(w.off, 0);
	}
	ph_writer_init(&w, buf, 27);
	assert_int_equal(ph_message_list_entry_put(&w, &e), 0);
	assert_int_equal(w.off, 27);

	ph_writer_init(&w, buf, sizeof(buf));
	memset(e.name, 'x', sizeof(e.name));	/* no NUL: 256 bytes */
	assert_int_equal(ph_message_list_entry_put(&w, &e), -EMSGSIZE);
	strcpy(e.name, "..");
	assert_int_equal(ph_message_list_entry_put(&w, &e), -EINVAL);
	strcpy(e.name, "a/b");
	assert_int_equal(ph_message_list_entry_put(&w, &e), -EINVAL);
	strcpy(e.name, "ok");
	e.ftype = 9;
	assert_int_equal(ph_message_list_entry_put(&w, &e), -EINVAL);
	e.ftype = PH_FT_DIR;
	e.mode = 0100000;
	assert_int_equal(ph_message_list_entry_put(&w, &e), -EINVAL);
	assert_int_equal(w.off, 0);
}

/* Every cap smaller than the frame is -ENOBUFS and writes inside cap only. */
static void
test_encode_small_buffer(void **state)
{
	struct ph_msg	*m;
	uint8_t		*frame, *buf;
	size_t		 len, i, cap;

	(void)state;
	for (i = 0; i < NTYPES; i++) {
		m = sample(all_types[i]);
		frame = encode_exact(m, &len);
		for (cap = 0; cap < len; cap++) {
			buf = malloc(cap == 0 ? 1 : cap);
			assert_non_null(buf);
			assert_int_equal(ph_message_encode(m, buf, cap),
			    -ENOBUFS);
			free(buf);
		}
		buf = malloc(len);
		assert_non_null(buf);
		assert_int_equal(ph_message_encode(m, buf, len), (ssize_t)len);
		assert_memory_equal(buf, frame, len);
		free(buf);
		free(frame);
		free(m);
	}
}

/* Writes a CTL payload of "repo", "" and "/srv/r" to buf; its length. */
static size_t
put_ctl_sample(uint8_t *buf)
{
	struct ph_writer w;

	ph_writer_init(&w, buf, 64);
	assert_int_equal(ph_writer_put_u8(&w, PH_CTL_JSON), 0);
	assert_int_equal(ph_writer_put_u16(&w, 3), 0);
	assert_int_equal(ph_writer_put_str(&w, "repo"), 0);
	assert_int_equal(ph_writer_put_str(&w, ""), 0);
	assert_int_equal(ph_writer_put_str(&w, "/srv/r"), 0);
	return w.off;
}

/*
 * CTL arguments are C strings inside the frame, which keeps struct ph_msg
 * small; a CTL that is refused leaves the frame as it came.
 */
static void
test_ctl_args_in_frame(void **state)
{
	struct ph_msg	 m;
	uint8_t		*buf = malloc(64), *before = malloc(64);
	size_t		 len;

	(void)state;
	assert_non_null(buf);
	assert_non_null(before);
	assert_true(sizeof(struct ph_msg) < 2 * (PH_MAX_PATH + 1));
	len = put_ctl_sample(buf);
	assert_int_equal(ph_message_decode(PH_CTL, buf, len, &m), 0);
	assert_int_equal(m.u.ctl.argc, 3);
	assert_ptr_equal(m.u.ctl.argv[0], (char *)buf + 3);
	assert_string_equal(m.u.ctl.argv[0], "repo");
	assert_string_equal(m.u.ctl.argv[1], "");
	assert_string_equal(m.u.ctl.argv[2], "/srv/r");
	assert_true((uint8_t *)m.u.ctl.argv[2] + 7 <= buf + len);

	/* The frame no longer reads as that CTL... */
	assert_int_not_equal(ph_message_decode(PH_CTL, buf, len, &m), 0);
	/* ...and one with a NUL in its last argument is not rewritten. */
	(void)put_ctl_sample(buf);
	buf[len - 1] = '\0';
	memcpy(before, buf, len);
	assert_int_equal(ph_message_decode(PH_CTL, buf, len, &m), -EILSEQ);
	assert_memory_equal(buf, before, len);
	/* Cut short inside the last argument. */
	assert_int_equal(ph_message_decode(PH_CTL, buf, len - 1, &m), -EBADMSG);
	assert_memory_equal(buf, before, len);
	/* Whole arguments, then a byte too many. */
	len = put_ctl_sample(buf);
	buf[len] = 'x';
	memcpy(before, buf, len + 1);
	assert_int_equal(ph_message_decode(PH_CTL, buf, len + 1, &m), -EBADMSG);
	assert_memory_equal(buf, before, len + 1);
	free(before);
	free(buf);
}

static void
test_encode_limits(void **state)
{
	struct ph_msg	*m = calloc(1, sizeof(*m));
	uint8_t		*buf = malloc(FRAME_CAP + 16);
	static uint8_t	 big[PH_DATA_CHUNK + 1];
	static char	 arg[PH_MAX_PATH + 2];
	int		 i;

	(void)state;
	assert_non_null(m);
	assert_non_null(buf);

	m->type = PH_GET;
	memset(m->u.get.path, 'p', sizeof(m->u.get.path));	/* 4097 */
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EMSGSIZE);
	m->u.get.path[PH_MAX_PATH] = '\0';
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP),
	    PH_HDR_LEN + 8 + 4 + 2 + PH_MAX_PATH);
	m->u.get.flags = 0x4;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);

	/* Three 4096-byte arguments exceed the request limit together. */
	memset(arg, 'a', PH_MAX_PATH + 1);
	arg[PH_MAX_PATH] = '\0';
	arg[PH_MAX_PATH + 1] = '\0';
	memset(m, 0, sizeof(*m));
	m->type = PH_CTL;
	m->u.ctl.argc = 3;
	for (i = 0; i < 3; i++)
		m->u.ctl.argv[i] = arg;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EMSGSIZE);
	/* One is fine; one a byte longer is over the argument limit. */
	m->u.ctl.argc = 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP),
	    PH_HDR_LEN + 1 + 2 + 2 + PH_MAX_PATH);
	arg[PH_MAX_PATH] = 'a';
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EMSGSIZE);
	m->u.ctl.argv[0] = NULL;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	m->u.ctl.argc = PH_MAX_CTL_ARGS + 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EMSGSIZE);

	memset(m, 0, sizeof(*m));
	m->type = PH_DATA;
	m->u.data.bytes = big;
	m->u.data.len = 0;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	m->u.data.len = PH_DATA_CHUNK + 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP + 16), -EMSGSIZE);
	m->u.data.len = PH_DATA_CHUNK;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), FRAME_CAP);

	memset(m, 0, sizeof(*m));
	m->type = PH_ERROR;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	m->u.error.code = PH_ERR_MAX + 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	m->u.error.code = PH_ERR_IO;
	memset(m->u.error.message, 'e', PH_MAX_MESSAGE + 1);
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EMSGSIZE);

	memset(m, 0, sizeof(*m));
	m->type = PH_META;
	m->u.meta.ftype = 0;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	/* Without has_digest, stray digest bytes are sent as zeros. */
	m->u.meta.ftype = PH_FT_DIR;
	m->u.meta.sha256[3] = 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), PH_HDR_LEN + 54);
	for (i = 22; i < 54; i++)
		assert_int_equal(buf[PH_HDR_LEN + i], 0);
	/* The flags byte: bit 0 the digest, bit 1 stale; both are 0 or 1. */
	m->u.meta.stale = 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), PH_HDR_LEN + 54);
	assert_int_equal(buf[PH_HDR_LEN + 21], PH_DIGEST_STALE);
	m->u.meta.has_digest = 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), PH_HDR_LEN + 54);
	assert_int_equal(buf[PH_HDR_LEN + 21],
	    PH_DIGEST_VALID | PH_DIGEST_STALE);
	m->u.meta.stale = 2;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);

	memset(m, 0, sizeof(*m));
	m->type = PH_END;
	m->u.end.stale = 1;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), PH_HDR_LEN + 41);
	assert_int_equal(buf[PH_HDR_LEN + 8], PH_DIGEST_STALE);
	m->u.end.has_digest = 2;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);

	memset(m, 0, sizeof(*m));
	m->type = PH_CTL_REPLY;
	m->u.ctl_reply.body = big;
	m->u.ctl_reply.body_len = PH_MAX_PAYLOAD - 6;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), FRAME_CAP);
	m->u.ctl_reply.body_len = PH_MAX_PAYLOAD - 5;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP + 16), -EMSGSIZE);

	memset(m, 0, sizeof(*m));
	m->type = 0x42;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	m->type = PH_HELLO;
	assert_int_equal(ph_message_encode(m, buf, FRAME_CAP), -EINVAL);
	free(buf);
	free(m);
}

static void
test_names_and_texts(void **state)
{
	unsigned int	code;
	size_t		i;

	(void)state;
	for (i = 0; i < NTYPES; i++)
		assert_string_not_equal(ph_message_type_name(all_types[i]),
		    "?");
	assert_string_equal(ph_message_type_name(PH_GET), "GET");
	assert_string_equal(ph_message_type_name(PH_LIST_REPLY), "LIST_REPLY");
	assert_string_equal(ph_message_type_name(PH_DATA_ZSTD), "DATA_ZSTD");
	for (code = 0; code <= PH_ERR_MAX; code++) {
		assert_non_null(ph_err_name(code));
		assert_string_not_equal(ph_err_name(code), "UNKNOWN");
		assert_true(strlen(ph_err_text(code)) > 0);
	}
	assert_string_equal(ph_err_name(PH_ERR_NOT_FOUND), "NOT_FOUND");
	assert_string_equal(ph_err_name(PH_ERR_PATH_ESCAPE), "PATH_ESCAPE");
	assert_string_equal(ph_err_name(PH_ERR_INTERNAL), "INTERNAL");
	assert_string_equal(ph_err_name(PH_ERR_MAX + 1), "UNKNOWN");
	assert_string_equal(ph_err_name(0xffffffffu), "UNKNOWN");
	assert_non_null(ph_err_text(PH_ERR_MAX + 1));
}

static void
test_err_from_errno(void **state)
{
	(void)state;
	assert_int_equal(ph_err_from_errno(-ENOENT), PH_ERR_NOT_FOUND);
	assert_int_equal(ph_err_from_errno(-EACCES), PH_ERR_FORBIDDEN);
	assert_int_equal(ph_err_from_errno(-EPERM), PH_ERR_FORBIDDEN);
	assert_int_equal(ph_err_from_errno(-EXDEV), PH_ERR_PATH_ESCAPE);
	assert_int_equal(ph_err_from_errno(-ELOOP), PH_ERR_PATH_ESCAPE);
	assert_int_equal(ph_err_from_errno(-ENOTDIR), PH_ERR_NOT_DIR);
	assert_int_equal(ph_err_from_errno(-EIO), PH_ERR_IO);
	assert_int_equal(ph_err_from_errno(-EISDIR), PH_ERR_IO);
	assert_int_equal(ph_err_from_errno(-12345), PH_ERR_IO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_all),
		cmocka_unit_test(test_truncation_all),
		cmocka_unit_test(test_trailing_bytes),
		cmocka_unit_test(test_header_faults),
		cmocka_unit_test(test_type_limits),
		cmocka_unit_test(test_decode_unknown_type),
		cmocka_unit_test(test_oversized_length_fields),
		cmocka_unit_test(test_fields_out_of_range),
		cmocka_unit_test(test_list_reply_full),
		cmocka_unit_test(test_list_entry_put_errors),
		cmocka_unit_test(test_encode_small_buffer),
		cmocka_unit_test(test_ctl_args_in_frame),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_names_and_texts),
		cmocka_unit_test(test_err_from_errno),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
