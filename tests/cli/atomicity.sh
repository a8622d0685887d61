#!/bin/sh
# A command that fails part-way leaves the store exactly as it was.
#
# Every refusal in the other scripts is already checked for an unchanged
# store (lib.sh's `refused`). Here the store itself makes the last step of
# each write fail: a trigger aborts the audit event that every change
# records at its end, after the change itself was made. keyadm must roll
# all of it back, say why, and print no token.
. "$(dirname "$0")/lib.sh"

setup_store
must "a location" --json locations create --org-id "$ORG" --name L2
L2=$(jqr .id)
must "a machine" --json machines create --location-id "$L2" --name M2
M2=$(jqr .id)
must "a spare organization" --json organizations create --name spare
O2=$(jqr .id)
mkkey machines "$MACH" --user alice --name victim
K=$KEY_ID
# a second grant and user, so that ungrant and remove-user would succeed but for the trigger
ka keys grant --key-id "$K" --role viewer --location-id "$LOC" >/dev/null
ka keys add-user --key-id "$K" --user carol >/dev/null
TOK=$TOKEN
mkkey machines "$MACH" --user alice --name windowed
KW=$KEY_ID
ka keys rotate --key-id "$KW" --grace 1h
mkkey machines "$MACH" --user alice --name disabled
KD=$KEY_ID
ka keys disable --key-id "$KD"
mkkey machines "$MACH" --user alice --name protected --protected
KP=$KEY_ID

sqlite3 "$DB" "CREATE TRIGGER sabotage BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'sabotaged'); END"

aborted() {
	_desc=$1
	shift
	refused 1 "$_desc is rolled back" "$@"
	expect_err_re "... and says why" "audit event: sabotaged"
}

aborted "organizations create" organizations create --name x
aborted "organizations rename" organizations rename --org-id "$O2" --name x
aborted "organizations delete" organizations delete --org-id "$O2"
aborted "locations create" locations create --org-id "$ORG" --name x
aborted "locations rename" locations rename --location-id "$L2" --name x
aborted "machines create" machines create --location-id "$L2" --name x
aborted "machines rename" machines rename --machine-id "$M2" --name x
aborted "machines delete" machines delete --machine-id "$M2"
aborted "organizations api-key create" organizations api-key create --org-id "$ORG" --user a
aborted "locations api-key create" locations api-key create --location-id "$LOC" --user a --protected
aborted "machines api-key create" --json machines api-key create --machine-id "$MACH" --user a --user b --expires-in 1d
aborted "keys grant" keys grant --key-id "$K" --role viewer --location-id "$L2"
aborted "keys grant changing a role" keys grant --key-id "$K" --role viewer --machine-id "$MACH"
aborted "keys ungrant" keys ungrant --key-id "$K" --machine-id "$MACH"
aborted "keys add-user" keys add-user --key-id "$K" --user bob
aborted "keys remove-user" keys remove-user --key-id "$K" --user alice
aborted "keys rotate" keys rotate --key-id "$K"
aborted "keys rotate --grace" keys rotate --key-id "$K" --grace 1h
aborted "keys rotate --finish" keys rotate --key-id "$KW" --finish
aborted "keys clone" --json keys clone --key-id "$K"
aborted "keys clone --name" keys clone --key-id "$K" --name copy
aborted "keys rename" keys rename --key-id "$K" --name x
aborted "keys disable" keys disable --key-id "$K"
aborted "keys enable" keys enable --key-id "$KD"
aborted "keys protect" keys protect --key-id "$K"
aborted "keys unprotect" keys unprotect --key-id "$KP"
aborted "keys delete" keys delete --key-id "$K"
check_decision "the key still works after every aborted change" "$TOK" 0 allow ok --user alice

# init with names on a store that has no host machine yet
sqlite3 "$DB" "DROP TRIGGER sabotage"
DB0=$DB
DB=$T/bare/keys.db
must "a store without a hierarchy" init
sqlite3 "$DB" "CREATE TRIGGER sabotage BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'sabotaged'); END"
snapshot >"$T/before"
ka init --org A --location B --machine C
snapshot >"$T/after"
expect_rc 1 "init whose hierarchy cannot be recorded fails"
expect "... and creates no part of it" cmp -s "$T/before" "$T/after"
DB=$DB0

# a failure after the old secret was retired: the rotation must not half-happen
sqlite3 "$DB" "CREATE TRIGGER sabotage2 BEFORE INSERT ON secrets BEGIN SELECT RAISE(ABORT, 'no secrets'); END"
refused 1 "a rotation whose new secret cannot be stored is rolled back" keys rotate --key-id "$K"
check_decision "... and the old token still works" "$TOK" 0 allow ok --user alice
refused 1 "... and with --grace" keys rotate --key-id "$K" --grace 1d
ka --json keys show --key-id "$K"
expect_json "... leaves no window open" '(.secrets | length) == 1 and .secrets[0].expires_at == null'
sqlite3 "$DB" "DROP TRIGGER sabotage2"

# ---- a concurrent writer --------------------------------------------------------------

# keyadm waits for another writer's transaction (up to its busy timeout) instead of failing
printf 'BEGIN IMMEDIATE;\nUPDATE meta SET value = value;\n.shell sleep 1\nCOMMIT;\n' | sqlite3 "$DB" &
LOCKER=$!
sleep 0.3
ka keys rename --key-id "$K" --name after-wait
expect_rc 0 "a write waits for a concurrent writer to finish"
wait "$LOCKER"
ka --json keys show --key-id "$K"
expect_json "... and then succeeds" '.name == "after-wait"'

finish
