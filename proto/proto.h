/*
 * proto.h: the Porthole wire protocol library.
 *
 * Framing (the one incremental framer every reader uses), messages, path
 * normalisation, endpoint strings and the bounded reader that every decoder
 * goes through. proto/PROTOCOL.md documents the bytes;
 * tests/vectors/messages.txt pins them.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure. Nothing here logs, allocates on behalf of the caller
 * without saying so, or keeps global state.
 */
#ifndef PORTHOLE_PROTO_H
#define PORTHOLE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

/*
 * Bump PH_PROTO_VERSION whenever the bytes on the wire change: a field, a
 * message, a limit or a meaning. Update proto/PROTOCOL.md and the vectors in
 * the same commit.
 */
#define PH_PROTO_VERSION	1
#define PH_PROTO_MIN_VERSION	1

#define PH_MAGIC0		0x50	/* 'P' */
#define PH_MAGIC1		0x48	/* 'H' */
#define PH_HDR_LEN		8

/* Limits. Each is checked before anything is allocated. */
#define PH_MAX_PAYLOAD		(1024 * 1024)	/* any frame's payload */
#define PH_MAX_REQUEST_PAYLOAD	8192		/* HELLO, GET, STAT, LIST, PING, CTL */
#define PH_DATA_CHUNK		(1024 * 1024)	/* file bytes per DATA frame, and
						   decoded bytes per DATA_ZSTD frame */
#define PH_MAX_PATH		4096		/* path bytes on the wire */
#define PH_MAX_NAME		255		/* a LIST entry's name */
#define PH_MAX_MESSAGE		1024		/* ERROR text, HELLO agent string */
#define PH_MAX_LIST_ENTRIES	256		/* entries in one LIST_REPLY */
#define PH_MAX_CTL_ARGS		32		/* arguments in one CTL request */
#define PH_SHA256_LEN		32

/* Default endpoints and paths. */
#define PH_DEFAULT_PORT		7390
#define PH_DEFAULT_GUEST_ENDPOINT	"vsock:2:7390"
#define PH_DEFAULT_LISTEN_ENDPOINT	"vsock::7390"
#define PH_DEFAULT_CONTROL	"/run/porthole/portholed.ctl"
#define PH_DEFAULT_STATE_DIR	"/var/lib/porthole"
#define PH_DEFAULT_CACHE_DIR	"/var/cache/porthole"

/* Frame types. Requests have the high bit clear, replies have it set. */
enum ph_type {
	PH_HELLO	= 0x01,
	PH_GET		= 0x02,
	PH_STAT		= 0x03,
	PH_LIST		= 0x04,
	PH_PING		= 0x05,
	PH_CTL		= 0x10,	/* control socket only */

	PH_HELLO_ACK	= 0x81,
	PH_QUEUED	= 0x82,
	PH_META		= 0x83,
	PH_DATA		= 0x84,
	PH_DATA_ZSTD	= 0x85,
	PH_END		= 0x86,
	PH_ERROR	= 0x87,
	PH_LIST_REPLY	= 0x88,
	PH_PONG		= 0x89,
	PH_PATH		= 0x8a,	/* only with PH_FEAT_REALPATH */
	PH_CTL_REPLY	= 0x90,	/* control socket only */
};

/* Feature bits, negotiated in HELLO / HELLO_ACK as the intersection. */
#define PH_FEAT_ZSTD		(1u << 0)	/* DATA_ZSTD frames may be sent */
#define PH_FEAT_RESUME		(1u << 1)	/* GET with a non-zero offset */
#define PH_FEAT_SHA256		(1u << 2)	/* META and END carry digests */
#define PH_FEAT_REVERIFY	(1u << 3)	/* GET may carry PH_GET_REVERIFY */
#define PH_FEAT_STALE		(1u << 4)	/* META and END may say stale */
#define PH_FEAT_ALL		(PH_FEAT_ZSTD | PH_FEAT_RESUME | \
				 PH_FEAT_SHA256 | PH_FEAT_REVERIFY | \
				 PH_FEAT_STALE)
/* PATH frames say where a request's path really leads (relays ask). */
#define PH_FEAT_REALPATH	(1u << 5)

/* GET flags. */
#define PH_GET_WANT_ZSTD	(1u << 0)	/* the client accepts DATA_ZSTD */
#define PH_GET_REVERIFY		(1u << 1)	/* our last copy of this path
						   failed its check: re-check
						   the cached copy first */
#define PH_GET_FLAGS		(PH_GET_WANT_ZSTD | PH_GET_REVERIFY)

/*
 * The flags byte of META and END (it was has_digest, 0 or 1, which is
 * still what a peer without PH_FEAT_STALE may send or accept).
 */
#define PH_DIGEST_VALID		(1u << 0)	/* sha256 is valid */
#define PH_DIGEST_STALE		(1u << 1)	/* the copy could not be
						   revalidated upstream */

/* CTL flags. */
#define PH_CTL_JSON		(1u << 0)	/* ignored: every reply is JSON */

/* Error codes carried in ERROR frames, and CTL_REPLY status. 0 is success. */
enum ph_err {
	PH_OK			= 0,
	PH_ERR_PROTOCOL		= 1,	/* malformed frame or wrong sequence */
	PH_ERR_VERSION		= 2,	/* no common protocol version */
	PH_ERR_BAD_PATH		= 3,	/* path not UTF-8, has NUL or control
					   bytes, or is too long */
	PH_ERR_PATH_ESCAPE	= 4,	/* '..' climbs above the root, or a
					   symlink leads outside */
	PH_ERR_NOT_FOUND	= 5,
	PH_ERR_FORBIDDEN	= 6,
	PH_ERR_NOT_FILE		= 7,	/* GET of a directory, or a device,
					   FIFO or socket */
	PH_ERR_NOT_DIR		= 8,	/* LIST of something not a directory */
	PH_ERR_BUSY		= 9,	/* queue full */
	PH_ERR_IO		= 10,	/* the host could not read the file */
	PH_ERR_CHANGED		= 11,	/* the file changed while being sent */
	PH_ERR_BAD_OFFSET	= 12,	/* resume offset past the end */
	PH_ERR_UNAVAILABLE	= 13,	/* no repository, or upstream down */
	PH_ERR_INTEGRITY	= 14,	/* digest mismatch upstream, or a
					   damaged cached copy */
	PH_ERR_TIMEOUT		= 15,
	PH_ERR_SHUTDOWN		= 16,	/* the daemon is stopping */
	PH_ERR_USAGE		= 17,	/* CTL: bad command or arguments */
	PH_ERR_INTERNAL		= 18,
	PH_ERR_MAX		= 18,
};

/* File types in META and LIST entries. */
enum ph_ftype {
	PH_FT_REGULAR	= 1,
	PH_FT_DIR	= 2,
	PH_FT_OTHER	= 3,	/* listed, never served */
};

/* A decoded frame header. */
struct ph_header {
	uint8_t		version;
	uint8_t		type;
	uint32_t	length;		/* payload bytes after the header */
};

/*
 * Messages. Strings are NUL-terminated copies (the wire rejects embedded
 * NULs, so C string functions are safe on them), except the CTL arguments,
 * which are NUL-terminated in the frame itself. Those and the byte ranges
 * (DATA, the LIST entry block, CTL reply body) point into the caller's frame
 * buffer and are valid only while that buffer is.
 */
struct ph_hello {
	uint16_t	min_version;
	uint16_t	max_version;
	uint32_t	features;
	uint32_t	declared_peer;	/* test-only peer identity; 0 = none.
					   Honoured only on listeners that say
					   so; vsock listeners ignore it. */
	char		agent[PH_MAX_MESSAGE + 1];
};

struct ph_hello_ack {
	uint16_t	version;
	uint32_t	features;
	uint32_t	max_payload;
	char		agent[PH_MAX_MESSAGE + 1];
};

struct ph_get {
	uint64_t	offset;
	uint32_t	flags;		/* PH_GET_* */
	char		path[PH_MAX_PATH + 1];	/* as sent: normalise before use */
};

struct ph_path_req {		/* STAT */
	char		path[PH_MAX_PATH + 1];
};

struct ph_list {
	uint64_t	cursor;		/* 0 to start; from the last reply after */
	char		path[PH_MAX_PATH + 1];
};

struct ph_meta {
	uint64_t	size;
	int64_t		mtime_ns;
	uint32_t	mode;		/* permission bits, 07777 */
	uint8_t		ftype;		/* enum ph_ftype */
	uint8_t		has_digest;	/* 0 or 1: PH_DIGEST_VALID */
	uint8_t		stale;		/* 0 or 1: PH_DIGEST_STALE, a relay
					   whose parent is down serves its
					   cached copy unrevalidated */
	uint8_t		sha256[PH_SHA256_LEN];
};

struct ph_data {		/* DATA and DATA_ZSTD */
	const uint8_t	*bytes;
	uint32_t	len;
};

struct ph_end {
	uint64_t	bytes;		/* file bytes sent in this transfer,
					   decompressed, from the GET offset */
	uint8_t		has_digest;	/* 0 or 1, as in META */
	uint8_t		stale;		/* 0 or 1, as in META */
	uint8_t		sha256[PH_SHA256_LEN];	/* of the whole file */
};

struct ph_error {
	uint16_t	code;		/* enum ph_err */
	char		message[PH_MAX_MESSAGE + 1];
};

struct ph_list_reply {
	uint64_t	next_cursor;	/* 0: the listing is complete */
	uint16_t	count;
	const uint8_t	*entries;	/* validated block; walk with
					   ph_message_list_entry_next() */
	uint32_t	entries_len;
};

struct ph_list_entry {
	uint8_t		ftype;
	uint64_t	size;
	int64_t		mtime_ns;
	uint32_t	mode;
	char		name[PH_MAX_NAME + 1];
};

struct ph_path {		/* PATH */
	uint16_t	entry;		/* 0: the request; i: entry i-1 */
	char		path[PH_MAX_PATH + 1];	/* normalised */
};

struct ph_ctl {
	uint8_t		 flags;		/* PH_CTL_* */
	uint16_t	 argc;
	const char	*argv[PH_MAX_CTL_ARGS];	/* NUL-terminated, in the
						   frame: see
						   ph_message_decode() */
};

struct ph_ctl_reply {
	uint16_t	status;		/* enum ph_err */
	const uint8_t	*body;		/* JSON and a newline, not terminated */
	uint32_t	body_len;
};

/*
 * One decoded message; type selects the member. The path buffers make it
 * about 4 KB.
 */
struct ph_msg {
	uint8_t	type;
	union {
		struct ph_hello		hello;
		struct ph_hello_ack	hello_ack;
		struct ph_get		get;
		struct ph_path_req	stat;
		struct ph_list		list;
		uint64_t		ping_nonce;	/* PING and PONG */
		uint32_t		queued_position;
		struct ph_meta		meta;
		struct ph_data		data;		/* DATA, DATA_ZSTD */
		struct ph_end		end;
		struct ph_error		error;
		struct ph_list_reply	list_reply;
		struct ph_path		path;
		struct ph_ctl		ctl;
		struct ph_ctl_reply	ctl_reply;
	} u;
};

/* ---- Bounded reader ---------------------------------------------------- */

/*
 * A cursor over a caller-owned buffer. Treat the fields as private. Every
 * get checks the remaining length first; on failure it returns a negative
 * errno and leaves the cursor where it was.
 */
struct ph_reader {
	const uint8_t	*buf;
	size_t		len;
	size_t		off;
};

/* Points r at len bytes of buf. The buffer must outlive the reader. */
void	ph_reader_init(struct ph_reader *r, const void *buf, size_t len);

/* Bytes not yet consumed. */
size_t	ph_reader_left(const struct ph_reader *r);

/* Big-endian integers. -EBADMSG if fewer bytes remain than needed. */
int	ph_reader_get_u8(struct ph_reader *r, uint8_t *v);
int	ph_reader_get_u16(struct ph_reader *r, uint16_t *v);
int	ph_reader_get_u32(struct ph_reader *r, uint32_t *v);
int	ph_reader_get_u64(struct ph_reader *r, uint64_t *v);

/* Copies n bytes to dst. -EBADMSG on short input. */
int	ph_reader_get_bytes(struct ph_reader *r, void *dst, size_t n);

/* Sets *p to the next n bytes, in place, and consumes them. -EBADMSG. */
int	ph_reader_get_ref(struct ph_reader *r, size_t n, const uint8_t **p);

/*
 * A u16-length-prefixed string, copied into dst (cap bytes, NUL-terminated).
 * -EBADMSG on short input, -EMSGSIZE if the length exceeds max or does not
 * fit cap, -EILSEQ on an embedded NUL. The cursor is unchanged on failure.
 */
int	ph_reader_get_str(struct ph_reader *r, char *dst, size_t cap,
	    size_t max);

/* ---- Writer ------------------------------------------------------------ */

/*
 * A cursor over a caller-owned output buffer. Puts return -ENOBUFS when the
 * value does not fit and leave the cursor unchanged.
 */
struct ph_writer {
	uint8_t		*buf;
	size_t		cap;
	size_t		off;
};

void	ph_writer_init(struct ph_writer *w, void *buf, size_t cap);
int	ph_writer_put_u8(struct ph_writer *w, uint8_t v);
int	ph_writer_put_u16(struct ph_writer *w, uint16_t v);
int	ph_writer_put_u32(struct ph_writer *w, uint32_t v);
int	ph_writer_put_u64(struct ph_writer *w, uint64_t v);
int	ph_writer_put_bytes(struct ph_writer *w, const void *src, size_t n);
/* A u16-length-prefixed string of strlen(s) bytes; -EMSGSIZE over 65535. */
int	ph_writer_put_str(struct ph_writer *w, const char *s);

/* ---- Frames ------------------------------------------------------------ */

/* Writes the 8-byte header for a frame of type with payload_len bytes. */
void	ph_frame_header_write(uint8_t hdr[PH_HDR_LEN], uint8_t type,
	    uint32_t payload_len);

/*
 * Parses the header at the front of buf (len bytes available).
 * Returns 0 and fills h; -EAGAIN if fewer than PH_HDR_LEN bytes; -EPROTO on
 * a bad magic or unknown type; -EPROTONOSUPPORT on a version outside
 * PH_PROTO_MIN_VERSION..PH_PROTO_VERSION (so a newer peer can still read an
 * older peer's HELLO and answer it); -EMSGSIZE if the length exceeds the
 * limit for that type: the size of its largest valid encoding, never more
 * than PH_MAX_REQUEST_PAYLOAD for requests or PH_MAX_PAYLOAD for replies.
 */
int	ph_frame_header_parse(const uint8_t *buf, size_t len,
	    struct ph_header *h);

/*
 * Decodes one payload of the given type into m. The payload must be
 * consumed exactly: trailing bytes are -EBADMSG. Returns -EBADMSG on short or
 * inconsistent input, -EMSGSIZE on an over-limit length field, -EILSEQ on a
 * NUL in a string, -EPROTO on an unknown type or a field out of range.
 * Pointers in m refer into payload. Only a CTL that decodes changes the
 * payload: each argument is rewritten in place as a C string (its bytes
 * moved over its length field, a NUL behind), so the payload no longer
 * reads as that frame, and m->u.ctl.argv point there. Every other type,
 * and any payload refused, is left as it was.
 */
int	ph_message_decode(uint8_t type, uint8_t *payload, size_t len,
	    struct ph_msg *m);

/*
 * Encodes m (header and payload) into buf of cap bytes. Returns the frame
 * length, -ENOBUFS if cap is too small, -EMSGSIZE or -EINVAL if a field is
 * over its limit. For DATA and DATA_ZSTD the bytes are copied; to send file
 * data without a copy, write ph_frame_header_write() and then the bytes
 * yourself.
 */
ssize_t	ph_message_encode(const struct ph_msg *m, uint8_t *buf, size_t cap);

/*
 * Walks a decoded LIST_REPLY's entry block: r must be initialised over
 * (entries, entries_len). Returns 1 with *e filled, 0 at the end, or a
 * negative errno (cannot happen on a block ph_message_decode accepted).
 */
int	ph_message_list_entry_next(struct ph_reader *r,
	    struct ph_list_entry *e);

/*
 * Appends one entry to a LIST_REPLY entry block being built with w.
 * -ENOBUFS when it does not fit, -EMSGSIZE for a name over PH_MAX_NAME,
 * -EINVAL for a bad file type or mode, or a name that is not one valid path
 * component (empty, '.', '..', a '/', bad UTF-8, control bytes). Callers
 * skip such directory entries: they could not be fetched anyway.
 */
int	ph_message_list_entry_put(struct ph_writer *w,
	    const struct ph_list_entry *e);

/* The frame type's name ("GET"), or "?" for an unknown value. */
const char *ph_message_type_name(uint8_t type);

/* The error code's name ("NOT_FOUND"), or "UNKNOWN". */
const char *ph_err_name(unsigned int code);

/* A one-line English description of an error code. */
const char *ph_err_text(unsigned int code);

/*
 * Maps a negative errno from the filesystem to the closest error code:
 * -ENOENT -> NOT_FOUND, -EACCES/-EPERM -> FORBIDDEN, -EXDEV/-ELOOP ->
 * PATH_ESCAPE, -ENOTDIR -> NOT_DIR, 0 -> PH_OK, anything else -> IO.
 */
enum ph_err ph_err_from_errno(int neg_errno);

/* ---- Framer ------------------------------------------------------------ */

/*
 * The one incremental frame reader: every peer's input goes through it.
 * Bytes go into a caller-owned buffer (ph_framer_space() and
 * ph_framer_commit(), or ph_framer_feed()); ph_framer_next() hands back
 * whole frames whose header passed ph_frame_header_parse(), so the magic,
 * version, type and per-type length limits are checked, before any payload
 * byte is trusted, here and nowhere else. A caller that wants to place a
 * payload itself (file bytes straight into a hashing slot, or relayed as
 * they arrive) takes the header alone with ph_framer_take_header() and the
 * payload piece by piece with ph_framer_body().
 *
 * Treat the fields as private. Nothing is allocated: the buffer belongs to
 * the caller and must outlive the framer. A frame larger than the buffer
 * can only be taken header first. Pointers the framer hands out refer into
 * the buffer and stay valid until the next ph_framer_space(),
 * ph_framer_feed(), ph_framer_compact() or ph_framer_reset().
 */
struct ph_framer {
	uint8_t		*buf;
	size_t		 cap;
	size_t		 start;		/* first unread byte */
	size_t		 end;		/* end of the bytes read */
	uint32_t	 body_left;	/* payload bytes of a taken header */
};

/*
 * Points f at cap bytes of buf, empty. buf may be NULL (cap is then 0)
 * for a framer that has no storage yet: it needs more bytes forever.
 */
void	ph_framer_init(struct ph_framer *f, void *buf, size_t cap);

/* Forgets every byte read and any payload in progress; keeps the buffer. */
void	ph_framer_reset(struct ph_framer *f);

/* Bytes read and not yet handed out (0: nothing is waiting). */
size_t	ph_framer_pending(const struct ph_framer *f);

/*
 * Where the next bytes go: returns a pointer to *room free bytes behind the
 * unread ones (room 0 when the buffer is full). The unread bytes move to
 * the front of the buffer first when fewer than want bytes are free behind
 * them (SIZE_MAX: whenever they are not at the front already), which
 * invalidates pointers handed out before. Then write at most *room bytes
 * there and ph_framer_commit() them.
 */
uint8_t	*ph_framer_space(struct ph_framer *f, size_t want, size_t *room);

/* Adds n bytes written at ph_framer_space() (clamped to the room). */
void	ph_framer_commit(struct ph_framer *f, size_t n);

/* Copies as much of the n bytes at src as fits; returns how many. */
size_t	ph_framer_feed(struct ph_framer *f, const void *src, size_t n);

/*
 * Moves the unread bytes to the front and returns how many there are, for
 * a caller that keeps its own count of the bytes in the buffer.
 */
size_t	ph_framer_compact(struct ph_framer *f);

/*
 * Checks the header of the next frame without taking anything. Returns 0
 * with h filled; -EAGAIN while fewer than PH_HDR_LEN bytes are there;
 * -EBUSY while a taken header's payload is not all handed out; otherwise
 * ph_frame_header_parse()'s error, with h->version and h->type set to the raw
 * header bytes (h->length 0) so the caller can say what it refused.
 */
int	ph_framer_header(const struct ph_framer *f, struct ph_header *h);

/*
 * Takes the next whole frame. Returns 1 with h filled and *payload pointing
 * at its h->length payload bytes; 0 when more bytes are needed (then
 * ph_framer_need() says how many); a negative errno as ph_framer_header()
 * returns it, or -ENOBUFS when the frame cannot fit the buffer. A frame
 * refused stays unread: the stream is out of step, close the connection.
 * *payload is NULL unless 1 is returned.
 */
int	ph_framer_next(struct ph_framer *f, struct ph_header *h,
	    uint8_t **payload);

/*
 * Bytes still missing before ph_framer_next() (or ph_framer_body(), after a
 * taken header) can hand out all of the next unit: the rest of the header,
 * of the frame, or of the taken payload. 0 when it is all there, or when
 * the header is bad (ph_framer_next() says why).
 */
size_t	ph_framer_need(const struct ph_framer *f);

/*
 * Takes the next frame's header alone; its h->length payload bytes are
 * then handed out by ph_framer_body() (and ph_framer_body_skip() for bytes
 * the caller read around the framer), and ph_framer_next() returns -EBUSY
 * until they all are. Returns 0, or as ph_framer_header(). Any payload
 * length the header check allows is accepted, even one larger than the
 * buffer.
 */
int	ph_framer_take_header(struct ph_framer *f, struct ph_header *h);

/* Payload bytes of the taken header not yet handed out (0: none taken). */
uint32_t ph_framer_body_left(const struct ph_framer *f);

/*
 * Hands out the taken payload's bytes that are in the buffer, at most max:
 * returns how many, with *p pointing at them (NULL when 0).
 */
size_t	ph_framer_body(struct ph_framer *f, size_t max, const uint8_t **p);

/*
 * Counts n payload bytes the caller read straight from its source into its
 * own memory (clamped to what is left), after ph_framer_body() handed out
 * the buffered ones.
 */
void	ph_framer_body_skip(struct ph_framer *f, size_t n);

/* ---- Paths ------------------------------------------------------------- */

/*
 * The one path normaliser every component uses.
 *
 * Takes len bytes of in (a repository path as sent: '/'-separated, either
 * with or without a leading '/'). Removes empty and '.' components and
 * resolves '..' against the components before it; writes the result to out
 * (cap bytes, NUL-terminated) as a relative path with no leading or trailing
 * '/', or "." for the root. Nothing is decoded: "%2e%2e" is a name.
 *
 * Returns 0; -ENAMETOOLONG if len > PH_MAX_PATH or the result does not fit
 * cap; -EILSEQ for invalid UTF-8, a NUL or a control byte (< 0x20, 0x7f);
 * -EPERM if a '..' would climb above the root. Map -EPERM to
 * PH_ERR_PATH_ESCAPE and the others to PH_ERR_BAD_PATH.
 */
int	ph_path_normalize(const char *in, size_t len, char *out, size_t cap);

/*
 * Length (1-4) of the UTF-8 sequence at p, n bytes available, or 0 if it is
 * not a valid shortest-form encoding of a scalar value (RFC 3629): overlong
 * forms, UTF-16 surrogates, values past U+10FFFF and a sequence cut short
 * by the end of the n bytes are all refused. The one UTF-8 check every
 * component uses.
 */
size_t	ph_path_utf8_seq_len(const uint8_t *p, size_t n);

/*
 * The path as clients see it: "/" for the root (rel is "." or ""), else
 * "/" and rel, for rel as ph_path_normalize() writes it. Writes at most
 * cap bytes with the NUL (cut short like snprintf; nothing when cap is 0)
 * and returns buf. PH_MAX_PATH + 2 bytes always suffice.
 */
const char *ph_path_display(const char *rel, char *buf, size_t cap);

/* ---- Endpoints --------------------------------------------------------- */

enum ph_ep_kind {
	PH_EP_VSOCK = 1,
	PH_EP_UNIX = 2,
};

#define PH_VSOCK_CID_ANY	0xffffffffu

struct ph_endpoint {
	enum ph_ep_kind	kind;
	uint32_t	cid;		/* vsock; PH_VSOCK_CID_ANY for "vsock::P" */
	uint32_t	port;		/* vsock */
	char		path[108];	/* unix: sun_path, NUL-terminated */
};

/*
 * Parses "vsock:CID:PORT", "vsock::PORT" (any CID, for listening) or
 * "unix:PATH". CID and PORT are decimal, at most 32 bits. Returns 0 or
 * -EINVAL (bad syntax, bad number, empty or over-long path).
 */
int	ph_endpoint_parse(const char *s, struct ph_endpoint *ep);

/* Formats ep back to its string form into buf (cap bytes). -ENOBUFS. */
int	ph_endpoint_format(const struct ph_endpoint *ep, char *buf, size_t cap);

/*
 * Fills *ss and *len with the socket address of ep, for socket(),
 * connect() or bind(): sockaddr_un for unix (the path must be non-empty
 * and fit sun_path), sockaddr_vm for vsock (PH_VSOCK_CID_ANY becomes
 * VMADDR_CID_ANY, which only a listener wants). Returns 0, or -EINVAL
 * with *ss zeroed and *len 0.
 */
int	ph_endpoint_sockaddr(const struct ph_endpoint *ep,
	    struct sockaddr_storage *ss, socklen_t *len);

/*
 * Creates a listening, non-blocking, close-on-exec socket for ep. A unix
 * socket file already present is removed only if nothing answers on it
 * (a stale socket); a live one is -EADDRINUSE. Returns the fd or -errno.
 */
int	ph_endpoint_listen(const struct ph_endpoint *ep, int backlog);

/*
 * Connects a blocking, close-on-exec stream socket to ep, giving up after
 * timeout_ms (0: the system's own timeout). Returns the fd or -errno.
 */
int	ph_endpoint_connect(const struct ph_endpoint *ep, int timeout_ms);

/* ---- Blocking frame I/O (clients) --------------------------------------- */

/*
 * Reads from fd until len bytes are in buf or end of file, retrying on
 * EINTR. Returns the bytes read (fewer than len only at end of file) or
 * -errno; bytes read before an error are lost to the caller.
 */
ssize_t	ph_io_read_full(int fd, void *buf, size_t len);

/* Writes all len bytes to a blocking fd, retrying on EINTR. 0 or -errno. */
int	ph_io_write_all(int fd, const void *buf, size_t len);

/*
 * Writes all len bytes to a file (or pipe) with write(), going on after
 * short writes and EINTR. Returns 0, or -errno (-EIO if write returns 0).
 */
int	ph_io_write_full(int fd, const void *buf, size_t len);

/*
 * Reads exactly len bytes at offset off with pread(), going on after short
 * reads and EINTR. Returns 0, -ENODATA if the file ends first, or -errno.
 */
int	ph_io_pread_full(int fd, void *buf, size_t len, uint64_t off);

/*
 * Scatter lists. ph_io_iov_read() copies len bytes out of iov, starting at
 * byte off, into dst; ph_io_iov_write() copies src into iov the same way.
 * Both return the bytes copied, short when iov ends first.
 */
size_t	ph_io_iov_read(const struct iovec *iov, size_t niov, size_t off,
	    void *dst, size_t len);
size_t	ph_io_iov_write(const struct iovec *iov, size_t niov, size_t off,
	    const void *src, size_t len);

/*
 * Describes bytes [off, off + len) of iov as at most cap pieces in out.
 * Returns the number of pieces; they cover fewer bytes when iov or cap
 * run out first (ph_io_iov_len() tells how many).
 */
size_t	ph_io_iov_slice(const struct iovec *iov, size_t niov, size_t off,
	    size_t len, struct iovec *out, size_t cap);

/* Total bytes in niov pieces. */
size_t	ph_io_iov_len(const struct iovec *iov, size_t niov);

/*
 * Encodes m and writes the frame to a blocking fd. 0 or -errno. buf is
 * scratch space of cap bytes (PH_HDR_LEN + PH_MAX_REQUEST_PAYLOAD is enough
 * for any request).
 */
int	ph_io_send_msg(int fd, const struct ph_msg *m, uint8_t *buf,
	    size_t cap);

/*
 * Reads one whole frame from a blocking fd into buf (cap bytes; use
 * PH_HDR_LEN + PH_MAX_PAYLOAD to accept any frame) and decodes it into m,
 * whose pointers then refer into buf. Returns 0; -ECONNRESET on EOF (before
 * or inside a frame); a header or decode error as ph_frame_header_parse() and
 * ph_message_decode() return them; -ENOBUFS if the frame does not fit cap;
 * -errno from read(). After -EMSGSIZE or -ENOBUFS the payload is still unread,
 * so the stream is out of step: close the connection.
 */
int	ph_io_recv_msg(int fd, uint8_t *buf, size_t cap, struct ph_msg *m);

/* ---- Small helpers ------------------------------------------------------ */

/*
 * The listing format porthole and portholectl share, so a guest's `ls -l`
 * and the host's `repo ls` read the same.
 */
#define PH_MODE_STRLEN	11	/* "drwxr-xr-x" and the NUL */
#define PH_TIME_STRLEN	32

/* The file type as a word: "file", "dir" or "other". */
const char *ph_util_ftype_name(uint8_t ftype);

/*
 * An ls-style mode string for a file type (enum ph_ftype) and permission
 * bits: "-rw-r--r--", "drwxr-xr-x", "?rw-------" for others, with s/S/t/T.
 */
void	ph_util_mode_string(uint8_t ftype, uint32_t mode,
	    char buf[PH_MODE_STRLEN]);

/*
 * Local time "YYYY-MM-DD HH:MM:SS" of a time in nanoseconds since 1970
 * (floor division, so times before 1970 are right); "@SECONDS" if the time
 * cannot be converted.
 */
void	ph_util_time_string(int64_t ns, char *buf, size_t cap);

/*
 * Lowercase hex of the n bytes at src: writes 2 * n digits and a NUL, so
 * out must have room for 2 * n + 1 bytes. src and out must not overlap.
 */
void	ph_util_hex_encode(const void *src, size_t n, char *out);

/*
 * Copies len bytes of s into out (cap bytes, NUL-terminated) so that the
 * result is one unambiguous field of a log line or of text output: bytes
 * below 0x21, 0x7f, backslash and bytes that are not valid UTF-8 become
 * \xNN; with escape_high, every byte from 0x80 up does. Truncates with
 * "..." when it does not fit. Returns out.
 */
char	*ph_util_escape(const char *s, size_t len, bool escape_high, char *out,
	    size_t cap);

/* Lowercase hex of a digest into out (65 bytes with the NUL). */
void	ph_util_sha256_hex(const uint8_t digest[PH_SHA256_LEN], char out[65]);

/* Nanoseconds since 1970 of a timespec (st_mtim, st_ctim, a clock). */
int64_t	ph_util_timespec_ns(const struct timespec *ts);

/*
 * Parses a size with an optional K, M, G or T suffix (powers of 1024), as
 * used by --cache-size. Returns 0 or -EINVAL / -ERANGE.
 */
int	ph_util_parse_size(const char *s, uint64_t *out);

#endif /* PORTHOLE_PROTO_H */
