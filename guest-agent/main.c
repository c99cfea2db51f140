/*
 * main.c: the porthole command line: global options, then one command.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "config.h"
#include "fetch.h"
#include "query.h"
#include "sync.h"
#include "usage.h"

#define ENDPOINT_ENV	"PORTHOLE_ENDPOINT"

/* A number macro as a string literal, for the help text. */
#define STR(x)		STR_(x)
#define STR_(x)		#x

static const char usage_text[] =
"usage: porthole [-e ENDPOINT] [--wait SECONDS] COMMAND [ARGS]\n"
"\n"
"Fetch files from the host's Porthole repository, verified by SHA-256.\n"
"\n"
"Commands:\n"
"  get [-q] [--resume] [--no-verify] [--json] [--no-zstd] [--fresh]\n"
"      REMOTE [LOCAL]\n"
"        Download REMOTE. LOCAL defaults to its name in the current\n"
"        directory; an existing directory or a name ending in '/' receives\n"
"        DIR/NAME; '-' writes to standard output. Data goes to LOCAL.part,\n"
"        which becomes LOCAL only once its SHA-256 matches the host's. A\n"
"        device or FIFO at LOCAL is written into, like '-', not replaced.\n"
"  get [OPTIONS] REMOTE... DIR/\n"
"        Download several files over one connection into DIR.\n"
"  stat [--json] REMOTE       Show size, mode, mtime and SHA-256.\n"
"  ls [-l] [--json] [REMOTE]  List a directory (default: the root).\n"
"  ping                       Show round trip time, protocol and server.\n"
"  sync [-q] [--dry-run] [MANIFEST]\n"
"        Bring the files MANIFEST lists (default\n"
"        " SYNC_DEFAULT_MANIFEST ") up to date: download those\n"
"        whose SHA-256 differs from the host's, give them the listed mode\n"
"        and run their hook. One line per file on standard output:\n"
"        unchanged, updated or failed. A bad manifest changes nothing.\n"
"\n"
"Options:\n"
"  -e, --endpoint ENDPOINT  Where portholed listens: vsock:CID:PORT or\n"
"                           unix:PATH. Default: $" ENDPOINT_ENV ", else\n"
"                           " PH_DEFAULT_GUEST_ENDPOINT ".\n"
"      --wait SECONDS       While the host is not listening yet or is busy,\n"
"                           keep trying for up to SECONDS (default "
    STR(CLIENT_WAIT_DEFAULT) ";\n"
"                           0: fail at once). Every command takes it.\n"
"  -h, --help               Show this help.\n"
"  -V, --version            Show the version.\n"
"\n"
"Options of get:\n"
"  -q, --quiet      No progress bar and no 'verified' line.\n"
"      --resume     Continue from LOCAL.part left by an interrupted get.\n"
"      --no-verify  Keep the file without comparing its SHA-256.\n"
"      --json       Print one JSON object per file on standard output.\n"
"      --no-zstd    Do not ask for compressed transfers.\n"
"      --fresh      Refuse a copy the host could not revalidate (a relay\n"
"                   whose own host is down): exit 6 instead.\n"
"Options of stat and ls:\n"
"  -l, --long       (ls) Show type, mode, size and mtime.\n"
"      --json       One JSON object (per entry for ls) per line.\n"
"Options of sync:\n"
"  -q, --quiet      Print only the failed files.\n"
"      --dry-run    Compare only; download, change and run nothing.\n"
"\n"
"Exit status:\n"
"  0  success\n"
"  1  other error on the host (I/O, internal error, bad resume offset)\n"
"  2  usage error, a malformed path, or a bad sync manifest\n"
"  3  not found, not a file, or not a directory\n"
"  4  forbidden, or the path leads outside the repository\n"
"  5  busy: the host was still busy after --wait seconds\n"
"  6  connection: cannot connect (within --wait seconds), timeout,\n"
"     protocol error, connection lost, daemon shutting down or without\n"
"     a repository, or (--fresh) only a copy that could not be\n"
"     revalidated\n"
"  7  integrity: SHA-256 mismatch or damaged data (after one retry), or\n"
"     the file changed on the host\n"
"  8  local I/O error, or a sync hook failed\n"
"With several files (get, sync) the others are still tried; the exit\n"
"status is the first failure's.\n";

/* What every command gets: its arguments, the endpoint and --wait. */
struct cmd_ctx {
	const char	*endpoint;
	unsigned int	 wait_s;
	int		 argc;
	char		**argv;		/* argv[0] is the command's name */
};

struct command {
	const char	 *name;
	enum px_exit	(*run)(struct cmd_ctx *);
};

/* A usage error from porthole, or from its command cmd (may be NULL). */
static enum px_exit
main_usage_fail(const char *cmd, const char *msg, const char *arg)
{
	return (enum px_exit)usage_error("porthole", cmd, msg, arg);
}

/* Turns getopt's '?' or ':' into a usage error naming the option. */
static enum px_exit
main_bad_option(const char *cmd, int ch, char **argv)
{
	return (enum px_exit)usage_bad_option("porthole", cmd, ch, argv);
}

/* Sets ctx's --wait from arg, whole seconds; cmd (may be NULL) for errors. */
static enum px_exit
main_parse_wait(struct cmd_ctx *ctx, const char *cmd, const char *arg)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*arg < '0' || *arg > '9' || *end != '\0' || errno != 0 ||
	    v > CLIENT_WAIT_MAX)
		return main_usage_fail(cmd, "--wait takes whole seconds, 0 to "
		    STR(CLIENT_WAIT_MAX), arg);
	ctx->wait_s = (unsigned int)v;
	return PX_OK;
}

enum {
	OPT_STOP = -2,		/* from main_next_opt(): return its exit code */
	OPT_RESUME = 256,
	OPT_NO_VERIFY,
	OPT_JSON,
	OPT_NO_ZSTD,
	OPT_FRESH,
	OPT_DRY_RUN,
	OPT_WAIT,
};

/*
 * The next option of command cmd that is its own, after taking the ones
 * every command shares: -e sets the endpoint, --wait the time to wait for
 * a busy host, -h prints the help and OPT_STOP with *ex PX_OK, and an
 * unknown or incomplete option or a bad --wait is a usage error (OPT_STOP
 * with *ex set). -1 after the last option.
 */
static int
main_next_opt(struct cmd_ctx *ctx, const char *cmd, const char *optstring,
    const struct option *longopts, enum px_exit *ex)
{
	int ch;

	while ((ch = getopt_long(ctx->argc, ctx->argv, optstring, longopts,
	    NULL)) == 'e' || ch == OPT_WAIT) {
		if (ch == 'e')
			ctx->endpoint = optarg;
		else if ((*ex = main_parse_wait(ctx, cmd, optarg)) != PX_OK)
			return OPT_STOP;
	}
	switch (ch) {
	case 'h':
		fputs(usage_text, stdout);
		*ex = PX_OK;
		return OPT_STOP;
	case '?':
	case ':':
		*ex = main_bad_option(cmd, ch, ctx->argv);
		return OPT_STOP;
	default:
		return ch;
	}
}

static enum px_exit
main_cmd_get(struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "resume", no_argument, NULL, OPT_RESUME },
		{ "no-verify", no_argument, NULL, OPT_NO_VERIFY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "no-zstd", no_argument, NULL, OPT_NO_ZSTD },
		{ "fresh", no_argument, NULL, OPT_FRESH },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct fetch_opts o = { .verify = true, .zstd = true };
	enum px_exit ex;
	int ch, n;

	while ((ch = main_next_opt(ctx, "get", ":e:qh", longopts, &ex)) >= 0) {
		switch (ch) {
		case 'q':
			o.quiet = true;
			break;
		case OPT_RESUME:
			o.resume = true;
			break;
		case OPT_NO_VERIFY:
			o.verify = false;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_NO_ZSTD:
			o.zstd = false;
			break;
		case OPT_FRESH:
			o.fresh = true;
			break;
		}
	}
	if (ch == OPT_STOP)
		return ex;
	o.endpoint = ctx->endpoint;
	o.wait_s = ctx->wait_s;
	n = ctx->argc - optind;
	if (n < 1)
		return main_usage_fail("get", "missing REMOTE", NULL);
	if (n == 1)
		return fetch_run(&o, ctx->argv + optind, 1, NULL);
	return fetch_run(&o, ctx->argv + optind, (size_t)n - 1,
	    ctx->argv[ctx->argc - 1]);
}

/*
 * Parses the options stat and ls share; ls also takes -l and may omit
 * REMOTE (the root). Sets *helped when it printed the help instead.
 */
static enum px_exit
main_parse_query(struct cmd_ctx *ctx, const char *cmd, bool is_ls,
    struct query_opts *o, bool *helped)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "long", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum px_exit ex;
	int ch;

	memset(o, 0, sizeof(*o));
	*helped = false;
	while ((ch = main_next_opt(ctx, cmd, ":e:lh", longopts, &ex)) >= 0) {
		switch (ch) {
		case 'l':
			if (!is_ls)
				return main_usage_fail(cmd, "unknown option",
				    "-l");
			o->long_format = true;
			break;
		case OPT_JSON:
			o->json = true;
			break;
		}
	}
	if (ch == OPT_STOP) {
		*helped = ex == PX_OK;
		return ex;
	}
	o->endpoint = ctx->endpoint;
	o->wait_s = ctx->wait_s;
	if (ctx->argc - optind > 1)
		return main_usage_fail(cmd, "only one REMOTE please", NULL);
	if (ctx->argc - optind < 1 && !is_ls)
		return main_usage_fail(cmd, "missing REMOTE", NULL);
	return PX_OK;
}

static enum px_exit
main_cmd_stat(struct cmd_ctx *ctx)
{
	struct query_opts o;
	enum px_exit ex;
	bool helped;

	ex = main_parse_query(ctx, "stat", false, &o, &helped);
	if (ex != PX_OK || helped)
		return ex;
	return query_stat(&o, ctx->argv[optind]);
}

static enum px_exit
main_cmd_ls(struct cmd_ctx *ctx)
{
	struct query_opts o;
	enum px_exit ex;
	bool helped;

	ex = main_parse_query(ctx, "ls", true, &o, &helped);
	if (ex != PX_OK || helped)
		return ex;
	return query_ls(&o, optind < ctx->argc ? ctx->argv[optind] : "/");
}

static enum px_exit
main_cmd_ping(struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct query_opts o;
	enum px_exit ex;
	int ch;

	memset(&o, 0, sizeof(o));
	/* ping has no options of its own. */
	if ((ch = main_next_opt(ctx, "ping", ":e:h", longopts, &ex)) ==
	    OPT_STOP)
		return ex;
	if (optind != ctx->argc)
		return main_usage_fail("ping", "unexpected argument",
		    ctx->argv[optind]);
	o.endpoint = ctx->endpoint;
	o.wait_s = ctx->wait_s;
	return query_ping(&o);
}

static enum px_exit
main_cmd_sync(struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "quiet", no_argument, NULL, 'q' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sync_opts o = { .quiet = false };
	enum px_exit ex;
	int ch;

	while ((ch = main_next_opt(ctx, "sync", ":e:qh", longopts, &ex)) >= 0) {
		switch (ch) {
		case 'q':
			o.quiet = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		}
	}
	if (ch == OPT_STOP)
		return ex;
	if (ctx->argc - optind > 1)
		return main_usage_fail("sync", "only one MANIFEST please",
		    NULL);
	o.endpoint = ctx->endpoint;
	o.wait_s = ctx->wait_s;
	return sync_run(&o, optind < ctx->argc ? ctx->argv[optind] :
	    SYNC_DEFAULT_MANIFEST);
}

static const struct command commands[] = {
	{ "get", main_cmd_get },
	{ "stat", main_cmd_stat },
	{ "ls", main_cmd_ls },
	{ "ping", main_cmd_ping },
	{ "sync", main_cmd_sync },
};

/* The endpoint to use when -e is not given. */
static const char *
main_default_endpoint(void)
{
	const char *env = getenv(ENDPOINT_ENV);

	return env != NULL && *env != '\0' ? env : PH_DEFAULT_GUEST_ENDPOINT;
}

/* Makes sure everything printed on stdout really got out. */
static enum px_exit
main_flush_stdout(enum px_exit ex)
{
	if (fflush(stdout) == EOF || ferror(stdout)) {
		fprintf(stderr, "porthole: cannot write to standard output\n");
		if (ex == PX_OK)
			ex = PX_LOCAL_IO;
	}
	return ex;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "endpoint", required_argument, NULL, 'e' },
		{ "wait", required_argument, NULL, OPT_WAIT },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct cmd_ctx ctx = { .wait_s = CLIENT_WAIT_DEFAULT };
	enum px_exit ex;
	size_t i;
	int ch;

	/* A closed socket or pipe must be an error return, not a death. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	ctx.endpoint = main_default_endpoint();
	while ((ch = getopt_long(argc, argv, "+:e:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'e':
			ctx.endpoint = optarg;
			break;
		case OPT_WAIT:
			if ((ex = main_parse_wait(&ctx, NULL, optarg)) != PX_OK)
				return ex;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return main_flush_stdout(PX_OK);
		case 'V':
			printf("porthole %s (protocol %d)\n", PORTHOLE_VERSION,
			    PH_PROTO_VERSION);
			return main_flush_stdout(PX_OK);
		default:
			return main_bad_option(NULL, ch, argv);
		}
	}
	if (optind >= argc)
		return main_usage_fail(NULL, "missing COMMAND", NULL);
	ctx.argc = argc - optind;
	ctx.argv = argv + optind;
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(ctx.argv[0], commands[i].name) == 0) {
			/* Restart getopt for the command's own options. */
			optind = 0;
			return main_flush_stdout(commands[i].run(&ctx));
		}
	}
	return main_usage_fail(NULL, "unknown command", ctx.argv[0]);
}
