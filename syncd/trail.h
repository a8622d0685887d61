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
 * Stores e as machine's (NULL: none), in the caller's transaction, once:
 * an event already stored (its ID and machine) changes nothing. A session
 * event also sets its session's row: an open makes it (or, when the same
 * process opened one before, marks that one shared: sessions.c signals no
 * process of a shared one), a close closes it and an end ends it (with
 * its reason), each only while it is open.
 * 1 stored, 0 already there, -1 (err says why).
 */
int sd_trail_add(sqlite3 *db, const struct vk_event *e, const char *machine, char err[VK_ERRLEN]);

#endif
