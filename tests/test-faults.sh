#!/bin/sh
# keyadm on a full disk and on a read-only store: every write exits 1 with
# one "keyadm: " line saying why, and leaves the store exactly as it was
# (same bytes, same .dump, no journal left behind). Logins keep working on
# both, since a login only reads (its last-use update is best effort), and
# keyadm works again once there is room.
#
# Read-only deployments: a store copied alone (no -wal, no -shm) onto a
# read-only mount, as keyadm(8) says it may be, serves logins and keyadm's
# read commands; so does one copied with both side files; one whose
# non-empty log was copied without the log's index is refused, saying so.
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
ka_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
ka_key VICTIM machines api-key create --machine-id "$MACHINE_ID" --user vkt-victim
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
ka_key NEW machines api-key create --machine-id "$MACHINE_ID" --user vkt-new
check "with room again, keyadm creates a key" [ -n "$NEW_ID" ]
check "... which logs in" login viamkey-test vkt-new "$NEW_TOKEN"
check "the store passes PRAGMA integrity_check" [ "$(h_integrity "$STORE")" = ok ]
umount "$WORK/full"

# ---- a read-only store -----------------------------------------------------------
mkdir "$WORK/ro"
h_store "$WORK/ro/store/keys.db"
ka_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
ka_key VICTIM machines api-key create --machine-id "$MACHINE_ID" --user vkt-victim
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

# ro_copy NAME FILES...: the store's FILES copied into $WORK/NAME, mounted read-only, and a
# config and PAM service (viamkey-NAME) that use the copy
ro_copy() {
	h_name=$1
	shift
	mkdir -p "$WORK/$h_name/store"
	chmod 700 "$WORK/$h_name/store"
	for f in "$@"; do cp -p "$f" "$WORK/$h_name/store/"; done
	mount --bind "$WORK/$h_name/store" "$WORK/$h_name/store" &&
		mount -o remount,ro,bind "$WORK/$h_name/store" || { echo "FAIL: read-only bind mount"; exit 99; }
	h_mount "$WORK/$h_name/store"
	sed "s|^path = .*|path = $WORK/$h_name/store/keys.db|" "$CONF" >"$WORK/$h_name.conf"
	pam_service "$PAMD/viamkey-$h_name" "$WORK/$h_name.conf"
}

# ka_copy NAME ARGS...: keyadm ARGS on the copy NAME, quietly
ka_copy() {
	h_copy=$1
	shift
	"$KEYADM" --config "$WORK/$h_copy.conf" "$@" >/dev/null 2>"$WORK/ka_copy.err"
}

refused_login() {
	! login "$@"
}

echo "-- a store copied onto a read-only mount"
ls -la "$WORK/ro/store" | sed 's/^/  /'
check "after keyadm's writes the log is empty, so keys.db holds everything" \
	[ "$(stat -c %s "$STORE-wal")" -eq 0 ]
ro_copy alone "$STORE"
check "alone: only keys.db was copied" [ "$(ls "$WORK/alone/store")" = keys.db ]
check "alone: a login works" login viamkey-alone vkt-live "$LIVE_TOKEN"
check "alone: a wrong token is refused" sh -c '! printf "%s\n" "$1" | "$2" --confdir "$3" --service viamkey-alone vkt-live >/dev/null 2>&1' \
	sh "$VICTIM_TOKEN" "$PAM_LOGIN" "$PAMD"
check "alone: keyadm check allows" sh -c 'printf "%s\n" "$1" | "$2" --config "$3" check --user vkt-live' \
	sh "$LIVE_TOKEN" "$KEYADM" "$WORK/alone.conf"
for cmd in "keys list" "keys show --key-id $LIVE_ID" "events" "organizations list" "machines list --all"; do
	# shellcheck disable=SC2086 # split on purpose
	check "alone: keyadm $cmd works" ka_copy alone $cmd
done
check "alone: a write is refused" sh -c '! "$1" --config "$2" keys rename --key-id "$3" --name x 2>/dev/null' \
	sh "$KEYADM" "$WORK/alone.conf" "$LIVE_ID"
check "alone: nothing was created beside it" [ "$(ls "$WORK/alone/store")" = keys.db ]

ka keys rename --key-id "$LIVE_ID" --name "with side files" >/dev/null
ro_copy sides "$STORE" "$STORE-wal" "$STORE-shm"
check "with -wal and -shm: a login works" login viamkey-sides vkt-live "$LIVE_TOKEN"
check "with -wal and -shm: keys show reads the latest name" \
	sh -c '"$1" --config "$2" --json keys show --key-id "$3" | jq -e ".name == \"with side files\""' \
	sh "$KEYADM" "$WORK/sides.conf" "$LIVE_ID"

# a log with changes in it, copied without its index: SQLite cannot read it; refused, not ignored
printf 'BEGIN IMMEDIATE;\nUPDATE keys SET name = %s WHERE id = %s;\nCOMMIT;\n' "'in the log'" "'$LIVE_ID'" |
	sqlite3 -cmd ".filectrl persist_wal 1" -cmd "PRAGMA wal_autocheckpoint = 0" "$STORE" >/dev/null
cp -p "$STORE" "$STORE-wal" "$WORK/"
mkdir -p "$WORK/logonly"
chmod 700 "$WORK/logonly"
cp -p "$WORK/keys.db" "$WORK/keys.db-wal" "$WORK/logonly/"
if [ -s "$WORK/logonly/keys.db-wal" ]; then
	ro_copy logonly "$WORK/logonly/keys.db" "$WORK/logonly/keys.db-wal"
	check "a non-empty -wal without -shm: keys list refuses it" sh -c '! "$1" --config "$2" keys list >/dev/null 2>"$3"' \
		sh "$KEYADM" "$WORK/logonly.conf" "$WORK/logonly.err"
	check "... saying why" grep -q "non-empty -wal file but no -shm beside it; copy keys.db alone" "$WORK/logonly.err"
	check "... and a login is unavailable, not allowed on stale data" refused_login viamkey-logonly vkt-live "$LIVE_TOKEN"
	check "... PAM_AUTHINFO_UNAVAIL" grep -q "cannot retrieve authentication info" "$WORK/login.out"
else
	check "the sqlite3 shell left its changes in the log" false
fi
check_end
