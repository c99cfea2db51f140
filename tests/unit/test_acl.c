/*
 * test_acl.c: access rules (hostd/acl.c): parsing MATCH and PREFIX, whole
 * component prefixes, first match wins, the default policy, and the
 * directories STAT and LIST may pass through.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"

/* Parses one rule that must be valid. */
static struct acl_rule
rule(const char *action, const char *match, const char *prefix)
{
	struct acl_rule r;
	char err[512];

	assert_int_equal(acl_rule_parse(action, match, prefix, &r, err,
	    sizeof(err)), 0);
	return r;
}

/* True if parsing fails with -EINVAL and a reason. */
static bool
refused(const char *action, const char *match, const char *prefix)
{
	struct acl_rule r;
	char err[512];

	if (acl_rule_parse(action, match, prefix, &r, err, sizeof(err)) !=
	    -EINVAL)
		return false;
	return err[0] != '\0';
}

static void
test_parse_kinds(void **state)
{
	struct acl_rule r;
	char buf[64];

	(void)state;
	r = rule("allow", "*", "/");
	assert_true(r.allow);
	assert_int_equal(r.kind, ACL_ANY);
	assert_string_equal(r.prefix, ".");
	assert_string_equal(acl_prefix_disp(&r, buf, sizeof(buf)), "/");

	r = rule("deny", "cid:42", "/tools/");
	assert_false(r.allow);
	assert_int_equal(r.kind, ACL_CID);
	assert_int_equal(r.cid, 42);
	assert_string_equal(r.match, "cid:42");
	assert_string_equal(r.prefix, "tools");
	assert_string_equal(acl_prefix_disp(&r, buf, sizeof(buf)), "/tools");

	/* UUIDs are kept lowercase. */
	r = rule("allow", "11111111-AAAA-3333-4444-55555555BBBB", "a//b/./c");
	assert_int_equal(r.kind, ACL_UUID);
	assert_string_equal(r.match, "11111111-aaaa-3333-4444-55555555bbbb");
	assert_string_equal(r.prefix, "a/b/c");

	r = rule("allow", "web-1.example", "x/../y");
	assert_int_equal(r.kind, ACL_NAME);
	assert_string_equal(r.match, "web-1.example");
	assert_string_equal(r.prefix, "y");

	/* "name:" makes anything a name, even what looks like a CID. */
	r = rule("deny", "name:cid:5", "/");
	assert_int_equal(r.kind, ACL_NAME);
	assert_string_equal(r.match, "cid:5");
	r = rule("deny", "name:*", "/");
	assert_int_equal(r.kind, ACL_NAME);
	assert_string_equal(r.match, "*");

	/* Names may hold spaces and UTF-8. */
	r = rule("allow", "gäst 2", "/");
	assert_string_equal(r.match, "gäst 2");
}

static void
test_parse_refused(void **state)
{
	char name[300];

	(void)state;
	assert_true(refused("permit", "*", "/"));
	assert_true(refused("", "*", "/"));
	assert_true(refused("ALLOW", "*", "/"));
	assert_true(refused("allow", "", "/"));
	assert_true(refused("allow", "name:", "/"));
	assert_true(refused("allow", "cid:", "/"));
	assert_true(refused("allow", "cid:0", "/"));
	assert_true(refused("allow", "cid:-1", "/"));
	assert_true(refused("allow", "cid:4294967295", "/"));
	assert_true(refused("allow", "cid:99999999999", "/"));
	assert_true(refused("allow", "cid:5x", "/"));
	assert_true(refused("allow", "a/b", "/"));
	assert_true(refused("allow", "tab\there", "/"));
	assert_true(refused("allow", "bad\xff", "/"));
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_true(refused("allow", name, "/"));
	name[ACL_NAME_MAX] = '\0';
	assert_false(refused("allow", name, "/"));
	/* Prefixes go through the path normaliser. */
	assert_true(refused("allow", "*", "../etc"));
	assert_true(refused("allow", "*", "/a/../../b"));
	assert_true(refused("allow", "*", "a\x01"));
}

static void
test_covers_whole_components(void **state)
{
	struct acl_rule r = rule("allow", "*", "/tools");
	struct acl_rule root = rule("allow", "*", "/");

	(void)state;
	assert_true(acl_rule_covers(&r, "tools"));
	assert_true(acl_rule_covers(&r, "tools/a"));
	assert_true(acl_rule_covers(&r, "tools/a/b.deb"));
	assert_false(acl_rule_covers(&r, "toolsx"));
	assert_false(acl_rule_covers(&r, "tool"));
	assert_false(acl_rule_covers(&r, "."));
	assert_false(acl_rule_covers(&r, "other/tools"));
	assert_true(acl_rule_covers(&root, "."));
	assert_true(acl_rule_covers(&root, "anything/at/all"));
}

static void
test_matches_peer(void **state)
{
	struct acl_peer web = { 5, "web1",
	    "11111111-2222-3333-4444-555555555555" };
	struct acl_peer anon = { 7, NULL, NULL };
	struct acl_peer unix_peer = { 0, NULL, NULL };
	struct acl_rule r;

	(void)state;
	r = rule("allow", "web1", "/");
	assert_true(acl_rule_matches_peer(&r, &web));
	assert_false(acl_rule_matches_peer(&r, &anon));
	r = rule("allow", "WEB1", "/");
	assert_false(acl_rule_matches_peer(&r, &web));	/* names are exact */
	r = rule("allow", "11111111-2222-3333-4444-555555555555", "/");
	assert_true(acl_rule_matches_peer(&r, &web));
	r = rule("allow", "cid:5", "/");
	assert_true(acl_rule_matches_peer(&r, &web));
	assert_false(acl_rule_matches_peer(&r, &anon));
	assert_false(acl_rule_matches_peer(&r, &unix_peer));
	r = rule("allow", "cid:7", "/");
	assert_true(acl_rule_matches_peer(&r, &anon));
	r = rule("allow", "*", "/");
	assert_true(acl_rule_matches_peer(&r, &unix_peer));
}

static void
test_first_match_wins(void **state)
{
	struct acl_peer web = { 5, "web1", NULL };
	struct acl_peer db = { 6, "db1", NULL };
	struct acl_rule rules[3];
	struct acl_verdict v;
	struct acl *acl;

	(void)state;
	assert_int_equal(acl_new(true, &acl), 0);
	/* No rules: the default. */
	acl_check(acl, &web, "secret/x", &v);
	assert_true(v.allow);
	assert_int_equal(v.rule, 0);

	rules[0] = rule("allow", "web1", "/secret/public");
	rules[1] = rule("deny", "*", "/secret");
	rules[2] = rule("allow", "db1", "/secret");
	for (int i = 0; i < 3; i++)
		rules[i].position = (uint32_t)i + 1;
	assert_int_equal(acl_set_rules(acl, rules, 3), 0);
	assert_int_equal(acl_count(acl), 3);
	assert_int_equal(acl_rule_at(acl, 1)->position, 2);
	assert_null(acl_rule_at(acl, 3));

	acl_check(acl, &web, "secret/public/a", &v);
	assert_true(v.allow);
	assert_int_equal(v.rule, 1);
	acl_check(acl, &web, "secret/other", &v);
	assert_false(v.allow);
	assert_int_equal(v.rule, 2);
	/* Rule 3 never decides: rule 2 covers db1 first. */
	acl_check(acl, &db, "secret/public/a", &v);
	assert_false(v.allow);
	assert_int_equal(v.rule, 2);
	acl_check(acl, &db, "secretx", &v);
	assert_true(v.allow);
	assert_int_equal(v.rule, 0);
	acl_check(acl, &db, ".", &v);
	assert_true(v.allow);
	acl_free(acl);

	/* A deny default with one allowed tree. */
	assert_int_equal(acl_new(false, &acl), 0);
	assert_false(acl_default_allow(acl));
	rules[0] = rule("allow", "cid:5", "/pub");
	rules[0].position = 1;
	assert_int_equal(acl_set_rules(acl, rules, 1), 0);
	acl_check(acl, &web, "pub/a", &v);
	assert_true(v.allow);
	acl_check(acl, &web, "private", &v);
	assert_false(v.allow);
	assert_int_equal(v.rule, 0);
	acl_check(acl, &db, "pub/a", &v);
	assert_false(v.allow);
	/* Replacing with none brings the default back for everything. */
	assert_int_equal(acl_set_rules(acl, NULL, 0), 0);
	acl_check(acl, &web, "pub/a", &v);
	assert_false(v.allow);
	acl_free(acl);

	/* No rule set at all allows everything. */
	acl_check(NULL, &web, "x", &v);
	assert_true(v.allow);
	acl_free(NULL);
}

static void
test_browse(void **state)
{
	struct acl_peer web = { 5, "web1", NULL };
	struct acl_peer other = { 6, NULL, NULL };
	struct acl_rule rules[4];
	struct acl_verdict v;
	struct acl *acl;

	(void)state;
	assert_int_equal(acl_new(false, &acl), 0);
	rules[0] = rule("deny", "web1", "/a/hidden");
	rules[1] = rule("allow", "web1", "/a/b/c");
	rules[2] = rule("allow", "web1", "/a/hidden/x");	/* shadowed */
	rules[3] = rule("allow", "cid:6", "/z");
	for (int i = 0; i < 4; i++)
		rules[i].position = (uint32_t)i + 1;
	assert_int_equal(acl_set_rules(acl, rules, 4), 0);

	/* The way to a readable prefix is visible, nothing beside it. */
	acl_check_browse(acl, &web, ".", &v);
	assert_true(v.allow);
	assert_int_equal(v.rule, 2);
	acl_check_browse(acl, &web, "a", &v);
	assert_true(v.allow);
	acl_check_browse(acl, &web, "a/b", &v);
	assert_true(v.allow);
	acl_check_browse(acl, &web, "a/b/c/d", &v);
	assert_true(v.allow);
	acl_check_browse(acl, &web, "a/bx", &v);
	assert_false(v.allow);
	acl_check_browse(acl, &web, "z", &v);
	assert_false(v.allow);
	/* Reading stays strict. */
	acl_check(acl, &web, "a", &v);
	assert_false(v.allow);
	/* A shadowed allow opens nothing: rule 1 denies a/hidden/x. */
	acl_check_browse(acl, &web, "a/hidden", &v);
	assert_false(v.allow);
	assert_int_equal(v.rule, 1);
	acl_check(acl, &web, "a/hidden/x", &v);
	assert_false(v.allow);
	/* Another guest sees only its own way. */
	acl_check_browse(acl, &other, ".", &v);
	assert_true(v.allow);
	acl_check_browse(acl, &other, "a", &v);
	assert_false(v.allow);
	acl_free(acl);
	acl_check_browse(NULL, &web, "x", &v);
	assert_true(v.allow);
}

/*
 * Which peers some rule may refuse something: a relay that cannot learn
 * where a path leads serves only the others.
 */
static void
test_restricts(void **state)
{
	struct acl_peer seven = { 7, NULL, NULL };
	struct acl_peer eight = { 8, "web1", NULL };
	struct acl_rule rules[2];
	struct acl *acl;

	(void)state;
	assert_false(acl_restricts(NULL, &seven));
	assert_int_equal(acl_new(true, &acl), 0);
	assert_false(acl_restricts(acl, &seven));
	rules[0] = rule("deny", "cid:7", "/secret");
	rules[1] = rule("allow", "*", "/");
	assert_int_equal(acl_set_rules(acl, rules, 2), 0);
	assert_true(acl_restricts(acl, &seven));
	assert_false(acl_restricts(acl, &eight));
	rules[0] = rule("deny", "web1", "/x");
	assert_int_equal(acl_set_rules(acl, rules, 1), 0);
	assert_false(acl_restricts(acl, &seven));
	assert_true(acl_restricts(acl, &eight));
	/* An allow of the whole tree first: a later deny never decides. */
	rules[0] = rule("allow", "*", "/");
	rules[1] = rule("deny", "cid:7", "/secret");
	assert_int_equal(acl_set_rules(acl, rules, 2), 0);
	assert_false(acl_restricts(acl, &seven));
	acl_free(acl);
	/* A default of deny: only a rule for the whole tree lifts it. */
	assert_int_equal(acl_new(false, &acl), 0);
	assert_true(acl_restricts(acl, &eight));
	rules[0] = rule("allow", "*", "/pub");
	assert_int_equal(acl_set_rules(acl, rules, 1), 0);
	assert_true(acl_restricts(acl, &eight));
	rules[0] = rule("allow", "cid:8", "/");
	assert_int_equal(acl_set_rules(acl, rules, 1), 0);
	assert_false(acl_restricts(acl, &eight));
	assert_true(acl_restricts(acl, &seven));
	acl_free(acl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_kinds),
		cmocka_unit_test(test_parse_refused),
		cmocka_unit_test(test_covers_whole_components),
		cmocka_unit_test(test_matches_peer),
		cmocka_unit_test(test_first_match_wins),
		cmocka_unit_test(test_browse),
		cmocka_unit_test(test_restricts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
