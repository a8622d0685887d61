/*
 * machine.c - viamkey-syncd on a machine: follows its scopes (its
 * organization, location and machine) from the bus into its replica.
 *
 * Security rules for this file (SPEC §8, "What a machine MUST do"):
 *  1. A record is applied only after vk_record_verify() accepts it with
 *     [sync] authority_key; anything else is dropped and logged
 *     (LOG_AUTHPRIV, warning).
 *  2. and 3. vk_replica_apply() keeps revisions growing and holds a key
 *     only while it covers this machine.
 *  4. Each message is applied in one durable transaction (synchronous =
 *     FULL), or a batch of them during a catch-up: a login sees the state
 *     before or after, and what was applied survives a power cut.
 *  5. On every (re)connect, every resync_interval, and when no heartbeat
 *     came for three intervals, every scope is read again from the bus
 *     (a catch-up consumer per scope). A key leaves only on a signed
 *     statement; an entry missing from the bus removes nothing.
 *  6. A heartbeat newer than the last is recorded in the replica. The
 *     revision acknowledged is a heartbeat's that came after everything
 *     before it: the one read at the start of a complete catch-up, or a
 *     live one while no catch-up or reconnect is pending.
 */
#include "autoconfig.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "fleet.h"
#include "record.h"
#include "store.h"
#include "syncd.h"

#define BATCH         1000  /* records per transaction while catching up */
#define CATCH_UP_WAIT 15000 /* ms without a message before a catch-up is given up */
#define RETRY_MIN_MS  1000
#define RETRY_MAX_MS  60000
#define ACK_REFRESH   6     /* heartbeat intervals between acknowledgements that change nothing */
#define ONCE_DEADLINE 60000 /* ms --once tries before it gives up */
#define ACK_WAIT_MS   2000  /* for JetStream to confirm an acknowledgement */
#define CREATE_TRIES  5     /* catch-up consumers created in a row after timeouts */
#define SCOPES        3
#define TRIM_DELAY    2000 /* ms after a catch-up before its memory goes back to the system */

struct machine {
	const struct vk_config *cfg;
	sqlite3 *db;
	struct vk_replica *replica;
	struct sd_bus bus;
	unsigned char pk[VK_PUBLIC_KEY_BYTES];
	const char *id;
	char scopes[SCOPES][VK_ENTRY_MAX]; /* subscribed live, "m.<id>", "l.<id>", "o.<id>" */
	natsSubscription *live[SCOPES];
	natsSubscription *hb_sub, *catch_up_sub;
	char deliver[160];
	int in_txn;
	int64_t applied_rev, acked_rev;
	int64_t last_hb_ms, last_ack_ms, next_ack_ms, next_resync_ms, retry_ms, next_retry_ms;
	int64_t trim_at_ms; /* when to give back what the last catch-up's messages took, or 0 */
	char tag[17];       /* in the catch-up consumers' names: random, new after a timeout */
	int need_reconcile, was_reconnected;
	long applied;
};

/* ---- the replica -------------------------------------------------------------- */

static int
begin(struct machine *m)
{
	char err[VK_ERRLEN];

	if (m->in_txn)
		return 0;
	if (vk_store_begin(m->db, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		m->need_reconcile = 1; /* the message is lost: read everything again */
		return -1;
	}
	m->in_txn = 1;
	return 0;
}

static int
commit(struct machine *m)
{
	char err[VK_ERRLEN];

	if (!m->in_txn)
		return 0;
	m->in_txn = 0;
	if (vk_store_commit(m->db, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		m->need_reconcile = 1; /* what it held is lost: read everything again */
		return -1;
	}
	return 0;
}

static void
set_meta(struct machine *m, const char *name, const char *text, int64_t value)
{
	char err[VK_ERRLEN];

	if (vk_store_exec(m->db, "cannot record the replica's state", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES (?1, coalesce(?2, ?3))"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                  "tti", name, text, value) != VK_OK)
		sd_log(LOG_ERR, "%s", err);
}

/* Records the daemon's last error (NULL: none) for keyadm sync status. */
static void
note_error(struct machine *m, const char *what)
{
	char err[VK_ERRLEN];

	if (what == NULL)
		(void)vk_store_exec(m->db, "", err, NULL,
		                    "DELETE FROM meta WHERE name = '" VK_META_SYNC_ERROR "'", "");
	else
		set_meta(m, VK_META_SYNC_ERROR, what, 0);
}

/*
 * Verifies a message's signature, in nats.c's delivery thread (the queue's
 * check): it->json is then the signed record. A message that fails is
 * verified again by apply(), on the main thread, for the reason.
 */
static void
check_record(const void *pk, struct sd_item *it)
{
	char err[VK_ERRLEN];

	if (vk_record_verify(pk, natsMsg_GetData(it->msg), (size_t)natsMsg_GetDataLength(it->msg),
	                     &it->json, &it->json_len, err) != VK_OK)
		it->json = NULL;
}

/*
 * Applies one message from the bus, the value of `entry` (NULL: not the
 * bucket's), inside the open transaction: verified by the queue's check,
 * or here. *hb is the revision of a newer heartbeat it carried, or -1.
 */
static void
apply(struct machine *m, const struct sd_item *it, const char *entry, int64_t *hb)
{
	const char *json = it->json;
	size_t json_len = it->json_len;
	struct vk_apply_result r;
	char err[VK_ERRLEN];
	vk_rc rc;

	*hb = -1;
	if (entry == NULL || strncmp(entry, "a.", 2) == 0)
		return; /* not a record: another machine's acknowledgement, say */
	if (json == NULL && vk_record_verify(m->pk, natsMsg_GetData(it->msg),
	                                     (size_t)natsMsg_GetDataLength(it->msg), &json,
	                                     &json_len, err) != VK_OK) {
		syslog(LOG_AUTHPRIV | LOG_WARNING, "dropped the value of %s: %s", entry, err);
		sd_log(LOG_WARNING, "dropped the value of %s: %s", entry, err);
		return;
	}
	if ((rc = vk_replica_apply(m->replica, json, json_len, vk_now(), &r, err)) != VK_OK) {
		sd_log(LOG_WARNING, "could not apply %s: %s", entry, err);
		/*
		 * A signed record the replica could not store (busy, disk full)
		 * is read again; no revision is acknowledged until it is. One
		 * that cannot be parsed never will be.
		 */
		if (rc != VK_ERR_USAGE)
			m->need_reconcile = 1;
		return;
	}
	if (r.what == VK_APPLIED) {
		m->applied++;
		sd_log(LOG_DEBUG, "applied %s %s revision %lld from %s", r.kind, r.id,
		       (long long)r.rev, entry);
	} else if (r.what == VK_APPLIED_HEARTBEAT) {
		*hb = r.rev;
	}
	if (r.moved)
		m->need_reconcile = 1; /* this machine's scopes changed */
}

/* ---- acknowledgements ---------------------------------------------------------- */

/*
 * Acknowledges the applied revision under a.<machine>: when it changed, and
 * every ACK_REFRESH heartbeat intervals. JetStream confirms each one; one
 * it did not take (a leader election, a dead node) is tried again a second
 * later, until it is.
 */
static void
acknowledge(struct machine *m)
{
	char subject[160], body[160];
	int64_t now = sd_now_ms();
	natsMsg *reply = NULL;
	natsStatus s;

	if ((m->applied_rev == m->acked_rev &&
	     now - m->last_ack_ms < ACK_REFRESH * m->cfg->sync.heartbeat_interval * 1000) ||
	    now < m->next_ack_ms)
		return;
	snprintf(subject, sizeof subject, "%sa.%s", m->bus.kv_prefix, m->id);
	snprintf(body, sizeof body, "{\"machine\":\"%s\",\"rev\":%lld,\"at\":%lld}", m->id,
	         (long long)m->applied_rev, (long long)vk_now());
	s = natsConnection_RequestString(&reply, m->bus.nc, subject, body, ACK_WAIT_MS);
	if (s == NATS_OK && natsMsg_GetData(reply) != NULL &&
	    strstr(natsMsg_GetData(reply), "\"error\"") == NULL) {
		m->acked_rev = m->applied_rev;
		m->last_ack_ms = now;
	} else {
		m->next_ack_ms = now + 1000;
	}
	natsMsg_Destroy(reply);
}

static void
set_applied(struct machine *m, int64_t rev)
{
	if (rev <= m->applied_rev)
		return;
	m->applied_rev = rev;
	set_meta(m, VK_META_APPLIED_REV, NULL, rev);
}

/* ---- scopes and subscriptions -------------------------------------------------- */

/* Subscribes the live path of every scope the replica knows; 1 when that changed them. */
static int
follow_scopes(struct machine *m)
{
	char scopes[SCOPES][VK_ENTRY_MAX], err[VK_ERRLEN], subject[VK_ENTRY_MAX + 128];
	int n, changed = 0;

	if (vk_replica_scopes(m->replica, scopes, &n, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return 0;
	}
	for (int i = 0; i < SCOPES; i++) {
		const char *want = i < n ? scopes[i] : "";

		if (strcmp(m->scopes[i], want) == 0)
			continue;
		changed = 1;
		sd_bus_unsubscribe(&m->bus, m->live[i]);
		m->live[i] = NULL;
		snprintf(m->scopes[i], sizeof m->scopes[i], "%.*s", VK_ENTRY_MAX - 1, want);
		if (want[0] == '\0')
			continue;
		snprintf(subject, sizeof subject, "%s%.*s.>", m->bus.live_prefix, VK_ENTRY_MAX - 1,
		         want);
		if (sd_bus_subscribe(&m->bus, subject, &m->live[i]) != 0)
			m->scopes[i][0] = '\0';
		else
			sd_log(LOG_INFO, "following %s", want);
	}
	return changed;
}

/*
 * Reads the latest value of every entry matching filter through a
 * catch-up consumer, applying each (and whatever arrives live meanwhile).
 * 0, or -1 when the bus did not answer.
 */
static int
catch_up(struct machine *m, const char *filter, char letter)
{
	char name[80], err[512];
	int64_t pending, got = 0, hb;
	size_t namelen;

	for (int tries = 1;; tries++) {
		snprintf(name, sizeof name, "vk-%s-%c-%s", m->id, letter, m->tag);
		namelen = strlen(name);
		pending = sd_bus_consumer(&m->bus, name, filter, m->deliver, err, sizeof err);
		if (pending >= 0)
			break;
		sd_log(LOG_WARNING, "cannot read %s from the bus: %s", filter, err);
		/*
		 * After any error but a timeout the name is kept, so that
		 * retries leave no orphans. A timeout is what a consumer
		 * placed on a dead bus node gives (nats-server before 2.9.12
		 * places one there; Debian 12 ships 2.9.10): nothing can
		 * delete it until the node returns (then its inactive
		 * threshold does), and another try, with another name, is
		 * likely to land on a live node, so it is made at once.
		 */
		if (strstr(err, "Timeout") == NULL)
			return -1;
		sd_random_tag(m->tag);
		if (tries == CREATE_TRIES || sd_stop ||
		    natsConnection_Status(m->bus.nc) != NATS_CONN_STATUS_CONNECTED)
			return -1;
	}
	while (got < pending && !sd_stop) {
		int connected = 0;
		struct sd_item it;
		natsMsg *msg = sd_queue_pop(&m->bus.q, CATCH_UP_WAIT, &connected, &it);
		const char *reply;

		if (connected)
			m->was_reconnected = 1;
		if (msg == NULL) {
			sd_log(LOG_WARNING, "reading %s from the bus stalled after %lld of %lld",
			       filter, (long long)got, (long long)pending);
			sd_bus_consumer_done(&m->bus, name);
			return -1;
		}
		reply = natsMsg_GetReply(msg);
		if (begin(m) == 0)
			apply(m, &it, sd_msg_entry(&m->bus, msg), &hb);
		/* this consumer's messages name it in their reply subject */
		if (reply != NULL && strstr(reply, name) != NULL &&
		    reply[strstr(reply, name) - reply + (ptrdiff_t)namelen] == '.') {
			got++;
			if (sd_msg_pending(msg) == 0)
				got = pending;
		}
		natsMsg_Destroy(msg);
		if (got % BATCH == 0)
			commit(m);
	}
	commit(m);
	sd_bus_consumer_done(&m->bus, name);
	return sd_stop ? -1 : 0;
}

/*
 * The latest heartbeat, read straight from the stream (no consumer:
 * nats-server 2.9.10 may place one on a dead node), verified and applied.
 * A node that lags may answer with an older one: the revision then
 * acknowledged is older than it could be, never newer. 0, or -1.
 */
static int
read_heartbeat(struct machine *m)
{
	struct sd_item it = {0};
	char err[512];
	int64_t hb;

	if (sd_bus_last(&m->bus, "hb", &it.msg, err, sizeof err) != 0) {
		sd_log(LOG_WARNING, "cannot read hb from the bus: %s", err);
		return -1;
	}
	if (it.msg != NULL && begin(m) == 0) {
		apply(m, &it, "hb", &hb);
		commit(m);
	}
	natsMsg_Destroy(it.msg);
	return 0;
}

/*
 * Rule 5: reads the heartbeat, then every scope, again; repeats while
 * reading changed this machine's scopes (it moved, or its own record just
 * arrived). On success acknowledges the heartbeat read first.
 */
static int
reconcile(struct machine *m)
{
	static const char letters[SCOPES] = {'m', 'l', 'o'};
	int64_t hb_rev = 0, before = m->applied, started = sd_now_ms();
	char filter[VK_ENTRY_MAX + 4], err[VK_ERRLEN];
	int rounds = 0;

	m->need_reconcile = 0;
	m->was_reconnected = 0;
	follow_scopes(m);
	/* the heartbeat first: it was published after every change up to its revision */
	if (read_heartbeat(m) != 0 ||
	    vk_store_query_int(m->db, "cannot read the heartbeat", err, &hb_rev,
	                       "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name"
	                       " = '" VK_META_HEARTBEAT_REV "'), 0)",
	                       "") != VK_OK)
		return -1;
	do {
		m->need_reconcile = 0;
		for (int i = 0; i < SCOPES; i++) {
			if (m->scopes[i][0] == '\0')
				continue;
			snprintf(filter, sizeof filter, "%s.>", m->scopes[i]);
			if (catch_up(m, filter, letters[i]) != 0)
				return -1;
		}
	} while ((follow_scopes(m) || m->need_reconcile) && ++rounds < 4);
	if (m->was_reconnected || m->need_reconcile)
		return -1; /* something may have been missed or lost meanwhile: again */
	vk_store_checkpoint(m->db, 1);
	sqlite3_db_release_memory(m->db);
	m->trim_at_ms = sd_now_ms() + TRIM_DELAY;
	set_applied(m, hb_rev);
	note_error(m, NULL);
	sd_log(LOG_INFO,
	       "replica in step with the bus at revision %lld (%ld changes applied in %lld ms)",
	       (long long)m->applied_rev, m->applied - before, (long long)(sd_now_ms() - started));
	acknowledge(m);
	return 0;
}

/* ---- the loop --------------------------------------------------------------------- */

static int
open_replica(struct machine *m, const char *path)
{
	enum vk_fleet_role role;
	char err[VK_ERRLEN];

	if (vk_store_open(path, VK_OPEN_INIT, 5000, &m->db, err) != VK_OK ||
	    vk_replica_open(m->db, m->id, &m->replica, err) != VK_OK ||
	    vk_fleet_role(m->db, &role, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	if (role == VK_FLEET_AUTHORITY) {
		sd_log(LOG_ERR, "store %s is the fleet's authority, not a replica", path);
		return -1;
	}
	/* every commit reaches the disk before it counts: an applied revocation stays applied */
	(void)sqlite3_exec(m->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	if (role == VK_FLEET_STANDALONE) {
		int64_t keys = 0;

		(void)vk_store_query_int(m->db, "", err, &keys, "SELECT count(*) FROM keys", "");
		if (keys > 0) {
			sd_log(LOG_ERR,
			       "store %s holds keys of its own; a replica starts empty (move it"
			       " aside, or give the daemon another [store] path)",
			       path);
			return -1;
		}
		set_meta(m, VK_META_ROLE, "replica", 0);
		sd_log(LOG_INFO, "store %s is now a replica", path);
	}
	(void)vk_store_query_int(
	    m->db, "", err, &m->applied_rev,
	    "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name"
	    " = '" VK_META_APPLIED_REV "'), 0)",
	    "");
	return 0;
}

int
sd_machine(const struct vk_config *cfg, const char *store, int once)
{
	struct machine m;
	char name[96], inbox[64], subject[256];
	int64_t deadline;
	int status = 1;

	memset(&m, 0, sizeof m);
	m.cfg = cfg;
	m.id = cfg->machine_id;
	if (m.id == NULL) {
		sd_log(LOG_ERR, "[machine] id is not set: a machine's daemon follows that machine");
		return 1;
	}
	if (vk_public_key_parse(cfg->sync.authority_key, m.pk) != 0) {
		sd_log(LOG_ERR, "[sync] authority_key is not set or not a public key: records "
		                "could not be verified");
		return 1;
	}
	if (open_replica(&m, store) != 0)
		goto out;
	snprintf(name, sizeof name, "viamkey-syncd %s", m.id);
	snprintf(inbox, sizeof inbox, "_INBOX.%s", m.id);
	snprintf(m.deliver, sizeof m.deliver, "%s.cu", inbox);
	if (sd_bus_open(&m.bus, &cfg->sync, name, inbox) != 0)
		goto out;
	m.bus.q.check = check_record; /* before any subscription delivers */
	m.bus.q.check_ctx = m.pk;
	snprintf(subject, sizeof subject, "%shb", m.bus.live_prefix);
	if (sd_bus_subscribe(&m.bus, subject, &m.hb_sub) != 0 ||
	    sd_bus_subscribe(&m.bus, m.deliver, &m.catch_up_sub) != 0)
		goto out;
	sd_random_tag(m.tag);
	m.need_reconcile = 1;
	m.last_hb_ms = sd_now_ms();
	m.retry_ms = RETRY_MIN_MS;
	deadline = m.last_hb_ms + ONCE_DEADLINE;
	while (!sd_stop) {
		int64_t now = sd_now_ms(), hb, wait;
		int connected = 0;
		struct sd_item it;
		natsMsg *msg;

		if (now >= m.next_resync_ms ||
		    now - m.last_hb_ms > 3 * cfg->sync.heartbeat_interval * 1000) {
			if (now - m.last_hb_ms > 3 * cfg->sync.heartbeat_interval * 1000)
				sd_log(LOG_WARNING,
				       "no heartbeat for %lld s; reading everything again",
				       (long long)((now - m.last_hb_ms) / 1000));
			m.need_reconcile = 1;
			m.last_hb_ms = now; /* one reconcile per three silent intervals */
		}
		if (m.need_reconcile && now >= m.next_retry_ms) {
			int done = reconcile(&m);

			now = sd_now_ms(); /* a back-off counts from the end of the try */
			if (done == 0) {
				m.retry_ms = RETRY_MIN_MS;
				m.next_resync_ms = now + cfg->sync.resync_interval * 1000;
				if (once) {
					status = 0;
					break;
				}
			} else {
				commit(&m);
				m.need_reconcile = 1;
				/* back off, with jitter, so that a fleet does not retry in step */
				m.next_retry_ms =
				    now + m.retry_ms / 2 +
				    (int64_t)randombytes_uniform((uint32_t)m.retry_ms);
				m.retry_ms =
				    m.retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : m.retry_ms * 2;
				note_error(
				    &m, "cannot bring the replica in step with the bus; retrying");
				sd_log(LOG_WARNING,
				       "cannot bring the replica in step with the bus; retrying in "
				       "%lld ms",
				       (long long)(m.next_retry_ms - now));
			}
		}
		if (once && sd_now_ms() > deadline) {
			sd_log(LOG_ERR,
			       "--once: the replica could not be brought in step with the bus in"
			       " %d s",
			       ONCE_DEADLINE / 1000);
			break;
		}
		wait = m.need_reconcile ? m.next_retry_ms - sd_now_ms() : 1000;
		msg = sd_queue_pop(&m.bus.q, wait > 0 ? wait : 1, &connected, &it);
		if (connected) {
			m.need_reconcile = 1;
			m.next_retry_ms = 0;
		}
		if (!m.need_reconcile)
			acknowledge(&m); /* one the bus did not take, again */
		if (m.trim_at_ms != 0 && sd_now_ms() >= m.trim_at_ms) {
			/*
			 * A large catch-up queued its messages faster than they
			 * were applied; nats.c frees them on its own thread, after
			 * they were. Once it has, the heap goes back to the system
			 * (a scope of 100,000 keys: 105 MB resident, then 12).
			 */
			malloc_trim(0);
			m.trim_at_ms = 0;
		}
		if (msg == NULL)
			continue;
		if (begin(&m) == 0) {
			apply(&m, &it, sd_msg_entry(&m.bus, msg), &hb);
			commit(&m);
			if (hb >= 0) {
				m.last_hb_ms = sd_now_ms();
				/* everything before this heartbeat came before it on this
				 * connection */
				if (!m.need_reconcile)
					set_applied(&m, hb);
				acknowledge(&m);
			}
		}
		natsMsg_Destroy(msg);
	}
out:
	commit(&m);
	sd_bus_close(&m.bus);
	vk_replica_close(m.replica); /* its statements, before the connection they belong to */
	if (m.db != NULL) {
		vk_store_checkpoint(m.db, 1);
		sqlite3_close(m.db);
	}
	return status;
}
