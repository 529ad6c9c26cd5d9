#!/usr/bin/env bash
# A failed fsync is final, and evgen never reports a file it could not make durable
# (an LD_PRELOAD shim, tests/lib/fail_dir_fsync.c, fails one fsync with EIO):
# - the directory fsync after the rename that published the 3rd file fails: the
#   name may not survive a crash, so evgen withdraws it (unlink), does not count or
#   log it as written, names the failed call and the file, and exits 1 (the service
#   manager restarts it); a restart goes on from there;
# - the fsync of the 2nd file's temporary fails (and, sticky, every later fsync of
#   that file): nothing was published, the temporary is removed, the file is not
#   counted, and evgen writes new rows on the next tick.
# Either way the spool holds exactly the files evgen says it wrote, no temporary is
# left, and the rows repeated in the files are exactly the duplicates evgen reported:
# no file's rows written twice, no row "duplicates" a row of a file that was not
# published.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
T=$(tmpdir)
spool=$T/spool
mkdir "$spool"
if ! "${CC:-cc}" -shared -fPIC -o "$T/fail_dir_fsync.so" "$EVPIPE_ROOT/tests/lib/fail_dir_fsync.c" \
	-ldl 2>"$T/cc.log"; then
	skip "evgen_dir_fsync_failure" "cannot build the fsync shim: $(head -c 300 "$T/cc.log")"
	exit 0
fi

# The sanitized evgen wants ASan's runtime first among the libraries; the shim only
# replaces fsync and fdatasync, which ASan does not intercept.
shim_evgen() { # LOG ENV=... -- evgen args
	local log=$1; shift
	env LD_PRELOAD="$T/fail_dir_fsync.so" ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		"$@" 2>>"$log"
}
# 10 % duplicates, no invalid rows: every row has an event_id, so the duplicates evgen
# reports can be counted back from the files.
gen_args=(--spool_dir="$spool" --burst --rows_per_file=100 --duplicate_rate=0.1 --invalid_rate=0
	--late_rate=0 --log_level=info)

rc=0
shim_evgen "$T/evgen.log" EVPIPE_FAIL_DIR_FSYNC=3 "$EVPIPE_BIN/evgen" "${gen_args[@]}" --count=10 || rc=$?
check_eq "evgen_exits_1_after_failed_dir_fsync" 1 "$rc"
check "evgen_names_the_failed_call_and_file" grep -Eq \
	"fsync of spool directory $spool after the rename that published events_[^ ]+\.csv failed: Input/output error; the file is withdrawn \(unlinked\) and not counted" \
	"$T/evgen.log"
withdrawn=$(sed -n 's/.*after the rename that published \(events_[^ ]*\.csv\) failed.*/\1/p' "$T/evgen.log")

reported() { sed -n 's/.* info: wrote \([^ ]*\) rows=.*/\1/p' "$T/evgen.log" | LC_ALL=C sort; }
on_disk() { ls "$spool" | grep '\.csv$' | LC_ALL=C sort; }
# Within one file a duplicate may repeat a row of the same file: count repeats overall.
repeats() { awk -F, 'FNR > 1 { n++; if (seen[$1]++) d++ } END { print d + 0 }' "$spool"/*.csv; }
dups_reported() { sed -n 's/.* info: wrote .* duplicates=\([0-9]*\) .*/\1/p' "$T/evgen.log" | awk '{ s += $1 } END { print s + 0 }'; }
check_eq "spool_holds_the_2_durable_files" 2 "$(on_disk | wc -l)"
check "withdrawn_file_is_gone" test -n "$withdrawn" -a ! -e "$spool/$withdrawn"
check_eq "withdrawn_file_not_reported" 0 "$(reported | grep -c "^$withdrawn\$")"
check_eq "evgen_counts_only_durable_files" 1 \
	"$(grep -c 'stopping: wrote 2 files, 200 rows' "$T/evgen.log")"
check_eq "reported_names_are_the_files" "$(on_disk)" "$(reported)"
check_eq "no_temporary_left" 0 "$(ls -A "$spool" | grep -c '^\.')"

# Restarted (as systemd's Restart=on-failure would), it goes on: nothing rewritten.
rc=0
"$EVPIPE_BIN/evgen" "${gen_args[@]}" --count=2 2>>"$T/evgen.log" || rc=$?
check_eq "restart_exits_0" 0 "$rc"
check_eq "after_restart_spool_holds_every_reported_file" "$(reported)" "$(on_disk)"
check_eq "after_restart_4_files" 4 "$(on_disk | wc -l)"

# The fsync of a file's temporary fails, and stays failed for that file.
rc=0
shim_evgen "$T/evgen.log" EVPIPE_FAIL_FILE_FSYNC=2 EVPIPE_FAIL_FSYNC_STICKY=1 \
	"$EVPIPE_BIN/evgen" "${gen_args[@]}" --count=3 || rc=$?
check_eq "file_fsync_failure_evgen_exits_0" 0 "$rc"
check "file_fsync_failure_injected" grep -q 'fail_dir_fsync: fsync(.*/\.events_.*\.csv\.tmp) fails' "$T/evgen.log"
check "file_fsync_failure_named" grep -Eq \
	"writing $spool/events_[^ ]+\.csv failed; its temporary file was removed, retrying on the next tick: Input/output error" \
	"$T/evgen.log"
check_eq "after_file_fsync_failure_7_files" 7 "$(on_disk | wc -l)"
check_eq "after_file_fsync_failure_reported_are_the_files" "$(reported)" "$(on_disk)"
check_eq "after_file_fsync_failure_no_temporary_left" 0 "$(ls -A "$spool" | grep -c '^\.')"
check_eq "no_row_duplicates_an_unpublished_row" "$(dups_reported)" "$(repeats)"
# For tests/RELIABILITY.md: rows in the files; lost = reported files missing;
# duplicated = rows repeated beyond the duplicates evgen made, plus files nobody reported.
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
missing=$(LC_ALL=C comm -23 <(reported) <(on_disk) | wc -l)
extra=$(LC_ALL=C comm -13 <(reported) <(on_disk) | wc -l)
rel_record evgen_dir_fsync_failure 2 "$(cat "$spool"/*.csv | grep -vc '^event_id,')" "n/a" "n/a" \
	"$missing" $(($(repeats) - $(dups_reported) + extra))
