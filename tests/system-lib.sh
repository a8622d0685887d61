# system-lib.sh - shared by the system tests (test-sshd.sh, test-sudo.sh).
#
# A system test runs real programs as root inside a private mount namespace
# where /etc is a throw-away copy and /run and /var/log fresh tmpfs: test
# users, PAM stacks, sshd_config, sudoers and the login records sshd keeps
# (btmp, wtmp, lastlog) change only there, and the host's own files are
# never written (the test fails when the host's records gain a test user's login).
# Everything else lives in a 0700 work directory under the build tree,
# removed on exit.
#
# Source it, then call sys_begin NAME TOOL...; it re-runs the script inside
# the namespace. Exit 77 (skip) when not root or a tool is missing, except
# under VK_STRICT=1, where a system test that cannot run is a failure (exit 99).
#
# A test of installed packages (test-packages.sh) sets SYS_OVERLAY to the
# directories dpkg writes, e.g. "/etc /usr /var", before sys_begin: each
# then gets a writable overlay whose changes live in a tmpfs under $WORK and
# end with the namespace, instead of the /etc copy, so that apt-get and dpkg
# install for real while the host's files stay as they are. Such a test
# needs no build tree.

top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
MODULE=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
KEYADM=$top_builddir/keyadm/keyadm
# shellcheck source=tests/check-lib.sh
. "${srcdir:-.}/check-lib.sh"

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
	if [ -z "${SYS_OVERLAY:-}" ]; then
		[ -f "$MODULE" ] && [ -x "$KEYADM" ] ||
			{ echo "FAIL: build first ($MODULE, $KEYADM)"; exit 99; }
	fi
	if [ -z "${VK_SYSTEM_NS:-}" ]; then
		VK_SYSTEM_NS=1 exec unshare --mount --propagation private sh "$0"
	fi
	umask 077
	WORK=$(mktemp -d "$PWD/test-$name.XXXXXX")
	trap sys_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	if [ -n "${SYS_OVERLAY:-}" ]; then
		mkdir "$WORK/overlay"
		mount -t tmpfs -o mode=0700 tmpfs "$WORK/overlay"
		for dir in $SYS_OVERLAY; do
			mkdir -p "$WORK/overlay/upper$dir" "$WORK/overlay/work$dir"
			# the overlay's top takes the upper directory's owner and mode
			chown --reference="$dir" "$WORK/overlay/upper$dir"
			chmod --reference="$dir" "$WORK/overlay/upper$dir"
			mount -t overlay overlay -o "lowerdir=$dir,upperdir=$WORK/overlay/upper$dir" \
				-o "workdir=$WORK/overlay/work$dir" "$dir" ||
				{ echo "FAIL: cannot overlay $dir"; exit 99; }
		done
	else
		cp -a /etc "$WORK/etc"
		mount --bind "$WORK/etc" /etc
		sys_logs=$(sys_log_state)
		mount -t tmpfs -o mode=0755 tmpfs /var/log
	fi
	mount -t tmpfs -o mode=0755 tmpfs /run
}

# How many of the host's login records (btmp, wtmp) name a test user (vkt-*);
# lastlog is indexed by UID and only grows when written.
sys_log_state() {
	for f in /var/log/btmp /var/log/wtmp; do
		[ -f "$f" ] && utmpdump "$f" 2>/dev/null | grep -c '\[vkt-' || :
	done
	stat -c '%s' /var/log/lastlog 2>/dev/null || :
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
	if [ -n "${sys_logs:-}" ]; then
		if ! umount /var/log; then
			echo "FAIL: cannot unmount the test's /var/log"
			rc=1
		elif [ "$(sys_log_state)" != "$sys_logs" ]; then
			echo "FAIL: the host's login records gained a test user's: $(sys_log_state | tr '\n' ' ')"
			rc=1
		fi
	fi
	for dir in ${SYS_OVERLAY:-/etc}; do
		umount -l "$dir" 2>/dev/null || :
	done
	[ -d "$WORK/overlay" ] && umount -l "$WORK/overlay" 2>/dev/null
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


# start_sshd METHODS: sshd on a free port, tried until it listens, with
# keyboard-interactive or password authentication as pam_viamkey(8) shows.
# Needs $WORK/host_key and /run/sshd; sets PORT and SSHD_PID.
start_sshd() {
	SSHD=$(command -v sshd) # sshd re-executes itself and needs an absolute path
	for try in 1 2 3 4 5; do
		PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
		ss -ltnH "sport = :$PORT" | grep -q . && continue
		cat >"$WORK/sshd_config" <<-EOF
		ListenAddress 127.0.0.1
		Port $PORT
		HostKey $WORK/host_key
		PidFile $WORK/sshd.pid
		UsePAM yes
		KbdInteractiveAuthentication $([ "$1" = keyboard-interactive ] && echo yes || echo no)
		PasswordAuthentication $([ "$1" = password ] && echo yes || echo no)
		PubkeyAuthentication no
		AuthenticationMethods $1
		PermitRootLogin no
		UseDNS no
		LogLevel VERBOSE
		EOF
		"$SSHD" -D -f "$WORK/sshd_config" -E "$WORK/sshd.log" &
		SSHD_PID=$!
		for wait in 1 2 3 4 5 6 7 8 9 10; do
			ss -ltnH "sport = :$PORT" | grep -q . && return 0
			kill -0 "$SSHD_PID" 2>/dev/null || break
			sleep 0.5
		done
		kill "$SSHD_PID" 2>/dev/null
		wait "$SSHD_PID" 2>/dev/null
	done
	echo "FAIL: sshd did not start"
	cat "$WORK/sshd.log"
	exit 1
}

stop_sshd() {
	kill "$SSHD_PID" 2>/dev/null && wait "$SSHD_PID" 2>/dev/null
	:
}

# login USER SECRET COMMAND: one login with $METHOD whose every prompt gets
# SECRET; a second prompt makes sshpass give up (exit 5). Prints what
# COMMAND printed and fails when the login did.
login() {
	SSHPASS=$2 timeout 60 sshpass -e -P ': ' ssh -F /dev/null -p "$PORT" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
		-o PreferredAuthentications="$METHOD" -o NumberOfPasswordPrompts=1 \
		-o ConnectTimeout=20 "$1@127.0.0.1" "$3" 2>>"$WORK/ssh.err"
}

# refused USER SECRET: the login fails and runs nothing.
refused() {
	out=$(login "$1" "$2" 'echo logged-in') && return 1
	[ -z "$out" ]
}

