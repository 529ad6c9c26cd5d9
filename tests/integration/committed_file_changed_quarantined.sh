#!/usr/bin/env bash
# A committed file that changes, or a committed name that comes back, is never
# skipped silently, loaded twice nor deleted unread (issue 16, item 6): it goes
# to quarantine/ with its reason, and events, rejects and the batch log keep one
# copy of the first file.
#   1. appended to after commit (clean_source = off)
#   2. replaced by a rename with new content (off)
#   3. a remembered name replaced, then clean_source = delete: quarantined, not deleted
#   4. a name forgotten after clean_source = delete, written again
#   5. the same with clean_source = archive
#   6. appended to while evstream runs: noticed at once
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup

# mkcsv NAME SEED: a header, three valid rows and one invalid row (a bad price);
# the event_ids depend on SEED, so two files with different seeds share none.
mkcsv() {
	local i
	{
		echo 'event_id,user_id,event_type,product_id,price,event_time'
		for i in 1 2 3; do
			printf '%08x-0000-4000-8000-%012x,%d,view,7,1.00,2026-01-01 00:00:0%d\n' "$2" "$i" "$i" "$i"
		done
		printf '%08x-0000-4000-8000-%012x,9,view,7,-1,2026-01-01 00:00:09\n' "$2" 99
	} >"$1"
}

# state NAME: "events rejects ledger-entries" for the file NAME
state() {
	q "SELECT (SELECT count(*) FROM events WHERE event_id::text LIKE '$(printf '%08x' "$2")%'),
		(SELECT count(*) FROM event_rejects WHERE file = '$1'),
		(SELECT count(*) FROM evstream_batches, unnest(files) f WHERE f = '$1')" | tr '|' ' '
}

quarantined_with() { grep -q "$2" "$SPOOL/quarantine/$1.reason"; }

# 1. appended to after commit
mkcsv "$SPOOL/events_a.csv" 1
evstream_once
check_eq "loaded_first" "3 1 1" "$(state events_a.csv 1)"
mkcsv "$ST/more" 11
tail -n +2 "$ST/more" >>"$SPOOL/events_a.csv"
evstream_once
check_eq "appended_not_loaded_twice" "3 1 1" "$(state events_a.csv 1)"
X
check "appended_moved_to_quarantine" test -f "$SPOOL/quarantine/events_a.csv" -a ! -e "$SPOOL/events_a.csv"
check "appended_reason_says_changed" quarantined_with events_a.csv 'changed after batch 1 committed it (written to since'
check "appended_warned" grep -q 'events_a.csv: changed after batch 1 committed it' "$LOG"

# 2. replaced by a rename with new content
mkcsv "$SPOOL/events_b.csv" 2
evstream_once
mkcsv "$ST/new_b" 12
mv "$ST/new_b" "$SPOOL/events_b.csv"
evstream_once
check_eq "replaced_not_loaded" "3 1 1" "$(state events_b.csv 2)"
check_eq "replacement_rows_not_loaded_silently" 0 "$(state events_b.csv 12 | cut -d' ' -f1)"
check "replaced_quarantined" quarantined_with events_b.csv 'another file under the same name'

# 3. a remembered name replaced, then clean_source = delete: never deleted unread
mkcsv "$SPOOL/events_c.csv" 3
evstream_once
mkcsv "$ST/new_c" 13
mv "$ST/new_c" "$SPOOL/events_c.csv"
evstream_once --clean_source=delete
check "remembered_replaced_not_deleted" test -f "$SPOOL/quarantine/events_c.csv"
check_eq "remembered_replaced_content_kept" "$(mkcsv "$ST/x" 13; cat "$ST/x")" "$(cat "$SPOOL/quarantine/events_c.csv")"
check_eq "remembered_replaced_not_loaded" "3 1 1" "$(state events_c.csv 3)"

# 4. clean_source = delete: a name the checkpoint forgot comes back
mkcsv "$SPOOL/events_d.csv" 4
evstream_once --clean_source=delete
evstream_once --clean_source=delete
check_eq "deleted_and_forgotten" "0 0" "$(ls "$SPOOL" | grep -c '\.csv$') $(grep -c '^file .* events_d.csv$' "$CKPT/checkpoint")"
mkcsv "$SPOOL/events_d.csv" 4
mkcsv "$SPOOL/events_e.csv" 5
evstream_once --clean_source=delete
check_eq "forgotten_name_not_loaded_twice" "3 1 1" "$(state events_d.csv 4)"
check "forgotten_name_not_deleted_unread" quarantined_with events_d.csv 'batch [0-9]* committed a file of this name already'
check_eq "new_name_beside_it_loaded" "3 1 1" "$(state events_e.csv 5)"

# 5. clean_source = archive: the same
mkcsv "$SPOOL/events_f.csv" 6
evstream_once --clean_source=archive
evstream_once --clean_source=archive
mkcsv "$SPOOL/events_f.csv" 6
evstream_once --clean_source=archive
check_eq "archived_name_back_not_loaded_twice" "3 1 1" "$(state events_f.csv 6)"
check "archived_name_back_quarantined" quarantined_with events_f.csv 'committed a file of this name already'
check_eq "archive_keeps_the_first" 1 "$(ls "$SPOOL/archive" | grep -c '^events_f.csv')"

# 6. while evstream runs: a committed file written to is noticed at once, not
# when its turn among the committed files comes
committed() { [[ $(state events_g.csv 7) == "3 1 1" ]]; }
evstream_bg --trigger_interval=0.1
at_exit "kill -9 $EVSTREAM_PID 2>/dev/null"
mkcsv "$SPOOL/events_g.csv" 7
wait_for 20 committed
tail -n +2 "$ST/more" >>"$SPOOL/events_g.csv"
check "running_appended_quarantined_at_once" wait_for 5 test -f "$SPOOL/quarantine/events_g.csv"
kill -TERM "$EVSTREAM_PID"
wait "$EVSTREAM_PID"
check_eq "running_appended_not_loaded_twice" "3 1 1" "$(state events_g.csv 7)"

# Restarts in between changed nothing: the checkpoint holds the identities.
check_eq "nothing_left_pending" 0 "$(ls "$SPOOL" | grep -c '\.csv$')"
check_eq "events_total" 21 "$(q 'SELECT count(*) FROM events')"
check_eq "rejects_total" 7 "$(q 'SELECT count(*) FROM event_rejects')"

# For tests/RELIABILITY.md: seven first files of 3 valid rows and 1 invalid each, six
# ways to change or bring back a committed one.  More than the first files' rows is
# a duplicate (a changed file loaded again); fewer is lost.
ev=$(q 'SELECT count(*) FROM events') rj=$(q 'SELECT count(*) FROM event_rejects')
twice=$(q "SELECT (SELECT count(*) - count(DISTINCT (file, line_no)) FROM event_rejects) +
	(SELECT count(f) - count(DISTINCT f) FROM evstream_batches, unnest(files) f)")
over() { (($1 > $2)) && echo $(($1 - $2)) || echo 0; }
rel_record committed_file_changed 6 21 "$ev" "$rj" $(($(over 21 "$ev") + $(over 7 "$rj"))) \
	$((twice + $(over "$ev" 21) + $(over "$rj" 7)))
