# shellcheck shell=bash
# testlib.sh — what every shell test sources to speak tests/run.sh's protocol:
#     PASS: name            FAIL: name: why            SKIP: name: why
# one line each on stdout.  The runner counts these lines; the exit status only has to
# agree with them (a script that printed a FAIL exits 1, see _tl_on_exit).
#
#   pass NAME                   a check held
#   fail NAME WHY...            a check failed; the script goes on, exits 1 at the end
#   skip NAME WHY...            a check could not run here (missing tool, not root ...)
#   check NAME CMD [ARG...]     run CMD; PASS if it exits 0, FAIL (with its status) if not;
#                               `check NAME ! CMD...` expects CMD to fail
#   check_fails NAME CMD...     same as check NAME ! CMD...
#   check_eq NAME EXPECTED ACTUAL
#   tmpdir [VAR]                a fresh private directory, removed at exit: printed
#                               (T=$(tmpdir)) or stored in VAR (tmpdir T).  Mode 755 under
#                               a 755 per-test root, so a test may drop to `nobody`.
#   at_exit 'CMD ...'           run CMD at exit (a string, eval'ed as trap does), last
#                               registered first, so daemons stop before their database.
#   runnable_copy VAR BIN       store in VAR a copy of BIN in a fresh tmpdir, for a test
#                               that drops to `nobody`: the repository (and so BIN) may
#                               lie under a 0700 home, as root's clone often does.
#   repo_copy DEST              what a clone of the repository holds (tracked files, and
#                               new ones git does not ignore) copied into DEST, as a
#                               newcomer's `git clone` would have it (CI: a fresh clone).
#   wait_for SECS CMD [ARG...]  run CMD until it exits 0 (then 0) or SECS pass (then 1),
#                               every WAIT_FOR_INTERVAL seconds (0.2).  The arguments are
#                               expanded once: to poll a query, pass a function.
#   gone PID                    PID has exited (no such process, or a zombie not yet reaped)
#   catches PID SIGNO           PID has a handler for signal SIGNO (SigCgt in /proc): a
#                               daemon that has just started has its handlers once this holds
#   wait_exit SECS PID          wait for the background child PID, at most SECS: its exit
#                               status; past SECS it is killed (SIGKILL), a line says so on
#                               stderr and the status is 124, so a hung daemon fails a
#                               test instead of hanging it
#
# Cleanup: testlib owns the EXIT trap, and turns SIGINT/SIGTERM/SIGHUP into a normal
# exit so the hooks run when the runner times a test out.  Register cleanup with
# at_exit; do NOT `trap ... EXIT` after sourcing (an EXIT trap set *before* sourcing
# is kept and run last).  pg.sh adds a watchdog so even a SIGKILLed test leaves no
# server behind.

if [[ -n ${_TL_LOADED:-} ]]; then return 0; fi
_TL_LOADED=1
_TL_FAILED=0
_TL_HOOKS=()

pass() { printf 'PASS: %s\n' "$1"; }
skip() { local n=$1; shift; printf 'SKIP: %s: %s\n' "$n" "${*:-skipped}"; }
fail() {
	local n=$1; shift
	_TL_FAILED=$((_TL_FAILED + 1))
	printf 'FAIL: %s: %s\n' "$n" "${*:-failed}"
}

check() {
	local n=$1 rc=0 want=0; shift
	if [[ ${1:-} == '!' ]]; then want=1; shift; fi
	"$@" || rc=$?
	if ((want == 0 && rc == 0)) || ((want == 1 && rc != 0)); then pass "$n"
	elif ((want == 0)); then fail "$n" "exit $rc from: $*"
	else fail "$n" "expected failure, but succeeded: $*"; fi
	return 0
}

check_fails() { local n=$1; shift; check "$n" '!' "$@"; }

check_eq() {
	if [[ $2 == "$3" ]]; then pass "$1"
	else fail "$1" "expected '$2', got '$3'"; fi
	return 0
}

at_exit() {
	if [[ $BASHPID != "$$" ]]; then
		echo "testlib: at_exit called in a subshell; the hook would be lost" >&2
		return 1
	fi
	_TL_HOOKS+=("$*")
}

# Directories come from one per-test root, created (and its removal registered) when
# this file is sourced, so tmpdir also works inside $(...), where a hook would be lost.
tmpdir() {
	local d
	d=$(mktemp -d "$_TL_TMP_ROOT/t.XXXXXX") && chmod 755 "$d" || return 1
	if (($#)); then printf -v "$1" '%s' "$d"; else echo "$d"; fi
}

repo_copy() {
	mkdir -p "$1" && (
		cd "$EVPIPE_ROOT" || exit 1
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
			tar --null -T - -cf - | tar -xf - -C "$1"
	)
}

runnable_copy() {
	local _rc_dir	# not `d`: tmpdir's own local would hide it
	tmpdir _rc_dir && cp "$2" "$_rc_dir/" && printf -v "$1" '%s' "$_rc_dir/${2##*/}"
}

wait_for() {
	local until=$((SECONDS + $1)); shift
	until "$@"; do
		((SECONDS < until)) || return 1
		sleep "${WAIT_FOR_INTERVAL:-0.2}"
	done
}

gone() { [[ ! -e /proc/$1 ]] || grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

catches() {
	local mask
	mask=$(awk '$1 == "SigCgt:" { print $2 }' "/proc/$1/status" 2>/dev/null) && [[ -n $mask ]] &&
		(((16#$mask >> ($2 - 1)) & 1))
}

wait_exit() {
	local secs=$1 pid=$2
	if ! wait_for "$secs" gone "$pid"; then
		echo "testlib: pid $pid still running after $secs s; killing it (SIGKILL)" >&2
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 124
	fi
	wait "$pid"
}

_tl_on_exit() {
	local rc=$? i
	trap - EXIT
	set +e
	for ((i = ${#_TL_HOOKS[@]} - 1; i >= 0; i--)); do
		eval "${_TL_HOOKS[i]}"
	done
	if ((rc == 0 && _TL_FAILED > 0)); then rc=1; fi
	exit "$rc"
}

# Keep an EXIT trap the test set before sourcing us: it becomes the last hook.
_tl_prev=$(trap -p EXIT)
if [[ -n $_tl_prev ]]; then
	_tl_prev=${_tl_prev#trap -- }
	eval "_tl_prev=${_tl_prev% EXIT}"	# unquote what trap -p quoted
	_TL_HOOKS+=("$_tl_prev")
fi
unset _tl_prev
trap _tl_on_exit EXIT
_TL_TMP_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/evpipe-test.XXXXXX") && chmod 755 "$_TL_TMP_ROOT" ||
	{ echo "testlib: cannot create a temp dir" >&2; exit 1; }
at_exit "rm -rf $(printf %q "$_TL_TMP_ROOT")"
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
