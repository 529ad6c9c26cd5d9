/*
 * evstream — exactly-once micro-batches from the spool into PostgreSQL.
 *
 * This file only orchestrates, in the data's order:
 *   spool_scan -> batch_read_file (csvin, validate, watermark, dedupe)
 *   -> sink_write_batch (one transaction) -> ckpt_save -> clean_source
 * and owns time (the fixed-rate trigger, backoff) and signals.
 *
 * Exactly-once rests on two facts: the batch's rows and its evstream_batches row
 * commit in one transaction, and at start the checkpoint is reconciled with
 * evstream_batches (the database wins).  So a crash anywhere — before, inside or
 * after COPY, between commit and checkpoint — replays nothing and skips nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "ckpt.h"
#include "config.h"
#include "csvin.h"
#include "dedupe.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "ops.h"
#include "progress.h"
#include "sink.h"
#include "spool.h"
#include "util.h"
#include "validate.h"

#define EXIT_CONFIG CFG_EXIT_CONFIG
#define EVSTREAM_VERIFY_PER_TRIGGER 128	/* committed files re-examined per trigger */
#define EVSTREAM_SETTLED 0.1	/* seconds: a spool ctime older than this is not moving */
#define EVSTREAM_RELIST_SECONDS 600	/* a watched spool is still listed whole this often */

enum clean_source { CLEAN_OFF, CLEAN_DELETE, CLEAN_ARCHIVE };

struct evstream_config {
	char	*spool_dir;
	char	*checkpoint_dir;
	char	*conninfo;
	char	*db_schema;
	double	 trigger_interval;
	long	 max_files_per_trigger;
	long	 copy_sessions;
	long	 dedupe_max_ids;
	double	 watermark_delay;
	int	 clean_source;
	double	 retry_max;
	int	 once;
	int	 log_level;
	char	*metrics_file;
	long	 stall_triggers;
	double	 max_future_seconds;
	double	 reject_alarm_share;
	long	 reject_alarm_batches;
};

static const char *const log_level_choices[] = { "error", "warning", "info", "debug", NULL };
static const char *const clean_choices[] = { "off", "delete", "archive", NULL };

#define K(name, type, def, min, max, help) \
	{ #name, type, offsetof(struct evstream_config, name), def, min, max, NULL, 0, help }
static const struct cfg_key evstream_keys[] = {
	K(spool_dir, CFG_STR, "/var/spool/evpipe", 0, 0, "directory evgen writes CSV files into"),
	K(checkpoint_dir, CFG_STR, "/var/lib/evpipe/checkpoint", 0, 0,
	    "directory of the checkpoint (committed files, watermark) and its lock"),
	{ "conninfo", CFG_STR, offsetof(struct evstream_config, conninfo), "", 0, 0, NULL,
	    CFG_SECRET, "libpq connection string; POSTGRES_HOST/PORT/DB/USER/PASSWORD and "
	    "PG* variables override it (put the password in the environment, not here)" },
	K(db_schema, CFG_STR, "public", 0, 0, "schema holding events, event_rejects, evstream_batches, "
	    "evstream_files, evstream_slices"),
	K(trigger_interval, CFG_DOUBLE, "10", 0.001, 86400,
	    "seconds between micro-batches (fixed rate: a late batch is followed at once)"),
	K(max_files_per_trigger, CFG_INT, "20", 0, 1000000, "files per micro-batch at most (0 = no "
	    "limit; 1 takes one file per trigger)"),
	K(copy_sessions, CFG_INT, "2", 1, 64, "database sessions a micro-batch is COPYed through "
	    "at once, each taking the events whose event_id hashes to it (1: one transaction "
	    "per batch)"),
	K(dedupe_max_ids, CFG_INT, "300000", 1000, 100000000, "event_ids the in-memory dedupe set "
	    "holds at most (~40 bytes each); past it the oldest go, and a duplicate of one of "
	    "them is dropped by the database instead (counted as conflict)"),
	K(watermark_delay, CFG_DOUBLE, "300", 0, 31536000,
	    "seconds: events older than (max event_time committed - this) are late"),
	{ "clean_source", CFG_ENUM, offsetof(struct evstream_config, clean_source), "off", 0, 0,
	    clean_choices, 0, "committed files: off (leave) | delete | archive (move to archive/)" },
	K(retry_max, CFG_DOUBLE, "30", 0.1, 3600, "longest pause, in seconds, between database retries"),
	K(metrics_file, CFG_STR, "evpipe.prom", 0, 0, "Prometheus textfile written after each "
	    "batch and every 10 s of a database outage, for node_exporter's textfile collector (relative: under checkpoint_dir; "
	    "empty = off)"),
	K(stall_triggers, CFG_INT, "6", 1, 1000000, "evstream status says stalled (exit 1) once "
	    "a pending file is older than this many trigger_intervals"),
	K(max_future_seconds, CFG_DOUBLE, "300", 0, 31536000, "seconds: events dated later than "
	    "this machine's clock + this are rejected as 'future' and never move the watermark"),
	K(reject_alarm_share, CFG_DOUBLE, "0.5", 0.01, 1, "evstream status says unhealthy (exit 1) "
	    "while more than this share of the rows read by the last reject_alarm_batches "
	    "batches was late or future"),
	K(reject_alarm_batches, CFG_INT, "10", 1, 1000000, "batches that reject_alarm_share looks at"),
	{ "once", CFG_BOOL, offsetof(struct evstream_config, once), "off", 0, 0, NULL, CFG_CLI_ONLY,
	    "process every file available now, in batches of the same size, then exit (backfill)" },
	{ "log_level", CFG_ENUM, offsetof(struct evstream_config, log_level), "info", 0, 0,
	    log_level_choices, 0, "error | warning | info (one line per batch) | debug" },
};
#undef K

static const struct cfg_table evstream_table = {
	"evstream", evstream_keys, sizeof(evstream_keys) / sizeof(evstream_keys[0])
};

struct evstream {
	struct evstream_config	 cfg;
	struct ckpt		*ckpt;
	struct sink		*sink;		/* slices[0]: slice 0, and every read */
	struct sink		*slices[SINK_MAX_SLICES];	/* one session per slice */
	int			 nslices;	/* this batch's: copy_sessions, or fewer sessions
						   while the server admits fewer */
	double			 sessions_at;	/* when to try the ones left out again */
	struct dedupe		*dd;
	struct csvin		*csv;
	int			 spool_fd;
	int			 spool_gone;	/* spool_dir cannot be opened (said once) */
	struct spool_list	 list;
	struct spool_list	 odd;		/* spool names that are not regular files */
	int			 watch;		/* inotify on the spool, -1 if none */
	struct spool_delta	 delta;		/* what the watch saw since the last trigger */
	size_t			 list_from;	/* list.names before this are committed */
	double			 relist_at;	/* when to list the whole spool again (monotonic) */
	struct batch		 b;
	size_t			*plan;		/* the batch's files: indices into list.names */
	size_t			 nplan, capplan;	/* (SIZE_MAX: dropped at an earlier try) */
	int			 merge;		/* write through the stage (ON CONFLICT) */
	int			 dedupe_stale;	/* rows read but not committed: rebuild the set */
	int			 replan;	/* a file broke mid-batch: write it again, shorter */
	int			 plan_cut;	/* the batch ends before a file that must wait */
	int			 deferred;	/* something was left for a later trigger (--once: exit 1) */
	int			 unfinished;	/* a slice after slice 0 did not commit */
	struct batch		 rb;		/* a batch read again to finish it */
	int			 redo_slice, redo_n;	/* the slice it finishes, of how many */
	int			 exit_code;	/* 1: --once could not finish */
	double			 finish_at;	/* when to try an unfinished batch again */
	int			 db_down;	/* an outage is in progress (logged once) */
	double			 db_down_since;	/* when it began (Unix time), for the metrics */
	char			 last_state[8];	/* its SQLSTATE: a new cause is logged too */
	double			 backoff;
	struct notify		 notify;	/* systemd: ready, status, watchdog */
	size_t			 pending;	/* spool files left for later batches */
	size_t			 backlog_prev;	/* pending after the trigger before */
	int			 backlog_grew;	/* triggers in a row it grew */
	size_t			 verify_at;	/* the next listed name evstream_verify_some looks at */
	struct stat		 scan_st;	/* the spool directory when it was last listed */
	int			 scan_settled;	/* and its ctime was older than the listing */
	int64_t			 written_total;	/* rows written since start */
	struct metrics		 metrics;	/* counters since start, for the textfile */
	char			 metrics_path[PATH_MAX];	/* "" = metrics_file off */
	double			 metrics_at;	/* when it was last written (monotonic) */
	struct progress		 progress;	/* --once on a terminal: the live line */
};

/* The only mutable globals: set by the signal handlers, read by the loop. */
static volatile sig_atomic_t evstream_stop, evstream_hup;

static void
evstream_on_signal(int sig)
{
	(void)sig;
	evstream_stop = 1;
}

static void
evstream_on_hup(int sig)
{
	(void)sig;
	evstream_hup = 1;
}

/*
 * SIGHUP is logged and ignored: the configuration is read once, at start.  Most
 * keys cannot change under a running stream (spool, checkpoint, database, batch
 * size), a bad file on a reload would have to stop the daemon, and a restart is
 * always safe (the checkpoint and evstream_batches make it exactly once).
 */
static void
evstream_take_hup(void)
{
	if (!evstream_hup)
		return;
	evstream_hup = 0;
	log_warnx("SIGHUP received and ignored: evstream reads its configuration only at start; "
	    "restart it to apply a change (systemctl restart evstream)");
}

/* Sleep until the monotonic time `until`, waking early for a signal, watchdog fed. */
static void
evstream_sleep_until(struct evstream *s, double until)
{
	notify_sleep_until(&s->notify, until, &evstream_stop, evstream_take_hup);
}

/*
 * Test-only crash points: EVSTREAM_FAILPOINT=name makes the process SIGKILL
 * itself there, so tests can hit exact moments: before_write, inside_copy (the
 * sink's hook: every row of a slice sent, its COPY not ended), between_slices
 * (slice 0 committed, the others not: copy_sessions > 1), after_commit (every
 * slice committed, the checkpoint not written), after_checkpoint.  Off unless the variable is set.
 */
static void
evstream_failpoint(const char *name)
{
	const char *fp = getenv("EVSTREAM_FAILPOINT");

	if (fp != NULL && strcmp(fp, name) == 0) {
		log_warnx("failpoint %s: killing myself", name);
		raise(SIGKILL);
	}
}

/* The sink's points ("inside_copy") are failpoints too; the sink never reads getenv. */
static void
evstream_sink_hook(void *arg, const char *point)
{
	(void)arg;
	evstream_failpoint(point);
}

/* How often the metrics file is rewritten while the database is down, in seconds. */
#define EVSTREAM_DOWN_REFRESH 10

static void evstream_publish(struct evstream *s, const struct batch *b, double seconds);

/*
 * Back off after a database failure.  The cause is logged once per outage (and
 * again only if it changes), so a long outage does not flood the journal.
 *
 * The metrics file says evpipe_database_up 0 as the outage begins, and is
 * written again every EVSTREAM_DOWN_REFRESH s while it lasts (a backoff may be
 * longer: retry_max), so its mtime, which node_exporter exports, tells an outage
 * from a hung daemon.  Only an outage pays for these writes: a batch that
 * commits never comes here.
 */
static void
evstream_outage(struct evstream *s, const char *doing)
{
	const char *state = sink_sqlstate(s->sink);
	int began = !s->db_down;
	double until, next;

	if (began || strcmp(state, s->last_state) != 0) {
		log_errx("database unavailable while %s: %s; retrying with backoff (at most %g s), "
		    "the checkpoint does not advance", doing, sink_error(s->sink), s->cfg.retry_max);
		notify_status(&s->notify, "database unavailable while %s; retrying every %g s at "
		    "most", doing, s->cfg.retry_max);
	} else
		log_debug("database still unavailable while %s: %s", doing, sink_error(s->sink));
	snprintf(s->last_state, sizeof(s->last_state), "%s", state);
	s->db_down = 1;
	if (began) {
		s->db_down_since = (double)util_wall_us() / 1e6;
		evstream_publish(s, NULL, 0);
	}
	s->backoff = s->backoff > 0 ? s->backoff * 2 : 0.25;
	if (s->backoff > s->cfg.retry_max)
		s->backoff = s->cfg.retry_max;
	until = util_now() + s->backoff;
	/* publish moves metrics_at on even when the write fails: no busy loop. */
	while (!evstream_stop && s->metrics_path[0] != '\0' &&
	    (next = s->metrics_at + EVSTREAM_DOWN_REFRESH) < until) {
		evstream_sleep_until(s, next);
		if (!evstream_stop)
			evstream_publish(s, NULL, 0);
	}
	evstream_sleep_until(s, until);
}

/* The database answered: the metrics file says so at once, not after the batch. */
static void
evstream_db_ok(struct evstream *s)
{
	int was_down = s->db_down;

	if (was_down) {
		log_info("database answers again; resuming");
		notify_status(&s->notify, "database answers again; last batch %lld",
		    (long long)ckpt_last_batch(s->ckpt));
	}
	s->db_down = 0;
	s->db_down_since = 0;
	s->backoff = 0;
	if (was_down)
		evstream_publish(s, NULL, 0);
}

/* Connect, retrying until the database answers.  -1 if a signal asked us to stop. */
static int
evstream_db_ready(struct evstream *s)
{
	enum sink_status st;

	while (!evstream_stop) {
		if ((st = sink_connect(s->sink)) == SINK_OK)
			return 0;
		if (st == SINK_FATAL)
			fatalx("database: %s; fix the configuration or the schema, then restart",
			    sink_error(s->sink));
		if (evstream_stop)
			break;		/* the sink gave up because of the signal: no outage */
		evstream_outage(s, "connecting");
	}
	return -1;
}

static int64_t
evstream_watermark(const struct evstream *s, int64_t max_time_us)
{
	return event_watermark(max_time_us, s->cfg.watermark_delay);
}

static int
evstream_dedupe_add(void *arg, const uint8_t id[16], int64_t time_us)
{
	return dedupe_insert(arg, id, time_us) < 0 ? -1 : 0;
}

/*
 * The dedupe set is rebuilt from the table, not from the checkpoint: the events
 * with event_time >= the watermark wm.  The table is the truth, and the index on
 * event_time makes this a range scan bounded by the watermark window.  At start,
 * and after a batch was rolled back (its rows had entered the set).
 */
static int
evstream_rebuild_dedupe(struct evstream *s, int64_t wm)
{
	dedupe_clear(s->dd);
	if (sink_load_ids_since(s->sink, wm == EVENT_TIME_NONE ? INT64_MIN : wm,
	    evstream_dedupe_add, s->dd) < 0)
		return -1;
	s->dedupe_stale = 0;
	log_info("dedupe set rebuilt from the events table: %zu ids since the watermark",
	    dedupe_count(s->dd));
	return 0;
}

/*
 * A batch from the database into the checkpoint.  A name the checkpoint holds
 * already (under another batch: a database from before evstream_files, or another
 * evstream's file recorded by ckpt_add_file) stays as it is; committed is committed.
 */
static int
evstream_take_db_batch(void *arg, int64_t id, char *const *files, size_t n, int64_t max_us)
{
	struct evstream *s = arg;
	char **fresh = malloc((n ? n : 1) * sizeof(*fresh));
	size_t k = 0;

	if (fresh == NULL)
		fatal("checkpoint: taking batch %lld from evstream_batches", (long long)id);
	for (size_t i = 0; i < n; i++)
		if (!ckpt_is_committed(s->ckpt, files[i]))
			fresh[k++] = files[i];
	if (ckpt_add_batch(s->ckpt, id, fresh, NULL, k, max_us) < 0)
		fatal("checkpoint: taking batch %lld from evstream_batches", (long long)id);
	free(fresh);
	return 0;
}

/* The batches committed after the checkpoint's last one, by us or by another evstream. */
static int
evstream_pull(struct evstream *s)
{
	return sink_batches_after(s->sink, ckpt_last_batch(s->ckpt), evstream_take_db_batch, s);
}

static int evstream_forget_uncommitted(struct evstream *s);
static int evstream_finish(struct evstream *s);
static void evstream_finish_waits(struct evstream *s);

/* Make the checkpoint agree with evstream_batches.  The database wins. */
static int
evstream_reconcile(struct evstream *s)
{
	int64_t db_last, db_max, ck_last = ckpt_last_batch(s->ckpt);

	/* Unfinished batches first; one that waits for a file holds the stream back. */
	if (evstream_finish(s) < 0 || sink_last_batch(s->sink, &db_last, &db_max) < 0)
		return -1;
	if (db_last > ck_last) {
		if (evstream_pull(s) < 0)
			return -1;
		ckpt_set_max_event_time(s->ckpt, db_max);
		log_warnx("checkpoint was behind evstream_batches (batch %lld < %lld: a stop between "
		    "commit and checkpoint, or another evstream on this database); took the "
		    "missing batches from the database", (long long)ck_last, (long long)db_last);
	} else if (db_last < ck_last) {
		if (ckpt_drop_after(s->ckpt, db_last) < 0)
			return -1;
		ckpt_set_max_event_time(s->ckpt, db_max);
		log_warnx("checkpoint is ahead of evstream_batches (batch %lld > %lld): the database "
		    "wins; the files of the later batches will be read again",
		    (long long)ck_last, (long long)db_last);
	}
	if (evstream_forget_uncommitted(s) < 0)
		return -1;
	return evstream_rebuild_dedupe(s, evstream_watermark(s, ckpt_max_event_time(s->ckpt)));
}

/* Write the checkpoint; while it cannot be written, stop advancing and say why. */
static void
evstream_save_ckpt(struct evstream *s)
{
	char err[512];
	int logged = 0;

	while (ckpt_save(s->ckpt, err, sizeof(err)) < 0) {
		if (!logged++)
			log_errx("checkpoint %s: %s; not advancing until it can be written (the "
			    "database already holds the batch, so nothing is lost or repeated)",
			    s->cfg.checkpoint_dir, err);
		if (evstream_stop)
			return;
		evstream_sleep_until(s, util_now() + 1);
	}
	if (logged)
		log_info("checkpoint %s written again; advancing", s->cfg.checkpoint_dir);
}

static void evstream_quarantine(struct evstream *s, const char *name, const char *why);

/*
 * Is the committed file `name` still the file that was read?  A name can be
 * given another file (a rename over it) or a file can grow after it was
 * read; its new content was never loaded, and skipping or cleaning it would
 * lose it without a word.  Such a file goes to quarantine/ with the reason.
 * An identity the checkpoint does not know (an older checkpoint, or batches
 * taken from the database) is taken as it is now.  0: the same file (or not
 * committed); 1: changed, quarantined; -1: it cannot be examined (gone).
 */
static int
evstream_verify(struct evstream *s, const char *name)
{
	struct spool_id was, now;
	int64_t batch;
	char why[256];

	if (!ckpt_file_id(s->ckpt, name, &batch, &was))
		return 0;
	if (spool_id_of(s->spool_fd, name, &now) < 0)
		return -1;
	if (was.ino == 0) {
		ckpt_set_file_id(s->ckpt, name, &now);
		return 0;
	}
	if (spool_id_same(&was, &now))
		return 0;
	snprintf(why, sizeof(why), "changed after batch %lld committed it (%s; %lld bytes read, "
	    "%lld now): what it holds now was not loaded; to load it, give it a new name",
	    (long long)batch, was.ino != now.ino || was.dev != now.dev ? "another file under "
	    "the same name" : "written to since", (long long)was.size, (long long)now.size);
	evstream_quarantine(s, name, why);
	return 1;
}

/* clean_source, for a committed file that is still the one read (never unread data). */
static void
evstream_clean(struct evstream *s, const char *name)
{
	int rc;

	if (s->cfg.clean_source == CLEAN_OFF || evstream_verify(s, name) != 0)
		return;
	rc = s->cfg.clean_source == CLEAN_DELETE ? spool_remove(s->spool_fd, name) :
	    spool_move(s->spool_fd, name, "archive");
	/* Gone already: another evstream on this spool committed and cleaned it. */
	if (rc < 0 && errno != ENOENT)
		log_warn("clean_source: %s/%s stays in the spool (already committed, it will not "
		    "be read again)", s->cfg.spool_dir, name);
}

/*
 * With clean_source = off, committed files stay in the spool for good: look at
 * a bounded number of them per trigger, in turn, so a change is noticed
 * without a stat of every committed file on every trigger.
 */
static void
evstream_verify_some(struct evstream *s)
{
	for (size_t k = 0; k < EVSTREAM_VERIFY_PER_TRIGGER && k < s->list.n; k++) {
		if (s->verify_at >= s->list.n)
			s->verify_at = 0;
		(void)evstream_verify(s, s->list.names[s->verify_at++]);
	}
}

/* A warning about one spool file; in the journal it carries FILE=<name>. */
static void __attribute__((format(printf, 3, 4)))
evstream_file_warn(const char *name, int errnum, const char *fmt, ...)
{
	char f_file[320];
	va_list ap;

	snprintf(f_file, sizeof(f_file), "FILE=%s", name);
	va_start(ap, fmt);
	log_vfields(LOG_LVL_WARNING, errnum, (const char *const[]){ f_file, NULL }, fmt, ap);
	va_end(ap);
}

/*
 * One warning per committed file that had invalid rows: an invalid row is a
 * producer's bug someone should hear of (a late or duplicate row is not).  Said
 * after the commit, so a batch retried through an outage says it once.  The rows
 * themselves are in event_rejects.
 */
static void
evstream_warn_rejects(const struct evstream *s)
{
	const struct batch *b = &s->b;
	char f_file[320], f_batch[48], f_rej[48];

	if (b->n.rejected == 0 || !log_enabled(LOG_LVL_WARNING))
		return;
	for (size_t i = 0; i < b->nfiles; i++) {
		const struct batch_file_rejects *fr = &b->frej[i];
		long long n = fr->invalid;
		if (n == 0)
			continue;
		snprintf(f_file, sizeof(f_file), "FILE=%s", b->files[i]);
		snprintf(f_batch, sizeof(f_batch), "BATCH_ID=%lld", (long long)b->id);
		snprintf(f_rej, sizeof(f_rej), "REJECTED=%lld", n);
		log_fields(LOG_LVL_WARNING, 0, (const char *const[]){ f_file, f_batch, f_rej, NULL },
		    "%s/%s: %lld invalid row%s (the first on line %lld: %s); kept in event_rejects "
		    "by batch %lld", s->cfg.spool_dir, b->files[i], n, n == 1 ? "" : "s",
		    (long long)fr->first_line, reject_reason_names[fr->first], (long long)b->id);
	}
}

/* The batch line, with its numbers as journal fields, and the same for systemctl status. */
static void
evstream_log_batch(struct evstream *s, double ms)
{
	const struct batch *b = &s->b;
	char wm[32] = "none", f_id[48], f_rows[48], f_rej[48], f_wm[48];

	if (b->watermark_us != EVENT_TIME_NONE)
		util_format_time(b->watermark_us, wm);
	s->written_total += b->n.written;
	notify_status(&s->notify, "last batch %lld: %lld rows written (%lld since start), "
	    "%zu files pending, watermark %s", (long long)b->id, (long long)b->n.written,
	    (long long)s->written_total, s->pending, wm);
	if (s->progress.on) {
		int64_t bytes = 0;
		for (size_t i = 0; i < b->nfiles; i++)
			bytes += b->ids[i].size > 0 ? b->ids[i].size : 0;	/* -1: unknown */
		progress_update(&s->progress, (int64_t)b->nfiles, b->n.rows, bytes, util_now());
		return;		/* the line replaces the batch lines */
	}
	if (!log_enabled(LOG_LVL_INFO))
		return;
	snprintf(f_id, sizeof(f_id), "BATCH_ID=%lld", (long long)b->id);
	snprintf(f_rows, sizeof(f_rows), "ROWS_WRITTEN=%lld", (long long)b->n.written);
	snprintf(f_rej, sizeof(f_rej), "REJECTED=%lld", (long long)b->n.rejected);
	snprintf(f_wm, sizeof(f_wm), "WATERMARK=%s", wm);
	log_fields(LOG_LVL_INFO, 0, (const char *const[]){ f_id, f_rows, f_rej, f_wm, NULL },
	    "[batch %lld] files=%zu rows=%lld valid=%lld late=%lld dup=%lld rejected=%lld "
	    "written=%lld watermark=%s %.0f ms", (long long)b->id, b->nfiles, (long long)b->n.rows,
	    (long long)b->n.valid, (long long)b->n.late, (long long)b->n.dup,
	    (long long)b->n.rejected, (long long)b->n.written, wm, ms);
}

static int
evstream_committed(void *arg, const char *name)
{
	return ckpt_is_committed(arg, name);
}

/*
 * The latest event time a batch accepts: this machine's clock plus
 * max_future_seconds, read once per batch.  Without it one row from a skewed
 * clock (or dated 2099) would carry the watermark with it, and every later
 * event would be late, for good: the watermark only moves forward.
 */
static int64_t
evstream_future_bound(const struct evstream *s)
{
	double bound = (double)util_wall_us() + s->cfg.max_future_seconds * 1e6;

	return bound >= (double)INT64_MAX ? INT64_MAX : (int64_t)bound;
}

/*
 * Rows from the future say a producer's clock is wrong: said once per batch
 * (each such row is in event_rejects), after the commit like the other warnings.
 */
static void
evstream_warn_future(const struct evstream *s)
{
	const struct batch *b = &s->b;
	char bound[32];

	if (b->n.future == 0 || !log_enabled(LOG_LVL_WARNING))
		return;
	util_format_time(b->future_us, bound);
	evstream_file_warn(b->files[b->future_file], 0, "batch %lld: %lld row%s dated after %s "
	    "UTC (this clock + max_future_seconds %g), the first %s/%s line %lld; rejected as "
	    "'future', the watermark did not move: is a producer's clock wrong? (evstream(8), "
	    "FUTURE AND LATE EVENTS)", (long long)b->id, (long long)b->n.future,
	    b->n.future == 1 ? "" : "s", bound, s->cfg.max_future_seconds, s->cfg.spool_dir,
	    b->files[b->future_file], (long long)b->future_line);
}

/*
 * The metrics file, after each commit (b != NULL), once at start, so a scrape
 * never shows an earlier process's counters, once at the end, and as the
 * database goes away, every ~10 s while it is away, and as it returns
 * (evstream_outage, evstream_db_ok).  A --once
 * backfill commits batches back to back: there it is written at most once a
 * second, since two more fsyncs per batch would slow a backfill of small files
 * by a third and no scraper looks that often.  Failing to write it is logged
 * once per streak and never holds up the stream.  A replayed batch adds no
 * rows: the database had them already.
 */
static void
evstream_publish(struct evstream *s, const struct batch *b, double seconds)
{
	/* The names before list_from are committed: a backlog costs its own length. */
	const struct spool_list after = { s->list.names + s->list_from, s->list.n - s->list_from,
	    0 };
	struct metrics_now now = { 0 };
	struct spool_pending p;
	struct sink_stats st;
	double wall = (double)util_wall_us() / 1e6;

	if (s->metrics_path[0] == '\0')
		return;
	if (b != NULL)
		metrics_add_batch(&s->metrics, b, seconds, wall);
	if (b != NULL && s->cfg.once && util_now() - s->metrics_at < 1)
		return;
	s->metrics_at = util_now();
	now.sessions = s->nslices;
	now.sessions_want = (int)s->cfg.copy_sessions;
	for (int j = 0; j < s->cfg.copy_sessions; j++) {
		sink_get_stats(s->slices[j], &st);
		now.copy_bytes += st.copy_bytes;
		now.reconnects += st.connects > 1 ? st.connects - 1 : 0;
	}
	if (spool_pending(s->spool_fd, &after, evstream_committed, s->ckpt, 0, &p) == 0 &&
	    p.n > 0) {
		now.files_pending = p.n;
		now.lag_seconds = wall - (double)p.oldest_mtime_us / 1e6;
		if (now.lag_seconds < 0)
			now.lag_seconds = 0;	/* a clock step, or a file from the future */
	}
	now.max_event_time_us = ckpt_max_event_time(s->ckpt);
	now.watermark_us = evstream_watermark(s, now.max_event_time_us);
	now.dedupe_entries = dedupe_count(s->dd);
	now.dedupe_evicted_full = dedupe_evicted_full(s->dd);
	now.last_batch = ckpt_last_batch(s->ckpt);
	now.database_up = !s->db_down;
	now.database_down_since = s->db_down ? s->db_down_since : 0;
	if (metrics_write(&s->metrics, &now, s->metrics_path) < 0) {
		if (!s->metrics.failing++)
			log_warn("metrics file %s not written; going on without it", s->metrics_path);
	} else if (s->metrics.failing) {
		s->metrics.failing = 0;
		log_info("metrics file %s written again", s->metrics_path);
	}
}

/* A file of the batch in hand that an earlier batch committed: learn it. */
static int
evstream_note_owner(void *arg, const char *name, int64_t batch_id)
{
	struct evstream *s = arg;

	if (ckpt_is_committed(s->ckpt, name) || batch_id > ckpt_last_batch(s->ckpt))
		return 0;	/* known, or committed since the pull: the next try pulls it */
	if (ckpt_add_file(s->ckpt, name, batch_id) < 0)
		fatal("checkpoint: recording %s as committed by batch %lld", name,
		    (long long)batch_id);
	log_info("%s/%s was committed by batch %lld of another evstream; not loading it",
	    s->cfg.spool_dir, name, (long long)batch_id);
	return 0;
}

/*
 * Another evstream committed the batch's id or one of its files first: the
 * database refused the batch (nothing was written; its rows left the dedupe set
 * stale).  Take what was committed from the database into the checkpoint, and
 * have the caller build the batch again: the files committed elsewhere now read
 * as committed.  -1 if a signal asked us to stop.
 */
static int
evstream_taken(struct evstream *s)
{
	int64_t last = ckpt_last_batch(s->ckpt);
	size_t known = ckpt_count(s->ckpt);
	int rc;

	log_info("batch %lld: %s; taking the committed batches from the database and building "
	    "it again", (long long)s->b.id, sink_error(s->sink));
	for (;;) {
		if (evstream_db_ready(s) < 0)
			return -1;
		/*
		 * What took it may be a batch whose slice 0 committed while the answer was
		 * lost (its own earlier try): the pull stops before an unfinished batch, so
		 * finish it first.  One that waits for a file holds the stream (evstream_step).
		 */
		if ((rc = evstream_finish(s)) >= 0 && evstream_pull(s) == 0 &&
		    sink_file_owners(s->sink, s->b.files, s->b.nfiles, evstream_note_owner, s) == 0)
			break;
		evstream_outage(s, "reading the batch log");
		if (evstream_stop)
			return -1;
	}
	evstream_db_ok(s);
	if (rc > 0)
		evstream_finish_waits(s);	/* evstream_step does not try it again at once */
	evstream_save_ckpt(s);
	/* Each SINK_TAKEN has a committed cause; if none shows, do not spin on it. */
	if (!s->unfinished && ckpt_last_batch(s->ckpt) == last && ckpt_count(s->ckpt) == known) {
		log_errx("batch %lld was refused as taken, but the database shows no batch or file "
		    "that took it; trying again in %g s", (long long)s->b.id, s->cfg.retry_max);
		evstream_sleep_until(s, util_now() + s->cfg.retry_max);
	}
	return evstream_stop ? -1 : 0;
}

/* --- writing a batch through the slices ---------------------------------------------- */

/* An accepted event goes to the session of its slice. */
static int
evstream_route(void *arg, const struct event *e)
{
	struct evstream *s = arg;

	return sink_slice_event(s->slices[event_slice(e->id, (unsigned)s->nslices)], e);
}

/* The rejects in hand go with slice 0. */
static int
evstream_hand_rejects(void *arg, struct batch *b)
{
	struct evstream *s = arg;

	return sink_slice_rejects(s->sink, b);
}

/*
 * Roll back the first n slices; whatever they had read is in the dedupe set.
 * The loop's messages read the first session's error: slice `failed`'s goes there.
 */
static enum sink_status
evstream_abandon(struct evstream *s, int n, enum sink_status st, int failed)
{
	for (int j = 0; j < n; j++)
		if (j != failed)
			sink_rollback(s->slices[j]);
	if (failed > 0)
		sink_adopt_error(s->sink, s->slices[failed]);
	if (s->b.n.rows > 0)
		s->dedupe_stale = 1;
	return st;
}

/* A slice whose sink said stop while rows were read: which, and why. */
static enum sink_status
evstream_stopped_slice(struct evstream *s, int *failed)
{
	for (int j = 0; j < s->nslices; j++)
		if (sink_error(s->slices[j])[0] != '\0') {
			*failed = j;
			return sink_slice_failed(s->slices[j]);
		}
	return SINK_RETRY;
}

/*
 * Read the planned files into the open slices.  SINK_OK when every file was
 * read or dropped; a file that cannot be read yet ends the batch before it.
 * s->replan: a file failed after some of its rows went out; the batch is
 * written again without it and the files after it.
 */
static enum sink_status
evstream_fill(struct evstream *s, int *failed)
{
	const struct batch_out out = { evstream_route, evstream_hand_rejects, s };
	char err[512];

	for (size_t k = 0; k < s->nplan; k++) {
		if (s->plan[k] == SIZE_MAX)
			continue;	/* quarantined or gone at an earlier try */
		const char *name = s->list.names[s->plan[k]];
		if (evstream_stop)
			return SINK_RETRY;	/* rolled back: nothing lost, the next start reads it */
		notify_watchdog(&s->notify);	/* a long backfill is not a hang */
		switch (batch_read_file(&s->b, s->csv, s->dd, &out, s->spool_fd, name, err,
		    sizeof(err))) {
		case BATCH_FILE_OK:
			break;
		case BATCH_FILE_QUARANTINE:
			evstream_quarantine(s, name, err);
			s->plan[k] = SIZE_MAX;
			break;
		case BATCH_FILE_GONE:
			evstream_file_warn(name, 0, "%s/%s vanished before it was read; nothing "
			    "of it was loaded", s->cfg.spool_dir, name);
			s->plan[k] = SIZE_MAX;
			break;
		case BATCH_FILE_RETRY:
			/* Order matters more than progress: later files wait too. */
			evstream_file_warn(name, 0, "%s/%s: %s; it and the files after it wait "
			    "for the next trigger", s->cfg.spool_dir, name, err);
			s->nplan = k;
			s->plan_cut = s->deferred = 1;
			return SINK_OK;
		case BATCH_FILE_BROKEN:
			evstream_file_warn(name, 0, "%s/%s: %s; batch %lld is rolled back and "
			    "written again without it and the files after it, which wait for the "
			    "next trigger", s->cfg.spool_dir, name, err, (long long)s->b.id);
			s->nplan = k;
			s->plan_cut = s->replan = s->deferred = 1;
			return SINK_RETRY;
		case BATCH_FILE_CORRUPT:
			/* Some of its rows went out: none may stay.  The same plan, without it. */
			evstream_quarantine(s, name, err);
			log_info("batch %lld is rolled back and written again without %s/%s",
			    (long long)s->b.id, s->cfg.spool_dir, name);
			s->plan[k] = SIZE_MAX;
			s->replan = 1;
			return SINK_RETRY;
		case BATCH_FILE_STOPPED:
			return evstream_stopped_slice(s, failed);
		}
	}
	return SINK_OK;
}

/* The batch's bounds, from what is committed; the same at every try. */
static void
evstream_batch_start(struct evstream *s)
{
	batch_reset(&s->b);
	s->b.id = ckpt_last_batch(s->ckpt) + 1;
	s->b.max_time_us = ckpt_max_event_time(s->ckpt);
	s->b.watermark_us = evstream_watermark(s, s->b.max_time_us);
	s->b.future_us = evstream_future_bound(s);
}

/*
 * The sessions after the first are a speed-up, not a condition: those the server
 * will not admit (a role's CONNECTION LIMIT, max_connections) are left out, the
 * batch is sliced over the ones it admits instead of the stream waiting for them,
 * and all of copy_sessions is tried again every retry_max.  Said when the count
 * changes; the metrics, and so status, show it.
 */
static void
evstream_sessions(struct evstream *s)
{
	int want = (int)s->cfg.copy_sessions, j;

	if (s->nslices < want && util_now() < s->sessions_at)
		return;
	for (j = 1; j < want; j++)
		if (sink_connect(s->slices[j]) != SINK_OK)
			break;
	if (evstream_stop)
		return;		/* the connect gave up for the signal: nothing learnt */
	if (j < want && j != s->nslices)
		log_warnx("copy_sessions = %d, but session %d could not connect (%s): batches go "
		    "through %d session%s, and all %d are tried again every %g s (raise the "
		    "role's CONNECTION LIMIT or max_connections, or lower copy_sessions)", want,
		    j + 1, sink_error(s->slices[j]), j, j == 1 ? "" : "s", want, s->cfg.retry_max);
	else if (j == want && s->nslices < want)
		log_info("all %d sessions of copy_sessions connect again", want);
	if (j < want)
		s->sessions_at = util_now() + s->cfg.retry_max;
	s->nslices = j;
}

/*
 * One try at the planned batch: open every slice, stream the files, end the
 * slices, commit slice 0 (the batch's commit point), then the others.  A
 * failure before slice 0's commit rolls everything back.  After it, a slice
 * that does not commit leaves the batch unfinished (s->unfinished): it is
 * finished from the files before the loop goes on.
 */
static enum sink_status
evstream_attempt(struct evstream *s)
{
	int64_t written[SINK_MAX_SLICES];
	enum sink_status st;
	int n, j, failed = -1;

	evstream_batch_start(s);
	if ((st = sink_slice_begin(s->sink, &s->b, 0, s->merge)) != SINK_OK)
		return evstream_abandon(s, 1, st, 0);
	/* After slice 0's BEGIN: the server is up, so a refusal now is meant for the others. */
	evstream_sessions(s);
	n = s->nslices;
	for (j = 1; j < n; j++)
		if ((st = sink_slice_begin(s->slices[j], &s->b, j, s->merge)) != SINK_OK)
			return evstream_abandon(s, j + 1, st, j);
	if ((st = evstream_fill(s, &failed)) != SINK_OK || s->b.nfiles == 0)
		return evstream_abandon(s, n, st, failed);
	for (j = n - 1; j >= 0; j--)
		if ((st = sink_slice_end(s->slices[j], &s->b, j, &written[j])) != SINK_OK)
			return evstream_abandon(s, n, st, j);
	if ((st = sink_batch_commit(s->sink, &s->b, written, n)) != SINK_OK)
		return evstream_abandon(s, n, st, 0);
	if (n > 1)
		evstream_failpoint("between_slices");
	for (j = 1; j < n; j++)
		if ((st = sink_slice_commit(s->slices[j], &s->b, j, written[j])) != SINK_OK &&
		    st != SINK_TAKEN) {
			log_warnx("batch %lld: slice %d of %d did not commit (%s); finishing it from "
			    "the files", (long long)s->b.id, j, n, sink_error(s->slices[j]));
			(void)evstream_abandon(s, n, st, j);
			s->unfinished = 1;
			break;
		}
	return SINK_OK;
}

/* --- finishing a batch whose later slices did not commit ----------------------------- */

/* Only the events of the slice being finished go out. */
static int
evstream_route_redo(void *arg, const struct event *e)
{
	struct evstream *s = arg;

	if (event_slice(e->id, (unsigned)s->redo_n) != (unsigned)s->redo_slice)
		return 0;
	return sink_slice_event(s->sink, e);
}

/* Slice 0 stored the rejects. */
static int
evstream_drop_rejects(void *arg, struct batch *b)
{
	(void)arg;
	batch_clear_rejects(b);
	return 0;
}

/*
 * Read the batch's files again into the open slice.  0 when each was read and is
 * as the batch read it; 1 when one is not (logged); -1 when the sink failed.
 */
static int
evstream_reread(struct evstream *s, const struct batch *was, struct batch *b)
{
	const struct batch_out out = { evstream_route_redo, evstream_drop_rejects, s };
	const struct spool_id *id;
	enum batch_file_status st;
	char err[512];

	for (size_t i = 0; i < was->nfiles; i++) {
		const char *name = was->files[i];
		notify_watchdog(&s->notify);
		if ((st = batch_read_file(b, s->csv, s->dd, &out, s->spool_fd, name, err,
		    sizeof(err))) == BATCH_FILE_STOPPED)
			return -1;
		if (st != BATCH_FILE_OK) {
			log_errx("batch %lld cannot be finished: %s/%s: %s; later batches wait, and "
			    "it is tried again in retry_max seconds (restore the file to let the "
			    "stream go on)",
			    (long long)was->id, s->cfg.spool_dir, name, err);
			return 1;
		}
		id = &b->ids[b->nfiles - 1];
		if ((was->ids[i].size >= 0 && id->size != was->ids[i].size) ||
		    (was->ids[i].mtime_ns >= 0 && id->mtime_ns != was->ids[i].mtime_ns)) {
			log_errx("batch %lld cannot be finished: %s/%s changed since the batch read "
			    "it (%lld bytes then, %lld now); later batches wait: restore it to let "
			    "the stream go on",
			    (long long)was->id, s->cfg.spool_dir, name,
			    (long long)was->ids[i].size, (long long)id->size);
			return 1;
		}
	}
	return 0;
}

/*
 * Write one missing slice of batch `was`: the dedupe set as it was before the
 * batch (the database's ids since its watermark: the committed slices' ids are
 * among them, but no slice shares an event_id with another), the files read
 * again with the batch's bounds, only this slice's events sent.
 */
static enum sink_status
evstream_redo_slice(struct evstream *s, const struct batch *was, int slice, int nslices)
{
	struct batch *b = &s->rb;
	enum sink_status st;
	int64_t written;

	if (evstream_rebuild_dedupe(s, was->watermark_us) < 0)
		return SINK_RETRY;
	batch_reset(b);
	b->id = was->id;
	b->watermark_us = was->watermark_us;
	b->future_us = was->future_us;
	b->max_time_us = was->max_time_us;
	s->redo_slice = slice;
	s->redo_n = nslices;
	if ((st = sink_slice_begin(s->sink, b, slice, s->merge)) != SINK_OK)
		return st;
	switch (evstream_reread(s, was, b)) {
	case 1:
		sink_rollback(s->sink);
		return SINK_FATAL;	/* not the database's fault: wait for the file */
	case -1:
		return sink_slice_failed(s->sink);
	}
	if ((st = sink_slice_end(s->sink, b, slice, &written)) != SINK_OK)
		return st;
	st = sink_slice_commit(s->sink, b, slice, written);
	return st == SINK_TAKEN ? SINK_OK : st;	/* TAKEN: another evstream finished it */
}

static int
evstream_finish_one(void *arg, const struct sink_unfinished *u)
{
	struct evstream *s = arg;
	struct batch was;
	enum sink_status st = SINK_OK;

	batch_init(&was);
	was.id = u->batch_id;
	was.watermark_us = u->watermark_us;
	was.future_us = u->future_us;
	was.max_time_us = u->max_time_us;
	if (sink_batch_files(s->sink, u->batch_id, &was) < 0) {
		batch_free(&was);
		return -1;
	}
	log_info("batch %lld is unfinished (slice 0 committed, not every other of its %d): "
	    "reading its %zu files again to write the missing slices", (long long)u->batch_id,
	    u->nslices, was.nfiles);
	for (int j = 1; j < u->nslices && st == SINK_OK; j++)
		if (u->pending & (UINT64_C(1) << j))
			while ((st = evstream_redo_slice(s, &was, j, u->nslices)) == SINK_CONFLICT)
				s->merge = 1;
	s->dedupe_stale = 1;	/* it holds the ids since this batch's watermark */
	batch_free(&was);
	if (st == SINK_FATAL)
		return 1;	/* logged; the next trigger tries again */
	return st == SINK_OK ? 0 : -1;
}

/*
 * Finish every unfinished batch.  0 done; 1 a file stops it (logged): later
 * batches wait, since their dedupe decisions depend on it; -1 the database.
 */
static int
evstream_finish(struct evstream *s)
{
	int rc = sink_unfinished(s->sink, evstream_finish_one, s);

	s->unfinished = rc != 0;
	return rc;
}

/* An unfinished batch waits for a file (logged): try again in retry_max; --once stops. */
static void
evstream_finish_waits(struct evstream *s)
{
	s->finish_at = util_now() + s->cfg.retry_max;	/* a file is not back at once */
	if (s->cfg.once) {
		log_errx("--once: an unfinished batch waits for its file; stopping with nothing "
		    "more loaded (or, to give its missing slices up for lost: DELETE FROM "
		    "evstream_slices WHERE batch_id = ..., then start again)");
		s->exit_code = 1;
	}
}

/* Before a new batch: 0 when no batch is unfinished, else -1 (this trigger does nothing). */
static int
evstream_finished(struct evstream *s)
{
	int rc;

	if (!s->unfinished)
		return 0;
	if (util_now() < s->finish_at)
		return -1;
	if ((rc = evstream_finish(s)) == 0)
		return 0;
	if (rc < 0) {
		s->finish_at = util_now() + s->cfg.retry_max;
		evstream_outage(s, "finishing a batch's slices");
	} else
		evstream_finish_waits(s);
	return -1;
}

/*
 * Write the planned batch, then checkpoint and clean_source.  0 when committed
 * (b.nfiles 0: every planned file was dropped), 1 when another evstream took it
 * (plan again), -1 when stopped.
 */
static void evstream_record(struct evstream *s, double t0);

static int
evstream_write(struct evstream *s, double t0)
{
	enum sink_status st;
	char what[64];

	for (;;) {
		if (evstream_db_ready(s) < 0)
			return -1;	/* stopped: the transactions were rolled back */
		if (s->dedupe_stale && evstream_rebuild_dedupe(s, evstream_watermark(s,
		    ckpt_max_event_time(s->ckpt))) < 0) {
			evstream_outage(s, "rebuilding the dedupe set");
			continue;
		}
		evstream_failpoint("before_write");
		if ((st = evstream_attempt(s)) == SINK_OK)
			break;
		snprintf(what, sizeof(what), "writing batch %lld", (long long)s->b.id);
		if (st == SINK_FATAL)
			fatalx("batch %lld: %s; stopping", (long long)s->b.id, sink_error(s->sink));
		if (st == SINK_TAKEN)
			return evstream_taken(s) < 0 ? -1 : 1;
		if (st == SINK_CONFLICT) {
			log_info("batch %lld: %s; writing it again through the stage, which keeps "
			    "only the rows the database does not hold", (long long)s->b.id,
			    sink_error(s->sink));
			s->merge = 1;
			continue;
		}
		if (s->replan) {
			s->replan = 0;
			continue;
		}
		if (evstream_stop) {
			log_info("batch %lld: %s; stopping (the next start reconciles the checkpoint "
			    "with the database: nothing is lost or repeated)", (long long)s->b.id,
			    sink_error(s->sink));
			return -1;
		}
		evstream_outage(s, what);
	}
	if (s->b.nfiles == 0)
		return 0;
	/* Finished now, or (waiting for a file) before the next batch: see evstream_step. */
	while (s->unfinished && evstream_finish(s) < 0) {
		evstream_outage(s, "finishing a batch's slices");
		if (evstream_stop)
			return -1;	/* the next start finishes it */
	}
	evstream_db_ok(s);
	evstream_failpoint("after_commit");
	evstream_record(s, t0);
	return 0;
}

/* The batch is committed: the checkpoint, clean_source, the logs and the metrics. */
static void
evstream_record(struct evstream *s, double t0)
{
	struct batch *b = &s->b;

	if (ckpt_add_batch(s->ckpt, b->id, b->files, b->ids, b->nfiles, b->max_time_us) < 0)
		fatal("checkpoint: recording batch %lld", (long long)b->id);
	evstream_save_ckpt(s);
	evstream_failpoint("after_checkpoint");
	for (size_t i = 0; i < b->nfiles; i++)
		evstream_clean(s, b->files[i]);
	dedupe_evict(s->dd, evstream_watermark(s, b->max_time_us));
	/* Through the stage only until a batch finds nothing stored already. */
	if (s->merge && b->n.written == b->n.valid - b->n.late - b->n.dup)
		s->merge = 0;
	evstream_warn_rejects(s);
	evstream_warn_future(s);
	evstream_log_batch(s, (util_now() - t0) * 1000);
	evstream_publish(s, b, util_now() - t0);
}

/* Where name is in a listing sorted by strcmp, or SIZE_MAX. */
static size_t
evstream_listing_find(const struct spool_list *l, const char *name)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(l->names[mid], name);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

static int
evstream_in_listing(void *arg, const char *name)
{
	return evstream_listing_find(arg, name) != SIZE_MAX;
}

#define EVSTREAM_VERIFY_CHUNK 10000	/* names per query: bounds the query and s->buf */

struct evstream_owned {
	struct spool_list	*names;		/* sorted */
	char			*owned;		/* owned[i]: names->names[i] is in evstream_files */
};

static int
evstream_mark_owned(void *arg, const char *name, int64_t batch_id)
{
	const struct evstream_owned *o = arg;
	size_t i = evstream_listing_find(o->names, name);

	(void)batch_id;
	if (i != SIZE_MAX)
		o->owned[i] = 1;
	return 0;
}

static int
evstream_not_unowned(void *arg, const char *name)
{
	return !evstream_in_listing(arg, name);
}

/* Mark in o->owned those of o->names that q says a batch committed, a chunk a query. */
static int
evstream_mark_committed(struct evstream *s, struct evstream_owned *o,
    int (*q)(struct sink *, char *const *, size_t, sink_owner_fn, void *))
{
	size_t n;

	for (size_t off = 0; off < o->names->n; off += n) {
		n = o->names->n - off < EVSTREAM_VERIFY_CHUNK ? o->names->n - off :
		    EVSTREAM_VERIFY_CHUNK;
		if (q(s->sink, o->names->names + off, n, evstream_mark_owned, o) < 0)
			return -1;
	}
	return 0;
}

/* Keep the names not marked, in their (sorted) order, and clear the marks. */
static void
evstream_keep_unmarked(struct evstream_owned *o)
{
	size_t k = 0;

	for (size_t i = 0; i < o->names->n; i++)
		if (!o->owned[i])
			o->names->names[k++] = o->names->names[i];
	o->names->n = k;
	memset(o->owned, 0, k);
}

/*
 * The database, not the checkpoint, says which files are committed: a name the
 * checkpoint holds (of a file still in the spool) that no batch committed is
 * forgotten, so its file is loaded.  Only a checkpoint written before
 * evstream_files, by one of two evstreams sharing a spool, holds such names (it
 * skipped a batch whose id the other had used for other files).  A name that
 * evstream_batches lists but evstream_files does not (an evstream from before it
 * ran on after the migration) is committed: it is claimed now.  At start only; one
 * query per EVSTREAM_VERIFY_CHUNK names, and a read of the batch log only for
 * names evstream_files does not know.
 */
static int
evstream_forget_uncommitted(struct evstream *s)
{
	struct spool_list mine = { 0 };
	struct evstream_owned o = { &mine, NULL };
	size_t dropped;
	int rc = -1;

	if (spool_scan_skipped(s->spool_fd, &s->list, &s->odd) < 0) {
		log_warn("listing spool %s failed; the checkpoint's files are not checked against "
		    "evstream_files", s->cfg.spool_dir);
		return 0;
	}
	if ((mine.names = malloc((s->list.n + 1) * sizeof(char *))) == NULL ||
	    (o.owned = calloc(s->list.n + 1, 1)) == NULL)
		fatal("checking the checkpoint against evstream_files");
	for (size_t i = 0; i < s->list.n; i++)
		if (ckpt_is_committed(s->ckpt, s->list.names[i]))
			mine.names[mine.n++] = s->list.names[i];
	if (evstream_mark_committed(s, &o, sink_file_owners) < 0)
		goto out;
	evstream_keep_unmarked(&o);
	if (evstream_mark_committed(s, &o, sink_claim_listed) < 0)
		goto out;
	evstream_keep_unmarked(&o);
	if ((dropped = ckpt_forget(s->ckpt, evstream_not_unowned, &mine)) > 0)
		log_warnx("checkpoint lists %zu file%s that no batch committed (the first: %s; "
		    "left by an evstream from before evstream_files beside another one); the "
		    "database wins: loading %s", dropped, dropped == 1 ? "" : "s", mine.names[0],
		    dropped == 1 ? "it" : "them");
	rc = 0;
out:
	free(o.owned);
	free(mine.names);
	return rc;
}

/* Take a file out of the spool for good, saying why (once: it is gone after this). */
static void
evstream_quarantine(struct evstream *s, const char *name, const char *why)
{
	if (spool_quarantine(s->spool_fd, name, why) < 0)
		evstream_file_warn(name, errno, "%s/%s: %s; moving it to quarantine/ failed too, "
		    "it will be tried again", s->cfg.spool_dir, name, why);
	else {
		metrics_add_quarantined(&s->metrics);
		evstream_file_warn(name, 0, "%s/%s: %s; moved to quarantine/, it will not be "
		    "retried", s->cfg.spool_dir, name, why);
	}
}

/*
 * A name the checkpoint does not list, but which sorts before the last name
 * committed, was either committed by another evstream on this spool and is still
 * there as that batch read it (evstream_files kept its size and time): it is
 * remembered, not loaded; or it was committed and then forgotten (it left the
 * spool and came back), or is another file under that name: quarantined, never
 * loaded twice nor deleted unread.  0: not committed, read it; 1: remembered or
 * quarantined; -1: the database did not answer (the caller stops filling for
 * this trigger).
 */
static int
evstream_check_ledger(struct evstream *s, const char *name)
{
	char why[256];
	int64_t batch, size, mtime_ns;
	struct spool_id now;

	if (ckpt_is_beyond(s->ckpt, name))
		return 0;
	if (sink_file_batch(s->sink, name, &batch, &size, &mtime_ns) < 0) {
		evstream_outage(s, "checking a file name against evstream_files");
		return -1;
	}
	if (batch == 0 || batch > ckpt_last_batch(s->ckpt))
		return 0;	/* another evstream's batch this one has not seen: the claim tells */
	if (size >= 0 && spool_id_of(s->spool_fd, name, &now) == 0 && now.size == size &&
	    now.mtime_ns == mtime_ns) {
		/* Saved with the next batch: lost to a crash, the database answers again. */
		(void)evstream_note_owner(s, name, batch);
		evstream_clean(s, name);
		return 1;
	}
	snprintf(why, sizeof(why), "batch %lld committed a file of this name already, and it is "
	    "back in the spool: not loaded again; to load it, give it a new name", (long long)batch);
	evstream_quarantine(s, name, why);
	return 1;
}

/*
 * Entries with a spool name that are not regular files (a symlink, a FIFO, a
 * directory...) are never read: csvin would refuse them anyway, and a FIFO
 * could block a reader.  Quarantined, so each is said once.
 */
static void
evstream_quarantine_odd(struct evstream *s, const struct spool_list *odd)
{
	char why[128];
	const char *kind;

	for (size_t i = 0; i < odd->n; i++) {
		if ((kind = spool_entry_kind(s->spool_fd, odd->names[i])) == NULL)
			continue;	/* gone, or a regular file by now: the next scan sees it */
		snprintf(why, sizeof(why), "is %s, not a regular file; never read", kind);
		evstream_quarantine(s, odd->names[i], why);
	}
}

static int
evstream_grow_plan(struct evstream *s)
{
	if (ALLOC_GROW(s->plan, s->nplan + 1, s->capplan, 64) < 0) {
		log_warn("planning a batch: out of memory; the batch takes fewer files");
		return -1;
	}
	return 0;
}

/*
 * Choose the next batch's files: up to max_files_per_trigger names the
 * checkpoint does not hold, in name order, from listing index `from` on.
 * Names the database committed (another evstream) or cannot store are dealt
 * with here, before anything is read.  Returns how many were planned.
 */
static size_t
evstream_plan(struct evstream *s, size_t from)
{
	size_t i, limit = s->cfg.max_files_per_trigger ? (size_t)s->cfg.max_files_per_trigger :
	    SIZE_MAX;

	s->nplan = 0;
	s->plan_cut = 0;
	/* The committed names at the front are passed once, not at every trigger. */
	while (s->list_from < s->list.n && ckpt_is_committed(s->ckpt, s->list.names[s->list_from]))
		evstream_clean(s, s->list.names[s->list_from++]);
	for (i = from > s->list_from ? from : s->list_from; i < s->list.n && s->nplan < limit;
	    i++) {
		const char *name = s->list.names[i];
		s->pending = s->list.n - i;
		notify_watchdog(&s->notify);
		if (ckpt_is_committed(s->ckpt, name)) {
			evstream_clean(s, name);	/* committed before a crash, not yet cleaned */
			continue;
		}
		switch (evstream_check_ledger(s, name)) {
		case 1:
			continue;
		case -1:
			s->deferred = 1;
			return s->nplan;
		}
		if (!sink_name_storable(name)) {
			/* A restart knows committed files by the names the database holds. */
			evstream_quarantine(s, name, "the file name is not valid UTF-8, so the "
			    "database cannot record it exactly and a restart could load it twice; "
			    "rename it to load it");
			continue;
		}
		if (s->nplan == s->capplan && evstream_grow_plan(s) < 0)
			break;
		s->plan[s->nplan++] = i;
	}
	s->pending = s->list.n - i;
	return s->nplan;
}

/*
 * A stream that takes fewer files per trigger than arrive falls behind for ever;
 * say so after a few triggers of growth, long before `status` calls it stalled.
 */
#define BACKLOG_WARN_TRIGGERS 3
static void
evstream_watch_backlog(struct evstream *s)
{
	if (s->pending > s->backlog_prev) {
		if (++s->backlog_grew == BACKLOG_WARN_TRIGGERS)
			log_warnx("falling behind: %zu files pending, more after each of the last %d "
			    "triggers; at most %ld files every %g s do not keep up: raise "
			    "max_files_per_trigger (0 = no limit) or lower trigger_interval",
			    s->pending, BACKLOG_WARN_TRIGGERS, s->cfg.max_files_per_trigger,
			    s->cfg.trigger_interval);
	} else if (s->pending < s->backlog_prev) {
		if (s->backlog_grew >= BACKLOG_WARN_TRIGGERS)
			log_info("backlog shrinking: %zu files pending", s->pending);
		s->backlog_grew = 0;
	}
	s->backlog_prev = s->pending;
}

/*
 * An idle trigger must not cost a listing of every file ever committed (with
 * clean_source = off they all stay): the directory's ctime changes with every
 * entry added, renamed or removed, so while it is the one seen at the last
 * listing, and that listing left nothing waiting, there is nothing new.  A
 * ctime younger than EVSTREAM_SETTLED at the listing is not trusted: a file
 * added later in the same timestamp tick (the kernel's coarse clock, a few
 * milliseconds) would leave it equal.
 */
static int
evstream_spool_unchanged(struct evstream *s)
{
	struct stat st;

	if (fstat(s->spool_fd, &st) < 0 || !s->scan_settled || s->pending != 0)
		return 0;
	return st.st_dev == s->scan_st.st_dev && st.st_ino == s->scan_st.st_ino &&
	    st.st_ctim.tv_sec == s->scan_st.st_ctim.tv_sec &&
	    st.st_ctim.tv_nsec == s->scan_st.st_ctim.tv_nsec;
}

/* Remember the directory as it is before it is listed (see evstream_spool_unchanged). */
static void
evstream_note_scan(struct evstream *s)
{
	s->scan_settled = fstat(s->spool_fd, &s->scan_st) == 0 &&
	    (double)s->scan_st.st_ctim.tv_sec + (double)s->scan_st.st_ctim.tv_nsec / 1e9 <
	    (double)util_wall_us() / 1e6 - EVSTREAM_SETTLED;
}

/* Names that left the spool can never be seen again: the checkpoint forgets them. */
static void
evstream_forget_gone(struct evstream *s)
{
	if (ckpt_forget(s->ckpt, evstream_in_listing, &s->list) > 0)
		evstream_save_ckpt(s);
}

/* List the whole spool, watching it from just before.  1, or -1 if it cannot be listed. */
static int
evstream_relist(struct evstream *s)
{
	if (s->watch >= 0)
		(void)close(s->watch);	/* inotify: nothing to lose */
	s->watch = spool_watch_open(s->spool_fd);
	s->relist_at = util_now() + EVSTREAM_RELIST_SECONDS;
	evstream_note_scan(s);
	if (spool_scan_skipped(s->spool_fd, &s->list, &s->odd) < 0) {
		s->scan_settled = 0;
		s->deferred = 1;
		log_warn("listing spool %s failed (openat, fdopendir or readdir of it); trying again "
		    "at the next trigger", s->cfg.spool_dir);
		return -1;
	}
	s->list_from = 0;
	evstream_quarantine_odd(s, &s->odd);
	s->scan_settled &= s->odd.n == 0;	/* one that could not be moved is tried again */
	evstream_forget_gone(s);
	return 1;
}

/*
 * Bring the listing up to date.  Watched (inotify), only the names that came
 * or went since the last trigger are looked at, so neither a batch nor an
 * idle trigger costs a listing of every file ever committed; the whole spool
 * is listed again when the watch lost track, and every EVSTREAM_RELIST_SECONDS
 * anyway.  Not watched, the spool is listed unless its ctime says nothing
 * changed.  1: look for new files; 0: nothing changed and nothing waits; -1:
 * the spool cannot be listed.
 */
static int
evstream_refresh(struct evstream *s)
{
	struct spool_delta *d = &s->delta;

	if (s->watch < 0 || util_now() >= s->relist_at)
		return s->watch < 0 && evstream_spool_unchanged(s) ? 0 : evstream_relist(s);
	if (spool_watch_read(s->watch, s->spool_fd, d) != 0)
		return evstream_relist(s);
	/* A committed file written to is looked at now, not when its turn comes. */
	for (size_t i = 0; i < d->written.n; i++)
		(void)evstream_verify(s, d->written.names[i]);
	if (d->added.n == 0 && d->gone.n == 0 && d->odd.n == 0 && s->pending == 0)
		return 0;
	if (spool_list_apply(&s->list, d, &s->list_from) < 0)
		return evstream_relist(s);
	evstream_quarantine_odd(s, &d->odd);
	if (d->gone.n > 0)
		evstream_forget_gone(s);
	return 1;
}

/*
 * One trigger: bring the listing up to date, take up to max_files_per_trigger
 * new files, and commit them as one batch.  Returns the number of files
 * committed, 0 when there was nothing new (no database call), -1 when a signal
 * interrupted the commit.
 */
static int
evstream_step(struct evstream *s)
{
	double t0 = util_now();
	size_t from = 0;
	int f, changed, rc, first = 1;

	notify_watchdog(&s->notify);
	s->deferred = 0;	/* --once asks about the last trigger only */
	/*
	 * The spool is its path, not the directory opened at start: after `mv spool
	 * spool.old; mkdir spool` the old descriptor would list the old directory
	 * forever, in silence.  While the path names no directory nothing is read.
	 */
	if ((f = spool_follow_logged(s->cfg.spool_dir, &s->spool_fd, &s->spool_gone)) < 0)
		return 0;
	if (f == SPOOL_REPLACED)
		s->relist_at = 0;	/* the watch and the listing were of the old one */
	changed = evstream_refresh(s);
	evstream_verify_some(s);
	if (evstream_finished(s) < 0 || changed <= 0)
		return 0;
	/* Again while another evstream takes the batch first, or every file was dropped. */
	do {
		size_t planned = evstream_plan(s, from), last;
		if (!s->cfg.once && first)
			evstream_watch_backlog(s);
		first = 0;
		if (planned == 0)
			return 0;
		last = s->plan[planned - 1];
		if ((rc = evstream_write(s, t0)) == 0 && s->b.nfiles == 0) {
			if (s->plan_cut)
				return 0;	/* a file to read again: it and later ones wait */
			from = last + 1;	/* every file was dropped: the next ones */
			rc = 2;
		} else if (rc == 1) {
			if (evstream_finished(s) < 0)
				return 0;	/* an unfinished batch waits for a file */
			from = 0;
		}
	} while (rc > 0);
	return rc < 0 ? -1 : (int)s->b.nfiles;
}

static void
evstream_loop(struct evstream *s)
{
	double next = util_now();
	int n;

	while (!evstream_stop) {
		evstream_take_hup();	/* a --once backfill does not sleep */
		if ((n = evstream_step(s)) < 0 || s->exit_code != 0 || (s->cfg.once && n == 0))
			break;
		if (s->cfg.once)
			continue;
		/* Fixed rate: a batch that overran its slot is followed at once. */
		next += s->cfg.trigger_interval;
		if (next < util_now())
			next = util_now();
		evstream_sleep_until(s, next);
	}
}

/*
 * --once promises everything available loaded: when a file could not be (a read
 * error, the database), say how many were not and exit 1, never 0.
 */
static void
evstream_once_done(struct evstream *s)
{
	const struct spool_list after = { s->list.names + s->list_from, s->list.n - s->list_from,
	    0 };
	struct spool_pending p;

	if (s->exit_code != 0 || evstream_stop)
		return;
	if (spool_pending(s->spool_fd, &after, evstream_committed, s->ckpt, 1, &p) < 0 ||
	    (s->deferred && p.n == 0)) {
		log_errx("--once: %s was not listed or read whole (see the warnings above); exit 1, "
		    "run it again", s->cfg.spool_dir);
		s->exit_code = 1;
	} else if (p.n > 0) {
		log_errx("--once: %zu file%s of %s not loaded (the first: %s; see the warnings "
		    "above); exit 1, run it again", p.n, p.n == 1 ? "" : "s", s->cfg.spool_dir,
		    p.oldest);
		s->exit_code = 1;
	}
}

/*
 * --once watched on a terminal: the progress line's totals are what waits now,
 * the files the checkpoint does not hold and their bytes (rows are not known
 * before they are read: their total is estimated from the bytes read).
 */
static void
evstream_progress_start(struct evstream *s)
{
	struct spool_list l = { 0 };
	struct spool_pending p;

	if (!s->cfg.once || !progress_wanted((enum log_level)s->cfg.log_level))
		return;
	if (spool_scan(s->spool_fd, &l, NULL) < 0 ||
	    spool_pending(s->spool_fd, &l, evstream_committed, s->ckpt, 1, &p) < 0)
		log_warn("listing spool %s for the progress line failed; a line per batch instead",
		    s->cfg.spool_dir);
	else
		progress_start(&s->progress, "evstream", (int64_t)p.n, 0, p.bytes, util_now());
	spool_list_free(&l);
}

static void
evstream_usage(FILE *out)
{
	fprintf(out,
	    "usage: evstream [-c FILE] [--once] [--OPTION=VALUE ...]\n%s"
	    "Load the CSV files evgen writes into PostgreSQL, exactly once, in micro-batches:\n"
	    "every trigger_interval, take at most max_files_per_trigger new files in name\n"
	    "order, validate each row, drop late events and duplicate event_ids, and COPY the\n"
	    "events while the files are read, through copy_sessions sessions (a transaction\n"
	    "each; the first, with the rejects and the batch record, commits first; a batch\n"
	    "whose other sessions did not commit is finished from its files before any\n"
	    "later one).  SIGTERM/SIGINT finish (or roll back) the batch in flight, write\n"
	    "the checkpoint and exit 0; SIGHUP is logged and ignored (the configuration is\n"
	    "read at start only).\n\n"
	    "status prints files pending, the last batch, rows by outcome, rejects by reason,\n"
	    "the watermark and the dedupe set (--json for scripts); exit 0 healthy, 1 stalled\n"
	    "(a pending file older than stall_triggers triggers, the database down, or more\n"
	    "than reject_alarm_share of the recent rows late or future).\n"
	    "quarantine list shows each quarantined file, when and why; quarantine requeue\n"
	    "moves a repaired one back into the spool, unless it was ever committed.\n\n",
	    ops_usage);
	cfg_usage(&evstream_table, out);
	fprintf(out, "\nEnvironment: POSTGRES_HOST POSTGRES_PORT POSTGRES_DB POSTGRES_USER "
	    "POSTGRES_PASSWORD, then libpq's PG* variables and ~/.pgpass.\n"
	    "Exit status: 0 on success or signal, 1 on a runtime failure, 2 on bad configuration.\n");
}

static void
evstream_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = evstream_on_signal;	/* no SA_RESTART: sleeps end at once */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		fatal("sigaction");
	/* SA_RESTART: a SIGHUP changes nothing, so it must interrupt no call but a sleep. */
	sa.sa_handler = evstream_on_hup;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGHUP, &sa, NULL) < 0)
		fatal("sigaction");
	signal(SIGPIPE, SIG_IGN);
}

/*
 * Parse the command line; exits on --help, --version and bad usage.  Returns the
 * index in argv of a subcommand's first word (argv[i] is NULL for the daemon).
 */
static int
evstream_configure(struct evstream *s, int argc, char **argv)
{
	int first = cfg_command_line(&evstream_table, &s->cfg, argc, argv, "evstream",
	    evstream_usage);

	if (argv[first] != NULL && !ops_is_command(argv[first])) {
		fprintf(stderr, "evstream: unexpected argument '%s' (see --help)\n", argv[first]);
		cfg_free(&evstream_table, &s->cfg);
		exit(EXIT_CONFIG);
	}
	return first;
}

/*
 * A start-up failure's exit status: 1 for a fault the next start may not meet (the
 * service manager restarts), 2 for what the configuration makes fail every time
 * (systemd does not restart it: RestartPreventExitStatus=2).
 */
static int
evstream_start_status(int err)
{
	switch (err) {
	case EIO: case ENOMEM: case ENOSPC: case EMFILE: case ENFILE: case ENOLCK: case EINTR:
		return 1;
	default:
		return EXIT_CONFIG;
	}
}

/* Start-up in the data's order; each step says what failed and exits. */
static void
evstream_open(struct evstream *s)
{
	char err[512];
	int st;

	log_open("evstream", (enum log_level)s->cfg.log_level);
	notify_open(&s->notify);
	s->watch = -1;
	s->spool_fd = open(s->cfg.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->spool_fd < 0) {
		st = evstream_start_status(errno);
		log_err("%sspool_dir=%s: open", st == EXIT_CONFIG ? "bad configuration: " : "",
		    s->cfg.spool_dir);
		exit(st);
	}
	if ((s->ckpt = ckpt_open(s->cfg.checkpoint_dir, err, sizeof(err))) == NULL) {
		st = evstream_start_status(errno);
		log_errx("checkpoint_dir=%s: %s; exit %d", s->cfg.checkpoint_dir, err, st);
		exit(st);
	}
	s->nslices = (int)s->cfg.copy_sessions;
	for (int j = 0; j < s->cfg.copy_sessions; j++) {
		if ((s->slices[j] = sink_new(s->cfg.conninfo, s->cfg.db_schema, err,
		    sizeof(err))) == NULL) {
			st = evstream_start_status(errno);
			log_errx("%s%s", st == EXIT_CONFIG ? "bad configuration: " : "", err);
			exit(st);
		}
		/* SIGTERM ends any database wait too: the call is cancelled, rolled back. */
		sink_set_stop_flag(s->slices[j], &evstream_stop);
		if (getenv("EVSTREAM_FAILPOINT") != NULL)
			sink_set_test_hook(s->slices[j], evstream_sink_hook, NULL);
	}
	s->sink = s->slices[0];
	for (int j = 0; j < s->cfg.copy_sessions; j++)
		sink_set_peers(s->slices[j], s->slices, (int)s->cfg.copy_sessions);
	if ((s->csv = csvin_new()) == NULL || (s->dd = dedupe_new((size_t)s->cfg.dedupe_max_ids)) == NULL)
		fatal("allocating the reader and the dedupe set");
	batch_init(&s->b);
	batch_init(&s->rb);
	metrics_init(&s->metrics, (double)util_wall_us() / 1e6);
	if (metrics_path(s->cfg.checkpoint_dir, s->cfg.metrics_file, s->metrics_path,
	    sizeof(s->metrics_path)) < 0) {
		log_errx("bad configuration: metrics_file=%s: path too long", s->cfg.metrics_file);
		exit(EXIT_CONFIG);
	}
}

static void
evstream_close(struct evstream *s)
{
	metrics_free(&s->metrics);
	batch_free(&s->b);
	batch_free(&s->rb);
	free(s->plan);
	spool_list_free(&s->list);
	spool_list_free(&s->odd);
	spool_delta_free(&s->delta);
	if (s->watch >= 0)
		(void)close(s->watch);	/* inotify: nothing to lose */
	dedupe_free(s->dd);
	csvin_free(s->csv);
	for (int j = 0; j < s->cfg.copy_sessions; j++)
		sink_free(s->slices[j]);
	ckpt_close(s->ckpt);
	close(s->spool_fd);
	cfg_free(&evstream_table, &s->cfg);
}

/* A subcommand (status, quarantine): the daemon's configuration, no daemon. */
static int
evstream_ops(struct evstream *s, char **words, int json)
{
	const struct ops_config c = {
		.spool_dir = s->cfg.spool_dir,
		.checkpoint_dir = s->cfg.checkpoint_dir,
		.conninfo = s->cfg.conninfo,
		.db_schema = s->cfg.db_schema,
		.metrics_file = s->cfg.metrics_file,
		.trigger_interval = s->cfg.trigger_interval,
		.watermark_delay = s->cfg.watermark_delay,
		.stall_triggers = s->cfg.stall_triggers,
		.reject_alarm_share = s->cfg.reject_alarm_share,
		.reject_alarm_batches = s->cfg.reject_alarm_batches,
	};
	int rc;

	log_open("evstream", (enum log_level)s->cfg.log_level);
	rc = ops_main(&c, words, json);
	cfg_free(&evstream_table, &s->cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	struct evstream s = { 0 };
	int json = ops_take_json(&argc, argv), first;

	first = evstream_configure(&s, argc, argv);
	if (argv[first] != NULL || json)
		return evstream_ops(&s, argv + first, json);
	evstream_open(&s);
	evstream_signals();
	log_info("starting: spool %s, checkpoint %s (batch %lld, %zu files remembered)",
	    s.cfg.spool_dir, s.cfg.checkpoint_dir, (long long)ckpt_last_batch(s.ckpt),
	    ckpt_count(s.ckpt));
	/* Recovery: the database must answer before anything is read. */
	while (!evstream_stop) {
		if (evstream_db_ready(&s) < 0)
			break;
		if (evstream_reconcile(&s) == 0 || evstream_stop)
			break;
		evstream_outage(&s, "reconciling the checkpoint");
	}
	if (!evstream_stop) {
		evstream_db_ok(&s);
		evstream_save_ckpt(&s);
		evstream_publish(&s, NULL, 0);
		/* Configuration valid, database answered, checkpoint reconciled: ready. */
		notify_status(&s.notify, "ready; last batch %lld, waiting for files",
		    (long long)ckpt_last_batch(s.ckpt));
		notify_ready(&s.notify);
		evstream_progress_start(&s);
		evstream_loop(&s);
		progress_end(&s.progress, util_now());
		if (s.cfg.once)
			evstream_once_done(&s);
		evstream_publish(&s, NULL, 0);
	}
	notify_stopping(&s.notify);
	log_info("stopping%s", evstream_stop ? " after a signal" : "");
	evstream_close(&s);
	return s.exit_code;
}
