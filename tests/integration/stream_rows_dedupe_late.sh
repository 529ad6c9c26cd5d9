#!/usr/bin/env bash
# Row-level promises: duplicates (within a file, across files, across a restart)
# are dropped and counted; late events become 'late' rejects; every invalid kind
# evgen makes is rejected with its reason; CRLF, a BOM and quoted fields parse.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

H='event_id,user_id,event_type,product_id,price,event_time'
A=aaaaaaaa-0000-4000-8000-000000000001
B=aaaaaaaa-0000-4000-8000-000000000002
C=aaaaaaaa-0000-4000-8000-000000000003
D=aaaaaaaa-0000-4000-8000-000000000004
row() { echo "$1,7,view,9,0.00,$2"; }

# 1. duplicates within a file and across files
{ echo $H; row $A '2026-03-01 12:00:00'; row $A '2026-03-01 12:00:00'; row $B '2026-03-01 12:00:01'; } >"$SPOOL/events_01.csv"
{ echo $H; row $B '2026-03-01 12:00:01'; row $C '2026-03-01 12:00:02'; } >"$SPOOL/events_02.csv"
evstream_once
check_eq "dup_within_and_across_files_events" 3 "$(q 'SELECT count(*) FROM events')"
check_eq "dup_counted_per_batch" "1,1" "$(q 'SELECT string_agg(duplicates::text, $$,$$ ORDER BY batch_id) FROM evstream_batches')"

# 2. across a restart: the set is rebuilt from the table
{ echo $H; row $C '2026-03-01 12:00:02'; row $D '2026-03-01 12:00:03'; } >"$SPOOL/events_03.csv"
evstream_once
check_eq "dup_across_restart_events" 4 "$(q 'SELECT count(*) FROM events')"
check_eq "dup_across_restart_counted" 1 "$(q 'SELECT duplicates FROM evstream_batches WHERE batch_id = 3')"
check "dedupe_rebuilt_from_table_logged" grep -q 'dedupe set rebuilt from the events table: 3 ids' "$LOG"

# 3. late events: watermark = max committed (12:00:03) - 300 s = 11:55:03
E=aaaaaaaa-0000-4000-8000-000000000005
F=aaaaaaaa-0000-4000-8000-000000000006
{ echo $H; row $E '2026-03-01 11:55:02.999999'; row $F '2026-03-01 11:55:03'; } >"$SPOOL/events_04.csv"
evstream_once
check_eq "late_event_rejected_on_time_kept" "1 1" "$(q "SELECT count(*) FILTER (WHERE event_id = '$F'), (SELECT count(*) FROM event_rejects WHERE reason = 'late' AND line_no = 2 AND file = 'events_04.csv') FROM events" | tr '|' ' ')"
check_eq "late_counted_in_batch" "1 2026-03-01 11:55:03+00" "$(q "SELECT late, watermark FROM evstream_batches WHERE batch_id = 4" | tr '|' ' ')"

# 4. an id whose first copy left the set (older than the watermark) but comes back
#    with a newer time: the database's ON CONFLICT catches it; nothing fails.
{ echo $H; row $A '2026-03-01 12:10:00'; row aaaaaaaa-0000-4000-8000-000000000007 '2026-03-01 12:10:00'; } >"$SPOOL/events_05.csv"
{ echo $H; row $A '2026-03-01 12:10:01'; } >"$SPOOL/events_06.csv"
evstream_once --watermark_delay=1
check_eq "escaped_duplicate_not_written_twice" "6 1" "$(q "SELECT count(*), count(*) FILTER (WHERE event_id = '$A') FROM events" | tr '|' ' ')"
check_eq "escaped_duplicate_written_counts" "1" "$(q 'SELECT written FROM evstream_batches WHERE batch_id = 5')"

# 5. every invalid kind evgen makes, with exact counts by reason
pg_reset_tables; rm -rf "$SPOOL" "$CKPT"; mkdir -p "$SPOOL"
evgen_run --count=20 --rows_per_file=200 --interval=0.01 --seed=5 --invalid_rate=0.3
rows_by_reason "$SPOOL"/*.csv | grep -v '^invalid ' >"$ST/expected"
evstream_once --max_files_per_trigger=0
{ q "SELECT reason, count(*) FROM event_rejects GROUP BY reason" | tr '|' ' '; echo "valid $(q 'SELECT count(*) FROM events')"; } | LC_ALL=C sort >"$ST/got"
check_eq "invalid_kinds_six_reasons" 7 "$(wc -l <"$ST/expected")"
check_eq "invalid_kinds_exact_counts_by_reason" "$(cat "$ST/expected")" "$(cat "$ST/got")"
check_eq "rejects_keep_raw_line_and_line_no" 0 "$(q "SELECT count(*) FROM event_rejects WHERE raw_line = '' OR line_no < 2")"

# 6. CRLF, BOM, columns in another order, an extra column, quoted fields with
#    commas, quotes and newlines; line numbers stay physical.
G=aaaaaaaa-0000-4000-8000-000000000010
I=aaaaaaaa-0000-4000-8000-000000000011
printf '\xef\xbb\xbfevent_time,note,event_id,user_id,event_type,product_id,price\r\n' >"$SPOOL/events_x.csv"
printf '2026-03-02 10:00:00,"a, ""quoted""\r\nnote",%s,1,"view",2,0\r\n' $G >>"$SPOOL/events_x.csv"
printf '2026-03-02T10:00:01Z,plain,%s,1,purchase,2,"12.50"\r\n' $I >>"$SPOOL/events_x.csv"
printf '2026-03-02 10:00:02,bad,not-a-uuid,1,view,2,0\r\n' >>"$SPOOL/events_x.csv"
evstream_once
check_eq "crlf_bom_quoted_events" "2 12.50" "$(q "SELECT count(*), max(price) FROM events WHERE event_id IN ('$G','$I')" | tr '|' ' ')"
check_eq "quoted_newline_keeps_physical_line_numbers" "5 event_id" "$(q "SELECT line_no, reason FROM event_rejects WHERE file = 'events_x.csv'" | tr '|' ' ')"
check "extra_column_warned_once" test "$(grep -c "events_x.csv.*note" "$LOG")" = 1
