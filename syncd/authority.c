/*
 * authority.c - viamkey-syncd on the authority: publishes the outbox to
 * the bus, signed, and a heartbeat; collects the machines'
 * acknowledgements for keyadm sync status and sync wait.
 *
 * Security rules for this file:
 *  1. An outbox row leaves the outbox only once every entry of its
 *     publication is acknowledged by JetStream: a crash or an unreachable
 *     bus loses nothing, and publishing twice is harmless (revisions).
 *  2. A heartbeat's revision is one every change up to which is on the
 *     bus: a machine that applied everything before a heartbeat has
 *     applied that revision.
 *  3. The signing key stays in sodium_malloc() memory, loaded once.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "fleet.h"
#include "record.h"
#include "store.h"
#include "syncd.h"
#include "token.h"

#define BATCH          500   /* outbox rows per publication round */
#define PUBLISH_WAIT   10000 /* ms for JetStream to acknowledge a round */
#define POLL_MS        50    /* how often the outbox is looked at: cheap, by its index */
#define ONCE_DEADLINE  60000 /* ms --once waits for the bus */
#define HOST_NAME_SIZE 256
#define RETRY_MIN_MS   1000
#define RETRY_MAX_MS   30000

struct authority {
	const struct vk_config *cfg;
	sqlite3 *db;
	struct sd_bus bus;
	unsigned char *sk;
	char host[HOST_NAME_SIZE];
	natsSubscription *acks;
	int bucket_ready;
	char tag[17]; /* in the acknowledgements consumer's name, as on a machine */
	int64_t next_hb_ms;
	int64_t retry_ms, next_try_ms; /* after the bus refused: wait longer each time */
	long published;
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

/* The bucket, created when missing, with the republished subjects machines follow. */
static int
ensure_bucket(struct authority *a)
{
	const struct vk_sync_config *s = &a->cfg->sync;
	char source[128], destination[128];
	kvStore *kv = NULL;
	jsRePublish rp;
	kvConfig kc;
	natsStatus st;

	if (a->bucket_ready)
		return 0;
	st = js_KeyValue(&kv, a->bus.js, s->bucket);
	if (st == NATS_OK) {
		kvStore_Destroy(kv);
		a->bucket_ready = 1;
		return 0;
	}
	if (st != NATS_NOT_FOUND) {
		sd_log(LOG_WARNING, "cannot look up bucket %s: %s", s->bucket,
		       natsStatus_GetText(st));
		return -1;
	}
	kvConfig_Init(&kc);
	jsRePublish_Init(&rp);
	snprintf(source, sizeof source, "%s>", a->bus.kv_prefix);
	snprintf(destination, sizeof destination, "%s>", a->bus.live_prefix);
	rp.Source = source;
	rp.Destination = destination;
	kc.Bucket = s->bucket;
	kc.History = 1;
	kc.Replicas = s->replicas;
	kc.MaxValueSize = VK_RECORD_MAX;
	kc.RePublish = &rp;
	if ((st = js_CreateKeyValue(&kv, a->bus.js, &kc)) != NATS_OK) {
		sd_log(LOG_WARNING, "cannot create bucket %s: %s (%s)", s->bucket,
		       natsStatus_GetText(st), nats_GetLastError(NULL));
		return -1;
	}
	kvStore_Destroy(kv);
	sd_log(LOG_INFO, "created bucket %s with %d replicas", s->bucket, s->replicas);
	a->bucket_ready = 1;
	return 0;
}

static int
put(struct authority *a, const char *entry, const char *value)
{
	char subject[VK_ENTRY_MAX + 96];

	snprintf(subject, sizeof subject, "%s%s", a->bus.kv_prefix, entry);
	return js_PublishAsync(a->bus.js, subject, value, (int)strlen(value), NULL) == NATS_OK ? 0
	                                                                                       : -1;
}

/* One round: up to BATCH outbox rows, built, put, acknowledged, then marked. Rows done, or -1. */
static int
publish_round(struct authority *a)
{
	struct vk_publication *pubs = NULL;
	char err[VK_ERRLEN];
	jsPubOptions po;
	sqlite3_stmt *st = NULL;
	int n = 0, failed = 0, rc = -1;

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
		if (vk_record_build(a->db, a->sk, (const char *)sqlite3_column_text(st, 0),
		                    (const char *)sqlite3_column_text(st, 1),
		                    sqlite3_column_int64(st, 2), vk_now(), &pubs[n],
		                    err) != VK_OK) {
			sd_log(LOG_ERR, "%s", err);
			failed = 1;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	st = NULL;
	(void)sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL);
	if (n == 0 && !failed) {
		rc = 0; /* an empty outbox: no write transaction for nothing */
		goto out;
	}
	__atomic_store_n(&a->bus.pub_failed, 0, __ATOMIC_SEQ_CST);
	for (int i = 0; i < n && !failed; i++) {
		for (size_t e = 0; e < pubs[i].nentries && !failed; e++)
			failed = put(a, pubs[i].entries[e], pubs[i].value) != 0;
		for (size_t e = 0; e < pubs[i].ngone && !failed; e++)
			failed = put(a, pubs[i].gone[e], pubs[i].tombstone) != 0;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = PUBLISH_WAIT;
	/* rule 1: every put acknowledged, none refused (bus.c's on_pub_error counts those) */
	if (js_PublishAsyncComplete(a->bus.js, &po) != NATS_OK || failed ||
	    __atomic_load_n(&a->bus.pub_failed, __ATOMIC_SEQ_CST) != 0) {
		natsMsgList pending;

		/* drop whatever is still in flight: the outbox keeps the rows for the next round */
		if (js_PublishAsyncGetPendingList(&pending, a->bus.js) == NATS_OK)
			natsMsgList_Destroy(&pending);
		sd_log(LOG_WARNING, "the bus did not take %d changes; they stay in the outbox", n);
		goto out;
	}
	if (vk_store_begin(a->db, err) != VK_OK)
		goto fail;
	for (int i = 0; i < n; i++)
		if (vk_record_published(a->db, &pubs[i], err) != VK_OK) {
			vk_store_rollback(a->db);
			goto fail;
		}
	if (vk_store_commit(a->db, err) != VK_OK)
		goto fail;
	a->published += n;
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

/* The revision every change up to which is on the bus (rule 2). */
static int64_t
published_revision(struct authority *a)
{
	return query_int(a,
	                 "SELECT coalesce((SELECT min(rev) - 1 FROM sync_outbox),"
	                 " (SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_REVISION
	                 "'), 0)");
}

static int
heartbeat(struct authority *a)
{
	int64_t rev = published_revision(a);
	char *value = vk_record_heartbeat(a->sk, rev, vk_now(), a->host);
	char subject[128];
	jsPubAck *ack = NULL;
	natsStatus st;

	if (value == NULL)
		return -1;
	snprintf(subject, sizeof subject, "%shb", a->bus.kv_prefix);
	st = js_Publish(&ack, a->bus.js, subject, value, (int)strlen(value), NULL, NULL);
	jsPubAck_Destroy(ack);
	free(value);
	if (st != NATS_OK) {
		sd_log(LOG_WARNING, "cannot publish the heartbeat: %s", natsStatus_GetText(st));
		return -1;
	}
	a->next_hb_ms = sd_now_ms() + a->cfg->sync.heartbeat_interval * 1000;
	return 0;
}

/* A machine's acknowledgement, under a.<machine>: {"machine", "rev", "at"}. */
static void
acknowledged(struct authority *a, natsMsg *m)
{
	const char *entry = sd_msg_entry(&a->bus, m);
	char err[VK_ERRLEN], *json;

	if (entry == NULL || strncmp(entry, "a.", 2) != 0 || !vk_uuid_valid(entry + 2))
		return;
	if ((json = strndup(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m))) == NULL)
		return;
	/* the entry names the machine: its bus user may write only its own */
	if (vk_store_exec(a->db, "cannot record an acknowledgement", err, NULL,
	                  "INSERT INTO sync_machines (machine_id, revision, reported_at)"
	                  " SELECT ?1, json_extract(?2, '$.rev'), ?3"
	                  " WHERE json_valid(?2) AND json_extract(?2, '$.machine') = ?1"
	                  " AND typeof(json_extract(?2, '$.rev')) = 'integer'"
	                  " ON CONFLICT (machine_id) DO UPDATE SET revision = excluded.revision,"
	                  " reported_at = excluded.reported_at",
	                  "tti", entry + 2, json, vk_now()) != VK_OK)
		sd_log(LOG_WARNING, "%s", err);
	free(json);
}

/*
 * Records m and every message queued behind it in one transaction, so that
 * keyadm never waits behind the network; adds to *got those of a catch-up
 * consumer (got NULL: none is read), *got = pending after its last. -1 when
 * no transaction could be opened: the messages are freed all the same, and
 * each machine's next acknowledgement (six heartbeat intervals at most)
 * brings its revision again.
 */
static int
record_acks(struct authority *a, natsMsg *m, int *connected, int64_t *got, int64_t pending)
{
	char err[VK_ERRLEN];
	int rc = 0;

	if (vk_store_begin(a->db, err) != VK_OK) {
		sd_log(LOG_WARNING, "%s", err);
		rc = -1;
	}
	do {
		if (rc == 0)
			acknowledged(a, m);
		if (got != NULL && natsMsg_GetReply(m) != NULL && sd_msg_pending(m) >= 0 &&
		    (++*got, sd_msg_pending(m) == 0))
			*got = pending;
		natsMsg_Destroy(m);
	} while ((got == NULL || *got < pending) &&
	         (m = sd_queue_pop(&a->bus.q, 0, connected, NULL)) != NULL);
	if (rc == 0 && vk_store_commit(a->db, err) != VK_OK)
		sd_log(LOG_WARNING, "%s", err);
	return rc;
}

/*
 * Reads every acknowledgement the bucket holds (after a (re)connect): -1
 * when it could not, or the connection was made again meanwhile (a machine
 * acknowledges again at least every six heartbeat intervals, so a read that
 * stalls loses nothing for long). It waits for the bus with no transaction
 * open.
 */
static int
read_acks(struct authority *a)
{
	char deliver[160], err[512], name[64];
	int64_t pending, got = 0;
	int connected = 0;

	snprintf(deliver, sizeof deliver, "%s.acks", a->bus.inbox);
	snprintf(name, sizeof name, "vk-authority-a-%s", a->tag);
	if ((pending = sd_bus_consumer(&a->bus, name, "a.>", deliver, err, sizeof err)) < 0) {
		sd_log(LOG_WARNING, "cannot read the acknowledgements: %s", err);
		if (strstr(err, "Timeout") != NULL)
			sd_random_tag(a->tag); /* see catch_up() in machine.c */
		return -1;
	}
	while (got < pending && !sd_stop) {
		natsMsg *m = sd_queue_pop(&a->bus.q, 5000, &connected, NULL);

		if (m == NULL || record_acks(a, m, &connected, &got, pending) != 0)
			break;
	}
	sd_bus_consumer_done(&a->bus, name);
	return connected ? -1 : 0; /* one missed here comes again with the machine's next */
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

int
sd_authority(const struct vk_config *cfg, const char *store, int once)
{
	struct authority a;
	char err[VK_ERRLEN], subject[160], inbox[96];
	enum vk_fleet_role role;
	int64_t deadline = sd_now_ms() + ONCE_DEADLINE;
	int status = 1, catch_up = 1;

	memset(&a, 0, sizeof a);
	a.cfg = cfg;
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
	if ((a.sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL ||
	    vk_signing_key_load(cfg->sync.signing_key, a.sk, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", a.sk ? err : "out of memory");
		goto out;
	}
	sd_random_tag(a.tag);
	snprintf(inbox, sizeof inbox, "_INBOX.authority");
	if (sd_bus_open(&a.bus, &cfg->sync, "viamkey-syncd authority", inbox) != 0)
		goto out;
	snprintf(subject, sizeof subject, "%sa.>", a.bus.live_prefix);
	if (sd_bus_subscribe(&a.bus, subject, &a.acks) != 0)
		goto out;
	snprintf(subject, sizeof subject, "%s.acks", inbox);
	{
		natsSubscription *acks_inbox;

		if (sd_bus_subscribe(&a.bus, subject, &acks_inbox) != 0)
			goto out;
	}
	sd_log(LOG_INFO, "publishing store %s to bucket %s", store, cfg->sync.bucket);
	while (!sd_stop) {
		int connected = 0, n = 0;
		natsMsg *m;

		if (natsConnection_Status(a.bus.nc) == NATS_CONN_STATUS_CONNECTED &&
		    sd_now_ms() >= a.next_try_ms && ensure_bucket(&a) == 0) {
			if (catch_up && read_acks(&a) == 0)
				catch_up = 0;
			/* publish while there is something: a change committed or left from before
			 */
			while (!sd_stop && (n = publish_round(&a)) > 0)
				;
			if (n < 0) {
				back_off(&a);
			} else if (a.published > 0 || sd_now_ms() >= a.next_hb_ms) {
				if (heartbeat(&a) != 0) {
					back_off(&a);
				} else {
					a.retry_ms = 0;
					if (a.published > 0)
						sd_log(LOG_INFO,
						       "published %ld changes; revision %lld",
						       a.published,
						       (long long)published_revision(&a));
					a.published = 0;
					if (once &&
					    query_int(&a, "SELECT count(*) FROM sync_outbox") ==
					        0) {
						status = 0;
						break;
					}
				}
			}
		}
		if (once && sd_now_ms() > deadline) {
			sd_log(LOG_ERR, "--once: the bus did not take everything in %d s",
			       ONCE_DEADLINE / 1000);
			break;
		}
		if ((m = sd_queue_pop(&a.bus.q, POLL_MS, &connected, NULL)) != NULL)
			(void)record_acks(&a, m, &connected, NULL, 0);
		if (connected)
			catch_up = 1;
	}
out:
	sd_bus_close(&a.bus);
	sodium_free(a.sk);
	sqlite3_close(a.db);
	return status;
}
