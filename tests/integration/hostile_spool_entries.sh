#!/usr/bin/env bash
# Hostile things in the spool itself: a symlink, a FIFO and a directory with spool
# names; file names with spaces, a newline, UTF-8 and bytes that are not UTF-8; a
# file deleted and one truncated between the listing and the reading.  Each: no
# crash, no hang, a clear log line, the readable rows loaded exactly once (also
# across a kill between commit and checkpoint), the rest quarantined.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
H=event_id,user_id,event_type,product_id,price,event_time

# A small valid file with n rows whose ids start with prefix p (8 hex digits).
mkfile() { # NAME PREFIX N
	local i
	{
		echo "$H"
		for ((i = 1; i <= $3; i++)); do
			printf '%s-0000-4000-8000-%012d,%d,view,1,0.00,2026-01-01 00:00:%02d\n' "$2" "$i" "$i" $((i % 60))
		done
	} >"$SPOOL/$1"
}
ids_of() { awk -F, 'FNR > 1 && NF == 6 { print $1 }' "$@"; }

# --- 1. not regular files: quarantined, said once, never read; the good file loads ----
mkfile events_1_good.csv 11111111 5
mkfile target.txt 22222222 5
ln -s target.txt "$SPOOL/events_2_symlink.csv"
mkfifo "$SPOOL/events_3_fifo.csv"
mkdir "$SPOOL/events_4_directory.csv"
evstream_once --max_files_per_trigger=0	# a FIFO must not block it: the runner's timeout
check_eq "odd_entries_no_hang_exit_0" 0 $?
check_eq "odd_entries_good_file_loaded" 5 "$(q "SELECT count(*) FROM events WHERE event_id::text LIKE '11111111%'")"
check_eq "symlink_target_not_read" 0 "$(q "SELECT count(*) FROM events WHERE event_id::text LIKE '22222222%'")"
for kind in symlink fifo directory; do
	name=$(ls "$SPOOL" | grep -a "_${kind}.csv")
	check_eq "${kind}_left_the_spool" "" "$name"
	check "${kind}_quarantined_with_reason" test -s "$SPOOL/quarantine/events_"?"_${kind}.csv.reason"
	check "${kind}_logged" grep -q "events_._${kind}.csv.*not a regular file.*quarantine" "$LOG"
done
check "symlink_reason_says_symlink" grep -q 'symbolic link' "$SPOOL/quarantine/events_2_symlink.csv.reason"
check "fifo_reason_says_fifo" grep -q 'FIFO' "$SPOOL/quarantine/events_3_fifo.csv.reason"
check "directory_reason_says_directory" grep -q 'directory' "$SPOOL/quarantine/events_4_directory.csv.reason"
check "symlink_target_untouched" test -f "$SPOOL/target.txt"
n=$(grep -c 'not a regular file' "$LOG")
evstream_once --max_files_per_trigger=0
check_eq "odd_entries_said_once" "$n" "$(grep -c 'not a regular file' "$LOG")"

# --- 2. names: spaces, a newline, UTF-8, not UTF-8 ----------------------------------
pg_reset_tables; rm -rf "$SPOOL" "$CKPT"; mkdir -p "$SPOOL"
mkfile "events_5 with spaces.csv" 55555555 3
mkfile $'events_6_new\nline.csv' 66666666 3
mkfile "events_7_événement.csv" 77777777 3
mkfile $'events_8_\xff\xfe_latin1_\xe9.csv' 88888888 3
printf 'x,y\n' >>"$SPOOL/events_5 with spaces.csv"	# one reject, to see the name stored
# A kill between commit and checkpoint makes the restart take the names from the
# database: each must come back exactly, or its file would be loaded again.
EVSTREAM_FAILPOINT=after_commit evstream_once --max_files_per_trigger=0
evstream_once --max_files_per_trigger=0
evstream_once --max_files_per_trigger=0
ids_of "$SPOOL"/events_[567]*.csv | LC_ALL=C sort >"$ST/want"
check_eq "odd_names_rows_loaded_once" "$(cat "$ST/want")" "$(db_ids)"
check_eq "odd_names_reject_stored_once" 1 "$(q "SELECT count(*) FROM event_rejects WHERE file = 'events_5 with spaces.csv'")"
check_eq "newline_name_stored_exactly" 1 "$(q "SELECT count(*) FROM evstream_batches, unnest(files) f WHERE f = E'events_6_new\\nline.csv'")"
check_eq "utf8_name_stored_exactly" 1 "$(q "SELECT count(*) FROM evstream_batches, unnest(files) f WHERE f = 'events_7_événement.csv'")"
check_eq "odd_names_each_file_in_one_batch" "3 0" "$(q 'SELECT count(*), count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f' | tr '|' ' ')"
# Bytes that are not UTF-8 cannot be stored as the name: quarantined, said why.
check_eq "non_utf8_name_not_loaded" 0 "$(q "SELECT count(*) FROM events WHERE event_id::text LIKE '88888888%'")"
check "non_utf8_name_quarantined" test -f "$SPOOL/quarantine/"$'events_8_\xff\xfe_latin1_\xe9.csv'
check "non_utf8_name_logged" grep -q 'not valid UTF-8' "$LOG"

# --- 3. deleted and truncated between the listing and the reading ---------------------
pg_reset_tables; rm -rf "$SPOOL" "$CKPT"; mkdir -p "$SPOOL"
evgen_run --count=1 --rows_per_file=300000 --burst --seed=3
big=$(ls "$SPOOL")
mv "$SPOOL/$big" "$SPOOL/events_a_big.csv"
mkfile events_b_deleted.csv bbbbbbbb 100
mkfile events_c_truncated.csv cccccccc 100
# Cut the last file in the middle of row 51 (header + 50 rows + 30 bytes).
cut_at=$(($(head -n 51 "$SPOOL/events_c_truncated.csv" | wc -c) + 30))
evstream_bg --once --max_files_per_trigger=0
# Once the big file is open, the listing is done: stop evstream there (files are
# read in name order, so the other two are not open yet), change the spool, go on.
reading_big() { ls -l "/proc/$EVSTREAM_PID/fd" 2>/dev/null | grep -q events_a_big.csv; }
WAIT_FOR_INTERVAL=0.05 wait_for 30 reading_big
kill -STOP "$EVSTREAM_PID"
if reading_big; then
	pass "raced_while_big_file_read"
else
	fail "raced_while_big_file_read" "never caught evstream reading events_a_big.csv"
fi
rm "$SPOOL/events_b_deleted.csv"
truncate -s "$cut_at" "$SPOOL/events_c_truncated.csv"
kill -CONT "$EVSTREAM_PID"
wait_exit 120 "$EVSTREAM_PID"
check_eq "raced_files_exit_0" 0 $?
check_eq "raced_big_file_loaded" 300000 "$(q "SELECT count(*) FROM events WHERE event_id::text NOT LIKE 'cccccccc%'")"
check "deleted_file_logged" grep -q 'events_b_deleted.csv vanished before it was read' "$LOG"
check_eq "truncated_file_whole_rows_loaded" 50 "$(q "SELECT count(*) FROM events WHERE event_id::text LIKE 'cccccccc%'")"
check_eq "truncated_file_cut_row_rejected" "events_c_truncated.csv|52" "$(q "SELECT file, line_no FROM event_rejects")"
check "truncated_file_cut_row_logged" grep -q 'events_c_truncated.csv: 1 invalid row' "$LOG"
