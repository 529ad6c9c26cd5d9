-- evpipe schema.  Run once on a new database; running it again changes nothing
-- (every statement is IF NOT EXISTS), so Docker's initdb hook, `make run` and the
-- test harness can all apply it blindly.

-- One row per accepted event.  The primary key is the last line of defence for
-- exactly-once: evstream loads with COPY and falls back to INSERT ... ON CONFLICT
-- DO NOTHING, so a replayed batch can neither fail on nor duplicate an event_id.
CREATE TABLE IF NOT EXISTS events (
    -- uuid, not text: 16 bytes instead of 37, and the type itself rejects malformed ids.
    event_id    uuid           PRIMARY KEY,
    -- integer (int4): ids are validated as positive 32-bit values; bigint would
    -- cost 4 more bytes per row and per index entry for no range we accept.
    user_id     integer        NOT NULL CHECK (user_id > 0),
    -- text + CHECK instead of an enum type: adding a kind later is an ALTER of a
    -- constraint, not of a type that every client has to learn.
    event_type  text           NOT NULL CHECK (event_type IN ('view', 'purchase')),
    product_id  integer        NOT NULL CHECK (product_id > 0),
    -- numeric, never float: money must add up to the cent.  12,2 holds up to 9,999,999,999.99.
    price       numeric(12,2)  NOT NULL CHECK (price >= 0),
    -- timestamptz: an instant, stored as UTC; the CSV's naive times are read as UTC.
    event_time  timestamptz    NOT NULL,
    ingested_at timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS events_event_time_idx ON events (event_time);
CREATE INDEX IF NOT EXISTS events_user_id_idx    ON events (user_id);

-- Rows evstream could not accept, written in the same transaction as the batch's
-- events, so no row is ever silently dropped.  raw_line is the record as read
-- (bytes that are not UTF-8 are replaced by U+FFFD so the row itself can load).
CREATE TABLE IF NOT EXISTS event_rejects (
    reject_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    batch_id    bigint         NOT NULL,
    file        text           NOT NULL,
    line_no     bigint         NOT NULL,
    reason      text           NOT NULL,
    raw_line    text           NOT NULL,
    rejected_at timestamptz    NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS event_rejects_reason_idx ON event_rejects (reason);
-- A file is committed once, so each of its lines is rejected at most once: a
-- replayed batch, like its events, must not store its rejects twice (evstream
-- falls back to INSERT ... ON CONFLICT DO NOTHING).  Databases made before this
-- index may hold copies, from a file read again under a forgotten name: the
-- first stays, the later copies go, once, before the index is built.
DO $$
BEGIN
    IF to_regclass('event_rejects_file_line_key') IS NULL THEN
        DELETE FROM event_rejects a USING event_rejects b
         WHERE a.file = b.file AND a.line_no = b.line_no AND a.reject_id > b.reject_id;
    END IF;
END $$;
CREATE UNIQUE INDEX IF NOT EXISTS event_rejects_file_line_key ON event_rejects (file, line_no);

-- The batch log: one row per committed micro-batch, written in the batch's own
-- transaction.  When evstream's checkpoint and this table disagree, this table
-- wins (see README "Checkpoint and recovery").
CREATE TABLE IF NOT EXISTS evstream_batches (
    batch_id       bigint       PRIMARY KEY,
    files          text[]       NOT NULL,
    rows_read      bigint       NOT NULL,
    valid          bigint       NOT NULL,
    late           bigint       NOT NULL,   -- late or future: reason 'late' or 'future' in event_rejects
    duplicates     bigint       NOT NULL,
    rejected       bigint       NOT NULL,
    written        bigint       NOT NULL,
    max_event_time timestamptz,             -- NULL while no event has been accepted
    watermark      timestamptz,             -- the watermark this batch was filtered with
    committed_at   timestamptz  NOT NULL DEFAULT now()
);

-- Which batch committed each file: a file is committed by at most one batch.  The
-- primary key is the arbiter between several evstreams on one spool (each with its
-- own checkpoint): a batch claims its files here first, in its own transaction, so
-- a second evstream that took the same file waits for the first one's commit and
-- then fails on this key instead of loading the file again (see README
-- "Several evstreams on one spool").  The foreign key is checked at commit, since
-- the claim comes before the batch row; no index on batch_id, so a batch pays one
-- index entry per file (deleting a batch by hand scans this table, which is rare).
CREATE TABLE IF NOT EXISTS evstream_files (
    file     text    PRIMARY KEY,
    batch_id bigint  NOT NULL REFERENCES evstream_batches (batch_id)
                     ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);
-- What the file was when its batch read it (bytes read, modification time in ns;
-- NULL: unknown, committed before these columns).  A name another evstream
-- committed is still in the spool as it was (the same size and time): remembered,
-- not loaded; anything else under a committed name is quarantined.
ALTER TABLE evstream_files ADD COLUMN IF NOT EXISTS size bigint,
    ADD COLUMN IF NOT EXISTS mtime_ns bigint;

-- The migration of a database from before evstream_files: the files each batch
-- lists, the first batch winning a file listed twice.  Adds nothing on a database
-- that has them already, so running this file again stays harmless.
INSERT INTO evstream_files (file, batch_id)
SELECT f.file, min(b.batch_id)
FROM evstream_batches b, unnest(b.files) AS f(file)
GROUP BY f.file
ON CONFLICT (file) DO NOTHING;

-- The slices of a batch written through several sessions (copy_sessions > 1) that
-- have not committed yet.  Slice j holds the events whose event_id hashes to j, in a
-- transaction of its own.  Slice 0 commits first, with the claims, the rejects, the
-- batch row and one row here for each other slice; each other slice deletes its own
-- row in its own transaction.  A row left here is a batch that must be finished: the
-- next evstream to start (or to recover from a failure) reads the batch's files
-- again with the watermark and future bound it was filtered with, and writes only
-- the missing slices (see README "Parallel sessions").  Empty at rest.
CREATE TABLE IF NOT EXISTS evstream_slices (
    batch_id     bigint       NOT NULL REFERENCES evstream_batches (batch_id) ON DELETE CASCADE,
    slice        integer      NOT NULL CHECK (slice > 0),
    nslices      integer      NOT NULL CHECK (nslices > slice),
    written      bigint       NOT NULL,   -- rows the slice inserted when slice 0 committed
    future_bound timestamptz,             -- later events were rejected as 'future'
    PRIMARY KEY (batch_id, slice)
);
