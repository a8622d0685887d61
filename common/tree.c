/*
 * tree.c - organizations, locations and machines.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store.h"
#include "token.h"
#include "tree.h"

static const struct kind {
	const char *name;
	const char *exists_sql;
	const char *insert_sql; /* ?1 id, ?2 name, ?3 created_at, ?4 parent */
	const char *rename_sql;
	const char *delete_sql;
	const char *children_sql; /* ?1 id, ?2 the configured machine: > 0 when it must stay */
	const char *children;
} kinds[] = {
    [VK_KIND_ORGANIZATION] =
        {"organization", "SELECT count(*) FROM organizations WHERE id = ?1",
         "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)",
         "UPDATE organizations SET name = ?2 WHERE id = ?1",
         "DELETE FROM organizations WHERE id = ?1",
         "SELECT count(*) FROM locations WHERE org_id = ?1",
         "it still has locations; delete them first"},
    [VK_KIND_LOCATION] =
        {"location", "SELECT count(*) FROM locations WHERE id = ?1",
         "INSERT INTO locations (id, name, created_at, org_id) VALUES (?1, ?2, ?3, ?4)",
         "UPDATE locations SET name = ?2 WHERE id = ?1", "DELETE FROM locations WHERE id = ?1",
         "SELECT count(*) FROM machines WHERE location_id = ?1",
         "it still has machines; delete them first"},
    [VK_KIND_MACHINE] =
        {"machine", "SELECT count(*) FROM machines WHERE id = ?1",
         "INSERT INTO machines (id, name, created_at, location_id) VALUES (?1, ?2, ?3, ?4)",
         "UPDATE machines SET name = ?2 WHERE id = ?1", "DELETE FROM machines WHERE id = ?1",
         "SELECT coalesce(?1 = ?2, 0) OR EXISTS (SELECT 1 FROM meta"
         " WHERE name = 'host_machine_id' AND value = ?1)",
         "it is this host's machine ([machine] id, or the one keyadm init recorded)"},
};

const char *
vk_kind_name(enum vk_kind k)
{
	return kinds[k].name;
}

int
vk_kind_parse(const char *type, enum vk_kind *out)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		if (type != NULL && strcmp(type, kinds[i].name) == 0) {
			*out = (enum vk_kind)i;
			return 0;
		}
	}
	return -1;
}

vk_rc
vk_resource_exists(sqlite3 *db, const char *type, const char *id, char err[VK_ERRLEN])
{
	enum vk_kind k;
	int64_t n;
	vk_rc rc;

	if (vk_kind_parse(type, &k) != 0) {
		vk_seterr(err, "unknown resource type \"%s\"", type);
		return VK_ERR_USAGE;
	}
	if (!vk_uuid_valid(id)) {
		vk_seterr(err, "%s ID \"%s\" is not a lowercase UUIDv4", type, id);
		return VK_ERR_USAGE;
	}
	rc = vk_store_query_int(db, "cannot look up the resource", err, &n, kinds[k].exists_sql,
	                        "t", id);
	if (rc == VK_OK && n == 0) {
		vk_seterr(err, "no %s with ID %s", type, id);
		rc = VK_ERR_NOTFOUND;
	}
	return rc;
}

/*
 * An audit event named "<kind>.<verb>", e.g. "location.rename", and the
 * change of resource `id` for the fleet.
 */
static vk_rc __attribute__((format(printf, 6, 7)))
tree_event(struct vk_txn *t, enum vk_kind k, const char *verb, const char *id, char err[VK_ERRLEN],
           const char *fmt, ...)
{
	char action[32], detail[512];
	va_list ap;
	vk_rc rc;

	snprintf(action, sizeof action, "%s.%s", kinds[k].name, verb);
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	if ((rc = vk_txn_event(t, action, NULL, err, "%s", detail)) != VK_OK)
		return rc;
	return vk_txn_changed(t, kinds[k].name, id, err);
}

static vk_rc
check_name(const char *name, char err[VK_ERRLEN])
{
	if (vk_name_valid(name))
		return VK_OK;
	vk_seterr(err, "a name must be 1-%d characters with no control or format characters",
	          VK_NAME_MAX);
	return VK_ERR_USAGE;
}

vk_rc
vk_tree_create(struct vk_txn *t, enum vk_kind k, const char *name, const char *parent,
               char id[VK_UUID_STRLEN + 1], char err[VK_ERRLEN])
{
	unsigned char raw[VK_KEY_ID_BYTES];
	vk_rc rc;

	if ((rc = check_name(name, err)) != VK_OK ||
	    (k != VK_KIND_ORGANIZATION &&
	     (rc = vk_resource_exists(t->db, kinds[k - 1].name, parent, err)) != VK_OK))
		return rc;
	vk_uuid_generate(raw);
	vk_uuid_format(raw, id);
	if ((rc = vk_store_exec(t->db, "cannot create", err, NULL, kinds[k].insert_sql,
	                        k != VK_KIND_ORGANIZATION ? "ttit" : "tti", id, name, t->now,
	                        parent)) != VK_OK)
		return rc;
	return tree_event(t, k, "create", id, err, "%s \"%s\"", id, name);
}

vk_rc
vk_tree_rename(struct vk_txn *t, enum vk_kind k, const char *id, const char *name,
               char err[VK_ERRLEN])
{
	vk_rc rc;

	if ((rc = check_name(name, err)) != VK_OK ||
	    (rc = vk_resource_exists(t->db, kinds[k].name, id, err)) != VK_OK ||
	    (rc = vk_store_exec(t->db, "cannot rename", err, NULL, kinds[k].rename_sql, "tt", id,
	                        name)) != VK_OK)
		return rc;
	return tree_event(t, k, "rename", id, err, "%s to \"%s\"", id, name);
}

vk_rc
vk_tree_move(struct vk_txn *t, const char *machine, const char *location, char err[VK_ERRLEN])
{
	int64_t same;
	vk_rc rc;

	if ((rc = vk_resource_exists(t->db, "machine", machine, err)) != VK_OK ||
	    (rc = vk_resource_exists(t->db, "location", location, err)) != VK_OK ||
	    (rc = vk_store_query_int(t->db, "cannot move", err, &same,
	                             "SELECT count(*) FROM machines WHERE id = ?1 AND"
	                             " location_id = ?2",
	                             "tt", machine, location)) != VK_OK)
		return rc;
	if (same > 0) {
		vk_seterr(err, "machine %s is in location %s already", machine, location);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_exec(t->db, "cannot move", err, NULL,
	                        "UPDATE machines SET location_id = ?2 WHERE id = ?1", "tt", machine,
	                        location)) != VK_OK)
		return rc;
	return tree_event(t, VK_KIND_MACHINE, "move", machine, err, "%s to location %s", machine,
	                  location);
}

vk_rc
vk_tree_delete(struct vk_txn *t, enum vk_kind k, const char *id, const char *configured,
               char err[VK_ERRLEN])
{
	int64_t n;
	vk_rc rc;

	if ((rc = vk_resource_exists(t->db, kinds[k].name, id, err)) != VK_OK ||
	    (rc = vk_store_query_int(t->db, "cannot delete", err, &n, kinds[k].children_sql, "tt",
	                             id, configured)) != VK_OK)
		return rc;
	if (n > 0) {
		vk_seterr(err, "%s %s cannot be deleted: %s", kinds[k].name, id, kinds[k].children);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_query_int(t->db, "cannot delete", err, &n,
	                             "SELECT count(DISTINCT key_id) FROM grants"
	                             " WHERE resource_type = ?1 AND resource_id = ?2",
	                             "tt", kinds[k].name, id)) != VK_OK)
		return rc;
	if (n > 0) {
		vk_seterr(err,
		          "%lld keys have grants on %s %s; remove them with keys ungrant first",
		          (long long)n, kinds[k].name, id);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_exec(t->db, "cannot delete", err, NULL, kinds[k].delete_sql, "t", id)) !=
	    VK_OK)
		return rc;
	return tree_event(t, k, "delete", id, err, "%s", id);
}

vk_rc
vk_tree_init(struct vk_txn *t, const char *const names[3], char host[VK_UUID_STRLEN + 1],
             int *created, char err[VK_ERRLEN])
{
	char ids[3][VK_UUID_STRLEN + 1];
	sqlite3_stmt *st;
	int step;
	vk_rc rc;

	*created = 0;
	host[0] = '\0';
	/* read under the write lock: a concurrent init has either recorded its machine or not */
	if ((rc = vk_store_prepare(t->db, "cannot read the store", err, &st,
	                           "SELECT value FROM meta WHERE name = 'host_machine_id'", "")) !=
	    VK_OK)
		return rc;
	if ((step = sqlite3_step(st)) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		snprintf(host, VK_UUID_STRLEN + 1, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		return vk_store_error(t->db, "cannot read the store", err);
	if (step == SQLITE_ROW)
		return VK_OK;
	for (int i = 0; i < 3; i++)
		if ((rc = vk_tree_create(t, (enum vk_kind)i, names[i], i ? ids[i - 1] : NULL,
		                         ids[i], err)) != VK_OK)
			return rc;
	if ((rc = vk_store_set_host_machine(t->db, ids[2], err)) != VK_OK ||
	    (rc = vk_txn_event(t, "init", NULL, err, "host machine %s", ids[2])) != VK_OK)
		return rc;
	memcpy(host, ids[2], VK_UUID_STRLEN + 1);
	*created = 1;
	return VK_OK;
}
