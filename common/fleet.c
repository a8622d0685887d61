/*
 * fleet.c - a store's place in the fleet.
 */
#include "autoconfig.h"

#include <string.h>

#include "fleet.h"
#include "store.h"

vk_rc
vk_fleet_role(sqlite3 *db, enum vk_fleet_role *role, char err[VK_ERRLEN])
{
	int64_t r;
	vk_rc rc = vk_store_query_int(db, "cannot read the store's role", err, &r,
	                              "SELECT CASE value WHEN 'authority' THEN 1"
	                              " WHEN 'replica' THEN 2 WHEN 'standby' THEN 3 ELSE 0 END"
	                              " FROM meta WHERE name = '" VK_META_ROLE "'",
	                              "");

	*role = rc != VK_OK ? VK_FLEET_STANDALONE
	        : r == 1    ? VK_FLEET_AUTHORITY
	        : r == 2    ? VK_FLEET_REPLICA
	        : r == 3    ? VK_FLEET_STANDBY
	                    : VK_FLEET_STANDALONE;
	return rc;
}

vk_rc
vk_fleet_stale(sqlite3 *db, int64_t now, int64_t max_staleness, int *stale, char err[VK_ERRLEN])
{
	int64_t s = 0;
	vk_rc rc = VK_OK;

	if (max_staleness > 0)
		rc = vk_store_query_int(
		    db, "cannot read the replica's heartbeat", err, &s,
		    "SELECT EXISTS (SELECT 1 FROM meta WHERE name = '" VK_META_ROLE
		    "' AND value = 'replica') AND coalesce((SELECT CAST(value AS INTEGER)"
		    " FROM meta WHERE name = '" VK_META_HEARTBEAT_AT "'), 0) < ?1",
		    "i", now - max_staleness);
	*stale = rc == VK_OK && s != 0;
	return rc;
}
