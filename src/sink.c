/* sink — see include/sink.h. */
#include "sink.h"

#include <endian.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "event.h"
#include "log.h"
#include "sink_format.h"

#define SINK_CHUNK	(1024 * 1024)	/* bytes per PQputCopyData: big enough to amortise the call */
/* Bytes per events COPY statement (~4 M rows, well under a minute on the bench): a
 * batch of any size is many statements, each far inside statement_timeout. */
#define SINK_COPY_MAX	((size_t)256 * 1024 * 1024)
#define SINK_FETCH	"10000"		/* ids per FETCH: bounds the memory of a restart's reload */
#define SINK_PG_EPOCH_US INT64_C(946684800000000)	/* 2000-01-01, binary timestamps' zero */
#define SINK_SCRUB_MIN	4		/* shorter passwords would blank out ordinary words */
#define SINK_STATUS_TIMEOUT "10s"	/* statement_timeout of the status queries */
#define SINK_STATUS_SECONDS 10.0	/* the same, for the client's own bound */

/*
 * Bounded waits.  Every call waits in poll(2) on libpq's socket, never inside
 * libpq, so the stop flag, the client's own deadline and the slow-call warning
 * are all seen while the server is silent (a lock, a stopped or lost server).
 * The session's timeouts are evstream's unless the connection string (options=,
 * PGOPTIONS) set them; the client gives up SINK_GRACE after statement_timeout,
 * which a stopped server can never enforce.
 */
#define SINK_STATEMENT_TIMEOUT	"15min"	/* a 10 M-row COPY takes ~2 min on the bench */
/* A lock on a table fails the batch, which is retried: under WatchdogSec= (30 s), so
 * under systemd a lock ends in a retry, not in a watchdog kill. */
#define SINK_LOCK_TIMEOUT	"20s"
#define SINK_GRACE		10.0	/* seconds past statement_timeout before the client gives up */
#define SINK_SLOW_WARN		10.0	/* seconds: one wait longer than this is logged */
#define SINK_STOP_GRACE		3.0	/* seconds a cancelled call may take to answer once stopping */
#define SINK_SLICE_MS		250	/* poll slices: a signal racing the poll is seen this late */
/* libpq's TCP defaults (ignored on Unix sockets): a dead peer is noticed in ~25 s. */
static const struct { const char *key, *value; } sink_tcp_defaults[] = {
	{ "keepalives", "1" }, { "keepalives_idle", "10" }, { "keepalives_interval", "5" },
	{ "keepalives_count", "3" }, { "tcp_user_timeout", "30000" },
};

/* pg_type OIDs of the binary results we read (fixed since PostgreSQL 7). */
#define SINK_OID_INT8	20
#define SINK_OID_TEXT	25
#define SINK_OID_TSTZ	1184
#define SINK_OID_UUID	2950

#define SINK_EVENT_COLS	"event_id, user_id, event_type, product_id, price, event_time"
/* uuid, two ints, "purchase", cents, time, five separators and the newline. */
/*
 * One event in binary COPY: a field count, then six length-prefixed values (uuid,
 * int4, text, int4, numeric, timestamptz); the first row carries the header, the
 * last the trailer.  Binary, because the server then parses no text: its recv
 * functions take the values as they are stored (see bench/results.md).
 */
#define SINK_EVENT_NFIELDS	6
#define SINK_EVENT_ROW_MAX (SINK_FORMAT_BIN_HEADER_LEN + 2 + SINK_EVENT_NFIELDS * 4 + 16 + 4 + \
	8 + 4 + SINK_FORMAT_NUMERIC_MAX + 8 + 2)

#define SINK_REJECT_COLS "batch_id, file, line_no, reason, raw_line"

/* Every statement, with {s} for the quoted schema; expanded once, on first connect. */
enum sink_sql {
	SQL_CHECK_TABLES, SQL_BATCH_COMMITTED, SQL_COPY_EVENTS, SQL_STAGE_CREATE, SQL_COPY_STAGE,
	SQL_STAGE_MERGE, SQL_COPY_REJECTS, SQL_REJECT_STAGE_CREATE, SQL_COPY_REJECT_STAGE,
	SQL_REJECT_STAGE_MERGE, SQL_BATCH_INSERT, SQL_LAST_BATCH, SQL_BATCHES_AFTER,
	SQL_IDS_CURSOR, SQL_SUMMARY, SQL_REJECT_REASONS, SQL_FILE_BATCH, SQL_RECENT_LATE,
	SQL_CLAIM_FILES, SQL_FILE_OWNERS, SQL_CLAIM_LISTED, SQL_SLICES_INSERT, SQL_SLICE_DONE,
	SQL_BATCH_WRITTEN, SQL_UNFINISHED, SQL_BATCH_FILES, SQL_N
};

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

/* Connection keywords read from the environment, first match wins, before conninfo. */
static const struct { const char *key, *env, *pgenv; } sink_env_params[] = {
	{ "host",	"POSTGRES_HOST",	"PGHOST" },
	{ "port",	"POSTGRES_PORT",	"PGPORT" },
	{ "dbname",	"POSTGRES_DB",		"PGDATABASE" },
	{ "user",	"POSTGRES_USER",	"PGUSER" },
	{ "password",	"POSTGRES_PASSWORD",	"PGPASSWORD" },
};

struct sink {
	PGconn		*conn;
	char		**kw, **val;	/* PQconnectdbParams' arrays, NULL-terminated, owned */
	size_t		 nparam, capparam;
	char		*schema;
	char		*sql[SQL_N];	/* sink_sql_tmpl, expanded */
	char		*buf;		/* COPY data, reused across batches */
	size_t		 len, cap;
	int		 nomem;		/* a COPY stopped because buf could not grow */
	int		 copying;	/* the slice's events COPY is open */
	int		 malformed;	/* the batch handed in is a bug upstream: SINK_FATAL */
	int		 pending;	/* libpq holds COPY data the socket has not taken */
	size_t		 copy_bytes;	/* sent through the events COPY in hand */
	struct sink	**peers;	/* the batch's other sessions, pushed while this one waits */
	int		 npeers;
	int		 merge;		/* the slice goes through the stage (ON CONFLICT) */
	int64_t		 written;	/* rows the slice has stored so far */
	sink_hook_fn	 hook;		/* test aid, see sink_set_test_hook */
	void		*hook_arg;
	struct sink_stats stats;	/* for the metrics; only ever grows */
	const volatile sig_atomic_t *stop;	/* the caller's signal flag: set, it ends waits */
	int		 stopping;	/* the flag was seen: the call in flight is cancelled */
	double		 stop_by;	/* monotonic seconds: then the connection is given up */
	pid_t		 cancel_pid;	/* the child sending the cancel request; 0 none */
	int		 broken;	/* a wait was given up: the connection is unusable */
	double		 limit;		/* seconds one wait may last; 0 none */
	int64_t		 batch_id;	/* the batch being written, for the warnings; 0 none */
	char		 sqlstate[6];
	char		 err[512];
	char		 target[256];
};

static void sink_abort(struct sink *s);

/* --- errors: one line, no secrets ------------------------------------------------ */

static const char *
sink_param(const struct sink *s, const char *key)
{
	for (size_t i = 0; i < s->nparam; i++)
		if (strcmp(s->kw[i], key) == 0)
			return s->val[i];
	return NULL;
}

/*
 * libpq's messages span lines: a message, then tab-indented hints ("Is the
 * server running...?").  A log line wants the messages, joined.
 */
static void
sink_oneline(char *dst, size_t dstlen, const char *src)
{
	size_t n = 0;

	while (*src && n + 1 < dstlen) {
		const char *eol = strchrnul(src, '\n');
		size_t len = (size_t)(eol - src);
		while (len > 0 && (src[len - 1] == ' ' || src[len - 1] == '\r'))
			len--;
		if (len > 0 && src[0] != '\t') {
			if (n > 0)
				n += (size_t)snprintf(dst + n, dstlen - n, "; ");
			if (n < dstlen)
				n += (size_t)snprintf(dst + n, dstlen - n, "%.*s", (int)len, src);
		}
		src = *eol ? eol + 1 : eol;
	}
	dst[n < dstlen ? n : dstlen - 1] = '\0';
}

/* libpq never prints the password, but a server or a proxy might echo it. */
static void
sink_scrub(struct sink *s)
{
	const char *pw = sink_param(s, "password");
	size_t pwlen = pw ? strlen(pw) : 0;
	char *hit, tail[sizeof(s->err)];

	if (pwlen < SINK_SCRUB_MIN)
		return;
	while ((hit = strstr(s->err, pw)) != NULL) {
		snprintf(tail, sizeof(tail), "%s", hit + pwlen);
		snprintf(hit, sizeof(s->err) - (size_t)(hit - s->err), "***%s", tail);
	}
}

static void __attribute__((format(printf, 3, 4)))
sink_set_error(struct sink *s, const char *sqlstate, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sink_oneline(s->err, sizeof(s->err), msg);
	/* libpq can fail without a message; "unavailable: ;" in the log helps nobody. */
	n = strlen(s->err);
	if (n == 0 || s->err[n - 1] == ':')
		snprintf(s->err + n, sizeof(s->err) - n, "%sno error message from libpq",
		    n > 0 ? " " : "");
	sink_scrub(s);
	snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", sqlstate);
}

static void
sink_clear_error(struct sink *s)
{
	s->err[0] = s->sqlstate[0] = '\0';
}

/*
 * "COPY events: ERROR 53100 could not extend file ...": the primary message
 * only; DETAIL and CONTEXT may quote row data.
 */
static void
sink_fail(struct sink *s, const char *what, const PGresult *res)
{
	const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	if (s->broken && res == NULL)
		return;		/* a wait was given up: its own error says why */
	if (code != NULL && msg != NULL) {
		sink_set_error(s, code, "%s: %s %s %s", what, sev ? sev : "ERROR", code, msg);
		return;
	}
	/* Not the server's: a lost connection, out of memory, a protocol error. */
	msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (*msg == '\0' && s->conn != NULL)
		msg = PQerrorMessage(s->conn);
	sink_set_error(s, "", "%s: %s", what, *msg ? msg : "unexpected result");
}

static void
sink_notice(void *arg, const char *message)
{
	char line[512];

	(void)arg;
	if (!log_enabled(LOG_LVL_DEBUG))
		return;
	sink_oneline(line, sizeof(line), message);
	log_debug("postgres: %s", line);
}

/* --- parameters --------------------------------------------------------------------- */

static void
sink_secret_free(char *v)
{
	if (v != NULL)
		explicit_bzero(v, strlen(v));
	free(v);
}

static int
sink_param_set(struct sink *s, const char *key, const char *value)
{
	char *v, *k, **p;

	if ((v = strdup(value)) == NULL)
		return -1;
	for (size_t i = 0; i < s->nparam; i++)
		if (strcmp(s->kw[i], key) == 0) {
			sink_secret_free(s->val[i]);
			s->val[i] = v;
			return 0;
		}
	if (s->nparam + 2 > s->capparam) {
		size_t ncap = s->capparam ? s->capparam * 2 : 32;
		if ((p = realloc(s->kw, ncap * sizeof(*p))) == NULL)
			goto fail;
		s->kw = p;
		if ((p = realloc(s->val, ncap * sizeof(*p))) == NULL)
			goto fail;
		s->val = p;
		s->capparam = ncap;
	}
	if ((k = strdup(key)) == NULL)
		goto fail;
	s->kw[s->nparam] = k;
	s->val[s->nparam++] = v;
	s->kw[s->nparam] = s->val[s->nparam] = NULL;
	return 0;
fail:
	sink_secret_free(v);
	return -1;
}

static const char *
sink_getenv(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int
sink_params_load(struct sink *s, const PQconninfoOption *opts)
{
	const char *v;

	for (const PQconninfoOption *o = opts; o->keyword != NULL; o++)
		if (o->val != NULL && sink_param_set(s, o->keyword, o->val) < 0)
			return -1;
	for (size_t i = 0; i < sizeof(sink_env_params) / sizeof(sink_env_params[0]); i++) {
		if ((v = sink_getenv(sink_env_params[i].env)) == NULL)
			v = sink_getenv(sink_env_params[i].pgenv);
		if (v != NULL && sink_param_set(s, sink_env_params[i].key, v) < 0)
			return -1;
	}
	/* Without a timeout a blackholed host blocks the daemon, signals and all. */
	if (sink_param(s, "connect_timeout") == NULL && sink_getenv("PGCONNECT_TIMEOUT") == NULL &&
	    sink_param_set(s, "connect_timeout", "10") < 0)
		return -1;
	for (size_t i = 0; i < sizeof(sink_tcp_defaults) / sizeof(sink_tcp_defaults[0]); i++)
		if (sink_param(s, sink_tcp_defaults[i].key) == NULL &&
		    sink_param_set(s, sink_tcp_defaults[i].key, sink_tcp_defaults[i].value) < 0)
			return -1;
	/* The COPY data is UTF-8 whatever PGCLIENTENCODING or the locale say. */
	if (sink_param_set(s, "client_encoding", "UTF8") < 0 ||
	    sink_param_set(s, "fallback_application_name", "evstream") < 0)
		return -1;
	return 0;
}

/* libpq's parse errors quote the offending token, which may be the password. */
static void
sink_redact(char *dst, size_t dstlen, const char *src)
{
	size_t n = 0;
	int quoted = 0;

	for (; *src && n + 4 < dstlen; src++) {
		if (*src == '"') {
			quoted = !quoted;
			if (quoted) {
				memcpy(dst + n, "\"...", 4);
				n += 4;
			} else
				dst[n++] = '"';
		} else if (!quoted)
			dst[n++] = *src;
	}
	dst[n] = '\0';
}

struct sink *
sink_new(const char *conninfo, const char *schema, char *err, size_t errlen)
{
	PQconninfoOption *opts;
	char *perr = NULL, why[256], line[256];
	struct sink *s;

	if ((opts = PQconninfoParse(conninfo ? conninfo : "", &perr)) == NULL) {
		sink_oneline(line, sizeof(line), perr ? perr : "out of memory");
		sink_redact(why, sizeof(why), line);
		snprintf(err, errlen, "conninfo: %s", why);
		PQfreemem(perr);
		return NULL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->schema = strdup(schema && *schema ? schema : "public")) == NULL ||
	    sink_params_load(s, opts) < 0) {
		snprintf(err, errlen, "conninfo: out of memory");
		PQconninfoFree(opts);
		sink_free(s);
		return NULL;
	}
	PQconninfoFree(opts);
	return s;
}

void
sink_free(struct sink *s)
{
	if (s == NULL)
		return;
	sink_disconnect(s);
	for (size_t i = 0; i < s->nparam; i++) {
		free(s->kw[i]);
		sink_secret_free(s->val[i]);
	}
	free(s->kw);
	free(s->val);
	for (int i = 0; i < SQL_N; i++)
		free(s->sql[i]);
	free(s->schema);
	free(s->buf);
	free(s);
}

/* --- waiting: poll on libpq's socket, bounded, stoppable ---------------------------- */

static double
sink_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One call's wait: what it is, since when, and whether it was said to be slow. */
struct sink_clock {
	const char	*what;
	double		 start;
	int		 warned;
};

static struct sink_clock
sink_clock_start(const char *what)
{
	return (struct sink_clock){ what, sink_now(), 0 };
}

/* "batch 12: " while a batch is written, else "": the warnings' prefix. */
static const char *
sink_who(const struct sink *s, char out[32])
{
	out[0] = '\0';
	if (s->batch_id != 0)
		snprintf(out, 32, "batch %lld: ", (long long)s->batch_id);
	return out;
}

/* A wait that was said to be slow says when it ended. */
static void
sink_clock_end(const struct sink *s, const struct sink_clock *w)
{
	char who[32];

	if (w->warned)
		log_info("%s%s: the database answered after %.1f s", sink_who(s, who), w->what,
		    sink_now() - w->start);
}

/*
 * The stop flag was seen: ask the server to cancel the call in flight, so a
 * lock wait ends at once and the transaction can be rolled back.  PQcancel
 * waits for the server to close the cancel connection and retries through
 * EINTR, so a stopped server would hold it for ever: a child sends it, and is
 * killed if it still waits when the connection is closed.
 */
static void
sink_cancel(struct sink *s, const char *what)
{
	PGcancel *c;
	char why[256];
	pid_t pid;

	s->stopping = 1;
	s->stop_by = sink_now() + SINK_STOP_GRACE;
	if (PQstatus(s->conn) != CONNECTION_OK || (c = PQgetCancel(s->conn)) == NULL)
		return;		/* still connecting: there is nothing to cancel */
	log_info("stopping: cancelling %s on the server (at most %g s, then the connection is "
	    "closed)", what, SINK_STOP_GRACE);
	if ((pid = fork()) == 0)
		_exit(PQcancel(c, why, sizeof(why)) ? 0 : 1);
	PQfreeCancel(c);
	if (pid < 0)
		log_warn("stopping: cannot fork to cancel %s; the connection will be closed", what);
	else
		s->cancel_pid = pid;
}

static void
sink_cancel_reap(struct sink *s)
{
	if (s->cancel_pid <= 0)
		return;
	if (waitpid(s->cancel_pid, NULL, WNOHANG) == 0) {
		(void)kill(s->cancel_pid, SIGKILL);
		(void)waitpid(s->cancel_pid, NULL, 0);
	}
	s->cancel_pid = 0;
}

/* Give the connection up: every later wait fails at once, the next abort closes it. */
static int __attribute__((format(printf, 2, 3)))
sink_give_up(struct sink *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sink_set_error(s, "", "%s", msg);
	s->broken = 1;
	return -1;
}

/*
 * Wait until libpq's socket is ready for `events`.  0 when it is; -1 with the
 * error set when the wait is given up: the stop flag (after a cancel and
 * SINK_STOP_GRACE), the client's limit, or a poll failure.
 */
/*
 * While one session waits, the others' COPY data that libpq still holds goes
 * out as their sockets take it: every server keeps rows to work on, whichever
 * session the reader is waiting for.  Returns how many pollfds it added.
 */
static int
sink_peers_poll(const struct sink *s, struct pollfd *p, struct sink **who)
{
	int n = 0;

	for (int i = 0; i < s->npeers; i++) {
		struct sink *o = s->peers[i];
		if (o == s || !o->pending || o->conn == NULL || PQsocket(o->conn) < 0)
			continue;
		p[n] = (struct pollfd){ PQsocket(o->conn), POLLOUT, 0 };
		who[n++] = o;
	}
	return n;
}

static void
sink_peers_push(struct pollfd *p, struct sink **who, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i].revents != 0 && (who[i]->pending = PQflush(who[i]->conn)) < 0)
			who[i]->pending = 0;	/* lost: its own next call says so */
}

static int
sink_wait(struct sink *s, struct sink_clock *w, short events)
{
	struct pollfd p[1 + SINK_MAX_SLICES];
	struct sink *peer[SINK_MAX_SLICES];
	double now, waited;
	char who[32], bound[48];
	int npeer;

	p[0] = (struct pollfd){ PQsocket(s->conn), events, 0 };
	if (p[0].fd < 0)
		return sink_give_up(s, "%s: %s", w->what, PQerrorMessage(s->conn));
	for (;;) {
		now = sink_now();
		waited = now - w->start;
		if (s->broken)
			return -1;
		if (!s->stopping && s->stop != NULL && *s->stop)
			sink_cancel(s, w->what);
		if (s->stopping && (now >= s->stop_by || PQstatus(s->conn) != CONNECTION_OK))
			return sink_give_up(s, "%s: stopped by a signal while waiting for the "
			    "database; connection closed (the server rolls back what was not "
			    "committed)", w->what);
		if (s->limit > 0 && waited >= s->limit)
			return sink_give_up(s, "%s: no answer from the database in %.0f s "
			    "(statement_timeout + %g s); connection closed", w->what, waited,
			    SINK_GRACE);
		if (!w->warned && waited >= SINK_SLOW_WARN) {
			w->warned = 1;
			if (s->limit > 0)
				snprintf(bound, sizeof(bound), "giving up after %.0f s", s->limit);
			else
				snprintf(bound, sizeof(bound), "no limit (statement_timeout 0)");
			log_warnx("%s%s has waited %.0f s for the database (a lock held on a table, "
			    "or a server that does not answer); %s, SIGTERM stops it sooner",
			    sink_who(s, who), w->what, waited, bound);
		}
		npeer = sink_peers_poll(s, p + 1, peer);
		p[0].revents = 0;
		int rc = poll(p, 1 + (nfds_t)npeer, SINK_SLICE_MS);
		if (rc > 0)
			sink_peers_push(p + 1, peer, npeer);
		if (p[0].revents != 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return sink_give_up(s, "%s: poll: %s", w->what, strerror(errno));
	}
}

/* Send what libpq holds; a server that reads nothing is waited for, boundedly. */
static int
sink_send_all(struct sink *s, struct sink_clock *w)
{
	int rc;

	while ((rc = PQflush(s->conn)) == 1) {
		s->pending = 1;
		if (sink_wait(s, w, POLLIN | POLLOUT) < 0)
			return -1;
		if (!PQconsumeInput(s->conn))
			break;		/* the connection failed: PQflush says so */
	}
	s->pending = 0;
	if (rc < 0 && !s->broken)
		sink_set_error(s, "", "%s: %s", w->what, PQerrorMessage(s->conn));
	return rc < 0 ? -1 : 0;
}

/* Until PQgetResult can answer without blocking. */
static int
sink_await(struct sink *s, struct sink_clock *w)
{
	while (PQisBusy(s->conn)) {
		if (sink_wait(s, w, POLLIN) < 0)
			return -1;
		if (!PQconsumeInput(s->conn))
			break;		/* the connection failed: PQgetResult says so */
	}
	return 0;
}

/*
 * The outcome of what was just sent: the first failure, else the last result;
 * a COPY that just started is returned as it is.  Reads until libpq has nothing
 * left, so the connection can take a command.  NULL when the wait was given up.
 */
static PGresult *
sink_result(struct sink *s, struct sink_clock *w)
{
	PGresult *res, *keep = NULL;
	ExecStatusType st;

	while (sink_await(s, w) == 0 && (res = PQgetResult(s->conn)) != NULL) {
		st = PQresultStatus(res);
		if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
			if (keep == NULL)
				return res;
			PQclear(res);	/* COPY still open: sink_abort will close the connection */
			break;
		}
		if (keep == NULL || (PQresultStatus(keep) == PGRES_COMMAND_OK &&
		    st != PGRES_COMMAND_OK)) {
			PQclear(keep);
			keep = res;
		} else
			PQclear(res);
	}
	if (s->broken) {
		PQclear(keep);
		return NULL;
	}
	sink_clock_end(s, w);
	return keep;
}

/* PQexecParams (PQexec without parameters), waiting as above.  NULL: see sink_fail. */
static PGresult *
sink_exec(struct sink *s, const char *what, const char *sql, int nparams,
    const char *const *params, int binary)
{
	struct sink_clock w = sink_clock_start(what);
	int sent;

	if (s->broken)
		return NULL;
	sent = nparams == 0 && !binary ? PQsendQuery(s->conn, sql) :
	    PQsendQueryParams(s->conn, sql, nparams, NULL, params, NULL, NULL, binary);
	if (!sent || sink_send_all(s, &w) < 0)
		return NULL;
	return sink_result(s, &w);
}

void
sink_set_peers(struct sink *s, struct sink **peers, int n)
{
	s->peers = peers;
	s->npeers = n;
}

void
sink_set_stop_flag(struct sink *s, const volatile sig_atomic_t *stop)
{
	s->stop = stop;
}

/* --- commands ----------------------------------------------------------------------- */

/* A statement's result if it succeeded (caller clears it), else NULL, error recorded. */
static PGresult *
sink_run(struct sink *s, const char *what, const char *sql, int nparams,
    const char *const *params, int binary)
{
	PGresult *res = sink_exec(s, what, sql, nparams, params, binary);
	ExecStatusType st = PQresultStatus(res);

	if (res != NULL && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK))
		return res;
	sink_fail(s, what, res);
	PQclear(res);
	return NULL;
}

static int
sink_cmd(struct sink *s, const char *what, const char *sql)
{
	PGresult *res = sink_run(s, what, sql, 0, NULL, 0);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* A binary query whose columns must have the types we decode. */
static PGresult *
sink_query(struct sink *s, const char *what, const char *sql, int nparams,
    const char *const *params, const Oid *types, int ntypes)
{
	PGresult *res = sink_run(s, what, sql, nparams, params, 1);

	if (res == NULL)
		return NULL;
	for (int i = 0; i < ntypes; i++)
		if (PQnfields(res) != ntypes || PQftype(res, i) != types[i]) {
			sink_set_error(s, "", "%s: unexpected column types (schema changed?)", what);
			PQclear(res);
			return NULL;
		}
	return res;
}

static int64_t
sink_get_int8(const PGresult *res, int row, int col)
{
	uint64_t be;

	memcpy(&be, PQgetvalue(res, row, col), sizeof(be));
	return (int64_t)be64toh(be);
}

/* Binary timestamptz: microseconds since 2000; +-infinity are the int64 extremes. */
static int64_t
sink_get_time(const PGresult *res, int row, int col)
{
	int64_t pg, us;

	if (PQgetisnull(res, row, col))
		return EVENT_TIME_NONE;
	pg = sink_get_int8(res, row, col);
	if (__builtin_add_overflow(pg, SINK_PG_EPOCH_US, &us))
		us = pg < 0 ? INT64_MIN : INT64_MAX;
	return us;
}

/* --- connection --------------------------------------------------------------------- */

int
sink_connected(const struct sink *s)
{
	return s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK;
}

void
sink_disconnect(struct sink *s)
{
	PQfinish(s->conn);	/* non-blocking: never waits for a silent server */
	s->conn = NULL;
	s->broken = 0;
	sink_cancel_reap(s);
}

/* Expand "{s}" in the statements; the quoting needs a connection (its encoding). */
static enum sink_status
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

static enum sink_status
sink_check_tables(struct sink *s)
{
	const char *params[1] = { s->schema };
	PGresult *res = sink_run(s, "checking tables", s->sql[SQL_CHECK_TABLES], 1, params, 0);

	if (res == NULL)
		return SINK_RETRY;
	if (PQntuples(res) > 0) {
		sink_set_error(s, "", "schema %s: table %s is missing (was sql/01_init.sql applied?)",
		    s->schema, PQgetvalue(res, 0, 0));
		PQclear(res);
		return SINK_FATAL;
	}
	PQclear(res);
	return SINK_OK;
}

/* connect_timeout (the connection string's, PGCONNECT_TIMEOUT, else ours) in seconds. */
static double
sink_connect_timeout(const struct sink *s)
{
	const char *v = sink_param(s, "connect_timeout");
	double t;

	if (v == NULL)
		v = sink_getenv("PGCONNECT_TIMEOUT");
	t = v != NULL ? strtod(v, NULL) : 0;
	return t > 0 ? t : 0;
}

/*
 * Open the connection without blocking in libpq, so the stop flag is seen and
 * connect_timeout bounds the whole attempt (PQconnectPoll leaves it to us), and
 * leave it non-blocking: every later call waits in sink_wait.
 */
static enum sink_status
sink_dial(struct sink *s)
{
	struct sink_clock w = sink_clock_start("connect");
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	s->limit = sink_connect_timeout(s);
	s->conn = PQconnectStartParams((const char *const *)s->kw, (const char *const *)s->val, 0);
	if (s->conn == NULL) {
		sink_set_error(s, "", "connect: out of memory");
		return SINK_RETRY;
	}
	while (PQstatus(s->conn) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
	    st != PGRES_POLLING_FAILED) {
		if (sink_wait(s, &w, st == PGRES_POLLING_READING ? POLLIN : POLLOUT) < 0)
			return SINK_RETRY;
		st = PQconnectPoll(s->conn);
	}
	if (PQstatus(s->conn) != CONNECTION_OK) {
		sink_set_error(s, "", "%s", PQerrorMessage(s->conn));
		return SINK_RETRY;
	}
	if (PQsetnonblocking(s->conn, 1) != 0) {
		sink_set_error(s, "", "connect: %s", PQerrorMessage(s->conn));
		return SINK_RETRY;
	}
	return SINK_OK;
}

/*
 * statement_timeout and lock_timeout for the session, unless the connection
 * string (options=, PGOPTIONS: source "client") or the server set them; then
 * the client's own limit from the statement_timeout in force.
 */
static enum sink_status
sink_session(struct sink *s)
{
	static const char set[] = "SELECT set_config(name, CASE name WHEN 'statement_timeout' "
	    "THEN $1 ELSE $2 END, false) FROM pg_settings WHERE name IN ('statement_timeout', "
	    "'lock_timeout') AND setting = '0' AND source <> 'client'";
	static const char get[] = "SELECT setting::int8 FROM pg_settings "
	    "WHERE name = 'statement_timeout'";
	static const Oid types[] = { SINK_OID_INT8 };
	const char *params[2] = { SINK_STATEMENT_TIMEOUT, SINK_LOCK_TIMEOUT };
	PGresult *res;
	int64_t ms;

	if ((res = sink_run(s, "setting timeouts", set, 2, params, 0)) == NULL)
		return SINK_RETRY;
	PQclear(res);
	if ((res = sink_query(s, "reading statement_timeout", get, 0, NULL, types, 1)) == NULL)
		return SINK_RETRY;
	ms = PQntuples(res) == 1 ? sink_get_int8(res, 0, 0) : 0;
	PQclear(res);
	s->limit = ms > 0 ? (double)ms / 1000 + SINK_GRACE : 0;
	return SINK_OK;
}

enum sink_status
sink_connect(struct sink *s)
{
	enum sink_status st;

	if (sink_connected(s))
		return SINK_OK;
	sink_disconnect(s);
	sink_clear_error(s);
	if ((st = sink_dial(s)) != SINK_OK) {
		sink_disconnect(s);
		return st;
	}
	PQsetNoticeProcessor(s->conn, sink_notice, s);
	if ((st = sink_sql_build(s)) != SINK_OK || (st = sink_session(s)) != SINK_OK ||
	    (st = sink_check_tables(s)) != SINK_OK)
		sink_disconnect(s);
	else
		s->stats.connects++;
	return st;
}

const char *
sink_error(const struct sink *s)
{
	return s->err;
}

const char *
sink_sqlstate(const struct sink *s)
{
	return s->sqlstate;
}

const char *
sink_target(struct sink *s)
{
	const char *user, *host, *port, *db;

	if (sink_connected(s)) {
		user = PQuser(s->conn);
		host = PQhost(s->conn);
		port = PQport(s->conn);
		db = PQdb(s->conn);
	} else {
		user = sink_param(s, "user");
		host = sink_param(s, "host");
		port = sink_param(s, "port");
		db = sink_param(s, "dbname");
	}
	snprintf(s->target, sizeof(s->target), "%s@%s:%s/%s", user ? user : "(default)",
	    host ? host : "(default)", port ? port : "(default)", db ? db : "(default)");
	return s->target;
}

/*
 * After a failure: leave the connection idle outside any transaction, or close
 * it.  PQstatus alone cannot tell: when the server vanishes (an immediate
 * shutdown, a crash) libpq can report the failed command and still say
 * CONNECTION_OK.  A ROLLBACK that succeeds proves the session alive and clean.
 */
static void
sink_abort(struct sink *s)
{
	PGresult *res;
	int ok = 0;

	if (s->conn != NULL && !s->broken && PQstatus(s->conn) == CONNECTION_OK &&
	    PQtransactionStatus(s->conn) != PQTRANS_ACTIVE) {	/* ACTIVE: stuck mid-COPY */
		res = sink_exec(s, "ROLLBACK", "ROLLBACK", 0, NULL, 0);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK &&
		    PQtransactionStatus(s->conn) == PQTRANS_IDLE;
		PQclear(res);
	}
	if (!ok)
		sink_disconnect(s);
}

/* Connect if needed; for the readers. */
static int
sink_ready(struct sink *s)
{
	sink_clear_error(s);
	return sink_connect(s) == SINK_OK ? 0 : -1;
}

/* --- COPY ---------------------------------------------------------------------------- */

static int
sink_grow(struct sink *s, size_t need)
{
	size_t ncap = s->cap ? s->cap : SINK_CHUNK + SINK_CHUNK / 4;
	char *p;

	if (need <= s->cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if ((p = realloc(s->buf, ncap)) == NULL) {
		s->nomem = 1;
		return -1;
	}
	s->buf = p;
	s->cap = ncap;
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
static const char *
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

void
sink_adopt_error(struct sink *s, const struct sink *from)
{
	memcpy(s->sqlstate, from->sqlstate, sizeof(s->sqlstate));
	memcpy(s->err, from->err, sizeof(s->err));
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

/* --- readers ------------------------------------------------------------------------- */

int
sink_last_batch(struct sink *s, int64_t *batch_id, int64_t *max_event_time_us)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_TSTZ };
	PGresult *res;

	*batch_id = 0;
	*max_event_time_us = EVENT_TIME_NONE;
	if (sink_ready(s) < 0)
		return -1;
	if ((res = sink_query(s, "SELECT evstream_batches", s->sql[SQL_LAST_BATCH], 0, NULL,
	    types, 2)) == NULL) {
		sink_abort(s);
		return -1;
	}
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
	char **p;

	for (; *row < PQntuples(res) && sink_get_int8(res, *row, 0) == id; (*row)++) {
		if (PQgetisnull(res, *row, 2))
			continue;	/* LEFT JOIN of an empty files array */
		if (n == *cap) {
			size_t ncap = *cap ? *cap * 2 : 16;
			if ((p = realloc(*files, ncap * sizeof(*p))) == NULL) {
				sink_set_error(s, "", "SELECT evstream_batches: out of memory");
				return -1;
			}
			*files = p;
			*cap = ncap;
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
	PGresult *res;

	num[sink_format_int(num, id)] = '\0';
	if (sink_ready(s) < 0)
		return NULL;
	if ((res = sink_query(s, what, s->sql[q], 1, params, types, ntypes)) == NULL)
		sink_abort(s);
	return res;
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

	if (sink_ready(s) < 0)
		return -1;
	if ((res = sink_query(s, "SELECT evstream_slices", s->sql[SQL_UNFINISHED], 0, NULL, types,
	    6)) == NULL) {
		sink_abort(s);
		return -1;
	}
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

void
sink_get_stats(const struct sink *s, struct sink_stats *out)
{
	*out = s->stats;
}

/* --- for the operator's commands ------------------------------------------------------ */

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
sink_file_batch(struct sink *s, const char *name, int64_t *batch_id, int64_t *size,
    int64_t *mtime_ns)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_INT8, SINK_OID_INT8 };
	const char *params[1] = { name };
	PGresult *res;

	*batch_id = 0;
	*size = *mtime_ns = -1;
	if (sink_ready(s) < 0)
		return -1;
	if ((res = sink_query(s, "SELECT evstream_files", s->sql[SQL_FILE_BATCH], 1, params,
	    types, 3)) == NULL) {
		sink_abort(s);
		return -1;
	}
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

int
sink_recent_late(struct sink *s, long nbatches, int64_t *rows, int64_t *late)
{
	static const Oid types[] = { SINK_OID_INT8, SINK_OID_INT8 };
	char num[SINK_FORMAT_INT_MAX + 1];
	const char *params[1] = { num };
	PGresult *res;

	*rows = *late = 0;
	num[sink_format_int(num, nbatches)] = '\0';
	if (sink_ready(s) < 0)
		return -1;
	if ((res = sink_query(s, "SELECT evstream_batches", s->sql[SQL_RECENT_LATE], 1, params,
	    types, 2)) == NULL) {
		sink_abort(s);
		return -1;
	}
	*rows = sink_get_int8(res, 0, 0);
	*late = sink_get_int8(res, 0, 1);
	PQclear(res);
	return 0;
}
