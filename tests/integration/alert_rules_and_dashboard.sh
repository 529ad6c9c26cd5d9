#!/usr/bin/env bash
# The shipped alert rules and dashboard (monitoring/) work on the metrics evstream
# really writes: `promtool check rules` passes; `promtool test rules` passes, and
# it would catch an alert that never fires and one that fires in the healthy case
# (each alert's expression is swapped for one of those and the test must fail on
# that alert); README's table lists exactly these alerts; the dashboard is JSON,
# takes its datasource from a variable, and every expression in it parses as
# PromQL; every evpipe_* name, label and label value the rules, their test series
# and the dashboard use is in a metrics file written by a real evstream run (not
# a table copied from src/metrics.c), and rate()/increase() are taken of counters
# only.
set -u
. "$EVPIPE_ROOT/tests/lib/stream.sh"
MON=$EVPIPE_ROOT/monitoring
RULES=$MON/evpipe.rules.yml
RTEST=$MON/evpipe.rules.test.yml
DASH=$MON/grafana-evpipe.json
for tool in promtool jq; do
	if ! command -v "$tool" >/dev/null; then
		fail "${tool}_installed" "$tool is missing (make deps: packages prometheus, jq)"
		exit 1
	fi
done
tmpdir W

# --- 1. the rules: checked, tested, and the tests bite ---------------------------------
check "promtool_check_rules" promtool check rules "$RULES"
check "promtool_test_rules" promtool test rules "$RTEST"
mapfile -t alerts < <(sed -n 's/^ *- alert: \([A-Za-z]*\)$/\1/p' "$RULES")
check "rules_have_alerts" test "${#alerts[@]}" -ge 8
# README's "Alerts and dashboard" table explains each alert, and no other.
check_eq "readme_table_is_the_alerts" "$(printf '%s\n' "${alerts[@]}" | LC_ALL=C sort)" \
	"$(sed -n 's/^| `\(Evpipe[A-Za-z]*\)` .*/\1/p' "$EVPIPE_ROOT/README.md" | LC_ALL=C sort)"
# mutate NAME EXPR: a copy of the rules beside a copy of the test file, NAME's
# expression replaced by EXPR and its for: by 0m; prints promtool's output.
mutate() {
	mkdir -p "$W/m" && cp "$RTEST" "$W/m/" &&
		awk -v name="$1" -v expr="$2" '
			$0 ~ "^ *- alert: " name "$" { inalert = 1; print; next }
			/^ *- alert: / { inalert = 0 }
			inalert && /^ *expr: \|$/ { print; match($0, /^ */); ind = RLENGTH; skip = 1
				printf "%*s%s\n", ind + 2, "", expr; next }
			skip { match($0, /^ */); if (RLENGTH > ind && $0 !~ /^ *$/) next; skip = 0 }
			inalert && /^ *for: / { sub(/for: .*/, "for: 0m") }
			{ print }' "$RULES" >"$W/m/${RULES##*/}" &&
		! cmp -s "$RULES" "$W/m/${RULES##*/}" &&
		promtool test rules "$W/m/${RTEST##*/}" 2>&1
}
for a in "${alerts[@]}"; do
	# Never firing: the test fails on this alert (an expected firing is missing).
	out=$(mutate "$a" 'vector(0) > 1'); rc=$?
	check_eq "${a}_test_catches_never_firing" "1 yes" \
		"$rc $(grep -q "alertname: $a, time:" <<<"$out" && echo yes || echo no)"
	# Always firing: the test fails on an expectation of silence (exp:[]) for this alert.
	out=$(mutate "$a" 'vector(1)'); rc=$?
	check_eq "${a}_test_catches_firing_when_healthy" "1 yes" \
		"$rc $(grep -A1 "alertname: $a, time:" <<<"$out" | grep -q 'exp:\[\], *$' && echo yes || echo no)"
done

# --- 2. the dashboard: JSON, a datasource variable, PromQL that parses ------------------
check "dashboard_is_json" jq -e '.panels | length > 0' "$DASH"
check "dashboard_datasource_is_a_variable" jq -e '
	(.templating.list | any(.type == "datasource" and .query == "prometheus" and .name == "datasource"))
	and ([.. | objects | select(has("datasource")) | .datasource.uid] | unique == ["${datasource}"])' "$DASH"
check_eq "dashboard_panel_ids_unique" "" "$(jq -r '.panels[].id' "$DASH" | sort | uniq -d)"
# What the operator came for: throughput, batch duration from the histogram, backlog,
# rejects by reason, the database and the quarantine.
jq -r '.panels[] | .type as $t | .targets[] | "\($t) \(.expr)"' "$DASH" >"$W/dash_exprs"
while read -r what want; do
	check "dashboard_shows_$what" grep -q -- "$want" "$W/dash_exprs"
done <<'EOF'
throughput timeseries .*rate(evpipe_rows_total
batch_duration_heatmap heatmap .*evpipe_batch_duration_seconds_bucket
batch_duration_p99 histogram_quantile(0.99, .*evpipe_batch_duration_seconds_bucket
backlog_files evpipe_files_pending
backlog_age evpipe_lag_seconds
rejects_by_reason by (reason) (rate(evpipe_rows_invalid_total
database_reconnects evpipe_database_reconnects_total
quarantine evpipe_files_quarantined_total
EOF
# Each expression, Grafana's variables given values, as a recording rule promtool parses.
{
	echo 'groups:'
	echo '  - name: dashboard'
	echo '    rules:'
	jq -r '.panels[] | .id as $p | .targets | to_entries[] |
		"      - record: dashboard:panel\($p)_\(.key)\n        expr: \(.value.expr
			| gsub("\\$__rate_interval"; "5m") | gsub("\\$instance"; ".*") | tojson)"' "$DASH"
} >"$W/dash.rules.yml"
check "dashboard_promql_parses" promtool check rules "$W/dash.rules.yml"

# --- 3. the names: those of a real evstream's metrics file -----------------------------
stream_setup
evgen_run --count=4 --rows_per_file=200 --interval=0 --seed=19 --invalid_rate=0.05 \
	--duplicate_rate=0.03 --late_rate=0.02
printf '%s\nx,1,view,1,2026-01-01 00:00:00\n' 'event_id,user_id,event_type,product_id,event_time' \
	>"$SPOOL/events_zz_missing_price.csv"
evstream_once --max_files_per_trigger=2
PROM=$CKPT/evpipe.prom
check "metrics_file_written" test -s "$PROM"
cp "$PROM" "$EVPIPE_TEST_LOGDIR/alert_rules_metrics_sample.prom" 2>/dev/null
# "name" per sample, "name label value" per label of it, "name TYPE type" per TYPE line.
awk '/^# TYPE / { print $3, "TYPE", $4; next } /^#/ { next }
	{ s = $1; n = s; sub(/\{.*/, "", n); print n
	  while (match(s, /[a-z_]+="[^"]*"/)) {
		kv = substr(s, RSTART, RLENGTH); s = substr(s, RSTART + RLENGTH)
		eq = index(kv, "="); print n, substr(kv, 1, eq - 1), substr(kv, eq + 2, length(kv) - eq - 2) } }' \
	"$PROM" | LC_ALL=C sort -u >"$W/exported"
check "metrics_file_has_evpipe_samples" grep -q '^evpipe_batches_total$' "$W/exported"
has() { grep -qxF "$*" "$W/exported"; }
unknown=
# A sample's name, or a histogram's own (its TYPE line; the samples are _bucket, _sum, _count).
for n in $(grep -ohE 'evpipe_[a-z_]+[a-z]' "$RULES" "$RTEST" "$DASH" | LC_ALL=C sort -u); do
	has "$n" || grep -q "^$n TYPE " "$W/exported" || unknown+=" $n"
done
check_eq "every_metric_name_is_exported" "" "$unknown"
# Label matchers: job and instance come from the scrape; any other label=value (and each
# alternative of a =~"a|b") must be one a sample of that metric carries.
unknown=
while read -r sel; do
	n=${sel%%\{*}
	while read -r lbl op val; do
		[[ -z $lbl || $lbl == job || $lbl == instance ]] && continue
		[[ $op == '=~' ]] && val=${val//|/ }	# each alternative of a =~ on its own
		for v in $val; do has "$n $lbl $v" || unknown+=" $n{$lbl$op\"$v\"}"; done
	done < <(sed 's/^[^{]*{//; s/}$//' <<<"$sel" | tr ',' '\n' |
		sed -nE 's/^ *([a-z_]+) *(=~|=) *\\?"([^"\\]*)\\?" *$/\1 \2 \3/p')
done < <(grep -ohE 'evpipe_[a-z_]+\{[^}]*\}' "$RULES" "$RTEST" "$DASH" | LC_ALL=C sort -u)
check_eq "every_label_value_is_exported" "" "$unknown"
# Grouping labels (by, without, ignoring, on): the scrape's, le, or one evstream writes.
unknown=
for l in $(grep -ohE '\b(by|without|ignoring|on) *\([a-z_, ]*\)' "$RULES" "$DASH" |
	sed 's/.*(//; s/)//; s/,/ /g'); do
	[[ $l == job || $l == instance || $l == le ]] && continue
	grep -qE "^evpipe_[a-z_]+ $l " "$W/exported" || unknown+=" $l"
done
check_eq "every_grouping_label_is_exported" "" "$unknown"
# rate() and increase() of a gauge would be silently wrong: counters (and histogram parts) only.
wrong=
for n in $(grep -ohE '\b(rate|increase)\(evpipe_[a-z_]+' "$RULES" "$DASH" | sed 's/.*(//' | LC_ALL=C sort -u); do
	base=${n%_bucket}; base=${base%_sum}; base=${base%_count}
	has "$n TYPE counter" || has "$base TYPE histogram" || wrong+=" $n"
done
check_eq "rate_only_of_counters" "" "$wrong"
