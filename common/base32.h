/*
 * base32.h - RFC 4648 base32 (the alphabet A-Z 2-7) without padding, in
 * which NATS writes its nkeys (nkey.h) and this project the IDs of its
 * JWTs (jwt.h). Pure functions without I/O.
 */
#ifndef VK_BASE32_H
#define VK_BASE32_H

#include <stddef.h>

/* The number of characters of n bytes in base32: ceil(8n / 5). */
#define VK_BASE32_LEN(n) (((n)*8 + 4) / 5)

/* Writes the base32 of in (n bytes) into out: VK_BASE32_LEN(n) characters and a NUL. */
void vk_base32_encode(const unsigned char *in, size_t n, char *out);

/*
 * Decodes text (len bytes) into exactly n bytes: 0, or -1 for any text that
 * vk_base32_encode() does not write for n bytes: another length, a
 * character outside the alphabet (lower case included), or unused bits of
 * the last character that are not zero. On -1, out holds zeros.
 */
int vk_base32_decode(const char *text, size_t len, unsigned char *out, size_t n);

#endif
