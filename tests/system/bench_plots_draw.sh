#!/usr/bin/env bash
# bench/plot.sh draws valid SVG from the committed bench/data/*.tsv, and
# bench/results.md links only plots that exist and that the committed data redraws:
# a plot under a table is never a stale picture nobody can reproduce.  Each SVG is
# well-formed XML with an <svg> root, draws something (a path), and carries its data's
# "# source:" line, so a figure never loses the run it came from.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
B=$EVPIPE_ROOT/bench
CHECKS=(plot_sh_draws svg_well_formed svg_names_its_source results_links_exist
	results_plots_redrawn_from_data no_unlinked_plots)

if ! command -v gnuplot >/dev/null; then
	for c in "${CHECKS[@]}"; do skip "bench_$c" "gnuplot is not installed (make deps installs gnuplot-nox)"; done
	exit 0
fi
command -v python3 >/dev/null || { fail bench_plots "python3 is missing (make deps installs it)"; exit 1; }

tmpdir T
out=$(bash "$B/plot.sh" "$B/data" "$T/plots" 2>&1); rc=$?
drawn=$(cd "$T/plots" 2>/dev/null && ls -1 -- *.svg 2>/dev/null | LC_ALL=C sort)
if ((rc == 0)) && [[ -n $drawn ]]; then
	pass bench_plot_sh_draws
else
	fail bench_plot_sh_draws "exit $rc, drew '${drawn//$'\n'/ }': $(tail -n 5 <<<"$out")"
fi

# Well-formed, an <svg> root, at least one path: the drawn ones and the committed ones.
bad=$(python3 - "$T/plots" "$B/plots" <<-'EOF'
	import glob, os, sys
	import xml.etree.ElementTree as ET
	NS = '{http://www.w3.org/2000/svg}'
	for d in sys.argv[1:]:
	    for f in sorted(glob.glob(os.path.join(d, '*.svg'))):
	        try:
	            root = ET.parse(f).getroot()
	        except ET.ParseError as e:
	            print(f'{f}: not XML: {e}')
	            continue
	        if root.tag != NS + 'svg':
	            print(f'{f}: root is {root.tag}, not svg')
	        elif not any(True for _ in root.iter(NS + 'path')):
	            print(f'{f}: draws no path')
	EOF
)
check_eq bench_svg_well_formed "" "$bad"

# Each drawn plot shows the "# source:" line of the data it came from (the first file
# that names the plot's data: plot.sh's header lists them).
missing=""
for svg in $drawn; do
	name=${svg%.svg}
	data=$(sed -n "s/^#   $name\\.svg  *\\([a-z_*]*\\)\\.tsv.*/\\1/p" "$B/plot.sh")
	[[ -n $data ]] || { missing+=" $name(not in plot.sh's header)"; continue; }
	first=$(find "$B/data" -maxdepth 1 -name "$data.tsv" | LC_ALL=C sort -V | head -n 1)
	src=$(sed -n 's/^# source: //p' "$first" | head -n 1)
	# The SVG escapes what XML must; the source line has no & < > ' " to escape.
	[[ -n $src ]] && grep -qF -- "data: $src" "$T/plots/$svg" || missing+=" $name"
done
check_eq bench_svg_names_its_source "" "$missing"

# results.md's plot links: each to a committed, non-empty SVG that the data redraws.
links=$(sed -n 's/^!\[[^]]*\](\(plots\/[^)]*\.svg\))$/\1/p' "$B/results.md" | LC_ALL=C sort -u)
absent="" unredrawn=""
for l in $links; do
	[[ -s $B/$l ]] || absent+=" $l"
	[[ -s $T/plots/${l#plots/} ]] || unredrawn+=" $l"
done
if [[ -z $links ]]; then
	fail bench_results_links_exist "bench/results.md links no plot"
else
	check_eq bench_results_links_exist "" "$absent"
fi
check_eq bench_results_plots_redrawn_from_data "" "$unredrawn"

# Every committed SVG is shown somewhere in results.md.
unlinked=""
for f in "$B"/plots/*.svg; do
	[[ -e $f ]] || continue
	grep -qxF "plots/${f##*/}" <<<"$links" || unlinked+=" plots/${f##*/}"
done
check_eq bench_no_unlinked_plots "" "$unlinked"
