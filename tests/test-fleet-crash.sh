#!/bin/sh
# The authority's daemon killed with SIGKILL in the middle of publishing loses
# nothing, with a real three-node bus (fleet-lib.sh). 2000 keys are created
# while the authority's daemon is stopped; it is started under faultpoint.so,
# which stops it just before each of its fdatasync calls in turn (the
# commits that mark a round of 500 publications done, and the others), until
# the outbox is partly drained: some rounds published and marked, others
# not. The daemon is killed there with SIGKILL: no timing decides where. Started again, it drains the
# outbox, sync wait returns 0, and every machine holds every key that covers
# it, exactly (f_converged), and logs in with the first and last ones.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-crash
[ -f "$FAULTPOINT" ] || { echo "FAIL: build first ($FAULTPOINT is missing)"; exit 99; }

NKEYS=${VK_FLEET_KEYS:-2000}

f_tree
f_fleet
check "sync wait returns 0 with the tree published" f_sync_wait 60
f_syncd_stop authority
check "the authority's daemon stopped on SIGTERM, status 0" test "$f_status" -eq 0

# the keys: every tenth on ORG2 (M4), the others on ORG (M1, M2, M3)
i=0
while [ "$i" -lt "$NKEYS" ]; do
	if [ $((i % 10)) -eq 9 ]; then org=$ORG2; else org=$ORG; fi
	ka --json organizations api-key create --org-id "$org" --user vkt-k --name "k$i" \
		>"$WORK/key.json" 2>/dev/null || break
	[ "$i" -eq 0 ] && FIRST=$(jq -r .key "$WORK/key.json")
	i=$((i + 1))
done
LAST=$(jq -r .key "$WORK/key.json")
check "$NKEYS keys created while the daemon was stopped" test "$i" -eq "$NKEYS"
total=$(ka --json sync status | jq .unpublished)
check "the outbox holds them all ($total)" test "$total" -ge "$NKEYS"

# stopped at each of its syncs in turn, until the outbox is partly drained
f_mark "starting the authority under faultpoint.so"
rm -f "$WORK/fault.mark"
f_syncd_start authority LD_PRELOAD="$FAULTPOINT" ASAN_OPTIONS="$FAULT_ASAN_OPTIONS" VK_FAULT_PROG=viamkey-syncd \
	VK_FAULT_ACTION=stop VK_FAULT_AT=1 VK_FAULT_REPEAT=1 VK_FAULT_CALLS=fdatasync,fsync VK_FAULT_MARK="$WORK/fault.mark"
pid=$(f_syncd_pid authority)
k=1 left=$total
while :; do
	f_until 60 eval 'grep -q "^pid $pid point $k " "$WORK/fault.mark" 2>/dev/null' || { k=; break; }
	left=$(ka --json sync status | jq .unpublished)
	[ "$left" -lt "$total" ] && break
	kill -CONT "$pid"
	k=$((k + 1))
done
check "the daemon stopped at a sync of its own (sync $k) with the outbox partly drained ($left of $total left)" \
	eval 'test -n "$k" && test "$left" -gt 0 && test "$left" -lt "$total"'
f_syncd_kill authority
check "the daemon died of SIGKILL" test "$f_status" -eq 137
# the commit being synced when it died may count (its frames were written) or not
after=$(ka --json sync status | jq .unpublished)
check "after the kill the outbox holds what was not marked, less at most the round being committed ($after)" \
	eval 'test "$after" -le "$left" && test "$after" -ge $((left - 500))'

f_mark "starting the authority again"
f_syncd_start authority
check "restarted: sync wait returns 0 (within 120 s)" f_sync_wait 120
check "restarted: the outbox is empty" test "$(ka --json sync status | jq .unpublished)" -eq 0
check "every machine holds exactly the keys that cover it" f_converged $MACHINES
check "M1 holds the $((NKEYS - NKEYS / 10)) keys of its organization" \
	test "$(km M1 --json sync status | jq .keys)" -eq $((NKEYS - NKEYS / 10))
check "PAM login through M2 with the first key" f_login M2 vkt-k "$FIRST"
check "PAM login through M4 with the last key (every tenth is ORG2's)" f_login M4 vkt-k "$LAST"
check "no daemon dropped a record or met a permissions violation" \
	eval '! grep -l -i -e "dropped" -e "permission" "$WORK"/*/syncd.log'
check_end
