/*
 * test_vmxml.c: the vsock device in libvirt domain XML (hostd/vmxml.c):
 * reading the CID, adding and removing the device, decoys elsewhere in the
 * document, and documents that are not domains or not XML.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmxml.h"

static const char live[] =
    "<domain type='kvm' id='4'>\n"
    "  <name>web1</name>\n"
    "  <metadata>\n"
    "    <vsock xmlns='urn:example:decoy'><cid address='99'/></vsock>\n"
    "  </metadata>\n"
    "  <devices>\n"
    "    <disk type='file'><source file='/v/web1.qcow2'/></disk>\n"
    "    <vsock model='virtio'>\n"
    "      <cid auto='yes' address='42'/>\n"
    "      <alias name='vsock0'/>\n"
    "    </vsock>\n"
    "  </devices>\n"
    "</domain>\n";

static const char plain[] =
    "<domain type='kvm'>\n"
    "  <name>db1</name>\n"
    "  <description>a &lt;vsock&gt; is mentioned here</description>\n"
    "  <metadata><vsock><cid address='7'/></vsock></metadata>\n"
    "  <devices>\n"
    "    <graphics type='vnc' passwd='s3cret'/>\n"
    "  </devices>\n"
    "</domain>\n";

/* vmxml_vsock() of a NUL-terminated document. */
static int
vs(const char *xml, struct vmxml_vsock *v)
{
	return vmxml_vsock(xml, strlen(xml), v);
}

/* Parses a document that must be valid. */
static struct vmxml_vsock
vsock_of(const char *xml)
{
	struct vmxml_vsock v;

	assert_int_equal(vmxml_vsock(xml, strlen(xml), &v), 0);
	return v;
}

static void
test_read_cid(void **state)
{
	struct vmxml_vsock v;

	(void)state;
	v = vsock_of(live);
	assert_true(v.present);
	assert_true(v.auto_cid);
	assert_int_equal(v.cid, 42);

	/* Only /domain/devices/vsock counts. */
	v = vsock_of(plain);
	assert_false(v.present);
	assert_int_equal(v.cid, 0);

	v = vsock_of("<domain><devices><vsock model='virtio'><cid auto='no' "
	    "address='5'/></vsock></devices></domain>");
	assert_true(v.present);
	assert_false(v.auto_cid);
	assert_int_equal(v.cid, 5);

	/* Defined but not started: auto, no address yet. */
	v = vsock_of("<domain><devices><vsock><cid auto='yes'/></vsock>"
	    "</devices></domain>");
	assert_true(v.present);
	assert_true(v.auto_cid);
	assert_int_equal(v.cid, 0);

	/* Addresses a guest cannot have count as none. */
	v = vsock_of("<domain><devices><vsock><cid address='2'/></vsock>"
	    "</devices></domain>");
	assert_true(v.present);
	assert_int_equal(v.cid, 0);
	v = vsock_of("<domain><devices><vsock><cid address='4294967295'/>"
	    "</vsock></devices></domain>");
	assert_int_equal(v.cid, 0);
	v = vsock_of("<domain><devices><vsock><cid address='12x'/></vsock>"
	    "</devices></domain>");
	assert_int_equal(v.cid, 0);
	v = vsock_of("<domain><devices><vsock/></devices></domain>");
	assert_true(v.present);
	assert_int_equal(v.cid, 0);
	v = vsock_of("<domain/>");
	assert_false(v.present);
}

static void
test_refused(void **state)
{
	struct vmxml_vsock v;
	char *out = NULL;
	bool changed = true;
	char *big;

	(void)state;
	assert_int_equal(vs("", &v), -EINVAL);
	assert_int_equal(vs("<domain>", &v), -EINVAL);
	assert_int_equal(vs("<network/>", &v), -EINVAL);
	assert_int_equal(vs("<x:domain xmlns:x='urn:a'/>", &v), -EINVAL);
	assert_int_equal(vs("not xml at all", &v), -EINVAL);
	/* An external entity is never loaded: the document is refused. */
	assert_int_equal(vs("<!DOCTYPE domain [<!ENTITY e SYSTEM "
	    "'file:///etc/passwd'>]><domain><devices><vsock><cid address='&e;'"
	    "/></vsock></devices></domain>", &v), -EINVAL);
	assert_false(v.present);
	assert_int_equal(vmxml_set_vsock("<oops", 5, true, &out, &changed),
	    -EINVAL);
	assert_null(out);
	assert_false(changed);
	big = malloc(VMXML_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', VMXML_MAX + 1);
	assert_int_equal(vmxml_vsock(big, VMXML_MAX + 1, &v), -E2BIG);
	free(big);
}

static void
test_enable_disable(void **state)
{
	struct vmxml_vsock v;
	char *on = NULL, *off = NULL, *again = NULL;
	bool changed;

	(void)state;
	assert_int_equal(vmxml_set_vsock(plain, strlen(plain), true, &on,
	    &changed), 0);
	assert_true(changed);
	assert_non_null(on);
	v = vsock_of(on);
	assert_true(v.present);
	assert_true(v.auto_cid);
	assert_int_equal(v.cid, 0);
	assert_non_null(strstr(on, "<vsock model=\"virtio\"><cid auto=\"yes\"/>"
	    "</vsock>"));
	/* Everything else is kept: the secret, the decoy, the text. */
	assert_non_null(strstr(on, "passwd=\"s3cret\""));
	assert_non_null(strstr(on, "<metadata><vsock><cid address=\"7\"/>"));
	assert_non_null(strstr(on, "a &lt;vsock&gt; is mentioned here"));

	/* Enabling twice changes nothing. */
	assert_int_equal(vmxml_set_vsock(on, strlen(on), true, &again,
	    &changed), 0);
	assert_false(changed);
	assert_null(again);

	assert_int_equal(vmxml_set_vsock(on, strlen(on), false, &off,
	    &changed), 0);
	assert_true(changed);
	v = vsock_of(off);
	assert_false(v.present);
	assert_non_null(strstr(off, "<metadata><vsock><cid address=\"7\"/>"));
	assert_non_null(strstr(off, "passwd=\"s3cret\""));
	free(off);
	off = NULL;
	assert_int_equal(vmxml_set_vsock(plain, strlen(plain), false, &off,
	    &changed), 0);
	assert_false(changed);
	assert_null(off);
	free(on);

	/* A live definition loses its device, alias and all. */
	assert_int_equal(vmxml_set_vsock(live, strlen(live), false, &off,
	    &changed), 0);
	assert_true(changed);
	assert_null(strstr(off, "vsock0"));
	assert_non_null(strstr(off, "web1.qcow2"));
	assert_false(vsock_of(off).present);
	free(off);

	/* No <devices> at all: it is made. */
	assert_int_equal(vmxml_set_vsock("<domain><name>x</name></domain>",
	    strlen("<domain><name>x</name></domain>"), true, &on, &changed), 0);
	assert_true(changed);
	assert_true(vsock_of(on).present);
	free(on);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_cid),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_enable_disable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
