#!/bin/sh
# keyadm check: the login decision, every allow and deny path, and its config.
. "$(dirname "$0")/lib.sh"

setup_store
mkkey machines "$MACH" --user alice --expires-in 1s --name shortlived
KX=$KEY_ID
TX=$TOKEN
EXPIRES=$(sqlite3 "$DB" "SELECT expires_at FROM keys WHERE id = '$KX'")

must "a second machine in the host's location" --json machines create --location-id "$LOC" --name M2
M2=$(jqr .id)
must "a second location" --json locations create --org-id "$ORG" --name L2
L2=$(jqr .id)
must "... with a machine" --json machines create --location-id "$L2" --name M3
M3=$(jqr .id)
must "another organization" --json organizations create --name Other
ORG2=$(jqr .id)
must "... with a location" --json locations create --org-id "$ORG2" --name LX
LX=$(jqr .id)
must "... and a machine" --json machines create --location-id "$LX" --name MX
MX=$(jqr .id)

mkkey machines "$MACH" --user alice --user root
KM=$KEY_ID
TM=$TOKEN
mkkey locations "$LOC" --user alice --role operator
KL=$KEY_ID
TL=$TOKEN
mkkey organizations "$ORG" --user alice --role operator
KO=$KEY_ID
TO=$TOKEN
mkkey machines "$MACH" --user alice --role viewer
TV=$TOKEN
mkkey machines "$M2" --user alice
TM2=$TOKEN
mkkey locations "$L2" --user alice
TL2=$TOKEN
mkkey machines "$MX" --user alice
TMX=$TOKEN

# ---- allow ----------------------------------------------------------------------

ka_in "$TM" --json check --user alice
expect_rc 0 "check allows a machine key on its machine (exit 0)"
expect_json "... JSON {decision, reason, key_id, role, via}" \
	'keys_of(.) == ["decision", "key_id", "reason", "role", "via"] and
	 . == {decision: "allow", reason: "ok", key_id: $k, role: "owner", via: {resource_type: "machine", resource_id: $m}}' \
	--arg k "$KM" --arg m "$MACH"
ka_in "$TM" check --user root --service sshd --rhost 192.0.2.1
expect_out "check, plain, names the key, role and grant" "allow: key $KM as owner via machine $MACH"
check_decision "a location key covers the location's machines" "$TL" 0 allow ok --user alice
expect_json "... via the location" '.via == {resource_type: "location", resource_id: $l} and .role == "operator" and .key_id == $k' \
	--arg l "$LOC" --arg k "$KL"
check_decision "an organization key covers its machines" "$TO" 0 allow ok --user alice
expect_json "... via the organization" '.via == {resource_type: "organization", resource_id: $o} and .key_id == $k' \
	--arg o "$ORG" --arg k "$KO"
check_decision "an organization key covers machines of its other locations" "$TO" 0 allow ok --user alice --machine-id "$M3"
ka keys grant --key-id "$KO" --role owner --machine-id "$MACH"
ka keys grant --key-id "$KO" --role viewer --location-id "$LOC"
check_decision "of several grants the highest role wins" "$TO" 0 allow ok --user alice
expect_json "... and names the grant that gave it" '.role == "owner" and .via == {resource_type: "machine", resource_id: $m}' --arg m "$MACH"
printf '%s\r\n' "$TM" >"$T/crlf"
run "$KEYADM" --db "$DB" --json check --user alice <"$T/crlf"
expect_rc 0 "a token followed by CRLF is allowed"
printf '%s' "$TM" >"$T/bare"
run "$KEYADM" --db "$DB" --json check --user alice <"$T/bare"
expect_rc 0 "a token without a newline is allowed"
# surrounding white space is ignored, as the module ignores it (SPEC §2)
for around in ' %s' '%s ' '\t%s\t' '%s\r' '  %s \r' '\r%s'; do
	# shellcheck disable=SC2059 # the format is the case
	printf "$around\n" "$TM" >"$T/around"
	run "$KEYADM" --db "$DB" --json check --user alice <"$T/around"
	expect_rc 0 "a token written as '$around' is allowed"
done
printf 'v k_%s\n' "${TM#vk_}" >"$T/inside"
run "$KEYADM" --db "$DB" --json check --user alice <"$T/inside"
expect_json "white space inside a token is not ignored" '.reason == "malformed"'
# one line is read: what follows the token's line is not part of it, and endless input ends
# (a hang is what `timeout` catches: 60 s, for memcheck on a loaded host)
printf '%s\nsecond line\n' "$TM" >"$T/two"
run "$KEYADM" --db "$DB" --json check --user alice <"$T/two"
expect_rc 0 "check reads the first line only"
RC=0
yes | timeout 60 "$KEYADM" --db "$DB" check --user alice >"$T/out" 2>&1 || RC=$?
expect "yes | keyadm check ends with a denial, not a hang" [ "$RC" -eq 1 ]
RC=0
head -c 100000000 /dev/zero | timeout 60 "$KEYADM" --db "$DB" check --user alice >"$T/out" 2>&1 || RC=$?
expect "... and so does 100 MB without a newline" [ "$RC" -eq 1 ]

# ---- deny: the token ------------------------------------------------------------

check_decision "garbage is denied as malformed (exit 1)" "hello" 1 deny malformed --user alice
expect_json "... with no key, role or grant" '.key_id == null and .role == null and .via == null'
ka_in "hello" check --user alice
expect_out "... plain: deny and the reason" "deny: malformed"
check_decision "empty input is malformed" "" 1 deny malformed --user alice
check_decision "a token with a character outside [A-Za-z0-9_] is malformed" "$(printf '%s' "$TM" | sed 's/^\(.\{30\}\)./\1-/')" 1 deny malformed --user alice
check_decision "a truncated token is malformed" "${TM%?}" 1 deny malformed --user alice
check_decision "a token with a suffix is malformed" "${TM}x" 1 deny malformed --user alice
check_decision "a token with a wrong prefix is malformed" "vx_${TM#vk_}" 1 deny malformed --user alice
check_decision "OpenSSH's invalid-user password is malformed" "$(printf '\b\n\r\177INCORRECT')" 1 deny malformed --user alice
head -c 10240 /dev/zero | tr '\0' A >"$T/big"
run "$KEYADM" --db "$DB" --json check --user alice <"$T/big"
expect_rc 1 "10 KB on stdin is denied"
expect_json "... as malformed" '.decision == "deny" and .reason == "malformed"'
{
	printf '%s' "$TM"
	head -c 600 /dev/zero | tr '\0' A
} >"$T/long"
run "$KEYADM" --db "$DB" --json check --user alice <"$T/long"
expect_json "a valid token followed by 600 bytes is malformed" '.reason == "malformed"'

# one character of the secret changed: the checksum catches it before any lookup
c=$(printf '%s' "$TM" | cut -c40)
if [ "$c" = A ]; then r=B; else r=A; fi
BAD=$(printf '%s' "$TM" | cut -c1-39)$r$(printf '%s' "$TM" | cut -c41-)
check_decision "one changed character fails the checksum" "$BAD" 1 deny checksum --user alice
expect_json "... before the key is looked up" '.key_id == null'

# ---- deny: the key ----------------------------------------------------------------

mkkey machines "$MACH" --user alice
KG=$KEY_ID
TG=$TOKEN
ka keys delete --key-id "$KG"
check_decision "the token of a deleted key is unknown_key" "$TG" 1 deny unknown_key --user alice
expect_json "... naming the key ID" '.key_id == $k and .role == null and .via == null' --arg k "$KG"
ka_in "$TG" check --user alice
expect_out "... plain: deny, the reason and the key" "deny: unknown_key key $KG"

mkkey machines "$MACH" --user alice
KW=$KEY_ID
TW=$TOKEN
ka keys rotate --key-id "$KW"
check_decision "a rotated-away secret is wrong_secret" "$TW" 1 deny wrong_secret --user alice
expect_json "... naming the key ID" '.key_id == $k' --arg k "$KW"

mkkey machines "$MACH" --user alice
KD=$KEY_ID
TD=$TOKEN
ka keys disable --key-id "$KD"
check_decision "a disabled key is denied" "$TD" 1 deny disabled --user alice
ka keys enable --key-id "$KD"
check_decision "... and allowed again once enabled" "$TD" 0 allow ok --user alice

check_decision "a user the key does not name is denied" "$TM" 1 deny user_not_allowed --user mallory
check_decision "user names match exactly" "$TM" 1 deny user_not_allowed --user Alice
check_decision "a machine key on another machine of its location is out of scope" "$TM2" 1 deny scope --user alice
check_decision "a location key on another location's machine is out of scope" "$TL2" 1 deny scope --user alice
check_decision "a key of another organization's machine is out of scope" "$TMX" 1 deny scope --user alice
check_decision "--machine-id checks as another machine" "$TMX" 0 allow ok --user alice --machine-id "$MX"
check_decision "... where this machine's key is out of scope" "$TM" 1 deny scope --user alice --machine-id "$MX"
check_decision "a viewer key does not satisfy the default operator requirement" "$TV" 1 deny role --user alice
expect_json "... naming the key but no grant" '.key_id != null and .via == null'

while [ "$(date +%s)" -le "$EXPIRES" ]; do sleep 1; done
check_decision "an expired key is denied" "$TX" 1 deny expired --user alice
expect_json "... naming the key" '.key_id == $k' --arg k "$KX"

ka_in "$TM" --json check --user alice --machine-id "$NOSUCH"
expect_rc 1 "check on a machine that is not in the store fails"
expect_err_re "... and says so" "^keyadm: .*$NOSUCH is not in the store"
expect "... printing no decision" [ -z "$OUT" ]

# check does not write to the store, not even last use
snapshot >"$T/before-checks"
for tok in "$TM" "$TL" "$TO" "$TW" "$TG" "$BAD" "$TX" "$TV" hello; do
	ka_in "$tok" check --user alice --service sshd --rhost 192.0.2.1
done
ka_in "$TM" check --user mallory
snapshot >"$T/after-checks"
expect "check never writes to the store" cmp -s "$T/before-checks" "$T/after-checks"
ka --json keys show --key-id "$KM"
expect_json "... not even last use" '.last_used == null'

# ---- the required role from the config --------------------------------------------------

CONF=$T/viamkey.conf
printf '[services]\nsudo = owner\nsshd = viewer\n' >"$CONF"
VIAMKEY_CONFIG=$CONF
check_decision "[services] sudo = owner: an operator key is denied for sudo" "$TL" 1 deny role --user alice --service sudo
check_decision "... an owner key is allowed" "$TM" 0 allow ok --user alice --service sudo
check_decision "... service names match case-insensitively" "$TL" 1 deny role --user alice --service SUDO
check_decision "[services] sshd = viewer: a viewer key is allowed for sshd" "$TV" 0 allow ok --user alice --service sshd
check_decision "a service not in [services] needs operator" "$TV" 1 deny role --user alice --service login
check_decision "... which an operator key has" "$TL" 0 allow ok --user alice --service login
printf '[pam]\nrole = owner\n[services]\nsshd = viewer\n' >"$CONF"
check_decision "[pam] role applies to services not in [services]" "$TL" 1 deny role --user alice --service login
check_decision "... and without --service" "$TL" 1 deny role --user alice
check_decision "... but [services] comes first" "$TV" 0 allow ok --user alice --service sshd
printf '[machine]\nid = %s\n' "$MX" >"$CONF"
check_decision "[machine] id overrides the machine recorded by init" "$TMX" 0 allow ok --user alice
check_decision "... so this host's key is out of scope there" "$TM" 1 deny scope --user alice
check_decision "--machine-id overrides [machine] id" "$TM" 0 allow ok --user alice --machine-id "$MACH"
printf '[machine]\nid = %s\n' "$NOSUCH" >"$CONF"
ka_in "$TM" check --user alice
expect_rc 1 "[machine] id not in the store fails"
expect_err_re "... and says so" "$NOSUCH is not in the store"
VIAMKEY_CONFIG=$T/absent.conf

# ---- usage --------------------------------------------------------------------------

snapshot >"$T/before"
ka_in "$TM" check
expect_refusal 2 "check without --user"
snapshot >"$T/before"
ka_in "$TM" check --user alice --user root
expect_refusal 2 "check with two --user"
snapshot >"$T/before"
ka_in "$TM" check --user alice --machine-id "$MACH-0"
expect_refusal 2 "check with a malformed --machine-id"
snapshot >"$T/before"
ka_in "$TM" check --user alice --key-id "$KM"
expect_refusal 2 "check with --key-id, not an option of it"

finish
