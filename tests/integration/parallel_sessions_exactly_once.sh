#!/usr/bin/env bash
# copy_sessions: a batch written through several sessions lands exactly as through
# one (events, rejects, counts); a crash between the slices' commits leaves an
# unfinished batch that the next start finishes from the files, with the batch's own
# bounds and slice count, whatever copy_sessions is now; an event_id the table holds
# already sends the batch through the stage, which stores only the new rows; an
# unfinished batch whose file changed is not finished wrongly, and `status` says so;
# a server that admits fewer sessions gets the batches through those it admits.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

snapshot() {	# what a run stored, in a form two runs can be compared by
	q "SELECT event_id, user_id, event_type, product_id, price, event_time FROM events ORDER BY 1"
	q "SELECT file, line_no, reason FROM event_rejects ORDER BY 1, 2"
	q "SELECT sum(rows_read), sum(valid), sum(late), sum(duplicates), sum(rejected),
	   sum(written), count(*) FROM evstream_batches"
}
fresh() { pg_reset_tables >/dev/null; rm -rf "$CKPT"; }

evgen_run --count=12 --rows_per_file=300 --interval=0 --seed=17 --invalid_rate=0.05 \
	--duplicate_rate=0.05 --late_rate=0.02
evstream_once --max_files_per_trigger=4 --copy_sessions=1
snapshot >"$ST/ref"
check "reference_has_rows" test "$(q 'SELECT count(*) FROM events')" -gt 3000

# 1. three sessions store exactly what one does
fresh
evstream_once --max_files_per_trigger=4 --copy_sessions=3
check_eq "three_sessions_same_rows_rejects_counts" "$(cat "$ST/ref")" "$(snapshot)"
check_eq "three_sessions_no_slice_left" 0 "$(q 'SELECT count(*) FROM evstream_slices')"
check_eq "three_sessions_written_is_rows" "$(q 'SELECT count(*) FROM events')" \
	"$(q 'SELECT sum(written) FROM evstream_batches')"

# 2. killed between the slices' commits: slice 0 (batch row, claims, rejects) is in,
#    slices 1 and 2 are pending; the next start, with one session, finishes them.
fresh
EVSTREAM_FAILPOINT=between_slices evstream_once --max_files_per_trigger=4 --copy_sessions=3
check_eq "killed_between_slices" "1 2" "$(q 'SELECT count(*), (SELECT count(*) FROM evstream_slices) FROM evstream_batches' | tr '|' ' ')"
check "killed_batch_partly_stored" test "$(q 'SELECT count(*) FROM events')" -lt \
	"$(q 'SELECT written FROM evstream_batches')"
evstream_once --max_files_per_trigger=4 --copy_sessions=1
check "unfinished_batch_finished_logged" grep -q "batch 1 is unfinished" "$LOG"
check_eq "finished_same_rows_rejects_counts" "$(cat "$ST/ref")" "$(snapshot)"
check_eq "finished_no_slice_left" 0 "$(q 'SELECT count(*) FROM evstream_slices')"

# 3. ids the table holds already that the dedupe set has not seen (stored after
#    evstream started: another writer, a restore): the COPY fails on the key, the
#    batch is rolled back, the set rebuilt from the table (so the 25 now count as
#    duplicates) and the batch written again through the stage; nothing twice.
files_committed() { test "$(q 'SELECT coalesce(sum(cardinality(files)), 0) FROM evstream_batches')" -ge "$1"; }
q "CREATE TABLE keep AS SELECT * FROM events ORDER BY event_id LIMIT 25" >/dev/null
fresh
mkdir -p "$ST/aside" && mv "$SPOOL"/*.csv "$ST/aside/"
: >"$LOG"
evstream_bg --max_files_per_trigger=4 --copy_sessions=2 --trigger_interval=0.1
wait_for 20 grep -q "dedupe set rebuilt" "$LOG"
kill -STOP "$EVSTREAM_PID"	# every file appears to it in one trigger, as to --once
q "INSERT INTO events SELECT * FROM keep; DROP TABLE keep" >/dev/null
mv "$ST/aside"/*.csv "$SPOOL/"
kill -CONT "$EVSTREAM_PID"
check "conflict_batches_done" wait_for 60 files_committed 12
kill "$EVSTREAM_PID"; wait "$EVSTREAM_PID"
check "conflict_goes_through_stage" grep -q "writing it again through the stage" "$LOG"
check_eq "conflict_same_ids_as_reference" "$(awk -F'|' 'NF == 6 { print $1 }' "$ST/ref")" \
	"$(q 'SELECT event_id FROM events ORDER BY 1')"
ref_dup=$(tail -n 1 "$ST/ref" | cut -d'|' -f4)
check_eq "conflict_counted_as_duplicates" "$((ref_dup + 25)) 0" "$(q 'SELECT sum(duplicates), sum(valid - late - duplicates - written) FROM evstream_batches' | tr '|' ' ')"

# 4. an unfinished batch whose file changed since: not finished from the new bytes,
#    said in the log and by status, and finished once the file is back as it was.
fresh
EVSTREAM_FAILPOINT=between_slices evstream_once --max_files_per_trigger=4 --copy_sessions=2
first=$(ls "$SPOOL" | LC_ALL=C sort | head -1)
cp "$SPOOL/$first" "$ST/saved.csv"
touch -r "$SPOOL/$first" "$ST/saved.csv"
tail -n 1 "$ST/saved.csv" >>"$SPOOL/$first"
evstream_once --max_files_per_trigger=4 --copy_sessions=2
check "changed_file_not_finished_logged" grep -q "batch 1 cannot be finished: .*$first changed" "$LOG"
check_eq "changed_file_slice_still_pending" 1 "$(q 'SELECT count(*) FROM evstream_slices')"
stream_ini "trigger_interval = 0.1"
status=$(evs status 2>&1); rc=$?
check "status_unhealthy_while_unfinished" test "$rc" -ne 0
check "status_names_unfinished_batch" grep -q "unfinished" <<<"$status"
cp -p "$ST/saved.csv" "$SPOOL/$first"
evstream_once --max_files_per_trigger=4 --copy_sessions=2
check_eq "restored_file_finished" 0 "$(q 'SELECT count(*) FROM evstream_slices')"
check_eq "restored_same_rows_rejects_counts" "$(cat "$ST/ref")" "$(snapshot)"

# 5. a server that admits fewer sessions than copy_sessions (a role's CONNECTION
#    LIMIT, max_connections): the batches go through the sessions it admits, exactly
#    as through one, instead of the stream waiting for the others; the log, the
#    metrics and status say so; once it admits them all, all are used again.
#    (PGUSER overrides the conninfo's user, as the README says.)
fresh
q "CREATE ROLE evpipe_limited LOGIN CONNECTION LIMIT 2;
   GRANT USAGE ON SCHEMA public TO evpipe_limited;
   GRANT ALL ON ALL TABLES IN SCHEMA public TO evpipe_limited;
   GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO evpipe_limited" >/dev/null
: >"$LOG"
PGUSER=evpipe_limited evstream_once --max_files_per_trigger=4 --copy_sessions=4
check_eq "limited_once_exit_0" 0 $?
check_eq "limited_same_rows_rejects_counts" "$(cat "$ST/ref")" "$(snapshot)"
check "limited_said_in_log" grep -q "copy_sessions = 4, but session 3 could not connect (.*too many connections.*): batches go through 2 sessions" "$LOG"
check_eq "limited_metrics" "4 2" "$(metric evpipe_copy_sessions) $(metric evpipe_copy_sessions_connected)"
status=$(PGUSER=evpipe_limited evs status --json); rc=$?
check_eq "limited_status_exit_1" 1 "$rc"
check_eq "limited_status_says_so" "4 2 true" "$(jq -r '"\(.copy_sessions) \(.sessions_connected) \(.problems | any(startswith("sessions: batches go through 2 of copy_sessions = 4")))"' <<<"$status")"
# A daemon: left out, then the limit raised, and the next batch after retry_max
# goes through all four.
: >"$LOG"
PGUSER=evpipe_limited evstream_bg --max_files_per_trigger=4 --copy_sessions=4 --trigger_interval=0.1
at_exit "kill $EVSTREAM_PID 2>/dev/null"
evgen_run --count=1 --rows_per_file=50
check "daemon_limited_warns" wait_for 20 grep -q "batches go through 2 sessions" "$LOG"
q "ALTER ROLE evpipe_limited CONNECTION LIMIT -1" >/dev/null
sleep 1.2	# retry_max (1 s): the next batch tries all four again
evgen_run --count=1 --rows_per_file=50
check "daemon_all_sessions_again_logged" wait_for 20 grep -q "all 4 sessions of copy_sessions connect again" "$LOG"
all_connected() { [[ $(metric evpipe_copy_sessions_connected) == 4 ]]; }
check "daemon_metrics_all_connected" wait_for 20 all_connected
check "daemon_status_healthy_again" env PGUSER=evpipe_limited "$EVPIPE_BIN/evstream" -c "$INI" status
kill "$EVSTREAM_PID"; wait "$EVSTREAM_PID"
check_eq "daemon_rows_as_written" "$(q 'SELECT sum(written) FROM evstream_batches')" "$(q 'SELECT count(*) FROM events')"
