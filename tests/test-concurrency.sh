#!/bin/sh
# Concurrency on a loaded machine: more login processes than cores (twice
# the cores, plus two) run full PAM transactions (pam_start_confdir,
# authenticate, acct_mgmt, pam_end) in a loop with a live key, beside one
# CPU hog per core, while two keyadm writers work on the same store: one
# rotates another key without and with --grace and finishes the windows,
# the other creates, clones and deletes keys. Logins use the default busy
# timeout (100 ms), keyadm its own (5 s). (test-stopped-writer.sh covers
# every point at which a descheduled keyadm could hold a login up; this
# test shows the whole under load.)
#
# Pass: every login succeeds, every keyadm run succeeds, nothing says
# "locked" or "busy", the store passes PRAGMA integrity_check and holds
# exactly initial + created - deleted keys, and the rotated key's latest
# token logs in. As root, the loops run with `debug` under a private
# /dev/log, and the module must log no error and no denial.
# VK_CONCURRENCY_SECONDS sets the duration (default 10).
. "${srcdir:-.}/hardening-lib.sh"
h_namespace_for "the module's syslog lines"
h_begin concurrency jq sqlite3
[ -x "$PAM_LOOP" ] || { echo "FAIL: build first ($PAM_LOOP is missing)"; exit 99; }

duration=${VK_CONCURRENCY_SECONDS:-10}
cores=$(nproc)
loops=$((2 * cores + 2))
h_store
service=viamkey-test
if h_syslog; then
	service=viamkey-debug
elif [ "${VK_STRICT:-}" = 1 ]; then
	echo "FAIL: cannot capture syslog (needs root and unshare); a strict run must not skip it"
	exit 99
fi
ka_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
ka_key ROT machines api-key create --machine-id "$MACHINE_ID" --user vkt-rot --name rotating
[ -n "$LIVE_TOKEN" ] && [ -n "$ROT_TOKEN" ] || { echo "FAIL: cannot create the keys"; exit 99; }
initial=$(sqlite3 "$STORE" 'SELECT count(*) FROM keys')
echo "store journal mode: $(sqlite3 "$STORE" 'PRAGMA journal_mode')"

# rotator: rotate, rotate --grace, rotate --finish, over and over.
rotator() {
	n=0
	fails=0
	token=$ROT_TOKEN
	while [ "$(date +%s)" -lt "$deadline" ]; do
		case $((n % 3)) in
		0) set -- --json keys rotate --key-id "$ROT_ID" ;;
		1) set -- --json keys rotate --key-id "$ROT_ID" --grace 1h ;;
		2) set -- keys rotate --key-id "$ROT_ID" --finish ;;
		esac
		if ka "$@" >"$WORK/rotator.out" 2>>"$WORK/rotator.err"; then
			[ "$1" = --json ] && token=$(jq -r .key "$WORK/rotator.out")
		else
			fails=$((fails + 1))
			echo "rotator: keyadm $* failed" >>"$WORK/rotator.err"
		fi
		n=$((n + 1))
	done
	echo "$n $fails" >"$WORK/rotator.count"
	printf '%s\n' "$token" >"$WORK/rotator.token"
}

# creator: create (or clone) two keys, delete the older one, over and over.
creator() {
	n=0
	creates=0
	deletes=0
	fails=0
	: >"$WORK/created"
	while [ "$(date +%s)" -lt "$deadline" ]; do
		if [ $((n % 2)) -eq 0 ]; then
			set -- machines api-key create --machine-id "$MACHINE_ID" --user vkt-new
		else
			set -- keys clone --key-id "$LIVE_ID"
		fi
		if ka --json "$@" >"$WORK/creator.out" 2>>"$WORK/creator.err"; then
			creates=$((creates + 1))
			jq -r .id "$WORK/creator.out" >>"$WORK/created"
		else
			fails=$((fails + 1))
			echo "creator: keyadm $* failed" >>"$WORK/creator.err"
		fi
		if [ $((n % 2)) -eq 1 ]; then
			victim=$(head -n 1 "$WORK/created")
			if ka keys delete --key-id "$victim" >/dev/null 2>>"$WORK/creator.err"; then
				deletes=$((deletes + 1))
				sed -i 1d "$WORK/created"
			else
				fails=$((fails + 1))
				echo "creator: keyadm keys delete $victim failed" >>"$WORK/creator.err"
			fi
		fi
		n=$((n + 1))
	done
	echo "$creates $deletes $fails" >"$WORK/creator.count"
}

deadline=$(($(date +%s) + duration))
workers=
# one busy loop per core, for the whole run
i=1
while [ "$i" -le "$cores" ]; do
	sh -c "while [ \$(date +%s) -lt $deadline ]; do :; done" &
	h_pid $!
	workers="$workers $!"
	i=$((i + 1))
done
: >"$WORK/rotator.err"
: >"$WORK/creator.err"
i=1
while [ "$i" -le "$loops" ]; do
	printf '%s\n' "$LIVE_TOKEN" | "$PAM_LOOP" --confdir "$PAMD" --service "$service" \
		--seconds "$duration" vkt-live >"$WORK/loop$i.out" 2>"$WORK/loop$i.err" &
	h_pid $!
	workers="$workers $!"
	i=$((i + 1))
done
rotator &
h_pid $!
workers="$workers $!"
creator &
h_pid $!
workers="$workers $!"
wait $workers

# ---- results ---------------------------------------------------------------
logins=0
login_fail=0
i=1
while [ "$i" -le "$loops" ]; do
	cat "$WORK/loop$i.out" "$WORK/loop$i.err"
	# shellcheck disable=SC2046 # two numbers, split on purpose
	set -- $(sed -n 's/^pam_loop: \([0-9]*\) transactions, \([0-9]*\) ok.*/\1 \2/p' \
		"$WORK/loop$i.out")
	if [ $# -eq 2 ]; then
		logins=$((logins + $1))
		login_fail=$((login_fail + $1 - $2))
	else
		login_fail=$((login_fail + 1))
	fi
	i=$((i + 1))
done
read -r rotations rot_fails <"$WORK/rotator.count" || rotations=0 rot_fails=1
read -r creates deletes create_fails <"$WORK/creator.count" || creates=0 deletes=0 create_fails=1
keys=$(sqlite3 "$STORE" 'SELECT count(*) FROM keys')
integrity=$(h_integrity "$STORE")
echo "logins: $logins in $duration s by $loops processes beside $cores CPU hogs on $cores cores," \
	"$login_fail failed; load average $(cut -d' ' -f1 /proc/loadavg)"
echo "keyadm: $rotations rotations ($rot_fails failed), $creates creates, $deletes deletes" \
	"($create_fails failed)"
echo "keys: $initial initially, $keys now, expected $((initial + creates - deletes))"
echo "integrity_check: $integrity"
# keyadm's one-time warning beside each new token is expected; anything else is not
warning='^keyadm: warning: this token is shown only once'
for f in rotator creator; do
	grep -v "$warning" "$WORK/$f.err" >"$WORK/$f.errors" || :
done
cat "$WORK/rotator.errors" "$WORK/creator.errors"

check "every login with the live key succeeded" [ "$login_fail" -eq 0 ]
check "logins ran concurrently with the writers (at least $((loops * 20)))" \
	[ "$logins" -ge $((loops * 20)) ]
check "every keyadm rotation succeeded" [ "$rot_fails" -eq 0 ]
check "every keyadm create, clone and delete succeeded" [ "$create_fails" -eq 0 ]
check "the writers did real work (at least 6 rotations and 6 creates)" \
	test "$rotations" -ge 6 -a "$creates" -ge 6
check "no process printed an error" sh -c '! [ -s "$1" ] && ! [ -s "$2" ] &&
	! cat "$3"/loop*.err | grep -q .' sh "$WORK/rotator.errors" "$WORK/creator.errors" "$WORK"
if [ "$service" = viamkey-debug ]; then
	h_syslog_sync
	grep 'pam_viamkey(' "$WORK/syslog" >"$WORK/module.log" || :
	allows=$(grep -c ': allow service=' "$WORK/module.log")
	errors=$(grep -c ': error service=' "$WORK/module.log")
	denies=$(grep -c ': deny service=' "$WORK/module.log")
	unrecorded=$(grep -c 'last use not recorded' "$WORK/module.log")
	echo "module syslog: $allows allow, $denies deny, $errors error lines;" \
		"last use not recorded $unrecorded times (harmless, debug only)"
	grep -E ': (error|deny) service=' "$WORK/module.log" | head -n 5
	check "the module logged an allow for authenticate and acct_mgmt of every login" \
		[ "$allows" -ge $((2 * logins)) ]
	check "the module logged no error and no denial" test "$errors" -eq 0 -a "$denies" -eq 0
	grep -E ': (error|deny) service=' "$WORK/module.log" >"$WORK/module-errors.out" || :
fi
check "no \"locked\" or \"busy\" error reached anyone (stderr, stdout, module errors)" \
	sh -c '! grep -qiE "locked|busy" "$@"' sh "$WORK"/*.err "$WORK"/*.out
check "the store passes PRAGMA integrity_check" [ "$integrity" = ok ]
check "the key count is initial + created - deleted" [ "$keys" -eq $((initial + creates - deletes)) ]
check "the rotated key's latest token logs in" login viamkey-test vkt-rot "$(cat "$WORK/rotator.token")"
check "the live key still logs in" login viamkey-test vkt-live "$LIVE_TOKEN"
check_end
