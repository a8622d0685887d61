#!/bin/sh
# A token is printed exactly once, by the command that issues it, and no
# other output or the store ever holds its secret.
. "$(dirname "$0")/lib.sh"

TOKEN_RE='vk_[A-Za-z0-9]{22}_[A-Za-z0-9]{49}'
TOKENS=
PARTS=

setup_store

# issued DESC ARGS...: the command prints one new token on stdout, once, and a warning on stderr
issued() {
	_desc=$1
	shift
	ka "$@"
	if [ "$RC" -ne 0 ]; then
		fail "$_desc" "expected exit 0"
		return 0
	fi
	case " $* " in
	*" --json "*) NEW=$(jqr .key) ;;
	*) NEW=$(printf '%s\n' "$OUT" | sed -n 's/^Token:  //p') ;;
	esac
	expect "$_desc prints a token" [ -n "$NEW" ]
	expect "... exactly once" [ "$(count_of "$OUT" "$NEW")" -eq 1 ]
	expect "... and no other" [ "$(printf '%s\n' "$OUT" | grep -oE "$TOKEN_RE" | wc -l)" -eq 1 ]
	expect "... not on stderr" [ "$(count_of "$ERR" "$(secret_of "$NEW")")" -eq 0 ]
	expect_err_re "... which warns that it is shown only once" "^keyadm: warning: this token is shown only once"
	remember "$NEW"
}

# remember TOKEN: its secret, and the first and last 12 characters of it, are never to be shown
remember() {
	TOKENS="$TOKENS $1"
	_s=$(secret_of "$1")
	PARTS="$PARTS $_s $(printf '%s' "$_s" | cut -c1-12) $(printf '%s' "$_s" | rev | cut -c1-12 | rev)"
}

# no_secret DESC: what the last command printed holds no token and no part of a secret
no_secret() {
	_why=
	if printf '%s\n%s\n' "$OUT" "$ERR" | grep -qE "$TOKEN_RE"; then
		_why="output holds a token"
	fi
	for _part in $PARTS; do
		case $OUT$ERR in
		*"$_part"*) _why="output holds (part of) the secret $_part" ;;
		esac
	done
	if [ -n "$_why" ]; then
		fail "$1 shows no secret" "$_why"
	else
		pass "$1 shows no secret"
	fi
}

# quiet DESC ARGS...: run keyadm ARGS; it must show no secret
quiet() {
	_desc=$1
	shift
	ka "$@"
	no_secret "$_desc"
}

issued "organizations api-key create" organizations api-key create --org-id "$ORG" --user alice --name o
issued "locations api-key create --json" --json locations api-key create --location-id "$LOC" --user alice
issued "machines api-key create" machines api-key create --machine-id "$MACH" --user alice --user bob
K=$(sqlite3 "$DB" "SELECT id FROM keys WHERE name = 'o'")
issued "keys rotate" keys rotate --key-id "$K"
issued "keys rotate --grace --json" keys rotate --key-id "$K" --grace 1h --json
issued "keys clone" keys clone --key-id "$K"
issued "keys clone --json" --json keys clone --key-id "$K" --name c2
C=$(jqr .id)

quiet "keys rotate --finish" keys rotate --key-id "$K" --finish
issued "keys rotate --grace of a clone" --json keys rotate --key-id "$C" --grace 1d
quiet "keys list" keys list
quiet "keys list --json" --json keys list
quiet "keys list --search <token>" keys list --search "${TOKENS##* }"
quiet "keys list --search <token> --json" --json keys list --search "${TOKENS##* }"
quiet "keys show" keys show --key-id "$K"
quiet "keys show --json" --json keys show --key-id "$K"
quiet "keys grant" keys grant --key-id "$K" --role viewer --machine-id "$MACH"
quiet "keys ungrant --json" --json keys ungrant --key-id "$K" --machine-id "$MACH"
quiet "keys add-user" keys add-user --key-id "$K" --user carol
quiet "keys remove-user" --json keys remove-user --key-id "$K" --user carol
quiet "keys rename" keys rename --key-id "$K" --name renamed
quiet "keys disable" keys disable --key-id "$K"
quiet "keys enable" keys enable --key-id "$K"
quiet "keys protect" keys protect --key-id "$K"
quiet "keys unprotect" keys unprotect --key-id "$K"
quiet "events" events
quiet "events --json" --json events
quiet "machines list" machines list --all
for t in $TOKENS; do
	ka_in "$t" check --user alice
	no_secret "check of a token"
	ka_in "$t" --json check --user alice
	no_secret "check --json of a token"
done
quiet "keys delete" keys delete --key-id "$C"

for t in $TOKENS; do
	s=$(secret_of "$t")
	expect "the store file holds no secret ($(printf '%s' "$t" | cut -c1-12)…)" [ "$(grep -c -a -F -- "$s" "$DB")" -eq 0 ]
	expect "... nor its dump" [ "$(sqlite3 "$DB" .dump | grep -c -F -- "$s")" -eq 0 ]
done
expect "the store keeps verifiers, not secrets: one 32-byte salt and verifier per secret" \
	[ "$(sqlite3 "$DB" "SELECT count(*) FROM secrets WHERE length(salt) != 32 OR length(verifier) != 32 OR alg != 'b2k256-v1'")" -eq 0 ]

finish
