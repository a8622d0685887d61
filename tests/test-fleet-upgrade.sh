#!/bin/sh
# A fleet upgrades one host at a time, machines first (SPEC §8, rule 11),
# with two builds side by side: $VK_BASELINE, viamkey's first fleet format
# as it was released (scripts/run-tests.sh builds it from git), and this
# tree. A real three-node bus starts with the first format's accounts
# (its docs/examples), an authority and four machines of the old build;
# logins run on every machine, each through its own module, all along.
#  1. M1, M2 and M3 upgraded (module, keyadm, daemon) under the old
#     authority: they migrate their replicas, read by catch-up consumers as
#     that bus allows, and follow changes; M4 still runs the old build.
#  2. The authority upgraded (keyadm init migrates its store): it makes the
#     bucket again as format 2 wants it and publishes everything again; the
#     old M4 keeps following (it refuses the scope heads as a version it does
#     not know), sync status shows each machine's format.
#  3. M4 upgraded; then the bus's accounts switched to this tree's
#     docs/examples, each node restarted in turn: the machines, moved to
#     their own account, read by direct gets, and a machine's bus user can
#     no longer purge the bucket.
# No login fails at any point, and every change reaches every machine.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-upgrade
OLD=${VK_BASELINE:-}
[ -n "$OLD" ] && [ -x "$OLD/syncd/viamkey-syncd" ] && [ -x "$OLD/keyadm/keyadm" ] &&
	[ -f "$OLD/pam_viamkey/.libs/pam_viamkey.so" ] ||
	f_skip "fleet-upgrade needs VK_BASELINE, a build of the first fleet format (scripts/run-tests.sh makes one)"
NEW_KEYADM=$KEYADM NEW_SYNCD=$SYNCD NEW_MODULE=$MODULE NEW_EXAMPLES=$EXAMPLES
KEYADM=$OLD/keyadm/keyadm
SYNCD=$OLD/syncd/viamkey-syncd
MODULE=$OLD/pam_viamkey/.libs/pam_viamkey.so
EXAMPLES=$OLD/docs/examples

f_tree
f_bus_start
f_machines $MACHINES
f_servers
f_syncd_start authority
for m in $MACHINES; do f_syncd_start "$m"; done
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name everywhere
ka_key K4 organizations api-key create --org-id "$ORG2" --user vkt-four --name org-two
[ -n "$K_TOKEN" ] && [ -n "$K4_TOKEN" ] || { echo "FAIL: cannot create the keys"; exit 99; }
check "the old fleet: sync wait returns 0" f_sync_wait 60

# ---- logins all along --------------------------------------------------------------------
# Every machine, one PAM login after another, through whatever module its
# service file names at that moment; each failure is written down.
logins() {
	while [ ! -f "$WORK/logins.stop" ]; do
		for l_m in $MACHINES; do
			l_token=$K_TOKEN l_user=vkt-ann
			[ "$l_m" = M4 ] && l_token=$K4_TOKEN l_user=vkt-four
			printf '%s\n' "$l_token" | "$PAM_LOGIN" --confdir "$WORK/$l_m/pam.d" \
				--service viamkey-test "$l_user" >"$WORK/logins.$l_m.out" 2>&1 ||
				{ echo "$(date +%T.%N | cut -c1-12) $l_m"; cat "$WORK/logins.$l_m.out"; } >>"$WORK/logins.failed"
			l_n=$(($(cat "$WORK/logins.count" 2>/dev/null || echo 0) + 1))
			echo "$l_n" >"$WORK/logins.count"
		done
		sleep 0.2
	done
}
check "every machine lets its key in before the upgrade" f_all 0 vkt-ann "$K_TOKEN" M1 M2 M3
: >"$WORK/logins.failed"
logins &
f_track logins "$!"
LOGINS=$!

# upgrade M: its module (the service file replaced whole), keyadm and daemon
upgrade() {
	MODULE=$NEW_MODULE pam_service "$WORK/$1/pam.d/viamkey-test.new" "$WORK/$1/viamkey.conf"
	MODULE=$OLD/pam_viamkey/.libs/pam_viamkey.so
	mv "$WORK/$1/pam.d/viamkey-test.new" "$WORK/$1/pam.d/viamkey-test"
	f_syncd_stop "$1"
	SYNCD=$NEW_SYNCD
	f_syncd_start "$1"
	SYNCD=$OLD/syncd/viamkey-syncd
	f_mark "$1 upgraded"
}
schema() { sqlite3 "$WORK/$1/store/keys.db" "PRAGMA user_version"; }

# ---- 1: machines first ------------------------------------------------------------------
for m in M1 M2 M3; do upgrade "$m"; done
migrated() { [ "$(schema M1)" = 6 ] && [ "$(schema M2)" = 6 ] && [ "$(schema M3)" = 6 ]; }
check "1: the upgraded daemons migrated their replicas (within 30 s)" f_until 30 migrated
check "1: the old machine's replica is as it was" test "$(schema M4)" = 3
ka_key K2 organizations api-key create --org-id "$ORG" --user vkt-two --name under-old-authority
check "1: a change of the old authority reaches every machine (sync wait 0)" f_sync_wait 60
KEYADM=$NEW_KEYADM
check "1: it works on the upgraded machines" f_all 0 vkt-two "$K2_TOKEN" M1 M2 M3
KEYADM=$OLD/keyadm/keyadm
check "1: the upgraded machines read by catch-up consumers, as the old bus allows" \
	eval 'grep -q "reading by catch-up consumers" "$WORK/M1/syncd.log"'

# ---- 2: the authority -------------------------------------------------------------------
f_syncd_stop authority
KEYADM=$NEW_KEYADM
check "2: keyadm init migrates the authority's store" ka init
check "2: to schema 6" test "$(schema authority)" = 6
SYNCD=$NEW_SYNCD
f_syncd_start authority
SYNCD=$OLD/syncd/viamkey-syncd
f_mark "authority upgraded"
check "2: the upgraded authority makes the bucket again as format 2 wants it (within 30 s)" \
	f_until 30 eval 'f_stream | jq -e ".config.deny_purge and (.config.allow_rollup_hdrs | not)" >/dev/null'
check "2: its log says why" grep -q "an older viamkey-syncd made it" "$WORK/authority/syncd.log"
ka_key K3 organizations api-key create --org-id "$ORG" --user vkt-three --name under-new-authority
check "2: a change of the new authority reaches every machine, the old one too (sync wait 0)" f_sync_wait 60
check "2: it works everywhere" f_all 0 vkt-three "$K3_TOKEN" M1 M2 M3
check "2: the other organization's key still works on the old M4" f_check M4 vkt-four "$K4_TOKEN"
# formats: each machine's format as sync status shows it, M1 to M4
formats() {
	ka --json sync status >"$WORK/status.json"
	for f_m in $MACHINES; do
		jq -r ".machines[] | select(.id == \"$(f_id "$f_m")\") | .format" "$WORK/status.json"
	done | tr '\n' ' '
}
check "2: sync status shows each machine's format, 2 2 2 1 (within 30 s)" \
	f_until 30 eval 'test "$(formats)" = "2 2 2 1 "'
# the heads go out in a round after the records that M4 acknowledged
check "2: the old machine refuses the scope heads as a version it does not know (within 30 s)" \
	f_until 30 grep -q "could not apply .*\.h: a malformed record (version" "$WORK/M4/syncd.log"

# ---- 3: the last machine, then the bus's accounts ------------------------------------------
upgrade M4
check "3: M4 migrated its replica (within 30 s)" f_until 30 eval 'test "$(schema M4)" = 6'
check "3: sync status shows format 2 everywhere (within 30 s)" \
	f_until 30 eval 'test "$(formats)" = "2 2 2 2 "'
# the new accounts on every node, then each node restarted in turn (docs/FLEET.md:
# a reload would leave a moved user's connection in the account it left)
EXAMPLES=$NEW_EXAMPLES
f_bus_conf
f_mark "the bus's accounts switched"
for n in 1 2 3; do
	f_stop "$(f_node_pid "$n")"
	f_untrack "nats-n$n" "$(f_node_pid "$n")"
	f_node_start "$n"
	check "3: node $n restarted with the new accounts, the bus is healthy (within 30 s)" \
		f_until 30 f_bus_healthy
done
# in_account ACCOUNT: every machine's daemon is connected as a user of ACCOUNT (the servers' connz)
in_account() {
	: >"$WORK/connz"
	for n in 1 2 3; do
		eval "i_h=\$H$n"
		curl -fsS -m 2 "http://127.0.0.1:$i_h/connz?auth=true&limit=1024" >>"$WORK/connz" || return 1
	done
	for i_m in $MACHINES; do
		jq -s -e --arg name "viamkey-syncd $(f_id "$i_m")" --arg acc "$1" \
			'[.[].connections[]? | select(.name == $name and .account == $acc)] | length > 0' \
			"$WORK/connz" >/dev/null || return 1
	done
}
check "3: every machine's daemon is connected in the machines' own account (within 60 s)" \
	f_until 60 in_account MACHINES
ka keys disable --key-id "$K3_ID" >/dev/null
check "3: a change reaches every machine (sync wait 0)" f_sync_wait 60
check "3: the disabled key is refused everywhere" f_all 1 vkt-three "$K3_TOKEN" M1 M2 M3
M4ID=$(f_id M4)
f_stream >"$WORK/stream.before"
f_bus_as M4 publish "vkack.$BUCKET.$M4ID" '{"machine":"'"$M4ID"'","rev":1,"at":0}' \
	"\$JS.API.STREAM.PURGE.KV_$BUCKET" >/dev/null 2>&1
f_bus_as M4 publish "\$KV.$BUCKET.a.$M4ID" '{"machine":"'"$M4ID"'","rev":1,"at":0}' \
	"\$JS.API.STREAM.PURGE.KV_$BUCKET" >/dev/null 2>&1
sleep 1
check "3: under the new accounts a machine's acknowledgement cannot purge the bucket" \
	eval '[ "$(f_stream | jq .state.messages)" -ge "$(jq .state.messages "$WORK/stream.before")" ]'

touch "$WORK/logins.stop"
f_stop "$LOGINS"
f_untrack logins "$LOGINS"
check "logins ran all along ($(cat "$WORK/logins.count") of them)" test "$(cat "$WORK/logins.count")" -gt 40
check "no login failed during the upgrade" eval '! test -s "$WORK/logins.failed" || { head -n 20 "$WORK/logins.failed"; false; }'
check "every replica holds exactly what covers it" f_converged $MACHINES
check_end
