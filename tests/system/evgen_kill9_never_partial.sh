#!/usr/bin/env bash
# A kill -9 of evgen at any moment leaves either nothing visible or whole files;
# the next start removes the stale hidden temporaries.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
EVGEN=$EVPIPE_BIN/evgen
T=$(tmpdir)
CYCLES=${EVGEN_KILL_CYCLES:-25}
ROWS=20000
spool=$T/spool; mkdir -p "$spool"

partial=0 written=0 stale_after_restart=0
for i in $(seq 1 "$CYCLES"); do
	"$EVGEN" --spool_dir="$spool" --burst --rows_per_file=$ROWS --log_level=error &
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
	written=$((written + $(ls "$spool" | grep -c '\.csv$')))
	rm -f "$spool"/*.csv
	# A fresh start must sweep the stale temporaries (then write one file).
	"$EVGEN" --spool_dir="$spool" --count=1 --rows_per_file=1 --log_level=error
	stale_after_restart=$((stale_after_restart + $(ls -A "$spool" | grep -c '^\.')))
	rm -f "$spool"/*.csv
done
check_eq "evgen_kill9_${CYCLES}_times_no_visible_partial_file" 0 "$partial"
check_eq "evgen_restart_removes_stale_temporaries" 0 "$stale_after_restart"
check "evgen_kill9_cycles_did_write_files" test "$written" -gt "$CYCLES"
