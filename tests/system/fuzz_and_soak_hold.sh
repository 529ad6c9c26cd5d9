#!/usr/bin/env bash
# Two long checks at once, to share their two minutes: the libFuzzer targets
# (tests/fuzz/run.sh: the CSV -> event path and the checkpoint reader, each
# EVPIPE_FUZZ_SECONDS, default 60, niced so the soak keeps its pace) find no crash,
# hang, leak or broken invariant; and the soak (tests/soak/soak.sh, EVPIPE_SOAK_SECONDS,
# default 120) keeps evstream's memory flat under a steady stream.
set -u
. "$EVPIPE_ROOT/tests/lib/testlib.sh"
. "$EVPIPE_ROOT/tests/lib/reliability.sh"
FUZZ_S=${EVPIPE_FUZZ_SECONDS:-60}
SOAK_S=${EVPIPE_SOAK_SECONDS:-120}
T=$(tmpdir)

if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
	skip "fuzz" "no clang here (make deps installs it)"
	FUZZ_PID=
else
	nice -n 10 bash "$EVPIPE_ROOT/tests/fuzz/run.sh" "$FUZZ_S" "$T/fuzz" >"$T/fuzz.out" 2>&1 &
	FUZZ_PID=$!
	at_exit "kill $FUZZ_PID 2>/dev/null"
fi

SOAK_SECONDS=$SOAK_S bash "$EVPIPE_ROOT/tests/soak/soak.sh"
soak_rc=$?

[[ -n $FUZZ_PID ]] || exit "$soak_rc"
wait "$FUZZ_PID"
fuzz_rc=$?
cat "$T/fuzz.out"
for t in csv ckpt; do
	line=$(grep "^fuzz: $t " "$T/fuzz.out")
	execs=$(sed -n 's/.* execs=\([0-9]*\).*/\1/p' <<<"$line")
	crashes=$(sed -n 's/.* crashes=\([0-9]*\).*/\1/p' <<<"$line")
	check_eq "fuzz_${t}_no_crash" 0 "${crashes:-missing}"
	# A run that stopped early or barely ran proves nothing.
	check "fuzz_${t}_ran_${FUZZ_S}s" test "${execs:-0}" -ge $((FUZZ_S * 50))
	mkdir -p "$REL_DIR" && printf '%s\t%s\t%s\t%s\n' "$t" "$FUZZ_S" "${execs:-0}" "${crashes:-1}" \
		>>"$REL_DIR/fuzz.tsv"
done
check_eq "fuzz_run_exit_0" 0 "$fuzz_rc"
exit "$soak_rc"
