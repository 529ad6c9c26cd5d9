#!/usr/bin/env bash
# Every state a crash may leave (tests/crashstate/crashstate.py, ALICE-style): the
# file-system calls of evgen publishing a file, of evstream's first batch (checkpoint
# written whole, files archived, a bad file quarantined) and of a later batch
# (checkpoint journal, files deleted; or, clean_source = off, left) are recorded with strace; every on-disk state a
# crash after any call may leave under POSIX rules (un-synced writes missing, whole or
# torn; un-synced creates, links, unlinks, renames and mkdirs done or not, in any
# combination) is built, and `evstream --once` starts on each against the database as
# it was at that point (the COMMIT answered or not).  No state may skip a file, load
# one twice or in part, refuse to start without saying why, or lose a published spool
# file.  Combinations per crash point: all up to 64, else a fixed set plus seeded
# random ones (EVPIPE_SEED).  EVPIPE_LONG=1: up to 4096, evgen publishes 3 files and
# each batch holds 4 good files.
# evpipe-test-timeout: 900
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
for tool in strace python3; do
	if ! command -v "$tool" >/dev/null; then
		skip "crash_states" "$tool is not installed (apt-get install $tool)"
		exit 0
	fi
done
stream_setup
SEED=${EVPIPE_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
if [[ ${EVPIPE_LONG:-0} == 1 ]]; then LIMIT=4096 size=(--files 4 --publish 3)
else LIMIT=64 size=(--files 2 --publish 1); fi
LIMIT=${EVPIPE_CRASH_STATE_LIMIT:-$LIMIT}
echo "EVPIPE_SEED=$SEED (crash states: up to $LIMIT combinations per crash point)"
start=$SECONDS
python3 "$EVPIPE_ROOT/tests/crashstate/crashstate.py" --work "$ST/cs" --bin "$EVPIPE_BIN" \
	--psql "$PG_BIN/psql" --conninfo "$EVPIPE_CONNINFO" --limit "$LIMIT" --seed "$SEED" "${size[@]}" ${EVPIPE_CRASHSTATE_ARGS:-} \
	>"$ST/cs.out" 2>&1
rc=$?
cat "$ST/cs.out"
for f in "$ST"/cs/*.ops; do echo "--- calls recorded: ${f##*/}"; cat "$f"; done
echo "crash states: $((SECONDS - start)) s"
check_eq "crashstate_tool_exits_0" 0 "$rc"
total=0 checked=0
for seq in evgen_publish first_batch_archive second_batch_delete second_batch_off; do
	line=$(grep "^RESULT $seq " "$ST/cs.out")
	check "${seq}_recorded_and_checked" test -n "$line"
	n=$(sed -n 's/.* distinct_checked=\([0-9]*\).*/\1/p' <<<"$line")
	check "${seq}_states_checked" test "${n:-0}" -gt 3
	check_eq "${seq}_no_state_fails" 0 "$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$line")"
	b=$(sed -n 's/.* states_built=\([0-9]*\).*/\1/p' <<<"$line"); total=$((total + ${b:-0}))
	checked=$((checked + ${n:-0}))
done
# For tests/RELIABILITY.md: runs = distinct states checked; lost/duplicated = failing states.
rel_record crash_states "$checked" "n/a" "n/a" "n/a" \
	"$(grep -c '^FINDING.*\(skipped or lost\|without saying\|quarantine\)' "$ST/cs.out")" \
	"$(grep -c '^FINDING.*\(twice\|in part\)' "$ST/cs.out")"
