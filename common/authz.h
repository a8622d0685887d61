/*
 * authz.h - the login decision, shared by pam_viamkey.so and `keyadm check`.
 *
 * vk_authorize() allows only when: the token is well formed with a valid
 * checksum; the key exists; one of its live secrets matches; the key is
 * enabled and not expired; the user is one of its users; and a grant covers
 * the machine (directly, by its location or by its organization) with a
 * role at or above the required one. Every denial names one reason.
 *
 * It reads one consistent snapshot and never writes. VK_DECISION_ERROR
 * means the store or the machine ID is unusable (not a denial of the
 * credential); res->err then says why.
 */
#ifndef VK_AUTHZ_H
#define VK_AUTHZ_H

#include <sqlite3.h>
#include <stdint.h>

#include "token.h"

typedef enum {
	VK_DECISION_ALLOW,
	VK_DECISION_DENY,
	VK_DECISION_ERROR,
} vk_decision;

typedef enum {
	VK_REASON_OK,
	VK_REASON_MALFORMED,
	VK_REASON_CHECKSUM,
	VK_REASON_UNKNOWN_KEY,
	VK_REASON_WRONG_SECRET,
	VK_REASON_DISABLED,
	VK_REASON_EXPIRED,
	VK_REASON_USER,
	VK_REASON_SCOPE,
	VK_REASON_ROLE,
	VK_REASON_STORE,   /* decision ERROR: store unreadable or corrupt */
	VK_REASON_MACHINE, /* decision ERROR: machine ID not in the store */
	VK_REASON_NOMEM,   /* decision ERROR */
} vk_reason;

struct vk_request {
	const char *token; /* not NUL-terminated necessarily */
	size_t token_len;
	const char *user;
	const char *machine_id;
	vk_role required;
	int64_t now;
};

struct vk_result {
	vk_decision decision;
	vk_reason reason;
	char key_id[VK_UUID_STRLEN + 1]; /* "" until the token parsed */
	char key_name[VK_NAME_BYTES + 1];
	vk_role role;                    /* role of the matching grant on allow */
	char via_type[16];               /* matching grant's resource type on allow */
	char via_id[VK_UUID_STRLEN + 1]; /* and its ID */
	char err[VK_ERRLEN];
};

void vk_authorize(sqlite3 *db, const struct vk_request *req, struct vk_result *res);

/*
 * Re-runs every check after the secret (exists, enabled, not expired,
 * user, scope, role) for a key that already authenticated; used by the
 * module's account management.
 */
void vk_authorize_recheck(sqlite3 *db, const char *key_id, const struct vk_request *req,
                          struct vk_result *res);

/* "ok", "malformed", "checksum", "unknown_key", ... */
const char *vk_reason_name(vk_reason r);

#endif
