/*
 * join_test.c - join tokens, requests and answers (join.h): each text
 * against fixed vectors, what decodes comes back as written, and every
 * other text refused.
 *
 * The vectors were made apart from this code, in Python: each JSON text by
 * json.dumps(..., separators=(",", ":")) of a dict in join.h's field
 * order, a token's keys by base64.b64encode and the token by "vkj1." and
 * base64.urlsafe_b64encode of its JSON, padding removed. The seed is
 * nkey_test.c's user seed (32 bytes of 4) and the user its public key.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "join.h"

#define ID        "0f8fad5b-d9cb-469f-a165-70867728950e"
#define SECRET    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define SERVERS   "nats://10.0.0.1:4222,nats://10.0.0.2:4222"
#define KEY       "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=" /* 32 bytes of 0xfb */
#define SIGNER    "//////////////////////////////////////////8=" /* 32 bytes of 0xff */
#define JWT       "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVIn0.c2lnbmF0dXJl"
#define USER_SEED "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FY"
#define USER      "UDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYREV"
#define ACCOUNT   "ACATS5YOVB6ROX2WUNKGNQ2MP3GMXDMKSG2O4N5CLX3A6W4PZGZZIL2R"
#define ACCT_SEED "SAAAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAUN5U"
#define MACHINE   "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
#define LOCATION  "3d6f0a1e-5c2b-4e8a-9f7d-1b2c3d4e5f60"
#define ORG       "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
#define HOST      "host-1.example_net"

#define TOKEN_JSON                                                                                 \
	"{\"v\":1,\"id\":\"" ID "\",\"secret\":\"" SECRET "\",\"servers\":\"" SERVERS              \
	"\",\"bucket\":\"viamkey\",\"trust\":\"root\",\"key\":\"" KEY "\",\"signer\":\"" SIGNER    \
	"\",\"jwt\":\"" JWT "\",\"seed\":\"" USER_SEED "\"}"

/* The token of TOKEN_JSON, and the same with "trust":"authority". */
#define TOKEN_ROOTED                                                                               \
	"vkj1.eyJ2IjoxLCJpZCI6IjBmOGZhZDViLWQ5Y2ItNDY5Zi1hMTY1LTcwODY3NzI4OTUwZSIsInNlY3JldCI"     \
	"6IjAwMDEwMjAzMDQwNTA2MDcwODA5MGEwYjBjMGQwZTBmMTAxMTEyMTMxNDE1MTYxNzE4MTkxYTFiMWMxZDF"     \
	"lMWYiLCJzZXJ2ZXJzIjoibmF0czovLzEwLjAuMC4xOjQyMjIsbmF0czovLzEwLjAuMC4yOjQyMjIiLCJidWN"     \
	"rZXQiOiJ2aWFta2V5IiwidHJ1c3QiOiJyb290Iiwia2V5IjoiKy92NysvdjcrL3Y3Ky92NysvdjcrL3Y3Ky9"     \
	"2NysvdjcrL3Y3Ky92Nysvcz0iLCJzaWduZXIiOiIvLy8vLy8vLy8vLy8vLy8vLy8vLy8vLy8vLy8vLy8vLy8"     \
	"vLy8vLy8vLy84PSIsImp3dCI6ImV5SjBlWEFpT2lKS1YxUWlMQ0poYkdjaU9pSmxaREkxTlRFNUxXNXJaWGt"     \
	"pZlEuZXlKemRXSWlPaUpWSW4wLmMybG5ibUYwZFhKbCIsInNlZWQiOiJTVUFBSUJBRUFRQ0FJQkFFQVFDQUl"     \
	"CQUVBUUNBSUJBRUFRQ0FJQkFFQVFDQUlCQUVBUUNBSUJINEZZIn0"
#define TOKEN_AUTHORITY                                                                            \
	"vkj1.eyJ2IjoxLCJpZCI6IjBmOGZhZDViLWQ5Y2ItNDY5Zi1hMTY1LTcwODY3NzI4OTUwZSIsInNlY3JldCI"     \
	"6IjAwMDEwMjAzMDQwNTA2MDcwODA5MGEwYjBjMGQwZTBmMTAxMTEyMTMxNDE1MTYxNzE4MTkxYTFiMWMxZDF"     \
	"lMWYiLCJzZXJ2ZXJzIjoibmF0czovLzEwLjAuMC4xOjQyMjIsbmF0czovLzEwLjAuMC4yOjQyMjIiLCJidWN"     \
	"rZXQiOiJ2aWFta2V5IiwidHJ1c3QiOiJhdXRob3JpdHkiLCJrZXkiOiIrL3Y3Ky92NysvdjcrL3Y3Ky92Nys"     \
	"vdjcrL3Y3Ky92NysvdjcrL3Y3Ky9zPSIsInNpZ25lciI6Ii8vLy8vLy8vLy8vLy8vLy8vLy8vLy8vLy8vLy8"     \
	"vLy8vLy8vLy8vLy8vLzg9Iiwiand0IjoiZXlKMGVYQWlPaUpLVjFRaUxDSmhiR2NpT2lKbFpESTFOVEU1TFc"     \
	"1clpYa2lmUS5leUp6ZFdJaU9pSlZJbjAuYzJsbmJtRjBkWEpsIiwic2VlZCI6IlNVQUFJQkFFQVFDQUlCQUV"     \
	"BUUNBSUJBRUFRQ0FJQkFFQVFDQUlCQUVBUUNBSUJBRUFRQ0FJQkg0RlkifQ"

#define REQUEST                                                                                    \
	"{\"v\":1,\"type\":\"join\",\"token\":\"" ID "\",\"secret\":\"" SECRET                     \
	"\",\"name\":\"" HOST "\",\"user\":\"" USER "\"}"

#define JOINED                                                                                     \
	"{\"v\":1,\"type\":\"joined\",\"machine\":\"" MACHINE "\",\"location\":\"" LOCATION        \
	"\",\"org\":\"" ORG "\",\"jwt\":\"" JWT "\"}"

static const struct {
	enum vk_join_refusal why;
	const char *name, *text;
} refusals[] = {
    {VK_JOIN_WRONG, "wrong", "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong\"}"},
    {VK_JOIN_EXPIRED, "expired", "{\"v\":1,\"type\":\"refused\",\"why\":\"expired\"}"},
    {VK_JOIN_USED, "used", "{\"v\":1,\"type\":\"refused\",\"why\":\"used\"}"},
    {VK_JOIN_REVOKED, "revoked", "{\"v\":1,\"type\":\"refused\",\"why\":\"revoked\"}"},
    {VK_JOIN_NAME, "name", "{\"v\":1,\"type\":\"refused\",\"why\":\"name\"}"},
    {VK_JOIN_BUSY, "busy", "{\"v\":1,\"type\":\"refused\",\"why\":\"busy\"}"},
};

/* A string of n copies of c (malloc()ed). */
static char *
repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* The fields of TOKEN_ROOTED (rooted) or TOKEN_AUTHORITY. */
static void
make_token(struct vk_join_token *t, int rooted)
{
	memset(t, 0, sizeof *t);
	strcpy(t->id, ID);
	for (size_t i = 0; i < sizeof t->secret; i++)
		t->secret[i] = (unsigned char)i;
	strcpy(t->servers, SERVERS);
	strcpy(t->bucket, "viamkey");
	t->rooted = rooted;
	memset(t->key, 0xfb, sizeof t->key);
	memset(t->signer, 0xff, sizeof t->signer);
	strcpy(t->jwt, JWT);
	strcpy(t->seed, USER_SEED);
}

/* A token's text made here rather than by join.c: "vkj1." and the base64url of len bytes. */
static char *
token_of(const char *json, size_t len)
{
	size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *text = malloc(sizeof VK_JOIN_PREFIX - 1 + size);

	assert_non_null(text);
	memcpy(text, VK_JOIN_PREFIX, sizeof VK_JOIN_PREFIX - 1);
	sodium_bin2base64(text + sizeof VK_JOIN_PREFIX - 1, size, (const unsigned char *)json, len,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return text;
}

/* vk_join_token_decode() of len bytes of JSON made into a token here; a refusal leaves zeros. */
static int
decode_json(const char *json, size_t len, struct vk_join_token *t)
{
	char *text = token_of(json, len);
	struct vk_join_token zero;
	int rc = vk_join_token_decode(text, strlen(text), t);

	memset(&zero, 0, sizeof zero);
	if (rc != 0)
		assert_memory_equal(t, &zero, sizeof zero);
	free(text);
	return rc;
}

/* TOKEN_JSON with its first `from` replaced by `to` (malloc()ed). */
static char *
replaced(const char *json, const char *from, const char *to)
{
	const char *at = strstr(json, from);
	char *out;

	assert_non_null(at);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from)) > 0);
	return out;
}

/* ---- the token ---------------------------------------------------------------------- */

static void
test_token_vectors(void **state)
{
	struct vk_join_token t, want;
	char *text;

	(void)state;
	make_token(&want, 1);
	text = vk_join_token_encode(&want);
	assert_non_null(text);
	assert_string_equal(text, TOKEN_ROOTED);
	free(text);
	assert_int_equal(vk_join_token_decode(TOKEN_ROOTED, strlen(TOKEN_ROOTED), &t), 0);
	assert_memory_equal(&t, &want, sizeof t);
	assert_int_equal(t.rooted, 1);

	make_token(&want, 0);
	text = vk_join_token_encode(&want);
	assert_non_null(text);
	assert_string_equal(text, TOKEN_AUTHORITY);
	free(text);
	assert_int_equal(vk_join_token_decode(TOKEN_AUTHORITY, strlen(TOKEN_AUTHORITY), &t), 0);
	assert_memory_equal(&t, &want, sizeof t);
	assert_int_equal(t.rooted, 0);

	/* made here, the same token: the helpers of the refusals below are sound */
	text = token_of(TOKEN_JSON, strlen(TOKEN_JSON));
	assert_string_equal(text, TOKEN_ROOTED);
	free(text);
}

/* Blanks around the token are read past; any inside it, or anything else around it, is not. */
static void
test_token_blanks(void **state)
{
	static const char *const accepted[] = {
	    " " TOKEN_ROOTED,
	    TOKEN_ROOTED "\n",
	    "\t\r\n " TOKEN_ROOTED " \r\n\t",
	};
	static const char *const refused[] = {
	    "\v" TOKEN_ROOTED,      TOKEN_ROOTED "\f", TOKEN_ROOTED "\n.",
	    "\"" TOKEN_ROOTED "\"", " \n\t\r",         "",
	};
	struct vk_join_token t, want;

	(void)state;
	make_token(&want, 1);
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
		assert_int_equal(vk_join_token_decode(accepted[i], strlen(accepted[i]), &t), 0);
		assert_memory_equal(&t, &want, sizeof t);
	}
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (vk_join_token_decode(refused[i], strlen(refused[i]), &t) != -1)
			fail_msg("accepted: %s", refused[i]);
	/* a blank after the prefix, or in the middle of the base64 */
	for (size_t i = sizeof VK_JOIN_PREFIX - 1; i + 1 < strlen(TOKEN_ROOTED); i += 7)
		for (const char *b = " \n"; *b != '\0'; b++) {
			char *text;

			assert_true(asprintf(&text, "%.*s%c%s", (int)i, TOKEN_ROOTED, *b,
			                     TOKEN_ROOTED + i) > 0);
			assert_int_equal(vk_join_token_decode(text, strlen(text), &t), -1);
			free(text);
		}
	/* a NUL ends nothing: it is a byte like another */
	assert_int_equal(vk_join_token_decode(TOKEN_ROOTED "\0", sizeof TOKEN_ROOTED, &t), -1);
}

static void
test_token_prefix(void **state)
{
	static const char *const prefixes[] = {"vkj2.", "VKJ1.", "vkj1",  "vkj1..", "vkj.",
	                                       "vk1.",  "",      "vkj1:", "xvkj1.", "vkj1.vkj1."};
	struct vk_join_token t;
	const char *b64 = TOKEN_ROOTED + sizeof VK_JOIN_PREFIX - 1;
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		assert_true(asprintf(&text, "%s%s", prefixes[i], b64) > 0);
		if (vk_join_token_decode(text, strlen(text), &t) != -1)
			fail_msg("accepted the prefix \"%s\"", prefixes[i]);
		free(text);
	}
	assert_int_equal(vk_join_token_decode("vkj1.", 5, &t), -1);
	assert_int_equal(vk_join_token_decode("vkj1", 4, &t), -1);
	assert_int_equal(vk_join_token_decode("", 0, &t), -1);
}

/*
 * The base64 has one spelling: unpadded, URL-safe. TOKEN_JSON is 476
 * bytes, so its base64 ends in 2 bits that must be zero, and padded it
 * would end in "=".
 */
static void
test_token_base64(void **state)
{
	struct vk_join_token t;
	char *text;
	size_t len = strlen(TOKEN_ROOTED);

	(void)state;
	assert_int_equal(strlen(TOKEN_JSON) % 3, 2);
	assert_int_equal(vk_join_token_decode(TOKEN_ROOTED "=", len + 1, &t), -1);
	assert_int_equal(vk_join_token_decode(TOKEN_ROOTED "==", len + 2, &t), -1);
	assert_int_equal(
	    vk_join_token_decode(TOKEN_AUTHORITY "==", strlen(TOKEN_AUTHORITY) + 2, &t), -1);
	/* the last character with an unused bit set: "In0" is "}", and so would "In1" be */
	assert_int_equal(TOKEN_ROOTED[len - 1], '0');
	text = strdup(TOKEN_ROOTED);
	assert_non_null(text);
	text[len - 1] = '1';
	assert_int_equal(vk_join_token_decode(text, len, &t), -1);
	free(text);
	/* the base64 of '+' and '/': servers that make a '-' and a '_' in the token's */
	for (int i = 0; i < 2; i++) {
		struct vk_join_token want;
		char *dash;

		make_token(&want, 1);
		strcpy(want.servers, i == 0 ? "nats://a?>~:4222" : "nats://host~>?:4222");
		text = vk_join_token_encode(&want);
		assert_non_null(text);
		assert_int_equal(vk_join_token_decode(text, strlen(text), &t), 0);
		dash = strpbrk(text, "-_");
		assert_non_null(dash);
		*dash = *dash == '-' ? '+' : '/';
		assert_int_equal(vk_join_token_decode(text, strlen(text), &t), -1);
		free(text);
	}
}

/*
 * Any one character of the base64 changed: the decoder refuses the text,
 * or reads a token whose text is exactly the changed one (the token
 * carries no checksum, so a change inside a secret or an address may well
 * be another token). No token has two texts. A character that base64url
 * has not is refused anywhere. Every text cut short, or one character
 * longer, is refused.
 */
static void
test_token_one_character(void **state)
{
	static const char others[] = "AQgw09-_+/=. \n\"\\";
	const char *tokens[] = {TOKEN_ROOTED, TOKEN_AUTHORITY};
	struct vk_join_token t, orig;
	size_t refused = 0, accepted = 0;

	(void)state;
	for (size_t k = 0; k < sizeof tokens / sizeof tokens[0]; k++) {
		size_t len = strlen(tokens[k]);
		char *text = strdup(tokens[k]), *again;

		assert_non_null(text);
		assert_int_equal(vk_join_token_decode(tokens[k], len, &orig), 0);
		for (size_t i = sizeof VK_JOIN_PREFIX - 1; i < len; i++)
			for (const char *o = others; *o != '\0'; o++) {
				if (*o == tokens[k][i])
					continue;
				text[i] = *o;
				if (vk_join_token_decode(text, len, &t) != 0) {
					refused++;
				} else {
					accepted++;
					assert_true(strchr("+/=. \n\"\\", *o) == NULL);
					assert_memory_not_equal(&t, &orig, sizeof t);
					again = vk_join_token_encode(&t);
					assert_non_null(again);
					assert_string_equal(again, text);
					free(again);
				}
				text[i] = tokens[k][i];
			}
		for (size_t n = 0; n < len; n++)
			assert_int_equal(vk_join_token_decode(tokens[k], n, &t), -1);
		for (const char *o = others; *o != '\0'; o++) {
			if (*o == ' ' || *o == '\n')
				continue;
			free(text);
			assert_true(asprintf(&text, "%s%c", tokens[k], *o) > 0);
			assert_int_equal(vk_join_token_decode(text, len + 1, &t), -1);
		}
		free(text);
	}
	/* most changes break the JSON; some are other secrets, addresses or names */
	assert_true(refused > 10 * accepted);
}

/* TOKEN_JSON with one change each: a field missing, added, moved, spaced, or of a bad value. */
static void
test_token_fields(void **state)
{
	static const struct {
		const char *from, *to;
	} refused[] = {
	    /* the shape */
	    {"{\"v\":1,", "{\"v\":2,"},
	    {"{\"v\":1,", "{\"v\":01,"},
	    {"{\"v\":1,", "{\"v\":\"1\","},
	    {"{\"v\":1,", "{\"v\": 1,"},
	    {"{\"v\":1,", "{ \"v\":1,"},
	    {"{\"v\":1,", "{\"v\":1 ,"},
	    {"{\"v\":1,", "{\"v\":1,\"x\":1,"},
	    {"{\"v\":1,", "{\"id\":\"" ID "\",\"v\":1,"},
	    {"{\"v\":1,", "{"},
	    {"\"}", "\",\"extra\":\"\"}"},
	    {"\"}", "\"} "},
	    {"\"}", "\"}\n"},
	    {"\"}", "\"}}"},
	    {"\"}", "\""},
	    {"\"bucket\":\"viamkey\",", ""},
	    {"\"bucket\":\"viamkey\",", "\"bucket\":\"viamkey\",\"bucket\":\"viamkey\","},
	    {"\"bucket\":\"viamkey\",\"trust\":\"root\"",
	     "\"trust\":\"root\",\"bucket\":\"viamkey\""},
	    {"\"key\":\"" KEY "\",\"signer\":\"" SIGNER "\"",
	     "\"signer\":\"" SIGNER "\",\"key\":\"" KEY "\""},
	    {"\"key\":", "\"Key\":"},
	    {"\"key\":", "\"key\" :"},
	    {",\"seed\"", ", \"seed\""},
	    {",\"seed\"", ",\n\"seed\""},
	    /* the id */
	    {ID, "0F8FAD5B-D9CB-469F-A165-70867728950E"},
	    {ID, "0f8fad5b-d9cb-369f-a165-70867728950e"}, /* not version 4 */
	    {ID, "0f8fad5bd9cb469fa16570867728950e"},
	    {ID, ""},
	    {ID, ID "0"},
	    /* the secret: 64 lowercase hexadecimal digits */
	    {SECRET, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"},
	    {SECRET, "00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
	    {SECRET, "0" SECRET},
	    {SECRET, SECRET "00"},
	    {SECRET, "0g0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
	    {SECRET, " 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"},
	    {SECRET, ""},
	    {"\"" SECRET "\"", "0"},
	    /* the trust */
	    {"\"root\"", "\"Root\""},
	    {"\"root\"", "\"roots\""},
	    {"\"root\"", "\"\""},
	    {"\"root\"", "\"authority \""},
	    {"\"root\"", "true"},
	    /* the keys: 32 bytes in padded base64 of '+' and '/', one spelling */
	    {KEY, "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s="},
	    {KEY, "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s"},
	    {KEY, "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/t="},
	    {KEY, "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=="},
	    {KEY, "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+w=="}, /* 31 bytes */
	    {KEY, "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7"}, /* 33 bytes */
	    {KEY, "AAAA" KEY},
	    {KEY, ""},
	    {SIGNER, "//////////////////////////////////////////8"},
	    {SIGNER, "//////////////////////////////////////////9="},
	    {SIGNER, "//////////////////////////////////////////8= "},
	    /* the JWT: letters, digits, '-', '_', '.' */
	    {JWT, ""},
	    {JWT, JWT "="},
	    {JWT, "a/b"},
	    {JWT, "a+b"},
	    {JWT, "a b"},
	    /* the seed: a user's */
	    {USER_SEED, ACCT_SEED},
	    {USER_SEED, USER},
	    {USER_SEED, "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FZ"},
	    {USER_SEED, "suaaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibh4fy"},
	    {USER_SEED, USER_SEED "A"},
	    {USER_SEED, ""},
	    /* the servers and the bucket: not empty, printable ASCII, nothing JSON escapes */
	    {SERVERS, ""},
	    {SERVERS, "nats://a\\\"b"},
	    {SERVERS, "nats://a\\\\b"},
	    {SERVERS, "nats://a\\u0041"},
	    {SERVERS, "nats://a\\/b"},
	    {SERVERS, "nats://a\"b"},
	    {SERVERS, "nats://a\tb"},
	    {SERVERS, "nats://a\nb"},
	    {SERVERS, "nats://a\x1f"},
	    {SERVERS, "nats://a\x7f"},
	    {SERVERS, "nats://\xc3\xa9"},
	    {SERVERS, "nats://\xff"},
	    {"\"viamkey\"", "\"\""},
	    {"\"viamkey\"", "\"vi\\\"amkey\""},
	    {"\"viamkey\"", "\"vi\\\\amkey\""},
	    {"\"viamkey\"", "\"vi\ramkey\""},
	    {"\"viamkey\"", "\"vi\x80\""},
	};
	struct vk_join_token t;
	char *json;

	(void)state;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		json = replaced(TOKEN_JSON, refused[i].from, refused[i].to);
		if (decode_json(json, strlen(json), &t) != -1)
			fail_msg("accepted %s", json);
		free(json);
	}
	/* a NUL byte in each string */
	{
		static const char *const fields[] = {"0f8f",    "\"000102", "nats://",
		                                     "\"viamk", "\"roo",    "\"+/v7",
		                                     "\"/////", "\"eyJ0",   "\"SUAA"};

		for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
			size_t len = strlen(TOKEN_JSON);
			char *at;

			json = strdup(TOKEN_JSON);
			assert_non_null(json);
			at = strstr(json, fields[i]);
			assert_non_null(at);
			at[strlen(fields[i])] = '\0';
			if (decode_json(json, len, &t) != -1)
				fail_msg("accepted a NUL after %s", fields[i]);
			free(json);
		}
	}
}

/* The strings at their limits: the longest of each goes and comes back, one more is refused. */
static void
test_token_limits(void **state)
{
	static const struct {
		const char *from;
		size_t max;
		char c;
	} limits[] = {
	    {SERVERS, VK_JOIN_SERVERS_MAX - 1, 'n'},
	    {"viamkey", VK_JOIN_BUCKET_MAX - 1, 'b'},
	    {JWT, VK_JOIN_JWT_MAX - 1, 'e'},
	};
	struct vk_join_token t, back;
	char *json, *text, *s;

	(void)state;
	for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
		s = repeat(limits[i].c, limits[i].max);
		json = replaced(TOKEN_JSON, limits[i].from, s);
		assert_int_equal(decode_json(json, strlen(json), &t), 0);
		text = vk_join_token_encode(&t);
		assert_non_null(text);
		assert_int_equal(vk_join_token_decode(text, strlen(text), &back), 0);
		assert_memory_equal(&back, &t, sizeof t);
		free(text);
		free(json);
		free(s);

		s = repeat(limits[i].c, limits[i].max + 1);
		json = replaced(TOKEN_JSON, limits[i].from, s);
		assert_int_equal(decode_json(json, strlen(json), &t), -1);
		free(json);
		free(s);
	}
	/* all three at once */
	make_token(&t, 1);
	memset(t.servers, 'n', sizeof t.servers - 1);
	memset(t.bucket, 'b', sizeof t.bucket - 1);
	memset(t.jwt, 'e', sizeof t.jwt - 1);
	text = vk_join_token_encode(&t);
	assert_non_null(text);
	assert_int_equal(vk_join_token_decode(text, strlen(text), &back), 0);
	assert_memory_equal(&back, &t, sizeof t);
	free(text);
}

/* What the encoder refuses to write: a string that JSON would escape, or that the decoder refuses.
 */
static void
test_token_encode_refused(void **state)
{
	static const char *const strings[] = {"",     "a\"b", "a\\b",    "a\nb",
	                                      "a\tb", "\x7f", "\xc3\xa9"};
	struct vk_join_token t;

	(void)state;
	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		make_token(&t, 1);
		strcpy(t.servers, strings[i]);
		assert_null(vk_join_token_encode(&t));
		make_token(&t, 1);
		strcpy(t.bucket, strings[i]);
		assert_null(vk_join_token_encode(&t));
		make_token(&t, 1);
		strcpy(t.jwt, strings[i]);
		assert_null(vk_join_token_encode(&t));
	}
	make_token(&t, 1);
	strcpy(t.jwt, "a/b");
	assert_null(vk_join_token_encode(&t));
	make_token(&t, 1);
	strcpy(t.id, "0F8FAD5B-D9CB-469F-A165-70867728950E");
	assert_null(vk_join_token_encode(&t));
	make_token(&t, 1);
	t.id[0] = '\0';
	assert_null(vk_join_token_encode(&t));
	make_token(&t, 1);
	strcpy(t.seed, "SUAA\"");
	assert_null(vk_join_token_encode(&t));
}

/* ---- the request -------------------------------------------------------------------- */

static void
make_request(struct vk_join_request *r)
{
	memset(r, 0, sizeof *r);
	strcpy(r->token, ID);
	for (size_t i = 0; i < sizeof r->secret; i++)
		r->secret[i] = (unsigned char)i;
	strcpy(r->name, HOST);
	strcpy(r->user, USER);
}

static void
test_request_vectors(void **state)
{
	struct vk_join_request r, want;
	char out[512];

	(void)state;
	make_request(&want);
	assert_int_equal(vk_join_request_encode(&want, out, sizeof out), 0);
	assert_string_equal(out, REQUEST);
	assert_int_equal(vk_join_request_decode(REQUEST, strlen(REQUEST), &r), 0);
	assert_memory_equal(&r, &want, sizeof r);
	/* the text and its NUL must fit */
	assert_int_equal(vk_join_request_encode(&want, out, sizeof REQUEST), 0);
	assert_string_equal(out, REQUEST);
	assert_int_equal(vk_join_request_encode(&want, out, sizeof REQUEST - 1), -1);
}

static void
test_request_refused(void **state)
{
	static const struct {
		const char *from, *to;
	} refused[] = {
	    {"{\"v\":1,", "{\"v\": 1,"},
	    {"{\"v\":1,", "{\"v\":1, "},
	    {"{\"v\":1,", "{\"v\":2,"},
	    {"{\"v\":1,", "{\"v\":1,\"v\":1,"},
	    {"\"join\"", "\"joined\""},
	    {"\"join\"", "\"Join\""},
	    {"\"type\":\"join\",\"token\":\"" ID "\"", "\"token\":\"" ID "\",\"type\":\"join\""},
	    {"\"name\":\"" HOST "\",\"user\":\"" USER "\"",
	     "\"user\":\"" USER "\",\"name\":\"" HOST "\""},
	    {"\"name\":\"" HOST "\",", ""},
	    {"\"name\":\"" HOST "\",", "\"name\":\"" HOST "\",\"name\":\"" HOST "\","},
	    {"\"user\":\"" USER "\"}", "\"user\":\"" USER "\",\"user\":\"" USER "\"}"},
	    {"\"}", "\"} "},
	    {"\"}", "\"}\n"},
	    {"\"}", "\"}x"},
	    {"\"}", "\",}"},
	    {ID, "0F8FAD5B-D9CB-469F-A165-70867728950E"},
	    {SECRET, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"},
	    {SECRET, "0" SECRET},
	    {USER, ACCOUNT},
	    {USER, USER_SEED},
	    {USER, "UDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYREW"},
	    {HOST, ""},
	    {HOST, "host 1"},
	    {HOST, "host/1"},
	    {HOST, "host\\\"1"},
	    {HOST, "h\xc3\xa9"},
	};
	struct vk_join_request r;
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		text = replaced(REQUEST, refused[i].from, refused[i].to);
		if (vk_join_request_decode(text, strlen(text), &r) != -1)
			fail_msg("accepted %s", text);
		free(text);
	}
	for (size_t n = 0; n < strlen(REQUEST); n++)
		assert_int_equal(vk_join_request_decode(REQUEST, n, &r), -1);
	assert_int_equal(vk_join_request_decode(REQUEST "\0", sizeof REQUEST, &r), -1);
	/* a NUL inside the name */
	text = strdup(REQUEST);
	assert_non_null(text);
	strstr(text, HOST)[4] = '\0';
	assert_int_equal(vk_join_request_decode(text, strlen(REQUEST), &r), -1);
	free(text);
}

/* A host name: 1 to VK_JOIN_NAME_MAX - 1 letters, digits, '.', '-' and '_'. */
static void
test_names(void **state)
{
	static const char *const valid[] = {"a", "Z",  "9", "host-1.example_net",
	                                    ".", "..", "-", "_"};
	static const char *const invalid[] = {"",     "a b",  "a/b", "/",         "a\"b",
	                                      "a\\b", "a\nb", "a\t", "a:b",       "a@b",
	                                      "a*",   "a>",   "a,b", "h\xc3\xa9", "\x7f"};
	struct vk_join_request r, back;
	char out[512], *name, *text;

	(void)state;
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
		if (!vk_join_name_valid(valid[i]))
			fail_msg("refused \"%s\"", valid[i]);
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
		if (vk_join_name_valid(invalid[i]))
			fail_msg("accepted \"%s\"", invalid[i]);
		make_request(&r);
		strcpy(r.name, invalid[i]);
		assert_int_equal(vk_join_request_encode(&r, out, sizeof out), -1);
	}

	/* the longest name goes and comes back */
	name = repeat('n', VK_JOIN_NAME_MAX - 1);
	assert_true(vk_join_name_valid(name));
	make_request(&r);
	strcpy(r.name, name);
	assert_int_equal(vk_join_request_encode(&r, out, sizeof out), 0);
	assert_int_equal(vk_join_request_decode(out, strlen(out), &back), 0);
	assert_memory_equal(&back, &r, sizeof r);
	free(name);

	/* one more is refused, as a name and in a request */
	name = repeat('n', VK_JOIN_NAME_MAX);
	assert_false(vk_join_name_valid(name));
	text = replaced(REQUEST, HOST, name);
	assert_int_equal(vk_join_request_decode(text, strlen(text), &back), -1);
	free(text);
	free(name);
}

static void
test_request_encode_refused(void **state)
{
	struct vk_join_request r;
	char out[512];

	(void)state;
	make_request(&r);
	strcpy(r.token, "0F8FAD5B-D9CB-469F-A165-70867728950E");
	assert_int_equal(vk_join_request_encode(&r, out, sizeof out), -1);
	make_request(&r);
	strcpy(r.user, ACCOUNT);
	assert_int_equal(vk_join_request_encode(&r, out, sizeof out), -1);
	make_request(&r);
	r.user[0] = '\0';
	assert_int_equal(vk_join_request_encode(&r, out, sizeof out), -1);
}

/* ---- the answer --------------------------------------------------------------------- */

static void
make_joined(struct vk_join_answer *a)
{
	memset(a, 0, sizeof *a);
	a->why = VK_JOIN_OK;
	strcpy(a->machine, MACHINE);
	strcpy(a->location, LOCATION);
	strcpy(a->org, ORG);
	strcpy(a->jwt, JWT);
}

static void
test_answer_vectors(void **state)
{
	struct vk_join_answer a, want;
	char out[512];

	(void)state;
	make_joined(&want);
	assert_int_equal(vk_join_answer_encode(&want, out, sizeof out), 0);
	assert_string_equal(out, JOINED);
	assert_int_equal(vk_join_answer_decode(JOINED, strlen(JOINED), &a), 0);
	assert_memory_equal(&a, &want, sizeof a);
	assert_int_equal(vk_join_answer_encode(&want, out, sizeof JOINED), 0);
	assert_int_equal(vk_join_answer_encode(&want, out, sizeof JOINED - 1), -1);

	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		const char *text = refusals[i].text;

		/* a refusal says why, and nothing else even when the fields are set */
		make_joined(&want);
		want.why = refusals[i].why;
		assert_int_equal(vk_join_answer_encode(&want, out, sizeof out), 0);
		assert_string_equal(out, text);
		assert_int_equal(vk_join_answer_encode(&want, out, strlen(text)), -1);
		assert_int_equal(vk_join_answer_decode(text, strlen(text), &a), 0);
		assert_int_equal(a.why, refusals[i].why);
		assert_string_equal(a.machine, "");
		assert_string_equal(a.jwt, "");
	}
}

static void
test_refusal_names(void **state)
{
	static const char *const unknown[] = {"", "ok", "Wrong", "wrong ", "busy\n", "refused"};

	(void)state;
	assert_string_equal(vk_join_refusal_name(VK_JOIN_OK), "");
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		assert_string_equal(vk_join_refusal_name(refusals[i].why), refusals[i].name);
		assert_int_equal(vk_join_refusal_parse(refusals[i].name), refusals[i].why);
	}
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
		assert_int_equal(vk_join_refusal_parse(unknown[i]), VK_JOIN_OK);
}

static void
test_answer_refused(void **state)
{
	static const char *const refused[] = {
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"ok\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"Wrong\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong \"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong\\\"\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrongwrongwrongwrong\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong\"} ",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong\"}\n",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong\",\"why\":\"wrong\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\": \"wrong\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":1}",
	    "{\"v\":1,\"why\":\"wrong\",\"type\":\"refused\"}",
	    "{\"type\":\"refused\",\"v\":1,\"why\":\"wrong\"}",
	    "{\"v\":1,\"type\":\"refused\"}",
	    "{\"v\":2,\"type\":\"refused\",\"why\":\"wrong\"}",
	    "{\"v\":1,\"type\":\"Refused\",\"why\":\"wrong\"}",
	    "{\"v\":1,\"type\":\"joined\",\"why\":\"wrong\"}",
	    "{\"v\":1,\"type\":\"refused\",\"why\":\"wrong\",\"machine\":\"" MACHINE "\"}",
	};
	static const struct {
		const char *from, *to;
	} joined[] = {
	    {"\"joined\"", "\"join\""},
	    {"\"joined\"", "\"refused\""},
	    {"{\"v\":1,", "{\"v\": 1,"},
	    {"{\"v\":1,", "{\"v\":1,\"v\":1,"},
	    {MACHINE, "6BA7B810-9DAD-41D1-80B4-00C04FD430C8"},
	    {MACHINE, ""},
	    {LOCATION, "3d6f0a1e-5c2b-1e8a-9f7d-1b2c3d4e5f60"},
	    {ORG, ORG "\\\""},
	    {JWT, ""},
	    {JWT, "a/b"},
	    {JWT, JWT "="},
	    {"\"machine\":\"" MACHINE "\",\"location\":\"" LOCATION "\"",
	     "\"location\":\"" LOCATION "\",\"machine\":\"" MACHINE "\""},
	    {"\"org\":\"" ORG "\",", ""},
	    {"\"org\":\"" ORG "\",", "\"org\":\"" ORG "\",\"org\":\"" ORG "\","},
	    {"\"}", "\"} "},
	    {"\"}", "\"}\n"},
	    {"\"}", "\",\"why\":\"\"}"},
	};
	struct vk_join_answer a;
	char *text;

	(void)state;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (vk_join_answer_decode(refused[i], strlen(refused[i]), &a) != -1)
			fail_msg("accepted %s", refused[i]);
	for (size_t i = 0; i < sizeof joined / sizeof joined[0]; i++) {
		text = replaced(JOINED, joined[i].from, joined[i].to);
		if (vk_join_answer_decode(text, strlen(text), &a) != -1)
			fail_msg("accepted %s", text);
		free(text);
	}
	for (size_t n = 0; n < strlen(JOINED); n++)
		assert_int_equal(vk_join_answer_decode(JOINED, n, &a), -1);
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
		for (size_t n = 0; n < strlen(refusals[i].text); n++)
			assert_int_equal(vk_join_answer_decode(refusals[i].text, n, &a), -1);
	/* a NUL inside the JWT, or inside why */
	text = strdup(JOINED);
	assert_non_null(text);
	strstr(text, JWT)[4] = '\0';
	assert_int_equal(vk_join_answer_decode(text, strlen(JOINED), &a), -1);
	free(text);
	assert_int_equal(
	    vk_join_answer_decode("{\"v\":1,\"type\":\"refused\",\"why\":\"used\0x\"}", 41, &a),
	    -1);
}

static void
test_answer_encode_refused(void **state)
{
	struct vk_join_answer a;
	char out[512];

	(void)state;
	make_joined(&a);
	strcpy(a.machine, "6BA7B810-9DAD-41D1-80B4-00C04FD430C8");
	assert_int_equal(vk_join_answer_encode(&a, out, sizeof out), -1);
	make_joined(&a);
	a.location[0] = '\0';
	assert_int_equal(vk_join_answer_encode(&a, out, sizeof out), -1);
	make_joined(&a);
	strcpy(a.org, "x");
	assert_int_equal(vk_join_answer_encode(&a, out, sizeof out), -1);
	make_joined(&a);
	strcpy(a.jwt, "a\"b");
	assert_int_equal(vk_join_answer_encode(&a, out, sizeof out), -1);
	make_joined(&a);
	a.jwt[0] = '\0';
	assert_int_equal(vk_join_answer_encode(&a, out, sizeof out), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_token_vectors),
	    cmocka_unit_test(test_token_blanks),
	    cmocka_unit_test(test_token_prefix),
	    cmocka_unit_test(test_token_base64),
	    cmocka_unit_test(test_token_one_character),
	    cmocka_unit_test(test_token_fields),
	    cmocka_unit_test(test_token_limits),
	    cmocka_unit_test(test_token_encode_refused),
	    cmocka_unit_test(test_request_vectors),
	    cmocka_unit_test(test_request_refused),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_request_encode_refused),
	    cmocka_unit_test(test_answer_vectors),
	    cmocka_unit_test(test_refusal_names),
	    cmocka_unit_test(test_answer_refused),
	    cmocka_unit_test(test_answer_encode_refused),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
