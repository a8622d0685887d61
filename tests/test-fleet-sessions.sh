#!/bin/sh
# Live sessions end on revocation (SPEC §11): a real sshd on 127.0.0.1 whose
# PAM stack holds pam_viamkey.so with machine M1's replica, keyboard-interactive
# logins answered by sshpass, a real three-node bus, and the daemons of the
# authority and the machines (fleet-lib.sh). Needs root: the users, sshd's PAM
# stack and its login records live in a private mount namespace (system-lib.sh),
# the host's /etc is never written.
#  - an SSH session opened with a key is recorded by M1's daemon (key, user,
#    service, remote host, the PID that opened it) and shown by
#    `keyadm sessions list` on M1 and on the authority, and a session.open event
#    reaches the authority; the session's environment has VIAMKEY_SECRET_TAG;
#  - each change on the authority that means the key could no longer open the
#    session ends it within seconds (the ssh client exits), recorded on M1 as
#    ended with its reason and shipped to the authority as session.end: the key
#    disabled, deleted, its Unix user removed, the secret the session used
#    ended by a rotation (a session opened with the new secret stays), the grant
#    covering M1 removed, the role lowered below the one sshd needs; and the
#    key's expiry passing, with no change at all;
#  - unrelated changes (another key created, another disabled, this one renamed
#    or given a second user), and every other key's revocation, leave it open;
#  - a normal logout records the session closed, and a session.close event;
#  - a session whose PAM environment names a logind session (XDG_SESSION_ID)
#    while no logind runs ends all the same, by signals to the process that
#    opened it;
#  - of processes recorded as sessions' (records written into M1's journal), the
#    daemon signals one that opened one session, not one that opened two (a
#    server's), nor one whose start time is not the recorded one (a PID reused),
#    nor one that another machine (M2, as its own bus user) reports as its own;
#  - a replica gone stale (max_staleness) ends no session;
#  - with [sync] end_sessions = no, a disabled key's session stays open.
# The time from each change to the ssh client's exit is printed at the end.
#
# Two shells: the first enters the namespace (sys_begin; its cleanup puts
# /etc, /run and /var/log back and checks the host's login records), the
# second, inside it, runs the fleet with fleet-lib.sh's cleanup of every
# process it started, after its own of the ssh clients and sshd.
# shellcheck disable=SC2016,SC2034 # conditions are eval'd; variables are read through eval
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
# shellcheck source=tests/system-lib.sh
. "${srcdir:-.}/system-lib.sh"
if [ -z "${VK_SESSIONS_INNER:-}" ]; then
	sys_begin fleet-sessions-ns sshd ssh ssh-keygen sshpass timeout ps
	s_rc=0
	VK_SESSIONS_INNER=1 sh "$0" || s_rc=$?
	exit "$s_rc"
fi

f_begin fleet-sessions sshd ssh ssh-keygen sshpass timeout ps useradd
s_names= # every session opened in the background (s_open)
: >"$WORK/times"
trap s_cleanup EXIT

# s_cleanup: the ssh clients, the shells sshd started for them and sshd
# stopped, then fleet-lib.sh's cleanup with the exit status the test had.
s_cleanup() {
	s_rc=$?
	for s_n in $s_names; do
		s_close "$s_n"
	done
	[ -z "${SSHD_PID:-}" ] || stop_sshd
	if [ "$s_rc" -ne 0 ] && [ -f "$WORK/sshd.log" ]; then
		echo "---- last lines of sshd.log"
		tail -n 30 "$WORK/sshd.log"
		echo "---- ssh.err"
		tail -n 10 "$WORK/ssh.err" 2>/dev/null
	fi
	(exit "$s_rc")
	f_cleanup
}

# ---- SSH sessions in the background ------------------------------------------------

# s_get NAME FIELD: a field of session NAME (PID, SSH, SHELL, STARTED, LEADER, KEY,
# USER, ID, TAG, XDG).
s_get() {
	eval "echo \"\${S_$1_$2:-}\""
}

# s_open NAME USER TOKEN KEY_ID: an SSH session as USER with TOKEN in the
# background. The shell sshd runs prints "ready", its PID, its parent's (the
# connection's unprivileged sshd), VIAMKEY_KEY_ID, VIAMKEY_SECRET_TAG and
# XDG_SESSION_ID, then lives as long as that parent: a connection that is
# ended leaves no shell behind. 0 once it printed them (20 s at most), 1 when
# the login failed. Keeps sshpass's PID (it exits when ssh does), ssh's, the
# shell's, and the connection's privileged sshd (the shell's grandparent,
# which opened the PAM session and leads its process group).
s_open() {
	s_names="$s_names $1"
	eval "S_$1_KEY=\$4 S_$1_USER=\$2"
	rm -f "$WORK/$1.out"
	SSHPASS=$3 sshpass -e -P ': ' ssh -F /dev/null -p "$PORT" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o PreferredAuthentications=keyboard-interactive -o NumberOfPasswordPrompts=1 \
		-o ConnectTimeout=20 "$2@127.0.0.1" \
		'echo "ready $$ $PPID ${VIAMKEY_KEY_ID:--} ${VIAMKEY_SECRET_TAG:--} ${XDG_SESSION_ID:--}"
		while kill -0 "$PPID" 2>/dev/null; do sleep 0.5; done' \
		>"$WORK/$1.out" 2>>"$WORK/ssh.err" </dev/null &
	eval "S_$1_PID=\$!"
	s_pid=$!
	f_until 5 eval 's_ssh=$(ps -o pid= --ppid "$s_pid" | tr -d " ") && [ -n "$s_ssh" ]' ||
		s_ssh=
	eval "S_$1_SSH=\$s_ssh"
	s_out=$WORK/$1.out
	f_until 20 eval 'grep -q "^ready " "$s_out" 2>/dev/null || ! f_alive "$s_pid"'
	s_line=$(sed -n 's/^ready //p' "$WORK/$1.out")
	[ -n "$s_line" ] || { echo "  ($1: the login as $2 failed)"; return 1; }
	# shellcheck disable=SC2086 # the line splits on purpose
	set -- "$1" $s_line
	eval "S_$1_SHELL=\$2 S_$1_ID=\$4 S_$1_TAG=\$5 S_$1_XDG=\$6"
	s_start=$(s_started "$2")
	eval "S_$1_STARTED=\$s_start"
	s_leader=$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$3/status" 2>/dev/null)
	eval "S_$1_LEADER=\$s_leader"
}

# s_ssh_runs NAME: NAME's ssh process runs (sshpass's child, not yet reaped).
s_ssh_runs() {
	s_x=$(s_get "$1" SSH)
	[ -n "$s_x" ] && [ "$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$s_x/status" 2>/dev/null)" = "$(s_get "$1" PID)" ] &&
		[ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$s_x/status" 2>/dev/null)" != Z ]
}

# s_alive NAME: the ssh client of NAME runs. s_gone NAME: it has exited.
s_alive() {
	f_alive "$(s_get "$1" PID)" && s_ssh_runs "$1"
}

s_gone() {
	! f_alive "$(s_get "$1" PID)" && ! s_ssh_runs "$1"
}

# s_started PID: when PID started (clock ticks after boot), to tell it from a
# process that reused its ID.
s_started() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# s_shell_runs NAME: the shell sshd ran for NAME still runs.
s_shell_runs() {
	s_sh=$(s_get "$1" SHELL)
	[ -n "$s_sh" ] && [ "$(s_started "$s_sh")" = "$(s_get "$1" STARTED)" ]
}

# s_close NAME: ends the ssh client (if still running) and waits for it, then
# for the shell sshd ran for it (SIGTERM after 5 s, by its PID, when it is still
# that user's shell).
s_close() {
	s_p=$(s_get "$1" PID)
	[ -n "$s_p" ] || return 0
	! s_ssh_runs "$1" || kill "$(s_get "$1" SSH)" 2>/dev/null
	f_stop "$s_p"
	eval "S_$1_PID="
	s_cn=$1
	f_until 5 eval '! s_shell_runs "$s_cn"' || kill "$(s_get "$1" SHELL)" 2>/dev/null
	:
}

# s_rec NAME [--all]: M1's one record of NAME's session (its key and user: each
# key has one session a user) in $WORK/rec.json; 1 when there is none.
s_rec() {
	km M1 --json sessions list ${2:+"$2"} 2>"$WORK/sessions.err" >"$WORK/sessions.json" || return 1
	jq -e --arg k "$(s_get "$1" KEY)" --arg u "$(s_get "$1" USER)" \
		'[.[] | select(.key_id == $k and .user == $u)] | if length == 1 then .[0] else empty end' \
		"$WORK/sessions.json" >"$WORK/rec.json"
}

# s_state NAME STATE [REASON]: M1's record of NAME is in STATE (with REASON).
s_state() {
	s_rec "$1" --all &&
		jq -e --arg s "$2" --arg r "${3:-}" '.state == $s and
			(if $r == "" then true else .reason == $r and .ended_at != null end)' "$WORK/rec.json" >/dev/null
}

# s_open_now NAME: the ssh client runs and M1 records the session open.
s_open_now() {
	s_alive "$1" && s_state "$1" open
}

# s_event KEY ACTION [REASON]: the authority holds M1's session event ACTION of KEY.
s_event() {
	ka --json events --kind session --machine-id "$M1" --limit 1000 >"$WORK/sevents.json" 2>/dev/null &&
		jq -e --arg k "$1" --arg a "$2" --arg r "${3:-}" \
			'any(.[]; .key_id == $k and .action == $a and .machine_id != null and
				(if $r == "" then true else .reason == $r end))' "$WORK/sevents.json" >/dev/null
}

# s_ms_since T0: milliseconds since T0 (date +%s%N).
s_ms_since() {
	echo $((($(date +%s%N) - $1) / 1000000))
}

# ends WHAT NAME REASON CHANGE...: NAME's session is open (the client runs, M1
# records it); CHANGE, a keyadm command on the authority, ends it: the ssh
# client exits within 10 s (the time goes to $WORK/times), M1 records it ended
# with REASON, and the authority holds M1's session.end event with REASON.
ends() {
	e_w=$1 e_n=$2 e_r=$3
	shift 3
	check "$e_w: the session is open before the change (client running, M1's record open)" \
		f_until 10 s_open_now "$e_n"
	e_was=0
	! s_alive "$e_n" || e_was=1
	e_t0=$(date +%s%N)
	"$@" >"$WORK/change.out" 2>&1 || echo "  (the change failed: $(cat "$WORK/change.out"))"
	if [ "$e_was" = 1 ] && f_until 10 s_gone "$e_n"; then
		e_ms=$(s_ms_since "$e_t0")
		echo "  $e_w: $e_ms ms" >>"$WORK/times"
		check "$e_w: the ssh client exits after the change ($e_ms ms)" true
	else
		echo "  $e_w: not within 10 s" >>"$WORK/times"
		check "$e_w: the ssh client exits after the change (within 10 s)" false
	fi
	check "$e_w: M1 records the session ended, reason $e_r" f_until 5 s_state "$e_n" ended "$e_r"
	check "$e_w: the authority holds M1's session.end with reason $e_r (within 10 s)" \
		f_until 10 s_event "$(s_get "$e_n" KEY)" session.end "$e_r"
}

# ---- the fleet, the users, sshd ------------------------------------------------------

f_tree
f_fleet
MCONF=$WORK/M1/viamkey.conf
# sshd needs the operator role on M1 (a key granted viewer is refused)
grep -q '^\[services\]' "$MCONF" || printf '[services]\nsshd = operator\n' >>"$MCONF"

sys_user vkt-ann
sys_user vkt-bob

# key VAR ARGS...: ka_key, and the setup ends when it failed.
key() {
	ka_key "$@"
	eval "[ -n \"\$${1}_TOKEN\" ]" || { echo "FAIL: cannot create a key: $(cat "$WORK/ka_key.err")"; exit 99; }
}
key K1 machines api-key create --machine-id "$M1" --user vkt-ann --name first
key KD organizations api-key create --org-id "$ORG" --user vkt-ann --name disabled
key KX organizations api-key create --org-id "$ORG" --user vkt-ann --name deleted
key KU organizations api-key create --org-id "$ORG" --user vkt-ann --user vkt-bob --name user-removed
key KR organizations api-key create --org-id "$ORG" --user vkt-ann --user vkt-bob --name rotated
key KS machines api-key create --machine-id "$M1" --user vkt-ann --name scope
ka keys grant --key-id "$KS_ID" --role operator --machine-id "$M3" >/dev/null ||
	{ echo "FAIL: keys grant on M3"; exit 99; }
key KL organizations api-key create --org-id "$ORG" --user vkt-ann --role operator --name role
key K3 locations api-key create --location-id "$LOC_A" --user vkt-ann --name unrelated
key KO organizations api-key create --org-id "$ORG" --user vkt-ann --name other
key K4 organizations api-key create --org-id "$ORG" --user vkt-ann --name logout
key K6 organizations api-key create --org-id "$ORG" --user vkt-ann --name xdg
key K5 organizations api-key create --org-id "$ORG" --user vkt-ann --name kept
key KE organizations api-key create --org-id "$ORG" --user vkt-ann --name expiring --expires-in 40s
KE_END=$(date -d "$(ka --json keys show --key-id "$KE_ID" | jq -r .expires_at)" +%s) ||
	{ echo "FAIL: the expiring key's expires_at"; exit 99; }
check "the keys reach M1's replica" f_wait_check M1 vkt-ann "$K5_TOKEN" 0

# sshd's PAM stack, as pam_viamkey(8) shows it, with M1's config; with
# an argument, pam_env.so before the module sets XDG_SESSION_ID as pam_systemd would
sshd_stack() {
	{
		echo "auth     required   $MODULE config=$MCONF"
		echo "account  required   $MODULE config=$MCONF"
		echo "@include common-account"
		echo "@include common-session"
		[ -z "${1:-}" ] || echo "session  required   pam_env.so readenv=0 conffile=$WORK/xdg.conf"
		echo "session  optional   $MODULE config=$MCONF"
	} >/etc/pam.d/sshd
}
echo 'XDG_SESSION_ID DEFAULT=4242' >"$WORK/xdg.conf"
sshd_stack
ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
mkdir -m 0755 /run/sshd
# a sanitizer build's module needs the sanitizer runtimes loaded first (sshd lacks them)
s_preload=$(ldd "$MODULE" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ { printf "%s%s", sep, $3; sep = " " }')
if [ -n "$s_preload" ]; then
	LD_PRELOAD=$s_preload ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 start_sshd keyboard-interactive
else
	start_sshd keyboard-interactive
fi
METHOD=keyboard-interactive

# ---- 1. a session recorded, on M1 and on the authority ------------------------------------
f_mark "session of K1"
s_open S1 vkt-ann "$K1_TOKEN" "$K1_ID"
check "an SSH login with K1 through M1's replica: its session runs, with VIAMKEY_KEY_ID" \
	eval 's_alive S1 && test "$(s_get S1 ID)" = "$K1_ID"'
check "... the session's environment has VIAMKEY_SECRET_TAG, 16 lower-case hex digits, not in the token" \
	eval 'echo "$(s_get S1 TAG)" | grep -qx "[0-9a-f]\{16\}" &&
		case $K1_TOKEN in *"$(s_get S1 TAG)"*) false ;; *) true ;; esac'
check "... and the connection's privileged sshd leads its process group (the test's premise)" \
	eval 'test -n "$(s_get S1 LEADER)" && test "$(ps -o pgid= -p "$(s_get S1 LEADER)" | tr -d " ")" = "$(s_get S1 LEADER)"'
check "km M1 sessions list: K1's session (within 10 s)" f_until 10 s_rec S1
check "... open, user vkt-ann, service sshd, rhost 127.0.0.1, M1's ID, no logind session, not ended" \
	jq -e --arg m "$M1" '.machine_id == $m and .user == "vkt-ann" and .service == "sshd"
		and .rhost == "127.0.0.1" and .state == "open" and .logind_session == null
		and .ended_at == null and .reason == null and (.opened_at | type) == "string"
		and (.id | type) == "string"' "$WORK/rec.json"
check "... its pid is the connection's privileged sshd, which opened the PAM session" \
	jq -e --argjson p "$(s_get S1 LEADER)" '.pid == $p' "$WORK/rec.json"
a_rec() {
	ka --json sessions list --machine-id "$M1" >"$WORK/asessions.json" 2>/dev/null &&
		jq -e --arg k "$K1_ID" --arg m "$M1" \
			'any(.[]; .key_id == $k and .machine_id == $m and .state == "open"
				and .user == "vkt-ann" and .service == "sshd")' "$WORK/asessions.json" >/dev/null
}
check "ka sessions list --machine-id M1 on the authority shows it open (within 10 s)" f_until 10 a_rec
check "... and the authority holds M1's session.open event of K1 (within 10 s)" \
	f_until 10 s_event "$K1_ID" session.open

# a session whose key expires while the other cases run
s_open SE vkt-ann "$KE_TOKEN" "$KE_ID"
SE_WAS=0
check "expired: a session with a key that expires in 40 s is open (client running, M1's record open)" \
	eval 's_alive SE && f_until 10 s_open_now SE && SE_WAS=1'

# ---- 3. unrelated changes leave a session open ---------------------------------------------
f_mark "unrelated changes"
s_open S3 vkt-ann "$K3_TOKEN" "$K3_ID"
check "unrelated: K3's session is open (client running, M1's record open)" f_until 10 s_open_now S3
key KN organizations api-key create --org-id "$ORG" --user vkt-ann --name new
ka keys disable --key-id "$KO_ID" >/dev/null
ka keys rename --key-id "$K3_ID" --name renamed >/dev/null
ka keys add-user --key-id "$K3_ID" --user vkt-bob >/dev/null
renamed_on_m1() {
	[ "$(km M1 --json keys show --key-id "$K3_ID" 2>/dev/null | jq -r .name)" = renamed ]
}
check "unrelated: the changes reach M1 (a new key, another disabled, K3 renamed and given vkt-bob)" \
	eval 'f_wait_check M1 vkt-ann "$KN_TOKEN" 0 && f_wait_check M1 vkt-ann "$KO_TOKEN" 1 &&
		f_wait_check M1 vkt-bob "$K3_TOKEN" 0 && f_until 10 renamed_on_m1'
sleep 3
check "unrelated: 3 s later K3's ssh client still runs and M1's record is still open" s_open_now S3

# ---- 2. each revocation ends the session ---------------------------------------------------
f_mark "disable"
s_open SD vkt-ann "$KD_TOKEN" "$KD_ID"
ends disabled SD disabled ka keys disable --key-id "$KD_ID"

f_mark "delete"
s_open SX vkt-ann "$KX_TOKEN" "$KX_ID"
ends deleted SX unknown_key ka keys delete --key-id "$KX_ID"

f_mark "remove-user"
s_open SU vkt-ann "$KU_TOKEN" "$KU_ID"
ends "user removed" SU user_not_allowed ka keys remove-user --key-id "$KU_ID" --user vkt-ann

f_mark "rotation"
s_open SR vkt-ann "$KR_TOKEN" "$KR_ID"
ka --json keys rotate --key-id "$KR_ID" --grace 1h >"$WORK/rotate.json" 2>&1
KR_NEW=$(jq -r .key "$WORK/rotate.json" 2>/dev/null)
check "rotation: keys rotate --grace 1h gives a new token, which reaches M1" \
	eval 'test -n "$KR_NEW" && test "$KR_NEW" != null && f_wait_check M1 vkt-bob "$KR_NEW" 0'
s_open SR2 vkt-bob "$KR_NEW" "$KR_ID"
check "rotation: a session with the new secret is open too, with another VIAMKEY_SECRET_TAG" \
	eval 'f_until 10 s_open_now SR2 && test "$(s_get SR2 TAG)" != "$(s_get SR TAG)"'
ends "rotation finished" SR secret_ended ka keys rotate --key-id "$KR_ID" --finish
check "rotation: the session opened with the new secret stays open" s_open_now SR2

f_mark "ungrant"
s_open SS vkt-ann "$KS_TOKEN" "$KS_ID"
# a replica keeps only the keys that cover its machine: ungranted there, the key is gone from it
ends "grant removed" SS unknown_key ka keys ungrant --key-id "$KS_ID" --machine-id "$M1"

f_mark "role"
s_open SL vkt-ann "$KL_TOKEN" "$KL_ID"
ends "role lowered to viewer" SL role ka keys grant --key-id "$KL_ID" --role viewer --org-id "$ORG"

check "after the other keys' revocations, K1's and K3's sessions are still open" \
	eval 's_open_now S1 && s_open_now S3'

f_mark "expiry"
check "expired: the ssh client exits once the key's expiry passed (within 10 s of it)" \
	eval 'test "$SE_WAS" = 1 && f_until $((KE_END - $(date +%s) + 10)) s_gone SE && test "$(date +%s)" -ge "$KE_END"'
check "expired: M1 records the session ended, reason expired, at most 3 s after the expiry" \
	eval 'f_until 5 s_state SE ended expired &&
		e_late=$(($(date -d "$(jq -r .ended_at "$WORK/rec.json")" +%s) - KE_END)) &&
		test "$e_late" -ge 0 && test "$e_late" -le 3'
echo "  expired: ended ${e_late:-?} s after the expiry (M1's record, in seconds)" >>"$WORK/times"
check "expired: the authority holds M1's session.end with reason expired (within 10 s)" \
	f_until 10 s_event "$KE_ID" session.end expired

# ---- 4. a normal logout --------------------------------------------------------------------
f_mark "logout"
out=$(login vkt-ann "$K4_TOKEN" 'echo "$VIAMKEY_KEY_ID"')
check "logout: a login with K4 runs its command and ends" test "$out" = "$K4_ID"
closed() {
	km M1 --json sessions list --all >"$WORK/sessions.json" 2>/dev/null &&
		jq -e --arg k "$K4_ID" '[.[] | select(.key_id == $k)] | length == 1 and .[0].state == "closed"
			and .[0].reason == null' "$WORK/sessions.json" >/dev/null
}
check "logout: M1 records K4's session closed (within 5 s)" f_until 5 closed
check "... and sessions list without --all leaves it out" \
	eval 'closed && km M1 --json sessions list >"$WORK/sessions.json" &&
		jq -e --arg k "$K4_ID" "all(.[]; .key_id != \$k)" "$WORK/sessions.json" >/dev/null'
check "... and the authority holds M1's session.close event of K4 (within 10 s)" \
	f_until 10 s_event "$K4_ID" session.close

# ---- 6. a logind session named, no logind running: the process group ----------------------
f_mark "XDG_SESSION_ID"
sshd_stack xdg
s_open S6 vkt-ann "$K6_TOKEN" "$K6_ID"
sshd_stack
check "logind: the session's environment has XDG_SESSION_ID=4242 (pam_env.so)" \
	test "$(s_get S6 XDG)" = 4242
check "logind: M1 records the logind session 4242 (within 10 s)" \
	f_until 10 eval 's_rec S6 && jq -e ".logind_session == \"4242\"" "$WORK/rec.json" >/dev/null'
ends "disabled, XDG_SESSION_ID set, no logind" S6 disabled ka keys disable --key-id "$K6_ID"

# ---- 7. which processes are signalled (syncd/sessions.c, rules 2 and 3) --------------------
# Session records written into M1's journal as the module writes them, for processes of the
# test's own: one that opened one session, one that opened two (a server's), and one recorded
# with a start time that is not its own (its PID reused since): only the first is signalled.
f_mark "processes"
key KP organizations api-key create --org-id "$ORG" --user vkt-ann --name processes
check "processes: the key reaches M1" f_wait_check M1 vkt-ann "$KP_TOKEN" 0
p_start() { awk '{ sub(/.*\) /, ""); print $20 }' "/proc/$1/stat"; }
p_open() {
	printf '\nv1\t%s\t%s\tsession\topen\t\t%s\tvkt-ann\tsshd\t\toperator\t\t\t%s\t%s\n' \
		"$(f_random)" "$(date +%s)" "$KP_ID" "$1" "$2" >>"$WORK/M1/store/keys.db.events"
}
# p_state PID STATE [REASON]: M1's one record of PID's session is in STATE (with REASON)
p_state() {
	km M1 --json sessions list --all --key-id "$KP_ID" 2>/dev/null |
		jq -e --argjson p "$1" --arg s "$2" --arg r "${3:-}" '[.[] | select(.pid == $p)] |
			length == 1 and .[0].state == $s and ($r == "" or .[0].reason == $r)' >/dev/null
}
# P_ONE has a tree under it: a sleep, and a shell with a sleep of its own
sh -c 'sleep 300 & sh -c "sleep 300 & wait" & wait' &
P_ONE=$!
# p_tree: P_ONE and every process under it, once all four run
p_tree() {
	p_all=$P_ONE p_new=$P_ONE
	while [ -n "$p_new" ]; do
		p_next=
		for p_pid in $p_new; do
			p_next="$p_next $(ps -o pid= --ppid "$p_pid")"
		done
		p_new=$(echo "$p_next" | xargs)
		p_all="$p_all $p_new"
	done
	[ "$(echo "$p_all" | wc -w)" -eq 4 ] && echo "$p_all" | xargs
}
check "processes: the once-opened process's tree runs (within 5 s)" f_until 5 p_tree
P_TREE=$(p_tree)
p_tree_gone() {
	for p_pid in $P_TREE; do
		! kill -0 "$p_pid" 2>/dev/null || return 1
	done
}
sleep 300 &
P_SHARED=$!
sleep 300 &
P_REUSED=$!
sleep 300 &
P_HOSTILE=$!
p_open "$P_ONE" "$(p_start "$P_ONE")"
p_open "$P_SHARED" "$(p_start "$P_SHARED")"
p_open "$P_SHARED" "$(p_start "$P_SHARED")"
p_open "$P_REUSED" $(($(p_start "$P_REUSED") + 1))
# a hostile machine, M2 as its own bus user with a raw client, reports a session of a process
# here: the authority keeps it as M2's, and no daemon but M2's would ever act on it
H_LINE=$(printf 'v1\t%s\t%s\tsession\topen\t\t%s\tvkt-ann\tsshd\t\toperator\t\t\t%s\t%s' \
	"$(f_random)" "$(date +%s)" "$KP_ID" "$P_HOSTILE" "$(p_start "$P_HOSTILE")")
f_bus_as M2 publish "vkev.$BUCKET.$M2" "$H_LINE" >"$WORK/hostile.out" 2>&1
h_rec() {
	ka --json sessions list --machine-id "$M2" --key-id "$KP_ID" 2>/dev/null |
		jq -e --argjson p "$P_HOSTILE" 'length == 1 and .[0].pid == $p and .[0].state == "open"' >/dev/null
}
check "processes: M2's forged session of a process here is stored on the authority as M2's (within 10 s)" \
	f_until 10 h_rec
check "processes: M1 records the once-opened and the twice-opened sessions open (within 10 s)" \
	f_until 10 eval 'p_state "$P_ONE" open && p_state "$P_SHARED" open'
check "processes: the session whose process started at another time is closed as gone" \
	f_until 10 p_state "$P_REUSED" closed gone
ka keys disable --key-id "$KP_ID" >/dev/null
check "processes: the key disabled, the process that opened one session is signalled (within 10 s)" \
	f_until 10 eval '! kill -0 "$P_ONE" 2>/dev/null'
check "processes: ... and every process under it, a grandchild too (within 5 s)" f_until 5 p_tree_gone
check "processes: the twice-opened session is recorded ended, reason disabled" \
	f_until 5 p_state "$P_SHARED" ended disabled
sleep 1
check "processes: ... but its process, which opened two, is not signalled" kill -0 "$P_SHARED"
check "processes: nor is the process whose start time was not the recorded one" kill -0 "$P_REUSED"
check "processes: nor the process M2 reported, which the authority's daemon leaves to M2" \
	eval 'kill -0 "$P_HOSTILE" && h_rec'
check "processes: M1's log says why the shared one was not signalled" \
	grep -q "session $P_SHARED (key $KP_ID): its process opened other sessions too; not signalled" \
	"$WORK/M1/syncd.log"
# shellcheck disable=SC2086 # P_TREE is a list of PIDs
kill $P_TREE "$P_SHARED" "$P_REUSED" "$P_HOSTILE" 2>/dev/null
wait "$P_ONE" "$P_SHARED" "$P_REUSED" "$P_HOSTILE" 2>/dev/null

# ---- 8. a stale replica ends nothing (syncd/sessions.c, rule 1) ---------------------------
f_mark "stale"
key KT organizations api-key create --org-id "$ORG" --user vkt-ann --name stale
check "stale: the key reaches M1" f_wait_check M1 vkt-ann "$KT_TOKEN" 0
s_open ST vkt-ann "$KT_TOKEN" "$KT_ID"
check "stale: KT's session is open" f_until 10 s_open_now ST
f_syncd_stop M1
f_staleness M1 2s
f_syncd_start M1
f_syncd_stop authority
check "stale: the authority's daemon stopped, M1's replica goes stale past max_staleness 2s (check: exit 1)" \
	f_wait_check M1 vkt-ann "$KT_TOKEN" 1 20
sleep 2
check "stale: ... and KT's session stays open" s_open_now ST
f_syncd_start authority
f_syncd_stop M1
f_staleness M1 0
f_syncd_start M1
check "stale: the authority back, the key works on M1 again" f_wait_check M1 vkt-ann "$KT_TOKEN" 0

# ---- 5. [sync] end_sessions = no -----------------------------------------------------------
f_mark "end_sessions = no"
f_syncd_stop M1
sed -i '/^\[sync\]/a end_sessions = no' "$MCONF"
f_syncd_start M1
s_open S5 vkt-ann "$K5_TOKEN" "$K5_ID"
check "end_sessions = no: K5's session is open and recorded" f_until 10 s_open_now S5
ka keys disable --key-id "$K5_ID" >/dev/null
check "end_sessions = no: the disable reaches M1" f_wait_check M1 vkt-ann "$K5_TOKEN" 1
sleep 3
check "end_sessions = no: 3 s later K5's ssh client still runs and M1's record is still open" s_open_now S5

echo "from the change on the authority to the ssh client's exit:"
cat "$WORK/times"
check_end
