#!/usr/bin/env bash
# A failed fsync of the checkpoint is final (PostgreSQL's fsyncgate): evstream never
# counts that checkpoint as saved and never retries the fsync on what it wrote; it
# writes the whole checkpoint again from memory into a new temporary and goes on.
# An LD_PRELOAD shim (tests/lib/fail_dir_fsync.c) fails, with EIO:
#   A. the fsync of the checkpoint's temporary (the first save, a whole rewrite),
#   B. the fdatasync of a journal record, sticky: every later fsync of that journal
#      file fails too, so a retry on it would never succeed and the run would hang,
#   C. the fsync of the checkpoint directory after a journal was created.
# Each run says what failed and that it is not advancing, then that it advanced
# again; it finishes its --once; a clean restart then finds the checkpoint equal to
# the database (neither behind nor ahead), and events hold every valid row once.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
if ! "${CC:-cc}" -shared -fPIC -o "$ST/fail_fsync.so" "$EVPIPE_ROOT/tests/lib/fail_dir_fsync.c" \
	-ldl 2>"$ST/cc.log"; then
	skip "checkpoint_fsync_failure" "cannot build the fsync shim: $(head -c 300 "$ST/cc.log")"
	exit 0
fi
# CASE ENV... : three new files, then evstream --once (one file per batch) with the shim.
shim_case() {
	local case=$1 rc=0; shift
	evgen_run --count=3 --burst --rows_per_file=50 --invalid_rate=0 --duplicate_rate=0 --late_rate=0
	: >"$ST/$case.log"
	mapfile -t args < <(_evstream_args)
	env LD_PRELOAD="$ST/fail_fsync.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" "$@" \
		timeout 120 "$EVPIPE_BIN/evstream" "${args[@]}" --once >"$ST/$case.log" 2>&1 || rc=$?
	cat "$ST/$case.log" >>"$LOG"
	grep -h "fail_dir_fsync:\|not advancing" "$ST/$case.log" | sed "s/^/  $case: /" | head -3
	check_eq "${case}_once_exits_0" 0 "$rc"
	check "${case}_fsync_failure_injected" grep -q 'fail_dir_fsync: .* fails with EIO' "$ST/$case.log"
	check "${case}_not_advancing_said" grep -q "cannot write the checkpoint: Input/output error.*not advancing" "$ST/$case.log"
	check "${case}_advanced_again" grep -q "written again; advancing" "$ST/$case.log"
}
shim_case A_temp_fsync EVPIPE_FAIL_FILE_FSYNC=1 EVPIPE_FAIL_FSYNC_PATH=/.checkpoint.tmp EVPIPE_FAIL_FSYNC_STICKY=1
shim_case B_journal_fdatasync EVPIPE_FAIL_FILE_FSYNC=2 EVPIPE_FAIL_FSYNC_PATH=/checkpoint.journal EVPIPE_FAIL_FSYNC_STICKY=1
check "B_journal_failure_was_a_journal_append" grep -q "appending to checkpoint.journal" "$ST/B_journal_fdatasync.log"
shim_case C_dir_fsync EVPIPE_FAIL_DIR_FSYNC=1 EVPIPE_FAIL_FSYNC_PATH="$CKPT"

# A clean restart: the checkpoint on disk says what the database says.
evgen_run --count=1 --burst --rows_per_file=50 --invalid_rate=0 --duplicate_rate=0 --late_rate=0
: >"$ST/restart.log"
mapfile -t args < <(_evstream_args)
timeout 120 "$EVPIPE_BIN/evstream" "${args[@]}" --once >"$ST/restart.log" 2>&1
check_eq "restart_exits_0" 0 $?
check_eq "restart_checkpoint_equals_database" 0 \
	"$(grep -c 'checkpoint was behind\|checkpoint is ahead' "$ST/restart.log")"
csv_ids "$SPOOL" >"$ST/expected"
db_ids >"$ST/got"
check_eq "events_equal_the_files" "$(wc -l <"$ST/expected") 0" \
	"$(wc -l <"$ST/got") $(LC_ALL=C comm -3 "$ST/expected" "$ST/got" | wc -l)"
check_eq "every_file_in_exactly_one_batch" "10 0" \
	"$(q 'SELECT count(*), count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f' | tr '|' ' ')"
check_eq "no_temporary_left_in_checkpoint_dir" 0 "$(ls -A "$CKPT" | grep -c '\.tmp$')"
rel_record checkpoint_fsync_failure 3 "$(wc -l <"$ST/expected")" "$(wc -l <"$ST/got")" 0 \
	"$(LC_ALL=C comm -23 "$ST/expected" "$ST/got" | wc -l)" \
	"$(($(wc -l <"$ST/got") - $(LC_ALL=C sort -u "$ST/got" | wc -l)))"
