/*
 * signer.c - the authority's signing key, epoch and certificate.
 *
 * Security rules for this file:
 *  1. The key signs only as the certificate the store holds says: a key
 *     that is not the one it names is refused, never used.
 *  2. A rekey cut short is completed only with the key its certificate
 *     names, renamed over the old one in one step and made durable.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "fleet.h"
#include "signer.h"
#include "store.h"

char *
vk_signer_next_path(const char *key_path)
{
	size_t size = strlen(key_path) + 5;
	char *next = malloc(size);

	if (next != NULL)
		snprintf(next, size, "%s.new", key_path);
	return next;
}

/* The public half of the key in file path; 0, or -1 when it cannot be read. */
static int
key_of(const char *path, unsigned char pk[VK_PUBLIC_KEY_BYTES])
{
	unsigned char *sk = sodium_malloc(VK_SIGNING_KEY_BYTES);
	char err[VK_ERRLEN];
	int rc = -1;

	if (sk != NULL && vk_signing_key_load(path, sk, err) == VK_OK) {
		crypto_sign_ed25519_sk_to_pk(pk, sk);
		rc = 0;
	}
	sodium_free(sk);
	return rc;
}

vk_rc
vk_signer_load(sqlite3 *db, const char *key_path, struct vk_signer *s, char err[VK_ERRLEN])
{
	unsigned char named[VK_PUBLIC_KEY_BYTES], next_pk[VK_PUBLIC_KEY_BYTES];
	sqlite3_stmt *st = NULL;
	char *next = NULL;
	struct vk_cert c;
	vk_rc rc;

	memset(s, 0, sizeof *s);
	if ((s->sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	if ((rc = vk_store_prepare(db, "cannot read the authority's certificate", err, &st,
	                           "SELECT " VK_SIGNER_EPOCH_SQL ", " VK_SIGNER_CERT_SQL, "")) !=
	    VK_OK)
		goto fail;
	if (sqlite3_step(st) == SQLITE_ROW) {
		s->epoch = sqlite3_column_int64(st, 0);
		if (sqlite3_column_text(st, 1) != NULL &&
		    (s->cert = strdup((const char *)sqlite3_column_text(st, 1))) == NULL) {
			vk_seterr(err, "out of memory");
			rc = VK_ERR_NOMEM;
			goto fail;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = vk_signing_key_load(key_path, s->sk, err)) != VK_OK)
		goto fail;
	crypto_sign_ed25519_sk_to_pk(s->pk, s->sk);
	if (s->cert != NULL) {
		if (vk_cert_read(s->cert, strlen(s->cert), &c) != 0 || c.epoch != s->epoch) {
			vk_seterr(err, "the store's certificate is malformed");
			rc = VK_ERR_STORE;
			goto fail;
		}
		memcpy(named, c.key, sizeof named);
		/* rule 2: a rekey cut short after the store recorded the new certificate */
		if (sodium_memcmp(named, s->pk, sizeof named) != 0) {
			if ((next = vk_signer_next_path(key_path)) == NULL) {
				vk_seterr(err, "out of memory");
				rc = VK_ERR_NOMEM;
				goto fail;
			}
			/* keyadm and the daemon may both come here: the second finds it done */
			if (key_of(next, next_pk) == 0 &&
			    sodium_memcmp(named, next_pk, sizeof named) == 0)
				(void)vk_file_rename(next, key_path);
			if ((rc = vk_signing_key_load(key_path, s->sk, err)) != VK_OK)
				goto fail;
			crypto_sign_ed25519_sk_to_pk(s->pk, s->sk);
		}
		/* rule 1 */
		if (sodium_memcmp(named, s->pk, sizeof named) != 0) {
			vk_seterr(
			    err,
			    "signing key %s is not the one the store's certificate (epoch %lld)"
			    " names",
			    key_path, (long long)s->epoch);
			rc = VK_ERR_STORE;
			goto fail;
		}
		{
			size_t len = strlen(s->cert),
			       size = sodium_base64_ENCODED_LEN(
			           len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

			if ((s->cert_b64 = malloc(size)) == NULL) {
				vk_seterr(err, "out of memory");
				rc = VK_ERR_NOMEM;
				goto fail;
			}
			sodium_bin2base64(s->cert_b64, size, (const unsigned char *)s->cert, len,
			                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		}
	}
	free(next);
	return VK_OK;
fail:
	sqlite3_finalize(st);
	free(next);
	vk_signer_free(s);
	return rc;
}

void
vk_signer_free(struct vk_signer *s)
{
	sodium_free(s->sk);
	free(s->cert);
	free(s->cert_b64);
	memset(s, 0, sizeof *s);
}
