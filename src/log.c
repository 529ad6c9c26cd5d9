/* log — see include/log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "evpipe";
static enum log_level log_max = LOG_LVL_INFO;
static int log_journal;

/* syslog(3) priorities, which journald reads from a "<N>" prefix. */
static const struct { const char *name; int syslog_pri; } log_levels[] = {
	[LOG_LVL_ERROR]   = { "error",   3 },
	[LOG_LVL_WARNING] = { "warning", 4 },
	[LOG_LVL_INFO]    = { "info",    6 },
	[LOG_LVL_DEBUG]   = { "debug",   7 },
};

void
log_open(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_max = level;
	/* systemd sets JOURNAL_STREAM when stderr is connected to the journal. */
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_set_level(enum log_level level)
{
	log_max = level;
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (strcasecmp(name, log_levels[i].name) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level <= log_max;
}

static void
log_vemit(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char msg[2048], head[64];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (n < 0)
		return;
	if (errnum && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(errnum));
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", log_levels[level].syslog_pri, msg);
		return;
	}
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s\n", head, (long)(tv.tv_usec / 1000),
	    log_prog, (long)getpid(), log_levels[level].name, msg);
}

#define LOG_BODY(level, errnum) do {			\
	int saved_errno_ = errno;			\
	if (!log_enabled(level))			\
		break;					\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vemit(level, errnum, fmt, ap);		\
	va_end(ap);					\
	errno = saved_errno_;				\
} while (0)

void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LVL_DEBUG, 0); }
void log_info(const char *fmt, ...)  { LOG_BODY(LOG_LVL_INFO, 0); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LVL_WARNING, 0); }
void log_warn(const char *fmt, ...)  { LOG_BODY(LOG_LVL_WARNING, saved_errno_); }
void log_errx(const char *fmt, ...)  { LOG_BODY(LOG_LVL_ERROR, 0); }
void log_err(const char *fmt, ...)   { LOG_BODY(LOG_LVL_ERROR, saved_errno_); }

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, 0);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, saved_errno_);
	exit(1);
}
