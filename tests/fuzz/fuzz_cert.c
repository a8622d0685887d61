/*
 * fuzz_cert.c - libFuzzer target for certificates and root versions
 * (cert.h).
 *
 * Input: any bytes, taken as a certificate's value and as a root version's.
 *  - vk_cert_read() must not read past the input, and a certificate it
 *    accepts has exactly the text vk_cert_text() writes for what it read:
 *    one spelling, the one the root signs.
 *  - vk_cert_verify() and vk_root_verify() with a fixed key accept nothing
 *    that key did not sign: the fuzzer cannot forge a signature, so any
 *    acceptance is a finding.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char pk[VK_PUBLIC_KEY_BYTES];
	static int ready;
	char *text = malloc(size ? size : 1), again[VK_CERT_TEXT_MAX];
	struct vk_cert c;
	struct vk_root r;

	if (!ready) {
		unsigned char sk[VK_SIGNING_KEY_BYTES], seed[crypto_sign_SEEDBYTES] = {1};

		fz_setup();
		crypto_sign_seed_keypair(pk, sk, seed);
		ready = 1;
	}
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	if (vk_cert_read(text, size, &c) == 0) {
		const char *json = text + 4 + 86 + 1;

		FZ_CHECK(vk_cert_text(&c, again) == 0);
		FZ_CHECK(strlen(again) == size - (size_t)(json - text) &&
		         memcmp(again, json, strlen(again)) == 0);
		FZ_CHECK(c.epoch >= 1 && c.root >= 1);
	}
	FZ_CHECK(vk_cert_verify(pk, text, size, &c) != 0);
	FZ_CHECK(vk_root_verify(pk, text, size, &r) != 0);
	free(text);
	return 0;
}
