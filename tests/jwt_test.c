/*
 * jwt_test.c - NATS JWTs and .creds files (jwt.h): a user's and an
 * operator's JWT and a .creds text against fixed vectors, and every other
 * text refused.
 *
 * The vectors were made apart from this code, in Python: the claims as
 * jwt.h writes them, their jti by hashlib.sha256 and base64.b32encode
 * (padding removed), each part by base64.urlsafe_b64encode (padding
 * removed), and the signature by `openssl pkeyutl -sign -rawin` with a
 * PKCS#8 Ed25519 key holding the fixed seed: 32 bytes of 1 for the
 * operator, 2 for the account, 3 for the account's signing key, 4 for
 * the user. nkey_test.c checks the nkeys.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base32.h"
#include "fixture.h"
#include "jwt.h"
#include "nkey.h"

#define OPERATOR_PUBLIC "OCFIRY65OQE7DFP5KLNS2PF2LVZMUZYJX4OZIEQ36N2IQANUB5XVYOCS"
#define ACCOUNT_PUBLIC  "ACATS5YOVB6ROX2WUNKGNQ2MP3GMXDMKSG2O4N5CLX3A6W4PZGZZIL2R"
#define SIGNING_PUBLIC  "ADWUSKGGFDI4FRXK5EBTRECZSVQSSWJHHJOGH6JWG3AUMFFMQ435D6HD"
#define USER_PUBLIC     "UDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYREV"
#define USER_SEED       "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FY"
#define ACCOUNT_SEED    "SAAAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAUN5U"

#define HEADER "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}"

/* A machine's user, issued by the account's signing key, expiring a day after. */
#define USER_NATS                                                                                  \
	"{\"pub\":{\"allow\":[\"vk.m.>\"]},\"sub\":{\"allow\":[\"_INBOX_m.>\"]},\"subs\":-1,"      \
	"\"data\":-1,\"payload\":-1,\"issuer_account\":\"" ACCOUNT_PUBLIC                          \
	"\",\"type\":\"user\",\"version\":2}"
#define USER_CLAIMS                                                                                \
	"{\"jti\":\"SNCCQF4I3HRFYNGA4FY7LEQUV2KF5IQOVF3M34QYNFPEXQWNAJJQ\",\"iat\":1700000000,"    \
	"\"iss\":\"" SIGNING_PUBLIC "\",\"name\":\"machine-1\",\"sub\":\"" USER_PUBLIC             \
	"\",\"exp\":1700086400,\"nats\":" USER_NATS "}"
#define USER_JWT                                                                                   \
	"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ."                                          \
	"eyJqdGkiOiJTTkNDUUY0STNIUkZZTkdBNEZZN0xFUVVWMktGNUlRT1ZGM00zNFFZTkZQRVhRV05BSkpRIiwiaWF0" \
	"IjoxNzAwMDAwMDAwLCJpc3MiOiJBRFdVU0tHR0ZESTRGUlhLNUVCVFJFQ1pTVlFTU1dKSEhKT0dINkpXRzNBVU1G" \
	"Rk1RNDM1RDZIRCIsIm5hbWUiOiJtYWNoaW5lLTEiLCJzdWIiOiJVREZKSExBWEFVTUhBNE9XUE9CNFA3WU83MkFR" \
	"UjJITUlVWUZPWExYRTJEWkdNNjMzSzdIWVJFViIsImV4cCI6MTcwMDA4NjQwMCwibmF0cyI6eyJwdWIiOnsiYWxs" \
	"b3ciOlsidmsubS4-Il19LCJzdWIiOnsiYWxsb3ciOlsiX0lOQk9YX20uPiJdfSwic3VicyI6LTEsImRhdGEiOi0x" \
	"LCJwYXlsb2FkIjotMSwiaXNzdWVyX2FjY291bnQiOiJBQ0FUUzVZT1ZCNlJPWDJXVU5LR05RMk1QM0dNWERNS1NH" \
	"Mk80TjVDTFgzQTZXNFBaR1paSUwyUiIsInR5cGUiOiJ1c2VyIiwidmVyc2lvbiI6Mn19."                    \
	"uEdzBqtpvbsLE39ATIDyGKYUjXi8OjkSwHo0STWtPLB1bPs8se0AXOQwtt1N8KPRCY6WKXVLqTgZ0L-XIS0bBA"

/* The operator's own JWT, never expiring. */
#define OPERATOR_CLAIMS                                                                            \
	"{\"jti\":\"HSH4A7NBADKWJUVUGBKUGAZSU5I3KPH4RBWABKXFIAVR4EU222AQ\",\"iat\":1700000000,"    \
	"\"iss\":\"" OPERATOR_PUBLIC "\",\"name\":\"viamkey\",\"sub\":\"" OPERATOR_PUBLIC          \
	"\",\"nats\":{\"type\":\"operator\",\"version\":2}}"
#define OPERATOR_JWT                                                                               \
	"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ."                                          \
	"eyJqdGkiOiJIU0g0QTdOQkFES1dKVVZVR0JLVUdBWlNVNUkzS1BINFJCV0FCS1hGSUFWUjRFVTIyMkFRIiwiaWF0" \
	"IjoxNzAwMDAwMDAwLCJpc3MiOiJPQ0ZJUlk2NU9RRTdERlA1S0xOUzJQRjJMVlpNVVpZSlg0T1pJRVEzNk4ySVFB" \
	"TlVCNVhWWU9DUyIsIm5hbWUiOiJ2aWFta2V5Iiwic3ViIjoiT0NGSVJZNjVPUUU3REZQNUtMTlMyUEYyTFZaTVVa" \
	"WUpYNE9aSUVRMzZOMklRQU5VQjVYVllPQ1MiLCJuYXRzIjp7InR5cGUiOiJvcGVyYXRvciIsInZlcnNpb24iOjJ9" \
	"fQ."                                                                                      \
	"-hZkCEQPdJD1eQD2dRBaXX0SHMtqEeZ2PWSyn8eTuUXrvsiLOuQhWsPBG4ww8BEXOfPLIQ8HOa6FdDoZJvT0CA"

/* The user's .creds, as Python wrote it from the same layout. */
#define CREDS                                                                                      \
	"-----BEGIN NATS USER JWT-----\n" USER_JWT "\n------END NATS USER JWT------\n\n"           \
	"************************* IMPORTANT *************************\n"                          \
	"This file holds a NATS user's JWT and its secret seed: whoever reads it can connect as "  \
	"that user.\n\n"                                                                           \
	"-----BEGIN USER NKEY SEED-----\n" USER_SEED "\n------END USER NKEY SEED------\n"

struct keys {
	unsigned char operator_sk[crypto_sign_SECRETKEYBYTES],
	    signing_sk[crypto_sign_SECRETKEYBYTES], user_sk[crypto_sign_SECRETKEYBYTES];
};

static void
seeded(unsigned char fill, unsigned char *sk)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];

	memset(seed, fill, sizeof seed);
	crypto_sign_seed_keypair(pk, sk, seed);
}

static void
make_keys(struct keys *k)
{
	seeded(1, k->operator_sk);
	seeded(3, k->signing_sk);
	seeded(4, k->user_sk);
}

static char *
b64url(const char *bin, size_t n)
{
	size_t size = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = malloc(size);

	assert_non_null(out);
	return sodium_bin2base64(out, size, (const unsigned char *)bin, n,
	                         sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/*
 * A JWT made here rather than by jwt.c: base64url of header and claims
 * signed by sk, and the signature.
 */
static char *
sign_parts(const unsigned char *sk, const char *header, const char *claims)
{
	unsigned char sig[crypto_sign_BYTES];
	char *h = b64url(header, strlen(header)), *c = b64url(claims, strlen(claims)), *s, *jwt;
	size_t size = strlen(h) + strlen(c) + 2;
	char *input = malloc(size);

	assert_non_null(input);
	snprintf(input, size, "%s.%s", h, c);
	crypto_sign_detached(sig, NULL, (const unsigned char *)input, strlen(input), sk);
	s = b64url((const char *)sig, sizeof sig);
	assert_true(asprintf(&jwt, "%s.%s", input, s) > 0);
	free(h);
	free(c);
	free(s);
	free(input);
	return jwt;
}

/* Claims with the jti of rest, the text that follows it: {"jti":J REST. */
static char *
with_jti(const char *rest)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char jti[VK_BASE32_LEN(sizeof hash) + 1], *empty, *claims;

	assert_true(asprintf(&empty, "{\"jti\":\"\"%s", rest) > 0);
	crypto_hash_sha256(hash, (const unsigned char *)empty, strlen(empty));
	vk_base32_encode(hash, sizeof hash, jti);
	assert_true(asprintf(&claims, "{\"jti\":\"%s\"%s", jti, rest) > 0);
	free(empty);
	return claims;
}

/* vk_jwt_decode() of claims signed by sk under header; on success the claims must come back. */
static int
decode_signed(const unsigned char *sk, const char *header, const char *claims)
{
	char *jwt = sign_parts(sk, header, claims), *back = (char *)"unset";
	int rc = vk_jwt_decode(jwt, strlen(jwt), &back);

	if (rc == 0)
		assert_string_equal(back, claims);
	else
		assert_null(back);
	free(back);
	free(jwt);
	return rc;
}

/* decode_signed() with our header, of the claims {"jti":J REST where J is REST's jti. */
static int
decode_rest(const unsigned char *sk, const char *rest)
{
	char *claims = with_jti(rest);
	int rc = decode_signed(sk, HEADER, claims);

	free(claims);
	return rc;
}

/* ---- fixed vectors --------------------------------------------------------------- */

static void
test_vectors(void **state)
{
	struct keys k;
	char *jwt, *claims;

	(void)state;
	make_keys(&k);
	jwt = vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "machine-1", 1700000000,
	                    1700086400, USER_NATS);
	assert_non_null(jwt);
	assert_string_equal(jwt, USER_JWT);
	free(jwt);
	assert_int_equal(vk_jwt_decode(USER_JWT, strlen(USER_JWT), &claims), 0);
	assert_string_equal(claims, USER_CLAIMS);
	free(claims);

	jwt = vk_jwt_encode(k.operator_sk, VK_NKEY_OPERATOR, OPERATOR_PUBLIC, "viamkey", 1700000000,
	                    0, "{\"type\":\"operator\",\"version\":2}");
	assert_non_null(jwt);
	assert_string_equal(jwt, OPERATOR_JWT);
	free(jwt);
	assert_int_equal(vk_jwt_decode(OPERATOR_JWT, strlen(OPERATOR_JWT), &claims), 0);
	assert_string_equal(claims, OPERATOR_CLAIMS);
	free(claims);

	/* made here, the same JWT: the helpers of the refusals below are sound */
	jwt = sign_parts(k.signing_sk, HEADER, USER_CLAIMS);
	assert_string_equal(jwt, USER_JWT);
	free(jwt);
	claims = with_jti(strchr(USER_CLAIMS, ',')); /* the text after the jti */
	assert_string_equal(claims, USER_CLAIMS);
	free(claims);
}

/* ---- what the decoder refuses ------------------------------------------------------ */

/* Any one character of a JWT changed, or the JWT cut or extended, is refused. */
static void
test_decode_changed(void **state)
{
	static const char others[] = "AQgw09-_.=+/ ";
	const char *jwts[] = {USER_JWT, OPERATOR_JWT};
	char *claims, *text;

	(void)state;
	for (size_t j = 0; j < sizeof jwts / sizeof jwts[0]; j++) {
		size_t len = strlen(jwts[j]);

		text = strdup(jwts[j]);
		assert_non_null(text);
		for (size_t i = 0; i < len; i++)
			for (const char *o = others; *o != '\0'; o++) {
				if (*o == jwts[j][i])
					continue;
				text[i] = *o;
				assert_int_equal(vk_jwt_decode(text, len, &claims), -1);
				assert_null(claims);
				text[i] = jwts[j][i];
			}
		for (size_t n = 0; n < len; n++)
			assert_int_equal(vk_jwt_decode(text, n, &claims), -1);
		free(text);
		assert_true(asprintf(&text, "%s\n", jwts[j]) > 0);
		assert_int_equal(vk_jwt_decode(text, len + 1, &claims), -1);
		free(text);
	}
}

static void
test_decode_header_and_key(void **state)
{
	struct keys k;

	(void)state;
	make_keys(&k);
	assert_int_equal(decode_signed(k.signing_sk, HEADER, USER_CLAIMS), 0);
	/* another header, however close */
	assert_int_equal(
	    decode_signed(k.signing_sk, "{\"typ\":\"JWT\",\"alg\":\"ed25519\"}", USER_CLAIMS), -1);
	assert_int_equal(
	    decode_signed(k.signing_sk, "{\"typ\":\"jwt\",\"alg\":\"ed25519-nkey\"}", USER_CLAIMS),
	    -1);
	assert_int_equal(
	    decode_signed(k.signing_sk, "{\"alg\":\"ed25519-nkey\",\"typ\":\"JWT\"}", USER_CLAIMS),
	    -1);
	assert_int_equal(
	    decode_signed(k.signing_sk, "{\"typ\": \"JWT\",\"alg\":\"ed25519-nkey\"}", USER_CLAIMS),
	    -1);
	/* signed by a key other than the one "iss" names */
	assert_int_equal(decode_signed(k.operator_sk, HEADER, USER_CLAIMS), -1);
	assert_int_equal(decode_signed(k.user_sk, HEADER, USER_CLAIMS), -1);
	/* a user does not issue JWTs, even one signed by its own key */
	assert_int_equal(decode_rest(k.user_sk,
	                             ",\"iat\":1,\"iss\":\"" USER_PUBLIC
	                             "\",\"name\":\"u\",\"sub\":\"" USER_PUBLIC "\",\"nats\":{}}"),
	                 -1);
}

/* depth - 1 objects {"a":...} one inside the other, around innermost ([] or {}). */
static char *
nested(int depth, const char *innermost)
{
	size_t size = (size_t)depth * 6 + 1;
	char *text = malloc(size);

	assert_non_null(text);
	text[0] = '\0';
	for (int i = 1; i < depth; i++)
		strcat(text, "{\"a\":");
	strcat(text, innermost);
	for (int i = 1; i < depth; i++)
		strcat(text, "}");
	return text;
}

#define ISS  ",\"iat\":1700000000,\"iss\":\"" SIGNING_PUBLIC "\""
#define NAME ",\"name\":\"machine-1\""
#define SUB  ",\"sub\":\"" USER_PUBLIC "\""

static void
test_decode_claims(void **state)
{
	/* claims with their right jti, signed by the key their "iss" names */
	static const char *const accepted[] = {
	    ISS NAME SUB ",\"nats\":{}}",
	    ISS NAME SUB ",\"exp\":1,\"nats\":{}}",
	    ISS NAME SUB ",\"exp\":9007199254740992,\"nats\":{}}",
	    ",\"iat\":0,\"iss\":\"" SIGNING_PUBLIC "\"" NAME SUB ",\"nats\":{}}",
	    ISS ",\"name\":\"\"" SUB ",\"nats\":{}}",
	    ISS ",\"name\":\"\xc3\xa9t\xc3\xa9 \x7f\"" SUB ",\"nats\":{}}",
	    ISS NAME ",\"sub\":\"" ACCOUNT_PUBLIC "\",\"nats\":{}}",
	    ISS NAME ",\"sub\":\"" OPERATOR_PUBLIC "\",\"nats\":{}}",
	    ISS NAME SUB
	    ",\"nats\":{ \"a\" :\t[ 1 ,-0.5e+3, 2E-2,\"\\u00e9\\n\\\"\\/\" ,true,false,null,{}"
	    "] ,\"b\":\r\n{}}}",
	};
	static const char *const refused[] = {
	    /* the fields out of order, one missing, one more, or spaced */
	    ",\"iss\":\"" SIGNING_PUBLIC "\",\"iat\":1700000000" NAME SUB ",\"nats\":{}}",
	    ISS SUB NAME ",\"nats\":{}}",
	    ISS NAME SUB "}",
	    ISS SUB ",\"nats\":{}}",
	    ISS NAME SUB ",\"nats\":{},\"exp\":1}",
	    ISS NAME SUB ",\"exp\":1,\"exp\":1,\"nats\":{}}",
	    ISS NAME SUB ",\"aud\":\"x\",\"nats\":{}}",
	    ISS NAME SUB ", \"nats\":{}}",
	    ISS NAME SUB ",\"nats\": {}}",
	    ISS NAME SUB ",\"nats\":{} }",
	    ISS NAME SUB ",\"nats\":{}}\n",
	    ISS NAME SUB ",\"nats\":{}}}",
	    /* numbers */
	    ",\"iat\":01700000000,\"iss\":\"" SIGNING_PUBLIC "\"" NAME SUB ",\"nats\":{}}",
	    ",\"iat\":-1,\"iss\":\"" SIGNING_PUBLIC "\"" NAME SUB ",\"nats\":{}}",
	    ",\"iat\":1.0,\"iss\":\"" SIGNING_PUBLIC "\"" NAME SUB ",\"nats\":{}}",
	    ",\"iat\":\"1\",\"iss\":\"" SIGNING_PUBLIC "\"" NAME SUB ",\"nats\":{}}",
	    ISS NAME SUB ",\"exp\":0,\"nats\":{}}",
	    ISS NAME SUB ",\"exp\":9007199254740993,\"nats\":{}}",
	    /* names vk_jwt_encode() refuses */
	    ISS ",\"name\":\"a\\\"b\"" SUB ",\"nats\":{}}",
	    ISS ",\"name\":\"a\\\\b\"" SUB ",\"nats\":{}}",
	    ISS ",\"name\":\"a\tb\"" SUB ",\"nats\":{}}",
	    ISS ",\"name\":\"a\\u0041\"" SUB ",\"nats\":{}}",
	    /* keys */
	    ISS NAME ",\"sub\":\"" USER_SEED "\",\"nats\":{}}",
	    ISS NAME ",\"sub\":\"udfjhlaxaumha4owpob4p7yo72aqr2hmiuyfoxlxe2dzgm633k7hyrev\","
	             "\"nats\":{}}",
	    ISS NAME ",\"sub\":\"machine-1\",\"nats\":{}}",
	    /* "nats" that is no JSON object, or no JSON */
	    ISS NAME SUB ",\"nats\":[]}",
	    ISS NAME SUB ",\"nats\":\"{}\"}",
	    ISS NAME SUB ",\"nats\":null}",
	    ISS NAME SUB ",\"nats\":{\"a\":1,}}",
	    ISS NAME SUB ",\"nats\":{\"a\"}}",
	    ISS NAME SUB ",\"nats\":{\"a\":[1,]}}",
	    ISS NAME SUB ",\"nats\":{\"a\":01}}",
	    ISS NAME SUB ",\"nats\":{\"a\":1.}}",
	    ISS NAME SUB ",\"nats\":{\"a\":.5}}",
	    ISS NAME SUB ",\"nats\":{\"a\":+1}}",
	    ISS NAME SUB ",\"nats\":{\"a\":1e}}",
	    ISS NAME SUB ",\"nats\":{\"a\":tru}}",
	    ISS NAME SUB ",\"nats\":{\"a\":True}}",
	    ISS NAME SUB ",\"nats\":{\"a\":\"\\x\"}}",
	    ISS NAME SUB ",\"nats\":{\"a\":\"\\u12g4\"}}",
	    ISS NAME SUB ",\"nats\":{\"a\":\"\n\"}}",
	    ISS NAME SUB ",\"nats\":{'a':1}}",
	    ISS NAME SUB ",\"nats\":{\"a\":1}",
	};
	struct keys k;
	char *claims;

	(void)state;
	make_keys(&k);
	for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
		if (decode_rest(k.signing_sk, accepted[i]) != 0)
			fail_msg("refused: %s", accepted[i]);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (decode_rest(k.signing_sk, refused[i]) != -1)
			fail_msg("accepted: %s", refused[i]);
	/* objects and arrays nested 32 deep, not 33 */
	for (int depth = 31; depth <= 34; depth++) {
		char *nats = nested(depth, depth % 2 ? "[]" : "{}"), *rest;

		assert_true(asprintf(&rest, ISS NAME SUB ",\"nats\":%s}", nats) > 0);
		assert_int_equal(decode_rest(k.signing_sk, rest), depth <= 32 ? 0 : -1);
		free(rest);
		free(nats);
	}
	/* a jti that is not the claims' own */
	claims = strdup(USER_CLAIMS);
	assert_non_null(claims);
	claims[8] = claims[8] == 'A' ? 'B' : 'A';
	assert_int_equal(decode_signed(k.signing_sk, HEADER, claims), -1);
	free(claims);
	assert_int_equal(
	    decode_signed(k.signing_sk, HEADER, "{\"jti\":\"\"" ISS NAME SUB ",\"nats\":{}}"), -1);
}

/* ---- what the encoder refuses ------------------------------------------------------ */

static void
test_encode_refused(void **state)
{
	static const char *const names[] = {"a\"b", "a\\b", "a\nb", "a\x01", "\x1f"};
	static const char *const bad_nats[] = {"",       "[]",         "{",          " {}",
	                                       "{} ",    "{}\n",       "{},\"a\":1", "{}{}",
	                                       "\"{}\"", "{\"a\":1,}", "{\"a\"}"};
	static const char *const subjects[] = {
	    USER_SEED, "", "machine-1", "udfjhlaxaumha4owpob4p7yo72aqr2hmiuyfoxlxe2dzgm633k7hyrev",
	    USER_PUBLIC "A"};
	struct keys k;
	char *jwt, *claims, *nats;

	(void)state;
	make_keys(&k);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, names[i], 1,
		                          0, "{}"));
	for (size_t i = 0; i < sizeof bad_nats / sizeof bad_nats[0]; i++)
		assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m", 1, 0,
		                          bad_nats[i]));
	for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++)
		assert_null(
		    vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, subjects[i], "m", 1, 0, "{}"));
	assert_null(vk_jwt_encode(k.user_sk, VK_NKEY_USER, USER_PUBLIC, "m", 1, 0, "{}"));
	assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m", -1, 0, "{}"));
	assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m",
	                          ((int64_t)1 << 53) + 1, 0, "{}"));
	assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m", 1, -1, "{}"));
	assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m", 1,
	                          ((int64_t)1 << 53) + 1, "{}"));
	/* the limits themselves are written, and read back */
	jwt = vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "", (int64_t)1 << 53,
	                    (int64_t)1 << 53, "{ }");
	assert_non_null(jwt);
	assert_int_equal(vk_jwt_decode(jwt, strlen(jwt), &claims), 0);
	free(claims);
	free(jwt);
	/* "nats" 32 deep, not 33 */
	nats = nested(32, "[]");
	jwt = vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m", 1, 0, nats);
	assert_non_null(jwt);
	free(jwt);
	free(nats);
	nats = nested(33, "{}");
	assert_null(vk_jwt_encode(k.signing_sk, VK_NKEY_ACCOUNT, USER_PUBLIC, "m", 1, 0, nats));
	free(nats);
}

/* Random names, times and keys: what vk_jwt_encode() writes, vk_jwt_decode() reads. */
static void
test_round_trip(void **state)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES],
	    other[crypto_sign_PUBLICKEYBYTES];
	char subject[VK_NKEY_PUBLIC_LEN + 1], name[24], *jwt, *claims, *want;

	(void)state;
	for (int round = 0; round < 200; round++) {
		int64_t iat = (int64_t)randombytes_uniform(2000000000);
		int64_t exp = round % 2 ? 0 : iat + 1 + randombytes_uniform(86400);
		enum vk_nkey_type t = round % 3 ? VK_NKEY_ACCOUNT : VK_NKEY_OPERATOR;

		crypto_sign_keypair(pk, sk);
		randombytes_buf(other, sizeof other);
		vk_nkey_public(VK_NKEY_USER, other, subject);
		for (size_t i = 0; i + 1 < sizeof name; i++)
			do
				name[i] = (char)randombytes_uniform(256);
			while (name[i] == '"' || name[i] == '\\' || (unsigned char)name[i] < 0x20);
		name[sizeof name - 1] = '\0';
		jwt = vk_jwt_encode(sk, t, subject, name, iat, exp, USER_NATS);
		assert_non_null(jwt);
		assert_int_equal(vk_jwt_decode(jwt, strlen(jwt), &claims), 0);
		assert_non_null(strstr(claims, name));
		assert_non_null(strstr(claims, subject));
		vk_nkey_public(t, pk, subject);
		assert_true(asprintf(&want, ",\"iss\":\"%s\",", subject) > 0);
		assert_non_null(strstr(claims, want));
		free(want);
		free(claims);
		free(jwt);
	}
}

/* ---- .creds ---------------------------------------------------------------------- */

static void
test_creds(void **state)
{
	char seed[VK_NKEY_SEED_LEN + 1], *text, *jwt;

	(void)state;
	text = vk_creds_format(USER_JWT, USER_SEED);
	assert_non_null(text);
	assert_string_equal(text, CREDS);
	free(text);
	assert_int_equal(vk_creds_parse(CREDS, strlen(CREDS), &jwt, seed), 0);
	assert_string_equal(jwt, USER_JWT);
	assert_string_equal(seed, USER_SEED);
	free(jwt);
}

/* Replaces the first `from` in text with `to`, into a malloc()ed copy. */
static char *
replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	assert_non_null(at);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
	return out;
}

static void
test_creds_refused(void **state)
{
	static const char *const changes[][2] = {
	    {"\n", "\r\n"},
	    {"-----BEGIN NATS USER JWT-----\n", "-----BEGIN NATS USER JWT-----\n\n"},
	    {"-----BEGIN NATS USER JWT-----", "----BEGIN NATS USER JWT-----"},
	    {"------END NATS USER JWT------", "-----END NATS USER JWT-----"},
	    {"IMPORTANT", "important"},
	    {"that user.\n\n", "that user.\n"},
	    {"------END USER NKEY SEED------\n", "------END USER NKEY SEED------\n\n"},
	    {"------END USER NKEY SEED------\n", "------END USER NKEY SEED------"},
	    {USER_SEED, ACCOUNT_SEED},
	    {USER_SEED, "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FZ"},
	    {USER_SEED, "suaaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibh4fy"},
	    {USER_SEED, USER_PUBLIC},
	    {"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.", ""},
	    {"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.", "."},
	    {"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.", "a.b."},
	    {"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.", "eyJ0+XAi."},
	    {"eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.", "eyJ0 XAi."},
	    {"-----BEGIN NATS USER JWT-----\n", ""},
	    {"uEdzBqtpvbsLE39ATIDyGKYUjXi8OjkSwHo0STWtPLB1bPs8se0AXOQwtt1N8KPRCY6WKXVLqTgZ0L-"
	     "XIS0bBA",
	     ""},
	};
	char seed[VK_NKEY_SEED_LEN + 1], *text, *jwt = (char *)"unset";

	(void)state;
	for (size_t i = 0; i < sizeof changes / sizeof changes[0]; i++) {
		text = replaced(CREDS, changes[i][0], changes[i][1]);
		if (vk_creds_parse(text, strlen(text), &jwt, seed) != -1)
			fail_msg("accepted with %s", changes[i][1]);
		assert_null(jwt);
		free(text);
	}
	for (size_t n = 0; n < strlen(CREDS); n++)
		assert_int_equal(vk_creds_parse(CREDS, n, &jwt, seed), -1);
	/* what the parser would refuse, the formatter does not write */
	assert_null(vk_creds_format(USER_JWT, ACCOUNT_SEED));
	memset(seed, 0, sizeof seed);
	memcpy(seed, USER_PUBLIC, VK_NKEY_PUBLIC_LEN);
	assert_null(vk_creds_format(USER_JWT, seed));
	assert_null(vk_creds_format(USER_JWT "\n", USER_SEED));
	assert_null(vk_creds_format("a.b", USER_SEED));
	assert_null(vk_creds_format("a..c", USER_SEED));
	assert_null(vk_creds_format("a.b.", USER_SEED));
	assert_null(vk_creds_format(".b.c", USER_SEED));
	assert_null(vk_creds_format("", USER_SEED));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_decode_changed),
	    cmocka_unit_test(test_decode_header_and_key),
	    cmocka_unit_test(test_decode_claims),
	    cmocka_unit_test(test_encode_refused),
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_creds),
	    cmocka_unit_test(test_creds_refused),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
