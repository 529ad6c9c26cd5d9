#!/usr/bin/env bash
# SIGHUP, the signal a `kill -HUP` or a closed terminal sends, is logged and ignored
# by both daemons (it used to kill them with status 129, which systemd counts as a
# clean exit, so Restart=on-failure left the service down): they keep running, evgen
# keeps writing and evstream keeps committing, and SIGTERM still stops each with 0.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup

"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.05 --rows_per_file=20 \
	--log_level=info 2>"$ST/evgen.log" &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
evstream_bg --max_files_per_trigger=0
at_exit "kill $EVSTREAM_PID 2>/dev/null"

files() { ls "$SPOOL" | grep -c '\.csv$'; }
batches() { q 'SELECT count(*) FROM evstream_batches'; }
more_than() { (($("$1") > $2)); }
check "both_daemons_working_before_sighup" wait_for 30 more_than batches 1

# Three SIGHUPs, each sent once the one before was taken (no longer pending), so that
# none merges into another; a daemon that SIGHUP killed is gone by then.
pending_hup() { # PID: SIGHUP (bit 0) pending for its thread or its process
	local k v f=0
	while read -r k v; do
		[[ $k == SigPnd: || $k == ShdPnd: ]] && ((16#$v & 1)) && f=1
	done <"/proc/$1/status"
	((f))
} 2>/dev/null
hup_taken() { ! pending_hup "$EVGEN_PID" && ! pending_hup "$EVSTREAM_PID"; }
running() { ! gone "$1"; }
for i in 1 2 3; do
	kill -HUP "$EVGEN_PID" "$EVSTREAM_PID"
	wait_for 10 hup_taken || echo "# SIGHUP $i still pending after 10 s"
done
check "evgen_alive_after_sighup" running "$EVGEN_PID"
check "evstream_alive_after_sighup" running "$EVSTREAM_PID"
f0=$(files) b0=$(batches)
check "evgen_keeps_writing_after_sighup" wait_for 30 more_than files $((f0 + 5))
check "evstream_keeps_committing_after_sighup" wait_for 30 more_than batches $((b0 + 2))
check "evgen_logs_the_sighup" grep -q 'SIGHUP received and ignored' "$ST/evgen.log"
check "evstream_logs_the_sighup" grep -q 'SIGHUP received and ignored' "$LOG"

kill -TERM "$EVGEN_PID"
rc=0; wait_exit 30 "$EVGEN_PID" || rc=$?
check_eq "evgen_sigterm_exits_0" 0 "$rc"
# Everything evgen wrote gets committed, then evstream stops cleanly.
all_loaded() { [[ $(q 'SELECT count(*) FROM events') == $(csv_ids "$SPOOL" | wc -l) ]]; }
check "evstream_loads_every_file" wait_for 30 all_loaded
kill -TERM "$EVSTREAM_PID"
rc=0; wait_exit 30 "$EVSTREAM_PID" || rc=$?
check_eq "evstream_sigterm_exits_0" 0 "$rc"
csv_valid_ids "$SPOOL" >"$ST/expected"
rel_compare sighup 1 "$ST/expected"
