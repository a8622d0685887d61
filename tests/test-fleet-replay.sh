#!/bin/sh
# Replayed records cannot revive a key on a new or re-imaged machine, and a
# record copied under another entry cannot bar one (SPEC §8, rules 6 to 8),
# with a real three-node bus (fleet-lib.sh):
#  4. with write access to the bucket and no signing key (the authority's
#     bus user), the signed values of keys from before a delete, a disable,
#     a user removal and a rotation without grace are put back. Machines that
#     hold newer revisions ignore them; M3, re-imaged (its replica gone),
#     learns from its scopes' heads what revision each entry is at and
#     refuses every older value: none of the four keys logs in as it did,
#     M3 says what is stale (sync status, its log), acknowledges nothing,
#     and keyadm sync wait names it, until keyadm sync republish puts the
#     bus right;
#  8. a location key's record copied under M3's own machine entry, ahead of
#     M3's own record in the bucket (so that a re-imaged M3 would meet it
#     before it knows its location), or sent live under it afterwards, is
#     never applied there: the key works on M3;
#  a node behind: M1, away while a key was deleted, comes back to a bucket
#     whose heartbeat, head and index pages are from before the delete (as
#     a node that lags answers), while a heartbeat from after it comes live:
#     M1 does not acknowledge that heartbeat's revision, says why, and
#     reads again; the bucket put right, the key is gone from M1;
#  a head replayed live: after a newer head of the same scope and before the
#     heartbeat that compares it, an older head does not take the newer one's
#     place: a machine that lacks a record the newer head lists acknowledges
#     nothing.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-replay

f_tree
f_fleet
ka_key A organizations api-key create --org-id "$ORG" --user vkt-del --name to-delete
ka_key D organizations api-key create --org-id "$ORG" --user vkt-dis --name to-disable
ka_key U organizations api-key create --org-id "$ORG" --user vkt-keep --user vkt-gone --name to-lose-a-user
ka_key R organizations api-key create --org-id "$ORG" --user vkt-rot --name to-rotate
ka_key L locations api-key create --location-id "$LOC_B" --user vkt-loc --name location-b
[ -n "$A_TOKEN" ] && [ -n "$D_TOKEN" ] && [ -n "$U_TOKEN" ] && [ -n "$R_TOKEN" ] && [ -n "$L_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
check "sync wait returns 0 with the keys in place" f_sync_wait 60
check "before anything, the key to delete works on M3" f_check M3 vkt-del "$A_TOKEN"

B=$BUCKET
M3ID=$(f_id M3)
for x in A D U R; do
	eval "id=\$${x}_ID"
	f_bus get "$B" "o.$ORG.k.$id" >"$WORK/$x.old" || { echo "FAIL: cannot read $x's value"; exit 99; }
done
ka keys delete --key-id "$A_ID" >/dev/null
ka keys disable --key-id "$D_ID" >/dev/null
ka keys remove-user --key-id "$U_ID" --user vkt-gone >/dev/null
ka --json keys rotate --key-id "$R_ID" >"$WORK/rotated.json"
R2_TOKEN=$(jq -r .key "$WORK/rotated.json")
check "sync wait returns 0 after the delete, disable, user removal and rotation" f_sync_wait 60

# ---- 4: the old values put back --------------------------------------------------------
f_mark "replaying"
for x in A D U R; do
	eval "id=\$${x}_ID"
	f_bus put "$B" "o.$ORG.k.$id" <"$WORK/$x.old"
done
check "the replayed values are on the bus" \
	eval 'f_bus get "$B" "o.$ORG.k.$A_ID" | cmp -s - "$WORK/A.old"'

# refused DESC M USER TOKEN REASON: keyadm check on M denies with REASON
refused() {
	r_m=$2 r_u=$3 r_t=$4 r_why=$5
	check "$1" eval '! f_check "$r_m" "$r_u" "$r_t" && grep -q "^deny: $r_why" "$WORK/check.out"'
}
for m in M1 M2; do
	refused "replay: the deleted key stays deleted on $m" "$m" vkt-del "$A_TOKEN" unknown_key
	refused "replay: the disabled key stays disabled on $m" "$m" vkt-dis "$D_TOKEN" disabled
done

f_syncd_stop M3
rm -rf "$WORK/M3/store"
f_mark "M3 re-imaged"
f_syncd_start M3
stale_logged() { grep -q "dropped the value of o\.$ORG\.k\.$A_ID: revision [0-9]* is older" "$WORK/M3/syncd.log"; }
check "replay: re-imaged M3 refuses the deleted key's replayed record as older than its head says (within 60 s)" \
	f_until 60 stale_logged
check "replay: M3's sync status names what is stale" \
	eval 'km M3 --json sync status | jq -e ".last_error | test(\"o.'"$ORG"'\")" >/dev/null'
refused "replay: the deleted key does not log in on M3" M3 vkt-del "$A_TOKEN" unknown_key
check "replay: a PAM login with the deleted key through M3 is refused" eval '! f_login M3 vkt-del "$A_TOKEN"'
check "replay: the disabled key is not enabled on M3" eval '! f_check M3 vkt-dis "$D_TOKEN"'
check "replay: the removed user does not log in on M3" eval '! f_check M3 vkt-gone "$U_TOKEN"'
check "replay: the rotated-out secret does not log in on M3" eval '! f_check M3 vkt-rot "$R_TOKEN"'
check "replay: the location key, which nobody replayed, works on M3" f_check M3 vkt-loc "$L_TOKEN"
ka keys rename --key-id "$L_ID" --name location-b-renamed >/dev/null
check "replay: sync wait exits 1 while M3's view is incomplete" eval '! f_sync_wait 8'
check "replay: sync wait names M3, and M3 only" \
	eval 'grep -q "$M3ID" "$WORK/sync-wait.out" && ! grep -q -e "$(f_id M1)" -e "$(f_id M2)" "$WORK/sync-wait.out"'
check "replay: the authority's sync status shows M3's error" \
	eval 'ka --json sync status | jq -e ".machines[] | select(.id == \"'"$M3ID"'\") | .last_error | test(\"o.'"$ORG"'\")" >/dev/null'

f_mark "republishing"
ka sync republish >/dev/null
check "after sync republish, sync wait returns 0" f_sync_wait 60
refused "after the republish the deleted key is still unknown on M3" M3 vkt-del "$A_TOKEN" unknown_key
refused "after the republish the disabled key is disabled on M3" M3 vkt-dis "$D_TOKEN" disabled
refused "after the republish the removed user is refused on M3" M3 vkt-gone "$U_TOKEN" user_not_allowed
check "after the republish the remaining user logs in on M3" f_check M3 vkt-keep "$U_TOKEN"
check "after the republish the new secret logs in on M3" f_check M3 vkt-rot "$R2_TOKEN"
refused "after the republish the old secret is refused on M3" M3 vkt-rot "$R_TOKEN" wrong_secret
check "after the republish every replica holds exactly what covers it" f_converged $MACHINES
check "and M3's sync status has no error" \
	eval 'km M3 --json sync status | jq -e ".last_error == null" >/dev/null'

# ---- 8: a record copied under another entry ---------------------------------------------
f_syncd_stop M3
rm -rf "$WORK/M3/store"
f_bus get "$B" "l.$LOC_B.k.$L_ID" >"$WORK/L.value"
f_bus put "$B" "m.$M3ID.k.$L_ID" <"$WORK/L.value"
# M3's own record published after the copy: read in the bucket's order, the
# copy comes before M3 knows its location
ka machines rename --machine-id "$M3ID" --name "Machine 3, re-imaged" >/dev/null
published() { [ "$(ka --json sync status | jq .unpublished)" -eq 0 ]; }
check "misfiled: the authority published M3's renamed record (within 30 s)" f_until 30 published
f_mark "M3 re-imaged, the location key copied under its machine scope"
f_syncd_start M3
check "misfiled: on M3, re-imaged after the copy, the location key works (within 30 s)" \
	f_wait_check M3 vkt-loc "$L_TOKEN" 0
check "misfiled: a PAM login with it through M3 works" f_login M3 vkt-loc "$L_TOKEN"
"$VK_BUS" --user authority --password-file "$WORK/nats/authority.password" "$SERVERS" \
	publish "vk.$B.m.$M3ID.k.$L_ID" "$(cat "$WORK/L.value")" >/dev/null
misfiled_logged() {
	grep -q "dropped the value of m\.$M3ID\.k\.$L_ID: it is not what that entry" "$WORK/M3/syncd.log"
}
check "misfiled: the copy sent live under M3's machine scope is dropped (within 30 s)" \
	f_until 30 misfiled_logged
check "misfiled: and the location key still works on M3" f_check M3 vkt-loc "$L_TOKEN"
ka keys rename --key-id "$L_ID" --name location-b-again >/dev/null
check "misfiled: a change still reaches every machine (sync wait 0)" f_sync_wait 60
check "every replica holds exactly what covers it" f_converged $MACHINES

# ---- a node behind: what was deleted while M1 was away, read from the past -------------
# The bucket as a node that lags would answer (nats-server before 2.9.17 lets a
# node just restarted answer direct gets before it has caught up): the
# heartbeat, head and index pages of M1's organization from before a delete,
# while the live path carries a heartbeat from after it.
ka_key X organizations api-key create --org-id "$ORG" --user vkt-lag --name deleted-while-away
check "behind: sync wait returns 0 with the key to delete in place" f_sync_wait 60
# save_scope NAME: the heartbeat, head and index pages of M1's organization, into $WORK/NAME.*
save_scope() {
	for e in hb "o.$ORG.h" $(for p in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do echo "o.$ORG.i.$p"; done); do
		f_bus get "$B" "$e" >"$WORK/$1.$e" 2>/dev/null || rm -f "$WORK/$1.$e"
	done
}
# back_to NAME MARK: the authority stopped, the bucket given back what save_scope NAME read,
# and M1 started
back_to() {
	f_syncd_stop authority
	for f in "$WORK/$1".*; do
		f_bus put "$B" "${f#"$WORK/$1".}" <"$f"
	done
	f_mark "$2"
	seen=$(grep -c "replica in step" "$WORK/M1/syncd.log")
	f_syncd_start M1
}
stepped() { [ "$(grep -c "replica in step" "$WORK/M1/syncd.log")" -gt "$seen" ]; }
f_syncd_stop M1
save_scope past
ka keys delete --key-id "$X_ID" >/dev/null
check "behind: the delete reaches M2 (within 30 s)" f_wait_check M2 vkt-lag "$X_TOKEN" 1
check "behind: the authority published it" f_until 30 published
sleep 2 # a heartbeat after the delete, in the bucket
f_bus get "$B" hb >"$WORK/hb.now"
now_rev=$(grep -o '"rev":[0-9]*' "$WORK/hb.now" | cut -d: -f2)
back_to past "M1 back, the bucket behind"
check "behind: M1 reads the bucket from the past and calls itself in step (within 30 s)" \
	f_until 30 stepped
check "behind: the deleted key still logs in on M1" f_check M1 vkt-lag "$X_TOKEN"
# the heartbeat from after the delete, live, now that M1 listens
f_bus publish "vk.$B.hb" "$(cat "$WORK/hb.now")" >/dev/null
lag_logged() { grep -q "holds a heartbeat older than one that came live" "$WORK/M1/syncd.log"; }
check "behind: M1 says that the node answering lags behind the live heartbeat (within 30 s)" \
	f_until 30 lag_logged
check "behind: M1 does not acknowledge the live heartbeat's revision $now_rev" \
	eval 'test "$(km M1 --json sync status | jq .revision)" -lt "$now_rev"'
check "behind: M1's sync status says why" \
	eval 'km M1 --json sync status | jq -e ".last_error | test(\"older than one that came live\")" >/dev/null'
again_logged() { [ "$(grep -c "holds a heartbeat older than one that came live" "$WORK/M1/syncd.log")" -ge 4 ]; }
check "behind: M1 reads again, and says so each time (within 30 s)" f_until 30 again_logged
check "behind: and still does not acknowledge revision $now_rev" \
	eval 'test "$(km M1 --json sync status | jq .revision)" -lt "$now_rev"'
f_syncd_start authority
ka sync republish >/dev/null
check "behind: with the bucket put right, sync wait returns 0" f_sync_wait 60
refused "behind: the key deleted while M1 was away is gone from M1" M1 vkt-lag "$X_TOKEN" unknown_key

# ---- a head replayed live: the newest head that came before a heartbeat is compared -------
# M1 away while a key is made, and the bucket put back as it was before (as above): M1 starts
# in step without the key. Then live, as a hostile bus may send: the heartbeat M1 read (so
# that its reading covers this connection), the organization's head from after the key (the
# key's record withheld), the head from before it (replayed), and the heartbeat from after.
# A machine keeps the newest head that came live until the next heartbeat (syncd/replica.c
# sd_head_later): M1 finds the key missing and acknowledges nothing. Had the replayed head
# taken the newer one's place, the replica would match it and M1 would acknowledge a
# revision it lacks.
f_syncd_stop M1
save_scope before
ka_key H organizations api-key create --org-id "$ORG" --user vkt-held --name head-replayed
check "head replayed: the key reaches M2 (within 30 s)" f_wait_check M2 vkt-held "$H_TOKEN" 0
check "head replayed: the authority published it" f_until 30 published
sleep 2 # its head, and a heartbeat after it, in the bucket
f_bus get "$B" "o.$ORG.h" >"$WORK/head.after"
f_bus get "$B" hb >"$WORK/hb.after"
after_rev=$(grep -o '"rev":[0-9]*' "$WORK/hb.after" | cut -d: -f2)
back_to before "M1 back, the bucket from before the key; heads live"
check "head replayed: M1 in step with the bucket from before the key (within 30 s)" \
	f_until 30 stepped
differs=$(grep -c "differs from its head" "$WORK/M1/syncd.log")
for v in "hb before.hb" "o.$ORG.h head.after" "o.$ORG.h before.o.$ORG.h" "hb hb.after"; do
	f_bus publish "vk.$B.${v% *}" "$(cat "$WORK/${v#* }")" >/dev/null
	sleep 0.2
done
found() { [ "$(grep -c "differs from its head" "$WORK/M1/syncd.log")" -gt "$differs" ]; }
check "head replayed: M1 compares its replica with the newer head, and finds the key missing" \
	f_until 10 found
check "head replayed: M1 does not acknowledge revision $after_rev" \
	eval 'test "$(km M1 --json sync status | jq .revision)" -lt "$after_rev"'
f_syncd_start authority
ka sync republish >/dev/null
check "head replayed: with the bucket put right, sync wait returns 0" f_sync_wait 60
check "head replayed: the key works on M1" f_check M1 vkt-held "$H_TOKEN"
check "every replica holds exactly what covers it, at the end" f_converged $MACHINES
check_end
