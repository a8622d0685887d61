/*
 * admit.c - the authority's side of the bus's identities (SPEC §9): it
 * answers join requests, and keeps the MACHINES account's JWT on the bus
 * as the store says it should be (its revocations).
 *
 * Security rules for this file:
 *  1. A request joins a host only with a token that exists, whose secret
 *     it proves (compared by verifier, in constant time), before the
 *     token's time, with a use left, not revoked; the machine, its
 *     identity and the use are recorded in one transaction, and the token's
 *     own bus user ends with its last use.
 *  2. Every answer is signed by the authority's key and carries no secret;
 *     a refusal says which rule refused it, nothing more. Nothing logged
 *     holds a token's secret.
 *  3. The MACHINES account's JWT on the bus is the store's: a revocation
 *     recorded (a machine deleted, a token revoked or used up, a moved
 *     machine's older JWT once it acknowledged) reaches every node within
 *     the next look, each second, and is sent again until a node took it.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dial.h"
#include "duration.h"
#include "fleet.h"
#include "identity.h"
#include "join.h"
#include "record.h"
#include "store.h"
#include "syncd.h"
#include "tree.h"
#include "txn.h"

#define LOOK_MS       1000 /* how often the revocations are looked at */
#define UPDATE_WAIT   5000 /* ms for a node to take an account's JWT */
#define ADMIT_BATCH   16   /* join requests per look: publishing and the lease go on */
#define ANSWER_MAX    (VK_JOIN_JWT_MAX + 512)
#define CLAIMS_UPDATE "$SYS.REQ.CLAIMS.UPDATE"

/* Loads the bus's keys once keyadm bus init made them; 0, or -1 when there are none yet. */
static int
load_keys(struct sd_admit *ad, sqlite3 *db, natsConnection *nc, const struct vk_config *cfg)
{
	char err[VK_ERRLEN], subject[128], *text;
	struct vk_bus_ids ids;
	size_t len;

	if (vk_identity_ids(db, &ids, err) != VK_OK)
		return -1; /* no bus of keyadm bus init's: joins are not for this fleet */
	if ((ad->keys = sodium_malloc(sizeof *ad->keys)) == NULL ||
	    (text = sodium_malloc(VK_BUS_KEYS_TEXT_MAX)) == NULL) {
		sd_admit_close(ad);
		return -1;
	}
	if (vk_secret_file_read(cfg->sync.account_key, text, VK_BUS_KEYS_TEXT_MAX, &len, err) !=
	        VK_OK ||
	    vk_bus_keys_parse(text, len, ad->keys) != 0) {
		if (!ad->said)
			sd_log(LOG_ERR, "cannot admit machines: %s",
			       err[0] != '\0' ? err : "[sync] account_key is malformed");
		ad->said = 1;
		sodium_free(text);
		sodium_free(ad->keys);
		ad->keys = NULL;
		return -1;
	}
	sodium_free(text);
	snprintf(subject, sizeof subject, "vkjoin.%s", cfg->sync.bucket);
	if (natsConnection_SubscribeSync(&ad->sub, nc, subject) != NATS_OK) {
		sd_log(LOG_ERR, "cannot take join requests: %s", nats_GetLastError(NULL));
		sodium_free(ad->keys);
		ad->keys = NULL;
		return -1;
	}
	sd_log(LOG_INFO, "taking join requests on %s", subject);
	return 0;
}

/* Rule 2: the answer, signed, to the request's reply subject. */
static void
answer(natsConnection *nc, natsMsg *m, const unsigned char *sk, const struct vk_join_answer *a)
{
	char json[ANSWER_MAX], *value;

	if (natsMsg_GetReply(m) == NULL || vk_join_answer_encode(a, json, sizeof json) != 0 ||
	    (value = vk_record_sign(sk, json)) == NULL)
		return;
	(void)natsConnection_PublishString(nc, natsMsg_GetReply(m), value);
	free(value);
}

/* Rule 1: which rule refuses the token of r, or VK_JOIN_OK with its location and user. */
static enum vk_join_refusal
check_token(sqlite3 *db, const struct vk_join_request *r, int64_t now,
            char location[VK_UUID_STRLEN + 1], char user[VK_NKEY_PUBLIC_LEN + 1], int *last)
{
	unsigned char want[32], got[32];
	enum vk_join_refusal why = VK_JOIN_WRONG;
	char err[VK_ERRLEN];
	sqlite3_stmt *st;

	crypto_generichash(got, sizeof got, r->secret, sizeof r->secret, NULL, 0);
	if (vk_store_prepare(db, "cannot read the join token", err, &st,
	                     "SELECT verifier, location_id, user_key, expires_at, uses, used,"
	                     " revoked_at IS NOT NULL FROM join_tokens WHERE id = ?1",
	                     "t", r->token) != VK_OK)
		return VK_JOIN_BUSY;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == sizeof want) {
		memcpy(want, sqlite3_column_blob(st, 0), sizeof want);
		if (sodium_memcmp(want, got, sizeof want) != 0)
			why = VK_JOIN_WRONG;
		else if (sqlite3_column_int(st, 6))
			why = VK_JOIN_REVOKED;
		else if (sqlite3_column_int64(st, 3) <= now)
			why = VK_JOIN_EXPIRED;
		else if (sqlite3_column_int64(st, 5) >= sqlite3_column_int64(st, 4))
			why = VK_JOIN_USED;
		else
			why = VK_JOIN_OK;
		snprintf(location, VK_UUID_STRLEN + 1, "%s",
		         (const char *)sqlite3_column_text(st, 1));
		snprintf(user, VK_NKEY_PUBLIC_LEN + 1, "%s",
		         (const char *)sqlite3_column_text(st, 2));
		*last = sqlite3_column_int64(st, 5) + 1 >= sqlite3_column_int64(st, 4);
	}
	sqlite3_finalize(st);
	sodium_memzero(got, sizeof got);
	return why;
}

/* One join request: rule 1, then the answer. */
static void
admit(struct sd_admit *ad, sqlite3 *db, natsConnection *nc, const unsigned char *sk,
      const struct vk_config *cfg, natsMsg *m)
{
	struct vk_txn t = {.db = db, .actor = "viamkey-syncd", .now = vk_now()};
	char location[VK_UUID_STRLEN + 1] = "", token_user[VK_NKEY_PUBLIC_LEN + 1] = "",
	                               err[VK_ERRLEN], *jwt = NULL, *org = NULL;
	struct vk_join_request r;
	struct vk_join_answer a;
	int last = 0;

	memset(&a, 0, sizeof a);
	if (vk_join_request_decode(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), &r) != 0) {
		sd_log(LOG_WARNING, "refused a join request that is not one");
		a.why = VK_JOIN_WRONG;
		answer(nc, m, sk, &a);
		return;
	}
	if (vk_txn_begin(&t, err) != VK_OK) {
		a.why = VK_JOIN_BUSY;
		goto refused;
	}
	if ((a.why = check_token(db, &r, t.now, location, token_user, &last)) != VK_JOIN_OK) {
		vk_txn_rollback(&t);
		goto refused;
	}
	a.why = VK_JOIN_BUSY;
	if (vk_tree_create(&t, VK_KIND_MACHINE, r.name, location, a.machine, err) != VK_OK ||
	    vk_identity_issue(&t, ad->keys, cfg->sync.bucket, a.machine, r.user, &jwt, err) !=
	        VK_OK ||
	    vk_store_exec(db, "cannot record the token's use", err, NULL,
	                  "UPDATE join_tokens SET used = used + 1 WHERE id = ?1", "t",
	                  r.token) != VK_OK ||
	    (last && vk_identity_revoke(&t, token_user, err) != VK_OK) ||
	    vk_txn_event(&t, "machine.join", NULL, err, "%s \"%s\" with join token %s", a.machine,
	                 r.name, r.token) != VK_OK ||
	    vk_store_query_text(db, "cannot read the location", err, &org,
	                        "SELECT org_id FROM locations WHERE id = ?1", "t",
	                        location) != VK_OK ||
	    org == NULL || strlen(jwt) >= sizeof a.jwt || vk_txn_commit(&t, err) != VK_OK) {
		sd_log(LOG_ERR, "cannot admit a machine: %s", err);
		vk_txn_rollback(&t);
		goto refused;
	}
	snprintf(a.location, sizeof a.location, "%s", location);
	snprintf(a.org, sizeof a.org, "%s", org);
	snprintf(a.jwt, sizeof a.jwt, "%s", jwt);
	a.why = VK_JOIN_OK;
	sd_log(LOG_INFO, "machine %s (%s) joined location %s with join token %s", a.machine, r.name,
	       location, r.token);
	answer(nc, m, sk, &a);
	free(jwt);
	free(org);
	sodium_memzero(&r, sizeof r);
	return;
refused:
	free(jwt);
	free(org);
	sd_log(LOG_WARNING, "refused a join request with join token %s (%s): %s", r.token, r.name,
	       vk_join_refusal_name(a.why));
	memset(a.machine, 0, sizeof a.machine);
	answer(nc, m, sk, &a);
	sodium_memzero(&r, sizeof r);
}

/*
 * Sends an account's JWT (named what) to the bus through the system
 * account's user, and records its claims under meta's `sent`. 0, or -1.
 */
static int
send_account(sqlite3 *db, const struct vk_config *cfg, const char *what, const char *sent,
             const char *jwt, const char *claims)
{
	char err[VK_ERRLEN], inbox[64], *reply = NULL;
	natsConnection *sys;
	size_t len;
	int rc = -1;

	snprintf(inbox, sizeof inbox, "_INBOX.system-%llx",
	         (unsigned long long)randombytes_random());
	if ((sys = sd_dial(cfg->sync.servers, cfg->sync.system_credentials, NULL, NULL, inbox, NULL,
	                   err, sizeof err)) == NULL) {
		sd_log(LOG_WARNING, "cannot update the %s: %s", what, err);
		return -1;
	}
	if (sd_dial_request(sys, CLAIMS_UPDATE, jwt, strlen(jwt), UPDATE_WAIT, &reply, &len, err,
	                    sizeof err) != 0) {
		sd_log(LOG_WARNING, "cannot update the %s: %s", what, err);
	} else if (strstr(reply, "\"error\"") != NULL) {
		sd_log(LOG_WARNING, "the bus refused the %s: %.200s", what, reply);
	} else if (vk_store_exec(db, "cannot record the account sent", err, NULL,
	                         "INSERT INTO meta (name, value) VALUES (?1, ?2)"
	                         " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                         "tt", sent, claims) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
	} else {
		sd_log(LOG_INFO, "sent the %s to the bus", what);
		rc = 0;
	}
	free(reply);
	natsConnection_Close(sys);
	natsConnection_Destroy(sys);
	return rc;
}

/* Whether meta's `sent` holds claims (or the store cannot say: -1). */
static int
was_sent(sqlite3 *db, const char *sent, const char *claims)
{
	char err[VK_ERRLEN], *have = NULL;
	int same;

	if (vk_store_query_text(db, "cannot read the store", err, &have,
	                        "SELECT value FROM meta WHERE name = ?1", "t", sent) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	same = have != NULL && strcmp(have, claims) == 0;
	free(have);
	return same;
}

/* Machines' identities an older viamkey issued, issued again: once a start (ad->refreshed). */
static void
refresh(struct sd_admit *ad, sqlite3 *db, const struct vk_config *cfg)
{
	struct vk_txn t = {.db = db, .actor = "viamkey-syncd", .now = vk_now()};
	char err[VK_ERRLEN];
	int n = 0;

	if (vk_txn_begin(&t, err) != VK_OK ||
	    vk_identity_refresh(&t, ad->keys, cfg->sync.bucket, &n, err) != VK_OK ||
	    (n > 0 && vk_txn_event(&t, "bus.refresh", NULL, err,
	                           "%d machines' bus identities issued again, with the"
	                           " permissions of this viamkey",
	                           n) != VK_OK) ||
	    vk_txn_commit(&t, err) != VK_OK) {
		vk_txn_rollback(&t);
		sd_log(LOG_ERR, "%s", err);
		return;
	}
	ad->refreshed = 1;
	if (n > 0)
		sd_log(LOG_INFO,
		       "issued %d machines' bus identities again, with the permissions of this"
		       " viamkey",
		       n);
}

/*
 * Rule 3: the accounts' JWTs, sent when they changed: VK's first (what it
 * exports, MACHINES imports; a newer viamkey may export more), then the
 * MACHINES account's, with its revocations, whether or not VK's went.
 * Once VK's is on the bus, machines whose JWTs an older viamkey issued get
 * theirs again first, so that they gain what this one allows (their
 * records carry the new JWTs; the older ones end once each machine has its
 * own): once after each start.
 */
static void
update_accounts(struct sd_admit *ad, sqlite3 *db, const struct vk_config *cfg)
{
	char err[VK_ERRLEN], *jwt = NULL, *claims = NULL;
	int vk_sent = 0, vk_now_sent = 0;

	if (vk_identity_vk_jwt(db, ad->keys, cfg->sync.bucket, vk_now(), &jwt, &claims, err) !=
	    VK_OK) {
		sd_log(LOG_ERR, "%s", err);
	} else {
		vk_sent = was_sent(db, VK_META_BUS_VK_SENT, claims);
		if (vk_sent == 0)
			vk_sent = vk_now_sent = send_account(db, cfg, "fleet's account (VK)",
			                                     VK_META_BUS_VK_SENT, jwt, claims) == 0;
	}
	free(jwt);
	free(claims);
	/* new permissions once the bus has VK's new exports; the revocations whatever befell */
	if (vk_sent == 1 && !ad->refreshed)
		refresh(ad, db, cfg);
	if (vk_identity_machines_jwt(db, ad->keys, cfg->sync.bucket, vk_now(), &jwt, &claims,
	                             err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return;
	}
	/* after VK's, MACHINES' again: a node takes its imports anew only from its own JWT */
	if (vk_now_sent || was_sent(db, VK_META_BUS_SENT, claims) == 0)
		(void)send_account(db, cfg, "machines' account, with its revocations",
		                   VK_META_BUS_SENT, jwt, claims);
	free(jwt);
	free(claims);
}

void
sd_admit_poll(struct sd_admit *ad, sqlite3 *db, natsConnection *nc, const unsigned char *sk,
              const struct vk_config *cfg)
{
	natsMsg *m;
	int n = 0;

	if (sd_now_ms() >= ad->next_look_ms) {
		ad->next_look_ms = sd_now_ms() + LOOK_MS;
		if (ad->keys != NULL || load_keys(ad, db, nc, cfg) == 0)
			update_accounts(ad, db, cfg);
	}
	while (n++ < ADMIT_BATCH && ad->sub != NULL &&
	       natsSubscription_NextMsg(&m, ad->sub, 0) == NATS_OK) {
		admit(ad, db, nc, sk, cfg, m);
		natsMsg_Destroy(m);
	}
}

void
sd_admit_close(struct sd_admit *ad)
{
	if (ad->sub != NULL) {
		natsSubscription_Unsubscribe(ad->sub);
		natsSubscription_Destroy(ad->sub);
	}
	if (ad->keys != NULL)
		sodium_free(ad->keys);
	memset(ad, 0, sizeof *ad);
}
