#!/bin/sh
# Heartbeats are ordered by their counter and dated by the authority's
# signed time (SPEC §8, rule 9), with a real three-node bus (fleet-lib.sh)
# and the authority's daemon under libfaketime, whose offset the test moves:
#  5. the authority's clock a day ahead for three seconds: M1 (max_staleness
#     6s) refuses the heartbeats signed then, and logs it; once the clock is
#     back the next heartbeats count, so that 8 s later M1 still lets a key
#     in, its heartbeat time is the real one, and a change made then is
#     acknowledged everywhere (keyadm sync wait 0);
#  6. the authority's daemon stopped, and M2 re-imaged 8 s later with
#     max_staleness 6s: the only heartbeat it can read is in the bucket,
#     signed 8 s before; it is not fresh, so M2 refuses a valid key as
#     stale (PAM_AUTHINFO_UNAVAIL, keyadm check says stale) until the
#     authority's daemon is back.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-clock
FAKETIME_LIB=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1)
[ -n "$FAKETIME_LIB" ] || f_skip "fleet-clock needs libfaketime (Debian's faketime)"

f_tree
f_bus_start
f_machines $MACHINES
f_servers
f_staleness M1 6s
# the authority's clock: an offset libfaketime reads again at every call
echo "+0" >"$WORK/clock"
f_syncd_start authority LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$WORK/clock" \
	FAKETIME_NO_CACHE=1 FAKETIME_DONT_FAKE_MONOTONIC=1 ASAN_OPTIONS=verify_asan_link_order=0
for m in $MACHINES; do f_syncd_start "$m"; done
ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name everywhere
[ -n "$K_TOKEN" ] || { echo "FAIL: cannot create the key: $(cat "$WORK/ka_key.err")"; exit 99; }
check "sync wait returns 0 with the key in place" f_sync_wait 60
check "M1 (max_staleness 6s) lets the key in" f_check M1 vkt-ann "$K_TOKEN"

# age M: seconds between now and M's last heartbeat, by the authority's signed time
age() {
	echo $(($(date +%s) - $(date -d "$(km "$1" --json sync status | jq -r .heartbeat_at)" +%s)))
}

# ---- 5: a clock set a day ahead for three seconds -------------------------------------
f_mark "the authority's clock a day ahead"
echo "+1d" >"$WORK/clock"
sleep 3
echo "+0" >"$WORK/clock"
f_mark "the authority's clock back"
refused_logged() { grep -q "refused a heartbeat signed more than" "$WORK/M1/syncd.log"; }
check "5: M1 refused the heartbeats signed a day ahead, and logged it" f_until 10 refused_logged
sleep 8
check "5: 8 s after the clock came back M1 still lets the key in (heartbeats count again)" \
	f_check M1 vkt-ann "$K_TOKEN"
a=$(age M1)
check "5: M1's last heartbeat is dated by the real clock ($a s ago)" \
	eval 'test "$a" -ge 0 && test "$a" -le 5'
ka_key K2 organizations api-key create --org-id "$ORG" --user vkt-two --name after-the-clock
check "5: a change made then is acknowledged by every machine (sync wait 0)" f_sync_wait 30
check "5: and works on M1" f_check M1 vkt-two "$K2_TOKEN"

# ---- 6: a heartbeat read late is not fresh --------------------------------------------------
f_syncd_stop authority
f_mark "the authority's daemon stopped"
sleep 8
f_syncd_stop M2
rm -rf "$WORK/M2/store"
f_staleness M2 6s
f_mark "M2 re-imaged, the authority silent for 8 s"
f_syncd_start M2
has_key() { [ "$(sqlite3 "$WORK/M2/store/keys.db" "SELECT count(*) FROM keys WHERE id = '$K_ID'" 2>/dev/null)" = 1 ]; }
check "6: re-imaged M2 read the key from the bucket (within 30 s)" f_until 30 has_key
a=$(age M2)
check "6: the heartbeat M2 holds was signed before the authority stopped ($a s ago)" test "$a" -ge 7
stale=0
f_check M2 vkt-ann "$K_TOKEN" || stale=$?
check "6: keyadm check on M2 exits 1 and says stale" \
	eval 'test "$stale" -eq 1 && grep -q "^deny: stale" "$WORK/check.out"'
check "6: a PAM login through M2 fails with PAM_AUTHINFO_UNAVAIL" \
	eval '! f_login M2 vkt-ann "$K_TOKEN" && grep -q "^authenticate .*cannot retrieve authentication info" "$WORK/login.out"'
f_syncd_start authority
check "6: the authority's daemon back, M2 lets the key in (within 30 s)" \
	f_wait_check M2 vkt-ann "$K_TOKEN" 0
check "every replica holds exactly what covers it" f_converged $MACHINES
check_end
