/*
 * keyadm.c - main(): who is asking, the command line parsed into a
 * command and its options, the config loaded, and the command run.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "duration.h"
#include "keyadm.h"

#define GLOBAL_BIT(c) (1u << ((c)-G_CONFIG))

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
		ka_print_help(ctx->cmd);
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
	while ((c = getopt_long(argc, argv, "+", ka_options, NULL)) != -1)
		if ((rc = set_option(ctx, c, optarg, offending(argv, short_opt))) != -1)
			return rc;
	return -1;
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

	/* shell completion (complete.c); hidden from --help */
	if (argc >= 2 && strcmp(argv[1], "--complete") == 0)
		return ka_complete(argc - 2, argv + 2);

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
	ctx.cmd = ka_find_command(argc - optind, argv + optind, &consumed);
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
