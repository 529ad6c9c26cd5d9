#!/usr/bin/env bash
# kill -9 of evstream at random moments (and at the exact failpoints: before the
# write, inside the COPY with half the rows sent, between commit and checkpoint,
# after the checkpoint), restarted each time, while evgen keeps writing: at the end
# the set of event_ids in events equals the set of valid rows evgen wrote, the
# rejects equal those of a run without crashes, nothing twice, no file left behind.
# 30 cycles; EVPIPE_LONG=1 (make reliability-report) runs 120.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup
CYCLES=${EVPIPE_CRASH_CYCLES:-$([[ ${EVPIPE_LONG:-0} == 1 ]] && echo 120 || echo 30)}

"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.03 --rows_per_file=200 \
	--duplicate_rate=0.02 --invalid_rate=0.01 --log_level=warning &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"

failpoints=(before_write inside_copy after_commit after_checkpoint)
kills=0 fp_hits=0
for i in $(seq 1 "$CYCLES"); do
	fp=
	if ((i % 4 == 0)); then fp=${failpoints[$(( (i / 4) % ${#failpoints[@]} ))]}; fi
	EVSTREAM_FAILPOINT=$fp evstream_bg --clean_source=archive --max_files_per_trigger=3 --trigger_interval=0.05
	if [ -n "$fp" ]; then
		# the process kills itself at the failpoint; wait for that
		wait "$EVSTREAM_PID"; rc=$?
		((rc == 137)) && fp_hits=$((fp_hits + 1))
	else
		sleep "0.$(printf %03d $((RANDOM % 700 + 50)))"
		kill -9 "$EVSTREAM_PID" 2>/dev/null && kills=$((kills + 1))
		wait "$EVSTREAM_PID" 2>/dev/null
	fi
done
kill "$EVGEN_PID"; wait "$EVGEN_PID"
check_eq "evgen_exits_0_on_sigterm" 0 $?
# drain what is left, with a clean stop
evstream_once --clean_source=archive --max_files_per_trigger=0
check "crash_cycles_ran" test $((kills + fp_hits)) -ge "$CYCLES"
check_eq "failpoints_hit" $((CYCLES / 4)) "$fp_hits"
for fp in "${failpoints[@]}"; do
	check "failpoint_${fp}_reached" grep -q "failpoint $fp: killing myself" "$LOG"
done
check_eq "no_file_left_in_spool" 0 "$(ls "$SPOOL" | grep -c '\.csv$')"
check_eq "no_file_quarantined" 0 "$(ls "$SPOOL/quarantine" 2>/dev/null | wc -l)"
csv_valid_ids "$SPOOL/archive" >"$ST/expected"
db_ids >"$ST/got"
check "some_events_flowed" test "$(wc -l <"$ST/expected")" -gt 1000
check_eq "crash_exactly_once_ids_equal" "$(wc -l <"$ST/expected") 0" "$(wc -l <"$ST/got") $(LC_ALL=C comm -3 "$ST/expected" "$ST/got" | wc -l)"
check_eq "every_archived_file_in_exactly_one_batch" "$(ls "$SPOOL/archive" | wc -l) 0" \
	"$(q 'SELECT count(*), count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f' | tr '|' ' ')"
check "reconcile_took_batches_from_database" grep -q 'checkpoint was behind evstream_batches' "$LOG"
echo "crash test: $kills random kills, $fp_hits failpoint kills, $(wc -l <"$ST/got") events"
check "reference_run_loads" ref_load "$SPOOL/archive"
rel_compare crash_kill9_evstream "$CYCLES"
