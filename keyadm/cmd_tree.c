/*
 * cmd_tree.c - init, and the organization > location > machine tree.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "identity.h"
#include "keyadm.h"
#include "token.h"
#include "tree.h"

#define ORG_JSON "json_object('id', id, 'name', name, 'created_at', " KA_TIME_SQL("created_at") ")"
#define LOC_JSON                                                                                   \
	"json_object('id', id, 'org_id', org_id, 'name', name, 'created_at', " KA_TIME_SQL(        \
	    "created_at") ")"
#define MACHINE_JSON                                                                               \
	"json_object('id', m.id, 'location_id', m.location_id, 'org_id', l.org_id,"                \
	" 'name', m.name, 'created_at', " KA_TIME_SQL("m.created_at") ")"

/* What keyadm says about organizations, locations and machines. */
static const struct kind {
	const char *noun;  /* command noun */
	enum vk_kind kind; /* in common/tree.h */
	enum ka_opt id_opt;
	enum ka_opt parent_opt; /* O_COUNT: none */
	const char *object_sql; /* one JSON object, ?1 id */
} kinds[] = {
    {"organizations", VK_KIND_ORGANIZATION, O_ORG_ID, O_COUNT,
     "SELECT " ORG_JSON " FROM organizations WHERE id = ?1"},
    {"locations", VK_KIND_LOCATION, O_LOCATION_ID, O_ORG_ID,
     "SELECT " LOC_JSON " FROM locations WHERE id = ?1"},
    {"machines", VK_KIND_MACHINE, O_MACHINE_ID, O_LOCATION_ID,
     "SELECT " MACHINE_JSON " FROM machines m JOIN locations l ON l.id = m.location_id"
     " WHERE m.id = ?1"},
};

static const struct kind *
kind_of(const struct ka_ctx *ctx)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(ctx->cmd->noun, kinds[i].noun) == 0)
			return &kinds[i];
	return &kinds[0];
}

static int
check_name(struct ka_ctx *ctx, const char *name, const char *opt)
{
	if (!vk_name_valid(name)) {
		ka_usage_error(ctx,
		               "--%s must be 1-%d characters with no control or format characters",
		               opt, VK_NAME_MAX);
		return -1;
	}
	return 0;
}

static char made_id[VK_UUID_STRLEN + 1];
static const char *reported_verb;

static vk_rc
do_create(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	const struct kind *k = kind_of(ctx);

	reported_verb = "Created";
	return vk_tree_create(t, k->kind, ctx->args.val[O_NAME],
	                      k->parent_opt == O_COUNT ? NULL : ctx->args.val[k->parent_opt],
	                      made_id, err);
}

/* "Created location <ID>", or the object as JSON. */
static int
report_object(struct ka_ctx *ctx)
{
	const struct kind *k = kind_of(ctx);

	if (ctx->json)
		return ka_print_json(ctx, k->object_sql, "t", made_id);
	printf("%s %s %s\n", reported_verb, vk_kind_name(k->kind), made_id);
	return KA_OK;
}

static int
tree_create(struct ka_ctx *ctx)
{
	const struct kind *k = kind_of(ctx);

	if (ka_require(ctx, O_NAME) || check_name(ctx, ctx->args.val[O_NAME], "name") ||
	    (k->parent_opt != O_COUNT &&
	     (ka_require(ctx, k->parent_opt) || ka_id(ctx, k->parent_opt))))
		return KA_USAGE;
	return ka_write(ctx, do_create, report_object);
}

static vk_rc
do_rename(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	const struct kind *k = kind_of(ctx);

	reported_verb = "Renamed";
	snprintf(made_id, sizeof made_id, "%s", ctx->args.val[k->id_opt]);
	return vk_tree_rename(t, k->kind, made_id, ctx->args.val[O_NAME], err);
}

/* machines move: the bus keys, when the machine has a bus identity to issue again */
static struct vk_bus_keys *move_keys;
static char move_user[VK_NKEY_PUBLIC_LEN + 1];

static vk_rc
do_move(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	vk_rc rc;

	reported_verb = "Moved";
	snprintf(made_id, sizeof made_id, "%s", ctx->args.val[O_MACHINE_ID]);
	if ((rc = vk_tree_move(t, made_id, ctx->args.val[O_LOCATION_ID], err)) != VK_OK ||
	    move_keys == NULL)
		return rc;
	return vk_identity_issue(t, move_keys, ctx->cfg.sync.bucket, made_id, move_user, NULL, err);
}

static int
machines_move(struct ka_ctx *ctx)
{
	sqlite3_stmt *st;
	char err[VK_ERRLEN];
	int status;
	vk_rc rc;

	if (ka_require(ctx, O_MACHINE_ID) || ka_id(ctx, O_MACHINE_ID) ||
	    ka_require(ctx, O_LOCATION_ID) || ka_id(ctx, O_LOCATION_ID))
		return KA_USAGE;
	if ((status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	move_user[0] = '\0';
	move_keys = NULL;
	if ((rc = vk_store_prepare(ctx->db, "cannot read the machine", err, &st,
	                           "SELECT user_key FROM machine_identities WHERE machine_id = ?1",
	                           "t", ctx->args.val[O_MACHINE_ID])) != VK_OK)
		return ka_fail(rc, err);
	if (sqlite3_step(st) == SQLITE_ROW)
		snprintf(move_user, sizeof move_user, "%s",
		         (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	/* a machine that joined: its JWT names its scopes, so it is issued again */
	if (move_user[0] != '\0' && (move_keys = ka_bus_keys_load(ctx)) == NULL)
		return KA_FAIL;
	status = ka_write(ctx, do_move, report_object);
	if (move_keys != NULL)
		sodium_free(move_keys);
	move_keys = NULL;
	return status;
}

static int
tree_rename(struct ka_ctx *ctx)
{
	const struct kind *k = kind_of(ctx);

	if (ka_require(ctx, k->id_opt) || ka_id(ctx, k->id_opt) || ka_require(ctx, O_NAME) ||
	    check_name(ctx, ctx->args.val[O_NAME], "name"))
		return KA_USAGE;
	return ka_write(ctx, do_rename, report_object);
}

static vk_rc
do_delete(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	const struct kind *k = kind_of(ctx);

	return vk_tree_delete(t, k->kind, ctx->args.val[k->id_opt], ctx->cfg.machine_id, err);
}

static int
report_deleted(struct ka_ctx *ctx)
{
	const struct kind *k = kind_of(ctx);
	const char *id = ctx->args.val[k->id_opt];

	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('id', ?1, 'deleted', json('true'))",
		                     "t", id);
	printf("Deleted %s %s\n", vk_kind_name(k->kind), id);
	return KA_OK;
}

static int
tree_delete(struct ka_ctx *ctx)
{
	const struct kind *k = kind_of(ctx);

	if (ka_require(ctx, k->id_opt) || ka_id(ctx, k->id_opt))
		return KA_USAGE;
	return ka_write(ctx, do_delete, report_deleted);
}

static const char *const org_headers[] = {"ID", "NAME", "CREATED", NULL};
static const char *const loc_headers[] = {"ID", "ORGANIZATION", "NAME", "CREATED", NULL};
static const char *const machine_headers[] = {"ID", "LOCATION", "NAME", "CREATED", NULL};

static int
organizations_list(struct ka_ctx *ctx)
{
	int rc;

	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_group_array(json(o)) FROM (SELECT " ORG_JSON
		                     " AS o FROM organizations ORDER BY created_at, id)",
		                     "");
	return ka_print_table(
	    ctx, org_headers,
	    "SELECT id, name, " KA_TIME_SQL("created_at") " FROM organizations"
	                                                  " ORDER BY created_at, id",
	    "");
}

static int
locations_list(struct ka_ctx *ctx)
{
	const char *org = ctx->args.val[O_ORG_ID];
	char err[VK_ERRLEN];
	vk_rc vrc;
	int rc;

	if (ka_id(ctx, O_ORG_ID))
		return KA_USAGE;
	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
	if (org != NULL && (vrc = vk_resource_exists(ctx->db, "organization", org, err)) != VK_OK)
		return ka_fail(vrc, err);
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_group_array(json(o)) FROM (SELECT " LOC_JSON
		                     " AS o FROM locations WHERE ?1 IS NULL OR org_id = ?1"
		                     " ORDER BY created_at, id)",
		                     "t", org);
	return ka_print_table(
	    ctx, loc_headers,
	    "SELECT id, org_id, name, " KA_TIME_SQL(
	        "created_at") " FROM locations"
	                      " WHERE ?1 IS NULL OR org_id = ?1 ORDER BY created_at, id",
	    "t", org);
}

/* ?1 organization, ?2 location, ?3 a machine whose location to show */
#define MACHINES_FILTER                                                                            \
	" FROM machines m JOIN locations l ON l.id = m.location_id"                                \
	" WHERE (?1 IS NULL OR l.org_id = ?1) AND (?2 IS NULL OR m.location_id = ?2)"              \
	" AND (?3 IS NULL OR m.location_id = (SELECT location_id FROM machines WHERE id = ?3))"    \
	" ORDER BY m.created_at, m.id"

/*
 * Without a filter, machines list shows the machines in this host's
 * location when keyadm init recorded one, and every machine otherwise;
 * --all shows every machine.
 */
static int
machines_list(struct ka_ctx *ctx)
{
	const char *org = ctx->args.val[O_ORGANIZATION], *loc = ctx->args.val[O_LOCATION_ID];
	const char *here = NULL;
	char host[VK_UUID_STRLEN + 1], err[VK_ERRLEN];
	vk_rc vrc = VK_OK;
	int rc;

	if (ka_id(ctx, O_ORGANIZATION) || ka_id(ctx, O_LOCATION_ID))
		return KA_USAGE;
	if (org != NULL && loc != NULL)
		return ka_usage_error(ctx, "give --organization or --location-id, not both");
	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
	if (org != NULL)
		vrc = vk_resource_exists(ctx->db, "organization", org, err);
	else if (loc != NULL)
		vrc = vk_resource_exists(ctx->db, "location", loc, err);
	else if (ctx->args.val[O_ALL] == NULL && ka_host_machine(ctx, NULL, host, err) == VK_OK)
		here = host;
	if (vrc != VK_OK)
		return ka_fail(vrc, err);
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_group_array(json(o)) FROM (SELECT " MACHINE_JSON
		                     " AS o" MACHINES_FILTER ")",
		                     "ttt", org, loc, here);
	return ka_print_table(ctx, machine_headers,
	                      "SELECT m.id, m.location_id, m.name, " KA_TIME_SQL("m.created_at")
	                          MACHINES_FILTER,
	                      "ttt", org, loc, here);
}

static const char *init_names[3];
static char init_host[VK_UUID_STRLEN + 1];
static int init_created;

static vk_rc
do_init_tree(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	(void)ctx;
	return vk_tree_init(t, init_names, init_host, &init_created, err);
}

static int
report_init(struct ka_ctx *ctx)
{
	const char *path = ctx->db_path ? ctx->db_path : ctx->cfg.store_path;

	if (ctx->json)
		return ka_print_json(
		    ctx,
		    "SELECT json_object('store', ?1, 'schema_version', ?2, 'machine',"
		    " (SELECT " MACHINE_JSON " FROM machines m JOIN locations l"
		    " ON l.id = m.location_id WHERE m.id = ?3))",
		    "tit", path, (int64_t)VK_SCHEMA_VERSION, init_host[0] ? init_host : NULL);
	printf("Store %s is ready (schema version %d).\n", path, VK_SCHEMA_VERSION);
	if (init_host[0] == '\0')
		return KA_OK;
	return ka_print_table(ctx, (const char *const[]){"", "ID", "NAME", NULL},
	                      "SELECT 'organization', o.id, o.name FROM machines m"
	                      " JOIN locations l ON l.id = m.location_id"
	                      " JOIN organizations o ON o.id = l.org_id WHERE m.id = ?1"
	                      " UNION ALL SELECT 'location', l.id, l.name FROM machines m"
	                      " JOIN locations l ON l.id = m.location_id WHERE m.id = ?1"
	                      " UNION ALL SELECT 'machine (this host)', id, name FROM machines"
	                      " WHERE id = ?1",
	                      "t", init_host);
}

/*
 * Creates or migrates the store, and folds its log into it. With --org,
 * --location and --machine it also creates that hierarchy and records the
 * machine as this host's, unless the store already records one, which is
 * then left as it is.
 */
static int
init(struct ka_ctx *ctx)
{
	static const enum ka_opt opts[3] = {O_ORG, O_LOCATION, O_MACHINE};
	char err[VK_ERRLEN];
	int given = 0, rc;

	for (int i = 0; i < 3; i++) {
		init_names[i] = ctx->args.val[opts[i]];
		if (init_names[i] != NULL) {
			given++;
			if (check_name(ctx, init_names[i], ka_opt_name(opts[i])))
				return KA_USAGE;
		}
	}
	if (given != 0 && given != 3)
		return ka_usage_error(ctx, "give all of --org, --location and --machine, or none");
	if ((rc = ka_open(ctx, VK_OPEN_INIT)) != KA_OK)
		return rc;
	vk_store_checkpoint(ctx->db, 1);
	if (given == 0) {
		if (vk_store_host_machine(ctx->db, ctx->cfg.machine_id, init_host, err) != VK_OK)
			init_host[0] = '\0';
		return report_init(ctx);
	}
	if ((rc = ka_write(ctx, do_init_tree, report_init)) == KA_OK && !init_created)
		fprintf(stderr,
		        "keyadm: the store already records this host's machine %s;"
		        " nothing created\n",
		        init_host);
	return rc;
}

const struct ka_command ka_tree_commands[] = {
    {"init", NULL, init, OPT(O_ORG) | OPT(O_LOCATION) | OPT(O_MACHINE),
     "[--org NAME --location NAME --machine NAME]",
     "Create or migrate the store; optionally create this host's hierarchy."},
    {"organizations", "create", tree_create, OPT(O_NAME), "--name NAME", "Create an organization."},
    {"organizations", "list", organizations_list, 0, "", "List organizations."},
    {"organizations", "rename", tree_rename, OPT(O_ORG_ID) | OPT(O_NAME), "--org-id ID --name NAME",
     "Rename an organization."},
    {"organizations", "delete", tree_delete, OPT(O_ORG_ID), "--org-id ID",
     "Delete an organization with no locations and no grants."},
    {"locations", "create", tree_create, OPT(O_ORG_ID) | OPT(O_NAME), "--org-id ID --name NAME",
     "Create a location in an organization."},
    {"locations", "list", locations_list, OPT(O_ORG_ID), "[--org-id ID]", "List locations."},
    {"locations", "rename", tree_rename, OPT(O_LOCATION_ID) | OPT(O_NAME),
     "--location-id ID --name NAME", "Rename a location."},
    {"locations", "delete", tree_delete, OPT(O_LOCATION_ID), "--location-id ID",
     "Delete a location with no machines and no grants."},
    {"machines", "create", tree_create, OPT(O_LOCATION_ID) | OPT(O_NAME),
     "--location-id ID --name NAME", "Create a machine in a location."},
    {"machines", "list", machines_list, OPT(O_ORGANIZATION) | OPT(O_LOCATION_ID) | OPT(O_ALL),
     "[--organization ID | --location-id ID] [--all]",
     "List machines (this host's location by default; --all for every one)."},
    {"machines", "rename", tree_rename, OPT(O_MACHINE_ID) | OPT(O_NAME),
     "--machine-id ID --name NAME", "Rename a machine."},
    {"machines", "move", machines_move, OPT(O_MACHINE_ID) | OPT(O_LOCATION_ID),
     "--machine-id ID --location-id ID",
     "Move a machine to another location; a joined machine's bus identity follows."},
    {"machines", "delete", tree_delete, OPT(O_MACHINE_ID), "--machine-id ID",
     "Delete a machine with no grants that is not this host's."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
