/*
 * record_test.c - the fleet's signed records (record.h) without a bus:
 * built and signed from an authority's store (the fixture's), verified, and
 * applied to a second store that plays machine m1a's replica.
 *
 * The "bus" here is a function that hands each entry of a publication to
 * the replica when the entry is in m1a's scopes (m.<m1a>, l.<loc1>,
 * o.<org>), as its subscriptions would, and records the publication in the
 * authority's sync_published as viamkey-syncd does once the bus took it.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "fleet.h"
#include "record.h"
#include "store.h"
#include "token.h"

struct rt {
	struct fx_store *fx; /* the authority */
	char *replica_path;
	sqlite3 *replica; /* m1a's */
	struct vk_replica *rep;
	unsigned char *sk, *sk_other;
	unsigned char pk[VK_PUBLIC_KEY_BYTES], pk_other[VK_PUBLIC_KEY_BYTES];
	int64_t rev;
};

static int
setup(void **state)
{
	struct rt *rt = calloc(1, sizeof *rt);
	char err[VK_ERRLEN];
	void *fx;

	assert_non_null(rt);
	fx_init();
	fx_store_setup(&fx);
	rt->fx = fx;
	rt->replica_path = fx_join(rt->fx->dir, "replica.db");
	if (vk_store_open(rt->replica_path, VK_OPEN_INIT, 1000, &rt->replica, err) != VK_OK ||
	    vk_replica_open(rt->replica, rt->fx->m1a, &rt->rep, err) != VK_OK)
		fail_msg("%s", err);
	fx_sql(rt->replica, "INSERT INTO meta (name, value) VALUES ('fleet_role', 'replica')");
	rt->sk = sodium_malloc(VK_SIGNING_KEY_BYTES);
	rt->sk_other = sodium_malloc(VK_SIGNING_KEY_BYTES);
	assert_non_null(rt->sk);
	assert_non_null(rt->sk_other);
	crypto_sign_keypair(rt->pk, rt->sk);
	crypto_sign_keypair(rt->pk_other, rt->sk_other);
	*state = rt;
	return 0;
}

static int
teardown(void **state)
{
	struct rt *rt = *state;
	void *fx = rt->fx;

	vk_replica_close(rt->rep);
	sqlite3_close(rt->replica);
	free(rt->replica_path);
	sodium_free(rt->sk);
	sodium_free(rt->sk_other);
	fx_store_teardown(&fx);
	free(rt);
	return 0;
}

/* Whether entry is in m1a's scopes. */
static int
in_scope(struct rt *rt, const char *entry)
{
	char scope[VK_ENTRY_MAX];
	const char *const ids[] = {rt->fx->m1a, rt->fx->loc1, rt->fx->org};
	const char prefixes[] = {'m', 'l', 'o'};

	for (int i = 0; i < 3; i++) {
		snprintf(scope, sizeof scope, "%c.%s.", prefixes[i], ids[i]);
		if (strncmp(entry, scope, strlen(scope)) == 0)
			return 1;
	}
	return 0;
}

/*
 * Verifies value, the value of `entry`, with the authority's public key and
 * applies it to the replica at `now`, refusing revisions below floor.
 */
static vk_rc
deliver_full(struct rt *rt, const char *entry, int64_t floor, const char *value, int64_t now,
             struct vk_apply_result *res)
{
	char err[VK_ERRLEN];
	const char *json;
	size_t len;
	vk_rc rc;

	if ((rc = vk_record_verify(rt->pk, value, strlen(value), &json, &len, err)) != VK_OK)
		return rc;
	if (vk_store_begin(rt->replica, err) != VK_OK)
		fail_msg("%s", err);
	rc = vk_replica_apply(rt->rep, entry, floor, json, len, now, res, err);
	if (rc == VK_OK) {
		if (vk_store_commit(rt->replica, err) != VK_OK)
			fail_msg("%s", err);
	} else {
		vk_store_rollback(rt->replica);
	}
	return rc;
}

/* The first of n entries that is in m1a's scopes. */
static const char *
first_in_scope(struct rt *rt, char (*entries)[VK_ENTRY_MAX], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (in_scope(rt, entries[i]))
			return entries[i];
	fail_msg("no entry in m1a's scopes");
	return NULL;
}

/* pub's record (tomb: its tombstone) at its first entry in m1a's scopes, at `now`. */
static vk_rc
deliver_at(struct rt *rt, const struct vk_publication *pub, int tomb, int64_t now,
           struct vk_apply_result *res)
{
	return deliver_full(rt,
	                    tomb ? first_in_scope(rt, pub->gone, pub->ngone)
	                         : first_in_scope(rt, pub->entries, pub->nentries),
	                    0, tomb ? pub->tombstone : pub->value, now, res);
}

static enum vk_applied
deliver(struct rt *rt, const struct vk_publication *pub, int tomb)
{
	struct vk_apply_result res;
	vk_rc rc = deliver_at(rt, pub, tomb, FX_NOW, &res);

	if (rc != VK_OK)
		fail_msg("a record the authority signed was refused (%d)", rc);
	return res.what;
}

/* A heartbeat, under its entry. */
static vk_rc
deliver_hb(struct rt *rt, const char *value, int64_t now, struct vk_apply_result *res)
{
	return deliver_full(rt, "hb", 0, value, now, res);
}

/* Builds the publication of (kind, id) at the next revision, signed with sk. */
static void
build(struct rt *rt, const unsigned char *sk, const char *kind, const char *id,
      struct vk_publication *pub)
{
	char err[VK_ERRLEN];

	if (vk_record_build(rt->fx->db, sk, 0, kind, id, ++rt->rev, FX_NOW, pub, err) != VK_OK)
		fail_msg("%s", err);
}

/* The bus took pub: recorded in the authority's sync_published. */
static void
published(struct rt *rt, const struct vk_publication *pub)
{
	char err[VK_ERRLEN];

	if (vk_store_begin(rt->fx->db, err) != VK_OK ||
	    vk_record_published(rt->fx->db, pub, err) != VK_OK ||
	    vk_store_commit(rt->fx->db, err) != VK_OK)
		fail_msg("%s", err);
}

/* Publishes (kind, id): every entry in m1a's scopes reaches the replica, records first. */
static void
publish(struct rt *rt, const char *kind, const char *id)
{
	struct vk_publication pub;

	build(rt, rt->sk, kind, id, &pub);
	struct vk_apply_result res;

	for (size_t i = 0; i < pub.nentries; i++)
		if (in_scope(rt, pub.entries[i]) &&
		    deliver_full(rt, pub.entries[i], 0, pub.value, FX_NOW, &res) != VK_OK)
			fail_msg("a record the authority signed was refused");
	for (size_t i = 0; i < pub.ngone; i++)
		if (in_scope(rt, pub.gone[i]) &&
		    deliver_full(rt, pub.gone[i], 0, pub.tombstone, FX_NOW, &res) != VK_OK)
			fail_msg("a tombstone the authority signed was refused");
	published(rt, &pub);
	vk_publication_free(&pub);
}

/* m1a's tree: its organization, location and machine records. */
static void
publish_tree(struct rt *rt)
{
	publish(rt, "organization", rt->fx->org);
	publish(rt, "location", rt->fx->loc1);
	publish(rt, "machine", rt->fx->m1a);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT count(*) FROM machines WHERE id = ?1", rt->fx->m1a), 1);
}

static int64_t
held(struct rt *rt, const char *key_id)
{
	return fx_count(rt->replica, "SELECT count(*) FROM keys WHERE id = ?1", key_id);
}

/* What a record could change in the replica, as text (malloc()ed). */
static char *
dump(sqlite3 *db)
{
	sqlite3_stmt *st;
	size_t cap = 1 << 16, len = 0;
	char *out = calloc(1, cap);

	assert_non_null(out);
	assert_int_equal(
	    sqlite3_prepare_v2(
	        db,
	        "SELECT 'k' || id || name || disabled || protected || break_glass ||"
	        " coalesce(expires_at, '-') FROM keys"
	        " UNION ALL SELECT 'g' || key_id || role || resource_type || resource_id FROM "
	        "grants"
	        " UNION ALL SELECT 'u' || key_id || user FROM key_users"
	        " UNION ALL SELECT 's' || key_id || hex(verifier) || coalesce(expires_at, '-')"
	        " FROM secrets"
	        " UNION ALL SELECT 't' || id || name FROM organizations"
	        " UNION ALL SELECT 't' || id || name || org_id FROM locations"
	        " UNION ALL SELECT 't' || id || name || location_id FROM machines"
	        " UNION ALL SELECT 'h' || kind || id || rev || full FROM sync_held"
	        " UNION ALL SELECT 'm' || name || value FROM meta ORDER BY 1",
	        -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *row = (const char *)sqlite3_column_text(st, 0);
		size_t n = strlen(row);

		assert_true(len + n + 2 < cap);
		memcpy(out + len, row, n);
		len += n;
		out[len++] = '\n';
	}
	sqlite3_finalize(st);
	return out;
}

/* A key on the authority with one grant, published to the replica. */
static void
key_published(struct rt *rt, const char *type, const char *resource, struct fx_key *k)
{
	fx_key(rt->fx, VK_ROLE_OWNER, type, resource, k);
	publish(rt, "key", k->id);
}

/* ---- signatures ---------------------------------------------------------------- */

static void
test_other_key_refused(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct vk_apply_result res;
	struct fx_key k;
	char *before;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	before = dump(rt->replica);
	build(rt, rt->sk_other, "key", k.id, &pub);
	assert_int_equal(deliver_at(rt, &pub, 0, FX_NOW, &res), VK_ERR_USAGE);
	assert_int_equal(held(rt, k.id), 0);
	{
		char *after = dump(rt->replica);

		assert_string_equal(before, after);
		free(after);
	}
	/* the same record signed by the authority is applied: the refusal was the key's */
	vk_publication_free(&pub);
	build(rt, rt->sk, "key", k.id, &pub);
	assert_int_equal(deliver(rt, &pub, 0), VK_APPLIED);
	assert_int_equal(held(rt, k.id), 1);
	vk_publication_free(&pub);
	free(before);
}

static void
test_tampered_refused(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct vk_apply_result res;
	struct fx_key k;
	char *p;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	fx_sql1(rt->fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &pub);
	/* one JSON byte: the key enabled */
	p = strstr(pub.value, "\"disabled\":1");
	assert_non_null(p);
	p[strlen("\"disabled\":")] = '0';
	assert_int_equal(deliver_at(rt, &pub, 0, FX_NOW, &res), VK_ERR_USAGE);
	p[strlen("\"disabled\":")] = '1';
	/* one byte of the signature */
	pub.value[10] = pub.value[10] == 'A' ? 'B' : 'A';
	assert_int_equal(deliver_at(rt, &pub, 0, FX_NOW, &res), VK_ERR_USAGE);
	/* the signature moved to other JSON, and a value cut short */
	pub.value[10] = pub.value[10] == 'A' ? 'B' : 'A';
	pub.value[strlen(pub.value) - 1] = '\0';
	assert_int_equal(deliver_at(rt, &pub, 0, FX_NOW, &res), VK_ERR_USAGE);
	assert_int_equal(deliver_full(rt, pub.entries[0], 0, "vk1.", FX_NOW, &res), VK_ERR_USAGE);
	assert_int_equal(held(rt, k.id), 0);
	vk_publication_free(&pub);
}

/* ---- revisions ------------------------------------------------------------------- */

static void
test_older_revision_ignored(void **state)
{
	struct rt *rt = *state;
	struct vk_publication old, now;
	struct fx_key k;
	char *before, *after;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	build(rt, rt->sk, "key", k.id, &old);
	assert_int_equal(deliver(rt, &old, 0), VK_APPLIED);
	published(rt, &old);
	fx_sql1(rt->fx->db, "UPDATE keys SET disabled = 1 WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &now);
	assert_int_equal(deliver(rt, &now, 0), VK_APPLIED);
	assert_int_equal(fx_count(rt->replica, "SELECT disabled FROM keys WHERE id = ?1", k.id), 1);

	before = dump(rt->replica);
	assert_int_equal(deliver(rt, &old, 0), VK_APPLIED_OLD); /* a replay of the older record */
	assert_int_equal(deliver(rt, &now, 0), VK_APPLIED_OLD); /* the same revision again */
	after = dump(rt->replica);
	assert_string_equal(before, after);
	assert_int_equal(fx_count(rt->replica, "SELECT disabled FROM keys WHERE id = ?1", k.id), 1);
	free(before);
	free(after);
	vk_publication_free(&old);
	vk_publication_free(&now);
}

static void
test_replayed_record_after_tombstone(void **state)
{
	struct rt *rt = *state;
	struct vk_publication old;
	struct fx_key k;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	build(rt, rt->sk, "key", k.id, &old);
	assert_int_equal(deliver(rt, &old, 0), VK_APPLIED);
	published(rt, &old);
	fx_sql1(rt->fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	publish(rt, "key", k.id);
	assert_int_equal(held(rt, k.id), 0);
	/* the deleted key's older full record, replayed: it stays deleted */
	assert_int_equal(deliver(rt, &old, 0), VK_APPLIED_OLD);
	assert_int_equal(held(rt, k.id), 0);
	vk_publication_free(&old);
}

/* ---- tombstones -------------------------------------------------------------------- */

static void
test_tombstone_removes_key(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct fx_key k;

	publish_tree(rt);
	key_published(rt, "location", rt->fx->loc1, &k);
	assert_int_equal(held(rt, k.id), 1);
	fx_sql1(rt->fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &pub);
	assert_null(pub.value); /* gone: no record, a tombstone where it was */
	assert_int_equal(pub.nentries, 0);
	assert_int_equal(pub.ngone, 1);
	assert_non_null(strstr(pub.tombstone, "\"tombstone\":true"));
	assert_non_null(strstr(pub.tombstone, "\"scopes\":[]"));
	assert_int_equal(deliver(rt, &pub, 1), VK_APPLIED);
	assert_int_equal(held(rt, k.id), 0);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT count(*) FROM grants WHERE key_id = ?1", k.id), 0);
	vk_publication_free(&pub);
}

/*
 * A key sent live while the bucket refused it (its publication never
 * confirmed), then deleted: the delete still puts a tombstone where it was
 * sent, because it was recorded as being sent first.
 */
static void
test_tombstone_after_unconfirmed(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub, del;
	char err[VK_ERRLEN];
	struct fx_key k;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "location", rt->fx->loc1, &k);
	build(rt, rt->sk, "key", k.id, &pub);
	/* without the record of the send, the delete would know of no entry */
	assert_int_equal(sqlite3_exec(rt->fx->db, "SAVEPOINT unsent", NULL, NULL, NULL), SQLITE_OK);
	fx_sql1(rt->fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &del);
	assert_int_equal(del.ngone, 0);
	vk_publication_free(&del);
	assert_int_equal(
	    sqlite3_exec(rt->fx->db, "ROLLBACK TO unsent; RELEASE unsent", NULL, NULL, NULL),
	    SQLITE_OK);

	assert_int_equal(vk_store_begin(rt->fx->db, err), VK_OK);
	assert_int_equal(vk_record_sending(rt->fx->db, &pub, err), VK_OK);
	assert_int_equal(vk_store_commit(rt->fx->db, err), VK_OK);
	assert_int_equal(deliver(rt, &pub, 0), VK_APPLIED); /* live: the machine holds it */
	assert_int_equal(held(rt, k.id), 1);
	fx_sql1(rt->fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &del);
	assert_int_equal(del.ngone, 1);
	assert_string_equal(del.gone[0], pub.entries[0]);
	assert_int_equal(deliver(rt, &del, 1), VK_APPLIED);
	assert_int_equal(held(rt, k.id), 0);
	vk_publication_free(&pub);
	vk_publication_free(&del);
}

static void
test_tombstone_keeps_covered_key(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct fx_key k;
	char scopes[VK_ENTRY_MAX + 32];

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	fx_grant(rt->fx, k.id, VK_ROLE_VIEWER, "machine", rt->fx->m1a);
	publish(rt, "key", k.id);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT count(*) FROM grants WHERE key_id = ?1", k.id), 2);

	/* one change: the organization grant removed and the key renamed */
	fx_sql1(rt->fx->db,
	        "DELETE FROM grants WHERE key_id = ?1 AND resource_type = 'organization'", k.id);
	fx_sql1(rt->fx->db, "UPDATE keys SET name = 'renamed' WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &pub);
	assert_int_equal(pub.nentries, 1);
	assert_int_equal(pub.ngone, 1);
	snprintf(scopes, sizeof scopes, "\"scopes\":[\"m.%s\"]", rt->fx->m1a);
	assert_non_null(strstr(pub.tombstone, scopes));

	/* the tombstone first: the key stays (m.<m1a> is left), without the organization grant */
	assert_int_equal(deliver(rt, &pub, 1), VK_APPLIED);
	assert_int_equal(held(rt, k.id), 1);
	assert_int_equal(fx_count(rt->replica,
	                          "SELECT count(*) FROM grants WHERE key_id = ?1"
	                          " AND resource_type = 'organization'",
	                          k.id),
	                 0);
	assert_int_equal(fx_count(rt->replica,
	                          "SELECT count(*) FROM grants WHERE key_id = ?1"
	                          " AND resource_type = 'machine'",
	                          k.id),
	                 1);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT name = 'test key' FROM keys WHERE id = ?1", k.id), 1);
	/* then the full record of the same revision completes it */
	assert_int_equal(deliver(rt, &pub, 0), VK_APPLIED);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT name = 'renamed' FROM keys WHERE id = ?1", k.id), 1);
	assert_int_equal(fx_count(rt->replica, "SELECT full FROM sync_held WHERE id = ?1", k.id),
	                 1);
	/* and neither applies twice, nor does the tombstone after the full record */
	assert_int_equal(deliver(rt, &pub, 0), VK_APPLIED_OLD);
	assert_int_equal(deliver(rt, &pub, 1), VK_APPLIED_OLD);
	assert_int_equal(held(rt, k.id), 1);
	vk_publication_free(&pub);
}

static void
test_grants_stop_covering(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct fx_key k, k2;

	publish_tree(rt);
	/* by a tombstone: the grant moved from the organization to loc2, m1a is not in it */
	key_published(rt, "organization", rt->fx->org, &k);
	fx_grant(rt->fx, k.id, VK_ROLE_OWNER, "location", rt->fx->loc2);
	fx_sql1(rt->fx->db,
	        "DELETE FROM grants WHERE key_id = ?1 AND resource_type = 'organization'", k.id);
	publish(rt, "key", k.id); /* only the tombstone under o.<org> is in m1a's scopes */
	assert_int_equal(held(rt, k.id), 0);

	/*
	 * by its own record: a key none of whose grants cover m1a any more is
	 * filed under m.<m1b> only, and its record copied under the entry
	 * it left (l.<loc1>) is not what that entry holds: dropped
	 */
	key_published(rt, "location", rt->fx->loc1, &k2);
	fx_grant(rt->fx, k2.id, VK_ROLE_OWNER, "machine", rt->fx->m1b);
	fx_sql1(rt->fx->db, "DELETE FROM grants WHERE key_id = ?1 AND resource_type = 'location'",
	        k2.id);
	build(rt, rt->sk, "key", k2.id, &pub);
	{
		struct vk_apply_result res;
		char entry[VK_ENTRY_MAX];

		snprintf(entry, sizeof entry, "l.%s.k.%s", rt->fx->loc1, k2.id);
		assert_int_equal(deliver_full(rt, entry, 0, pub.value, FX_NOW, &res), VK_OK);
		assert_int_equal(res.what, VK_APPLIED_MISFILED);
		assert_int_equal(held(rt, k2.id), 1);               /* the copy changed nothing */
		assert_int_equal(deliver(rt, &pub, 1), VK_APPLIED); /* its tombstone there does */
		assert_int_equal(held(rt, k2.id), 0);
	}
	vk_publication_free(&pub);
}

/* The entries of a record that are not what they hold, or not this machine's, change nothing. */
static void
test_misfiled_dropped(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub, tree;
	struct vk_apply_result res;
	char entry[VK_ENTRY_MAX], *before, *after;
	struct fx_key lk, ok;

	/* m1a has not received its own record: it knows only its machine scope */
	fx_key(rt->fx, VK_ROLE_OWNER, "location", rt->fx->loc1, &lk);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &ok);
	build(rt, rt->sk, "key", lk.id, &pub);
	before = dump(rt->replica);
	/* the location key's record copied under m1a's own entry of it */
	snprintf(entry, sizeof entry, "m.%s.k.%s", rt->fx->m1a, lk.id);
	assert_int_equal(deliver_full(rt, entry, 0, pub.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_MISFILED);
	/* under another key's entry of a scope m1a knows */
	snprintf(entry, sizeof entry, "m.%s.k.%s", rt->fx->m1a, ok.id);
	assert_int_equal(deliver_full(rt, entry, 0, pub.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_MISFILED);
	/* under its real entry, in a scope m1a does not know yet */
	snprintf(entry, sizeof entry, "l.%s.k.%s", rt->fx->loc1, lk.id);
	assert_int_equal(deliver_full(rt, entry, 0, pub.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_MISFILED);
	/* a tree record under another scope's entry, and a heartbeat's entry */
	build(rt, rt->sk, "location", rt->fx->loc2, &tree);
	snprintf(entry, sizeof entry, "m.%s.t", rt->fx->m1a);
	assert_int_equal(deliver_full(rt, entry, 0, tree.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_MISFILED);
	assert_int_equal(deliver_full(rt, "hb", 0, tree.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_MISFILED);
	after = dump(rt->replica);
	assert_string_equal(before, after); /* nothing held, not even a revision */
	assert_int_equal(fx_count(rt->replica, "SELECT count(*) FROM sync_entries", NULL), 0);

	/* once m1a knows its location, the genuine record of that revision is applied */
	publish_tree(rt);
	snprintf(entry, sizeof entry, "l.%s.k.%s", rt->fx->loc1, lk.id);
	assert_int_equal(deliver_full(rt, entry, 0, pub.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED);
	assert_int_equal(held(rt, lk.id), 1);
	free(before);
	free(after);
	vk_publication_free(&pub);
	vk_publication_free(&tree);
}

/* Each entry's newest revision is kept; a value older than its page lists it is refused. */
static void
test_entries_and_floor(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub, older;
	struct vk_apply_result res;
	char entry[VK_ENTRY_MAX], *before, *after;
	struct fx_key k;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	build(rt, rt->sk, "key", k.id, &older);
	published(rt, &older);
	fx_sql1(rt->fx->db, "DELETE FROM keys WHERE id = ?1", k.id);
	build(rt, rt->sk, "key", k.id, &pub);
	snprintf(entry, sizeof entry, "o.%s.k.%s", rt->fx->org, k.id);
	/* a new machine told by the page that the entry is at the tombstone's revision */
	before = dump(rt->replica);
	assert_int_equal(deliver_full(rt, entry, pub.rev, older.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_STALE);
	after = dump(rt->replica);
	assert_string_equal(before, after);
	assert_int_equal(held(rt, k.id), 0);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT count(*) FROM sync_entries WHERE entry = ?1", entry), 0);
	/* without a floor the older record applies (and is recorded under its entry) */
	assert_int_equal(deliver_full(rt, entry, 0, older.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT rev FROM sync_entries WHERE entry = ?1", entry),
	    older.rev);
	/* the tombstone at the floor applies and is recorded as one */
	assert_int_equal(deliver_full(rt, entry, pub.rev, pub.tombstone, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED);
	assert_int_equal(held(rt, k.id), 0);
	assert_int_equal(fx_count(rt->replica,
	                          "SELECT rev * 10 + tomb FROM sync_entries WHERE entry = ?1",
	                          entry),
	                 pub.rev * 10 + 1);
	/* and the older record, replayed after it, neither applies nor lowers the entry */
	assert_int_equal(deliver_full(rt, entry, 0, older.value, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_OLD);
	assert_int_equal(
	    fx_count(rt->replica, "SELECT rev FROM sync_entries WHERE entry = ?1", entry), pub.rev);
	free(before);
	free(after);
	vk_publication_free(&pub);
	vk_publication_free(&older);
}

static void
test_machine_moved(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct vk_apply_result res;
	struct fx_key lk, ok;
	char sql[256];

	publish_tree(rt);
	key_published(rt, "location", rt->fx->loc1, &lk);
	key_published(rt, "organization", rt->fx->org, &ok);
	assert_int_equal(held(rt, lk.id) + held(rt, ok.id), 2);

	snprintf(sql, sizeof sql, "UPDATE machines SET location_id = '%s' WHERE id = ?1",
	         rt->fx->loc2);
	fx_sql1(rt->fx->db, sql, rt->fx->m1a); /* from loc1 to loc2, in the same organization */
	build(rt, rt->sk, "machine", rt->fx->m1a, &pub);
	assert_int_equal(deliver_at(rt, &pub, 0, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED);
	assert_true(res.moved);
	assert_int_equal(held(rt, lk.id), 0); /* loc1's key no longer covers it */
	assert_int_equal(held(rt, ok.id), 1); /* the organization's still does */
	assert_int_equal(
	    fx_count(rt->replica, "SELECT location_id = ?1 FROM machines", rt->fx->loc2), 1);
	/* the same record again: not moved again */
	assert_int_equal(deliver_at(rt, &pub, 0, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_OLD);
	assert_false(res.moved);
	vk_publication_free(&pub);
}

/* ---- heartbeats ---------------------------------------------------------------------- */

static int64_t
meta_int(struct rt *rt, const char *name)
{
	return fx_count(rt->replica, "SELECT CAST(value AS INTEGER) FROM meta WHERE name = ?1",
	                name);
}

static void
test_heartbeat_order(void **state)
{
	struct rt *rt = *state;
	struct vk_apply_result res;
	char *hb = vk_record_heartbeat(rt->sk, 7, FX_NOW - 100, "authority host", 20, 0, NULL);
	char *older = vk_record_heartbeat(rt->sk, 8, FX_NOW - 90, "authority host", 19, 0, NULL);
	char *newer = vk_record_heartbeat(rt->sk, 8, FX_NOW - 200, "authority host", 21, 0, NULL);

	assert_int_equal(deliver_hb(rt, hb, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_SEEN), FX_NOW);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_AT), FX_NOW - 100);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_REV), 7);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_SEQ), 20);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_FORMAT), VK_FORMAT);

	/* replayed, or a lower counter with a later time and revision: changes nothing */
	assert_int_equal(deliver_hb(rt, hb, FX_NOW + 50, &res), VK_OK);
	assert_int_not_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(deliver_hb(rt, older, FX_NOW + 60, &res), VK_OK);
	assert_int_not_equal(res.what, VK_APPLIED_HEARTBEAT);
	/* where an older one stands is said all the same: a daemon tells a node that lags by it */
	assert_int_equal(res.beat_seq, 19);
	assert_int_equal(res.beat_epoch, 0);
	assert_int_equal(res.rev, 8);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_SEEN), FX_NOW);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_REV), 7);

	/* a higher counter counts, whatever its time says */
	assert_int_equal(deliver_hb(rt, newer, FX_NOW + 70, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_SEEN), FX_NOW + 70);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_AT), FX_NOW - 200);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_REV), 8);

	/* and one signed by another key does not */
	free(hb);
	hb = vk_record_heartbeat(rt->sk_other, 9, FX_NOW, "rogue", 99, 0, NULL);
	assert_int_equal(deliver_hb(rt, hb, FX_NOW + 80, &res), VK_ERR_USAGE);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_SEEN), FX_NOW + 70);
	free(hb);
	free(older);
	free(newer);
}

/* SPEC §8 rule 9: a heartbeat from a clock set ahead is refused and holds back nothing. */
static void
test_heartbeat_future(void **state)
{
	struct rt *rt = *state;
	struct vk_apply_result res;
	char *ahead = vk_record_heartbeat(rt->sk, 9, FX_NOW + 86400, "authority host", 30, 0, NULL);
	char *near =
	    vk_record_heartbeat(rt->sk, 9, FX_NOW + VK_CLOCK_SKEW, "authority host", 31, 0, NULL);
	char *next = vk_record_heartbeat(rt->sk, 10, FX_NOW + 1, "authority host", 32, 0, NULL);
	char *before, *after;

	before = dump(rt->replica);
	assert_int_equal(deliver_hb(rt, ahead, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_FUTURE);
	after = dump(rt->replica);
	assert_string_equal(before, after);
	/* within the allowed skew: counted */
	assert_int_equal(deliver_hb(rt, near, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	/* the next one counts too, though signed earlier than the one before it */
	assert_int_equal(deliver_hb(rt, next, FX_NOW + 2, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_REV), 10);
	free(before);
	free(after);
	free(ahead);
	free(near);
	free(next);
}

/* A heartbeat of format 1 (no counter) is ordered by time, until a counted one came. */
static void
test_heartbeat_format1(void **state)
{
	struct rt *rt = *state;
	struct vk_apply_result res;
	char *old1 = vk_record_sign(rt->sk, "{\"v\":1,\"type\":\"heartbeat\",\"rev\":3,\"at\":"
	                                    "1700000000,\"authority\":\"a\"}");
	char *old2 = vk_record_sign(rt->sk, "{\"v\":1,\"type\":\"heartbeat\",\"rev\":4,\"at\":"
	                                    "1700000001,\"authority\":\"a\"}");
	char *counted = vk_record_heartbeat(rt->sk, 4, 1700000000, "a", 5, 0, NULL);

	assert_int_equal(deliver_hb(rt, old2, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(res.beat_seq, -1); /* uncounted */
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_FORMAT), 1);
	assert_int_equal(deliver_hb(rt, old1, FX_NOW, &res), VK_OK);
	assert_int_not_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(deliver_hb(rt, counted, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_FORMAT), VK_FORMAT);
	/* an uncounted one after a counted one never counts again */
	free(old1);
	old1 = vk_record_sign(rt->sk, "{\"v\":1,\"type\":\"heartbeat\",\"rev\":9,\"at\":"
	                              "1800000000,\"authority\":\"a\"}");
	assert_int_equal(deliver_hb(rt, old1, FX_NOW, &res), VK_OK);
	assert_int_not_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(meta_int(rt, VK_META_HEARTBEAT_REV), 4);
	free(old1);
	free(old2);
	free(counted);
}

/* Staleness runs from the heartbeat's signed time, not from when it arrived. */
static void
test_stale_by_signed_time(void **state)
{
	struct rt *rt = *state;
	struct vk_apply_result res;
	char err[VK_ERRLEN], *late = vk_record_heartbeat(rt->sk, 3, FX_NOW - 18, "a", 40, 0, NULL);
	int stale = -1;

	assert_int_equal(vk_fleet_stale(rt->replica, FX_NOW, 6, &stale, err), VK_OK);
	assert_int_equal(stale, 1); /* none yet */
	assert_int_equal(deliver_hb(rt, late, FX_NOW, &res), VK_OK);
	assert_int_equal(res.what, VK_APPLIED_HEARTBEAT);
	assert_int_equal(vk_fleet_stale(rt->replica, FX_NOW, 6, &stale, err), VK_OK);
	assert_int_equal(stale, 1); /* delivered now, signed 18 s ago */
	assert_int_equal(vk_fleet_stale(rt->replica, FX_NOW, 20, &stale, err), VK_OK);
	assert_int_equal(stale, 0);
	assert_int_equal(vk_fleet_stale(rt->replica, FX_NOW, 0, &stale, err), VK_OK);
	assert_int_equal(stale, 0); /* off */
	free(late);
}

/* ---- a record that cannot be applied ------------------------------------------------ */

/* value's JSON with `from` replaced by `to`, signed again by the authority (malloc()ed). */
static char *
resigned(struct rt *rt, const char *value, const char *from, const char *to)
{
	static const char domain[] = "viamkey record v1\n";
	const char *json = strchr(value + 4, '.') + 1, *at = strstr(json, from);
	size_t head = (size_t)(at - json), jlen = strlen(json) - strlen(from) + strlen(to);
	unsigned char sig[crypto_sign_BYTES];
	char *out = malloc(4 + 86 + 1 + jlen + 1), *msg = malloc(sizeof domain - 1 + jlen);
	char *j = out + 4 + 86 + 1;

	assert_non_null(at);
	assert_non_null(out);
	assert_non_null(msg);
	memcpy(j, json, head);
	strcpy(j + head, to);
	strcat(j, at + strlen(from));
	memcpy(msg, domain, sizeof domain - 1);
	memcpy(msg + sizeof domain - 1, j, jlen);
	crypto_sign_detached(sig, NULL, (unsigned char *)msg, sizeof domain - 1 + jlen, rt->sk);
	free(msg);
	memcpy(out, "vk1.", 4);
	sodium_bin2base64(out + 4, 87, sig, sizeof sig, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	out[4 + 86] = '.';
	return out;
}

/*
 * A signed record the replica's schema refuses halfway (its key row went
 * in, then a grant with no such role): none of it stays, and what the same
 * transaction applied before it is committed.
 */
static void
test_failed_record_leaves_nothing(void **state)
{
	struct rt *rt = *state;
	struct vk_publication a, b;
	struct vk_apply_result res;
	struct fx_key ka, kb;
	char err[VK_ERRLEN], *bad, *before;
	const char *json;
	size_t len;

	publish_tree(rt);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &ka);
	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &kb);
	build(rt, rt->sk, "key", ka.id, &a);
	build(rt, rt->sk, "key", kb.id, &b);
	bad = resigned(rt, b.value, "\"role\":\"owner\"", "\"role\":\"emperor\"");
	before = dump(rt->replica);

	if (vk_store_begin(rt->replica, err) != VK_OK)
		fail_msg("%s", err);
	assert_int_equal(vk_record_verify(rt->pk, bad, strlen(bad), &json, &len, err), VK_OK);
	assert_int_not_equal(vk_replica_apply(rt->rep, first_in_scope(rt, b.entries, b.nentries), 0,
	                                      json, len, FX_NOW, &res, err),
	                     VK_OK);
	assert_int_equal(res.what, VK_APPLIED_OLD);
	assert_non_null(strstr(err, "CHECK"));
	{
		char *after = dump(rt->replica);

		assert_string_equal(before, after); /* not even the key's row */
		free(after);
	}
	assert_int_equal(vk_record_verify(rt->pk, a.value, strlen(a.value), &json, &len, err),
	                 VK_OK);
	assert_int_equal(vk_replica_apply(rt->rep, first_in_scope(rt, a.entries, a.nentries), 0,
	                                  json, len, FX_NOW, &res, err),
	                 VK_OK);
	assert_int_equal(res.what, VK_APPLIED);
	if (vk_store_commit(rt->replica, err) != VK_OK)
		fail_msg("%s", err);
	assert_int_equal(held(rt, ka.id), 1);
	assert_int_equal(held(rt, kb.id), 0);
	/* the record as signed is applied afterwards: the refusal was the role's */
	assert_int_equal(deliver(rt, &b, 0), VK_APPLIED);
	assert_int_equal(held(rt, kb.id), 1);
	free(before);
	free(bad);
	vk_publication_free(&a);
	vk_publication_free(&b);
}

/* ---- no secrets --------------------------------------------------------------------- */

static void
test_no_secret_in_record(void **state)
{
	struct rt *rt = *state;
	struct vk_publication pub;
	struct vk_token t;
	char err[VK_ERRLEN], second[VK_TOKEN_LEN + 1], hex[2 * VK_SECRET_BYTES + 1];
	const char *const tokens[2] = {NULL, second};
	struct fx_key k;

	fx_key(rt->fx, VK_ROLE_OWNER, "organization", rt->fx->org, &k);
	/* two live secrets: a rotation window */
	if (fx_rotate(rt->fx, k.id, 3600, FX_NOW, second, err) != VK_OK)
		fail_msg("%s", err);
	build(rt, rt->sk, "key", k.id, &pub);
	assert_int_equal(
	    fx_count(rt->fx->db, "SELECT count(*) FROM secrets WHERE key_id = ?1", k.id), 2);
	for (int i = 0; i < 2; i++) {
		const char *token = tokens[i] != NULL ? tokens[i] : k.token;
		const char *secret =
		    token + 3 + VK_KEY_PART_LEN + 1; /* "vk_<id>_": the secret part */
		char part[16];

		assert_int_equal(vk_token_parse(token, strlen(token), &t), VK_TOKEN_OK);
		sodium_bin2hex(hex, sizeof hex, t.secret, sizeof t.secret);
		for (char *h = hex; *h != '\0'; h++)
			*h = (char)(*h >= 'a' ? *h - 'a' + 'A'
			                      : *h); /* SQLite's hex() is upper case */
		assert_null(strstr(pub.value, hex));
		for (int off = 0; off + 12 <= 43; off += 12) {
			snprintf(part, sizeof part, "%.12s", secret + off);
			assert_null(strstr(pub.value, part));
		}
		assert_null(strstr(pub.value, token));
		vk_token_wipe(&t);
	}
	/* but both secrets' verifiers and salts are there */
	{
		sqlite3_stmt *st;

		assert_int_equal(
		    sqlite3_prepare_v2(rt->fx->db,
		                       "SELECT count(*) FROM secrets WHERE key_id = ?1 AND"
		                       " instr(?2, hex(verifier)) > 0 AND"
		                       " instr(?2, hex(salt)) > 0",
		                       -1, &st, NULL),
		    SQLITE_OK);
		sqlite3_bind_text(st, 1, k.id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, pub.value, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 2);
		sqlite3_finalize(st);
	}
	vk_publication_free(&pub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_other_key_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_older_revision_ignored, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replayed_record_after_tombstone, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tombstone_removes_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tombstone_after_unconfirmed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tombstone_keeps_covered_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_grants_stop_covering, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_machine_moved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_misfiled_dropped, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_entries_and_floor, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_future, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_heartbeat_format1, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stale_by_signed_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_record_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_secret_in_record, setup, teardown),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
