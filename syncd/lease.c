/*
 * lease.c - the authority lease (SPEC §10): the entry "lease" of the
 * bucket, which names the one host that may publish.
 *
 * Its value, signed by the holder's key, is
 *   {"v":1,"type":"lease","holder":"<host>","epoch":E,"until":T,"at":T0}
 * and it is only ever written by compare-and-swap: against the stream
 * sequence of the value read (JetStream's expected last subject sequence),
 * or, when there is none, against there being none. That sequence is the
 * fencing token: of two hosts that read the same lease, the one whose put
 * JetStream takes first holds it, and the other's put is refused.
 *
 * Security rules for this file:
 *  1. A lease is taken or renewed only by compare-and-swap, never by a
 *     plain put.
 *  2. Who holds the lease decides who publishes, not what machines believe:
 *     a machine believes only the highest certified epoch (trust.h), so a
 *     former authority that publishes anyway changes nothing.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "record.h"
#include "store.h"
#include "syncd.h"

#define ERR_WRONG_LAST_SEQ 10071 /* JetStream: "wrong last sequence" */
#define LEASE_WAIT_MS      2000

/* The lease's fields, from its JSON (not verified: the bus says who holds it, not truth). */
static int
parse(sqlite3 *db, const char *value, size_t len, struct sd_lease *l)
{
	const char *json = len > 91 ? value + 91 : NULL; /* "vk1." signature "." */
	char err[VK_ERRLEN], *text;
	sqlite3_stmt *st;
	int ok = 0;

	if (json == NULL || (text = strndup(json, len - 91)) == NULL)
		return -1;
	if (vk_store_prepare(db, "", err, &st,
	                     "SELECT json_extract(?1, '$.holder'), json_extract(?1, '$.epoch'),"
	                     " json_extract(?1, '$.until') WHERE json_valid(?1)"
	                     " AND json_extract(?1, '$.type') = 'lease'",
	                     "t", text) == VK_OK) {
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_TEXT &&
		    sqlite3_column_type(st, 1) == SQLITE_INTEGER) {
			snprintf(l->holder, sizeof l->holder, "%s",
			         (const char *)sqlite3_column_text(st, 0));
			l->epoch = sqlite3_column_int64(st, 1);
			l->until = sqlite3_column_int64(st, 2);
			ok = 1;
		}
		sqlite3_finalize(st);
	}
	free(text);
	return ok ? 0 : -1;
}

void
sd_lease_holder(const char *host, const unsigned char *pk, char *out, size_t size)
{
	char b64[VK_PUBLIC_KEY_B64];

	sodium_bin2base64(b64, sizeof b64, pk, VK_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, size, "%s (key %.8s)", host, b64);
}

int
sd_lease_read(struct sd_bus *b, sqlite3 *db, struct sd_lease *l, char *err, size_t errlen)
{
	natsMsg *m = NULL;
	const char *seq = NULL;

	memset(l, 0, sizeof *l);
	if (sd_bus_last(b, "lease", LEASE_WAIT_MS, &m, err, errlen) != 0)
		return -1;
	if (m == NULL)
		return 0;
	l->present = 1;
	if (natsMsgHeader_Get(m, "Nats-Sequence", &seq) != NATS_OK || seq == NULL ||
	    (l->seq = strtoull(seq, NULL, 10)) == 0) {
		snprintf(err, errlen, "the lease came without its sequence");
		natsMsg_Destroy(m);
		return -1;
	}
	if (parse(db, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), l) != 0)
		snprintf(l->holder, sizeof l->holder, "?"); /* junk: held by no one we know */
	natsMsg_Destroy(m);
	return 0;
}

int
sd_lease_take(struct sd_bus *b, const unsigned char *sk, struct sd_lease *l, const char *holder,
              int64_t epoch, int64_t until, char *err, size_t errlen)
{
	char json[512], subject[160], *value;
	jsPubAck *ack = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus s;

	snprintf(json, sizeof json,
	         "{\"v\":1,\"type\":\"lease\",\"holder\":\"%s\",\"epoch\":%lld,\"until\":%lld,"
	         "\"at\":%lld}",
	         holder, (long long)epoch, (long long)until, (long long)vk_now());
	if ((value = vk_record_sign(sk, json)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = LEASE_WAIT_MS;
	/* rule 1 */
	if (l->present)
		po.ExpectLastSubjectSeq = l->seq;
	else
		po.ExpectNoMessage = true;
	snprintf(subject, sizeof subject, "%slease", b->kv_prefix);
	s = js_Publish(&ack, b->js, subject, value, (int)strlen(value), &po, &jerr);
	free(value);
	if (s == NATS_OK) {
		l->present = 1;
		l->seq = ack->Sequence;
		snprintf(l->holder, sizeof l->holder, "%s", holder);
		l->epoch = epoch;
		l->until = until;
		jsPubAck_Destroy(ack);
		return 0;
	}
	jsPubAck_Destroy(ack);
	if (jerr == ERR_WRONG_LAST_SEQ)
		return 1;
	snprintf(err, errlen, "cannot write the lease: %s (%d)", natsStatus_GetText(s), (int)jerr);
	return -1;
}
