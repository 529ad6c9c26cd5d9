#!/usr/bin/env bash
# sink_pg.sh — the sink's promises against a real server (see tests/unit/test_sink_pg.c):
# runs test_sink_pg on a throwaway cluster and acts as its driver, stopping, crashing and
# restarting the server when the test asks ("ASK: stop|kill|start" on its stdout, "ok" or
# "failed" back on its stdin), so an outage happens while the sink holds a connection.
set -uo pipefail
: "${EVPIPE_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${EVPIPE_BIN:=$EVPIPE_ROOT/build/san}"
source "$EVPIPE_ROOT/tests/lib/pg.sh"

prog=$EVPIPE_BIN/test_sink_pg
if [[ ! -x $prog ]]; then fail sink_pg "not built: $prog (run make)"; exit 1; fi
pg_start || { fail sink_pg "pg_start failed (see stderr)"; exit 1; }

# A role that must prove its password over TCP, so a wrong one is really refused and the
# test can look for it in the error text.  (pg.sh's cluster trusts everyone otherwise.)
role=evpipe_scram
if ! pg_psql -c "CREATE ROLE $role LOGIN" ||
	! { echo "host all $role 127.0.0.1/32 scram-sha-256"; cat "$PG_DATA/pg_hba.conf"; } \
		>"$PG_TMP/pg_hba.new" ||
	! cat "$PG_TMP/pg_hba.new" >"$PG_DATA/pg_hba.conf" ||	# keeps the owner
	! pg_psql -c 'SELECT pg_reload_conf()' >/dev/null; then
	fail sink_pg "could not set up password authentication for $role"
	exit 1
fi
export EVPIPE_PG_SCRAM_ROLE=$role EVPIPE_PG_DRIVER=1

coproc TEST { exec "$prog"; }
# bash drops TEST[] when the coprocess exits; keep our own copies.
exec {from}<&"${TEST[0]}" {to}>&"${TEST[1]}"
pid=$TEST_PID

answer() {
	if "$@"; then echo ok >&"$to"; else echo failed >&"$to"; fi
}

failed_lines=0
while IFS= read -r line <&"$from"; do
	case $line in
	"ASK: stop") answer pg_stop_server ;;
	"ASK: kill") answer pg_kill_server ;;
	"ASK: start") answer pg_start_server ;;
	ASK:*) echo failed >&"$to" ;;
	*)
		[[ $line == FAIL:* ]] && failed_lines=$((failed_lines + 1))
		printf '%s\n' "$line"
		;;
	esac
done
wait "$pid"
rc=$?
exec {from}<&- {to}>&-
if ((rc != 0 && failed_lines == 0)); then
	fail sink_pg "test_sink_pg exited with status $rc"
fi
exit "$rc"
