#!/usr/bin/env bash
# The dedupe set is bounded (dedupe_max_ids), the dedupe is still exact: an id the
# full set let go (the oldest first) that comes back, in the same batch or in a later
# one after a restart, is caught by the database (the key, then the stage's ON
# CONFLICT DO NOTHING), stored once and counted as `conflict` in the batch log, in
# status and in the metrics; with one session and with two.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup
stream_ini

H=event_id,user_id,event_type,product_id,price,event_time
id() { printf 'bbbbbbbb-0000-4000-8000-%012d' "$1"; }
# rows FIRST LAST: ids FIRST..LAST, event_time 50 ms apart from 12:00 on (the lowest
# ids are the oldest, the set lets them go first; 3,010 rows span 151 s, inside the
# 5-minute watermark window: no row is late).
rows() { local i ms; for ((i = $1; i <= $2; i++)); do
	ms=$((i * 50))
	printf '%s,7,view,9,0.00,2026-03-01 12:%02d:%02d.%03d\n' "$(id "$i")" \
		$((ms / 60000)) $((ms / 1000 % 60)) $((ms % 1000))
done; }

for sessions in 1 2; do
	pg_reset_tables >/dev/null; rm -rf "$CKPT" "$SPOOL"; mkdir -p "$SPOOL"; : >"$LOG"
	# Batch 1: 3,000 ids, then ids 1..50 again: the set (at most 1,000) let them go.
	{ echo $H; rows 1 3000; rows 1 50; } >"$SPOOL/events_01.csv"
	evstream_once --dedupe_max_ids=1000 --copy_sessions=$sessions
	check_eq "s${sessions}_exit_0" 0 $?
	# Batch 2, after a restart (the set rebuilt from the table's 3,000 ids keeps the
	# newest 1,000): ids 51..100 again and 10 new ones.
	{ echo $H; rows 51 100; rows 3001 3010; } >"$SPOOL/events_02.csv"
	evstream_once --dedupe_max_ids=1000 --copy_sessions=$sessions
	check_eq "s${sessions}_restart_exit_0" 0 $?
	check "s${sessions}_restart_rebuilt_full_set" grep -q 'dedupe set rebuilt from the events table: 1000 ids' "$LOG"
	check_eq "s${sessions}_each_id_once" "3010 3010" \
		"$(q 'SELECT count(*), count(DISTINCT event_id) FROM events' | tr '|' ' ')"
	# conflict = valid - late - duplicates - written, the batch log's own arithmetic.
	check_eq "s${sessions}_conflict_per_batch" "1:3050:3000:50 2:60:10:50" \
		"$(q 'SELECT batch_id, valid, written, valid - late - duplicates - written
		      FROM evstream_batches ORDER BY 1' | tr '|' ':' | tr '\n' ' ' | sed 's/ $//')"
	check "s${sessions}_set_was_full" test "$(metric evpipe_dedupe_evicted_full_total)" -gt 0
	# The metrics count since this process started: batch 2.
	check_eq "s${sessions}_metrics_conflict" 50 "$(metric 'evpipe_rows_total{outcome="conflict"}')"
	check_eq "s${sessions}_status_conflict" 100 "$(evs status --json | jq .database.rows.conflict)"
	check_eq "s${sessions}_set_bounded" 1 "$(($(metric evpipe_dedupe_entries) <= 1000))"
	cp "$LOG" "$EVPIPE_TEST_LOGDIR/dedupe_set_full_s$sessions.log" 2>/dev/null
	check_fails "s${sessions}_no_warning_or_error" grep -qE ' (warning|error): ' "$LOG"
done
