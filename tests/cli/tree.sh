#!/bin/sh
# keyadm init and the organization > location > machine tree.
. "$(dirname "$0")/lib.sh"

UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

# ---- init ---------------------------------------------------------------------

refused 2 "init with only some of the names is a usage error" init --org A --location B
expect "... and creates nothing" [ ! -e "$(dirname "$DB")" ]
refused 2 "init with an empty name is a usage error" init --org "" --location B --machine C
expect "... and creates nothing" [ ! -e "$(dirname "$DB")" ]

expect_ok "init creates a store" init
expect_out "init says where the store is" "Store $DB is ready (schema version 6)."
expect "store directory is 0700" [ "$(stat -c %a "$(dirname "$DB")")" = 700 ]
expect "store file is 0600" [ "$(stat -c %a "$DB")" = 600 ]
expect "store file is owned by the caller" [ "$(stat -c %u "$DB")" = "$(id -u)" ]

snapshot >"$T/before"
expect_ok "init twice is safe" init
snapshot >"$T/after"
expect "a second init changes nothing" cmp -s "$T/before" "$T/after"
ka --json init
expect_json "init --json: store, schema_version, machine null" \
	'.store == $db and .schema_version == 6 and .machine == null' --arg db "$DB"
expect "schema is versioned with user_version" [ "$(sqlite3 "$DB" 'PRAGMA user_version')" = 6 ]
expect "store uses write-ahead logging" [ "$(sqlite3 "$DB" 'PRAGMA journal_mode')" = wal ]

# a well-formed token from another store: check reads this store only once the token parses
mkdir "$T/other"
"$KEYADM" --db "$T/other/keys.db" init --org O --location L --machine M >/dev/null
OTHER_MACHINE=$("$KEYADM" --db "$T/other/keys.db" --json init | jq -r .machine.id)
OTHER_TOKEN=$("$KEYADM" --db "$T/other/keys.db" --json machines api-key create \
	--machine-id "$OTHER_MACHINE" --user root 2>/dev/null | jq -r .key)
ka_in "$OTHER_TOKEN" check --user root
expect_rc 1 "check without a recorded machine fails"
expect_err_re "... and says how to record one" "^keyadm: .*machine.*keyadm init"
ka_in "" check --user root
expect_rc 1 "check of an empty token without a recorded machine is a denial"
expect_out "... of a malformed token, decided before the store is read" "deny: malformed"

# a store made without names gets its hierarchy from a later init
must "init adds the hierarchy to an existing store" --json init --org Acme --location HQ --machine host
ORG=$(jqr .machine.org_id)
LOC=$(jqr .machine.location_id)
MACH=$(jqr .machine.id)
expect_json "init --json names the host machine" \
	'.machine.name == "host" and (.machine.id | test($re)) and (.machine.created_at | ts)' --arg re "$UUID_RE"
expect "init records the host machine in the store" [ "$(sqlite3 "$DB" "SELECT value FROM meta WHERE name = 'host_machine_id'")" = "$MACH" ]
ka --json organizations list
expect_json "init created the organization" 'length == 1 and .[0].name == "Acme" and .[0].id == $o' --arg o "$ORG"
ka --json locations list
expect_json "init created the location" 'length == 1 and .[0].name == "HQ" and .[0].org_id == $o' --arg o "$ORG"
ka init
expect_out_re "init shows the host machine" "^machine \\(this host\\) +$MACH +host\$"

snapshot >"$T/before"
ka init --org Other --location Other --machine other
expect_rc 0 "init with names on a store that records a host succeeds"
expect_err_re "... says the host is already recorded" "^keyadm: .*already records.*$MACH"
snapshot >"$T/after"
expect "... and creates nothing" cmp -s "$T/before" "$T/after"

ka_raw --db "$T/no/such/dir/keys.db" init
expect_rc 1 "init under a missing parent directory fails"
expect_err_re "... naming the directory" "^keyadm: cannot create store directory"

# the store path comes from --db, else the config file; --config beats VIAMKEY_CONFIG
printf '[store]\npath = %s\n' "$T/fromconf/keys.db" >"$T/path.conf"
VIAMKEY_CONFIG=$T/path.conf ka_raw init
expect_rc 0 "init without --db uses [store] path"
expect "... and creates the store there" [ -f "$T/fromconf/keys.db" ]
ka_raw --config "$T/path.conf" --json organizations list
expect_json "--config FILE is read instead of VIAMKEY_CONFIG" 'length == 0'
ka_raw --config="$T/path.conf" --db "$DB" --json organizations list
expect_json "--db overrides [store] path" 'length == 1'
ka_raw organizations list
expect_rc 1 "a missing default store is an error"
expect_err_re "... that says to run init" "does not exist; create it with keyadm init"

# ---- organizations ------------------------------------------------------------

must "organizations create" --json organizations create --name Beta
ORG2=$(jqr .id)
expect_json "organization JSON is {id, name, created_at}" \
	'keys_of(.) == ["created_at", "id", "name"] and .name == "Beta" and (.id | test($re)) and (.created_at | ts)' \
	--arg re "$UUID_RE"
expect_ok "organizations create, plain" organizations create --name Zeta
expect_out_re "... prints the new ID" "^Created organization [0-9a-f-]{36}\$"
ORG3=${OUT##* }
expect_ok "organizations list" organizations list
expect_out_re "... has a header" "^ID +NAME +CREATED\$"
expect_out_re "... shows each organization" "^$ORG2 +Beta +[0-9T:Z-]+\$"
ka --json organizations list
expect_json "organizations list --json lists every organization" '([.[].name] | sort) == ["Acme", "Beta", "Zeta"]'
expect_ok "organizations rename" organizations rename --org-id "$ORG2" --name "Beta 2"
expect_out "... says so" "Renamed organization $ORG2"
ka --json organizations list
expect_json "... and the new name is listed" 'any(.[]; .name == "Beta 2" and .id == $o)' --arg o "$ORG2"
refused 1 "organizations rename of an unknown ID" organizations rename --org-id "$NOSUCH" --name x
expect_err_re "... says which" "no organization with ID $NOSUCH"
refused 2 "organizations rename with a malformed ID" organizations rename --org-id 1234 --name x
refused 2 "organizations rename with an uppercase ID" organizations rename --org-id "$(echo "$ORG2" | tr a-f A-F)" --name x
refused 2 "organizations rename without --name" organizations rename --org-id "$ORG2"
refused 2 "organizations rename to an empty name" organizations rename --org-id "$ORG2" --name ""
refused 2 "organizations create without --name" organizations create
refused 2 "organizations create with --org-id, not an option of it" organizations create --name x --org-id "$ORG2"

# ---- locations ----------------------------------------------------------------

must "locations create" --json locations create --org-id "$ORG2" --name L2
LOC2=$(jqr .id)
expect_json "location JSON is {id, org_id, name, created_at}" \
	'keys_of(.) == ["created_at", "id", "name", "org_id"] and .org_id == $o and .name == "L2" and (.created_at | ts)' \
	--arg o "$ORG2"
ka locations create --org-id "$ORG2" --name L3
expect_out_re "locations create, plain" "^Created location [0-9a-f-]{36}\$"
LOC3=${OUT##* }
refused 1 "locations create in an unknown organization" locations create --org-id "$NOSUCH" --name x
expect_err_re "... says so" "no organization with ID $NOSUCH"
refused 2 "locations create with a malformed --org-id" locations create --org-id nope --name x
refused 2 "locations create without --org-id" locations create --name x
expect_ok "locations list" locations list
expect_out_re "... has a header" "^ID +ORGANIZATION +NAME +CREATED\$"
expect_out_re "... shows each location" "^$LOC2 +$ORG2 +L2 "
ka --json locations list
expect_json "locations list --json shows all" '([.[].name] | sort) == ["HQ", "L2", "L3"]'
ka --json locations list --org-id "$ORG2"
expect_json "locations list --org-id filters" '([.[].name] | sort) == ["L2", "L3"] and all(.[]; .org_id == $o)' --arg o "$ORG2"
ka --json locations list --org-id "$ORG3"
expect_json "locations list of an empty organization" 'length == 0'
refused 1 "locations list --org-id of an unknown organization" locations list --org-id "$NOSUCH"
refused 2 "locations list --org-id malformed" locations list --org-id x
expect_ok "locations rename" locations rename --location-id "$LOC3" --name "L3b"
ka --json locations list --org-id "$ORG2"
expect_json "... renamed" 'any(.[]; .name == "L3b" and .id == $l)' --arg l "$LOC3"
refused 1 "locations rename of an unknown ID" locations rename --location-id "$NOSUCH" --name x
refused 2 "locations rename with a malformed ID" locations rename --location-id "${ORG2}x" --name x
refused 2 "locations rename with a bad name" locations rename --location-id "$LOC3" --name "$(printf 'a\tb')"

# ---- machines -----------------------------------------------------------------

must "machines create" --json machines create --location-id "$LOC2" --name M2
M2=$(jqr .id)
expect_json "machine JSON is {id, location_id, org_id, name, created_at}" \
	'keys_of(.) == ["created_at", "id", "location_id", "name", "org_id"] and .location_id == $l and .org_id == $o' \
	--arg l "$LOC2" --arg o "$ORG2"
must "machines create in the host's location" --json machines create --location-id "$LOC" --name neighbour
M1B=$(jqr .id)
refused 1 "machines create in an unknown location" machines create --location-id "$NOSUCH" --name x
expect_err_re "... says so" "no location with ID $NOSUCH"
refused 2 "machines create with a malformed --location-id" machines create --location-id "$NOSUCH-1" --name x
refused 2 "machines create without --name" machines create --location-id "$LOC2"

ka --json machines list
expect_json "machines list defaults to this host's location" '([.[].name] | sort) == ["host", "neighbour"]'
expect_ok "machines list, plain" machines list
expect_out_re "... has a header" "^ID +LOCATION +NAME +CREATED\$"
expect_out_lacks "... without other locations' machines" "$M2"
ka --json machines list --all
expect_json "machines list --all shows every machine" '([.[].name] | sort) == ["M2", "host", "neighbour"]'
ka --json machines list --location-id "$LOC2"
expect_json "machines list --location-id filters" '[.[].id] == [$m]' --arg m "$M2"
ka --json machines list --location-id="$LOC3"
expect_json "machines list of an empty location" 'length == 0'
ka --json machines list --organization "$ORG2"
expect_json "machines list --organization filters" '[.[].id] == [$m]' --arg m "$M2"
ka --json machines list --organization "$ORG"
expect_json "machines list --organization of the host's organization" '([.[].name] | sort) == ["host", "neighbour"]'
refused 2 "machines list with both filters" machines list --organization "$ORG" --location-id "$LOC"
refused 1 "machines list --organization unknown" machines list --organization "$NOSUCH"
refused 1 "machines list --location-id unknown" machines list --location-id "$NOSUCH"
refused 2 "machines list --organization malformed" machines list --organization x
refused 2 "machines list --org-id is not its option" machines list --org-id "$ORG"

# without a recorded host machine, every machine is listed
DB0=$DB
DB=$T/nohost/keys.db
must "a store without a host machine" init
must "... with an organization" --json organizations create --name O
O=$(jqr .id)
must "... a location" --json locations create --org-id "$O" --name L
L=$(jqr .id)
expect_ok "... and two machines" machines create --location-id "$L" --name a
expect_ok "..." machines create --location-id "$L" --name b
ka --json machines list
expect_json "machines list without a host machine lists every machine" '([.[].name] | sort) == ["a", "b"]'
DB=$DB0

expect_ok "machines rename" machines rename --machine-id "$M2" --name M2b
expect_out "... says so" "Renamed machine $M2"
ka --json machines rename --machine-id "$M2" --name M2c
expect_json "machines rename --json prints the machine" '.id == $m and .name == "M2c"' --arg m "$M2"
refused 1 "machines rename of an unknown ID" machines rename --machine-id "$NOSUCH" --name x
refused 2 "machines rename with a malformed ID" machines rename --machine-id "" --name x

# ---- delete -------------------------------------------------------------------

refused 1 "an organization with locations cannot be deleted" organizations delete --org-id "$ORG2"
expect_err_re "... and the message says why" "it still has locations; delete them first"
refused 1 "a location with machines cannot be deleted" locations delete --location-id "$LOC2"
expect_err_re "... and the message says why" "it still has machines; delete them first"
refused 1 "the host's machine cannot be deleted" machines delete --machine-id "$MACH"
expect_err_re "... and the message says why" "this host's machine"
must "a machine the config will name" --json machines create --location-id "$LOC" --name named
MC=$(jqr .id)
printf '[machine]\nid = %s\n' "$MC" >"$T/host.conf"
refused 1 "the machine [machine] id names cannot be deleted" --config "$T/host.conf" machines delete --machine-id "$MC"
expect_err_re "... and the message says why" "this host's machine"
printf '[services]\nsudo = owner\nSUDO = viewer\n' >"$T/dup.conf"
refused 1 "a config that sets a key twice is refused" --config "$T/dup.conf" machines list
expect_err_re "... naming both lines" "dup.conf:3: \\[services\\] sudo is already set on line 2"
must "then it can go" machines delete --machine-id "$MC"

mkkey machines "$M2" --user root
K1=$KEY_ID
refused 1 "a machine with grants cannot be deleted" machines delete --machine-id "$M2"
expect_err_re "... and the message says how to fix it" "keys ungrant"
mkkey locations "$LOC3" --user root
K2=$KEY_ID
refused 1 "a location with grants cannot be deleted" locations delete --location-id "$LOC3"
mkkey organizations "$ORG3" --user root
K3=$KEY_ID
refused 1 "an organization with grants cannot be deleted" organizations delete --org-id "$ORG3"
expect_err_re "... and the message says so" "have grants on organization $ORG3"

for k in "$K1" "$K2" "$K3"; do
	expect_ok "delete key $k" keys delete --key-id "$k"
done
ka --json machines delete --machine-id "$M2"
expect_json "machines delete --json" '. == {id: $m, deleted: true}' --arg m "$M2"
ka --json machines list --all
expect_json "... and the machine is gone" 'all(.[]; .id != $m)' --arg m "$M2"
expect_ok "locations delete" locations delete --location-id "$LOC3"
expect_out "... says so" "Deleted location $LOC3"
expect_ok "locations delete of an emptied location" locations delete --location-id "$LOC2"
expect_ok "organizations delete" organizations delete --org-id "$ORG2"
expect_out "... says so" "Deleted organization $ORG2"
ka --json organizations list
expect_json "... and it is gone" '([.[].name] | sort) == ["Acme", "Zeta"]'
expect_ok "organizations delete of an organization with nothing in it" organizations delete --org-id "$ORG3"
refused 1 "machines delete of an unknown ID" machines delete --machine-id "$M2"
refused 1 "locations delete of an unknown ID" locations delete --location-id "$LOC2"
refused 1 "organizations delete of an unknown ID" organizations delete --org-id "$ORG2"
refused 2 "machines delete with a malformed ID" machines delete --machine-id x
refused 2 "locations delete with a malformed ID" locations delete --location-id x
refused 2 "organizations delete with a malformed ID" organizations delete --org-id x
refused 2 "machines delete without an ID" machines delete
refused 2 "locations delete without an ID" locations delete
refused 2 "organizations delete without an ID" organizations delete
expect_ok "a plain machine can be deleted" machines delete --machine-id "$M1B"
expect_out "... says so" "Deleted machine $M1B"

ka --json events
expect_json "tree changes are in the audit trail" \
	'[.[].action] as $a | ["init", "organization.create", "organization.rename", "organization.delete",
	 "location.create", "location.rename", "location.delete", "machine.create", "machine.rename",
	 "machine.delete"] | all(. as $x | $a | index($x) != null)'

# ---- concurrent init ---------------------------------------------------------

# four inits with names race on a fresh store: one hierarchy, and all four name it.
# Each waits for the init lock up to the longest busy timeout there is: under
# memcheck (scripts/run-tests.sh) on a loaded host, the init holding it can take
# longer than the default 5 s, and the race is what is tested here, not the wait
DB0=$DB
DB=$T/race/keys.db
printf '[store]\nbusy_timeout_ms = 60000\n' >"$T/race.conf"
for i in 1 2 3 4; do
	"$KEYADM" --config "$T/race.conf" --db "$DB" --json init --org "Race$i" --location L --machine M \
		>"$T/race$i.out" 2>"$T/race$i.err" &
done
wait
expect "four concurrent inits create one organization" [ "$(sqlite3 "$DB" 'SELECT count(*) FROM organizations')" = 1 ]
expect "... one location and one machine" [ "$(sqlite3 "$DB" 'SELECT (SELECT count(*) FROM locations) || (SELECT count(*) FROM machines)')" = 11 ]
HOST=$(sqlite3 "$DB" "SELECT value FROM meta WHERE name = 'host_machine_id'")
for i in 1 2 3 4; do
	expect "init $i reports that machine as this host's" [ "$(jq -r .machine.id "$T/race$i.out")" = "$HOST" ]
done
expect "... and the others say they created nothing" [ "$(cat "$T"/race*.err | grep -c 'nothing created')" = 3 ]
DB=$DB0

finish
