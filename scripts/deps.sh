# scripts/deps.sh - Debian packages viamkey needs; sourced by the other scripts.

# To build keyadm and pam_viamkey.so.
BUILD_PACKAGES="build-essential autoconf automake libtool pkg-config libpam0g-dev
libsodium-dev libsqlite3-dev libiniparser-dev libnats-dev libsystemd-dev"

# To run every test: unit, module, CLI, hardening, sshd, sudo and fleet, under
# valgrind and the sanitizers, and the libFuzzer smoke run (libclang-rt-14-dev
# holds libFuzzer; clang only recommends it, and installs here skip recommends).
# mount (mount, umount) is not Essential: a minimal root has none. git is for
# test-copy-source.sh and for building the first fleet format (build_baseline
# below); faketime for test-fleet-clock.sh. tests/test-deps.sh checks that every program a test
# needs comes from a package named here or an Essential one.
TEST_PACKAGES="libcmocka-dev openssh-server openssh-client
sshpass sudo sqlite3 jq clang libclang-rt-14-dev valgrind util-linux mount procps iproute2 passwd
binutils libpam-modules nats-server curl faketime git"

# To build the Debian packages (scripts/build-packages.sh) and test them as
# installed (tests/test-packages.sh): debhelper, lintian, and what the test
# asks of the installed files (bash-completion's loader, systemd-analyze,
# pam-auth-update) and apt-get, which it installs them with.
PACKAGE_PACKAGES="debhelper dh-autoreconf dpkg-dev fakeroot lintian bash-completion systemd
libpam-runtime apt"

# Installs whichever of the named packages are missing (needs root then).
install_packages() {
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "viamkey: these packages are missing:$missing" >&2
		echo "viamkey: run this script with sudo, or install them yourself" >&2
		exit 1
	fi
	echo "viamkey: installing$missing" >&2
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# The commit of viamkey's first fleet format, as released: the fleet's upgrade
# test (tests/test-fleet-upgrade.sh) runs it beside this tree.
BASELINE=2e953a2036edf294d10f9339ce910137683aaa18

# Builds BASELINE from git into tests/baseline (once) and exports
# VK_BASELINE for the tests; says why when it cannot (then the upgrade
# test fails under VK_STRICT=1).
build_baseline() {
	b_dir=$(pwd)/tests/baseline
	if [ ! -x "$b_dir/syncd/viamkey-syncd" ]; then
		rm -rf "$b_dir"
		mkdir -p "$b_dir"
		if ! git archive "$BASELINE" | tar -x -C "$b_dir" ||
			! (cd "$b_dir" && autoreconf -fi && ./configure && make -j"$(nproc)") \
				>"$b_dir.log" 2>&1; then
			echo "viamkey: cannot build the first fleet format ($BASELINE); see $b_dir.log" >&2
			return 0
		fi
	fi
	VK_BASELINE=$b_dir
	export VK_BASELINE
}

# Configures and builds the tree in the current directory. configure runs
# when the tree was never configured, or (with `tests`) when it was
# configured before the test packages were there: the C tests are built
# only when configure finds cmocka.
build_tree() {
	[ -x configure ] || autoreconf -fi
	if [ ! -f Makefile ] ||
		{ [ "${1:-}" = tests ] && ! grep -q '^VK_HAVE_CMOCKA = yes' tests/Makefile; }; then
		./configure --enable-werror
	fi
	make -j"$(nproc)" >/dev/null
}
