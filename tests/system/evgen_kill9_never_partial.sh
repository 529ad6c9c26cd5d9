#!/usr/bin/env bash
# A kill -9 of evgen at any moment leaves either nothing visible or whole files,
# and every file it reported written is there (no lost committed file); the next
# start removes the stale hidden temporaries and never a published file.  When each
# kill lands comes from EVPIPE_SEED, printed at the start; give it again to repeat it.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
EVGEN=$EVPIPE_BIN/evgen
T=$(tmpdir)
CYCLES=${EVGEN_KILL_CYCLES:-25}
ROWS=20000
spool=$T/spool; mkdir -p "$spool"
SEED=${EVPIPE_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "EVPIPE_SEED=$SEED (evgen_kill9_never_partial: $CYCLES cycles)"
RANDOM=$SEED

partial=0 written=0 stale_after_restart=0 missing=0 swept_published=0
for i in $(seq 1 "$CYCLES"); do
	"$EVGEN" --spool_dir="$spool" --burst --rows_per_file=$ROWS --log_level=info 2>"$T/evgen.log" &
	pid=$!
	sleep "0.$(printf %03d $(( RANDOM % 300 + 5 )))"
	kill -9 "$pid"; wait "$pid" 2>/dev/null
	# Every visible file must be whole: header + ROWS rows + a final newline.
	# (One wc and one tail for all files: thousands of processes would dominate.)
	files=("$spool"/*.csv)
	if [ -e "${files[0]}" ]; then
		bad=$(wc -l "${files[@]}" | awk -v want=$((ROWS + 1)) '$2 != "total" && $1 != want' | wc -l)
		nonl=$(tail -q -c1 "${files[@]}" | tr -d '\n' | wc -c)
		partial=$((partial + bad + nonl))
	fi
	# "wrote NAME" is logged once NAME is published: it must be there.
	missing=$((missing + $(sed -n 's/.* info: wrote \([^ ]*\) rows=.*/\1/p' "$T/evgen.log" |
		while read -r f; do [[ -f $spool/$f ]] || echo "$f"; done | wc -l)))
	before=$(ls "$spool" | grep -c '\.csv$')
	written=$((written + before))
	# A fresh start must sweep the stale temporaries (then write one file), and only them.
	"$EVGEN" --spool_dir="$spool" --count=1 --rows_per_file=1 --log_level=error
	stale_after_restart=$((stale_after_restart + $(ls -A "$spool" | grep -c '^\.')))
	swept_published=$((swept_published + before + 1 - $(ls "$spool" | grep -c '\.csv$')))
	rm -f "$spool"/*.csv
done
check_eq "evgen_kill9_${CYCLES}_times_no_visible_partial_file" 0 "$partial"
check_eq "evgen_restart_removes_stale_temporaries" 0 "$stale_after_restart"
check_eq "evgen_kill9_no_lost_committed_file" 0 "$missing"
check_eq "evgen_restart_keeps_published_files" 0 "$swept_published"
check "evgen_kill9_cycles_did_write_files" test "$written" -gt "$CYCLES"
# For tests/RELIABILITY.md: rows in the whole files seen; lost = partial or missing files.
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
rel_record evgen_kill9 "$CYCLES" $((written * ROWS)) "n/a" "n/a" $((partial + missing)) "n/a"
