/*
 * events.h - what happens on the hosts, to the authority (events.c,
 * SPEC §11): every daemon takes the module's journal into its store;
 * a machine (or a standby) sends its events on; the authority takes
 * everyone's from the events stream.
 */
#ifndef SD_EVENTS_H
#define SD_EVENTS_H

#include <pthread.h>

#include "metrics.h"
#include "sessions.h"
#include "syncd.h"
#include "watch.h"

enum { SD_EVENTS_MACHINE, SD_EVENTS_AUTHORITY };

/*
 * How often the journal is looked at: a daemon's loop waits no longer when
 * idle. A machine whose journal is watched (watch.h) looks at it as it is
 * written, and otherwise once a second (its sessions, sends to retry).
 */
#define SD_EVENTS_EVERY_MS   250
#define SD_EVENTS_WATCHED_MS 1000

struct sd_events {
	int role;
	const char *machine; /* [machine] id: the events' machine, and its subject's */
	int64_t keep;        /* [audit] keep, seconds */
	int replicas;        /* of the stream, when the authority makes it */
	int last_use;        /* events keep the keys' last use (the authority) */
	char journal[4096], work[4096];
	char filter[160];  /* vkev.<bucket>.* */
	char stream[160];  /* VKEV_<bucket> */
	char subject[224]; /* vkev.<bucket>.<machine ID> */
	int64_t next_ms, next_send_ms, next_prune_ms;
	int64_t next_fetch_ms; /* the authority's next fetch while nothing goes by */
	int fetch_more;        /* the last fetch brought messages: fetch again */
	int fetch_batch;       /* how many messages the next fetch asks for */
	int64_t answer_ms;     /* how long a fetch waits for the server after its expiry */
	int refused;           /* the bus did not take the last event sent (said once) */
	int64_t lock_since_ms; /* sd_now_ms() since when an append holds the journal up (0: none) */
	int64_t last_ms;       /* sd_now_ms() of the last look */
	natsStatus fetch_status; /* the last fetch's error, said when it changes (NATS_OK: none) */
	int64_t retry_ms;        /* the wait after the last failed send (0: it went) */
	int64_t failing_since;   /* sd_now_ms() of the first of the failed sends in a row */
	int reconnected;         /* a new connection: the next look publishes plainly */
	int unsent;              /* events were left to send at the last look */
	int64_t ahead;           /* the last event published, confirmed or not */
	int64_t send_changes;    /* the store's changes by this connection at the last look */
	natsSubscription *sub;   /* the replies to the authority's pull requests */
	uint64_t fetch_gen;      /* numbers them: <inbox>.ev.<n> */
	const char *store;       /* the store's path, for the intake thread's connection */
	/*
	 * The authority's intake thread (events.c): the events subjects as
	 * they go by, and the stream. While it runs, the stream's fields
	 * above (sub, fetch_*, next_fetch_ms, next_send_ms) are its own.
	 */
	int live_tried; /* started once; it runs while live is set */
	pthread_t live_thread;
	natsSubscription *live;
	sqlite3 *live_db;
	struct sd_bus *bus;
	jsCtx *js;            /* its own, on the bus's connection */
	int live_stop;        /* atomic: to the thread */
	uint64_t live_stored; /* atomic: events it stored, for the metrics */
	int64_t take_until;   /* atomic: the stream is read until then (vk_now()): the lease */
	struct sd_metrics *metrics;
	struct sd_sessions sessions; /* this host's, ended on revocation */
	struct sd_watch watch;       /* the journal, a machine's (sd_events_watch) */
};

/*
 * Sets ev up for the store at `store` (role SD_EVENTS_MACHINE for a
 * machine or a standby). 0, or -1 after logging why.
 */
int sd_events_open(struct sd_events *ev, const struct vk_config *cfg, const char *store, int role,
                   struct sd_metrics *metrics);
/*
 * Every SD_EVENTS_EVERY_MS at most: the journal into the store, this host's
 * sessions checked (sessions.h), then this host's events to the stream (a machine) or the stream's
 * into the store (the authority); and, every ten minutes, events older than [audit] keep deleted.
 * Outside any transaction of the caller's.
 */
void sd_events_tick(struct sd_events *ev, sqlite3 *db, struct sd_bus *b);
/*
 * A machine's journal watched (watch.h): an append wakes q's
 * sd_queue_wait() and the next sd_events_tick() looks at once; between
 * appends the ticks come SD_EVENTS_WATCHED_MS apart. Unwatched (this not
 * called, or inotify failing), SD_EVENTS_EVERY_MS apart.
 */
void sd_events_watch(struct sd_events *ev, struct sd_queue *q);
/* How long the caller's loop may wait for the next sd_events_tick() to be due (ms, 1 or more). */
int64_t sd_events_wait_ms(struct sd_events *ev);
/*
 * A machine's connection to the bus is new (a node lost, say): the next
 * look (sd_events_tick(), which the caller runs at once when it can, before
 * anything else waits on the bus) publishes plainly the events not yet
 * confirmed, SEND_BATCH of them, for the authority to take as they go by
 * (and the stream to store); a send to the stream goes at once after it,
 * its failures counted afresh. No I/O.
 */
void sd_events_connected(struct sd_events *ev);
/*
 * The authority, once connected: starts the intake thread (once), which
 * takes the logins that go by and looks the stream's consumer up, and
 * reads the stream only once sd_events_allow() says it may.
 */
void sd_events_start(struct sd_events *ev, struct sd_bus *b);
/*
 * The authority: until when (vk_now() seconds) it may take events from the
 * stream, the end of the lease it holds (INT64_MAX without one, 0 when
 * another holds it); starts the intake thread when until is not 0, which
 * reads the stream until then, even while the caller's loop waits on the
 * bus.
 */
void sd_events_allow(struct sd_events *ev, struct sd_bus *b, int64_t until);
/* Before the bus closes. */
void sd_events_close(struct sd_events *ev);

#endif
