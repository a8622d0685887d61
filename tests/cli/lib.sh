# lib.sh - helpers for keyadm's known-answer tests; sourced by tests/cli/*.sh.
#
# Every script gets a fresh scratch directory $T with umask 077, a store path
# $DB inside it that does not exist yet, and VIAMKEY_CONFIG pointing at a
# file that does not exist, so no real config or store is ever touched.
#
#   ka ARGS...            run keyadm --db "$DB" ARGS; sets RC, OUT, ERR
#   ka_raw ARGS...        the same without --db
#   ka_in TEXT ARGS...    the same as ka, with TEXT and a newline on stdin
#   expect DESC CMD...    assert that CMD succeeds
#   expect_rc N DESC      assert the last exit status
#   expect_ok DESC ARGS   run ka and assert exit 0
#   refused N DESC ARGS   run ka, assert exit N, one "keyadm: " error and an
#                         unchanged store (content, mode and owner)
#   unchanged N DESC ARGS run ka, assert exit N and an unchanged store
#   expect_json DESC FILTER [JQ ARGS]   assert jq -e FILTER on OUT (one document)
#
# A script calls `finish` at the end; it exits 0, or 1 after any failed check
# or when no check ran.
# Missing tools skip the script (77), except under VK_STRICT=1, where they fail it.
# shellcheck disable=SC2034 # variables set here are for the sourcing scripts

set -eu

KEYADM=${KEYADM:-$PWD/../keyadm/keyadm}
CHECKS=0
FAILURES=0
SCRIPT=$(basename "$0" .sh)

need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "$SCRIPT: $1 is missing (install the Debian package $2); a strict run must not skip" >&2
		exit 1
	fi
	echo "$SCRIPT: SKIP: $1 is missing (install the Debian package $2)"
	exit 77
}

need jq jq
need sqlite3 sqlite3
need sha256sum coreutils
if [ ! -x "$KEYADM" ]; then
	echo "$SCRIPT: keyadm not found at $KEYADM (set KEYADM)" >&2
	exit 1
fi

umask 077
# no test writes big files; a runaway one must not fill the disk
ulimit -f 20000 2>/dev/null || true
T=$(mktemp -d "${TMPDIR:-/tmp}/keyadm-cli.XXXXXX")
cleanup() {
	chmod -R u+rwx "$T" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
DB=$T/store/keys.db
VIAMKEY_CONFIG=$T/absent.conf
export VIAMKEY_CONFIG
LC_ALL=C.UTF-8
export LC_ALL
RC=0
OUT=
ERR=
LAST=

# ---- running keyadm -------------------------------------------------------

run() {
	RC=0
	LAST="$*"
	"$@" >"$T/out" 2>"$T/err" || RC=$?
	OUT=$(cat "$T/out")
	ERR=$(cat "$T/err")
}

ka() {
	run "$KEYADM" --db "$DB" "$@" </dev/null
}

ka_raw() {
	run "$KEYADM" "$@" </dev/null
}

ka_in() {
	_in=$1
	shift
	printf '%s\n' "$_in" >"$T/in"
	run "$KEYADM" --db "$DB" "$@" <"$T/in"
}

# ---- reporting ------------------------------------------------------------

pass() {
	CHECKS=$((CHECKS + 1))
	printf 'ok %s - %s\n' "$CHECKS" "$1"
}

fail() {
	CHECKS=$((CHECKS + 1))
	FAILURES=$((FAILURES + 1))
	printf 'not ok %s - %s\n' "$CHECKS" "$1"
	shift
	for _line in "$@"; do
		printf '#   %s\n' "$_line"
	done
	printf '#   command: %s\n#   exit: %s\n' "$LAST" "$RC"
	printf '#   stdout: %s\n' "$(printf '%s' "$OUT" | head -c 2000)"
	printf '#   stderr: %s\n' "$(printf '%s' "$ERR" | head -c 2000)"
}

finish() {
	echo "# $SCRIPT: $CHECKS checks, $FAILURES failed"
	if [ "$CHECKS" -eq 0 ]; then
		echo "$SCRIPT: no check ran" >&2
		exit 1
	fi
	[ "$FAILURES" -eq 0 ] || exit 1
	exit 0
}

# can_give_away WHAT: true as root with a user "nobody" to give files to;
# otherwise says that WHAT is not checked, which under VK_STRICT=1 is a
# failed check.
can_give_away() {
	[ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1 && return 0
	if [ "${VK_STRICT:-}" = 1 ]; then
		fail "$1: needs root and a user nobody; a strict run must check it"
	else
		echo "# not root, or no user nobody: $1 is not checked"
	fi
	return 1
}

# expect DESC COMMAND...: COMMAND (a test, cmp, grep ...) must succeed.
expect() {
	_desc=$1
	shift
	if "$@"; then
		pass "$_desc"
	else
		fail "$_desc" "false: $*"
	fi
}

# The last command must have exited N.
expect_rc() {
	if [ "$RC" -eq "$1" ]; then
		pass "$2"
	else
		fail "$2" "expected exit $1"
	fi
}

expect_ok() {
	_desc=$1
	shift
	ka "$@"
	expect_rc 0 "$_desc"
}

# Like expect_ok, but later steps need the result: stop at once on failure.
must() {
	_desc=$1
	shift
	ka "$@"
	if [ "$RC" -ne 0 ]; then
		fail "$_desc" "expected exit 0; later checks depend on it"
		finish
	fi
	pass "$_desc"
}

expect_out() {
	if [ "$OUT" = "$2" ]; then
		pass "$1"
	else
		fail "$1" "expected stdout: $2"
	fi
}

# Extended regular expressions over stdout / stderr.
expect_out_re() {
	if printf '%s\n' "$OUT" | grep -Eq -- "$2"; then
		pass "$1"
	else
		fail "$1" "stdout does not match: $2"
	fi
}

expect_err_re() {
	if printf '%s\n' "$ERR" | grep -Eq -- "$2"; then
		pass "$1"
	else
		fail "$1" "stderr does not match: $2"
	fi
}

expect_out_lacks() {
	if printf '%s\n' "$OUT" | grep -Fq -- "$2"; then
		fail "$1" "stdout contains: $2"
	else
		pass "$1"
	fi
}

# How many times the fixed string $2 occurs in $1.
count_of() {
	printf '%s\n' "$1" | grep -oF -- "$2" | wc -l | tr -d ' '
}

JQ_DEFS='def ts: type == "string" and test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$");
def keys_of(o): o | keys_unsorted | sort;'

# stdout is exactly one JSON document and FILTER holds for it.
expect_json() {
	_desc=$1
	_filter=$2
	shift 2
	if printf '%s' "$OUT" | jq -s -e "$@" "$JQ_DEFS length == 1 and (.[0] | $_filter)" >/dev/null 2>&1; then
		pass "$_desc"
	elif [ "$(printf '%s' "$OUT" | jq -s length 2>/dev/null)" != 1 ]; then
		fail "$_desc" "stdout is not exactly one JSON document"
	else
		fail "$_desc" "jq filter is false: $_filter"
	fi
}

# Prints a jq expression's value from stdout.
jqr() {
	printf '%s' "$OUT" | jq -r "$@"
}

# ---- store snapshots --------------------------------------------------------

# Content, mode and owner of the store and its directory, and what else is there.
snapshot() {
	_dir=$(dirname "$DB")
	if [ -d "$_dir" ]; then
		# SQLite's WAL sidecars (-wal, -shm) come and go with connections, the
		# sqlite3 calls here included; the content is compared through .dump
		(cd "$_dir" && find . -maxdepth 1 ! -name '*-wal' ! -name '*-shm' -exec stat -c '%n %a %u %g %F' {} + | sort) 2>&1 || true
		sha256sum "$DB" 2>/dev/null || echo "no store file"
		sqlite3 -readonly "$DB" .dump 2>/dev/null || true
	else
		echo "no store directory"
	fi
}

# refused N DESC ARGS...: the command fails with exit N, says why on stderr
# ("keyadm: " first; for 1 exactly one line), prints nothing on stdout,
# and leaves the store exactly as it was.
refused() {
	_want=$1
	_desc=$2
	shift 2
	snapshot >"$T/before"
	ka "$@"
	expect_refusal "$_want" "$_desc"
}

# The same for a command run some other way (ka_raw, ka_in) after `snapshot >"$T/before"`.
expect_refusal() {
	snapshot >"$T/after"
	_why=
	if [ "$RC" -ne "$1" ]; then
		_why="expected exit $1"
	elif [ "${ERR#keyadm: }" = "$ERR" ]; then
		_why="stderr does not start with 'keyadm: '"
	elif [ "$1" -eq 1 ] && [ "$(printf '%s\n' "$ERR" | wc -l)" -ne 1 ]; then
		_why="stderr is not one line"
	elif [ -n "$OUT" ]; then
		_why="stdout is not empty"
	elif ! cmp -s "$T/before" "$T/after"; then
		_why="the store changed: $(diff "$T/before" "$T/after" | head -20 | tr '\n' '|')"
	fi
	if [ -n "$_why" ]; then
		fail "$2" "$_why"
	else
		pass "$2"
	fi
}

# unchanged N DESC ARGS...: the command exits N and leaves the store as it was.
unchanged() {
	_want=$1
	_desc=$2
	shift 2
	snapshot >"$T/before"
	ka "$@"
	snapshot >"$T/after"
	if [ "$RC" -ne "$_want" ]; then
		fail "$_desc" "expected exit $_want"
	elif ! cmp -s "$T/before" "$T/after"; then
		fail "$_desc" "the store changed: $(diff "$T/before" "$T/after" | head -20 | tr '\n' '|')"
	else
		pass "$_desc"
	fi
}

# ---- fixtures ---------------------------------------------------------------

# A store with this host's tree: $ORG > $LOC > $MACH (the host's machine).
setup_store() {
	must "init with a hierarchy" --json init --org Acme --location HQ --machine host
	ORG=$(jqr .machine.org_id)
	LOC=$(jqr .machine.location_id)
	MACH=$(jqr .machine.id)
}

# mkkey NOUN RESOURCE-ID [OPTIONS]: creates a key; sets KEY_ID and TOKEN.
mkkey() {
	_noun=$1
	_rid=$2
	shift 2
	case $_noun in
	organizations) _opt=--org-id ;;
	locations) _opt=--location-id ;;
	*) _opt=--machine-id ;;
	esac
	ka --json "$_noun" api-key create "$_opt" "$_rid" "$@"
	if [ "$RC" -ne 0 ]; then
		fail "create a key on $_noun $_rid $*" "expected exit 0; later checks depend on it"
		finish
	fi
	KEY_ID=$(jqr .id)
	TOKEN=$(jqr .key)
}

# The secret part of a token (and its checksum): everything after "vk_<key part>_".
secret_of() {
	printf '%s' "${1#vk_*_}"
}

# check_decision DESC TOKEN EXIT DECISION REASON [check OPTIONS]
check_decision() {
	_desc=$1
	_tok=$2
	_exit=$3
	_decision=$4
	_reason=$5
	shift 5
	ka_in "$_tok" --json check "$@"
	if [ "$RC" -ne "$_exit" ]; then
		fail "$_desc" "expected exit $_exit"
		return 0
	fi
	expect_json "$_desc" '.decision == $d and .reason == $r' \
		--arg d "$_decision" --arg r "$_reason"
}

# A valid-looking UUIDv4 that names nothing in the store.
NOSUCH=00000000-0000-4000-8000-000000000000
