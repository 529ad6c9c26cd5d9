/*
 * sink_status — what `evstream status` asks the database (include/sink.h): the
 * totals, read in one read-only snapshot under a short statement_timeout of their
 * own (a check that hangs is worse than one that fails), and the recent late share.
 */
#include "sink_int.h"

#include <string.h>

#include "sink_format.h"

#define SINK_STATUS_TIMEOUT "10s"	/* statement_timeout of the status queries */
#define SINK_STATUS_SECONDS 10.0	/* the same, for the client's own bound */

static int
sink_summary_batches(struct sink *s, struct sink_summary *out)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8,
	    SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8,
	    SINK_OID_INT8, SINK_OID_INT8, SINK_OID_TSTZ, SINK_OID_TSTZ, SINK_OID_TSTZ,
	    SINK_OID_INT8, SINK_OID_TSTZ };
	int64_t *const dst[] = { &out->batches, &out->last_batch, &out->files, &out->rows_read,
	    &out->written, &out->duplicates, &out->late, &out->invalid, &out->conflict,
	    &out->written_last_minute, &out->written_last_hour };
	PGresult *res;

	if ((res = sink_query(s, "SELECT evstream_batches", s->sql[SQL_SUMMARY], 0, NULL, types,
	    16)) == NULL)
		return -1;
	for (int i = 0; i < 11; i++)
		*dst[i] = sink_get_int8(res, 0, i);
	out->last_commit_us = sink_get_time(res, 0, 11);
	out->max_event_time_us = sink_get_time(res, 0, 12);
	out->now_us = sink_get_time(res, 0, 13);
	out->unfinished = sink_get_int8(res, 0, 14);
	out->unfinished_since_us = sink_get_time(res, 0, 15);
	PQclear(res);
	return 0;
}

/* Reasons are matched by name; a name this build does not know counts in [REJECT_NONE]. */
static int
sink_summary_rejects(struct sink *s, struct sink_summary *out)
{
	static const Oid types[] = { SINK_OID_TEXT, SINK_OID_INT8 };
	PGresult *res;
	int r;

	if ((res = sink_query(s, "SELECT event_rejects", s->sql[SQL_REJECT_REASONS], 0, NULL,
	    types, 2)) == NULL)
		return -1;
	for (int i = 0; i < PQntuples(res); i++) {
		for (r = REJECT_NREASONS - 1; r > REJECT_NONE; r--)
			if (strcmp(PQgetvalue(res, i, 0), reject_reason_names[r]) == 0)
				break;
		out->rejects[r] += sink_get_int8(res, i, 1);
	}
	PQclear(res);
	return 0;
}

int
sink_summary(struct sink *s, struct sink_summary *out)
{
	double limit;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->last_commit_us = out->max_event_time_us = out->now_us = EVENT_TIME_NONE;
	out->unfinished_since_us = EVENT_TIME_NONE;
	if (sink_ready(s) < 0)
		return -1;
	/* One snapshot for both queries; a check that hangs is worse than one that fails. */
	limit = s->limit;
	s->limit = SINK_STATUS_SECONDS + SINK_GRACE;
	if (sink_cmd(s, "BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0 ||
	    sink_cmd(s, "SET", "SET LOCAL statement_timeout = '" SINK_STATUS_TIMEOUT "'") < 0 ||
	    sink_summary_batches(s, out) < 0 || sink_summary_rejects(s, out) < 0 ||
	    sink_cmd(s, "COMMIT", "COMMIT") < 0) {
		sink_abort(s);
		rc = -1;
	}
	s->limit = limit;
	return rc;
}
int
sink_recent_late(struct sink *s, long nbatches, int64_t *rows, int64_t *late)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_INT8 };
	char num[SINK_FORMAT_INT_MAX + 1];
	const char *params[1] = { num };
	PGresult *res;

	*rows = *late = 0;
	num[sink_format_int(num, nbatches)] = '\0';
	if ((res = sink_read_query(s, "SELECT evstream_batches", SQL_RECENT_LATE, 1, params,
	    types, 2)) == NULL)
		return -1;
	*rows = sink_get_int8(res, 0, 0);
	*late = sink_get_int8(res, 0, 1);
	PQclear(res);
	return 0;
}
