#!/bin/sh
# run-tests.sh - the whole test suite: installs what the tests need, builds
# with warnings as errors, and runs `make check` (unit, module, CLI, sshd
# and sudo tests). Ends with one line "N passed, N failed".
#
# The sshd and sudo tests need root and skip themselves otherwise.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh

install_packages $BUILD_PACKAGES $TEST_PACKAGES
build_tree

status=0
make -j"$(nproc)" check >tests/check.out 2>&1 || status=$?
grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' tests/check.out || true
if [ "$status" -ne 0 ]; then
	for log in $(grep -lE '^:test-result: (FAIL|ERROR|XPASS)' tests/*.trs tests/cli/*.trs 2>/dev/null); do
		echo "---- ${log%.trs}.log"
		tail -n 40 "${log%.trs}.log"
	done
fi
count() { sed -n "s/^# $1: *//p" tests/check.out | head -n 1; }
passed=$(count PASS)
failed=$(($(count FAIL) + $(count ERROR) + $(count XPASS)))
[ "$status" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
echo "${passed:-0} passed, $failed failed"
exit "$status"
