#!/usr/bin/env bash
# PostgreSQL stopped mid-stream (fast), then killed (immediate), each for a few
# seconds: evstream logs the outage once, backs off, resumes by itself, and the
# event_id sets still match exactly.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup

"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.05 --rows_per_file=100 --log_level=warning &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
evstream_bg --trigger_interval=0.1 --max_files_per_trigger=2
at_exit "kill $EVSTREAM_PID 2>/dev/null"

wait_for 20 batches_ge 4
# Each outage lasts 3 s (the scenario: evstream meets it, backs off, retries); it has
# resumed once a batch commits after the server is back (evgen keeps writing).
batches() { q 'SELECT count(*) FROM evstream_batches'; }
pg_stop_server; sleep 3; pg_start_server
b=$(batches)
check "resumed_after_fast_stop" wait_for 30 batches_ge $((b + 1))
pg_kill_server; sleep 3; pg_start_server
b=$(batches)
check "resumed_after_immediate_stop" wait_for 30 batches_ge $((b + 1))
check "resumption_logged_per_outage" log_count_ge 'database answers again' 2
check "outage_logged_once_per_outage" test "$(grep -c 'database unavailable' "$LOG")" -le 4
kill "$EVGEN_PID"; wait_exit 30 "$EVGEN_PID"
kill -TERM "$EVSTREAM_PID"; wait_exit 30 "$EVSTREAM_PID"
check_eq "evstream_exits_0_on_sigterm" 0 $?
evstream_once --max_files_per_trigger=0
csv_ids "$SPOOL" >"$ST/expected"
db_ids >"$ST/got"
check "events_flowed" test "$(wc -l <"$ST/expected")" -gt 500
check_eq "outage_exactly_once_ids_equal" "$(wc -l <"$ST/expected") 0" "$(wc -l <"$ST/got") $(LC_ALL=C comm -3 "$ST/expected" "$ST/got" | wc -l)"
rel_compare db_outage_stop_and_kill 2 "$ST/expected"
