/*
 * test_repo.c: lookups beneath the repository (hostd/repo.c): the real
 * path a symlink leads to, links that leave or loop, what a LIST entry
 * that is a link points at, and a FIFO renamed over a file between the
 * look and the open, which must never be opened.
 *
 * The race is made deterministic by wrapping fstat64() at link time
 * (-Wl,--wrap=fstat64): the wrapper calls the real one, and the first time
 * it describes the armed file it renames a FIFO over that file's name, so
 * the swap lands exactly between the look and the open.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "repo.h"

/* What the fstat64() wrapper is to do, and what it saw. */
static struct {
	bool	armed;		/* swap when this file is described */
	dev_t	dev;
	ino_t	ino;
	int	dirfd;		/* where "fifo" replaces "f.txt" */
	int	swaps;
	int	fifo_opens;	/* a FIFO described through a real open */
} race;

int	__real_fstat64(int fd, struct stat *st);
int	__wrap_fstat64(int fd, struct stat *st);

int
__wrap_fstat64(int fd, struct stat *st)
{
	int r = __real_fstat64(fd, st), fl;

	if (r == 0 && S_ISFIFO(st->st_mode) &&
	    (fl = fcntl(fd, F_GETFL)) >= 0 && !(fl & O_PATH))
		race.fifo_opens++;
	if (r == 0 && race.armed && st->st_dev == race.dev &&
	    st->st_ino == race.ino) {
		race.armed = false;
		if (renameat(race.dirfd, "fifo", race.dirfd, "f.txt") == 0)
			race.swaps++;
	}
	return r;
}

struct fixture {
	char		 dir[64];
	struct repo	*repo;
};

/* Writes text to path beneath the fixture's directory. */
static void
put(const struct fixture *f, const char *path, const char *text)
{
	char p[256];
	FILE *fp;

	snprintf(p, sizeof(p), "%s/%s", f->dir, path);
	assert_non_null(fp = fopen(p, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* Makes a symlink path -> target beneath the fixture's directory. */
static void
link_to(const struct fixture *f, const char *target, const char *path)
{
	char p[256];

	snprintf(p, sizeof(p), "%s/%s", f->dir, path);
	assert_int_equal(symlink(target, p), 0);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char p[256];

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_repo.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(p, sizeof(p), "%s/secret", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/secret/deep", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/pub", f->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	put(f, "secret/key.txt", "key\n");
	put(f, "pub/ok.txt", "ok\n");
	link_to(f, "secret", "alias");
	link_to(f, "../secret/key.txt", "pub/keylink");
	link_to(f, "../alias/deep/..", "pub/round");
	link_to(f, "/etc", "pub/out");
	link_to(f, "../..", "pub/up");
	link_to(f, "loop2", "pub/loop1");
	link_to(f, "loop1", "pub/loop2");
	/* A name with a control byte, which no request can carry. */
	put(f, "secret/bad\001", "bad\n");
	link_to(f, "../secret/bad\001", "pub/weird");
	assert_int_equal(repo_open(f->dir, &f->repo), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	repo_free(f->repo);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* The real path of rel, or the errno; real as returned. */
static int
real_of(struct fixture *f, const char *rel, char real[PH_MAX_PATH + 1])
{
	struct stat st;

	return repo_stat(f->repo, rel, &st, real);
}

static void
test_real_paths(void **state)
{
	struct fixture *f = *state;
	char real[PH_MAX_PATH + 1];

	assert_int_equal(real_of(f, "pub/ok.txt", real), 0);
	assert_string_equal(real, "pub/ok.txt");
	assert_int_equal(real_of(f, ".", real), 0);
	assert_string_equal(real, ".");
	assert_int_equal(real_of(f, "alias", real), 0);
	assert_string_equal(real, "secret");
	assert_int_equal(real_of(f, "alias/key.txt", real), 0);
	assert_string_equal(real, "secret/key.txt");
	assert_int_equal(real_of(f, "alias/deep", real), 0);
	assert_string_equal(real, "secret/deep");
	assert_int_equal(real_of(f, "pub/keylink", real), 0);
	assert_string_equal(real, "secret/key.txt");
	/* ".." in a target climbs from where the link really led. */
	assert_int_equal(real_of(f, "pub/round/key.txt", real), 0);
	assert_string_equal(real, "secret/key.txt");
}

static void
test_failures_say_where(void **state)
{
	struct fixture *f = *state;
	char real[PH_MAX_PATH + 1];

	assert_int_equal(real_of(f, "alias/missing", real), -ENOENT);
	assert_string_equal(real, "secret/missing");
	assert_int_equal(real_of(f, "alias/key.txt/x", real), -ENOTDIR);
	assert_string_equal(real, "secret/key.txt");
	assert_int_equal(real_of(f, "pub/out", real), -EXDEV);
	assert_int_equal(real_of(f, "pub/out/passwd", real), -EXDEV);
	assert_int_equal(real_of(f, "pub/up", real), -EXDEV);
	assert_int_equal(real_of(f, "pub/loop1", real), -ELOOP);
	assert_int_equal(real_of(f, "nothing/here", real), -ENOENT);
	/* Only names the protocol can carry end up in a real path. */
	assert_int_equal(real_of(f, "pub/weird", real), -ENOENT);
	assert_string_equal(real, "secret");
}

static void
test_open_and_list(void **state)
{
	struct fixture *f = *state;
	char real[PH_MAX_PATH + 1], target[PH_MAX_PATH + 1];
	struct ph_list_entry e;
	struct repo_dir *d;
	struct stat st;
	char buf[16];
	int fd;

	assert_int_equal(repo_open_file(f->repo, "pub/keylink", &fd, &st,
	    real), 0);
	assert_string_equal(real, "secret/key.txt");
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	assert_int_equal(repo_open_file(f->repo, "alias", &fd, &st, real),
	    -EISDIR);
	assert_int_equal(fd, -1);

	assert_int_equal(repo_dir_read(f->repo, "alias", &d, real), 0);
	assert_string_equal(real, "secret");
	repo_dir_free(d);

	assert_int_equal(repo_dir_read(f->repo, "pub", &d, real), 0);
	assert_string_equal(real, "pub");
	for (size_t i = 0; i < repo_dir_count(d); i++) {
		assert_int_equal(repo_dir_entry(d, i, &e, target), 0);
		if (strcmp(e.name, "keylink") == 0) {
			assert_string_equal(target, "secret/key.txt");
			assert_int_equal(e.ftype, PH_FT_REGULAR);
		} else if (strcmp(e.name, "ok.txt") == 0) {
			assert_string_equal(target, "");
		} else if (strcmp(e.name, "out") == 0) {
			assert_int_equal(e.ftype, PH_FT_OTHER);
		}
	}
	repo_dir_free(d);
}

/*
 * A FIFO renamed over the file after it was looked at through O_PATH:
 * the open must give the file that was looked at, never the FIFO.
 */
static void
test_fifo_swapped_in(void **state)
{
	struct fixture *f = *state;
	char p[256], buf[32];
	struct stat st;
	ssize_t n;
	int fd = -1, rc;

	put(f, "pub/f.txt", "the file\n");
	snprintf(p, sizeof(p), "%s/pub/fifo", f->dir);
	assert_int_equal(mkfifo(p, 0644), 0);
	snprintf(p, sizeof(p), "%s/pub/f.txt", f->dir);
	assert_int_equal(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/pub", f->dir);
	race.dirfd = open(p, O_RDONLY | O_DIRECTORY);
	assert_true(race.dirfd >= 0);
	race.dev = st.st_dev;
	race.ino = st.st_ino;
	race.swaps = race.fifo_opens = 0;
	race.armed = true;
	rc = repo_open_file(f->repo, "pub/f.txt", &fd, &st, NULL);
	race.armed = false;
	close(race.dirfd);
	assert_int_equal(race.swaps, 1);
	assert_int_equal(race.fifo_opens, 0);
	assert_int_equal(rc, 0);
	n = read(fd, buf, sizeof(buf));
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "the file\n", 9);
	assert_true(S_ISREG(st.st_mode));
	close(fd);
	/* The name is the FIFO's now: refused, and not opened. */
	rc = repo_open_file(f->repo, "pub/f.txt", &fd, &st, NULL);
	assert_int_equal(rc, -ENODEV);
	assert_int_equal(race.fifo_opens, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_real_paths, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failures_say_where, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_open_and_list, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_fifo_swapped_in, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
