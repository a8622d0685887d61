/*
 * vk.h - shared definitions for viamkey's common library.
 *
 * Every fallible function in common/ returns a vk_rc and, where it takes an
 * `err` buffer of VK_ERRLEN bytes, writes one human-readable line there
 * (no trailing newline, never a secret).
 */
#ifndef VK_H
#define VK_H

#include <stddef.h>
#include <stdint.h>

#define VK_ERRLEN         256
#define VK_UUID_STRLEN    36
#define VK_NAME_MAX       64  /* characters (UTF-8 code points) */
#define VK_NAME_BYTES     256 /* 64 code points of at most 4 bytes each */
#define VK_USER_MAX       256
#define VK_SECRET_TAG_LEN 16 /* hex digits of vk_secret_tag() */

typedef enum {
	VK_OK = 0,
	VK_ERR_USAGE,    /* malformed input from the caller */
	VK_ERR_NOTFOUND, /* no such organization, location, machine or key */
	VK_ERR_CONFLICT, /* refused by the current state (protected, children, window open) */
	VK_ERR_STORE,    /* store or config unusable: missing, permissions, corrupt, schema */
	VK_ERR_NOMEM,
	VK_ERR_IO, /* a write failed: disk full, read-only, locked past the timeout */
} vk_rc;

typedef enum {
	VK_ROLE_NONE = 0,
	VK_ROLE_VIEWER = 1,
	VK_ROLE_OPERATOR = 2,
	VK_ROLE_OWNER = 3,
} vk_role;

/* "owner", "operator", "viewer"; VK_ROLE_NONE for anything else. */
vk_role vk_role_parse(const char *s);
/* Static name of a role; "none" for VK_ROLE_NONE. */
const char *vk_role_name(vk_role r);

#include "text.h"

/* Format into err; always NUL-terminates. */
void vk_seterr(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
