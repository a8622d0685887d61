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
expect_out_re "... has a header" "^AT +KIND +MACHINE +ACTOR +ACTION +KEY +DETAIL\$"
expect_out_re "... shows who, what, which key and when" "^[0-9T:Z-]{20} +admin +- +$SHOWN +key.rename +$K1 +to \"uno\"\$"
expect_out_re "... tree changes have no key" "^[0-9T:Z-]{20} +admin +- +$SHOWN +init +- +host machine $MACH\$"
expect "... oldest first" [ "$(printf '%s\n' "$OUT" | sed -n 2p | grep -o 'organization.create')" = organization.create ]

ka --json events
expect_json "events --json: SPEC §11's fields, with effective_user, action and detail" \
	'length > 0 and all(.[]; keys_of(.) == ["action", "actor", "at", "decision", "detail", "effective_user", "id", "key_id",
	 "kind", "machine_id", "reason", "rhost", "service", "session", "user"] and (.at | ts) and .actor == $me and .kind == "admin"
	 and .machine_id == null and .user == null and .decision == null and .session == null)' \
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

# ---- a machine's events (SPEC §11), as viamkey-syncd stores them -------------------------
OTHER=6ba7b810-9dad-41d1-80b4-00c04fd430c8
sqlite3 "$DB" "INSERT INTO events (at, kind, action, key_id, machine_id, user, service, rhost, decision, reason, uid)
	VALUES (unixepoch(), 'login', 'login.allow', '$K2', '$MACH', 'ann', 'sshd', '192.0.2.9', 'allow', 'ok',
	 '000102030405060708090a0b0c0d0e0f'),
	(unixepoch(), 'login', 'login.deny', NULL, '$OTHER', 'bob', 'sudo', NULL, 'deny', 'malformed',
	 '101112131415161718191a1b1c1d1e1f')"
ka --json events --kind login
expect_json "events --kind login: the machines' decisions only, with SPEC §11's fields" \
	'length == 2 and .[0].kind == "login" and .[0].machine_id == $m and .[0].key_id == $k and .[0].user == "ann"
	 and .[0].service == "sshd" and .[0].rhost == "192.0.2.9" and .[0].decision == "allow" and .[0].reason == "ok"
	 and .[0].actor == null and .[1].decision == "deny" and .[1].key_id == null and .[1].rhost == null' \
	--arg m "$MACH" --arg k "$K2"
ka --json events --machine-id "$OTHER"
expect_json "events --machine-id: that machine's only" 'length == 1 and .[0].user == "bob"'
ka --json events --machine-id "$OTHER" --kind admin
expect_json "--machine-id with --kind admin: none" '. == []'
ka --json events --kind admin
expect_json "events --kind admin: no login" 'length > 0 and all(.[]; .kind == "admin")'
ka events --kind login
expect_out_re "the table shows a login's machine, user, key and where from" \
	"^[0-9T:Z-]{20} +login +$MACH +ann +login.allow +$K2 +service=sshd rhost=192.0.2.9 reason=ok\$"
refused 2 "events --kind of no kind is a usage error" events --kind logins
refused 2 "events --machine-id that is no ID is a usage error" events --machine-id "$MACH-"
sqlite3 "$DB" "DELETE FROM events WHERE kind = 'login'"

# ---- sessions: what the daemon took from the module's records -----------------------

ka --json sessions list --all
expect_json "sessions list: none before any session" '. == []'
sqlite3 "$DB" "INSERT INTO sessions (machine_id, pid, start, id, opened_at, key_id, user, service,
	rhost, role, secret, logind, state, ended_at, reason) VALUES
	('$MACH', 812, 5, 'aa', 1764950400, '$K2', 'ann', 'sshd', '192.0.2.9', 'operator',
	 '0123456789abcdef', '4', 'open', NULL, NULL),
	('$OTHER', 813, 6, 'bb', 1764950401, '$K1', 'bob', 'sudo', NULL, 'owner', NULL, NULL,
	 'ended', 1764950500, 'disabled')"
ka --json sessions list
expect_json "sessions list: the open ones, with SPEC §11's fields" \
	'length == 1 and (.[0] | keys_of(.)) == ["ended_at", "id", "key_id", "logind_session", "machine_id",
	 "opened_at", "pid", "reason", "rhost", "service", "state", "user"] and .[0].machine_id == $m
	 and .[0].key_id == $k and .[0].pid == 812 and .[0].logind_session == "4" and .[0].state == "open"
	 and .[0].opened_at == "2025-12-05T16:00:00Z" and .[0].ended_at == null' --arg m "$MACH" --arg k "$K2"
ka --json sessions list --all --machine-id "$OTHER"
expect_json "--all shows an ended one, with its reason; --machine-id keeps one machine's" \
	'length == 1 and .[0].state == "ended" and .[0].reason == "disabled" and .[0].ended_at != null'
ka --json sessions list --all --key-id "$K2"
expect_json "--key-id keeps one key's" 'length == 1 and .[0].key_id == $k' --arg k "$K2"
ka sessions list --all
expect_out_re "the table shows which session and its state" \
	"^[0-9T:Z-]{20} +$OTHER +$K1 +bob +sudo +- +pid 813 +ended \\(disabled\\)\$"
refused 2 "sessions list --machine-id that is no ID is a usage error" sessions list --machine-id x
refused 2 "sessions list --since, not an option of it" sessions list --since 1h
sqlite3 "$DB" "DELETE FROM sessions"

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
	expect_out_re "... and the table shows both" "^[0-9T:Z-]{20} +admin +- +vk-person \\(as root\\) +key.rename"
	SUDO_USER='-bad name' ka keys rename --key-id "$K2" --name by-bad-sudo
	ka --json events --limit 1
	expect_json "a SUDO_USER that is not a user name is not believed" '.[0].actor == "root"'
	ka --json keys show --key-id "$K2"
	expect_json "created_by is the person, too" '.created_by == $me' --arg me "$ME"
else
	echo "# not root, or a login UID is set: the SUDO_USER cases do not apply"
fi

finish
