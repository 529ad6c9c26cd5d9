/*
 * sink — the only door to PostgreSQL (the only file that includes libpq-fe.h).
 *
 * One micro-batch is one transaction:
 *
 *     BEGIN
 *     INSERT INTO evstream_files    -- claim each file, unless batch id is committed:
 *       WHERE NOT EXISTS batch id   --   then (or on 23505, a file claimed) ROLLBACK and
 *                                   --   SELECT files FROM evstream_batches: these files:
 *                                   --   a replay, done; else SINK_TAKEN
 *     SAVEPOINT; COPY events                 -- 23505: ROLLBACK TO SAVEPOINT, COPY into a temp
 *                                            --   stage, INSERT ... ON CONFLICT DO NOTHING
 *     COPY event_rejects
 *     INSERT INTO evstream_batches (the batch log row, with `written`; 23505: the id was
 *                                   taken meanwhile, SINK_TAKEN)
 *     COMMIT                        (checks evstream_files' deferred foreign key)
 *
 * so the events, the rejects and the record that the batch happened become
 * visible together or not at all, and writing the same batch twice (a crash
 * after COMMIT, before the checkpoint) changes nothing.  The batch log row is
 * the proof of a commit, and evstream_files the proof of which batch committed a
 * file: a file is committed once, whoever takes it, so several evstreams (each
 * with its own checkpoint) can share one spool and one database.  A batch id or a
 * file another evstream committed first is SINK_TAKEN, never a silent skip.
 *
 * Errors come back as a status, never as an exit.  The transaction is rolled
 * back (or the connection closed, when rolling back is impossible) before any
 * function returns an error, so the next call starts clean; a lost connection
 * is reopened by the next call, or explicitly by sink_connect().
 *
 * Connection parameters: conninfo (key=value or URI) is parsed once; then host,
 * port, dbname, user and password are taken from POSTGRES_HOST, _PORT, _DB,
 * _USER, _PASSWORD if set and not empty, else from libpq's PGHOST, PGPORT,
 * PGDATABASE, PGUSER, PGPASSWORD, else from conninfo; everything else is
 * libpq's (so ~/.pgpass and PGPASSFILE work when no password is given).
 * client_encoding is forced to UTF8 (the COPY data is UTF-8 whatever the
 * locale), application_name defaults to "evstream", connect_timeout to 10 s,
 * and TCP keepalives (10 s idle, 5 s apart, 3 probes) and tcp_user_timeout
 * (30 s) are on (libpq ignores them on Unix sockets).
 *
 * Every call is bounded.  The session gets statement_timeout 15 min and
 * lock_timeout 20 s unless the connection string's options (or PGOPTIONS) set
 * them, or the server does; the client gives up 10 s after statement_timeout
 * (a stopped server enforces nothing), and connect_timeout bounds a whole
 * connection attempt.  A call that waits more than 10 s is logged as a warning.
 * libpq never blocks: each wait is a poll(2) on its socket.
 * Neither the password nor the conninfo string is ever logged or returned.
 */
#ifndef EVPIPE_SINK_H
#define EVPIPE_SINK_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct batch;
struct sink;

enum sink_status {
	SINK_OK = 0,
	/* Connection lost or a server-side error (disk full, permission denied,
	 * shutdown...): nothing was written; back off and retry the same batch. */
	SINK_RETRY = 1,
	/* Cannot ever work as configured: the tables are missing from the schema,
	 * or the batch itself is malformed (a bug).  Retrying cannot help. */
	SINK_FATAL = 2,
	/* Another writer committed this batch id, or one of its files, first: nothing
	 * was written; learn what it committed (sink_batches_after, sink_file_owners)
	 * and build the batch again without those files. */
	SINK_TAKEN = 3,
};

#define SINK_MUSTCHECK __attribute__((warn_unused_result))

/*
 * Parse the parameters; does not connect.  schema NULL or "" means "public".
 * NULL with err filled (no secrets in it) when conninfo cannot be parsed or
 * memory runs out: as fatal as SINK_FATAL.
 */
struct sink *sink_new(const char *conninfo, const char *schema, char *err, size_t errlen)
    SINK_MUSTCHECK;
void sink_free(struct sink *s);		/* closes the connection; NULL is fine */

/*
 * Connect unless connected, check the four tables exist in the schema.
 * SINK_RETRY: the server is unreachable or refused us (try again later);
 * SINK_FATAL: a table is missing.
 */
enum sink_status sink_connect(struct sink *s) SINK_MUSTCHECK;
void sink_disconnect(struct sink *s);
int  sink_connected(const struct sink *s);

/*
 * A signal flag (evstream's SIGTERM): once set, the call in flight is
 * cancelled on the server (PQcancel), answered within 3 s or its connection
 * is closed, and the call fails (SINK_RETRY) after rolling back.  NULL: none.
 */
void sink_set_stop_flag(struct sink *s, const volatile sig_atomic_t *stop);

/* Last error, one line, no secrets ("" if none), and its SQLSTATE ("" if the
 * error did not come from the server, e.g. a refused connection). */
const char *sink_error(const struct sink *s);
const char *sink_sqlstate(const struct sink *s);

/* "user@host:port/dbname", for log lines; never the password. */
const char *sink_target(struct sink *s);

/*
 * Write the batch in one transaction (see the top of this file) and set
 * b->n.written to the rows inserted into events.  Connects first if needed.
 * SINK_OK also when the batch had already been committed: then nothing is
 * written, b->n.written is 0 and sink_replayed() says 1.
 */
enum sink_status sink_write_batch(struct sink *s, struct batch *b) SINK_MUSTCHECK;
int  sink_replayed(const struct sink *s);	/* last sink_write_batch was a no-op replay */

/*
 * 1 if the database stores this file name exactly, i.e. it is valid UTF-8.
 * A restart knows committed files by the names in evstream_batches.files; a
 * name stored altered (bytes that are not UTF-8 become U+FFFD) would not be
 * recognised, and its file would be loaded again.
 */
int  sink_name_storable(const char *name);

/*
 * Test aid, off unless set: fn(arg, point) runs at a named moment inside a
 * batch's transaction, so a test can kill the process exactly there.  One
 * point so far: "inside_copy", in every COPY, once half its rows have reached
 * the server (flushed) and the rest have not been sent.
 */
typedef void (*sink_hook_fn)(void *arg, const char *point);
void sink_set_test_hook(struct sink *s, sink_hook_fn fn, void *arg);

/*
 * The readers below return 0, or -1 with sink_error() set (connecting first
 * if needed), or the first non-zero value a callback returned, which stops the
 * scan.  Times are microseconds since 1970 UTC, EVENT_TIME_NONE for NULL.
 */

/* The highest committed batch id (0 if none) and its max_event_time. */
int sink_last_batch(struct sink *s, int64_t *batch_id, int64_t *max_event_time_us)
    SINK_MUSTCHECK;

/* Each committed batch with id > after_id, in id order, with its files in order.
 * The strings live until fn returns. */
typedef int (*sink_batch_fn)(void *arg, int64_t batch_id, char *const *files, size_t nfiles,
    int64_t max_event_time_us);
int sink_batches_after(struct sink *s, int64_t after_id, sink_batch_fn fn, void *arg)
    SINK_MUSTCHECK;

/* Every event with event_time >= since_us (EVENT_TIME_NONE: all), in no particular
 * order, read through a cursor in chunks so memory stays bounded; for rebuilding
 * the dedupe set after a restart. */
typedef int (*sink_id_fn)(void *arg, const uint8_t id[16], int64_t time_us);
int sink_load_ids_since(struct sink *s, int64_t since_us, sink_id_fn fn, void *arg)
    SINK_MUSTCHECK;

/*
 * Counters for the metrics, kept for the life of the sink (they never go
 * down): bytes handed to libpq as COPY data (retried batches count again),
 * and connections opened and checked (so reconnects = connects - 1).
 */
struct sink_stats {
	uint64_t copy_bytes;
	uint64_t connects;
};
void sink_get_stats(const struct sink *s, struct sink_stats *out);

/*
 * For `evstream status`: totals over evstream_batches and event_rejects, read
 * in one read-only snapshot with a 10 s statement_timeout.  conflict = valid
 * rows the database already held (valid - late - duplicates - written).
 * written_last_* count batches whose committed_at is within that span of the
 * server's now(), which now_us reports.  Times are EVENT_TIME_NONE when there is
 * no batch.  rejects[] is event_rejects by reason (late included); names this
 * build does not know are added up in rejects[REJECT_NONE].
 */
struct sink_summary {
	int64_t batches, last_batch, files;
	int64_t rows_read, written, duplicates, late, invalid, conflict;
	int64_t written_last_minute, written_last_hour;
	int64_t last_commit_us, max_event_time_us, now_us;
	int64_t rejects[REJECT_NREASONS];
};
int sink_summary(struct sink *s, struct sink_summary *out) SINK_MUSTCHECK;

/*
 * Over the last nbatches committed batches: the rows read, and how many of
 * them were late or future (evstream_batches.late counts both).
 */
int sink_recent_late(struct sink *s, long nbatches, int64_t *rows, int64_t *late)
    SINK_MUSTCHECK;

/* For each of files that a committed batch holds (evstream_files), fn(arg, name,
 * batch_id), in no particular order. */
typedef int (*sink_owner_fn)(void *arg, const char *name, int64_t batch_id);
int sink_file_owners(struct sink *s, char *const *files, size_t nfiles, sink_owner_fn fn,
    void *arg) SINK_MUSTCHECK;

/* Claim in evstream_files those of files that evstream_batches lists and it does
 * not (committed by an evstream from before evstream_files, after the migration),
 * for the first batch listing each; fn(arg, name, batch_id) for each claimed.
 * Reads the whole batch log: for the rare file evstream_files does not know. */
int sink_claim_listed(struct sink *s, char *const *files, size_t nfiles, sink_owner_fn fn,
    void *arg) SINK_MUSTCHECK;

/* The committed batch whose files include name, or *batch_id = 0; and what the
 * file was when that batch read it (bytes read, mtime in ns), or -1 if unknown. */
int sink_file_batch(struct sink *s, const char *name, int64_t *batch_id, int64_t *size,
    int64_t *mtime_ns) SINK_MUSTCHECK;

#endif
