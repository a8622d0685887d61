#!/bin/sh
# A damaged store: truncated to half its size, to 100 bytes and to nothing,
# or with garbage appended (less than a page, and a whole page). The module
# must refuse it with PAM_AUTHINFO_UNAVAIL ("Authentication service cannot
# retrieve authentication info"), keyadm with exit 1 and one "keyadm: "
# line, nothing may crash (no exit status of 128 or more), and a refused
# write must leave the file as it was.
. "${srcdir:-.}/hardening-lib.sh"
h_begin corrupt jq sqlite3 sha256sum truncate

h_store
ka_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
[ -n "$LIVE_TOKEN" ] || { echo "FAIL: cannot create the key"; exit 99; }
check "the intact store logs in" login viamkey-test vkt-live "$LIVE_TOKEN"
cp -p "$STORE" "$WORK/pristine.db"
size=$(wc -c <"$STORE")
page=$(sqlite3 "$STORE" 'PRAGMA page_size')
echo "intact store: $size bytes, page size $page"

unavail='Authentication service cannot retrieve authentication info'

# damage CASE: a fresh copy of the intact store, damaged as CASE says.
damage() {
	rm -f "$STORE" "$STORE-journal" "$STORE-wal" "$STORE-shm"
	cp -p "$WORK/pristine.db" "$STORE"
	case $1 in
	half) truncate -s $((size / 2)) "$STORE" ;;
	100-bytes) truncate -s 100 "$STORE" ;;
	empty) truncate -s 0 "$STORE" ;;
	garbage) head -c 1000 /dev/urandom >>"$STORE" ;;
	garbage-page) head -c "$page" /dev/urandom >>"$STORE" ;;
	esac
}

# refused_by_keyadm DESC ARGS...: exit 1, stderr one line starting "keyadm: ", store as it was.
refused_by_keyadm() {
	h_desc=$1
	shift
	sum=$(sha256sum <"$STORE")
	rc=0
	ka "$@" </dev/null >"$WORK/ka.out" 2>"$WORK/ka.err" || rc=$?
	echo "  keyadm $1 $2: exit $rc: $(head -n 1 "$WORK/ka.err")"
	check "$h_desc: keyadm $1 $2 exits 1" [ "$rc" -eq 1 ]
	check "$h_desc: keyadm $1 $2 says why in one \"keyadm: \" line" \
		sh -c '[ "$(wc -l <"$1")" -eq 1 ] && grep -q "^keyadm: ." "$1"' sh "$WORK/ka.err"
	check "$h_desc: keyadm $1 $2 leaves the file as it was" [ "$(sha256sum <"$STORE")" = "$sum" ]
}

for case in half 100-bytes empty garbage garbage-page; do
	damage "$case"
	echo "-- $case: $(wc -c <"$STORE") bytes"
	rc=0
	login viamkey-test vkt-live "$LIVE_TOKEN" || rc=$?
	echo "  pam_login: exit $rc: $(grep '^authenticate' "$WORK/login.out")"
	check "$case: the module refuses the login without crashing" [ "$rc" -eq 1 ]
	check "$case: ... with PAM_AUTHINFO_UNAVAIL" grep -q "^authenticate  *$unavail" "$WORK/login.out"
	damage "$case"
	refused_by_keyadm "$case" keys list
	refused_by_keyadm "$case" keys show --key-id "$LIVE_ID"
	refused_by_keyadm "$case" machines api-key create --machine-id "$MACHINE_ID" --user vkt-new
	refused_by_keyadm "$case" keys rotate --key-id "$LIVE_ID"
	sum=$(sha256sum <"$STORE")
	rc=0
	printf '%s\n' "$LIVE_TOKEN" | ka check --user vkt-live >"$WORK/ka.out" 2>"$WORK/ka.err" ||
		rc=$?
	echo "  keyadm check: exit $rc: $(head -n 1 "$WORK/ka.err")"
	check "$case: keyadm check does not allow and exits 1" [ "$rc" -eq 1 ]
	check "$case: keyadm check says the store is the problem" grep -q '^keyadm: .' "$WORK/ka.err"
	check "$case: keyadm check leaves the file as it was" [ "$(sha256sum <"$STORE")" = "$sum" ]
done
check_end
