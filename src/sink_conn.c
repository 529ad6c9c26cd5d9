/*
 * sink_conn — one session's life: its parameters (conninfo, the environment, our
 * defaults), its errors (one line, no secrets), connect (non-blocking, bounded by
 * connect_timeout), the session's timeouts and the tables' check, the abort that
 * leaves a session clean or closes it, and disconnect.  Promises: include/sink.h;
 * what the sink's files share: src/sink_int.h.
 */
#include "sink_int.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SINK_SCRUB_MIN	4		/* shorter passwords would blank out ordinary words */

/*
 * The session's timeouts are evstream's unless the connection string (options=,
 * PGOPTIONS) set them (sink_session); the client's own bound, s->limit, is
 * SINK_GRACE past statement_timeout, which sink_exec.c's waits keep.
 */
#define SINK_STATEMENT_TIMEOUT	"15min"	/* a 10 M-row COPY takes ~2 min on the bench */
/* A lock on a table fails the batch, which is retried: under WatchdogSec= (30 s), so
 * under systemd a lock ends in a retry, not in a watchdog kill. */
#define SINK_LOCK_TIMEOUT	"20s"
/* libpq's TCP defaults (ignored on Unix sockets): a dead peer is noticed in ~25 s. */
static const struct { const char *key, *value; } sink_tcp_defaults[] = {
	{ "keepalives", "1" }, { "keepalives_idle", "10" }, { "keepalives_interval", "5" },
	{ "keepalives_count", "3" }, { "tcp_user_timeout", "30000" },
};

/* Connection keywords read from the environment, first match wins, before conninfo. */
static const struct { const char *key, *env, *pgenv; } sink_env_params[] = {
	{ "host",	"POSTGRES_HOST",	"PGHOST" },
	{ "port",	"POSTGRES_PORT",	"PGPORT" },
	{ "dbname",	"POSTGRES_DB",		"PGDATABASE" },
	{ "user",	"POSTGRES_USER",	"PGUSER" },
	{ "password",	"POSTGRES_PASSWORD",	"PGPASSWORD" },
};

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

void __attribute__((format(printf, 3, 4)))
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

void
sink_clear_error(struct sink *s)
{
	s->err[0] = s->sqlstate[0] = '\0';
}

/*
 * "COPY events: ERROR 53100 could not extend file ...": the primary message
 * only; DETAIL and CONTEXT may quote row data.
 */
void
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
void
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
int
sink_ready(struct sink *s)
{
	sink_clear_error(s);
	return sink_connect(s) == SINK_OK ? 0 : -1;
}

void
sink_adopt_error(struct sink *s, const struct sink *from)
{
	memcpy(s->sqlstate, from->sqlstate, sizeof(s->sqlstate));
	memcpy(s->err, from->err, sizeof(s->err));
}
void
sink_get_stats(const struct sink *s, struct sink_stats *out)
{
	*out = s->stats;
}
