/*
 * ctl_status.c: `status`: version, uptime, listeners, the --vhost-user
 * endpoints, the repository, libvirt, access rules and counters.
 */
#include "config.h"
#include "acl.h"
#include "ctl.h"
#include "repo.h"
#include "server.h"
#include "vmmap.h"
#include "vsockdev.h"

/* One object per --vhost-user endpoint. */
static json_t *
ctl_status_vhost(struct vsockdev *vd)
{
	struct vsockdev_info vi;
	size_t n = vd != NULL ? vsockdev_count(vd) : 0;
	json_t *a;

	if ((a = json_array()) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		vsockdev_info(vd, i, &vi);
		if (json_array_append_new(a, json_pack("{s:o, s:I, s:o, s:b, "
		    "s:b, s:I, s:o}", "path", ctl_json_str(vi.path), "cid",
		    (json_int_t)vi.cid, "vm", ctl_json_str(vi.name), "frontend",
		    vi.frontend, "running", vi.running, "connections",
		    (json_int_t)vi.connections, "bytes_to_guest",
		    ctl_json_u64(vi.to_guest))) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* The listeners' names, in the order they were opened. */
static json_t *
ctl_status_listeners(struct server *srv, size_t n)
{
	json_t *a;

	if ((a = json_array()) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (json_array_append_new(a,
		    ctl_json_str(server_listener_name(srv, i))) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* `status`: the daemon at a glance. */
void
ctl_status_run(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct server *srv = ctl_server(cc);
	struct repo *repo = server_repo(srv);
	struct acl *acl = server_acl(srv);
	struct server_stats st;
	char lv[1024];

	(void)argc;
	(void)argv;
	server_get_stats(srv, &st);
	vmmap_status(server_vmmap(srv), lv, sizeof(lv));
	ctl_reply(cc, PH_OK, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:I, "
	    "s:s, s:I, s:o, s:o}",
	    "version", PORTHOLE_VERSION,
	    "uptime_s", ctl_json_u64((uv_now(ctl_loop(cc)) - st.started_ms) /
	    1000),
	    "listeners", ctl_status_listeners(srv, st.listeners),
	    "vhost_user", ctl_status_vhost(ctl_vsockdev(cc)),
	    "repository", ctl_json_str_or_null(repo != NULL ? repo_path(repo) :
	    NULL),
	    "libvirt", ctl_json_str(lv),
	    "acl_rules", (json_int_t)(acl != NULL ? acl_count(acl) : 0),
	    "acl_default", acl == NULL || acl_default_allow(acl) ? "allow" :
	    "deny",
	    "connections", (json_int_t)st.connections,
	    "requests_served", ctl_json_u64(st.requests),
	    "bytes_sent", ctl_json_u64(st.bytes_sent)));
}
