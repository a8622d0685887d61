/*
 * verifier_test.c - verifiers of key secrets (verifier.h).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <string.h>

#include "fixture.h"
#include "verifier.h"

struct made {
	struct vk_token t;
	unsigned char salt[VK_SALT_BYTES];
	unsigned char ver[VK_VERIFY_BYTES];
};

static void
make(struct made *m)
{
	vk_token_generate(&m->t);
	vk_verifier_make(&m->t, m->salt, m->ver);
}

static int
check(const struct made *m, const struct vk_token *t)
{
	return vk_verifier_check(t, VK_ALG_CURRENT, m->salt, sizeof m->salt, m->ver, sizeof m->ver);
}

static void
test_make_then_check_matches(void **state)
{
	(void)state;
	for (int i = 0; i < 100; i++) {
		struct made m;

		make(&m);
		assert_true(check(&m, &m.t));
	}
}

/* The stored form is the one verifier.h documents; stores written earlier must keep verifying. */
static void
test_verifier_is_documented_hash(void **state)
{
	unsigned char msg[10 + VK_KEY_ID_BYTES + VK_SECRET_BYTES], want[VK_VERIFY_BYTES];
	struct made m;

	(void)state;
	make(&m);
	memcpy(msg, "viamkey-v1", 10);
	memcpy(msg + 10, m.t.key_id, VK_KEY_ID_BYTES);
	memcpy(msg + 10 + VK_KEY_ID_BYTES, m.t.secret, VK_SECRET_BYTES);
	assert_int_equal(
	    crypto_generichash(want, sizeof want, msg, sizeof msg, m.salt, sizeof m.salt), 0);
	assert_memory_equal(m.ver, want, sizeof want);
	assert_string_equal(VK_ALG_CURRENT, "b2k256-v1");
}

static void
test_fresh_salt_per_secret(void **state)
{
	struct made a, b;

	(void)state;
	make(&a);
	b.t = a.t;
	vk_verifier_make(&b.t, b.salt, b.ver);
	assert_memory_not_equal(a.salt, b.salt, VK_SALT_BYTES);
	assert_memory_not_equal(a.ver, b.ver, VK_VERIFY_BYTES);
	assert_true(check(&b, &a.t));
}

static void
test_wrong_secret_or_key_id_fails(void **state)
{
	struct made m;

	(void)state;
	make(&m);
	for (size_t i = 0; i < VK_SECRET_BYTES; i++) {
		struct vk_token t = m.t;

		t.secret[i] ^= 0x01;
		assert_false(check(&m, &t));
	}
	for (size_t i = 0; i < VK_KEY_ID_BYTES; i++) {
		struct vk_token t = m.t;

		t.key_id[i] ^= 0x80;
		assert_false(check(&m, &t));
	}
}

static void
test_tampered_row_fails(void **state)
{
	struct made m;

	(void)state;
	make(&m);
	for (size_t i = 0; i < VK_SALT_BYTES; i++) {
		m.salt[i] ^= 0x01;
		assert_false(check(&m, &m.t));
		m.salt[i] ^= 0x01;
	}
	for (size_t i = 0; i < VK_VERIFY_BYTES; i++) {
		m.ver[i] ^= 0x01;
		assert_false(check(&m, &m.t));
		m.ver[i] ^= 0x01;
	}
	assert_true(check(&m, &m.t));
}

static void
test_unusable_row_fails(void **state)
{
	static const char *const algs[] = {"b2k256-v2", "B2K256-V1", "b2k256-v1 ", "", NULL};
	unsigned char longer[VK_SALT_BYTES + 1];
	struct made m;

	(void)state;
	make(&m);
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
		assert_false(vk_verifier_check(&m.t, algs[i], m.salt, VK_SALT_BYTES, m.ver,
		                               VK_VERIFY_BYTES));
	memcpy(longer, m.salt, VK_SALT_BYTES);
	longer[VK_SALT_BYTES] = 0;
	assert_false(
	    vk_verifier_check(&m.t, VK_ALG_CURRENT, longer, sizeof longer, m.ver, VK_VERIFY_BYTES));
	assert_false(vk_verifier_check(&m.t, VK_ALG_CURRENT, m.salt, VK_SALT_BYTES - 1, m.ver,
	                               VK_VERIFY_BYTES));
	assert_false(vk_verifier_check(&m.t, VK_ALG_CURRENT, m.salt, 0, m.ver, VK_VERIFY_BYTES));
	assert_false(vk_verifier_check(&m.t, VK_ALG_CURRENT, m.salt, VK_SALT_BYTES, m.ver,
	                               VK_VERIFY_BYTES - 1));
	assert_false(vk_verifier_check(&m.t, VK_ALG_CURRENT, m.salt, VK_SALT_BYTES, m.ver, 0));
	assert_false(
	    vk_verifier_check(&m.t, VK_ALG_CURRENT, NULL, VK_SALT_BYTES, m.ver, VK_VERIFY_BYTES));
	assert_false(
	    vk_verifier_check(&m.t, VK_ALG_CURRENT, m.salt, VK_SALT_BYTES, NULL, VK_VERIFY_BYTES));
	assert_false(vk_verifier_check(&m.t, NULL, NULL, 0, NULL, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_make_then_check_matches),
	    cmocka_unit_test(test_verifier_is_documented_hash),
	    cmocka_unit_test(test_fresh_salt_per_secret),
	    cmocka_unit_test(test_wrong_secret_or_key_id_fails),
	    cmocka_unit_test(test_tampered_row_fails),
	    cmocka_unit_test(test_unusable_row_fails),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
