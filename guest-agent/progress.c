/*
 * progress.c: the progress line porthole draws on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "fmt.h"
#include "progress.h"

#define PROGRESS_INTERVAL	0.1	/* seconds between redraws */
#define PROGRESS_MAX_WIDTH	512

struct progress {
	bool		 enabled;
	bool		 drawn;		/* a line is on the screen */
	char		 label[PROGRESS_MAX_WIDTH];
	uint64_t	 total;
	uint64_t	 already;
	uint64_t	 done;
	double		 started;
	double		 last_draw;
};

double
progress_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct progress *
progress_new(bool enabled)
{
	struct progress *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->enabled = enabled;
	return p;
}

void
progress_free(struct progress *p)
{
	if (p == NULL)
		return;
	progress_clear(p);
	free(p);
}

/* The terminal's width, within sane bounds. */
static size_t
progress_term_width(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == -1 || ws.ws_col < 20)
		return 80;
	if (ws.ws_col > PROGRESS_MAX_WIDTH)
		return PROGRESS_MAX_WIDTH;
	return ws.ws_col;
}

/*
 * Draws label followed by status on one line, cutting the label's front
 * so that the line fits the terminal and never wraps.
 */
static void
progress_draw(struct progress *p, const char *status)
{
	size_t width = progress_term_width() - 1, slen = strlen(status);
	size_t llen = strlen(p->label), room;
	const char *label = p->label;

	room = width > slen + 2 ? width - slen - 2 : 0;
	fputs("\r\033[K", stderr);
	if (llen > room && room > 3) {
		fputs("...", stderr);
		label += llen - (room - 3);
	} else if (llen > room)
		label = "";
	fmt_safe_str(stderr, label);
	fprintf(stderr, "  %s", status);
	fflush(stderr);
	p->drawn = true;
	p->last_draw = progress_now();
}

void
progress_start(struct progress *p, const char *label, uint64_t total,
    uint64_t already)
{
	if (p == NULL || !p->enabled)
		return;
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->total = total;
	p->already = already;
	p->done = already;
	p->started = progress_now();
	p->last_draw = 0.0;
	progress_update(p, already);
}

void
progress_update(struct progress *p, uint64_t done)
{
	char status[160], have[FMT_SIZE_LEN], total[FMT_SIZE_LEN];
	char rate[FMT_SIZE_LEN], eta[16];
	double now, elapsed, per_second;
	unsigned int percent;

	if (p == NULL || !p->enabled)
		return;
	p->done = done;
	now = progress_now();
	if (now - p->last_draw < PROGRESS_INTERVAL && done < p->total)
		return;
	elapsed = now - p->started;
	fmt_size(done, have, sizeof(have));
	fmt_size(p->total, total, sizeof(total));
	percent = p->total > 0 ?
	    (unsigned int)((double)done * 100.0 / (double)p->total) : 100;
	/* The rate counts only this transfer's bytes, not a resumed .part. */
	if (elapsed > 0.0 && done > p->already) {
		per_second = (double)(done - p->already) / elapsed;
		fmt_rate(done - p->already, elapsed, rate, sizeof(rate));
		fmt_duration((double)(p->total - done) / per_second, eta,
		    sizeof(eta));
	} else {
		snprintf(rate, sizeof(rate), "-");
		snprintf(eta, sizeof(eta), "--:--");
	}
	snprintf(status, sizeof(status), "%s / %s  %3u%%  %s  ETA %s", have,
	    total, percent, rate, eta);
	progress_draw(p, status);
}

void
progress_queued(struct progress *p, const char *label, uint32_t position)
{
	char status[64];

	if (p == NULL || !p->enabled)
		return;
	snprintf(p->label, sizeof(p->label), "%s", label);
	snprintf(status, sizeof(status), "queued, position %u", position);
	progress_draw(p, status);
}

void
progress_clear(struct progress *p)
{
	if (p == NULL || !p->enabled || !p->drawn)
		return;
	fputs("\r\033[K", stderr);
	fflush(stderr);
	p->drawn = false;
}
