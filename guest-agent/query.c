/*
 * query.c: `porthole stat`, `porthole ls` and `porthole ping`.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "progress.h"
#include "query.h"

/* Prints the negotiated features as words separated by spaces. */
static void
query_print_features(uint32_t features)
{
	static const struct {
		uint32_t	 bit;
		const char	*name;
	} names[] = {
		{ PH_FEAT_ZSTD, "zstd" },
		{ PH_FEAT_RESUME, "resume" },
		{ PH_FEAT_SHA256, "sha256" },
		{ PH_FEAT_REVERIFY, "reverify" },
		{ PH_FEAT_STALE, "stale" },
	};
	const char *sep = "";
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (features & names[i].bit) {
			printf("%s%s", sep, names[i].name);
			sep = " ";
		}
	}
	if (*sep == '\0')
		fputs("none", stdout);
}

/*
 * Sends the request in *m and reads the reply into *m, trying a busy host
 * again as client_request() does; a reply of another type than want is
 * reported with shown (the path or endpoint) in it.
 */
static enum px_exit
query_call(struct client *c, struct ph_msg *m, uint8_t want,
    const char *shown)
{
	enum px_exit ex;

	if ((ex = client_request(c, m)) != PX_OK)
		return ex;
	if (m->type != want)
		return client_unexpected(c, shown, m);
	return PX_OK;
}

static void
query_print_stat_text(const char *shown, const struct ph_meta *meta)
{
	char size[FMT_SIZE_LEN], mode[PH_MODE_STRLEN], mtime[PH_TIME_STRLEN];
	char hex[65];

	fmt_size(meta->size, size, sizeof(size));
	ph_util_mode_string(meta->ftype, meta->mode, mode);
	ph_util_time_string(meta->mtime_ns, mtime, sizeof(mtime));
	fputs("path:   ", stdout);
	fmt_safe_str(stdout, shown);
	printf("\ntype:   %s\n", ph_util_ftype_name(meta->ftype));
	printf("size:   %" PRIu64 " (%s)\n", meta->size, size);
	printf("mode:   %04o (%s)\n", meta->mode & 07777, mode);
	printf("mtime:  %s\n", mtime);
	if (meta->has_digest) {
		ph_util_sha256_hex(meta->sha256, hex);
		printf("sha256: %s\n", hex);
	}
	if (meta->stale)
		puts("stale:  the host could not revalidate this with its "
		    "upstream");
}

static void
query_print_stat_json(const char *shown, const struct ph_meta *meta)
{
	char hex[65];

	fputs("{\"path\":", stdout);
	fmt_json_str(stdout, shown);
	printf(",\"type\":\"%s\",\"size\":%" PRIu64 ",\"mode\":\"%04o\","
	    "\"mtime_ns\":%" PRId64 ",\"sha256\":",
	    ph_util_ftype_name(meta->ftype),
	    meta->size, meta->mode & 07777, meta->mtime_ns);
	if (meta->has_digest) {
		ph_util_sha256_hex(meta->sha256, hex);
		printf("\"%s\"", hex);
	} else
		fputs("null", stdout);
	printf(",\"stale\":%s}\n", meta->stale ? "true" : "false");
}

enum px_exit
query_stat(const struct query_opts *o, const char *remote)
{
	char norm[PH_MAX_PATH + 1], shown[PH_MAX_PATH + 2];
	struct client *c = NULL;
	struct ph_msg m;
	enum px_exit ex;

	if ((ex = client_path(remote, norm, shown)) != PX_OK ||
	    (ex = client_open(o->endpoint, PH_FEAT_ALL, o->wait_s,
	    &c)) != PX_OK)
		goto out;
	memset(&m, 0, sizeof(m));
	m.type = PH_STAT;
	snprintf(m.u.stat.path, sizeof(m.u.stat.path), "%s", norm);
	if ((ex = query_call(c, &m, PH_META, shown)) != PX_OK)
		goto out;
	if (o->json)
		query_print_stat_json(shown, &m.u.meta);
	else
		query_print_stat_text(shown, &m.u.meta);
out:
	client_close(c);
	return ex;
}

/* Prints one directory entry in the chosen format. */
static void
query_print_entry(const struct query_opts *o, const struct ph_list_entry *e)
{
	char mode[PH_MODE_STRLEN], mtime[PH_TIME_STRLEN];

	if (o->json) {
		fputs("{\"name\":", stdout);
		fmt_json_str(stdout, e->name);
		printf(",\"type\":\"%s\",\"size\":%" PRIu64 ",\"mode\":"
		    "\"%04o\",\"mtime_ns\":%" PRId64 "}\n",
		    ph_util_ftype_name(e->ftype), e->size, e->mode & 07777,
		    e->mtime_ns);
		return;
	}
	if (o->long_format) {
		ph_util_mode_string(e->ftype, e->mode, mode);
		ph_util_time_string(e->mtime_ns, mtime, sizeof(mtime));
		printf("%s %12" PRIu64 "  %s  ", mode, e->size, mtime);
	}
	fmt_safe_str(stdout, e->name);
	fputc('\n', stdout);
}

/* Prints the entries of one LIST_REPLY. */
static enum px_exit
query_print_list_reply(const struct query_opts *o, struct client *c,
    const struct ph_list_reply *lr)
{
	struct ph_list_entry e;
	struct ph_reader r;
	int rc;

	ph_reader_init(&r, lr->entries, lr->entries_len);
	while ((rc = ph_message_list_entry_next(&r, &e)) == 1)
		query_print_entry(o, &e);
	if (rc < 0)
		return client_protocol_error(c, "bad LIST_REPLY entry");
	return PX_OK;
}

enum px_exit
query_ls(const struct query_opts *o, const char *remote)
{
	char norm[PH_MAX_PATH + 1], shown[PH_MAX_PATH + 2];
	struct client *c = NULL;
	struct ph_msg m;
	uint64_t cursor = 0;
	enum px_exit ex;

	if ((ex = client_path(remote, norm, shown)) != PX_OK ||
	    (ex = client_open(o->endpoint, PH_FEAT_ALL, o->wait_s,
	    &c)) != PX_OK)
		goto out;
	do {
		memset(&m, 0, sizeof(m));
		m.type = PH_LIST;
		m.u.list.cursor = cursor;
		snprintf(m.u.list.path, sizeof(m.u.list.path), "%s", norm);
		if ((ex = query_call(c, &m, PH_LIST_REPLY, shown)) != PX_OK)
			goto out;
		if ((ex = query_print_list_reply(o, c,
		    &m.u.list_reply)) != PX_OK)
			goto out;
		/* A cursor that does not advance would loop for ever. */
		if (m.u.list_reply.next_cursor != 0 &&
		    m.u.list_reply.next_cursor <= cursor) {
			ex = client_protocol_error(c, "LIST cursor went from "
			    "%" PRIu64 " to %" PRIu64, cursor,
			    m.u.list_reply.next_cursor);
			goto out;
		}
		cursor = m.u.list_reply.next_cursor;
	} while (cursor != 0);
out:
	fflush(stdout);
	client_close(c);
	return ex;
}

enum px_exit
query_ping(const struct query_opts *o)
{
	struct client *c = NULL;
	struct timespec ts;
	struct ph_msg m;
	uint64_t nonce;
	double sent, rtt;
	enum px_exit ex;

	if ((ex = client_open(o->endpoint, PH_FEAT_ALL, o->wait_s,
	    &c)) != PX_OK)
		goto out;
	clock_gettime(CLOCK_REALTIME, &ts);
	nonce = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	nonce ^= (uint64_t)getpid() << 32;
	memset(&m, 0, sizeof(m));
	m.type = PH_PING;
	m.u.ping_nonce = nonce;
	sent = progress_now();
	if ((ex = query_call(c, &m, PH_PONG, client_endpoint(c))) != PX_OK)
		goto out;
	rtt = progress_now() - sent;
	if (m.u.ping_nonce != nonce) {
		ex = client_protocol_error(c, "PONG carries another nonce");
		goto out;
	}
	fputs("endpoint: ", stdout);
	fmt_safe_str(stdout, client_endpoint(c));
	fputs("\nserver:   ", stdout);
	fmt_safe_str(stdout, client_server_agent(c));
	printf("\nprotocol: %u\nfeatures: ", client_version(c));
	query_print_features(client_features(c));
	printf("\nrtt:      %.3f ms\n", rtt * 1000.0);
out:
	client_close(c);
	return ex;
}
