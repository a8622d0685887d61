/*
 * machine.c - viamkey-syncd on a machine: follows its scopes (its
 * organization, location and machine) from the bus into its replica, and
 * acknowledges what it applied.
 *
 * Security rules for this file (SPEC §8, "What a machine MUST do"; the
 * replica's own are in replica.c, reading the bus again in catchup.c):
 *  1. On every (re)connect, every resync_interval, and when no heartbeat
 *     came for three intervals, every scope is read again (sd_reconcile).
 *  2. The revision acknowledged is a heartbeat's that came after
 *     everything before it, and only while every scope of the replica
 *     matches its head: a machine whose view is incomplete acknowledges
 *     nothing newer, and says what is missing.
 *  3. An acknowledgement never asks for an answer on a bus of format 2: it
 *     is a plain publish on the machine's own subject, which only its bus
 *     user may use; JetStream stores nothing a machine sends.
 *  4. What came while this machine was not connected reaches it only by
 *     reading the bus again, and that reading covers it only if the node
 *     that answered held the first heartbeat that came live on this
 *     connection (the authority puts each heartbeat in the bucket after
 *     every change it names). Until one has, a reading acknowledges only
 *     the heartbeat it met there, and live ones acknowledge nothing. A node
 *     that answers with an older heartbeat lags (nats-server before 2.9.17
 *     lets a node that has just restarted answer direct gets before it has
 *     caught up), or the bucket cannot store (no quorum): it is read again
 *     after the usual back-off. Connecting again would not help the
 *     second, and would lose what comes live meanwhile.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "fleet.h"
#include "machine.h"
#include "store.h"

#define RETRY_MIN_MS  1000
#define RETRY_MAX_MS  60000
#define FIRST_HB_MS   1000  /* how often a reconcile is tried while the bus has no heartbeat */
#define ACK_REFRESH   6     /* heartbeat intervals between acknowledgements that change nothing */
#define ONCE_DEADLINE 60000 /* ms --once tries before it gives up */
#define ACK_WAIT_MS   2000  /* for JetStream to confirm an acknowledgement (format 1's bus) */
#define STORED_MS     250   /* after a heartbeat came live, until the bucket holds it too */

/* ---- acknowledgements ---------------------------------------------------------- */

/*
 * Acknowledges the applied revision, with what the replica lacks if
 * anything: when either changed, and every ACK_REFRESH heartbeat intervals.
 * On a bus of format 1 it goes under a.<machine> in the bucket, and
 * JetStream confirms it; one it did not take is tried again a second later.
 */
static void
acknowledge(struct machine *m)
{
	char subject[160], body[512], error[sizeof m->error + 16] = "null";
	int64_t now = sd_now_ms();
	natsMsg *reply = NULL;
	natsStatus s;
	int sent;

	if ((m->applied_rev == m->acked_rev && strcmp(m->acked_error, m->error) == 0 &&
	     now - m->last_ack_ms < ACK_REFRESH * m->cfg->sync.heartbeat_interval * 1000) ||
	    now < m->next_ack_ms)
		return;
	if (m->error[0] != '\0') {
		size_t o = 0;

		/* the error is this daemon's own text: only quotes and backslashes to escape */
		error[o++] = '"';
		for (const char *p = m->error; *p != '\0' && o < sizeof error - 3; p++) {
			if (*p == '"' || *p == '\\')
				error[o++] = '\\';
			error[o++] = *p;
		}
		error[o++] = '"';
		error[o] = '\0';
	}
	snprintf(body, sizeof body,
	         "{\"machine\":\"%s\",\"rev\":%lld,\"at\":%lld,\"format\":%d,\"error\":%s}", m->id,
	         (long long)m->applied_rev, (long long)vk_now(), VK_FORMAT, error);
	if (m->consumers) {
		snprintf(subject, sizeof subject, "%sa.%s", m->bus.kv_prefix, m->id);
		s = natsConnection_RequestString(&reply, m->bus.nc, subject, body, ACK_WAIT_MS);
		sent = s == NATS_OK && natsMsg_GetData(reply) != NULL &&
		       strstr(natsMsg_GetData(reply), "\"error\"") == NULL;
		natsMsg_Destroy(reply);
	} else {
		/* rule 3 */
		snprintf(subject, sizeof subject, "%s%s", m->bus.ack_prefix, m->id);
		sent = sd_bus_publish(&m->bus, subject, body, strlen(body)) == 0;
	}
	if (sent) {
		m->acked_rev = m->applied_rev;
		snprintf(m->acked_error, sizeof m->acked_error, "%s", m->error);
		m->last_ack_ms = now;
	} else {
		m->next_ack_ms = now + 1000;
	}
}

/* ---- the loop --------------------------------------------------------------------- */

int
sd_replica_usable(sqlite3 *db, const char *path, char why[VK_ERRLEN])
{
	enum vk_fleet_role role;
	int64_t keys = 0;

	if (vk_fleet_role(db, &role, why) != VK_OK)
		return -1;
	if (role == VK_FLEET_AUTHORITY) {
		snprintf(why, VK_ERRLEN,
		         "store %s is the fleet's authority, not a replica: give another store"
		         " path",
		         path);
		return -1;
	}
	if (role != VK_FLEET_STANDALONE)
		return 0;
	(void)vk_store_query_int(db, "", why, &keys, "SELECT count(*) FROM keys", "");
	if (keys > 0) {
		snprintf(why, VK_ERRLEN,
		         "store %s holds keys of its own; a replica starts empty (move it aside,"
		         " or give another store path)",
		         path);
		return -1;
	}
	return 0;
}

static int
open_replica(struct machine *m, const char *path)
{
	enum vk_fleet_role role;
	char err[VK_ERRLEN];

	if (vk_store_open(path, VK_OPEN_INIT, 5000, &m->db, err) != VK_OK ||
	    vk_replica_open(m->db, m->id, &m->replica, err) != VK_OK ||
	    sd_replica_usable(m->db, path, err) != 0 || vk_fleet_role(m->db, &role, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	sd_replica_tune(m->db);
	if (role == VK_FLEET_STANDALONE) {
		if (vk_store_exec(m->db, "cannot make the store a replica", err, NULL,
		                  "INSERT INTO meta (name, value) VALUES ('" VK_META_ROLE
		                  "', 'replica') ON CONFLICT (name) DO UPDATE SET value ="
		                  " excluded.value",
		                  "") != VK_OK) {
			sd_log(LOG_ERR, "%s", err);
			return -1;
		}
		sd_log(LOG_INFO, "store %s is now a replica", path);
	}
	(void)vk_store_query_int(
	    m->db, "", err, &m->applied_rev,
	    "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name"
	    " = '" VK_META_APPLIED_REV "'), 0)",
	    "");
	return 0;
}

/* Rule 4: the first heartbeat that came live on this connection (m->beat). */
static void
first_heard(struct machine *m)
{
	int64_t at = sd_now_ms() + STORED_MS;

	m->first_live = m->beat;
	if (m->read.known && sd_beat_reached(&m->read, &m->first_live)) {
		m->sound = 1; /* the last reading met it already */
		return;
	}
	if (!m->need_reconcile || m->next_retry_ms > at)
		m->next_retry_ms = at;
	m->need_reconcile = 1;
}

/*
 * A new heartbeat came live, in its transaction: the revision it names is
 * recorded as applied once the view is complete (the loop acknowledges it
 * after the commit).
 */
static void
heard(struct machine *m, int64_t hb)
{
	char err[VK_ERRLEN];
	int64_t format = 1;

	m->last_hb_ms = sd_now_ms();
	(void)vk_store_query_int(m->db, "", err, &format,
	                         "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                         " WHERE name = '" VK_META_HEARTBEAT_FORMAT "'), 1)",
	                         "");
	if ((format >= 2) != m->heads) {
		/* the authority changed format: read everything the new way */
		m->heads = format >= 2;
		m->need_reconcile = 1;
		m->next_retry_ms = 0;
	}
	if (m->waiting_first_hb) {
		/* the authority's first: everything can be read now */
		m->need_reconcile = 1;
		m->next_retry_ms = 0;
		return;
	}
	if (m->need_reconcile || !m->sound)
		return;
	/* rule 2: everything before this heartbeat came before it on this connection */
	if (sd_complete(m)) {
		m->need_repair = 0;
		sd_set_applied(m, hb);
		sd_note_error(m, NULL);
	} else {
		for (int i = 0; i < SD_SCOPES; i++)
			if (m->scopes[i].name[0] != '\0' && !m->scopes[i].complete) {
				sd_note_error(m, m->scopes[i].why);
				break;
			}
		/* what the heads list that the live path did not bring is read directly */
		if (!m->need_repair)
			m->next_retry_ms = 0;
		m->need_repair = 1;
	}
}

/* After a reconcile that did not bring the replica in step: when to try again. */
static void
retry_later(struct machine *m, int rc)
{
	int64_t now = sd_now_ms();

	sd_commit(m);
	if (rc == 2)
		m->need_repair = 1; /* the live path may yet bring what the bus lacked */
	else
		m->need_reconcile = 1; /* 3: the node may catch up in a moment (rule 4) */
	if (rc == 1) {
		m->next_retry_ms =
		    now + FIRST_HB_MS; /* or at once, when the first heartbeat comes */
		return;
	}
	/* back off, with jitter, so that a fleet does not retry in step */
	m->next_retry_ms =
	    now + m->retry_ms / 2 + (int64_t)randombytes_uniform((uint32_t)m->retry_ms);
	m->retry_ms = m->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : m->retry_ms * 2;
	if (rc < 0)
		sd_note_error(m, "cannot bring the replica in step with the bus; retrying");
	else if (rc == 3)
		sd_log(LOG_WARNING, "the bus node answering holds a heartbeat older than one that"
		                    " came live on this connection (a node that lags)");
	sd_log(LOG_WARNING, "the replica is not in step with the bus; trying again in %lld ms",
	       (long long)(m->next_retry_ms - now));
	acknowledge(m); /* what is missing reaches sync status on the authority */
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
	m.metrics =
	    (struct sd_metrics){.path = cfg->sync.metrics_file, .role = "machine", .machine = m.id};
	if (m.id == NULL) {
		sd_log(LOG_ERR, "[machine] id is not set: a machine's daemon follows that machine");
		return 1;
	}
	if (open_replica(&m, store) != 0 || sd_trust_load(&m) != 0 ||
	    sd_events_open(&m.events, cfg, store, SD_EVENTS_MACHINE, &m.metrics) != 0)
		goto out;
	snprintf(name, sizeof name, "viamkey-syncd %s", m.id);
	snprintf(inbox, sizeof inbox, "_INBOX.%s", m.id);
	snprintf(m.deliver, sizeof m.deliver, "%s.cu", inbox);
	if (sd_bus_open(&m.bus, &cfg->sync, name, inbox) != 0)
		goto out;
	m.bus.q.check = sd_check_record; /* before any subscription delivers */
	m.bus.q.check_ctx = &m.ring;
	snprintf(subject, sizeof subject, "%shb", m.bus.live_prefix);
	if (sd_bus_subscribe(&m.bus, subject, &m.hb_sub) != 0 ||
	    sd_bus_subscribe(&m.bus, m.deliver, &m.catch_up_sub) != 0)
		goto out;
	if (!once)
		sd_events_watch(&m.events, &m.bus.q);
	sd_random_tag(m.tag);
	m.need_reconcile = 1;
	m.last_hb_ms = sd_now_ms();
	m.retry_ms = RETRY_MIN_MS;
	deadline = m.last_hb_ms + ONCE_DEADLINE;
	while (!sd_stop) {
		int64_t now = sd_now_ms(), hb, wait,
		        silent = 3 * cfg->sync.heartbeat_interval * 1000;
		int connected = 0, is_hb, rc;
		struct sd_item it;
		const char *entry;
		natsMsg *msg;

		if (sd_bus_closed(&m.bus)) {
			status = SD_RECONNECT;
			break;
		}
		if (m.reconnect) { /* identity.c: a new connection reads the new credentials */
			status = SD_RECONNECT;
			break;
		}
		if (now >= m.next_resync_ms || now - m.last_hb_ms > silent) {
			if (now - m.last_hb_ms > silent && !m.waiting_first_hb)
				sd_log(LOG_WARNING,
				       "no heartbeat for %lld s; reading everything again",
				       (long long)((now - m.last_hb_ms) / 1000));
			m.need_reconcile = 1;
			m.last_hb_ms = now; /* one reconcile per three silent intervals */
		}
		if ((m.need_reconcile || m.need_repair) && now >= m.next_retry_ms) {
			long before = m.applied;

			m.need_repair = 0;
			rc = sd_reconcile(&m);
			/*
			 * what it applied ends what it denies now, as a live change does
			 * (not with --once: the SIGKILL due after a SIGTERM would not come)
			 */
			if (m.applied != before && !once && sd_commit(&m) == 0)
				sd_sessions_tick(&m.events.sessions, m.db);
			if (rc == 0) {
				m.retry_ms = RETRY_MIN_MS;
				m.next_resync_ms = sd_now_ms() + cfg->sync.resync_interval * 1000;
				acknowledge(&m);
				if (once) {
					status = 0;
					break;
				}
			} else {
				retry_later(&m, rc);
			}
		}
		if (once && sd_now_ms() > deadline) {
			sd_log(LOG_ERR,
			       "--once: the replica could not be brought in step with the bus in"
			       " %d s",
			       ONCE_DEADLINE / 1000);
			break;
		}
		sd_commit(&m);
		sd_events_tick(&m.events, m.db, &m.bus);
		m.metrics.applied = (uint64_t)m.applied;
		sd_metrics_tick(&m.metrics, m.db, m.applied_rev);
		wait = m.need_reconcile || m.need_repair ? m.next_retry_ms - sd_now_ms()
		                                         : sd_events_wait_ms(&m.events);
		msg = sd_queue_wait(&m.bus.q, wait > 0 ? wait : 1, &connected, &it);
		if (connected) {
			/* the logins of the outage reach the authority before the reconcile */
			sd_events_connected(&m.events);
			sd_events_tick(&m.events, m.db, &m.bus);
			sd_view_reset(&m);
			m.need_reconcile = 1;
			m.next_retry_ms = 0;
			m.consumers =
			    0; /* the bus may have changed: read directly where it lets us */
		}
		if (!m.need_reconcile)
			acknowledge(&m); /* one the bus did not take, again */
		sd_trim(&m);
		if (msg == NULL)
			continue;
		entry = sd_msg_entry(&m.bus, msg);
		is_hb = entry != NULL && strcmp(entry, "hb") == 0;
		if (!sd_head_later(&m, &it, entry) &&
		    (sd_entry_lazy(entry) ? sd_begin_lazy(&m) : sd_begin(&m)) == 0) {
			int applied;

			if (is_hb)
				sd_heads_take(&m); /* before the heartbeat that compares them */
			applied = sd_apply(&m, &it, entry, 0, &hb) > 0;
			if (is_hb && m.beat.known && !m.first_live.known)
				first_heard(&m);
			if (hb >= 0)
				heard(&m, hb); /* in the heartbeat's transaction */
			/* a change in force ends what it denies now, not at the next tick */
			if (sd_commit(&m) == 0 && applied && hb < 0)
				sd_sessions_tick(&m.events.sessions, m.db);
			if (hb >= 0 && !m.need_reconcile)
				acknowledge(&m);
		}
		natsMsg_Destroy(msg);
	}
out:
	sd_commit(&m);
	for (int i = 0; i < SD_SCOPES; i++)
		sd_head_forget(&m, i);
	sd_events_close(&m.events);
	sd_bus_close(&m.bus);
	vk_replica_close(m.replica); /* its statements, before the connection they belong to */
	if (m.db != NULL) {
		vk_store_checkpoint(m.db, 1);
		sqlite3_db_release_memory(m.db);
		sqlite3_close(m.db);
	}
	return status;
}
