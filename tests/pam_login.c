/*
 * pam_login - one full PAM transaction through the real libpam, answering
 * the password prompt with a token read from stdin.
 *
 *   pam_login [--confdir DIR] [--service NAME] [--rhost HOST] USER < token
 *
 * It runs pam_authenticate, pam_acct_mgmt and pam_open_session, prints
 * each result and the VIAMKEY_* variables the session received, and exits
 * 0 only when all three succeed. The quick start uses it for the demo
 * login; tests use it to drive a service directory of their own.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <security/pam_appl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANSWER_MAX 4096

struct answer {
	char *text; /* sodium_malloc'd */
};

static int
converse(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	const struct answer *a = data;
	struct pam_response *r = calloc((size_t)n, sizeof *r);

	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		switch (msg[i]->msg_style) {
		case PAM_PROMPT_ECHO_OFF:
		case PAM_PROMPT_ECHO_ON:
			fprintf(stderr, "pam_login: prompt \"%s\"\n", msg[i]->msg);
			if ((r[i].resp = strdup(a->text)) == NULL)
				goto fail;
			break;
		default:
			fprintf(stderr, "pam_login: %s\n", msg[i]->msg);
			break;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
fail:
	for (int i = 0; i < n; i++)
		free(r[i].resp);
	free(r);
	return PAM_BUF_ERR;
}

static void
read_answer(struct answer *a)
{
	size_t len;

	if (fgets(a->text, ANSWER_MAX, stdin) == NULL)
		a->text[0] = '\0';
	len = strcspn(a->text, "\r\n");
	a->text[len] = '\0';
}

static int
step(const char *what, pam_handle_t *ph, int rc)
{
	printf("%-16s %s\n", what, pam_strerror(ph, rc));
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"confdir", required_argument, NULL, 'c'},
	    {"service", required_argument, NULL, 's'},
	    {"rhost", required_argument, NULL, 'r'},
	    {NULL, 0, NULL, 0},
	};
	const char *confdir = NULL, *service = "viamkey-demo", *rhost = NULL;
	struct answer a;
	struct pam_conv conv = {converse, &a};
	pam_handle_t *ph = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			confdir = optarg;
		else if (c == 's')
			service = optarg;
		else if (c == 'r')
			rhost = optarg;
		else
			return 2;
	}
	if (optind + 1 != argc || sodium_init() < 0) {
		fputs("usage: pam_login [--confdir DIR] [--service NAME] [--rhost HOST] USER"
		      " < token\n",
		      stderr);
		return 2;
	}
	if ((a.text = sodium_malloc(ANSWER_MAX)) == NULL)
		return 1;
	read_answer(&a);
	rc = pam_start_confdir(service, argv[optind], &conv, confdir, &ph);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_login: pam_start_confdir: %s\n", pam_strerror(NULL, rc));
		sodium_free(a.text);
		return 1;
	}
	if (rhost != NULL)
		pam_set_item(ph, PAM_RHOST, rhost);
	if ((rc = step("authenticate", ph, pam_authenticate(ph, 0))) == PAM_SUCCESS &&
	    (rc = step("acct_mgmt", ph, pam_acct_mgmt(ph, 0))) == PAM_SUCCESS &&
	    (rc = step("open_session", ph, pam_open_session(ph, 0))) == PAM_SUCCESS) {
		static const char *const vars[] = {"VIAMKEY_KEY_ID", "VIAMKEY_KEY_NAME",
		                                   "VIAMKEY_ROLE"};

		for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
			const char *v = pam_getenv(ph, vars[i]);

			printf("%-16s %s\n", vars[i], v ? v : "(unset)");
		}
		pam_close_session(ph, 0);
	}
	pam_end(ph, rc);
	sodium_free(a.text);
	return rc == PAM_SUCCESS ? 0 : 1;
}
