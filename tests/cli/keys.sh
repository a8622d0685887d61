#!/bin/sh
# The three api-key create forms and the keys commands other than rotate and clone.
. "$(dirname "$0")/lib.sh"

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'
KEY_FIELDS='["authorizations", "break_glass", "created_at", "created_by", "disabled", "expires_at", "id", "last_used", "name", "preview", "protected", "secrets", "users"]'
ME=$(id -un)

setup_store
must "a second organization" --json organizations create --name Other
ORG2=$(jqr .id)
must "... with a location" --json locations create --org-id "$ORG2" --name L2
LOC2=$(jqr .id)
must "... and a machine" --json machines create --location-id "$LOC2" --name M2
M2=$(jqr .id)

# ---- api-key create -----------------------------------------------------------

ka organizations api-key create --org-id "$ORG" --user alice
expect_rc 0 "organizations api-key create"
expect_out_re "... prints the key ID" "^Key ID: [0-9a-f-]{36}\$"
expect_out_re "... and the token" "^Token:  vk_[A-Za-z0-9]{22}_[A-Za-z0-9]{49}\$"
expect_err_re "... and warns that it is shown once" "^keyadm: warning: .*shown only once"
KA=$(printf '%s\n' "$OUT" | sed -n 's/^Key ID: //p')
ka --json keys show --key-id "$KA"
expect_json "the key has every field of a key object" '(keys_of(.) - ["status"]) == $f' --argjson f "$KEY_FIELDS"
expect_json "... one owner grant on the organization (the default role)" \
	'.authorizations == [{role: "owner", resource_type: "organization", resource_id: $o}]' --arg o "$ORG"
expect_json "... its user" '.users == ["alice"]'
expect_json "... a default name key-<creation time>" '.name == "key-" + .created_at'
expect_json "... created_by the caller" '.created_by == $me' --arg me "$ME"
expect_json "... not disabled, not protected, no expiry, never used" \
	'.disabled == false and .protected == false and .expires_at == null and .last_used == null'
expect_json "... one live secret without expiry" \
	'(.secrets | length) == 1 and .secrets[0].expires_at == null and (.secrets[0].created_at | ts)'
expect_json "... a preview of the key-ID part only" '.preview | test("^vk_[A-Za-z0-9]{22}_…$")'
expect_json "... ID is a UUIDv4" '.id | test($re)' --arg re "$UUID_RE"

mkkey locations "$LOC" --user bob --user alice --user bob --role operator --name Bravo
KB=$KEY_ID
ka --json keys show --key-id "$KB"
expect_json "locations api-key create with --role, --name and several --user" \
	'.name == "Bravo" and .users == ["alice", "bob"] and .authorizations == [{role: "operator", resource_type: "location", resource_id: $l}]' \
	--arg l "$LOC"

mkkey machines "$MACH" --user=carol --role=viewer --expires-in=2h --protected --name=charlie
KC=$KEY_ID
ka --json keys show --key-id "$KC"
expect_json "machines api-key create with --role viewer, --expires-in and --protected" \
	'.authorizations == [{role: "viewer", resource_type: "machine", resource_id: $m}] and .protected == true' \
	--arg m "$MACH"
expect_json "... expires 2h after creation" '(.expires_at | fromdateiso8601) - (.created_at | fromdateiso8601) == 7200'

for d in 90s:90 15m:900 24h:86400 7d:604800 2w:1209600; do
	mkkey machines "$MACH" --user u --expires-in "${d%%:*}"
	ka --json keys show --key-id "$KEY_ID"
	expect_json "--expires-in ${d%%:*} is ${d##*:} seconds" \
		'(.expires_at | fromdateiso8601) - (.created_at | fromdateiso8601) == ($s | tonumber)' --arg s "${d##*:}"
	ka keys delete --key-id "$KEY_ID"
done

for u in ann@example.com 'EXAMPLE\ann' first.last-1_x 'user$'; do
	mkkey machines "$MACH" --user "$u"
	ka --json keys show --key-id "$KEY_ID"
	expect_json "user name $u is accepted verbatim" '.users == [$u]' --arg u "$u"
	ka keys delete --key-id "$KEY_ID"
done

refused 2 "api-key create without --user" machines api-key create --machine-id "$MACH"
refused 2 "api-key create with a user name starting with -" machines api-key create --machine-id "$MACH" --user -x
refused 2 "api-key create with a user name with a space" machines api-key create --machine-id "$MACH" --user "a b"
refused 2 "api-key create with a user name with a colon" machines api-key create --machine-id "$MACH" --user a:b
refused 2 "api-key create with a user name with a slash" machines api-key create --machine-id "$MACH" --user a/b
refused 2 "api-key create with an empty user name" machines api-key create --machine-id "$MACH" --user ""
refused 2 "api-key create with role admin" machines api-key create --machine-id "$MACH" --user a --role admin
expect_err_re "... names the roles" "owner, operator or viewer"
refused 2 "api-key create with role Owner (roles are lowercase)" machines api-key create --machine-id "$MACH" --user a --role Owner
refused 2 "api-key create with a bad --expires-in" machines api-key create --machine-id "$MACH" --user a --expires-in 1y
expect_err_re "... names the duration forms" "90s, 15m, 24h, 7d or 2w"
refused 2 "api-key create with an empty --name" machines api-key create --machine-id "$MACH" --user a --name ""
refused 2 "api-key create without the resource" machines api-key create --user a
refused 2 "api-key create with the wrong kind of resource" machines api-key create --org-id "$ORG" --user a
refused 2 "api-key create with a malformed resource ID" locations api-key create --location-id "$LOC-x" --user a
refused 1 "api-key create on an unknown organization" organizations api-key create --org-id "$NOSUCH" --user a
expect_err_re "... says so" "no organization with ID $NOSUCH"
refused 1 "api-key create on an unknown location" locations api-key create --location-id "$NOSUCH" --user a
refused 1 "api-key create on an unknown machine" machines api-key create --machine-id "$NOSUCH" --user a
refused 1 "api-key create on a location given as a machine" machines api-key create --machine-id "$LOC" --user a
refused 2 "--protected takes no value" machines api-key create --machine-id "$MACH" --user a --protected=yes
refused 2 "api-key without create" machines api-key --machine-id "$MACH" --user a
refused 2 "api-key delete is no command" machines api-key delete --machine-id "$MACH"
refused 2 "keys create is no command" keys create --machine-id "$MACH" --user a

# ---- keys list ----------------------------------------------------------------

mkkey machines "$M2" --user dave --name delta --expires-in 30d
KD=$KEY_ID
mkkey organizations "$ORG2" --user erin --name echo
KE=$KEY_ID
TE=$TOKEN
mkkey machines "$MACH" --user fred --name foxtrot
KF=$KEY_ID
NOW=$(date +%s)

ka keys list
expect_rc 0 "keys list"
expect_out_re "... has a header" "^ID +NAME +PREVIEW +GRANTS +USERS +CREATED +LAST USED +STATUS\$"
expect "... one row per key" [ "$(printf '%s\n' "$OUT" | wc -l)" -eq 7 ]
expect_out_re "... a row shows the key" "^$KB +Bravo +vk_[A-Za-z0-9]{22}_… +operator location ${LOC%%-*} +alice,bob +[0-9T:Z-]{20} +never +active\$"
ka --json keys list
expect_json "keys list --json: one key object per key" \
	'length == 6 and all(.[]; (keys_of(.) - ["status"]) == $f)' --argjson f "$KEY_FIELDS"
ka --json keys list --org-id "$ORG"
expect_json "keys list --org-id: grants on the organization, its locations and machines" \
	'([.[].name] | sort) == ([$a, "Bravo", "charlie", "foxtrot"] | sort)' --arg a "key-$(date -u -d "@$(sqlite3 "$DB" "SELECT created_at FROM keys WHERE id = '$KA'")" +%Y-%m-%dT%H:%M:%SZ)"
ka --json keys list --org-id "$ORG2"
expect_json "keys list --org-id of the other organization" '([.[].name] | sort) == ["delta", "echo"]'
refused 1 "keys list --org-id unknown" keys list --org-id "$NOSUCH"
refused 2 "keys list --org-id malformed" keys list --org-id "$ORG/"

ka --json keys list --search BRAV
expect_json "keys list --search matches a name, case-insensitively" '[.[].id] == [$k]' --arg k "$KB"
ka --json keys list --search "$KC"
expect_json "keys list --search matches a whole key ID" '[.[].id] == [$k]' --arg k "$KC"
ka --json keys list --search "$(printf '%s' "$KD" | cut -c1-13)"
expect_json "keys list --search matches part of a key ID" '[.[].id] == [$k]' --arg k "$KD"
ka --json keys list --search "$TE"
expect_json "keys list --search matches a whole token" '[.[].id] == [$k]' --arg k "$KE"
ka --json keys list --search "$(printf '%s' "$TE" | cut -c1-12)"
expect_json "keys list --search matches a partial token" '[.[].id] == [$k]' --arg k "$KE"
ka --json keys list --search "$(secret_of "$TE")"
expect_json "keys list --search never matches a secret" 'length == 0'
ka --json keys list --search "no such key"
expect_json "keys list --search with no match is an empty list" '. == []'
ka --json keys list --org-id "$ORG" --search fox
expect_json "keys list filters combine" '[.[].id] == [$k]' --arg k "$KF"

ka --json keys list --expiring 1d
expect_json "keys list --expiring 1d" '[.[].id] == [$k]' --arg k "$KC"
ka --json keys list --expiring=31d
expect_json "keys list --expiring 31d" '([.[].id] | sort) == ([$c, $d] | sort)' --arg c "$KC" --arg d "$KD"
sqlite3 "$DB" "UPDATE keys SET expires_at = $NOW - 60 WHERE id = '$KF'"
ka --json keys list --expiring 1d
expect_json "keys list --expiring leaves out keys already expired" '[.[].id] == [$k]' --arg k "$KC"

ka --json keys list --unused-since 1d
expect_json "keys list --unused-since: new keys are not unused yet" '. == []'
sqlite3 "$DB" "UPDATE keys SET created_at = $NOW - 10 * 86400 WHERE id IN ('$KA', '$KB');
	UPDATE keys SET last_used_at = $NOW - 86400, last_used_service = 'sshd', last_used_user = 'alice',
	last_used_rhost = '192.0.2.7' WHERE id = '$KA'"
ka --json keys list --unused-since 7d
expect_json "keys list --unused-since counts from creation when never used" '[.[].id] == [$k]' --arg k "$KB"
ka --json keys list --unused-since 12h
expect_json "... and from the last use otherwise" '([.[].id] | sort) == ([$a, $b] | sort)' --arg a "$KA" --arg b "$KB"
refused 2 "keys list --expiring with a bad duration" keys list --expiring 0d
refused 2 "keys list --unused-since with a bad duration" keys list --unused-since 7

# ---- keys show ----------------------------------------------------------------

ka keys show --key-id "$KA"
expect_rc 0 "keys show"
for label in ID Name Preview Status Created "Created by" Expires Protected Users Grants Secrets "Last used"; do
	expect_out_re "keys show has $label" "^$label +[^ ]"
done
expect_out_re "keys show tells the last use" "^Last used +[0-9T:Z-]{20} by alice via sshd from 192\\.0\\.2\\.7\$"
ka --json keys show --key-id "$KA"
expect_json "keys show --json: last_used {at, service, user, rhost}" \
	'.last_used == {at: .last_used.at, machine_id: null, service: "sshd", user: "alice", rhost: "192.0.2.7"} and (.last_used.at | ts)'
expect_json "keys show --json holds no secret material" \
	'[paths | .[-1] | strings] | all(. != "key" and . != "token" and . != "salt" and . != "verifier" and . != "secret")'
refused 1 "keys show of an unknown key" keys show --key-id "$NOSUCH"
expect_err_re "... says so" "no key with ID $NOSUCH"
refused 2 "keys show with a malformed key ID" keys show --key-id "${KA%?}"
refused 2 "keys show without --key-id" keys show

# ---- status -------------------------------------------------------------------

ka keys disable --key-id "$KE"
ka keys rotate --key-id "$KD" --grace 1h
ka --json keys list
expect_json "status: active, disabled, expired, rotating" \
	'(map({(.id): .status}) | add) as $s | $s[$a] == "active" and $s[$e] == "disabled" and $s[$f] == "expired" and $s[$d] == "rotating"' \
	--arg a "$KA" --arg e "$KE" --arg f "$KF" --arg d "$KD"
ka keys list
expect_out_re "keys list shows the status column" "^$KE .* disabled\$"
ka keys enable --key-id "$KE"

# ---- grant and ungrant ----------------------------------------------------------

ka keys grant --key-id "$KB" --role viewer --machine-id "$M2"
expect_rc 0 "keys grant adds a grant"
expect_out_re "... and shows the key" "^Grants +.*viewer on machine $M2"
ka --json keys show --key-id "$KB"
expect_json "... the key now has two grants" \
	'.authorizations | length == 2 and index({role: "viewer", resource_type: "machine", resource_id: $m}) != null' --arg m "$M2"
ka --json keys grant --key-id "$KB" --role owner --machine-id "$M2"
expect_rc 0 "keys grant on a resource already granted"
expect_json "... changes its role" \
	'.authorizations | length == 2 and index({role: "owner", resource_type: "machine", resource_id: $m}) != null' --arg m "$M2"
ka --json keys grant --key-id "$KB" --role viewer --org-id "$ORG2"
expect_json "keys grant on an organization" \
	'.authorizations | index({role: "viewer", resource_type: "organization", resource_id: $o}) != null' --arg o "$ORG2"
refused 1 "keys grant on an unknown machine" keys grant --key-id "$KB" --role viewer --machine-id "$NOSUCH"
refused 1 "keys grant on a machine ID that is a location" keys grant --key-id "$KB" --role viewer --machine-id "$LOC2"
refused 1 "keys grant to an unknown key" keys grant --key-id "$NOSUCH" --role viewer --machine-id "$M2"
refused 2 "keys grant with a malformed key ID" keys grant --key-id x --role viewer --machine-id "$M2"
refused 2 "keys grant with a malformed resource ID" keys grant --key-id "$KB" --role viewer --location-id x
refused 2 "keys grant without --role" keys grant --key-id "$KB" --machine-id "$M2"
refused 2 "keys grant with a bad role" keys grant --key-id "$KB" --role root --machine-id "$M2"
refused 2 "keys grant without a resource" keys grant --key-id "$KB" --role viewer
refused 2 "keys grant with two resources" keys grant --key-id "$KB" --role viewer --machine-id "$M2" --org-id "$ORG"
refused 2 "keys grant without --key-id" keys grant --role viewer --machine-id "$M2"

ka --json keys ungrant --key-id "$KB" --machine-id "$M2"
expect_rc 0 "keys ungrant"
expect_json "... removes that grant only" \
	'[.authorizations[].resource_id] | sort == ([$l, $o] | sort)' --arg l "$LOC" --arg o "$ORG2"
refused 1 "keys ungrant of a grant the key does not have" keys ungrant --key-id "$KB" --machine-id "$M2"
expect_err_re "... says so" "has no grant on machine $M2"
refused 1 "keys ungrant on an unknown key" keys ungrant --key-id "$NOSUCH" --org-id "$ORG2"
refused 2 "keys ungrant without a resource" keys ungrant --key-id "$KB"
refused 2 "keys ungrant with two resources" keys ungrant --key-id "$KB" --org-id "$ORG2" --location-id "$LOC"
refused 2 "keys ungrant with --role, not an option of it" keys ungrant --key-id "$KB" --org-id "$ORG2" --role owner
ka keys ungrant --key-id "$KB" --org-id "$ORG2" >/dev/null
expect_rc 0 "keys ungrant down to one grant"
refused 1 "keys ungrant of a key's only grant" keys ungrant --key-id "$KB" --location-id "$LOC"
expect_err_re "... says why" "only grant; add another first, or delete the key"

# ---- users ----------------------------------------------------------------------

ka --json keys add-user --key-id "$KA" --user zoe
expect_rc 0 "keys add-user"
expect_json "... adds the user" '.users == ["alice", "zoe"]'
unchanged 0 "keys add-user of a user already there changes nothing" keys add-user --key-id "$KA" --user zoe
ka --json keys remove-user --key-id "$KA" --user zoe
expect_rc 0 "keys remove-user"
expect_json "... removes the user" '.users == ["alice"]'
refused 1 "keys remove-user of a user the key does not have" keys remove-user --key-id "$KA" --user zoe
expect_err_re "... says so" "zoe is not one of key $KA's users"
refused 1 "keys remove-user of a key's only user" keys remove-user --key-id "$KA" --user alice
expect_err_re "... says why" "only user; add another first, or delete the key"
refused 1 "keys add-user on an unknown key" keys add-user --key-id "$NOSUCH" --user zoe
refused 1 "keys remove-user on an unknown key" keys remove-user --key-id "$NOSUCH" --user alice
refused 2 "keys add-user with two users" keys add-user --key-id "$KA" --user x --user y
refused 2 "keys add-user with a bad user name" keys add-user --key-id "$KA" --user "x:y"
refused 2 "keys add-user without --user" keys add-user --key-id "$KA"
refused 2 "keys remove-user without --key-id" keys remove-user --user alice

# ---- rename, disable, enable, protect, unprotect, delete --------------------------

ka --json keys rename --key-id "$KA" --name "alpha one"
expect_rc 0 "keys rename"
expect_json "... renames" '.name == "alpha one"'
refused 2 "keys rename without --name" keys rename --key-id "$KA"
refused 2 "keys rename to an empty name" keys rename --key-id "$KA" --name ""
refused 2 "keys rename to 65 characters" keys rename --key-id "$KA" --name "$(printf '%065d' 0)"
refused 1 "keys rename of an unknown key" keys rename --key-id "$NOSUCH" --name x

ka --json keys disable --key-id "$KA"
expect_json "keys disable" '.disabled == true and .status == "disabled"'
ka --json keys enable --key-id "$KA"
expect_json "keys enable" '.disabled == false and .status == "active"'
refused 1 "keys disable of an unknown key" keys disable --key-id "$NOSUCH"
refused 1 "keys enable of an unknown key" keys enable --key-id "$NOSUCH"

refused 1 "a protected key cannot be disabled" keys disable --key-id "$KC"
expect_err_re "... and the message says how to unprotect it" "protected; run keyadm keys unprotect --key-id $KC"
refused 1 "a protected key cannot be deleted" keys delete --key-id "$KC"
expect_err_re "... and the message says how to unprotect it" "keys unprotect --key-id $KC"
ka --json keys rename --key-id "$KC" --name "charlie 2"
expect_json "a protected key can be renamed" '.name == "charlie 2" and .protected == true'
ka --json keys unprotect --key-id "$KC"
expect_json "keys unprotect" '.protected == false'
ka --json keys protect --key-id "$KA"
expect_json "keys protect" '.protected == true'
refused 1 "a key protected later cannot be deleted" keys delete --key-id "$KA"
ka --json keys protect --key-id "$KA"
expect_json "protecting twice is harmless" '.protected == true'
refused 1 "keys protect of an unknown key" keys protect --key-id "$NOSUCH"
refused 1 "keys unprotect of an unknown key" keys unprotect --key-id "$NOSUCH"

ka keys disable --key-id "$KC"
expect_rc 0 "an unprotected key can be disabled"
ka keys delete --key-id "$KC"
expect_rc 0 "keys delete"
expect_out "... says so" "Deleted key $KC"
refused 1 "... and the key is gone" keys show --key-id "$KC"
ka --json keys delete --key-id "$KD"
expect_json "keys delete --json" '. == {id: $k, deleted: true}' --arg k "$KD"
refused 1 "keys delete of an unknown key" keys delete --key-id "$KD"
refused 2 "keys delete with a malformed key ID" keys delete --key-id "$KD$KD"
expect "a deleted key's grants, users and secrets go with it" \
	[ "$(sqlite3 "$DB" "SELECT (SELECT count(*) FROM grants WHERE key_id = '$KD') + (SELECT count(*) FROM key_users WHERE key_id = '$KD') + (SELECT count(*) FROM secrets WHERE key_id = '$KD')")" = 0 ]

finish
