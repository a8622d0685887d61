# system-lib.sh - shared by the system tests (test-sshd.sh, test-sudo.sh).
#
# A system test runs real programs as root inside a private mount namespace
# where /etc is a throw-away copy and /run a fresh tmpfs: test users, PAM
# stacks, sshd_config and sudoers change only there, and the host's own
# files are never written. Everything else lives in a 0700 work directory
# under the build tree, removed on exit.
#
# Source it, then call sys_begin NAME TOOL...; it re-runs the script inside
# the namespace. Exit 77 (skip) when not root or a tool is missing, except
# under VK_STRICT=1, where a system test that cannot run is a failure (exit 99).

top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
MODULE=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
KEYADM=$top_builddir/keyadm/keyadm
passed=0
failed=0

sys_skip() {
	echo "SKIP: $*"
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: a strict run (scripts/run-tests.sh) must run every system test"
		exit 99
	fi
	exit 77
}

# sys_begin NAME TOOL... : checks, enters the namespace, makes $WORK and /etc copy.
sys_begin() {
	name=$1
	shift
	[ "$(id -u)" -eq 0 ] || sys_skip "$name needs root"
	for tool in unshare mount useradd "$@"; do
		command -v "$tool" >/dev/null 2>&1 || sys_skip "$name needs $tool"
	done
	[ -f "$MODULE" ] && [ -x "$KEYADM" ] || { echo "FAIL: build first ($MODULE, $KEYADM)"; exit 99; }
	if [ -z "${VK_SYSTEM_NS:-}" ]; then
		VK_SYSTEM_NS=1 exec unshare --mount --propagation private sh "$0"
	fi
	umask 077
	WORK=$(mktemp -d "$PWD/test-$name.XXXXXX")
	trap sys_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	cp -a /etc "$WORK/etc"
	mount --bind "$WORK/etc" /etc
	mount -t tmpfs -o mode=0755 tmpfs /run
}

# Functions called on exit; a test appends its own with sys_on_exit.
cleanup_hooks=
sys_on_exit() {
	cleanup_hooks="$1; $cleanup_hooks"
}

sys_cleanup() {
	rc=$?
	eval "$cleanup_hooks"
	umount /run 2>/dev/null || :
	umount /etc 2>/dev/null || :
	rm -rf "$WORK"
	exit $rc
}

# sys_store ORG LOCATION MACHINE: a store whose host machine is MACHINE, and
# a config that uses it; sets STORE, CONF and MACHINE_ID.
sys_store() {
	STORE=$WORK/store/keys.db
	CONF=$WORK/viamkey.conf
	"$KEYADM" --db "$STORE" --json init --org "$1" --location "$2" --machine "$3" >"$WORK/init.json"
	MACHINE_ID=$(json_field machine "$WORK/init.json")
	cat >"$CONF" <<-EOF
	[store]
	path = $STORE
	[pam]
	fail_delay_ms = 0
	[services]
	sshd = operator
	sudo = owner
	EOF
}

# json_field NAME FILE: the string value of "NAME": in keyadm's one-line JSON
# (for objects, the first "id" inside it).
json_field() {
	sed -n "s/.*\"$1\":{\"id\":\"\([^\"]*\)\".*/\1/p; t; s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$2"
}

# sys_key VAR ARGS...: runs `keyadm --json ARGS`, sets VAR_ID and VAR_TOKEN.
sys_key() {
	var=$1
	shift
	"$KEYADM" --db "$STORE" --json "$@" >"$WORK/key.json" 2>>"$WORK/keyadm.err"
	eval "${var}_ID=\$(json_field id \"\$WORK/key.json\")"
	eval "${var}_TOKEN=\$(json_field key \"\$WORK/key.json\")"
	rm -f "$WORK/key.json"
}

# sys_user NAME: a Unix user with home / and /bin/sh, in the private /etc.
sys_user() {
	useradd -M -d / -s /bin/sh "$1"
}

# check NAME CONDITION...: one test case; CONDITION is a command.
check() {
	what=$1
	shift
	if "$@"; then
		echo "PASS: $what"
		passed=$((passed + 1))
	else
		echo "FAIL: $what"
		failed=$((failed + 1))
	fi
}

sys_end() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
