/*
 * authz_test.c - the login decision (authz.h) against real stores.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz.h"
#include "fixture.h"
#include "fleet.h"
#include "store.h"
#include "verifier.h"

/*
 * Every vk_verifier_check() call made from common/ comes here first: this
 * test is linked with -Wl,--wrap=vk_verifier_check (tests/Makefile.am), so
 * the calls authz.c makes are counted, then passed on to the real function.
 * The built module and keyadm are linked without it.
 */
int __real_vk_verifier_check(const struct vk_token *t, const char *alg, const void *salt,
                             size_t salt_len, const void *verifier, size_t verifier_len);
int __wrap_vk_verifier_check(const struct vk_token *t, const char *alg, const void *salt,
                             size_t salt_len, const void *verifier, size_t verifier_len);

static int verifications;

int
__wrap_vk_verifier_check(const struct vk_token *t, const char *alg, const void *salt,
                         size_t salt_len, const void *verifier, size_t verifier_len)
{
	verifications++;
	return __real_vk_verifier_check(t, alg, salt, salt_len, verifier, verifier_len);
}

static void
expect(const struct vk_result *res, vk_decision d, vk_reason r)
{
	if (res->decision != d || res->reason != r)
		fail_msg("got %d/%s, want %d/%s (%s)", res->decision, vk_reason_name(res->reason),
		         d, vk_reason_name(r), res->err);
}

/* Denied for reason r after the token parsed, so the key ID is known. */
static void
expect_deny(const struct vk_result *res, vk_reason r, const char *key_id)
{
	expect(res, VK_DECISION_DENY, r);
	assert_string_equal(res->key_id, key_id);
}

static void
expect_allow(const struct vk_result *res, vk_role role, const char *via_type, const char *via_id)
{
	expect(res, VK_DECISION_ALLOW, VK_REASON_OK);
	assert_int_equal(res->role, role);
	assert_string_equal(res->via_type, via_type);
	assert_string_equal(res->via_id, via_id);
}

static void
test_deny_malformed(void **state)
{
	static const char *const bad[] = {"",    "hunter2",    "\b\n\r\177INCORRECT",
	                                  "vk_", "vk_abc_def", NULL};
	struct fx_store *fx = *state;
	struct vk_result res;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct vk_request req = fx_request(fx, bad[i]);

		fx_authorize(fx, &req, &res);
		expect_deny(&res, VK_REASON_MALFORMED, "");
	}
}

static void
test_deny_checksum(void **state)
{
	struct fx_store *fx = *state;
	struct vk_result res;
	struct fx_key k;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	k.token[40] = k.token[40] == 'a' ? 'b' : 'a'; /* a typo in the secret part */
	req = fx_request(fx, k.token);
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_CHECKSUM, "");
}

static void
test_deny_unknown_key(void **state)
{
	struct fx_store *fx = *state;
	struct vk_token t;
	char token[VK_TOKEN_LEN + 1], id[VK_UUID_STRLEN + 1];
	struct vk_request req;
	struct vk_result res;

	vk_token_generate(&t);
	vk_token_format(&t, token);
	vk_uuid_format(t.key_id, id);
	req = fx_request(fx, token);
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_UNKNOWN_KEY, id);
}

/* The token of key k with a different secret. */
static void
forge(const struct fx_key *k, char out[VK_TOKEN_LEN + 1])
{
	struct vk_token t;

	assert_int_equal(vk_token_parse(k->token, VK_TOKEN_LEN, &t), VK_TOKEN_OK);
	vk_token_new_secret(&t);
	vk_token_format(&t, out);
	vk_token_wipe(&t);
}

static void
test_deny_wrong_secret(void **state)
{
	struct fx_store *fx = *state;
	char forged[VK_TOKEN_LEN + 1];
	struct vk_result res;
	struct fx_key k;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	forge(&k, forged);
	req = fx_request(fx, forged);
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_WRONG_SECRET, k.id);

	/* a row with an algorithm this build does not know never matches */
	fx_sql1(fx->db, "UPDATE secrets SET alg = 'b2k256-v0' WHERE key_id = ?1", k.id);
	req = fx_request(fx, k.token);
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_WRONG_SECRET, k.id);
}

static void
test_deny_disabled(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	fx_sql1(fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	req = fx_request(fx, k.token);
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_DISABLED, k.id);
}

static void
test_deny_expired(void **state)
{
	static const char *const users[] = {"ann"};
	struct fx_store *fx = *state;
	struct vk_key_spec spec = {
	    "short-lived", VK_ROLE_OWNER, "machine", fx->m1a, users, 1, FX_NOW + 100, 0};
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key_spec(fx, &spec, &k);
	req = fx_request(fx, k.token);
	req.now = FX_NOW + 99;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);
	req.now = FX_NOW + 100;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_EXPIRED, k.id);
	req.now = FX_NOW + 86400;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_EXPIRED, k.id);
}

static void
test_deny_user_not_allowed(void **state)
{
	static const char *const others[] = {"mallory", "Ann", "ann ", "", "root"};
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	req = fx_request(fx, k.token);
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		req.user = others[i];
		fx_authorize(fx, &req, &res);
		expect_deny(&res, VK_REASON_USER, k.id);
	}
	req.user = NULL;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_USER, k.id);
}

static void
test_deny_scope(void **state)
{
	struct fx_store *fx = *state;
	const char *const elsewhere[][2] = {
	    {"machine", fx->m1b},   /* sibling machine */
	    {"machine", fx->m2},    /* other location */
	    {"location", fx->loc2}, /* location without m1a */
	    {"organization", fx->org2}, {"location", fx->loc3},
	};
	struct vk_result res;

	for (size_t i = 0; i < sizeof elsewhere / sizeof elsewhere[0]; i++) {
		struct fx_key k;
		struct vk_request req;

		fx_key(fx, VK_ROLE_OWNER, elsewhere[i][0], elsewhere[i][1], &k);
		req = fx_request(fx, k.token);
		fx_authorize(fx, &req, &res);
		expect_deny(&res, VK_REASON_SCOPE, k.id);
	}
}

static void
test_deny_role(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_VIEWER, "machine", fx->m1a, &k);
	req = fx_request(fx, k.token);
	req.required = VK_ROLE_OPERATOR;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_ROLE, k.id);
	assert_int_equal(res.role, VK_ROLE_VIEWER);
}

static void
test_allow_via_machine_location_organization(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key on_machine, on_location, on_org;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OPERATOR, "machine", fx->m1a, &on_machine);
	fx_key(fx, VK_ROLE_VIEWER, "location", fx->loc1, &on_location);
	fx_key(fx, VK_ROLE_OWNER, "organization", fx->org, &on_org);

	req = fx_request(fx, on_machine.token);
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "machine", fx->m1a);
	assert_string_equal(res.key_id, on_machine.id);
	assert_string_equal(res.key_name, "test key");

	req = fx_request(fx, on_location.token);
	req.machine_id = fx->m1b;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_VIEWER, "location", fx->loc1);
	assert_string_equal(res.key_id, on_location.id);

	req = fx_request(fx, on_org.token);
	req.machine_id = fx->m2;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "organization", fx->org);
	assert_string_equal(res.key_id, on_org.id);
}

static void
test_highest_covering_grant_chosen(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_VIEWER, "machine", fx->m1a, &k);
	fx_grant(fx, k.id, VK_ROLE_OPERATOR, "location", fx->loc1);
	fx_grant(fx, k.id, VK_ROLE_OWNER, "organization", fx->org);
	fx_grant(fx, k.id, VK_ROLE_OWNER, "machine", fx->m3); /* does not cover m1a */
	req = fx_request(fx, k.token);
	for (vk_role need = VK_ROLE_VIEWER; need <= VK_ROLE_OWNER; need++) {
		req.required = need;
		fx_authorize(fx, &req, &res);
		expect_allow(&res, VK_ROLE_OWNER, "organization", fx->org);
	}

	/* on a tie, the most specific grant is reported */
	fx_sql1(fx->db, "UPDATE grants SET role = 'owner' WHERE key_id = ?1", k.id);
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);
}

static void
test_role_ordering(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key keys[VK_ROLE_OWNER + 1];

	for (vk_role grant = VK_ROLE_VIEWER; grant <= VK_ROLE_OWNER; grant++)
		fx_key(fx, grant, "location", fx->loc1, &keys[grant]);
	for (vk_role grant = VK_ROLE_VIEWER; grant <= VK_ROLE_OWNER; grant++) {
		for (vk_role need = VK_ROLE_VIEWER; need <= VK_ROLE_OWNER; need++) {
			struct vk_request req = fx_request(fx, keys[grant].token);
			struct vk_result res;

			req.required = need;
			fx_authorize(fx, &req, &res);
			if (grant >= need)
				expect_allow(&res, grant, "location", fx->loc1);
			else
				expect_deny(&res, VK_REASON_ROLE, keys[grant].id);
		}
	}
}

static void
test_error_for_unusable_machine(void **state)
{
	struct fx_store *fx = *state;
	char unknown[VK_UUID_STRLEN + 1], upper[VK_UUID_STRLEN + 1];
	const char *const machines[] = {unknown, NULL, "", "m1a", upper, fx->loc1};
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "organization", fx->org, &k);
	fx_random_uuid(unknown);
	fx_uppercase(fx->m1a, upper);
	for (size_t i = 0; i < sizeof machines / sizeof machines[0]; i++) {
		struct vk_request req = fx_request(fx, k.token);
		struct vk_result res;

		req.machine_id = machines[i];
		fx_authorize(fx, &req, &res);
		expect(&res, VK_DECISION_ERROR, VK_REASON_MACHINE);
		assert_true(res.err[0] != '\0');
		assert_string_equal(res.key_id,
		                    k.id); /* the token parsed before the store was read */
	}
}

/* A machine whose location is gone (a store whose foreign keys broke) is not in the store. */
static void
test_error_for_machine_without_location(void **state)
{
	struct fx_store *fx = *state;
	struct vk_request req;
	struct vk_result res;
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	req = fx_request(fx, k.token);
	req.machine_id = fx->m1a;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);
	fx_sql(fx->db, "PRAGMA foreign_keys = OFF");
	fx_sql1(fx->db, "DELETE FROM locations WHERE id = ?1", fx->loc1);
	fx_sql(fx->db, "PRAGMA foreign_keys = ON");
	fx_authorize(fx, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_MACHINE);
	assert_non_null(strstr(res.err, "not in the store"));
}

/* No machine ID in the request: the store's record, if this host made it. */
static void
test_machine_from_store_record(void **state)
{
	struct fx_store *fx = *state;
	char err[VK_ERRLEN];
	struct vk_request req;
	struct vk_result res;
	struct fx_key k;

	if (!fx_have_machine_id())
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	fx_key(fx, VK_ROLE_OWNER, "location", fx->loc1, &k);
	if (vk_store_set_host_machine(fx->db, fx->m1b, err) != VK_OK)
		fail_msg("%s", err);
	req = fx_request(fx, k.token);
	req.machine_id = NULL;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "location", fx->loc1);
	assert_string_equal(res.machine, fx->m1b);
	/* a configured machine wins */
	req.machine_id = fx->m2;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_SCOPE, k.id);
	assert_string_equal(res.machine, fx->m2);
	/* a store copied from another host names no machine here */
	fx_sql(fx->db, "UPDATE meta SET value = '0123456789abcdef0123456789abcdef'"
	               " WHERE name = 'host_binding'");
	req.machine_id = NULL;
	fx_authorize(fx, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_MACHINE);
	assert_non_null(strstr(res.err, "another host"));
	req.machine_id = fx->m1a;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "location", fx->loc1);
}

static void
test_error_when_store_cannot_answer(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	fx_sql(fx->db, "DROP TABLE key_users");
	req = fx_request(fx, k.token);
	fx_authorize(fx, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_STORE);
	assert_non_null(strstr(res.err, "key_users"));
	fx_sql(fx->db, "DROP TABLE secrets");
	fx_authorize(fx, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_STORE);
}

static void
test_grace_secret_lives_until_window_end(void **state)
{
	struct fx_store *fx = *state;
	char next[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_rotate(fx, k.id, 600, FX_NOW + 10, next, err), VK_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 11), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, next, FX_NOW + 11), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 609), VK_REASON_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 610), VK_REASON_WRONG_SECRET);
	assert_int_equal(fx_reason(fx, next, FX_NOW + 610), VK_REASON_OK);
}

static void
test_finish_retires_grace_secret(void **state)
{
	struct fx_store *fx = *state;
	char next[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_rotate(fx, k.id, 600, FX_NOW + 10, next, err), VK_OK);
	assert_int_equal(fx_finish(fx, k.id, FX_NOW + 12, err), VK_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 13), VK_REASON_WRONG_SECRET);
	assert_int_equal(fx_reason(fx, next, FX_NOW + 13), VK_REASON_OK);
}

/*
 * A session checked again by its daemon: what the key could open now, and
 * whether the secret it used (its tag, from the allow) is still live.
 */
static void
test_session_check(void **state)
{
	struct fx_store *fx = *state;
	char next[VK_TOKEN_LEN + 1], err[VK_ERRLEN], tag[VK_SECRET_TAG_LEN + 1];
	struct vk_login lg = fx_login(fx);
	struct vk_session_ref ref;
	struct vk_request req;
	struct vk_result res;
	struct fx_key k;

	fx_key(fx, VK_ROLE_OPERATOR, "location", fx->loc1, &k);
	req = fx_request(fx, k.token);
	vk_authorize(&lg, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "location", fx->loc1);
	assert_int_equal(strlen(res.secret), VK_SECRET_TAG_LEN);
	memcpy(tag, res.secret, sizeof tag);

	ref = (struct vk_session_ref){k.id, "ann", fx->m1a, tag, VK_ROLE_OPERATOR, FX_NOW + 11};
	vk_authorize_session(fx->db, &ref, &res);
	expect(&res, VK_DECISION_ALLOW, VK_REASON_OK);
	ref.required = VK_ROLE_OWNER;
	vk_authorize_session(fx->db, &ref, &res);
	expect_deny(&res, VK_REASON_ROLE, k.id);
	ref.required = VK_ROLE_OPERATOR;
	ref.user = "bob";
	vk_authorize_session(fx->db, &ref, &res);
	expect_deny(&res, VK_REASON_USER, k.id);
	ref.user = "ann";
	ref.machine_id = fx->m3;
	vk_authorize_session(fx->db, &ref, &res);
	expect_deny(&res, VK_REASON_SCOPE, k.id);
	ref.machine_id = fx->m1a;

	/* a rotation's window: both secrets live; its end: the old one is not */
	assert_int_equal(fx_rotate(fx, k.id, 600, FX_NOW + 10, next, err), VK_OK);
	vk_authorize_session(fx->db, &ref, &res);
	expect(&res, VK_DECISION_ALLOW, VK_REASON_OK);
	assert_int_equal(fx_finish(fx, k.id, FX_NOW + 12, err), VK_OK);
	ref.now = FX_NOW + 13;
	vk_authorize_session(fx->db, &ref, &res);
	expect_deny(&res, VK_REASON_SECRET_ENDED, k.id);
	ref.secret = NULL; /* a session that recorded no secret is not checked for one */
	vk_authorize_session(fx->db, &ref, &res);
	expect(&res, VK_DECISION_ALLOW, VK_REASON_OK);

	fx_sql1(fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	vk_authorize_session(fx->db, &ref, &res);
	expect_deny(&res, VK_REASON_DISABLED, k.id);
	fx_sql1(fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	vk_authorize_session(fx->db, &ref, &res);
	expect_deny(&res, VK_REASON_UNKNOWN_KEY, k.id);
	assert_string_equal(vk_reason_name(VK_REASON_SECRET_ENDED), "secret_ended");
}

static void
test_immediate_rotation_retires_old_secret(void **state)
{
	struct fx_store *fx = *state;
	char next[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	assert_int_equal(fx_rotate(fx, k.id, 0, FX_NOW + 10, next, err), VK_OK);
	assert_int_equal(fx_reason(fx, k.token, FX_NOW + 11), VK_REASON_WRONG_SECRET);
	assert_int_equal(fx_reason(fx, next, FX_NOW + 11), VK_REASON_OK);
}

static void
test_token_length_is_honoured(void **state)
{
	struct fx_store *fx = *state;
	char padded[VK_TOKEN_LEN + 8];
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	memcpy(padded, k.token, VK_TOKEN_LEN);
	memcpy(padded + VK_TOKEN_LEN, "garbage", 8);
	req = fx_request(fx, padded);
	req.token_len = VK_TOKEN_LEN;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);
	req.token_len = VK_TOKEN_LEN + 1;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_MALFORMED, "");
}

/* The token with `before` and `after` around it. */
static char *
surround(const char *before, const char *token, const char *after)
{
	char *s;

	assert_true(asprintf(&s, "%s%s%s", before, token, after) > 0);
	return s;
}

static void
test_surrounding_white_space_ignored(void **state)
{
	static const char *const around[][2] = {
	    {" ", ""},         {"", "\n"},         {"", "\r\n"},           {"\t", "\t"},
	    {"  \t", " \r\n"}, {"\r\n\n", "\n\n"}, {" \t\r\n", " \t\r\n"},
	};
	struct fx_store *fx = *state;
	struct vk_result bare, res;
	struct vk_request req;
	struct fx_key k;
	char forged[VK_TOKEN_LEN + 1];

	fx_key(fx, VK_ROLE_OPERATOR, "location", fx->loc1, &k);
	req = fx_request(fx, k.token);
	fx_authorize(fx, &req, &bare);
	expect_allow(&bare, VK_ROLE_OPERATOR, "location", fx->loc1);
	forge(&k, forged);
	for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
		char *padded = surround(around[i][0], k.token, around[i][1]);
		char *wrong = surround(around[i][0], forged, around[i][1]);

		req = fx_request(fx, padded);
		fx_authorize(fx, &req, &res);
		expect_allow(&res, VK_ROLE_OPERATOR, "location", fx->loc1);
		assert_string_equal(res.key_id, bare.key_id);
		assert_string_equal(res.key_name, bare.key_name);
		assert_string_equal(res.machine, fx->m1a);
		/* and everything after the secret is decided as for the bare token */
		req.user = "bob";
		fx_authorize(fx, &req, &res);
		expect_deny(&res, VK_REASON_USER, k.id);
		req = fx_request(fx, wrong);
		fx_authorize(fx, &req, &res);
		expect_deny(&res, VK_REASON_WRONG_SECRET, k.id);
		free(padded);
		free(wrong);
	}
}

static void
test_other_white_space_not_ignored(void **state)
{
	static const char *const around[][2] = {
	    {"\v", ""}, {"", "\f"}, {"\xc2\xa0", ""}, {"", "\xe2\x80\x8b"}, {"x", ""}, {"", "_"},
	};
	struct fx_store *fx = *state;
	struct vk_result res;
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	for (size_t i = 0; i < sizeof around / sizeof around[0]; i++) {
		char *padded = surround(around[i][0], k.token, around[i][1]);
		struct vk_request req = fx_request(fx, padded);

		fx_authorize(fx, &req, &res);
		expect_deny(&res, VK_REASON_MALFORMED, "");
		free(padded);
	}
}

/* A store file of garbage, a missing file and a missing directory: unusable. */
static void
test_bad_token_denied_without_store(void **state)
{
	struct fx_store *fx = *state;
	char *garbage = fx_join(fx->dir, "garbage.db");
	char *missing = fx_join(fx->dir, "missing.db");
	char *nodir = fx_join(fx->dir, "no/such/dir/keys.db");
	const char *const paths[] = {garbage, missing, nodir};
	char typo[VK_TOKEN_LEN + 1], bytes[4096];
	struct fx_key k;

	memset(bytes, 'x', sizeof bytes);
	fx_write(garbage, 0600, bytes, sizeof bytes);
	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	memcpy(typo, k.token, sizeof typo);
	typo[40] = typo[40] == 'a' ? 'b' : 'a';
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct vk_login lg = fx_login(fx);
		struct vk_request req;
		struct vk_result res;

		lg.store_path = paths[i];
		req = fx_request(fx, "hunter2");
		memset(&res, 0x5a, sizeof res);
		vk_authorize(&lg, &req, &res);
		expect_deny(&res, VK_REASON_MALFORMED, "");

		req = fx_request(fx, " vk_abc\n");
		vk_authorize(&lg, &req, &res);
		expect_deny(&res, VK_REASON_MALFORMED, "");

		req = fx_request(fx, typo);
		vk_authorize(&lg, &req, &res);
		expect_deny(&res, VK_REASON_CHECKSUM, "");

		/* a token that parses needs the store: that is an error, not a denial */
		req = fx_request(fx, k.token);
		vk_authorize(&lg, &req, &res);
		expect(&res, VK_DECISION_ERROR, VK_REASON_STORE);
		assert_true(res.err[0] != '\0');
		assert_string_equal(res.key_id, k.id);
	}
	/* neither decision created anything */
	assert_int_equal(access(missing, F_OK), -1);
	free(garbage);
	free(missing);
	free(nodir);
}

/* Over VK_TOKEN_HARD_MAX bytes: malformed, trimmed or not, without looking further. */
static void
test_over_long_token_malformed(void **state)
{
	struct fx_store *fx = *state;
	char buf[VK_TOKEN_HARD_MAX + 2];
	struct vk_request req;
	struct vk_result res;
	struct fx_key k;

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);

	/* the token and spaces up to exactly the limit: still the token */
	memset(buf, ' ', sizeof buf);
	memcpy(buf, k.token, VK_TOKEN_LEN);
	req = fx_request(fx, k.token);
	req.token = buf;
	req.token_len = VK_TOKEN_HARD_MAX;
	fx_authorize(fx, &req, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);

	/* one byte more, and it is refused whole */
	req.token_len = VK_TOKEN_HARD_MAX + 1;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_MALFORMED, "");
	memset(buf, ' ', sizeof buf);
	memcpy(buf + VK_TOKEN_HARD_MAX + 1 - VK_TOKEN_LEN, k.token, VK_TOKEN_LEN);
	req.token_len = VK_TOKEN_HARD_MAX + 1;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_MALFORMED, "");

	/* long token-shaped input */
	memcpy(buf, "vk_", 3);
	memset(buf + 3, 'A', sizeof buf - 3);
	req.token_len = sizeof buf;
	fx_authorize(fx, &req, &res);
	expect_deny(&res, VK_REASON_MALFORMED, "");
}

/* Sets the key's last use to NULL. */
static void
forget_last_use(struct fx_store *fx, const char *key_id)
{
	fx_sql1(fx->db,
	        "UPDATE keys SET last_used_at = NULL, last_used_service = NULL,"
	        " last_used_user = NULL, last_used_rhost = NULL WHERE id = ?1",
	        key_id);
}

static int64_t
last_used_at(struct fx_store *fx, const char *key_id)
{
	return fx_count(fx->db, "SELECT coalesce(last_used_at, -1) FROM keys WHERE id = ?1",
	                key_id);
}

/* vk_authorize() with last use recorded every `interval` seconds. */
static void
authorize_noting(struct fx_store *fx, int64_t interval, const struct vk_request *req,
                 struct vk_result *res)
{
	struct vk_login lg = fx_login(fx);

	lg.last_used_interval = interval;
	memset(res, 0x5a, sizeof *res);
	vk_authorize(&lg, req, res);
}

static void
test_last_use_recorded_only_when_asked_and_allowed(void **state)
{
	struct fx_store *fx = *state;
	struct vk_request req;
	struct vk_result res;
	struct fx_key k;
	char forged[VK_TOKEN_LEN + 1];
	int64_t before;

	fx_key(fx, VK_ROLE_OPERATOR, "machine", fx->m1a, &k);
	forge(&k, forged);
	req = fx_request(fx, k.token);
	req.rhost = "192.0.2.7";

	/* interval < 0: never, not even when allowed */
	authorize_noting(fx, -1, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "machine", fx->m1a);
	assert_int_equal(last_used_at(fx, k.id), -1);

	/* denials never write, whatever the interval */
	before = fx_data_version(fx);
	{
		struct vk_request denied[4];

		denied[0] = req, denied[0].user = "bob";
		denied[1] = req, denied[1].required = VK_ROLE_OWNER;
		denied[2] = req, denied[2].token = forged;
		denied[3] = req, denied[3].machine_id = fx->m2;
		for (size_t i = 0; i < 4; i++) {
			authorize_noting(fx, 0, &denied[i], &res);
			assert_int_equal(res.decision, VK_DECISION_DENY);
		}
	}
	fx_assert_unchanged(fx, before);
	assert_int_equal(last_used_at(fx, k.id), -1);

	/* allowed, interval 0: recorded with the service, user and remote host */
	authorize_noting(fx, 0, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "machine", fx->m1a);
	assert_string_equal(res.use_err, "");
	assert_int_equal(
	    fx_count(fx->db,
	             "SELECT count(*) FROM keys WHERE id = ?1 AND last_used_at = 1700000001"
	             " AND last_used_service = 'sshd' AND last_used_user = 'ann'"
	             " AND last_used_rhost = '192.0.2.7'",
	             k.id),
	    1);

	/* interval 60: not again within a minute, then again */
	req.now = FX_NOW + 60;
	authorize_noting(fx, 60, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "machine", fx->m1a);
	assert_int_equal(last_used_at(fx, k.id), FX_NOW + 1);
	req.now = FX_NOW + 61;
	authorize_noting(fx, 60, &req, &res);
	assert_int_equal(last_used_at(fx, k.id), FX_NOW + 61);

	/* what PAM reports is stored cleaned */
	forget_last_use(fx, k.id);
	req.service = "ssh\x1b[2Jd";
	req.rhost = "evil\xe2\x80\xae.example";
	authorize_noting(fx, 0, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "machine", fx->m1a);
	assert_int_equal(fx_count(fx->db,
	                          "SELECT count(*) FROM keys WHERE id = ?1 AND"
	                          " last_used_service = 'ssh?[2Jd' AND"
	                          " last_used_rhost = 'evil?.example'",
	                          k.id),
	                 1);
}

static void
test_recheck(void **state)
{
	struct fx_store *fx = *state;
	struct fx_key k;
	struct vk_result res;
	struct vk_request req;

	fx_key(fx, VK_ROLE_OPERATOR, "location", fx->loc1, &k);
	fx_sql1(fx->db, "INSERT INTO key_users VALUES (?1, 'bob')", k.id);
	req = fx_request(fx, NULL);
	fx_recheck(fx, k.id, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "location", fx->loc1);
	assert_string_equal(res.key_id, k.id);
	assert_string_equal(res.key_name, "test key");

	req.required = VK_ROLE_OWNER;
	fx_recheck(fx, k.id, &req, &res);
	expect_deny(&res, VK_REASON_ROLE, k.id);
	req.required = VK_ROLE_VIEWER;

	req.now = FX_NOW + 10;
	fx_sql1(fx->db, "UPDATE keys SET expires_at = created_at + 5 WHERE id = ?1", k.id);
	fx_recheck(fx, k.id, &req, &res);
	expect_deny(&res, VK_REASON_EXPIRED, k.id);
	fx_sql1(fx->db, "UPDATE keys SET expires_at = NULL WHERE id = ?1", k.id);

	fx_sql1(fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	fx_recheck(fx, k.id, &req, &res);
	expect_deny(&res, VK_REASON_DISABLED, k.id);
	fx_sql1(fx->db, "UPDATE keys SET disabled = 0 WHERE id = ?1", k.id);

	fx_sql1(fx->db, "DELETE FROM key_users WHERE key_id = ?1 AND user = 'ann'", k.id);
	fx_recheck(fx, k.id, &req, &res);
	expect_deny(&res, VK_REASON_USER, k.id);
	req.user = "bob";
	fx_recheck(fx, k.id, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "location", fx->loc1);

	fx_sql1(fx->db, "DELETE FROM grants WHERE key_id = ?1", k.id);
	fx_recheck(fx, k.id, &req, &res);
	expect_deny(&res, VK_REASON_SCOPE, k.id);

	fx_sql1(fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	fx_recheck(fx, k.id, &req, &res);
	expect_deny(&res, VK_REASON_UNKNOWN_KEY, k.id);

	req.machine_id = NULL;
	fx_recheck(fx, k.id, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_MACHINE);
}

/* The reason for token in the usual login at `now`, and how many verifications it ran. */
static int
verifications_for(struct fx_store *fx, const char *token, int64_t now, vk_reason want)
{
	vk_reason got;

	verifications = 0;
	got = fx_reason(fx, token, now);
	if (got != want)
		fail_msg("got %s, want %s", vk_reason_name(got), vk_reason_name(want));
	return verifications;
}

/*
 * authz.c rule 3: every token that parses costs exactly two verifications,
 * whether its key exists and whatever it holds (0, 1, 2 or, in a damaged
 * store, 3 live secrets), so the time taken does not tell which key IDs
 * exist. A token refused before the store is opened costs none.
 */
static void
test_same_verifications_for_every_key(void **state)
{
	struct fx_store *fx = *state;
	char unknown[VK_TOKEN_LEN + 1], forged[VK_TOKEN_LEN + 1], next[VK_TOKEN_LEN + 1],
	    err[VK_ERRLEN];
	struct vk_token t;
	struct fx_key k, none;

	vk_token_generate(&t);
	vk_token_format(&t, unknown);
	vk_token_wipe(&t);
	assert_int_equal(verifications_for(fx, unknown, FX_NOW + 1, VK_REASON_UNKNOWN_KEY), 2);

	/* one live secret */
	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	forge(&k, forged);
	assert_int_equal(verifications_for(fx, k.token, FX_NOW + 1, VK_REASON_OK), 2);
	assert_int_equal(verifications_for(fx, forged, FX_NOW + 1, VK_REASON_WRONG_SECRET), 2);

	/* two: a rotation window */
	assert_int_equal(fx_rotate(fx, k.id, 600, FX_NOW + 10, next, err), VK_OK);
	assert_int_equal(verifications_for(fx, k.token, FX_NOW + 11, VK_REASON_OK), 2);
	assert_int_equal(verifications_for(fx, next, FX_NOW + 11, VK_REASON_OK), 2);
	assert_int_equal(verifications_for(fx, forged, FX_NOW + 11, VK_REASON_WRONG_SECRET), 2);

	/* three live rows, which keyadm never leaves: still two */
	fx_sql1(fx->db,
	        "INSERT INTO secrets (key_id, alg, salt, verifier, created_at, expires_at)"
	        " SELECT key_id, alg, salt, verifier, created_at + 1, NULL FROM secrets"
	        " WHERE key_id = ?1 AND expires_at IS NULL",
	        k.id);
	assert_int_equal(fx_count(fx->db, "SELECT count(*) FROM secrets WHERE key_id = ?1", k.id),
	                 3);
	assert_int_equal(verifications_for(fx, forged, FX_NOW + 11, VK_REASON_WRONG_SECRET), 2);

	/* none live: every secret expired */
	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &none);
	fx_sql1(fx->db, "UPDATE secrets SET expires_at = created_at WHERE key_id = ?1", none.id);
	assert_int_equal(verifications_for(fx, none.token, FX_NOW + 1, VK_REASON_WRONG_SECRET), 2);

	/* a disabled key is verified all the same */
	fx_sql1(fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	assert_int_equal(verifications_for(fx, next, FX_NOW + 11, VK_REASON_DISABLED), 2);

	/* refused before the store: a typo, a malformed answer */
	next[40] = next[40] == 'a' ? 'b' : 'a';
	assert_int_equal(verifications_for(fx, next, FX_NOW + 11, VK_REASON_CHECKSUM), 0);
	assert_int_equal(verifications_for(fx, "hunter2", FX_NOW + 11, VK_REASON_MALFORMED), 0);
}

/* Sets the replica's last heartbeat, as the authority signed it and as it arrived, to `at`. */
static void
heartbeat(struct fx_store *fx, int64_t at)
{
	char v[24];

	snprintf(v, sizeof v, "%lld", (long long)at);
	fx_sql1(fx->db,
	        "INSERT INTO meta (name, value) VALUES ('" VK_META_HEARTBEAT_AT "', ?1),"
	        " ('" VK_META_HEARTBEAT_SEEN "', ?1)"
	        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	        v);
}

/* vk_fleet_stale() on fx->db at `now` with `max` seconds; fails the test on an error. */
static int
stale(struct fx_store *fx, int64_t now, int64_t max)
{
	char err[VK_ERRLEN];
	int s = -1;

	if (vk_fleet_stale(fx->db, now, max, &s, err) != VK_OK)
		fail_msg("%s", err);
	assert_true(s == 0 || s == 1);
	return s;
}

/*
 * [sync] max_staleness: a replica whose last heartbeat is older than
 * max_staleness is stale, a fresh one is not; 0 turns the check off; a
 * store that is not a replica is never stale.
 */
static void
test_fleet_stale(void **state)
{
	static const char *const roles[] = {"authority", "replica"};
	struct fx_store *fx = *state;
	const int64_t max = 600, now = FX_NOW + 100000;

	/* standalone (no role recorded), then an authority: never stale, even without heartbeat */
	for (size_t i = 0; i < 2; i++) {
		if (i == 1)
			fx_sql1(fx->db,
			        "INSERT INTO meta (name, value) VALUES ('" VK_META_ROLE "', ?1)",
			        roles[0]);
		assert_int_equal(stale(fx, now, max), 0);
		heartbeat(fx, now - 10 * max);
		assert_int_equal(stale(fx, now, max), 0);
		fx_sql(fx->db, "DELETE FROM meta WHERE name IN ('" VK_META_HEARTBEAT_AT
		               "', '" VK_META_HEARTBEAT_SEEN "')");
	}

	fx_sql1(fx->db, "UPDATE meta SET value = ?1 WHERE name = '" VK_META_ROLE "'", roles[1]);
	/* a replica that never heard a heartbeat */
	assert_int_equal(stale(fx, now, max), 1);
	assert_int_equal(stale(fx, now, 0), 0);
	/* fresh */
	heartbeat(fx, now - 10);
	assert_int_equal(stale(fx, now, max), 0);
	heartbeat(fx, now - max / 2);
	assert_int_equal(stale(fx, now, max), 0);
	/* older than max_staleness */
	heartbeat(fx, now - 3 * max);
	assert_int_equal(stale(fx, now, max), 1);
	assert_int_equal(stale(fx, now, 4 * max), 0);
	assert_int_equal(stale(fx, now, 0), 0);
}

/* The usual login with token at `now`, decided with lg. */
static void
decide_at(struct fx_store *fx, const struct vk_login *lg, const char *token, int64_t now,
          struct vk_result *res)
{
	struct vk_request req = fx_request(fx, token);

	req.now = now;
	memset(res, 0x5a, sizeof *res);
	vk_authorize(lg, &req, res);
}

/*
 * The decision on a stale replica: what would be allowed is an ERROR
 * (stale), a denial stays a denial, and a break-glass key is let in.
 */
static void
test_stale_replica_decision(void **state)
{
	struct fx_store *fx = *state;
	struct vk_login lg = fx_login(fx);
	const int64_t now = FX_NOW + 100000;
	struct fx_key k, glass;
	struct vk_result res;
	char forged[VK_TOKEN_LEN + 1];

	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &k);
	fx_key(fx, VK_ROLE_OWNER, "machine", fx->m1a, &glass);
	fx_sql1(fx->db, "UPDATE keys SET break_glass = 1 WHERE id = ?1", glass.id);
	forge(&k, forged);
	fx_sql(fx->db, "INSERT INTO meta (name, value) VALUES ('" VK_META_ROLE "', 'replica')");
	lg.max_staleness = 600;

	heartbeat(fx, now - 30);
	decide_at(fx, &lg, k.token, now, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);

	heartbeat(fx, now - 3600);
	decide_at(fx, &lg, k.token, now, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_STALE);
	assert_non_null(strstr(res.err, "max_staleness"));
	decide_at(fx, &lg, forged, now, &res);
	expect_deny(&res, VK_REASON_WRONG_SECRET, k.id);
	decide_at(fx, &lg, glass.token, now, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);

	lg.max_staleness = 0;
	decide_at(fx, &lg, k.token, now, &res);
	expect_allow(&res, VK_ROLE_OWNER, "machine", fx->m1a);
}

/*
 * A re-check lets an allow stand without reading the store while the store
 * is unchanged and so is everything else it decided on; any difference
 * makes it read the store and decide again, with the reason that gives.
 */
static void
test_recheck_lets_an_unchanged_allow_stand(void **state)
{
	struct fx_store *fx = *state;
	struct vk_login lg = fx_login(fx);
	struct vk_request req;
	struct vk_result then, res;
	struct fx_key k;

	fx_key(fx, VK_ROLE_OPERATOR, "location", fx->loc1, &k);
	/* the key expires at FX_NOW + 100; a replica's last heartbeat came at FX_NOW */
	fx_sql1(fx->db, "UPDATE keys SET expires_at = 1700000100 WHERE id = ?1", k.id);
	fx_sql(fx->db, "INSERT INTO meta (name, value) VALUES ('fleet_role', 'replica'),"
	               " ('heartbeat_seen', '1700000000')");
	fx_backdate(fx->path, 60);
	req = fx_request(fx, k.token);
	vk_authorize(&lg, &req, &then);
	expect_allow(&then, VK_ROLE_OPERATOR, "location", fx->loc1);
	req.token = NULL;

	/* the same request stands, with SQLite unable to allocate: the store is not opened */
	sqlite3_hard_heap_limit64(1);
	vk_authorize_recheck(&lg, &then, &req, &res);
	sqlite3_hard_heap_limit64(0);
	expect_allow(&res, VK_ROLE_OPERATOR, "location", fx->loc1);
	assert_string_equal(res.key_id, k.id);
	assert_string_equal(res.key_name, "test key");
	assert_string_equal(res.machine, fx->m1a);

	req.now = FX_NOW + 100; /* the key has expired since */
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect_deny(&res, VK_REASON_EXPIRED, k.id);
	req.now = FX_NOW + 1;

	req.user = "bob";
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect_deny(&res, VK_REASON_USER, k.id);
	req.user = "ann";

	req.required = VK_ROLE_OWNER;
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect_deny(&res, VK_REASON_ROLE, k.id);
	req.required = VK_ROLE_OPERATOR;

	req.machine_id = fx->m3;
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect_deny(&res, VK_REASON_SCOPE, k.id);
	req.machine_id = NULL; /* the store records no machine for this host */
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_MACHINE);
	req.machine_id = fx->m1a;

	lg.max_staleness = 10; /* the replica heard its last heartbeat 100 s before */
	req.now = FX_NOW + 99;
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect(&res, VK_DECISION_ERROR, VK_REASON_STALE);
	lg.max_staleness = 0;
	req.now = FX_NOW + 1;

	vk_authorize_recheck(&lg, &then, &req, &res);
	expect_allow(&res, VK_ROLE_OPERATOR, "location", fx->loc1);
	fx_sql1(fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	vk_authorize_recheck(&lg, &then, &req, &res);
	expect_deny(&res, VK_REASON_DISABLED, k.id);
}

static void
test_reason_names(void **state)
{
	static const char *const names[] = {
	    "ok",       "malformed", "checksum",         "unknown_key", "wrong_secret",
	    "disabled", "expired",   "user_not_allowed", "scope",       "role"};

	(void)state;
	for (vk_reason r = VK_REASON_OK; r <= VK_REASON_ROLE; r++)
		assert_string_equal(vk_reason_name(r), names[r]);
	assert_string_equal(vk_reason_name((vk_reason)99), "unknown");
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, fx_store_setup, fx_store_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_deny_malformed),
	    TEST(test_deny_checksum),
	    TEST(test_deny_unknown_key),
	    TEST(test_deny_wrong_secret),
	    TEST(test_deny_disabled),
	    TEST(test_deny_expired),
	    TEST(test_deny_user_not_allowed),
	    TEST(test_deny_scope),
	    TEST(test_deny_role),
	    TEST(test_allow_via_machine_location_organization),
	    TEST(test_highest_covering_grant_chosen),
	    TEST(test_role_ordering),
	    TEST(test_error_for_unusable_machine),
	    TEST(test_error_for_machine_without_location),
	    TEST(test_machine_from_store_record),
	    TEST(test_error_when_store_cannot_answer),
	    TEST(test_grace_secret_lives_until_window_end),
	    TEST(test_finish_retires_grace_secret),
	    TEST(test_session_check),
	    TEST(test_immediate_rotation_retires_old_secret),
	    TEST(test_token_length_is_honoured),
	    TEST(test_surrounding_white_space_ignored),
	    TEST(test_other_white_space_not_ignored),
	    TEST(test_bad_token_denied_without_store),
	    TEST(test_over_long_token_malformed),
	    TEST(test_last_use_recorded_only_when_asked_and_allowed),
	    TEST(test_recheck),
	    TEST(test_same_verifications_for_every_key),
	    TEST(test_fleet_stale),
	    TEST(test_stale_replica_decision),
	    TEST(test_recheck_lets_an_unchanged_allow_stand),
	    cmocka_unit_test(test_reason_names),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
