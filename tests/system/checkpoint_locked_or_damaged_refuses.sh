#!/usr/bin/env bash
# A second evstream started by mistake on the same spool and checkpoint refuses to
# start (flock on checkpoint_dir/lock), naming the first one's pid, and leaves the
# first alone; a kill -9 releases the lock for the next start.  A damaged or
# truncated checkpoint stops evstream with the file and line, and loads nothing.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup

evgen_run --count=10 --rows_per_file=100 --interval=0
evstream_bg --max_files_per_trigger=1 --trigger_interval=0.3
FIRST=$EVSTREAM_PID
at_exit "kill -9 $FIRST 2>/dev/null"
wait_for 20 batches_ge 1

# --- 1. the second one refuses --------------------------------------------------------
"$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$CKPT" --conninfo="$EVPIPE_CONNINFO" \
	--trigger_interval=0.2 >"$ST/second.log" 2>&1 &
second=$!
if wait_for 10 bash -c "! kill -0 $second 2>/dev/null"; then
	pass "second_evstream_exits_at_once"
else
	kill -9 "$second"
	fail "second_evstream_exits_at_once" "still running after 10 s"
fi
wait "$second"
check_eq "second_evstream_exit_status_2" 2 $?
check "second_evstream_names_the_first" grep -q "checkpoint $CKPT is locked by another evstream (pid $FIRST)" "$ST/second.log"
check_eq "second_evstream_one_error_line" 1 "$(grep -c . "$ST/second.log")"
check "first_evstream_still_running" kill -0 "$FIRST"
wait_for 30 batches_ge 10
check_eq "first_evstream_went_on" 10 "$(q 'SELECT count(*) FROM evstream_batches')"

# --- 2. kill -9 of the holder frees the lock -------------------------------------------
kill -9 "$FIRST"; wait "$FIRST" 2>/dev/null
evgen_run --count=2 --rows_per_file=100 --interval=0
evstream_once --max_files_per_trigger=0
check_eq "restart_after_kill9_not_locked_out" 0 $?
check_eq "restart_after_kill9_loaded" 1200 "$(q 'SELECT count(*) FROM events')"

# --- 3. a damaged checkpoint stops evstream, loads nothing ----------------------------
evgen_run --count=1 --rows_per_file=100 --interval=0
batches=$(q 'SELECT count(*) FROM evstream_batches')
cp "$CKPT/checkpoint" "$ST/checkpoint.good"
damaged() { # WHAT EXPECTED_MESSAGE
	local rc
	"$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$CKPT" \
		--conninfo="$EVPIPE_CONNINFO" --once >"$ST/damaged.log" 2>&1
	rc=$?
	check "damaged_${1}_stops" test "$rc" -ne 0
	check "damaged_${1}_says_where" grep -q "$CKPT/checkpoint: line [0-9]*: .*$2" "$ST/damaged.log"
	check_eq "damaged_${1}_loads_nothing" "$batches" "$(q 'SELECT count(*) FROM evstream_batches')"
	cp "$ST/checkpoint.good" "$CKPT/checkpoint"
}
head -c -20 "$ST/checkpoint.good" >"$CKPT/checkpoint"
damaged truncated 'truncated'
sed '4d' "$ST/checkpoint.good" >"$CKPT/checkpoint"	# a file line lost
damaged line_lost 'checksum mismatch'
sed 's/^last_batch .*/last_batch 1/' "$ST/checkpoint.good" >"$CKPT/checkpoint"
damaged edited 'checksum mismatch'
: >"$CKPT/checkpoint"
damaged empty 'empty'
# The good one back: the last file loads, nothing twice.
evstream_once --max_files_per_trigger=0
check_eq "after_repair_loads_the_rest" 1300 "$(q 'SELECT count(*) FROM events')"
check_eq "after_repair_each_file_once" 0 "$(q 'SELECT count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f')"
