/*
 * vmxml.h: the vsock device in a libvirt domain's XML.
 *
 * Reads the CID out of a live definition (<devices><vsock><cid
 * address='N'/>) and adds or removes the device in a persistent one.
 * The XML is parsed with libxml2 without network access, DTD loading or
 * entity substitution; only /domain/devices/vsock counts, so an element
 * of the same name elsewhere (under <metadata>, say) is ignored. Pure
 * functions: no logging, no libvirt calls.
 */
#ifndef HOSTD_VMXML_H
#define HOSTD_VMXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest definition accepted. */
#define VMXML_MAX	(16u * 1024 * 1024)

/* What a definition says about its vsock device. */
struct vmxml_vsock {
	bool		 present;	/* a /domain/devices/vsock element */
	bool		 auto_cid;	/* <cid auto='yes'> */
	uint32_t	 cid;		/* its address; 0 if none is given */
};

/*
 * Parses the len bytes of xml (a <domain> document). Returns 0 and fills
 * out, -EINVAL if it is not well formed or its root is not <domain>,
 * -E2BIG past VMXML_MAX, or -ENOMEM. An address that is not a decimal
 * number from 3 to 2^32-2 counts as none.
 */
int	vmxml_vsock(const char *xml, size_t len, struct vmxml_vsock *out);

/*
 * Returns in *out (malloc'd, NUL-terminated; the caller frees it) a copy
 * of the domain definition xml with <vsock model='virtio'><cid
 * auto='yes'/></vsock> added under <devices> (enable; <devices> is created
 * if missing) or with every /domain/devices/vsock removed (!enable). Sets
 * *changed to false, and *out to NULL, when there was nothing to do.
 * Returns 0, -EINVAL, -E2BIG or -ENOMEM as vmxml_vsock() does.
 */
int	vmxml_set_vsock(const char *xml, size_t len, bool enable, char **out,
	    bool *changed);

#endif /* HOSTD_VMXML_H */
