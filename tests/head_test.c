/*
 * head_test.c - scope heads and index pages (head.h, scope.h): their text
 * and digests against fixed vectors, the decoders' refusals, and heads
 * built from an authority's store compared with a replica's.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "head.h"
#include "record.h"
#include "scope.h"
#include "store.h"

#define ORG    "o.0d5c3b58-1f0e-4f6a-9b3d-6c2a4e8f1a20"
#define KEY_A1 "a1b2c3d4-0000-4000-8000-000000000001"
#define KEY_A2 "a9b2c3d4-0000-4000-8000-000000000002"
#define KEY_3  "3fb2c3d4-0000-4000-8000-000000000003"

/*
 * The vectors, computed apart from this code (Python's hashlib.blake2b with
 * digest_size=16, over the lines head.h describes).
 */
#define DIGEST_EMPTY  "cae66941d9efbd404e4d88758ea67670"
#define DIGEST_PAGE_3 "1bbbdddd13c68467654b24ab59a66c0d"
#define DIGEST_PAGE_A "bc62698d7303559b0a10e20d9b72103d"
#define DIGEST_HEAD   "38ac5e8f84e49693743abc3b821d66ad"
#define NONE          "[0,\"" DIGEST_EMPTY "\"]"
#define HEAD_TEXT                                                                                  \
	"{\"v\":2,\"type\":\"head\",\"scope\":\"" ORG "\",\"epoch\":2,\"rev\":9,"                  \
	"\"at\":1700000000,\"tree\":4,\"count\":3,\"digest\":\"" DIGEST_HEAD "\",\"pages\":[" NONE \
	"," NONE "," NONE ",[1,\"" DIGEST_PAGE_3 "\"]," NONE "," NONE "," NONE "," NONE "," NONE   \
	"," NONE ",[2,\"" DIGEST_PAGE_A "\"]," NONE "," NONE "," NONE "," NONE "," NONE "]}"

static const struct vk_page_key page_a[] = {{KEY_A1, 7, 0}, {KEY_A2, 9, 1}};

static void
hex(const unsigned char *bin, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", bin[i]);
}

/* The head of ORG with page a as above, page 3 holding KEY_3 at 5, and its tree at 4. */
static void
sample_head(struct vk_head *h)
{
	memset(h, 0, sizeof *h);
	snprintf(h->scope, sizeof h->scope, "%s", ORG);
	h->epoch = 2;
	h->rev = 9;
	h->at = FX_NOW;
	h->tree = 4;
	for (int p = 0; p < VK_HEAD_PAGES; p++)
		vk_page_digest(NULL, 0, h->pages[p].digest);
	vk_page_digest(page_a, 2, h->pages[10].digest);
	h->pages[10].count = 2;
	{
		const struct vk_page_key k3 = {KEY_3, 5, 0};

		vk_page_digest(&k3, 1, h->pages[3].digest);
		h->pages[3].count = 1;
	}
	vk_head_seal(h);
}

/* ---- fixed vectors --------------------------------------------------------------- */

static void
test_digest_vectors(void **state)
{
	unsigned char d[VK_DIGEST_BYTES];
	char text[2 * VK_DIGEST_BYTES + 1];
	struct vk_head h;

	(void)state;
	vk_page_digest(NULL, 0, d);
	hex(d, sizeof d, text);
	assert_string_equal(text, DIGEST_EMPTY);
	/* BLAKE2b-128 of "a1b2...0001 7 k\na9b2...0002 9 x\n" */
	vk_page_digest(page_a, 2, d);
	hex(d, sizeof d, text);
	assert_string_equal(text, DIGEST_PAGE_A);
	sample_head(&h);
	assert_int_equal(h.count, 3);
	hex(h.digest, sizeof h.digest, text);
	assert_string_equal(text, DIGEST_HEAD);
	assert_int_equal(vk_page_of(KEY_A1), 10);
	assert_int_equal(vk_page_of(KEY_3), 3);
	assert_int_equal(vk_page_of("A1B2C3D4-0000-4000-8000-000000000001"), -1);
	assert_int_equal(vk_page_of("not a key"), -1);
	assert_true(vk_scope_valid(ORG));
	assert_false(vk_scope_valid("x.0d5c3b58-1f0e-4f6a-9b3d-6c2a4e8f1a20"));
	assert_false(vk_scope_valid("o.0d5c3b58-1f0e-4f6a-9b3d-6c2a4e8f1a2"));
}

static void
test_head_text(void **state)
{
	struct vk_head h, back;
	char *text;

	(void)state;
	sample_head(&h);
	text = vk_head_encode(&h);
	assert_non_null(text);
	assert_string_equal(text, HEAD_TEXT);
	assert_int_equal(vk_head_decode(text, strlen(text), &back), 0);
	assert_memory_equal(&h, &back, sizeof h);
	free(text);
}

static void
test_page_text(void **state)
{
	struct vk_page_key *keys;
	char scope[VK_SCOPE_MAX], *text;
	int64_t rev;
	size_t n;
	int page;

	(void)state;
	text = vk_page_encode(ORG, 10, 9, page_a, 2);
	assert_non_null(text);
	assert_string_equal(text,
	                    "{\"v\":2,\"type\":\"page\",\"scope\":\"" ORG "\",\"page\":\"a\","
	                    "\"rev\":9,\"keys\":[[\"" KEY_A1 "\",7,0],[\"" KEY_A2 "\",9,1]]}");
	assert_int_equal(vk_page_decode(text, strlen(text), scope, &page, &rev, &keys, &n), 0);
	assert_string_equal(scope, ORG);
	assert_int_equal(page, 10);
	assert_int_equal(rev, 9);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(keys[i].id, page_a[i].id);
		assert_int_equal(keys[i].rev, page_a[i].rev);
		assert_int_equal(keys[i].tomb, page_a[i].tomb);
	}
	free(keys);
	free(text);
	/* an empty page */
	text = vk_page_encode(ORG, 0, 0, NULL, 0);
	assert_int_equal(vk_page_decode(text, strlen(text), scope, &page, &rev, &keys, &n), 0);
	assert_int_equal(n, 0);
	free(keys);
	free(text);
}

/* ---- refusals ------------------------------------------------------------------------ */

/* text with `from` (its first occurrence) replaced by `to`, malloc()ed. */
static char *
edit(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(text) - strlen(from) + strlen(to) + 1);
	assert_non_null(out);
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), to);
	strcat(out, at + strlen(from));
	return out;
}

static void
head_refused(const char *text, const char *from, const char *to)
{
	char *bad = edit(text, from, to);
	struct vk_head h;

	if (vk_head_decode(bad, strlen(bad), &h) == 0)
		fail_msg("accepted: %s", bad);
	free(bad);
}

static void
test_head_refusals(void **state)
{
	struct vk_head h;
	char *text;

	(void)state;
	sample_head(&h);
	text = vk_head_encode(&h);
	/* the exact text, and nothing else */
	head_refused(text, "{\"v\":2", "{ \"v\":2");
	head_refused(text, "{\"v\":2", "{\"v\":1");
	head_refused(text, "\"epoch\":2", "\"epoch\":02");
	head_refused(text, "\"epoch\":2", "\"epoch\":-2");
	head_refused(text, "\"tree\":4", "\"tree\":4.0");
	head_refused(text, "\"type\":\"head\"", "\"type\":\"page\"");
	head_refused(text, "\"scope\":\"o.", "\"scope\":\"x.");
	head_refused(text, "\"scope\":\"o.0d5c3b58", "\"scope\":\"o.0D5C3B58");
	head_refused(text, "]]}", "]] }");
	head_refused(text, "]]}", "]]},");
	head_refused(text, "\"rev\":9,\"at\"", "\"at\":9,\"rev\"");
	/* what it says of itself must add up */
	head_refused(text, "\"count\":3", "\"count\":4");
	head_refused(text, "[2,\"", "[3,\"");
	head_refused(text, "\"rev\":9", "\"rev\":3"); /* below its tree's */
	{
		char *p = strstr(text, "\"digest\":\"") + 10;
		char *bad = strdup(text);

		bad[p - text] = *p == '0' ? '1' : '0';
		assert_int_not_equal(vk_head_decode(bad, strlen(bad), &h), 0);
		free(bad);
	}
	/* cut anywhere */
	for (size_t n = 0; n < strlen(text); n++)
		assert_int_not_equal(vk_head_decode(text, n, &h), 0);
	free(text);
}

static void
page_refused(const char *text, const char *from, const char *to)
{
	char *bad = edit(text, from, to), scope[VK_SCOPE_MAX];
	struct vk_page_key *keys = NULL;
	int64_t rev;
	size_t n;
	int page;

	if (vk_page_decode(bad, strlen(bad), scope, &page, &rev, &keys, &n) == 0)
		fail_msg("accepted: %s", bad);
	assert_null(keys);
	free(bad);
}

static void
test_page_refusals(void **state)
{
	char *text = vk_page_encode(ORG, 10, 9, page_a, 2), scope[VK_SCOPE_MAX];
	struct vk_page_key *keys;
	int64_t rev;
	size_t n;
	int page;

	(void)state;
	page_refused(text, "\"page\":\"a\"", "\"page\":\"3\""); /* keys of another page */
	page_refused(text, "\"page\":\"a\"", "\"page\":\"A\""); /* not a page's name */
	page_refused(text, "\"page\":\"a\"", "\"page\":\"ab\"");
	page_refused(text, "\"rev\":9", "\"rev\":8");         /* a key newer than its page */
	page_refused(text, KEY_A2 "\",9,1", KEY_A1 "\",9,1"); /* the same key twice */
	page_refused(text, KEY_A1 "\",7,0",
	             "a9ffffff-0000-4000-8000-000000000001\",7,0"); /* order */
	page_refused(text, "\",7,0]", "\",7,2]");
	page_refused(text, "\",7,0]", "\",0,0]");
	page_refused(text, "]]}", "],]}");
	page_refused(text, "]]}", "]]} ");
	for (size_t i = 0; i < strlen(text); i++) {
		keys = NULL;
		assert_int_not_equal(vk_page_decode(text, i, scope, &page, &rev, &keys, &n), 0);
		assert_null(keys);
	}
	free(text);
}

/* ---- the store's side ------------------------------------------------------------- */

struct ht {
	struct fx_store *fx; /* the authority */
	char *replica_path;
	sqlite3 *replica;
	unsigned char *sk;
	char scope[VK_SCOPE_MAX];
};

static int
setup(void **state)
{
	struct ht *ht = calloc(1, sizeof *ht);
	char err[VK_ERRLEN];
	void *fx;

	assert_non_null(ht);
	fx_init();
	fx_store_setup(&fx);
	ht->fx = fx;
	ht->replica_path = fx_join(ht->fx->dir, "replica.db");
	if (vk_store_open(ht->replica_path, VK_OPEN_INIT, 1000, &ht->replica, err) != VK_OK)
		fail_msg("%s", err);
	ht->sk = sodium_malloc(VK_SIGNING_KEY_BYTES);
	assert_non_null(ht->sk);
	{
		unsigned char pk[VK_PUBLIC_KEY_BYTES];

		crypto_sign_keypair(pk, ht->sk);
	}
	snprintf(ht->scope, sizeof ht->scope, "o.%s", ht->fx->org);
	*state = ht;
	return 0;
}

static int
teardown(void **state)
{
	struct ht *ht = *state;
	void *fx = ht->fx;

	sqlite3_close(ht->replica);
	free(ht->replica_path);
	sodium_free(ht->sk);
	fx_store_teardown(&fx);
	free(ht);
	return 0;
}

/* The authority published entry at rev (tomb: a tombstone): sync_published and sync_dirty. */
static void
published(struct ht *ht, const char *kind, const char *id, const char *entry, int64_t rev, int tomb)
{
	struct vk_publication pub = {0};
	char(*entries)[VK_ENTRY_MAX] = calloc(1, sizeof *entries);
	char err[VK_ERRLEN];

	assert_non_null(entries);
	snprintf(pub.kind, sizeof pub.kind, "%s", kind);
	snprintf(pub.id, sizeof pub.id, "%s", id);
	snprintf(entries[0], VK_ENTRY_MAX, "%s", entry);
	pub.rev = rev;
	if (tomb) {
		pub.gone = entries;
		pub.ngone = 1;
	} else {
		pub.entries = entries;
		pub.nentries = 1;
	}
	if (vk_store_begin(ht->fx->db, err) != VK_OK ||
	    vk_record_published(ht->fx->db, &pub, err) != VK_OK ||
	    vk_store_commit(ht->fx->db, err) != VK_OK)
		fail_msg("%s", err);
	free(entries);
}

/* The replica saw entry at rev. */
static void
seen(struct ht *ht, const char *entry, int64_t rev, int tomb)
{
	char sql[256];

	snprintf(sql, sizeof sql,
	         "INSERT INTO sync_entries (entry, rev, tomb) VALUES ('%s', %lld, %d)"
	         " ON CONFLICT (entry) DO UPDATE SET rev = excluded.rev, tomb = excluded.tomb",
	         entry, (long long)rev, tomb);
	fx_sql(ht->replica, sql);
}

/* Builds the heads due, checks the one of ht->scope, marks them published. */
static void
build(struct ht *ht, struct vk_head *h, int *pages_built)
{
	struct vk_head_pub *pubs;
	char err[VK_ERRLEN];
	size_t n;
	int found = 0;

	if (vk_heads_build(ht->fx->db, ht->sk, 0, FX_NOW, 100, &pubs, &n, err) != VK_OK)
		fail_msg("%s", err);
	for (size_t i = 0; i < n; i++) {
		const char *json;
		size_t len;
		unsigned char pk[VK_PUBLIC_KEY_BYTES];

		if (strcmp(pubs[i].scope, ht->scope) != 0)
			continue;
		found = 1;
		crypto_sign_ed25519_sk_to_pk(pk, ht->sk);
		assert_int_equal(
		    vk_record_verify(pk, pubs[i].value, strlen(pubs[i].value), &json, &len, err),
		    VK_OK);
		assert_int_equal(vk_head_decode(json, len, h), 0);
		*pages_built = 0;
		for (int p = 0; p < VK_HEAD_PAGES; p++)
			*pages_built += pubs[i].pages[p] != NULL;
	}
	assert_true(found);
	if (vk_store_begin(ht->fx->db, err) != VK_OK ||
	    vk_heads_published(ht->fx->db, pubs, n, err) != VK_OK ||
	    vk_store_commit(ht->fx->db, err) != VK_OK)
		fail_msg("%s", err);
	vk_heads_free(pubs, n);
	assert_int_equal(fx_count(ht->fx->db, "SELECT count(*) FROM sync_dirty", NULL), 0);
}

static void
test_built_head_matches_replica(void **state)
{
	struct ht *ht = *state;
	char e1[VK_ENTRY_MAX], e2[VK_ENTRY_MAX], e3[VK_ENTRY_MAX], t[VK_ENTRY_MAX], err[VK_ERRLEN];
	struct vk_head h;
	unsigned pages;
	int tree, built;

	snprintf(e1, sizeof e1, "%s.k.%s", ht->scope, KEY_A1);
	snprintf(e2, sizeof e2, "%s.k.%s", ht->scope, KEY_A2);
	snprintf(e3, sizeof e3, "%s.k.%s", ht->scope, KEY_3);
	snprintf(t, sizeof t, "%s.t", ht->scope);
	published(ht, "organization", ht->fx->org, t, 4, 0);
	published(ht, "key", KEY_A1, e1, 7, 0);
	published(ht, "key", KEY_A2, e2, 9, 1);
	published(ht, "key", KEY_3, e3, 5, 0);
	build(ht, &h, &built);
	assert_int_equal(built, 2); /* pages 3 and a */
	assert_int_equal(h.rev, 9);
	assert_int_equal(h.tree, 4);
	assert_int_equal(h.count, 3);

	/* a replica that saw nothing differs in those pages and the tree */
	assert_int_equal(vk_scope_compare(ht->replica, &h, &pages, &tree, err), VK_OK);
	assert_int_equal(pages, (1u << 3) | (1u << 10));
	assert_true(tree);
	/* one that saw the same matches */
	seen(ht, t, 4, 0);
	seen(ht, e1, 7, 0);
	seen(ht, e2, 9, 1);
	seen(ht, e3, 5, 0);
	assert_int_equal(vk_scope_compare(ht->replica, &h, &pages, &tree, err), VK_OK);
	assert_int_equal(pages, 0);
	assert_false(tree);

	/* one key changes: only its page is built again, and only it differs */
	published(ht, "key", KEY_3, e3, 12, 0);
	build(ht, &h, &built);
	assert_int_equal(built, 1);
	assert_int_equal(h.rev, 12);
	assert_int_equal(vk_scope_compare(ht->replica, &h, &pages, &tree, err), VK_OK);
	assert_int_equal(pages, 1u << 3);
	assert_false(tree);
	{
		const struct vk_page_key page3[] = {{KEY_3, 12, 0}};
		size_t *want, nwant;

		assert_int_equal(
		    vk_scope_behind(ht->replica, ht->scope, page3, 1, &want, &nwant, err), VK_OK);
		assert_int_equal(nwant, 1);
		assert_int_equal(want[0], 0);
		free(want);
		seen(ht, e3, 12, 0);
		assert_int_equal(
		    vk_scope_behind(ht->replica, ht->scope, page3, 1, &want, &nwant, err), VK_OK);
		assert_int_equal(nwant, 0);
		free(want);
	}
	assert_int_equal(vk_scope_compare(ht->replica, &h, &pages, &tree, err), VK_OK);
	assert_int_equal(pages, 0);
	/* an entry the head does not list counts too */
	seen(ht, "o.00000000-0000-4000-8000-000000000000.k.ffffffff-0000-4000-8000-000000000000", 1,
	     0); /* another scope's: not this one's business */
	assert_int_equal(vk_scope_compare(ht->replica, &h, &pages, &tree, err), VK_OK);
	assert_int_equal(pages, 0);
	{
		char extra[VK_ENTRY_MAX];

		snprintf(extra, sizeof extra, "%s.k.ffffffff-0000-4000-8000-000000000000",
		         ht->scope);
		seen(ht, extra, 1, 0);
		assert_int_equal(vk_scope_compare(ht->replica, &h, &pages, &tree, err), VK_OK);
		assert_int_equal(pages, 1u << 15);
	}
}

static void
test_older_head_not_kept(void **state)
{
	struct ht *ht = *state;
	struct vk_head h, held;
	char err[VK_ERRLEN], *text;
	int kept;

	sample_head(&h);
	text = vk_head_encode(&h);
	assert_int_equal(vk_scope_held(ht->replica, ORG, &held, err), VK_ERR_NOTFOUND);
	assert_int_equal(vk_scope_hold(ht->replica, &h, text, &kept, err), VK_OK);
	assert_true(kept);
	free(text);
	/* a lower revision of the same epoch, and a lower epoch, are not kept */
	h.rev = 8;
	vk_head_seal(&h);
	text = vk_head_encode(&h);
	assert_int_equal(vk_scope_hold(ht->replica, &h, text, &kept, err), VK_OK);
	assert_false(kept);
	free(text);
	h.rev = 100;
	h.epoch = 1;
	text = vk_head_encode(&h);
	assert_int_equal(vk_scope_hold(ht->replica, &h, text, &kept, err), VK_OK);
	assert_false(kept);
	free(text);
	assert_int_equal(vk_scope_held(ht->replica, ORG, &held, err), VK_OK);
	assert_int_equal(held.rev, 9);
	assert_int_equal(held.epoch, 2);
	/* a higher epoch is, whatever its revision */
	h.rev = 5;
	h.tree = 4;
	h.epoch = 3;
	text = vk_head_encode(&h);
	assert_int_equal(vk_scope_hold(ht->replica, &h, text, &kept, err), VK_OK);
	assert_true(kept);
	free(text);
	assert_int_equal(vk_scope_held(ht->replica, ORG, &held, err), VK_OK);
	assert_int_equal(held.epoch, 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_digest_vectors),
	    cmocka_unit_test(test_head_text),
	    cmocka_unit_test(test_page_text),
	    cmocka_unit_test(test_head_refusals),
	    cmocka_unit_test(test_page_refusals),
	    cmocka_unit_test_setup_teardown(test_built_head_matches_replica, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_older_head_not_kept, setup, teardown),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
