/*
 * fmt.h: text formatting for the porthole CLI: sizes, rates, durations,
 * modes, times, and JSON strings.
 *
 * Every function writes into a caller-provided buffer and truncates rather
 * than overflow; none allocates or fails.
 */
#ifndef PORTHOLE_FMT_H
#define PORTHOLE_FMT_H

#include <stdint.h>
#include <stdio.h>

#define FMT_SIZE_LEN	32	/* enough for any fmt_size / fmt_rate text */
#define FMT_MODE_LEN	11	/* "drwxr-xr-x" plus the NUL */
#define FMT_TIME_LEN	32

/* A byte count for people: "512 B", "1.5 KiB", "3.2 GiB". */
void	fmt_size(uint64_t bytes, char *buf, size_t cap);

/* A transfer rate: "12.3 MiB/s"; "-" when seconds is not positive. */
void	fmt_rate(uint64_t bytes, double seconds, char *buf, size_t cap);

/* A duration as "M:SS" or "H:MM:SS"; "--:--" if negative or huge. */
void	fmt_duration(double seconds, char *buf, size_t cap);

/*
 * An ls-style mode string for a protocol file type (enum ph_ftype) and
 * permission bits: "-rw-r--r--", "drwxr-xr-x", "?rw-------" for others.
 */
void	fmt_mode(uint8_t ftype, uint32_t mode, char buf[FMT_MODE_LEN]);

/* Local time "YYYY-MM-DD HH:MM:SS" of a time in nanoseconds since 1970. */
void	fmt_time(int64_t mtime_ns, char *buf, size_t cap);

/* The protocol file type as a word: "file", "dir", "other". */
const char *fmt_ftype(uint8_t ftype);

/*
 * Writes s to f as a quoted JSON string: quotes, backslashes and control
 * bytes are escaped, and bytes that are not valid UTF-8 become U+FFFD, so
 * the output is valid JSON whatever s holds.
 */
void	fmt_json_str(FILE *f, const char *s);

/*
 * Writes s to f with control bytes and invalid UTF-8 shown as '?', so a
 * hostile name cannot move the cursor or change the terminal's state.
 */
void	fmt_safe_str(FILE *f, const char *s);

#endif /* PORTHOLE_FMT_H */
