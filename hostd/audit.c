/*
 * audit.c: batched audit rows, retention, and the time syntax of `audit`.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit.h"
#include "log.h"
#include "state.h"

#define AUDIT_MS_PER_DAY	(86400 * INT64_C(1000))

/* A row's own copy of its strings, cut to bounds that fit every real value. */
struct audit_entry {
	int64_t		 time_ms;
	uint32_t	 cid;
	bool		 has_domain;
	bool		 has_uuid;
	uint64_t	 bytes;
	uint64_t	 ms;
	char		 peer[96];
	char		 domain[256];
	char		 uuid[40];
	char		 op[16];
	char		 path[1024];
	char		 result[24];
};

struct audit {
	struct log	*log;
	struct state	*st;
	struct audit_config cfg;
	uv_timer_t	 timer;
	bool		 timer_armed;
	bool		 closed;
	bool		 failing;	/* the last flush failed; said so */
	void		(*done)(void *);
	void		*done_arg;
	struct audit_entry *batch;	/* AUDIT_BATCH entries, made lazily */
	size_t		 n;
};

int64_t
audit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
audit_new(uv_loop_t *loop, struct log *log, struct state *st,
    const struct audit_config *cfg, struct audit **out)
{
	struct audit *a;

	*out = NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -ENOMEM;
	a->log = log;
	a->st = st;
	a->cfg = *cfg;
	uv_timer_init(loop, &a->timer);
	a->timer.data = a;
	/* The flush timer alone never keeps the loop running. */
	uv_unref((uv_handle_t *)&a->timer);
	*out = a;
	return 0;
}

bool
audit_enabled(const struct audit *a)
{
	return a != NULL && a->cfg.max_rows > 0;
}

const struct audit_config *
audit_config(const struct audit *a)
{
	return &a->cfg;
}

/* The timer fired: what waited in memory goes to the database. */
static void
audit_on_timer(uv_timer_t *t)
{
	struct audit *a = t->data;

	a->timer_armed = false;
	(void)audit_flush(a);
}

/* Copies a string or NULL into a bounded slot. */
static bool
audit_copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src != NULL ? src : "");
	return src != NULL;
}

void
audit_record(struct audit *a, const struct state_audit_row *row)
{
	struct audit_entry *e;

	if (!audit_enabled(a) || a->closed)
		return;
	if (a->batch == NULL &&
	    (a->batch = calloc(AUDIT_BATCH, sizeof(*a->batch))) == NULL) {
		log_warn(a->log, "audit: out of memory; a record is lost");
		return;
	}
	e = &a->batch[a->n++];
	e->time_ms = row->time_ms;
	e->cid = row->cid;
	e->bytes = row->bytes;
	e->ms = row->ms;
	(void)audit_copy(e->peer, sizeof(e->peer), row->peer);
	e->has_domain = audit_copy(e->domain, sizeof(e->domain), row->domain);
	e->has_uuid = audit_copy(e->uuid, sizeof(e->uuid), row->uuid);
	(void)audit_copy(e->op, sizeof(e->op), row->op);
	(void)audit_copy(e->path, sizeof(e->path), row->path);
	(void)audit_copy(e->result, sizeof(e->result), row->result);
	if (a->n == AUDIT_BATCH) {
		(void)audit_flush(a);
		return;
	}
	if (!a->timer_armed) {
		a->timer_armed = true;
		uv_timer_start(&a->timer, audit_on_timer, AUDIT_FLUSH_MS, 0);
	}
}

/* One transaction for the batch, then the retention limits. */
int
audit_flush(struct audit *a)
{
	struct state_audit_row rows[AUDIT_BATCH];
	uint64_t deleted = 0;
	int64_t before = 0;
	size_t i, n;
	int err = 0;

	if (a == NULL || !audit_enabled(a))
		return 0;
	if (a->timer_armed) {
		uv_timer_stop(&a->timer);
		a->timer_armed = false;
	}
	n = a->n;
	a->n = 0;
	for (i = 0; i < n; i++) {
		const struct audit_entry *e = &a->batch[i];

		rows[i] = (struct state_audit_row){
			.time_ms = e->time_ms,
			.cid = e->cid,
			.peer = e->peer,
			.domain = e->has_domain ? e->domain : NULL,
			.uuid = e->has_uuid ? e->uuid : NULL,
			.op = e->op,
			.path = e->path,
			.result = e->result,
			.bytes = e->bytes,
			.ms = e->ms,
		};
	}
	if (n == 0)
		return 0;
	if (a->cfg.max_days > 0)
		before = audit_now_ms() - (int64_t)a->cfg.max_days *
		    AUDIT_MS_PER_DAY;
	if ((err = state_audit_append(a->st, rows, n, a->cfg.max_rows, before,
	    &deleted)) < 0)
		goto fail;
	if (deleted > 0)
		log_debug(a->log, "audit: %zu rows written, %" PRIu64 " older "
		    "ones deleted (retention)", n, deleted);
	if (a->failing) {
		log_info(a->log, "audit: writing to the state database again");
		a->failing = false;
	}
	return 0;
fail:
	/* Kept rows would only pile up behind a broken database. */
	if (!a->failing)
		log_warn(a->log, "audit: cannot write %zu record%s to the "
		    "state database: %s; dropping them (the log lines "
		    "remain)", n, n == 1 ? "" : "s", state_errmsg(a->st));
	else
		log_debug(a->log, "audit: dropped %zu more records", n);
	a->failing = true;
	return err;
}

/* The timer is closed: the audit trail is done. */
static void
audit_on_closed(uv_handle_t *h)
{
	struct audit *a = h->data;

	if (a->done != NULL)
		a->done(a->done_arg);
}

void
audit_close(struct audit *a, void (*done)(void *), void *arg)
{
	(void)audit_flush(a);
	a->closed = true;
	a->done = done;
	a->done_arg = arg;
	uv_close((uv_handle_t *)&a->timer, audit_on_closed);
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	free(a->batch);
	free(a);
}

/* ---- Times --------------------------------------------------------- */

/* Reads exactly n digits as a number. */
static bool
audit_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* Days from 1970-01-01 to a proleptic Gregorian date. */
static int64_t
audit_days(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* True if d is a day of month m in year y. */
static bool
audit_date_ok(int y, int m, int d)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	if (m < 1 || m > 12 || d < 1)
		return false;
	return d <= mdays[m - 1] + (m == 2 && leap);
}

/* "1h", "30m": a count and a unit, that long before now. */
static int
audit_parse_relative(const char *s, int64_t now_ms, int64_t *out)
{
	unsigned long long n;
	int64_t unit;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || end[0] == '\0' || end[1] != '\0')
		return -EINVAL;
	switch (end[0]) {
	case 's': unit = 1000; break;
	case 'm': unit = 60 * 1000; break;
	case 'h': unit = 3600 * 1000; break;
	case 'd': unit = AUDIT_MS_PER_DAY; break;
	case 'w': unit = 7 * AUDIT_MS_PER_DAY; break;
	default: return -EINVAL;
	}
	/* Past 1000 years is not a time anybody kept records for. */
	if (n > (unsigned long long)(1000 * 366 * AUDIT_MS_PER_DAY / unit))
		return -EINVAL;
	*out = now_ms - (int64_t)n * unit;
	return 0;
}

int
audit_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, oh, om, sign;
	int64_t t;

	*out_ms = 0;
	if (audit_parse_relative(s, now_ms, out_ms) == 0)
		return 0;
	if (!audit_digits(&p, 4, &y) || *p++ != '-' ||
	    !audit_digits(&p, 2, &mo) || *p++ != '-' ||
	    !audit_digits(&p, 2, &d) || !audit_date_ok(y, mo, d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!audit_digits(&p, 2, &h) || *p++ != ':' ||
		    !audit_digits(&p, 2, &mi) || h > 23 || mi > 59)
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!audit_digits(&p, 2, &sec) || sec > 60)
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				int scale = 100;

				p++;
				if (!isdigit((unsigned char)*p))
					return -EINVAL;
				/* Milliseconds; further digits are dropped. */
				for (; isdigit((unsigned char)*p); p++) {
					ms += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	t = ((audit_days(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec;
	t = t * 1000 + ms;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (!audit_digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (!audit_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		/* 12:00+02:00 is 10:00 UTC. */
		t -= sign * (int64_t)(oh * 60 + om) * 60 * 1000;
	}
	if (*p != '\0')
		return -EINVAL;
	*out_ms = t;
	return 0;
}

const char *
audit_time_string(int64_t ms, char *buf, size_t cap)
{
	struct tm tm;
	time_t secs;
	int64_t frac;

	/* Floor division, so times before 1970 come out right too. */
	frac = ms % 1000;
	if (frac < 0)
		frac += 1000;
	secs = (time_t)((ms - frac) / 1000);
	if (gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, cap, "@%" PRId64, ms);
		return buf;
	}
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)frac);
	return buf;
}
