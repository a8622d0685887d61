/*
 * cert.c - certificates and root versions: made, and verified.
 *
 * Security rules for this file:
 *  1. A certificate counts only when the root key of its version signed
 *     its exact text; a root version only when the key of the version
 *     before signed it and so did the key it names (an attacker holding
 *     one of the two cannot make one).
 *  2. The decoders accept only the exact text the encoders write, and read
 *     nothing beyond `len` bytes.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "cert.h"

#define ROOT_MAGIC  "vkr1."
#define ROOT_DOMAIN "viamkey root v1\n"
#define SIG_B64     86 /* 64 bytes, base64url without padding */

/* A name a certificate may carry: printable ASCII, no quote or backslash. */
static int
name_ok(const char *name)
{
	if (name[0] == '\0' || strlen(name) >= VK_CERT_NAME_MAX)
		return 0;
	for (const char *p = name; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
			return 0;
	return 1;
}

int
vk_cert_text(const struct vk_cert *c, char out[VK_CERT_TEXT_MAX])
{
	char key[VK_PUBLIC_KEY_B64];

	if (!name_ok(c->name))
		return -1;
	sodium_bin2base64(key, sizeof key, c->key, sizeof c->key, sodium_base64_VARIANT_ORIGINAL);
	snprintf(
	    out, VK_CERT_TEXT_MAX,
	    "{\"v\":1,\"type\":\"cert\",\"epoch\":%lld,\"key\":\"%s\",\"root\":%lld,\"at\":%lld,"
	    "\"name\":\"%s\"}",
	    (long long)c->epoch, key, (long long)c->root, (long long)c->at, c->name);
	return 0;
}

char *
vk_cert_make(const unsigned char *root_sk, const struct vk_cert *c)
{
	char json[VK_CERT_TEXT_MAX];

	return vk_cert_text(c, json) == 0 ? vk_record_sign(root_sk, json) : NULL;
}

/* A public key, as base64 in a quoted string. */
static void
key_field(struct vk_cursor *cur, unsigned char key[VK_PUBLIC_KEY_BYTES])
{
	char text[VK_PUBLIC_KEY_B64 + 1], again[VK_PUBLIC_KEY_B64];

	vk_canon_str(cur, text, sizeof text);
	if (!cur->bad && vk_public_key_parse(text, key) != 0)
		cur->bad = 1;
	/* one spelling: what the encoder writes for those bytes, nothing else */
	if (!cur->bad) {
		sodium_bin2base64(again, sizeof again, key, VK_PUBLIC_KEY_BYTES,
		                  sodium_base64_VARIANT_ORIGINAL);
		if (strcmp(again, text) != 0)
			cur->bad = 1;
	}
}

/* c from a certificate's JSON; 0, or -1 for anything but a certificate's exact text. */
static int
cert_decode(const char *json, size_t jlen, struct vk_cert *c)
{
	struct vk_cursor cur;

	memset(c, 0, sizeof *c);
	vk_canon_start(&cur, json, jlen);
	vk_canon_lit(&cur, "{\"v\":1,\"type\":\"cert\",\"epoch\":");
	c->epoch = vk_canon_num(&cur);
	vk_canon_lit(&cur, ",\"key\":");
	key_field(&cur, c->key);
	vk_canon_lit(&cur, ",\"root\":");
	c->root = vk_canon_num(&cur);
	vk_canon_lit(&cur, ",\"at\":");
	c->at = vk_canon_num(&cur);
	vk_canon_lit(&cur, ",\"name\":");
	vk_canon_str(&cur, c->name, sizeof c->name);
	vk_canon_lit(&cur, "}");
	if (!vk_canon_done(&cur) || !name_ok(c->name) || c->epoch < 1 || c->root < 1) {
		memset(c, 0, sizeof *c);
		return -1;
	}
	return 0;
}

int
vk_cert_verify(const unsigned char root_pk[VK_PUBLIC_KEY_BYTES], const char *value, size_t len,
               struct vk_cert *c)
{
	char err[VK_ERRLEN];
	const char *json;
	size_t jlen;

	memset(c, 0, sizeof *c);
	if (vk_record_verify(root_pk, value, len, &json, &jlen, err) != VK_OK)
		return -1;
	return cert_decode(json, jlen, c);
}

int
vk_cert_read(const char *value, size_t len, struct vk_cert *c)
{
	const size_t head = 4 + SIG_B64 + 1; /* "vk1." signature "." */

	memset(c, 0, sizeof *c);
	if (len <= head || memcmp(value, "vk1.", 4) != 0 || value[head - 1] != '.')
		return -1;
	return cert_decode(value + head, len - head, c);
}

/* Ed25519 of ROOT_DOMAIN || json with sk, base64url, into out. */
static void
root_sign(const unsigned char *sk, const char *json, char out[SIG_B64 + 1])
{
	size_t jlen = strlen(json);
	unsigned char sig[crypto_sign_BYTES], *msg = malloc(sizeof ROOT_DOMAIN - 1 + jlen);

	out[0] = '\0';
	if (msg == NULL)
		return;
	memcpy(msg, ROOT_DOMAIN, sizeof ROOT_DOMAIN - 1);
	memcpy(msg + sizeof ROOT_DOMAIN - 1, json, jlen);
	crypto_sign_detached(sig, NULL, msg, sizeof ROOT_DOMAIN - 1 + jlen, sk);
	free(msg);
	sodium_bin2base64(out, SIG_B64 + 1, sig, sizeof sig,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

char *
vk_root_make(const unsigned char *prev_sk, const unsigned char *new_sk, int64_t version, int64_t at)
{
	unsigned char pk[VK_PUBLIC_KEY_BYTES];
	char json[256], key[VK_PUBLIC_KEY_B64], prev[SIG_B64 + 1], own[SIG_B64 + 1], *value;
	size_t size;

	crypto_sign_ed25519_sk_to_pk(pk, new_sk);
	sodium_bin2base64(key, sizeof key, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
	snprintf(json, sizeof json,
	         "{\"v\":1,\"type\":\"root\",\"version\":%lld,\"key\":\"%s\",\"at\":%lld}",
	         (long long)version, key, (long long)at);
	root_sign(prev_sk, json, prev);
	root_sign(new_sk, json, own);
	if (prev[0] == '\0' || own[0] == '\0')
		return NULL;
	size = sizeof ROOT_MAGIC + 2 * (SIG_B64 + 1) + strlen(json) + 1;
	if ((value = malloc(size)) != NULL)
		snprintf(value, size, ROOT_MAGIC "%s.%s.%s", prev, own, json);
	return value;
}

/* Whether sig (base64url, SIG_B64 characters) is pk's over ROOT_DOMAIN || json. */
static int
root_signed(const unsigned char pk[VK_PUBLIC_KEY_BYTES], const char *sig, const char *json,
            size_t jlen)
{
	unsigned char bin[crypto_sign_BYTES], *msg;
	size_t n;
	int ok;

	if (sodium_base642bin(bin, sizeof bin, sig, SIG_B64, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof bin || (msg = malloc(sizeof ROOT_DOMAIN - 1 + jlen)) == NULL)
		return 0;
	memcpy(msg, ROOT_DOMAIN, sizeof ROOT_DOMAIN - 1);
	memcpy(msg + sizeof ROOT_DOMAIN - 1, json, jlen);
	ok = crypto_sign_verify_detached(bin, msg, sizeof ROOT_DOMAIN - 1 + jlen, pk) == 0;
	free(msg);
	return ok;
}

int
vk_root_verify(const unsigned char prev_pk[VK_PUBLIC_KEY_BYTES], const char *value, size_t len,
               struct vk_root *r)
{
	const size_t magic = sizeof ROOT_MAGIC - 1, head = magic + 2 * (SIG_B64 + 1);
	const char *json = value + head;
	struct vk_cursor cur;

	memset(r, 0, sizeof *r);
	if (len <= head || memcmp(value, ROOT_MAGIC, magic) != 0 || value[magic + SIG_B64] != '.' ||
	    value[head - 1] != '.')
		return -1;
	vk_canon_start(&cur, json, len - head);
	vk_canon_lit(&cur, "{\"v\":1,\"type\":\"root\",\"version\":");
	r->version = vk_canon_num(&cur);
	vk_canon_lit(&cur, ",\"key\":");
	key_field(&cur, r->key);
	vk_canon_lit(&cur, ",\"at\":");
	r->at = vk_canon_num(&cur);
	vk_canon_lit(&cur, "}");
	/* rule 1: the version before signed it, and so did its own key */
	if (!vk_canon_done(&cur) || r->version < 2 ||
	    !root_signed(prev_pk, value + magic, json, len - head) ||
	    !root_signed(r->key, value + magic + SIG_B64 + 1, json, len - head)) {
		memset(r, 0, sizeof *r);
		return -1;
	}
	return 0;
}
