/*
 * progress — one live line for long work watched on a terminal (evstream --once,
 * evgen --burst --count=N): files and rows done of the total known at start, rows/s,
 * elapsed time and ETA, redrawn in place ("\r" + ESC[K) at most four times a second
 * and never wider than the terminal.  At the end one summary line stays, with a
 * newline, so the shell prompt starts clean.
 *
 * progress_wanted decides whether there is a watcher: stderr is a terminal (not
 * "dumb"), the process is not under systemd (INVOCATION_ID or JOURNAL_STREAM set)
 * and the log level is info or debug.  Otherwise the caller never starts a line and
 * its output stays what it always was.  While a line is on, the caller leaves out
 * its per-unit info lines (the line replaces them); every other log message still
 * appears, on a line of its own: progress hooks into log (log_set_line_hook) to
 * clear the line before a message and draw it again after (not after an error,
 * which often ends the process: the next update draws it).
 *
 * The daemon loop owns time: every call takes `now`, seconds on one clock.
 */
#ifndef EVPIPE_PROGRESS_H
#define EVPIPE_PROGRESS_H

#include <stdint.h>

#include "log.h"

struct progress {
	int		 on;		/* started, and a terminal watches */
	int		 shown;		/* the line is on the screen now */
	const char	*prog;
	int64_t		 files_total, rows_total, bytes_total;	/* rows_total 0: estimate from bytes */
	int64_t		 files, rows, bytes;			/* done */
	double		 t0, now, drawn_at;
	char		 line[256];	/* what is drawn, for the redraw after a log message */
};

int	progress_wanted(enum log_level level);

/*
 * Start the line: the totals found at start.  rows_total 0 means unknown: the rows
 * total and the ETA are then estimated from bytes done of bytes_total (or, with no
 * bytes either, from files done of files_total), shown "~".
 */
void	progress_start(struct progress *p, const char *prog, int64_t files_total,
	    int64_t rows_total, int64_t bytes_total, double now);

/* Add work done; drawn again if the last draw is a quarter of a second old. */
void	progress_update(struct progress *p, int64_t files, int64_t rows, int64_t bytes, double now);

/* The summary line (files, rows, seconds, rows/s) and a newline; the line is off. */
void	progress_end(struct progress *p, double now);

#endif
