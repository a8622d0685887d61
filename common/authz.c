/*
 * authz.c - the login decision.
 *
 * Security rules for this file:
 *  1. This is the only place that decides a login; the module and
 *     `keyadm check` MUST call it rather than repeat any part of it.
 *  2. The token is normalised once (vk_token_trim) and its checksum is
 *     checked before the store is opened.
 *  3. Exactly VK_SECRET_SLOTS verifications run for every parsed token,
 *     whether the key exists or not and however many live secrets it has,
 *     so timing does not reveal which key IDs exist.
 *  4. The decoded token is wiped before returning, on every path.
 *  5. All reads happen in one read transaction (the one in which the open
 *     checked the store's header), so a concurrent keyadm write is seen
 *     entirely or not at all. The one write, last use, comes after the
 *     decision and cannot change it.
 *  6. A store that cannot answer is an ERROR, never a denial or an allow.
 *  7. The store is opened for one decision and closed before returning.
 *  8. A re-check lets an earlier allow stand without reading the store only
 *     when the store's files are as they were before that allow read them
 *     (vk_store_unchanged) and nothing else it decided on differs: user,
 *     machine, a required role above the one granted, the key's expiry
 *     passed, or a replica's freshness to check. Otherwise it reads the
 *     store, as for the first decision.
 */
#include "autoconfig.h"

#include <string.h>

#include "authz.h"
#include "fleet.h"
#include "model.h"
#include "store.h"
#include "verifier.h"

#define VK_SECRET_SLOTS 2
#define VK_XSTR(x)      #x
#define VK_STR(x)       VK_XSTR(x)

static const char *const reason_names[] = {
    [VK_REASON_OK] = "ok",
    [VK_REASON_MALFORMED] = "malformed",
    [VK_REASON_CHECKSUM] = "checksum",
    [VK_REASON_UNKNOWN_KEY] = "unknown_key",
    [VK_REASON_WRONG_SECRET] = "wrong_secret",
    [VK_REASON_DISABLED] = "disabled",
    [VK_REASON_EXPIRED] = "expired",
    [VK_REASON_USER] = "user_not_allowed",
    [VK_REASON_SCOPE] = "scope",
    [VK_REASON_ROLE] = "role",
    [VK_REASON_STORE] = "store_error",
    [VK_REASON_MACHINE] = "unknown_machine",
    [VK_REASON_NOMEM] = "out_of_memory",
    [VK_REASON_STALE] = "stale",
    [VK_REASON_SECRET_ENDED] = "secret_ended",
};

const char *
vk_reason_name(vk_reason r)
{
	if (r < VK_REASON_OK || r > VK_REASON_SECRET_ENDED)
		return "unknown";
	return reason_names[r];
}

/* The machine and the resources that cover it. */
struct scope {
	char machine[VK_UUID_STRLEN + 1];
	char location[VK_UUID_STRLEN + 1];
	char org[VK_UUID_STRLEN + 1];
};

static void
set(struct vk_result *res, vk_decision d, vk_reason r)
{
	res->decision = d;
	res->reason = r;
}

static void
store_failed(sqlite3 *db, struct vk_result *res)
{
	int code = sqlite3_errcode(db);

	vk_seterr(res->err, "store: %s", sqlite3_errmsg(db));
	set(res, VK_DECISION_ERROR, code == SQLITE_NOMEM ? VK_REASON_NOMEM : VK_REASON_STORE);
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, struct vk_result *res)
{
	if (sqlite3_prepare_v2(db, sql, -1, st, NULL) == SQLITE_OK)
		return 0;
	store_failed(db, res);
	return -1;
}

static void
copy_text(char *dst, size_t size, const unsigned char *src)
{
	size_t n = src ? strlen((const char *)src) : 0;

	if (n >= size)
		n = size - 1;
	memcpy(dst, src ? (const char *)src : "", n);
	dst[n] = '\0';
}

/*
 * Resolves the machine's location and organization; ERROR if it is not in
 * the store, or its location is not (a store whose foreign keys broke).
 * The organization comes from a subquery on the machine's row: SQLite
 * prepares that in 58 k instructions, a join of the two tables in 68 k.
 */
static int
load_scope(sqlite3 *db, const char *machine_id, struct scope *sc, struct vk_result *res)
{
	sqlite3_stmt *st = NULL;
	int step, rc = -1;

	if (machine_id == NULL || !vk_uuid_valid(machine_id)) {
		vk_seterr(res->err, "no valid machine ID configured");
		set(res, VK_DECISION_ERROR, VK_REASON_MACHINE);
		return -1;
	}
	if (prepare(db,
	            "SELECT location_id, (SELECT org_id FROM locations l"
	            " WHERE l.id = m.location_id) FROM machines m WHERE id = ?1",
	            &st, res) != 0)
		return -1;
	sqlite3_bind_text(st, 1, machine_id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 1) == SQLITE_NULL)
		step = SQLITE_DONE;
	if (step == SQLITE_ROW) {
		copy_text(sc->machine, sizeof sc->machine, (const unsigned char *)machine_id);
		copy_text(sc->location, sizeof sc->location, sqlite3_column_text(st, 0));
		copy_text(sc->org, sizeof sc->org, sqlite3_column_text(st, 1));
		rc = 0;
	} else if (step == SQLITE_DONE) {
		vk_seterr(res->err, "machine %s is not in the store", machine_id);
		set(res, VK_DECISION_ERROR, VK_REASON_MACHINE);
	} else {
		store_failed(db, res);
	}
	sqlite3_finalize(st);
	return rc;
}

/* How a grant that VK_SQL_GRANT_COVERS selected names the machine. */
static enum vk_coverage
coverage(const char *type)
{
	if (type == NULL)
		return VK_COVERS_NOT;
	if (strcmp(type, "machine") == 0)
		return VK_COVERS_DIRECTLY;
	if (strcmp(type, "location") == 0)
		return VK_COVERS_BY_LOCATION;
	if (strcmp(type, "organization") == 0)
		return VK_COVERS_BY_ORGANIZATION;
	return VK_COVERS_NOT;
}

struct key_state {
	int disabled;
	int break_glass;
	int64_t expires_at;   /* 0: never */
	int64_t last_used_at; /* 0: never; read by vk_authorize() only */
};

/* Every check after the secret: enabled, not expired, user, scope, role. */
static void
check_key(sqlite3 *db, const struct key_state *ks, const struct scope *sc,
          const struct vk_request *req, struct vk_result *res)
{
	sqlite3_stmt *st = NULL;
	vk_role best = VK_ROLE_NONE;
	int step, allowed_user, found = 0, best_rank = 0;

	if (ks->disabled) {
		set(res, VK_DECISION_DENY, VK_REASON_DISABLED);
		return;
	}
	if (ks->expires_at != 0 && ks->expires_at <= req->now) {
		set(res, VK_DECISION_DENY, VK_REASON_EXPIRED);
		return;
	}
	if (prepare(db, "SELECT 1 FROM key_users WHERE key_id = ?1 AND user = ?2", &st, res) != 0)
		return;
	sqlite3_bind_text(st, 1, res->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, req->user ? req->user : "", -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	allowed_user = step == SQLITE_ROW;
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		store_failed(db, res);
		return;
	}
	if (!allowed_user) {
		set(res, VK_DECISION_DENY, VK_REASON_USER);
		return;
	}

	/*
	 * Highest role among the grants covering this machine; the most specific
	 * on a tie. A key has a handful of grants: ranking them here costs less
	 * than compiling a query that ranks them.
	 */
	if (prepare(
	        db,
	        "SELECT g.role, g.resource_type, g.resource_id FROM grants g WHERE g.key_id = ?1"
	        " AND " VK_SQL_GRANT_COVERS("g", "?2", "?3", "?4"),
	        &st, res) != 0)
		return;
	sqlite3_bind_text(st, 1, res->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, sc->machine, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, sc->location, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, sc->org, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *type = (const char *)sqlite3_column_text(st, 1);
		const char *id = (const char *)sqlite3_column_text(st, 2);
		vk_role role = vk_role_parse((const char *)sqlite3_column_text(st, 0));
		int rank = (int)coverage(type);

		if (rank == VK_COVERS_NOT || role == VK_ROLE_NONE || id == NULL)
			continue;
		if (!found || role > best || (role == best && rank > best_rank)) {
			found = 1;
			best = role;
			best_rank = rank;
			copy_text(res->via_type, sizeof res->via_type, (const unsigned char *)type);
			copy_text(res->via_id, sizeof res->via_id, (const unsigned char *)id);
		}
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		store_failed(db, res);
	} else if (!found) {
		set(res, VK_DECISION_DENY, VK_REASON_SCOPE);
	} else if (best < req->required) {
		res->role = best;
		set(res, VK_DECISION_DENY, VK_REASON_ROLE);
	} else {
		res->role = best;
		set(res, VK_DECISION_ALLOW, VK_REASON_OK);
	}
}

/*
 * Reads the key and its live secrets and verifies the token against them.
 * Returns 1 when a secret matched (ks filled), 0 after a denial or error.
 * Every column names its table, so that a column a later schema adds to
 * the other table is never taken for it; a NULL expiry or last use reads
 * as 0 (sqlite3_column_int64), "never".
 */
static int
verify_secret(sqlite3 *db, const struct vk_token *t, const struct vk_request *req,
              struct key_state *ks, struct vk_result *res)
{
	sqlite3_stmt *st = NULL;
	int found = 0, match = 0, slots = 0, step;

	if (prepare(
	        db,
	        "SELECT k.name, k.disabled, k.expires_at, s.alg, s.salt, s.verifier, k.break_glass,"
	        " k.last_used_at FROM keys k LEFT JOIN secrets s ON s.key_id = ?1"
	        " AND " VK_SQL_SECRET_LIVE(
	            "s", "?2") " WHERE k.id = ?1 ORDER BY s.id DESC LIMIT " VK_STR(VK_SECRET_SLOTS),
	        &st, res) != 0)
		return 0;
	sqlite3_bind_text(st, 1, res->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, req->now);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if (!found) {
			found = 1;
			copy_text(res->key_name, sizeof res->key_name, sqlite3_column_text(st, 0));
			ks->disabled = sqlite3_column_int(st, 1) != 0;
			ks->expires_at = sqlite3_column_int64(st, 2);
			ks->break_glass = sqlite3_column_int(st, 6) != 0;
			ks->last_used_at = sqlite3_column_int64(st, 7);
		}
		if (vk_verifier_check(
		        t, (const char *)sqlite3_column_text(st, 3), sqlite3_column_blob(st, 4),
		        (size_t)sqlite3_column_bytes(st, 4), sqlite3_column_blob(st, 5),
		        (size_t)sqlite3_column_bytes(st, 5))) {
			match = 1;
			vk_secret_tag(sqlite3_column_blob(st, 4),
			              (size_t)sqlite3_column_bytes(st, 4), res->secret);
		}
		slots++;
	}
	sqlite3_finalize(st);
	for (; slots < VK_SECRET_SLOTS; slots++)
		(void)vk_verifier_check(t, NULL, NULL, 0, NULL, 0);
	if (step != SQLITE_DONE) {
		store_failed(db, res);
		return 0;
	}
	if (!found)
		set(res, VK_DECISION_DENY, VK_REASON_UNKNOWN_KEY);
	else if (!match)
		set(res, VK_DECISION_DENY, VK_REASON_WRONG_SECRET);
	return found && match;
}

static void
result_init(struct vk_result *res)
{
	memset(res, 0, sizeof *res);
	set(res, VK_DECISION_ERROR, VK_REASON_STORE);
}

/*
 * Opens the store (stamping its files when stamp is not NULL) and finds
 * the machine, in the read transaction the open leaves begun; 0, or -1
 * with res an ERROR.
 */
static int
open_store(const struct vk_login *lg, const struct vk_request *req, sqlite3 **db,
           struct vk_store_stamp *stamp, struct vk_result *res)
{
	vk_rc rc = vk_store_open_stamped(lg->store_path, VK_OPEN_LOGIN, lg->busy_timeout_ms, db,
	                                 stamp, res->err);

	if (rc == VK_OK &&
	    (rc = vk_store_host_machine(*db, req->machine_id, res->machine, res->err)) == VK_OK)
		return 0;
	set(res, VK_DECISION_ERROR,
	    rc == VK_ERR_NOMEM      ? VK_REASON_NOMEM
	    : rc == VK_ERR_NOTFOUND ? VK_REASON_MACHINE
	                            : VK_REASON_STORE);
	return -1;
}

/* Begins a read transaction, unless db is in one (a login's open leaves one begun). */
static int
begin_read(sqlite3 *db, struct vk_result *res)
{
	if (!sqlite3_get_autocommit(db) || sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	store_failed(db, res);
	return -1;
}

static void
end_read(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
}

/*
 * On a replica past max_staleness, turns an allow into an ERROR (stale),
 * unless the key is break-glass: the bus may be withholding a revocation.
 */
static void
check_fresh(sqlite3 *db, const struct vk_login *lg, const struct key_state *ks,
            const struct vk_request *req, struct vk_result *res)
{
	int stale;

	if (res->decision != VK_DECISION_ALLOW || lg->max_staleness <= 0 || ks->break_glass)
		return;
	if (vk_fleet_stale(db, req->now, lg->max_staleness, &stale, res->err) != VK_OK) {
		store_failed(db, res);
	} else if (stale) {
		vk_seterr(res->err,
		          "the replica heard no heartbeat from the authority for over %lld s"
		          " ([sync] max_staleness)",
		          (long long)lg->max_staleness);
		set(res, VK_DECISION_ERROR, VK_REASON_STALE);
	}
}

/* The decision for a token that parsed, on an open store; *ks is the key's, once found. */
static void
decide(sqlite3 *db, const struct vk_login *lg, const struct vk_token *t,
       const struct vk_request *req, struct key_state *ks, struct vk_result *res)
{
	struct scope sc;

	if (begin_read(db, res) != 0)
		return;
	if (load_scope(db, res->machine, &sc, res) == 0 && verify_secret(db, t, req, ks, res)) {
		check_key(db, ks, &sc, req, res);
		check_fresh(db, lg, ks, req, res);
	}
	end_read(db);
}

/* What an allow carries to a re-check; the stamp is already in place. */
static void
carry(const struct key_state *ks, const struct vk_request *req, struct vk_result *res)
{
	struct vk_carry *c = &res->carry;

	c->usable = req->user != NULL && strlen(req->user) < sizeof c->user;
	if (c->usable)
		memcpy(c->user, req->user, strlen(req->user) + 1);
	c->machine_configured = req->machine_id != NULL;
	c->expires_at = ks->expires_at;
}

/* Whether `then`, an allow, stands for req without reading the store (rule 8). */
static int
allow_stands(const struct vk_login *lg, const struct vk_result *then, const struct vk_request *req)
{
	const struct vk_carry *c = &then->carry;
	struct vk_store_stamp now;
	char err[VK_ERRLEN];

	if (then->decision != VK_DECISION_ALLOW || !c->usable || lg->max_staleness > 0 ||
	    req->user == NULL || strcmp(req->user, c->user) != 0 || then->role < req->required ||
	    (c->expires_at != 0 && c->expires_at <= req->now))
		return 0;
	if (req->machine_id != NULL ? strcmp(req->machine_id, then->machine) != 0
	                            : c->machine_configured)
		return 0;
	return vk_store_stamp(lg->store_path, &now, err) == VK_OK &&
	       vk_store_unchanged(&c->stamp, &now);
}

void
vk_authorize(const struct vk_login *lg, const struct vk_request *req, struct vk_result *res)
{
	const char *token = req->token;
	size_t len = req->token_len;
	struct key_state ks = {0, 0, 0, 0};
	sqlite3 *db = NULL;
	struct vk_token t;

	result_init(res);
	memset(&t, 0, sizeof t);
	/* over the hard limit: refused before a byte of it is examined, trimmed or not */
	if (len <= VK_TOKEN_HARD_MAX)
		vk_token_trim(&token, &len);
	switch (vk_token_parse(token, len, &t)) {
	case VK_TOKEN_OK:
		break;
	case VK_TOKEN_CHECKSUM:
		set(res, VK_DECISION_DENY, VK_REASON_CHECKSUM);
		goto out;
	default:
		set(res, VK_DECISION_DENY, VK_REASON_MALFORMED);
		goto out;
	}
	vk_uuid_format(t.key_id, res->key_id);
	if (open_store(lg, req, &db, &res->carry.stamp, res) != 0)
		goto out;
	decide(db, lg, &t, req, &ks, res);
	if (res->decision == VK_DECISION_ALLOW)
		carry(&ks, req, res);
	if (res->decision == VK_DECISION_ALLOW && lg->last_used_interval >= 0 &&
	    vk_store_use_due(ks.last_used_at, req->now, lg->last_used_interval))
		(void)vk_store_note_use(db, res->key_id, res->machine, req->service, req->user,
		                        req->rhost, req->now, lg->last_used_interval, res->use_err);
out:
	vk_token_wipe(&t);
	sqlite3_close(db);
}

/* Every check after the secret, in db's read transaction, for res->key_id on res->machine. */
static void
check_again(sqlite3 *db, const struct vk_login *lg, const struct vk_request *req,
            struct vk_result *res)
{
	struct key_state ks;
	struct scope sc;
	sqlite3_stmt *st = NULL;
	int step;

	if (load_scope(db, res->machine, &sc, res) != 0 ||
	    prepare(db,
	            "SELECT name, disabled, coalesce(expires_at, 0), break_glass FROM keys"
	            " WHERE id = ?1",
	            &st, res) != 0)
		return;
	sqlite3_bind_text(st, 1, res->key_id, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		copy_text(res->key_name, sizeof res->key_name, sqlite3_column_text(st, 0));
		ks.disabled = sqlite3_column_int(st, 1) != 0;
		ks.expires_at = sqlite3_column_int64(st, 2);
		ks.break_glass = sqlite3_column_int(st, 3) != 0;
	}
	sqlite3_finalize(st);
	if (step == SQLITE_ROW) {
		check_key(db, &ks, &sc, req, res);
		check_fresh(db, lg, &ks, req, res);
	} else if (step == SQLITE_DONE)
		set(res, VK_DECISION_DENY, VK_REASON_UNKNOWN_KEY);
	else
		store_failed(db, res);
}

void
vk_authorize_recheck(const struct vk_login *lg, const struct vk_result *then,
                     const struct vk_request *req, struct vk_result *res)
{
	sqlite3 *db = NULL;

	if (allow_stands(lg, then, req)) {
		*res = *then;
		res->err[0] = res->use_err[0] = '\0';
		return;
	}
	result_init(res);
	copy_text(res->key_id, sizeof res->key_id, (const unsigned char *)then->key_id);
	if (open_store(lg, req, &db, NULL, res) == 0 && begin_read(db, res) == 0)
		check_again(db, lg, req, res);
	if (db != NULL)
		end_read(db);
	sqlite3_close(db);
}

/* Whether tag names one of the key's live secrets: 1, 0, or -1 with res an ERROR. */
static int
secret_live(sqlite3 *db, const char *tag, int64_t now, struct vk_result *res)
{
	char have[VK_SECRET_TAG_LEN + 1];
	sqlite3_stmt *st = NULL;
	int step, found = 0;

	if (prepare(db,
	            "SELECT s.salt FROM secrets s WHERE s.key_id = ?1 AND " VK_SQL_SECRET_LIVE(
	                "s", "?2"),
	            &st, res) != 0)
		return -1;
	sqlite3_bind_text(st, 1, res->key_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		vk_secret_tag(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0),
		              have);
		found |= strcmp(have, tag) == 0;
	}
	sqlite3_finalize(st);
	if (step != SQLITE_DONE) {
		store_failed(db, res);
		return -1;
	}
	return found;
}

void
vk_authorize_session(sqlite3 *db, const struct vk_session_ref *s, struct vk_result *res)
{
	const struct vk_login lg = {NULL, 0, -1, 0};
	const struct vk_request req = {
	    .user = s->user, .machine_id = s->machine_id, .required = s->required, .now = s->now};

	result_init(res);
	copy_text(res->key_id, sizeof res->key_id, (const unsigned char *)s->key_id);
	copy_text(res->machine, sizeof res->machine, (const unsigned char *)s->machine_id);
	if (begin_read(db, res) != 0)
		return;
	check_again(db, &lg, &req, res);
	if (res->decision == VK_DECISION_ALLOW && s->secret != NULL && s->secret[0] != '\0') {
		int live = secret_live(db, s->secret, s->now, res);

		if (live == 0)
			set(res, VK_DECISION_DENY, VK_REASON_SECRET_ENDED);
		else if (live == 1)
			copy_text(res->secret, sizeof res->secret,
			          (const unsigned char *)s->secret);
	}
	end_read(db);
}
