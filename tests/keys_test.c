/*
 * keys_test.c - keys and their secrets (keys.h), the tree (tree.h) and the
 * audit events every change records (txn.h).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "fixture.h"
#include "store.h"
#include "verifier.h"

#define ID_PART_LEN     (3 + VK_KEY_PART_LEN + 1) /* "vk_<key-id part>_" */
#define SECRET_PART_LEN 43

static const char *const two_users[] = {"ann", "bob", "ann"};

/* vk_key_clone() as carol at FX_NOW + 5. */
static vk_rc
clone(struct fx_store *fx, const char *id, const char *name, struct fx_key *out,
      char err[VK_ERRLEN])
{
	struct vk_txn t;

	fx_begin(fx, &t, FX_NOW + 5);
	t.actor = "carol";
	return fx_end(&t, vk_key_clone(&t, id, name, out->id, out->token, err));
}

static int64_t
secrets_of(struct fx_store *fx, const char *id)
{
	return fx_count(fx->db, "SELECT count(*) FROM secrets WHERE key_id = ?1", id);
}

static void
expect_err(const char *err, const char *needle)
{
	if (strstr(err, needle) == NULL)
		fail_msg("\"%s\" not in \"%s\"", needle, err);
}

static void
test_create_records_key(void **state)
{
	struct fx_store *fx = *state;
	struct vk_key_spec spec = {"deploy", VK_ROLE_OPERATOR, "location", fx->loc1, two_users,
	                           3,        FX_NOW + 3600,    1};
	struct fx_key k;
	struct vk_token t;
	char uuid[VK_UUID_STRLEN + 1], err[VK_ERRLEN];
	sqlite3_stmt *st;
	int64_t n;

	fx_key_spec(fx, &spec, &k);
	assert_int_equal(vk_token_parse(k.token, strlen(k.token), &t), VK_TOKEN_OK);
	vk_uuid_format(t.key_id, uuid);
	assert_string_equal(uuid, k.id);

	assert_int_equal(vk_store_query_int(fx->db, "q", err, &n,
	                                    "SELECT count(*) FROM keys WHERE id = ?1 AND"
	                                    " name = 'deploy' AND created_by = 'tester' AND"
	                                    " created_at = ?2 AND expires_at = ?3 AND protected = 1"
	                                    " AND disabled = 0 AND last_used_at IS NULL",
	                                    "tii", k.id, FX_NOW, FX_NOW + 3600),
	                 VK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM grants WHERE key_id = ?1", k.id),
	                 1);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM grants g, locations l WHERE g.key_id = ?1"
	                          " AND g.role = 'operator' AND g.resource_type = 'location'"
	                          " AND g.resource_id = l.id AND l.name = 'loc'",
	                          k.id),
	                 1);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT group_concat(user, ',') = 'ann,bob' FROM"
	                          " (SELECT user FROM key_users WHERE key_id = ?1 ORDER BY user)",
	                          k.id),
	                 1);

	/* one live secret whose verifier matches the printed token */
	assert_int_equal(sqlite3_prepare_v2(fx->db,
	                                    "SELECT alg, salt, verifier FROM secrets WHERE"
	                                    " key_id = ?1 AND expires_at IS NULL",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	sqlite3_bind_text(st, 1, k.id, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(
	    vk_verifier_check(&t, (const char *)sqlite3_column_text(st, 0),
	                      sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
	                      sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2)));
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	vk_token_wipe(&t);
}

static void
test_no_expiry_stored_as_null(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM keys WHERE id = ?1 AND expires_at IS NULL"
	                          " AND protected = 0",
	                          k.id),
	                 1);
}

static int
file_contains(const char *path, const void *needle, size_t len)
{
	FILE *fp = fopen(path, "rb");
	static char buf[1 << 20];
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof buf, fp);
	assert_true(feof(fp));
	fclose(fp);
	return memmem(buf, n, needle, len) != NULL;
}

/* The store and its write-ahead log, where the newest rows live until a checkpoint. */
static int
store_contains(const char *path, const void *needle, size_t len)
{
	char wal[PATH_MAX];

	snprintf(wal, sizeof wal, "%s-wal", path);
	return file_contains(path, needle, len) || file_contains(wal, needle, len);
}

static void
test_secret_never_stored(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_token t;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(vk_token_parse(k.token, strlen(k.token), &t), VK_TOKEN_OK);
	assert_true(store_contains(fx->path, k.id, strlen(k.id))); /* the search works */
	assert_false(store_contains(fx->path, k.token + ID_PART_LEN, SECRET_PART_LEN));
	assert_false(store_contains(fx->path, t.secret, sizeof t.secret));
	vk_token_wipe(&t);
}

static void
expect_create_refused(struct fx_store *fx, const struct vk_key_spec *spec, vk_rc want,
                      const char *needle)
{
	char id[VK_UUID_STRLEN + 1], token[VK_TOKEN_LEN + 1], err[VK_ERRLEN] = "";
	struct vk_txn t;

	fx_begin(fx, &t, FX_NOW);
	assert_int_equal(fx_end(&t, vk_key_create(&t, spec, id, token, err)), want);
	expect_err(err, needle);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM keys", NULL), 0);
}

static void
test_create_validations(void **state)
{
	static const char *const bad_users[] = {"ann", "-rf"};
	static const char *const colon_user[] = {"a:b"};
	struct fx_store *fx = *state;
	const struct vk_key_spec good = {"k", VK_ROLE_OWNER, "machine", fx->m1a, two_users, 2, 0,
	                                 0};
	struct vk_key_spec s;
	char upper[VK_UUID_STRLEN + 1], unknown[VK_UUID_STRLEN + 1], long_name[VK_NAME_MAX + 2];

	s = good, s.nusers = 0;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "--user");
	s = good, s.users = bad_users;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "-rf");
	s = good, s.users = colon_user, s.nusers = 1;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "a:b");
	s = good, s.role = VK_ROLE_NONE;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "role");

	fx_random_uuid(unknown);
	s = good, s.resource_id = unknown;
	expect_create_refused(fx, &s, VK_ERR_NOTFOUND, unknown);
	s = good, s.resource_type = "machine", s.resource_id = fx->loc1;
	expect_create_refused(fx, &s, VK_ERR_NOTFOUND, "no machine");
	s = good, s.resource_id = "m1a";
	expect_create_refused(fx, &s, VK_ERR_USAGE, "UUID");
	fx_uppercase(fx->m1a, upper);
	s = good, s.resource_id = upper;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "UUID");
	s = good, s.resource_type = "cluster";
	expect_create_refused(fx, &s, VK_ERR_USAGE, "cluster");

	memset(long_name, 'n', sizeof long_name - 1);
	long_name[sizeof long_name - 1] = '\0';
	s = good, s.name = long_name;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "name");
	s = good, s.name = "";
	expect_create_refused(fx, &s, VK_ERR_USAGE, "name");
	s = good, s.name = "two\nlines";
	expect_create_refused(fx, &s, VK_ERR_USAGE, "name");
	/* a name is required now, and format characters are refused like controls */
	s = good, s.name = NULL;
	expect_create_refused(fx, &s, VK_ERR_USAGE, "name");
	s = good, s.name = "gnp.\xe2\x80\xae"
	                   "exe"; /* U+202E RIGHT-TO-LEFT OVERRIDE */
	expect_create_refused(fx, &s, VK_ERR_USAGE, "no control or format characters");
}

static void
test_rotate_immediately(void **state)
{
	struct fx_store *fx = *state;
	char token[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 1), VK_REASON_OK);
	assert_int_equal(fx_rotate(fx, k.id, 0, FX_NOW + 10, token, err), VK_OK);
	assert_memory_equal(token, k.token, ID_PART_LEN); /* same key ID */
	assert_string_not_equal(token, k.token);
	assert_int_equal(fx_reason(fx, token, FX_NOW + 11), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 11), VK_REASON_WRONG_SECRET);
	assert_int_equal(secrets_of(fx, k.id), 1);
}

static void
test_rotate_with_grace(void **state)
{
	struct fx_store *fx = *state;
	char second[VK_TOKEN_LEN + 1], third[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	char end[VK_RFC3339_LEN + 1];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_rotate(fx, k.id, 3600, FX_NOW + 10, second, err), VK_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 20), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, second, FX_NOW + 20), VK_REASON_OK);
	assert_int_equal(secrets_of(fx, k.id), 2);

	/* no third secret while the window is open, with or without grace */
	vk_time_format(FX_NOW + 10 + 3600, end);
	assert_int_equal(fx_rotate(fx, k.id, 60, FX_NOW + 20, third, err), VK_ERR_CONFLICT);
	expect_err(err, end);
	assert_int_equal(fx_rotate(fx, k.id, 0, FX_NOW + 20, third, err), VK_ERR_CONFLICT);
	expect_err(err, end);
	assert_int_equal(secrets_of(fx, k.id), 2);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 20), VK_REASON_OK);

	/* the window closes by itself */
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 10 + 3600), VK_REASON_WRONG_SECRET);
	assert_int_equal(fx_reason(fx, second, FX_NOW + 10 + 3600), VK_REASON_OK);

	/* and the next rotation replaces the expired secret rather than adding a third */
	assert_int_equal(fx_rotate(fx, k.id, 60, FX_NOW + 4000, third, err), VK_OK);
	assert_int_equal(secrets_of(fx, k.id), 2);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 4001), VK_REASON_WRONG_SECRET);
	assert_int_equal(fx_reason(fx, second, FX_NOW + 4001), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, third, FX_NOW + 4001), VK_REASON_OK);
}

static void
test_finish_rotation(void **state)
{
	struct fx_store *fx = *state;
	char token[VK_TOKEN_LEN + 1], err[VK_ERRLEN], unknown[VK_UUID_STRLEN + 1];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_finish(fx, k.id, FX_NOW + 5, err), VK_ERR_CONFLICT);
	assert_int_equal(fx_rotate(fx, k.id, 3600, FX_NOW + 10, token, err), VK_OK);
	assert_int_equal(fx_finish(fx, k.id, FX_NOW + 20, err), VK_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 21), VK_REASON_WRONG_SECRET);
	assert_int_equal(fx_reason(fx, token, FX_NOW + 21), VK_REASON_OK);
	assert_int_equal(secrets_of(fx, k.id), 1);
	assert_int_equal(fx_finish(fx, k.id, FX_NOW + 30, err), VK_ERR_CONFLICT);
	expect_err(err, "no open rotation window");

	fx_random_uuid(unknown);
	assert_int_equal(fx_finish(fx, unknown, FX_NOW, err), VK_ERR_NOTFOUND);
	assert_int_equal(fx_finish(fx, "k1", FX_NOW, err), VK_ERR_USAGE);
	assert_int_equal(fx_rotate(fx, unknown, 0, FX_NOW, token, err), VK_ERR_NOTFOUND);
	expect_err(err, unknown);
	assert_int_equal(fx_rotate(fx, "k1", 0, FX_NOW, token, err), VK_ERR_USAGE);
}

/* Rows of a's that b has too, by a query on ?1 = a and ?2 = b. */
static int64_t
shared(struct fx_store *fx, const char *sql, const char *a, const char *b)
{
	char err[VK_ERRLEN];
	int64_t n;

	assert_int_equal(vk_store_query_int(fx->db, "q", err, &n, sql, "tt", a, b), VK_OK);
	return n;
}

static void
test_clone(void **state)
{
	struct fx_store *fx = *state;
	struct vk_key_spec spec = {"original", VK_ROLE_OWNER, "machine", fx->m1a, two_users, 2, 0,
	                           0};
	struct fx_key k, c, unnamed;
	char err[VK_ERRLEN];

	fx_key_spec(fx, &spec, &k);
	fx_grant(fx, k.id, VK_ROLE_VIEWER, "organization", fx->org2);
	assert_int_equal(clone(fx, k.id, "copy", &c, err), VK_OK);
	assert_string_not_equal(c.id, k.id);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM grants WHERE key_id = ?1", c.id),
	                 2);
	assert_int_equal(shared(fx,
	                        "SELECT count(*) FROM grants g JOIN grants h"
	                        " USING (role, resource_type, resource_id)"
	                        " WHERE g.key_id = ?1 AND h.key_id = ?2",
	                        k.id, c.id),
	                 2);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM key_users WHERE key_id = ?1", c.id),
	                 2);
	assert_int_equal(shared(fx,
	                        "SELECT count(*) FROM key_users a JOIN key_users b USING (user)"
	                        " WHERE a.key_id = ?1 AND b.key_id = ?2",
	                        k.id, c.id),
	                 2);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM keys WHERE id = ?1 AND name = 'copy' AND"
	                          " created_by = 'carol'",
	                          c.id),
	                 1);
	assert_int_equal(secrets_of(fx, c.id), 1);
	assert_int_equal(secrets_of(fx, k.id), 1);
	assert_int_equal(fx_reason(fx, c.token, FX_NOW + 6), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 6), VK_REASON_OK);
	assert_string_not_equal(c.token, k.token);

	assert_int_equal(clone(fx, k.id, NULL, &unnamed, err), VK_OK);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM keys WHERE id = ?1 AND name = 'original'",
	                          unnamed.id),
	                 1);
	assert_int_equal(fx_reason(fx, unnamed.token, FX_NOW + 6), VK_REASON_OK);

	assert_int_equal(clone(fx, k.id, "", &unnamed, err), VK_ERR_USAGE);
	assert_int_equal(clone(fx, "k1", "x", &unnamed, err), VK_ERR_USAGE);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM keys", NULL), 3);
}

static void
test_exists(void **state)
{
	struct fx_store *fx = *state;
	char err[VK_ERRLEN], unknown[VK_UUID_STRLEN + 1];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	fx_random_uuid(unknown);
	assert_int_equal(vk_key_exists(fx->db, k.id, err), VK_OK);
	assert_int_equal(vk_key_exists(fx->db, unknown, err), VK_ERR_NOTFOUND);
	assert_int_equal(vk_key_exists(fx->db, "x", err), VK_ERR_USAGE);
	assert_int_equal(vk_resource_exists(fx->db, "organization", fx->org, err), VK_OK);
	assert_int_equal(vk_resource_exists(fx->db, "location", fx->loc3, err), VK_OK);
	assert_int_equal(vk_resource_exists(fx->db, "machine", fx->m2, err), VK_OK);
	assert_int_equal(vk_resource_exists(fx->db, "organization", fx->loc1, err),
	                 VK_ERR_NOTFOUND);
	assert_int_equal(vk_resource_exists(fx->db, "location", fx->m2, err), VK_ERR_NOTFOUND);
	assert_int_equal(vk_resource_exists(fx->db, "machine", k.id, err), VK_ERR_NOTFOUND);
	assert_int_equal(vk_resource_exists(fx->db, "key", k.id, err), VK_ERR_USAGE);
}

static int64_t
events(struct fx_store *fx)
{
	return fx_count(fx->db, "SELECT count(*) FROM events", NULL);
}

#define OP_ACTOR     "alice"
#define OP_EFFECTIVE "root"
#define OP_NOW       (FX_NOW + 7)

/* A transaction as alice, running as root. */
static void
begin_as_alice(struct fx_store *fx, struct vk_txn *t)
{
	fx_begin(fx, t, OP_NOW);
	t->actor = OP_ACTOR;
	t->effective = OP_EFFECTIVE;
}

/* Exactly one event was added since `before`: (action, key_id) by alice as root at OP_NOW. */
static void
expect_one_event(struct fx_store *fx, int64_t before, const char *action, const char *key_id)
{
	char err[VK_ERRLEN];
	int64_t n;

	if (events(fx) != before + 1)
		fail_msg("%s: %lld events recorded, want 1", action,
		         (long long)(events(fx) - before));
	assert_int_equal(vk_store_query_int(fx->db, "q", err, &n,
	                                    "SELECT count(*) FROM events WHERE"
	                                    " id = (SELECT max(id) FROM events) AND at = ?1 AND"
	                                    " actor = ?2 AND effective = ?3 AND action = ?4 AND"
	                                    " key_id IS ?5 AND detail IS NOT NULL",
	                                    "itttt", OP_NOW, OP_ACTOR, OP_EFFECTIVE, action,
	                                    key_id),
	                 VK_OK);
	if (n != 1)
		fail_msg("the event of %s is not (%s, %s, %s, %s)", action, action,
		         key_id ? key_id : "NULL", OP_ACTOR, OP_EFFECTIVE);
}

/* Runs `call` (which may use t and err) in its own transaction; it must succeed with one event. */
#define EXPECT_EVENT(action, key_id, call)                                                         \
	do {                                                                                       \
		struct vk_txn t;                                                                   \
		int64_t before_ = events(fx);                                                      \
                                                                                                   \
		begin_as_alice(fx, &t);                                                            \
		if (fx_end(&t, (call)) != VK_OK)                                                   \
			fail_msg("%s: %s", action, err);                                           \
		expect_one_event(fx, before_, action, key_id);                                     \
	} while (0)

static void
test_every_change_records_one_event(void **state)
{
	static const char *const users[] = {"ann"};
	struct fx_store *fx = *state;
	char org[VK_UUID_STRLEN + 1], loc[VK_UUID_STRLEN + 1], m[VK_UUID_STRLEN + 1];
	char key[VK_UUID_STRLEN + 1], copy[VK_UUID_STRLEN + 1];
	char token[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	struct vk_key_spec spec = {"ops", VK_ROLE_OPERATOR, "machine", NULL, users, 1, 0, 0};
	int64_t start = events(fx), before;
	struct vk_txn t0;

	EXPECT_EVENT("organization.create", NULL,
	             vk_tree_create(&t, VK_KIND_ORGANIZATION, "ops org", NULL, org, err));
	EXPECT_EVENT("location.create", NULL,
	             vk_tree_create(&t, VK_KIND_LOCATION, "ops loc", org, loc, err));
	EXPECT_EVENT("machine.create", NULL,
	             vk_tree_create(&t, VK_KIND_MACHINE, "ops m", loc, m, err));
	EXPECT_EVENT("organization.rename", NULL,
	             vk_tree_rename(&t, VK_KIND_ORGANIZATION, org, "org 2", err));
	EXPECT_EVENT("location.rename", NULL,
	             vk_tree_rename(&t, VK_KIND_LOCATION, loc, "loc 2", err));
	EXPECT_EVENT("machine.rename", NULL, vk_tree_rename(&t, VK_KIND_MACHINE, m, "m 2", err));
	assert_int_equal(
	    fx_count(fx->db, "SELECT count(*) FROM machines WHERE id = ?1 AND name = 'm 2'", m), 1);

	spec.resource_id = m;
	EXPECT_EVENT("key.create", key, vk_key_create(&t, &spec, key, token, err));
	assert_int_equal(
	    fx_count(fx->db, "SELECT count(*) FROM keys WHERE id = ?1 AND created_by = 'alice'",
	             key),
	    1);
	EXPECT_EVENT("key.grant", key, vk_key_grant(&t, key, VK_ROLE_VIEWER, "location", loc, err));
	/* granting again changes the role of that grant */
	EXPECT_EVENT("key.grant", key, vk_key_grant(&t, key, VK_ROLE_OWNER, "location", loc, err));
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM grants WHERE key_id = ?1 AND"
	                          " resource_type = 'location' AND role = 'owner'",
	                          key),
	                 1);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM grants WHERE key_id = ?1", key), 2);
	EXPECT_EVENT("key.add-user", key, vk_key_add_user(&t, key, "bob", err));
	/* a user who is already there: nothing changes and nothing is recorded */
	before = events(fx);
	begin_as_alice(fx, &t0);
	assert_int_equal(fx_end(&t0, vk_key_add_user(&t0, key, "bob", err)), VK_OK);
	assert_int_equal(events(fx), before);
	EXPECT_EVENT("key.remove-user", key, vk_key_remove_user(&t, key, "bob", err));
	EXPECT_EVENT("key.ungrant", key, vk_key_ungrant(&t, key, "location", loc, err));
	EXPECT_EVENT("key.rotate", key, vk_key_rotate(&t, key, 3600, token, err));
	EXPECT_EVENT("key.rotate-finish", key, vk_key_finish_rotation(&t, key, err));
	EXPECT_EVENT("key.rotate", key, vk_key_rotate(&t, key, 0, token, err));
	EXPECT_EVENT("key.clone", copy, vk_key_clone(&t, key, "ops copy", copy, token, err));
	EXPECT_EVENT("key.rename", key, vk_key_change(&t, key, VK_KEY_RENAME, "ops 2", err));
	EXPECT_EVENT("key.disable", key, vk_key_change(&t, key, VK_KEY_DISABLE, NULL, err));
	EXPECT_EVENT("key.enable", key, vk_key_change(&t, key, VK_KEY_ENABLE, NULL, err));
	EXPECT_EVENT("key.protect", key, vk_key_change(&t, key, VK_KEY_PROTECT, NULL, err));
	EXPECT_EVENT("key.unprotect", key, vk_key_change(&t, key, VK_KEY_UNPROTECT, NULL, err));
	EXPECT_EVENT("key.delete", copy, vk_key_change(&t, copy, VK_KEY_DELETE, NULL, err));
	EXPECT_EVENT("key.delete", key, vk_key_change(&t, key, VK_KEY_DELETE, NULL, err));
	EXPECT_EVENT("machine.delete", NULL, vk_tree_delete(&t, VK_KIND_MACHINE, m, fx->m1a, err));
	EXPECT_EVENT("location.delete", NULL, vk_tree_delete(&t, VK_KIND_LOCATION, loc, NULL, err));
	EXPECT_EVENT("organization.delete", NULL,
	             vk_tree_delete(&t, VK_KIND_ORGANIZATION, org, NULL, err));

	assert_int_equal(events(fx), start + 26); /* one per change above */
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM events WHERE actor IS NOT 'alice'"
	                          " OR effective IS NOT 'root' OR at IS NOT 1700000007",
	                          NULL),
	                 start);
}

/*
 * Everything a refused change could touch, as one string: the tree, the
 * keys and their rows, the meta records and the events.
 */
static char *
snapshot(struct fx_store *fx)
{
	static const char sql[] =
	    "SELECT group_concat(x, '|') FROM (SELECT x FROM ("
	    " SELECT 'o' || id || name AS x FROM organizations"
	    " UNION ALL SELECT 'l' || id || org_id || name FROM locations"
	    " UNION ALL SELECT 'm' || id || location_id || name FROM machines"
	    " UNION ALL SELECT 'k' || id || name || disabled || protected ||"
	    "  coalesce(expires_at, '-') FROM keys"
	    " UNION ALL SELECT 'u' || key_id || user FROM key_users"
	    " UNION ALL SELECT 'g' || key_id || role || resource_type || resource_id FROM grants"
	    " UNION ALL SELECT 's' || id || key_id || coalesce(expires_at, '-') FROM secrets"
	    " UNION ALL SELECT 'e' || id || action FROM events"
	    " UNION ALL SELECT 'x' || name || value FROM meta) ORDER BY x)";
	sqlite3_stmt *st;
	char *out;

	assert_int_equal(sqlite3_prepare_v2(fx->db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	out = strdup(sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
	assert_non_null(out);
	sqlite3_finalize(st);
	return out;
}

/* Runs `call` in its own transaction as alice; it must fail with `want` and change nothing. */
#define EXPECT_REFUSED(want, needle, call)                                                         \
	do {                                                                                       \
		struct vk_txn t;                                                                   \
		char *before_ = snapshot(fx), *after_;                                             \
                                                                                                   \
		err[0] = '\0';                                                                     \
		begin_as_alice(fx, &t);                                                            \
		assert_int_equal(fx_end(&t, (call)), want);                                        \
		expect_err(err, needle);                                                           \
		after_ = snapshot(fx);                                                             \
		assert_string_equal(after_, before_);                                              \
		free(before_);                                                                     \
		free(after_);                                                                      \
	} while (0)

static void
test_key_keeps_a_grant_and_a_user(void **state)
{
	struct fx_store *fx = *state;
	char err[VK_ERRLEN];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	EXPECT_REFUSED(VK_ERR_CONFLICT, "only grant",
	               vk_key_ungrant(&t, k.id, "machine", fx->m1a, err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "only user", vk_key_remove_user(&t, k.id, "ann", err));
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM grants WHERE key_id = ?1", k.id),
	                 1);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM key_users WHERE key_id = ?1", k.id),
	                 1);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 1), VK_REASON_OK);

	/* what the key does not have cannot be removed either */
	EXPECT_REFUSED(VK_ERR_NOTFOUND, "no grant",
	               vk_key_ungrant(&t, k.id, "machine", fx->m1b, err));
	EXPECT_REFUSED(VK_ERR_NOTFOUND, "bob", vk_key_remove_user(&t, k.id, "bob", err));

	/* with a second grant and user, the first of each may go */
	fx_grant(fx, k.id, VK_ROLE_VIEWER, "machine", fx->m1b);
	fx_sql1(fx->db, "INSERT INTO key_users VALUES (?1, 'bob')", k.id);
	EXPECT_EVENT("key.ungrant", k.id, vk_key_ungrant(&t, k.id, "machine", fx->m1a, err));
	EXPECT_EVENT("key.remove-user", k.id, vk_key_remove_user(&t, k.id, "ann", err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "only grant",
	               vk_key_ungrant(&t, k.id, "machine", fx->m1b, err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "only user", vk_key_remove_user(&t, k.id, "bob", err));
}

static void
test_protected_key_not_disabled_or_deleted(void **state)
{
	static const char *const users[] = {"root"};
	struct fx_store *fx = *state;
	struct vk_key_spec spec = {"system", VK_ROLE_OWNER, "machine", fx->m1a, users, 1, 0, 1};
	char err[VK_ERRLEN];
	struct fx_key k;
	struct vk_request req;
	struct vk_result res;

	fx_key_spec(fx, &spec, &k);
	EXPECT_REFUSED(VK_ERR_CONFLICT, "unprotect",
	               vk_key_change(&t, k.id, VK_KEY_DISABLE, NULL, err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "unprotect",
	               vk_key_change(&t, k.id, VK_KEY_DELETE, NULL, err));
	req = fx_request(fx, k.token);
	req.user = "root";
	fx_authorize(fx, &req, &res);
	assert_int_equal(res.decision, VK_DECISION_ALLOW);

	/* other upkeep is allowed */
	EXPECT_EVENT("key.rename", k.id, vk_key_change(&t, k.id, VK_KEY_RENAME, "system 2", err));
	EXPECT_EVENT("key.enable", k.id, vk_key_change(&t, k.id, VK_KEY_ENABLE, NULL, err));
	EXPECT_EVENT("key.protect", k.id, vk_key_change(&t, k.id, VK_KEY_PROTECT, NULL, err));

	/* a protected key that is already disabled still cannot be deleted */
	fx_sql1(fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	EXPECT_REFUSED(VK_ERR_CONFLICT, "protected",
	               vk_key_change(&t, k.id, VK_KEY_DELETE, NULL, err));

	EXPECT_EVENT("key.unprotect", k.id, vk_key_change(&t, k.id, VK_KEY_UNPROTECT, NULL, err));
	EXPECT_EVENT("key.disable", k.id, vk_key_change(&t, k.id, VK_KEY_DISABLE, NULL, err));
	EXPECT_EVENT("key.delete", k.id, vk_key_change(&t, k.id, VK_KEY_DELETE, NULL, err));
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM keys WHERE id = ?1", k.id), 0);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM secrets WHERE key_id = ?1", k.id),
	                 0);
}

static void
test_tree_delete_refusals(void **state)
{
	struct fx_store *fx = *state;
	char err[VK_ERRLEN], lonely[VK_UUID_STRLEN + 1], empty_loc[VK_UUID_STRLEN + 1];
	struct fx_key on_m1b, on_lonely;
	struct vk_txn t0;

	/* children */
	EXPECT_REFUSED(VK_ERR_CONFLICT, "locations",
	               vk_tree_delete(&t, VK_KIND_ORGANIZATION, fx->org, NULL, err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "machines",
	               vk_tree_delete(&t, VK_KIND_LOCATION, fx->loc2, NULL, err));

	/* grants, on a machine, on a location without machines, on an organization without
	 * locations */
	fx_key(fx, VK_ROLE_VIEWER, "machine", fx->m1b, &on_m1b);
	EXPECT_REFUSED(VK_ERR_CONFLICT, "grants",
	               vk_tree_delete(&t, VK_KIND_MACHINE, fx->m1b, NULL, err));
	fx_begin(fx, &t0, FX_NOW);
	assert_int_equal(
	    fx_end(&t0, vk_tree_create(&t0, VK_KIND_ORGANIZATION, "lonely", NULL, lonely, err)),
	    VK_OK);
	fx_begin(fx, &t0, FX_NOW);
	assert_int_equal(
	    fx_end(&t0, vk_tree_create(&t0, VK_KIND_LOCATION, "empty", fx->org2, empty_loc, err)),
	    VK_OK);
	fx_key(fx, VK_ROLE_VIEWER, "organization", lonely, &on_lonely);
	fx_grant(fx, on_lonely.id, VK_ROLE_VIEWER, "location", empty_loc);
	EXPECT_REFUSED(VK_ERR_CONFLICT, "grants",
	               vk_tree_delete(&t, VK_KIND_ORGANIZATION, lonely, NULL, err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "grants",
	               vk_tree_delete(&t, VK_KIND_LOCATION, empty_loc, NULL, err));

	/* this host's machine: the configured one, or the one the store records */
	EXPECT_REFUSED(VK_ERR_CONFLICT, "this host's machine",
	               vk_tree_delete(&t, VK_KIND_MACHINE, fx->m2, fx->m2, err));
	fx_sql1(fx->db, "INSERT INTO meta (name, value) VALUES ('host_machine_id', ?1)", fx->m3);
	EXPECT_REFUSED(VK_ERR_CONFLICT, "this host's machine",
	               vk_tree_delete(&t, VK_KIND_MACHINE, fx->m3, NULL, err));
	EXPECT_REFUSED(VK_ERR_CONFLICT, "this host's machine",
	               vk_tree_delete(&t, VK_KIND_MACHINE, fx->m3, fx->m2, err));

	/* unknown and malformed IDs */
	EXPECT_REFUSED(VK_ERR_NOTFOUND, "no machine",
	               vk_tree_delete(&t, VK_KIND_MACHINE, fx->loc1, NULL, err));
	EXPECT_REFUSED(VK_ERR_USAGE, "UUID", vk_tree_delete(&t, VK_KIND_MACHINE, "m2", NULL, err));

	/* once nothing is in the way, they go */
	EXPECT_EVENT("machine.delete", NULL,
	             vk_tree_delete(&t, VK_KIND_MACHINE, fx->m2, fx->m1a, err));
	EXPECT_EVENT("location.delete", NULL,
	             vk_tree_delete(&t, VK_KIND_LOCATION, fx->loc2, NULL, err));
	EXPECT_EVENT("key.ungrant", on_lonely.id,
	             vk_key_ungrant(&t, on_lonely.id, "location", empty_loc, err));
	EXPECT_EVENT("location.delete", NULL,
	             vk_tree_delete(&t, VK_KIND_LOCATION, empty_loc, NULL, err));
}

static void
test_tree_init_once(void **state)
{
	static const char *const first[3] = {"Acme", "HQ", "host"};
	static const char *const second[3] = {"Other", "Elsewhere", "box"};
	struct fx_store *fx = *state;
	char host1[VK_UUID_STRLEN + 1], host2[VK_UUID_STRLEN + 1], err[VK_ERRLEN];
	int64_t orgs = fx_count(fx->db, "SELECT count(*) FROM organizations", NULL);
	int64_t locs = fx_count(fx->db, "SELECT count(*) FROM locations", NULL);
	int64_t machines = fx_count(fx->db, "SELECT count(*) FROM machines", NULL);
	int64_t before = events(fx);
	int created = -1;
	struct vk_txn t1, t2;
	sqlite3 *other;

	if (!fx_have_machine_id())
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	/* two keyadm init runs, one after the other, each with its own connection */
	if (vk_store_open(fx->path, VK_OPEN_ADMIN, 1000, &other, err) != VK_OK)
		fail_msg("%s", err);
	begin_as_alice(fx, &t1);
	assert_int_equal(fx_end(&t1, vk_tree_init(&t1, first, host1, &created, err)), VK_OK);
	assert_int_equal(created, 1);
	assert_true(vk_uuid_valid(host1));
	t2.db = other;
	t2.actor = "bob";
	t2.effective = NULL;
	t2.now = OP_NOW + 1;
	assert_int_equal(vk_txn_begin(&t2, err), VK_OK);
	created = -1;
	assert_int_equal(vk_tree_init(&t2, second, host2, &created, err), VK_OK);
	assert_int_equal(vk_txn_commit(&t2, err), VK_OK);
	assert_int_equal(created, 0);
	assert_string_equal(host2, host1);
	assert_int_equal(sqlite3_close(other), SQLITE_OK);

	/* one hierarchy, named by the first run, and its machine is this host's */
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM organizations", NULL), orgs + 1);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM locations", NULL), locs + 1);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM machines", NULL), machines + 1);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM machines m JOIN locations l ON"
	                          " l.id = m.location_id JOIN organizations o ON o.id = l.org_id"
	                          " WHERE m.id = ?1 AND m.name = 'host' AND l.name = 'HQ' AND"
	                          " o.name = 'Acme'",
	                          host1),
	                 1);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM meta WHERE name = 'host_machine_id' AND"
	                          " value = ?1",
	                          host1),
	                 1);
	/* its three creations and the init itself, all by alice as root; nothing by bob */
	assert_int_equal(events(fx), before + 4);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM events WHERE actor = 'alice' AND"
	                          " effective = 'root' AND action IN ('organization.create',"
	                          " 'location.create', 'machine.create', 'init')",
	                          NULL),
	                 4);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM events WHERE action = 'init'"
	                          " AND detail LIKE '%' || ?1",
	                          host1),
	                 1);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM events WHERE actor = 'bob'", NULL),
	                 0);
	{
		char got[VK_UUID_STRLEN + 1];

		assert_int_equal(vk_store_host_machine(fx->db, NULL, got, err), VK_OK);
		assert_string_equal(got, host1);
	}
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, fx_store_setup, fx_store_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_create_records_key),
	    TEST(test_no_expiry_stored_as_null),
	    TEST(test_secret_never_stored),
	    TEST(test_create_validations),
	    TEST(test_rotate_immediately),
	    TEST(test_rotate_with_grace),
	    TEST(test_finish_rotation),
	    TEST(test_clone),
	    TEST(test_exists),
	    TEST(test_every_change_records_one_event),
	    TEST(test_key_keeps_a_grant_and_a_user),
	    TEST(test_protected_key_not_disabled_or_deleted),
	    TEST(test_tree_delete_refusals),
	    TEST(test_tree_init_once),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
