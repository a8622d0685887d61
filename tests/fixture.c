/*
 * fixture.c - temporary files and stores for the unit tests of common/.
 */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"
#include "store.h"

void
fx_init(void)
{
	umask(077);
	if (sodium_init() < 0)
		abort();
}

void
fx_skip_at(const char *why, const char *file, int line)
{
	const char *strict = getenv("VK_STRICT");

	if (strict != NULL && strcmp(strict, "1") == 0) {
		fail_msg("%s:%d: %s; a strict run (VK_STRICT=1) must run every test", file, line,
		         why);
	}
	print_message("skipped at %s:%d: %s\n", file, line, why);
	skip();
}

int
fx_have_machine_id(void)
{
	char id[64] = "";
	FILE *fp = fopen("/etc/machine-id", "r");

	if (fp == NULL)
		return 0;
	if (fgets(id, sizeof id, fp) == NULL)
		id[0] = '\0';
	fclose(fp);
	/* as the store reads it: 32 lowercase hex digits, then a newline or nothing */
	return strspn(id, "0123456789abcdef") == 32 && (id[32] == '\0' || id[32] == '\n');
}

char *
fx_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;

	dir = fx_join(base != NULL && *base != '\0' ? base : "/tmp", "viamkey-test.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return dir;
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

void
fx_rmtree(char *dir)
{
	if (dir == NULL)
		return;
	assert_int_equal(nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(dir);
}

void
fx_backdate(const char *path, int seconds)
{
	static const char *const suffixes[] = {"", "-wal", "-journal"};
	struct timespec times[2];

	assert_int_equal(clock_gettime(CLOCK_REALTIME, &times[0]), 0);
	times[0].tv_sec -= seconds;
	times[1] = times[0];
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char *name;

		assert_true(asprintf(&name, "%s%s", path, suffixes[i]) > 0);
		if (utimensat(AT_FDCWD, name, times, AT_SYMLINK_NOFOLLOW) != 0)
			assert_int_equal(errno, ENOENT);
		free(name);
	}
}

char *
fx_join(const char *dir, const char *name)
{
	char *path;

	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	return path;
}

void
fx_write(const char *path, mode_t mode, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

void
fx_write_str(const char *path, mode_t mode, const char *text)
{
	fx_write(path, mode, text, strlen(text));
}

void
fx_sql(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
}

void
fx_sql1(sqlite3 *db, const char *sql, const char *arg)
{
	char err[VK_ERRLEN];

	if (vk_store_exec(db, "fixture", err, NULL, sql, "t", arg) != VK_OK)
		fail_msg("%s", err);
}

int64_t
fx_count(sqlite3 *db, const char *sql, const char *arg)
{
	char err[VK_ERRLEN];
	int64_t n;

	if (vk_store_query_int(db, "fixture", err, &n, sql, arg != NULL ? "t" : "", arg) != VK_OK)
		fail_msg("%s", err);
	return n;
}

void
fx_random_uuid(char out[VK_UUID_STRLEN + 1])
{
	unsigned char raw[VK_KEY_ID_BYTES];

	vk_uuid_generate(raw);
	vk_uuid_format(raw, out);
}

void
fx_uppercase(const char *in, char *out)
{
	do
		*out++ = (char)toupper((unsigned char)*in);
	while (*in++ != '\0');
}

/*
 * Inserts a resource with a fresh ID. sql takes ?1 id, ?2 parent, ?3 time;
 * an organization has no parent and leaves ?2 unused.
 */
static void
insert_node(sqlite3 *db, const char *sql, const char *parent, char id[VK_UUID_STRLEN + 1])
{
	char err[VK_ERRLEN];

	fx_random_uuid(id);
	if (vk_store_exec(db, "fixture", err, NULL, sql, "tti", id, parent, FX_NOW) != VK_OK)
		fail_msg("%s", err);
}

#define ORG_SQL  "INSERT INTO organizations (id, name, created_at) VALUES (?1, 'org', ?3)"
#define LOC_SQL  "INSERT INTO locations (id, org_id, name, created_at) VALUES (?1, ?2, 'loc', ?3)"
#define MACH_SQL "INSERT INTO machines (id, location_id, name, created_at) VALUES (?1, ?2, 'm', ?3)"

int
fx_store_setup(void **state)
{
	struct fx_store *fx = calloc(1, sizeof *fx);
	char err[VK_ERRLEN];

	assert_non_null(fx);
	fx->dir = fx_tmpdir();
	fx->path = fx_join(fx->dir, "keys.db");
	if (vk_store_open(fx->path, VK_OPEN_INIT, 1000, &fx->db, err) != VK_OK)
		fail_msg("%s", err);
	insert_node(fx->db, ORG_SQL, NULL, fx->org);
	insert_node(fx->db, LOC_SQL, fx->org, fx->loc1);
	insert_node(fx->db, LOC_SQL, fx->org, fx->loc2);
	insert_node(fx->db, MACH_SQL, fx->loc1, fx->m1a);
	insert_node(fx->db, MACH_SQL, fx->loc1, fx->m1b);
	insert_node(fx->db, MACH_SQL, fx->loc2, fx->m2);
	insert_node(fx->db, ORG_SQL, NULL, fx->org2);
	insert_node(fx->db, LOC_SQL, fx->org2, fx->loc3);
	insert_node(fx->db, MACH_SQL, fx->loc3, fx->m3);
	*state = fx;
	return 0;
}

int
fx_store_teardown(void **state)
{
	struct fx_store *fx = *state;

	assert_int_equal(sqlite3_close(fx->db), SQLITE_OK);
	fx_rmtree(fx->dir);
	free(fx->path);
	free(fx);
	return 0;
}

void
fx_begin(struct fx_store *fx, struct vk_txn *t, int64_t now)
{
	char err[VK_ERRLEN];

	t->db = fx->db;
	t->actor = FX_ACTOR;
	t->effective = NULL;
	t->now = now;
	if (vk_txn_begin(t, err) != VK_OK)
		fail_msg("vk_txn_begin: %s", err);
}

vk_rc
fx_end(struct vk_txn *t, vk_rc rc)
{
	char err[VK_ERRLEN];

	if (rc != VK_OK)
		vk_txn_rollback(t);
	else if (vk_txn_commit(t, err) != VK_OK)
		fail_msg("vk_txn_commit: %s", err);
	assert_true(sqlite3_get_autocommit(t->db));
	return rc;
}

void
fx_key_spec(struct fx_store *fx, const struct vk_key_spec *spec, struct fx_key *out)
{
	char err[VK_ERRLEN];
	struct vk_txn t;

	fx_begin(fx, &t, FX_NOW);
	if (vk_key_create(&t, spec, out->id, out->token, err) != VK_OK)
		fail_msg("vk_key_create: %s", err);
	fx_end(&t, VK_OK);
}

void
fx_key(struct fx_store *fx, vk_role role, const char *type, const char *resource_id,
       struct fx_key *out)
{
	static const char *const users[] = {"ann"};
	struct vk_key_spec spec = {
	    .name = "test key",
	    .role = role,
	    .resource_type = type,
	    .resource_id = resource_id,
	    .users = users,
	    .nusers = 1,
	};

	fx_key_spec(fx, &spec, out);
}

void
fx_grant(struct fx_store *fx, const char *key_id, vk_role role, const char *type,
         const char *resource_id)
{
	char err[VK_ERRLEN];

	if (vk_store_exec(fx->db, "fixture", err, NULL,
	                  "INSERT INTO grants (key_id, role, resource_type, resource_id)"
	                  " VALUES (?1, ?2, ?3, ?4)",
	                  "tttt", key_id, vk_role_name(role), type, resource_id) != VK_OK)
		fail_msg("%s", err);
}

vk_rc
fx_rotate(struct fx_store *fx, const char *key_id, int64_t grace, int64_t now,
          char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN])
{
	struct vk_txn t;

	fx_begin(fx, &t, now);
	return fx_end(&t, vk_key_rotate(&t, key_id, grace, token, err));
}

vk_rc
fx_finish(struct fx_store *fx, const char *key_id, int64_t now, char err[VK_ERRLEN])
{
	struct vk_txn t;

	fx_begin(fx, &t, now);
	return fx_end(&t, vk_key_finish_rotation(&t, key_id, err));
}

struct vk_login
fx_login(const struct fx_store *fx)
{
	struct vk_login lg = {
	    .store_path = fx->path,
	    .busy_timeout_ms = 1000,
	    .last_used_interval = -1,
	};

	return lg;
}

struct vk_request
fx_request(const struct fx_store *fx, const char *token)
{
	struct vk_request req = {
	    .token = token,
	    .token_len = token != NULL ? strlen(token) : 0,
	    .user = "ann",
	    .machine_id = fx->m1a,
	    .required = VK_ROLE_VIEWER,
	    .now = FX_NOW + 1,
	    .service = "sshd",
	};

	return req;
}

int64_t
fx_data_version(struct fx_store *fx)
{
	return fx_count(fx->db, "PRAGMA data_version", NULL);
}

void
fx_assert_unchanged(struct fx_store *fx, int64_t before)
{
	assert_true(sqlite3_get_autocommit(fx->db));
	assert_int_equal(fx_data_version(fx), before);
}

void
fx_authorize(struct fx_store *fx, const struct vk_request *req, struct vk_result *res)
{
	struct vk_login lg = fx_login(fx);
	int64_t before = fx_data_version(fx);

	memset(res, 0x5a, sizeof *res);
	vk_authorize(&lg, req, res);
	fx_assert_unchanged(fx, before);
}

void
fx_recheck(struct fx_store *fx, const char *key_id, const struct vk_request *req,
           struct vk_result *res)
{
	struct vk_login lg = fx_login(fx);
	struct vk_result then;
	int64_t before = fx_data_version(fx);

	memset(&then, 0, sizeof then);
	snprintf(then.key_id, sizeof then.key_id, "%s", key_id);
	memset(res, 0x5a, sizeof *res);
	vk_authorize_recheck(&lg, &then, req, res);
	fx_assert_unchanged(fx, before);
}

vk_reason
fx_reason(struct fx_store *fx, const char *token, int64_t now)
{
	struct vk_request req = fx_request(fx, token);
	struct vk_result res;

	req.now = now;
	fx_authorize(fx, &req, &res);
	return res.reason;
}
