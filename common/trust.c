/*
 * trust.c - the root version, epoch and signing key a machine believes.
 *
 * Security rules for this file (SPEC §10):
 *  1. A value counts only when the key of the epoch held signed it; that
 *     key comes from [sync] authority_key, or from a certificate the root
 *     version held signed.
 *  2. The epoch only rises: a certificate of a lower epoch, or of the same
 *     epoch with another key, is refused; so is a heartbeat whose epoch is
 *     not its certificate's.
 *  3. Root versions are taken one at a time, each signed by the one before
 *     and by its own key, never an older one; a certificate counts only
 *     under the root version it names, once that is the one held.
 *  4. What was read under an older epoch is forgotten when the epoch rises
 *     (the replica's entries and heads), so that the scopes are read again
 *     under the new one.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "trust.h"

#define MAGIC_LEN 4  /* "vk1." */
#define SIG_B64   86 /* a signature, base64url without padding */

static vk_rc
meta_text(sqlite3 *db, const char *name, char *out, size_t size, char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	vk_rc rc;

	out[0] = '\0';
	if ((rc = vk_store_prepare(db, "cannot read the fleet's trust", err, &st,
	                           "SELECT value FROM meta WHERE name = ?1", "t", name)) != VK_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return VK_OK;
}

static vk_rc
set_meta(sqlite3 *db, const char *name, const char *text, int64_t value, char err[VK_ERRLEN])
{
	return vk_store_exec(db, "cannot record the fleet's trust", err, NULL,
	                     "INSERT INTO meta (name, value) VALUES (?1, coalesce(?2, ?3))"
	                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                     "tti", name, text, value);
}

static void
b64(const unsigned char key[VK_PUBLIC_KEY_BYTES], char out[VK_PUBLIC_KEY_B64])
{
	sodium_bin2base64(out, VK_PUBLIC_KEY_B64, key, VK_PUBLIC_KEY_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
}

vk_rc
vk_trust_load(sqlite3 *db, const char *root_key, const char *authority_key, struct vk_trust *t,
              char err[VK_ERRLEN])
{
	char text[VK_PUBLIC_KEY_B64 + 16], origin[VK_PUBLIC_KEY_B64 + 16];
	unsigned char configured[VK_PUBLIC_KEY_BYTES];
	vk_rc rc;

	memset(t, 0, sizeof *t);
	if (root_key == NULL) {
		if (vk_public_key_parse(authority_key, t->key) != 0) {
			vk_seterr(err,
			          "[sync] root_key or authority_key must be set to a public key:"
			          " records could not be verified");
			return VK_ERR_USAGE;
		}
		t->have_key = 1;
		return VK_OK;
	}
	if (vk_public_key_parse(root_key, configured) != 0) {
		vk_seterr(err, "[sync] root_key is not a public key");
		return VK_ERR_USAGE;
	}
	t->rooted = 1;
	if ((rc = meta_text(db, VK_META_TRUST_ORIGIN, origin, sizeof origin, err)) != VK_OK)
		return rc;
	b64(configured, text);
	if (origin[0] == '\0') {
		t->root_version = 1;
		memcpy(t->root, configured, sizeof t->root);
		return VK_OK;
	}
	if (strcmp(origin, text) != 0) {
		vk_seterr(err,
		          "this store trusts another root (%s) than [sync] root_key: a store"
		          " follows one fleet",
		          origin);
		return VK_ERR_USAGE;
	}
	if ((rc = vk_store_query_int(
	         db, "cannot read the fleet's trust", err, &t->root_version,
	         "SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_TRUST_ROOT_VERSION
	         "'",
	         "")) != VK_OK ||
	    (rc = vk_store_query_int(
	         db, "cannot read the fleet's trust", err, &t->epoch,
	         "SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_TRUST_EPOCH "'",
	         "")) != VK_OK ||
	    (rc = meta_text(db, VK_META_TRUST_ROOT, text, sizeof text, err)) != VK_OK)
		return rc;
	if (t->root_version < 1 || vk_public_key_parse(text, t->root) != 0) {
		vk_seterr(err, "the store's trusted root is corrupt");
		return VK_ERR_STORE;
	}
	if ((rc = meta_text(db, VK_META_TRUST_KEY, text, sizeof text, err)) != VK_OK)
		return rc;
	t->have_key = vk_public_key_parse(text, t->key) == 0;
	return VK_OK;
}

/* Records t's root (and, the first time, where it started). */
static vk_rc
keep_root(sqlite3 *db, const struct vk_trust *t, char err[VK_ERRLEN])
{
	char text[VK_PUBLIC_KEY_B64];
	vk_rc rc;

	b64(t->root, text);
	if ((rc = set_meta(db, VK_META_TRUST_ROOT_VERSION, NULL, t->root_version, err)) != VK_OK ||
	    (rc = set_meta(db, VK_META_TRUST_ROOT, text, 0, err)) != VK_OK)
		return rc;
	return VK_OK;
}

/*
 * The unverified JSON of a signed value: the heartbeat's type, epoch and
 * certificate (base64url) are read from it before anything is believed.
 */
static vk_rc
heartbeat_fields(sqlite3 *db, const char *json, size_t len, int64_t *epoch, char **cert,
                 char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	char *text;
	vk_rc rc;

	*cert = NULL;
	*epoch = -1;
	/* with no escape in it, a text whose type is "heartbeat" holds those bytes: a key's not */
	if (memchr(json, '\\', len) == NULL && memmem(json, len, "heartbeat", 9) == NULL)
		return VK_OK;
	if ((text = strndup(json, len)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	rc = vk_store_prepare(db, "cannot read a heartbeat", err, &st,
	                      "SELECT json_extract(?1, '$.epoch'), json_extract(?1, '$.cert')"
	                      " WHERE json_valid(?1) AND json_extract(?1, '$.type') = 'heartbeat'",
	                      "t", text);
	if (rc == VK_OK && sqlite3_step(st) == SQLITE_ROW &&
	    sqlite3_column_type(st, 0) == SQLITE_INTEGER &&
	    sqlite3_column_type(st, 1) == SQLITE_TEXT) {
		*epoch = sqlite3_column_int64(st, 0);
		*cert = strdup((const char *)sqlite3_column_text(st, 1));
	}
	if (rc == VK_OK)
		sqlite3_finalize(st);
	free(text); /* bound as it is, not copied: freed once the statement is done */
	return rc;
}

/* Rule 4: the trust moves to c's epoch; what was read under the old one is forgotten. */
static vk_rc
move(sqlite3 *db, struct vk_trust *t, const struct vk_cert *c, const char *cert,
     char err[VK_ERRLEN])
{
	char key[VK_PUBLIC_KEY_B64], origin[VK_PUBLIC_KEY_B64 + 16];
	vk_rc rc;

	b64(c->key, key);
	if ((rc = meta_text(db, VK_META_TRUST_ORIGIN, origin, sizeof origin, err)) != VK_OK)
		return rc;
	if (origin[0] == '\0') {
		/* the first certificate: the root held is version 1, the configured one */
		b64(t->root, origin);
		if ((rc = set_meta(db, VK_META_TRUST_ORIGIN, origin, 0, err)) != VK_OK ||
		    (rc = keep_root(db, t, err)) != VK_OK)
			return rc;
	}
	if ((rc = set_meta(db, VK_META_TRUST_EPOCH, NULL, c->epoch, err)) != VK_OK ||
	    (rc = set_meta(db, VK_META_TRUST_KEY, key, 0, err)) != VK_OK ||
	    (rc = set_meta(db, VK_META_TRUST_CERT, cert, 0, err)) != VK_OK)
		return rc;
	if (c->epoch != t->epoch &&
	    ((rc = vk_store_exec(db, "cannot forget the older epoch", err, NULL,
	                         "DELETE FROM sync_entries", "")) != VK_OK ||
	     (rc = vk_store_exec(db, "cannot forget the older epoch", err, NULL,
	                         "DELETE FROM sync_heads", "")) != VK_OK))
		return rc;
	t->epoch = c->epoch;
	memcpy(t->key, c->key, sizeof t->key);
	t->have_key = 1;
	return VK_OK;
}

vk_rc
vk_trust_verify(sqlite3 *db, struct vk_trust *t, const char *value, size_t len, const char **json,
                size_t *json_len, int *moved, int64_t *need_root, char err[VK_ERRLEN])
{
	unsigned char bin[2048];
	char *cert_b64 = NULL, *cert;
	struct vk_cert c;
	int64_t epoch, root;
	size_t n;
	vk_rc rc;

	*moved = 0;
	*need_root = 0;
	/* rule 1 */
	if (t->have_key && vk_record_verify(t->key, value, len, json, json_len, err) == VK_OK) {
		/* rule 3: a heartbeat whose certificate is under a later root version: that first
		 */
		rc = t->rooted ? heartbeat_fields(db, *json, *json_len, &epoch, &cert_b64, err)
		               : VK_OK;
		if (rc == VK_OK && cert_b64 != NULL &&
		    sodium_base642bin(bin, sizeof bin - 1, cert_b64, strlen(cert_b64), NULL, &n,
		                      NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0 &&
		    vk_cert_read((const char *)bin, n, &c) == 0 && c.root > t->root_version) {
			*need_root = t->root_version + 1;
			vk_seterr(err, "a certificate of root version %lld, past the %lld held",
			          (long long)c.root, (long long)t->root_version);
			rc = VK_ERR_NOTFOUND;
		}
		free(cert_b64);
		return rc;
	}
	if (!t->rooted || len <= MAGIC_LEN + SIG_B64 + 1 || memcmp(value, "vk1.", MAGIC_LEN) != 0) {
		if (!t->have_key)
			vk_seterr(err, "no authority key to verify it with");
		return VK_ERR_USAGE;
	}
	/* a heartbeat that carries the certificate of its key, perhaps of a new epoch */
	if ((rc = heartbeat_fields(db, value + MAGIC_LEN + SIG_B64 + 1,
	                           len - (MAGIC_LEN + SIG_B64 + 1), &epoch, &cert_b64, err)) !=
	    VK_OK)
		return rc;
	rc = VK_ERR_USAGE;
	if (cert_b64 == NULL ||
	    sodium_base642bin(bin, sizeof bin - 1, cert_b64, strlen(cert_b64), NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
		vk_seterr(err, "not signed by the key of epoch %lld", (long long)t->epoch);
		goto out;
	}
	bin[n] = '\0';
	cert = (char *)bin;
	/* rule 3: a certificate under a later root version waits for that version */
	root = vk_cert_read(cert, n, &c) == 0 ? c.root : -1;
	if (root > t->root_version) {
		*need_root = t->root_version + 1;
		vk_seterr(err, "a certificate of root version %lld, past the %lld held",
		          (long long)root, (long long)t->root_version);
		rc = VK_ERR_NOTFOUND;
		goto out;
	}
	if (vk_cert_verify(t->root, cert, n, &c) != 0 || c.root != t->root_version) {
		vk_seterr(err, "a certificate the root version held (%lld) did not sign",
		          (long long)t->root_version);
		goto out;
	}
	/* rule 2 */
	if (c.epoch < t->epoch || (c.epoch == t->epoch && t->have_key &&
	                           sodium_memcmp(c.key, t->key, sizeof c.key) != 0)) {
		vk_seterr(err,
		          "a certificate of epoch %lld, below or beside the epoch %lld held: a"
		          " former authority",
		          (long long)c.epoch, (long long)t->epoch);
		goto out;
	}
	if (epoch != c.epoch || vk_record_verify(c.key, value, len, json, json_len, err) != VK_OK) {
		vk_seterr(err, "a heartbeat its certificate's key (epoch %lld) did not sign",
		          (long long)c.epoch);
		goto out;
	}
	if ((rc = move(db, t, &c, cert, err)) == VK_OK)
		*moved = 1;
out:
	free(cert_b64);
	return rc;
}

vk_rc
vk_trust_root(sqlite3 *db, struct vk_trust *t, const char *value, size_t len, char err[VK_ERRLEN])
{
	char origin[VK_PUBLIC_KEY_B64 + 16];
	struct vk_root r;
	vk_rc rc;

	/* rule 3 */
	if (vk_root_verify(t->root, value, len, &r) != 0 || r.version != t->root_version + 1) {
		vk_seterr(err, "not root version %lld signed by version %lld",
		          (long long)t->root_version + 1, (long long)t->root_version);
		return VK_ERR_USAGE;
	}
	if ((rc = meta_text(db, VK_META_TRUST_ORIGIN, origin, sizeof origin, err)) != VK_OK)
		return rc;
	if (origin[0] == '\0') {
		b64(t->root, origin);
		if ((rc = set_meta(db, VK_META_TRUST_ORIGIN, origin, 0, err)) != VK_OK)
			return rc;
	}
	t->root_version = r.version;
	memcpy(t->root, r.key, sizeof t->root);
	return keep_root(db, t, err);
}
