#!/usr/bin/env bash
# The README's package lists are the Makefile's: its "Build only" line names exactly
# `make -s deps-build-list`, and the systemd walkthrough's apt-get line exactly
# `make -s deps-run-list` (the build and the local PostgreSQL server), so a newcomer
# who follows either by hand installs what `make deps` would.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
README=$EVPIPE_ROOT/README.md
words() { tr -s ' \\\n' '\n' | grep -v '^$' | LC_ALL=C sort; }
mk() { make -s --no-print-directory -C "$EVPIPE_ROOT" "$1" | words; }

build_line=$(sed -n 's/^Build only: `make` (needs `\([^`]*\)`.*/\1/p' "$README")
check_eq "readme_build_only_is_deps_build_list" "$(mk deps-build-list)" "$(words <<<"$build_line")"
# The walkthrough's `sudo apt-get install -y ...` line, continued with a backslash.
apt_line=$(awk '/^sudo apt-get install -y / { on = 1 } on { print; if ($0 !~ /\\$/) exit }' "$README" |
	sed 's/^sudo apt-get install -y //')
check_eq "readme_systemd_apt_line_is_deps_run_list" "$(mk deps-run-list)" "$(words <<<"$apt_line")"
check "make_run_list_has_no_test_toolchain" bash -c \
	"! make -s --no-print-directory -C '$EVPIPE_ROOT' deps-run-list | grep -qwE 'clang|valgrind|prometheus'"
