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
	VK_FLEET_STANDBY, /* a full copy of the authority's, ready to be promoted (SPEC §10) */
};

#define VK_META_ROLE             "fleet_role"       /* "authority" or "replica" */
#define VK_META_REVISION         "fleet_revision"   /* the authority's latest revision */
#define VK_META_AUTHORITY        "authority_name"   /* the authority's host name */
#define VK_META_HEARTBEAT_REV    "heartbeat_rev"    /* a replica: the last heartbeat's revision, */
#define VK_META_HEARTBEAT_AT     "heartbeat_at"     /* its time on the authority, */
#define VK_META_HEARTBEAT_SEEN   "heartbeat_seen"   /* and when it arrived here */
#define VK_META_HEARTBEAT_SEQ    "heartbeat_seq"    /* its counter (authorities that count them), */
#define VK_META_HEARTBEAT_EPOCH  "heartbeat_epoch"  /* the epoch it was signed in, */
#define VK_META_HEARTBEAT_FORMAT "heartbeat_format" /* and the format its authority publishes */
#define VK_META_APPLIED_REV      "applied_rev"      /* a replica: the revision acknowledged */
#define VK_META_SYNC_ERROR       "sync_error"       /* a replica: the daemon's last error */
#define VK_META_HB_BOOT          "heartbeat_boot"   /* the authority: its daemon's starts */
#define VK_META_BUCKET_MADE      "bucket_made" /* the authority: when it (re)created the bucket */
#define VK_META_AUTHORITY_EPOCH  "authority_epoch" /* the authority (or standby): its epoch, */
#define VK_META_AUTHORITY_CERT   "authority_cert"  /* and its signing key's certificate */
#define VK_META_ROOT_VER         "authority_root_version" /* the root version it holds, */
#define VK_META_ROOT_ORG         "authority_root_origin" /* and version 1's key: machines' root_key */
#define VK_META_LEASE_LOST       "lease_lost"      /* a former authority: who holds the lease */
#define VK_META_PROMOTE          "promote_request" /* a standby: "force" or "wait", from keyadm */
#define VK_META_PROMOTED         "promote_result"  /* and the daemon's answer: "ok" or why not */

/*
 * How far ahead of a machine's clock an authority's may be: a heartbeat
 * signed further in the future is refused (SPEC §8, rule 9), and one within
 * it counts as fresh until its time is max_staleness in the past.
 */
#define VK_CLOCK_SKEW 30

/*
 * The fleet's format: 1 for viamkey's first fleet (records, heartbeats and
 * acknowledgements in the bucket), 2 since scope heads, counted heartbeats
 * and acknowledgements outside JetStream. Machines report theirs.
 */
#define VK_FORMAT 2

/* The store's role; VK_FLEET_STANDALONE when none is recorded. */
vk_rc vk_fleet_role(sqlite3 *db, enum vk_fleet_role *role, char err[VK_ERRLEN]);

/*
 * Whether a replica's last heartbeat was signed more than max_staleness
 * seconds before now by the authority's clock (or never came): a heartbeat
 * held back and delivered late is not fresh. 0 for any other store, and
 * whenever max_staleness is 0.
 */
vk_rc vk_fleet_stale(sqlite3 *db, int64_t now, int64_t max_staleness, int *stale,
                     char err[VK_ERRLEN]);

#endif
