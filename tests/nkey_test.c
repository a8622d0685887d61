/*
 * nkey_test.c - NATS nkeys (nkey.h) and their base32 (base32.h): the text
 * of each type's public key and seed against fixed vectors, and every
 * other text refused.
 *
 * The vectors were made apart from this code, in Python: base32 by
 * base64.b32encode (its padding removed), the CRC16 by binascii.crc_hqx
 * with initial value 0, and each public key by OpenSSL from a PKCS#8
 * Ed25519 key holding the fixed seed (32 bytes of 1 for the operator, 2
 * for the account, 4 for the user).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base32.h"
#include "fixture.h"
#include "nkey.h"

#define OPERATOR_PUBLIC "OCFIRY65OQE7DFP5KLNS2PF2LVZMUZYJX4OZIEQ36N2IQANUB5XVYOCS"
#define OPERATOR_SEED   "SOAACAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIATA"
#define ACCOUNT_PUBLIC  "ACATS5YOVB6ROX2WUNKGNQ2MP3GMXDMKSG2O4N5CLX3A6W4PZGZZIL2R"
#define ACCOUNT_SEED    "SAAAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAUN5U"
#define USER_PUBLIC     "UDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYREV"
#define USER_SEED       "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FY"

/* Seeds with a correct CRC that vk_nkey_seed() never writes, made the same way. */
#define SEED_TYPE_B   "SBAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAOQE"
#define SEED_LOW_BITS "SUAQIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBBAUM"
/* The user's key with the prefix of a server ('N') and of a seed ('S'), CRC correct. */
#define PUBLIC_TYPE_N "NDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYIY6"
#define PUBLIC_TYPE_S "SDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYHDQ"

static const struct {
	enum vk_nkey_type type;
	unsigned char fill;
	const char *public, *seed;
} vectors[] = {
    {VK_NKEY_OPERATOR, 1, OPERATOR_PUBLIC, OPERATOR_SEED},
    {VK_NKEY_ACCOUNT, 2, ACCOUNT_PUBLIC, ACCOUNT_SEED},
    {VK_NKEY_USER, 4, USER_PUBLIC, USER_SEED},
};

static const enum vk_nkey_type types[] = {VK_NKEY_OPERATOR, VK_NKEY_ACCOUNT, VK_NKEY_USER};

static void
keypair(unsigned char fill, unsigned char seed[VK_NKEY_KEY_BYTES],
        unsigned char pk[VK_NKEY_KEY_BYTES])
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES];

	memset(seed, fill, VK_NKEY_KEY_BYTES);
	crypto_sign_seed_keypair(pk, sk, seed);
}

/* ---- base32 ---------------------------------------------------------------------- */

static void
test_base32_vectors(void **state)
{
	/* RFC 4648 section 10, without the padding */
	static const char *const rfc[] = {"",        "MY",       "MZXQ",      "MZXW6",
	                                  "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI"};
	const char *in = "foobar";
	char text[16];
	unsigned char back[8];

	(void)state;
	for (size_t n = 0; n <= 6; n++) {
		vk_base32_encode((const unsigned char *)in, n, text);
		assert_string_equal(text, rfc[n]);
		assert_int_equal(strlen(text), VK_BASE32_LEN(n));
		assert_int_equal(vk_base32_decode(rfc[n], strlen(rfc[n]), back, n), 0);
		assert_memory_equal(back, in, n);
	}
	/* every byte value, in every position of a 5-byte group */
	for (unsigned int b = 0; b < 256; b++) {
		unsigned char raw[5] = {(unsigned char)b, (unsigned char)(b ^ 0x5a), 0,
		                        (unsigned char)(255 - b), (unsigned char)b};

		vk_base32_encode(raw, sizeof raw, text);
		assert_int_equal(vk_base32_decode(text, strlen(text), back, sizeof raw), 0);
		assert_memory_equal(back, raw, sizeof raw);
	}
}

static void
test_base32_refused(void **state)
{
	unsigned char out[6];

	(void)state;
	assert_int_equal(vk_base32_decode("MZXW6YTBOI", 10, out, 6), 0);
	assert_int_equal(vk_base32_decode("mzxw6ytboi", 10, out, 6), -1);   /* lower case */
	assert_int_equal(vk_base32_decode("MZXW6YTBOI==", 12, out, 6), -1); /* padding */
	assert_int_equal(vk_base32_decode("MZXW6YTBO", 9, out, 6), -1);     /* short */
	assert_int_equal(vk_base32_decode("MZXW6YTBOIA", 11, out, 6), -1);  /* long */
	assert_int_equal(vk_base32_decode("MZXW6YTBOI", 10, out, 5), -1);   /* 5 bytes are 8 */
	assert_int_equal(vk_base32_decode("MZXW6YTB0I", 10, out, 6), -1);   /* zero, not O */
	assert_int_equal(vk_base32_decode("MZXW6YTB8I", 10, out, 6), -1);
	assert_int_equal(vk_base32_decode("MZXW6YTB1I", 10, out, 6), -1);
	assert_int_equal(vk_base32_decode("MZXW6YTB\0I", 10, out, 6), -1);
	/* "MZ" and "MZXR" are "f" and "fo" with unused bits set */
	assert_int_equal(vk_base32_decode("MY", 2, out, 1), 0);
	assert_int_equal(vk_base32_decode("MZ", 2, out, 1), -1);
	assert_int_equal(vk_base32_decode("MZXQ", 4, out, 2), 0);
	assert_int_equal(vk_base32_decode("MZXR", 4, out, 2), -1);
	/* a refusal leaves zeros */
	memset(out, 0xff, sizeof out);
	assert_int_equal(vk_base32_decode("MZXW6YTBOJ", 10, out, 6), -1);
	for (size_t i = 0; i < sizeof out; i++)
		assert_int_equal(out[i], 0);
}

/* ---- nkeys ------------------------------------------------------------------------- */

static void
test_nkey_vectors(void **state)
{
	unsigned char seed[VK_NKEY_KEY_BYTES], pk[VK_NKEY_KEY_BYTES], back[VK_NKEY_KEY_BYTES];
	char text[VK_NKEY_SEED_LEN + 1];
	enum vk_nkey_type t;

	(void)state;
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		keypair(vectors[i].fill, seed, pk);
		vk_nkey_public(vectors[i].type, pk, text);
		assert_string_equal(text, vectors[i].public);
		vk_nkey_seed(vectors[i].type, seed, text);
		assert_string_equal(text, vectors[i].seed);
		assert_int_equal(strlen(vectors[i].public), VK_NKEY_PUBLIC_LEN);
		assert_int_equal(strlen(vectors[i].seed), VK_NKEY_SEED_LEN);

		assert_int_equal(vk_nkey_public_parse(vectors[i].public, VK_NKEY_PUBLIC_LEN,
		                                      vectors[i].type, back),
		                 0);
		assert_memory_equal(back, pk, sizeof pk);
		assert_int_equal(vk_nkey_seed_parse(vectors[i].seed, VK_NKEY_SEED_LEN, &t, back),
		                 0);
		assert_int_equal(t, vectors[i].type);
		assert_memory_equal(back, seed, sizeof seed);
	}
}

static void
test_nkey_other_type(void **state)
{
	unsigned char pk[VK_NKEY_KEY_BYTES];
	enum vk_nkey_type t;

	(void)state;
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++)
		for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
			assert_int_equal(vk_nkey_public_parse(vectors[i].public, VK_NKEY_PUBLIC_LEN,
			                                      types[k], pk),
			                 types[k] == vectors[i].type ? 0 : -1);
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		assert_int_equal(
		    vk_nkey_public_parse(PUBLIC_TYPE_N, VK_NKEY_PUBLIC_LEN, types[k], pk), -1);
		assert_int_equal(
		    vk_nkey_public_parse(PUBLIC_TYPE_S, VK_NKEY_PUBLIC_LEN, types[k], pk), -1);
		/* a seed is not a public key, nor the other way round */
		assert_int_equal(vk_nkey_public_parse(USER_SEED, VK_NKEY_SEED_LEN, types[k], pk),
		                 -1);
	}
	assert_int_equal(vk_nkey_seed_parse(USER_PUBLIC, VK_NKEY_PUBLIC_LEN, &t, pk), -1);
	assert_int_equal(vk_nkey_seed_parse(SEED_TYPE_B, VK_NKEY_SEED_LEN, &t, pk), -1);
	assert_int_equal(vk_nkey_seed_parse(SEED_LOW_BITS, VK_NKEY_SEED_LEN, &t, pk), -1);
}

/* Every text that differs from a valid one in one character is refused. */
static void
test_nkey_one_character(void **state)
{
	static const char others[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz01890=-_ \n";
	unsigned char out[VK_NKEY_KEY_BYTES];
	char text[VK_NKEY_SEED_LEN + 1];
	enum vk_nkey_type t;

	(void)state;
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		for (size_t p = 0; p < VK_NKEY_PUBLIC_LEN; p++)
			for (const char *o = others; *o != '\0'; o++) {
				if (*o == vectors[i].public[p])
					continue;
				memcpy(text, vectors[i].public, VK_NKEY_PUBLIC_LEN + 1);
				text[p] = *o;
				assert_int_equal(vk_nkey_public_parse(text, VK_NKEY_PUBLIC_LEN,
				                                      vectors[i].type, out),
				                 -1);
			}
		for (size_t p = 0; p < VK_NKEY_SEED_LEN; p++)
			for (const char *o = others; *o != '\0'; o++) {
				if (*o == vectors[i].seed[p])
					continue;
				memcpy(text, vectors[i].seed, VK_NKEY_SEED_LEN + 1);
				text[p] = *o;
				assert_int_equal(
				    vk_nkey_seed_parse(text, VK_NKEY_SEED_LEN, &t, out), -1);
			}
	}
}

static void
test_nkey_length(void **state)
{
	unsigned char out[VK_NKEY_KEY_BYTES];
	char text[VK_NKEY_SEED_LEN + 2];
	enum vk_nkey_type t;

	(void)state;
	assert_int_equal(
	    vk_nkey_public_parse(USER_PUBLIC, VK_NKEY_PUBLIC_LEN - 1, VK_NKEY_USER, out), -1);
	snprintf(text, sizeof text, "%sA", USER_PUBLIC);
	assert_int_equal(vk_nkey_public_parse(text, VK_NKEY_PUBLIC_LEN + 1, VK_NKEY_USER, out), -1);
	snprintf(text, sizeof text, "%s\n", USER_PUBLIC);
	assert_int_equal(vk_nkey_public_parse(text, VK_NKEY_PUBLIC_LEN + 1, VK_NKEY_USER, out), -1);
	assert_int_equal(vk_nkey_seed_parse(USER_SEED, VK_NKEY_SEED_LEN - 1, &t, out), -1);
	snprintf(text, sizeof text, "%s\n", USER_SEED);
	assert_int_equal(vk_nkey_seed_parse(text, VK_NKEY_SEED_LEN + 1, &t, out), -1);
	assert_int_equal(vk_nkey_seed_parse("", 0, &t, out), -1);
}

/* Random keys of each type: what is written parses back to the same bytes. */
static void
test_nkey_random(void **state)
{
	unsigned char key[VK_NKEY_KEY_BYTES], back[VK_NKEY_KEY_BYTES];
	char text[VK_NKEY_SEED_LEN + 1];
	enum vk_nkey_type t;

	(void)state;
	for (int round = 0; round < 200; round++)
		for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
			randombytes_buf(key, sizeof key);
			vk_nkey_public(types[k], key, text);
			assert_int_equal(vk_nkey_public_parse(text, strlen(text), types[k], back),
			                 0);
			assert_memory_equal(back, key, sizeof key);
			vk_nkey_seed(types[k], key, text);
			assert_int_equal(text[0], 'S');
			assert_int_equal(text[1], "OAU"[k]);
			assert_int_equal(vk_nkey_seed_parse(text, strlen(text), &t, back), 0);
			assert_int_equal(t, types[k]);
			assert_memory_equal(back, key, sizeof key);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base32_vectors),     cmocka_unit_test(test_base32_refused),
	    cmocka_unit_test(test_nkey_vectors),       cmocka_unit_test(test_nkey_other_type),
	    cmocka_unit_test(test_nkey_one_character), cmocka_unit_test(test_nkey_length),
	    cmocka_unit_test(test_nkey_random),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
