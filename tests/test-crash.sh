#!/bin/sh
# Crash safety, at every point where keyadm writes. For each of several
# write commands, keyadm first runs once under faultpoint.so to count its
# write and sync calls (N). Then, from the same starting store each time,
# it runs N more times, killed with SIGKILL just before call k = 1..N. After
# every kill:
#  - the process that died is that keyadm, at that call (exit status 137,
#    and faultpoint.so's marker names its PID and k);
#  - a login with a live key works at once (the reader recovers the log);
#  - the store holds exactly the state before the command or the state
#    after it (h_projection), and passes PRAGMA integrity_check;
#  - the next keyadm write works.
# No kill depends on timing: each lands on a numbered system call.
. "${srcdir:-.}/hardening-lib.sh"
h_begin crash jq sqlite3
[ -f "$FAULTPOINT" ] || { echo "FAIL: build first ($FAULTPOINT is missing)"; exit 99; }

h_store
ka_key LIVE machines api-key create --machine-id "$MACHINE_ID" --user vkt-live --name live
ka_key ROT machines api-key create --machine-id "$MACHINE_ID" --user vkt-rot --name rotating
[ -n "$LIVE_TOKEN" ] && [ -n "$ROT_TOKEN" ] || { echo "FAIL: cannot create the keys"; exit 99; }
ka keys grant --key-id "$ROT_ID" --role viewer --org-id "$(jq -r .machine.org_id "$WORK/init.json")" >/dev/null
LOC_ID=$(jq -r .machine.location_id "$WORK/init.json")
h_save start
h_projection >"$WORK/start.projection"

: >"$WORK/errors"
runs=0
# one write command per line: a label, then keyadm's arguments
while IFS='|' read -r label args; do
	[ -n "$label" ] || continue
	h_restore start
	# shellcheck disable=SC2086 # the arguments split on purpose
	h_fault kill 0 --json $args
	if ! wait "$FAULT_PID"; then
		echo "$label: keyadm failed without a fault: $(cat "$WORK/fault.err")" >>"$WORK/errors"
		continue
	fi
	n=$(cat "$WORK/fault.count")
	h_projection >"$WORK/after.projection"
	if cmp -s "$WORK/start.projection" "$WORK/after.projection"; then
		echo "$label: the command changed nothing the projection sees" >>"$WORK/errors"
	fi
	k=1
	old=0 new=0
	while [ "$k" -le "$n" ]; do
		h_restore start
		# shellcheck disable=SC2086
		h_fault kill "$k" --json $args
		rc=0
		{ wait "$FAULT_PID"; } 2>/dev/null || rc=$?
		runs=$((runs + 1))
		if [ "$rc" -ne 137 ] || ! grep -q "^pid $FAULT_PID point $k " "$WORK/fault.mark" 2>/dev/null; then
			echo "$label, call $k: keyadm (PID $FAULT_PID) was not the process killed there (exit $rc, marker: $(cat "$WORK/fault.mark" 2>/dev/null))" >>"$WORK/errors"
		fi
		if ! login viamkey-test vkt-live "$LIVE_TOKEN"; then
			echo "$label, call $k: the live key's login failed: $(tr '\n' ' ' <"$WORK/login.out")" >>"$WORK/errors"
		fi
		h_projection >"$WORK/crash.projection"
		if cmp -s "$WORK/crash.projection" "$WORK/start.projection"; then
			old=$((old + 1))
		elif cmp -s "$WORK/crash.projection" "$WORK/after.projection"; then
			new=$((new + 1))
		else
			echo "$label, call $k: the store is neither before nor after the command:" >>"$WORK/errors"
			diff "$WORK/after.projection" "$WORK/crash.projection" | head -8 >>"$WORK/errors"
		fi
		integrity=$(h_integrity "$STORE")
		[ "$integrity" = ok ] || echo "$label, call $k: integrity_check: $integrity" >>"$WORK/errors"
		if ! ka keys rename --key-id "$LIVE_ID" --name live >/dev/null 2>"$WORK/next.err"; then
			echo "$label, call $k: the next keyadm write failed: $(cat "$WORK/next.err")" >>"$WORK/errors"
		fi
		k=$((k + 1))
	done
	echo "$label: $n write and sync calls; killed before each: $old times the state before, $new the state after"
	[ "$old" -ge 1 ] || echo "$label: no kill left the state before; the first call was not in the change" >>"$WORK/errors"
	[ "$new" -ge 1 ] || echo "$label: no kill left the state after; the commit was never reached" >>"$WORK/errors"
done <<EOF_COMMANDS
create|machines api-key create --machine-id $MACHINE_ID --user vkt-new --name crash-created
rotate|keys rotate --key-id $ROT_ID
rotate --grace|keys rotate --key-id $ROT_ID --grace 1h
clone|keys clone --key-id $LIVE_ID --name crash-clone
rename|keys rename --key-id $ROT_ID --name crash-renamed
ungrant|keys ungrant --key-id $ROT_ID --machine-id $MACHINE_ID
disable|keys disable --key-id $ROT_ID
delete|keys delete --key-id $ROT_ID
location create|locations create --org-id $(jq -r .machine.org_id "$WORK/init.json") --name crash-location
machine create|machines create --location-id $LOC_ID --name crash-machine
EOF_COMMANDS

[ -s "$WORK/errors" ] && cat "$WORK/errors"
check "keyadm was killed at every write and sync call of every command ($runs kills)" [ "$runs" -ge 50 ]
check "every kill hit the keyadm it meant to, at the call it meant to" \
	sh -c "! grep -q 'was not the process killed' '$WORK/errors'"
check "a login with a live key worked at once after every kill" \
	sh -c "! grep -q 'login failed' '$WORK/errors'"
check "every kill left the state before or after the command, never between" \
	sh -c "! grep -q 'neither before nor after\|no kill left' '$WORK/errors'"
check "the store passed PRAGMA integrity_check after every kill" \
	sh -c "! grep -q 'integrity_check' '$WORK/errors'"
check "keyadm wrote again after every kill" sh -c "! grep -q 'next keyadm write failed' '$WORK/errors'"
check "nothing else went wrong" sh -c "! grep -qv 'was not the process\|login failed\|neither before\|no kill left\|integrity_check\|next keyadm\|^[<>-]' '$WORK/errors'"
check_end
