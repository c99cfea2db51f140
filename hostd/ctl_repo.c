/*
 * ctl_repo.c: `repo get`, `repo set PATH`, `repo ls [PATH]`: the
 * repository directory and its contents. (`repo scan` and `repo verify`
 * are catalog jobs: ctl_cache.c.)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "log.h"
#include "repo.h"
#include "server.h"
#include "state.h"
#include "store.h"
#include "upstream.h"

/*
 * Answers a failed filesystem call on path with the code and message a
 * person expects; beneath says path was resolved beneath the repository,
 * where EXDEV and ELOOP mean it tried to leave.
 */
static void
ctl_repo_fs_error(struct ctl_conn *cc, int err, const char *verb,
    const char *path, bool beneath)
{
	if (beneath && (err == -EXDEV || err == -ELOOP)) {
		ctl_error(cc, PH_ERR_PATH_ESCAPE, "path leads outside the "
		    "repository: %s", path);
		return;
	}
	switch (err) {
	case -ENOENT:
		ctl_error(cc, PH_ERR_NOT_FOUND, "no such file or directory: %s",
		    path);
		break;
	case -ENOTDIR:
		ctl_error(cc, PH_ERR_NOT_DIR, "not a directory: %s", path);
		break;
	case -EACCES:
	case -EPERM:
		ctl_error(cc, PH_ERR_FORBIDDEN, "cannot read %s: %s", path,
		    strerror(-err));
		break;
	default:
		ctl_error(cc, PH_ERR_IO, "cannot %s %s: %s", verb, path,
		    strerror(-err));
		break;
	}
}

/* {"repository": PATH}. */
static json_t *
ctl_repo_body(const struct repo *repo)
{
	return json_pack("{s:o}", "repository", ctl_json_str(repo_path(repo)));
}

/* `repo get`: the repository, unless this daemon is a relay. */
void
ctl_repo_get(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct server *srv = ctl_server(cc);
	struct repo *repo = server_repo(srv);
	struct upstream *u = store_upstream(server_store(srv));

	(void)argc;
	(void)argv;
	if (u != NULL)
		ctl_error(cc, PH_ERR_UNAVAILABLE, "this daemon is a relay: its "
		    "repository is upstream %s", upstream_endpoint(u));
	else if (repo == NULL)
		ctl_error(cc, PH_ERR_UNAVAILABLE, "no repository configured");
	else
		ctl_reply(cc, PH_OK, ctl_repo_body(repo));
}

/* `repo set PATH`: check the directory, save it, then switch to it. */
void
ctl_repo_set(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct server *srv = ctl_server(cc);
	struct state *state = ctl_state(cc);
	const char *path = argv[0];
	struct repo *repo = NULL, *old;
	char was[1024], now[1024];
	int err;

	(void)argc;
	if (store_upstream(server_store(srv)) != NULL) {
		ctl_error(cc, PH_ERR_UNAVAILABLE, "this daemon is a relay: its "
		    "repository is its upstream; restart it without "
		    "--upstream to serve a directory");
		return;
	}
	if (path[0] != '/') {
		ctl_error(cc, PH_ERR_USAGE, "the repository path must be "
		    "absolute: %s", path);
		return;
	}
	if ((err = repo_open(path, &repo)) < 0) {
		ctl_repo_fs_error(cc, err, "open", path, false);
		return;
	}
	/* Saved first: the switch happens only if a restart would keep it. */
	if (state_set(state, STATE_KEY_REPO, repo_path(repo)) < 0) {
		ctl_error(cc, PH_ERR_INTERNAL, "cannot save the repository in "
		    "the state database: %s", state_errmsg(state));
		repo_free(repo);
		return;
	}
	old = server_repo(srv);
	if (old != NULL)
		ph_util_escape(repo_path(old), strlen(repo_path(old)), false, was,
		    sizeof(was));
	else
		snprintf(was, sizeof(was), "none");
	ph_util_escape(repo_path(repo), strlen(repo_path(repo)), false, now,
	    sizeof(now));
	server_set_repo(srv, repo);
	log_info(ctl_log(cc), "repository set to %s (was %s) by control "
	    "peer=%s", now, was, ctl_peer(cc));
	ctl_reply(cc, PH_OK, ctl_repo_body(repo));
}

/* One entry of `repo ls`. */
static json_t *
ctl_repo_entry(const struct ph_list_entry *e)
{
	char mode[8];

	snprintf(mode, sizeof(mode), "%04o", (unsigned)(e->mode & 07777));
	return json_pack("{s:o, s:s, s:o, s:s, s:I}", "name",
	    ctl_json_str(e->name), "type", ph_util_ftype_name(e->ftype), "size",
	    ctl_json_u64(e->size), "mode", mode, "mtime_ns",
	    (json_int_t)e->mtime_ns);
}

/* `repo ls [PATH]`: the listing in one reply, cut short at the limit. */
void
ctl_repo_ls(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct repo *repo = server_repo(ctl_server(cc));
	const char *path = argc > 0 ? argv[0] : "/";
	char rel[PH_MAX_PATH + 1], shown[PH_MAX_PATH + 2];
	struct ctl_json_list l;
	struct ph_list_entry e;
	struct repo_dir *d = NULL;
	size_t i, count;
	int err;

	err = ph_path_normalize(path, strlen(path), rel, sizeof(rel));
	if (err == -EPERM) {
		ctl_error(cc, PH_ERR_PATH_ESCAPE, "path climbs above the "
		    "repository root: %s", path);
		return;
	} else if (err < 0) {
		ctl_error(cc, PH_ERR_BAD_PATH, "invalid path");
		return;
	}
	ph_path_display(rel, shown, sizeof(shown));
	if (repo == NULL) {
		ctl_error(cc, PH_ERR_UNAVAILABLE, "no repository configured");
		return;
	}
	if ((err = repo_dir_read(repo, rel, &d, NULL)) < 0) {
		ctl_repo_fs_error(cc, err, "list", shown, true);
		return;
	}
	if (!ctl_json_list_init(&l, CTL_JSON_LIST_MAX)) {
		repo_dir_free(d);
		ctl_reply(cc, PH_OK, NULL);
		return;
	}
	count = repo_dir_count(d);
	for (i = 0; i < count; i++) {
		if (repo_dir_entry(d, i, &e, NULL) < 0)
			continue;
		if (!ctl_json_list_add(&l, ctl_repo_entry(&e)))
			break;
	}
	repo_dir_free(d);
	ctl_reply(cc, PH_OK, json_pack("{s:o, s:o, s:b, s:I}", "path",
	    ctl_json_str(shown), "entries", l.array, "truncated", i < count,
	    "not_shown", (json_int_t)(count - i)));
}
