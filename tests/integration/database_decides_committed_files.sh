#!/usr/bin/env bash
# The database, not a checkpoint, decides which batch committed a file.  The state
# two evstreams on one spool (own checkpoints) used to leave: checkpoint B says its
# batch 1 is F2 and batch 2 is G; the database says batch 1 is F0, 2 is F1, 3 is F2,
# and never saw G.  B restarts on it: it learns the database's batches (F2 under
# batch 3, no empty-cause retry loop), forgets G (no batch committed it) and loads
# it, never skips nor reloads F0 and F1, and loads the new file F3.  A database
# from before evstream_files is refused by name, and applying sql/01_init.sql
# again migrates it: one evstream_files row per committed file, with its batch; a
# file an old evstream committed after the migration is claimed, not reloaded.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
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

evgen_run --count=3 --rows_per_file=10 --interval=0 --invalid_rate=0.2 --seed=3
mapfile -t F < <(ls "$SPOOL" | LC_ALL=C sort)
# Checkpoint A, this database: batches 1, 2, 3 = F0, F1, F2.
CKPT=$ST/ckptA once_bounded --max_files_per_trigger=1
check_eq "a_committed_three_batches" "1:${F[0]} 2:${F[1]} 3:${F[2]}" "$(files_per_batch)"
# Checkpoint B, another database, a spool of F2 and a new G: B's batches 1, 2 = F2, G.
pg_psql -d postgres -c 'CREATE DATABASE evpipe_b' &&
	PGOPTIONS='-c client_min_messages=warning' \
		pg_psql -d evpipe_b -f "$EVPIPE_ROOT/sql/01_init.sql" >/dev/null
# Hard links: the same files, as one spool seen by both (a copy would be another file
# under a committed name, which evstream quarantines).
mkdir -p "$ST/spoolB" && ln "$SPOOL/${F[2]}" "$ST/spoolB/"
evgen_run --count=1 --rows_per_file=10 --interval=0 --invalid_rate=0.2 --seed=4 --spool_dir="$ST/spoolB"
G=$(ls "$ST/spoolB" | LC_ALL=C sort | tail -n 1)
PGDATABASE=evpipe_b SPOOL=$ST/spoolB CKPT=$ST/ckptB once_bounded
check_eq "b_committed_elsewhere" "2" "$(pg_psql -d evpipe_b -c 'SELECT max(batch_id) FROM evstream_batches')"

# B, on this database and spool, where G and a new F3 have arrived.
ln "$ST/spoolB/$G" "$SPOOL/"
evgen_run --count=1 --rows_per_file=10 --interval=0 --invalid_rate=0.2 --seed=5
F3=$(ls "$SPOOL" | LC_ALL=C sort | tail -n 1)
CKPT=$ST/ckptB once_bounded
check_eq "b_restarts_and_finishes" 0 $?
check_eq "each_file_in_one_batch_in_order" "1:${F[0]} 2:${F[1]} 3:${F[2]} 4:$G 5:$F3" "$(files_per_batch)"
check_eq "every_event_once" "$(csv_valid_ids "$SPOOL")" "$(db_ids)"
check_eq "every_reject_once" "$(rows_by_reason "$SPOOL"/*.csv | awk '$1 == "invalid" { print $2 }') 0" \
	"$(q 'SELECT count(DISTINCT (file, line_no)), count(*) - count(DISTINCT (file, line_no))
		FROM event_rejects' | tr '|' ' ')"
pending_in_b() {
	local CKPT=$ST/ckptB args
	mapfile -t args < <(_evstream_args)
	"$EVPIPE_BIN/evstream" "${args[@]}" status --json 2>>"$LOG" | grep -o '"files_pending":[0-9]*'
}
check_eq "b_checkpoint_knows_every_file" '"files_pending":0' "$(pending_in_b)"
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
check_eq "migrated_database_runs" "0 5" "$? $(q 'SELECT count(*) FROM evstream_batches')"
# An evstream from before evstream_files that ran on after the migration committed
# F3 without a claim: B's checkpoint lists it, evstream_batches too, so it is
# claimed for its batch, not loaded again.
q "DELETE FROM evstream_files WHERE file = '$F3'"
CKPT=$ST/ckptB once_bounded
check_eq "unclaimed_committed_file_claimed_not_reloaded" "0 5 5" \
	"$? $(q 'SELECT count(*) FROM evstream_batches') $(q "SELECT batch_id FROM evstream_files WHERE file = '$F3'")"
