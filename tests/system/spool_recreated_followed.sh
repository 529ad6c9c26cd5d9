#!/usr/bin/env bash
# The spool directory is moved aside and created again while evstream runs
# (`mv spool spool.old; mkdir spool`), or removed and only later created again:
# evstream (and evgen) notice by path, device and inode, warn, and use the new
# directory, so files written there are loaded; while the path names no directory it warns once,
# keeps running and keeps checking.  status and the metrics agree afterwards.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
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
sleep 2	# the scenario: ten triggers (0.2 s) with no directory at the path
check "evstream_alive_while_spool_missing" kill -0 "$EVSTREAM_PID"
check_eq "missing_spool_warned_once" 1 "$(grep -c "spool_dir $SPOOL cannot be opened" "$LOG")"
mkdir "$SPOOL"
evgen_run --count=2 --burst --rows_per_file=50
check "files_in_the_spool_created_later_loaded" wait_for 30 loaded "$SPOOL" "$ST/spool.old" "$ST/spool.copy"
check_eq "every_event_once" 350 "$(n_events)"

# Moved aside under a running evgen: evgen follows the path too, so its next files
# land in the new spool (not in the old one, where nobody reads them) and are loaded.
"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.05 --rows_per_file=10 \
	--log_level=warning 2>"$ST/evgen.log" &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
csv_count_ge() { (($(compgen -G "$SPOOL/*.csv" | wc -l) >= $1)); }
# Moved once evgen has written into it: evgen has the directory in hand by then.
n0=$(compgen -G "$SPOOL/*.csv" | wc -l)
wait_for 10 csv_count_ge $((n0 + 1)) || echo "# evgen wrote nothing in 10 s before the move"
mv "$SPOOL" "$ST/spool.old2" && mkdir "$SPOOL"
check "running_evgen_writes_into_the_recreated_spool" wait_for 10 csv_count_ge 1
wait_for 10 csv_count_ge 5 || echo "# evgen wrote fewer than 5 files in 10 s after the move"
kill -TERM "$EVGEN_PID"
rc=0; wait_exit 30 "$EVGEN_PID" || rc=$?
check_eq "evgen_sigterm_exits_0" 0 "$rc"
check_eq "evgen_warned_once" 1 "$(grep -c "spool_dir $SPOOL is another directory now" "$ST/evgen.log")"
# (Files it wrote before the move and evstream had not taken yet stay in spool.old2.)
spool_loaded() { [[ -z $(LC_ALL=C comm -23 <(csv_ids "$SPOOL") <(db_ids)) ]]; }
check "files_of_the_running_evgen_loaded" wait_for 30 spool_loaded

# status reads the spool at its path: nothing pending, healthy; the metrics agree.
args=(--spool_dir="$SPOOL" --checkpoint_dir="$CKPT" --conninfo="$EVPIPE_CONNINFO" --trigger_interval=0.2)
check "status_healthy_after_the_spool_was_replaced" "$EVPIPE_BIN/evstream" "${args[@]}" status
check_eq "status_nothing_pending" 0 \
	"$("$EVPIPE_BIN/evstream" "${args[@]}" status --json | jq .spool.files_pending)"
check "metrics_nothing_pending" grep -qx 'evpipe_files_pending 0' "$CKPT/evpipe.prom"

kill -TERM "$EVSTREAM_PID"
rc=0; wait_exit 30 "$EVSTREAM_PID" || rc=$?
check_eq "evstream_sigterm_exits_0" 0 "$rc"

# Exactly once: every file of every spool evstream was to read, and of the directory
# moved aside under it those it had committed; the rest of that one stays unread.
q 'SELECT f FROM evstream_batches, unnest(files) f' | LC_ALL=C sort >"$ST/committed"
mkdir "$ST/taken"
ls "$ST/spool.old2" | LC_ALL=C sort | LC_ALL=C comm -12 - "$ST/committed" |
	while read -r f; do cp "$ST/spool.old2/$f" "$ST/taken/"; done
csv_valid_ids "$SPOOL" "$ST/spool.old" "$ST/spool.copy" "$ST/taken" >"$ST/expected"
rel_compare spool_recreated 1 "$ST/expected"
