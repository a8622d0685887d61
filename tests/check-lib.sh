# shellcheck shell=sh
# check-lib.sh - what every shell test's library shares (hardening-lib.sh,
# fleet-lib.sh, system-lib.sh): a test case, the last line with the counts,
# which run-tests.sh adds up, and a key made through the library's `ka`.

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

# ka_key VAR ARGS...: runs `ka --json ARGS` (the sourcing library's keyadm);
# sets VAR_ID and VAR_TOKEN (empty on failure, with keyadm's error in
# $WORK/ka_key.err).
ka_key() {
	k_var=$1
	shift
	if ka --json "$@" >"$WORK/ka_key.json" 2>"$WORK/ka_key.err"; then
		eval "${k_var}_ID=\$(jq -r .id \"\$WORK/ka_key.json\")"
		eval "${k_var}_TOKEN=\$(jq -r .key \"\$WORK/ka_key.json\")"
	else
		eval "${k_var}_ID= ${k_var}_TOKEN="
	fi
	rm -f "$WORK/ka_key.json"
}

# ASAN_OPTIONS for a program run with LD_PRELOAD=faultpoint.so: in the
# sanitize phase the shim comes before ASan's runtime in the list of
# libraries, which ASan accepts only when told not to check the order.
FAULT_ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
