/*
 * sink_exec — every round trip to the server: a statement sent and its result
 * read, COPY data sent, a connection attempt's steps.
 *
 * Bounded waits.  Every call waits in poll(2) on libpq's socket, never inside
 * libpq, so the stop flag, the client's own deadline and the slow-call warning
 * are all seen while the server is silent (a lock, a stopped or lost server).
 * The session's timeouts are evstream's unless the connection string (options=,
 * PGOPTIONS) set them; the client gives up SINK_GRACE after statement_timeout,
 * which a stopped server can never enforce.
 */
#include "sink_int.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define SINK_SLOW_WARN		10.0	/* seconds: one wait longer than this is logged */
#define SINK_STOP_GRACE		3.0	/* seconds a cancelled call may take to answer once stopping */
#define SINK_SLICE_MS		250	/* poll slices: a signal racing the poll is seen this late */

/* --- waiting: poll on libpq's socket, bounded, stoppable ---------------------------- */

struct sink_clock
sink_clock_start(const char *what)
{
	return (struct sink_clock){ what, util_now(), 0 };
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
		    util_now() - w->start);
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
	s->stop_by = util_now() + SINK_STOP_GRACE;
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

void
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

/*
 * Wait until libpq's socket is ready for `events`.  0 when it is; -1 with the
 * error set when the wait is given up: the stop flag (after a cancel and
 * SINK_STOP_GRACE), the client's limit, or a poll failure.
 */
int
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
		now = util_now();
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
int
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
PGresult *
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
PGresult *
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
PGresult *
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

int
sink_cmd(struct sink *s, const char *what, const char *sql)
{
	PGresult *res = sink_run(s, what, sql, 0, NULL, 0);

	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* A binary query whose columns must have the types we decode. */
PGresult *
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
