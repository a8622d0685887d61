/*
 * keys.h - keys: creating them, issuing their secrets, and every change
 * keyadm makes to one.
 *
 * Each function runs inside the caller's vk_txn and records its audit
 * event and, on the authority, the change for the fleet; the caller commits. The rules of the data
 * model live here: a key keeps at least one grant and one user, a protected key is neither disabled
 * nor deleted, and a key never has more than two live secrets. Each function that issues a secret
 * writes the token, exactly once, into the caller's `token` buffer, which the caller must wipe
 * after printing it.
 */
#ifndef VK_KEYS_H
#define VK_KEYS_H

#include <sqlite3.h>
#include <stdint.h>

#include "token.h"
#include "txn.h"

struct vk_key_spec {
	const char *name;
	vk_role role;
	const char *resource_type; /* "organization", "location" or "machine" */
	const char *resource_id;
	const char *const *users;
	size_t nusers;
	int64_t expires_at; /* 0: never */
	int protected_key;
};

/* Creates a key with one grant, made by t->actor. id_out receives the new key ID. */
vk_rc vk_key_create(struct vk_txn *t, const struct vk_key_spec *spec,
                    char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1],
                    char err[VK_ERRLEN]);

/*
 * Issues a new secret for key_id. grace == 0 retires the old secrets at
 * once; grace > 0 keeps the current one valid until now + grace. Either
 * fails with VK_ERR_CONFLICT while a window is still open.
 */
vk_rc vk_key_rotate(struct vk_txn *t, const char *key_id, int64_t grace,
                    char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN]);

/* Ends an open rotation window now; VK_ERR_CONFLICT when none is open. */
vk_rc vk_key_finish_rotation(struct vk_txn *t, const char *key_id, char err[VK_ERRLEN]);

/* A new key with the grants and users of key_id, named `name` or as the original. */
vk_rc vk_key_clone(struct vk_txn *t, const char *key_id, const char *name,
                   char id_out[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1],
                   char err[VK_ERRLEN]);

/* Grants `role` on a resource, or changes the role of the grant already there. */
vk_rc vk_key_grant(struct vk_txn *t, const char *key_id, vk_role role, const char *type,
                   const char *resource_id, char err[VK_ERRLEN]);

/* Removes a grant; VK_ERR_CONFLICT when it is the key's last. */
vk_rc vk_key_ungrant(struct vk_txn *t, const char *key_id, const char *type,
                     const char *resource_id, char err[VK_ERRLEN]);

/* Adding a user who is already there changes nothing and records nothing. */
vk_rc vk_key_add_user(struct vk_txn *t, const char *key_id, const char *user, char err[VK_ERRLEN]);

/* Removes a user; VK_ERR_CONFLICT when it is the key's last. */
vk_rc vk_key_remove_user(struct vk_txn *t, const char *key_id, const char *user,
                         char err[VK_ERRLEN]);

enum vk_key_change {
	VK_KEY_RENAME,
	VK_KEY_DISABLE, /* refused on a protected key */
	VK_KEY_ENABLE,
	VK_KEY_PROTECT,
	VK_KEY_UNPROTECT,
	VK_KEY_DELETE,           /* refused on a protected key */
	VK_KEY_MARK_BREAK_GLASS, /* works on a replica however stale (SPEC §8) */
	VK_KEY_UNMARK_BREAK_GLASS,
};

/* One of the upkeep changes; `name` is for VK_KEY_RENAME only. */
vk_rc vk_key_change(struct vk_txn *t, const char *key_id, enum vk_key_change change,
                    const char *name, char err[VK_ERRLEN]);

/* VK_OK if the key exists, VK_ERR_NOTFOUND (or VK_ERR_USAGE for a malformed ID) otherwise. */
vk_rc vk_key_exists(sqlite3 *db, const char *key_id, char err[VK_ERRLEN]);

#endif
