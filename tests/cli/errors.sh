#!/bin/sh
# Command-line parsing, usage errors and hostile input.
. "$(dirname "$0")/lib.sh"

setup_store
mkkey machines "$MACH" --user alice --name victim
K=$KEY_ID

# ---- help and version ---------------------------------------------------------------

ka_raw --help
expect_rc 0 "--help exits 0"
expect_out_re "... with the usage line" "^Usage: keyadm "
for c in "organizations api-key create" "keys rotate" "check" "events" "machines list" "init"; do
	expect_out_re "... and lists $c" "^  $c "
done
ka_raw --version
expect_rc 0 "--version exits 0"
expect_out_re "... and prints the version" '^keyadm \(viamkey\) [0-9]+\.[0-9]+\.[0-9]+$'
ka keys rotate --help
expect_rc 0 "a command's --help exits 0"
expect_out_re "... with that command's usage" '^Usage: keyadm keys rotate --key-id ID \[--grace DUR \| --finish\]$'
ka machines list --all --help
expect_rc 0 "--help among a command's options"
expect_out_re "... shows that command" "^Usage: keyadm machines list "
ka_raw
expect_rc 2 "no command is a usage error"

# ---- unknown commands, flags and missing values ---------------------------------------

refused 2 "an unknown command" frobnicate
expect_err_re "... is named" 'unknown command "frobnicate"'
refused 2 "an unknown verb" keys frobnicate
refused 2 "a noun alone" keys
refused 2 "api-key alone" organizations api-key
refused 2 "an unknown flag before the command" --frobnicate keys list
refused 2 "an unknown flag after the command" keys list --frobnicate
expect_err_re "... is named" '"--frobnicate"'
refused 2 "a short flag" keys list -j
refused 2 "another command's flag" keys list --grace 1h
expect_err_re "... says it is not an option here" "keys list: --grace is not an option of this command"
refused 2 "a missing value at the end" keys show --key-id
refused 2 "a missing --db value" keys list --db
refused 2 "a missing --config value" keys list --config
refused 2 "an empty --key-id=" keys show --key-id=
refused 2 "a flag without value given a value" keys list --json=yes
refused 2 "a stray argument" keys list extra
expect_err_re "... is named" 'unexpected argument "extra"'
refused 2 "an option given twice" organizations create --name a --name b
expect_err_re "... says so" "--name given twice"

# ---- option forms and global options anywhere ------------------------------------------

ka_raw --db="$DB" --json keys show --key-id="$K"
expect_json "--flag=value everywhere" '.id == $k' --arg k "$K"
ka_raw keys show --key-id "$K" --json --db "$DB"
expect_json "global options after the command's own" '.id == $k' --arg k "$K"
ka_raw keys --db "$DB" show --key-id "$K" 2>/dev/null
expect_rc 2 "but not between a command's words"
ka_raw --json keys show --db "$DB" --key-id "$K" --config "$T/absent.conf"
expect_json "global options among a command's options" '.id == $k' --arg k "$K"
for g in "--json --json" "--config $T/a.conf --config $T/b.conf" "--db $DB --db $DB"; do
	# shellcheck disable=SC2086 # split on purpose
	refused 2 "a global option given twice ($g)" $g keys show --key-id "$K"
	expect_err_re "... says so" "given twice"
done
ka_raw --json keys show --key-id "$K" --json --db "$DB"
expect_rc 2 "... also when the second stands among the command's options"
refused 2 "an empty --config" --config "" keys list
refused 2 "an empty --db" --db "" keys list
expect_err_re "... says it needs a value" "--db needs a value"
refused 2 "an empty --name" organizations create --name ""

# ---- names ---------------------------------------------------------------------------

N64=$(printf '%064d' 7)
E64=$(for _ in $(seq 64); do printf '🔑'; done)
ka --json organizations create --name "$N64"
expect_json "a 64-character name is accepted" '.name == $n' --arg n "$N64"
ka --json organizations create --name "$E64"
expect_json "a name of 64 emoji (256 bytes) is accepted" '.name == $n' --arg n "$E64"
refused 2 "a 65-character name" organizations create --name "${N64}x"
expect_err_re "... and the message gives the rule" "1-64 characters"
refused 2 "a name of 65 emoji" organizations create --name "${E64}🔑"
refused 2 "an empty name" organizations create --name ""
# shellcheck disable=SC2059 # the escapes are the point
# tab, LF, ESC, DEL, U+0085 and U+009B (C1), U+2028, invalid bytes, overlong '/', and the
# format characters U+202E, U+2066, U+200B, U+200D, U+FEFF, U+00AD and U+E0041 (a tag)
for cc in '\t' '\n' '\033' '\177' '\302\205' '\302\233' '\342\200\250' '\377' '\300\257' \
	'\342\200\256' '\342\201\246' '\342\200\213' '\342\200\215' '\357\273\277' '\302\255' \
	'\363\240\201\201'; do
	refused 2 "a name with the bytes $cc" organizations create --name "$(printf "a${cc}b")"
	refused 2 "a key name with the bytes $cc" keys rename --key-id "$K" --name "$(printf "a${cc}b")"
done
refused 2 "a name with a trailing newline" machines rename --machine-id "$MACH" --name "$(printf 'a\nb')"

# Hostile but valid strings are stored and listed back exactly.
i=0
# shellcheck disable=SC1003 # a backslash at the end is one of the strings
for s in "'); DROP TABLE keys;--" "Robert\"); DROP TABLE organizations;--" "\"quoted\" and 'single'" \
	'$(rm -rf /) `id` ${HOME}' '%s%n%x%p' 'back\slash\\' '<script>alert(1)</script>' \
	' padded  ' '{"a": [1, null]}' 'ünïcødé — 日本語 — עברית' '🔑🚀👩💻 ✓' '-- leading dashes' '*' '?'; do
	i=$((i + 1))
	ka --json organizations create --name "$s"
	expect_json "organization name #$i is stored verbatim" '.name == $s' --arg s "$s"
	o=$(jqr .id)
	ka --json organizations list
	expect_json "... and listed back exactly" 'any(.[]; .id == $o and .name == $s)' --arg o "$o" --arg s "$s"
	ka --json locations create --org-id "$o" --name "$s"
	expect_json "location name #$i is stored verbatim" '.name == $s' --arg s "$s"
	l=$(jqr .id)
	ka --json machines create --location-id "$l" --name "$s"
	expect_json "machine name #$i is stored verbatim" '.name == $s' --arg s "$s"
	ka --json machines list --location-id "$l"
	expect_json "... and listed back exactly" '.[0].name == $s' --arg s "$s"
	ka --json keys rename --key-id "$K" --name "$s"
	ka --json keys list --search "$s"
	expect_json "key name #$i is stored verbatim and found by --search" 'any(.[]; .id == $k and .name == $s)' --arg k "$K" --arg s "$s"
	ka --json events --limit 1
	expect_json "... and the audit trail keeps it" '.[0].detail | contains($s)' --arg s "$s"
done
expect "the store's tables survived" [ "$(sqlite3 "$DB" "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('keys', 'organizations')")" = 2 ]
ka keys list
expect_out_re "tables print names as they are" "'\\); DROP TABLE keys;--|\\?"

# ---- durations, roles and IDs ------------------------------------------------------------

for d in "" 0s 10 1y 5M -5m +5m " 5m" "5m " 1.5h 5mm m 0x10s 1h30m 99999999999999w 5d5; do
	refused 2 "--expires-in \"$d\" is not a duration" machines api-key create --machine-id "$MACH" --user a --expires-in "$d"
done
for r in "" OWNER admin "owner " root none; do
	refused 2 "--role \"$r\" is not a role" keys grant --key-id "$K" --role "$r" --machine-id "$MACH"
done
UP=$(printf '%s' "$K" | tr a-f A-F)
for id in "$UP" "{$K}" "$(printf '%s' "$K" | tr -d -)" 6ba7b810-9dad-11d1-80b4-00c04fd430c8 \
	"$(printf '%s' "$K" | cut -c1-35)" "${K}0" " $K" 00000000-0000-0000-0000-000000000000; do
	refused 2 "key ID \"$id\" is malformed" keys show --key-id "$id"
done
refused 1 "an unknown but well-formed ID is refused, not a usage error" keys show --key-id "$NOSUCH"

# ---- 10 KB arguments ------------------------------------------------------------------------

BIG=$(head -c 10240 /dev/zero | tr '\0' a)
BIGD=$(head -c 10240 /dev/zero | tr '\0' 9)
refused 2 "a 10 KB name" organizations create --name "$BIG"
refused 2 "a 10 KB key name" keys rename --key-id "$K" --name "$BIG"
refused 2 "a 10 KB ID" keys show --key-id "$BIG"
refused 2 "a 10 KB resource ID" machines api-key create --machine-id "$BIG" --user a
refused 2 "a 10 KB user" keys add-user --key-id "$K" --user "$BIG"
refused 2 "a 10 KB role" keys grant --key-id "$K" --role "$BIG" --machine-id "$MACH"
refused 2 "a 10 KB duration" machines api-key create --machine-id "$MACH" --user a --expires-in "${BIGD}s"
refused 2 "a 10 KB --grace" keys rotate --key-id "$K" --grace "${BIGD}h"
refused 2 "a 10 KB --limit" events --limit "$BIGD"
refused 2 "a 10 KB flag" keys list "--$BIG"
refused 2 "a 10 KB command" "$BIG"
# shellcheck disable=SC2046 # one word per option
refused 2 "10 KB of --user options" machines api-key create --machine-id "$MACH" $(for _ in $(seq 100); do printf -- '--user u '; done)
unchanged 0 "a 10 KB --search finds nothing" --json keys list --search "$BIG"
expect_json "... and says so" '. == []'
ka_raw --db "$T/$BIG" keys list
expect_rc 1 "a 10 KB --db path is refused"
expect_err_re "... with one line" "^keyadm: "
ka_raw --config "$T/$BIG" --db "$DB" keys list
expect_rc 1 "a 10 KB --config path is refused"
expect_err_re "... with one line" "^keyadm: "
ka_in "$TOKEN" check --user alice --service "$BIG" --rhost "$BIG"
expect_rc 0 "a 10 KB --service and --rhost do not upset check"

finish
