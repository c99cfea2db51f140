/*
 * ctlshow.h: portholectl's text for each command's JSON reply.
 *
 * The daemon answers every command with one JSON object (its shape is in
 * portholectl(8)); the command table (common/ctltab.h) names the show
 * function that prints it for people. ntpctl's show_*_msg are the model.
 */
#ifndef PORTHOLE_CTLSHOW_H
#define PORTHOLE_CTLSHOW_H

#include <jansson.h>
#include <stdio.h>

#include "ctltab.h"

/* Prints reply as text on f. Returns 0, or -1 if a field is missing. */
typedef int ctlshow_fn(FILE *f, json_t *reply);

#define CTLSHOW_DECL(id, w, mn, mx, ops, fl, handler, show, sum)	\
	ctlshow_fn show;
CTLTAB_COMMANDS(CTLSHOW_DECL)
#undef CTLSHOW_DECL

/* The show function of command id. */
ctlshow_fn *ctlshow_for(enum ctltab_id id);

/* An error reply ({"error": NAME, "message": TEXT}): prints the message. */
int	ctlshow_error(FILE *f, json_t *reply);

#endif /* PORTHOLE_CTLSHOW_H */
