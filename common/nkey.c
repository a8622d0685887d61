/*
 * nkey.c - NATS nkeys: public keys and seeds as text.
 *
 * Security rules for this file:
 *  1. The parsers accept only the text the encoders write: the prefix of
 *     the type asked for (a seed's own type is returned), a CRC16 that
 *     matches, upper-case base32 of exactly the right length with zero
 *     unused bits.
 *  2. Seed bytes decoded or encoded here are wiped from this file's
 *     buffers before it returns.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "base32.h"
#include "nkey.h"

#define PUBLIC_BYTES (1 + VK_NKEY_KEY_BYTES + 2)
#define SEED_BYTES   (2 + VK_NKEY_KEY_BYTES + 2)
#define SEED_PREFIX  (18 << 3) /* 'S' in base32 */

/* The prefix byte of each type: 'O', 'A', 'U' in base32. */
static const unsigned char prefixes[] = {
    [VK_NKEY_OPERATOR] = 14 << 3,
    [VK_NKEY_ACCOUNT] = 0,
    [VK_NKEY_USER] = 20 << 3,
};

/* CRC16/XMODEM: polynomial 0x1021, initial value 0, no reflection. */
static uint16_t
crc16(const unsigned char *p, size_t n)
{
	uint16_t crc = 0;

	for (size_t i = 0; i < n; i++) {
		crc ^= (uint16_t)(p[i] << 8);
		for (int b = 0; b < 8; b++)
			crc = (uint16_t)(crc & 0x8000 ? crc << 1 ^ 0x1021 : crc << 1);
	}
	return crc;
}

/* Appends the CRC16 of raw's first n bytes, little endian. */
static void
crc_append(unsigned char *raw, size_t n)
{
	uint16_t crc = crc16(raw, n);

	raw[n] = (unsigned char)(crc & 0xff);
	raw[n + 1] = (unsigned char)(crc >> 8);
}

/* Whether raw's last two bytes are the CRC16 of the n before them. */
static int
crc_ok(const unsigned char *raw, size_t n)
{
	uint16_t crc = crc16(raw, n);

	return raw[n] == (crc & 0xff) && raw[n + 1] == crc >> 8;
}

static int
type_ok(enum vk_nkey_type t)
{
	return t == VK_NKEY_OPERATOR || t == VK_NKEY_ACCOUNT || t == VK_NKEY_USER;
}

void
vk_nkey_public(enum vk_nkey_type t, const unsigned char pk[VK_NKEY_KEY_BYTES],
               char out[VK_NKEY_PUBLIC_LEN + 1])
{
	unsigned char raw[PUBLIC_BYTES];

	raw[0] = prefixes[t];
	memcpy(raw + 1, pk, VK_NKEY_KEY_BYTES);
	crc_append(raw, 1 + VK_NKEY_KEY_BYTES);
	vk_base32_encode(raw, sizeof raw, out);
}

void
vk_nkey_seed(enum vk_nkey_type t, const unsigned char seed[VK_NKEY_KEY_BYTES],
             char out[VK_NKEY_SEED_LEN + 1])
{
	unsigned char raw[SEED_BYTES];

	raw[0] = (unsigned char)(SEED_PREFIX | prefixes[t] >> 5);
	raw[1] = (unsigned char)((prefixes[t] & 31) << 3);
	memcpy(raw + 2, seed, VK_NKEY_KEY_BYTES);
	crc_append(raw, 2 + VK_NKEY_KEY_BYTES);
	vk_base32_encode(raw, sizeof raw, out);
	sodium_memzero(raw, sizeof raw);
}

int
vk_nkey_public_parse(const char *text, size_t len, enum vk_nkey_type t,
                     unsigned char pk[VK_NKEY_KEY_BYTES])
{
	unsigned char raw[PUBLIC_BYTES];

	if (!type_ok(t) || vk_base32_decode(text, len, raw, sizeof raw) != 0 ||
	    raw[0] != prefixes[t] || !crc_ok(raw, 1 + VK_NKEY_KEY_BYTES))
		return -1;
	memcpy(pk, raw + 1, VK_NKEY_KEY_BYTES);
	return 0;
}

int
vk_nkey_seed_parse(const char *text, size_t len, enum vk_nkey_type *t,
                   unsigned char seed[VK_NKEY_KEY_BYTES])
{
	unsigned char raw[SEED_BYTES], prefix;
	int rc = -1;

	if (vk_base32_decode(text, len, raw, sizeof raw) != 0)
		return -1;
	/* the type's prefix byte, split over the two as vk_nkey_seed() writes it */
	prefix = (unsigned char)((raw[0] & 7) << 5 | raw[1] >> 3);
	if ((raw[0] & ~7) != SEED_PREFIX || (raw[1] & 7) != 0 ||
	    !crc_ok(raw, 2 + VK_NKEY_KEY_BYTES))
		goto out;
	for (enum vk_nkey_type k = VK_NKEY_OPERATOR; k <= VK_NKEY_USER; k++)
		if (prefixes[k] == prefix) {
			*t = k;
			memcpy(seed, raw + 2, VK_NKEY_KEY_BYTES);
			rc = 0;
		}
out:
	sodium_memzero(raw, sizeof raw);
	return rc;
}
