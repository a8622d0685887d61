/*
 * keys.c - keys, their secrets, grants and users.
 *
 * Security rules for this file:
 *  1. Secrets come from vk_token_generate()/vk_token_new_secret() only and
 *     reach the store only as (alg, salt, verifier).
 *  2. Every struct vk_token MUST be wiped on every path out.
 *  3. A key never has more than two live secrets: the current one and, in
 *     a rotation window, the previous one.
 *  4. A key keeps at least one grant and one user; a protected key is
 *     neither disabled nor deleted.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "keys.h"
#include "model.h"
#include "store.h"
#include "tree.h"
#include "verifier.h"

static vk_rc
insert_secret(sqlite3 *db, const struct vk_token *tok, const char *key_id, int64_t now,
              char err[VK_ERRLEN])
{
	unsigned char salt[VK_SALT_BYTES], verifier[VK_VERIFY_BYTES];
	vk_rc rc;

	vk_verifier_make(tok, salt, verifier);
	rc = vk_store_exec(db, "cannot store the secret's verifier", err, NULL,
	                   "INSERT INTO secrets (key_id, alg, salt, verifier, created_at)"
	                   " VALUES (?1, ?2, ?3, ?4, ?5)",
	                   "ttbbi", key_id, VK_ALG_CURRENT, salt, sizeof salt, verifier,
	                   sizeof verifier, now);
	sodium_memzero(verifier, sizeof verifier);
	return rc;
}

/* Stores tok's verifier for key_id and, once stored, writes the token out. */
static vk_rc
issue(struct vk_txn *t, const struct vk_token *tok, const char *key_id,
      char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	vk_rc rc = insert_secret(t->db, tok, key_id, t->now, err);

	if (rc == VK_OK)
		vk_token_format(tok, token);
	return rc;
}

static vk_rc
check_name(const char *name, char err[VK_ERRLEN])
{
	if (vk_name_valid(name))
		return VK_OK;
	vk_seterr(err, "a key name must be 1-%d characters with no control or format characters",
	          VK_NAME_MAX);
	return VK_ERR_USAGE;
}

static vk_rc
check_user(const char *user, char err[VK_ERRLEN])
{
	if (vk_user_valid(user))
		return VK_OK;
	vk_seterr(err, "\"%s\" is not a valid Unix user name", user);
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
vk_key_create(struct vk_txn *t, const struct vk_key_spec *spec, char id_out[VK_UUID_STRLEN + 1],
              char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	struct vk_token tok;
	vk_rc rc;

	if (spec->role == VK_ROLE_NONE) {
		vk_seterr(err, "role must be owner, operator or viewer");
		return VK_ERR_USAGE;
	}
	if (spec->nusers == 0) {
		vk_seterr(err, "a key needs at least one --user");
		return VK_ERR_USAGE;
	}
	for (size_t i = 0; i < spec->nusers; i++)
		if ((rc = check_user(spec->users[i], err)) != VK_OK)
			return rc;
	if ((rc = check_name(spec->name, err)) != VK_OK ||
	    (rc = vk_resource_exists(t->db, spec->resource_type, spec->resource_id, err)) != VK_OK)
		return rc;

	vk_token_generate(&tok);
	vk_uuid_format(tok.key_id, id_out);
	if ((rc = vk_store_exec(t->db, "cannot create the key", err, NULL,
	                        "INSERT INTO keys (id, name, created_at, created_by, expires_at,"
	                        " protected) VALUES (?1, ?2, ?3, ?4, nullif(?5, 0), ?6)",
	                        "ttitii", id_out, spec->name, t->now, t->actor, spec->expires_at,
	                        (int64_t)(spec->protected_key != 0))) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot grant", err, NULL,
	                        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                        " VALUES (?1, ?2, ?3, ?4)",
	                        "tttt", id_out, vk_role_name(spec->role), spec->resource_type,
	                        spec->resource_id)) != VK_OK)
		goto out;
	for (size_t i = 0; i < spec->nusers; i++) {
		rc = vk_store_exec(t->db, "cannot add the user", err, NULL,
		                   "INSERT OR IGNORE INTO key_users (key_id, user) VALUES (?1, ?2)",
		                   "tt", id_out, spec->users[i]);
		if (rc != VK_OK)
			goto out;
	}
	if ((rc = issue(t, &tok, id_out, token, err)) == VK_OK)
		rc = vk_txn_event(t, "key.create", id_out, err, "\"%s\": %s on %s %s%s", spec->name,
		                  vk_role_name(spec->role), spec->resource_type, spec->resource_id,
		                  spec->protected_key ? ", protected" : "");
out:
	vk_token_wipe(&tok);
	return rc;
}

/* Latest end of an open rotation window, or 0. */
static vk_rc
open_window(struct vk_txn *t, const char *key_id, int64_t *until, char err[VK_ERRLEN])
{
	return vk_store_query_int(t->db, "cannot read the key's secrets", err, until,
	                          "SELECT coalesce(max(s.expires_at), 0) FROM secrets s"
	                          " WHERE s.key_id = ?1 AND " VK_SQL_SECRET_IN_WINDOW("s", "?2"),
	                          "ti", key_id, t->now);
}

vk_rc
vk_key_rotate(struct vk_txn *t, const char *key_id, int64_t grace, char token[VK_TOKEN_LEN + 1],
              char err[VK_ERRLEN])
{
	char when[VK_RFC3339_LEN + 1];
	struct vk_token tok;
	int64_t until;
	vk_rc rc;

	if ((rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = open_window(t, key_id, &until, err)) != VK_OK)
		return rc;
	if (until != 0) {
		vk_time_format(until, when);
		vk_seterr(err, "a rotation window is open until %s; end it first with --finish",
		          when);
		return VK_ERR_CONFLICT;
	}
	if (grace > 0)
		rc = vk_store_exec(t->db, "cannot rotate", err, NULL,
		                   "UPDATE secrets SET expires_at = ?2"
		                   " WHERE key_id = ?1 AND expires_at IS NULL",
		                   "ti", key_id, t->now + grace);
	if (rc == VK_OK)
		rc = vk_store_exec(t->db, "cannot rotate", err, NULL,
		                   "DELETE FROM secrets WHERE key_id = ?1"
		                   " AND (?2 = 0 OR expires_at <= ?3)",
		                   "tii", key_id, grace, t->now);
	if (rc != VK_OK)
		return rc;

	vk_uuid_parse(key_id, tok.key_id);
	vk_token_new_secret(&tok);
	rc = issue(t, &tok, key_id, token, err);
	vk_token_wipe(&tok);
	if (rc != VK_OK)
		return rc;
	vk_time_format(t->now + grace, when);
	return grace == 0
	           ? vk_txn_event(t, "key.rotate", key_id, err, "old secret revoked at once")
	           : vk_txn_event(t, "key.rotate", key_id, err, "old secret valid until %s", when);
}

vk_rc
vk_key_finish_rotation(struct vk_txn *t, const char *key_id, char err[VK_ERRLEN])
{
	int64_t until;
	vk_rc rc;

	if ((rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = open_window(t, key_id, &until, err)) != VK_OK)
		return rc;
	if (until == 0) {
		vk_seterr(err, "key %s has no open rotation window", key_id);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_exec(t->db, "cannot end the rotation window", err, NULL,
	                        "DELETE FROM secrets WHERE key_id = ?1 AND expires_at IS NOT NULL",
	                        "t", key_id)) != VK_OK)
		return rc;
	return vk_txn_event(t, "key.rotate-finish", key_id, err, "old secret revoked");
}

vk_rc
vk_key_clone(struct vk_txn *t, const char *key_id, const char *name,
             char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	struct vk_token tok;
	vk_rc rc;

	if ((rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (name != NULL && (rc = check_name(name, err)) != VK_OK))
		return rc;
	vk_token_generate(&tok);
	vk_uuid_format(tok.key_id, id_out);
	if ((rc = vk_store_exec(t->db, "cannot create the key", err, NULL,
	                        "INSERT INTO keys (id, name, created_at, created_by)"
	                        " SELECT ?1, coalesce(?2, name), ?3, ?4 FROM keys WHERE id = ?5",
	                        "ttitt", id_out, name, t->now, t->actor, key_id)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot copy the grants", err, NULL,
	                        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                        " SELECT ?1, role, resource_type, resource_id FROM grants"
	                        " WHERE key_id = ?2",
	                        "tt", id_out, key_id)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot copy the users", err, NULL,
	                        "INSERT INTO key_users (key_id, user)"
	                        " SELECT ?1, user FROM key_users WHERE key_id = ?2",
	                        "tt", id_out, key_id)) != VK_OK)
		goto out;
	if ((rc = issue(t, &tok, id_out, token, err)) == VK_OK)
		rc = vk_txn_event(t, "key.clone", id_out, err, "cloned from %s", key_id);
out:
	vk_token_wipe(&tok);
	return rc;
}

vk_rc
vk_key_grant(struct vk_txn *t, const char *key_id, vk_role role, const char *type,
             const char *resource_id, char err[VK_ERRLEN])
{
	vk_rc rc;

	if (role == VK_ROLE_NONE) {
		vk_seterr(err, "role must be owner, operator or viewer");
		return VK_ERR_USAGE;
	}
	if ((rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = vk_resource_exists(t->db, type, resource_id, err)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot grant", err, NULL,
	                        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_id, resource_type,"
	                        " resource_id) DO UPDATE SET role = excluded.role",
	                        "tttt", key_id, vk_role_name(role), type, resource_id)) != VK_OK)
		return rc;
	return vk_txn_event(t, "key.grant", key_id, err, "%s on %s %s", vk_role_name(role), type,
	                    resource_id);
}

/* After a removal: a key keeps at least one grant and one user (delete the key instead). */
static vk_rc
refuse_last(struct vk_txn *t, const char *key_id, const char *count_sql, const char *what,
            char err[VK_ERRLEN])
{
	int64_t left;
	vk_rc rc;

	if ((rc = vk_store_query_int(t->db, "cannot count", err, &left, count_sql, "t", key_id)) !=
	    VK_OK)
		return rc;
	if (left > 0)
		return VK_OK;
	vk_seterr(err, "that is key %s's only %s; add another first, or delete the key", key_id,
	          what);
	return VK_ERR_CONFLICT;
}

vk_rc
vk_key_ungrant(struct vk_txn *t, const char *key_id, const char *type, const char *resource_id,
               char err[VK_ERRLEN])
{
	int changed;
	vk_rc rc;

	if ((rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot remove the grant", err, &changed,
	                        "DELETE FROM grants WHERE key_id = ?1 AND resource_type = ?2"
	                        " AND resource_id = ?3",
	                        "ttt", key_id, type, resource_id)) != VK_OK)
		return rc;
	if (changed == 0) {
		vk_seterr(err, "key %s has no grant on %s %s", key_id, type, resource_id);
		return VK_ERR_NOTFOUND;
	}
	if ((rc = refuse_last(t, key_id, "SELECT count(*) FROM grants WHERE key_id = ?1", "grant",
	                      err)) != VK_OK)
		return rc;
	return vk_txn_event(t, "key.ungrant", key_id, err, "%s %s", type, resource_id);
}

vk_rc
vk_key_add_user(struct vk_txn *t, const char *key_id, const char *user, char err[VK_ERRLEN])
{
	int changed;
	vk_rc rc;

	if ((rc = check_user(user, err)) != VK_OK ||
	    (rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot add the user", err, &changed,
	                        "INSERT OR IGNORE INTO key_users (key_id, user) VALUES (?1, ?2)",
	                        "tt", key_id, user)) != VK_OK)
		return rc;
	if (!changed)
		return VK_OK;
	return vk_txn_event(t, "key.add-user", key_id, err, "%s", user);
}

vk_rc
vk_key_remove_user(struct vk_txn *t, const char *key_id, const char *user, char err[VK_ERRLEN])
{
	int changed;
	vk_rc rc;

	if ((rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot remove the user", err, &changed,
	                        "DELETE FROM key_users WHERE key_id = ?1 AND user = ?2", "tt",
	                        key_id, user)) != VK_OK)
		return rc;
	if (changed == 0) {
		vk_seterr(err, "user %s is not one of key %s's users", user, key_id);
		return VK_ERR_NOTFOUND;
	}
	if ((rc = refuse_last(t, key_id, "SELECT count(*) FROM key_users WHERE key_id = ?1", "user",
	                      err)) != VK_OK)
		return rc;
	return vk_txn_event(t, "key.remove-user", key_id, err, "%s", user);
}

static const struct change {
	const char *action;
	const char *sql; /* ?1 key ID, ?2 name */
	int refuse_protected;
} changes[] = {
    [VK_KEY_RENAME] = {"key.rename", "UPDATE keys SET name = ?2 WHERE id = ?1", 0},
    [VK_KEY_DISABLE] = {"key.disable", "UPDATE keys SET disabled = 1 WHERE id = ?1", 1},
    [VK_KEY_ENABLE] = {"key.enable", "UPDATE keys SET disabled = 0 WHERE id = ?1", 0},
    [VK_KEY_PROTECT] = {"key.protect", "UPDATE keys SET protected = 1 WHERE id = ?1", 0},
    [VK_KEY_UNPROTECT] = {"key.unprotect", "UPDATE keys SET protected = 0 WHERE id = ?1", 0},
    [VK_KEY_DELETE] = {"key.delete", "DELETE FROM keys WHERE id = ?1", 1},
    [VK_KEY_MARK_BREAK_GLASS] = {"key.mark-break-glass",
                                 "UPDATE keys SET break_glass = 1 WHERE id = ?1", 0},
    [VK_KEY_UNMARK_BREAK_GLASS] = {"key.unmark-break-glass",
                                   "UPDATE keys SET break_glass = 0 WHERE id = ?1", 0},
};

vk_rc
vk_key_change(struct vk_txn *t, const char *key_id, enum vk_key_change change, const char *name,
              char err[VK_ERRLEN])
{
	const struct change *c = &changes[change];
	int64_t protected_key;
	vk_rc rc;

	if ((change == VK_KEY_RENAME && (rc = check_name(name, err)) != VK_OK) ||
	    (rc = vk_key_exists(t->db, key_id, err)) != VK_OK ||
	    (rc = vk_store_query_int(t->db, "cannot read the key", err, &protected_key,
	                             "SELECT protected FROM keys WHERE id = ?1", "t", key_id)) !=
	        VK_OK)
		return rc;
	if (c->refuse_protected && protected_key) {
		vk_seterr(err, "key %s is protected; run keyadm keys unprotect --key-id %s first",
		          key_id, key_id);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_exec(t->db, "cannot change the key", err, NULL, c->sql, "tt", key_id,
	                        name)) != VK_OK)
		return rc;
	return change == VK_KEY_RENAME ? vk_txn_event(t, c->action, key_id, err, "to \"%s\"", name)
	                               : vk_txn_event(t, c->action, key_id, err, "%s", "");
}
