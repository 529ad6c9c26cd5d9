/*
 * sink_read — what the database says was committed, for evstream's start and
 * reconcile: the last batch, the batches after a checkpoint, the unfinished
 * ones and their files, who owns some files (and the claim of files committed
 * before evstream_files existed), one file's batch, and every event_id since a
 * time, to rebuild the dedupe set.  Promises: include/sink.h.
 */
#include "sink_int.h"

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "sink_format.h"

#define SINK_FETCH	"10000"		/* ids per FETCH: bounds the memory of a restart's reload */

PGresult *
sink_read_query(struct sink *s, const char *what, enum sink_sql q, int nparams,
    const char *const *params, const Oid *types, int ntypes)
{
	PGresult *res;

	if (sink_ready(s) < 0)
		return NULL;
	if ((res = sink_query(s, what, s->sql[q], nparams, params, types, ntypes)) == NULL)
		sink_abort(s);
	return res;
}

int
sink_last_batch(struct sink *s, int64_t *batch_id, int64_t *max_event_time_us)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_TSTZ };
	PGresult *res;

	*batch_id = 0;
	*max_event_time_us = EVENT_TIME_NONE;
	if ((res = sink_read_query(s, "SELECT evstream_batches", SQL_LAST_BATCH, 0, NULL, types,
	    2)) == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		*batch_id = sink_get_int8(res, 0, 0);
		*max_event_time_us = sink_get_time(res, 0, 1);
	}
	PQclear(res);
	return 0;
}

/* The file names of the batch starting at row *row; advances *row past it. */
static int
sink_collect_files(struct sink *s, const PGresult *res, int *row, char ***files, size_t *cap)
{
	int64_t id = sink_get_int8(res, *row, 0);
	size_t n = 0;

	for (; *row < PQntuples(res) && sink_get_int8(res, *row, 0) == id; (*row)++) {
		if (PQgetisnull(res, *row, 2))
			continue;	/* LEFT JOIN of an empty files array */
		if (ALLOC_GROW(*files, n + 1, *cap, 16) < 0) {
			sink_set_error(s, "", "SELECT evstream_batches: out of memory");
			return -1;
		}
		(*files)[n++] = PQgetvalue(res, *row, 2);
	}
	return (int)n;
}

/* A reader's query with one bigint parameter, connecting first; NULL: failed, rolled back. */
static PGresult *
sink_read_by_id(struct sink *s, const char *what, enum sink_sql q, int64_t id,
    const Oid *types, int ntypes)
{
	char num[SINK_FORMAT_INT_MAX + 1];
	const char *params[1] = { num };

	num[sink_format_int(num, id)] = '\0';
	return sink_read_query(s, what, q, 1, params, types, ntypes);
}

int
sink_batches_after(struct sink *s, int64_t after_id, sink_batch_fn fn, void *arg)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_TSTZ, SINK_OID_TEXT };
	char **files = NULL;
	size_t cap = 0;
	PGresult *res;
	int rc = 0, row = 0, n;

	if ((res = sink_read_by_id(s, "SELECT evstream_batches", SQL_BATCHES_AFTER, after_id,
	    types, 3)) == NULL)
		return -1;
	while (rc == 0 && row < PQntuples(res)) {
		int64_t id = sink_get_int8(res, row, 0), t = sink_get_time(res, row, 1);
		if ((n = sink_collect_files(s, res, &row, &files, &cap)) < 0)
			rc = -1;
		else
			rc = fn(arg, id, files, (size_t)n, t);
	}
	free(files);
	PQclear(res);
	return rc;
}

int
sink_unfinished(struct sink *s, sink_unfinished_fn fn, void *arg)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8, SINK_OID_TSTZ,
	    SINK_OID_TSTZ, SINK_OID_TSTZ };
	struct sink_unfinished *u = NULL;
	size_t n = 0;
	PGresult *res;
	int rc = 0;

	if ((res = sink_read_query(s, "SELECT evstream_slices", SQL_UNFINISHED, 0, NULL, types,
	    6)) == NULL)
		return -1;
	/* Rows come by batch: one entry per batch, a bit per pending slice. */
	if (PQntuples(res) > 0 && (u = calloc((size_t)PQntuples(res), sizeof(*u))) == NULL) {
		sink_set_error(s, "", "SELECT evstream_slices: out of memory");
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		int64_t id = sink_get_int8(res, i, 0), k = sink_get_int8(res, i, 1);
		int64_t nsl = sink_get_int8(res, i, 2);
		if (nsl > SINK_MAX_SLICES || k <= 0 || k >= nsl) {
			sink_set_error(s, "", "batch %lld: slice %lld of %lld cannot be finished by "
			    "this evstream (at most %d slices)", (long long)id, (long long)k,
			    (long long)nsl, SINK_MAX_SLICES);
			rc = -1;
			break;
		}
		if (n == 0 || u[n - 1].batch_id != id) {
			u[n].batch_id = id;
			u[n].nslices = (int)nsl;
			u[n].future_us = PQgetisnull(res, i, 3) ? INT64_MAX : sink_get_time(res, i, 3);
			u[n].watermark_us = sink_get_time(res, i, 4);
			u[n].max_time_us = sink_get_time(res, i, 5);
			n++;
		}
		u[n - 1].pending |= UINT64_C(1) << k;
	}
	PQclear(res);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = fn(arg, &u[i]);
	free(u);
	return rc;
}

int
sink_batch_files(struct sink *s, int64_t batch_id, struct batch *b)
{
	static const Oid types[] = { SINK_OID_TEXT, SINK_OID_INT8, SINK_OID_INT8 };
	PGresult *res;
	int rc = 0;

	if ((res = sink_read_by_id(s, "SELECT evstream_batches", SQL_BATCH_FILES, batch_id,
	    types, 3)) == NULL)
		return -1;
	for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
		if (batch_add_file(b, PQgetvalue(res, i, 0)) < 0) {
			sink_set_error(s, "", "batch %lld's files: out of memory", (long long)batch_id);
			rc = -1;
			break;
		}
		/* NULL: an identity the claim could not record; the reader cannot check it. */
		b->ids[b->nfiles - 1].size = PQgetisnull(res, i, 1) ? -1 : sink_get_int8(res, i, 1);
		b->ids[b->nfiles - 1].mtime_ns = PQgetisnull(res, i, 2) ? -1 :
		    sink_get_int8(res, i, 2);
	}
	PQclear(res);
	return rc;
}

/* A statement on an array of file names that returns (file, batch_id) rows. */
static int
sink_files_query(struct sink *s, const char *what, enum sink_sql q, char *const *files,
    size_t nfiles, sink_owner_fn fn, void *arg)
{
	static const Oid types[] = { SINK_OID_TEXT, SINK_OID_INT8 };
	const char *params[1];
	PGresult *res;
	int rc = 0;

	if (sink_ready(s) < 0)
		return -1;
	if ((params[0] = sink_files_literal(s, files, nfiles)) == NULL ||
	    (res = sink_query(s, what, s->sql[q], 1, params, types, 2)) == NULL) {
		sink_abort(s);
		return -1;
	}
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = fn(arg, PQgetvalue(res, i, 0), sink_get_int8(res, i, 1));
	PQclear(res);
	return rc;
}

int
sink_file_owners(struct sink *s, char *const *files, size_t nfiles, sink_owner_fn fn, void *arg)
{
	return sink_files_query(s, "SELECT evstream_files", SQL_FILE_OWNERS, files, nfiles, fn,
	    arg);
}

int
sink_claim_listed(struct sink *s, char *const *files, size_t nfiles, sink_owner_fn fn,
    void *arg)
{
	return sink_files_query(s, "INSERT evstream_files", SQL_CLAIM_LISTED, files, nfiles, fn,
	    arg);
}

static int
sink_fetch_ids(struct sink *s, sink_id_fn fn, void *arg)
{
	static const Oid types[] = { SINK_OID_UUID, SINK_OID_TSTZ };
	PGresult *res;
	int rc = 0, n;

	do {
		if ((res = sink_query(s, "FETCH events", "FETCH FORWARD " SINK_FETCH
		    " FROM evstream_ids", 0, NULL, types, 2)) == NULL)
			return -1;
		n = PQntuples(res);
		for (int i = 0; i < n && rc == 0; i++)
			rc = fn(arg, (const uint8_t *)PQgetvalue(res, i, 0), sink_get_time(res, i, 1));
		PQclear(res);
	} while (rc == 0 && n > 0);
	return rc;
}

int
sink_load_ids_since(struct sink *s, int64_t since_us, sink_id_fn fn, void *arg)
{
	char since[SINK_FORMAT_TIME_MAX + 1] = "-infinity";
	const char *params[1] = { since };
	PGresult *res;
	int rc;

	if (since_us != EVENT_TIME_NONE)
		since[sink_format_time(since, since_us)] = '\0';
	if (sink_ready(s) < 0)
		return -1;
	if (sink_cmd(s, "BEGIN", "BEGIN READ ONLY") < 0 ||
	    (res = sink_run(s, "DECLARE", s->sql[SQL_IDS_CURSOR], 1, params, 0)) == NULL) {
		sink_abort(s);
		return -1;
	}
	PQclear(res);
	if ((rc = sink_fetch_ids(s, fn, arg)) == 0 && sink_cmd(s, "COMMIT", "COMMIT") < 0)
		rc = -1;
	if (rc != 0)
		sink_abort(s);
	return rc;
}


int
sink_file_batch(struct sink *s, const char *name, int64_t *batch_id, int64_t *size,
    int64_t *mtime_ns)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8 };
	const char *params[1] = { name };
	PGresult *res;

	*batch_id = 0;
	*size = *mtime_ns = -1;
	if ((res = sink_read_query(s, "SELECT evstream_files", SQL_FILE_BATCH, 1, params, types,
	    3)) == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		*batch_id = sink_get_int8(res, 0, 0);
		if (!PQgetisnull(res, 0, 1) && !PQgetisnull(res, 0, 2)) {
			*size = sink_get_int8(res, 0, 1);
			*mtime_ns = sink_get_int8(res, 0, 2);
		}
	}
	PQclear(res);
	return 0;
}
