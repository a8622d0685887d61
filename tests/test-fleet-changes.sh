#!/bin/sh
# Every kind of change reaches every machine a key covers, through a real
# three-node bus (fleet-lib.sh), and a real PAM login through each replica
# follows it: disable and enable, add-user and remove-user, rotate (the old
# secret stops at once), rotate --grace (both secrets work) and --finish (the
# old one stops), mark-break-glass, grant and ungrant, a lowered role, and
# delete. After each change keyadm sync wait returns 0, and then every
# replica gives the new answer at once: sync wait reports only what was
# applied.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-changes

f_tree
f_fleet

COVERED="M1 M2 M3"

# the key: operator on the organization (M1, M2, M3), never on M4
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --role operator --name changing
[ -n "$K_TOKEN" ] || { echo "FAIL: cannot create the key: $(cat "$WORK/ka_key.err")"; exit 99; }

# step DESC KEYADM-ARGS...: a change on the authority, then sync wait
step() {
	f_what=$1
	shift
	if ka "$@" >"$WORK/step.out" 2>&1; then
		check "$f_what: sync wait returns 0" f_sync_wait 60
	else
		check "$f_what: keyadm $* ($(cat "$WORK/step.out"))" false
	fi
}

# logins STATUS USER TOKEN REASON M...: a PAM login through each replica ends
# with STATUS (0 allowed, 1 refused), and keyadm check there says REASON.
logins() {
	f_ws=$1 f_wu=$2 f_wt=$3 f_wr=$4
	shift 4
	for f_wm in "$@"; do
		f_s=0
		f_login "$f_wm" "$f_wu" "$f_wt" || f_s=$?
		if [ "$f_s" -ne "$f_ws" ]; then
			echo "  ($f_wm: PAM login exit $f_s: $(tr '\n' ' ' <"$WORK/login.out"))"
			return 1
		fi
		f_check "$f_wm" "$f_wu" "$f_wt"
		grep -q "^$f_wr" "$WORK/check.out" || { echo "  ($f_wm: $(cat "$WORK/check.out"))"; return 1; }
	done
}

check "sync wait returns 0 after the key was created" f_sync_wait 60
check "created: PAM login works on M1, M2 and M3" logins 0 vkt-ann "$K_TOKEN" "allow:" $COVERED
check "created: refused on M4, which the key does not cover" logins 1 vkt-ann "$K_TOKEN" "deny: unknown_key" M4

step "disable" keys disable --key-id "$K_ID"
check "disabled: PAM login refused on M1, M2 and M3" logins 1 vkt-ann "$K_TOKEN" "deny: disabled" $COVERED

step "enable" keys enable --key-id "$K_ID"
check "enabled: PAM login works again on M1, M2 and M3" logins 0 vkt-ann "$K_TOKEN" "allow:" $COVERED

step "add-user" keys add-user --key-id "$K_ID" --user vkt-bob
check "add-user: the new user logs in on M1, M2 and M3" logins 0 vkt-bob "$K_TOKEN" "allow:" $COVERED
step "remove-user" keys remove-user --key-id "$K_ID" --user vkt-ann
check "remove-user: the removed user is refused on M1, M2 and M3" logins 1 vkt-ann "$K_TOKEN" "deny: user" $COVERED
check "remove-user: the remaining user still logs in" logins 0 vkt-bob "$K_TOKEN" "allow:" $COVERED

OLD=$K_TOKEN
ka --json keys rotate --key-id "$K_ID" >"$WORK/rotate.json" 2>/dev/null
NEW=$(jq -r .key "$WORK/rotate.json")
check "rotate: sync wait returns 0" f_sync_wait 60
check "rotate: the old secret is refused on M1, M2 and M3" logins 1 vkt-bob "$OLD" "deny: wrong_secret" $COVERED
check "rotate: the new secret works on M1, M2 and M3" logins 0 vkt-bob "$NEW" "allow:" $COVERED

ka --json keys rotate --key-id "$K_ID" --grace 1h >"$WORK/rotate.json" 2>/dev/null
NEWER=$(jq -r .key "$WORK/rotate.json")
check "rotate --grace: sync wait returns 0" f_sync_wait 60
check "rotate --grace: the new secret works on M1, M2 and M3" logins 0 vkt-bob "$NEWER" "allow:" $COVERED
check "rotate --grace: the old secret still works on M1, M2 and M3" logins 0 vkt-bob "$NEW" "allow:" $COVERED
check "rotate --grace: M2's replica shows both secrets, the old one expiring" \
	test "$(km M2 --json keys show --key-id "$K_ID" | jq -c '[.secrets[] | .expires_at == null] | sort')" = '[false,true]'

step "rotate --finish" keys rotate --key-id "$K_ID" --finish
check "rotate --finish: the old secret is refused on M1, M2 and M3" logins 1 vkt-bob "$NEW" "deny: wrong_secret" $COVERED
check "rotate --finish: the new secret works on M1, M2 and M3" logins 0 vkt-bob "$NEWER" "allow:" $COVERED

# flagged M...: every machine M's replica shows the key with the break-glass flag
flagged() {
	for m in "$@"; do
		km "$m" --json keys show --key-id "$K_ID" >"$WORK/show.json" &&
			jq -e .break_glass "$WORK/show.json" >/dev/null || return 1
	done
}

# lacking M...: every machine M's replica lists keys, and not K
lacking() {
	for m in "$@"; do
		km "$m" --json keys list >"$WORK/list.json" && ! grep -q "$K_ID" "$WORK/list.json" ||
			return 1
	done
}

step "mark-break-glass" keys mark-break-glass --key-id "$K_ID"
# shellcheck disable=SC2086 # the machines split on purpose
check "mark-break-glass: every covered replica shows the flag" flagged $COVERED

# ungrant: a location grant added, then the organization grant removed:
# only LOC_B's M3 is still covered
step "grant on a location" keys grant --key-id "$K_ID" --role operator --location-id "$LOC_B"
step "ungrant the organization" keys ungrant --key-id "$K_ID" --org-id "$ORG"
check "ungrant: M1 and M2 no longer hold the key" logins 1 vkt-bob "$NEWER" "deny: unknown_key" M1 M2
check "ungrant: M3 still lets it in through the location grant" logins 0 vkt-bob "$NEWER" "allow: key $K_ID as operator via location $LOC_B" M3
check "ungrant: the key is gone from M1's and M2's keys list" lacking M1 M2

# a role lowered below what the service requires ([pam] role = operator)
step "grant viewer instead" keys grant --key-id "$K_ID" --role viewer --location-id "$LOC_B"
check "role lowered: M3 refuses the login for its role" logins 1 vkt-bob "$NEWER" "deny: role" M3

check "every replica holds exactly what covers it" f_converged $MACHINES

step "delete" keys delete --key-id "$K_ID"
check "delete: refused on every machine" logins 1 vkt-bob "$NEWER" "deny: unknown_key" M1 M2 M3 M4
# shellcheck disable=SC2086
check "delete: no replica lists the key" lacking $MACHINES
check "no daemon dropped a record or met a permissions violation" \
	eval '! grep -l -i -e "dropped" -e "permission" "$WORK"/*/syncd.log'
check_end
