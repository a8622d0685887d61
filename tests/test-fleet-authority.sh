#!/bin/sh
# An authority that survives its host (SPEC §10), with a real three-node bus
# (fleet-lib.sh): a root key, an authority certified for epoch 1, machines
# that trust the root, and standbys certified in advance.
#  - a standby's daemon keeps a full copy: every key, every scope;
#  - promote is refused while the authority holds the lease, and names it;
#    the authority killed, promote --force takes the lease and the next
#    epoch, and from then on changes made on the promoted standby reach
#    every machine; no login fails on any machine through the failover;
#  - the former authority, restarted, publishes nothing and its keyadm
#    refuses every change, naming the holder; its old records put back on
#    the bus are refused by every machine;
#  - rekey: the next epoch under a new key, with no machine touched, also
#    when it lands while the daemon is about to publish under the old key; a
#    record of the epoch before is refused, also by a machine that was
#    offline during the rekey;
#  - root rotate, twice: machines take each root version in turn; a root
#    version older than the one they hold, and a certificate under it, are
#    refused;
#  - two standbys promoted at once: exactly one wins.
# shellcheck disable=SC2016,SC2034,SC2086,SC2153 # conditions are eval'd; lists of machines split on purpose; ka_key sets VAR_TOKEN
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-authority

F_ROOTED=1
f_tree
f_bus_start
f_machines $MACHINES
f_servers
check "machines trust the root, not a key: their config names root_key" \
	eval 'grep -q "^root_key = $ROOT_KEY\$" "$WORK/M1/viamkey.conf" && ! grep -q "^authority_key" "$WORK/M1/viamkey.conf"'
f_syncd_start authority
for m in $MACHINES; do f_syncd_start "$m"; done
f_standby S1
f_standby S2
f_syncd_start S1
f_syncd_start S2
ks() { # ks WHO ARGS...: keyadm on a standby (or the host it became)
	k_who=$1
	shift
	"$KEYADM" --config "$WORK/$k_who/viamkey.conf" "$@"
}
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name everywhere
ka_key K4 organizations api-key create --org-id "$ORG2" --user vkt-four --name org-two
ka_key K5 organizations api-key create --org-id "$ORG2" --user vkt-five --name org-two-logins
ka_key GONE organizations api-key create --org-id "$ORG" --user vkt-gone --name to-delete
[ -n "$K_TOKEN" ] && [ -n "$K4_TOKEN" ] && [ -n "$K5_TOKEN" ] && [ -n "$GONE_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
check "epoch 1: sync wait returns 0" f_sync_wait 60
check "epoch 1: the key works on M1" f_check M1 vkt-ann "$K_TOKEN"
count() { sqlite3 "$WORK/$1/store/keys.db" "SELECT count(*) FROM keys"; }
full_copy() { [ "$(count S1)" = "$(count authority)" ] && [ "$(count S2)" = "$(count authority)" ]; }
check "the standbys hold a full copy: every key of every scope (within 30 s)" f_until 30 full_copy
check "a keyadm change on a standby is refused, naming promote" \
	eval '! ks S1 organizations create --name nope 2>"$WORK/err" && grep -q "authority promote" "$WORK/err"'
f_bus get "$BUCKET" "o.$ORG.k.$GONE_ID" >"$WORK/gone.epoch1"
check "an epoch-1 value of a key is on the bus" grep -q '"epoch":1' "$WORK/gone.epoch1"

# ---- logins all along ------------------------------------------------------------------
logins() {
	while [ ! -f "$WORK/logins.stop" ]; do
		for l_m in $MACHINES; do
			l_token=$K_TOKEN l_user=vkt-ann
			[ "$l_m" = M4 ] && l_token=$K5_TOKEN l_user=vkt-five
			printf '%s\n' "$l_token" | "$PAM_LOGIN" --confdir "$WORK/$l_m/pam.d" \
				--service viamkey-test "$l_user" >"$WORK/logins.$l_m.out" 2>&1 ||
				echo "$(date +%T) $l_m" >>"$WORK/logins.failed"
			echo $(($(cat "$WORK/logins.count" 2>/dev/null || echo 0) + 1)) >"$WORK/logins.count"
		done
		sleep 0.2
	done
}
: >"$WORK/logins.failed"
logins &
LOGINS=$!
f_track logins "$LOGINS"

# ---- promotion -------------------------------------------------------------------------
check "promote while the authority holds the lease is refused (exit 1)" \
	eval '! ks S1 authority promote --timeout 20s 2>"$WORK/err"'
check "... naming who holds it" grep -q "lease is held by" "$WORK/err"
f_syncd_kill authority
f_mark "the authority killed"
check "promote --force with the authority down makes S1 the authority (exit 0)" \
	ks S1 authority promote --force --timeout 20s
check "S1's store is the authority's now" \
	eval 'test "$(ks S1 --json sync status | jq -r .role)" = authority'
epoch_of() { km "$1" --json sync status | jq -r .epoch; }
# on_epoch E [M...]: every machine named (all of them by default) trusts epoch E
on_epoch() {
	e_want=$1
	shift
	[ $# -gt 0 ] || set -- $MACHINES
	for e_m in "$@"; do [ "$(epoch_of "$e_m")" = "$e_want" ] || return 1; done
}
check "every machine follows epoch 2 (within 30 s)" f_until 30 on_epoch 2
# from here on, the fleet's authority is S1
ka() { ks S1 "$@"; }
ka_key NEW organizations api-key create --org-id "$ORG" --user vkt-new --name after-failover
ka keys delete --key-id "$GONE_ID" >/dev/null
check "a change on the promoted standby: sync wait there returns 0" \
	eval 'ka sync wait --timeout 60s >"$WORK/sync-wait.out" 2>&1'
check "the key made after the failover works on every machine of its organization" \
	f_all 0 vkt-new "$NEW_TOKEN" M1 M2 M3
check "the key deleted after the failover is gone on M1" \
	eval '! f_check M1 vkt-gone "$GONE_TOKEN" && grep -q "^deny: unknown_key" "$WORK/check.out"'
check "what was in force before the failover still is: the key works on M3" f_check M3 vkt-ann "$K_TOKEN"

# ---- the former authority ------------------------------------------------------------------
f_syncd_start authority
lost() { grep -q "authority lease is held by" "$WORK/authority/syncd.log"; }
check "the former authority, restarted, finds the lease another's and says so (within 30 s)" f_until 30 lost
check "its keyadm refuses a change, naming the holder" \
	eval '! ks authority organizations create --name stale 2>"$WORK/err" && grep -q "lease is held by" "$WORK/err"'
f_bus put "$BUCKET" "o.$ORG.k.$GONE_ID" <"$WORK/gone.epoch1"
f_bus publish "vk.$BUCKET.o.$ORG.k.$GONE_ID" "$(cat "$WORK/gone.epoch1")" >/dev/null
ka_key AFTER organizations api-key create --org-id "$ORG" --user vkt-after --name after-old
check "a change after the old values were put back: sync wait 0" \
	eval 'ka sync wait --timeout 60s >"$WORK/sync-wait.out" 2>&1'
for m in M1 M2 M3; do
	check "the deleted key's epoch-1 value put back is refused on $m" \
		eval '! f_check $m vkt-gone "$GONE_TOKEN" && grep -q "^deny: unknown_key" "$WORK/check.out"'
done
f_syncd_stop authority

# ---- rekey -------------------------------------------------------------------------------------
f_syncd_stop M4
f_mark "M4 offline for the rekey"
f_bus get "$BUCKET" "o.$ORG2.k.$K4_ID" >"$WORK/k4.epoch2"
# S1's daemon, restarted under faultpoint.so, stops before each round of
# publication reads the outbox, the epoch-2 key loaded; the rekey commits while
# it is stopped there, as one does that lands between the daemon's look at the
# store's certificate and its next round. (Its events thread may hold the
# store's write lock at a stop: then it goes on to the next round.) Continued,
# the round finds everything in the outbox: it must publish none of it under
# the old key. At the next round's stop it is killed and started again.
f_syncd_stop S1
rm -f "$WORK/rekey.mark"
f_syncd_start S1 LD_PRELOAD="$FAULTPOINT" ASAN_OPTIONS="$FAULT_ASAN_OPTIONS" VK_FAULT_PROG=viamkey-syncd \
	VK_FAULT_ACTION=stop VK_FAULT_AT=1 VK_FAULT_REPEAT=1 VK_FAULT_CALLS=sqlite3_prepare_v2 \
	VK_FAULT_SQL="SELECT kind, id, rev FROM sync_outbox" VK_FAULT_MARK="$WORK/rekey.mark"
pid=$(f_syncd_pid S1)
stopped_at() { grep -q "^pid $pid point $1 sqlite3_prepare_v2" "$WORK/rekey.mark" 2>/dev/null; }
k=1
while [ $k -le 20 ] && f_until 30 stopped_at $k && ! sqlite3 "$WORK/S1/store/keys.db" "BEGIN IMMEDIATE; ROLLBACK" 2>/dev/null; do
	kill -CONT "$pid"
	k=$((k + 1))
done
check "S1's daemon, restarted, stops before a round of publication, the store free (round $k)" stopped_at $k
check "rekey on the promoted authority (exit 0)" ka authority rekey --root-key "$WORK/root.key"
kill -CONT "$pid"
check "S1's daemon goes through that round and stops before the next (within 30 s)" f_until 30 stopped_at $((k + 1))
f_syncd_kill S1
f_syncd_start S1
check "every running machine follows epoch 3 (within 30 s)" f_until 30 on_epoch 3 M1 M2 M3
epoch3() { f_bus get "$BUCKET" "$1" | grep -q '"epoch":3'; }
check "the round read after the rekey went out under epoch 3: a key of M4's, its machine's and location's heads (within 30 s)" \
	f_until 30 eval 'epoch3 "o.$ORG2.k.$K4_ID" && epoch3 "m.$M4.h" && epoch3 "l.$LOC_C.h"'
ka keys disable --key-id "$K4_ID" >/dev/null
f_syncd_start M4
check "M4, offline during the rekey, follows epoch 3 once back (within 30 s)" f_until 30 on_epoch 3 M4
check "the disable made under epoch 3 is in force on M4 (within 30 s)" \
	f_wait_check M4 vkt-four "$K4_TOKEN" 1
f_bus put "$BUCKET" "o.$ORG2.k.$K4_ID" <"$WORK/k4.epoch2"
f_bus publish "vk.$BUCKET.o.$ORG2.k.$K4_ID" "$(cat "$WORK/k4.epoch2")" >/dev/null
f_syncd_stop M4
f_syncd_start M4
sleep 3
check "the epoch-2 value put back (it enabled the key) is refused on M4, live and at a restart" \
	eval '! f_check M4 vkt-four "$K4_TOKEN" && grep -q "^deny: disabled" "$WORK/check.out"'
# the bus still holds the old values put back: the remedy, as for any replay
ka sync republish >/dev/null
check "sync republish then puts the epoch-3 values back on the bus (sync wait 0)" \
	eval 'ka sync wait --timeout 60s >"$WORK/sync-wait.out" 2>&1 && f_bus get "$BUCKET" "o.$ORG2.k.$K4_ID" | grep -q "\"epoch\":3" && f_bus get "$BUCKET" "o.$ORG.k.$GONE_ID" | grep -q "\"epoch\":3"'

# ---- root rotation ----------------------------------------------------------------------------
ka root init --out "$WORK/root2.key" >/dev/null
ka root init --out "$WORK/root3.key" >/dev/null
check "root rotate to version 2 (exit 0)" \
	ka root rotate --root-key "$WORK/root.key" --new-root-key "$WORK/root2.key"
root_of() { km "$1" --json sync status | jq -r .root_version; }
# on_root V [M...]: every machine named (all by default) holds root version V
on_root() {
	r_want=$1
	shift
	[ $# -gt 0 ] || set -- $MACHINES
	for r_m in "$@"; do [ "$(root_of "$r_m")" = "$r_want" ] || return 1; done
}
check "every machine takes root version 2 (within 30 s)" f_until 30 on_root 2
f_bus get "$BUCKET" root.2 >"$WORK/root2.doc"
check "root rotate to version 3 with the version-1 root key is refused (the fleet holds 2)" \
	eval '! ka root rotate --root-key "$WORK/root.key" --new-root-key "$WORK/root3.key" 2>"$WORK/err" && grep -q "fleet holds 2" "$WORK/err"'
f_syncd_stop M4
f_mark "M4 offline for root version 3"
check "root rotate to version 3 (exit 0)" \
	ka root rotate --root-key "$WORK/root2.key" --new-root-key "$WORK/root3.key"
check "every running machine takes root version 3 (within 30 s)" f_until 30 on_root 3 M1 M2 M3
# the bus lies to M4: version 2's document where version 3's should be
f_bus get "$BUCKET" root.3 >"$WORK/root3.doc"
f_bus put "$BUCKET" root.3 <"$WORK/root2.doc"
f_syncd_start M4
says_root3() { km M4 --json sync status | jq -r .last_error | grep -q "root version 3, past the 2 held"; }
check "M4, handed version 2's document as version 3, says it waits for root version 3 (within 30 s)" \
	f_until 30 says_root3
check "... keeps root version 2 meanwhile, and logs the document it refused" \
	eval 'on_root 2 M4 && grep -q "dropped the value of root.3: not root version 3" "$WORK/M4/syncd.log"'
f_bus put "$BUCKET" root.3 <"$WORK/root3.doc"
check "the real version 3 put back: M4 takes it (within 30 s)" f_until 30 on_root 3 M4
ka_key R3 organizations api-key create --org-id "$ORG" --user vkt-r3 --name under-root-3
check "a change under root version 3 reaches every machine (sync wait 0)" \
	eval 'ka sync wait --timeout 60s >"$WORK/sync-wait.out" 2>&1'
check "the key made under root version 3 works on M1" f_check M1 vkt-r3 "$R3_TOKEN"
# root version 2's key, retired, certifies a key of the attacker's for epoch 9
sed "s|^signing_key = .*|signing_key = $WORK/forged.key|" "$WORK/S2/viamkey.conf" >"$WORK/forged.conf"
FORGED=$("$KEYADM" --config "$WORK/forged.conf" --json authority keygen | jq -r .public_key)
"$KEYADM" --config "$WORK/forged.conf" authority certify --root-key "$WORK/root2.key" \
	--public-key "$FORGED" --epoch 9 >"$WORK/cert9"
check "a certificate under retired root version 2 can still be made offline" test -s "$WORK/cert9"
CERT9=$(basenc --base64url "$WORK/cert9" | tr -d '\n=')
f_bus get "$BUCKET" hb | cut -d. -f3- >"$WORK/hb.json"
jq -c --arg c "$CERT9" '.epoch = 9 | .seq += 1000 | .cert = $c' "$WORK/hb.json" |
	"$VK_SIGN" "$WORK/forged.key" >"$WORK/hb.forged"
f_bus put "$BUCKET" hb <"$WORK/hb.forged"
f_bus publish "vk.$BUCKET.hb" "$(cat "$WORK/hb.forged")" >/dev/null
sleep 3
check "a heartbeat of epoch 9 under root version 2 is refused: every machine keeps epoch 3 and root 3" \
	eval 'on_epoch 3 && on_root 3'
ka keys disable --key-id "$R3_ID" >/dev/null
check "and the real authority's changes still land (sync wait 0)" \
	eval 'ka sync wait --timeout 60s >"$WORK/sync-wait.out" 2>&1'

# ---- two standbys at once ------------------------------------------------------------------------
f_syncd_stop S1
f_mark "S1 stopped: S2 and S3 race"
f_standby S3 4 "$WORK/root3.key"
f_syncd_start S3
check "S2 and S3 each hold a full copy (within 30 s)" \
	f_until 30 eval '[ "$(count S2)" = "$(count S1)" ] && [ "$(count S3)" = "$(count S1)" ]'
check "S2, certified under root version 1, is refused promotion, naming the root" \
	eval '! ks S2 authority promote --force --timeout 30s 2>"$WORK/err" && grep -q "root version 3" "$WORK/err"'
"$KEYADM" --config "$WORK/S2/viamkey.conf" authority certify --root-key "$WORK/root3.key" \
	--public-key "$(jq -r .public_key "$WORK/S2/public.json")" --epoch 4 >"$WORK/S2/cert4"
check "S2 certified again, for epoch 4 under root version 3 (exit 0)" \
	ks S2 authority init --standby --certificate "$WORK/S2/cert4"
ks S2 authority promote --force --timeout 30s >"$WORK/p2.out" 2>&1 &
P2=$!
ks S3 authority promote --force --timeout 30s >"$WORK/p3.out" 2>&1 &
P3=$!
s2=0
wait "$P2" || s2=$?
s3=0
wait "$P3" || s3=$?
check "two standbys promoted at once: exactly one wins (S2 $s2, S3 $s3)" \
	eval '[ $((s2 + s3)) -eq 1 ]'
check "the one that lost says another took the lease, or that its epoch is not above" \
	eval 'cat "$WORK/p2.out" "$WORK/p3.out" | grep -q -e "took the authority lease first" -e "lease is held by" -e "not above"'

touch "$WORK/logins.stop"
f_stop "$LOGINS"
f_untrack logins "$LOGINS"
check "logins ran all along ($(cat "$WORK/logins.count") of them)" test "$(cat "$WORK/logins.count")" -gt 40
check "no login failed on any machine through the failover" \
	eval '! test -s "$WORK/logins.failed" || { head "$WORK/logins.failed"; false; }'
check_end
