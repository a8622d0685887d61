#!/bin/sh
# What keyadm prints is safe for a terminal and valid JSON, whatever the
# store holds. Names refuse control and format characters (errors.sh), but
# a store may come from an older viamkey that kept PAM_RHOST raw, or be
# damaged: here the store is given hostile bytes directly.
. "$(dirname "$0")/lib.sh"
need iconv libc-bin

setup_store
mkkey machines "$MACH" --user alice --name plain
K=$KEY_ID
ESC=$(printf '\033')
CSI8=$(printf '\302\233')  # U+009B, the 8-bit CSI, as UTF-8
RAW9B=$(printf '\233')      # the same as a lone byte: invalid UTF-8
RLO=$(printf '\342\200\256') # U+202E RIGHT-TO-LEFT OVERRIDE
ZWSP=$(printf '\342\200\213') # U+200B ZERO WIDTH SPACE
HOSTILE="${ESC}[31mred${ESC}]0;title${ESC}\\ ${CSI8}2J ${RAW9B}2J ${RLO}gnp.exe ${ZWSP}x"
sqlite3 "$DB" "UPDATE keys SET name = CAST(X'$(printf '%s' "$HOSTILE" | od -An -tx1 | tr -d ' \n')' AS TEXT),
	last_used_at = 1700000000, last_used_service = 'sshd',
	last_used_user = 'alice', last_used_rhost = CAST(X'$(printf '%s' "$HOSTILE" | od -An -tx1 | tr -d ' \n')' AS TEXT)
	WHERE id = '$K';
	INSERT INTO events (at, actor, action, key_id, detail)
	VALUES (1700000000, 'x', 'key.rename', '$K', CAST(X'$(printf '%s' "$HOSTILE" | od -An -tx1 | tr -d ' \n')' AS TEXT))"

# terminal_safe DESC: $T/out holds no C0 but newline, no DEL, no C1, no bidi or zero-width
# character and is valid UTF-8
terminal_safe() {
	if ! iconv -f UTF-8 -t UTF-8 <"$T/out" >/dev/null 2>&1; then
		fail "$1" "the output is not valid UTF-8"
	elif LC_ALL=C grep -q "$(printf '[\001-\011\013-\037\177]')" "$T/out"; then
		fail "$1" "the output holds a C0 control or DEL"
	elif LC_ALL=C grep -q "$(printf '\302[\200-\237]')\|$RLO\|$ZWSP" "$T/out"; then
		fail "$1" "the output holds a C1 control or an invisible character"
	else
		pass "$1"
	fi
}

for cmd in "keys show --key-id $K" "keys list" "events"; do
	# shellcheck disable=SC2086 # split on purpose
	ka $cmd
	expect_rc 0 "$cmd runs"
	terminal_safe "... and prints nothing that drives the terminal"
	expect_out_re "... and shows what it replaced as '?'" "\\?\\[31mred"
	# shellcheck disable=SC2086
	ka --json $cmd
	expect_rc 0 "$cmd --json runs"
	expect "... and prints valid UTF-8" iconv -f UTF-8 -t UTF-8 "$T/out"
	expect "... which is one JSON document" jq -e . "$T/out"
done
ka --json keys show --key-id "$K"
expect_json "JSON keeps the valid characters, escaped where JSON wants" \
	'(.name | contains("\u001b[31mred")) and (.last_used.rhost | contains("\u202egnp.exe"))'
expect_json "... and carries an invalid byte as U+FFFD" '.name | contains("\ufffd2J")'

finish
