/*
 * ctltab_dump.c: prints the control command table (common/ctltab.h), one
 * command a line: WORDS, a tab, MIN, a tab, MAX, a tab, the synopsis. The
 * tests check portholectl --help, the man page, the bash completion and
 * the daemon's dispatch against this list.
 */
#include <stdio.h>

#include "ctltab.h"

int
main(void)
{
	const struct ctltab_cmd *c;
	char syn[128];

	for (size_t i = 0; (c = ctltab_at(i)) != NULL; i++) {
		ctltab_synopsis(c, syn, sizeof(syn));
		printf("%s\t%d\t%d\t%s\n", c->words, c->min_operands,
		    c->max_operands, syn);
	}
	return ferror(stdout) ? 1 : 0;
}
