#!/usr/bin/env bash
# schema_loads.sh — sql/01_init.sql loads, loads again without effect, and the
# constraints the loader relies on (exactly-once PK, the CHECKs, NOT NULLs) hold.
set -uo pipefail
: "${EVPIPE_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
source "$EVPIPE_ROOT/tests/lib/pg.sh"

pg_start || { fail schema_first_load "pg_start failed (see stderr)"; exit 1; }
pass schema_first_load

# Insert one row built from a valid template with one column overridden.
# Usage: insert_event COLUMN VALUE  (COLUMN '' = all defaults)
insert_event() {
	local -A v=([event_id]="gen_random_uuid()" [user_id]=1 [event_type]="'view'"
		[product_id]=7 [price]=9.99 [event_time]="now()")
	[[ -n $1 ]] && v[$1]=$2
	pg_psql -c "INSERT INTO events (event_id, user_id, event_type, product_id, price, event_time)
		VALUES (${v[event_id]}, ${v[user_id]}, ${v[event_type]}, ${v[product_id]},
			${v[price]}, ${v[event_time]})" 2>&1
}

# rejects NAME ERROR-PATTERN COLUMN VALUE: the insert must fail with that error.
rejects() {
	local out
	if out=$(insert_event "$3" "$4"); then
		fail "$1" "insert with $3=$4 was accepted"
	elif grep -q "$2" <<<"$out"; then
		pass "$1"
	else
		fail "$1" "insert failed, but not with '$2': $out"
	fi
}

objects() {
	pg_psql -c "SELECT string_agg(c.relname || ':' || c.oid, ',' ORDER BY c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public'"
}

before=$(objects)
load_schema() { PGOPTIONS='-c client_min_messages=warning' pg_psql -f "$EVPIPE_ROOT/sql/01_init.sql"; }
check schema_second_load_succeeds load_schema
check_eq schema_second_load_is_noop "$before" "$(objects)"

check_eq events_pk_is_event_id event_id "$(pg_psql -c "
	SELECT string_agg(a.attname, ',') FROM pg_constraint c
	JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
	WHERE c.conrelid = 'events'::regclass AND c.contype = 'p'")"

check valid_view_accepted insert_event '' ''
check valid_purchase_accepted insert_event event_type "'purchase'"
check zero_price_accepted insert_event price 0
rejects duplicate_event_id_rejected 'duplicate key value violates unique constraint' \
	event_id "(SELECT event_id FROM events LIMIT 1)"
rejects event_type_click_rejected 'violates check constraint' event_type "'click'"
rejects negative_price_rejected 'violates check constraint' price -0.01
rejects zero_user_id_rejected 'violates check constraint' user_id 0
rejects zero_product_id_rejected 'violates check constraint' product_id 0
for col in event_id user_id event_type product_id price event_time; do
	rejects "null_${col}_rejected" 'violates not-null constraint' "$col" NULL
done
check_eq ingested_at_not_null t "$(pg_psql -c "SELECT attnotnull FROM pg_attribute
	WHERE attrelid = 'events'::regclass AND attname = 'ingested_at'")"

for col in event_time user_id; do
	check_eq "index_on_events_${col}" 1 "$(pg_psql -c "SELECT count(*) FROM pg_indexes
		WHERE schemaname = 'public' AND tablename = 'events'
		AND indexdef LIKE '%($col)'")"
done

for t in event_rejects evstream_batches; do
	check_eq "table_${t}_exists" t "$(pg_psql -c "SELECT to_regclass('public.$t') IS NOT NULL")"
done

check pg_reset_tables_runs pg_reset_tables
check_eq pg_reset_tables_empties_events 0 "$(pg_psql -c 'SELECT count(*) FROM events')"

# Rejects are unique per (file, line) (issue 16, item 6).  A database made before
# the index, holding the copies a file read twice left: loading the schema keeps
# the first copy of each line, drops the later ones, builds the index.
reject_row() { pg_psql -c "INSERT INTO event_rejects (batch_id, file, line_no, reason, raw_line)
	VALUES ($1, '$2', $3, 'price', 'raw')" 2>&1; }
reject_row 1 a.csv 2 >/dev/null
check_fails duplicate_reject_line_refused reject_row 2 a.csv 2
pg_psql -c 'DROP INDEX event_rejects_file_line_key'
for b in 1 2 3; do reject_row "$b" b.csv 5 >/dev/null; done
reject_row 1 b.csv 6 >/dev/null
check migration_runs load_schema
check_eq migration_keeps_the_first_copy "1|5 1|6" \
	"$(pg_psql -c "SELECT batch_id || '|' || line_no FROM event_rejects WHERE file = 'b.csv' ORDER BY line_no" | tr '\n' ' ' | sed 's/ $//')"
check_eq migration_builds_the_index 1 "$(pg_psql -c "SELECT count(*) FROM pg_indexes
	WHERE tablename = 'event_rejects' AND indexname = 'event_rejects_file_line_key'")"
