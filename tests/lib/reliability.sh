# shellcheck shell=bash
# reliability.sh — what the fault-injection and hostile-input tests share: an exact
# comparison of what reached the database with what should have, and one record per
# scenario for tests/RELIABILITY.md.  Source it after stream.sh.
#
#   ref_load DIR...            the reference: a clean `evstream --once`, no faults, over a
#                              copy of the CSV files below DIRs, into database evpipe_ref
#                              of the same cluster.  Its events and rejects are what the
#                              faulty run must have, exactly.
#   rel_compare SCEN RUNS [IDS_FILE]
#                              compare database evpipe with the reference (or, given
#                              IDS_FILE, with that sorted list of event_ids and no
#                              rejects): PASS/FAIL "SCEN_event_ids_equal",
#                              "SCEN_rejects_equal", "SCEN_nothing_twice", and record
#                              the figures with rel_record.
#   rel_record SCEN RUNS PRODUCED IN_EVENTS REJECTS LOST DUPLICATED
#                              one line in $EVPIPE_RELIABILITY_DIR/SCEN.tsv (default
#                              $EVPIPE_TEST_LOGDIR/reliability), which
#                              tests/reliability/report.sh turns into the table.
#
# "lost" counts expected event_ids missing from events plus expected rejects (file,
# line, reason) missing from event_rejects; "duplicated" counts event_ids stored
# twice (the primary key makes that impossible, so it is counted, not assumed),
# rejects stored twice, and files committed by more than one batch.

REL_DIR=${EVPIPE_RELIABILITY_DIR:-${EVPIPE_TEST_LOGDIR:-/tmp}/reliability}

rel_record() {
	mkdir -p "$REL_DIR" &&
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$REL_DIR/$1.tsv"
}

# psql against the reference database.
qref() { PGTZ=UTC pg_psql -d evpipe_ref -c "$1"; }

ref_load() {
	local dir=$ST/ref args
	rm -rf "$dir" && mkdir -p "$dir/spool" || return 1
	find "$@" -maxdepth 1 -name '*.csv' -type f -exec cp -t "$dir/spool" {} + || return 1
	if [[ -z $(qref 'SELECT 1' 2>/dev/null) ]]; then
		pg_psql -d postgres -c 'CREATE DATABASE evpipe_ref' &&
			PGOPTIONS='-c client_min_messages=warning' \
				pg_psql -d evpipe_ref -f "$EVPIPE_ROOT/sql/01_init.sql" >/dev/null || return 1
	fi
	qref 'TRUNCATE events, event_rejects, evstream_batches, evstream_files, evstream_slices' || return 1
	mapfile -t args < <(_evstream_args)
	# PGDATABASE (pg.sh exports it) outranks conninfo's dbname.
	PGDATABASE=evpipe_ref "$EVPIPE_BIN/evstream" "${args[@]}" --once --max_files_per_trigger=0 \
		--spool_dir="$dir/spool" --checkpoint_dir="$dir/ckpt" >>"$dir/evstream.log" 2>&1 &&
		[[ -n $(qref 'SELECT 1 FROM evstream_batches LIMIT 1') ]]
}

# Sorted "file|line|reason" of every reject, from database $1.
_rel_rejects() {
	PGTZ=UTC pg_psql -d "$1" -c "SELECT file || '|' || line_no || '|' || reason FROM event_rejects" |
		LC_ALL=C sort
}

rel_compare() {
	local scen=$1 runs=$2 ids=${3:-} d=$ST/compare lost dup produced got nrej
	mkdir -p "$d"
	if [[ -n $ids ]]; then
		cp "$ids" "$d/want_ids"
		: >"$d/want_rej"
	else
		qref 'SELECT event_id FROM events' | LC_ALL=C sort >"$d/want_ids"
		_rel_rejects evpipe_ref >"$d/want_rej"
	fi
	q 'SELECT event_id FROM events' | LC_ALL=C sort >"$d/got_ids"
	_rel_rejects evpipe >"$d/got_rej"
	produced=$(wc -l <"$d/want_ids")
	got=$(wc -l <"$d/got_ids")
	nrej=$(wc -l <"$d/got_rej")
	lost=$(($(LC_ALL=C comm -23 "$d/want_ids" "$d/got_ids" | wc -l) +
		$(LC_ALL=C comm -23 "$d/want_rej" "$d/got_rej" | wc -l)))
	dup=$(($(uniq -d "$d/got_ids" | wc -l) + $(uniq -d "$d/got_rej" | wc -l) +
		$(q 'SELECT count(*) - count(DISTINCT f) FROM evstream_batches, unnest(files) f')))
	check_eq "${scen}_event_ids_equal" "$produced 0" \
		"$got $(LC_ALL=C comm -3 "$d/want_ids" "$d/got_ids" | wc -l)"
	check_eq "${scen}_rejects_equal" "$(wc -l <"$d/want_rej") 0" \
		"$nrej $(LC_ALL=C comm -3 "$d/want_rej" "$d/got_rej" | wc -l)"
	check_eq "${scen}_nothing_twice" 0 "$dup"
	rel_record "$scen" "$runs" "$produced" "$got" "$nrej" "$lost" "$dup"
	echo "$scen: runs=$runs produced=$produced events=$got rejects=$nrej lost=$lost duplicated=$dup"
}

# Sorted distinct event_ids of the rows below DIRs that are valid as evgen writes them
# (an independent check: a regular expression, not evstream's validator).  evgen's
# invalid rows (tests aids: unknown type, 'u' ids, month 13, a missing column, an
# empty id, a negative price) all fail it; late rows cannot be told apart: use it
# only for streams without --late_rate.
_REL_VALID_ROW='^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12},[1-9][0-9]*,(view|purchase),'
_REL_VALID_ROW+='[1-9][0-9]*,[0-9]+\.[0-9]{2},[0-9]{4}-(0[1-9]|1[0-2])-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:'
_REL_VALID_ROW+='[0-5][0-9]\.[0-9]{6}$'
csv_valid_ids() {
	find "$@" -name '*.csv' -type f -exec grep -hE "$_REL_VALID_ROW" {} + | cut -d, -f1 |
		LC_ALL=C sort -u
}

# Predicates for wait_for, which expands its arguments once: `wait_for 20 test "$(q ..)"
# -ge 3` would test the same number again and again; `wait_for 20 batches_ge 3` polls.
batches_ge() { (($(q 'SELECT count(*) FROM evstream_batches' 2>/dev/null || echo 0) >= $1)); }
log_count_ge() { (($(grep -c -- "$1" "$LOG") >= $2)); }

# rel_private_mounts "$0" "$@" — call before sourcing stream.sh.  As root, where
# unshare(1) works, re-runs the test in a mount namespace of its own, so the small
# filesystems it mounts vanish with it however it ends; then REL_MOUNTS=1.
# Elsewhere returns with REL_MOUNTS=0, and the test skips what needs a mount.
rel_private_mounts() {
	local self=$1
	shift
	if [[ ${EVPIPE_MOUNT_NS:-} == 1 ]]; then
		REL_MOUNTS=1
		return 0
	fi
	REL_MOUNTS=0
	if (($(id -u) == 0)) && unshare --mount --propagation private true 2>/dev/null; then
		EVPIPE_MOUNT_NS=1 exec unshare --mount --propagation private bash "$self" "$@"
	fi
}

# rel_mount_tmpfs DIR SIZE [OWNER] — a small tmpfs at DIR (created), unmounted at exit.
rel_mount_tmpfs() {
	mkdir -p "$1" && mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" || return 1
	[[ -z ${3:-} ]] || chown "$3" "$1" || return 1
	at_exit "umount -l $(printf %q "$1") 2>/dev/null"
}
