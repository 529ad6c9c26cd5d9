#!/usr/bin/env bash
# The spool's filesystem fills up while evgen writes (a 1 MB tmpfs): evgen says why,
# keeps running, leaves no partial file and no temporary behind, and resumes once
# space is freed; every file it reported written is there, whole, exactly once, and
# loads exactly.  Needs mount(8) (root): SKIP otherwise.
set -u
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
rel_private_mounts "$0" "$@"
. "$EVPIPE_ROOT/tests/lib/stream.sh"
if ((!REL_MOUNTS)); then
	skip "spool_disk_full" "cannot mount a tmpfs here (needs root and mount namespaces)"
	exit 0
fi
stream_setup
ROWS=500
rel_mount_tmpfs "$SPOOL" 1m || { fail "mount_small_spool" "mount -t tmpfs failed"; exit 1; }
wrote() { grep -c ' info: wrote ' "$ST/evgen.log"; }
# Files whose line count or last byte says they are not whole.
partial() {
	local files=("$@") bad nonl
	[[ -e ${files[0]} ]] || { echo 0; return; }
	bad=$(wc -l "${files[@]}" | awk -v want=$((ROWS + 1)) '$2 != "total" && $1 != want' | wc -l)
	nonl=$(tail -q -c1 "${files[@]}" | tr -d '\n' | wc -c)
	echo $((bad + nonl))
}

"$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --interval=0.01 --rows_per_file=$ROWS 2>"$ST/evgen.log" &
EVGEN_PID=$!
at_exit "kill $EVGEN_PID 2>/dev/null"
if wait_for 20 grep -q 'No space left on device' "$ST/evgen.log"; then
	pass "disk_full_reached"
else
	fail "disk_full_reached" "evgen never hit ENOSPC"
fi
# A few retries on the full disk: each tick that fails says so.
enospc_ge() { (($(grep -c 'No space left on device' "$ST/evgen.log") >= $1)); }
wait_for 20 enospc_ge 3 || echo "# fewer than 3 failed writes in 20 s"
check "evgen_survives_full_disk" kill -0 "$EVGEN_PID"
check "evgen_says_why" grep -q "writing $SPOOL/events_.*\.csv failed; its temporary file was removed, retrying on the next tick: No space left on device" "$ST/evgen.log"
check_eq "full_disk_no_partial_file" 0 "$(partial "$SPOOL"/*.csv)"
n_full=$(wrote)
check_eq "full_disk_every_written_file_there" "$n_full" "$(ls "$SPOOL" | grep -c '\.csv$')"

# A consumer frees space: half the files move to another filesystem.
mkdir "$ST/out"
ls "$SPOOL" | grep '\.csv$' | head -n $((n_full / 2)) | while read -r f; do mv "$SPOOL/$f" "$ST/out/"; done
wait_for 20 bash -c "(( \$(grep -c ' info: wrote ' '$ST/evgen.log') > $n_full + 2 ))"
check "evgen_resumes_after_space_freed" test "$(wrote)" -gt $((n_full + 2))
kill -TERM "$EVGEN_PID"; wait_exit 30 "$EVGEN_PID"
check_eq "evgen_exits_0" 0 $?
check_eq "no_temporary_left" 0 "$(ls -A "$SPOOL" | grep -c '^\.')"
check_eq "no_partial_file" 0 "$(partial "$SPOOL"/*.csv "$ST/out"/*.csv)"
check_eq "no_lost_committed_file" "$(wrote)" "$(ls "$SPOOL" "$ST/out" | grep -c '\.csv$')"
check_eq "reported_names_are_the_files" \
	"$(sed -n 's/.* info: wrote \([^ ]*\) rows=.*/\1/p' "$ST/evgen.log" | LC_ALL=C sort)" \
	"$(ls "$SPOOL" "$ST/out" | grep '\.csv$' | LC_ALL=C sort)"

# Everything loads, exactly.
mkdir "$ST/all"
cp "$SPOOL"/*.csv "$ST/out"/*.csv "$ST/all/"
SPOOL=$ST/all evstream_once --max_files_per_trigger=0
csv_valid_ids "$ST/all" >"$ST/expected"
rel_compare spool_disk_full 1 "$ST/expected"
