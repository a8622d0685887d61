/*
 * identity.c - the bus identities in the authority's store (identity.h).
 *
 * Security rules for this file:
 *  1. A machine's JWT names only its own scopes, as the tree has them in
 *     the transaction that issues it (busid.h).
 *  2. A JWT that ends is revoked by its user key and a time: JWTs of that
 *     key issued until then end, later ones stand. A moved machine's new
 *     JWT is issued after the time its older one is revoked at.
 *  3. The seeds are used from the caller's sodium_malloc() memory and the
 *     secret keys made from them are wiped before returning.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "identity.h"
#include "jwt.h"
#include "store.h"

static vk_rc
meta_nkey(sqlite3 *db, const char *name, char out[VK_NKEY_PUBLIC_LEN + 1], char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	vk_rc rc;

	out[0] = '\0';
	if ((rc = vk_store_prepare(db, "cannot read the bus's keys", err, &st,
	                           "SELECT value FROM meta WHERE name = ?1", "t", name)) != VK_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == VK_NKEY_PUBLIC_LEN)
		memcpy(out, sqlite3_column_text(st, 0), VK_NKEY_PUBLIC_LEN + 1);
	sqlite3_finalize(st);
	if (out[0] == '\0') {
		vk_seterr(err, "the bus was not set up by keyadm bus init");
		return VK_ERR_NOTFOUND;
	}
	return VK_OK;
}

vk_rc
vk_identity_ids(sqlite3 *db, struct vk_bus_ids *ids, char err[VK_ERRLEN])
{
	vk_rc rc;

	if ((rc = meta_nkey(db, VK_META_BUS_OPERATOR, ids->operator_key, err)) != VK_OK ||
	    (rc = meta_nkey(db, VK_META_BUS_OPERATOR_SIGNING, ids->operator_signing, err)) !=
	        VK_OK ||
	    (rc = meta_nkey(db, VK_META_BUS_SYSTEM, ids->system, err)) != VK_OK ||
	    (rc = meta_nkey(db, VK_META_BUS_VK, ids->vk, err)) != VK_OK ||
	    (rc = meta_nkey(db, VK_META_BUS_MACHINES, ids->machines, err)) != VK_OK)
		return rc;
	return meta_nkey(db, VK_META_BUS_MACHINES_SIGNING, ids->machines_signing, err);
}

void
vk_identity_keypair(const unsigned char seed[32], unsigned char pk[32], unsigned char *sk)
{
	crypto_sign_seed_keypair(pk, sk, seed);
}

vk_rc
vk_identity_issue(struct vk_txn *t, const struct vk_bus_keys *k, const char *bucket,
                  const char *machine, const char *user, char **jwt, char err[VK_ERRLEN])
{
	char location[VK_UUID_STRLEN + 1] = "", org[VK_UUID_STRLEN + 1] = "", *claims = NULL,
	                               *token = NULL;
	unsigned char pk[32], *sk = NULL;
	struct vk_bus_ids ids;
	int64_t older = -1, iat;
	sqlite3_stmt *st;
	int other = 0;
	vk_rc rc;

	if (jwt != NULL)
		*jwt = NULL;
	if ((rc = vk_identity_ids(t->db, &ids, err)) != VK_OK)
		return rc;
	if ((rc = vk_store_prepare(t->db, "cannot read the machine", err, &st,
	                           "SELECT m.location_id, l.org_id, i.issued_at, i.user_key = ?2"
	                           " FROM machines m JOIN locations l ON l.id = m.location_id"
	                           " LEFT JOIN machine_identities i ON i.machine_id = m.id"
	                           " WHERE m.id = ?1",
	                           "tt", machine, user)) != VK_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(location, sizeof location, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(org, sizeof org, "%s", (const char *)sqlite3_column_text(st, 1));
		if (sqlite3_column_type(st, 2) == SQLITE_INTEGER) {
			older = sqlite3_column_int64(st, 2);
			other = sqlite3_column_int(st, 3) == 0;
		}
	}
	sqlite3_finalize(st);
	/* another key the machine had ends now, whatever the machine acknowledges */
	if (other && (rc = vk_store_exec(t->db, "cannot record the revocation", err, NULL,
	                                 "INSERT INTO bus_revocations (user_key, at) SELECT"
	                                 " user_key, ?2 FROM machine_identities WHERE"
	                                 " machine_id = ?1 ON CONFLICT (user_key) DO UPDATE SET"
	                                 " at = excluded.at, machine_id = NULL, after_rev = NULL",
	                                 "ti", machine, t->now)) != VK_OK)
		return rc;
	if (other)
		older = -1;
	if (location[0] == '\0') {
		vk_seterr(err, "machine %s does not exist", machine);
		return VK_ERR_NOTFOUND;
	}
	/* rule 2: after the time the older JWT is revoked at */
	iat = older >= t->now ? older + 1 : t->now;
	rc = VK_ERR_NOMEM;
	vk_seterr(err, "out of memory");
	if ((sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL ||
	    (claims = vk_busid_machine(bucket, machine, location, org, ids.machines)) == NULL)
		goto out;
	vk_identity_keypair(k->seed[VK_BUS_MACHINES_SIGNING], pk, sk);
	if ((token = vk_jwt_encode(sk, VK_NKEY_ACCOUNT, user, machine, iat, 0, claims)) == NULL)
		goto out;
	if ((rc = vk_store_exec(
	         t->db, "cannot record the machine's bus identity", err, NULL,
	         "INSERT INTO machine_identities (machine_id, user_key, jwt, issued_at)"
	         " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (machine_id) DO UPDATE SET"
	         " user_key = excluded.user_key, jwt = excluded.jwt,"
	         " issued_at = excluded.issued_at",
	         "ttti", machine, user, token, iat)) != VK_OK ||
	    (rc = vk_txn_changed(t, "machine", machine, err)) != VK_OK)
		goto out;
	/* rule 2: the older JWT, once the machine acknowledged the record that carries this one */
	if (older >= 0 &&
	    (rc = vk_store_exec(t->db, "cannot record the revocation", err, NULL,
	                        "INSERT INTO bus_revocations (user_key, at, machine_id, after_rev)"
	                        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_key) DO UPDATE SET"
	                        " at = excluded.at, machine_id = excluded.machine_id,"
	                        " after_rev = excluded.after_rev",
	                        "titi", user, iat - 1, machine, t->revision)) != VK_OK)
		goto out;
	rc = vk_txn_event(t, "machine.identity", NULL, err, "machine %s, bus user %s", machine,
	                  user);
	if (rc == VK_OK && jwt != NULL) {
		*jwt = token;
		token = NULL;
	}
out:
	if (sk != NULL)
		sodium_free(sk);
	free(claims);
	free(token);
	return rc;
}

vk_rc
vk_identity_revoke(struct vk_txn *t, const char *user, char err[VK_ERRLEN])
{
	return vk_store_exec(t->db, "cannot record the revocation", err, NULL,
	                     "INSERT INTO bus_revocations (user_key, at) VALUES (?1, ?2)"
	                     " ON CONFLICT (user_key) DO UPDATE SET at = max(at, excluded.at),"
	                     " machine_id = NULL, after_rev = NULL",
	                     "ti", user, t->now);
}

vk_rc
vk_identity_machines_jwt(sqlite3 *db, const struct vk_bus_keys *k, const char *bucket, int64_t now,
                         char **jwt, char **claims, char err[VK_ERRLEN])
{
	struct vk_busid_revocation *rev = NULL;
	unsigned char pk[32], *sk = NULL;
	struct vk_bus_ids ids;
	char(*users)[VK_NKEY_PUBLIC_LEN + 1] = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	vk_rc rc;
	int step;

	*jwt = *claims = NULL;
	if ((rc = vk_identity_ids(db, &ids, err)) != VK_OK)
		return rc;
	/* in force: at once, or once the machine acknowledged what replaced it, or is gone */
	if ((rc = vk_store_prepare(
	         db, "cannot read the revocations", err, &st,
	         "SELECT r.user_key, r.at FROM bus_revocations r WHERE r.after_rev IS NULL"
	         " OR NOT EXISTS (SELECT 1 FROM machines WHERE id = r.machine_id)"
	         " OR coalesce((SELECT revision FROM sync_machines WHERE machine_id = "
	         "r.machine_id),"
	         " -1) >= r.after_rev ORDER BY r.user_key",
	         "")) != VK_OK)
		return rc;
	rc = VK_ERR_NOMEM;
	vk_seterr(err, "out of memory");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			size_t want = cap ? 2 * cap : 64;
			void *r = realloc(rev, want * sizeof *rev), *u;

			if (r == NULL)
				goto out;
			rev = r;
			if ((u = realloc(users, want * sizeof *users)) == NULL)
				goto out;
			users = u;
			cap = want;
		}
		snprintf(users[n], sizeof users[n], "%s", (const char *)sqlite3_column_text(st, 0));
		rev[n].at = sqlite3_column_int64(st, 1);
		n++;
	}
	if (step != SQLITE_DONE) {
		rc = vk_store_error(db, "cannot read the revocations", err);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		rev[i].user = users[i];
	if ((*claims = vk_busid_machines(bucket, ids.vk, ids.machines_signing, rev, n)) == NULL ||
	    (sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL)
		goto out;
	vk_identity_keypair(k->seed[VK_BUS_OPERATOR_SIGNING], pk, sk);
	if ((*jwt = vk_jwt_encode(sk, VK_NKEY_OPERATOR, ids.machines, "MACHINES", now, 0,
	                          *claims)) == NULL)
		goto out;
	rc = VK_OK;
out:
	sqlite3_finalize(st);
	if (sk != NULL)
		sodium_free(sk);
	free(rev);
	free(users);
	if (rc != VK_OK) {
		free(*claims);
		*claims = NULL;
	}
	return rc;
}

/* Whether jwt's "nats" claims are exactly nats (a JWT that does not decode: no). */
static int
claims_are(const char *jwt, const char *nats)
{
	char *claims = NULL, *at;
	size_t n = strlen(nats);
	int same;

	if (vk_jwt_decode(jwt, strlen(jwt), &claims) != 0)
		return 0;
	/* vk_jwt_encode() writes "nats" last: the claims end with "nats":NATS} */
	at = strstr(claims, "\"nats\":");
	same = at != NULL && strlen(at) == n + 8 && memcmp(at + 7, nats, n) == 0;
	free(claims);
	return same;
}

vk_rc
vk_identity_refresh(struct vk_txn *t, const struct vk_bus_keys *k, const char *bucket, int *n,
                    char err[VK_ERRLEN])
{
	char(*stale)[2][VK_NKEY_PUBLIC_LEN + 1] = NULL;
	struct vk_bus_ids ids;
	size_t count = 0, cap = 0;
	sqlite3_stmt *st;
	vk_rc rc;
	int step;

	*n = 0;
	if ((rc = vk_identity_ids(t->db, &ids, err)) != VK_OK ||
	    (rc = vk_store_prepare(t->db, "cannot read the bus identities", err, &st,
	                           "SELECT i.machine_id, i.user_key, i.jwt, m.location_id, l.org_id"
	                           " FROM machine_identities i JOIN machines m ON m.id ="
	                           " i.machine_id JOIN locations l ON l.id = m.location_id",
	                           "")) != VK_OK)
		return rc;
	rc = VK_OK;
	while (rc == VK_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *machine = (const char *)sqlite3_column_text(st, 0);
		const char *user = (const char *)sqlite3_column_text(st, 1);
		char *want =
		    vk_busid_machine(bucket, machine, (const char *)sqlite3_column_text(st, 3),
		                     (const char *)sqlite3_column_text(st, 4), ids.machines);

		if (want == NULL || strlen(machine) > VK_NKEY_PUBLIC_LEN ||
		    strlen(user) > VK_NKEY_PUBLIC_LEN) {
			rc = VK_ERR_NOMEM;
		} else if (!claims_are((const char *)sqlite3_column_text(st, 2), want)) {
			void *r = count < cap
			              ? stale
			              : realloc(stale, (cap = 2 * cap + 16) * sizeof *stale);

			if (r == NULL) {
				rc = VK_ERR_NOMEM;
			} else {
				stale = r;
				snprintf(stale[count][0], sizeof stale[count][0], "%s", machine);
				snprintf(stale[count][1], sizeof stale[count][1], "%s", user);
				count++;
			}
		}
		free(want);
	}
	sqlite3_finalize(st);
	if (rc != VK_OK)
		vk_seterr(err, "out of memory");
	/* each issued again for its own user key: the older JWT ends once the machine has the new
	 */
	for (size_t i = 0; rc == VK_OK && i < count; i++)
		rc = vk_identity_issue(t, k, bucket, stale[i][0], stale[i][1], NULL, err);
	free(stale);
	if (rc == VK_OK)
		*n = (int)count;
	return rc;
}

vk_rc
vk_identity_vk_jwt(sqlite3 *db, const struct vk_bus_keys *k, const char *bucket, int64_t now,
                   char **jwt, char **claims, char err[VK_ERRLEN])
{
	unsigned char pk[32], *sk = NULL;
	struct vk_bus_ids ids;
	vk_rc rc;

	*jwt = *claims = NULL;
	if ((rc = vk_identity_ids(db, &ids, err)) != VK_OK)
		return rc;
	vk_seterr(err, "out of memory");
	if ((*claims = vk_busid_vk(bucket, ids.machines)) == NULL ||
	    (sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL)
		goto out;
	vk_identity_keypair(k->seed[VK_BUS_OPERATOR_SIGNING], pk, sk);
	*jwt = vk_jwt_encode(sk, VK_NKEY_OPERATOR, ids.vk, "VK", now, 0, *claims);
out:
	if (sk != NULL)
		sodium_free(sk);
	if (*jwt == NULL) {
		free(*claims);
		*claims = NULL;
		return VK_ERR_NOMEM;
	}
	return VK_OK;
}
