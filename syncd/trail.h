/*
 * trail.h - a host's event into the store's audit trail, and a session's
 * state with it (SPEC §11). Shared by events.c, which takes the events of
 * the journal and of the stream, and sessions.c, which makes its own.
 */
#ifndef SD_TRAIL_H
#define SD_TRAIL_H

#include <sqlite3.h>

#include "event.h"
#include "vk.h"

/*
 * The statements of the calls below on one connection, for a batch of
 * events in one transaction: each is prepared at its first use and kept
 * until sd_trail_done(). Start with { .db = db }.
 */
struct sd_trail {
	sqlite3 *db;
	sqlite3_stmt *event, *opened, *ended, *used;
};

/*
 * Stores e as machine's (NULL: none), in the caller's transaction, once:
 * an event already stored (its ID and machine) changes nothing. A session
 * event also sets its session's row: an open makes it (or, when the same
 * process opened one before, marks that one shared: sessions.c signals no
 * process of a shared one), a close closes it and an end ends it (with
 * its reason), each only while it is open.
 * 1 stored, 0 already there, -1 (err says why).
 */
int sd_trail_add(struct sd_trail *t, const struct vk_event *e, const char *machine,
                 char err[VK_ERRLEN]);

/*
 * An allowed login e on machine as its key's last use, when newer than
 * the one recorded; unless own (this host's), only when the key's grants
 * cover that machine: a machine's word counts for the keys that may log
 * in there only. 0, or -1 (err says why).
 */
int sd_trail_use(struct sd_trail *t, const struct vk_event *e, const char *machine, int own,
                 char err[VK_ERRLEN]);

/* Finalizes t's statements. */
void sd_trail_done(struct sd_trail *t);

#endif
