#!/usr/bin/env bash
# The database refuses writes while evstream streams: first a revoked privilege
# (INSERT on events taken from evstream's role), then a full tablespace (events
# moved onto a small tmpfs that fills up).  Each time evstream stops advancing,
# backs off, logs the cause once, and resumes by itself once it is fixed (GRANT;
# the filesystem grown); at the end the event_ids and rejects are exactly those of
# a run without faults.  The tablespace half needs mount(8) (root): SKIP otherwise.
set -u
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
rel_private_mounts "$0" "$@"
. "$EVPIPE_ROOT/tests/lib/stream.sh"
stream_setup
batches() { q 'SELECT count(*) FROM evstream_batches'; }

q "CREATE ROLE evw LOGIN; GRANT USAGE ON SCHEMA public TO evw;
   GRANT SELECT, INSERT ON events, event_rejects, evstream_batches, evstream_files TO evw;
   GRANT SELECT, INSERT, DELETE ON evstream_slices TO evw; GRANT UPDATE (written) ON evstream_batches TO evw"
"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.05 --rows_per_file=100 --invalid_rate=0.02 \
	--log_level=warning &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
POSTGRES_USER=evw evstream_bg --trigger_interval=0.1 --max_files_per_trigger=2
at_exit "kill -9 $EVSTREAM_PID 2>/dev/null"
wait_for 20 batches_ge 3

# refused: no advance, one line with the cause, still alive; fixed: resumed
refused() { # NAME SQLSTATE WHAT
	local b1
	if wait_for 30 grep -q "database unavailable while writing batch .*$2 $3" "$LOG"; then
		pass "${1}_noticed"
	else
		fail "${1}_noticed" "no 'database unavailable ... $2 $3' line in 30 s"
	fi
	b1=$(batches)
	sleep 3	# the scenario: 3 s (30 triggers, files arriving) in which no batch may commit
	check_eq "${1}_stops_advancing" "$b1" "$(batches)"
	check_eq "${1}_cause_logged_once" 1 "$(grep -c "database unavailable while writing batch .*$2" "$LOG")"
	check "${1}_still_running" kill -0 "$EVSTREAM_PID"
	REFUSED_AT=$b1
}
resumed() { # NAME NTH
	if wait_for 30 log_count_ge 'database answers again; resuming' "$2"; then
		pass "${1}_resumes_by_itself"
	else
		fail "${1}_resumes_by_itself" "no 'database answers again' in 30 s"
	fi
	wait_for 20 batches_ge $((REFUSED_AT + 3))
	check "${1}_advances_again" batches_ge $((REFUSED_AT + 3))
}

# --- 1. a revoked privilege ------------------------------------------------------------
q "REVOKE INSERT ON events FROM evw"
refused revoked_insert 42501 'permission denied for table events'
q "GRANT INSERT ON events TO evw"
resumed revoked_insert 1

# --- 2. a full tablespace ----------------------------------------------------------------
if ((REL_MOUNTS)) && rel_mount_tmpfs "$ST/ts" 64m nobody:; then
	# Room for what events holds now and about two more seconds of rows.
	size_kb=$(($(q "SELECT pg_total_relation_size('events')") / 1024 + 512))
	mount -o "remount,size=${size_kb}k" "$ST/ts"
	q "CREATE TABLESPACE evpipe_small LOCATION '$ST/ts'"
	q "ALTER TABLE events SET TABLESPACE evpipe_small"
	refused full_tablespace 53100 'could not extend file'
	mount -o remount,size=256m "$ST/ts"
	resumed full_tablespace 2
else
	skip "full_tablespace" "cannot mount a tmpfs here (needs root and mount namespaces)"
fi

kill "$EVGEN_PID"; wait_exit 30 "$EVGEN_PID"
kill -TERM "$EVSTREAM_PID"; wait_exit 30 "$EVSTREAM_PID"
check_eq "exits_0_on_sigterm" 0 $?
POSTGRES_USER=evw evstream_once --max_files_per_trigger=0
csv_valid_ids "$SPOOL" >"$ST/expected"
check_eq "valid_ids_equal_files" "$(cat "$ST/expected")" "$(db_ids)"
check "reference_run_loads" ref_load "$SPOOL"
rel_compare db_refuses_writes $((1 + REL_MOUNTS))
