/*
 * authority.c - viamkey-syncd on the authority: publishes the outbox to
 * the bus, signed, then the heads of the scopes it changed, and a
 * heartbeat; collects the machines' acknowledgements (acks.c) for keyadm
 * sync status and sync wait.
 *
 * Security rules for this file:
 *  1. An outbox row leaves the outbox only once every entry of its
 *     publication is acknowledged by JetStream: a crash or an unreachable
 *     bus loses nothing, and publishing twice is harmless (revisions). A
 *     scope's head is published again until JetStream has it (sync_dirty).
 *  2. A heartbeat's revision is one every change up to which, and every
 *     head that describes it, is in the bucket: a machine that applied
 *     everything before a heartbeat has applied that revision.
 *  3. Every value goes first to the live subjects machines follow, plain
 *     NATS, then into the bucket: a stream electing a leader delays the
 *     bucket, not the machines that are connected.
 *  4. Heartbeats are counted: each carries a counter that never goes back,
 *     across restarts too (VK_META_HB_BOOT), so that a machine orders them
 *     without a clock.
 *  5. The signing key stays in sodium_malloc() memory, loaded once (and
 *     again after a rekey).
 *  6. In a fleet with a root of trust (epoch 1 and up) it publishes only
 *     while it holds the authority lease (lease.c), taken for its epoch;
 *     once the lease is another's (a standby promoted, a newer epoch), it
 *     publishes nothing ever again and records who holds it, so that its
 *     keyadm refuses every change. (A fleet of authority_key alone has one
 *     authority and no lease.)
 *  7. Every entry a record goes to is recorded (sync_published) before
 *     the record goes, live or into the bucket: a machine may hold what
 *     went live in a round the bucket refused, so a later delete, or a
 *     grant removed, puts a tombstone there too.
 *  8. Everything is signed with the key of the store's epoch, read in the
 *     transaction that reads what is signed: a round that finds a newer
 *     epoch (a rekey or a promotion committed since the key was loaded)
 *     publishes nothing, and no heartbeat, until that key is loaded.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "events.h"
#include "fleet.h"
#include "metrics.h"
#include "record.h"
#include "scope.h"
#include "signer.h"
#include "store.h"
#include "syncd.h"
#include "token.h"
#include "txn.h"

#define BATCH          500   /* outbox rows, or scope heads, per publication round */
#define PUBLISH_WAIT   10000 /* ms for JetStream to acknowledge a round */
#define POLL_MS        50    /* how often the outbox is looked at: cheap, by its index */
#define ONCE_DEADLINE  60000 /* ms --once waits for the bus */
#define HOST_NAME_SIZE 256
#define RETRY_MIN_MS   1000
#define RETRY_MAX_MS   30000
#define LEASE_CHECK_MS 10000 /* how often a former authority looks at the lease again */

struct authority {
	const struct vk_config *cfg;
	sqlite3 *db;
	struct sd_bus bus;
	struct vk_signer sig;
	char host[HOST_NAME_SIZE];
	char holder[HOST_NAME_SIZE + 64]; /* this authority in the lease: its host and key */
	struct sd_lease lease;
	int leased; /* the lease is ours, as read or taken */
	int lost;   /* the lease is another's: this host publishes nothing any more */
	int64_t next_lease_ms;
	int64_t lease_until; /* the end of the lease as last taken (vk_now() seconds) */
	int bucket_ready;
	int roots_published; /* the root versions the store holds are in the bucket */
	int key_stale;       /* the store's epoch is past the key held: rekeyed() loads it */
	char tag[17];        /* in the acknowledgements consumer's name, as on a machine */
	int64_t boot, beats;
	int64_t next_hb_ms;
	int64_t retry_ms, next_try_ms; /* after the bus refused: wait longer each time */
	int64_t live_rev;              /* records up to here went to the live subjects already */
	long published;
	struct sd_admit admit; /* join requests, and the machines' account (admit.c) */
	struct sd_metrics metrics;
	struct sd_events events; /* the machines' logins, and this host's */
};

static int64_t
query_int(struct authority *a, const char *sql)
{
	char err[VK_ERRLEN];
	int64_t v = 0;

	if (vk_store_query_int(a->db, "cannot read the store", err, &v, sql, "") != VK_OK)
		sd_log(LOG_ERR, "%s", err);
	return v;
}

/*
 * Rule 8, in a round's read transaction: whether the store's epoch is still
 * the key's. A rekey that commits after rekeyed() looked has put everything
 * in the outbox, for the new key: signed with the old one, machines that
 * follow the new epoch would drop all of it. When it is not, key_stale.
 */
static int
key_current(struct authority *a)
{
	if (query_int(a, "SELECT coalesce(" VK_SIGNER_EPOCH_SQL ", 0)") == a->sig.epoch)
		return 1;
	a->key_stale = 1;
	return 0;
}

/* Rule 3: the value on the live subject of entry, then into the bucket (async). */
static int
put(struct authority *a, const char *entry, const char *value, int live)
{
	char subject[VK_ENTRY_MAX + 96];
	size_t len = strlen(value);

	if (live) {
		snprintf(subject, sizeof subject, "%s%s", a->bus.live_prefix, entry);
		(void)sd_bus_publish(&a->bus, subject, value, len);
	}
	snprintf(subject, sizeof subject, "%s%s", a->bus.kv_prefix, entry);
	return js_PublishAsync(a->bus.js, subject, value, (int)len, NULL) == NATS_OK ? 0 : -1;
}

/* Waits for JetStream to acknowledge every put of the round; 0, or -1 when any was refused. */
static int
round_done(struct authority *a, int failed, int n, const char *what)
{
	jsPubOptions po;

	jsPubOptions_Init(&po);
	po.MaxWait = PUBLISH_WAIT;
	/* rule 1: every put acknowledged, none refused (bus.c's on_pub_error counts those) */
	if (js_PublishAsyncComplete(a->bus.js, &po) != NATS_OK || failed ||
	    __atomic_load_n(&a->bus.pub_failed, __ATOMIC_SEQ_CST) != 0) {
		natsMsgList pending;

		/* drop whatever is still in flight: the store keeps the rows for the next round */
		if (js_PublishAsyncGetPendingList(&pending, a->bus.js) == NATS_OK)
			natsMsgList_Destroy(&pending);
		sd_log(LOG_WARNING, "the bus did not take %d %s; they stay to be published", n,
		       what);
		a->bucket_ready = 0; /* is the bucket still there? (bucket.c) */
		return -1;
	}
	return 0;
}

/* record() on each of the n publications, in one write transaction: 0, or -1 (err; none kept). */
static int
each_recorded(sqlite3 *db, const struct vk_publication *pubs, int n,
              vk_rc (*record)(sqlite3 *, const struct vk_publication *, char[VK_ERRLEN]),
              char err[VK_ERRLEN])
{
	if (vk_store_begin(db, err) != VK_OK)
		return -1;
	for (int i = 0; i < n; i++)
		if (record(db, &pubs[i], err) != VK_OK) {
			vk_store_rollback(db);
			return -1;
		}
	return vk_store_commit(db, err) == VK_OK ? 0 : -1;
}

/* One round: up to BATCH outbox rows, built, put, acknowledged, then marked. Rows done, or -1. */
static int
publish_round(struct authority *a)
{
	struct vk_publication *pubs = NULL;
	char err[VK_ERRLEN];
	sqlite3_stmt *st = NULL;
	int n = 0, failed = 0, rc = -1, stale;
	int64_t top = 0, start = sd_now_us();

	if (vk_store_prepare(a->db, "cannot read the outbox", err, &st,
	                     "SELECT kind, id, rev FROM sync_outbox ORDER BY rev LIMIT ?1", "i",
	                     (int64_t)BATCH) != VK_OK ||
	    (pubs = calloc(BATCH, sizeof *pubs)) == NULL) {
		sd_log(LOG_ERR, "%s", st ? "out of memory" : err);
		goto out;
	}
	/* one read transaction: every record of the round from one state of the store */
	(void)sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL);
	while (sqlite3_step(st) == SQLITE_ROW && n < BATCH) {
		if (vk_record_build(
		        a->db, a->sig.sk, a->sig.epoch, (const char *)sqlite3_column_text(st, 0),
		        (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2),
		        vk_now(), &pubs[n], err) != VK_OK) {
			sd_log(LOG_ERR, "%s", err);
			failed = 1;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	st = NULL;
	stale = n > 0 && !failed && !key_current(a);
	(void)sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	/* an empty outbox: no write transaction for nothing; a new key: loaded first */
	if ((n == 0 && !failed) || stale) {
		rc = 0;
		goto out;
	}
	/* rule 7: where it may reach machines is known before it goes */
	if (each_recorded(a->db, pubs, n, vk_record_sending, err) != 0)
		goto fail;
	__atomic_store_n(&a->bus.pub_failed, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < n && !failed; i++) {
		/* a record that went live in a round the bucket refused does not go again */
		int live = pubs[i].rev > a->live_rev;

		for (size_t e = 0; e < pubs[i].nentries && !failed; e++)
			failed = put(a, pubs[i].entries[e], pubs[i].value, live) != 0;
		for (size_t e = 0; e < pubs[i].ngone && !failed; e++)
			failed = put(a, pubs[i].gone[e], pubs[i].tombstone, live) != 0;
		if (pubs[i].rev > top)
			top = pubs[i].rev;
	}
	if (top > a->live_rev)
		a->live_rev = top;
	sd_log(LOG_DEBUG, "sent %d changes up to revision %lld in %lld ms", n, (long long)top,
	       (long long)((sd_now_us() - start) / 1000));
	if (round_done(a, failed, n, "changes") != 0)
		goto out;
	sd_log(LOG_DEBUG, "the bucket holds them %lld ms after the round began",
	       (long long)((sd_now_us() - start) / 1000));
	if (each_recorded(a->db, pubs, n, vk_record_published, err) != 0)
		goto fail;
	a->published += n;
	a->metrics.published += (uint64_t)n;
	sd_timing_add(&a->metrics.publish, start);
	rc = n;
	goto out;
fail:
	sd_log(LOG_ERR, "%s", err);
out:
	sqlite3_finalize(st);
	for (int i = 0; pubs != NULL && i < n; i++)
		vk_publication_free(&pubs[i]);
	free(pubs);
	return rc;
}

/* One round of scope heads (scope.h): built, put, acknowledged, marked. Heads done, or -1. */
static int
heads_round(struct authority *a)
{
	struct vk_head_pub *pubs = NULL;
	char err[VK_ERRLEN], entry[VK_ENTRY_MAX];
	size_t n = 0;
	int failed = 0;
	vk_rc rc;

	(void)sqlite3_exec(a->db, "BEGIN", NULL, NULL, NULL);
	rc = vk_heads_build(a->db, a->sig.sk, a->sig.epoch, vk_now(), BATCH, &pubs, &n, err);
	if (rc == VK_OK && n > 0 && !key_current(a)) {
		vk_heads_free(pubs, n);
		n = 0;
	}
	(void)sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	if (rc != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	if (n == 0)
		return 0;
	__atomic_store_n(&a->bus.pub_failed, 0, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < n && !failed; i++) {
		/* the pages first: a machine that reads the head finds what it lists */
		for (int p = 0; p < VK_HEAD_PAGES && !failed; p++) {
			if (pubs[i].pages[p] == NULL)
				continue;
			snprintf(entry, sizeof entry, "%s.i.%x", pubs[i].scope, p);
			failed = put(a, entry, pubs[i].pages[p], 0) != 0;
		}
		snprintf(entry, sizeof entry, "%s.h", pubs[i].scope);
		failed = failed || put(a, entry, pubs[i].value, 1) != 0;
	}
	sd_log(LOG_DEBUG, "sent %zu scope heads", n);
	if (round_done(a, failed, (int)n, "scope heads") != 0) {
		vk_heads_free(pubs, n);
		return -1;
	}
	if ((rc = vk_store_begin(a->db, err)) == VK_OK &&
	    (rc = vk_heads_published(a->db, pubs, n, err)) == VK_OK)
		rc = vk_store_commit(a->db, err);
	else
		vk_store_rollback(a->db);
	vk_heads_free(pubs, n);
	if (rc != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	return (int)n;
}

/* The revision every change up to which, and every head of it, is in the bucket (rule 2). */
static int64_t
published_revision(struct authority *a)
{
	return query_int(
	    a, "SELECT CASE WHEN pending IS NULL THEN coalesce((SELECT CAST(value AS INTEGER)"
	       " FROM meta WHERE name = '" VK_META_REVISION "'), 0) ELSE pending - 1 END"
	       " FROM (SELECT min(rev) AS pending FROM (SELECT min(rev) AS rev FROM sync_outbox"
	       " UNION ALL SELECT min(rev) FROM sync_dirty))");
}

/*
 * Rule 4: the heartbeat's counter starts above every one an earlier run of
 * this daemon could have used: each run takes the next 2^32.
 */
static int
count_boots(struct authority *a)
{
	char err[VK_ERRLEN];

	if (vk_store_begin(a->db, err) != VK_OK ||
	    vk_store_query_int(a->db, "cannot read the heartbeat's counter", err, &a->boot,
	                       "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                       " WHERE name = '" VK_META_HB_BOOT "'), 0) + 1",
	                       "") != VK_OK ||
	    vk_store_exec(a->db, "cannot record the heartbeat's counter", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" VK_META_HB_BOOT "', ?1)"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                  "i", a->boot) != VK_OK ||
	    vk_store_commit(a->db, err) != VK_OK) {
		vk_store_rollback(a->db);
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	return 0;
}

/*
 * The heartbeat: on the live subject every interval, whatever the bucket
 * does (rule 3), and into the bucket for machines that read it there. 0
 * when the bucket took it.
 */
static int
heartbeat(struct authority *a)
{
	int64_t rev = published_revision(a);
	char *value = vk_record_heartbeat(a->sig.sk, rev, vk_now(), a->host,
	                                  a->boot * ((int64_t)1 << 32) + ++a->beats, a->sig.epoch,
	                                  a->sig.cert_b64);
	char subject[128];
	jsPubAck *ack = NULL;
	jsPubOptions po;
	natsStatus st;

	if (value == NULL)
		return -1;
	a->next_hb_ms = sd_now_ms() + a->cfg->sync.heartbeat_interval * 1000;
	snprintf(subject, sizeof subject, "%shb", a->bus.live_prefix);
	(void)sd_bus_publish(&a->bus, subject, value, strlen(value));
	if (!a->bucket_ready) {
		free(value);
		return -1;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 2000;
	snprintf(subject, sizeof subject, "%shb", a->bus.kv_prefix);
	st = js_Publish(&ack, a->bus.js, subject, value, (int)strlen(value), &po, NULL);
	jsPubAck_Destroy(ack);
	free(value);
	if (st != NATS_OK) {
		sd_log(LOG_WARNING, "cannot put the heartbeat in the bucket: %s",
		       natsStatus_GetText(st));
		a->bucket_ready = 0;
		return -1;
	}
	return 0;
}

/* This authority as the lease names it. */
static void
holder_name(struct authority *a)
{
	sd_lease_holder(a->host, a->sig.pk, a->holder, sizeof a->holder);
}

/*
 * Rule 6: the lease is someone else's. From now on this host publishes
 * nothing, and its keyadm refuses every change, naming the holder.
 */
static void
lose_lease(struct authority *a)
{
	char err[VK_ERRLEN], who[sizeof a->lease.holder + 64];

	snprintf(who, sizeof who, "%s, epoch %lld", a->lease.holder, (long long)a->lease.epoch);
	a->lost = 1;
	a->leased = 0;
	if (vk_store_exec(a->db, "cannot record the lease", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" VK_META_LEASE_LOST "', ?1)"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                  "t", who) != VK_OK)
		sd_log(LOG_ERR, "%s", err);
	sd_log(LOG_ERR,
	       "the authority lease is held by %s: this host is no longer the fleet's authority"
	       " and publishes nothing",
	       who);
}

/*
 * Rule 6: holds the lease, taking it (by compare-and-swap) when it is
 * nobody's, ours or a lower epoch's, and renewing it at each heartbeat.
 * 0 held; -1 the bus did not answer (try again); 1 lost.
 */
static int
hold_lease(struct authority *a)
{
	int64_t until = vk_now() + 3 * a->cfg->sync.heartbeat_interval;
	char err[512];
	int rc;

	for (int tries = 0; tries < 3; tries++) {
		if (!a->leased) {
			if (sd_lease_read(&a->bus, a->db, &a->lease, err, sizeof err) != 0) {
				sd_log(LOG_WARNING, "cannot read the authority lease: %s", err);
				return -1;
			}
			if (a->lease.present && strcmp(a->lease.holder, a->holder) != 0 &&
			    a->lease.epoch >= a->sig.epoch) {
				lose_lease(a);
				return 1;
			}
		}
		rc = sd_lease_take(&a->bus, a->sig.sk, &a->lease, a->holder, a->sig.epoch, until,
		                   err, sizeof err);
		if (rc == 0) {
			if (!a->leased)
				sd_log(LOG_INFO, "holding the authority lease (epoch %lld)",
				       (long long)a->sig.epoch);
			a->leased = 1;
			a->lease_until = until;
			a->next_lease_ms = sd_now_ms() + a->cfg->sync.heartbeat_interval * 1000;
			return 0;
		}
		if (rc < 0) {
			sd_log(LOG_WARNING, "%s", err);
			return -1;
		}
		a->leased = 0; /* changed meanwhile: read it again */
	}
	return -1;
}

/*
 * The root versions the store holds (root rotate), each under root.<N> in
 * the bucket, before any heartbeat carries a certificate of one: a machine
 * reads them from there. 0, or -1.
 */
static int
publish_roots(struct authority *a)
{
	char err[VK_ERRLEN], entry[64];
	sqlite3_stmt *st;
	int failed = 0, n = 0;

	if (vk_store_prepare(a->db, "cannot read the root versions", err, &st,
	                     "SELECT version, value FROM sync_roots ORDER BY version",
	                     "") != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	__atomic_store_n(&a->bus.pub_failed, 0, __ATOMIC_SEQ_CST);
	while (!failed && sqlite3_step(st) == SQLITE_ROW) {
		snprintf(entry, sizeof entry, "root.%lld", (long long)sqlite3_column_int64(st, 0));
		failed = put(a, entry, (const char *)sqlite3_column_text(st, 1), 0) != 0;
		n++;
	}
	sqlite3_finalize(st);
	return n == 0 ? 0 : round_done(a, failed, n, "root versions");
}

/*
 * A rekey or a root rotation (keyadm) recorded a new certificate in the
 * store: its key is loaded, the root versions published, and the lease
 * taken for its epoch; after a rekey the outbox already holds everything,
 * to be published under it. At the start, the root versions alone. 0, or
 * -1.
 */
static int
rekeyed(struct authority *a)
{
	struct vk_signer next;
	char err[VK_ERRLEN], *cert = NULL;
	int64_t epoch = 0;
	sqlite3_stmt *st;
	int same;

	a->key_stale = 0;
	if (vk_store_prepare(a->db, "cannot read the authority's certificate", err, &st,
	                     "SELECT " VK_SIGNER_EPOCH_SQL ", " VK_SIGNER_CERT_SQL, "") != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	if (sqlite3_step(st) == SQLITE_ROW) {
		epoch = sqlite3_column_int64(st, 0);
		if (sqlite3_column_text(st, 1) != NULL)
			cert = strdup((const char *)sqlite3_column_text(st, 1));
	}
	sqlite3_finalize(st);
	same = epoch == a->sig.epoch && (cert == NULL) == (a->sig.cert == NULL) &&
	       (cert == NULL || strcmp(cert, a->sig.cert) == 0);
	free(cert);
	if (same && a->roots_published)
		return 0;
	if (!same && vk_signer_load(a->db, a->cfg->sync.signing_key, &next, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	if (publish_roots(a) != 0) {
		if (!same)
			vk_signer_free(&next);
		return -1;
	}
	a->roots_published = 1;
	if (same)
		return 0;
	vk_signer_free(&a->sig);
	a->sig = next;
	holder_name(a);
	a->leased = 0;
	a->next_lease_ms = 0;
	a->live_rev = 0;
	sd_log(LOG_INFO, "signing with a new certificate, in epoch %lld", (long long)a->sig.epoch);
	return 0;
}

/* Rule 10 of SPEC §8: a bucket made anew gets everything again, and the audit trail says so. */
static int
publish_everything(struct authority *a)
{
	struct vk_txn t = {.db = a->db, .actor = "viamkey-syncd", .now = vk_now()};
	char err[VK_ERRLEN];

	if (vk_txn_begin(&t, err) != VK_OK || vk_txn_changed_all(&t, err) != VK_OK ||
	    vk_store_exec(a->db, "cannot record the bucket", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" VK_META_BUCKET_MADE "', ?1)"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                  "i", t.now) != VK_OK ||
	    vk_txn_event(&t, "sync.bucket", NULL, err,
	                 "bucket %s made anew; everything published again",
	                 a->cfg->sync.bucket) != VK_OK ||
	    vk_txn_commit(&t, err) != VK_OK) {
		vk_txn_rollback(&t);
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	return 0;
}

/* The bucket, made (again) when it is missing or not as bucket.c wants it. */
static int
ensure_bucket(struct authority *a)
{
	int made;

	if (a->bucket_ready)
		return 0;
	if (sd_bucket_ensure(&a->bus, &a->cfg->sync, &made) != 0 ||
	    (made && publish_everything(a) != 0))
		return -1;
	a->bucket_ready = 1;
	return 0;
}

/*
 * After a round or a heartbeat the bus did not take: the next try waits
 * 1 s, doubling to 30 s, with jitter (a cluster electing a leader refuses
 * writes for several seconds; retrying every poll would flood the log).
 */
static void
back_off(struct authority *a)
{
	a->retry_ms = a->retry_ms == 0                 ? RETRY_MIN_MS
	              : a->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS
	                                               : a->retry_ms * 2;
	a->next_try_ms = sd_now_ms() + a->retry_ms / 2 + randombytes_uniform((uint32_t)a->retry_ms);
}

/* One pass of publishing: everything due, then a heartbeat. 1 when nothing is left, 0, -1. */
static int
publish(struct authority *a)
{
	int n = 0, heads = 0;

	while (!sd_stop && (n = publish_round(a)) > 0)
		;
	while (n == 0 && !sd_stop && (heads = heads_round(a)) > 0)
		;
	if (n < 0 || heads < 0)
		return -1;
	if (a->key_stale)
		return 0; /* the next pass, after rekeyed() */
	if (a->published == 0 && sd_now_ms() < a->next_hb_ms)
		return 0;
	if (heartbeat(a) != 0)
		return -1;
	if (a->published > 0)
		sd_log(LOG_INFO, "published %ld changes; revision %lld", a->published,
		       (long long)published_revision(a));
	a->published = 0;
	return query_int(a, "SELECT (SELECT count(*) FROM sync_outbox) +"
	                    " (SELECT count(*) FROM sync_dirty)") == 0;
}

int
sd_authority(const struct vk_config *cfg, const char *store, int once)
{
	struct authority a;
	char err[VK_ERRLEN], inbox[96];
	enum vk_fleet_role role;
	int64_t start = sd_now_ms(), deadline = start + ONCE_DEADLINE, opened;
	int status = 1, catch_up = 1;

	memset(&a, 0, sizeof a);
	a.cfg = cfg;
	a.metrics = (struct sd_metrics){
	    .path = cfg->sync.metrics_file, .role = "authority", .machine = cfg->machine_id};
	if (gethostname(a.host, sizeof a.host - 1) != 0)
		snprintf(a.host, sizeof a.host, "unknown");
	if (vk_store_open(store, VK_OPEN_ADMIN, 5000, &a.db, err) != VK_OK ||
	    vk_fleet_role(a.db, &role, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		goto out;
	}
	if (role != VK_FLEET_AUTHORITY) {
		sd_log(LOG_ERR, "store %s is not the fleet's authority (keyadm authority init)",
		       store);
		goto out;
	}
	if (vk_signer_load(a.db, cfg->sync.signing_key, &a.sig, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		goto out;
	}
	holder_name(&a);
	if (count_boots(&a) != 0 ||
	    sd_events_open(&a.events, cfg, store, SD_EVENTS_AUTHORITY, &a.metrics) != 0)
		goto out;
	opened = sd_now_ms();
	/* its own: two daemons of one bus user (a rogue, a standby promoted) never share replies */
	sd_random_tag(a.tag);
	snprintf(inbox, sizeof inbox, "_INBOX.authority-%s", a.tag);
	if (sd_bus_open(&a.bus, &cfg->sync, "viamkey-syncd authority", inbox) != 0 ||
	    sd_acks_subscribe(&a.bus) != 0)
		goto out;
	sd_log(LOG_INFO, "publishing store %s to bucket %s", store, cfg->sync.bucket);
	sd_log(LOG_DEBUG, "ready in %lld ms: the store %lld ms, the bus %lld ms",
	       (long long)(sd_now_ms() - start), (long long)(opened - start),
	       (long long)(sd_now_ms() - opened));
	while (!sd_stop) {
		int connected = 0, done;
		natsMsg *m;

		if (sd_bus_closed(&a.bus)) {
			status = SD_RECONNECT;
			break;
		}
		/*
		 * The events' intake starts before the lease is taken (its store
		 * connection, subscription and the stream's consumer ready when it
		 * is); it reads the stream once sd_events_allow() below says so.
		 */
		if (!once && !a.lost)
			sd_events_start(&a.events, &a.bus);
		if (natsConnection_Status(a.bus.nc) == NATS_CONN_STATUS_CONNECTED &&
		    sd_now_ms() >= a.next_try_ms) {
			if (a.lost) {
				a.next_try_ms = sd_now_ms() + LEASE_CHECK_MS; /* for good: say so */
				if (once)
					break;
			} else if (ensure_bucket(&a) != 0 || rekeyed(&a) != 0 ||
			           (a.sig.epoch > 0 && sd_now_ms() >= a.next_lease_ms &&
			            hold_lease(&a) != 0)) {
				if (!a.lost)
					back_off(&a);
			} else {
				/* the stream's events taken while the lease holds */
				if (!once)
					sd_events_allow(&a.events, &a.bus,
					                a.sig.epoch == 0 ? INT64_MAX
					                                 : a.lease_until);
				if (catch_up && sd_acks_read(a.db, &a.bus, a.tag) == 0)
					catch_up = 0;
				if ((done = publish(&a)) < 0) {
					back_off(&a);
				} else {
					a.retry_ms = 0;
					if (once && done == 1) {
						status = 0;
						break;
					}
				}
			}
		}
		/* machines hear from the authority while the bucket is away (rule 3) */
		if (natsConnection_Status(a.bus.nc) == NATS_CONN_STATUS_CONNECTED && !a.lost &&
		    !a.key_stale && sd_now_ms() >= a.next_hb_ms)
			(void)heartbeat(&a);
		/* joins and revocations, by the authority that holds the lease only */
		if (natsConnection_Status(a.bus.nc) == NATS_CONN_STATUS_CONNECTED && !a.lost &&
		    (a.sig.epoch == 0 || a.leased) && !once)
			sd_admit_poll(&a.admit, a.db, a.bus.nc, a.sig.sk, cfg);
		if (once && sd_now_ms() > deadline) {
			sd_log(LOG_ERR, "--once: the bus did not take everything in %d s",
			       ONCE_DEADLINE / 1000);
			break;
		}
		if (a.lost)
			sd_events_allow(&a.events, &a.bus, 0);
		if (!a.lost && (a.sig.epoch == 0 || a.leased) && !once)
			sd_events_tick(&a.events, a.db, &a.bus);
		sd_metrics_tick(&a.metrics, a.db, 0);
		if ((m = sd_queue_pop(&a.bus.q, POLL_MS, &connected, NULL)) != NULL)
			(void)sd_acks_record(a.db, &a.bus, m, &connected, NULL, 0);
		if (connected)
			catch_up = 1;
	}
out:
	sd_admit_close(&a.admit);
	sd_events_close(&a.events);
	sd_bus_close(&a.bus);
	vk_signer_free(&a.sig);
	sqlite3_close(a.db);
	return status;
}
