#!/bin/sh
# The fleet's scopes, through a real three-node bus (fleet-lib.sh):
#  - an organization key reaches every machine of the organization, a
#    location key that location's machines, a machine key its machine, and
#    none of them any other machine: keyadm check and a real PAM login
#    through each replica, and keyadm keys list on each replica holds exactly
#    the keys that cover it (its tree only its own rows);
#  - keyadm sync wait returns 0 once every machine applied a change (checked
#    at once, with no further wait), and exits 1 naming a machine whose
#    daemon is stopped, and no other;
#  - a machine whose daemon was stopped while keys were created, deleted and
#    ungranted converges when it starts again, removals included;
#  - a keyadm write on a replica exits 1, names the authority and changes
#    nothing;
#  - the sqlite3 shell reading the authority's store while its daemon runs
#    does not stop the daemon from seeing (and publishing) later changes;
#  - machines started before a new authority (no bucket, no heartbeat yet)
#    wait for its first heartbeat: none backs off or times out reading one,
#    and the first one sets each reading its scopes (a timed figure is the
#    fleet bench's, not this test's);
#  - every line a daemon writes with --verbose carries its time.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-scope

f_tree
# the machines first, beside a bus with no bucket: the authority starts a moment later
f_bus_start
f_machines $MACHINES
f_servers
for m in $MACHINES; do f_syncd_start "$m"; done
waiting() {
	for w_m in $MACHINES; do grep -q "no heartbeat on the bus yet" "$WORK/$w_m/syncd.log" || return 1; done
}
check "machines started before the authority say they wait for its first heartbeat (within 30 s)" \
	f_until 30 waiting
f_syncd_start authority
in_step() {
	for w_m in $MACHINES; do grep -q "replica in step" "$WORK/$w_m/syncd.log" || return 1; done
}
check "the authority's first heartbeat brings every machine in step (within 30 s)" f_until 30 in_step
for m in $MACHINES; do
	check "$m neither backed off nor timed out before it was first in step" \
		eval '! sed "/replica in step/q" "$WORK/$m/syncd.log" | grep -q -e "trying again in" -e Timeout'
done
check "every line of a daemon's --verbose log carries its UTC time" \
	eval '! grep -hv -e "^[0-9]\{4\}-[0-9][0-9]-[0-9][0-9]T[0-9:]\{8\}\.[0-9]\{3\}Z viamkey-syncd\[[0-9]*\]: " -e "^---- " "$WORK"/*/syncd.log | grep -q .'

ka_key ORGK organizations api-key create --org-id "$ORG" --user vkt-ann --name org-key
ka_key LOCK locations api-key create --location-id "$LOC_A" --user vkt-bob --name loc-key
ka_key MK machines api-key create --machine-id "$M3" --user vkt-cat --name machine-key
ka_key ORG2K organizations api-key create --org-id "$ORG2" --user vkt-dan --name org2-key
[ -n "$ORGK_TOKEN" ] && [ -n "$LOCK_TOKEN" ] && [ -n "$MK_TOKEN" ] && [ -n "$ORG2K_TOKEN" ] ||
	{ echo "FAIL: cannot create the keys: $(cat "$WORK/ka_key.err")"; exit 99; }

check "sync wait returns 0 once every machine applied the new keys" f_sync_wait 60

# after sync wait, every replica holds them already: no further wait
allowed() { f_check "$1" "$2" "$3" && grep -q "^allow: key $4 " "$WORK/check.out"; }
unknown() { ! f_check "$1" "$2" "$3" && grep -q "^deny: unknown_key" "$WORK/check.out"; }
for m in M1 M2 M3; do
	check "the organization key is allowed on $m" allowed "$m" vkt-ann "$ORGK_TOKEN" "$ORGK_ID"
done
check "the organization key is unknown on M4 (another organization)" unknown M4 vkt-ann "$ORGK_TOKEN"
for m in M1 M2; do
	check "the location key is allowed on $m" allowed "$m" vkt-bob "$LOCK_TOKEN" "$LOCK_ID"
done
for m in M3 M4; do
	check "the location key is unknown on $m (another location)" unknown "$m" vkt-bob "$LOCK_TOKEN"
done
check "the machine key is allowed on M3" allowed M3 vkt-cat "$MK_TOKEN" "$MK_ID"
for m in M1 M2 M4; do
	check "the machine key is unknown on $m" unknown "$m" vkt-cat "$MK_TOKEN"
done
check "the other organization's key is allowed on M4" allowed M4 vkt-dan "$ORG2K_TOKEN" "$ORG2K_ID"
for m in M1 M2 M3; do
	check "the other organization's key is unknown on $m" unknown "$m" vkt-dan "$ORG2K_TOKEN"
done

# keys list on each replica: exactly what covers it
expect_keys() {
	f_m=$1
	shift
	printf '%s\n' "$@" | sort >"$WORK/keys.want"
	f_keys "$f_m" >"$WORK/keys.got" && cmp -s "$WORK/keys.want" "$WORK/keys.got"
}
check "M1's replica holds the organization and location keys, nothing else" expect_keys M1 "$ORGK_ID" "$LOCK_ID"
check "M2's replica holds the organization and location keys, nothing else" expect_keys M2 "$ORGK_ID" "$LOCK_ID"
check "M3's replica holds the organization and machine keys, nothing else" expect_keys M3 "$ORGK_ID" "$MK_ID"
check "M4's replica holds its organization's key, nothing else" expect_keys M4 "$ORG2K_ID"

# the replica's tree: its own organization, location and machine only
tree_of() {
	sqlite3 "$WORK/$1/store/keys.db" "SELECT (SELECT group_concat(id) FROM organizations),
		(SELECT group_concat(id) FROM locations), (SELECT group_concat(id) FROM machines)"
}
check "M1's replica holds only its own organization, location and machine" \
	test "$(tree_of M1)" = "$ORG|$LOC_A|$M1"
check "M4's replica holds only its own organization, location and machine" \
	test "$(tree_of M4)" = "$ORG2|$LOC_C|$M4"

# real PAM logins through the replicas
check "PAM login with the organization key through M2's replica" f_login M2 vkt-ann "$ORGK_TOKEN"
check "PAM login with the location key through M1's replica" f_login M1 vkt-bob "$LOCK_TOKEN"
check "PAM login with the machine key through M3's replica" f_login M3 vkt-cat "$MK_TOKEN"
check "PAM login with the organization key through M4's replica is refused" \
	eval '! f_login M4 vkt-ann "$ORGK_TOKEN" && grep -q "^authenticate .*Authentication failure" "$WORK/login.out"'
check "PAM login with the machine key through M1's replica is refused" eval '! f_login M1 vkt-cat "$MK_TOKEN"'

# ---- a keyadm write on a replica -------------------------------------------
# what a write could change: everything but the daemon's heartbeat bookkeeping and the
# logins it takes from the module's journal meanwhile (SPEC §11)
dump() {
	sqlite3 "$WORK/M1/store/keys.db" "
	SELECT 'key', id, name, disabled, protected, break_glass, expires_at FROM keys ORDER BY id;
	SELECT 'grant', key_id, role, resource_type, resource_id FROM grants ORDER BY 2, 4, 5;
	SELECT 'user', key_id, user FROM key_users ORDER BY 2, 3;
	SELECT 'secret', key_id, hex(salt), hex(verifier), expires_at FROM secrets ORDER BY 2, 3;
	SELECT 'org', id, name FROM organizations ORDER BY id;
	SELECT 'loc', id, name FROM locations ORDER BY id;
	SELECT 'machine', id, name, location_id FROM machines ORDER BY id;
	SELECT 'event', id, action FROM events WHERE kind = 'admin' ORDER BY id;
	SELECT 'held', kind, id, rev, full FROM sync_held ORDER BY 2, 3;
	SELECT 'meta', name, value FROM meta WHERE name IN ('fleet_role', 'fleet_revision') ORDER BY 2;"
}
dump >"$WORK/replica.before"
host=$(hostname)
refused_write() {
	km M1 "$@" >"$WORK/write.out" 2>"$WORK/write.err"
	f_s=$?
	[ "$f_s" -eq 1 ] && grep -q "^keyadm: .*authority $host" "$WORK/write.err" ||
		{ echo "  (keyadm $*: exit $f_s: $(cat "$WORK/write.err"))"; return 1; }
}
check "keys disable on a replica exits 1 and names the authority" refused_write keys disable --key-id "$ORGK_ID"
check "keys delete on a replica exits 1 and names the authority" refused_write keys delete --key-id "$LOCK_ID"
check "keys rotate on a replica exits 1 and names the authority" refused_write keys rotate --key-id "$ORGK_ID"
check "api-key create on a replica exits 1 and names the authority" \
	refused_write machines api-key create --machine-id "$M1" --user vkt-eve
check "organizations create on a replica exits 1 and names the authority" \
	refused_write organizations create --name rogue
check "keys mark-break-glass on a replica exits 1 and names the authority" \
	refused_write keys mark-break-glass --key-id "$ORGK_ID"
dump >"$WORK/replica.after"
check "the refused writes changed nothing in the replica" cmp -s "$WORK/replica.before" "$WORK/replica.after"
check "the organization key still works on M1 after the refused writes" allowed M1 vkt-ann "$ORGK_TOKEN" "$ORGK_ID"

# ---- sync wait with a machine's daemon stopped; that machine catches up ----------
ka_key UG locations api-key create --location-id "$LOC_A" --user vkt-fay --name ungranted
ka keys grant --key-id "$UG_ID" --role operator --machine-id "$M3" >/dev/null
check "sync wait returns 0 with every daemon running" f_sync_wait 60
check "the key with two grants is allowed on M2 before M2 stops" allowed M2 vkt-fay "$UG_TOKEN" "$UG_ID"

f_syncd_stop M2
ka_key NEW locations api-key create --location-id "$LOC_A" --user vkt-gus --name created-meanwhile
ka keys delete --key-id "$LOCK_ID" >/dev/null
ka keys ungrant --key-id "$UG_ID" --location-id "$LOC_A" >/dev/null
waited=0
ka sync wait --timeout 3s >"$WORK/sync-wait.out" 2>"$WORK/sync-wait.err" || waited=$?
check "sync wait exits 1 while M2's daemon is stopped" test "$waited" -eq 1
check "sync wait names M2 on stderr" grep -q "$M2" "$WORK/sync-wait.err"
check "sync wait names no machine that applied the change" \
	eval '! grep -q -e "$M1" -e "$M3" -e "$M4" "$WORK/sync-wait.err"'
check "the other machines applied the changes: the new key works on M1" allowed M1 vkt-gus "$NEW_TOKEN" "$NEW_ID"
check "the other machines applied the changes: the deleted key is gone from M1" unknown M1 vkt-bob "$LOCK_TOKEN"
check "the ungranted key still works on M3 through its machine grant" allowed M3 vkt-fay "$UG_TOKEN" "$UG_ID"
check "M2's replica (daemon stopped) still has the old state" allowed M2 vkt-bob "$LOCK_TOKEN" "$LOCK_ID"

f_syncd_start M2
check "sync wait returns 0 once M2's daemon is back" f_sync_wait 60
check "M2 caught up with the key created meanwhile" allowed M2 vkt-gus "$NEW_TOKEN" "$NEW_ID"
check "M2 caught up with the deletion" unknown M2 vkt-bob "$LOCK_TOKEN"
check "M2 caught up with the ungrant (the key no longer covers it)" unknown M2 vkt-fay "$UG_TOKEN"
check "M2's replica holds exactly the keys that cover it" expect_keys M2 "$ORGK_ID" "$NEW_ID"
check "M3's replica holds the ungranted key with its machine grant only" \
	test "$(km M3 --json keys show --key-id "$UG_ID" | jq -c '[.authorizations[].resource_id]')" = "[\"$M3\"]"
check "PAM login through M2 with the key created while its daemon was stopped" f_login M2 vkt-gus "$NEW_TOKEN"

# another program reading the authority's store (the sqlite3 shell) while
# its daemon runs: the daemon must go on seeing what keyadm commits
wal_before=$(stat -c %i "$WORK/authority/store/keys.db-wal")
sqlite3 "$WORK/authority/store/keys.db" "SELECT count(*) FROM keys" >/dev/null
check "the sqlite3 shell reading the authority's store leaves its log in place" \
	test "$(stat -c %i "$WORK/authority/store/keys.db-wal" 2>/dev/null)" = "$wal_before"
ka_key LATE organizations api-key create --org-id "$ORG" --user vkt-hal --name after-sqlite3
check "a change made after that still reaches every machine (sync wait 0)" f_sync_wait 60
check "... and lets its key in through M3" allowed M3 vkt-hal "$LATE_TOKEN" "$LATE_ID"

check "no daemon dropped a record or met a permissions violation" \
	eval '! grep -l -i -e "dropped" -e "permission" "$WORK"/*/syncd.log'
check_end
