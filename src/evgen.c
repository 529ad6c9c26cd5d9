/*
 * evgen — simulates a shop: writes batches of events as CSV files into a spool.
 *
 * The loop: make one file's text (gen), publish it atomically under a unique,
 * time-ordered name (durable), pause, repeat.  A reader of the spool sees either
 * nothing or a whole file, whatever happens to this process.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "config.h"
#include "durable.h"
#include "gen.h"
#include "gz.h"
#include "log.h"
#include "notify.h"
#include "spool.h"

#define EXIT_CONFIG CFG_EXIT_CONFIG	/* bad configuration or usage */

struct evgen_config {
	char	*spool_dir;
	long	 rows_per_file;
	double	 interval;
	long	 count;
	int	 burst;
	int	 compress;
	long	 seed;
	long	 user_id_min, user_id_max, product_id_min, product_id_max;
	double	 purchase_rate, price_min, price_max;
	double	 duplicate_rate, late_rate, late_delay, invalid_rate;
	int	 log_level;
};

static const char *const log_level_choices[] = { "error", "warning", "info", "debug", NULL };

#define K(name, type, def, min, max, help) \
	{ #name, type, offsetof(struct evgen_config, name), def, min, max, NULL, 0, help }
static const struct cfg_key evgen_keys[] = {
	K(spool_dir, CFG_STR, "/var/spool/evpipe", 0, 0, "directory the CSV files are written into"),
	K(rows_per_file, CFG_INT, "100", 1, 10000000, "events per file"),
	K(interval, CFG_DOUBLE, "5", 0, 86400, "pause between files, in seconds (fractions allowed)"),
	K(count, CFG_INT, "0", 0, 1e15, "write this many files, then exit (0 = forever)"),
	K(burst, CFG_BOOL, "off", 0, 0, "write without pausing (backfills, benchmarks)"),
	K(compress, CFG_BOOL, "off", 0, 0,
	    "write gzip files (NAME.csv.gz, one gzip member each); evstream reads them as it reads .csv"),
	K(seed, CFG_INT, "0", 0, 9e18,
	    "random seed; non-zero makes rows reproducible (event times then follow a simulated "
	    "clock from 2026-01-01 00:00:00 UTC advancing `interval` per file)"),
	K(user_id_min, CFG_INT, "1", 1, 2147483647, "smallest user_id"),
	K(user_id_max, CFG_INT, "100000", 1, 2147483647, "largest user_id"),
	K(product_id_min, CFG_INT, "1", 1, 2147483647, "smallest product_id"),
	K(product_id_max, CFG_INT, "10000", 1, 2147483647, "largest product_id"),
	K(purchase_rate, CFG_DOUBLE, "0.1", 0, 1, "share of events that are purchases"),
	K(price_min, CFG_DOUBLE, "1.00", 0.01, 99999999, "lowest purchase price"),
	K(price_max, CFG_DOUBLE, "500.00", 0.01, 99999999, "highest purchase price"),
	K(duplicate_rate, CFG_DOUBLE, "0", 0, 1,
	    "test aid: share of rows that re-emit an earlier row (same event_id)"),
	K(late_rate, CFG_DOUBLE, "0", 0, 1, "test aid: share of rows with an event_time late_delay in the past"),
	K(late_delay, CFG_DOUBLE, "600", 0, 31536000, "test aid: how late a late row is, in seconds"),
	K(invalid_rate, CFG_DOUBLE, "0", 0, 1,
	    "test aid: share of invalid rows (bad event_type, non-numeric id, bad timestamp, "
	    "wrong column count, empty event_id, negative price)"),
	{ "log_level", CFG_ENUM, offsetof(struct evgen_config, log_level), "info", 0, 0,
	    log_level_choices, 0, "error | warning | info (one line per file) | debug" },
};
#undef K

static const struct cfg_table evgen_table = {
	"evgen", evgen_keys, sizeof(evgen_keys) / sizeof(evgen_keys[0])
};

/* The only mutable globals: set by the signal handlers, read by the loop. */
static volatile sig_atomic_t evgen_stop, evgen_hup;

static void
evgen_on_signal(int sig)
{
	(void)sig;
	evgen_stop = 1;
}

static void
evgen_on_hup(int sig)
{
	(void)sig;
	evgen_hup = 1;
}

/*
 * SIGHUP is logged and ignored: the configuration is read once, at start (a
 * changed spool_dir or rate mid-run has no safe meaning, and a bad file on a
 * reload would have to stop a running daemon); a restart applies a change.
 */
static void
evgen_take_hup(void)
{
	if (!evgen_hup)
		return;
	evgen_hup = 0;
	log_warnx("SIGHUP received and ignored: evgen reads its configuration only at start; "
	    "restart it to apply a change (systemctl restart evgen)");
}

static void
evgen_usage(FILE *out)
{
	fprintf(out,
	    "usage: evgen [-c FILE] [--OPTION=VALUE ...]\n"
	    "Simulate an e-commerce site: write batches of events as CSV files into a spool\n"
	    "directory, each under a hidden temporary name then renamed atomically to\n"
	    "events_<UTC time>_<uuid>.csv.  SIGTERM/SIGINT stop it after the file in hand;\n"
	    "SIGHUP is logged and ignored (the configuration is read at start only).\n\n");
	cfg_usage(&evgen_table, out);
	fprintf(out, "\nExit status: 0 on success or signal, 1 on a runtime failure, 2 on bad configuration.\n");
}

static int
evgen_check(const struct evgen_config *c, char *err, size_t errlen)
{
	struct stat st;

	if (c->user_id_min > c->user_id_max)
		snprintf(err, errlen, "user_id_min=%ld is above user_id_max=%ld", c->user_id_min,
		    c->user_id_max);
	else if (c->product_id_min > c->product_id_max)
		snprintf(err, errlen, "product_id_min=%ld is above product_id_max=%ld",
		    c->product_id_min, c->product_id_max);
	else if (c->price_min > c->price_max)
		snprintf(err, errlen, "price_min=%.2f is above price_max=%.2f", c->price_min, c->price_max);
	else if (c->spool_dir[0] == '\0')
		snprintf(err, errlen, "spool_dir is empty: set it in the config file or with --spool_dir");
	else if (stat(c->spool_dir, &st) < 0)
		snprintf(err, errlen, "spool_dir=%s: %s", c->spool_dir, strerror(errno));
	else if (!S_ISDIR(st.st_mode))
		snprintf(err, errlen, "spool_dir=%s: not a directory", c->spool_dir);
	else if (access(c->spool_dir, W_OK | X_OK) < 0)
		snprintf(err, errlen, "spool_dir=%s: not writable: %s", c->spool_dir, strerror(errno));
	else
		return 0;
	return -1;
}

static int64_t
evgen_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sleep, waking early for a signal, in slices that keep systemd's watchdog fed. */
static void
evgen_pause(struct notify *n, double seconds)
{
	double slice = notify_max_sleep(n);

	while (!evgen_stop && seconds > 0) {
		double d = slice > 0 && seconds > slice ? slice : seconds;
		struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) }, left;

		seconds -= d;
		if (nanosleep(&ts, &left) < 0) {
			if (errno != EINTR)
				break;
			seconds += (double)left.tv_sec + (double)left.tv_nsec / 1e9;
		}
		evgen_take_hup();
		notify_watchdog(n);
	}
}

/* events_<UTC yyyymmddThhmmss.ffffff>_<uuid>.csv[.gz]: byte order is creation order. */
static void
evgen_name(struct gen *g, int64_t us, int gz, char *out, size_t outlen)
{
	char stamp[32], id[37];
	uint8_t raw[16];
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	gen_uuid(g, raw);
	uuid_unparse_lower(raw, id);
	snprintf(out, outlen, "events_%s.%06ld_%s%s", stamp, (long)(us % 1000000), id,
	    gz ? SPOOL_SUFFIX_GZ : SPOOL_SUFFIX);
}

struct evgen {
	struct evgen_config	 cfg;
	struct gen		*gen;
	int			 spool_fd;
	int			 spool_gone;	/* spool_dir cannot be opened (said once) */
	int64_t			 last_name_us;	/* names must strictly increase */
	long			 files;
	int64_t			 rows;
	struct notify		 notify;	/* systemd: ready, status, watchdog */
	int64_t			 status_us;	/* when STATUS= was last sent */
	int			 failed;	/* a published file is not durable: exit 1 */
	char			*gzbuf;		/* --compress: the file's gzip, reused */
	size_t			 gzcap;
};

/* For systemctl status; at most once a second: a burst writes thousands of files a second. */
static void
evgen_status(struct evgen *e, int64_t now_us, const char *name)
{
	if (now_us >= e->status_us && now_us - e->status_us < 1000000)
		return;
	e->status_us = now_us;
	notify_status(&e->notify, "wrote %ld files, %lld rows; last %s", e->files,
	    (long long)e->rows, name);
}

/* The instant the rows of file number k end: real time, or the seeded simulated clock. */
static int64_t
evgen_event_clock(const struct evgen *e)
{
	const int64_t sim_epoch_us = INT64_C(1767225600) * 1000000;	/* 2026-01-01 UTC */
	double step = e->cfg.interval > 0 ? e->cfg.interval : 1.0;

	if (e->cfg.seed == 0)
		return evgen_now_us();
	return sim_epoch_us + (int64_t)((double)(e->files + 1) * step * 1e6);
}

/*
 * The directory fsync after the rename that published `name` failed.  A failed
 * fsync is final (PostgreSQL's fsyncgate: a retry may report a success that is
 * not on disk), so whether the name survives a crash of the machine is unknown:
 * evgen never reports such a file.  It withdraws the name (a reader that opened
 * it in that instant still reads it whole), forgets its rows and stops with exit
 * status 1, so the service manager's restart is the next step.
 */
static void
evgen_withdraw(struct evgen *e, const char *name, int fsync_errno)
{
	const char *how = "withdrawn (unlinked)";

	gen_unpublish(e->gen);
	if (unlinkat(e->spool_fd, name, 0) < 0 && errno != ENOENT)
		how = "NOT withdrawn: unlink failed too; a reader may still load it";
	log_errx("fsync of spool directory %s after the rename that published %s failed: %s; "
	    "the file is %s and not counted (a failed fsync is not retried); stopping with "
	    "exit status 1", e->cfg.spool_dir, name, strerror(fsync_errno), how);
}

static void
evgen_log_wrote(const char *name, const struct gen_stats *st)
{
	long invalid = 0;

	if (!log_enabled(LOG_LVL_INFO))
		return;
	for (int i = 0; i < GEN_NFAULTS; i++)
		invalid += st->invalid[i];
	log_info("wrote %s rows=%ld duplicates=%ld late=%ld invalid=%ld", name, st->rows,
	    st->duplicates, st->late, invalid);
}

/*
 * Write one file.  0 on success; -1 if it failed and nothing visible was left
 * (retried on the next tick with new rows); 1 if it was published but the
 * directory fsync after the rename failed: evgen_withdraw, and evgen stops.
 * Only a file made durable is counted and logged as written.
 */
static int
evgen_write_one(struct evgen *e)
{
	struct gen_stats st;
	const char *text;
	size_t len;
	char name[128];
	int64_t now = evgen_now_us();
	int rc, saved;

	/* The spool is its path: files written into a directory moved aside are never read. */
	if (spool_follow_logged(e->cfg.spool_dir, &e->spool_fd, &e->spool_gone) < 0)
		return -1;
	if (gen_file(e->gen, evgen_event_clock(e), &text, &len, &st) < 0) {
		log_err("generating file %ld failed; retrying", e->files + 1);
		return -1;
	}
	if (e->cfg.compress && gz_compress(text, len, &e->gzbuf, &len, &e->gzcap) < 0) {
		gen_unpublish(e->gen);	/* never written: new rows follow */
		log_err("compressing file %ld failed; retrying on the next tick", e->files + 1);
		return -1;
	}
	if (e->cfg.compress)
		text = e->gzbuf;
	e->last_name_us = now > e->last_name_us ? now : e->last_name_us + 1;
	evgen_name(e->gen, e->last_name_us, e->cfg.compress, name, sizeof(name));
	if ((rc = durable_create_at(e->spool_fd, name, text, len)) == -1) {
		saved = errno;
		gen_unpublish(e->gen);	/* not counted either: new rows follow */
		errno = saved;
		log_warn("writing %s/%s failed; its temporary file was removed, retrying on the "
		    "next tick", e->cfg.spool_dir, name);
		return -1;
	}
	saved = errno;
	if (rc == DURABLE_UNSYNCED) {
		evgen_withdraw(e, name, saved);
		return 1;
	}
	e->files++;
	e->rows += st.rows;
	evgen_status(e, now, name);
	evgen_log_wrote(name, &st);
	if (rc == DURABLE_TMP_LEFT)
		log_warnx("%s/%s is written and durable, but unlink of its hidden temporary name "
		    ".%s" DURABLE_TMP_SUFFIX " failed: %s; the next start of evgen removes it",
		    e->cfg.spool_dir, name, name, strerror(saved));
	return 0;
}

static int
evgen_done(const struct evgen *e)
{
	return e->cfg.count != 0 && e->files >= e->cfg.count;
}

static void
evgen_run(struct evgen *e)
{
	int64_t t0 = evgen_now_us();
	double secs;
	int rc;

	while (!evgen_stop && !evgen_done(e)) {
		notify_watchdog(&e->notify);
		evgen_take_hup();
		if ((rc = evgen_write_one(e)) > 0) {
			e->failed = 1;
			break;
		}
		if (rc < 0)
			evgen_pause(&e->notify, e->cfg.interval > 1 ? e->cfg.interval : 1);
		else if (!e->cfg.burst && !evgen_done(e))
			evgen_pause(&e->notify, e->cfg.interval);
	}
	secs = (double)(evgen_now_us() - t0) / 1e6;
	log_info("stopping: wrote %ld files, %lld rows in %.3f s (%.0f rows/s)%s", e->files,
	    (long long)e->rows, secs, secs > 0 ? (double)e->rows / secs : 0.0,
	    e->failed ? " after a failed directory fsync" : evgen_stop ? " after a signal" : "");
}

static uint64_t
evgen_seed(long configured)
{
	uuid_t u;
	uint64_t s;

	if (configured != 0)
		return (uint64_t)configured;
	uuid_generate_random(u);	/* the kernel's randomness, through libuuid */
	memcpy(&s, u, sizeof(s));
	return s;
}

static void
evgen_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = evgen_on_signal;	/* no SA_RESTART: a pause ends at once */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		fatal("sigaction");
	/* SA_RESTART: a SIGHUP changes nothing, so it must interrupt no call but a pause. */
	sa.sa_handler = evgen_on_hup;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGHUP, &sa, NULL) < 0)
		fatal("sigaction");
}

/* Parse and check the configuration; exits on --help, --version and bad usage. */
static void
evgen_configure(struct evgen *e, int argc, char **argv)
{
	char err[512];
	int first = cfg_command_line(&evgen_table, &e->cfg, argc, argv, "evgen", evgen_usage);

	if (argv[first] != NULL) {
		fprintf(stderr, "evgen: unexpected argument '%s' (see --help)\n", argv[first]);
	} else if (evgen_check(&e->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "evgen: bad configuration: %s\n", err);
	} else
		return;
	cfg_free(&evgen_table, &e->cfg);
	exit(EXIT_CONFIG);
}

int
main(int argc, char **argv)
{
	struct evgen e = { 0 };
	int removed, status;

	evgen_configure(&e, argc, argv);
	log_open("evgen", (enum log_level)e.cfg.log_level);
	notify_open(&e.notify);
	evgen_signals();
	if ((removed = durable_sweep(e.cfg.spool_dir, "events_")) < 0)
		fatal("cleaning stale temporary files in %s (opendir, readdir or the directory's "
		    "fsync)", e.cfg.spool_dir);
	if (removed > 0)
		log_info("removed %d stale temporary file(s) left by an earlier crash", removed);

	const struct gen_params gp = {
		e.cfg.rows_per_file, e.cfg.user_id_min, e.cfg.user_id_max, e.cfg.product_id_min,
		e.cfg.product_id_max, e.cfg.purchase_rate, e.cfg.price_min, e.cfg.price_max,
		e.cfg.duplicate_rate, e.cfg.late_rate, e.cfg.invalid_rate, e.cfg.late_delay,
	};
	if ((e.gen = gen_new(&gp, evgen_seed(e.cfg.seed))) == NULL)
		fatal("allocating the generator");
	if ((e.spool_fd = open(e.cfg.spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		fatal("opening spool_dir %s", e.cfg.spool_dir);
	/* Configuration valid, spool open and swept: ready. */
	notify_status(&e.notify, "ready; writing into %s", e.cfg.spool_dir);
	notify_ready(&e.notify);
	evgen_run(&e);
	notify_stopping(&e.notify);
	status = e.failed ? EXIT_FAILURE : 0;
	close(e.spool_fd);
	gen_free(e.gen);
	free(e.gzbuf);
	cfg_free(&evgen_table, &e.cfg);
	return status;
}
