/*
 * test_ctltab.c: the control command table's lookups (common/ctltab.c):
 * longest match, operand counts, prefixes, unknown words, and the lists
 * the messages and --help print.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctltab.h"

/* Looks argv up; returns the match, with the command's id and words. */
static enum ctltab_match
lookup(size_t argc, const char *const *argv, int *id, size_t *nwords)
{
	const struct ctltab_cmd *cmd;
	enum ctltab_match m;

	m = ctltab_lookup(argc, argv, &cmd, nwords);
	*id = cmd != NULL ? (int)cmd->id : -1;
	return m;
}

static void
test_found(void **state)
{
	const char *a[] = { "repo", "set", "/srv" };
	const char *b[] = { "status" };
	const char *c[] = { "audit", "--since", "1h", "--limit", "3" };
	const char *d[] = { "repo", "ls" };
	size_t n;
	int id;

	(void)state;
	assert_int_equal(lookup(3, a, &id, &n), CTLTAB_FOUND);
	assert_int_equal(id, CTLTAB_REPO_SET);
	assert_int_equal(n, 2);
	assert_int_equal(lookup(1, b, &id, &n), CTLTAB_FOUND);
	assert_int_equal(id, CTLTAB_STATUS);
	assert_int_equal(n, 1);
	assert_int_equal(lookup(5, c, &id, &n), CTLTAB_FOUND);
	assert_int_equal(id, CTLTAB_AUDIT);
	assert_int_equal(lookup(2, d, &id, &n), CTLTAB_FOUND);
	assert_int_equal(id, CTLTAB_REPO_LS);
}

static void
test_arity(void **state)
{
	const char *a[] = { "repo", "set" };
	const char *b[] = { "status", "now" };
	const char *c[] = { "acl", "add", "allow", "*" };
	size_t n;
	int id;

	(void)state;
	assert_int_equal(lookup(2, a, &id, &n), CTLTAB_ARITY);
	assert_int_equal(id, CTLTAB_REPO_SET);
	assert_int_equal(n, 2);
	assert_int_equal(lookup(2, b, &id, &n), CTLTAB_ARITY);
	assert_int_equal(id, CTLTAB_STATUS);
	assert_int_equal(lookup(4, c, &id, &n), CTLTAB_ARITY);
	assert_int_equal(id, CTLTAB_ACL_ADD);
}

static void
test_partial_and_unknown(void **state)
{
	const char *a[] = { "repo" };
	const char *b[] = { "repo", "frob" };
	const char *c[] = { "frobnicate" };
	const char *d[] = { "repository" };
	const char *e[] = { "" };
	size_t n;
	int id;

	(void)state;
	assert_int_equal(lookup(1, a, &id, &n), CTLTAB_PARTIAL);
	assert_int_equal(id, -1);
	assert_int_equal(lookup(2, b, &id, &n), CTLTAB_UNKNOWN);
	assert_int_equal(lookup(1, c, &id, &n), CTLTAB_UNKNOWN);
	assert_int_equal(lookup(1, d, &id, &n), CTLTAB_UNKNOWN);
	assert_int_equal(lookup(1, e, &id, &n), CTLTAB_UNKNOWN);
	assert_int_equal(lookup(0, e, &id, &n), CTLTAB_UNKNOWN);
}

/* Every entry's words are unique and its id is its place in the table. */
static void
test_table(void **state)
{
	const struct ctltab_cmd *c, *o;

	(void)state;
	assert_null(ctltab_at(CTLTAB_NCOMMANDS));
	for (size_t i = 0; (c = ctltab_at(i)) != NULL; i++) {
		assert_int_equal(c->id, i);
		assert_true(c->min_operands <= c->max_operands);
		assert_true(c->summary[0] != '\0');
		for (size_t j = 0; j < i; j++) {
			o = ctltab_at(j);
			assert_string_not_equal(c->words, o->words);
		}
	}
}

static void
test_lists(void **state)
{
	char buf[1024], small[16], *help = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	ctltab_list("acl", buf, sizeof(buf));
	assert_string_equal(buf, "acl ls, acl add [--at N] allow|deny MATCH "
	    "PREFIX, acl rm N");
	ctltab_list("ac", buf, sizeof(buf));
	assert_string_equal(buf, "");
	ctltab_list(NULL, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	assert_true(strncmp(small, "status, queue, repo get",
	    strlen(small)) == 0);
	assert_non_null(f = open_memstream(&help, &len));
	ctltab_print_help(f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(help, "\n  repo set PATH    Serve the directory"));
	assert_non_null(strstr(help, "\n  acl add [--at N] allow|deny MATCH "
	    "PREFIX\n                   Add a rule"));
	free(help);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_arity),
		cmocka_unit_test(test_partial_and_unknown),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_lists),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
