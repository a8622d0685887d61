/*
 * fleet.h - a store's place in the fleet (SPEC §8): what a login and
 * keyadm need to know of it.
 *
 * A store is standalone, the fleet's authority (keyadm writes there and
 * viamkey-syncd publishes its changes) or a replica (viamkey-syncd alone
 * writes there, applying the authority's signed records). The role and
 * the replica's heartbeat live in the meta table under the names below.
 */
#ifndef VK_FLEET_H
#define VK_FLEET_H

#include <sqlite3.h>
#include <stdint.h>

#include "vk.h"

enum vk_fleet_role {
	VK_FLEET_STANDALONE,
	VK_FLEET_AUTHORITY,
	VK_FLEET_REPLICA,
};

#define VK_META_ROLE           "fleet_role"     /* "authority" or "replica" */
#define VK_META_REVISION       "fleet_revision" /* the authority's latest revision */
#define VK_META_AUTHORITY      "authority_name" /* the authority's host name */
#define VK_META_HEARTBEAT_REV  "heartbeat_rev"  /* a replica: the last heartbeat's revision, */
#define VK_META_HEARTBEAT_AT   "heartbeat_at"   /* its time on the authority, */
#define VK_META_HEARTBEAT_SEEN "heartbeat_seen" /* and when it arrived here */
#define VK_META_APPLIED_REV    "applied_rev"    /* a replica: the revision acknowledged */
#define VK_META_SYNC_ERROR     "sync_error"     /* a replica: the daemon's last error */

/* The store's role; VK_FLEET_STANDALONE when none is recorded. */
vk_rc vk_fleet_role(sqlite3 *db, enum vk_fleet_role *role, char err[VK_ERRLEN]);

/*
 * Whether a replica's last heartbeat arrived more than max_staleness
 * seconds before now (or never did). 0 for any other store, and whenever
 * max_staleness is 0.
 */
vk_rc vk_fleet_stale(sqlite3 *db, int64_t now, int64_t max_staleness, int *stale,
                     char err[VK_ERRLEN]);

#endif
