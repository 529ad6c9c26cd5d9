# shellcheck shell=bash
# stream.sh — what evstream's tests share: a cluster, a spool, a checkpoint, and
# short ways to run the daemons and ask the database.
#
#   stream_setup              pg_start + $SPOOL $CKPT $LOG under a fresh tmpdir
#   evstream_once [ARGS]      run evstream --once (sanitized build); log appended to $LOG
#   evstream_bg [ARGS]        start evstream in the background; pid in $EVSTREAM_PID
#   evgen_run [ARGS]          run evgen (sanitized build) into $SPOOL
#   stream_ini [LINE...]      $INI: this test's [evstream] section; evs ARGS runs with it
#   q SQL                     one value (or rows) from the cluster
#   csv_ids DIR...            sorted distinct event_ids in the CSV files below DIRs
#                             (for streams evgen wrote without invalid rows)
#   db_ids                    sorted event_ids in events
#   metric NAME [FILE]        a sample without labels from evstream's metrics file
#                             (default $CKPT/evpipe.prom, the shipped metrics_file)
#   wait_for SECONDS CMD...   poll CMD every 0.2 s until it succeeds
#   rows_by_reason FILE...    "reason count" for each invalid kind evgen makes, then
#                             "invalid N" and "valid N", sorted: an awk classifier
#                             written independently of src/validate.c
source "$EVPIPE_ROOT/tests/lib/pg.sh"

stream_setup() {
	pg_start || { fail "pg_start" "could not start the throwaway cluster"; exit 1; }
	tmpdir ST
	SPOOL=$ST/spool CKPT=$ST/ckpt LOG=$ST/evstream.log
	mkdir -p "$SPOOL"
}

_evstream_args() {
	# One file per trigger unless a test says otherwise: the tests count batches.
	printf '%s\n' --spool_dir="$SPOOL" --checkpoint_dir="$CKPT" --conninfo="$EVPIPE_CONNINFO" \
		--trigger_interval=0.2 --retry_max=1 --max_files_per_trigger=1
}

evstream_once() {
	local args
	mapfile -t args < <(_evstream_args)
	"$EVPIPE_BIN/evstream" "${args[@]}" --once "$@" >>"$LOG" 2>&1
}

evstream_bg() {
	local args
	mapfile -t args < <(_evstream_args)
	"$EVPIPE_BIN/evstream" "${args[@]}" "$@" >>"$LOG" 2>&1 &
	EVSTREAM_PID=$!
}

# stream_ini [LINE...]: $INI, an [evstream] section naming this test's spool,
# checkpoint and database, then LINEs ("key = value"), as an operator's file would;
# evs ARGS runs evstream with it (`evs status --json`).
stream_ini() {
	INI=$ST/evpipe.ini
	{
		printf '[evstream]\nspool_dir = %s\ncheckpoint_dir = %s\nconninfo = %s\n' \
			"$SPOOL" "$CKPT" "$EVPIPE_CONNINFO"
		printf '%s\n' "$@"
	} >"$INI"
}
evs() { "$EVPIPE_BIN/evstream" -c "$INI" "$@"; }

evgen_run() { "$EVPIPE_BIN/evgen" --spool_dir="$SPOOL" --log_level=warning "$@"; }

q() { PGTZ=UTC pg_psql -c "$1"; }

csv_ids() {
	find "$@" -name '*.csv' -type f -exec awk -F, 'FNR > 1 { print $1 }' {} + | LC_ALL=C sort -u
}

db_ids() { q "SELECT event_id FROM events" | LC_ALL=C sort; }

metric() { awk -v n="$1" '$1 == n { print $2 }' "${2:-$CKPT/evpipe.prom}"; }

rows_by_reason() {
	awk -F, 'FNR == 1 { next }
		NF != 6 { r["column_count"]++; next }
		$1 == "" { r["event_id"]++; next }
		$2 ~ /^u/ { r["user_id"]++; next }
		$3 == "click" { r["event_type"]++; next }
		$5 ~ /^-/ { r["price"]++; next }
		$6 ~ /^....-13-/ { r["event_time"]++; next }
		{ ok++ }
		END { for (k in r) { print k, r[k]; n += r[k] } print "invalid", n + 0; print "valid", ok + 0 }' "$@" |
		LC_ALL=C sort
}
