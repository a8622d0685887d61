/*
 * fuzz_token.c - libFuzzer target for the token codec and the UUID parser.
 *
 * Input: any bytes, taken three ways.
 *  - As a token: vk_token_parse() must not read past the input, and what it
 *    accepts must format back to exactly the same bytes, so no token has a
 *    second spelling. A refused token leaves nothing decoded behind.
 *  - As a key ID and a secret (the first 48 bytes): format-then-parse must
 *    give them back, so the encoder is checked on every value, not only on
 *    the ones a parse can reach.
 *  - As a NUL-terminated string for vk_uuid_parse(), whose accepted strings
 *    must be canonical.
 *  - As a presented answer: vk_token_trim() must narrow it to a part of it
 *    that neither starts nor ends with a space, tab, CR or LF and drop only
 *    those, and vk_token_shaped() must say whether that part starts "vk_".
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_parse(const char *s, size_t len)
{
	char out[VK_TOKEN_LEN + 1], part[VK_KEY_PART_LEN + 1], preview[VK_PREVIEW_LEN + 1];
	char uuid[VK_UUID_STRLEN + 1];
	struct vk_token t;
	vk_token_status st = vk_token_parse(s, len, &t);

	if (st != VK_TOKEN_MALFORMED)
		FZ_CHECK(len == VK_TOKEN_LEN && vk_token_shaped(s, len));
	if (st != VK_TOKEN_OK) {
		FZ_CHECK(fz_all_zero(&t, sizeof t));
		return;
	}
	vk_token_format(&t, out);
	FZ_CHECK(memcmp(out, s, VK_TOKEN_LEN) == 0);
	vk_key_part(t.key_id, part);
	FZ_CHECK(memcmp(part, s + 3, VK_KEY_PART_LEN) == 0);
	vk_token_preview(t.key_id, preview);
	FZ_CHECK(memcmp(preview, s, 3 + VK_KEY_PART_LEN + 1) == 0);
	vk_uuid_format(t.key_id, uuid);
	FZ_CHECK(vk_uuid_valid(uuid));
	vk_token_wipe(&t);
}

static void
check_format(const uint8_t *data, size_t size)
{
	struct vk_token t, back;
	char out[VK_TOKEN_LEN + 1];

	if (size < sizeof t.key_id + sizeof t.secret)
		return;
	memcpy(t.key_id, data, sizeof t.key_id);
	memcpy(t.secret, data + sizeof t.key_id, sizeof t.secret);
	/* keys are UUIDv4s, and the parser insists on it */
	t.key_id[6] = (unsigned char)((t.key_id[6] & 0x0f) | 0x40);
	t.key_id[8] = (unsigned char)((t.key_id[8] & 0x3f) | 0x80);
	vk_token_format(&t, out);
	FZ_CHECK(strlen(out) == VK_TOKEN_LEN && vk_token_shaped(out, VK_TOKEN_LEN));
	FZ_CHECK(vk_token_parse(out, VK_TOKEN_LEN, &back) == VK_TOKEN_OK);
	FZ_CHECK(memcmp(&t, &back, sizeof t) == 0);
	vk_token_wipe(&back);
}

static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void
check_trim(const char *s, size_t len)
{
	const char *p = s;
	size_t n = len;

	vk_token_trim(&p, &n);
	FZ_CHECK(p >= s && n <= len && (size_t)(p - s) <= len - n);
	FZ_CHECK(n == 0 || (!blank(p[0]) && !blank(p[n - 1])));
	for (const char *c = s; c < p; c++)
		FZ_CHECK(blank(*c));
	for (const char *c = p + n; c < s + len; c++)
		FZ_CHECK(blank(*c));
	FZ_CHECK(vk_token_shaped(s, len) == (n >= 3 && memcmp(p, "vk_", 3) == 0));
}

static void
check_uuid(const uint8_t *data, size_t size)
{
	unsigned char id[VK_KEY_ID_BYTES];
	char out[VK_UUID_STRLEN + 1];
	char *s = fz_strndup(data, size);

	if (vk_uuid_parse(s, id) == 0) {
		vk_uuid_format(id, out);
		FZ_CHECK(strcmp(out, s) == 0);
		FZ_CHECK(vk_uuid_valid(s));
	} else {
		FZ_CHECK(!vk_uuid_valid(s));
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse((const char *)data, size);
	check_trim((const char *)data, size);
	check_format(data, size);
	check_uuid(data, size);
	return 0;
}
