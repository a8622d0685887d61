/*
 * standby.c - viamkey-syncd on a standby (SPEC §10): a full copy of what
 * the authority publishes, every scope and the machines'
 * acknowledgements, kept in step continuously; and its promotion, when
 * keyadm authority promote asks for it, to the fleet's authority.
 *
 * Security rules for this file:
 *  1. The copy believes what a machine believes (trust.h): only the
 *     authority of the highest certified epoch, so a standby is never ahead
 *     of, nor behind, the machines in whom it trusts.
 *  2. A promotion takes the authority lease by compare-and-swap before it
 *     changes anything, so that of two standbys promoted at once exactly
 *     one wins, and the other publishes nothing; the store becomes the
 *     authority in one transaction, with everything to be published again
 *     under the standby's own certified epoch, which must be above the
 *     fleet's, by a certificate of the root version the fleet holds (one a
 *     machine would take).
 *  3. Cut short anywhere, a promotion is taken up again where it stopped:
 *     the request stays until it is answered, and a lease already taken by
 *     this standby is its own. The store becomes the authority and the
 *     answer "ok" is written in one transaction.
 *  4. A promotion starts from a whole read of the bus made after the
 *     request was seen: whatever reached the bus before is in the store.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duration.h"
#include "fleet.h"
#include "machine.h"
#include "signer.h"
#include "store.h"
#include "txn.h"

#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000
#define LOOK_MS      500 /* how often a request for promotion is looked for */

/* The answer keyadm authority promote waits for, when it is why not. */
static void
answer(struct machine *m, const char *result)
{
	char err[VK_ERRLEN];

	if (vk_store_exec(m->db, "cannot answer the promotion", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" VK_META_PROMOTED "', ?1)"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value;",
	                  "t", result) != VK_OK ||
	    vk_store_exec(m->db, "cannot answer the promotion", err, NULL,
	                  "DELETE FROM meta WHERE name = '" VK_META_PROMOTE "'", "") != VK_OK)
		sd_log(LOG_ERR, "%s", err);
	sd_log(LOG_WARNING, "promotion: %s", result);
}

/*
 * The store becomes the authority (rule 2): what it followed becomes what
 * it published, its revision the newest it saw, and everything is queued to
 * be published again in its own epoch; one transaction.
 */
static int
become_authority(struct machine *m, const struct vk_signer *sig, const char *host)
{
	struct vk_txn t = {.db = m->db, .actor = "viamkey-syncd", .now = vk_now(), .authority = 1};
	char err[VK_ERRLEN];

	if (vk_store_begin(m->db, err) != VK_OK)
		goto fail;
	if (vk_store_exec(m->db, "cannot promote the store", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" VK_META_ROLE "', 'authority'),"
	                  " ('" VK_META_AUTHORITY "', ?1), ('" VK_META_REVISION "', (SELECT max(r)"
	                  " FROM (SELECT coalesce(max(rev), 0) AS r FROM sync_entries UNION ALL"
	                  " SELECT coalesce(max(rev), 0) FROM sync_held UNION ALL SELECT"
	                  " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name = "
	                  "'" VK_META_HEARTBEAT_REV "'), 0))))"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                  "t", host) != VK_OK ||
	    vk_store_exec(
	        m->db, "cannot promote the store", err, NULL,
	        "DELETE FROM sync_published; DELETE FROM sync_pages; DELETE FROM sync_dirty",
	        "") != VK_OK ||
	    /* every entry it saw, record or tombstone, as if it had published it */
	    vk_store_exec(m->db, "cannot promote the store", err, NULL,
	                  "INSERT INTO sync_published (kind, id, entry, rev, tomb)"
	                  " SELECT CASE WHEN substr(entry, 39, 3) = '.k.' THEN 'key'"
	                  " WHEN substr(entry, 1, 1) = 'o' THEN 'organization'"
	                  " WHEN substr(entry, 1, 1) = 'l' THEN 'location' ELSE 'machine' END,"
	                  " CASE WHEN substr(entry, 39, 3) = '.k.' THEN substr(entry, 42) ELSE"
	                  " substr(entry, 3, 36) END, entry, rev, tomb FROM sync_entries"
	                  " WHERE substr(entry, 39, 3) = '.k.' OR substr(entry, 39) = '.t'",
	                  "") != VK_OK ||
	    vk_txn_changed_all(&t, err) != VK_OK ||
	    vk_txn_event(&t, "authority.promote", NULL, err,
	                 "this standby became the authority, epoch %lld",
	                 (long long)sig->epoch) != VK_OK ||
	    /* keyadm's answer, with the change it answers for (rule 3) */
	    vk_store_exec(m->db, "cannot promote the store", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" VK_META_PROMOTED "', 'ok')"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value;"
	                  " DELETE FROM meta WHERE name = '" VK_META_PROMOTE "'",
	                  "") != VK_OK ||
	    vk_store_commit(m->db, err) != VK_OK) {
		vk_store_rollback(m->db);
		goto fail;
	}
	return 0;
fail:
	sd_log(LOG_ERR, "%s", err);
	return -1;
}

/* Rule 2: the lease, then the store. 1 promoted, 0 refused (answered), -1 try again. */
static int
promote(struct machine *m, const char *how)
{
	struct vk_signer sig;
	struct sd_lease lease;
	struct vk_cert c;
	char err[512], host[256], holder[320], why[600];
	int64_t until;
	int rc = -1, taken;

	if (gethostname(host, sizeof host - 1) != 0)
		snprintf(host, sizeof host, "unknown");
	host[sizeof host - 1] = '\0';
	if (vk_signer_load(m->db, m->cfg->sync.signing_key, &sig, err) != VK_OK) {
		snprintf(why, sizeof why, "refused: %s", err);
		answer(m, why);
		return 0;
	}
	sd_lease_holder(host, sig.pk, holder, sizeof holder);
	if (sig.cert == NULL ||
	    vk_cert_verify(m->trust.root, sig.cert, strlen(sig.cert), &c) != 0 ||
	    c.root != m->trust.root_version) {
		snprintf(why, sizeof why,
		         "refused: this standby's certificate is not signed by the fleet's root"
		         " version %lld; certify it again with that root key",
		         (long long)m->trust.root_version);
		answer(m, why);
		rc = 0;
		goto out;
	}
	if (sig.epoch <= m->trust.epoch) {
		snprintf(why, sizeof why,
		         "refused: this standby's certificate is for epoch %lld, not above the"
		         " fleet's %lld; certify it again (keyadm authority certify)",
		         (long long)sig.epoch, (long long)m->trust.epoch);
		answer(m, why);
		rc = 0;
		goto out;
	}
	if (sd_lease_read(&m->bus, m->db, &lease, err, sizeof err) != 0) {
		sd_log(LOG_WARNING, "promotion: cannot read the authority lease: %s", err);
		goto out;
	}
	/* rule 3: a lease this standby took already is its own */
	if (lease.present && strcmp(lease.holder, holder) != 0) {
		if (lease.epoch >= sig.epoch) {
			snprintf(why, sizeof why,
			         "refused: the authority lease is held by %s, epoch %lld",
			         lease.holder, (long long)lease.epoch);
			answer(m, why);
			rc = 0;
			goto out;
		}
		if (strcmp(how, "force") != 0 && lease.until > vk_now()) {
			snprintf(why, sizeof why,
			         "refused: the authority lease is held by %s until %lld s from now;"
			         " wait, or promote --force when that host is down",
			         lease.holder, (long long)(lease.until - vk_now()));
			answer(m, why);
			rc = 0;
			goto out;
		}
	}
	until = vk_now() + 3 * m->cfg->sync.heartbeat_interval;
	taken = sd_lease_take(&m->bus, sig.sk, &lease, holder, sig.epoch, until, err, sizeof err);
	if (taken == 1) {
		(void)sd_lease_read(&m->bus, m->db, &lease, err, sizeof err);
		snprintf(why, sizeof why, "refused: %s took the authority lease first",
		         lease.present ? lease.holder : "another host");
		answer(m, why);
		rc = 0;
		goto out;
	}
	if (taken < 0) {
		sd_log(LOG_WARNING, "promotion: %s", err);
		goto out;
	}
	if (become_authority(m, &sig, host) != 0)
		goto out;
	sd_log(LOG_INFO, "promotion: ok");
	rc = 1;
out:
	vk_signer_free(&sig);
	return rc;
}

/* The request of keyadm authority promote ("force" or "wait"), or none. */
static int
requested(struct machine *m, char how[16])
{
	char err[VK_ERRLEN];
	sqlite3_stmt *st;
	int found = 0;

	how[0] = '\0';
	if (vk_store_prepare(m->db, "", err, &st,
	                     "SELECT value FROM meta WHERE name = '" VK_META_PROMOTE "'",
	                     "") != VK_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
		snprintf(how, 16, "%s", (const char *)sqlite3_column_text(st, 0));
		found = 1;
	}
	sqlite3_finalize(st);
	return found;
}

int
sd_standby(const struct vk_config *cfg, const char *store, int once)
{
	struct machine m;
	enum vk_fleet_role role;
	char err[VK_ERRLEN], inbox[64], subject[256], how[16];
	int64_t next_look = 0;
	int status = 1, promoted = 0;
	/* rule 4: no request; one seen, the bus to be read; read since */
	enum { ASKED_NOT, ASKED, ASKED_READ } step = ASKED_NOT;

	memset(&m, 0, sizeof m);
	m.cfg = cfg;
	m.id = "standby"; /* names its consumers; a standby is no machine */
	m.metrics = (struct sd_metrics){.path = cfg->sync.metrics_file, .role = "standby"};
	m.full = 1;
	m.retry_ms = RETRY_MIN_MS;
	if (cfg->sync.root_key == NULL) {
		sd_log(LOG_ERR, "a standby needs [sync] root_key: it trusts what machines trust");
		return 1;
	}
	if (vk_store_open(store, VK_OPEN_ADMIN, 5000, &m.db, err) != VK_OK ||
	    vk_fleet_role(m.db, &role, err) != VK_OK ||
	    vk_replica_open(m.db, NULL, &m.replica, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		goto out;
	}
	if (role != VK_FLEET_STANDBY) {
		sd_log(LOG_ERR, "store %s is not a standby (keyadm authority init --standby)",
		       store);
		goto out;
	}
	sd_replica_tune(m.db);
	if (sd_trust_load(&m) != 0 ||
	    sd_events_open(&m.events, cfg, store, SD_EVENTS_MACHINE, &m.metrics) != 0)
		goto out;
	sd_random_tag(m.tag);
	snprintf(inbox, sizeof inbox, "_INBOX.standby-%s", m.tag);
	snprintf(m.deliver, sizeof m.deliver, "%s.cu", inbox);
	if (sd_bus_open(&m.bus, &cfg->sync, "viamkey-syncd standby", inbox) != 0)
		goto out;
	m.bus.q.check = sd_check_record;
	m.bus.q.check_ctx = &m.ring;
	snprintf(subject, sizeof subject, "%s>", m.bus.live_prefix);
	if (sd_bus_subscribe(&m.bus, subject, &m.hb_sub) != 0 ||
	    sd_bus_subscribe(&m.bus, m.deliver, &m.catch_up_sub) != 0 ||
	    sd_acks_subscribe(&m.bus) != 0)
		goto out;
	m.need_reconcile = 1;
	m.last_hb_ms = sd_now_ms();
	sd_log(LOG_INFO, "following everything the authority publishes into standby %s", store);
	while (!sd_stop) {
		int64_t now = sd_now_ms(), hb = -1,
		        silent = 3 * cfg->sync.heartbeat_interval * 1000;
		int connected = 0, rc;
		struct sd_item it;
		natsMsg *msg;

		if (sd_bus_closed(&m.bus)) {
			status = SD_RECONNECT;
			break;
		}
		if (now >= next_look) {
			next_look = now + LOOK_MS;
			/* rule 4: a request is answered after a read of the bus that followed it */
			if (!requested(&m, how)) {
				step = ASKED_NOT;
			} else if (step == ASKED_NOT) {
				step = ASKED;
				m.need_reconcile = 1;
				m.next_retry_ms = 0;
			} else if (step == ASKED_READ &&
			           natsConnection_Status(m.bus.nc) == NATS_CONN_STATUS_CONNECTED &&
			           (rc = promote(&m, how)) != 0) {
				if (rc > 0) {
					promoted = 1;
					break;
				}
				step = ASKED_NOT; /* refused: a later request reads again */
			}
		}
		if (now >= m.next_resync_ms || now - m.last_hb_ms > silent) {
			m.need_reconcile = 1;
			m.last_hb_ms = now;
		}
		if (m.need_reconcile && now >= m.next_retry_ms) {
			int asked = step == ASKED;

			if (sd_reconcile_all(&m) == 0) {
				if (asked) {
					step = ASKED_READ;
					next_look = 0;
				}
				m.retry_ms = RETRY_MIN_MS;
				m.next_resync_ms = sd_now_ms() + cfg->sync.resync_interval * 1000;
				if (once) {
					status = 0;
					break;
				}
			} else {
				sd_commit(&m);
				m.need_reconcile = 1;
				m.next_retry_ms =
				    sd_now_ms() + m.retry_ms / 2 +
				    (int64_t)randombytes_uniform((uint32_t)m.retry_ms);
				m.retry_ms =
				    m.retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : m.retry_ms * 2;
			}
		}
		sd_commit(&m);
		sd_events_tick(&m.events, m.db, &m.bus);
		m.metrics.applied = (uint64_t)m.applied;
		sd_metrics_tick(&m.metrics, m.db, m.applied_rev);
		msg = sd_queue_pop(&m.bus.q, LOOK_MS, &connected, &it);
		if (connected) {
			/* the logins of the outage reach the authority before the reconcile */
			sd_events_connected(&m.events);
			sd_events_tick(&m.events, m.db, &m.bus);
			m.need_reconcile = 1;
			m.next_retry_ms = 0;
		}
		sd_trim(&m);
		if (msg == NULL)
			continue;
		if (sd_begin(&m) == 0) {
			if (sd_ack_machine(&m.bus, msg) != NULL)
				sd_ack_record(m.db, &m.bus, msg);
			else
				(void)sd_apply(&m, &it, sd_msg_entry(&m.bus, msg), 0, &hb);
			sd_commit(&m);
			if (hb >= 0)
				m.last_hb_ms = sd_now_ms();
		}
		natsMsg_Destroy(msg);
	}
out:
	sd_commit(&m);
	sd_events_close(&m.events);
	sd_bus_close(&m.bus);
	vk_replica_close(m.replica);
	if (m.db != NULL)
		sqlite3_close(m.db);
	if (promoted) {
		sd_log(LOG_INFO, "promoted: this host is the fleet's authority now");
		return sd_authority(cfg, store, once);
	}
	return status;
}
