/*
 * identity.c - a machine's bus identity, as its own record carries it (SPEC
 * §9): the JWT the authority issued for this machine's scopes, with the
 * user seed the machine made when it joined, in [sync] credentials.
 *
 * Security rules for this file:
 *  1. Only the JWT changes: the seed stays the one in the file, which never
 *     leaves this host; the file is replaced whole (a new file renamed over
 *     it), mode 0600.
 *  2. A record without a JWT (a machine set up by hand) changes nothing.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "machine.h"
#include "record.h"
#include "store.h"

#define CREDS_MAX 8192

void
sd_identity_take(struct machine *m, const char *json, size_t len)
{
	const char *path = m->cfg->sync.credentials;
	char err[VK_ERRLEN], seed[VK_NKEY_SEED_LEN + 1], *text = NULL, *record = NULL, *jwt = NULL,
	                                                 *old = NULL, *creds = NULL;
	size_t n;

	if (path == NULL || (record = strndup(json, len)) == NULL ||
	    vk_store_query_text(m->db, "cannot read the record", err, &jwt,
	                        "SELECT json_extract(?1, '$.machine.jwt')", "t", record) != VK_OK ||
	    jwt == NULL) /* rule 2 */
		goto out;
	if ((text = sodium_malloc(CREDS_MAX)) == NULL ||
	    vk_secret_file_read(path, text, CREDS_MAX, &n, err) != VK_OK ||
	    vk_creds_parse(text, n, &old, seed) != 0) {
		sd_log(LOG_WARNING, "cannot read this machine's credentials %s to renew them",
		       path);
		goto out;
	}
	if (strcmp(old, jwt) == 0)
		goto out;
	/* rule 1 */
	if ((creds = vk_creds_format(jwt, seed)) == NULL ||
	    vk_file_write(path, creds, strlen(creds), 0600, 1, err) != VK_OK) {
		sd_log(LOG_ERR, "cannot write this machine's new bus identity: %s", err);
		goto out;
	}
	sd_log(LOG_INFO, "this machine's bus identity changed (its scopes did): connecting again");
	m->reconnect = 1;
out:
	sodium_memzero(seed, sizeof seed);
	if (creds != NULL) {
		sodium_memzero(creds, strlen(creds));
		free(creds);
	}
	if (text != NULL)
		sodium_free(text);
	free(record);
	free(jwt);
	free(old);
}
