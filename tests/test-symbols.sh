#!/bin/sh
# The built module's dynamic symbol table defines the pam_sm_* entry points
# and nothing else: common/ stays private to it.
top_builddir=${abs_top_builddir:-$(cd .. && pwd)}
so=$top_builddir/pam_viamkey/.libs/pam_viamkey.so
command -v nm >/dev/null 2>&1 || { echo "SKIP: needs nm"; exit 77; }
[ -f "$so" ] || { echo "FAIL: $so not built"; exit 99; }

defined=$(nm -D --defined-only "$so" | awk '{ print $3 }' | sort)
expected='pam_sm_acct_mgmt
pam_sm_authenticate
pam_sm_chauthtok
pam_sm_close_session
pam_sm_open_session
pam_sm_setcred'
if [ "$defined" = "$expected" ]; then
	echo "PASS: only pam_sm_* exported"
	echo "1 passed, 0 failed"
else
	echo "FAIL: exported symbols differ:"
	echo "$defined"
	echo "0 passed, 1 failed"
	exit 1
fi
