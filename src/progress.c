/* progress — see include/progress.h. */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PROGRESS_EVERY	0.25	/* seconds between draws: a terminal need not flicker */
#define PROGRESS_CLEAR	"\r\033[K"	/* back to column 0, erase to the end of the line */

int
progress_wanted(enum log_level level)
{
	const char *term = getenv("TERM");

	/* Under systemd stderr is the journal or a file: a redrawn line there is noise. */
	if (getenv("INVOCATION_ID") != NULL || getenv("JOURNAL_STREAM") != NULL)
		return 0;
	/* A "dumb" terminal (an editor's shell buffer) cannot erase a line. */
	if (term != NULL && strcmp(term, "dumb") == 0)
		return 0;
	return level >= LOG_LVL_INFO && isatty(STDERR_FILENO);
}

/* Columns of the terminal, asked at each draw so a resize is followed; 80 if unknown. */
static size_t
progress_columns(void)
{
	struct winsize ws;

	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return 80;
	return ws.ws_col;
}

/* A count in at most five characters or so: 9999, 410k, 1.5M, 2.0G. */
static void
progress_count(double n, char *out, size_t len)
{
	if (n < 10000)
		snprintf(out, len, "%.0f", n);
	else if (n < 1e6)
		snprintf(out, len, "%.0fk", n / 1e3);
	else if (n < 1e9)
		snprintf(out, len, "%.1fM", n / 1e6);
	else
		snprintf(out, len, "%.1fG", n / 1e9);
}

/* m:ss, or h:mm:ss from an hour on; "?" past 30 years (no estimate worth showing). */
static void
progress_clock(double seconds, char *out, size_t len)
{
	long s = seconds > 0 ? (long)(seconds + 0.5) : 0;

	if (!(seconds < 1e9))
		snprintf(out, len, "?");
	else if (s >= 3600)
		snprintf(out, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(out, len, "%ld:%02ld", s / 60, s % 60);
}

/*
 * A write to a terminal that went away (hung up, EIO) turns the line off: the work
 * goes on, and log messages still go to stderr as they always did.
 */
static void
progress_put(struct progress *p, const char *text)
{
	if (fputs(text, stderr) == EOF) {
		p->on = 0;
		p->shown = 0;
	}
}

/* Compose the line for the numbers now, cut to the terminal's width (less one column). */
static void
progress_compose(struct progress *p)
{
	double el = p->now - p->t0, frac = 0;
	char done[32], total[32] = "?", rate[32], elapsed[32], left[32], eta[40] = "?";
	size_t cols = progress_columns(), len = strlen(PROGRESS_CLEAR);
	const char *est = p->rows_total > 0 ? "" : "~";

	if (p->rows_total > 0)
		frac = (double)p->rows / (double)p->rows_total;
	else if (p->bytes_total > 0)
		frac = (double)p->bytes / (double)p->bytes_total;
	else if (p->files_total > 0)	/* no rows total, no bytes: files alone */
		frac = (double)p->files / (double)p->files_total;
	if (p->rows_total > 0)
		progress_count((double)p->rows_total, total, sizeof(total));
	else if (frac > 0) {
		total[0] = '~';
		progress_count((double)p->rows / (frac < 1 ? frac : 1), total + 1, sizeof(total) - 1);
	}
	progress_count((double)p->rows, done, sizeof(done));
	progress_count(el > 0 ? (double)p->rows / el : 0.0, rate, sizeof(rate));
	if (frac > 0) {
		progress_clock(frac < 1 ? el * (1 - frac) / frac : 0, left, sizeof(left));
		snprintf(eta, sizeof(eta), "%s%s", est, left);
	}
	progress_clock(el, elapsed, sizeof(elapsed));
	snprintf(p->line + len, sizeof(p->line) - len, "%s: files %lld/%lld, rows %s/%s, "
	    "%s rows/s, elapsed %s, ETA %s", p->prog, (long long)p->files,
	    (long long)p->files_total, done, total, rate, elapsed, eta);
	memcpy(p->line, PROGRESS_CLEAR, len);
	if (cols > 1 && cols - 1 < sizeof(p->line) - len)
		p->line[len + cols - 1] = '\0';
}

static void
progress_draw(struct progress *p)
{
	progress_compose(p);
	p->drawn_at = p->now;
	p->shown = 1;
	progress_put(p, p->line);
}

/* log's hook: clear the line before a message, draw it again after. */
static void
progress_around_log(void *arg, int after, enum log_level level)
{
	struct progress *p = arg;

	if (!p->on)
		return;
	if (!after) {
		if (p->shown)
			progress_put(p, PROGRESS_CLEAR);
		p->shown = 0;
	} else if (level != LOG_LVL_ERROR) {
		progress_draw(p);	/* with the numbers of the last update, drawn or not */
	}
}

void
progress_start(struct progress *p, const char *prog, int64_t files_total, int64_t rows_total,
    int64_t bytes_total, double now)
{
	memset(p, 0, sizeof(*p));
	p->on = 1;
	p->prog = prog;
	p->files_total = files_total;
	p->rows_total = rows_total;
	p->bytes_total = bytes_total;
	p->t0 = p->now = now;
	log_set_line_hook(progress_around_log, p);
	progress_draw(p);
}

void
progress_update(struct progress *p, int64_t files, int64_t rows, int64_t bytes, double now)
{
	if (!p->on)
		return;
	p->files += files;
	p->rows += rows;
	p->bytes += bytes;
	p->now = now;
	/* Files that arrived after the start are work too: the totals grow with them. */
	if (p->files > p->files_total)
		p->files_total = p->files;
	if (p->bytes > p->bytes_total)
		p->bytes_total = p->bytes;
	if (p->rows_total > 0 && p->rows > p->rows_total)
		p->rows_total = p->rows;
	if (now - p->drawn_at >= PROGRESS_EVERY)
		progress_draw(p);
}

void
progress_end(struct progress *p, double now)
{
	double el = now - p->t0;
	char sum[160];

	if (p->prog != NULL)
		log_set_line_hook(NULL, NULL);	/* started, even if a failed write turned it off */
	if (!p->on)
		return;
	snprintf(sum, sizeof(sum), PROGRESS_CLEAR "%s: %lld/%lld files, %lld rows in %.1f s "
	    "(%.0f rows/s)\n", p->prog, (long long)p->files, (long long)p->files_total,
	    (long long)p->rows, el, el > 0 ? (double)p->rows / el : 0.0);
	progress_put(p, sum);
	p->on = 0;
	p->shown = 0;
}
