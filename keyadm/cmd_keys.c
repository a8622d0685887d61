/*
 * cmd_keys.c - the api-key create forms and every "keys" command.
 *
 * Security rules for this file:
 *  1. A token exists only in `token`, sodium_malloc() memory that is wiped
 *     and freed by sodium_free() right after it is printed, once.
 *  2. No output but ka_print_token() ever shows a token.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "keyadm.h"
#include "keys.h"

static char key_id_out[VK_UUID_STRLEN + 1];
static char *token;

/* The key commands' shared resource options, in grant order. */
static const struct {
	enum ka_opt opt;
	const char *type;
	const char *noun;
} resources[] = {
    {O_ORG_ID, "organization", "organizations"},
    {O_LOCATION_ID, "location", "locations"},
    {O_MACHINE_ID, "machine", "machines"},
};

static int
issue_token(struct ka_ctx *ctx, vk_rc (*fn)(struct ka_ctx *, char *))
{
	int rc;

	if ((token = sodium_malloc(VK_TOKEN_LEN + 1)) == NULL)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	if ((rc = ka_write(ctx, fn)) == KA_OK)
		rc = ka_print_token(ctx, key_id_out, token);
	sodium_free(token);
	token = NULL;
	return rc;
}

static vk_rc
do_api_key_create(struct ka_ctx *ctx, char *err)
{
	const struct ka_args *a = &ctx->args;
	char default_name[32];
	struct vk_key_spec spec;
	int64_t ttl = 0;
	vk_rc rc;

	memset(&spec, 0, sizeof spec);
	for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++) {
		if (strcmp(ctx->cmd->noun, resources[i].noun) == 0) {
			spec.resource_type = resources[i].type;
			spec.resource_id = a->val[resources[i].opt];
		}
	}
	if (a->val[O_EXPIRES_IN] != NULL) {
		vk_duration_parse(a->val[O_EXPIRES_IN], &ttl); /* checked by api_key_create */
		spec.expires_at = ctx->now + ttl;
	}
	spec.role = a->val[O_ROLE] ? vk_role_parse(a->val[O_ROLE]) : VK_ROLE_OWNER;
	spec.users = a->users;
	spec.nusers = a->nusers;
	spec.protected_key = a->val[O_PROTECTED] != NULL;
	spec.created_by = ctx->actor;
	if ((spec.name = a->val[O_NAME]) == NULL) {
		char stamp[VK_RFC3339_LEN + 1];

		vk_time_format(ctx->now, stamp);
		snprintf(default_name, sizeof default_name, "key-%s", stamp);
		spec.name = default_name;
	}
	if ((rc = vk_key_create(ctx->db, &spec, ctx->now, key_id_out, token, err)) != VK_OK)
		return rc;
	return ka_event(ctx, "key.create", key_id_out, err, "\"%s\": %s on %s %s%s", spec.name,
	                vk_role_name(spec.role), spec.resource_type, spec.resource_id,
	                spec.protected_key ? ", protected" : "");
}

static int
check_role(struct ka_ctx *ctx)
{
	const char *r = ctx->args.val[O_ROLE];

	if (r != NULL && vk_role_parse(r) == VK_ROLE_NONE) {
		ka_usage_error(ctx, "--role must be owner, operator or viewer, not \"%s\"", r);
		return -1;
	}
	return 0;
}

static int
check_name(struct ka_ctx *ctx)
{
	const char *n = ctx->args.val[O_NAME];

	if (n != NULL && !vk_name_valid(n)) {
		ka_usage_error(ctx, "--name must be 1-%d characters with no control characters",
		               VK_NAME_MAX);
		return -1;
	}
	return 0;
}

static int
check_users(struct ka_ctx *ctx)
{
	for (size_t i = 0; i < ctx->args.nusers; i++) {
		if (!vk_user_valid(ctx->args.users[i])) {
			ka_usage_error(ctx, "--user \"%s\" is not a valid user name",
			               ctx->args.users[i]);
			return -1;
		}
	}
	return 0;
}

static int
api_key_create(struct ka_ctx *ctx)
{
	int64_t ttl;

	for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++)
		if (strcmp(ctx->cmd->noun, resources[i].noun) == 0 &&
		    (ka_require(ctx, resources[i].opt) || ka_id(ctx, resources[i].opt)))
			return KA_USAGE;
	if (ka_require(ctx, O_USER) || check_users(ctx) || check_role(ctx) || check_name(ctx) ||
	    ka_duration(ctx, O_EXPIRES_IN, &ttl))
		return KA_USAGE;
	return issue_token(ctx, do_api_key_create);
}

/* The one resource option given to grant or ungrant; -1 after a usage error. */
static int
one_resource(struct ka_ctx *ctx)
{
	int found = -1;

	for (int i = 0; i < (int)(sizeof resources / sizeof resources[0]); i++) {
		if (ctx->args.val[resources[i].opt] == NULL)
			continue;
		if (found >= 0) {
			ka_usage_error(ctx, "give one of --org-id, --location-id and --machine-id");
			return -1;
		}
		found = i;
	}
	if (found < 0)
		ka_usage_error(ctx, "one of --org-id, --location-id or --machine-id is required");
	else if (ka_id(ctx, resources[found].opt))
		return -1;
	return found;
}

static int
key_command(struct ka_ctx *ctx, vk_rc (*fn)(struct ka_ctx *, char *))
{
	int rc;

	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID))
		return KA_USAGE;
	if ((rc = ka_write(ctx, fn)) != KA_OK)
		return rc;
	return ka_print_key(ctx, ctx->args.val[O_KEY_ID]);
}

static vk_rc
do_grant(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID], *role = ctx->args.val[O_ROLE];
	int r = one_resource(ctx);
	const char *type = resources[r].type, *rid = ctx->args.val[resources[r].opt];
	vk_rc rc;

	if ((rc = vk_key_exists(ctx->db, key, err)) != VK_OK ||
	    (rc = vk_resource_exists(ctx->db, type, rid, err)) != VK_OK ||
	    (rc = vk_store_exec(ctx->db, "cannot grant", err, NULL,
	                        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                        " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key_id, resource_type,"
	                        " resource_id) DO UPDATE SET role = excluded.role",
	                        "tttt", key, role, type, rid)) != VK_OK)
		return rc;
	return ka_event(ctx, "key.grant", key, err, "%s on %s %s", role, type, rid);
}

static int
keys_grant(struct ka_ctx *ctx)
{
	if (ka_require(ctx, O_ROLE) || check_role(ctx) || one_resource(ctx) < 0)
		return KA_USAGE;
	return key_command(ctx, do_grant);
}

/* After a removal: a key keeps at least one grant and one user (delete the key instead). */
static vk_rc
refuse_last(struct ka_ctx *ctx, const char *count_sql, const char *what, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID];
	int64_t left;
	vk_rc rc;

	if ((rc = vk_store_query_int(ctx->db, "cannot count", err, &left, count_sql, "t", key)) !=
	    VK_OK)
		return rc;
	if (left > 0)
		return VK_OK;
	vk_seterr(err, "that is key %s's only %s; add another first, or delete the key", key, what);
	return VK_ERR_CONFLICT;
}

static vk_rc
do_ungrant(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID];
	int r = one_resource(ctx), changed;
	const char *type = resources[r].type, *rid = ctx->args.val[resources[r].opt];
	vk_rc rc;

	if ((rc = vk_key_exists(ctx->db, key, err)) != VK_OK ||
	    (rc = vk_store_exec(ctx->db, "cannot remove the grant", err, &changed,
	                        "DELETE FROM grants WHERE key_id = ?1 AND resource_type = ?2"
	                        " AND resource_id = ?3",
	                        "ttt", key, type, rid)) != VK_OK)
		return rc;
	if (changed == 0) {
		vk_seterr(err, "key %s has no grant on %s %s", key, type, rid);
		return VK_ERR_NOTFOUND;
	}
	if ((rc = refuse_last(ctx, "SELECT count(*) FROM grants WHERE key_id = ?1", "grant",
	                      err)) != VK_OK)
		return rc;
	return ka_event(ctx, "key.ungrant", key, err, "%s %s", type, rid);
}

static int
keys_ungrant(struct ka_ctx *ctx)
{
	if (one_resource(ctx) < 0)
		return KA_USAGE;
	return key_command(ctx, do_ungrant);
}

static vk_rc
do_add_user(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID], *user = ctx->args.users[0];
	int changed;
	vk_rc rc;

	if ((rc = vk_key_exists(ctx->db, key, err)) != VK_OK ||
	    (rc = vk_store_exec(ctx->db, "cannot add the user", err, &changed,
	                        "INSERT OR IGNORE INTO key_users (key_id, user) VALUES (?1, ?2)",
	                        "tt", key, user)) != VK_OK)
		return rc;
	/* adding a user who is already there changes nothing and records nothing */
	return changed ? ka_event(ctx, "key.add-user", key, err, "%s", user) : VK_OK;
}

static vk_rc
do_remove_user(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID], *user = ctx->args.users[0];
	int changed;
	vk_rc rc;

	if ((rc = vk_key_exists(ctx->db, key, err)) != VK_OK ||
	    (rc = vk_store_exec(ctx->db, "cannot remove the user", err, &changed,
	                        "DELETE FROM key_users WHERE key_id = ?1 AND user = ?2", "tt", key,
	                        user)) != VK_OK)
		return rc;
	if (changed == 0) {
		vk_seterr(err, "user %s is not one of key %s's users", user, key);
		return VK_ERR_NOTFOUND;
	}
	if ((rc = refuse_last(ctx, "SELECT count(*) FROM key_users WHERE key_id = ?1", "user",
	                      err)) != VK_OK)
		return rc;
	return ka_event(ctx, "key.remove-user", key, err, "%s", user);
}

static int
keys_user(struct ka_ctx *ctx)
{
	if (ka_require(ctx, O_USER) || check_users(ctx))
		return KA_USAGE;
	if (ctx->args.nusers != 1)
		return ka_usage_error(ctx, "give exactly one --user");
	return key_command(ctx,
	                   strcmp(ctx->cmd->verb, "add-user") == 0 ? do_add_user : do_remove_user);
}

static vk_rc
do_rotate(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID];
	int64_t grace = 0;
	vk_rc rc;

	memcpy(key_id_out, key, sizeof key_id_out);
	if (ctx->args.val[O_GRACE] != NULL)
		vk_duration_parse(ctx->args.val[O_GRACE], &grace); /* checked by keys_rotate */
	if ((rc = vk_key_rotate(ctx->db, key, grace, ctx->now, token, err)) != VK_OK)
		return rc;
	if (grace == 0)
		return ka_event(ctx, "key.rotate", key, err, "old secret revoked at once");
	return ka_event(ctx, "key.rotate", key, err, "old secret valid for %s more",
	                ctx->args.val[O_GRACE]);
}

static vk_rc
do_finish(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID];
	vk_rc rc;

	if ((rc = vk_key_finish_rotation(ctx->db, key, ctx->now, err)) != VK_OK)
		return rc;
	return ka_event(ctx, "key.rotate-finish", key, err, "old secret revoked");
}

static int
keys_rotate(struct ka_ctx *ctx)
{
	int64_t grace;

	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID) || ka_duration(ctx, O_GRACE, &grace))
		return KA_USAGE;
	if (ctx->args.val[O_FINISH] != NULL) {
		if (ctx->args.val[O_GRACE] != NULL)
			return ka_usage_error(ctx, "give --grace or --finish, not both");
		return key_command(ctx, do_finish);
	}
	return issue_token(ctx, do_rotate);
}

static vk_rc
do_clone(struct ka_ctx *ctx, char *err)
{
	const char *key = ctx->args.val[O_KEY_ID];
	vk_rc rc;

	if ((rc = vk_key_clone(ctx->db, key, ctx->args.val[O_NAME], ctx->actor, ctx->now,
	                       key_id_out, token, err)) != VK_OK)
		return rc;
	return ka_event(ctx, "key.clone", key_id_out, err, "cloned from %s", key);
}

static int
keys_clone(struct ka_ctx *ctx)
{
	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID) || check_name(ctx))
		return KA_USAGE;
	return issue_token(ctx, do_clone);
}

/* The upkeep verbs: one UPDATE or DELETE each. */
static const struct upkeep {
	const char *verb;
	const char *sql; /* ?1 key ID, ?2 name */
	int refuse_protected;
} upkeeps[] = {
    {"rename", "UPDATE keys SET name = ?2 WHERE id = ?1", 0},
    {"disable", "UPDATE keys SET disabled = 1 WHERE id = ?1", 1},
    {"enable", "UPDATE keys SET disabled = 0 WHERE id = ?1", 0},
    {"protect", "UPDATE keys SET protected = 1 WHERE id = ?1", 0},
    {"unprotect", "UPDATE keys SET protected = 0 WHERE id = ?1", 0},
    {"delete", "DELETE FROM keys WHERE id = ?1", 1},
};

static const struct upkeep *
upkeep_of(const struct ka_ctx *ctx)
{
	for (size_t i = 0; i < sizeof upkeeps / sizeof upkeeps[0]; i++)
		if (strcmp(ctx->cmd->verb, upkeeps[i].verb) == 0)
			return &upkeeps[i];
	return &upkeeps[0];
}

static vk_rc
do_upkeep(struct ka_ctx *ctx, char *err)
{
	const struct upkeep *u = upkeep_of(ctx);
	const char *key = ctx->args.val[O_KEY_ID], *name = ctx->args.val[O_NAME];
	char action[32];
	int64_t protected_key;
	vk_rc rc;

	if ((rc = vk_key_exists(ctx->db, key, err)) != VK_OK ||
	    (rc = vk_store_query_int(ctx->db, "cannot read the key", err, &protected_key,
	                             "SELECT protected FROM keys WHERE id = ?1", "t", key)) !=
	        VK_OK)
		return rc;
	if (u->refuse_protected && protected_key) {
		vk_seterr(err, "key %s is protected; run keyadm keys unprotect --key-id %s first",
		          key, key);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_exec(ctx->db, "cannot change the key", err, NULL, u->sql, "tt", key,
	                        name)) != VK_OK)
		return rc;
	snprintf(action, sizeof action, "key.%s", u->verb);
	return ka_event(ctx, action, key, err, "%s%s%s", name ? "to \"" : "", name ? name : "",
	                name ? "\"" : "");
}

static int
keys_upkeep(struct ka_ctx *ctx)
{
	int rc;

	if (strcmp(ctx->cmd->verb, "rename") == 0 && (ka_require(ctx, O_NAME) || check_name(ctx)))
		return KA_USAGE;
	if (strcmp(ctx->cmd->verb, "delete") != 0)
		return key_command(ctx, do_upkeep);
	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID))
		return KA_USAGE;
	if ((rc = ka_write(ctx, do_upkeep)) != KA_OK)
		return rc;
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('id', ?1, 'deleted', json('true'))",
		                     "t", ctx->args.val[O_KEY_ID]);
	printf("Deleted key %s\n", ctx->args.val[O_KEY_ID]);
	return KA_OK;
}

static int
keys_show(struct ka_ctx *ctx)
{
	char err[VK_ERRLEN];
	vk_rc vrc;
	int rc;

	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID))
		return KA_USAGE;
	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
	if ((vrc = vk_key_exists(ctx->db, ctx->args.val[O_KEY_ID], err)) != VK_OK)
		return ka_fail(vrc, err);
	return ka_print_key(ctx, ctx->args.val[O_KEY_ID]);
}

/*
 * ?1 now, ?2 org ID, ?3 search text, ?4 token prefix "vk_<key part>",
 * ?5 expiring-by time, ?6 unused-since time (0: no such filter).
 */
#define KEYS_FILTER                                                                                \
	" FROM keys k WHERE"                                                                       \
	" (?2 IS NULL OR EXISTS (SELECT 1 FROM grants g WHERE g.key_id = k.id AND ("               \
	"  (g.resource_type = 'organization' AND g.resource_id = ?2) OR"                           \
	"  (g.resource_type = 'location' AND g.resource_id IN"                                     \
	"   (SELECT id FROM locations WHERE org_id = ?2)) OR"                                      \
	"  (g.resource_type = 'machine' AND g.resource_id IN (SELECT m.id FROM machines m"         \
	"   JOIN locations l ON l.id = m.location_id WHERE l.org_id = ?2)))))"                     \
	" AND (?3 IS NULL OR instr(lower(k.name), lower(?3)) > 0 OR instr(k.id, lower(?3)) > 0"    \
	"  OR (?4 IS NOT NULL AND substr(vk_preview(k.id), 1, length(?4)) = ?4))"                  \
	" AND (?5 = 0 OR (k.expires_at > ?1 AND k.expires_at <= ?5))"                              \
	" AND (?6 = 0 OR coalesce(k.last_used_at, k.created_at) <= ?6)"                            \
	" ORDER BY k.created_at, k.id"

static int
keys_list(struct ka_ctx *ctx)
{
	static const char *const headers[] = {"ID",      "NAME",      "PREVIEW", "GRANTS", "USERS",
	                                      "CREATED", "LAST USED", "STATUS",  NULL};
	const struct ka_args *a = &ctx->args;
	const char *org = a->val[O_ORG_ID], *search = a->val[O_SEARCH];
	char prefix[3 + VK_KEY_PART_LEN + 1] = "";
	char err[VK_ERRLEN];
	int64_t expiring, unused;
	vk_rc vrc;
	int rc;

	if (ka_id(ctx, O_ORG_ID) || ka_duration(ctx, O_EXPIRING, &expiring) ||
	    ka_duration(ctx, O_UNUSED_SINCE, &unused))
		return KA_USAGE;
	/* a whole or partial token matches by its key-ID part, never by its secret */
	if (search != NULL && strncmp(search, "vk_", 3) == 0)
		snprintf(prefix, sizeof prefix, "%.*s", (int)strcspn(search + 3, "_") + 3, search);
	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
	if (org != NULL && (vrc = vk_resource_exists(ctx->db, "organization", org, err)) != VK_OK)
		return ka_fail(vrc, err);
#define KEYS_ARGS                                                                                  \
	"itttii", ctx->now, org, search, prefix[0] ? prefix : NULL,                                \
	    a->val[O_EXPIRING] ? ctx->now + expiring : (int64_t)0,                                 \
	    a->val[O_UNUSED_SINCE] ? ctx->now - unused : (int64_t)0
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_group_array(json(o)) FROM (SELECT " KA_KEY_JSON
		                     " AS o" KEYS_FILTER ")",
		                     KEYS_ARGS);
	return ka_print_table(
	    ctx, headers,
	    "SELECT k.id, k.name, vk_preview(k.id),"
	    " (SELECT group_concat(role || ' ' || resource_type || ' ' || substr(resource_id, 1, "
	    "8),"
	    "  ', ') FROM grants WHERE key_id = k.id),"
	    " (SELECT group_concat(user, ',') FROM key_users WHERE key_id = k.id),"
	    " " KA_TIME_SQL(
	        "k.created_at") ","
	                        " coalesce(" KA_TIME_SQL(
	                            "k.last_used_at") ", 'never'), " KA_STATUS_SQL KEYS_FILTER,
	    KEYS_ARGS);
#undef KEYS_ARGS
}

#define KEY_CREATE_OPTS                                                                            \
	(OPT(O_USER) | OPT(O_NAME) | OPT(O_ROLE) | OPT(O_EXPIRES_IN) | OPT(O_PROTECTED))
#define KEY_CREATE_USAGE                                                                           \
	"--user U [--user U2 ...] [--name N] [--role owner|operator|viewer] [--expires-in DUR]"    \
	" [--protected]"
#define RESOURCE_OPTS (OPT(O_ORG_ID) | OPT(O_LOCATION_ID) | OPT(O_MACHINE_ID))

const struct ka_command ka_key_commands[] = {
    {"organizations", "api-key create", api_key_create, OPT(O_ORG_ID) | KEY_CREATE_OPTS,
     "--org-id ID " KEY_CREATE_USAGE, "Create a key with a grant on an organization."},
    {"locations", "api-key create", api_key_create, OPT(O_LOCATION_ID) | KEY_CREATE_OPTS,
     "--location-id ID " KEY_CREATE_USAGE, "Create a key with a grant on a location."},
    {"machines", "api-key create", api_key_create, OPT(O_MACHINE_ID) | KEY_CREATE_OPTS,
     "--machine-id ID " KEY_CREATE_USAGE, "Create a key with a grant on a machine."},
    {"keys", "list", keys_list,
     OPT(O_ORG_ID) | OPT(O_SEARCH) | OPT(O_EXPIRING) | OPT(O_UNUSED_SINCE),
     "[--org-id ID] [--search TEXT] [--expiring DUR] [--unused-since DUR]",
     "List keys, with filters."},
    {"keys", "show", keys_show, OPT(O_KEY_ID), "--key-id ID",
     "Show everything about a key but its secrets."},
    {"keys", "grant", keys_grant, OPT(O_KEY_ID) | OPT(O_ROLE) | RESOURCE_OPTS,
     "--key-id ID --role R (--org-id | --location-id | --machine-id) RID",
     "Grant a role on a resource, or change the role already granted there."},
    {"keys", "ungrant", keys_ungrant, OPT(O_KEY_ID) | RESOURCE_OPTS,
     "--key-id ID (--org-id | --location-id | --machine-id) RID", "Remove a grant."},
    {"keys", "add-user", keys_user, OPT(O_KEY_ID) | OPT(O_USER), "--key-id ID --user U",
     "Let the key log in as a Unix user."},
    {"keys", "remove-user", keys_user, OPT(O_KEY_ID) | OPT(O_USER), "--key-id ID --user U",
     "Stop the key logging in as a Unix user."},
    {"keys", "rotate", keys_rotate, OPT(O_KEY_ID) | OPT(O_GRACE) | OPT(O_FINISH),
     "--key-id ID [--grace DUR | --finish]",
     "Issue a new secret; with --grace keep the old one valid that long; --finish ends"
     " the window."},
    {"keys", "clone", keys_clone, OPT(O_KEY_ID) | OPT(O_NAME), "--key-id ID [--name N]",
     "Create a new key with the same grants and users."},
    {"keys", "rename", keys_upkeep, OPT(O_KEY_ID) | OPT(O_NAME), "--key-id ID --name N",
     "Rename a key."},
    {"keys", "disable", keys_upkeep, OPT(O_KEY_ID), "--key-id ID",
     "Disable a key (refused when protected)."},
    {"keys", "enable", keys_upkeep, OPT(O_KEY_ID), "--key-id ID", "Enable a key."},
    {"keys", "protect", keys_upkeep, OPT(O_KEY_ID), "--key-id ID",
     "Protect a key from delete and disable."},
    {"keys", "unprotect", keys_upkeep, OPT(O_KEY_ID), "--key-id ID", "Remove the protection."},
    {"keys", "delete", keys_upkeep, OPT(O_KEY_ID), "--key-id ID",
     "Delete a key (refused when protected)."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
