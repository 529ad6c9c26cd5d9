#!/usr/bin/env bash
# `make install` puts exactly the files README's "Installed files" table lists, with
# those modes; PREFIX/sysconfdir reach the units, man pages and alert rules; a second
# install keeps the administrator's configuration; `make uninstall` removes everything
# else.  The man pages render without a warning, are found where systemd's
# Documentation= check looks, and document every key of --help; the installed alert
# rules pass their promtool test.  (The units themselves are proven on a real systemd
# by systemd_host.sh.)
set -u
. "$EVPIPE_ROOT/tests/lib/install.sh"
tmpdir T

check "make_install_runs" install_into "$T/a"
check_eq "destdir_tree_is_readme_table" "$(readme_tree)" "$(tree_of "$T/a")"
for u in evgen evstream; do
	exe=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$T/a/lib/systemd/system/$u.service")
	check "${u}_unit_execstart_is_installed" test -x "$T/a$exe"
	check_eq "${u}_unit_reads_installed_config" "/usr/local/sbin/$u -c /etc/evpipe/evpipe.ini" \
		"$(sed -n 's/^ExecStart=//p' "$T/a/lib/systemd/system/$u.service")"
done

# Another PREFIX and sysconfdir are written into the units and man pages.
install_into "$T/b" PREFIX=/usr sysconfdir=/opt/etc
check_eq "prefix_reaches_units" \
	"/usr/sbin/evstream -c /opt/etc/evpipe/evpipe.ini|-/opt/etc/evpipe/evstream.env" \
	"$(sed -n 's/^ExecStart=//p' "$T/b/lib/systemd/system/evstream.service")|$(sed -n 's/^EnvironmentFile=//p' "$T/b/lib/systemd/system/evstream.service")"
check_eq "no_default_path_left_in_prefix_install" "" \
	"$(grep -lE '/usr/local|(^|[^a-z/])/etc/evpipe' -r "$T/b/lib" "$T/b/usr/share/man" \
		"$T/b/usr/share/doc/evpipe/monitoring")"
# The installed rules, paths rewritten in both, still pass their test where they lie.
if command -v promtool >/dev/null; then
	check "installed_rules_pass_their_test" promtool test rules \
		"$T/b/usr/share/doc/evpipe/monitoring/evpipe.rules.test.yml"
else
	skip "installed_rules_pass_their_test" "promtool missing (Debian package prometheus; make deps)"
fi
check "prefix_install_has_binaries" test -x "$T/b/usr/sbin/evstream" -a -f "$T/b/opt/etc/evpipe/evstream.env"

# A second install keeps an edited configuration; uninstall leaves only that file.
echo "; edited" >>"$T/a/etc/evpipe/evpipe.ini"
install_into "$T/a"
check_eq "reinstall_keeps_edited_config" "; edited" "$(tail -n 1 "$T/a/etc/evpipe/evpipe.ini")"
make -s --no-print-directory -C "$EVPIPE_ROOT" uninstall DESTDIR="$T/a"
check_eq "uninstall_keeps_only_edited_config" "/etc/evpipe/evpipe.ini" \
	"$(cd "$T/a" && find . -type f -printf '/%P\n')"
make -s --no-print-directory -C "$EVPIPE_ROOT" uninstall DESTDIR="$T/b" PREFIX=/usr sysconfdir=/opt/etc
check_eq "uninstall_removes_every_file" "" "$(cd "$T/b" && find . -type f)"
check_eq "uninstall_removes_own_dirs" "" \
	"$(cd "$T/b" && find . -type d \( -name evpipe -o -name sql \))"

# Man pages: clean rendering, found by name (systemd-analyze verify's Documentation=
# check runs man), and every key of --help documented.
if ! command -v man >/dev/null; then
	skip "man_pages_render_cleanly" "man-db is not installed (make deps installs it)"
else
	install_into "$T/m"
	for p in evgen evstream; do
		page=$T/m/usr/local/share/man/man8/$p.8
		warn=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		check_eq "${p}_man_renders_without_warnings" "" "$warn"
		check_eq "${p}_man_found_by_name" "$page" \
			"$(MANPATH=$T/m/usr/local/share/man man -w "$p" 2>&1)"
	done
fi
for p in evgen evstream; do
	missing=$(for k in $("$EVPIPE_RELEASE_BIN/$p" --help | sed -n 's/^  --\([a-z_]*\).*/\1/p'); do
		grep -q -e "\\\\-\\\\-$k\\b" "$EVPIPE_ROOT/systemd/$p.8" || echo "$k"; done)
	check_eq "${p}_man_documents_every_key" "" "$missing"
done
