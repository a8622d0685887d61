/*
 * join.c - join tokens, requests and answers (join.h).
 *
 * Security rules for this file:
 *  1. The decoders accept only the exact text the encoders write, and read
 *     nothing beyond `len` bytes; a token's secret is compared by its
 *     verifier elsewhere (busid.h), never here.
 *  2. The encoders refuse a string that JSON would have to escape, so that
 *     what they write is what the decoders read back.
 *  3. A token's text and secret pass through the caller's memory only:
 *     nothing here keeps or logs them.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "join.h"
#include "token.h"

#define TOKEN_JSON_MAX (VK_JOIN_SERVERS_MAX + VK_JOIN_BUCKET_MAX + VK_JOIN_JWT_MAX + 512)
#define KEY_B64        45 /* 32 bytes, base64 with padding, and the NUL */

/* A string the encoders may write as is: printable ASCII, no quote or backslash. */
static int
plain(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
	return 1;
}

/* Letters, digits, '-' and '_' (and '.' when dots): JWTs and host names. */
static int
word(const char *s, int dots)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || (dots && *s == '.')))
			return 0;
	return 1;
}

int
vk_join_name_valid(const char *name)
{
	return strlen(name) < VK_JOIN_NAME_MAX && word(name, 1);
}

/* A 32-byte key as base64 with padding, in the one spelling the encoder writes. */
static void
key_text(const unsigned char key[VK_JOIN_KEY_BYTES], char out[KEY_B64])
{
	sodium_bin2base64(out, KEY_B64, key, VK_JOIN_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
}

static void
key_field(struct vk_cursor *c, unsigned char key[VK_JOIN_KEY_BYTES])
{
	char text[KEY_B64 + 1], again[KEY_B64];
	size_t n = 0;

	vk_canon_str(c, text, sizeof text);
	if (c->bad ||
	    sodium_base642bin(key, VK_JOIN_KEY_BYTES, text, strlen(text), NULL, &n, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != VK_JOIN_KEY_BYTES) {
		c->bad = 1;
		return;
	}
	key_text(key, again);
	if (strcmp(again, text) != 0)
		c->bad = 1;
}

static void
uuid_field(struct vk_cursor *c, char out[VK_UUID_STRLEN + 1])
{
	vk_canon_str(c, out, VK_UUID_STRLEN + 1);
	if (!c->bad && !vk_uuid_valid(out))
		c->bad = 1;
}

static void
jwt_field(struct vk_cursor *c, char out[VK_JOIN_JWT_MAX])
{
	vk_canon_str(c, out, VK_JOIN_JWT_MAX);
	if (!c->bad && !word(out, 1))
		c->bad = 1;
}

/* ---- the token ---------------------------------------------------------------------- */

char *
vk_join_token_encode(const struct vk_join_token *t)
{
	char secret[2 * VK_JOIN_SECRET_BYTES + 1], key[KEY_B64], signer[KEY_B64], *json, *out;
	unsigned char seed[VK_NKEY_KEY_BYTES];
	enum vk_nkey_type type;
	size_t len, size;
	int n, user_seed;

	/* a user's seed, as the decoder takes it */
	user_seed =
	    vk_nkey_seed_parse(t->seed, strnlen(t->seed, sizeof t->seed), &type, seed) == 0 &&
	    type == VK_NKEY_USER;
	sodium_memzero(seed, sizeof seed);
	if (!vk_uuid_valid(t->id) || !plain(t->servers) || t->servers[0] == '\0' ||
	    !plain(t->bucket) || t->bucket[0] == '\0' || !word(t->jwt, 1) || !user_seed)
		return NULL;
	if ((json = malloc(TOKEN_JSON_MAX)) == NULL)
		return NULL;
	sodium_bin2hex(secret, sizeof secret, t->secret, sizeof t->secret);
	key_text(t->key, key);
	key_text(t->signer, signer);
	n = snprintf(
	    json, TOKEN_JSON_MAX,
	    "{\"v\":1,\"id\":\"%s\",\"secret\":\"%s\",\"servers\":\"%s\",\"bucket\":\"%s\","
	    "\"trust\":\"%s\",\"key\":\"%s\",\"signer\":\"%s\",\"jwt\":\"%s\",\"seed\":\"%s\"}",
	    t->id, secret, t->servers, t->bucket, t->rooted ? "root" : "authority", key, signer,
	    t->jwt, t->seed);
	sodium_memzero(secret, sizeof secret);
	out = NULL;
	if (n > 0 && n < TOKEN_JSON_MAX) {
		len = (size_t)n;
		size = sizeof VK_JOIN_PREFIX - 1 +
		       sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		if ((out = malloc(size)) != NULL) {
			memcpy(out, VK_JOIN_PREFIX, sizeof VK_JOIN_PREFIX - 1);
			sodium_bin2base64(out + sizeof VK_JOIN_PREFIX - 1,
			                  size - (sizeof VK_JOIN_PREFIX - 1),
			                  (const unsigned char *)json, len,
			                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		}
	}
	sodium_memzero(json, TOKEN_JSON_MAX);
	free(json);
	return out;
}

static int
token_json(const char *json, size_t len, struct vk_join_token *t)
{
	struct vk_cursor c;
	char trust[16];
	enum vk_nkey_type type;
	unsigned char seed[VK_NKEY_KEY_BYTES];
	int ok;

	vk_canon_start(&c, json, len);
	vk_canon_lit(&c, "{\"v\":1,\"id\":");
	uuid_field(&c, t->id);
	vk_canon_lit(&c, ",\"secret\":");
	vk_canon_hex(&c, t->secret, sizeof t->secret);
	vk_canon_lit(&c, ",\"servers\":");
	vk_canon_str(&c, t->servers, sizeof t->servers);
	vk_canon_lit(&c, ",\"bucket\":");
	vk_canon_str(&c, t->bucket, sizeof t->bucket);
	vk_canon_lit(&c, ",\"trust\":");
	vk_canon_str(&c, trust, sizeof trust);
	vk_canon_lit(&c, ",\"key\":");
	key_field(&c, t->key);
	vk_canon_lit(&c, ",\"signer\":");
	key_field(&c, t->signer);
	vk_canon_lit(&c, ",\"jwt\":");
	jwt_field(&c, t->jwt);
	vk_canon_lit(&c, ",\"seed\":");
	vk_canon_str(&c, t->seed, sizeof t->seed);
	vk_canon_lit(&c, "}");
	if (!vk_canon_done(&c))
		return -1;
	t->rooted = strcmp(trust, "root") == 0;
	ok = (t->rooted || strcmp(trust, "authority") == 0) && t->servers[0] != '\0' &&
	     plain(t->servers) && t->bucket[0] != '\0' && plain(t->bucket) &&
	     vk_nkey_seed_parse(t->seed, strlen(t->seed), &type, seed) == 0 && type == VK_NKEY_USER;
	sodium_memzero(seed, sizeof seed);
	return ok ? 0 : -1;
}

int
vk_join_token_decode(const char *text, size_t len, struct vk_join_token *t)
{
	const size_t prefix = sizeof VK_JOIN_PREFIX - 1;
	unsigned char *json;
	size_t n = 0;
	int rc = -1;

	memset(t, 0, sizeof *t);
	while (len > 0 &&
	       (text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r')) {
		text++;
		len--;
	}
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' || text[len - 1] == '\n' ||
	                   text[len - 1] == '\r'))
		len--;
	if (len <= prefix || memcmp(text, VK_JOIN_PREFIX, prefix) != 0)
		return -1;
	/* base64url's alphabet only: libsodium took a byte above 0x7f as some letter */
	for (size_t i = prefix; i < len; i++)
		if (!((text[i] >= 'A' && text[i] <= 'Z') || (text[i] >= 'a' && text[i] <= 'z') ||
		      (text[i] >= '0' && text[i] <= '9') || text[i] == '-' || text[i] == '_'))
			return -1;
	if ((json = malloc(TOKEN_JSON_MAX)) == NULL)
		return -1;
	if (sodium_base642bin(json, TOKEN_JSON_MAX, text + prefix, len - prefix, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0)
		rc = token_json((const char *)json, n, t);
	sodium_memzero(json, TOKEN_JSON_MAX);
	free(json);
	if (rc != 0)
		sodium_memzero(t, sizeof *t);
	return rc;
}

/* ---- the request and the answer ------------------------------------------------------- */

int
vk_join_request_encode(const struct vk_join_request *r, char *out, size_t size)
{
	char secret[2 * VK_JOIN_SECRET_BYTES + 1];
	unsigned char user[VK_NKEY_KEY_BYTES];
	int n;

	if (!vk_uuid_valid(r->token) || !vk_join_name_valid(r->name) ||
	    vk_nkey_public_parse(r->user, strlen(r->user), VK_NKEY_USER, user) != 0)
		return -1;
	sodium_bin2hex(secret, sizeof secret, r->secret, sizeof r->secret);
	n = snprintf(
	    out, size,
	    "{\"v\":1,\"type\":\"join\",\"token\":\"%s\",\"secret\":\"%s\",\"name\":\"%s\","
	    "\"user\":\"%s\"}",
	    r->token, secret, r->name, r->user);
	sodium_memzero(secret, sizeof secret);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

int
vk_join_request_decode(const char *text, size_t len, struct vk_join_request *r)
{
	unsigned char user[VK_NKEY_KEY_BYTES];
	struct vk_cursor c;

	memset(r, 0, sizeof *r);
	vk_canon_start(&c, text, len);
	vk_canon_lit(&c, "{\"v\":1,\"type\":\"join\",\"token\":");
	uuid_field(&c, r->token);
	vk_canon_lit(&c, ",\"secret\":");
	vk_canon_hex(&c, r->secret, sizeof r->secret);
	vk_canon_lit(&c, ",\"name\":");
	vk_canon_str(&c, r->name, sizeof r->name);
	vk_canon_lit(&c, ",\"user\":");
	vk_canon_str(&c, r->user, sizeof r->user);
	vk_canon_lit(&c, "}");
	if (vk_canon_done(&c) && vk_join_name_valid(r->name) &&
	    vk_nkey_public_parse(r->user, strlen(r->user), VK_NKEY_USER, user) == 0)
		return 0;
	sodium_memzero(r, sizeof *r);
	return -1;
}

static const char *const refusals[] = {
    [VK_JOIN_OK] = "",       [VK_JOIN_WRONG] = "wrong",     [VK_JOIN_EXPIRED] = "expired",
    [VK_JOIN_USED] = "used", [VK_JOIN_REVOKED] = "revoked", [VK_JOIN_NAME] = "name",
    [VK_JOIN_BUSY] = "busy",
};

const char *
vk_join_refusal_name(enum vk_join_refusal why)
{
	return (size_t)why < sizeof refusals / sizeof refusals[0] ? refusals[why]
	                                                          : refusals[VK_JOIN_BUSY];
}

enum vk_join_refusal
vk_join_refusal_parse(const char *name)
{
	for (size_t i = 1; i < sizeof refusals / sizeof refusals[0]; i++)
		if (strcmp(name, refusals[i]) == 0)
			return (enum vk_join_refusal)i;
	return VK_JOIN_OK;
}

int
vk_join_answer_encode(const struct vk_join_answer *a, char *out, size_t size)
{
	int n;

	if (a->why != VK_JOIN_OK)
		n = snprintf(out, size, "{\"v\":1,\"type\":\"refused\",\"why\":\"%s\"}",
		             vk_join_refusal_name(a->why));
	else if (!vk_uuid_valid(a->machine) || !vk_uuid_valid(a->location) ||
	         !vk_uuid_valid(a->org) || !word(a->jwt, 1))
		return -1;
	else
		n = snprintf(out, size,
		             "{\"v\":1,\"type\":\"joined\",\"machine\":\"%s\",\"location\":\"%s\","
		             "\"org\":\"%s\",\"jwt\":\"%s\"}",
		             a->machine, a->location, a->org, a->jwt);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

int
vk_join_answer_decode(const char *text, size_t len, struct vk_join_answer *a)
{
	static const char refused[] = "{\"v\":1,\"type\":\"refused\",\"why\":";
	struct vk_cursor c;
	char why[16];

	memset(a, 0, sizeof *a);
	vk_canon_start(&c, text, len);
	if (len >= sizeof refused - 1 && memcmp(text, refused, sizeof refused - 1) == 0) {
		vk_canon_lit(&c, refused);
		vk_canon_str(&c, why, sizeof why);
		vk_canon_lit(&c, "}");
		if (!vk_canon_done(&c) || (a->why = vk_join_refusal_parse(why)) == VK_JOIN_OK)
			return -1;
		return 0;
	}
	vk_canon_lit(&c, "{\"v\":1,\"type\":\"joined\",\"machine\":");
	uuid_field(&c, a->machine);
	vk_canon_lit(&c, ",\"location\":");
	uuid_field(&c, a->location);
	vk_canon_lit(&c, ",\"org\":");
	uuid_field(&c, a->org);
	vk_canon_lit(&c, ",\"jwt\":");
	jwt_field(&c, a->jwt);
	vk_canon_lit(&c, "}");
	return vk_canon_done(&c) ? 0 : -1;
}
