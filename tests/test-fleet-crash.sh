#!/bin/sh
# The authority's daemon killed with SIGKILL in the middle of publishing loses
# nothing, with a real three-node bus (fleet-lib.sh). 1000 keys are created
# while the authority's daemon is stopped; it is started under faultpoint.so,
# which stops it just before each of its fdatasync calls in turn (the
# commits that mark a round of 500 publications done, and the others), until
# the outbox is partly drained: some rounds published and marked, others
# not. The daemon is killed there with SIGKILL: no timing decides where. Started again, it drains the
# outbox, sync wait returns 0, and every machine holds every key that covers
# it, exactly (f_converged), and logs in with the first and last ones.
# Then M1's daemon runs under faultpoint.so, stopped before each of its syncs:
# in step, its heartbeats (one a second) commit with no sync at all, and a key
# created on the authority commits with one, before any login on M1 can see it,
# and with no other: the scope's head and the revision acknowledged are not
# synced (syncd/replica.c, rule 4).
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-crash
[ -f "$FAULTPOINT" ] || { echo "FAIL: build first ($FAULTPOINT is missing)"; exit 99; }

NKEYS=${VK_FLEET_KEYS:-1000}

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

# ---- a machine's heartbeats and heads are not synced; its records are, before they count ---
f_mark "M1 under faultpoint.so"
f_syncd_stop M1
rm -f "$WORK/m1.mark"
f_syncd_start M1 LD_PRELOAD="$FAULTPOINT" ASAN_OPTIONS="$FAULT_ASAN_OPTIONS" VK_FAULT_PROG=viamkey-syncd \
	VK_FAULT_ACTION=stop VK_FAULT_AT=1 VK_FAULT_REPEAT=1 VK_FAULT_CALLS=fdatasync,fsync VK_FAULT_MARK="$WORK/m1.mark"
pid=$(f_syncd_pid M1)
# m1_point: the sync M1 is stopped before (0: none yet)
m1_point() { sed -n "s/^pid $pid point \([0-9]*\) .*/\1/p" "$WORK/m1.mark" 2>/dev/null | grep . || echo 0; }
# m1_stopped_at K: M1 is stopped before its sync K
m1_stopped_at() { [ "$(m1_point)" -eq "$1" ] && [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)" = T ]; }
# through each of its syncs while it catches up, until 5 heartbeats pass with none (at most 300)
k=0
while [ "$k" -lt 300 ]; do
	f_until 5 m1_stopped_at $((k + 1)) || break
	k=$((k + 1))
	kill -CONT "$pid"
done
check "M1 in step: 5 s of heartbeats with no sync (after $k syncs of its start)" \
	eval 'test "$k" -gt 0 && test "$k" -lt 300 && f_check M1 vkt-k "$FIRST"'
hb_at() { km M1 --json sync status | jq -r .heartbeat_at; }
HB_BEFORE=$(hb_at)
f_until 5 m1_stopped_at $((k + 1))
check "... and 5 s more with none, while it applied heartbeats ($HB_BEFORE, then $(hb_at))" \
	eval 'test "$(m1_point)" -eq "$k" && test "$(hb_at)" != "$HB_BEFORE"'
# one change, one sync: the record's; its scope's head and the revision acknowledged commit lazily
ka organizations api-key create --org-id "$ORG" --user vkt-k --name one-sync >/dev/null
check "a key created: M1 stops before the sync of its record (within 10 s)" \
	f_until 10 m1_stopped_at $((k + 1))
k=$((k + 1))
kill -CONT "$pid"
check "... let go, M1 takes the scope's head and acknowledges the change with no other sync" \
	f_sync_wait 10
check "... and none in the 5 s after" eval '! f_until 5 m1_stopped_at $((k + 1))'
ka --json organizations api-key create --org-id "$ORG" --user vkt-k --name durable >"$WORK/key.json"
DURABLE=$(jq -r .key "$WORK/key.json")
DURABLE_ID=$(jq -r .id "$WORK/key.json")
check "a key created: M1 stops before a sync of its commit (within 10 s)" f_until 10 m1_stopped_at $((k + 1))
check "... the key's commit: its ID is in M1's write-ahead log, not yet synced" \
	grep -q "$DURABLE_ID" "$WORK/M1/store/keys.db-wal"
check "... and while that sync is not done, no login on M1 sees the key" \
	eval '! f_login M1 vkt-k "$DURABLE" && grep -q "^authenticate .*Authentication failure" "$WORK/login.out"'
check "... while one with a key M1 held logs in" f_login M1 vkt-k "$FIRST"
while m1_stopped_at "$(m1_point)"; do
	kill -CONT "$pid"
	f_until 2 m1_stopped_at $(($(m1_point) + 1)) || break
done
check "... once synced, the key logs in on M1 (within 10 s)" f_wait_login M1 vkt-k "$DURABLE" 0 10
f_syncd_kill M1
f_syncd_start M1
check "M1's daemon started again: sync wait returns 0 (within 60 s)" f_sync_wait 60

check "no daemon dropped a record or met a permissions violation" \
	eval '! grep -l -i -e "dropped" -e "permission" "$WORK"/*/syncd.log'
check_end
