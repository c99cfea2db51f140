/*
 * ttfb: time to first byte of a Porthole GET, for the nesting benchmark.
 *
 * Connects to ENDPOINT, does the HELLO, then times one GET of REMOTE (with
 * DATA_ZSTD allowed, as porthole asks): from just before the GET frame is
 * written to the arrival of the first DATA or DATA_ZSTD frame, and to END.
 * The file bytes are counted and dropped; the digest is not checked (the
 * benchmark's porthole runs check it).
 *
 * usage: ttfb ENDPOINT REMOTE
 * Prints one line: "TTFB_MS TOTAL_MS BYTES". Exit status 0 on END, 1 on an
 * ERROR reply or a broken stream, 2 on usage errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

#define TTFB_BUF	(PH_HDR_LEN + PH_MAX_PAYLOAD)

static double
ttfb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int
main(int argc, char *argv[])
{
	struct ph_endpoint ep;
	struct ph_msg *m = NULL;
	uint8_t *buf = NULL;
	double t0, first = -1, end;
	uint64_t bytes = 0;
	int fd = -1, rc = 1, err;

	if (argc != 3 || ph_endpoint_parse(argv[1], &ep) < 0 ||
	    strlen(argv[2]) > PH_MAX_PATH) {
		fprintf(stderr, "usage: ttfb ENDPOINT REMOTE\n");
		return 2;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (buf = malloc(TTFB_BUF)) == NULL) {
		fprintf(stderr, "ttfb: out of memory\n");
		goto out;
	}
	if ((fd = ph_endpoint_connect(&ep, 10000)) < 0) {
		fprintf(stderr, "ttfb: connect %s: %s\n", argv[1],
		    strerror(-fd));
		goto out;
	}
	m->type = PH_HELLO;
	m->u.hello.min_version = PH_PROTO_MIN_VERSION;
	m->u.hello.max_version = PH_PROTO_VERSION;
	m->u.hello.features = PH_FEAT_ALL;
	snprintf(m->u.hello.agent, sizeof(m->u.hello.agent), "ttfb");
	if ((err = ph_io_send_msg(fd, m, buf, TTFB_BUF)) < 0 ||
	    (err = ph_io_recv_msg(fd, buf, TTFB_BUF, m)) < 0) {
		fprintf(stderr, "ttfb: handshake: %s\n", strerror(-err));
		goto out;
	}
	if (m->type != PH_HELLO_ACK) {
		fprintf(stderr, "ttfb: handshake refused\n");
		goto out;
	}
	memset(m, 0, sizeof(*m));
	m->type = PH_GET;
	m->u.get.flags = PH_GET_WANT_ZSTD;
	snprintf(m->u.get.path, sizeof(m->u.get.path), "%s", argv[2]);
	t0 = ttfb_now_ms();
	if ((err = ph_io_send_msg(fd, m, buf, TTFB_BUF)) < 0) {
		fprintf(stderr, "ttfb: send: %s\n", strerror(-err));
		goto out;
	}
	for (;;) {
		if ((err = ph_io_recv_msg(fd, buf, TTFB_BUF, m)) < 0) {
			fprintf(stderr, "ttfb: receive: %s\n", strerror(-err));
			goto out;
		}
		switch (m->type) {
		case PH_QUEUED:
		case PH_META:
			continue;
		case PH_DATA:
		case PH_DATA_ZSTD:
			if (first < 0)
				first = ttfb_now_ms();
			/* DATA_ZSTD counts its compressed size: good enough
			 * for a first-byte timer, and random data is sent
			 * raw anyway. */
			bytes += m->u.data.len;
			continue;
		case PH_END:
			end = ttfb_now_ms();
			if (first < 0)
				first = end;	/* an empty file */
			printf("%.3f %.3f %" PRIu64 "\n", first - t0, end - t0,
			    bytes);
			rc = 0;
			goto out;
		case PH_ERROR:
			fprintf(stderr, "ttfb: %s: %s\n",
			    ph_err_name(m->u.error.code), m->u.error.message);
			goto out;
		default:
			fprintf(stderr, "ttfb: unexpected %s\n",
			    ph_message_type_name(m->type));
			goto out;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(m);
	return rc;
}
