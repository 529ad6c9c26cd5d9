/* log — see include/log.h. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The location would always be this file: the caller's fields say more. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

static const char *log_prog = "evpipe";
static enum log_level log_max = LOG_LVL_INFO;
static int log_journal;		/* stderr is a journal stream: "<N>" lines */
static int log_native;		/* ... and journald's socket is there: entries with fields */
static void (*log_line_hook)(void *arg, int after, enum log_level level);
static void *log_line_arg;

/* syslog(3) priorities, which journald reads from a "<N>" prefix. */
static const struct { const char *name; int syslog_pri; } log_levels[] = {
	[LOG_LVL_ERROR]   = { "error",   3 },
	[LOG_LVL_WARNING] = { "warning", 4 },
	[LOG_LVL_INFO]    = { "info",    6 },
	[LOG_LVL_DEBUG]   = { "debug",   7 },
};

/*
 * systemd sets JOURNAL_STREAM=<device>:<inode> when it connects stderr to the journal.
 * A child whose stderr was redirected inherits the variable, so compare it with what
 * stderr really is (as systemd.exec(5) advises).
 */
static int
log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void
log_open(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_max = level;
	log_journal = log_stderr_is_journal();
	/* sd_journal_sendv drops messages silently when the socket is missing. */
	log_native = log_journal && access("/run/systemd/journal/socket", W_OK) == 0;
}

void
log_set_line_hook(void (*hook)(void *arg, int after, enum log_level level), void *arg)
{
	log_line_hook = hook;
	log_line_arg = arg;
}

int
log_enabled(enum log_level level)
{
	return level <= log_max;
}

/* One journal entry: the message, its priority, who said it, and the fields. */
static int
log_journal_send(enum log_level level, int errnum, const char *const *fields, const char *entry)
{
	struct iovec iov[4 + LOG_MAX_FIELDS];
	char pri[16], ident[64], err[32];
	int n = 0;

	snprintf(pri, sizeof(pri), "PRIORITY=%d", log_levels[level].syslog_pri);
	snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", log_prog);
	iov[n++] = (struct iovec){ (void *)entry, strlen(entry) };
	iov[n++] = (struct iovec){ pri, strlen(pri) };
	iov[n++] = (struct iovec){ ident, strlen(ident) };
	if (errnum) {
		snprintf(err, sizeof(err), "ERRNO=%d", errnum);
		iov[n++] = (struct iovec){ err, strlen(err) };
	}
	for (size_t i = 0; fields != NULL && i < LOG_MAX_FIELDS && fields[i] != NULL; i++)
		iov[n++] = (struct iovec){ (void *)fields[i], strlen(fields[i]) };
	return sd_journal_sendv(iov, n) < 0 ? -1 : 0;
}

static void
log_vemit(enum log_level level, int errnum, const char *const *fields, const char *fmt,
    va_list ap)
{
	/* "MESSAGE=" leads so the journal entry needs no copy; stderr skips it. */
	const size_t skip = sizeof("MESSAGE=") - 1;
	char entry[2048] = "MESSAGE=", head[64];
	char *msg = entry + skip;
	size_t len = sizeof(entry) - skip;
	int n = vsnprintf(msg, len, fmt, ap);

	if (n < 0)
		return;
	if (errnum && (size_t)n < len)
		snprintf(msg + n, len - (size_t)n, ": %s", strerror(errnum));
	if (log_native && log_journal_send(level, errnum, fields, entry) == 0)
		return;
	if (log_journal) {
		fprintf(stderr, "<%d>%s\n", log_levels[level].syslog_pri, msg);
		return;
	}
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_line_hook != NULL)
		log_line_hook(log_line_arg, 0, level);
	fprintf(stderr, "%s.%03ldZ %s[%ld] %s: %s\n", head, (long)(tv.tv_usec / 1000),
	    log_prog, (long)getpid(), log_levels[level].name, msg);
	if (log_line_hook != NULL)
		log_line_hook(log_line_arg, 1, level);
}

/* errnum (errno, for the %m-style calls) is read before anything can change it. */
#define LOG_BODY(level, errnum) do {			\
	va_list ap;					\
	va_start(ap, fmt);				\
	log_vfields(level, errnum, NULL, fmt, ap);	\
	va_end(ap);					\
} while (0)

void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LVL_DEBUG, 0); }
void log_info(const char *fmt, ...)  { LOG_BODY(LOG_LVL_INFO, 0); }
void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LVL_WARNING, 0); }
void log_warn(const char *fmt, ...)  { LOG_BODY(LOG_LVL_WARNING, errno); }
void log_errx(const char *fmt, ...)  { LOG_BODY(LOG_LVL_ERROR, 0); }
void log_err(const char *fmt, ...)   { LOG_BODY(LOG_LVL_ERROR, errno); }

void
log_vfields(enum log_level level, int errnum, const char *const *fields, const char *fmt,
    va_list ap)
{
	int saved_errno = errno;

	if (!log_enabled(level))
		return;
	log_vemit(level, errnum, fields, fmt, ap);
	errno = saved_errno;
}

void
log_fields(enum log_level level, int errnum, const char *const *fields, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vfields(level, errnum, fields, fmt, ap);
	va_end(ap);
}

void
fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, 0);
	exit(1);
}

void
fatal(const char *fmt, ...)
{
	LOG_BODY(LOG_LVL_ERROR, errno);
	exit(1);
}
