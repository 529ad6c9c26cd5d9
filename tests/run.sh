#!/usr/bin/env bash
# run.sh — the test ladder: unit binaries, then integration scripts, then system scripts.
#
#   EVPIPE_BIN=build/san EVPIPE_RELEASE_BIN=. tests/run.sh [FILTER...]
#
# A test is selected when its name (unit/test_x, integration/x, system/x) contains any
# FILTER.  Each prints `PASS: name`, `FAIL: name: why`, `SKIP: name: why` lines on stdout;
# they are echoed live and counted.  A test that exits non-zero without a FAIL line, runs
# past its timeout, or prints no line at all counts as one more FAIL.  Full output of
# each test goes to build/test-logs/<kind>__<name>.log; a failing test's tail is shown.
# The last line is always `N passed, N failed, N skipped`; the exit status is 1 if any
# test failed.
#
# A script may ask for a longer timeout with a line `# evpipe-test-timeout: SECONDS`.
# Environment: EVPIPE_TEST_TIMEOUT (seconds per test, default 300), EVPIPE_TEST_LOGDIR,
# EVPIPE_TEST_JOBS (tests run at once, default 1; `make test` uses 2).
# Exported to tests: EVPIPE_ROOT EVPIPE_BIN EVPIPE_RELEASE_BIN EVPIPE_TEST_LOGDIR
# EVPIPE_PG_TEMPLATE (pg.sh's initdb cache) ASAN_OPTIONS UBSAN_OPTIONS.
set -uo pipefail

abspath() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EVPIPE_BIN=$(abspath "${EVPIPE_BIN:-$ROOT/build/san}")
EVPIPE_RELEASE_BIN=$(abspath "${EVPIPE_RELEASE_BIN:-$ROOT}")
EVPIPE_TEST_LOGDIR=$(abspath "${EVPIPE_TEST_LOGDIR:-$ROOT/build/test-logs}")
TIMEOUT=${EVPIPE_TEST_TIMEOUT:-300}
EVPIPE_ROOT=$ROOT
cd "$ROOT" || exit 1

mkdir -p "$EVPIPE_TEST_LOGDIR" || exit 1
rm -f "$EVPIPE_TEST_LOGDIR"/*.log
# Each test gets TMPDIR=$RUN_TMP/<n>, removed after it, so even a test killed before
# its own cleanup leaves nothing; 755 so tests (and pg.sh) may drop to `nobody`.
# rm -rf can lose a race with a server still writing (a killed test's PostgreSQL lives
# until pg.sh's watchdog reaps it, within about a second), so retry for a few seconds.
rm_tree() {
	local i
	for ((i = 0; i < 50; i++)); do
		rm -rf "$1" 2>/dev/null
		[[ -e $1 ]] || return 0
		sleep 0.1
	done
	echo "warning: could not remove $1" >&2
}
RUN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/evpipe-run.XXXXXX") && chmod 755 "$RUN_TMP" || exit 1
trap 'rm_tree "$RUN_TMP"' EXIT
EVPIPE_PG_TEMPLATE=$RUN_TMP/pg-template
mkdir "$EVPIPE_PG_TEMPLATE" || exit 1

# LeakSanitizer stops the world with ptrace; where that is refused (under strace/gdb,
# some sandboxes) every sanitized binary would die at exit.  Probe once with a trivial
# program and, only then, run without leak checking rather than fail everything.
lsan_works() {
	local d ok=0
	command -v "${CC:-cc}" >/dev/null || return 0
	d=$(mktemp -d) || return 0
	echo 'int main(void) { return 0; }' >"$d/p.c"
	if "${CC:-cc}" -fsanitize=address "$d/p.c" -o "$d/p" 2>/dev/null &&
		! ASAN_OPTIONS=detect_leaks=1 "$d/p" >/dev/null 2>&1; then
		ok=1
	fi
	rm -rf "$d"
	return "$ok"
}
if [[ -z ${ASAN_OPTIONS:-} ]]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	if ! lsan_works; then
		echo "note: LeakSanitizer cannot run here (ptrace refused); detect_leaks=0"
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
	fi
fi
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export EVPIPE_ROOT EVPIPE_BIN EVPIPE_RELEASE_BIN EVPIPE_TEST_LOGDIR EVPIPE_PG_TEMPLATE \
	ASAN_OPTIONS UBSAN_OPTIONS

# --- collect: names in ladder order --------------------------------------------------
declare -A PROG=()
NAMES=()
add() { # NAME PROGRAM
	[[ -n ${PROG[$1]:-} ]] && return
	PROG[$1]=$2
	NAMES+=("$1")
}
units=$(
	shopt -s nullglob
	for f in tests/unit/test_*.c; do f=${f##*/}; echo "${f%.c}"; done
	for f in "$EVPIPE_BIN"/test_*; do [[ -f $f && -x $f ]] && echo "${f##*/}"; done
)
while read -r n; do
	[[ -n $n ]] && add "unit/$n" "$EVPIPE_BIN/$n"
done < <(LC_ALL=C sort -u <<<"$units")
shopt -s nullglob
for kind in integration system; do
	for f in "tests/$kind"/*.sh; do n=${f##*/}; add "$kind/${n%.sh}" "$ROOT/$f"; done
done
shopt -u nullglob

selected() {
	local f
	((${#FILTERS[@]} == 0)) && return 0
	for f in "${FILTERS[@]}"; do [[ $1 == *"$f"* ]] && return 0; done
	return 1
}

# --- run ----------------------------------------------------------------------------
PASSED=0 FAILED=0 SKIPPED=0 RAN=0 CUR_PID=
FILTERS=("$@")

summary() { echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"; }

on_signal() {
	trap - INT TERM
	if [[ -n $CUR_PID ]]; then
		# timeout forwards TERM to the test and escalates to KILL after its -k grace.
		kill -TERM "$CUR_PID" 2>/dev/null
		{ wait "$CUR_PID"; } 2>/dev/null
	fi
	echo "interrupted"
	summary
	exit 130
}
trap on_signal INT TERM

# Is any process of group $1 still running?  Zombies don't count: orphans wait for
# init to reap them, and some container inits are slow to.
group_alive() {
	ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'
}

run_one() {
	local name=$1 prog=$2 log rc start p f s tailpid why=
	log=$EVPIPE_TEST_LOGDIR/${name//\//__}.log
	echo "== $name"
	if [[ ! -f $prog ]]; then
		echo "FAIL: $name: not built: $prog (run make)"
		FAILED=$((FAILED + 1))
		return
	fi
	local -a cmd=("$prog")
	local limit=$TIMEOUT own
	if [[ $prog == *.sh ]]; then
		cmd=(bash "$prog")
		own=$(sed -n 's/^# evpipe-test-timeout: \([0-9][0-9]*\)$/\1/p' "$prog" | head -n 1)
		((${own:-0} > limit)) && limit=$own
	fi
	start=$SECONDS
	mkdir -m 755 "$RUN_TMP/$RAN"
	: >"$log"	# exists before tail opens it
	# Background jobs start with SIGINT ignored; give the test normal signals.  timeout
	# puts the test in its own process group, which is how leftovers are found below.
	TMPDIR=$RUN_TMP/$RAN env --default-signal=INT,QUIT timeout -k 10 "$limit" "${cmd[@]}" \
		</dev/null >"$log" 2>&1 &
	CUR_PID=$!
	tail -n +1 -s 0.2 --pid="$CUR_PID" -f "$log" 2>/dev/null |
		grep --line-buffered -E '^(PASS|FAIL|SKIP): ' &
	tailpid=$!
	{ wait "$CUR_PID"; } 2>/dev/null	# no "Aborted" job notice: the log has the story
	rc=$?
	wait "$tailpid"
	# Processes the test killed on its way out may still be exiting: a moment's grace.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		group_alive "$CUR_PID" || break
		sleep 0.1
	done
	if group_alive "$CUR_PID"; then
		echo "warning: $name left processes running; killing them" | tee -a "$log"
		kill -KILL -- "-$CUR_PID" 2>/dev/null
	fi
	CUR_PID=
	rm_tree "${RUN_TMP:?}/$RAN"
	p=$(grep -c '^PASS: ' "$log")
	f=$(grep -c '^FAIL: ' "$log")
	s=$(grep -c '^SKIP: ' "$log")
	if ((rc == 124 || (rc == 137 && SECONDS - start >= limit))); then
		why="timed out after ${limit}s"
	elif ((rc != 0 && f == 0)); then
		why="exited with status $rc without a FAIL line"
	elif ((rc == 0 && p + f + s == 0)); then
		why="ran no checks"
	fi
	if [[ -n $why ]]; then
		echo "FAIL: $name: $why" | tee -a "$log"
		f=$((f + 1))
	fi
	PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
	if ((f > 0 || rc != 0)); then
		echo "   --- last 40 lines of $log (exit status $rc):"
		tail -n 40 "$log" | sed 's/^/   | /'
	fi
}

# EVPIPE_TEST_JOBS > 1 runs that many tests at once (most tests wait on a database,
# a daemon or a container far more than they compute).  Each test's lines are then
# printed as one block when it ends, instead of live.
JOBS=${EVPIPE_TEST_JOBS:-1}
declare -A RUNNING=()	# index -> test name, for the parallel pool

# Print and count every finished test of the pool; with "one", return after the first.
reap_pool() {
	local idx p f s
	while ((${#RUNNING[@]} > 0)); do
		for idx in "${!RUNNING[@]}"; do
			[[ -f $RUN_TMP/cnt.$idx ]] || continue
			cat "$RUN_TMP/out.$idx"
			read -r p f s <"$RUN_TMP/cnt.$idx"
			PASSED=$((PASSED + p)) FAILED=$((FAILED + f)) SKIPPED=$((SKIPPED + s))
			unset "RUNNING[$idx]"
			[[ ${1:-} == one ]] && return
		done
		wait -n 2>/dev/null || sleep 0.2
	done
}

for name in "${NAMES[@]}"; do
	selected "$name" || continue
	RAN=$((RAN + 1))
	if ((JOBS <= 1)); then
		run_one "$name" "${PROG[$name]}"
		continue
	fi
	((${#RUNNING[@]} >= JOBS)) && reap_pool one
	RUNNING[$RAN]=$name
	(
		PASSED=0 FAILED=0 SKIPPED=0
		run_one "$name" "${PROG[$name]}" >"$RUN_TMP/out.$RAN" 2>&1
		echo "$PASSED $FAILED $SKIPPED" >"$RUN_TMP/cnt.$RAN"
	) &
done
reap_pool

if ((RAN == 0 && $# > 0)); then
	echo "no test matches: $*" >&2
	FAILED=$((FAILED + 1))
fi
echo "logs: $EVPIPE_TEST_LOGDIR"
summary
((FAILED == 0))
