/*
 * test_metrics — the textfile says exactly what the batches counted, in the
 * Prometheus text format: every sample after its HELP and TYPE, outcomes that
 * add up to the rows read, a cumulative histogram whose +Inf bucket is the
 * count, NaN for "no watermark yet"; the file is written whole and reads back.
 */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "metrics.h"

/* A batch of two files: 10 rows, 2 invalid (price, event_id), 1 late, 1 duplicate,
 * 6 sent, of which the database already held 1. */
static void
fill_batch(struct batch *b)
{
	batch_init(b);
	CHECK(batch_add_file(b, "a.csv") == 0 && batch_add_file(b, "b.csv") == 0, "files");
	CHECK(batch_add_reject(b, 0, 2, REJECT_PRICE, "x", 1) == 0, "reject");
	CHECK(batch_add_reject(b, 0, 3, REJECT_LATE, "y", 1) == 0, "reject");
	CHECK(batch_add_reject(b, 1, 4, REJECT_EVENT_ID, "z", 1) == 0, "reject");
	b->n.rows = 10;
	b->n.rejected = 2;
	b->n.valid = 8;
	b->n.late = 1;
	b->n.dup = 1;
	b->n.written = 5;
}

static const char *
render(struct metrics *m, const struct metrics_now *now)
{
	const char *text = NULL;
	size_t len = 0;

	CHECK(metrics_render(m, now, &text, &len) == 0, "render");
	CHECK(text != NULL && strlen(text) == len, "length %zu", len);
	return text ? text : "";
}

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static void
test_batch_counted_exactly(void)
{
	struct metrics m;
	struct metrics_now now = { .copy_bytes = 4096, .reconnects = 2, .database_up = 1,
	    .files_pending = 3,
	    .lag_seconds = 12.5, .watermark_us = 1767225600000000, .max_event_time_us =
	    1767225900000000, .dedupe_entries = 914, .last_batch = 41 };
	struct batch b;
	const char *t;

	metrics_init(&m, 1700000000.25);
	fill_batch(&b);
	metrics_add_batch(&m, &b, 0.02, 1700000100.5);
	metrics_add_quarantined(&m);
	t = render(&m, &now);
	static const char *const want[] = {
		"evpipe_start_time_seconds 1700000000.250000",
		"evpipe_batches_total 1",
		"evpipe_files_committed_total 2",
		"evpipe_files_quarantined_total 1",
		"evpipe_rows_read_total 10",
		"evpipe_rows_total{outcome=\"written\"} 5",
		"evpipe_rows_total{outcome=\"duplicate\"} 1",
		"evpipe_rows_total{outcome=\"late\"} 1",
		"evpipe_rows_total{outcome=\"invalid\"} 2",
		"evpipe_rows_total{outcome=\"conflict\"} 1",
		"evpipe_rows_invalid_total{reason=\"price\"} 1",
		"evpipe_rows_invalid_total{reason=\"event_id\"} 1",
		"evpipe_rows_invalid_total{reason=\"user_id\"} 0",
		"evpipe_copy_bytes_total 4096",
		"evpipe_database_reconnects_total 2",
		"evpipe_database_up 1",
		"evpipe_database_down_since_seconds 0",
		"evpipe_files_pending 3",
		"evpipe_lag_seconds 12.500000",
		"evpipe_watermark_seconds 1767225600",
		"evpipe_max_event_time_seconds 1767225900",
		"evpipe_dedupe_entries 914",
		"evpipe_last_batch_id 41",
		"evpipe_last_batch_timestamp_seconds 1700000100.500000",
		"# TYPE evpipe_rows_total counter",
		"# TYPE evpipe_batch_duration_seconds histogram",
		"# TYPE evpipe_lag_seconds gauge",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		CHECK(has_line(t, want[i]), "missing line '%s'", want[i]);
	CHECK(strstr(t, "reason=\"late\"") == NULL && strstr(t, "reason=\"none\"") == NULL,
	    "late is an outcome, not an invalid reason");
	batch_free(&b);
	metrics_free(&m);
}

/* Every sample's family has HELP then TYPE before it; counters end in _total. */
static void
test_every_sample_is_declared(void)
{
	struct metrics m;
	struct metrics_now now = { .watermark_us = EVENT_TIME_NONE,
	    .max_event_time_us = EVENT_TIME_NONE };
	char *copy, *save = NULL, family[128] = "", type[32] = "";
	int samples = 0;

	metrics_init(&m, 1);
	copy = strdup(render(&m, &now));
	for (char *l = strtok_r(copy, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
		char name[128];
		if (sscanf(l, "# HELP %127s", family) == 1) {
			type[0] = '\0';
			continue;
		}
		if (sscanf(l, "# TYPE %127s %31s", name, type) == 2) {
			CHECK(strcmp(name, family) == 0, "TYPE %s after HELP %s", name, family);
			CHECK(strcmp(type, "counter") != 0 || strstr(name, "_total") != NULL,
			    "counter %s without _total", name);
			continue;
		}
		samples++;
		CHECK(strncmp(l, family, strlen(family)) == 0 && type[0] != '\0',
		    "sample '%s' outside its family %s", l, family);
		CHECK(strncmp(l, "evpipe_", 7) == 0, "prefix: %s", l);
	}
	CHECK(samples >= 30, "%d samples", samples);
	CHECK(has_line(render(&m, &now), "evpipe_watermark_seconds NaN"), "no watermark: NaN");
	CHECK(has_line(render(&m, &now), "evpipe_last_batch_timestamp_seconds 0"), "no batch: 0");
	now.database_down_since = 1767225600.5;	/* database_up stays 0: an outage */
	CHECK(has_line(render(&m, &now), "evpipe_database_up 0") && has_line(render(&m, &now),
	    "evpipe_database_down_since_seconds 1767225600.500000"), "database down");
	free(copy);
	metrics_free(&m);
}

static void
test_histogram_is_cumulative(void)
{
	static const double secs[] = { 0.001, 0.005, 0.0051, 61 };
	struct metrics m;
	struct metrics_now now = { .watermark_us = EVENT_TIME_NONE,
	    .max_event_time_us = EVENT_TIME_NONE };
	struct batch b;
	const char *t;

	metrics_init(&m, 0);
	batch_init(&b);
	for (size_t i = 0; i < 4; i++)
		metrics_add_batch(&m, &b, secs[i], 1);
	t = render(&m, &now);
	/* le is inclusive: 0.005 falls into the 0.005 bucket. */
	CHECK(has_line(t, "evpipe_batch_duration_seconds_bucket{le=\"0.005\"} 2"), "%s", t);
	CHECK(has_line(t, "evpipe_batch_duration_seconds_bucket{le=\"0.01\"} 3"), "0.01");
	CHECK(has_line(t, "evpipe_batch_duration_seconds_bucket{le=\"60\"} 3"), "60");
	CHECK(has_line(t, "evpipe_batch_duration_seconds_bucket{le=\"+Inf\"} 4"), "+Inf");
	CHECK(has_line(t, "evpipe_batch_duration_seconds_count 4"), "count");
	CHECK(has_line(t, "evpipe_batch_duration_seconds_sum 61.011100"), "sum");
	CHECK(strstr(t, "le=\"0.025\"} 3\nevpipe_batch_duration_seconds_bucket{le=\"0.05\"} 3")
	    != NULL, "buckets in order");
	batch_free(&b);
	metrics_free(&m);
}

static void
test_path_rules(void)
{
	char out[64];

	CHECK(metrics_path("/ck", "evpipe.prom", out, sizeof(out)) == 0 &&
	    strcmp(out, "/ck/evpipe.prom") == 0, "relative: %s", out);
	CHECK(metrics_path("/ck", "/var/lib/node/evpipe.prom", out, sizeof(out)) == 0 &&
	    strcmp(out, "/var/lib/node/evpipe.prom") == 0, "absolute: %s", out);
	CHECK(metrics_path("/ck", "", out, sizeof(out)) == 1, "empty is off");
	errno = 0;
	CHECK(metrics_path("/a-directory-name-long-enough-to-overflow", "a-file-name-as-well.prom",
	    out, sizeof(out)) == -1 && errno == ENAMETOOLONG, "too long");
}

static void
test_written_whole_and_read_back(void)
{
	char *dir = check_tmpdir(), path[4200], tmp[4200];
	struct metrics m;
	struct metrics_now now = { .watermark_us = EVENT_TIME_NONE,
	    .max_event_time_us = EVENT_TIME_NONE, .dedupe_entries = 77 };
	struct stat st;
	/* Read back in one pass, like status. */
	const char *names[] = { "evpipe_dedupe_entries", "evpipe_watermark_seconds",
	    "evpipe_dedupe", "evpipe_rows_total" };
	double v[4] = { 0 };
	int found[4];

	metrics_init(&m, 5);
	snprintf(path, sizeof(path), "%s/evpipe.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s/.evpipe.prom.tmp", dir);
	CHECK(metrics_write(&m, &now, path) == 0, "write: %s", strerror(errno));
	CHECK(stat(path, &st) == 0 && (size_t)st.st_size == m.len, "size %lld", (long long)st.st_size);
	CHECK(access(tmp, F_OK) < 0, "no temporary left");
	CHECK(metrics_read(path, 4, names, v, found) == 0, "read: %s", strerror(errno));
	CHECK(found[0] && v[0] == 77, "read %g", v[0]);
	CHECK(found[1] && isnan(v[1]), "NaN");
	CHECK(!found[2], "a prefix is not a name");
	CHECK(!found[3], "labelled samples not read");
	now.dedupe_entries = 78;
	CHECK(metrics_write(&m, &now, path) == 0 && metrics_read(path, 1, names, v, found) == 0 &&
	    found[0] && v[0] == 78, "rewritten: %g", v[0]);
	snprintf(tmp, sizeof(tmp), "%s/missing.prom", dir);
	errno = 0;
	CHECK(metrics_read(tmp, 1, names, v, found) == -1 && errno == ENOENT, "missing file");
	snprintf(tmp, sizeof(tmp), "%s/no/such/dir/x.prom", dir);
	CHECK(metrics_write(&m, &now, tmp) == -1, "unwritable directory fails");
	metrics_free(&m);
	check_rm_rf(dir);
}

int
main(void)
{
	RUN(test_batch_counted_exactly);
	RUN(test_every_sample_is_declared);
	RUN(test_histogram_is_cumulative);
	RUN(test_path_rules);
	RUN(test_written_whole_and_read_back);
	return check_exit();
}
