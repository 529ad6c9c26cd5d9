#!/usr/bin/env bash
# soak.sh — evgen at a high rate plus evstream for SOAK_SECONDS (default 120; `make
# soak` runs an hour), sampling evstream's resident set every second.  The release
# daemons ($EVPIPE_RELEASE_BIN): under ASan the RSS would measure ASan's quarantine.
#
# The promise: memory stays flat, because everything evstream keeps grows with a
# batch (reused) or with the watermark window (the dedupe set, evicted below it),
# never with the stream's length.  The window is 5 s here, so the set reaches its
# size within the first half.  Checks (testlib's PASS/FAIL lines):
#   soak_rss_flat        max RSS of the second half <= max of the first half x 1.2 + 4 MiB
#   soak_kept_up         the spool drains within 30 s of evgen stopping
#   soak_rows_accounted  events + duplicates + late == rows evgen wrote, nothing in
#                        event_rejects but late rows (evgen writes no invalid ones here)
#   soak_every_event_kept_once  each distinct event_id evgen wrote is in events or
#                        rejected as late; no file in two batches
# Prints "soak: seconds=N rows=N rss_kb start=N max=N end=N first_half_max=N
# second_half_max=N samples=N" and records it for tests/RELIABILITY.md.
set -u
: "${EVPIPE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
SECS=${SOAK_SECONDS:-120}
BIN=${EVPIPE_RELEASE_BIN:-$EVPIPE_ROOT}
SLACK_KB=4096
for d in evgen evstream; do
	[[ -x $BIN/$d ]] || { fail "soak_binaries" "no $BIN/$d (make $d)"; exit 1; }
done
stream_setup

# ~10,000 rows/s: 20 files a second of 500 rows, 1% duplicates.
"$BIN/evgen" --spool_dir="$SPOOL" --interval=0.05 --rows_per_file=500 --duplicate_rate=0.01 \
	--log_level=info 2>"$ST/evgen.log" &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
mapfile -t args < <(_evstream_args)
# At most 20 files (10,000 rows) a batch: a lag under load (CI runs tests side by side)
# is caught up by more batches, not by one bigger one.
"$BIN/evstream" "${args[@]}" --trigger_interval=0.5 --max_files_per_trigger=20 \
	--watermark_delay=5 --clean_source=delete --log_level=warning >>"$LOG" 2>&1 &
EVSTREAM_PID=$!
at_exit "kill -9 $EVSTREAM_PID 2>/dev/null"

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$EVSTREAM_PID/status" 2>/dev/null; }
: >"$ST/rss"
end=$((SECONDS + SECS))
while ((SECONDS < end)); do
	sleep 1
	r=$(rss)
	[[ -n $r ]] || break
	echo "$r" >>"$ST/rss"
done
check "soak_evstream_alive_throughout" kill -0 "$EVSTREAM_PID"
kill -TERM "$EVGEN_PID"; wait "$EVGEN_PID"
if wait_for 30 bash -c "! ls '$SPOOL' | grep -q '\\.csv\$'"; then
	pass "soak_kept_up"
else
	fail "soak_kept_up" "$(ls "$SPOOL" | grep -c '\.csv$') files still in the spool 30 s after evgen stopped"
fi
kill -TERM "$EVSTREAM_PID"; wait "$EVSTREAM_PID"
check_eq "soak_evstream_exits_0" 0 $?

read -r n start max last first second < <(awk '
	{ v[NR] = $1 }
	END {
		h = int(NR / 2)
		for (i = 1; i <= NR; i++) {
			if (v[i] > max) max = v[i]
			if (i <= h && v[i] > a) a = v[i]
			if (i > h && v[i] > b) b = v[i]
		}
		print NR, v[1], max, v[NR], a, b
	}' "$ST/rss")
# evgen's own counts: rows written, and how many of them repeat an earlier row whole.
evgen_sum() { sed -n "s/.* $1=\([0-9]*\) .*/\1/p" "$ST/evgen.log" | awk '{ s += $1 } END { print s + 0 }'; }
rows=$(evgen_sum rows)
produced=$((rows - $(evgen_sum duplicates)))
echo "soak: seconds=$SECS rows=$rows rss_kb start=$start max=$max end=$last first_half_max=$first" \
	"second_half_max=$second samples=$n"
check "soak_sampled_every_second" test "$n" -ge $((SECS * 9 / 10))
limit=$((first * 12 / 10 + SLACK_KB))
if ((second <= limit)); then
	pass "soak_rss_flat"
else
	fail "soak_rss_flat" "second half max ${second} kB > first half max ${first} kB x 1.2 + ${SLACK_KB} kB"
fi
check_eq "soak_rows_accounted" "$rows" \
	"$(q 'SELECT (SELECT count(*) FROM events) + sum(duplicates) + sum(late) FROM evstream_batches')"
check_eq "soak_rows_read_equal_written" "$rows" "$(q 'SELECT sum(rows_read) FROM evstream_batches')"
check_eq "soak_only_late_rejects" 0 "$(q "SELECT count(*) FROM event_rejects WHERE reason <> 'late'")"
# Every distinct event evgen produced is in events or rejected as late (by event_id, so
# an event wrongly dropped as a duplicate counts as lost); no file committed twice.
kept=$(q "SELECT count(*) FROM (SELECT event_id::text FROM events UNION
	SELECT split_part(raw_line, ',', 1) FROM event_rejects WHERE reason = 'late') u")
twice=$(q 'SELECT count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f')
check_eq "soak_every_event_kept_once" "$produced 0" "$kept $twice"
rel_record soak 1 "$produced" "$(q 'SELECT count(*) FROM events')" \
	"$(q 'SELECT count(*) FROM event_rejects')" "$((produced - kept))" "$twice"
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SECS" "$rows" "$start" "$max" "$last" "$first" "$second" "$n" \
	>"$REL_DIR/soak_rss.tsv" 2>/dev/null || true
