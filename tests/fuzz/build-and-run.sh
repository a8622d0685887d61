#!/bin/sh
# build-and-run.sh [SECONDS] - the fuzzing smoke test for CI: builds the
# libFuzzer targets with clang in a scratch copy of the source (made by
# `make distdir` in an already configured tree, which stays untouched), runs
# each for SECONDS (default 60) with run-fuzzers.sh, and ends with
# automake-style "# PASS:" and "# FAIL:" counts of targets. The targets run
# side by side, so the smoke test takes SECONDS, not SECONDS for each.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${1:-60}
work=$(mktemp -d "${TMPDIR:-/tmp}/viamkey-fuzz-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# distdir must be relative: each subdirectory copies into ../$(distdir)
copy=.fuzz-src.$$
make -C "$top" distdir distdir="$copy" >/dev/null
mv "$top/$copy" "$work/src"
cd "$work/src"
./configure -q CC=clang --enable-fuzzing \
	CFLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -g -O1" >/dev/null
make -j"$(nproc)" >/dev/null
status=0
pids=
for t in fuzz_token fuzz_config fuzz_authz fuzz_keyadm_args fuzz_head fuzz_cert fuzz_nkey fuzz_jwt fuzz_join fuzz_event fuzz_ini; do
	FUZZ_TARGETS=$t tests/fuzz/run-fuzzers.sh "$seconds" >"$work/$t.log" 2>&1 &
	pids="$pids $!"
done
for pid in $pids; do
	wait "$pid" || status=$?
done
cat "$work"/fuzz_*.log >"$work/run.log"
cat "$work/run.log"
targets=$(grep -c '^fuzz_[a-z_]*: ' "$work/run.log" || true)
ok=$(grep -c '^fuzz_[a-z_]*: ok' "$work/run.log" || true)
echo "# PASS: $ok"
echo "# FAIL: $((targets - ok))"
exit "$status"
