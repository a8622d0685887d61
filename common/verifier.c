/*
 * verifier.c - keyed BLAKE2b verifiers for key secrets.
 *
 * Security rules for this file:
 *  1. The secret MUST NOT be stored; only salt and verifier are.
 *  2. Verifiers MUST be compared with crypto_verify_32(), never memcmp().
 *  3. Every call of vk_verifier_check() MUST compute exactly one hash,
 *     whatever the stored row holds, so time does not depend on it.
 *  4. Intermediate hashes MUST be wiped before returning.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <string.h>

#include "verifier.h"

#define DOMAIN "viamkey-v1"

static void
compute(const struct vk_token *t, const unsigned char salt[VK_SALT_BYTES],
        unsigned char out[VK_VERIFY_BYTES])
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, salt, VK_SALT_BYTES, VK_VERIFY_BYTES);
	crypto_generichash_update(&st, (const unsigned char *)DOMAIN, sizeof DOMAIN - 1);
	crypto_generichash_update(&st, t->key_id, sizeof t->key_id);
	crypto_generichash_update(&st, t->secret, sizeof t->secret);
	crypto_generichash_final(&st, out, VK_VERIFY_BYTES);
	sodium_memzero(&st, sizeof st);
}

void
vk_verifier_make(const struct vk_token *t, unsigned char salt[VK_SALT_BYTES],
                 unsigned char verifier[VK_VERIFY_BYTES])
{
	randombytes_buf(salt, VK_SALT_BYTES);
	compute(t, salt, verifier);
}

int
vk_verifier_check(const struct vk_token *t, const char *alg, const void *salt, size_t salt_len,
                  const void *verifier, size_t verifier_len)
{
	static const unsigned char zero[VK_SALT_BYTES];
	_Static_assert(VK_SALT_BYTES >= VK_VERIFY_BYTES, "zero serves as salt and verifier");
	unsigned char got[VK_VERIFY_BYTES];
	unsigned char want[VK_VERIFY_BYTES];
	int usable, match;

	usable = alg != NULL && strcmp(alg, VK_ALG_CURRENT) == 0 && salt != NULL &&
	         salt_len == VK_SALT_BYTES && verifier != NULL && verifier_len == VK_VERIFY_BYTES;
	compute(t, usable ? salt : zero, got);
	/*
	 * The same copy either way: an unusable row must cost what a real one
	 * costs (rule 3), and `usable &&` below keeps it from ever matching.
	 */
	memcpy(want, usable ? verifier : (const void *)zero, VK_VERIFY_BYTES);
	match = crypto_verify_32(got, want) == 0;
	sodium_memzero(got, sizeof got);
	sodium_memzero(want, sizeof want);
	return usable && match;
}

void
vk_secret_tag(const void *salt, size_t salt_len, char out[VK_SECRET_TAG_LEN + 1])
{
	static const char tag_domain[] = "viamkey-secret-tag-v1";
	unsigned char h[VK_SECRET_TAG_LEN / 2];
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, sizeof h);
	crypto_generichash_update(&st, (const unsigned char *)tag_domain, sizeof tag_domain - 1);
	crypto_generichash_update(&st, salt, salt_len);
	crypto_generichash_final(&st, h, sizeof h);
	sodium_bin2hex(out, VK_SECRET_TAG_LEN + 1, h, sizeof h);
}
