/*
 * test_quarantine_requeue — the operator's file tools: quarantine/ lists its
 * files (not the .reason files) with their reasons; a file goes back into the
 * spool under the name it had, never over another file, and its reason file
 * goes; what waits is aged by mtime; the checkpoint reads without its lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "spool.h"

static void
touch(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "%s", name);
	if (fd >= 0)
		close(fd);
}

static int
exists(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void
test_requeue_name(void)
{
	char out[300];

	CHECK(spool_requeue_name("a.csv", out, sizeof(out)) == 0 && strcmp(out, "a.csv") == 0,
	    "%s", out);
	CHECK(spool_requeue_name("a.csv.3", out, sizeof(out)) == 0 && strcmp(out, "a.csv") == 0,
	    "suffix dropped: %s", out);
	CHECK(spool_requeue_name("a.csv.12", out, sizeof(out)) == 0 && strcmp(out, "a.csv") == 0,
	    "two digits: %s", out);
	CHECK(spool_requeue_name("a.csv.reason", out, sizeof(out)) < 0, "a reason file");
	CHECK(spool_requeue_name(".a.csv.tmp", out, sizeof(out)) < 0, "a temporary");
	CHECK(spool_requeue_name(".csv", out, sizeof(out)) < 0, "no stem");
	CHECK(spool_requeue_name("a.txt", out, sizeof(out)) < 0, "not csv");
	CHECK(spool_requeue_name("../a.csv", out, sizeof(out)) < 0, "a path");
	CHECK(spool_requeue_name("a.csv", out, 5) < 0, "does not fit");
}

static void
test_list_and_requeue(void)
{
	char *dir = check_tmpdir(), line[256];
	struct spool_list q = { 0 };
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	CHECK(spool_quarantine_scan(fd, &q) == 0 && q.n == 0, "no quarantine/ yet: empty");
	touch(fd, "b.csv", "header\n");
	touch(fd, "a.csv", "header\n");
	CHECK(spool_quarantine(fd, "b.csv", "bad header: no price") == 0, "quarantine b");
	CHECK(spool_quarantine(fd, "a.csv", "line 1\nsecond") == 0, "quarantine a");
	touch(fd, "a.csv", "again\n");
	CHECK(spool_quarantine(fd, "a.csv", "again") == 0, "quarantine a again");
	touch(fd, "quarantine/.hidden.tmp", "x");
	CHECK(spool_quarantine_scan(fd, &q) == 0 && q.n == 3, "three files: %zu", q.n);
	CHECK(q.n == 3 && strcmp(q.names[0], "a.csv") == 0 && strcmp(q.names[1], "a.csv.1") == 0 &&
	    strcmp(q.names[2], "b.csv") == 0, "sorted, reasons left out");
	CHECK(spool_quarantine_reason(fd, "b.csv", line, sizeof(line)) == 0 &&
	    strstr(line, "Z bad header: no price") != NULL && strchr(line, '\n') == NULL,
	    "reason: %s", line);
	CHECK(spool_quarantine_reason(fd, "a.csv", line, sizeof(line)) == 0 &&
	    strstr(line, " line 1 second") != NULL, "one line: %s", line);
	errno = 0;
	CHECK(spool_quarantine_reason(fd, "zz.csv", line, sizeof(line)) < 0 && errno == ENOENT,
	    "no reason file");

	CHECK(spool_requeue(fd, "b.csv", "b.csv") == 0, "requeue b: %s", strerror(errno));
	CHECK(exists(fd, "b.csv") && !exists(fd, "quarantine/b.csv") &&
	    !exists(fd, "quarantine/b.csv.reason"), "moved, reason gone");
	CHECK(spool_requeue(fd, "a.csv.1", "a.csv") == 0, "requeue a.csv.1 as a.csv");
	errno = 0;
	CHECK(spool_requeue(fd, "a.csv", "a.csv") < 0 && errno == EEXIST, "never over a file");
	CHECK(exists(fd, "quarantine/a.csv") && exists(fd, "quarantine/a.csv.reason"),
	    "a refused requeue leaves the file and its reason");
	spool_list_free(&q);
	close(fd);
	check_rm_rf(dir);
}

static int
committed_a(void *arg, const char *name)
{
	(void)arg;
	return strcmp(name, "a.csv") == 0;
}

static void
test_pending_oldest_by_mtime(void)
{
	char *dir = check_tmpdir();
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	struct timespec old[2] = { { 1000, 0 }, { 1000, 0 } }, older[2] = { { 500, 0 }, { 500, 0 } };
	struct spool_list l = { 0 };
	struct spool_pending p;

	touch(fd, "a.csv", "x");
	touch(fd, "b.csv", "x");
	touch(fd, "c.csv", "x");
	CHECK(utimensat(fd, "c.csv", old, 0) == 0 && utimensat(fd, "a.csv", older, 0) == 0, "utimes");
	CHECK(spool_scan(fd, &l, NULL) == 0 && l.n == 3, "scan");
	CHECK(spool_pending(fd, &l, committed_a, NULL, 1, &p) == 0, "pending");
	CHECK(p.n == 2 && p.oldest != NULL && strcmp(p.oldest, "c.csv") == 0 &&
	    p.oldest_mtime_us == 1000000000, "oldest by mtime, committed left out: %s",
	    p.oldest ? p.oldest : "(none)");
	CHECK(spool_pending(fd, &l, committed_a, NULL, 0, &p) == 0 && p.n == 2 &&
	    strcmp(p.oldest, "b.csv") == 0, "by name: the first one not committed");
	CHECK(unlinkat(fd, "c.csv", 0) == 0 && unlinkat(fd, "b.csv", 0) == 0, "unlink");
	CHECK(spool_pending(fd, &l, committed_a, NULL, 1, &p) == 0 && p.n == 0 &&
	    p.oldest == NULL, "a vanished file is not waiting");
	CHECK(spool_pending(fd, &l, committed_a, NULL, 0, &p) == 0 && p.n == 0,
	    "not by name either");
	spool_list_free(&l);
	close(fd);
	check_rm_rf(dir);
}

static void
test_ckpt_read_beside_the_lock(void)
{
	char *dir = check_tmpdir(), sub[4200], err[512] = "";
	char *names[] = { "x.csv" };
	struct ckpt *w, *r;
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/none", dir);
	r = ckpt_read(sub, err, sizeof(err));
	CHECK(r != NULL && ckpt_last_batch(r) == 0, "missing directory reads fresh: %.200s", err);
	CHECK(stat(sub, &st) < 0 && errno == ENOENT, "and is not created");
	ckpt_close(r);
	w = ckpt_open(dir, err, sizeof(err));
	CHECK(w != NULL, "open: %.200s", err);
	if (w == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(ckpt_add_batch(w, 7, names, NULL, 1, 123) == 0 && ckpt_save(w, err, sizeof(err)) == 0,
	    "save: %.200s", err);
	r = ckpt_read(dir, err, sizeof(err));
	CHECK(r != NULL && ckpt_last_batch(r) == 7 && ckpt_is_committed(r, "x.csv") &&
	    ckpt_max_event_time(r) == 123, "read while locked: %.200s", err);
	errno = 0;
	CHECK(r != NULL && ckpt_save(r, err, sizeof(err)) < 0 && errno == EROFS, "never saved");
	ckpt_close(r);
	ckpt_close(w);
	check_rm_rf(dir);
}

int
main(void)
{
	RUN(test_requeue_name);
	RUN(test_list_and_requeue);
	RUN(test_pending_oldest_by_mtime);
	RUN(test_ckpt_read_beside_the_lock);
	return check_exit();
}
