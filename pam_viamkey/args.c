/*
 * args.c - parsing the module's arguments.
 *
 * An argument this file does not know fails closed: a typo such as
 * "use_frist_pass" must not silently change where the token comes from.
 * So does an argument given twice ("role=owner role=viewer"): neither
 * value may silently win.
 */
#include "autoconfig.h"

#include <string.h>

#include <security/pam_modules.h>

#include "args.h"

static const struct {
	const char *name;
	unsigned flag;
} flag_args[] = {
    {"use_first_pass", VK_ARG_USE_FIRST_PASS},
    {"try_first_pass", VK_ARG_TRY_FIRST_PASS},
    {"forward_authtok", VK_ARG_FORWARD_AUTHTOK},
    {"nodelay", VK_ARG_NODELAY},
    {"debug", VK_ARG_DEBUG},
};

/* The value of "name=value" when s starts with prefix "name=", else NULL. */
static const char *
value_of(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* The name of argument s, "name=" included, for the given-twice check. */
static size_t
name_len(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq != NULL ? (size_t)(eq - s) + 1 : strlen(s);
}

static int
parse_one(const char *s, struct vk_pam_args *a, char err[VK_ERRLEN])
{
	const char *v;

	if ((v = value_of(s, "config=")) != NULL) {
		if (v[0] != '/') {
			vk_seterr(err, "config=%s: the path must be absolute", v);
			return -1;
		}
		a->config = v;
	} else if ((v = value_of(s, "role=")) != NULL) {
		if ((a->role = vk_role_parse(v)) == VK_ROLE_NONE) {
			vk_seterr(err, "role=%s: must be owner, operator or viewer", v);
			return -1;
		}
	} else if ((v = value_of(s, "prompt=")) != NULL) {
		if (v[0] == '\0') {
			vk_seterr(err, "prompt= must not be empty");
			return -1;
		}
		a->prompt = v;
	} else {
		for (size_t i = 0; i < sizeof flag_args / sizeof flag_args[0]; i++) {
			if (strcmp(s, flag_args[i].name) == 0) {
				a->flags |= flag_args[i].flag;
				return 0;
			}
		}
		vk_seterr(err, "unknown argument \"%s\"", s);
		return -1;
	}
	return 0;
}

int
vk_pam_args_parse(int argc, const char **argv, struct vk_pam_args *a, char err[VK_ERRLEN])
{
	memset(a, 0, sizeof *a);
	for (int i = 0; i < argc; i++) {
		size_t n = name_len(argv[i]);

		for (int j = 0; j < i; j++) {
			if (name_len(argv[j]) == n && strncmp(argv[i], argv[j], n) == 0) {
				vk_seterr(err, "argument \"%.*s\" given twice", (int)n, argv[i]);
				goto refused;
			}
		}
		if (parse_one(argv[i], a, err) != 0)
			goto refused;
	}
	return PAM_SUCCESS;
refused:
	/* none of a refused line applies, forward_authtok included, whatever its place */
	memset(a, 0, sizeof *a);
	return PAM_SERVICE_ERR;
}
