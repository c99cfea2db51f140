/*
 * vmmap.c: the CID -> domain map and the `vm` commands, on a libvirt
 * thread.
 *
 * Threads: the loop thread owns vm->map and the request callbacks; the
 * libvirt thread owns the connection (struct vmmap_lv) and runs libvirt's
 * default event loop. They share only what sits under vm->mu: the job and
 * done lists, the next map, the link status and the stop flag. The loop
 * thread wakes the libvirt thread through an eventfd watched by libvirt's
 * loop; the libvirt thread wakes the loop thread with uv_async_send().
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#ifdef HAVE_LIBVIRT
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>

#include "vmxml.h"
#endif

#include "log.h"
#include "vmmap.h"

#define VMMAP_MSG_MAX		512
#define VMMAP_REASON_MAX	256
/* libvirt keepalive: a probe every 5 s, 3 unanswered mean the link died. */
#define VMMAP_KEEPALIVE_S	5
#define VMMAP_KEEPALIVE_N	3

struct vmmap_entry {
	uint32_t	 cid;
	struct vmmap_dom dom;
};

struct vmmap_map {
	struct vmmap_entry *v;		/* sorted by cid */
	size_t		 n;
};

struct vmmap_req {
	TAILQ_ENTRY(vmmap_req) link;
	enum vmmap_op	 op;
	char		 domain[VMMAP_NAME_MAX + 1];
	vmmap_cb	 cb;
	void		*arg;
	bool		 cancelled;	/* under mu */
	/* The answer, written by the libvirt thread. */
	enum ph_err	 status;
	char		 message[VMMAP_MSG_MAX];
	bool		 changed;
	struct vmmap_info *doms;
	size_t		 ndoms;
};

TAILQ_HEAD(vmmap_reqs, vmmap_req);

enum vmmap_link {
	VMMAP_LINK_DISABLED,
	VMMAP_LINK_NOT_BUILT,
	VMMAP_LINK_CONNECTING,
	VMMAP_LINK_UP,
	VMMAP_LINK_DOWN,
};

#ifdef HAVE_LIBVIRT
/* The libvirt thread's own state. */
struct vmmap_lv {
	virConnectPtr	 conn;
	int		 lifecycle_id;	/* event callback, -1 if none */
	int		 wake_watch;	/* the eventfd in libvirt's loop */
	int		 retry_timer;	/* reconnect backoff */
	unsigned int	 backoff_ms;
	bool		 retry_due;
	bool		 refresh_due;
	bool		 lost;		/* the close callback fired */
	bool		 said_down;	/* the outage is in the log already */
};
#endif

struct vmmap {
	uv_loop_t	*loop;
	struct log	*log;
	char		*uri;
	uv_async_t	 async;
	void		(*done)(void *);
	void		*done_arg;
	bool		 closing;
	/* The loop thread's. */
	struct vmmap_map map;
	uint64_t	 gen;
	/* Shared, under mu. */
	uv_mutex_t	 mu;
	bool		 stop;
	struct vmmap_reqs jobs;
	struct vmmap_reqs answered;
	bool		 map_ready;
	struct vmmap_map next;
	enum vmmap_link	 link;
	char		 reason[VMMAP_REASON_MAX];
	size_t		 nmapped;
	/* The thread. */
	bool		 threaded;
	uv_thread_t	 thread;
	int		 wake_fd;
#ifdef HAVE_LIBVIRT
	struct vmmap_lv	 lv;
#endif
};

/* ---- Shared by both threads ------------------------------------------- */

/* Frees a request and its answer. */
static void
vmmap_req_free(struct vmmap_req *r)
{
	if (r == NULL)
		return;
	free(r->doms);
	free(r);
}

static void
vmmap_map_clear(struct vmmap_map *m)
{
	free(m->v);
	m->v = NULL;
	m->n = 0;
}

/* ---- The loop thread ----------------------------------------------- */

bool
vmmap_built(void)
{
#ifdef HAVE_LIBVIRT
	return true;
#else
	return false;
#endif
}

/* Results from the libvirt thread: a new map, answered requests. */
static void
vmmap_on_async(uv_async_t *h)
{
	struct vmmap *vm = h->data;
	struct vmmap_reqs done;
	struct vmmap_req *r;
	struct vmmap_reply reply;
	struct vmmap_map m = { NULL, 0 };
	bool have_map = false;

	TAILQ_INIT(&done);
	uv_mutex_lock(&vm->mu);
	if (vm->map_ready) {
		m = vm->next;
		vm->next.v = NULL;
		vm->next.n = 0;
		vm->map_ready = false;
		have_map = true;
	}
	TAILQ_CONCAT(&done, &vm->answered, link);
	uv_mutex_unlock(&vm->mu);
	if (have_map) {
		vmmap_map_clear(&vm->map);
		vm->map = m;
		vm->gen++;
	}
	while ((r = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, r, link);
		/* cancelled changes only on this thread: no lock needed. */
		if (!r->cancelled && r->cb != NULL) {
			memset(&reply, 0, sizeof(reply));
			reply.status = r->status;
			reply.message = r->message;
			reply.changed = r->changed;
			reply.doms = r->doms;
			reply.ndoms = r->ndoms;
			r->cb(r->arg, &reply);
		}
		vmmap_req_free(r);
	}
}

bool
vmmap_lookup(const struct vmmap *vm, uint32_t cid, struct vmmap_dom *out)
{
	size_t lo = 0, hi, mid;

	if (vm == NULL || cid == 0)
		return false;
	hi = vm->map.n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (vm->map.v[mid].cid == cid) {
			*out = vm->map.v[mid].dom;
			return true;
		}
		if (vm->map.v[mid].cid < cid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

uint64_t
vmmap_generation(const struct vmmap *vm)
{
	return vm != NULL ? vm->gen : 0;
}

const char *
vmmap_status(struct vmmap *vm, char *buf, size_t cap)
{
	enum vmmap_link link;
	char reason[VMMAP_REASON_MAX];
	size_t n;

	if (vm == NULL) {
		snprintf(buf, cap, "disabled");
		return buf;
	}
	uv_mutex_lock(&vm->mu);
	link = vm->link;
	n = vm->nmapped;
	snprintf(reason, sizeof(reason), "%s", vm->reason);
	uv_mutex_unlock(&vm->mu);
	switch (link) {
	case VMMAP_LINK_DISABLED:
		snprintf(buf, cap, "disabled");
		break;
	case VMMAP_LINK_NOT_BUILT:
		snprintf(buf, cap, "not built");
		break;
	case VMMAP_LINK_CONNECTING:
		snprintf(buf, cap, "connecting to %s", vm->uri);
		break;
	case VMMAP_LINK_UP:
		snprintf(buf, cap, "connected to %s (%zu running domain%s with "
		    "a vsock CID)", vm->uri, n, n == 1 ? "" : "s");
		break;
	case VMMAP_LINK_DOWN:
		snprintf(buf, cap, "unavailable: %s (%s)", vm->uri, reason);
		break;
	}
	return buf;
}

/* Wakes the libvirt thread. */
static void
vmmap_wake(struct vmmap *vm)
{
	uint64_t one = 1;

	if (vm->wake_fd >= 0)
		(void)!write(vm->wake_fd, &one, sizeof(one));
}

int
vmmap_request(struct vmmap *vm, enum vmmap_op op, const char *domain,
    vmmap_cb cb, void *arg, struct vmmap_req **out)
{
	struct vmmap_req *r;

	*out = NULL;
	if (!vmmap_built())
		return -ENOTSUP;
	if (!vm->threaded)
		return vm->closing ? -ESHUTDOWN : -ENOTCONN;
	if (vm->closing)
		return -ESHUTDOWN;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->op = op;
	snprintf(r->domain, sizeof(r->domain), "%s", domain != NULL ? domain :
	    "");
	r->cb = cb;
	r->arg = arg;
	uv_mutex_lock(&vm->mu);
	TAILQ_INSERT_TAIL(&vm->jobs, r, link);
	uv_mutex_unlock(&vm->mu);
	vmmap_wake(vm);
	*out = r;
	return 0;
}

void
vmmap_cancel(struct vmmap *vm, struct vmmap_req *req)
{
	if (req == NULL)
		return;
	uv_mutex_lock(&vm->mu);
	req->cancelled = true;
	uv_mutex_unlock(&vm->mu);
}

/* ---- The libvirt thread -------------------------------------------- */

#ifdef HAVE_LIBVIRT

/* libvirt and libxml2 errors are read where they happen, never printed. */
static void
vmmap_quiet(void *arg, virErrorPtr err)
{
	(void)arg;
	(void)err;
}

static void
vmmap_xml_quiet(void *arg, const char *fmt, ...)
{
	(void)arg;
	(void)fmt;
}

/* The last libvirt error of this thread, as one line. */
static const char *
vmmap_lv_error(void)
{
	const char *m = virGetLastErrorMessage();

	return m != NULL ? m : "unknown error";
}

/* Sets the link status others see. */
static void
vmmap_set_link(struct vmmap *vm, enum vmmap_link link, const char *reason,
    size_t nmapped)
{
	uv_mutex_lock(&vm->mu);
	vm->link = link;
	vm->nmapped = nmapped;
	snprintf(vm->reason, sizeof(vm->reason), "%s", reason != NULL ?
	    reason : "");
	uv_mutex_unlock(&vm->mu);
}

/* Hands a new map to the loop thread (which then owns m's array). */
static void
vmmap_publish(struct vmmap *vm, struct vmmap_map *m)
{
	uv_mutex_lock(&vm->mu);
	vmmap_map_clear(&vm->next);
	vm->next = *m;
	vm->map_ready = true;
	vm->nmapped = m->n;
	uv_mutex_unlock(&vm->mu);
	m->v = NULL;
	m->n = 0;
	uv_async_send(&vm->async);
}

static int
vmmap_cmp_cid(const void *a, const void *b)
{
	const struct vmmap_entry *x = a, *y = b;

	return x->cid < y->cid ? -1 : x->cid > y->cid;
}

/* A domain's name and UUID; false when the name is too long to keep. */
static bool
vmmap_lv_ident(virDomainPtr d, struct vmmap_dom *out)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	const char *name = virDomainGetName(d);

	memset(out, 0, sizeof(*out));
	if (name == NULL || strlen(name) > VMMAP_NAME_MAX)
		return false;
	snprintf(out->name, sizeof(out->name), "%s", name);
	if (virDomainGetUUIDString(d, uuid) == 0)
		snprintf(out->uuid, sizeof(out->uuid), "%s", uuid);
	for (char *p = out->uuid; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return true;
}

/* Reads the vsock device of one definition (flags: libvirt's XML flags). */
static int
vmmap_lv_vsock(virDomainPtr d, unsigned int flags, struct vmxml_vsock *out)
{
	char *xml;
	int err;

	memset(out, 0, sizeof(*out));
	if ((xml = virDomainGetXMLDesc(d, flags)) == NULL)
		return -EIO;
	err = vmxml_vsock(xml, strlen(xml), out);
	free(xml);
	return err;
}

/* Notes a lost connection after a failed call, for the next round. */
static void
vmmap_lv_check_alive(struct vmmap *vm)
{
	if (vm->lv.conn != NULL && virConnectIsAlive(vm->lv.conn) != 1)
		vm->lv.lost = true;
}

/* Rebuilds the map from the running domains' live definitions. */
static void
vmmap_lv_refresh(struct vmmap *vm)
{
	struct vmmap_map m = { NULL, 0 };
	struct vmxml_vsock vs;
	virDomainPtr *doms = NULL;
	int n, i;

	vm->lv.refresh_due = false;
	n = virConnectListAllDomains(vm->lv.conn, &doms,
	    VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		log_debug(vm->log, "libvirt: cannot list domains: %s",
		    vmmap_lv_error());
		vmmap_lv_check_alive(vm);
		return;
	}
	if (n > 0 && (m.v = calloc((size_t)n, sizeof(*m.v))) == NULL) {
		log_warn(vm->log, "libvirt: out of memory for the domain map");
		goto done;
	}
	for (i = 0; i < n; i++) {
		struct vmmap_entry *e = &m.v[m.n];

		/* A domain that stopped since the listing is skipped. */
		if (vmmap_lv_vsock(doms[i], 0, &vs) < 0 || vs.cid == 0)
			continue;
		if (!vmmap_lv_ident(doms[i], &e->dom))
			continue;
		e->cid = vs.cid;
		m.n++;
	}
	if (m.n > 1)
		qsort(m.v, m.n, sizeof(*m.v), vmmap_cmp_cid);
	log_debug(vm->log, "libvirt: %zu running domain%s with a vsock CID",
	    m.n, m.n == 1 ? "" : "s");
	vmmap_publish(vm, &m);
done:
	for (i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
	vmmap_map_clear(&m);
}

/* libvirt says a domain started, stopped, was defined ...: rebuild. */
static int
vmmap_on_lifecycle(virConnectPtr conn, virDomainPtr d, int event, int detail,
    void *opaque)
{
	struct vmmap *vm = opaque;

	(void)conn;
	(void)detail;
	log_debug(vm->log, "libvirt: lifecycle event %d for %s: refreshing "
	    "the map", event, virDomainGetName(d) != NULL ?
	    virDomainGetName(d) : "?");
	vm->lv.refresh_due = true;
	return 0;
}

/* The connection died (libvirtd restarted, keepalive timed out). */
static void
vmmap_on_conn_close(virConnectPtr conn, int reason, void *opaque)
{
	struct vmmap *vm = opaque;

	(void)conn;
	(void)reason;
	vm->lv.lost = true;
}

/* Arms the reconnect timer, doubling the delay up to the maximum. */
static void
vmmap_lv_schedule_retry(struct vmmap *vm)
{
	virEventUpdateTimeout(vm->lv.retry_timer, (int)vm->lv.backoff_ms);
	vm->lv.backoff_ms = vm->lv.backoff_ms * 2 > VMMAP_RETRY_MAX_MS ?
	    VMMAP_RETRY_MAX_MS : vm->lv.backoff_ms * 2;
}

static void
vmmap_on_retry(int timer, void *opaque)
{
	struct vmmap *vm = opaque;

	virEventUpdateTimeout(timer, -1);
	vm->lv.retry_due = true;
}

/* Drops the connection; why non-NULL says it was lost, not closed. */
static void
vmmap_lv_disconnect(struct vmmap *vm, const char *why)
{
	struct vmmap_map empty = { NULL, 0 };

	if (vm->lv.conn == NULL)
		return;
	if (vm->lv.lifecycle_id >= 0)
		(void)virConnectDomainEventDeregisterAny(vm->lv.conn,
		    vm->lv.lifecycle_id);
	vm->lv.lifecycle_id = -1;
	(void)virConnectUnregisterCloseCallback(vm->lv.conn,
	    vmmap_on_conn_close);
	(void)virConnectClose(vm->lv.conn);
	vm->lv.conn = NULL;
	vm->lv.lost = false;
	if (why == NULL)
		return;
	/* Names we cannot check any more are not kept. */
	log_warn(vm->log, "libvirt: connection to %s lost (%s); peers are "
	    "known by CID only until it is back; retrying", vm->uri, why);
	vm->lv.said_down = true;
	vmmap_set_link(vm, VMMAP_LINK_DOWN, why, 0);
	vmmap_publish(vm, &empty);
	vm->lv.backoff_ms = VMMAP_RETRY_MIN_MS;
	vmmap_lv_schedule_retry(vm);
}

/*
 * One connection attempt. One made by the retry timer schedules the next
 * on failure; one made for a request leaves the timer as it is.
 */
static void
vmmap_lv_connect(struct vmmap *vm, bool from_timer)
{
	virConnectPtr conn;
	char why[VMMAP_REASON_MAX];
	bool again = vm->lv.said_down;

	if (from_timer)
		vm->lv.retry_due = false;
	if ((conn = virConnectOpen(vm->uri)) == NULL) {
		snprintf(why, sizeof(why), "%s", vmmap_lv_error());
		if (!vm->lv.said_down)
			log_warn(vm->log, "libvirt: cannot connect to %s: %s; "
			    "peers are known by CID only until it is "
			    "reachable; retrying", vm->uri, why);
		else
			log_debug(vm->log, "libvirt: still cannot connect to "
			    "%s: %s", vm->uri, why);
		vm->lv.said_down = true;
		vmmap_set_link(vm, VMMAP_LINK_DOWN, why, 0);
		if (from_timer)
			vmmap_lv_schedule_retry(vm);
		return;
	}
	virEventUpdateTimeout(vm->lv.retry_timer, -1);
	vm->lv.retry_due = false;
	vm->lv.conn = conn;
	vm->lv.backoff_ms = VMMAP_RETRY_MIN_MS;
	vm->lv.said_down = false;
	(void)virConnectRegisterCloseCallback(conn, vmmap_on_conn_close, vm,
	    NULL);
	(void)virConnectSetKeepAlive(conn, VMMAP_KEEPALIVE_S,
	    VMMAP_KEEPALIVE_N);
	vm->lv.lifecycle_id = virConnectDomainEventRegisterAny(conn, NULL,
	    VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(vmmap_on_lifecycle), vm, NULL);
	if (vm->lv.lifecycle_id < 0)
		log_warn(vm->log, "libvirt: no domain events from %s (%s); "
		    "the map is refreshed only by `portholectl vm` commands",
		    vm->uri, vmmap_lv_error());
	vmmap_lv_refresh(vm);
	uv_mutex_lock(&vm->mu);
	vm->link = VMMAP_LINK_UP;
	vm->reason[0] = '\0';
	uv_mutex_unlock(&vm->mu);
	log_info(vm->log, "libvirt: %s %s (%zu running domain%s with a vsock "
	    "CID)", again ? "now reachable: connected to" :
	    "connected to", vm->uri,
	    vm->nmapped, vm->nmapped == 1 ? "" : "s");
}

/* The libvirt state of a domain as a word for `vm ls`. */
static const char *
vmmap_state_name(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING: return "running";
	case VIR_DOMAIN_BLOCKED: return "blocked";
	case VIR_DOMAIN_PAUSED: return "paused";
	case VIR_DOMAIN_SHUTDOWN: return "shutting down";
	case VIR_DOMAIN_SHUTOFF: return "shut off";
	case VIR_DOMAIN_CRASHED: return "crashed";
	case VIR_DOMAIN_PMSUSPENDED: return "suspended";
	default: return "unknown";
	}
}

static int
vmmap_cmp_name(const void *a, const void *b)
{
	const struct vmmap_info *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* `vm ls`: every domain, its state, CID and whether it is enabled. */
static void
vmmap_lv_list(struct vmmap *vm, struct vmmap_req *r)
{
	virDomainPtr *doms = NULL;
	struct vmxml_vsock vs;
	struct vmmap_dom id;
	int n, i, st, reason;

	if ((n = virConnectListAllDomains(vm->lv.conn, &doms, 0)) < 0) {
		r->status = PH_ERR_UNAVAILABLE;
		snprintf(r->message, sizeof(r->message), "cannot list the "
		    "domains of %s: %s", vm->uri, vmmap_lv_error());
		vmmap_lv_check_alive(vm);
		return;
	}
	if (n > 0 && (r->doms = calloc((size_t)n, sizeof(*r->doms))) == NULL) {
		r->status = PH_ERR_INTERNAL;
		snprintf(r->message, sizeof(r->message), "out of memory");
		goto done;
	}
	for (i = 0; i < n; i++) {
		struct vmmap_info *in = &r->doms[r->ndoms];

		if (!vmmap_lv_ident(doms[i], &id))
			continue;
		snprintf(in->name, sizeof(in->name), "%s", id.name);
		snprintf(in->uuid, sizeof(in->uuid), "%s", id.uuid);
		in->state = virDomainGetState(doms[i], &st, &reason, 0) == 0 ?
		    vmmap_state_name(st) : "unknown";
		in->persistent = virDomainIsPersistent(doms[i]) == 1;
		if (virDomainIsActive(doms[i]) == 1 &&
		    vmmap_lv_vsock(doms[i], 0, &vs) == 0) {
			in->cid = vs.cid;
			in->enabled = vs.present;
		}
		if (in->persistent && vmmap_lv_vsock(doms[i],
		    VIR_DOMAIN_XML_INACTIVE, &vs) == 0)
			in->enabled = vs.present;
		r->ndoms++;
	}
	if (r->ndoms > 1)
		qsort(r->doms, r->ndoms, sizeof(*r->doms), vmmap_cmp_name);
	r->status = PH_OK;
done:
	for (i = 0; i < n; i++)
		virDomainFree(doms[i]);
	free(doms);
}

/* True for the canonical text form of a UUID. */
static bool
vmmap_is_uuid(const char *s)
{
	if (strlen(s) != VMMAP_UUID_LEN)
		return false;
	for (size_t i = 0; i < VMMAP_UUID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash != (s[i] == '-'))
			return false;
		if (!dash && !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* `vm enable|disable`: edit the persistent definition and define it. */
static void
vmmap_lv_edit(struct vmmap *vm, struct vmmap_req *r)
{
	bool enable = r->op == VMMAP_ENABLE;
	virDomainPtr d = NULL, nd;
	char *xml = NULL, *nxml = NULL;
	int err;

	d = vmmap_is_uuid(r->domain) ?
	    virDomainLookupByUUIDString(vm->lv.conn, r->domain) :
	    virDomainLookupByName(vm->lv.conn, r->domain);
	if (d == NULL) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
			r->status = PH_ERR_NOT_FOUND;
			snprintf(r->message, sizeof(r->message), "no domain "
			    "named %s", r->domain);
		} else {
			r->status = PH_ERR_UNAVAILABLE;
			snprintf(r->message, sizeof(r->message), "cannot look "
			    "up %s: %s", r->domain, vmmap_lv_error());
			vmmap_lv_check_alive(vm);
		}
		return;
	}
	if (virDomainIsPersistent(d) != 1) {
		r->status = PH_ERR_UNAVAILABLE;
		snprintf(r->message, sizeof(r->message), "%s is a transient "
		    "domain: it has no persistent definition to change",
		    r->domain);
		goto done;
	}
	/* SECURE: a definition without its secrets would lose them. */
	if ((xml = virDomainGetXMLDesc(d, VIR_DOMAIN_XML_INACTIVE |
	    VIR_DOMAIN_XML_SECURE)) == NULL) {
		r->status = PH_ERR_IO;
		snprintf(r->message, sizeof(r->message), "cannot read the "
		    "definition of %s: %s", r->domain, vmmap_lv_error());
		goto done;
	}
	if ((err = vmxml_set_vsock(xml, strlen(xml), enable, &nxml,
	    &r->changed)) < 0) {
		r->status = err == -ENOMEM ? PH_ERR_INTERNAL : PH_ERR_IO;
		snprintf(r->message, sizeof(r->message), "cannot edit the "
		    "definition of %s: %s", r->domain, err == -ENOMEM ?
		    "out of memory" : "it is not a well-formed <domain>");
		goto done;
	}
	if (!r->changed) {
		r->status = PH_OK;
		snprintf(r->message, sizeof(r->message), "%s: porthole access "
		    "is already %s (the definition %s a vsock device)",
		    r->domain, enable ? "enabled" : "disabled", enable ?
		    "has" : "has no");
		goto done;
	}
	if ((nd = virDomainDefineXML(vm->lv.conn, nxml)) == NULL) {
		r->changed = false;
		r->status = PH_ERR_IO;
		snprintf(r->message, sizeof(r->message), "libvirt refused the "
		    "new definition of %s: %s", r->domain, vmmap_lv_error());
		vmmap_lv_check_alive(vm);
		goto done;
	}
	virDomainFree(nd);
	r->status = PH_OK;
	snprintf(r->message, sizeof(r->message), "%s: porthole access %s: "
	    "vsock device %s the persistent definition; this takes effect at "
	    "the next boot of the domain", r->domain, enable ? "enabled" :
	    "disabled", enable ? "added to" : "removed from");
	vm->lv.refresh_due = true;
done:
	free(nxml);
	free(xml);
	virDomainFree(d);
}

/* Runs one request against the connection, connecting first if needed. */
static void
vmmap_lv_run(struct vmmap *vm, struct vmmap_req *r)
{
	if (vm->lv.conn == NULL)
		vmmap_lv_connect(vm, false);
	if (vm->lv.conn == NULL) {
		uv_mutex_lock(&vm->mu);
		r->status = PH_ERR_UNAVAILABLE;
		snprintf(r->message, sizeof(r->message), "libvirt is "
		    "unavailable at %s: %s", vm->uri, vm->reason);
		uv_mutex_unlock(&vm->mu);
		return;
	}
	if (r->op == VMMAP_LIST)
		vmmap_lv_list(vm, r);
	else
		vmmap_lv_edit(vm, r);
}

/* The eventfd is readable: empty it; the work happens after the round. */
static void
vmmap_on_wake(int watch, int fd, int events, void *opaque)
{
	uint64_t v;

	(void)watch;
	(void)events;
	(void)opaque;
	(void)!read(fd, &v, sizeof(v));
}

/* Everything that is due: reconnect, refresh, queued requests. */
static void
vmmap_lv_work(struct vmmap *vm)
{
	struct vmmap_req *r;
	bool skip;

	if (vm->lv.lost)
		vmmap_lv_disconnect(vm, "the connection was closed");
	if (vm->lv.conn == NULL && vm->lv.retry_due)
		vmmap_lv_connect(vm, true);
	if (vm->lv.conn != NULL && vm->lv.refresh_due)
		vmmap_lv_refresh(vm);
	for (;;) {
		uv_mutex_lock(&vm->mu);
		if ((r = TAILQ_FIRST(&vm->jobs)) != NULL)
			TAILQ_REMOVE(&vm->jobs, r, link);
		skip = r != NULL && r->cancelled;
		uv_mutex_unlock(&vm->mu);
		if (r == NULL)
			break;
		if (!skip)
			vmmap_lv_run(vm, r);
		if (vm->lv.lost)
			vmmap_lv_disconnect(vm, "the connection was closed");
		if (vm->lv.conn != NULL && vm->lv.refresh_due)
			vmmap_lv_refresh(vm);
		uv_mutex_lock(&vm->mu);
		TAILQ_INSERT_TAIL(&vm->answered, r, link);
		uv_mutex_unlock(&vm->mu);
		uv_async_send(&vm->async);
	}
	/* A call above may have found the link dead: no event would say so. */
	if (vm->lv.lost)
		vmmap_lv_disconnect(vm, "the connection was closed");
}

/* The libvirt thread: libvirt's event loop, with our work between rounds. */
static void
vmmap_thread(void *arg)
{
	struct vmmap *vm = arg;
	sigset_t all;
	bool stop, said = false;

	/* Signals are the loop thread's (uv_signal). */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	/* libxml2's handlers are per thread; libvirt parses on this one. */
	xmlSetGenericErrorFunc(NULL, vmmap_xml_quiet);
	vm->lv.lifecycle_id = -1;
	vm->lv.backoff_ms = VMMAP_RETRY_MIN_MS;
	vm->lv.retry_due = true;
	vm->lv.wake_watch = virEventAddHandle(vm->wake_fd,
	    VIR_EVENT_HANDLE_READABLE, vmmap_on_wake, vm, NULL);
	vm->lv.retry_timer = virEventAddTimeout(-1, vmmap_on_retry, vm, NULL);
	if (vm->lv.wake_watch < 0 || vm->lv.retry_timer < 0) {
		log_warn(vm->log, "libvirt: cannot set up the event loop: %s; "
		    "peers are known by CID only", vmmap_lv_error());
		vmmap_set_link(vm, VMMAP_LINK_DOWN, "no event loop", 0);
		goto out;
	}
	for (;;) {
		uv_mutex_lock(&vm->mu);
		stop = vm->stop;
		uv_mutex_unlock(&vm->mu);
		if (stop)
			break;
		vmmap_lv_work(vm);
		uv_mutex_lock(&vm->mu);
		stop = vm->stop;
		uv_mutex_unlock(&vm->mu);
		if (stop)
			break;
		if (virEventRunDefaultImpl() < 0 && !said) {
			/* Not expected; the next wake-up tries again. */
			log_warn(vm->log, "libvirt: event loop: %s",
			    vmmap_lv_error());
			said = true;
		}
	}
out:
	vmmap_lv_disconnect(vm, NULL);
	if (vm->lv.wake_watch >= 0)
		(void)virEventRemoveHandle(vm->lv.wake_watch);
	if (vm->lv.retry_timer >= 0)
		(void)virEventRemoveTimeout(vm->lv.retry_timer);
	virResetLastError();
}

/* Sets up libvirt once, in the loop thread, before the thread starts. */
static int
vmmap_start(struct vmmap *vm)
{
	int r;

	if (virInitialize() < 0)
		return -EIO;
	/* Errors are read with virGetLastError(), never printed by libvirt. */
	virSetErrorFunc(NULL, vmmap_quiet);
	if (virEventRegisterDefaultImpl() < 0)
		return -EIO;
	if ((vm->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return -errno;
	vmmap_set_link(vm, VMMAP_LINK_CONNECTING, NULL, 0);
	if ((r = uv_thread_create(&vm->thread, vmmap_thread, vm)) < 0) {
		close(vm->wake_fd);
		vm->wake_fd = -1;
		return r;
	}
	vm->threaded = true;
	return 0;
}

#endif /* HAVE_LIBVIRT */

/* ---- Setup and teardown -------------------------------------------------- */

int
vmmap_new(uv_loop_t *loop, struct log *log, const char *uri,
    struct vmmap **out)
{
	struct vmmap *vm;
	int r;

	*out = NULL;
	if ((vm = calloc(1, sizeof(*vm))) == NULL)
		return -ENOMEM;
	vm->loop = loop;
	vm->log = log;
	vm->wake_fd = -1;
	TAILQ_INIT(&vm->jobs);
	TAILQ_INIT(&vm->answered);
	if ((vm->uri = strdup(uri != NULL ? uri : VMMAP_URI_NONE)) == NULL) {
		free(vm);
		return -ENOMEM;
	}
	if ((r = uv_mutex_init(&vm->mu)) < 0) {
		free(vm->uri);
		free(vm);
		return r;
	}
	if ((r = uv_async_init(loop, &vm->async, vmmap_on_async)) < 0) {
		uv_mutex_destroy(&vm->mu);
		free(vm->uri);
		free(vm);
		return r;
	}
	vm->async.data = vm;
	/* Waiting for libvirt never keeps the daemon running. */
	uv_unref((uv_handle_t *)&vm->async);
	*out = vm;
	if (strcmp(vm->uri, VMMAP_URI_NONE) == 0) {
		vm->link = VMMAP_LINK_DISABLED;
		log_debug(log, "libvirt: disabled; peers are known by CID "
		    "only");
		return 0;
	}
#ifdef HAVE_LIBVIRT
	/* Not fatal: the daemon serves, knowing peers by CID only. */
	if ((r = vmmap_start(vm)) < 0) {
		vm->link = VMMAP_LINK_DOWN;
		snprintf(vm->reason, sizeof(vm->reason), "cannot start: %s",
		    r == -EIO ? vmmap_lv_error() : strerror(-r));
		log_warn(log, "libvirt: %s; peers are known by CID only",
		    vm->reason);
	}
	return 0;
#else
	vm->link = VMMAP_LINK_NOT_BUILT;
	log_info(log, "libvirt support not built: peers are known by CID "
	    "only");
	return 0;
#endif
}

/* The async handle is closed: the map is done. */
static void
vmmap_on_closed(uv_handle_t *h)
{
	struct vmmap *vm = h->data;

	if (vm->done != NULL)
		vm->done(vm->done_arg);
}

void
vmmap_close(struct vmmap *vm, void (*done)(void *), void *arg)
{
	struct vmmap_req *r;

	vm->closing = true;
	vm->done = done;
	vm->done_arg = arg;
	if (vm->threaded) {
		uv_mutex_lock(&vm->mu);
		vm->stop = true;
		uv_mutex_unlock(&vm->mu);
		vmmap_wake(vm);
		(void)uv_thread_join(&vm->thread);
		vm->threaded = false;
	}
	/* Nobody waits for these any more: the control socket is closed. */
	while ((r = TAILQ_FIRST(&vm->jobs)) != NULL) {
		TAILQ_REMOVE(&vm->jobs, r, link);
		vmmap_req_free(r);
	}
	while ((r = TAILQ_FIRST(&vm->answered)) != NULL) {
		TAILQ_REMOVE(&vm->answered, r, link);
		vmmap_req_free(r);
	}
	uv_close((uv_handle_t *)&vm->async, vmmap_on_closed);
}

void
vmmap_free(struct vmmap *vm)
{
	if (vm == NULL)
		return;
	if (vm->wake_fd >= 0)
		close(vm->wake_fd);
	vmmap_map_clear(&vm->map);
	vmmap_map_clear(&vm->next);
	uv_mutex_destroy(&vm->mu);
	free(vm->uri);
	free(vm);
}
