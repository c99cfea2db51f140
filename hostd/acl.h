/*
 * acl.h: per-VM access rules for GET, STAT and LIST.
 *
 * A rule says allow or deny for one peer (a libvirt domain by name or UUID,
 * a vsock CID, or every peer) under one path prefix. Rules are kept in an
 * explicit order; the first rule that matches a request decides, and when
 * none does the default policy does. A prefix matches whole path
 * components: "tools" covers "tools" and "tools/a", never "toolsx".
 *
 * The rules live in the state database (state.h), which keeps their words
 * and leaves judging them to acl_load() here; struct acl is the cached
 * copy the connections ask, replaced as a whole whenever the rules change.
 * Nothing here logs; only acl_load(), acl_save() and acl_reload() block
 * (briefly, on the database).
 */
#ifndef HOSTD_ACL_H
#define HOSTD_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct acl;
struct state;

/* What a rule's MATCH names. */
enum acl_kind {
	ACL_ANY = 1,		/* "*" */
	ACL_NAME,		/* a libvirt domain name */
	ACL_UUID,		/* a libvirt domain UUID */
	ACL_CID,		/* "cid:N" */
};

/* A domain name as libvirt allows it, bounded here. */
#define ACL_NAME_MAX	255
/* A UUID in its canonical text form, lowercase. */
#define ACL_UUID_LEN	36

/* One rule, a value type. */
struct acl_rule {
	uint32_t	 position;	/* 1-based, in evaluation order */
	bool		 allow;
	enum acl_kind	 kind;
	uint32_t	 cid;		/* ACL_CID */
	char		 match[ACL_NAME_MAX + 1];	/* as shown: "*",
					   "cid:5", the name or the UUID */
	char		 prefix[PH_MAX_PATH + 1];	/* normalised: "." or
					   "a/b" */
};

/* Who is asking. */
struct acl_peer {
	uint32_t	 cid;		/* vsock CID; 0 when not a vsock peer */
	const char	*name;		/* libvirt domain name, or NULL */
	const char	*uuid;		/* its UUID (lowercase), or NULL */
};

/* The outcome of acl_check(). */
struct acl_verdict {
	bool		 allow;
	uint32_t	 rule;		/* the deciding rule; 0: the default */
};

/*
 * Fills r from the words of `acl add`: action "allow" or "deny", match
 * ("*", "cid:N" with 1 <= N < 2^32-1, a UUID, "name:NAME" or a bare NAME of
 * at most ACL_NAME_MAX bytes of UTF-8 without '/' or control bytes) and a
 * path prefix (normalised with ph_path_normalize()). position is left 0.
 * Returns 0, or -EINVAL with a one-line reason in err.
 */
int	acl_rule_parse(const char *action, const char *match,
	    const char *prefix, struct acl_rule *r, char *err, size_t errlen);

/* The prefix as shown to people: "/" or "/a/b", into buf. Returns buf. */
const char *acl_prefix_disp(const struct acl_rule *r, char *buf, size_t cap);

/*
 * Creates an empty rule set with the default policy (true: allow).
 * Returns 0 and sets *out, or -ENOMEM. Free with acl_free().
 */
int	acl_new(bool default_allow, struct acl **out);

/* Frees the rule set. Accepts NULL. */
void	acl_free(struct acl *acl);

/* The default policy given to acl_new(). */
bool	acl_default_allow(const struct acl *acl);

/*
 * Replaces the rules with a copy of the n rules in rules (in evaluation
 * order; their positions are kept as given). Returns 0, or -ENOMEM and
 * keeps the old rules.
 */
int	acl_set_rules(struct acl *acl, const struct acl_rule *rules, size_t n);

/*
 * Reads the rules saved in st (state_acl_rows()), each through the check
 * of acl_rule_parse(), into a malloc'd array the caller frees (*rules NULL
 * when there are none), in evaluation order with positions 1..n. Returns
 * 0, -EIO on a database error, -EINVAL for a row that is not a valid rule
 * (state_errmsg() then names it), or -ENOMEM.
 */
int	acl_load(struct state *st, struct acl_rule **rules, size_t *n);

/*
 * Saves r in st before the rule at position at (1-based; 0 appends), as
 * state_acl_add() does, and sets *pos to its position. Returns what
 * state_acl_add() returns.
 */
int	acl_save(struct state *st, uint32_t at, const struct acl_rule *r,
	    uint32_t *pos);

/*
 * Replaces the rules with those saved in st. Returns 0, or -EIO / -ENOMEM
 * and keeps the old rules (state_errmsg() says why for -EIO).
 */
int	acl_reload(struct acl *acl, struct state *st);

/* The number of rules, and rule i (0-based) of them. */
size_t	acl_count(const struct acl *acl);
const struct acl_rule *acl_rule_at(const struct acl *acl, size_t i);

/*
 * Decides whether peer may read rel, a normalised path ("." for the root).
 * acl NULL allows everything.
 */
void	acl_check(const struct acl *acl, const struct acl_peer *peer,
	    const char *rel, struct acl_verdict *out);

/*
 * Like acl_check(), for STAT and LIST: a directory on the way to something
 * the peer may read is visible too, so a guest allowed "a/b/c" can list
 * "." and "a" and "a/b" (each showing only what leads there), while a
 * guest denied everything under "a" never sees it. An allow rule that an
 * earlier rule shadows opens nothing.
 */
void	acl_check_browse(const struct acl *acl, const struct acl_peer *peer,
	    const char *rel, struct acl_verdict *out);

/*
 * True if some path may be refused to peer: a deny rule names it before
 * any rule allowing it the whole tree, or none of its rules covers the
 * whole tree and the default policy denies. A relay that cannot learn
 * where a path really leads serves only peers the rules do not restrict.
 * acl NULL restricts nobody.
 */
bool	acl_restricts(const struct acl *acl, const struct acl_peer *peer);

/*
 * True if the rule's MATCH names the peer. A name or UUID rule never
 * matches a peer libvirt did not name.
 */
bool	acl_rule_matches_peer(const struct acl_rule *r,
	    const struct acl_peer *peer);

/* True if the rule's prefix covers rel (whole components). */
bool	acl_rule_covers(const struct acl_rule *r, const char *rel);

#endif /* HOSTD_ACL_H */
