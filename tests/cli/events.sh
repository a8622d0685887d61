#!/bin/sh
# keyadm events: the audit trail of administrative changes.
. "$(dirname "$0")/lib.sh"

# The person keyadm records: the login UID's user, else SUDO_USER when run by sudo,
# else the real user; the table adds the effective user when it differs.
person() {
	_luid=$(cat /proc/self/loginuid 2>/dev/null || echo 4294967295)
	if [ "$_luid" != 4294967295 ]; then
		getent passwd "$_luid" | cut -d: -f1
	elif [ "$(id -u)" -eq 0 ] && [ -n "${SUDO_USER:-}" ]; then
		printf '%s\n' "$SUDO_USER"
	else
		id -un
	fi
}
ME=$(person)
EFFECTIVE=$(id -un)
SHOWN=$ME
[ "$ME" = "$EFFECTIVE" ] || SHOWN="$ME \\(as $EFFECTIVE\\)"
setup_store
mkkey machines "$MACH" --user alice --name one
K1=$KEY_ID
mkkey machines "$MACH" --user alice --name two
K2=$KEY_ID
for args in "keys rename --key-id $K1 --name uno" "keys grant --key-id $K1 --role viewer --location-id $LOC" \
	"keys ungrant --key-id $K1 --location-id $LOC" "keys add-user --key-id $K1 --user bob" \
	"keys remove-user --key-id $K1 --user bob" "keys disable --key-id $K1" "keys enable --key-id $K1" \
	"keys protect --key-id $K1" "keys unprotect --key-id $K1" "keys rotate --key-id $K1 --grace 1h" \
	"keys rotate --key-id $K1 --finish" "keys rotate --key-id $K1" "keys clone --key-id $K1" \
	"keys delete --key-id $K1"; do
	# shellcheck disable=SC2086 # the words are meant to split
	ka $args
	expect_rc 0 "$args"
done

ka events
expect_rc 0 "events"
expect_out_re "... has a header" "^AT +ACTOR +ACTION +KEY +DETAIL\$"
expect_out_re "... shows who, what, which key and when" "^[0-9T:Z-]{20} +$SHOWN +key.rename +$K1 +to \"uno\"\$"
expect_out_re "... tree changes have no key" "^[0-9T:Z-]{20} +$SHOWN +init +- +host machine $MACH\$"
expect "... oldest first" [ "$(printf '%s\n' "$OUT" | sed -n 2p | grep -o 'organization.create')" = organization.create ]

ka --json events
expect_json "events --json: {id, at, actor, effective_user, action, key_id, detail}" \
	'length > 0 and all(.[]; keys_of(.) == ["action", "actor", "at", "detail", "effective_user", "id", "key_id"] and (.at | ts) and .actor == $me)' \
	--arg me "$ME"
expect_json "events --json is oldest first" '[.[].id] == ([.[].id] | sort)'
expect_json "every kind of change is recorded" \
	'[.[].action] | unique == ["init", "key.add-user", "key.clone", "key.create", "key.delete", "key.disable",
	 "key.enable", "key.grant", "key.protect", "key.remove-user", "key.rename", "key.rotate", "key.rotate-finish",
	 "key.ungrant", "key.unprotect", "location.create", "machine.create", "organization.create"]'

ka --json events --key-id "$K1"
expect_json "events --key-id: that key's events, even once it is deleted" \
	'length == 14 and all(.[]; .key_id == $k) and .[0].action == "key.create" and .[-1].action == "key.delete"' --arg k "$K1"
ka --json events --key-id "$K2"
expect_json "events --key-id of another key" '[.[].action] == ["key.create"]'
ka --json events --key-id "$NOSUCH"
expect_json "events --key-id of a key never seen is empty" '. == []'

ka --json events --limit 3
expect_json "events --limit 3: the three latest, oldest first" \
	'length == 3 and [.[].action] == ["key.rotate", "key.clone", "key.delete"]'
ka --json events --limit=1 --key-id="$K1"
expect_json "--limit with --key-id" '[.[].action] == ["key.delete"]'

sqlite3 "$DB" "UPDATE events SET at = at - 2 * 86400 WHERE action NOT LIKE 'key.%'"
ka --json events --since 1d
expect_json "events --since 1d leaves out older events" 'length > 0 and all(.[]; .action | startswith("key."))'
ka --json events --since 3d
expect_json "events --since 3d keeps them" '[.[].action] | index("init") != null'

sqlite3 "$DB" "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150)
	INSERT INTO events (at, actor, action, key_id, detail) SELECT unixepoch(), 'x', 'filler', NULL, i FROM n"
ka --json events
expect_json "events shows the latest 100 by default" 'length == 100 and .[-1].detail == "150" and .[0].detail == "51"'
ka --json events --limit 1000
expect_json "--limit raises it" 'length > 150'

refused 2 "events --limit 0" events --limit 0
refused 2 "events --limit -1" events --limit -1
refused 2 "events --limit abc" events --limit abc
refused 2 "events --limit 5x" events --limit 5x
refused 2 "events --limit too large" events --limit 99999999999999999999
refused 2 "events --since with a bad duration" events --since yesterday
refused 2 "events --key-id malformed" events --key-id "$K1-"
refused 2 "events --user, not an option of it" events --user alice

# ---- who: the person behind sudo, and the effective user -------------------------

if [ "$(id -u)" -eq 0 ] && [ "$(cat /proc/self/loginuid 2>/dev/null || echo 4294967295)" = 4294967295 ]; then
	SUDO_USER=vk-person ka keys rename --key-id "$K2" --name by-sudo
	ka --json events --limit 1
	expect_json "under sudo (no login UID) the actor is SUDO_USER, beside the effective user" \
		'.[0].actor == "vk-person" and .[0].effective_user == "root" and .[0].action == "key.rename"'
	ka events --limit 1
	expect_out_re "... and the table shows both" "^[0-9T:Z-]{20} +vk-person \\(as root\\) +key.rename"
	SUDO_USER='-bad name' ka keys rename --key-id "$K2" --name by-bad-sudo
	ka --json events --limit 1
	expect_json "a SUDO_USER that is not a user name is not believed" '.[0].actor == "root"'
	ka --json keys show --key-id "$K2"
	expect_json "created_by is the person, too" '.created_by == $me' --arg me "$ME"
else
	echo "# not root, or a login UID is set: the SUDO_USER cases do not apply"
fi

finish
