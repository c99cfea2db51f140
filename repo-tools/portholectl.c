/*
 * portholectl.c: the admin command line for portholed's control socket.
 *
 * One CTL frame out, one CTL_REPLY back; the daemon renders the reply body
 * (text or JSON) and portholectl prints it as it is.
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ctlcmd.h"
#include "ctlconn.h"
#include "usage.h"

static void
print_usage(FILE *f)
{
	fputs("usage: portholectl [-s CONTROL] [--json] COMMAND [ARGS]\n"
	    "\n"
	    "Administer portholed through its control socket.\n"
	    "\n"
	    "Commands:\n", f);
	ctlcmd_print_help(f);
	fputs("Other commands are passed to the daemon as typed.\n"
	    "\n"
	    "Options:\n"
	    "  -s, --socket CONTROL  The control socket\n"
	    "                        (default " PH_DEFAULT_CONTROL ").\n"
	    "      --json            Ask the daemon for JSON output.\n"
	    "  -h, --help            Show this help.\n"
	    "  -V, --version         Show the version.\n"
	    "\n"
	    "Exit status: 0 success; 1 the daemon reported an error; 2 usage "
	    "error;\n3 cannot reach the daemon.\n", f);
}

/*
 * Prints the reply body as the daemon wrote it, on stdout for success and
 * stderr otherwise, ending with a newline. Returns the exit code.
 */
static enum cx_exit
print_reply(const struct ctl_reply *reply)
{
	FILE *out = reply->status == PH_OK ? stdout : stderr;

	if (reply->body_len == 0 && reply->status != PH_OK)
		fprintf(stderr, "portholectl: %s (%s)\n",
		    ph_err_text(reply->status), ph_err_name(reply->status));
	fwrite(reply->body, 1, reply->body_len, out);
	if (reply->body_len > 0 && reply->body[reply->body_len - 1] != '\n')
		fputc('\n', out);
	if (fflush(out) == EOF || ferror(out)) {
		fprintf(stderr, "portholectl: cannot write the reply\n");
		return CX_ERROR;
	}
	switch (reply->status) {
	case PH_OK:
		return CX_OK;
	case PH_ERR_USAGE:
		return CX_USAGE;
	default:
		return CX_ERROR;
	}
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
	int ch;

	memset(&reply, 0, sizeof(reply));
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":s:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			control = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			print_usage(stdout);
			return CX_OK;
		case 'V':
			printf("portholectl %s (protocol %d)\n",
			    PORTHOLE_VERSION, PH_PROTO_VERSION);
			return CX_OK;
		default:
			return usage_bad_option("portholectl", NULL, ch, argv);
		}
	}
	if ((ex = ctlcmd_prepare(argc - optind, argv + optind, &req)) ==
	    CX_OK &&
	    (ex = ctlconn_request(control, &req, json, &reply)) == CX_OK)
		ex = print_reply(&reply);
	ctl_reply_free(&reply);
	ctl_request_free(&req);
	return ex;
}
