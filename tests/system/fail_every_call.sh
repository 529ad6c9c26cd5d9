#!/usr/bin/env bash
# Fail the k-th call, for every k (issue 18).  An LD_PRELOAD shim (tests/fault/failshim.c)
# fails the k-th call of one kind -- open, read, write, fsync, rename, link, unlink,
# mkdir, opendir/readdir, flock, close, malloc, and libpq's connect, PQputCopyData,
# PQputCopyEnd, PQgetResult, PQexec/PQsend* (the connection dropped under the call) --
# with the errno a real system gives.  For evstream --once over a small spool (4 files,
# 51 rows: invalid, late and duplicate rows among them, clean_source = archive) and for
# evgen --burst (3 files), each kind runs with k = 1, 2, 3 ... until a run finishes
# without reaching k.  After EVERY run, a clean restart without the shim (evgen: one more
# file, then evstream --once), then:
#   events equals the expected id set, event_rejects equal theirs, nothing twice, every
#   spool file committed by exactly one batch and present exactly once (spool or
#   archive/, never quarantine/), no temporary file left in the spool or checkpoint
#   directories; evgen: every file it reported is whole in the spool, no file it did not
#   report.
# And of the faulty run itself: no crash (sanitizer report, signal) and no hang (20 s);
# exit 0 only when its work is done (evstream --once: all 4 files committed; evgen: the 3
# files asked for), else exit non-zero with a message that names the failed call (a line
# with its errno's text and a word for the call).  Listed as findings, not checked: exit 0
# without a word of the error, and exit 2 (a configuration error, which the units'
# RestartPreventExitStatus=2 never restarts) after a transient fault.
# The table of injection points per kind is printed at the end and written to
# $EVPIPE_RELIABILITY_DIR/fail_every_call_kinds.md for tests/RELIABILITY.md.
#
# Short mode (make test): k = 1 .. EVPIPE_FAIL_MAX_K (default 20) for each kind (60 for
# evstream's libpq kinds, EVPIPE_FAIL_MAX_K_PQ: start-up takes ~45 PQgetResult calls, and the
# first batch's commits are the calls whose lost answer matters most), then a few
# sampled k beyond (EVPIPE_FAIL_SAMPLES, default 3, seeded by EVPIPE_SEED), then k up to
# the run that reaches no k; a kind that hung 3 times jumps to the samples.  Long mode
# (EVPIPE_LONG=1, make reliability-report) runs every k.  EVPIPE_FAIL_KINDS="write fsync"
# limits the kinds, EVPIPE_FAIL_DAEMONS="evstream" the daemons, EVPIPE_FAIL_JOBS (3) the
# kinds run at once.  About 2.5 min short, 7 min long, on 2 cores.
# evpipe-test-timeout: 900
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup

LONG=${EVPIPE_LONG:-0}
MAXK=${EVPIPE_FAIL_MAX_K:-$([[ $LONG == 1 ]] && echo 0 || echo 20)}	# 0: no cap
MAXK_PQ=${EVPIPE_FAIL_MAX_K_PQ:-$([[ $LONG == 1 ]] && echo 0 || echo 60)}
SAMPLES=${EVPIPE_FAIL_SAMPLES:-3}
SEED=${EVPIPE_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "fail_every_call: EVPIPE_SEED=$SEED long=$LONG max_k=$MAXK max_k_pq=$MAXK_PQ samples=$SAMPLES"
RANDOM=$SEED
RUN_TIMEOUT=${EVPIPE_FAIL_RUN_TIMEOUT:-20}	# a --once run over 4 files takes < 2 s, retries included

# --- the shim ------------------------------------------------------------------------
SHIM=$EVPIPE_ROOT/build/failshim.so
if [[ ! -f $SHIM || $SHIM -ot $EVPIPE_ROOT/tests/fault/failshim.c ]]; then
	SHIM=$ST/failshim.so
	read -ra pq_cflags <<<"$(pkg-config --cflags libpq 2>/dev/null)"
	if ! "${CC:-cc}" -std=c17 -Wall -Wextra -Werror -O1 -g -fPIC -shared \
		"${pq_cflags[@]}" "$EVPIPE_ROOT/tests/fault/failshim.c" \
		-ldl -o "$SHIM" 2>"$ST/cc.log"; then
		fail "failshim_builds" "$(head -c 600 "$ST/cc.log")"
		exit 1
	fi
fi
# The sanitized daemons want ASan's runtime first; the shim must come before it to be
# seen at all (it forwards to ASan's interceptors, so nothing is lost).
SHIM_ASAN=${ASAN_OPTIONS:-}:verify_asan_link_order=0

# open_eacces: open refused (EACCES) rather than failing (EIO).
STREAM_KINDS=(open open_eacces read write fsync rename link unlink mkdir opendir flock close malloc
	pq_connect pq_putcopydata pq_putcopyend pq_getresult pq_exec)
GEN_KINDS=(open open_eacces read write fsync rename link unlink mkdir opendir flock close malloc)
if [[ -n ${EVPIPE_FAIL_KINDS:-} ]]; then
	read -ra want <<<"$EVPIPE_FAIL_KINDS"
	keep() { local k w; for k in "$@"; do for w in "${want[@]}"; do [[ $k == "$w" ]] && echo "$k"; done; done; }
	mapfile -t STREAM_KINDS < <(keep "${STREAM_KINDS[@]}")
	mapfile -t GEN_KINDS < <(keep "${GEN_KINDS[@]}")
fi
DAEMONS=${EVPIPE_FAIL_DAEMONS:-evstream evgen}

# What a message naming the failed call looks like: the errno's text, and a word for the
# call, on one line.  libpq's drop: its own words for a peer that went away.
declare -A ERRTXT=(
	[open]='Input/output error' [open_eacces]='Permission denied' [read]='Input/output error' [write]='No space left on device'
	[fsync]='Input/output error' [rename]='Input/output error' [link]='Input/output error'
	[unlink]='Input/output error' [mkdir]='No space left on device'
	[opendir]='Input/output error' [flock]='No locks available'
	[close]='Input/output error' [malloc]='Cannot allocate memory|out of memory'
)
# ENOMEM's text already names the failed call (the allocation): any line with it will do.
PQDROP='server closed the connection|connection to server.*(lost|closed)|Broken pipe|no connection to the server|could not (send|receive) data|connection (is )?(bad|broken|lost|closed)|terminated abnormally|EOF'
for k in pq_connect pq_putcopydata pq_putcopyend pq_getresult pq_exec; do ERRTXT[$k]=$PQDROP; done
declare -A CALLW=(
	[open]='open' [open_eacces]='open' [read]='read' [write]='writ' [fsync]='fsync|fdatasync|sync' [rename]='renam|mov'
	[link]='link' [unlink]='unlink|remov|delet' [mkdir]='mkdir|creat|director'
	[opendir]='opendir|readdir|list|director' [flock]='flock|lock' [close]='clos'
	[malloc]='.' [pq_connect]='connect' [pq_putcopydata]='copy'
	[pq_putcopyend]='copy' [pq_getresult]='.' [pq_exec]='.'
)
named() { # KIND FILE: does FILE hold a line naming the call and its error?
	local e=${ERRTXT[$1]} c=${CALLW[$1]}
	grep -Eiq "($c).*($e)|($e).*($c)" "$2"
}
sanitizer_error() { grep -Eq 'ERROR: AddressSanitizer|runtime error:|ERROR: UndefinedBehaviorSanitizer' "$1"; }
leak_report() { grep -q 'ERROR: LeakSanitizer' "$1"; }

SLICES=$(q "SELECT to_regclass('evstream_slices') IS NOT NULL")
reset_db() {
	local t='events, event_rejects, evstream_batches, evstream_files'
	[[ $SLICES == t ]] && t+=', evstream_slices'
	q "TRUNCATE $t"
}

# --- the evstream spool: 4 files, 51 rows --------------------------------------------
# Expected by construction (independent of evstream): E holds "e|id" for each event that
# must be in events, "r|file|line|reason" for each reject, "f|file" twice (once from
# evstream_batches' files, once from evstream_files), all sorted.
SRC=$ST/src
mkdir -p "$SRC"
H='event_id,user_id,event_type,product_id,price,event_time'
id() { printf 'aaaaaaaa-0000-4000-8000-%012d' "$1"; }
EXP=$ST/expected_stream
: >"$EXP.raw"
put() { # FILE ROW [EXPECT]: append ROW to FILE; EXPECT "e" (a valid new event) or a reason
	local f=$1 row=$2 expect=${3:-}
	echo "$row" >>"$SRC/$f"
	local line; line=$(wc -l <"$SRC/$f")
	case $expect in
	'') ;;
	e) echo "e|${row%%,*}" >>"$EXP.raw" ;;
	*) echo "r|$f|$line|$expect" >>"$EXP.raw" ;;
	esac
}
ok() { echo "$(id "$1"),7,view,9,0.00,$2"; }
make_spool() {
	local f i
	for f in events_01.csv events_02.csv events_03.csv events_04.csv; do
		echo "$H" >"$SRC/$f"
		echo "f|$f" >>"$EXP.raw"; echo "f|$f" >>"$EXP.raw"
	done
	for i in $(seq 1 12); do put events_01.csv "$(ok "$i" "2026-03-01 12:00:$(printf %02d "$i")")" e; done
	put events_01.csv "$(ok 3 '2026-03-01 12:00:03')"	# duplicate within the file
	put events_01.csv "$(id 101),7,click,9,0.00,2026-03-01 12:00:20" event_type
	put events_01.csv "not-a-uuid,7,view,9,0.00,2026-03-01 12:00:21" event_id
	for i in $(seq 13 22); do put events_02.csv "$(ok "$i" "2026-03-01 12:10:$(printf %02d "$i")")" e; done
	put events_02.csv "$(ok 5 '2026-03-01 12:00:05')"	# duplicate across files
	put events_02.csv "$(id 102),7,purchase,9,-1.00,2026-03-01 12:10:30" price
	put events_02.csv "$(id 103),u7,view,9,0.00,2026-03-01 12:10:31" user_id
	for i in $(seq 23 30); do put events_03.csv "$(ok "$i" "2026-03-01 12:20:$(printf %02d "$i")")" e; done
	# watermark after file 2: 12:10:22 - 300 s = 12:05:22
	put events_03.csv "$(ok 31 '2026-03-01 11:00:00')" late
	put events_03.csv "$(ok 32 '2026-03-01 11:00:01')" late
	put events_03.csv "$(id 104),7,view,9,2026-03-01 12:20:40" column_count
	put events_03.csv "$(ok 20 '2026-03-01 12:10:20')"	# duplicate across files
	for i in $(seq 33 42); do put events_04.csv "$(ok "$i" "2026-03-01 12:30:$(printf %02d "$i")")" e; done
	put events_04.csv "$(ok 43 '2026-03-01 11:30:00')" late
	put events_04.csv "$(ok 35 '2026-03-01 12:30:35')"	# duplicate within the file
	put events_04.csv ",7,view,9,0.00,2026-03-01 12:30:50" event_id
	put events_04.csv "$(id 105),7,view,9,0.00,2026-13-01 12:30:51" event_time
	LC_ALL=C sort "$EXP.raw" >"$EXP"
}
make_spool

# Everything the database holds that the promise is about, one sorted list in the
# expected list's format (a row stored twice shows as a line twice).
db_state() {
	q "SELECT 'e|' || event_id FROM events
	   UNION ALL SELECT 'r|' || file || '|' || line_no || '|' || reason FROM event_rejects
	   UNION ALL SELECT 'f|' || f FROM evstream_batches, unnest(files) f
	   UNION ALL SELECT 'f|' || file FROM evstream_files" | LC_ALL=C sort
}
temps_left() { find "$@" -name '*.tmp' 2>/dev/null | wc -l; }
# Spool files by name wherever they are (root, archive/, quarantine/), one line each.
spool_files() {
	find "$1" -name '*.csv' -type f -printf '%f\n' | LC_ALL=C sort
}

# --- one faulty run and its aftermath ------------------------------------------------
# Globals a run leaves: R_SEEN R_INJ R_RC R_CLASS (ok | named | unnamed | crash | hang | leak)
# R_BAD (what broke in the state after the clean restart; empty: nothing).
run_shim() { # KIND K COUNTFILE ERRFILE CMD...
	local kind=$1 k=$2 cf=$3 err=$4
	shift 4
	local t0=$EPOCHREALTIME
	local shimkind=$kind errno_env=
	[[ $kind == open_eacces ]] && shimkind=open errno_env=EACCES
	rm -f "$cf"
	R_RC=0
	# The shim goes into the daemon only (env execs it), not into timeout, whose own
	# exit would write the count file too.
	timeout -k 5 "$RUN_TIMEOUT" env LD_PRELOAD="$SHIM" EVPIPE_FAIL_KIND="$shimkind" EVPIPE_FAIL_AT="$k" EVPIPE_FAIL_ERRNO="$errno_env" \
		EVPIPE_FAIL_COUNT_FILE="$cf" ASAN_OPTIONS="$SHIM_ASAN" "$@" >"$err" 2>&1 || R_RC=$?
	R_MS=$(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 ))
	R_SEEN=$(sed -n 's/.* seen=\([0-9]*\) .*/\1/p' "$cf" 2>/dev/null)
	R_INJ=$(sed -n 's/.* injected=\([01]\) .*/\1/p' "$cf" 2>/dev/null)
	: "${R_SEEN:=?}" "${R_INJ:=?}"
	if ((R_RC == 124 || R_RC == 137)); then R_CLASS=hang
	elif sanitizer_error "$err"; then R_CLASS=crash
	elif leak_report "$err"; then R_CLASS=leak
	elif ((R_RC > 128)) || [[ $R_INJ == '?' ]]; then R_CLASS=crash
	elif ((R_RC == 0)); then R_CLASS=ok
	elif named "$kind" "$err"; then R_CLASS=named
	else R_CLASS=unnamed; fi
}

stream_args() { # DIR
	printf '%s\n' --spool_dir="$1/spool" --checkpoint_dir="$1/ckpt" --conninfo="$EVPIPE_CONNINFO" \
		--trigger_interval=0.05 --retry_max=0.2 --max_files_per_trigger=1 --clean_source=archive \
		--log_level=warning --once
}

stream_run() { # KIND K
	local kind=$1 k=$2 d=$RUN_DIR args
	rm -rf "$d" && mkdir -p "$d/spool" && cp -p "$SRC"/*.csv "$d/spool/" || return 1
	reset_db
	mapfile -t args < <(stream_args "$d")
	run_shim "$kind" "$k" "$d/count" "$d/faulty.err" "$EVPIPE_BIN/evstream" "${args[@]}"
	# --once and exit 0 say "everything available is processed": all 4 files committed.
	R_DONE=$(q 'SELECT count(*) FROM evstream_files')
	R_BAD=
	if ! "$EVPIPE_BIN/evstream" "${args[@]}" >"$d/clean.err" 2>&1; then
		R_BAD+="clean restart failed: $(grep -v '^\s*$' "$d/clean.err" | tail -n 1 | cut -c1-200); "
	fi
	db_state >"$d/state"
	if ! cmp -s "$EXP" "$d/state"; then
		R_BAD+="database differs (missing: $(LC_ALL=C comm -23 "$EXP" "$d/state" | head -3 | tr '\n' ' ')"
		R_BAD+="extra: $(LC_ALL=C comm -13 "$EXP" "$d/state" | head -3 | tr '\n' ' ')); "
	fi
	local files; files=$(spool_files "$d/spool" | tr '\n' ' ')
	[[ $files == "events_01.csv events_02.csv events_03.csv events_04.csv " ]] ||
		R_BAD+="spool files: $files; "
	[[ -z $(ls -A "$d/spool/quarantine" 2>/dev/null) ]] ||
		R_BAD+="quarantined: $(find "$d/spool/quarantine" -type f -printf '%f ' | cut -c1-200); "
	(($(temps_left "$d/spool" "$d/ckpt") == 0)) ||
		R_BAD+="temporary left: $(find "$d/spool" "$d/ckpt" -name '*.tmp' | sed "s|$d/||" | tr '\n' ' '); "
	return 0
}

# evgen: --burst 3 files of 20 rows (invalid and duplicate rows among them), then a clean
# evgen writing one more file (its start removes stale temporaries), then evstream --once.
gen_run() { # KIND K
	local kind=$1 k=$2 d=$RUN_DIR args
	rm -rf "$d" && mkdir -p "$d/spool" || return 1
	reset_db
	run_shim "$kind" "$k" "$d/count" "$d/faulty.err" "$EVPIPE_BIN/evgen" --spool_dir="$d/spool" \
		--count=3 --burst --rows_per_file=20 --invalid_rate=0.1 --duplicate_rate=0.05 --log_level=info
	# Exit 0 says "wrote the 3 files asked for".
	R_DONE=$(sed -n 's/.* info: stopping: wrote \([0-9]*\) files.*/\1/p' "$d/faulty.err")
	R_BAD=
	if ! "$EVPIPE_BIN/evgen" --spool_dir="$d/spool" --count=1 --burst --rows_per_file=20 \
		--log_level=info >"$d/clean.err" 2>&1; then
		R_BAD+="evgen restart failed: $(tail -n 1 "$d/clean.err" | cut -c1-200); "
	fi
	# Files evgen says it wrote (name rows) and what the spool holds.
	sed -n 's/.* info: wrote \([^ ]*\) rows=\([0-9]*\) .*/\1 \2/p' "$d/faulty.err" "$d/clean.err" |
		LC_ALL=C sort >"$d/reported"
	local f n
	for f in "$d"/spool/*.csv; do
		[[ -e $f ]] || continue
		echo "${f##*/} $(($(wc -l <"$f") - 1))"
	done | LC_ALL=C sort >"$d/on_disk"
	if ! cmp -s "$d/reported" "$d/on_disk"; then
		R_BAD+="reported files differ from the spool (reported only: $(LC_ALL=C comm -23 "$d/reported" "$d/on_disk" | head -2 | tr '\n' ' ')"
		R_BAD+="on disk only: $(LC_ALL=C comm -13 "$d/reported" "$d/on_disk" | head -2 | tr '\n' ' ')); "
	fi
	(($(temps_left "$d/spool") == 0)) || R_BAD+="temporary left: $(find "$d/spool" -name '*.tmp' | sed "s|$d/||" | tr '\n' ' '); "
	mapfile -t args < <(stream_args "$d")
	if ! "$EVPIPE_BIN/evstream" "${args[@]}" --max_files_per_trigger=0 >"$d/stream.err" 2>&1; then
		R_BAD+="evstream over its spool failed: $(tail -n 1 "$d/stream.err" | cut -c1-200); "
	fi
	csv_valid_ids "$d/spool" | sed 's/^/e|/' >"$d/want_ids"
	q "SELECT 'e|' || event_id FROM events" | LC_ALL=C sort >"$d/got_ids"
	cmp -s "$d/want_ids" "$d/got_ids" ||
		R_BAD+="events differ from the files' valid ids ($(LC_ALL=C comm -3 "$d/want_ids" "$d/got_ids" | wc -l) lines); "
	n=$(q 'SELECT count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f')
	((n == 0)) || R_BAD+="$n files committed twice; "
	n=$(q 'SELECT count(*) FROM evstream_files')
	((n == $(wc -l <"$d/on_disk"))) || R_BAD+="evstream_files holds $n of $(wc -l <"$d/on_disk") files; "
	return 0
}

# --- the loop over kinds and k ---------------------------------------------------------
# Kinds run in parallel, EVPIPE_FAIL_JOBS at a time (default 3: most of a run is waiting,
# on the database or on evstream's own retry pause), each job with a database of its own
# (evpipe_wN, made from evpipe) and a run directory of its own.  A job writes its checks,
# its line of the table and its findings to files; they are replayed in order at the end.
JOBS=${EVPIPE_FAIL_JOBS:-3}
OUTD=$ST/out
mkdir -p "$OUTD"
RUN_DIR=$ST/run

# The k after K: every k up to MAXK (all of them in long mode), then SAMPLES jumps
# spread over the rest of the N calls a clean run makes, then N + 1.
next_k() { # K N
	local k=$1 n=$2 step
	if ((MAXK == 0 || k < MAXK || k >= n)); then echo $((k + 1)); return; fi
	step=$(( (n - MAXK) / (SAMPLES + 1) ))
	if ((SAMPLES == 0 || step < 1)); then echo $((n + 1)); return; fi
	k=$((k + step / 2 + 1 + RANDOM % step))
	((k > n)) && k=$((n + 1))
	echo "$k"
}

run_kind() { # DAEMON KIND
	local daemon=$1 kind=$2 k n fn hangs=0 tried=0 inj=0 ok=0 named_n=0 unnamed=() crash=() leak=() bad=() silent=() config_exit=() undone=()
	fn=stream_run
	[[ $daemon == evgen ]] && fn=gen_run
	[[ $daemon == evstream && $kind == pq_* ]] && local MAXK=$MAXK_PQ	# next_k reads it
	# A counting run (k = 0): how many calls of this kind a clean run makes.
	$fn "$kind" 0
	n=$R_SEEN
	echo "counting run: $(cat "$RUN_DIR/count" 2>/dev/null) exit $R_RC"
	if [[ $n == '?' ]]; then
		fail "fail_every_call_${daemon}_${kind}_counts" "the counting run left no count (exit $R_RC): $(tail -n 2 "$RUN_DIR/faulty.err" | tr '\n' ' ')"
		return
	fi
	[[ -n $R_BAD ]] && bad+=("k=0: $R_BAD")
	k=1
	while :; do
		$fn "$kind" "$k"
		tried=$((tried + 1))
		echo "  $daemon $kind k=$k: $(cat "$RUN_DIR/count" 2>/dev/null | cut -d' ' -f2,4,5), exit $R_RC, $R_CLASS, ${R_MS} ms${R_BAD:+, BROKEN: $R_BAD}"
		if [[ $R_INJ == 0 ]]; then	# k went past the last call: this run is the clean one
			[[ -n $R_BAD ]] && bad+=("k=$k (uninjected): $R_BAD")
			break
		fi
		[[ $R_INJ == 1 ]] && inj=$((inj + 1))
		want_done=4
		[[ $daemon == evgen ]] && want_done=3
		if ((R_RC == 0)) && [[ $R_DONE != "$want_done" ]]; then
			undone+=("k=$k: exit 0 after the failed $(sed -n 's/.* call=\([^ ]*\) .*/\1/p' "$RUN_DIR/count"), but $daemon did ${R_DONE:-?} of $want_done files")
		fi
		case $R_CLASS in
		ok) ok=$((ok + 1))
			grep -Eiq "${ERRTXT[$kind]}" "$RUN_DIR/faulty.err" || silent+=("k=$k: exit 0 without a word of the failed $(sed -n 's/.* call=\([^ ]*\) .*/\1/p' "$RUN_DIR/count")") ;;
		named) named_n=$((named_n + 1)) ;;
		unnamed) unnamed+=("k=$k: exit $R_RC, $(grep -v '^\s*$' "$RUN_DIR/faulty.err" | tail -n 1 | cut -c1-160)") ;;
		leak) leak+=("k=$k: leak, exit $R_RC: $(grep -m1 'SUMMARY' "$RUN_DIR/faulty.err" | cut -c1-120)") ;;
		crash | hang) crash+=("k=$k: $R_CLASS, exit $R_RC: $(grep -m1 -E 'ERROR: |runtime error|SUMMARY' "$RUN_DIR/faulty.err" | cut -c1-160)") ;;
		esac
		[[ -n $R_BAD ]] && bad+=("k=$k: $R_BAD")
		# Exit 2 is "bad configuration": the units' RestartPreventExitStatus=2 means systemd
		# would not restart after this fault.  A finding, not (yet) a check.
		((R_RC == 2)) && config_exit+=("k=$k: exit 2 (systemd does not restart) after $(sed -n 's/.* call=\([^ ]*\) .*/\1/p' "$RUN_DIR/count") failed")
		# Short mode: a kind that hung three times has made its point; sample the rest.
		if [[ $LONG != 1 && $R_CLASS == hang ]] && ((++hangs >= 3 && MAXK > 0 && k < MAXK)); then
			k=$MAXK
		fi
		k=$(next_k "$k" "$n")
		# A run that reached k while the counting run made fewer calls: keep going (the
		# faulty path may call more), bounded so a loop in the daemon cannot hold us.
		((k > 100000)) && { bad+=("k ran past 100000"); break; }
	done
	local name="fail_every_call_${daemon}_${kind}"
	join() { local IFS=';'; echo "$*"; }
	if ((${#crash[@]})); then fail "${name}_no_crash_no_hang" "$(join "${crash[@]:0:5}")"
	else pass "${name}_no_crash_no_hang"; fi
	if ((${#bad[@]})); then fail "${name}_state_after_restart" "${#bad[@]} runs: $(join "${bad[@]:0:4}")"
	else pass "${name}_state_after_restart"; fi
	# evstream --once exits 0 only when every file available is committed; evgen only when
	# it wrote --count files.  Exit 0 otherwise tells a backfill script it is done when it is not.
	if ((${#undone[@]})); then fail "${name}_exit_0_means_done" "${#undone[@]} runs: $(join "${undone[@]:0:3}")"
	else pass "${name}_exit_0_means_done"; fi
	if ((${#unnamed[@]})); then fail "${name}_message_names_the_call" "${#unnamed[@]} runs: $(join "${unnamed[@]:0:3}")"
	else pass "${name}_message_names_the_call"; fi
	for x in "${unnamed[@]}" "${crash[@]}" "${leak[@]}" "${bad[@]}" "${undone[@]}" "${config_exit[@]}" "${silent[@]}"; do
		echo "$daemon $kind $x"
	done >"$OUTD/$daemon.$kind.findings"
	((${#leak[@]})) && echo "note: $daemon $kind: LeakSanitizer report in ${#leak[@]} faulty runs (${leak[0]})"
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$daemon" "$kind" "$n" "$tried" "$inj" "$ok" \
		"${#silent[@]}/${#undone[@]}" "$named_n" "${#unnamed[@]}" "$((${#crash[@]}))/${#leak[@]}" "${#bad[@]}" >"$OUTD/$daemon.$kind.row"
	echo "$daemon $kind: $n calls in a clean run, $tried runs, $inj injected: exit 0 $ok (${#silent[@]} without a word)," \
		"named $named_n, unnamed ${#unnamed[@]}, crash/hang ${#crash[@]}, leak ${#leak[@]}, state broken ${#bad[@]}"
}

TABLE=$ST/table
: >"$TABLE"
FINDINGS=$ST/findings
: >"$FINDINGS"

# The expectation itself, checked once against a clean run (no shim at all).
stream_run none 0
check_eq "fail_every_call_reference_run_matches_construction" "" "$R_BAD"
check_eq "fail_every_call_expected_counts" "40 10 8" \
	"$(grep -c '^e|' "$EXP") $(grep -c '^r|' "$EXP") $(grep -c '^f|' "$EXP")"

ITEMS=()
for daemon in $DAEMONS; do
	kinds=("${STREAM_KINDS[@]}")
	[[ $daemon == evgen ]] && kinds=("${GEN_KINDS[@]}")
	for kind in "${kinds[@]}"; do ITEMS+=("$daemon:$kind"); done
done
for ((w = 1; w <= JOBS; w++)); do
	pg_psql -d postgres -c "CREATE DATABASE evpipe_w$w TEMPLATE evpipe" ||
		{ fail "fail_every_call_worker_databases" "cannot create evpipe_w$w"; exit 1; }
done
START=$SECONDS
declare -A SLOT_OF=()	# pid -> worker slot
free=()
for ((w = 1; w <= JOBS; w++)); do free+=("$w"); done
for i in "${!ITEMS[@]}"; do
	item=${ITEMS[i]}
	if ((${#free[@]} == 0)); then
		wait -n -p done_pid
		free+=("${SLOT_OF[$done_pid]}")
		unset "SLOT_OF[$done_pid]"
	fi
	w=${free[0]}
	free=("${free[@]:1}")
	(
		export PGDATABASE=evpipe_w$w
		RUN_DIR=$ST/w$w
		RANDOM=$((SEED + i * 7919))	# each kind its own sequence, whichever job runs it
		run_kind "${item%%:*}" "${item#*:}"
	) >"$OUTD/${item%%:*}.${item#*:}.out" 2>&1 &
	SLOT_OF[$!]=$w
done
wait
ELAPSED=$((SECONDS - START))
for item in "${ITEMS[@]}"; do
	while IFS= read -r line; do
		case $line in
		'PASS: '*) pass "${line#PASS: }" ;;
		'FAIL: '*) line=${line#FAIL: }; fail "${line%%: *}" "${line#*: }" ;;
		*) echo "$line" ;;
		esac
	done <"$OUTD/${item%%:*}.${item#*:}.out"
	cat "$OUTD/${item%%:*}.${item#*:}.row" >>"$TABLE" 2>/dev/null ||
		fail "fail_every_call_${item%%:*}_${item#*:}_finished" "the job left no result"
	cat "$OUTD/${item%%:*}.${item#*:}.findings" >>"$FINDINGS" 2>/dev/null
done
RUNS=$(awk -F'\t' '{ s += $4 } END { print s + 0 }' "$TABLE")

# --- the table ---------------------------------------------------------------------------
OUT=$REL_DIR/fail_every_call_kinds.md
mkdir -p "$REL_DIR"
{
	echo "Fail the k-th call (tests/system/fail_every_call.sh, $([[ $LONG == 1 ]] && echo "every k" || echo "k <= $MAXK ($MAXK_PQ for evstream's libpq kinds), then $SAMPLES sampled"), seed $SEED, $RUNS faulty runs in ${ELAPSED} s)."
	echo "*calls*: calls of the kind a clean run makes from the daemon's own code; *runs*: faulty runs"
	echo "(the last reaches no k); *exit 0*: the daemon recovered, or says so (*silent/undone*: without printing"
	echo "the errno / without having done all its work: evstream --once all 4 files committed, evgen 3 files);"
	echo "*named* / *unnamed*: exit non-zero with / without a line naming the call and its error;"
	echo "*crash/leak*: sanitizer or signal deaths and hangs / LeakSanitizer reports; *state*: runs after"
	echo "which the clean restart did not reach the promised state."
	echo
	echo "| daemon | kind | calls | runs | injected | exit 0 | silent/undone | named | unnamed | crash/leak | state |"
	echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
	while IFS=$'\t' read -r a b c d e f g h i j l; do
		echo "| $a | $b | $c | $d | $e | $f | $g | $h | $i | $j | $l |"
	done <"$TABLE"
} >"$OUT"
cat "$OUT"
echo
if [[ -s $FINDINGS ]]; then
	echo "findings ($(wc -l <"$FINDINGS")):"
	sed 's/^/  /' "$FINDINGS" | cut -c1-400
fi
lost=$(awk -F'\t' '{ s += $11 } END { print s + 0 }' "$TABLE")
# For tests/RELIABILITY.md: lost = runs after which the state was not the promised one
# (missing, extra or doubled rows and files, temporaries); duplicated is among them.
rel_record fail_every_call "$RUNS" "n/a" "n/a" "n/a" "$lost" "n/a"
echo "fail_every_call: $RUNS faulty runs in $ELAPSED s"
