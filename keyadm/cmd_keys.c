/*
 * cmd_keys.c - the api-key create forms and every "keys" command.
 *
 * Security rules for this file:
 *  1. A token exists only in `token`, sodium_malloc() memory that is wiped
 *     and freed by sodium_free() right after it is printed, once.
 *  2. No output but ka_print_token() ever shows a token, and it is written
 *     out before the change that makes it valid is committed (ka_write).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "duration.h"
#include "keyadm.h"
#include "keys.h"
#include "tree.h"

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
report_token(struct ka_ctx *ctx)
{
	return ka_print_token(ctx, key_id_out, token);
}

/* A change that issues a secret: the token lives in sodium_malloc() memory until printed. */
static int
issue_token(struct ka_ctx *ctx, ka_change_fn change)
{
	int rc;

	if ((token = sodium_malloc(VK_TOKEN_LEN + 1)) == NULL)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	rc = ka_write(ctx, change, report_token);
	sodium_free(token);
	token = NULL;
	if (rc == KA_OK)
		fputs("keyadm: warning: this token is shown only once and cannot be recovered;"
		      " store it now\n",
		      stderr);
	return rc;
}

static vk_rc
do_api_key_create(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	const struct ka_args *a = &ctx->args;
	char default_name[32];
	struct vk_key_spec spec;
	int64_t ttl = 0;

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
	if ((spec.name = a->val[O_NAME]) == NULL) {
		char stamp[VK_RFC3339_LEN + 1];

		vk_time_format(ctx->now, stamp);
		snprintf(default_name, sizeof default_name, "key-%s", stamp);
		spec.name = default_name;
	}
	return vk_key_create(t, &spec, key_id_out, token, err);
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
		ka_usage_error(
		    ctx, "--name must be 1-%d characters with no control or format characters",
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
report_key(struct ka_ctx *ctx)
{
	return ka_print_key(ctx, ctx->args.val[O_KEY_ID]);
}

/* A change to one existing key, reported by showing the key. */
static int
key_command(struct ka_ctx *ctx, ka_change_fn change)
{
	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID))
		return KA_USAGE;
	return ka_write(ctx, change, report_key);
}

static vk_rc
do_grant(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	int r = one_resource(ctx);

	return vk_key_grant(t, ctx->args.val[O_KEY_ID], vk_role_parse(ctx->args.val[O_ROLE]),
	                    resources[r].type, ctx->args.val[resources[r].opt], err);
}

static int
keys_grant(struct ka_ctx *ctx)
{
	if (ka_require(ctx, O_ROLE) || check_role(ctx) || one_resource(ctx) < 0)
		return KA_USAGE;
	return key_command(ctx, do_grant);
}

static vk_rc
do_ungrant(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	int r = one_resource(ctx);

	return vk_key_ungrant(t, ctx->args.val[O_KEY_ID], resources[r].type,
	                      ctx->args.val[resources[r].opt], err);
}

static int
keys_ungrant(struct ka_ctx *ctx)
{
	if (one_resource(ctx) < 0)
		return KA_USAGE;
	return key_command(ctx, do_ungrant);
}

static vk_rc
do_add_user(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	return vk_key_add_user(t, ctx->args.val[O_KEY_ID], ctx->args.users[0], err);
}

static vk_rc
do_remove_user(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	return vk_key_remove_user(t, ctx->args.val[O_KEY_ID], ctx->args.users[0], err);
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
do_rotate(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	int64_t grace = 0;

	memcpy(key_id_out, ctx->args.val[O_KEY_ID], sizeof key_id_out);
	if (ctx->args.val[O_GRACE] != NULL)
		vk_duration_parse(ctx->args.val[O_GRACE], &grace); /* checked by keys_rotate */
	return vk_key_rotate(t, ctx->args.val[O_KEY_ID], grace, token, err);
}

static vk_rc
do_finish(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	return vk_key_finish_rotation(t, ctx->args.val[O_KEY_ID], err);
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
do_clone(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	return vk_key_clone(t, ctx->args.val[O_KEY_ID], ctx->args.val[O_NAME], key_id_out, token,
	                    err);
}

static int
keys_clone(struct ka_ctx *ctx)
{
	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID) || check_name(ctx))
		return KA_USAGE;
	return issue_token(ctx, do_clone);
}

/* The upkeep verbs and the change each makes. */
static const struct {
	const char *verb;
	enum vk_key_change change;
} upkeeps[] = {
    {"rename", VK_KEY_RENAME},
    {"disable", VK_KEY_DISABLE},
    {"enable", VK_KEY_ENABLE},
    {"protect", VK_KEY_PROTECT},
    {"unprotect", VK_KEY_UNPROTECT},
    {"delete", VK_KEY_DELETE},
    {"mark-break-glass", VK_KEY_MARK_BREAK_GLASS},
    {"unmark-break-glass", VK_KEY_UNMARK_BREAK_GLASS},
};

static enum vk_key_change
upkeep_of(const struct ka_ctx *ctx)
{
	for (size_t i = 0; i < sizeof upkeeps / sizeof upkeeps[0]; i++)
		if (strcmp(ctx->cmd->verb, upkeeps[i].verb) == 0)
			return upkeeps[i].change;
	return VK_KEY_RENAME;
}

static vk_rc
do_upkeep(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	return vk_key_change(t, ctx->args.val[O_KEY_ID], upkeep_of(ctx), ctx->args.val[O_NAME],
	                     err);
}

static int
report_deleted(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('id', ?1, 'deleted', json('true'))",
		                     "t", ctx->args.val[O_KEY_ID]);
	printf("Deleted key %s\n", ctx->args.val[O_KEY_ID]);
	return KA_OK;
}

static int
keys_upkeep(struct ka_ctx *ctx)
{
	if (strcmp(ctx->cmd->verb, "rename") == 0 && (ka_require(ctx, O_NAME) || check_name(ctx)))
		return KA_USAGE;
	if (upkeep_of(ctx) != VK_KEY_DELETE)
		return key_command(ctx, do_upkeep);
	if (ka_require(ctx, O_KEY_ID) || ka_id(ctx, O_KEY_ID))
		return KA_USAGE;
	return ka_write(ctx, do_upkeep, report_deleted);
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
	" AND (?6 = 0 OR coalesce(k.last_used_at, k.created_at) <= ?6)"

/* One row of the table, for `headers` below; ?1 now, key row k. */
// clang-format off
#define KEYS_ROW \
	"k.id, k.name, vk_preview(k.id)," \
	" (SELECT group_concat(role || ' ' || resource_type || ' ' || substr(resource_id, 1, 8)," \
	"  ', ') FROM grants WHERE key_id = k.id)," \
	" (SELECT group_concat(user, ',') FROM key_users WHERE key_id = k.id)," \
	" " KA_TIME_SQL("k.created_at") ", coalesce(" KA_TIME_SQL("k.last_used_at") ", 'never')," \
	" " VK_SQL_KEY_STATUS("k", "?1") " || iif(k.break_glass, ', break-glass', '')"
// clang-format on

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
	/*
	 * A listing reads most of the store once: a page cache that holds what
	 * it reads (up to 32 MiB, allocated as used) spares reading pages again.
	 */
	(void)sqlite3_exec(ctx->db, "PRAGMA cache_size = -32768", NULL, NULL, NULL);
	/*
	 * Keys are read in ID order, the order of their users', grants' and
	 * secrets' indexes, so that each page of those is read once, not once
	 * per key; the output puts them in creation order (created_at, id).
	 */
	if (ctx->json)
		return ka_print_json_array(
		    ctx, "SELECT " KA_KEY_JSON ", k.created_at, k.id" KEYS_FILTER " ORDER BY k.id",
		    KEYS_ARGS);
	return ka_print_table_sorted(
	    ctx, headers, "SELECT " KEYS_ROW ", k.created_at, k.id" KEYS_FILTER " ORDER BY k.id",
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
    {"keys", "mark-break-glass", keys_upkeep, OPT(O_KEY_ID), "--key-id ID",
     "Let the key log in on a replica however stale (see [sync] max_staleness)."},
    {"keys", "unmark-break-glass", keys_upkeep, OPT(O_KEY_ID), "--key-id ID",
     "Make the key subject to max_staleness again."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
