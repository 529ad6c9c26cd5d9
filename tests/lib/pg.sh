# shellcheck shell=bash
# pg.sh — a private, throwaway PostgreSQL 15 cluster for one test (or `make run`).
#
#   source "$EVPIPE_ROOT/tests/lib/pg.sh"
#   pg_start [GUC=VALUE ...]   initdb into a fresh temp dir, start on a free 127.0.0.1 port,
#                              create database evpipe, load sql/01_init.sql.  Extra
#                              arguments are appended to postgresql.conf.  Exports
#                              PGHOST (socket dir) PGPORT PGUSER=postgres PGDATABASE=evpipe
#                              PG_TMP PG_DATA PG_LOG EVPIPE_CONNINFO.  Returns non-zero
#                              (after printing the server log) if anything fails.
#   pg_stop_server             fast shutdown (clean: checkpoint, clients disconnected)
#   pg_kill_server             immediate shutdown: a crash as far as WAL is concerned
#   pg_start_server            start again, same data directory and port
#   pg_server_running          status 0 while the postmaster is up
#   pg_psql ARGS...            psql -X -q -v ON_ERROR_STOP=1 -At against the cluster
#   pg_reset_tables            TRUNCATE the five tables
#   pg_cleanup                 stop the server, remove PG_TMP (registered at exit for you)
#
# Cleanup is registered with testlib's at_exit (this file sources testlib.sh), so it runs
# on normal exit, on failure and on SIGINT/SIGTERM/SIGHUP.  Tests must not replace the EXIT
# trap; use at_exit.  Because a test can also die by SIGKILL (the runner's last resort),
# pg_start leaves a watchdog in its own session that stops the server and removes PG_TMP
# within a second of the test's shell disappearing.
#
# Root: initdb and postgres refuse to run as root, so as root the server side (initdb,
# pg_ctl, postgres) runs as `nobody` via setpriv and PG_TMP is chowned to it.  Clients
# (psql, the daemons under test) still run as root; root may use any socket.
# Knobs: EVPIPE_PG_BIN (default /usr/lib/postgresql/15/bin), EVPIPE_PG_TMPDIR (where the
# temp dir goes; default $TMPDIR or /tmp), EVPIPE_PG_TEMPLATE (a directory in which to
# cache one initdb result and copy it for later clusters; run.sh sets it).

if [[ -n ${_PG_LOADED:-} ]]; then return 0; fi
_PG_LOADED=1

# Stop everything that belongs to the cluster in $1 and remove the directory.
# "Belongs" is exact: every server-side process we start runs with its cwd inside the
# temp dir (_pg_as_owner cd's there, postgres chdirs to its data dir), so a process
# whose cwd is under $1 is ours -- including an initdb or a half-started postmaster
# that outlived a killed test, which pg_ctl (needing postmaster.pid) would miss.
# Args: TMP PG_CTL [RUNAS...].
_pg_reap() {
	local tmp=$1 ctl=$2 i pid pids
	shift 2
	if [[ -f $tmp/data/postmaster.pid ]]; then
		(cd "$tmp" && "$@" "$ctl" -D "$tmp/data" -m immediate -t 10 stop) >/dev/null 2>&1
	fi
	for ((i = 0; i < 50; i++)); do
		pids=()
		while read -r pid; do
			pid=${pid#/proc/}; pid=${pid%/cwd}
			[[ $pid != "$$" && $pid != "$BASHPID" ]] && pids+=("$pid")
		done < <(find /proc -mindepth 2 -maxdepth 2 -name cwd \
			\( -lname "$tmp" -o -lname "$tmp/*" -o -lname "$tmp (deleted)" \) 2>/dev/null)
		((${#pids[@]})) && kill -KILL "${pids[@]}" 2>/dev/null
		rm -rf "$tmp" 2>/dev/null
		[[ ! -e $tmp && ${#pids[@]} -eq 0 ]] && return 0
		sleep 0.1
	done
	echo "pg.sh: could not remove $tmp" >&2
	return 1
}

# Run as a script, this file is the watchdog:
#     bash pg.sh --watchdog PARENT PG_TMP TEST_TMP PG_CTL [RUNAS...]
# TEST_TMP is testlib's per-test directory, which a SIGKILLed test also leaves behind.
if [[ ${BASH_SOURCE[0]} == "$0" && ${1:-} == --watchdog ]]; then
	trap '' INT TERM HUP
	parent=$2 tmp=$3 test_tmp=$4
	shift 4
	while kill -0 "$parent" 2>/dev/null && [[ -d $tmp ]]; do sleep 1; done
	_pg_reap "$tmp" "$@"	# even if tmp is gone: it may have been removed under a live server
	kill -0 "$parent" 2>/dev/null || rm -rf "$test_tmp"
	exit
fi

: "${EVPIPE_ROOT:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
# shellcheck source=tests/lib/testlib.sh
source "$EVPIPE_ROOT/tests/lib/testlib.sh"

PG_BIN=${EVPIPE_PG_BIN:-/usr/lib/postgresql/15/bin}
_PG_RUNAS=()
_PG_WATCHDOG=
PG_TMP=

# Settings that would point psql or libpq somewhere else than our cluster.
unset PGHOSTADDR PGSERVICE PGSERVICEFILE PGOPTIONS PGPASSWORD PGPASSFILE PGSSLMODE \
	PGREQUIRESSL PGTARGETSESSIONATTRS PGCONNECT_TIMEOUT PGTZ PGCLIENTENCODING

_pg_err() { echo "pg.sh: $*" >&2; }

# Run a server-side command as the cluster's owner, from inside PG_TMP (the caller's
# cwd may be a directory nobody cannot enter).
_pg_as_owner() { (cd "$PG_TMP" && exec "${_PG_RUNAS[@]}" "$@"); }
_pg_ctl() { _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@"; }

# A port nothing on 127.0.0.1 answers on.  A probe is not a reservation: two tests
# can draw the same port, so pg_start retries the start with a new one.
_pg_free_port() {
	local port i
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	_pg_err "no free TCP port found"
	return 1
}

_pg_pick_tmp_base() {
	local base=${EVPIPE_PG_TMPDIR:-${TMPDIR:-/tmp}}
	# The socket path (base/evpipe-pg.XXXXXX/sock/.s.PGSQL.NNNNN) must fit in 107 bytes,
	# and as root `nobody` must be able to reach the base: fall back to /tmp otherwise.
	if ((${#base} > 60)) || [[ ! -d $base ]] ||
		{ ((${#_PG_RUNAS[@]})) && ! (cd / && "${_PG_RUNAS[@]}" test -x "$base"); }; then
		base=/tmp
	fi
	echo "$base"
}

# Reaps the cluster once the test's shell is gone, however it died (SIGKILL included).
# It is this file run as a script (see the top), in its own session so neither Ctrl-C
# nor the runner's kill of the test's process group reaches it; its fds are /dev/null
# so it never holds the runner's log pipe.
_pg_start_watchdog() {
	setsid bash "$EVPIPE_ROOT/tests/lib/pg.sh" --watchdog "$$" "$PG_TMP" "$_TL_TMP_ROOT" \
		"$PG_BIN/pg_ctl" "${_PG_RUNAS[@]}" </dev/null >/dev/null 2>&1 &
	_PG_WATCHDOG=$!
	disown "$_PG_WATCHDOG"	# no "Killed" job notice when pg_cleanup ends it
}

pg_cleanup() {
	[[ -n ${PG_TMP:-} ]] || return 0
	_pg_reap "$PG_TMP" "$PG_BIN/pg_ctl" "${_PG_RUNAS[@]}"
	PG_TMP=
	# The watchdog sees PG_TMP gone and quits by itself; killing its group (bash + sleep)
	# just means no process outlives the test.
	[[ -n $_PG_WATCHDOG ]] && kill -KILL -- "-$_PG_WATCHDOG" 2>/dev/null
	_PG_WATCHDOG=
	return 0
}

_pg_show_log() {
	_pg_err "server log ($PG_LOG), last lines:"
	tail -n 30 "$PG_LOG" 2>/dev/null | sed 's/^/    /' >&2
}

pg_server_running() { _pg_ctl status >/dev/null 2>&1; }

pg_start_server() {
	if ! _pg_ctl -w -t 30 -l "$PG_LOG" start >/dev/null; then
		_pg_err "server did not start"
		_pg_show_log
		return 1
	fi
}

pg_stop_server() { _pg_ctl -w -t 60 -m fast stop >/dev/null; }
pg_kill_server() { _pg_ctl -w -t 60 -m immediate stop >/dev/null; }

pg_psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

pg_reset_tables() {
	pg_psql -c 'TRUNCATE events, event_rejects, evstream_batches, evstream_files, evstream_slices'
}

# initdb, or a copy of an earlier initdb when EVPIPE_PG_TEMPLATE names a directory
# (tests/run.sh provides one per run): a cold copy of a never-started cluster is the
# same cluster, and cp takes 0.1 s where initdb takes ~1 s.
_pg_initdb() {
	local tpl=${EVPIPE_PG_TEMPLATE:-}
	if [[ -n $tpl && -f $tpl/data/PG_VERSION ]] && cp -a "$tpl/data" "$PG_DATA"; then
		return 0
	fi
	if ! _pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 \
		--no-locale --no-sync --no-instructions >"$PG_TMP/initdb.log" 2>&1; then
		_pg_err "initdb failed:"; sed 's/^/    /' "$PG_TMP/initdb.log" >&2
		return 1
	fi
	# Publish atomically: copy aside, then rename into place (the loser of a race drops its copy).
	if [[ -n $tpl && -d $tpl && ! -e $tpl/data ]] && cp -a "$PG_DATA" "$tpl/data.$$"; then
		mv -T "$tpl/data.$$" "$tpl/data" 2>/dev/null || rm -rf "$tpl/data.$$"
	fi
	return 0
}

pg_start() {
	if [[ -n ${PG_TMP:-} ]]; then _pg_err "pg_start: a cluster is already running"; return 1; fi
	if [[ ! -x $PG_BIN/initdb ]]; then _pg_err "no PostgreSQL at $PG_BIN (postgresql-15)"; return 1; fi
	if (($(id -u) == 0)); then
		_PG_RUNAS=(setpriv "--reuid=$(id -u nobody)" "--regid=$(id -g nobody)" --clear-groups)
	fi
	local base guc try
	base=$(_pg_pick_tmp_base)
	PG_TMP=$(mktemp -d "$base/evpipe-pg.XXXXXX") || return 1
	at_exit pg_cleanup
	PG_DATA=$PG_TMP/data
	PG_LOG=$PG_TMP/postgres.log
	export PG_TMP PG_DATA PG_LOG
	mkdir "$PG_TMP/sock"
	chmod 755 "$PG_TMP"
	((${#_PG_RUNAS[@]})) && chown -R nobody: "$PG_TMP"
	_pg_start_watchdog

	_pg_initdb || return 1
	# fsync stays on: the crash tests rely on what a commit promises.  A small shared
	# memory footprint lets several clusters coexist in a CI container.
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$PG_TMP/sock'"
		echo "fsync = on"
		echo "shared_buffers = 32MB"
		echo "max_connections = 50"
		echo "log_min_messages = warning"
		echo "log_line_prefix = '%m [%p] '"
		for guc in "$@"; do echo "$guc"; done
	} >>"$PG_DATA/postgresql.conf"

	export PGHOST=$PG_TMP/sock PGUSER=postgres PGDATABASE=evpipe
	for try in 1 2 3 4 5; do
		PGPORT=$(_pg_free_port) || return 1
		export PGPORT
		# A later `port` line wins, so retries just append.
		echo "port = $PGPORT" >>"$PG_DATA/postgresql.conf"
		if _pg_ctl -w -t 30 -l "$PG_LOG" start >/dev/null 2>&1; then break; fi
		if ((try == 5)) || ! grep -q 'could not bind\|could not create listen socket' "$PG_LOG"; then
			_pg_err "server did not start"; _pg_show_log
			return 1
		fi
	done
	export EVPIPE_CONNINFO="host=$PGHOST port=$PGPORT user=postgres dbname=evpipe"

	if ! pg_psql -d postgres -c 'CREATE DATABASE evpipe' ||
		! PGOPTIONS='-c client_min_messages=warning' \
			pg_psql -f "$EVPIPE_ROOT/sql/01_init.sql" >/dev/null; then
		_pg_err "could not create database evpipe or load sql/01_init.sql"
		return 1
	fi
}
