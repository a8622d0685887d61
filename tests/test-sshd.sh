#!/bin/sh
# System test: a real sshd on 127.0.0.1 with pam_viamkey.so in its PAM stack,
# keyboard-interactive logins answered by sshpass. Needs root (see
# system-lib.sh); the host's /etc is never written.
. "${srcdir:-.}/system-lib.sh"
sys_begin sshd sshd ssh ssh-keygen sshpass ss timeout chpasswd

sys_store "Test org" "Test location" "This host"
LOCATION_ID=$(json_field location_id "$WORK/init.json")
"$KEYADM" --db "$STORE" --json machines create --location-id "$LOCATION_ID" \
	--name "Other host" >"$WORK/other.json"
OTHER_MACHINE=$(json_field id "$WORK/other.json")

sys_user vkt-ann
sys_user vkt-bob
echo 'vkt-ann:Unix-password-1' | chpasswd

sys_key OP machines api-key create --machine-id "$MACHINE_ID" --user vkt-ann --role operator
sys_key VIEWER machines api-key create --machine-id "$MACHINE_ID" --user vkt-ann --role viewer
sys_key OTHER machines api-key create --machine-id "$OTHER_MACHINE" --user vkt-ann --role owner
sys_key ORG organizations api-key create --org-id "$(json_field org_id "$WORK/init.json")" \
	--user vkt-ann --role operator
sys_key OLD machines api-key create --machine-id "$MACHINE_ID" --user vkt-ann --role operator
"$KEYADM" --db "$STORE" --json keys rotate --key-id "$OLD_ID" >/dev/null

# The stacks of pam_viamkey(8), line for line, with the module's full path.
key_only_stack() {
	cat >/etc/pam.d/sshd <<-EOF
	auth     required   $MODULE config=$CONF
	account  required   $MODULE config=$CONF
	@include common-account
	@include common-session
	session  optional   $MODULE config=$CONF
	EOF
}

key_or_password_stack() {
	cat >/etc/pam.d/sshd <<-EOF
	auth     sufficient $MODULE config=$CONF
	auth     required   pam_unix.so try_first_pass nodelay
	account  required   $MODULE config=$CONF
	@include common-account
	@include common-session
	session  optional   $MODULE config=$CONF
	EOF
}

ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
mkdir -m 0755 /run/sshd

sys_on_exit stop_sshd
key_only_stack
METHOD=keyboard-interactive
start_sshd $METHOD

out=$(login vkt-ann "$OP_TOKEN" 'echo "$VIAMKEY_KEY_ID|$VIAMKEY_ROLE|$VIAMKEY_KEY_NAME"')
check "operator key logs in; the session sees VIAMKEY_KEY_ID and VIAMKEY_ROLE" \
	[ "${out%|*}" = "$OP_ID|operator" ]
"$KEYADM" --db "$STORE" --json keys show --key-id "$OP_ID" >"$WORK/show.json"
check "the login is recorded as the key's last use" \
	grep -q '"last_used":{"at":"[^"]*","machine_id":"[0-9a-f-]*","service":"sshd","user":"vkt-ann","rhost":"127.0.0.1"}' \
	"$WORK/show.json"
out=$(login vkt-ann "$ORG_TOKEN" 'echo "$VIAMKEY_KEY_ID"')
check "a key granted on the organization logs in" [ "$out" = "$ORG_ID" ]
check "wrong user refused" refused vkt-bob "$OP_TOKEN"
check "unknown user refused" refused vkt-nobody "$OP_TOKEN"
check "wrong secret (rotated away) refused" refused vkt-ann "$OLD_TOKEN"
check "another machine's key refused" refused vkt-ann "$OTHER_TOKEN"
check "viewer key refused where sshd needs operator" refused vkt-ann "$VIEWER_TOKEN"
check "Unix password refused by the key-only stack" refused vkt-ann 'Unix-password-1'

key_or_password_stack
out=$(login vkt-ann 'Unix-password-1' 'echo "unix:$VIAMKEY_KEY_ID"')
check "a Unix password at the one prompt reaches pam_unix try_first_pass" [ "$out" = "unix:" ]
out=$(login vkt-ann "$OP_TOKEN" 'echo "$VIAMKEY_KEY_ID"')
check "the key still logs in through the sufficient stack" [ "$out" = "$OP_ID" ]
check "a wrong password is refused" refused vkt-ann 'not-the-password'
login vkt-ann "$OLD_TOKEN" 'echo logged-in' >/dev/null
check "a refused token is not left for pam_unix, which asks again (sshpass exit 5)" [ $? -eq 5 ]

stop_sshd
key_only_stack
METHOD=password
start_sshd $METHOD
out=$(login vkt-ann "$OP_TOKEN" 'echo "$VIAMKEY_KEY_ID"')
check "PasswordAuthentication: the token typed at sshd's password prompt logs in" \
	[ "$out" = "$OP_ID" ]
check "PasswordAuthentication: unknown user refused" \
	refused vkt-nobody "$OP_TOKEN"

stop_sshd
if [ "$failed" -ne 0 ]; then
	cat "$WORK/sshd.log" "$WORK/ssh.err"
fi
check_end
