#!/usr/bin/env bash
# plot.sh — bench.sh's tables drawn as SVG with gnuplot (Debian's gnuplot-nox).
#
#   bench/plot.sh DATA_DIR PLOTS_DIR
#
# Reads the TSV files bench.sh writes (one per table, plus the RSS series and per-file
# latencies; a "# source:" line, a header line, then the figures, "-" where one is
# missing) and draws each plot whose data is there into PLOTS_DIR/NAME.svg:
#
#   throughput.svg    backfill.tsv: rows loaded per second, evstream and N psql \copy by N,
#                     pgloader (and psql \copy per file) as lines across
#   latency.svg       latency.tsv: p50, p99 and max per trigger_interval beside the goal
#   latency_cdf.svg   latency_files_*.tsv: the share of files committed within each time
#   rss_evstream.svg  rss_backfill_evs_*.tsv, rss_single.tsv, rss_stream.tsv: evstream's
#                     RSS over time in each memory case, beside the 64 MB goal
#   rss_backfill.svg  rss_backfill_*.tsv: every backfill contender's RSS over time
#   growth.svg        growth.tsv: µs per row as the backfill grows, evstream and one \copy
#   gzip.svg          gzip.tsv: evstream's CPU per row from plain and .csv.gz files
#
# Every plot carries its data's "# source:" line, so a figure never loses the run it
# came from.  Prints each SVG written; exits 1 if gnuplot is missing or failed on any.
set -uo pipefail

DATA=${1:?usage: plot.sh DATA_DIR PLOTS_DIR}
PLOTS=${2:?usage: plot.sh DATA_DIR PLOTS_DIR}
command -v gnuplot >/dev/null ||
	{ echo "plot.sh: gnuplot is not installed (apt-get install gnuplot-nox); no plots drawn" >&2; exit 1; }
mkdir -p "$PLOTS" || { echo "plot.sh: cannot create $PLOTS; no plots drawn" >&2; exit 1; }
WORK=$(mktemp -d) || { echo "plot.sh: cannot create a temp dir; no plots drawn" >&2; exit 1; }
trap 'rm -rf "$WORK"' EXIT
FAILED=0

# Lines of data in FILE (after the comment lines and the header).
rows() { [[ -f $1 ]] && awk '/^#/ { next } h++' "$1" | wc -l || echo 0; }
# Text for a gnuplot single-quoted string (where only '' needs escaping).
gq() { printf '%s' "${1//\'/\'\'}"; }
source_of() { sed -n 's/^# source: //p' "$1" | head -n 1; }

# What every plot shares: the SVG terminal, tab-separated data with "-" for a gap, and
# the data's source along the bottom edge.
preamble() {	# OUT_SVG SOURCE_TEXT
	cat <<-EOF
	set encoding utf8
	set terminal svg size 820,460 dynamic noenhanced font 'sans,12' background '#ffffff'
	set output '$(gq "$1")'
	set datafile separator '\t'
	set datafile missing '-'
	set border 3
	set tics nomirror
	set grid ytics lc rgb '#dddddd'
	set bmargin 5
	set label 99 '$(gq "data: $2")' at screen 0.01, screen 0.025 font ',9' tc rgb '#666666'
	EOF
}

# Runs the gnuplot script on stdin for NAME; reports a failure with gnuplot's words.
draw() {	# NAME
	local svg=$PLOTS/$1.svg
	cat >"$WORK/$1.gp"
	if gnuplot "$WORK/$1.gp" 2>"$WORK/$1.err" && [[ -s $svg ]]; then
		echo "plot.sh: $svg"
	else
		echo "plot.sh: gnuplot failed on $1 (script $WORK/$1.gp): $(tail -n 5 "$WORK/$1.err")" >&2
		rm -f "$svg"
		FAILED=1
	fi
}

plot_throughput() {
	local f=$DATA/backfill.tsv w=$WORK/throughput.tsv lines=() pgl per
	(($(rows "$f") > 0)) || return 0
	# Wide: N, evstream's rows/s, N \copy's rows/s (thousands).
	awk -F'\t' '/^#/ { next } !h++ { next }
		$1 == "evs" { e[$2] = $4; n[$2] = 1 } $1 == "copy" { c[$2] = $4; n[$2] = 1 }
		END { for (k in n) printf "%d\t%s\t%s\n", k, (k in e) ? e[k] / 1000 : "-", (k in c) ? c[k] / 1000 : "-" }' \
		"$f" | sort -n >"$w"
	pgl=$(awk -F'\t' '$1 == "pgloader" { print $4 / 1000 }' "$f")
	per=$(awk -F'\t' '$1 == "copy_per_file" { print $4 / 1000 }' "$f")
	[[ -n $pgl ]] && lines+=(", $pgl with lines dt 2 lw 2 lc rgb '#2ca02c' title 'pgloader (its defaults)'")
	[[ -n $per ]] && lines+=(", $per with lines dt 3 lw 2 lc rgb '#9467bd' title 'psql \\copy per file, one after another'")
	{
		preamble "$PLOTS/throughput.svg" "$(source_of "$f")"
		cat <<-EOF
		set title 'Backfill: rows loaded per second, by number of database sessions'
		set ylabel 'thousand rows loaded per second'
		set xlabel 'sessions (N)'
		set key top left Left reverse
		set yrange [0:*]
		set offsets 0, 0, graph 0.3, 0
		set xrange [-0.6:$(($(wc -l <"$w") - 1)).6]
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.85 border -1
		set boxwidth 0.9
		plot '$w' using 2:xtic(1) title 'evstream --once --copy_sessions=N' lc rgb '#1f77b4', \\
		     '' using 3 title 'N psql \\copy at once over the cleaned rows' lc rgb '#ff7f0e', \\
		     '' using (\$0 - 1.0/6):2:(sprintf('%.0f', \$2)) with labels offset 0,0.7 notitle, \\
		     '' using (\$0 + 1.0/6):3:(sprintf('%.0f', \$3)) with labels offset 0,0.7 notitle${lines[*]}
		EOF
	} | draw throughput
}

plot_latency() {
	local f=$DATA/latency.tsv n k ti goal
	n=$(rows "$f")
	((n > 0)) || return 0
	{
		preamble "$PLOTS/latency.svg" "$(source_of "$f")"
		cat <<-EOF
		set multiplot layout 1,$n title 'Steady stream: latency from a file entering the spool to its batch committed'
		set ylabel 'ms'
		set yrange [0:*]
		set offsets 0, 0, graph 0.25, 0
		set style fill solid 0.85 border -1
		set boxwidth 0.6
		set key top left Left reverse
		EOF
		for ((k = 1; k <= n; k++)); do
			# Row k: p50, p99, max as three boxes; the p99 goal as a dashed line.
			awk -F'\t' -v k="$k" '/^#/ { next } !h++ { next } ++r == k {
				printf "p50\t%s\np99\t%s\nmax\t%s\n", $5, $6, $7 }' "$f" >"$WORK/latency.$k"
			read -r ti goal < <(awk -F'\t' -v k="$k" '/^#/ { next } !h++ { next } ++r == k { print $1, $8 }' "$f")
			cat <<-EOF
			set title 'trigger_interval $ti s'
			set xrange [-0.6:2.6]
			plot '$WORK/latency.$k' using 0:2:xtic(1) with boxes lc rgb '#1f77b4' notitle, \\
			     '' using 0:2:(sprintf('%.0f', \$2)) with labels offset 0,0.7 notitle, \\
			     $goal with lines dt 2 lw 2 lc rgb '#d62728' title 'goal for p99: $goal ms'
			EOF
		done
		echo 'unset multiplot'
	} | draw latency
}

plot_latency_cdf() {
	local files=() f list=""
	for f in "$DATA"/latency_files_*.tsv; do
		[[ -f $f ]] && (($(rows "$f") > 0)) && files+=("$f")
	done
	((${#files[@]})) || return 0
	for f in "${files[@]}"; do list+=" $(gq "$f")"; done
	{
		preamble "$PLOTS/latency_cdf.svg" "$(source_of "${files[0]}")"
		cat <<-EOF
		set title 'Steady stream: share of files committed within a given time of entering the spool'
		set xlabel 'latency per file, ms (log scale)'
		set ylabel 'share of files, %'
		set logscale x
		set yrange [0:100]
		set key bottom right
		files = '${list# }'
		plot for [f in files] f using 1:(100 * \$2) with steps lw 2 title columnheader(2)
		EOF
	} | draw latency_cdf
}

# The RSS series FILES... as lines (their second column's header is the legend).
rss_plot() {	# NAME TITLE LOG(0|1) GOAL_MB FILE...
	local name=$1 title=$2 log=$3 goal=$4 list="" f
	shift 4
	for f in "$@"; do list+=" $(gq "$f")"; done
	{
		preamble "$PLOTS/$name.svg" "$(source_of "$1")"
		cat <<-EOF
		set title '$(gq "$title")'
		set xlabel 'seconds since the start of the run'
		set key bottom right
		files = '${list# }'
		EOF
		# The series end at different times; the key sits low on the right, where the
		# short runs have ended (and, on the log scale, below 1 MB no process ever is).
		if ((log)); then
			echo "set logscale y"
			echo "set yrange [1:*]"
			echo "set ylabel 'RSS, MB (log scale)'"
		else
			echo "set ylabel 'RSS, MB'"
			echo "set yrange [0:*]"
		fi
		if [[ -n $goal ]]; then
			echo "plot for [f in files] f using 1:2 with lines lw 2 title columnheader(2), \\"
			echo "     $goal with lines dt 2 lw 2 lc rgb '#d62728' title 'goal: $goal MB'"
		else
			echo "plot for [f in files] f using 1:2 with lines lw 2 title columnheader(2)"
		fi
	} | draw "$name"
}

plot_rss() {
	local f k evs=() all=()
	# The backfill's evstream series in order of N, then (b) and (c).
	while IFS= read -r f; do
		(($(rows "$f") > 0)) && evs+=("$f")
	done < <(find "$DATA" -maxdepth 1 -name 'rss_backfill_evs_*.tsv' | sort -V)
	for f in "$DATA/rss_single.tsv" "$DATA/rss_stream.tsv"; do
		[[ -f $f ]] && (($(rows "$f") > 0)) && evs+=("$f")
	done
	((${#evs[@]})) && rss_plot rss_evstream "evstream's RSS over time (sampled every 0.1 s)" 0 64 "${evs[@]}"
	# evstream's, then N psql's, by N, then pgloader's: the table's order.
	while IFS= read -r f; do
		(($(rows "$f") > 0)) && all+=("$f")
	done < <(for k in evs copy pgloader; do
		find "$DATA" -maxdepth 1 -name "rss_backfill_$k*.tsv" | sort -V
	done)
	((${#all[@]})) && rss_plot rss_backfill "Backfill, first round: each contender's RSS over time" 1 "" "${all[@]}"
	return 0
}

plot_growth() {
	local f=$DATA/growth.tsv
	(($(rows "$f") > 0)) || return 0
	{
		preamble "$PLOTS/growth.svg" "$(source_of "$f")"
		cat <<-EOF
		set title 'Cost growth: time per row as the backfill grows'
		set xlabel 'million rows read'
		set ylabel 'µs per row'
		set yrange [0:*]
		set xrange [0:*]
		set key bottom right
		plot '$(gq "$f")' using (\$2 / 1e6):4 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'evstream --once (per row read)', \\
		     '' using (\$2 / 1e6):4:(sprintf('%.2f', \$4)) with labels offset 0,1 notitle, \\
		     '' using (\$2 / 1e6):7 with linespoints lw 2 pt 5 lc rgb '#ff7f0e' title 'one psql \\copy of the cleaned rows (per row loaded)', \\
		     '' using (\$2 / 1e6):7:(sprintf('%.2f', \$7)) with labels offset 0,1 notitle
		EOF
	} | draw growth
}

plot_gzip() {
	local f=$DATA/gzip.tsv
	(($(rows "$f") > 0)) || return 0
	# Only when both spools were measured (an evstream without gzip support leaves "-").
	awk -F'\t' '/^#/ { next } !h++ { next } $6 ~ /^[0-9.]+$/ { n++ } END { exit n < 2 }' "$f" || return 0
	{
		preamble "$PLOTS/gzip.svg" "$(source_of "$f")"
		cat <<-EOF
		set title 'evstream --once: CPU per row read, plain and gzip-compressed spool files'
		set ylabel 'ns of CPU (user + system) per row read'
		set key autotitle columnheader
		set yrange [0:*]
		set offsets 0, 0, graph 0.15, 0
		set xrange [-0.6:1.6]
		set style fill solid 0.85 border -1
		set boxwidth 0.6
		plot '$(gq "$f")' using 0:6:xtic(stringcolumn(1) eq 'gzip' ? '.csv.gz' : '.csv') with boxes lc rgb '#1f77b4' notitle, \\
		     '' using 0:6:(sprintf('%.0f ns, %.0f MB on disk', \$6, \$2 / 1048576)) with labels offset 0,0.7 notitle
		EOF
	} | draw gzip
}

plot_throughput
plot_latency
plot_latency_cdf
plot_rss
plot_growth
plot_gzip
exit "$FAILED"
