#!/usr/bin/env bash
# A database that does not answer never holds evstream for ever: (a) with a lock
# held on events, the batch's wait is logged as a warning, SIGTERM cancels it and
# evstream exits 0 within seconds with nothing of the batch committed; once the
# lock is gone every row lands exactly once.  (b) With the server's processes
# stopped (SIGSTOP; over TCP, so the keepalive settings are in play), SIGTERM
# still ends evstream within seconds, mid-batch and mid-connect alike.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
H='event_id,user_id,event_type,product_id,price,event_time'
n=0
add_file() {	# one file of 10 fresh rows, published as evgen does
	local f i
	n=$((n + 1)); f=events_$(printf %03d $n).csv
	{ echo $H; for i in 0 1 2 3 4 5 6 7 8 9; do
		echo "$(printf 'abcdef%02d-0000-4000-8000-0000000000%02d' $n $i),7,view,9,1.00,$(date -u '+%F %T')"
	done; } >"$SPOOL/.$f.tmp" && mv "$SPOOL/.$f.tmp" "$SPOOL/$f"
}
batches() { q 'SELECT count(*) FROM evstream_batches'; }
batches_are() { [[ $(batches) == "$1" ]]; }
# SIGTERM $2; RC = its exit status, or "timeout" if it was still there after $1 s.
stop_within() {
	kill -TERM "$2"
	wait_exit "$1" "$2"; RC=$?
	((RC != 124)) || RC=timeout
}

# --- (a) a lock held on events ---------------------------------------------------------
evstream_bg
at_exit "kill -KILL $EVSTREAM_PID 2>/dev/null"
add_file
wait_for 20 batches_are 1
mkfifo "$ST/locker"
pg_psql <"$ST/locker" >/dev/null 2>&1 &
LOCKER=$!
exec 3>"$ST/locker"
at_exit "exec 3>&-; kill $LOCKER 2>/dev/null"
echo 'BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE;' >&3
locked() { [[ $(q "SELECT count(*) FROM pg_locks WHERE relation = 'events'::regclass AND mode = 'AccessExclusiveLock' AND granted") == 1 ]]; }
wait_for 10 locked
add_file
waiting() { [[ $(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'evstream' AND wait_event_type = 'Lock'") == 1 ]]; }
check "lock_blocks_the_batch" wait_for 20 waiting
check "lock_wait_warned_within_bound" wait_for 20 grep -q 'batch 2: COPY events has waited 1[0-9] s for the database' "$LOG"
stop_within 5 "$EVSTREAM_PID"
check_eq "sigterm_during_lock_wait_exits_0_within_5s" 0 "$RC"
check_eq "nothing_of_the_batch_committed" "1 10" "$(q 'SELECT count(*), sum(rows_read) FROM evstream_batches' | tr '|' ' ')"
check_eq "no_evstream_session_left" 0 "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'evstream'")"
echo 'ROLLBACK;' >&3
exec 3>&-
wait "$LOCKER"
evstream_once
csv_ids "$SPOOL" >"$ST/expected"
db_ids >"$ST/got"
check_eq "after_lock_every_row_once" "20 0" "$(wc -l <"$ST/got") $(LC_ALL=C comm -3 "$ST/expected" "$ST/got" | wc -l)"

# The connection string's lock_timeout wins over evstream's (20 s): the batch fails
# after 1 s, is retried with backoff, and lands once the lock is gone.  (evstream
# starts first: it must not inherit the locker's pipe.)
ready=$(grep -c 'dedupe set rebuilt' "$LOG")
started() { (($(grep -c 'dedupe set rebuilt' "$LOG") > ready)); }
evstream_bg --conninfo="$EVPIPE_CONNINFO options='-c lock_timeout=1s'"
wait_for 20 started
pg_psql <"$ST/locker" >/dev/null 2>&1 &
LOCKER=$!
exec 3>"$ST/locker"
echo 'BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE;' >&3
wait_for 10 locked
add_file
check "conninfo_lock_timeout_wins" wait_for 15 grep -q 'writing batch 3: COPY events: ERROR 55P03' "$LOG"
echo 'ROLLBACK;' >&3
exec 3>&-
wait "$LOCKER"
check "batch_lands_after_lock_timeout_retry" wait_for 20 batches_are 3
stop_within 5 "$EVSTREAM_PID"

# --- (b) the server's processes stopped ------------------------------------------------
TCP="host=127.0.0.1 port=$PGPORT user=postgres dbname=evpipe"
evstream_bg --conninfo="$TCP"
at_exit "kill -KILL $EVSTREAM_PID 2>/dev/null"
add_file
wait_for 20 batches_are 4
# The postmaster and its children, by the parent field of /proc/PID/stat: a
# process's cwd link is not readable without CAP_SYS_PTRACE (in a container, say).
server_pids() {
	local pm pid ppid stat
	pm=$(head -n 1 "$PG_DATA/postmaster.pid") && [[ -n $pm ]] || return
	echo "$pm"
	for stat in /proc/[0-9]*/stat; do
		{ read -r pid _ _ ppid _ <"$stat"; } 2>/dev/null || continue
		[[ $ppid == "$pm" ]] && echo "$pid"
	done
}
mapfile -t PIDS < <(server_pids)
check "found_server_processes" test "${#PIDS[@]}" -ge 2
at_exit "kill -CONT ${PIDS[*]} 2>/dev/null"
kill -STOP "${PIDS[@]}"
add_file
check "stopped_server_wait_warned" wait_for 25 grep -q 'batch 5: .* has waited 1[0-9] s for the database' "$LOG"
stop_within 8 "$EVSTREAM_PID"
check_eq "sigterm_with_server_stopped_exits_0_within_8s" 0 "$RC"
# A start while the server is stopped: the connection attempt ends on SIGTERM too.
evstream_bg --conninfo="$TCP"
# Mid-connect once it holds a socket: the kernel completes the TCP handshake for the
# stopped postmaster, and libpq then waits for an answer that does not come.
connecting() {
	local fd
	for fd in "/proc/$1/fd"/*; do [[ $(readlink "$fd" 2>/dev/null) == socket:* ]] && return 0; done
	return 1
}
wait_for 10 connecting "$EVSTREAM_PID" || echo "# evstream holds no socket after 10 s; stopping it anyway"
stop_within 5 "$EVSTREAM_PID"
check_eq "sigterm_while_connecting_exits_0_within_5s" 0 "$RC"
kill -CONT "${PIDS[@]}"
evstream_once --conninfo="$TCP"
csv_ids "$SPOOL" >"$ST/expected"
db_ids >"$ST/got"
check_eq "after_stop_every_row_once" "50 0" "$(wc -l <"$ST/got") $(LC_ALL=C comm -3 "$ST/expected" "$ST/got" | wc -l)"
check_eq "batches_hold_each_file_once" "5 5" "$(q 'SELECT count(f), count(DISTINCT f) FROM evstream_batches, unnest(files) f' | tr '|' ' ')"
rel_compare db_hung 2 "$ST/expected"	# a held lock, a stopped server
