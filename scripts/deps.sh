# scripts/deps.sh - Debian packages viamkey needs; sourced by the other scripts.

# To build keyadm and pam_viamkey.so.
BUILD_PACKAGES="build-essential autoconf automake libtool pkg-config libpam0g-dev
libsodium-dev libsqlite3-dev libiniparser-dev libnats-dev"

# To run every test: unit, module, CLI, hardening, sshd, sudo and fleet, under
# valgrind and the sanitizers, and the libFuzzer smoke run (libclang-rt-14-dev
# holds libFuzzer; clang only recommends it, and installs here skip recommends).
# mount (mount, umount) is not Essential: a minimal root has none. git is for
# test-copy-source.sh. tests/test-deps.sh checks that every program a test
# needs comes from a package named here or an Essential one.
TEST_PACKAGES="libcmocka-dev openssh-server openssh-client
sshpass sudo sqlite3 jq clang libclang-rt-14-dev valgrind util-linux mount procps iproute2 passwd
binutils libpam-modules nats-server curl git"

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
