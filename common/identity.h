/*
 * identity.h - the authority's record of the fleet's bus identities (SPEC
 * §9): the store's side of busid.h.
 *
 * After `keyadm bus init`, meta holds the public nkeys of the operator, its
 * signing key, and the accounts (VK_META_BUS_*), and the MACHINES JWT last
 * sent to the bus. machine_identities holds each joined machine's user key
 * and its current JWT; bus_revocations the user keys whose JWTs end (a
 * deleted machine's, by a trigger; a used-up or revoked join token's; a
 * moved machine's older JWT, once the machine has acknowledged the move).
 */
#ifndef VK_IDENTITY_H
#define VK_IDENTITY_H

#include <sqlite3.h>
#include <stdint.h>

#include "busid.h"
#include "txn.h"
#include "vk.h"

#define VK_META_BUS_OPERATOR         "bus_operator"
#define VK_META_BUS_OPERATOR_SIGNING "bus_operator_signing"
#define VK_META_BUS_SYSTEM           "bus_system"
#define VK_META_BUS_VK               "bus_vk"
#define VK_META_BUS_MACHINES         "bus_machines"
#define VK_META_BUS_MACHINES_SIGNING "bus_machines_signing"
#define VK_META_BUS_SENT             "bus_machines_sent" /* the MACHINES claims on the bus */
#define VK_META_BUS_VK_SENT          "bus_vk_sent"       /* the VK claims sent to the bus */

/* The public nkeys of a bus that keyadm bus init made. */
struct vk_bus_ids {
	char operator_key[VK_NKEY_PUBLIC_LEN + 1], operator_signing[VK_NKEY_PUBLIC_LEN + 1];
	char system[VK_NKEY_PUBLIC_LEN + 1], vk[VK_NKEY_PUBLIC_LEN + 1];
	char machines[VK_NKEY_PUBLIC_LEN + 1], machines_signing[VK_NKEY_PUBLIC_LEN + 1];
};

/* Reads them from meta: VK_OK, or VK_ERR_NOTFOUND when the bus was not made by keyadm bus init. */
vk_rc vk_identity_ids(sqlite3 *db, struct vk_bus_ids *ids, char err[VK_ERRLEN]);

/* libsodium's key pair of the 32-byte seed; sk is 64 bytes (sodium_malloc()ed by the caller). */
void vk_identity_keypair(const unsigned char seed[32], unsigned char pk[32], unsigned char *sk);

/*
 * In t (the authority's): the machine's bus identity for user (a public
 * user nkey) becomes a JWT of its scopes, signed with MACHINES' signing
 * key; the machine's record is published again, carrying it (record.h). An
 * older JWT of the machine is revoked once the machine has acknowledged
 * this change. *jwt (malloc()ed) is the new JWT when jwt is not NULL.
 */
vk_rc vk_identity_issue(struct vk_txn *t, const struct vk_bus_keys *k, const char *bucket,
                        const char *machine, const char *user, char **jwt, char err[VK_ERRLEN]);

/* In t: the user's JWTs issued until now end (a join token's user, say). */
vk_rc vk_identity_revoke(struct vk_txn *t, const char *user, char err[VK_ERRLEN]);

/*
 * The MACHINES account's JWT as it should be on the bus now, every
 * revocation in force in it, signed with the operator's signing key; and
 * its claims, to compare with VK_META_BUS_SENT. Both malloc()ed.
 */
vk_rc vk_identity_machines_jwt(sqlite3 *db, const struct vk_bus_keys *k, const char *bucket,
                               int64_t now, char **jwt, char **claims, char err[VK_ERRLEN]);

/*
 * In t: every machine whose JWT does not hold the claims this viamkey
 * gives it (an older viamkey issued it without a permission) gets one
 * issued again, as vk_identity_issue() does, for the same user key; *n
 * says how many.
 */
vk_rc vk_identity_refresh(struct vk_txn *t, const struct vk_bus_keys *k, const char *bucket, int *n,
                          char err[VK_ERRLEN]);

/*
 * The VK account's JWT as this viamkey makes it (busid.h), signed with the
 * operator's signing key, and its claims, to compare with
 * VK_META_BUS_VK_SENT. Both malloc()ed.
 */
vk_rc vk_identity_vk_jwt(sqlite3 *db, const struct vk_bus_keys *k, const char *bucket, int64_t now,
                         char **jwt, char **claims, char err[VK_ERRLEN]);

#endif
