/*
 * sync.c: `porthole sync`, keeping the files a manifest lists up to date.
 *
 * The manifest is parsed completely before anything is touched. Then each
 * entry costs one STAT; only a file whose SHA-256 differs from the local
 * copy's is downloaded, through the same verified path as `porthole get`,
 * and only then is its hook run. All entries share one connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fetch.h"
#include "fmt.h"
#include "manifest.h"
#include "sync.h"

#define SYNC_HASH_BUF	(64 * 1024)

/* State shared by all entries of one run. */
struct syncer {
	const struct sync_opts	*o;
	struct fetch_opts	 fo;
	struct fetcher		*f;
	EVP_MD_CTX		*md;
	uint8_t			*buf;		/* SYNC_HASH_BUF bytes */
};

/* What the local file looks like before the entry is applied. */
struct local_state {
	int		 fd;		/* -1 when missing */
	uint32_t	 mode;		/* permission bits */
	uint8_t		 digest[PH_SHA256_LEN];
};

/* A short reason for a failure class, for the summary line. */
static const char *
sync_class_text(enum px_exit ex)
{
	switch (ex) {
	case PX_REMOTE:
		return "error on the host";
	case PX_USAGE:
		return "bad path";
	case PX_NOT_FOUND:
		return "not found on the host";
	case PX_FORBIDDEN:
		return "forbidden by the host";
	case PX_BUSY:
		return "the host is busy";
	case PX_CONN:
		return "connection failed";
	case PX_INTEGRITY:
		return "integrity check failed";
	case PX_LOCAL_IO:
		return "local I/O error";
	default:
		return "failed";
	}
}

/* Prints "WORD LOCAL[: or ( ...)]" on standard output. */
static void
sync_summary(const char *word, const struct manifest_entry *e, const char *sep,
    const char *detail, const char *end)
{
	fputs(word, stdout);
	fputc(' ', stdout);
	fmt_safe_str(stdout, e->local);
	if (detail != NULL) {
		fputs(sep, stdout);
		fmt_safe_str(stdout, detail);
		fputs(end, stdout);
	}
	fputc('\n', stdout);
	fflush(stdout);
}

static void
sync_summary_failed(const struct manifest_entry *e, const char *reason)
{
	sync_summary("failed", e, ": ", reason, "");
}

/*
 * Asks the host for REMOTE's META over the shared connection. On a
 * failure prints the details and copies a short reason into reason.
 */
static enum px_exit
sync_stat_remote(struct syncer *s, const struct manifest_entry *e,
    struct ph_meta *meta, char *reason, size_t cap)
{
	struct client *c = fetch_client(s->f);
	struct ph_msg m;
	enum px_exit ex;

	memset(&m, 0, sizeof(m));
	m.type = PH_STAT;
	snprintf(m.u.stat.path, sizeof(m.u.stat.path), "%s", e->remote);
	if ((ex = client_request(c, &m)) != PX_OK)
		goto fail;
	if (m.type == PH_ERROR) {
		ex = client_remote_error(c, e->shown, &m.u.error);
		snprintf(reason, cap, "%s (%s)",
		    m.u.error.message[0] != '\0' ? m.u.error.message :
		    ph_err_text(m.u.error.code), ph_err_name(m.u.error.code));
		return ex;
	}
	if (m.type != PH_META) {
		ex = client_unexpected(c, e->shown, &m);
		goto fail;
	}
	*meta = m.u.meta;
	if (meta->ftype != PH_FT_REGULAR) {
		snprintf(reason, cap, "%s is not a regular file on the host",
		    e->shown);
		return PX_NOT_FOUND;
	}
	if (!meta->has_digest) {
		snprintf(reason, cap, "the host sent no SHA-256 for %s",
		    e->shown);
		return PX_INTEGRITY;
	}
	return PX_OK;
fail:
	snprintf(reason, cap, "%s", sync_class_text(ex));
	return ex;
}

/*
 * Opens and hashes the current LOCAL file. A missing file is fine (fd -1);
 * a symlink or anything but a regular file is refused rather than
 * replaced. Returns 0 or a negative errno; -ELOOP for a symlink, -EINVAL
 * for another kind of file.
 */
static int
sync_read_local(struct syncer *s, const char *local, struct local_state *ls)
{
	struct stat st;
	unsigned int len = 0;
	ssize_t n;
	int rc = 0;

	memset(ls, 0, sizeof(*ls));
	ls->fd = open(local, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (ls->fd == -1)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(ls->fd, &st) == -1) {
		rc = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto fail;
	}
	ls->mode = (uint32_t)st.st_mode & 07777;
	if (EVP_DigestInit_ex(s->md, EVP_sha256(), NULL) != 1) {
		rc = -EIO;
		goto fail;
	}
	for (;;) {
		if ((n = ph_io_read_full(ls->fd, s->buf, SYNC_HASH_BUF)) < 0) {
			rc = (int)n;
			goto fail;
		}
		if (n == 0)
			break;
		if (EVP_DigestUpdate(s->md, s->buf, (size_t)n) != 1) {
			rc = -EIO;
			goto fail;
		}
	}
	if (EVP_DigestFinal_ex(s->md, ls->digest, &len) != 1 ||
	    len != PH_SHA256_LEN) {
		rc = -EIO;
		goto fail;
	}
	return 0;
fail:
	close(ls->fd);
	ls->fd = -1;
	return rc;
}

/*
 * Runs e's hook with /bin/sh -c in "/", stdin from /dev/null and its
 * output on our stderr (stdout carries only summary lines). Returns 0 when
 * it exits 0, else fills why and returns -1.
 */
static int
sync_run_hook(const struct manifest_entry *e, char *why, size_t cap)
{
	pid_t pid, w;
	int status, fd;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == -1) {
		snprintf(why, cap, "cannot start: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* We ignore SIGPIPE; the hook's commands should not. */
		signal(SIGPIPE, SIG_DFL);
		fd = open("/dev/null", O_RDONLY);
		if (fd == -1 || dup2(fd, STDIN_FILENO) == -1 ||
		    dup2(STDERR_FILENO, STDOUT_FILENO) == -1 ||
		    chdir("/") == -1 ||
		    setenv("PORTHOLE_SYNC_LOCAL", e->local, 1) == -1 ||
		    setenv("PORTHOLE_SYNC_REMOTE", e->shown, 1) == -1)
			_exit(126);
		if (fd > STDERR_FILENO)
			close(fd);
		execl("/bin/sh", "sh", "-c", e->hook, (char *)NULL);
		_exit(127);
	}
	do
		w = waitpid(pid, &status, 0);
	while (w == -1 && errno == EINTR);
	if (w == -1) {
		snprintf(why, cap, "%s", strerror(errno));
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status))
		snprintf(why, cap, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(why, cap, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(why, cap, "ended abnormally");
	return -1;
}

/* Gives an unchanged file the manifest's mode if it differs. */
static enum px_exit
sync_entry_unchanged(struct syncer *s, const struct manifest_entry *e,
    struct local_state *ls)
{
	char detail[64];

	if (ls->mode == e->mode) {
		if (!s->o->quiet)
			sync_summary("unchanged", e, NULL, NULL, NULL);
		return PX_OK;
	}
	if (s->o->dry_run) {
		snprintf(detail, sizeof(detail), "would set mode %04o",
		    (unsigned int)e->mode);
	} else {
		if (fchmod(ls->fd, e->mode) == -1) {
			snprintf(detail, sizeof(detail), "cannot set mode: "
			    "%s", strerror(errno));
			sync_summary_failed(e, detail);
			return PX_LOCAL_IO;
		}
		snprintf(detail, sizeof(detail), "mode set to %04o",
		    (unsigned int)e->mode);
	}
	if (!s->o->quiet)
		sync_summary("unchanged", e, " (", detail, ")");
	return PX_OK;
}

/* Downloads a changed or missing file, then runs its hook. */
static enum px_exit
sync_entry_update(struct syncer *s, const struct manifest_entry *e)
{
	uint8_t digest[PH_SHA256_LEN];
	char why[128], detail[160];
	enum px_exit ex;

	if (s->o->dry_run) {
		if (!s->o->quiet)
			sync_summary("would update", e, " (", e->hook != NULL ?
			    "and run its hook" : NULL, ")");
		return PX_OK;
	}
	if ((ex = fetch_get(s->f, e->remote, e->local, e->mode,
	    digest)) != PX_OK) {
		sync_summary_failed(e, sync_class_text(ex));
		return ex;
	}
	if (e->hook == NULL) {
		if (!s->o->quiet)
			sync_summary("updated", e, NULL, NULL, NULL);
		return PX_OK;
	}
	if (sync_run_hook(e, why, sizeof(why)) == 0) {
		if (!s->o->quiet)
			sync_summary("updated", e, " (", "hook ok", ")");
		return PX_OK;
	}
	snprintf(detail, sizeof(detail), "hook failed: %s", why);
	sync_summary("updated", e, " (", detail, ")");
	fputs("porthole: ", stderr);
	fmt_safe_str(stderr, e->local);
	fprintf(stderr, ": hook failed: %s\n", why);
	return PX_LOCAL_IO;
}

/* Brings one entry up to date; returns its exit code. */
static enum px_exit
sync_entry(struct syncer *s, const struct manifest_entry *e)
{
	struct local_state ls = { .fd = -1 };
	struct ph_meta meta;
	char reason[PH_MAX_MESSAGE + PH_MAX_PATH + 64];
	enum px_exit ex;
	int rc;

	/* The local side first: a file we would refuse costs no request. */
	if ((rc = sync_read_local(s, e->local, &ls)) < 0) {
		snprintf(reason, sizeof(reason), "%s", rc == -ELOOP ?
		    "is a symbolic link" : rc == -EINVAL ?
		    "not a regular file" : strerror(-rc));
		sync_summary_failed(e, reason);
		return PX_LOCAL_IO;
	}
	if ((ex = sync_stat_remote(s, e, &meta, reason, sizeof(reason))) !=
	    PX_OK) {
		sync_summary_failed(e, reason);
		goto out;
	}
	if (ls.fd != -1 &&
	    memcmp(ls.digest, meta.sha256, PH_SHA256_LEN) == 0)
		ex = sync_entry_unchanged(s, e, &ls);
	else
		ex = sync_entry_update(s, e);
out:
	if (ls.fd != -1)
		close(ls.fd);
	return ex;
}

/* Loads the manifest, printing why it is refused. */
static enum px_exit
sync_load(const char *path, struct manifest **m)
{
	struct manifest_error err;
	int rc;

	if ((rc = manifest_load(path, m, &err)) == 0)
		return PX_OK;
	fputs("porthole: sync: ", stderr);
	fmt_safe_str(stderr, path);
	if (err.line > 0)
		fprintf(stderr, ":%u", err.line);
	fputs(": ", stderr);
	fmt_safe_str(stderr, err.msg);
	fputs(rc == -EINVAL ? " (no file was changed)\n" : "\n", stderr);
	return rc == -EINVAL ? PX_USAGE : PX_LOCAL_IO;
}

enum px_exit
sync_run(const struct sync_opts *o, const char *path)
{
	struct manifest *m = NULL;
	struct syncer s;
	enum px_exit ex, first = PX_OK;
	size_t i;

	memset(&s, 0, sizeof(s));
	s.o = o;
	s.fo.endpoint = o->endpoint;
	s.fo.wait_s = o->wait_s;
	s.fo.quiet = true;
	s.fo.verify = true;
	s.fo.zstd = true;
	if ((ex = sync_load(path, &m)) != PX_OK || manifest_count(m) == 0)
		goto out;
	/* First: it also sets up libcrypto the way porthole wants it. */
	if ((ex = fetch_new(&s.fo, &s.f)) != PX_OK)
		goto out;
	s.md = EVP_MD_CTX_new();
	s.buf = malloc(SYNC_HASH_BUF);
	if (s.md == NULL || s.buf == NULL) {
		fprintf(stderr, "porthole: %s\n", strerror(ENOMEM));
		ex = PX_LOCAL_IO;
		goto out;
	}
	for (i = 0; i < manifest_count(m); i++) {
		ex = sync_entry(&s, manifest_entry(m, i));
		if (ex != PX_OK && first == PX_OK)
			first = ex;
	}
	/* The updated files' directories, each fsynced once. */
	ex = fetch_finish(s.f);
	if (first == PX_OK)
		first = ex;
	ex = first;
out:
	fetch_free(s.f);
	EVP_MD_CTX_free(s.md);
	free(s.buf);
	manifest_free(m);
	return ex;
}
