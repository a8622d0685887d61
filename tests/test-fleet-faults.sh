#!/bin/sh
# The fleet when the bus fails, with a real three-node bus (fleet-lib.sh):
#  - the node leading the bucket's stream killed with SIGKILL: changes made
#    after it still reach every machine (within 30 s); the node restarted:
#    nothing is lost, sync wait returns 0 and every replica holds exactly
#    what covers it;
#  - two nodes of three killed, so that the bucket takes nothing: a key
#    made then reaches the machines live, and its delete reaches them too
#    (a tombstone where it went live, though the bucket never took it);
#  - the whole bus stopped: logins keep working on every machine from its
#    replica; on a machine with [sync] max_staleness = 3s, once its last
#    heartbeat is older than that, a PAM login fails with
#    PAM_AUTHINFO_UNAVAIL and keyadm check says "stale" (exit 1), except
#    with a break-glass key, and a machine without max_staleness keeps
#    letting everyone in; changes made on the authority meanwhile wait in
#    its outbox; a daemon waiting to try the bus again ends at once on
#    SIGTERM;
#  - the bus back: everything converges (the changes made while it was down
#    included), sync wait returns 0 and logins work again everywhere.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-faults

f_tree
f_fleet

# K covers every machine (both organizations); BG is break-glass on ORG
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name everywhere
ka keys grant --key-id "$K_ID" --role owner --org-id "$ORG2" >/dev/null
ka_key BG organizations api-key create --org-id "$ORG" --user vkt-bg --name break-glass
ka keys mark-break-glass --key-id "$BG_ID" >/dev/null
ka_key D organizations api-key create --org-id "$ORG" --user vkt-dee --name to-disable
[ -n "$K_TOKEN" ] && [ -n "$BG_TOKEN" ] && [ -n "$D_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
check "sync wait returns 0 with the bus whole" f_sync_wait 60
check "the key works on every machine" f_all 0 vkt-ann "$K_TOKEN" $MACHINES

# ---- one node killed -----------------------------------------------------------
leader=$(f_stream_leader) || leader=1
f_mark "killing node n$leader"
f_node_kill "$leader"
check "node n$leader (the stream's leader) was killed" eval '! f_alive "$(f_node_pid "$leader")"'
ka_key A1 organizations api-key create --org-id "$ORG" --user vkt-a1 --name after-the-kill
ka keys disable --key-id "$D_ID" >/dev/null
check "node n$leader down: a new key reaches M1, M2 and M3 within 30 s" f_all 0 vkt-a1 "$A1_TOKEN" M1 M2 M3
check "node n$leader down: a disable reaches M1, M2 and M3 within 30 s" f_all 1 vkt-dee "$D_TOKEN" M1 M2 M3

f_mark "restarting node n$leader"
f_node_start "$leader"
check "node n$leader restarted: the bus is healthy again within 30 s" f_until 30 f_bus_healthy
ka_key A2 locations api-key create --location-id "$LOC_C" --user vkt-a2 --name after-the-restart
ka keys delete --key-id "$A1_ID" >/dev/null
check "node n$leader restarted: sync wait returns 0 (within 120 s)" f_sync_wait 120
check "node n$leader restarted: every replica holds exactly what covers it" f_converged $MACHINES
check "node n$leader restarted: PAM login through M4 with the key made after" f_login M4 vkt-a2 "$A2_TOKEN"

# ---- two nodes down: the bucket has no quorum -----------------------------------------
# A key made now goes to the machines live only: the bucket refuses it. Deleted before the
# bucket took anything, its delete must reach them all the same (a tombstone where it went
# live), or they keep it for good.
f_mark "nodes n2 and n3 killed: the bucket has no quorum"
f_node_kill 2
f_node_kill 3
on_n1() { [ "$(curl -fsS -m 2 "http://127.0.0.1:$H1/connz" | jq .num_connections)" -ge 5 ]; }
check "no quorum: the authority and the four machines are connected to node n1 (within 30 s)" \
	f_until 30 on_n1
ka_key Q organizations api-key create --org-id "$ORG" --user vkt-q --name made-without-quorum
check "no quorum: a key made now reaches M1, M2 and M3 live (within 30 s)" \
	f_all 0 vkt-q "$Q_TOKEN" M1 M2 M3
check "no quorum: the bucket has not taken it (the authority's outbox holds it)" \
	test "$(ka --json sync status | jq .unpublished)" -ge 1
ka keys delete --key-id "$Q_ID" >/dev/null
check "no quorum: its delete reaches M1, M2 and M3 all the same (within 30 s)" \
	f_all 1 vkt-q "$Q_TOKEN" M1 M2 M3
check "... while nodes n2 and n3 are still down" \
	eval '! f_alive "$(f_node_pid 2)" && ! f_alive "$(f_node_pid 3)"'
f_node_start 2
f_node_start 3
check "nodes n2 and n3 back: the bus is healthy again within 60 s" f_until 60 f_bus_healthy

# ---- the whole bus down ------------------------------------------------------------
f_mark "stopping the bus"
f_bus_stop
check "the whole bus is down" eval '! f_alive "$(f_node_pid 1)" && ! f_alive "$(f_node_pid 2)" && ! f_alive "$(f_node_pid 3)"'
for m in $MACHINES; do
	check "bus down: PAM login through $m's replica still works" f_login "$m" vkt-ann "$K_TOKEN"
done
# changes on the authority meanwhile: they wait in its outbox
ka_key DN organizations api-key create --org-id "$ORG" --user vkt-dn --name made-while-down
ka keys delete --key-id "$A2_ID" >/dev/null
ka keys enable --key-id "$D_ID" >/dev/null
check "bus down: the authority's outbox holds the changes" \
	test "$(ka --json sync status | jq .unpublished)" -ge 3

f_staleness M1 3s
unavail() {
	! f_login "$1" "$2" "$3" &&
		grep -q "^authenticate .*cannot retrieve authentication info" "$WORK/login.out"
}
check "bus down, max_staleness 3s: a login on M1 fails with PAM_AUTHINFO_UNAVAIL within 30 s" \
	f_until 30 unavail M1 vkt-ann "$K_TOKEN"
age=$(($(date +%s) - $(date -d "$(km M1 --json sync status | jq -r .heartbeat_at)" +%s)))
check "bus down: that happened once M1's last heartbeat was more than 3 s old (${age} s)" test "$age" -ge 3
stale=0
f_check M1 vkt-ann "$K_TOKEN" || stale=$?
check "bus down: keyadm check on M1 exits 1 and says stale" \
	eval 'test "$stale" -eq 1 && grep -q "^deny: stale" "$WORK/check.out"'
check "bus down: the break-glass key still logs in through M1" f_login M1 vkt-bg "$BG_TOKEN"
check "bus down: keyadm check allows the break-glass key on M1" f_check M1 vkt-bg "$BG_TOKEN"
check "bus down: a refused key is still refused on M1 for its own reason" \
	eval '! f_check M1 vkt-dee "$D_TOKEN" && grep -q "^deny: disabled" "$WORK/check.out"'
check "bus down: M2 (max_staleness 0) still lets the key in" f_login M2 vkt-ann "$K_TOKEN"
# SIGTERM (systemctl stop) ends a daemon at once, even in the middle of a
# long wait before its next try: signalled as soon as it logs one of 4 s or
# more, it has that long still to wait
seen=$(wc -l <"$WORK/M4/syncd.log")
long_wait() {
	tail -n +"$((seen + 1))" "$WORK/M4/syncd.log" |
		grep -Eq "trying again in ([4-9][0-9]{3}|[1-9][0-9]{4,}) ms"
}
check "bus down: M4's daemon logs a wait of 4 s or more before its next try (within 90 s)" \
	f_until 90 long_wait
t0=$(date +%s%N)
f_syncd_stop M4
ms=$((($(date +%s%N) - t0) / 1000000))
check "bus down: SIGTERM ends M4's daemon in that wait, status 0, within 2 s (status $f_status, ${ms} ms)" \
	eval 'test "$f_status" -eq 0 && test "$ms" -lt 2000'
f_syncd_start M4

# ---- the bus back -----------------------------------------------------------------
f_mark "restarting the bus"
check "the bus restarted is healthy within 60 s" f_bus_restart
f_mark "the bus is healthy"
check "bus back: sync wait returns 0 (within 120 s)" f_sync_wait 120
check "bus back: the authority's outbox is empty" test "$(ka --json sync status | jq .unpublished)" -eq 0
check "bus back: M1 is fresh again and lets the key in (within 30 s)" f_wait_login M1 vkt-ann "$K_TOKEN" 0
check "bus back: keyadm check on M1 allows again" f_check M1 vkt-ann "$K_TOKEN"
check "bus back: the key made while the bus was down works on M1, M2 and M3" \
	f_all 0 vkt-dn "$DN_TOKEN" M1 M2 M3
check "bus back: the key deleted while the bus was down is gone from M4" \
	eval '! f_check M4 vkt-a2 "$A2_TOKEN" && grep -q "^deny: unknown_key" "$WORK/check.out"'
check "bus back: the key enabled while the bus was down logs in through M3" f_login M3 vkt-dee "$D_TOKEN"
check "bus back: every replica holds exactly what covers it" f_converged $MACHINES
check "no daemon dropped a record or met a permissions violation" \
	eval '! grep -l -i -e "dropped" -e "permission" "$WORK"/*/syncd.log'
check_end
