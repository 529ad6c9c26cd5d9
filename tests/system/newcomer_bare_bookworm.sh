#!/usr/bin/env bash
# A newcomer's first hour, for real: a bare debian:bookworm-slim container (through
# ../shared/tools/container-engine), root, with nothing but `make` installed, and a
# clean copy of the repository in root's 0700 home, as `git clone` leaves it there.
# The README's two commands work the first time, each doing its own set-up:
#   make run                 a committed batch shows within 120 s of the build ending
#                            (the install and the build are timed and printed too), and
#                            only the demo's packages are installed (no clang, valgrind,
#                            prometheus); Ctrl-C (SIGINT) stops it and leaves nothing;
#   make test TESTS=unit     ends "N passed, 0 failed".
# EVPIPE_LONG=1 runs the whole ladder (`make test`) there instead of the unit tests.
# Without a container engine every check is SKIPped, never passed.
# evpipe-test-timeout: 1500
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
IMAGE=docker.io/library/debian:bookworm-slim
CHECKS=(only_make_installed make_run_builds make_run_batch_within_120s make_run_no_test_toolchain
	make_run_sigint_stops_everything make_test_first_try)

if ! command -v podman >/dev/null || ! podman image exists "$IMAGE" 2>/dev/null; then
	for c in "${CHECKS[@]}"; do
		skip "newcomer_$c" "no container engine with $IMAGE (run ../shared/tools/container-engine up)"
	done
	exit 0
fi

tmpdir W
repo_copy "$W/evpipe" || { fail newcomer_clean_copy "could not copy the repository's files"; exit 1; }
C=evpipe-newcomer-$$-$RANDOM
# podman is driven directly, as in systemd_host.sh: its remote exec loses output now and then.
x() { podman exec "$C" "$@"; }
if ! podman run -d --name "$C" "$IMAGE" sleep infinity >/dev/null; then
	fail newcomer_container_starts "podman run $IMAGE failed"
	exit 1
fi
at_exit "podman rm -f -t 0 $C >/dev/null 2>&1"
podman cp "$W/evpipe" "$C:/root/evpipe" && x chown -R root:root /root/evpipe && x chmod 0700 /root ||
	{ fail newcomer_copy_in "could not copy the repository into the container"; exit 1; }

check "newcomer_only_make_installed" x sh -c 'apt-get update -qq &&
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends make >/dev/null &&
	! command -v cc && ! command -v pkg-config && ! command -v psql'

# --- make run, first try --------------------------------------------------------------
t0=$SECONDS
x sh -c 'cd /root/evpipe && exec make run >/root/run.log 2>&1 </dev/null' &
RUN_PID=$!
at_exit "kill $RUN_PID 2>/dev/null"
built() { x grep -qs '^demo: starting a private PostgreSQL' /root/run.log; }
if wait_for 900 built; then
	t_built=$SECONDS
	pass newcomer_make_run_builds
	echo "make run: packages installed and daemons built in $((t_built - t0)) s"
	batch() { x grep -qsE 'events: [1-9][0-9]*' /root/run.log; }
	if wait_for 120 batch; then
		pass newcomer_make_run_batch_within_120s
		echo "make run: first committed batch $((SECONDS - t_built)) s after the build," \
			"$((SECONDS - t0)) s after make run started"
	else
		fail newcomer_make_run_batch_within_120s "no 'events: N' line with N > 0 within 120 s"
	fi
else
	fail newcomer_make_run_builds "make run did not reach the demo in 900 s"
	fail newcomer_make_run_batch_within_120s "make run did not build"
fi
x tail -n 20 /root/run.log | sed "s/^/    | /"	# indented: never a PASS line of ours
check "newcomer_make_run_no_test_toolchain" x sh -c \
	'! dpkg-query -W -f="\${Status}\n" clang valgrind prometheus 2>/dev/null | grep -q "ok installed"'
# No procps in the demo's packages (no kill, no pgrep): the shell's kill, and
# processes found by their command lines.
procs() { # ERE: the PIDs whose command line matches
	x sh -c 'for d in /proc/[0-9]*; do
		{ tr "\0" " " <$d/cmdline; } 2>/dev/null | grep -qE "$1" && echo ${d#/proc/}; done; true' sh "$1"
}
x sh -c 'kill -INT "$@"' sh $(procs '^bash tests/lib/demo.sh')
gone() { [[ -z $(procs '/(evgen|evstream|postgres) |demo\.sh') ]]; }
check "newcomer_make_run_sigint_stops_everything" wait_for 30 gone
kill "$RUN_PID" 2>/dev/null	# the exec's client: it has returned, unless the demo is stuck
wait "$RUN_PID" 2>/dev/null

# --- make test, first try ---------------------------------------------------------------
what='TESTS=unit'
[[ ${EVPIPE_LONG:-0} == 1 ]] && what=''
t0=$SECONDS
x sh -c "cd /root/evpipe && make test $what" >"$W/test.log" 2>&1
rc=$?
cp "$W/test.log" "$EVPIPE_TEST_LOGDIR/system__newcomer_bare_bookworm.make_test.log" 2>/dev/null
grep -E '^(FAIL|SKIP): ' "$W/test.log" | sed "s/^/    | /"
tail -n 5 "$W/test.log" | sed "s/^/    | /"
echo "make test $what: exit $rc after $((SECONDS - t0)) s (packages, build and tests)"
last=$(tail -n 1 "$W/test.log")
if ((rc == 0)) && [[ $last =~ ^[1-9][0-9]*\ passed,\ 0\ failed ]]; then
	pass newcomer_make_test_first_try
else
	fail newcomer_make_test_first_try "exit $rc, last line: $last"
fi
