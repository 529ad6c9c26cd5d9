#!/usr/bin/env bash
# The spool directory is moved aside and created again while evstream runs
# (`mv spool spool.old; mkdir spool`), or removed and only later created again:
# evstream notices by path, device and inode, warns, and reads the new directory, so
# files written there are loaded; while the path names no directory it warns once,
# keeps running and keeps checking.  status and the metrics agree afterwards.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup

evstream_bg --max_files_per_trigger=0
at_exit "kill $EVSTREAM_PID 2>/dev/null"
n_events() { q 'SELECT count(*) FROM events'; }
loaded() { [[ $(db_ids) == $(csv_ids "$@") ]]; }

evgen_run --count=2 --burst --rows_per_file=50
check "files_before_the_move_loaded" wait_for 30 loaded "$SPOOL"

# Moved aside and created again at once: the common operator move.
mv "$SPOOL" "$ST/spool.old" && mkdir "$SPOOL"
evgen_run --count=3 --burst --rows_per_file=50
check "files_in_the_recreated_spool_loaded" wait_for 30 loaded "$SPOOL" "$ST/spool.old"
check_eq "recreated_spool_warned_once" 1 "$(grep -c "spool_dir $SPOOL is another directory now" "$LOG")"

# Removed, and for a while nothing at the path: evstream keeps running and checking.
cp -r "$SPOOL" "$ST/spool.copy"	# what was loaded from it, for the comparison
rm -r "$SPOOL"
sleep 2	# ten triggers
check "evstream_alive_while_spool_missing" kill -0 "$EVSTREAM_PID"
check_eq "missing_spool_warned_once" 1 "$(grep -c "spool_dir $SPOOL cannot be opened" "$LOG")"
mkdir "$SPOOL"
evgen_run --count=2 --burst --rows_per_file=50
check "files_in_the_spool_created_later_loaded" wait_for 30 loaded "$SPOOL" "$ST/spool.old" "$ST/spool.copy"
check_eq "every_event_once" 350 "$(n_events)"

# status reads the spool at its path: nothing pending, healthy; the metrics agree.
args=(--spool_dir="$SPOOL" --checkpoint_dir="$CKPT" --conninfo="$EVPIPE_CONNINFO" --trigger_interval=0.2)
check "status_healthy_after_the_spool_was_replaced" "$EVPIPE_BIN/evstream" "${args[@]}" status
check_eq "status_nothing_pending" 0 \
	"$("$EVPIPE_BIN/evstream" "${args[@]}" status --json | jq .spool.files_pending)"
check "metrics_nothing_pending" grep -qx 'evpipe_files_pending 0' "$CKPT/evpipe.prom"

kill -TERM "$EVSTREAM_PID"
rc=0; wait "$EVSTREAM_PID" || rc=$?
check_eq "evstream_sigterm_exits_0" 0 "$rc"
