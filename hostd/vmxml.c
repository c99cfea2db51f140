/*
 * vmxml.c: find, add and remove a domain's vsock device with libxml2.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vmxml.h"

/* Parses a definition: no network, no DTD, no entities, no messages. */
static int
vmxml_parse(const char *xml, size_t len, xmlDocPtr *doc, xmlNodePtr *root)
{
	*doc = NULL;
	*root = NULL;
	if (len > VMXML_MAX)
		return -E2BIG;
	*doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (*doc == NULL)
		return -EINVAL;
	*root = xmlDocGetRootElement(*doc);
	if (*root == NULL || (*root)->ns != NULL ||
	    !xmlStrEqual((*root)->name, BAD_CAST "domain")) {
		xmlFreeDoc(*doc);
		*doc = NULL;
		*root = NULL;
		return -EINVAL;
	}
	return 0;
}

/* The first child element of parent called name, in no namespace. */
static xmlNodePtr
vmxml_child(xmlNodePtr parent, const char *name, xmlNodePtr after)
{
	xmlNodePtr n = after != NULL ? after->next : parent->children;

	for (; n != NULL; n = n->next)
		if (n->type == XML_ELEMENT_NODE && n->ns == NULL &&
		    xmlStrEqual(n->name, BAD_CAST name))
			return n;
	return NULL;
}

/* A CID a guest can have: 3 and up, short of VMADDR_CID_ANY. */
static uint32_t
vmxml_cid_value(const xmlChar *s)
{
	unsigned long long v;
	char *end;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return 0;
	errno = 0;
	v = strtoull((const char *)s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 3 || v >= UINT32_MAX)
		return 0;
	return (uint32_t)v;
}

int
vmxml_vsock(const char *xml, size_t len, struct vmxml_vsock *out)
{
	xmlDocPtr doc;
	xmlNodePtr root, devs, vs, cid;
	xmlChar *a;
	int err;

	memset(out, 0, sizeof(*out));
	if ((err = vmxml_parse(xml, len, &doc, &root)) < 0)
		return err;
	if ((devs = vmxml_child(root, "devices", NULL)) == NULL ||
	    (vs = vmxml_child(devs, "vsock", NULL)) == NULL)
		goto done;
	out->present = true;
	if ((cid = vmxml_child(vs, "cid", NULL)) == NULL)
		goto done;
	a = xmlGetNoNsProp(cid, BAD_CAST "auto");
	out->auto_cid = a != NULL && xmlStrEqual(a, BAD_CAST "yes");
	xmlFree(a);
	a = xmlGetNoNsProp(cid, BAD_CAST "address");
	out->cid = vmxml_cid_value(a);
	xmlFree(a);
done:
	xmlFreeDoc(doc);
	return 0;
}

/* Adds the device with an automatic CID under <devices>. */
static int
vmxml_add(xmlNodePtr root, bool *changed)
{
	xmlNodePtr devs, vs, cid;

	if ((devs = vmxml_child(root, "devices", NULL)) != NULL &&
	    vmxml_child(devs, "vsock", NULL) != NULL)
		return 0;
	if (devs == NULL &&
	    (devs = xmlNewChild(root, NULL, BAD_CAST "devices", NULL)) == NULL)
		return -ENOMEM;
	if ((vs = xmlNewChild(devs, NULL, BAD_CAST "vsock", NULL)) == NULL ||
	    xmlNewProp(vs, BAD_CAST "model", BAD_CAST "virtio") == NULL ||
	    (cid = xmlNewChild(vs, NULL, BAD_CAST "cid", NULL)) == NULL ||
	    xmlNewProp(cid, BAD_CAST "auto", BAD_CAST "yes") == NULL)
		return -ENOMEM;
	*changed = true;
	return 0;
}

/* Removes every vsock device, and the blank text before each. */
static void
vmxml_remove(xmlNodePtr root, bool *changed)
{
	xmlNodePtr devs, vs, prev;

	if ((devs = vmxml_child(root, "devices", NULL)) == NULL)
		return;
	while ((vs = vmxml_child(devs, "vsock", NULL)) != NULL) {
		prev = vs->prev;
		if (prev != NULL && xmlIsBlankNode(prev)) {
			xmlUnlinkNode(prev);
			xmlFreeNode(prev);
		}
		xmlUnlinkNode(vs);
		xmlFreeNode(vs);
		*changed = true;
	}
}

int
vmxml_set_vsock(const char *xml, size_t len, bool enable, char **out,
    bool *changed)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	xmlChar *buf = NULL;
	int size = 0, err;

	*out = NULL;
	*changed = false;
	if ((err = vmxml_parse(xml, len, &doc, &root)) < 0)
		return err;
	if (enable)
		err = vmxml_add(root, changed);
	else
		vmxml_remove(root, changed);
	if (err < 0 || !*changed)
		goto done;
	xmlDocDumpMemory(doc, &buf, &size);
	if (buf == NULL || size < 0) {
		err = -ENOMEM;
		goto done;
	}
	if ((*out = malloc((size_t)size + 1)) == NULL) {
		err = -ENOMEM;
		goto done;
	}
	memcpy(*out, buf, (size_t)size);
	(*out)[size] = '\0';
done:
	if (err < 0)
		*changed = false;
	xmlFree(buf);
	xmlFreeDoc(doc);
	return err;
}
