# shellcheck shell=sh
# check-lib.sh - what every shell test's library shares (hardening-lib.sh,
# fleet-lib.sh, system-lib.sh): a test case, and the last line with the
# counts, which run-tests.sh adds up.

passed=0
failed=0

# check NAME CONDITION...: one test case; CONDITION is a command.
check() {
	c_what=$1
	shift
	if "$@"; then
		echo "PASS: $c_what"
		passed=$((passed + 1))
	else
		echo "FAIL: $c_what"
		failed=$((failed + 1))
	fi
}

# check_end: prints the counts; true when something passed and nothing failed.
check_end() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}
