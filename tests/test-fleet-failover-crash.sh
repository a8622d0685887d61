#!/bin/sh
# A rekey and a promotion killed with SIGKILL at each of their steps leave a
# fleet that converges (SPEC §10), with a real three-node bus (fleet-lib.sh).
# The steps are the calls that make a change durable or replace a file
# (fsync, fdatasync, rename, unlink): faultpoint.so kills the process just
# before the Nth of them, for every N in turn; no timing decides where.
#  - keyadm authority rekey, killed at each point while the authority's
#    daemon is down: started again, the daemon signs with the key the store
#    names (completing the rename of one the store names already), and
#    after a change every machine trusts the authority's epoch, the change
#    applied; a last rekey, whole, moves the fleet to the next epoch.
#  - the authority killed, and a standby's daemon killed at its 1st point
#    of a promotion, started again and killed at its 2nd, and so on (each
#    start takes the promotion up where it stopped) until one start
#    completes it: keyadm authority promote, waiting throughout, returns 0;
#    every machine follows the new epoch, holds exactly what the promoted
#    store holds, and applies a change made there.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-failover-crash
[ -f "$FAULTPOINT" ] || { echo "FAIL: build first ($FAULTPOINT is missing)"; exit 99; }

POINTS=fsync,fdatasync,rename,unlink
F_ROOTED=1
f_tree
f_fleet
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name everywhere
ka_key K4 organizations api-key create --org-id "$ORG2" --user vkt-four --name org-two
[ -n "$K_TOKEN" ] && [ -n "$K4_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
check "sync wait returns 0 with the tree published" f_sync_wait 60

epoch_of() { km "$1" --json sync status | jq -r .epoch; }
on_epoch() {
	for e_m in $MACHINES; do [ "$(epoch_of "$e_m")" = "$1" ] || return 1; done
}
# converges: a change (the canary key toggled) reaches every machine, which
# trusts the authority's epoch and holds exactly what covers it
toggle=disable
converges() {
	c_epoch=$(ka --json sync status | jq -r .epoch)
	ka keys $toggle --key-id "$K_ID" >/dev/null 2>&1 || return 1
	if [ $toggle = disable ]; then toggle=enable; else toggle=disable; fi
	f_sync_wait 60 && f_until 30 on_epoch "$c_epoch" && f_converged $MACHINES
}

# ---- rekey ---------------------------------------------------------------------------------
# the authority's host stopped mid-rekey: its daemon is down while keyadm
# runs (else the two race to complete it, and the points are not the same
# from one run to the next), and started again after
rekey_under() { # rekey_under VAR=VALUE...: keyadm authority rekey under faultpoint.so
	f_syncd_stop authority
	env LD_PRELOAD="$FAULTPOINT" ASAN_OPTIONS="$FAULT_ASAN_OPTIONS" VK_FAULT_PROG=keyadm \
		VK_FAULT_CALLS=$POINTS "$@" \
		"$KEYADM" --config "$ACONF" authority rekey --root-key "$WORK/root.key" \
		>/dev/null 2>&1 &
	pid=$!
	st=0
	wait "$pid" || st=$?
	f_syncd_start authority
}
rm -f "$WORK/fault.count"
rekey_under VK_FAULT_COUNT="$WORK/fault.count"
REKEY_POINTS=$(cat "$WORK/fault.count" 2>/dev/null || echo 0)
check "a whole rekey counted its points ($REKEY_POINTS) and moved the fleet to epoch 2" \
	eval 'test "$st" -eq 0 && test "$REKEY_POINTS" -gt 3 && converges && on_epoch 2'
n=1
while [ "$n" -le "$REKEY_POINTS" ]; do
	rm -f "$WORK/fault.mark"
	rekey_under VK_FAULT_AT=$n VK_FAULT_ACTION=kill VK_FAULT_MARK="$WORK/fault.mark"
	where=$(cut -d' ' -f5 "$WORK/fault.mark" 2>/dev/null)
	check "rekey killed at point $n ($where): keyadm died there; the fleet converges ($(ka --json sync status | jq -r .epoch))" \
		eval 'test "$st" -eq 137 && grep -q "^pid $pid point $n " "$WORK/fault.mark" && converges'
	n=$((n + 1))
done
check "the authority's daemon signed throughout: it logged no error" \
	eval '! grep -q -e "is not the one" -e "cannot read the authority" "$WORK/authority/syncd.log"'
before=$(ka --json sync status | jq -r .epoch)
check "a whole rekey after them moves the fleet to epoch $((before + 1))" \
	eval 'ka authority rekey --root-key "$WORK/root.key" >/dev/null && converges && on_epoch $((before + 1))'

# ---- promotion -----------------------------------------------------------------------------
EPOCH=$(ka --json sync status | jq -r .epoch)
f_standby S1 $((EPOCH + 1))
f_syncd_start S1
full_copy() {
	[ "$(sqlite3 "$WORK/S1/store/keys.db" "SELECT count(*) FROM keys")" = \
		"$(sqlite3 "$WORK/authority/store/keys.db" "SELECT count(*) FROM keys")" ]
}
check "the standby holds a full copy (within 30 s)" f_until 30 full_copy
# nothing writes to the standby but its promotion: no authority, no machine
f_syncd_kill authority
for m in $MACHINES; do f_syncd_stop "$m"; done
f_syncd_stop S1
f_mark "the authority killed; S1's promotion under faultpoint.so"
"$KEYADM" --config "$WORK/S1/viamkey.conf" authority promote --force --timeout 600s \
	>"$WORK/promote.out" 2>&1 &
PROMOTE=$!
f_track promote "$PROMOTE"
k=1
killed=
# Where start $k stands is read from files, not from /proc: the mark of its
# daemon at its kth point (written before it dies there), and the answer to
# the promotion in the store (which keyadm waits for).
marked() { grep -q "^pid $pid point $k " "$WORK/fault.mark" 2>/dev/null; }
answered() {
	[ -n "$(sqlite3 "$WORK/S1/store/keys.db" "SELECT value FROM meta WHERE name = 'promote_result'" 2>/dev/null)" ]
}
while [ "$k" -le 50 ]; do
	rm -f "$WORK/fault.mark"
	f_syncd_start S1 LD_PRELOAD="$FAULTPOINT" ASAN_OPTIONS="$FAULT_ASAN_OPTIONS" \
		VK_FAULT_PROG=viamkey-syncd VK_FAULT_CALLS=$POINTS VK_FAULT_AT=$k VK_FAULT_ACTION=kill \
		VK_FAULT_MARK="$WORK/fault.mark"
	pid=$(f_syncd_pid S1)
	# either the daemon dies at its kth point, or the promotion is answered first
	f_until 60 eval 'marked || answered' ||
		echo "  (start $k: in 60 s, neither its point nor the promotion's answer)"
	marked || break
	f_syncd_kill S1
	[ "$f_status" -eq 137 ] || { echo "  (start $k: status $f_status after its mark)"; break; }
	killed="$killed $k:$(cut -d' ' -f5 "$WORK/fault.mark")"
	k=$((k + 1))
done
st=0
# keyadm waits 600 s for an answer that, when the loop gave up, will not come
answered || f_stop "$PROMOTE"
wait "$PROMOTE" || st=$?
f_untrack promote "$PROMOTE"
# the promoted daemon publishes everything again: done, or killed at its kth point there
outbox() { sqlite3 "$WORK/S1/store/keys.db" "SELECT count(*) FROM sync_outbox"; }
f_until 60 eval 'marked || test "$(outbox)" -eq 0'
if marked; then
	f_syncd_kill S1
	killed="$killed $k:$(cut -d' ' -f5 "$WORK/fault.mark")"
	k=$((k + 1))
else
	f_syncd_stop S1
fi
check "the standby's daemon died at each point of the promotion in turn ($killed)" \
	eval 'test "$(echo $killed | wc -w)" -ge 3 && test "$(echo $killed | wc -w)" -eq $((k - 1))'
check "the start after them completed it: keyadm authority promote returned 0" \
	eval 'test "$st" -eq 0 || { cat "$WORK/promote.out"; false; }'
f_syncd_start S1
for m in $MACHINES; do f_syncd_start "$m"; done
ka() { "$KEYADM" --config "$WORK/S1/viamkey.conf" "$@"; }
F_AUTHORITY=S1
check "S1 is the authority, in epoch $((EPOCH + 1))" \
	eval 'test "$(ka --json sync status | jq -r .role)" = authority &&
		test "$(ka --json sync status | jq -r .epoch)" -eq $((EPOCH + 1))'
check "every machine follows S1's epoch and converges on what S1 holds" converges
ka_key NEW organizations api-key create --org-id "$ORG" --user vkt-new --name after-promotion
check "a key made on S1 works on M1; the organization-two key on M4" \
	eval 'f_sync_wait 60 && f_check M1 vkt-new "$NEW_TOKEN" && f_check M4 vkt-four "$K4_TOKEN"'
check_end
