#!/usr/bin/env bash
# The example configuration documents every key of each daemon's table (the
# --help text is generated from the table), and both daemons accept it as is.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
INI=$EVPIPE_ROOT/systemd/evpipe.ini

for d in evgen evstream; do
	help_keys=$("$EVPIPE_BIN/$d" --help | sed -n 's/^  --\([a-z_]*\).*/\1/p' |
		grep -vxE 'config|help|version|once' | LC_ALL=C sort)
	ini_keys=$(awk -v s="[$d]" '/^\[/ { in_s = ($0 == s); next }
		in_s && /^[a-z_]+ *=/ { sub(/ *=.*/, ""); print }' "$INI" | LC_ALL=C sort)
	check_eq "${d}_example_ini_lists_every_key" "$help_keys" "$ini_keys"
	out=$("$EVPIPE_BIN/$d" -c "$INI" --help 2>&1 >/dev/null); rc=$?
	check_eq "${d}_accepts_example_ini" "0:" "$rc:$out"
done
