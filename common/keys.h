/*
 * keys.h - creating keys and issuing secrets.
 *
 * These functions run inside the caller's transaction (vk_store_begin) and
 * leave committing, and recording audit events, to the caller. Each one
 * that issues a secret writes the token, exactly once, into the caller's
 * `token` buffer, which the caller must wipe after printing it.
 */
#ifndef VK_KEYS_H
#define VK_KEYS_H

#include <sqlite3.h>
#include <stdint.h>

#include "token.h"

struct vk_key_spec {
	const char *name;
	const char *created_by;
	vk_role role;
	const char *resource_type; /* "organization", "location" or "machine" */
	const char *resource_id;
	const char *const *users;
	size_t nusers;
	int64_t expires_at; /* 0: never */
	int protected_key;
};

/* Creates a key with one grant. id_out receives the new key ID. */
vk_rc vk_key_create(sqlite3 *db, const struct vk_key_spec *spec, int64_t now,
                    char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1],
                    char err[VK_ERRLEN]);

/*
 * Issues a new secret for key_id. grace == 0 retires the old secrets at
 * once; grace > 0 keeps the current one valid until now + grace and fails
 * with VK_ERR_CONFLICT while an earlier window is still open.
 */
vk_rc vk_key_rotate(sqlite3 *db, const char *key_id, int64_t grace, int64_t now,
                    char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN]);

/* Ends an open rotation window now; VK_ERR_CONFLICT when none is open. */
vk_rc vk_key_finish_rotation(sqlite3 *db, const char *key_id, int64_t now, char err[VK_ERRLEN]);

/* A new key with the grants and users of key_id. */
vk_rc vk_key_clone(sqlite3 *db, const char *key_id, const char *name, const char *created_by,
                   int64_t now, char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1],
                   char err[VK_ERRLEN]);

/* VK_OK if the key exists, VK_ERR_NOTFOUND with a message otherwise. */
vk_rc vk_key_exists(sqlite3 *db, const char *key_id, char err[VK_ERRLEN]);

/*
 * VK_OK if a resource of that type ("organization", "location",
 * "machine") exists, VK_ERR_NOTFOUND with a message otherwise.
 */
vk_rc vk_resource_exists(sqlite3 *db, const char *type, const char *id, char err[VK_ERRLEN]);

#endif
