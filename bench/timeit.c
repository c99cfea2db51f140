/*
 * timeit: wall-clock timer and peak-RSS probe for the benchmark.
 *
 * Starts COUNT copies of a command at once, waits for all of them and
 * writes one line "SECONDS MAXRSS_KIB FAILED" to RESULT (or stderr):
 * SECONDS is CLOCK_MONOTONIC from before the first fork to after the last
 * exit, MAXRSS_KIB the largest peak resident set of any copy (wait4's
 * rusage, which covers a copy's own waited-for children too), FAILED how
 * many copies did not exit 0. The copies share stdin, stdout and stderr.
 *
 * usage: timeit [-n COUNT] [-r RESULT] -- COMMAND [ARG...]
 * Exit status: 0 when every copy exited 0, else the first failure's status
 * (128 + signal for a copy killed by a signal), 125 when timeit itself fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEIT_MAX_COPIES	4096

/* Returns CLOCK_MONOTONIC in seconds. */
static double
timeit_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char *argv[])
{
	const char	*result = NULL;
	char		*end;
	FILE		*f;
	struct rusage	 ru;
	double		 t0, secs;
	long		 count = 1, i, started = 0, failed = 0, maxrss = 0;
	int		 ch, status, first = 0;
	pid_t		 pid;

	while ((ch = getopt(argc, argv, "+n:r:")) != -1) {
		switch (ch) {
		case 'n':
			errno = 0;
			count = strtol(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || count < 1 ||
			    count > TIMEIT_MAX_COPIES) {
				fprintf(stderr, "timeit: bad -n %s\n", optarg);
				return 125;
			}
			break;
		case 'r':
			result = optarg;
			break;
		default:
			goto usage;
		}
	}
	if (optind >= argc)
		goto usage;

	t0 = timeit_now();
	for (i = 0; i < count; i++) {
		if ((pid = fork()) == -1) {
			fprintf(stderr, "timeit: fork: %s\n", strerror(errno));
			failed += count - i;
			if (first == 0)
				first = 125;
			break;
		}
		if (pid == 0) {
			execvp(argv[optind], argv + optind);
			fprintf(stderr, "timeit: %s: %s\n", argv[optind],
			    strerror(errno));
			_exit(127);
		}
		started++;
	}
	while (started > 0) {
		if ((pid = wait4(-1, &status, 0, &ru)) == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "timeit: wait: %s\n", strerror(errno));
			return 125;
		}
		started--;
		if (ru.ru_maxrss > maxrss)
			maxrss = ru.ru_maxrss;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			continue;
		failed++;
		if (first == 0)
			first = WIFEXITED(status) ? WEXITSTATUS(status) :
			    128 + WTERMSIG(status);
	}
	secs = timeit_now() - t0;

	f = stderr;
	if (result != NULL && (f = fopen(result, "w")) == NULL) {
		fprintf(stderr, "timeit: %s: %s\n", result, strerror(errno));
		return 125;
	}
	fprintf(f, "%.6f %ld %ld\n", secs, maxrss, failed);
	if (f != stderr && fclose(f) != 0) {
		fprintf(stderr, "timeit: %s: %s\n", result, strerror(errno));
		return 125;
	}
	return first;
usage:
	fprintf(stderr, "usage: timeit [-n COUNT] [-r RESULT] -- COMMAND [ARG...]\n");
	return 125;
}
