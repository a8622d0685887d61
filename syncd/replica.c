/*
 * replica.c - viamkey-syncd on a machine: what the bus brings, applied to
 * the replica; each scope compared with its head.
 *
 * Security rules for this file (SPEC §8, "What a machine MUST do"):
 *  1. A value is applied only after vk_record_verify() accepts it with
 *     [sync] authority_key; anything else is dropped and logged
 *     (LOG_AUTHPRIV, warning), and so is a record that is not what its
 *     entry of this machine's scopes holds, or older than that scope's
 *     head says (record.h).
 *  2. and 3. vk_replica_apply() keeps revisions growing and holds a key
 *     only while it covers this machine.
 *  4. Each message is applied in one durable transaction (synchronous =
 *     FULL), or a batch of them during a catch-up: a login sees the state
 *     before or after, and what was applied survives a power cut. Only what
 *     is not a change, a live heartbeat or scope head and the revision
 *     acknowledged, is left to the disk's own time unless it moved the
 *     trust (sd_begin_lazy).
 *  5. A scope counts as complete only when what the replica has seen under
 *     its entries adds up to the newest head it holds (scope.h); until every
 *     scope is, no revision is acknowledged (machine.c).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "fleet.h"
#include "machine.h"
#include "scope.h"
#include "store.h"

void
sd_replica_tune(sqlite3 *db)
{
	(void)sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
	(void)sqlite3_exec(db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
}

/*
 * Commits wait for the disk again after a lazy one's (sd_begin_lazy),
 * and a lazy one that moved the trust is put on the disk: 0, or -1 (logged;
 * sd_begin tries again and applies nothing until it can).
 */
static int
durable(struct machine *m)
{
	if (m->lazy &&
	    sqlite3_exec(m->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK) {
		sd_log(LOG_ERR, "cannot make the replica's commits durable again: %s",
		       sqlite3_errmsg(m->db));
		return -1;
	}
	m->lazy = 0;
	if (m->unsynced && vk_store_sync_log(m->db) != 0) {
		sd_log(LOG_ERR, "cannot write the replica's trust to the disk");
		return -1;
	}
	m->unsynced = 0;
	return 0;
}

static int
begin(struct machine *m)
{
	char err[VK_ERRLEN];

	if (vk_store_begin(m->db, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		m->need_reconcile = 1; /* the message is lost: read everything again */
		return -1;
	}
	m->in_txn = 1;
	return 0;
}

/* What follows "<scope>" in a scope's entry ("o.<ID>": VK_SCOPE_MAX - 1 characters). */
static const char *
entry_tail(const char *entry)
{
	return strlen(entry) >= VK_SCOPE_MAX - 1 ? entry + VK_SCOPE_MAX - 1 : "";
}

int
sd_entry_lazy(const char *entry)
{
	return entry != NULL && (strcmp(entry, "hb") == 0 || strcmp(entry_tail(entry), ".h") == 0);
}

int
sd_begin(struct machine *m)
{
	if (m->in_txn)
		return 0;
	if (durable(m) != 0) {
		m->need_reconcile = 1; /* the message is not applied: read everything again */
		return -1;
	}
	return begin(m);
}

int
sd_begin_lazy(struct machine *m)
{
	if (m->in_txn || durable(m) != 0)
		return sd_begin(m); /* a transaction already open, or none until durable */
	if (sqlite3_exec(m->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) == SQLITE_OK) {
		m->lazy = 1;
		m->lazy_epoch = m->trust.epoch;
		m->lazy_root = m->trust.root_version;
	}
	if (begin(m) != 0) {
		(void)durable(m); /* no transaction: what follows is durable */
		return -1;
	}
	return 0;
}

int
sd_commit(struct machine *m)
{
	char err[VK_ERRLEN];
	int rc = 0;

	if (!m->in_txn)
		return 0;
	m->in_txn = 0;
	if (vk_store_commit(m->db, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		m->need_reconcile = 1; /* what it held is lost: read everything again */
		rc = -1;
	} else if (m->lazy &&
	           (m->trust.epoch != m->lazy_epoch || m->trust.root_version != m->lazy_root)) {
		m->unsynced = 1; /* a trust moved is never left to a power cut */
	}
	return durable(m) == 0 ? rc : -1;
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

void
sd_note_error(struct machine *m, const char *what)
{
	char err[VK_ERRLEN];

	if (what == NULL) {
		if (m->error[0] != '\0')
			(void)vk_store_exec(
			    m->db, "", err, NULL,
			    "DELETE FROM meta WHERE name = '" VK_META_SYNC_ERROR "'", "");
		m->error[0] = '\0';
		return;
	}
	if (strcmp(m->error, what) != 0)
		sd_log(LOG_WARNING, "%s", what);
	snprintf(m->error, sizeof m->error, "%s", what);
	set_meta(m, VK_META_SYNC_ERROR, m->error, 0);
}

void
sd_set_applied(struct machine *m, int64_t rev)
{
	if (rev <= m->applied_rev)
		return;
	m->applied_rev = rev;
	set_meta(m, VK_META_APPLIED_REV, NULL, rev);
}

void
sd_view_reset(struct machine *m)
{
	m->first_live.known = 0;
	m->read.known = 0;
	m->sound = 0;
}

int
sd_beat_reached(const struct sd_beat *a, const struct sd_beat *b)
{
	if (a->seq < 0 || b->seq < 0)
		return 1;
	return a->epoch > b->epoch || (a->epoch == b->epoch && a->seq >= b->seq);
}

/*
 * Verifies a message's signature, in nats.c's delivery thread (the queue's
 * check): it->json is then the signed JSON. A message that fails is
 * verified again by sd_apply(), on the main thread, for the reason.
 */
void
sd_check_record(void *ctx, struct sd_item *it)
{
	struct sd_keyring *ring = ctx;
	unsigned char key[VK_PUBLIC_KEY_BYTES];
	char err[VK_ERRLEN];
	int have;

	pthread_mutex_lock(&ring->mu);
	have = ring->have;
	memcpy(key, ring->key, sizeof key);
	pthread_mutex_unlock(&ring->mu);
	it->json = NULL;
	if (have &&
	    vk_record_verify(key, natsMsg_GetData(it->msg), (size_t)natsMsg_GetDataLength(it->msg),
	                     &it->json, &it->json_len, err) != VK_OK)
		it->json = NULL;
}

/* The delivery thread's key becomes the trusted epoch's. */
static void
ring_set(struct machine *m)
{
	pthread_mutex_lock(&m->ring.mu);
	m->ring.have = m->trust.have_key;
	memcpy(m->ring.key, m->trust.key, sizeof m->ring.key);
	pthread_mutex_unlock(&m->ring.mu);
}

int
sd_trust_load(struct machine *m)
{
	char err[VK_ERRLEN];

	if (vk_trust_load(m->db, m->cfg->sync.root_key, m->cfg->sync.authority_key, &m->trust,
	                  err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	pthread_mutex_init(&m->ring.mu, NULL);
	ring_set(m);
	return 0;
}

/* Drops a value, saying why where a security log reads it too. */
static void
dropped(const char *entry, const char *why)
{
	syslog(LOG_AUTHPRIV | LOG_WARNING, "dropped the value of %s: %s", entry, why);
	sd_log(LOG_WARNING, "dropped the value of %s: %s", entry, why);
}

/* The next root version, read from the bucket: taken when it is that (trust.h). */
static void
take_root(void *ctx, size_t i, natsMsg *msg)
{
	struct machine *m = ctx;
	char err[VK_ERRLEN], entry[64];

	(void)i;
	if (msg == NULL)
		return;
	snprintf(entry, sizeof entry, "root.%lld", (long long)m->trust.root_version + 1);
	if (vk_trust_root(m->db, &m->trust, natsMsg_GetData(msg),
	                  (size_t)natsMsg_GetDataLength(msg), err) != VK_OK)
		dropped(entry, err);
	else
		sd_log(LOG_INFO, "trusting root version %lld now",
		       (long long)m->trust.root_version);
	natsMsg_Destroy(msg);
}

/*
 * Verifies a value on the main thread, with the trusted epoch's key: a
 * heartbeat of a higher epoch moves the trust there (reading the root
 * versions its certificate needs first), and then every scope is read
 * again under it. 0, or -1 when it does not verify (err says why).
 */
static int
verify(struct machine *m, const struct sd_item *it, const char **json, size_t *json_len,
       char err[VK_ERRLEN])
{
	const char *value = natsMsg_GetData(it->msg);
	size_t len = (size_t)natsMsg_GetDataLength(it->msg);
	int64_t need, before = m->trust.root_version;
	int moved;
	vk_rc rc;

	while ((rc = vk_trust_verify(m->db, &m->trust, value, len, json, json_len, &moved, &need,
	                             err)) == VK_ERR_NOTFOUND) {
		char entry[64], fetch_err[256];
		const char *names[1] = {entry};

		snprintf(entry, sizeof entry, "root.%lld", (long long)need);
		if (sd_bus_fetch(&m->bus, names, 1, take_root, m, fetch_err, sizeof fetch_err) !=
		        0 ||
		    m->trust.root_version == before)
			break; /* the root version it needs is not on the bus: err says so */
		before = m->trust.root_version;
	}
	if (rc != VK_OK)
		return -1;
	if (moved) {
		ring_set(m);
		sd_log(LOG_INFO,
		       "following epoch %lld of the authority now; reading everything again",
		       (long long)m->trust.epoch);
		for (int i = 0; i < SD_SCOPES; i++)
			m->scopes[i].complete = 0;
		m->need_reconcile = 1;
	}
	return 0;
}

/* The scope (an index into m->scopes) entry is under, or -1. */
static int
scope_of(const struct machine *m, const char *entry)
{
	for (int i = 0; i < SD_SCOPES; i++) {
		size_t len = strlen(m->scopes[i].name);

		if (len > 0 && strncmp(entry, m->scopes[i].name, len) == 0 && entry[len] == '.')
			return i;
	}
	return -1;
}

/* A scope's head (entry "<scope>.h"), verified: kept unless an older one. 1 kept, 0, -1. */
static int
take_head(struct machine *m, const char *entry, const char *json, size_t len)
{
	char err[VK_ERRLEN], *text;
	struct vk_head h;
	int i = scope_of(m, entry), kept = 0;

	if (vk_head_decode(json, len, &h) != 0) {
		dropped(entry, "not a scope head of this format");
		return -1;
	}
	if (i < 0 || strcmp(h.scope, m->scopes[i].name) != 0 ||
	    strcmp(entry + strlen(h.scope), ".h") != 0) {
		dropped(entry, "not the head of that scope of this machine");
		return -1;
	}
	if ((text = strndup(json, len)) == NULL)
		return 0;
	if (vk_scope_hold(m->db, &h, text, &kept, err) != VK_OK) {
		sd_log(LOG_WARNING, "%s", err);
		m->need_reconcile = 1;
	}
	free(text);
	if (kept)
		m->scopes[i].complete = 0; /* compared again at the next heartbeat */
	return kept;
}

int
sd_head_later(struct machine *m, const struct sd_item *it, const char *entry)
{
	struct sd_scope *s;
	struct vk_head h;
	char *copy;
	int i;

	if (m->full || it->json == NULL || entry == NULL || strcmp(entry_tail(entry), ".h") != 0 ||
	    (i = scope_of(m, entry)) < 0 || vk_head_decode(it->json, it->json_len, &h) != 0 ||
	    strcmp(h.scope, m->scopes[i].name) != 0)
		return 0; /* sd_apply() takes it, or says why not */
	s = &m->scopes[i];
	/* an older one than that waiting (replayed) goes no further, as vk_scope_hold() would */
	if (s->head != NULL &&
	    (h.epoch < s->head_epoch || (h.epoch == s->head_epoch && h.rev < s->head_rev)))
		return 1;
	if ((copy = malloc(it->json_len)) == NULL)
		return 0;
	memcpy(copy, it->json, it->json_len);
	free(s->head);
	s->head = copy;
	s->head_len = it->json_len;
	s->head_epoch = h.epoch;
	s->head_rev = h.rev;
	return 1;
}

void
sd_head_forget(struct machine *m, int i)
{
	free(m->scopes[i].head);
	m->scopes[i].head = NULL;
}

void
sd_heads_take(struct machine *m)
{
	char entry[VK_ENTRY_MAX];

	for (int i = 0; i < SD_SCOPES; i++) {
		if (m->scopes[i].head == NULL)
			continue;
		snprintf(entry, sizeof entry, "%s.h", m->scopes[i].name);
		(void)take_head(m, entry, m->scopes[i].head, m->scopes[i].head_len);
		sd_head_forget(m, i);
	}
}

int
sd_apply(struct machine *m, const struct sd_item *it, const char *entry, int64_t floor, int64_t *hb)
{
	const char *json = it->json;
	size_t json_len = it->json_len;
	struct vk_apply_result r;
	char err[VK_ERRLEN], why[VK_ERRLEN + 64];
	const char *tail;
	int64_t start;
	int i;
	vk_rc rc;

	*hb = -1;
	m->beat.known = 0;
	if (entry == NULL || strncmp(entry, "a.", 2) == 0 || strcmp(entry, "lease") == 0 ||
	    strncmp(entry, "root.", 5) == 0)
		return 0; /* not a record: an acknowledgement, the lease, a root version (trust.h)
		           */
	/* a heartbeat always goes to the trust: its certificate may name a later root version */
	if ((json == NULL || strcmp(entry, "hb") == 0) &&
	    verify(m, it, &json, &json_len, err) != 0) {
		dropped(entry, err);
		if (strcmp(entry, "hb") == 0) {
			/* no heartbeat taken: the replica is going stale; say why */
			snprintf(why, sizeof why, "heartbeat refused: %s", err);
			sd_note_error(m, why);
		}
		return -1;
	}
	i = scope_of(m, entry);
	tail = entry_tail(entry);
	if (strcmp(tail, ".h") == 0)
		return m->full ? 0 : take_head(m, entry, json, json_len);
	if (strncmp(tail, ".i.", 3) == 0)
		return 0; /* an index page: read when a head calls for it */
	start = sd_now_us();
	if ((rc = vk_replica_apply(m->replica, entry, floor, json, json_len, vk_now(), &r, err)) !=
	    VK_OK) {
		sd_log(LOG_WARNING, "could not apply %s: %s", entry, err);
		/*
		 * A signed record the replica could not store (busy, disk full)
		 * is read again; no revision is acknowledged until it is. One
		 * that cannot be parsed never will be.
		 */
		if (rc != VK_ERR_USAGE)
			m->need_reconcile = 1;
		return -1;
	}
	if (i >= 0)
		m->scopes[i].complete = 0; /* its entries changed: compared again */
	if (strcmp(r.kind, "heartbeat") == 0 &&
	    (r.what == VK_APPLIED_HEARTBEAT || r.what == VK_APPLIED_OLD))
		m->beat = (struct sd_beat){
		    .known = 1, .epoch = r.beat_epoch, .seq = r.beat_seq, .rev = r.rev};
	switch (r.what) {
	case VK_APPLIED:
		m->applied++;
		sd_timing_add(&m->metrics.apply, start);
		sd_log(LOG_DEBUG, "applied %s %s revision %lld from %s", r.kind, r.id,
		       (long long)r.rev, entry);
		/* this machine's own record: the bus identity it carries (identity.c) */
		if (!m->full && strcmp(r.kind, "machine") == 0 && strcmp(r.id, m->id) == 0)
			sd_identity_take(m, json, json_len);
		break;
	case VK_APPLIED_HEARTBEAT:
		*hb = r.rev;
		break;
	case VK_APPLIED_MISFILED:
		dropped(entry, "it is not what that entry of this machine's scopes holds");
		return -1;
	case VK_APPLIED_STALE:
		snprintf(why, sizeof why,
		         "revision %lld is older than its scope's head says the entry is (%lld):"
		         " a replayed value",
		         (long long)r.rev, (long long)floor);
		dropped(entry, why);
		return -1;
	case VK_APPLIED_FORMER:
		dropped(entry, "it is of an epoch below the one this machine follows: a former"
		               " authority's");
		return -1;
	case VK_APPLIED_FUTURE:
		sd_log(LOG_WARNING,
		       "refused a heartbeat signed more than %d s ahead of this machine's clock",
		       VK_CLOCK_SKEW);
		return -1;
	default:
		break;
	}
	if (r.moved)
		m->need_reconcile = 1; /* this machine's scopes changed */
	return r.what == VK_APPLIED || r.what == VK_APPLIED_HEARTBEAT;
}

int
sd_follow_scopes(struct machine *m)
{
	char scopes[SD_SCOPES][VK_ENTRY_MAX], err[VK_ERRLEN], subject[VK_ENTRY_MAX + 128];
	int n, changed = 0;

	if (vk_replica_scopes(m->replica, scopes, &n, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return 0;
	}
	for (int i = 0; i < SD_SCOPES; i++) {
		struct sd_scope *s = &m->scopes[i];
		const char *want = i < n ? scopes[i] : "";

		if (strcmp(s->name, want) == 0)
			continue;
		changed = 1;
		sd_bus_unsubscribe(&m->bus, s->live);
		s->live = NULL;
		sd_head_forget(m, i);
		s->complete = 0;
		s->why[0] = '\0';
		snprintf(s->name, sizeof s->name, "%.*s", VK_SCOPE_MAX - 1, want);
		if (want[0] == '\0')
			continue;
		snprintf(subject, sizeof subject, "%s%s.>", m->bus.live_prefix, s->name);
		if (sd_bus_subscribe(&m->bus, subject, &s->live) != 0)
			s->name[0] = '\0';
		else
			sd_log(LOG_INFO, "following %s", want);
	}
	return changed;
}

int
sd_check_scope(struct machine *m, int i, unsigned *pages, int *tree)
{
	struct sd_scope *s = &m->scopes[i];
	char name[VK_SCOPE_MAX];
	unsigned differ = 0;
	int tree_differs = 0;
	char err[VK_ERRLEN];
	struct vk_head h;
	vk_rc rc;

	if (pages != NULL)
		*pages = 0;
	if (tree != NULL)
		*tree = 0;
	if (!m->heads) {
		s->complete = 1; /* an authority of format 1 publishes no heads to check */
		return 0;
	}
	snprintf(name, sizeof name, "%s", s->name);
	rc = vk_scope_held(m->db, name, &h, err);
	if (rc == VK_ERR_NOTFOUND) {
		s->complete = 0;
		snprintf(s->why, sizeof s->why, "no head of %s has come from the bus", name);
		if (pages != NULL)
			*pages = (1u << VK_HEAD_PAGES) - 1;
		if (tree != NULL)
			*tree = 1;
		return 0;
	}
	if (rc != VK_OK ||
	    (rc = vk_scope_compare(m->db, &h, &differ, &tree_differs, err)) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	s->complete = differ == 0 && !tree_differs;
	if (!s->complete) {
		size_t o = (size_t)snprintf(s->why, sizeof s->why,
		                            "%s differs from its head (revision %lld) in", h.scope,
		                            (long long)h.rev);

		for (int p = 0; p < VK_HEAD_PAGES && o < sizeof s->why; p++)
			if (differ & (1u << p))
				o += (size_t)snprintf(s->why + o, sizeof s->why - o, " page %x", p);
		if (tree_differs && o < sizeof s->why)
			snprintf(s->why + o, sizeof s->why - o, " its tree record");
	}
	if (pages != NULL)
		*pages = differ;
	if (tree != NULL)
		*tree = tree_differs;
	return 0;
}

int
sd_complete(struct machine *m)
{
	for (int i = 0; i < SD_SCOPES; i++) {
		struct sd_scope *s = &m->scopes[i];

		if (s->name[0] == '\0' || s->complete)
			continue;
		if (sd_check_scope(m, i, NULL, NULL) != 0 || !s->complete)
			return 0;
	}
	return 1;
}
