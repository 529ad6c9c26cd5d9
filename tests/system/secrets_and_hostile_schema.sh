#!/usr/bin/env bash
# SQL and secrets.  A hostile db_schema name (quotes, a semicolon, a comment, a
# space, capitals) is quoted as an identifier end to end: rows land in that schema,
# nothing else is touched, and a restart reconciles from it.  The password is
# never in the log (not on success, nor on a wrong password, nor when conninfo
# cannot be parsed), never in `ps` (argv is blanked), nor in `evstream status`
# output, the checkpoint directory or the metrics file.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
stream_setup

# --- 1. a hostile schema name -----------------------------------------------------------
HOSTILE='Ev"il; DROP TABLE public.sentinel; --'
QS=$(q "SELECT quote_ident(\$\$$HOSTILE\$\$)")
q "CREATE TABLE public.sentinel (x int); CREATE SCHEMA $QS"
PGOPTIONS='-c client_min_messages=warning' pg_psql -c "SET search_path TO $QS" \
	-f "$EVPIPE_ROOT/sql/01_init.sql" >/dev/null
evgen_run --count=4 --rows_per_file=50 --interval=0 --invalid_rate=0.1
evstream_once --db_schema="$HOSTILE" --max_files_per_trigger=2
check_eq "hostile_schema_exit_0" 0 $?
csv_valid_ids "$SPOOL" >"$ST/expected"
check_eq "hostile_schema_rows_there" "$(cat "$ST/expected")" "$(q "SELECT event_id FROM $QS.events" | LC_ALL=C sort)"
check "hostile_schema_rejects_there" test "$(q "SELECT count(*) FROM $QS.event_rejects")" -gt 0
check_eq "hostile_schema_public_untouched" "0 0 0" "$(q 'SELECT (SELECT count(*) FROM public.events), (SELECT count(*) FROM public.event_rejects), count(*) FROM public.evstream_batches' | tr '|' ' ')"
check_eq "hostile_schema_sentinel_survives" "sentinel" "$(q "SELECT to_regclass('public.sentinel')")"
# A restart after a kill between commit and checkpoint reads that schema's batch log.
evgen_run --count=2 --rows_per_file=50 --interval=0
EVSTREAM_FAILPOINT=after_commit evstream_once --db_schema="$HOSTILE"
evstream_once --db_schema="$HOSTILE" --max_files_per_trigger=0
check "hostile_schema_reconciled" grep -q 'checkpoint was behind evstream_batches' "$LOG"
csv_valid_ids "$SPOOL" >"$ST/expected"
check_eq "hostile_schema_exactly_once" "$(cat "$ST/expected")" "$(q "SELECT event_id FROM $QS.events" | LC_ALL=C sort)"
check_eq "hostile_schema_each_file_once" "6 0" "$(q "SELECT count(*), count(*) - count(DISTINCT f) FROM $QS.evstream_batches, unnest(files) f" | tr '|' ' ')"
"$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$ST/c2" --conninfo="$EVPIPE_CONNINFO" \
	--db_schema='no "such' --once >"$ST/noschema.log" 2>&1
check_eq "missing_schema_is_fatal" 1 $?
check "missing_schema_is_named" grep -q 'schema no "such: table events is missing' "$ST/noschema.log"

# --- 2. the password --------------------------------------------------------------------
PW='Pa55-w0rd-n0t-in-l0gs'
q "CREATE ROLE evsecret LOGIN PASSWORD '$PW'; GRANT ALL ON SCHEMA public TO evsecret;
   GRANT ALL ON ALL TABLES IN SCHEMA public TO evsecret"
# Password authentication over TCP for this role; trust stays for the test's own psql.
sed -i '1i host all evsecret 127.0.0.1/32 scram-sha-256' "$PG_DATA/pg_hba.conf"
q 'SELECT pg_reload_conf()' >/dev/null
TCP="host=127.0.0.1 port=$PGPORT dbname=evpipe user=evsecret"
# pg.sh's PG* variables would outrank conninfo (and point at the trusted socket).
tcp=(env -u PGHOST -u PGPORT -u PGUSER -u PGDATABASE)
rm -rf "$SPOOL" "$CKPT" && mkdir -p "$SPOOL"
evgen_run --count=3 --rows_per_file=20 --interval=0
leaks() { grep -rl -- "$PW" "$@" 2>/dev/null | wc -l; }
# (a) from the environment: it loads, nothing says the password
"${tcp[@]}" POSTGRES_PASSWORD="$PW" "$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" \
	--checkpoint_dir="$CKPT" --conninfo="$TCP" --once --max_files_per_trigger=0 >>"$LOG" 2>&1
check_eq "password_from_env_loads" 60 "$(q 'SELECT count(*) FROM public.events')"
# (b) a wrong password: refused, retried, logged without either password
"${tcp[@]}" POSTGRES_PASSWORD="wrong-$PW" "$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" \
	--checkpoint_dir="$CKPT" --conninfo="$TCP" --once >>"$LOG" 2>&1 &
pid=$!
wait_for 20 grep -q 'password authentication failed for user "evsecret"' "$LOG"
check "wrong_password_logged_as_such" grep -q 'password authentication failed for user "evsecret"' "$LOG"
kill -TERM "$pid"; wait "$pid"
# (c) on the command line: blanked in argv once read, so ps never shows it for long
"${tcp[@]}" "$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$CKPT" \
	--conninfo="$TCP password=$PW" --trigger_interval=0.2 >>"$LOG" 2>&1 &
pid=$!
wait_for 20 grep -q "evstream\[$pid\] info: dedupe set rebuilt" "$LOG"
check_eq "password_not_in_proc_cmdline" 0 "$(tr '\0' ' ' <"/proc/$pid/cmdline" | grep -c -- "$PW")"
check_eq "password_not_in_ps" 0 "$(ps -ww -o args= -p "$pid" | grep -c -- "$PW")"
check "argv_password_still_used" kill -0 "$pid"
kill -TERM "$pid"; wait "$pid"
check_eq "argv_password_connects" 0 $?
# (d) a conninfo libpq cannot parse, with the password in it
"$EVPIPE_BIN/evstream" --spool_dir="$SPOOL" --checkpoint_dir="$CKPT" \
	--conninfo="password='$PW' user=evsecret bogus" --once >>"$LOG" 2>&1
check_eq "unparsable_conninfo_exit_2" 2 $?
# (e) status, text and JSON, with the password from the environment
if "$EVPIPE_BIN/evstream" --help | grep -q '^status'; then
	for fmt in "" --json; do
		"${tcp[@]}" POSTGRES_PASSWORD="$PW" "$EVPIPE_BIN/evstream" status $fmt \
			--spool_dir="$SPOOL" --checkpoint_dir="$CKPT" --conninfo="$TCP" >>"$ST/status.out" 2>&1
	done
	check "status_ran_as_the_role" grep -q 'evsecret@127.0.0.1' "$ST/status.out"
	check_eq "password_not_in_status" 0 "$(leaks "$ST/status.out")"
else
	skip "password_not_in_status" "this evstream has no status subcommand"
fi
check "log_mentions_the_role" grep -q evsecret "$LOG"
check_eq "password_not_in_log" 0 "$(leaks "$LOG")"
check_eq "password_not_in_checkpoint_dir" 0 "$(leaks "$CKPT")"
