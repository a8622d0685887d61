#!/bin/sh
# scripts/copy-source.sh, the copy of the source that
# scripts/build-packages.sh builds the Debian packages from, into a
# directory under the tree's packages/ as build-packages.sh makes it:
#   - a tree without git metadata (from a tarball), itself inside another
#     git work tree: every file, but not .git, demo/, packages/ or the copy;
#   - a git work tree on a host without git (git hidden from PATH): the same;
#   - a git work tree with git: the files git tracks and the new ones it
#     does not ignore, less those deleted.
# Needs git for the last case: skips (77) without it, except under
# VK_STRICT=1, where it fails.
. "${srcdir:-.}/check-lib.sh"
script=${srcdir:-.}/../scripts/copy-source.sh
if ! command -v git >/dev/null 2>&1; then
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: test-copy-source.sh needs git; VK_STRICT=1 must not skip"
		exit 99
	fi
	echo "SKIP: needs git"
	exit 77
fi
[ -f "$script" ] || { echo "FAIL: $script is missing"; exit 99; }
umask 077
WORK=$(mktemp -d "$PWD/test-copy-source.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# A small source tree, with what a developer's tree also holds.
tree=$WORK/tree
mkdir -p "$tree/scripts" "$tree/common" "$tree/debian" "$tree/demo" "$tree/packages"
cp "$script" "$tree/scripts/"
echo readme >"$tree/README.md"
echo 'int x;' >"$tree/common/a.c"
echo object >"$tree/common/a.o"
echo 'Source: viamkey' >"$tree/debian/control"
ln -s a.c "$tree/common/link.c"
printf '*.o\n/demo/\n/packages/\n' >"$tree/.gitignore"
echo vk_secret >"$tree/demo/token"
echo old >"$tree/packages/old.deb"

# copy NAME [PATH]: runs the tree's copy-source.sh (with PATH) into a new
# packages/src.NAME; its file list in $WORK/NAME.list; status returned.
copy() {
	mkdir "$tree/packages/src.$1"
	if [ $# -gt 1 ]; then
		PATH=$2 sh "$tree/scripts/copy-source.sh" "$tree/packages/src.$1" >"$WORK/$1.out" 2>&1
	else
		sh "$tree/scripts/copy-source.sh" "$tree/packages/src.$1" >"$WORK/$1.out" 2>&1
	fi
	c_rc=$?
	(cd "$tree/packages/src.$1" && find . ! -type d | sort) >"$WORK/$1.list"
	[ "$c_rc" -eq 0 ] || cat "$WORK/$1.out"
	return "$c_rc"
}

# has NAME FILE...: the copy NAME holds exactly these files.
has() {
	h_name=$1
	shift
	printf './%s\n' "$@" | sort >"$WORK/want"
	cmp -s "$WORK/want" "$WORK/$h_name.list" && return 0
	diff "$WORK/want" "$WORK/$h_name.list"
	return 1
}

all="README.md common/a.c common/a.o common/link.c debian/control scripts/copy-source.sh .gitignore"
check "a tree without git metadata is copied" copy tarball
# shellcheck disable=SC2086
check "... every file, not demo/, packages/ or the copy itself" has tarball $all
check "... a symbolic link as a link" [ -L "$tree/packages/src.tarball/common/link.c" ]

# The same tree as a git work tree: one commit, then a tracked file deleted
# and a new one made.
git -C "$tree" init -q
git -C "$tree" add -A
git -C "$tree" -c user.name=t -c user.email=t@invalid commit -q -m tree
rm "$tree/debian/control"
echo new >"$tree/common/new.c"
all="README.md common/a.c common/a.o common/link.c common/new.c scripts/copy-source.sh .gitignore"
rm -rf "$tree/packages"/src.*

# a PATH with what the script runs, except git
mkdir "$WORK/bin"
for tool in sh cp find ls mkdir dirname; do
	ln -s "$(command -v "$tool")" "$WORK/bin/$tool"
done
check "a git work tree on a host without git is copied" copy nogit "$WORK/bin"
# shellcheck disable=SC2086
check "... every file but .git, demo/, packages/ and the copy" has nogit $all

check "a git work tree with git is copied" copy git
check "... the files git tracks and new ones, not those ignored or deleted" has git \
	README.md common/a.c common/link.c common/new.c scripts/copy-source.sh .gitignore

mkdir "$WORK/full"
echo x >"$WORK/full/x"
check "a directory that is not empty is refused" \
	sh -c '! sh "$1" "$2" 2>/dev/null' sh "$tree/scripts/copy-source.sh" "$WORK/full"
check_end
