/*
 * token_test.c - the token codec and UUIDs (token.h).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fixture.h"
#include "token.h"

#define KEY_OFF    3
#define SEP_OFF    (KEY_OFF + VK_KEY_PART_LEN)
#define SECRET_OFF (SEP_OFF + 1)
#define SECRET_LEN 43
#define CHECK_OFF  (SECRET_OFF + SECRET_LEN)
#define CHECK_LEN  (VK_TOKEN_LEN - CHECK_OFF)

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
static const char token_chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";

/*
 * An independent, table-driven CRC-32 (IEEE 802.3), used to build tokens
 * with a correct checksum that vk_token_format() would never produce.
 */
static uint32_t
crc32_ref(const char *s, size_t n)
{
	static uint32_t table[256];
	uint32_t crc = 0xffffffffu;

	if (table[1] == 0) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	}
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ (unsigned char)s[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Rewrites the checksum of tok to match whatever precedes it. */
static void
reseal(char tok[VK_TOKEN_LEN + 1])
{
	uint64_t v = crc32_ref(tok, CHECK_OFF);

	for (int i = CHECK_LEN; i-- > 0; v /= 62)
		tok[CHECK_OFF + i] = b62[v % 62];
}

static int
b62_digit(char c)
{
	return (int)(strchr(b62, c) - b62);
}

/* a += b for two base62 numbers of the same width; the sum must fit. */
static void
b62_add(char *a, const char *b, size_t width)
{
	int carry = 0;

	for (size_t i = width; i-- > 0;) {
		int d = b62_digit(a[i]) + b62_digit(b[i]) + carry;

		a[i] = b62[d % 62];
		carry = d / 62;
	}
	assert_int_equal(carry, 0);
}

static void
new_token(struct vk_token *t, char s[VK_TOKEN_LEN + 1])
{
	vk_token_generate(t);
	vk_token_format(t, s);
}

static void
assert_wiped(const struct vk_token *t)
{
	static const struct vk_token zero;

	assert_memory_equal(t, &zero, sizeof zero);
}

static vk_token_status
parse_str(const char *s)
{
	struct vk_token t;
	vk_token_status st = vk_token_parse(s, strlen(s), &t);

	if (st != VK_TOKEN_OK)
		assert_wiped(&t);
	return st;
}

static void
test_crc_oracle_matches_library(void **state)
{
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1], again[VK_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(crc32_ref("123456789", 9), 0xcbf43926u); /* the CRC-32 check value */
	new_token(&t, s);
	memcpy(again, s, sizeof again);
	memset(again + CHECK_OFF, '!', CHECK_LEN);
	reseal(again);
	assert_string_equal(again, s);
}

static void
test_round_trip(void **state)
{
	(void)state;
	for (int i = 0; i < 10000; i++) {
		struct vk_token t, back;
		char s[VK_TOKEN_LEN + 1], uuid[VK_UUID_STRLEN + 1];

		new_token(&t, s);
		assert_int_equal(strlen(s), VK_TOKEN_LEN);
		assert_int_equal(strspn(s, token_chars), VK_TOKEN_LEN);
		assert_memory_equal(s, "vk_", 3);
		assert_int_equal(s[SEP_OFF], '_');
		assert_int_equal(vk_token_parse(s, VK_TOKEN_LEN, &back), VK_TOKEN_OK);
		assert_memory_equal(back.key_id, t.key_id, VK_KEY_ID_BYTES);
		assert_memory_equal(back.secret, t.secret, VK_SECRET_BYTES);
		vk_uuid_format(back.key_id, uuid);
		assert_true(vk_uuid_valid(uuid));
	}
}

static void
test_extreme_values_round_trip(void **state)
{
	struct vk_token t, back;
	char s[VK_TOKEN_LEN + 1];

	(void)state;
	/* the largest and smallest UUIDv4 and secret */
	memset(&t, 0xff, sizeof t);
	t.key_id[6] = 0x4f, t.key_id[8] = 0xbf;
	vk_token_format(&t, s);
	assert_int_equal(vk_token_parse(s, VK_TOKEN_LEN, &back), VK_TOKEN_OK);
	assert_memory_equal(&back, &t, sizeof t);
	memset(&t, 0, sizeof t);
	t.key_id[6] = 0x40, t.key_id[8] = 0x80;
	vk_token_format(&t, s);
	assert_int_equal(vk_token_parse(s, VK_TOKEN_LEN, &back), VK_TOKEN_OK);
	assert_memory_equal(&back, &t, sizeof t);
}

/* What a one-character change at pos to c must give. */
static vk_token_status
expected_for_change(size_t pos, char c)
{
	if (pos < KEY_OFF || pos == SEP_OFF || c == '_')
		return VK_TOKEN_MALFORMED;
	return VK_TOKEN_CHECKSUM; /* CRC-32 catches every single-byte error */
}

static void
test_every_single_change_rejected(void **state)
{
	(void)state;
	for (int n = 0; n < 50; n++) {
		struct vk_token t;
		char s[VK_TOKEN_LEN + 1];

		new_token(&t, s);
		for (size_t pos = 0; pos < VK_TOKEN_LEN; pos++) {
			char orig = s[pos];

			for (const char *c = token_chars; *c != '\0'; c++) {
				if (*c == orig)
					continue;
				s[pos] = *c;
				if (vk_token_parse(s, VK_TOKEN_LEN, &t) !=
				    expected_for_change(pos, *c))
					fail_msg("%s: change at %zu not caught", s, pos);
			}
			s[pos] = orig;
		}
	}
}

static void
test_every_adjacent_swap_rejected(void **state)
{
	(void)state;
	for (int n = 0; n < 200; n++) {
		struct vk_token t;
		char s[VK_TOKEN_LEN + 1];

		new_token(&t, s);
		for (size_t pos = 0; pos + 1 < VK_TOKEN_LEN; pos++) {
			char a = s[pos], b = s[pos + 1];

			if (a == b)
				continue;
			s[pos] = b, s[pos + 1] = a;
			if (vk_token_parse(s, VK_TOKEN_LEN, &t) == VK_TOKEN_OK)
				fail_msg("%s: swap at %zu accepted", s, pos);
			s[pos] = a, s[pos + 1] = b;
		}
	}
}

static void
test_wrong_lengths_rejected(void **state)
{
	static const size_t lengths[] = {0,
	                                 1,
	                                 3,
	                                 VK_TOKEN_LEN - 1,
	                                 VK_TOKEN_LEN + 1,
	                                 VK_TOKEN_MAX,
	                                 VK_TOKEN_HARD_MAX,
	                                 VK_TOKEN_HARD_MAX + 1,
	                                 100 * 1024};
	size_t big = 100 * 1024;
	char *buf = malloc(big);
	struct vk_token t;

	(void)state;
	assert_non_null(buf);
	memset(buf, 'A', big);
	new_token(&t, buf);
	buf[VK_TOKEN_LEN] = 'A'; /* vk_token_format's NUL */
	assert_int_equal(vk_token_parse(buf, VK_TOKEN_LEN, &t), VK_TOKEN_OK);
	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		assert_int_equal(vk_token_parse(buf, lengths[i], &t), VK_TOKEN_MALFORMED);
		assert_wiped(&t);
	}
	free(buf);
}

/* The parser must stop at len: a token that ends right before an unmapped page. */
static void
test_no_read_past_len(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *map =
	    mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char s[VK_TOKEN_LEN + 1], *at;
	struct vk_token t;

	(void)state;
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
	new_token(&t, s);
	at = map + page - VK_TOKEN_LEN;
	memcpy(at, s, VK_TOKEN_LEN);
	assert_int_equal(vk_token_parse(at, VK_TOKEN_LEN, &t), VK_TOKEN_OK);
	assert_true(vk_token_shaped(at, VK_TOKEN_LEN));
	assert_int_equal(vk_token_parse(at + 1, VK_TOKEN_LEN - 1, &t), VK_TOKEN_MALFORMED);
	assert_int_equal(munmap(map, 2 * page), 0);
}

static void
test_foreign_bytes_rejected(void **state)
{
	static const char bad[] = {'\0', ' ',        '-',        '.',       '=',
	                           '\n', (char)0x80, (char)0xc3, (char)0xff};
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1];

	(void)state;
	new_token(&t, s);
	for (size_t i = 0; i < sizeof bad; i++) {
		for (size_t pos = 0; pos < VK_TOKEN_LEN; pos++) {
			char copy[VK_TOKEN_LEN + 1];

			memcpy(copy, s, sizeof copy);
			copy[pos] = bad[i];
			if (pos < CHECK_OFF)
				reseal(copy); /* a right checksum must not rescue it */
			if (vk_token_parse(copy, VK_TOKEN_LEN, &t) != VK_TOKEN_MALFORMED)
				fail_msg("byte 0x%02x at %zu accepted", (unsigned char)bad[i], pos);
		}
	}
}

static void
test_wrong_shape_with_valid_checksum_rejected(void **state)
{
	static const char *const prefixes[] = {"VK_", "Vk_", "vK_", "vk0", "xk_", "v__"};
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1], copy[VK_TOKEN_LEN + 1];

	(void)state;
	new_token(&t, s);
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		memcpy(copy, s, sizeof copy);
		memcpy(copy, prefixes[i], 3);
		reseal(copy);
		assert_int_equal(parse_str(copy), VK_TOKEN_MALFORMED);
	}
	memcpy(copy, s, sizeof copy);
	copy[SEP_OFF] = 'A'; /* no separator */
	reseal(copy);
	assert_int_equal(parse_str(copy), VK_TOKEN_MALFORMED);
	assert_int_equal(parse_str(""), VK_TOKEN_MALFORMED);
	assert_int_equal(parse_str("vk_"), VK_TOKEN_MALFORMED);
	assert_int_equal(parse_str("\b\n\r\177INCORRECT"), VK_TOKEN_MALFORMED);
	assert_int_equal(vk_token_parse(NULL, 0, &t), VK_TOKEN_MALFORMED);
	assert_int_equal(vk_token_parse(NULL, VK_TOKEN_LEN, &t), VK_TOKEN_MALFORMED);
}

/* Key-ID part set to `part` with a correct checksum. */
static vk_token_status
parse_with_key_part(const char *part)
{
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1];

	new_token(&t, s);
	memcpy(s + KEY_OFF, part, VK_KEY_PART_LEN);
	reseal(s);
	return parse_str(s);
}

static void
test_key_id_out_of_range_rejected(void **state)
{
	unsigned char all_ones[VK_KEY_ID_BYTES];
	char over[VK_KEY_PART_LEN + 1], part[VK_KEY_PART_LEN + 1];
	char one[VK_KEY_PART_LEN + 1] = "0000000000000000000001";
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1];

	(void)state;
	/* over = 2^128; then over + id, which wraps to a valid UUIDv4 in 128 bits */
	memset(all_ones, 0xff, sizeof all_ones);
	vk_key_part(all_ones, over);
	b62_add(over, one, VK_KEY_PART_LEN);
	assert_int_equal(parse_with_key_part(over), VK_TOKEN_MALFORMED);
	for (int i = 0; i < 100; i++) {
		new_token(&t, s);
		vk_key_part(t.key_id, part);
		assert_memory_equal(part, s + KEY_OFF, VK_KEY_PART_LEN);
		b62_add(part, over, VK_KEY_PART_LEN);
		assert_int_equal(parse_with_key_part(part), VK_TOKEN_MALFORMED);
	}
	assert_int_equal(parse_with_key_part("zzzzzzzzzzzzzzzzzzzzzz"), VK_TOKEN_MALFORMED);
}

static void
test_secret_out_of_range_rejected(void **state)
{
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1];

	(void)state;
	new_token(&t, s);
	memset(s + SECRET_OFF, 'z', SECRET_LEN); /* 62^43 - 1 > 2^256 */
	reseal(s);
	assert_int_equal(parse_str(s), VK_TOKEN_MALFORMED);
}

static void
test_non_v4_key_id_rejected(void **state)
{
	static const unsigned char bad_bits[][2] = {
	    {0x1f, 0xbf}, /* version 1 */
	    {0x0f, 0x80}, /* version 0 */
	    {0xff, 0x80}, /* version 15 */
	    {0x4f, 0x7f}, /* variant 0 */
	    {0x4f, 0xc0}, /* variant 110 */
	};
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof bad_bits / sizeof bad_bits[0]; i++) {
		vk_token_generate(&t);
		t.key_id[6] = bad_bits[i][0];
		t.key_id[8] = bad_bits[i][1];
		vk_token_format(&t, s); /* the checksum is right */
		assert_int_equal(parse_str(s), VK_TOKEN_MALFORMED);
	}
}

#define SHAPED(lit)     vk_token_shaped(lit, sizeof lit - 1)
#define TRIM(lit, want) expect_trim(lit, sizeof lit - 1, want)

static void
test_shaped(void **state)
{
	struct vk_token t;
	char s[VK_TOKEN_LEN + 1], *long_one;

	(void)state;
	new_token(&t, s);
	assert_true(vk_token_shaped(s, strlen(s)));
	assert_true(vk_token_shaped("vk_", 3));
	assert_true(vk_token_shaped("vk_typo_token", 13));
	assert_true(vk_token_shaped("vk_abc!", 6)); /* only the first len bytes count */
	assert_false(vk_token_shaped("", 0));
	assert_false(vk_token_shaped("vk", 2));
	assert_false(vk_token_shaped("vk_", 2));
	assert_false(vk_token_shaped("VK_abc", 6));
	assert_false(vk_token_shaped("vk-abc", 6));
	assert_false(vk_token_shaped("hunter2", 7));
	assert_false(vk_token_shaped("\b\n\r\177INCORRECT", 13));
	/*
	 * Changed on purpose: "starts with vk_ once trimmed, whatever follows",
	 * since such an answer may hold a secret, typo or not. These were not
	 * shaped when only [A-Za-z0-9_] could follow.
	 */
	assert_true(vk_token_shaped("vk_abc!", 7));
	assert_true(vk_token_shaped("vk_a b", 6));
	assert_true(vk_token_shaped("vk_\xc3\xa9", 5));

	/* surrounding white space is ignored */
	assert_true(SHAPED(" vk_x\r\n"));
	assert_true(SHAPED("\t\r\n vk_"));
	assert_true(SHAPED("vk_ \t"));
	assert_false(SHAPED("xvk_"));
	assert_false(SHAPED(" \t\r\n"));
	assert_false(SHAPED(" vk"));
	assert_false(SHAPED(" vk\n_"));
	assert_false(SHAPED("\vvk_x")); /* only space, tab, CR and LF are trimmed */
	assert_false(SHAPED("\xc2\xa0vk_x"));

	/* whatever its length */
	long_one = malloc(3 + 600);
	assert_non_null(long_one);
	memcpy(long_one, "vk_", 3);
	memset(long_one + 3, 'A', 600);
	assert_true(vk_token_shaped(long_one, 3 + 600));
	free(long_one);
}

/* vk_token_trim() on s[0..len), expecting it to leave want. */
static void
expect_trim(const char *s, size_t len, const char *want)
{
	const char *p = s;
	size_t n = len;

	vk_token_trim(&p, &n);
	assert_true(p >= s && p + n <= s + len);
	if (n != strlen(want) || memcmp(p, want, n) != 0)
		fail_msg("trimmed to \"%.*s\", want \"%s\"", (int)n, p, want);
}

static void
test_trim(void **state)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *map, *at;
	const char *p;
	size_t n;

	(void)state;
	TRIM(" vk_x\r\n", "vk_x");
	TRIM("\t\t vk_abc \t\r\n\n", "vk_abc");
	TRIM("vk_abc", "vk_abc");
	TRIM("vk_a b", "vk_a b"); /* inside, white space stays */
	TRIM(" \t\r\n", "");
	TRIM("", "");
	TRIM("\vvk\f", "\vvk\f");
	TRIM("\xc2\xa0vk", "\xc2\xa0vk"); /* NO-BREAK SPACE is not trimmed */
	expect_trim("  ab  ", 4, "ab");   /* len bounds it: "  ab" */

	/* a NUL is not white space */
	p = "\0vk_ ";
	n = 5;
	vk_token_trim(&p, &n);
	assert_int_equal(n, 4);
	assert_int_equal(p[0], '\0');

	/* it reads nothing outside [s, s + len): blanks that end right before an unmapped page */
	map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(map != MAP_FAILED);
	assert_int_equal(mprotect(map + page, page, PROT_NONE), 0);
	at = map + page - 8;
	memcpy(at, "  vk_x\r\n", 8);
	p = at;
	n = 8;
	vk_token_trim(&p, &n);
	assert_true(p == at + 2 && n == 4);
	memset(at, ' ', 8);
	p = at;
	n = 8;
	vk_token_trim(&p, &n);
	assert_int_equal(n, 0);
	assert_false(vk_token_shaped(at, 8));
	assert_int_equal(munmap(map, 2 * page), 0);
}

static void
test_preview_shows_only_key_part(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct vk_token t;
		char s[VK_TOKEN_LEN + 1], preview[VK_PREVIEW_LEN + 1];
		char part[VK_KEY_PART_LEN + 1];

		new_token(&t, s);
		memset(preview, 'X', sizeof preview);
		vk_token_preview(t.key_id, preview);
		assert_int_equal(strlen(preview), VK_PREVIEW_LEN);
		assert_memory_equal(preview, s, SECRET_OFF); /* "vk_<key part>_" */
		assert_string_equal(preview + SECRET_OFF, "\xe2\x80\xa6");
		vk_key_part(t.key_id, part);
		assert_memory_equal(part, s + KEY_OFF, VK_KEY_PART_LEN);
		assert_int_equal(part[VK_KEY_PART_LEN], '\0');
	}
}

static void
test_uuid_parse_canonical_v4_only(void **state)
{
	static const char *const good[] = {
	    "00000000-0000-4000-8000-000000000000",
	    "ffffffff-ffff-4fff-bfff-ffffffffffff",
	    "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
	    "3f2504e0-4f89-41d3-ba0c-0305e82c3301",
	};
	static const char *const bad[] = {
	    "3F2504E0-4F89-41D3-9A0C-0305E82C3301", /* uppercase */
	    "3f2504e0-4f89-41d3-9A0c-0305e82c3301", /* one uppercase digit */
	    "3f2504e0-4f89-11d3-9a0c-0305e82c3301", /* version 1 */
	    "3f2504e0-4f89-51d3-9a0c-0305e82c3301", /* version 5 */
	    "3f2504e0-4f89-41d3-ca0c-0305e82c3301", /* variant 110 */
	    "3f2504e0-4f89-41d3-7a0c-0305e82c3301", /* variant 0 */
	    "3f2504e04f8941d39a0c0305e82c3301",     /* no dashes */
	    "{3f2504e0-4f89-41d3-9a0c-0305e82c3301}",
	    "3f2504e0-4f89-41d3-9a0c-0305e82c33011", /* 37 characters */
	    "3f2504e0-4f89-41d3-9a0c-0305e82c330",   /* 35 characters */
	    "3f2504e0-4f8941d3-9a0c--0305e82c3301",  /* dash misplaced */
	    "3f2504e0-4f89-41d3-9a0c-0305e82c330g",
	    " 3f2504e0-4f89-41d3-9a0c-0305e82c330",
	    "3f2504e0-4f89-41d3-9a0c-0305e82c330\n",
	    "",
	};
	unsigned char id[VK_KEY_ID_BYTES];
	char out[VK_UUID_STRLEN + 1];

	(void)state;
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		assert_int_equal(vk_uuid_parse(good[i], id), 0);
		assert_true(vk_uuid_valid(good[i]));
		vk_uuid_format(id, out);
		assert_string_equal(out, good[i]);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (vk_uuid_parse(bad[i], id) != -1 || vk_uuid_valid(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
	}
	assert_int_equal(vk_uuid_parse(NULL, id), -1);
	assert_false(vk_uuid_valid(NULL));
}

static void
test_uuid_generate_format_parse(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		unsigned char id[VK_KEY_ID_BYTES], back[VK_KEY_ID_BYTES], other[VK_KEY_ID_BYTES];
		char s[VK_UUID_STRLEN + 1];

		vk_uuid_generate(id);
		vk_uuid_generate(other);
		assert_memory_not_equal(id, other, sizeof id);
		vk_uuid_format(id, s);
		assert_int_equal(strlen(s), VK_UUID_STRLEN);
		assert_int_equal(s[14], '4');
		assert_non_null(strchr("89ab", s[19]));
		assert_int_equal(vk_uuid_parse(s, back), 0);
		assert_memory_equal(back, id, sizeof id);
	}
}

#define SAMPLES 256

/*
 * token.c rule 5: the whole secret comes from randombytes_buf(). Over 256
 * tokens, as printed and parsed back, every bit of the 32-byte secret takes
 * both values (a bit that stays put in 256 random draws has odds of
 * 2^-255), and no byte is a copy of another in every token; the same for
 * the key ID, less the six bits UUIDv4 fixes. Both ways of making a
 * secret are covered: a new key, and a new secret for a key (rotation).
 */
static void
test_secrets_wholly_random(void **state)
{
	static struct vk_token seen[SAMPLES];
	unsigned char varies[VK_SECRET_BYTES], id_varies[VK_KEY_ID_BYTES];

	(void)state;
	for (int how = 0; how < 2; how++) {
		memset(varies, 0, sizeof varies);
		memset(id_varies, 0, sizeof id_varies);
		for (int n = 0; n < SAMPLES; n++) {
			struct vk_token t;
			char tok[VK_TOKEN_LEN + 1];

			if (how == 0 || n == 0)
				vk_token_generate(&t);
			else
				t = seen[0], vk_token_new_secret(&t);
			vk_token_format(&t, tok);
			assert_int_equal(vk_token_parse(tok, VK_TOKEN_LEN, &seen[n]), VK_TOKEN_OK);
			for (size_t i = 0; i < VK_SECRET_BYTES; i++)
				varies[i] |= seen[n].secret[i] ^ seen[0].secret[i];
			for (size_t i = 0; i < VK_KEY_ID_BYTES; i++)
				id_varies[i] |= seen[n].key_id[i] ^ seen[0].key_id[i];
		}
		for (size_t i = 0; i < VK_SECRET_BYTES; i++)
			if (varies[i] != 0xff)
				fail_msg("%s: secret byte %zu kept bits 0x%02x in %d tokens",
				         how ? "rotation" : "creation", i, ~varies[i] & 0xff,
				         SAMPLES);
		for (size_t i = 0; i < VK_SECRET_BYTES; i++)
			for (size_t j = i + 1; j < VK_SECRET_BYTES; j++) {
				int same = 1;

				for (int n = 0; n < SAMPLES && same; n++)
					same = seen[n].secret[i] == seen[n].secret[j];
				if (same)
					fail_msg("secret bytes %zu and %zu equal in every token", i,
					         j);
			}
		if (how == 0) {
			/* UUIDv4: the version nibble and the two variant bits are fixed */
			for (size_t i = 0; i < VK_KEY_ID_BYTES; i++) {
				unsigned want = i == 6 ? 0x0f : i == 8 ? 0x3f : 0xff;

				if (id_varies[i] != want)
					fail_msg(
					    "key ID byte %zu varies in bits 0x%02x, not 0x%02x", i,
					    id_varies[i], want);
			}
		} else {
			for (size_t i = 0; i < VK_KEY_ID_BYTES; i++)
				assert_int_equal(id_varies[i], 0); /* a rotation keeps the key ID */
		}
	}
	sodium_memzero(seen, sizeof seen);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc_oracle_matches_library),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_extreme_values_round_trip),
	    cmocka_unit_test(test_every_single_change_rejected),
	    cmocka_unit_test(test_every_adjacent_swap_rejected),
	    cmocka_unit_test(test_wrong_lengths_rejected),
	    cmocka_unit_test(test_no_read_past_len),
	    cmocka_unit_test(test_foreign_bytes_rejected),
	    cmocka_unit_test(test_wrong_shape_with_valid_checksum_rejected),
	    cmocka_unit_test(test_key_id_out_of_range_rejected),
	    cmocka_unit_test(test_secret_out_of_range_rejected),
	    cmocka_unit_test(test_non_v4_key_id_rejected),
	    cmocka_unit_test(test_shaped),
	    cmocka_unit_test(test_trim),
	    cmocka_unit_test(test_preview_shows_only_key_part),
	    cmocka_unit_test(test_uuid_parse_canonical_v4_only),
	    cmocka_unit_test(test_uuid_generate_format_parse),
	    cmocka_unit_test(test_secrets_wholly_random),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
