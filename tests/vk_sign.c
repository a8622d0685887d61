/*
 * vk_sign - the fleet tests' forger with the authority's own key: signs
 * the JSON on standard input as a value of the bus, the way the authority
 * signs its records, and prints it. The tests use it for what an authority
 * whose clock is wrong would sign.
 *
 *   vk_sign SIGNING_KEY <JSON
 *
 * Exit 1 when the key cannot be read or the JSON is empty.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

int
main(int argc, char **argv)
{
	unsigned char *sk;
	char json[65536], err[VK_ERRLEN], *value;
	size_t n;

	if (argc != 2) {
		fputs("usage: vk_sign SIGNING_KEY <JSON\n", stderr);
		return 2;
	}
	if (sodium_init() < 0 || (sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL)
		return 1;
	if (vk_signing_key_load(argv[1], sk, err) != VK_OK) {
		fprintf(stderr, "vk_sign: %s\n", err);
		return 1;
	}
	n = fread(json, 1, sizeof json - 1, stdin);
	while (n > 0 && (json[n - 1] == '\n' || json[n - 1] == '\r'))
		n--;
	json[n] = '\0';
	if (n == 0 || (value = vk_record_sign(sk, json)) == NULL) {
		fputs("vk_sign: nothing to sign\n", stderr);
		return 1;
	}
	puts(value);
	free(value);
	sodium_free(sk);
	return 0;
}
