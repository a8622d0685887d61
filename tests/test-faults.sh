#!/bin/sh
# keyadm on a full disk and on a read-only store: every write exits 1 with
# one "keyadm: " line saying why, and leaves the store exactly as it was
# (same bytes, same .dump, no journal left behind). Logins keep working on
# both, since a login only reads (its last-use update is best effort), and
# keyadm works again once there is room.
#
# Needs root for the mounts, which live in a private mount namespace
# (unshare -m) and vanish with it; skips (77) otherwise, fails under CI.
. "${srcdir:-.}/hardening-lib.sh"
h_namespace || h_skip "faults needs root (mount) and unshare"
h_begin faults jq sqlite3 sha256sum mount umount dd

# snapshot FILE: what must not change: bytes, the SQL dump, the files beside it.
snapshot() {
	sha256sum <"$STORE"
	sqlite3 -readonly "$STORE" .dump
	(cd "$(dirname "$STORE")" && stat -c '%n %s' -- *)
}

# refused DESC WHY ARGS...: keyadm ARGS exits 1, its one stderr line starts
# "keyadm: " and matches WHY, and the store is unchanged.
refused() {
	h_desc=$1
	h_why=$2
	shift 2
	snapshot >"$WORK/before"
	rc=0
	ka "$@" >"$WORK/ka.out" 2>"$WORK/ka.err" || rc=$?
	snapshot >"$WORK/after"
	echo "  keyadm $1 $2: exit $rc: $(cat "$WORK/ka.err")"
	check "$h_desc: keyadm $1 $2 exits 1" [ "$rc" -eq 1 ]
	check "$h_desc: keyadm $1 $2 says \"keyadm: ...$h_why\" in one line" sh -c \
		'[ "$(wc -l <"$1")" -eq 1 ] && grep -qE "^keyadm: .*($2)" "$1"' sh "$WORK/ka.err" "$h_why"
	check "$h_desc: keyadm $1 $2 leaves the store as it was" cmp -s "$WORK/before" "$WORK/after"
}

ka_quiet() {
	ka "$@" >/dev/null 2>&1
}

writes() {
	refused "$1" "$2" machines api-key create --machine-id "$MACHINE_ID" --user vkt-new
	refused "$1" "$2" keys rotate --key-id "$LIVE_ID" --grace 1h
	refused "$1" "$2" keys clone --key-id "$LIVE_ID"
	refused "$1" "$2" keys rename --key-id "$LIVE_ID" --name renamed
	refused "$1" "$2" keys add-user --key-id "$LIVE_ID" --user vkt-other
	refused "$1" "$2" keys delete --key-id "$VICTIM_ID"
	refused "$1" "$2" organizations create --name another
}

# ---- a full disk ---------------------------------------------------------------
mkdir "$WORK/full"
mount -t tmpfs -o size=400k,mode=0700 tmpfs "$WORK/full" || { echo "FAIL: mount tmpfs"; exit 99; }
h_mount "$WORK/full"
h_store "$WORK/full/store/keys.db"
h_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
h_key VICTIM machines api-key create --machine-id "$MACHINE_ID" --user vkt-victim
[ -n "$LIVE_TOKEN" ] && [ -n "$VICTIM_ID" ] || { echo "FAIL: cannot create the keys"; exit 99; }
dd if=/dev/zero of="$WORK/full/filler" bs=4096 2>/dev/null
dd if=/dev/zero of="$WORK/full/filler2" bs=1 2>/dev/null
echo "-- full disk: $(df -k "$WORK/full" | awk 'NR == 2 { print $4 }') KiB free," \
	"store $(wc -c <"$STORE") bytes"
check "the file system is full" sh -c '! { echo x >"$1/probe"; } 2>/dev/null' sh "$WORK/full"
rm -f "$WORK/full/probe"
writes "full disk" "full"
check "full disk: a login still works" login viamkey-test vkt-live "$LIVE_TOKEN"
check "full disk: keys list still works" ka_quiet keys list
rm -f "$WORK/full/filler" "$WORK/full/filler2"
h_key NEW machines api-key create --machine-id "$MACHINE_ID" --user vkt-new
check "with room again, keyadm creates a key" [ -n "$NEW_ID" ]
check "... which logs in" login viamkey-test vkt-new "$NEW_TOKEN"
check "the store passes PRAGMA integrity_check" [ "$(h_integrity "$STORE")" = ok ]
umount "$WORK/full"

# ---- a read-only store -----------------------------------------------------------
mkdir "$WORK/ro"
h_store "$WORK/ro/store/keys.db"
h_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
h_key VICTIM machines api-key create --machine-id "$MACHINE_ID" --user vkt-victim
[ -n "$LIVE_TOKEN" ] && [ -n "$VICTIM_ID" ] || { echo "FAIL: cannot create the keys"; exit 99; }
mount --bind "$WORK/ro/store" "$WORK/ro/store" &&
	mount -o remount,ro,bind "$WORK/ro/store" || { echo "FAIL: read-only bind mount"; exit 99; }
h_mount "$WORK/ro/store"
echo "-- read-only store"
check "the store's file system is read-only" \
	sh -c '! { echo x >"$1/probe"; } 2>/dev/null' sh "$WORK/ro/store"
writes "read-only" "read-?only"
check "read-only: a login still works" login viamkey-test vkt-live "$LIVE_TOKEN"
check "read-only: keys list still works" ka_quiet keys list
umount "$WORK/ro/store"
h_end
