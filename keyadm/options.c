/*
 * options.c - keyadm's options: the table getopt_long() reads, which
 * --complete and --help share, their names, and the checks of their values.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "keyadm.h"
#include "token.h"

const struct option ka_options[] = {
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
    {"root-key", required_argument, NULL, O_ROOT_KEY},
    {"new-root-key", required_argument, NULL, O_NEW_ROOT_KEY},
    {"out", required_argument, NULL, O_OUT},
    {"standby", no_argument, NULL, O_STANDBY},
    {"force", no_argument, NULL, O_FORCE},
    {"epoch", required_argument, NULL, O_EPOCH},
    {"certificate", required_argument, NULL, O_CERTIFICATE},
    {"public-key", required_argument, NULL, O_PUBLIC_KEY},
    {"ttl", required_argument, NULL, O_TTL},
    {"uses", required_argument, NULL, O_USES},
    {"id", required_argument, NULL, O_ID},
    {"kind", required_argument, NULL, O_KIND},
    {"config", required_argument, NULL, G_CONFIG},
    {"db", required_argument, NULL, G_DB},
    {"json", no_argument, NULL, G_JSON},
    {"help", no_argument, NULL, G_HELP},
    {"version", no_argument, NULL, G_VERSION},
    {NULL, 0, NULL, 0},
};

const char *
ka_opt_name(enum ka_opt o)
{
	for (const struct option *lo = ka_options; lo->name != NULL; lo++)
		if (lo->val == (int)o)
			return lo->name;
	return "?";
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
ka_number(struct ka_ctx *ctx, enum ka_opt o, int64_t min, int64_t max, int64_t *out)
{
	const char *v = ctx->args.val[o];
	size_t digits;

	if (v == NULL)
		return 0;
	/* digits only: sscanf() takes "2junk" as 2, and " 5" and "+3" too */
	digits = strspn(v, "0123456789");
	if (digits == 0 || digits > 18 || v[digits] != '\0' ||
	    (*out = strtoll(v, NULL, 10)) < min || *out > max) {
		ka_usage_error(ctx, "--%s must be a number from %lld to %lld", ka_opt_name(o),
		               (long long)min, (long long)max);
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
