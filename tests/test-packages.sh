#!/bin/sh
# test-packages.sh - the Debian packages, installed for real as a sysadmin
# would: apt-get install, pam-auth-update --enable viamkey, a real sshd on
# 127.0.0.1 that logs in with a key from a store made by the installed
# keyadm and refuses a wrong one, then pam-auth-update --disable viamkey
# and apt-get purge, which must leave /etc/pam.d/common-* byte-identical to
# before and no file of the packages behind.
#
# Needs root and the packages that scripts/build-packages.sh builds (in
# ./packages, or $VK_PACKAGES_DIR). It runs in a private mount namespace
# where /etc, /usr and /var are overlays (system-lib.sh, SYS_OVERLAY): apt
# and dpkg write into a tmpfs that goes away with the namespace, so the
# host's files, its dpkg database included, are never written; the test
# checks that too, from outside the namespace, once it is over.
# shellcheck source=system-lib.sh
. "${srcdir:-$(dirname "$0")}/system-lib.sh"
top=$(cd "$(dirname "$0")/.." && pwd)
pkgdir=${VK_PACKAGES_DIR:-$top/packages}
SYS_OVERLAY="/etc /usr /var"

# What of the host the test must leave as it was.
host_state() {
	sha256sum /var/lib/dpkg/status /etc/pam.d/common-* /var/lib/pam/* 2>&1
	dpkg-query -W -f='${Package} ${Status}\n' libpam-viamkey viamkey 2>&1
	ls -ld /etc/viamkey /var/lib/viamkey /usr/sbin/keyadm /usr/share/pam-configs/viamkey \
		/lib/*/security/pam_viamkey.so /lib/systemd/system/viamkey-syncd.service 2>&1
}

# ---- outside: run the test in the namespace, then look at the host --------
if [ -z "${VK_SYSTEM_NS:-}" ]; then
	[ "$(id -u)" -eq 0 ] || sys_skip "packages needs root"
	state=$(mktemp -d)
	host_state >"$state/before"
	VK_SYSTEM_NS=1 unshare --mount --propagation private sh "$0" >"$state/log" 2>&1
	rc=$?
	cat "$state/log"
	[ "$rc" -eq 77 ] || [ "$rc" -eq 99 ] && { rm -rf "$state"; exit "$rc"; }
	host_state >"$state/after"
	# shellcheck disable=SC2046
	set -- $(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$state/log" | tail -n 1)
	passed=${1:-0} failed=${2:-1}
	check "the host's dpkg status, PAM stacks and package files are as they were" \
		cmp -s "$state/before" "$state/after"
	cmp -s "$state/before" "$state/after" || diff "$state/before" "$state/after"
	rm -rf "$state"
	[ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
	check_end
	exit
fi

# ---- inside the namespace --------------------------------------------------
sys_begin packages apt-get dpkg pam-auth-update sshd ssh ssh-keygen sshpass ss timeout \
	chpasswd systemd-analyze bash
debs=$(ls "$pkgdir"/*.deb 2>/dev/null)
[ -n "$debs" ] || { echo "FAIL: no packages in $pkgdir: run scripts/build-packages.sh"; exit 99; }
export DEBIAN_FRONTEND=noninteractive
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
packages=$(for d in $debs; do dpkg-deb -f "$d" Package; done | tr '\n' ' ')

sys_user vkp-ann
sys_user vkp-bob
echo 'vkp-ann:Unix-password-1' | chpasswd

# Paths under /etc, /usr and /var, but for the package manager's own records.
paths() {
	find /etc /usr /var -xdev \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache \
		-o -path /var/log \) -prune -o -print | sort
}
mkdir "$WORK/pam-before"
cp -p /etc/pam.d/common-* "$WORK/pam-before/"
paths >"$WORK/paths-before"
# What the packages hold that is not on the system yet: all gone after purge.
for d in $debs; do
	dpkg-deb --fsys-tarfile "$d" | tar -t | sed 's|^\./|/|; s|/$||; /^$/d'
done | sort -u | while IFS= read -r f; do
	[ -e "$f" ] || [ -L "$f" ] || echo "$f"
done >"$WORK/package-new"

# pam_stacks_as_before: /etc/pam.d/common-* byte for byte as before the install.
pam_stacks_as_before() {
	for f in "$WORK"/pam-before/common-*; do
		cmp "$f" "/etc/pam.d/${f##*/}" || return 1
	done
	[ "$(cd /etc/pam.d && echo common-*)" = "$(cd "$WORK/pam-before" && echo common-*)" ]
}

installed() {
	for p in $packages; do
		[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || return 1
	done
}

# ---- install --------------------------------------------------------------
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $debs >"$WORK/apt-install.log" 2>&1
check "apt-get install ./*.deb installs $packages" installed
[ "$failed" -eq 0 ] || { cat "$WORK/apt-install.log"; check_end; exit 1; }
# shellcheck disable=SC2086
dpkg -L $packages >"$WORK/package-files"

mode() {
	[ "$(stat -c '%a %U' "$1")" = "$2" ]
}
check "the module is in the multiarch PAM directory, mode 0644" \
	mode "/lib/$multiarch/security/pam_viamkey.so" "644 root"
check "keyadm is in /usr/sbin" test -x /usr/sbin/keyadm
check "the man pages are installed" sh -c "man -w keyadm pam_viamkey viamkey.conf >/dev/null"
check "/etc/viamkey/viamkey.conf is a conffile" \
	sh -c "dpkg-query -W -f='\${Conffiles}' viamkey | grep -q '^ /etc/viamkey/viamkey.conf '"
check "the commented viamkey.conf sets nothing" \
	sh -c "! grep -v '^;' /etc/viamkey/viamkey.conf | grep -q '[^[:space:]]'"
check "/var/lib/viamkey is 0700 root" mode /var/lib/viamkey "700 root"
check "the pam-auth-update profile is installed, and not enabled: the stacks are as before" \
	sh -c "test -f /usr/share/pam-configs/viamkey && ! grep -q pam_viamkey /etc/pam.d/common-*"
check "the stacks are byte for byte as before" pam_stacks_as_before
check "keyadm's completion loads by itself and matches keyadm --help (test-completion.sh)" \
	sh -c "VK_COMPLETION_INSTALLED=1 bash '$top/tests/test-completion.sh' >'$WORK/completion.log' 2>&1"

# ---- the unit -------------------------------------------------------------
# Until viamkey ships viamkey-syncd (syncd/), verify runs against a stub in
# this namespace's /usr, and without the man page check.
unit=/lib/systemd/system/viamkey-syncd.service
man=yes
if ! grep -q '^/usr/sbin/viamkey-syncd$' "$WORK/package-files"; then
	echo "NOTE: viamkey ships no viamkey-syncd yet: a stub stands in for systemd-analyze verify"
	printf '#!/bin/sh\nexit 0\n' >/usr/sbin/viamkey-syncd
	chmod 0755 /usr/sbin/viamkey-syncd
	man=no
fi
check "systemd-analyze verify $unit is clean" \
	sh -c "systemd-analyze verify --man=$man $unit >'$WORK/verify.log' 2>&1 && ! [ -s '$WORK/verify.log' ]"
cat "$WORK/verify.log"
rm -f "$WORK/verify.log"
[ "$man" = no ] && rm -f /usr/sbin/viamkey-syncd
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null |
	sed -n 's/.*Overall exposure level for viamkey-syncd.service: \([0-9.]*\).*/\1/p')
echo "viamkey-syncd.service: exposure ${exposure:-unknown}"
check "systemd-analyze security --offline=true: exposure 2.0 or less" \
	awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 2.0) }'
condition=$(sed -n 's/^ExecCondition=//p' "$unit")
sed 's/^; \[sync\]/[sync]/' /etc/viamkey/viamkey.conf >"$WORK/sync.conf"
check "the unit does not start until viamkey.conf has [sync] (ExecCondition=)" \
	sh -c "! $condition && ! ${condition% *} /nonexistent && ${condition% *} '$WORK/sync.conf'"

# ---- a store made by the installed keyadm, at the default paths ----------
keyadm --json init --org "Package org" --location "Package location" \
	--machine "$(hostname)" >"$WORK/init.json"
MACHINE_ID=$(json_field machine "$WORK/init.json")
check "keyadm init makes /var/lib/viamkey/keys.db 0600 with the default config" \
	mode /var/lib/viamkey/keys.db "600 root"
STORE=/var/lib/viamkey/keys.db
KEYADM=keyadm
sys_key ANN machines api-key create --machine-id "$MACHINE_ID" --user vkp-ann --role operator
sys_key BOB machines api-key create --machine-id "$MACHINE_ID" --user vkp-bob --role operator
check "keys made" test -n "$ANN_TOKEN" -a -n "$BOB_TOKEN"
WRONG_TOKEN=$(printf '%s' "$ANN_TOKEN" | sed 's/.$/x/')
[ "$WRONG_TOKEN" = "$ANN_TOKEN" ] && WRONG_TOKEN=$(printf '%s' "$ANN_TOKEN" | sed 's/.$/y/')

# ---- pam-auth-update --enable viamkey, and sshd with Debian's own stack ---
pam-auth-update --enable viamkey >"$WORK/pam-auth-update.log" 2>&1
grep -v '^#' /etc/pam.d/common-auth >"$WORK/common-auth"
echo "common-auth with viamkey enabled:"
sed -n 's/^auth/  auth/p' "$WORK/common-auth"
check "enabled: pam_viamkey.so is sufficient before pam_unix.so try_first_pass in common-auth" \
	awk '/pam_viamkey.so/ { v = NR; ok = /success=[0-9]+ default=ignore/ }
	     /pam_unix.so/ { u = NR; t = /try_first_pass/ }
	     END { exit !(v && ok && u == v + 1 && t) }' "$WORK/common-auth"
check "enabled: the account stack re-checks the key (required pam_viamkey.so)" \
	grep -q '^account[[:space:]]*required[[:space:]]*pam_viamkey.so' /etc/pam.d/common-account

ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
mkdir -m 0755 /run/sshd
sys_on_exit stop_sshd
METHOD=keyboard-interactive
start_sshd $METHOD

out=$(login vkp-ann "$ANN_TOKEN" 'echo "key:$VIAMKEY_KEY_ID"')
check "sshd logs vkp-ann in with the key; the session sees VIAMKEY_KEY_ID" [ "$out" = "key:$ANN_ID" ]
check "a mistyped token is refused" refused vkp-ann "$WRONG_TOKEN"
check "another user's key is refused" refused vkp-ann "$BOB_TOKEN"
out=$(login vkp-ann 'Unix-password-1' 'echo "unix:$VIAMKEY_KEY_ID"')
check "the Unix password at the same prompt still logs in" [ "$out" = "unix:" ]
check "a wrong password is refused" refused vkp-ann 'not-the-password'
"$KEYADM" keys disable --key-id "$ANN_ID" >/dev/null
check "a disabled key is refused" refused vkp-ann "$ANN_TOKEN"
"$KEYADM" keys enable --key-id "$ANN_ID" >/dev/null

# ---- pam-auth-update --disable viamkey --------------------------------------
pam-auth-update --disable viamkey >>"$WORK/pam-auth-update.log" 2>&1
check "disabled: /etc/pam.d/common-* byte for byte as before the install" pam_stacks_as_before
check "disabled: the key no longer logs in" refused vkp-ann "$ANN_TOKEN"
out=$(login vkp-ann 'Unix-password-1' 'echo unix')
check "disabled: the Unix password logs in as before" [ "$out" = unix ]
stop_sshd

# ---- apt-get purge ------------------------------------------------------------
# purge WHEN: apt-get purge, and the checks that it left nothing behind
# (WHEN begins their names).
purge() {
	# shellcheck disable=SC2086
	apt-get purge -y -q $packages >>"$WORK/apt-purge.log" 2>&1
	check "$1: apt-get purge removes every trace from dpkg's database" \
		sh -c "! dpkg-query -W $packages >/dev/null 2>&1"
	check "$1: /etc/pam.d/common-* byte for byte as before the install" pam_stacks_as_before
	paths >"$WORK/paths-after"
	comm -13 "$WORK/paths-before" "$WORK/paths-after" >"$WORK/left"
	check "$1: no file or directory left that was not there before" [ ! -s "$WORK/left" ]
	head -n 20 "$WORK/left"
	check "$1: every path of the packages that was not there before is gone" \
		sh -c "while read -r f; do [ ! -e \"\$f\" ] && [ ! -L \"\$f\" ] ||
			{ echo \"left: \$f\"; exit 1; }; done <'$WORK/package-new'"
}
purge purged
# has_new PATH...: each PATH is among those.
has_new() {
	for f in "$@"; do
		grep -qxF "$f" "$WORK/package-new" || return 1
	done
}
check "... $(wc -l <"$WORK/package-new") paths, the module, keyadm, the config and the store's directory among them" \
	has_new "/lib/$multiarch/security/pam_viamkey.so" /usr/sbin/keyadm /etc/viamkey/viamkey.conf \
	/var/lib/viamkey

if [ "$failed" -ne 0 ]; then
	for log in apt-install apt-purge pam-auth-update completion sshd ssh; do
		[ -s "$WORK/$log.log" ] && { echo "---- $log.log"; tail -n 30 "$WORK/$log.log"; }
	done
	[ -s "$WORK/ssh.err" ] && { echo "---- ssh.err"; tail -n 20 "$WORK/ssh.err"; }
fi
check_end
