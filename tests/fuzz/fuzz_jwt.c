/*
 * fuzz_jwt.c - libFuzzer target for NATS JWTs and .creds files (jwt.h).
 *
 * Input: any bytes, taken four ways.
 *  - As a JWT: vk_jwt_decode() must not read past the input, and leaves
 *    no claims when it refuses.
 *  - As the claims after their jti: this target puts the right jti before
 *    the input and signs the claims with a fixed account key, so that the
 *    claims reader sees any text. What vk_jwt_decode() accepts must come
 *    back as the same claims, and vk_jwt_encode() must write exactly that
 *    JWT again from the fields the claims hold: claims have one spelling.
 *  - As a .creds text: what vk_creds_parse() accepts, vk_creds_format()
 *    writes back byte for byte.
 *  - As NAME\0NATS: whatever JWT vk_jwt_encode() writes for that name and
 *    "nats" text, vk_jwt_decode() reads, and a .creds text of it reads
 *    back to the same JWT and seed.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base32.h"
#include "fuzz_util.h"
#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER "{\"typ\":\"JWT\",\"alg\":\"ed25519-nkey\"}"
#define B64    sodium_base64_VARIANT_URLSAFE_NO_PADDING

/* The account's signing key (seed: 32 bytes of 3) and a user (4), as in jwt_test.c. */
static unsigned char account_sk[crypto_sign_SECRETKEYBYTES];
static char user_public[VK_NKEY_PUBLIC_LEN + 1], user_seed[VK_NKEY_SEED_LEN + 1];

static void
setup(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES],
	    sk[crypto_sign_SECRETKEYBYTES];

	fz_setup();
	memset(seed, 3, sizeof seed);
	crypto_sign_seed_keypair(pk, account_sk, seed);
	memset(seed, 4, sizeof seed);
	crypto_sign_seed_keypair(pk, sk, seed);
	vk_nkey_public(VK_NKEY_USER, pk, user_public);
	vk_nkey_seed(VK_NKEY_USER, seed, user_seed);
}

static char *
b64url(const void *bin, size_t n)
{
	size_t size = sodium_base64_ENCODED_LEN(n, B64);
	char *out = malloc(size);

	if (out == NULL)
		fz_die("out of memory");
	return sodium_bin2base64(out, size, bin, n, B64);
}

/* A JWT of claims signed by the account key, made here rather than by jwt.c. */
static char *
sign_claims(const char *claims, size_t len)
{
	unsigned char sig[crypto_sign_BYTES];
	char *h = b64url(HEADER, sizeof HEADER - 1), *c = b64url(claims, len), *s, *jwt;
	size_t size = strlen(h) + strlen(c) + 2 + sodium_base64_ENCODED_LEN(sizeof sig, B64);

	if ((jwt = malloc(size)) == NULL)
		fz_die("out of memory");
	snprintf(jwt, size, "%s.%s", h, c);
	crypto_sign_detached(sig, NULL, (const unsigned char *)jwt, strlen(jwt), account_sk);
	s = b64url(sig, sizeof sig);
	strcat(jwt, ".");
	strcat(jwt, s);
	free(h);
	free(c);
	free(s);
	return jwt;
}

static void
check_decode(const char *text, size_t len)
{
	char *claims;

	if (vk_jwt_decode(text, len, &claims) == 0)
		free(claims);
	else
		FZ_CHECK(claims == NULL);
}

/* A copy of the n bytes at p, NUL-terminated. */
static char *
copy(const char *p, size_t n)
{
	char *out = malloc(n + 1);

	if (out == NULL)
		fz_die("out of memory");
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

/*
 * The JWT vk_jwt_encode() writes from the fields of claims, which
 * vk_jwt_decode() accepted: they are in their one order, the name holds
 * no quote, and nothing before "nats" can hold the text of a field name.
 */
static char *
encode_again(const char *claims)
{
	const char *p = strstr(claims, ",\"name\":\""), *end;
	char *name, *sub, *nats, *jwt, *after;
	long long iat = strtoll(strstr(claims, ",\"iat\":") + 7, NULL, 10), exp = 0;

	FZ_CHECK(p != NULL);
	p += 9;
	end = strchr(p, '"');
	name = copy(p, (size_t)(end - p));
	p = end + 1;
	FZ_CHECK(strncmp(p, ",\"sub\":\"", 8) == 0);
	sub = copy(p + 8, VK_NKEY_PUBLIC_LEN);
	p += 8 + VK_NKEY_PUBLIC_LEN + 1;
	if (strncmp(p, ",\"exp\":", 7) == 0) {
		exp = strtoll(p + 7, &after, 10);
		p = after;
	}
	FZ_CHECK(strncmp(p, ",\"nats\":", 8) == 0);
	nats = copy(p + 8, strlen(p + 8) - 1);
	jwt = vk_jwt_encode(account_sk, VK_NKEY_ACCOUNT, sub, name, iat, exp, nats);
	free(name);
	free(sub);
	free(nats);
	return jwt;
}

static void
check_claims(const char *rest, size_t len)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	crypto_hash_sha256_state st;
	char jti[VK_BASE32_LEN(sizeof hash) + 1], *claims, *jwt, *back, *again;
	size_t clen;

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const unsigned char *)"{\"jti\":\"\"", 9);
	crypto_hash_sha256_update(&st, (const unsigned char *)rest, len);
	crypto_hash_sha256_final(&st, hash);
	vk_base32_encode(hash, sizeof hash, jti);
	clen = 8 + strlen(jti) + 1 + len;
	if ((claims = malloc(clen + 1)) == NULL)
		fz_die("out of memory");
	snprintf(claims, clen + 1, "{\"jti\":\"%s\"", jti);
	memcpy(claims + clen - len, rest, len);
	claims[clen] = '\0';
	jwt = sign_claims(claims, clen);
	if (vk_jwt_decode(jwt, strlen(jwt), &back) == 0) {
		FZ_CHECK(strlen(back) == clen && memcmp(back, claims, clen) == 0);
		again = encode_again(back);
		FZ_CHECK(again != NULL && strcmp(again, jwt) == 0);
		free(again);
		free(back);
	}
	free(jwt);
	free(claims);
}

static void
check_creds(const char *text, size_t len)
{
	char seed[VK_NKEY_SEED_LEN + 1], *jwt, *again;

	if (vk_creds_parse(text, len, &jwt, seed) != 0) {
		FZ_CHECK(jwt == NULL);
		return;
	}
	again = vk_creds_format(jwt, seed);
	FZ_CHECK(again != NULL && strlen(again) == len && memcmp(again, text, len) == 0);
	free(again);
	free(jwt);
}

static void
check_encode(const uint8_t *data, size_t size)
{
	size_t name_len;
	const uint8_t *rest = fz_split(data, size, &name_len);
	char *name, *nats, *jwt, *claims, *creds, *back, seed[VK_NKEY_SEED_LEN + 1];

	if (rest == NULL)
		return;
	name = fz_strndup(data, name_len);
	nats = fz_strndup(rest, size - name_len - 1);
	jwt = vk_jwt_encode(account_sk, VK_NKEY_ACCOUNT, user_public, name, 1700000000,
	                    size % 2 ? 0 : 1700086400, nats);
	if (jwt != NULL) {
		FZ_CHECK(vk_jwt_decode(jwt, strlen(jwt), &claims) == 0);
		FZ_CHECK(strstr(claims, name) != NULL);
		free(claims);
		creds = vk_creds_format(jwt, user_seed);
		FZ_CHECK(creds != NULL);
		FZ_CHECK(vk_creds_parse(creds, strlen(creds), &back, seed) == 0);
		FZ_CHECK(strcmp(back, jwt) == 0 && strcmp(seed, user_seed) == 0);
		free(back);
		free(creds);
		free(jwt);
	}
	free(name);
	free(nats);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		setup();
		ready = 1;
	}
	check_decode((const char *)data, size);
	check_claims((const char *)data, size);
	check_creds((const char *)data, size);
	check_encode(data, size);
	return 0;
}
