#!/usr/bin/env bash
# tests/fuzz/run.sh SECONDS [OUTDIR] — run every libFuzzer target, all at once, for
# SECONDS each, from a scratch copy of its committed seed corpus:
#
#     target      binary               seeds
#     csv         $EVPIPE_BIN/fuzz_csv  tests/fuzz/corpus/csv    (tests/fuzz/fuzz_csv.c)
#     ckpt        $EVPIPE_BIN/fuzz_ckpt tests/fuzz/corpus/ckpt   (tests/fuzz/fuzz_ckpt.c)
#
# Prints one line per target, which tests and tests/reliability/report.sh read:
#     fuzz: NAME execs=N crashes=N new_units=N seconds=N exit=N [artifact=PATH]
# and, for a crash, the fuzzer's last lines.  A crash leaves its input in OUTDIR
# (default: a temporary directory, kept only when something crashed); reproduce
# it with `$EVPIPE_BIN/fuzz_NAME FILE`.  FUZZ_MERGE=1 adds the inputs that found
# new coverage to the committed corpus (libFuzzer's -merge keeps only those).
# Exit status: 0 when every target ran its time without a crash, else 1.
set -uo pipefail

SECONDS_EACH=${1:?usage: run.sh SECONDS [OUTDIR]}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${EVPIPE_BIN:-$ROOT/build/san}
TARGETS=(csv ckpt)
OUT=${2:-}
keep_out=1
if [[ -z $OUT ]]; then
	OUT=$(mktemp -d "${TMPDIR:-/tmp}/evpipe-fuzz.XXXXXX") || exit 1
	keep_out=0
fi
mkdir -p "$OUT" || exit 1
# The targets write each input to a file: on tmpfs that costs no disk and no fsync.
SCRATCH=$(mktemp -d "$( [[ -w /dev/shm ]] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/evpipe-fuzz.XXXXXX") ||
	exit 1
trap 'rm -rf "$SCRATCH"' EXIT

run_target() { # NAME
	local name=$1 bin=$BIN/fuzz_$1 corpus=$OUT/corpus-$1
	mkdir -p "$corpus" "$SCRATCH/$name" || return 1
	cp "$ROOT/tests/fuzz/corpus/$name"/* "$corpus/" || return 1
	# -timeout: an input that takes 10 s is a hang; -max_len: lines past the scaled-down
	# record bound (csvin.h, CSVIN_SMALL_SIZES) and checkpoints of many lines fit.
	FUZZ_TMPDIR=$SCRATCH/$name "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
		-max_len=4096 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$OUT/$name-" \
		"$corpus" >"$OUT/$name.log" 2>&1
}

start=$SECONDS
pids=()
for t in "${TARGETS[@]}"; do
	if [[ ! -x $BIN/fuzz_$t ]]; then
		echo "fuzz: $t execs=0 crashes=0 new_units=0 seconds=0 exit=127 (not built: $BIN/fuzz_$t)"
		exit 1
	fi
	run_target "$t" &
	pids+=($!)
done
bad=0
for i in "${!TARGETS[@]}"; do
	wait "${pids[$i]}"
	rc=$?
	t=${TARGETS[$i]}
	log=$OUT/$t.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	# A crash ends the run before the final stats: take the last progress line's count.
	[[ -n $execs ]] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
	new=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
	artifacts=("$OUT/$t"-crash-* "$OUT/$t"-leak-* "$OUT/$t"-timeout-* "$OUT/$t"-oom-*)
	crashes=0 first=
	for a in "${artifacts[@]}"; do
		[[ -e $a ]] || continue
		crashes=$((crashes + 1))
		first=${first:-$a}
	done
	((rc != 0 && crashes == 0)) && crashes=1	# died without an artifact: still a failure
	echo "fuzz: $t execs=${execs:-0} crashes=$crashes new_units=${new:-0}" \
		"seconds=$((SECONDS - start)) exit=$rc${first:+ artifact=$first}"
	if ((rc != 0 || crashes > 0)); then
		bad=1
		tail -n 30 "$log" | sed 's/^/    /'
	elif [[ ${FUZZ_MERGE:-0} == 1 ]]; then
		"$BIN/fuzz_$t" -merge=1 -max_len=4096 "$ROOT/tests/fuzz/corpus/$t" "$OUT/corpus-$t" \
			>>"$log" 2>&1 && echo "fuzz: $t corpus merged into tests/fuzz/corpus/$t"
	fi
done
if ((bad)); then
	echo "fuzz: inputs and logs kept in $OUT"
elif ((!keep_out)); then
	rm -rf "$OUT"
fi
exit "$bad"
