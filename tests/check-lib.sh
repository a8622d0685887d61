# shellcheck shell=sh
# check-lib.sh - what every shell test's library shares (hardening-lib.sh,
# fleet-lib.sh, system-lib.sh): a test case, the last line with the counts,
# which run-tests.sh adds up, a key made through the library's `ka`, and a
# PAM service file for the built module.

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
# shellcheck disable=SC2034 # used by the scripts that source this file
FAULT_ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

# pam_service FILE CONF [ARG...]: a PAM service file whose auth, account and
# session stacks each require the built module ($MODULE) with config=CONF,
# nodelay and ARGs.
pam_service() {
	p_file=$1
	p_conf=$2
	shift 2
	for p_stack in auth account session; do
		printf '%-8s required %s config=%s nodelay%s\n' "$p_stack" "$MODULE" "$p_conf" "${*:+ $*}"
	done >"$p_file"
}
