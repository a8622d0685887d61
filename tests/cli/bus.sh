#!/bin/sh
# keyadm's side of joining a machine (SPEC §9), without a bus or a daemon:
# bus init (only on an authority, once; its files made with their modes, or
# none of them), bus credentials, machines join-token (TTL and uses, the
# token printed once and kept nowhere), join-tokens list and revoke, and
# machines move and delete of a machine with and without a bus identity.
# Every refusal exits as documented and leaves the store, and the files
# around it, as they were; no command prints a secret seed.
# shellcheck disable=SC2034,SC2317 # what the eval'd conditions use
. "$(dirname "$0")/lib.sh"

# Everything keyadm says is also kept in $T/said, to look for secrets in.
run() {
	RC=0
	LAST="$*"
	"$@" >"$T/out" 2>"$T/err" || RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
	cat "$T/out" "$T/err" >>"$T/said"
}
: >"$T/said"

# conf [NO_KEY]: the config, with the [sync] paths bus init writes (under
# $T/etc); NO_KEY (credentials or servers) leaves that key out.
ETC=$T/etc
conf() {
	{
		echo "[sync]"
		[ "${1:-}" = servers ] || echo "servers = nats://127.0.0.1:4222"
		echo "signing_key = $ETC/signing.key"
		[ "${1:-}" = credentials ] || echo "credentials = $ETC/nats.creds"
		echo "account_key = $ETC/bus.nk"
		echo "system_credentials = $ETC/system.creds"
	} >"$T/viamkey.conf"
}
VIAMKEY_CONFIG=$T/viamkey.conf
mkdir "$ETC"
conf

# The files bus init and bus credentials may write: names, modes and content.
files() {
	(cd "$T" && find etc* nats* -exec stat -c '%n %a %F' {} + 2>/dev/null;
		find etc* nats* -type f -exec sha256sum {} + 2>/dev/null) | sort
}
# refused_files N DESC ARGS...: refused (lib.sh), and no file written or changed either.
refused_files() {
	files >"$T/files.before"
	refused "$@"
	files >"$T/files.after"
	expect "... and no file was written or changed" cmp -s "$T/files.before" "$T/files.after"
}
mode() { stat -c %a "$1"; }
# A NATS nkey seed (operator, account or user) anywhere in a file.
SEED_RE='(^|[^A-Z2-7])S[OAU]A[A-Z2-7]{55}([^A-Z2-7]|$)'
has_seed() { grep -Eq "$SEED_RE" "$@"; }
# The JSON inside a join token (vkj1. and base64url).
tok_json() {
	t_b64=${1#vkj1.}
	while [ $((${#t_b64} % 4)) -ne 0 ]; do t_b64="$t_b64="; done
	printf '%s' "$t_b64" | tr '_-' '/+' | base64 -d
}
# The claims of a JWT (its second part).
jwt_claims() {
	tok_json "vkj1.$(printf '%s' "$1" | cut -d. -f2)"
}
dump() { sqlite3 -readonly "$DB" .dump; }
q() { sqlite3 -readonly "$DB" "$1"; }

setup_store
must "a second location" --json locations create --org-id "$ORG" --name Branch
LOC2=$(jqr .id)
must "a second machine, in HQ" --json machines create --location-id "$LOC" --name m2
M2=$(jqr .id)

# ---- a standalone store ------------------------------------------------------------------------
mkdir "$T/nats"
refused_files 1 "bus init on a standalone store is refused" bus init --out "$T/nats"
expect_err_re "... saying it is not the authority" "not the fleet's authority"
refused 1 "join-token on a standalone store is refused" machines join-token --location-id "$LOC"
refused 1 "join-tokens list on a standalone store is refused" machines join-tokens list
refused 1 "join-tokens revoke on a standalone store is refused" machines join-tokens revoke --id "$NOSUCH"
refused_files 1 "bus credentials on a standalone store is refused" bus credentials --out "$ETC/c.creds"

# ---- usage -------------------------------------------------------------------------------------------
refused_files 2 "bus init without --out is a usage error" bus init
expect_err_re "... naming --out" "--out is required"
conf credentials
refused_files 2 "bus init without [sync] credentials is a usage error" bus init --out "$T/nats"
expect_err_re "... naming it" "set \[sync\] credentials"
conf
refused 2 "join-token without --location-id is a usage error" machines join-token
refused 2 "join-token with a location ID that is no UUID is a usage error" \
	machines join-token --location-id nope
refused 2 "join-tokens revoke without --id is a usage error" machines join-tokens revoke
refused 2 "join-tokens revoke with an ID that is no UUID is a usage error" \
	machines join-tokens revoke --id nope
refused_files 2 "bus credentials without --out is a usage error" bus credentials

# ---- an authority before bus init --------------------------------------------------------------
must "authority init" authority init
refused 1 "join-token before bus init is refused" machines join-token --location-id "$LOC"
expect_err_re "... naming bus init" "keyadm bus init"
refused_files 1 "bus credentials before bus init is refused" bus credentials --out "$ETC/c.creds"
must "join-tokens list before bus init" --json machines join-tokens list
expect_json "... is an empty array" '. == []'

# ---- bus init: all its files, or none ----------------------------------------------------------------
refused_files 1 "bus init into a directory that is not there is refused" bus init --out "$T/nats-absent"
expect "... and does not make it" test ! -e "$T/nats-absent"
# a file already there, early or late in what bus init writes: the ones made before it go again
printf 'mine\n' >"$ETC/bus.nk"
refused_files 1 "bus init with the account key file there already is refused" bus init --out "$T/nats"
expect_err_re "... naming the file" "bus.nk"
rm "$ETC/bus.nk"
printf 'mine\n' >"$ETC/system.creds"
refused_files 1 "bus init with the system account's .creds there already is refused" bus init --out "$T/nats"
rm "$ETC/system.creds"
printf 'mine\n' >"$T/nats/operator.nk"
refused_files 1 "bus init with DIR/operator.nk there already is refused" bus init --out "$T/nats"
rm "$T/nats/operator.nk"
printf 'include me\n' >"$T/nats/bus.conf"
refused_files 1 "bus init with DIR/bus.conf there already is refused" bus init --out "$T/nats"
rm "$T/nats/bus.conf"
# a store that refuses the record at the end (one of the bus's rows there already, as a corrupt
# store may hold): the files made by then are removed
sqlite3 "$DB" "INSERT INTO meta (name, value) VALUES ('bus_machines_sent', 'x')"
refused_files 1 "bus init whose store refuses the record removes the files it made" \
	bus init --out "$T/nats"
sqlite3 "$DB" "DELETE FROM meta WHERE name = 'bus_machines_sent'"

must "bus init" --json bus init --out "$T/nats"
expect_json "it prints {operator, system_account, vk_account, machines_account, bus_conf, operator_seed}" \
	'keys_of(.) == ["bus_conf", "machines_account", "operator", "operator_seed", "system_account", "vk_account"]
	 and (.operator | test("^O[A-Z2-7]{55}$"))
	 and ([.system_account, .vk_account, .machines_account] | all(test("^A[A-Z2-7]{55}$")))
	 and .bus_conf == $d + "/bus.conf" and .operator_seed == $d + "/operator.nk"' --arg d "$T/nats"
SYS=$(jqr .system_account)
VK=$(jqr .vk_account)
MACHINES=$(jqr .machines_account)
OPERATOR=$(jqr .operator)
expect "DIR/operator.nk is 0600 and holds the operator's seed alone" \
	eval 'test "$(mode "$T/nats/operator.nk")" = 600 && grep -Eqx "SOA[A-Z2-7]{55}" "$T/nats/operator.nk" &&
		test "$(wc -l <"$T/nats/operator.nk")" = 1'
expect "the account key file ([sync] account_key) is 0600" test "$(mode "$ETC/bus.nk")" = 600
expect "the authority's .creds ([sync] credentials) is 0600, a user's JWT and seed" \
	eval 'test "$(mode "$ETC/nats.creds")" = 600 && grep -q "BEGIN NATS USER JWT" "$ETC/nats.creds" &&
		grep -Eqx "SUA[A-Z2-7]{55}" "$ETC/nats.creds"'
expect "the system account's .creds ([sync] system_credentials) is 0600" \
	eval 'test "$(mode "$T/etc/system.creds")" = 600 && grep -q "BEGIN NATS USER JWT" "$ETC/system.creds"'
expect "the operator's own seed is nowhere else: not in the online keys, the .creds, the store" \
	eval '! grep -qF "$(cat "$T/nats/operator.nk")" "$ETC/bus.nk" "$ETC/nats.creds" "$ETC/system.creds" &&
		! dump | grep -qF "$(cat "$T/nats/operator.nk")"'
expect "bus.conf names the operator's JWT, the system account and a full resolver" \
	eval 'grep -q "^operator: \"ey" "$T/nats/bus.conf" && grep -qx "system_account: \"$SYS\"" "$T/nats/bus.conf" &&
		grep -q "type: full" "$T/nats/bus.conf"'
expect "... and preloads the three accounts' JWTs" \
	eval '(for a in "$SYS" "$VK" "$MACHINES"; do grep -q "^  $a: \"ey" "$T/nats/bus.conf" || exit 1; done)'
expect "... with no user, password or seed" \
	eval '! grep -qi -e password -e users -e authorization "$T/nats/bus.conf" && ! has_seed "$T/nats/bus.conf"'
expect "the operator's JWT in bus.conf is the operator's own" \
	eval 'jwt_claims "$(sed -n "s/^operator: \"\(.*\)\"$/\1/p" "$T/nats/bus.conf")" |
		jq -e --arg o "$OPERATOR" ".sub == \$o and .iss == \$o and .nats.system_account == \$s" --arg s "$SYS" >/dev/null'
expect "the store keeps the bus's public keys, and no seed" \
	eval 'test "$(q "SELECT value FROM meta WHERE name = '\''bus_operator'\''")" = "$OPERATOR" && ! dump | has_seed'
files >"$T/files.made"
refused 1 "bus init a second time is refused" bus init --out "$T/nats2"
expect_err_re "... saying it runs once" "runs once"
expect "... and writes nothing: DIR2 is not made, the files are as they were" \
	eval 'test ! -e "$T/nats2" && files | cmp -s - "$T/files.made"'
mkdir "$T/nats3"
refused 1 "... into an empty directory too" bus init --out "$T/nats3"
expect "... which stays empty" test -z "$(ls -A "$T/nats3")"
rmdir "$T/nats3"
ka --json events
expect_json "the audit trail records bus.init, with the operator's public key" \
	'any(.[]; .action == "bus.init" and (.detail | contains($o)))' --arg o "$OPERATOR"

# ---- bus credentials -----------------------------------------------------------------------------
must "bus credentials" --json bus credentials --out "$ETC/standby.creds" --name standby-1.a_b
expect_json "it prints {user, credentials}" \
	'keys_of(.) == ["credentials", "user"] and (.user | test("^U[A-Z2-7]{55}$")) and .credentials == $f' \
	--arg f "$ETC/standby.creds"
CRED_USER=$(jqr .user)
expect "the file is 0600, a user's JWT, named as asked, signed by the VK account" \
	eval 'test "$(mode "$ETC/standby.creds")" = 600 &&
		jwt_claims "$(sed -n 2p "$ETC/standby.creds")" |
		jq -e --arg u "$CRED_USER" --arg vk "$VK" ".sub == \$u and .iss == \$vk and .name == \"standby-1.a_b\"" >/dev/null'
refused_files 1 "bus credentials over an existing file is refused" bus credentials --out "$ETC/standby.creds"
expect_err_re "... saying it is never overwritten" "never overwritten"
refused_files 1 "bus credentials into a directory that is not there is refused" \
	bus credentials --out "$ETC/absent/c.creds"
refused_files 2 "bus credentials with a name that has a space is a usage error" \
	bus credentials --out "$ETC/c.creds" --name "two words"
refused_files 2 "bus credentials with a name that has a quote is a usage error" \
	bus credentials --out "$ETC/c.creds" --name 'a"b'
mv "$ETC/bus.nk" "$ETC/bus.nk.away"
refused_files 1 "bus credentials without the account key file is refused" bus credentials --out "$ETC/c.creds"
mv "$ETC/bus.nk.away" "$ETC/bus.nk"
ka --json events
expect_json "the audit trail records bus.credentials, with the user and not its seed" \
	'any(.[]; .action == "bus.credentials" and (.detail | contains($u)))' --arg u "$CRED_USER"

# ---- machines join-token -------------------------------------------------------------------------------
refused 2 "--ttl 0s is a usage error" machines join-token --location-id "$LOC" --ttl 0s
refused 2 "--ttl 8d is a usage error (at most 7d)" machines join-token --location-id "$LOC" --ttl 8d
refused 2 "--ttl 604801s is a usage error" machines join-token --location-id "$LOC" --ttl 604801s
refused 2 "--ttl 2w is a usage error" machines join-token --location-id "$LOC" --ttl 2w
refused 2 "--ttl junk is a usage error" machines join-token --location-id "$LOC" --ttl junk
refused 2 "--ttl without a unit is a usage error" machines join-token --location-id "$LOC" --ttl 60
refused 2 "--ttl -5s is a usage error" machines join-token --location-id "$LOC" --ttl -5s
refused 2 "--uses 0 is a usage error" machines join-token --location-id "$LOC" --uses 0
refused 2 "--uses 100001 is a usage error" machines join-token --location-id "$LOC" --uses 100001
refused 2 "--uses of 20 digits is a usage error" machines join-token --location-id "$LOC" \
	--uses 99999999999999999999
refused 2 "--uses -1 is a usage error" machines join-token --location-id "$LOC" --uses -1
refused 2 "--uses junk is a usage error" machines join-token --location-id "$LOC" --uses junk
refused 2 "--uses 2junk is a usage error" machines join-token --location-id "$LOC" --uses 2junk
refused 2 "--uses 0x10 is a usage error" machines join-token --location-id "$LOC" --uses 0x10
refused 2 "--uses ' 5' is a usage error" machines join-token --location-id "$LOC" --uses " 5"
refused 1 "join-token for an unknown location is refused" machines join-token --location-id "$NOSUCH"
expect_err_re "... naming it" "no location with ID $NOSUCH"
conf servers
refused 2 "join-token without [sync] servers is a usage error" machines join-token --location-id "$LOC"
conf

before=$(date +%s)
must "join-token" --json machines join-token --location-id "$LOC"
after=$(date +%s)
expect_json "it prints {token, id, expires_at, uses 1}" \
	'keys_of(.) == ["expires_at", "id", "token", "uses"] and .uses == 1 and (.expires_at | ts)
	 and (.token | startswith("vkj1.")) and (.id | test("^[0-9a-f-]{36}$"))'
expect_json "... expiring in 1 h by default" \
	'(.expires_at | fromdateiso8601) as $e | $e >= ($b + 3600) and $e <= ($a + 3600)' \
	--argjson b "$before" --argjson a "$after"
TOK1=$(jqr .token)
TOK1_ID=$(jqr .id)
TOK1_EXP=$(jqr '.expires_at | fromdateiso8601')
tok_json "$TOK1" >"$T/tok1.json"
SECRET1=$(jq -r .secret "$T/tok1.json")
SEED1=$(jq -r .seed "$T/tok1.json")
expect "the token carries its ID, a secret of 64 hex digits, the bus, and a user seed" \
	eval 'jq -e --arg id "$TOK1_ID" ".id == \$id and (.secret | test(\"^[0-9a-f]{64}$\")) and
		.servers == \"nats://127.0.0.1:4222\" and (.seed | test(\"^SUA[A-Z2-7]{55}$\"))" "$T/tok1.json" >/dev/null'
expect "its bus user's JWT ends with the token and may only ask to join" \
	eval 'jwt_claims "$(jq -r .jwt "$T/tok1.json")" |
		jq -e --arg ex "$TOK1_EXP" --arg m "$MACHINES" \
		"(.exp | tostring) == \$ex and .nats.issuer_account == \$m and .nats.pub.allow == [\"vkjoin.viamkey\"]" >/dev/null'
expect "the store keeps neither the token, its secret nor its seed" \
	eval '! dump | grep -qiF -e "$TOK1" -e "$SECRET1" -e "$SEED1"'
expect "... but one row for it, in its location, one use, none used" \
	test "$(q "SELECT location_id || ' ' || uses || ' ' || used || ' ' || (revoked_at IS NULL) FROM join_tokens WHERE id = '$TOK1_ID'")" = "$LOC 1 0 1"

before=$(date +%s)
must "join-token --ttl 7d --uses 5" --json machines join-token --location-id "$LOC2" --ttl 7d --uses 5
after=$(date +%s)
expect_json "... expires in 7 days, with 5 uses" \
	'(.expires_at | fromdateiso8601) as $e | $e >= ($b + 604800) and $e <= ($a + 604800) and .uses == 5' \
	--argjson b "$before" --argjson a "$after"
TOK2=$(jqr .token)
TOK2_ID=$(jqr .id)
must "join-token --ttl 1w (7 days) --uses 100000" --json machines join-token --location-id "$LOC" --ttl 1w --uses 100000
expect_json "... 100000 uses" '.uses == 100000'
TOK3=$(jqr .token)
TOK3_ID=$(jqr .id)
must "join-token without --json" machines join-token --location-id "$LOC2" --ttl 90s
TOK4=$OUT
expect "... prints the token alone on stdout, one line" \
	eval 'test "$(printf "%s\n" "$OUT" | wc -l)" = 1 && printf "%s" "$OUT" | grep -Eqx "vkj1\.[A-Za-z0-9_-]+"'
TOK4_ID=$(tok_json "$TOK4" | jq -r .id)
expect_err_re "... and on stderr its ID and uses" "^Join token $TOK4_ID: 1 use\(s\), until "
expect_err_re "... and how to join with it" "viamkey-syncd join --token-file"
expect "no token is in the store" eval '! dump | grep -qF -e "$TOK2" -e "$TOK3" -e "$TOK4"'
ka --json events
expect_json "the audit trail records each token by its ID, never the token" \
	'([.[] | select(.action == "join_token.create")] | length) == 4
	 and ([.[] | select(.detail | test("vkj1|" + $s))] | length) == 0
	 and any(.[]; .action == "join_token.create" and (.detail | startswith($id)))' \
	--arg s "$SECRET1" --arg id "$TOK1_ID"

# ---- join-tokens list and revoke --------------------------------------------------------------------
must "join-tokens list" --json machines join-tokens list
expect_json "it lists the 4 tokens as {id, location_id, expires_at, uses, used, revoked}" \
	'length == 4 and all(.[]; keys_of(.) == ["expires_at", "id", "location_id", "revoked", "used", "uses"]
		and (.expires_at | ts) and .used == 0 and .revoked == false)
	 and (map([.id, .location_id, .uses]) | sort) == ([[$a, $l, 1], [$b, $l2, 5], [$c, $l, 100000], [$d, $l2, 1]] | sort)' \
	--arg a "$TOK1_ID" --arg b "$TOK2_ID" --arg c "$TOK3_ID" --arg d "$TOK4_ID" --arg l "$LOC" --arg l2 "$LOC2"
expect_out_lacks "... and no token" "vkj1."
must "join-tokens list, as a table" machines join-tokens list
expect_out_re "... one line per token under a header" "^ID +LOCATION +EXPIRES +USES +USED +REVOKED"
expect "... 5 lines, and no token" eval 'test "$(printf "%s\n" "$OUT" | wc -l)" = 5 && ! printf "%s" "$OUT" | grep -q vkj1'
refused 1 "revoking an unknown join token is refused" machines join-tokens revoke --id "$NOSUCH"
expect_err_re "... naming it" "no join token with ID $NOSUCH"
must "revoking a join token" --json machines join-tokens revoke --id "$TOK2_ID"
expect_json "it prints {id, revoked true}" 'keys_of(.) == ["id", "revoked"] and .id == $id and .revoked == true' \
	--arg id "$TOK2_ID"
ka --json machines join-tokens list
expect_json "join-tokens list shows it revoked, and the others not" \
	'map(select(.revoked) | .id) == [$id]' --arg id "$TOK2_ID"
expect "its bus user is revoked" \
	test "$(q "SELECT count(*) FROM bus_revocations r JOIN join_tokens j ON j.user_key = r.user_key WHERE j.id = '$TOK2_ID'")" = 1
refused 1 "revoking it again is refused" machines join-tokens revoke --id "$TOK2_ID"
expect_err_re "... saying it is revoked already" "revoked already"
must "revoking another, as text" machines join-tokens revoke --id "$TOK4_ID"
expect_out_re "... says so" "^Revoked join token $TOK4_ID"
ka --json events
expect_json "the audit trail records both revocations" \
	'[.[] | select(.action == "join_token.revoke") | .detail] == [$a, $b]' --arg a "$TOK2_ID" --arg b "$TOK4_ID"

# ---- machines move ---------------------------------------------------------------------------------------
refused 2 "move without --location-id is a usage error" machines move --machine-id "$M2"
refused 2 "move without --machine-id is a usage error" machines move --location-id "$LOC2"
refused 2 "move with a machine ID that is no UUID is a usage error" \
	machines move --machine-id nope --location-id "$LOC2"
refused 1 "moving an unknown machine is refused" machines move --machine-id "$NOSUCH" --location-id "$LOC2"
expect_err_re "... naming it" "no machine with ID $NOSUCH"
refused 1 "moving to an unknown location is refused" machines move --machine-id "$M2" --location-id "$NOSUCH"
expect_err_re "... naming it" "no location with ID $NOSUCH"
refused 1 "moving a machine to its own location is refused" machines move --machine-id "$M2" --location-id "$LOC"
expect_err_re "... saying it is there already" "already"
must "move a machine that never joined" --json machines move --machine-id "$M2" --location-id "$LOC2"
expect_json "it prints the machine, in its new location" '.id == $m and .location_id == $l' \
	--arg m "$M2" --arg l "$LOC2"
ka --json machines list --location-id "$LOC2"
expect_json "machines list shows it in the new location" 'map(.id) == [$m]' --arg m "$M2"
ka --json machines list --location-id "$LOC"
expect_json "... and no longer in the old one" 'all(.[]; .id != $m)' --arg m "$M2"
ka --json events
expect_json "the audit trail records machine.move" \
	'any(.[]; .action == "machine.move" and .detail == $m + " to location " + $l)' --arg m "$M2" --arg l "$LOC2"
expect "a machine that never joined is given no bus identity" \
	test "$(q "SELECT count(*) FROM machine_identities")" = 0

# a machine with a bus identity: the row the daemon's admission records, for a user of the bus
sqlite3 "$DB" "INSERT INTO machine_identities (machine_id, user_key, jwt, issued_at)
	VALUES ('$M2', '$CRED_USER', 'the admitted JWT', unixepoch() - 60)"
mv "$ETC/bus.nk" "$ETC/bus.nk.away"
refused 1 "moving a joined machine without the account key file is refused" \
	machines move --machine-id "$M2" --location-id "$LOC"
expect_err_re "... naming the file" "bus.nk"
mv "$ETC/bus.nk.away" "$ETC/bus.nk"
must "moving a joined machine back to HQ" machines move --machine-id "$M2" --location-id "$LOC"
expect_out "... says so" "Moved machine $M2"
JWT=$(q "SELECT jwt FROM machine_identities WHERE machine_id = '$M2'")
expect "its identity is issued again, for the same user, signed by the MACHINES account's key" \
	eval 'test "$(q "SELECT user_key FROM machine_identities WHERE machine_id = '\''$M2'\''")" = "$CRED_USER" &&
		jwt_claims "$JWT" | jq -e --arg u "$CRED_USER" --arg m "$MACHINES" --arg id "$M2" \
		".sub == \$u and .name == \$id and .nats.issuer_account == \$m" >/dev/null'
expect "... for its new location's scope, not the old one's" \
	eval 'jwt_claims "$JWT" | grep -qF ".l.$LOC." && ! jwt_claims "$JWT" | grep -qF "$LOC2"'
expect "the older JWT ends once the machine acknowledged the new one (a revocation after a revision)" \
	test "$(q "SELECT count(*) FROM bus_revocations WHERE user_key = '$CRED_USER' AND machine_id = '$M2' AND after_rev > 0")" = 1
ka --json events
expect_json "the audit trail records the move and the identity" \
	'any(.[]; .action == "machine.identity" and (.detail | contains($u)))' --arg u "$CRED_USER"

# ---- machines delete ----------------------------------------------------------------------------------
refused 1 "deleting an unknown machine is refused" machines delete --machine-id "$NOSUCH"
must "deleting the joined machine" machines delete --machine-id "$M2"
expect "its identity is gone, and its user revoked at once (no revision to wait for)" \
	eval 'test "$(q "SELECT count(*) FROM machine_identities")" = 0 &&
		test "$(q "SELECT count(*) FROM bus_revocations WHERE user_key = '\''$CRED_USER'\'' AND after_rev IS NULL")" = 1'

# ---- a location deleted with a live token ----------------------------------------------------------------
must "a location for a token that goes with it" --json locations create --org-id "$ORG" --name Gone
LOC3=$(jqr .id)
must "its token" --json machines join-token --location-id "$LOC3"
TOK5_ID=$(jqr .id)
TOK5_USER=$(q "SELECT user_key FROM join_tokens WHERE id = '$TOK5_ID'")
must "deleting the location" locations delete --location-id "$LOC3"
expect "its token is gone, and the token's bus user revoked with it" \
	eval 'test -n "$TOK5_USER" && test "$(q "SELECT count(*) FROM join_tokens WHERE id = '\''$TOK5_ID'\''")" = 0 &&
		test "$(q "SELECT count(*) FROM bus_revocations WHERE user_key = '\''$TOK5_USER'\'' AND after_rev IS NULL")" = 1'

# ---- a replica ---------------------------------------------------------------------------------------
mkdir "$T/replica"
sqlite3 "$DB" ".backup '$T/replica/keys.db'"
DB=$T/replica/keys.db
sqlite3 "$DB" "UPDATE meta SET value = 'replica' WHERE name = 'fleet_role'"
ETC=$T/etc-replica
mkdir "$ETC" "$T/nats-replica"
conf
refused_files 1 "bus init on a replica is refused" bus init --out "$T/nats-replica"
expect_err_re "... saying it is not the authority" "not the fleet's authority"
refused 1 "join-token on a replica is refused" machines join-token --location-id "$LOC"
refused 1 "join-tokens list on a replica is refused" machines join-tokens list
refused 1 "join-tokens revoke on a replica is refused" machines join-tokens revoke --id "$TOK1_ID"
refused_files 1 "bus credentials on a replica is refused" bus credentials --out "$ETC/c.creds"
refused 1 "machines move on a replica is refused, naming the authority" \
	machines move --machine-id "$MACH" --location-id "$LOC2"
expect_err_re "... naming the authority" "replica of the fleet's authority"

# ---- what keyadm said ----------------------------------------------------------------------------------
expect "no command printed a seed, on stdout or stderr" eval '! has_seed "$T/said"'
expect "... nor a token's secret, nor a seed in a token" eval '! grep -qiF -e "$SECRET1" -e "$SEED1" "$T/said"'
expect "... nor the account key file's seeds" eval '! grep -qF -f "$T/etc/bus.nk" "$T/said"'
expect "each token was printed once" \
	eval '(for t in "$TOK1" "$TOK2" "$TOK3" "$TOK4"; do test "$(grep -cF "$t" "$T/said")" = 1 || exit 1; done)'
finish
