/*
 * cert.h - the fleet's root of trust (SPEC §10): certificates and root
 * versions.
 *
 * The root key (Ed25519, kept offline) certifies each signing key an
 * authority uses, for an epoch:
 *
 *   {"v":1,"type":"cert","epoch":E,"key":"K","root":V,"at":T,"name":"N"}
 *
 * signed by the key of root version V as every value of the bus is signed
 * (vk_record_sign()). K is the signing key's public half (base64), N the
 * host it was made for. Machines trust version 1 of the root, the key
 * [sync] root_key names; each later version is a document signed by the
 * key of the version before it and by its own:
 *
 *   "vkr1." base64url(sig_prev) "." base64url(sig_own) "." json
 *   json: {"v":1,"type":"root","version":N,"key":"K","at":T}
 *
 * where both signatures cover "viamkey root v1\n" and the JSON. The
 * decoders accept only this exact text. Pure functions: no I/O.
 */
#ifndef VK_CERT_H
#define VK_CERT_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define VK_CERT_NAME_MAX 64
#define VK_CERT_TEXT_MAX 512

struct vk_cert {
	int64_t epoch, root, at;
	unsigned char key[VK_PUBLIC_KEY_BYTES];
	char name[VK_CERT_NAME_MAX]; /* printable ASCII, no quote or backslash */
};

/* c's exact text, unsigned; 0, or -1 when c->name is not as above. */
int vk_cert_text(const struct vk_cert *c, char out[VK_CERT_TEXT_MAX]);

/*
 * c, signed with root_sk (the key of root version c->root); malloc()ed,
 * NULL when out of memory or c->name is not as above.
 */
char *vk_cert_make(const unsigned char *root_sk, const struct vk_cert *c);

/* Decodes value (len bytes) into c if root_pk signed it; 0, or -1. */
int vk_cert_verify(const unsigned char root_pk[VK_PUBLIC_KEY_BYTES], const char *value, size_t len,
                   struct vk_cert *c);

/*
 * What a certificate says, without checking who signed it: for the one a
 * store already holds, or to learn which root version one needs. 0, or -1.
 */
int vk_cert_read(const char *value, size_t len, struct vk_cert *c);

struct vk_root {
	int64_t version, at;
	unsigned char key[VK_PUBLIC_KEY_BYTES];
};

/*
 * Root version `version`, whose key is new_sk's, signed by prev_sk (the
 * key of the version before) and by new_sk; malloc()ed, NULL when out of
 * memory.
 */
char *vk_root_make(const unsigned char *prev_sk, const unsigned char *new_sk, int64_t version,
                   int64_t at);

/*
 * Decodes value into r if prev_pk signed it and so did the key it names;
 * 0, or -1. The caller checks that r->version follows the one it holds.
 */
int vk_root_verify(const unsigned char prev_pk[VK_PUBLIC_KEY_BYTES], const char *value, size_t len,
                   struct vk_root *r);

#endif
