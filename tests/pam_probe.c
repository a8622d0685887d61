/*
 * pam_probe.c - the module tests' view of PAM_AUTHTOK, which libpam hides
 * from applications. It decides nothing: every entry point returns
 * PAM_IGNORE.
 *
 * Stacked after pam_viamkey.so, it copies what PAM_AUTHTOK holds when its
 * turn comes into the PAM environment as VK_PROBE_AUTHTOK ("<unset>" when
 * nothing). With the argument "set", stacked before, it plays an earlier
 * module that read a password: PAM_AUTHTOK becomes the value of
 * VK_PROBE_SET in the PAM environment, when the test put one there.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_modules.h>

PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const void *item = NULL;
	char *var;
	int rc;

	(void)flags;
	if (argc == 1 && strcmp(argv[0], "set") == 0) {
		const char *value = pam_getenv(pamh, "VK_PROBE_SET");

		rc = value != NULL ? pam_set_item(pamh, PAM_AUTHTOK, value) : PAM_SUCCESS;
		return rc == PAM_SUCCESS ? PAM_IGNORE : rc;
	}
	if (pam_get_item(pamh, PAM_AUTHTOK, &item) != PAM_SUCCESS)
		return PAM_SYSTEM_ERR;
	if (asprintf(&var, "VK_PROBE_AUTHTOK=%s", item != NULL ? (const char *)item : "<unset>") <
	    0)
		return PAM_BUF_ERR;
	rc = pam_putenv(pamh, var);
	free(var);
	return rc == PAM_SUCCESS ? PAM_IGNORE : rc;
}

PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)pamh, (void)flags, (void)argc, (void)argv;
	return PAM_IGNORE;
}
