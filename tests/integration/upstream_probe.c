/*
 * upstream_probe.c: drives hostd/upstream.c against a real parent.
 *
 * Usage: upstream_probe [-v] [--ttl MS] [--stall MS] [--caller-hashes]
 *        ENDPOINT
 *
 * Reads one command per line on stdin and answers each with one line on
 * stdout, so a shell test can run it as a coprocess and act on the parent
 * between commands:
 *
 *   get PATH [OFFSET] [out=FILE] [killpid=PID killat=N] [cancelat=N]
 *       get status=NAME code=C bytes=N size=S hash=HEX digest=HEX ms=T
 *       msg=TEXT        (hash: SHA-256 of the bytes received here;
 *       digest: the one on_end reported; killpid: SIGKILL PID once N
 *       bytes arrived; cancelat: upstream_cancel() once N bytes arrived)
 *   stat PATH        stat status=NAME size=S mtime=NS mode=OCT ftype=F
 *                    digest=HEX ms=T msg=TEXT
 *   list PATH        list status=NAME count=N entries=NAME:SIZE:FTYPE,...
 *                    (every page, following next_cursor)
 *   burst N PATH     N STATs at once: burst ok=K failed=F
 *   up MS            waits for the connection: up 1|0
 *   forget           upstream_forget(): forgot
 *   sleep MS         runs the loop for MS: slept
 *   quit (or EOF)    upstream_free(), then exits 0 once the loop is empty.
 *
 * Status names: OK, EREMOTE, EHOSTDOWN, ECONNRESET, EBADMSG, EILSEQ,
 * ETIMEDOUT, ECANCELED, or the number.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <uv.h>

#include "log.h"
#include "proto.h"
#include "upstream.h"

#define PROBE_LINE	8192

struct probe {
	uv_loop_t	 loop;
	uv_pipe_t	 in;
	uv_timer_t	 timer;
	struct log	*log;
	struct upstream	*u;
	char		 buf[PROBE_LINE * 4];
	size_t		 len;
	bool		 busy;		/* a command is running */
	bool		 eof;
	bool		 quitting;
	/* The command that is running. */
	char		 path[PH_MAX_PATH + 1];
	uint64_t	 start_ms;
	uint64_t	 deadline_ms;
	FILE		*out;
	EVP_MD_CTX	*md;
	struct upstream_req *req;
	uint64_t	 received;
	uint64_t	 size;
	bool		 have_meta;
	pid_t		 killpid;
	uint64_t	 killat;
	uint64_t	 cancelat;
	uint64_t	 cursor;
	char		*entries;	/* LIST: the text so far */
	size_t		 entries_len;
	uint32_t	 count;
	int		 burst_left;
	int		 burst_ok;
	int		 burst_failed;
};

static void	probe_next(struct probe *p);

static const char *
status_name(int status, char *buf, size_t cap)
{
	switch (status) {
	case 0:
		return "OK";
	case -EREMOTE:
		return "EREMOTE";
	case -EHOSTDOWN:
		return "EHOSTDOWN";
	case -ECONNRESET:
		return "ECONNRESET";
	case -EBADMSG:
		return "EBADMSG";
	case -EILSEQ:
		return "EILSEQ";
	case -ETIMEDOUT:
		return "ETIMEDOUT";
	case -ECANCELED:
		return "ECANCELED";
	default:
		snprintf(buf, cap, "%d", status);
		return buf;
	}
}

static uint64_t
probe_ms(struct probe *p)
{
	uv_update_time(&p->loop);
	return uv_now(&p->loop) - p->start_ms;
}

/* Ends the running command and starts the next one from the loop. */
static void
probe_done(struct probe *p)
{
	fflush(stdout);
	p->busy = false;
	p->req = NULL;
	uv_timer_stop(&p->timer);
	probe_next(p);
}

static void
on_get_meta(void *arg, const struct ph_meta *meta)
{
	struct probe *p = arg;

	p->have_meta = true;
	p->size = meta->size;
}

static void
on_get_data(void *arg, const uint8_t *buf, size_t len)
{
	struct probe *p = arg;
	struct upstream_req *r = p->req;

	if (!p->have_meta) {
		printf("get status=PROBE msg=data before meta\n");
		exit(1);
	}
	if (EVP_DigestUpdate(p->md, buf, len) != 1)
		abort();
	if (p->out != NULL && fwrite(buf, 1, len, p->out) != len) {
		perror("upstream_probe: write");
		exit(1);
	}
	p->received += len;
	if (p->killpid > 0 && p->received >= p->killat) {
		kill(p->killpid, SIGKILL);
		p->killpid = 0;
	}
	if (p->cancelat > 0 && p->received >= p->cancelat) {
		p->cancelat = 0;
		upstream_cancel(r);
		printf("get status=CANCELLED bytes=%" PRIu64 " ms=%" PRIu64
		    "\n", p->received, probe_ms(p));
		if (p->out != NULL)
			fclose(p->out);
		p->out = NULL;
		probe_done(p);
	}
}

static void
on_get_end(void *arg, int status, const struct upstream_error *e,
    const uint8_t *sha256)
{
	struct probe *p = arg;
	uint8_t hash[PH_SHA256_LEN];
	char hhex[65], dhex[65], sb[16];
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(p->md, hash, &n) != 1)
		abort();
	ph_util_sha256_hex(hash, hhex);
	if (sha256 != NULL)
		ph_util_sha256_hex(sha256, dhex);
	else
		snprintf(dhex, sizeof(dhex), "-");
	if (status != 0 && e == NULL) {
		printf("get status=PROBE msg=failure without an error\n");
		exit(1);
	}
	printf("get status=%s code=%u bytes=%" PRIu64 " size=%" PRIu64
	    " hash=%s digest=%s ms=%" PRIu64 " msg=%s\n",
	    status_name(status, sb, sizeof(sb)), e != NULL ? e->code : 0,
	    p->received, p->size, hhex, dhex, probe_ms(p),
	    e != NULL ? e->message : "");
	if (p->out != NULL && fclose(p->out) != 0) {
		perror("upstream_probe: close");
		exit(1);
	}
	p->out = NULL;
	probe_done(p);
}

static const struct upstream_get_cbs get_cbs = {
	.on_meta = on_get_meta,
	.on_data = on_get_data,
	.on_end = on_get_end,
};

static void
on_stat(void *arg, int status, const struct upstream_error *e,
    const struct ph_meta *meta, const struct upstream_paths *paths)
{
	struct probe *p = arg;
	char hex[65], sb[16];

	if (status == 0) {
		if (meta->has_digest)
			ph_util_sha256_hex(meta->sha256, hex);
		else
			snprintf(hex, sizeof(hex), "-");
		/* Where the parent says the path leads; "-" if it does not. */
		printf("stat status=OK size=%" PRIu64 " mtime=%" PRId64
		    " mode=%o ftype=%u digest=%s real=%s ms=%" PRIu64 "\n",
		    meta->size, meta->mtime_ns, (unsigned int)meta->mode,
		    (unsigned int)meta->ftype, hex, paths->known ?
		    paths->real : "-", probe_ms(p));
	} else
		printf("stat status=%s code=%u ms=%" PRIu64 " msg=%s\n",
		    status_name(status, sb, sizeof(sb)), e->code,
		    probe_ms(p), e->message);
	probe_done(p);
}

static void	on_list(void *arg, int status, const struct upstream_error *e,
		    const struct ph_list_reply *page,
		    const struct upstream_paths *paths);

/* Appends one page's entries to the text, then asks for the next. */
static void
on_list(void *arg, int status, const struct upstream_error *e,
    const struct ph_list_reply *page, const struct upstream_paths *paths)
{
	struct probe *p = arg;
	struct ph_list_entry ent;
	struct ph_reader rd;
	char sb[16], item[PH_MAX_NAME + 64];
	int err, n;

	(void)paths;
	if (status != 0) {
		printf("list status=%s code=%u msg=%s\n",
		    status_name(status, sb, sizeof(sb)), e->code, e->message);
		goto done;
	}
	ph_reader_init(&rd, page->entries, page->entries_len);
	while ((err = ph_message_list_entry_next(&rd, &ent)) == 1) {
		n = snprintf(item, sizeof(item), "%s%s:%" PRIu64 ":%u",
		    p->entries_len > 0 ? "," : "", ent.name, ent.size,
		    (unsigned int)ent.ftype);
		p->entries = realloc(p->entries, p->entries_len + (size_t)n +
		    1);
		if (p->entries == NULL)
			abort();
		memcpy(p->entries + p->entries_len, item, (size_t)n + 1);
		p->entries_len += (size_t)n;
		p->count++;
	}
	if (err < 0) {
		printf("list status=PROBE msg=bad entry block\n");
		exit(1);
	}
	if (page->next_cursor != 0) {
		p->cursor = page->next_cursor;
		err = upstream_list(p->u, p->path, p->cursor, on_list, p,
		    &p->req);
		if (err == 0)
			return;
		printf("list status=%s msg=upstream_list refused\n",
		    status_name(err, sb, sizeof(sb)));
		goto done;
	}
	printf("list status=OK count=%u entries=%s\n", (unsigned int)p->count,
	    p->entries != NULL ? p->entries : "");
done:
	free(p->entries);
	p->entries = NULL;
	p->entries_len = 0;
	probe_done(p);
}

static void
on_burst_stat(void *arg, int status, const struct upstream_error *e,
    const struct ph_meta *meta, const struct upstream_paths *paths)
{
	struct probe *p = arg;

	(void)e;
	(void)meta;
	(void)paths;
	if (status == 0)
		p->burst_ok++;
	else
		p->burst_failed++;
	if (--p->burst_left > 0)
		return;
	printf("burst ok=%d failed=%d ms=%" PRIu64 "\n", p->burst_ok,
	    p->burst_failed, probe_ms(p));
	probe_done(p);
}

/* Polls for `up` and ends `sleep`. */
static void
on_timer(uv_timer_t *t)
{
	struct probe *p = t->data;

	if (p->deadline_ms == 0) {
		printf("slept\n");
		probe_done(p);
		return;
	}
	if (upstream_connected(p->u) || uv_now(&p->loop) >= p->deadline_ms) {
		printf("up %d ms=%" PRIu64 "\n", upstream_connected(p->u) ? 1 :
		    0, probe_ms(p));
		probe_done(p);
	}
}

/* Reports a request that was refused at once. */
static void
refused(struct probe *p, const char *cmd, int err)
{
	char sb[16];

	printf("%s status=%s code=0 ms=%" PRIu64 " msg=refused at once\n",
	    cmd, status_name(err, sb, sizeof(sb)), probe_ms(p));
	probe_done(p);
}

/* Starts one command; the line is NUL-terminated, words split by ' '. */
static void
probe_run(struct probe *p, char *line)
{
	char *words[8], *save = NULL, *w;
	int n = 0, err = 0, i;
	uint64_t offset = 0;

	for (w = strtok_r(line, " ", &save); w != NULL && n < 8;
	    w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	if (n == 0) {
		probe_next(p);
		return;
	}
	p->busy = true;
	uv_update_time(&p->loop);
	p->start_ms = uv_now(&p->loop);
	if (strcmp(words[0], "quit") == 0) {
		p->eof = true;
		p->busy = false;
		probe_next(p);
		return;
	}
	if (strcmp(words[0], "forget") == 0) {
		upstream_forget(p->u);
		printf("forgot\n");
		probe_done(p);
		return;
	}
	if (strcmp(words[0], "sleep") == 0 && n == 2) {
		p->deadline_ms = 0;
		uv_timer_start(&p->timer, on_timer, strtoull(words[1], NULL,
		    10), 0);
		return;
	}
	if (strcmp(words[0], "up") == 0 && n == 2) {
		p->deadline_ms = p->start_ms + strtoull(words[1], NULL, 10);
		uv_timer_start(&p->timer, on_timer, 0, 10);
		return;
	}
	if (n < 2)
		goto usage;
	snprintf(p->path, sizeof(p->path), "%s", words[1]);
	if (strcmp(words[0], "get") == 0) {
		p->received = p->size = 0;
		p->have_meta = false;
		p->killpid = 0;
		p->killat = p->cancelat = 0;
		for (i = 2; i < n; i++) {
			if (strncmp(words[i], "out=", 4) == 0) {
				if ((p->out = fopen(words[i] + 4, "w")) ==
				    NULL) {
					perror(words[i] + 4);
					exit(1);
				}
			} else if (strncmp(words[i], "killpid=", 8) == 0)
				p->killpid = (pid_t)strtol(words[i] + 8, NULL,
				    10);
			else if (strncmp(words[i], "killat=", 7) == 0)
				p->killat = strtoull(words[i] + 7, NULL, 10);
			else if (strncmp(words[i], "cancelat=", 9) == 0)
				p->cancelat = strtoull(words[i] + 9, NULL,
				    10);
			else
				offset = strtoull(words[i], NULL, 10);
		}
		if (EVP_DigestInit_ex(p->md, EVP_sha256(), NULL) != 1)
			abort();
		err = upstream_get(p->u, p->path, offset, &get_cbs, p,
		    &p->req);
		if (err < 0) {
			if (p->out != NULL)
				fclose(p->out);
			p->out = NULL;
			refused(p, "get", err);
		}
		return;
	}
	if (strcmp(words[0], "stat") == 0) {
		if ((err = upstream_stat(p->u, p->path, on_stat, p,
		    &p->req)) < 0)
			refused(p, "stat", err);
		return;
	}
	if (strcmp(words[0], "list") == 0) {
		p->cursor = 0;
		p->count = 0;
		if ((err = upstream_list(p->u, p->path, 0, on_list, p,
		    &p->req)) < 0)
			refused(p, "list", err);
		return;
	}
	if (strcmp(words[0], "burst") == 0 && n == 3) {
		struct upstream_req *r;
		int want = atoi(words[1]);

		snprintf(p->path, sizeof(p->path), "%s", words[2]);
		p->burst_left = want;
		p->burst_ok = p->burst_failed = 0;
		for (i = 0; i < want; i++) {
			if (upstream_stat(p->u, p->path, on_burst_stat, p,
			    &r) < 0) {
				p->burst_failed++;
				p->burst_left--;
			}
		}
		if (p->burst_left == 0) {
			printf("burst ok=%d failed=%d ms=0\n", p->burst_ok,
			    p->burst_failed);
			probe_done(p);
		}
		return;
	}
usage:
	printf("usage error\n");
	probe_done(p);
}

/* Runs the next complete line, or quits after EOF. */
static void
probe_next(struct probe *p)
{
	char line[PROBE_LINE];
	char *nl;
	size_t n;

	if (p->busy || p->quitting)
		return;
	nl = memchr(p->buf, '\n', p->len);
	if (nl != NULL) {
		n = (size_t)(nl - p->buf);
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		memcpy(line, p->buf, n);
		line[n] = '\0';
		memmove(p->buf, nl + 1, p->len - (size_t)(nl + 1 - p->buf));
		p->len -= (size_t)(nl + 1 - p->buf);
		probe_run(p, line);
		return;
	}
	if (!p->eof)
		return;
	p->quitting = true;
	upstream_free(p->u);
	p->u = NULL;
	uv_close((uv_handle_t *)&p->timer, NULL);
	if (!uv_is_closing((uv_handle_t *)&p->in))
		uv_close((uv_handle_t *)&p->in, NULL);
	printf("bye\n");
	fflush(stdout);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct probe *p = h->data;

	(void)hint;
	b->base = p->buf + p->len;
	b->len = sizeof(p->buf) - p->len;
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct probe *p = s->data;

	(void)b;
	if (n < 0) {
		p->eof = true;
		uv_read_stop(s);
		uv_close((uv_handle_t *)s, NULL);
	} else
		p->len += (size_t)n;
	if (p->len == sizeof(p->buf)) {
		fprintf(stderr, "upstream_probe: line too long\n");
		exit(1);
	}
	probe_next(p);
}

int
main(int argc, char **argv)
{
	struct upstream_config cfg;
	struct probe *p;
	bool verbose = false;
	int i, err;

	memset(&cfg, 0, sizeof(cfg));
	for (i = 1; i < argc - 1; i++) {
		if (strcmp(argv[i], "-v") == 0)
			verbose = true;
		else if (strcmp(argv[i], "--ttl") == 0 && i + 2 < argc)
			cfg.meta_ttl_ms = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--stall") == 0 && i + 2 < argc)
			cfg.stall_ms = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--caller-hashes") == 0)
			cfg.caller_hashes = true;
		else
			break;
	}
	if (i != argc - 1) {
		fprintf(stderr, "usage: upstream_probe [-v] [--ttl MS] "
		    "[--stall MS] [--caller-hashes] ENDPOINT\n");
		return 2;
	}
	cfg.endpoint = argv[i];
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->md = EVP_MD_CTX_new()) == NULL)
		return 1;
	uv_loop_init(&p->loop);
	if (log_new(verbose, &p->log) < 0)
		return 1;
	if ((err = upstream_new(&p->loop, &cfg, p->log, &p->u)) < 0) {
		fprintf(stderr, "upstream_probe: upstream_new: %s\n",
		    strerror(-err));
		return 1;
	}
	uv_timer_init(&p->loop, &p->timer);
	p->timer.data = p;
	uv_pipe_init(&p->loop, &p->in, 0);
	p->in.data = p;
	if ((err = uv_pipe_open(&p->in, 0)) < 0 ||
	    (err = uv_read_start((uv_stream_t *)&p->in, on_alloc,
	    on_read)) < 0) {
		fprintf(stderr, "upstream_probe: stdin: %s\n",
		    uv_strerror(err));
		return 1;
	}
	uv_run(&p->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&p->loop) != 0) {
		fprintf(stderr, "upstream_probe: handles left open\n");
		return 1;
	}
	log_free(p->log);
	EVP_MD_CTX_free(p->md);
	free(p);
	return 0;
}
