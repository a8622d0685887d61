/*
 * token.h - the API key token and key identifiers.
 *
 * A token is "vk_" + 22 base62 characters of the 128-bit key ID + "_" +
 * 43 base62 characters of the 256-bit secret + 6 base62 characters of a
 * CRC-32 over everything before it: 75 characters of [A-Za-z0-9_].
 *
 * vk_token_parse() never reads past `len`, refuses anything over
 * VK_TOKEN_HARD_MAX bytes without looking at it, and checks the checksum
 * before decoding the secret. The caller owns struct vk_token and must
 * wipe it with vk_token_wipe() once done.
 */
#ifndef VK_TOKEN_H
#define VK_TOKEN_H

#include "vk.h"

#define VK_KEY_ID_BYTES   16
#define VK_SECRET_BYTES   32
#define VK_TOKEN_LEN      75
#define VK_TOKEN_MAX      128 /* the spec's ceiling for any token format */
#define VK_TOKEN_HARD_MAX 512 /* longer input is refused unparsed */
#define VK_KEY_PART_LEN   22
#define VK_PREVIEW_LEN    (3 + VK_KEY_PART_LEN + 1 + 3) /* "vk_<id>_…" in UTF-8 */

struct vk_token {
	unsigned char key_id[VK_KEY_ID_BYTES];
	unsigned char secret[VK_SECRET_BYTES];
};

typedef enum {
	VK_TOKEN_OK = 0,
	VK_TOKEN_MALFORMED, /* wrong length, prefix, alphabet or out-of-range value */
	VK_TOKEN_CHECKSUM,  /* well formed, but the checksum does not match */
} vk_token_status;

vk_token_status vk_token_parse(const char *s, size_t len, struct vk_token *out);

/* Writes VK_TOKEN_LEN characters and a NUL into out. */
void vk_token_format(const struct vk_token *t, char out[VK_TOKEN_LEN + 1]);

/* A fresh token: random key ID (UUIDv4) and a 256-bit secret. */
void vk_token_generate(struct vk_token *t);

/* A new secret for an existing key ID. */
void vk_token_new_secret(struct vk_token *t);

void vk_token_wipe(struct vk_token *t);

/*
 * The one normalisation of a presented token: narrows [*s, *s + *len) to
 * leave out leading and trailing spaces, tabs, CRs and LFs.
 */
void vk_token_trim(const char **s, size_t *len);

/*
 * Token-shaped: begins with "vk_" once trimmed, whatever follows. Such an
 * answer was meant for viamkey, accepted or not, and may hold a secret; the
 * module never leaves it in PAM_AUTHTOK for later modules unless told to.
 */
int vk_token_shaped(const char *s, size_t len);

/* "vk_<key-id part>_…", the non-secret handle shown in lists and logs. */
void vk_token_preview(const unsigned char key_id[VK_KEY_ID_BYTES], char out[VK_PREVIEW_LEN + 1]);

/* Base62 key-ID part of a token (22 characters). */
void vk_key_part(const unsigned char key_id[VK_KEY_ID_BYTES], char out[VK_KEY_PART_LEN + 1]);

/*
 * UUIDs in canonical lowercase form. vk_uuid_parse() accepts only that form
 * with version 4 and variant bits set; returns 0 on success, -1 otherwise.
 */
int vk_uuid_parse(const char *s, unsigned char out[VK_KEY_ID_BYTES]);
void vk_uuid_format(const unsigned char id[VK_KEY_ID_BYTES], char out[VK_UUID_STRLEN + 1]);
void vk_uuid_generate(unsigned char out[VK_KEY_ID_BYTES]);
/* 1 when s is a canonical lowercase UUIDv4 string. */
int vk_uuid_valid(const char *s);

#endif
