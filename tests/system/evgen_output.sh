#!/usr/bin/env bash
# evgen's promises about its files: whole CSV with the exact header, unique names
# that sort in creation order, --seed reproduces rows, bad configuration exits 2.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
EVGEN=$EVPIPE_BIN/evgen
T=$(tmpdir)

HEADER='event_id,user_id,event_type,product_id,price,event_time'

# Every visible file: exact header, N rows of 6 fields, newline-terminated.
whole_files() { # dir rows_per_file -> prints the names of files that are not whole
	local f
	for f in "$1"/*.csv; do
		awk -v want="$2" -v hdr="$HEADER" -F, '
			NR == 1 { if ($0 != hdr) bad = 1; next }
			NF != 6 || length($1) != 36 || $1 !~ /^[0-9a-f]+-[0-9a-f]+-4[0-9a-f]+-[89ab][0-9a-f]+-[0-9a-f]+$/ { bad = 1 }
			END { if (bad || NR - 1 != want) exit 1 }' "$f" || echo "$f"
		[ -z "$(tail -c1 "$f")" ] || echo "$f (no final newline)"
	done
}

# 1. 10,000 files: whole, unique names, name order == creation order.
mkdir -p "$T/many"
"$EVGEN" --spool_dir="$T/many" --burst --count=10000 --rows_per_file=3 --log_level=warning
check_eq "evgen_writes_10000_files" 10000 "$(ls "$T/many" | wc -l)"
check_eq "evgen_files_are_whole_csv_with_exact_header" "" "$(whole_files "$T/many" 3 | head -3)"
check_eq "evgen_names_unique" 10000 "$(ls "$T/many" | sort -u | wc -l)"
check_eq "evgen_names_have_documented_shape" 0 "$(ls "$T/many" | grep -cvE '^events_[0-9]{8}T[0-9]{6}\.[0-9]{6}_[0-9a-f-]{36}\.csv$')"
# Creation order: the files' mtimes (ns) taken in name order never go backwards,
# and the event_time of each file's first row never goes backwards either.
order_ok=$(cd "$T/many" && ls | LC_ALL=C sort | xargs stat -c '%.9Y' | awk 'p > $1 { bad++ } { p = $1 } END { print bad + 0 }')
check_eq "evgen_names_sort_in_creation_order_mtime" 0 "$order_ok"
order_ok=$(cd "$T/many" && ls | LC_ALL=C sort | xargs -n 500 awk -F, 'FNR == 2 { print $6 }' |
	awk 'p > $0 { bad++ } { p = $0 } END { print bad + 0 }')
check_eq "evgen_names_sort_in_creation_order_event_time" 0 "$order_ok"
check_eq "evgen_leaves_no_temporary_files" 0 "$(ls -A "$T/many" | grep -c '^\.')"

# 2. --seed: same seed, same rows (concatenated in name order), other seed differs.
for run in a b c; do
	mkdir -p "$T/$run"
	seed=42; [ $run = c ] && seed=43
	"$EVGEN" --spool_dir="$T/$run" --count=20 --interval=0.01 --seed=$seed \
		--duplicate_rate=0.05 --invalid_rate=0.05 --late_rate=0.05 --log_level=warning
	(cd "$T/$run" && cat $(ls | LC_ALL=C sort)) > "$T/$run.all"
done
check "evgen_seed_reproduces_rows" cmp -s "$T/a.all" "$T/b.all"
check "evgen_other_seed_other_rows" ! cmp -s "$T/a.all" "$T/c.all"

# 3. Bad configuration: exit 2, and the message names the key, value and range.
out=$("$EVGEN" --spool_dir="$T/many" --rows_per_file=0 2>&1); rc=$?
check_eq "evgen_bad_value_exit_2" 2 "$rc"
check "evgen_bad_value_names_key_value_range" grep -q 'rows_per_file=0.*\[1, 10000000\]' <<<"$out"
out=$("$EVGEN" --spool_dir="$T/missing" 2>&1); rc=$?
check_eq "evgen_missing_spool_exit_2" 2 "$rc"
check "evgen_missing_spool_message" grep -q "spool_dir=$T/missing: No such file" <<<"$out"
mkdir -p "$T/ro"; chmod 555 "$T/ro"
if [ "$(id -u)" = 0 ]; then
	# root ignores permission bits: check as an unprivileged user instead.
	runnable_copy NOBODY_EVGEN "$EVGEN"
	out=$(runuser -u nobody -- "$NOBODY_EVGEN" --spool_dir="$T/ro" --count=1 2>&1); rc=$?
else
	out=$("$EVGEN" --spool_dir="$T/ro" --count=1 2>&1); rc=$?
fi
check_eq "evgen_unwritable_spool_exit_2" 2 "$rc"
check "evgen_unwritable_spool_message" grep -q "not writable" <<<"$out"
printf '[evgen]\nrows_per_file = 10\nbogus = 1\n' > "$T/bad.ini"
out=$("$EVGEN" -c "$T/bad.ini" 2>&1); rc=$?
check_eq "evgen_unknown_ini_key_exit_2" 2 "$rc"
check "evgen_unknown_ini_key_names_line" grep -q "bad.ini: line 3: unknown key 'bogus'" <<<"$out"
check "evgen_help" bash -c "'$EVGEN' --help | grep -q -- '--rows_per_file'"
check "evgen_version" bash -c "'$EVGEN' --version | grep -q '^evgen (evpipe) [0-9]'"

# 4. Command line overrides the file.
printf '[evgen]\nrows_per_file = 7\nspool_dir = %s\n' "$T/ini" > "$T/ok.ini"
mkdir -p "$T/ini"
"$EVGEN" -c "$T/ok.ini" --rows_per_file=5 --count=1 --log_level=error
check_eq "evgen_command_line_overrides_ini" 6 "$(cat "$T/ini"/*.csv | wc -l)"
