#!/bin/sh
# Every program a test names as needed comes from a Debian package that
# scripts/deps.sh installs, or from an Essential one, which every Debian
# system has (a minimal root, `mmdebstrap --variant=apt`, has only those
# and apt). Otherwise scripts/run-tests.sh would leave it missing there,
# and the test would fail. The programs are read from the tests: the tools
# given to h_begin, sys_begin and f_begin, the lists of `for tool in ...`,
# and the cli tests' `need`. Needs dpkg (Debian).
. "${srcdir:-.}/check-lib.sh"
LC_ALL=C
export LC_ALL
tests=${srcdir:-.}
if ! command -v dpkg-query >/dev/null 2>&1; then
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: test-deps.sh needs dpkg; VK_STRICT=1 must not skip"
		exit 99
	fi
	echo "SKIP: needs dpkg"
	exit 77
fi
# shellcheck source=scripts/deps.sh
. "$tests/../scripts/deps.sh"
# shellcheck disable=SC2086
listed=$(printf '%s\n' $BUILD_PACKAGES $TEST_PACKAGES $PACKAGE_PACKAGES | sort -u)

tools=$({
	sed -n 's/^[[:space:]]*\(h_begin\|sys_begin\|f_begin\) [^ ]* //p' "$tests"/*.sh
	sed -n 's/^[[:space:]]*for tool in \(.*\); do$/\1/p' "$tests"/*.sh
	sed -n 's/^need \([^ ]*\) .*/\1/p' "$tests/cli/lib.sh"
} | tr ' ' '\n' | grep '^[a-z][a-z0-9._-]*$' | sort -u)
echo "programs the tests need: $(echo "$tools" | tr '\n' ' ')"

# package PATH: the package that installed PATH, as dpkg knows it (under
# /usr or not: Debian 12 merged /bin into /usr/bin, and packages may name either).
package() {
	for p in "$1" "$(readlink -f "$1")" "${1#/usr}" "$(readlink -f "$1" | sed 's,^/usr,,')"; do
		dpkg-query -S "$p" 2>/dev/null | grep -v '^diversion by ' | sed -n '1s/: .*//p' |
			tr -d ' ' | tr ',' '\n' | sed 's/:.*//' | grep . && return 0
	done
	return 1
}

# provided TOOL: TOOL is installed, from a listed or an Essential package.
provided() {
	if ! path=$(command -v "$1"); then
		echo "  $1 is not installed"
		return 1
	fi
	if ! pkgs=$(package "$path"); then
		echo "  $1 ($path) belongs to no package"
		return 1
	fi
	for p in $pkgs; do
		if echo "$listed" | grep -qx "$p"; then
			echo "  $1: $p, in scripts/deps.sh"
			return 0
		fi
		if [ "$(dpkg-query -W -f '${Essential}' "$p" 2>/dev/null)" = yes ]; then
			echo "  $1: $p, Essential"
			return 0
		fi
	done
	echo "  $1 ($path) comes from $(echo "$pkgs" | tr '\n' ' ')which is neither Essential nor in scripts/deps.sh"
	return 1
}

for tool in $tools; do
	check "$tool comes from a package scripts/deps.sh installs, or an Essential one" provided "$tool"
done
check_end
