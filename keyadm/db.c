/*
 * db.c - the store as keyadm's commands use it: opened with keyadm's SQL
 * functions, this host's machine, and a change made in one transaction.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>

#include "fleet.h"
#include "keyadm.h"

int
ka_open(struct ka_ctx *ctx, enum vk_open_mode mode)
{
	char err[VK_ERRLEN];
	const char *path = ctx->db_path ? ctx->db_path : ctx->cfg.store_path;
	vk_rc rc;

	/* keyadm waits longer for a lock than a login does */
	rc = vk_store_open(path, mode,
	                   ctx->cfg.busy_timeout_ms > 5000 ? ctx->cfg.busy_timeout_ms : 5000,
	                   &ctx->db, err);
	if (rc == VK_OK)
		rc = vk_store_register_functions(ctx->db, err);
	if (rc == VK_OK)
		rc = ka_register_functions(ctx->db, err);
	if (rc != VK_OK) {
		sqlite3_close(ctx->db);
		ctx->db = NULL;
		return ka_fail(rc, err);
	}
	return KA_OK;
}

int
ka_require_authority(struct ka_ctx *ctx)
{
	enum vk_fleet_role role;
	char err[VK_ERRLEN], *name = NULL;
	vk_rc rc;
	int status;

	if ((status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	if ((rc = vk_fleet_role(ctx->db, &role, err)) != VK_OK)
		return ka_fail(rc, err);
	if (role == VK_FLEET_AUTHORITY)
		return KA_OK;
	if (role != VK_FLEET_REPLICA)
		return ka_fail(VK_ERR_CONFLICT,
		               "this store is not the fleet's authority; make it one"
		               " with keyadm authority init");
	(void)vk_store_query_text(ctx->db, "", err, &name,
	                          "SELECT value FROM meta WHERE name = '" VK_META_AUTHORITY "'",
	                          "");
	snprintf(err, VK_ERRLEN,
	         "this store is a replica, not the fleet's authority%s%s; run this there, with"
	         " keyadm on the authority",
	         name != NULL ? " " : "", name != NULL ? name : "");
	free(name);
	return ka_fail(VK_ERR_CONFLICT, err);
}

vk_rc
ka_host_machine(struct ka_ctx *ctx, const char *given, char out[VK_UUID_STRLEN + 1], char *err)
{
	return vk_store_host_machine(ctx->db, given ? given : ctx->cfg.machine_id, out, err);
}

int
ka_write(struct ka_ctx *ctx, ka_change_fn change, ka_report_fn report)
{
	struct vk_txn t = {.db = ctx->db,
	                   .actor = ctx->actor,
	                   .effective = ctx->effective,
	                   .now = ctx->now,
	                   .own_cert = ctx->own_cert};
	char err[VK_ERRLEN] = "";
	vk_rc rc;
	int status;

	if (ctx->db == NULL && (status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	t.db = ctx->db;
	if ((rc = vk_txn_begin(&t, err)) != VK_OK)
		return ka_fail(rc, err);
	if ((rc = change(ctx, &t, err)) != VK_OK) {
		vk_txn_rollback(&t);
		return ka_fail(rc, err);
	}
	/* the report, a token included, is out before the change is stored */
	if ((status = report(ctx)) != KA_OK ||
	    (status = ka_flush("; nothing was changed")) != KA_OK) {
		vk_txn_rollback(&t);
		return status;
	}
	if ((rc = vk_txn_commit(&t, err)) != VK_OK) {
		fprintf(stderr, "keyadm: %s; nothing was changed, whatever was printed\n", err);
		return KA_FAIL;
	}
	return KA_OK;
}
