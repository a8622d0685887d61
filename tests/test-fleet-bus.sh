#!/bin/sh
# A machine's bus user cannot make the bus lie (SPEC §8, rules 7 and 10),
# with a real three-node bus and the accounts of
# docs/examples/viamkey-accounts.conf (fleet-lib.sh). The attacker is M4, an
# ordinary machine of another organization, with a raw NATS client (vk_bus)
# as its own bus user:
#  1. replies aimed at JetStream's API: its acknowledgement (on its own
#     subject, and into the bucket as the first format had it) and direct
#     gets, with reply subjects that purge or delete the bucket's stream;
#  2. a Nats-Rollup: all header on its acknowledgement, both ways; the
#     stream refuses rollups even from the authority's user;
#  3. replies aimed at the bucket's entries: an existing key's entry, and
#     fifty new ones under another organization;
#  7. a consumer with a deliver subject in another machine's inbox, and
#     durable ones.
# After each, the stream holds what it held, byte for byte where it
# matters, no machine took anything of another organization, and a change
# still reaches every machine. Then the bucket deleted outright (by
# whoever) is made again by the authority, which publishes everything
# again and says so in its log and audit trail (rule 10).
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-bus

f_tree
f_fleet
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name stays
ka_key K4 organizations api-key create --org-id "$ORG2" --user vkt-four --name org-two
[ -n "$K_TOKEN" ] && [ -n "$K4_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
check "sync wait returns 0 with the keys in place" f_sync_wait 60

B=$BUCKET
S=KV_$BUCKET
M4ID=$(f_id M4)
ACK='{"machine":"'"$M4ID"'","rev":1,"at":0}'
f_stream >"$WORK/stream.before"
check "the bucket's stream denies purges, rollups and deletes, and republishes only acknowledgements" \
	jq -e '.config.deny_purge and .config.deny_delete and (.config.allow_rollup_hdrs | not)
		and .config.allow_direct and (.config.republish.src == "$KV.'"$B"'.a.>")' "$WORK/stream.before"
f_bus get "$B" "o.$ORG.k.$K_ID" >"$WORK/k.value"
check "the organization key's entry holds its signed record" grep -q "^vk1\..*\"id\":\"$K_ID\"" "$WORK/k.value"

# att ARGS...: vk_bus as M4's bus user; what the server said in $WORK/att.out
att() {
	f_bus_as M4 "$@" >>"$WORK/att.out" 2>&1
}
messages() {
	f_stream | jq -r '.state.messages'
}
# intact: the stream is there, with as many entries as before and K's untouched
intact() {
	f_stream >"$WORK/stream.now" &&
		jq -e '.config.name == "'"$S"'"' "$WORK/stream.now" >/dev/null &&
		[ "$(jq -r .state.messages "$WORK/stream.now")" -ge "$(jq -r .state.messages "$WORK/stream.before")" ] &&
		f_bus get "$B" "o.$ORG.k.$K_ID" | cmp -s - "$WORK/k.value"
}
settle() { sleep 1; }

# ---- 1: reply subjects aimed at JetStream's API ------------------------------------
f_mark "attack 1"
att publish "vkack.$B.$M4ID" "$ACK" "\$JS.API.STREAM.PURGE.$S"
att publish "\$KV.$B.a.$M4ID" "$ACK" "\$JS.API.STREAM.PURGE.$S"
att publish "\$JS.API.DIRECT.GET.$S.\$KV.$B.hb" "" "\$JS.API.STREAM.PURGE.$S"
att publish "\$JS.API.DIRECT.GET.$S.\$KV.$B.o.$ORG2.k.no-such-key" "" "\$JS.API.STREAM.DELETE.$S"
att publish "\$JS.API.DIRECT.GET.$S.\$KV.$B.hb" "" "\$JS.API.STREAM.DELETE.$S"
settle
check "1: after replies aimed at purging and deleting the stream, it is intact" intact

# ---- 2: rollups -------------------------------------------------------------------------
f_mark "attack 2"
att publish "vkack.$B.$M4ID" "$ACK" "" "Nats-Rollup:all"
att publish "\$KV.$B.a.$M4ID" "$ACK" "" "Nats-Rollup:all"
att publish "vkack.$B.$M4ID" "$ACK" "\$KV.$B.hb" "Nats-Rollup:all"
f_bus publish "\$KV.$B.o.$ORG.junk" "x" "" "Nats-Rollup:all" >/dev/null 2>&1
settle
check "2: after rollup headers, even the authority's own, the stream is intact" intact
check "2: the authority's rollup put nothing in the bucket" eval '! f_bus get "$B" "o.$ORG.junk" >/dev/null 2>&1'

# ---- 3: replies aimed at the bucket's entries --------------------------------------------
f_mark "attack 3"
att publish "vkack.$B.$M4ID" "$ACK" "\$KV.$B.o.$ORG.k.$K_ID"
att publish "\$KV.$B.a.$M4ID" "$ACK" "\$KV.$B.o.$ORG.k.$K_ID"
att publish "\$JS.API.DIRECT.GET.$S.\$KV.$B.hb" "" "\$KV.$B.o.$ORG.k.$K_ID"
i=0
while [ "$i" -lt 50 ]; do
	att publish "vkack.$B.$M4ID" "$ACK" "\$KV.$B.o.$ORG.k.junk-$i"
	i=$((i + 1))
done
settle
check "3: after replies aimed at its entry, the key's value is its signed record, byte for byte" intact
check "3: no entry was made under another organization" \
	eval '[ "$(messages)" -eq "$(jq -r .state.messages "$WORK/stream.before")" ] && ! f_bus get "$B" "o.$ORG.k.junk-0" >/dev/null 2>&1'

# ---- 7: consumers -------------------------------------------------------------------------
f_mark "attack 7"
consumer() { # consumer NAME FILTER DELIVER
	printf '{"stream_name":"%s","config":{"name":"%s","durable_name":"%s","deliver_subject":"%s","deliver_policy":"all","ack_policy":"none","filter_subject":"%s","num_replicas":3}}' \
		"$S" "$1" "$1" "$3" "$2"
}
att request "\$JS.API.CONSUMER.CREATE.$S.evil.\$KV.$B.o.$ORG2.>" \
	"$(consumer evil "\$KV.$B.o.$ORG2.>" "_INBOX.$M1.cu")"
i=0
while [ "$i" -lt 3 ]; do
	att request "\$JS.API.CONSUMER.DURABLE.CREATE.$S.evil-$i" \
		"$(consumer "evil-$i" "\$KV.$B.o.$ORG2.>" "_INBOX.$M4ID.d$i")"
	i=$((i + 1))
done
settle
check "7: M4's user created no consumer" \
	eval '! f_bus request "\$JS.API.CONSUMER.NAMES.$S" "{}" | grep -q evil'
check "7: nothing of M4's organization reached M1's replica" \
	eval '[ "$(sqlite3 "$WORK/M1/store/keys.db" "SELECT count(*) FROM organizations WHERE id = '"'$ORG2'"'")" -eq 0 ]'
check "7: the server refused each attempt as a permissions violation" \
	eval '[ "$(cat "$WORK"/nats/n?.log | grep -c "Publish Violation - User \"machine-$M4ID\", Subject \"\$JS.API.CONSUMER")" -ge 4 ]'

# ---- the fleet still works ---------------------------------------------------------------
ka keys disable --key-id "$K_ID" >/dev/null
check "after the attacks a disable reaches every machine (sync wait 0)" f_sync_wait 60
for m in M1 M2 M3; do
	check "the disabled key is refused on $m" \
		eval '! f_check $m vkt-ann "$K_TOKEN" && grep -q "^deny: disabled" "$WORK/check.out"'
done
check "the other organization's key still works on M4" f_check M4 vkt-four "$K4_TOKEN"
check "every replica holds exactly what covers it" f_converged $MACHINES

# ---- rule 10: a bucket that disappears is made again ---------------------------------------
f_mark "deleting the bucket"
f_bus request "\$JS.API.STREAM.DELETE.$S" >"$WORK/delete.out" 2>&1
check "the authority's user deleted the stream" grep -q '"success":true' "$WORK/delete.out"
remade() { f_stream | jq -e '.config.deny_purge and .state.messages > 0' >/dev/null 2>&1; }
check "the authority made the bucket again, as it should be, and filled it (within 30 s)" f_until 30 remade
check "the authority's log says it made the bucket again" \
	grep -q "is not on the bus: making it" "$WORK/authority/syncd.log"
check "the audit trail says the bucket was made anew" \
	eval 'ka --json events | jq -e "map(select(.action == \"sync.bucket\")) | length >= 1" >/dev/null'
check "keyadm sync status says when the bucket was made" \
	eval 'ka --json sync status | jq -e ".bucket_made_at != null" >/dev/null'
ka_key AFTER organizations api-key create --org-id "$ORG" --user vkt-after --name after-remake
check "a change after the bucket was made again reaches every machine (sync wait 0)" f_sync_wait 60
for m in M1 M2 M3; do
	check "the key created afterwards works on $m" f_check "$m" vkt-after "$AFTER_TOKEN"
done
check "the disabled key is still refused on M1" eval '! f_check M1 vkt-ann "$K_TOKEN"'
check "no machine's daemon met a permissions violation" eval '! grep -l -i "violation" "$WORK"/M?/syncd.log'
check_end
