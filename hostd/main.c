/*
 * main.c: portholed's command line, startup, signals and teardown.
 *
 * Everything the daemon owns hangs off one struct in main()'s frame; there
 * is no global mutable state. Signals arrive through uv_signal handles.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "control.h"
#include "digest.h"
#include "log.h"
#include "proto.h"
#include "repo.h"
#include "server.h"
#include "state.h"

#define HOSTD_MAX_LISTEN	16
#define HOSTD_DEFAULT_GRACE	10
#define HOSTD_MAX_GRACE		86400
/* Digests remembered in memory. */
#define HOSTD_DIGEST_MEMO	4096
/* Room for a path escaped for a log line. */
#define HOSTD_LOG_PATH		1024
/* Transfer queue and timeout defaults (see --help). */
#define HOSTD_MAX_ACTIVE	1
#define HOSTD_MAX_QUEUE		256
#define HOSTD_MAX_PER_PEER	8
#define HOSTD_QUANTUM_BYTES	(64ull * 1024 * 1024)
#define HOSTD_QUANTUM_MS	1000
#define HOSTD_REQUEST_TIMEOUT	3
#define HOSTD_IDLE_TIMEOUT	900
#define HOSTD_STALL_TIMEOUT	30

enum {
	OPT_STATE_DIR = 256,
	OPT_CACHE_DIR,
	OPT_GRACE,
	OPT_MAX_ACTIVE,
	OPT_MAX_QUEUE,
	OPT_MAX_PER_PEER,
	OPT_QUANTUM_BYTES,
	OPT_QUANTUM_MS,
	OPT_REQUEST_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_STALL_TIMEOUT,
	OPT_TEST_DECLARED_PEER,
};

struct hostd_opts {
	const char	*listen[HOSTD_MAX_LISTEN];
	size_t		 nlisten;
	char		*repo;		/* absolute, malloc'd */
	const char	*control;
	const char	*state_dir;
	const char	*cache_dir;	/* reserved for the content cache */
	uint64_t	 grace_s;
	struct server_config srv;
	bool		 verbose;
	bool		 check;
};

struct hostd {
	uv_loop_t	 loop;
	struct hostd_opts opts;
	struct log	*log;
	struct state	*state;
	struct digest	*digest;
	struct server	*srv;
	struct control	*ctl;
	uv_signal_t	 sig_term;
	uv_signal_t	 sig_int;
	uv_signal_t	 sig_hup;
	bool		 signals_open;
	bool		 stopping;
};

/* Prints the help text, every option included. */
static void
usage(FILE *f)
{
	fprintf(f,
"usage: portholed [options]\n"
"\n"
"Serves a repository directory to virtual machines over vsock.\n"
"\n"
"options:\n"
"  -l, --listen ENDPOINT   listen on ENDPOINT; repeatable (default %s)\n"
"                          ENDPOINT is vsock:CID:PORT, vsock::PORT or\n"
"                          unix:PATH\n"
"  -r, --repo DIR          serve DIR and save it in the state database;\n"
"                          without it the saved repository is used\n"
"  -c, --control PATH      control socket, mode 0600 (default %s)\n"
"      --state-dir DIR     state database directory (default %s)\n"
"      --cache-dir DIR     content cache directory, reserved\n"
"                          (default %s)\n"
"      --shutdown-grace S  seconds running transfers get to finish on\n"
"                          SIGTERM (default %d)\n"
"      --max-active N      transfers streaming at once (default %d)\n"
"      --max-queue N       requests waiting for a transfer slot, all\n"
"                          clients together; more get BUSY (default %d)\n"
"      --max-per-peer N    requests one client (VM) may have waiting or\n"
"                          streaming; more get BUSY (default %d)\n"
"      --quantum-bytes N   a transfer yields its slot to another waiting\n"
"                          client after N bytes (default %llu) ...\n"
"      --quantum-ms N      ... or after N milliseconds (default %d)\n"
"      --request-timeout S seconds a new connection gets to send HELLO\n"
"                          and its first request (default %d)\n"
"      --idle-timeout S    seconds an idle connection stays open between\n"
"                          requests (default %d)\n"
"      --stall-timeout S   seconds a client holding a transfer slot may\n"
"                          stop reading before it is dropped (default %d)\n"
"      --test-declared-peer\n"
"                          TESTS ONLY: on unix listeners, take the HELLO's\n"
"                          declared_peer as the client's identity for fair\n"
"                          queueing (vsock listeners never do)\n"
"  -n, --check-config      check the options and the repository, then exit\n"
"  -v, --verbose           log debug lines\n"
"  -V, --version           print the version and exit\n"
"  -h, --help              print this help and exit\n"
"\n"
"Signals: SIGTERM or SIGINT stop the daemon (exit 0); SIGHUP re-reads the\n"
"repository from the state database.\n"
"Exit status: 0 after SIGTERM/SIGINT, 1 on a startup error, 2 on a usage\n"
"error.\n",
	    PH_DEFAULT_LISTEN_ENDPOINT, PH_DEFAULT_CONTROL,
	    PH_DEFAULT_STATE_DIR, PH_DEFAULT_CACHE_DIR, HOSTD_DEFAULT_GRACE,
	    HOSTD_MAX_ACTIVE, HOSTD_MAX_QUEUE, HOSTD_MAX_PER_PEER,
	    (unsigned long long)HOSTD_QUANTUM_BYTES, HOSTD_QUANTUM_MS,
	    HOSTD_REQUEST_TIMEOUT, HOSTD_IDLE_TIMEOUT, HOSTD_STALL_TIMEOUT);
}

/* Prints a usage error and the hint; returns 2, the exit status. */
static int
usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("portholed: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'portholed --help'.\n", stderr);
	return 2;
}

/* Makes a path absolute against the current directory, without resolving. */
static char *
absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	if (asprintf(&out, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd,
	    path) < 0)
		return NULL;
	return out;
}

/* Parses a decimal number in [min, max]; false if it is not one. */
static bool
parse_num(const char *s, uint64_t min, uint64_t max, uint64_t *v)
{
	unsigned long long n;
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || n < min || n > max)
		return false;
	*v = n;
	return true;
}

/* The numeric options: name, range and where the value goes (scaled). */
static int
parse_num_opt(int ch, const char *arg, struct hostd_opts *o)
{
	struct server_config *c = &o->srv;
	uint64_t v;

	switch (ch) {
	case OPT_MAX_ACTIVE:
		if (!parse_num(arg, 1, 4096, &v))
			return usage_error("invalid --max-active '%s' (1 to "
			    "4096)", arg);
		c->queue.max_active = (uint32_t)v;
		break;
	case OPT_MAX_QUEUE:
		if (!parse_num(arg, 0, 1000000, &v))
			return usage_error("invalid --max-queue '%s' (0 to "
			    "1000000)", arg);
		c->queue.max_queue = (uint32_t)v;
		break;
	case OPT_MAX_PER_PEER:
		if (!parse_num(arg, 1, 1000000, &v))
			return usage_error("invalid --max-per-peer '%s' (1 to "
			    "1000000)", arg);
		c->queue.max_per_peer = (uint32_t)v;
		break;
	case OPT_QUANTUM_BYTES:
		if (!parse_num(arg, 1, UINT64_MAX, &v))
			return usage_error("invalid --quantum-bytes '%s' (at "
			    "least 1)", arg);
		c->queue.quantum_bytes = v;
		break;
	case OPT_QUANTUM_MS:
		if (!parse_num(arg, 1, 86400000, &v))
			return usage_error("invalid --quantum-ms '%s' (1 to "
			    "86400000)", arg);
		c->queue.quantum_ms = v;
		break;
	case OPT_REQUEST_TIMEOUT:
	case OPT_IDLE_TIMEOUT:
	case OPT_STALL_TIMEOUT:
		if (!parse_num(arg, 1, 86400, &v))
			return usage_error("invalid %s '%s' (seconds, 1 to "
			    "86400)", ch == OPT_REQUEST_TIMEOUT ?
			    "--request-timeout" : ch == OPT_IDLE_TIMEOUT ?
			    "--idle-timeout" : "--stall-timeout", arg);
		if (ch == OPT_REQUEST_TIMEOUT)
			c->request_timeout_ms = v * 1000;
		else if (ch == OPT_IDLE_TIMEOUT)
			c->idle_timeout_ms = v * 1000;
		else
			c->stall_timeout_ms = v * 1000;
		break;
	default:
		abort();
	}
	return -1;
}

/*
 * Parses the command line into o. Returns -1 to go on, 0 after printing
 * help or the version, 2 on a usage error.
 */
static int
parse_args(int argc, char **argv, struct hostd_opts *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "repo", required_argument, NULL, 'r' },
		{ "control", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "shutdown-grace", required_argument, NULL, OPT_GRACE },
		{ "max-active", required_argument, NULL, OPT_MAX_ACTIVE },
		{ "max-queue", required_argument, NULL, OPT_MAX_QUEUE },
		{ "max-per-peer", required_argument, NULL, OPT_MAX_PER_PEER },
		{ "quantum-bytes", required_argument, NULL, OPT_QUANTUM_BYTES },
		{ "quantum-ms", required_argument, NULL, OPT_QUANTUM_MS },
		{ "request-timeout", required_argument, NULL,
		    OPT_REQUEST_TIMEOUT },
		{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
		{ "stall-timeout", required_argument, NULL, OPT_STALL_TIMEOUT },
		{ "test-declared-peer", no_argument, NULL,
		    OPT_TEST_DECLARED_PEER },
		{ "check-config", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ph_endpoint ep;
	const char *repo = NULL;
	char *end;
	unsigned long long v;
	int ch, r;

	o->control = PH_DEFAULT_CONTROL;
	o->state_dir = PH_DEFAULT_STATE_DIR;
	o->cache_dir = PH_DEFAULT_CACHE_DIR;
	o->grace_s = HOSTD_DEFAULT_GRACE;
	o->srv.queue.max_active = HOSTD_MAX_ACTIVE;
	o->srv.queue.max_queue = HOSTD_MAX_QUEUE;
	o->srv.queue.max_per_peer = HOSTD_MAX_PER_PEER;
	o->srv.queue.quantum_bytes = HOSTD_QUANTUM_BYTES;
	o->srv.queue.quantum_ms = HOSTD_QUANTUM_MS;
	o->srv.request_timeout_ms = HOSTD_REQUEST_TIMEOUT * 1000;
	o->srv.idle_timeout_ms = HOSTD_IDLE_TIMEOUT * 1000;
	o->srv.stall_timeout_ms = HOSTD_STALL_TIMEOUT * 1000;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":l:r:c:nvVh", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'l':
			if (ph_endpoint_parse(optarg, &ep) < 0)
				return usage_error("invalid endpoint '%s' "
				    "(expected vsock:CID:PORT, vsock::PORT or "
				    "unix:PATH)", optarg);
			if (o->nlisten == HOSTD_MAX_LISTEN)
				return usage_error("too many --listen options "
				    "(at most %d)", HOSTD_MAX_LISTEN);
			o->listen[o->nlisten++] = optarg;
			break;
		case 'r':
			if (optarg[0] == '\0')
				return usage_error("empty repository path");
			repo = optarg;
			break;
		case 'c':
			if (optarg[0] == '\0')
				return usage_error("empty control socket "
				    "path");
			o->control = optarg;
			break;
		case OPT_STATE_DIR:
			if (optarg[0] == '\0')
				return usage_error("empty state directory");
			o->state_dir = optarg;
			break;
		case OPT_CACHE_DIR:
			if (optarg[0] == '\0')
				return usage_error("empty cache directory");
			o->cache_dir = optarg;
			break;
		case OPT_GRACE:
			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' ||
			    *end != '\0' || errno != 0 || v > HOSTD_MAX_GRACE)
				return usage_error("invalid --shutdown-grace "
				    "'%s' (seconds, 0 to 86400)", optarg);
			o->grace_s = v;
			break;
		case OPT_MAX_ACTIVE:
		case OPT_MAX_QUEUE:
		case OPT_MAX_PER_PEER:
		case OPT_QUANTUM_BYTES:
		case OPT_QUANTUM_MS:
		case OPT_REQUEST_TIMEOUT:
		case OPT_IDLE_TIMEOUT:
		case OPT_STALL_TIMEOUT:
			if ((r = parse_num_opt(ch, optarg, o)) >= 0)
				return r;
			break;
		case OPT_TEST_DECLARED_PEER:
			o->srv.trust_declared = true;
			break;
		case 'n':
			o->check = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'V':
			printf("portholed %s\n", PORTHOLE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs an argument",
			    argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (o->nlisten == 0)
		o->listen[o->nlisten++] = PH_DEFAULT_LISTEN_ENDPOINT;
	if (repo != NULL && (o->repo = absolute_path(repo)) == NULL) {
		fprintf(stderr, "portholed: cannot make %s absolute: %s\n",
		    repo, strerror(errno));
		return 1;
	}
	return -1;
}

/* Lifts the soft descriptor limit to the hard one: one per connection. */
static void
raise_nofile(struct log *log)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug(log, "cannot raise the descriptor limit: %s",
		    strerror(errno));
}

/* A path made safe for a log line; "none" for NULL. */
static const char *
log_path(const char *path, char *buf, size_t cap)
{
	if (path == NULL)
		return "none";
	return log_escape(path, strlen(path), false, buf, cap);
}

/* A one-line reason for a repository that cannot be opened. */
static const char *
repo_error_text(int err, char *buf, size_t cap)
{
	if (err == -ENOENT)
		snprintf(buf, cap, "no such directory");
	else if (err == -ENOTDIR)
		snprintf(buf, cap, "not a directory");
	else
		snprintf(buf, cap, "%s", strerror(-err));
	return buf;
}

/*
 * Picks the repository: --repo (opened, then saved) or the saved one.
 * Returns 0 (possibly with *out NULL: none) or 1 after printing why the
 * daemon cannot start.
 */
static int
setup_repo(struct hostd *h, struct repo **out)
{
	char why[256], esc[HOSTD_LOG_PATH];
	char *saved = NULL;
	int err;

	*out = NULL;
	if (h->opts.repo != NULL) {
		if ((err = repo_open(h->opts.repo, out)) < 0) {
			fprintf(stderr, "portholed: cannot use repository "
			    "%s: %s\n", h->opts.repo,
			    repo_error_text(err, why, sizeof(why)));
			return 1;
		}
		if (state_set(h->state, STATE_KEY_REPO, repo_path(*out)) < 0) {
			fprintf(stderr, "portholed: cannot save the repository "
			    "in the state database: %s\n",
			    state_errmsg(h->state));
			repo_free(*out);
			*out = NULL;
			return 1;
		}
		return 0;
	}
	if (state_get(h->state, STATE_KEY_REPO, &saved) < 0) {
		fprintf(stderr, "portholed: cannot read the state database: "
		    "%s\n", state_errmsg(h->state));
		return 1;
	}
	if (saved == NULL)
		return 0;
	/* A saved repository that went away is not fatal: serve none. */
	if ((err = repo_open(saved, out)) < 0)
		log_warn(h->log, "saved repository %s is unusable: %s; "
		    "serving none until it is set",
		    log_path(saved, esc, sizeof(esc)),
		    repo_error_text(err, why, sizeof(why)));
	free(saved);
	return 0;
}

/* SIGHUP: take the repository from the state database again. */
static void
reload(struct hostd *h)
{
	struct repo *repo = NULL, *cur;
	char why[256], esc[HOSTD_LOG_PATH], esc2[HOSTD_LOG_PATH];
	char *saved = NULL;
	int err;

	if (h->stopping)
		return;
	cur = server_repo(h->srv);
	if (state_get(h->state, STATE_KEY_REPO, &saved) < 0) {
		log_warn(h->log, "reload: cannot read the state database: %s",
		    state_errmsg(h->state));
		return;
	}
	if (saved == NULL) {
		log_info(h->log, "reload: no repository saved; keeping %s",
		    log_path(cur != NULL ? repo_path(cur) : NULL, esc,
		    sizeof(esc)));
		return;
	}
	if ((err = repo_open(saved, &repo)) < 0) {
		log_warn(h->log, "reload: cannot use repository %s: %s; "
		    "keeping %s", log_path(saved, esc, sizeof(esc)),
		    repo_error_text(err, why, sizeof(why)),
		    log_path(cur != NULL ? repo_path(cur) : NULL, esc2,
		    sizeof(esc2)));
		free(saved);
		return;
	}
	free(saved);
	server_set_repo(h->srv, repo);
	log_info(h->log, "reloaded: repository %s", log_path(repo_path(repo),
	    esc, sizeof(esc)));
}

/* Signal handles live in main()'s frame: nothing to free. */
static void
on_signal_closed(uv_handle_t *handle)
{
	(void)handle;
}

/* The server has closed everything: let the loop run dry. */
static void
on_server_done(void *arg)
{
	struct hostd *h = arg;

	digest_shutdown(h->digest);
	if (h->signals_open) {
		h->signals_open = false;
		uv_close((uv_handle_t *)&h->sig_term, on_signal_closed);
		uv_close((uv_handle_t *)&h->sig_int, on_signal_closed);
		uv_close((uv_handle_t *)&h->sig_hup, on_signal_closed);
	}
}

/* Starts the orderly shutdown; called again, it cuts the grace short. */
static void
stop(struct hostd *h)
{
	if (!h->stopping) {
		h->stopping = true;
		control_close(h->ctl);
	}
	if (h->srv != NULL)
		server_shutdown(h->srv, h->opts.grace_s * 1000, on_server_done,
		    h);
	else
		on_server_done(h);
}

/* SIGTERM/SIGINT stop the daemon; SIGHUP reloads the repository. */
static void
on_signal(uv_signal_t *sig, int signum)
{
	struct hostd *h = sig->data;

	if (signum == SIGHUP) {
		reload(h);
		return;
	}
	if (h->stopping)
		log_info(h->log, "%s again: ending transfers now",
		    strsignal(signum));
	else
		log_info(h->log, "stopping (%s)", strsignal(signum));
	stop(h);
}

/* Installs the signal handlers. Returns 0 or a negative errno. */
static int
setup_signals(struct hostd *h)
{
	int err;

	uv_signal_init(&h->loop, &h->sig_term);
	uv_signal_init(&h->loop, &h->sig_int);
	uv_signal_init(&h->loop, &h->sig_hup);
	h->sig_term.data = h->sig_int.data = h->sig_hup.data = h;
	h->signals_open = true;
	if ((err = uv_signal_start(&h->sig_term, on_signal, SIGTERM)) < 0 ||
	    (err = uv_signal_start(&h->sig_int, on_signal, SIGINT)) < 0 ||
	    (err = uv_signal_start(&h->sig_hup, on_signal, SIGHUP)) < 0)
		return err;
	return 0;
}

/* Validates what --check-config can check without changing anything. */
static int
check_config(struct hostd *h)
{
	struct repo *repo = NULL;
	char why[256];
	int err;

	if (h->opts.repo != NULL) {
		if ((err = repo_open(h->opts.repo, &repo)) < 0) {
			fprintf(stderr, "portholed: cannot use repository "
			    "%s: %s\n", h->opts.repo,
			    repo_error_text(err, why, sizeof(why)));
			return 1;
		}
		repo_free(repo);
	}
	printf("portholed: configuration OK\n");
	return 0;
}

int
main(int argc, char **argv)
{
	struct hostd h;
	struct repo *repo = NULL;
	char err[512], eps[1024], esc[HOSTD_LOG_PATH];
	int rc, r;

	memset(&h, 0, sizeof(h));
	if ((rc = parse_args(argc, argv, &h.opts)) >= 0)
		goto out_opts;
	rc = 1;
	if (h.opts.check) {
		rc = check_config(&h);
		goto out_opts;
	}
	/* A peer that hangs up must not kill the daemon with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	umask(027);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (log_new(h.opts.verbose, &h.log) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		goto out_opts;
	}
	raise_nofile(h.log);
	if ((r = uv_loop_init(&h.loop)) < 0) {
		fprintf(stderr, "portholed: cannot create the event loop: %s\n",
		    uv_strerror(r));
		goto out_log;
	}
	if (state_open(h.opts.state_dir, &h.state, err, sizeof(err)) < 0) {
		fprintf(stderr, "portholed: state database: %s\n", err);
		goto out_loop;
	}
	if (setup_repo(&h, &repo) != 0)
		goto out_loop;
	if (digest_new(&h.loop, HOSTD_DIGEST_MEMO, &h.digest) < 0 ||
	    server_new(&h.loop, h.log, h.digest, &h.opts.srv, &h.srv) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		repo_free(repo);
		goto out_run;
	}
	server_set_repo(h.srv, repo);
	for (size_t i = 0; i < h.opts.nlisten; i++) {
		if (server_listen(h.srv, h.opts.listen[i], err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "portholed: %s\n", err);
			goto out_run;
		}
	}
	if (control_new(&h.loop, h.log, h.srv, h.state, h.opts.control,
	    &h.ctl, err, sizeof(err)) < 0) {
		fprintf(stderr, "portholed: %s\n", err);
		goto out_run;
	}
	if ((r = setup_signals(&h)) < 0) {
		fprintf(stderr, "portholed: cannot handle signals: %s\n",
		    uv_strerror(r));
		goto out_run;
	}
	server_listeners(h.srv, eps, sizeof(eps));
	repo = server_repo(h.srv);
	log_info(h.log, "%s listening on %s (%s%s)", PORTHOLE_VERSION, eps,
	    repo != NULL ? "repository " : "no repository configured",
	    repo != NULL ? log_path(repo_path(repo), esc, sizeof(esc)) : "");
	log_debug(h.log, "control socket %s, state %s, cache %s (reserved), "
	    "shutdown grace %llu s", control_path(h.ctl), h.opts.state_dir,
	    h.opts.cache_dir, (unsigned long long)h.opts.grace_s);
	log_debug(h.log, "transfers: %u at once, %u waiting, %u per client, "
	    "slices of %llu bytes or %llu ms; timeouts: request %llu ms, idle "
	    "%llu ms, stall %llu ms", h.opts.srv.queue.max_active,
	    h.opts.srv.queue.max_queue, h.opts.srv.queue.max_per_peer,
	    (unsigned long long)h.opts.srv.queue.quantum_bytes,
	    (unsigned long long)h.opts.srv.queue.quantum_ms,
	    (unsigned long long)h.opts.srv.request_timeout_ms,
	    (unsigned long long)h.opts.srv.idle_timeout_ms,
	    (unsigned long long)h.opts.srv.stall_timeout_ms);
	if (h.opts.srv.trust_declared)
		log_warn(h.log, "--test-declared-peer: unix clients choose "
		    "their own queueing identity; for tests only");
	rc = 0;

out_run:
	/* On error as after a signal: close everything, let it finish. */
	if (rc != 0) {
		h.opts.grace_s = 0;
		stop(&h);
	}
	uv_run(&h.loop, UV_RUN_DEFAULT);
	if (rc == 0)
		log_info(h.log, "stopped");
	control_free(h.ctl);
	server_free(h.srv);
	digest_free(h.digest);
out_loop:
	if ((r = uv_loop_close(&h.loop)) < 0)
		log_warn(h.log, "event loop not empty at exit: %s",
		    uv_strerror(r));
	state_close(h.state);
out_log:
	log_free(h.log);
out_opts:
	free(h.opts.repo);
	return rc;
}
