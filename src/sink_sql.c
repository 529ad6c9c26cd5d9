/*
 * sink_sql — every statement that names the sink's tables, in one table: {s}
 * stands for the schema, quoted, and is expanded once per sink, on its first
 * connect (the quoting needs a connection).  The session's set-up statements,
 * which name no table of ours, are in sink_conn.c (sink_session).
 */
#include "sink_int.h"

#include <stdlib.h>
#include <string.h>

/* In the order sink_slice_event writes an event's binary row (sink.c). */
#define SINK_EVENT_COLS	"event_id, user_id, event_type, product_id, price, event_time"

#define SINK_REJECT_COLS "batch_id, file, line_no, reason, raw_line"

static const char *const sink_sql_tmpl[SQL_N] = {
	[SQL_CHECK_TABLES] = "SELECT t FROM unnest(ARRAY['events', 'event_rejects', "
	    "'evstream_batches', 'evstream_files', 'evstream_slices']) AS t WHERE to_regclass(quote_ident($1) || '.' || "
	    "quote_ident(t)) IS NULL",
	[SQL_BATCH_COMMITTED] = "SELECT 1 FROM {s}.evstream_batches WHERE batch_id = $1",
	[SQL_COPY_EVENTS] = "COPY {s}.events (" SINK_EVENT_COLS ") FROM STDIN (FORMAT binary)",
	/* No constraints but NOT NULL: it must take the duplicates the real table refuses. */
	[SQL_STAGE_CREATE] = "CREATE TEMP TABLE IF NOT EXISTS evstream_stage "
	    "(LIKE {s}.events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS",
	[SQL_COPY_STAGE] = "COPY pg_temp.evstream_stage (" SINK_EVENT_COLS ") FROM STDIN "
	    "(FORMAT binary)",
	[SQL_STAGE_MERGE] = "INSERT INTO {s}.events (" SINK_EVENT_COLS ") SELECT " SINK_EVENT_COLS
	    " FROM pg_temp.evstream_stage ON CONFLICT (event_id) DO NOTHING",
	[SQL_COPY_REJECTS] = "COPY {s}.event_rejects (" SINK_REJECT_COLS ") FROM STDIN",
	[SQL_REJECT_STAGE_CREATE] = "CREATE TEMP TABLE IF NOT EXISTS evstream_reject_stage "
	    "(batch_id int8, file text, line_no int8, reason text, raw_line text) "
	    "ON COMMIT DELETE ROWS",
	[SQL_COPY_REJECT_STAGE] = "COPY pg_temp.evstream_reject_stage (" SINK_REJECT_COLS ") "
	    "FROM STDIN",
	[SQL_REJECT_STAGE_MERGE] = "INSERT INTO {s}.event_rejects (" SINK_REJECT_COLS ") SELECT "
	    SINK_REJECT_COLS " FROM pg_temp.evstream_reject_stage ON CONFLICT (file, line_no) "
	    "DO NOTHING",
	[SQL_BATCH_INSERT] = "INSERT INTO {s}.evstream_batches (batch_id, files, rows_read, valid, "
	    "late, duplicates, rejected, written, max_event_time, watermark) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
	[SQL_LAST_BATCH] = "SELECT batch_id, max_event_time FROM {s}.evstream_batches "
	    "ORDER BY batch_id DESC LIMIT 1",
	/* unnest, not the array itself: rows need no array-literal parser. */
	[SQL_BATCHES_AFTER] = "SELECT b.batch_id, b.max_event_time, f.name "
	    "FROM {s}.evstream_batches b LEFT JOIN LATERAL unnest(b.files) WITH ORDINALITY "
	    "AS f(name, ord) ON true WHERE b.batch_id > $1 AND b.batch_id < coalesce((SELECT "
	    "min(batch_id) FROM {s}.evstream_slices), 9223372036854775807) "
	    "ORDER BY b.batch_id, f.ord",
	[SQL_IDS_CURSOR] = "DECLARE evstream_ids NO SCROLL CURSOR FOR "
	    "SELECT event_id, event_time FROM {s}.events WHERE event_time >= $1",
	/* For `evstream status`: one pass over the batch log (one row per batch). */
	[SQL_SUMMARY] = "SELECT count(*)::int8, coalesce(max(batch_id), 0)::int8, "
	    "coalesce(sum(cardinality(files)), 0)::int8, coalesce(sum(rows_read), 0)::int8, "
	    "coalesce(sum(written), 0)::int8, coalesce(sum(duplicates), 0)::int8, "
	    "coalesce(sum(late), 0)::int8, coalesce(sum(rejected), 0)::int8, "
	    "coalesce(sum(valid - late - duplicates - written), 0)::int8, "
	    "coalesce(sum(written) FILTER (WHERE committed_at > now() - interval '1 minute'), 0)"
	    "::int8, coalesce(sum(written) FILTER (WHERE committed_at > now() - "
	    "interval '1 hour'), 0)::int8, max(committed_at), max(max_event_time), now(), "
	    "(SELECT count(DISTINCT batch_id) FROM {s}.evstream_slices)::int8, "
	    "(SELECT min(b.committed_at) FROM {s}.evstream_batches b WHERE b.batch_id IN "
	    "(SELECT batch_id FROM {s}.evstream_slices)) FROM {s}.evstream_batches",
	[SQL_REJECT_REASONS] = "SELECT reason, count(*)::int8 FROM {s}.event_rejects "
	    "GROUP BY reason",
	/*
	 * evstream_files' key answers; the batch log's scan runs only when it does not
	 * (a file an evstream from before evstream_files committed after the migration).
	 */
	[SQL_FILE_BATCH] = "SELECT batch_id, size, mtime_ns FROM {s}.evstream_files WHERE file = $1 "
	    "UNION ALL (SELECT batch_id, NULL, NULL FROM {s}.evstream_batches "
	    "WHERE $1 = ANY (files) ORDER BY batch_id LIMIT 1) LIMIT 1",
	/* The primary key's index hands over the last $1 batches without a sort. */
	[SQL_RECENT_LATE] = "SELECT coalesce(sum(rows_read), 0)::int8, coalesce(sum(late), 0)::int8 "
	    "FROM (SELECT rows_read, late FROM {s}.evstream_batches ORDER BY batch_id DESC "
	    "LIMIT $1) r",
	/*
	 * Claims the files unless the batch id is committed already (then 0 rows), so the
	 * one statement is also the replay check.  Array order is name order in every
	 * evstream, so two claims never wait for each other in a cycle.
	 */
	[SQL_CLAIM_FILES] = "INSERT INTO {s}.evstream_files (file, batch_id, size, mtime_ns) "
	    "SELECT u.f, $2::int8, u.sz, u.mt FROM unnest($1::text[], $3::int8[], $4::int8[]) "
	    "AS u(f, sz, mt) WHERE NOT EXISTS "
	    "(SELECT 1 FROM {s}.evstream_batches WHERE batch_id = $2::int8)",
	[SQL_FILE_OWNERS] = "SELECT file, batch_id FROM {s}.evstream_files "
	    "WHERE file = ANY ($1::text[])",
	/* sql/01_init.sql's backfill, for some files: reads the whole batch log, so rare. */
	[SQL_CLAIM_LISTED] = "INSERT INTO {s}.evstream_files (file, batch_id) "
	    "SELECT f, min(b.batch_id) FROM {s}.evstream_batches b, unnest(b.files) AS f "
	    "WHERE f = ANY ($1::text[]) GROUP BY f ON CONFLICT (file) DO NOTHING "
	    "RETURNING file, batch_id",
	/* Slice k of the array is slice k (1-based ordinality: slice 0 needs no row). */
	[SQL_SLICES_INSERT] = "INSERT INTO {s}.evstream_slices (batch_id, slice, nslices, written, "
	    "future_bound) SELECT $1, u.k, $2, u.w, $4 FROM unnest($3::int8[]) WITH ORDINALITY "
	    "AS u(w, k)",
	[SQL_SLICE_DONE] = "DELETE FROM {s}.evstream_slices WHERE batch_id = $1 AND slice = $2 "
	    "RETURNING written",
	[SQL_BATCH_WRITTEN] = "UPDATE {s}.evstream_batches SET written = written + $2 "
	    "WHERE batch_id = $1",
	[SQL_UNFINISHED] = "SELECT s.batch_id, s.slice::int8, s.nslices::int8, s.future_bound, "
	    "b.watermark, b.max_event_time FROM {s}.evstream_slices s "
	    "JOIN {s}.evstream_batches b USING (batch_id) ORDER BY s.batch_id, s.slice",
	[SQL_BATCH_FILES] = "SELECT f.name, e.size, e.mtime_ns FROM {s}.evstream_batches b "
	    "CROSS JOIN LATERAL unnest(b.files) WITH ORDINALITY AS f(name, ord) "
	    "LEFT JOIN {s}.evstream_files e ON e.file = f.name AND e.batch_id = b.batch_id "
	    "WHERE b.batch_id = $1 ORDER BY f.ord",
};

/* Expand "{s}" in the statements; the quoting needs a connection (its encoding). */
enum sink_status
sink_sql_build(struct sink *s)
{
	char *q, *out, *p;
	size_t qlen, cap;

	if (s->sql[0] != NULL)
		return SINK_OK;
	if ((q = PQescapeIdentifier(s->conn, s->schema, strlen(s->schema))) == NULL) {
		sink_set_error(s, "", "schema name: %s", PQerrorMessage(s->conn));
		return SINK_FATAL;
	}
	qlen = strlen(q);
	for (int i = 0; i < SQL_N; i++) {
		cap = strlen(sink_sql_tmpl[i]) * (qlen + 1) + 1;	/* as if every byte were {s} */
		if ((out = p = malloc(cap)) == NULL) {
			sink_set_error(s, "", "connect: out of memory");
			PQfreemem(q);
			/* All or none: sql[0] set means every statement is there. */
			while (i-- > 0) {
				free(s->sql[i]);
				s->sql[i] = NULL;
			}
			return SINK_RETRY;
		}
		for (const char *t = sink_sql_tmpl[i]; *t; )
			if (strncmp(t, "{s}", 3) == 0) {
				memcpy(p, q, qlen);
				p += qlen;
				t += 3;
			} else
				*p++ = *t++;
		*p = '\0';
		s->sql[i] = out;
	}
	PQfreemem(q);
	return SINK_OK;
}
