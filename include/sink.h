/*
 * sink — the only door to PostgreSQL: only its files, src/sink*.c, include
 * libpq-fe.h (one job a file, listed at the top of src/sink_int.h).
 * One struct sink is one session; evstream opens copy_sessions of them.
 *
 * A micro-batch is written through n sessions, as n slices: slice j holds the
 * events whose event_id hashes to j (event_slice), each in a transaction of its
 * own, so the server maintains the indexes on n cores at once.  Rows are
 * streamed to COPY while the files are read: no batch is ever held in memory.
 *
 *     every slice j:  BEGIN                       (slice 0 first checks that the
 *                                                  batch id is not committed)
 *                     COPY events, streamed        -- or, in merge mode, COPY into a temp
 *                                                  --   stage and INSERT ... ON CONFLICT
 *                                                  --   DO NOTHING at the end
 *     slice 0 also:   COPY event_rejects           (whenever the rejects in hand fill up)
 *                     INSERT INTO evstream_files   (claim the files: a file another
 *                                                  batch holds fails here, SINK_TAKEN)
 *                     INSERT INTO evstream_batches (the batch row, with every count)
 *                     INSERT INTO evstream_slices  (one row per other slice: pending)
 *                     COMMIT                       -- first; then each other slice:
 *     slice j > 0:    DELETE its evstream_slices row; COMMIT
 *
 * With one session this is one transaction: the events, the rejects and the
 * record that the batch happened become visible together or not at all.  With
 * more, slice 0's COMMIT is the batch's commit point: from then on the batch
 * is in the batch log and its files are claimed, and each other slice either
 * committed or is still listed in evstream_slices.  A batch with such rows is
 * finished (by this evstream or the next to start): its files are read again
 * with the watermark and future bound it was filtered with, and only the
 * missing slices are written.  Slices never share an event_id, so which of them
 * committed cannot change a dedupe decision in the others (README "Parallel
 * sessions").  A COPY that meets an event_id the table already holds (one the
 * in-memory set could not see) fails the slice with SINK_CONFLICT; the batch is
 * then written again in merge mode, which stores only the new rows.
 *
 * Writing the same batch twice changes nothing: the batch row is the proof of a
 * commit, and evstream_files the proof of which batch committed a file; a file
 * is committed once, whoever takes it, so several evstreams (each with its own
 * checkpoint) can share one spool and one database.  A batch id or a file
 * another evstream committed first is SINK_TAKEN, never a silent skip.
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
#include "util.h"

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
	/* A row the database holds already (an event_id the in-memory set had let go,
	 * a restored database): nothing was written; write the batch again in merge
	 * mode, which skips such rows. */
	SINK_CONFLICT = 4,
};

#define SINK_MAX_SLICES 64	/* copy_sessions' bound: a batch's pending slices fit a bit mask */


/* --- one session (src/sink_conn.c, src/sink_exec.c) ------------------------------- */

/*
 * Parse the parameters; does not connect.  schema NULL or "" means "public".
 * NULL with err filled (no secrets in it) when conninfo cannot be parsed or
 * memory runs out: as fatal as SINK_FATAL.
 */
struct sink *sink_new(const char *conninfo, const char *schema, char *err, size_t errlen)
    MUSTCHECK;
void sink_free(struct sink *s);		/* closes the connection; NULL is fine */

/*
 * Connect unless connected, check the four tables exist in the schema.
 * SINK_RETRY: the server is unreachable or refused us (try again later);
 * SINK_FATAL: a table is missing.
 */
enum sink_status sink_connect(struct sink *s) MUSTCHECK;
void sink_disconnect(struct sink *s);
int  sink_connected(const struct sink *s);

/*
 * A signal flag (evstream's SIGTERM): once set, the call in flight is
 * cancelled on the server (PQcancel), answered within 3 s or its connection
 * is closed, and the call fails (SINK_RETRY) after rolling back.  NULL: none.
 */
void sink_set_stop_flag(struct sink *s, const volatile sig_atomic_t *stop);

/*
 * The sessions of one batch (s among them): while s waits for the server, the
 * COPY data libpq holds for the others is sent as their sockets take it, so no
 * server idles while the reader waits for another.  The array must outlive s.
 */
void sink_set_peers(struct sink *s, struct sink **peers, int n);

/* Last error, one line, no secrets ("" if none), and its SQLSTATE ("" if the
 * error did not come from the server, e.g. a refused connection). */
const char *sink_error(const struct sink *s);
const char *sink_sqlstate(const struct sink *s);

/* "user@host:port/dbname", for log lines; never the password. */
const char *sink_target(struct sink *s);

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

/* --- writing a batch (src/sink.c) ------------------------------------------------- */

/*
 * Writing a batch (see the top of this file).  Each call rolls its session back
 * before it returns an error, and the caller rolls back the other sessions.
 *
 * sink_slice_begin: BEGIN and open the slice's COPY (merge: through the stage).
 * For slice 0, SINK_TAKEN when the batch id is committed already.
 * sink_slice_event: one event into the slice's COPY (0, or -1 with the error set).
 * sink_slice_rejects: slice 0: the rejects in hand into event_rejects, then
 * batch_clear_rejects (call it when batch_rejects_full says so).
 * sink_slice_end: close the COPY (slice 0: and store the rejects left); *written:
 * the rows the slice inserted.  SINK_CONFLICT: see above.
 * sink_batch_commit: slice 0, once every slice has ended: claim the files, the
 * batch row (b->n, and written[] summed into b->n.written), one evstream_slices
 * row per other slice, COMMIT.  The batch's commit point.
 * sink_slice_commit: slice j > 0, after slice 0 committed: its evstream_slices row
 * goes, COMMIT (SINK_TAKEN: another evstream finished it first).
 * A batch whose write failed is built again from its files before another try:
 * the rejects slice 0 handed on are gone from it.  SINK_FATAL: the batch handed in
 * is malformed (a bug upstream).
 */
enum sink_status sink_slice_begin(struct sink *s, const struct batch *b, int slice, int merge)
    MUSTCHECK;
int sink_slice_event(struct sink *s, const struct event *e) MUSTCHECK;
int sink_slice_rejects(struct sink *s, struct batch *b) MUSTCHECK;
enum sink_status sink_slice_end(struct sink *s, struct batch *b, int slice, int64_t *written)
    MUSTCHECK;
enum sink_status sink_batch_commit(struct sink *s, struct batch *b, const int64_t *written,
    int nslices) MUSTCHECK;
enum sink_status sink_slice_commit(struct sink *s, const struct batch *b, int slice,
    int64_t written) MUSTCHECK;
void sink_rollback(struct sink *s);	/* abandon the slice in hand; never fails */
/* After sink_slice_event or sink_slice_rejects returned -1: roll the slice back;
 * SINK_CONFLICT or SINK_RETRY as sink_slice_end would have said. */
enum sink_status sink_slice_failed(struct sink *s) MUSTCHECK;
/* Take from's error as s's own (one session reports for all). */
void sink_adopt_error(struct sink *s, const struct sink *from);

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
 * point so far: "inside_copy", at the end of every events COPY, once all its rows
 * have reached the server (flushed) and before the COPY is ended.
 */
typedef void (*sink_hook_fn)(void *arg, const char *point);
void sink_set_test_hook(struct sink *s, sink_hook_fn fn, void *arg);

/* --- what was committed (src/sink_read.c) ----------------------------------------- */

/*
 * The readers below return 0, or -1 with sink_error() set (connecting first
 * if needed), or the first non-zero value a callback returned, which stops the
 * scan.  Times are microseconds since 1970 UTC, EVENT_TIME_NONE for NULL.
 */

/* The highest committed batch id (0 if none) and its max_event_time. */
int sink_last_batch(struct sink *s, int64_t *batch_id, int64_t *max_event_time_us)
    MUSTCHECK;

/* Each committed batch with id > after_id, in id order, with its files in order, up
 * to the first unfinished one (sink_unfinished): a checkpoint takes whole batches
 * only.  The strings live until fn returns. */
typedef int (*sink_batch_fn)(void *arg, int64_t batch_id, char *const *files, size_t nfiles,
    int64_t max_event_time_us);
int sink_batches_after(struct sink *s, int64_t after_id, sink_batch_fn fn, void *arg)
    MUSTCHECK;

/* Every event with event_time >= since_us (EVENT_TIME_NONE: all), in no particular
 * order, read through a cursor in chunks so memory stays bounded; for rebuilding
 * the dedupe set after a restart. */
typedef int (*sink_id_fn)(void *arg, const uint8_t id[16], int64_t time_us);
int sink_load_ids_since(struct sink *s, int64_t since_us, sink_id_fn fn, void *arg)
    MUSTCHECK;

/*
 * A batch whose slice 0 committed and some other slice did not (a crash, a lost
 * connection between the commits): what finishing it needs.
 */
struct sink_unfinished {
	int64_t	 batch_id;
	int	 nslices;
	uint64_t pending;	/* bit j: slice j is not committed */
	int64_t	 watermark_us;	/* what the batch was filtered with (EVENT_TIME_NONE: none) */
	int64_t	 future_us;	/* INT64_MAX: none */
	int64_t	 max_time_us;
};
typedef int (*sink_unfinished_fn)(void *arg, const struct sink_unfinished *u);
int sink_unfinished(struct sink *s, sink_unfinished_fn fn, void *arg) MUSTCHECK;

/* The files of a committed batch, in order, into b (batch_add_file), each with the
 * size and mtime it had when read in b->ids (-1: not recorded). */
int sink_batch_files(struct sink *s, int64_t batch_id, struct batch *b) MUSTCHECK;

/* For each of files that a committed batch holds (evstream_files), fn(arg, name,
 * batch_id), in no particular order. */
typedef int (*sink_owner_fn)(void *arg, const char *name, int64_t batch_id);
int sink_file_owners(struct sink *s, char *const *files, size_t nfiles, sink_owner_fn fn,
    void *arg) MUSTCHECK;

/* Claim in evstream_files those of files that evstream_batches lists and it does
 * not (committed by an evstream from before evstream_files, after the migration),
 * for the first batch listing each; fn(arg, name, batch_id) for each claimed.
 * Reads the whole batch log: for the rare file evstream_files does not know. */
int sink_claim_listed(struct sink *s, char *const *files, size_t nfiles, sink_owner_fn fn,
    void *arg) MUSTCHECK;

/* The committed batch whose files include name, or *batch_id = 0; and what the
 * file was when that batch read it (bytes read, mtime in ns), or -1 if unknown. */
int sink_file_batch(struct sink *s, const char *name, int64_t *batch_id, int64_t *size,
    int64_t *mtime_ns) MUSTCHECK;

/* --- for `evstream status` (src/sink_status.c) ------------------------------------ */

/*
 * For `evstream status`: totals over evstream_batches and event_rejects, read
 * in one read-only snapshot with a 10 s statement_timeout.  conflict = valid
 * rows the database already held (valid - late - duplicates - written).
 * written_last_* count batches whose committed_at is within that span of the
 * server's now(), which now_us reports.  Times are EVENT_TIME_NONE when there is
 * no batch.  unfinished: batches whose slice 0 committed and some other slice has
 * not (yet).  rejects[] is event_rejects by reason (late included); names this
 * build does not know are added up in rejects[REJECT_NONE].
 */
struct sink_summary {
	int64_t batches, last_batch, files;
	int64_t rows_read, written, duplicates, late, invalid, conflict;
	int64_t written_last_minute, written_last_hour;
	int64_t last_commit_us, max_event_time_us, now_us;
	int64_t rejects[REJECT_NREASONS];
	int64_t unfinished;		/* batches with slices not committed (evstream_slices) */
	int64_t unfinished_since_us;	/* the oldest one's slice 0 commit */
};
int sink_summary(struct sink *s, struct sink_summary *out) MUSTCHECK;

/*
 * Over the last nbatches committed batches: the rows read, and how many of
 * them were late or future (evstream_batches.late counts both).
 */
int sink_recent_late(struct sink *s, long nbatches, int64_t *rows, int64_t *late)
    MUSTCHECK;

#endif
