#!/bin/sh
# check-agree.sh - `keyadm check` and pam_viamkey.so make one decision.
#
# One corpus of answers, each given byte for byte both to
# `keyadm check --user U --service S` on stdin and, as the answer to the
# password prompt, to a real PAM login through the built module
# (pam_login --raw). For every input the two must agree (allow or deny),
# and agree with what SPEC sections 2 and 6 say the answer is. Prints one
# table row per input. Needs jq and sqlite3: skips (77) without them,
# except under VK_STRICT=1 (scripts/run-tests.sh), where it fails.
set -eu

top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
MODULE=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
KEYADM=${KEYADM:-$top_builddir/keyadm/keyadm}
PAM_LOGIN=$top_builddir/tests/pam_login
SERVICE=vk-agree
LC_ALL=C
export LC_ALL

for tool in jq sqlite3; do
	command -v "$tool" >/dev/null 2>&1 && continue
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: check-agree.sh needs $tool; VK_STRICT=1 must not skip"
		exit 99
	fi
	echo "SKIP: check-agree.sh needs $tool"
	exit 77
done
for f in "$MODULE" "$KEYADM" "$PAM_LOGIN"; do
	[ -x "$f" ] || [ -f "$f" ] || { echo "FAIL: build first ($f is missing)"; exit 99; }
done

umask 077
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-agree.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
trap 'exit 1' HUP INT TERM
STORE=$WORK/store/keys.db
CONF=$WORK/viamkey.conf
PAMD=$WORK/pam.d

die() {
	echo "FAIL: $*"
	exit 99
}

ka() {
	"$KEYADM" --config "$CONF" "$@" </dev/null
}

# ---- the store: one host machine and keys of several kinds -------------------

printf '[store]\npath = %s\n[pam]\nfail_delay_ms = 0\n[services]\n%s = operator\n' \
	"$STORE" "$SERVICE" >"$CONF"
ka --json init --org Agree --location Here --machine host >"$WORK/init.json" ||
	die "keyadm init"
MACH=$(jq -r .machine.id "$WORK/init.json")
LOC=$(jq -r .machine.location_id "$WORK/init.json")
ORG=$(jq -r .machine.org_id "$WORK/init.json")
# this host is $MACH for both, without depending on /etc/machine-id
printf '[store]\npath = %s\n[machine]\nid = %s\n[pam]\nfail_delay_ms = 0\n[services]\n%s = operator\n' \
	"$STORE" "$MACH" "$SERVICE" >"$CONF"
ka --json machines create --location-id "$LOC" --name elsewhere >"$WORK/m2.json" ||
	die "a second machine"
M2=$(jq -r .id "$WORK/m2.json")

# key VAR ARGS...: keyadm --json ARGS; sets VAR_ID and VAR_TOKEN.
key() {
	_var=$1
	shift
	ka --json "$@" >"$WORK/key.json" 2>"$WORK/key.err" || die "keyadm $*: $(cat "$WORK/key.err")"
	eval "${_var}_ID=\$(jq -r .id \"\$WORK/key.json\")"
	eval "${_var}_TOKEN=\$(jq -r .key \"\$WORK/key.json\")"
}

key MACHINE machines api-key create --machine-id "$MACH" --user ann --role operator --name machine
key LOCATION locations api-key create --location-id "$LOC" --user ann --user carol --name location
key VIEWER organizations api-key create --org-id "$ORG" --user ann --role viewer --name viewer
key OTHER machines api-key create --machine-id "$M2" --user ann --name other-machine
key DISABLED machines api-key create --machine-id "$MACH" --user ann --name disabled
ka keys disable --key-id "$DISABLED_ID" >/dev/null || die "keys disable"
key EXPIRED machines api-key create --machine-id "$MACH" --user ann --name expired --expires-in 1h
# expired an hour ago: set in the store rather than waited for
sqlite3 "$STORE" "UPDATE keys SET expires_at = unixepoch() - 3600 WHERE id = '$EXPIRED_ID'" ||
	die "expire a key"
key DELETED machines api-key create --machine-id "$MACH" --user ann --name deleted
ka keys delete --key-id "$DELETED_ID" >/dev/null || die "keys delete"
key WINDOW machines api-key create --machine-id "$MACH" --user ann --name window
WINDOW_OLD=$WINDOW_TOKEN
# shellcheck disable=SC2153 # WINDOW_ID and ROTATED_ID are set by key
key WINDOW keys rotate --key-id "$WINDOW_ID" --grace 1h
key ROTATED machines api-key create --machine-id "$MACH" --user ann --name rotated
ROTATED_OLD=$ROTATED_TOKEN
# shellcheck disable=SC2153
key ROTATED keys rotate --key-id "$ROTATED_ID"

mkdir "$PAMD"
for stack in auth account session; do
	printf '%-8s required %s config=%s nodelay\n' "$stack" "$MODULE" "$CONF"
done >"$PAMD/$SERVICE"

# ---- the two faces ------------------------------------------------------------

# keyadm_decision USER: allow, deny, or error(...) for the input in $WORK/input.
keyadm_decision() {
	_rc=0
	"$KEYADM" --config "$CONF" --json check --user "$1" --service "$SERVICE" \
		<"$WORK/input" >"$WORK/check.out" 2>"$WORK/check.err" || _rc=$?
	_d=$(jq -r '.decision + " " + .reason' "$WORK/check.out" 2>/dev/null) || _d=-
	case $_rc:$_d in
	"0:allow "*) echo allow ;;
	"1:deny "*) echo deny ;;
	*) echo "error(exit $_rc: $(head -n 1 "$WORK/check.err"))" ;;
	esac
}

# module_decision USER: allow, deny, or error(...) for the same input.
module_decision() {
	_rc=0
	"$PAM_LOGIN" --raw --confdir "$PAMD" --service "$SERVICE" "$1" \
		<"$WORK/input" >"$WORK/login.out" 2>"$WORK/login.err" || _rc=$?
	_auth=$(sed -n 's/^authenticate  *//p' "$WORK/login.out")
	if [ "$_rc" -eq 0 ]; then
		echo allow
	elif [ "$_rc" -eq 1 ] && [ "$_auth" = "Authentication failure" ]; then
		echo deny
	else
		echo "error(exit $_rc: $(tr '\n' ' ' <"$WORK/login.out"))"
	fi
}

n=0
failed=0
printf '%-3s %-6s %-6s %-19s %-6s %s\n' '#' expect keyadm '(reason)' module input
# agree EXPECT USER DESCRIPTION FORMAT [ARG...]: the input is printf FORMAT ARG...
agree() {
	_expect=$1
	_user=$2
	_desc=$3
	shift 3
	# shellcheck disable=SC2059 # the format is the case's input
	printf "$@" >"$WORK/input"
	n=$((n + 1))
	KA_REASON=-
	_ka=$(keyadm_decision "$_user")
	case $_ka in allow | deny) KA_REASON=$(jq -r .reason "$WORK/check.out") ;; esac
	_pam=$(module_decision "$_user")
	_mark=
	if [ "$_ka" != "$_pam" ]; then
		_mark=" <- DISAGREE"
	elif [ "$_ka" != "$_expect" ]; then
		_mark=" <- expected $_expect"
	fi
	printf '%-3s %-6s %-6s %-19s %-6s %s (%s bytes, user %s)%s\n' "$n" "$_expect" "$_ka" \
		"($KA_REASON)" "$_pam" "$_desc" "$(wc -c <"$WORK/input" | tr -d ' ')" "$_user" "$_mark"
	[ -z "$_mark" ] || failed=$((failed + 1))
}

# ---- inputs made from a token -------------------------------------------------

T=$MACHINE_TOKEN
lower=$(printf '%s' "$T" | tr '[:upper:]' '[:lower:]')
truncated=$(printf '%s' "$T" | sed 's/.$//')
# change_at N: the token with its Nth character replaced by another of the alphabet
change_at() {
	printf '%s' "$T" | awk -v p="$1" '{c = substr($0, p, 1); r = c == "a" ? "b" : "a";
		printf "%s%s%s", substr($0, 1, p - 1), r, substr($0, p + 1)}'
}
secret_changed=$(change_at 40)
checksum_changed=$(change_at 75)
head30=$(printf '%s' "$T" | cut -c 1-30)
tail45=$(printf '%s' "$T" | cut -c 31-)
over_long=vk_$(printf '%0597d' 0 | tr 0 A)
# every byte from 1 to 255: octal escapes for printf
binary=
i=1
while [ "$i" -le 255 ]; do
	binary=$binary\\$(printf '%03o' "$i")
	i=$((i + 1))
done

# ---- the corpus: one line, one case -------------------------------------------

agree allow ann "machine key (operator)" '%s' "$T"
agree allow ann "location key (owner)" '%s' "$LOCATION_TOKEN"
agree allow carol "location key, its second user" '%s' "$LOCATION_TOKEN"
agree deny ann "organization key as viewer, operator required (role)" '%s' "$VIEWER_TOKEN"
agree deny ann "key on another machine (scope)" '%s' "$OTHER_TOKEN"
agree deny ann "disabled key" '%s' "$DISABLED_TOKEN"
agree deny ann "expired key" '%s' "$EXPIRED_TOKEN"
agree deny ann "unknown key (deleted)" '%s' "$DELETED_TOKEN"
agree allow ann "old secret inside its rotation window" '%s' "$WINDOW_OLD"
agree allow ann "new secret of that rotation" '%s' "$WINDOW_TOKEN"
agree deny ann "secret retired by rotate without grace (wrong secret)" '%s' "$ROTATED_OLD"
agree allow ann "its replacement" '%s' "$ROTATED_TOKEN"
agree deny bob "wrong user" '%s' "$T"
agree deny root "wrong user root" '%s' "$T"
agree allow ann "trailing space" '%s ' "$T"
agree allow ann "trailing tab" '%s\t' "$T"
agree allow ann "trailing CR" '%s\r' "$T"
agree allow ann "trailing LF" '%s\n' "$T"
agree allow ann "trailing CRLF" '%s\r\n' "$T"
agree allow ann "leading space" ' %s' "$T"
agree allow ann "leading tab" '\t%s' "$T"
agree allow ann "leading CR" '\r%s' "$T"
agree allow ann "leading LF" '\n%s' "$T"
agree allow ann "leading CRLF" '\r\n%s' "$T"
agree allow ann "spaces, tabs, CR and LF on both sides" ' \t\r\n %s \t\r\n' "$T"
agree allow ann "padded with spaces to 512 bytes" '%s%437s' "$T" ''
agree deny ann "padded with spaces to 513 bytes (over the limit)" '%s%438s' "$T" ''
agree deny ann "space inside" '%s %s' "$head30" "$tail45"
agree deny ann "tab inside" '%s\t%s' "$head30" "$tail45"
agree deny ann "CR inside" '%s\r%s' "$head30" "$tail45"
agree deny ann "LF inside" '%s\n%s' "$head30" "$tail45"
agree deny ann "the token twice" '%s %s' "$T" "$T"
agree deny ann "lower-cased" '%s' "$lower"
agree deny ann "truncated by one character" '%s' "$truncated"
agree deny ann "one character of the secret changed (checksum)" '%s' "$secret_changed"
agree deny ann "the last checksum character changed" '%s' "$checksum_changed"
agree deny ann "OpenSSH's invalid-user password" '\b\n\r\177INCORRECT'
agree deny ann "empty" ''
agree deny ann "white space only" ' \t\r\n '
agree deny ann "the prefix alone" 'vk_'
agree deny ann "a password" 'correct horse battery staple'
agree deny ann "600 bytes, token-shaped" '%s' "$over_long"
agree deny ann "invalid UTF-8 after the token" '%s\377' "$T"
agree deny ann "invalid UTF-8 before the token" '\300\200%s' "$T"
agree deny ann "invalid UTF-8 alone" '\355\240\200\377\376'
agree deny ann "NUL-free binary, bytes 1 to 255" "$binary"

echo "# check-agree: $n inputs, $failed failed"
[ "$n" -gt 0 ] && [ "$failed" -eq 0 ]
