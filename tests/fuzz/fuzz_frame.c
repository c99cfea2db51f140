/*
 * fuzz_frame.c: libFuzzer harness for every decoder in the protocol
 * library.
 *
 * The input is treated as a frame (header, then payload), as a stream of
 * frames fed to the framer in pieces, as a bare payload of every type, as
 * a path and as an endpoint string. Beyond not crashing,
 * whatever decodes must encode back to the same bytes, and whatever the
 * normaliser accepts must be a fixed point of it; a violation aborts, which
 * libFuzzer reports as a crash. The framer must cut the stream where a
 * walk of the whole input with ph_frame_header_parse() does, however it is fed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with a message: the fuzzer keeps the input that got here. */
static void
violated(const char *what, uint8_t type)
{
	fprintf(stderr, "fuzz_frame: %s (type 0x%02x)\n", what, type);
	abort();
}

/*
 * Walks a decoded LIST_REPLY; ph_message_decode promised every entry is valid.
 */
static void
walk_entries(const struct ph_list_reply *lr)
{
	struct ph_reader	r;
	struct ph_list_entry	e;
	unsigned int		n = 0;
	int			rc;

	ph_reader_init(&r, lr->entries, lr->entries_len);
	while ((rc = ph_message_list_entry_next(&r, &e)) == 1) {
		if (strlen(e.name) == 0 || strchr(e.name, '/') != NULL)
			violated("bad entry name accepted", PH_LIST_REPLY);
		n++;
	}
	if (rc != 0 || n != lr->count)
		violated("entry walk disagrees with decode", PH_LIST_REPLY);
}

/*
 * The flag fields a decoder accepted hold only defined bits, split into
 * fields of 0 or 1 (META and END: digest and stale), so that an old peer's
 * has_digest byte and a new peer's flags byte read the same.
 */
static void
check_flags(const struct ph_msg *m)
{
	uint8_t	has, stale;

	switch (m->type) {
	case PH_GET:
		if ((m->u.get.flags & ~PH_GET_FLAGS) != 0)
			violated("undefined GET flag accepted", m->type);
		return;
	case PH_META:
		has = m->u.meta.has_digest;
		stale = m->u.meta.stale;
		break;
	case PH_END:
		has = m->u.end.has_digest;
		stale = m->u.end.stale;
		break;
	default:
		return;
	}
	if (has > 1 || stale > 1)
		violated("digest flags not split into 0/1 fields", m->type);
}

/* CTL arguments are C strings inside the frame they were decoded from. */
static void
check_ctl_args(const struct ph_ctl *c, const uint8_t *in, size_t len)
{
	const uint8_t	*a;

	for (uint16_t i = 0; i < c->argc; i++) {
		a = (const uint8_t *)c->argv[i];
		if (a == NULL || a < in || a >= in + len ||
		    strnlen(c->argv[i], (size_t)(in + len - a)) ==
		    (size_t)(in + len - a) || strlen(c->argv[i]) > PH_MAX_PATH)
			violated("CTL argument not a string in the frame",
			    PH_CTL);
	}
}

/*
 * Decodes a copy of payload (in has room for len bytes: a CTL is decoded
 * in place) as type and, if it decodes, checks the round trip against the
 * original bytes. A refused payload must be left as it was.
 */
static void
check_decode(uint8_t type, const uint8_t *payload, size_t len,
    struct ph_msg *m, uint8_t *in, uint8_t *out, size_t outcap)
{
	uint8_t	hdr[PH_HDR_LEN];
	ssize_t	n;

	if (len > 0)
		memcpy(in, payload, len);
	if (ph_message_decode(type, in, len, m) != 0) {
		if (m->type != 0)
			violated("failed decode left a type", type);
		if (len > 0 && memcmp(in, payload, len) != 0)
			violated("failed decode changed the payload", type);
		return;
	}
	if (type == PH_CTL)
		check_ctl_args(&m->u.ctl, in, len);
	if (m->type != type)
		violated("decode set the wrong type", type);
	(void)ph_message_type_name(type);
	if (type == PH_LIST_REPLY)
		walk_entries(&m->u.list_reply);
	if (type == PH_ERROR)
		(void)ph_err_text(m->u.error.code);
	check_flags(m);
	n = ph_message_encode(m, out, outcap);
	if (n < 0)
		violated("decoded message does not encode in its own size",
		    type);
	ph_frame_header_write(hdr, type, (uint32_t)len);
	if ((size_t)n != PH_HDR_LEN + len ||
	    memcmp(out, hdr, PH_HDR_LEN) != 0 ||
	    (len > 0 && memcmp(out + PH_HDR_LEN, payload, len) != 0))
		violated("re-encoding differs from the input", type);
}

/* The framer's buffer: small, so that large frames go header first. */
#define FUZZ_FRAMER_CAP	(PH_HDR_LEN + 4096)

/*
 * Where the frame at off of the whole input ends, as the framer must see
 * it: 1 with *h filled for a whole frame, 0 when the input ends first,
 * or the header's error.
 */
static int
ref_frame(const uint8_t *data, size_t size, size_t off, struct ph_header *h)
{
	int	rc;

	if ((rc = ph_frame_header_parse(data + off, size - off, h)) == -EAGAIN)
		return 0;
	if (rc < 0)
		return rc;
	return size - off - PH_HDR_LEN >= h->length ? 1 : 0;
}

/*
 * Feeds the input to a framer in pieces of a size the first byte picks and
 * checks every frame, header and payload piece it hands out against the
 * walk of the whole input. Frames that do not fit its buffer, and DATA
 * frames when the first byte's top bit is set, are taken header first.
 */
static void
check_framer(const uint8_t *data, size_t size, struct ph_msg *m,
    uint8_t *in, uint8_t *out, size_t outcap)
{
	struct ph_framer	 f;
	struct ph_header	 h, rh;
	const uint8_t		*p;
	uint8_t			*buf, *fp;
	size_t			 step, fed = 0, off = 0, body_end = 0, n;
	bool			 stream;
	int			 r;

	if (size == 0 || (buf = malloc(FUZZ_FRAMER_CAP)) == NULL)
		return;
	step = (size_t)(data[0] & 0x7f) + 1;
	stream = (data[0] & 0x80) != 0;
	ph_framer_init(&f, buf, FUZZ_FRAMER_CAP);
	for (;;) {
		if (ph_framer_body_left(&f) > 0) {
			while ((n = ph_framer_body(&f, SIZE_MAX, &p)) > 0) {
				if (memcmp(p, data + off, n) != 0)
					violated("framer body bytes differ",
					    PH_DATA);
				off += n;
			}
			if (ph_framer_body_left(&f) != body_end - off)
				violated("framer body count is off", 0);
			if (off == body_end)
				continue;
		} else if ((r = ph_framer_header(&f, &h)) == 0 &&
		    ((stream && h.type == PH_DATA) ||
		    PH_HDR_LEN + (size_t)h.length > FUZZ_FRAMER_CAP)) {
			if (ph_frame_header_parse(data + off, size - off,
			    &rh) != 0 ||
			    rh.type != h.type || rh.length != h.length ||
			    ph_framer_take_header(&f, &h) != 0)
				violated("framer header differs", h.type);
			off += PH_HDR_LEN;
			body_end = off + h.length;
			continue;
		} else if ((r = ph_framer_next(&f, &h, &fp)) == 1) {
			if (ref_frame(data, size, off, &rh) != 1 ||
			    rh.type != h.type || rh.length != h.length ||
			    fp < buf || fp + h.length > buf + FUZZ_FRAMER_CAP ||
			    memcmp(fp, data + off + PH_HDR_LEN, h.length) != 0)
				violated("framer frame differs", h.type);
			check_decode(h.type, fp, h.length, m, in, out, outcap);
			off += PH_HDR_LEN + h.length;
			continue;
		} else if (r < 0) {
			if (ref_frame(data, size, off, &rh) != r)
				violated("framer refused a different frame",
				    h.type);
			break;
		}
		if (fed == size) {
			if (ph_framer_body_left(&f) == 0 &&
			    ref_frame(data, size, off, &rh) != 0)
				violated("framer waits for a whole frame", 0);
			if (ph_framer_pending(&f) != size - off)
				violated("framer lost bytes", 0);
			break;
		}
		n = size - fed < step ? size - fed : step;
		if ((n = ph_framer_feed(&f, data + fed, n)) == 0)
			violated("framer full without a frame", 0);
		fed += n;
	}
	free(buf);
}

/* The normaliser's output must be a normal form and a fixed point. */
static void
check_path(const uint8_t *data, size_t size)
{
	char	out[PH_MAX_PATH + 1], again[PH_MAX_PATH + 1];
	size_t	n;

	if (ph_path_normalize((const char *)data, size, out, sizeof(out)) != 0)
		return;
	n = strlen(out);
	if (n == 0 || n > size + 1 || out[0] == '/' || out[n - 1] == '/' ||
	    strstr(out, "//") != NULL)
		violated("path result not in normal form", 0);
	if (ph_path_normalize(out, n, again, sizeof(again)) != 0 ||
	    strcmp(out, again) != 0)
		violated("path result not a fixed point", 0);
	if (strcmp(out, "..") == 0 || strncmp(out, "../", 3) == 0 ||
	    strstr(out, "/../") != NULL ||
	    (n >= 3 && strcmp(out + n - 3, "/..") == 0))
		violated("path result climbs", 0);
}

/* Endpoint strings: what parses must format and parse to the same thing. */
static void
check_endpoint(const uint8_t *data, size_t size)
{
	struct ph_endpoint	 ep, ep2;
	char			*s, buf[160];
	uint64_t		 v;

	if ((s = malloc(size + 1)) == NULL)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (ph_endpoint_parse(s, &ep) == 0) {
		if (ph_endpoint_format(&ep, buf, sizeof(buf)) != 0 ||
		    ph_endpoint_parse(buf, &ep2) != 0 ||
		    memcmp(&ep, &ep2, sizeof(ep)) != 0)
			violated("endpoint does not round trip", 0);
	}
	(void)ph_util_parse_size(s, &v);
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ph_msg		 msg, *m = &msg;
	struct ph_header	 h;
	uint8_t			*in, *out;
	const uint8_t		*payload;
	size_t			 plen, outcap;
	unsigned int		 t;

	/* A round trip reproduces the input, so this much room is enough. */
	outcap = PH_HDR_LEN + size;
	if ((out = malloc(outcap)) == NULL)
		return 0;
	/* Payloads are decoded from a copy: a CTL is decoded in place. */
	if ((in = malloc(size + 1)) == NULL) {
		free(out);
		return 0;
	}

	/* As a frame: header first, then the payload it announces. */
	if (ph_frame_header_parse(data, size, &h) == 0 &&
	    h.length <= size - PH_HDR_LEN)
		check_decode(h.type, data + PH_HDR_LEN, h.length, m, in, out,
		    outcap);

	/* As a stream of frames, fed in pieces. */
	check_framer(data, size, m, in, out, outcap);

	/* As a bare payload after the header bytes, for every type value. */
	payload = size > PH_HDR_LEN ? data + PH_HDR_LEN : data;
	plen = size > PH_HDR_LEN ? size - PH_HDR_LEN : size;
	for (t = 0; t <= 0xff; t++)
		check_decode((uint8_t)t, payload, plen, m, in, out, outcap);

	check_path(data, size);
	check_endpoint(data, size);
	free(in);
	free(out);
	return 0;
}
