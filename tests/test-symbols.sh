#!/bin/sh
# The built module's dynamic symbol table defines the pam_sm_* entry points
# and nothing else: common/ stays private to it. And it loads SQLite and
# libsodium as shared libraries (NEEDED entries), so that a security update
# of either reaches the module without a rebuild.
. "${srcdir:-.}/check-lib.sh"
top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
so=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
for tool in nm readelf; do
	command -v "$tool" >/dev/null 2>&1 && continue
	if [ "${VK_STRICT:-}" = 1 ]; then
		echo "FAIL: test-symbols.sh needs $tool (binutils); VK_STRICT=1 must not skip"
		exit 99
	fi
	echo "SKIP: needs $tool (binutils)"
	exit 77
done
[ -f "$so" ] || { echo "FAIL: $so not built"; exit 99; }

defined=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sort)
expected='pam_sm_acct_mgmt
pam_sm_authenticate
pam_sm_chauthtok
pam_sm_close_session
pam_sm_open_session
pam_sm_setcred'
[ "$defined" = "$expected" ] || printf 'exported:\n%s\n' "$defined"
check "only pam_sm_* exported" [ "$defined" = "$expected" ]

needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
echo "NEEDED: $(echo "$needed" | tr '\n' ' ')"
needs() { echo "$needed" | grep -q "^$1\.so\."; }
check "libsqlite3.so is a shared library the module loads" needs libsqlite3
check "libsodium.so is a shared library the module loads" needs libsodium
check_end
