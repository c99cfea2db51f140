/*
 * fetch.c: `porthole get`, downloading verified files from portholed.
 *
 * Each file: GET -> [QUEUED...] META -> DATA/DATA_ZSTD... -> END. QUEUED is
 * also accepted between DATA frames, which costs nothing and lets a daemon
 * report a paused time-sliced transfer that way. Bytes are hashed as they
 * arrive (on a second thread, see hasher.h) and written to NAME.part,
 * which is renamed to NAME only once the SHA-256 of the whole file matches
 * the server's digest and the bytes are durable. With several files, the
 * next GET goes out as soon as an END arrives, so the host works on it
 * while this side finishes the last file and opens the next .part.
 *
 * Durability is grouped: a verified file waits, still locked under
 * NAME.part, until FETCH_GROUP_FILES files (or FETCH_GROUP_BYTES bytes) are
 * verified or the run ends; then one syncfs() makes them all durable, they
 * are renamed, and each directory is fsynced once at the end of the run.
 * One file alone is fsynced as before. Files are reported (verified line,
 * JSON) when their group is done, in the order they were asked for.
 *
 * A copy that fails its check (SHA-256, a DATA_ZSTD frame that does not
 * decode, or the host's ERROR INTEGRITY) is asked for once more from the
 * start with GET flag REVERIFY, when the host offers it: the host then
 * re-checks its cached copy and, if it is damaged, drops it and sends the
 * file from its repository (or its parent). Nothing of the failed attempt
 * is kept. A copy the host could not revalidate (a relay whose parent is
 * down) is kept with a warning, or refused with --fresh.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <zstd.h>

#include "backoff.h"
#include "client.h"
#include "dest.h"
#include "fetch.h"
#include "fmt.h"
#include "hasher.h"
#include "progress.h"
#include "usage.h"

/*
 * A durability group: verified files wait for one syncfs() together. Each
 * holds two descriptors (the .part and its directory) until then.
 */
#define FETCH_GROUP_FILES	64
#define FETCH_GROUP_BYTES	(64ull * 1024 * 1024)

/* State shared by all files of one `porthole get`. */
struct fetcher {
	const struct fetch_opts	*o;
	struct client		*conn;		/* reopened if it breaks */
	struct progress		*progress;
	struct hasher		*hasher;
	ZSTD_DCtx		*dctx;		/* NULL with --no-zstd */
	struct dirsync		*dirs;		/* renamed into, not synced */
	size_t			 group_max;	/* files per durability group */
	struct transfer		*pending[FETCH_GROUP_FILES];
	size_t			 npending;	/* waiting to be reported */
	uint64_t		 held_bytes;	/* verified, not yet durable */
	enum px_exit		 first;		/* first failure reported */
};

/* A file to download, as asked. */
struct fetch_req {
	const char	*remote;	/* as typed */
	const char	*local;		/* see fetch_run() */
	bool		 into_dir;	/* local is a directory */
	int		 mode;		/* to set; -1: META's */
	enum px_exit	*result;	/* if not NULL, gets the outcome */
	uint8_t		*digest;	/* if not NULL, gets the SHA-256 */
};

/* One file being downloaded. */
struct transfer {
	enum px_exit	 ex;		/* the outcome so far */
	enum px_exit	*result;	/* if not NULL, gets the outcome */
	uint8_t		*digest_out;	/* if not NULL, gets the digest */
	const char	*arg;		/* the path as typed */
	char		 remote[PH_MAX_PATH + 1];	/* normalised */
	char		 shown[PH_MAX_PATH + 2];	/* "/" + remote */
	char		*local;
	struct dest	*dest;
	bool		 get_sent;
	bool		 want_zstd;	/* GET asked for DATA_ZSTD */
	bool		 damaged;	/* the bytes failed their check */
	bool		 retried;	/* asked once more after that */
	bool		 stale;		/* META or END said not revalidated */
	bool		 have_meta;
	struct ph_meta	 meta;
	uint64_t	 offset;	/* GET offset: bytes already local */
	uint64_t	 received;	/* bytes since offset */
	int		 mode;		/* to set; -1: META's */
	uint8_t		 digest[PH_SHA256_LEN];
	double		 started;	/* GET sent */
	double		 meta_at;	/* META arrived: data starts */
	double		 finished;	/* verified, or failed */
};

/* Prints "porthole: SUBJECT: MESSAGE" below any progress line. */
static void
fetch_say(struct fetcher *f, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
fetch_say(struct fetcher *f, const char *subject, const char *fmt, ...)
{
	va_list ap;

	progress_clear(f->progress);
	fputs("porthole: ", stderr);
	fmt_safe_str(stderr, subject);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reports a failed local operation on path; returns PX_LOCAL_IO. */
static enum px_exit
fetch_local_error(struct fetcher *f, const char *path, int err)
{
	fetch_say(f, path, "%s", strerror(-err));
	return PX_LOCAL_IO;
}

/* Reports why dest_open() failed for local; returns PX_LOCAL_IO. */
static enum px_exit
fetch_open_error(struct fetcher *f, const char *local, int err)
{
	const char *why = NULL;
	char *part = NULL;

	if (err == -EBUSY)
		why = "in use by another porthole";
	else if (err == -EINVAL)
		why = "not a regular file";
	else if (err == -ELOOP)
		why = "is a symbolic link";
	else if (err == -ESTALE) {
		/* The stream itself, not its .part. */
		fetch_say(f, local, "was replaced while it was being opened");
		return PX_LOCAL_IO;
	}
	if (why == NULL || asprintf(&part, "%s.part", local) == -1)
		return fetch_local_error(f, local, err);
	fetch_say(f, part, "%s", why);
	free(part);
	return PX_LOCAL_IO;
}

enum px_exit
fetch_new(const struct fetch_opts *o, struct fetcher **out)
{
	uint32_t features = PH_FEAT_RESUME | PH_FEAT_SHA256 |
	    PH_FEAT_REVERIFY | PH_FEAT_STALE;
	struct fetcher *f;
	enum px_exit ex;

	*out = NULL;
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		fprintf(stderr, "porthole: %s\n", strerror(ENOMEM));
		return PX_LOCAL_IO;
	}
	f->o = o;
	/*
	 * SHA-256 needs no configuration; skipping openssl.cnf keeps a
	 * static binary in a minimal guest from depending on it.
	 */
	OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
	f->group_max = 1;
	f->progress = progress_new(!o->quiet && isatty(STDERR_FILENO));
	f->dirs = dest_dirsync_new();
	if (o->zstd)
		f->dctx = ZSTD_createDCtx();
	if (f->progress == NULL || f->dirs == NULL ||
	    hasher_new(&f->hasher) < 0 || (o->zstd && f->dctx == NULL)) {
		fprintf(stderr, "porthole: %s\n", strerror(ENOMEM));
		ex = PX_LOCAL_IO;
		goto fail;
	}
	if (o->zstd)
		features |= PH_FEAT_ZSTD;
	if ((ex = client_new(o->endpoint, features, o->wait_s, &f->conn)) !=
	    PX_OK)
		goto fail;
	client_set_progress(f->conn, f->progress);
	*out = f;
	return PX_OK;
fail:
	fetch_free(f);
	return ex;
}

struct client *
fetch_client(struct fetcher *f)
{
	return f->conn;
}

void
fetch_free(struct fetcher *f)
{
	if (f == NULL)
		return;
	/* Verified files are never dropped, even by a caller that forgot. */
	(void)fetch_finish(f);
	client_close(f->conn);
	progress_free(f->progress);
	hasher_free(f->hasher);
	ZSTD_freeDCtx(f->dctx);
	dest_dirsync_free(f->dirs);
	free(f);
}

/* Whether local names a directory to download into. */
static bool
fetch_local_is_dir(const char *local)
{
	struct stat st;
	size_t len;

	if (local == NULL || strcmp(local, "-") == 0)
		return false;
	len = strlen(local);
	if (len > 0 && local[len - 1] == '/')
		return true;
	return stat(local, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Works out where remote (normalised) goes: local itself, or the remote's
 * last component in the current directory or in the directory local.
 */
static enum px_exit
fetch_target_path(struct fetcher *f, const struct transfer *t,
    const char *local, bool into_dir, char **out)
{
	const char *base;
	size_t len;
	int n;

	*out = NULL;
	if (local != NULL && !into_dir)
		n = asprintf(out, "%s", local);
	else {
		base = strrchr(t->remote, '/');
		base = base != NULL ? base + 1 : t->remote;
		if (strcmp(base, ".") == 0) {
			fetch_say(f, t->shown, "names the repository root, not "
			    "a file");
			return PX_USAGE;
		}
		if (local == NULL)
			n = asprintf(out, "%s", base);
		else {
			len = strlen(local);
			n = asprintf(out, "%s%s%s", local,
			    len > 0 && local[len - 1] == '/' ? "" : "/", base);
		}
	}
	if (n == -1) {
		*out = NULL;
		return fetch_local_error(f, t->shown, -ENOMEM);
	}
	return PX_OK;
}

/*
 * Starts the digest. When resuming, streams the bytes already in the .part
 * through it and sets the GET offset to their count, so that the digest
 * still covers the whole file.
 */
static enum px_exit
fetch_hash_existing(struct fetcher *f, struct transfer *t, bool resume)
{
	ssize_t n;

	t->offset = 0;
	if (hasher_begin(f->hasher) < 0) {
		fetch_say(f, t->shown, "cannot start SHA-256");
		return PX_LOCAL_IO;
	}
	/* Reading the next chunk overlaps hashing the last one. */
	while (resume && (n = dest_read_part(t->dest, t->offset,
	    hasher_slot(f->hasher), PH_DATA_CHUNK)) != 0) {
		if (n < 0)
			return fetch_local_error(f, dest_part_path(t->dest),
			    (int)n);
		if (hasher_submit(f->hasher, (size_t)n) < 0) {
			fetch_say(f, t->shown, "SHA-256 failed");
			return PX_LOCAL_IO;
		}
		t->offset += (uint64_t)n;
	}
	return PX_OK;
}

static enum px_exit
fetch_send_get(struct fetcher *f, struct transfer *t)
{
	struct ph_msg m;

	/* Rates and seconds measure the transfer, not the connect. */
	t->started = progress_now();
	memset(&m, 0, sizeof(m));
	m.type = PH_GET;
	m.u.get.offset = t->offset;
	t->want_zstd = f->o->zstd &&
	    (client_features(f->conn) & PH_FEAT_ZSTD) != 0;
	m.u.get.flags = t->want_zstd ? PH_GET_WANT_ZSTD : 0;
	if (t->retried && (client_features(f->conn) & PH_FEAT_REVERIFY))
		m.u.get.flags |= PH_GET_REVERIFY;
	snprintf(m.u.get.path, sizeof(m.u.get.path), "%s", t->remote);
	return client_send(f->conn, &m);
}

/* Gives up on a reply stream half way: the connection is out of step. */
static enum px_exit
fetch_abandon(struct fetcher *f, enum px_exit ex)
{
	client_set_broken(f->conn);
	return ex;
}

/* --fresh and the host could not revalidate its copy: exit 6. */
static enum px_exit
fetch_refuse_stale(struct fetcher *f, const struct transfer *t)
{
	fetch_say(f, t->shown, "the host could not revalidate its copy (its "
	    "upstream is unreachable): refused (--fresh)");
	return PX_CONN;
}

/*
 * The bytes of this attempt are damaged: an integrity failure that one
 * retry with REVERIFY may cure (see the top of the file).
 */
static enum px_exit
fetch_damaged(struct fetcher *f, struct transfer *t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum px_exit
fetch_damaged(struct fetcher *f, struct transfer *t, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fetch_say(f, t->shown, "%s", msg);
	t->damaged = true;
	return PX_INTEGRITY;
}

static enum px_exit
fetch_on_meta(struct fetcher *f, struct transfer *t, const struct ph_meta *meta)
{
	int rc;

	if (t->have_meta)
		return client_protocol_error(f->conn, "second META for %s",
		    t->shown);
	if (meta->ftype != PH_FT_REGULAR)
		return client_protocol_error(f->conn,
		    "META for %s is not a regular file", t->shown);
	if (meta->size < t->offset)
		return client_protocol_error(f->conn, "META size %" PRIu64
		    " is below the resume offset %" PRIu64, meta->size,
		    t->offset);
	t->meta = *meta;
	t->have_meta = true;
	t->meta_at = progress_now();
	t->stale = meta->stale;
	if (t->stale && f->o->fresh)
		return fetch_abandon(f, fetch_refuse_stale(f, t));
	if ((rc = dest_begin(t->dest, t->offset)) < 0)
		return fetch_abandon(f, fetch_local_error(f,
		    dest_part_path(t->dest), rc));
	progress_start(f->progress, t->local, meta->size, t->offset);
	return PX_OK;
}

/*
 * Hashes and stores len file bytes that arrived for t in the hasher's
 * current slot. The hashing thread and write() read the slot at once.
 */
static enum px_exit
fetch_on_bytes(struct fetcher *f, struct transfer *t, const uint8_t *slot,
    size_t len)
{
	int rc;

	if (!t->have_meta)
		return client_protocol_error(f->conn, "file data before META");
	if (len == 0 || len > t->meta.size - t->offset - t->received)
		return client_protocol_error(f->conn,
		    "DATA of %zu bytes after %" PRIu64 " of %" PRIu64, len,
		    t->received, t->meta.size - t->offset);
	if (hasher_submit(f->hasher, len) < 0) {
		fetch_say(f, t->shown, "SHA-256 failed");
		return fetch_abandon(f, PX_LOCAL_IO);
	}
	if ((rc = dest_write(t->dest, slot, len)) < 0)
		return fetch_abandon(f, fetch_local_error(f,
		    dest_part_path(t->dest), rc));
	t->received += len;
	progress_update(f->progress, t->offset + t->received);
	return PX_OK;
}

/*
 * Unpacks one DATA_ZSTD frame into the hasher's slot. The declared size is
 * checked before any decompression, so a hostile frame can neither overrun
 * the slot nor make us work for bytes we would refuse.
 */
static enum px_exit
fetch_on_zstd(struct fetcher *f, struct transfer *t, const struct ph_data *d,
    uint8_t *slot)
{
	unsigned long long declared;
	size_t n;

	if (!t->want_zstd)
		return client_protocol_error(f->conn,
		    "DATA_ZSTD that was not asked for");
	/*
	 * The frame arrived whole, so what is wrong inside it is damaged
	 * data (a cached copy gone bad), not a broken stream: an integrity
	 * failure. The frames after it cannot be trusted to line up either,
	 * so the connection is given up.
	 */
	declared = ZSTD_getFrameContentSize(d->bytes, d->len);
	if (declared == ZSTD_CONTENTSIZE_UNKNOWN ||
	    declared == ZSTD_CONTENTSIZE_ERROR || declared == 0 ||
	    declared > PH_DATA_CHUNK)
		return fetch_abandon(f, fetch_damaged(f, t, "damaged data: "
		    "DATA_ZSTD content size unknown or not 1..%d bytes",
		    PH_DATA_CHUNK));
	/* Exactly one frame: no trailing frames or bytes ride along. */
	n = ZSTD_findFrameCompressedSize(d->bytes, d->len);
	if (ZSTD_isError(n) || n != d->len)
		return fetch_abandon(f, fetch_damaged(f, t, "damaged data: "
		    "DATA_ZSTD is not exactly one zstd frame"));
	n = ZSTD_decompressDCtx(f->dctx, slot, PH_DATA_CHUNK, d->bytes,
	    d->len);
	if (ZSTD_isError(n) || n != declared)
		return fetch_abandon(f, fetch_damaged(f, t, "damaged data: "
		    "DATA_ZSTD does not decompress: %s", ZSTD_isError(n) ?
		    ZSTD_getErrorName(n) : "wrong size"));
	return fetch_on_bytes(f, t, slot, n);
}

/*
 * Checks END against what arrived and the file's digest against END's.
 * META's digest is optional: a server streaming a file it has not hashed
 * yet sends it only in END. When META did carry one, END's must be the
 * same, or the file changed on the host while it was being sent.
 */
static enum px_exit
fetch_on_end(struct fetcher *f, struct transfer *t, const struct ph_end *end)
{
	char want[65], got[65];

	if (!t->have_meta)
		return client_protocol_error(f->conn, "END before META");
	if (t->received != t->meta.size - t->offset ||
	    end->bytes != t->received)
		return client_protocol_error(f->conn, "END after %" PRIu64
		    " of %" PRIu64 " bytes, and it counts %" PRIu64,
		    t->received, t->meta.size - t->offset, end->bytes);
	if (hasher_final(f->hasher, t->digest) < 0) {
		fetch_say(f, t->shown, "SHA-256 failed");
		return PX_LOCAL_IO;
	}
	if (end->stale && !t->stale) {
		t->stale = true;
		/* The bytes of this attempt are not kept, the rest is. */
		if (f->o->fresh) {
			(void)dest_begin(t->dest, t->offset);
			return fetch_refuse_stale(f, t);
		}
	}
	if (!f->o->verify)
		return PX_OK;
	if (!end->has_digest) {
		fetch_say(f, t->shown, "the server sent no SHA-256 digest at "
		    "the end of the file (--no-verify accepts the file "
		    "unchecked)");
		return PX_INTEGRITY;
	}
	if (t->meta.has_digest &&
	    memcmp(t->meta.sha256, end->sha256, PH_SHA256_LEN) != 0) {
		fetch_say(f, t->shown, "changed on the host during the "
		    "transfer");
		return PX_INTEGRITY;
	}
	if (memcmp(t->digest, end->sha256, PH_SHA256_LEN) != 0) {
		ph_util_sha256_hex(end->sha256, want);
		ph_util_sha256_hex(t->digest, got);
		return fetch_damaged(f, t, "SHA-256 mismatch: expected %s, got "
		    "%s", want, got);
	}
	return PX_OK;
}

/*
 * Checks that the connection can serve t as asked, then sends its GET.
 * A .part the server cannot resume is hashed again from the start.
 */
static enum px_exit
fetch_request(struct fetcher *f, struct transfer *t)
{
	enum px_exit ex;

	if (f->o->verify &&
	    !(client_features(f->conn) & PH_FEAT_SHA256)) {
		fetch_say(f, client_endpoint(f->conn), "the server offers no "
		    "SHA-256 digests (--no-verify accepts files unchecked)");
		return PX_INTEGRITY;
	}
	if (f->o->fresh && !(client_features(f->conn) & PH_FEAT_STALE)) {
		fetch_say(f, client_endpoint(f->conn), "the server cannot tell "
		    "whether its copies are current (it predates --fresh)");
		return PX_CONN;
	}
	if (t->offset > 0 && !(client_features(f->conn) & PH_FEAT_RESUME)) {
		if (!f->o->quiet)
			fetch_say(f, t->local, "the server cannot resume; "
			    "downloading from the start");
		if ((ex = fetch_hash_existing(f, t, false)) != PX_OK)
			return ex;
	}
	if ((ex = fetch_send_get(f, t)) != PX_OK)
		return ex;
	t->get_sent = true;
	return PX_OK;
}

/*
 * Reads the reply stream to a GET until END (verified) or a failure. A GET
 * the host turns away (BUSY, before META) is sent again while the
 * connection's wait allows.
 */
static enum px_exit
fetch_receive(struct fetcher *f, struct transfer *t)
{
	struct backoff b = { .running = false };
	struct ph_msg m;
	enum px_exit ex;
	uint8_t *slot;

	for (;;) {
		/* File bytes are received straight into a hashing slot. */
		slot = hasher_slot(f->hasher);
		if ((ex = client_recv_data(f->conn, &m, slot, PH_DATA_CHUNK)) !=
		    PX_OK)
			return ex;
		switch (m.type) {
		case PH_QUEUED:
			/* Waiting for a slot, before META or while paused. */
			progress_queued(f->progress, t->local,
			    m.u.queued_position);
			ex = PX_OK;
			break;
		case PH_META:
			ex = fetch_on_meta(f, t, &m.u.meta);
			break;
		case PH_DATA:
			ex = fetch_on_bytes(f, t, slot, m.u.data.len);
			break;
		case PH_DATA_ZSTD:
			ex = fetch_on_zstd(f, t, &m.u.data, slot);
			break;
		case PH_END:
			return fetch_on_end(f, t, &m.u.end);
		case PH_ERROR:
			if (client_reply_busy(&m) && !t->have_meta &&
			    client_wait_more(f->conn, &b)) {
				/* The server may have closed it meanwhile. */
				if ((ex = client_connect(f->conn)) == PX_OK)
					ex = fetch_request(f, t);
				break;
			}
			/* The host found its own copy damaged. */
			if (m.u.error.code == PH_ERR_INTEGRITY)
				t->damaged = true;
			return client_remote_error(f->conn, t->shown,
			    &m.u.error);
		default:
			return client_unexpected(f->conn, t->shown, &m);
		}
		if (ex != PX_OK)
			return ex;
	}
}

/* Prints the per-file result: the verified line and the JSON object. */
static void
fetch_report(struct fetcher *f, const struct transfer *t)
{
	double seconds = t->finished - t->started;
	char hex[65], rate[FMT_SIZE_LEN];

	progress_clear(f->progress);
	if (t->ex == PX_OK && t->stale) {
		/* Even with -q: the file may be out of date. */
		fputs("porthole: ", stderr);
		fmt_safe_str(stderr, t->shown);
		fputs(": warning: the host could not revalidate its copy (its "
		    "upstream is unreachable); it may be out of date (--fresh "
		    "refuses such copies)\n", stderr);
	}
	if (t->ex == PX_OK) {
		ph_util_sha256_hex(t->digest, hex);
		if (!f->o->quiet) {
			/* Time in the host's queue is not transfer time. */
			fmt_rate(t->received, t->finished - t->meta_at, rate,
			    sizeof(rate));
			fputs(f->o->verify ? "verified" : "unverified",
			    stderr);
			fprintf(stderr, " sha256:%s  ", hex);
			fmt_safe_str(stderr, t->local);
			fprintf(stderr, " (%" PRIu64 " bytes, %s)\n",
			    t->meta.size, rate);
		}
	}
	if (!f->o->json)
		return;
	fputs("{\"remote\":", stdout);
	fmt_json_str(stdout, t->shown[0] != '\0' ? t->shown : t->arg);
	fputs(",\"local\":", stdout);
	fmt_json_str(stdout, t->local != NULL ? t->local : "");
	if (t->ex == PX_OK)
		printf(",\"bytes\":%" PRIu64 ",\"sha256\":\"%s\","
		    "\"verified\":%s,\"stale\":%s,\"retried\":%s,"
		    "\"seconds\":%.3f}\n", t->meta.size, hex,
		    f->o->verify ? "true" : "false", t->stale ? "true" :
		    "false", t->retried ? "true" : "false", seconds);
	else
		printf(",\"failed\":true,\"exit\":%d}\n", (int)t->ex);
	fflush(stdout);
}

/* Whether t is verified and waits, under LOCAL.part, to be made durable. */
static bool
fetch_held(const struct transfer *t)
{
	return t->ex == PX_OK && t->dest != NULL;
}

/*
 * Makes the held files of the group durable: one fsync() for a single
 * file; for several, one syncfs() per file system, then each file's own
 * write errors. A failure fails the files it covers.
 */
static void
fetch_group_sync(struct fetcher *f)
{
	struct transfer *t, *u;
	size_t i, j, nheld = 0;
	int rc;

	for (i = 0; i < f->npending; i++)
		if (fetch_held(f->pending[i]))
			nheld++;
	for (i = 0; i < f->npending && nheld == 1; i++) {
		t = f->pending[i];
		if (fetch_held(t) && (rc = dest_sync(t->dest)) < 0)
			t->ex = fetch_local_error(f, t->local, rc);
	}
	if (nheld < 2)
		return;
	for (i = 0; i < f->npending; i++) {
		t = f->pending[i];
		if (!fetch_held(t))
			continue;
		/*
		 * The first held file of each file system syncs it; after a
		 * failure no file on it is held any more.
		 */
		for (j = 0; j < i; j++) {
			u = f->pending[j];
			if (fetch_held(u) && dest_same_fs(u->dest, t->dest))
				break;
		}
		if (j < i || (rc = dest_syncfs(t->dest)) == 0)
			continue;
		for (j = i; j < f->npending; j++) {
			u = f->pending[j];
			if (fetch_held(u) && dest_same_fs(u->dest, t->dest))
				u->ex = fetch_local_error(f, u->local, rc);
		}
	}
	for (i = 0; i < f->npending; i++) {
		t = f->pending[i];
		if (fetch_held(t) && (rc = dest_check_written(t->dest)) < 0)
			t->ex = fetch_local_error(f, t->local, rc);
	}
}

/*
 * Finishes the group: makes its files durable, renames them into place,
 * then reports every file in order and lets it go.
 */
static void
fetch_flush(struct fetcher *f)
{
	struct transfer *t;
	size_t i;
	int rc;

	fetch_group_sync(f);
	for (i = 0; i < f->npending; i++) {
		t = f->pending[i];
		if (!fetch_held(t) || (rc = dest_rename(t->dest, f->dirs)) == 0)
			continue;
		if (rc == -EEXIST) {
			fetch_say(f, t->local, "is no longer a regular file: "
			    "left alone");
			t->ex = PX_LOCAL_IO;
		} else
			t->ex = fetch_local_error(f, t->local, rc);
	}
	for (i = 0; i < f->npending; i++) {
		t = f->pending[i];
		fetch_report(f, t);
		if (t->ex != PX_OK && f->first == PX_OK)
			f->first = t->ex;
		if (t->result != NULL)
			*t->result = t->ex;
		if (t->ex == PX_OK && t->digest_out != NULL)
			memcpy(t->digest_out, t->digest, PH_SHA256_LEN);
		/* A cut connection leaves a .part worth resuming; else not. */
		dest_close(t->dest, t->ex == PX_CONN || t->ex == PX_BUSY);
		free(t->local);
		free(t);
	}
	f->npending = 0;
	f->held_bytes = 0;
}

/* Queues a finished transfer (verified or failed) for its group. */
static void
fetch_pend(struct fetcher *f, struct transfer *t)
{
	t->finished = progress_now();
	if (t->ex != PX_OK) {
		/* Only verified files keep their .part open. */
		dest_close(t->dest, t->ex == PX_CONN || t->ex == PX_BUSY);
		t->dest = NULL;
	} else
		f->held_bytes += t->received;
	f->pending[f->npending++] = t;
	if (f->npending >= f->group_max || f->held_bytes >= FETCH_GROUP_BYTES)
		fetch_flush(f);
}

/* Reports and counts a file that failed for want of memory. */
static void
fetch_fail_nomem(struct fetcher *f, const struct fetch_req *rq)
{
	/* Those before it are reported first, as always. */
	fetch_flush(f);
	progress_clear(f->progress);
	fprintf(stderr, "porthole: %s\n", strerror(ENOMEM));
	if (f->first == PX_OK)
		f->first = PX_LOCAL_IO;
	if (rq->result != NULL)
		*rq->result = PX_LOCAL_IO;
}

/*
 * Starts a transfer of rq: the paths are worked out (a bad one is reported
 * and fails the transfer) but nothing is opened or sent. NULL when out of
 * memory.
 */
static struct transfer *
fetch_transfer_new(struct fetcher *f, const struct fetch_req *rq)
{
	struct transfer *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->arg = rq->remote;
	t->mode = rq->mode;
	t->result = rq->result;
	t->digest_out = rq->digest;
	t->started = progress_now();
	if ((t->ex = client_path(rq->remote, t->remote, t->shown)) == PX_OK)
		t->ex = fetch_target_path(f, t, rq->local, rq->into_dir,
		    &t->local);
	return t;
}

/*
 * Opens t's destination and, unless its GET went out already, hashes a
 * .part being resumed, connects and sends the GET.
 */
static enum px_exit
fetch_transfer_open(struct fetcher *f, struct transfer *t)
{
	enum px_exit ex;
	int rc;

	rc = dest_open(t->local, f->o->resume, &t->dest);
	if ((rc == -EBUSY || rc == -EMFILE || rc == -ENFILE) &&
	    f->npending > 0) {
		/*
		 * Our own group may hold it (the same name asked twice), or
		 * hold the descriptors a low limit allows.
		 */
		fetch_flush(f);
		rc = dest_open(t->local, f->o->resume, &t->dest);
	}
	if (rc < 0) {
		/* A reply already on its way would be read by nobody. */
		if (t->get_sent)
			client_set_broken(f->conn);
		return fetch_open_error(f, t->local, rc);
	}
	if (t->get_sent)
		return fetch_hash_existing(f, t, false);
	/*
	 * Hash a .part being resumed before connecting: the daemon wants the
	 * first request within seconds of the connection, and a large .part
	 * takes longer than that to read.
	 */
	if ((ex = fetch_hash_existing(f, t, f->o->resume)) != PX_OK)
		return ex;
	/* The first file connects; one after a lost connection reconnects. */
	if ((ex = client_connect(f->conn)) != PX_OK)
		return ex;
	return fetch_request(f, t);
}

/*
 * Asks once more for a file whose bytes failed their check, from the
 * start, telling the host (REVERIFY) so that it checks its copy before it
 * sends it again. Only when the host offers REVERIFY: an older one would
 * send the same bytes again. A stream (standard output, a device, a FIFO)
 * cannot take bytes back.
 */
static enum px_exit
fetch_retry(struct fetcher *f, struct transfer *t)
{
	enum px_exit ex;
	int rc;

	if (t->retried || dest_is_stream(t->dest) ||
	    !(client_features(f->conn) & PH_FEAT_REVERIFY))
		return PX_INTEGRITY;
	t->retried = true;
	t->damaged = false;
	t->have_meta = false;
	t->stale = false;
	t->received = 0;
	/* Not a byte of the failed attempt stays, even if this one fails. */
	if ((rc = dest_begin(t->dest, 0)) < 0)
		return fetch_local_error(f, dest_part_path(t->dest), rc);
	if ((ex = fetch_hash_existing(f, t, false)) != PX_OK)
		return ex;
	fetch_say(f, t->shown, "retrying once from the start; the host checks "
	    "its copy first");
	if ((ex = client_connect(f->conn)) != PX_OK)
		return ex;
	if ((ex = fetch_request(f, t)) != PX_OK)
		return ex;
	return fetch_receive(f, t);
}

/*
 * Downloads one file (see fetch_run()); t comes from
 * fetch_transfer_new(), or is NULL to start one for rq. The outcome is reported when its group is
 * done; then rq's result and digest, if not NULL, receive it and the
 * file's SHA-256.
 *
 * When next is not NULL, the next file's GET is sent as soon as this
 * file's END has arrived, before this file is finished on disk and the
 * next one's .part is created, so that the host works on it meanwhile
 * (requests are still one at a time). The started next transfer is
 * returned, to be passed back as t. A --resume run does not do this: a
 * resumed GET's offset is known only once its .part is open.
 */
static struct transfer *
fetch_one(struct fetcher *f, struct transfer *t, const struct fetch_req *rq,
    const struct fetch_req *next)
{
	struct transfer *n = NULL;
	int rc;

	if (t == NULL && (t = fetch_transfer_new(f, rq)) == NULL) {
		fetch_fail_nomem(f, rq);
		return NULL;
	}
	if (t->ex == PX_OK)
		t->ex = fetch_transfer_open(f, t);
	if (t->ex == PX_OK)
		t->ex = fetch_receive(f, t);
	if (t->ex == PX_INTEGRITY && t->damaged)
		t->ex = fetch_retry(f, t);
	/* Without memory for it now, the next file starts the usual way. */
	if (t->ex == PX_OK && next != NULL && !f->o->resume &&
	    !client_is_broken(f->conn) &&
	    (n = fetch_transfer_new(f, next)) != NULL && n->ex == PX_OK)
		n->ex = fetch_request(f, n);
	if (t->ex == PX_OK && (rc = dest_finish(t->dest, t->mode >= 0 ?
	    (uint32_t)t->mode : t->meta.mode, t->meta.mtime_ns)) < 0)
		t->ex = fetch_local_error(f, t->local, rc);
	fetch_pend(f, t);
	return n;
}

enum px_exit
fetch_finish(struct fetcher *f)
{
	char dir[PATH_MAX];
	int rc;

	fetch_flush(f);
	if (f->dirs != NULL &&
	    (rc = dest_dirsync_run(f->dirs, dir, sizeof(dir))) < 0) {
		fetch_say(f, dir, "cannot sync the directory: %s",
		    strerror(-rc));
		if (f->first == PX_OK)
			f->first = PX_LOCAL_IO;
		return PX_LOCAL_IO;
	}
	return PX_OK;
}

enum px_exit
fetch_run(const struct fetch_opts *o, char *const *remotes, size_t nremotes,
    const char *local)
{
	struct fetch_req rq, next;
	struct transfer *t = NULL;
	struct fetcher *f = NULL;
	enum px_exit ex;
	bool into_dir = fetch_local_is_dir(local);
	size_t i;

	if (nremotes > 1 && !into_dir)
		return (enum px_exit)usage_error("porthole", "get", "with "
		    "several files the last argument must be a directory",
		    NULL);
	if (local != NULL && strcmp(local, "-") == 0 &&
	    (o->resume || o->json))
		return (enum px_exit)usage_error("porthole", "get",
		    o->resume ? "--resume cannot write to standard output" :
		    "--json cannot be used with standard output", NULL);
	if ((ex = fetch_new(o, &f)) != PX_OK)
		return ex;
	f->group_max = FETCH_GROUP_FILES;
	memset(&rq, 0, sizeof(rq));
	rq.local = local;
	rq.into_dir = into_dir;
	rq.mode = -1;
	next = rq;
	for (i = 0; i < nremotes; i++) {
		rq.remote = remotes[i];
		next.remote = i + 1 < nremotes ? remotes[i + 1] : NULL;
		t = fetch_one(f, t, &rq, next.remote != NULL ? &next : NULL);
	}
	(void)fetch_finish(f);
	ex = f->first;
	fetch_free(f);
	return ex;
}

enum px_exit
fetch_get(struct fetcher *f, const char *remote, const char *local,
    uint32_t mode, uint8_t digest[PH_SHA256_LEN])
{
	enum px_exit ex = PX_LOCAL_IO;
	struct fetch_req rq = {
		.remote = remote,
		.local = local,
		.mode = (int)(mode & 0777),
		.result = &ex,
		.digest = digest,
	};

	/* group_max is 1 here: the file is in place before this returns. */
	(void)fetch_one(f, NULL, &rq, NULL);
	return ex;
}
