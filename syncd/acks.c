/*
 * acks.c - the machines' acknowledgements, as the authority takes them
 * (SPEC §8).
 *
 * A machine of format 2 acknowledges on vkack.<bucket>.<machine>, a plain
 * NATS subject that its bus user may publish to for itself only; one on a
 * bus of the first format's docs puts its acknowledgement under
 * a.<machine> in the bucket, which republishes it on vk.<bucket>.a.<machine>
 * (bucket.c) and keeps it for a catch-up at the authority's start.
 *
 * Security rules for this file:
 *  1. The subject names the machine, and the body must name the same one:
 *     the bus permissions let a machine's user say only its own.
 *  2. Nothing is ever sent back: an answer would go to whatever reply
 *     subject the sender named.
 *  3. An acknowledgement is recorded in a transaction of its own batch, so
 *     that keyadm never waits behind the network.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "store.h"
#include "syncd.h"
#include "token.h"

const char *
sd_ack_machine(const struct sd_bus *b, natsMsg *m)
{
	const char *subject = natsMsg_GetSubject(m), *entry = sd_msg_entry(b, m);
	size_t len = strlen(b->ack_prefix);

	if (strncmp(subject, b->ack_prefix, len) == 0)
		return vk_uuid_valid(subject + len) ? subject + len : NULL;
	if (entry != NULL && strncmp(entry, "a.", 2) == 0 && vk_uuid_valid(entry + 2))
		return entry + 2;
	return NULL;
}

void
sd_ack_record(sqlite3 *db, const struct sd_bus *b, natsMsg *m)
{
	const char *machine = sd_ack_machine(b, m);
	char err[VK_ERRLEN], *json;

	if (machine == NULL || natsMsg_GetDataLength(m) <= 0 || natsMsg_GetDataLength(m) > 4096)
		return;
	if ((json = strndup(natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m))) == NULL)
		return;
	/* rule 1 */
	if (vk_store_exec(db, "cannot record an acknowledgement", err, NULL,
	                  "INSERT INTO sync_machines (machine_id, revision, reported_at, format,"
	                  " last_error) SELECT ?1, json_extract(?2, '$.rev'), ?3,"
	                  " coalesce(json_extract(?2, '$.format'), 1),"
	                  " substr(json_extract(?2, '$.error'), 1, 300)"
	                  " WHERE json_valid(?2) AND json_extract(?2, '$.machine') = ?1"
	                  " AND typeof(json_extract(?2, '$.rev')) = 'integer'"
	                  " AND typeof(coalesce(json_extract(?2, '$.format'), 1)) = 'integer'"
	                  " AND typeof(coalesce(json_extract(?2, '$.error'), '')) = 'text'"
	                  " ON CONFLICT (machine_id) DO UPDATE SET revision = excluded.revision,"
	                  " reported_at = excluded.reported_at, format = excluded.format,"
	                  " last_error = excluded.last_error",
	                  "tti", machine, json, vk_now()) != VK_OK)
		sd_log(LOG_WARNING, "%s", err);
	free(json);
}

int
sd_acks_subscribe(struct sd_bus *b)
{
	natsSubscription *sub;
	char subject[192];

	snprintf(subject, sizeof subject, "%s*", b->ack_prefix);
	if (sd_bus_subscribe(b, subject, &sub) != 0)
		return -1;
	snprintf(subject, sizeof subject, "%sa.>", b->live_prefix);
	if (sd_bus_subscribe(b, subject, &sub) != 0)
		return -1;
	snprintf(subject, sizeof subject, "%s.acks", b->inbox);
	return sd_bus_subscribe(b, subject, &sub);
}

int
sd_acks_record(sqlite3 *db, struct sd_bus *b, natsMsg *m, int *connected, int64_t *got,
               int64_t pending)
{
	char err[VK_ERRLEN];
	int rc = 0;

	/* rule 3 */
	if (vk_store_begin(db, err) != VK_OK) {
		sd_log(LOG_WARNING, "%s", err);
		rc = -1;
	}
	do {
		if (rc == 0)
			sd_ack_record(db, b, m);
		if (got != NULL && natsMsg_GetReply(m) != NULL && sd_msg_pending(m) >= 0 &&
		    (++*got, sd_msg_pending(m) == 0))
			*got = pending;
		natsMsg_Destroy(m);
	} while ((got == NULL || *got < pending) &&
	         (m = sd_queue_pop(&b->q, 0, connected, NULL)) != NULL);
	if (rc == 0 && vk_store_commit(db, err) != VK_OK)
		sd_log(LOG_WARNING, "%s", err);
	return rc;
}

int
sd_acks_read(sqlite3 *db, struct sd_bus *b, char tag[17])
{
	char deliver[160], err[512], name[64];
	int64_t pending, got = 0, start = sd_now_ms();
	int connected = 0;

	snprintf(deliver, sizeof deliver, "%s.acks", b->inbox);
	snprintf(name, sizeof name, "vk-authority-a-%s", tag);
	if ((pending = sd_bus_consumer(b, name, "a.>", deliver, err, sizeof err)) < 0) {
		sd_log(LOG_WARNING, "cannot read the acknowledgements: %s", err);
		if (strstr(err, "Timeout") != NULL)
			sd_random_tag(tag); /* a consumer on a dead node: another name */
		return -1;
	}
	while (got < pending && !sd_stop) {
		natsMsg *m = sd_queue_pop(&b->q, 5000, &connected, NULL);

		if (m == NULL || sd_acks_record(db, b, m, &connected, &got, pending) != 0)
			break;
	}
	sd_bus_consumer_done(b, name);
	sd_log(LOG_DEBUG, "read %lld of %lld acknowledgements in %lld ms", (long long)got,
	       (long long)pending, (long long)(sd_now_ms() - start));
	return connected ? -1 : 0; /* one missed here comes again with the machine's next */
}
