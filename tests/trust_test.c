/*
 * trust_test.c - the root of trust (cert.h) and what a machine believes
 * (trust.h): certificates and root versions against fixed vectors, their
 * refusals, and a replica's trust through epochs and root versions.
 *
 * The vectors were made apart from this code, with OpenSSL's Ed25519 over
 * keys from fixed seeds (32 bytes of 1 for the root, 2 for the signing key,
 * 3 for root version 2).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cert.h"
#include "fixture.h"
#include "fleet.h"
#include "store.h"
#include "trust.h"

#define ROOT_PK   "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
#define SIGNER_PK "gTl3Dqh9F19Wo1Rmw0x+zMuNipG07jeiXfYPW4/Js5Q="
#define ROOT2_PK  "7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E="
#define CERT                                                                                       \
	"vk1.G_vRyoNEBN7O8HVWcF77R2522mW1IoLx6eNUp7FMXrHrBJrQBNBjrObulskbDymFVPvpt_uxF-"           \
	"02avjJdTfLBQ.{\"v\":1,\"type\":\"cert\",\"epoch\":1,\"key\":\"" SIGNER_PK                 \
	"\",\"root\":1,\"at\":1700000000,\"name\":\"auth-1\"}"
#define ROOT2                                                                                      \
	"vkr1.dBisG5Q8ds03EJR6g775pZ-XDX0uXC3oR17oIc14GiCIGvdiQW-"                                 \
	"bRH9XuOwnIZtdcOyqfYDhLw0Y7NXlcrYoDw."                                                     \
	"5XDzDZJUB0DE5G-kOrriijy5pXb0aNDa9UA-tDyUNE8cOXkMB3X2nh6_kGmJUdOuRlCybALls6WKJCFCJEItAw."  \
	"{\"v\":1,\"type\":\"root\",\"version\":2,\"key\":\"" ROOT2_PK "\",\"at\":1700000000}"

struct keys {
	unsigned char root_sk[VK_SIGNING_KEY_BYTES], signer_sk[VK_SIGNING_KEY_BYTES],
	    root2_sk[VK_SIGNING_KEY_BYTES], other_sk[VK_SIGNING_KEY_BYTES];
	unsigned char root_pk[VK_PUBLIC_KEY_BYTES], signer_pk[VK_PUBLIC_KEY_BYTES],
	    root2_pk[VK_PUBLIC_KEY_BYTES], other_pk[VK_PUBLIC_KEY_BYTES];
};

static void
seeded(unsigned char fill, unsigned char pk[VK_PUBLIC_KEY_BYTES], unsigned char *sk)
{
	unsigned char seed[crypto_sign_SEEDBYTES];

	memset(seed, fill, sizeof seed);
	crypto_sign_seed_keypair(pk, sk, seed);
}

static void
make_keys(struct keys *k)
{
	seeded(1, k->root_pk, k->root_sk);
	seeded(2, k->signer_pk, k->signer_sk);
	seeded(3, k->root2_pk, k->root2_sk);
	seeded(4, k->other_pk, k->other_sk);
}

/* ---- certificates and root versions --------------------------------------------- */

static void
test_cert_vector(void **state)
{
	struct keys k;
	struct vk_cert c = {.epoch = 1, .root = 1, .at = 1700000000, .name = "auth-1"}, back;
	char *value;

	(void)state;
	make_keys(&k);
	memcpy(c.key, k.signer_pk, sizeof c.key);
	value = vk_cert_make(k.root_sk, &c);
	assert_non_null(value);
	assert_string_equal(value, CERT);
	assert_int_equal(vk_cert_verify(k.root_pk, value, strlen(value), &back), 0);
	assert_memory_equal(&back, &c, sizeof c);
	/* another root, a changed byte, anything but the exact text */
	assert_int_not_equal(vk_cert_verify(k.other_pk, value, strlen(value), &back), 0);
	value[strlen(value) - 3] = 'X';
	assert_int_not_equal(vk_cert_verify(k.root_pk, value, strlen(value), &back), 0);
	free(value);
	/* a name that could break the text is refused */
	snprintf(c.name, sizeof c.name, "a\"b");
	assert_null(vk_cert_make(k.root_sk, &c));
	snprintf(c.name, sizeof c.name, "with space");
	assert_null(vk_cert_make(k.root_sk, &c));
	/* read without its signature checked, for what it names */
	assert_int_equal(vk_cert_read(CERT, strlen(CERT), &back), 0);
	assert_int_equal(back.root, 1);
	assert_int_equal(vk_cert_read(CERT, 20, &back), -1);
}

static void
test_root_vector(void **state)
{
	struct vk_root r;
	struct keys k;
	char *value;

	(void)state;
	make_keys(&k);
	value = vk_root_make(k.root_sk, k.root2_sk, 2, 1700000000);
	assert_non_null(value);
	assert_string_equal(value, ROOT2);
	assert_int_equal(vk_root_verify(k.root_pk, value, strlen(value), &r), 0);
	assert_int_equal(r.version, 2);
	assert_memory_equal(r.key, k.root2_pk, sizeof r.key);
	free(value);
	/* signed by the new key alone, or by the old alone: refused */
	value = vk_root_make(k.other_sk, k.root2_sk, 2, 1700000000);
	assert_int_not_equal(vk_root_verify(k.root_pk, value, strlen(value), &r), 0);
	free(value);
	value = vk_root_make(k.root_sk, k.root2_sk, 2, 1700000000);
	/* the second signature is root2's over this JSON: swap in other's key */
	{
		char *json = strstr(value, "{"), *key = strstr(json, ROOT2_PK),
		     b64[VK_PUBLIC_KEY_B64];

		sodium_bin2base64(b64, sizeof b64, k.other_pk, sizeof k.other_pk,
		                  sodium_base64_VARIANT_ORIGINAL);
		memcpy(key, b64, strlen(b64));
		assert_int_not_equal(vk_root_verify(k.root_pk, value, strlen(value), &r), 0);
	}
	free(value);
	for (size_t n = 0; n < strlen(ROOT2); n++)
		assert_int_not_equal(vk_root_verify(k.root_pk, ROOT2, n, &r), 0);
}

/* ---- what a replica trusts --------------------------------------------------------- */

struct tt {
	struct keys k;
	char *dir, *path;
	sqlite3 *db;
	char root_b64[VK_PUBLIC_KEY_B64];
};

static int
setup(void **state)
{
	struct tt *t = calloc(1, sizeof *t);
	char err[VK_ERRLEN];

	assert_non_null(t);
	fx_init();
	make_keys(&t->k);
	t->dir = fx_tmpdir();
	t->path = fx_join(t->dir, "replica.db");
	if (vk_store_open(t->path, VK_OPEN_INIT, 1000, &t->db, err) != VK_OK)
		fail_msg("%s", err);
	sodium_bin2base64(t->root_b64, sizeof t->root_b64, t->k.root_pk, sizeof t->k.root_pk,
	                  sodium_base64_VARIANT_ORIGINAL);
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct tt *t = *state;

	sqlite3_close(t->db);
	free(t->path);
	fx_rmtree(t->dir);
	free(t);
	return 0;
}

/* A heartbeat of `epoch` signed by sk, carrying cert (a value; NULL: none). */
static char *
heartbeat(const unsigned char *sk, int64_t epoch, const char *cert)
{
	char *b64 = NULL, *value;

	if (cert != NULL) {
		size_t size = sodium_base64_ENCODED_LEN(strlen(cert),
		                                        sodium_base64_VARIANT_URLSAFE_NO_PADDING);

		b64 = malloc(size);
		assert_non_null(b64);
		sodium_bin2base64(b64, size, (const unsigned char *)cert, strlen(cert),
		                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	}
	value = vk_record_heartbeat(sk, 1, FX_NOW, "auth", 1, epoch, b64);
	free(b64);
	assert_non_null(value);
	return value;
}

static char *
cert_for(const unsigned char *root_sk, int64_t root, int64_t epoch, const unsigned char *pk)
{
	struct vk_cert c = {.epoch = epoch, .root = root, .at = FX_NOW, .name = "auth"};
	char *value;

	memcpy(c.key, pk, sizeof c.key);
	value = vk_cert_make(root_sk, &c);
	assert_non_null(value);
	return value;
}

/* vk_trust_verify in a transaction; its rc, *moved and *need. */
static vk_rc
verify(struct tt *t, struct vk_trust *tr, const char *value, int *moved, int64_t *need)
{
	char err[VK_ERRLEN];
	const char *json;
	size_t len;
	vk_rc rc;

	fx_sql(t->db, "BEGIN");
	rc = vk_trust_verify(t->db, tr, value, strlen(value), &json, &len, moved, need, err);
	fx_sql(t->db, "COMMIT");
	return rc;
}

static void
test_legacy_key(void **state)
{
	struct tt *t = *state;
	struct vk_trust tr;
	char err[VK_ERRLEN], signer[VK_PUBLIC_KEY_B64], *hb;
	int moved;
	int64_t need;

	sodium_bin2base64(signer, sizeof signer, t->k.signer_pk, sizeof t->k.signer_pk,
	                  sodium_base64_VARIANT_ORIGINAL);
	assert_int_equal(vk_trust_load(t->db, NULL, signer, &tr, err), VK_OK);
	assert_false(tr.rooted);
	assert_int_equal(tr.epoch, 0);
	hb = heartbeat(t->k.signer_sk, 0, NULL);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_OK);
	assert_false(moved);
	free(hb);
	hb = heartbeat(t->k.other_sk, 0, NULL);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_USAGE);
	free(hb);
	assert_int_equal(vk_trust_load(t->db, NULL, NULL, &tr, err), VK_ERR_USAGE);
}

static void
test_epochs(void **state)
{
	struct tt *t = *state;
	struct vk_trust tr;
	char err[VK_ERRLEN], *hb, *cert1, *cert2, *record;
	int moved;
	int64_t need;

	assert_int_equal(vk_trust_load(t->db, t->root_b64, NULL, &tr, err), VK_OK);
	assert_true(tr.rooted);
	assert_false(tr.have_key);
	/* a record before any certificate: nothing to verify it with */
	record = vk_record_sign(t->k.signer_sk, "{\"v\":1}");
	assert_int_equal(verify(t, &tr, record, &moved, &need), VK_ERR_USAGE);
	/* epoch 1, from a heartbeat that carries its certificate */
	cert1 = cert_for(t->k.root_sk, 1, 1, t->k.signer_pk);
	hb = heartbeat(t->k.signer_sk, 1, cert1);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_OK);
	assert_true(moved);
	assert_int_equal(tr.epoch, 1);
	fx_sql(t->db, "INSERT INTO sync_entries (entry, rev, tomb) VALUES ('o.x.k.y', 1, 0)");
	assert_int_equal(verify(t, &tr, record, &moved, &need), VK_OK);
	assert_false(moved);
	free(hb);
	/* the same heartbeat again changes nothing; what was read stays */
	hb = heartbeat(t->k.signer_sk, 1, cert1);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_OK);
	assert_false(moved);
	assert_int_equal(fx_count(t->db, "SELECT count(*) FROM sync_entries", NULL), 1);
	free(hb);
	/* a heartbeat whose epoch is not its certificate's */
	hb = heartbeat(t->k.other_sk, 2, cert1);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_USAGE);
	free(hb);
	/* another key for epoch 1: refused */
	cert2 = cert_for(t->k.root_sk, 1, 1, t->k.other_pk);
	hb = heartbeat(t->k.other_sk, 1, cert2);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_USAGE);
	free(hb);
	free(cert2);
	/* epoch 2, another key: the trust moves, and what was read under 1 is forgotten */
	cert2 = cert_for(t->k.root_sk, 1, 2, t->k.other_pk);
	hb = heartbeat(t->k.other_sk, 2, cert2);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_OK);
	assert_true(moved);
	assert_int_equal(tr.epoch, 2);
	assert_int_equal(fx_count(t->db, "SELECT count(*) FROM sync_entries", NULL), 0);
	free(hb);
	/* the former authority's records and heartbeats: refused */
	assert_int_equal(verify(t, &tr, record, &moved, &need), VK_ERR_USAGE);
	hb = heartbeat(t->k.signer_sk, 1, cert1);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_USAGE);
	free(hb);
	/* and after a restart too */
	assert_int_equal(vk_trust_load(t->db, t->root_b64, NULL, &tr, err), VK_OK);
	assert_int_equal(tr.epoch, 2);
	assert_true(tr.have_key);
	assert_memory_equal(tr.key, t->k.other_pk, sizeof tr.key);
	hb = heartbeat(t->k.signer_sk, 1, cert1);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_USAGE);
	free(hb);
	/* the store trusts this root: another configured root is an error */
	{
		char other[VK_PUBLIC_KEY_B64];

		sodium_bin2base64(other, sizeof other, t->k.other_pk, sizeof t->k.other_pk,
		                  sodium_base64_VARIANT_ORIGINAL);
		assert_int_equal(vk_trust_load(t->db, other, NULL, &tr, err), VK_ERR_USAGE);
	}
	free(cert1);
	free(cert2);
	free(record);
}

static void
test_root_versions(void **state)
{
	struct tt *t = *state;
	struct vk_trust tr;
	char err[VK_ERRLEN], *hb, *cert, *root2, *root3;
	int moved;
	int64_t need;

	assert_int_equal(vk_trust_load(t->db, t->root_b64, NULL, &tr, err), VK_OK);
	/* a certificate of root version 2, before that version is held */
	cert = cert_for(t->k.root2_sk, 2, 1, t->k.signer_pk);
	hb = heartbeat(t->k.signer_sk, 1, cert);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_NOTFOUND);
	assert_int_equal(need, 2);
	assert_false(tr.have_key);
	/* version 3 first (signed by 2): refused; then 2; then the certificate counts */
	root3 = vk_root_make(t->k.root2_sk, t->k.other_sk, 3, FX_NOW);
	fx_sql(t->db, "BEGIN");
	assert_int_equal(vk_trust_root(t->db, &tr, root3, strlen(root3), err), VK_ERR_USAGE);
	root2 = vk_root_make(t->k.root_sk, t->k.root2_sk, 2, FX_NOW);
	assert_int_equal(vk_trust_root(t->db, &tr, root2, strlen(root2), err), VK_OK);
	assert_int_equal(tr.root_version, 2);
	/* the same version again, or an older one: refused */
	assert_int_equal(vk_trust_root(t->db, &tr, root2, strlen(root2), err), VK_ERR_USAGE);
	fx_sql(t->db, "COMMIT");
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_OK);
	assert_true(moved);
	free(hb);
	/* a certificate of the version before is refused now */
	free(cert);
	cert = cert_for(t->k.root_sk, 1, 3, t->k.other_pk);
	hb = heartbeat(t->k.other_sk, 3, cert);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_USAGE);
	free(hb);
	/* kept across a restart */
	assert_int_equal(vk_trust_load(t->db, t->root_b64, NULL, &tr, err), VK_OK);
	assert_int_equal(tr.root_version, 2);
	assert_memory_equal(tr.root, t->k.root2_pk, sizeof tr.root);
	fx_sql(t->db, "BEGIN");
	assert_int_equal(vk_trust_root(t->db, &tr, root3, strlen(root3), err), VK_OK);
	fx_sql(t->db, "COMMIT");
	assert_int_equal(tr.root_version, 3);
	free(cert);
	free(root2);
	free(root3);
}

/*
 * A heartbeat whose type is written with an escape ("\u0068eartbeat") is a
 * heartbeat all the same: its certificate of a later root version asks for
 * that version, as the plain one's does (trust.c reads the fields of a
 * text with no "heartbeat" in it only when it holds an escape).
 */
static void
test_escaped_heartbeat(void **state)
{
	struct tt *t = *state;
	struct vk_trust tr;
	char err[VK_ERRLEN], *cert1, *cert2, *hb, *escaped;
	const char *json, *at;
	int moved;
	int64_t need;

	assert_int_equal(vk_trust_load(t->db, t->root_b64, NULL, &tr, err), VK_OK);
	cert1 = cert_for(t->k.root_sk, 1, 1, t->k.signer_pk);
	hb = heartbeat(t->k.signer_sk, 1, cert1);
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_OK);
	assert_true(tr.have_key);
	free(hb);
	cert2 = cert_for(t->k.root2_sk, 2, 1, t->k.signer_pk);
	hb = heartbeat(t->k.signer_sk, 1, cert2);
	need = 0;
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_NOTFOUND);
	assert_int_equal(need, 2);
	/* the same heartbeat's JSON, its type escaped, signed again */
	json = strchr(hb + 4, '.') + 1; /* vk1.SIGNATURE.JSON */
	at = strstr(json, "\"heartbeat\"");
	assert_non_null(at);
	escaped = malloc(strlen(hb) + 8);
	assert_non_null(escaped);
	sprintf(escaped, "%.*s\"\\u0068eartbeat\"%s", (int)(at - json), json,
	        at + strlen("\"heartbeat\""));
	free(hb);
	hb = vk_record_sign(t->k.signer_sk, escaped);
	assert_non_null(hb);
	assert_null(strstr(hb, "heartbeat"));
	need = 0;
	assert_int_equal(verify(t, &tr, hb, &moved, &need), VK_ERR_NOTFOUND);
	assert_int_equal(need, 2);
	free(escaped);
	free(hb);
	free(cert1);
	free(cert2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cert_vector),
	    cmocka_unit_test(test_root_vector),
	    cmocka_unit_test_setup_teardown(test_legacy_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_epochs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_root_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_escaped_heartbeat, setup, teardown),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
