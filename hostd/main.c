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
#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "acl.h"
#include "audit.h"
#include "conf.h"
#include "config.h"
#include "control.h"
#include "digest.h"
#include "log.h"
#include "proto.h"
#include "repo.h"
#include "server.h"
#include "state.h"
#include "store.h"
#include "upstream.h"
#include "vsockdev.h"
#include "vmmap.h"

/* Digests remembered in memory. */
#define HOSTD_DIGEST_MEMO	4096
/* Room for a path escaped for a log line. */
#define HOSTD_LOG_PATH		1024
/* The service manager hears the request count at most this often. */
#define HOSTD_NOTIFY_MS		1000

enum {
	OPT_STATE_DIR = 256,
	OPT_CACHE_DIR,
	OPT_CACHE_SIZE,
	OPT_UPSTREAM,
	OPT_VHOST_USER,
	OPT_GRACE,
	OPT_MAX_ACTIVE,
	OPT_MAX_QUEUE,
	OPT_MAX_PER_PEER,
	OPT_QUANTUM_BYTES,
	OPT_QUANTUM_MS,
	OPT_REQUEST_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_CONNS_PER_PEER,
	OPT_STALL_TIMEOUT,
	OPT_LIBVIRT,
	OPT_ACL_DEFAULT,
	OPT_AUDIT_MAX_ROWS,
	OPT_AUDIT_MAX_DAYS,
	OPT_TEST_DECLARED_PEER,
	OPT_CONFIG,
};

struct hostd_opts {
	struct conf	 cfg;
	bool		 check;
};

struct hostd {
	uv_loop_t	 loop;
	struct hostd_opts opts;
	struct log	*log;
	struct state	*state;
	struct digest	*digest;
	struct store	*store;
	struct server	*srv;
	struct control	*ctl;
	struct vsockdev	*vsd;		/* --vhost-user devices, or NULL */
	uv_signal_t	 sig_term;
	uv_signal_t	 sig_int;
	uv_signal_t	 sig_hup;
	uv_timer_t	 notify_timer;	/* STATUS= updates */
	uint64_t	 notified;	/* requests in the last STATUS= */
	bool		 notify_open;
	bool		 signals_open;
	bool		 stopping;
};

/* Prints the help text, every option included. */
static void
main_usage(FILE *f, const struct conf *d)
{
	fprintf(f,
"usage: portholed [options]\n"
"\n"
"Serves a repository directory to virtual machines over vsock.\n"
"\n"
"options:\n"
"      --config FILE       read settings from FILE (default\n"
"                          %s; a missing\n"
"                          default file is fine); options given here\n"
"                          override it, --listen replaces its listeners\n"
"  -l, --listen ENDPOINT   listen on ENDPOINT; repeatable (default %s)\n"
"                          ENDPOINT is vsock:CID:PORT, vsock::PORT or\n"
"                          unix:PATH\n"
"  -r, --repo DIR          serve DIR and save it in the state database;\n"
"                          without it the saved repository is used\n"
"  -c, --control PATH      control socket, mode 0600 (default %s)\n"
"      --state-dir DIR     state database directory (default %s)\n"
"      --cache-dir DIR     content cache directory (default %s)\n"
"      --cache-size SIZE   bytes the cache may use, with K, M, G or T\n"
"                          (default %lluG); 0 keeps digests only\n"
"      --upstream ENDPOINT relay mode: the repository is the portholed at\n"
"                          ENDPOINT (e.g. vsock:2:7390), cached here;\n"
"                          not with --repo\n"
"      --vhost-user PATH,cid=N[,name=VM]\n"
"                          be the virtio-vsock device of the QEMU VM that\n"
"                          connects to the unix socket PATH (vhost-user,\n"
"                          mode 0600; -device vhost-user-vsock-pci): the\n"
"                          guest gets CID N and reaches this daemon at\n"
"                          vsock:2:7390; repeatable, one per VM; with it\n"
"                          there is no default vsock listener\n"
"      --shutdown-grace S  seconds running transfers get to finish on\n"
"                          SIGTERM (default %llu)\n"
"      --max-active N      transfers streaming at once (default %u)\n"
"      --max-queue N       requests waiting for a transfer slot, all\n"
"                          clients together; more get BUSY (default %u)\n"
"      --max-per-peer N    requests one client (VM) may have waiting or\n"
"                          streaming; more get BUSY (default %u)\n"
"      --quantum-bytes N   a transfer yields its slot to another waiting\n"
"                          client after N bytes (default %llu) ...\n"
"      --quantum-ms N      ... or after N milliseconds (default %llu)\n"
"      --request-timeout S seconds a new connection gets to send HELLO,\n"
"                          then its first request, and a request to\n"
"                          arrive whole (default %llu)\n"
"      --idle-timeout S    seconds an idle connection stays open between\n"
"                          requests (default %llu)\n"
"      --stall-timeout S   seconds a client holding a transfer slot may\n"
"                          stop reading before it is dropped (default %llu)\n"
"      --max-conns-per-peer N\n"
"                          connections one client (VM) may keep open; a\n"
"                          new one closes its oldest idle one, or gets\n"
"                          BUSY (default %u)\n"
"      --libvirt URI       name vsock peers after the libvirt domains with\n"
"                          their CIDs (default %s; none turns it off)\n"
"      --acl-default allow|deny\n"
"                          what a request no access rule matches gets\n"
"                          (default %s)\n"
"      --audit-max-rows N  audit trail rows kept (default %llu; 0 turns\n"
"                          the audit trail off)\n"
"      --audit-max-days N  audit rows older than N days are deleted\n"
"                          (default %llu; 0: no age limit)\n"
"      --test-declared-peer\n"
"                          TESTS ONLY: on unix listeners, take the HELLO's\n"
"                          declared_peer as the client's identity for fair\n"
"                          queueing and as its vsock CID for access rules\n"
"                          and libvirt names (vsock listeners never do)\n"
"  -n, --check-config      check the configuration file, the options and\n"
"                          the repository, print \"configuration OK\" and\n"
"                          exit 0, or the error and exit 1\n"
"  -v, --verbose           log debug lines\n"
"  -V, --version           print the version and exit\n"
"  -h, --help              print this help and exit\n"
"\n"
"Under systemd, sockets passed by socket activation (LISTEN_FDS) are served\n"
"as well, and readiness and status are reported (NOTIFY_SOCKET).\n"
"Signals: SIGTERM or SIGINT stop the daemon (exit 0); SIGHUP re-reads the\n"
"repository and the access rules from the state database.\n"
"Exit status: 0 after SIGTERM/SIGINT, 1 on a startup error, 2 on a usage\n"
"error.\n",
	    CONF_DEFAULT_FILE, PH_DEFAULT_LISTEN_ENDPOINT, PH_DEFAULT_CONTROL,
	    PH_DEFAULT_STATE_DIR, PH_DEFAULT_CACHE_DIR,
	    (unsigned long long)(d->cache_size >> 30),
	    (unsigned long long)d->grace_s,
	    d->srv.queue.max_active, d->srv.queue.max_queue,
	    d->srv.queue.max_per_peer,
	    (unsigned long long)d->srv.queue.quantum_bytes,
	    (unsigned long long)d->srv.queue.quantum_ms,
	    (unsigned long long)(d->srv.request_timeout_ms / 1000),
	    (unsigned long long)(d->srv.idle_timeout_ms / 1000),
	    (unsigned long long)(d->srv.stall_timeout_ms / 1000),
	    d->srv.max_conns_per_peer, d->libvirt,
	    d->acl_deny ? "deny" : "allow",
	    (unsigned long long)d->audit_max_rows,
	    (unsigned long long)d->audit_max_days);
}

/* Prints a usage error and the hint; returns 2, the exit status. */
static int
main_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
main_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("portholed: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'portholed --help'.\n", stderr);
	return 2;
}

/* One option from the command line, applied after the file. */
struct hostd_arg {
	enum conf_opt	 opt;
	const char	*value;
};

/* Maps a getopt code to the option it sets; false for the others. */
static bool
main_arg_opt(int ch, enum conf_opt *opt)
{
	switch (ch) {
	case 'l': *opt = CONF_LISTEN; return true;
	case 'r': *opt = CONF_REPO; return true;
	case 'c': *opt = CONF_CONTROL; return true;
	case 'v': *opt = CONF_VERBOSE; return true;
	case OPT_STATE_DIR: *opt = CONF_STATE_DIR; return true;
	case OPT_CACHE_DIR: *opt = CONF_CACHE_DIR; return true;
	case OPT_CACHE_SIZE: *opt = CONF_CACHE_SIZE; return true;
	case OPT_UPSTREAM: *opt = CONF_UPSTREAM; return true;
	case OPT_VHOST_USER: *opt = CONF_VHOST_USER; return true;
	case OPT_GRACE: *opt = CONF_SHUTDOWN_GRACE; return true;
	case OPT_MAX_ACTIVE: *opt = CONF_MAX_ACTIVE; return true;
	case OPT_MAX_QUEUE: *opt = CONF_MAX_QUEUE; return true;
	case OPT_MAX_PER_PEER: *opt = CONF_MAX_PER_PEER; return true;
	case OPT_QUANTUM_BYTES: *opt = CONF_QUANTUM_BYTES; return true;
	case OPT_QUANTUM_MS: *opt = CONF_QUANTUM_MS; return true;
	case OPT_REQUEST_TIMEOUT: *opt = CONF_REQUEST_TIMEOUT; return true;
	case OPT_IDLE_TIMEOUT: *opt = CONF_IDLE_TIMEOUT; return true;
	case OPT_STALL_TIMEOUT: *opt = CONF_STALL_TIMEOUT; return true;
	case OPT_MAX_CONNS_PER_PEER: *opt = CONF_MAX_CONNS_PER_PEER;
		return true;
	case OPT_LIBVIRT: *opt = CONF_LIBVIRT; return true;
	case OPT_ACL_DEFAULT: *opt = CONF_ACL_DEFAULT; return true;
	case OPT_AUDIT_MAX_ROWS: *opt = CONF_AUDIT_MAX_ROWS; return true;
	case OPT_AUDIT_MAX_DAYS: *opt = CONF_AUDIT_MAX_DAYS; return true;
	default: return false;
	}
}

/*
 * Reads the configuration file, then applies the command line on top.
 * The command line is scanned first, to find --config and usage errors
 * before the file is read. Returns -1 to go on, 0 after printing help or
 * the version, 1 for a bad file, 2 for a bad command line.
 */
static int
main_parse_args(int argc, char **argv, struct hostd_opts *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "listen", required_argument, NULL, 'l' },
		{ "repo", required_argument, NULL, 'r' },
		{ "control", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
		{ "cache-dir", required_argument, NULL, OPT_CACHE_DIR },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "upstream", required_argument, NULL, OPT_UPSTREAM },
		{ "vhost-user", required_argument, NULL, OPT_VHOST_USER },
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
		{ "max-conns-per-peer", required_argument, NULL,
		    OPT_MAX_CONNS_PER_PEER },
		{ "libvirt", required_argument, NULL, OPT_LIBVIRT },
		{ "acl-default", required_argument, NULL, OPT_ACL_DEFAULT },
		{ "audit-max-rows", required_argument, NULL,
		    OPT_AUDIT_MAX_ROWS },
		{ "audit-max-days", required_argument, NULL,
		    OPT_AUDIT_MAX_DAYS },
		{ "test-declared-peer", no_argument, NULL,
		    OPT_TEST_DECLARED_PEER },
		{ "check-config", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hostd_arg *args;
	const char *file = CONF_DEFAULT_FILE;
	char err[1024];
	enum conf_opt opt;
	size_t nargs = 0;
	bool explicit_file = false, trust = false, help = false;
	bool listen_seen = false, vhost_seen = false;
	int ch, r, rc = 2;

	if ((r = conf_defaults(&o->cfg)) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		return 1;
	}
	if ((args = calloc((size_t)argc + 1, sizeof(*args))) == NULL) {
		fprintf(stderr, "portholed: out of memory\n");
		return 1;
	}
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":l:r:c:nvVh", longopts,
	    NULL)) != -1) {
		if (main_arg_opt(ch, &opt)) {
			args[nargs].opt = opt;
			args[nargs].value = ch == 'v' ? "yes" : optarg;
			nargs++;
			continue;
		}
		switch (ch) {
		case OPT_CONFIG:
			if (optarg[0] == '\0') {
				rc = main_usage_error("empty --config path");
				goto out;
			}
			file = optarg;
			explicit_file = true;
			break;
		case OPT_TEST_DECLARED_PEER:
			trust = true;
			break;
		case 'n':
			o->check = true;
			break;
		case 'V':
			printf("portholed %s\n", PORTHOLE_VERSION);
			rc = 0;
			goto out;
		case 'h':
			help = true;
			break;
		case ':':
			rc = main_usage_error("option '%s' needs an argument",
			    argv[optind - 1]);
			goto out;
		default:
			rc = main_usage_error("unknown option '%s'",
			    argv[optind - 1]);
			goto out;
		}
	}
	if (optind < argc) {
		rc = main_usage_error("unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (help) {
		main_usage(stdout, &o->cfg);
		rc = 0;
		goto out;
	}
	if ((r = conf_load(&o->cfg, file, err, sizeof(err))) < 0 &&
	    (r != -ENOENT || explicit_file)) {
		fprintf(stderr, "portholed: %s\n", err);
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < nargs; i++) {
		/* Listeners on the command line replace the file's. */
		if (args[i].opt == CONF_LISTEN && !listen_seen) {
			conf_clear_listen(&o->cfg);
			listen_seen = true;
		}
		/* So do vhost-user devices. */
		if (args[i].opt == CONF_VHOST_USER && !vhost_seen) {
			conf_clear_vhost_user(&o->cfg);
			vhost_seen = true;
		}
		if ((r = conf_set(&o->cfg, args[i].opt, args[i].value, "--",
		    err, sizeof(err))) < 0) {
			/* Only running out of memory is not the user's fault. */
			if (r == -ENOMEM) {
				fprintf(stderr, "portholed: %s\n", err);
				rc = 1;
			} else
				rc = main_usage_error("%s", err);
			goto out;
		}
	}
	o->cfg.srv.trust_declared = trust;
	if (o->cfg.upstream != NULL && o->cfg.repo != NULL) {
		rc = main_usage_error("--upstream and --repo exclude each "
		    "other: a relay's repository is its parent");
		goto out;
	}
	rc = -1;
out:
	free(args);
	return rc;
}

/* Lifts the soft descriptor limit to the hard one: one per connection. */
static void
main_raise_nofile(struct log *log)
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
main_log_path(const char *path, char *buf, size_t cap)
{
	if (path == NULL)
		return "none";
	return ph_util_escape(path, strlen(path), false, buf, cap);
}

/* A one-line reason for a repository that cannot be opened. */
static const char *
main_repo_error_text(int err, char *buf, size_t cap)
{
	if (err == -ENOENT)
		snprintf(buf, cap, "no such directory");
	else if (err == -ENOTDIR)
		snprintf(buf, cap, "not a directory");
	else if (err == -ENOSYS)
		snprintf(buf, cap, "/proc is not mounted (files are opened "
		    "through /proc/self/fd)");
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
main_setup_repo(struct hostd *h, struct repo **out)
{
	char why[256], esc[HOSTD_LOG_PATH];
	char *saved = NULL;
	int err;

	*out = NULL;
	if (h->opts.cfg.repo != NULL) {
		if ((err = repo_open(h->opts.cfg.repo, out)) < 0) {
			fprintf(stderr, "portholed: cannot use repository "
			    "%s: %s\n", h->opts.cfg.repo,
			    main_repo_error_text(err, why, sizeof(why)));
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
		    main_log_path(saved, esc, sizeof(esc)),
		    main_repo_error_text(err, why, sizeof(why)));
	free(saved);
	return 0;
}

/* SIGHUP, or a change elsewhere: the access rules from the database. */
static void
main_reload_access(struct hostd *h)
{
	struct acl *acl = server_acl(h->srv);
	size_t n;
	int err;

	if (acl == NULL)
		return;
	if ((err = acl_reload(acl, h->state)) < 0) {
		log_warn(h->log, "reload: cannot read the access rules: %s; "
		    "keeping the %zu loaded", err == -ENOMEM ? "out of memory" :
		    state_errmsg(h->state), acl_count(acl));
		return;
	}
	n = acl_count(acl);
	log_info(h->log, "reloaded: %zu access rule%s, default %s", n,
	    n == 1 ? "" : "s", acl_default_allow(acl) ? "allow" : "deny");
}

/* SIGHUP: take the repository and the rules from the state database. */
static void
main_reload(struct hostd *h)
{
	struct repo *repo = NULL, *cur;
	char why[256], esc[HOSTD_LOG_PATH], esc2[HOSTD_LOG_PATH];
	char *saved = NULL;
	int err;

	if (h->stopping)
		return;
	main_reload_access(h);
	if (h->opts.cfg.upstream != NULL) {
		upstream_forget(store_upstream(h->store));
		log_info(h->log, "reloaded: relay for upstream %s, cached "
		    "listings forgotten", h->opts.cfg.upstream);
		return;
	}
	cur = server_repo(h->srv);
	if (state_get(h->state, STATE_KEY_REPO, &saved) < 0) {
		log_warn(h->log, "reload: cannot read the state database: %s",
		    state_errmsg(h->state));
		return;
	}
	if (saved == NULL) {
		log_info(h->log, "reload: no repository saved; keeping %s",
		    main_log_path(cur != NULL ? repo_path(cur) : NULL, esc,
		    sizeof(esc)));
		return;
	}
	if ((err = repo_open(saved, &repo)) < 0) {
		log_warn(h->log, "reload: cannot use repository %s: %s; "
		    "keeping %s", main_log_path(saved, esc, sizeof(esc)),
		    main_repo_error_text(err, why, sizeof(why)),
		    main_log_path(cur != NULL ? repo_path(cur) : NULL, esc2,
		    sizeof(esc2)));
		free(saved);
		return;
	}
	free(saved);
	server_set_repo(h->srv, repo);
	log_info(h->log, "reloaded: repository %s",
	    main_log_path(repo_path(repo), esc, sizeof(esc)));
}

/* Signal handles live in main()'s frame: nothing to free. */
static void
main_on_signal_closed(uv_handle_t *handle)
{
	(void)handle;
}

/* The server has closed everything: let the loop run dry. */
static void
main_on_server_done(void *arg)
{
	struct hostd *h = arg;

	/* The guests' devices go last: transfers through them are done. */
	vsockdev_close(h->vsd);
	digest_shutdown(h->digest);
	store_shutdown(h->store);
	if (h->signals_open) {
		h->signals_open = false;
		uv_close((uv_handle_t *)&h->sig_term, main_on_signal_closed);
		uv_close((uv_handle_t *)&h->sig_int, main_on_signal_closed);
		uv_close((uv_handle_t *)&h->sig_hup, main_on_signal_closed);
	}
}

/* Notify timer handle lives in struct hostd: nothing to free. */
static void
main_on_notify_closed(uv_handle_t *handle)
{
	(void)handle;
}

/* Tells the service manager how many requests were served, if it changed. */
static void
main_on_notify_timer(uv_timer_t *t)
{
	struct hostd *h = t->data;
	struct server_stats st;

	server_get_stats(h->srv, &st);
	if (st.requests == h->notified)
		return;
	h->notified = st.requests;
#ifdef HAVE_LIBSYSTEMD
	(void)sd_notifyf(0, "STATUS=serving; %llu requests, %zu connections",
	    (unsigned long long)st.requests, st.connections);
#endif
}

/*
 * Under a service manager that asked for it (NOTIFY_SOCKET), reports
 * readiness and then the request count, checked once a second.
 */
static void
main_notify_ready(struct hostd *h)
{
#ifdef HAVE_LIBSYSTEMD
	if (getenv("NOTIFY_SOCKET") == NULL)
		return;
	(void)sd_notify(0, "READY=1\nSTATUS=serving; 0 requests, "
	    "0 connections");
	uv_timer_init(&h->loop, &h->notify_timer);
	h->notify_timer.data = h;
	h->notify_open = true;
	uv_timer_start(&h->notify_timer, main_on_notify_timer, HOSTD_NOTIFY_MS,
	    HOSTD_NOTIFY_MS);
	/* The status updates alone never keep the daemon running. */
	uv_unref((uv_handle_t *)&h->notify_timer);
#else
	(void)h;
	(void)main_on_notify_timer;
#endif
}

/* Tells the service manager the daemon is stopping; ends the updates. */
static void
main_notify_stopping(struct hostd *h)
{
	if (!h->notify_open)
		return;
	h->notify_open = false;
	uv_close((uv_handle_t *)&h->notify_timer, main_on_notify_closed);
#ifdef HAVE_LIBSYSTEMD
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
#endif
}

/*
 * Serves the sockets the service manager passed (socket activation):
 * unix or vsock listening stream sockets only. Returns how many, or -1
 * after printing why the daemon cannot start.
 */
static int
main_adopt_sockets(struct hostd *h)
{
#ifdef HAVE_LIBSYSTEMD
	char err[512];
	int n, fd;

	if ((n = sd_listen_fds(1)) < 0) {
		fprintf(stderr, "portholed: cannot take the passed sockets: "
		    "%s\n", strerror(-n));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		fd = SD_LISTEN_FDS_START + i;
		if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) <= 0 &&
		    sd_is_socket(fd, AF_VSOCK, SOCK_STREAM, 1) <= 0) {
			fprintf(stderr, "portholed: passed descriptor %d is "
			    "not a listening unix or vsock stream socket\n",
			    fd);
			/* Those not yet adopted close with the process. */
			return -1;
		}
		if (server_adopt(h->srv, fd, err, sizeof(err)) < 0) {
			fprintf(stderr, "portholed: %s\n", err);
			return -1;
		}
	}
	return n;
#else
	(void)h;
	return 0;
#endif
}

/* Starts the orderly shutdown; called again, it cuts the grace short. */
static void
main_stop(struct hostd *h)
{
	if (!h->stopping) {
		h->stopping = true;
		main_notify_stopping(h);
		ctl_close(h->ctl);
		vsockdev_stop(h->vsd);
	}
	if (h->srv != NULL)
		server_shutdown(h->srv, h->opts.cfg.grace_s * 1000,
		    main_on_server_done, h);
	else
		main_on_server_done(h);
}

/* SIGTERM/SIGINT stop the daemon; SIGHUP reloads the repository. */
static void
main_on_signal(uv_signal_t *sig, int signum)
{
	struct hostd *h = sig->data;

	if (signum == SIGHUP) {
		main_reload(h);
		return;
	}
	if (h->stopping)
		log_info(h->log, "%s again: ending transfers now",
		    strsignal(signum));
	else
		log_info(h->log, "stopping (%s)", strsignal(signum));
	main_stop(h);
}

/* Installs the signal handlers. Returns 0 or a negative errno. */
static int
main_setup_signals(struct hostd *h)
{
	int err;

	uv_signal_init(&h->loop, &h->sig_term);
	uv_signal_init(&h->loop, &h->sig_int);
	uv_signal_init(&h->loop, &h->sig_hup);
	h->sig_term.data = h->sig_int.data = h->sig_hup.data = h;
	h->signals_open = true;
	if ((err = uv_signal_start(&h->sig_term, main_on_signal,
	    SIGTERM)) < 0 || (err = uv_signal_start(&h->sig_int, main_on_signal,
	    SIGINT)) < 0 || (err = uv_signal_start(&h->sig_hup, main_on_signal,
	    SIGHUP)) < 0)
		return err;
	return 0;
}

/* Opens the content cache and, for a relay, the upstream connection. */
static int
main_setup_store(struct hostd *h)
{
	struct store_config sc;
	char err[1024];
	int r;

	memset(&sc, 0, sizeof(sc));
	sc.cache_dir = h->opts.cfg.cache_dir;
	sc.state_dir = h->opts.cfg.state_dir;
	sc.cache_size = h->opts.cfg.cache_size;
	sc.upstream = h->opts.cfg.upstream;
	if ((r = store_new(&h->loop, h->log, h->digest, &sc, &h->store, err,
	    sizeof(err))) < 0) {
		fprintf(stderr, "portholed: %s\n", err);
		return r;
	}
	server_set_store(h->srv, h->store);
	return 0;
}

/*
 * Names peers (libvirt), loads the access rules and opens the audit
 * trail; the server owns them from then on. Returns 0, or -1 after
 * printing why the daemon cannot start.
 */
static int
main_setup_access(struct hostd *h)
{
	const struct conf *c = &h->opts.cfg;
	struct audit_config ac = { c->audit_max_rows, c->audit_max_days };
	struct vmmap *vm = NULL;
	struct acl *acl = NULL;
	struct audit *audit = NULL;
	int err;

	if (acl_new(!c->acl_deny, &acl) < 0 ||
	    audit_new(&h->loop, h->log, h->state, &ac, &audit) < 0 ||
	    vmmap_new(&h->loop, h->log, c->libvirt, &vm) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		goto fail;
	}
	if ((err = acl_reload(acl, h->state)) < 0) {
		fprintf(stderr, "portholed: cannot read the access rules: %s\n",
		    err == -ENOMEM ? "out of memory" : state_errmsg(h->state));
		goto fail;
	}
	server_set_access(h->srv, vm, acl, audit);
	return 0;
fail:
	/* Handles made so far still close with the server: hand them over. */
	server_set_access(h->srv, vm, acl, audit);
	return -1;
}

/* Becomes the vsock device of each --vhost-user VM. */
static int
main_setup_vhost_user(struct hostd *h)
{
	char err[512];
	int r;

	if (h->opts.cfg.nvhost_user == 0)
		return 0;
	if ((r = vsockdev_new(&h->loop, h->log, h->srv, &h->vsd)) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		return r;
	}
	for (size_t i = 0; i < h->opts.cfg.nvhost_user; i++) {
		if ((r = vsockdev_add(h->vsd, h->opts.cfg.vhost_user[i], err,
		    sizeof(err))) < 0) {
			fprintf(stderr, "portholed: %s\n", err);
			return r;
		}
	}
	return 0;
}

/* Validates what --check-config can check without changing anything. */
static int
main_check_config(struct hostd *h)
{
	struct repo *repo = NULL;
	char why[256];
	int err;

	if (h->opts.cfg.repo != NULL) {
		if ((err = repo_open(h->opts.cfg.repo, &repo)) < 0) {
			fprintf(stderr, "portholed: cannot use repository "
			    "%s: %s\n", h->opts.cfg.repo,
			    main_repo_error_text(err, why, sizeof(why)));
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
	int rc, r, nfds;

	memset(&h, 0, sizeof(h));
	if ((rc = main_parse_args(argc, argv, &h.opts)) >= 0)
		goto out_opts;
	rc = 1;
	if (h.opts.check) {
		rc = main_check_config(&h);
		goto out_opts;
	}
	/* A peer that hangs up must not kill the daemon with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	umask(027);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (log_new(h.opts.cfg.verbose, &h.log) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		goto out_opts;
	}
	main_raise_nofile(h.log);
	if ((r = uv_loop_init(&h.loop)) < 0) {
		fprintf(stderr, "portholed: cannot create the event loop: %s\n",
		    uv_strerror(r));
		goto out_log;
	}
	if (state_open(h.opts.cfg.state_dir, &h.state, err, sizeof(err)) < 0) {
		fprintf(stderr, "portholed: state database: %s\n", err);
		goto out_loop;
	}
	if (h.opts.cfg.upstream == NULL && main_setup_repo(&h, &repo) != 0)
		goto out_loop;
	if (digest_new(&h.loop, HOSTD_DIGEST_MEMO, &h.digest) < 0 ||
	    server_new(&h.loop, h.log, h.digest, &h.opts.cfg.srv, &h.srv) < 0) {
		fprintf(stderr, "portholed: out of memory\n");
		repo_free(repo);
		goto out_run;
	}
	server_set_repo(h.srv, repo);
	if (main_setup_store(&h) < 0 || main_setup_access(&h) < 0)
		goto out_run;
	if ((nfds = main_adopt_sockets(&h)) < 0)
		goto out_run;
	/* The default endpoint only when nothing else listens. */
	if (h.opts.cfg.nlisten == 0 && nfds == 0 &&
	    h.opts.cfg.nvhost_user == 0 &&
	    server_listen(h.srv, PH_DEFAULT_LISTEN_ENDPOINT, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "portholed: %s\n", err);
		goto out_run;
	}
	for (size_t i = 0; i < h.opts.cfg.nlisten; i++) {
		if (server_listen(h.srv, h.opts.cfg.listen[i], err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "portholed: %s\n", err);
			goto out_run;
		}
	}
	if (main_setup_vhost_user(&h) < 0)
		goto out_run;
	if (ctl_new(&h.loop, h.log, h.srv, h.state, h.opts.cfg.control,
	    &h.ctl, err, sizeof(err)) < 0) {
		fprintf(stderr, "portholed: %s\n", err);
		goto out_run;
	}
	ctl_set_vsockdev(h.ctl, h.vsd);
	if ((r = main_setup_signals(&h)) < 0) {
		fprintf(stderr, "portholed: cannot handle signals: %s\n",
		    uv_strerror(r));
		goto out_run;
	}
	server_listeners(h.srv, eps, sizeof(eps));
	if (h.vsd != NULL) {
		size_t l = strlen(eps);

		if (l > 0 && l + 2 < sizeof(eps)) {
			memcpy(eps + l, ", ", 3);
			l += 2;
		}
		vsockdev_names(h.vsd, eps + l, sizeof(eps) - l);
	}
	repo = server_repo(h.srv);
	if (h.opts.cfg.upstream != NULL)
		log_info(h.log, "%s listening on %s (relay for upstream %s)",
		    PORTHOLE_VERSION, eps, h.opts.cfg.upstream);
	else
		log_info(h.log, "%s listening on %s (%s%s)", PORTHOLE_VERSION,
		    eps, repo != NULL ? "repository " :
		    "no repository configured", repo != NULL ?
		    main_log_path(repo_path(repo), esc, sizeof(esc)) : "");
	log_debug(h.log, "control socket %s, state %s, cache %s (%llu bytes), "
	    "shutdown grace %llu s", ctl_path(h.ctl), h.opts.cfg.state_dir,
	    h.opts.cfg.cache_dir, (unsigned long long)h.opts.cfg.cache_size,
	    (unsigned long long)h.opts.cfg.grace_s);
	log_debug(h.log, "transfers: %u at once, %u waiting, %u per client, "
	    "slices of %llu bytes or %llu ms; timeouts: request %llu ms, idle "
	    "%llu ms, stall %llu ms; %u connections per client",
	    h.opts.cfg.srv.queue.max_active,
	    h.opts.cfg.srv.queue.max_queue, h.opts.cfg.srv.queue.max_per_peer,
	    (unsigned long long)h.opts.cfg.srv.queue.quantum_bytes,
	    (unsigned long long)h.opts.cfg.srv.queue.quantum_ms,
	    (unsigned long long)h.opts.cfg.srv.request_timeout_ms,
	    (unsigned long long)h.opts.cfg.srv.idle_timeout_ms,
	    (unsigned long long)h.opts.cfg.srv.stall_timeout_ms,
	    h.opts.cfg.srv.max_conns_per_peer);
	log_debug(h.log, "access: %zu rules, default %s; audit: %llu rows, "
	    "%llu days; libvirt %s", acl_count(server_acl(h.srv)),
	    h.opts.cfg.acl_deny ? "deny" : "allow",
	    (unsigned long long)h.opts.cfg.audit_max_rows,
	    (unsigned long long)h.opts.cfg.audit_max_days, h.opts.cfg.libvirt);
	if (h.opts.cfg.srv.trust_declared)
		log_warn(h.log, "--test-declared-peer: unix clients choose "
		    "their own queueing identity and CID; for tests only");
	main_notify_ready(&h);
	rc = 0;

out_run:
	/* On error as after a signal: close everything, let it finish. */
	if (rc != 0) {
		h.opts.cfg.grace_s = 0;
		main_stop(&h);
	}
	uv_run(&h.loop, UV_RUN_DEFAULT);
	if (rc == 0)
		log_info(h.log, "stopped");
	ctl_free(h.ctl);
	vsockdev_free(h.vsd);
	server_free(h.srv);
	store_free(h.store);
	digest_free(h.digest);
out_loop:
	if ((r = uv_loop_close(&h.loop)) < 0)
		log_warn(h.log, "event loop not empty at exit: %s",
		    uv_strerror(r));
	state_close(h.state);
out_log:
	log_free(h.log);
out_opts:
	conf_clear(&h.opts.cfg);
	return rc;
}
