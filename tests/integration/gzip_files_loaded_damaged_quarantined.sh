#!/usr/bin/env bash
# Spool files may be gzip archives (NAME.csv.gz): evgen --compress writes them, and
# evstream loads them exactly as it loads their text (line numbers of the text, several
# members read as one).  A damaged, truncated, trailing-garbage or empty archive is
# quarantined with its reason and never half-loaded, even when the damage is found after
# some of its rows went into the batch's COPY: the batch is rolled back and written again
# without it.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

listing() { ls "$SPOOL" | grep -v '^\.' | LC_ALL=C sort; }
# NEW=$(new_file CMD...): run CMD, which writes one file into the spool; its name (the
# one that was not there before: no guess from file times and their resolution).
new_file() {
	local before
	before=$(listing)
	"$@" || return
	LC_ALL=C comm -13 <(printf '%s\n' "$before") <(listing)
}
gen_gz() { evgen_run --compress --burst --count=1 --rows_per_file="$1"; }
zids() { for f in "$@"; do zcat -f "$f"; done | awk -F, 'FNR > 1 && $1 != "event_id" { print $1 }' | LC_ALL=C sort -u; }

# --- evgen --compress -----------------------------------------------------------------
A=$(new_file gen_gz 100)
check "evgen_compress_names_csv_gz" bash -c "[[ $A == events_*.csv.gz ]]"
check "evgen_compress_file_is_valid_gzip" gzip -t "$SPOOL/$A"
check_eq "evgen_compress_header_and_rows" "101 event_id,user_id,event_type,product_id,price,event_time" \
	"$(zcat "$SPOOL/$A" | wc -l) $(zcat "$SPOOL/$A" | head -n 1)"
B=$(new_file gen_gz 60000)	# ~2 MB of gzip: its first reads go out before the damage is reached
C=$(new_file evgen_run --burst --count=1 --rows_per_file=100)
check "plain_file_beside_archives" bash -c "[[ $C == events_*.csv ]]"
D=$(new_file gen_gz 100)
E=$(new_file gen_gz 100)
F=events_20000101T000000.000000_empty.csv.gz
: >"$SPOOL/$F"
# Two members, an invalid row on line 4 of the text (the archive's own lines mean nothing).
M=events_99990101T000000.000000_members.csv.gz
{
	printf 'event_id,user_id,event_type,product_id,price,event_time\n%s,1,view,2,0.00,2026-01-01 00:00:00\n' \
		aaaaaaaa-0000-4000-8000-000000000001 | gzip
	printf '%s,2,view,2,0.00,2026-01-01 00:00:01\n%s,3,click,2,0.00,2026-01-01 00:00:02\n%s,4,view,2,0.00,2026-01-01 00:00:03\n' \
		aaaaaaaa-0000-4000-8000-000000000002 aaaaaaaa-0000-4000-8000-000000000003 \
		aaaaaaaa-0000-4000-8000-000000000004 | gzip
} >"$SPOOL/$M"

want=$(zids "$SPOOL/$A" "$SPOOL/$C"; printf 'aaaaaaaa-0000-4000-8000-00000000000%s\n' 1 2 4)
want=$(LC_ALL=C sort -u <<<"$want")

# --- the damage ------------------------------------------------------------------------
size=$(stat -c %s "$SPOOL/$B")
printf '\xff\x00\xff\x00\xff\x00\xff\x00' | dd of="$SPOOL/$B" bs=1 seek=$((size * 3 / 4)) conv=notrunc status=none
truncate -s "$(($(stat -c %s "$SPOOL/$D") / 2))" "$SPOOL/$D"
printf 'junk after the archive\n' >>"$SPOOL/$E"

# Every file in one batch: the damaged one in the middle of it.
evstream_once --max_files_per_trigger=0 --log_level=info
check_eq "gzip_events_exactly_the_good_files" "$want" "$(db_ids)"
check_eq "gzip_no_event_of_the_damaged_archive" 0 \
	"$(comm -12 <(zids "$SPOOL/quarantine/$B" 2>/dev/null) <(db_ids) | wc -l)"
check_eq "gzip_reject_line_of_the_text" "$M|4|event_type" \
	"$(q "SELECT file || '|' || line_no || '|' || reason FROM event_rejects")"
check_eq "gzip_bad_archives_quarantined" "$(printf '%s\n' "$B" "$D" "$E" "$F" | LC_ALL=C sort)" \
	"$(ls "$SPOOL/quarantine" | grep -v '\.reason$' | LC_ALL=C sort)"
reason() { cat "$SPOOL/quarantine/$1.reason" 2>/dev/null; }
check "gzip_damaged_reason" grep -q "damaged gzip archive: .* (after line [1-9][0-9]* of its text)" <<<"$(reason "$B")"
check "gzip_truncated_reason" grep -q "truncated gzip archive" <<<"$(reason "$D")"
check "gzip_trailing_garbage_reason" grep -q "bytes after member 1 are not another member" <<<"$(reason "$E")"
check "gzip_empty_reason" grep -q "empty gzip archive" <<<"$(reason "$F")"
check "gzip_damage_found_mid_batch_rolled_back" grep -q "rolled back and written again without .*$B" "$LOG"
check_eq "gzip_committed_files" "$(printf '%s\n' "$A" "$C" "$M" | LC_ALL=C sort)" \
	"$(q 'SELECT file FROM evstream_files ORDER BY file' | LC_ALL=C sort)"
# What was read from the archive: 60,000 rows went to COPY and then away with the rollback.
check_eq "gzip_one_batch_committed" 1 "$(q 'SELECT count(*) FROM evstream_batches')"

# Requeued after repair (the operator's path): the repaired archive loads, once.
G=$(new_file gen_gz 10)
gids=$(zids "$SPOOL/$G")
mv "$SPOOL/$G" "$SPOOL/quarantine/$D"	# the "repaired" D: a whole archive under its name
n0=$(q "SELECT count(*) FROM events")
check "gzip_requeue_repaired" "$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$CKPT" \
	--conninfo="$EVPIPE_CONNINFO" quarantine requeue "$D"
evstream_once
check_eq "gzip_requeued_archive_loaded_once" "10 $((n0 + 10))" \
	"$(comm -12 <(echo "$gids") <(db_ids) | wc -l) $(q "SELECT count(*) FROM events")"
grep -E "quarantine|rolled back" "$LOG" | cut -c1-260	# for the test log
