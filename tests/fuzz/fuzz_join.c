/*
 * fuzz_join.c - libFuzzer target for join tokens, requests and answers
 * (join.h) and the bus keys' file (busid.h).
 *
 * Input: any bytes, taken six ways.
 *  - As a token's text, and as a token's JSON, which this target makes a
 *    token ("vkj1." and its base64url) so that the JSON reader sees any
 *    text: what vk_join_token_decode() accepts, vk_join_token_encode()
 *    writes again byte for byte, but for the blanks around the text that
 *    the decoder reads past; a refusal leaves zeros.
 *  - As a request's text and as an answer's: what the decoders accept, the
 *    encoders write again byte for byte, and a request's name is valid.
 *  - As a refusal's name (up to a NUL): the one it parses to has that name.
 *  - As a bus keys file: what vk_bus_keys_parse() accepts,
 *    vk_bus_keys_text() writes again byte for byte.
 *  - As SERVERS\0BUCKET\0JWT\0NAME\0REST: whatever token, request and
 *    answer the encoders write from these fields (the secret, keys, trust
 *    and refusal from REST; fixed IDs, seed and user), the decoders read
 *    back to the same fields, and a request is written exactly when its
 *    name is valid.
 *  - Its first 96 bytes (zero-padded), as the three seeds of a bus keys
 *    file, survive text-then-parse.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busid.h"
#include "fuzz_util.h"
#include "join.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID        "0f8fad5b-d9cb-469f-a165-70867728950e"
#define ORG       "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
#define USER_SEED "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FY"
#define USER      "UDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYREV"
#define TEXT_MAX  (VK_JOIN_JWT_MAX + 512) /* a request's or an answer's text, and more */

static int
blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
check_token(const char *text, size_t len)
{
	struct vk_join_token t;
	char *again;

	if (vk_join_token_decode(text, len, &t) != 0) {
		FZ_CHECK(fz_all_zero(&t, sizeof t));
		return;
	}
	while (len > 0 && blank(text[0])) {
		text++;
		len--;
	}
	while (len > 0 && blank(text[len - 1]))
		len--;
	again = vk_join_token_encode(&t);
	FZ_CHECK(again != NULL);
	FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
	free(again);
}

/* The input as a token's JSON, made a token here. */
static void
check_token_json(const char *json, size_t len)
{
	size_t size = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *text = malloc(sizeof VK_JOIN_PREFIX - 1 + size);

	if (text == NULL)
		fz_die("out of memory");
	memcpy(text, VK_JOIN_PREFIX, sizeof VK_JOIN_PREFIX - 1);
	sodium_bin2base64(text + sizeof VK_JOIN_PREFIX - 1, size, (const unsigned char *)json, len,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	check_token(text, strlen(text));
	free(text);
}

static void
check_request(const char *text, size_t len)
{
	static char again[TEXT_MAX];
	struct vk_join_request r;

	if (vk_join_request_decode(text, len, &r) != 0) {
		FZ_CHECK(fz_all_zero(&r, sizeof r));
		return;
	}
	FZ_CHECK(vk_join_name_valid(r.name));
	FZ_CHECK(vk_join_request_encode(&r, again, sizeof again) == 0);
	FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
}

static void
check_answer(const char *text, size_t len)
{
	static char again[TEXT_MAX];
	struct vk_join_answer a;

	if (vk_join_answer_decode(text, len, &a) != 0)
		return;
	FZ_CHECK(vk_join_answer_encode(&a, again, sizeof again) == 0);
	FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
}

static void
check_refusal(const uint8_t *data, size_t size)
{
	char *name = fz_strndup(data, size);
	enum vk_join_refusal why = vk_join_refusal_parse(name);

	if (why != VK_JOIN_OK)
		FZ_CHECK(strcmp(vk_join_refusal_name(why), name) == 0);
	free(name);
}

static void
check_keys(const char *text, size_t len)
{
	char again[VK_BUS_KEYS_TEXT_MAX];
	struct vk_bus_keys k;

	if (vk_bus_keys_parse(text, len, &k) != 0)
		return;
	FZ_CHECK(vk_bus_keys_text(&k, again) == 0);
	FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
}

static void
check_keys_round_trip(const uint8_t *data, size_t size)
{
	struct vk_bus_keys k, back;
	char text[VK_BUS_KEYS_TEXT_MAX];

	memset(&k, 0, sizeof k);
	memcpy(&k, data, size < sizeof k ? size : sizeof k);
	FZ_CHECK(vk_bus_keys_text(&k, text) == 0);
	FZ_CHECK(strlen(text) == VK_BUS_KEYS * (VK_NKEY_SEED_LEN + 1));
	FZ_CHECK(vk_bus_keys_parse(text, strlen(text), &back) == 0);
	FZ_CHECK(memcmp(&back, &k, sizeof k) == 0);
}

/* The next field of SERVERS\0BUCKET\0JWT\0NAME\0REST into out (cut to size - 1 bytes). */
static const uint8_t *
field(const uint8_t *data, size_t *size, char *out, size_t out_size)
{
	const uint8_t *next;
	size_t len;

	if (data == NULL) {
		out[0] = '\0';
		return NULL;
	}
	next = fz_split(data, *size, &len);
	snprintf(out, out_size, "%.*s", (int)(len < out_size ? len : out_size - 1),
	         (const char *)data);
	*size = next != NULL ? *size - len - 1 : 0;
	return next;
}

static void
check_encoders(const uint8_t *data, size_t size)
{
	static struct vk_join_token t, tback;
	static struct vk_join_answer a, aback;
	static char text[TEXT_MAX];
	struct vk_join_request r, rback;
	unsigned char rest[3 * 32 + 2] = {0};
	const uint8_t *p = data;
	char *token;
	int rc;

	memset(&t, 0, sizeof t);
	memset(&r, 0, sizeof r);
	memset(&a, 0, sizeof a);
	p = field(p, &size, t.servers, sizeof t.servers);
	p = field(p, &size, t.bucket, sizeof t.bucket);
	p = field(p, &size, t.jwt, sizeof t.jwt);
	p = field(p, &size, r.name, sizeof r.name);
	if (p != NULL)
		memcpy(rest, p, size < sizeof rest ? size : sizeof rest);

	strcpy(t.id, ID);
	memcpy(t.secret, rest, 32);
	memcpy(t.key, rest + 32, 32);
	memcpy(t.signer, rest + 64, 32);
	t.rooted = rest[96] & 1;
	strcpy(t.seed, USER_SEED);
	if ((token = vk_join_token_encode(&t)) != NULL) {
		FZ_CHECK(vk_join_token_decode(token, strlen(token), &tback) == 0);
		FZ_CHECK(memcmp(&tback, &t, sizeof t) == 0);
		free(token);
	}

	strcpy(r.token, ID);
	memcpy(r.secret, rest, 32);
	strcpy(r.user, USER);
	rc = vk_join_request_encode(&r, text, sizeof text);
	FZ_CHECK((rc == 0) == vk_join_name_valid(r.name));
	if (rc == 0) {
		FZ_CHECK(vk_join_request_decode(text, strlen(text), &rback) == 0);
		FZ_CHECK(memcmp(&rback, &r, sizeof r) == 0);
	}

	strcpy(a.machine, ID);
	strcpy(a.location, ID);
	strcpy(a.org, ORG);
	strcpy(a.jwt, t.jwt);
	if (vk_join_answer_encode(&a, text, sizeof text) == 0) {
		FZ_CHECK(vk_join_answer_decode(text, strlen(text), &aback) == 0);
		FZ_CHECK(memcmp(&aback, &a, sizeof a) == 0);
	}
	memset(&a, 0, sizeof a);
	a.why = (enum vk_join_refusal)(VK_JOIN_WRONG + rest[97] % VK_JOIN_BUSY);
	FZ_CHECK(vk_join_answer_encode(&a, text, sizeof text) == 0);
	FZ_CHECK(vk_join_answer_decode(text, strlen(text), &aback) == 0);
	FZ_CHECK(memcmp(&aback, &a, sizeof a) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *text = malloc(size ? size : 1);

	if (!ready) {
		fz_setup();
		ready = 1;
	}
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	check_token(text, size);
	check_token_json(text, size);
	check_request(text, size);
	check_answer(text, size);
	check_keys(text, size);
	free(text);
	check_refusal(data, size);
	check_keys_round_trip(data, size);
	check_encoders(data, size);
	return 0;
}
