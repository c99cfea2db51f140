/*
 * ctltab.c: the command table's data and the lookups both sides share.
 */
#include <stdbool.h>
#include <string.h>

#include "ctltab.h"

#define CTLTAB_ENTRY(id, w, mn, mx, ops, fl, handler, show, sum)	\
	{ CTLTAB_##id, w, mn, mx, ops, fl, sum },
static const struct ctltab_cmd ctltab_cmds[CTLTAB_NCOMMANDS] = {
	CTLTAB_COMMANDS(CTLTAB_ENTRY)
};
#undef CTLTAB_ENTRY

const struct ctltab_cmd *
ctltab_at(size_t i)
{
	return i < CTLTAB_NCOMMANDS ? &ctltab_cmds[i] : NULL;
}

/*
 * Compares a command's space separated words with the arguments: the
 * number of words when all match, 0 when one differs. *prefix says the
 * arguments ran out while matching ("repo" for "repo get").
 */
static size_t
ctltab_match_words(const char *words, size_t argc, const char *const *argv,
    bool *prefix)
{
	const char *w = words;
	size_t n = 0, len;

	*prefix = false;
	while (*w != '\0') {
		len = strcspn(w, " ");
		if (n == argc) {
			*prefix = n > 0;
			return 0;
		}
		if (strlen(argv[n]) != len || strncmp(argv[n], w, len) != 0)
			return 0;
		n++;
		w += len;
		w += strspn(w, " ");
	}
	return n;
}

enum ctltab_match
ctltab_lookup(size_t argc, const char *const *argv,
    const struct ctltab_cmd **cmd, size_t *nwords)
{
	const struct ctltab_cmd *best = NULL;
	bool prefix, any_prefix = false;
	size_t n, noperands;

	*cmd = NULL;
	*nwords = 0;
	for (size_t i = 0; i < CTLTAB_NCOMMANDS; i++) {
		n = ctltab_match_words(ctltab_cmds[i].words, argc, argv,
		    &prefix);
		any_prefix = any_prefix || prefix;
		if (n > *nwords) {
			*nwords = n;
			best = &ctltab_cmds[i];
		}
	}
	if (best == NULL)
		return any_prefix ? CTLTAB_PARTIAL : CTLTAB_UNKNOWN;
	*cmd = best;
	noperands = argc - *nwords;
	if (noperands < (size_t)best->min_operands ||
	    noperands > (size_t)best->max_operands)
		return CTLTAB_ARITY;
	return CTLTAB_FOUND;
}

void
ctltab_synopsis(const struct ctltab_cmd *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s%s%s", c->words, c->operands[0] != '\0' ? " " :
	    "", c->operands);
}

/* Appends the synopses, separated by ", ", while they fit. */
void
ctltab_list(const char *first, char *buf, size_t cap)
{
	char syn[128];
	size_t off = 0, flen = first != NULL ? strlen(first) : 0;
	int n;

	if (cap == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; i < CTLTAB_NCOMMANDS && off < cap; i++) {
		const char *w = ctltab_cmds[i].words;

		if (first != NULL && (strncmp(w, first, flen) != 0 ||
		    (w[flen] != ' ' && w[flen] != '\0')))
			continue;
		ctltab_synopsis(&ctltab_cmds[i], syn, sizeof(syn));
		n = snprintf(buf + off, cap - off, "%s%s", off > 0 ? ", " : "",
		    syn);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* A long synopsis gets its summary on a line of its own. */
void
ctltab_print_help(FILE *f)
{
	char syn[128];

	for (size_t i = 0; i < CTLTAB_NCOMMANDS; i++) {
		ctltab_synopsis(&ctltab_cmds[i], syn, sizeof(syn));
		if (strlen(syn) > 16)
			fprintf(f, "  %s\n  %-16s %s\n", syn, "",
			    ctltab_cmds[i].summary);
		else
			fprintf(f, "  %-16s %s\n", syn, ctltab_cmds[i].summary);
	}
}
