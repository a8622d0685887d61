/*
 * txn.c - changes to the store and their audit events.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>

#include "store.h"
#include "txn.h"

#define DETAIL_MAX 1024

vk_rc
vk_txn_begin(struct vk_txn *t, char err[VK_ERRLEN])
{
	return vk_store_begin(t->db, err);
}

vk_rc
vk_txn_commit(struct vk_txn *t, char err[VK_ERRLEN])
{
	vk_rc rc = vk_store_commit(t->db, err);

	if (rc == VK_OK)
		vk_store_checkpoint(t->db, 1);
	return rc;
}

void
vk_txn_rollback(struct vk_txn *t)
{
	vk_store_rollback(t->db);
}

vk_rc
vk_txn_event(struct vk_txn *t, const char *action, const char *key_id, char err[VK_ERRLEN],
             const char *fmt, ...)
{
	char detail[DETAIL_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	return vk_store_exec(t->db, "cannot record the audit event", err, NULL,
	                     "INSERT INTO events (at, actor, effective, action, key_id, detail)"
	                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	                     "ittttt", t->now, t->actor, t->effective, action, key_id, detail);
}
