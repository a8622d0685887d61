#!/bin/sh
# The bus is trusted for delivery, not for truth (SPEC §8), with a real
# three-node bus (fleet-lib.sh):
#  - a second authority (another store and signing key, the same bus user
#    and bucket) publishes records under the same entries: a new key, a
#    disabled key enabled, a key deleted, a key rotated, everything at newer
#    revisions. No machine applies any of it, live or after a restart: each
#    logs "dropped", its keys list is unchanged, the rogue key's token and
#    rotated secret are refused, and what the rogue deleted still works.
#    keyadm sync republish on the real authority then puts the bus right;
#  - a replayed older record (a key's bus value captured before a disable or
#    a delete, put back afterwards) is never applied, live or by a daemon
#    reading its scopes again after a restart; and no bus value holds a
#    token's secret;
#  - a machine's bus user, from docs/examples/viamkey-accounts.conf, may read
#    only its own scopes, directly: creating any consumer (on its own scope
#    too), reading stream info, another scope's entry or a stream message,
#    deleting a consumer, writing records, its acknowledgement into the
#    bucket or another machine's, and subscribing to another scope's
#    subjects, inboxes or acknowledgements are refused as permissions
#    violations; and nothing of another scope arrives (while the authority's
#    user, listening the same way, sees it). test-fleet-bus.sh makes the
#    attacks these permissions stop.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-trust

f_tree
f_fleet

ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name stays
ka_key DIS organizations api-key create --org-id "$ORG" --user vkt-dis --name stays-disabled
ka_key ROT organizations api-key create --org-id "$ORG" --user vkt-rot --name stays-unrotated
ka_key K4 organizations api-key create --org-id "$ORG2" --user vkt-four --name org-two
[ -n "$K_TOKEN" ] && [ -n "$DIS_TOKEN" ] && [ -n "$ROT_TOKEN" ] && [ -n "$K4_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
ka keys disable --key-id "$DIS_ID" >/dev/null
check "sync wait returns 0 with the keys in place" f_sync_wait 60
for m in $MACHINES; do f_keys "$m" >"$WORK/$m.keys.before"; done

# ---- a second authority on the same bucket --------------------------------------
mkdir -p "$WORK/rogue/store"
sqlite3 "$WORK/authority/store/keys.db" ".backup '$WORK/rogue/store/keys.db'"
sqlite3 "$WORK/rogue/store/keys.db" "DELETE FROM meta WHERE name = 'fleet_role';
	DELETE FROM sync_outbox; DELETE FROM sync_published; DELETE FROM sync_machines;
	DELETE FROM sync_pages; DELETE FROM sync_dirty;"
f_authority_conf "$WORK/rogue" "$SERVERS"
kr() { "$KEYADM" --config "$WORK/rogue/viamkey.conf" "$@"; }
kr authority init >/dev/null || { echo "FAIL: the rogue's authority init"; exit 99; }
kr --json organizations api-key create --org-id "$ORG" --user vkt-rogue --name rogue >"$WORK/rogue.json" 2>/dev/null
RK_ID=$(jq -r .id "$WORK/rogue.json")
RK_TOKEN=$(jq -r .key "$WORK/rogue.json")
kr keys enable --key-id "$DIS_ID" >/dev/null
kr keys delete --key-id "$K_ID" >/dev/null
kr --json keys rotate --key-id "$ROT_ID" >"$WORK/rogue.json" 2>/dev/null
ROGUE_ROT=$(jq -r .key "$WORK/rogue.json")
kr keys grant --key-id "$K4_ID" --role owner --org-id "$ORG" >/dev/null
[ -n "$RK_TOKEN" ] && [ -n "$ROGUE_ROT" ] || { echo "FAIL: the rogue's changes"; exit 99; }
check "the rogue's revision is newer than the authority's" \
	test "$(kr --json sync status | jq .revision)" -gt "$(ka --json sync status | jq .revision)"

f_mark "starting the rogue authority"
f_syncd_start rogue
# the rogue's records reached each machine: each logged dropping its new key
dropped_on() { grep -q "dropped the value of .*\.k\.$RK_ID" "$WORK/$1/syncd.log"; }
for m in M1 M2 M3; do
	check "$m received the rogue's records and dropped them (within 30 s)" f_until 30 dropped_on "$m"
done
check "the rogue published everything it had (its outbox is empty within 30 s)" \
	f_until 30 eval 'test "$(kr --json sync status | jq .unpublished)" -eq 0'
# what arrives after the rogue's last record was applied before (one connection, in order)
ka_key AFTER machines api-key create --machine-id "$M1" --user vkt-after --name after-rogue
check "a change of the real authority still reaches every machine (sync wait 0)" f_sync_wait 60

unchanged_keys() {
	for f_u in "$@"; do
		f_keys "$f_u" >"$WORK/$f_u.keys.now"
		[ "$f_u" = M1 ] && grep -v "$AFTER_ID" "$WORK/M1.keys.now" >"$WORK/M1.keys.tmp" &&
			mv "$WORK/M1.keys.tmp" "$WORK/M1.keys.now"
		cmp -s "$WORK/$f_u.keys.before" "$WORK/$f_u.keys.now" || { echo "  ($f_u)"; return 1; }
	done
}
check "rogue: every machine's keys list is unchanged" unchanged_keys $MACHINES
for m in M1 M2 M3; do
	check "rogue: the rogue key's token is refused on $m" \
		eval '! f_check $m vkt-rogue "$RK_TOKEN" && grep -q "^deny: unknown_key" "$WORK/check.out"'
	check "rogue: the key the rogue deleted still works on $m" f_check "$m" vkt-ann "$K_TOKEN"
	check "rogue: the key the rogue enabled is still disabled on $m" \
		eval '! f_check $m vkt-dis "$DIS_TOKEN" && grep -q "^deny: disabled" "$WORK/check.out"'
	check "rogue: the rogue's rotated secret is refused on $m" \
		eval '! f_check $m vkt-rot "$ROGUE_ROT" && grep -q "^deny: wrong_secret" "$WORK/check.out"'
	check "rogue: the real secret of the key the rogue rotated still works on $m" f_check "$m" vkt-rot "$ROT_TOKEN"
done
check "rogue: the key the rogue widened to ORG is not on M1" \
	eval '! f_check M1 vkt-four "$K4_TOKEN" && grep -q "^deny: unknown_key" "$WORK/check.out"'
check "rogue: a PAM login through M2 with the rogue key is refused" eval '! f_login M2 vkt-rogue "$RK_TOKEN"'

# a daemon reading its scopes again finds the rogue's values on the bus: dropped too
steps() { grep -c "replica in step" "$WORK/$1/syncd.log"; }
f_syncd_stop M2
before=$(steps M2)
f_syncd_start M2
check "rogue: M2 restarted reads its scopes again (within 60 s)" \
	f_until 60 eval 'test "$(steps M2)" -gt "$before"'
check "rogue: after reading the rogue's values at its start, M2's keys list is unchanged" unchanged_keys M2
check "rogue: and the rogue key's token is still refused on M2" eval '! f_check M2 vkt-rogue "$RK_TOKEN"'
f_syncd_stop rogue

f_mark "republishing"
ka sync republish >/dev/null
check "sync republish on the real authority: sync wait returns 0" f_sync_wait 60
check "after the republish every replica holds exactly what covers it" f_converged $MACHINES

# ---- replayed records ---------------------------------------------------------------
ka_key R organizations api-key create --org-id "$ORG" --user vkt-rep --name replayed
ka_key D organizations api-key create --org-id "$ORG" --user vkt-del --name replayed-delete
check "sync wait returns 0 with the keys to replay" f_sync_wait 60
f_bus get "$BUCKET" "o.$ORG.k.$R_ID" >"$WORK/r.old"
f_bus get "$BUCKET" "o.$ORG.k.$D_ID" >"$WORK/d.old"
check "a key's bus value is a signed record" grep -q "^vk1\..*\"id\":\"$R_ID\"" "$WORK/r.old"
secret_of() { printf '%s' "$1" | sed 's/^vk_[^_]*_//'; }
check "the key's bus value holds no part of its token's secret" \
	eval '! grep -qF "$(secret_of "$R_TOKEN" | cut -c1-16)" "$WORK/r.old" && ! grep -qF "$(secret_of "$R_TOKEN" | cut -c17-32)" "$WORK/r.old"'

ka keys disable --key-id "$R_ID" >/dev/null
ka keys delete --key-id "$D_ID" >/dev/null
check "sync wait returns 0 after the disable and the delete" f_sync_wait 60
f_mark "replaying"
f_bus put "$BUCKET" "o.$ORG.k.$R_ID" <"$WORK/r.old"
f_bus put "$BUCKET" "o.$ORG.k.$D_ID" <"$WORK/d.old"
check "the replayed values are on the bus" eval 'f_bus get "$BUCKET" "o.$ORG.k.$R_ID" | cmp -s - "$WORK/r.old"'
# a later change, applied after the replayed values on every machine
ka_key AFTER2 organizations api-key create --org-id "$ORG" --user vkt-after2 --name after-replay
check "a change after the replay: sync wait returns 0" f_sync_wait 60
for m in M1 M2 M3; do
	check "replay: the disabled key stays disabled on $m" \
		eval '! f_check $m vkt-rep "$R_TOKEN" && grep -q "^deny: disabled" "$WORK/check.out"'
	check "replay: the deleted key stays deleted on $m" \
		eval '! f_check $m vkt-del "$D_TOKEN" && grep -q "^deny: unknown_key" "$WORK/check.out"'
done
f_syncd_stop M3
before=$(steps M3)
f_syncd_start M3
check "replay: M3 restarted reads its scopes again, replayed values included (within 60 s)" \
	f_until 60 eval 'test "$(steps M3)" -gt "$before"'
check "replay: after that the disabled key stays disabled on M3" \
	eval '! f_check M3 vkt-rep "$R_TOKEN" && grep -q "^deny: disabled" "$WORK/check.out"'
check "replay: after that the deleted key stays deleted on M3" eval '! f_check M3 vkt-del "$D_TOKEN"'
check "replay: a PAM login through M3 with the replayed key is refused" eval '! f_login M3 vkt-rep "$R_TOKEN"'
check "replay: every replica holds exactly what covers it" f_converged $MACHINES

# ---- a machine's bus user ------------------------------------------------------------
B=$BUCKET
S=KV_$BUCKET
body() { # body NAME FILTER: a consumer create request's body
	printf '{"stream_name":"%s","config":{"name":"%s","deliver_subject":"_INBOX.%s.probe","deliver_policy":"last_per_subject","ack_policy":"none","filter_subject":"%s","inactive_threshold":5000000000,"mem_storage":true,"num_replicas":1}}' \
		"$S" "$1" "$M1" "$2"
}
# violation KIND SUBJECT: a server logged that M1's bus user was refused KIND
# (Publish or Subscription) on SUBJECT
violation() {
	grep -qF "$1 Violation - User \"machine-$M1\", Subject \"$2\"" "$WORK"/nats/n?.log
}
refused() { # refused DESC SUBJECT [BODY]: M1's user publishing SUBJECT is a permissions violation
	r_subject=$2
	f_bus_as M1 request "$2" "${3:-}" >"$WORK/request.out" 2>&1
	check "M1's bus user: $1 is refused" \
		eval 'violation Publish "$r_subject" && ! grep -q "\"type\"" "$WORK/request.out"'
}
# no consumer at all: a machine reads its scopes by direct gets (docs/FLEET.md)
refused "a consumer on its own machine scope" \
	"\$JS.API.CONSUMER.CREATE.$S.vk-$M1-m.\$KV.$B.m.$M1.>" "$(body "vk-$M1-m" "\$KV.$B.m.$M1.>")"
refused "a consumer on M3's machine scope" \
	"\$JS.API.CONSUMER.CREATE.$S.vk-$M1-m.\$KV.$B.m.$M3.>" "$(body "vk-$M1-m" "\$KV.$B.m.$M3.>")"
refused "a consumer on the whole bucket" \
	"\$JS.API.CONSUMER.CREATE.$S.vk-$M1-m.\$KV.$B.>" "$(body "vk-$M1-m" "\$KV.$B.>")"
refused "a consumer with the filter only in the body" \
	"\$JS.API.CONSUMER.CREATE.$S.vk-$M1-m" "$(body "vk-$M1-m" "\$KV.$B.m.$M1.>")"
refused "a durable consumer" "\$JS.API.CONSUMER.DURABLE.CREATE.$S.vk-$M1-d" "$(body "vk-$M1-d" "\$KV.$B.m.$M1.>")"
refused "stream info (it lists every entry)" "\$JS.API.STREAM.INFO.$S" '{"subjects_filter":">"}'
refused "reading another organization's entry directly" "\$JS.API.DIRECT.GET.$S.\$KV.$B.o.$ORG2.k.$K4_ID"
refused "reading another machine's entry directly" "\$JS.API.DIRECT.GET.$S.\$KV.$B.m.$M3.t"
refused "a direct get with its subject in the body" "\$JS.API.DIRECT.GET.$S" '{"last_by_subj":"$KV.'"$B"'.o.'"$ORG2"'.t"}'
f_bus_as M1 request "\$JS.API.DIRECT.GET.$S.\$KV.$B.hb" >"$WORK/request.out" 2>&1
check "M1's bus user: reading the heartbeat directly works" \
	grep -q '^vk1\..*"type":"heartbeat"' "$WORK/request.out"
f_bus_as M1 request "\$JS.API.DIRECT.GET.$S.\$KV.$B.o.$ORG.k.$K_ID" >"$WORK/request.out" 2>&1
check "M1's bus user: reading an entry of its own organization directly works" \
	grep -q '^vk1\..*"id":"'"$K_ID"'"' "$WORK/request.out"
refused "reading a stream message" "\$JS.API.STREAM.MSG.GET.$S" '{"last_by_subj":"$KV.'"$B"'.o.'"$ORG"'.k.'"$K_ID"'"}'
refused "listing the consumers' names" "\$JS.API.CONSUMER.NAMES.$S" '{}'
refused "deleting a consumer" "\$JS.API.CONSUMER.DELETE.$S.vk-authority-a-0"
refused "writing M3's acknowledgement" "vkack.$B.$M3" '{"machine":"'"$M3"'","rev":999999,"at":0}'
refused "writing its acknowledgement into the bucket" "\$KV.$B.a.$M1" '{"machine":"'"$M1"'","rev":999999,"at":0}'
refused "writing a record" "\$KV.$B.o.$ORG.k.$K_ID" 'vk1.x'
refused "publishing on a live subject" "vk.$B.o.$ORG.k.$K_ID" 'vk1.x'

# subscriptions: refused ones, and nothing of another scope arrives
: >"$WORK/listen.err"
f_bus_as M1 listen "vk.$B.m.$M1.>" "vk.$B.m.$M3.>" "vk.$B.o.$ORG2.>" "vk.$B.>" "\$KV.$B.>" \
	"_INBOX.$M3.>" "vk.$B.a.>" "vkack.$B.>" >"$WORK/listen.out" 2>"$WORK/listen.err" &
LISTEN=$!
f_track listen-M1 "$LISTEN"
"$VK_BUS" --user authority --password-file "$WORK/nats/authority.password" "$SERVERS" \
	listen "vk.$B.m.$M1.>" "vk.$B.m.$M3.>" "vk.$B.o.$ORG2.>" >"$WORK/control.out" 2>"$WORK/control.err" &
CONTROL=$!
f_track listen-control "$CONTROL"
check "M1's listener and the authority's are subscribed (within 30 s)" \
	f_until 30 eval 'grep -q ready "$WORK/listen.err" && grep -q ready "$WORK/control.err"'
ka_key M3K machines api-key create --machine-id "$M3" --user vkt-m3 --name m3-only
ka_key O2K organizations api-key create --org-id "$ORG2" --user vkt-o2 --name org2-only
ka_key M1K machines api-key create --machine-id "$M1" --user vkt-m1 --name m1-only
f_stop "$LISTEN" "$CONTROL" -CONT
f_untrack listen-M1 "$LISTEN"
f_untrack listen-control "$CONTROL"
for s in "vk.$B.m.$M3.>" "vk.$B.o.$ORG2.>" "vk.$B.>" "\$KV.$B.>" "_INBOX.$M3.>" "vk.$B.a.>" \
	"vkack.$B.>"; do
	check "M1's bus user: subscribing to $(echo "$s" | sed "s/$M3/<M3>/; s/$ORG2/<ORG2>/") is refused" \
		violation Subscription "$s"
done
check "the M3 and ORG2 keys were published (they work there)" \
	eval 'f_wait_check M3 vkt-m3 "$M3K_TOKEN" 0 && f_wait_check M4 vkt-o2 "$O2K_TOKEN" 0'
check "the authority's user, listening the same way, saw M3's and ORG2's new keys" \
	eval 'grep -q "^vk.$B.m.$M3.k.$M3K_ID\$" "$WORK/control.out" && grep -q "^vk.$B.o.$ORG2.k.$O2K_ID\$" "$WORK/control.out"'
check "M1's listener ended with M1's own new key (its own scope arrives)" grep -q "^vk.$B.m.$M1.k.$M1K_ID\$" "$WORK/listen.out"
check "nothing of M3's or ORG2's scope arrived at M1's bus user" \
	eval '! grep -q -e "$M3" -e "$ORG2" "$WORK/listen.out"'
check "no machine's daemon met a permissions violation" eval '! grep -l -i "permission" "$WORK"/M?/syncd.log'
check_end
