#!/bin/sh
# fleet-demo.sh - the fleet on one host, on loopback: a three-node NATS
# JetStream cluster in operator mode (keyadm bus init), an authority and
# three machines in two locations that join with join tokens, each with its
# own replica and viamkey-syncd. It creates an organization
# key, shows it log in on every machine (a real PAM transaction through
# each machine's replica), revokes it, lets `keyadm sync wait` confirm that
# the revocation is in force everywhere, and shows every machine refuse
# it. Then a failover: the authority's daemon is killed, a standby that
# followed everything is promoted in one command, the key is enabled
# again there, and every machine lets it in again; the former authority's
# keyadm refuses to change anything. The fleet trusts an offline root key,
# not the authority's key. It stops everything it started and leaves its
# files in ./fleet-demo.
#
# Run it after scripts/quickstart.sh (it uses the build tree); it installs
# nats-server, jq and iproute2 (ss) when missing (needs root then).
# docs/FLEET.md explains each step for real hosts.
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
. scripts/deps.sh

install_packages nats-server jq iproute2
[ -x keyadm/keyadm ] && [ -x syncd/viamkey-syncd ] && [ -x tests/pam_login ] || {
	echo "fleet-demo: build first: scripts/quickstart.sh" >&2
	exit 1
}
KEYADM=$top/keyadm/keyadm
SYNCD=$top/syncd/viamkey-syncd
MODULE=$top/pam_viamkey/.libs/pam_viamkey.so
user=${SUDO_USER:-$(id -un)}

umask 077
demo=$top/fleet-demo
rm -rf "$demo"
mkdir -p "$demo"
pids=
stop_all() {
	for p in $pids; do kill "$p" 2>/dev/null || :; done
	for p in $pids; do wait "$p" 2>/dev/null || :; done
}
trap stop_all EXIT
trap 'exit 1' INT TERM HUP

# A free TCP port on 127.0.0.1, from a base that depends on this process.
port_free() { [ -z "$(ss -Hltn "( sport = :$1 )")" ]; }
base=$((20000 + $$ % 20000))
while ! port_free "$base" || ! port_free $((base + 1)) || ! port_free $((base + 2)) ||
	! port_free $((base + 100)) || ! port_free $((base + 101)) || ! port_free $((base + 102)); do
	base=$((base + 7))
done
client() { echo $((base + $1 - 1)); }
route() { echo $((base + 100 + $1 - 1)); }
servers="nats://127.0.0.1:$(client 1), nats://127.0.0.1:$(client 2), nats://127.0.0.1:$(client 3)"

echo "== the authority: a store, its tree, a root key and a signing key it certifies =="
mkdir -p "$demo/authority"
cat >"$demo/authority.conf" <<EOF
[store]
path = $demo/authority/keys.db
[sync]
servers = $servers
bucket = viamkey
credentials = $demo/authority/nats.creds
account_key = $demo/authority/bus.nk
system_credentials = $demo/authority/system.creds
signing_key = $demo/signing.key
heartbeat_interval = 2s
EOF
ka() { "$KEYADM" --config "$demo/authority.conf" "$@"; }
ka init --org demo-org --location berlin --machine authority >/dev/null
authority_machine=$(ka --json machines list | sed -n 's/.*"id":"\([0-9a-f-]*\)".*"name":"authority".*/\1/p')
# the root key: kept offline, for real; machines and standbys trust its public half
root=$(ka --json root init --out "$demo/root.key" | sed -n 's/.*"public_key":"\([^"]*\)".*/\1/p')
ka authority init --root-key "$demo/root.key"
org=$(ka --json organizations list | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
berlin=$(ka --json locations list | sed -n 's/.*"id":"\([0-9a-f-]*\)","org_id".*"name":"berlin".*/\1/p')
paris=$(ka --json locations create --org-id "$org" --name paris | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')

echo
echo "== the bus's operator and accounts (keyadm bus init); three nodes include its bus.conf =="
mkdir -p "$demo/bus"
ka bus init --out "$demo/bus"
for n in 1 2 3; do
	mkdir -p "$demo/nats-$n"
	cat >"$demo/nats-$n.conf" <<-EOF
	server_name: n$n
	listen: 127.0.0.1:$(client "$n")
	jetstream { store_dir: "$demo/nats-$n" }
	cluster {
	  name: viamkey-demo
	  listen: 127.0.0.1:$(route "$n")
	  routes: [nats-route://127.0.0.1:$(route 1), nats-route://127.0.0.1:$(route 2), nats-route://127.0.0.1:$(route 3)]
	}
	include "bus/bus.conf"
	EOF
	# the resolver keeps account JWTs in ./viamkey-jwt: each node in a directory of its own
	(cd "$demo/nats-$n" && exec nats-server -c "$demo/nats-$n.conf") >"$demo/nats-$n.log" 2>&1 &
	pids="$pids $!"
done
echo "  nodes on 127.0.0.1:$(client 1)-$(client 3); no user in any node's config"
"$SYNCD" --verbose --config "$demo/authority.conf" 2>"$demo/authority.log" &
authority_pid=$!
pids="$pids $!"

echo
echo "== a standby on another host: an empty store, a key certified in advance for epoch 2 =="
# its own bus user, and copies of the bus keys it needs to admit machines once promoted
mkdir -p "$demo/standby"
ka bus credentials --out "$demo/standby/nats.creds" --name standby >/dev/null
cp "$demo/authority/bus.nk" "$demo/authority/system.creds" "$demo/standby/"
sed -e "s|$demo/authority/|$demo/standby/|" -e "s|^signing_key = .*|signing_key = $demo/standby.key|" \
	"$demo/authority.conf" >"$demo/standby.conf"
echo "root_key = $root" >>"$demo/standby.conf"
ks() { "$KEYADM" --config "$demo/standby.conf" "$@"; }
ks init >/dev/null
ks authority init --standby --root-key "$demo/root.key"
"$SYNCD" --verbose --config "$demo/standby.conf" 2>"$demo/standby.log" &
pids="$pids $!"

echo
echo "== three machines join with join tokens: two for berlin (one token, two uses), one for paris =="
i=0
while ! grep -q "taking join requests" "$demo/authority.log" && [ "$i" -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
ka machines join-token --location-id "$berlin" --uses 2 --ttl 10m >"$demo/berlin.token"
ka machines join-token --location-id "$paris" --ttl 10m >"$demo/paris.token"
machines=
for name in berlin-1 berlin-2 paris-1; do
	mkdir -p "$demo/$name/pam.d"
	# on the new host: the token is all it needs (here each "host" is a directory)
	id=$("$SYNCD" join --token-file "$demo/${name%-*}.token" --name "$name" \
		--config "$demo/$name/viamkey.conf" --db "$demo/$name/keys.db" 2>"$demo/$name/join.log")
	machines="$machines $name:$id"
	echo "heartbeat_interval = 2s" >>"$demo/$name/viamkey.conf"
	for stack in auth account session; do
		printf '%-8s required %s config=%s nodelay\n' "$stack" "$MODULE" "$demo/$name/viamkey.conf"
	done >"$demo/$name/pam.d/viamkey-demo"
	"$SYNCD" --config "$demo/$name/viamkey.conf" 2>"$demo/$name/syncd.log" &
	pids="$pids $!"
	echo "  $name ($id): $demo/$name/viamkey.conf"
done

echo
echo "== an organization key for $user =="
ka --json organizations api-key create --org-id "$org" --user "$user" --role operator \
	--name demo-org-key 2>/dev/null | sed -n 's/.*"key":"\([A-Za-z0-9_]*\)".*/\1/p' >"$demo/token"
key=$(ka --json keys list | sed -n 's/.*"id":"\([0-9a-f-]*\)","name":"demo-org-key".*/\1/p')
echo "  key $key"
ka sync wait --timeout 60s

login_everywhere() {
	for spec in $machines; do
		name=${spec%%:*}
		if "$top/tests/pam_login" --confdir "$demo/$name/pam.d" --service viamkey-demo "$user" \
			<"$demo/token" >"$demo/login.out" 2>&1; then
			echo "  $name: login accepted"
		else
			echo "  $name: login refused ($(tail -n 1 "$demo/login.out"))"
		fi
	done
}
echo
echo "== a real PAM login with it on every machine, each from its own replica =="
login_everywhere

echo
echo "== revoked on the authority; keyadm sync wait confirms it is in force everywhere =="
ka keys disable --key-id "$key" >/dev/null
start=$(date +%s%N)
ka sync wait --timeout 60s
echo "  (keyadm sync wait returned after $((($(date +%s%N) - start) / 1000000)) ms)"
ka sync status

echo
echo "== the same login on every machine =="
login_everywhere

echo
echo "== failover: the authority's daemon killed; the standby promoted =="
kill -9 "$authority_pid"
wait "$authority_pid" 2>/dev/null || :
start=$(date +%s%N)
ks authority promote --force
echo "  (keyadm authority promote returned after $((($(date +%s%N) - start) / 1000000)) ms)"
ks sync status | head -n 2

echo
echo "== the old host is gone: its machine leaves the tree (else sync wait waits for it) =="
ks machines delete --machine-id "$authority_machine"

echo
echo "== the key enabled again, on the new authority; every machine follows epoch 2 =="
ks keys enable --key-id "$key" >/dev/null
ks sync wait --timeout 60s
login_everywhere

echo
echo "== the former authority's keyadm, once its daemon finds the lease another's =="
"$SYNCD" --verbose --config "$demo/authority.conf" 2>>"$demo/authority.log" &
pids="$pids $!"
i=0
while ! grep -q "authority lease is held by" "$demo/authority.log" && [ "$i" -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
ka keys disable --key-id "$key" || :

echo
echo "Done. Everything started is stopped; the files are in $demo."
