#!/bin/sh
# fleet-bench.sh - `make bench-fleet`: the fleet on this one host, with N
# machine daemons as real processes (VK_FLEET_SIZES, default "100 1000";
# empty: none, only the publication rate and first syncs below)
# beside a three-node nats-server cluster, an authority certified by a root
# key and a standby, all on 127.0.0.1. For each N it measures:
#  - the floor: N processes on the same bus, each receiving one plain NATS
#    message and committing one durable SQLite transaction, over
#    VK_FLEET_ROUNDS (10) rounds (tests/bench/floor); every time below is
#    also given as a multiple of this floor's p99;
#  - from keyadm's exit on the authority (tests/bench/stamp) until every
#    machine has applied a new organization key (usable everywhere), and
#    until a revocation of it is in force everywhere: p50, p99 and max over
#    VK_FLEET_CHANGES (25) changes each, from the replicas themselves
#    (tests/bench/fleetwatch) and from the machines' acknowledgements in the
#    authority's store; and for each of these changes, until it was durable on the bus
#    (its outbox row gone: JetStream acknowledged it) (tests/bench/fleetwait);
#  - VK_FLEET_KILLS (5) times: the node leading the bucket's stream killed
#    (SIGKILL), the first change after it and the one after that, until in
#    force in every machine's replica (tests/bench/fleetwatch), until every
#    machine acknowledged it, and until durable on the bus; the node
#    restarted and the cluster healthy again before the next kill. Then,
#    with no republish, that no change was lost: every machine acknowledges
#    the last revision and holds every key as the authority does;
#  - VK_FLEET_SESSION_ROUNDS (5) times: one live session on every machine
#    (a process of tests/bench/fleetjournal recorded in each machine's
#    journal as the module records the process that opens a session; as
#    root, forked into the PID namespace in which tests/bench/pidns runs
#    that machine's daemon, so that each daemon sees its own machine's
#    processes and not the whole fleet's),
#    opened with one organization key, and that key disabled: from keyadm's
#    exit until the last of the N processes was ended by its machine's
#    daemon, and each process's own time;
#  - VK_FLEET_LOGINS_RATE (100) logins a second spread over the N machines
#    for VK_FLEET_LOGINS_SECONDS (60) s, each appended to its machine's
#    journal as the module appends it (fleetjournal), with a machine's
#    daemon, the authority's and a bus node each killed (SIGKILL) and
#    started again on the way: from each append until the event could be
#    read in the authority's store (its transaction committed, seen by
#    fleetjournal stored, which looks every 5 ms), how many were lost and
#    how many stored twice;
#  - a machine daemon's memory (resident, and private) and its CPU when
#    idle, over a minute, sampled on 20 daemons;
#  - the authority's daemon killed (SIGKILL) and the standby promoted
#    (keyadm authority promote --force): how long promote takes, and then
#    VK_FLEET_PROMOTED_CHANGES (5) changes of each kind on the promoted
#    standby, timed as above, the first also from promote's return; the
#    same checks that nothing was lost. The next N gets a new standby,
#    certified for the next epoch;
# and once (with the last N's authority): how many changes per second the
# authority publishes, and how long a new machine takes to sync a scope of
# 10,000 and of 100,000 keys (viamkey-syncd --once, from an empty replica).
# The machines get VK_FLEET_SETTLE_MS (600000) to be in step after they
# start, a change VK_FLEET_TIMEOUT_MS (120000). With VK_FLEET_AUTHORITY_NICE
# set (say -10), the authority's daemon runs under nice -n that value: the
# CPU share of a host of its own, which the machines and the bus nodes share
# here (the bench says so first; not the default).
# Writes results/fleet.md, results/fleet.csv and results/fleet-summary.txt
# here; docs/BENCHMARKS.md discusses them. Everything it starts, it stops.
set -eu
LC_ALL=C
export LC_ALL
top_builddir=${top_builddir:-$(cd ../.. && pwd)}
bdir=$(pwd)
KEYADM=$top_builddir/keyadm/keyadm
SYNCD=$top_builddir/syncd/viamkey-syncd
FLEETWAIT=$bdir/fleetwait
FLEETWATCH=$bdir/fleetwatch
FLOOR=$bdir/floor
STAMP=$bdir/stamp
FLEETJOURNAL=$bdir/fleetjournal
SIZES=${VK_FLEET_SIZES-100 1000}
CHANGES=${VK_FLEET_CHANGES:-25}
ROUNDS=${VK_FLEET_ROUNDS:-10}
KILLS=${VK_FLEET_KILLS:-5}
PROMOTED=${VK_FLEET_PROMOTED_CHANGES:-5}
SESSION_ROUNDS=${VK_FLEET_SESSION_ROUNDS:-5}
LOGINS_RATE=${VK_FLEET_LOGINS_RATE:-100}
LOGINS_SECONDS=${VK_FLEET_LOGINS_SECONDS:-60}
TIMEOUT_MS=${VK_FLEET_TIMEOUT_MS:-120000}
SETTLE_MS=${VK_FLEET_SETTLE_MS:-600000}
AUTH_NICE=${VK_FLEET_AUTHORITY_NICE:-}
OUT=$bdir/results
W=$OUT/fleet-work
# each of the three kills of the logins' phase takes a quarter of it, 5 s at least
[ "$LOGINS_SECONDS" -ge 20 ] ||
	{ echo "bench-fleet: VK_FLEET_LOGINS_SECONDS is $LOGINS_SECONDS; it must be 20 or more" >&2; exit 1; }
for f in "$KEYADM" "$SYNCD" "$FLEETWAIT" "$FLEETWATCH" "$FLOOR" "$STAMP" "$FLEETJOURNAL" "$bdir/pidns"; do
	[ -x "$f" ] || { echo "bench-fleet: build first ($f is missing)" >&2; exit 1; }
done
for tool in nats-server sqlite3 jq curl ss; do
	command -v "$tool" >/dev/null || { echo "bench-fleet: $tool is missing" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] && ulimit -n 65536 2>/dev/null || :
# Each machine daemon runs with a process table of its own (tests/bench/pidns: a PID
# namespace and its /proc), as on a machine of a real fleet, where what the daemon reads of
# /proc is its own machine's: ending a session reads every process it can see on a kernel
# without children lists. Without root, they share this host's and the bench says so.
PIDNS=
if [ "$(id -u)" -eq 0 ]; then
	PIDNS=$bdir/pidns
else
	echo "bench-fleet: not root: the machine daemons share one process table (ending a session" \
		"reads all of it)" >&2
fi
# Each machine's daemon watches its events journal with an inotify instance of its own, and a
# host allows 128 to one user: as root the bench raises the limit for its N daemons (and the
# rest of the host's) while it runs and puts it back at the end; without, a daemon over the
# limit looks at its journal four times a second, and says so in its log.
INOTIFY=/proc/sys/fs/inotify/max_user_instances
inotify_was=
largest=0
for n in $SIZES; do [ "$n" -le "$largest" ] || largest=$n; done
if [ "$(id -u)" -eq 0 ] && [ -w "$INOTIFY" ] && [ "$(cat "$INOTIFY")" -lt $((largest + 1024)) ]; then
	inotify_was=$(cat "$INOTIFY")
	echo $((largest + 1024)) >"$INOTIFY"
fi
# a daemon that crashes leaves a core for its backtrace, where the host writes one
ulimit -c unlimited 2>/dev/null || :

umask 077
rm -rf "$W"
mkdir -p "$W" "$OUT"
# what runs: the machine daemons in $pids; the nodes, the authority's and the
# standby's daemons, a watch, the floor and the journals' writer by their
# own variables, each emptied once that process was waited for (its PID may
# be reused after)
pids=
node_1='' node_2='' node_3=''
auth_pid='' sb_pid='' watch_pid='' floor_pid='' journal_pid='' stored_pid=''
cleanup() {
	for p in $floor_pid $watch_pid $journal_pid $stored_pid $pids $auth_pid $sb_pid \
		$node_1 $node_2 $node_3; do
		kill "$p" 2>/dev/null || :
	done
	for p in $floor_pid $watch_pid $journal_pid $stored_pid $pids $auth_pid $sb_pid \
		$node_1 $node_2 $node_3; do
		wait "$p" 2>/dev/null || :
	done
	[ -z "$inotify_was" ] || echo "$inotify_was" >"$INOTIFY"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
say() { printf '%s\n' "bench-fleet: $*" >&2; }
csv=$OUT/fleet.csv
echo "n,case,count,p50_ms,p99_ms,max_ms,p50_x_floor,p99_x_floor" >"$csv"
md=$OUT/fleet.md
: >"$md"
summary=$OUT/fleet-summary.txt
: >"$summary"

port_free() { [ -z "$(ss -Hltn "( sport = :$1 )")" ]; }
ports_free() {
	for o in 0 1 2 10 11 12 20 21 22; do port_free $(($1 + o)) || return 1; done
}
base=$((30000 + $$ % 10000))
while ! ports_free "$base"; do base=$((base + 23)); done
SERVERS="nats://127.0.0.1:$base, nats://127.0.0.1:$((base + 1)), nats://127.0.0.1:$((base + 2))"
printf 'bench\n' >"$W/password"

# node_start N: node N's config (client, cluster and monitoring ports) and the node
node_start() {
	n=$1
	cat >"$W/nats-$n.conf" <<-EOF
	server_name: n$n
	listen: 127.0.0.1:$((base + n - 1))
	http: 127.0.0.1:$((base + 20 + n - 1))
	max_connections: 20000
	jetstream { store_dir: "$W/nats-$n", max_memory_store: 1GB, max_file_store: 20GB }
	cluster {
	  name: bench
	  listen: 127.0.0.1:$((base + 10 + n - 1))
	  routes: [nats-route://127.0.0.1:$((base + 10)), nats-route://127.0.0.1:$((base + 11)), nats-route://127.0.0.1:$((base + 12))]
	}
	accounts {
	  SYS { users: [{user: sys, password: sys}] }
	  VIAMKEY { jetstream: enabled, users: [{user: viamkey, password: bench}] }
	}
	system_account: SYS
	EOF
	nats-server -c "$W/nats-$n.conf" >>"$W/nats-$n.log" 2>&1 &
	eval "node_$n=$!"
}

# node_kill N: SIGKILL to node N
node_kill() {
	eval "p=\$node_$1"
	kill -9 "$p" 2>/dev/null || :
	wait "$p" 2>/dev/null || :
	eval "node_$1="
}

# jsz N [STREAM]: node N's JetStream report of STREAM (the bucket's: KV_viamkey), JSON, empty
# when it has none
jsz() {
	curl -fsS -m 2 "http://127.0.0.1:$((base + 20 + $1 - 1))/jsz?accounts=true&streams=true" 2>/dev/null |
		jq -c --arg s "${2:-KV_viamkey}" '.account_details[]?.stream_detail[]? | select(.name == $s)' \
			2>/dev/null | head -n 1
}

# stream_leader [STREAM]: the node (1-3) leading STREAM (the bucket's)
stream_leader() {
	for n in 1 2 3; do
		eval "p=\$node_$n"
		[ -n "$p" ] || continue
		l=$(jsz "$n" "$@" | jq -r '.cluster.leader // empty')
		case $l in n[123]) echo "${l#n}"; return 0 ;; esac
	done
	return 1
}

# nodes_healthy: every node answers /healthz with ok (JetStream current with
# its meta leader and every stream)
nodes_healthy() {
	for n in 1 2 3; do
		curl -fsS -m 2 "http://127.0.0.1:$((base + 20 + n - 1))/healthz" 2>/dev/null | grep -q '"ok"' ||
			return 1
	done
}

# healthy: so, and the bucket's stream has a leader and two current replicas
healthy() {
	nodes_healthy || return 1
	l=$(stream_leader) || return 1
	[ "$(jsz "$l" | jq '[.cluster.replicas[]? | select(.current and (.offline | not))] | length')" = 2 ]
}

# until_true SECS CMD...: runs CMD every 0.2 s until it succeeds; 1 after SECS
until_true() {
	u_end=$(($(date +%s) + $1))
	shift
	while ! "$@"; do
		[ "$(date +%s)" -lt "$u_end" ] || return 1
		sleep 0.2
	done
}

# pctl FILE P: the P-th percentile (nearest rank) of the numbers in FILE
pctl() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i]}'; }

# ratio MS: MS as a multiple of this N's floor (its p99)
ratio() { awk -v a="$1" -v f="$FLOOR_P99" 'BEGIN {if (f > 0) printf "%.2f", a / f; else printf "n/a"}'; }

# record N CASE FILE: a line of the CSV, of the table and of the summary, from
# the numbers in FILE; a line that is not a number (a timeout) is counted apart
record() {
	grep -E '^-?[0-9.]+$' "$3" >"$3.n" || :
	c=$(wc -l <"$3.n")
	bad=$(($(wc -l <"$3") - c))
	if [ "$c" -eq 0 ]; then
		echo "$1,$2,0,,,,," >>"$csv"
		printf '| %s | %s | 0 (%s timed out) | | | | | |\n' "$1" "$2" "$bad" >>"$md"
		echo "N=$1 $2: all $bad timed out" | tee -a "$summary" >&2
		return 0
	fi
	p50=$(pctl "$3.n" 50)
	p99=$(pctl "$3.n" 99)
	max=$(sort -n "$3.n" | tail -n 1)
	x50=$(ratio "$p50")
	x99=$(ratio "$p99")
	n_shown=$c
	[ "$bad" -eq 0 ] || n_shown="$c (and $bad timed out)"
	echo "$1,$2,$c,$p50,$p99,$max,$x50,$x99" >>"$csv"
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$n_shown" "$p50" "$p99" "$max" \
		"$x50" "$x99" >>"$md"
	echo "N=$1 $2: p50 $p50 ms, p99 $p99 ms (${x99}x floor), max $max ms over $n_shown" |
		tee -a "$summary" >&2
}

# The fleet's authority is $AUTH: its config $W/$AUTH.conf, its store $W/$AUTH/keys.db.
ka() { "$KEYADM" --config "$W/$AUTH.conf" "$@"; }
# kat ARGS...: ka, and the time it exited in $T (stamp)
kat() {
	"$STAMP" "$W/exited" "$KEYADM" --config "$W/$AUTH.conf" "$@"
	T=$(cat "$W/exited")
}
adb() { echo "$W/$AUTH/keys.db"; }
revision() { sqlite3 "$(adb)" "SELECT value FROM meta WHERE name = 'fleet_revision'"; }

# authority_conf NAME: the config of an authority or standby NAME
authority_conf() {
	cat >"$W/$1.conf" <<-EOF
	[store]
	path = $W/$1/keys.db
	[sync]
	servers = $SERVERS
	user = viamkey
	password_file = $W/password
	signing_key = $W/$1.key
	heartbeat_interval = 10s
	EOF
}

# standby_start NAME EPOCH: a standby certified for EPOCH by the root key, and its daemon
standby_start() {
	authority_conf "$1"
	echo "root_key = $ROOT_KEY" >>"$W/$1.conf"
	"$KEYADM" --config "$W/$1.conf" init >/dev/null
	"$KEYADM" --config "$W/$1.conf" authority init --standby --root-key "$W/root.key" \
		--epoch "$2" >/dev/null
	"$SYNCD" --config "$W/$1.conf" --verbose 2>"$W/$1.log" &
	sb_pid=$!
	SB=$1
}

# until_applied SINCE_NS [TIMEOUT_MS]: "PUBLISHED APPLIED", the milliseconds from SINCE_NS
# until the current revision was durable on the bus and until every machine acknowledged it
until_applied() { "$FLEETWAIT" "$(adb)" "$(revision)" "$1" "${2:-$TIMEOUT_MS}"; }

# watch_start name|disabled VALUE: fleetwatch on every replica, once it watches them all
watch_start() {
	: >"$W/watch.out"
	"$FLEETWATCH" "$W/replicas" "$1" "$2" "$TIMEOUT_MS" >"$W/watch.out" &
	watch_pid=$!
	until grep -q '^ready$' "$W/watch.out"; do
		kill -0 "$watch_pid" 2>/dev/null || { say "fleetwatch failed"; exit 1; }
		sleep 0.01
	done
}

# watch_end SINCE_NS: the milliseconds from SINCE_NS until the last replica held the change
watch_end() {
	wait "$watch_pid" || :
	watch_pid=
	w_last=$(sed -n 2p "$W/watch.out")
	case $w_last in
	'' | timeout*) echo "timeout" ;;
	*) awk -v d="$((w_last - $1))" 'BEGIN {printf "%.1f\n", d / 1e6}' ;;
	esac
}

# change KIND NAME PREFIX [WATCH]: one change, a new key NAME (KIND create)
# or the disable of the key created last (KIND disable), timed from keyadm's
# exit: PREFIX.published, PREFIX.applied and, with WATCH, PREFIX.inforce get
# a line each. Sets KEY (create) and T (keyadm's exit, ns).
change() {
	if [ -n "${4:-}" ]; then
		if [ "$1" = create ]; then watch_start name "$2"; else watch_start disabled "$KEY"; fi
	fi
	if [ "$1" = create ]; then
		kat --json organizations api-key create --org-id "$ORG" --user alice --name "$2" \
			>"$W/key.json" 2>/dev/null
	else
		kat keys disable --key-id "$KEY" >/dev/null
	fi
	until_applied "$T" >"$W/applied" || :
	read -r c_pub c_app _ <"$W/applied" || :
	echo "$c_pub" >>"$3.published"
	echo "$c_app" >>"$3.applied"
	[ -z "${4:-}" ] || watch_end "$T" >>"$3.inforce"
	[ "$1" != create ] || KEY=$(jq -r .id "$W/key.json")
}

# nothing_lost WHEN: every machine acknowledges the last revision (no
# republish) and holds every organization key as the authority does
nothing_lost() {
	t=$(date +%s%N)
	if ! until_applied "$t" >"$W/lost"; then
		echo "N=$N $1: LOST: machines did not acknowledge revision $(revision): $(cat "$W/lost")" |
			tee -a "$summary" >&2
		return 0
	fi
	q="SELECT id || ' ' || disabled FROM keys WHERE id IN (SELECT key_id FROM grants
	 WHERE resource_type = 'organization') ORDER BY id"
	sqlite3 "$(adb)" "$q" >"$W/keys.want"
	differ=0
	while read -r r; do
		sqlite3 "$r" "$q" >"$W/keys.got"
		cmp -s "$W/keys.want" "$W/keys.got" || differ=$((differ + 1))
	done <"$W/replicas"
	echo "N=$N $1: every machine acknowledged revision $(revision) without a republish;" \
		"$differ of $N replicas differ from the authority's $(wc -l <"$W/keys.want") organization keys" |
		tee -a "$summary" >&2
}

# machine_start I: machine I's daemon, in a PID namespace of its own when $PIDNS is set;
# $W/mI/run is the process to wait for (pidns, or the daemon), machine_pid I the daemon
machine_start() {
	if [ -n "$PIDNS" ]; then
		rm -f "$W/m$1/pid"
		"$PIDNS" "$W/m$1/pid" "$SYNCD" --config "$W/m$1/viamkey.conf" \
			${VK_FLEET_VERBOSE:+--verbose} 2>>"$W/m$1/syncd.log" &
	else
		"$SYNCD" --config "$W/m$1/viamkey.conf" ${VK_FLEET_VERBOSE:+--verbose} \
			2>>"$W/m$1/syncd.log" &
		echo "$!" >"$W/m$1/pid"
	fi
	echo "$!" >"$W/m$1/run"
	pids="$pids $!"
}
machine_pid() {
	until [ -s "$W/m$1/pid" ]; do
		kill -0 "$(cat "$W/m$1/run")" 2>/dev/null ||
			{ say "machine $1 did not start: $(tail -n 3 "$W/m$1/syncd.log")"; exit 1; }
		sleep 0.01
	done
	cat "$W/m$1/pid"
}

# sessions_round R: one live session on every machine, opened with a new organization key,
# and that key disabled; a line per process in $W/sessions.each (ms from keyadm's exit until
# its daemon ended it) and one in $W/sessions.last (until the last of them ended)
sessions_round() {
	"$KEYADM" --config "$W/$AUTH.conf" --json organizations api-key create --org-id "$ORG" \
		--user alice --name "ks-$N-$1" >"$W/key.json" 2>/dev/null
	s_key=$(jq -r .id "$W/key.json")
	t=$(date +%s%N)
	until_applied "$t" >/dev/null || { say "N=$N: session key $1 did not reach every machine"; exit 1; }
	: >"$W/sessions.out"
	"$FLEETJOURNAL" sessions "$W/replicas" "$s_key" alice "$TIMEOUT_MS" \
		${PIDNS:+"$W/machine-pids"} >"$W/sessions.out" 2>"$W/sessions.err" &
	journal_pid=$!
	until grep -q '^ready$' "$W/sessions.out"; do
		kill -0 "$journal_pid" 2>/dev/null || { say "fleetjournal: $(cat "$W/sessions.err")"; exit 1; }
		sleep 0.01
	done
	# each machine took its session into its store before it sent it to the authority
	s_open() {
		[ "$(sqlite3 "$(adb)" "SELECT count(*) FROM sessions WHERE key_id = '$s_key'
			AND state = 'open'")" -eq "$N" ]
	}
	until_true 120 s_open || { say "N=$N: the authority does not hold every machine's session"; exit 1; }
	kat keys disable --key-id "$s_key" >/dev/null
	wait "$journal_pid" || :
	journal_pid=
	awk -v t="$T" '$1 ~ /^[0-9]+$/ {printf "%.1f\n", ($2 - t) / 1e6}' "$W/sessions.out" >"$W/sessions.round"
	cat "$W/sessions.round" >>"$W/sessions.each"
	if grep -q '^timeout' "$W/sessions.out"; then
		echo timeout >>"$W/sessions.last"
	else
		sort -n "$W/sessions.round" | tail -n 1 >>"$W/sessions.last"
	fi
}

# stored_watch PREFIX COUNT: from now on, fleetjournal stored notes in $W/logins.stored when each
# login event of a user PREFIX-* can first be read in the authority's store: "user ms", once its
# transaction committed (not when it was inserted: a take of 256 events can last seconds on this
# host). It looks every 5 ms, at a real-time priority where chrt can give it one, so that the
# host's load does not delay its looks.
stored_watch() {
	rt=
	! chrt -f 10 true 2>/dev/null || rt="chrt -f 10"
	$rt "$FLEETJOURNAL" stored "$(adb)" "$1" "$2" "$((LOGINS_SECONDS + 180))" \
		>"$W/logins.stored" 2>"$W/stored.err" &
	stored_pid=$!
}

# auth_start: the authority's daemon (again)
auth_start() {
	# when it was started, for its log's timeline
	echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) bench-fleet: the daemon started" >>"$W/$AUTH.log"
	# shellcheck disable=SC2086 # nice and its value, or nothing
	${AUTH_NICE:+nice -n $AUTH_NICE} "$SYNCD" --config "$W/$AUTH.conf" --verbose 2>>"$W/$AUTH.log" &
	auth_pid=$!
}

# auth_alive: whether the authority's daemon still runs. One that died by itself (a crash, not
# a kill of the bench's) is said with its exit status and the end of its log; a core it left,
# where the host's core_pattern writes one, is kept.
auth_alive() {
	if kill -0 "$auth_pid" 2>/dev/null &&
		! grep -q '^[0-9]* ([^)]*) Z' "/proc/$auth_pid/stat" 2>/dev/null; then
		return 0
	fi
	status=0
	wait "$auth_pid" 2>/dev/null || status=$?
	auth_pid=
	say "N=$N: the authority's daemon died by itself (exit status $status); the end of its log:"
	tail -n 5 "$W/$AUTH.log" >&2
	return 1
}

# logins_phase: $LOGINS_RATE logins a second over the N machines for $LOGINS_SECONDS s, with
# machine 1's daemon, the authority's and the bus node leading the events stream killed and
# started again on the way
logins_phase() {
	prefix=b$N
	stored_watch "$prefix" "$((LOGINS_RATE * LOGINS_SECONDS))"
	"$FLEETJOURNAL" logins "$W/replicas" "$LOGINS_RATE" "$LOGINS_SECONDS" "$prefix" \
		>"$W/logins.sent" 2>"$W/logins.err" &
	journal_pid=$!
	quarter=$((LOGINS_SECONDS / 4))
	sleep "$quarter"
	m1_pid=$(head -n 1 "$W/machine-pids")
	say "N=$N: SIGKILL to machine 1's daemon ($m1_pid), started again 3 s later"
	kill -9 "$m1_pid"
	wait "$(cat "$W/m1/run")" 2>/dev/null || :
	sleep 3
	machine_start 1
	sed -i "1s/.*/$(machine_pid 1)/" "$W/machine-pids"
	sleep $((quarter - 3))
	auth_alive || exit 1
	say "N=$N: SIGKILL to the authority's daemon, started again 3 s later"
	kill -9 "$auth_pid"
	wait "$auth_pid" 2>/dev/null || :
	sleep 3
	auth_start
	sleep $((quarter - 3))
	# the node leading the events stream: the worst case, an election before the stream confirms
	ev_node=$(stream_leader VKEV_viamkey) || ev_node=3
	say "N=$N: SIGKILL to bus node $ev_node, the events stream's leader, started again 5 s later"
	node_kill "$ev_node"
	sleep 5
	node_start "$ev_node"
	wait "$journal_pid" || say "N=$N: fleetjournal: $(cat "$W/logins.err")"
	journal_pid=
	sent=$(wc -l <"$W/logins.sent")
	# every login seen, or 120 s after the last was made
	all_seen() { [ "$(wc -l <"$W/logins.stored")" -ge "$sent" ] || ! kill -0 "$stored_pid" 2>/dev/null; }
	until_true 120 all_seen || :
	kill "$stored_pid" 2>/dev/null || :
	wait "$stored_pid" 2>/dev/null || :
	stored_pid=
	sort "$W/logins.sent" >"$W/logins.sent.sorted"
	sort -k1,1 -k2,2n "$W/logins.stored" | awk '!seen[$1]++' >"$W/logins.first"
	join "$W/logins.sent.sorted" "$W/logins.first" |
		awk '{ printf "%.1f\n", $3 - $2 / 1e6 }' >"$W/logins.latency"
	got=$(wc -l <"$W/logins.latency")
	twice=$(sqlite3 "$(adb)" "SELECT count(*) - count(DISTINCT user) FROM events
		WHERE kind = 'login' AND user LIKE '$prefix-%'")
	record "$N" "a login's event in the authority's store, $LOGINS_RATE logins/s, three kills" \
		"$W/logins.latency"
	echo "N=$N logins: $sent made over $LOGINS_SECONDS s, $got reached the authority," \
		"$((sent - got)) lost, $twice stored twice" | tee -a "$summary" >&2
	until_true 120 healthy || { say "N=$N: the cluster was not healthy 120 s after node $ev_node restarted"; exit 1; }
}

echo "host: $(nproc) cores, $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo);" \
	"load average $(cut -d' ' -f1-3 /proc/loadavg) at the start" >>"$summary"
say "a three-node cluster on 127.0.0.1:$base-$((base + 2)) (monitoring on $((base + 20))-$((base + 22)))"
[ -z "$AUTH_NICE" ] || say "the authority's daemon runs under nice -n $AUTH_NICE (VK_FLEET_AUTHORITY_NICE): not the default measure"
for n in 1 2 3; do node_start "$n"; done
until_true 30 nodes_healthy || { say "the cluster did not become healthy"; exit 1; }

# the fleet's root of trust, the authority certified for epoch 1
EPOCH=1
AUTH=a$EPOCH
authority_conf "$AUTH"
ka init >/dev/null
ROOT_KEY=$(ka --json root init --out "$W/root.key" | jq -r .public_key)
ka authority init --root-key "$W/root.key" >/dev/null
ORG=$(ka --json organizations create --name bench | jq -r .id)
locations=
for l in 0 1 2 3 4 5 6 7 8 9; do
	locations="$locations $(ka --json locations create --org-id "$ORG" --name "loc-$l" | jq -r .id)"
done
: >"$W/$AUTH.log"
auth_start
SB=
: >"$W/replicas"

started=0
echo "| machines | case | changes | p50 ms | p99 ms | max ms | p50 x floor | p99 x floor |" >>"$md"
echo "|---:|---|---:|---:|---:|---:|---:|---:|" >>"$md"
for N in $SIZES; do
	# a standby for the next epoch, following everything from here on
	[ -n "$SB" ] || standby_start "a$((EPOCH + 1))" $((EPOCH + 1))
	say "N=$N: creating machines $((started + 1))-$N"
	i=$((started + 1))
	while [ "$i" -le "$N" ]; do
		set -- $locations
		shift $((i % 10))
		id=$(ka --json machines create --location-id "$1" --name "m-$i" | jq -r .id)
		mkdir -p "$W/m$i"
		ka machines config --machine-id "$id" | sed -e "s|^path = .*|path = $W/m$i/keys.db|" \
			-e "s|^; credentials = .*|user = viamkey\npassword_file = $W/password|" >"$W/m$i/viamkey.conf"
		i=$((i + 1))
	done
	say "N=$N: starting machines $((started + 1))-$N"
	i=$((started + 1))
	while [ "$i" -le "$N" ]; do
		machine_start "$i"
		machine_pid "$i" >>"$W/machine-pids"
		echo "$W/m$i/keys.db" >>"$W/replicas"
		i=$((i + 1))
		# a staggered start, as a fleet's machines boot at different times
		[ $((i % 50)) -ne 0 ] || sleep 1
	done
	started=$N
	t=$(date +%s%N)
	ka sync republish >/dev/null # a new heartbeat revision for every machine to reach
	until_applied "$t" "$SETTLE_MS" >"$W/settle" || { say "N=$N: the machines did not settle: $(cat "$W/settle")"; exit 1; }
	say "N=$N: every machine in step, $(cut -d' ' -f2 "$W/settle") ms after the last start"

	# what the N daemons cost together, idle, over 10 s (in cores)
	sed 's|.*|/proc/&/stat|' "$W/machine-pids" >"$W/stat-files"
	xargs awk '{s += $14 + $15} END {print s}' <"$W/stat-files" >"$W/cpu-all0"
	sleep 10
	xargs awk '{s += $14 + $15} END {print s}' <"$W/stat-files" >"$W/cpu-all1"
	echo "N=$N in step: load average $(cut -d' ' -f1-3 /proc/loadavg); the $N machine daemons together" \
		"use $(awk -v a="$(cat "$W/cpu-all0")" -v b="$(cat "$W/cpu-all1")" -v hz="$(getconf CLK_TCK)" \
			'BEGIN {printf "%.2f", (b - a) / hz / 10}') cores" | tee -a "$summary" >&2
	say "N=$N: the floor, $ROUNDS rounds"
	mkdir -p "$W/floor-$N"
	"$FLOOR" --user viamkey --password-file "$W/password" "$SERVERS" "$N" "$ROUNDS" "$W/floor-$N" \
		>"$W/floor.ms" 2>"$W/floor.log" &
	floor_pid=$!
	if wait "$floor_pid"; then
		FLOOR_P99=$(pctl "$W/floor.ms" 99)
		record "$N" "floor: a plain NATS message, then one durable commit, in each of N processes" "$W/floor.ms"
		echo "N=$N floor, each process's own time over $ROUNDS rounds: p50 $(pctl "$W/floor-$N/floor-samples" 50) ms," \
			"p99 $(pctl "$W/floor-$N/floor-samples" 99) ms" | tee -a "$summary" >&2
	else
		# the rest is measured all the same, without ratios
		FLOOR_P99=
		echo "N=$N floor: FAILED ($(tail -n 1 "$W/floor.log")); no time below is a multiple of it" |
			tee -a "$summary" >&2
	fi
	floor_pid=
	rm -rf "$W/floor-$N"

	rm -f "$W/create".* "$W/revoke".*
	c=1
	while [ "$c" -le "$CHANGES" ]; do
		change create "k-$N-$c" "$W/create" watch
		change disable "" "$W/revoke" watch
		c=$((c + 1))
	done
	record "$N" "new key usable everywhere: in every replica" "$W/create.inforce"
	record "$N" "revocation in force everywhere: in every replica" "$W/revoke.inforce"
	record "$N" "new key usable everywhere (acknowledged)" "$W/create.applied"
	record "$N" "revocation in force everywhere (acknowledged)" "$W/revoke.applied"
	cat "$W/create.published" "$W/revoke.published" >"$W/window"
	record "$N" "commit to durable on the bus (outbox row gone)" "$W/window"

	say "N=$N: a live session on every machine, its key disabled, $SESSION_ROUNDS times"
	rm -f "$W/sessions".*
	s=1
	while [ "$s" -le "$SESSION_ROUNDS" ]; do
		sessions_round "$s"
		s=$((s + 1))
	done
	record "$N" "a live session ended on every machine (its process gone), from the disable" \
		"$W/sessions.last"
	record "$N" "a live session ended, each machine's own" "$W/sessions.each"

	say "N=$N: $LOGINS_RATE logins a second over the machines for $LOGINS_SECONDS s"
	logins_phase

	rm -f "$W/kill1".* "$W/kill2".*
	k=1
	while [ "$k" -le "$KILLS" ]; do
		leader=$(stream_leader) || { say "N=$N: no leader of the stream"; exit 1; }
		say "N=$N: kill $k of $KILLS: node $leader, the stream's leader (SIGKILL)"
		node_kill "$leader"
		change create "kk-$N-$k" "$W/kill1" watch
		change disable "" "$W/kill2" watch
		node_start "$leader"
		until_true 120 healthy || { say "N=$N: the cluster was not healthy 120 s after node $leader restarted"; exit 1; }
		k=$((k + 1))
	done
	if [ "$KILLS" -gt 0 ]; then
		record "$N" "first change after the stream's leader is killed: in force in every replica" "$W/kill1.inforce"
		record "$N" "first change after the stream's leader is killed: acknowledged by every machine" "$W/kill1.applied"
		record "$N" "first change after the stream's leader is killed: durable on the bus" "$W/kill1.published"
		record "$N" "second change, that node still down: in force in every replica" "$W/kill2.inforce"
		record "$N" "second change, that node still down: acknowledged by every machine" "$W/kill2.applied"
		nothing_lost "after $KILLS kills of the stream's leader"
	fi

	sample=$(shuf -n 20 "$W/machine-pids" | tr '\n' ' ')
	say "N=$N: a minute idle"
	# idle SAMPLE_PIDS: resident and private memory (kB) and CPU (% of a core) over 60 s
	t0=$(date +%s%N)
	for p in $sample; do awk '{print $14 + $15}' "/proc/$p/stat"; done >"$W/cpu0"
	sleep 60
	t1=$(date +%s%N)
	for p in $sample; do awk '{print $14 + $15}' "/proc/$p/stat"; done >"$W/cpu1"
	paste "$W/cpu0" "$W/cpu1" | awk -v s="$(((t1 - t0) / 1000000))" -v hz="$(getconf CLK_TCK)" \
		'{t += ($2 - $1) / hz} END {printf "%.3f\n", 100 * t / NR / (s / 1000)}' >"$W/cpu"
	for p in $sample; do sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$p/status"; done >"$W/rss"
	for p in $sample; do awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$p/smaps_rollup"; done >"$W/private"
	{
		echo "N=$N idle machine daemon (20 sampled): resident p50 $(pctl "$W/rss" 50) kB, max $(sort -n "$W/rss" | tail -n 1) kB;"
		echo "  private p50 $(pctl "$W/private" 50) kB, max $(sort -n "$W/private" | tail -n 1) kB; CPU $(cat "$W/cpu") % of a core on average"
		for n in 1 2 3; do
			eval "p=\$node_$n"
			echo "  nats-server n$n resident $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$p/status") kB"
		done
	} | tee -a "$summary" >&2

	# promotion: the standby holds a full copy, the authority dies, the standby is promoted
	full_copy() {
		for tbl in keys machines; do
			[ "$(sqlite3 "$W/$SB/keys.db" "SELECT count(*) FROM $tbl")" = \
				"$(sqlite3 "$(adb)" "SELECT count(*) FROM $tbl")" ] || return 1
		done
	}
	until_true 120 full_copy || { say "N=$N: the standby $SB holds no full copy after 120 s"; exit 1; }
	auth_alive || exit 1
	say "N=$N: the authority's daemon killed (SIGKILL); promoting $SB"
	kill -9 "$auth_pid" 2>/dev/null || :
	wait "$auth_pid" 2>/dev/null || :
	auth_pid=
	t=$(date +%s%N)
	"$STAMP" "$W/exited" "$KEYADM" --config "$W/$SB.conf" authority promote --force --timeout 60s \
		>"$W/promote.out" 2>&1 || { say "N=$N: promote failed: $(cat "$W/promote.out")"; exit 1; }
	PROMOTED_AT=$(cat "$W/exited")
	awk -v d="$((PROMOTED_AT - t))" 'BEGIN {printf "%.1f\n", d / 1e6}' >"$W/promote.ms"
	AUTH=$SB
	auth_pid=$sb_pid
	sb_pid=
	SB=
	EPOCH=$((EPOCH + 1))
	record "$N" "keyadm authority promote --force returns" "$W/promote.ms"
	rm -f "$W/promoted".* "$W/promoted-revoke".*
	c=1
	while [ "$c" -le "$PROMOTED" ]; do
		change create "kp-$N-$c" "$W/promoted" watch
		if [ "$c" -eq 1 ]; then
			watch_end_first=$(tail -n 1 "$W/promoted.inforce")
			case $watch_end_first in
			timeout) echo timeout ;;
			*) awk -v a="$watch_end_first" -v d="$((T - PROMOTED_AT))" 'BEGIN {printf "%.1f\n", a + d / 1e6}' ;;
			esac >"$W/first-after-promote"
		fi
		change disable "" "$W/promoted-revoke" watch
		c=$((c + 1))
	done
	record "$N" "first change after promote, from promote's return: in force in every replica" "$W/first-after-promote"
	cat "$W/promoted.inforce" "$W/promoted-revoke.inforce" >"$W/promoted-all.inforce"
	cat "$W/promoted.applied" "$W/promoted-revoke.applied" >"$W/promoted-all.applied"
	record "$N" "a change on the promoted standby: in force in every replica" "$W/promoted-all.inforce"
	record "$N" "a change on the promoted standby: acknowledged by every machine" "$W/promoted-all.applied"
	nothing_lost "after the promotion to epoch $EPOCH"
done

say "publication rate and a new machine's first sync"
BIG=$(ka --json locations create --org-id "$ORG" --name big | jq -r .id)
NEW=$(ka --json machines create --location-id "$BIG" --name newcomer | jq -r .id)
have=0
for K in 10000 100000; do
	t=$(date +%s%N)
	# Inserts keys granted on location BIG straight into the authority's store, with random
	# verifiers (publication and sync cost the same), then enqueues them for publication.
	sqlite3 "$(adb)" <<-EOF
	.timeout 30000
	BEGIN IMMEDIATE;
	CREATE TEMP TABLE ids AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $((K - have)))
	 SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-8'
	  || substr(h, 18, 3) || '-' || substr(h, 21, 12)) AS id FROM (SELECT hex(randomblob(16)) AS h FROM n);
	INSERT INTO keys (id, name, created_at, created_by) SELECT id, 'bulk', 1700000000, 'bench' FROM ids;
	INSERT INTO key_users (key_id, user) SELECT id, 'alice' FROM ids;
	INSERT INTO grants (key_id, resource_type, resource_id, role) SELECT id, 'location', '$BIG', 'viewer' FROM ids;
	INSERT INTO secrets (key_id, alg, salt, verifier, created_at)
	 SELECT id, 'b2k256-v1', randomblob(32), randomblob(32), 1700000000 FROM ids;
	COMMIT;
	EOF
	ka sync republish >/dev/null
	have=$K
	outbox() { sqlite3 "$(adb)" 'SELECT count(*) FROM sync_outbox'; }
	queued=$(outbox)
	while [ "$(outbox)" -gt 0 ]; do sleep 0.1; done
	ms=$((($(date +%s%N) - t) / 1000000))
	echo "publication: $queued changes in $ms ms: $((queued * 1000 / (ms > 0 ? ms : 1))) changes per second" |
		tee -a "$summary" >&2
	rm -rf "$W/newcomer"
	mkdir -p "$W/newcomer"
	ka machines config --machine-id "$NEW" | sed -e "s|^path = .*|path = $W/newcomer/keys.db|" \
		-e "s|^; credentials = .*|user = viamkey\npassword_file = $W/password|" >"$W/newcomer.conf"
	t=$(date +%s%N)
	if "$SYNCD" --config "$W/newcomer.conf" --once 2>"$W/newcomer.log"; then
		done_as="synced"
	else
		done_as="gave up (--once: $(tail -n 1 "$W/newcomer.log")) with"
	fi
	ms=$((($(date +%s%N) - t) / 1000000))
	keys=$("$KEYADM" --config "$W/newcomer.conf" --json sync status | jq -r .keys)
	echo "a new machine $done_as a scope of $keys keys in $ms ms" | tee -a "$summary" >&2
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >>"$summary"
{
	echo
	echo '```'
	cat "$summary"
	echo '```'
} >>"$md"
say "done: $md"
