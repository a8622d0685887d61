/*
 * args.h - the module's arguments from its pam.d line.
 *
 * vk_pam_args_parse() fills `a` from argv, whose strings it borrows: they
 * live as long as the PAM call. It returns PAM_SUCCESS, or PAM_SERVICE_ERR
 * for an unknown or malformed argument, or one given twice, with a message
 * in err for the caller to log.
 */
#ifndef VK_PAM_ARGS_H
#define VK_PAM_ARGS_H

#include "vk.h"

enum {
	VK_ARG_USE_FIRST_PASS = 1 << 0,
	VK_ARG_TRY_FIRST_PASS = 1 << 1,
	VK_ARG_FORWARD_AUTHTOK = 1 << 2,
	VK_ARG_NODELAY = 1 << 3,
	VK_ARG_DEBUG = 1 << 4,
};

struct vk_pam_args {
	const char *config; /* config=, an absolute path, or NULL */
	const char *prompt; /* prompt=, non-empty, or NULL */
	vk_role role;       /* role=, or VK_ROLE_NONE */
	unsigned flags;     /* VK_ARG_* */
};

int vk_pam_args_parse(int argc, const char **argv, struct vk_pam_args *a, char err[VK_ERRLEN]);

#endif
