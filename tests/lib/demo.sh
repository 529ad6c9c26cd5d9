#!/usr/bin/env bash
# demo.sh — `make run`: a private PostgreSQL, evgen writing a file a second into a temp
# spool, evstream loading it every 2 s, and a line of progress every few seconds.
# Ctrl-C stops the daemons, then the server, and removes every temp directory.
set -uo pipefail
EVPIPE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${EVPIPE_RELEASE_BIN:-$EVPIPE_ROOT}
source "$EVPIPE_ROOT/tests/lib/pg.sh"

for d in evgen evstream; do
	[[ -x $BIN/$d ]] || { echo "demo: $BIN/$d not built; run make" >&2; exit 1; }
done

# Our own children: a zombie still answers kill -0, so read the state instead.
alive() { local st; { read -r _ _ st _ <"/proc/$1/stat"; } 2>/dev/null && [[ $st != Z ]]; }

# TERM, then up to 10 s for a clean shutdown, then KILL.
stop_daemon() {
	local name=$1 pid=$2 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
		echo "demo: $name did not stop within 10 s; killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	echo "demo: $name stopped"
}

echo "demo: starting a private PostgreSQL 15 ..."
pg_start || exit 1
tmpdir DEMO
mkdir "$DEMO/spool" "$DEMO/checkpoint"

cat <<INFO
demo: database ready.  From another terminal:
    psql "$EVPIPE_CONNINFO"
    SELECT * FROM evstream_batches ORDER BY batch_id DESC LIMIT 5;
demo: spool $DEMO/spool
demo: logs  $DEMO/evgen.log  $DEMO/evstream.log
demo: Ctrl-C stops everything and removes all of it.
INFO

declare -A PID
"$BIN/evgen" --spool_dir="$DEMO/spool" --interval=1 >"$DEMO/evgen.log" 2>&1 &
PID[evgen]=$!
at_exit "stop_daemon evgen $!"
"$BIN/evstream" --spool_dir="$DEMO/spool" --checkpoint_dir="$DEMO/checkpoint" \
	--conninfo="$EVPIPE_CONNINFO" --trigger_interval=2 >"$DEMO/evstream.log" 2>&1 &
PID[evstream]=$!
at_exit "stop_daemon evstream $!"

while :; do
	sleep 3
	for d in evgen evstream; do
		alive "${PID[$d]}" && continue
		wait "${PID[$d]}"
		echo "demo: $d exited (status $?); its log ends:" >&2
		tail -n 20 "$DEMO/$d.log" | sed 's/^/    /' >&2
		exit 1
	done
	IFS='|' read -r n maxt < <(pg_psql -c 'SELECT count(*), max(event_time) FROM events')
	printf '%s  events: %s  max(event_time): %s\n' "$(date +%T)" "${n:-?}" "${maxt:-none}"
done
