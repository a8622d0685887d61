#!/bin/sh
# The store's and the config file's ownership, modes and format.
. "$(dirname "$0")/lib.sh"

setup_store
mkkey machines "$MACH" --user alice
TOK=$TOKEN
DIR=$(dirname "$DB")

# every way in: an admin command, the login decision, and init
refused_everywhere() {
	_desc=$1
	_re=$2
	refused 1 "$_desc: keys list refuses it" keys list
	expect_err_re "... saying $_re" "$_re"
	refused 1 "$_desc: init refuses it" init
	expect_err_re "... saying $_re" "$_re"
	snapshot >"$T/before"
	ka_in "$TOK" --json check --user alice
	expect_refusal 1 "$_desc: check refuses it"
	expect_err_re "... saying $_re" "$_re"
}

# ---- modes ---------------------------------------------------------------------------

chmod 0666 "$DB"
refused_everywhere "a store writable by others" "readable or writable by group or others; run chmod 600 $DB\$"
chmod 0620 "$DB"
refused 1 "a store writable by its group" keys list
expect_err_re "... says how to fix it" "chmod 600 $DB"
for mode in 0644 0640 0604; do
	chmod "$mode" "$DB"
	refused 1 "a store readable by others ($mode) is refused" keys list
	expect_err_re "... says how to fix it" "chmod 600 $DB\$"
	ka_in "$TOK" check --user alice
	expect_refusal 1 "... and check refuses it too"
	expect_ok "init brings a store of mode $mode to 0600" init
	expect "... and it is 0600 now" [ "$(stat -c %a "$DB")" = 600 ]
done

# the side files, which SQLite opens by name beside the store
for side in -wal -shm; do
	# keyadm keeps both files beside the store (the sqlite3 calls of snapshot() remove them)
	expect_ok "keyadm leaves the $side file beside the store" keys list
	expect "... so there is one" [ -f "$DB$side" ]
	chmod 0644 "$DB$side"
	ka keys list
	expect_rc 1 "a $side file readable by others is refused"
	expect_err_re "... says how to fix it" "store file $DB$side is readable or writable by group or others; run chmod 600 $DB$side\$"
	ka_in "$TOK" check --user alice
	expect_rc 1 "... and check refuses it too"
	expect_ok "init brings the $side file back to 0600" init
	expect "... and it is 0600 now" [ "$(stat -c %a "$DB$side")" = 600 ]
	chmod 0666 "$DB$side"
	ka init
	expect_rc 1 "init refuses a $side file writable by others"
	chmod 0600 "$DB$side"
	mv "$DB$side" "$T/saved$side"
	ln -s "$T/saved$side" "$DB$side"
	ka keys list
	expect_rc 1 "a $side file that is a symbolic link is refused"
	expect_err_re "... saying so" "$DB$side is not a regular file \\(a symbolic link\\)"
	rm "$DB$side"
	mv "$T/saved$side" "$DB$side"
done
expect_ok "with every file 0600 again, the store is used" keys list

chmod 0777 "$DIR"
refused_everywhere "a store directory writable by others" "store directory $DIR is writable by group or others; run chmod go-w $DIR\$"
chmod 1777 "$DIR"
refused 1 "a sticky store directory writable by others" keys list
chmod 0770 "$DIR"
refused 1 "a store directory writable by its group" keys list
chmod 0755 "$DIR"
expect_ok "a store directory readable by others is accepted" keys list
chmod 0700 "$DIR"

# ---- owners --------------------------------------------------------------------------

if can_give_away "a store owned by another user"; then
	chown nobody "$DB"
	refused_everywhere "a store owned by another user" "owned by uid $(id -u nobody); it must be owned by root \\(chown root $DB\\)"
	chown 0 "$DB"
	chown nobody "$DIR"
	refused 1 "a store directory owned by another user" keys list
	expect_err_re "... says how to fix it" "chown root $DIR"
	chown 0 "$DIR"
	chgrp nobody "$DB" 2>/dev/null || chgrp nogroup "$DB"
	expect_ok "a store with another group but no group write is accepted" keys list
	chgrp 0 "$DB"
else
	echo "# not root: skipping the ownership checks (chown needs root)"
fi

# ---- not a store ---------------------------------------------------------------------

REAL=$DB
mv "$DB" "$T/real.db"
ln -s "$T/real.db" "$DB"
refused_everywhere "a symbolic link as the store" "is not a regular file"
rm "$DB"
mkdir "$DB"
refused 1 "a directory as the store" keys list
expect_err_re "... says so" "is not a regular file"
rmdir "$DB"
mv "$T/real.db" "$DB"
expect_ok "the store is usable again" keys list

DB=$T/garbage/keys.db
mkdir -m 0700 "$T/garbage"
head -c 8192 /dev/urandom >"$DB"
refused_everywhere "a file that is not SQLite" "is unreadable or not a database"

DB=$T/foreign/keys.db
mkdir -m 0700 "$T/foreign"
sqlite3 "$DB" "CREATE TABLE t (x); INSERT INTO t VALUES (1)"
refused_everywhere "a SQLite database that is not a viamkey store" "is not a viamkey store"

DB=$T/empty/keys.db
mkdir -m 0700 "$T/empty"
: >"$DB"
refused 1 "an empty file is not a store" keys list
expect_err_re "... says so" "not a viamkey store"
expect_ok "init turns an empty file into a store" init
expect_ok "... which then works" keys list

DB=$T/newer/keys.db
mkdir -m 0700 "$T/newer"
cp "$REAL" "$DB"
sqlite3 "$DB" "PRAGMA user_version = 99"
refused_everywhere "a store with a newer schema" "schema version 99, newer than this viamkey knows \\(6\\); upgrade viamkey"

DB=$T/damaged/keys.db
mkdir -m 0700 "$T/damaged"
cp "$REAL" "$DB"
head -c 100 /dev/urandom >>"$DB"
refused_everywhere "a store whose size disagrees with its header" "is damaged"
DB=$REAL

# ---- the config file ---------------------------------------------------------------------

CONF=$T/viamkey.conf
cfg() {
	# shellcheck disable=SC2059 # the format is the file's text
	printf "$@" >"$CONF"
	chmod 0600 "$CONF"
}
# conf_refused DESC RE: every command refuses this config, saying RE, and changes nothing
conf_refused() {
	VIAMKEY_CONFIG=$CONF refused 1 "$1" keys list
	expect_err_re "... saying $2" "$2"
}

cfg '[store]\npath = /nonexistent/keys.db\nbusy_timeout_ms = 250\n[machine]\nid = %s\n[pam]\nrole = operator\nprompt = "API key: "\nfail_delay_ms = 0\n[services]\nsudo = owner\nsshd = operator\n[audit]\nlast_used_interval = 0\n' "$MACH"
VIAMKEY_CONFIG=$CONF ka keys list
expect_rc 0 "a config with every key is accepted"
cfg '; comment\n# comment\n\n[Store]\nBusy_Timeout_MS = 200\n[SERVICES]\nSUDO = owner\n'
VIAMKEY_CONFIG=$CONF ka keys list
expect_rc 0 "sections and keys are case-insensitive; comments and blank lines are fine"

cfg '[store]\nbusy_timeout_ms = 100\n'
chmod 0666 "$CONF"
conf_refused "a config writable by others" "$CONF: writable by group or others; run chmod go-w $CONF\$"
chmod 0620 "$CONF"
conf_refused "a config writable by its group" "chmod go-w $CONF"
chmod 0644 "$CONF"
VIAMKEY_CONFIG=$CONF ka keys list
expect_rc 0 "a config readable by others is accepted"
if can_give_away "a config owned by another user"; then
	chown nobody "$CONF"
	conf_refused "a config owned by another user" "chown root $CONF"
	chown 0 "$CONF"
fi
ln -s "$CONF" "$T/link.conf"
VIAMKEY_CONFIG=$T/link.conf refused 1 "a symbolic link as the config" keys list
expect_err_re "... saying so" "symbolic links are refused"
mkdir "$T/dir.conf"
VIAMKEY_CONFIG=$T/dir.conf refused 1 "a directory as the config" keys list
expect_err_re "... saying so" "not a regular file"
mkfifo "$T/fifo.conf"
VIAMKEY_CONFIG=$T/fifo.conf refused 1 "a FIFO as the config" keys list
expect_err_re "... saying so" "not a regular file"

# 1024 comment lines of 64 bytes: exactly 64 KiB
awk 'BEGIN { for (i = 0; i < 1024; i++) printf ";%062d\n", 0 }' >"$CONF"
expect "(the file is 65536 bytes)" [ "$(wc -c <"$CONF")" -eq 65536 ]
VIAMKEY_CONFIG=$CONF ka keys list
expect_rc 0 "a config of exactly 64 KiB is accepted"
printf ';' >>"$CONF"
conf_refused "a config over 64 KiB" "larger than 65536 bytes"
printf '[store]\npath = /x\0\n' >"$CONF"
conf_refused "a config with a NUL byte" "NUL"

cfg '[store]\npath = /x\n\n[bogus]\nfoo = 1\n'
conf_refused "an unknown section" "^keyadm: $CONF:4: unknown section \\[bogus\\]\$"
cfg '[store]\n; comment\nbusy_timeout_ms = 1\nbogus_key = 1\n'
conf_refused "an unknown key" "^keyadm: $CONF:4: unknown key \"bogus_key\" in \\[store\\]\$"
cfg '[machine]\nname = m1\n'
conf_refused "an unknown key in [machine]" "^keyadm: $CONF:2: unknown key \"name\""
cfg 'role = owner\n[pam]\nprompt = x\n'
conf_refused "a key before any section" "^keyadm: $CONF:1: .*role"
cfg '[store]\npath = /x\nthis is not ini\n'
conf_refused "a syntax error" "^keyadm: $CONF:3: syntax error"
for bad in 'store]\npath = x:path' 'store]\nbusy_timeout_ms = -1:busy_timeout_ms' 'store]\nbusy_timeout_ms = 60001:busy_timeout_ms' \
	'store]\nbusy_timeout_ms = 10ms:busy_timeout_ms' 'machine]\nid = not-a-uuid:id' "machine]\\nid = $(printf '%s' "$MACH" | tr a-f A-F):id" \
	'pam]\nrole = admin:role' 'pam]\nfail_delay_ms = 60001:fail_delay_ms' 'pam]\nprompt = "":prompt' \
	'audit]\nlast_used_interval = -5:last_used_interval' 'services]\nsudo = root:sudo'; do
	cfg "[${bad%:*}\n"
	conf_refused "[${bad%%]*}] ${bad##*:} with a bad value" "^keyadm: $CONF:2: \\[${bad%%]*}\\] ${bad##*:}: "
done

finish
