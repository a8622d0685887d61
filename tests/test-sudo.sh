#!/bin/sh
# System test: the real sudo with pam_viamkey.so as its only authentication,
# the token read from stdin (sudo -S) by an unprivileged user. Needs root
# (see system-lib.sh); the host's /etc is never written.
. "${srcdir:-.}/system-lib.sh"
sys_begin sudo sudo setpriv

sys_store "Test org" "Test location" "This host"
sys_user vkt-ann
sys_user vkt-bob
sys_key OWNER machines api-key create --machine-id "$MACHINE_ID" --user vkt-ann --role owner
sys_key OP machines api-key create --machine-id "$MACHINE_ID" --user vkt-ann --role operator
sys_key BOB machines api-key create --machine-id "$MACHINE_ID" --user vkt-bob --role owner

# sudo_stack [ARG]: the sudo stack of pam_viamkey(8), with ARG on the auth line.
sudo_stack() {
	cat >/etc/pam.d/sudo <<-EOF
	#%PAM-1.0
	auth     required   $MODULE config=$CONF $1
	account  required   $MODULE config=$CONF
	@include common-account
	session  optional   $MODULE config=$CONF
	@include common-session-noninteractive
	EOF
}

cat >/etc/sudoers <<-EOF
Defaults !lecture, passwd_tries=1, timestamp_timeout=0, timestampdir=/run/sudo-ts
root    ALL=(ALL:ALL) ALL
vkt-ann ALL=(ALL:ALL) ALL
vkt-bob ALL=(ALL:ALL) ALL
EOF
chmod 0440 /etc/sudoers
rm -rf /etc/sudoers.d

# as_user USER TOKEN: USER runs `sudo -S` with TOKEN on stdin; prints what
# the root command printed.
as_user() {
	(cd / && printf '%s\n' "$2" |
		setpriv --reuid="$1" --regid="$1" --init-groups \
			sudo -S sh -c 'echo "$(id -u)|$VIAMKEY_KEY_ID|$VIAMKEY_ROLE"' 2>>"$WORK/sudo.err")
}

refused() {
	out=$(as_user "$1" "$2") && return 1
	[ -z "$out" ]
}

sudo_stack
out=$(as_user vkt-ann "$OWNER_TOKEN")
check "owner key runs a command as root" [ "${out%%|*}" = 0 ]
check "the command sees VIAMKEY_KEY_ID and VIAMKEY_ROLE" [ "${out#*|}" = "$OWNER_ID|owner" ]
"$KEYADM" --db "$STORE" --json keys show --key-id "$OWNER_ID" >"$WORK/show.json"
check "the login is recorded as the key's last use by sudo" \
	grep -q '"service":"sudo","user":"vkt-ann"' "$WORK/show.json"
check "operator key refused where [services] sudo = owner" refused vkt-ann "$OP_TOKEN"
check "another user's key refused" refused vkt-ann "$BOB_TOKEN"
check "a token for the right key but the wrong user refused" refused vkt-bob "$OWNER_TOKEN"
check "an empty answer refused" refused vkt-ann ""

sudo_stack role=operator
out=$(as_user vkt-ann "$OP_TOKEN")
check "role=operator on the auth line overrides [services] sudo = owner" \
	[ "$out" = "0|$OP_ID|operator" ]

"$KEYADM" --db "$STORE" keys disable --key-id "$OWNER_ID" >/dev/null
sudo_stack
check "a disabled key refused" refused vkt-ann "$OWNER_TOKEN"

if [ "$failed" -ne 0 ]; then
	cat "$WORK/sudo.err"
fi
check_end
