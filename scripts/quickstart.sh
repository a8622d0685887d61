#!/bin/sh
# quickstart.sh - from a fresh Debian 12 checkout to a real PAM login with
# an API key.
#
# Installs the build dependencies that are missing, builds viamkey, and sets
# up ./demo: a store with this host's organization, location and machine, a
# demo key, a config file and a PAM service directory. It then runs
# `keyadm check` and one full PAM transaction through libpam with the demo
# key. Nothing outside ./demo changes but the packages; nothing is
# installed into the system (see README.md, "Install").
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
. scripts/deps.sh

install_packages $BUILD_PACKAGES
build_tree

umask 077
demo=$top/demo
rm -rf "$demo"
mkdir -p "$demo/pam.d"
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

$keyadm init --org demo-org --location demo-location --machine "$(hostname)"
machine=$($keyadm --json init | sed -n 's/.*"machine":{"id":"\([0-9a-f-]*\)".*/\1/p')
$keyadm machines api-key create --machine-id "$machine" --user "$user" --role operator \
	--name demo-key 2>/dev/null | tee "$demo/created"
sed -n 's/^Token: *//p' "$demo/created" >"$demo/token"
rm -f "$demo/created"

echo
echo "== keyadm check, as the module decides =="
$keyadm check --user "$user" --service viamkey-demo <"$demo/token"

echo
echo "== a real PAM login as $user through libpam (service file $demo/pam.d/viamkey-demo) =="
tests/pam_login --confdir "$demo/pam.d" --service viamkey-demo "$user" <"$demo/token"

echo
echo "== the same login with a mistyped token is refused =="
if sed 's/.$/x/' "$demo/token" | tests/pam_login --confdir "$demo/pam.d" \
	--service viamkey-demo "$user"; then
	echo "quickstart: a wrong token was accepted" >&2
	exit 1
fi

echo
echo "Done. The demo key's token is in $demo/token (mode 0600); try:"
echo "  keyadm/keyadm --config $demo/viamkey.conf keys list"
