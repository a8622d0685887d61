/*
 * bucket.c - the bucket's stream, as the authority keeps it (SPEC §8,
 * rules 7 and 10).
 *
 * Security rules for this file:
 *  1. The stream denies purges, rollups and message deletes: whoever may
 *     publish into it, or make the server answer into it, cannot wipe it.
 *  2. It republishes nothing but machines' acknowledgements (from machines
 *     on a bus of the first format's docs): the authority publishes every
 *     record on the live subjects itself (authority.c), and a machine reads
 *     the stream only by direct gets of its own scopes' entries.
 *  3. A stream made otherwise (by an older viamkey-syncd: purges and
 *     rollups allowed, every entry republished) is made again, and so is a
 *     stream that is gone; either way everything is published again. Only
 *     the server's explicit "no such stream" counts as gone: a stream
 *     electing a leader is left alone.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "record.h"
#include "syncd.h"

#define ERR_STREAM_NOT_FOUND 10059 /* JetStream's error code for "stream not found" */

/*
 * The stream's configuration, as rules 1 and 2 want it: subjects[0] is set
 * to the bucket's entries, source and destination to the republished
 * acknowledgements.
 */
static void
stream_config(const struct vk_sync_config *cfg, const struct sd_bus *b, jsStreamConfig *sc,
              jsRePublish *rp, const char **subjects, char subject[128], char source[128],
              char destination[128])
{
	jsStreamConfig_Init(sc);
	jsRePublish_Init(rp);
	snprintf(subject, 128, "%s>", b->kv_prefix);
	snprintf(source, 128, "%sa.>", b->kv_prefix);
	snprintf(destination, 128, "%sa.>", b->live_prefix);
	subjects[0] = subject;
	rp->Source = source;
	rp->Destination = destination;
	sc->Name = b->stream;
	sc->Subjects = subjects;
	sc->SubjectsLen = 1;
	sd_stream_guard(sc, cfg->replicas);
	sc->MaxMsgsPerSubject = 1; /* an entry keeps its latest value only */
	sc->MaxMsgSize = VK_RECORD_MAX;
	sc->AllowDirect = true;
	sc->RePublish = rp;
}

/* Whether an existing stream is as rules 1 and 2 want it. */
static int
as_wanted(const jsStreamConfig *have, const char *source)
{
	return sd_stream_guarded(have) && have->AllowDirect &&
	       (have->RePublish == NULL ||
	        (have->RePublish->Source != NULL && strcmp(have->RePublish->Source, source) == 0));
}

int
sd_bucket_ensure(struct sd_bus *b, const struct vk_sync_config *cfg, int *made)
{
	char subject[128], source[128], destination[128];
	const char *subjects[1];
	jsStreamInfo *si = NULL;
	jsStreamConfig sc;
	jsRePublish rp;
	jsErrCode jerr = 0;
	natsStatus s;

	*made = 0;
	stream_config(cfg, b, &sc, &rp, subjects, subject, source, destination);
	s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &jerr);
	if (s == NATS_OK) {
		int wanted = as_wanted(si->Config, source);

		jsStreamInfo_Destroy(si);
		if (wanted)
			return 0;
		/* rule 3: made by an older viamkey-syncd */
		sd_log(LOG_WARNING,
		       "bucket %s allows purges and rollups, or republishes every entry (an older"
		       " viamkey-syncd made it): making it again",
		       cfg->bucket);
		if ((s = js_DeleteStream(b->js, b->stream, NULL, &jerr)) != NATS_OK) {
			sd_log(LOG_WARNING, "cannot delete bucket %s: %s (%d)", cfg->bucket,
			       natsStatus_GetText(s), (int)jerr);
			return -1;
		}
	} else if (jerr != ERR_STREAM_NOT_FOUND) {
		sd_log(LOG_WARNING, "cannot look up bucket %s: %s (%s)", cfg->bucket,
		       natsStatus_GetText(s), nats_GetLastError(NULL));
		return -1;
	} else {
		sd_log(LOG_WARNING, "bucket %s is not on the bus: making it", cfg->bucket);
	}
	if ((s = js_AddStream(&si, b->js, &sc, NULL, &jerr)) != NATS_OK) {
		sd_log(LOG_WARNING, "cannot create bucket %s: %s (%s)", cfg->bucket,
		       natsStatus_GetText(s), nats_GetLastError(NULL));
		return -1;
	}
	jsStreamInfo_Destroy(si);
	sd_log(LOG_INFO,
	       "made bucket %s with %d replicas (purges, rollups and deletes denied); publishing"
	       " everything again",
	       cfg->bucket, cfg->replicas);
	*made = 1;
	return 0;
}
