/*
 * sink_int — what the sink's own files share, and nothing outside them: the
 * session struct, the statements' names, and the helpers one file lends the
 * others.  The sink's promises to the rest of evpipe are include/sink.h.
 *
 * It sits in src/, beside the files it serves, not in include/: include/ is the
 * list of what modules promise each other, and only include/ is on their path,
 * so no other module can reach a session's insides or libpq-fe.h through it
 * (PostgreSQL keeps libpq-int.h beside libpq's sources for the same reason).
 *
 * The sink's files, by job (README "Source map"):
 *     sink_conn.c    a session's life: parameters, errors without secrets,
 *                    connect, the session's timeouts, abort, disconnect
 *     sink_exec.c    every round trip: bounded, stoppable waits on libpq's socket,
 *                    the peers' COPY data sent meanwhile, statements and results
 *     sink_sql.c     every statement naming our tables, in one table
 *     sink.c         the write path: slices, COPY, stage and merge, commit order
 *     sink_read.c    what was committed, for evstream's start and reconcile
 *     sink_status.c  the totals for `evstream status`
 *     sink_format.c  the bytes themselves, pure (include/sink_format.h)
 */
#ifndef EVPIPE_SINK_INT_H
#define EVPIPE_SINK_INT_H

#include <endian.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "event.h"
#include "sink.h"

#define SINK_GRACE		10.0	/* seconds past statement_timeout before the client gives up */
#define SINK_PG_EPOCH_US INT64_C(946684800000000)	/* 2000-01-01, binary timestamps' zero */

/* pg_type OIDs of the binary results we read (fixed since PostgreSQL 7). */
#define SINK_OID_INT8	20
#define SINK_OID_TEXT	25
#define SINK_OID_TSTZ	1184
#define SINK_OID_UUID	2950

/* Every statement, with {s} for the quoted schema (sink_sql.c); expanded once, on first connect. */
enum sink_sql {
	SQL_CHECK_TABLES, SQL_BATCH_COMMITTED, SQL_COPY_EVENTS, SQL_STAGE_CREATE, SQL_COPY_STAGE,
	SQL_STAGE_MERGE, SQL_COPY_REJECTS, SQL_REJECT_STAGE_CREATE, SQL_COPY_REJECT_STAGE,
	SQL_REJECT_STAGE_MERGE, SQL_BATCH_INSERT, SQL_LAST_BATCH, SQL_BATCHES_AFTER,
	SQL_IDS_CURSOR, SQL_SUMMARY, SQL_REJECT_REASONS, SQL_FILE_BATCH, SQL_RECENT_LATE,
	SQL_CLAIM_FILES, SQL_FILE_OWNERS, SQL_CLAIM_LISTED, SQL_SLICES_INSERT, SQL_SLICE_DONE,
	SQL_BATCH_WRITTEN, SQL_UNFINISHED, SQL_BATCH_FILES, SQL_N
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

/* One call's wait: what it is, since when, and whether it was said to be slow. */
struct sink_clock {
	const char	*what;
	double		 start;
	int		 warned;
};

/* --- sink_conn.c: errors (one line, no secrets), the session's state ---------------- */

void sink_set_error(struct sink *s, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sink_clear_error(struct sink *s);
/* A statement's failure (res NULL: a lost connection, a wait given up) as s's error. */
void sink_fail(struct sink *s, const char *what, const PGresult *res);
/* Roll back, leaving the session idle outside any transaction, or close it. */
void sink_abort(struct sink *s);
/* Clear the error and connect if needed: 0, or -1 with the error set. */
int sink_ready(struct sink *s) MUSTCHECK;

/* --- sink_exec.c: round trips, every wait bounded and stoppable --------------------- */

struct sink_clock sink_clock_start(const char *what);
/* Until the socket is ready for events (POLLIN, POLLOUT): 0, or -1 with the error set
 * and the connection given up (s->broken). */
int sink_wait(struct sink *s, struct sink_clock *w, short events) MUSTCHECK;
/* Until libpq holds no unsent data: 0, or -1 with the error set. */
int sink_send_all(struct sink *s, struct sink_clock *w) MUSTCHECK;
/* The outcome of what was sent (a COPY that just started as it is); NULL: given up. */
PGresult *sink_result(struct sink *s, struct sink_clock *w) MUSTCHECK;
/* Send and wait for the outcome, whatever it is (caller clears it); NULL: see sink_fail. */
PGresult *sink_exec(struct sink *s, const char *what, const char *sql, int nparams,
    const char *const *params, int binary) MUSTCHECK;
/* The result of a statement that succeeded (caller clears it), else NULL, error set. */
PGresult *sink_run(struct sink *s, const char *what, const char *sql, int nparams,
    const char *const *params, int binary) MUSTCHECK;
/* A statement without parameters or rows: 0, or -1 with the error set. */
int sink_cmd(struct sink *s, const char *what, const char *sql) MUSTCHECK;
/* As sink_run, in binary, and NULL unless the columns have exactly these types. */
PGresult *sink_query(struct sink *s, const char *what, const char *sql, int nparams,
    const char *const *params, const Oid *types, int ntypes) MUSTCHECK;
/* The cancel request's child, if any: reaped, killed if it still waits. */
void sink_cancel_reap(struct sink *s);

/* A binary result's values: inline, since a restart reads millions of them. */
static inline int64_t
sink_get_int8(const PGresult *res, int row, int col)
{
	uint64_t be;

	memcpy(&be, PQgetvalue(res, row, col), sizeof(be));
	return (int64_t)be64toh(be);
}

/* Binary timestamptz: microseconds since 2000; +-infinity are the int64 extremes. */
static inline int64_t
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

/* --- sink_sql.c -------------------------------------------------------------------- */

/* s->sql from the templates, once per sink (all or none); needs the connection. */
enum sink_status sink_sql_build(struct sink *s) MUSTCHECK;

/* --- sink.c ------------------------------------------------------------------------ */

/* files as a text[] literal, in s->buf (free between COPYs); NULL: out of memory, set. */
const char *sink_files_literal(struct sink *s, char *const *files, size_t nfiles)
    MUSTCHECK;

/* --- sink_read.c ------------------------------------------------------------------- */

/* A reader's query on s->sql[q], connecting first; NULL: failed (error set), the
 * session rolled back. */
PGresult *sink_read_query(struct sink *s, const char *what, enum sink_sql q, int nparams,
    const char *const *params, const Oid *types, int ntypes) MUSTCHECK;

#endif
