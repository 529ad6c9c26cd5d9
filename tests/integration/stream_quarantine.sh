#!/usr/bin/env bash
# A file with a missing required column is quarantined: moved to quarantine/,
# logged, never retried; the files around it still load.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

evgen_run --count=1 --rows_per_file=10 --interval=0
printf 'event_id,user_id,event_type,product_id,event_time\nx,1,view,1,2026-01-01 00:00:00\n' >"$SPOOL/events_m_missing_price.csv"
evgen_run --count=1 --rows_per_file=10 --interval=0
evstream_once
check_eq "missing_column_file_quarantined" "events_m_missing_price.csv" "$(ls "$SPOOL/quarantine" | grep -v '\.reason$')"
check "missing_column_reason_names_column" grep -q price "$SPOOL/quarantine/events_m_missing_price.csv.reason"
check "missing_column_logged" grep -q "events_m_missing_price.csv.*price.*quarantine" "$LOG"
check_eq "files_around_quarantine_loaded" "20 2" "$(q 'SELECT (SELECT count(*) FROM events), count(*) FROM evstream_batches' | tr '|' ' ')"
evstream_once
check_eq "quarantined_file_not_retried" 1 "$(grep -c 'events_m_missing_price.csv' "$LOG")"
