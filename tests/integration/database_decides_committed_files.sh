#!/usr/bin/env bash
# The database, not a checkpoint, decides which batch committed a file.  A
# checkpoint written beside another evstream on another database (its batch 1 is
# a file this database committed as batch 2: the state two evstreams on one spool
# used to leave) restarts, learns the database's batches, never skips a file the
# checkpoint thinks committed under an id the database gave other files, loads
# what is new, and never logs an empty cause.  A database from before
# evstream_files is refused by name, and applying sql/01_init.sql again migrates
# it: one evstream_files row per committed file, with its batch.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

# evstream --once, killed if it has not finished in 60 s; status in $?.
once_bounded() {
	local args
	mapfile -t args < <(_evstream_args)
	timeout -s KILL 60 "$EVPIPE_BIN/evstream" "${args[@]}" --once "$@" >>"$LOG" 2>&1
}
files_per_batch() {
	q 'SELECT string_agg(b.batch_id || $$:$$ || f, $$ $$ ORDER BY b.batch_id, f)
		FROM evstream_batches b, unnest(b.files) f'
}

evgen_run --count=2 --rows_per_file=10 --interval=0 --seed=3
mapfile -t F < <(ls "$SPOOL" | LC_ALL=C sort)
# Checkpoint A, this database: batch 1 = F0, batch 2 = F1.
CKPT=$ST/ckptA once_bounded --max_files_per_trigger=1
check_eq "a_committed_two_batches" "1:${F[0]} 2:${F[1]}" "$(files_per_batch)"
# Checkpoint B, another database, a spool holding F1 only: B's batch 1 = F1.
pg_psql -d postgres -c 'CREATE DATABASE evpipe_b' &&
	PGOPTIONS='-c client_min_messages=warning' \
		pg_psql -d evpipe_b -f "$EVPIPE_ROOT/sql/01_init.sql" >/dev/null
mkdir -p "$ST/spoolB" && cp "$SPOOL/${F[1]}" "$ST/spoolB/"
PGDATABASE=evpipe_b SPOOL=$ST/spoolB CKPT=$ST/ckptB once_bounded
check_eq "b_committed_elsewhere" 1 "$(pg_psql -d evpipe_b -c 'SELECT max(batch_id) FROM evstream_batches')"

# B, on this database and spool, with one new file: F0 is batch 1 here, not B's F1.
evgen_run --count=1 --rows_per_file=10 --interval=0 --seed=4
CKPT=$ST/ckptB once_bounded
check_eq "b_restarts_and_finishes" 0 $?
check_eq "each_file_in_one_batch" 3 "$(q 'SELECT count(DISTINCT f) FROM evstream_batches, unnest(files) f
	HAVING count(*) = count(DISTINCT f)')"
check_eq "every_event_once" "$(csv_ids "$SPOOL")" "$(db_ids)"
pending_in_b() {
	local CKPT=$ST/ckptB args
	mapfile -t args < <(_evstream_args)
	"$EVPIPE_BIN/evstream" "${args[@]}" status --json 2>>"$LOG" | grep -o '"files_pending":[0-9]*'
}
check_eq "b_checkpoint_knows_all_three" '"files_pending":0' "$(pending_in_b)"
check_fails "no_empty_error_cause" grep -E ': ;|:$' "$LOG"

# A database from before evstream_files: refused by name, then migrated.
q 'DROP TABLE evstream_files'
CKPT=$ST/ckptA once_bounded
check_eq "old_schema_refused" 1 $?
check "old_schema_names_the_table" grep -q 'table evstream_files is missing' "$LOG"
PGOPTIONS='-c client_min_messages=warning' pg_psql -f "$EVPIPE_ROOT/sql/01_init.sql" >/dev/null
check_eq "migration_fills_evstream_files" "$(files_per_batch)" \
	"$(q 'SELECT string_agg(batch_id || $$:$$ || file, $$ $$ ORDER BY batch_id, file) FROM evstream_files')"
CKPT=$ST/ckptA once_bounded
check_eq "migrated_database_runs" "0 3" "$? $(q 'SELECT count(*) FROM evstream_batches')"
