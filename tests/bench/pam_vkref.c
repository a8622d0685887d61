/*
 * pam_vkref.c - the reference for `make bench`: what any PAM module that
 * checks a key against a SQLite store must do, and nothing else.
 *
 *   auth    required pam_vkref.so db=PATH
 *   account required pam_vkref.so db=PATH
 *
 * Authentication takes the token from the conversation (as pam_viamkey
 * does), trims and parses it with common/'s token parser to get the key
 * ID, opens the store read-only (sqlite3_open_v2, SQLITE_OPEN_READONLY),
 * reads one row by key ID (the current secret's algorithm, salt and
 * verifier), and checks the secret against it with common/verifier.c's
 * vk_verifier_check: one keyed BLAKE2b with the salt as key, compared in
 * constant time. An unknown key ID still costs one hash.
 * Account management returns PAM_SUCCESS.
 *
 * It links libsqlite3.so and libsodium.so as pam_viamkey.so does, so that
 * bench.sh can put pam_viamkey's login next to this floor. Not installed;
 * no config file, no permission checks, no users, grants or scopes, no
 * logging, no last use: it is not a login module anyone should use.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "token.h"
#include "verifier.h"

/* PAM_SUCCESS when the token's current secret matches, PAM_AUTH_ERR when not. */
static int
check(const char *path, const struct vk_token *t)
{
	char key_id[VK_UUID_STRLEN + 1];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = PAM_AUTHINFO_UNAVAIL, row, step;

	vk_uuid_format(t->key_id, key_id);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "SELECT alg, salt, verifier FROM secrets"
	                       " WHERE key_id = ?1 AND expires_at IS NULL",
	                       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, key_id, -1, SQLITE_STATIC) != SQLITE_OK)
		goto out;
	step = sqlite3_step(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		goto out;
	row = step == SQLITE_ROW;
	/* no row: NULLs, which never match but still cost one hash */
	rc = vk_verifier_check(t, row ? (const char *)sqlite3_column_text(st, 0) : NULL,
	                       row ? sqlite3_column_blob(st, 1) : NULL,
	                       row ? (size_t)sqlite3_column_bytes(st, 1) : 0,
	                       row ? sqlite3_column_blob(st, 2) : NULL,
	                       row ? (size_t)sqlite3_column_bytes(st, 2) : 0)
	         ? PAM_SUCCESS
	         : PAM_AUTH_ERR;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const char *path = NULL, *token;
	char *answer = NULL;
	struct vk_token t;
	size_t len;
	int rc;

	(void)flags;
	for (int i = 0; i < argc; i++)
		if (strncmp(argv[i], "db=", 3) == 0)
			path = argv[i] + 3;
	if (path == NULL || sodium_init() < 0)
		return PAM_SERVICE_ERR;
	rc = pam_prompt(pamh, PAM_PROMPT_ECHO_OFF, &answer, "API key: ");
	if (rc != PAM_SUCCESS || answer == NULL)
		return rc == PAM_BUF_ERR ? PAM_BUF_ERR : PAM_CONV_ERR;
	token = answer;
	len = strlen(answer);
	vk_token_trim(&token, &len);
	rc = vk_token_parse(token, len, &t) == VK_TOKEN_OK ? check(path, &t) : PAM_AUTH_ERR;
	vk_token_wipe(&t);
	sodium_memzero(answer, strlen(answer));
	free(answer);
	return rc;
}

PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS;
}

PAM_EXTERN int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_SUCCESS;
}
