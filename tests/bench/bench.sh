#!/bin/sh
# bench.sh - `make bench`: what a login costs with pam_viamkey.so, next to
# pam_vkref.so (the reference: the least any SQLite-backed key module must
# do, on the same store), pam_permit (the floor), pam_google_authenticator
# (the fastest real peer) and pam_unix with a yescrypt hash, at 1k, 10k,
# 100k and 1M keys; keyadm as whole processes; logins per second with 1-8
# processes, with and without keyadm writing. docs/BENCHMARKS.md explains
# the method and the numbers.
#
# Run from the build tree by `make bench` (it installs its own extra
# packages when root: libpam-google-authenticator, oathtool, gnuplot-nox,
# liboath-dev). Writes results/ here: results.csv, results.md (pam_viamkey
# against the reference, tables, targets, machine), bench-login.png.
#
# Stores are built once, through common/, and kept in $VK_BENCH_CACHE
# (default /var/tmp/viamkey-bench); delete it to rebuild them. Knobs:
#   VK_BENCH_SIZES    store sizes (default "1000 10000 100000 1000000")
#   VK_BENCH_ITERS    logins per case (default 3000; pam_unix 1/20 of it)
#   VK_BENCH_SECONDS  seconds per concurrency case (default 4)
#   VK_BENCH_WAL      last-use commits left in the log of the "wal" case (default 300)
#
# pam_unix needs a user with a yescrypt hash in /etc/shadow: as root, the
# login runs in a private mount namespace (unshare -m) in which copies of
# /etc/passwd and /etc/shadow with that user are bind-mounted; the host's
# files are never touched. Without root the pam_unix case is skipped.
set -eu
LC_ALL=C
export LC_ALL
started=$(date +%s)
srcdir=$(cd "$(dirname "$0")" && pwd)
top_srcdir=$(cd "$srcdir/../.." && pwd)
top_builddir=${top_builddir:-$(cd ../.. && pwd)}
bdir=$(pwd)
. "$top_srcdir/scripts/deps.sh"

install_packages libpam-google-authenticator oathtool gnuplot-nox liboath-dev libpam-modules
${MAKE:-make} vkbench vkpopulate pam_vkref.la >/dev/null

MODULE=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
REF=$bdir/.libs/pam_vkref.so
KEYADM=$top_builddir/keyadm/keyadm
VKBENCH=$bdir/vkbench
POPULATE=$bdir/vkpopulate
CACHE=${VK_BENCH_CACHE:-/var/tmp/viamkey-bench}
SIZES=${VK_BENCH_SIZES:-1000 10000 100000 1000000}
ITERS=${VK_BENCH_ITERS:-3000}
SECONDS_PER=${VK_BENCH_SECONDS:-4}
WAL_COMMITS=${VK_BENCH_WAL:-300}
OUT=$bdir/results
W=$OUT/work
GA_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
UNIX_PASSWORD=bench-Password-1
for f in "$MODULE" "$REF" "$KEYADM"; do
	[ -e "$f" ] || { echo "bench: build first ($f is missing)" >&2; exit 1; }
done
# bump when vkpopulate's data changes (g2: keys made in a vk_txn); the schema is part of it,
# so that a cached store is never one an older viamkey made
probe=$(mktemp -d)
GEN=g2-s$("$KEYADM" --db "$probe/keys.db" --json init 2>/dev/null |
	sed -n 's/.*"schema_version":\([0-9]*\).*/\1/p')
rm -rf "$probe"
smallest=${SIZES%% *}
largest=${SIZES##* }
mid=$(for n in $SIZES; do [ "$n" -le 100000 ] && echo "$n"; done | tail -n 1)

wpid=
trap '[ -z "$wpid" ] || kill -TERM "$wpid" 2>/dev/null || :' EXIT
umask 077
rm -rf "$OUT"
mkdir -p "$W/pam.d" "$CACHE"
chmod 0700 "$CACHE"
csv=$OUT/results.csv
echo "group,label,procs,n,p50_us,p99_us,mean_us,min_us,max_us,per_s,errors" >"$csv"
say() { printf '%s\n' "bench: $*" >&2; }
# Appends vkbench's CSV lines to results.csv under a group name, and shows
# them. Transactions with the wrong result are counted (column errors) and
# reported with the targets rather than ending the run.
record() {
	group=$1
	shift
	"$@" >"$W/last.csv" || [ $? -eq 1 ]
	sed "s/^/$group,/" "$W/last.csv" >>"$csv"
	sed "s/^/  $group,/" "$W/last.csv" >&2
}
human() { # 1000 -> 1k, 1000000 -> 1M
	case $1 in
	*000000) echo "${1%000000}M" ;;
	*000) echo "${1%000}k" ;;
	*) echo "$1" ;;
	esac
}

# ---- stores: built once in bulk through common/, then reused ------------------
store_dir() { echo "$CACHE/$GEN-$1"; }
for n in $SIZES; do
	d=$(store_dir "$n")
	if [ -f "$d/ok" ]; then
		say "store of $(human "$n") keys: reusing $d"
		continue
	fi
	say "store of $(human "$n") keys: building $d"
	rm -rf "$d" "$d.tmp"
	mkdir -m 0700 "$d.tmp"
	t0=$(date +%s)
	"$POPULATE" --db "$d.tmp/keys.db" --keys "$n" --user vkbench --out "$d.tmp"
	mv "$d.tmp" "$d"
	echo "$(($(date +%s) - t0))" >"$d/build_seconds"
	touch "$d/ok"
done

# ---- configs and PAM services ---------------------------------------------------
conf() { # conf NAME STORE -> config file path
	printf '[store]\npath = %s\n[pam]\nrole = operator\n' "$2" >"$W/$1.conf"
	echo "$W/$1.conf"
}
vk_service() { # vk_service NAME CONFIG [MODULE]
	printf 'auth     required %s config=%s nodelay\naccount  required %s config=%s nodelay\n' \
		"${3:-$MODULE}" "$2" "${3:-$MODULE}" "$2" >"$W/pam.d/$1"
}
printf 'auth     required pam_permit.so\naccount  required pam_permit.so\n' >"$W/pam.d/permit"
for n in $SIZES; do
	vk_service "viamkey-$n" "$(conf "vk-$n" "$(store_dir "$n")/keys.db")"
	# the reference, on the same store
	printf 'auth     required %s db=%s\naccount  required %s db=%s\n' \
		"$REF" "$(store_dir "$n")/keys.db" "$REF" "$(store_dir "$n")/keys.db" >"$W/pam.d/vkref-$n"
done
# A copy of the largest store up to 100k whose write-ahead log holds
# WAL_COMMITS last-use writes, as logins leave them between keyadm writes
# (keyadm empties the log after each of its own): every connection that
# opens the store reads the log back first, pam_viamkey twice per login.
wd=$W/wal-store
mkdir -m 0700 "$wd"
cp "$(store_dir "$mid")/keys.db" "$wd/keys.db"
"$POPULATE" --db "$wd/keys.db" --touch "$WAL_COMMITS"
wal_label="wal$WAL_COMMITS"
vk_service "viamkey-$wal_label-$mid" "$(conf "vk-wal" "$wd/keys.db")"
printf 'auth     required %s db=%s\naccount  required %s db=%s\n' \
	"$REF" "$wd/keys.db" "$REF" "$wd/keys.db" >"$W/pam.d/vkref-$wal_label-$mid"
# A copy of the same store beside an events journal, as viamkey-syncd makes it
# on a fleet's hosts: every decision is appended there too (SPEC §11).
jd=$W/journal-store
mkdir -m 0700 "$jd"
cp "$(store_dir "$mid")/keys.db" "$jd/keys.db"
(umask 077 && : >"$jd/keys.db.events")
vk_service "viamkey-journal-$mid" "$(conf "vk-journal" "$jd/keys.db")"
printf 'auth     required %s db=%s\naccount  required %s db=%s\n' \
	"$REF" "$jd/keys.db" "$REF" "$jd/keys.db" >"$W/pam.d/vkref-journal-$mid"
# pam_google_authenticator: a TOTP secret file of its own; no DISALLOW_REUSE
# or RATE_LIMIT, so a code may be used again within its 30 s window.
mkdir -p "$W/ga"
printf '%s\n" TOTP_AUTH\n' "$GA_SECRET" >"$W/ga/secret"
chmod 0400 "$W/ga/secret"
printf 'auth     required pam_google_authenticator.so secret=%s user=%s\naccount  required pam_permit.so\n' \
	"$W/ga/secret" "$(id -un)" >"$W/pam.d/google"
code=$(oathtool --totp -b "$GA_SECRET")
[ ${#code} -eq 6 ] || { echo "bench: oathtool does not work" >&2; exit 1; }
printf 'auth     required pam_unix.so\naccount  required pam_unix.so\n' >"$W/pam.d/unix"

# The logins run as root in a private mount namespace (unshare -m), never
# touching the host: there, copies of /etc/passwd and /etc/shadow with a
# user for pam_unix (a yescrypt hash) are bind-mounted, and when the host
# has no syslog daemon, a private /dev whose /dev/log discards what it gets
# (without one, glibc's syslog falls back to writing /dev/console, a serial
# line here, which would time the console instead of the modules).
unix_ok=no
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1; then
	hash=$("$VKBENCH" yescrypt "$UNIX_PASSWORD")
	cp /etc/passwd "$W/passwd"
	cp /etc/shadow "$W/shadow"
	echo "vkbench-unix:x:64999:64999:viamkey bench:/nonexistent:/usr/sbin/nologin" >>"$W/passwd"
	echo "vkbench-unix:$hash:19000:0:99999:7:::" >>"$W/shadow"
	chmod 0644 "$W/passwd"
	chmod 0640 "$W/shadow"
	mkdir -p "$W/hostdev"
	unix_ok=yes
fi
in_ns() {
	if [ $unix_ok = yes ]; then
		unshare -m --propagation private sh -c '
			W=$1 VKBENCH=$2
			shift 2
			mount --bind "$W/passwd" /etc/passwd && mount --bind "$W/shadow" /etc/shadow || exit 2
			sink=
			if [ ! -S /dev/log ]; then
				mount --rbind /dev "$W/hostdev" && mount -t tmpfs -o mode=0755 tmpfs /dev || exit 2
				for n in null zero full random urandom tty console; do
					: >"/dev/$n" && mount --bind "$W/hostdev/$n" "/dev/$n" || exit 2
				done
				ln -s /proc/self/fd /dev/fd
				"$VKBENCH" sink /dev/log &
				sink=$!
				sleep 0.2
			fi
			rc=0
			"$@" || rc=$?
			[ -z "$sink" ] || kill "$sink"
			exit $rc' sh "$W" "$VKBENCH" "$@"
	else
		"$@"
	fi
}

# ---- logins, one process, all cases interleaved --------------------------------
spec() { # spec LABEL SERVICE USER KIND VALUE EXPECT ITERS
	echo "$1:$W/pam.d:$2:$3:$4:$5:$6:$7"
}
set -- "$(spec pam_permit permit vkbench text x ok "$ITERS")" \
	"$(spec pam_google_authenticator google vkbench totp "$GA_SECRET" ok "$ITERS")"
[ $unix_ok = yes ] &&
	set -- "$@" "$(spec pam_unix unix vkbench-unix text "$UNIX_PASSWORD" ok $((ITERS / 20)))"
for n in $SIZES; do
	d=$(store_dir "$n")
	for m in viamkey vkref; do
		set -- "$@" "$(spec "$m-valid-$n" "$m-$n" vkbench file "$d/token" ok "$ITERS")" \
			"$(spec "$m-wrong-secret-$n" "$m-$n" vkbench file "$d/wrong" fail "$ITERS")" \
			"$(spec "$m-unknown-key-$n" "$m-$n" vkbench file "$d/unknown" fail "$ITERS")"
	done
done
for m in viamkey vkref; do
	set -- "$@" "$(spec "$m-valid-$wal_label-$mid" "$m-$wal_label-$mid" vkbench file \
		"$(store_dir "$mid")/token" ok "$ITERS")" \
		"$(spec "$m-valid-journal-$mid" "$m-journal-$mid" vkbench file \
			"$(store_dir "$mid")/token" ok "$ITERS")"
done
say "logins: $# cases, interleaved in 5 rounds (pam_start_confdir, authenticate, acct_mgmt, pam_end)"
record login in_ns "$VKBENCH" login --maps --rounds 5 "$@"

# ---- loading the module alone: dlopen + dlclose ---------------------------------
say "dlopen + dlclose of the modules and the libraries they load"
record dlopen "$VKBENCH" dlopen --label "pam_viamkey.so (+ libsqlite3.so libsodium.so)" \
	--iters 2000 "$MODULE"
record dlopen "$VKBENCH" dlopen --label "pam_vkref.so (+ libsqlite3.so libsodium.so)" --iters 2000 "$REF"
for lib in security/pam_permit.so security/pam_google_authenticator.so libsqlite3.so.0 \
	libsodium.so.23; do
	f=$(ls /lib/x86_64-linux-gnu/$lib /usr/lib/x86_64-linux-gnu/$lib 2>/dev/null | head -n 1)
	[ -n "$f" ] && record dlopen "$VKBENCH" dlopen --label "$(basename "$lib")" --iters 2000 "$f"
done

# ---- keyadm, whole processes, on a copy of the largest store up to 100k --------
kd=$W/keyadm-store
mkdir -m 0700 "$kd"
cp "$(store_dir "$mid")/keys.db" "$kd/keys.db"
kconf=$(conf keyadm "$kd/keys.db")
machine=$(cat "$(store_dir "$mid")/machine_id")
key=$(cat "$(store_dir "$mid")/key_id")
token=$(store_dir "$mid")/token
ka="$KEYADM --config $kconf"
say "keyadm: whole processes (fork, exec, wait) on a copy of the $(human "$mid") store"
record keyadm "$VKBENCH" spawn --label "true (exec floor)" --iters 200 -- /bin/true
record keyadm "$VKBENCH" spawn --label "keyadm --version" --iters 200 -- $KEYADM --version
record keyadm "$VKBENCH" spawn --label "keyadm create" --iters 200 -- $ka machines api-key create \
	--machine-id "$machine" --user vkbench-c --name "bench-%n"
record keyadm "$VKBENCH" spawn --label "keyadm show" --iters 200 -- $ka keys show --key-id "$key"
record keyadm "$VKBENCH" spawn --label "keyadm check" --iters 200 --stdin "$token" -- $ka check \
	--user vkbench
record keyadm "$VKBENCH" spawn --label "keyadm rotate" --iters 200 -- $ka keys rotate --key-id "$key"
record keyadm "$VKBENCH" spawn --label "keyadm keys list --json ($(human "$mid") keys)" --iters 5 \
	-- $ka --json keys list
record keyadm "$VKBENCH" spawn --label "keyadm keys list ($(human "$mid") keys)" --iters 5 \
	-- $ka keys list
$ka --json keys list >"$W/list.json"
listed=$(jq length "$W/list.json" 2>/dev/null || echo "?")
rm -f "$W/list.json"

# ---- concurrency, on a copy of the largest store -------------------------------
cd_=$W/concurrency-store
mkdir -m 0700 "$cd_"
say "concurrency: copying the $(human "$largest") store"
cp "$(store_dir "$largest")/keys.db" "$cd_/keys.db"
cp "$(store_dir "$largest")/token" "$cd_/token"
cconf=$(conf concurrency "$cd_/keys.db")
vk_service viamkey-concurrency "$cconf"
cmachine=$(cat "$(store_dir "$largest")/machine_id")
# the writer rotates a key of its own, so the logins' key stays valid
rot=$($KEYADM --config "$cconf" --json machines api-key create --machine-id "$cmachine" \
	--user vkbench-r --name rotating | sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p')
[ -n "$rot" ] || { echo "bench: cannot create the writer's key" >&2; exit 1; }
cspec=$(spec "viamkey-$(human "$largest")" viamkey-concurrency vkbench file "$cd_/token" ok 1)
for p in 1 2 4 8; do
	say "concurrency: $p login processes for ${SECONDS_PER}s"
	record logins-parallel in_ns "$VKBENCH" login --procs "$p" --seconds "$SECONDS_PER" "$cspec"
done
for p in 1 2 4 8; do
	say "concurrency: $p login processes for ${SECONDS_PER}s while keyadm creates and rotates keys"
	"$VKBENCH" writer --label "keyadm writer (create+rotate) beside $p" --seconds 600 \
		--keyadm "$KEYADM" --config "$cconf" --machine-id "$cmachine" --key-id "$rot" \
		>"$W/writer.csv" &
	wpid=$!
	sleep 1
	record logins-with-writer in_ns "$VKBENCH" login --procs "$p" --seconds "$SECONDS_PER" "$cspec"
	kill -TERM "$wpid"
	wait "$wpid" || echo "bench: some keyadm runs of the writer failed" >&2
	wpid=
	sed "s/^/writer,/" "$W/writer.csv" >>"$csv"
	sed "s/^/  writer,/" "$W/writer.csv" >&2
done
rm -rf "$kd" "$cd_" "$wd" "$jd"

# ---- table, targets, plot --------------------------------------------------------
field() { # field GROUP LABEL PROCS COLUMN(5=p50 6=p99 10=per_s)
	awk -F, -v g="$1" -v l="$2" -v p="$3" -v c="$4" '$1 == g && $2 == l && $3 == p { print $c }' "$csv"
}
permit=$(field login pam_permit 1 5)
google=$(field login pam_google_authenticator 1 5)
md=$OUT/results.md
{
	echo "pam_viamkey.so against the reference pam_vkref.so: whole transactions on the same store,"
	echo "interleaved in the same run (ratio = pam_viamkey / pam_vkref; target: p50 ratio <= 1.3)."
	echo "valid-$wal_label: the store's write-ahead log holds $WAL_COMMITS last-use commits;"
	echo "valid-journal: an events journal is beside the store, as viamkey-syncd makes it, and every"
	echo "decision is appended to it."
	echo
	echo "| case | keys | viamkey p50 µs | vkref p50 µs | p50 ratio | viamkey p99 µs | vkref p99 µs | p99 ratio |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	awk -F, '$1 == "login" && $2 ~ /^(viamkey|vkref)-/ {
			m = $2; sub(/-.*/, "", m); c = substr($2, length(m) + 2)
			p50[m, c] = $5; p99[m, c] = $6; if (m == "viamkey") order[++n] = c
		}
		END {
			for (i = 1; i <= n; i++) {
				c = order[i]; size = c; sub(/.*-/, "", size); kind = c; sub(/-[0-9]+$/, "", kind)
				if (p50["vkref", c] == "") continue
				printf "| %s | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |\n", kind, size,
					p50["viamkey", c], p50["vkref", c], p50["viamkey", c] / p50["vkref", c],
					p99["viamkey", c], p99["vkref", c], p99["viamkey", c] / p99["vkref", c]
			}
		}' "$csv"
	echo
	echo "| case | n | p50 µs | p99 µs | p50 / pam_permit | p50 / pam_google_authenticator |"
	echo "|---|---:|---:|---:|---:|---:|"
	awk -F, -v permit="$permit" -v google="$google" '
		$1 == "login" { printf "| %s | %d | %.0f | %.0f | %.2f | %.2f |\n", $2, $4, $5, $6, $5 / permit, $5 / google }' "$csv"
	echo
	echo "| dlopen + dlclose | n | p50 µs | p99 µs | min µs |"
	echo "|---|---:|---:|---:|---:|"
	awk -F, '$1 == "dlopen" { printf "| %s | %d | %.0f | %.0f | %.0f |\n", $2, $4, $5, $6, $8 }' "$csv"
	echo
	echo "| keyadm (whole process) | n | p50 ms | p99 ms |"
	echo "|---|---:|---:|---:|"
	awk -F, '$1 == "keyadm" { printf "| %s | %d | %.2f | %.2f |\n", $2, $4, $5 / 1000, $6 / 1000 }' "$csv"
	echo
	echo "\`keys list --json\` printed $listed keys."
	echo
	echo "| logins in parallel ($(human "$largest") keys) | processes | logins/s | p50 µs | p99 µs |"
	echo "|---|---:|---:|---:|---:|"
	awk -F, '$1 ~ /^logins-/ { printf "| %s | %d | %.0f | %.0f | %.0f |\n", ($1 == "logins-parallel" ? "alone" : "keyadm writing"), $3, $10, $5, $6 }' "$csv"
	echo
	echo "| keyadm writer beside the logins | runs | p50 ms | p99 ms |"
	echo "|---|---:|---:|---:|"
	awk -F, '$1 == "writer" { printf "| %s | %d | %.2f | %.2f |\n", $2, $4, $5 / 1000, $6 / 1000 }' "$csv"
} >"$md"

# Targets: issue 5's, and the performance guard's (pam_viamkey <= 1.3 x pam_vkref since issue 15; keys list --json < 1 s)
verdict() { # verdict DESCRIPTION AWK-CONDITION VALUES...
	d=$1 cond=$2
	shift 2
	if awk -v a="${1:-0}" -v b="${2:-0}" -v c="${3:-0}" -v d="${4:-0}" "BEGIN { exit !($cond) }"; then
		echo "- met: $d"
	else
		echo "- MISSED: $d"
	fi
}
v1=$(field login "viamkey-valid-$largest" 1 5)
v0=$(field login "viamkey-valid-$smallest" 1 5)
{
	echo
	echo "Targets:"
	echo
	for n in $SIZES; do
		x=$(field login "viamkey-valid-$n" 1 5)
		y=$(field login "vkref-valid-$n" 1 5)
		verdict "valid login p50 at $(human "$n") keys: pam_viamkey (${x} µs) <= 1.3 x pam_vkref (${y} µs), ratio $(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.2f", x / y }')" \
			"a <= 1.3 * b" "$x" "$y"
	done
	x=$(field login "viamkey-valid-journal-$mid" 1 5)
	y=$(field login "vkref-valid-journal-$mid" 1 5)
	v=$(field login "viamkey-valid-$mid" 1 5)
	w=$(field login "vkref-valid-$mid" 1 5)
	verdict "the events journal does not make a login dearer against the reference: ratio with it $(awk -v x="$x" -v y="$y" 'BEGIN { printf "%.2f", x / y }') <= 1.05 x ratio without $(awk -v x="$v" -v y="$w" 'BEGIN { printf "%.2f", x / y }') ($(human "$mid") keys; p50 ${x} µs with, ${v} µs without)" \
		"a / b <= 1.05 * c / d" "$x" "$y" "$v" "$w"
	verdict "viamkey p50 at $(human "$largest") keys (${v1} µs) <= pam_google_authenticator p50 (${google} µs)" \
		"a <= b" "$v1" "$google"
	verdict "p50 at $(human "$largest") keys (${v1} µs) <= 1.2 x p50 at $(human "$smallest") keys (${v0} µs)" \
		"a <= 1.2 * b" "$v1" "$v0"
	for n in $SIZES; do
		v=$(field login "viamkey-valid-$n" 1 5)
		for kind in wrong-secret unknown-key; do
			x=$(field login "viamkey-$kind-$n" 1 5)
			verdict "$kind p50 at $(human "$n") (${x} µs) within 10% of valid (${v} µs)" \
				"a >= 0.9 * b && a <= 1.1 * b" "$x" "$v"
		done
	done
	for k in create rotate; do
		x=$(field keyadm "keyadm $k" 1 5)
		verdict "keyadm $k p50 ($(awk -v x="$x" 'BEGIN { printf "%.2f", x / 1000 }') ms) <= 10 ms" "a <= 10000" "$x"
	done
	x=$(field keyadm "keyadm keys list --json ($(human "$mid") keys)" 1 5)
	verdict "keys list --json at $(human "$mid") keys p50 ($(awk -v x="$x" 'BEGIN { printf "%.2f", x / 1e6 }') s) < 1 s" \
		"a < 1000000" "$x"
	for p in 1 2 4 8; do
		x=$(field logins-with-writer "viamkey-$(human "$largest")" "$p" 6)
		verdict "login p99 with $p processes while keyadm writes (${x} µs) < 20 ms" "a < 20000" "$x"
	done
	bad=$(awk -F, 'NR > 1 && $11 > 0 { printf "%s%s/%s (%d)", sep, $1, $2, $11; sep = ", " }' "$csv")
	if [ -n "$bad" ]; then
		echo "- MISSED: every transaction had the expected result; wrong results: $bad"
	else
		echo "- met: every login and keyadm run had the expected result"
	fi
	if [ $unix_ok = yes ]; then
		u=$(field login pam_unix 1 5)
		echo "- pam_unix (yescrypt) p50 is $(awk -v u="$u" -v v="$v1" 'BEGIN { printf "%.0f", u / v }') times viamkey's at $(human "$largest") keys"
	fi
} >>"$md"

# Plot: p50 login cost against store size
awk -F, '$1 == "login" && $2 ~ /^viamkey-valid-[0-9]+$/ { n = $2; sub(/.*-/, "", n); v[n] = $5 }
	$1 == "login" && $2 ~ /^viamkey-wrong-secret-[0-9]+$/ { n = $2; sub(/.*-/, "", n); w[n] = $5 }
	$1 == "login" && $2 ~ /^viamkey-unknown-key-[0-9]+$/ { n = $2; sub(/.*-/, "", n); u[n] = $5 }
	$1 == "login" && $2 ~ /^vkref-valid-[0-9]+$/ { n = $2; sub(/.*-/, "", n); r[n] = $5 }
	END { for (n in v) print n, v[n], w[n], u[n], r[n] }' "$csv" | sort -n >"$W/plot.dat"
gnuplot -e "datafile='$W/plot.dat'; outfile='$OUT/bench-login.png'; permit=$permit; google=$google" \
	"$srcdir/plot.gp"

{
	echo
	echo "Machine: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
		"$(nproc) cores, kernel $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')," \
		"SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1), load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo
	for n in $SIZES; do
		printf 'Store of %s keys: %s MB, built in %s s.\n' "$(human "$n")" \
			"$(($(stat -c %s "$(store_dir "$n")/keys.db") / 1048576))" \
			"$(cat "$(store_dir "$n")/build_seconds")"
	done
	echo
	echo "make bench took $(($(date +%s) - started)) s."
} >>"$md"
rm -rf "$W"
cat "$md"
echo
echo "bench: results in $OUT (results.csv, results.md, bench-login.png)"
