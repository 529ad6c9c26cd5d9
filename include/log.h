/*
 * log — one path for every message both daemons print.
 *
 * Lines go to stderr.  Under systemd (JOURNAL_STREAM names our stderr) each line
 * carries a "<N>" priority prefix that journald turns into PRIORITY=; elsewhere it
 * starts with a UTC timestamp, the program name and the level.  The level check
 * happens before any formatting, so disabled debug logging costs a compare.
 *
 * Shape of a message: what failed, on which file/line/row, what happens next.
 * log_warn/log_err append strerror(errno) (OpenBSD's log_warn); the *x variants do not.
 * Never pass a password or a whole conninfo string.
 */
#ifndef EVPIPE_LOG_H
#define EVPIPE_LOG_H

#include <stdnoreturn.h>

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARNING, LOG_LVL_INFO, LOG_LVL_DEBUG };

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_open(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
int  log_level_parse(const char *name, enum log_level *out);
int  log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);   /* + ": strerror(errno)" */
void log_errx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_err(const char *fmt, ...) LOG_PRINTF(1, 2);    /* + ": strerror(errno)" */
noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);  /* log_errx, exit(1) */
noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);   /* log_err, exit(1) */

#endif
