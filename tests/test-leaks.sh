#!/bin/sh
# No token and no secret ever leaves the one-time output of create, rotate
# and clone. Keys are created on every kind of resource, rotated with and
# without --grace, and cloned, in human and --json output; then logins run
# through the module with `debug` (allowed, a retired token, a mistyped
# token, a cut-off token, the wrong user, too low a role) and `keyadm
# check` sees the same tokens. Every token, every secret part alone, and
# the first 12 characters of every secret are then looked for in:
#   - every file beside the store (keys.db, -journal, -wal, -shm);
#   - everything the module sent to syslog (as root: a private /dev/log
#     served by syslog_sink inside a mount namespace);
#   - keys list (also --search with a whole token), keys show, events,
#     check and the tree listings, human and --json, stdout and stderr.
# As a control, the same search must find the tokens in create's output.
# shellcheck disable=SC2034 # tokens are named in the login table and read with eval
. "${srcdir:-.}/hardening-lib.sh"
h_namespace_for "the module's syslog output"
h_begin leaks jq sqlite3
[ -x "$SYSLOG_SINK" ] || { echo "FAIL: build first ($SYSLOG_SINK is missing)"; exit 99; }

h_store
if h_syslog; then
	syslog=1
elif [ "${VK_STRICT:-}" = 1 ]; then
	echo "FAIL: cannot capture syslog (needs root and unshare); a strict run must not skip it"
	exit 99
else
	syslog=0
fi
ORG_ID=$(jq -r .machine.org_id "$WORK/init.json")
LOC_ID=$(jq -r .machine.location_id "$WORK/init.json")
OUT=$WORK/out
mkdir "$OUT"
: >"$WORK/tokens"
n=0

# keep VAR: records $VAR_TOKEN as a token made during the test.
keep() {
	eval "t=\$${1}_TOKEN"
	if [ -z "$t" ]; then
		echo "FAIL: keyadm did not print a token for $1: $(tail -n 3 "$WORK/once.err")"
		exit 99
	fi
	printf '%s\n' "$t" >>"$WORK/tokens"
}

# human VAR ARGS...: keyadm ARGS in human form; sets VAR_ID and VAR_TOKEN from
# the "Key ID:" and "Token:" lines, and keeps the output for the control.
human() {
	h_var=$1
	shift
	n=$((n + 1))
	ka "$@" >"$WORK/once-$n.out" 2>>"$WORK/once.err"
	eval "${h_var}_ID=\$(sed -n 's/^Key ID: *//p' \"\$WORK/once-$n.out\")"
	eval "${h_var}_TOKEN=\$(sed -n 's/^Token: *//p' \"\$WORK/once-$n.out\")"
}

# json VAR ARGS...: the same with --json.
json() {
	h_var=$1
	shift
	n=$((n + 1))
	ka --json "$@" >"$WORK/once-$n.out" 2>>"$WORK/once.err"
	eval "${h_var}_ID=\$(jq -r .id \"\$WORK/once-$n.out\")"
	eval "${h_var}_TOKEN=\$(jq -r .key \"\$WORK/once-$n.out\")"
}

json ORGK organizations api-key create --org-id "$ORG_ID" --user vkt-org --role owner --name org-key
keep ORGK
human LOCK locations api-key create --location-id "$LOC_ID" --user vkt-loc --role operator
keep LOCK
json VIEW machines api-key create --machine-id "$MACHINE_ID" --user vkt-view --role viewer \
	--expires-in 7d --protected
keep VIEW
human MACH machines api-key create --machine-id "$MACHINE_ID" --user vkt-mach --role operator \
	--name machine-key
keep MACH
OLD_MACH_TOKEN=$MACH_TOKEN
json ROT1 keys rotate --key-id "$MACH_ID"
keep ROT1
RETIRED_TOKEN=$ROT1_TOKEN
human ROT2 keys rotate --key-id "$MACH_ID" --grace 1h
keep ROT2
ka keys rotate --key-id "$MACH_ID" --finish >"$OUT/finish.out" 2>"$OUT/finish.err"
json ROT3 keys rotate --key-id "$LOCK_ID" --grace 1h
keep ROT3
human CLONE1 keys clone --key-id "$ORGK_ID" --name cloned
keep CLONE1
json CLONE2 keys clone --key-id "$MACH_ID"
keep CLONE2
# A rotation caught in mid-write: a reader holds the store while keyadm
# commits, so its journal exists long enough to be copied.
json MIDK machines api-key create --machine-id "$MACHINE_ID" --user vkt-mid
keep MIDK
(
	echo "BEGIN; SELECT count(*) FROM keys;"
	sleep 3
	echo "COMMIT;"
) | sqlite3 "$STORE" >/dev/null &
reader=$!
h_pid $reader
sleep 0.3
ka --json keys rotate --key-id "$MIDK_ID" >"$WORK/once-mid.out" 2>>"$WORK/once.err" &
writer=$!
h_pid $writer
i=0
while [ ! -s "$STORE-journal" ] && [ ! -s "$STORE-wal" ] && [ "$i" -lt 25 ]; do
	sleep 0.1
	i=$((i + 1))
done
sleep 0.2
for f in "$STORE-journal" "$STORE-wal"; do
	[ -s "$f" ] && cp "$f" "$WORK/mid-write${f#"$STORE"}"
done
wait "$writer" "$reader"
MID_TOKEN=$(jq -r .key "$WORK/once-mid.out")
keep MID
if [ "$(sqlite3 "$STORE" 'PRAGMA journal_mode')" = delete ]; then
	check "a journal was caught in mid-write" [ -s "$WORK/mid-write-journal" ]
fi
echo "tokens made: $(wc -l <"$WORK/tokens") (create, rotate, clone; human and --json)"

# ---- logins through the module with debug, and keyadm check ------------------------
mistyped=$(printf '%s' "$ROT2_TOKEN" | sed 's/.$/x/')
[ "$mistyped" = "$ROT2_TOKEN" ] && mistyped=$(printf '%s' "$ROT2_TOKEN" | sed 's/.$/y/')
cut_off=$(printf '%.60s' "$ROT2_TOKEN")
# SERVICE USER TOKEN EXPECT: EXPECT is 0 (allowed) or 1 (refused)
while read -r user var expect; do
	eval "tok=\$$var"
	rc=0
	login viamkey-debug "$user" "$tok" || rc=$?
	cat "$WORK/login.out" >>"$OUT/logins.out"
	check "login $user with $var: exit $expect" [ "$rc" -eq "$expect" ]
	rc=0
	printf '%s\n' "$tok" | ka check --user "$user" --service viamkey-debug \
		>>"$OUT/check.out" 2>>"$OUT/check.err" || rc=$?
	printf '%s\n' "$tok" | ka --json check --user "$user" --service viamkey-debug \
		>>"$OUT/check.json" 2>>"$OUT/check.err" || :
	check "keyadm check $user with $var: exit $expect" [ "$rc" -eq "$expect" ]
done <<-EOF
	vkt-org ORGK_TOKEN 0
	vkt-org CLONE1_TOKEN 0
	vkt-loc LOCK_TOKEN 0
	vkt-loc ROT3_TOKEN 0
	vkt-mach ROT2_TOKEN 0
	vkt-mach CLONE2_TOKEN 0
	vkt-mach OLD_MACH_TOKEN 1
	vkt-mach RETIRED_TOKEN 1
	vkt-mach mistyped 1
	vkt-mach cut_off 1
	vkt-org ROT2_TOKEN 1
	vkt-view VIEW_TOKEN 1
EOF

# ---- every listing, human and --json ---------------------------------------------
for fmt in "" --json; do
	tag=${fmt:-human}
	ka $fmt keys list >"$OUT/list.$tag" 2>&1
	ka $fmt keys list --search "$ROT2_TOKEN" >"$OUT/search-token.$tag" 2>&1
	ka $fmt keys list --search "$(printf '%.40s' "$ROT2_TOKEN")" >"$OUT/search-part.$tag" 2>&1
	ka $fmt keys list --expiring 30d >"$OUT/expiring.$tag" 2>&1
	ka $fmt keys list --unused-since 1d >"$OUT/unused.$tag" 2>&1
	for id in "$ORGK_ID" "$LOCK_ID" "$VIEW_ID" "$MACH_ID" "$CLONE1_ID" "$CLONE2_ID"; do
		ka $fmt keys show --key-id "$id" >>"$OUT/show.$tag" 2>&1
		ka $fmt events --key-id "$id" >>"$OUT/events-key.$tag" 2>&1
	done
	ka $fmt events >"$OUT/events.$tag" 2>&1
	ka $fmt organizations list >"$OUT/orgs.$tag" 2>&1
	ka $fmt locations list >"$OUT/locs.$tag" 2>&1
	ka $fmt machines list --all >"$OUT/machines.$tag" 2>&1
done
check "keys list --search finds a key by its whole token" \
	grep -q "$MACH_ID" "$OUT/search-token.human"
check "keys show shows the rotation window's secrets" \
	sh -c '[ "$(jq -s "map(select(.id == \"$2\"))[0].secrets | length" "$1")" -eq 2 ]' \
	sh "$OUT/show.--json" "$LOCK_ID"

# ---- the search ---------------------------------------------------------------------
# needles: each token, its secret part (43 characters after the key-ID part,
# without the checksum), and that secret's first 12 characters.
: >"$WORK/needles"
while read -r tok; do
	secret=$(printf '%s' "${tok#vk_*_}" | cut -c1-43)
	printf '%s\n%s\n%s\n' "$tok" "$secret" "$(printf '%s' "$secret" | cut -c1-12)" \
		>>"$WORK/needles"
done <"$WORK/tokens"
check "every token has the expected shape" \
	sh -c '! grep -vqE "^vk_[A-Za-z0-9]{22}_[A-Za-z0-9]{49}$" "$1"' sh "$WORK/tokens"

# leaks WHERE FILE...: no needle in any FILE. A hit is reported by file and
# by the token's key-ID part, never by the secret.
leaks() {
	h_where=$1
	shift
	h_found=0
	for f in "$@"; do
		[ -e "$f" ] || continue
		grep -a -F -q -f "$WORK/needles" "$f" || continue
		h_found=1
		while read -r tok; do
			secret=$(printf '%s' "${tok#vk_*_}" | cut -c1-43)
			if grep -a -F -q -e "$tok" -e "$secret" -e "$(printf '%.12s' "$secret")" "$f"
			then
				echo "  $h_where: $f holds a token or secret of $(printf '%.25s' "$tok")_..."
			fi
		done <"$WORK/tokens"
	done
	[ "$h_found" -eq 0 ]
}

check "control: the search finds the tokens in create/rotate/clone output" \
	sh -c '[ "$(cat "$1"/once-*.out | grep -a -c -F -f "$2")" -eq "$3" ]' \
	sh "$WORK" "$WORK/needles" "$(wc -l <"$WORK/tokens")"
ls -a "$(dirname "$STORE")" | sed 's/^/  store directory: /'
check "no token or secret in the store files" leaks "store" "$(dirname "$STORE")"/* \
	"$WORK"/mid-write-*
check "no token or secret in keyadm's listings, show, events and check" leaks "output" "$OUT"/*
check "no token or secret in keyadm's stderr while creating" leaks "stderr" "$WORK/once.err"
if [ "$syslog" -eq 1 ]; then
	h_syslog_sync
	grep 'pam_viamkey(' "$WORK/syslog" >"$WORK/module.log" || :
	echo "module syslog lines captured: $(wc -l <"$WORK/module.log")"
	sed -n '1,4p' "$WORK/module.log" | sed 's/^/  e.g. /'
	for want in ': allow service=' 'reason=wrong_secret' 'reason=checksum' \
		'reason=malformed' 'reason=user_not_allowed' 'reason=role' \
		'token from the prompt'; do
		check "syslog capture works: the module logged \"$want\"" \
			grep -q -F "$want" "$WORK/module.log"
	done
	check "no token or secret in syslog (debug on)" leaks "syslog" "$WORK/syslog"
fi
check_end
