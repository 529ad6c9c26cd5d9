#!/usr/bin/env bash
# A clean stream from evgen lands whole; max_files_per_trigger caps each batch;
# --once backfills 200 files; empty and header-only files commit with no rows; the
# shipped defaults keep up with evgen's, and a stream that cannot keep up says so.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

# 1. clean stream, one file per batch (the seed's behaviour, still a setting)
evgen_run --count=10 --rows_per_file=100 --interval=0 --seed=11
evstream_once --max_files_per_trigger=1
check_eq "clean_stream_events" 1000 "$(q 'SELECT count(*) FROM events')"
check_eq "clean_stream_no_rejects" 0 "$(q 'SELECT count(*) FROM event_rejects')"
check_eq "clean_stream_one_file_per_batch" "10 10" "$(q 'SELECT count(*), sum(array_length(files,1)) FROM evstream_batches' | tr '|' ' ')"
check_eq "clean_stream_ids_equal_files" "$(csv_ids "$SPOOL")" "$(db_ids)"
check_eq "clean_stream_batch_counts" "1000 1000 1000" "$(q 'SELECT sum(rows_read), sum(valid), sum(written) FROM evstream_batches' | tr '|' ' ')"
check "batch_log_line_shape" grep -qE '\[batch 10\] files=1 rows=100 valid=100 late=0 dup=0 rejected=0 written=100 watermark=[0-9-]+ [0-9:.]+ [0-9]+ ms' "$LOG"

# 2. a second --once finds nothing new: no batch, no rows
evstream_once --max_files_per_trigger=1
check_eq "rerun_adds_no_batch" 10 "$(q 'SELECT count(*) FROM evstream_batches')"
check_eq "rerun_adds_no_rows" 1000 "$(q 'SELECT count(*) FROM events')"

# 3. max_files_per_trigger=2 over 5 new files: batches of 2, 2, 1
evgen_run --count=5 --rows_per_file=10 --interval=0
evstream_once --max_files_per_trigger=2
check_eq "max_files_per_trigger_respected" "2,2,1" "$(q 'SELECT string_agg(array_length(files,1)::text, $$,$$ ORDER BY batch_id) FROM evstream_batches WHERE batch_id > 10')"
check_eq "max_files_per_trigger_rows" 1050 "$(q 'SELECT count(*) FROM events')"

# 4. empty and header-only files: committed, zero rows, never read again
: >"$SPOOL/events_zz_empty.csv"
echo 'event_id,user_id,event_type,product_id,price,event_time' >"$SPOOL/events_zz_header_only.csv"
evstream_once --max_files_per_trigger=0
check_eq "empty_and_header_only_one_batch_zero_rows" "2 0" "$(q 'SELECT array_length(files,1), rows_read FROM evstream_batches ORDER BY batch_id DESC LIMIT 1' | tr '|' ' ')"
check_eq "empty_files_not_quarantined" 0 "$(ls "$SPOOL/quarantine" 2>/dev/null | wc -l)"

# 5. --once backfill of 200 files, 10 per batch, with clean_source=archive
pg_reset_tables; rm -rf "$SPOOL" "$CKPT"; mkdir -p "$SPOOL"
evgen_run --count=200 --rows_per_file=50 --burst
csv_ids "$SPOOL" >"$ST/expected"
evstream_once --max_files_per_trigger=10 --clean_source=archive
check_eq "backfill_200_files_20_batches" 20 "$(q 'SELECT count(*) FROM evstream_batches')"
check_eq "backfill_200_files_rows" 10000 "$(q 'SELECT count(*) FROM events')"
check_eq "backfill_ids_equal_files" "$(cat "$ST/expected")" "$(db_ids)"
check_eq "clean_source_archive_moves_all" "0 200" "$(ls "$SPOOL" | grep -c '\.csv$') $(ls "$SPOOL/archive" | wc -l)"
check_eq "checkpoint_compacted_after_archive" 0 "$(evstream_once; grep -c '^file ' "$CKPT/checkpoint")"

# 6. the shipped defaults keep up: evstream's default files per trigger, over its
# default trigger, outrun evgen's default rate (a file per `interval`) tenfold.
dflt() { "$EVPIPE_BIN/$1" --help | sed -n "/^  --$2=/{n;s/.*default: \([0-9.]*\)\].*/\1/p}"; }
per_trigger=$(dflt evstream max_files_per_trigger) trigger=$(dflt evstream trigger_interval)
interval=$(dflt evgen interval)
echo "defaults: evstream $per_trigger files / $trigger s, evgen 1 file / $interval s"
check "default_capacity_10x_evgen_rate" awk -v m="$per_trigger" -v t="$trigger" -v i="$interval" \
	'BEGIN { exit !(m > 0 && t > 0 && i > 0 && m / t >= 10 / i) }'

# 7. a stream that cannot keep up says so within a few triggers, long before stalled
pg_reset_tables; rm -rf "$SPOOL" "$CKPT"; mkdir -p "$SPOOL"
"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --log_level=warning --interval=0.02 --rows_per_file=5 &
EVGEN_PID=$!	# evgen itself, not a subshell running evgen_run: it is waited for below
at_exit "kill $EVGEN_PID 2>/dev/null"
: >"$LOG"
evstream_bg --max_files_per_trigger=1 --trigger_interval=0.3
at_exit "kill $EVSTREAM_PID 2>/dev/null"
check "falling_behind_warned" wait_for 10 grep -q 'falling behind: [0-9]* files pending' "$LOG"
kill "$EVGEN_PID" "$EVSTREAM_PID" 2>/dev/null
wait "$EVSTREAM_PID"
check_eq "falling_behind_evstream_exit_0" 0 $?
wait "$EVGEN_PID"	# under valgrind too: a daemon killed before its summary counts as unfinished
