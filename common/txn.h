/*
 * txn.h - a change to the store: one BEGIN IMMEDIATE transaction, the
 * audit events that describe it, and who made it.
 *
 * Every change keyadm makes runs between vk_txn_begin() and
 * vk_txn_commit(): either all of it and its events are stored, or none.
 * The operations of tree.h and keys.h run inside one and record their own
 * events and, through vk_txn_changed(), what the fleet must publish.
 */
#ifndef VK_TXN_H
#define VK_TXN_H

#include <sqlite3.h>
#include <stdint.h>

#include "vk.h"

struct vk_txn {
	sqlite3 *db;
	const char *actor;     /* the person who asked: login or sudo user */
	const char *effective; /* the user it ran as (keyadm always names it), or NULL */
	int64_t now;
	int own_cert; /* a standby's change of its own certificate, which it may make */
	/* set by vk_txn_begin() */
	int authority;    /* the store is the fleet's authority */
	int64_t revision; /* this change's revision there, once vk_txn_changed() gave it one */
};

/*
 * BEGIN IMMEDIATE, waiting up to the connection's busy timeout. A replica
 * is refused (VK_ERR_CONFLICT, naming its authority): only viamkey-syncd
 * writes there; so is a standby, but for own_cert.
 */
vk_rc vk_txn_begin(struct vk_txn *t, char err[VK_ERRLEN]);

/* COMMIT (rolling back if it fails), then vk_store_checkpoint(), emptying the log. */
vk_rc vk_txn_commit(struct vk_txn *t, char err[VK_ERRLEN]);

void vk_txn_rollback(struct vk_txn *t);

/*
 * Appends one audit event: action "<object>.<verb>", the key it concerns or
 * NULL, and detail. An event on a key also records the key's change for the
 * fleet (vk_txn_changed), so that no key operation can forget it.
 */
vk_rc vk_txn_event(struct vk_txn *t, const char *action, const char *key_id, char err[VK_ERRLEN],
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/*
 * On the authority: records in the outbox that an "organization",
 * "location", "machine" or "key" changed (or went) in this transaction,
 * under this change's revision (the store's revision plus one, taken once
 * per transaction). Nothing on any other store.
 */
vk_rc vk_txn_changed(struct vk_txn *t, const char *kind, const char *id, char err[VK_ERRLEN]);

/*
 * vk_txn_changed() for every organization, location, machine and key in
 * the store, and for every one deleted since the store became the
 * authority (whose tombstones are then written again).
 */
vk_rc vk_txn_changed_all(struct vk_txn *t, char err[VK_ERRLEN]);

#endif
