# shellcheck shell=bash
# install.sh — what the install tests share.
#
#   install_into DEST [VAR=VALUE ...]   `make install DESTDIR=DEST` with the release daemons
#                                       of $EVPIPE_RELEASE_BIN; extra make variables appended
#   tree_of DEST                        every file below DEST as "/path mode", sorted
#   readme_tree                         the same list, from README's "Installed files" table
source "$EVPIPE_ROOT/tests/lib/testlib.sh"

install_into() {
	local dest=$1; shift
	make -s --no-print-directory -C "$EVPIPE_ROOT" install DESTDIR="$dest" \
		RELEASE_BIN="$EVPIPE_RELEASE_BIN" "$@"
}

tree_of() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '/%P %m\n') |
		awk '{ printf "%s %04d\n", $1, $2 }' | LC_ALL=C sort
}

readme_tree() {
	awk -F'|' '/^### Installed files/ { on = 1; next } on && /^#/ { exit }
		on && $2 ~ /^ *`\// { p = $2; m = $3; gsub(/[` ]/, "", p); gsub(/ /, "", m); print p, m }' \
		"$EVPIPE_ROOT/README.md" | LC_ALL=C sort
}
