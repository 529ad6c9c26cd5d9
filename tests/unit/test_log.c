/*
 * test_log — the two shapes of a message.  Outside systemd a stderr line with time,
 * program, pid and level, the structured fields left out (the words say it); with
 * JOURNAL_STREAM naming our stderr, the journal (or, where journald cannot be
 * reached, a "<N>" line); a JOURNAL_STREAM inherited by a redirected stderr is
 * ignored.  The level is checked first and errno survives every call.  The line hook
 * (a progress line's) brackets each plain line written, and only those.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

static char out_path[4096];

/* Point stderr at a fresh file; JOURNAL_STREAM as given ("match" = that file). */
static void
capture(const char *journal_stream)
{
	char v[64];
	struct stat st;
	int fd;

	fflush(stderr);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0 || fstat(STDERR_FILENO, &st) < 0) {
		perror("capture");
		exit(2);
	}
	close(fd);
	if (journal_stream == NULL)
		unsetenv("JOURNAL_STREAM");
	else if (strcmp(journal_stream, "match") == 0) {
		snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		    (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", v, 1);
	} else
		setenv("JOURNAL_STREAM", journal_stream, 1);
	log_open("evtest", LOG_LVL_INFO);
}

static const char *
captured(void)
{
	static char buf[8192];
	FILE *f;
	size_t n;

	fflush(stderr);
	if ((f = fopen(out_path, "r")) == NULL)
		return "";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
say(void)
{
	static const char *const fields[] = { "FILE=a.csv", "BATCH_ID=42", NULL };

	errno = EINTR;
	log_debug("not at info level");
	log_fields(LOG_LVL_DEBUG, 0, fields, "not at info level either");
	log_fields(LOG_LVL_WARNING, ENOENT, fields, "reading %s", "a.csv");
}

static void
test_plain_line_without_fields(void)
{
	char want[128];
	const char *s;

	capture(NULL);
	say();
	CHECK(errno == EINTR, "errno %d", errno);
	s = captured();
	snprintf(want, sizeof(want), " evtest[%ld] warning: reading a.csv: %s\n", (long)getpid(),
	    strerror(ENOENT));
	CHECK(strstr(s, want) != NULL && strchr(s, '\n') == s + strlen(s) - 1, "got '%s'", s);
	CHECK(s[4] == '-' && s[10] == 'T' && strstr(s, "Z evtest[") != NULL, "timestamp: '%s'", s);
	CHECK(strstr(s, "FILE=") == NULL && strstr(s, "BATCH_ID") == NULL, "fields: '%s'", s);
	CHECK(strstr(s, "info level") == NULL, "level checked: '%s'", s);
}

static void
test_inherited_journal_stream_is_ignored(void)
{
	const char *s;

	capture("1:2");
	say();
	s = captured();
	CHECK(strstr(s, "Z evtest[") != NULL && s[0] != '<', "plain line: '%s'", s);
	capture("garbage");
	say();
	s = captured();
	CHECK(strstr(s, "Z evtest[") != NULL && s[0] != '<', "plain line: '%s'", s);
}

static void
test_journal_stream_goes_to_the_journal(void)
{
	char want[128];
	const char *s;

	capture("match");
	say();
	CHECK(errno == EINTR, "errno %d", errno);
	s = captured();
	if (access("/run/systemd/journal/socket", F_OK) == 0) {
		/* journald took it: nothing on stderr. */
		CHECK(strcmp(s, "") == 0, "got '%s'", s);
		return;
	}
	snprintf(want, sizeof(want), "<4>reading a.csv: %s\n", strerror(ENOENT));
	CHECK(strcmp(s, want) == 0, "no journald here, so a <N> line: got '%s'", s);
}

/* A progress line's stand-in: marks where it would clear itself and be drawn again. */
static void
hook(void *arg, int after, enum log_level level)
{
	(void)arg;
	fprintf(stderr, "%s%d]", after ? "[after " : "[before ", (int)level);
}

static void
test_line_hook_brackets_each_plain_line(void)
{
	const char *s, *line;

	capture(NULL);
	log_set_line_hook(hook, NULL);
	say();
	log_errx("an error");
	s = captured();
	line = strstr(s, "[before 1]");
	CHECK(line == s && strstr(s, "reading a.csv") != NULL, "got '%s'", s);
	CHECK(strstr(s, ": No such file or directory\n[after 1][before 0]") != NULL, "got '%s'", s);
	CHECK(strlen(s) > 9 && strcmp(s + strlen(s) - 9, "[after 0]") == 0, "got '%s'", s);
	CHECK(strstr(s, "info level") == NULL && strstr(s, "[before 3]") == NULL,
	    "a message below the level calls no hook: '%s'", s);
	capture("match");	/* the journal, or a "<N>" line for it: never a terminal's */
	say();
	s = captured();
	CHECK(strstr(s, "[before") == NULL, "got '%s'", s);
	log_set_line_hook(NULL, NULL);
	capture(NULL);
	say();
	CHECK(strstr(captured(), "[before") == NULL, "removed: '%s'", captured());
}

int
main(void)
{
	const char *base = getenv("TMPDIR");
	int saved = dup(STDERR_FILENO);

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	snprintf(out_path, sizeof(out_path), "%s/test_log.%ld", base, (long)getpid());
	RUN(test_plain_line_without_fields);
	RUN(test_inherited_journal_stream_is_ignored);
	RUN(test_journal_stream_goes_to_the_journal);
	RUN(test_line_hook_brackets_each_plain_line);
	dup2(saved, STDERR_FILENO);
	unlink(out_path);
	return check_exit();
}
