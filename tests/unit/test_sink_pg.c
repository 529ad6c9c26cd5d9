/*
 * test_sink_pg — what the sink promises, against a real PostgreSQL:
 * a batch lands whole (events, rejects, the batch row) with exact counts; a
 * replayed batch is a no-op; a batch that overlaps stored events writes only the
 * new ones; a hostile schema name is only ever an identifier; no password in an
 * error; a lost connection or a stopped server means SINK_RETRY and the same
 * batch then succeeds exactly once; the readers return what was written; raw
 * lines with NUL, bad UTF-8 and COPY specials survive; timestamps round-trip
 * from 1 BC to 9999.
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
 * look at what landed; only the code under test is confined to src/sink.c.
 *
 * EVPIPE_SINK_BENCH=ROWS turns it into a throughput measurement instead: one
 * batch of ROWS events by direct COPY, then the same events again (the staging
 * path, all duplicates), then half old half new.  Build it with -O2 for that.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
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

static void
reset_tables(void)
{
	if (sql("TRUNCATE events, event_rejects, evstream_batches, evstream_files") < 0)
		exit(1);
}

/* A schema holding copies of the three tables. */
static int
make_schema(const char *name)
{
	char *q = PQescapeIdentifier(admin, name, strlen(name));
	int rc = sql("DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s;"
	    "CREATE TABLE %s.events (LIKE public.events INCLUDING ALL);"
	    "CREATE TABLE %s.event_rejects (LIKE public.event_rejects INCLUDING ALL);"
	    "CREATE TABLE %s.evstream_batches (LIKE public.evstream_batches INCLUDING ALL);"
	    "CREATE TABLE %s.evstream_files (LIKE public.evstream_files INCLUDING ALL)",
	    q, q, q, q, q, q);

	PQfreemem(q);
	return rc;
}

/* --- batches ------------------------------------------------------------------------- */

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
add_events(struct batch *b, uint64_t first, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct event *e = batch_add_event(b);
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
	return batch_add_reject(b, file, line, why, raw, len);
}

/* Batch `id`: files "id-a.csv" and "id-b.csv", events [first, first+n), two rejects. */
static int
make_batch(struct batch *b, int64_t id, uint64_t first, size_t n)
{
	char name[64];

	batch_reset(b);
	b->id = id;
	for (int i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "%lld-%c.csv", (long long)id, 'a' + i);
		if (batch_add_file(b, name) < 0)
			return -1;
	}
	if (add_events(b, first, n) < 0 ||
	    add_reject(b, 0, 7, REJECT_PRICE, "x,1,view,2,-1,2023-01-01", 24) < 0 ||
	    add_reject(b, 1, 9, REJECT_COLUMN_COUNT, "only,three,fields", 17) < 0)
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

/* --- the promises -------------------------------------------------------------------- */

static void
batch_lands_whole_with_exact_counts(void)
{
	struct sink *s = open_sink(NULL);
	struct batch b;
	enum sink_status st;

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 1000) == 0, "make_batch");
	b.watermark_us = T2023;
	b.n.late = 3;
	b.n.dup = 2;
	CHECK((st = sink_connect(s)) == SINK_OK, "connect: %d %s", st, sink_error(s));
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "write: %d %s", st, sink_error(s));
	CHECK(b.n.written == 1000, "written %lld", (long long)b.n.written);
	CHECK(!sink_replayed(s), "not a replay");
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
	struct event *e = &b.ev[123];
	char uuid[40], want[128];
	char got[128];
	uuid[sink_format_uuid(uuid, e->id)] = '\0';
	snprintf(want, sizeof(want), "%d|%s|%d|%lld.%02lld|%lld", e->user_id,
	    event_type_names[e->type], e->product_id, (long long)(e->price_cents / 100),
	    (long long)(e->price_cents % 100), (long long)e->time_us);
	snprintf(got, sizeof(got), "%s", row("SELECT user_id, event_type, product_id, price, "
	    "(extract(epoch FROM event_time) * 1000000)::bigint FROM events WHERE event_id = '%s'",
	    uuid));
	CHECK(strcmp(got, want) == 0, "event 123: %s != %s", got, want);
	batch_free(&b);
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
 * or a file another batch committed, is SINK_TAKEN with nothing written, never a
 * replay; sink_file_owners says who has the file.
 */
static void
taken_batch_id_or_file_is_refused(void)
{
	struct sink *s = open_sink(NULL);
	struct batch b;
	enum sink_status st;
	char owners[128] = "";

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 10) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "first: %s", sink_error(s));
	/* Same id, other files (another evstream's batch 1). */
	CHECK(make_batch(&b, 2, 100, 10) == 0, "make_batch");
	b.id = 1;
	CHECK((st = sink_write_batch(s, &b)) == SINK_TAKEN, "same id: %d %s", st, sink_error(s));
	CHECK(!sink_replayed(s) && strstr(sink_error(s), "other files") != NULL, "said: %s",
	    sink_error(s));
	/* A new id, but a file batch 1 committed. */
	CHECK(make_batch(&b, 2, 100, 10) == 0 && batch_add_file(&b, "1-b.csv") == 0, "make_batch");
	CHECK((st = sink_write_batch(s, &b)) == SINK_TAKEN, "file: %d %s", st, sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 10, "nothing written");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "no rejects written");
	CHECK(count("SELECT count(*) FROM evstream_files") == 2, "two files claimed");
	CHECK(sink_file_owners(s, b.files, b.nfiles, on_owner, owners) == 0, "owners: %s",
	    sink_error(s));
	CHECK(strcmp(owners, "1-b.csv=1 ") == 0, "owners: %s", owners);
	/* Without it, the batch goes through on the same connection. */
	CHECK(make_batch(&b, 2, 100, 10) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK && b.n.written == 10, "then: %s", sink_error(s));
	CHECK(count("SELECT count(*), count(DISTINCT file) FROM evstream_files") == 4, "files");
	batch_free(&b);
	sink_free(s);
}

static void
replayed_batch_is_a_noop(void)
{
	struct sink *s = open_sink("public");
	struct batch b;
	enum sink_status st;

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 5, 0, 100) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "first: %s", sink_error(s));
	CHECK(b.n.written == 100, "written %lld", (long long)b.n.written);
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "replay: %d %s", st, sink_error(s));
	CHECK(sink_replayed(s), "reported as a replay");
	CHECK(b.n.written == 0, "replay wrote %lld", (long long)b.n.written);
	CHECK(count("SELECT count(*) FROM events") == 100, "events");
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "rejects not doubled");
	CHECK(count("SELECT count(*) FROM evstream_batches") == 1, "one batch row");
	CHECK(count("SELECT written FROM evstream_batches") == 100, "first written kept");
	/* And the connection is usable afterwards (the replay rolled back cleanly). */
	CHECK(make_batch(&b, 6, 100, 10) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK && b.n.written == 10, "next: %s", sink_error(s));
	CHECK(!sink_replayed(s), "next is not a replay");
	batch_free(&b);
	sink_free(s);
}

static void
overlapping_batch_writes_only_new_events(void)
{
	struct sink *s = open_sink(NULL);
	struct batch b;
	enum sink_status st;

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 500) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "first: %s", sink_error(s));
	/* Batch 2: events 400..799 (100 stored already), plus one in-batch duplicate. */
	CHECK(make_batch(&b, 2, 400, 400) == 0 && add_events(&b, 700, 1) == 0, "make_batch");
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "overlap: %d %s", st, sink_error(s));
	CHECK(b.n.written == 300, "written %lld, want 300", (long long)b.n.written);
	CHECK(*sink_error(s) == '\0', "handled conflict leaves no error: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 800, "events");
	CHECK(count("SELECT written FROM evstream_batches WHERE batch_id = 2") == 300, "row");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE batch_id = 2") == 2, "rejects");
	/* The stage table is empty again and the next batch takes the fast path. */
	CHECK(make_batch(&b, 3, 800, 50) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK && b.n.written == 50, "next: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM events") == 850, "events after");
	batch_free(&b);
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
	struct batch b;
	enum sink_status st;

	reset_tables();
	batch_init(&b);
	CHECK(sql("INSERT INTO event_rejects (batch_id, file, line_no, reason, raw_line) "
	    "VALUES (0, '1-a.csv', 7, 'price', 'x,1,view,2,-1,2023-01-01')") == 0, "pre-insert");
	CHECK(make_batch(&b, 1, 0, 10) == 0, "make_batch");
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "write: %d %s", st, sink_error(s));
	CHECK(*sink_error(s) == '\0', "handled conflict leaves no error: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM event_rejects") == 2, "rejects: one per line");
	CHECK(count("SELECT count(*) FROM event_rejects WHERE file = '1-a.csv' AND line_no = 7") ==
	    1, "the stored line once");
	CHECK(count("SELECT count(*) FROM events") == 10 && b.n.written == 10, "events");
	/* The stage is empty again and the next batch takes the fast path. */
	CHECK(make_batch(&b, 2, 10, 10) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "next: %s", sink_error(s));
	CHECK(count("SELECT count(*) FROM event_rejects") == 4, "rejects after");
	batch_free(&b);
	sink_free(s);
}

static void
hostile_schema_name_is_quoted(void)
{
	struct sink *s;
	struct batch b;
	int64_t last, t;
	enum sink_status st;

	reset_tables();
	CHECK(sql("CREATE TABLE IF NOT EXISTS public.x (i int)") == 0, "create x");
	CHECK(make_schema(HOSTILE_SCHEMA) == 0, "make schema");
	s = open_sink(HOSTILE_SCHEMA);
	batch_init(&b);
	CHECK(make_batch(&b, 9, 0, 20) == 0, "make_batch");
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "write: %d %s", st, sink_error(s));
	CHECK(b.n.written == 20, "written");
	CHECK(count("SELECT count(*) FROM \"ev\"\"il; drop table x\".events") == 20, "events");
	CHECK(count("SELECT count(*) FROM \"ev\"\"il; drop table x\".event_rejects") == 2, "rej");
	CHECK(count("SELECT count(*) FROM public.events") == 0, "nothing in public");
	CHECK(count("SELECT count(*) FROM public.x") == 0, "table x survived");
	CHECK(sink_last_batch(s, &last, &t) == 0 && last == 9, "last batch %lld",
	    (long long)last);
	/* Replay, then the conflict path, in the same schema. */
	CHECK(sink_write_batch(s, &b) == SINK_OK && sink_replayed(s), "replay");
	CHECK(make_batch(&b, 10, 10, 20) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK && b.n.written == 10, "overlap: %s",
	    sink_error(s));
	batch_free(&b);
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
	struct batch b;

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 3) == 0, "make_batch");
	b.rej[0].file = 99;
	CHECK(sink_write_batch(s, &b) == SINK_FATAL, "bad file index");
	CHECK(count("SELECT count(*) FROM evstream_batches") == 0, "nothing written");
	batch_free(&b);
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
	struct batch b;

	reset_tables();
	CHECK(sql("DROP ROLE IF EXISTS evpipe_ro; CREATE ROLE evpipe_ro LOGIN;"
	    "GRANT SELECT ON events, event_rejects, evstream_batches, evstream_files TO evpipe_ro;"
	    "GRANT INSERT ON evstream_files TO evpipe_ro") == 0, "role");
	snprintf(ci, sizeof(ci), "%s user=evpipe_ro", conninfo);
	env_save_clear();
	s = sink_new(ci, NULL, err, sizeof(err));
	env_restore();
	batch_init(&b);
	CHECK(s != NULL && make_batch(&b, 1, 0, 10) == 0, "setup");
	if (s != NULL) {
		CHECK(sink_write_batch(s, &b) == SINK_RETRY, "no INSERT privilege");
		CHECK(strcmp(sink_sqlstate(s), "42501") == 0, "sqlstate %s", sink_sqlstate(s));
		CHECK(strstr(sink_error(s), "COPY events: ERROR 42501 permission denied") != NULL,
		    "%s", sink_error(s));
		CHECK(sink_connected(s), "connection kept after a server-side error");
	}
	CHECK(count("SELECT count(*) FROM evstream_batches") == 0, "nothing written");
	batch_free(&b);
	sink_free(s);
	CHECK(sql("DROP OWNED BY evpipe_ro; DROP ROLE evpipe_ro") == 0, "drop role");
}

/* The server ends our session in the middle of a COPY (as on a crash or failover). */
static void
connection_lost_mid_copy_then_same_batch_once(void)
{
	struct sink *s;
	struct batch b;
	enum sink_status st;

	CHECK(make_schema("killtest") == 0, "schema");
	CHECK(sql("CREATE FUNCTION killtest.die() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
	    "IF NEW.user_id = 999999 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
	    "PERFORM pg_sleep(10); END IF; RETURN NEW; END $$;"
	    "CREATE TRIGGER die BEFORE INSERT ON killtest.events FOR EACH ROW "
	    "EXECUTE FUNCTION killtest.die()") == 0, "trigger");
	s = open_sink("killtest");
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 100000) == 0, "make_batch");
	b.ev[30000].user_id = 999999;	/* ~3 MiB into the COPY */
	CHECK((st = sink_write_batch(s, &b)) == SINK_RETRY, "write: %d", st);
	CHECK(!sink_connected(s), "connection seen as lost");
	CHECK(*sink_error(s) != '\0', "error set");
	CHECK(count("SELECT count(*) FROM killtest.events") == 0, "nothing committed");
	CHECK(sql("DROP TRIGGER die ON killtest.events") == 0, "drop trigger");
	CHECK((st = sink_connect(s)) == SINK_OK, "reconnect: %s", sink_error(s));
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "retry: %d %s", st, sink_error(s));
	CHECK(b.n.written == 100000, "written %lld", (long long)b.n.written);
	CHECK(count("SELECT count(*) FROM killtest.events") == 100000, "events");
	CHECK(count("SELECT count(*) FROM killtest.event_rejects") == 2, "rejects");
	CHECK(count("SELECT count(*) FROM killtest.evstream_batches") == 1, "batch row");
	batch_free(&b);
	sink_free(s);
	CHECK(sql("DROP SCHEMA killtest CASCADE") == 0, "cleanup");
}

/* A connection that died while idle is reopened by the next write, no RETRY needed. */
static void
idle_connection_killed_is_reopened(void)
{
	struct sink *s = open_sink(NULL);
	struct batch b;

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 10) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "first: %s", sink_error(s));
	CHECK(count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	    "WHERE application_name = 'evstream'") >= 1, "an evstream session to kill");
	for (int i = 0; i < 100 && count("SELECT count(*) FROM pg_stat_activity "
	    "WHERE application_name = 'evstream'") > 0; i++)
		usleep(50000);	/* gone, so the next BEGIN surely meets a dead socket */
	CHECK(make_batch(&b, 2, 10, 10) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "after kill: %s", sink_error(s));
	CHECK(b.n.written == 10 && count("SELECT count(*) FROM events") == 20, "counts");
	batch_free(&b);
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
	struct batch b;
	enum sink_status st;
	char got[128];

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 1000) == 0, "make_batch");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "first: %s", sink_error(s));
	CHECK(ask_driver(how) == 0, "driver could not %s the server", how);
	CHECK(make_batch(&b, 2, 1000, 1000) == 0, "make_batch");
	CHECK((st = sink_write_batch(s, &b)) == SINK_RETRY, "write while down: %d", st);
	CHECK(*sink_error(s) != '\0' && !sink_connected(s), "error: %s", sink_error(s));
	CHECK(sink_connect(s) == SINK_RETRY, "connect while down");
	CHECK(ask_driver("start") == 0, "driver could not start the server");
	admin_reconnect();
	CHECK((st = sink_connect(s)) == SINK_OK, "connect after restart: %s", sink_error(s));
	CHECK((st = sink_write_batch(s, &b)) == SINK_OK, "retry: %d %s", st, sink_error(s));
	CHECK(b.n.written == 1000, "written %lld", (long long)b.n.written);
	CHECK(count("SELECT count(*) FROM events") == 2000, "events");
	CHECK(count("SELECT count(*) FROM event_rejects") == 4, "rejects");
	snprintf(got, sizeof(got), "%s", row("SELECT string_agg(batch_id::text, ',' "
	    "ORDER BY batch_id) || '|' || sum(written) FROM evstream_batches"));
	CHECK(strcmp(got, "1,2|2000") == 0, "batch rows: %s", got);
	batch_free(&b);
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
	struct batch b;
	int64_t last, t;

	reset_tables();
	CHECK(sink_last_batch(s, &last, &t) == 0 && last == 0 && t == EVENT_TIME_NONE,
	    "empty: %lld", (long long)last);
	batch_init(&b);
	for (int64_t id = 1; id <= 3; id++) {
		CHECK(make_batch(&b, id, (uint64_t)id * 100, 10) == 0, "make_batch");
		CHECK(sink_write_batch(s, &b) == SINK_OK, "write %lld: %s", (long long)id,
		    sink_error(s));
	}
	/* Batch 4: no events, no files, no max time. */
	batch_reset(&b);
	b.id = 4;
	CHECK(sink_write_batch(s, &b) == SINK_OK, "empty batch: %s", sink_error(s));
	CHECK(sink_last_batch(s, &last, &t) == 0 && last == 4 && t == EVENT_TIME_NONE,
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
	batch_free(&b);
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
	struct batch b;

	reset_tables();
	batch_init(&b);
	CHECK(make_batch(&b, 1, 0, 25000) == 0, "make_batch");	/* more than one FETCH */
	CHECK(sink_write_batch(s, &b) == SINK_OK, "write: %s", sink_error(s));
	memset(&v, 0, sizeof(v));
	CHECK(sink_load_ids_since(s, EVENT_TIME_NONE, on_id, &v) == 0, "all: %s", sink_error(s));
	CHECK(v.n == 25000 && v.min == T2023 && v.max == b.max_time_us, "n=%ld", v.n);
	memset(&v, 0, sizeof(v));
	CHECK(sink_load_ids_since(s, T2023 + 20000 * INT64_C(1000000), on_id, &v) == 0, "since");
	CHECK(v.n == 5000, "since: n=%ld", v.n);
	memset(&v, 0, sizeof(v));
	v.stop_at = 12345;
	CHECK(sink_load_ids_since(s, EVENT_TIME_NONE, on_id, &v) == 5 && v.n == 12345, "stop");
	CHECK(sink_last_batch(s, &b.id, &b.max_time_us) == 0, "usable after a stop: %s",
	    sink_error(s));
	batch_free(&b);
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
	struct batch b;
	char want[128], got[128];

	reset_tables();
	batch_init(&b);
	b.id = 1;
	CHECK(batch_add_file(&b, fname) == 0, "file");
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		CHECK(add_reject(&b, 0, (int64_t)i + 1, REJECT_EVENT_ID, lines[i].raw,
		    lines[i].len) == 0, "reject");
	CHECK(sink_write_batch(s, &b) == SINK_OK, "write: %s", sink_error(s));
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
	batch_free(&b);
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
	static const int64_t t[] = { -62198755200000000, -62167219200000000, -62135596800000001,
	    -62135596800000000, -1, 0, 1, 951782400000000, 253402300799999999 };
	static const char *const text[] = { "0002-01-01 00:00:00+00 BC", "0001-01-01 00:00:00+00 BC",
	    "0001-12-31 23:59:59.999999+00 BC", "0001-01-01 00:00:00+00",
	    "1969-12-31 23:59:59.999999+00", "1970-01-01 00:00:00+00",
	    "1970-01-01 00:00:00.000001+00", "2000-02-29 00:00:00+00",
	    "9999-12-31 23:59:59.999999+00" };
	struct sink *s = open_sink(NULL);
	struct times v = { .n = (int)(sizeof(t) / sizeof(t[0])) };
	struct batch b;
	char uuid[40];

	reset_tables();
	batch_init(&b);
	b.id = 1;
	for (int i = 0; i < v.n; i++) {
		struct event *e = batch_add_event(&b);
		CHECK(e != NULL, "add");
		if (e == NULL)
			break;
		memset(e, 0, sizeof(*e));
		e->id[15] = (uint8_t)i;
		e->time_us = v.want[i] = t[i];
		e->user_id = e->product_id = 1;
		e->price_cents = 1;
	}
	CHECK(sink_write_batch(s, &b) == SINK_OK, "write: %s", sink_error(s));
	CHECK(sink_load_ids_since(s, EVENT_TIME_NONE, on_time, &v) == 0 && v.bad == 0,
	    "%d differ", v.bad);
	for (int i = 0; i < v.n; i++) {
		uuid[sink_format_uuid(uuid, b.ev[i].id)] = '\0';
		CHECK(strcmp(row("SELECT event_time FROM events WHERE event_id = '%s'", uuid),
		    text[i]) == 0, "%d: %s != %s", i, row("SELECT 1"), text[i]);
	}
	batch_free(&b);
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
	struct sink *s = open_sink(NULL);
	struct batch b;
	double t0, t1, c0;
	int rc = 0;

	batch_init(&b);
	if (s == NULL || make_batch(&b, 1, 0, (size_t)rows) < 0)
		return 1;
	reset_tables();
	if (sql("CHECKPOINT") < 0 || sink_connect(s) != SINK_OK)	/* start from a clean state */
		return 1;
	t0 = now_s();
	c0 = cpu_s();
	if (sink_write_batch(s, &b) != SINK_OK)
		rc = 1;
	t1 = now_s() - t0;
	printf("direct COPY: %ld rows in %.3f s: %.0f rows/s, client CPU %.3f s (%s)\n", rows,
	    t1, (double)rows / t1, cpu_s() - c0, sink_error(s));
	/* The conflict path: the same events again under a new batch id (all duplicates),
	 * then half old, half new. */
	b.id = 2;
	t0 = now_s();
	if (sink_write_batch(s, &b) != SINK_OK)
		rc = 1;
	printf("staging path, all %ld duplicates: %.3f s, written %lld\n", rows, now_s() - t0,
	    (long long)b.n.written);
	if (make_batch(&b, 3, (uint64_t)rows / 2, (size_t)rows) < 0)
		return 1;
	t0 = now_s();
	if (sink_write_batch(s, &b) != SINK_OK)
		rc = 1;
	printf("staging path, half new: %.3f s, written %lld\n", now_s() - t0,
	    (long long)b.n.written);
	batch_free(&b);
	sink_free(s);
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
	RUN(replayed_batch_is_a_noop);
	RUN(taken_batch_id_or_file_is_refused);
	RUN(overlapping_batch_writes_only_new_events);
	RUN(stored_reject_is_not_stored_twice);
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
