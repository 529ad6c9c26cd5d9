#!/usr/bin/env bash
# tests/reliability/report.sh OUTPUT.md — `make reliability-report`: run every
# scenario that shows evpipe neither loses nor duplicates data, in its long mode
# (EVPIPE_LONG=1: 1,000 kill -9 cycles over >= 1 M events, every crash state), the fuzzers (FUZZ_SECONDS each) beside the
# soak (SOAK_SECONDS), and valgrind over the integration run; then write the
# figures they recorded (tests/lib/reliability.sh, rel_record) as a Markdown table.
# The file says when, where and from which commit it was made; regenerate, never
# edit.  Exit status 1 if any check failed (the report is written anyway).
set -uo pipefail
OUTFILE=${1:?usage: report.sh OUTPUT.md}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/evpipe-report.XXXXXX") || exit 1
trap 'rm -rf "$WORK"' EXIT
export EVPIPE_RELIABILITY_DIR=$WORK/records EVPIPE_LONG=1
export EVPIPE_FUZZ_SECONDS=${FUZZ_SECONDS:-300} EVPIPE_SOAK_SECONDS=${SOAK_SECONDS:-3600}
export EVPIPE_TEST_TIMEOUT=$((EVPIPE_SOAK_SECONDS + 600))
mkdir -p "$EVPIPE_RELIABILITY_DIR"
# Where the code came from, taken now: a commit made during the hour would mislead.
COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD 2>/dev/null || COMMIT+=" (with uncommitted changes)"
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

# name | test | what happens to the pipeline
SCENARIOS=(
	"crash_kill9_evstream|system/crash_exactly_once|1,000 kill -9 cycles of evstream (at least 1 M valid events), one in four at a failpoint in turn (before the write, inside COPY, between commit and checkpoint, after it, between COPY slices when built in), the others at random (EVPIPE_SEED), half with --copy_sessions=2; evgen writing throughout; 1 % invalid, 2 % duplicate rows"
	"several_evstreams_one_spool|system/several_instances_exactly_once|three evstreams on one spool and one database, each with its own checkpoint and batch size, over 200 pending files and a live evgen, kill -9 of one of them every 0.1-1 s; 2 % invalid, 2 % duplicate rows"
	"db_outage_stop_and_kill|system/db_outage_exactly_once|PostgreSQL stopped (fast) and killed (immediate) mid-stream, restarted"
	"db_refuses_writes|system/db_refuses_writes|INSERT revoked from evstream's role, then the events tablespace full; fixed while evstream waits"
	"checkpoint_unwritable|system/checkpoint_unwritable_stops|checkpoint directory made read-only under a running evstream, then writable again"
	"spool_disk_full|system/spool_disk_full|the spool's filesystem full while evgen writes; space freed by a consumer"
	"evgen_kill9|system/evgen_kill9_never_partial|kill -9 of evgen at random moments (rows counted in whole visible files; lost = partial or missing files)"
	"hostile_input_1m_rows|integration/hostile_input_rows|1,000,000 rows in one file (plus 10 MB / 20 MB lines, garbage, NULs, invalid UTF-8, deep quoting: checked in the test)"
	"evgen_dir_fsync_failure|system/evgen_dir_fsync_failure_counted_once|evgen's directory fsync after a rename fails (EIO, an LD_PRELOAD shim): the file is withdrawn, not reported, evgen exits 1 and is restarted; then a file's own fsync fails, sticky (rows counted in the files; lost = reported files missing; duplicated = repeated rows beyond the duplicates evgen made, or unreported files)"
	"crash_states|system/crash_states_recovered|every on-disk state a crash may leave (tests/crashstate, ALICE-style: strace-recorded calls of evgen's publish and of two evstream batches with checkpoint, journal, metrics, archive, delete and quarantine; un-synced writes missing, whole or torn, un-synced directory operations in any combination, the database before or after the batch's COMMIT), evstream --once on each (runs = distinct states checked; lost = states that skipped, lost or refused; duplicated = states that loaded a file twice or in part)"
	"checkpoint_fsync_failure|system/checkpoint_fsync_failure_final|the fsync of the checkpoint's temporary, of a journal record (sticky: every later fsync of that file fails) and of the checkpoint directory fail (EIO, an LD_PRELOAD shim); evstream rewrites the checkpoint from memory, a restart finds it equal to the database"
	"sighup|system/sighup_keeps_daemons_running|SIGHUP three times to both running daemons"
	"future_rows|integration/future_events_never_move_watermark|rows dated 2099 and an hour ahead of the clock beside valid ones; evstream restarted (lost = a valid row missing or a future row not rejected as future)"
	"committed_file_changed|integration/committed_file_changed_quarantined|committed files appended to (stopped and running), replaced by a rename, and forgotten names written again under clean_source off, delete and archive; each goes to quarantine/ (lost = first files' rows missing; duplicated = rows of changed files loaded, rejects or files twice)"
	"history_20000_files|integration/history_costs_nothing_per_batch|20,000 committed files left in the spool (clean_source = off), idle triggers, new files one per batch, a restart that reads the checkpoint's journal back"
	"db_hung|system/db_hung_bounded_and_stoppable|a lock held on events, then the server SIGSTOPped mid-batch and mid-connect; SIGTERM each time, the lock released, the server continued"
	"spool_recreated|system/spool_recreated_followed|the spool moved aside and created again, removed and created later, and moved under a running evgen (files left unread in a moved-aside directory are not counted)"
	"fail_every_call|system/fail_every_call|the k-th call of one kind fails (open, read, write, fsync, rename, link, unlink, mkdir, opendir/readdir, flock, close, malloc: EIO, ENOSPC, EACCES, ENOLCK, ENOMEM; libpq's connect, PQputCopyData, PQputCopyEnd, PQgetResult, PQexec/PQsend*: the connection dropped), for every k, in evstream over 4 files with invalid, late and duplicate rows and in evgen; a clean restart after each run (runs = faulty runs; lost = runs after which the state was not the promised one; per kind below)"
	"soak|system/fuzz_and_soak_hold|steady stream at ~10,000 rows/s, 1 % duplicates, watermark 5 s, files deleted once committed"
)
OTHER_TESTS=(integration/hostile_spool_entries system/checkpoint_locked_or_damaged_refuses
	system/secrets_and_hostile_schema)

tests=()
for s in "${SCENARIOS[@]}"; do IFS='|' read -r _ t _ <<<"$s"; tests+=("$t"); done
tests+=("${OTHER_TESTS[@]}")
EVPIPE_TEST_LOGDIR=$WORK/test-logs bash tests/run.sh "${tests[@]}" | tee "$WORK/run.out"
run_rc=${PIPESTATUS[0]}
EVPIPE_VG_BIN=${EVPIPE_VG_BIN:-$ROOT/build/vg} bash tests/valgrind/run.sh "$WORK/vg" >"$WORK/vg.out" 2>&1
vg_rc=$?
tail -n 3 "$WORK/vg.out"

# --- the report -------------------------------------------------------------------------
R=$EVPIPE_RELIABILITY_DIR
sum() { # FILE COLUMN: the column's sum over the file's lines ("n/a" if not numeric)
	awk -F'\t' -v c="$2" '{ if ($c ~ /^[0-9]+$/) s += $c; else na = 1 } END { print na ? "n/a" : s + 0 }' "$1"
}
# Thousands separated by commas, whatever the locale ("%'d" needs one that has them).
fmt() { [[ $1 =~ ^[0-9]+$ ]] && sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1" | tr -d '\n' || printf '%s' "$1"; }
{
	echo "# Reliability figures"
	echo
	echo "Generated by \`make reliability-report\`, started $STARTED, from commit \`$COMMIT\`," \
		"on $(nproc) CPUs, $(uname -sr); fuzzers $EVPIPE_FUZZ_SECONDS s each, soak" \
		"$EVPIPE_SOAK_SECONDS s.  Every number comes from that run (the tests record them with" \
		"\`rel_record\`, tests/lib/reliability.sh); do not edit, regenerate."
	echo
	echo "The promise: every valid event a producer writes ends up in \`events\` exactly once, every"
	echo "invalid one in \`event_rejects\` with its reason, whatever happens to the processes, the"
	echo "database or the input.  *Produced* counts the distinct valid event_ids in the files (a"
	echo "regular expression over the CSV, not evstream's validator, where the stream has no late"
	echo "rows; else a clean reference run over the same files; in the soak, whose files are deleted"
	echo "once loaded, evgen's own count of rows less the rows it repeated).  *Lost* = expected"
	echo "event_ids or rejects (file, line, reason) missing (in the soak: neither in \`events\` nor"
	echo "rejected as late); *duplicated* = event_ids or rejects stored twice plus files committed by"
	echo "two batches."
	echo
	echo "| scenario | what happens | runs | events produced | events in \`events\` | rejects | lost | duplicated |"
	echo "|---|---|--:|--:|--:|--:|--:|--:|"
	for s in "${SCENARIOS[@]}"; do
		IFS='|' read -r name test what <<<"$s"
		f=$R/$name.tsv
		if [[ ! -s $f ]]; then
			echo "| $name | $what | – | – | – | – | **not run** | **not run** |"
			continue
		fi
		echo "| $name | $what | $(fmt "$(sum "$f" 2)") | $(fmt "$(sum "$f" 3)") | $(fmt "$(sum "$f" 4)") |" \
			"$(fmt "$(sum "$f" 5)") | $(fmt "$(sum "$f" 6)") | $(fmt "$(sum "$f" 7)") |"
	done
	echo
	echo "Also run, with exact checks but no counts here: hostile spool entries (symlink, FIFO,"
	echo "directory, names with spaces, newlines and non-UTF-8 bytes, files deleted or truncated"
	echo "between listing and reading), a second evstream on the same checkpoint, damaged"
	echo "checkpoints, a hostile \`db_schema\` and the password's absence from logs, \`ps\` and"
	echo "\`evstream status\`."
	echo
	echo "## Fail the k-th call"
	echo
	if [[ -s $R/fail_every_call_kinds.md ]]; then cat "$R/fail_every_call_kinds.md"; else echo "**not run**"; fi
	echo
	echo "## Fuzzing"
	echo
	echo "| target | what it checks | seconds | executions | crashes |"
	echo "|---|---|--:|--:|--:|"
	[[ -s $R/fuzz.tsv ]] || echo "| – | **not run** | – | – | – |"
	[[ -s $R/fuzz.tsv ]] && while IFS=$'\t' read -r t secs execs crashes; do
		case $t in
		csv) what="csvin + validate_row + ts_parse + batch_read_file: five readings of the text, two of it gzip-compressed and three of the input as an archive must agree; round trips; timegm reference" ;;
		ckpt) what="ckpt_format on damaged checkpoints: refused with line and reason, or written back byte for byte; every prefix refused; read as a journal too" ;;
		*) what= ;;
		esac
		echo "| \`fuzz_$t\` | $what | $secs | $(fmt "$execs") | $crashes |"
	done <"$R/fuzz.tsv"
	echo
	echo "## valgrind (memcheck, the integration run)"
	echo
	if [[ -s $R/valgrind.tsv ]]; then
		IFS=$'\t' read -r procs errs lost unfinished vfailed <"$R/valgrind.tsv"
		echo "$procs daemon processes under \`valgrind --leak-check=full\` (-O1 -g, no sanitizers):" \
			"**$errs errors, $lost bytes definitely lost**, $unfinished unfinished;" \
			"$vfailed integration checks failed."
	else
		echo "**not run** ($(tail -n 1 "$WORK/vg.out"))"
	fi
	echo
	echo "## Soak (evstream's resident set, sampled every second)"
	echo
	if [[ -s $R/soak_rss.tsv ]]; then
		IFS=$'\t' read -r secs rows start max last first second n <"$R/soak_rss.tsv"
		echo "| seconds | rows | samples | RSS start | RSS max | RSS end | max, first half | max, second half |"
		echo "|--:|--:|--:|--:|--:|--:|--:|--:|"
		echo "| $secs | $(fmt "$rows") | $n | $start kB | $max kB | $last kB | $first kB | $second kB |"
	else
		echo "**not run**"
	fi
	echo
	echo "## The run"
	echo
	echo "\`$(tail -n 1 "$WORK/run.out")\` (scenarios) · \`$(tail -n 1 "$WORK/vg.out")\`"
	if grep -q '^FAIL: ' "$WORK/run.out"; then
		echo
		echo "Failures:"
		echo
		grep '^FAIL: ' "$WORK/run.out" | sed 's/^/    /'
	fi
} >"$OUTFILE"
echo "report: wrote $OUTFILE"
((run_rc == 0 && vg_rc == 0))
