/*
 * pam_viamkey.c - the PAM face of viamkey.
 *
 * It translates PAM into calls to common/ and back: arguments, the
 * conversation, PAM items and data, return codes and logging. The login
 * decision itself is vk_authorize(), the one `keyadm check` runs too.
 *
 * Security rules for this file:
 *  1. Only vk_authorize() and vk_authorize_recheck() decide. This file MUST
 *     NOT add, skip or reorder any of their checks; it only maps results.
 *  2. Every entry point starts from a failure and only an ALLOW becomes
 *     PAM_SUCCESS. An error MUST NOT become PAM_SUCCESS or PAM_IGNORE, and
 *     every denial of a presented credential is the same PAM_AUTH_ERR.
 *  3. The token MUST NOT be logged or kept. The answer to the prompt is
 *     wiped with sodium_memzero before it is freed, and a token-shaped
 *     value (vk_token_shaped) MUST NOT be left in PAM_AUTHTOK unless
 *     forward_authtok.
 *  4. The module is stateless between calls: authentication and account
 *     management load the config, and the decision opens and closes the
 *     store (setcred reads neither, sessions only the config, for the
 *     journal their events go to; account management does not open the
 *     store when authentication's allow stands, see vk_authorize_recheck).
 *     The only thing carried from authentication
 *     to the later entry points is what key_login() reads: the small
 *     record a successful authentication of this handle stored with
 *     pam_set_data (each authentication first forgets it) and, for setcred
 *     and sessions, which grant nothing, the VIAMKEY_* it put in the PAM
 *     environment (sshd authenticates in a child process and keeps only
 *     that environment). What a session records from it can make its
 *     daemon end the session, and grants nothing.
 *  5. Values from outside (user, rhost, error text) are logged as printable
 *     ASCII only, so that a crafted user name cannot forge a log line.
 *  6. Nothing here calls exit or abort. Only the pam_sm_* entry points are
 *     exported (see Makefile.am).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>

#include "args.h"
#include "authz.h"
#include "config.h"
#include "duration.h"
#include "event.h"
#include "journal.h"
#include "proc.h"

#define STATE_NAME "pam_viamkey_auth"
#define LOG_FIELD  64 /* bytes of a user, rhost or service in a log line */

/*
 * What a successful authentication leaves for account, setcred and
 * sessions: the allow (key, name, the role of the grant that matched, and
 * what vk_authorize_recheck() needs to let it stand) and the role it
 * required.
 */
struct auth_state {
	struct vk_result allowed;
	vk_role required;
};

static const char *const env_names[] = {"VIAMKEY_KEY_ID", "VIAMKEY_KEY_NAME", "VIAMKEY_ROLE",
                                        "VIAMKEY_SECRET_TAG"};

/* One call of an entry point. */
struct call {
	pam_handle_t *pamh;
	struct vk_pam_args args;
	struct vk_config cfg;
	const char *service, *user, *rhost;
	vk_role required;
	int64_t now;
	const char *reason; /* for the log line */
	char err[VK_ERRLEN];
};

static const char *
item_string(pam_handle_t *pamh, int type)
{
	const void *v = NULL;

	if (pam_get_item(pamh, type, &v) != PAM_SUCCESS)
		return NULL;
	return v;
}

static void
call_init(struct call *c, pam_handle_t *pamh)
{
	memset(c, 0, sizeof *c);
	c->pamh = pamh;
	c->service = item_string(pamh, PAM_SERVICE);
	c->rhost = item_string(pamh, PAM_RHOST);
	c->now = vk_now();
	c->reason = "internal";
}

static int
debugging(const struct call *c)
{
	return (c->args.flags & VK_ARG_DEBUG) != 0;
}

/* src as printable ASCII, cut to fit; "-" when absent or empty. */
static void
printable(char *dst, size_t size, const char *src, int keep_spaces)
{
	size_t i = 0;

	if (src == NULL || *src == '\0')
		src = "-";
	for (; src[i] != '\0' && i + 1 < size; i++) {
		unsigned char ch = (unsigned char)src[i];

		dst[i] = (ch > ' ' && ch < 0x7f) || (keep_spaces && ch == ' ') ? (char)ch : '?';
	}
	dst[i] = '\0';
}

static int
is_denial(int rc)
{
	return rc == PAM_AUTH_ERR || rc == PAM_PERM_DENIED || rc == PAM_ACCT_EXPIRED;
}

/* The one line every decision (and every failure to reach one) leaves in syslog. */
static void
log_call(const struct call *c, int rc, const char *key_id)
{
	char service[LOG_FIELD + 1], user[LOG_FIELD + 1], rhost[LOG_FIELD + 1], err[VK_ERRLEN];
	int deny = is_denial(rc);

	printable(service, sizeof service, c->service, 0);
	printable(user, sizeof user, c->user, 0);
	printable(rhost, sizeof rhost, c->rhost, 0);
	printable(err, sizeof err, c->err, 1);
	pam_syslog(c->pamh,
	           LOG_AUTHPRIV | (rc == PAM_SUCCESS ? LOG_INFO
	                           : deny            ? LOG_NOTICE
	                                             : LOG_ERR),
	           "%s service=%s user=%s rhost=%s key=%s reason=%s%s%s%s",
	           rc == PAM_SUCCESS ? "allow"
	           : deny            ? "deny"
	                             : "error",
	           service, user, rhost, key_id != NULL && key_id[0] != '\0' ? key_id : "-",
	           c->reason, c->err[0] != '\0' ? " (" : "", c->err[0] != '\0' ? err : "",
	           c->err[0] != '\0' ? ")" : "");
}

/* e into the journal viamkey-syncd takes to the authority; a failure is a log line. */
static void
append(const struct call *c, const struct vk_event *e)
{
	char line[VK_EVENT_LINE_MAX + 1], err[VK_ERRLEN];
	size_t len = vk_event_encode(e, line);

	if (vk_journal_append(c->cfg.store_path, line, len, err) < 0)
		pam_syslog(c->pamh, LOG_AUTHPRIV | LOG_WARNING, "%s", err);
}

/*
 * The decision's event, into the journal (SPEC §11); nothing when no
 * daemon made one. It costs the login one append, and a failure costs it
 * nothing but a log line.
 */
static void
record(const struct call *c, int rc, const char *key_id)
{
	unsigned char uid[16];
	struct vk_event e;

	if (c->cfg.store_path == NULL)
		return;
	randombytes_buf(uid, sizeof uid);
	if (vk_event_make(&e, uid, c->now, "login",
	                  rc == PAM_SUCCESS ? "allow"
	                  : is_denial(rc)   ? "deny"
	                                    : "error",
	                  c->reason, key_id, c->user, c->service, c->rhost) != 0) {
		pam_syslog(c->pamh, LOG_ERR, "event not recorded: reason %s is not an event's",
		           c->reason);
		return;
	}
	append(c, &e);
}

static int
parse_args(struct call *c, int argc, const char **argv)
{
	int rc = vk_pam_args_parse(argc, argv, &c->args, c->err);

	if (rc != PAM_SUCCESS)
		c->reason = "bad_argument";
	return rc;
}

static int
load_config(struct call *c)
{
	const char *path = c->args.config != NULL ? c->args.config : VK_DEFAULT_CONFIG;
	vk_rc rc = vk_config_load(path, &c->cfg, c->err);

	if (rc == VK_ERR_NOMEM) {
		c->reason = vk_reason_name(VK_REASON_NOMEM);
		return PAM_BUF_ERR;
	}
	if (rc != VK_OK) {
		c->reason = "config_error";
		return PAM_AUTHINFO_UNAVAIL;
	}
	c->required = vk_config_required_role(&c->cfg, c->service, c->args.role);
	return PAM_SUCCESS;
}

static int
get_user(struct call *c)
{
	int rc = pam_get_user(c->pamh, &c->user, NULL);

	if (rc == PAM_SUCCESS && c->user != NULL)
		return PAM_SUCCESS;
	c->user = NULL;
	c->reason = "no_user";
	if (rc == PAM_BUF_ERR)
		return PAM_BUF_ERR;
	if (rc == PAM_CONV_ERR || rc == PAM_CONV_AGAIN)
		return PAM_CONV_ERR;
	return PAM_SERVICE_ERR;
}

/*
 * The token: PAM_AUTHTOK for use_first_pass (an empty token when unset,
 * which the decision denies as malformed), PAM_AUTHTOK when set for
 * try_first_pass, else the answer to a prompt, returned in *answer for the
 * caller to wipe.
 */
static int
read_token(struct call *c, const char **token, char **answer)
{
	const char *prompt = c->args.prompt != NULL ? c->args.prompt : c->cfg.prompt;
	size_t n = strlen(prompt);
	int rc;

	if (c->args.flags & (VK_ARG_USE_FIRST_PASS | VK_ARG_TRY_FIRST_PASS)) {
		const char *item = item_string(c->pamh, PAM_AUTHTOK);

		if (item != NULL || (c->args.flags & VK_ARG_USE_FIRST_PASS)) {
			*token = item != NULL ? item : "";
			if (debugging(c))
				pam_syslog(c->pamh, LOG_DEBUG, "token from PAM_AUTHTOK (%s)",
				           item != NULL ? "set" : "unset");
			return PAM_SUCCESS;
		}
	}
	rc = pam_prompt(c->pamh, PAM_PROMPT_ECHO_OFF, answer, "%s%s", prompt,
	                n > 0 && prompt[n - 1] == ' ' ? "" : " ");
	if (rc == PAM_SUCCESS && *answer != NULL) {
		*token = *answer;
		if (debugging(c))
			pam_syslog(c->pamh, LOG_DEBUG, "token from the prompt");
		return PAM_SUCCESS;
	}
	c->reason = "conversation_failed";
	return rc == PAM_BUF_ERR ? PAM_BUF_ERR : PAM_CONV_ERR;
}

/* Where the decision reads, from this call's config. */
static struct vk_login
login_of(const struct call *c, int record_use)
{
	struct vk_login lg = {c->cfg.store_path, c->cfg.busy_timeout_ms,
	                      record_use ? c->cfg.last_used_interval : -1,
	                      c->cfg.sync.max_staleness};

	return lg;
}

static struct vk_request
request_of(const struct call *c, const char *token)
{
	struct vk_request req = {
	    .token = token,
	    .token_len = token != NULL ? strlen(token) : 0,
	    .user = c->user,
	    .machine_id = c->cfg.machine_id,
	    .required = c->required,
	    .now = c->now,
	    .service = c->service,
	    .rhost = c->rhost,
	};

	return req;
}

/* A decision as a PAM code; `denied` is the code for a denial. */
static int
decision_code(struct call *c, const struct vk_result *res, int denied)
{
	c->reason = vk_reason_name(res->reason);
	snprintf(c->err, sizeof c->err, "%s", res->err);
	if (debugging(c))
		pam_syslog(c->pamh, LOG_DEBUG, "store %s, machine %s (from %s), required role %s",
		           c->cfg.store_path, res->machine[0] ? res->machine : "-",
		           c->cfg.machine_id != NULL ? "the config" : "the store",
		           vk_role_name(c->required));
	switch (res->decision) {
	case VK_DECISION_ALLOW:
		return PAM_SUCCESS;
	case VK_DECISION_DENY:
		return denied;
	default:
		return res->reason == VK_REASON_NOMEM ? PAM_BUF_ERR : PAM_AUTHINFO_UNAVAIL;
	}
}

static void
drop_state(pam_handle_t *pamh, void *data, int status)
{
	(void)pamh;
	(void)status;
	if (data != NULL) {
		sodium_memzero(data, sizeof(struct auth_state));
		free(data);
	}
}

/*
 * Did this handle authenticate with a key? *st is what its authentication
 * stored, or NULL. For callers that grant nothing (env_counts), the
 * VIAMKEY_KEY_ID authentication put in the PAM environment also counts.
 */
static int
key_login(pam_handle_t *pamh, int env_counts, const struct auth_state **st)
{
	const void *data = NULL;

	*st = NULL;
	if (pam_get_data(pamh, STATE_NAME, &data) == PAM_SUCCESS && data != NULL) {
		*st = data;
		return 1;
	}
	return env_counts && pam_getenv(pamh, env_names[0]) != NULL;
}

/* Forgets an earlier authentication on this handle. */
static void
forget(pam_handle_t *pamh)
{
	const struct auth_state *st;

	if (key_login(pamh, 0, &st))
		(void)pam_set_data(pamh, STATE_NAME, NULL, NULL);
	for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
		if (pam_getenv(pamh, env_names[i]) != NULL)
			(void)pam_putenv(pamh, env_names[i]);
}

/*
 * VIAMKEY_KEY_ID, VIAMKEY_KEY_NAME, VIAMKEY_ROLE and VIAMKEY_SECRET_TAG (which
 * of the key's secrets: vk_secret_tag()) in the PAM environment.
 * Authentication sets them as well as the session: sshd authenticates in a
 * separate process whose PAM data it drops but whose PAM environment it
 * carries over to the session.
 */
static int
export_env(pam_handle_t *pamh, const struct auth_state *st)
{
	const char *values[] = {st->allowed.key_id, st->allowed.key_name,
	                        vk_role_name(st->allowed.role), st->allowed.secret};
	char var[sizeof "VIAMKEY_KEY_NAME=" + VK_NAME_BYTES];

	for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++) {
		int rc;

		snprintf(var, sizeof var, "%s=%s", env_names[i], values[i]);
		if ((rc = pam_putenv(pamh, var)) != PAM_SUCCESS)
			return rc == PAM_BUF_ERR ? PAM_BUF_ERR : PAM_SYSTEM_ERR;
	}
	return PAM_SUCCESS;
}

/* Keeps what authenticated for the later entry points. */
static int
remember(struct call *c, const struct vk_result *res)
{
	struct auth_state *st = calloc(1, sizeof *st);
	int rc;

	if (st == NULL) {
		c->reason = vk_reason_name(VK_REASON_NOMEM);
		return PAM_BUF_ERR;
	}
	st->allowed = *res;
	st->required = c->required;
	if ((rc = pam_set_data(c->pamh, STATE_NAME, st, drop_state)) != PAM_SUCCESS) {
		drop_state(c->pamh, st, 0);
		c->reason = "pam_set_data";
		return rc == PAM_BUF_ERR ? PAM_BUF_ERR : PAM_SYSTEM_ERR;
	}
	if ((rc = export_env(c->pamh, st)) != PAM_SUCCESS) {
		c->reason = "pam_putenv";
		forget(c->pamh);
	}
	return rc;
}

static int
authenticate(struct call *c, const char *token, struct vk_result *res)
{
	struct vk_login lg = login_of(c, 1);
	struct vk_request req = request_of(c, token);
	int rc;

	vk_authorize(&lg, &req, res);
	if ((rc = decision_code(c, res, PAM_AUTH_ERR)) != PAM_SUCCESS)
		return rc;
	if (res->use_err[0] != '\0' && debugging(c))
		pam_syslog(c->pamh, LOG_DEBUG, "last use not recorded: %s", res->use_err);
	return remember(c, res);
}

/*
 * PAM_AUTHTOK after authentication: a non-token answer to the prompt is
 * stored, so that a later module with try_first_pass need not ask again,
 * and a token-shaped value is removed unless forward_authtok.
 */
static void
authtok_hygiene(const struct call *c, const char *answer)
{
	int forward = (c->args.flags & VK_ARG_FORWARD_AUTHTOK) != 0;
	const char *item;

	if (answer != NULL && (forward || !vk_token_shaped(answer, strlen(answer))))
		(void)pam_set_item(c->pamh, PAM_AUTHTOK, answer);
	item = item_string(c->pamh, PAM_AUTHTOK);
	if (!forward && item != NULL && vk_token_shaped(item, strlen(item)))
		(void)pam_set_item(c->pamh, PAM_AUTHTOK, NULL);
}

PAM_EXTERN int
pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct call c;
	struct vk_result res;
	const char *token = NULL;
	char *answer = NULL;
	int rc;

	(void)flags;
	call_init(&c, pamh);
	memset(&res, 0, sizeof res);
	forget(pamh);
	if ((rc = parse_args(&c, argc, argv)) == PAM_SUCCESS && sodium_init() < 0) {
		c.reason = "libsodium";
		rc = PAM_AUTHINFO_UNAVAIL;
	}
	if (rc == PAM_SUCCESS && (rc = load_config(&c)) == PAM_SUCCESS &&
	    (rc = get_user(&c)) == PAM_SUCCESS &&
	    (rc = read_token(&c, &token, &answer)) == PAM_SUCCESS)
		rc = authenticate(&c, token, &res);

	log_call(&c, rc, res.key_id);
	record(&c, rc, res.key_id);
	if (rc != PAM_SUCCESS && !(c.args.flags & VK_ARG_NODELAY) && c.cfg.fail_delay_ms > 0)
		(void)pam_fail_delay(pamh, (unsigned)c.cfg.fail_delay_ms * 1000u);
	authtok_hygiene(&c, answer);
	if (answer != NULL) {
		sodium_memzero(answer, strlen(answer));
		free(answer);
	}
	vk_config_free(&c.cfg);
	return rc;
}

/* Parses the arguments; PAM_IGNORE when this handle did not authenticate with a key. */
static int
begin(struct call *c, int argc, const char **argv, int env_counts, const struct auth_state **st)
{
	int rc;

	*st = NULL;
	if ((rc = parse_args(c, argc, argv)) != PAM_SUCCESS) {
		log_call(c, rc, NULL);
		return rc;
	}
	if (key_login(c->pamh, env_counts, st))
		return PAM_SUCCESS;
	if (debugging(c))
		pam_syslog(c->pamh, LOG_DEBUG, "this handle did not authenticate with a key");
	return PAM_IGNORE;
}

/*
 * Re-checks the key that authenticated, requiring the role authentication
 * required, or this line's role= when that is higher.
 */
static int
recheck(struct call *c, const struct auth_state *st)
{
	struct vk_login lg;
	struct vk_request req;
	struct vk_result res;
	int rc;

	if ((rc = load_config(c)) != PAM_SUCCESS || (rc = get_user(c)) != PAM_SUCCESS)
		return rc;
	c->required = st->required > c->args.role ? st->required : c->args.role;
	lg = login_of(c, 0);
	req = request_of(c, NULL);
	vk_authorize_recheck(&lg, &st->allowed, &req, &res);
	return decision_code(c, &res,
	                     res.reason == VK_REASON_EXPIRED ? PAM_ACCT_EXPIRED : PAM_PERM_DENIED);
}

PAM_EXTERN int
pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct auth_state *st;
	struct call c;
	int rc;

	(void)flags;
	call_init(&c, pamh);
	if ((rc = begin(&c, argc, argv, 0, &st)) == PAM_SUCCESS) {
		rc = recheck(&c, st);
		log_call(&c, rc, st->allowed.key_id);
		if (rc != PAM_SUCCESS)
			record(&c, rc, st->allowed.key_id);
	}
	vk_config_free(&c.cfg);
	return rc;
}

PAM_EXTERN int
pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	const struct auth_state *st;
	struct call c;

	(void)flags;
	call_init(&c, pamh);
	return begin(&c, argc, argv, 1, &st);
}

/* Whether e holds user whole: its daemon checks the session for that user. */
static int
user_whole(const struct vk_event *e, const char *user)
{
	char back[VK_USER_MAX + 1];

	return vk_event_unescape(e->user, back, sizeof back) == 0 && strcmp(back, user) == 0;
}

/*
 * The session's event (SPEC §11) into the journal: which session it is
 * (this process and its start time, and the logind session when
 * pam_systemd ran before this module) and what its daemon needs to check
 * it again after each change (the key, the user, the role its service
 * requires, the secret it used). Like record(), it waits for nothing and a
 * failure is a log line: the session is not refused for it.
 */
static void
record_session(struct call *c, const struct auth_state *st, const char *what)
{
	const char *key_id = st != NULL ? st->allowed.key_id : pam_getenv(c->pamh, env_names[0]);
	const char *secret = st != NULL ? st->allowed.secret : pam_getenv(c->pamh, env_names[3]);
	const char *logind = pam_getenv(c->pamh, "XDG_SESSION_ID");
	unsigned char uid[16];
	struct vk_event e;
	struct vk_proc self;
	vk_role required;

	if (sodium_init() < 0 || load_config(c) != PAM_SUCCESS || get_user(c) != PAM_SUCCESS ||
	    vk_proc_read(0, &self) != 0) {
		pam_syslog(c->pamh, LOG_AUTHPRIV | LOG_WARNING, "session %s not recorded: %s%s%s",
		           what, c->reason, c->err[0] != '\0' ? ": " : "", c->err);
		return;
	}
	required = st != NULL && st->required > c->required ? st->required : c->required;
	randombytes_buf(uid, sizeof uid);
	if (vk_event_make(&e, uid, c->now, "session", what, NULL, key_id, c->user, c->service,
	                  c->rhost) != 0 ||
	    !user_whole(&e, c->user) ||
	    vk_event_set_session(&e, required != VK_ROLE_NONE ? vk_role_name(required) : NULL,
	                         secret, logind, self.pid, self.start) != 0) {
		pam_syslog(c->pamh, LOG_AUTHPRIV | LOG_WARNING,
		           "session %s not recorded: its user is too long for an event, or its key"
		           " ID, secret tag or XDG_SESSION_ID is not as viamkey writes them",
		           what);
		return;
	}
	if (debugging(c))
		pam_syslog(c->pamh, LOG_DEBUG, "session %s: process %lld, logind session %s", what,
		           (long long)self.pid,
		           e.session.logind[0] != '\0' ? e.session.logind : "-");
	append(c, &e);
}

/* Sessions: recorded after a key login on this handle (else PAM_IGNORE). */
static int
session(pam_handle_t *pamh, int argc, const char **argv, const char *what)
{
	const struct auth_state *st;
	struct call c;
	int rc;

	call_init(&c, pamh);
	if ((rc = begin(&c, argc, argv, 1, &st)) == PAM_SUCCESS && st != NULL &&
	    strcmp(what, "open") == 0)
		rc = export_env(pamh, st);
	if (rc == PAM_SUCCESS)
		record_session(&c, st, what);
	vk_config_free(&c.cfg);
	return rc;
}

PAM_EXTERN int
pam_sm_open_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return session(pamh, argc, argv, "open");
}

PAM_EXTERN int
pam_sm_close_session(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	(void)flags;
	return session(pamh, argc, argv, "close");
}

/* Keys are rotated with keyadm; a `password` line for this module is a mistake. */
PAM_EXTERN int
pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv)
{
	struct call c;

	(void)flags;
	call_init(&c, pamh);
	if (parse_args(&c, argc, argv) == PAM_SUCCESS) {
		c.reason = "chauthtok";
		snprintf(c.err, sizeof c.err,
		         "keys are rotated with keyadm keys rotate, not via PAM");
	}
	log_call(&c, PAM_SERVICE_ERR, NULL);
	return PAM_SERVICE_ERR;
}
