/*
 * metrics — evstream's figures in the Prometheus text format (version 0.0.4),
 * published as a file for node_exporter's textfile collector.
 *
 * After each committed batch, once at start and at the end, and when the
 * database stops or starts answering (every ~10 s while it does not) evstream
 * renders every metric and writes the text with durable_write_file: a hidden ".NAME.tmp", fsync,
 * rename, directory fsync.  node_exporter reads only "*.prom" files, so it
 * never sees the temporary, and a scrape sees one whole version.  Point
 * `--collector.textfile.directory` at the file's directory; node_exporter
 * also exports the file's mtime (node_textfile_mtime_seconds), which tells a
 * stalled daemon (old file) from an idle one.
 *
 * Counters count since this process started (evpipe_start_time_seconds); a
 * restart resets them, which Prometheus' rate() and increase() expect.  The
 * totals since the beginning are in the database (evstream status shows
 * them).  Rows are counted as the database got them: a batch replayed after a
 * crash (already committed) adds nothing.
 *
 * Nothing here allocates per row; rendering reuses one buffer.
 */
#ifndef EVPIPE_METRICS_H
#define EVPIPE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

#define METRICS_NBUCKETS 13	/* batch-duration buckets, +Inf not counted */

/* What became of each row read; the outcomes add up to the rows read. */
enum metrics_outcome {
	METRICS_WRITTEN,	/* inserted into events */
	METRICS_DUPLICATE,	/* event_id already in the dedupe set: dropped */
	METRICS_LATE,		/* outside the window: a 'late' or 'future' reject */
	METRICS_INVALID,	/* failed validation: a reject with its reason */
	METRICS_CONFLICT,	/* valid, but the database already held the event_id */
	METRICS_NOUTCOMES
};
extern const char *const metrics_outcome_names[METRICS_NOUTCOMES];
extern const double metrics_buckets[METRICS_NBUCKETS];

struct metrics {
	double		 start_time;	/* seconds since 1970 */
	uint64_t	 batches, files_committed, files_quarantined, rows_read;
	uint64_t	 rows[METRICS_NOUTCOMES];
	uint64_t	 invalid[REJECT_NREASONS];	/* by reason; NONE, LATE, FUTURE stay 0 */
	uint64_t	 bucket[METRICS_NBUCKETS];	/* per bucket, not cumulative */
	double		 duration_sum;
	double		 last_batch_time;	/* seconds since 1970 of the last commit; 0: none */
	char		*buf;		/* the rendered text, reused */
	size_t		 len, cap;
	int		 failing;	/* the last write failed (logged once per streak) */
};

/* The figures only the loop knows, at the moment of writing. */
struct metrics_now {
	uint64_t	 copy_bytes;		/* sink_get_stats */
	uint64_t	 reconnects;
	int		 database_up;		/* 0: the last database call failed, backing off */
	double		 database_down_since;	/* Unix time the outage began; 0 when up */
	size_t		 files_pending;
	double		 lag_seconds;		/* age of the oldest pending file, 0 if none */
	int64_t		 watermark_us;		/* EVENT_TIME_NONE: written as NaN */
	int64_t		 max_event_time_us;	/* same */
	size_t		 dedupe_entries;
	uint64_t	 dedupe_evicted_full;	/* ids the set let go at dedupe_max_ids */
	int64_t		 last_batch;		/* the checkpoint's */
	int		 sessions;		/* the sessions batches go through now, */
	int		 sessions_want;		/* of copy_sessions */
};

void	metrics_init(struct metrics *m, double start_time);
void	metrics_free(struct metrics *m);

struct batch;
/* A committed batch: its files and rows, how long it took, when it committed (seconds). */
void	metrics_add_batch(struct metrics *m, const struct batch *b, double seconds,
	    double committed_at);
void	metrics_add_quarantined(struct metrics *m);

/* Render into m's buffer; *text stays valid until the next render.  -1: ENOMEM. */
int	metrics_render(struct metrics *m, const struct metrics_now *now, const char **text,
	    size_t *len) MUSTCHECK;

/*
 * Where the file goes: `file` as is when absolute, else under dir (the
 * checkpoint directory).  1 when file is "" (metrics off), 0 with the path,
 * -1 (ENAMETOOLONG) when it does not fit.
 */
int	metrics_path(const char *dir, const char *file, char *out, size_t len)
	    MUSTCHECK;

/* Render and write path durably.  -1 with errno; the previous file stays whole. */
int	metrics_write(struct metrics *m, const struct metrics_now *now, const char *path)
	    MUSTCHECK;

/*
 * Read samples without labels ("name value") back from a metrics file in one
 * pass, so all from the same write of it, as evstream status does for the
 * figures only the daemon knows: found[i] 1 with values[i] when the file has
 * names[i], else 0.  0, or -1 with errno (ENOENT: no file).
 */
int	metrics_read(const char *path, size_t n, const char *const names[], double values[],
	    int found[]) MUSTCHECK;

#endif
