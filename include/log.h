/*
 * log — one path for every message both daemons print.
 *
 * Under systemd (JOURNAL_STREAM names the file our stderr is) every message goes to
 * the journal through its native protocol: MESSAGE=, PRIORITY=, SYSLOG_IDENTIFIER=,
 * ERRNO= and the caller's fields (log_fields), so `journalctl -p warning` and
 * `journalctl BATCH_ID=42` work; where journald's socket is missing or a send fails,
 * the line goes to stderr with a "<N>" priority prefix.  Elsewhere a line on stderr
 * starts with a UTC timestamp, the program name and the level.  The level check
 * happens before any formatting, so disabled debug logging costs a compare.
 *
 * Shape of a message: what failed, on which file/line/row, what happens next.
 * log_warn/log_err append strerror(errno) (OpenBSD's log_warn); the *x variants do not.
 * Never pass a password or a whole conninfo string.
 */
#ifndef EVPIPE_LOG_H
#define EVPIPE_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_open(const char *progname, enum log_level level);
int  log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);   /* + ": strerror(errno)" */
void log_errx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_err(const char *fmt, ...) LOG_PRINTF(1, 2);    /* + ": strerror(errno)" */
noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);  /* log_errx, exit(1) */
noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);   /* log_err, exit(1) */

/*
 * A message with structured fields: "NAME=value" strings (NAME of A-Z, 0-9 and _),
 * NULL-terminated, at most LOG_MAX_FIELDS.  In the journal each becomes a field of
 * the entry; elsewhere only the message is printed, so it must say the same in
 * words.  errnum != 0 appends ": strerror(errnum)" like log_warn.
 */
#define LOG_MAX_FIELDS 8
void log_fields(enum log_level level, int errnum, const char *const *fields, const char *fmt, ...)
    LOG_PRINTF(4, 5);
void log_vfields(enum log_level level, int errnum, const char *const *fields, const char *fmt,
    va_list ap) LOG_PRINTF(4, 0);

/*
 * A hook around each message written to stderr as a plain line (not to the journal):
 * called with after = 0 just before the line and after = 1 just after it.  A live
 * progress line on a terminal (progress.c) clears itself and is drawn again, so a
 * message never lands inside it.  One hook at a time; NULL removes it.
 */
void log_set_line_hook(void (*hook)(void *arg, int after, enum log_level level), void *arg);

#endif
