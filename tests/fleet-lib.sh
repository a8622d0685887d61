# fleet-lib.sh - shared by the fleet tests (test-fleet-*.sh): a real
# three-node NATS JetStream cluster on 127.0.0.1, an authority and machines
# each with a store, a config and a PAM service directory of its own, and
# viamkey-syncd for each.
#
# Everything lives in a 0700 work directory under the build tree; a trap
# stops every process the test started (and checks that each is gone) and
# removes the directory on every exit. The bus is configured from the
# example files in docs/examples (nats-cluster-n1.conf .. n3 and
# viamkey-accounts.conf, with a user of its own for each machine), with
# free ports and this test's passwords put in, so that the examples are
# what is tested.
#
#   f_begin NAME TOOL...     check tools and the build, make $WORK, set traps
#   f_tree                   the authority's store and tree (f_authority), with
#                            ORG > LOC_A > M1, M2; ORG > LOC_B > M3; ORG2 > LOC_C > M4
#   f_authority              authority store + config + signing key; sets ACONF
#   ka ARGS...               keyadm on the authority
#   km M ARGS...             keyadm on machine M's replica (M: M1 .. M4)
#   ka_key VAR ARGS...       keyadm --json ARGS on the authority (check-lib.sh); sets VAR_ID, VAR_TOKEN
#   f_bus_start              configure (f_bus_conf) and start n1..n3, wait until healthy
#   f_node_kill N / f_node_start N / f_bus_stop / f_bus_restart
#   f_machines M...          each machine's config from keyadm machines config
#   f_join M LOC ORG [TOKEN] M joins with a join token (viamkey-syncd join), F_OPERATOR
#   f_syncd_start WHO [ARGS] / f_syncd_stop WHO / f_syncd_kill WHO
#                            WHO: authority or a machine; logs in $WORK/WHO/syncd.log
#   f_login M USER TOKEN     a real PAM login through M's replica (pam_login)
#   f_check M USER TOKEN     keyadm check on M's replica; its exit status
#   f_until SECS CMD...      runs CMD every 0.1 s until it succeeds, SECS at most
#   f_wait_check M USER TOKEN STATUS [SECS]   until f_check gives STATUS (30 s)
#   f_wait_login M USER TOKEN STATUS [SECS]   until f_login gives STATUS (30 s)
#   f_all STATUS USER TOKEN M...  f_wait_check on each M
#   f_sync_wait [SECS]       keyadm sync wait --timeout SECS (30) on the authority
#   f_keys M                 the key IDs M's replica lists
#   f_converged M...         each replica holds exactly what the authority's
#                            store says covers it (f_projection of both)
#   f_bus ARGS / f_bus_as M ARGS   vk_bus as the authority's or M's bus user
#   f_stream                 the bucket's stream info (JSON), as the authority's user
#   f_stream_leader [STREAM] the node (1-3) leading the bucket's stream (or STREAM)
#   f_mark TEXT              a time-stamped line in every daemon's log
#   f_stop PID... [-SIG]     stop processes this shell started; status in $f_status
#   check DESC CMD...        one test case
#   check_end                    summary; exit status 0 only when every check passed
#
# Exit 77 (skip) when a tool is missing, except under VK_STRICT=1, where a
# test that cannot run fails (exit 99).
# shellcheck disable=SC2034 # variables set here are for the sourcing scripts

top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
top_srcdir=${abs_top_srcdir:-$(cd "${srcdir:-.}/.." && pwd)}
MODULE=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
KEYADM=$top_builddir/keyadm/keyadm
SYNCD=$top_builddir/syncd/viamkey-syncd
PAM_LOGIN=$top_builddir/tests/pam_login
VK_BUS=$top_builddir/tests/vk_bus
VK_SIGN=$top_builddir/tests/vk_sign
VK_DIAL=$top_builddir/tests/vk_dial
FAULTPOINT=$top_builddir/tests/.libs/faultpoint.so
EXAMPLES=$top_srcdir/docs/examples
BUCKET=viamkey
LC_ALL=C
export LC_ALL
# shellcheck source=tests/check-lib.sh
. "${srcdir:-.}/check-lib.sh"
f_procs=     # "name:pid" of every process started
f_bad_stops= # "name:pid:status" of each daemon stopped that did not exit 0

f_skip() {
	echo "SKIP: $*"
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: a strict run (scripts/run-tests.sh) must run every fleet test"
		exit 99
	fi
	exit 77
}

f_begin() {
	f_name=$1
	shift
	for tool in nats-server jq sqlite3 curl ss "$@"; do
		command -v "$tool" >/dev/null 2>&1 || f_skip "$f_name needs $tool"
	done
	for f in "$MODULE" "$KEYADM" "$SYNCD" "$PAM_LOGIN" "$VK_BUS" "$VK_SIGN"; do
		[ -e "$f" ] || { echo "FAIL: build first ($f is missing)"; exit 99; }
	done
	for f in nats-cluster-n1.conf nats-cluster-n2.conf nats-cluster-n3.conf viamkey-accounts.conf; do
		[ -f "$EXAMPLES/$f" ] || { echo "FAIL: $EXAMPLES/$f is missing"; exit 99; }
	done
	umask 077
	WORK=$(mktemp -d "$PWD/test-$f_name.XXXXXX")
	f_t0=$(date +%s)
	trap f_cleanup EXIT
	trap 'exit 1' INT TERM HUP PIPE
}

# f_child PID: PID is still a child of this shell (running, or exited and not
# yet waited for), so it cannot be some other process that reused the ID.
f_child() {
	[ "$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)" = "$$" ]
}

# f_alive PID: a child of this shell that has not exited.
f_alive() {
	f_child "$1" &&
		[ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}

f_track() {
	f_procs="$f_procs $1:$2"
}

f_untrack() {
	f_new=
	for f_p in $f_procs; do
		[ "${f_p#*:}" = "$2" ] || f_new="$f_new $f_p"
	done
	f_procs=$f_new
}

# f_stop PID... [-SIG]: signals each PID (TERM by default), waits for them
# (10 s, then SIGKILL); the last one's exit status is in $f_status, and
# "PID:STATUS" of each that did not exit 0 in $f_failed.
f_stop() {
	f_sig=TERM
	f_list=
	for f_a in "$@"; do
		case $f_a in -*) f_sig=${f_a#-} ;; *) f_list="$f_list $f_a" ;; esac
	done
	f_status=
	f_failed=
	for f_a in $f_list; do
		f_child "$f_a" && kill -"$f_sig" "$f_a" 2>/dev/null
	done
	f_n=0
	for f_a in $f_list; do
		while f_alive "$f_a" && [ "$f_n" -lt 100 ]; do
			sleep 0.1
			f_n=$((f_n + 1))
		done
	done
	for f_a in $f_list; do
		f_alive "$f_a" && kill -9 "$f_a" 2>/dev/null
		# the shell may have reaped it already: wait still gives its status
		f_status=0
		wait "$f_a" 2>/dev/null || f_status=$?
		[ "$f_status" -eq 0 ] || f_failed="$f_failed $f_a:$f_status"
	done
}

f_cleanup() {
	rc=$?
	# the daemons first, then the bus
	f_d='' f_b=''
	for f_p in $f_procs; do
		case $f_p in nats-*) f_b="$f_b ${f_p#*:}" ;; *) f_d="$f_d ${f_p#*:}" ;; esac
	done
	# shellcheck disable=SC2086 # lists of PIDs
	f_stop $f_d
	# a daemon ends with 0 on SIGTERM (under ASan, not when it leaked),
	# whether stopped now or during the test (f_syncd_stop)
	for f_p in $f_failed; do
		for f_q in $f_procs; do
			[ "${f_q#*:}" = "${f_p%:*}" ] && f_bad_stops="$f_bad_stops ${f_q%%:*}:$f_p"
		done
	done
	for f_p in $f_bad_stops; do
		f_q=${f_p#*:}
		echo "FAIL: ${f_p%%:*} (PID ${f_q%:*}) exited with status ${f_q#*:} on SIGTERM"
		rc=1
	done
	# shellcheck disable=SC2086
	f_stop $f_b
	for f_p in $f_procs; do
		if kill -0 "${f_p#*:}" 2>/dev/null && f_child "${f_p#*:}"; then
			echo "FAIL: ${f_p%%:*} (PID ${f_p#*:}) is still running"
			rc=1
		fi
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -d "$WORK" ]; then
		# what the daemons and servers said, for the failure's report
		for f_log in "$WORK"/*/syncd.log "$WORK"/nats/n?.log; do
			[ -f "$f_log" ] || continue
			echo "---- last lines of ${f_log#"$WORK"/}"
			tail -n 15 "$f_log"
		done
	fi
	if [ -n "${VK_KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
	[ -n "${f_t0:-}" ] && echo "($f_name: $(($(date +%s) - f_t0)) s)"
	exit $rc
}

# f_until SECS CMD...: runs CMD every 0.1 s until it succeeds; 1 after SECS.
f_until() {
	f_deadline=$(($(date +%s) + $1))
	shift
	while ! "$@"; do
		[ "$(date +%s)" -lt "$f_deadline" ] || return 1
		sleep 0.1
	done
}

# f_pctl FILE P: the P-th percentile (nearest rank) of the numbers in FILE, one a line.
f_pctl() {
	sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i]}'
}

# f_random: 32 hex characters.
f_random() {
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n'
}

# ---- the bus ---------------------------------------------------------------

f_port_free() {
	[ -z "$(ss -Hltn "( sport = :$1 )" 2>/dev/null)" ]
}

# f_ports [TRY]: nine free ports below the ephemeral range, from one derived
# from this shell's PID (so that parallel tests start apart); sets P1..P3
# (clients), C1..C3 (cluster) and H1..H3 (monitoring).
f_ports() {
	f_try=${1:-0}
	while :; do
		f_base=$((20000 + (($$ + f_try * 37) % 1200) * 10))
		f_ok=1
		for f_i in 0 1 2 3 4 5 6 7 8; do
			f_port_free $((f_base + f_i)) || { f_ok=0; break; }
		done
		[ "$f_ok" = 1 ] && break
		f_try=$((f_try + 1))
		[ "$f_try" -lt 200 ] || { echo "FAIL: no free ports"; exit 99; }
	done
	P1=$f_base P2=$((f_base + 1)) P3=$((f_base + 2))
	C1=$((f_base + 3)) C2=$((f_base + 4)) C3=$((f_base + 5))
	H1=$((f_base + 6)) H2=$((f_base + 7)) H3=$((f_base + 8))
	SERVERS=nats://127.0.0.1:$P1,nats://127.0.0.1:$P2,nats://127.0.0.1:$P3
}

# f_bus_conf: the example configs with this test's ports, directories,
# passwords and machines ($WORK/machines: NAME ID LOCATION ORG per line).
f_bus_conf() {
	mkdir -p "$WORK/nats"
	for f_n in 1 2 3; do
		sed -e "s/10\.0\.0\.1:4222/127.0.0.1:$P1/; s/10\.0\.0\.2:4222/127.0.0.1:$P2/; s/10\.0\.0\.3:4222/127.0.0.1:$P3/" \
			-e "s/10\.0\.0\.1:6222/127.0.0.1:$C1/; s/10\.0\.0\.2:6222/127.0.0.1:$C2/; s/10\.0\.0\.3:6222/127.0.0.1:$C3/" \
			-e "s/10\.0\.0\.1:8222/127.0.0.1:$H1/; s/10\.0\.0\.2:8222/127.0.0.1:$H2/; s/10\.0\.0\.3:8222/127.0.0.1:$H3/" \
			-e "s|\"/var/lib/nats/jetstream\"|\"$WORK/nats/n$f_n\"|" \
			"$EXAMPLES/nats-cluster-n$f_n.conf" >"$WORK/nats/n$f_n.conf"
		if grep -v '^[[:space:]]*#' "$WORK/nats/n$f_n.conf" | grep -q '10\.0\.0\.\|/var/lib/nats'; then
			echo "FAIL: nats-cluster-n$f_n.conf: an address or directory was not replaced"
			exit 99
		fi
		# operator mode: the nodes include what keyadm bus init wrote instead
		[ -z "${F_OPERATOR:-}" ] ||
			sed -i 's|^include "viamkey-accounts.conf"|include "bus.conf"|' "$WORK/nats/n$f_n.conf"
	done
	[ -z "${F_OPERATOR:-}" ] || return 0
	[ -f "$WORK/nats/authority.password" ] || f_random >"$WORK/nats/authority.password"
	[ -f "$WORK/nats/system.password" ] || f_random >"$WORK/nats/system.password"
	# the machine block, once per machine
	sed -n '/# BEGIN machine/,/# END machine/p' "$EXAMPLES/viamkey-accounts.conf" >"$WORK/nats/machine.block"
	grep -q MACHINE_ID "$WORK/nats/machine.block" || { echo "FAIL: no machine block in viamkey-accounts.conf"; exit 99; }
	: >"$WORK/nats/machines.conf"
	while read -r f_m f_id f_loc f_org; do
		sed -e "s/MACHINE_ID/$f_id/g; s/LOCATION_ID/$f_loc/g; s/ORG_ID/$f_org/g" \
			-e "s/MACHINE_PASSWORD/$(cat "$WORK/$f_m/bus.password")/" \
			"$WORK/nats/machine.block" >>"$WORK/nats/machines.conf"
	done <"$WORK/machines"
	# the block's place, in the example's account for machines, holds them all
	sed -e "/# BEGIN machine/r $WORK/nats/machines.conf" \
		-e "/# BEGIN machine/,/# END machine/d" \
		-e "s/AUTHORITY_PASSWORD/$(cat "$WORK/nats/authority.password")/" \
		-e "s/SYSTEM_PASSWORD/$(cat "$WORK/nats/system.password")/" \
		"$EXAMPLES/viamkey-accounts.conf" >"$WORK/nats/viamkey-accounts.conf"
}

# f_node_start N: starts node N (its config already written).
f_node_start() {
	# each in a directory of its own: an operator-mode bus keeps account JWTs there
	mkdir -p "$WORK/nats/run-n$1"
	(cd "$WORK/nats/run-n$1" && exec nats-server -c "$WORK/nats/n$1.conf") \
		>>"$WORK/nats/n$1.log" 2>&1 &
	eval "NODE$1=\$!"
	f_track "nats-n$1" "$!"
}

f_node_pid() {
	eval "echo \"\${NODE$1:-}\""
}

# f_node_kill N: SIGKILL to node N.
f_node_kill() {
	f_pid=$(f_node_pid "$1")
	f_stop "$f_pid" -KILL
	f_untrack "nats-n$1" "$f_pid"
}

f_node_healthy() {
	eval "f_h=\$H$1"
	curl -fsS -m 2 "http://127.0.0.1:$f_h/healthz" 2>/dev/null | grep -q '"ok"'
}

# f_bus_healthy: every running node answers /healthz with ok, which in a
# cluster means JetStream is current with an elected meta leader.
f_bus_healthy() {
	for f_n in 1 2 3; do
		f_alive "$(f_node_pid "$f_n")" || continue
		f_node_healthy "$f_n" || return 1
	done
	for f_n in 1 2 3; do
		eval "f_h=\$H$f_n"
		f_alive "$(f_node_pid "$f_n")" || continue
		curl -fsS -m 2 "http://127.0.0.1:$f_h/jsz" 2>/dev/null |
			jq -e '.meta_cluster.leader // empty | length > 0' >/dev/null 2>&1 && return 0
	done
	return 1
}

# f_bus_start: ports, configs, three nodes, healthy within 30 s. A port taken
# meanwhile by someone else: other ports, up to 5 times.
f_bus_start() {
	f_attempt=0
	while :; do
		f_ports "$f_attempt"
		f_bus_conf
		for f_n in 1 2 3; do f_node_start "$f_n"; done
		f_until 30 f_bus_healthy && return 0
		f_bus_stop
		if grep -q 'address already in use' "$WORK"/nats/n?.log && [ "$f_attempt" -lt 5 ]; then
			f_attempt=$((f_attempt + 1))
			rm -rf "$WORK"/nats/n?
			continue
		fi
		echo "FAIL: the bus did not become healthy"
		tail -n 20 "$WORK"/nats/n?.log
		exit 99
	done
}

f_bus_stop() {
	for f_n in 1 2 3; do
		f_pid=$(f_node_pid "$f_n")
		[ -n "$f_pid" ] || continue
		f_stop "$f_pid"
		f_untrack "nats-n$f_n" "$f_pid"
	done
}

# f_bus_restart: the three nodes again, with their data; healthy within 60 s
# (three nodes recovering their streams at once, on a host loaded with
# sanitized daemons, have taken over 30 s). When not, what each node said last.
f_bus_restart() {
	for f_n in 1 2 3; do
		f_alive "$(f_node_pid "$f_n")" || f_node_start "$f_n"
	done
	f_until 60 f_bus_healthy && return 0
	for f_n in 1 2 3; do
		eval "f_h=\$H$f_n"
		echo "  node $f_n: $(f_alive "$(f_node_pid "$f_n")" && echo running || echo gone)," \
			"healthz $(curl -sS -m 2 "http://127.0.0.1:$f_h/healthz" 2>&1 | tr -d '\n')"
		tail -n 5 "$WORK/nats/n$f_n.log" | sed 's/^/    /'
	done
	return 1
}

# f_bus ARGS...: vk_bus as the authority's bus user.
f_bus() {
	if [ -n "${F_OPERATOR:-}" ]; then
		"$VK_BUS" --creds "$WORK/authority/nats.creds" "$SERVERS" "$@"
	else
		"$VK_BUS" --user authority --password-file "$WORK/nats/authority.password" "$SERVERS" "$@"
	fi
}

# f_bus_as M ARGS...: vk_bus as machine M's bus user, with its inbox.
f_bus_as() {
	f_m=$1
	shift
	"$VK_BUS" --user "machine-$(f_id "$f_m")" --password-file "$WORK/$f_m/bus.password" \
		--inbox "_INBOX.$(f_id "$f_m")" "$SERVERS" "$@"
}

# f_stream: the bucket's stream info, as the authority's bus user sees it.
f_stream() {
	f_bus request "\$JS.API.STREAM.INFO.KV_$BUCKET" '{}'
}

# ---- the authority -----------------------------------------------------------

ka() {
	"$KEYADM" --config "$WORK/authority/viamkey.conf" "$@"
}

# f_authority: the authority's store, config (servers filled in by f_servers)
# and signing key.
f_authority() {
	mkdir -p "$WORK/authority"
	ACONF=$WORK/authority/viamkey.conf
	f_authority_conf "$WORK/authority" nats://127.0.0.1:1
	ka init >/dev/null || { echo "FAIL: keyadm init on the authority"; exit 99; }
	# with F_ROOTED set, a root of trust: the root key in $WORK/root.key
	if [ -n "${F_ROOTED:-}" ]; then
		ka --json root init --out "$WORK/root.key" >"$WORK/root.json" ||
			{ echo "FAIL: keyadm root init"; exit 99; }
		ROOT_KEY=$(jq -r .public_key "$WORK/root.json")
		set -- --root-key "$WORK/root.key"
	fi
	ka --json authority init "$@" >"$WORK/authority/public.json" ||
		{ echo "FAIL: keyadm authority init"; exit 99; }
	AUTHORITY_KEY=$(jq -r .public_key "$WORK/authority/public.json")
}

# f_standby NAME [EPOCH [ROOT_KEY_FILE]]: a standby's store, config and key
# in $WORK/NAME, certified for EPOCH (2) by the root key ($WORK/root.key),
# with the authority's bus user (a real one has its own, as trusted); a
# daemon started for it (f_syncd_start NAME) follows everything.
f_standby() {
	mkdir -p "$WORK/$1"
	f_authority_conf "$WORK/$1" "$SERVERS"
	echo "root_key = $ROOT_KEY" >>"$WORK/$1/viamkey.conf"
	"$KEYADM" --config "$WORK/$1/viamkey.conf" init >/dev/null ||
		{ echo "FAIL: keyadm init on $1"; exit 99; }
	"$KEYADM" --config "$WORK/$1/viamkey.conf" --json authority init --standby \
		--root-key "${3:-$WORK/root.key}" ${2:+--epoch "$2"} >"$WORK/$1/public.json" ||
		{ echo "FAIL: keyadm authority init --standby on $1"; exit 99; }
}

# f_authority_conf DIR SERVERS: an authority's config in DIR; with F_OPERATOR
# set, for a bus that keyadm bus init makes (credentials beside it).
f_authority_conf() {
	cat >"$1/viamkey.conf" <<-EOF
	[store]
	path = $1/store/keys.db
	[sync]
	servers = $2
	signing_key = $1/signing.key
	heartbeat_interval = 1s
	replicas = 3
	EOF
	if [ -n "${F_OPERATOR:-}" ]; then
		cat >>"$1/viamkey.conf" <<-EOF
		credentials = $1/nats.creds
		account_key = $1/bus.nk
		system_credentials = $1/system.creds
		EOF
	else
		cat >>"$1/viamkey.conf" <<-EOF
		user = authority
		password_file = $WORK/nats/authority.password
		EOF
	fi
}

# f_join M LOC ORG [TOKEN_FILE]: machine M joins location LOC (of ORG) as a
# new host would, with a one-use join token made for it (or TOKEN_FILE):
# viamkey-syncd join writes $WORK/M/viamkey.conf and its credentials and
# brings the replica in step. M is then in $WORK/machines, with a PAM
# service, as f_machines makes them. 1 when the join failed
# ($WORK/M/join.err says why).
f_join() {
	mkdir -p "$WORK/$1/store"
	f_tok=${4:-$WORK/$1/token}
	if [ -z "${4:-}" ]; then
		ka machines join-token --location-id "$2" >"$f_tok" 2>"$WORK/$1/join.err" || return 1
	fi
	"$SYNCD" join --token-file "$f_tok" --name "$1" --config "$WORK/$1/viamkey.conf" \
		--db "$WORK/$1/store/keys.db" >"$WORK/$1/join.out" 2>"$WORK/$1/join.err" </dev/null ||
		return 1
	echo "$1 $(cat "$WORK/$1/join.out") $2 $3" >>"$WORK/machines"
	cat >>"$WORK/$1/viamkey.conf" <<-EOF
	heartbeat_interval = 1s
	[pam]
	role = operator
	fail_delay_ms = 0
	EOF
	mkdir -p "$WORK/$1/pam.d"
	pam_service "$WORK/$1/pam.d/viamkey-test" "$WORK/$1/viamkey.conf"
}

# f_servers: the authority's config names the bus's ports (known once started).
f_servers() {
	sed -i "s|^servers = .*|servers = $SERVERS|" "$WORK/authority/viamkey.conf"
	for f_m in $(cut -d' ' -f1 "$WORK/machines" 2>/dev/null); do
		sed -i "s|^servers = .*|servers = $SERVERS|" "$WORK/$f_m/viamkey.conf"
	done
}

# f_json_id FILE: the "id" of keyadm's JSON output.
f_json_id() {
	jq -r .id "$1"
}

f_tree() {
	f_authority
	mkdir -p "$WORK/nats"
	ka --json organizations create --name "Org one" >"$WORK/o.json" && ORG=$(f_json_id "$WORK/o.json")
	ka --json organizations create --name "Org two" >"$WORK/o.json" && ORG2=$(f_json_id "$WORK/o.json")
	ka --json locations create --org-id "$ORG" --name "Location A" >"$WORK/l.json" && LOC_A=$(f_json_id "$WORK/l.json")
	ka --json locations create --org-id "$ORG" --name "Location B" >"$WORK/l.json" && LOC_B=$(f_json_id "$WORK/l.json")
	ka --json locations create --org-id "$ORG2" --name "Location C" >"$WORK/l.json" && LOC_C=$(f_json_id "$WORK/l.json")
	: >"$WORK/machines"
	for f_spec in "M1 $LOC_A $ORG" "M2 $LOC_A $ORG" "M3 $LOC_B $ORG" "M4 $LOC_C $ORG2"; do
		# shellcheck disable=SC2086 # the spec splits on purpose
		set -- $f_spec
		ka --json machines create --location-id "$2" --name "Machine $1" >"$WORK/m.json" ||
			{ echo "FAIL: keyadm machines create"; exit 99; }
		eval "$1=\$(f_json_id \"\$WORK/m.json\")"
		echo "$1 $(f_json_id "$WORK/m.json") $2 $3" >>"$WORK/machines"
		mkdir -p "$WORK/$1"
		f_random >"$WORK/$1/bus.password"
	done
	rm -f "$WORK/o.json" "$WORK/l.json" "$WORK/m.json"
	[ -n "$M4" ] || { echo "FAIL: cannot make the tree"; exit 99; }
	MACHINES="M1 M2 M3 M4"
}

# f_id M: machine M's ID.
f_id() {
	awk -v m="$1" '$1 == m { print $2 }' "$WORK/machines"
}

# ---- machines ------------------------------------------------------------------

km() {
	f_m=$1
	shift
	"$KEYADM" --config "$WORK/$f_m/viamkey.conf" "$@"
}

# f_machines M...: each machine's viamkey.conf, as keyadm machines config prints
# it, with its own store, bus user and PAM settings; and its PAM services.
f_machines() {
	for f_m in "$@"; do
		ka machines config --machine-id "$(f_id "$f_m")" >"$WORK/$f_m/config.out" ||
			{ echo "FAIL: keyadm machines config $f_m"; exit 99; }
		sed -e "s|^path = .*|path = $WORK/$f_m/store/keys.db|" \
			"$WORK/$f_m/config.out" >"$WORK/$f_m/viamkey.conf"
		cat >>"$WORK/$f_m/viamkey.conf" <<-EOF
		user = machine-$(f_id "$f_m")
		password_file = $WORK/$f_m/bus.password
		[pam]
		role = operator
		fail_delay_ms = 0
		EOF
		mkdir -p "$WORK/$f_m/pam.d"
		pam_service "$WORK/$f_m/pam.d/viamkey-test" "$WORK/$f_m/viamkey.conf"
	done
}

# f_staleness M DURATION: sets [sync] max_staleness in M's config.
f_staleness() {
	sed -i "s/^max_staleness = .*/max_staleness = $2/" "$WORK/$1/viamkey.conf"
}

# f_syncd_start WHO [VAR=VALUE...]: viamkey-syncd --verbose for the authority or
# machine WHO, in the background, with the environment variables given.
f_syncd_start() {
	f_who=$1
	shift
	env "$@" "$SYNCD" --config "$WORK/$f_who/viamkey.conf" --verbose \
		</dev/null >>"$WORK/$f_who/syncd.log" 2>&1 &
	eval "SYNCD_$f_who=\$!"
	f_track "syncd-$f_who" "$!"
}

f_syncd_pid() {
	eval "echo \"\${SYNCD_$1:-}\""
}

# f_syncd_stop WHO: SIGTERM, and waits for it; its exit status in $f_status.
# f_cleanup fails the test when it was not 0.
f_syncd_stop() {
	f_pid=$(f_syncd_pid "$1")
	f_stop "$f_pid"
	[ -z "$f_failed" ] || f_bad_stops="$f_bad_stops syncd-$1:${f_failed# }"
	f_untrack "syncd-$1" "$f_pid"
}

f_syncd_kill() {
	f_pid=$(f_syncd_pid "$1")
	f_stop "$f_pid" -KILL
	f_untrack "syncd-$1" "$f_pid"
}

# f_fleet: the bus, the machines' configs, and every daemon started.
f_fleet() {
	f_bus_start
	f_machines $MACHINES
	f_servers
	f_syncd_start authority
	for f_m in $MACHINES; do f_syncd_start "$f_m"; done
}

# ---- logins and waits ------------------------------------------------------------

# f_login M USER TOKEN: one full PAM transaction on M; output in $WORK/login.out.
f_login() {
	printf '%s\n' "$3" | "$PAM_LOGIN" --confdir "$WORK/$1/pam.d" --service viamkey-test "$2" \
		>"$WORK/login.out" 2>&1
}

# f_check M USER TOKEN: keyadm check on M's replica; output in $WORK/check.out.
f_check() {
	printf '%s\n' "$3" | km "$1" check --user "$2" >"$WORK/check.out" 2>&1
}

f_status_is() {
	f_s=0
	"$@" || f_s=$?
	[ "$f_s" -eq "$f_want" ]
}

# f_wait_check M USER TOKEN STATUS [SECS]: until keyadm check on M exits STATUS.
f_wait_check() {
	f_want=$4
	f_until "${5:-30}" f_status_is f_check "$1" "$2" "$3"
}

# f_wait_login M USER TOKEN STATUS [SECS]: until a PAM login on M exits STATUS
# (0: allowed, 1: refused).
f_wait_login() {
	f_want=$4
	f_until "${5:-30}" f_status_is f_login "$1" "$2" "$3"
}

# f_all STATUS USER TOKEN M...: keyadm check gives STATUS on every M (each
# within 30 s).
f_all() {
	f_st=$1 f_u=$2 f_t=$3
	shift 3
	for f_m in "$@"; do
		f_wait_check "$f_m" "$f_u" "$f_t" "$f_st" || { echo "  ($f_m: $(cat "$WORK/check.out"))"; return 1; }
	done
}

# f_sync_wait [SECS]: keyadm sync wait on the authority.
f_sync_wait() {
	ka sync wait --timeout "${1:-30}s" >"$WORK/sync-wait.out" 2>&1
}

# f_keys M: the sorted key IDs M's replica holds.
f_keys() {
	km "$1" --json keys list | jq -r '.[].id' | sort
}

# f_projection DB M: what the decision on machine M needs of every key that
# covers it, from store DB: ID, name, flags, expiry, users, grants and the
# live secrets' verifiers. The same text from the authority's store and from
# M's replica means that M holds exactly what it should.
f_projection() {
	f_loc=$(awk -v m="$2" '$1 == m { print $3 }' "$WORK/machines")
	f_org=$(awk -v m="$2" '$1 == m { print $4 }' "$WORK/machines")
	sqlite3 "$1" "
	WITH covering AS (SELECT DISTINCT key_id AS id FROM grants
	  WHERE (resource_type = 'machine' AND resource_id = '$(f_id "$2")')
	  OR (resource_type = 'location' AND resource_id = '$f_loc')
	  OR (resource_type = 'organization' AND resource_id = '$f_org'))
	SELECT k.id, k.name, k.disabled, k.break_glass, coalesce(k.expires_at, '-'),
	 (SELECT group_concat(user, ',') FROM (SELECT user FROM key_users WHERE key_id = k.id ORDER BY 1)),
	 (SELECT group_concat(g, ',') FROM (SELECT role || ':' || resource_type || ':' || resource_id AS g
	  FROM grants WHERE key_id = k.id ORDER BY 1)),
	 (SELECT group_concat(v, ',') FROM (SELECT hex(verifier) AS v FROM secrets
	  WHERE key_id = k.id AND (expires_at IS NULL OR expires_at > strftime('%s', 'now')) ORDER BY 1))
	FROM keys k WHERE k.id IN (SELECT id FROM covering) ORDER BY k.id"
}

# f_converged M...: each machine's replica holds exactly what the authority's
# store ($WORK/$F_AUTHORITY, "authority" by default) says covers it
# (f_projection), nothing more and nothing less.
f_converged() {
	for f_m in "$@"; do
		f_projection "$WORK/${F_AUTHORITY:-authority}/store/keys.db" "$f_m" >"$WORK/projection.want"
		f_projection "$WORK/$f_m/store/keys.db" "$f_m" >"$WORK/projection.got"
		sqlite3 "$WORK/$f_m/store/keys.db" "SELECT count(*) FROM keys" >"$WORK/projection.count"
		if ! cmp -s "$WORK/projection.want" "$WORK/projection.got" ||
			[ "$(cat "$WORK/projection.count")" -ne "$(wc -l <"$WORK/projection.want")" ]; then
			echo "  ($f_m: $(diff "$WORK/projection.want" "$WORK/projection.got" | head -n 4 | tr '\n' ' ')" \
				"holds $(cat "$WORK/projection.count") keys, $(wc -l <"$WORK/projection.want") expected)"
			return 1
		fi
	done
}

# f_stream_leader [STREAM]: the number (1-3) of the node leading STREAM (the
# bucket's stream, KV_$BUCKET).
f_stream_leader() {
	for f_n in 1 2 3; do
		eval "f_h=\$H$f_n"
		f_alive "$(f_node_pid "$f_n")" || continue
		f_l=$(curl -fsS -m 2 "http://127.0.0.1:$f_h/jsz?accounts=true&streams=true" 2>/dev/null |
			jq -r --arg s "${1:-KV_$BUCKET}" \
				'.account_details[]?.stream_detail[]? | select(.name == $s) | .cluster.leader // empty' |
			head -n 1)
		case $f_l in n[123]) echo "${f_l#n}"; return 0 ;; esac
	done
	return 1
}

# f_mark TEXT: a time-stamped line in every daemon's log (they do not stamp
# their own), for reading a failure's logs.
f_mark() {
	for f_log in "$WORK"/*/syncd.log; do
		[ -f "$f_log" ] && echo "---- $(date +%T.%N | cut -c1-12) $*" >>"$f_log"
	done
}
