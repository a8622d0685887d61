# hardening-lib.sh - shared by the hardening tests: test-concurrency.sh,
# test-crash.sh, test-faults.sh, test-corrupt.sh and test-leaks.sh.
#
# Each test gets a 0700 work directory under the build tree with a store, a
# config and a PAM service directory of its own (nothing outside it is
# read or written), and a trap that stops the processes and undoes the
# mounts it registered and removes the directory on every exit.
#
#   h_begin NAME TOOL...   check tools and the build, make $WORK, set traps
#   h_store [PATH]         store (at PATH, default $WORK/store/keys.db) + config +
#                          pam.d; sets STORE CONF PAMD MACHINE_ID
#   ka ARGS...             keyadm --config $CONF ARGS
#   ka_key VAR ARGS...     keyadm --json ARGS (check-lib.sh); sets VAR_ID, VAR_TOKEN
#   login SERVICE USER TOKEN   pam_login; output in $WORK/login.out, status returned
#   h_pid PID / h_mount DIR    stop PID / unmount DIR on exit
#   h_namespace            re-run the script as root in a private mount namespace
#   h_namespace_for WHAT   the same, or go on without it saying WHAT is not checked
#                          (a failure under VK_STRICT=1)
#   h_syslog               (in the namespace) capture syslog: a private /dev
#                          whose /dev/log feeds $WORK/syslog; h_syslog_sync
#                          waits until everything logged so far is there
#   h_integrity DB         PRAGMA integrity_check, "ok" when sound
#   h_save NAME / h_restore NAME   copy the store's files aside / put the copy back
#   h_projection           what a keyadm change may alter, without what is random
#   h_fault ACTION AT ARGS...  keyadm ARGS in the background under faultpoint.so,
#                          stopped or killed at its write or sync call number AT
#                          (0: none; $WORK/fault.count then holds how many it made);
#                          sets FAULT_PID
#   check DESC CMD...      one test case
#   check_end                  summary; exit status 0 only when every check passed
#
# Exit 77 (skip) when a tool is missing, except under VK_STRICT=1, where a test
# that cannot run fails (exit 99).
# shellcheck disable=SC2034 # variables set here are for the sourcing scripts

top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
MODULE=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
KEYADM=$top_builddir/keyadm/keyadm
PAM_LOGIN=$top_builddir/tests/pam_login
PAM_LOOP=$top_builddir/tests/pam_loop
FAULTPOINT=$top_builddir/tests/.libs/faultpoint.so
SYSLOG_SINK=$top_builddir/tests/syslog_sink
LC_ALL=C
export LC_ALL
# shellcheck source=tests/check-lib.sh
. "${srcdir:-.}/check-lib.sh"
h_pids=
h_mounts=

h_skip() {
	echo "SKIP: $*"
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: a strict run (scripts/run-tests.sh) must run every hardening test"
		exit 99
	fi
	exit 77
}

h_begin() {
	h_name=$1
	shift
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || h_skip "$h_name needs $tool"
	done
	for f in "$MODULE" "$KEYADM" "$PAM_LOGIN"; do
		[ -e "$f" ] || { echo "FAIL: build first ($f is missing)"; exit 99; }
	done
	umask 077
	WORK=$(mktemp -d "$PWD/test-$h_name.XXXXXX")
	trap h_cleanup EXIT
	trap 'exit 1' INT TERM HUP PIPE
}

h_pid() {
	h_pids="$h_pids $1"
}

h_mount() {
	h_mounts="$1 $h_mounts"
}

# h_child PID: PID is still a child of this shell (running, or exited and not
# yet waited for), so it cannot be some other process that reused the ID.
h_child() {
	[ "$(sed -n 's/^PPid:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)" = "$$" ]
}

h_cleanup() {
	rc=$?
	for p in $h_pids; do
		if h_child "$p"; then
			kill -9 "$p" 2>/dev/null || :
			wait "$p" 2>/dev/null || :
		fi
	done
	for m in $h_mounts; do
		umount -l "$m" 2>/dev/null || :
	done
	if [ -n "${VK_KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
	exit $rc
}

# h_namespace_for WHAT: h_namespace; when that cannot be (not root, no
# unshare, a container that forbids it), says that WHAT is not checked and
# goes on without it, except under VK_STRICT=1, where the test fails.
h_namespace_for() {
	h_namespace && return 0
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: no private mount namespace (needs root and unshare), so $1 would not be checked; a strict run must check it"
		exit 99
	fi
	echo "not root, so not checked: $1"
}

# h_namespace: re-runs the script in a private mount namespace (root only;
# the caller decides what to do otherwise). Mounts made there vanish with it.
h_namespace() {
	[ "$(id -u)" -eq 0 ] || return 1
	command -v unshare >/dev/null 2>&1 || return 1
	if [ -z "${VK_HARDEN_NS:-}" ]; then
		# a container may forbid new namespaces even to root
		unshare --mount --propagation private true 2>/dev/null || return 1
		VK_HARDEN_NS=1 exec unshare --mount --propagation private sh "$0" "$@"
	fi
}

# h_syslog: in the namespace, a tmpfs /dev with the usual nodes and a
# /dev/log socket served by syslog_sink, which appends to $WORK/syslog.
h_syslog() {
	[ -n "${VK_HARDEN_NS:-}" ] && [ -x "$SYSLOG_SINK" ] || return 1
	mkdir "$WORK/dev"
	mount -t tmpfs -o mode=0755 tmpfs "$WORK/dev" || return 1
	for n in null zero random urandom full tty; do
		[ -e "/dev/$n" ] || continue
		: >"$WORK/dev/$n"
		if ! mount --bind "/dev/$n" "$WORK/dev/$n" 2>/dev/null; then
			case $n in full | tty) rm -f "$WORK/dev/$n" ;; *) return 1 ;; esac
		fi
	done
	ln -s /proc/self/fd "$WORK/dev/fd"
	ln -s /proc/self/fd/0 "$WORK/dev/stdin"
	ln -s /proc/self/fd/1 "$WORK/dev/stdout"
	ln -s /proc/self/fd/2 "$WORK/dev/stderr"
	mount --move "$WORK/dev" /dev || return 1
	"$SYSLOG_SINK" /dev/log "$WORK/syslog" &
	h_pid $!
	h_n=0
	while [ ! -e "$WORK/syslog" ] && [ "$h_n" -lt 100 ]; do
		sleep 0.05
		h_n=$((h_n + 1))
	done
	[ -e "$WORK/syslog" ]
}

# h_syslog_sync: logs a marker and waits (up to 5 s) until syslog_sink wrote it.
h_syslog_sync() {
	h_mark=vk-sync-$$-$(date +%s%N)
	if command -v logger >/dev/null 2>&1; then
		logger -u /dev/log -d "$h_mark" 2>/dev/null || :
		h_n=0
		while ! grep -q "$h_mark" "$WORK/syslog" && [ "$h_n" -lt 100 ]; do
			sleep 0.05
			h_n=$((h_n + 1))
		done
	else
		sleep 0.5
	fi
}

# h_integrity DB: prints "ok" when PRAGMA integrity_check finds nothing.
# SQLite 3.40.0-3.41.0 (Debian 12 has 3.40.1) falsely reports "NULL value in
# grants.role" for each row, because grants is a WITHOUT ROWID table whose
# primary key columns are not declared first; those lines are dropped when
# a query finds no such NULL. The error limit is raised so that they cannot
# crowd out a real error.
h_integrity() {
	sqlite3 "$1" 'PRAGMA integrity_check(1000000)' >"$WORK/integrity.out" 2>&1
	if [ "$(sqlite3 "$1" 'SELECT count(*) FROM grants WHERE role IS NULL')" = 0 ]; then
		grep -v '^NULL value in grants\.role$' "$WORK/integrity.out" >"$WORK/integrity.f" || :
		[ -s "$WORK/integrity.f" ] || echo ok >"$WORK/integrity.f"
		mv "$WORK/integrity.f" "$WORK/integrity.out"
	fi
	cat "$WORK/integrity.out"
}

# h_save NAME: copies the store's files (and side files) aside; no process may
# have them open. h_restore NAME puts that copy back in their place.
h_save() {
	rm -rf "$WORK/saved-$1"
	mkdir "$WORK/saved-$1"
	cp -p "$STORE"* "$WORK/saved-$1/"
}

h_restore() {
	rm -f "$STORE" "$STORE-wal" "$STORE-shm" "$STORE-journal"
	cp -p "$WORK/saved-$1/"* "$(dirname "$STORE")/"
}

# h_projection: the store's content as a keyadm change may alter it, with
# what is random left out (IDs, salts, verifiers, times) and what identifies
# a change kept (names, flags, grants, users, how many secrets and the
# newest one's row number, the audit actions in order).
h_projection() {
	sqlite3 "$STORE" "
	SELECT 'tree', (SELECT group_concat(name, ',') FROM (SELECT name FROM organizations ORDER BY name)),
	 (SELECT group_concat(name, ',') FROM (SELECT name FROM locations ORDER BY name)),
	 (SELECT group_concat(name, ',') FROM (SELECT name FROM machines ORDER BY name));
	SELECT 'key', name, disabled, protected, expires_at IS NULL FROM keys ORDER BY 2, 3, 4, 5;
	SELECT 'grant', k.name, g.role, g.resource_type FROM grants g JOIN keys k ON k.id = g.key_id ORDER BY 2, 3, 4;
	SELECT 'user', k.name, u.user FROM key_users u JOIN keys k ON k.id = u.key_id ORDER BY 2, 3;
	SELECT 'secrets', count(*), max(id), count(expires_at) FROM secrets;
	SELECT 'events', group_concat(action, ',') FROM (SELECT action FROM events ORDER BY id);"
}

# h_fault ACTION AT ARGS...: runs keyadm ARGS (stdout in $WORK/fault.out) under
# faultpoint.so in the background, to be stopped (ACTION stop) or killed (kill)
# just before its write or sync call number AT; AT 0 counts the calls into
# $WORK/fault.count. The marker $WORK/fault.mark names the PID and point.
h_fault() {
	h_action=$1
	h_at=$2
	shift 2
	rm -f "$WORK/fault.mark" "$WORK/fault.count"
	ASAN_OPTIONS=$FAULT_ASAN_OPTIONS VK_FAULT_PROG=keyadm VK_FAULT_ACTION=$h_action VK_FAULT_AT=$h_at \
		VK_FAULT_MARK=$WORK/fault.mark VK_FAULT_COUNT=$WORK/fault.count \
		LD_PRELOAD=$FAULTPOINT "$KEYADM" --config "$CONF" "$@" >"$WORK/fault.out" 2>"$WORK/fault.err" &
	FAULT_PID=$!
	h_pid "$FAULT_PID"
}

# h_wait_mark: waits until faultpoint.so wrote its marker, or the process ended (60 s at most).
h_wait_mark() {
	h_n=0
	while [ ! -s "$WORK/fault.mark" ] && h_child "$FAULT_PID" &&
		[ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$FAULT_PID/status" 2>/dev/null)" != Z ] &&
		[ "$h_n" -lt 1200 ]; do
		sleep 0.05
		h_n=$((h_n + 1))
	done
	[ -s "$WORK/fault.mark" ]
}

# h_store: a store whose host machine is in it, a config using it, and two
# PAM services: viamkey-test, and viamkey-debug with the debug argument.
h_store() {
	STORE=${1:-$WORK/store/keys.db}
	CONF=$WORK/viamkey.conf
	PAMD=$WORK/pam.d
	cat >"$CONF" <<-EOF
	[store]
	path = $STORE
	[pam]
	role = operator
	fail_delay_ms = 0
	EOF
	mkdir -p "$PAMD"
	pam_service "$PAMD/viamkey-test" "$CONF"
	pam_service "$PAMD/viamkey-debug" "$CONF" debug
	ka --json init --org "Test org" --location "Test location" --machine "Test host" \
		>"$WORK/init.json" || { echo "FAIL: keyadm init"; exit 99; }
	MACHINE_ID=$(jq -r .machine.id "$WORK/init.json")
}

ka() {
	"$KEYADM" --config "$CONF" "$@"
}

# login SERVICE USER TOKEN: one full transaction; the exit status of pam_login.
login() {
	printf '%s\n' "$3" | "$PAM_LOGIN" --confdir "$PAMD" --service "$1" "$2" \
		>"$WORK/login.out" 2>&1
}

