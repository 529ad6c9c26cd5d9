#!/usr/bin/env bash
# Hostile bytes inside spool files: a 10 MB line, a 20 MB line (past the record
# bound), binary garbage, invalid UTF-8, NUL bytes, deeply quoted fields, a quoted
# field holding 50,000 newlines, no final newline; whole files of garbage, of NULs,
# of invalid UTF-8; and 1,000,000 rows in one file.  Each: no crash, no hang, a
# clear log line, every good row of the same file loaded, every bad one in
# event_rejects with its line and reason (raw bytes kept, made valid UTF-8), files
# without a usable header quarantined.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
H=event_id,user_id,event_type,product_id,price,event_time
T='2026-01-01 00:00:00'
good() { printf 'a%07d-0000-4000-8000-000000000000,1,view,1,0.00,%s\n' "$1" "$T"; }
bad_id() { printf 'b%07d-0000-4000-8000-000000000000' "$1"; }

# --- 1. one file, good rows between hostile ones ----------------------------------
f=$SPOOL/events_1_hostile_rows.csv
{
	echo "$H"					# line 1
	good 1						# 2
	head -c 10485760 /dev/zero | tr '\0' x; echo	# 3: 10 MB, one field
	good 2						# 4
	head -c 4096 /dev/urandom | tr -d '\n"'; echo	# 5: binary garbage
	good 3						# 6
	printf '%s,1,vi\xff\xfeew,1,0.00,%s\n' "$(bad_id 7)" "$T"	# 7: invalid UTF-8
	good 4						# 8
	printf '%s,1\0002,view,1,0.00,%s\n' "$(bad_id 9)" "$T"	# 9: a NUL in user_id
	good 5						# 10
	printf '%s,1,"view' "$(bad_id 11)"; head -c 200000 /dev/zero | tr '\0' '"'
	printf '",1,0.00,%s\n' "$T"			# 11: 100,000 escaped quotes
	good 6						# 12
	head -c 20971520 /dev/zero | tr '\0' y; echo	# 13: 20 MB, past the 16 MB bound
	good 7						# 14
	printf '%s,1,"v' "$(bad_id 15)"; head -c 50000 /dev/zero | tr '\0' '\n'
	printf '",1,0.00,%s\n' "$T"			# 15..50015: a field with 50,000 newlines
	good 8						# 50016
	echo 'short,row'				# 50017
	good 9 | tr -d '\n'				# 50018, no final newline
} >"$f"
evstream_once
check_eq "hostile_rows_exit_0" 0 $?
check_eq "hostile_rows_good_rows_loaded" 9 "$(q "SELECT count(*) FROM events WHERE event_id::text LIKE 'a%'")"
check_eq "hostile_rows_rejects_by_line" \
	"3 column_count,7 event_type,9 user_id,11 event_type,13 column_count,15 event_type,50017 column_count" \
	"$(q "SELECT string_agg(line_no || ' ' || reason, ',' ORDER BY line_no) FROM event_rejects WHERE line_no <> 5")"
check_eq "binary_garbage_line_rejected" 1 "$(q "SELECT count(*) FROM event_rejects WHERE line_no = 5")"
check_eq "ten_mb_line_kept_whole" 10485760 "$(q "SELECT length(raw_line) FROM event_rejects WHERE line_no = 3")"
check_eq "oversized_line_kept_head" 4096 "$(q "SELECT length(raw_line) FROM event_rejects WHERE line_no = 13")"
check "oversized_line_logged" grep -q 'events_1_hostile_rows.csv: line 13: record longer than 16777216 bytes' "$LOG"
check_eq "invalid_utf8_replaced" 1 "$(q "SELECT count(*) FROM event_rejects WHERE line_no = 7 AND raw_line LIKE '%vi' || U&'\\FFFD' || '%ew%'")"
check_eq "nul_replaced" 1 "$(q "SELECT count(*) FROM event_rejects WHERE line_no = 9 AND raw_line LIKE '%,1' || U&'\\FFFD' || '2,%'")"
check_eq "quoted_newlines_kept" 50000 "$(q "SELECT length(raw_line) - length(replace(raw_line, E'\\n', '')) FROM event_rejects WHERE line_no = 15")"
check "invalid_rows_logged" grep -q 'events_1_hostile_rows.csv: 8 invalid rows' "$LOG"
check_eq "hostile_rows_batch_counts" "17 9 8" "$(q 'SELECT rows_read, written, rejected FROM evstream_batches' | tr '|' ' ')"

# --- 2. whole files without a usable header: quarantined, said, never retried ------
head -c 1048576 /dev/urandom >"$SPOOL/events_2_garbage.csv"
head -c 100000 /dev/zero >"$SPOOL/events_3_nuls.csv"
printf '\xff\xfeevent_id,\xc3(user_id,event_type,product_id,price,event_time\n' >"$SPOOL/events_4_bad_utf8_header.csv"
good 10 >>"$SPOOL/events_4_bad_utf8_header.csv"
evstream_once --max_files_per_trigger=0
for n in 2_garbage 3_nuls 4_bad_utf8_header; do
	check "${n}_quarantined" test -f "$SPOOL/quarantine/events_$n.csv"
	check "${n}_reason_written" test -s "$SPOOL/quarantine/events_$n.csv.reason"
	check "${n}_logged" grep -q "events_$n.csv: .*moved to quarantine/" "$LOG"
done
check_eq "headerless_files_added_nothing" "9 1" "$(q 'SELECT (SELECT count(*) FROM events), count(*) FROM evstream_batches' | tr '|' ' ')"

# --- 3. 1,000,000 rows in one file ----------------------------------------------------
pg_reset_tables; rm -rf "$SPOOL" "$CKPT"; mkdir -p "$SPOOL"
evgen_run --count=1 --rows_per_file=1000000 --burst --seed=42
evstream_once
check_eq "million_rows_exit_0" 0 $?
check_eq "million_rows_one_batch" "1 1000000 1000000" "$(q 'SELECT count(*), sum(rows_read), sum(written) FROM evstream_batches' | tr '|' ' ')"
csv_valid_ids "$SPOOL" >"$ST/want"
db_ids >"$ST/got"
check_eq "million_rows_ids_equal" "1000000 0" "$(wc -l <"$ST/got") $(LC_ALL=C comm -3 "$ST/want" "$ST/got" | wc -l)"
rel_record hostile_input_1m_rows 1 "$(wc -l <"$ST/want")" "$(wc -l <"$ST/got")" 0 \
	"$(LC_ALL=C comm -23 "$ST/want" "$ST/got" | wc -l)" 0
