#!/usr/bin/env bash
# On a terminal (a pseudo-terminal from script(1)) evstream --once and evgen --burst
# --count=N show one live progress line, redrawn with "\r ESC[K": files N/M, then one
# summary line with the totals that were loaded (written), instead of a line per batch
# (file).  A warning meanwhile gets a line of its own.  With stderr a file, at
# --log_level=warning, or under systemd (INVOCATION_ID) there is no line and no "\r":
# the output is what it always was.  SIGTERM still leaves the summary line.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
if ! command -v script >/dev/null; then
	skip "progress_line" "script(1) (util-linux) is not installed"
	exit 0
fi
stream_setup

# on_tty OUT CMD...: CMD in a pseudo-terminal, outside systemd, on a terminal that can
# erase a line; everything it printed, raw, into OUT.
on_tty() {
	local out=$1; shift
	env -u INVOCATION_ID -u JOURNAL_STREAM TERM=xterm SHELL=/bin/bash \
		script -qec "$(printf '%q ' "$@")" /dev/null >"$out" 2>&1 </dev/null
}
evs_cmd() {
	local args
	mapfile -t args < <(_evstream_args)
	printf '%s\n' "$EVPIPE_BIN/evstream" "${args[@]}" --once
}
mapfile -t EVS < <(evs_cmd)
ESC=$'\e' CR=$'\r'
# What each line of OUT finally shows: the part after its last "\r" (script ends lines "\r\n").
shown() { sed "s/$CR\$//" "$1" | awk -F"$CR" '{ print $NF }'; }
again() { pg_reset_tables; rm -rf "$CKPT"; }
csv_count() { find "$1" -maxdepth 1 -name '*.csv' -type f | wc -l; }

# 1. evstream --once over 60 files, a batch each, some with invalid rows (a warning
# each), on a terminal.  Rows are not known before they are read: their total and
# the ETA are estimated from the bytes read ("~").
evgen_run --count=60 --rows_per_file=100 --seed=5 --invalid_rate=0.01 --burst
on_tty "$ST/tty" "${EVS[@]}"
rows=$(q 'SELECT sum(rows_read) FROM evstream_batches')
check_eq "evstream_tty_loaded_everything" "60 60" \
	"$(q 'SELECT count(*), sum(array_length(files, 1)) FROM evstream_batches' | tr '|' ' ')"
check "evstream_tty_line_redrawn_with_files_of_total" \
	grep -qaE "$CR$ESC\[Kevstream: files [0-9]+/60, rows [0-9]+/(~[0-9]+|\?), [0-9]+ rows/s, elapsed 0:[0-9]{2}, ETA " "$ST/tty"
check "evstream_tty_estimates_marked" \
	grep -qaE "$ESC\[Kevstream: files [1-9][0-9]*/60, rows [0-9]+/~[0-9]+, [0-9]+ rows/s, elapsed 0:[0-9]{2}, ETA ~0:[0-9]{2}" "$ST/tty"
check "evstream_tty_summary_has_the_totals" \
	grep -qaE "^$ESC\[Kevstream: 60/60 files, $rows rows in [0-9.]+ s \([0-9]+ rows/s\)\$" <(shown "$ST/tty")
check_fails "evstream_tty_no_batch_lines" grep -qa '\[batch ' "$ST/tty"
warned=$(grep -ac 'invalid row' "$ST/tty")
check "evstream_tty_warnings_seen" test "$warned" -ge 1
check_eq "evstream_tty_warning_on_its_own_line" "$warned" \
	"$(shown "$ST/tty" | grep -acE "^($ESC\[K)?[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ evstream\[[0-9]+\] warning: .*invalid row")"

# 2. the same, stderr a file: a line per batch, no "\r", the same warnings
again
"${EVS[@]}" >"$ST/file" 2>&1
check_eq "evstream_file_batch_lines" 60 "$(grep -c '\[batch ' "$ST/file")"
check_fails "evstream_file_no_cr" grep -q "$CR" "$ST/file"
check_eq "evstream_file_same_warnings" "$warned" "$(grep -c 'invalid row' "$ST/file")"

# 3. a terminal at --log_level=warning, or under systemd: no progress line
again
on_tty "$ST/tty_warn" "${EVS[@]}" --log_level=warning
check_fails "evstream_warning_level_no_line" grep -qaE "evstream: files|$ESC\[K" "$ST/tty_warn"
check_eq "evstream_warning_level_loaded" 60 "$(q 'SELECT count(*) FROM evstream_batches')"
again
on_tty "$ST/tty_systemd" env INVOCATION_ID=0123456789abcdef "${EVS[@]}"
check_fails "evstream_systemd_no_line" grep -qaE "evstream: files|$ESC\[K" "$ST/tty_systemd"
check_eq "evstream_systemd_batch_lines" 60 "$(grep -ac '\[batch ' "$ST/tty_systemd")"

# 4. evgen --burst --count=N: the line, the summary of N files and N*rows_per_file rows
GEN=("$EVPIPE_BIN/evgen" --burst --rows_per_file=100)
mkdir -p "$ST/g1" "$ST/g2" "$ST/g3" "$ST/g4" "$ST/g5" "$ST/g6"
on_tty "$ST/gen_tty" "${GEN[@]}" --spool_dir="$ST/g1" --count=40
check_eq "evgen_tty_wrote_all" 40 "$(csv_count "$ST/g1")"
check "evgen_tty_line_redrawn_with_files_of_total" \
	grep -qaE "$CR$ESC\[Kevgen: files [0-9]+/40, rows [0-9]+/4000, [0-9]+ rows/s, elapsed 0:[0-9]{2}, ETA " "$ST/gen_tty"
check "evgen_tty_summary_has_the_totals" \
	grep -qaE "^$ESC\[Kevgen: 40/40 files, 4000 rows in [0-9.]+ s \([0-9]+ rows/s\)\$" <(shown "$ST/gen_tty")
check_fails "evgen_tty_no_per_file_lines" grep -qa 'info: wrote events_' "$ST/gen_tty"
# never wider than the terminal (less a column, so it cannot wrap): 40 columns here
on_tty "$ST/gen_narrow" sh -c 'stty cols 40 && exec "$@"' sh "${GEN[@]}" --spool_dir="$ST/g6" --count=40
check_eq "evgen_tty_line_fits_40_columns" "0 39" "$(tr "$CR" '\n' <"$ST/gen_narrow" |
	awk -v e="$ESC" 'index($0, e "[Kevgen: files") == 1 { n++; l = length($0) - 3; if (l > 39) bad++
		if (l > max) max = l } END { print bad + 0, (n ? max : -1) }')"
"${GEN[@]}" --spool_dir="$ST/g2" --count=5 >"$ST/gen_file" 2>&1
check_eq "evgen_file_per_file_lines" 5 "$(grep -c 'info: wrote events_' "$ST/gen_file")"
check_fails "evgen_file_no_cr" grep -q "$CR" "$ST/gen_file"
on_tty "$ST/gen_warn" "${GEN[@]}" --spool_dir="$ST/g3" --count=5 --log_level=warning
check_fails "evgen_warning_level_no_line" grep -qaE "evgen: files|$ESC\[K" "$ST/gen_warn"
on_tty "$ST/gen_systemd" env INVOCATION_ID=0123456789abcdef "${GEN[@]}" --spool_dir="$ST/g4" --count=5
check_fails "evgen_systemd_no_line" grep -qaE "evgen: files|$ESC\[K" "$ST/gen_systemd"

# 5. SIGTERM in the middle: the summary line (of what was written) and its newline
# shellcheck disable=SC2016  # $$ and $@ are the inner shell's
on_tty "$ST/gen_term" sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$ST/gen.pid" \
	"${GEN[@]}" --spool_dir="$ST/g5" --count=100000000 &
TTY_PID=$!
at_exit "kill $TTY_PID 2>/dev/null"
wait_for 10 test -s "$ST/gen.pid" && wait_for 10 grep -qa 'evgen: files [1-9]' "$ST/gen_term"
kill -TERM "$(cat "$ST/gen.pid")"
wait "$TTY_PID"
written=$(csv_count "$ST/g5")
check "evgen_sigterm_summary_of_what_was_written" grep -qaE \
	"^$ESC\[Kevgen: $written/100000000 files, $((written * 100)) rows in [0-9.]+ s " <(shown "$ST/gen_term")
check "evgen_sigterm_stopping_line_after_it" grep -qa 'info: stopping: .* after a signal' <(shown "$ST/gen_term")
