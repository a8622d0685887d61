#!/bin/sh
# copy-source.sh DIR - copies this source tree into DIR, an empty directory,
# without the tree's build products where it can tell them apart;
# scripts/build-packages.sh builds the Debian packages from such a copy.
#
# In a git work tree, with git installed: the files git tracks and the new
# ones it does not ignore, as they are in the working tree, less those
# deleted there. Otherwise (a tree from a tarball, a host without git):
# every file but .git, demo/ (the quick start's scratch store and token),
# packages/ (build-packages.sh's output) and DIR itself, wherever DIR is in
# the tree, so that the copy never contains itself.
set -eu
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: copy-source.sh DIR (an existing, empty directory)" >&2
	exit 2
fi
dest=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
top=$(pwd)
if [ -n "$(ls -A "$dest")" ]; then
	echo "copy-source.sh: $dest is not empty" >&2
	exit 1
fi

if command -v git >/dev/null 2>&1 &&
	[ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$top" ]; then
	git ls-files --cached --others --exclude-standard
else
	case $dest in
	"$top"/*) inside=./${dest#"$top"/} ;;
	*) inside=./.git ;;
	esac
	find . \( -path ./.git -o -path ./demo -o -path ./packages -o -path "$inside" \) -prune \
		-o ! -type d -print
fi | while IFS= read -r f; do
	if [ -e "$f" ] || [ -L "$f" ]; then
		cp -P --parents -t "$dest" "$f" || exit 1
	fi
done || {
	echo "copy-source.sh: copying the source into $dest failed" >&2
	exit 1
}
