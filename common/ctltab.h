/*
 * ctltab.h: the control commands, one table for the daemon and the tool.
 *
 * CTLTAB_COMMANDS is the only list of control commands. portholed expands
 * it into its dispatch table (each entry's handler, in hostd/ctl_*.c),
 * portholectl into its formatters (each entry's show function, in
 * repo-tools/ctlshow.c) and into --help; the tests check the man page and
 * the bash completion against it. Adding a command is one X() line here,
 * one handler in the daemon and one show function in portholectl; a
 * missing one is a link error.
 *
 * X(ID, WORDS, MIN, MAX, OPERANDS, FLAGS, HANDLER, SHOW, SUMMARY):
 *   ID        enum ctltab_id suffix (CTLTAB_ID)
 *   WORDS     the command, space separated ("repo set")
 *   MIN, MAX  how many operands may follow the words
 *   OPERANDS  their synopsis, for help and usage messages
 *   FLAGS     CTLTAB_*
 *   HANDLER   the daemon's function that answers it
 *   SHOW      portholectl's function that prints the reply as text
 *   SUMMARY   one line for --help
 */
#ifndef PORTHOLE_CTLTAB_H
#define PORTHOLE_CTLTAB_H

#include <stddef.h>
#include <stdio.h>

/* The client makes the first operand an absolute path (realpath). */
#define CTLTAB_ABS_PATH		0x1u

#define CTLTAB_COMMANDS(X)						\
	X(STATUS, "status", 0, 0, "", 0,				\
	    ctl_status_run, ctlshow_status,				\
	    "Version, uptime, listeners, counters, repository.")	\
	X(QUEUE, "queue", 0, 0, "", 0,					\
	    ctl_queue_run, ctlshow_queue,				\
	    "The transfers streaming now and the requests waiting.")	\
	X(REPO_GET, "repo get", 0, 0, "", 0,				\
	    ctl_repo_get, ctlshow_repo_get,				\
	    "Print the repository path.")				\
	X(REPO_SET, "repo set", 1, 1, "PATH", CTLTAB_ABS_PATH,		\
	    ctl_repo_set, ctlshow_repo_set,				\
	    "Serve the directory PATH, now and after restarts.")	\
	X(REPO_LS, "repo ls", 0, 1, "[PATH]", 0,			\
	    ctl_repo_ls, ctlshow_repo_ls,				\
	    "List the repository, or a directory in it.")		\
	X(REPO_SCAN, "repo scan", 0, 0, "", 0,				\
	    ctl_cache_repo_scan, ctlshow_repo_scan,			\
	    "Hash the files the catalog does not know yet.")		\
	X(REPO_VERIFY, "repo verify", 0, 0, "", 0,			\
	    ctl_cache_repo_verify, ctlshow_repo_verify,			\
	    "Re-hash the files the catalog knows; list mismatches.")	\
	X(CACHE_STATS, "cache stats", 0, 0, "", 0,			\
	    ctl_cache_stats, ctlshow_cache_stats,			\
	    "Blobs, bytes, hits and misses, fills, evictions.")		\
	X(CACHE_LS, "cache ls", 0, 0, "", 0,				\
	    ctl_cache_ls, ctlshow_cache_ls,				\
	    "Every blob, most recently used first, with a path.")	\
	X(CACHE_CLEAR, "cache clear", 0, 0, "", 0,			\
	    ctl_cache_clear, ctlshow_cache_clear,			\
	    "Remove every blob; the catalog stays.")			\
	X(CACHE_VERIFY, "cache verify", 0, 0, "", 0,			\
	    ctl_cache_verify, ctlshow_cache_verify,			\
	    "Re-hash every blob and remove the corrupt ones.")		\
	X(VM_LS, "vm ls", 0, 0, "", 0,					\
	    ctl_vm_ls, ctlshow_vm_ls,					\
	    "libvirt domains: state, vsock CID, porthole access.")	\
	X(VM_ENABLE, "vm enable", 1, 1, "DOMAIN", 0,			\
	    ctl_vm_enable, ctlshow_vm_change,				\
	    "Add a vsock device to DOMAIN (from its next boot).")	\
	X(VM_DISABLE, "vm disable", 1, 1, "DOMAIN", 0,			\
	    ctl_vm_disable, ctlshow_vm_change,				\
	    "Remove DOMAIN's vsock device (from its next boot).")	\
	X(ACL_LS, "acl ls", 0, 0, "", 0,				\
	    ctl_acl_ls, ctlshow_acl_ls,					\
	    "The access rules in order, and the default.")		\
	X(ACL_ADD, "acl add", 3, 5, "[--at N] allow|deny MATCH PREFIX", 0, \
	    ctl_acl_add, ctlshow_acl_change,				\
	    "Add a rule; MATCH is a domain, UUID, cid:N or *.")		\
	X(ACL_RM, "acl rm", 1, 1, "N", 0,				\
	    ctl_acl_rm, ctlshow_acl_change,				\
	    "Remove access rule N.")					\
	X(AUDIT, "audit", 0, 6, "[--since T] [--domain D] [--limit N]", 0, \
	    ctl_audit_run, ctlshow_audit,				\
	    "The newest audited requests.")

#define CTLTAB_ENUM(id, w, mn, mx, ops, fl, handler, show, sum) CTLTAB_##id,
enum ctltab_id {
	CTLTAB_COMMANDS(CTLTAB_ENUM)
	CTLTAB_NCOMMANDS
};
#undef CTLTAB_ENUM

/* One command, as the table describes it. */
struct ctltab_cmd {
	enum ctltab_id	 id;
	const char	*words;
	int		 min_operands;
	int		 max_operands;
	const char	*operands;
	unsigned int	 flags;
	const char	*summary;
};

/* How a command line compares with the table. */
enum ctltab_match {
	CTLTAB_FOUND,		/* a command, with a valid operand count */
	CTLTAB_ARITY,		/* a command, with too few or too many */
	CTLTAB_PARTIAL,		/* the first words of commands ("repo") */
	CTLTAB_UNKNOWN,
};

/* The i-th command (table order), or NULL past the end. */
const struct ctltab_cmd *ctltab_at(size_t i);

/*
 * Finds the command argv starts with (argc words; the longest match wins).
 * Sets *cmd (NULL unless FOUND or ARITY) and *nwords, the number of its
 * words, so the operands are argv[*nwords] on.
 */
enum ctltab_match ctltab_lookup(size_t argc, const char *const *argv,
	    const struct ctltab_cmd **cmd, size_t *nwords);

/* "repo set PATH": the words and the operand synopsis. */
void	ctltab_synopsis(const struct ctltab_cmd *c, char *buf, size_t cap);

/*
 * The synopses joined with ", " into buf (cut short if it does not fit):
 * every command, or with first non-NULL only those whose first word it is.
 */
void	ctltab_list(const char *first, char *buf, size_t cap);

/* The commands, one (or two) lines each, indented, for --help. */
void	ctltab_print_help(FILE *f);

#endif /* PORTHOLE_CTLTAB_H */
