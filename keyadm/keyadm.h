/*
 * keyadm.h - what keyadm's files share.
 *
 * Handlers return an exit status: KA_OK, KA_FAIL (refused or failed, one
 * "keyadm: " line on stderr) or KA_USAGE.
 *
 * A file uses only files below it in this list (tests/test-layers.sh
 * checks that no two use each other, directly or around a circle):
 *   keyadm.c     main(): who asks, the command line, the config, the run
 *   complete.c   keyadm --complete, for the shell
 *   commands.c   the table of every command, and --help
 *   cmd_*.c      the commands, each file with its table
 *   db.c         the store: opening it, this host's machine, one change
 *   output.c     tables and JSON
 *   options.c    the options, and the checks of their values
 *   fail.c       how a failure is reported
 */
#ifndef KEYADM_H
#define KEYADM_H

#include <getopt.h>
#include <sqlite3.h>
#include <stdint.h>

#include "config.h"
#include "model.h"
#include "store.h"
#include "txn.h"
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
	O_TIMEOUT,
	O_ROOT_KEY,
	O_NEW_ROOT_KEY,
	O_OUT,
	O_STANDBY,
	O_FORCE,
	O_EPOCH,
	O_CERTIFICATE,
	O_PUBLIC_KEY,
	O_TTL,
	O_USES,
	O_ID,
	O_KIND,
	O_COUNT,
};

/* Global options, accepted before or among any command's own. */
enum ka_global { G_CONFIG = O_COUNT + 1, G_DB, G_JSON, G_HELP, G_VERSION };

#define OPT(o) (UINT64_C(1) << (o))

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
	unsigned globals_given; /* global options seen, one bit each */
	struct vk_config cfg;
	sqlite3 *db;
	char actor[VK_USER_MAX + 1];      /* the person: login UID, else SUDO_USER, else the uid */
	char effective[VK_USER_MAX + 16]; /* the effective user, when it is not the person */
	int64_t now;
	const struct ka_command *cmd;
	struct ka_args args;
	int own_cert; /* ka_write() changes a standby's own certificate (txn.h) */
};

struct ka_command {
	const char *noun;
	const char *verb; /* NULL for init, check and events */
	int (*run)(struct ka_ctx *ctx);
	uint64_t opts;     /* accepted options */
	const char *usage; /* options, as shown by --help */
	const char *help;
};

/* A change: runs inside the transaction, records its events through t. */
typedef vk_rc (*ka_change_fn)(struct ka_ctx *ctx, struct vk_txn *t, char *err);
/* Prints what a change did, inside its transaction; KA_OK or a failure already reported. */
typedef int (*ka_report_fn)(struct ka_ctx *ctx);

/* fail.c */
/* Prints err as one "keyadm: " line; KA_USAGE for VK_ERR_USAGE, else KA_FAIL. */
int ka_fail(vk_rc rc, const char *err);
/* Prints a usage error, naming ctx's command if known; returns KA_USAGE. */
int ka_usage_error(const struct ka_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* "noun verb", or the noun alone, as --help and errors name a command. */
void ka_command_name(const struct ka_command *c, char *buf, size_t size);

/* options.c: every option, global ones included; a getopt_long() table */
extern const struct option ka_options[];
const char *ka_opt_name(enum ka_opt o);
/* 0, or -1 after a usage error: o is missing, not a duration, not a UUID. */
int ka_require(struct ka_ctx *ctx, enum ka_opt o);
int ka_duration(struct ka_ctx *ctx, enum ka_opt o, int64_t *out);
/* When o is given: decimal digits only, from min to max, into *out. */
int ka_number(struct ka_ctx *ctx, enum ka_opt o, int64_t min, int64_t max, int64_t *out);
int ka_id(struct ka_ctx *ctx, enum ka_opt o);

/* db.c */
/* Opens the store (--db, else [store] path) in mode; KA_OK or a failure reported. */
int ka_open(struct ka_ctx *ctx, enum vk_open_mode mode);
/*
 * Opens the store for administration and requires it to be the fleet's
 * authority; a replica's refusal names the authority. KA_OK, or a failure
 * reported.
 */
int ka_require_authority(struct ka_ctx *ctx);
/* This host's machine: `given` (a --machine-id), else [machine] id, else init's record. */
vk_rc ka_host_machine(struct ka_ctx *ctx, const char *given, char out[VK_UUID_STRLEN + 1],
                      char *err);
/*
 * Runs change in one BEGIN IMMEDIATE transaction, then report inside it,
 * and commits only once the report is written out: either the change is
 * stored and reported, or keyadm fails and the store is as it was.
 */
int ka_write(struct ka_ctx *ctx, ka_change_fn change, ka_report_fn report);

/* output.c */
int ka_print_table(struct ka_ctx *ctx, const char *const *headers, const char *sql,
                   const char *types, ...);
/*
 * The same table for sql whose rows come in any order, with two more
 * columns, not shown: rows are shown as ORDER BY those two (an integer,
 * then a text) would give them.
 */
int ka_print_table_sorted(struct ka_ctx *ctx, const char *const *headers, const char *sql,
                          const char *types, ...);
int ka_print_json(struct ka_ctx *ctx, const char *sql, const char *types, ...);
/*
 * The JSON array of the first column of sql's rows (each a JSON text, or
 * NULL for null), as json_group_array(json(...)) would print it with the
 * rows ORDER BY column 2 (an integer), column 3 (a text); the rows may come
 * in any order. Nothing is printed unless every row was read.
 */
int ka_print_json_array(struct ka_ctx *ctx, const char *sql, const char *types, ...);
int ka_print_token(struct ka_ctx *ctx, const char *key_id, const char *token);
int ka_print_key(struct ka_ctx *ctx, const char *key_id);
/* Registers ka_time() (KA_TIME_SQL) on db. */
vk_rc ka_register_functions(sqlite3 *db, char *err);
/* Flushes stdout; KA_OK, or KA_FAIL after one line saying what failed, ending in `then`. */
int ka_flush(const char *then);

/* command tables, one per cmd_*.c */
extern const struct ka_command ka_tree_commands[];
extern const struct ka_command ka_key_commands[];
extern const struct ka_command ka_check_commands[];
extern const struct ka_command ka_session_commands[];
extern const struct ka_command ka_sync_commands[];
extern const struct ka_command ka_authority_commands[];
extern const struct ka_command ka_bus_commands[];

/* cmd_bus.c: the bus keys of [sync] account_key (sodium_malloc()ed), or NULL after saying why. */
struct vk_bus_keys;
struct vk_bus_keys *ka_bus_keys_load(struct ka_ctx *ctx);

/* commands.c */
/* Every command table, NULL-terminated: dispatch, --help and --complete read these. */
extern const struct ka_command *const ka_command_tables[];
/* The command named by the first words of argv (*consumed of them), or NULL. */
const struct ka_command *ka_find_command(int argc, char **argv, int *consumed);
/* keyadm's --help, or the help of one command. */
void ka_print_help(const struct ka_command *only);

/* complete.c: `keyadm --complete [--] WORD... CURRENT`, from the tables and options */
int ka_complete(int argc, char **argv);

/*
 * A time as RFC 3339 UTC, NULL for NULL: strftime('%Y-%m-%dT%H:%M:%SZ',
 * col, 'unixepoch'), which ka_time() computes without SQLite's date
 * machinery for the integers it formats alike (1970 to 9999), leaving
 * every other value to strftime().
 */
#define KA_TIME_SQL(col)                                                                           \
	"coalesce(ka_time(" col "), strftime('%Y-%m-%dT%H:%M:%SZ', " col ", 'unixepoch'))"

/* The key object of SPEC §3, and its status, as one JSON object; ?1 now, key row k. */
// clang-format off
#define KA_KEY_JSON \
	"json_object('id', k.id, 'name', k.name, 'preview', vk_preview(k.id)," \
	" 'created_at', " KA_TIME_SQL("k.created_at") ", 'created_by', k.created_by," \
	" 'disabled', iif(k.disabled, json('true'), json('false'))," \
	" 'protected', iif(k.protected, json('true'), json('false'))," \
	" 'break_glass', iif(k.break_glass, json('true'), json('false'))," \
	" 'expires_at', " KA_TIME_SQL("k.expires_at") "," \
	" 'status', " VK_SQL_KEY_STATUS("k", "?1") "," \
	" 'users', (SELECT json_group_array(user) FROM" \
	"  (SELECT user FROM key_users WHERE key_id = k.id ORDER BY user))," \
	" 'authorizations', (SELECT json_group_array(json_object('role', role," \
	"  'resource_type', resource_type, 'resource_id', resource_id)) FROM" \
	"  (SELECT * FROM grants WHERE key_id = k.id ORDER BY resource_type, resource_id))," \
	" 'secrets', (SELECT json_group_array(json_object(" \
	"  'created_at', " KA_TIME_SQL("s.created_at") ", 'expires_at', " KA_TIME_SQL("s.expires_at") "))" \
	"  FROM (SELECT * FROM secrets s WHERE s.key_id = k.id AND " VK_SQL_SECRET_LIVE("s", "?1") \
	"  ORDER BY s.id) s)," \
	" 'last_used', iif(k.last_used_at IS NULL, NULL, json_object(" \
	"  'at', " KA_TIME_SQL("k.last_used_at") ", 'machine_id', k.last_used_machine," \
	"  'service', k.last_used_service," \
	"  'user', k.last_used_user, 'rhost', k.last_used_rhost)))"
// clang-format on

#endif
