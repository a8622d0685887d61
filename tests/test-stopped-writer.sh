#!/bin/sh
# Logins never wait for keyadm. For each of several write commands,
# keyadm runs once under faultpoint.so to count its write and sync calls
# (N); then, from the same starting store, N more times, stopped (SIGSTOP)
# just before call k = 1..N, holding whatever locks it holds there. While
# it is stopped:
#  - the stopped process is that keyadm, at that call (faultpoint.so's
#    marker names its PID and k, and /proc says it is stopped);
#  - a full PAM login with a live key succeeds, with the default busy
#    timeout (100 ms) and the fail delay off, and `keyadm check` allows it;
# then keyadm, continued, finishes with exit 0 and the state after the
# command. A writer descheduled at the worst moment, as on a loaded
# server, is thus covered at every point, without depending on timing.
# Last, an init stopped while it holds a new store makes a second init wait
# for it (inits take turns), at both ends of that hold.
#
# The calls keyadm makes while it opens the store are left out: the first
# process to open an idle store rebuilds the index of its log there, and a
# reader waits for that (at most its busy timeout). keyadm empties the log
# after each change, so the rebuild takes microseconds. How many calls the
# open makes is counted by opening the same store with a command that
# only reads (keys list); the points after them are the write's own.
. "${srcdir:-.}/hardening-lib.sh"
h_begin stopped-writer jq sqlite3
[ -f "$FAULTPOINT" ] || { echo "FAIL: build first ($FAULTPOINT is missing)"; exit 99; }

h_store
ka_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
ka_key ROT machines api-key create --machine-id "$MACHINE_ID" --user vkt-rot --name rotating
[ -n "$LIVE_TOKEN" ] && [ -n "$ROT_TOKEN" ] || { echo "FAIL: cannot create the keys"; exit 99; }
h_save start

# h_wait_stopped: until $FAULT_PID is stopped (T) or gone, 60 s at most
h_wait_stopped() {
	h_n=0
	while [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$FAULT_PID/status" 2>/dev/null)" != T ] &&
		h_child "$FAULT_PID" && [ "$h_n" -lt 1200 ]; do
		sleep 0.05
		h_n=$((h_n + 1))
	done
	[ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$FAULT_PID/status" 2>/dev/null)" = T ]
}

: >"$WORK/errors"
stops=0
while IFS='|' read -r label args; do
	[ -n "$label" ] || continue
	h_restore start
	h_fault stop 0 keys list
	wait "$FAULT_PID" || echo "$label: keyadm keys list failed: $(cat "$WORK/fault.err")" >>"$WORK/errors"
	opening=$(cat "$WORK/fault.count")
	h_restore start
	# shellcheck disable=SC2086 # the arguments split on purpose
	h_fault stop 0 $args
	wait "$FAULT_PID" || echo "$label: keyadm failed without a fault: $(cat "$WORK/fault.err")" >>"$WORK/errors"
	n=$(cat "$WORK/fault.count")
	h_projection >"$WORK/after.projection"
	k=$((opening + 1))
	while [ "$k" -le "$n" ]; do
		h_restore start
		# shellcheck disable=SC2086
		h_fault stop "$k" $args
		if ! h_wait_mark || ! h_wait_stopped ||
			! grep -q "^pid $FAULT_PID point $k " "$WORK/fault.mark"; then
			echo "$label, call $k: keyadm (PID $FAULT_PID) did not stop there (marker: $(cat "$WORK/fault.mark" 2>/dev/null))" >>"$WORK/errors"
		else
			stops=$((stops + 1))
		fi
		if ! login viamkey-test vkt-live "$LIVE_TOKEN"; then
			echo "$label, call $k: the live key's login failed while keyadm was stopped: $(tr '\n' ' ' <"$WORK/login.out")" >>"$WORK/errors"
		fi
		if ! printf '%s\n' "$LIVE_TOKEN" | ka check --user vkt-live >/dev/null 2>"$WORK/check.err"; then
			echo "$label, call $k: keyadm check failed while keyadm was stopped: $(cat "$WORK/check.err")" >>"$WORK/errors"
		fi
		kill -CONT "$FAULT_PID" 2>/dev/null
		if ! wait "$FAULT_PID"; then
			echo "$label, call $k: keyadm, continued, failed: $(cat "$WORK/fault.err")" >>"$WORK/errors"
		fi
		h_projection >"$WORK/done.projection"
		cmp -s "$WORK/done.projection" "$WORK/after.projection" ||
			echo "$label, call $k: keyadm, continued, did not leave the state after the command" >>"$WORK/errors"
		k=$((k + 1))
	done
	echo "$label: $n write and sync calls, $opening of them opening the store;" \
		"stopped before each of the other $((n - opening))"
done <<EOF_COMMANDS
create|machines api-key create --machine-id $MACHINE_ID --user vkt-new --name stopped-created
rotate --grace|keys rotate --key-id $ROT_ID --grace 1h
rotate|keys rotate --key-id $ROT_ID
rename|keys rename --key-id $ROT_ID --name stopped-renamed
delete|keys delete --key-id $ROT_ID
EOF_COMMANDS

# Inits of a new store take turns. The first is stopped before its first
# write (the store just created, still empty), then before the last call it
# makes while it holds the store's init lock: its -journal's unlink when it
# switches the store to WAL, the second unlink it makes. A second init meanwhile
# waits its busy timeout and fails naming the other, removing nothing; the
# first, continued, creates the store and its hierarchy; the second, run
# again, names that hierarchy's machine and creates nothing.
NEW=$WORK/init/keys.db
: >"$WORK/init-errors"
for at in "1 all" "2 unlink"; do
	set -- $at
	rm -rf "$WORK/init"
	[ "$2" = all ] || { VK_FAULT_CALLS=$2; export VK_FAULT_CALLS; }
	h_fault stop "$1" --db "$NEW" --json init --org first --location l --machine m
	unset VK_FAULT_CALLS
	if ! h_wait_mark || ! h_wait_stopped; then
		echo "init stopped at $2 call $1: it did not stop there" >>"$WORK/init-errors"
		kill -CONT "$FAULT_PID" 2>/dev/null
		wait "$FAULT_PID" 2>/dev/null
		continue
	fi
	if ka --db "$NEW" --json init --org second --location l --machine m >/dev/null 2>"$WORK/init2.err" ||
		! grep -q 'another keyadm init is still creating or migrating it' "$WORK/init2.err"; then
		echo "init stopped at $2 call $1: a second init did not wait for it: $(cat "$WORK/init2.err")" >>"$WORK/init-errors"
	fi
	kill -CONT "$FAULT_PID"
	wait "$FAULT_PID" || echo "init stopped at $2 call $1: continued, it failed: $(cat "$WORK/fault.err")" >>"$WORK/init-errors"
	first=$(jq -r .machine.id "$WORK/fault.out" 2>/dev/null)
	second=$(ka --db "$NEW" --json init --org second --location l --machine m 2>"$WORK/init2.err" | jq -r .machine.id)
	[ -n "$first" ] && [ "$first" = "$second" ] && grep -q 'nothing created' "$WORK/init2.err" ||
		echo "init stopped at $2 call $1: the second init, run again, did not name the first's machine ($first, $second)" >>"$WORK/init-errors"
	[ "$(sqlite3 "$NEW" 'SELECT group_concat(name) FROM organizations')" = first ] &&
		[ "$(sqlite3 "$NEW" 'PRAGMA journal_mode')" = wal ] && [ "$(h_integrity "$NEW")" = ok ] ||
		echo "init stopped at $2 call $1: the store does not hold the first init's hierarchy alone, in WAL mode" >>"$WORK/init-errors"
done

[ -s "$WORK/errors" ] && cat "$WORK/errors"
[ -s "$WORK/init-errors" ] && cat "$WORK/init-errors"
check "keyadm was stopped at every write and sync call of every command ($stops stops)" \
	sh -c "[ $stops -ge 30 ] && ! grep -q 'did not stop there' '$WORK/errors'"
check "a PAM login with a live key succeeded while keyadm was stopped, every time" \
	sh -c "! grep -q 'login failed' '$WORK/errors'"
check "keyadm check allowed the live key every time" sh -c "! grep -q 'check failed' '$WORK/errors'"
check "every stopped keyadm, continued, finished its change" \
	sh -c "! grep -q 'continued' '$WORK/errors'"
check "nothing else went wrong" sh -c "! grep -qv 'did not stop\|login failed\|check failed\|continued' '$WORK/errors'"
check "an init that holds a new store makes a second init wait, then fail, removing nothing" \
	sh -c "! grep -q 'did not stop there\|did not wait' '$WORK/init-errors'"
check "that init, continued, made the store; the second, run again, names its machine" \
	sh -c "! grep -q 'continued\|did not name\|does not hold' '$WORK/init-errors'"
check_end
