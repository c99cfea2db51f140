/*
 * frame.c: the 8-byte frame header and the payload limit of each type.
 *
 * The limit check happens here, on the header alone, so that a reader can
 * refuse an oversized frame before it allocates or reads the payload.
 */
#include <errno.h>

#include "proto.h"

/* Bytes a str field can take on the wire: the u16 length and the bytes. */
#define STR_MAX(n)	(2 + (n))

/* The largest LIST_REPLY entry: ftype, size, mtime, mode, name. */
#define LIST_ENTRY_MAX	(1 + 8 + 8 + 4 + STR_MAX(PH_MAX_NAME))

/*
 * The largest payload a valid frame of this type can have, or 0 for a type
 * we do not know. Fixed-size messages get their exact size, so that junk is
 * refused before it is read; none of these is larger than the request or
 * reply ceiling.
 */
static uint32_t
frame_type_max_payload(uint8_t type)
{
	uint32_t	max;

	switch (type) {
	case PH_HELLO:
		max = 2 + 2 + 4 + 4 + STR_MAX(PH_MAX_MESSAGE);
		break;
	case PH_GET:
		max = 8 + 4 + STR_MAX(PH_MAX_PATH);
		break;
	case PH_STAT:
		max = STR_MAX(PH_MAX_PATH);
		break;
	case PH_LIST:
		max = 8 + STR_MAX(PH_MAX_PATH);
		break;
	case PH_PING:
	case PH_PONG:
		max = 8;
		break;
	case PH_CTL:
		max = PH_MAX_REQUEST_PAYLOAD;
		break;
	case PH_HELLO_ACK:
		max = 2 + 4 + 4 + STR_MAX(PH_MAX_MESSAGE);
		break;
	case PH_QUEUED:
		max = 4;
		break;
	case PH_META:
		max = 8 + 8 + 4 + 1 + 1 + PH_SHA256_LEN;
		break;
	case PH_DATA:
	case PH_DATA_ZSTD:
		max = PH_DATA_CHUNK;
		break;
	case PH_END:
		max = 8 + 1 + PH_SHA256_LEN;
		break;
	case PH_ERROR:
		max = 2 + STR_MAX(PH_MAX_MESSAGE);
		break;
	case PH_LIST_REPLY:
		max = 8 + 2 + PH_MAX_LIST_ENTRIES * LIST_ENTRY_MAX;
		break;
	case PH_PATH:
		max = 2 + STR_MAX(PH_MAX_PATH);
		break;
	case PH_CTL_REPLY:
		max = PH_MAX_PAYLOAD;
		break;
	default:
		return 0;
	}
	if (type < 0x80 && max > PH_MAX_REQUEST_PAYLOAD)
		max = PH_MAX_REQUEST_PAYLOAD;
	if (max > PH_MAX_PAYLOAD)
		max = PH_MAX_PAYLOAD;
	return max;
}

void
ph_frame_header_write(uint8_t hdr[PH_HDR_LEN], uint8_t type,
    uint32_t payload_len)
{
	hdr[0] = PH_MAGIC0;
	hdr[1] = PH_MAGIC1;
	hdr[2] = PH_PROTO_VERSION;
	hdr[3] = type;
	hdr[4] = (uint8_t)(payload_len >> 24);
	hdr[5] = (uint8_t)(payload_len >> 16);
	hdr[6] = (uint8_t)(payload_len >> 8);
	hdr[7] = (uint8_t)payload_len;
}

/*
 * Checks magic, version, type and length in that order, so the most basic
 * fault is the one reported.
 */
int
ph_frame_header_parse(const uint8_t *buf, size_t len, struct ph_header *h)
{
	struct ph_reader	r;
	uint8_t			m0, m1, version, type;
	uint32_t		plen, max;

	h->version = 0;
	h->type = 0;
	h->length = 0;
	if (buf == NULL || len < PH_HDR_LEN)
		return -EAGAIN;
	ph_reader_init(&r, buf, PH_HDR_LEN);
	(void)ph_reader_get_u8(&r, &m0);
	(void)ph_reader_get_u8(&r, &m1);
	(void)ph_reader_get_u8(&r, &version);
	(void)ph_reader_get_u8(&r, &type);
	(void)ph_reader_get_u32(&r, &plen);
	if (m0 != PH_MAGIC0 || m1 != PH_MAGIC1)
		return -EPROTO;
	if (version < PH_PROTO_MIN_VERSION || version > PH_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if ((max = frame_type_max_payload(type)) == 0)
		return -EPROTO;
	if (plen > max)
		return -EMSGSIZE;
	h->version = version;
	h->type = type;
	h->length = plen;
	return 0;
}
