#!/bin/sh
# run-fuzzers.sh [SECONDS] - smoke test of the built libFuzzer targets.
#
# Runs each target for SECONDS (default 60) on a scratch copy of its seed
# corpus, so the committed corpus never grows, and prints one line per
# target with its number of executions. It builds nothing: configure with
# --enable-fuzzing and run make first (README.md here says how). It exits
# non-zero when a target is missing, crashes, leaks, fails an invariant or
# hangs, and then keeps the log and the input that did it.
#
# Targets are looked for in $FUZZ_BUILDDIR, by default this script's
# directory (an in-tree build).
set -u

here=$(cd "$(dirname "$0")" && pwd)
builddir=${FUZZ_BUILDDIR:-$here}
seconds=${1:-60}
targets=${FUZZ_TARGETS:-"fuzz_token fuzz_config fuzz_authz fuzz_keyadm_args fuzz_head fuzz_cert fuzz_nkey fuzz_jwt fuzz_join fuzz_event fuzz_ini"}

case $seconds in
'' | *[!0-9]* | 0)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/viamkey-fuzz-run.XXXXXX") || exit 1
# UBSan findings are fatal however the targets were compiled; ASan leak
# checking is on by default and stays so.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export UBSAN_OPTIONS

failed=0
for t in $targets; do
	if [ ! -x "$builddir/$t" ]; then
		echo "$t: FAILED: not built in $builddir (configure with --enable-fuzzing, then make)"
		failed=1
		continue
	fi
	mkdir -p "$work/$t/corpus"
	cp "$here/corpus/$t"/* "$work/$t/corpus/"
	start=$(date +%s)
	"$builddir/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
		-artifact_prefix="$work/$t/" "$work/$t/corpus" >"$work/$t.log" 2>&1
	rc=$?
	elapsed=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
	if [ "$rc" -eq 0 ]; then
		echo "$t: ok, ${execs:-?} execs in ${elapsed} s"
		continue
	fi
	failed=1
	echo "$t: FAILED (exit $rc) after ${execs:-?} execs in ${elapsed} s; log: $work/$t.log"
	grep -m 3 -E '^(==[0-9]+==ERROR|SUMMARY|fuzz: )|runtime error' "$work/$t.log" | sed 's/^/    /'
	for a in "$work/$t"/crash-* "$work/$t"/leak-* "$work/$t"/timeout-* "$work/$t"/oom-*; do
		[ -e "$a" ] && echo "    input: $a (reproduce: $builddir/$t $a)"
	done
done

if [ "$failed" -eq 0 ]; then
	rm -rf "$work"
else
	echo "kept $work"
fi
exit "$failed"
