#!/usr/bin/env bash
# `docker compose up` for real, on whatever engine answers at DOCKER_HOST (in CI:
# ../shared/tools/container-engine, podman behind the Docker API, docker-compose 1.29).
#
# From a clean copy of the repository (the files git knows, plus `cp .env.example
# .env`), under a project name of its own: the compose file validates; `up -d
# --build` brings rows into events within 30 s; a second `up` on the same volumes
# resumes without re-running the init SQL; evstream is SIGKILLed three times and
# started again, PostgreSQL restarted once; evgen stopped and the spool drained:
# the set of valid event_ids in the files evgen wrote (kept with clean_source =
# archive) equals the set in events, nothing twice, every invalid row in
# event_rejects, the batch log adding up.  evstream's healthcheck (`evstream
# status`) says healthy, and stalled when its database does not answer.  `down`
# takes at most 10 s and both daemons exit 0; the runtime image runs as non-root,
# under an init, and holds no compiler; its size is printed.
#
# The environment overrides .env only for what the checks need: archive instead
# of delete, test aids on (duplicates, invalid rows), the image's tag.
# Without an engine every check is reported SKIP, never PASS.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"

CHECKS=(config_valid up_build rows_within_30s evstream_healthy non_root no_compiler pid1_is_init
	image_size second_up_same_volume sigkill_evstream_3x restart_postgres evgen_stop_exit_0
	drained ids_equal_exactly_once rejects_equal_invalid_rows down_within_10s_exit_0)
skip_all() {
	local c
	for c in "${CHECKS[@]}"; do skip "compose_$c" "$*"; done
	exit 0
}

# --- an engine, or SKIP ------------------------------------------------------------
# shellcheck disable=SC2016  # the command is shown, not run
HOW='eval "$(../shared/tools/container-engine up)" first'
command -v docker-compose >/dev/null || skip_all "docker-compose is not installed ($HOW)"
if [[ ${DOCKER_HOST:-unix:///var/run/docker.sock} == unix://* ]]; then
	sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
	sock=${sock#unix://}
	[[ -S $sock ]] || skip_all "no engine socket at $sock ($HOW)"
fi
# inspect, wait and rmi go to the engine's own client: docker, or podman talking
# to the same socket (container-engine installs podman, not the docker CLI).
if command -v docker >/dev/null; then
	ENG=(docker)
elif command -v podman >/dev/null && [[ -n ${DOCKER_HOST:-} ]]; then
	ENG=(podman --remote --url "$DOCKER_HOST")
	export COMPOSE_DOCKER_CLI_BUILD=0	# docker-compose's default builder runs `docker build`
else
	skip_all "neither docker nor podman is installed to inspect containers"
fi
timeout 20 "${ENG[@]}" version >/dev/null 2>&1 ||
	skip_all "no container engine answers at ${DOCKER_HOST:-the default socket} ($HOW)"

# --- a clean copy, a project of its own ----------------------------------------------
tmpdir W
W=$W/evpipe
repo_copy "$W" || { fail compose_clean_copy "could not copy the repository's files"; exit 1; }
cp "$W/.env.example" "$W/.env"
cd "$W" || exit 1

P=evpipet$$r$RANDOM
export EVPIPE_TAG=$P EVSTREAM_CLEAN_SOURCE=archive EVGEN_DUPLICATE_RATE=0.02 EVGEN_INVALID_RATE=0.02
IMAGE=evpipe:$P
dc() { docker-compose --ansi never -p "$P" "$@"; }
SVCLOG=$EVPIPE_TEST_LOGDIR/system__docker_compose.services.log
save_logs() { dc logs --no-color --timestamps >"$SVCLOG" 2>&1; }
cleanup() {
	[[ -s $SVCLOG ]] || save_logs
	dc down -v --timeout 5 >/dev/null 2>&1
	"${ENG[@]}" rmi "$IMAGE" >/dev/null 2>&1
}
at_exit cleanup

# The stack's life goes through docker-compose, as a user types it; polling goes
# through the engine's own client: each docker-compose call costs one to two
# seconds of Python start-up, `docker exec` a tenth of one.
cid() {
	"${ENG[@]}" ps -a -q --filter "label=com.docker.compose.project=$P" \
		--filter "label=com.docker.compose.service=$1"
}
ex() { local s=$1; shift; "${ENG[@]}" exec "$(cid "$s")" "$@"; }
# SQL through the postgres container's own psql: dcq as a user would, q to poll.
# shellcheck disable=SC2016  # expanded by the container's shell
PSQL='exec psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "$1"'
dcq() { dc exec -T postgres sh -c "$PSQL" sh "$1"; }
q() { ex postgres sh -c "$PSQL" sh "$1"; }
# Each poll is a `docker compose exec`: poll less often than testlib does.
WAIT_FOR_INTERVAL=0.5
inspect() { "${ENG[@]}" inspect -f "$1" "$2"; }
PHASE_T=$SECONDS
phase() { echo "phase: $1 took $((SECONDS - PHASE_T)) s ($(date -u +%T))"; PHASE_T=$SECONDS; }
last_batch() { q 'SELECT coalesce(max(batch_id), 0) FROM evstream_batches' 2>/dev/null; }
batch_after() { local b; b=$(last_batch) && [[ $b =~ ^[0-9]+$ ]] && ((b > $1)); }

# `down` (ARGS...), timed; exit codes read with `wait`, started before the
# containers are removed.  Sets DOWN_S, DOWN_RC (as "evgen evstream").
down_timed() {
	local ids w start
	ids=("$(cid evgen)" "$(cid evstream)")
	"${ENG[@]}" wait "${ids[@]}" >"$W/.wait" 2>&1 &
	w=$!
	sleep 1
	start=$(date +%s%N)
	dc down "$@"
	DOWN_S=$((($(date +%s%N) - start) / 1000000))
	wait "$w"
	DOWN_RC=$(tr '\n' ' ' <"$W/.wait")
	DOWN_RC=${DOWN_RC% }
	echo "down $*: ${DOWN_S} ms, exit codes (evgen evstream): $DOWN_RC"
}

# --- config, build, first rows ---------------------------------------------------
check compose_config_valid dc config -q
check_eq compose_config_services "evgen evstream postgres" "$(dc config --services | sort | xargs)"

start=$SECONDS
if ! dc up -d --build; then
	fail compose_up_build "docker-compose up -d --build failed (see above)"
	exit 1
fi
pass compose_up_build
UP_S=$((SECONDS - start))
start=$SECONDS
wait_for 30 batch_after 0
ROWS_S=$((SECONDS - start))
check compose_rows_within_30s test "$(dcq 'SELECT count(*) FROM events')" -gt 0
echo "up -d --build: ${UP_S} s; first rows after ${ROWS_S} s"

phase up_and_rows

# --- the runtime image -----------------------------------------------------------
# One exec per service (each costs a second): uid, PID 1's name, zombies, compilers.
for s in evgen evstream; do
	mapfile -t r < <(dc exec -T "$s" sh -c 'id -u; cat /proc/1/comm
		grep -l "^State:.*Z" /proc/[0-9]*/status 2>/dev/null | wc -l
		command -v cc gcc c99 c89 cpp clang tcc make; true' | tr -d '\r')
	check "compose_non_root_$s" test -n "${r[0]:-}" -a "${r[0]:-0}" != 0
	# init: true puts a small init at PID 1; the daemon is its child.
	check "compose_pid1_is_init_$s" test -n "${r[1]:-}" -a "${r[1]:-$s}" != "$s"
	check_eq "compose_no_zombies_$s" 0 "${r[2]:-}"
	check_eq "compose_no_compiler_$s" "" "${r[*]:3}"
done
user=$("${ENG[@]}" image inspect -f '{{.Config.User}}' "$IMAGE")
check "compose_non_root_image_user" test -n "$user" -a "${user%%:*}" != 0 -a "${user%%:*}" != root
size=$("${ENG[@]}" image inspect -f '{{.Size}}' "$IMAGE")
base=$("${ENG[@]}" image inspect -f '{{.Size}}' debian:bookworm-slim)
echo "runtime image $IMAGE: $((size / 1000000)) MB (base debian:bookworm-slim $((base / 1000000)) MB, +$(((size - base) / 1000000)) MB)"
# The daemons and their runtime libraries are a few MB; a compiler or -dev
# packages would add tens.
check compose_image_size_small test $((size - base)) -lt 40000000

phase image_checks

# --- a second `up` on the same volumes -------------------------------------------
pg1=$(cid postgres)
# The first start ran the init SQL: the pattern the second start must not show.
check compose_first_up_ran_init_sql grep -q 'running /docker-entrypoint-initdb.d/01_init.sql' \
	<(dc logs --no-color postgres)
before=$(q 'SELECT count(*) FROM events')
down_timed --timeout 10
check_eq compose_down_keeps_volumes_exit_0 "0 0" "$DOWN_RC"
dc up -d
check compose_second_up test $? = 0
pg2=$(cid postgres)
check compose_second_up_new_container test -n "$pg2" -a "$pg1" != "$pg2"
after=$(q 'SELECT count(*) FROM events')
check compose_second_up_data_kept test "${after:-0}" -ge "${before:-1}" -a "${before:-0}" -gt 0
check_eq compose_second_up_init_sql_not_rerun 0 "$(dc logs --no-color postgres | grep -c -e initdb.d -e "init process")"
wait_for 30 batch_after "$(last_batch)"
check compose_second_up_resumes_from_checkpoint \
	grep -qE 'starting: .*\(batch [1-9][0-9]*,' <(dc logs --no-color evstream)

phase second_up

# --- SIGKILL evstream three times, restart PostgreSQL once ------------------------
kills=0
for i in 1 2 3; do
	b=$(last_batch)
	wait_for 30 batch_after "$b" || fail "compose_progress_before_kill_$i" "no batch after $b"
	sleep "0.$((RANDOM % 9))"
	dc kill -s SIGKILL evstream
	rc=$(inspect '{{.State.ExitCode}}' "$(cid evstream)")
	[[ $rc == 137 ]] && kills=$((kills + 1))
	dc up -d evstream
done
check_eq compose_sigkill_evstream_3x 3 "$kills"
b=$(last_batch)
check compose_progress_after_kills wait_for 30 batch_after "$b"

dc restart postgres
check compose_restart_postgres test $? = 0
b=$(last_batch)
# 90 s: podman's DNS (aardvark-dns) has been seen to stop answering for up to
# 45 s around a container restart; evstream rides it out with its retry loop.
check compose_progress_after_postgres_restart wait_for 90 batch_after "$b"

phase kills_and_restart

# --- stop evgen, drain, compare ----------------------------------------------------
dc stop evgen
check_eq compose_evgen_stop_exit_0 0 "$(inspect '{{.State.ExitCode}}' "$(cid evgen)")"
nothing_pending() {
	[[ -z $(ex evstream find /var/lib/evpipe/spool -maxdepth 1 -name '*.csv') ]]
}
check compose_drained wait_for 60 nothing_pending
# evstream has run since its last start by now: its healthcheck has had its turn.
health() { inspect '{{.State.Health.Status}}' "$(cid evstream)"; }
is_healthy() { [[ $(health) == healthy ]]; }
wait_for 40 is_healthy
check_eq compose_evstream_healthy healthy "$(health)"
# The healthcheck's command, run by hand: healthy now, stalled when the database
# it is pointed at does not answer.
probe=(evstream --spool_dir=/var/lib/evpipe/spool --checkpoint_dir=/var/lib/evpipe/checkpoint
	--trigger_interval=2 status)
# (Retried, for the same DNS outages.)
check compose_probe_healthy wait_for 60 ex evstream "${probe[@]}"
check compose_probe_says_stalled_without_database ! \
	"${ENG[@]}" exec -e POSTGRES_PORT=1 "$(cid evstream)" "${probe[@]}"
X=$W/.out
mkdir -p "$X"
: >"$X/valid"
: >"$X/invalid"
ex evstream tar -C /var/lib/evpipe/spool -cf - archive | tar -xf - -C "$X"
check_eq compose_no_file_quarantined 0 \
	"$(ex evstream sh -c 'ls /var/lib/evpipe/spool/quarantine 2>/dev/null | wc -l')"
# The oracle, independent of validate.c: a row is valid when every field has the
# shape evgen writes for a good row (its faults: empty id, 'u' in user_id, 'click',
# a minus price, five fields, month 13).
find "$X/archive" -name '*.csv' -type f -exec awk -F, -v ok="$X/valid" -v bad="$X/invalid" '
	FNR == 1 { next }
	NF == 6 && length($1) == 36 && $1 ~ /^[0-9a-f-]+$/ && $2 ~ /^[0-9]+$/ &&
	    ($3 == "view" || $3 == "purchase") && $4 ~ /^[0-9]+$/ && $5 ~ /^[0-9]+\.[0-9][0-9]$/ &&
	    $6 ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:.]+$/ &&
	    substr($6, 6, 2) + 0 >= 1 && substr($6, 6, 2) + 0 <= 12 { print $1 >ok; next }
	{ print >bad }' {} +
LC_ALL=C sort -u "$X/valid" >"$X/expected"
q 'SELECT event_id FROM events' | tr -d '\r' | LC_ALL=C sort >"$X/got"
nfiles=$(find "$X/archive" -name '*.csv' | wc -l)
nvalid=$(wc -l <"$X/valid") ninvalid=$(wc -l <"$X/invalid")
nexpected=$(wc -l <"$X/expected") ngot=$(wc -l <"$X/got")
echo "files: $nfiles; valid rows $nvalid, distinct $nexpected; invalid $ninvalid; events $ngot"
check compose_some_events_flowed test "$nexpected" -gt 1000
check_eq compose_ids_equal_exactly_once "$nexpected 0" \
	"$ngot $(LC_ALL=C comm -3 "$X/expected" "$X/got" | wc -l)"
# Each archived row read once by a committed batch, the duplicates evgen
# re-emitted dropped, the invalid rows rejected: the batch log adds up.
check compose_files_held_duplicates test "$nvalid" -gt "$nexpected"
check_eq compose_batch_log_adds_up "$((nvalid + ninvalid)) $nexpected $ninvalid" \
	"$(q 'SELECT sum(rows_read), sum(written), sum(rejected) FROM evstream_batches' | tr '|\r' ' ' | xargs)"
check_eq compose_rejects_equal_invalid_rows "$ninvalid" "$(q 'SELECT count(*) FROM event_rejects' | tr -d '\r')"
check_eq compose_every_file_in_one_batch "$nfiles 0" \
	"$(q 'SELECT count(*), count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f' | tr '|\r' ' ' | xargs)"

phase drain_and_compare

# --- down, with everything running -------------------------------------------------
dc up -d evgen
sleep 2
save_logs
down_timed -v --timeout 10
check compose_down_within_10s test "$DOWN_S" -le 10000
check_eq compose_down_evgen_evstream_exit_0 "0 0" "$DOWN_RC"
phase down
