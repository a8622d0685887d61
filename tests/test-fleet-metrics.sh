#!/bin/sh
# The daemons' metrics (SPEC §11), on a real three-node bus (fleet-lib.sh):
# with [sync] metrics_file set, the authority and each machine write
# Prometheus's text format there, whole (no .tmp left, mode 0644), and the
# figures are the fleet's: the authority's revision, nothing unpublished and
# no machine behind once sync wait returned 0, changes published; a
# machine's revision equal to the authority's, records applied and timed,
# a fresh heartbeat. A machine's daemon stopped shows as one machine
# behind, and its return as none. A metrics file that cannot be written is
# said once in the log, and the daemon goes on syncing.
# shellcheck disable=SC2016,SC2034,SC2086 # conditions are eval'd; lists of machines split on purpose
# shellcheck source=tests/fleet-lib.sh
. "${srcdir:-.}/fleet-lib.sh"
f_begin fleet-metrics

f_tree
f_bus_start
f_machines $MACHINES
f_servers
# metrics for the authority, M1 and M2; M3's goes into a directory that is not there
echo "metrics_file = $WORK/authority/metrics.prom" >>"$WORK/authority/viamkey.conf"
for m in M1 M2; do
	sed -i "/^\[sync\]/a metrics_file = $WORK/$m/metrics.prom" "$WORK/$m/viamkey.conf"
done
sed -i "/^\[sync\]/a metrics_file = $WORK/M3/absent/metrics.prom" "$WORK/M3/viamkey.conf"
f_syncd_start authority
for m in $MACHINES; do f_syncd_start "$m"; done

ka_key K organizations api-key create --org-id "$ORG" --user vkt-ann --name measured
[ -n "$K_TOKEN" ] || { echo "FAIL: cannot create the key: $(cat "$WORK/ka_key.err")"; exit 99; }
check "sync wait returns 0" f_sync_wait 60
REV=$(ka --json sync status | jq .revision)

# value WHO NAME: the figure NAME (viamkey_sync_NAME, labels included) in WHO's file
value() { sed -n "s/^viamkey_sync_$2 //p" "$WORK/$1/metrics.prom"; }
# well_formed WHO: every line a HELP, a TYPE or a sample of viamkey_sync_*
well_formed() {
	[ -s "$WORK/$1/metrics.prom" ] && ! grep -vE \
		'^(# (HELP|TYPE) viamkey_sync_[a-z_]+ .+|viamkey_sync_[a-z_]+(\{[a-z]+="[^"]*"(,[a-z]+="[^"]*")*\})? -?[0-9][0-9.e+-]*)$' \
		"$WORK/$1/metrics.prom"
}
# the files are written every 5 s: wait until they say what the store says
authority_settled() {
	[ "$(value authority revision)" = "$REV" ] && [ "$(value authority machines_behind)" = 0 ] &&
		[ "$(value authority unpublished)" = 0 ]
}
check "the authority's file: revision $REV, nothing unpublished, no machine behind (within 15 s)" \
	f_until 15 authority_settled
check "... in Prometheus's text format, mode 0644, no .tmp beside it" \
	eval 'well_formed authority && test "$(stat -c %a "$WORK/authority/metrics.prom")" = 644 &&
		test -z "$(ls "$WORK/authority" | grep "metrics.prom.tmp")"'
check "... changes published, and publishing rounds timed" \
	eval '[ "$(value authority published_total)" -ge 1 ] && [ "$(value authority publish_round_seconds_count)" -ge 1 ]'
check "... its role" grep -q '^viamkey_sync_info{role="authority",machine=""} 1$' "$WORK/authority/metrics.prom"
check "M1's file: the revision the authority has (within 15 s)" \
	f_until 15 eval '[ "$(value M1 revision)" = "$REV" ]'
check "... records applied and timed; a heartbeat at most 5 s old" \
	eval 'well_formed M1 && [ "$(value M1 records_applied_total)" -ge 1 ] &&
		[ "$(value M1 apply_seconds_count)" = "$(value M1 records_applied_total)" ] &&
		[ "$(value M1 heartbeat_age_seconds)" -le 5 ]'
check "... its role and machine" \
	grep -q "^viamkey_sync_info{role=\"machine\",machine=\"$(f_id M1)\"} 1\$" "$WORK/M1/metrics.prom"

# a machine's daemon stopped: one machine behind after the next change
f_syncd_stop M2
ka keys disable --key-id "$K_ID" >/dev/null
check "M2 stopped, a change: the authority's file says one machine behind (within 15 s)" \
	f_until 15 eval '[ "$(value authority machines_behind)" = 1 ]'
f_syncd_start M2
check "M2 back: sync wait returns 0" f_sync_wait 60
check "... and the file says none behind (within 15 s)" \
	f_until 15 eval '[ "$(value authority machines_behind)" = 0 ]'

check "M3's metrics file cannot be written: its log says so once" \
	eval 'test "$(grep -c "cannot write the metrics" "$WORK/M3/syncd.log")" = 1 && test ! -e "$WORK/M3/absent"'
check "... and it syncs all the same: the disabled key is refused there" f_wait_check M3 vkt-ann "$K_TOKEN" 1 10
check_end
