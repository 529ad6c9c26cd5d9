/*
 * check.h — the unit-test harness: a test is a function; CHECK records a failure
 * with its file and line and lets the test go on; RUN prints one line per test,
 * in the shape tests/run.sh counts:
 *     PASS: name
 *     FAIL: name: file:line: condition (message)
 * and check_exit() turns any failure into a non-zero exit status.
 */
#ifndef EVPIPE_CHECK_H
#define EVPIPE_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failed_tests;
static int check_current_failed;
static char check_first_failure[512];

#define CHECK(cond, ...) do {							\
	if (!(cond)) {								\
		if (!check_current_failed) {					\
			int n_ = snprintf(check_first_failure,			\
			    sizeof(check_first_failure), "%s:%d: %s (",		\
			    __FILE__, __LINE__, #cond);				\
			if (n_ > 0 && (size_t)n_ < sizeof(check_first_failure))	\
				snprintf(check_first_failure + n_,		\
				    sizeof(check_first_failure) - (size_t)n_,	\
				    __VA_ARGS__);				\
		}								\
		check_current_failed++;						\
	}									\
} while (0)

#define RUN(fn) do {								\
	check_current_failed = 0;						\
	fn();									\
	if (check_current_failed) {						\
		check_failed_tests++;						\
		printf("FAIL: %s: %s) [%d checks failed]\n", #fn,		\
		    check_first_failure, check_current_failed);			\
	} else									\
		printf("PASS: %s\n", #fn);					\
	fflush(stdout);								\
} while (0)

/* Scratch directories for tests that need files: under $TMPDIR (the runner gives
 * each test its own) or /tmp.  check_tmpdir exits 2 if it cannot make one. */
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>

static __attribute__((unused)) char *
check_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/evpipe-unit.XXXXXX", base);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	return strdup(tmpl);
}

static int
check_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Remove dir and everything below it, and free the name check_tmpdir returned. */
static __attribute__((unused)) void
check_rm_rf(char *dir)
{
	if (nftw(dir, check_rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		perror(dir);
	free(dir);
}

static inline int
check_exit(void)
{
	return check_failed_tests ? 1 : 0;
}

#endif
