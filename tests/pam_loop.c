/*
 * pam_loop - many full PAM transactions through the real libpam, for the
 * concurrency test.
 *
 *   pam_loop [--confdir DIR] [--service NAME] [--seconds N | --count N] USER < token
 *
 * Each transaction is pam_start_confdir, pam_authenticate, pam_acct_mgmt
 * and pam_end, answering every prompt with the token read once from stdin.
 * It prints one summary line (transactions, successes, failures, slowest
 * and mean time) and, on stderr, the first few failures with the step and
 * pam_strerror text. Exit 0 only when at least one transaction ran and
 * every one succeeded.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pam_answer.h"

#define ANSWER_MAX     4096
#define FAILURES_SHOWN 10

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One transaction; returns PAM_SUCCESS or the first failure, naming its step in *step. */
static int
transaction(const char *service, const char *user, const char *confdir, struct pam_conv *conv,
            const char **step)
{
	pam_handle_t *ph = NULL;
	int rc;

	*step = "pam_start_confdir";
	if ((rc = pam_start_confdir(service, user, conv, confdir, &ph)) != PAM_SUCCESS)
		return rc;
	*step = "authenticate";
	if ((rc = pam_authenticate(ph, 0)) == PAM_SUCCESS) {
		*step = "acct_mgmt";
		rc = pam_acct_mgmt(ph, 0);
	}
	if (pam_end(ph, rc) != PAM_SUCCESS && rc == PAM_SUCCESS) {
		*step = "pam_end";
		rc = PAM_SYSTEM_ERR;
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"confdir", required_argument, NULL, 'c'},
	    {"service", required_argument, NULL, 's'},
	    {"seconds", required_argument, NULL, 't'},
	    {"count", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};
	const char *confdir = NULL, *service = "viamkey-test";
	char token[ANSWER_MAX];
	struct pam_answer answer = {token, "pam_loop", 0};
	struct pam_conv conv = {pam_answer_converse, &answer};
	long seconds = 0, count = 0, done = 0, ok = 0;
	double start, slowest = 0, total = 0;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'c')
			confdir = optarg;
		else if (c == 's')
			service = optarg;
		else if (c == 't')
			seconds = strtol(optarg, NULL, 10);
		else if (c == 'n')
			count = strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (optind + 1 != argc || (seconds <= 0) == (count <= 0)) {
		fputs("usage: pam_loop [--confdir DIR] [--service NAME] (--seconds N | --count N)"
		      " USER < token\n",
		      stderr);
		return 2;
	}
	if (fgets(token, sizeof token, stdin) == NULL)
		token[0] = '\0';
	token[strcspn(token, "\r\n")] = '\0';

	start = now_ms();
	while (count > 0 ? done < count : now_ms() - start < (double)seconds * 1e3) {
		double t0 = now_ms(), dt;
		const char *step;
		int rc = transaction(service, argv[optind], confdir, &conv, &step);

		dt = now_ms() - t0;
		total += dt;
		if (dt > slowest)
			slowest = dt;
		done++;
		if (rc == PAM_SUCCESS)
			ok++;
		else if (done - ok <= FAILURES_SHOWN)
			fprintf(stderr, "pam_loop: transaction %ld: %s: %s\n", done, step,
			        pam_strerror(NULL, rc));
	}
	printf("pam_loop: %ld transactions, %ld ok, %ld failed, slowest %.1f ms, mean %.2f ms\n",
	       done, ok, done - ok, slowest, done > 0 ? total / (double)done : 0.0);
	return done > 0 && ok == done ? 0 : 1;
}
