/*
 * token.c - encoding and parsing of API key tokens.
 *
 * Security rules for this file:
 *  1. Input longer than VK_TOKEN_HARD_MAX bytes MUST be refused before any
 *     character of it is examined.
 *  2. Parsing MUST NOT read past `len`, and MUST NOT assume NUL termination.
 *  3. The checksum MUST be verified before the secret is decoded.
 *  4. Decoded secrets live only in the caller's struct vk_token; every
 *     temporary copy here MUST be wiped before returning.
 *  5. Secrets and key IDs come from randombytes_buf() only.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdint.h>
#include <string.h>

#include "token.h"

#define PREFIX      "vk_"
#define PREFIX_LEN  3
#define SECRET_PART 43
#define CHECK_PART  6
#define KEY_OFF     PREFIX_LEN
#define SEP_OFF     (KEY_OFF + VK_KEY_PART_LEN)
#define SECRET_OFF  (SEP_OFF + 1)
#define CHECK_OFF   (SECRET_OFF + SECRET_PART)

_Static_assert(CHECK_OFF + CHECK_PART == VK_TOKEN_LEN, "token layout");
_Static_assert(VK_TOKEN_LEN <= VK_TOKEN_MAX, "token too long");
_Static_assert(VK_KEY_ID_BYTES % 4 == 0 && VK_SECRET_BYTES % 4 == 0,
               "b62_encode takes 32-bit limbs");

static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int
b62_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'Z')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 36;
	return -1;
}

/*
 * Big-endian bytes -> exactly `width` base62 digits, most significant first.
 * n is a multiple of 4: the number is divided by 62 a 32-bit limb at a
 * time, which gives the digits that dividing it a byte at a time gives.
 */
static void
b62_encode(const unsigned char *in, size_t n, char *out, size_t width)
{
	uint32_t num[VK_SECRET_BYTES / 4];
	size_t limbs = n / 4;

	for (size_t j = 0; j < limbs; j++)
		num[j] = (uint32_t)in[4 * j] << 24 | (uint32_t)in[4 * j + 1] << 16 |
		         (uint32_t)in[4 * j + 2] << 8 | in[4 * j + 3];
	for (size_t i = width; i-- > 0;) {
		uint64_t rem = 0;

		for (size_t j = 0; j < limbs; j++) {
			uint64_t acc = rem << 32 | num[j];

			num[j] = (uint32_t)(acc / 62);
			rem = acc % 62;
		}
		out[i] = alphabet[rem];
	}
	sodium_memzero(num, sizeof num);
}

/*
 * `width` base62 digits -> n big-endian bytes. Returns -1 when a digit is
 * outside the alphabet or the value does not fit in n bytes.
 */
static int
b62_decode(const char *in, size_t width, unsigned char *out, size_t n)
{
	int rc = 0;

	memset(out, 0, n);
	for (size_t i = 0; i < width; i++) {
		int v = b62_value((unsigned char)in[i]);
		unsigned int carry;

		if (v < 0)
			return -1;
		carry = (unsigned int)v;
		for (size_t j = n; j-- > 0;) {
			unsigned int acc = out[j] * 62u + carry;

			out[j] = (unsigned char)acc;
			carry = acc >> 8;
		}
		if (carry != 0)
			rc = -1;
	}
	return rc;
}

static uint32_t
crc32_ieee(const char *s, size_t n)
{
	uint32_t crc = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		crc ^= (unsigned char)s[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

static void
checksum_encode(const char *s, char out[CHECK_PART])
{
	uint32_t crc = crc32_ieee(s, CHECK_OFF);
	unsigned char be[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
	                       (unsigned char)(crc >> 8), (unsigned char)crc};

	b62_encode(be, sizeof be, out, CHECK_PART);
}

static int
uuid_v4_bits_ok(const unsigned char id[VK_KEY_ID_BYTES])
{
	return (id[6] & 0xf0) == 0x40 && (id[8] & 0xc0) == 0x80;
}

vk_token_status
vk_token_parse(const char *s, size_t len, struct vk_token *out)
{
	char expect[CHECK_PART];

	memset(out, 0, sizeof *out);
	if (s == NULL || len > VK_TOKEN_HARD_MAX || len != VK_TOKEN_LEN)
		return VK_TOKEN_MALFORMED;
	if (memcmp(s, PREFIX, PREFIX_LEN) != 0 || s[SEP_OFF] != '_')
		return VK_TOKEN_MALFORMED;
	for (size_t i = PREFIX_LEN; i < len; i++)
		if (i != SEP_OFF && b62_value((unsigned char)s[i]) < 0)
			return VK_TOKEN_MALFORMED;

	checksum_encode(s, expect);
	if (memcmp(expect, s + CHECK_OFF, CHECK_PART) != 0)
		return VK_TOKEN_CHECKSUM;

	if (b62_decode(s + KEY_OFF, VK_KEY_PART_LEN, out->key_id, VK_KEY_ID_BYTES) != 0 ||
	    !uuid_v4_bits_ok(out->key_id) ||
	    b62_decode(s + SECRET_OFF, SECRET_PART, out->secret, VK_SECRET_BYTES) != 0) {
		vk_token_wipe(out);
		return VK_TOKEN_MALFORMED;
	}
	return VK_TOKEN_OK;
}

void
vk_token_format(const struct vk_token *t, char out[VK_TOKEN_LEN + 1])
{
	memcpy(out, PREFIX, PREFIX_LEN);
	b62_encode(t->key_id, VK_KEY_ID_BYTES, out + KEY_OFF, VK_KEY_PART_LEN);
	out[SEP_OFF] = '_';
	b62_encode(t->secret, VK_SECRET_BYTES, out + SECRET_OFF, SECRET_PART);
	checksum_encode(out, out + CHECK_OFF);
	out[VK_TOKEN_LEN] = '\0';
}

void
vk_uuid_generate(unsigned char out[VK_KEY_ID_BYTES])
{
	randombytes_buf(out, VK_KEY_ID_BYTES);
	out[6] = (unsigned char)((out[6] & 0x0f) | 0x40);
	out[8] = (unsigned char)((out[8] & 0x3f) | 0x80);
}

void
vk_token_generate(struct vk_token *t)
{
	vk_uuid_generate(t->key_id);
	vk_token_new_secret(t);
}

void
vk_token_new_secret(struct vk_token *t)
{
	randombytes_buf(t->secret, sizeof t->secret);
}

void
vk_token_wipe(struct vk_token *t)
{
	sodium_memzero(t, sizeof *t);
}

static int
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

void
vk_token_trim(const char **s, size_t *len)
{
	while (*len > 0 && is_blank(**s))
		(*s)++, (*len)--;
	while (*len > 0 && is_blank((*s)[*len - 1]))
		(*len)--;
}

int
vk_token_shaped(const char *s, size_t len)
{
	vk_token_trim(&s, &len);
	return len >= PREFIX_LEN && memcmp(s, PREFIX, PREFIX_LEN) == 0;
}

void
vk_key_part(const unsigned char key_id[VK_KEY_ID_BYTES], char out[VK_KEY_PART_LEN + 1])
{
	b62_encode(key_id, VK_KEY_ID_BYTES, out, VK_KEY_PART_LEN);
	out[VK_KEY_PART_LEN] = '\0';
}

void
vk_token_preview(const unsigned char key_id[VK_KEY_ID_BYTES], char out[VK_PREVIEW_LEN + 1])
{
	memcpy(out, PREFIX, PREFIX_LEN);
	vk_key_part(key_id, out + PREFIX_LEN);
	memcpy(out + SEP_OFF, "_\xe2\x80\xa6", 5); /* "_…" and the NUL */
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
vk_uuid_parse(const char *s, unsigned char out[VK_KEY_ID_BYTES])
{
	size_t j = 0;

	if (s == NULL || strlen(s) != VK_UUID_STRLEN)
		return -1;
	for (size_t i = 0; i < VK_UUID_STRLEN; i++) {
		int hi, lo;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
			continue;
		}
		hi = hex_value(s[i]);
		lo = hex_value(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[j++] = (unsigned char)(hi << 4 | lo);
		i++;
	}
	return uuid_v4_bits_ok(out) ? 0 : -1;
}

int
vk_uuid_valid(const char *s)
{
	unsigned char id[VK_KEY_ID_BYTES];

	return vk_uuid_parse(s, id) == 0;
}

void
vk_uuid_format(const unsigned char id[VK_KEY_ID_BYTES], char out[VK_UUID_STRLEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < VK_KEY_ID_BYTES; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 0x0f];
	}
	out[o] = '\0';
}
