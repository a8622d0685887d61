#!/bin/sh
# demo.sh [DIR] - sets up DIR (default ./demo, emptied first) with the
# keyadm, pam_viamkey.so and tests/pam_login of a built tree, and shows a
# real PAM login with an API key. scripts/quickstart.sh builds the tree and
# runs it.
#
# DIR gets a store with an organization, a location and a machine for this
# host, a demo key for the user who ran it (SUDO_USER, else the current
# user), a config file and a PAM service directory. keyadm records the
# machine as this host's, bound to /etc/machine-id; a host without one (a
# container, a minimal root) gets it named in DIR's config ([machine] id)
# instead, and the script says so. Then `keyadm check` and one full PAM
# transaction through libpam with the demo key, and one with a mistyped
# token, which must be refused. Nothing outside DIR changes.
#
# The tree is the one this script is in, or $VK_BUILD_DIR when the build is
# elsewhere (the tests' VPATH builds).
set -eu
cd "$(dirname "$0")/.."
top=${VK_BUILD_DIR:-$(pwd)}
demo=${1:-$(pwd)/demo}

umask 077
rm -rf "$demo"
mkdir -p "$demo/pam.d"
demo=$(cd "$demo" && pwd)
user=${SUDO_USER:-$(id -un)}
module=$top/pam_viamkey/.libs/pam_viamkey.so
keyadm="$top/keyadm/keyadm --config $demo/viamkey.conf"

cat >"$demo/viamkey.conf" <<CONF
[store]
path = $demo/keys.db
[pam]
role = operator
CONF
for stack in auth account session; do
	printf '%-8s required %s config=%s nodelay\n' "$stack" "$module" "$demo/viamkey.conf"
done >"$demo/pam.d/viamkey-demo"

# json_id FILE: the "id" of the JSON object keyadm printed to FILE.
json_id() {
	sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p' "$1"
}

# as the store reads it: 32 lowercase hex digits on one line
if grep -qx '[0-9a-f]\{32\}' /etc/machine-id 2>/dev/null; then
	$keyadm init --org demo-org --location demo-location --machine "$(hostname)"
	machine=$($keyadm --json init | sed -n 's/.*"machine":{"id":"\([0-9a-f-]*\)".*/\1/p')
else
	$keyadm init
	$keyadm --json organizations create --name demo-org >"$demo/made"
	$keyadm --json locations create --org-id "$(json_id "$demo/made")" --name demo-location \
		>"$demo/made"
	$keyadm --json machines create --location-id "$(json_id "$demo/made")" --name "$(hostname)" \
		>"$demo/made"
	machine=$(json_id "$demo/made")
	rm -f "$demo/made"
	printf '[machine]\nid = %s\n' "$machine" >>"$demo/viamkey.conf"
	echo "This host has no /etc/machine-id (a container or a minimal root?), so keyadm cannot"
	echo "record the demo machine as this host's: $demo/viamkey.conf names it instead"
	echo "([machine] id = $machine)."
fi
$keyadm machines api-key create --machine-id "$machine" --user "$user" --role operator \
	--name demo-key 2>/dev/null | tee "$demo/created"
sed -n 's/^Token: *//p' "$demo/created" >"$demo/token"
rm -f "$demo/created"

echo
echo "== keyadm check, as the module decides =="
$keyadm check --user "$user" --service viamkey-demo <"$demo/token"

echo
echo "== a real PAM login as $user through libpam (service file $demo/pam.d/viamkey-demo) =="
"$top/tests/pam_login" --confdir "$demo/pam.d" --service viamkey-demo "$user" <"$demo/token"

echo
echo "== the same login with a mistyped token is refused =="
if sed 's/x$/y/; t; s/.$/x/' "$demo/token" | "$top/tests/pam_login" --confdir "$demo/pam.d" \
	--service viamkey-demo "$user"; then
	echo "demo.sh: a wrong token was accepted" >&2
	exit 1
fi

echo
echo "Done. The demo key's token is in $demo/token (mode 0600); try:"
echo "  $top/keyadm/keyadm --config $demo/viamkey.conf keys list"
