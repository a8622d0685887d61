/*
 * keyadm.c - argument parsing, dispatch and the shared plumbing of keyadm.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "duration.h"
#include "keyadm.h"
#include "token.h"

enum { G_CONFIG = O_COUNT + 1, G_DB, G_JSON, G_HELP, G_VERSION };

#define GLOBAL_BIT(c) (1u << ((c)-G_CONFIG))

static const struct option long_options[] = {
    {"name", required_argument, NULL, O_NAME},
    {"org-id", required_argument, NULL, O_ORG_ID},
    {"location-id", required_argument, NULL, O_LOCATION_ID},
    {"machine-id", required_argument, NULL, O_MACHINE_ID},
    {"key-id", required_argument, NULL, O_KEY_ID},
    {"role", required_argument, NULL, O_ROLE},
    {"user", required_argument, NULL, O_USER},
    {"expires-in", required_argument, NULL, O_EXPIRES_IN},
    {"protected", no_argument, NULL, O_PROTECTED},
    {"grace", required_argument, NULL, O_GRACE},
    {"finish", no_argument, NULL, O_FINISH},
    {"search", required_argument, NULL, O_SEARCH},
    {"expiring", required_argument, NULL, O_EXPIRING},
    {"unused-since", required_argument, NULL, O_UNUSED_SINCE},
    {"service", required_argument, NULL, O_SERVICE},
    {"rhost", required_argument, NULL, O_RHOST},
    {"since", required_argument, NULL, O_SINCE},
    {"limit", required_argument, NULL, O_LIMIT},
    {"all", no_argument, NULL, O_ALL},
    {"organization", required_argument, NULL, O_ORGANIZATION},
    {"org", required_argument, NULL, O_ORG},
    {"location", required_argument, NULL, O_LOCATION},
    {"machine", required_argument, NULL, O_MACHINE},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"config", required_argument, NULL, G_CONFIG},
    {"db", required_argument, NULL, G_DB},
    {"json", no_argument, NULL, G_JSON},
    {"help", no_argument, NULL, G_HELP},
    {"version", no_argument, NULL, G_VERSION},
    {NULL, 0, NULL, 0},
};

static const struct ka_command *const tables[] = {
    ka_tree_commands,
    ka_key_commands,
    ka_check_commands,
    ka_sync_commands,
};

const char *
ka_opt_name(enum ka_opt o)
{
	for (const struct option *lo = long_options; lo->name != NULL; lo++)
		if (lo->val == (int)o)
			return lo->name;
	return "?";
}

int
ka_fail(vk_rc rc, const char *err)
{
	fprintf(stderr, "keyadm: %s\n", err);
	return rc == VK_ERR_USAGE ? KA_USAGE : KA_FAIL;
}

static void
command_name(const struct ka_command *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "");
}

int
ka_usage_error(const struct ka_ctx *ctx, const char *fmt, ...)
{
	char name[64];
	va_list ap;

	fputs("keyadm: ", stderr);
	if (ctx->cmd != NULL) {
		command_name(ctx->cmd, name, sizeof name);
		fprintf(stderr, "%s: ", name);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'keyadm --help'.\n", stderr);
	return KA_USAGE;
}

static void
print_help(const struct ka_command *only)
{
	char name[64];

	if (only == NULL)
		printf("Usage: keyadm [--config FILE] [--db FILE] [--json] COMMAND [OPTIONS]\n\n"
		       "Manage viamkey's scoped API keys and their store.\n\nCommands:\n");
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		for (const struct ka_command *c = tables[t]; c->noun != NULL; c++) {
			if (only != NULL && c != only)
				continue;
			command_name(c, name, sizeof name);
			if (only != NULL)
				printf("Usage: keyadm %s %s\n\n%s\n", name, c->usage, c->help);
			else
				printf("  %-28s %s\n", name, c->help);
		}
	}
	printf("\nGlobal options, anywhere on the line:\n"
	       "  --config FILE   config file (default %s, or $VIAMKEY_CONFIG)\n"
	       "  --db FILE       store, overriding [store] path\n"
	       "  --json          print one JSON document\n"
	       "  --help          this help; after a command, that command's\n"
	       "  --version       print the version\n"
	       "Exit status: 0 success (check: allow), 1 refused or failed (check: deny),"
	       " 2 usage error.\nSee keyadm(8).\n",
	       VK_DEFAULT_CONFIG);
}

/* Finds the command named by argv; *consumed is how many words it took. */
static const struct ka_command *
find_command(int argc, char **argv, int *consumed)
{
	for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
		for (const struct ka_command *c = tables[t]; c->noun != NULL; c++) {
			char verb[32];
			int words = 1;

			if (argc < 1 || strcmp(argv[0], c->noun) != 0)
				continue;
			if (c->verb != NULL) {
				/* "api-key create" spans two words */
				if (argc >= 3 && strcmp(argv[1], "api-key") == 0)
					snprintf(verb, sizeof verb, "api-key %s", argv[2]),
					    words = 3;
				else if (argc >= 2)
					snprintf(verb, sizeof verb, "%s", argv[1]), words = 2;
				else
					continue;
				if (strcmp(verb, c->verb) != 0)
					continue;
			}
			*consumed = words;
			return c;
		}
	}
	return NULL;
}

static int
set_option(struct ka_ctx *ctx, int c, const char *arg, const char *word)
{
	struct ka_args *a = &ctx->args;

	if (c == '?')
		return ka_usage_error(ctx, "unknown option, or missing value: \"%s\"", word);
	if (arg != NULL && *arg == '\0')
		return ka_usage_error(ctx, "--%s needs a value", ka_opt_name((enum ka_opt)c));
	if (c >= G_CONFIG) {
		if (ctx->globals_given & GLOBAL_BIT(c))
			return ka_usage_error(ctx, "--%s given twice", ka_opt_name((enum ka_opt)c));
		ctx->globals_given |= GLOBAL_BIT(c);
	}
	switch (c) {
	case G_CONFIG:
		ctx->config_path = arg;
		return -1;
	case G_DB:
		ctx->db_path = arg;
		return -1;
	case G_JSON:
		ctx->json = 1;
		return -1;
	case G_HELP:
		print_help(ctx->cmd);
		return KA_OK;
	case G_VERSION:
		printf("keyadm (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		return KA_OK;
	default:
		break;
	}
	if (ctx->cmd == NULL || (ctx->cmd->opts & OPT(c)) == 0)
		return ka_usage_error(ctx, "--%s is not an option of this command",
		                      ka_opt_name((enum ka_opt)c));
	if (c == O_USER) {
		if (a->nusers == KA_MAX_USERS)
			return ka_usage_error(ctx, "at most %d --user options", KA_MAX_USERS);
		a->users[a->nusers++] = arg;
		return -1;
	}
	if (a->val[c] != NULL)
		return ka_usage_error(ctx, "--%s given twice", ka_opt_name((enum ka_opt)c));
	a->val[c] = arg ? arg : "";
	return -1;
}

/*
 * The word getopt stopped at: a short option inside a cluster such as -xy
 * (optopt is then printable), else the last argument it read.
 */
static const char *
offending(char **argv, char buf[3])
{
	if (optopt > ' ' && optopt < 0x7f) {
		buf[0] = '-', buf[1] = (char)optopt, buf[2] = '\0';
		return buf;
	}
	return argv[optind - 1];
}

/* Parses options from argv[optind..]; returns -1 to go on, or an exit status. */
static int
parse_options(struct ka_ctx *ctx, int argc, char **argv)
{
	char short_opt[3];
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", long_options, NULL)) != -1)
		if ((rc = set_option(ctx, c, optarg, offending(argv, short_opt))) != -1)
			return rc;
	return -1;
}

int
ka_require(struct ka_ctx *ctx, enum ka_opt o)
{
	if (ctx->args.val[o] == NULL && !(o == O_USER && ctx->args.nusers > 0)) {
		ka_usage_error(ctx, "--%s is required", ka_opt_name(o));
		return -1;
	}
	return 0;
}

int
ka_duration(struct ka_ctx *ctx, enum ka_opt o, int64_t *out)
{
	*out = 0;
	if (ctx->args.val[o] == NULL)
		return 0;
	if (vk_duration_parse(ctx->args.val[o], out) != 0) {
		ka_usage_error(ctx, "--%s \"%s\" is not a duration like 90s, 15m, 24h, 7d or 2w",
		               ka_opt_name(o), ctx->args.val[o]);
		return -1;
	}
	return 0;
}

int
ka_id(struct ka_ctx *ctx, enum ka_opt o)
{
	const char *v = ctx->args.val[o];

	if (v != NULL && !vk_uuid_valid(v)) {
		ka_usage_error(ctx, "--%s \"%s\" is not a lowercase UUID", ka_opt_name(o), v);
		return -1;
	}
	return 0;
}

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
	struct vk_txn t = {
	    .db = ctx->db, .actor = ctx->actor, .effective = ctx->effective, .now = ctx->now};
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

/* The name of uid for the audit trail: its user name, or "uid N". */
static void
user_name(uid_t uid, char *out, size_t size)
{
	struct passwd *pw = getpwuid(uid);

	if (pw != NULL && vk_user_valid(pw->pw_name))
		snprintf(out, size, "%s", pw->pw_name);
	else
		snprintf(out, size, "uid %u", (unsigned)uid);
}

/* The login UID the kernel keeps for this session (pam_loginuid), or -1. */
static long long
login_uid(void)
{
	char buf[16];
	long long v = -1;
	ssize_t n;
	int fd = open("/proc/self/loginuid", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n > 0) {
		char *end;

		buf[n] = '\0';
		errno = 0;
		v = strtoll(buf, &end, 10);
		if (errno != 0 || end == buf || v < 0 || v >= 4294967295LL)
			v = -1;
	}
	return v;
}

/*
 * Who is asking: the login UID, which survives sudo and su; else, when
 * sudo started keyadm (real uid 0), SUDO_USER; else the real uid. The
 * effective user is recorded beside it.
 */
static void
set_actor(struct ka_ctx *ctx)
{
	const char *sudo_user = getenv("SUDO_USER");
	long long luid = login_uid();

	if (luid >= 0)
		user_name((uid_t)luid, ctx->actor, sizeof ctx->actor);
	else if (getuid() == 0 && sudo_user != NULL && vk_user_valid(sudo_user))
		snprintf(ctx->actor, sizeof ctx->actor, "%s", sudo_user);
	else
		user_name(getuid(), ctx->actor, sizeof ctx->actor);
	user_name(geteuid(), ctx->effective, sizeof ctx->effective);
}

int
main(int argc, char **argv)
{
	struct ka_ctx ctx;
	char err[VK_ERRLEN];
	int rc, consumed = 0;
	vk_rc vrc;

	/* shell completion (complete.c), from the tables below; hidden from --help */
	if (argc >= 2 && strcmp(argv[1], "--complete") == 0)
		return ka_complete(argc - 2, argv + 2, tables, sizeof tables / sizeof tables[0],
		                   long_options);

	memset(&ctx, 0, sizeof ctx);
	/*
	 * One thread, one connection: SQLite need not lock a mutex around every
	 * call and every allocation (a tenth of a long listing's time).
	 */
	(void)sqlite3_config(SQLITE_CONFIG_SINGLETHREAD);
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	if (sodium_init() < 0) {
		fputs("keyadm: cannot initialise libsodium\n", stderr);
		return KA_FAIL;
	}
	ctx.config_path = getenv("VIAMKEY_CONFIG");
	if (ctx.config_path == NULL || *ctx.config_path == '\0')
		ctx.config_path = VK_DEFAULT_CONFIG;
	ctx.now = vk_now();
	set_actor(&ctx);

	/* global options before the command */
	optind = 1;
	if ((rc = parse_options(&ctx, argc, argv)) != -1)
		return rc;
	if (optind >= argc)
		return ka_usage_error(&ctx, "no command given");
	ctx.cmd = find_command(argc - optind, argv + optind, &consumed);
	if (ctx.cmd == NULL)
		return ka_usage_error(&ctx, "unknown command \"%s%s%s\"", argv[optind],
		                      optind + 1 < argc ? " " : "",
		                      optind + 1 < argc ? argv[optind + 1] : "");
	/* the command's own options, and global ones among them */
	optind += consumed - 1;
	argv[optind] = argv[0];
	{
		char **sub = argv + optind;
		int subc = argc - optind;

		optind = 1;
		if ((rc = parse_options(&ctx, subc, sub)) != -1)
			return rc;
		if (optind < subc)
			return ka_usage_error(&ctx, "unexpected argument \"%s\"", sub[optind]);
	}

	if ((vrc = vk_config_load(ctx.config_path, &ctx.cfg, err)) != VK_OK) {
		rc = ka_fail(vrc == VK_ERR_USAGE ? VK_ERR_STORE : vrc, err);
		goto out;
	}
	rc = ctx.cmd->run(&ctx);
	if (rc == KA_OK)
		rc = ka_flush("");
out:
	if (ctx.db != NULL)
		sqlite3_close(ctx.db);
	vk_config_free(&ctx.cfg);
	return rc;
}
