/*
 * trust.h - whom a machine (or a standby) believes (SPEC §8 rule 1, §10).
 *
 * A fleet set up with [sync] authority_key alone trusts that one key, in
 * epoch 0, for ever. One set up with [sync] root_key trusts the root:
 * version 1 is that key, each later version one the version before signed
 * (cert.h); and it believes an authority's signing key only for the epoch
 * a certificate of the root version it holds gives it. It keeps the
 * highest epoch it has seen with such a certificate, and that epoch's key:
 * a value signed by any other key is refused, so a former authority can
 * never again change a machine. All of it lives in the store's meta, so it
 * survives a restart.
 *
 * The heartbeat carries its authority's certificate (base64url of its
 * value, field "cert"): vk_trust_verify() takes a heartbeat of a higher
 * epoch through it, and a certificate of a later root version asks for the
 * root versions between.
 */
#ifndef VK_TRUST_H
#define VK_TRUST_H

#include <sqlite3.h>
#include <stdint.h>

#include "cert.h"

struct vk_trust {
	int rooted;           /* trust comes from [sync] root_key */
	int64_t root_version; /* the root version held */
	unsigned char root[VK_PUBLIC_KEY_BYTES];
	int64_t epoch; /* the highest certified epoch seen (0: none yet, or not rooted) */
	int have_key;  /* key is that epoch's signing key (or authority_key) */
	unsigned char key[VK_PUBLIC_KEY_BYTES];
};

#define VK_META_TRUST_ROOT_VERSION "trust_root_version"
#define VK_META_TRUST_ROOT         "trust_root" /* base64 */
#define VK_META_TRUST_EPOCH        "trust_epoch" /* a record or heartbeat of a lower one is refused */
#define VK_META_TRUST_KEY          "trust_key"   /* base64 */
#define VK_META_TRUST_CERT         "trust_cert"        /* the certificate, as it came */
#define VK_META_TRUST_ORIGIN       "trust_root_origin" /* the configured version 1, base64 */

/*
 * The trust of store db: from its meta, else from the config's root_key
 * (base64; version 1) or authority_key (one of them must be set; root_key
 * wins). VK_ERR_USAGE when neither is a public key, or when the config's
 * root_key is not the version-1 root the store was set up with.
 */
vk_rc vk_trust_load(sqlite3 *db, const char *root_key, const char *authority_key,
                    struct vk_trust *t, char err[VK_ERRLEN]);

/*
 * Verifies a value from the bus (len bytes) with the key of the epoch held;
 * on success *json is its JSON (into value). A heartbeat whose certificate
 * (of the root version held) gives a higher epoch, and which that epoch's
 * key signed, moves the trust to that epoch first (in the caller's
 * transaction: meta, and the replica's entries and heads are forgotten, to
 * be read again under it), with *moved set. *need_root is set, and
 * VK_ERR_NOTFOUND returned, when the certificate is of a later root version
 * than the one held: that version comes first (vk_trust_root()).
 * VK_ERR_USAGE when it does not verify.
 */
vk_rc vk_trust_verify(sqlite3 *db, struct vk_trust *t, const char *value, size_t len,
                      const char **json, size_t *json_len, int *moved, int64_t *need_root,
                      char err[VK_ERRLEN]);

/*
 * A root version (cert.h) signed by the version held: kept (in the
 * caller's transaction) when it is the next one. VK_ERR_USAGE otherwise.
 */
vk_rc vk_trust_root(sqlite3 *db, struct vk_trust *t, const char *value, size_t len,
                    char err[VK_ERRLEN]);

#endif
