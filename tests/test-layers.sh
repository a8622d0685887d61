#!/bin/sh
# Every file of keyadm/ and of syncd/ depends only downward: no two of a
# program's files use each other, directly or around a circle. A file uses another when one of
# the undefined symbols of its object (nm -u) is defined in the other's (a
# function or a table). The uses must have an order, which tsort finds
# (none when there is a circle); the order is printed, top first.
. "${srcdir:-.}/check-lib.sh"
LC_ALL=C
export LC_ALL
top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
for tool in nm tsort; do
	command -v "$tool" >/dev/null 2>&1 && continue
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: test-layers.sh needs $tool; VK_STRICT=1 must not skip"
		exit 99
	fi
	echo "SKIP: needs $tool"
	exit 77
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/test-layers.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# objects DIR PROGRAM: the objects PROGRAM is linked from, as its Makefile
# in DIR names them, one a line.
objects() {
	printf 'vk-print-objects:\n\t@echo $(%s_OBJECTS)\n' "$2" >"$WORK/print.mk"
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -s --no-print-directory -C "$1" -f Makefile -f "$WORK/print.mk" vk-print-objects |
		tr ' ' '\n' | grep '\.o$'
}

# layers DIR PROGRAM: 0 when the files of PROGRAM, built in DIR, use each other in no circle.
layers() {
	l_objects=$(objects "$1" "$2") || return 1
	: >"$WORK/defined"
	: >"$WORK/uses"
	for o in $l_objects; do
		if [ ! -f "$1/$o" ]; then
			echo "$1/$o is missing: build first"
			return 1
		fi
		f=$(basename "$o" .o)
		f=${f#"$2"-}
		nm --defined-only "$1/$o" | awk -v f="$f" '$2 ~ /^[TDRB]$/ { print $3, f }' >>"$WORK/defined"
		nm -u "$1/$o" | awk -v f="$f" '{ print $NF, f }' >>"$WORK/used"
		echo "$f $f" >>"$WORK/uses" # so that tsort lists a file nothing uses
	done
	sort -o "$WORK/defined" "$WORK/defined"
	sort "$WORK/used" | join -o 1.2,2.2 - "$WORK/defined" | awk '$1 != $2' | sort -u >"$WORK/edges"
	sed 's/^/  uses: /' "$WORK/edges"
	cat "$WORK/edges" >>"$WORK/uses"
	if ! tsort "$WORK/uses" >"$WORK/order" 2>"$WORK/loop"; then
		cat "$WORK/loop"
		return 1
	fi
	echo "  order, top first: $(tr '\n' ' ' <"$WORK/order")"
}

check "every file of keyadm/ depends only downward" layers "$top_builddir/keyadm" keyadm
check "every file of syncd/ depends only downward" layers "$top_builddir/syncd" viamkey_syncd
check_end
