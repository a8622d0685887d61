/*
 * authz.h - the login decision, shared by pam_viamkey.so and `keyadm check`.
 *
 * vk_authorize() allows only when: the token, with surrounding white space
 * ignored, is well formed with a valid checksum; the key exists; one of
 * its live secrets matches; the key is enabled and not expired; the user
 * is one of its users; and a grant covers the machine (directly, by its
 * location or by its organization) with a role at or above the required
 * one. Every denial names one reason.
 *
 * It parses the token before it opens the store, so a malformed or
 * mistyped token is denied even when the store is unusable. It opens the
 * store itself, reads one consistent snapshot and closes it again; the
 * only write is the throttled last-use record of an allowed login, when
 * asked for. VK_DECISION_ERROR means the store or the machine ID is
 * unusable (not a denial of the credential); res->err then says why. On a
 * replica whose last heartbeat is older than max_staleness, what would be
 * allowed is an ERROR with reason stale, unless the key is break-glass.
 */
#ifndef VK_AUTHZ_H
#define VK_AUTHZ_H

#include <sqlite3.h>
#include <stdint.h>

#include "store.h"
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
	VK_REASON_STORE,        /* decision ERROR: store unreadable or corrupt */
	VK_REASON_MACHINE,      /* decision ERROR: machine ID not in the store */
	VK_REASON_NOMEM,        /* decision ERROR */
	VK_REASON_STALE,        /* decision ERROR: a replica past max_staleness, not break-glass */
	VK_REASON_SECRET_ENDED, /* a session's: the secret it used is no longer live */
} vk_reason;

/* Where the decision reads. */
struct vk_login {
	const char *store_path;
	int busy_timeout_ms;
	int64_t last_used_interval; /* seconds between last-use records; < 0: never record */
	int64_t max_staleness;      /* [sync] max_staleness, seconds; 0: off */
};

struct vk_request {
	const char *token; /* as presented, not NUL-terminated necessarily */
	size_t token_len;
	const char *user;
	const char *machine_id; /* [machine] id or --machine-id; NULL: the store's, if bound here */
	vk_role required;
	int64_t now;
	const char *service; /* for the last-use record; rhost may be NULL */
	const char *rhost;
};

struct vk_result {
	vk_decision decision;
	vk_reason reason;
	char key_id[VK_UUID_STRLEN + 1]; /* "" until the token parsed */
	char key_name[VK_NAME_BYTES + 1];
	vk_role role;                       /* role of the matching grant on allow */
	char via_type[16];                  /* matching grant's resource type on allow */
	char via_id[VK_UUID_STRLEN + 1];    /* and its ID */
	char machine[VK_UUID_STRLEN + 1];   /* the machine decided for, once known */
	char secret[VK_SECRET_TAG_LEN + 1]; /* on allow: the tag of the secret that matched */
	char err[VK_ERRLEN];
	char use_err[VK_ERRLEN]; /* why last use was not recorded (harmless), or "" */
	/* on allow: what vk_authorize_recheck() needs to let this allow stand */
	struct vk_carry {
		int usable;                  /* 0: nothing carried (the user did not fit) */
		struct vk_store_stamp stamp; /* the store's files before the decision read them */
		char user[VK_USER_MAX + 1];
		int machine_configured; /* res->machine came from req->machine_id */
		int64_t expires_at;     /* the key's expiry; 0: never */
	} carry;
};

void vk_authorize(const struct vk_login *lg, const struct vk_request *req, struct vk_result *res);

/*
 * Re-checks `then`, an allow of vk_authorize() or one with just the key ID
 * set, for account management: every check after the secret (exists,
 * enabled, not expired, user, scope, role). The allow stands without the
 * store being opened when vk_store_unchanged() finds the store's files as
 * they were before authentication read them (its own last-use write
 * changes them), for the same user and machine, a required role at most
 * the one granted, the key not expired by req->now, and no max_staleness;
 * otherwise every check reads the store again. req->token is not read.
 */
void vk_authorize_recheck(const struct vk_login *lg, const struct vk_result *then,
                          const struct vk_request *req, struct vk_result *res);

/* A session the module recorded, as its daemon checks it again. */
struct vk_session_ref {
	const char *key_id;
	const char *user;
	const char *machine_id;
	const char *secret; /* the tag of the secret it used; "" or NULL: not checked */
	vk_role required;   /* what its service required */
	int64_t now;
};

/*
 * Could the key open this session now? On db, open, outside a
 * transaction: every check of a re-check that reads the store (exists,
 * enabled, not expired, user, scope, role; a replica's freshness is not
 * one: a stale replica ends nothing), then that the secret it used is
 * still one of the key's live ones (else VK_REASON_SECRET_ENDED).
 */
void vk_authorize_session(sqlite3 *db, const struct vk_session_ref *s, struct vk_result *res);

/* "ok", "malformed", "checksum", "unknown_key", ... */
const char *vk_reason_name(vk_reason r);

#endif
