/*
 * model.h - what a live secret, a key's status and a grant's coverage are,
 * written once as SQL for every reader: the login decision, keyadm's
 * lists, and the fleet's publisher and replica.
 *
 * Each macro takes the SQL names to use (a table alias or a parameter)
 * as string literals and expands to one parenthesised SQL expression.
 */
#ifndef VK_MODEL_H
#define VK_MODEL_H

/* Secret row s may still be presented at time `now`: it has no end, or ends later. */
#define VK_SQL_SECRET_LIVE(s, now) "(" s ".expires_at IS NULL OR " s ".expires_at > " now ")"

/* Secret row s is the old secret of a rotation window still open at `now`. */
#define VK_SQL_SECRET_IN_WINDOW(s, now) "(" s ".expires_at > " now ")"

/* Key row k's status at `now`: 'disabled', 'expired', 'rotating' or 'active'. */
#define VK_SQL_KEY_STATUS(k, now)                                                                  \
	"(CASE WHEN " k ".disabled THEN 'disabled'"                                                \
	" WHEN " k ".expires_at IS NOT NULL AND " k ".expires_at <= " now " THEN 'expired'"        \
	" WHEN EXISTS (SELECT 1 FROM secrets s WHERE s.key_id = " k                                \
	".id AND " VK_SQL_SECRET_IN_WINDOW("s", now) ") THEN 'rotating' ELSE 'active' END)"

/*
 * Grant row g covers machine `m`, whose location is `l` and organization
 * `o`: it names the machine, its location or its organization. A CASE on
 * the type rather than three ORed pairs: SQLite prepares it in about 60%
 * of the instructions, which every allowed login pays.
 */
#define VK_SQL_GRANT_COVERS(g, m, l, o)                                                            \
	"(" g ".resource_id = CASE " g ".resource_type WHEN 'machine' THEN " m                     \
	" WHEN 'location' THEN " l " WHEN 'organization' THEN " o " END)"

/* Coverage ranks: how closely a grant names the machine it covers. */
enum vk_coverage {
	VK_COVERS_NOT = 0,
	VK_COVERS_BY_ORGANIZATION = 1,
	VK_COVERS_BY_LOCATION = 2,
	VK_COVERS_DIRECTLY = 3,
};

#endif
