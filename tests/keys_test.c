/*
 * keys_test.c - creating keys and issuing secrets (keys.h).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>

#include "duration.h"
#include "fixture.h"
#include "store.h"
#include "verifier.h"

#define ID_PART_LEN     (3 + VK_KEY_PART_LEN + 1) /* "vk_<key-id part>_" */
#define SECRET_PART_LEN 43

static const char *const two_users[] = {"ann", "bob", "ann"};

static vk_rc
clone(struct fx_store *fx, const char *id, const char *name, struct fx_key *out,
      char err[VK_ERRLEN])
{
	assert_int_equal(vk_store_begin(fx->db, err), VK_OK);
	return fx_end_txn(
	    fx->db, vk_key_clone(fx->db, id, name, "carol", FX_NOW + 5, out->id, out->token, err));
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
	struct vk_key_spec spec = {"deploy",  "root", VK_ROLE_OPERATOR, "location", fx->loc1,
	                           two_users, 3,      FX_NOW + 3600,    1};
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
	                                    " name = 'deploy' AND created_by = 'root' AND"
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

	assert_int_equal(vk_store_begin(fx->db, err), VK_OK);
	assert_int_equal(fx_end_txn(fx->db, vk_key_create(fx->db, spec, FX_NOW, id, token, err)),
	                 want);
	expect_err(err, needle);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM keys", NULL), 0);
}

static void
test_create_validations(void **state)
{
	static const char *const bad_users[] = {"ann", "-rf"};
	static const char *const colon_user[] = {"a:b"};
	struct fx_store *fx = *state;
	const struct vk_key_spec good = {
	    "k", "root", VK_ROLE_OWNER, "machine", fx->m1a, two_users, 2, 0, 0};
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
	struct vk_key_spec spec = {
	    "original", "root", VK_ROLE_OWNER, "machine", fx->m1a, two_users, 2, 0, 0};
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
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
