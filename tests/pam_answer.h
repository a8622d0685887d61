/*
 * pam_answer.h - a PAM conversation for the test and benchmark drivers: it
 * answers every prompt with one fixed text.
 */
#ifndef VK_PAM_ANSWER_H
#define VK_PAM_ANSWER_H

#include <security/pam_appl.h>

struct pam_answer {
	const char *text; /* the answer to every prompt */
	const char *name; /* prefix of what is echoed on stderr; NULL: echo nothing */
	int show_prompts; /* echo the prompts too, not only the other messages */
};

/* A pam_conv function; appdata_ptr is a struct pam_answer. */
int pam_answer_converse(int n, const struct pam_message **msg, struct pam_response **resp,
                        void *appdata_ptr);

#endif
