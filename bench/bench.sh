#!/usr/bin/env bash
# bench.sh — evstream side by side with the plain ways of loading the same CSV files
# into PostgreSQL, on a throwaway cluster (tests/lib/pg.sh) with the real schema.
#
#   bench/bench.sh [--quick]        `make bench` / `make bench-quick`
#
# Sections, all printed as one markdown document (and written to $BENCH_OUT if set):
#   1. backfill   evgen --burst --seed: FILES x ROWS rows, 1 % duplicates, 0.5 % invalid.
#                 The sessions axis: for each N in BENCH_SESSIONS, evstream --once
#                 --copy_sessions=N (unlimited files per trigger) and, beside it, N psql
#                 \copy at once over the cleaned rows (valid only, first occurrence of
#                 each event_id) cut into N parts: the bound for N sessions.  N = 1 is one
#                 \copy of the whole cleaned file, the reference; pgloader loads the same
#                 file (and, with BENCH_PER_FILE=1, psql \copy per cleaned file).  Each run
#                 on an empty table after a CHECKPOINT; median of RUNS.  Wall s, rows/s,
#                 throughput ratios, server and client CPU, client peak RSS, sessions.
#   2. latency    evgen at 20 files/s x 500 rows, evstream with trigger_interval 1 s and
#                 100 ms: a file's name carries its UTC creation time (µs), its batch's
#                 log line the time the batch was committed and checkpointed (ms).
#   3. memory     peak RSS of evstream (/usr/bin/time, and VmRSS sampled every 0.1 s):
#                 (a) the backfill of (1), each N; (b) one file holding all FILES x ROWS
#                 rows; (c) streaming the same files 5 per trigger, 5-minute watermark.
#   4. growth     evstream --once on the first 10 %, 30 % and 100 % of the files.
#   5. history    HISTORY files committed and left in the spool (clean_source = off, the
#                 default), then evstream idle for 10 s (CPU per trigger) and streaming
#                 one 100-row file per batch (ms, CPU and bytes written per batch).
#   6. gzip       the spool's files gzip -6'ed (before timing) beside the plain files, each
#                 loaded by evstream --once: seconds, CPU, and the CPU cost per row of
#                 reading .csv.gz ("n/a" when this evstream does not read .csv.gz).
#
# Every table's figures also go to BENCH_DATA as TSV (one file per table, plus the RSS
# series sampled every 0.1 s and the per-file latencies), each headed by a "# source:"
# line naming the run; bench/plot.sh then draws them as SVG into BENCH_PLOTS, and the
# markdown links each plot under its table.
#
# Knobs (environment): EVPIPE_RELEASE_BIN (directory of evgen and evstream, default the
# repository root), BENCH_FILES (1000; --quick 100), BENCH_ROWS (10000), BENCH_RUNS (3;
# --quick 1), BENCH_SESSIONS (the axis, default "1 2 4 $(nproc)"; deduplicated, and 1 is
# always added: one \copy is the reference), BENCH_LATENCY_SECONDS (60; --quick 8),
# BENCH_OUT (a file for the markdown), BENCH_PGLOADER=0 (skip pgloader), BENCH_PER_FILE=1
# (add psql \copy per file), BENCH_HISTORY (500000; --quick 50000), BENCH_SECTIONS
# (default "backfill latency memory growth history gzip"), BENCH_DATA and BENCH_PLOTS
# (the TSV and SVG directories, default build/bench/data and build/bench/plots; their
# *.tsv and *.svg are replaced).
set -uo pipefail

QUICK=0
[[ ${1:-} == --quick ]] && QUICK=1
EVPIPE_ROOT=${EVPIPE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
export EVPIPE_ROOT
BIN=${EVPIPE_RELEASE_BIN:-$EVPIPE_ROOT}
FILES=${BENCH_FILES:-$((QUICK ? 100 : 1000))}
ROWS=${BENCH_ROWS:-10000}
RUNS=${BENCH_RUNS:-$((QUICK ? 1 : 3))}
LAT_SECS=${BENCH_LATENCY_SECONDS:-$((QUICK ? 8 : 60))}
SECTIONS=${BENCH_SECTIONS:-backfill latency memory growth history gzip}
HISTORY=${BENCH_HISTORY:-$((QUICK ? 50000 : 500000))}
OUT=${BENCH_OUT:-}
DATA=${BENCH_DATA:-$EVPIPE_ROOT/build/bench/data}
PLOTS=${BENCH_PLOTS:-$EVPIPE_ROOT/build/bench/plots}
PER_FILE=${BENCH_PER_FILE:-0}
# shellcheck disable=SC2086  # a list of numbers
SESSIONS=$(printf '%s\n' 1 ${BENCH_SESSIONS:-1 2 4 $(nproc)} | sort -n -u | tr '\n' ' ')
SESSIONS=${SESSIONS% }
for n in $SESSIONS; do
	if ! [[ $n =~ ^[0-9]+$ ]] || ((n < 1 || n > 64)); then
		echo "bench: BENCH_SESSIONS: '$n' is not a number of sessions (1..64)" >&2
		exit 1
	fi
done
COLS="event_id, user_id, event_type, product_id, price, event_time"
# One postgresql.conf for every contender: a server sized for bulk loads, not the tests'
# 32 MB.  fsync and synchronous_commit stay on: every contender pays for durable commits.
GUCS=("shared_buffers = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
	"maintenance_work_mem = 256MB")

for d in evgen evstream; do
	[[ -x $BIN/$d ]] || { echo "bench: $BIN/$d not built (make)" >&2; exit 1; }
done
# evstream's default copy_sessions, as its --help states it: the memory, latency and
# growth sections run with it.
EVS_DEF=$("$BIN/evstream" --help 2>&1 |
	awk '/--copy_sessions=/ { getline; if (match($0, /default: [0-9]+/)) print substr($0, RSTART + 9, RLENGTH - 9) }')
[[ -n $EVS_DEF ]] || { echo "bench: $BIN/evstream --help names no copy_sessions default" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "bench: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

source "$EVPIPE_ROOT/tests/lib/pg.sh"

note() { echo "bench: $*" >&2; }
md() { printf '%s\n' "$*" >>"$MD"; }
now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# Median of numbers given as arguments (the lower middle for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
q() { PGTZ=UTC pg_psql -c "$1"; }
fmt_int() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
wait_for() {	# SECONDS CMD...: poll CMD every 0.2 s until it succeeds
	local until=$((SECONDS + $1)); shift
	until "$@"; do
		((SECONDS < until)) || return 1
		sleep 0.2
	done
}
fmt_rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

pg_start "${GUCS[@]}" || { note "could not start the cluster"; exit 1; }
tmpdir W
MD=$W/results.md
: >"$MD"
REV=$(git -C "$EVPIPE_ROOT" describe --always --dirty 2>/dev/null || echo '?')

# --- the figures as data, for bench/plot.sh -----------------------------------------
# One TSV per table in $DATA: a "# source:" line naming the run (plot.sh prints it under
# each plot, so a figure never loses where it came from), a header line, one line per
# table row, "-" where a figure is missing.  The markdown stays the report.
mkdir -p "$DATA" "$PLOTS" || { note "cannot create $DATA or $PLOTS"; exit 1; }
rm -f "$DATA"/*.tsv "$PLOTS"/*.svg
SOURCE="bench.sh$( ((QUICK)) && echo ' --quick'), $FILES files x $ROWS rows, $RUNS run(s), evpipe $REV, $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M') UTC"
tsv_head() {	# NAME COLUMN...: starts $DATA/NAME.tsv
	local f=$DATA/$1.tsv IFS=$'\t'
	shift
	printf '# source: %s\n%s\n' "$SOURCE" "$*" >"$f" || note "cannot write $f; its plot will be missing"
}
tsv_row() {	# NAME FIELD...: one line of $DATA/NAME.tsv
	local f=$DATA/$1.tsv IFS=$'\t'
	shift
	printf '%s\n' "$*" >>"$f" || note "cannot write $f; its plot will be missing"
}
# An RSS series sampled by sample_rss ("ms<TAB>kB" lines) as $DATA/rss_NAME.tsv in seconds
# and MB, headed by TITLE (the plot's legend).
rss_series() {	# NAME TITLE SAMPLES
	tsv_head "rss_$1" seconds "$2"
	awk -F'\t' '{ printf "%.2f\t%.1f\n", $1 / 1000, $2 / 1024 }' "$3" >>"$DATA/rss_$1.tsv" ||
		note "cannot write $DATA/rss_$1.tsv; its plot will be missing"
}
# The markdown link to plot NAME, written under its table; links to plots that were not
# drawn are taken out at the end.  Relative to the markdown's directory when it is written
# to a file (bench/results.md -> plots/NAME.svg).
if [[ -n $OUT ]]; then
	PLOT_LINK=$(realpath -m --relative-to="$(dirname "$OUT")" "$PLOTS")
else
	PLOT_LINK=$(realpath -m "$PLOTS")
fi
md_plot() { md "![$2]($PLOT_LINK/$1.svg)"; md ""; }

# CPU seconds the cluster has used: the postmaster with its reaped children (every
# backend that has exited) plus the live children.  Other load on the machine stretches
# wall times; CPU seconds say what each contender asked of the server.
server_cpu() {
	local pm p t=0 hz
	hz=$(getconf CLK_TCK)
	pm=$(head -n 1 "$PG_DATA/postmaster.pid")
	for p in "$pm" $(pgrep -P "$pm"); do
		t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
	done
	awk -v t="$t" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'
}

# A timed run starts on empty tables with nothing dirty in shared buffers.
reset_db() {
	pg_psql -c 'TRUNCATE events, event_rejects, evstream_files, evstream_batches, evstream_slices' &&
		pg_psql -c 'CHECKPOINT'
}

machine_line() {
	local cpu mem pgv
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
	pgv=$(pg_psql -c 'SHOW server_version')
	echo "$(uname -srm), $cpu, $(nproc) cores, $mem RAM; PostgreSQL $pgv;" \
		"evpipe $REV;" \
		"load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- the spool and its cleaned copy -------------------------------------------------
SPOOL=$W/spool CLEAN=$W/clean ALL=$W/all.csv
make_spool() {
	local t0
	mkdir -p "$SPOOL" "$CLEAN"
	t0=$(now)
	"$BIN/evgen" --spool_dir="$SPOOL" --burst --seed=42 --count="$FILES" \
		--rows_per_file="$ROWS" --duplicate_rate=0.01 --invalid_rate=0.005 \
		--log_level=warning || { note "evgen failed"; exit 1; }
	note "spool: $FILES files x $ROWS rows in $(since "$t0") s"
	# Valid rows only (each of evgen's invalid kinds fails one of these tests), and only
	# the first occurrence of an event_id, in name order: what evstream keeps.
	t0=$(now)
	(cd "$SPOOL" && ls -1 | LC_ALL=C sort) | awk -v spool="$SPOOL" -v clean="$CLEAN" -v all="$ALL" '
		# mawk has no {n} intervals: lengths and positions instead.
		function ok(   id, m) {
			id = $1; m = substr($6, 6, 2) + 0
			return NF == 6 && length(id) == 36 && gsub(/-/, "", id) == 4 && id ~ /^[0-9a-f]+$/ &&
			    substr($1, 9, 1) "" substr($1, 14, 1) substr($1, 19, 1) substr($1, 24, 1) == "----" &&
			    $2 ~ /^[0-9]+$/ && $2 + 0 > 0 && ($3 == "view" || $3 == "purchase") &&
			    $4 ~ /^[0-9]+$/ && $4 + 0 > 0 && $5 ~ /^[0-9]+(\.[0-9][0-9]?)?$/ &&
			    $6 ~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]/ &&
			    m >= 1 && m <= 12
		}
		BEGIN { FS = "," }
		{
			in_f = spool "/" $0; out_f = clean "/" $0; line = 0
			while ((getline row < in_f) > 0) {
				line++
				if (line == 1) { print row > out_f; if (!hdr++) print row > all; continue }
				$0 = row
				if (!ok() || seen[$1]++) continue
				print row > out_f; print row > all; kept++
			}
			close(in_f); close(out_f)
		}
		END { print kept > "/dev/stderr" }' 2>"$W/clean.count"
	CLEAN_ROWS=$(tail -n 1 "$W/clean.count")
	note "cleaned copy: $CLEAN_ROWS valid unique rows in $(since "$t0") s"
}

# --- contenders: each prints "seconds peak_rss_kb user_s sys_s" and leaves the rows in events
T_FMT='%e %M %U %S'	# /usr/bin/time: wall, maximum resident set size (kB), user and system CPU

# VmRSS (kB) of PID into RSS_KB, without a fork: the sampler must not load the machine.
rss_kb() {
	local k v _
	RSS_KB=
	while read -r k v _; do
		[[ $k == VmRSS: ]] && { RSS_KB=$v; return 0; }
	done 2>/dev/null <"/proc/$1/status"
	return 1
}

# True while PID exists and is not a zombie (a reaped or dead process fails).
alive() {
	local _p _c st
	# 2>/dev/null first: it must be in place before the open that may fail.
	read -r _p _c st _ 2>/dev/null <"/proc/$1/stat" && [[ $st != Z ]]
}

# Until every TIME_PID (a /usr/bin/time) has ended, every 0.1 s: the summed VmRSS of their
# commands (each one's child) into OUT as "ms<TAB>kB", ms since the sampler started.
sample_rss() {	# OUT TIME_PID...
	local out=$1 t0 tp p c sum any
	local -A child=()
	shift
	t0=${EPOCHREALTIME/[.,]/}
	: >"$out"
	while :; do
		sum=0 any=0
		for tp in "$@"; do
			alive "$tp" || continue
			any=1
			if [[ -z ${child[$tp]:-} ]]; then
				# "PID " without a newline: read fails at the end, yet sets p.
				p=
				read -r p _ 2>/dev/null <"/proc/$tp/task/$tp/children"
				[[ -n $p ]] && child[$tp]=$p
			fi
			# Until its exec the child is a copy of time(1): not yet the command.
			p=${child[$tp]:-} c=
			[[ -n $p ]] && read -r c 2>/dev/null <"/proc/$p/comm"
			[[ -n $c && $c != time ]] && rss_kb "$p" && sum=$((sum + RSS_KB))
		done
		((any)) || break
		((sum == 0)) || printf '%d\t%d\n' $(((${EPOCHREALTIME/[.,]/} - t0) / 1000)) "$sum" >>"$out"
		sleep 0.1
	done
}

# CMD... under /usr/bin/time (its figures into $W/time), the RSS of CMD's own process
# sampled into $W/rss.last (sample_rss).  Returns CMD's status.
timed_sampled() {
	local tp
	/usr/bin/time -f "$T_FMT" -o "$W/time" "$@" &
	tp=$!
	sample_rss "$W/rss.last" "$tp"
	wait "$tp"
}

run_evstream() {	# SPOOL_DIR [extra evstream options, after --max_files_per_trigger=0]
	local spool=$1 ck=$W/ckpt.$RANDOM
	shift
	timed_sampled "$BIN/evstream" --spool_dir="$spool" --checkpoint_dir="$ck" \
		--conninfo="$EVPIPE_CONNINFO" --once --max_files_per_trigger=0 --log_level=warning \
		"$@" 2>>"$W/evstream.log" ||
		{ note "evstream failed (see below)"; tail -5 "$W/evstream.log" >&2; }
	rm -rf "$ck"
	tail -n 1 "$W/time"
}

# One psql \copy per FILE, all started at once (the first file has the header line, the
# others none); timed from the start of the first to the end of the last.  Peak RSS is
# the sum of the processes' peaks, CPU the sum of their CPU; their summed RSS over time
# goes to $W/rss.last (sampled in the background, so it adds nothing to the time).
run_copy_files() {
	local t0 i=0 hdr=true rc=0 f p secs sp pids=()
	rm -f "$W"/time.copy.*
	t0=$(now)
	for f in "$@"; do
		/usr/bin/time -f "$T_FMT" -o "$W/time.copy.$i" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
			-c "\\copy events ($COLS) FROM '$f' WITH (FORMAT csv, HEADER $hdr)" &
		pids+=($!)
		hdr=false i=$((i + 1))
	done
	sample_rss "$W/rss.last" "${pids[@]}" &
	sp=$!
	for p in "${pids[@]}"; do
		wait "$p" || rc=1
	done
	secs=$(since "$t0")
	wait "$sp"
	((rc == 0)) || note "a psql \\copy of $* failed"
	# The last line of each: /usr/bin/time puts "Command exited with ..." above a failure's.
	for f in "$W"/time.copy.*; do tail -n 1 "$f"; done |
		awk -v s="$secs" '{ r += $2; u += $3; k += $4 } END { printf "%s %d %.2f %.2f\n", s, r, u, k }'
}

# The cleaned concatenated file cut into N parts by lines (split -n l/N: whole lines,
# near-equal sizes; the first part keeps the header), made once, before any timing.
split_parts() {
	local n=$1
	((n == 1)) && return 0
	rm -rf "$W/parts.$n"
	mkdir -p "$W/parts.$n"
	split -n "l/$n" -d -a 3 "$ALL" "$W/parts.$n/p." || { note "split of $ALL failed"; exit 1; }
}
parts_of() { if (($1 == 1)); then echo "$ALL"; else echo "$W/parts.$1"/p.*; fi; }
run_copy_split() {	# N: N psql \copy sessions at once over the N parts
	local -a f
	read -ra f <<<"$(parts_of "$1")"
	run_copy_files "${f[@]}"
}

run_copy_per_file() {
	local t0 f
	t0=$(now)
	for f in "$CLEAN"/*.csv; do
		"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
			-c "\\copy events ($COLS) FROM '$f' WITH (FORMAT csv, HEADER true)" ||
			{ note "psql \\copy of $f failed"; break; }
	done
	echo "$(since "$t0") - - -"
}

run_pgloader() {
	cat >"$W/load.pgl" <<-EOF2
	LOAD CSV
	    FROM '$ALL' ($COLS)
	    INTO postgresql://postgres@127.0.0.1:$PGPORT/evpipe
	    TARGET TABLE events ($COLS)
	    WITH skip header = 1, fields terminated by ','
	;
	EOF2
	timed_sampled pgloader --quiet --root-dir "$W/pgloader" "$W/load.pgl" \
		>>"$W/pgloader.log" 2>&1 || { note "pgloader failed"; tail -20 "$W/pgloader.log" >&2; }
	tail -n 1 "$W/time"
}

# Connections the cluster has accepted into evpipe, once no other client is connected:
# "QUERIES SESSIONS", QUERIES the polls before the one that read SESSIONS.  A backend
# leaves pg_stat_activity only after flushing its statistics, so by then every finished
# session is counted (and the server CPU of its backend reaped); each poll is a session
# of its own, counted from the next reading on.
settled_sessions() {
	local k=0 others total
	while IFS='|' read -r others total < <(q "SELECT (SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()),
		(SELECT sessions FROM pg_stat_database WHERE datname = current_database())") &&
		((others > 0 && k < 50)); do
		k=$((k + 1))
		sleep 0.2
	done
	((others == 0)) || note "$others sessions still open 10 s after the run ended"
	echo "$k $total"
}

# One timed run of contender NAME (FUNCTION [ARGS]) on empty tables; its wall seconds,
# peak RSS, CPU seconds and sessions opened are appended to the R_* lists, and B_OK[NAME]
# drops to 0 if events does not end with exactly CLEAN_ROWS rows.
declare -A R_SECS R_RSS R_SCPU R_CCPU R_CONN B_SECS B_ALL B_OK B_SCPU B_CCPU B_RSS B_RSSMAX B_CONN
run_once() {
	local name=$1 out s r u k c0 n0 n1 got
	shift
	reset_db >/dev/null || exit 1
	read -r _ n0 <<<"$(settled_sessions)"
	c0=$(server_cpu)
	out=$("$@")
	read -r k n1 <<<"$(settled_sessions)"
	R_SCPU[$name]+=" $(awk -v a="$c0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')"
	# Less the first reading's own session and the second's polls.
	R_CONN[$name]+=" $((n1 - n0 - 1 - k))"
	read -r s r u k <<<"$out"
	R_SECS[$name]+=" $s"
	[[ $r != - ]] && R_RSS[$name]+=" $r"
	[[ $u != - ]] && R_CCPU[$name]+=" $(awk -v u="$u" -v k="$k" 'BEGIN { printf "%.2f", u + k }')"
	got=$(q 'SELECT count(*) FROM events')
	[[ -n ${B_OK[$name]:-} ]] || B_OK[$name]=1
	if [[ $got != "$CLEAN_ROWS" ]]; then
		B_OK[$name]=0
		note "$name: $got rows in events, expected $CLEAN_ROWS"
	fi
	note "$name: $s s"
}

# Medians of what run_once collected for NAME (and the largest peak RSS).
summarise() {
	local name=$1
	# shellcheck disable=SC2086  # the lists are numbers separated by spaces
	B_SECS[$name]=$(median ${R_SECS[$name]})
	B_ALL[$name]=${R_SECS[$name]# }
	# shellcheck disable=SC2086
	B_SCPU[$name]=$(median ${R_SCPU[$name]})
	# shellcheck disable=SC2086
	B_CONN[$name]=$(median ${R_CONN[$name]})
	B_CCPU[$name]=- B_RSS[$name]=- B_RSSMAX[$name]=-
	# shellcheck disable=SC2086
	[[ -n ${R_CCPU[$name]:-} ]] && B_CCPU[$name]=$(median ${R_CCPU[$name]})
	if [[ -n ${R_RSS[$name]:-} ]]; then
		# shellcheck disable=SC2086
		B_RSS[$name]=$(median ${R_RSS[$name]})
		# shellcheck disable=SC2086
		B_RSSMAX[$name]=$(printf '%s\n' ${R_RSS[$name]} | sort -g | tail -n 1)
	fi
}

mb() { awk -v k="$1" 'BEGIN { if (k == "-" || k == "") print "-"; else printf "%.0f", k / 1024 }'; }
# "met" or "missed": is A >= B (or, with a third argument "le", A <= B)?
goal() {
	awk -v a="$1" -v b="$2" -v op="${3:-ge}" 'BEGIN {
		if (a == "-" || a == "") { print "no figure"; exit }
		ok = op == "le" ? a + 0 <= b + 0 : a + 0 >= b + 0
		print ok ? "met" : "**missed**" }'
}

section_backfill() {
	local name i n pgl=0 names=()
	if [[ ${BENCH_PGLOADER:-1} != 0 ]] && command -v pgloader >/dev/null; then
		pgl=1
	else
		note "pgloader skipped (BENCH_PGLOADER=0, or not installed: make bench installs it)"
	fi
	for n in $SESSIONS; do
		split_parts "$n"
		names+=("evs.$n" "copy.$n")
	done
	((pgl)) && names+=(pgloader)
	((PER_FILE)) && names+=(copy_per_file)
	# Round robin: a burst of other work on the machine lands on every contender alike.
	for ((i = 1; i <= RUNS; i++)); do
		note "backfill: round $i of $RUNS"
		for n in $SESSIONS; do
			run_once "evs.$n" run_evstream "$SPOOL" --copy_sessions="$n"
			cp "$W/rss.last" "$W/rss.evs.$n.$i"
			((i == 1)) && rss_series "backfill_evs_$n" "evstream --copy_sessions=$n" "$W/rss.last"
			if [[ -z ${EVSTREAM_REJECTS:-} ]]; then
				EVSTREAM_REJECTS=$(q 'SELECT count(*) FROM event_rejects')
				EVSTREAM_DUPS=$(q 'SELECT (SELECT sum(rows_read) FROM evstream_batches) -
					(SELECT count(*) FROM events) - (SELECT count(*) FROM event_rejects)')
			fi
			run_once "copy.$n" run_copy_split "$n"
			((i == 1)) && rss_series "backfill_copy_$n" "$(((n == 1)) && echo 'one psql' ||
				echo "$n psql at once (summed)")" "$W/rss.last"
		done
		if ((pgl)); then
			run_once pgloader run_pgloader
			((i == 1)) && rss_series backfill_pgloader pgloader "$W/rss.last"
		fi
		((PER_FILE)) && run_once copy_per_file run_copy_per_file
	done
	for name in "${names[@]}"; do
		[[ -n ${R_SECS[$name]:-} ]] && summarise "$name"
	done
	for n in $SESSIONS; do
		((n == 1)) || rm -rf "$W/parts.$n"
	done
	backfill_md
}

backfill_md() {
	local n name ref pgl
	md "## 1. Backfill: $(fmt_int "$FILES") files × $(fmt_int "$ROWS") rows, by number of COPY sessions"
	md ""
	md "$(fmt_int $((FILES * ROWS))) rows made by \`evgen --burst --seed=42 --duplicate_rate=0.01" \
		"--invalid_rate=0.005\`; $(fmt_int "$CLEAN_ROWS") of them valid and unique (evstream" \
		"also rejected $(fmt_int "$EVSTREAM_REJECTS") rows into event_rejects and dropped" \
		"$(fmt_int "${EVSTREAM_DUPS:-0}") duplicates)."
	md ""
	md "**The sessions axis.** For each N in {${SESSIONS// /, }}" \
		"($(nproc) cores here): \`evstream --once --max_files_per_trigger=0 --copy_sessions=N\`" \
		"(every file in one micro-batch, validated and deduplicated, its events hashed by" \
		"event_id over N database sessions; default dedupe_max_ids), and beside it **N \\copy**:" \
		"N psql \`\\copy\` sessions started together, each over one N-th of the cleaned rows" \
		"(the concatenated cleaned file cut by lines with \`split -n l/N\`), timed from the" \
		"start of the first to the end of the last. N parallel \\copy is the bound for N" \
		"sessions: plain COPY with nothing to validate or deduplicate, on rows cleaned" \
		"beforehand, with no exactly-once bookkeeping. N = 1 is one \\copy of the whole" \
		"cleaned file, the reference; pgloader loads that same file. evstream's default" \
		"copy_sessions is $EVS_DEF."
	md ""
	md "**Made comparable:** one cluster with one configuration for all; each run starts on" \
		"empty tables after a CHECKPOINT; a round runs every contender once, in turn, and the" \
		"figures are the median of $RUNS round(s); rows/s counts the $(fmt_int "$CLEAN_ROWS")" \
		"rows that end up in \`events\` for every contender, and every run must end with" \
		"exactly those (\"loaded exactly\"). evstream reads all $(fmt_int $((FILES * ROWS))) raw" \
		"rows and also writes the rejects, the batch log and its checkpoint; the others get" \
		"the cleaning done for them, untimed."
	md ""
	md "| contender | N | median s | rows/s | runs (s) | × one \\copy | × N \\copy | × pgloader | server CPU s | client CPU s | client peak RSS MB | sessions opened | loaded exactly |"
	md "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"
	tsv_head backfill contender sessions median_s rows_per_s x_one_copy server_cpu_s client_cpu_s \
		client_peak_rss_mb sessions_opened loaded_exactly
	ref=${B_SECS[copy.1]:-} pgl=${B_SECS[pgloader]:-}
	for name in $(for n in $SESSIONS; do echo "evs.$n copy.$n"; done) pgloader copy_per_file; do
		[[ -n ${B_SECS[$name]:-} ]] || continue
		n=${name#*.}
		[[ $name == *.* ]] || n=-
		md "| $(label "$name") | $n | ${B_SECS[$name]} | $(fmt_rate "$CLEAN_ROWS" "${B_SECS[$name]}") |" \
			"${B_ALL[$name]} | $(ratio "$ref" "${B_SECS[$name]}") |" \
			"$([[ $name == evs.* ]] && ratio "${B_SECS[copy.$n]}" "${B_SECS[$name]}" || echo -) |" \
			"$([[ -n $pgl ]] && ratio "$pgl" "${B_SECS[$name]}" || echo -) |" \
			"${B_SCPU[$name]} | ${B_CCPU[$name]} | $(mb "${B_RSS[$name]}") | ${B_CONN[$name]} |" \
			"$([[ ${B_OK[$name]} == 1 ]] && echo yes || echo NO) |"
		tsv_row backfill "${name%%.*}" "$n" "${B_SECS[$name]}" "$(fmt_rate "$CLEAN_ROWS" "${B_SECS[$name]}")" \
			"$(ratio "$ref" "${B_SECS[$name]}")" "${B_SCPU[$name]}" "${B_CCPU[$name]}" \
			"$(mb "${B_RSS[$name]}")" "${B_CONN[$name]}" "$([[ ${B_OK[$name]} == 1 ]] && echo yes || echo NO)"
	done
	md ""
	md_plot throughput "Rows loaded per second by contender and number of sessions"
	md "Goals (throughput, issue 17): evstream ≥ 1.4 × one \\copy, ≥ 0.95 × N \\copy with" \
		"the same N, ≥ 4 × pgloader."
	md ""
	for n in $SESSIONS; do
		local a b c
		a=$(ratio "$ref" "${B_SECS[evs.$n]}") b=$(ratio "${B_SECS[copy.$n]}" "${B_SECS[evs.$n]}")
		c=$([[ -n $pgl ]] && ratio "$pgl" "${B_SECS[evs.$n]}" || echo -)
		md "- evstream, N = $n$( ((n == EVS_DEF)) && echo ' (its default)'): **$a ×** one \\copy" \
			"(≥ 1.4: $(goal "$a" 1.4)), **$b ×** $n \\copy (≥ 0.95: $(goal "$b" 0.95))$(
			[[ -n $pgl ]] && echo ", **$c ×** pgloader (≥ 4: $(goal "$c" 4))")."
	done
	md ""
	md "- × one \\copy, × N \\copy, × pgloader: that contender's median seconds / this row's" \
		"(a throughput ratio; × N \\copy only for evstream rows, against the N \\copy beside it)."
	md "- CPU seconds are medians: server = the cluster's processes (postmaster, backends," \
		"reaped and live; \`/proc\`), client = the loader's own processes (\`/usr/bin/time\`" \
		"user + system; all N psql together). Other work on the machine stretches wall" \
		"times but hardly CPU seconds."
	md "- Client peak RSS: \`/usr/bin/time\`'s maximum resident set size, median of the runs;" \
		"for N \\copy the sum of the N psql peaks. Sessions opened: connections the cluster" \
		"accepted during the run (\`pg_stat_database.sessions\`), a check that N sessions were used."
	md "- evstream --once reads all $(fmt_int $((FILES * ROWS))) rows: at N = ${SESSIONS%% *}," \
		"$(fmt_rate $((FILES * ROWS)) "${B_SECS[evs.${SESSIONS%% *}]}") rows read/s."
	md ""
}

label() {
	case $1 in
	evs.*) echo "evstream --once --copy_sessions=${1#evs.}" ;;
	copy.1) echo "one psql \\copy of the concatenated cleaned file" ;;
	copy.*) echo "${1#copy.} psql \\copy at once, 1/${1#copy.} of the cleaned rows each" ;;
	copy_per_file) echo "psql \\copy per file, one after another ($(fmt_int "$FILES") × psql)" ;;
	pgloader) echo "pgloader $(pgloader --version 2>/dev/null | awk 'NR == 1 { gsub(/"/, "", $3); print $3 }') (concatenated cleaned file)" ;;
	esac
}

# --- 2. latency ---------------------------------------------------------------------
committed_at_least() {
	(($(q 'SELECT coalesce(sum(array_length(files, 1)), 0) FROM evstream_batches') >= $1))
}

latency_run() {	# TRIGGER_INTERVAL: prints "files|seconds|p50|p99|max|batches|p99 from name"
	local ti=$1 sp=$W/lat.spool ck=$W/lat.ckpt log=$W/lat.log evs evg t0 dur nfiles
	rm -rf "$sp" "$ck"
	mkdir -p "$sp"
	: >"$log"
	reset_db >/dev/null || exit 1
	"$BIN/evstream" --spool_dir="$sp" --checkpoint_dir="$ck" --conninfo="$EVPIPE_CONNINFO" \
		--trigger_interval="$ti" --max_files_per_trigger=0 --log_level=info 2>>"$log" &
	evs=$!
	sleep 1
	t0=$(now)
	"$BIN/evgen" --spool_dir="$sp" --interval=0.05 --rows_per_file=500 --log_level=warning &
	evg=$!
	sleep "$LAT_SECS"
	kill -TERM "$evg"
	wait "$evg"
	dur=$(since "$t0")
	nfiles=$(find "$sp" -maxdepth 1 -name '*.csv' | wc -l)
	wait_for 60 committed_at_least "$nfiles" || note "latency: evstream did not catch up in 60 s"
	kill -TERM "$evs"
	wait "$evs"
	# "2026-11-25T19:48:05.123Z evstream[1] info: [batch 5] files=2 ..." -> "5<TAB>time"
	sed -nE 's/^([0-9T:.-]+Z) .*\[batch ([0-9]+)\] files=.*/\2\t\1/p' "$log" >"$W/lat.tsv"
	# A rename sets the file's ctime (nothing else touches it: clean_source is off).
	find "$sp" -maxdepth 1 -name '*.csv' -printf '%f\t%C@\n' >"$W/lat.renamed"
	pg_psql -v ON_ERROR_STOP=1 <<-EOF
	SET TimeZone = 'UTC';
	CREATE TEMP TABLE lat_log (batch_id bigint, logged timestamptz);
	CREATE TEMP TABLE lat_file (name text, renamed float8);
	\\copy lat_log FROM '$W/lat.tsv'
	\\copy lat_file FROM '$W/lat.renamed'
	CREATE TEMP VIEW lat AS
	SELECT extract(epoch FROM l.logged) - r.renamed AS s,
	    extract(epoch FROM l.logged -
	    to_timestamp(substr(f, 8, 22), 'YYYYMMDD"T"HH24MISS.US'))::float8 AS s_name
	FROM evstream_batches b JOIN lat_log l USING (batch_id), unnest(b.files) AS f
	JOIN lat_file r ON r.name = f;
	-- Every file's latency and the share of files at or below it, for the plot.
	\\copy (SELECT round((1000 * s)::numeric, 1), round(cume_dist() OVER (ORDER BY s)::numeric, 4) FROM lat ORDER BY s) TO '$W/lat.files'
	SELECT count(*), round($dur::numeric, 1),
	    round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY s)),
	    round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY s)),
	    round(1000 * max(s)), (SELECT count(*) FROM lat_log),
	    round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY s_name))
	FROM lat;
	EOF
}

section_latency() {
	local ti out files secs p50 p99 max nb p99name goal_ms
	md "## 2. Steady-stream latency"
	md ""
	md "evgen writes 500-row files with a 0.05 s pause (nominally 20 files/s; each file is" \
		"fsync'ed and renamed) for $LAT_SECS s; evstream runs with max_files_per_trigger = 0" \
		"and copy_sessions $EVS_DEF (its default)." \
		"Latency = the batch's log line (written after COMMIT and the checkpoint's fsync, ms" \
		"resolution) − the file's rename into the spool (its ctime, ns). The last column" \
		"counts from the time in the file's name instead, taken before evgen formats, writes" \
		"and fsyncs the file."
	md ""
	md "| trigger_interval | files | files/s | batches | p50 ms | p99 ms | max ms | goal p99 ≤ | p99 ms from name |"
	md "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	tsv_head latency trigger_interval_s files files_per_s batches p50_ms p99_ms max_ms goal_p99_ms \
		p99_ms_from_name
	for ti in 1 0.1; do
		note "latency: trigger_interval=$ti for $LAT_SECS s"
		: >"$W/lat.files"
		out=$(latency_run "$ti" | tail -n 1)
		IFS='|' read -r files secs p50 p99 max nb p99name <<<"$out"
		goal_ms=$(awk -v t="$ti" 'BEGIN { print t * 1000 + 100 }')
		md "| $ti s | $files | $(ratio "$files" "$secs") | $nb | $p50 | $p99 | $max |" \
			"$goal_ms ms | $p99name |"
		tsv_row latency "$ti" "$files" "$(ratio "$files" "$secs")" "$nb" "$p50" "$p99" "$max" \
			"$goal_ms" "$p99name"
		tsv_head "latency_files_$ti" latency_ms "trigger_interval $ti s"
		cat "$W/lat.files" >>"$DATA/latency_files_$ti.tsv"
	done
	md ""
	md_plot latency "Latency p50, p99 and max by trigger_interval, beside the goal"
	md_plot latency_cdf "Latency per file: the share of files committed within each time"
}

# --- 3. memory ----------------------------------------------------------------------
# RSS_FILE (sample_rss's "ms kB" lines) -> "samples max_MB q1 q2 q3 q4": the largest
# sample overall and in each quarter of the run, in MB.
rss_summary() {
	awk '{ v[NR] = $2; if ($2 > m) m = $2 }
		END { n = NR; if (n == 0) { print "0 - - - - -"; exit }
			for (i = 1; i <= n; i++) { q = int(4 * (i - 1) / n); if (v[i] > qm[q]) qm[q] = v[i] }
			printf "%d %.1f", n, m / 1024
			for (q = 0; q < 4; q++) printf (q in qm) ? " %.1f" : " -", qm[q] / 1024
			print "" }' "$1"
}

stream_verdict() {	# Q1 Q2 Q4 SAMPLES
	awk -v a="$1" -v b="$2" -v d="$3" -v n="$4" 'BEGIN {
		if (n < 8) { print "too short to tell"; exit }
		base = a > b ? a : b
		if (d <= base * 1.05 + 1) print "flat"
		else printf "GROWS (+%.1f MB)\n", d - base }'
}

# One row of the memory table: CASE N ROWS SECONDS PEAK_KB RSS_FILE LOADED_OK.
mem_row() {
	local n s mx q1 q2 q3 q4
	read -r n mx q1 q2 q3 q4 < <(rss_summary "$6")
	md "| $1 | $2 | $(fmt_int "$3") | $4 | **$(mb "$5")** | $(goal "$(mb "$5")" 64 le) | $n | $mx |" \
		"$q1 / $q2 / $q3 / $q4 | $(stream_verdict "$q1" "$q2" "$q4" "$n") | $7 |"
	tsv_row memory "$1" "$2" "$3" "$4" "$(mb "$5")" "$n" "$mx" "$q1" "$q2" "$q3" "$q4" \
		"$(stream_verdict "$q1" "$q2" "$q4" "$n")" "$7"
}

loaded_ok() { [[ $(q 'SELECT count(*) FROM events') == "$CLEAN_ROWS" ]] && echo yes || echo NO; }

# (b): the spool's files as one file with one header, named like the first of them.
make_single() {
	local d=$1 first
	mkdir -p "$d"
	first=$(cd "$SPOOL" && ls -1 | LC_ALL=C sort | head -n 1)
	(cd "$SPOOL" && ls -1 | LC_ALL=C sort |
		{ read -r f1 && cat "$f1" && xargs -r tail -q -n +2; }) >"$d/.$first.tmp" &&
		mv "$d/.$first.tmp" "$d/$first"
}

section_memory() {
	local n s r t0 single=$W/single
	md "## 3. Memory"
	md ""
	md "Peak RSS of evstream (goal ≤ 64 MB in every case): \`/usr/bin/time\`'s maximum" \
		"resident set size, and VmRSS sampled every 0.1 s from \`/proc\` (the largest sample" \
		"overall and in each quarter of the run: flat when the last quarter is no higher than" \
		"the first half). Default dedupe_max_ids; copy_sessions $EVS_DEF (its default) unless" \
		"the row says otherwise."
	md ""
	md "| case | copy_sessions | rows read | s | peak RSS MB | ≤ 64 MB | samples | max sample MB | largest per quarter MB | series | loaded exactly |"
	md "|---|---:|---:|---:|---:|---|---:|---:|---|---|---|"
	tsv_head memory case copy_sessions rows_read s peak_rss_mb samples max_sample_mb q1_mb q2_mb \
		q3_mb q4_mb series loaded_exactly
	# (a) the backfill of section 1, each N (its largest peak over the runs, round 1's series),
	# or one run at the default if section 1 was not run (N = 1 is always on its axis).
	if [[ -n ${B_SECS[evs.1]:-} ]]; then
		for n in $SESSIONS; do
			mem_row "(a) backfill, --once, unlimited files per trigger" "$n" $((FILES * ROWS)) \
				"${B_SECS[evs.$n]}" "${B_RSSMAX[evs.$n]}" "$W/rss.evs.$n.1" \
				"$([[ ${B_OK[evs.$n]} == 1 ]] && echo yes || echo NO)"
		done
	else
		note "memory: (a) the backfill, copy_sessions $EVS_DEF"
		reset_db >/dev/null || exit 1
		read -r s r _ <<<"$(run_evstream "$SPOOL")"
		mem_row "(a) backfill, --once, unlimited files per trigger" "$EVS_DEF" $((FILES * ROWS)) \
			"$s" "$r" "$W/rss.last" "$(loaded_ok)"
		rss_series "backfill_evs_$EVS_DEF" "evstream --copy_sessions=$EVS_DEF" "$W/rss.last"
	fi
	# (b) one file holding every row.
	t0=$(now)
	make_single "$single"
	note "memory: (b) one file of $(fmt_int $((FILES * ROWS))) rows made in $(since "$t0") s"
	reset_db >/dev/null || exit 1
	read -r s r _ <<<"$(run_evstream "$single")"
	mem_row "(b) one file of $(fmt_int $((FILES * ROWS))) rows, --once" "$EVS_DEF" $((FILES * ROWS)) \
		"$s" "$r" "$W/rss.last" "$(loaded_ok)"
	rss_series single "(b) one file of $(fmt_int $((FILES * ROWS))) rows" "$W/rss.last"
	rm -rf "$single"
	# (c) the same files as a stream: 5 per trigger, the 5-minute watermark.
	note "memory: (c) streaming the spool 5 files per trigger, watermark 300 s"
	reset_db >/dev/null || exit 1
	read -r s r _ <<<"$(run_evstream "$SPOOL" --max_files_per_trigger=5 --watermark_delay=300)"
	mem_row "(c) stream: 5 files per trigger, $(q 'SELECT count(*) FROM evstream_batches') batches" \
		"$EVS_DEF" $((FILES * ROWS)) \
		"$s" "$r" "$W/rss.last" "$(loaded_ok)"
	rss_series stream "(c) stream, 5 files per trigger" "$W/rss.last"
	md ""
	md_plot rss_evstream "evstream's RSS over time: the backfill at each copy_sessions, one big file, a stream"
	md_plot rss_backfill "RSS over time of every contender in the backfill's first round"
	md "- (c) is a stream of $(fmt_int $((5 * ROWS)))-row batches with watermark_delay 300 s" \
		"(the files' event times advance 5 s per file), so the watermark moves between batches" \
		"and late or old ids leave the dedupe set; (a) and (b) are one micro-batch each." \
		"(a) is section 1's evstream runs: s is their median, peak RSS the largest of their" \
		"peaks, the series round 1's."
	md ""
}

# --- 4. growth ----------------------------------------------------------------------
section_growth() {
	local pct n dir out s r c rows
	md "## 4. Cost growth (evstream --once, unlimited files per trigger, copy_sessions $EVS_DEF)"
	md ""
	md "Beside it, one \\copy of the same files' cleaned rows: the database's own growth."
	md ""
	md "| files | rows read | evstream s | µs per row read | peak RSS MB | one \\copy s | µs per row loaded |"
	md "|---:|---:|---:|---:|---:|---:|---:|"
	tsv_head growth files rows_read evstream_s us_per_row_read peak_rss_mb one_copy_s \
		us_per_row_loaded
	for pct in 10 30 100; do
		n=$((FILES * pct / 100))
		if ((pct == 100)) && [[ -n ${B_SECS[evs.$EVS_DEF]:-} && -n ${B_SECS[copy.1]:-} ]]; then
			s=${B_SECS[evs.$EVS_DEF]} r=${B_RSS[evs.$EVS_DEF]} c=${B_SECS[copy.1]} rows=$CLEAN_ROWS
		else
			dir=$W/growth.$pct
			mkdir -p "$dir"
			(cd "$SPOOL" && ls -1 | LC_ALL=C sort | head -n "$n" | xargs -I{} ln {} "$dir/")
			reset_db >/dev/null || exit 1
			out=$(run_evstream "$dir")
			read -r s r _ <<<"$out"
			# The same rows, cleaned: the first n cleaned files, one header.
			(cd "$CLEAN" && ls -1 | LC_ALL=C sort | head -n "$n" |
				{ read -r f1 && cat "$f1" && xargs -r tail -q -n +2; }) >"$W/growth.csv"
			rows=$(($(wc -l <"$W/growth.csv") - 1))
			reset_db >/dev/null || exit 1
			out=$(run_copy_files "$W/growth.csv")
			read -r c _ <<<"$out"
			rm -rf "$dir" "$W/growth.csv"
		fi
		note "growth: $n files: evstream $s s, one COPY $c s"
		md "| $n | $(fmt_int $((n * ROWS))) | $s | $(per_row "$s" $((n * ROWS))) |" \
			"$(awk -v k="$r" 'BEGIN { printf "%.0f", k / 1024 }') | $c | $(per_row "$c" "$rows") |"
		tsv_row growth "$n" $((n * ROWS)) "$s" "$(per_row "$s" $((n * ROWS)))" "$(mb "$r")" "$c" \
			"$(per_row "$c" "$rows")"
	done
	md ""
	md_plot growth "Cost per row as the backfill grows: evstream beside one \\copy"
}

# --- 5. history ---------------------------------------------------------------------
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"; }
wchar() { awk '/^wchar/ { print $2 }' "/proc/$1/io"; }

# HISTORY header-only files with names that sort before anything evgen writes now.
make_history() {
	local d=$1 i n
	mkdir -p "$d"
	for ((i = 0; i < HISTORY; i++)); do
		printf -v n '%09d' "$i"	# no subshell: 500,000 forks would take minutes
		printf '%s\n' "$COLS" >"$d/events_20000101T000000.000000_$n.csv"
	done
}

section_history() {
	local sp=$W/hist.spool ck=$W/hist.ckpt log=$W/hist.log t0 secs evs evg c0 c1 w0 w1 n0 n1
	local idle_ms batch_cpu batch_bytes p50 p90 nb
	rm -rf "$sp" "$ck"
	reset_db >/dev/null || exit 1
	t0=$(now)
	make_history "$sp"
	note "history: $HISTORY files made in $(since "$t0") s; committing them"
	t0=$(now)
	"$BIN/evstream" --spool_dir="$sp" --checkpoint_dir="$ck" --conninfo="$EVPIPE_CONNINFO" \
		--once --max_files_per_trigger=10000 --log_level=warning 2>>"$log"
	secs=$(since "$t0")
	: >"$log"
	"$BIN/evstream" --spool_dir="$sp" --checkpoint_dir="$ck" --conninfo="$EVPIPE_CONNINFO" \
		--trigger_interval=0.1 --max_files_per_trigger=1 --log_level=info 2>>"$log" &
	evs=$!
	wait_for 120 grep -q 'ready\|dedupe set rebuilt' "$log"
	sleep 3	# the first listing after the start is a full one
	c0=$(cpu_ms "$evs")
	sleep 10
	c1=$(cpu_ms "$evs")
	idle_ms=$(awk -v c="$((c1 - c0))" 'BEGIN { printf "%.2f", c / 100 }')
	n0=$(q 'SELECT count(*) FROM evstream_batches')
	c0=$(cpu_ms "$evs") w0=$(wchar "$evs")
	"$BIN/evgen" --spool_dir="$sp" --interval=0.5 --rows_per_file=100 --log_level=warning &
	evg=$!
	sleep 20
	kill -TERM "$evg"
	wait "$evg"
	wait_for 120 committed_at_least "$(find "$sp" -maxdepth 1 -name '*.csv' | wc -l)"
	sleep 1
	c1=$(cpu_ms "$evs") w1=$(wchar "$evs")
	n1=$(q 'SELECT count(*) FROM evstream_batches')
	kill -TERM "$evs"
	wait "$evs"
	nb=$((n1 - n0))
	batch_cpu=$(awk -v c="$((c1 - c0))" -v n="$nb" 'BEGIN { if (n > 0) printf "%.1f", c / n; else print "-" }')
	batch_bytes=$(awk -v c="$((w1 - w0))" -v n="$nb" 'BEGIN { if (n > 0) printf "%.0f", c / n; else print "-" }')
	read -r p50 p90 < <(sed -nE 's/.*\[batch [0-9]+\] files=1 .* ([0-9]+) ms$/\1/p' "$log" | sort -n |
		awk '{ v[NR] = $1 } END { k = int(NR * 0.9 + 0.5); if (k < 1) k = 1
			if (NR) print v[int((NR + 1) / 2)], v[k]; else print "- -" }')
	md "## 5. History: $(fmt_int "$HISTORY") committed files left in the spool"
	md ""
	md "clean_source = off (the default) keeps every committed file in the spool. $(fmt_int "$HISTORY")" \
		"header-only files committed first ($secs s, 10,000 per batch), then evstream" \
		"(trigger_interval 0.1 s, one file per batch): idle for 10 s, then evgen writes a 100-row" \
		"file every 0.5 s for 20 s. CPU from /proc/PID/stat, bytes from /proc/PID/io wchar" \
		"(checkpoint, metrics file, log)."
	md ""
	md "| committed files | CPU per idle trigger ms | 1-file batches | p50 ms | p90 ms | CPU per batch ms | bytes written per batch |"
	md "|---:|---:|---:|---:|---:|---:|---:|"
	md "| $(fmt_int "$HISTORY") | $idle_ms | $nb | $p50 | $p90 | $batch_cpu | $(fmt_int "$batch_bytes") |"
	tsv_head history committed_files cpu_per_idle_trigger_ms batches p50_ms p90_ms cpu_per_batch_ms \
		bytes_per_batch
	tsv_row history "$HISTORY" "$idle_ms" "$nb" "$p50" "$p90" "$batch_cpu" "$batch_bytes"
	md ""
	rm -rf "$sp" "$ck"
}

# --- 6. gzip ------------------------------------------------------------------------
# Does this evstream read NAME.csv.gz?  One compressed file loaded --once: rows in events
# say so (an evstream without gzip support passes over the name, loading nothing).
evstream_reads_gzip() {
	local d=$W/gz.probe ck=$W/gz.probe.ckpt first n
	rm -rf "$d" "$ck"
	mkdir -p "$d"
	first=$(cd "$SPOOL" && ls -1 | LC_ALL=C sort | head -n 1)
	gzip -6 -c "$SPOOL/$first" >"$d/$first.gz" || { note "gzip of $SPOOL/$first failed"; exit 1; }
	reset_db >/dev/null || exit 1
	"$BIN/evstream" --spool_dir="$d" --checkpoint_dir="$ck" --conninfo="$EVPIPE_CONNINFO" \
		--once --log_level=warning 2>>"$W/evstream.log" ||
		note "gzip probe: evstream --once on one .csv.gz failed (taken as no gzip support)"
	n=$(q 'SELECT count(*) FROM events')
	rm -rf "$d" "$ck"
	((n > 0))
}

mbytes() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
bytes_in() { find "$1" -maxdepth 1 -type f -printf '%s\n' | awk '{ b += $1 } END { printf "%.0f", b }'; }
ns_per_row() { awk -v c="$1" -v n="$2" 'BEGIN { if (c == "-" || n <= 0) print "-"; else printf "%.0f", c * 1e9 / n }'; }

section_gzip() {
	local gz=$W/gz.spool t0 zsecs pb gb i name ok=1 na="n/a (evstream without gzip support)"
	local -A sp=([plain]=$SPOOL [gzip]=$gz)
	mkdir -p "$gz"
	# Compressed before any timing, $(nproc) at once: the producer's cost, not evstream's.
	t0=$(now)
	(cd "$SPOOL" && ls -1 | LC_ALL=C sort |
		xargs -P "$(nproc)" -I{} sh -c 'gzip -6 -c "$1" >"$2/$1.gz"' _ {} "$gz") ||
		{ note "gzip of the spool into $gz failed"; exit 1; }
	zsecs=$(since "$t0")
	pb=$(bytes_in "$SPOOL") gb=$(bytes_in "$gz")
	note "gzip: $FILES files compressed in $zsecs s ($pb -> $gb bytes)"
	if evstream_reads_gzip; then
		for ((i = 1; i <= RUNS; i++)); do
			note "gzip: round $i of $RUNS"
			for name in plain gzip; do
				run_once "$name" run_evstream "${sp[$name]}"
			done
		done
		summarise plain
		summarise gzip
	else
		ok=0
		note "gzip: this evstream loads nothing from .csv.gz files; the table says n/a"
	fi
	md "## 6. gzip: the same files compressed"
	md ""
	md "The spool of section 1 ($(fmt_int "$FILES") files), and the same files compressed" \
		"with \`gzip -6\` into NAME.csv.gz ($zsecs s with $(nproc) gzip at once, before any" \
		"timing). Each loaded by \`evstream --once --max_files_per_trigger=0\` (copy_sessions" \
		"$EVS_DEF, its default) on empty tables; a round loads each once, median of $RUNS." \
		"CPU: evstream's user + system (\`/usr/bin/time\`); the server's work is the same rows."
	md ""
	md "| spool | MB on disk | median s | rows read/s | runs (s) | evstream CPU s | CPU ns per row read | server CPU s | peak RSS MB | loaded exactly |"
	md "|---|---:|---:|---:|---|---:|---:|---:|---:|---|"
	tsv_head gzip spool bytes median_s rows_read_per_s evstream_cpu_s cpu_ns_per_row server_cpu_s \
		peak_rss_mb loaded_exactly
	for name in plain gzip; do
		local label=".csv" bytes=$pb
		[[ $name == gzip ]] && label=".csv.gz (gzip -6, $(awk -v a="$gb" -v b="$pb" \
			'BEGIN { printf "%.0f", 100 * a / b }') % of plain)" bytes=$gb
		if ((ok)); then
			md "| $label | $(mbytes "$bytes") | ${B_SECS[$name]} |" \
				"$(fmt_rate $((FILES * ROWS)) "${B_SECS[$name]}") | ${B_ALL[$name]} |" \
				"${B_CCPU[$name]} | $(ns_per_row "${B_CCPU[$name]}" $((FILES * ROWS))) |" \
				"${B_SCPU[$name]} | $(mb "${B_RSS[$name]}") |" \
				"$([[ ${B_OK[$name]} == 1 ]] && echo yes || echo NO) |"
			tsv_row gzip "$name" "$bytes" "${B_SECS[$name]}" "$(fmt_rate $((FILES * ROWS)) "${B_SECS[$name]}")" \
				"${B_CCPU[$name]}" "$(ns_per_row "${B_CCPU[$name]}" $((FILES * ROWS)))" \
				"${B_SCPU[$name]}" "$(mb "${B_RSS[$name]}")" \
				"$([[ ${B_OK[$name]} == 1 ]] && echo yes || echo NO)"
		else
			md "| $label | $(mbytes "$bytes") | $([[ $name == plain ]] && echo 'not run' || echo "$na") | | | | | | | |"
			tsv_row gzip "$name" "$bytes" - - - - - - -
		fi
	done
	md ""
	if ((ok)); then
		md "- **Reading .csv.gz costs $(ns_per_row "$(awk -v g="${B_CCPU[gzip]}" -v p="${B_CCPU[plain]}" \
			'BEGIN { print g - p }')" $((FILES * ROWS))) ns of CPU per row** (evstream's CPU" \
			"seconds with the compressed files less with the plain ones, over the" \
			"$(fmt_int $((FILES * ROWS))) rows read); throughput $(ratio "${B_SECS[plain]}" "${B_SECS[gzip]}") ×" \
			"the plain files'; the compressed files take $(awk -v a="$gb" -v b="$pb" \
			'BEGIN { printf "%.0f", 100 * a / b }') % of the plain bytes."
		md ""
		md_plot gzip "evstream's CPU per row read from plain and gzip-compressed files"
	else
		md "- Cost per row: $na."
		md ""
	fi
	rm -rf "$gz"
}

per_row() { awk -v s="$1" -v n="$2" 'BEGIN { if (n > 0) printf "%.2f", s * 1e6 / n; else print "-" }'; }

# --- run ----------------------------------------------------------------------------
T_START=$(now)
md "# evpipe benchmark$( ((QUICK)) && echo ' (quick)')"
md ""
md "Machine: $(machine_line)"
md ""
md "Cluster: a throwaway PostgreSQL 15 (tests/lib/pg.sh) with sql/01_init.sql (primary key" \
	"on event_id, indexes on event_time and user_id); the same postgresql.conf for every" \
	"contender: pg.sh's (fsync on, 127.0.0.1 + socket) plus $(printf '`%s`, ' "${GUCS[@]}" | sed 's/, $//')."
md ""
make_spool
for s in $SECTIONS; do
	note "$s: load average $(cut -d' ' -f1-3 /proc/loadavg)"
	"section_$s"
	md "<sub>load average after $s: $(cut -d' ' -f1-3 /proc/loadavg)</sub>"
	md ""
done
md "How each figure is measured, the profile, and what each optimisation gained:" \
	"[bench/README.md](README.md)."
md ""
md "Whole run: $(since "$T_START") s (\`bench/bench.sh$( ((QUICK)) && echo ' --quick')\`," \
	"BENCH_FILES=$FILES BENCH_ROWS=$ROWS BENCH_RUNS=$RUNS BENCH_SESSIONS=\"$SESSIONS\"" \
	"BENCH_LATENCY_SECONDS=$LAT_SECS)."
md ""
md "Each table's figures are also in" \
	"\`$([[ -n $OUT ]] && realpath -m --relative-to="$(dirname "$OUT")" "$DATA" || realpath -m "$DATA")/*.tsv\`;" \
	"\`bench/plot.sh\` draws the plots from them with gnuplot."

# The plots; a link whose plot was not drawn (no gnuplot, or its section not run) goes.
if command -v gnuplot >/dev/null; then
	bash "$EVPIPE_ROOT/bench/plot.sh" "$DATA" "$PLOTS" >&2 || note "bench/plot.sh failed: some plots are missing"
else
	note "no plots: gnuplot is not installed (make bench-deps installs gnuplot-nox)"
fi
while IFS= read -r line; do
	if [[ $line == "!["*"]($PLOT_LINK/"*".svg)" ]]; then
		svg=${line##*/}
		[[ -s $PLOTS/${svg%)} ]] || continue
	fi
	printf '%s\n' "$line"
done <"$MD" | cat -s >"$MD.linked" && mv "$MD.linked" "$MD"
cat "$MD"
if [[ -n $OUT ]]; then
	cp "$MD" "$OUT" && note "written to $OUT"
fi
