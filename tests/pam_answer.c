/*
 * pam_answer.c - a PAM conversation that answers every prompt with one
 * fixed text (see pam_answer.h).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pam_answer.h"

int
pam_answer_converse(int n, const struct pam_message **msg, struct pam_response **resp,
                    void *appdata_ptr)
{
	const struct pam_answer *a = appdata_ptr;
	struct pam_response *r = calloc((size_t)n, sizeof *r);

	if (r == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		int prompt = msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		             msg[i]->msg_style == PAM_PROMPT_ECHO_ON;

		if (a->name != NULL && (!prompt || a->show_prompts))
			fprintf(stderr, "%s: %s%s%s\n", a->name, prompt ? "prompt \"" : "",
			        msg[i]->msg, prompt ? "\"" : "");
		if (prompt && (r[i].resp = strdup(a->text)) == NULL) {
			for (int j = 0; j < i; j++)
				free(r[j].resp);
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}
