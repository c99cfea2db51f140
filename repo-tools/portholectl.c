/*
 * portholectl.c: the admin command line for portholed's control socket.
 *
 * One CTL frame out, one CTL_REPLY back. The reply body is a JSON object:
 * portholectl prints it as text (ctlshow.c, chosen by the command table)
 * or, with --json, as it came.
 */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ctlcmd.h"
#include "ctlconn.h"
#include "ctlshow.h"
#include "usage.h"

static void
portholectl_print_usage(FILE *f)
{
	fputs("usage: portholectl [-s CONTROL] [--json] COMMAND [ARGS]\n"
	    "\n"
	    "Administer portholed through its control socket.\n"
	    "\n"
	    "Commands:\n", f);
	ctltab_print_help(f);
	fputs("\n"
	    "Options:\n"
	    "  -s, --socket CONTROL  The control socket\n"
	    "                        (default " PH_DEFAULT_CONTROL ").\n"
	    "      --json            Print the daemon's JSON reply as it is.\n"
	    "  -h, --help            Show this help.\n"
	    "  -V, --version         Show the version.\n"
	    "\n"
	    "Exit status: 0 success; 1 the daemon reported an error; 2 usage "
	    "error;\n3 cannot reach the daemon.\n", f);
}

/*
 * Renders a JSON reply as text into *text (to free): an error's message, or
 * the command's show function. Returns 0, 1 if the body is not JSON (an
 * older daemon's text), -1 if a field the text needs is missing.
 */
static int
portholectl_render_text(const struct ctl_request *req,
    const struct ctl_reply *reply, char **text, size_t *len)
{
	json_t *body;
	FILE *mem;
	int r;

	*text = NULL;
	*len = 0;
	if ((body = json_loadb((const char *)reply->body, reply->body_len, 0,
	    NULL)) == NULL)
		return 1;
	if ((mem = open_memstream(text, len)) == NULL) {
		json_decref(body);
		return -1;
	}
	if (reply->status != PH_OK && json_object_get(body, "error") != NULL)
		r = ctlshow_error(mem, body);
	else
		r = ctlshow_for(req->cmd->id)(mem, body);
	if (fclose(mem) == EOF)
		r = -1;
	json_decref(body);
	if (r < 0) {
		free(*text);
		*text = NULL;
		*len = 0;
	}
	return r;
}

/*
 * Prints the reply on stdout for success and stderr otherwise: as text,
 * or the JSON as it came with json (or when it is not JSON). The text is
 * written at once, like the body, so a reader that stops early (head,
 * grep -q) has what it wanted before portholectl sees the pipe close.
 * Returns the exit code.
 */
static enum cx_exit
portholectl_print_reply(const struct ctl_request *req,
    const struct ctl_reply *reply, bool json)
{
	FILE *out = reply->status == PH_OK ? stdout : stderr;
	const char *what = (const char *)reply->body;
	size_t len = reply->body_len;
	enum cx_exit ex = CX_OK;
	char *text = NULL;
	int r = 1;

	if (reply->body_len == 0 && reply->status != PH_OK)
		fprintf(stderr, "portholectl: %s (%s)\n",
		    ph_err_text(reply->status), ph_err_name(reply->status));
	if (!json && reply->body_len > 0 &&
	    (r = portholectl_render_text(req, reply, &text, &len)) == 0)
		what = text;
	else if (r < 0) {
		fprintf(stderr, "portholectl: the daemon's reply lacks a field "
		    "%s needs:\n", req->cmd->words);
		out = stderr;
		ex = CX_ERROR;
		len = reply->body_len;
	}
	fwrite(what, 1, len, out);
	if (len > 0 && what[len - 1] != '\n')
		fputc('\n', out);
	free(text);
	if (fflush(out) == EOF || ferror(out)) {
		fprintf(stderr, "portholectl: cannot write the reply\n");
		return CX_ERROR;
	}
	if (ex != CX_OK)
		return ex;
	switch (reply->status) {
	case PH_OK:
		return CX_OK;
	case PH_ERR_USAGE:
		return CX_USAGE;
	default:
		return CX_ERROR;
	}
}

/*
 * Takes portholectl's own options out of the words after the command
 * (`queue --json` keeps working) and leaves everything else, in order, for
 * the daemon: a command's options such as `audit --since 1h` or `acl add
 * --at 2` are its operands. "--" passes the rest through as it is.
 * Returns -1 to go on, or an exit code after printing help or an error.
 */
static int
portholectl_take_global_options(int *argc, char **argv, const char **control,
    bool *json)
{
	int i, n = 0;

	for (i = 0; i < *argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			for (i++; i < *argc; i++)
				argv[n++] = argv[i];
			break;
		}
		if (strcmp(a, "--json") == 0) {
			*json = true;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--socket") == 0) {
			if (i + 1 >= *argc)
				return usage_error("portholectl", NULL,
				    "missing argument to option", a);
			*control = argv[++i];
		} else if (strncmp(a, "--socket=", 9) == 0) {
			*control = a + 9;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			portholectl_print_usage(stdout);
			return CX_OK;
		} else
			argv[n++] = argv[i];
	}
	*argc = n;
	return -1;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *control = PH_DEFAULT_CONTROL;
	struct ctl_request req;
	struct ctl_reply reply;
	enum cx_exit ex;
	bool json = false;
	int ch, rc, nargs;

	memset(&reply, 0, sizeof(reply));
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	/*
	 * "+": stop at the command; portholectl_take_global_options() does the
	 * rest.
	 */
	while ((ch = getopt_long(argc, argv, "+:s:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			control = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			portholectl_print_usage(stdout);
			return CX_OK;
		case 'V':
			printf("portholectl %s (protocol %d)\n",
			    PORTHOLE_VERSION, PH_PROTO_VERSION);
			return CX_OK;
		default:
			return usage_bad_option("portholectl", NULL, ch, argv);
		}
	}
	nargs = argc - optind;
	if ((rc = portholectl_take_global_options(&nargs, argv + optind,
	    &control, &json)) >= 0)
		return rc;
	if ((ex = ctlcmd_prepare(nargs, argv + optind, &req)) ==
	    CX_OK &&
	    (ex = ctlconn_request(control, &req, &reply)) == CX_OK)
		ex = portholectl_print_reply(&req, &reply, json);
	ctlconn_reply_free(&reply);
	ctlcmd_request_free(&req);
	return ex;
}
