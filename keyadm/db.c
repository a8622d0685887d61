/*
 * db.c - the store as keyadm's commands use it: opened with keyadm's SQL
 * functions, this host's machine, and a change made in one transaction.
 */
#include "autoconfig.h"

#include <stdio.h>

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
