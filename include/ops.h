/*
 * ops — the operator's subcommands of evstream, beside the daemon and with the
 * same configuration (-c FILE, --key=value):
 *
 *     evstream status [--json]           health, lag, counts; exit 0 healthy, 1 stalled
 *     evstream quarantine list           file, when, reason
 *     evstream quarantine requeue FILE   back into the spool, unless it was committed
 *
 * None of them takes the checkpoint's lock (ckpt_read), so they work while the
 * daemon runs; none of them writes the database.  Requeueing moves a file
 * into the spool exactly as evgen publishes one (one rename), and refuses a
 * name the checkpoint or evstream_batches already has: loading it would
 * duplicate its rejects and count its rows twice.
 *
 * Exit status: 0 done (status: healthy), 1 stalled, refused or failed,
 * 2 bad usage.
 */
#ifndef EVPIPE_OPS_H
#define EVPIPE_OPS_H

#define OPS_EXIT_OK	0
#define OPS_EXIT_FAIL	1
#define OPS_EXIT_USAGE	2

#define OPS_MUSTCHECK __attribute__((warn_unused_result))

/* What the subcommands need of evstream's configuration. */
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

/* 1 if word names a subcommand (the daemon then does not start). */
int	ops_is_command(const char *word);

/*
 * Take the subcommands' own flags (--json) out of argv before the config
 * parser sees them; returns 1 if --json was there.  argc is updated and
 * argv stays NULL-terminated.
 */
int	ops_take_json(int *argc, char **argv) OPS_MUSTCHECK;

/* Run words[0] with its arguments (words is NULL-terminated).  An exit status. */
int	ops_main(const struct ops_config *c, char **words, int json) OPS_MUSTCHECK;

/* Usage lines for evstream --help. */
extern const char ops_usage[];

#endif
