#!/bin/sh
# fleet-bench.sh - `make bench-fleet`: the fleet on this one host, with N
# machine daemons as real processes (VK_FLEET_SIZES, default "100 1000";
# empty: none, only the publication rate and first syncs below)
# beside a three-node nats-server cluster and the authority, all on
# 127.0.0.1. For each N it measures:
#  - from keyadm's exit on the authority until every machine has applied a
#    new organization key (usable everywhere), and until a revocation of it
#    is in force everywhere: p50, p99 and max over VK_FLEET_CHANGES (10)
#    changes each, from the machines' acknowledgements in the authority's
#    store (tests/bench/fleetwait);
#  - the same while one of the three bus nodes is killed (SIGKILL);
#  - a machine daemon's memory (resident, and private) and its CPU when
#    idle, over a minute, sampled on 20 daemons;
# and once (with the smallest N): how many changes per second the
# authority publishes, and how long a new machine takes to sync a scope of
# 10,000 and of 100,000 keys (viamkey-syncd --once, from an empty replica).
# Writes results/fleet.md and results/fleet.csv here; docs/BENCHMARKS.md
# discusses them. Everything it starts, it stops.
set -eu
LC_ALL=C
export LC_ALL
srcdir=$(cd "$(dirname "$0")" && pwd)
top_builddir=${top_builddir:-$(cd ../.. && pwd)}
bdir=$(pwd)
KEYADM=$top_builddir/keyadm/keyadm
SYNCD=$top_builddir/syncd/viamkey-syncd
FLEETWAIT=$bdir/fleetwait
SIZES=${VK_FLEET_SIZES-100 1000}
CHANGES=${VK_FLEET_CHANGES:-10}
OUT=$bdir/results
W=$OUT/fleet-work
for f in "$KEYADM" "$SYNCD" "$FLEETWAIT"; do
	[ -x "$f" ] || { echo "bench-fleet: build first ($f is missing)" >&2; exit 1; }
done
command -v nats-server >/dev/null || { echo "bench-fleet: nats-server is missing" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] && ulimit -n 65536 2>/dev/null || :

umask 077
rm -rf "$W"
mkdir -p "$W" "$OUT"
pids=
nats_pids=
cleanup() {
	for p in $pids $nats_pids; do kill "$p" 2>/dev/null || :; done
	for p in $pids $nats_pids; do wait "$p" 2>/dev/null || :; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
say() { printf '%s\n' "bench-fleet: $*" >&2; }
csv=$OUT/fleet.csv
echo "n,case,count,p50_ms,p99_ms,max_ms" >"$csv"
md=$OUT/fleet.md
: >"$md"

port_free() { [ -z "$(ss -Hltn "( sport = :$1 )")" ]; }
base=$((30000 + $$ % 10000))
while ! port_free "$base" || ! port_free $((base + 1)) || ! port_free $((base + 2)) ||
	! port_free $((base + 10)) || ! port_free $((base + 11)) || ! port_free $((base + 12)); do
	base=$((base + 13))
done
SERVERS="nats://127.0.0.1:$base, nats://127.0.0.1:$((base + 1)), nats://127.0.0.1:$((base + 2))"
printf 'bench\n' >"$W/password"

node_start() {
	n=$1
	cat >"$W/nats-$n.conf" <<-EOF
	server_name: n$n
	listen: 127.0.0.1:$((base + n - 1))
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
	nats_pids="$nats_pids $!"
}

# pctl FILE P: the P-th percentile (nearest rank) of the numbers in FILE
pctl() { sort -n "$1" | awk -v p="$2" '{v[NR] = $1} END {i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; print v[i]}'; }

# record N CASE FILE: a line of the CSV and of the table
record() {
	c=$(wc -l <"$3")
	p50=$(pctl "$3" 50)
	p99=$(pctl "$3" 99)
	max=$(sort -n "$3" | tail -n 1)
	echo "$1,$2,$c,$p50,$p99,$max" >>"$csv"
	printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$c" "$p50" "$p99" "$max" >>"$md"
	say "N=$1 $2: p50 $p50 ms, p99 $p99 ms, max $max ms over $c"
}

ka() { "$KEYADM" --config "$W/authority.conf" "$@"; }
revision() { sqlite3 "$W/authority/keys.db" "SELECT value FROM meta WHERE name = 'fleet_revision'"; }

# until_applied SINCE_NS: milliseconds until every machine has applied the current revision
until_applied() { "$FLEETWAIT" "$W/authority/keys.db" "$(revision)" "$1" "${VK_FLEET_TIMEOUT_MS:-120000}"; }

outbox() { sqlite3 "$W/authority/keys.db" 'SELECT count(*) FROM sync_outbox'; }

# Inserts COUNT keys granted on location LOC straight into the authority's store, with
# random verifiers (publication and sync cost the same), then enqueues them for publication.
bulk_keys() {
	sqlite3 "$W/authority/keys.db" <<-EOF
	.timeout 30000
	BEGIN IMMEDIATE;
	CREATE TEMP TABLE ids AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
	 SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-8'
	  || substr(h, 18, 3) || '-' || substr(h, 21, 12)) AS id FROM (SELECT hex(randomblob(16)) AS h FROM n);
	INSERT INTO keys (id, name, created_at, created_by) SELECT id, 'bulk', 1700000000, 'bench' FROM ids;
	INSERT INTO key_users (key_id, user) SELECT id, 'alice' FROM ids;
	INSERT INTO grants (key_id, resource_type, resource_id, role) SELECT id, 'location', '$2', 'viewer' FROM ids;
	INSERT INTO secrets (key_id, alg, salt, verifier, created_at)
	 SELECT id, 'b2k256-v1', randomblob(32), randomblob(32), 1700000000 FROM ids;
	COMMIT;
	EOF
	ka sync republish >/dev/null
}

# idle SAMPLE_PIDS: resident and private memory (kB) and CPU (% of a core) over 60 s
idle() {
	t0=$(date +%s%N)
	for p in $1; do awk '{print $14 + $15}' "/proc/$p/stat"; done >"$W/cpu0"
	sleep 60
	t1=$(date +%s%N)
	for p in $1; do awk '{print $14 + $15}' "/proc/$p/stat"; done >"$W/cpu1"
	hz=$(getconf CLK_TCK)
	paste "$W/cpu0" "$W/cpu1" | awk -v s="$(((t1 - t0) / 1000000))" -v hz="$hz" \
		'{t += ($2 - $1) / hz} END {printf "%.3f\n", 100 * t / NR / (s / 1000)}' >"$W/cpu"
	for p in $1; do sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$p/status"; done >"$W/rss"
	for p in $1; do awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$p/smaps_rollup"; done >"$W/private"
}

say "a three-node cluster on 127.0.0.1:$base-$((base + 2))"
for n in 1 2 3; do node_start "$n"; done

cat >"$W/authority.conf" <<EOF
[store]
path = $W/authority/keys.db
[sync]
servers = $SERVERS
user = viamkey
password_file = $W/password
signing_key = $W/signing.key
heartbeat_interval = 10s
EOF
ka init --org bench --location loc-0 --machine authority >/dev/null
ka authority init >/dev/null
ORG=$(ka --json organizations list | jq -r '.[0].id')
locations=
for l in 0 1 2 3 4 5 6 7 8 9; do
	locations="$locations $(ka --json locations create --org-id "$ORG" --name "loc-$l" | jq -r .id)"
done
"$SYNCD" --config "$W/authority.conf" --verbose 2>"$W/authority.log" &
pids="$pids $!"

started=0
echo "| machines | case | changes | p50 ms | p99 ms | max ms |" >>"$md"
echo "|---:|---|---:|---:|---:|---:|" >>"$md"
summary=$OUT/fleet-summary.txt
: >"$summary"
for N in $SIZES; do
	say "N=$N: creating and starting machines $((started + 1))-$N"
	i=$((started + 1))
	while [ "$i" -le "$N" ]; do
		set -- $locations
		shift $((i % 10))
		id=$(ka --json machines create --location-id "$1" --name "m-$i" | jq -r .id)
		mkdir -p "$W/m$i"
		ka machines config --machine-id "$id" | sed -e "s|^path = .*|path = $W/m$i/keys.db|" \
			-e "s|^; credentials = .*|user = viamkey\npassword_file = $W/password|" >"$W/m$i/viamkey.conf"
		"$SYNCD" --config "$W/m$i/viamkey.conf" ${VK_FLEET_VERBOSE:+--verbose} 2>"$W/m$i/syncd.log" &
		pids="$pids $!"
		echo "$!" >>"$W/machine-pids"
		i=$((i + 1))
		# a staggered start, as a fleet's machines boot at different times
		[ $((i % 50)) -ne 0 ] || sleep 1
	done
	started=$N
	t=$(date +%s%N)
	ka sync republish >/dev/null # a new heartbeat revision for every machine to reach
	until_applied "$t" >"$W/settle" || { say "N=$N: the machines did not settle: $(cat "$W/settle")"; exit 1; }
	say "N=$N: every machine in step, $(cat "$W/settle") ms after the last start"

	: >"$W/create.ms"
	: >"$W/revoke.ms"
	c=1
	while [ "$c" -le "$CHANGES" ]; do
		key=$(ka --json organizations api-key create --org-id "$ORG" --user alice --name "k-$N-$c" 2>/dev/null | jq -r .id)
		t=$(date +%s%N)
		until_applied "$t" >>"$W/create.ms"
		ka keys disable --key-id "$key" >/dev/null
		t=$(date +%s%N)
		until_applied "$t" >>"$W/revoke.ms"
		c=$((c + 1))
	done
	record "$N" "new key usable everywhere" "$W/create.ms"
	record "$N" "revocation in force everywhere" "$W/revoke.ms"

	say "N=$N: node 2 killed (SIGKILL)"
	kill -9 "$node_2" 2>/dev/null || :
	wait "$node_2" 2>/dev/null || :
	: >"$W/killed.ms"
	c=1
	while [ "$c" -le 5 ]; do
		key=$(ka --json organizations api-key create --org-id "$ORG" --user alice --name "kk-$N-$c" 2>/dev/null | jq -r .id)
		t=$(date +%s%N)
		until_applied "$t" >>"$W/killed.ms" || :
		ka keys disable --key-id "$key" >/dev/null
		t=$(date +%s%N)
		until_applied "$t" >>"$W/killed.ms" || :
		c=$((c + 1))
	done
	record "$N" "a change, one of three nodes killed" "$W/killed.ms"
	node_start 2
	t=$(date +%s%N)
	ka sync republish >/dev/null
	until_applied "$t" >"$W/rejoin" || :
	say "N=$N: node 2 back; every machine in step after $(cat "$W/rejoin") ms"

	sample=$(shuf -n 20 "$W/machine-pids" | tr '\n' ' ')
	say "N=$N: a minute idle"
	idle "$sample"
	{
		echo "N=$N idle machine daemon (20 sampled): resident p50 $(pctl "$W/rss" 50) kB, max $(sort -n "$W/rss" | tail -n 1) kB;"
		echo "  private p50 $(pctl "$W/private" 50) kB, max $(sort -n "$W/private" | tail -n 1) kB; CPU $(cat "$W/cpu") % of a core on average"
		for n in 1 2 3; do
			eval "p=\$node_$n"
			echo "  nats-server n$n resident $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$p/status") kB"
		done
	} | tee -a "$summary" >&2
done

say "publication rate and a new machine's first sync"
set -- $locations
BIG=$(ka --json locations create --org-id "$ORG" --name big | jq -r .id)
NEW=$(ka --json machines create --location-id "$BIG" --name newcomer | jq -r .id)
have=0
for K in 10000 100000; do
	t=$(date +%s%N)
	bulk_keys $((K - have)) "$BIG"
	have=$K
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
cat "$summary" >>"$md"
say "done: $md"
