/*
 * pam_module_test.c - pam_viamkey.so driven by the real libpam.
 *
 * Each test gets a fresh store (fixture.h), a viamkey.conf and a service
 * directory for pam_start_confdir(), whose stack names the built module by
 * its path. The codes asserted are those the application sees. Two things
 * libpam hides are made visible by the stack itself:
 *  - PAM_AUTHTOK, which an application may neither set nor read:
 *    pam_probe.so, stacked before the module, sets it from the PAM
 *    environment (preset()), and stacked after, copies it there (authtok());
 *  - a PAM_IGNORE from account or session management: the module's line
 *    ends the stack on any other code, so only after PAM_IGNORE does the
 *    next line, pam_debug.so, answer with its PAM_NO_MODULE_DATA. For
 *    setcred, where the only other module is the probe, libpam itself turns
 *    "every module ignored" into PAM_PERM_DENIED, which the module's setcred
 *    never returns.
 * That the module keeps nothing open between calls is read from
 * /proc/self/fd (store_descriptors()), with the fixture's own connection to
 * the store closed first.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "duration.h"
#include "fixture.h"
#include "store.h"
#include "token.h"

#define SERVICE      "vk-test"
#define RHOST        "203.0.113.7"
#define OPENSSH_FAKE "\b\n\r\177INCORRECT"
#define IGNORED      PAM_NO_MODULE_DATA /* the module returned PAM_IGNORE (see above) */
#define CRED_IGNORED PAM_PERM_DENIED
#define VK_XSTR(x)   #x
#define VK_STR(x)    VK_XSTR(x)
/* a host binding (keyed hash of /etc/machine-id) that is not this host's */
#define OTHER_HOST "0123456789abcdef0123456789abcdef"

struct t {
	struct fx_store *fx;
	char *confdir, *conf;
	pam_handle_t *pamh;
	/* the conversation */
	const char *answer; /* NULL: answer with a NULL response */
	int conv_rc;        /* returned instead of answering when not PAM_SUCCESS */
	int prompts;
	char prompt[256];
	/* the fail delay libpam computed at the end of the last call */
	unsigned delay;
};

static int
converse(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct t *t = data;
	struct pam_response *r;

	if (t->conv_rc != PAM_SUCCESS)
		return t->conv_rc;
	if ((r = calloc((size_t)n, sizeof *r)) == NULL)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++) {
		if (msg[i]->msg_style != PAM_PROMPT_ECHO_OFF &&
		    msg[i]->msg_style != PAM_PROMPT_ECHO_ON)
			continue;
		t->prompts++;
		snprintf(t->prompt, sizeof t->prompt, "%s", msg[i]->msg);
		if (t->answer != NULL && (r[i].resp = strdup(t->answer)) == NULL) {
			free(r);
			return PAM_BUF_ERR;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static void
record_delay(int status, unsigned usec, void *data)
{
	(void)status;
	((struct t *)data)->delay = usec;
}

/* viamkey.conf for the fixture store, this host being m1a, plus `extra`. */
static void
write_config(struct t *t, const char *extra)
{
	char *text;

	assert_true(asprintf(&text,
	                     "[store]\npath = %s\nbusy_timeout_ms = 500\n"
	                     "[pam]\nfail_delay_ms = 300\n%s",
	                     t->fx->path, extra) > 0);
	fx_write_str(t->conf, 0600, text);
	free(text);
}

static void
write_config_machine(struct t *t, const char *extra)
{
	char *text;

	assert_true(asprintf(&text, "[machine]\nid = %s\n%s", t->fx->m1a, extra) > 0);
	write_config(t, text);
	free(text);
}

/* The service SERVICE: every management group runs `module` with `args`. */
static void
write_stack_module(struct t *t, const char *module, const char *args)
{
	char *path = fx_join(t->confdir, SERVICE), *text;

	assert_true(
	    asprintf(&text,
	             "auth     optional %4$s set\n"
	             "auth     required %1$s config=%2$s %3$s\n"
	             "auth     optional %4$s\n"
	             "account  [success=done ignore=ignore default=die] %1$s config=%2$s %3$s\n"
	             "account  required pam_debug.so acct=no_module_data\n"
	             "session  [success=done ignore=ignore default=die] %1$s config=%2$s %3$s\n"
	             "session  required pam_debug.so open_session=no_module_data"
	             " close_session=no_module_data\n"
	             "password required %1$s config=%2$s %3$s\n",
	             module, t->conf, args, VK_PROBE_PATH) > 0);
	fx_write_str(path, 0600, text);
	free(text);
	free(path);
}

/*
 * The service SERVICE with the built module. It links libsqlite3.so, the
 * same SQLite as this process: the heap limit out_of_memory sets reaches
 * it, and this process's own connection locks the store against it.
 */
static void
write_stack(struct t *t, const char *args)
{
	write_stack_module(t, VK_MODULE_PATH, args);
}

static int
setup(void **state)
{
	struct t *t = calloc(1, sizeof *t);
	void *fx;

	assert_non_null(t);
	fx_store_setup(&fx);
	t->fx = fx;
	t->confdir = fx_join(t->fx->dir, "pam.d");
	t->conf = fx_join(t->fx->dir, "viamkey.conf");
	assert_int_equal(mkdir(t->confdir, 0700), 0);
	write_config_machine(t, "");
	write_stack(t, "");
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct t *t = *state;
	void *fx = t->fx;

	if (t->pamh != NULL)
		pam_end(t->pamh, PAM_SUCCESS);
	chmod(t->fx->dir, 0700);
	free(t->confdir);
	free(t->conf);
	fx_store_teardown(&fx);
	free(t);
	return 0;
}

/* A new transaction for `user` whose prompts get `answer`. */
static void
start(struct t *t, const char *user, const char *answer)
{
	const struct pam_conv conv = {converse, t};

	if (t->pamh != NULL)
		pam_end(t->pamh, PAM_SUCCESS);
	t->answer = answer;
	t->conv_rc = PAM_SUCCESS;
	t->prompts = 0;
	t->prompt[0] = '\0';
	assert_int_equal(pam_start_confdir(SERVICE, user, &conv, t->confdir, &t->pamh),
	                 PAM_SUCCESS);
	assert_int_equal(pam_set_item(t->pamh, PAM_RHOST, RHOST), PAM_SUCCESS);
	assert_int_equal(pam_set_item(t->pamh, PAM_FAIL_DELAY, (const void *)record_delay),
	                 PAM_SUCCESS);
}

/* A whole authentication of `user` answering `answer`; returns its code. */
static int
auth(struct t *t, const char *user, const char *answer)
{
	start(t, user, answer);
	return pam_authenticate(t->pamh, 0);
}

/* PAM_AUTHTOK as an earlier module left it for pam_viamkey.so. */
static void
preset(struct t *t, const char *value)
{
	char *var;

	assert_true(asprintf(&var, "VK_PROBE_SET=%s", value) > 0);
	assert_int_equal(pam_putenv(t->pamh, var), PAM_SUCCESS);
	free(var);
}

/* PAM_AUTHTOK as the module after pam_viamkey.so saw it; NULL when unset. */
static const char *
authtok(struct t *t)
{
	const char *seen = pam_getenv(t->pamh, "VK_PROBE_AUTHTOK");

	assert_non_null(seen);
	return strcmp(seen, "<unset>") == 0 ? NULL : seen;
}

static struct fx_key
key(struct t *t, vk_role role, const char *type, const char *id)
{
	struct fx_key k;

	fx_key(t->fx, role, type, id, &k);
	return k;
}

static struct fx_key
operator_key(struct t *t)
{
	return key(t, VK_ROLE_OPERATOR, "machine", t->fx->m1a);
}

/* keyadm's rotation, in its own transaction; grace 0 retires the old secret at once. */
static void
rotate(struct t *t, const char *id, int64_t grace, char fresh[VK_TOKEN_LEN + 1])
{
	struct vk_txn x = {.db = t->fx->db, .actor = "root", .now = vk_now()};
	char err[VK_ERRLEN];

	assert_int_equal(vk_txn_begin(&x, err), VK_OK);
	assert_int_equal(vk_key_rotate(&x, id, grace, fresh, err), VK_OK);
	assert_int_equal(vk_txn_commit(&x, err), VK_OK);
}

static void
sql(struct t *t, const char *statement, const char *arg)
{
	fx_sql1(t->fx->db, statement, arg);
}

/* The store's path with suffix ("-wal", "-shm"); the caller frees it. */
static char *
side_file(struct t *t, const char *suffix)
{
	char *path;

	if (asprintf(&path, "%s%s", t->fx->path, suffix) < 0)
		return NULL;
	return path;
}

/*
 * This process's own connection to the store (the fixture's), closed so
 * that every descriptor left on the store is the module's, and so that a
 * forked child inherits no SQLite connection; and opened again.
 */
static void
fixture_close(struct t *t)
{
	assert_int_equal(sqlite3_close(t->fx->db), SQLITE_OK);
	t->fx->db = NULL;
}

static void
fixture_open(struct t *t)
{
	char err[VK_ERRLEN];

	if (vk_store_open(t->fx->path, VK_OPEN_ADMIN, 1000, &t->fx->db, err) != VK_OK)
		fail_msg("%s", err);
}

/*
 * How many of this process's descriptors are open on the store, its side
 * files or its directory (by readlink of /proc/self/fd/N); -1 when
 * /proc/self/fd cannot be read. No cmocka assertion: forked children use it.
 */
static int
store_descriptors(struct t *t)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char *store = realpath(t->fx->path, NULL), *dir = realpath(t->fx->dir, NULL);
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t len = store != NULL ? strlen(store) : 0;
	int n = 0;

	if (store == NULL || dir == NULL || d == NULL)
		n = -1;
	while (n >= 0 && (e = readdir(d)) != NULL) {
		char target[PATH_MAX];
		ssize_t m;

		if (e->d_name[0] == '.' || (int)strtol(e->d_name, NULL, 10) == dirfd(d))
			continue;
		if ((m = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1)) < 0)
			continue; /* closed meanwhile */
		target[m] = '\0';
		if (strcmp(target, dir) == 0) {
			n++;
			continue;
		}
		for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
			if (strncmp(target, store, len) == 0 &&
			    strcmp(target + len, suffixes[i]) == 0)
				n++;
	}
	if (d != NULL)
		closedir(d);
	free(store);
	free(dir);
	return n;
}

/* pam_acct_mgmt() in a forked child: its code, or 100 if it left the store open there. */
static int
acct_mgmt_in_child(struct t *t)
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = pam_acct_mgmt(t->pamh, 0);

		_exit(store_descriptors(t) != 0 ? 100 : rc);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* ---- allowed ---------------------------------------------------------- */

static void
allow_and_every_entry_point(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);

	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_string_equal(t->prompt, "API key: ");
	assert_int_equal(t->delay, 0);
	assert_null(authtok(t));
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), PAM_SUCCESS);
	assert_int_equal(pam_open_session(t->pamh, 0), PAM_SUCCESS);
	assert_string_equal(pam_getenv(t->pamh, "VIAMKEY_KEY_ID"), k.id);
	assert_string_equal(pam_getenv(t->pamh, "VIAMKEY_KEY_NAME"), "test key");
	assert_string_equal(pam_getenv(t->pamh, "VIAMKEY_ROLE"), "operator");
	assert_int_equal(pam_close_session(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_chauthtok(t->pamh, 0), PAM_SERVICE_ERR);
}

static void
session_role_is_the_granted_one(void **state)
{
	struct t *t = *state;
	struct fx_key k = key(t, VK_ROLE_OWNER, "location", t->fx->loc1);

	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_open_session(t->pamh, 0), PAM_SUCCESS);
	assert_string_equal(pam_getenv(t->pamh, "VIAMKEY_ROLE"), "owner");
}

static void
machine_from_the_store(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char err[VK_ERRLEN];

	write_config(t, "");
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTHINFO_UNAVAIL);
	if (!fx_have_machine_id())
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	assert_int_equal(vk_store_set_host_machine(t->fx->db, t->fx->m1a, err), VK_OK);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(vk_store_set_host_machine(t->fx->db, t->fx->m3, err), VK_OK);
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTH_ERR);
}

/* ---- scope and roles ------------------------------------------------------ */

static void
scope(void **state)
{
	struct t *t = *state;
	const struct {
		const char *type;
		const char *id;
		int rc;
	} cases[] = {
	    {"machine", t->fx->m1a, PAM_SUCCESS},      {"location", t->fx->loc1, PAM_SUCCESS},
	    {"organization", t->fx->org, PAM_SUCCESS}, {"machine", t->fx->m1b, PAM_AUTH_ERR},
	    {"location", t->fx->loc2, PAM_AUTH_ERR},   {"organization", t->fx->org2, PAM_AUTH_ERR},
	    {"machine", t->fx->m3, PAM_AUTH_ERR},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fx_key k = key(t, VK_ROLE_OWNER, cases[i].type, cases[i].id);

		assert_int_equal(auth(t, "ann", k.token), cases[i].rc);
	}
}

static void
roles(void **state)
{
	struct t *t = *state;
	struct fx_key viewer = key(t, VK_ROLE_VIEWER, "machine", t->fx->m1a);
	struct fx_key op = operator_key(t);
	struct fx_key owner = key(t, VK_ROLE_OWNER, "organization", t->fx->org);
	const struct {
		const char *config; /* after [machine] */
		const char *args;
		const char *token;
		int rc;
	} cases[] = {
	    {"", "", viewer.token, PAM_AUTH_ERR}, /* operator by default */
	    {"", "", op.token, PAM_SUCCESS},
	    {"", "role=viewer", viewer.token, PAM_SUCCESS},
	    {"[pam]\nrole = owner\n", "", op.token, PAM_AUTH_ERR},
	    {"[pam]\nrole = owner\n", "", owner.token, PAM_SUCCESS},
	    {"[services]\n" SERVICE " = owner\n", "", op.token, PAM_AUTH_ERR},
	    {"[services]\n" SERVICE " = owner\n", "", owner.token, PAM_SUCCESS},
	    {"[services]\n" SERVICE " = owner\n", "role=operator", op.token, PAM_SUCCESS},
	    {"[services]\nsudo = owner\n", "", op.token, PAM_SUCCESS},
	    {"[pam]\nrole = viewer\n[services]\n" SERVICE " = owner\n", "role=operator",
	     viewer.token, PAM_AUTH_ERR},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		write_config_machine(t, cases[i].config);
		write_stack(t, cases[i].args);
		assert_int_equal(auth(t, "ann", cases[i].token), cases[i].rc);
	}
}

/* ---- denials: the same PAM_AUTH_ERR for every reason ---------------------- */

static void
denials(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t), disabled = operator_key(t), rotated = operator_key(t);
	struct fx_key expired;
	static const char *const users[] = {"ann"};
	struct vk_key_spec spec = {.name = "old",
	                           .role = VK_ROLE_OWNER,
	                           .resource_type = "machine",
	                           .resource_id = t->fx->m1a,
	                           .users = users,
	                           .nusers = 1,
	                           .expires_at = FX_NOW + 60};
	char bad_checksum[VK_TOKEN_LEN + 1], unknown[VK_TOKEN_LEN + 1];
	struct vk_token other;
	char fresh[VK_TOKEN_LEN + 1];

	fx_key_spec(t->fx, &spec, &expired);
	sql(t, "UPDATE keys SET disabled = 1 WHERE id = ?1", disabled.id);
	rotate(t, rotated.id, 0, fresh);
	memcpy(bad_checksum, k.token, sizeof bad_checksum);
	bad_checksum[VK_TOKEN_LEN - 1] = bad_checksum[VK_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
	vk_token_generate(&other);
	vk_token_format(&other, unknown);
	vk_token_wipe(&other);

	assert_int_equal(auth(t, "ann", "not a token"), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", bad_checksum), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", unknown), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", rotated.token), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", fresh), PAM_SUCCESS);
	assert_int_equal(auth(t, "ann", disabled.token), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", expired.token), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "bob", k.token), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	sodium_memzero(fresh, sizeof fresh);
}

static void
rotation_window(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	struct vk_txn x = {.db = t->fx->db, .actor = "root"};
	char fresh[VK_TOKEN_LEN + 1], err[VK_ERRLEN];

	rotate(t, k.id, 3600, fresh);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(auth(t, "ann", fresh), PAM_SUCCESS);
	x.now = vk_now();
	assert_int_equal(vk_txn_begin(&x, err), VK_OK);
	assert_int_equal(vk_key_finish_rotation(&x, k.id, err), VK_OK);
	assert_int_equal(vk_txn_commit(&x, err), VK_OK);
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", fresh), PAM_SUCCESS);
}

static void
openssh_invalid_user_password(void **state)
{
	struct t *t = *state;

	operator_key(t);
	assert_int_equal(auth(t, "ann", OPENSSH_FAKE), PAM_AUTH_ERR);
	write_stack(t, "use_first_pass");
	start(t, "nosuchuser", NULL);
	preset(t, OPENSSH_FAKE);
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_AUTH_ERR);
	assert_int_equal(t->prompts, 0);
	assert_string_equal(authtok(t), OPENSSH_FAKE); /* not token-shaped: left alone */
}

static void
odd_answers(void **state)
{
	struct t *t = *state;
	size_t big = 100 * 1024;
	char *huge = malloc(big + 1), binary[256];

	assert_non_null(huge);
	memcpy(huge, "vk_", 3);
	memset(huge + 3, 'A', big - 3);
	huge[big] = '\0';
	for (size_t i = 0; i < sizeof binary - 1; i++)
		binary[i] = (char)(i + 1);
	binary[sizeof binary - 1] = '\0';
	operator_key(t);

	assert_int_equal(auth(t, "ann", ""), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", huge), PAM_AUTH_ERR);
	assert_null(authtok(t)); /* token-shaped, so not stored */
	assert_int_equal(auth(t, "ann", binary), PAM_AUTH_ERR);
	assert_string_equal(authtok(t), binary);

	write_stack(t, "use_first_pass");
	start(t, "ann", NULL);
	preset(t, huge);
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_AUTH_ERR);
	assert_null(authtok(t));
	free(huge);
}

/* ---- the store or config unusable: PAM_AUTHINFO_UNAVAIL ------------------ */

static void
check_unavailable(struct t *t, const char *token)
{
	assert_int_equal(auth(t, "ann", token), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(t->prompts, 1); /* asked before the store was opened */
	assert_null(authtok(t));
}

static void
store_unusable(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *moved = fx_join(t->fx->dir, "moved.db");

	assert_int_equal(rename(t->fx->path, moved), 0);
	check_unavailable(t, k.token); /* missing */
	assert_int_equal(rename(moved, t->fx->path), 0);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);

	assert_int_equal(chmod(t->fx->path, 0606), 0);
	check_unavailable(t, k.token); /* world-writable */
	assert_int_equal(chmod(t->fx->path, 0620), 0);
	check_unavailable(t, k.token); /* group-writable */
	assert_int_equal(chmod(t->fx->path, 0600), 0);
	assert_int_equal(chmod(t->fx->dir, 0777), 0);
	check_unavailable(t, k.token); /* its directory world-writable */
	assert_int_equal(chmod(t->fx->dir, 0700), 0);

	fx_sql(t->fx->db, "PRAGMA user_version = 99");
	check_unavailable(t, k.token); /* schema newer than the module */
	fx_sql(t->fx->db, "PRAGMA user_version = " VK_STR(VK_SCHEMA_LOGIN));
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS); /* not yet migrated: read */
	fx_sql(t->fx->db, "PRAGMA user_version = 2");
	check_unavailable(t, k.token); /* older than what a login reads */
	fx_sql(t->fx->db, "PRAGMA user_version = " VK_STR(VK_SCHEMA_VERSION));
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	free(moved);
}

static void
store_corrupt(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char garbage[8192];

	memset(garbage, 0x5a, sizeof garbage);
	memcpy(garbage, "SQLite format 3", 16);
	fx_write(t->fx->path, 0600, garbage, sizeof garbage);
	check_unavailable(t, k.token);
	fx_write(t->fx->path, 0600, "", 0);
	check_unavailable(t, k.token); /* empty, not a viamkey store */
}

static void
store_symlink_refused(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *link = fx_join(t->fx->dir, "link.db"), *text;

	assert_int_equal(symlink(t->fx->path, link), 0);
	assert_true(asprintf(&text, "[store]\npath = %s\n[machine]\nid = %s\n", link, t->fx->m1a) >
	            0);
	fx_write_str(t->conf, 0600, text);
	check_unavailable(t, k.token);
	free(text);
	free(link);
}

static void
config_unusable(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *missing = fx_join(t->fx->dir, "missing.conf"), *stack;

	assert_int_equal(chmod(t->conf, 0602), 0);
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(t->prompts, 0); /* nothing asked with an unusable config */
	write_config_machine(t, "[pam]\nlockout = 3\n");
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTHINFO_UNAVAIL);
	write_config_machine(t, "[nonsense]\n");
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTHINFO_UNAVAIL);

	/* a missing file means the defaults: the default store and no machine ID */
	assert_true(asprintf(&stack, "auth required %s config=%s\n", VK_MODULE_PATH, missing) > 0);
	free(missing);
	missing = fx_join(t->confdir, SERVICE);
	fx_write_str(missing, 0600, stack);
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTHINFO_UNAVAIL);
	free(missing);
	free(stack);
}

static void
machine_unknown(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	unsigned char raw[VK_KEY_ID_BYTES];
	char id[VK_UUID_STRLEN + 1], *text;

	vk_uuid_generate(raw);
	vk_uuid_format(raw, id);
	assert_true(asprintf(&text, "[machine]\nid = %s\n[store]\npath = %s\n", id, t->fx->path) >
	            0);
	fx_write_str(t->conf, 0600, text);
	check_unavailable(t, k.token);
	free(text);
}

/* ---- the checksum first, then a store opened and closed per call ------------ */

/* [store] path = path, this host being m1a. */
static void
write_config_store(struct t *t, const char *path)
{
	char *text;

	assert_true(asprintf(&text,
	                     "[store]\npath = %s\n[machine]\nid = %s\n[pam]\nfail_delay_ms = 0\n",
	                     path, t->fx->m1a) > 0);
	fx_write_str(t->conf, 0600, text);
	free(text);
}

/*
 * A mistyped or malformed token is refused before the store is opened, so
 * it is refused (PAM_AUTH_ERR) even when there is no usable store; only a
 * token that could be right needs the store (PAM_AUTHINFO_UNAVAIL).
 */
static void
checksum_before_store(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *missing = fx_join(t->fx->dir, "no-such-dir/keys.db");
	char *garbage = fx_join(t->fx->dir, "garbage.db"), mistyped[VK_TOKEN_LEN + 1];
	char truncated[VK_TOKEN_LEN], unknown[VK_TOKEN_LEN + 1], noise[4096];
	const char *const stores[] = {missing, garbage, t->fx->path};
	struct vk_token tok;

	memset(noise, 'x', sizeof noise);
	memcpy(noise, "SQLite format 3", 16);
	fx_write(garbage, 0600, noise, sizeof noise);
	/* one character of the secret changed: the checksum catches it */
	memcpy(mistyped, k.token, sizeof mistyped);
	mistyped[40] = mistyped[40] == 'a' ? 'b' : 'a';
	assert_int_equal(vk_token_parse(mistyped, VK_TOKEN_LEN, &tok), VK_TOKEN_CHECKSUM);
	memcpy(truncated, k.token, sizeof truncated - 1);
	truncated[sizeof truncated - 1] = '\0';
	assert_int_equal(vk_token_parse(truncated, strlen(truncated), &tok), VK_TOKEN_MALFORMED);
	vk_token_generate(&tok);
	vk_token_format(&tok, unknown);
	vk_token_wipe(&tok);

	for (size_t i = 0; i < sizeof stores / sizeof stores[0]; i++) {
		int usable = stores[i] == t->fx->path;

		write_config_store(t, stores[i]);
		assert_int_equal(auth(t, "ann", mistyped), PAM_AUTH_ERR);
		assert_null(authtok(t));
		assert_int_equal(auth(t, "ann", truncated), PAM_AUTH_ERR);
		assert_int_equal(auth(t, "ann", "vk_not_a_token"), PAM_AUTH_ERR);
		assert_int_equal(auth(t, "ann", OPENSSH_FAKE), PAM_AUTH_ERR);
		assert_int_equal(auth(t, "ann", k.token),
		                 usable ? PAM_SUCCESS : PAM_AUTHINFO_UNAVAIL);
		assert_null(authtok(t));
		assert_int_equal(auth(t, "ann", unknown),
		                 usable ? PAM_AUTH_ERR : PAM_AUTHINFO_UNAVAIL);
	}
	assert_int_equal(access(missing, F_OK), -1); /* nothing was created */
	free(missing);
	free(garbage);
}

/*
 * The module keeps nothing open between PAM calls: after each entry point
 * returns, no descriptor of this process is on the store, its side files or
 * its directory; account management opens the store again and sees a
 * change made in between, in this process and in a forked child.
 */
static void
stateless_between_calls(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t), other = operator_key(t);

	assert_true(store_descriptors(t) > 0); /* the scan sees the fixture's own connection */
	fixture_close(t);
	assert_int_equal(store_descriptors(t), 0);

	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(store_descriptors(t), 0);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(store_descriptors(t), 0);
	assert_int_equal(acct_mgmt_in_child(t), PAM_SUCCESS);
	assert_int_equal(pam_open_session(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), PAM_SUCCESS);
	assert_int_equal(pam_close_session(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(store_descriptors(t), 0);
	assert_int_equal(auth(t, "ann", "vk_wrong"), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "bob", k.token), PAM_AUTH_ERR);
	assert_int_equal(store_descriptors(t), 0);

	/* the key is deleted between authentication and account management */
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	fixture_open(t);
	sql(t, "DELETE FROM keys WHERE id = ?1", k.id);
	fixture_close(t);
	assert_int_equal(acct_mgmt_in_child(t), PAM_PERM_DENIED);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_PERM_DENIED);
	assert_int_equal(store_descriptors(t), 0);

	/*
	 * a forked child authenticates and manages the account on its own (as
	 * sshd's child does); then, in this process, the key is disabled between
	 * authentication and account management
	 */
	start(t, "ann", other.token);
	{
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			int rc = pam_authenticate(t->pamh, 0);

			_exit(rc != PAM_SUCCESS                          ? rc
			      : pam_acct_mgmt(t->pamh, 0) != PAM_SUCCESS ? 101
			      : store_descriptors(t) != 0                ? 100
			                                                 : 0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SUCCESS);
	fixture_open(t);
	sql(t, "UPDATE keys SET disabled = 1 WHERE id = ?1", other.id);
	fixture_close(t);
	assert_int_equal(acct_mgmt_in_child(t), PAM_PERM_DENIED);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_PERM_DENIED);
	assert_int_equal(store_descriptors(t), 0);
	fixture_open(t);
}

/* A side file (-wal, -shm) that others may read makes the store unusable, as the store itself. */
static void
store_side_files(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	static const char *const suffixes[] = {"-shm", "-wal"};

	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char *side = side_file(t, suffixes[i]);
		struct stat st;

		assert_non_null(side);
		assert_int_equal(stat(side, &st), 0); /* the store is in WAL mode */
		assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
		assert_int_equal(chmod(side, 0644), 0);
		check_unavailable(t, k.token);
		assert_int_equal(auth(t, "ann", "vk_not_a_token"), PAM_AUTH_ERR);
		assert_int_equal(chmod(side, 0640), 0);
		check_unavailable(t, k.token);
		assert_int_equal(chmod(side, 0600), 0);
		assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
		free(side);
	}
}

/*
 * A store copied from another host: without [machine] id, the machine the
 * store recorded is not this host's (the binding differs), so the module
 * cannot know which machine it is (PAM_AUTHINFO_UNAVAIL, unknown_machine:
 * see syslog_store_refusals); with [machine] id set, it is that machine.
 */
static void
store_from_another_host(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char err[VK_ERRLEN];

	if (!fx_have_machine_id())
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	assert_int_equal(vk_store_set_host_machine(t->fx->db, t->fx->m1a, err), VK_OK);
	write_config(t, "");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS); /* recorded on this host */

	sql(t, "UPDATE meta SET value = ?1 WHERE name = 'host_binding'", OTHER_HOST);
	check_unavailable(t, k.token);
	assert_int_equal(auth(t, "ann", "vk_not_a_token"), PAM_AUTH_ERR);
	sql(t, "DELETE FROM meta WHERE name = ?1", "host_binding");
	check_unavailable(t, k.token); /* a record without a binding is no better */

	write_config_machine(t, "");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);

	/* account management decides for the same host as authentication did */
	assert_int_equal(vk_store_set_host_machine(t->fx->db, t->fx->m1a, err), VK_OK);
	write_config(t, "");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	sql(t, "UPDATE meta SET value = ?1 WHERE name = 'host_binding'", OTHER_HOST);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_AUTHINFO_UNAVAIL);
}

/* The replica's last heartbeat, signed and arrived alike, `age` seconds ago. */
static void
heartbeat(struct t *t, int64_t age)
{
	char at[24];

	snprintf(at, sizeof at, "%lld", (long long)(time(NULL) - age));
	sql(t,
	    "INSERT INTO meta (name, value) VALUES ('heartbeat_at', ?1), ('heartbeat_seen', ?1)"
	    " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	    at);
}

/*
 * [sync] max_staleness on a replica (SPEC section 8): once its last
 * heartbeat is older than that, a login the store would allow is
 * PAM_AUTHINFO_UNAVAIL, in authentication and in the account re-check (the
 * bus may be withholding a revocation); a refused one stays PAM_AUTH_ERR;
 * a break-glass key still logs in. A fresh heartbeat, max_staleness 0, or
 * a store that is no replica let the login in.
 */
static void
stale_replica(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t), glass = operator_key(t);

	sql(t, "UPDATE keys SET break_glass = 1 WHERE id = ?1", glass.id);
	write_config_machine(t, "[sync]\nmax_staleness = 10m\n");
	heartbeat(t, 3600);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS); /* not a replica */
	sql(t, "INSERT INTO meta (name, value) VALUES ('fleet_role', ?1)", "replica");
	check_unavailable(t, k.token);
	assert_int_equal(auth(t, "bob", k.token), PAM_AUTH_ERR);
	assert_int_equal(auth(t, "ann", glass.token), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);

	heartbeat(t, 30);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	heartbeat(t, 3600);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_AUTHINFO_UNAVAIL);

	write_config_machine(t, "[sync]\nmax_staleness = 0\n");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
}

/* ---- conversation, arguments, memory --------------------------------------- */

static void
conversation_fails(void **state)
{
	struct t *t = *state;

	operator_key(t);
	start(t, "ann", "x");
	t->conv_rc = PAM_CONV_ERR;
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_CONV_ERR);
	start(t, "ann", NULL); /* answers without a response */
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_CONV_ERR);
	start(t, "ann", "x");
	t->conv_rc = PAM_BUF_ERR;
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_BUF_ERR);
	start(t, "ann", "x");
	t->conv_rc = PAM_CONV_AGAIN;
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_CONV_ERR);
}

static void
out_of_memory(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	int rc;

	start(t, "ann", k.token);
	/* SQLite's allocations now fail; the module shares this process's SQLite */
	sqlite3_hard_heap_limit64(1);
	rc = pam_authenticate(t->pamh, 0);
	sqlite3_hard_heap_limit64(0);
	assert_int_equal(rc, PAM_BUF_ERR);
	assert_null(authtok(t));
}

static void
bad_arguments(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	static const char *const bad[] = {
	    "use_frist_pass", "role=admin", "role=", "config=relative.conf", "prompt=", "DEBUG"};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_stack(t, bad[i]);
		assert_int_equal(auth(t, "ann", k.token), PAM_SERVICE_ERR);
		assert_int_equal(t->prompts, 0);
		assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SERVICE_ERR);
		assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), PAM_SERVICE_ERR);
		assert_int_equal(pam_open_session(t->pamh, 0), PAM_SERVICE_ERR);
		assert_int_equal(pam_close_session(t->pamh, 0), PAM_SERVICE_ERR);
	}
	write_stack(t, "debug nodelay [prompt=Key for this host:] role=operator try_first_pass");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_string_equal(t->prompt, "Key for this host: ");
}

/* Neither value of an argument given twice may win, nor may a repeated flag pass. */
static void
arguments_given_twice(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *other = fx_join(t->fx->dir, "other.conf"), *config_twice;
	const char *twice[] = {
	    "role=owner role=viewer",
	    "role=operator role=operator",
	    "debug debug",
	    "nodelay nodelay",
	    "use_first_pass use_first_pass",
	    "try_first_pass nodelay try_first_pass",
	    "[prompt=Key:] [prompt=Key:]",
	    NULL, /* config=A config=B: the stack line names config= first */
	};

	fx_write_str(other, 0600, "");
	assert_true(asprintf(&config_twice, "config=%s", other) > 0);
	twice[sizeof twice / sizeof twice[0] - 1] = config_twice;
	for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
		write_stack(t, twice[i]);
		start(t, "ann", k.token);
		preset(t, k.token);
		assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SERVICE_ERR);
		assert_int_equal(t->prompts, 0);
		assert_null(authtok(t)); /* the token preset is not forwarded either */
		assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SERVICE_ERR);
		assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), PAM_SERVICE_ERR);
		assert_int_equal(pam_open_session(t->pamh, 0), PAM_SERVICE_ERR);
		assert_null(pam_getenv(t->pamh, "VIAMKEY_KEY_ID"));
		assert_int_equal(pam_close_session(t->pamh, 0), PAM_SERVICE_ERR);
		assert_int_equal(pam_chauthtok(t->pamh, 0), PAM_SERVICE_ERR);
	}

	/* each once, the same arguments work */
	write_stack(t, "role=operator debug nodelay try_first_pass");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
	free(config_twice);
	free(other);
}

/* ---- account management re-checks the key -------------------------------- */

/*
 * An authentication of `user` with the token after which account
 * management would let the allow stand unless the store changes: the first
 * authentication records the key's use (a write), the store is then
 * backdated (fx_backdate) past the time a stamp needs to settle, and the
 * second authentication, whose code is returned, writes nothing.
 */
static int
auth_settled(struct t *t, const char *user, const char *token)
{
	(void)auth(t, user, token);
	fx_backdate(t->fx->path, 60);
	return auth(t, user, token);
}

/* pam_acct_mgmt() while SQLite cannot allocate: PAM_BUF_ERR whenever the module reads the store. */
static int
acct_mgmt_without_sqlite(struct t *t)
{
	int rc;

	sqlite3_hard_heap_limit64(1);
	rc = pam_acct_mgmt(t->pamh, 0);
	sqlite3_hard_heap_limit64(0);
	return rc;
}

/*
 * Account management lets authentication's allow stand without opening
 * the store when nothing wrote it since (SQLite cannot allocate, yet it
 * succeeds), and reads the store whenever something may have: the
 * authentication recorded the key's use, or the store's time was too
 * recent when authentication stamped it to tell a later write apart (here
 * ahead of the clock, which no real write leaves, so as not to depend on
 * how long authentication takes).
 */
static void
account_allow_stands(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t), other = operator_key(t);

	assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(acct_mgmt_without_sqlite(t), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);

	fx_backdate(t->fx->path, 60);
	assert_int_equal(auth(t, "ann", other.token), PAM_SUCCESS); /* its first use */
	assert_int_equal(acct_mgmt_without_sqlite(t), PAM_BUF_ERR);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);

	fx_backdate(t->fx->path, -10); /* a time that no later write could be told from */
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(acct_mgmt_without_sqlite(t), PAM_BUF_ERR);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
}

enum change {
	NOTHING,
	RENAME,
	OTHER_KEY,
	DISABLE,
	DELETE,
	REMOVE_USER,
	UNGRANT,
	LOWER_ROLE,
	EXPIRE,
};

/* A change to key id as keyadm makes it, in its own transaction. */
static void
change(struct t *t, const char *id, enum change c)
{
	struct vk_txn x;
	char err[VK_ERRLEN] = "";
	vk_rc rc = VK_OK;

	if (c == NOTHING)
		return;
	if (c == OTHER_KEY) {
		(void)operator_key(t);
		return;
	}
	fx_begin(t->fx, &x, vk_now());
	switch (c) {
	case RENAME:
		rc = vk_key_change(&x, id, VK_KEY_RENAME, "renamed", err);
		break;
	case DISABLE:
		rc = vk_key_change(&x, id, VK_KEY_DISABLE, NULL, err);
		break;
	case DELETE:
		rc = vk_key_change(&x, id, VK_KEY_DELETE, NULL, err);
		break;
	case REMOVE_USER:
		rc = vk_key_remove_user(&x, id, "ann", err);
		break;
	case UNGRANT:
		rc = vk_key_ungrant(&x, id, "machine", t->fx->m1a, err);
		break;
	case LOWER_ROLE:
		rc = vk_key_grant(&x, id, VK_ROLE_VIEWER, "machine", t->fx->m1a, err);
		break;
	default: /* EXPIRE: keyadm sets an expiry only on a new key; here it has passed */
		rc = vk_store_exec(x.db, "expire", err, NULL,
		                   "UPDATE keys SET expires_at = unixepoch() - 1 WHERE id = ?1",
		                   "t", id);
		break;
	}
	if (fx_end(&x, rc) != VK_OK)
		fail_msg("%s", err);
}

/*
 * A change to the store between authentication and account management,
 * where the allow would otherwise stand, makes account management read the
 * store (SQLite unable to allocate: PAM_BUF_ERR) and decide on it: each
 * change keyadm makes that refuses the key is refused, and changes that
 * leave the key as it was are not. The key is ann's and bob's, with
 * operator on this machine and on another.
 */
static void
account_sees_each_change(void **state)
{
	struct t *t = *state;
	static const struct {
		enum change change;
		int rc;
	} cases[] = {
	    {NOTHING, PAM_SUCCESS},     {RENAME, PAM_SUCCESS},
	    {OTHER_KEY, PAM_SUCCESS},   {DISABLE, PAM_PERM_DENIED},
	    {DELETE, PAM_PERM_DENIED},  {REMOVE_USER, PAM_PERM_DENIED},
	    {UNGRANT, PAM_PERM_DENIED}, {LOWER_ROLE, PAM_PERM_DENIED},
	    {EXPIRE, PAM_ACCT_EXPIRED},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fx_key k = operator_key(t);

		sql(t, "INSERT INTO key_users (key_id, user) VALUES (?1, 'bob')", k.id);
		fx_grant(t->fx, k.id, VK_ROLE_OPERATOR, "machine", t->fx->m3);
		assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
		change(t, k.id, cases[i].change);
		if (cases[i].change != NOTHING)
			assert_int_equal(acct_mgmt_without_sqlite(t), PAM_BUF_ERR);
		assert_int_equal(pam_acct_mgmt(t->pamh, 0), cases[i].rc);
	}
}

/* A key that expires between authentication and account management, the store unchanged. */
static void
account_sees_expiry(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	int64_t expires = vk_now() + 2;
	char at[32];

	snprintf(at, sizeof at, "%lld", (long long)expires);
	sql(t, "UPDATE keys SET expires_at = CAST(?1 AS INTEGER)", at);
	assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
	while (vk_now() < expires)
		usleep(100000);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_ACCT_EXPIRED);
}

static void
account_recheck(void **state)
{
	struct t *t = *state;
	char *elsewhere;

	assert_true(asprintf(&elsewhere, "UPDATE grants SET resource_id = '%s' WHERE key_id = ?1",
	                     t->fx->m3) > 0);
	const struct {
		const char *change;
		int rc;
	} cases[] = {
	    {"SELECT ?1", PAM_SUCCESS},
	    {"UPDATE keys SET disabled = 1 WHERE id = ?1", PAM_PERM_DENIED},
	    {"DELETE FROM keys WHERE id = ?1", PAM_PERM_DENIED},
	    {"UPDATE keys SET expires_at = unixepoch() - 1 WHERE id = ?1", PAM_ACCT_EXPIRED},
	    {"DELETE FROM grants WHERE key_id = ?1", PAM_PERM_DENIED},
	    {"DELETE FROM key_users WHERE key_id = ?1", PAM_PERM_DENIED},
	    {"UPDATE grants SET role = 'viewer' WHERE key_id = ?1", PAM_PERM_DENIED},
	    {elsewhere, PAM_PERM_DENIED},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct fx_key k = operator_key(t);

		assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
		sql(t, cases[i].change, k.id);
		assert_int_equal(pam_acct_mgmt(t->pamh, 0), cases[i].rc);
	}
	free(elsewhere);
}

static void
account_recheck_user_and_store(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *moved = fx_join(t->fx->dir, "moved.db");

	assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_set_item(t->pamh, PAM_USER, "bob"), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_PERM_DENIED);

	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(rename(t->fx->path, moved), 0);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_AUTHINFO_UNAVAIL);
	assert_int_equal(rename(moved, t->fx->path), 0);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
	free(moved);
}

static void
account_role_argument(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *path = fx_join(t->confdir, SERVICE), *text;

	assert_true(asprintf(&text,
	                     "auth required %1$s config=%2$s role=viewer\n"
	                     "account required %1$s config=%2$s\n",
	                     VK_MODULE_PATH, t->conf) > 0);
	fx_write_str(path, 0600, text);
	free(text);
	sql(t, "UPDATE grants SET role = 'viewer' WHERE key_id = ?1", k.id);
	/* authentication asked for viewer; account re-checks that, not [pam]'s operator */
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);

	assert_true(asprintf(&text,
	                     "auth required %1$s config=%2$s\n"
	                     "account required %1$s config=%2$s role=owner\n",
	                     VK_MODULE_PATH, t->conf) > 0);
	fx_write_str(path, 0600, text);
	free(text);
	sql(t, "UPDATE grants SET role = 'operator' WHERE key_id = ?1", k.id);
	assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_PERM_DENIED);
	free(path);
}

/* Account management decides for the machine the config names when it runs. */
static void
account_machine_from_config(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *other;

	assert_int_equal(auth_settled(t, "ann", k.token), PAM_SUCCESS);
	assert_true(asprintf(&other, "[machine]\nid = %s\n", t->fx->m3) > 0);
	write_config(t, other);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_PERM_DENIED);
	write_config_machine(t, "");
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
	free(other);
}

/* ---- without a key: PAM_IGNORE -------------------------------------------- */

static void
ignore_without_key(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);

	start(t, "ann", NULL);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), IGNORED);
	assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), CRED_IGNORED);
	assert_int_equal(pam_open_session(t->pamh, 0), IGNORED);
	assert_int_equal(pam_close_session(t->pamh, 0), IGNORED);
	assert_null(pam_getenv(t->pamh, "VIAMKEY_KEY_ID"));

	/* a failed authentication leaves nothing; nor does one after a success */
	assert_int_equal(auth(t, "ann", "wrong"), PAM_AUTH_ERR);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), IGNORED);
	t->answer = k.token;
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
	assert_non_null(pam_getenv(t->pamh, "VIAMKEY_KEY_ID"));
	t->answer = "wrong";
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_AUTH_ERR);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), IGNORED);
	assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), CRED_IGNORED);
	assert_int_equal(pam_open_session(t->pamh, 0), IGNORED);
	assert_null(pam_getenv(t->pamh, "VIAMKEY_KEY_ID"));
}

/*
 * sshd authenticates in a child process and carries only its PAM
 * environment back: setcred and sessions take VIAMKEY_KEY_ID there as the
 * sign of a key; account management does not.
 */
static void
environment_carried_over(void **state)
{
	struct t *t = *state;

	start(t, "ann", NULL);
	assert_int_equal(pam_putenv(t->pamh, "VIAMKEY_KEY_ID=0e5b1e9c-4f1a-4c49-9d3a-2f1e8c6b7a10"),
	                 PAM_SUCCESS);
	assert_int_equal(pam_setcred(t->pamh, PAM_ESTABLISH_CRED), PAM_SUCCESS);
	assert_int_equal(pam_open_session(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_close_session(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(pam_acct_mgmt(t->pamh, 0), IGNORED);
}

/* ---- PAM_AUTHTOK hygiene --------------------------------------------------- */

static void
authtok_after_prompt(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);

	assert_int_equal(auth(t, "ann", "unix password"), PAM_AUTH_ERR);
	assert_string_equal(authtok(t), "unix password"); /* for pam_unix try_first_pass */
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_null(authtok(t));
	sql(t, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTH_ERR);
	assert_null(authtok(t));

	write_stack(t, "forward_authtok");
	assert_int_equal(auth(t, "ann", k.token), PAM_AUTH_ERR);
	assert_string_equal(authtok(t), k.token);
}

static void
authtok_sources(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);

	write_stack(t, "use_first_pass");
	start(t, "ann", "never asked");
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_AUTH_ERR); /* nothing set */
	assert_int_equal(t->prompts, 0);
	preset(t, k.token);
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(t->prompts, 0);
	assert_null(authtok(t));

	write_stack(t, "try_first_pass");
	start(t, "ann", k.token);
	preset(t, "a password");
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_AUTH_ERR);
	assert_int_equal(t->prompts, 0);
	assert_string_equal(authtok(t), "a password");
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS); /* unset: it asks */
	assert_int_equal(t->prompts, 1);

	write_stack(t, "forward_authtok use_first_pass");
	start(t, "ann", NULL);
	preset(t, k.token);
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SUCCESS);
	assert_string_equal(authtok(t), k.token);

	write_stack(t, ""); /* the default prompts even when PAM_AUTHTOK is set */
	start(t, "ann", k.token);
	preset(t, "a password");
	assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SUCCESS);
	assert_int_equal(t->prompts, 1);
	assert_string_equal(authtok(t), "a password");
}

/* "<before><token><after>"; the caller frees it. */
static char *
padded(const char *before, const char *token, const char *after)
{
	char *s;

	assert_true(asprintf(&s, "%s%s%s", before, token, after) > 0);
	return s;
}

/* Spaces, tabs, CRs and LFs around a token are not part of it, wherever it comes from. */
static void
token_with_white_space(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	static const char *const around[][2] = {
	    {"", " "},    {"", "\t"}, {"", "\r"}, {" ", ""},
	    {"", "\r\n"}, {"\t", ""}, {"\n", ""}, {" \t\r\n ", " \t\r\n "},
	};

	for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
		char *answer = padded(around[i][0], k.token, around[i][1]);

		write_stack(t, "");
		assert_int_equal(auth(t, "ann", answer), PAM_SUCCESS);
		assert_null(authtok(t));
		assert_int_equal(pam_acct_mgmt(t->pamh, 0), PAM_SUCCESS);
		assert_int_equal(pam_open_session(t->pamh, 0), PAM_SUCCESS);
		assert_string_equal(pam_getenv(t->pamh, "VIAMKEY_KEY_ID"), k.id);

		write_stack(t, "use_first_pass");
		start(t, "ann", NULL);
		preset(t, answer);
		assert_int_equal(pam_authenticate(t->pamh, 0), PAM_SUCCESS);
		assert_null(authtok(t));
		free(answer);
	}
	/* white space inside a token is not trimmed away */
	{
		char *inside = strdup(k.token);

		assert_non_null(inside);
		inside[10] = ' ';
		assert_int_equal(auth(t, "ann", inside), PAM_AUTH_ERR);
		assert_null(authtok(t));
		free(inside);
	}
}

/*
 * An answer that is token-shaped once trimmed ("vk_..."), accepted or
 * refused, is never left in PAM_AUTHTOK for the next module, whether it was
 * typed at the prompt or found there; anything else is, and forward_authtok
 * leaves a token too.
 */
static void
token_shaped_never_forwarded(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *cr = padded("", k.token, "\r"), *spaced = padded("\t ", k.token, "\r\n");
	const struct {
		const char *answer;
		int rc;
	} shaped[] = {
	    {k.token, PAM_SUCCESS},     {cr, PAM_SUCCESS},
	    {spaced, PAM_SUCCESS},      {"vk_#garbage! with spaces\x01", PAM_AUTH_ERR},
	    {"  vk_abc", PAM_AUTH_ERR}, {"\r\nvk_", PAM_AUTH_ERR},
	};
	static const char *const passwords[] = {"unix password", "  vk", "VK_abc", "xvk_abc",
	                                        OPENSSH_FAKE};

	for (size_t i = 0; i < sizeof shaped / sizeof shaped[0]; i++) {
		write_stack(t, "");
		assert_int_equal(auth(t, "ann", shaped[i].answer), shaped[i].rc);
		assert_null(authtok(t));
		write_stack(t, "try_first_pass");
		start(t, "ann", "never asked");
		preset(t, shaped[i].answer);
		assert_int_equal(pam_authenticate(t->pamh, 0), shaped[i].rc);
		assert_int_equal(t->prompts, 0);
		assert_null(authtok(t));
		write_stack(t, "forward_authtok");
		assert_int_equal(auth(t, "ann", shaped[i].answer), shaped[i].rc);
		assert_string_equal(authtok(t), shaped[i].answer);
	}
	for (size_t i = 0; i < sizeof passwords / sizeof passwords[0]; i++) {
		write_stack(t, "");
		assert_int_equal(auth(t, "ann", passwords[i]), PAM_AUTH_ERR);
		assert_string_equal(authtok(t), passwords[i]);
		write_stack(t, "use_first_pass");
		start(t, "ann", NULL);
		preset(t, passwords[i]);
		assert_int_equal(pam_authenticate(t->pamh, 0), PAM_AUTH_ERR);
		assert_string_equal(authtok(t), passwords[i]);
	}
	free(cr);
	free(spaced);
}

/*
 * The stack of the man page, `sufficient` and then a module that takes
 * PAM_AUTHTOK: here pam_exec's expose_authtok, which writes what it got to
 * a file, and prompts itself when PAM_AUTHTOK is unset.
 */
static void
sufficient_then_next_module(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *path = fx_join(t->confdir, SERVICE), *out = fx_join(t->fx->dir, "seen");
	char *script = fx_join(t->fx->dir, "seen.sh"), *text, seen[64] = "";
	FILE *f;

	fx_write_str(script, 0700, "#!/bin/sh\ncat > \"$1\"\n");
	assert_true(asprintf(&text,
	                     "auth sufficient %s config=%s\n"
	                     "auth required pam_exec.so expose_authtok quiet %s %s\n",
	                     VK_MODULE_PATH, t->conf, script, out) > 0);
	fx_write_str(path, 0600, text);

	assert_int_equal(auth(t, "ann", "unix password"), PAM_SUCCESS);
	assert_int_equal(t->prompts, 1); /* one prompt served both modules */
	assert_non_null(f = fopen(out, "r"));
	assert_true(fread(seen, 1, sizeof seen - 1, f) > 0);
	fclose(f);
	assert_string_equal(seen, "unix password");

	assert_int_equal(unlink(out), 0);
	sql(t, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS); /* pam_exec asked again */
	assert_int_equal(t->prompts, 2);
	assert_string_equal(t->prompt, "Password: ");
	free(text);
	free(script);
	free(out);
	free(path);
}

/* ---- fail delay, prompt text, last use ------------------------------------ */

static void
fail_delay(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char *text;

	assert_int_equal(auth(t, "ann", "wrong"), PAM_AUTH_ERR);
	/* libpam varies the requested 300 ms pseudo-randomly, by less than a half */
	assert_in_range(t->delay, 150000, 450000);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(t->delay, 0);
	write_stack(t, "nodelay");
	assert_int_equal(auth(t, "ann", "wrong"), PAM_AUTH_ERR);
	assert_int_equal(t->delay, 0);
	write_stack(t, "");
	assert_true(asprintf(&text,
	                     "[store]\npath = %s\n[machine]\nid = %s\n[pam]\nfail_delay_ms = 0\n",
	                     t->fx->path, t->fx->m1a) > 0);
	fx_write_str(t->conf, 0600, text);
	free(text);
	assert_int_equal(auth(t, "ann", "wrong"), PAM_AUTH_ERR);
	assert_int_equal(t->delay, 0);
}

static void
prompt_text(void **state)
{
	struct t *t = *state;

	write_config_machine(t, "[pam]\nprompt = Viam key:\n");
	assert_int_equal(auth(t, "ann", "x"), PAM_AUTH_ERR);
	assert_string_equal(t->prompt, "Viam key: ");
	write_stack(t, "[prompt=Token please: ]");
	assert_int_equal(auth(t, "ann", "x"), PAM_AUTH_ERR);
	assert_string_equal(t->prompt, "Token please: ");
}

static void
last_use(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	const char *recorded =
	    "SELECT count(*) FROM keys WHERE id = ?1 AND last_used_at IS NOT NULL"
	    " AND last_used_service = '" SERVICE "' AND last_used_user = 'ann'"
	    " AND last_used_rhost = '" RHOST "'";

	assert_int_equal(auth(t, "ann", "wrong"), PAM_AUTH_ERR);
	assert_int_equal(fx_count(t->fx->db,
	                          "SELECT count(*) FROM keys WHERE id = ?1 AND"
	                          " last_used_at IS NULL",
	                          k.id),
	                 1);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(fx_count(t->fx->db, recorded, k.id), 1);

	/* within [audit] last_used_interval (60 s) a second login writes nothing */
	sql(t,
	    "UPDATE keys SET last_used_at = unixepoch() - 30, last_used_user = 'x' WHERE id = ?1",
	    k.id);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(fx_count(t->fx->db, recorded, k.id), 0);
	sql(t, "UPDATE keys SET last_used_at = unixepoch() - 61 WHERE id = ?1", k.id);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	assert_int_equal(fx_count(t->fx->db, recorded, k.id), 1);
}

static void
last_use_never_blocks_login(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char err[VK_ERRLEN];

	/* a writer holds the store: the login still reads it and succeeds */
	assert_int_equal(vk_store_begin(t->fx->db, err), VK_OK);
	assert_int_equal(auth(t, "ann", k.token), PAM_SUCCESS);
	vk_store_rollback(t->fx->db);
	assert_int_equal(fx_count(t->fx->db,
	                          "SELECT count(*) FROM keys WHERE id = ?1 AND"
	                          " last_used_at IS NULL",
	                          k.id),
	                 1);
}

/* ---- syslog ------------------------------------------------------------------ */

struct log {
	int fd;
	int lines, decisions;
	char all[16384];
};

/*
 * Collects what the module logged since the last call. A datagram socket
 * queues only a few messages, so this runs after every PAM call. Returns -1
 * for a decision line without the remote host.
 */
static int
drain(struct log *l)
{
	char buf[2048];
	ssize_t n;

	while ((n = recv(l->fd, buf, sizeof buf - 1, MSG_DONTWAIT)) > 0) {
		buf[n] = '\0';
		if (strstr(buf, "pam_viamkey(" SERVICE ":") == NULL)
			continue; /* libpam's own messages */
		l->lines++;
		if (strstr(buf, " service=" SERVICE " ") != NULL) {
			l->decisions++;
			if (strstr(buf, " rhost=" RHOST " ") == NULL)
				return -1;
		}
		strncat(l->all, buf, sizeof l->all - strlen(l->all) - 2);
		strcat(l->all, "\n");
	}
	return 0;
}

/* What a child that logs through this test's /dev/log checks; 0 when all is well. */
typedef int (*logged_fn)(struct t *t, struct log *l, const void *arg);

/*
 * In a child with a private mount namespace and a tmpfs /dev whose /dev/log
 * is this test's socket: runs body. 77 when the namespace cannot be made.
 */
static int
syslog_child(struct t *t, logged_fn body, const void *arg)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct log l = {.fd = -1};

	if (unshare(CLONE_NEWNS) != 0 ||
	    mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755") != 0)
		return 77;
	snprintf(sa.sun_path, sizeof sa.sun_path, "/dev/log");
	if ((l.fd = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0 ||
	    bind(l.fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		return 1;
	return body(t, &l, arg);
}

/* Runs body in such a child (root only: skipped otherwise) and fails on its failure. */
static void
with_syslog(struct t *t, logged_fn body, const void *arg)
{
	int status;
	pid_t pid;

	if (geteuid() != 0)
		fx_skip(
		    "the module's syslog lines are read through a private /dev/log, as root only");
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(syslog_child(t, body, arg));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		fx_skip("cannot make a private mount namespace for /dev/log");
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* An allowed and two denied logins with `debug`, and every line the module logged. */
static int
logged_decisions(struct t *t, struct log *l, const void *arg)
{
	const struct fx_key *k = arg;

	write_stack(t, "debug");
	if (auth(t, "ann", k->token) != PAM_SUCCESS || drain(l) != 0)
		return 10;
	if (pam_acct_mgmt(t->pamh, 0) != PAM_SUCCESS || drain(l) != 0)
		return 11;
	if (auth(t, "bob", k->token) != PAM_AUTH_ERR || drain(l) != 0)
		return 12;
	if (auth(t, "ann", "vk_wrong") != PAM_AUTH_ERR || drain(l) != 0)
		return 13;
	if (l->decisions != 4 || l->lines <= l->decisions ||
	    strstr(l->all, "allow service=" SERVICE " user=ann rhost=" RHOST) == NULL ||
	    strstr(l->all, "reason=user_not_allowed") == NULL ||
	    strstr(l->all, "reason=malformed") == NULL || strstr(l->all, k->id) == NULL)
		return 3;
	/* an allow says nothing more than its reason: no side file's absence */
	if (strstr(l->all, " reason=ok\n") == NULL || strstr(l->all, " reason=ok (") != NULL)
		return 5;
	/* never the token, nor any long piece of its secret */
	if (strstr(l->all, k->token) != NULL ||
	    strstr(l->all, k->token + VK_TOKEN_LEN - 20) != NULL ||
	    strstr(l->all, "vk_wrong") != NULL)
		return 4;
	return 0;
}

static void
syslog_lines(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);

	with_syslog(t, logged_decisions, &k);
}

/*
 * Why an unusable store is unusable, as the administrator reads it: a side
 * file that others may read names the command that fixes it, and a store
 * recorded on another host says unknown_machine.
 */
static int
logged_store_refusals(struct t *t, struct log *l, const void *arg)
{
	const struct fx_key *k = arg;
	char *shm = side_file(t, "-shm"), *fix;
	int rc = 0;

	if (shm == NULL)
		return 1;
	if (asprintf(&fix,
	             "reason=store_error (store file %s is readable or writable by group or"
	             " others; run chmod 600 %s)",
	             shm, shm) < 0)
		return 1;
	if (chmod(shm, 0644) != 0 || auth(t, "ann", k->token) != PAM_AUTHINFO_UNAVAIL ||
	    drain(l) != 0 || chmod(shm, 0600) != 0)
		rc = 10;
	else if (strstr(l->all, fix) == NULL || strstr(l->all, "error service=" SERVICE) == NULL)
		rc = 11;
	free(fix);
	free(shm);
	if (rc != 0)
		return rc;

	write_config(t, ""); /* no [machine] id: the store's record, bound to another host */
	if (auth(t, "ann", k->token) != PAM_AUTHINFO_UNAVAIL || drain(l) != 0)
		return 12;
	if (strstr(l->all, "reason=unknown_machine (the store's machine ") == NULL ||
	    strstr(l->all, "was recorded on another host; set [machine] id in the config)") == NULL)
		return 13;
	return 0;
}

static void
syslog_store_refusals(void **state)
{
	struct t *t = *state;
	struct fx_key k = operator_key(t);
	char err[VK_ERRLEN];

	if (!fx_have_machine_id())
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	assert_int_equal(vk_store_set_host_machine(t->fx->db, t->fx->m1a, err), VK_OK);
	sql(t, "UPDATE meta SET value = ?1 WHERE name = 'host_binding'", OTHER_HOST);
	with_syslog(t, logged_store_refusals, &k);
}

/* ---- what the module exports ------------------------------------------------ */

static void
exports_only_pam_sm(void **state)
{
	static const char *const entry[] = {"pam_sm_authenticate",  "pam_sm_setcred",
	                                    "pam_sm_acct_mgmt",     "pam_sm_open_session",
	                                    "pam_sm_close_session", "pam_sm_chauthtok"};
	static const char *const internal[] = {"vk_authorize",      "vk_token_parse",
	                                       "vk_config_load",    "vk_store_open",
	                                       "vk_pam_args_parse", "vk_seterr"};
	void *so = dlopen(VK_MODULE_PATH, RTLD_NOW | RTLD_LOCAL);

	(void)state;
	assert_non_null(so);
	for (size_t i = 0; i < sizeof entry / sizeof entry[0]; i++)
		assert_non_null(dlsym(so, entry[i]));
	for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++)
		assert_null(dlsym(so, internal[i]));
	dlclose(so);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    T(allow_and_every_entry_point),
	    T(session_role_is_the_granted_one),
	    T(machine_from_the_store),
	    T(scope),
	    T(roles),
	    T(denials),
	    T(rotation_window),
	    T(openssh_invalid_user_password),
	    T(odd_answers),
	    T(store_unusable),
	    T(store_corrupt),
	    T(store_symlink_refused),
	    T(config_unusable),
	    T(machine_unknown),
	    T(checksum_before_store),
	    T(stateless_between_calls),
	    T(store_side_files),
	    T(store_from_another_host),
	    T(stale_replica),
	    T(conversation_fails),
	    T(out_of_memory),
	    T(bad_arguments),
	    T(arguments_given_twice),
	    T(account_allow_stands),
	    T(account_sees_each_change),
	    T(account_sees_expiry),
	    T(account_recheck),
	    T(account_recheck_user_and_store),
	    T(account_role_argument),
	    T(account_machine_from_config),
	    T(ignore_without_key),
	    T(environment_carried_over),
	    T(authtok_after_prompt),
	    T(authtok_sources),
	    T(token_with_white_space),
	    T(token_shaped_never_forwarded),
	    T(sufficient_then_next_module),
	    T(fail_delay),
	    T(prompt_text),
	    T(last_use),
	    T(last_use_never_blocks_login),
	    T(syslog_lines),
	    T(syslog_store_refusals),
	    cmocka_unit_test(exports_only_pam_sm),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
