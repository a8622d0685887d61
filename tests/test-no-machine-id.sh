#!/bin/sh
# A host without /etc/machine-id, as a container or a minimal Debian root
# is, made in a private mount namespace whose /etc is a copy without one:
#   - keyadm init --machine refuses to record this host's machine (exit 1,
#     nothing created) and names the commands that give the host an
#     identity, and [machine] id;
#   - scripts/demo.sh (the quick start's ./demo) names its machine in the
#     demo's config instead, says so, and its PAM login works;
#   - a unit test that needs the binding fails under VK_STRICT=1 instead
#     of skipping where VK_STRICT cannot see it;
# and once the copy has a machine-id, init records the host's machine and
# the demo uses that record, with no [machine] id.
#
# Needs root for the namespace; skips (77) otherwise, fails under VK_STRICT=1.
. "${srcdir:-.}/hardening-lib.sh"
h_namespace || h_skip "no-machine-id needs root (mount) and unshare"
h_begin no-machine-id jq sqlite3 mount grep
DEMO_SH=${srcdir:-.}/../scripts/demo.sh
[ -f "$DEMO_SH" ] || { echo "FAIL: $DEMO_SH is missing"; exit 99; }

mkdir "$WORK/etc"
mount -t tmpfs -o mode=0755 tmpfs "$WORK/etc"
h_mount "$WORK/etc"
cp -a /etc/. "$WORK/etc"
rm -f "$WORK/etc/machine-id"
mount --bind "$WORK/etc" /etc
h_mount /etc
check "this namespace's /etc has no machine-id" [ ! -e /etc/machine-id ]

# ---- keyadm init --machine -------------------------------------------------------------
STORE=$WORK/init/keys.db
rc=0
"$KEYADM" --db "$STORE" init --org o --location l --machine m >"$WORK/init.out" 2>"$WORK/init.err" ||
	rc=$?
echo "  keyadm init --machine: exit $rc: $(cat "$WORK/init.err")"
check "init --machine without /etc/machine-id exits 1" [ "$rc" -eq 1 ]
check "... in one \"keyadm: \" line" sh -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "^keyadm: " "$1"' \
	sh "$WORK/init.err"
for says in "/etc/machine-id is missing" "systemd-machine-id-setup" \
	"dbus-uuidgen --ensure=/etc/machine-id" "set \[machine\] id"; do
	check "... naming $says" grep -q "$says" "$WORK/init.err"
done
check "... and creates no organization" \
	sh -c '[ "$("$1" --db "$2" --json organizations list)" = "[]" ]' sh "$KEYADM" "$STORE"

# ---- the quick start's demo ---------------------------------------------------------------
# demo DIR: scripts/demo.sh DIR with this build; its output in $WORK/demo.out.
demo() {
	env -u SUDO_USER VK_BUILD_DIR="$top_builddir" sh "$DEMO_SH" "$1" >"$WORK/demo.out" 2>&1
	d_rc=$?
	[ "$d_rc" -eq 0 ] || tail -n 20 "$WORK/demo.out"
	return "$d_rc"
}
check "the demo is set up without /etc/machine-id" demo "$WORK/demo"
machine=$(sed -n 's/^id = //p' "$WORK/demo/viamkey.conf")
check "... its config names its machine ([machine] id)" grep -qx "id = [0-9a-f-]\{36\}" \
	"$WORK/demo/viamkey.conf"
check "... and it says so" grep -q "This host has no /etc/machine-id" "$WORK/demo.out"
check "... the machine is in its store" sh -c \
	'"$1" --config "$2" --json machines list --all | jq -e --arg m "$3" "any(.[]; .id == \$m)" >/dev/null' \
	sh "$KEYADM" "$WORK/demo/viamkey.conf" "$machine"
check "... and the demo key logs in through libpam" grep -q "^authenticate  *Success" "$WORK/demo.out"

# ---- a unit test that needs this host's binding ----------------------------------------
if [ -x "$top_builddir/tests/store_test" ]; then
	rc=0
	env -u VK_STRICT "$top_builddir/tests/store_test" >"$WORK/unit.out" 2>&1 || rc=$?
	check "store_test without VK_STRICT skips what needs /etc/machine-id" \
		sh -c '[ "$1" -eq 0 ] && grep -q "SKIPPED.*test_host_machine" "$2"' sh "$rc" "$WORK/unit.out"
	rc=0
	VK_STRICT=1 "$top_builddir/tests/store_test" >"$WORK/unit.out" 2>&1 || rc=$?
	check "... and under VK_STRICT=1 fails, saying why" \
		sh -c '[ "$1" -ne 0 ] && grep -q "no /etc/machine-id.*must run every test" "$2"' \
		sh "$rc" "$WORK/unit.out"
else
	echo "no tests/store_test (built with cmocka): the unit test case is not run"
fi

# ---- once the host has a machine-id -------------------------------------------------------
od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >/etc/machine-id
echo >>/etc/machine-id
check "with /etc/machine-id, init --machine records this host's machine" \
	"$KEYADM" --db "$WORK/init2/keys.db" init --org o --location l --machine m
check "... and the demo uses that record" demo "$WORK/demo2"
check "... with no [machine] id in its config" sh -c '! grep -q "^\[machine\]" "$1"' sh \
	"$WORK/demo2/viamkey.conf"
check "... saying nothing of a missing machine-id" sh -c '! grep -q "/etc/machine-id" "$1"' sh \
	"$WORK/demo.out"
check "... and the demo key logs in through libpam" grep -q "^authenticate  *Success" "$WORK/demo.out"
check_end
