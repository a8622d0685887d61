#!/bin/sh
# build-packages.sh - the Debian packages libpam-viamkey and viamkey, built
# with `dpkg-buildpackage -us -uc -b` from a copy of the source (by
# scripts/copy-source.sh: in a git work tree, the files git tracks, as they
# are in the working tree, uncommitted changes included; in a tree without
# git, every file but demo/ and packages/), then checked with lintian.
# Installs the build packages that are missing.
#
# The .deb files, with the .changes, .buildinfo and lintian's report
# (lintian.txt), land in ./packages (or $VK_PACKAGES_DIR). Fails when the
# build fails, or when lintian reports an error or a warning that
# debian/*lintian-overrides does not justify. Install with
#   sudo apt-get install ./packages/*.deb
set -eu
cd "$(dirname "$0")/.."
top=$(pwd)
. scripts/deps.sh

install_packages $BUILD_PACKAGES $PACKAGE_PACKAGES
out=${VK_PACKAGES_DIR:-$top/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out"/lintian.txt "$out"/build.log

# A clean copy of the source: no build products of the developer's tree.
src=$(mktemp -d "$out/src.XXXXXX")
trap 'rm -rf "$src"' EXIT
mkdir "$src/viamkey"
scripts/copy-source.sh "$src/viamkey"

echo "== dpkg-buildpackage -us -uc -b (log: $out/build.log)"
if ! (cd "$src/viamkey" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -n 40 "$out/build.log"
	echo "build-packages.sh: the build failed; see $out/build.log" >&2
	exit 1
fi
mv "$src"/*.deb "$src"/*.changes "$src"/*.buildinfo "$out"/
ls -l "$out"/*.deb

echo "== lintian"
# its temporary files in the copy, which goes at exit: lintian leaves some behind
mkdir "$src/tmp"
TMPDIR=$src/tmp lintian --info --display-info --show-overrides "$out"/*.changes \
	>"$out/lintian.txt" 2>&1 || :
errors=$(grep -c '^E: ' "$out/lintian.txt" || :)
warnings=$(grep -c '^W: ' "$out/lintian.txt" || :)
overridden=$(grep -c '^O: ' "$out/lintian.txt" || :)
grep -E '^(E|W|O): ' "$out/lintian.txt" || :
echo "lintian: $errors errors, $warnings warnings, $overridden overridden (report: $out/lintian.txt)"
[ "$errors" -eq 0 ] && [ "$warnings" -eq 0 ]
