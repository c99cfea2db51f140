/*
 * ctl_vm.c: `vm ls`, `vm enable DOMAIN`, `vm disable DOMAIN`: answered by
 * the libvirt thread (vmmap.c), so the reply comes later.
 */
#include <errno.h>
#include <string.h>

#include "ctl.h"
#include "server.h"
#include "vmmap.h"

/* `vm ls`: one object per domain. */
static json_t *
ctl_vm_list(const struct vmmap_reply *r)
{
	struct ctl_json_list l;

	if (!ctl_json_list_init(&l, CTL_JSON_LIST_MAX))
		return NULL;
	for (size_t i = 0; i < r->ndoms; i++) {
		const struct vmmap_info *d = &r->doms[i];

		if (!ctl_json_list_add(&l, json_pack("{s:o, s:o, s:s, s:o, "
		    "s:b, s:b}", "name", ctl_json_str(d->name), "uuid",
		    ctl_json_str(d->uuid), "state", d->state, "cid",
		    d->cid != 0 ? json_integer(d->cid) : json_null(),
		    "persistent", d->persistent, "enabled", d->enabled)))
			break;
	}
	return json_pack("{s:o, s:b}", "domains", l.array, "truncated", l.cut);
}

/* The libvirt thread answered a `vm ls` command. */
static void
ctl_vm_ls_done(void *arg, const struct vmmap_reply *r)
{
	struct ctl_conn *cc = arg;

	if (r->status != PH_OK)
		ctl_error(cc, r->status, "%s", r->message);
	else
		ctl_reply(cc, PH_OK, ctl_vm_list(r));
}

/* The libvirt thread answered `vm enable` or `vm disable`. */
static void
ctl_vm_change_done(struct ctl_conn *cc, const struct vmmap_reply *r,
    bool enable)
{
	if (r->status != PH_OK)
		ctl_error(cc, r->status, "%s", r->message);
	else
		ctl_reply(cc, PH_OK, json_pack("{s:b, s:b, s:o}", "changed",
		    r->changed, "enabled", enable, "message",
		    ctl_json_str(r->message)));
}

static void
ctl_vm_enable_done(void *arg, const struct vmmap_reply *r)
{
	ctl_vm_change_done(arg, r, true);
}

static void
ctl_vm_disable_done(void *arg, const struct vmmap_reply *r)
{
	ctl_vm_change_done(arg, r, false);
}

/* The connection closed first: the answer must not reach it. */
static void
ctl_vm_cancel(struct ctl_conn *cc, void *job)
{
	vmmap_cancel(server_vmmap(ctl_server(cc)), job);
}

/* Queues op for the libvirt thread; its callback replies. */
static void
ctl_vm_request(struct ctl_conn *cc, enum vmmap_op op, const char *domain,
    vmmap_cb cb)
{
	struct vmmap_req *req;
	int r;

	r = vmmap_request(server_vmmap(ctl_server(cc)), op, domain, cb, cc,
	    &req);
	if (r == -ENOTSUP || r == -ENOTCONN || r == -ESHUTDOWN)
		ctl_error(cc, PH_ERR_UNAVAILABLE, "%s", r == -ENOTSUP ?
		    "libvirt support not built into this portholed" :
		    r == -ENOTCONN ? "libvirt is turned off (--libvirt none)" :
		    "the daemon is stopping");
	else if (r < 0)
		ctl_error(cc, PH_ERR_INTERNAL, "cannot queue the request: %s",
		    strerror(-r));
	else
		ctl_defer(cc, ctl_vm_cancel, req);
}

/* `vm ls`: every domain libvirt knows. */
void
ctl_vm_ls(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	(void)argc;
	(void)argv;
	ctl_vm_request(cc, VMMAP_LIST, NULL, ctl_vm_ls_done);
}

/* `vm enable DOMAIN`: add the vsock device from its next boot. */
void
ctl_vm_enable(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	(void)argc;
	ctl_vm_request(cc, VMMAP_ENABLE, argv[0], ctl_vm_enable_done);
}

/* `vm disable DOMAIN`: remove it from its next boot. */
void
ctl_vm_disable(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	(void)argc;
	ctl_vm_request(cc, VMMAP_DISABLE, argv[0], ctl_vm_disable_done);
}
