#!/bin/sh
# The fleet's root and authority commands without a bus: root init and
# rotate, authority init (with a root, a certificate, as a standby),
# keygen, certify, rekey and promote; every refusal leaves the store and
# the key files as they were, and no command prints a secret.
. "$(dirname "$0")/lib.sh"

# the config: the signing key's path, and (for --certificate) the root machines trust
conf() { # conf SIGNING_KEY [ROOT_KEY]
	{
		echo "[sync]"
		echo "signing_key = $1"
		[ -z "${2:-}" ] || echo "root_key = $2"
	} >"$T/viamkey.conf"
}
VIAMKEY_CONFIG=$T/viamkey.conf
conf "$T/signing.key"
setup_store

# ---- root init -----------------------------------------------------------------------
must "root init" --json root init --out "$T/root.key"
expect_json "root init prints {public_key, version 1}" \
	'keys_of(.) == ["public_key", "version"] and .version == 1 and (.public_key | length) == 44'
ROOT=$(jqr .public_key)
expect "the root key file is 0600" test "$(stat -c %a "$T/root.key")" = 600
expect "its second line says its version" test "$(sed -n 2p "$T/root.key")" = "version 1"
sum=$(sha256sum "$T/root.key")
refused 1 "root init over an existing file is refused" root init --out "$T/root.key"
expect "... and the file is as it was" test "$(sha256sum "$T/root.key")" = "$sum"
expect_err_re "... saying it is never overwritten" "never overwritten"
refused 2 "root init without --out is a usage error" root init
ka root init --out "$T/absent-dir/root.key"
expect_rc 1 "root init into a missing directory exits 1"

# ---- authority init with a root ----------------------------------------------------------
refused 1 "rekey on a standalone store is refused" authority rekey --root-key "$T/root.key"
refused 1 "promote on a standalone store is refused" authority promote --timeout 1s
refused 2 "authority init with both --root-key and --certificate is a usage error" \
	authority init --root-key "$T/root.key" --certificate "$T/root.key"
refused 2 "a standby without a root is a usage error" authority init --standby
refused 2 "--epoch without --root-key is a usage error" authority init --epoch 3
refused 2 "--epoch 0 is a usage error" authority init --root-key "$T/root.key" --epoch 0
printf 'not a key\n' >"$T/junk.key"
chmod 600 "$T/junk.key"
refused 1 "a root key file that is not one is refused" authority init --root-key "$T/junk.key"
expect "... and no signing key was made" test ! -e "$T/signing.key"
refused 1 "a standby's store must be empty" authority init --standby --root-key "$T/root.key"
expect "... and no signing key was made" test ! -e "$T/signing.key"
must "authority init --root-key" --json authority init --root-key "$T/root.key"
expect_json "it prints {public_key, epoch 1, standby false, root_key}" \
	'keys_of(.) == ["epoch", "public_key", "root_key", "standby"] and .epoch == 1 and .standby == false and .root_key == $r' \
	--arg r "$ROOT"
KEY1=$(jqr .public_key)
expect "the signing key is 0600" test "$(stat -c %a "$T/signing.key")" = 600
expect "no output names a secret: the root key's base64 is not in it" \
	eval '! grep -qF "$(head -n 1 "$T/root.key")" "$T/out"'
ka --json sync status
expect_json "sync status: the authority, epoch 1, root version 1" \
	'.role == "authority" and .epoch == 1 and .root_version == 1'
ka --json machines config --machine-id "$MACH"
expect_json "machines config names root_key, not authority_key" \
	'(.config | contains("\nroot_key = " + $r + "\n")) and (.config | contains("authority_key") | not)' --arg r "$ROOT"
refused 1 "authority init on an authority is refused" authority init --root-key "$T/root.key"

# ---- certify ----------------------------------------------------------------------------
ka_raw --json authority certify --root-key "$T/root.key" --public-key "$KEY1" --epoch 5 --name web-1
expect_rc 0 "certify needs no store"
expect_json "it prints {certificate, epoch, root_version}" \
	'keys_of(.) == ["certificate", "epoch", "root_version"] and .epoch == 5 and .root_version == 1 and (.certificate | startswith("vk1."))'
ka_raw authority certify --root-key "$T/root.key" --public-key "AAAA" --epoch 5
expect_rc 2 "certify of a key that is not one is a usage error"
ka_raw authority certify --root-key "$T/root.key" --public-key "$KEY1" --epoch 5 --name "two words"
expect_rc 2 "certify with a name that has a space is a usage error"
for e in 5junk " 5" +5 0 -1 99999999999; do
	ka_raw authority certify --root-key "$T/root.key" --public-key "$KEY1" --epoch "$e"
	expect_rc 2 "certify with --epoch \"$e\" is a usage error"
done

# ---- rekey --------------------------------------------------------------------------------
must "a second root key, for later" root init --out "$T/root2.key"
refused 1 "rekey with a root key of another version is refused" \
	authority rekey --root-key "$T/root2.key.missing"
sum=$(sha256sum "$T/signing.key")
must "rekey" --json authority rekey --root-key "$T/root.key"
expect_json "it prints {public_key, epoch 2}" 'keys_of(.) == ["epoch", "public_key"] and .epoch == 2'
expect "the signing key file is a new key" test "$(sha256sum "$T/signing.key")" != "$sum"
expect "no key is left beside it" test ! -e "$T/signing.key.new"
ka --json sync status
expect_json "sync status: epoch 2" '.epoch == 2'
ka events
expect_out_re "the audit trail records the rekey" "authority.rekey"

# ---- root rotate -------------------------------------------------------------------------
refused 2 "root rotate to the same key is a usage error" \
	root rotate --root-key "$T/root.key" --new-root-key "$T/root.key"
refused 1 "root rotate with a root key of version 1 that is not the fleet's is refused" \
	root rotate --root-key "$T/root2.key" --new-root-key "$T/root.key"
expect_err_re "... saying so" "not the fleet's root"
refused 1 "so is rekey with it" authority rekey --root-key "$T/root2.key"
must "root rotate" --json root rotate --root-key "$T/root.key" --new-root-key "$T/root2.key"
expect_json "it prints {public_key, version 2}" 'keys_of(.) == ["public_key", "version"] and .version == 2'
expect "the new root's file now says version 2" test "$(sed -n 2p "$T/root2.key")" = "version 2"
expect "no temporary file is left" test ! -e "$T/root2.key.tmp"
expect "the store holds root version 2's document" \
	test "$(sqlite3 "$DB" "SELECT count(*) FROM sync_roots WHERE version = 2")" = 1
refused 1 "rekey with the retired root key is refused" authority rekey --root-key "$T/root.key"
expect_err_re "... naming the versions" "version 1; the fleet holds 2"
must "rekey with root version 2" authority rekey --root-key "$T/root2.key"

# ---- a standby, and --certificate ----------------------------------------------------------
DB=$T/standby/keys.db
conf "$T/standby.key" "$ROOT"
must "a standby's store" init
must "authority init --standby" --json authority init --standby --root-key "$T/root2.key" --epoch 9
expect_json "it prints standby true, epoch 9" '.standby == true and .epoch == 9'
SB=$(jqr .public_key)
refused 1 "a change on a standby is refused, naming promote" organizations create --name nope
expect_err_re "... naming promote" "authority promote"
ka --json sync status
expect_json "sync status says standby" '.role == "standby"'
ka_raw authority certify --root-key "$T/root2.key" --public-key "$KEY1" --epoch 10
printf '%s\n' "$OUT" >"$T/other.cert"
refused 1 "a certificate of another key is refused" authority init --standby --certificate "$T/other.cert"
ka_raw authority certify --root-key "$T/root2.key" --public-key "$SB" --epoch 10
printf '%s\n' "$OUT" >"$T/sb.cert"
must "the standby certified again, for epoch 10" authority init --standby --certificate "$T/sb.cert"
ka --json sync status
expect_json "... and it is still a standby" '.role == "standby"'
expect "its store holds the new certificate" \
	test "$(sqlite3 "$DB" "SELECT value FROM meta WHERE name = 'authority_epoch'")" = 10
ka authority promote --timeout 1s
expect_rc 1 "promote with no daemon running times out (exit 1)"
expect_err_re "... saying the request stands" "request stands"

# ---- an authority of authority_key alone adopts a root ----------------------------------------
DB=$T/plain/keys.db
conf "$T/plain.key"
must "a plain store" init --org P --location L --machine m
must "authority init without a root" --json authority init
PLAIN=$(jqr .public_key)
expect_json "it prints epoch 0 and no root" '.epoch == 0 and .root_key == null'
sqlite3 "$DB" "DELETE FROM sync_outbox" # published, as its daemon would
ka_raw authority certify --root-key "$T/root.key" --public-key "$PLAIN" --epoch 1
printf '%s\n' "$OUT" >"$T/plain.cert"
refused 2 "adopting a root needs [sync] root_key" authority init --certificate "$T/plain.cert"
conf "$T/plain.key" "$KEY1"
refused 1 "a certificate the configured root_key did not sign is refused" \
	authority init --certificate "$T/plain.cert"
conf "$T/plain.key" "$ROOT"
must "the plain authority adopts the root" authority init --certificate "$T/plain.cert"
ka --json sync status
expect_json "it signs in epoch 1 now, everything queued again" '.epoch == 1 and .unpublished > 0'
refused 1 "adopting a second time is refused, naming rekey" authority init --certificate "$T/plain.cert"
expect_err_re "... naming rekey" "authority rekey"
finish
