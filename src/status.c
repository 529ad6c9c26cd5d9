/* status — see include/status.h. */
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ckpt.h"
#include "event.h"
#include "metrics.h"
#include "sink_format.h"
#include "spool.h"
#include "util.h"

static void __attribute__((format(printf, 2, 3)))
status_problem(struct status_report *r, const char *fmt, ...)
{
	va_list ap;

	if (r->nproblems == STATUS_MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(r->problem[r->nproblems++], sizeof(r->problem[0]), fmt, ap);
	va_end(ap);
}

/* --- collecting ---------------------------------------------------------------------- */

static int
status_committed(void *arg, const char *name)
{
	return arg != NULL && ckpt_is_committed(arg, name);
}

static struct ckpt *
status_ckpt(const struct ops_config *c, struct status_report *r)
{
	struct ckpt *ck;
	char err[512];

	if ((ck = ckpt_read(c->checkpoint_dir, err, sizeof(err))) == NULL) {
		status_problem(r, "checkpoint: %s (evstream cannot start with it)", err);
		return NULL;
	}
	r->ckpt_ok = 1;
	r->ckpt_last_batch = ckpt_last_batch(ck);
	r->ckpt_max_event_time_us = ckpt_max_event_time(ck);
	r->ckpt_files = ckpt_count(ck);
	return ck;
}

/* Without a checkpoint every file counts as waiting: the daemon could not start. */
static void
status_pending(int fd, const struct spool_list *list, struct ckpt *ck, struct status_report *r)
{
	struct spool_pending p;

	if (spool_pending(fd, list, status_committed, ck, 1, &p) < 0) {
		r->spool_ok = 0;
		status_problem(r, "spool %s: %s", r->cfg->spool_dir, strerror(errno));
	} else if ((r->pending = p.n) > 0) {
		snprintf(r->oldest, sizeof(r->oldest), "%s", p.oldest);
		r->oldest_age = r->now - (double)p.oldest_mtime_us / 1e6;
		if (r->oldest_age < 0)
			r->oldest_age = 0;	/* a clock step, or a file from the future */
	}
}

/*
 * The spool is listed before the checkpoint is read: a file committed in
 * between is then in the checkpoint, so it is never counted as pending.
 */
static void
status_spool(const struct ops_config *c, struct status_report *r)
{
	struct spool_list list = { 0 }, q = { 0 };
	struct ckpt *ck;
	int fd;

	if ((fd = open(c->spool_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    spool_scan(fd, &list, NULL) < 0 || spool_quarantine_scan(fd, &q) < 0)
		status_problem(r, "spool %s cannot be read: %s", c->spool_dir, strerror(errno));
	else
		r->spool_ok = 1;
	r->quarantined = q.n;
	ck = status_ckpt(c, r);
	if (r->spool_ok)
		status_pending(fd, &list, ck, r);
	ckpt_close(ck);
	spool_list_free(&list);
	spool_list_free(&q);
	if (fd >= 0)
		(void)close(fd);	/* read-only */
}

static void
status_db(const struct ops_config *c, struct status_report *r)
{
	struct sink *s;
	char err[512];

	r->db.last_commit_us = r->db.max_event_time_us = r->db.now_us = EVENT_TIME_NONE;
	if ((s = sink_new(c->conninfo, c->db_schema, err, sizeof(err))) == NULL) {
		snprintf(r->db_error, sizeof(r->db_error), "%s", err);
		status_problem(r, "database: %s", err);
		return;
	}
	if (sink_summary(s, &r->db) == 0 && sink_recent_late(s, c->reject_alarm_batches,
	    &r->recent_rows, &r->recent_late) == 0)
		r->db_up = 1;
	else {
		snprintf(r->db_error, sizeof(r->db_error), "%s", sink_error(s));
		status_problem(r, "database unavailable: %s", sink_error(s));
	}
	snprintf(r->db_target, sizeof(r->db_target), "%s", sink_target(s));
	sink_free(s);
}

/* The daemon's own figures, from the file it writes after each batch. */
static void
status_metrics(const struct ops_config *c, struct status_report *r)
{
	static const char *const names[] = { "evpipe_dedupe_entries",
	    "evpipe_copy_sessions_connected", "evpipe_copy_sessions" };
	double v[3];
	int found[3];
	struct stat st;

	r->dedupe_entries = NAN;
	r->sessions = r->sessions_want = NAN;
	if (metrics_path(c->checkpoint_dir, c->metrics_file, r->metrics_path,
	    sizeof(r->metrics_path)) != 0) {
		r->metrics_path[0] = '\0';
		return;
	}
	if (stat(r->metrics_path, &st) < 0 || metrics_read(r->metrics_path, 3, names, v, found) < 0 ||
	    !found[0])
		return;
	r->metrics_ok = 1;
	r->metrics_age = r->now - ((double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9);
	r->dedupe_entries = v[0];
	if (found[1] && found[2]) {
		r->sessions = v[1];
		r->sessions_want = v[2];
	}
}

static void
status_verdict(const struct ops_config *c, struct status_report *r)
{
	int64_t max = r->db_up ? r->db.max_event_time_us : r->ckpt_max_event_time_us;

	r->max_event_time_us = max;
	r->watermark_us = event_watermark(max, c->watermark_delay);
	if (r->pending > 0 && r->oldest_age > r->stall_after)
		status_problem(r, "stalled: %s has waited %.1f s, more than %ld triggers (%g s)",
		    r->oldest, r->oldest_age, c->stall_triggers, r->stall_after);
	/* A batch is unfinished for the moment between its slices' commits; for longer
	 * it waits for a file, or for the next start (see evstream(8), PARALLEL SESSIONS). */
	if (r->db_up && r->db.unfinished > 0 &&
	    (double)(r->db.now_us - r->db.unfinished_since_us) / 1e6 > r->stall_after)
		status_problem(r, "unfinished: %" PRId64 " batch%s committed only in part for %.1f "
		    "s (slices not written: evstream finishes them from the files; its log says "
		    "what stops it)", r->db.unfinished, r->db.unfinished == 1 ? "" : "es",
		    (double)(r->db.now_us - r->db.unfinished_since_us) / 1e6);
	if (r->db_up && r->recent_rows > 0 &&
	    (double)r->recent_late > c->reject_alarm_share * (double)r->recent_rows)
		status_problem(r, "rejecting: %" PRId64 " of the %" PRId64 " rows of the last %ld "
		    "batches were late or future, more than reject_alarm_share %g: a producer's "
		    "clock, or a watermark carried ahead (see evstream(8), FUTURE AND LATE EVENTS)",
		    r->recent_late, r->recent_rows, c->reject_alarm_batches, c->reject_alarm_share);
	if (r->sessions < r->sessions_want)	/* false when either is NaN */
		status_problem(r, "sessions: batches go through %.0f of copy_sessions = %.0f "
		    "database sessions: the server refuses the others (a role's CONNECTION LIMIT, "
		    "max_connections; evstream's log says why and tries them again every retry_max)",
		    r->sessions, r->sessions_want);
	r->healthy = r->nproblems == 0;
}

void
status_collect(const struct ops_config *c, struct status_report *r)
{
	memset(r, 0, sizeof(*r));
	r->cfg = c;
	r->now = (double)util_wall_us() / 1e6;
	r->stall_after = (double)c->stall_triggers * c->trigger_interval;
	r->ckpt_max_event_time_us = EVENT_TIME_NONE;
	status_spool(c, r);
	status_db(c, r);
	status_metrics(c, r);
	status_verdict(c, r);
}

/* --- for a person -------------------------------------------------------------------- */

static const char *
status_time(int64_t us, char out[40])
{
	if (us == EVENT_TIME_NONE)
		return "none";
	util_format_time(us, out);
	strcat(out, " UTC");
	return out;
}

static void
status_text_db(const struct status_report *r, FILE *out)
{
	const struct sink_summary *d = &r->db;
	char t[40];

	fprintf(out, "  database    up, %s: %" PRId64 " batches, %" PRId64 " files", r->db_target,
	    d->batches, d->files);
	if (d->batches > 0)
		fprintf(out, "; last batch %" PRId64 " at %s (%.1f s ago)", d->last_batch,
		    status_time(d->last_commit_us, t), (double)(d->now_us - d->last_commit_us) / 1e6);
	fprintf(out, "\n  rows        read %" PRId64 ": written %" PRId64 " (last minute %" PRId64
	    ", last hour %" PRId64 "), duplicate %" PRId64 ", late %" PRId64 ", invalid %" PRId64
	    ", conflict %" PRId64 "\n  rejects    ", d->rows_read, d->written,
	    d->written_last_minute, d->written_last_hour, d->duplicates, d->late, d->invalid,
	    d->conflict);
	for (int i = REJECT_NONE + 1; i < REJECT_NREASONS; i++)
		fprintf(out, " %s %" PRId64 "%s", reject_reason_names[i], d->rejects[i],
		    i + 1 < REJECT_NREASONS ? "," : "");
	if (d->rejects[REJECT_NONE] > 0)
		fprintf(out, ", other %" PRId64, d->rejects[REJECT_NONE]);
	fputc('\n', out);
	if (d->unfinished > 0)
		fprintf(out, "  unfinished  %" PRId64 " batch%s with slices not committed\n",
		    d->unfinished, d->unfinished == 1 ? "" : "es");
}

static void
status_text_state(const struct status_report *r, FILE *out)
{
	char t[40], m[40];

	fprintf(out, "  watermark   %s", status_time(r->watermark_us, t));
	if (r->watermark_us != EVENT_TIME_NONE)
		fprintf(out, " (latest event %s - %g s)", status_time(r->max_event_time_us, m),
		    r->cfg->watermark_delay);
	if (r->metrics_ok)
		fprintf(out, "\n  dedupe set  %.0f event_ids (%s, written %.1f s ago)\n",
		    r->dedupe_entries, r->metrics_path, r->metrics_age);
	else
		fprintf(out, "\n  dedupe set  unknown (%s)\n", r->metrics_path[0] == '\0' ?
		    "metrics_file is off" : "no metrics file: evstream has not run yet");
}

void
status_print_text(const struct status_report *r, FILE *out)
{
	const struct ops_config *c = r->cfg;

	fprintf(out, "evpipe status: %s\n", r->healthy ? "HEALTHY" : "STALLED");
	for (size_t i = 0; i < r->nproblems; i++)
		fprintf(out, "  problem     %s\n", r->problem[i]);
	fprintf(out, "  spool       %s: %zu pending", c->spool_dir, r->pending);
	if (r->pending > 0)
		fprintf(out, ", oldest %.1f s (%s)", r->oldest_age, r->oldest);
	fprintf(out, "; %zu quarantined; stalled after %g s\n", r->quarantined, r->stall_after);
	if (r->ckpt_ok)
		fprintf(out, "  checkpoint  %s: batch %" PRId64 ", %zu committed files remembered\n",
		    c->checkpoint_dir, r->ckpt_last_batch, r->ckpt_files);
	if (r->db_up)
		status_text_db(r, out);
	else
		fprintf(out, "  database    DOWN, %s\n", r->db_target);
	status_text_state(r, out);
}

/* --- for a script -------------------------------------------------------------------- */

/* A JSON member whose value may be unknown (NaN): null. */
static void
status_json_num(FILE *out, const char *key, double v)
{
	fputs(key, out);
	if (isnan(v))
		fputs("null", out);
	else
		fprintf(out, "%.0f", v);
}

/* A JSON string: bytes repaired as UTF-8, quotes, backslashes and controls escaped. */
static void
status_json_str(FILE *out, const char *s)
{
	char buf[SINK_FORMAT_TEXT_MAX(PATH_MAX)];
	size_t len = strlen(s), n;

	if (len > PATH_MAX)
		len = PATH_MAX;
	n = sink_format_utf8(buf, s, len);
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void
status_json_time(FILE *out, int64_t us)
{
	char t[32];

	if (us == EVENT_TIME_NONE) {
		fputs("null", out);
		return;
	}
	util_format_time(us, t);
	t[10] = 'T';
	fprintf(out, "\"%sZ\"", t);
}

static void
status_json_db(const struct status_report *r, FILE *out)
{
	const struct sink_summary *d = &r->db;

	fputs("\"database\":{\"up\":true,\"target\":", out);
	status_json_str(out, r->db_target);
	fprintf(out, ",\"error\":null,\"batches\":%" PRId64 ",\"last_batch\":%" PRId64
	    ",\"last_batch_at\":", d->batches, d->last_batch);
	status_json_time(out, d->last_commit_us);
	if (d->last_commit_us == EVENT_TIME_NONE)
		fputs(",\"last_batch_age_seconds\":null", out);
	else
		fprintf(out, ",\"last_batch_age_seconds\":%.3f",
		    (double)(d->now_us - d->last_commit_us) / 1e6);
	fprintf(out, ",\"files_committed\":%" PRId64 ",\"rows\":{\"read\":%" PRId64 ",\"written\":%"
	    PRId64 ",\"duplicate\":%" PRId64 ",\"late\":%" PRId64 ",\"invalid\":%" PRId64
	    ",\"conflict\":%" PRId64 "},\"written_last_minute\":%" PRId64
	    ",\"written_last_hour\":%" PRId64 ",\"rejects_by_reason\":{", d->files, d->rows_read,
	    d->written, d->duplicates, d->late, d->invalid, d->conflict, d->written_last_minute,
	    d->written_last_hour);
	for (int i = REJECT_NONE + 1; i < REJECT_NREASONS; i++)
		fprintf(out, "%s\"%s\":%" PRId64, i > 1 ? "," : "", reject_reason_names[i],
		    d->rejects[i]);
	if (d->rejects[REJECT_NONE] > 0)
		fprintf(out, ",\"other\":%" PRId64, d->rejects[REJECT_NONE]);
	fprintf(out, "},\"recent\":{\"batches\":%ld,\"rows\":%" PRId64 ",\"late_or_future\":%"
	    PRId64 "},\"unfinished_batches\":%" PRId64 "}", r->cfg->reject_alarm_batches,
	    r->recent_rows, r->recent_late, r->db.unfinished);
}

static void
status_json_down(const struct status_report *r, FILE *out)
{
	fputs("\"database\":{\"up\":false,\"target\":", out);
	status_json_str(out, r->db_target);
	fputs(",\"error\":", out);
	status_json_str(out, r->db_error);
	fputc('}', out);
}

static void
status_json_sources(const struct status_report *r, FILE *out)
{
	const struct ops_config *c = r->cfg;

	fputs("\"spool\":{\"dir\":", out);
	status_json_str(out, c->spool_dir);
	fprintf(out, ",\"readable\":%s,\"files_pending\":%zu,\"oldest_pending_file\":",
	    r->spool_ok ? "true" : "false", r->pending);
	if (r->pending > 0)
		status_json_str(out, r->oldest);
	else
		fputs("null", out);
	fprintf(out, ",\"oldest_pending_age_seconds\":%.3f,\"quarantined\":%zu},"
	    "\"checkpoint\":{\"dir\":", r->oldest_age, r->quarantined);
	status_json_str(out, c->checkpoint_dir);
	if (r->ckpt_ok)
		fprintf(out, ",\"readable\":true,\"last_batch\":%" PRId64 ",\"files_remembered\":%zu},",
		    r->ckpt_last_batch, r->ckpt_files);
	else
		fputs(",\"readable\":false,\"last_batch\":null,\"files_remembered\":null},", out);
	if (r->db_up)
		status_json_db(r, out);
	else
		status_json_down(r, out);
}

void
status_print_json(const struct status_report *r, FILE *out)
{
	fprintf(out, "{\"healthy\":%s,\"problems\":[", r->healthy ? "true" : "false");
	for (size_t i = 0; i < r->nproblems; i++) {
		fputs(i > 0 ? "," : "", out);
		status_json_str(out, r->problem[i]);
	}
	fprintf(out, "],\"stall_after_seconds\":%g,", r->stall_after);
	status_json_sources(r, out);
	fputs(",\"max_event_time\":", out);
	status_json_time(out, r->max_event_time_us);
	fputs(",\"watermark\":", out);
	status_json_time(out, r->watermark_us);
	status_json_num(out, ",\"copy_sessions\":", r->sessions_want);
	status_json_num(out, ",\"sessions_connected\":", r->sessions);
	status_json_num(out, ",\"dedupe_entries\":", r->dedupe_entries);
	fputs(",\"metrics\":{\"file\":", out);
	if (r->metrics_path[0] != '\0')
		status_json_str(out, r->metrics_path);
	else
		fputs("null", out);
	if (r->metrics_ok)
		fprintf(out, ",\"age_seconds\":%.3f}}\n", r->metrics_age);
	else
		fputs(",\"age_seconds\":null}}\n", out);
}
