/*
 * sink — the write path, what evstream calls for each batch (include/sink.h):
 * each slice's events COPY, in binary and streamed through one reused buffer,
 * the stage and its INSERT ... ON CONFLICT, the rejects, the file claims, the
 * batch row, the slices' rows and the commit order.  The session it writes
 * through is sink_conn.c and sink_exec.c; what the files share: src/sink_int.h.
 */
#include "sink_int.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "event.h"
#include "log.h"
#include "sink_format.h"

#define SINK_CHUNK	(1024 * 1024)	/* bytes per PQputCopyData: big enough to amortise the call */
/* Bytes per events COPY statement (~4 M rows, well under a minute on the bench): a
 * batch of any size is many statements, each far inside statement_timeout. */
#define SINK_COPY_MAX	((size_t)256 * 1024 * 1024)

/*
 * One event in binary COPY: a field count, then six length-prefixed values (uuid,
 * int4, text, int4, numeric, timestamptz: SINK_EVENT_COLS in sink_sql.c, in its
 * order); the first row carries the header, the last the trailer.  Binary,
 * because the server then parses no text: its recv functions take the values as
 * they are stored (see bench/results.md).
 */
#define SINK_EVENT_NFIELDS	6
#define SINK_EVENT_ROW_MAX (SINK_FORMAT_BIN_HEADER_LEN + 2 + SINK_EVENT_NFIELDS * 4 + 16 + 4 + \
	8 + 4 + SINK_FORMAT_NUMERIC_MAX + 8 + 2)

/* --- COPY ---------------------------------------------------------------------------- */

static int
sink_grow(struct sink *s, size_t need)
{
	if (ALLOC_GROW(s->buf, need, s->cap, SINK_CHUNK + SINK_CHUNK / 4) < 0) {
		s->nomem = 1;
		return -1;
	}
	return 0;
}

/*
 * Hand the buffer to libpq in pieces of at most a chunk (one reject's raw line can
 * be bigger), without waiting for the server: the reader parses the next chunk
 * while this one goes out.  libpq queues all it is given, so a chunk it still
 * holds is sent first: libpq's queue stays below a chunk, and that wait is the
 * only one, during which the other sessions' queues are sent too (sink_wait).
 */
static int
sink_flush(struct sink *s)
{
	struct sink_clock w = sink_clock_start("COPY data");
	size_t off = 0, n;
	int rc = 0;

	for (; off < s->len && rc == 0; off += n) {
		n = s->len - off < SINK_CHUNK ? s->len - off : SINK_CHUNK;
		if ((s->pending && sink_send_all(s, &w) < 0) ||
		    PQputCopyData(s->conn, s->buf + off, (int)n) != 1 ||
		    (s->pending = PQflush(s->conn)) < 0)
			rc = -1;
		else
			s->stats.copy_bytes += n;
	}
	s->len = 0;
	/* The server may have refused the COPY already (a unique key): its answer says so. */
	if (rc < 0 && !s->broken) {
		PGresult *res = sink_result(s, &w);
		sink_fail(s, "COPY events", res);
		PQclear(res);
	}
	return rc;
}

/* Room for `need` more bytes, sending what the buffer holds once it passes a chunk. */
static char *
sink_reserve(struct sink *s, size_t need)
{
	if (s->len > 0 && s->len + need > SINK_CHUNK && sink_flush(s) < 0)
		return NULL;
	if (sink_grow(s, s->len + need) < 0)
		return NULL;
	return s->buf + s->len;
}

/* A value's length prefix, then the value. */
static char *
sink_bin_field(char *p, const void *v, size_t len)
{
	p += sink_format_be32(p, (uint32_t)len);
	memcpy(p, v, len);
	return p + len;
}

/* A reserve that failed says why: the send's error is set, running out of memory is not. */
static int
sink_reserve_failed(struct sink *s, const char *what)
{
	if (s->nomem)
		sink_set_error(s, "", "%s: out of memory", what);
	return -1;
}

static int
sink_row_reject(struct sink *s, const struct batch *b, size_t i)
{
	const struct reject *r = &b->rej[i];
	const char *file = b->files[r->file], *reason = reject_reason_names[r->reason];
	size_t flen = strlen(file), rlen = strlen(reason);
	char *p, *start;

	p = start = sink_reserve(s, 2 * SINK_FORMAT_INT_MAX + SINK_FORMAT_TEXT_MAX(flen) + rlen +
	    SINK_FORMAT_TEXT_MAX((size_t)r->raw_len) + 5);
	if (p == NULL)
		return -1;
	p += sink_format_int(p, b->id);
	*p++ = '\t';
	p += sink_format_copy_text(p, file, flen);
	*p++ = '\t';
	p += sink_format_int(p, r->line);
	*p++ = '\t';
	memcpy(p, reason, rlen);
	p += rlen;
	*p++ = '\t';
	p += sink_format_copy_text(p, batch_reject_raw(b, r), r->raw_len);
	*p++ = '\n';
	s->len += (size_t)(p - start);
	return 0;
}

void
sink_set_test_hook(struct sink *s, sink_hook_fn fn, void *arg)
{
	s->hook = fn;
	s->hook_arg = arg;
}

/* Start a COPY ... FROM STDIN; its data goes through s->buf. */
static int
sink_copy_start(struct sink *s, const char *what, const char *sql)
{
	PGresult *res = sink_exec(s, what, sql, 0, NULL, 0);

	if (PQresultStatus(res) != PGRES_COPY_IN) {
		sink_fail(s, what, res);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	s->len = 0;
	s->nomem = 0;
	return 0;
}

/*
 * End the COPY in hand.  sent: all its data is in s->buf or gone out; otherwise
 * an error message makes the server abort the COPY instead of committing a part.
 * *rows is what the server says it stored.
 */
static int
sink_copy_end(struct sink *s, const char *what, int sent, int64_t *rows)
{
	struct sink_clock w;
	PGresult *res = NULL;

	sent = sent && sink_flush(s) == 0;
	w = sink_clock_start(what);
	if (!s->broken && PQputCopyEnd(s->conn, sent ? NULL : "evstream: COPY data incomplete") >= 0 &&
	    sink_send_all(s, &w) == 0)
		res = sink_result(s, &w);
	if (sent && PQresultStatus(res) == PGRES_COMMAND_OK) {
		*rows = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		return 0;
	}
	if (s->nomem)
		sink_set_error(s, "", "%s: out of memory", what);
	else if (s->err[0] == '\0' || res != NULL)
		sink_fail(s, what, res);
	PQclear(res);
	return -1;
}

/* --- one batch through slices ------------------------------------------------------- */

/* Open the slice's events COPY: into events, or (merge) into the stage beside it. */
static int
sink_events_open(struct sink *s)
{
	char *p;

	if (sink_copy_start(s, "COPY events", s->sql[s->merge ? SQL_COPY_STAGE :
	    SQL_COPY_EVENTS]) < 0)
		return -1;
	if ((p = sink_reserve(s, SINK_FORMAT_BIN_HEADER_LEN)) == NULL)
		return sink_reserve_failed(s, "COPY events");
	s->len += sink_format_bin_header(p);
	s->copying = 1;
	s->copy_bytes = 0;
	return 0;
}

/* Close the events COPY; what it stored counts towards the slice's written rows. */
static int
sink_events_close(struct sink *s)
{
	int64_t rows;
	char *p;
	int sent;

	if (!s->copying)
		return 0;
	s->copying = 0;
	if (s->hook != NULL) {
		(void)sink_flush(s);	/* every row is at the server: a failure shows below */
		s->hook(s->hook_arg, "inside_copy");
	}
	if ((sent = (p = sink_reserve(s, 2)) != NULL))
		s->len += sink_format_be16(p, 0xffff);	/* trailer: field count -1 */
	if (sink_copy_end(s, "COPY events", sent, &rows) < 0)
		return -1;
	if (!s->merge)
		s->written += rows;
	return 0;
}

int
sink_slice_event(struct sink *s, const struct event *e)
{
	const char *type;
	char *p, *start;
	size_t n;

	if (e->type > EVENT_PURCHASE) {	/* the formatter trusts it: a bug upstream */
		sink_set_error(s, "", "batch %lld: an event has type %u", (long long)s->batch_id,
		    e->type);
		s->malformed = 1;
		return -1;
	}
	type = event_type_names[e->type];
	/* One statement per SINK_COPY_MAX bytes: statement_timeout bounds a COPY, not a batch. */
	if (s->copy_bytes >= SINK_COPY_MAX && (sink_events_close(s) < 0 || sink_events_open(s) < 0))
		return -1;
	if ((p = start = sink_reserve(s, SINK_EVENT_ROW_MAX)) == NULL)
		return sink_reserve_failed(s, "COPY events");
	p += sink_format_be16(p, SINK_EVENT_NFIELDS);
	p = sink_bin_field(p, e->id, 16);
	p += sink_format_be32(p, 4);
	p += sink_format_be32(p, (uint32_t)e->user_id);
	p = sink_bin_field(p, type, strlen(type));
	p += sink_format_be32(p, 4);
	p += sink_format_be32(p, (uint32_t)e->product_id);
	n = sink_format_numeric_cents(p + 4, e->price_cents);	/* its length goes first */
	p += sink_format_be32(p, (uint32_t)n);
	p += n;
	p += sink_format_be32(p, 8);
	p += sink_format_bin_time(p, e->time_us);
	s->len += (size_t)(p - start);
	s->copy_bytes += (size_t)(p - start);
	return 0;
}

/* Indices the reject formatter trusts; a bad one is a bug upstream, and would be one forever. */
static int
sink_check_rejects(struct sink *s, const struct batch *b)
{
	for (size_t i = 0; i < b->nrej; i++) {
		const struct reject *r = &b->rej[i];
		if (r->file >= b->nfiles || (unsigned)r->reason >= REJECT_NREASONS ||
		    r->raw_off + r->raw_len > b->textlen) {
			sink_set_error(s, "", "batch %lld: reject %zu is malformed", (long long)b->id, i);
			s->malformed = 1;
			return -1;
		}
	}
	return 0;
}

/* The rejects in hand into event_rejects (or its stage), then forgotten. */
static int
sink_copy_rejects(struct sink *s, struct batch *b)
{
	const char *what = "COPY event_rejects";
	int64_t rows;
	size_t i = 0;

	if (b->nrej == 0)
		return 0;
	if (sink_check_rejects(s, b) < 0 || sink_copy_start(s, what, s->sql[s->merge ?
	    SQL_COPY_REJECT_STAGE : SQL_COPY_REJECTS]) < 0)
		return -1;
	while (i < b->nrej && sink_row_reject(s, b, i) == 0)
		i++;
	if (sink_copy_end(s, what, i == b->nrej, &rows) < 0)
		return -1;
	batch_clear_rejects(b);
	return 0;
}

int
sink_slice_rejects(struct sink *s, struct batch *b)
{
	if (sink_events_close(s) < 0 || sink_copy_rejects(s, b) < 0)
		return -1;
	return sink_events_open(s);
}

/*
 * A failed write's status: a row the database holds already (the in-memory set
 * could not see it) is SINK_CONFLICT, to be written again through the stage.
 */
static enum sink_status
sink_write_failed(struct sink *s)
{
	enum sink_status st = s->malformed ? SINK_FATAL : !s->merge &&
	    strcmp(s->sqlstate, "23505") == 0 ? SINK_CONFLICT : SINK_RETRY;

	sink_rollback(s);
	return st;
}

/*
 * BEGIN, reconnecting once if the connection died while idle (server restart,
 * idle timeout): nothing has been sent for the batch yet, so a second try on a
 * fresh connection is safe and saves the caller a pointless back-off.
 */
static enum sink_status
sink_begin(struct sink *s)
{
	enum sink_status st;

	if ((st = sink_connect(s)) != SINK_OK)
		return st;
	if (sink_cmd(s, "BEGIN", "BEGIN") == 0)
		return SINK_OK;
	sink_abort(s);
	if (sink_connected(s) || s->stopping)
		return SINK_RETRY;	/* alive and still refused BEGIN, or told to stop */
	if ((st = sink_connect(s)) != SINK_OK)
		return st;
	return sink_cmd(s, "BEGIN", "BEGIN") == 0 ? SINK_OK : SINK_RETRY;
}

/* Is batch id committed?  1 yes, 0 no, -1 on error. */
static int
sink_batch_committed(struct sink *s, int64_t id)
{
	char num[SINK_FORMAT_INT_MAX + 1];
	const char *params[1] = { num };
	PGresult *res;
	int found;

	num[sink_format_int(num, id)] = '\0';
	if ((res = sink_run(s, "SELECT evstream_batches", s->sql[SQL_BATCH_COMMITTED], 1, params,
	    0)) == NULL)
		return -1;
	found = PQntuples(res) > 0;
	PQclear(res);
	return found;
}

enum sink_status
sink_slice_begin(struct sink *s, const struct batch *b, int slice, int merge)
{
	enum sink_status st;
	int found;

	sink_clear_error(s);
	s->batch_id = b->id;	/* names the batch in the slow-call warnings */
	s->malformed = 0;
	s->merge = merge;
	s->written = 0;
	s->copying = 0;
	if ((st = sink_begin(s)) != SINK_OK) {
		sink_abort(s);
		return st;
	}
	if (slice == 0 && (found = sink_batch_committed(s, b->id)) != 0) {
		if (found < 0)
			return sink_write_failed(s);
		sink_set_error(s, "", "batch %lld is already committed (by another evstream, or "
		    "by this one when the answer to its COMMIT was lost)", (long long)b->id);
		sink_abort(s);
		return SINK_TAKEN;
	}
	if (merge && (sink_cmd(s, "CREATE TEMP TABLE", s->sql[SQL_STAGE_CREATE]) < 0 ||
	    (slice == 0 && sink_cmd(s, "CREATE TEMP TABLE", s->sql[SQL_REJECT_STAGE_CREATE]) < 0)))
		return sink_write_failed(s);
	if (sink_events_open(s) < 0)
		return sink_write_failed(s);
	return SINK_OK;
}

/* The merge path's INSERT ... ON CONFLICT DO NOTHING; *rows: what it inserted. */
static int
sink_merge(struct sink *s, enum sink_sql q, int64_t *rows)
{
	PGresult *res;

	if ((res = sink_run(s, "INSERT ... ON CONFLICT", s->sql[q], 0, NULL, 0)) == NULL)
		return -1;
	*rows = strtoll(PQcmdTuples(res), NULL, 10);
	PQclear(res);
	return 0;
}

enum sink_status
sink_slice_end(struct sink *s, struct batch *b, int slice, int64_t *written)
{
	int64_t rows;

	if (sink_events_close(s) < 0 || (slice == 0 && sink_copy_rejects(s, b) < 0))
		return sink_write_failed(s);
	if (s->merge) {
		if (sink_merge(s, SQL_STAGE_MERGE, &s->written) < 0 ||
		    (slice == 0 && sink_merge(s, SQL_REJECT_STAGE_MERGE, &rows) < 0))
			return sink_write_failed(s);
		if (s->written > 0 || slice == 0)
			log_debug("batch %lld, slice %d: %lld events through the stage",
			    (long long)b->id, slice, (long long)s->written);
	}
	*written = s->written;
	return SINK_OK;
}

/*
 * "{v0,v1,...}" of n int64 values stride bytes apart from *first (a column of an
 * array of structs, or a plain array); NULL when out of memory.
 */
static char *
sink_ints_literal(const int64_t *first, size_t n, size_t stride)
{
	const char *at = (const char *)first;
	char *p, *q;
	int64_t v;

	if ((p = q = malloc(n * (SINK_FORMAT_INT_MAX + 1) + 3)) == NULL)
		return NULL;
	*q++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*q++ = ',';
		memcpy(&v, at + i * stride, sizeof(v));
		q += sink_format_int(q, v);
	}
	*q++ = '}';
	*q = '\0';
	return p;
}

/* files as a text[] literal, in s->buf (free between COPYs). */
const char *
sink_files_literal(struct sink *s, char *const *files, size_t nfiles)
{
	size_t need = 3, n = 0;
	char *p;

	for (size_t i = 0; i < nfiles; i++)
		need += SINK_FORMAT_TEXT_MAX(strlen(files[i])) + 3;
	if (sink_grow(s, need) < 0) {
		sink_set_error(s, "", "file list: out of memory");
		return NULL;
	}
	p = s->buf;
	p[n++] = '{';
	for (size_t i = 0; i < nfiles; i++) {
		if (i > 0)
			p[n++] = ',';
		n += sink_format_array_elem(p + n, files[i], strlen(files[i]));
	}
	p[n++] = '}';
	p[n] = '\0';
	return p;
}

/*
 * Claim the batch's files in evstream_files: a file another transaction claimed
 * waits for it and, once that one commits, fails here with a unique violation;
 * a batch id committed meanwhile claims nothing.  Either way: SINK_TAKEN.
 */
static enum sink_status
sink_claim_files(struct sink *s, const struct batch *b, const char *id)
{
	char *sizes = b->ids == NULL ? NULL : sink_ints_literal(&b->ids->size, b->nfiles,
	    sizeof(*b->ids));
	char *mtimes = b->ids == NULL ? NULL : sink_ints_literal(&b->ids->mtime_ns, b->nfiles,
	    sizeof(*b->ids));
	const char *params[4] = { NULL, id, sizes, mtimes };
	PGresult *res = NULL;
	int64_t claimed = -1;

	/* Without the identities (no memory) the names are claimed alone. */
	if ((params[0] = sink_files_literal(s, b->files, b->nfiles)) != NULL)
		res = sink_run(s, "INSERT evstream_files", s->sql[SQL_CLAIM_FILES], 4, params, 0);
	free(sizes);
	free(mtimes);
	if (res != NULL) {
		claimed = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
	}
	if (claimed == (int64_t)b->nfiles)
		return SINK_OK;
	if (claimed >= 0)
		sink_set_error(s, "", "batch %s was committed meanwhile (by another evstream)", id);
	return claimed >= 0 || strcmp(s->sqlstate, "23505") == 0 ? SINK_TAKEN : SINK_RETRY;
}

static int
sink_write_batch_row(struct sink *s, const struct batch *b, int64_t written)
{
	const int64_t nums[7] = { b->id, b->n.rows, b->n.valid, b->n.late, b->n.dup,
	    b->n.rejected, written };
	char num[7][SINK_FORMAT_INT_MAX + 1], maxt[SINK_FORMAT_TIME_MAX + 1];
	char wm[SINK_FORMAT_TIME_MAX + 1];
	const char *params[10];
	PGresult *res;

	for (int i = 0; i < 7; i++)
		num[i][sink_format_int(num[i], nums[i])] = '\0';
	maxt[sink_format_time(maxt, b->max_time_us)] = '\0';
	wm[sink_format_time(wm, b->watermark_us)] = '\0';
	params[0] = num[0];
	if ((params[1] = sink_files_literal(s, b->files, b->nfiles)) == NULL)
		return -1;
	for (int i = 1; i < 7; i++)
		params[i + 1] = num[i];
	params[8] = b->max_time_us == EVENT_TIME_NONE ? NULL : maxt;
	params[9] = b->watermark_us == EVENT_TIME_NONE ? NULL : wm;
	res = sink_run(s, "INSERT evstream_batches", s->sql[SQL_BATCH_INSERT], 10, params, 0);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* One evstream_slices row for each slice after the first, with what it wrote. */
static int
sink_write_slice_rows(struct sink *s, const struct batch *b, const int64_t *written,
    int nslices)
{
	char id[SINK_FORMAT_INT_MAX + 1], n[SINK_FORMAT_INT_MAX + 1];
	char fut[SINK_FORMAT_TIME_MAX + 1];
	const char *params[4] = { id, n, NULL, NULL };
	PGresult *res;

	id[sink_format_int(id, b->id)] = '\0';
	n[sink_format_int(n, nslices)] = '\0';
	fut[sink_format_time(fut, b->future_us)] = '\0';
	params[3] = b->future_us == INT64_MAX ? NULL : fut;
	if ((params[2] = sink_ints_literal(written + 1, (size_t)nslices - 1,
	    sizeof(*written))) == NULL) {
		sink_set_error(s, "", "INSERT evstream_slices: out of memory");
		return -1;
	}
	res = sink_run(s, "INSERT evstream_slices", s->sql[SQL_SLICES_INSERT], 4, params, 0);
	free((char *)params[2]);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

enum sink_status
sink_batch_commit(struct sink *s, struct batch *b, const int64_t *written, int nslices)
{
	char id[SINK_FORMAT_INT_MAX + 1];
	enum sink_status st;
	int64_t total = 0;

	for (int j = 0; j < nslices; j++)
		total += written[j];
	id[sink_format_int(id, b->id)] = '\0';
	if ((st = sink_claim_files(s, b, id)) != SINK_OK) {
		sink_abort(s);
		return st;
	}
	if (sink_write_batch_row(s, b, total) < 0) {
		/* Its id was taken by a transaction that committed while this one ran. */
		st = strcmp(s->sqlstate, "23505") == 0 ? SINK_TAKEN : SINK_RETRY;
		sink_abort(s);
		return st;
	}
	if ((nslices > 1 && sink_write_slice_rows(s, b, written, nslices) < 0) ||
	    sink_cmd(s, "COMMIT", "COMMIT") < 0)
		return sink_write_failed(s);
	b->n.written = total;
	return SINK_OK;
}

enum sink_status
sink_slice_commit(struct sink *s, const struct batch *b, int slice, int64_t written)
{
	char id[SINK_FORMAT_INT_MAX + 1], sl[SINK_FORMAT_INT_MAX + 1];
	char diff[SINK_FORMAT_INT_MAX + 1];
	const char *params[2] = { id, sl }, *fix[2] = { id, diff };
	PGresult *res;
	int64_t planned;

	id[sink_format_int(id, b->id)] = '\0';
	sl[sink_format_int(sl, slice)] = '\0';
	if ((res = sink_run(s, "DELETE evstream_slices", s->sql[SQL_SLICE_DONE], 2, params, 0)) ==
	    NULL)
		return sink_write_failed(s);
	if (PQntuples(res) == 0) {
		PQclear(res);
		sink_set_error(s, "", "batch %lld, slice %d: committed already (by another evstream)",
		    (long long)b->id, slice);
		sink_abort(s);
		return SINK_TAKEN;
	}
	planned = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	/* Written again after a failure, the slice may find some of its rows stored. */
	if (written != planned) {
		diff[sink_format_int(diff, written - planned)] = '\0';
		if ((res = sink_run(s, "UPDATE evstream_batches", s->sql[SQL_BATCH_WRITTEN], 2,
		    fix, 0)) == NULL)
			return sink_write_failed(s);
		PQclear(res);
	}
	if (sink_cmd(s, "COMMIT", "COMMIT") < 0)
		return sink_write_failed(s);
	return SINK_OK;
}

enum sink_status
sink_slice_failed(struct sink *s)
{
	s->copying = 0;
	return sink_write_failed(s);
}


/*
 * A COPY still open is ended with an error first (the server then discards it):
 * rolling back then keeps the connection, instead of closing it mid-COPY.
 */
void
sink_rollback(struct sink *s)
{
	struct sink_clock w = sink_clock_start("ending COPY");

	if (s->conn != NULL && !s->broken && PQtransactionStatus(s->conn) == PQTRANS_ACTIVE &&
	    PQputCopyEnd(s->conn, "evstream: batch abandoned") >= 0 && sink_send_all(s, &w) == 0)
		PQclear(sink_result(s, &w));
	s->copying = 0;
	s->len = 0;
	sink_abort(s);
}

int
sink_name_storable(const char *name)
{
	size_t len = strlen(name);
	int n;

	for (size_t i = 0; i < len; i += (size_t)n)
		if ((n = sink_format_utf8_seq((const uint8_t *)name + i, len - i)) < 0)
			return 0;
	return 1;
}

