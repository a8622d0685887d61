#!/bin/sh
# quickstart.sh - from a fresh Debian 12 checkout to a real PAM login with
# an API key.
#
# Installs the build dependencies that are missing, builds viamkey, and sets
# up ./demo with scripts/demo.sh: a store with this host's organization,
# location and machine, a demo key, a config file and a PAM service
# directory. A host without /etc/machine-id (a container, a minimal root)
# gets the demo machine named in demo/viamkey.conf, and is told so. It then
# runs `keyadm check` and one full PAM transaction through libpam with the
# demo key. Nothing outside ./demo changes but the packages; nothing is
# installed into the system (see README.md, "Install").
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh

install_packages $BUILD_PACKAGES
build_tree
exec scripts/demo.sh "$(pwd)/demo"
