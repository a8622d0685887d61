/*
 * pam_login - one full PAM transaction through the real libpam, answering
 * the password prompt with a token read from stdin.
 *
 *   pam_login [--confdir DIR] [--service NAME] [--rhost HOST] [--raw] USER < token
 *
 * It runs pam_authenticate, pam_acct_mgmt and pam_open_session, prints
 * each result and the VIAMKEY_* variables the session received, and exits
 * 0 only when all three succeed. The quick start uses it for the demo
 * login; tests use it to drive a service directory of their own.
 *
 * The answer is the first line of stdin, up to its first CR or LF. With
 * --raw it is all of stdin, byte for byte, line ends included, as an
 * application may pass an answer on: it must be shorter than ANSWER_MAX
 * bytes and hold no NUL byte (exit 2 otherwise).
 */
#include "autoconfig.h"

#include <getopt.h>
#include <security/pam_appl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pam_answer.h"

#define ANSWER_MAX 4096

/* One line of stdin, without its line end, into text (ANSWER_MAX bytes). */
static void
read_answer(char *text)
{
	if (fgets(text, ANSWER_MAX, stdin) == NULL)
		text[0] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
}

/* All of stdin into text (ANSWER_MAX bytes); -1 when too long or when it holds a NUL. */
static int
read_answer_raw(char *text)
{
	size_t n = fread(text, 1, ANSWER_MAX, stdin);

	if (n == ANSWER_MAX || ferror(stdin) || memchr(text, '\0', n) != NULL)
		return -1;
	text[n] = '\0';
	return 0;
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
	    {"raw", no_argument, NULL, 'R'},
	    {NULL, 0, NULL, 0},
	};
	const char *confdir = NULL, *service = "viamkey-demo", *rhost = NULL;
	char *text; /* sodium_malloc'd: it holds the token */
	struct pam_answer a = {NULL, "pam_login", 1};
	struct pam_conv conv = {pam_answer_converse, &a};
	pam_handle_t *ph = NULL;
	int c, rc, raw = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			confdir = optarg;
		else if (c == 's')
			service = optarg;
		else if (c == 'r')
			rhost = optarg;
		else if (c == 'R')
			raw = 1;
		else
			return 2;
	}
	if (optind + 1 != argc || sodium_init() < 0) {
		fputs(
		    "usage: pam_login [--confdir DIR] [--service NAME] [--rhost HOST] [--raw] USER"
		    " < token\n",
		    stderr);
		return 2;
	}
	if ((text = sodium_malloc(ANSWER_MAX)) == NULL)
		return 1;
	if (!raw) {
		read_answer(text);
	} else if (read_answer_raw(text) != 0) {
		fputs("pam_login: --raw: the answer is too long or holds a NUL byte\n", stderr);
		sodium_free(text);
		return 2;
	}
	a.text = text;
	rc = pam_start_confdir(service, argv[optind], &conv, confdir, &ph);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_login: pam_start_confdir: %s\n", pam_strerror(NULL, rc));
		sodium_free(text);
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
	sodium_free(text);
	return rc == PAM_SUCCESS ? 0 : 1;
}
