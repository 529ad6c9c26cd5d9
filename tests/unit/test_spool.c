/*
 * test_spool — the listing holds exactly the finished .csv regular files, in
 * creation order; files leave the spool without ever overwriting another.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "spool.h"

static char *
tmpdir(int *fd)
{
	char *dir = check_tmpdir();

	if ((*fd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) {
		perror(dir);
		exit(2);
	}
	return dir;
}

static void
rm_rf(char *dir, int fd)
{
	close(fd);
	check_rm_rf(dir);
}

static int
put(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	return close(fd) == 0 && n == (ssize_t)strlen(text) ? 0 : -1;
}

static char *
get(int dirfd, const char *name)
{
	static char buf[4096];
	int fd = openat(dirfd, name, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return buf;
}

static int
list_is(const struct spool_list *l, const char *const *want, size_t n)
{
	if (l->n != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l->names[i], want[i]) != 0)
			return 0;
	return 1;
}

static void
test_scan_takes_only_finished_regular_csv(void)
{
	static const char *const want[] = { "a.csv", "b c.csv", "z.csv" };
	static const char *const odd[] = { "dangling.csv", "dir.csv", "fifo.csv", "link.csv" };
	struct spool_list out = { 0 }, skipped = { 0 };
	int fd, ok = 1;
	char *dir = tmpdir(&fd);
	size_t ignored = 99;

	ok &= put(fd, "z.csv", "z") == 0 && put(fd, "a.csv", "a") == 0 &&
	    put(fd, "b c.csv", "b") == 0;
	ok &= put(fd, ".hidden.csv", "") == 0 && put(fd, ".events_1.csv.tmp", "") == 0;
	ok &= put(fd, "x.csv.tmp", "") == 0 && put(fd, "notes.txt", "") == 0;
	ok &= put(fd, ".csv", "") == 0 && put(fd, "csv", "") == 0 && put(fd, "upper.CSV", "") == 0;
	ok &= symlinkat("a.csv", fd, "link.csv") == 0 && symlinkat("nowhere", fd, "dangling.csv") == 0;
	ok &= mkfifoat(fd, "fifo.csv", 0600) == 0 && mkdirat(fd, "dir.csv", 0700) == 0;
	ok &= mkdirat(fd, "quarantine", 0700) == 0 && put(fd, "quarantine/q.csv", "") == 0;
	CHECK(ok, "setting up the spool");
	CHECK(spool_scan(fd, &out, &ignored) == 0, "scan: %.100s", strerror(errno));
	CHECK(list_is(&out, want, 3), "got %zu names, first '%.100s'", out.n, out.n ? out.names[0] : "");
	CHECK(ignored == 4, "ignored %zu (symlinks, FIFO, directory)", ignored);
	CHECK(spool_scan(fd, &out, NULL) == 0 && out.n == 3, "ignored may be NULL");
	CHECK(spool_scan_skipped(fd, &out, &skipped) == 0, "scan_skipped: %.100s", strerror(errno));
	CHECK(list_is(&out, want, 3), "same list from scan_skipped");
	CHECK(list_is(&skipped, odd, 4), "skipped %zu, first '%.100s'", skipped.n,
	    skipped.n ? skipped.names[0] : "");
	spool_list_free(&out);
	spool_list_free(&skipped);
	rm_rf(dir, fd);
}

static void
test_scan_order_is_creation_order(void)
{
	/* evgen's names: fixed-width UTC time first, so byte order is time order. */
	static const char *const want[] = {
		"events_20231231T235959.999999_ffffffff-0000-4000-8000-000000000000.csv",
		"events_20240101T000000.000000_00000000-0000-4000-8000-000000000000.csv",
		"events_20240101T000000.000001_00000000-0000-4000-8000-000000000000.csv",
		"events_20240101T000000.000001_00000000-0000-4000-8000-000000000001.csv",
		"events_20240101T000001.000000_aaaaaaaa-0000-4000-8000-000000000000.csv",
		"events_20240102T000000.000000_00000000-0000-4000-8000-000000000000.csv",
	};
	static const int create[] = { 4, 1, 5, 0, 3, 2 };
	struct spool_list out = { 0 };
	int fd, ok = 1;
	char *dir = tmpdir(&fd);

	for (size_t i = 0; i < 6; i++)
		ok &= put(fd, want[create[i]], "x") == 0;
	CHECK(ok, "setting up");
	CHECK(spool_scan(fd, &out, NULL) == 0 && list_is(&out, want, 6), "sorted by time");
	spool_list_free(&out);
	rm_rf(dir, fd);
}

static void
test_scan_reuses_the_list(void)
{
	struct spool_list out = { 0 };
	char name[32], **arr;
	int fd, ok = 1;
	char *dir = tmpdir(&fd);

	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "f%03d.csv", i);
		ok &= put(fd, name, "x") == 0;
	}
	CHECK(ok, "setting up");
	CHECK(spool_scan(fd, &out, NULL) == 0 && out.n == 100, "first scan %zu", out.n);
	arr = out.names;
	for (int i = 0; i < 100; i += 2) {
		snprintf(name, sizeof(name), "f%03d.csv", i);
		ok &= unlinkat(fd, name, 0) == 0;
	}
	CHECK(spool_scan(fd, &out, NULL) == 0 && out.n == 50, "second scan %zu", out.n);
	CHECK(out.names == arr, "the array was reused");
	CHECK(out.n == 50 && strcmp(out.names[0], "f001.csv") == 0 &&
	    strcmp(out.names[49], "f099.csv") == 0, "the right 50");
	/* A failing scan leaves an empty, still usable list. */
	errno = 0;
	CHECK(spool_scan(-1, &out, NULL) == -1 && errno == EBADF && out.n == 0, "bad fd");
	CHECK(spool_scan(fd, &out, NULL) == 0 && out.n == 50, "usable after a failure");
	spool_list_free(&out);
	CHECK(out.names == NULL && out.n == 0 && out.cap == 0, "freed");
	spool_list_free(&out);
	rm_rf(dir, fd);
}

/* One line: "YYYY-MM-DDTHH:MM:SS.ffffffZ <reason>\n". */
static int
reason_ok(const char *text, const char *reason)
{
	size_t n = strlen(text);

	return text != NULL && n == 28 + strlen(reason) + 1 && text[4] == '-' && text[10] == 'T' &&
	    text[19] == '.' && text[26] == 'Z' && text[27] == ' ' &&
	    strncmp(text + 28, reason, strlen(reason)) == 0 && text[n - 1] == '\n' &&
	    strchr(text, '\n') == text + n - 1;
}

static void
test_quarantine_never_overwrites(void)
{
	static const char *const names[] = { "x.csv", "x.csv.1", "x.csv.2" };
	struct stat st;
	int fd, ok = 1;
	char *dir = tmpdir(&fd), *text, content[16];

	for (int i = 0; i < 3; i++) {
		snprintf(content, sizeof(content), "v%d", i);
		ok &= put(fd, "x.csv", content) == 0;
		CHECK(spool_quarantine(fd, "x.csv", i == 1 ? "bad\nheader" : "bad header") == 0,
		    "quarantine %d: %.100s", i, strerror(errno));
	}
	CHECK(ok, "setting up");
	CHECK(faccessat(fd, "x.csv", F_OK, 0) < 0, "gone from the spool");
	CHECK(fstatat(fd, "quarantine", &st, 0) == 0 && (st.st_mode & 0777) == 0750, "mode 0750");
	for (int i = 0; i < 3; i++) {
		char path[64], want[16];
		snprintf(path, sizeof(path), "quarantine/%s", names[i]);
		snprintf(want, sizeof(want), "v%d", i);
		text = get(fd, path);
		CHECK(text != NULL && strcmp(text, want) == 0, "%.100s holds '%.100s'", path, text ? text : "");
		snprintf(path, sizeof(path), "quarantine/%s.reason", names[i]);
		text = get(fd, path);
		CHECK(text != NULL && reason_ok(text, "bad header"), "%.100s: '%.100s'", path, text ? text : "");
	}
	errno = 0;
	CHECK(spool_quarantine(fd, "x.csv", "again") == -1 && errno == ENOENT, "nothing to move");
	rm_rf(dir, fd);
}

static void
test_move_into_subdir(void)
{
	struct spool_list out = { 0 };
	int fd, ok = 1;
	char *dir = tmpdir(&fd), *text;

	ok &= put(fd, "a.csv", "1") == 0 && put(fd, "b.csv", "2") == 0;
	ok &= mkdirat(fd, "archive", 0700) == 0 && put(fd, "archive/a.csv", "old") == 0;
	CHECK(ok, "setting up");
	CHECK(spool_move(fd, "a.csv", "archive") == 0, "move: %.100s", strerror(errno));
	text = get(fd, "archive/a.csv");
	CHECK(text != NULL && strcmp(text, "old") == 0, "the old one is untouched");
	text = get(fd, "archive/a.csv.1");
	CHECK(text != NULL && strcmp(text, "1") == 0, "the new one took a.csv.1");
	CHECK(spool_scan(fd, &out, NULL) == 0 && out.n == 1 && strcmp(out.names[0], "b.csv") == 0,
	    "subdirectories are not listed");
	errno = 0;
	CHECK(spool_move(fd, "b.csv", "..") == -1 && errno == EINVAL, "subdir ..");
	CHECK(spool_move(fd, "b.csv", "x/y") == -1 && errno == EINVAL, "subdir x/y");
	CHECK(spool_move(fd, "../b.csv", "archive") == -1 && errno == EINVAL, "name ../b.csv");
	CHECK(put(fd, "file", "") == 0 && spool_move(fd, "b.csv", "file") == -1 &&
	    errno == ENOTDIR, "subdir is a file");
	CHECK(faccessat(fd, "b.csv", F_OK, 0) == 0, "failed moves leave the file");
	spool_list_free(&out);
	rm_rf(dir, fd);
}

static void
test_remove(void)
{
	int fd;
	char *dir = tmpdir(&fd);

	CHECK(put(fd, "a.csv", "1") == 0, "setting up");
	CHECK(spool_remove(fd, "a.csv") == 0 && faccessat(fd, "a.csv", F_OK, 0) < 0, "removed");
	errno = 0;
	CHECK(spool_remove(fd, "a.csv") == -1 && errno == ENOENT, "twice");
	CHECK(spool_remove(fd, "../a.csv") == -1 && errno == EINVAL, "outside the spool");
	rm_rf(dir, fd);
}

static void
test_follow_a_replaced_spool(void)
{
	char *root = check_tmpdir(), path[4096], old[4096];
	int fd, held;

	snprintf(path, sizeof(path), "%s/spool", root);
	snprintf(old, sizeof(old), "%s/spool.old", root);
	CHECK(mkdir(path, 0755) == 0, "mkdir spool");
	CHECK((fd = open(path, O_RDONLY | O_DIRECTORY)) >= 0, "open spool");
	held = fd;
	CHECK(spool_follow(path, &fd) == SPOOL_SAME && fd == held, "unchanged: kept");
	/* Moved aside and not created again: an error, the descriptor kept. */
	CHECK(rename(path, old) == 0, "rename");
	CHECK(spool_follow(path, &fd) == -1 && errno == ENOENT && fd == held, "gone");
	CHECK(mkdir(path, 0755) == 0, "mkdir again");
	CHECK(put(fd, "in_old.csv", "x\n") == 0, "a file in the old one");
	CHECK(spool_follow(path, &fd) == SPOOL_REPLACED && fd != held, "followed");
	CHECK(get(fd, "in_old.csv") == NULL, "reads the new directory");
	CHECK(spool_follow(path, &fd) == SPOOL_SAME, "then unchanged again");
	/* Removed and created again, even if the inode number comes back. */
	held = fd;
	CHECK(rmdir(path) == 0 && mkdir(path, 0755) == 0, "rmdir, mkdir");
	CHECK(spool_follow(path, &fd) == SPOOL_REPLACED && fd != held, "followed again");
	CHECK(put(fd, "new.csv", "x\n") == 0, "a file through the followed descriptor");
	snprintf(old, sizeof(old), "%s/spool/new.csv", root);
	CHECK(access(old, F_OK) == 0, "lands in the directory at the path");
	/* Not a directory any more. */
	CHECK(unlink(old) == 0 && rmdir(path) == 0 && put(AT_FDCWD, path, "") == 0,
	    "a file at the path");
	CHECK(spool_follow(path, &fd) == -1 && errno == ENOTDIR, "not a directory");
	close(fd);
	check_rm_rf(root);
}

/*
 * Issue 16, item 5: the watch says exactly what came and went since the last
 * read (the last word per name winning), and applying that to the listing
 * gives what a new listing would.
 */
static void
test_watch_gives_what_a_listing_would(void)
{
	static const char *const want_added[] = { "b.csv", "d.csv", "e.csv" };
	static const char *const want_gone[] = { "a.csv", "x.csv" };	/* x: its last word */
	static const char *const want_odd[] = { "fifo.csv" };
	static const char *const want_written[] = { "b.csv", "c.csv", "d.csv", "x.csv" };
	struct spool_list list = { 0 }, fresh = { 0 };
	struct spool_delta d = { 0 };
	int fd, wfd;
	char *dir = tmpdir(&fd);
	size_t from;

	CHECK(put(fd, "a.csv", "a") == 0 && put(fd, "c.csv", "c") == 0, "files");
	CHECK((wfd = spool_watch_open(fd)) >= 0, "watch: %s", strerror(errno));
	if (wfd < 0) {
		rm_rf(dir, fd);
		return;
	}
	CHECK(spool_scan(fd, &list, NULL) == 0 && list.n == 2, "first listing");
	CHECK(put(fd, ".e.csv.tmp", "e") == 0 && renameat(fd, ".e.csv.tmp", fd, "e.csv") == 0,
	    "published by rename");
	CHECK(put(fd, "b.csv", "b") == 0 && put(fd, "d.csv", "d") == 0, "written in place");
	CHECK(unlinkat(fd, "a.csv", 0) == 0, "a.csv leaves");
	CHECK(put(fd, "x.csv", "x") == 0 && unlinkat(fd, "x.csv", 0) == 0, "x.csv comes and goes");
	CHECK(put(fd, "c.csv", "c2") == 0, "c.csv rewritten: no change of name");
	CHECK(mkfifoat(fd, "fifo.csv", 0600) == 0 && put(fd, "ignored.txt", "i") == 0, "others");
	CHECK(spool_watch_read(wfd, fd, &d) == 0, "read: %s", strerror(errno));
	CHECK(list_is(&d.added, want_added, 3) && list_is(&d.gone, want_gone, 2) &&
	    list_is(&d.odd, want_odd, 1), "added %zu gone %zu odd %zu", d.added.n, d.gone.n,
	    d.odd.n);
	CHECK(list_is(&d.written, want_written, 4), "written %zu", d.written.n);
	from = 1;	/* "c.csv" (now index 1) and later are not known committed */
	CHECK(spool_list_apply(&list, &d, &from) == 0, "apply");
	CHECK(spool_scan(fd, &fresh, NULL) == 0 && list.n == fresh.n, "sizes %zu %zu", list.n,
	    fresh.n);
	CHECK(list_is(&list, (const char *const *)fresh.names, fresh.n), "as a new listing");
	CHECK(from == 0, "b.csv came in before the first name not committed: from %zu", from);
	CHECK(put(fd, "c.csv", "c3") == 0 && spool_watch_read(wfd, fd, &d) == 0 &&
	    d.added.n + d.gone.n + d.odd.n == 0 && list_is(&d.written, want_written + 1, 1),
	    "only c.csv written");
	CHECK(spool_list_apply(&list, &d, &from) == 0 && list.n == fresh.n, "no-op");
	close(wfd);
	spool_list_free(&list);
	spool_list_free(&fresh);
	spool_delta_free(&d);
	rm_rf(dir, fd);
}

/*
 * The spool renamed: the watch says it lost track (a listing follows).  A
 * removed spool says nothing while a descriptor holds it: following a new
 * directory at the path is the caller's business, as for every other call.
 */
static void
test_watch_lost_asks_for_a_listing(void)
{
	struct spool_delta d = { 0 };
	char *top = check_tmpdir(), dir[4096], moved[4096];
	int fd = -1, wfd;

	snprintf(dir, sizeof(dir), "%s/spool", top);
	snprintf(moved, sizeof(moved), "%s/moved", top);
	CHECK(mkdir(dir, 0700) == 0 && (fd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0, "spool");
	CHECK((wfd = spool_watch_open(fd)) >= 0, "watch");
	CHECK(rename(dir, moved) == 0, "renamed");
	CHECK(spool_watch_read(wfd, fd, &d) == 1, "renamed: list again");
	spool_delta_free(&d);
	close(wfd);
	close(fd);
	check_rm_rf(top);
}

int
main(void)
{
	RUN(test_scan_takes_only_finished_regular_csv);
	RUN(test_scan_order_is_creation_order);
	RUN(test_scan_reuses_the_list);
	RUN(test_quarantine_never_overwrites);
	RUN(test_move_into_subdir);
	RUN(test_remove);
	RUN(test_follow_a_replaced_spool);
	RUN(test_watch_gives_what_a_listing_would);
	RUN(test_watch_lost_asks_for_a_listing);
	return check_exit();
}
