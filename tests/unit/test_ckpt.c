/*
 * test_ckpt — the checkpoint remembers exactly the committed files across a
 * restart, whatever bytes their names hold; a damaged or truncated checkpoint
 * is refused whole with the line that is wrong; one evstream per directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "event.h"

static char *
slurp(const char *dir, const char *name, size_t *len)
{
	char path[4096], *buf = malloc(1 << 24);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (buf == NULL || (f = fopen(path, "rb")) == NULL) {
		free(buf);
		return NULL;
	}
	*len = fread(buf, 1, (1 << 24) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

static int
spit(const char *dir, const char *name, const char *buf, size_t len)
{
	char path[4096];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	rc = fwrite(buf, 1, len, f) == len ? 0 : -1;
	return fclose(f) == 0 ? rc : -1;
}

/* CRC-32/IEEE a bit at a time: an implementation independent of ckpt.c's. */
static uint32_t
crc32_bitwise(const char *p, size_t len)
{
	uint32_t crc = 0xffffffff;

	for (size_t i = 0; i < len; i++) {
		crc ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320 & (0 - (crc & 1)));
	}
	return ~crc;
}

/* Write body plus a correct end line that claims nfiles file lines. */
static void
spit_ckpt(const char *dir, const char *body, long nfiles)
{
	char buf[8192];
	int n = snprintf(buf, sizeof(buf), "%send %ld %08x\n", body, nfiles,
	    (unsigned)crc32_bitwise(body, strlen(body)));

	if (spit(dir, "checkpoint", buf, (size_t)n) < 0)
		perror("spit");
}

static const char *hostile[] = {
	"with space.csv", "new\nline.csv", "percent%.csv", "%41%25.csv", "tab\there\r.csv",
	"\xc3\xa9v\xc3\xa9nement-\xe6\x97\xa5\xe6\x9c\xac.csv", "end 3 00000000", "file 1 x",
	"-", "%", " ", "\n", "\x7f\x80\xff",
};
#define NHOSTILE (sizeof(hostile) / sizeof(hostile[0]))

static void
test_fresh_start_creates_the_directory(void)
{
	char *top = check_tmpdir(), dir[4096], err[512] = "", pid[32];
	struct ckpt *c;
	struct stat st;
	size_t len;
	char *lock;

	snprintf(dir, sizeof(dir), "%s/a/b/ckpt", top);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL, "%.200s", err);
	if (c == NULL) {
		check_rm_rf(top);
		return;
	}
	CHECK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0750, "mode %o", st.st_mode & 0777);
	CHECK(ckpt_last_batch(c) == 0 && ckpt_count(c) == 0, "fresh");
	CHECK(ckpt_max_event_time(c) == EVENT_TIME_NONE, "no max yet");
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	lock = slurp(dir, "lock", &len);
	CHECK(lock != NULL && strcmp(lock, pid) == 0, "lock holds our pid: '%.200s'", lock ? lock : "");
	free(lock);
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_count(c) == 0 && ckpt_last_batch(c) == 0, "reopen: %.200s", err);
	ckpt_close(c);
	check_rm_rf(top);
}

static void
test_format_is_the_documented_one(void)
{
	static const char golden[] =
	    "evpipe-checkpoint 2\nlast_batch 2\nmax_event_time 1700000000000000\n"
	    "last_name a%20b.csv\nfile 1 a%20b.csv\nfile 2 100%25.csv\n"
	    "end 2 fc0ff621\n";	/* python3 zlib.crc32 */
	char *dir = check_tmpdir(), *other = check_tmpdir(), err[512] = "", *got;
	char *b1[] = { "a b.csv" }, *b2[] = { "100%.csv" };
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	size_t len = 0;

	CHECK(c != NULL, "%.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		check_rm_rf(other);
		return;
	}
	CHECK(ckpt_add_batch(c, 1, b1, NULL, 1, 1700000000000000) == 0, "add 1");
	CHECK(ckpt_add_batch(c, 2, b2, NULL, 1, 5) == 0, "add 2: the max does not go back");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	got = slurp(dir, "checkpoint", &len);
	CHECK(got != NULL && strcmp(got, golden) == 0, "written:\n%.200s", got ? got : "(none)");
	free(got);
	/* The same bytes written by someone else (zlib's crc) load. */
	CHECK(spit(other, "checkpoint", golden, strlen(golden)) == 0, "write golden");
	c = ckpt_open(other, err, sizeof(err));
	CHECK(c != NULL, "golden: %.200s", err);
	if (c != NULL) {
		CHECK(ckpt_is_committed(c, "a b.csv") && ckpt_is_committed(c, "100%.csv"), "names");
		CHECK(ckpt_max_event_time(c) == 1700000000000000, "max");
		ckpt_close(c);
	}
	check_rm_rf(dir);
	check_rm_rf(other);
}

/* Every byte but NUL and '/', and the longest name a directory can hold. */
static void
make_extreme_names(char all[256], char longest[256])
{
	size_t k = 0;

	for (int b = 1; b < 256; b++)
		if (b != '/')
			all[k++] = (char)b;
	all[k] = '\0';
	memset(longest, 'x', 251);
	memcpy(longest + 251, ".csv", 5);
}

static void
test_round_trip_hostile_names(void)
{
	char *dir = check_tmpdir(), err[512] = "", all[256], longest[256];
	char *b3[] = { all, longest };
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	int missing = 0;

	make_extreme_names(all, longest);
	CHECK(c != NULL, "%.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(strlen(all) == 254 && strlen(longest) == 255, "test names");
	CHECK(ckpt_add_batch(c, 1, (char *const *)hostile, NULL, 6, -5) == 0, "batch 1");
	CHECK(ckpt_add_batch(c, 7, (char *const *)hostile + 6, NULL, NHOSTILE - 6, 42) == 0, "batch 7");
	CHECK(ckpt_add_batch(c, 9, b3, NULL, 2, EVENT_TIME_NONE) == 0, "batch 9");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL, "reload: %.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	for (size_t i = 0; i < NHOSTILE; i++)
		missing += !ckpt_is_committed(c, hostile[i]);
	CHECK(missing == 0, "%d hostile names lost", missing);
	CHECK(ckpt_is_committed(c, all) && ckpt_is_committed(c, longest), "extreme names lost");
	CHECK(!ckpt_is_committed(c, "with space") && !ckpt_is_committed(c, "new"), "no prefixes");
	CHECK(ckpt_count(c) == NHOSTILE + 2, "count %zu", ckpt_count(c));
	CHECK(ckpt_last_batch(c) == 9 && ckpt_max_event_time(c) == 42, "last 9, max 42");
	/* Batch ids survived too: dropping after 1 keeps exactly batch 1's names. */
	CHECK(ckpt_drop_after(c, 1) == 0, "drop");
	CHECK(ckpt_count(c) == 6 && ckpt_is_committed(c, hostile[5]) &&
	    !ckpt_is_committed(c, hostile[6]), "batch ids after reload");
	ckpt_close(c);
	check_rm_rf(dir);
}

/* A checkpoint of a few hostile names, as bytes, for the damage tests. */
static char *
sample_checkpoint(const char *dir, size_t *len)
{
	char err[512];
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	int rc;

	if (c == NULL)
		return NULL;
	rc = ckpt_add_batch(c, 3, (char *const *)hostile, NULL, 3, 1234567) |
	    ckpt_add_batch(c, 4, (char *const *)hostile + 3, NULL, 3, 2345678) |
	    ckpt_save(c, err, sizeof(err));
	ckpt_close(c);
	return rc == 0 ? slurp(dir, "checkpoint", len) : NULL;
}

static void
test_truncated_at_every_offset(void)
{
	char *dir = check_tmpdir(), err[512], *good;
	size_t len = 0, partial = 0, silent = 0, loaded = 0;
	struct ckpt *c;

	good = sample_checkpoint(dir, &len);
	CHECK(good != NULL && len > 100, "sample");
	if (good == NULL) {
		check_rm_rf(dir);
		return;
	}
	for (size_t off = 0; off <= len; off++) {
		if (spit(dir, "checkpoint", good, off) < 0)
			break;
		err[0] = '\0';
		errno = 0;
		c = ckpt_open(dir, err, sizeof(err));
		if (c != NULL) {
			loaded++;
			partial += off < len;
			CHECK(ckpt_count(c) == 6 && ckpt_last_batch(c) == 4, "complete file loads whole");
			ckpt_close(c);
		} else
			silent += strstr(err, ": line ") == NULL || errno != EBADMSG;
	}
	CHECK(partial == 0, "%zu truncated files accepted", partial);
	CHECK(loaded == 1, "the complete file loaded %zu times", loaded);
	CHECK(silent == 0, "%zu refusals without a line number", silent);
	free(good);
	check_rm_rf(dir);
}

static void
test_flipped_bytes_detected(void)
{
	static const unsigned char masks[] = { 1, 2, 4, 8, 16, 32, 64, 128, 0xff };
	char *dir = check_tmpdir(), err[512], *good, *bad;
	size_t len = 0, accepted = 0, tries = 0;
	struct ckpt *c;

	good = sample_checkpoint(dir, &len);
	CHECK(good != NULL, "sample");
	if (good == NULL || (bad = malloc(len)) == NULL) {
		check_rm_rf(dir);
		return;
	}
	for (size_t off = 0; off < len; off++)
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(bad, good, len);
			bad[off] = (char)(bad[off] ^ masks[m]);
			if (spit(dir, "checkpoint", bad, len) < 0)
				continue;
			tries++;
			if ((c = ckpt_open(dir, err, sizeof(err))) != NULL) {
				if (accepted++ == 0)
					fprintf(stderr, "# accepted a flip at %zu ^ %02x\n", off, masks[m]);
				ckpt_close(c);
			}
		}
	CHECK(accepted == 0, "%zu of %zu damaged files accepted", accepted, tries);
	free(bad);
	free(good);
	check_rm_rf(dir);
}

static void
test_bad_files_say_what_and_where(void)
{
	static const struct { const char *body; long nfiles; const char *want; } cases[] = {
		{ "evpipe-checkpoint 3\nlast_batch 0\nmax_event_time none\n", 0,
		    "line 1: unsupported version '3' (this evstream reads versions 1 to 2)" },
		{ "evpipe-checkpoint 2\nlast_batch 1\nmax_event_time 7\nfile 1 a.csv\n", 1,
		    "line 4: 'a.csv' sorts after last_name" },
		{ "evpipe-checkpoint 2\nlast_batch 1\nmax_event_time 7\nlast_name a.csv\n"
		    "file 1 b.csv\n", 1, "line 5: 'b.csv' sorts after last_name" },
		{ "evpipe-checkpoint 2\nlast_batch 1\nmax_event_time 7\nlast_name b.csv\n"
		    "file 1 5 6 7 0 a.csv\n", 1, "line 5: expected '<size> <mtime ns> <dev> <ino>'" },
		{ "evpipe-checkpoint 2\nlast_batch 1\nmax_event_time 7\nlast_name b.csv\n"
		    "file 1 -5 6 7 8 a.csv\n", 1, "line 5: expected '<size> <mtime ns> <dev> <ino>'" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1 5 6 7 8 a.csv\n", 1,
		    "line 4: expected 'file <batch id> <name>'" },
		{ "evpipe-checkpoint 1\nlast_batch 01\nmax_event_time none\n", 0,
		    "line 2: expected 'last_batch" },
		{ "evpipe-checkpoint 1\nlast_batch 1\n", 0, "line 3: expected 'max_event_time" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time none\n", 1,
		    "line 4: the end line counts 1 file lines, there are 0" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time none\nfile 2 a.csv\n", 1,
		    "line 4: batch id '2' is not in 1..last_batch (1)" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1 a.csv\nfile 1 a.csv\n",
		    2, "line 5: 'a.csv' is listed twice" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1 %41.csv\n", 1,
		    "line 4: '%41.csv' is not a percent-escaped file name" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1 a%2fb\n", 1,
		    "line 4: 'a%2fb' is not a percent-escaped" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1 a%2Fb\n", 1,
		    "line 4: 'a%2Fb' is not a percent-escaped" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1  a\n", 1,
		    "line 4: expected 'file <batch id> <name>'" },
		{ "evpipe-checkpoint 1\nlast_batch 1\nmax_event_time 7\nfile 1 a\r\n", 1,
		    "line 4: 'a\r' is not" },
	};
	char *dir = check_tmpdir(), err[512];
	struct ckpt *c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		spit_ckpt(dir, cases[i].body, cases[i].nfiles);
		err[0] = '\0';
		c = ckpt_open(dir, err, sizeof(err));
		CHECK(c == NULL && strstr(err, cases[i].want) != NULL,
		    "case %zu: got '%.200s', want '%.200s'", i, err, cases[i].want);
		ckpt_close(c);
	}
	CHECK(spit(dir, "checkpoint", "", 0) == 0, "empty");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c == NULL && strstr(err, "line 1: the file is empty") != NULL, "empty: '%.200s'", err);
	ckpt_close(c);
	CHECK(spit(dir, "checkpoint", "hello\n", 6) == 0, "garbage");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c == NULL && strstr(err, "line 1: the last line is not 'end") != NULL, "'%.200s'", err);
	ckpt_close(c);
	check_rm_rf(dir);
}

static void
test_lock_refuses_a_second_open(void)
{
	char *dir = check_tmpdir(), err[512] = "", want[4300], other[4200];
	struct ckpt *c1 = ckpt_open(dir, err, sizeof(err)), *c2;
	int status = -1;
	pid_t pid;

	CHECK(c1 != NULL, "%.200s", err);
	snprintf(want, sizeof(want), "checkpoint %s is locked by another evstream (pid %ld)", dir,
	    (long)getpid());
	/* Same process, a second open file description: flock says no as well. */
	errno = 0;
	c2 = ckpt_open(dir, err, sizeof(err));
	CHECK(c2 == NULL && errno == EWOULDBLOCK, "second open in the same process");
	CHECK(strcmp(err, want) == 0, "message '%.200s'", err);
	ckpt_close(c2);
	snprintf(other, sizeof(other), "%s/./", dir);
	c2 = ckpt_open(other, err, sizeof(err));
	CHECK(c2 == NULL && strstr(err, "locked by another evstream") != NULL, "other spelling");
	ckpt_close(c2);
	/* Another process, as a second evstream would be. */
	fflush(stdout);
	if ((pid = fork()) == 0) {
		c2 = ckpt_open(dir, err, sizeof(err));
		_exit(c2 == NULL && strstr(err, want + strlen(dir) + 11) != NULL ? 0 : 1);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && status == 0, "child: %d", status);
	ckpt_close(c1);
	c2 = ckpt_open(dir, err, sizeof(err));
	CHECK(c2 != NULL, "free again after close: %.200s", err);
	ckpt_close(c2);
	check_rm_rf(dir);
}

static void
test_add_batch_rules(void)
{
	char *dir = check_tmpdir(), err[512] = "", toolong[300];
	char *ok[] = { "a.csv", "b.csv" }, *dup_inside[] = { "c.csv", "c.csv" };
	char *again[] = { "d.csv", "a.csv" }, *slash[] = { "x/y.csv" }, *empty[] = { "" };
	char *big[] = { toolong };
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));

	CHECK(c != NULL, "%.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	memset(toolong, 'x', 256);
	toolong[256] = '\0';
	CHECK(ckpt_add_batch(c, 5, ok, NULL, 2, 100) == 0, "first");
	errno = 0;
	CHECK(ckpt_add_batch(c, 5, ok, NULL, 0, 100) == -1 && errno == EINVAL, "same batch id");
	CHECK(ckpt_add_batch(c, 4, ok, NULL, 0, 100) == -1 && errno == EINVAL, "lower batch id");
	CHECK(ckpt_add_batch(c, 6, dup_inside, NULL, 2, 200) == -1 && errno == EEXIST, "dup inside");
	CHECK(ckpt_add_batch(c, 6, again, NULL, 2, 200) == -1 && errno == EEXIST, "already committed");
	CHECK(ckpt_add_batch(c, 6, slash, NULL, 1, 200) == -1 && errno == EINVAL, "slash");
	CHECK(ckpt_add_batch(c, 6, empty, NULL, 1, 200) == -1 && errno == EINVAL, "empty name");
	CHECK(ckpt_add_batch(c, 6, big, NULL, 1, 200) == -1 && errno == EINVAL, "256 bytes");
	/* Refused batches changed nothing. */
	CHECK(ckpt_count(c) == 2 && ckpt_last_batch(c) == 5 && ckpt_max_event_time(c) == 100,
	    "unchanged: %zu names, last %lld", ckpt_count(c), (long long)ckpt_last_batch(c));
	CHECK(!ckpt_is_committed(c, "c.csv") && !ckpt_is_committed(c, "d.csv"), "no leftovers");
	CHECK(ckpt_add_batch(c, 6, (char *[]){ "d.csv" }, NULL, 1, 50) == 0, "then fine");
	CHECK(ckpt_max_event_time(c) == 100, "max kept");
	CHECK(ckpt_add_batch(c, 7, NULL, NULL, 0, 300) == 0 && ckpt_max_event_time(c) == 300,
	    "a batch without files moves the max");
	ckpt_close(c);
	check_rm_rf(dir);
}

/* Another evstream's file, under its (earlier) batch: kept across a save, forgotten with it. */
static void
test_add_file_of_an_earlier_batch(void)
{
	char *dir = check_tmpdir(), err[512] = "";
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));

	if (c == NULL) {
		CHECK(0, "%.200s", err);
		check_rm_rf(dir);
		return;
	}
	CHECK(ckpt_add_batch(c, 3, (char *[]){ "a.csv" }, NULL, 1, 100) == 0, "batch 3");
	errno = 0;
	CHECK(ckpt_add_file(c, "x.csv", 4) == -1 && errno == EINVAL, "above the last batch");
	CHECK(ckpt_add_file(c, "x.csv", 0) == -1 && errno == EINVAL, "batch 0");
	CHECK(ckpt_add_file(c, "x/y.csv", 2) == -1 && errno == EINVAL, "not a file name");
	CHECK(ckpt_add_file(c, "a.csv", 2) == -1 && errno == EEXIST, "committed already");
	CHECK(ckpt_add_file(c, "x.csv", 2) == 0 && ckpt_is_committed(c, "x.csv"), "added");
	CHECK(ckpt_last_batch(c) == 3 && ckpt_count(c) == 2, "last batch unchanged");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_is_committed(c, "x.csv") && ckpt_count(c) == 2, "reloaded: %.200s",
	    err);
	CHECK(c != NULL && ckpt_drop_after(c, 1) == 0 && ckpt_count(c) == 0, "dropped with batch 2");
	ckpt_close(c);
	check_rm_rf(dir);
}

static void
test_drop_after(void)
{
	char *dir = check_tmpdir(), err[512] = "", n1[32], n2[32];
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	char *files[] = { n1, n2 };

	if (c == NULL) {
		CHECK(0, "%.200s", err);
		check_rm_rf(dir);
		return;
	}
	for (int b = 1; b <= 5; b++) {
		snprintf(n1, sizeof(n1), "b%d-1.csv", b);
		snprintf(n2, sizeof(n2), "b%d-2.csv", b);
		CHECK(ckpt_add_batch(c, b, files, NULL, 2, b * 1000) == 0, "batch %d", b);
	}
	errno = 0;
	CHECK(ckpt_drop_after(c, 6) == -1 && errno == EINVAL, "cannot drop ahead");
	CHECK(ckpt_drop_after(c, -1) == -1 && errno == EINVAL, "negative");
	CHECK(ckpt_drop_after(c, 5) == 0 && ckpt_count(c) == 10, "drop nothing");
	CHECK(ckpt_drop_after(c, 3) == 0, "drop 4, 5");
	CHECK(ckpt_count(c) == 6 && ckpt_last_batch(c) == 3, "count %zu", ckpt_count(c));
	CHECK(ckpt_is_committed(c, "b3-2.csv") && !ckpt_is_committed(c, "b4-1.csv") &&
	    !ckpt_is_committed(c, "b5-2.csv"), "the right ones went");
	CHECK(ckpt_max_event_time(c) == 5000, "max left to the caller");
	ckpt_set_max_event_time(c, 3000);
	/* The database will redo batch 4, possibly with other files. */
	snprintf(n1, sizeof(n1), "b4-1.csv");
	snprintf(n2, sizeof(n2), "b4-x.csv");
	CHECK(ckpt_add_batch(c, 4, files, NULL, 2, 4000) == 0, "redo batch 4");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_count(c) == 8 && ckpt_last_batch(c) == 4 &&
	    ckpt_max_event_time(c) == 4000 && ckpt_is_committed(c, "b4-x.csv"), "reloaded: %.200s", err);
	CHECK(c != NULL && ckpt_drop_after(c, 0) == 0 && ckpt_count(c) == 0 &&
	    ckpt_last_batch(c) == 0, "drop all");
	ckpt_close(c);
	check_rm_rf(dir);
}

/* Keep the names with an even number in them. */
static int
even_only(void *arg, const char *name)
{
	(*(int *)arg)++;
	return atoi(name + 1) % 2 == 0;
}

static void
test_forget(void)
{
	char *dir = check_tmpdir(), err[512] = "", names[10][24], *files[10];
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	int calls = 0, wrong = 0;

	if (c == NULL) {
		CHECK(0, "%.200s", err);
		check_rm_rf(dir);
		return;
	}
	for (int i = 0; i < 10; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d.csv", i);
		files[i] = names[i];
	}
	CHECK(ckpt_add_batch(c, 1, files, NULL, 5, 1) == 0 && ckpt_add_batch(c, 2, files + 5, NULL, 5, 2) == 0,
	    "add");
	CHECK(ckpt_forget(c, even_only, &calls) == 5, "forgot the odd ones");
	CHECK(calls == 10, "asked about each name once: %d", calls);
	CHECK(ckpt_count(c) == 5 && ckpt_last_batch(c) == 2, "last batch stays");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	if ((c = ckpt_open(dir, err, sizeof(err))) == NULL) {
		CHECK(0, "%.200s", err);
		check_rm_rf(dir);
		return;
	}
	for (int i = 0; i < 10; i++)
		wrong += ckpt_is_committed(c, names[i]) != (i % 2 == 0);
	CHECK(wrong == 0, "%d names in the wrong state", wrong);
	CHECK(ckpt_forget(c, even_only, &calls) == 0, "nothing more to forget");
	ckpt_close(c);
	check_rm_rf(dir);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
test_100k_names_save_and_load(void)
{
	enum { NB = 1000, PER = 100 };
	char *dir = check_tmpdir(), err[512] = "", names[PER][96], *files[PER];
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	double t0, tadd, tsave, tload;
	size_t len = 0, wrong = 0;
	char *text;

	if (c == NULL) {
		CHECK(0, "%.200s", err);
		check_rm_rf(dir);
		return;
	}
	t0 = now();
	for (int b = 1; b <= NB; b++) {
		for (int i = 0; i < PER; i++) {
			snprintf(names[i], sizeof(names[i]), "events_20240101T%06d.%06d_"
			    "0e6f3c1a-2b4d-4c8e-9f10-%012d.csv", b, i, b * PER + i);
			files[i] = names[i];
		}
		if (ckpt_add_batch(c, b, files, NULL, PER, b) < 0)
			wrong++;
	}
	tadd = now() - t0;
	t0 = now();
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	tsave = now() - t0;
	ckpt_close(c);
	t0 = now();
	c = ckpt_open(dir, err, sizeof(err));
	tload = now() - t0;
	CHECK(c != NULL && ckpt_count(c) == NB * PER, "reload: %.200s", err);
	for (int b = 1; c != NULL && b <= NB; b += 7)
		for (int i = 0; i < PER; i++) {
			snprintf(names[i], sizeof(names[i]), "events_20240101T%06d.%06d_"
			    "0e6f3c1a-2b4d-4c8e-9f10-%012d.csv", b, i, b * PER + i);
			wrong += !ckpt_is_committed(c, names[i]);
			names[i][5]++;
			wrong += ckpt_is_committed(c, names[i]);
		}
	CHECK(wrong == 0, "%zu wrong answers", wrong);
	text = slurp(dir, "checkpoint", &len);
	free(text);
	fprintf(stderr, "# ckpt %d names: add %.3f s, save %.3f s (%zu bytes), load %.3f s\n",
	    NB * PER, tadd, tsave, len, tload);
	CHECK(tsave < 5 && tload < 5, "too slow: save %.2f s, load %.2f s", tsave, tload);
	ckpt_close(c);
	check_rm_rf(dir);
}

static void
test_save_failure_and_stale_temporary(void)
{
	char *dir = check_tmpdir(), err[512] = "", tmp[4096], journal[4096];
	char *f[] = { "a.csv" };
	struct ckpt *c;

	snprintf(tmp, sizeof(tmp), "%s/.checkpoint.tmp", dir);
	snprintf(journal, sizeof(journal), "%s/checkpoint.journal", dir);
	/* A crash inside durable_write_file left its temporary: it must not block saves. */
	CHECK(spit(dir, ".checkpoint.tmp", "junk", 4) == 0, "stale");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL, "open with a stale temporary: %.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(ckpt_add_batch(c, 1, f, NULL, 1, 1) == 0, "add");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0 && access(tmp, F_OK) < 0,
	    "save over the stale temporary: %.200s", err);
	CHECK(ckpt_add_batch(c, 2, (char *[]){ "b.csv" }, NULL, 1, 1) == 0, "add");
	CHECK(mkdir(tmp, 0700) == 0 && mkdir(journal, 0700) == 0, "block the temporary and journal");
	errno = 0;
	CHECK(ckpt_save(c, err, sizeof(err)) == -1 && errno == EISDIR, "save fails");
	CHECK(strstr(err, "cannot write the checkpoint") != NULL, "message '%.200s'", err);
	CHECK(ckpt_is_committed(c, "b.csv") && ckpt_last_batch(c) == 2, "memory intact");
	errno = 0;
	CHECK(rmdir(journal) == 0 && ckpt_save(c, err, sizeof(err)) == -1 && errno == EISDIR,
	    "after a failed append, only the whole file is written: %.200s", err);
	CHECK(rmdir(tmp) == 0 && ckpt_save(c, err, sizeof(err)) == 0, "then saves: %.200s", err);
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_is_committed(c, "b.csv") && ckpt_last_batch(c) == 2,
	    "reloaded: %.200s", err);
	ckpt_close(c);
	check_rm_rf(dir);
}

/*
 * A version-1 checkpoint (what evstream wrote before file identities) loads:
 * its names stay committed, its greatest name stands for last_name, and the
 * next save writes version 2.
 */
static void
test_version1_still_loads(void)
{
	static const char v1[] =
	    "evpipe-checkpoint 1\nlast_batch 2\nmax_event_time 1700000000000000\n"
	    "file 1 a%20b.csv\nfile 2 100%25.csv\nend 2 cb404b0f\n";	/* python3 zlib.crc32 */
	char *dir = check_tmpdir(), err[512] = "", *got;
	struct spool_id id;
	struct ckpt *c;
	int64_t batch;
	size_t len = 0;

	CHECK(spit(dir, "checkpoint", v1, strlen(v1)) == 0, "write v1");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL, "v1 refused: %.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(ckpt_last_batch(c) == 2 && ckpt_is_committed(c, "a b.csv") &&
	    ckpt_is_committed(c, "100%.csv"), "names");
	CHECK(ckpt_file_id(c, "a b.csv", &batch, &id) == 1 && batch == 1 && id.ino == 0,
	    "identity unknown");
	CHECK(!ckpt_is_beyond(c, "a a.csv") && ckpt_is_beyond(c, "a c.csv"), "last name");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	got = slurp(dir, "checkpoint", &len);
	CHECK(got != NULL && strncmp(got, "evpipe-checkpoint 2\n", 20) == 0 &&
	    strstr(got, "\nlast_name a%20b.csv\n") != NULL, "saved as v2:\n%.300s", got ? got : "");
	free(got);
	check_rm_rf(dir);
}

static int
forget_all(void *arg, const char *name)
{
	(void)arg;
	(void)name;
	return 0;
}

/*
 * What item 6 of issue 16 needs to survive a restart: each committed file's
 * identity, and the last name committed after every name is forgotten.
 */
static void
test_identity_and_last_name_survive(void)
{
	char *dir = check_tmpdir(), err[512] = "", *got;
	char *b1[] = { "b.csv", "a.csv" }, *b2[] = { "0.csv" };
	const struct spool_id ids[] = { { 2049, 12345, 42, 1700000000123456789 },
	    { -1, INT64_MAX, 0, -5 } };
	struct spool_id id, adopt = { 7, 8, 9, 10 };
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	int64_t batch;
	size_t len;

	CHECK(c != NULL, "%.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(!ckpt_is_beyond(c, "a.csv"), "fresh: nothing is known to be new");
	CHECK(ckpt_add_batch(c, 1, b1, ids, 2, 1) == 0 && ckpt_add_batch(c, 2, b2, NULL, 1, 2) == 0,
	    "add");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	got = slurp(dir, "checkpoint", &len);
	CHECK(got != NULL && strstr(got, "\nlast_name b.csv\nfile 1 42 1700000000123456789 2049 "
	    "12345 b.csv\nfile 1 0 -5 -1 9223372036854775807 a.csv\nfile 2 0.csv\nend 3 ") != NULL,
	    "written:\n%.300s", got ? got : "");
	free(got);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL, "reopen: %.200s", err);
	if (c == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(ckpt_file_id(c, "b.csv", &batch, &id) == 1 && batch == 1 &&
	    spool_id_same(&id, &ids[0]), "b.csv identity");
	CHECK(ckpt_file_id(c, "a.csv", &batch, &id) == 1 && spool_id_same(&id, &ids[1]),
	    "a.csv identity");
	CHECK(ckpt_file_id(c, "0.csv", &batch, &id) == 1 && batch == 2 && id.ino == 0, "unknown");
	CHECK(ckpt_file_id(c, "c.csv", &batch, &id) == 0, "not committed");
	ckpt_set_file_id(c, "0.csv", &adopt);
	CHECK(ckpt_file_id(c, "0.csv", &batch, &id) == 1 && spool_id_same(&id, &adopt), "adopted");
	CHECK(ckpt_forget(c, forget_all, NULL) == 3 && ckpt_count(c) == 0, "forget all");
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && !ckpt_is_beyond(c, "a.csv") && !ckpt_is_beyond(c, "b.csv") &&
	    ckpt_is_beyond(c, "c.csv"), "last name kept with no names: %.200s", err);
	ckpt_close(c);
	check_rm_rf(dir);
}

static long
file_size(const char *dir, const char *name, struct stat *st)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, st) == 0 ? (long)st->st_size : 0;
}

/*
 * Commit `history` names in batches of 100 and save once (the whole file),
 * then 5 batches of one file each saved on its own.  Returns the journal's
 * bytes per one-file batch; checks the file itself was not written again.
 */
static long
bytes_per_batch(char *dir, long history)
{
	char err[512] = "", name[64], *f[100];
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));
	struct stat before, after;
	long j0, j1, b = 0;

	CHECK(c != NULL, "%.200s", err);
	if (c == NULL)
		return -1;
	for (long i = 0; i < history; i += 100) {
		for (int k = 0; k < 100; k++) {
			snprintf(name, sizeof(name), "events_%010ld.csv", i + k);
			f[k] = strdup(name);
		}
		b++;
		CHECK(ckpt_add_batch(c, b, f, NULL, 100, b) == 0, "history");
		for (int k = 0; k < 100; k++)
			free(f[k]);
	}
	CHECK(ckpt_save(c, err, sizeof(err)) == 0, "%.200s", err);
	file_size(dir, "checkpoint", &before);
	j0 = file_size(dir, "checkpoint.journal", &after);
	for (int k = 0; k < 5; k++) {
		const struct spool_id id = { 2049, 1000 + k, 5000, 1700000000000000000 };
		snprintf(name, sizeof(name), "events_9%09d.csv", k);
		f[0] = name;
		b++;
		CHECK(ckpt_add_batch(c, b, f, &id, 1, b) == 0 &&
		    ckpt_save(c, err, sizeof(err)) == 0, "one-file batch: %.200s", err);
	}
	j1 = file_size(dir, "checkpoint.journal", &after);
	file_size(dir, "checkpoint", &after);
	CHECK(after.st_ino == before.st_ino && after.st_size == before.st_size &&
	    after.st_mtim.tv_nsec == before.st_mtim.tv_nsec, "the file was rewritten");
	ckpt_close(c);
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_count(c) == (size_t)history + 5 && ckpt_last_batch(c) == b &&
	    ckpt_is_committed(c, "events_9000000004.csv") && ckpt_max_event_time(c) == b,
	    "reloaded from file + journal: %.200s", err);
	ckpt_close(c);
	return (j1 - j0) / 5;
}

/* Issue 16, item 5: a batch's checkpoint write does not grow with the history. */
static void
test_write_per_batch_independent_of_history(void)
{
	char *small = check_tmpdir(), *big = check_tmpdir();
	long s1 = bytes_per_batch(small, 100), s2 = bytes_per_batch(big, 100000);

	fprintf(stderr, "# journal bytes per one-file batch: %ld after 100 files, %ld after "
	    "100,000\n", s1, s2);
	/* The same but for the numbers' width: batch 6 vs 1005 (as id, in the file line, max time). */
	CHECK(s1 > 0 && s2 - s1 <= 9 && s2 < 200, "%ld vs %ld bytes", s1, s2);
	check_rm_rf(small);
	check_rm_rf(big);
}

/* Commit a.csv .. e.csv as batches 1..5 (the first saved as the file, the rest journaled). */
static void
five_journaled(const char *dir)
{
	char err[512] = "", name[8];
	struct ckpt *c = ckpt_open(dir, err, sizeof(err));

	CHECK(c != NULL, "%.200s", err);
	for (int b = 1; c != NULL && b <= 5; b++) {
		snprintf(name, sizeof(name), "%c.csv", 'a' + b - 1);
		CHECK(ckpt_add_batch(c, b, (char *[]){ name }, NULL, 1, b) == 0 &&
		    ckpt_save(c, err, sizeof(err)) == 0, "batch %d: %.200s", b, err);
	}
	ckpt_close(c);
}

/*
 * A torn last record (a crash in its append: cut short, or zeros) is taken as
 * not written; a damaged record before another is refused; records the file
 * already holds (a crash between rewriting it and removing the journal) are
 * skipped.
 */
static void
test_journal_torn_damaged_and_stale(void)
{
	char *dir = check_tmpdir(), err[512] = "", *j, *stale, zeros[4096] = { 0 };
	struct ckpt *c;
	size_t len, slen;

	five_journaled(dir);
	j = slurp(dir, "checkpoint.journal", &len);
	CHECK(j != NULL && len > 0, "journal written");
	if (j == NULL) {
		check_rm_rf(dir);
		return;
	}
	CHECK(spit(dir, "checkpoint.journal", j, len - 5) == 0, "cut");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_last_batch(c) == 4 && !ckpt_is_committed(c, "e.csv") &&
	    ckpt_is_committed(c, "d.csv"), "torn record not taken: %.200s", err);
	CHECK(c != NULL && ckpt_save(c, err, sizeof(err)) == 0 &&
	    access(strcat(strcpy(zeros, dir), "/checkpoint.journal"), F_OK) < 0,
	    "the next save rewrites the file and removes the journal: %.200s", err);
	ckpt_close(c);
	memset(zeros, 0, sizeof(zeros));
	CHECK(spit(dir, "checkpoint.journal", j, len) == 0, "journal back");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_last_batch(c) == 5 && ckpt_count(c) == 5,
	    "records the file holds are skipped: %.200s", err);
	ckpt_close(c);

	check_rm_rf(dir);
	dir = check_tmpdir();
	five_journaled(dir);
	free(j);
	j = slurp(dir, "checkpoint.journal", &len);
	stale = malloc(len + sizeof(zeros));
	memcpy(stale, j, len);
	memcpy(stale + len, zeros, sizeof(zeros));
	slen = len + sizeof(zeros);
	CHECK(spit(dir, "checkpoint.journal", stale, slen) == 0, "zeros after");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c != NULL && ckpt_last_batch(c) == 5, "zeroed tail is torn: %.200s", err);
	ckpt_close(c);
	j[10] ^= 1;	/* inside the first record, three follow it */
	CHECK(spit(dir, "checkpoint.journal", j, len) == 0, "damage");
	c = ckpt_open(dir, err, sizeof(err));
	CHECK(c == NULL && strstr(err, "/checkpoint.journal: line 3: a record ending here is "
	    "damaged") != NULL, "damage refused: '%.200s'", err);
	ckpt_close(c);
	free(stale);
	free(j);
	check_rm_rf(dir);
}

int
main(void)
{
	RUN(test_fresh_start_creates_the_directory);
	RUN(test_format_is_the_documented_one);
	RUN(test_round_trip_hostile_names);
	RUN(test_truncated_at_every_offset);
	RUN(test_flipped_bytes_detected);
	RUN(test_bad_files_say_what_and_where);
	RUN(test_version1_still_loads);
	RUN(test_identity_and_last_name_survive);
	RUN(test_write_per_batch_independent_of_history);
	RUN(test_journal_torn_damaged_and_stale);
	RUN(test_lock_refuses_a_second_open);
	RUN(test_add_batch_rules);
	RUN(test_add_file_of_an_earlier_batch);
	RUN(test_drop_after);
	RUN(test_forget);
	RUN(test_100k_names_save_and_load);
	RUN(test_save_failure_and_stale_temporary);
	return check_exit();
}
