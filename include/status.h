/*
 * status — one look at a running (or stopped) evstream, for a person or a
 * script: what waits in the spool and for how long, what the checkpoint and
 * the database say was committed, why rows were rejected, and whether all of
 * this adds up to healthy.
 *
 * Sources, read in this order so a file committed during the look is never
 * counted as pending:
 *   the spool      spool_scan, then the files the checkpoint does not list,
 *                  aged by modification time; quarantine/ counted
 *   the checkpoint ckpt_read: no lock, so the daemon may run
 *   the database   sink_summary (one read-only snapshot, 10 s timeout)
 *   the metrics    the file the daemon writes after each batch: the dedupe
 *                  set's size is known only to the daemon's memory
 *
 * Healthy means: the spool and the checkpoint can be read, the database
 * answers, no pending file is older than stall_triggers x
 * trigger_interval, and no more than reject_alarm_share of the rows read by the
 * last reject_alarm_batches batches was late or future (a producer's clock is
 * wrong, or the watermark was carried away: every row is rejected while the
 * stream looks busy).  Anything else is stalled, with one line per problem.
 */
#ifndef EVPIPE_STATUS_H
#define EVPIPE_STATUS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sink.h"

#define STATUS_MAX_PROBLEMS 4

/*
 * What evstream's subcommands (ops) need of its configuration.  Defined here,
 * not in ops.h: status reads all of it, and ops sits above status, never below.
 */
struct ops_config {
	const char	*spool_dir;
	const char	*checkpoint_dir;
	const char	*conninfo;
	const char	*db_schema;
	const char	*metrics_file;		/* as configured: relative to checkpoint_dir */
	double		 trigger_interval;
	double		 watermark_delay;
	long		 stall_triggers;	/* pending longer than this many triggers: stalled */
	double		 reject_alarm_share;	/* late or future share of recent rows: unhealthy */
	long		 reject_alarm_batches;	/* the batches that share is taken over */
};

struct status_report {
	const struct ops_config *cfg;
	double		 now;			/* this machine's clock, seconds since 1970 */
	double		 stall_after;		/* seconds */

	int		 spool_ok;
	size_t		 pending, quarantined;
	char		 oldest[NAME_MAX + 1];	/* "" when nothing is pending */
	double		 oldest_age;		/* seconds; 0 when nothing is pending */

	int		 ckpt_ok;
	int64_t		 ckpt_last_batch;
	int64_t		 ckpt_max_event_time_us;
	size_t		 ckpt_files;

	int		 db_up;
	char		 db_target[256];	/* user@host:port/dbname, no password */
	char		 db_error[512];		/* "" when up */
	struct sink_summary db;
	int64_t		 recent_rows;		/* read by the last reject_alarm_batches batches */
	int64_t		 recent_late;		/* of them, late or future */

	int64_t		 max_event_time_us;	/* the database's if it answered, else the checkpoint's */
	int64_t		 watermark_us;		/* EVENT_TIME_NONE: no event yet */

	char		 metrics_path[PATH_MAX];	/* "" when metrics_file is off */
	int		 metrics_ok;		/* the file was read */
	double		 metrics_age;		/* seconds since it was written */
	double		 dedupe_entries;	/* NaN when unknown */
	double		 sessions, sessions_want;	/* in use, and copy_sessions; NaN: unknown */

	int		 healthy;
	size_t		 nproblems;
	char		 problem[STATUS_MAX_PROBLEMS][640];
};

/* Look at everything; never fails: what could not be read becomes a problem. */
void	status_collect(const struct ops_config *c, struct status_report *r);

void	status_print_text(const struct status_report *r, FILE *out);
void	status_print_json(const struct status_report *r, FILE *out);

#endif
