/*
 * keys.c - creating keys and issuing their secrets.
 *
 * Security rules for this file:
 *  1. Secrets come from vk_token_generate()/vk_token_new_secret() only and
 *     reach the store only as (alg, salt, verifier).
 *  2. Every struct vk_token MUST be wiped on every path out.
 *  3. A key never has more than two live secrets: the current one and, in
 *     a rotation window, the previous one.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <string.h>

#include "duration.h"
#include "keys.h"
#include "store.h"
#include "verifier.h"

static vk_rc
insert_secret(sqlite3 *db, const struct vk_token *t, const char *key_id, int64_t now,
              char err[VK_ERRLEN])
{
	unsigned char salt[VK_SALT_BYTES], verifier[VK_VERIFY_BYTES];
	vk_rc rc;

	vk_verifier_make(t, salt, verifier);
	rc = vk_store_exec(db, "cannot store the secret's verifier", err, NULL,
	                   "INSERT INTO secrets (key_id, alg, salt, verifier, created_at)"
	                   " VALUES (?1, ?2, ?3, ?4, ?5)",
	                   "ttbbi", key_id, VK_ALG_CURRENT, salt, sizeof salt, verifier,
	                   sizeof verifier, now);
	sodium_memzero(verifier, sizeof verifier);
	return rc;
}

/* Stores t's verifier for key_id and, once stored, writes the token out. */
static vk_rc
issue(sqlite3 *db, const struct vk_token *t, const char *key_id, int64_t now,
      char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	vk_rc rc = insert_secret(db, t, key_id, now, err);

	if (rc == VK_OK)
		vk_token_format(t, token);
	return rc;
}

static vk_rc
insert_key(sqlite3 *db, const char *id, const char *name, const char *created_by, int64_t now,
           int64_t expires_at, int protected_key, char err[VK_ERRLEN])
{
	if (!vk_name_valid(name)) {
		vk_seterr(err, "a key name must be 1-%d characters with no control characters",
		          VK_NAME_MAX);
		return VK_ERR_USAGE;
	}
	return vk_store_exec(db, "cannot create the key", err, NULL,
	                     "INSERT INTO keys (id, name, created_at, created_by, expires_at,"
	                     " protected) VALUES (?1, ?2, ?3, ?4, nullif(?5, 0), ?6)",
	                     "ttitii", id, name, now, created_by, expires_at,
	                     (int64_t)(protected_key != 0));
}

static const char *const resource_tables[][2] = {
    {"organization", "SELECT count(*) FROM organizations WHERE id = ?1"},
    {"location", "SELECT count(*) FROM locations WHERE id = ?1"},
    {"machine", "SELECT count(*) FROM machines WHERE id = ?1"},
};

vk_rc
vk_resource_exists(sqlite3 *db, const char *type, const char *id, char err[VK_ERRLEN])
{
	for (size_t i = 0; i < sizeof resource_tables / sizeof resource_tables[0]; i++) {
		int64_t n;
		vk_rc rc;

		if (strcmp(type, resource_tables[i][0]) != 0)
			continue;
		if (!vk_uuid_valid(id)) {
			vk_seterr(err, "%s ID \"%s\" is not a lowercase UUIDv4", type, id);
			return VK_ERR_USAGE;
		}
		rc = vk_store_query_int(db, "cannot look up the resource", err, &n,
		                        resource_tables[i][1], "t", id);
		if (rc == VK_OK && n == 0) {
			vk_seterr(err, "no %s with ID %s", type, id);
			rc = VK_ERR_NOTFOUND;
		}
		return rc;
	}
	vk_seterr(err, "unknown resource type \"%s\"", type);
	return VK_ERR_USAGE;
}

vk_rc
vk_key_exists(sqlite3 *db, const char *key_id, char err[VK_ERRLEN])
{
	int64_t n;
	vk_rc rc;

	if (!vk_uuid_valid(key_id)) {
		vk_seterr(err, "key ID \"%s\" is not a lowercase UUIDv4", key_id);
		return VK_ERR_USAGE;
	}
	rc = vk_store_query_int(db, "cannot look up the key", err, &n,
	                        "SELECT count(*) FROM keys WHERE id = ?1", "t", key_id);
	if (rc == VK_OK && n == 0) {
		vk_seterr(err, "no key with ID %s", key_id);
		rc = VK_ERR_NOTFOUND;
	}
	return rc;
}

vk_rc
vk_key_create(sqlite3 *db, const struct vk_key_spec *spec, int64_t now,
              char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	struct vk_token t;
	vk_rc rc;

	if (spec->role == VK_ROLE_NONE) {
		vk_seterr(err, "role must be owner, operator or viewer");
		return VK_ERR_USAGE;
	}
	if (spec->nusers == 0) {
		vk_seterr(err, "a key needs at least one --user");
		return VK_ERR_USAGE;
	}
	for (size_t i = 0; i < spec->nusers; i++) {
		if (!vk_user_valid(spec->users[i])) {
			vk_seterr(err, "\"%s\" is not a valid Unix user name", spec->users[i]);
			return VK_ERR_USAGE;
		}
	}
	if ((rc = vk_resource_exists(db, spec->resource_type, spec->resource_id, err)) != VK_OK)
		return rc;

	vk_token_generate(&t);
	vk_uuid_format(t.key_id, id_out);
	if ((rc = insert_key(db, id_out, spec->name, spec->created_by, now, spec->expires_at,
	                     spec->protected_key, err)) != VK_OK ||
	    (rc = vk_store_exec(db, "cannot grant", err, NULL,
	                        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                        " VALUES (?1, ?2, ?3, ?4)",
	                        "tttt", id_out, vk_role_name(spec->role), spec->resource_type,
	                        spec->resource_id)) != VK_OK)
		goto out;
	for (size_t i = 0; i < spec->nusers; i++) {
		rc = vk_store_exec(db, "cannot add the user", err, NULL,
		                   "INSERT OR IGNORE INTO key_users (key_id, user) VALUES (?1, ?2)",
		                   "tt", id_out, spec->users[i]);
		if (rc != VK_OK)
			goto out;
	}
	rc = issue(db, &t, id_out, now, token, err);
out:
	vk_token_wipe(&t);
	return rc;
}

/* Latest end of an open rotation window, or 0. */
static vk_rc
open_window(sqlite3 *db, const char *key_id, int64_t now, int64_t *until, char err[VK_ERRLEN])
{
	return vk_store_query_int(db, "cannot read the key's secrets", err, until,
	                          "SELECT coalesce(max(expires_at), 0) FROM secrets"
	                          " WHERE key_id = ?1 AND expires_at > ?2",
	                          "ti", key_id, now);
}

vk_rc
vk_key_rotate(sqlite3 *db, const char *key_id, int64_t grace, int64_t now,
              char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	struct vk_token t;
	int64_t until;
	vk_rc rc;

	if ((rc = vk_key_exists(db, key_id, err)) != VK_OK ||
	    (rc = open_window(db, key_id, now, &until, err)) != VK_OK)
		return rc;
	if (until != 0) {
		char when[32];

		vk_time_format(until, when);
		vk_seterr(err, "a rotation window is open until %s; end it first with --finish",
		          when);
		return VK_ERR_CONFLICT;
	}
	if (grace > 0)
		rc = vk_store_exec(db, "cannot rotate", err, NULL,
		                   "UPDATE secrets SET expires_at = ?2"
		                   " WHERE key_id = ?1 AND expires_at IS NULL",
		                   "ti", key_id, now + grace);
	if (rc == VK_OK)
		rc = vk_store_exec(db, "cannot rotate", err, NULL,
		                   "DELETE FROM secrets WHERE key_id = ?1"
		                   " AND (?2 = 0 OR expires_at <= ?3)",
		                   "tii", key_id, grace, now);
	if (rc != VK_OK)
		return rc;

	vk_uuid_parse(key_id, t.key_id);
	vk_token_new_secret(&t);
	rc = issue(db, &t, key_id, now, token, err);
	vk_token_wipe(&t);
	return rc;
}

vk_rc
vk_key_finish_rotation(sqlite3 *db, const char *key_id, int64_t now, char err[VK_ERRLEN])
{
	int64_t until;
	vk_rc rc;

	if ((rc = vk_key_exists(db, key_id, err)) != VK_OK ||
	    (rc = open_window(db, key_id, now, &until, err)) != VK_OK)
		return rc;
	if (until == 0) {
		vk_seterr(err, "key %s has no open rotation window", key_id);
		return VK_ERR_CONFLICT;
	}
	return vk_store_exec(db, "cannot end the rotation window", err, NULL,
	                     "DELETE FROM secrets WHERE key_id = ?1 AND expires_at IS NOT NULL",
	                     "t", key_id);
}

vk_rc
vk_key_clone(sqlite3 *db, const char *key_id, const char *name, const char *created_by, int64_t now,
             char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	struct vk_token t;
	vk_rc rc;

	if ((rc = vk_key_exists(db, key_id, err)) != VK_OK)
		return rc;
	vk_token_generate(&t);
	vk_uuid_format(t.key_id, id_out);
	if (name != NULL)
		rc = insert_key(db, id_out, name, created_by, now, 0, 0, err);
	else
		rc = vk_store_exec(db, "cannot create the key", err, NULL,
		                   "INSERT INTO keys (id, name, created_at, created_by)"
		                   " SELECT ?1, name, ?2, ?3 FROM keys WHERE id = ?4",
		                   "titt", id_out, now, created_by, key_id);
	if (rc != VK_OK ||
	    (rc = vk_store_exec(db, "cannot copy the grants", err, NULL,
	                        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                        " SELECT ?1, role, resource_type, resource_id FROM grants"
	                        " WHERE key_id = ?2",
	                        "tt", id_out, key_id)) != VK_OK ||
	    (rc = vk_store_exec(db, "cannot copy the users", err, NULL,
	                        "INSERT INTO key_users (key_id, user)"
	                        " SELECT ?1, user FROM key_users WHERE key_id = ?2",
	                        "tt", id_out, key_id)) != VK_OK)
		goto out;
	rc = issue(db, &t, id_out, now, token, err);
out:
	vk_token_wipe(&t);
	return rc;
}
