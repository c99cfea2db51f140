/*
 * ctl_acl.c: `acl ls`, `acl add [--at N] allow|deny MATCH PREFIX` and
 * `acl rm N`: the access rules in the state database, reloaded after
 * every change.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "ctl.h"
#include "log.h"
#include "server.h"
#include "state.h"

/* A rule's position (1 to 1000000). */
#define CTL_ACL_POS_MAX		1000000

/* One rule as a JSON object. */
static json_t *
ctl_acl_rule(const struct acl_rule *r, uint32_t position)
{
	static const char *kinds[] = { "", "any", "name", "uuid", "cid" };
	char prefix[PH_MAX_PATH + 2];

	acl_prefix_disp(r, prefix, sizeof(prefix));
	return json_pack("{s:I, s:s, s:s, s:o, s:o}", "position",
	    (json_int_t)position, "action", r->allow ? "allow" : "deny",
	    "kind", kinds[r->kind], "match", ctl_json_str(r->match),
	    "prefix", ctl_json_str(prefix));
}

/* The rules, or an error reply when they are not set up. */
static struct acl *
ctl_acl_get(struct ctl_conn *cc)
{
	struct acl *acl = server_acl(ctl_server(cc));

	if (acl == NULL)
		ctl_error(cc, PH_ERR_UNAVAILABLE, "access rules are not set "
		    "up");
	return acl;
}

/* `acl ls`: the default policy and the rules in evaluation order. */
void
ctl_acl_ls(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct acl *acl;
	const struct acl_rule *r;
	json_t *rules;

	(void)argc;
	(void)argv;
	if ((acl = ctl_acl_get(cc)) == NULL)
		return;
	if ((rules = json_array()) == NULL) {
		ctl_reply(cc, PH_OK, NULL);
		return;
	}
	for (size_t i = 0; i < acl_count(acl); i++) {
		r = acl_rule_at(acl, i);
		if (json_array_append_new(rules, ctl_acl_rule(r, r->position)) <
		    0) {
			json_decref(rules);
			ctl_reply(cc, PH_OK, NULL);
			return;
		}
	}
	ctl_reply(cc, PH_OK, json_pack("{s:s, s:o}", "default",
	    acl_default_allow(acl) ? "allow" : "deny", "rules", rules));
}

/* Answers after a rule change: the rule, or why the set did not reload. */
static void
ctl_acl_changed(struct ctl_conn *cc, const char *what,
    const struct acl_rule *r, uint32_t pos)
{
	struct state *state = ctl_state(cc);
	char prefix[PH_MAX_PATH + 2];
	char ematch[4 * ACL_NAME_MAX + 1], eprefix[1024];
	int err;

	acl_prefix_disp(r, prefix, sizeof(prefix));
	log_info(ctl_log(cc), "access rule %u %s: %s %s %s by control peer=%s",
	    pos, what, r->allow ? "allow" : "deny", ph_util_escape(r->match,
	    strlen(r->match), false, ematch, sizeof(ematch)),
	    ph_util_escape(prefix, strlen(prefix), false, eprefix,
	    sizeof(eprefix)), ctl_peer(cc));
	if ((err = acl_reload(server_acl(ctl_server(cc)), state)) < 0) {
		log_warn(ctl_log(cc), "access rules saved but not reloaded: %s",
		    err == -ENOMEM ? "out of memory" : state_errmsg(state));
		ctl_error(cc, PH_ERR_INTERNAL, "rule %u %s: %s %s %s, but the "
		    "rules could not be reloaded: %s", pos, what, r->allow ?
		    "allow" : "deny", r->match, prefix, err == -ENOMEM ?
		    "out of memory" : state_errmsg(state));
		return;
	}
	ctl_reply(cc, PH_OK, json_pack("{s:o}", what, ctl_acl_rule(r, pos)));
}

/* `acl add [--at N] allow|deny MATCH PREFIX`: save, then reload. */
void
ctl_acl_add(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct state *state = ctl_state(cc);
	struct acl *acl;
	struct acl_rule r;
	uint32_t at = 0, pos;
	char why[512];
	size_t i = 0;
	int err;

	if ((acl = ctl_acl_get(cc)) == NULL)
		return;
	if (i < argc && strncmp(argv[i], "--at=", 5) == 0) {
		if (!ctl_parse_count(argv[i] + 5, CTL_ACL_POS_MAX, &at))
			goto bad_at;
		i++;
	} else if (i < argc && strcmp(argv[i], "--at") == 0) {
		if (i + 1 >= argc || !ctl_parse_count(argv[i + 1],
		    CTL_ACL_POS_MAX, &at))
			goto bad_at;
		i += 2;
	}
	if (argc - i != 3) {
		ctl_error(cc, PH_ERR_USAGE, "usage: acl add [--at N] "
		    "allow|deny MATCH PREFIX (MATCH: a domain name or UUID, "
		    "cid:N or *)");
		return;
	}
	if (acl_rule_parse(argv[i], argv[i + 1], argv[i + 2], &r, why,
	    sizeof(why)) < 0) {
		ctl_error(cc, PH_ERR_USAGE, "%s", why);
		return;
	}
	if ((err = acl_save(state, at, &r, &pos)) == -ERANGE)
		ctl_error(cc, PH_ERR_USAGE, "--at %u is past the end: there "
		    "are %zu rules", at, acl_count(acl));
	else if (err < 0)
		ctl_error(cc, PH_ERR_INTERNAL, "cannot save the rule in the "
		    "state database: %s", state_errmsg(state));
	else
		ctl_acl_changed(cc, "added", &r, pos);
	return;
bad_at:
	ctl_error(cc, PH_ERR_USAGE, "--at needs a rule position (1, 2, ...)");
}

/* `acl rm N`: delete the rule at position N, then reload. */
void
ctl_acl_rm(struct ctl_conn *cc, size_t argc, const char *const *argv)
{
	struct state *state = ctl_state(cc);
	const struct acl_rule *cur;
	struct acl *acl;
	struct acl_rule r;
	uint32_t pos;
	int err;

	(void)argc;
	if ((acl = ctl_acl_get(cc)) == NULL)
		return;
	if (!ctl_parse_count(argv[0], CTL_ACL_POS_MAX, &pos)) {
		ctl_error(cc, PH_ERR_USAGE, "usage: acl rm N (the position "
		    "`acl ls` shows)");
		return;
	}
	/* The cached copy is what `acl ls` showed: name the rule from it. */
	cur = acl_rule_at(acl, pos - 1);
	if (cur != NULL)
		r = *cur;
	if ((err = state_acl_remove(state, pos)) == -ENOENT ||
	    (err == 0 && cur == NULL))
		ctl_error(cc, PH_ERR_NOT_FOUND, "no rule %u (see acl ls)", pos);
	else if (err < 0)
		ctl_error(cc, PH_ERR_INTERNAL, "cannot remove the rule from "
		    "the state database: %s", state_errmsg(state));
	else
		ctl_acl_changed(cc, "removed", &r, pos);
}
