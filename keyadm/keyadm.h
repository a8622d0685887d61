/*
 * keyadm.h - what keyadm's command handlers share.
 *
 * Handlers return an exit status: KA_OK, KA_FAIL (refused or failed, one
 * "keyadm: " line on stderr) or KA_USAGE.
 */
#ifndef KEYADM_H
#define KEYADM_H

#include <sqlite3.h>
#include <stdint.h>

#include "config.h"
#include "store.h"
#include "vk.h"

#define KA_OK    0
#define KA_FAIL  1
#define KA_USAGE 2

/* Options, one bit each; a command lists the ones it accepts. */
enum ka_opt {
	O_NAME,
	O_ORG_ID,
	O_LOCATION_ID,
	O_MACHINE_ID,
	O_KEY_ID,
	O_ROLE,
	O_USER,
	O_EXPIRES_IN,
	O_PROTECTED,
	O_GRACE,
	O_FINISH,
	O_SEARCH,
	O_EXPIRING,
	O_UNUSED_SINCE,
	O_SERVICE,
	O_RHOST,
	O_SINCE,
	O_LIMIT,
	O_ALL,
	O_ORGANIZATION,
	O_ORG,
	O_LOCATION,
	O_MACHINE,
	O_COUNT,
};

#define OPT(o) (1u << (o))

#define KA_MAX_USERS 64

struct ka_args {
	const char *val[O_COUNT]; /* value, or "" for a given flag; NULL when absent */
	const char *users[KA_MAX_USERS];
	size_t nusers;
};

struct ka_ctx {
	const char *config_path;
	const char *db_path;
	int json;
	struct vk_config cfg;
	sqlite3 *db;
	char actor[64];
	int64_t now;
	const struct ka_command *cmd;
	struct ka_args args;
};

struct ka_command {
	const char *noun;
	const char *verb; /* NULL for init, check and events */
	int (*run)(struct ka_ctx *ctx);
	uint32_t opts;     /* accepted options */
	const char *usage; /* options, as shown by --help */
	const char *help;
};

/* keyadm.c */
int ka_fail(vk_rc rc, const char *err);
int ka_usage_error(const struct ka_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int ka_open(struct ka_ctx *ctx, enum vk_open_mode mode);
int ka_require(struct ka_ctx *ctx, enum ka_opt o);
int ka_duration(struct ka_ctx *ctx, enum ka_opt o, int64_t *out);
int ka_id(struct ka_ctx *ctx, enum ka_opt o);
/* Runs fn in one BEGIN IMMEDIATE transaction: all of it is stored, or none. */
/* This host's machine: `given` (a --machine-id), else [machine] id, else init's record. */
vk_rc ka_host_machine(struct ka_ctx *ctx, const char *given, char out[VK_UUID_STRLEN + 1],
                      char *err);
int ka_write(struct ka_ctx *ctx, vk_rc (*fn)(struct ka_ctx *ctx, char *err));
vk_rc ka_event(struct ka_ctx *ctx, const char *action, const char *key_id, char *err,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
const char *ka_opt_name(enum ka_opt o);

/* output.c */
int ka_print_table(struct ka_ctx *ctx, const char *const *headers, const char *sql,
                   const char *types, ...);
int ka_print_json(struct ka_ctx *ctx, const char *sql, const char *types, ...);
int ka_print_token(struct ka_ctx *ctx, const char *key_id, const char *token);
int ka_print_key(struct ka_ctx *ctx, const char *key_id);
void ka_print_plain(const char *s);

/* command tables */
extern const struct ka_command ka_tree_commands[];
extern const struct ka_command ka_key_commands[];
extern const struct ka_command ka_check_commands[];

/* The SQL expression for a key's status, with ?1 bound to now. */
#define KA_STATUS_SQL                                                                              \
	"CASE WHEN k.disabled THEN 'disabled'"                                                     \
	" WHEN k.expires_at IS NOT NULL AND k.expires_at <= ?1 THEN 'expired'"                     \
	" WHEN EXISTS (SELECT 1 FROM secrets s WHERE s.key_id = k.id AND s.expires_at > ?1)"       \
	" THEN 'rotating' ELSE 'active' END"

/* Everything the store knows about key k but its secrets, as one JSON object; ?1 is now. */
#define KA_KEY_JSON                                                                                                                                              \
	"json_object("                                                                                                                                           \
	" 'id', k.id, 'name', k.name, 'preview', vk_preview(k.id),"                                                                                              \
	" 'created_at', " KA_TIME_SQL(                                                                                                                           \
	    "k.created_at") ","                                                                                                                                  \
	                    " 'created_by', k.created_by,"                                                                                                       \
	                    " 'disabled', json(iif(k.disabled, 'true', 'false')),"                                                                               \
	                    " 'protected', json(iif(k.protected, 'true', 'false')),"                                                                             \
	                    " 'expires_at', " KA_TIME_SQL(                                                                                                       \
	                        "k.expires_at") ","                                                                                                              \
	                                        " 'status', " KA_STATUS_SQL ","                                                                                  \
	                                        " 'users', (SELECT json_group_array(user) FROM"                                                                  \
	                                        "  (SELECT user FROM key_users WHERE key_id = "                                                                  \
	                                        "k.id ORDER BY user)),"                                                                                          \
	                                        " 'authorizations', (SELECT "                                                                                    \
	                                        "json_group_array(json_object('role', role,"                                                                     \
	                                        "  'resource_type', resource_type, "                                                                             \
	                                        "'resource_id', resource_id)) FROM"                                                                              \
	                                        "  (SELECT * FROM grants WHERE key_id = k.id "                                                                   \
	                                        "ORDER BY resource_type, resource_id)),"                                                                         \
	                                        " 'secrets', (SELECT "                                                                                           \
	                                        "json_group_array(json_object("                                                                                  \
	                                        "  'created_at', " KA_TIME_SQL(                                                                                  \
	                                            "created_at") ","                                                                                            \
	                                                          "  'expires_at', " KA_TIME_SQL(                                                                \
	                                                              "expires_at") ")) FROM"                                                                    \
	                                                                            "  (SELECT * "                                                               \
	                                                                            "FROM "                                                                      \
	                                                                            "secrets "                                                                   \
	                                                                            "WHERE "                                                                     \
	                                                                            "key_id = "                                                                  \
	                                                                            "k.id"                                                                       \
	                                                                            "   AND "                                                                    \
	                                                                            "(expires_at "                                                               \
	                                                                            "IS NULL OR "                                                                \
	                                                                            "expires_at "                                                                \
	                                                                            "> ?1) ORDER "                                                               \
	                                                                            "BY id)),"                                                                   \
	                                                                            " 'last_used'"                                                               \
	                                                                            ", "                                                                         \
	                                                                            "iif(k.last_"                                                                \
	                                                                            "used_at IS "                                                                \
	                                                                            "NULL, NULL, "                                                               \
	                                                                            "json_object("                                                               \
	                                                                            "  "                                                                         \
	                                                                            "'at',"                                                                      \
	                                                                            " " KA_TIME_SQL(                                                             \
	                                                                                "k.last_"                                                                \
	                                                                                "used_at") ","                                                           \
	                                                                                           "  'service', k.last_used_service, 'user', k.last_used_user," \
	                                                                                           "  'rhost', k.last_used_rhost)))"

#define KA_TIME_SQL(col) "strftime('%Y-%m-%dT%H:%M:%SZ', " col ", 'unixepoch')"

#endif
