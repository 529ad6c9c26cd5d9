#!/usr/bin/env bash
# The checkpoint directory becomes unwritable under a running evstream: it stops
# advancing (no batch beyond the one already committed), says why once, and goes
# on by itself when the directory is writable again; nothing is skipped or loaded
# twice.  An unwritable directory at start is a clear error (exit 2).
# As root the daemon runs as `nobody`, for whom chmod means something.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
RUNAS=()
EVSTREAM=$EVPIPE_BIN/evstream
if (($(id -u) == 0)); then
	RUNAS=(setpriv "--reuid=$(id -u nobody)" "--regid=$(id -g nobody)" --clear-groups)
	runnable_copy EVSTREAM "$EVSTREAM"
fi
mkdir -p "$CKPT" && ((${#RUNAS[@]})) && chown nobody: "$CKPT"
batches() { q 'SELECT count(*) FROM evstream_batches'; }
# The checkpoint's last batch: the file's, or a later one its journal records.
ckpt_batch() {
	{ sed -n 's/^last_batch //p' "$CKPT/checkpoint"
	  sed -n 's/^batch \([0-9]*\) .*/\1/p' "$CKPT/checkpoint.journal" 2>/dev/null; } | sort -n | tail -1
}

# --- 1. unwritable at start: a clear error --------------------------------------------
mkdir -m 0555 "$ST/ro"
"${RUNAS[@]}" "$EVSTREAM" --spool_dir="$SPOOL" --checkpoint_dir="$ST/ro" \
	--conninfo="$EVPIPE_CONNINFO" --once >"$ST/ro.log" 2>&1
check_eq "unwritable_at_start_exit_2" 2 $?
check "unwritable_at_start_says_why" grep -q "checkpoint_dir=$ST/ro: .*lock: cannot open: Permission denied" "$ST/ro.log"

# --- 2. unwritable while running --------------------------------------------------------
"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.1 --rows_per_file=100 --invalid_rate=0.02 \
	--log_level=warning &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
mapfile -t args < <(_evstream_args)
"${RUNAS[@]}" "$EVSTREAM" "${args[@]}" --trigger_interval=0.2 >>"$LOG" 2>&1 &
EVSTREAM_PID=$!
at_exit "kill -9 $EVSTREAM_PID 2>/dev/null"
wait_for 30 batches_ge 3
chmod 0555 "$CKPT"
chmod a-w "$CKPT/checkpoint.journal" 2>/dev/null	# an existing file stays writable in a 0555 directory
if wait_for 20 grep -q 'not advancing until it can be written' "$LOG"; then
	pass "unwritable_noticed"
else
	fail "unwritable_noticed" "no 'not advancing' line in 20 s"
fi
b1=$(batches) c1=$(ckpt_batch)
sleep 3	# the scenario: 3 s (15 triggers, files arriving) in which no batch may commit
check_eq "stops_advancing" "$b1" "$(batches)"
check_eq "database_one_batch_ahead_of_checkpoint" $((c1 + 1)) "$b1"
check "says_why" grep -q "checkpoint $CKPT: .*cannot write the checkpoint: Permission denied" "$LOG"
check_eq "says_it_once" 1 "$(grep -c 'not advancing until it can be written' "$LOG")"
check "still_running" kill -0 "$EVSTREAM_PID"
chmod 0755 "$CKPT"
wait_for 20 grep -q 'written again; advancing' "$LOG"
check "writable_again_logged" grep -q "checkpoint $CKPT written again; advancing" "$LOG"
wait_for 20 batches_ge $((b1 + 3))
check "advances_again" test "$(batches)" -gt "$((b1 + 2))"
kill "$EVGEN_PID"; wait_exit 30 "$EVGEN_PID"
kill -TERM "$EVSTREAM_PID"; wait_exit 30 "$EVSTREAM_PID"
check_eq "exits_0_on_sigterm" 0 $?
evstream_once --max_files_per_trigger=0
csv_valid_ids "$SPOOL" >"$ST/expected"
check "reference_run_loads" ref_load "$SPOOL"
rel_compare checkpoint_unwritable 1
check_eq "valid_ids_equal_files" "$(cat "$ST/expected")" "$(db_ids)"
