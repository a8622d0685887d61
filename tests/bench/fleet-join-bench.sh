#!/bin/sh
# fleet-join-bench.sh - the second part of `make bench-fleet`: machines
# joining the fleet and leaving it (SPEC §9), on a real three-node bus in
# operator mode on 127.0.0.1, set up as tests/test-fleet-join.sh sets it up
# (tests/fleet-lib.sh with F_OPERATOR and F_ROOTED: keyadm bus init, the
# nodes including its bus.conf, an authority certified by a root key, its
# heartbeat every 10 s). For each N of VK_JOIN_SIZES (default "100 1000"),
# on a fleet of its own:
#  - the reference: a plain NATS request from a new process (tests/vk_bus
#    as the system account's user: connect, $SYS.REQ.SERVER.PING, exit),
#    VK_JOIN_REFS (20) times; join times are also given as multiples of
#    its p50;
#  - one join alone, VK_JOIN_ALONE (10) times, one after the other, each
#    with a token of one use: viamkey-syncd join's wall time, split where
#    it wrote the config (the authority's answer had come) into asking and
#    bringing the replica in step, and its CPU time (tests/bench/stamp);
#    each joined machine's daemon is then started;
#  - N joins at once with ONE token of N uses: N hosts forked first, each
#    waiting for a line on one pipe, then released together; each runs
#    viamkey-syncd join and, once it joined, the machine's daemon (as a
#    host starts viamkey-syncd after joining). Each join's wall time, its
#    two parts and its CPU time; from the release, the time until the last
#    join exited and until `keyadm sync wait` returned 0. Machines that the
#    authority admitted but no host holds (the host gave up waiting for the
#    answer) are counted, and then the time until sync wait names only them;
#  - the reference and one join alone again, beside the machine daemons;
#  - VK_JOIN_DELETES (20) machines deleted one after the other (their
#    daemon stopped first, keyadm machines delete on the authority): from
#    keyadm's exit (stamp) until the machine's credentials can no longer
#    connect to any node (vk_bus --creds, tried again at once until
#    refused).
# The joins get VK_JOIN_SETTLE (900) seconds from the release to be in
# step. Nothing is asserted: what did not happen in time is reported as
# such. Writes results/fleet-join.md, fleet-join.csv and
# fleet-join-summary.txt here; docs/BENCHMARKS.md discusses them. Each N
# runs in a process of its own (this script again, in results/), whose
# fleet-lib.sh trap stops everything it started; VK_KEEP_WORK=1 keeps its
# working directory (results/test-fleet-join-N.*), as in the tests.
# VK_JOIN_RENICE=NICE runs the authority's daemon and the nodes at that
# nice value, ahead of the N simulated hosts that share their 2 cores.
# shellcheck disable=SC2016 # subjects with $ are literal
LC_ALL=C
export LC_ALL
# the run of each N is this script again, with these set
bdir=${VK_JOIN_BDIR:-$(pwd)}
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
abs_top_builddir=${abs_top_builddir:-${top_builddir:-$(cd ../.. && pwd)}}
abs_top_srcdir=${abs_top_srcdir:-${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}}
VK_JOIN_BDIR=$bdir
export abs_top_builddir abs_top_srcdir VK_JOIN_BDIR
OUT=$bdir/results
STAMP=$bdir/stamp
SIZES=${VK_JOIN_SIZES-100 1000}
REFS=${VK_JOIN_REFS:-20}
ALONE=${VK_JOIN_ALONE:-10}
DELETES=${VK_JOIN_DELETES:-20}
SETTLE=${VK_JOIN_SETTLE:-900}
md=$OUT/fleet-join.md
csv=$OUT/fleet-join.csv
summary=$OUT/fleet-join-summary.txt

if [ -z "${VK_JOIN_N:-}" ]; then
	[ -x "$STAMP" ] || { echo "bench-fleet: build first ($STAMP is missing)" >&2; exit 1; }
	mkdir -p "$OUT"
	echo "n,case,count,p50_ms,p99_ms,max_ms,p50_x_ref,p99_x_ref" >"$csv"
	{
		echo "| machines | case | count | p50 ms | p99 ms | max ms | p50 x ref | p99 x ref |"
		echo "|---:|---|---:|---:|---:|---:|---:|---:|"
	} >"$md"
	echo "host: $(nproc) cores, $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo);" \
		"load average $(cut -d' ' -f1-3 /proc/loadavg) at the start" >"$summary"
	for N in $SIZES; do
		(cd "$OUT" && VK_JOIN_N=$N sh "$self") ||
			echo "N=$N: the run stopped (exit $?); see above" | tee -a "$summary" >&2
	done
	echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >>"$summary"
	{
		echo
		echo '```'
		cat "$summary"
		echo '```'
	} >>"$md"
	echo "bench-fleet: done: $md" >&2
	exit 0
fi

# ---- one N, in $OUT --------------------------------------------------------------------------
N=$VK_JOIN_N
srcdir=$abs_top_srcdir/tests
# shellcheck source=tests/fleet-lib.sh
. "$srcdir/fleet-lib.sh"
# shellcheck disable=SC3045 # dash and bash have it
[ "$(id -u)" -eq 0 ] && ulimit -n 65536 2>/dev/null
f_begin "fleet-join-$N"
F_OPERATOR=1
F_ROOTED=1
say() { printf '%s\n' "bench-fleet: N=$N: $*" >&2; }
die() {
	say "$*"
	echo "N=$N: stopped: $*" >>"$summary"
	exit 1
}

# ms FROM_NS TO_NS: milliseconds, one decimal
ms() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f\n", (b - a) / 1e6}'; }
# mtime_ns FILE: its modification time in nanoseconds
mtime_ns() { stat -c %.9Y "$1" | tr -d .; }

# record CASE FILE [REF_MS]: a line of the CSV, of the table and of the summary, from the
# numbers in FILE (lines that are not numbers are counted apart), as multiples of REF_MS too
record() {
	grep -E '^[0-9.]+$' "$2" >"$2.n"
	r_c=$(wc -l <"$2.n")
	r_bad=$(($(wc -l <"$2") - r_c))
	r_shown=$r_c
	[ "$r_bad" -eq 0 ] || r_shown="$r_c (and $r_bad not)"
	if [ "$r_c" -eq 0 ]; then
		echo "$N,\"$1\",0,,,,," >>"$csv"
		printf '| %s | %s | 0 (%s not) | | | | | |\n' "$N" "$1" "$r_bad" >>"$md"
		echo "N=$N $1: none ($r_bad not)" | tee -a "$summary" >&2
		return 0
	fi
	r_50=$(f_pctl "$2.n" 50)
	r_99=$(f_pctl "$2.n" 99)
	r_max=$(sort -n "$2.n" | tail -n 1)
	r_x50='' r_x99=''
	if [ -n "${3:-}" ]; then
		r_x50=$(awk -v a="$r_50" -v f="$3" 'BEGIN {printf "%.1f", a / f}')
		r_x99=$(awk -v a="$r_99" -v f="$3" 'BEGIN {printf "%.1f", a / f}')
	fi
	echo "$N,\"$1\",$r_c,$r_50,$r_99,$r_max,$r_x50,$r_x99" >>"$csv"
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$N" "$1" "$r_shown" "$r_50" "$r_99" \
		"$r_max" "$r_x50" "$r_x99" >>"$md"
	echo "N=$N $1: p50 $r_50 ms, p99 $r_99 ms, max $r_max ms over $r_shown${3:+ (p50 ${r_x50}x, p99 ${r_x99}x the reference)}" |
		tee -a "$summary" >&2
}

# reference WHEN: the plain NATS request from a new process, $REFS times; its p50 in $REF
reference() {
	: >"$WORK/ref-$1.ms"
	r_i=1
	while [ "$r_i" -le "$REFS" ]; do
		"$STAMP" -s "$WORK/ref.start" "$WORK/ref.end" "$VK_BUS" --creds "$WORK/authority/system.creds" \
			"$SERVERS" request '$SYS.REQ.SERVER.PING' '' >"$WORK/ref.out" 2>&1
		if grep -q '"server"' "$WORK/ref.out"; then
			ms "$(cat "$WORK/ref.start")" "$(cat "$WORK/ref.end")" >>"$WORK/ref-$1.ms"
		else
			echo "failed: $(head -c 200 "$WORK/ref.out")" >>"$WORK/ref-$1.ms"
		fi
		r_i=$((r_i + 1))
	done
	record "reference, $1: a plain NATS request from a new process (connect, request, exit)" \
		"$WORK/ref-$1.ms"
	REF=$(f_pctl "$WORK/ref-$1.ms.n" 50)
}

# join_cmd HOST TOKEN_FILE: viamkey-syncd join for HOST ($WORK/HOST), timed by stamp into
# HOST/start and HOST/end, the CPU it used into HOST/cpu, its exit status into HOST/status
join_cmd() {
	"$STAMP" -s "$WORK/$1/start" -c "$WORK/$1/cpu" "$WORK/$1/end" "$SYNCD" join --verbose --token-file "$2" \
		--name "$1" --config "$WORK/$1/viamkey.conf" --db "$WORK/$1/store/keys.db" \
		>"$WORK/$1/join.out" 2>"$WORK/$1/join.err" </dev/null
	echo $? >"$WORK/$1/status"
}

# timed PHASE HOST...: each joined HOST's wall time, its two parts (the config written when
# the answer came) and its CPU time, appended to $WORK/PHASE.{wall,ask,step,cpu}; a join
# that failed: its reason, in PHASE.odd
timed() {
	t_phase=$1
	shift
	for t_h in "$@"; do
		t_d=$WORK/$t_h
		if [ -s "$t_d/join.out" ] && [ -f "$t_d/viamkey.conf" ]; then
			t_s=$(cat "$t_d/start") t_e=$(cat "$t_d/end") t_c=$(mtime_ns "$t_d/viamkey.conf")
			ms "$t_s" "$t_e" >>"$WORK/$t_phase.wall"
			ms "$t_s" "$t_c" >>"$WORK/$t_phase.ask"
			ms "$t_c" "$t_e" >>"$WORK/$t_phase.step"
			cat "$t_d/cpu" >>"$WORK/$t_phase.cpu"
			[ "$(cat "$t_d/status")" = 0 ] || echo "$t_h: joined, exit $(cat "$t_d/status")" >>"$WORK/$t_phase.odd"
		else
			echo "failed" >>"$WORK/$t_phase.wall"
			echo "$t_h: $(tail -n 1 "$t_d/join.err")" >>"$WORK/$t_phase.odd"
		fi
	done
}

# alone PHASE: $ALONE joins one after the other, a one-use token each, then their daemons
alone() {
	rm -f "$WORK/$1".*
	a_i=1
	while [ "$a_i" -le "$ALONE" ]; do
		a_h=$1$a_i
		mkdir -p "$WORK/$a_h/store"
		ka machines join-token --location-id "$LOC" >"$WORK/$a_h/token" 2>/dev/null ||
			die "keyadm machines join-token failed"
		join_cmd "$a_h" "$WORK/$a_h/token"
		timed "$1" "$a_h"
		[ -s "$WORK/$a_h/join.out" ] && f_syncd_start "$a_h"
		a_i=$((a_i + 1))
	done
	record "one join alone ($2): viamkey-syncd join's wall time" "$WORK/$1.wall" "$REF"
	record "one join alone ($2): until the authority's answer (config written)" "$WORK/$1.ask" "$REF"
	record "one join alone ($2): then the replica brought in step" "$WORK/$1.step" "$REF"
	record "one join alone ($2): the CPU time viamkey-syncd join used" "$WORK/$1.cpu"
	[ ! -s "$WORK/$1.odd" ] || { echo "N=$N one join alone ($2), what went wrong:"; sed 's/^/  /' "$WORK/$1.odd"; } |
		tee -a "$summary" >&2
}

# cpu_ticks: the CPU time (user and system, clock ticks) of the authority's daemon and of the
# three nodes, "AUTHORITY NODES"
cpu_ticks() {
	c_a=$(awk '{print $14 + $15}' "/proc/$(f_syncd_pid authority)/stat")
	c_n=0
	for c_i in 1 2 3; do
		c_n=$((c_n + $(awk '{print $14 + $15}' "/proc/$(f_node_pid "$c_i")/stat")))
	done
	echo "$c_a $c_n"
}

# the authority's log: the seconds (with milliseconds) of a line's time stamp
log_s() {
	sed -n "s/^[0-9-]*T\([0-9]*\):\([0-9]*\):\([0-9.]*\)Z viamkey-syncd.*$1.*/\1 \2 \3/p" \
		"$WORK/authority/syncd.log" | awk '{printf "%.3f\n", $1 * 3600 + $2 * 60 + $3}'
}

# ---- the fleet --------------------------------------------------------------------------------
f_authority
# as in fleet-bench.sh, the default heartbeat interval (fleet-lib.sh's tests use 1 s)
sed -i 's/^heartbeat_interval = .*/heartbeat_interval = 10s/' "$ACONF"
mkdir -p "$WORK/nats"
: >"$WORK/machines"
ORG=$(ka --json organizations create --name bench | jq -r .id)
LOC=$(ka --json locations create --org-id "$ORG" --name joined | jq -r .id)
ka bus init --out "$WORK/nats" >/dev/null || die "keyadm bus init failed"
f_bus_start
f_servers
f_syncd_start authority
f_until 60 grep -q "taking join requests" "$WORK/authority/syncd.log" ||
	die "the authority does not take join requests"
f_sync_wait 60 || die "the authority did not publish: $(cat "$WORK/sync-wait.out")"
# VK_JOIN_RENICE=-10, say: the authority's daemon and the nodes (each of their threads)
# ahead of the simulated hosts on the CPU, as on hosts of their own
if [ -n "${VK_JOIN_RENICE:-}" ]; then
	for p in $(f_syncd_pid authority) $(f_node_pid 1) $(f_node_pid 2) $(f_node_pid 3); do
		# shellcheck disable=SC2046 # a list of thread IDs
		renice -n "$VK_JOIN_RENICE" -p $(ls "/proc/$p/task") >/dev/null
	done
	say "the authority's daemon and the nodes reniced to $VK_JOIN_RENICE"
fi
say "bus on $SERVERS; the authority takes join requests"

reference idle
alone alone "an empty fleet"

# ---- N joins at once, one token -----------------------------------------------------------------
ka --json machines join-token --location-id "$LOC" --uses "$N" >"$WORK/many.json" 2>/dev/null ||
	die "keyadm machines join-token --uses $N failed"
jq -r .token "$WORK/many.json" >"$WORK/many.token"
i=1
while [ "$i" -le "$N" ]; do
	mkdir -p "$WORK/j$i/store"
	i=$((i + 1))
done
# all at once: each host reads from one pipe (a FIFO) whose only writer is then this
# shell; once every host is forked and reading, closing it wakes them all (end of file)
mkfifo "$WORK/go"
exec 3<>"$WORK/go"
exec 4<"$WORK/go"
exec 5>"$WORK/go"
exec 3>&-
say "forking $N hosts"
i=1
while [ "$i" -le "$N" ]; do
	(
		exec 5>&-
		: >"$WORK/j$i/ready"
		read -r _ <&4
		exec 4<&-
		join_cmd "j$i" "$WORK/many.token"
		[ -s "$WORK/j$i/join.out" ] || exit 0
		exec "$SYNCD" --config "$WORK/j$i/viamkey.conf" ${VK_FLEET_VERBOSE:+--verbose} \
			</dev/null >"$WORK/j$i/syncd.log" 2>&1
	) &
	echo "$!" >"$WORK/j$i/pid"
	f_track "syncd-j$i" "$!"
	i=$((i + 1))
done
exec 4<&-
# shellcheck disable=SC2317 # called by f_until
count_is() { [ "$(find "$WORK" -maxdepth 2 -path "$WORK/j*/$1" | wc -l)" -ge "$N" ]; }
f_until 300 count_is ready || die "the $N hosts were not all forked within 300 s"
sleep 1
say "starting $N joins with one token of $N uses"
cpu0=$(cpu_ticks)
T0=$(date +%s%N)
exec 5>&-
f_until "$SETTLE" count_is status || say "not every join exited within $SETTLE s"
T_ENDED=$(date +%s%N)
cpu1=$(cpu_ticks)
hosts=$(i=1; while [ "$i" -le "$N" ]; do echo "j$i"; i=$((i + 1)); done)
# shellcheck disable=SC2086 # a list of hosts
timed many $hosts
joined=$(grep -c -E '^[0-9.]+$' "$WORK/many.wall")
say "$joined of $N joined; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# the subshells of joins that failed have exited: not daemons
for h in $hosts; do
	if [ ! -s "$WORK/$h/join.out" ]; then
		p=$(cat "$WORK/$h/pid")
		f_stop "$p"
		f_untrack "syncd-$h" "$p"
	fi
done
# keyadm sync wait, again and again until it returns 0, for as long as the settle time
# leaves. The machines of the tree that no host holds (admitted after their host stopped
# waiting for the answer) are counted apart: while they are there it cannot return 0, so
# it also ends once sync wait names only them (every host that joined is in step), or
# once the hosts it names have not become fewer for VK_JOIN_STALL (120) seconds.
for o in "$WORK"/*/join.out; do
	[ -s "$o" ] && echo "$(cat "$o") $(basename "$(dirname "$o")")"
done | sort >"$WORK/held"
cut -d' ' -f1 "$WORK/held" >"$WORK/held.ids"
hosts_synced=0 stalled=0 fewest=-1
t_fewest=$(date +%s)
while :; do
	ka --json machines list --all | jq -r '.[].id' | sort >"$WORK/tree.ids"
	comm -23 "$WORK/tree.ids" "$WORK/held.ids" >"$WORK/orphans.ids"
	orphans=$(grep -c . "$WORK/orphans.ids")
	"$STAMP" "$WORK/synced" "$KEYADM" --config "$ACONF" --json sync wait --timeout 2s \
		>"$WORK/sync-wait.out" 2>"$WORK/sync-wait.err"
	sync_st=$?
	T_SYNCED=$(cat "$WORK/synced")
	[ "$sync_st" -ne 0 ] || break
	jq -r '.machines_behind[]?' "$WORK/sync-wait.out" | sort >"$WORK/behind.ids"
	comm -23 "$WORK/behind.ids" "$WORK/orphans.ids" >"$WORK/hosts-behind.ids"
	behind=$(grep -c . "$WORK/hosts-behind.ids")
	if [ "$behind" -eq 0 ]; then
		hosts_synced=1
		break
	fi
	if [ "$fewest" -lt 0 ] || [ "$behind" -lt "$fewest" ]; then
		fewest=$behind
		t_fewest=$(date +%s)
	elif [ $(($(date +%s) - t_fewest)) -ge "${VK_JOIN_STALL:-120}" ]; then
		stalled=1
		break
	fi
	[ $(((T_SYNCED - T0) / 1000000000)) -lt "$SETTLE" ] || break
done

starts=$(cat "$WORK"/j*/start | sort -n)
first=$(echo "$starts" | head -n 1)
last_start=$(echo "$starts" | tail -n 1)
last_end=$(for e in $hosts; do [ -s "$WORK/$e/join.out" ] && cat "$WORK/$e/end"; done | sort -n | tail -n 1)
record "$N joins at once (one token): each join's wall time" "$WORK/many.wall" "$REF"
record "$N joins at once: until the authority's answer (config written)" "$WORK/many.ask" "$REF"
record "$N joins at once: then the replica brought in step" "$WORK/many.step" "$REF"
record "$N joins at once: the CPU time each viamkey-syncd join used" "$WORK/many.cpu"
in_tree=$(ka --json machines list --all | jq length)
admitted=$(log_s "(j[0-9]*) joined location" | sort -n)
# after: the milliseconds from the release to the time (ns) given
after() { ms "$T0" "$1"; }
{
	echo "N=$N joins at once: released together, they started (stamp) $(after "$first") to $(after "$last_start") ms after;" \
		"$joined joined (exit 0: $(grep -lx 0 "$WORK"/j*/status | wc -l)), $in_tree machines in the authority's tree" \
		"($ALONE of them joined alone before)"
	[ -z "$last_end" ] || echo "  the last join that joined exited $(after "$last_end") ms after the release"
	echo "  the authority admitted $(echo "$admitted" | grep -c .) joins" \
		"(its log: from $(echo "$admitted" | head -n 1) to $(echo "$admitted" | tail -n 1) s of the day)"
	[ "$orphans" -eq 0 ] || echo "  $orphans machines in the authority's tree that no host holds" \
		"(admitted after the host stopped waiting for the answer)"
	if [ "$sync_st" -eq 0 ]; then
		echo "  keyadm sync wait returned 0 (every machine in step) $(after "$T_SYNCED") ms after the release"
	elif [ "$hosts_synced" -eq 1 ]; then
		echo "  every host that joined in step $(after "$T_SYNCED") ms after the release:" \
			"keyadm sync wait names only the $orphans machines no host holds, and cannot return 0"
	else
		echo "  keyadm sync wait did NOT return 0 by $(after "$T_SYNCED") ms after the release" \
			"($([ "$stalled" -eq 1 ] && echo "no fewer behind for ${VK_JOIN_STALL:-120} s" || echo "the settle time"));" \
			"$behind hosts that joined are behind (and $orphans machines no host holds); their replicas say:"
		join "$WORK/hosts-behind.ids" "$WORK/held" | while read -r _ b_h; do
			b_p=$(cat "$WORK/$b_h/pid" 2>/dev/null)
			"$KEYADM" --config "$WORK/$b_h/viamkey.conf" --json sync status 2>/dev/null |
				jq -r --arg run "$(if [ -n "$b_p" ] && f_alive "$b_p"; then echo "daemon running"; else echo "no daemon"; fi)" \
					'"revision \(.revision), last heartbeat seen \(.heartbeat_seen // "never"), \(.last_error // "no error"), \($run)"'
		done | sed 's/seen [0-9T:-]*Z/seen at T/' | sort | uniq -c | sed 's/^/   /'
	fi
	cat "$WORK"/j*/cpu | awk '{s += $1} END {printf "  the %d joins used %.1f s of CPU in all, failed ones included\n", NR, s / 1000}'
	echo "$cpu0 $cpu1" | awk -v hz="$(getconf CLK_TCK)" -v w="$(((T_ENDED - T0) / 1000000))" \
		'{printf "  until every join exited (%.1f s): the authority'"'"'s daemon used %.1f s of CPU," \
		" the three nodes %.1f s (2 cores: %.1f s in all)\n", w / 1000, ($3 - $1) / hz, ($4 - $2) / hz, 2 * w / 1000}'
	echo "  sent the machines' account to the bus $(grep -c "sent the machines' account" "$WORK/authority/syncd.log") times so far"
	echo "  load average $(cut -d' ' -f1-3 /proc/loadavg) after"
	[ ! -s "$WORK/many.odd" ] || {
		echo "  what went wrong, by reason:"
		sed 's/^j[0-9]*: //' "$WORK/many.odd" | sort | uniq -c | sort -rn | head -n 10
	}
} | tee -a "$summary" >&2
# one line each: case, milliseconds from the release
line() {
	echo "$N,\"$1\",1,$2,,,," >>"$csv"
	printf '| %s | %s | 1 | %s | | | | |\n' "$N" "$1" "$2" >>"$md"
}
[ -z "$last_end" ] || line "all $joined that joined: the last join exited, from the release" "$(after "$last_end")"
if [ "$sync_st" -eq 0 ]; then
	line "all $N in step: keyadm sync wait returned 0, from the release" "$(after "$T_SYNCED")"
elif [ "$hosts_synced" -eq 1 ]; then
	line "the $joined that joined in step (sync wait names only the $orphans machines no host holds), from the release" \
		"$(after "$T_SYNCED")"
else
	echo "$N,\"all in step: keyadm sync wait did not return 0\",0,,,,," >>"$csv"
	printf '| %s | %s | 0 | | | | | |\n' "$N" "all $N in step: keyadm sync wait did not return 0 within $SETTLE s" >>"$md"
fi

# ---- a join alone, beside the N -----------------------------------------------------------------
running=$((joined + ALONE))
reference "beside $running machine daemons"
alone beside "beside $running machine daemons"

# ---- leaving ----------------------------------------------------------------------------------
say "deleting $DELETES machines"
: >"$WORK/refused.ms"
: >"$WORK/refused.odd"
# probe: machine $h's credentials (ID $id) read its scope, or say why they cannot
probe() {
	"$VK_BUS" --creds "$WORK/$h/store/nats.creds" --inbox "_INBOX.$id" "$SERVERS" \
		request "\$JS.API.DIRECT.GET.KV_$BUCKET.\$KV.$BUCKET.m.$id.t" 2>&1
}
d=0
for h in $hosts; do
	[ "$d" -lt "$DELETES" ] || break
	[ -s "$WORK/$h/join.out" ] || continue
	d=$((d + 1))
	id=$(cat "$WORK/$h/join.out")
	p=$(cat "$WORK/$h/pid")
	f_stop "$p"
	f_untrack "syncd-$h" "$p"
	if ! probe | grep -q "vk1\."; then
		echo "$h: its credentials did not read its scope before the delete" >>"$WORK/refused.odd"
		continue
	fi
	"$STAMP" "$WORK/deleted" "$KEYADM" --config "$ACONF" machines delete --machine-id "$id" >/dev/null ||
		die "keyadm machines delete $id failed"
	T_DEL=$(cat "$WORK/deleted")
	tries=0
	while :; do
		tries=$((tries + 1))
		out=$(probe)
		now=$(date +%s%N)
		case $out in
		*"cannot connect"*)
			ms "$T_DEL" "$now" >>"$WORK/refused.ms"
			echo "$out" >>"$WORK/refusals"
			break
			;;
		esac
		if [ $(((now - T_DEL) / 1000000000)) -ge 60 ]; then
			echo "not within 60 s" >>"$WORK/refused.ms"
			break
		fi
	done
	echo "$tries" >>"$WORK/refused.tries"
done
record "a deleted machine's credentials refused by every node, from keyadm's exit" "$WORK/refused.ms"
{
	echo "N=$N deletes: $(sort "$WORK/refusals" 2>/dev/null | uniq -c | tr -s ' ' | tr '\n' ';')" \
		"connections tried per delete until refused: max $(sort -n "$WORK/refused.tries" | tail -n 1)"
	sed 's/^/  /' "$WORK/refused.odd"
} | tee -a "$summary" >&2
echo "N=$N the authority sent the machines' account $(grep -c "sent the machines' account" "$WORK/authority/syncd.log") times in all" |
	tee -a "$summary" >&2
say "stopping everything"
exit 0
