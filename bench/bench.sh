#!/usr/bin/env bash
# bench.sh — evstream side by side with the plain ways of loading the same CSV files
# into PostgreSQL, on a throwaway cluster (tests/lib/pg.sh) with the real schema.
#
#   bench/bench.sh [--quick]        `make bench` / `make bench-quick`
#
# Sections, all printed as one markdown document (and written to $BENCH_OUT if set):
#   1. backfill   evgen --burst --seed: FILES x ROWS rows, 1 % duplicates, 0.5 % invalid.
#                 evstream --once (unlimited files per trigger); psql \copy per file and
#                 one \copy of a concatenated file (both of a cleaned copy: valid rows
#                 only, first occurrence of each event_id); pgloader of that concatenated
#                 file.  Each run on an empty table after a CHECKPOINT; median of RUNS.
#   2. latency    evgen at 20 files/s x 500 rows, evstream with trigger_interval 1 s and
#                 100 ms: a file's name carries its UTC creation time (µs), its batch's
#                 log line the time the batch was committed and checkpointed (ms).
#   3. memory     peak RSS of evstream in (1); RSS sampled every 0.25 s while it streams
#                 the same files 5 per trigger with a 5-minute watermark.
#   4. growth     evstream --once on the first 10 %, 30 % and 100 % of the files.
#   5. history    HISTORY files committed and left in the spool (clean_source = off, the
#                 default), then evstream idle for 10 s (CPU per trigger) and streaming
#                 one 100-row file per batch (ms, CPU and bytes written per batch).
#
# Knobs (environment): EVPIPE_RELEASE_BIN (directory of evgen and evstream, default the
# repository root), BENCH_FILES (1000; --quick 100), BENCH_ROWS (10000), BENCH_RUNS (3;
# --quick 1), BENCH_LATENCY_SECONDS (60; --quick 8), BENCH_OUT (a file for the markdown),
# BENCH_PGLOADER=0 (skip pgloader), BENCH_HISTORY (500000; --quick 50000),
# BENCH_SECTIONS (default "backfill latency memory growth history").
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
SECTIONS=${BENCH_SECTIONS:-backfill latency memory growth history}
HISTORY=${BENCH_HISTORY:-$((QUICK ? 50000 : 500000))}
OUT=${BENCH_OUT:-}
COLS="event_id, user_id, event_type, product_id, price, event_time"
# One postgresql.conf for every contender: a server sized for bulk loads, not the tests'
# 32 MB.  fsync and synchronous_commit stay on: every contender pays for durable commits.
GUCS=("shared_buffers = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
	"maintenance_work_mem = 256MB")

for d in evgen evstream; do
	[[ -x $BIN/$d ]] || { echo "bench: $BIN/$d not built (make)" >&2; exit 1; }
done
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
	pg_psql -c 'TRUNCATE events, event_rejects, evstream_files, evstream_batches' &&
		pg_psql -c 'CHECKPOINT'
}

machine_line() {
	local cpu mem pgv
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
	pgv=$(pg_psql -c 'SHOW server_version')
	echo "$(uname -srm), $cpu, $(nproc) cores, $mem RAM; PostgreSQL $pgv;" \
		"evpipe $(git -C "$EVPIPE_ROOT" describe --always --dirty 2>/dev/null || echo '?');" \
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

# --- contenders: each prints "seconds peak_rss_kb" and leaves the rows in events ----
run_evstream() {	# SPOOL_DIR [extra evstream options]
	local spool=$1 ck=$W/ckpt.$RANDOM
	shift
	/usr/bin/time -f '%e %M %U %S' -o "$W/time" "$BIN/evstream" --spool_dir="$spool" \
		--checkpoint_dir="$ck" --conninfo="$EVPIPE_CONNINFO" --once \
		--max_files_per_trigger=0 --log_level=warning "$@" 2>>"$W/evstream.log" ||
		{ note "evstream failed (see below)"; tail -5 "$W/evstream.log" >&2; }
	rm -rf "$ck"
	cat "$W/time"
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

run_copy_one() {
	local t0
	t0=$(now)
	"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 \
		-c "\\copy events ($COLS) FROM '$ALL' WITH (FORMAT csv, HEADER true)" ||
		note "psql \\copy of the concatenated file failed"
	echo "$(since "$t0") - - -"
}

run_pgloader() {
	cat >"$W/load.pgl" <<-EOF
	LOAD CSV
	    FROM '$ALL' ($COLS)
	    INTO postgresql://postgres@127.0.0.1:$PGPORT/evpipe
	    TARGET TABLE events ($COLS)
	    WITH skip header = 1, fields terminated by ','
	;
	EOF
	/usr/bin/time -f '%e %M %U %S' -o "$W/time" pgloader --quiet --root-dir "$W/pgloader" "$W/load.pgl" \
		>>"$W/pgloader.log" 2>&1 || { note "pgloader failed"; tail -20 "$W/pgloader.log" >&2; }
	cat "$W/time"
}

# One timed run of contender NAME (FUNCTION [ARGS]) on empty tables; its wall seconds,
# peak RSS and CPU seconds are appended to the R_* lists, and B_OK[NAME] drops to 0 if
# events does not end with exactly CLEAN_ROWS rows.
declare -A R_SECS R_RSS R_SCPU R_CCPU B_SECS B_ALL B_OK B_SCPU B_CCPU B_RSS
run_once() {
	local name=$1 out s r u k c0 got
	shift
	reset_db >/dev/null || exit 1
	c0=$(server_cpu)
	out=$("$@")
	R_SCPU[$name]+=" $(awk -v a="$c0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')"
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

# Medians of what run_once collected for NAME.
summarise() {
	local name=$1
	# shellcheck disable=SC2086  # the lists are numbers separated by spaces
	B_SECS[$name]=$(median ${R_SECS[$name]})
	B_ALL[$name]=${R_SECS[$name]# }
	# shellcheck disable=SC2086
	B_SCPU[$name]=$(median ${R_SCPU[$name]})
	B_CCPU[$name]=- B_RSS[$name]=-
	# shellcheck disable=SC2086
	[[ -n ${R_CCPU[$name]:-} ]] && B_CCPU[$name]=$(median ${R_CCPU[$name]})
	# shellcheck disable=SC2086
	[[ -n ${R_RSS[$name]:-} ]] && B_RSS[$name]=$(median ${R_RSS[$name]})
}

EVSTREAM_RSS=-
section_backfill() {
	local name i names=(evstream copy_per_file copy_one) pgl=0
	if [[ ${BENCH_PGLOADER:-1} != 0 ]] && command -v pgloader >/dev/null; then
		pgl=1 names+=(pgloader)
	else
		note "pgloader not installed (make bench installs it); skipped"
	fi
	# Round robin: a burst of other work on the machine lands on every contender alike.
	for ((i = 1; i <= RUNS; i++)); do
		note "backfill: round $i of $RUNS"
		run_once evstream run_evstream "$SPOOL"
		if ((i == 1)); then
			EVSTREAM_REJECTS=$(q 'SELECT count(*) FROM event_rejects')
			EVSTREAM_DUPS=$(q 'SELECT sum(duplicates) FROM evstream_batches')
		fi
		run_once copy_per_file run_copy_per_file
		run_once copy_one run_copy_one
		((pgl)) && run_once pgloader run_pgloader
	done
	for name in "${names[@]}"; do
		summarise "$name"
	done
	EVSTREAM_RSS=${B_RSS[evstream]}
	BEST_COPY=copy_one
	if awk -v a="${B_SECS[copy_per_file]}" -v b="${B_SECS[copy_one]}" 'BEGIN { exit !(a < b) }'; then
		BEST_COPY=copy_per_file
	fi

	md "## 1. Backfill: $(fmt_int "$FILES") files × $(fmt_int "$ROWS") rows"
	md ""
	md "$(fmt_int $((FILES * ROWS))) rows made by \`evgen --burst --seed=42 --duplicate_rate=0.01" \
		"--invalid_rate=0.005\`; $(fmt_int "$CLEAN_ROWS") of them valid and unique (evstream" \
		"also rejected $(fmt_int "$EVSTREAM_REJECTS") rows into event_rejects and dropped" \
		"$(fmt_int "${EVSTREAM_DUPS:-0}") duplicates). rows/s counts the $(fmt_int "$CLEAN_ROWS")" \
		"rows that end up in \`events\`, for every contender. Median of $RUNS round(s); a round" \
		"runs every contender once, in turn, each on an empty table after a CHECKPOINT."
	md ""
	md "| contender | median s | rows/s | runs (s) | throughput vs best COPY | server CPU s | client CPU s | loaded exactly |"
	md "|---|---:|---:|---|---:|---:|---:|---|"
	for name in evstream copy_per_file copy_one pgloader; do
		[[ -n ${B_SECS[$name]:-} ]] || continue
		md "| $(label "$name") | ${B_SECS[$name]} | $(fmt_rate "$CLEAN_ROWS" "${B_SECS[$name]}") |" \
			"${B_ALL[$name]} | $(ratio "${B_SECS[$BEST_COPY]}" "${B_SECS[$name]}") |" \
			"${B_SCPU[$name]} | ${B_CCPU[$name]} |" \
			"$([[ ${B_OK[$name]} == 1 ]] && echo yes || echo NO) |"
	done
	md ""
	md "- **evstream / best COPY** (throughput): **$(ratio "${B_SECS[$BEST_COPY]}" "${B_SECS[evstream]}")**" \
		"(goal ≥ 0.9)"
	if [[ -n ${B_SECS[pgloader]:-} ]]; then
		md "- **evstream / pgloader** (throughput): **$(ratio "${B_SECS[pgloader]}" "${B_SECS[evstream]}")**" \
			"(goal ≥ 2)"
	fi
	md "- CPU seconds are medians: the cluster's processes (server) and the loader's own" \
		"process (client; psql's is not counted). Other work on the machine stretches wall" \
		"times but hardly CPU seconds."
	md "- evstream --once reads all $(fmt_int $((FILES * ROWS))) rows:" \
		"$(fmt_rate $((FILES * ROWS)) "${B_SECS[evstream]}") rows read/s."
	md ""
}

label() {
	case $1 in
	evstream) echo "evstream --once, unlimited files per trigger (release build)" ;;
	copy_per_file) echo "psql \\copy per file ($(fmt_int "$FILES") × psql, cleaned files)" ;;
	copy_one) echo "psql \\copy of one concatenated file (one COPY)" ;;
	pgloader) echo "pgloader $(pgloader --version 2>/dev/null | awk 'NR == 1 { gsub(/"/, "", $3); print $3 }') (concatenated file)" ;;
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
	SELECT count(*), round($dur::numeric, 1),
	    round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY s)),
	    round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY s)),
	    round(1000 * max(s)), (SELECT count(*) FROM lat_log),
	    round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY s_name))
	FROM (SELECT extract(epoch FROM l.logged) - r.renamed AS s,
	        extract(epoch FROM l.logged -
	        to_timestamp(substr(f, 8, 22), 'YYYYMMDD"T"HH24MISS.US'))::float8 AS s_name
	      FROM evstream_batches b JOIN lat_log l USING (batch_id), unnest(b.files) AS f
	      JOIN lat_file r ON r.name = f) x;
	EOF
}

section_latency() {
	local ti out files secs p50 p99 max nb p99name
	md "## 2. Steady-stream latency"
	md ""
	md "evgen writes 500-row files with a 0.05 s pause (nominally 20 files/s; each file is" \
		"fsync'ed and renamed) for $LAT_SECS s; evstream runs with max_files_per_trigger = 0." \
		"Latency = the batch's log line (written after COMMIT and the checkpoint's fsync, ms" \
		"resolution) − the file's rename into the spool (its ctime, ns). The last column" \
		"counts from the time in the file's name instead, taken before evgen formats, writes" \
		"and fsyncs the file."
	md ""
	md "| trigger_interval | files | files/s | batches | p50 ms | p99 ms | max ms | goal p99 ≤ | p99 ms from name |"
	md "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for ti in 1 0.1; do
		note "latency: trigger_interval=$ti for $LAT_SECS s"
		out=$(latency_run "$ti" | tail -n 1)
		IFS='|' read -r files secs p50 p99 max nb p99name <<<"$out"
		md "| $ti s | $files | $(ratio "$files" "$secs") | $nb | $p50 | $p99 | $max |" \
			"$(awk -v t="$ti" 'BEGIN { print t * 1000 + 100 }') ms | $p99name |"
	done
	md ""
}

# --- 3. memory ----------------------------------------------------------------------
section_memory() {
	local ck=$W/mem.ckpt pid t0 secs n q1 q2 q3 q4
	reset_db >/dev/null || exit 1
	rm -rf "$ck"
	note "memory: streaming the spool 5 files per trigger, watermark 300 s"
	t0=$(now)
	"$BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$ck" --conninfo="$EVPIPE_CONNINFO" \
		--once --max_files_per_trigger=5 --watermark_delay=300 --log_level=warning \
		2>>"$W/evstream.log" &
	pid=$!
	: >"$W/rss"
	while [[ -r /proc/$pid/status ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do
		awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null >>"$W/rss"
		sleep 0.25
	done
	wait "$pid"
	secs=$(since "$t0")
	n=$(wc -l <"$W/rss")
	# The largest sample in each quarter of the run, in MB.
	read -r q1 q2 q3 q4 < <(awk -v n="$n" '{ q = int(4 * (NR - 1) / n); if ($1 > m[q]) m[q] = $1 }
		END { printf "%.1f %.1f %.1f %.1f\n", m[0] / 1024, m[1] / 1024, m[2] / 1024, m[3] / 1024 }' "$W/rss")
	md "## 3. Memory"
	md ""
	md "- Peak RSS of evstream in the backfill (1), one batch of $(fmt_int $((FILES * ROWS))) rows:" \
		"**$(awk -v k="$EVSTREAM_RSS" 'BEGIN { if (k == "-") print "-"; else printf "%.0f MB", k / 1024 }')**" \
		"(goal ≤ 64 MB; \`/usr/bin/time\` maximum resident set size, median of the runs)."
	md "- The same $(fmt_int $((FILES * ROWS))) rows as a stream: 5 files ($(fmt_int $((5 * ROWS))) rows)" \
		"per trigger, $((FILES / 5)) batches, watermark_delay 300 s (the files' event times" \
		"advance 5 s per file), $n RSS samples over $secs s. Largest RSS in each quarter of the run:" \
		"**$q1 / $q2 / $q3 / $q4 MB** ($(stream_verdict "$q1" "$q2" "$q4"))."
	md ""
}

stream_verdict() {
	awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN {
		base = a > b ? a : b
		if (d <= base * 1.05 + 1) print "flat: the last quarter is no higher than the first half"
		else printf "GROWS: the last quarter is %.1f MB above the first half\n", d - base }'
}

# --- 4. growth ----------------------------------------------------------------------
section_growth() {
	local pct n dir out s r c
	md "## 4. Cost growth (evstream --once, unlimited files per trigger)"
	md ""
	md "Beside it, one \\copy of the same files' cleaned rows: the database's own growth."
	md ""
	md "| files | rows read | evstream s | µs per row read | peak RSS MB | one \\copy s | µs per row loaded |"
	md "|---:|---:|---:|---:|---:|---:|---:|"
	for pct in 10 30 100; do
		n=$((FILES * pct / 100))
		if ((pct == 100)) && [[ -n ${B_SECS[evstream]:-} ]]; then
			s=${B_SECS[evstream]} r=$EVSTREAM_RSS c=${B_SECS[copy_one]} rows=$CLEAN_ROWS
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
			out=$(ALL=$W/growth.csv run_copy_one)
			read -r c _ <<<"$out"
			rm -rf "$dir" "$W/growth.csv"
		fi
		note "growth: $n files: evstream $s s, one COPY $c s"
		md "| $n | $(fmt_int $((n * ROWS))) | $s | $(per_row "$s" $((n * ROWS))) |" \
			"$(awk -v k="$r" 'BEGIN { printf "%.0f", k / 1024 }') | $c | $(per_row "$c" "$rows") |"
	done
	md ""
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
	md ""
	rm -rf "$sp" "$ck"
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
	"BENCH_FILES=$FILES BENCH_ROWS=$ROWS BENCH_RUNS=$RUNS BENCH_LATENCY_SECONDS=$LAT_SECS)."
cat "$MD"
if [[ -n $OUT ]]; then
	cp "$MD" "$OUT" && note "written to $OUT"
fi
