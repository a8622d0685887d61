/*
 * signer.h - the authority's signing identity (SPEC §8, §10): its signing
 * key, and the epoch and certificate its store records for it.
 *
 * A fleet of [sync] authority_key alone signs in epoch 0, with no
 * certificate. A rooted one signs in the epoch of the certificate the
 * store holds (VK_META_AUTHORITY_EPOCH, VK_META_AUTHORITY_CERT), with the
 * key that certificate names. A rekey (keyadm authority rekey) writes the
 * new key beside the old one, at "<signing_key>.new", then records the new
 * certificate in the store, then puts the new key in place: cut short
 * between the last two, the key named by the store is the one at ".new",
 * and vk_signer_load() puts it in place.
 */
#ifndef VK_SIGNER_H
#define VK_SIGNER_H

#include <sqlite3.h>
#include <stdint.h>

#include "fleet.h"
#include "record.h"

/* The store's epoch (NULL when it has none: epoch 0) and certificate, as SQL expressions. */
#define VK_SIGNER_EPOCH_SQL                                                                        \
	"(SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_AUTHORITY_EPOCH "')"
#define VK_SIGNER_CERT_SQL "(SELECT value FROM meta WHERE name = '" VK_META_AUTHORITY_CERT "')"

struct vk_signer {
	unsigned char *sk; /* sodium_malloc()ed */
	unsigned char pk[VK_PUBLIC_KEY_BYTES];
	int64_t epoch;
	char *cert;     /* the certificate's value, or NULL (epoch 0) */
	char *cert_b64; /* base64url of it, as the heartbeat carries it */
};

/* The ".new" path a rekey writes the next key to; malloc()ed. */
char *vk_signer_next_path(const char *key_path);

/*
 * Loads the signing key at key_path and the store's epoch and certificate,
 * completing a rekey cut short (above). VK_ERR_STORE when the key is not
 * the one the certificate names.
 */
vk_rc vk_signer_load(sqlite3 *db, const char *key_path, struct vk_signer *s, char err[VK_ERRLEN]);

void vk_signer_free(struct vk_signer *s);

#endif
