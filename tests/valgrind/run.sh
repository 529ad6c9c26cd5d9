#!/usr/bin/env bash
# tests/valgrind/run.sh — valgrind memcheck over the daemons' integration run
# (`make check-valgrind`): the integration tests that start evgen and evstream
# (all of tests/integration/ but sink_pg, which drives a unit binary) run with
# $EVPIPE_BIN pointing at wrappers that start the -O1 -g, sanitizer-free builds in
# $EVPIPE_VG_BIN under `valgrind --leak-check=full`, one log per process.
#
# Passes when every test passes and every daemon process's log says 0 errors and
# 0 bytes definitely lost (memcheck errors also make the daemon exit 99, so the
# test that ran it fails where it happened).  Prints one line, which
# tests/reliability/report.sh reads:
#     valgrind: processes=N errors=N definitely_lost_bytes=N unfinished=N tests_failed=N
# (unfinished: a process killed before valgrind could summarise; none is expected).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VG_BIN=${EVPIPE_VG_BIN:-$ROOT/build/vg}
OUT=${1:-$(mktemp -d "${TMPDIR:-/tmp}/evpipe-vg.XXXXXX")}
command -v valgrind >/dev/null || { echo "valgrind: not installed (make deps)"; exit 1; }
mkdir -p "$OUT/wrap" "$OUT/vglogs" || exit 1
for d in evgen evstream; do
	[[ -x $VG_BIN/$d ]] || { echo "valgrind: no $VG_BIN/$d (make check-valgrind builds it)"; exit 1; }
	cat >"$OUT/wrap/$d" <<WRAP
#!/bin/sh
exec valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \\
	--errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=30 \\
	--log-file="$OUT/vglogs/$d.%p.log" "$VG_BIN/$d" "\$@"
WRAP
	chmod +x "$OUT/wrap/$d"
done

tests=()
for f in "$ROOT"/tests/integration/*.sh; do
	n=${f##*/}; n=${n%.sh}
	[[ $n == sink_pg ]] || tests+=("integration/$n")
done
# valgrind runs the daemons 20-50 times slower: give each test more time, and tell it
# (EVPIPE_UNDER_VALGRIND) so a check of CPU time, which would measure valgrind, skips.
export EVPIPE_UNDER_VALGRIND=1
EVPIPE_BIN=$OUT/wrap EVPIPE_TEST_LOGDIR=$OUT/test-logs EVPIPE_TEST_TIMEOUT=${EVPIPE_TEST_TIMEOUT:-1800} \
	bash "$ROOT/tests/run.sh" "${tests[@]}" | tee "$OUT/run.out"
run_rc=${PIPESTATUS[0]}

procs=0 errors=0 lost=0 unfinished=0
for log in "$OUT"/vglogs/*.log; do
	[[ -e $log ]] || continue
	procs=$((procs + 1))
	e=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$log" | tr -d , | tail -1)
	if [[ -z $e ]]; then
		unfinished=$((unfinished + 1))
		echo "valgrind: unfinished: $log"
		continue
	fi
	l=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tr -d , | tail -1)
	errors=$((errors + e)) lost=$((lost + ${l:-0}))
	((e > 0 || ${l:-0} > 0)) && { echo "valgrind: $log:"; sed 's/^/    /' "$log" | tail -n 60; }
done
failed=$(sed -n 's/^[0-9]* passed, \([0-9]*\) failed.*/\1/p' "$OUT/run.out" | tail -1)
echo "valgrind: processes=$procs errors=$errors definitely_lost_bytes=$lost unfinished=$unfinished" \
	"tests_failed=${failed:-unknown}"
[[ -n ${EVPIPE_RELIABILITY_DIR:-} ]] && mkdir -p "$EVPIPE_RELIABILITY_DIR" &&
	printf '%s\t%s\t%s\t%s\t%s\n' "$procs" "$errors" "$lost" "$unfinished" "${failed:-unknown}" \
		>"$EVPIPE_RELIABILITY_DIR/valgrind.tsv"
((run_rc == 0 && procs > 0 && errors == 0 && lost == 0 && unfinished == 0))
