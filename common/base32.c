/*
 * base32.c - RFC 4648 base32 without padding.
 */
#include "autoconfig.h"

#include <sodium.h>

#include "base32.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* The value of a base32 character, or -1 for any other byte. */
static int
value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

void
vk_base32_encode(const unsigned char *in, size_t n, char *out)
{
	unsigned int acc = 0, bits = 0; /* bits: how many of acc's low bits are pending */

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8 | in[i]) & 0xfff;
		for (bits += 8; bits >= 5; bits -= 5)
			*out++ = alphabet[(acc >> (bits - 5)) & 31];
	}
	if (bits > 0)
		*out++ = alphabet[(acc << (5 - bits)) & 31];
	*out = '\0';
}

int
vk_base32_decode(const char *text, size_t len, unsigned char *out, size_t n)
{
	unsigned int acc = 0, bits = 0;
	size_t o = 0;

	if (len != VK_BASE32_LEN(n))
		goto bad;
	for (size_t i = 0; i < len; i++) {
		int v = value(text[i]);

		if (v < 0)
			goto bad;
		acc = (acc << 5 | (unsigned int)v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* the length leaves fewer than 5 bits over; the encoder writes them as zeros */
	if ((acc & ((1u << bits) - 1)) != 0)
		goto bad;
	return 0;
bad:
	sodium_memzero(out, n);
	return -1;
}
