#!/bin/sh
# A machine joins with one command (SPEC §9), on a real three-node bus in
# operator mode (fleet-lib.sh with F_OPERATOR: the nodes include the
# bus.conf that keyadm bus init writes; no user is written into any node's
# config, and none is ever reloaded):
#  - keyadm bus init makes the operator, the accounts and the credentials;
#    the nodes come up with it and the authority publishes;
#  - viamkey-syncd join with a join token: the machine exists in the
#    authority's tree, its config and credentials are written (0644, 0600),
#    its replica is in step, and a key of its organization logs in there;
#  - a used, an expired, a revoked, an altered token, a bus that is not
#    there, an existing config without --force, and a store at the
#    replica's path that the daemon would refuse (one with keys of its
#    own, the authority's): each exits 1 saying why, and nothing is
#    written anywhere;
#  - the token's bus user, as a raw client, may only ask to join: not read
#    a scope, the stream's info or another's inbox; a joined machine's
#    user cannot read another machine's scope;
#  - a signature libnats 3.4.1 leaves out (its first byte zero) is no
#    refusal: the join's dial connects again;
#  - the token's secret is in no log, no process's command line of the
#    documented form, and not in the store;
#  - machines move re-issues the machine's identity: it follows its new
#    location's scope, and its older JWT ends once it acknowledged;
#  - machines delete ends the machine's bus identity within 10 s.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-join basenc

F_OPERATOR=1
F_ROOTED=1
f_authority
mkdir -p "$WORK/nats"
: >"$WORK/machines"
ka --json organizations create --name "Org one" >"$WORK/o.json" && ORG=$(f_json_id "$WORK/o.json")
ka --json organizations create --name "Org two" >"$WORK/o.json" && ORG2=$(f_json_id "$WORK/o.json")
ka --json locations create --org-id "$ORG" --name "Location A" >"$WORK/l.json" && LOC_A=$(f_json_id "$WORK/l.json")
ka --json locations create --org-id "$ORG" --name "Location B" >"$WORK/l.json" && LOC_B=$(f_json_id "$WORK/l.json")
ka --json locations create --org-id "$ORG2" --name "Location C" >"$WORK/l.json" && LOC_C=$(f_json_id "$WORK/l.json")
[ -n "$LOC_C" ] || { echo "FAIL: cannot make the tree"; exit 99; }

# ---- the bus ------------------------------------------------------------------------------
check "keyadm bus init (exit 0)" ka bus init --out "$WORK/nats"
mode() { stat -c %a "$1"; }
check "it wrote bus.conf, the operator's seed (0600), the online keys (0600) and two .creds (0600)" \
	eval 'test -f "$WORK/nats/bus.conf" && test "$(mode "$WORK/nats/operator.nk")" = 600 &&
		test "$(mode "$WORK/authority/bus.nk")" = 600 && test "$(mode "$WORK/authority/nats.creds")" = 600 &&
		test "$(mode "$WORK/authority/system.creds")" = 600'
check "bus.conf holds the operator, the system account and a resolver; no user, no password" \
	eval 'grep -q "^operator: " "$WORK/nats/bus.conf" && grep -q "^system_account: " "$WORK/nats/bus.conf" &&
		grep -q "type: full" "$WORK/nats/bus.conf" && ! grep -qi -e password -e "users" "$WORK/nats/bus.conf"'
check "keyadm bus init a second time is refused, and writes nothing" \
	eval '! ka bus init --out "$WORK/nats2" 2>"$WORK/err" && grep -q "runs once" "$WORK/err" && test ! -e "$WORK/nats2"'
f_bus_start
f_servers
f_syncd_start authority
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name org-one
ka_key KB locations api-key create --location-id "$LOC_B" --user vkt-bea --name loc-b
[ -n "$K_TOKEN" ] && [ -n "$KB_TOKEN" ] || { echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }
check "the authority publishes on the operator-mode bus (sync wait 0)" f_sync_wait 60
check "... and takes join requests (within 30 s)" \
	f_until 30 grep -q "taking join requests" "$WORK/authority/syncd.log"

# ---- a machine joins ------------------------------------------------------------------------------
ka --json machines join-token --location-id "$LOC_A" --ttl 10m >"$WORK/t1.json"
jq -r .token "$WORK/t1.json" >"$WORK/M1.token"
T1_ID=$(jq -r .id "$WORK/t1.json")
check "machines join-token prints {token, id, expires_at, uses}" \
	eval 'jq -e "(.token | startswith(\"vkj1.\")) and .uses == 1 and (.expires_at | type) == \"string\"" "$WORK/t1.json" >/dev/null'
# the join runs with --token-file: its command line, as ps shows it, is read while it runs
mkdir -p "$WORK/M1/store"
"$SYNCD" join --token-file "$WORK/M1.token" --name M1 --config "$WORK/M1/viamkey.conf" \
	--db "$WORK/M1/store/keys.db" >"$WORK/M1.join.out" 2>"$WORK/M1.join.err" &
JOIN=$!
: >"$WORK/cmdlines"
while kill -0 "$JOIN" 2>/dev/null; do
	tr '\0' ' ' <"/proc/$JOIN/cmdline" >>"$WORK/cmdlines" 2>/dev/null
	echo >>"$WORK/cmdlines"
	sleep 0.05
done
st=0
wait "$JOIN" || st=$?
check "viamkey-syncd join with a token exits 0 and prints the machine's ID" \
	eval 'test "$st" -eq 0 && grep -qE "^[0-9a-f-]{36}$" "$WORK/M1.join.out" || { cat "$WORK/M1.join.err"; false; }'
M1=$(cat "$WORK/M1.join.out")
echo "M1 $M1 $LOC_A $ORG" >>"$WORK/machines"
printf 'heartbeat_interval = 1s\n[pam]\nrole = operator\nfail_delay_ms = 0\n' >>"$WORK/M1/viamkey.conf"
mkdir -p "$WORK/M1/pam.d"
pam_service "$WORK/M1/pam.d/viamkey-test" "$WORK/M1/viamkey.conf"
check "the machine exists in the authority's tree, in the token's location, named M1" \
	eval 'ka --json machines list --all | jq -e --arg id "$M1" --arg loc "$LOC_A" "any(.[]; .id == \$id and .location_id == \$loc and .name == \"M1\")" >/dev/null'
check "its config is 0644 and trusts the root; its credentials beside the store, 0600" \
	eval 'test "$(mode "$WORK/M1/viamkey.conf")" = 644 && grep -q "^root_key = $ROOT_KEY\$" "$WORK/M1/viamkey.conf" &&
		test "$(mode "$WORK/M1/store/nats.creds")" = 600'
check "its replica is in step: the organization's key is there, and logs in (keyadm check)" \
	f_check M1 vkt-ann "$K_TOKEN"
f_syncd_start M1
check "its daemon runs on the joined identity: sync wait 0" f_sync_wait 60
check "a real PAM login with the key on M1" f_login M1 vkt-ann "$K_TOKEN"
logins_of() { ka --json events --kind login --machine-id "$1" | jq -e --arg u "$2" '[.[] | select(.user == $u)] | length > 0' >/dev/null; }
check "... and it reaches the authority's events: a joined machine's user may send them (within 10 s)" \
	f_until 10 logins_of "$M1" vkt-ann

# ---- refusals: exit 1, and nothing written --------------------------------------------------------------
machines_now() { ka --json machines list --all | jq length; }
N0=$(machines_now)
# refused TOKEN_FILE WHY...: a join with it exits 1, says WHY, writes nothing, adds no machine
refused() {
	r_tok=$1
	shift
	rm -rf "$WORK/X" "$WORK/Xs"
	mkdir -p "$WORK/X" "$WORK/Xs"
	r_st=0
	"$SYNCD" join --token-file "$r_tok" --name X --config "$WORK/X/viamkey.conf" \
		--db "$WORK/Xs/keys.db" >"$WORK/X.out" 2>"$WORK/X.err" </dev/null || r_st=$?
	[ "$r_st" -eq 1 ] && grep -q "$*" "$WORK/X.err" && [ ! -s "$WORK/X.out" ] &&
		[ -z "$(ls -A "$WORK/X")$(ls -A "$WORK/Xs")" ] && [ "$(machines_now)" = "$N0" ] ||
		{ echo "  (status $r_st: $(cat "$WORK/X.err"); left: $(ls -A "$WORK/X" "$WORK/Xs" | tr '\n' ' '))"; return 1; }
}
# a token's bus user ends with its last use, its revocation or its time (its JWT's
# expiry): the bus itself refuses it, before the authority is asked
REFUSED="the bus refused the token's user"
# (the authority ends the used token's bus user after the join answered: the bus may take a moment)
check "a used token is refused: the bus refuses its user (within 10 s)" \
	f_until 10 refused "$WORK/M1.token" "$REFUSED"
ka machines join-token --location-id "$LOC_A" --ttl 1s >"$WORK/expiring.token" 2>/dev/null
sleep 2
check "an expired token is refused: the bus refuses its user" refused "$WORK/expiring.token" "$REFUSED"
ka --json machines join-token --location-id "$LOC_A" >"$WORK/r.json" 2>/dev/null
jq -r .token "$WORK/r.json" >"$WORK/revoked.token"
check "join-tokens revoke (exit 0)" ka machines join-tokens revoke --id "$(jq -r .id "$WORK/r.json")"
check "a revoked token is refused: the bus refuses its user (within 10 s)" \
	f_until 10 refused "$WORK/revoked.token" "$REFUSED"
# the token's JSON, and a token made again from changed JSON
tok_json() {
	t_b64=$(sed 's/^vkj1\.//' "$1")
	while [ $((${#t_b64} % 4)) -ne 0 ]; do t_b64="$t_b64="; done
	printf '%s' "$t_b64" | basenc --base64url -d
}
tok_make() { printf 'vkj1.%s\n' "$(basenc --base64url -w0 | tr -d '=')"; }
ka machines join-token --location-id "$LOC_A" >"$WORK/good.token" 2>/dev/null
tok_json "$WORK/good.token" | jq -c '.secret |= (if startswith("0") then "1" else "0" end) + .[1:]' |
	jq -cj . | tok_make >"$WORK/altered.token"
check "a token whose secret was altered is refused: does not know this token" \
	refused "$WORK/altered.token" "does not know this token"
tok_json "$WORK/good.token" | jq -c '.servers = "nats://127.0.0.1:1"' | jq -cj . | tok_make >"$WORK/nobus.token"
check "a token naming a bus that is not there is refused: cannot connect" refused "$WORK/nobus.token" "cannot connect"
check "a config whose directory is not there is refused before the authority is asked" \
	eval '! "$SYNCD" join --token-file "$WORK/good.token" --name Z --config "$WORK/Z/viamkey.conf" \
		--db "$WORK/Xs/keys.db" 2>"$WORK/err" </dev/null && grep -q "is not a directory" "$WORK/err" &&
		test ! -e "$WORK/Z" && test "$(machines_now)" = "$N0"'
printf 'vkj1.not-a-token\n' >"$WORK/junk.token"
check "text that is no token is refused: not a join token" refused "$WORK/junk.token" "not a join token"
mkdir -p "$WORK/Y"
printf '; mine\n[pam]\nrole = viewer\n' >"$WORK/Y/viamkey.conf"
check "an existing config without --force is refused, and stays as it was" \
	eval '! "$SYNCD" join --token-file "$WORK/good.token" --name Y --config "$WORK/Y/viamkey.conf" --db "$WORK/Y/keys.db" 2>"$WORK/err" </dev/null &&
		grep -q "exists: --force replaces it" "$WORK/err" && test "$(sed -n 3p "$WORK/Y/viamkey.conf")" = "role = viewer" && test "$(machines_now)" = "$N0"'
# a host that made a store of its own first (keyadm init, a key): its daemon would
# refuse it as the replica, so join refuses before the authority is asked
mkdir -p "$WORK/S"
"$KEYADM" --db "$WORK/S/keys.db" --json init --org "S org" --location "S location" --machine S \
	>"$WORK/S/init.json"
"$KEYADM" --db "$WORK/S/keys.db" machines api-key create --machine-id "$(jq -r .machine.id "$WORK/S/init.json")" \
	--user vkt-sam --role operator >/dev/null 2>&1
# store_refused DB WHY: a join with the good token and the replica at DB exits 1,
# says WHY, writes no config or credentials, adds no machine
store_refused() {
	s_st=0
	"$SYNCD" join --token-file "$WORK/good.token" --name S --config "$WORK/S/viamkey.conf" \
		--db "$1" >"$WORK/S.out" 2>"$WORK/S.err" </dev/null || s_st=$?
	[ "$s_st" -eq 1 ] && grep -q "$2" "$WORK/S.err" && [ ! -s "$WORK/S.out" ] &&
		[ ! -e "$WORK/S/viamkey.conf" ] && [ ! -e "$(dirname "$1")/nats.creds" ] &&
		[ "$(machines_now)" = "$N0" ] ||
		{ echo "  (status $s_st: $(cat "$WORK/S.err"))"; return 1; }
}
check "a store with keys of its own at the replica's path is refused, and nothing is written" \
	store_refused "$WORK/S/keys.db" "holds keys of its own"
check "the authority's store as the replica is refused, and nothing is written" \
	store_refused "$WORK/authority/store/keys.db" "is the fleet's authority"
# M2 has the package's config, comments only: join replaces it without --force
mkdir -p "$WORK/M2"
printf '; viamkey.conf(5)\n;[sync]\n\n# servers = nats://bus:4222\n' >"$WORK/M2/viamkey.conf"
check "the good token still joins a host after all that (M2, location A), over a config of comments only" \
	eval 'f_join M2 "$LOC_A" "$ORG" "$WORK/good.token" && grep -q "^\[sync\]" "$WORK/M2/viamkey.conf"'
check "and M4 joins location C of the other organization" f_join M4 "$LOC_C" "$ORG2"
f_syncd_start M2
f_syncd_start M4
check "sync wait 0 with three joined machines" f_sync_wait 60

# ---- what the token's bus user and a machine's may do -------------------------------------------------
printf '%s\n' "$(ka machines join-token --location-id "$LOC_A" 2>/dev/null)" >"$WORK/spy.token"
tok_json "$WORK/spy.token" >"$WORK/spy.json"
SPY_ID=$(jq -r .id "$WORK/spy.json")
{
	echo "-----BEGIN NATS USER JWT-----"
	jq -r .jwt "$WORK/spy.json"
	echo "------END NATS USER JWT------"
	echo
	echo "-----BEGIN USER NKEY SEED-----"
	jq -r .seed "$WORK/spy.json"
	echo "------END USER NKEY SEED------"
} >"$WORK/spy.creds"
spy() { "$VK_BUS" --creds "$WORK/spy.creds" --inbox "_INBOX.join-$SPY_ID" "$SERVERS" "$@"; }
check "the token's user may not read a scope directly" \
	eval 'test "$(spy request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.o.$ORG.t")" = denied'
check "... nor the stream's info" eval 'test "$(spy request "\$JS.API.STREAM.INFO.KV_$BUCKET" "{}")" = denied'
spy listen "_INBOX.join-$SPY_ID.end" "_INBOX.$M1.>" >/dev/null 2>"$WORK/spy.err" &
SPY=$!
f_track spy "$SPY"
check "... nor listen on M1's inbox: the server refuses the subscription (within 10 s)" \
	f_until 10 eval 'grep -q "Subscription Violation.*Subject \"_INBOX.$M1.>\"" "$WORK"/nats/n?.log'
f_stop "$SPY"
f_untrack spy "$SPY"
check "... but may send a join request (answered: a wrong one, refused)" \
	eval 'spy request "vkjoin.$BUCKET" "{}" | grep -q "refused"'
# the authority's answer goes where the request's reply subject says; crossing from the
# machines' account into the bucket's, nats-server maps it to a reply of its own
f_stream >"$WORK/stream.before"
for r in "\$JS.API.STREAM.PURGE.KV_$BUCKET" "\$JS.API.STREAM.DELETE.KV_$BUCKET" "\$KV.$BUCKET.hb"; do
	spy publish "vkjoin.$BUCKET" "{}" "$r" >/dev/null 2>&1
done
sleep 1
check "... and an answer aimed at the stream's purge, delete or an entry through the reply subject acts on nothing" \
	eval 'f_stream >"$WORK/stream.after" && [ "$(jq .state.messages "$WORK/stream.after")" -ge "$(jq .state.messages "$WORK/stream.before")" ] &&
		[ "$(jq .state.first_seq "$WORK/stream.after")" = "$(jq .state.first_seq "$WORK/stream.before")" ] &&
		[ "$(jq -r .config.name "$WORK/stream.after")" = "KV_$BUCKET" ]'
m1bus() { "$VK_BUS" --creds "$WORK/M1/store/nats.creds" --inbox "_INBOX.$M1" "$SERVERS" "$@"; }
check "M1's user reads its own scope directly" \
	eval 'm1bus request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.m.$M1.t" | grep -q "vk1."'
check "... but not M4's, nor location C's" \
	eval 'test "$(m1bus request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.m.$(f_id M4).t")" = denied &&
		test "$(m1bus request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.l.$LOC_C.t")" = denied'

# ---- a signature libnats 3.4.1 leaves out -----------------------------------------------------------
# It sends no signature of the nonce whose first byte is zero (one connection in 256), and the
# server refuses the user: a join failed that way once. dial.c connects again then (its rule 3).
# vk_dial connects as a token's user through dial.c, 500 times a round, until a round in which
# one of its signatures began with a zero byte (20 at most: none in 10,000 dials, one time in
# 10^17); no dial may be refused. To one node: after a refusal nats.c tries the next node it
# knows, those a node told it of too, and only the last one's reaches the caller; dial.c ignores
# those, but the daemons do not (test-packages.sh, with a bus of one node, tries the daemon's way).
ka machines join-token --location-id "$LOC_A" >"$WORK/dial.token" 2>/dev/null
dial_rounds() {
	d_round=0
	while [ "$d_round" -lt 20 ]; do
		d_round=$((d_round + 1))
		"$VK_DIAL" "$WORK/dial.token" 500 "${SERVERS%%,*}" >"$WORK/dial.out" 2>&1 || return 1
		grep -q '^500 dials, 0 refused, [1-9][0-9]* zero signatures$' "$WORK/dial.out" && return 0
	done
	return 1
}
check "a token's user dialing as the join does: no dial refused in rounds of 500, up to one that signed a nonce with a zero first byte" \
	dial_rounds

# ---- the token's secret, nowhere ------------------------------------------------------------------------
SECRET=$(tok_json "$WORK/M1.token" | jq -r .secret)
check "the token's secret is in no daemon's or node's log" \
	eval '! grep -rqF -e "$SECRET" -e "$(cat "$WORK/M1.token")" "$WORK"/*/syncd.log "$WORK"/nats/n?.log "$WORK/M1.join.err"'
check "... nor in the join's command line, read while it ran ($(grep -c . "$WORK/cmdlines") reads)" \
	eval 'grep -q "token-file" "$WORK/cmdlines" && ! grep -qF "$(cat "$WORK/M1.token")" "$WORK/cmdlines"'
check "... nor in the authority's store, nor M1's" \
	eval 'sqlite3 "$WORK/authority/store/keys.db" .dump >"$WORK/a.dump" && sqlite3 "$WORK/M1/store/keys.db" .dump >"$WORK/m1.dump" &&
		grep -q "join_tokens" "$WORK/a.dump" && ! grep -qF "$SECRET" "$WORK/a.dump" "$WORK/m1.dump"'

# ---- move ------------------------------------------------------------------------------------------
cp "$WORK/M1/store/nats.creds" "$WORK/M1.old.creds"
check "machines move M1 to location B (exit 0)" ka machines move --machine-id "$M1" --location-id "$LOC_B"
check "M1 takes its new identity, connects again, and the location-B key works there (within 30 s)" \
	f_wait_check M1 vkt-bea "$KB_TOKEN" 0
check "M1's credentials hold a new JWT, the same seed" \
	eval 'test -s "$WORK/M1/store/nats.creds" && test -s "$WORK/M1.old.creds" && ! cmp -s "$WORK/M1/store/nats.creds" "$WORK/M1.old.creds" && test "$(tail -n 2 "$WORK/M1/store/nats.creds" | head -n 1)" = "$(tail -n 2 "$WORK/M1.old.creds" | head -n 1)"'
check "sync wait 0 after the move" f_sync_wait 60
oldbus() { "$VK_BUS" --creds "$WORK/M1.old.creds" --inbox "_INBOX.$M1" "$SERVERS" "$@"; }
old_gone() { ! oldbus request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.m.$M1.t" 2>/dev/null | grep -q "vk1."; }
check "the older JWT ends once M1 acknowledged the move (within 10 s)" \
	eval 'test -s "$WORK/M1.old.creds" && f_until 10 old_gone'

# ---- an identity an older viamkey issued ----------------------------------------------------------
# M2's recorded JWT made one with other claims (M1's), as a viamkey whose
# machines may do less would have issued it: a restarted authority issues
# M2's again, for the same user key, and M2 takes it
M2ID=$(f_id M2)
cp "$WORK/M2/store/nats.creds" "$WORK/M2.old.creds"
f_syncd_stop authority
sqlite3 "$WORK/authority/store/keys.db" "UPDATE machine_identities SET jwt = (SELECT jwt FROM machine_identities
	WHERE machine_id = '$M1') WHERE machine_id = '$M2ID'"
f_syncd_start authority
check "a restarted authority issues again the identity an older viamkey issued (within 15 s)" \
	f_until 15 grep -q "issued 1 machines' bus identities again" "$WORK/authority/syncd.log"
check "... M2 takes it: new JWT, same seed (within 30 s)" \
	f_until 30 eval '! cmp -s "$WORK/M2/store/nats.creds" "$WORK/M2.old.creds" &&
		test "$(tail -n 2 "$WORK/M2/store/nats.creds" | head -n 1)" = "$(tail -n 2 "$WORK/M2.old.creds" | head -n 1)"'
check "... and logs in, its events reaching the authority (within 30 s)" \
	eval 'f_wait_login M2 vkt-ann "$K_TOKEN" 0 && f_until 30 logins_of "$M2ID" vkt-ann'
check "... the refresh is in the audit trail" eval 'ka events --kind admin | grep -q "bus.refresh"'

# ---- delete ----------------------------------------------------------------------------------------
f_syncd_stop M4
m4bus() { "$VK_BUS" --creds "$WORK/M4/store/nats.creds" --inbox "_INBOX.$(f_id M4)" "$SERVERS" "$@"; }
check "before the delete, M4's user reads its scope" \
	eval 'm4bus request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.m.$(f_id M4).t" | grep -q "vk1."'
t0=$(date +%s%N)
check "machines delete M4 (exit 0)" ka machines delete --machine-id "$(f_id M4)"
m4_gone() { m4bus request "vkack.$BUCKET.$(f_id M4)" "" 2>&1 | grep -q "cannot connect"; }
gone=0
f_until 10 m4_gone || gone=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "within 10 s M4's user can no longer connect ($ms ms after the delete)" test "$gone" -eq 0
check "... nor read its scope" \
	eval '! m4bus request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.m.$(f_id M4).t" 2>/dev/null | grep -q "vk1."'
check_end
