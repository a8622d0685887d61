/*
 * cmd_sessions.c - `sessions list`: the sessions the module opened with a
 * key (SPEC §11), this host's, and on the authority every machine's, as
 * their events told them.
 */
#include "autoconfig.h"

#include "keyadm.h"

static int
sessions_list(struct ka_ctx *ctx)
{
	static const char *const headers[] = {"OPENED", "MACHINE", "KEY",   "USER", "SERVICE",
	                                      "RHOST",  "SESSION", "STATE", NULL};
	int rc;

	if (ka_id(ctx, O_KEY_ID) || ka_id(ctx, O_MACHINE_ID))
		return KA_USAGE;
	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
#define SESSIONS_FROM                                                                              \
	" FROM (SELECT * FROM sessions WHERE (?1 IS NULL OR machine_id = ?1)"                      \
	" AND (?2 IS NULL OR key_id = ?2) AND (?3 OR state = 'open')"                              \
	" ORDER BY opened_at, machine_id, pid)"
#define SESSIONS_ARGS                                                                              \
	"tti", ctx->args.val[O_MACHINE_ID], ctx->args.val[O_KEY_ID],                               \
	    (int64_t)(ctx->args.val[O_ALL] != NULL)
	if (ctx->json)
		return ka_print_json(
		    ctx,
		    "SELECT json_group_array(json_object('id', id, 'machine_id',"
		    " nullif(machine_id, ''), 'key_id', key_id, 'user', user, 'service', service,"
		    " 'rhost', rhost, 'logind_session', logind, 'pid', pid, "
		    "'opened_at', " KA_TIME_SQL("opened_at") ", 'state', state, "
		                                             "'ended_at', " KA_TIME_SQL(
		                                                 "ended_at") ","
		                                                             " 'reason', "
		                                                             "reason)"
		                                                             ")" SESSIONS_FROM,
		    SESSIONS_ARGS);
	return ka_print_table(
	    ctx, headers,
	    "SELECT " KA_TIME_SQL("opened_at") ", nullif(machine_id, ''), key_id, user, service,"
	                                       " rhost, coalesce('logind ' || logind || ' ', '') ||"
	                                       " 'pid ' || pid, state || coalesce(' (' || reason"
	                                       " || ')', '')" SESSIONS_FROM,
	    SESSIONS_ARGS);
#undef SESSIONS_ARGS
#undef SESSIONS_FROM
}

const struct ka_command ka_session_commands[] = {
    {"sessions", "list", sessions_list, OPT(O_MACHINE_ID) | OPT(O_KEY_ID) | OPT(O_ALL),
     "[--machine-id ID] [--key-id ID] [--all]",
     "Show the sessions opened with a key (on the authority, every machine's): open ones,"
     " or with --all also those closed and ended."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
