#!/usr/bin/env bash
# evgen --burst throughput on one core (release build): rows/s for a few file sizes,
# every file fsync'ed and renamed as in production.  Prints one line per size.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EVGEN=${EVGEN:-$ROOT/evgen}
ROWS_TOTAL=${ROWS_TOTAL:-2000000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/evgen-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT

echo "evgen --burst, $ROWS_TOTAL rows per run, one core ($(nproc) online), $(uname -m)"
for rows in 100 1000 10000 100000; do
	rm -f "$dir"/*.csv
	count=$((ROWS_TOTAL / rows))
	line=$(taskset -c 0 "$EVGEN" --spool_dir="$dir" --burst --seed=1 --count=$count \
		--rows_per_file=$rows 2>&1 | grep 'stopping:')
	printf 'rows_per_file=%-7d files=%-6d %s\n' "$rows" "$count" "$(sed 's/.*in \(.*\)/\1/' <<<"$line")"
done
