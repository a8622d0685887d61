/*
 * nkey.h - NATS nkeys (SPEC §9): the text form of the Ed25519 keys of
 * NATS's decentralized authentication, pure functions without I/O.
 *
 * A public nkey is the unpadded RFC 4648 base32 of a prefix byte (its
 * type), the 32-byte public key and a CRC16 (XMODEM) of both, little
 * endian: 56 characters, "O...", "A..." or "U...". A seed is the same of
 * two prefix bytes ('S' and the type), the 32-byte seed that libsodium's
 * crypto_sign_seed_keypair() takes, and the CRC: 58 characters, "SO...",
 * "SA...", "SU...".
 */
#ifndef VK_NKEY_H
#define VK_NKEY_H

#include <stddef.h>

enum vk_nkey_type {
	VK_NKEY_OPERATOR,
	VK_NKEY_ACCOUNT,
	VK_NKEY_USER,
};

#define VK_NKEY_KEY_BYTES  32
#define VK_NKEY_PUBLIC_LEN 56
#define VK_NKEY_SEED_LEN   58

/* The public nkey of type t for the Ed25519 public key pk, NUL-terminated. */
void vk_nkey_public(enum vk_nkey_type t, const unsigned char pk[VK_NKEY_KEY_BYTES],
                    char out[VK_NKEY_PUBLIC_LEN + 1]);

/* The seed nkey of type t for the 32-byte seed, NUL-terminated. */
void vk_nkey_seed(enum vk_nkey_type t, const unsigned char seed[VK_NKEY_KEY_BYTES],
                  char out[VK_NKEY_SEED_LEN + 1]);

/*
 * Decodes the public nkey text (len bytes) of type t into pk: 0, or -1 for
 * any text that vk_nkey_public() does not write (another type, a bad
 * character or CRC, another length).
 */
int vk_nkey_public_parse(const char *text, size_t len, enum vk_nkey_type t,
                         unsigned char pk[VK_NKEY_KEY_BYTES]);

/* The same for a seed nkey: its type into *t and the 32-byte seed into seed. */
int vk_nkey_seed_parse(const char *text, size_t len, enum vk_nkey_type *t,
                       unsigned char seed[VK_NKEY_KEY_BYTES]);

#endif
