/*
 * cmd_sync.c - the fleet: sync status, sync wait, sync republish and
 * machines config (the authority itself: cmd_authority.c).
 *
 * Security rules for this file:
 *  1. The signing key is read only to derive its public half; the secret
 *     half is never printed.
 *  2. sync wait reports success only when every machine has acknowledged
 *     the revision that was current when it started.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "duration.h"
#include "fleet.h"
#include "keyadm.h"
#include "record.h"
#include "tree.h"
#include "trust.h"

#define WAIT_STEP_MS    200
#define WAIT_DEFAULT_S  60
#define HOST_NAME_BYTES 256

/* The store's role, opened for administration; KA_OK, or a failure already reported. */
static int
open_role(struct ka_ctx *ctx, enum vk_fleet_role *role)
{
	char err[VK_ERRLEN];
	vk_rc rc;
	int status;

	if ((status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	if ((rc = vk_fleet_role(ctx->db, role, err)) != VK_OK)
		return ka_fail(rc, err);
	return KA_OK;
}

/* ---- sync republish ------------------------------------------------------ */

static vk_rc
do_republish(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	vk_rc rc;

	(void)ctx;
	if ((rc = vk_txn_changed_all(t, err)) != VK_OK)
		return rc;
	return vk_txn_event(t, "sync.republish", NULL, err, "everything, at revision %lld",
	                    (long long)t->revision);
}

static int
report_republish(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_object('unpublished', (SELECT count(*) FROM"
		                     " sync_outbox))",
		                     "");
	return ka_print_table(ctx, (const char *const[]){"UNPUBLISHED", NULL},
	                      "SELECT count(*) FROM sync_outbox", "");
}

static int
sync_republish(struct ka_ctx *ctx)
{
	int status;

	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	return ka_write(ctx, do_republish, report_republish);
}

/* ---- sync status ----------------------------------------------------------- */

#define META_INT(name)  "(SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" name "')"
#define META_TEXT(name) "(SELECT value FROM meta WHERE name = '" name "')"

/*
 * The machines of the tree and what each acknowledged; ?1 this host's
 * machine, which is the authority itself and acknowledges nothing.
 */
#define MACHINES_SQL                                                                               \
	" FROM machines m LEFT JOIN sync_machines s ON s.machine_id = m.id"                        \
	" WHERE ?1 IS NULL OR m.id != ?1 ORDER BY m.created_at, m.id"

/* The machines that have not acknowledged revision ?2 (?1 as above). */
#define MACHINES_SQL_BEHIND                                                                        \
	" FROM machines m LEFT JOIN sync_machines s ON s.machine_id = m.id"                        \
	" WHERE (?1 IS NULL OR m.id != ?1) AND coalesce(s.revision, -1) < ?2"                      \
	" ORDER BY m.created_at, m.id"

/* The authority's status as one JSON object; ?1 as above. */
// clang-format off
#define STATUS_AUTHORITY_JSON                                                                      \
	"SELECT json_object('role', 'authority',"                                                  \
	" 'revision', coalesce(" META_INT(VK_META_REVISION) ", 0),"                                \
	" 'epoch', coalesce(" META_INT(VK_META_AUTHORITY_EPOCH) ", 0),"                            \
	" 'root_version', " META_INT(VK_META_ROOT_VER) ","                                         \
	" 'unpublished', (SELECT count(*) FROM sync_outbox),"                                      \
	" 'heads_unpublished', (SELECT count(DISTINCT scope) FROM sync_dirty),"                    \
	" 'bucket_made_at', " KA_TIME_SQL(META_INT(VK_META_BUCKET_MADE)) ","                       \
	" 'machines', (SELECT json_group_array(json_object('id', id, 'name', name,"                \
	"   'revision', revision, 'reported_at', reported_at, 'format', format,"                   \
	"   'last_error', last_error))"                                                            \
	"  FROM (SELECT m.id, m.name, s.revision, " KA_TIME_SQL("s.reported_at") " AS reported_at,"\
	"   s.format, s.last_error" MACHINES_SQL ")))"

/* The same, as a table row. */
#define STATUS_AUTHORITY_ROW                                                                       \
	"SELECT 'authority', coalesce(" META_INT(VK_META_REVISION) ", 0),"                         \
	" coalesce(" META_INT(VK_META_AUTHORITY_EPOCH) ", 0), (SELECT count(*) FROM sync_outbox)," \
	" coalesce(" KA_TIME_SQL(META_INT(VK_META_BUCKET_MADE)) ", '-')"

/* Its machines as table rows; ?1 as above. */
#define STATUS_MACHINES_ROWS                                                                       \
	"SELECT m.id, m.name, coalesce(s.revision, 'never'),"                                      \
	" coalesce(" KA_TIME_SQL("s.reported_at") ", '-'),"                                        \
	" coalesce(s.format, '-'), coalesce(s.last_error, '-')" MACHINES_SQL

/*
 * A replica's or a standby's status as one JSON object; ?1 the machine,
 * ?2 the role. The epoch and root version are those it trusts (trust.h).
 */
#define STATUS_FOLLOWER_JSON                                                                       \
	"SELECT json_object('role', ?2, 'machine_id', ?1,"                                         \
	" 'revision', coalesce(" META_INT(VK_META_APPLIED_REV) ", 0),"                             \
	" 'epoch', coalesce(" META_INT(VK_META_TRUST_EPOCH) ", 0),"                                \
	" 'root_version', " META_INT(VK_META_TRUST_ROOT_VERSION) ","                               \
	" 'heartbeat_at', " KA_TIME_SQL(META_INT(VK_META_HEARTBEAT_AT)) ","                        \
	" 'heartbeat_seen', " KA_TIME_SQL(META_INT(VK_META_HEARTBEAT_SEEN)) ","                    \
	" 'authority_format', " META_INT(VK_META_HEARTBEAT_FORMAT) ","                             \
	" 'keys', (SELECT count(*) FROM keys),"                                                    \
	" 'last_error', " META_TEXT(VK_META_SYNC_ERROR) ")"

/* The same, as a table row; ?3 now. */
#define STATUS_FOLLOWER_ROW                                                                        \
	"SELECT ?2, coalesce(?1, '-'), coalesce(" META_INT(VK_META_APPLIED_REV) ", 0),"            \
	" coalesce(" META_INT(VK_META_TRUST_EPOCH) ", 0),"                                         \
	" coalesce((?3 - " META_INT(VK_META_HEARTBEAT_AT) ") || 's', 'never'),"                    \
	" (SELECT count(*) FROM keys), coalesce(" META_TEXT(VK_META_SYNC_ERROR) ", '-')"
// clang-format on

static int
status_authority(struct ka_ctx *ctx, const char *host)
{
	static const char *const head[] = {"ROLE",        "REVISION",    "EPOCH",
	                                   "UNPUBLISHED", "BUCKET MADE", NULL};
	static const char *const machines[] = {"MACHINE", "NAME",       "REVISION", "REPORTED",
	                                       "FORMAT",  "LAST ERROR", NULL};

	if (ctx->json)
		return ka_print_json(ctx, STATUS_AUTHORITY_JSON, "t", host);
	if (ka_print_table(ctx, head, STATUS_AUTHORITY_ROW, "") != KA_OK)
		return KA_FAIL;
	putchar('\n');
	return ka_print_table(ctx, machines, STATUS_MACHINES_ROWS, "t", host);
}

static int
status_follower(struct ka_ctx *ctx, const char *role)
{
	static const char *const head[] = {"ROLE",          "MACHINE", "REVISION",   "EPOCH",
	                                   "HEARTBEAT AGE", "KEYS",    "LAST ERROR", NULL};

	if (ctx->json)
		return ka_print_json(ctx, STATUS_FOLLOWER_JSON, "tt", ctx->cfg.machine_id, role);
	return ka_print_table(ctx, head, STATUS_FOLLOWER_ROW, "tti", ctx->cfg.machine_id, role,
	                      ctx->now);
}

static int
sync_status(struct ka_ctx *ctx)
{
	char host[VK_UUID_STRLEN + 1], err[VK_ERRLEN];
	enum vk_fleet_role role;
	int status;

	if ((status = open_role(ctx, &role)) != KA_OK)
		return status;
	switch (role) {
	case VK_FLEET_AUTHORITY:
		return status_authority(ctx, ka_host_machine(ctx, NULL, host, err) == VK_OK ? host
		                                                                            : NULL);
	case VK_FLEET_REPLICA:
		return status_follower(ctx, "replica");
	case VK_FLEET_STANDBY:
		return status_follower(ctx, "standby");
	default:
		return ka_fail(VK_ERR_CONFLICT, "this store is not part of a fleet; see keyadm"
		                                " authority init and viamkey-syncd(8)");
	}
}

/* ---- sync wait --------------------------------------------------------------- */

static int
sync_wait(struct ka_ctx *ctx)
{
	struct timespec step = {0, WAIT_STEP_MS * 1000000L};
	char host[VK_UUID_STRLEN + 1], err[VK_ERRLEN], *behind = NULL;
	int64_t timeout = WAIT_DEFAULT_S, target, waited_ms = 0, missing;
	const char *here;
	vk_rc rc;
	int status;

	if (ka_duration(ctx, O_TIMEOUT, &timeout))
		return KA_USAGE;
	if (ctx->args.val[O_TIMEOUT] == NULL)
		timeout = WAIT_DEFAULT_S;
	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	here = ka_host_machine(ctx, NULL, host, err) == VK_OK ? host : NULL;
	if ((rc = vk_store_query_int(ctx->db, "cannot read the revision", err, &target,
	                             "SELECT coalesce(" META_INT(VK_META_REVISION) ", 0)", "")) !=
	    VK_OK)
		return ka_fail(rc, err);
	for (;;) {
		if ((rc = vk_store_query_int(ctx->db, "cannot read the acknowledgements", err,
		                             &missing, "SELECT count(*)" MACHINES_SQL_BEHIND, "ti",
		                             here, target)) != VK_OK)
			return ka_fail(rc, err);
		if (missing == 0 || waited_ms >= timeout * 1000)
			break;
		nanosleep(&step, NULL);
		waited_ms += WAIT_STEP_MS;
	}
	if (missing == 0) {
		if (ctx->json)
			return ka_print_json(ctx,
			                     "SELECT json_object('revision', ?1, 'machines_behind',"
			                     " json_array())",
			                     "i", target);
		printf("Every machine has applied revision %lld.\n", (long long)target);
		return KA_OK;
	}
	if (ctx->json && ka_print_json(ctx,
	                               "SELECT json_object('revision', ?2, 'machines_behind',"
	                               " (SELECT json_group_array(m.id)" MACHINES_SQL_BEHIND "))",
	                               "ti", here, target) != KA_OK)
		return KA_FAIL;
	{
		sqlite3_stmt *st;

		if (vk_store_prepare(
		        ctx->db, "cannot read the acknowledgements", err, &st,
		        "SELECT group_concat(id, ' ') FROM (SELECT m.id" MACHINES_SQL_BEHIND ")",
		        "ti", here, target) == VK_OK) {
			if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
				behind = strdup((const char *)sqlite3_column_text(st, 0));
			sqlite3_finalize(st);
		}
	}
	fprintf(stderr, "keyadm: %lld machines have not applied revision %lld after %s: %s\n",
	        (long long)missing, (long long)target,
	        ctx->args.val[O_TIMEOUT] ? ctx->args.val[O_TIMEOUT] : "60s",
	        behind != NULL ? behind : "?");
	free(behind);
	return KA_FAIL;
}

/* ---- machines config ------------------------------------------------------------ */

static int
machines_config(struct ka_ctx *ctx)
{
	const struct vk_sync_config *s = &ctx->cfg.sync;
	const char *id = ctx->args.val[O_MACHINE_ID], *b;
	unsigned char *sk = NULL;
	char err[VK_ERRLEN], pk[VK_PUBLIC_KEY_B64],
	    root[VK_PUBLIC_KEY_B64 + 8] = "", conf[8192], loc[VK_UUID_STRLEN + 1] = "",
	                             org[VK_UUID_STRLEN + 1] = "";
	sqlite3_stmt *st;
	vk_rc rc;
	int status;

	if (ka_require(ctx, O_MACHINE_ID) || ka_id(ctx, O_MACHINE_ID))
		return KA_USAGE;
	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	if ((rc = vk_resource_exists(ctx->db, "machine", id, err)) != VK_OK ||
	    (rc = vk_store_prepare(ctx->db, "cannot read the tree", err, &st,
	                           "SELECT m.location_id, l.org_id FROM machines m"
	                           " JOIN locations l ON l.id = m.location_id WHERE m.id = ?1",
	                           "t", id)) != VK_OK)
		return ka_fail(rc, err);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(loc, sizeof loc, "%s", (const char *)sqlite3_column_text(st, 0));
		snprintf(org, sizeof org, "%s", (const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	/* a fleet with a root of trust: machines trust the root's first version */
	if ((rc = vk_store_prepare(ctx->db, "cannot read the root", err, &st,
	                           "SELECT value FROM meta WHERE name IN ('" VK_META_ROOT_ORG
	                           "', '" VK_META_TRUST_ORIGIN "') ORDER BY name LIMIT 1",
	                           "")) != VK_OK)
		return ka_fail(rc, err);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(root, sizeof root, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (root[0] == '\0') {
		if ((sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL)
			return ka_fail(VK_ERR_NOMEM, "out of memory");
		rc = vk_signing_key_load(s->signing_key, sk, err);
		if (rc == VK_OK)
			vk_public_key_b64(sk, pk);
		sodium_free(sk);
		if (rc != VK_OK)
			return ka_fail(rc, err);
	}
	b = s->bucket;
	snprintf(conf, sizeof conf,
	         "; viamkey.conf for machine %s, from keyadm machines config\n"
	         "[store]\npath = %s\n"
	         "[machine]\nid = %s\n"
	         "[sync]\nservers = %s\nbucket = %s\n"
	         "; the bus credentials of this machine: a .creds file, or user and password_file\n"
	         "; credentials = /etc/viamkey/nats.creds\n"
	         "%s = %s\n"
	         "heartbeat_interval = %llds\nresync_interval = %llds\nmax_staleness = %lld%s\n"
	         ";\n"
	         "; This machine's bus user, in the account for machines (docs/FLEET.md), may\n"
	         "; read only its own scopes and say only its own acknowledgement and events:\n"
	         ";   { user: \"machine-%s\", password: \"...\", permissions: {\n"
	         ";       publish: { allow: [\n"
	         ";         \"$JS.API.DIRECT.GET.KV_%s.$KV.%s.m.%s.>\",\n"
	         ";         \"$JS.API.DIRECT.GET.KV_%s.$KV.%s.l.%s.>\",\n"
	         ";         \"$JS.API.DIRECT.GET.KV_%s.$KV.%s.o.%s.>\",\n"
	         ";         \"$JS.API.DIRECT.GET.KV_%s.$KV.%s.hb\",\n"
	         ";         \"$JS.API.DIRECT.GET.KV_%s.$KV.%s.root.>\",\n"
	         ";         \"vkack.%s.%s\", \"vkev.%s.%s\" ] },\n"
	         ";       subscribe: { allow: [\n"
	         ";         \"vk.%s.m.%s.>\", \"vk.%s.l.%s.>\", \"vk.%s.o.%s.>\", \"vk.%s.hb\",\n"
	         ";         \"_INBOX.%s.>\" ] } } }\n",
	         id, VK_DEFAULT_STORE, id,
	         s->servers != NULL ? s->servers : "nats://127.0.0.1:4222", b,
	         root[0] != '\0' ? "root_key" : "authority_key", root[0] != '\0' ? root : pk,
	         (long long)s->heartbeat_interval, (long long)s->resync_interval,
	         (long long)s->max_staleness, s->max_staleness > 0 ? "s" : "", id, b, b, id, b, b,
	         loc, b, b, org, b, b, b, b, b, id, b, id, b, id, b, loc, b, org, b, id);
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('machine_id', ?1, 'config', ?2)",
		                     "tt", id, conf);
	fputs(conf, stdout);
	return KA_OK;
}

const struct ka_command ka_sync_commands[] = {
    {"sync", "status", sync_status, 0, "",
     "The fleet's state: on the authority every machine's revision, on a machine its own."},
    {"sync", "wait", sync_wait, OPT(O_TIMEOUT), "[--timeout DUR]",
     "Wait until every machine has applied the current revision (default 60s)."},
    {"sync", "republish", sync_republish, 0, "",
     "Publish everything again (a new bucket, or a restored backup)."},
    {"machines", "config", machines_config, OPT(O_MACHINE_ID), "--machine-id ID",
     "Print the viamkey.conf a machine needs to join the fleet."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
