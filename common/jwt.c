/*
 * jwt.c - NATS JWTs and .creds files: written, and read back.
 *
 * vk_jwt_decode() accepts exactly these claims, and nothing else:
 *
 *   {"jti":J,"iat":N,"iss":ISS,"name":NAME,"sub":SUB[,"exp":E],"nats":OBJECT}
 *
 * with no space outside OBJECT. J is the base32 of the SHA-256 of the same
 * claims with "jti":"". N and E are integers from 0 to 2^53 without a
 * leading zero, E at least 1. ISS is the public nkey of an operator or an
 * account, SUB one of any type. NAME holds no quote, backslash or control
 * character (other bytes are taken as they are, UTF-8 or not). OBJECT is
 * one JSON object as RFC 8259 defines it, nested 32 deep at most; its
 * strings are not checked for UTF-8 and its member names not for
 * duplicates (nats-server's JSON reader takes the last of a name).
 *
 * Security rules for this file:
 *  1. vk_jwt_decode() returns claims only when the key their "iss" names
 *     signed the header and the claims exactly as they are.
 *  2. The readers accept only what the writers write (one spelling), and
 *     read nothing beyond `len` bytes.
 *  3. The writers refuse a name or a "nats" text that could end its string
 *     or its object early, so a caller's text cannot add or replace claims.
 *  4. Seeds are wiped from this file's buffers after use.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base32.h"
#include "canon.h"
#include "jwt.h"

#define HEADER     "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}"
#define B64        sodium_base64_VARIANT_URLSAFE_NO_PADDING
#define HEADER_B64 (sodium_base64_ENCODED_LEN(sizeof HEADER - 1, B64) - 1)
#define SIG_B64    86 /* 64 bytes */
#define JTI_LEN    VK_BASE32_LEN(crypto_hash_sha256_BYTES)
#define JTI_EMPTY  "{\"jti\":\"\""
#define JSON_DEPTH 32
/* the claims after "jti":J: iat, iss, name, sub, ",\"exp\":E" or nothing, nats */
#define CLAIMS_REST ",\"iat\":%lld,\"iss\":\"%s\",\"name\":\"%s\",\"sub\":\"%s\"%s,\"nats\":%s}"

#define CREDS_JWT_BEGIN "-----BEGIN NATS USER JWT-----\n"
#define CREDS_MIDDLE                                                                               \
	"\n------END NATS USER JWT------\n\n"                                                      \
	"************************* IMPORTANT *************************\n"                          \
	"This file holds a NATS user's JWT and its secret seed: whoever reads it can connect as "  \
	"that user.\n\n"                                                                           \
	"-----BEGIN USER NKEY SEED-----\n"
#define CREDS_END "\n------END USER NKEY SEED------\n"

/* ---- text ------------------------------------------------------------------------ */

/* A byte a name may hold: no quote, backslash or control character. */
static int
name_char(char c)
{
	return c != '"' && c != '\\' && (unsigned char)c >= 0x20;
}

static int
name_ok(const char *name)
{
	for (; *name != '\0'; name++)
		if (!name_char(*name))
			return 0;
	return 1;
}

/* Whether text (len bytes) is the public nkey of one of the n types. */
static int
nkey_of(const char *text, size_t len, const enum vk_nkey_type *types, size_t n,
        unsigned char pk[VK_NKEY_KEY_BYTES])
{
	for (size_t i = 0; i < n; i++)
		if (vk_nkey_public_parse(text, len, types[i], pk) == 0)
			return 1;
	return 0;
}

static const enum vk_nkey_type issuers[] = {VK_NKEY_OPERATOR, VK_NKEY_ACCOUNT};
static const enum vk_nkey_type subjects[] = {VK_NKEY_OPERATOR, VK_NKEY_ACCOUNT, VK_NKEY_USER};

/* ---- a strict JSON scanner over the canonical cursor (canon.h) ---------------------- */

/* The next byte, or -1 at the end or once the cursor failed. */
static int
peek(const struct vk_cursor *c)
{
	return c->bad || c->p == c->end ? -1 : (unsigned char)*c->p;
}

static void
json_space(struct vk_cursor *c)
{
	int ch;

	while ((ch = peek(c)) == ' ' || ch == '\t' || ch == '\n' || ch == '\r')
		c->p++;
}

/* One or more decimal digits. */
static void
json_digits(struct vk_cursor *c)
{
	const char *start = c->p;

	while (peek(c) >= '0' && peek(c) <= '9')
		c->p++;
	if (c->p == start)
		c->bad = 1;
}

static void
json_number(struct vk_cursor *c)
{
	if (peek(c) == '-')
		c->p++;
	if (peek(c) == '0')
		c->p++;
	else
		json_digits(c);
	if (peek(c) == '.') {
		c->p++;
		json_digits(c);
	}
	if (peek(c) == 'e' || peek(c) == 'E') {
		c->p++;
		if (peek(c) == '+' || peek(c) == '-')
			c->p++;
		json_digits(c);
	}
}

static void
json_string(struct vk_cursor *c)
{
	int ch;

	vk_canon_lit(c, "\"");
	while ((ch = peek(c)) != '"') {
		if (ch < 0x20) { /* a control character, the end, or a failure */
			c->bad = 1;
			return;
		}
		c->p++;
		if (ch != '\\')
			continue;
		switch (peek(c)) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			c->p++;
			break;
		case 'u':
			c->p++;
			for (int i = 0; i < 4; i++) {
				ch = peek(c);
				if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
				      (ch >= 'A' && ch <= 'F')))
					c->bad = 1;
				else
					c->p++;
			}
			break;
		default:
			c->bad = 1;
		}
	}
	vk_canon_lit(c, "\"");
}

static void json_value(struct vk_cursor *c, int depth);

/* The members of an object or the elements of an array, up to and with its closing byte. */
static void
json_items(struct vk_cursor *c, int depth, int object, const char *close)
{
	json_space(c);
	if (peek(c) == *close) {
		c->p++;
		return;
	}
	for (;;) {
		if (object) {
			json_string(c);
			json_space(c);
			vk_canon_lit(c, ":");
			json_space(c);
		}
		json_value(c, depth);
		json_space(c);
		if (peek(c) != ',')
			break;
		c->p++;
		json_space(c);
	}
	vk_canon_lit(c, close);
}

/* One JSON value at the cursor, with at most depth levels of objects and arrays. */
static void
json_value(struct vk_cursor *c, int depth)
{
	int ch = peek(c);

	if (depth == 0 && (ch == '{' || ch == '['))
		ch = -1;
	switch (ch) {
	case '{':
		c->p++;
		json_items(c, depth - 1, 1, "}");
		break;
	case '[':
		c->p++;
		json_items(c, depth - 1, 0, "]");
		break;
	case '"':
		json_string(c);
		break;
	case 't':
		vk_canon_lit(c, "true");
		break;
	case 'f':
		vk_canon_lit(c, "false");
		break;
	case 'n':
		vk_canon_lit(c, "null");
		break;
	default:
		if (ch == '-' || (ch >= '0' && ch <= '9'))
			json_number(c);
		else
			c->bad = 1;
	}
}

/* A JSON object, nothing before it. */
static void
json_object(struct vk_cursor *c)
{
	if (peek(c) == '{')
		json_value(c, JSON_DEPTH);
	else
		c->bad = 1;
}

/* ---- claims ---------------------------------------------------------------------- */

/* The jti of claims whose text after "jti":J is rest (len bytes). */
static void
jti_of(const char *rest, size_t len, char jti[JTI_LEN + 1])
{
	crypto_hash_sha256_state st;
	unsigned char hash[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)JTI_EMPTY, sizeof JTI_EMPTY - 1);
	crypto_hash_sha256_update(&st, (const unsigned char *)rest, len);
	crypto_hash_sha256_final(&st, hash);
	vk_base32_encode(hash, sizeof hash, jti);
}

/* A quoted public nkey of one of the n types, into pk. */
static void
nkey_field(struct vk_cursor *c, const enum vk_nkey_type *types, size_t n,
           unsigned char pk[VK_NKEY_KEY_BYTES])
{
	char text[VK_NKEY_PUBLIC_LEN + 2];

	vk_canon_str(c, text, sizeof text);
	if (!c->bad && !nkey_of(text, strlen(text), types, n, pk))
		c->bad = 1;
}

/* A quoted name, as name_ok() allows it. */
static void
name_field(struct vk_cursor *c)
{
	vk_canon_lit(c, "\"");
	while (peek(c) != '"' && peek(c) != -1 && name_char(*c->p))
		c->p++;
	vk_canon_lit(c, "\"");
}

/* Whether the text at the cursor starts with s. */
static int
ahead(const struct vk_cursor *c, const char *s)
{
	size_t n = strlen(s);

	return !c->bad && (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0;
}

/* Reads claims (len bytes) as this file's opening comment says; 0 with iss's key in pk, or -1. */
static int
claims_read(const char *claims, size_t len, unsigned char pk[VK_NKEY_KEY_BYTES])
{
	struct vk_cursor c;
	char jti[JTI_LEN + 2], want[JTI_LEN + 1];
	unsigned char sub[VK_NKEY_KEY_BYTES];
	const char *rest;

	vk_canon_start(&c, claims, len);
	vk_canon_lit(&c, "{\"jti\":");
	vk_canon_str(&c, jti, sizeof jti);
	rest = c.p;
	vk_canon_lit(&c, ",\"iat\":");
	vk_canon_num(&c);
	vk_canon_lit(&c, ",\"iss\":");
	nkey_field(&c, issuers, sizeof issuers / sizeof issuers[0], pk);
	vk_canon_lit(&c, ",\"name\":");
	name_field(&c);
	vk_canon_lit(&c, ",\"sub\":");
	nkey_field(&c, subjects, sizeof subjects / sizeof subjects[0], sub);
	if (ahead(&c, ",\"exp\":")) {
		vk_canon_lit(&c, ",\"exp\":");
		if (vk_canon_num(&c) == 0)
			c.bad = 1;
	}
	vk_canon_lit(&c, ",\"nats\":");
	json_object(&c);
	vk_canon_lit(&c, "}");
	if (!vk_canon_done(&c))
		return -1;
	jti_of(rest, len - (size_t)(rest - claims), want);
	return strcmp(jti, want) == 0 ? 0 : -1;
}

/* ---- JWTs ------------------------------------------------------------------------ */

/* The claims after "jti":J (CLAIMS_REST); malloc()ed, NULL when out of memory. */
static char *
claims_rest(const char *iss, const char *name, const char *subject, int64_t iat, int64_t exp,
            const char *nats)
{
	char expires[32] = "", *rest;
	int n;

	if (exp > 0)
		snprintf(expires, sizeof expires, ",\"exp\":%lld", (long long)exp);
	n = snprintf(NULL, 0, CLAIMS_REST, (long long)iat, iss, name, subject, expires, nats);
	if (n < 0 || (rest = malloc((size_t)n + 1)) == NULL)
		return NULL;
	snprintf(rest, (size_t)n + 1, CLAIMS_REST, (long long)iat, iss, name, subject, expires,
	         nats);
	return rest;
}

char *
vk_jwt_encode(const unsigned char *sk, enum vk_nkey_type issuer_type, const char *subject,
              const char *name, int64_t iat, int64_t exp, const char *nats)
{
	unsigned char pk[VK_NKEY_KEY_BYTES], sub[VK_NKEY_KEY_BYTES], sig[crypto_sign_BYTES];
	char iss[VK_NKEY_PUBLIC_LEN + 1], jti[JTI_LEN + 1];
	char *rest = NULL, *claims = NULL, *jwt = NULL, *p;
	size_t clen, size;
	struct vk_cursor c;

	vk_canon_start(&c, nats, strlen(nats));
	json_object(&c);
	if ((issuer_type != VK_NKEY_OPERATOR && issuer_type != VK_NKEY_ACCOUNT) ||
	    !nkey_of(subject, strlen(subject), subjects, sizeof subjects / sizeof subjects[0],
	             sub) ||
	    !name_ok(name) || iat < 0 || iat > VK_CANON_NUM_MAX || exp < 0 ||
	    exp > VK_CANON_NUM_MAX || !vk_canon_done(&c))
		return NULL;
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	vk_nkey_public(issuer_type, pk, iss);
	if ((rest = claims_rest(iss, name, subject, iat, exp, nats)) == NULL)
		goto out;
	jti_of(rest, strlen(rest), jti);
	clen = sizeof JTI_EMPTY - 1 + JTI_LEN + strlen(rest);
	if ((claims = malloc(clen + 1)) == NULL)
		goto out;
	snprintf(claims, clen + 1, "{\"jti\":\"%s\"%s", jti, rest);

	/* header.claims, signed; then .signature */
	size = HEADER_B64 + 1 + sodium_base64_ENCODED_LEN(clen, B64) + 1 + SIG_B64;
	if ((jwt = malloc(size)) == NULL)
		goto out;
	sodium_bin2base64(jwt, HEADER_B64 + 1, (const unsigned char *)HEADER, sizeof HEADER - 1,
	                  B64);
	p = jwt + HEADER_B64;
	*p++ = '.';
	sodium_bin2base64(p, sodium_base64_ENCODED_LEN(clen, B64), (const unsigned char *)claims,
	                  clen, B64);
	p += strlen(p);
	crypto_sign_detached(sig, NULL, (const unsigned char *)jwt, (size_t)(p - jwt), sk);
	*p++ = '.';
	sodium_bin2base64(p, SIG_B64 + 1, sig, sizeof sig, B64);
out:
	free(rest);
	free(claims);
	return jwt;
}

int
vk_jwt_decode(const char *jwt, size_t len, char **claims)
{
	char header[HEADER_B64 + 1], *text = NULL;
	unsigned char pk[VK_NKEY_KEY_BYTES], sig[crypto_sign_BYTES];
	const char *payload, *dot;
	size_t plen, tlen, n;
	int ok;

	*claims = NULL;
	sodium_bin2base64(header, sizeof header, (const unsigned char *)HEADER, sizeof HEADER - 1,
	                  B64);
	/* the header, a dot, at least one character of claims, a dot and the signature */
	if (len < HEADER_B64 + 1 + 1 + 1 + SIG_B64 || memcmp(jwt, header, HEADER_B64) != 0 ||
	    jwt[HEADER_B64] != '.')
		return -1;
	payload = jwt + HEADER_B64 + 1;
	dot = jwt + len - SIG_B64 - 1;
	if (*dot != '.' ||
	    sodium_base642bin(sig, sizeof sig, dot + 1, SIG_B64, NULL, &n, NULL, B64) != 0 ||
	    n != sizeof sig)
		return -1;
	plen = (size_t)(dot - payload);
	if ((text = malloc(plen + 1)) == NULL)
		return -1;
	ok = sodium_base642bin((unsigned char *)text, plen, payload, plen, NULL, &tlen, NULL,
	                       B64) == 0 &&
	     claims_read(text, tlen, pk) == 0;
	/* the signature covers the first two parts as they are written */
	ok = ok && crypto_sign_verify_detached(sig, (const unsigned char *)jwt, (size_t)(dot - jwt),
	                                       pk) == 0;
	if (!ok) {
		free(text);
		return -1;
	}
	text[tlen] = '\0';
	*claims = text;
	return 0;
}

/* ---- .creds ---------------------------------------------------------------------- */

/* Whether jwt (len bytes) is three non-empty parts of base64url characters joined by dots. */
static int
jwt_shaped(const char *jwt, size_t len)
{
	size_t part = 0, dots = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = jwt[i];

		if (ch == '.') {
			if (part == 0 || ++dots > 2)
				return 0;
			part = 0;
		} else if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
			part++;
		} else {
			return 0;
		}
	}
	return dots == 2 && part > 0;
}

/* Whether seed (len bytes) is a user's seed nkey. */
static int
user_seed(const char *seed, size_t len)
{
	unsigned char bytes[VK_NKEY_KEY_BYTES];
	enum vk_nkey_type t;
	int ok = vk_nkey_seed_parse(seed, len, &t, bytes) == 0 && t == VK_NKEY_USER;

	sodium_memzero(bytes, sizeof bytes);
	return ok;
}

char *
vk_creds_format(const char *jwt, const char seed[VK_NKEY_SEED_LEN + 1])
{
	size_t size =
	    sizeof CREDS_JWT_BEGIN CREDS_MIDDLE CREDS_END + strlen(jwt) + VK_NKEY_SEED_LEN;
	char *text;

	if (!jwt_shaped(jwt, strlen(jwt)) ||
	    !user_seed(seed, strnlen(seed, VK_NKEY_SEED_LEN + 1)) || (text = malloc(size)) == NULL)
		return NULL;
	snprintf(text, size, CREDS_JWT_BEGIN "%s" CREDS_MIDDLE "%s" CREDS_END, jwt, seed);
	return text;
}

int
vk_creds_parse(const char *text, size_t len, char **jwt, char seed[VK_NKEY_SEED_LEN + 1])
{
	const size_t begin = sizeof CREDS_JWT_BEGIN - 1, middle = sizeof CREDS_MIDDLE - 1,
	             end = sizeof CREDS_END - 1;
	const char *j = text + begin, *s;
	size_t jlen;

	*jwt = NULL;
	if (len < begin + middle + VK_NKEY_SEED_LEN + end)
		return -1;
	jlen = len - (begin + middle + VK_NKEY_SEED_LEN + end);
	s = j + jlen + middle;
	if (memcmp(text, CREDS_JWT_BEGIN, begin) != 0 ||
	    memcmp(j + jlen, CREDS_MIDDLE, middle) != 0 ||
	    memcmp(s + VK_NKEY_SEED_LEN, CREDS_END, end) != 0 || !jwt_shaped(j, jlen) ||
	    !user_seed(s, VK_NKEY_SEED_LEN) || (*jwt = malloc(jlen + 1)) == NULL)
		return -1;
	memcpy(*jwt, j, jlen);
	(*jwt)[jlen] = '\0';
	memcpy(seed, s, VK_NKEY_SEED_LEN);
	seed[VK_NKEY_SEED_LEN] = '\0';
	return 0;
}
