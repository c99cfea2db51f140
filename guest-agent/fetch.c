/*
 * fetch.c: `porthole get`, downloading verified files from portholed.
 *
 * Each file: GET -> [QUEUED...] META -> DATA/DATA_ZSTD... -> END. QUEUED is
 * also accepted between DATA frames, which costs nothing and lets a daemon
 * report a paused time-sliced transfer that way. Bytes are
 * hashed as they arrive and written to NAME.part, which is renamed to NAME
 * only once the SHA-256 of the whole file matches the server's digests.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "client.h"
#include "dest.h"
#include "fetch.h"
#include "fmt.h"
#include "progress.h"
#include "usage.h"

/* State shared by all files of one `porthole get`. */
struct fetcher {
	const struct fetch_opts	*o;
	struct client		*conn;		/* reopened if it breaks */
	struct progress		*progress;
	EVP_MD_CTX		*md;
	ZSTD_DCtx		*dctx;		/* NULL with --no-zstd */
	uint8_t			*chunk;		/* PH_DATA_CHUNK scratch bytes */
};

/* One file being downloaded. */
struct transfer {
	const char	*arg;		/* the path as typed */
	char		 remote[PH_MAX_PATH + 1];	/* normalised */
	char		 shown[PH_MAX_PATH + 2];	/* "/" + remote */
	char		*local;
	struct dest	*dest;
	bool		 want_zstd;	/* GET asked for DATA_ZSTD */
	bool		 have_meta;
	struct ph_meta	 meta;
	uint64_t	 offset;	/* GET offset: bytes already local */
	uint64_t	 received;	/* bytes since offset */
	int		 mode;		/* to set; -1: META's */
	uint8_t		 digest[PH_SHA256_LEN];
	double		 started;	/* GET sent */
	double		 meta_at;	/* META arrived: data starts */
};

/* Prints "porthole: SUBJECT: MESSAGE" below any progress line. */
static void
say(struct fetcher *f, const char *subject, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
say(struct fetcher *f, const char *subject, const char *fmt, ...)
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
local_error(struct fetcher *f, const char *path, int err)
{
	say(f, path, "%s", strerror(-err));
	return PX_LOCAL_IO;
}

/* Reports why dest_open() failed for local; returns PX_LOCAL_IO. */
static enum px_exit
open_error(struct fetcher *f, const char *local, int err)
{
	const char *why = NULL;
	char *part = NULL;

	if (err == -EBUSY)
		why = "in use by another porthole";
	else if (err == -EINVAL)
		why = "not a regular file";
	else if (err == -ELOOP)
		why = "is a symbolic link";
	if (why == NULL || asprintf(&part, "%s.part", local) == -1)
		return local_error(f, local, err);
	say(f, part, "%s", why);
	free(part);
	return PX_LOCAL_IO;
}

enum px_exit
fetcher_new(const struct fetch_opts *o, struct fetcher **out)
{
	uint32_t features = PH_FEAT_RESUME | PH_FEAT_SHA256;
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
	f->progress = progress_new(!o->quiet && isatty(STDERR_FILENO));
	f->md = EVP_MD_CTX_new();
	f->chunk = malloc(PH_DATA_CHUNK);
	if (o->zstd)
		f->dctx = ZSTD_createDCtx();
	if (f->progress == NULL || f->md == NULL || f->chunk == NULL ||
	    (o->zstd && f->dctx == NULL)) {
		fprintf(stderr, "porthole: %s\n", strerror(ENOMEM));
		ex = PX_LOCAL_IO;
		goto fail;
	}
	if (o->zstd)
		features |= PH_FEAT_ZSTD;
	if ((ex = client_new(o->endpoint, features, &f->conn)) != PX_OK)
		goto fail;
	client_set_progress(f->conn, f->progress);
	*out = f;
	return PX_OK;
fail:
	fetcher_free(f);
	return ex;
}

struct client *
fetcher_client(struct fetcher *f)
{
	return f->conn;
}

void
fetcher_free(struct fetcher *f)
{
	if (f == NULL)
		return;
	client_close(f->conn);
	progress_free(f->progress);
	EVP_MD_CTX_free(f->md);
	ZSTD_freeDCtx(f->dctx);
	free(f->chunk);
	free(f);
}

/* Whether local names a directory to download into. */
static bool
local_is_dir(const char *local)
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
target_path(struct fetcher *f, const struct transfer *t, const char *local,
    bool into_dir, char **out)
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
			say(f, t->shown, "names the repository root, not a "
			    "file");
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
		return local_error(f, t->shown, -ENOMEM);
	}
	return PX_OK;
}

/*
 * Starts the digest. When resuming, streams the bytes already in the .part
 * through it and sets the GET offset to their count, so that the digest
 * still covers the whole file.
 */
static enum px_exit
hash_existing(struct fetcher *f, struct transfer *t, bool resume)
{
	ssize_t n;

	t->offset = 0;
	if (EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1) {
		say(f, t->shown, "cannot start SHA-256");
		return PX_LOCAL_IO;
	}
	while (resume && (n = dest_read_part(t->dest, t->offset, f->chunk,
	    PH_DATA_CHUNK)) != 0) {
		if (n < 0)
			return local_error(f, dest_part_path(t->dest), (int)n);
		if (EVP_DigestUpdate(f->md, f->chunk, (size_t)n) != 1) {
			say(f, t->shown, "SHA-256 failed");
			return PX_LOCAL_IO;
		}
		t->offset += (uint64_t)n;
	}
	return PX_OK;
}

static enum px_exit
send_get(struct fetcher *f, struct transfer *t)
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
	snprintf(m.u.get.path, sizeof(m.u.get.path), "%s", t->remote);
	return client_send(f->conn, &m);
}

/* Gives up on a reply stream half way: the connection is out of step. */
static enum px_exit
abandon(struct fetcher *f, enum px_exit ex)
{
	client_set_broken(f->conn);
	return ex;
}

static enum px_exit
on_meta(struct fetcher *f, struct transfer *t, const struct ph_meta *meta)
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
	if ((rc = dest_begin(t->dest, t->offset)) < 0)
		return abandon(f, local_error(f, dest_part_path(t->dest), rc));
	progress_start(f->progress, t->local, meta->size, t->offset);
	return PX_OK;
}

/* Hashes and stores len file bytes that arrived for t. */
static enum px_exit
on_bytes(struct fetcher *f, struct transfer *t, const uint8_t *bytes,
    size_t len)
{
	int rc;

	if (!t->have_meta)
		return client_protocol_error(f->conn, "file data before META");
	if (len == 0 || len > t->meta.size - t->offset - t->received)
		return client_protocol_error(f->conn,
		    "DATA of %zu bytes after %" PRIu64 " of %" PRIu64, len,
		    t->received, t->meta.size - t->offset);
	if (EVP_DigestUpdate(f->md, bytes, len) != 1) {
		say(f, t->shown, "SHA-256 failed");
		return abandon(f, PX_LOCAL_IO);
	}
	if ((rc = dest_write(t->dest, bytes, len)) < 0)
		return abandon(f, local_error(f, dest_part_path(t->dest), rc));
	t->received += len;
	progress_update(f->progress, t->offset + t->received);
	return PX_OK;
}

/*
 * Unpacks one DATA_ZSTD frame into the fixed chunk buffer. The declared
 * size is checked before any decompression, so a hostile frame can neither
 * overrun the buffer nor make us work for bytes we would refuse.
 */
static enum px_exit
on_zstd(struct fetcher *f, struct transfer *t, const struct ph_data *d)
{
	unsigned long long declared;
	size_t n;

	if (!t->want_zstd)
		return client_protocol_error(f->conn,
		    "DATA_ZSTD that was not asked for");
	declared = ZSTD_getFrameContentSize(d->bytes, d->len);
	if (declared == ZSTD_CONTENTSIZE_UNKNOWN ||
	    declared == ZSTD_CONTENTSIZE_ERROR || declared == 0 ||
	    declared > PH_DATA_CHUNK)
		return client_protocol_error(f->conn,
		    "DATA_ZSTD content size unknown or not 1..%d bytes",
		    PH_DATA_CHUNK);
	/* Exactly one frame: no trailing frames or bytes ride along. */
	n = ZSTD_findFrameCompressedSize(d->bytes, d->len);
	if (ZSTD_isError(n) || n != d->len)
		return client_protocol_error(f->conn,
		    "DATA_ZSTD is not exactly one zstd frame");
	n = ZSTD_decompressDCtx(f->dctx, f->chunk, PH_DATA_CHUNK, d->bytes,
	    d->len);
	if (ZSTD_isError(n) || n != declared)
		return client_protocol_error(f->conn,
		    "DATA_ZSTD does not decompress: %s", ZSTD_isError(n) ?
		    ZSTD_getErrorName(n) : "wrong size");
	return on_bytes(f, t, f->chunk, n);
}

/* Checks END against what arrived and against both digests. */
static enum px_exit
on_end(struct fetcher *f, struct transfer *t, const struct ph_end *end)
{
	char want[65], got[65];
	unsigned int len = 0;

	if (!t->have_meta)
		return client_protocol_error(f->conn, "END before META");
	if (t->received != t->meta.size - t->offset ||
	    end->bytes != t->received)
		return client_protocol_error(f->conn, "END after %" PRIu64
		    " of %" PRIu64 " bytes, and it counts %" PRIu64,
		    t->received, t->meta.size - t->offset, end->bytes);
	if (EVP_DigestFinal_ex(f->md, t->digest, &len) != 1 ||
	    len != PH_SHA256_LEN) {
		say(f, t->shown, "SHA-256 failed");
		return PX_LOCAL_IO;
	}
	if (!f->o->verify)
		return PX_OK;
	if (!t->meta.has_digest || !end->has_digest) {
		say(f, t->shown, "the server sent no SHA-256 digest "
		    "(--no-verify accepts the file unchecked)");
		return PX_INTEGRITY;
	}
	if (memcmp(t->meta.sha256, end->sha256, PH_SHA256_LEN) != 0) {
		say(f, t->shown, "changed on the host during the transfer");
		return PX_INTEGRITY;
	}
	if (memcmp(t->digest, end->sha256, PH_SHA256_LEN) != 0) {
		ph_sha256_hex(end->sha256, want);
		ph_sha256_hex(t->digest, got);
		say(f, t->shown, "SHA-256 mismatch: expected %s, got %s",
		    want, got);
		return PX_INTEGRITY;
	}
	return PX_OK;
}

/* Reads the reply stream to a GET until END (verified) or a failure. */
static enum px_exit
receive(struct fetcher *f, struct transfer *t)
{
	struct ph_msg m;
	enum px_exit ex;

	for (;;) {
		if ((ex = client_recv(f->conn, &m)) != PX_OK)
			return ex;
		switch (m.type) {
		case PH_QUEUED:
			/* Waiting for a slot, before META or while paused. */
			progress_queued(f->progress, t->local,
			    m.u.queued_position);
			ex = PX_OK;
			break;
		case PH_META:
			ex = on_meta(f, t, &m.u.meta);
			break;
		case PH_DATA:
			ex = on_bytes(f, t, m.u.data.bytes, m.u.data.len);
			break;
		case PH_DATA_ZSTD:
			ex = on_zstd(f, t, &m.u.data);
			break;
		case PH_END:
			return on_end(f, t, &m.u.end);
		default:
			return client_unexpected(f->conn, t->shown, &m);
		}
		if (ex != PX_OK)
			return ex;
	}
}

/* Prints the per-file result: the verified line and the JSON object. */
static void
report(struct fetcher *f, const struct transfer *t, enum px_exit ex)
{
	double now = progress_now(), seconds = now - t->started;
	char hex[65], rate[FMT_SIZE_LEN];

	progress_clear(f->progress);
	if (ex == PX_OK) {
		ph_sha256_hex(t->digest, hex);
		if (!f->o->quiet) {
			/* Time in the host's queue is not transfer time. */
			fmt_rate(t->received, now - t->meta_at, rate,
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
	if (ex == PX_OK)
		printf(",\"bytes\":%" PRIu64 ",\"sha256\":\"%s\","
		    "\"verified\":%s,\"seconds\":%.3f}\n", t->meta.size, hex,
		    f->o->verify ? "true" : "false", seconds);
	else
		printf(",\"failed\":true,\"exit\":%d}\n", (int)ex);
	fflush(stdout);
}

/* Runs the exchange for one file whose destination is open. */
static enum px_exit
transfer_run(struct fetcher *f, struct transfer *t)
{
	enum px_exit ex;
	int rc;

	if (f->o->verify &&
	    !(client_features(f->conn) & PH_FEAT_SHA256)) {
		say(f, client_endpoint(f->conn), "the server offers no "
		    "SHA-256 digests (--no-verify accepts files unchecked)");
		return PX_INTEGRITY;
	}
	if (t->offset > 0 && !(client_features(f->conn) & PH_FEAT_RESUME)) {
		if (!f->o->quiet)
			say(f, t->local, "the server cannot resume; "
			    "downloading from the start");
		if ((ex = hash_existing(f, t, false)) != PX_OK)
			return ex;
	}
	if ((ex = send_get(f, t)) != PX_OK ||
	    (ex = receive(f, t)) != PX_OK)
		return ex;
	rc = dest_commit(t->dest, t->mode >= 0 ? (uint32_t)t->mode :
	    t->meta.mode, t->meta.mtime_ns);
	if (rc < 0)
		return local_error(f, t->local, rc);
	return PX_OK;
}

/*
 * Downloads one remote path; see fetch_run(). mode is the mode to give the
 * file, or -1 for META's; digest, if not NULL, receives the file's SHA-256.
 */
static enum px_exit
fetch_one(struct fetcher *f, const char *remote, const char *local,
    bool into_dir, int mode, uint8_t *digest)
{
	struct transfer t;
	enum px_exit ex;
	int rc;

	memset(&t, 0, sizeof(t));
	t.arg = remote;
	t.mode = mode;
	t.started = progress_now();
	if ((ex = client_path(remote, t.remote, t.shown)) != PX_OK ||
	    (ex = target_path(f, &t, local, into_dir, &t.local)) != PX_OK)
		goto out;
	if ((rc = dest_open(t.local, f->o->resume, &t.dest)) < 0) {
		ex = open_error(f, t.local, rc);
		goto out;
	}
	/*
	 * Hash a .part being resumed before connecting: the daemon wants the
	 * first request within seconds of the connection, and a large .part
	 * takes longer than that to read.
	 */
	if ((ex = hash_existing(f, &t, f->o->resume)) != PX_OK)
		goto out;
	/* The first file connects; one after a lost connection reconnects. */
	if ((ex = client_connect(f->conn)) != PX_OK)
		goto out;
	ex = transfer_run(f, &t);
	if (ex == PX_OK && digest != NULL)
		memcpy(digest, t.digest, PH_SHA256_LEN);
out:
	report(f, &t, ex);
	/* A cut connection leaves a .part worth resuming; a bad file not. */
	dest_close(t.dest, ex == PX_CONN || ex == PX_BUSY);
	free(t.local);
	return ex;
}

enum px_exit
fetch_run(const struct fetch_opts *o, char *const *remotes, size_t nremotes,
    const char *local)
{
	struct fetcher *f = NULL;
	enum px_exit ex, first = PX_OK;
	bool into_dir = local_is_dir(local);
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
	if ((ex = fetcher_new(o, &f)) != PX_OK)
		goto out;
	for (i = 0; i < nremotes; i++) {
		ex = fetch_one(f, remotes[i], local, into_dir, -1, NULL);
		if (ex != PX_OK && first == PX_OK)
			first = ex;
	}
	ex = first;
out:
	fetcher_free(f);
	return ex;
}

enum px_exit
fetcher_get(struct fetcher *f, const char *remote, const char *local,
    uint32_t mode, uint8_t digest[PH_SHA256_LEN])
{
	return fetch_one(f, remote, local, false, (int)(mode & 0777), digest);
}
