/*
 * verifier.h - what the store keeps instead of a secret.
 *
 * verifier = BLAKE2b-256(key = salt, message = "viamkey-v1" || key ID || secret)
 * with a fresh 32-byte random salt per secret, stored with the algorithm
 * tag VK_ALG_CURRENT. A fast keyed hash is right here because the secrets
 * are 256-bit random values, not passwords.
 */
#ifndef VK_VERIFIER_H
#define VK_VERIFIER_H

#include "token.h"

#define VK_ALG_CURRENT  "b2k256-v1"
#define VK_SALT_BYTES   32
#define VK_VERIFY_BYTES 32

/* Fills salt with fresh randomness and verifier with the hash. */
void vk_verifier_make(const struct vk_token *t, unsigned char salt[VK_SALT_BYTES],
                      unsigned char verifier[VK_VERIFY_BYTES]);

/*
 * Constant-time check of t against a stored (alg, salt, verifier). Returns
 * 1 on a match, 0 otherwise. An unknown algorithm or a salt or verifier of
 * the wrong length never matches, but still costs one hash, so that the
 * time taken does not depend on what the store holds.
 */
int vk_verifier_check(const struct vk_token *t, const char *alg, const void *salt, size_t salt_len,
                      const void *verifier, size_t verifier_len);

/*
 * Which secret: VK_SECRET_TAG_LEN lower-case hex digits of
 * BLAKE2b("viamkey-secret-tag-v1" || salt), the same wherever the secret's
 * record is (authority, replicas), telling nothing of the secret.
 */
void vk_secret_tag(const void *salt, size_t salt_len, char out[VK_SECRET_TAG_LEN + 1]);

#endif
