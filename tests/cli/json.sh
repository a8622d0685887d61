#!/bin/sh
# --json: every command prints exactly one JSON document, with the field names of SPEC §3.
. "$(dirname "$0")/lib.sh"

KEY='["authorizations", "break_glass", "created_at", "created_by", "disabled", "expires_at", "id", "last_used", "name", "preview", "protected", "secrets", "users"]'
ORGF='["created_at", "id", "name"]'
LOCF='["created_at", "id", "name", "org_id"]'
MACHF='["created_at", "id", "location_id", "name", "org_id"]'
# every member named at or *_at is an RFC 3339 UTC time or null
TIMES='([.. | objects | to_entries[] | select(.key | test("(^|_)at$")) | .value | select(. != null)] | all(ts))'
KEYOBJ='((keys_of(.) - ["status", "key"]) == $key and (.authorizations | all(keys_of(.) == ["resource_id", "resource_type", "role"]))
	and (.secrets | all(keys_of(.) == ["created_at", "expires_at"])) and (.last_used == null or keys_of(.last_used) == ["at", "machine_id", "rhost", "service", "user"]))'

# j DESC FILTER ARGS...: run keyadm --json ARGS, expect exit 0 and FILTER (with $key etc.) on one document
j() {
	_desc=$1
	_filter=$2
	shift 2
	ka --json "$@"
	if [ "$RC" -ne 0 ]; then
		fail "$_desc" "expected exit 0"
		return 0
	fi
	expect_json "$_desc" "$_filter and $TIMES" --argjson key "$KEY" --argjson org "$ORGF" \
		--argjson loc "$LOCF" --argjson mach "$MACHF"
}

j "init" 'keys_of(.) == ["machine", "schema_version", "store"] and .machine == null' init
j "init with names" 'keys_of(.machine) == $mach and .machine.name == "host"' init --org Acme --location HQ --machine host
MACH=$(jqr .machine.id)
LOC=$(jqr .machine.location_id)
ORG=$(jqr .machine.org_id)
j "init again" ".machine.id == \"$MACH\"" init

j "organizations create" 'keys_of(.) == $org' organizations create --name O2
O2=$(jqr .id)
j "organizations list" 'length == 2 and all(.[]; keys_of(.) == $org)' organizations list
j "organizations rename" 'keys_of(.) == $org and .name == "O3"' organizations rename --org-id "$O2" --name O3
j "locations create" 'keys_of(.) == $loc' locations create --org-id "$O2" --name L2
L2=$(jqr .id)
j "locations list" 'length == 2 and all(.[]; keys_of(.) == $loc)' locations list
j "locations list --org-id" 'length == 1' locations list --org-id "$O2"
j "locations rename" 'keys_of(.) == $loc and .name == "L3"' locations rename --location-id "$L2" --name L3
j "machines create" 'keys_of(.) == $mach' machines create --location-id "$L2" --name M2
M2=$(jqr .id)
j "machines list" 'length == 1 and all(.[]; keys_of(.) == $mach)' machines list
j "machines list --all" 'length == 2 and all(.[]; keys_of(.) == $mach)' machines list --all
j "machines list --organization" 'length == 1' machines list --organization "$O2"
j "machines list --location-id" 'length == 1' machines list --location-id "$L2"
j "machines rename" 'keys_of(.) == $mach and .name == "M3"' machines rename --machine-id "$M2" --name M3

CREATED='(.key | test("^vk_[A-Za-z0-9]{22}_[A-Za-z0-9]{49}$")) and .id != null and .name != null and '$KEYOBJ
j "organizations api-key create: {key, id, name} and the key object" "$CREATED" \
	organizations api-key create --org-id "$ORG" --user alice
KO=$(jqr .id)
j "locations api-key create" "$CREATED" locations api-key create --location-id "$LOC" --user alice --role viewer
j "machines api-key create" "$CREATED and .expires_at != null" \
	machines api-key create --machine-id "$MACH" --user alice --expires-in 1d --protected --name m
KM=$(jqr .id)
TM=$(jqr .key)
j "keys list" "length == 3 and all(.[]; $KEYOBJ)" keys list
j "keys list with every filter" 'length == 1' keys list --org-id "$ORG" --search m --expiring=2d
j "keys list with no match" '. == []' keys list --search nothing
j "keys show" "$KEYOBJ and (has(\"key\") | not)" keys show --key-id "$KM"
j "keys grant" "$KEYOBJ and (.authorizations | length) == 2" keys grant --key-id "$KM" --role viewer --machine-id "$M2"
j "keys ungrant" "$KEYOBJ and (.authorizations | length) == 1" keys ungrant --key-id "$KM" --machine-id "$M2"
j "keys add-user" "$KEYOBJ and .users == [\"alice\", \"bob\"]" keys add-user --key-id "$KM" --user bob
j "keys remove-user" "$KEYOBJ and .users == [\"alice\"]" keys remove-user --key-id "$KM" --user bob
j "keys rotate" "$CREATED" keys rotate --key-id "$KM"
j "keys rotate --grace" "$CREATED and (.secrets | length) == 2" keys rotate --key-id "$KM" --grace 1h
j "keys rotate --finish" "$KEYOBJ and (has(\"key\") | not) and (.secrets | length) == 1" keys rotate --key-id "$KM" --finish
j "keys clone" "$CREATED" keys clone --key-id "$KM"
KC=$(jqr .id)
TM=$(jqr .key)
j "keys rename" "$KEYOBJ" keys rename --key-id "$KC" --name n
j "keys disable" "$KEYOBJ and .disabled == true" keys disable --key-id "$KC"
j "keys enable" "$KEYOBJ and .disabled == false" keys enable --key-id "$KC"
j "keys protect" "$KEYOBJ and .protected == true" keys protect --key-id "$KC"
j "keys unprotect" "$KEYOBJ and .protected == false" keys unprotect --key-id "$KC"

ka_in "$TM" --json check --user alice
expect_rc 0 "check allow"
expect_json "check allow: {decision, reason, key_id, role, via}" \
	'keys_of(.) == ["decision", "key_id", "reason", "role", "via"] and keys_of(.via) == ["resource_id", "resource_type"]'
ka_in "$TM" --json check --user mallory
expect_rc 1 "check deny"
expect_json "check deny: the same fields, nulls where nothing matched" \
	'keys_of(.) == ["decision", "key_id", "reason", "role", "via"] and .role == null and .via == null'
ka_in "x" check --json --user mallory
expect_json "check deny of garbage" '.key_id == null and .decision == "deny"'

sqlite3 "$DB" "UPDATE keys SET last_used_at = unixepoch(), last_used_service = 'sshd', last_used_user = 'alice', last_used_rhost = NULL WHERE id = '$KC'"
j "keys show with a last use" "$KEYOBJ and .last_used.rhost == null and .last_used.service == \"sshd\"" keys show --key-id "$KC"

j "keys delete" ". == {id: \"$KC\", deleted: true}" keys delete --key-id "$KC"
j "machines delete" ". == {id: \"$M2\", deleted: true}" machines delete --machine-id "$M2"
j "locations delete" ". == {id: \"$L2\", deleted: true}" locations delete --location-id "$L2"
j "organizations delete" ". == {id: \"$O2\", deleted: true}" organizations delete --org-id "$O2"
j "events" 'length > 10 and all(.[]; keys_of(.) == ["action", "actor", "at", "decision", "detail", "effective_user", "id", "key_id", "kind", "machine_id", "reason", "rhost", "service", "session", "user"])' events
j "events --key-id --since --limit" "length == 1 and .[0].key_id == \"$KO\"" events --key-id "$KO" --since 1h --limit 1

# on failure nothing reaches stdout, so a script never parses half a document
refused 1 "--json on a refusal prints nothing" --json keys show --key-id "$NOSUCH"
refused 2 "--json on a usage error prints nothing" --json keys show --key-id x

finish
