/*
 * fuzz_nkey.c - libFuzzer target for nkeys (nkey.h) and their base32
 * (base32.h).
 *
 * Input: any bytes, taken as a public nkey of each type, as a seed, and as
 * the base32 of as many bytes as its length could hold.
 *  - The parsers must not read past the input, and what they accept must
 *    encode back to exactly the input: an nkey has one spelling.
 *  - A public nkey parses as one type at most.
 *  - The input's first 32 bytes (zero-padded), written as each type's
 *    public nkey and seed, parse back to themselves and that type.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base32.h"
#include "fuzz_util.h"
#include "nkey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum vk_nkey_type types[] = {VK_NKEY_OPERATOR, VK_NKEY_ACCOUNT, VK_NKEY_USER};

static void
check_parsers(const char *text, size_t len)
{
	unsigned char key[VK_NKEY_KEY_BYTES];
	char again[VK_NKEY_SEED_LEN + 1];
	enum vk_nkey_type t;
	int accepted = 0;

	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		if (vk_nkey_public_parse(text, len, types[k], key) != 0)
			continue;
		accepted++;
		vk_nkey_public(types[k], key, again);
		FZ_CHECK(len == VK_NKEY_PUBLIC_LEN && memcmp(again, text, len) == 0);
	}
	FZ_CHECK(accepted <= 1);
	if (vk_nkey_seed_parse(text, len, &t, key) == 0) {
		vk_nkey_seed(t, key, again);
		FZ_CHECK(len == VK_NKEY_SEED_LEN && memcmp(again, text, len) == 0);
	}
}

static void
check_base32(const char *text, size_t len)
{
	size_t n = len * 5 / 8; /* the only byte count whose base32 can be len long */
	unsigned char *bin = malloc(n ? n : 1);
	char *again = malloc(len + 1);

	if (bin == NULL || again == NULL)
		fz_die("out of memory");
	if (vk_base32_decode(text, len, bin, n) == 0) {
		vk_base32_encode(bin, n, again);
		FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
	}
	free(bin);
	free(again);
}

static void
check_round_trip(const uint8_t *data, size_t size)
{
	unsigned char key[VK_NKEY_KEY_BYTES] = {0}, back[VK_NKEY_KEY_BYTES];
	char text[VK_NKEY_SEED_LEN + 1];
	enum vk_nkey_type t;

	memcpy(key, data, size < sizeof key ? size : sizeof key);
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		vk_nkey_public(types[k], key, text);
		FZ_CHECK(vk_nkey_public_parse(text, strlen(text), types[k], back) == 0);
		FZ_CHECK(memcmp(back, key, sizeof key) == 0);
		vk_nkey_seed(types[k], key, text);
		FZ_CHECK(vk_nkey_seed_parse(text, strlen(text), &t, back) == 0);
		FZ_CHECK(t == types[k] && memcmp(back, key, sizeof key) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		fz_setup();
		ready = 1;
	}
	check_parsers((const char *)data, size);
	check_base32((const char *)data, size);
	check_round_trip(data, size);
	return 0;
}
