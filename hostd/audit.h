/*
 * audit.h: the audit trail, one row per GET, STAT and LIST.
 *
 * Rows are collected in memory and appended to the state database in
 * batches, one transaction each, when AUDIT_BATCH rows are waiting or a
 * short timer fires, so a busy daemon does not sync once per request.
 * Retention (by rows and by age) is enforced on every flush. All calls run
 * on the loop thread.
 *
 * Ownership: main() creates it; the server takes it over and calls
 * audit_close() once the last connection has gone (so every request is
 * recorded), then audit_free() after uv_run() returned.
 */
#ifndef HOSTD_AUDIT_H
#define HOSTD_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct audit;
struct log;
struct state;
struct state_audit_row;

/* Rows that trigger a flush at once. */
#define AUDIT_BATCH		256
/* The longest a row waits in memory. */
#define AUDIT_FLUSH_MS		1000
/* A time as audit_time_string() writes it, with the NUL. */
#define AUDIT_TIME_STRLEN	32

struct audit_config {
	uint64_t	 max_rows;	/* newest rows kept; 0: no audit */
	uint64_t	 max_days;	/* older rows go; 0: no age limit */
};

/*
 * Creates the audit trail writing to st. log and st are borrowed and must
 * outlive it. Returns 0 and sets *out, or -ENOMEM.
 */
int	audit_new(uv_loop_t *loop, struct log *log, struct state *st,
	    const struct audit_config *cfg, struct audit **out);

/* True unless max_rows is 0. */
bool	audit_enabled(const struct audit *a);

/* The limits given to audit_new(). */
const struct audit_config *audit_config(const struct audit *a);

/*
 * Records one request (row's strings are copied, cut to their bounds).
 * Does nothing when a is NULL, disabled or closed.
 */
void	audit_record(struct audit *a, const struct state_audit_row *row);

/*
 * Writes the waiting rows now and applies the retention limits. A failure
 * is logged and the rows it concerned are dropped (counted in the log
 * line). Returns 0 or -EIO.
 */
int	audit_flush(struct audit *a);

/*
 * Flushes, stops the timer and calls done(arg) once it is closed.
 * Later records are ignored.
 */
void	audit_close(struct audit *a, void (*done)(void *), void *arg);

/* Frees it; only after the done callback of audit_close(). NULL ok. */
void	audit_free(struct audit *a);

/* Wall-clock milliseconds since 1970. */
int64_t	audit_now_ms(void);

/*
 * Parses a --since value relative to now_ms: "30s", "15m", "1h", "2d", "1w"
 * (that long ago), or an ISO 8601 date or time in UTC unless it names its
 * offset: "2024-05-01", "2024-05-01T12:30", "2024-05-01T12:30:15.250Z",
 * "2024-05-01 12:30:15+02:00". Returns 0 and sets *out_ms, or -EINVAL.
 */
int	audit_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* "2024-05-01T12:30:15.250Z" for a time in ms, into buf. Returns buf. */
const char *audit_time_string(int64_t ms, char *buf, size_t cap);

#endif /* HOSTD_AUDIT_H */
