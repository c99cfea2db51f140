/*
 * message.c: encoding and decoding of every Porthole message.
 *
 * Decoders go through the bounded reader only and insist that the payload
 * is consumed exactly. Encoders apply the same limits as the decoders, so
 * anything ph_message_encode() produces is accepted by ph_message_decode().
 */
#include <errno.h>
#include <string.h>

#include "proto.h"

#define MODE_MAX	07777u

/* True if len bytes at p are all zero. */
static bool
message_all_zero(const uint8_t *p, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (p[i] != 0)
			return false;
	return true;
}

static bool
message_ftype_valid(uint8_t ftype)
{
	return ftype == PH_FT_REGULAR || ftype == PH_FT_DIR ||
	    ftype == PH_FT_OTHER;
}

/*
 * A LIST entry name must be one path component that the normaliser keeps
 * as it is, so a client can join it to the listed directory without further
 * checks: not empty, no '/', not "." or "..", valid UTF-8, no control bytes.
 */
static bool
message_name_valid(const char *name)
{
	char	norm[PH_MAX_NAME + 1];
	size_t	n = strlen(name);

	if (n == 0 || n > PH_MAX_NAME || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0)
		return false;
	if (ph_path_normalize(name, n, norm, sizeof(norm)) != 0)
		return false;
	return strcmp(norm, name) == 0;
}

/*
 * Decodes the flags byte and digest shared by META and END. Bits other
 * than PH_DIGEST_VALID and PH_DIGEST_STALE are malformed, as they were for
 * every older peer, so a new bit needs a feature first.
 */
static int
message_get_digest(struct ph_reader *r, uint8_t *has_digest, uint8_t *stale,
    uint8_t sha[PH_SHA256_LEN])
{
	uint8_t	flags;
	int	rc;

	if ((rc = ph_reader_get_u8(r, &flags)) != 0)
		return rc;
	if ((rc = ph_reader_get_bytes(r, sha, PH_SHA256_LEN)) != 0)
		return rc;
	if ((flags & ~(PH_DIGEST_VALID | PH_DIGEST_STALE)) != 0)
		return -EPROTO;
	*has_digest = (flags & PH_DIGEST_VALID) != 0;
	*stale = (flags & PH_DIGEST_STALE) != 0;
	if (*has_digest == 0 && !message_all_zero(sha, PH_SHA256_LEN))
		return -EPROTO;
	return 0;
}

static int
message_decode_hello(struct ph_reader *r, struct ph_hello *h)
{
	int	rc;

	if ((rc = ph_reader_get_u16(r, &h->min_version)) != 0 ||
	    (rc = ph_reader_get_u16(r, &h->max_version)) != 0 ||
	    (rc = ph_reader_get_u32(r, &h->features)) != 0 ||
	    (rc = ph_reader_get_u32(r, &h->declared_peer)) != 0 ||
	    (rc = ph_reader_get_str(r, h->agent, sizeof(h->agent),
	    PH_MAX_MESSAGE)) != 0)
		return rc;
	/* A range that is empty or starts at 0 is malformed, not a mismatch. */
	if (h->min_version == 0 || h->min_version > h->max_version)
		return -EPROTO;
	return 0;
}

static int
message_decode_hello_ack(struct ph_reader *r, struct ph_hello_ack *h)
{
	int	rc;

	if ((rc = ph_reader_get_u16(r, &h->version)) != 0 ||
	    (rc = ph_reader_get_u32(r, &h->features)) != 0 ||
	    (rc = ph_reader_get_u32(r, &h->max_payload)) != 0 ||
	    (rc = ph_reader_get_str(r, h->agent, sizeof(h->agent),
	    PH_MAX_MESSAGE)) != 0)
		return rc;
	if (h->version == 0)
		return -EPROTO;
	return 0;
}

static int
message_decode_get(struct ph_reader *r, struct ph_get *g)
{
	int	rc;

	if ((rc = ph_reader_get_u64(r, &g->offset)) != 0 ||
	    (rc = ph_reader_get_u32(r, &g->flags)) != 0 ||
	    (rc = ph_reader_get_str(r, g->path, sizeof(g->path),
	    PH_MAX_PATH)) != 0)
		return rc;
	if ((g->flags & ~PH_GET_FLAGS) != 0)
		return -EPROTO;
	return 0;
}

static int
message_decode_meta(struct ph_reader *r, struct ph_meta *mt)
{
	uint64_t	mtime;
	int		rc;

	if ((rc = ph_reader_get_u64(r, &mt->size)) != 0 ||
	    (rc = ph_reader_get_u64(r, &mtime)) != 0 ||
	    (rc = ph_reader_get_u32(r, &mt->mode)) != 0 ||
	    (rc = ph_reader_get_u8(r, &mt->ftype)) != 0 ||
	    (rc = message_get_digest(r, &mt->has_digest, &mt->stale,
	    mt->sha256)) != 0)
		return rc;
	mt->mtime_ns = (int64_t)mtime;
	if (mt->mode > MODE_MAX || !message_ftype_valid(mt->ftype))
		return -EPROTO;
	return 0;
}

/*
 * Checks every entry now, so that ph_message_list_entry_next() cannot fail
 * later.
 */
static int
message_decode_list_reply(struct ph_reader *r, struct ph_list_reply *lr)
{
	struct ph_reader	 walk;
	struct ph_list_entry	 e;
	const uint8_t		*block;
	size_t			 left;
	uint16_t		 i;
	int			 rc;

	if ((rc = ph_reader_get_u64(r, &lr->next_cursor)) != 0 ||
	    (rc = ph_reader_get_u16(r, &lr->count)) != 0)
		return rc;
	if (lr->count > PH_MAX_LIST_ENTRIES)
		return -EMSGSIZE;
	/* An empty page that promises more would make the client loop. */
	if (lr->count == 0 && lr->next_cursor != 0)
		return -EPROTO;
	left = ph_reader_left(r);
	(void)ph_reader_get_ref(r, left, &block);
	ph_reader_init(&walk, block, left);
	for (i = 0; i < lr->count; i++) {
		if ((rc = ph_message_list_entry_next(&walk, &e)) < 0)
			return rc;
		if (rc == 0)
			return -EBADMSG;
	}
	if (ph_reader_left(&walk) != 0)
		return -EBADMSG;
	lr->entries = block;
	lr->entries_len = (uint32_t)left;
	return 0;
}

/*
 * Checks every argument, and that nothing follows them, first, so a refused
 * CTL leaves payload as it was, then turns each u16-prefixed argument into a C string where it lies: its
 * bytes move two to the left, over their length, and a NUL goes behind
 * them, which only ever writes over the argument's own bytes.
 */
static int
message_decode_ctl(struct ph_reader *r, uint8_t *payload, struct ph_ctl *c)
{
	const uint8_t	*p[PH_MAX_CTL_ARGS];
	uint16_t	 len[PH_MAX_CTL_ARGS], i;
	uint8_t		*dst;
	int		 rc;

	if ((rc = ph_reader_get_u8(r, &c->flags)) != 0 ||
	    (rc = ph_reader_get_u16(r, &c->argc)) != 0)
		return rc;
	if (c->argc > PH_MAX_CTL_ARGS)
		return -EMSGSIZE;
	if ((c->flags & ~PH_CTL_JSON) != 0)
		return -EPROTO;
	for (i = 0; i < c->argc; i++) {
		if ((rc = ph_reader_get_u16(r, &len[i])) != 0)
			return rc;
		if (len[i] > PH_MAX_PATH)
			return -EMSGSIZE;
		if ((rc = ph_reader_get_ref(r, len[i], &p[i])) != 0)
			return rc;
		if (memchr(p[i], '\0', len[i]) != NULL)
			return -EILSEQ;
	}
	/* Trailing bytes are refused before anything is rewritten. */
	if (ph_reader_left(r) != 0)
		return -EBADMSG;
	for (i = 0; i < c->argc; i++) {
		dst = payload + (p[i] - payload) - 2;
		memmove(dst, p[i], len[i]);
		dst[len[i]] = '\0';
		c->argv[i] = (const char *)dst;
	}
	return 0;
}

static int
message_decode_ctl_reply(struct ph_reader *r, struct ph_ctl_reply *cr)
{
	int	rc;

	if ((rc = ph_reader_get_u16(r, &cr->status)) != 0 ||
	    (rc = ph_reader_get_u32(r, &cr->body_len)) != 0)
		return rc;
	if (cr->body_len > PH_MAX_PAYLOAD)
		return -EMSGSIZE;
	if ((rc = ph_reader_get_ref(r, cr->body_len, &cr->body)) != 0)
		return rc;
	if (cr->status > PH_ERR_MAX)
		return -EPROTO;
	return 0;
}

/* Dispatches on type; the caller has zeroed the member to be filled. */
static int
message_decode_payload(uint8_t type, struct ph_reader *r, uint8_t *payload,
    struct ph_msg *m)
{
	int	rc;

	switch (type) {
	case PH_HELLO:
		return message_decode_hello(r, &m->u.hello);
	case PH_GET:
		return message_decode_get(r, &m->u.get);
	case PH_STAT:
		return ph_reader_get_str(r, m->u.stat.path,
		    sizeof(m->u.stat.path), PH_MAX_PATH);
	case PH_LIST:
		if ((rc = ph_reader_get_u64(r, &m->u.list.cursor)) != 0)
			return rc;
		return ph_reader_get_str(r, m->u.list.path,
		    sizeof(m->u.list.path), PH_MAX_PATH);
	case PH_PING:
	case PH_PONG:
		return ph_reader_get_u64(r, &m->u.ping_nonce);
	case PH_CTL:
		return message_decode_ctl(r, payload, &m->u.ctl);
	case PH_HELLO_ACK:
		return message_decode_hello_ack(r, &m->u.hello_ack);
	case PH_QUEUED:
		return ph_reader_get_u32(r, &m->u.queued_position);
	case PH_META:
		return message_decode_meta(r, &m->u.meta);
	case PH_DATA:
	case PH_DATA_ZSTD:
		/* An empty data frame carries nothing and is never sent. */
		if (ph_reader_left(r) == 0)
			return -EBADMSG;
		if (ph_reader_left(r) > PH_DATA_CHUNK)
			return -EMSGSIZE;
		m->u.data.len = (uint32_t)ph_reader_left(r);
		return ph_reader_get_ref(r, m->u.data.len, &m->u.data.bytes);
	case PH_END:
		if ((rc = ph_reader_get_u64(r, &m->u.end.bytes)) != 0)
			return rc;
		return message_get_digest(r, &m->u.end.has_digest,
		    &m->u.end.stale, m->u.end.sha256);
	case PH_ERROR:
		if ((rc = ph_reader_get_u16(r, &m->u.error.code)) != 0 ||
		    (rc = ph_reader_get_str(r, m->u.error.message,
		    sizeof(m->u.error.message), PH_MAX_MESSAGE)) != 0)
			return rc;
		if (m->u.error.code == PH_OK || m->u.error.code > PH_ERR_MAX)
			return -EPROTO;
		return 0;
	case PH_LIST_REPLY:
		return message_decode_list_reply(r, &m->u.list_reply);
	case PH_PATH:
		if ((rc = ph_reader_get_u16(r, &m->u.path.entry)) != 0)
			return rc;
		return ph_reader_get_str(r, m->u.path.path,
		    sizeof(m->u.path.path), PH_MAX_PATH);
	case PH_CTL_REPLY:
		return message_decode_ctl_reply(r, &m->u.ctl_reply);
	default:
		return -EPROTO;
	}
}

/* Size of the union member that type uses, or 0 for an unknown type. */
static size_t
message_member_size(uint8_t type)
{
	struct ph_msg	*m = NULL;

	switch (type) {
	case PH_HELLO:		return sizeof(m->u.hello);
	case PH_GET:		return sizeof(m->u.get);
	case PH_STAT:		return sizeof(m->u.stat);
	case PH_LIST:		return sizeof(m->u.list);
	case PH_PING:
	case PH_PONG:		return sizeof(m->u.ping_nonce);
	case PH_CTL:		return sizeof(m->u.ctl);
	case PH_HELLO_ACK:	return sizeof(m->u.hello_ack);
	case PH_QUEUED:		return sizeof(m->u.queued_position);
	case PH_META:		return sizeof(m->u.meta);
	case PH_DATA:
	case PH_DATA_ZSTD:	return sizeof(m->u.data);
	case PH_END:		return sizeof(m->u.end);
	case PH_ERROR:		return sizeof(m->u.error);
	case PH_LIST_REPLY:	return sizeof(m->u.list_reply);
	case PH_PATH:		return sizeof(m->u.path);
	case PH_CTL_REPLY:	return sizeof(m->u.ctl_reply);
	default:		return 0;
	}
}

/*
 * Only the member for this type is cleared: struct ph_msg holds four path
 * buffers, and clearing all of it for every DATA frame would be wasted
 * work.
 */
int
ph_message_decode(uint8_t type, uint8_t *payload, size_t len, struct ph_msg *m)
{
	struct ph_reader	r;
	uint8_t			hdr[PH_HDR_LEN];
	struct ph_header	h;
	size_t			msize;
	int			rc;

	m->type = 0;
	if ((msize = message_member_size(type)) == 0)
		return -EPROTO;
	memset(&m->u, 0, msize);
	if (len > UINT32_MAX)
		return -EMSGSIZE;
	/* The same per-type ceiling as the header check. */
	ph_frame_header_write(hdr, type, (uint32_t)len);
	if ((rc = ph_frame_header_parse(hdr, sizeof(hdr), &h)) != 0)
		return rc;
	ph_reader_init(&r, payload, len);
	if ((rc = message_decode_payload(type, &r, payload, m)) != 0)
		goto fail;
	if (ph_reader_left(&r) != 0) {
		rc = -EBADMSG;
		goto fail;
	}
	m->type = type;
	return 0;
fail:
	memset(&m->u, 0, msize);
	return rc;
}

/* Puts a string after checking it against its field's maximum. */
static int
message_put_str_max(struct ph_writer *w, const char *s, size_t cap, size_t max)
{
	size_t	n = strnlen(s, cap);

	if (n >= cap || n > max)
		return -EMSGSIZE;
	return ph_writer_put_str(w, s);
}

/* Writes the flags byte and digest of META and END. */
static int
message_put_digest(struct ph_writer *w, uint8_t has_digest, uint8_t stale,
    const uint8_t sha[PH_SHA256_LEN])
{
	static const uint8_t	zero[PH_SHA256_LEN];
	int			rc;

	if (has_digest > 1 || stale > 1)
		return -EINVAL;
	if ((rc = ph_writer_put_u8(w,
	    (uint8_t)((has_digest ? PH_DIGEST_VALID : 0) |
	    (stale ? PH_DIGEST_STALE : 0)))) != 0)
		return rc;
	return ph_writer_put_bytes(w, has_digest ? sha : zero, PH_SHA256_LEN);
}

/* Checks the fields that have a range before anything is written. */
static int
message_encode_check(const struct ph_msg *m)
{
	const struct ph_list_reply	*lr;
	struct ph_reader		 r;
	struct ph_list_entry		 e;
	uint16_t			 i;
	int				 rc;

	switch (m->type) {
	case PH_HELLO:
		if (m->u.hello.min_version == 0 ||
		    m->u.hello.min_version > m->u.hello.max_version)
			return -EINVAL;
		break;
	case PH_HELLO_ACK:
		if (m->u.hello_ack.version == 0)
			return -EINVAL;
		break;
	case PH_GET:
		if ((m->u.get.flags & ~PH_GET_FLAGS) != 0)
			return -EINVAL;
		break;
	case PH_CTL:
		if (m->u.ctl.argc > PH_MAX_CTL_ARGS)
			return -EMSGSIZE;
		if ((m->u.ctl.flags & ~PH_CTL_JSON) != 0)
			return -EINVAL;
		break;
	case PH_META:
		if (m->u.meta.mode > MODE_MAX ||
		    !message_ftype_valid(m->u.meta.ftype) ||
		    m->u.meta.has_digest > 1 || m->u.meta.stale > 1)
			return -EINVAL;
		break;
	case PH_END:
		if (m->u.end.has_digest > 1 || m->u.end.stale > 1)
			return -EINVAL;
		break;
	case PH_DATA:
	case PH_DATA_ZSTD:
		if (m->u.data.len == 0 || m->u.data.bytes == NULL)
			return -EINVAL;
		if (m->u.data.len > PH_DATA_CHUNK)
			return -EMSGSIZE;
		break;
	case PH_ERROR:
		if (m->u.error.code == PH_OK || m->u.error.code > PH_ERR_MAX)
			return -EINVAL;
		break;
	case PH_LIST_REPLY:
		lr = &m->u.list_reply;
		if (lr->count > PH_MAX_LIST_ENTRIES)
			return -EMSGSIZE;
		if (lr->count == 0 && lr->next_cursor != 0)
			return -EINVAL;
		if (lr->entries == NULL && lr->entries_len != 0)
			return -EINVAL;
		/* The block must hold exactly count valid entries. */
		ph_reader_init(&r, lr->entries, lr->entries_len);
		for (i = 0; i < lr->count; i++) {
			if ((rc = ph_message_list_entry_next(&r, &e)) != 1)
				return -EINVAL;
		}
		if (ph_reader_left(&r) != 0)
			return -EINVAL;
		break;
	case PH_CTL_REPLY:
		if (m->u.ctl_reply.status > PH_ERR_MAX)
			return -EINVAL;
		if (m->u.ctl_reply.body_len > PH_MAX_PAYLOAD)
			return -EMSGSIZE;
		if (m->u.ctl_reply.body == NULL && m->u.ctl_reply.body_len != 0)
			return -EINVAL;
		break;
	case PH_STAT:
	case PH_LIST:
	case PH_PING:
	case PH_PONG:
	case PH_QUEUED:
	case PH_PATH:
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

/* Writes the payload of m; limits were checked by message_encode_check(). */
static int
message_encode_payload(const struct ph_msg *m, struct ph_writer *w)
{
	uint16_t	i;
	int		rc;

	switch (m->type) {
	case PH_HELLO:
		if ((rc = ph_writer_put_u16(w, m->u.hello.min_version)) != 0 ||
		    (rc = ph_writer_put_u16(w, m->u.hello.max_version)) != 0 ||
		    (rc = ph_writer_put_u32(w, m->u.hello.features)) != 0 ||
		    (rc = ph_writer_put_u32(w, m->u.hello.declared_peer)) != 0)
			return rc;
		return message_put_str_max(w, m->u.hello.agent,
		    sizeof(m->u.hello.agent), PH_MAX_MESSAGE);
	case PH_GET:
		if ((rc = ph_writer_put_u64(w, m->u.get.offset)) != 0 ||
		    (rc = ph_writer_put_u32(w, m->u.get.flags)) != 0)
			return rc;
		return message_put_str_max(w, m->u.get.path,
		    sizeof(m->u.get.path), PH_MAX_PATH);
	case PH_STAT:
		return message_put_str_max(w, m->u.stat.path,
		    sizeof(m->u.stat.path), PH_MAX_PATH);
	case PH_LIST:
		if ((rc = ph_writer_put_u64(w, m->u.list.cursor)) != 0)
			return rc;
		return message_put_str_max(w, m->u.list.path,
		    sizeof(m->u.list.path), PH_MAX_PATH);
	case PH_PING:
	case PH_PONG:
		return ph_writer_put_u64(w, m->u.ping_nonce);
	case PH_CTL:
		if ((rc = ph_writer_put_u8(w, m->u.ctl.flags)) != 0 ||
		    (rc = ph_writer_put_u16(w, m->u.ctl.argc)) != 0)
			return rc;
		for (i = 0; i < m->u.ctl.argc; i++) {
			if (m->u.ctl.argv[i] == NULL)
				return -EINVAL;
			rc = message_put_str_max(w, m->u.ctl.argv[i],
			    PH_MAX_PATH + 1, PH_MAX_PATH);
			if (rc != 0)
				return rc;
		}
		return 0;
	case PH_HELLO_ACK:
		if ((rc = ph_writer_put_u16(w, m->u.hello_ack.version)) != 0 ||
		    (rc = ph_writer_put_u32(w, m->u.hello_ack.features)) != 0 ||
		    (rc = ph_writer_put_u32(w,
		    m->u.hello_ack.max_payload)) != 0)
			return rc;
		return message_put_str_max(w, m->u.hello_ack.agent,
		    sizeof(m->u.hello_ack.agent), PH_MAX_MESSAGE);
	case PH_QUEUED:
		return ph_writer_put_u32(w, m->u.queued_position);
	case PH_META:
		if ((rc = ph_writer_put_u64(w, m->u.meta.size)) != 0 ||
		    (rc = ph_writer_put_u64(w,
		    (uint64_t)m->u.meta.mtime_ns)) != 0 ||
		    (rc = ph_writer_put_u32(w, m->u.meta.mode)) != 0 ||
		    (rc = ph_writer_put_u8(w, m->u.meta.ftype)) != 0)
			return rc;
		return message_put_digest(w, m->u.meta.has_digest,
		    m->u.meta.stale, m->u.meta.sha256);
	case PH_DATA:
	case PH_DATA_ZSTD:
		return ph_writer_put_bytes(w, m->u.data.bytes, m->u.data.len);
	case PH_END:
		if ((rc = ph_writer_put_u64(w, m->u.end.bytes)) != 0)
			return rc;
		return message_put_digest(w, m->u.end.has_digest,
		    m->u.end.stale, m->u.end.sha256);
	case PH_ERROR:
		if ((rc = ph_writer_put_u16(w, m->u.error.code)) != 0)
			return rc;
		return message_put_str_max(w, m->u.error.message,
		    sizeof(m->u.error.message), PH_MAX_MESSAGE);
	case PH_LIST_REPLY:
		if ((rc = ph_writer_put_u64(w,
		    m->u.list_reply.next_cursor)) != 0 ||
		    (rc = ph_writer_put_u16(w, m->u.list_reply.count)) != 0)
			return rc;
		return ph_writer_put_bytes(w, m->u.list_reply.entries,
		    m->u.list_reply.entries_len);
	case PH_PATH:
		if ((rc = ph_writer_put_u16(w, m->u.path.entry)) != 0)
			return rc;
		return message_put_str_max(w, m->u.path.path,
		    sizeof(m->u.path.path), PH_MAX_PATH);
	case PH_CTL_REPLY:
		if ((rc = ph_writer_put_u16(w, m->u.ctl_reply.status)) != 0 ||
		    (rc = ph_writer_put_u32(w, m->u.ctl_reply.body_len)) != 0)
			return rc;
		return ph_writer_put_bytes(w, m->u.ctl_reply.body,
		    m->u.ctl_reply.body_len);
	default:
		return -EINVAL;
	}
}

/*
 * The payload is written first and the header last, once its length is
 * known; the header parser then applies the per-type ceiling, which catches
 * a CTL whose arguments together exceed the request limit.
 */
ssize_t
ph_message_encode(const struct ph_msg *m, uint8_t *buf, size_t cap)
{
	struct ph_writer	w;
	struct ph_header	h;
	uint8_t			hdr[PH_HDR_LEN];
	int			rc;

	if ((rc = message_encode_check(m)) != 0)
		return rc;
	if (buf == NULL || cap < PH_HDR_LEN)
		return -ENOBUFS;
	ph_writer_init(&w, buf + PH_HDR_LEN, cap - PH_HDR_LEN);
	if ((rc = message_encode_payload(m, &w)) != 0)
		return rc;
	if (w.off > PH_MAX_PAYLOAD)
		return -EMSGSIZE;
	ph_frame_header_write(hdr, m->type, (uint32_t)w.off);
	if ((rc = ph_frame_header_parse(hdr, sizeof(hdr), &h)) != 0)
		return rc == -EMSGSIZE ? -EMSGSIZE : -EINVAL;
	memcpy(buf, hdr, sizeof(hdr));
	return (ssize_t)(PH_HDR_LEN + w.off);
}

/* Reads one entry through a copy of r, so a failure leaves r unchanged. */
int
ph_message_list_entry_next(struct ph_reader *r, struct ph_list_entry *e)
{
	struct ph_reader	t = *r;
	uint64_t		mtime;
	int			rc;

	memset(e, 0, sizeof(*e));
	if (ph_reader_left(&t) == 0)
		return 0;
	if ((rc = ph_reader_get_u8(&t, &e->ftype)) != 0 ||
	    (rc = ph_reader_get_u64(&t, &e->size)) != 0 ||
	    (rc = ph_reader_get_u64(&t, &mtime)) != 0 ||
	    (rc = ph_reader_get_u32(&t, &e->mode)) != 0 ||
	    (rc = ph_reader_get_str(&t, e->name, sizeof(e->name),
	    PH_MAX_NAME)) != 0)
		goto fail;
	e->mtime_ns = (int64_t)mtime;
	if (!message_ftype_valid(e->ftype) || e->mode > MODE_MAX ||
	    !message_name_valid(e->name)) {
		rc = -EPROTO;
		goto fail;
	}
	*r = t;
	return 1;
fail:
	memset(e, 0, sizeof(*e));
	return rc;
}

/* Writes into a copy of w, so a failure leaves w unchanged. */
int
ph_message_list_entry_put(struct ph_writer *w, const struct ph_list_entry *e)
{
	struct ph_writer	t = *w;
	size_t			n = strnlen(e->name, sizeof(e->name));
	int			rc;

	if (n > PH_MAX_NAME)
		return -EMSGSIZE;
	if (!message_ftype_valid(e->ftype) || e->mode > MODE_MAX ||
	    !message_name_valid(e->name))
		return -EINVAL;
	if ((rc = ph_writer_put_u8(&t, e->ftype)) != 0 ||
	    (rc = ph_writer_put_u64(&t, e->size)) != 0 ||
	    (rc = ph_writer_put_u64(&t, (uint64_t)e->mtime_ns)) != 0 ||
	    (rc = ph_writer_put_u32(&t, e->mode)) != 0 ||
	    (rc = ph_writer_put_str(&t, e->name)) != 0)
		return rc;
	*w = t;
	return 0;
}

const char *
ph_message_type_name(uint8_t type)
{
	switch (type) {
	case PH_HELLO:		return "HELLO";
	case PH_GET:		return "GET";
	case PH_STAT:		return "STAT";
	case PH_LIST:		return "LIST";
	case PH_PING:		return "PING";
	case PH_CTL:		return "CTL";
	case PH_HELLO_ACK:	return "HELLO_ACK";
	case PH_QUEUED:		return "QUEUED";
	case PH_META:		return "META";
	case PH_DATA:		return "DATA";
	case PH_DATA_ZSTD:	return "DATA_ZSTD";
	case PH_END:		return "END";
	case PH_ERROR:		return "ERROR";
	case PH_LIST_REPLY:	return "LIST_REPLY";
	case PH_PONG:		return "PONG";
	case PH_PATH:		return "PATH";
	case PH_CTL_REPLY:	return "CTL_REPLY";
	default:		return "?";
	}
}
