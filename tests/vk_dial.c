/*
 * vk_dial - the fleet tests' joining host without the join: connects to the
 * bus COUNT times as the user a join token carries, through syncd/dial.c as
 * viamkey-syncd join does, and closes each connection at once. It makes no
 * join request: the token keeps its uses.
 *
 *   vk_dial TOKEN_FILE COUNT [SERVERS]
 *
 * SERVERS, when given, replaces the token's: nats.c tries each server of a
 * list in turn, so a refusal reaches the caller only from the last one.
 *
 * Prints "D dials, R refused, Z zero signatures" (and the first refusal on
 * stderr): Z signatures of a nonce began with a zero byte, those libnats
 * 3.4.1 leaves out of its CONNECT (syncd/dial.c rule 3). Exit 1 when a dial
 * failed, 2 on a usage error or a token that does not decode.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dial.h"
#include "join.h"

int
main(int argc, char **argv)
{
	struct vk_join_token *tok;
	char text[8192], inbox[64], err[512];
	long count, dials = 0, refused = 0, failed = 0;
	size_t len;
	FILE *f;

	if ((argc != 3 && argc != 4) || (count = strtol(argv[2], NULL, 10)) < 1) {
		fputs("usage: vk_dial TOKEN_FILE COUNT [SERVERS]\n", stderr);
		return 2;
	}
	if (sodium_init() < 0 || (tok = sodium_malloc(sizeof *tok)) == NULL ||
	    (f = fopen(argv[1], "re")) == NULL) {
		fprintf(stderr, "vk_dial: cannot read %s\n", argv[1]);
		return 2;
	}
	len = fread(text, 1, sizeof text, f);
	fclose(f);
	if (vk_join_token_decode(text, len, tok) != 0) {
		fprintf(stderr, "vk_dial: %s is not a join token\n", argv[1]);
		return 2;
	}
	if (argc == 4)
		snprintf(tok->servers, sizeof tok->servers, "%s", argv[3]);
	snprintf(inbox, sizeof inbox, "_INBOX.join-%s", tok->id);
	for (; dials < count; dials++) {
		int no = 0;
		natsConnection *nc =
		    sd_dial(tok->servers, NULL, tok->jwt, tok->seed, inbox, &no, err, sizeof err);

		if (nc == NULL) {
			if (failed++ == 0)
				fprintf(stderr, "vk_dial: dial %ld: %s\n", dials + 1, err);
			refused += no;
			continue;
		}
		natsConnection_Close(nc);
		natsConnection_Destroy(nc);
	}
	sodium_memzero(text, sizeof text);
	sodium_free(tok);
	printf("%ld dials, %ld refused, %lu zero signatures\n", dials, refused,
	       sd_dial_zero_signatures());
	return failed == 0 ? 0 : 1;
}
