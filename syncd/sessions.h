/*
 * sessions.h - a revocation ends the sessions the key already opened on
 * this host (sessions.c, SPEC §11).
 */
#ifndef SD_SESSIONS_H
#define SD_SESSIONS_H

#include <sqlite3.h>
#include <stdint.h>

#include "config.h"
#include "metrics.h"
#include "vk.h"

#define SD_SESSIONS_KILLS 64 /* processes waiting for their SIGKILL */

struct sd_sessions {
	const char *configured;           /* [machine] id, or NULL: the store's */
	char machine[VK_UUID_STRLEN + 1]; /* this host's, once found */
	int end;                          /* [sync] end_sessions */
	int64_t data_version, changes;    /* the store as last checked */
	sqlite3_stmt *version;            /* PRAGMA data_version, prepared once */
	int open;                         /* open sessions at the last check (-1: unknown) */
	int64_t next_ms;                  /* the next check without a change, when some are open */
	int told;                         /* a failure to check was said */
	struct sd_kill {
		int64_t pid, start, due_ms;
	} kills[SD_SESSIONS_KILLS];
	int nkills;
	struct sd_metrics *metrics;
};

void sd_sessions_open(struct sd_sessions *ss, const struct vk_config *cfg,
                      struct sd_metrics *metrics);

/* What sd_sessions_tick() keeps prepared, finalized: before the store's connection closes. */
void sd_sessions_close(struct sd_sessions *ss);

/*
 * After a change to the store (its own writes or another's), and once a
 * second when nothing changed while sessions are open (a key's expiry):
 * every open session of this host checked again; one its key could no longer open ended, one
 * whose process is gone closed, each with its event (trail.h). Outside any
 * transaction of the caller's.
 */
void sd_sessions_tick(struct sd_sessions *ss, sqlite3 *db);

#endif
