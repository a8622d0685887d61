#!/bin/sh
# Crash safety: keyadm is killed with SIGKILL at random moments while it
# creates, clones and rotates keys, many times over. After every kill a
# login with a live key must work at once (the next reader finds and
# rolls back any hot journal); every key whose creation keyadm reported
# (exit 0 and an ID, or a complete JSON document before the kill) must
# exist, every rotation that reported success must log in with its new
# token, and the store must pass PRAGMA integrity_check at the end.
# VK_CRASH_RUNS sets the number of runs (default 80).
. "${srcdir:-.}/hardening-lib.sh"
h_begin crash jq sqlite3 od

runs=${VK_CRASH_RUNS:-80}
h_store
h_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
h_key ROT machines api-key create --machine-id "$MACHINE_ID" --user vkt-rot --name rotating
[ -n "$LIVE_TOKEN" ] && [ -n "$ROT_TOKEN" ] || { echo "FAIL: cannot create the keys"; exit 99; }

# How long one keyadm write takes here, to spread the kills over it; the
# spread then adapts so that about half the runs are killed.
t0=$(date +%s%N)
for i in 1 2 3; do
	ka --json machines api-key create --machine-id "$MACHINE_ID" --user vkt-new \
		>/dev/null 2>&1 || { echo "FAIL: keyadm create"; exit 99; }
done
t1=$(date +%s%N)
span_us=$(((t1 - t0) / 3000 * 13 / 10))
[ "$span_us" -ge 2000 ] || span_us=2000
initial=$(sqlite3 "$STORE" 'SELECT count(*) FROM keys')
echo "one keyadm write takes about $(((t1 - t0) / 3000000)) ms; kills spread over" \
	"$((span_us / 1000)) ms at first"

random_us() {
	r=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
	echo $((r % $1))
}

: >"$WORK/reported"
kills=0
hot=0
finished=0
refused=0
attempted_creates=0
login_fail=0
rotate_fail=0
other_fail=0
i=0
while [ "$i" -lt "$runs" ]; do
	case $((i % 5)) in
	0) op=create user=vkt-new; set -- machines api-key create --machine-id "$MACHINE_ID" --user vkt-new ;;
	1) op=rotate; set -- keys rotate --key-id "$ROT_ID" --grace 1h ;;
	2) op=clone user=vkt-live; set -- keys clone --key-id "$LIVE_ID" ;;
	3) op=finish; set -- keys rotate --key-id "$ROT_ID" --finish ;;
	4) op=rotate; set -- keys rotate --key-id "$ROT_ID" ;;
	esac
	case $op in create | clone) attempted_creates=$((attempted_creates + 1)) ;; esac
	ka --json "$@" >"$WORK/run.out" 2>"$WORK/run.err" &
	pid=$!
	us=$(random_us "$span_us")
	sleep "$((us / 1000000)).$(printf '%06d' $((us % 1000000)))"
	kill -9 "$pid" 2>/dev/null
	rc=0
	{ wait "$pid"; } 2>/dev/null || rc=$?
	if [ "$rc" -eq 137 ]; then
		kills=$((kills + 1))
		# a rollback journal, or WAL frames, left behind: killed in mid-write
		if [ -s "$STORE-journal" ] || [ -s "$STORE-wal" ]; then
			hot=$((hot + 1))
		fi
		span_us=$((span_us * 11 / 10))
	elif [ "$rc" -eq 0 ]; then
		finished=$((finished + 1))
		# aim at about half the runs killed, whatever the machine's speed
		span_us=$((span_us * 9 / 10))
		[ "$span_us" -ge 1000 ] || span_us=1000
	elif [ "$rc" -eq 1 ] && grep -qE 'window is open|no open rotation window' "$WORK/run.err"
	then
		# a killed rotation may or may not have committed, so the window
		# this run expected may be open or closed
		refused=$((refused + 1))
	else
		other_fail=$((other_fail + 1))
		echo "run $i: keyadm $* exited $rc: $(cat "$WORK/run.err")" >>"$WORK/errors"
	fi
	# a complete JSON document means keyadm committed and reported
	id=$(jq -r '.id // empty' "$WORK/run.out" 2>/dev/null) || id=
	token=$(jq -r '.key // empty' "$WORK/run.out" 2>/dev/null) || token=
	if [ -n "$id" ] && [ "$op" != rotate ] && [ "$op" != finish ]; then
		echo "$id $user $token $rc" >>"$WORK/reported"
	elif [ "$rc" -eq 0 ] && [ -z "$id" ] && [ "$op" != finish ]; then
		other_fail=$((other_fail + 1))
		echo "run $i: keyadm $* exited 0 without printing the key" >>"$WORK/errors"
	fi
	if [ "$rc" -eq 0 ] && [ "$op" = rotate ] && ! login viamkey-test vkt-rot "$token"; then
		rotate_fail=$((rotate_fail + 1))
		echo "run $i: the token of a reported rotation does not log in" >>"$WORK/errors"
	fi
	if ! login viamkey-test vkt-live "$LIVE_TOKEN"; then
		login_fail=$((login_fail + 1))
		echo "run $i (after exit $rc): login failed: $(tr '\n' ' ' <"$WORK/login.out")" \
			>>"$WORK/errors"
	fi
	i=$((i + 1))
done

missing=0
while read -r id user token rc; do
	n=$(sqlite3 "$STORE" "SELECT count(*) FROM keys WHERE id = '$id'")
	if [ "$n" != 1 ]; then
		missing=$((missing + 1))
		echo "key $id was reported (keyadm exit $rc) but is not in the store" >>"$WORK/errors"
	fi
	last_user=$user last_token=$token
done <"$WORK/reported"
reported=$(wc -l <"$WORK/reported")
keys=$(sqlite3 "$STORE" 'SELECT count(*) FROM keys')
integrity=$(h_integrity "$STORE")
echo "runs: $runs; killed by SIGKILL: $kills (in mid-write, leaving a journal: $hot); finished before the kill: $finished;" \
	"refused (window open, or closed, after a killed rotation): $refused;" \
	"other failures: $other_fail"
echo "creates: $attempted_creates attempted, $reported reported; keys: $initial before," \
	"$keys after (between $((initial + reported)) and $((initial + attempted_creates)))"
echo "logins right after each run: $runs, $login_fail failed; integrity_check: $integrity"
[ -s "$WORK/errors" ] && cat "$WORK/errors"

check "keyadm was killed mid-run at least $((runs / 4)) times" [ "$kills" -ge $((runs / 4)) ]
check "keyadm did finish some runs (at least 5)" [ "$finished" -ge 5 ]
check "some kills hit a write in progress (a journal was left behind)" [ "$hot" -ge 1 ]
check "keyadm never failed other than by the kill" [ "$other_fail" -eq 0 ]
check "a login with a live key worked at once after every kill" [ "$login_fail" -eq 0 ]
check "every reported rotation's token logged in" [ "$rotate_fail" -eq 0 ]
check "every key whose creation was reported exists" [ "$missing" -eq 0 ]
check "no key appeared that was never attempted" \
	test "$keys" -ge $((initial + reported)) -a "$keys" -le $((initial + attempted_creates))
check "the store passes PRAGMA integrity_check" [ "$integrity" = ok ]
check "a key created before the last kill logs in" login viamkey-test "$last_user" "$last_token"
h_end
