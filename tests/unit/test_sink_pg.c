/*
 * test_sink_pg — what the sink promises, against a real PostgreSQL:
 * a batch lands whole (events, rejects, the batch row) with exact counts,
 * through one session or through several (one slice each, events routed by
 * event_slice); an already committed batch id is SINK_TAKEN with nothing
 * written; a batch that overlaps stored events is SINK_CONFLICT, then written
 * through the stage, which stores only the new ones; a batch whose slice 0
 * committed and a later slice did not is reported by sink_unfinished and
 * finished by writing that slice alone; a hostile schema name is only ever an
 * identifier; no password in an error; a lost connection or a stopped server
 * means SINK_RETRY and the same batch then succeeds exactly once; the readers
 * return what was written; raw lines with NUL, bad UTF-8 and COPY specials
 * survive; timestamps round-trip from 1 BC to 9999.
 *
 * The sink never holds a batch's events (issue 17): the test keeps each batch's
 * events in an array of its own (struct tb) and streams them the way evstream
 * does (write_batch: one session; write_sliced: several).
 *
 * Needs EVPIPE_CONNINFO (a superuser on a scratch database holding
 * sql/01_init.sql; the test TRUNCATEs the tables and creates roles and schemas,
 * so never point it at a database you keep); without it: SKIP.
 * tests/integration/sink_pg.sh provides the cluster and acts as the driver for
 * the outage cases: when EVPIPE_PG_DRIVER=1, a line "ASK: stop|start|kill" on
 * stdout asks it to act on the server, and it answers "ok" on stdin.  It also
 * sets EVPIPE_PG_SCRAM_ROLE when it has made that role authenticate by password
 * over TCP.
 *
 * The test talks to libpq directly (an admin connection) to set things up and to
 * look at what landed; only the code under test is confined to src/sink*.c.
 *
 * EVPIPE_SINK_BENCH=ROWS turns it into a throughput measurement instead: one
 * batch of ROWS events by direct COPY, then the same events again (a conflict,
 * then the staging path, all duplicates), then half old half new; through
 * EVPIPE_SINK_BENCH_SESSIONS sessions (default 1).  Build it with -O2 for that.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "check.h"
#include "event.h"
#include "log.h"
#include "sink.h"
#include "sink_format.h"

#define HOSTILE_SCHEMA	"ev\"il; drop table x"
#define T2023		INT64_C(1700000000000000)	/* 2023-11-14 22:13:20 UTC */

static const char *conninfo;
static PGconn *admin;

/* --- the admin connection ---------------------------------------------------------- */

static void
admin_reconnect(void)
{
	PQfinish(admin);
	admin = PQconnectdb(conninfo);
	if (PQstatus(admin) != CONNECTION_OK) {
		printf("FAIL: sink_pg: admin connection: %s", PQerrorMessage(admin));
		exit(1);
	}
	PQclear(PQexec(admin, "SET client_min_messages = warning"));
	PQclear(PQexec(admin, "SET TimeZone = 'UTC'"));
}

static int __attribute__((format(printf, 1, 2)))
sql(const char *fmt, ...)
{
	char q[4096];
	va_list ap;
	PGresult *res;
	int ok;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	res = PQexec(admin, q);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "sql failed: %s: %s", q, PQerrorMessage(admin));
	PQclear(res);
	return ok ? 0 : -1;
}

/* The first row of a query, columns joined by '|' ("(error)" on failure). */
static const char * __attribute__((format(printf, 1, 2)))
row(const char *fmt, ...)
{
	static char out[2048];
	char q[4096];
	va_list ap;
	PGresult *res;
	size_t n = 0;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	res = PQexec(admin, q);
	snprintf(out, sizeof(out), "(error)");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "query failed: %s: %s", q, PQerrorMessage(admin));
	else if (PQntuples(res) == 0)
		snprintf(out, sizeof(out), "(none)");
	else
		for (int i = 0; i < PQnfields(res) && n < sizeof(out); i++)
			n += (size_t)snprintf(out + n, sizeof(out) - n, "%s%s", i ? "|" : "",
			    PQgetisnull(res, 0, i) ? "NULL" : PQgetvalue(res, 0, i));
	PQclear(res);
	return out;
}

static long long __attribute__((format(printf, 1, 2)))
count(const char *fmt, ...)
{
	char q[4096];
	va_list ap;
	const char *r;

	va_start(ap, fmt);
	vsnprintf(q, sizeof(q), fmt, ap);
	va_end(ap);
	r = row("%s", q);
	return strcmp(r, "(error)") == 0 ? -1 : atoll(r);
}

/*
 * An event_id as 32 hex digits, which uuid_in reads without the dashes: the
 * test's own spelling, so the rows the binary COPY stored (16 raw bytes) are
 * found by a text the sink never wrote.
 */
static const char *
id_hex(char out[33], const uint8_t id[16])
{
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", id[i]);
	return out;
}

static void
reset_tables(void)
{
	if (sql("TRUNCATE events, event_rejects, evstream_batches, evstream_files, "
	    "evstream_slices") < 0)
		exit(1);
}

/* A schema holding copies of the five tables. */
static int
make_schema(const char *name)
{
	char *q = PQescapeIdentifier(admin, name, strlen(name));
	int rc = sql("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;"
	    "CREATE TABLE %s.events (LIKE public.events INCLUDING ALL);"
	    "CREATE TABLE %s.event_rejects (LIKE public.event_rejects INCLUDING ALL);"
	    "CREATE TABLE %s.evstream_batches (LIKE public.evstream_batches INCLUDING ALL);"
	    "CREATE TABLE %s.evstream_files (LIKE public.evstream_files INCLUDING ALL);"
	    "CREATE TABLE %s.evstream_slices (LIKE public.evstream_slices INCLUDING ALL)",
	    q, q, q, q, q, q, q);

	PQfreemem(q);
	return rc;
}

/* --- batches ------------------------------------------------------------------------- */

/* A batch and its events: the sink holds no events, so the test does. */
struct tb {
	struct batch	 b;
	struct event	*ev;
	size_t		 nev, capev;
};

static void
tb_init(struct tb *t)
{
	memset(t, 0, sizeof(*t));
	batch_init(&t->b);
}

static void
tb_reset(struct tb *t)
{
	batch_reset(&t->b);
	t->nev = 0;
}

static void
tb_free(struct tb *t)
{
	batch_free(&t->b);
	free(t->ev);
	t->ev = NULL;
	t->nev = t->capev = 0;
}

static struct event *
tb_add_event(struct tb *t)
{
	if (t->nev == t->capev) {
		size_t cap = t->capev ? t->capev * 2 : 1024;
		struct event *p = realloc(t->ev, cap * sizeof(*p));
		if (p == NULL)
			return NULL;
		t->ev = p;
		t->capev = cap;
	}
	memset(&t->ev[t->nev], 0, sizeof(t->ev[0]));
	return &t->ev[t->nev++];
}

static uint64_t
mix(uint64_t x)		/* splitmix64: distinct keys, random-looking UUIDs */
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static void
key_uuid(uint64_t key, uint8_t id[16])
{
	uint64_t a = mix(key), b = mix(key ^ 0xabcdefu);

	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/* Events with keys first..first+n-1: times one second apart from T2023. */
static int
add_events(struct tb *t, uint64_t first, size_t n)
{
	struct batch *b = &t->b;

	for (size_t i = 0; i < n; i++) {
		struct event *e = tb_add_event(t);
		uint64_t k = first + i;
		if (e == NULL)
			return -1;
		key_uuid(k, e->id);
		e->time_us = T2023 + (int64_t)k * 1000000 + (int64_t)(k % 1000000);
		e->price_cents = (int64_t)(k % 100000);
		e->user_id = (int32_t)(k % 1000 + 1);
		e->product_id = (int32_t)(k % 77 + 1);
		e->type = (uint8_t)(k % 2);
		if (e->time_us > b->max_time_us)
			b->max_time_us = e->time_us;
	}
	b->n.rows += (int64_t)n;
	b->n.valid += (int64_t)n;
	return 0;
}

static int
add_reject(struct batch *b, uint32_t file, int64_t line, enum reject_reason why, const char *raw,
    size_t len)
{
	b->n.rows++;
	b->n.rejected++;
	b->n.reason[why]++;
	return batch_add_reject(b, file, line, why, raw, len);
}

static int
add_rejects(struct batch *b)
{
	if (add_reject(b, 0, 7, REJECT_PRICE, "x,1,view,2,-1,2023-01-01", 24) < 0 ||
	    add_reject(b, 1, 9, REJECT_COLUMN_COUNT, "only,three,fields", 17) < 0)
		return -1;
	return 0;
}

/* Batch `id`: files "id-a.csv" and "id-b.csv", events [first, first+n), two rejects. */
static int
make_batch(struct tb *t, int64_t id, uint64_t first, size_t n)
{
	char name[64];

	tb_reset(t);
	t->b.id = id;
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%lld-%c.csv", (long long)id, 'a' + i);
		if (batch_add_file(&t->b, name) < 0)
			return -1;
	}
	if (add_events(t, first, n) < 0 || add_rejects(&t->b) < 0)
		return -1;
	return 0;
}

static struct sink *
open_sink(const char *schema)
{
	char err[256];
	struct sink *s = sink_new(conninfo, schema, err, sizeof(err));

	CHECK(s != NULL, "sink_new: %s", err);
	return s;
}

/* --- writing, as evstream does ---------------------------------------------------------- */

/* Roll back every session but `except` (which rolled itself back). */
static void
rollback_all(struct sink **s, int n, int except)
{
	for (int j = 0; j < n; j++)
		if (j != except)
			sink_rollback(s[j]);
}

/*
 * One try at batch t through n sessions, slice j on s[j]: open every slice,
 * stream the events to their slices, end the slices (the last first, as
 * evstream does), commit slice 0, then slices 1..ncommit-1; the slices from
 * ncommit on are rolled back (a crash between the commits).  A failure before
 * slice 0's commit rolls every session back.  written[]: what each slice said.
 */
static enum sink_status
write_try(struct sink **s, int n, struct tb *t, int merge, int ncommit, int64_t *written)
{
	enum sink_status st;
	int j;

	for (j = 0; j < n; j++) {
		written[j] = -1;
		if ((st = sink_slice_begin(s[j], &t->b, j, merge)) != SINK_OK) {
			rollback_all(s, j, j);
			return st;
		}
	}
	for (size_t i = 0; i < t->nev; i++) {
		j = (int)event_slice(t->ev[i].id, (unsigned)n);
		if (sink_slice_event(s[j], &t->ev[i]) < 0) {
			st = sink_slice_failed(s[j]);
			rollback_all(s, n, j);
			return st;
		}
	}
	for (j = n - 1; j >= 0; j--)
		if ((st = sink_slice_end(s[j], &t->b, j, &written[j])) != SINK_OK) {
			rollback_all(s, n, j);
			return st;
		}
	if ((st = sink_batch_commit(s[0], &t->b, written, n)) != SINK_OK) {
		rollback_all(s, n, 0);
		return st;
	}
	for (j = 1; j < n; j++) {
		if (j >= ncommit) {
			sink_rollback(s[j]);
			continue;
		}
		if ((st = sink_slice_commit(s[j], &t->b, j, written[j])) != SINK_OK) {
			for (int k = j + 1; k < n; k++)
				sink_rollback(s[k]);	/* left unfinished */
			return st;
		}
	}
	return SINK_OK;
}

/* Through n sessions; a SINK_CONFLICT is written again once, in merge mode. */
static enum sink_status
write_sliced(struct sink **s, int n, struct tb *t)
{
	int64_t written[SINK_MAX_SLICES];
	enum sink_status st;

	t->b.n.written = 0;
	if ((st = write_try(s, n, t, 0, n, written)) == SINK_CONFLICT)
		st = write_try(s, n, t, 1, n, written);
	return st;
}

/* Through one session. */
static enum sink_status
write_batch(struct sink *s, struct tb *t)
{
	return write_sliced(&s, 1, t);
}

/* Slice `slice` of t alone (finishing a batch): only its events. */
static enum sink_status
write_slice(struct sink *s, struct tb *t, int slice, int n, int merge, int64_t *written)
{
	enum sink_status st;

	*written = -1;
	if ((st = sink_slice_begin(s, &t->b, slice, merge)) != SINK_OK)
		return st;
	for (size_t i = 0; i < t->nev; i++)
		if ((int)event_slice(t->ev[i].id, (unsigned)n) == slice &&
		    sink_slice_event(s, &t->ev[i]) < 0)
			return sink_slice_failed(s);
	if ((st = sink_slice_end(s, &t->b, slice, written)) != SINK_OK)
		return st;
	return sink_slice_commit(s, &t->b, slice, *written);
}

/* n sessions on the default schema (NULL entries when sink_new failed). */
static int
open_sinks(struct sink **s, int n)
{
	int ok = 1;

	for (int j = 0; j < n; j++)
		ok &= (s[j] = open_sink(NULL)) != NULL;
	return ok ? 0 : -1;
}

static void
free_sinks(struct sink **s, int n)
{
	for (int j = 0; j < n; j++)
		sink_free(s[j]);
}

/* How many of t's events hash to slice j of n. */
static long long
slice_events(const struct tb *t, int j, int n)
{
	long long k = 0;

	for (size_t i = 0; i < t->nev; i++)
		k += (int)event_slice(t->ev[i].id, (unsigned)n) == j;
	return k;
}

/* --- the promises -------------------------------------------------------------------- */

static void
batch_lands_whole_with_exact_counts(void)
{
	struct sink *s = open_sink(NULL);
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 1000) == 0, "make_batch");
	t.b.watermark_us = T2023;
	t.b.n.late = 3;
	t.b.n.dup = 2;
	CHECK((st = sink_connect(s)) == SINK_OK, "connect: %d %s", st, sink_error(s));
	CHECK((st = write_batch(s, &t)) == SINK_OK, "write: %d %s", st, sink_error(s));
	CHECK(t.b.n.written == 1000, "written %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM events") == 1000, "events");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE batch_id = 1") == 2, "rejects");
	CHECK(strcmp(row("SELECT batch_id, files, rows_read, valid, late, duplicates, rejected, "
	    "written, max_event_time = '2023-11-14 22:13:20+00'::timestamptz + interval '999 s' "
	    "+ interval '999 us', watermark FROM evstream_batches"),
	    "1|{1-a.csv,1-b.csv}|1002|1000|3|2|2|1000|t|2023-11-14 22:13:20+00") == 0,
	    "batch row: %s", row("SELECT * FROM evstream_batches"));
	CHECK(strcmp(row("SELECT file, line_no, reason, raw_line FROM event_rejects "
	    "ORDER BY line_no LIMIT 1"), "1-a.csv|7|price|x,1,view,2,-1,2023-01-01") == 0,
	    "reject row");
	/* Every event column as stored, against the struct it came from. */
	struct event *e = &t.ev[123];
	char uuid[33], want[128];
	char got[128];
	(void)id_hex(uuid, e->id);
	snprintf(want, sizeof(want), "%d|%s|%d|%lld.%02lld|%lld", e->user_id,
	    event_type_names[e->type], e->product_id, (long long)(e->price_cents / 100),
	    (long long)(e->price_cents % 100), (long long)e->time_us);
	snprintf(got, sizeof(got), "%s", row("SELECT user_id, event_type, product_id, price, "
	    "(extract(epoch FROM event_time) * 1000000)::bigint FROM events WHERE event_id = '%s'",
	    uuid));
	CHECK(strcmp(got, want) == 0, "event 123: %s != %s", got, want);
	tb_free(&t);
	sink_free(s);
}

static int
on_owner(void *arg, const char *name, int64_t batch_id)
{
	char *out = arg;

	snprintf(out + strlen(out), 128 - strlen(out), "%s=%lld ", name, (long long)batch_id);
	return 0;
}

/*
 * Two evstreams, one database: a batch id another one committed with other files,
 * or a file another batch committed, is SINK_TAKEN with nothing written;
 * sink_file_owners says who has the file.
 */
static void
taken_batch_id_or_file_is_refused(void)
{
	struct sink *s = open_sink(NULL);
	struct tb t;
	enum sink_status st;
	char owners[128] = "";

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 10) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK, "first: %s", sink_error(s));
	/* Same id, other files (another evstream's batch 1). */
	CHECK(make_batch(&t, 2, 100, 10) == 0, "make_batch");
	t.b.id = 1;
	CHECK((st = write_batch(s, &t)) == SINK_TAKEN, "same id: %d %s", st, sink_error(s));
	CHECK(strstr(sink_error(s), "already committed") != NULL, "said: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 10, "nothing written");
	/* A new id, but a file batch 1 committed. */
	CHECK(make_batch(&t, 2, 100, 10) == 0 && batch_add_file(&t.b, "1-b.csv") == 0,
	    "make_batch");
	CHECK((st = write_batch(s, &t)) == SINK_TAKEN, "file: %d %s", st, sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 10, "nothing written");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "no rejects written");
	CHECK(count("SELECT count(*) FROM evstream_files") == 2, "two files claimed");
	CHECK(sink_file_owners(s, t.b.files, t.b.nfiles, on_owner, owners) == 0, "owners: %s",
	    sink_error(s));
	CHECK(strcmp(owners, "1-b.csv=1 ") == 0, "owners: %s", owners);
	/* Without it, the batch goes through on the same connection. */
	CHECK(make_batch(&t, 2, 100, 10) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK && t.b.n.written == 10, "then: %s", sink_error(s));
	CHECK(count("SELECT count(*), count(DISTINCT file) FROM evstream_files") == 4, "files");
	tb_free(&t);
	sink_free(s);
}

/*
 * The answer to a COMMIT was lost, or another evstream committed the id: writing a
 * committed batch id again is SINK_TAKEN, found by slice 0's begin, with nothing
 * written and the session left clean; through one session or three.
 */
static void
committed_batch_id_is_taken(void)
{
	struct sink *s[3] = { NULL, NULL, NULL };
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(open_sinks(s, 3) == 0, "sinks");
	CHECK(make_batch(&t, 5, 0, 100) == 0, "make_batch");
	CHECK(write_batch(s[0], &t) == SINK_OK, "first: %s", sink_error(s[0]));
	CHECK(t.b.n.written == 100, "written %lld", (long long)t.b.n.written);
	CHECK((st = sink_slice_begin(s[0], &t.b, 0, 0)) == SINK_TAKEN, "begin: %d %s", st,
	    sink_error(s[0]));
	CHECK(strstr(sink_error(s[0]), "already committed") != NULL, "said: %s",
	    sink_error(s[0]));
	CHECK((st = write_batch(s[0], &t)) == SINK_TAKEN, "again: %d %s", st, sink_error(s[0]));
	CHECK(t.b.n.written == 0, "again wrote %lld", (long long)t.b.n.written);
	CHECK((st = write_sliced(s, 3, &t)) == SINK_TAKEN, "again, 3 sessions: %d %s", st,
	    sink_error(s[0]));
	CHECK(t.b.n.written == 0, "again wrote %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM events") == 100, "events");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "rejects not doubled");
	CHECK(count("SELECT count(*) FROM evstream_batches") == 1, "one batch row");
	CHECK(count("SELECT written FROM evstream_batches") == 100, "first written kept");
	CHECK(count("SELECT count(*) FROM evstream_slices") == 0, "no slice rows");
	/* And the sessions are usable afterwards (they rolled back cleanly). */
	CHECK(make_batch(&t, 6, 100, 10) == 0, "make_batch");
	CHECK(write_batch(s[0], &t) == SINK_OK && t.b.n.written == 10, "next: %s",
	    sink_error(s[0]));
	CHECK(make_batch(&t, 7, 200, 100) == 0, "make_batch");
	CHECK(write_sliced(s, 3, &t) == SINK_OK && t.b.n.written == 100, "next, 3 sessions: %s",
	    sink_error(s[0]));
	CHECK(count("SELECT count(*) FROM events") == 210, "events after");
	tb_free(&t);
	free_sinks(s, 3);
}

/*
 * Two writers race for one batch id: both began before either committed; the
 * second to commit finds the id taken at sink_batch_commit (its claim sees the
 * committed batch row) and stores nothing.
 */
static void
racing_writers_one_batch_id(void)
{
	struct sink *s1 = open_sink(NULL), *s2 = open_sink(NULL);
	struct tb t1, t2;
	int64_t w1, w2;
	enum sink_status st;

	reset_tables();
	tb_init(&t1);
	tb_init(&t2);
	CHECK(make_batch(&t1, 1, 0, 10) == 0 && make_batch(&t2, 1, 100, 10) == 0, "make_batch");
	free(t2.b.files[0]);
	free(t2.b.files[1]);
	t2.b.files[0] = strdup("other-a.csv");
	t2.b.files[1] = strdup("other-b.csv");
	CHECK(t2.b.files[0] != NULL && t2.b.files[1] != NULL, "strdup");
	CHECK(sink_slice_begin(s1, &t1.b, 0, 0) == SINK_OK, "begin 1: %s", sink_error(s1));
	CHECK(sink_slice_begin(s2, &t2.b, 0, 0) == SINK_OK, "begin 2: %s", sink_error(s2));
	for (size_t i = 0; i < 10; i++)
		CHECK(sink_slice_event(s1, &t1.ev[i]) == 0 && sink_slice_event(s2, &t2.ev[i]) == 0,
		    "event %zu", i);
	CHECK(sink_slice_end(s1, &t1.b, 0, &w1) == SINK_OK && w1 == 10, "end 1: %s",
	    sink_error(s1));
	CHECK(sink_slice_end(s2, &t2.b, 0, &w2) == SINK_OK && w2 == 10, "end 2: %s",
	    sink_error(s2));
	CHECK((st = sink_batch_commit(s1, &t1.b, &w1, 1)) == SINK_OK, "commit 1: %d %s", st,
	    sink_error(s1));
	CHECK((st = sink_batch_commit(s2, &t2.b, &w2, 1)) == SINK_TAKEN, "commit 2: %d %s", st,
	    sink_error(s2));
	CHECK(count("SELECT count(*) FROM events") == 10, "only the first's events");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "only the first's rejects");
	CHECK(count("SELECT count(*) FROM evstream_files") == 2, "only the first's files");
	CHECK(strcmp(row("SELECT files FROM evstream_batches"), "{1-a.csv,1-b.csv}") == 0,
	    "batch row: %s", row("SELECT files FROM evstream_batches"));
	/* The loser's session is clean: its batch goes through under the next id. */
	t2.b.id = 2;
	CHECK(write_batch(s2, &t2) == SINK_OK && t2.b.n.written == 10, "then: %s",
	    sink_error(s2));
	tb_free(&t1);
	tb_free(&t2);
	sink_free(s1);
	sink_free(s2);
}

static void
overlapping_batch_writes_only_new_events(void)
{
	struct sink *s = open_sink(NULL);
	struct tb t;
	enum sink_status st;
	int64_t w;

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 500) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK, "first: %s", sink_error(s));
	/* Batch 2: events 400..799 (100 stored already), plus one in-batch duplicate. */
	CHECK(make_batch(&t, 2, 400, 400) == 0 && add_events(&t, 700, 1) == 0, "make_batch");
	CHECK((st = write_try(&s, 1, &t, 0, 1, &w)) == SINK_CONFLICT, "direct: %d %s", st,
	    sink_error(s));
	CHECK(strcmp(sink_sqlstate(s), "23505") == 0, "sqlstate %s", sink_sqlstate(s));
	CHECK(count("SELECT count(*) FROM events") == 500, "nothing written by the conflict");
	CHECK(count("SELECT count(*) FROM evstream_batches") == 1, "no batch row");
	CHECK(count("SELECT count(*) FROM evstream_files") == 2, "no files claimed");
	CHECK((st = write_batch(s, &t)) == SINK_OK, "overlap: %d %s", st, sink_error(s));
	CHECK(t.b.n.written == 300, "written %lld, want 300", (long long)t.b.n.written);
	CHECK(*sink_error(s) == '\0', "handled conflict leaves no error: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 800, "events");
	CHECK(count("SELECT written FROM evstream_batches WHERE batch_id = 2") == 300, "row");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE batch_id = 2") == 2, "rejects");
	/* The stage table is empty again and the next batch takes the fast path. */
	CHECK(make_batch(&t, 3, 800, 50) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK && t.b.n.written == 50, "next: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 850, "events after");
	tb_free(&t);
	sink_free(s);
}

/*
 * Rejects are idempotent like events (issue 16, item 6): a line of a file is
 * stored once.  One of the batch's rejects is in the table already (as a file
 * read a second time would have left it): the batch commits, that line stays
 * one row, the other reject is added.
 */
static void
stored_reject_is_not_stored_twice(void)
{
	struct sink *s = open_sink(NULL);
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(sql("INSERT INTO event_rejects (batch_id, file, line_no, reason, raw_line) "
	    "VALUES (0, '1-a.csv', 7, 'price', 'x,1,view,2,-1,2023-01-01')") == 0, "pre-insert");
	CHECK(make_batch(&t, 1, 0, 10) == 0, "make_batch");
	CHECK((st = write_batch(s, &t)) == SINK_OK, "write: %d %s", st, sink_error(s));
	CHECK(*sink_error(s) == '\0', "handled conflict leaves no error: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "rejects: one per line");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE file = '1-a.csv' AND line_no = 7") ==
	    1, "the stored line once");
	CHECK(count("SELECT count(*) FROM events") == 10 && t.b.n.written == 10, "events");
	/* The stage is empty again and the next batch takes the fast path. */
	CHECK(make_batch(&t, 2, 10, 10) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK, "next: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM event_rejects") == 4, "rejects after");
	tb_free(&t);
	sink_free(s);
}

/* --- slices: one batch through several sessions ---------------------------------------- */

/* Every committed row counted once: the batch log's written adds up to the table. */
static int
written_adds_up(void)
{
	return count("SELECT coalesce(sum(written), 0) FROM evstream_batches") ==
	    count("SELECT count(*) FROM events");
}

/*
 * Three sessions (and two): each event lands once, in the slice event_slice
 * gives it; each slice reports its own rows; the batch row holds their sum;
 * slice 0 carries the rejects; no slice row is left behind.
 */
static void
sliced_batch_lands_once(void)
{
	struct sink *s[3] = { NULL, NULL, NULL };
	int64_t written[SINK_MAX_SLICES];
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(open_sinks(s, 3) == 0, "sinks");
	CHECK(make_batch(&t, 1, 0, 3000) == 0, "make_batch");
	t.b.watermark_us = T2023;
	CHECK((st = write_try(s, 3, &t, 0, 3, written)) == SINK_OK, "write: %d %s", st,
	    sink_error(s[0]));
	for (int j = 0; j < 3; j++)
		CHECK(written[j] == slice_events(&t, j, 3) && written[j] > 0,
		    "slice %d wrote %lld of its %lld", j, (long long)written[j],
		    slice_events(&t, j, 3));
	CHECK(t.b.n.written == 3000, "written %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM events") == 3000, "events");
	CHECK(count("SELECT count(DISTINCT event_id) FROM events") == 3000, "distinct events");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE batch_id = 1") == 2, "rejects");
	CHECK(strcmp(row("SELECT rows_read, valid, rejected, written FROM evstream_batches "
	    "WHERE batch_id = 1"), "3002|3000|2|3000") == 0, "batch row: %s",
	    row("SELECT rows_read, valid, rejected, written FROM evstream_batches"));
	CHECK(count("SELECT count(*) FROM evstream_slices") == 0, "no slice rows left");
	CHECK(count("SELECT count(*) FROM evstream_files WHERE batch_id = 1") == 2, "files");
	/* Two sessions; then three again with an empty batch (no events, no files). */
	CHECK(make_batch(&t, 2, 3000, 1000) == 0, "make_batch");
	CHECK(write_sliced(s, 2, &t) == SINK_OK && t.b.n.written == 1000, "2 sessions: %s",
	    sink_error(s[0]));
	tb_reset(&t);
	t.b.id = 3;
	CHECK(write_sliced(s, 3, &t) == SINK_OK && t.b.n.written == 0, "empty: %s",
	    sink_error(s[0]));
	CHECK(count("SELECT count(*) FROM events") == 4000, "events after");
	CHECK(count("SELECT count(*) FROM evstream_batches") == 3, "batch rows");
	CHECK(count("SELECT count(*) FROM evstream_slices") == 0, "no slice rows left");
	CHECK(written_adds_up(), "sum(written) = count(events)");
	tb_free(&t);
	free_sinks(s, 3);
}

struct unfinished {
	struct sink_unfinished u[4];
	int n;
};

static int
on_unfinished(void *arg, const struct sink_unfinished *u)
{
	struct unfinished *v = arg;

	if (v->n == 4)
		return 99;
	v->u[v->n++] = *u;
	return 0;
}

/*
 * Slice 0 and slice 1 of three committed, slice 2 did not (a crash between the
 * commits): the batch is in the log, slice 2's rows are not in the table, and
 * sink_unfinished says what finishing it needs.  Writing slice 2 alone then
 * completes it; committing a slice that is committed already is SINK_TAKEN and
 * changes nothing.
 */
static void
unfinished_slice_is_reported_then_finished(void)
{
	struct sink *s[3] = { NULL, NULL, NULL };
	int64_t written[SINK_MAX_SLICES], w;
	const int64_t future = T2023 + INT64_C(1000000) * 86400 * 365;
	struct unfinished v;
	struct tb t;
	enum sink_status st;
	long long in0, in1, in2;
	char want[128];

	reset_tables();
	tb_init(&t);
	CHECK(open_sinks(s, 3) == 0, "sinks");
	CHECK(make_batch(&t, 1, 0, 3000) == 0, "make_batch");
	t.b.watermark_us = T2023 + 5;
	t.b.future_us = future;
	in0 = slice_events(&t, 0, 3);
	in1 = slice_events(&t, 1, 3);
	in2 = slice_events(&t, 2, 3);
	CHECK((st = write_try(s, 3, &t, 0, 2, written)) == SINK_OK, "write: %d %s", st,
	    sink_error(s[0]));
	CHECK(count("SELECT count(*) FROM events") == in0 + in1, "slices 0 and 1 only: %lld",
	    count("SELECT count(*) FROM events"));
	CHECK(count("SELECT written FROM evstream_batches WHERE batch_id = 1") == 3000,
	    "the batch row counts every slice as planned");
	snprintf(want, sizeof(want), "1|2|3|%lld|t", in2);
	CHECK(strcmp(row("SELECT batch_id, slice, nslices, written, future_bound = "
	    "to_timestamp(%lld / 1000000.0) FROM evstream_slices", (long long)future), want) == 0,
	    "slice row: %s", row("SELECT * FROM evstream_slices"));
	memset(&v, 0, sizeof(v));
	CHECK(sink_unfinished(s[0], on_unfinished, &v) == 0, "unfinished: %s", sink_error(s[0]));
	CHECK(v.n == 1 && v.u[0].batch_id == 1 && v.u[0].nslices == 3 &&
	    v.u[0].pending == UINT64_C(1) << 2, "n=%d id=%lld nslices=%d pending=%#llx", v.n,
	    (long long)v.u[0].batch_id, v.u[0].nslices, (unsigned long long)v.u[0].pending);
	CHECK(v.u[0].watermark_us == T2023 + 5, "watermark %lld", (long long)v.u[0].watermark_us);
	CHECK(v.u[0].future_us == future, "future %lld", (long long)v.u[0].future_us);
	CHECK(v.u[0].max_time_us == t.b.max_time_us, "max time %lld",
	    (long long)v.u[0].max_time_us);
	/* Slice 1 again: its rows are there (direct: a conflict; merged: none new), and
	 * its commit is refused as done, with nothing changed. */
	CHECK((st = write_slice(s[1], &t, 1, 3, 0, &w)) == SINK_CONFLICT, "slice 1, direct: %d %s",
	    st, sink_error(s[1]));
	CHECK((st = write_slice(s[1], &t, 1, 3, 1, &w)) == SINK_TAKEN && w == 0,
	    "slice 1, merged: %d written %lld: %s", st, (long long)w, sink_error(s[1]));
	CHECK(count("SELECT count(*) FROM events") == in0 + in1, "nothing changed");
	CHECK(count("SELECT written FROM evstream_batches WHERE batch_id = 1") == 3000,
	    "written unchanged");
	/* Finish slice 2: only its events, a fresh session as after a restart. */
	sink_free(s[2]);
	s[2] = open_sink(NULL);
	CHECK((st = write_slice(s[2], &t, 2, 3, 0, &w)) == SINK_OK && w == in2,
	    "slice 2: %d written %lld of %lld: %s", st, (long long)w, in2, sink_error(s[2]));
	CHECK(count("SELECT count(*) FROM events") == 3000, "events");
	CHECK(count("SELECT count(*) FROM evstream_slices") == 0, "slice row gone");
	memset(&v, 0, sizeof(v));
	CHECK(sink_unfinished(s[0], on_unfinished, &v) == 0 && v.n == 0, "unfinished after: %d",
	    v.n);
	CHECK(count("SELECT written FROM evstream_batches WHERE batch_id = 1") == 3000,
	    "written");
	CHECK(written_adds_up(), "sum(written) = count(events)");
	/* Slice 2 once more: done already. */
	CHECK((st = write_slice(s[2], &t, 2, 3, 1, &w)) == SINK_TAKEN, "slice 2 again: %d", st);
	CHECK(count("SELECT count(*) FROM events") == 3000 && written_adds_up(), "unchanged");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "rejects once");
	tb_free(&t);
	free_sinks(s, 3);
}

/*
 * Only slice 0 committed (no watermark, no future bound); one of slice 2's events
 * reached the table meanwhile through another batch.  Slice 2 direct is a
 * conflict; merged, it stores the rest and its commit corrects the batch's
 * written to what was really stored.  Then slice 1.
 */
static void
unfinished_slices_finished_through_the_stage(void)
{
	struct sink *s[3] = { NULL, NULL, NULL };
	int64_t written[SINK_MAX_SLICES], w;
	struct unfinished v;
	struct tb t, one;
	enum sink_status st;
	long long in0, in1, in2;
	size_t k;

	reset_tables();
	tb_init(&t);
	tb_init(&one);
	CHECK(open_sinks(s, 3) == 0, "sinks");
	CHECK(make_batch(&t, 2, 0, 600) == 0, "make_batch");
	in0 = slice_events(&t, 0, 3);
	in1 = slice_events(&t, 1, 3);
	in2 = slice_events(&t, 2, 3);
	CHECK((st = write_try(s, 3, &t, 0, 1, written)) == SINK_OK, "write: %d %s", st,
	    sink_error(s[0]));
	CHECK(count("SELECT count(*) FROM events") == in0, "slice 0 only");
	memset(&v, 0, sizeof(v));
	CHECK(sink_unfinished(s[0], on_unfinished, &v) == 0 && v.n == 1, "unfinished: %s",
	    sink_error(s[0]));
	CHECK(v.u[0].pending == ((UINT64_C(1) << 1) | (UINT64_C(1) << 2)), "pending %#llx",
	    (unsigned long long)v.u[0].pending);
	CHECK(v.u[0].watermark_us == EVENT_TIME_NONE && v.u[0].future_us == INT64_MAX,
	    "bounds %lld %lld", (long long)v.u[0].watermark_us, (long long)v.u[0].future_us);
	/* Batch 3 stores one event of slice 2. */
	for (k = 0; k < t.nev && event_slice(t.ev[k].id, 3) != 2; k++)
		;
	CHECK(k < t.nev && make_batch(&one, 3, 0, 0) == 0, "make_batch");
	if (k < t.nev) {
		CHECK((one.ev = malloc(sizeof(*one.ev))) != NULL, "malloc");
		one.ev[0] = t.ev[k];
		one.nev = one.capev = 1;
		one.b.n.valid = one.b.n.rows = 1;
	}
	CHECK(write_batch(s[0], &one) == SINK_OK && one.b.n.written == 1, "batch 3: %s",
	    sink_error(s[0]));
	CHECK((st = write_slice(s[2], &t, 2, 3, 0, &w)) == SINK_CONFLICT, "direct: %d %s", st,
	    sink_error(s[2]));
	CHECK(count("SELECT count(*) FROM evstream_slices") == 2, "both still pending");
	CHECK((st = write_slice(s[2], &t, 2, 3, 1, &w)) == SINK_OK && w == in2 - 1,
	    "merged: %d written %lld of %lld: %s", st, (long long)w, in2, sink_error(s[2]));
	CHECK(count("SELECT written FROM evstream_batches WHERE batch_id = 2") ==
	    in0 + in1 + in2 - 1, "written corrected: %lld",
	    count("SELECT written FROM evstream_batches WHERE batch_id = 2"));
	memset(&v, 0, sizeof(v));
	CHECK(sink_unfinished(s[0], on_unfinished, &v) == 0 && v.n == 1 &&
	    v.u[0].pending == UINT64_C(1) << 1, "pending after slice 2: %#llx",
	    (unsigned long long)v.u[0].pending);
	CHECK((st = write_slice(s[1], &t, 1, 3, 0, &w)) == SINK_OK && w == in1, "slice 1: %s",
	    sink_error(s[1]));
	memset(&v, 0, sizeof(v));
	CHECK(sink_unfinished(s[0], on_unfinished, &v) == 0 && v.n == 0, "finished");
	CHECK(count("SELECT count(*) FROM events") == 600, "events");
	CHECK(written_adds_up(), "sum(written) %lld = count(events) %lld",
	    count("SELECT sum(written) FROM evstream_batches"),
	    count("SELECT count(*) FROM events"));
	tb_free(&one);
	tb_free(&t);
	free_sinks(s, 3);
}

/*
 * Through three sessions, a batch holding ids the table has: the direct write is
 * SINK_CONFLICT (with 23505) and stores nothing, not even the slices without a
 * stored id; the merged write stores only the new rows and counts them.
 */
static void
sliced_conflict_then_merge_stores_new_rows(void)
{
	struct sink *s[3] = { NULL, NULL, NULL };
	int64_t written[SINK_MAX_SLICES];
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(open_sinks(s, 3) == 0, "sinks");
	CHECK(make_batch(&t, 1, 0, 1000) == 0, "make_batch");
	CHECK(write_sliced(s, 3, &t) == SINK_OK, "first: %s", sink_error(s[0]));
	CHECK(make_batch(&t, 2, 900, 1000) == 0, "make_batch");	/* 100 stored already */
	CHECK((st = write_try(s, 3, &t, 0, 3, written)) == SINK_CONFLICT, "direct: %d %s", st,
	    sink_error(s[0]));
	CHECK(count("SELECT count(*) FROM events") == 1000, "nothing written");
	CHECK(count("SELECT count(*) FROM evstream_batches") == 1, "no batch row");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "no rejects");
	CHECK(count("SELECT count(*) FROM evstream_files") == 2, "no files claimed");
	CHECK((st = write_try(s, 3, &t, 1, 3, written)) == SINK_OK, "merged: %d %s", st,
	    sink_error(s[0]));
	CHECK(t.b.n.written == 900, "written %lld", (long long)t.b.n.written);
	CHECK(written[0] + written[1] + written[2] == 900, "slices %lld+%lld+%lld",
	    (long long)written[0], (long long)written[1], (long long)written[2]);
	CHECK(count("SELECT count(*) FROM events") == 1900, "events");
	CHECK(count("SELECT count(*) FROM event_rejects") == 4, "rejects");
	CHECK(count("SELECT count(*) FROM evstream_slices") == 0, "no slice rows left");
	CHECK(written_adds_up(), "sum(written) = count(events)");
	/* The stages are empty again; the next batch takes the direct path. */
	CHECK(make_batch(&t, 3, 1900, 300) == 0, "make_batch");
	CHECK(write_try(s, 3, &t, 0, 3, written) == SINK_OK && t.b.n.written == 300, "next: %s",
	    sink_error(s[0]));
	CHECK(count("SELECT count(*) FROM events") == 2200 && written_adds_up(), "events after");
	tb_free(&t);
	free_sinks(s, 3);
}

/*
 * Batch t through three sessions, its rejects handed on (sink_slice_rejects)
 * after `at` events, as batch_read_file does when BATCH_REJECTS_BYTES are in
 * hand, then one more reject added before the end.
 */
static enum sink_status
write_rejects_mid(struct sink **s, struct tb *t, int merge, size_t at)
{
	int64_t written[3];
	enum sink_status st;

	for (int j = 0; j < 3; j++)
		if ((st = sink_slice_begin(s[j], &t->b, j, merge)) != SINK_OK)
			return st;
	for (size_t i = 0; i < t->nev; i++) {
		int j = (int)event_slice(t->ev[i].id, 3);
		if (i == at) {
			CHECK(sink_slice_rejects(s[0], &t->b) == 0, "rejects: %s",
			    sink_error(s[0]));
			CHECK(t->b.nrej == 0 && t->b.textlen == 0, "handed on: %zu", t->b.nrej);
			CHECK(add_reject(&t->b, 1, 11, REJECT_USER_ID, "late,one", 8) == 0,
			    "reject");
		}
		CHECK(sink_slice_event(s[j], &t->ev[i]) == 0, "event %zu: %s", i,
		    sink_error(s[j]));
	}
	for (int j = 2; j >= 0; j--)
		if ((st = sink_slice_end(s[j], &t->b, j, &written[j])) != SINK_OK)
			return st;
	if ((st = sink_batch_commit(s[0], &t->b, written, 3)) != SINK_OK)
		return st;
	for (int j = 1; j < 3; j++)
		if ((st = sink_slice_commit(s[j], &t->b, j, written[j])) != SINK_OK)
			return st;
	return SINK_OK;
}

/*
 * Rejects handed on in the middle of a batch are stored with slice 0, and those
 * added later at its end: direct, then merged with one of the lines and some
 * events stored already.
 */
static void
rejects_handed_on_mid_batch(void)
{
	struct sink *s[3] = { NULL, NULL, NULL };
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(open_sinks(s, 3) == 0, "sinks");
	CHECK(make_batch(&t, 1, 0, 200) == 0, "make_batch");
	CHECK((st = write_rejects_mid(s, &t, 0, 100)) == SINK_OK, "direct: %d %s", st,
	    sink_error(s[0]));
	CHECK(t.b.n.written == 200, "written %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM event_rejects WHERE file LIKE '1-%%'") == 3,
	    "batch 1: rejects");
	CHECK(sql("INSERT INTO event_rejects (batch_id, file, line_no, reason, raw_line) "
	    "VALUES (0, '2-a.csv', 7, 'price', 'x')") == 0, "pre-insert");
	CHECK(make_batch(&t, 2, 150, 200) == 0, "make_batch");	/* 50 events stored */
	CHECK((st = write_rejects_mid(s, &t, 1, 100)) == SINK_OK, "merged: %d %s", st,
	    sink_error(s[0]));
	CHECK(t.b.n.written == 150, "written %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM event_rejects WHERE file LIKE '2-%%'") == 3,
	    "batch 2: rejects");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE file = '2-a.csv' AND line_no = 7 "
	    "AND batch_id = 0") == 1, "the stored line kept, once");
	CHECK(count("SELECT count(*) FROM evstream_batches WHERE rejected = 3") == 2, "rejected");
	CHECK(count("SELECT count(*) FROM events") == 350 && written_adds_up(), "events");
	tb_free(&t);
	free_sinks(s, 3);
}

/* The files of a committed batch, in its order, with what each was when read. */
static void
batch_files_in_order_with_identities(void)
{
	static const char *const names[3] = { "c.csv", "a.csv", "b.csv" };
	struct sink *s = open_sink(NULL);
	struct tb t;
	struct batch out;

	reset_tables();
	tb_init(&t);
	batch_init(&out);
	t.b.id = 1;
	for (int i = 0; i < 3; i++) {
		CHECK(batch_add_file(&t.b, names[i]) == 0, "file");
		t.b.ids[i].size = 100 * (i + 1);
		t.b.ids[i].mtime_ns = INT64_C(1700000000123456789) + i;
	}
	CHECK(add_events(&t, 0, 10) == 0, "events");
	CHECK(write_batch(s, &t) == SINK_OK, "write: %s", sink_error(s));
	CHECK(sink_batch_files(s, 1, &out) == 0, "files: %s", sink_error(s));
	CHECK(out.nfiles == 3, "nfiles %zu", out.nfiles);
	for (size_t i = 0; i < out.nfiles && i < 3; i++) {
		CHECK(strcmp(out.files[i], names[i]) == 0, "file %zu: %s", i, out.files[i]);
		CHECK(out.ids[i].size == 100 * ((int64_t)i + 1) &&
		    out.ids[i].mtime_ns == INT64_C(1700000000123456789) + (int64_t)i,
		    "file %zu: size %lld mtime %lld", i, (long long)out.ids[i].size,
		    (long long)out.ids[i].mtime_ns);
	}
	/* A file whose claim holds no identity (claimed by the migration): -1. */
	CHECK(sql("UPDATE evstream_files SET size = NULL, mtime_ns = NULL WHERE file = 'a.csv'") ==
	    0, "update");
	batch_reset(&out);
	CHECK(sink_batch_files(s, 1, &out) == 0 && out.nfiles == 3, "files: %s", sink_error(s));
	CHECK(out.nfiles == 3 && out.ids[1].size == -1 && out.ids[1].mtime_ns == -1 &&
	    out.ids[2].size == 300, "unrecorded: %lld %lld", (long long)out.ids[1].size,
	    (long long)out.ids[1].mtime_ns);
	batch_reset(&out);
	CHECK(sink_batch_files(s, 42, &out) == 0 && out.nfiles == 0, "no such batch: %zu",
	    out.nfiles);
	batch_free(&out);
	tb_free(&t);
	sink_free(s);
}

static double now_s(void);

/*
 * Two writers (two evstreams on one spool) stream the same batch through two
 * sessions each and end their slices in crossing order: A's slice 0 holds an id
 * B's slice 0 wants, B's slice 1 one that A's slice 1 wants.  Each server-side
 * wait is on a transaction whose client is itself waiting, so the cycle runs
 * through the clients and the server's deadlock detector cannot see it; the
 * session's lock_timeout (2 s here, through options=) ends it, often on both
 * sides at once (SINK_RETRY for both).  Whatever the order, once each writer
 * has retried: one committed the batch, the other was told SINK_TAKEN, every
 * row is stored once, and nothing hung.
 */
struct crosser {
	struct sink	*s[2];
	struct tb	 t;
	int64_t		 w[2];
};

/*
 * The batch, built anew for every try as evstream reads its files again: slice
 * 0's end hands the rejects on (and empties b's) even when the try then fails.
 */
static int
crosser_build(struct crosser *c, const uint64_t keys[2])
{
	if (make_batch(&c->t, 1, 0, 0) < 0 || add_events(&c->t, keys[0], 1) < 0 ||
	    add_events(&c->t, keys[1], 1) < 0)
		return -1;
	return 0;
}

static int
crosser_open(struct crosser *c, const char *ci, const uint64_t keys[2])
{
	char err[256];

	memset(c, 0, sizeof(*c));
	for (int j = 0; j < 2; j++)
		if ((c->s[j] = sink_new(ci, NULL, err, sizeof(err))) == NULL)
			return -1;
	tb_init(&c->t);
	return crosser_build(c, keys);
}

static void
crosser_close(struct crosser *c)
{
	tb_free(&c->t);
	free_sinks(c->s, 2);
}

/* Open both slices, send the events, end slice `first`: its rows are in. */
static enum sink_status
crosser_start(struct crosser *c, int first)
{
	enum sink_status st;

	for (int j = 0; j < 2; j++)
		if ((st = sink_slice_begin(c->s[j], &c->t.b, j, 0)) != SINK_OK) {
			rollback_all(c->s, j, j);
			return st;
		}
	for (size_t i = 0; i < c->t.nev; i++) {
		int j = (int)event_slice(c->t.ev[i].id, 2);
		if (sink_slice_event(c->s[j], &c->t.ev[i]) < 0) {
			st = sink_slice_failed(c->s[j]);
			rollback_all(c->s, 2, j);
			return st;
		}
	}
	if ((st = sink_slice_end(c->s[first], &c->t.b, first, &c->w[first])) != SINK_OK)
		rollback_all(c->s, 2, first);
	return st;
}

/* End the other slice, commit slice 0, then slice 1. */
static enum sink_status
crosser_finish(struct crosser *c, int second)
{
	enum sink_status st;

	if ((st = sink_slice_end(c->s[second], &c->t.b, second, &c->w[second])) != SINK_OK) {
		rollback_all(c->s, 2, second);
		return st;
	}
	if ((st = sink_batch_commit(c->s[0], &c->t.b, c->w, 2)) != SINK_OK) {
		rollback_all(c->s, 2, 0);
		return st;
	}
	return sink_slice_commit(c->s[1], &c->t.b, 1, c->w[1]);
}

/* The second writer, in a child: its first status * 10 + its final one, as exit status. */
static void
crossing_child(const char *ci, const uint64_t keys[2], int rfd, int wfd)
{
	struct crosser c;
	enum sink_status first, last;
	char ch;

	if (crosser_open(&c, ci, keys) < 0 || read(rfd, &ch, 1) != 1)
		_exit(99);
	if ((first = crosser_start(&c, 1)) != SINK_OK)
		_exit(98);
	if (write(wfd, "r", 1) != 1)
		_exit(97);
	first = last = crosser_finish(&c, 0);
	fprintf(stderr, "crossing writers: B: %d %s [%s]\n", first, sink_error(c.s[0]),
	    sink_sqlstate(c.s[0]));
	if (first != SINK_OK)
		last = crosser_build(&c, keys) < 0 ? SINK_FATAL : write_sliced(c.s, 2, &c.t);
	fprintf(stderr, "crossing writers: B, again: %d %s\n", last, sink_error(c.s[0]));
	crosser_close(&c);
	_exit(first * 10 + last);
}

static void
crossing_writers_resolve(void)
{
	uint64_t keys[2] = { 0, 0 };	/* one for slice 0, one for slice 1 */
	int found = 0, tochild[2], fromchild[2], status = 0;
	struct crosser a;
	enum sink_status first, last = SINK_OK;
	char ci[1024], ch;
	uint8_t id[16];
	double t0, took;
	pid_t pid;

	reset_tables();
	for (uint64_t k = 0; found != 3; k++) {
		key_uuid(k, id);
		unsigned j = event_slice(id, 2);
		if (!(found & (1 << j))) {
			keys[j] = k;
			found |= 1 << j;
		}
	}
	snprintf(ci, sizeof(ci), "%s options='-c lock_timeout=2s'", conninfo);
	CHECK(pipe(tochild) == 0 && pipe(fromchild) == 0, "pipe");
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(tochild[1]);
		close(fromchild[0]);
		crossing_child(ci, keys, tochild[0], fromchild[1]);
	}
	CHECK(pid > 0, "fork");
	close(tochild[0]);
	close(fromchild[1]);
	CHECK(crosser_open(&a, ci, keys) == 0, "open");
	CHECK((first = crosser_start(&a, 0)) == SINK_OK, "A start: %s", sink_error(a.s[0]));
	CHECK(write(tochild[1], "g", 1) == 1 && read(fromchild[0], &ch, 1) == 1, "B started");
	t0 = now_s();
	first = crosser_finish(&a, 1);
	took = now_s() - t0;
	fprintf(stderr, "crossing writers: A: %d %s [%s] after %.2f s\n", first,
	    sink_error(a.s[first == SINK_OK ? 0 : 1]), sink_sqlstate(a.s[1]), took);
	if (first != SINK_OK) {
		CHECK(crosser_build(&a, keys) == 0, "build");
		last = write_sliced(a.s, 2, &a.t);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status), "child");
	took = now_s() - t0;
	status = WEXITSTATUS(status);
	fprintf(stderr, "crossing writers: A %d/%d, B %d/%d, resolved in %.2f s\n", first, last,
	    status / 10, status % 10, took);
	if (first == SINK_OK)
		last = SINK_OK;
	CHECK((first == SINK_OK || first == SINK_RETRY) &&
	    (status / 10 == SINK_OK || status / 10 == SINK_RETRY) &&
	    ((last == SINK_OK && status % 10 == SINK_TAKEN) ||
	    (last == SINK_TAKEN && status % 10 == SINK_OK)),
	    "A: %d then %d, B: %d then %d", first, last, status / 10, status % 10);
	CHECK(took < 12, "took %.1f s", took);
	CHECK(count("SELECT count(*) FROM evstream_batches") == 1, "one batch");
	CHECK(count("SELECT count(*) FROM events") == 2 && written_adds_up(), "events once");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "rejects once: %s",
	    row("SELECT string_agg(batch_id || ':' || file || ':' || line_no, ' ') "
	    "FROM event_rejects"));
	CHECK(count("SELECT count(*) FROM evstream_slices") == 0, "finished");
	close(tochild[1]);
	close(fromchild[0]);
	crosser_close(&a);
}

static void
hostile_schema_name_is_quoted(void)
{
	struct sink *s;
	struct tb t;
	int64_t last, maxt;
	enum sink_status st;

	reset_tables();
	CHECK(sql("CREATE TABLE IF NOT EXISTS public.x (i int)") == 0, "create x");
	CHECK(make_schema(HOSTILE_SCHEMA) == 0, "make schema");
	s = open_sink(HOSTILE_SCHEMA);
	tb_init(&t);
	CHECK(make_batch(&t, 9, 0, 20) == 0, "make_batch");
	CHECK((st = write_batch(s, &t)) == SINK_OK, "write: %d %s", st, sink_error(s));
	CHECK(t.b.n.written == 20, "written");
	CHECK(count("SELECT count(*) FROM \"ev\"\"il; drop table x\".events") == 20, "events");
	CHECK(count("SELECT count(*) FROM \"ev\"\"il; drop table x\".event_rejects") == 2, "rej");
	CHECK(count("SELECT count(*) FROM public.events") == 0, "nothing in public");
	CHECK(count("SELECT count(*) FROM public.x") == 0, "table x survived");
	CHECK(sink_last_batch(s, &last, &maxt) == 0 && last == 9, "last batch %lld",
	    (long long)last);
	/* Replay, then the conflict path, in the same schema. */
	CHECK(write_batch(s, &t) == SINK_TAKEN, "again: %s", sink_error(s));
	CHECK(make_batch(&t, 10, 10, 20) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK && t.b.n.written == 10, "overlap: %s",
	    sink_error(s));
	tb_free(&t);
	sink_free(s);
	CHECK(sql("DROP SCHEMA \"ev\"\"il; drop table x\" CASCADE; DROP TABLE public.x") == 0,
	    "cleanup");
}

static void
missing_tables_are_fatal(void)
{
	struct sink *s = open_sink("no_such_schema");

	CHECK(sink_connect(s) == SINK_FATAL, "connect: %s", sink_error(s));
	CHECK(strstr(sink_error(s), "events") != NULL, "names the table: %s", sink_error(s));
	CHECK(!sink_connected(s), "not left connected");
	sink_free(s);
}

static void
malformed_batch_is_fatal(void)
{
	struct sink *s = open_sink(NULL);
	struct tb t;
	enum sink_status st;

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 3) == 0, "make_batch");
	t.b.rej[0].file = 99;
	CHECK((st = write_batch(s, &t)) == SINK_FATAL, "bad file index: %d %s", st, sink_error(s));
	CHECK(count("SELECT count(*) FROM evstream_batches") == 0, "nothing written");
	/* An event the formatter cannot write: a bug upstream, as fatal. */
	CHECK(make_batch(&t, 1, 0, 3) == 0, "make_batch");
	t.ev[1].type = 7;
	CHECK((st = write_batch(s, &t)) == SINK_FATAL, "bad event type: %d %s", st,
	    sink_error(s));
	CHECK(count("SELECT count(*) FROM evstream_batches") == 0, "nothing written");
	CHECK(count("SELECT count(*) FROM events") == 0, "no events written");
	tb_free(&t);
	sink_free(s);
}

/* --- secrets ------------------------------------------------------------------------- */

static void
conninfo_syntax_error_hides_values(void)
{
	char err[256];
	struct sink *s;

	s = sink_new("host=x password=Sekr1tPw junkword", NULL, err, sizeof(err));
	CHECK(s == NULL, "accepted");
	CHECK(strstr(err, "junkword") == NULL && strstr(err, "Sekr1tPw") == NULL, "%s", err);
	CHECK(strstr(err, "conninfo") != NULL, "says what: %s", err);
	sink_free(s);
	s = sink_new("password='Sekr1tPw", NULL, err, sizeof(err));
	CHECK(s == NULL && strstr(err, "Sekr1tPw") == NULL, "%s", err);
	sink_free(s);
}

/* Environment that would override the conninfo under test; restored by the caller. */
static char *saved_env[5];
static const char *const env_names[5] = { "PGHOST", "PGPORT", "PGUSER", "PGDATABASE",
	"PGPASSWORD" };

static void
env_save_clear(void)
{
	for (int i = 0; i < 5; i++) {
		const char *v = getenv(env_names[i]);
		saved_env[i] = v ? strdup(v) : NULL;
		unsetenv(env_names[i]);
	}
}

static void
env_restore(void)
{
	for (int i = 0; i < 5; i++) {
		if (saved_env[i] != NULL)
			setenv(env_names[i], saved_env[i], 1);
		else
			unsetenv(env_names[i]);
		free(saved_env[i]);
		saved_env[i] = NULL;
	}
}

static void
refused_connection_hides_password(void)
{
	char err[256];
	struct sink *s;

	env_save_clear();
	s = sink_new("host=127.0.0.1 port=1 user=u dbname=d password=Sekr1tPw connect_timeout=2",
	    NULL, err, sizeof(err));
	CHECK(s != NULL, "sink_new: %s", err);
	if (s != NULL) {
		CHECK(sink_connect(s) == SINK_RETRY, "connect to port 1");
		CHECK(*sink_error(s) != '\0', "an error");
		CHECK(strstr(sink_error(s), "Sekr1tPw") == NULL, "%s", sink_error(s));
		CHECK(strchr(sink_error(s), '\n') == NULL, "one line: %s", sink_error(s));
		CHECK(strstr(sink_target(s), "Sekr1tPw") == NULL, "%s", sink_target(s));
		CHECK(strcmp(sink_sqlstate(s), "") == 0, "no sqlstate");
	}
	sink_free(s);
	env_restore();
}

/* sink_pg.sh makes this role authenticate with scram-sha-256 over TCP. */
static void
wrong_password_is_retry_without_password(void)
{
	const char *role = getenv("EVPIPE_PG_SCRAM_ROLE"), *port = getenv("PGPORT");
	char ci[512], err[256];
	struct sink *s;

	CHECK(sql("ALTER ROLE \"%s\" PASSWORD 'Right-Pw-123'", role) == 0, "set password");
	snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%s user=%s dbname=evpipe "
	    "password=Wrong-Pw-456", port, role);
	env_save_clear();
	s = sink_new(ci, NULL, err, sizeof(err));
	CHECK(s != NULL, "sink_new: %s", err);
	if (s != NULL) {
		CHECK(sink_connect(s) == SINK_RETRY, "wrong password accepted?");
		CHECK(strstr(sink_error(s), "password authentication failed") != NULL, "%s",
		    sink_error(s));
		CHECK(strstr(sink_error(s), "Wrong-Pw-456") == NULL &&
		    strstr(sink_error(s), "Right-Pw-123") == NULL, "%s", sink_error(s));
	}
	sink_free(s);
	/* The same role with the right password from POSTGRES_PASSWORD, which wins. */
	setenv("POSTGRES_PASSWORD", "Right-Pw-123", 1);
	s = sink_new(ci, NULL, err, sizeof(err));
	CHECK(s != NULL && sink_connect(s) == SINK_OK, "POSTGRES_PASSWORD: %s",
	    s ? sink_error(s) : err);
	unsetenv("POSTGRES_PASSWORD");
	sink_free(s);
	env_restore();
}

/* POSTGRES_* beat PG*, which beat conninfo. */
static void
environment_overrides_conninfo(void)
{
	char ci[512], err[256];
	const char *port = getenv("PGPORT");
	struct sink *s;

	snprintf(ci, sizeof(ci), "%s port=1 dbname=no_such_db", conninfo);
	s = sink_new(ci, NULL, err, sizeof(err));	/* PGPORT, PGDATABASE from the env */
	CHECK(s != NULL && sink_connect(s) == SINK_OK, "PG*: %s", s ? sink_error(s) : err);
	CHECK(s != NULL && strstr(sink_target(s), port) != NULL, "target %s",
	    s ? sink_target(s) : "");
	sink_free(s);
	setenv("POSTGRES_PORT", "1", 1);
	s = sink_new(ci, NULL, err, sizeof(err));	/* POSTGRES_PORT=1 wins: refused */
	CHECK(s != NULL && sink_connect(s) == SINK_RETRY, "POSTGRES_PORT ignored");
	unsetenv("POSTGRES_PORT");
	sink_free(s);
}

/* --- failures ------------------------------------------------------------------------ */

static void
permission_denied_is_retry_with_sqlstate(void)
{
	char ci[512], err[256];
	struct sink *s;
	struct tb t;

	reset_tables();
	CHECK(sql("DROP ROLE IF EXISTS evpipe_ro; CREATE ROLE evpipe_ro LOGIN;"
	    "GRANT SELECT ON events, event_rejects, evstream_batches, evstream_files TO evpipe_ro;"
	    "GRANT INSERT ON evstream_files TO evpipe_ro") == 0, "role");
	snprintf(ci, sizeof(ci), "%s user=evpipe_ro", conninfo);
	env_save_clear();
	s = sink_new(ci, NULL, err, sizeof(err));
	env_restore();
	tb_init(&t);
	CHECK(s != NULL && make_batch(&t, 1, 0, 10) == 0, "setup");
	if (s != NULL) {
		CHECK(write_batch(s, &t) == SINK_RETRY, "no INSERT privilege");
		CHECK(strcmp(sink_sqlstate(s), "42501") == 0, "sqlstate %s", sink_sqlstate(s));
		CHECK(strstr(sink_error(s), "COPY events: ERROR 42501 permission denied") != NULL,
		    "%s", sink_error(s));
		CHECK(sink_connected(s), "connection kept after a server-side error");
	}
	CHECK(count("SELECT count(*) FROM evstream_batches") == 0, "nothing written");
	tb_free(&t);
	sink_free(s);
	CHECK(sql("DROP OWNED BY evpipe_ro; DROP ROLE evpipe_ro") == 0, "drop role");
}

/* The server ends our session in the middle of a COPY (as on a crash or failover). */
static void
connection_lost_mid_copy_then_same_batch_once(void)
{
	struct sink *s;
	struct tb t;
	enum sink_status st;

	CHECK(make_schema("killtest") == 0, "schema");
	CHECK(sql("CREATE FUNCTION killtest.die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	    "IF NEW.user_id = 999999 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
	    "PERFORM pg_sleep(10); END IF; RETURN NEW; END $$;"
	    "CREATE TRIGGER die BEFORE INSERT ON killtest.events FOR EACH ROW "
	    "EXECUTE FUNCTION killtest.die()") == 0, "trigger");
	s = open_sink("killtest");
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 100000) == 0, "make_batch");
	t.ev[30000].user_id = 999999;	/* ~3 MiB into the COPY */
	CHECK((st = write_batch(s, &t)) == SINK_RETRY, "write: %d", st);
	CHECK(!sink_connected(s), "connection seen as lost");
	CHECK(*sink_error(s) != '\0', "error set");
	CHECK(count("SELECT count(*) FROM killtest.events") == 0, "nothing committed");
	CHECK(sql("DROP TRIGGER die ON killtest.events") == 0, "drop trigger");
	CHECK((st = sink_connect(s)) == SINK_OK, "reconnect: %s", sink_error(s));
	CHECK((st = write_batch(s, &t)) == SINK_OK, "retry: %d %s", st, sink_error(s));
	CHECK(t.b.n.written == 100000, "written %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM killtest.events") == 100000, "events");
	CHECK(count("SELECT count(*) FROM killtest.event_rejects") == 2, "rejects");
	CHECK(count("SELECT count(*) FROM killtest.evstream_batches") == 1, "batch row");
	tb_free(&t);
	sink_free(s);
	CHECK(sql("DROP SCHEMA killtest CASCADE") == 0, "cleanup");
}

/* A connection that died while idle is reopened by the next write, no RETRY needed. */
static void
idle_connection_killed_is_reopened(void)
{
	struct sink *s = open_sink(NULL);
	struct tb t;

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 10) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK, "first: %s", sink_error(s));
	CHECK(count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	    "WHERE application_name = 'evstream'") >= 1, "an evstream session to kill");
	for (int i = 0; i < 100 && count("SELECT count(*) FROM pg_stat_activity "
	    "WHERE application_name = 'evstream'") > 0; i++)
		usleep(50000);	/* gone, so the next BEGIN surely meets a dead socket */
	CHECK(make_batch(&t, 2, 10, 10) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK, "after kill: %s", sink_error(s));
	CHECK(t.b.n.written == 10 && count("SELECT count(*) FROM events") == 20, "counts");
	tb_free(&t);
	sink_free(s);
}

static int
ask_driver(const char *what)
{
	char line[64];

	printf("ASK: %s\n", what);
	fflush(stdout);
	if (fgets(line, sizeof(line), stdin) == NULL)
		return -1;
	return strncmp(line, "ok", 2) == 0 ? 0 : -1;
}

/* The server goes away between batches (`stop`: fast shutdown, `kill`: a crash). */
static void
server_outage(const char *how)
{
	struct sink *s = open_sink(NULL);
	struct tb t;
	enum sink_status st;
	char got[128];

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 1000) == 0, "make_batch");
	CHECK(write_batch(s, &t) == SINK_OK, "first: %s", sink_error(s));
	CHECK(ask_driver(how) == 0, "driver could not %s the server", how);
	CHECK(make_batch(&t, 2, 1000, 1000) == 0, "make_batch");
	CHECK((st = write_batch(s, &t)) == SINK_RETRY, "write while down: %d", st);
	CHECK(*sink_error(s) != '\0' && !sink_connected(s), "error: %s", sink_error(s));
	CHECK(sink_connect(s) == SINK_RETRY, "connect while down");
	CHECK(ask_driver("start") == 0, "driver could not start the server");
	admin_reconnect();
	CHECK((st = sink_connect(s)) == SINK_OK, "connect after restart: %s", sink_error(s));
	CHECK((st = write_batch(s, &t)) == SINK_OK, "retry: %d %s", st, sink_error(s));
	CHECK(t.b.n.written == 1000, "written %lld", (long long)t.b.n.written);
	CHECK(count("SELECT count(*) FROM events") == 2000, "events");
	CHECK(count("SELECT count(*) FROM event_rejects") == 4, "rejects");
	snprintf(got, sizeof(got), "%s", row("SELECT string_agg(batch_id::text, ',' "
	    "ORDER BY batch_id) || '|' || sum(written) FROM evstream_batches"));
	CHECK(strcmp(got, "1,2|2000") == 0, "batch rows: %s", got);
	tb_free(&t);
	sink_free(s);
}

static void
server_stopped_then_same_batch_once(void)
{
	server_outage("stop");
}

static void
server_crashed_then_same_batch_once(void)
{
	server_outage("kill");
}

/* --- readers ------------------------------------------------------------------------- */

struct seen {
	int64_t ids[8], times[8];
	char files[8][4][64];
	size_t nfiles[8];
	int n;
	int stop_after;
};

static int
on_batch(void *arg, int64_t id, char *const *files, size_t nfiles, int64_t t)
{
	struct seen *v = arg;

	if (v->n == 8)
		return 99;
	v->ids[v->n] = id;
	v->times[v->n] = t;
	v->nfiles[v->n] = nfiles;
	for (size_t i = 0; i < nfiles && i < 4; i++)
		snprintf(v->files[v->n][i], 64, "%s", files[i]);
	v->n++;
	return v->stop_after && v->n == v->stop_after ? 7 : 0;
}

static void
readers_return_what_was_written(void)
{
	struct sink *s = open_sink(NULL);
	struct seen v;
	struct tb t;
	int64_t last, maxt;

	reset_tables();
	CHECK(sink_last_batch(s, &last, &maxt) == 0 && last == 0 && maxt == EVENT_TIME_NONE,
	    "empty: %lld", (long long)last);
	tb_init(&t);
	for (int64_t id = 1; id <= 3; id++) {
		CHECK(make_batch(&t, id, (uint64_t)id * 100, 10) == 0, "make_batch");
		CHECK(write_batch(s, &t) == SINK_OK, "write %lld: %s", (long long)id,
		    sink_error(s));
	}
	/* Batch 4: no events, no files, no max time. */
	tb_reset(&t);
	t.b.id = 4;
	CHECK(write_batch(s, &t) == SINK_OK, "empty batch: %s", sink_error(s));
	CHECK(sink_last_batch(s, &last, &maxt) == 0 && last == 4 && maxt == EVENT_TIME_NONE,
	    "last %lld", (long long)last);
	memset(&v, 0, sizeof(v));
	CHECK(sink_batches_after(s, 1, on_batch, &v) == 0, "after 1: %s", sink_error(s));
	CHECK(v.n == 3 && v.ids[0] == 2 && v.ids[1] == 3 && v.ids[2] == 4, "ids n=%d", v.n);
	CHECK(v.nfiles[0] == 2 && strcmp(v.files[0][0], "2-a.csv") == 0 &&
	    strcmp(v.files[0][1], "2-b.csv") == 0, "files of 2");
	CHECK(v.times[1] == T2023 + 309 * INT64_C(1000000) + 309, "max time of 3: %lld",
	    (long long)v.times[1]);
	CHECK(v.nfiles[2] == 0 && v.times[2] == EVENT_TIME_NONE, "batch 4 empty");
	memset(&v, 0, sizeof(v));
	v.stop_after = 1;
	CHECK(sink_batches_after(s, 0, on_batch, &v) == 7 && v.n == 1, "callback stops");
	tb_free(&t);
	sink_free(s);
}

struct ids { long n; int64_t min, max; long stop_at; };

static int
on_id(void *arg, const uint8_t id[16], int64_t t)
{
	struct ids *v = arg;

	(void)id;
	if (v->n == 0 || t < v->min)
		v->min = t;
	if (v->n == 0 || t > v->max)
		v->max = t;
	return ++v->n == v->stop_at ? 5 : 0;
}

static void
load_ids_streams_in_chunks(void)
{
	struct sink *s = open_sink(NULL);
	struct ids v;
	struct tb t;

	reset_tables();
	tb_init(&t);
	CHECK(make_batch(&t, 1, 0, 25000) == 0, "make_batch");	/* more than one FETCH */
	CHECK(write_batch(s, &t) == SINK_OK, "write: %s", sink_error(s));
	memset(&v, 0, sizeof(v));
	CHECK(sink_load_ids_since(s, EVENT_TIME_NONE, on_id, &v) == 0, "all: %s", sink_error(s));
	CHECK(v.n == 25000 && v.min == T2023 && v.max == t.b.max_time_us, "n=%ld", v.n);
	memset(&v, 0, sizeof(v));
	CHECK(sink_load_ids_since(s, T2023 + 20000 * INT64_C(1000000), on_id, &v) == 0, "since");
	CHECK(v.n == 5000, "since: n=%ld", v.n);
	memset(&v, 0, sizeof(v));
	v.stop_at = 12345;
	CHECK(sink_load_ids_since(s, EVENT_TIME_NONE, on_id, &v) == 5 && v.n == 12345, "stop");
	CHECK(sink_last_batch(s, &t.b.id, &t.b.max_time_us) == 0, "usable after a stop: %s",
	    sink_error(s));
	tb_free(&t);
	sink_free(s);
}

/* --- bytes ---------------------------------------------------------------------------- */

static void
hostile_raw_lines_and_file_names_round_trip(void)
{
#define L(s) { s, sizeof(s) - 1 }
	static const struct { const char *raw; size_t len; } lines[] = {
		L("nul\0inside"),
		L("bad \xff\xfe utf8 \xc3"),
		L("tab\there"),
		L("new\nline\r\n"),
		L("back\\slash \\. \\N"),
		L("\\."),
		L("caf\xc3\xa9 \xf0\x9f\x98\x80"),
		L(""),
	};
#undef L
	const char *fname = "we\"ird,{f}\\il\te\xff.csv";
	struct sink *s = open_sink(NULL);
	struct seen v;
	struct tb t;
	char want[128], got[128];

	reset_tables();
	tb_init(&t);
	t.b.id = 1;
	CHECK(batch_add_file(&t.b, fname) == 0, "file");
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		CHECK(add_reject(&t.b, 0, (int64_t)i + 1, REJECT_EVENT_ID, lines[i].raw,
		    lines[i].len) == 0, "reject");
	CHECK(write_batch(s, &t) == SINK_OK, "write: %s", sink_error(s));
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		want[sink_format_utf8(want, lines[i].raw, lines[i].len)] = '\0';
		snprintf(got, sizeof(got), "%s", row("SELECT raw_line FROM event_rejects "
		    "WHERE line_no = %zu", i + 1));
		CHECK(strcmp(got, want) == 0, "line %zu: '%s' != '%s'", i + 1, got, want);
	}
	want[sink_format_utf8(want, fname, strlen(fname))] = '\0';
	CHECK(strcmp(row("SELECT DISTINCT file FROM event_rejects"), want) == 0, "file column");
	memset(&v, 0, sizeof(v));
	CHECK(sink_batches_after(s, 0, on_batch, &v) == 0 && v.n == 1 && v.nfiles[0] == 1,
	    "batches_after");
	CHECK(strcmp(v.files[0][0], want) == 0, "files[]: '%s'", v.files[0][0]);
	tb_free(&t);
	sink_free(s);
}

struct times { int64_t want[16]; int n, bad; };

static int
on_time(void *arg, const uint8_t id[16], int64_t t)
{
	struct times *v = arg;
	int i = id[15];

	if (i >= v->n || v->want[i] != t)
		v->bad++;
	return 0;
}

/* What we print is what the server reads: 1 BC, year 1, 1969, 9999. */
static void
extreme_timestamps_round_trip(void)
{
	static const int64_t tv[] = { -62198755200000000, -62167219200000000, -62135596800000001,
	    -62135596800000000, -1, 0, 1, 951782400000000, 253402300799999999 };
	static const char *const text[] = { "0002-01-01 00:00:00+00 BC", "0001-01-01 00:00:00+00 BC",
	    "0001-12-31 23:59:59.999999+00 BC", "0001-01-01 00:00:00+00",
	    "1969-12-31 23:59:59.999999+00", "1970-01-01 00:00:00+00",
	    "1970-01-01 00:00:00.000001+00", "2000-02-29 00:00:00+00",
	    "9999-12-31 23:59:59.999999+00" };
	struct sink *s = open_sink(NULL);
	struct times v = { .n = (int)(sizeof(tv) / sizeof(tv[0])) };
	struct tb t;
	char uuid[40];

	reset_tables();
	tb_init(&t);
	t.b.id = 1;
	for (int i = 0; i < v.n; i++) {
		struct event *e = tb_add_event(&t);
		CHECK(e != NULL, "add");
		if (e == NULL)
			break;
		memset(e, 0, sizeof(*e));
		e->id[15] = (uint8_t)i;
		e->time_us = v.want[i] = tv[i];
		e->user_id = e->product_id = 1;
		e->price_cents = 1;
	}
	CHECK(write_batch(s, &t) == SINK_OK, "write: %s", sink_error(s));
	CHECK(sink_load_ids_since(s, EVENT_TIME_NONE, on_time, &v) == 0 && v.bad == 0,
	    "%d differ", v.bad);
	for (int i = 0; i < v.n; i++) {
		(void)id_hex(uuid, t.ev[i].id);
		CHECK(strcmp(row("SELECT event_time FROM events WHERE event_id = '%s'", uuid),
		    text[i]) == 0, "%d: %s != %s", i, row("SELECT 1"), text[i]);
	}
	tb_free(&t);
	sink_free(s);
}

static void
application_name_is_evstream(void)
{
	struct sink *s = open_sink(NULL);

	CHECK(sink_connect(s) == SINK_OK, "connect: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'evstream'")
	    >= 1, "application_name");
	sink_disconnect(s);
	CHECK(!sink_connected(s), "disconnected");
	sink_free(s);
}

/* --- throughput (EVPIPE_SINK_BENCH=rows; not part of the test) ------------------------ */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
cpu_s(void)		/* this process: formatting, libpq, the kernel's send path */
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int
bench(long rows)
{
	const char *env = getenv("EVPIPE_SINK_BENCH_SESSIONS");
	int n = env != NULL ? atoi(env) : 1;
	struct sink *s[SINK_MAX_SLICES];
	struct tb t;
	double t0, t1, c0;
	int rc = 0;

	if (n < 1 || n > SINK_MAX_SLICES)
		n = 1;
	tb_init(&t);
	if (open_sinks(s, n) < 0 || make_batch(&t, 1, 0, (size_t)rows) < 0)
		return 1;
	reset_tables();
	if (sql("CHECKPOINT") < 0)	/* start from a clean state */
		return 1;
	for (int j = 0; j < n; j++)
		if (sink_connect(s[j]) != SINK_OK)
			return 1;
	t0 = now_s();
	c0 = cpu_s();
	if (write_sliced(s, n, &t) != SINK_OK)
		rc = 1;
	t1 = now_s() - t0;
	printf("direct COPY, %d sessions: %ld rows in %.3f s: %.0f rows/s, client CPU %.3f s "
	    "(%s)\n", n, rows, t1, (double)rows / t1, cpu_s() - c0, sink_error(s[0]));
	/* The conflict path: the same events again under a new batch id (all duplicates),
	 * then half old, half new. */
	if (make_batch(&t, 2, 0, (size_t)rows) < 0)
		return 1;
	t0 = now_s();
	if (write_sliced(s, n, &t) != SINK_OK)
		rc = 1;
	printf("conflict, then staging path, all %ld duplicates: %.3f s, written %lld\n", rows,
	    now_s() - t0, (long long)t.b.n.written);
	if (make_batch(&t, 3, (uint64_t)rows / 2, (size_t)rows) < 0)
		return 1;
	t0 = now_s();
	if (write_sliced(s, n, &t) != SINK_OK)
		rc = 1;
	printf("conflict, then staging path, half new: %.3f s, written %lld\n", now_s() - t0,
	    (long long)t.b.n.written);
	tb_free(&t);
	free_sinks(s, n);
	return rc;
}

int
main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	log_open("test_sink_pg", LOG_LVL_WARNING);
	if ((conninfo = getenv("EVPIPE_CONNINFO")) == NULL || *conninfo == '\0') {
		printf("SKIP: sink_pg: EVPIPE_CONNINFO not set\n");
		return 0;
	}
	admin_reconnect();
	if (getenv("EVPIPE_SINK_BENCH") != NULL)
		return bench(atol(getenv("EVPIPE_SINK_BENCH")));
	RUN(batch_lands_whole_with_exact_counts);
	RUN(committed_batch_id_is_taken);
	RUN(racing_writers_one_batch_id);
	RUN(taken_batch_id_or_file_is_refused);
	RUN(overlapping_batch_writes_only_new_events);
	RUN(stored_reject_is_not_stored_twice);
	RUN(sliced_batch_lands_once);
	RUN(unfinished_slice_is_reported_then_finished);
	RUN(unfinished_slices_finished_through_the_stage);
	RUN(sliced_conflict_then_merge_stores_new_rows);
	RUN(rejects_handed_on_mid_batch);
	RUN(batch_files_in_order_with_identities);
	RUN(crossing_writers_resolve);
	RUN(hostile_schema_name_is_quoted);
	RUN(missing_tables_are_fatal);
	RUN(malformed_batch_is_fatal);
	RUN(conninfo_syntax_error_hides_values);
	RUN(refused_connection_hides_password);
	if (getenv("EVPIPE_PG_SCRAM_ROLE") != NULL && getenv("PGPORT") != NULL)
		RUN(wrong_password_is_retry_without_password);
	else
		printf("SKIP: wrong_password: needs EVPIPE_PG_SCRAM_ROLE and PGPORT (sink_pg.sh)\n");
	if (getenv("PGPORT") != NULL && getenv("PGDATABASE") != NULL)
		RUN(environment_overrides_conninfo);
	else
		printf("SKIP: environment_overrides_conninfo: needs PGPORT and PGDATABASE\n");
	RUN(permission_denied_is_retry_with_sqlstate);
	RUN(connection_lost_mid_copy_then_same_batch_once);
	RUN(idle_connection_killed_is_reopened);
	if (getenv("EVPIPE_PG_DRIVER") != NULL) {
		RUN(server_stopped_then_same_batch_once);
		RUN(server_crashed_then_same_batch_once);
	} else
		printf("SKIP: server_outage: needs tests/integration/sink_pg.sh as driver\n");
	RUN(readers_return_what_was_written);
	RUN(load_ids_streams_in_chunks);
	RUN(hostile_raw_lines_and_file_names_round_trip);
	RUN(extreme_timestamps_round_trip);
	RUN(application_name_is_evstream);
	PQfinish(admin);
	return check_exit();
}
