#!/usr/bin/env bash
# evpipe under a real systemd (PID 1 in a container, with Debian's PostgreSQL 15):
# first the README's "Run with systemd" as written: `make install` tree copied in,
# systemd-sysusers, systemd-tmpfiles, a role with no password (peer authentication
# over the socket), the schema, `systemctl enable --now evgen evstream` with the
# shipped configuration untouched; for a minute the backlog stays steady, nothing
# says "falling behind", and `sudo -u evpipe evstream -c /etc/evpipe/evpipe.ini
# status` says HEALTHY.  Then, as for a remote server, TCP with a password in the
# evpipe user's ~/.pgpass and a faster test configuration, and what systemd must see: rows within two trigger intervals, STATUS=, journal
# entries with BATCH_ID=/FILE= fields and priorities, READY=1 only once PostgreSQL
# answers, a restart after kill -9, the watchdog's restart after kill -STOP, every
# valid event_id exactly once afterwards, STOPPING=1 and exit 0 on stop, and both
# units' `systemd-analyze security` (printed, <= 2.0) and `verify`.
# Needs the container engine that ../shared/tools/container-engine sets up (podman and
# its image); without one every check is SKIPped, never passed.  podman is driven
# directly, not through the API socket: remote exec loses its output now and then
# ("lost synchronization with multiplexed stream", podman issue 15321).
set -u
. "$EVPIPE_ROOT/tests/lib/install.sh"
IMAGE=localhost/systemd-host:bookworm
TRIGGER=1	# evstream's trigger_interval in the host, seconds

PODMAN=(podman)
if ! command -v podman >/dev/null || ! podman image exists "$IMAGE" 2>/dev/null; then
	skip "systemd_host" "no container engine with $IMAGE (run ../shared/tools/container-engine up)"
	exit 0
fi
tmpdir T
C=evpipe-systemd-$$-$RANDOM
x() { "${PODMAN[@]}" exec "$C" "$@"; }
q() { x runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -d evpipe -c "$1"; }
main_pid() { x systemctl show -P MainPID "$1"; }
state() { x systemctl is-active "$1"; }
# Each poll is a podman exec into the host container.
WAIT_FOR_INTERVAL=0.25

# --- the install tree, as README says ------------------------------------------------
check "make_install_destdir" install_into "$T/dest"
check_eq "destdir_tree_is_readme_table" "$(readme_tree)" "$(tree_of "$T/dest")"
tar -C "$T/dest" -cf "$T/tree.tar" . || { fail "tar_tree" "could not pack $T/dest"; exit 1; }

# --- boot the host -------------------------------------------------------------------
if ! "${PODMAN[@]}" run -d --privileged --systemd=always --name "$C" "$IMAGE" >/dev/null; then
	fail "host_boots" "podman run failed"
	exit 1
fi
at_exit "${PODMAN[*]} rm -f -t 0 $C >/dev/null 2>&1"
booted() { [[ $(x systemctl is-system-running 2>/dev/null) =~ ^(running|degraded)$ ]]; }
check "host_boots" wait_for 60 booted

# --- install as README says: tree, user, spool, database, secret ---------------------
PW=pw-$RANDOM$RANDOM-secret
"${PODMAN[@]}" cp "$T/tree.tar" "$C:/tmp/tree.tar"
# --keep-directory-symlink: /lib is a symlink to usr/lib on Debian; keep it one.
check "install_tree_into_host" x tar -C / --keep-directory-symlink --no-same-owner -xf /tmp/tree.tar
check "systemd_sysusers" x systemd-sysusers
check "systemd_tmpfiles_create" x systemd-tmpfiles --create
check_eq "spool_owned_by_evpipe" "evpipe:evpipe 750" "$(x stat -c '%U:%G %a' /var/spool/evpipe)"
check_eq "env_file_root_0600" "root:root 600" "$(x stat -c '%U:%G %a' /etc/evpipe/evstream.env)"
check "role_and_database_created" x sh -c "runuser -u postgres -- createuser evpipe &&
	runuser -u postgres -- createdb -O evpipe evpipe"
check "schema_loaded" x runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -d evpipe \
	-c 'SET client_min_messages = warning' -c 'SET ROLE evpipe' \
	-f /usr/local/share/evpipe/sql/01_init.sql
x systemctl daemon-reload

# --- the shipped defaults, as the README runs them: a steady backlog, HEALTHY -------------
check "systemctl_enable_now" x systemctl enable --now evgen evstream
# The README's health check, as the service user: text, exit status, pending count.
status_as_evpipe() { x runuser -u evpipe -- evstream -c /etc/evpipe/evpipe.ini status; }
has_rows() { [[ $(q "SELECT count(*) > 0 FROM events") == t ]]; }
check "shipped_defaults_rows_within_one_trigger" wait_for 25 has_rows
pendings= codes=
for _ in $(seq 12); do	# a minute: six of the default 10 s triggers, twelve evgen files
	sleep 5
	out=$(status_as_evpipe 2>&1); codes+="$? "
	pendings+="$(sed -n 's/^  spool .*: \([0-9]*\) pending.*/\1/p' <<<"$out") "
done
echo "$out"
echo "shipped defaults: files pending every 5 s: $pendings; status exit codes: $codes"
check_eq "status_as_service_user_healthy_throughout" "$(printf '0 %.0s' $(seq 12))" "$codes"
check "status_as_service_user_says_healthy" grep -q '^evpipe status: HEALTHY' <<<"$out"
check "shipped_defaults_backlog_steady" awk -v p="$pendings" \
	'BEGIN { n = split(p, a, " "); for (i = 1; i <= n; i++) if (a[i] == "" || a[i] > 3) exit 1; exit !(n == 12) }'
check_eq "shipped_defaults_never_falling_behind" 0 \
	"$(x journalctl -u evstream -o cat --no-pager | grep -c 'falling behind')"
check "shipped_defaults_stop" x systemctl stop evgen evstream

# --- as for a remote server: TCP, a password in ~evpipe/.pgpass; faster settings ------
x runuser -u postgres -- psql -X -q -c "ALTER ROLE evpipe PASSWORD '$PW'"
x sh -c "echo 'localhost:5432:evpipe:evpipe:$PW' >/var/lib/evpipe/.pgpass &&
	chown evpipe:evpipe /var/lib/evpipe/.pgpass && chmod 0600 /var/lib/evpipe/.pgpass"
check_eq "evpipe_home_is_state_dir" /var/lib/evpipe "$(x runuser -u evpipe -- sh -c 'echo ~')"
x sed -i -e "s/^trigger_interval = .*/trigger_interval = $TRIGGER/" \
	-e 's/^conninfo = .*/conninfo = host=localhost dbname=evpipe user=evpipe/' \
	-e 's/^max_files_per_trigger = .*/max_files_per_trigger = 0/' \
	-e 's/^clean_source = .*/clean_source = archive/' -e 's/^retry_max = .*/retry_max = 1/' \
	-e 's/^interval = .*/interval = 0.2/' -e 's/^rows_per_file = .*/rows_per_file = 50/' \
	-e 's/^duplicate_rate = .*/duplicate_rate = 0.02/' /etc/evpipe/evpipe.ini
check_eq "test_config_applied" 8 "$(x grep -cE "^(trigger_interval = $TRIGGER|max_files_per_trigger = 0|clean_source = archive|retry_max = 1|interval = 0.2|rows_per_file = 50|duplicate_rate = 0.02|conninfo = host=localhost .*)$" /etc/evpipe/evpipe.ini)"

# --- start: rows within two trigger intervals of READY=1 -----------------------------
# shellcheck disable=SC2016  # expanded inside the host
n0=$(q "SELECT count(*) FROM events")
ms=$(x bash -c 'systemctl start evgen evstream || exit 1
	t1=$(date +%s%N)
	until [ "$(runuser -u postgres -- psql -XqAt -d evpipe -c "SELECT count(*) > '"$n0"' FROM events")" = t ]; do
		[ $(( ($(date +%s%N) - t1) / 1000000 )) -gt 20000 ] && break
		sleep 0.05
	done
	echo $(( ($(date +%s%N) - t1) / 1000000 ))')
check "systemctl_start_evgen_evstream" test -n "$ms"
check "rows_within_two_trigger_intervals" test "${ms:-99999}" -le $((2 * TRIGGER * 1000))
echo "first rows in events ${ms} ms after systemctl start returned (trigger_interval ${TRIGGER} s)"
check_eq "both_active" "active active" "$(x systemctl is-active evgen evstream | tr '\n' ' ' | sed 's/ $//')"

# --- STATUS= and the journal's fields ------------------------------------------------
has_status() {
	x systemctl status --no-pager evstream | grep -qE \
		'Status: "last batch [0-9]+: [0-9]+ rows written \([0-9]+ since start\), [0-9]+ files pending, watermark '
}
check "systemctl_status_shows_status_line" wait_for 5 has_status
x systemctl status --no-pager evstream evgen | grep 'Status:'
n=$(q "SELECT max(batch_id) FROM evstream_batches")
row=$(q "SELECT written || ' ' || rejected FROM evstream_batches WHERE batch_id = $n")
entry() { json=$(x journalctl -u evstream "BATCH_ID=$n" -o json --no-pager); [[ -n $json ]]; }
wait_for 5 entry
check_eq "journal_batch_id_selects_one_entry" 1 "$(grep -c . <<<"$json")"
has() { grep -qF "\"$1\":\"$2" <<<"$json"; }
check "journal_batch_entry_batch_id" has BATCH_ID "$n\""
check "journal_batch_entry_rows_written_as_in_db" has ROWS_WRITTEN "${row% *}\""
check "journal_batch_entry_rejected_as_in_db" has REJECTED "${row#* }\""
check "journal_batch_entry_watermark" has WATERMARK ""
check "journal_batch_entry_priority_info" has PRIORITY '6"'
check "journal_batch_entry_identifier" has SYSLOG_IDENTIFIER 'evstream"'
check "journal_batch_entry_message" has MESSAGE "[batch $n] files="

# --- a bad row and a bad file: warnings with FILE=, not the batch lines ---------------
uuid=$(x cat /proc/sys/kernel/random/uuid)
now=$(x date -u '+%Y-%m-%d %H:%M:%S.000000')
put() { # NAME CONTENT: written under a hidden name, then renamed, as evgen does
	x sh -c "printf '$2' >/var/spool/evpipe/.put.tmp && chown evpipe:evpipe /var/spool/evpipe/.put.tmp &&
		mv /var/spool/evpipe/.put.tmp /var/spool/evpipe/$1"
}
H='event_id,user_id,event_type,product_id,price,event_time\n'
put events_zz_bad_row.csv "${H}not-a-uuid,1,view,1,0.00,$now\n$uuid,1,view,1,0.00,$now\n"
put events_zz_bad_file.csv 'event_id,user_id,event_type,product_id,event_time\n'
taken() { [[ $(x sh -c 'ls /var/spool/evpipe/archive/events_zz_bad_row.csv /var/spool/evpipe/quarantine/events_zz_bad_file.csv 2>/dev/null | wc -l') == 2 ]]; }
check "bad_row_archived_bad_file_quarantined" wait_for $((5 * TRIGGER)) taken
check_eq "bad_row_in_event_rejects" 1 \
	"$(q "SELECT count(*) FROM event_rejects WHERE file = 'events_zz_bad_row.csv' AND reason = 'event_id'")"
warnings() { warn=$(x journalctl -u evstream -p warning -o cat --no-pager); [[ $warn == *events_zz_bad_file.csv* && $warn == *events_zz_bad_row.csv* ]]; }
check "journal_p_warning_shows_bad_row_and_bad_file" wait_for 5 warnings
check_eq "journal_p_warning_has_no_batch_lines" 0 "$(grep -c '^\[batch ' <<<"$warn")"
check "journal_p_warning_excludes_info" test "$(x journalctl -u evstream -o cat --no-pager | grep -c '^\[batch ')" -gt 0
jw=$(x journalctl -u evstream FILE=events_zz_bad_row.csv -o json --no-pager)
check "journal_file_field_bad_row" grep -q '"PRIORITY":"4".*"REJECTED":"1"\|"REJECTED":"1".*"PRIORITY":"4"' <<<"$jw"
jw=$(x journalctl -u evstream FILE=events_zz_bad_file.csv -p warning -o cat --no-pager)
check "journal_file_field_bad_file" grep -q 'moved to quarantine/' <<<"$jw"

# --- readiness: activating while PostgreSQL is down, active once it is back ------------
x systemctl stop postgresql@15-main
x systemctl restart --no-block evstream
is_activating() { [[ $(state evstream) == activating ]]; }
check "restarted_without_postgresql" wait_for 10 is_activating
states=
for _ in 1 2 3 4 5 6; do sleep 0.5; states+="$(state evstream) "; done
check_eq "activating_while_postgresql_down" "$(printf 'activating %.0s' 1 2 3 4 5 6)" "$states"
x systemctl show -P StatusText evstream
x systemctl start postgresql@15-main
t0=$SECONDS
is_active() { [[ $(state evstream) == active ]]; }
check "active_once_postgresql_back" wait_for 15 is_active
echo "evstream active $((SECONDS - t0)) s after PostgreSQL started"

# --- kill -9: restarted; kill -STOP: the watchdog restarts it --------------------------
# Restarted: a new main process exists (then, separately, it becomes ready again).
restarted_from() { local p; p=$(main_pid evstream); [[ $p != 0 && $p != "$1" ]]; }
r0=$(x systemctl show -P NRestarts evstream)
pid=$(main_pid evstream)
x kill -9 "$pid"
check "kill9_restarted" wait_for 20 restarted_from "$pid"
check "kill9_active_again" wait_for 15 is_active
check_eq "kill9_counted_as_restart" $((r0 + 1)) "$(x systemctl show -P NRestarts evstream)"
wd=$(x systemctl show -P WatchdogUSec evstream)
wd=${wd%s}
check "watchdog_configured" test "${wd:-0}" -gt 0
pid=$(main_pid evstream)
x kill -STOP "$pid"
t0=$SECONDS
check "kill_stop_restarted_by_watchdog_within_watchdogsec_plus_5" wait_for $((wd + 5)) restarted_from "$pid"
echo "stopped evstream restarted after $((SECONDS - t0)) s (WatchdogSec=${wd}s)"
check "watchdog_restart_active_again" wait_for 15 is_active
check "journal_says_watchdog_timeout" x sh -c 'journalctl -u evstream --no-pager | grep -q "Watchdog timeout"'
check_eq "watchdog_counted_as_restart" $((r0 + 2)) "$(x systemctl show -P NRestarts evstream)"

# --- every valid event_id exactly once ---------------------------------------------
check "evgen_stops_cleanly" x systemctl stop evgen
check_eq "evgen_exit_0" "0 success" "$(x systemctl show -P ExecMainStatus evgen) $(x systemctl show -P Result evgen)"
drained() { [[ $(x sh -c 'ls /var/spool/evpipe | grep -c "\.csv$"') == 0 ]]; }
check "spool_drained" wait_for $((10 * TRIGGER)) drained
check "status_as_service_user_over_tcp_with_pgpass" status_as_evpipe
x sh -c "cat /var/spool/evpipe/archive/*.csv | awk -F, '{ print \$1 }' |
	grep -E '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\$' | LC_ALL=C sort -u" >"$T/expected"
q "SELECT event_id FROM events" | LC_ALL=C sort >"$T/got"
check "events_flowed" test "$(wc -l <"$T/expected")" -gt 500
check_eq "valid_event_ids_exactly_once" "$(wc -l <"$T/expected") 0" \
	"$(wc -l <"$T/got") $(LC_ALL=C comm -3 "$T/expected" "$T/got" | wc -l)"
check_eq "every_archived_file_in_exactly_one_batch" \
	"$(x sh -c 'ls /var/spool/evpipe/archive | wc -l') 0" \
	"$(q 'SELECT count(*), count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f' | tr '|' ' ')"

# --- stop: STOPPING=1, exit 0 ---------------------------------------------------------
pid=$(main_pid evstream)
x systemd-analyze log-level debug	# PID 1 then logs each notification it receives
check "systemctl_stop_evstream" x systemctl stop evstream
x systemd-analyze log-level info
check_eq "evstream_exit_0" "0 success inactive" \
	"$(x systemctl show -P ExecMainStatus evstream) $(x systemctl show -P Result evstream) $(state evstream)"
check "stopping_1_seen" x sh -c "journalctl -u evstream --no-pager |
	grep -qF 'Got notification message from PID $pid (STOPPING=1)'"
check_eq "password_never_in_journal_or_unit" 0 \
	"$(x sh -c "{ journalctl --no-pager; systemctl show evstream evgen; } | grep -c -- '$PW'")"

# --- the units as systemd judges them -----------------------------------------------
for u in evgen evstream; do
	score=$(x systemd-analyze security "$u.service" | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
	echo "systemd-analyze security $u.service: ${score:-?}"
	check "${u}_security_score_at_most_2_0" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
done
# --man=no: this host has no man-db; install_tree.sh checks that man finds both pages.
out=$(x systemd-analyze verify --man=no evgen.service evstream.service 2>&1); rc=$?
check_eq "systemd_analyze_verify_clean" "0:" "$rc:$out"
