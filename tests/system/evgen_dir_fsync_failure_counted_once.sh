#!/usr/bin/env bash
# The fsync of the spool directory after the rename that published a file fails (an
# LD_PRELOAD shim, tests/lib/fail_dir_fsync.c, fails the 3rd directory fsync with EIO):
# the file is already there under its name, so evgen counts it, never writes its batch
# again, names the failed call and the file, and exits 1 (a failed fsync is final; the
# service manager restarts it).  The spool holds exactly the files evgen says it wrote,
# no event_id is in two files, and no temporary is left; a restart goes on from there.
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
# replaces fsync, which ASan does not intercept.
rc=0
LD_PRELOAD=$T/fail_dir_fsync.so EVPIPE_FAIL_DIR_FSYNC=3 \
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:verify_asan_link_order=0 \
	"$EVPIPE_BIN/evgen" --spool_dir="$spool" --count=10 --burst --rows_per_file=100 \
	--log_level=info 2>"$T/evgen.log" || rc=$?
check_eq "evgen_exits_1_after_failed_dir_fsync" 1 "$rc"
check "evgen_names_the_failed_call_and_file" grep -Eq \
	"fsync of spool directory $spool after the rename that published events_[^ ]+\.csv failed: Input/output error" \
	"$T/evgen.log"

reported() { sed -n 's/.* info: wrote \([^ ]*\) rows=.*/\1/p' "$T/evgen.log" | LC_ALL=C sort; }
on_disk() { ls "$spool" | grep '\.csv$' | LC_ALL=C sort; }
ids_in_two_files() {
	awk -F, 'FNR > 1 { print $1 }' "$spool"/*.csv | LC_ALL=C sort | uniq -d | wc -l
}
check_eq "spool_holds_the_3_files_up_to_the_failure" 3 "$(on_disk | wc -l)"
check_eq "evgen_counts_the_published_file" 1 \
	"$(grep -c 'stopping: wrote 3 files, 300 rows' "$T/evgen.log")"
check_eq "reported_names_are_the_files" "$(on_disk)" "$(reported)"
check_eq "no_event_id_in_two_files" 0 "$(ids_in_two_files)"
check_eq "no_temporary_left" 0 "$(ls -A "$spool" | grep -c '^\.')"

# Restarted (as systemd's Restart=on-failure would), it goes on: nothing rewritten.
rc=0
"$EVPIPE_BIN/evgen" --spool_dir="$spool" --count=2 --burst --rows_per_file=100 \
	--log_level=info 2>>"$T/evgen.log" || rc=$?
check_eq "restart_exits_0" 0 "$rc"
check_eq "after_restart_spool_holds_every_reported_file" "$(reported)" "$(on_disk)"
check_eq "after_restart_5_files" 5 "$(on_disk | wc -l)"
check_eq "after_restart_no_event_id_in_two_files" 0 "$(ids_in_two_files)"
# For tests/RELIABILITY.md: rows in the files; lost = reported files missing;
# duplicated = event_ids in two files plus files nobody reported.
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
missing=$(LC_ALL=C comm -23 <(reported) <(on_disk) | wc -l)
extra=$(LC_ALL=C comm -13 <(reported) <(on_disk) | wc -l)
rel_record evgen_dir_fsync_failure 1 "$(cat "$spool"/*.csv | grep -vc '^event_id,')" "n/a" "n/a" \
	"$missing" $(($(ids_in_two_files) + extra))
