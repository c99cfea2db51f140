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

/* A byte count for people: "512 B", "1.5 KiB", "3.2 GiB". */
void	fmt_size(uint64_t bytes, char *buf, size_t cap);

/* A transfer rate: "12.3 MiB/s"; "-" when seconds is not positive. */
void	fmt_rate(uint64_t bytes, double seconds, char *buf, size_t cap);

/* A duration as "M:SS" or "H:MM:SS"; "--:--" if negative or huge. */
void	fmt_duration(double seconds, char *buf, size_t cap);

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
