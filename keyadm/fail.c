/*
 * fail.c - how keyadm says that a command failed: one line on stderr that
 * starts "keyadm: ", and the exit status that goes with it.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>

#include "keyadm.h"

void
ka_command_name(const struct ka_command *c, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s", c->noun, c->verb ? " " : "", c->verb ? c->verb : "");
}

int
ka_fail(vk_rc rc, const char *err)
{
	fprintf(stderr, "keyadm: %s\n", err);
	return rc == VK_ERR_USAGE ? KA_USAGE : KA_FAIL;
}

int
ka_usage_error(const struct ka_ctx *ctx, const char *fmt, ...)
{
	char name[64];
	va_list ap;

	fputs("keyadm: ", stderr);
	if (ctx->cmd != NULL) {
		ka_command_name(ctx->cmd, name, sizeof name);
		fprintf(stderr, "%s: ", name);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'keyadm --help'.\n", stderr);
	return KA_USAGE;
}
