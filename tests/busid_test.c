/*
 * busid_test.c - the bus's identities (busid.h): the keys' file and each
 * "nats" claims text against fixed vectors, and no name that is not plain
 * let into a claim.
 *
 * The vectors were made apart from this code, in Python: the seeds as
 * nkey_test.c makes them (base64.b32encode, binascii.crc_hqx), the public
 * nkeys of the same from OpenSSL, and each claims text by
 * json.dumps(..., separators=(",", ":")) of a dict in busid.c's field
 * order, so each is one JSON object. The keys are of Ed25519 seeds of 32
 * equal bytes: 1 for the operator, 7 for its signing key, 2 for MACHINES,
 * 3 for its signing key, 5 for SYS, 6 for VK, 4 and 8 for users.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busid.h"
#include "fixture.h"

#define OPERATOR_SEED    "SOAACAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIATA"
#define ACCOUNT_SEED     "SAAAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAUN5U"
#define SIGNING_SEED     "SAAAGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAZS54"
#define USER_SEED        "SUAAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIBH4FY"
#define OPERATOR_SIGNING "ODVEU3DD4KOFECV66VIHWEZOYX4ZKR3WV27L464SIIPOU2IUI3JCZAW4"
#define MACHINES_PUBLIC  "ACATS5YOVB6ROX2WUNKGNQ2MP3GMXDMKSG2O4N5CLX3A6W4PZGZZIL2R"
#define MACHINES_SIGNING "ADWUSKGGFDI4FRXK5EBTRECZSVQSSWJHHJOGH6JWG3AUMFFMQ435D6HD"
#define SYSTEM_PUBLIC    "ABXHUHG5FGYLPD6RHL2MKWMP572O6KUXCZXDZJXS4T57ZTMAKBN7DAQI"
#define VK_PUBLIC        "ACFIOX77D2ZYIUKXPLGVV7XEAVCWK2G5PSE6BEEGHICVPPD26SPRPZSE"
#define USER_PUBLIC      "UDFJHLAXAUMHA4OWPOB4P7YO72AQR2HMIUYFOXLXE2DZGM633K7HYREV"
#define USER2_PUBLIC     "UAJZR5RMNUNEK7CRXJVEWXZ5XUXWT7FJGILCDDOITF7EC26RPWJ4VH26"

/* The signing key's seed with its last character changed, and the account's in lower case. */
#define SIGNING_SEED_CRC   "SAAAGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAYDAMBQGAZS55"
#define ACCOUNT_SEED_LOWER "saaaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaqcaibaeaun5u"

#define BUCKET   "viamkey"
#define MACHINE  "6ba7b810-9dad-41d1-80b4-00c04fd430c8"
#define LOCATION "3d6f0a1e-5c2b-4e8a-9f7d-1b2c3d4e5f60"
#define ORG      "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
#define TOKEN    "0f8fad5b-d9cb-469f-a165-70867728950e"

/*
 * The seeds of 1, 2 and 3 as the operator's signing key, VK's key and
 * MACHINES' signing key: the file is the same whoever's keys they are.
 */
#define KEYS_TEXT OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED "\n"

#define LIMITS_ALL                                                                                 \
	"\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,\"wildcards\":true," \
	"\"conn\":-1,\"leaf\":-1"
#define GET "$JS.API.DIRECT.GET.KV_viamkey.$KV.viamkey"

#define OPERATOR_CLAIMS                                                                            \
	"{\"system_account\":\"" SYSTEM_PUBLIC "\",\"type\":\"operator\",\"version\":2}"
#define OPERATOR_SIGNING_CLAIMS                                                                    \
	"{\"signing_keys\":[\"" OPERATOR_SIGNING "\"],\"system_account\":\"" SYSTEM_PUBLIC         \
	"\",\"type\":\"operator\",\"version\":2}"
#define SYSTEM_CLAIMS "{\"limits\":{" LIMITS_ALL "},\"type\":\"account\",\"version\":2}"
#define VK_CLAIMS                                                                                  \
	"{\"limits\":{" LIMITS_ALL ",\"mem_storage\":-1,\"disk_storage\":-1,\"streams\":-1,"       \
	"\"consumer\":-1},\"exports\":[{\"name\":\"live\",\"subject\":\"vk.viamkey.>\",\"type\":"  \
	"\"stream\"},{\"name\":\"read\",\"subject\":\"" GET                                        \
	".>\",\"type\":\"service\"},{\"name\":"                                                    \
	"\"join\",\"subject\":\"vkjoin.viamkey\",\"type\":\"service\"},{\"name\":\"events\","      \
	"\"subject\":\"vkev.viamkey.*\",\"type\":\"service\"}],\"imports\":[{\"name\":"            \
	"\"acks\",\"subject\":\"vkack.viamkey.>\",\"account\":\"" MACHINES_PUBLIC                  \
	"\",\"type\":\"stream\"}],\"type\":\"account\",\"version\":2}"
#define MACHINES_HEAD                                                                              \
	"{\"limits\":{" LIMITS_ALL                                                                 \
	",\"mem_storage\":0,\"disk_storage\":0},\"signing_keys\":[\"" MACHINES_SIGNING             \
	"\"],\"exports\":[{\"name\":\"acks\",\"subject\":\"vkack.viamkey.>\","                     \
	"\"type\":\"stream\"}],\"imports\":[{\"name\":\"live\",\"subject\":\"vk.viamkey.>\","      \
	"\"account\":\"" VK_PUBLIC "\",\"type\":\"stream\"},{\"name\":\"read\",\"subject\":\"" GET \
	".>\",\"account\":\"" VK_PUBLIC "\",\"type\":\"service\"},{\"name\":\"join\",\"subject\":" \
	"\"vkjoin.viamkey\",\"account\":\"" VK_PUBLIC                                              \
	"\",\"type\":\"service\"},{\"name\":\"events\",\"subject\":\"vkev.viamkey.*\","            \
	"\"account\":\"" VK_PUBLIC "\",\"type\":\"service\"}],\"revocations\":{"
#define MACHINES_TAIL   "},\"type\":\"account\",\"version\":2}"
#define MACHINES_CLAIMS MACHINES_HEAD MACHINES_TAIL
#define MACHINES_REVOKED_CLAIMS                                                                    \
	MACHINES_HEAD "\"" USER_PUBLIC "\":1700000000,\"" USER2_PUBLIC "\":0" MACHINES_TAIL
#define USER_CLAIMS                                                                                \
	"{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,\"type\":\"user\","         \
	"\"version\":2}"
#define MACHINE_CLAIMS                                                                             \
	"{\"pub\":{\"allow\":[\"" GET ".m." MACHINE ".>\",\"" GET ".l." LOCATION ".>\",\"" GET     \
	".o." ORG ".>\",\"" GET ".hb\",\"" GET ".root.>\",\"vkack.viamkey." MACHINE                \
	"\",\"vkev.viamkey." MACHINE "\"]},"                                                       \
	"\"sub\":{\"allow\":[\"vk.viamkey.m." MACHINE ".>\",\"vk.viamkey.l." LOCATION ".>\","      \
	"\"vk.viamkey.o." ORG ".>\",\"vk.viamkey.hb\",\"_INBOX." MACHINE ".>\"]},\"subs\":-1,"     \
	"\"data\":-1,\"payload\":-1,\"issuer_account\":\"" MACHINES_PUBLIC "\",\"type\":\"user\"," \
	"\"version\":2}"
#define JOINER_CLAIMS                                                                              \
	"{\"pub\":{\"allow\":[\"vkjoin.viamkey\"]},\"sub\":{\"allow\":[\"_INBOX.join-" TOKEN       \
	".>\"]},\"subs\":-1,\"data\":-1,\"payload\":-1,\"issuer_account\":\"" MACHINES_PUBLIC      \
	"\",\"type\":\"user\",\"version\":2}"

/* Names that are not plain: each would end a string, add a subject or field, or widen one. */
static const char *const not_plain[] = {
    "",         "a b", "a\"b", "a\\b",     "a\nb", "a\tb",
    "*",        ">",   "a*",   "a>",       "a.*",  "a.>",
    "a,b",      "a/b", "a:b",  "\xc3\xa9", "\x7f", "a\"],\"pub\":{\"allow\":[\">",
    "a\\u0022", "x}",
};

/* Takes claims, failing the test unless they are NULL. */
static void
refused(char *claims, const char *what, const char *name)
{
	if (claims != NULL) {
		free(claims);
		fail_msg("%s took \"%s\"", what, name != NULL ? name : "(null)");
	}
}

/* Takes claims, failing the test unless they are exactly want. */
static void
claims_equal(char *claims, const char *want)
{
	assert_non_null(claims);
	assert_string_equal(claims, want);
	free(claims);
}

/* ---- the keys' file -------------------------------------------------------------- */

static void
fixed_keys(struct vk_bus_keys *k)
{
	for (int i = 0; i < VK_BUS_KEYS; i++)
		memset(k->seed[i], i + 1, sizeof k->seed[i]);
}

static void
test_keys_vectors(void **state)
{
	struct vk_bus_keys k, back;
	char text[VK_BUS_KEYS_TEXT_MAX];

	(void)state;
	fixed_keys(&k);
	assert_int_equal(vk_bus_keys_text(&k, text), 0);
	assert_string_equal(text, KEYS_TEXT);
	memset(&back, 0, sizeof back);
	assert_int_equal(vk_bus_keys_parse(KEYS_TEXT, strlen(KEYS_TEXT), &back), 0);
	assert_memory_equal(&back, &k, sizeof k);

	for (int round = 0; round < 100; round++) {
		randombytes_buf(&k, sizeof k);
		assert_int_equal(vk_bus_keys_text(&k, text), 0);
		assert_int_equal(strlen(text), VK_BUS_KEYS * (VK_NKEY_SEED_LEN + 1));
		assert_int_equal(vk_bus_keys_parse(text, strlen(text), &back), 0);
		assert_memory_equal(&back, &k, sizeof k);
	}
}

static void
test_keys_refused(void **state)
{
	static const char *const refused[] = {
	    "",
	    "\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED,
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED "\n\n",
	    "\n" OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED "\n",
	    OPERATOR_SEED "\r\n" ACCOUNT_SEED "\r\n" SIGNING_SEED "\r\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED " ",
	    OPERATOR_SEED " " ACCOUNT_SEED "\n" SIGNING_SEED "\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED "\n" SIGNING_SEED "\n",
	    /* the order, or a seed of another type */
	    ACCOUNT_SEED "\n" OPERATOR_SEED "\n" SIGNING_SEED "\n",
	    OPERATOR_SEED "\n" SIGNING_SEED "\n" OPERATOR_SEED "\n",
	    OPERATOR_SEED "\n" OPERATOR_SEED "\n" SIGNING_SEED "\n",
	    ACCOUNT_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED "\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n" USER_SEED "\n",
	    OPERATOR_SEED "\n" USER_SEED "\n" SIGNING_SEED "\n",
	    /* public keys, a changed character, lower case */
	    OPERATOR_SIGNING "\n" MACHINES_PUBLIC "\n" MACHINES_SIGNING "\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED "\n" SIGNING_SEED_CRC "\n",
	    OPERATOR_SEED "\n" ACCOUNT_SEED_LOWER "\n" SIGNING_SEED "\n",
	};
	static const char others[] = {' ', '\r', '\t', '\0', 'A'};
	struct vk_bus_keys k;
	char text[sizeof KEYS_TEXT];

	(void)state;
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (vk_bus_keys_parse(refused[i], strlen(refused[i]), &k) != -1)
			fail_msg("accepted \"%s\"", refused[i]);
	/* each newline replaced, and every length but the one */
	for (size_t i = 0; i < VK_BUS_KEYS; i++)
		for (size_t r = 0; r < sizeof others; r++) {
			memcpy(text, KEYS_TEXT, sizeof text);
			text[i * (VK_NKEY_SEED_LEN + 1) + VK_NKEY_SEED_LEN] = others[r];
			assert_int_equal(vk_bus_keys_parse(text, strlen(KEYS_TEXT), &k), -1);
		}
	for (size_t n = 0; n < strlen(KEYS_TEXT); n++)
		assert_int_equal(vk_bus_keys_parse(KEYS_TEXT, n, &k), -1);
	assert_int_equal(vk_bus_keys_parse(KEYS_TEXT "\0", sizeof KEYS_TEXT, &k), -1);
}

/* ---- the claims ------------------------------------------------------------------ */

static void
test_claims_vectors(void **state)
{
	static const struct vk_busid_revocation rev[] = {
	    {USER_PUBLIC, 1700000000},
	    {USER2_PUBLIC, 0},
	};

	(void)state;
	claims_equal(vk_busid_operator(NULL, SYSTEM_PUBLIC), OPERATOR_CLAIMS);
	claims_equal(vk_busid_operator(OPERATOR_SIGNING, SYSTEM_PUBLIC), OPERATOR_SIGNING_CLAIMS);
	claims_equal(vk_busid_system(), SYSTEM_CLAIMS);
	claims_equal(vk_busid_vk(BUCKET, MACHINES_PUBLIC), VK_CLAIMS);
	claims_equal(vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, NULL, 0),
	             MACHINES_CLAIMS);
	claims_equal(vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, rev, 2),
	             MACHINES_REVOKED_CLAIMS);
	claims_equal(vk_busid_user(), USER_CLAIMS);
	claims_equal(vk_busid_machine(BUCKET, MACHINE, LOCATION, ORG, MACHINES_PUBLIC),
	             MACHINE_CLAIMS);
	claims_equal(vk_busid_joiner(BUCKET, TOKEN, MACHINES_PUBLIC), JOINER_CLAIMS);
}

/* Every name of every builder: one that is not plain, or none, gives no claims. */
static void
test_claims_names(void **state)
{
	const char *bad;

	(void)state;
	for (size_t i = 0; i <= sizeof not_plain / sizeof not_plain[0]; i++) {
		bad = i < sizeof not_plain / sizeof not_plain[0] ? not_plain[i] : NULL;
		if (bad != NULL)
			refused(vk_busid_operator(bad, SYSTEM_PUBLIC), "operator signing_key", bad);
		refused(vk_busid_operator(NULL, bad), "operator system_account", bad);
		refused(vk_busid_operator(OPERATOR_SIGNING, bad), "operator system_account", bad);
		refused(vk_busid_vk(bad, MACHINES_PUBLIC), "vk bucket", bad);
		refused(vk_busid_vk(BUCKET, bad), "vk machines", bad);
		refused(vk_busid_machines(bad, VK_PUBLIC, MACHINES_SIGNING, NULL, 0),
		        "machines bucket", bad);
		refused(vk_busid_machines(BUCKET, bad, MACHINES_SIGNING, NULL, 0), "machines vk",
		        bad);
		refused(vk_busid_machines(BUCKET, VK_PUBLIC, bad, NULL, 0), "machines signing_key",
		        bad);
		refused(vk_busid_machine(bad, MACHINE, LOCATION, ORG, MACHINES_PUBLIC),
		        "machine bucket", bad);
		refused(vk_busid_machine(BUCKET, bad, LOCATION, ORG, MACHINES_PUBLIC),
		        "machine machine", bad);
		refused(vk_busid_machine(BUCKET, MACHINE, bad, ORG, MACHINES_PUBLIC),
		        "machine location", bad);
		refused(vk_busid_machine(BUCKET, MACHINE, LOCATION, bad, MACHINES_PUBLIC),
		        "machine org", bad);
		refused(vk_busid_machine(BUCKET, MACHINE, LOCATION, ORG, bad),
		        "machine machines_account", bad);
		refused(vk_busid_joiner(bad, TOKEN, MACHINES_PUBLIC), "joiner bucket", bad);
		refused(vk_busid_joiner(BUCKET, bad, MACHINES_PUBLIC), "joiner token", bad);
		refused(vk_busid_joiner(BUCKET, TOKEN, bad), "joiner machines_account", bad);
	}
}

static void
test_claims_revocations(void **state)
{
	struct vk_busid_revocation rev[] = {{USER_PUBLIC, 1}, {USER2_PUBLIC, 2}};
	char *user = malloc(66), *want, *claims;
	const size_t many = 1000;
	struct vk_busid_revocation *all;
	size_t len;

	(void)state;
	assert_non_null(user);
	/* a revoked user that is not plain, or a time before 0 */
	for (size_t i = 0; i <= sizeof not_plain / sizeof not_plain[0]; i++) {
		const char *bad = i < sizeof not_plain / sizeof not_plain[0] ? not_plain[i] : NULL;

		rev[1].user = bad;
		refused(vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, rev, 2),
		        "a revocation", bad);
	}
	rev[1].user = USER2_PUBLIC;
	rev[1].at = -1;
	refused(vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, rev, 2), "a time", "-1");
	rev[1].at = INT64_MIN;
	refused(vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, rev, 2), "a time",
	        "INT64_MIN");

	/* a user of 64 characters, not 65 */
	memset(user, 'U', 65);
	user[65] = '\0';
	rev[0].user = user;
	rev[0].at = 0;
	rev[1].at = 0;
	refused(vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, rev, 2), "a user", user);
	user[64] = '\0';
	claims = vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, rev, 1);
	assert_non_null(claims);
	assert_true(asprintf(&want, MACHINES_HEAD "\"%s\":0" MACHINES_TAIL, user) > 0);
	assert_string_equal(claims, want);
	free(claims);
	free(want);

	/* many of the longest: every one written, none cut */
	all = calloc(many, sizeof *all);
	want = malloc(sizeof MACHINES_CLAIMS + many * 96);
	assert_non_null(all);
	assert_non_null(want);
	len = (size_t)sprintf(want, "%s", MACHINES_HEAD);
	for (size_t i = 0; i < many; i++) {
		all[i].user = user;
		all[i].at = INT64_MAX;
		len += (size_t)sprintf(want + len, "%s\"%s\":%lld", i > 0 ? "," : "", user,
		                       (long long)INT64_MAX);
	}
	sprintf(want + len, "%s", MACHINES_TAIL);
	claims = vk_busid_machines(BUCKET, VK_PUBLIC, MACHINES_SIGNING, all, many);
	assert_non_null(claims);
	assert_string_equal(claims, want);
	free(claims);
	free(want);
	free(all);
	free(user);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keys_vectors),       cmocka_unit_test(test_keys_refused),
	    cmocka_unit_test(test_claims_vectors),     cmocka_unit_test(test_claims_names),
	    cmocka_unit_test(test_claims_revocations),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
