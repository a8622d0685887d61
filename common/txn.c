/*
 * txn.c - changes to the store, their audit events, and the outbox.
 *
 * Security rules for this file:
 *  1. A replica MUST NOT be changed through a vk_txn: its content comes
 *     from the authority's signed records only.
 *  2. On the authority every change MUST reach the outbox in the same
 *     transaction as the change itself, so that a crash or an unreachable
 *     bus loses nothing; revisions only grow.
 *  3. A standby, and a former authority whose daemon found the authority
 *     lease another's, MUST NOT be changed either: they say who does. A
 *     standby's own certificate is the one change made there.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>

#include "fleet.h"
#include "store.h"
#include "txn.h"

#define DETAIL_MAX 1024

vk_rc
vk_txn_begin(struct vk_txn *t, char err[VK_ERRLEN])
{
	enum vk_fleet_role role;
	vk_rc rc;

	t->authority = 0;
	t->revision = 0;
	if ((rc = vk_store_begin(t->db, err)) != VK_OK)
		return rc;
	if ((rc = vk_fleet_role(t->db, &role, err)) != VK_OK)
		goto fail;
	if (role == VK_FLEET_REPLICA) {
		sqlite3_stmt *st = NULL;
		const char *name = NULL;
		char ignored[VK_ERRLEN];

		/* the authority's name when it is known; the refusal either way */
		if (vk_store_prepare(t->db, "", ignored, &st,
		                     "SELECT value FROM meta WHERE name = '" VK_META_AUTHORITY "'",
		                     "") == VK_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			name = (const char *)sqlite3_column_text(st, 0);
		vk_seterr(err,
		          "this store is a replica of the fleet's authority%s%s; make the change"
		          " there, with keyadm on the authority",
		          name != NULL ? " " : "", name != NULL ? name : "");
		sqlite3_finalize(st);
		rc = VK_ERR_CONFLICT;
		goto fail;
	}
	if (role == VK_FLEET_STANDBY && !t->own_cert) {
		vk_seterr(err,
		          "this store is a standby of the fleet's authority; make the change on"
		          " the authority, or make this one it with keyadm authority promote");
		rc = VK_ERR_CONFLICT;
		goto fail;
	}
	if (role == VK_FLEET_AUTHORITY) {
		sqlite3_stmt *st = NULL;
		char ignored[VK_ERRLEN];

		/* rule 3: a former authority, whose daemon found the lease another's */
		if (vk_store_prepare(t->db, "", ignored, &st,
		                     "SELECT value FROM meta WHERE name = '" VK_META_LEASE_LOST "'",
		                     "") == VK_OK &&
		    sqlite3_step(st) == SQLITE_ROW) {
			vk_seterr(
			    err,
			    "this store is no longer the fleet's authority: the authority lease is"
			    " held by %s",
			    (const char *)sqlite3_column_text(st, 0));
			rc = VK_ERR_CONFLICT;
		}
		sqlite3_finalize(st);
		if (rc != VK_OK)
			goto fail;
	}
	t->authority = role == VK_FLEET_AUTHORITY;
	return VK_OK;
fail:
	vk_store_rollback(t->db);
	return rc;
}

vk_rc
vk_txn_commit(struct vk_txn *t, char err[VK_ERRLEN])
{
	vk_rc rc = vk_store_commit(t->db, err);

	if (rc == VK_OK)
		vk_store_checkpoint(t->db, 1);
	return rc;
}

void
vk_txn_rollback(struct vk_txn *t)
{
	vk_store_rollback(t->db);
}

vk_rc
vk_txn_event(struct vk_txn *t, const char *action, const char *key_id, char err[VK_ERRLEN],
             const char *fmt, ...)
{
	char detail[DETAIL_MAX];
	va_list ap;
	vk_rc rc;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if ((rc = vk_store_exec(t->db, "cannot record the audit event", err, NULL,
	                        "INSERT INTO events (at, actor, effective, action, key_id, detail)"
	                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	                        "ittttt", t->now, t->actor, t->effective, action, key_id,
	                        detail)) != VK_OK ||
	    key_id == NULL)
		return rc;
	/* a key's event is a change of that key: it goes to the fleet with it (rule 2) */
	return vk_txn_changed(t, "key", key_id, err);
}

/* This transaction's revision: taken once, the store's last plus one. */
static vk_rc
revision(struct vk_txn *t, char err[VK_ERRLEN])
{
	vk_rc rc;

	if (t->revision != 0)
		return VK_OK;
	if ((rc = vk_store_query_int(t->db, "cannot read the revision", err, &t->revision,
	                             "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                             " WHERE name = '" VK_META_REVISION "'), 0) + 1",
	                             "")) != VK_OK)
		return rc;
	return vk_store_exec(t->db, "cannot record the revision", err, NULL,
	                     "INSERT INTO meta (name, value) VALUES ('" VK_META_REVISION "', ?1)"
	                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                     "i", t->revision);
}

vk_rc
vk_txn_changed(struct vk_txn *t, const char *kind, const char *id, char err[VK_ERRLEN])
{
	vk_rc rc;

	if (!t->authority)
		return VK_OK;
	if ((rc = revision(t, err)) != VK_OK)
		return rc;
	return vk_store_exec(t->db, "cannot record the change for the fleet", err, NULL,
	                     "INSERT INTO sync_outbox (kind, id, rev) VALUES (?1, ?2, ?3)"
	                     " ON CONFLICT (kind, id) DO UPDATE SET rev = excluded.rev",
	                     "tti", kind, id, t->revision);
}

vk_rc
vk_txn_changed_all(struct vk_txn *t, char err[VK_ERRLEN])
{
	vk_rc rc;

	if (!t->authority)
		return VK_OK;
	if ((rc = revision(t, err)) != VK_OK)
		return rc;
	/* what was deleted is in sync_published only: its tombstones are written again */
	return vk_store_exec(t->db, "cannot record the store for the fleet", err, NULL,
	                     "INSERT INTO sync_outbox (kind, id, rev)"
	                     " SELECT 'organization', id, ?1 FROM organizations"
	                     " UNION SELECT 'location', id, ?1 FROM locations"
	                     " UNION SELECT 'machine', id, ?1 FROM machines"
	                     " UNION SELECT 'key', id, ?1 FROM keys"
	                     " UNION SELECT kind, id, ?1 FROM sync_published"
	                     " WHERE true ON CONFLICT (kind, id) DO UPDATE SET rev = excluded.rev",
	                     "i", t->revision);
}
