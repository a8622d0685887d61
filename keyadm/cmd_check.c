/*
 * cmd_check.c - `check`, the login decision from the command line, and
 * `events`, the audit trail.
 *
 * Security rules for this file:
 *  1. check MUST call vk_authorize(), the module's own decision, and
 *     nothing else decides.
 *  2. The token read from stdin lives in sodium_malloc() memory and is
 *     wiped by sodium_free(); it is never printed.
 *  3. check never writes to the store (no last-use record).
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz.h"
#include "duration.h"
#include "keyadm.h"

#define READ_CAP (VK_TOKEN_HARD_MAX + 2) /* room to see that a line is too long */

/*
 * Reads the token from stdin into buf (READ_CAP bytes) and returns its
 * length: everything up to the first newline that follows something other
 * than white space (blank lines before the token are white space, which
 * the decision ignores, as the module does). Reading stops there, or once
 * over VK_TOKEN_HARD_MAX bytes, which the decision refuses by length alone:
 * nothing more is read, so `yes | keyadm check` ends.
 */
static size_t
read_token(char *buf)
{
	size_t len = 0;
	int c, seen = 0;

	while (len < READ_CAP && (c = getchar()) != EOF && (c != '\n' || !seen)) {
		seen |= c != ' ' && c != '\t' && c != '\r' && c != '\n';
		buf[len++] = (char)c;
	}
	return len;
}

static int
print_decision(struct ka_ctx *ctx, const struct vk_result *res)
{
	int allow = res->decision == VK_DECISION_ALLOW;

	if (ctx->json) {
		int rc = ka_print_json(
		    ctx,
		    "SELECT json_object('decision', ?1, 'reason', ?2, 'key_id', ?3,"
		    " 'role', ?4, 'via', iif(?5 IS NULL, NULL,"
		    " json_object('resource_type', ?5, 'resource_id', ?6)))",
		    "tttttt", allow ? "allow" : "deny", vk_reason_name(res->reason),
		    res->key_id[0] ? res->key_id : NULL, allow ? vk_role_name(res->role) : NULL,
		    allow ? res->via_type : NULL, allow ? res->via_id : NULL);
		if (rc != KA_OK)
			return rc;
	} else if (allow) {
		printf("allow: key %s as %s via %s %s\n", res->key_id, vk_role_name(res->role),
		       res->via_type, res->via_id);
	} else {
		printf("deny: %s%s%s\n", vk_reason_name(res->reason), res->key_id[0] ? " key " : "",
		       res->key_id);
	}
	return allow ? KA_OK : KA_FAIL;
}

static int
check(struct ka_ctx *ctx)
{
	const struct ka_args *a = &ctx->args;
	struct vk_login lg = {ctx->db_path ? ctx->db_path : ctx->cfg.store_path,
	                      ctx->cfg.busy_timeout_ms, -1, ctx->cfg.sync.max_staleness};
	struct vk_request req;
	struct vk_result res;
	char *buf;

	if (ka_require(ctx, O_USER) || ka_id(ctx, O_MACHINE_ID))
		return KA_USAGE;
	if (a->nusers != 1)
		return ka_usage_error(ctx, "give exactly one --user");
	memset(&req, 0, sizeof req);
	req.user = a->users[0];
	req.now = ctx->now;
	req.machine_id = a->val[O_MACHINE_ID] ? a->val[O_MACHINE_ID] : ctx->cfg.machine_id;
	req.required = vk_config_required_role(&ctx->cfg, a->val[O_SERVICE], VK_ROLE_NONE);
	req.service = a->val[O_SERVICE];
	req.rhost = a->val[O_RHOST];
	if ((buf = sodium_malloc(READ_CAP)) == NULL)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	req.token = buf;
	req.token_len = read_token(buf);
	vk_authorize(&lg, &req, &res);
	sodium_free(buf);
	if (res.decision == VK_DECISION_ERROR && res.reason != VK_REASON_STALE)
		return ka_fail(res.reason == VK_REASON_NOMEM ? VK_ERR_NOMEM : VK_ERR_STORE,
		               res.err);
	/* SQLite's JSON functions build the answer; the store is closed by now */
	if (sqlite3_open(":memory:", &ctx->db) != SQLITE_OK)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	return print_decision(ctx, &res);
}

static int
events(struct ka_ctx *ctx)
{
	static const char *const headers[] = {"AT",     "KIND", "MACHINE", "ACTOR",
	                                      "ACTION", "KEY",  "DETAIL",  NULL};
	const char *limit_s = ctx->args.val[O_LIMIT], *kind = ctx->args.val[O_KIND];
	int64_t since = 0, limit = 100;
	char *end;
	int rc;

	if (ka_id(ctx, O_KEY_ID) || ka_id(ctx, O_MACHINE_ID) || ka_duration(ctx, O_SINCE, &since))
		return KA_USAGE;
	if (kind != NULL && strcmp(kind, "login") != 0 && strcmp(kind, "session") != 0 &&
	    strcmp(kind, "admin") != 0)
		return ka_usage_error(ctx, "--kind must be login, session or admin");
	if (limit_s != NULL) {
		errno = 0;
		limit = strtoll(limit_s, &end, 10);
		if (errno != 0 || end == limit_s || *end != '\0' || limit < 1 || limit > INT_MAX)
			return ka_usage_error(ctx, "--limit must be a positive number");
	}
	if ((rc = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return rc;
/* the order is in a subquery, so that json_group_array sees the rows oldest first too */
#define EVENTS_FROM                                                                                \
	" FROM (SELECT * FROM (SELECT * FROM events WHERE (?1 IS NULL OR key_id = ?1)"             \
	" AND (?2 = 0 OR at >= ?2) AND (?4 IS NULL OR machine_id = ?4)"                            \
	" AND (?5 IS NULL OR kind = ?5) ORDER BY id DESC LIMIT ?3) ORDER BY id)"
#define EVENTS_ARGS                                                                                \
	"tiitt", ctx->args.val[O_KEY_ID], since ? ctx->now - since : 0, limit,                     \
	    ctx->args.val[O_MACHINE_ID], kind
	if (ctx->json)
		return ka_print_json(
		    ctx,
		    "SELECT json_group_array(json_object('id', id, 'at', " KA_TIME_SQL(
		        "at") ", 'kind', kind, 'machine_id', machine_id, 'key_id', key_id,"
		              " 'user', user, 'service', service, 'rhost', rhost, 'decision', "
		              "decision,"
		              " 'reason', reason, 'actor', actor, 'effective_user', effective,"
		              " 'action', action, 'detail', detail, 'session', iif(kind ="
		              " 'session', json_object('pid', session_pid, 'logind_session',"
		              " session_logind), NULL)))" EVENTS_FROM,
		    EVENTS_ARGS);
	/* a machine's event: the user, and where from; an admin's: the person, and what */
	return ka_print_table(
	    ctx, headers,
	    "SELECT " KA_TIME_SQL(
	        "at") ", kind, machine_id,"
	              " coalesce(actor || iif(effective IS NULL OR effective = actor,"
	              " '', ' (as ' || effective || ')'), user), action, key_id,"
	              " iif(kind = 'admin', detail, trim(coalesce('service=' ||"
	              " service, '') || coalesce(' rhost=' || rhost, '') ||"
	              " coalesce(' reason=' || reason, '') || coalesce(' pid=' ||"
	              " session_pid, '')))" EVENTS_FROM,
	    EVENTS_ARGS);
#undef EVENTS_ARGS
#undef EVENTS_FROM
}

const struct ka_command ka_check_commands[] = {
    {"check", NULL, check, OPT(O_USER) | OPT(O_SERVICE) | OPT(O_MACHINE_ID) | OPT(O_RHOST),
     "--user U [--service S] [--machine-id ID] [--rhost H]  < token",
     "Run the login decision on a token read from stdin: exit 0 allow, 1 deny."},
    {"events", NULL, events,
     OPT(O_KEY_ID) | OPT(O_MACHINE_ID) | OPT(O_KIND) | OPT(O_SINCE) | OPT(O_LIMIT),
     "[--machine-id ID] [--key-id ID] [--kind login|session|admin] [--since DUR] [--limit N]",
     "Show the audit trail (on the authority, every machine's logins too), oldest first."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
