/* metrics — see include/metrics.h. */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "durable.h"
#include "util.h"

#define METRICS_READ_MAX (1 << 20)	/* a metrics file of ours is a few KiB */

const char *const metrics_outcome_names[METRICS_NOUTCOMES] = {
	[METRICS_WRITTEN] = "written",
	[METRICS_DUPLICATE] = "duplicate",
	[METRICS_LATE] = "late",
	[METRICS_INVALID] = "invalid",
	[METRICS_CONFLICT] = "conflict",
};

/* From a 5 ms trickle batch to a minute-long backfill or an outage's retries. */
const double metrics_buckets[METRICS_NBUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
};

void
metrics_init(struct metrics *m, double start_time)
{
	memset(m, 0, sizeof(*m));
	m->start_time = start_time;
}

void
metrics_free(struct metrics *m)
{
	free(m->buf);
	m->buf = NULL;
	m->len = m->cap = 0;
}

void
metrics_add_batch(struct metrics *m, const struct batch *b, double seconds, double committed_at)
{
	int64_t sent = b->n.valid - b->n.late - b->n.dup;
	size_t i;

	m->batches++;
	m->files_committed += b->nfiles;
	m->rows_read += (uint64_t)b->n.rows;
	m->rows[METRICS_WRITTEN] += (uint64_t)b->n.written;
	m->rows[METRICS_DUPLICATE] += (uint64_t)b->n.dup;
	m->rows[METRICS_LATE] += (uint64_t)b->n.late;
	m->rows[METRICS_INVALID] += (uint64_t)b->n.rejected;
	if (sent > b->n.written)	/* never below: the database cannot insert more */
		m->rows[METRICS_CONFLICT] += (uint64_t)(sent - b->n.written);
	for (i = 0; i < REJECT_NREASONS; i++)
		if (reject_is_invalid((enum reject_reason)i))
			m->invalid[i] += (uint64_t)b->n.reason[i];
	for (i = 0; i < METRICS_NBUCKETS && seconds > metrics_buckets[i]; i++)
		;
	if (i < METRICS_NBUCKETS)
		m->bucket[i]++;
	m->duration_sum += seconds;
	m->last_batch_time = committed_at;
}

void
metrics_add_quarantined(struct metrics *m)
{
	m->files_quarantined++;
}

/* --- the text format --------------------------------------------------------------- */

static int __attribute__((format(printf, 2, 3)))
metrics_printf(struct metrics *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(m->buf + m->len, m->cap - m->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < m->cap - m->len) {
			m->len += (size_t)n;
			return 0;
		}
		if (ALLOC_GROW(m->buf, m->len + (size_t)n + 1, m->cap, 8192) < 0)
			return -1;
	}
}

static int
metrics_head(struct metrics *m, const char *name, const char *type, const char *help)
{
	return metrics_printf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int
metrics_counter(struct metrics *m, const char *name, const char *help, uint64_t v)
{
	if (metrics_head(m, name, "counter", help) < 0)
		return -1;
	return metrics_printf(m, "%s %" PRIu64 "\n", name, v);
}

/* Gauges print as decimals; an unknown value is NaN, which the format allows. */
static int
metrics_gauge(struct metrics *m, const char *name, const char *help, double v)
{
	if (metrics_head(m, name, "gauge", help) < 0)
		return -1;
	if (isnan(v))
		return metrics_printf(m, "%s NaN\n", name);
	if (v == floor(v) && fabs(v) < 1e15)
		return metrics_printf(m, "%s %.0f\n", name, v);
	return metrics_printf(m, "%s %.6f\n", name, v);
}

static double
metrics_time(int64_t us)
{
	return us == EVENT_TIME_NONE ? NAN : (double)us / 1e6;
}

static int
metrics_render_rows(struct metrics *m)
{
	if (metrics_counter(m, "evpipe_rows_read_total", "Data rows read from committed files.",
	    m->rows_read) < 0 ||
	    metrics_head(m, "evpipe_rows_total", "counter", "Rows read, by outcome; the outcomes "
	    "add up to evpipe_rows_read_total.") < 0)
		return -1;
	for (int i = 0; i < METRICS_NOUTCOMES; i++)
		if (metrics_printf(m, "evpipe_rows_total{outcome=\"%s\"} %" PRIu64 "\n",
		    metrics_outcome_names[i], m->rows[i]) < 0)
			return -1;
	if (metrics_head(m, "evpipe_rows_invalid_total", "counter", "Rows that failed "
	    "validation, by reason (the first check that failed).") < 0)
		return -1;
	for (int r = REJECT_NONE + 1; r < REJECT_NREASONS; r++)
		if (reject_is_invalid((enum reject_reason)r) && metrics_printf(m, "evpipe_rows_invalid_total{reason=\"%s\"} "
		    "%" PRIu64 "\n", reject_reason_names[r], m->invalid[r]) < 0)
			return -1;
	return 0;
}

static int
metrics_render_histogram(struct metrics *m)
{
	uint64_t cum = 0;

	if (metrics_head(m, "evpipe_batch_duration_seconds", "histogram", "Time from the "
	    "trigger to the checkpoint of each committed batch (reading, COPY, commit, retries).")
	    < 0)
		return -1;
	for (int i = 0; i < METRICS_NBUCKETS; i++) {
		cum += m->bucket[i];
		if (metrics_printf(m, "evpipe_batch_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
		    metrics_buckets[i], cum) < 0)
			return -1;
	}
	return metrics_printf(m, "evpipe_batch_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
	    "evpipe_batch_duration_seconds_sum %.6f\nevpipe_batch_duration_seconds_count %" PRIu64
	    "\n", m->batches, m->duration_sum, m->batches);
}

static int
metrics_render_now(struct metrics *m, const struct metrics_now *now)
{
	if (metrics_counter(m, "evpipe_copy_bytes_total", "Bytes sent to PostgreSQL as COPY data "
	    "(a retried batch counts again).", now->copy_bytes) < 0 ||
	    metrics_counter(m, "evpipe_database_reconnects_total", "Database connections opened "
	    "after the first.", now->reconnects) < 0 ||
	    metrics_gauge(m, "evpipe_database_up", "1: the last database call succeeded; 0: "
	    "evstream is backing off after a failure (rewritten every ~10 s meanwhile).",
	    now->database_up ? 1 : 0) < 0 ||
	    metrics_gauge(m, "evpipe_database_down_since_seconds", "When the current database "
	    "outage began (Unix time; 0: up).", now->database_down_since) < 0 ||
	    metrics_gauge(m, "evpipe_files_pending", "Files in the spool not committed yet.",
	    (double)now->files_pending) < 0 ||
	    metrics_gauge(m, "evpipe_lag_seconds", "Age of the oldest pending file (0: none).",
	    now->lag_seconds) < 0 ||
	    metrics_gauge(m, "evpipe_watermark_seconds", "Events older than this (Unix time) are "
	    "late.", metrics_time(now->watermark_us)) < 0 ||
	    metrics_gauge(m, "evpipe_max_event_time_seconds", "Latest event_time committed (Unix "
	    "time).", metrics_time(now->max_event_time_us)) < 0 ||
	    metrics_gauge(m, "evpipe_dedupe_entries", "event_ids in the dedupe set.",
	    (double)now->dedupe_entries) < 0 ||
	    metrics_counter(m, "evpipe_dedupe_evicted_full_total", "event_ids the dedupe set let "
	    "go early, being full (dedupe_max_ids): a duplicate of one is caught by the "
	    "database, as conflict.", now->dedupe_evicted_full) < 0 ||
	    metrics_gauge(m, "evpipe_copy_sessions", "copy_sessions: the database sessions a "
	    "batch should go through.", (double)now->sessions_want) < 0 ||
	    metrics_gauge(m, "evpipe_copy_sessions_connected", "The sessions batches go through "
	    "now: copy_sessions, or fewer while the server admits fewer.",
	    (double)now->sessions) < 0 ||
	    metrics_gauge(m, "evpipe_last_batch_id", "Id of the last committed batch.",
	    (double)now->last_batch) < 0)
		return -1;
	return metrics_gauge(m, "evpipe_last_batch_timestamp_seconds", "When this process last "
	    "committed a batch (Unix time; 0: not yet).", m->last_batch_time);
}

int
metrics_render(struct metrics *m, const struct metrics_now *now, const char **text, size_t *len)
{
	m->len = 0;
	if (metrics_gauge(m, "evpipe_start_time_seconds", "When this evstream started (Unix "
	    "time); the counters count from then.", m->start_time) < 0 ||
	    metrics_counter(m, "evpipe_batches_total", "Micro-batches committed.", m->batches) < 0 ||
	    metrics_counter(m, "evpipe_files_committed_total", "Spool files committed.",
	    m->files_committed) < 0 ||
	    metrics_counter(m, "evpipe_files_quarantined_total", "Spool files moved to "
	    "quarantine/.", m->files_quarantined) < 0 ||
	    metrics_render_rows(m) < 0 || metrics_render_histogram(m) < 0 ||
	    metrics_render_now(m, now) < 0) {
		errno = ENOMEM;
		return -1;
	}
	*text = m->buf;
	*len = m->len;
	return 0;
}

/* --- the file ---------------------------------------------------------------------- */

int
metrics_path(const char *dir, const char *file, char *out, size_t len)
{
	int n;

	if (file[0] == '\0')
		return 1;
	n = file[0] == '/' ? snprintf(out, len, "%s", file) : snprintf(out, len, "%s/%s", dir, file);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
metrics_write(struct metrics *m, const struct metrics_now *now, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/'), *text;
	size_t len;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	} else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (slash != NULL && slash[1] == '\0') {
		errno = EISDIR;
		return -1;
	}
	if (metrics_render(m, now, &text, &len) < 0)
		return -1;
	return durable_write_file(dir, slash ? slash + 1 : path, text, len);
}

/* The value of "name value" on one line, if that line is name's sample. */
static int
metrics_match(const char *line, const char *name, double *value)
{
	size_t n = strlen(name);
	char *end;

	if (strncmp(line, name, n) != 0 || line[n] != ' ')
		return 0;
	*value = strtod(line + n + 1, &end);
	return end != line + n + 1 && (*end == '\n' || *end == '\0' || *end == ' ');
}

int
metrics_read(const char *path, size_t n, const char *const names[], double values[],
    int found[])
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0, total = 0, left = n;
	ssize_t len;

	for (size_t i = 0; i < n; i++)
		found[i] = 0;
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (left > 0 && total < METRICS_READ_MAX && (len = getline(&line, &cap, f)) > 0) {
		total += (size_t)len;
		for (size_t i = 0; i < n && line[0] != '#'; i++)
			if (!found[i] && (found[i] = metrics_match(line, names[i], &values[i])))
				left--;
	}
	free(line);
	if (ferror(f)) {
		(void)fclose(f);
		errno = EIO;
		return -1;
	}
	(void)fclose(f);	/* read-only: nothing to lose */
	return 0;
}
