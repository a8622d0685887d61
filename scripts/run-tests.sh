#!/bin/sh
# run-tests.sh - the whole test suite. Installs what the tests need, builds
# with warnings as errors, and runs, one after another:
#
#   check      make check but the fleet: unit, module, CLI, hardening, sshd
#              and sudo tests
#   valgrind   the module tests and the keyadm (CLI) tests under memcheck:
#              no error and no definite leak. With the sanitize phase also
#              to run, beside it (see run_sanitize), its line after that
#              phase's
#   sanitize   make distcheck with --enable-sanitizers (ASan and UBSan, no
#              recovery): the whole of make check, from the tarball, the
#              fleet tests (tests/test-fleet-*.sh) with it. They run once,
#              here, where a daemon that leaked ends with an error on SIGTERM;
#              one after another, in a make of their own (tests/Makefile.am,
#              check-local) in a job slot of their own, the rest beside them
#              in the others, -j as many as the host has cores
#   fuzz       each libFuzzer target for $FUZZ_SECONDS (60) seconds, built
#              with clang in a copy of the source
#   packages   scripts/build-packages.sh (dpkg-buildpackage and lintian), then
#              tests/test-packages.sh: the .debs installed with apt-get in a
#              private mount namespace, pam-auth-update, a real sshd login,
#              disable and purge; installed again, the host joins a fleet
#              (viamkey-syncd join) and logs in with a key from its
#              authority; the host is left as it was
#
# Before them it builds viamkey's first fleet format from git (tests/baseline),
# for the test of a fleet upgraded one host at a time.
#
# Name phases to run only those (e.g. `run-tests.sh check`). Ends with one
# line "N passed, N failed" over all phases; each phase's line before it
# also says how many seconds the phase took. Every test must run: with
# VK_STRICT=1 a test that cannot (not root, a tool missing) fails instead of
# skipping, and a skip that happens anyway counts as a failure.
#
# Many tests record a machine as this host's (keyadm init --machine), which
# needs /etc/machine-id. On a host without one (a container, a minimal
# root), the phases run in a private mount namespace whose /etc is a copy
# with a machine-id of its own: the host's /etc is left as it is.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
. scripts/deps.sh

phases=${*:-check valgrind sanitize fuzz packages}
# everything is installed first: apt-get must not write to the /etc copy
install_packages $BUILD_PACKAGES $TEST_PACKAGES
case " $phases " in
*" packages "*) install_packages $PACKAGE_PACKAGES ;;
esac

# as the store reads it: 32 lowercase hex digits on one line
if [ -z "${VK_RUN_PRIVATE_ETC:-}" ] && ! grep -qx '[0-9a-f]\{32\}' /etc/machine-id 2>/dev/null; then
	echo "run-tests.sh: this host has no /etc/machine-id; the tests run in a private mount" \
		"namespace whose /etc is a copy with a machine-id of its own (the host's /etc is not changed)"
	if ! unshare --mount --propagation private true 2>/dev/null; then
		echo "run-tests.sh: cannot make a mount namespace here; give the host a machine-id" \
			"(systemd-machine-id-setup, or dbus-uuidgen --ensure=/etc/machine-id) and run again" >&2
		exit 1
	fi
	# a tmpfs copy of /etc, bound on /etc; its first mount point goes at once
	VK_RUN_PRIVATE_ETC=1 exec unshare --mount --propagation private sh -c '
		set -eu
		etc=$(mktemp -d "${TMPDIR:-/tmp}/viamkey-etc.XXXXXX")
		mount -t tmpfs -o mode=0755 tmpfs "$etc"
		cp -a /etc/. "$etc"
		rm -f "$etc/machine-id"
		od -An -N16 -tx1 /dev/urandom | tr -d " \n" >"$etc/machine-id"
		echo >>"$etc/machine-id"
		chmod 0444 "$etc/machine-id"
		mount --bind "$etc" /etc
		umount "$etc"
		rmdir "$etc"
		exec "$@"' sh "$0" "$@"
fi
build_tree tests
build_baseline
VK_STRICT=1
export VK_STRICT

out=$top/tests/run-tests
mkdir -p "$out"
passed=0
failed=0

# tally NAME LOG STATUS: adds an automake summary (or a failed phase) to the totals.
tally() {
	p=$(sed -n 's/^# PASS: *//p' "$2" | awk '{s += $1} END {print s + 0}')
	f=$(sed -n 's/^# \(FAIL\|ERROR\|XPASS\|SKIP\): *//p' "$2" | awk '{s += $1} END {print s + 0}')
	grep -E '^(FAIL|ERROR|XPASS|SKIP):' "$2" || true
	if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		tail -n 30 "$2"
	fi
	echo "$1: $p passed, $f failed ($(($(date +%s) - phase_start)) s)"
	passed=$((passed + p))
	failed=$((failed + f))
}

# Prints the failed checks and the end of each failed test's log in DIR/tests/.
show_failures() {
	for trs in $(grep -lE '^:test-result: (FAIL|ERROR|XPASS|SKIP)' "$1"/tests/*.trs \
		"$1"/tests/cli/*.trs 2>/dev/null); do
		echo "---- ${trs%.trs}.log"
		grep '^FAIL' "${trs%.trs}.log" || :
		tail -n 40 "${trs%.trs}.log"
	done
}

run_check() {
	status=0
	# the fleet's tests run in the sanitize phase
	make -j"$(nproc)" check fleet_scripts= >"$out/check.log" 2>&1 || status=$?
	[ "$status" -eq 0 ] || show_failures "$top"
	tally check "$out/check.log" "$status"
}

# The module and keyadm (the CLI tests) under memcheck, into $out/valgrind.log;
# each make under the command prefix $1 (a scheduling policy, or nothing).
valgrind_tests() {
	vg="valgrind -q --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite"
	vg="$vg --show-leak-kinds=definite"
	cat >"$out/keyadm-valgrind" <<-EOF
		#!/bin/sh
		exec $vg "$top/keyadm/keyadm" "\$@"
	EOF
	chmod +x "$out/keyadm-valgrind"
	# the three that run keyadm most (231, 150 and 114 times) first: the last
	# to start is not the longest
	cli=$(cd tests && printf '%s\n' cli/errors.sh cli/keys.sh cli/tree.sh cli/*.sh |
		grep -v lib.sh | awk '!seen[$0]++' | tr '\n' ' ')
	{
		$1 make -C tests check TESTS=pam_module_test LOG_COMPILER="$vg" &&
			$1 make -C tests -j"$(nproc)" check TESTS="$cli" \
				AM_TESTS_ENVIRONMENT="KEYADM=$out/keyadm-valgrind; export KEYADM;"
	} >"$out/valgrind.log" 2>&1
}

# tally_valgrind STATUS
tally_valgrind() {
	[ "$1" -eq 0 ] || show_failures "$top"
	tally valgrind "$out/valgrind.log" "$1"
}

run_valgrind() {
	status=0
	valgrind_tests "" || status=$?
	tally_valgrind "$status"
}

# Whether the sanitize phase's tests have started: a test's log in its build
# tree, newer than the phase's own log.
asan_tests_started() {
	for f in "$top"/viamkey-*/_build/sub/tests/*.log; do
		[ -z "$(find "$f" -newer "$out/sanitize.log" 2>/dev/null)" ] || return 0
	done
	return 1
}

# Under ASan the fleet's tests wait on their clusters more than they compute:
# with the sanitize phase also to run, the valgrind phase runs beside it once
# its build is done (the first test's log there), in the CPU time the others
# leave (SCHED_IDLE: any other process that can run goes first). Its line
# comes after the sanitize phase's, with its own seconds.
run_sanitize() {
	status=0
	make -j"$(nproc)" distcheck DISTCHECK_CONFIGURE_FLAGS="--enable-sanitizers --enable-werror" \
		>"$out/sanitize.log" 2>&1 &
	pid=$!
	vgpid=
	if [ -n "$valgrind_beside" ]; then
		while kill -0 "$pid" 2>/dev/null && ! asan_tests_started; do
			sleep 2
		done
		rm -f "$out/valgrind.status"
		(
			start=$(date +%s)
			s=0
			valgrind_tests "chrt --idle 0" || s=$?
			echo "$s $(($(date +%s) - start))" >"$out/valgrind.status"
		) &
		vgpid=$!
	fi
	wait "$pid" || status=$?
	# a failed distcheck leaves its build tree behind (none when it failed before)
	if [ "$status" -ne 0 ]; then
		sub=$(ls -dt "$top"/viamkey-*/_build/sub 2>/dev/null | head -n 1)
		[ -z "$sub" ] || show_failures "$sub"
	fi
	tally sanitize "$out/sanitize.log" "$status"
	if [ -n "$vgpid" ]; then
		wait "$vgpid" || :
		set -- 1 0
		# shellcheck disable=SC2046
		[ ! -s "$out/valgrind.status" ] || set -- $(cat "$out/valgrind.status")
		phase_start=$(($(date +%s) - $2))
		tally_valgrind "$1"
	fi
}

run_fuzz() {
	status=0
	tests/fuzz/build-and-run.sh "${FUZZ_SECONDS:-60}" >"$out/fuzz.log" 2>&1 || status=$?
	# a failed target's line, what it found and the input that did it
	grep -A4 '^fuzz_[a-z_]*: FAILED' "$out/fuzz.log" || :
	tally fuzz "$out/fuzz.log" "$status"
}

# The closing "N passed, N failed" of a script's LOG, as "N N" (0 1 without one).
script_counts() {
	sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$1" | tail -n 1 | grep . || echo 0 1
}

run_packages() {
	p=0
	f=0
	if scripts/build-packages.sh >"$out/packages.log" 2>&1; then
		p=1
	else
		f=1
		tail -n 30 "$out/packages.log"
	fi
	grep '^lintian: ' "$out/packages.log" || :
	if [ "$f" -eq 0 ]; then
		status=0
		(cd tests && ./test-packages.sh) >"$out/test-packages.log" 2>&1 || status=$?
		# shellcheck disable=SC2046
		set -- $(script_counts "$out/test-packages.log")
		grep -E '^(PASS|FAIL|SKIP|NOTE):|: exposure ' "$out/test-packages.log" || :
		if [ "$status" -ne 0 ]; then
			[ "$2" -gt 0 ] || set -- "$1" 1
			tail -n 40 "$out/test-packages.log"
		fi
		p=$((p + $1))
		f=$((f + $2))
	fi
	echo "packages: $p passed, $f failed ($(($(date +%s) - phase_start)) s)"
	passed=$((passed + p))
	failed=$((failed + f))
}

valgrind_beside=
case " $phases " in
*" valgrind "*)
	case " $phases " in
	*" sanitize "*) valgrind_beside=1 ;;
	esac
	;;
esac
for phase in $phases; do
	case $phase in
	check | valgrind | sanitize | fuzz | packages)
		phase_start=$(date +%s)
		[ "$phase$valgrind_beside" = valgrind1 ] || "run_$phase"
		;;
	*)
		echo "run-tests.sh: unknown phase $phase" >&2
		exit 2
		;;
	esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
