/*
 * dial.c - a connection to the bus for one short exchange (SPEC §9): a new
 * host's join request, with the bus user its token carries; the
 * authority's update of an account, as the system account's user.
 *
 * Security rules for this file:
 *  1. A user seed held in memory signs the server's nonce and nothing else;
 *     the key made from it is wiped at once.
 *  2. It tries each server it is given once (not those a node tells of)
 *     and does not retry in the background: the caller says what failed,
 *     but for rule 3.
 *  3. libnats 3.4.1 leaves out of its CONNECT the signature of the
 *     server's nonce when the signature's first byte is zero, one nonce in
 *     256 (measured: nats-server logs "Signature missing" then, and
 *     refuses the user). Such a refusal, and only such, is followed by a
 *     new connection: a new nonce, a new signature; DIAL_TRIES connections
 *     at most. With a .creds file nats.c signs, and this cannot tell: its
 *     callers try again later (admit.c, each second).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dial.h"
#include "nkey.h"

#define DIAL_SERVERS 16
#define DIAL_WAIT_MS 5000
#define DIAL_TRIES   4 /* rule 3: four dropped signatures in a row, one time in 2^32 */

static unsigned long zero_first; /* rule 3: such signatures made, since the process began */

struct held {
	const char *jwt;
	const char *seed;
	int dropped; /* rule 3: the last signature began with a zero byte */
};

static natsStatus
give_jwt(char **jwt, char **custom, void *closure)
{
	const struct held *h = closure;

	(void)custom;
	return (*jwt = strdup(h->jwt)) != NULL ? NATS_OK : NATS_NO_MEMORY;
}

/* Rule 1. */
static natsStatus
sign_nonce(char **custom, unsigned char **sig, int *len, const char *nonce, void *closure)
{
	struct held *h = closure;
	unsigned char seed[32], pk[32], *sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
	enum vk_nkey_type t;
	natsStatus s = NATS_ERR;

	(void)custom;
	if (sk == NULL)
		return NATS_NO_MEMORY;
	if (vk_nkey_seed_parse(h->seed, strlen(h->seed), &t, seed) == 0 && t == VK_NKEY_USER &&
	    (*sig = malloc(crypto_sign_BYTES)) != NULL) {
		crypto_sign_seed_keypair(pk, sk, seed);
		crypto_sign_detached(*sig, NULL, (const unsigned char *)nonce, strlen(nonce), sk);
		*len = crypto_sign_BYTES;
		if ((h->dropped = (*sig)[0] == 0))
			zero_first++;
		s = NATS_OK;
	}
	sodium_memzero(seed, sizeof seed);
	sodium_free(sk);
	return s;
}

/* The options of a dial: servers (split in place), one try each, credentials, inbox. */
static natsStatus
options(natsOptions *o, char *servers, const char *creds, struct held *h, const char *inbox)
{
	const char *list[DIAL_SERVERS];
	natsStatus s;
	int n = 0;

	for (char *tok = strtok(servers, ", "); tok != NULL && n < DIAL_SERVERS;
	     tok = strtok(NULL, ", "))
		list[n++] = tok;
	if (n == 0)
		return NATS_INVALID_ARG;
	if ((s = natsOptions_SetServers(o, list, n)) != NATS_OK ||
	    (s = natsOptions_SetTimeout(o, DIAL_WAIT_MS)) != NATS_OK ||
	    (s = natsOptions_SetMaxReconnect(o, 0)) != NATS_OK ||
	    (s = natsOptions_SetIgnoreDiscoveredServers(o, true)) != NATS_OK ||
	    (s = natsOptions_SetCustomInboxPrefix(o, inbox)) != NATS_OK)
		return s;
	if (creds != NULL)
		return natsOptions_SetUserCredentialsFromFiles(o, creds, NULL);
	return natsOptions_SetUserCredentialsCallbacks(o, give_jwt, h, sign_nonce, h);
}

int
sd_dial_refusal(natsStatus s)
{
	return s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED;
}

natsConnection *
sd_dial(const char *servers, const char *creds, const char *jwt, const char *seed,
        const char *inbox, int *refused, char *err, size_t errlen)
{
	/* read by nats.c while it connects (it never reconnects): one dial at a time */
	static struct held held;
	natsConnection *nc = NULL;
	natsOptions *o = NULL;
	char *copy = strdup(servers);
	natsStatus s = NATS_NO_MEMORY;

	held.jwt = jwt;
	held.seed = seed;
	if (copy != NULL && (s = natsOptions_Create(&o)) == NATS_OK &&
	    (s = options(o, copy, creds, &held, inbox)) == NATS_OK) {
		int tries = 0;

		for (;;) { /* rule 3 */
			held.dropped = 0;
			s = natsConnection_Connect(&nc, o);
			if (!sd_dial_refusal(s) || !held.dropped || ++tries == DIAL_TRIES)
				break;
		}
	}
	if (s != NATS_OK) {
		const char *last = nats_GetLastError(NULL);
		int no = sd_dial_refusal(s);

		snprintf(err, errlen, "%s (%s): %s",
		         no ? "the bus refused the user" : "cannot connect to the bus", servers,
		         last != NULL && *last != '\0' ? last : natsStatus_GetText(s));
		if (refused != NULL)
			*refused = no;
		nc = NULL;
	}
	natsOptions_Destroy(o);
	free(copy);
	return nc;
}

int
sd_dial_request(natsConnection *nc, const char *subject, const char *body, size_t len,
                int64_t wait_ms, char **reply, size_t *reply_len, char *err, size_t errlen)
{
	natsMsg *m = NULL;
	natsStatus s;

	*reply = NULL;
	s = natsConnection_Request(&m, nc, subject, body, (int)len, wait_ms);
	if (s != NATS_OK) {
		snprintf(err, errlen, "no answer on %s: %s", subject,
		         s == NATS_TIMEOUT ? "timed out" : natsStatus_GetText(s));
		return -1;
	}
	*reply_len = (size_t)natsMsg_GetDataLength(m);
	if ((*reply = malloc(*reply_len + 1)) == NULL) {
		natsMsg_Destroy(m);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memcpy(*reply, natsMsg_GetData(m), *reply_len);
	(*reply)[*reply_len] = '\0';
	natsMsg_Destroy(m);
	return 0;
}

unsigned long
sd_dial_zero_signatures(void)
{
	return zero_first;
}
