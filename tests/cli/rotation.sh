#!/bin/sh
# keys rotate (immediate, --grace, --finish) and keys clone.
. "$(dirname "$0")/lib.sh"

setup_store
mkkey machines "$MACH" --user alice --name rot
K=$KEY_ID
T0=$TOKEN
check_decision "the first token is allowed" "$T0" 0 allow ok --user alice

# ---- immediate rotation -------------------------------------------------------------

ka keys rotate --key-id "$K"
expect_rc 0 "keys rotate"
expect_out_re "... prints the key ID" "^Key ID: $K\$"
expect_out_re "... and the new token" "^Token:  vk_[A-Za-z0-9]{22}_[A-Za-z0-9]{49}\$"
expect_err_re "... and warns that it is shown once" "^keyadm: warning: .*shown only once"
T1=$(printf '%s\n' "$OUT" | sed -n 's/^Token:  //p')
expect "... the key ID part stays the same" [ "${T1%_*}" = "${T0%_*}" ]
expect "... the secret changes" [ "$T1" != "$T0" ]
check_decision "after rotate the old token is denied at once" "$T0" 1 deny wrong_secret --user alice
check_decision "... and the new one is allowed" "$T1" 0 allow ok --user alice
ka --json keys show --key-id "$K"
expect_json "... one live secret" '(.secrets | length) == 1 and .secrets[0].expires_at == null and .status == "active"'

# ---- rotation with a grace window ---------------------------------------------------

ka --json keys rotate --key-id "$K" --grace 1h
expect_rc 0 "keys rotate --grace"
expect_json "... prints {key, id, name}" '.id == $k and .name == "rot" and (.key | test("^vk_[A-Za-z0-9_]+$"))' --arg k "$K"
T2=$(jqr .key)
expect_json "... two live secrets, the old one valid for 1h after the new one's creation" \
	'(.secrets | length) == 2 and ([.secrets[] | select(.expires_at == null)] | length) == 1 and
	 (.secrets | map(select(.expires_at != null))[0].expires_at | fromdateiso8601) -
	 (.secrets | map(select(.expires_at == null))[0].created_at | fromdateiso8601) == 3600'
expect_json "... status rotating" '.status == "rotating"'
check_decision "in the window the old token is allowed" "$T1" 0 allow ok --user alice
check_decision "... and so is the new one" "$T2" 0 allow ok --user alice
ka --json keys show --key-id "$K"
UNTIL=$(jqr '.secrets[] | select(.expires_at != null) | .expires_at')
LEFT=$(($(date -u -d "$UNTIL" +%s) - $(date +%s)))
expect "the window ends an hour from now" [ "$LEFT" -ge 3590 ]
expect "... not later" [ "$LEFT" -le 3600 ]

refused 1 "a second --grace while a window is open is refused" keys rotate --key-id "$K" --grace 1h
expect_err_re "... naming the window's end" "open until $UNTIL"
refused 1 "an immediate rotate while a window is open is refused" keys rotate --key-id "$K"
expect_err_re "... naming the window's end and --finish" "open until $UNTIL.*--finish"
check_decision "the refused rotation left the old token working" "$T1" 0 allow ok --user alice

ka --json keys rotate --key-id "$K" --finish
expect_rc 0 "keys rotate --finish"
expect_json "... leaves one live secret" '(.secrets | length) == 1 and .secrets[0].expires_at == null and .status == "active"'
check_decision "after --finish the old token is denied" "$T1" 1 deny wrong_secret --user alice
check_decision "... and the new one is allowed" "$T2" 0 allow ok --user alice
refused 1 "--finish with no window open" keys rotate --key-id "$K" --finish
expect_err_re "... says so" "no open rotation window"

# a window that ran out: the old secret stops working and a new window may open
ka keys rotate --key-id "$K" --grace 15m
T3=$(printf '%s\n' "$OUT" | sed -n 's/^Token:  //p')
sqlite3 "$DB" "UPDATE secrets SET expires_at = unixepoch() - 1 WHERE key_id = '$K' AND expires_at IS NOT NULL"
check_decision "when the window has passed the old token is denied" "$T2" 1 deny wrong_secret --user alice
check_decision "... and the new one is allowed" "$T3" 0 allow ok --user alice
ka --json keys show --key-id "$K"
expect_json "... keys show lists only live secrets" '(.secrets | length) == 1 and .status == "active"'
refused 1 "--finish after the window passed" keys rotate --key-id "$K" --finish
ka keys rotate --key-id "$K" --grace=2w
expect_rc 0 "a new window may open once the last one passed"
T4=$(printf '%s\n' "$OUT" | sed -n 's/^Token:  //p')
expect "a third secret is never kept" \
	[ "$(sqlite3 "$DB" "SELECT count(*) FROM secrets WHERE key_id = '$K'")" -le 2 ]
check_decision "the previous token works in the new window" "$T3" 0 allow ok --user alice
check_decision "... and so does the new one" "$T4" 0 allow ok --user alice
check_decision "... but not the one before" "$T2" 1 deny wrong_secret --user alice

refused 2 "--grace with --finish" keys rotate --key-id "$K" --grace 1h --finish
refused 2 "--grace with a bad duration" keys rotate --key-id "$K" --grace soon
refused 2 "--grace without a value" keys rotate --key-id "$K" --grace
refused 2 "--finish takes no value" keys rotate --key-id "$K" --finish=now
refused 1 "rotate of an unknown key" keys rotate --key-id "$NOSUCH"
refused 1 "rotate --grace of an unknown key" keys rotate --key-id "$NOSUCH" --grace 1h
refused 1 "rotate --finish of an unknown key" keys rotate --key-id "$NOSUCH" --finish
refused 2 "rotate with a malformed key ID" keys rotate --key-id not-a-uuid
refused 2 "rotate without --key-id" keys rotate

ka --json events --key-id "$K"
expect_json "rotations are in the audit trail" \
	'[.[].action] | (map(select(. == "key.rotate")) | length) == 4 and index("key.rotate-finish") != null'

# ---- clone --------------------------------------------------------------------------

must "a location to grant" --json locations create --org-id "$ORG" --name L2
L2=$(jqr .id)
mkkey machines "$MACH" --user alice --user bob --name orig --expires-in 1d --protected
O=$KEY_ID
OT=$TOKEN
ka keys grant --key-id "$O" --role viewer --location-id "$L2"
ka --json keys show --key-id "$O"
ORIG=$OUT

ka keys clone --key-id "$O"
expect_rc 0 "keys clone"
expect_out_re "... prints the new key ID" "^Key ID: [0-9a-f-]{36}\$"
expect_err_re "... and warns that the token is shown once" "^keyadm: warning: .*shown only once"
C=$(printf '%s\n' "$OUT" | sed -n 's/^Key ID: //p')
CT=$(printf '%s\n' "$OUT" | sed -n 's/^Token:  //p')
expect "... a new key ID" [ "$C" != "$O" ]
ka --json keys show --key-id "$C"
expect_json "... with the same grants" '.authorizations == ($o | fromjson | .authorizations)' --arg o "$ORIG"
expect_json "... the same users" '.users == ["alice", "bob"]'
expect_json "... the original's name by default" '.name == "orig"'
expect_json "... but neither its expiry nor its protection" '.expires_at == null and .protected == false'
expect_json "... one fresh secret" '(.secrets | length) == 1'
check_decision "the clone's token is allowed" "$CT" 0 allow ok --user bob
check_decision "... and the original's still is" "$OT" 0 allow ok --user bob

ka --json keys clone --key-id "$O" --name "orig v2"
expect_json "keys clone --name, --json prints {key, id, name}" \
	'.name == "orig v2" and .id != $o and (.key | startswith("vk_"))' --arg o "$O"
ka keys disable --key-id "$C"
ka --json keys clone --key-id "$C"
expect_json "a clone of a disabled key is enabled" '.disabled == false'
refused 1 "clone of an unknown key" keys clone --key-id "$NOSUCH"
refused 2 "clone with a malformed key ID" keys clone --key-id "$O!"
refused 2 "clone with an empty --name" keys clone --key-id "$O" --name ""
refused 2 "clone with --user, not an option of it" keys clone --key-id "$O" --user carol
ka --json events --key-id "$C"
expect_json "the clone is in the audit trail" 'any(.[]; .action == "key.clone" and (.detail | contains($o)))' --arg o "$O"

finish
