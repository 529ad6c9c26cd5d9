#!/usr/bin/env bash
# A row from the future (dated 2099, or by a producer whose clock runs ahead) is
# rejected as 'future' and never moves the watermark, so the valid rows after it
# still load, also across a restart; and while most recent rows are rejected as
# late or future, `evstream status` says unhealthy (exit 1, a problem line).
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
H='event_id,user_id,event_type,product_id,price,event_time'
row() { echo "$1,7,view,9,0.00,$2"; }
ago() { date -u -d "-$1 sec" '+%F %T'; }	# this clock, $1 seconds ago
stream_ini 'stall_triggers = 1000'

# 1. one valid row, one from 2099 and one 1 h ahead of this clock (a skewed producer)
A=cccccccc-0000-4000-8000-000000000001 P=cccccccc-0000-4000-8000-000000000002
S=cccccccc-0000-4000-8000-000000000003 B=cccccccc-0000-4000-8000-000000000004
TA=$(ago 60)
{ echo $H; row $A "$TA"; row $P '2099-01-01 00:00:00'; row $S "$(date -u -d '+1 hour' '+%F %T')"; } >"$SPOOL/events_01.csv"
evstream_once
check_eq "future_rows_lines_and_reason" "3|future 4|future" \
	"$(q "SELECT line_no, reason FROM event_rejects ORDER BY line_no" | paste -sd' ')"
check_eq "future_rows_not_in_events" "1 0" \
	"$(q "SELECT count(*) FILTER (WHERE event_id = '$A'), count(*) FILTER (WHERE event_id IN ('$P', '$S')) FROM events" | tr '|' ' ')"
check_eq "future_rows_leave_max_event_time" "$TA+00 2" \
	"$(q "SELECT max_event_time, late FROM evstream_batches WHERE batch_id = 1" | tr '|' ' ')"

# 2. a later valid row loads, after a restart (a new process: checkpoint and database)
TB=$(ago 30)
{ echo $H; row $B "$TB"; } >"$SPOOL/events_02.csv"
evstream_once
check_eq "later_valid_row_loads_after_restart" 1 "$(q "SELECT count(*) FROM events WHERE event_id = '$B'")"
check_eq "watermark_never_moved_to_the_future" "$(date -u -d "$TA UTC - 300 sec" '+%F %T')+00 $TB+00 0" \
	"$(q "SELECT watermark, max_event_time, late FROM evstream_batches WHERE batch_id = 2" | tr '|' ' ')"
check_eq "status_healthy_with_a_few_future_rows" 0 "$(evs status >"$ST/status.txt" 2>>"$LOG"; echo $?)"
check "status_counts_future_rejects" grep -q 'future 2' "$ST/status.txt"
# For tests/RELIABILITY.md: two valid rows, two from the future, over two processes.
got=$(q "SELECT count(*) FROM events WHERE event_id IN ('$A', '$B')")
fut=$(q "SELECT count(*) FROM event_rejects WHERE reason = 'future' AND line_no IN (3, 4)")
rel_record future_rows 2 2 "$got" "$fut" $((2 - got + 2 - fut)) \
	"$(q 'SELECT (SELECT count(*) FROM events) - count(DISTINCT event_id) FROM events')"

# 3. most rows of the recent batches late (a producer's clock an hour behind): unhealthy
{ echo $H; for i in 1 2 3 4 5 6; do row "dddddddd-0000-4000-8000-00000000000$i" "$(ago 3600)"; done; } >"$SPOOL/events_03.csv"
evstream_once
check_eq "late_rows_rejected" 6 "$(q "SELECT count(*) FROM event_rejects WHERE reason = 'late' AND file = 'events_03.csv'")"
evs status --json >"$ST/status.json" 2>>"$LOG"; rc=$?
check_eq "status_exit_1_while_most_rows_rejected" 1 "$rc"
check_eq "status_json_recent_window" "10 10 8" "$(jq -r '.database.recent | "\(.batches) \(.rows) \(.late_or_future)"' "$ST/status.json")"
check_eq "status_problem_names_late_or_future" 1 \
	"$(jq '[.problems[] | select(test("8 of the 10 rows of the last 10 batches were late or future"))] | length' "$ST/status.json")"
check "status_text_problem_line" grep -q '^  problem     rejecting: ' <(evs status 2>>"$LOG")

# 4. a higher threshold, or newer healthy batches, clear it
check_eq "status_threshold_is_a_setting" 0 "$(evs status --reject_alarm_share=0.9 >/dev/null 2>>"$LOG"; echo $?)"
{ echo $H; for i in 1 2 3 4 5 6 7 8 9; do row "eeeeeeee-0000-4000-8000-00000000000$i" "$(ago 5)"; done; } >"$SPOOL/events_04.csv"
evstream_once
check_eq "status_healthy_once_rows_load_again" 0 "$(evs status >/dev/null 2>>"$LOG"; echo $?)"

# 5. the README's reset of a watermark carried ahead before this bound existed (here:
#    a bound of a year lets a row dated tomorrow in), then the late rows requeued
X=ffffffff-0000-4000-8000-000000000001 Y=ffffffff-0000-4000-8000-000000000002
{ echo $H; row $X "$(date -u -d '+1 day' '+%F %T')"; } >"$SPOOL/events_05.csv"
evstream_once --max_future_seconds=31536000
{ echo $H; row $Y "$(ago 1)"; } >"$SPOOL/events_06.csv"
evstream_once
check_eq "poisoned_watermark_rejects_as_late" late "$(q "SELECT reason FROM event_rejects WHERE file = 'events_06.csv'")"
q "BEGIN;
CREATE TABLE events_from_the_future AS
    SELECT * FROM events WHERE event_time > now() + interval '300 seconds';
DELETE FROM events WHERE event_time > now() + interval '300 seconds';
UPDATE evstream_batches SET max_event_time = (SELECT max(event_time) FROM events)
    WHERE batch_id = (SELECT max(batch_id) FROM evstream_batches);
COMMIT;" >/dev/null
rm -f "$CKPT/checkpoint" "$CKPT/checkpoint.journal"
F=events_$(date -u +%Y%m%dT%H%M%S.%6N)_requeued.csv
{ echo $H; q "SELECT raw_line FROM event_rejects WHERE reason = 'late' AND batch_id > 5 ORDER BY reject_id"; } >"$SPOOL/.$F.tmp" &&
	mv "$SPOOL/.$F.tmp" "$SPOOL/$F"
evstream_once
check_eq "reset_watermark_then_requeued_row_lands_once" "1 0 1" \
	"$(q "SELECT count(*) FILTER (WHERE event_id = '$Y'), count(*) FILTER (WHERE event_id = '$X'), (SELECT count(*) FROM events_from_the_future) FROM events" | tr '|' ' ')"
check_eq "reset_keeps_every_file_committed_once" "7 7" "$(q "SELECT count(f), count(DISTINCT f) FROM evstream_batches, unnest(files) f" | tr "|" " ")"
