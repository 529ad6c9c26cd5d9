#!/usr/bin/env bash
# What an operator relies on: `evstream status --json` equals the pipeline's
# state exactly (known values from a seeded run, and the database's own counts);
# the exit code says stalled while a file waits too long or the database is
# down, and healthy again after; the daemon's metrics file, scraped twice, only
# grows, equals the database's counts and passes `promtool check metrics`; it
# says evpipe_database_up 0 within seconds of an outage, stays fresh (rewritten)
# while the outage lasts, and says 1 again once the database answers; a
# quarantined file, repaired and requeued, lands exactly once; requeueing a file
# that was committed is refused, whether the checkpoint or only
# evstream_batches remembers it.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup
PROM=$CKPT/evpipe.prom
H='event_id,user_id,event_type,product_id,price,event_time'

# status reads the daemon's configuration file, as an operator would run it.
stream_ini 'trigger_interval = 0.2' 'stall_triggers = 50'
status_json() { evs status --json >"$ST/status.json" 2>>"$LOG"; }
js() { jq -r "$1" "$ST/status.json"; }

# --- 1. a seeded run, then status --json field by field -------------------------------
if ! command -v jq >/dev/null; then fail "jq_installed" "jq is missing (make deps)"; exit 1; fi
check_eq "status_fresh_exit_0" 0 "$(evs status >/dev/null 2>&1; echo $?)"
check_eq "status_fresh_no_batch" "0 0 null" "$(status_json; js '"\(.database.batches) \(.spool.files_pending) \(.watermark)"')"
evgen_run --count=12 --rows_per_file=200 --interval=0.01 --seed=5 \
	--invalid_rate=0.05 --duplicate_rate=0.03 --late_rate=0.02
rows_by_reason "$SPOOL"/*.csv | grep -v '^valid ' >"$ST/invalid.expected"
printf '%s\nx,1,view,1,2026-01-01 00:00:00\n' 'event_id,user_id,event_type,product_id,event_time' \
	>"$SPOOL/events_zz_missing_price.csv"
evstream_once --max_files_per_trigger=5
evgen_run --count=2 --rows_per_file=10 --interval=0.01
pending=$(ls "$SPOOL" | grep -v '^events_zz' | grep '\.csv$' | tail -n 2)
status_json; rc=$?
check_eq "status_healthy_exit_0" 0 "$rc"
check_eq "status_json_healthy" "true 0" "$(js '"\(.healthy) \(.problems | length)"')"
check_eq "status_known_files_batches_rows" "12 3 3 2400" \
	"$(js '"\(.database.files_committed) \(.database.batches) \(.checkpoint.last_batch) \(.database.rows.read)"')"
check_eq "status_pending_and_oldest" "2 $(head -n 1 <<<"$pending") 1" \
	"$(js '"\(.spool.files_pending) \(.spool.oldest_pending_file) \(.spool.quarantined)"')"
check "status_oldest_age_plausible" jq -e '.spool.oldest_pending_age_seconds >= 0 and .spool.oldest_pending_age_seconds < 60' "$ST/status.json"
{ js '.database.rejects_by_reason | to_entries[] | select(.key != "late" and .value > 0) | "\(.key) \(.value)"'
	echo "invalid $(js .database.rows.invalid)"; } | LC_ALL=C sort >"$ST/invalid.got"
check_eq "status_invalid_by_reason_equals_files" "$(cat "$ST/invalid.expected")" "$(cat "$ST/invalid.got")"
check_eq "status_rows_equal_sql" \
	"$(q "SELECT (SELECT count(*) FROM events), sum(duplicates), (SELECT count(*) FROM event_rejects WHERE reason = 'late'), sum(late), sum(valid) - sum(late) - sum(duplicates) - sum(written) FROM evstream_batches" | tr '|' ' ')" \
	"$(js '"\(.database.rows.written) \(.database.rows.duplicate) \(.database.rejects_by_reason.late) \(.database.rows.late) \(.database.rows.conflict)"')"
check_eq "status_outcomes_add_up" 2400 "$(js '.database.rows | .written + .duplicate + .late + .invalid + .conflict')"
check "status_seeded_run_has_every_outcome" jq -e '.database.rows | .duplicate > 0 and .late > 0 and .invalid > 0' "$ST/status.json"
check_eq "status_written_last_minute_and_hour" "$(q 'SELECT count(*) FROM events') $(q 'SELECT count(*) FROM events')" \
	"$(js '"\(.database.written_last_minute) \(.database.written_last_hour)"')"
# A batch committed ten minutes ago counts in the last hour, not in the last minute.
q "UPDATE evstream_batches SET committed_at = committed_at - interval '10 minutes' WHERE batch_id = 1"
check_eq "status_last_minute_and_hour_by_committed_at" \
	"$(q 'SELECT sum(written) FILTER (WHERE batch_id > 1), sum(written) FROM evstream_batches' | tr '|' ' ')" \
	"$(status_json; js '"\(.database.written_last_minute) \(.database.written_last_hour)"')"
check_eq "status_last_batch_at_equals_sql" \
	"$(q "SELECT to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM evstream_batches ORDER BY batch_id DESC LIMIT 1")" \
	"$(js .database.last_batch_at)"
check_eq "status_watermark_equals_sql" \
	"$(q "SELECT to_char((max(max_event_time) - interval '300 s') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM evstream_batches")" \
	"$(js .watermark)"
# The set holds exactly the ids the watermark still protects.
check_eq "status_dedupe_entries_equal_sql" \
	"$(q "SELECT count(*) FROM events WHERE event_time >= (SELECT max(max_event_time) - interval '300 s' FROM evstream_batches)")" \
	"$(js .dedupe_entries)"
check_eq "status_dedupe_entries_from_metrics_file" "$(metric evpipe_dedupe_entries)" "$(js .dedupe_entries)"
evs status >"$ST/status.txt" 2>&1
check "status_text_screen" grep -qE "^evpipe status: HEALTHY$" "$ST/status.txt"
check "status_text_counts" grep -qE "^  rows +read 2400: written $(js .database.rows.written) " "$ST/status.txt"
cp "$ST/status.txt" "$EVPIPE_TEST_LOGDIR/status_screen.txt" 2>/dev/null

# --- 2. stalled: a file waiting far longer than stall_triggers x trigger_interval ------
cp "$SPOOL/$(tail -n 1 <<<"$pending")" "$SPOOL/events_00_old.csv"
touch -d '@'$(($(date +%s) - 3600)) "$SPOOL/events_00_old.csv"
status_json; rc=$?
check_eq "status_stalled_by_old_file_exit_1" "1 false events_00_old.csv" "$rc $(js '"\(.healthy) \(.spool.oldest_pending_file)"')"
check "status_stalled_says_why" jq -e '.problems[0] | test("stalled: events_00_old.csv has waited 36[0-9][0-9]")' "$ST/status.json"
evstream_once
check_eq "status_healthy_after_drain" "0 0" "$(status_json; echo "$? $(js .spool.files_pending)")"

# --- 3. the daemon's metrics: scraped twice, monotone, equal to the database ----------
B0=$(q 'SELECT max(batch_id) FROM evstream_batches')
# The last --once run's file would pass for a first scrape until the daemon writes its own
# (valgrind found that race: a slow start, then counters "falling" to the new process's).
rm -f "$PROM"
evstream_bg --max_files_per_trigger=2 --trigger_interval=0.1
at_exit "kill $EVSTREAM_PID 2>/dev/null"
"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.05 --rows_per_file=50 --invalid_rate=0.1 \
	--duplicate_rate=0.05 --log_level=warning &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
# A predicate, so wait_for polls the file (it expands its arguments only once).
batches_metric_ge() { local n; n=$(metric evpipe_batches_total 2>/dev/null); ((${n:-0} >= $1)); }
wait_for 20 batches_metric_ge 3
cp "$PROM" "$ST/scrape1"
wait_for 20 batches_metric_ge "$(($(metric evpipe_batches_total "$ST/scrape1") + 3))"
printf '%s\nx\n' 'event_id,nothing' >"$SPOOL/events_zz_daemon_quarantine.csv"
kill "$EVGEN_PID"; wait "$EVGEN_PID"
drained() { [[ $(evs status --json 2>/dev/null | jq .spool.files_pending) == 0 ]] &&
	[[ $(metric evpipe_last_batch_id) == "$(q 'SELECT max(batch_id) FROM evstream_batches')" ]]; }
wait_for 20 drained
# One more batch after the quarantine, so the file says so.
evgen_run --count=1 --rows_per_file=5
wait_for 20 drained
cp "$PROM" "$ST/scrape2"
counters() { grep -E '^evpipe_[a-z_]+(_total|_bucket|_count|_sum)[{ ]' "$1" | sed 's/ [^ ]*$//' | LC_ALL=C sort; }
check_eq "metrics_same_series_both_scrapes" "$(counters "$ST/scrape1")" "$(counters "$ST/scrape2")"
check_eq "metrics_monotone_between_scrapes" "" "$(awk 'NR == FNR { if ($1 ~ /^evpipe_/) a[$1] = $2; next }
	$1 ~ /(_total|_bucket|_count|_sum)$|_total\{|_bucket\{/ && ($1 in a) && $2 + 0 < a[$1] + 0 { print $1, a[$1], "->", $2 }' "$ST/scrape1" "$ST/scrape2")"
check "metrics_grew_between_scrapes" test "$(metric evpipe_batches_total "$ST/scrape2")" -gt "$(metric evpipe_batches_total "$ST/scrape1")"
W="WHERE batch_id > $B0"
check_eq "metrics_equal_database_counts" \
	"$(q "SELECT count(*), sum(cardinality(files)), sum(rows_read), sum(written), sum(duplicates), sum(late), sum(rejected), sum(valid - late - duplicates - written) FROM evstream_batches $W" | tr '|' ' ')" \
	"$(for m in batches_total files_committed_total rows_read_total 'rows_total{outcome="written"}' 'rows_total{outcome="duplicate"}' 'rows_total{outcome="late"}' 'rows_total{outcome="invalid"}' 'rows_total{outcome="conflict"}'; do metric "evpipe_$m" "$ST/scrape2"; done | paste -sd' ')"
check_eq "metrics_invalid_by_reason_equal_database" \
	"$(q "SELECT reason, count(*) FROM event_rejects $W AND reason <> 'late' GROUP BY reason ORDER BY reason" | tr '|' ' ')" \
	"$(sed -n 's/^evpipe_rows_invalid_total{reason="\([a-z_]*\)"} \([1-9][0-9]*\)$/\1 \2/p' "$ST/scrape2" | LC_ALL=C sort)"
check_eq "metrics_histogram_count_equals_batches" "$(metric evpipe_batches_total "$ST/scrape2") $(metric evpipe_batches_total "$ST/scrape2")" \
	"$(metric 'evpipe_batch_duration_seconds_bucket{le="+Inf"}' "$ST/scrape2") $(metric evpipe_batch_duration_seconds_count "$ST/scrape2")"
check_eq "metrics_quarantine_and_gauges" "1 0 0 $(q 'SELECT max(batch_id) FROM evstream_batches')" \
	"$(for m in files_quarantined_total files_pending lag_seconds last_batch_id; do metric "evpipe_$m" "$ST/scrape2"; done | paste -sd' ')"
check_eq "metrics_watermark_equals_sql" \
	"$(q "SELECT extract(epoch FROM max(max_event_time) - interval '300 s')::numeric(20,6) FROM evstream_batches")" \
	"$(metric evpipe_watermark_seconds "$ST/scrape2" | awk '{ printf "%.6f", $1 }')"
check "metrics_copy_bytes_counted" test "$(metric evpipe_copy_bytes_total "$ST/scrape2")" -gt 1000
if command -v promtool >/dev/null; then
	check "promtool_check_metrics" promtool check metrics <"$ST/scrape2"
else
	skip "promtool_check_metrics" "promtool missing (Debian package prometheus; make deps)"
fi
cp "$ST/scrape2" "$EVPIPE_TEST_LOGDIR/metrics_sample.prom" 2>/dev/null

# --- 4. the database stops: stalled; it returns: healthy, and the daemon reconnected --
pg_stop_server
status_json; rc=$?
check_eq "status_database_down_exit_1" "1 false false" "$rc $(js '"\(.healthy) \(.database.up)"')"
check "status_database_down_says_why" jq -e '.problems | any(test("^database unavailable: "))' "$ST/status.json"
check_eq "requeue_refused_while_database_down" 1 "$(evs quarantine requeue events_zz_daemon_quarantine.csv >/dev/null 2>"$ST/err"; echo $?)"
check "requeue_refusal_names_the_database" grep -q 'cannot ask evstream_batches' "$ST/err"
# A file to load makes the daemon meet the outage (an idle one does not ask the database).
t_down=$(date +%s)
check_eq "metrics_database_up_before_outage" 1 "$(metric evpipe_database_up)"
evgen_run --count=1 --rows_per_file=5
metric_is() { [[ $(metric "$1" 2>/dev/null) == "$2" ]]; }
wait_for 15 metric_is evpipe_database_up 0
check_eq "metrics_database_up_0_during_outage" 0 "$(metric evpipe_database_up)"
check "metrics_database_down_since_plausible" awk -v a="$t_down" -v b="$(date +%s)" \
	'$1 == "evpipe_database_down_since_seconds" { ok = $2 >= a - 1 && $2 <= b + 1 } END { exit !ok }' "$PROM"
# Rewritten while the outage lasts (every ~10 s), so node_exporter's mtime stays fresh.
m0=$(stat -c %Y "$PROM")
mtime_after() { (($(stat -c %Y "$PROM") > $1)); }
wait_for 15 mtime_after "$m0"
check_eq "metrics_file_rewritten_during_outage" "yes 0" \
	"$(mtime_after "$m0" && echo yes || echo no) $(metric evpipe_database_up)"
pg_start_server
wait_for 15 metric_is evpipe_database_up 1
check_eq "metrics_database_up_1_when_it_returns" "1 0" \
	"$(metric evpipe_database_up) $(metric evpipe_database_down_since_seconds)"
check_eq "status_healthy_when_database_returns" "0 true" "$(status_json; echo "$? $(js .database.up)")"
evgen_run --count=1 --rows_per_file=5
wait_for 30 drained
check "metrics_count_the_reconnect" test "$(metric evpipe_database_reconnects_total)" -ge 1
kill -TERM "$EVSTREAM_PID"; wait "$EVSTREAM_PID"

# --- 5. quarantine: list, repair, requeue, lands exactly once; committed is refused ----
evs quarantine list >"$ST/qlist"; rc=$?
check_eq "quarantine_list_rc_and_count" "0 2" "$rc $(grep -c '^events_zz_' "$ST/qlist")"
check "quarantine_list_shows_when_and_reason" grep -qE '^events_zz_missing_price\.csv +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z +.*price' "$ST/qlist"
Q=$SPOOL/quarantine/events_zz_missing_price.csv
# Dated just now: after the watermark, and not in the future (max_future_seconds).
{ echo "$H"; for i in 1 2 3; do echo "bbbbbbbb-0000-4000-8000-00000000000$i,7,view,9,0.00,$(date -u -d "-$((10 - i)) sec" '+%F %T')"; done; } >"$Q"
check_eq "requeue_repaired_file" 0 "$(evs quarantine requeue "$Q" >"$ST/out" 2>&1; echo $?)"
check_eq "requeue_moves_it_back" "yes no no" "$([[ -f $SPOOL/events_zz_missing_price.csv ]] && echo yes || echo no) $([[ -e $Q ]] && echo yes || echo no) $([[ -e $Q.reason ]] && echo yes || echo no)"
evstream_once --max_files_per_trigger=0
check_eq "requeued_file_lands_exactly_once" "1 3" \
	"$(q "SELECT (SELECT count(*) FROM evstream_batches WHERE 'events_zz_missing_price.csv' = ANY (files)), count(*) FROM events WHERE event_id::text LIKE 'bbbbbbbb-%'" | tr '|' ' ')"
evstream_once --max_files_per_trigger=0
check_eq "requeued_file_not_loaded_again" "1 3" \
	"$(q "SELECT (SELECT count(*) FROM evstream_batches WHERE 'events_zz_missing_price.csv' = ANY (files)), count(*) FROM events WHERE event_id::text LIKE 'bbbbbbbb-%'" | tr '|' ' ')"
# The same name back in quarantine/ (an operator's copy): refused, by the checkpoint...
cp "$SPOOL/events_zz_missing_price.csv" "$Q"
check_eq "requeue_committed_refused" 1 "$(evs quarantine requeue events_zz_missing_price.csv >"$ST/out" 2>&1; echo $?)"
check "requeue_refusal_is_clear" grep -q 'refused: events_zz_missing_price.csv was already committed (the checkpoint' "$ST/out"
# ... and once the checkpoint forgot it (the file left the spool), by evstream_batches.
rm "$SPOOL/events_zz_missing_price.csv"
evstream_once
check_eq "checkpoint_forgot_the_name" 0 "$(grep -c '^file .*missing_price' "$CKPT/checkpoint")"
check_eq "requeue_committed_refused_by_database" 1 "$(evs quarantine requeue events_zz_missing_price.csv >"$ST/out" 2>&1; echo $?)"
check "requeue_refusal_names_the_batch" grep -qE 'already committed in batch [0-9]+ \(evstream_batches\)' "$ST/out"
check_eq "refused_file_stays_in_quarantine" "yes no" "$([[ -f $Q ]] && echo yes || echo no) $([[ -e $SPOOL/events_zz_missing_price.csv ]] && echo yes || echo no)"
check_eq "requeue_unknown_file_fails" 1 "$(evs quarantine requeue nosuch.csv >/dev/null 2>&1; echo $?)"
check_eq "bad_usage_exit_2" "2 2" "$(evs quarantine frobnicate >/dev/null 2>&1; echo -n "$? "; evs --json >/dev/null 2>&1; echo $?)"
