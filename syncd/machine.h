/*
 * machine.h - viamkey-syncd on a machine: what its parts share.
 *
 * machine.c runs the loop (live messages, acknowledgements); catchup.c
 * reads the bus again (reconcile); replica.c applies what either brings
 * to the replica and compares each scope with its head. They call each
 * other only downward: machine.c, catchup.c, replica.c.
 */
#ifndef SD_MACHINE_H
#define SD_MACHINE_H

#include "events.h"
#include "head.h"
#include "metrics.h"
#include "record.h"
#include "syncd.h"
#include "trust.h"

#define SD_SCOPES 3 /* the machine's own, its location's, its organization's */

struct sd_scope {
	char name[VK_SCOPE_MAX]; /* "m.<id>", "l.<id>", "o.<id>"; "" while unknown */
	natsSubscription *live;
	int complete;  /* the replica matches the head held, and no record came since */
	char why[192]; /* when it does not: what is missing or stale */
	char *head;    /* a verified head that came live, held until the next heartbeat */
	size_t head_len;
	int64_t head_epoch, head_rev;
};

/*
 * The key nats.c's delivery thread verifies with (sd_check_record()): the
 * trusted epoch's, which the main thread changes when the epoch rises.
 */
struct sd_keyring {
	pthread_mutex_t mu;
	int have;
	unsigned char key[VK_PUBLIC_KEY_BYTES];
};

/* A trusted heartbeat's place in their order (rule 4 of machine.c). */
struct sd_beat {
	int known;
	int64_t epoch, seq; /* seq -1: an uncounted heartbeat, of an authority of format 1 */
	int64_t rev;
};

struct machine {
	const struct vk_config *cfg;
	sqlite3 *db;
	struct vk_replica *replica;
	struct sd_bus bus;
	struct vk_trust trust; /* whom this machine believes (trust.h) */
	struct sd_keyring ring;
	const char *id;
	struct sd_scope scopes[SD_SCOPES];
	natsSubscription *hb_sub, *catch_up_sub;
	char deliver[160];
	int in_txn;
	int lazy;                      /* synchronous = NORMAL: sd_begin_lazy()'s transaction */
	int64_t lazy_epoch, lazy_root; /* the trust when it began */
	int unsynced; /* it moved the trust: the log is synced before what follows */
	int64_t applied_rev, acked_rev;
	int64_t last_hb_ms, last_ack_ms, next_ack_ms, next_resync_ms, retry_ms, next_retry_ms;
	int64_t trim_at_ms; /* when to give back what the last catch-up's messages took, or 0 */
	char tag[17];       /* in the catch-up consumers' names: random, new after a timeout */
	int full;           /* a standby's full copy: every scope, no heads, no acknowledgement */
	int need_reconcile, was_reconnected;
	int need_repair; /* a scope was incomplete at the last heartbeat: read what it lacks */
	int consumers;   /* this connection reads by catch-up consumers (a bus of format 1) */
	int heads;       /* the authority publishes scope heads (its heartbeat says format 2) */
	int waiting_first_hb; /* the bus has no heartbeat yet: the first one starts a reconcile */
	struct sd_beat beat;  /* the trusted heartbeat the last sd_apply() met, newer or not */
	struct sd_beat first_live; /* the first that came live on this connection */
	struct sd_beat read;       /* the one the last reading of every scope met on the bus */
	int sound; /* that reading covers all that came before this connection (rule 4) */
	long applied;
	char error[256]; /* what the replica lacks, for sync status and the acknowledgement */
	char acked_error[256];
	int reconnect; /* its bus identity changed: connect again, with the new credentials */
	struct sd_metrics metrics;
	struct sd_events events; /* this host's logins, to the authority */
};

/* ---- identity.c ---------------------------------------------------------------- */

/*
 * After this machine's own record (json, len bytes) was applied: when it
 * carries a JWT other than the one in [sync] credentials, the file gets it
 * (with the seed it holds) and m->reconnect is set.
 */
void sd_identity_take(struct machine *m, const char *json, size_t len);

/* ---- replica.c ---------------------------------------------------------------- */

/*
 * The replica's connection: every commit reaches the disk before it
 * counts (an applied revocation stays applied), and the journal of each
 * record's savepoint stays in memory (in a temporary file, it cost two
 * writes for each page a record changed: most of a first sync's time).
 * The memory is a savepoint's pages: a record's few, or, once, every page
 * a prune of all keys changes.
 */
void sd_replica_tune(sqlite3 *db);

/* One transaction, committed durably (rule 4 of replica.c): 0, or -1 (logged). */
int sd_begin(struct machine *m);
int sd_commit(struct machine *m);

/*
 * The transaction of what is not a change, committed without waiting for
 * the disk (synchronous = NORMAL on a write-ahead log): a live heartbeat, a
 * scope's head, the revision acknowledged. A power cut that loses them
 * leaves an older heartbeat, whose signed time only makes the replica look
 * staler (a login fails closed; no revocation is undone), and older heads,
 * which the reconcile of the next start reads again; the records they
 * describe were each committed durably when they came. The next durable
 * commit takes them to the disk with its own. A heartbeat that moved the
 * trust (a new epoch or root version) is synced at its commit all the same.
 * Saves an idle machine a disk flush per heartbeat, and a change two of
 * its three (the record's own is the one left).
 */
int sd_begin_lazy(struct machine *m);

/* Whether a message on entry is one sd_begin_lazy() applies: a heartbeat or a scope's head. */
int sd_entry_lazy(const char *entry);

/*
 * A scope's head that came live (entry "<scope>.h"), verified by the
 * delivery thread, is only compared with the replica at the next heartbeat:
 * it waits in memory (the newest of those that came) and sd_heads_take()
 * keeps it in the heartbeat's transaction, which saves a transaction of its
 * own. 1 when it was held so, or dropped as older than the one held; 0
 * when it is for sd_apply().
 */
int sd_head_later(struct machine *m, const struct sd_item *it, const char *entry);

/* Keeps the heads that came live since the last heartbeat (in the transaction open). */
void sd_heads_take(struct machine *m);

/* Forgets the head of scope i that came live. */
void sd_head_forget(struct machine *m, int i);

/* The record check nats.c's delivery thread runs on every message (ring: a struct sd_keyring). */
void sd_check_record(void *ring, struct sd_item *it);

/* Loads the trust of the replica and the config; 0, or -1 after logging why. */
int sd_trust_load(struct machine *m);

/*
 * Applies one value from the bus, the value of `entry` (NULL: not the
 * bucket's), inside the open transaction: a record, a heartbeat or a scope
 * head; verified by the queue's check, or here. floor: the revision the
 * scope's index page says the entry is at (0: none known); a record older
 * than that is refused and reported. *hb is the revision of a newer
 * heartbeat it carried, or -1. 1 when it was applied, 0 when it was not,
 * -1 when it was refused as stale or misfiled.
 */
int sd_apply(struct machine *m, const struct sd_item *it, const char *entry, int64_t floor,
             int64_t *hb);

/* Records the replica's revision: the last heartbeat's, once its view was complete. */
void sd_set_applied(struct machine *m, int64_t rev);

/* A new connection (rule 4 of machine.c): no heartbeat has come on it yet. */
void sd_view_reset(struct machine *m);

/* Whether heartbeat a is b or one after it; an uncounted heartbeat is taken as in time. */
int sd_beat_reached(const struct sd_beat *a, const struct sd_beat *b);

/* Records what the replica lacks (NULL: nothing) for sync status and acknowledgements. */
void sd_note_error(struct machine *m, const char *what);

/* Subscribes the live path of every scope the replica knows; 1 when that changed them. */
int sd_follow_scopes(struct machine *m);

/*
 * Compares scope i with the head the replica holds of it: sets its
 * complete and why; *pages and *tree say what differs (NULL: not wanted).
 * 0, or -1 when the store could not say.
 */
int sd_check_scope(struct machine *m, int i, unsigned *pages, int *tree);

/* Whether every known scope is complete (a fleet of format 1 has no heads to check). */
int sd_complete(struct machine *m);

/* ---- catchup.c ------------------------------------------------------------------ */

/*
 * SPEC §8 rule 5: reads the heartbeat and every scope again. 0 when the
 * replica is in step; 1 when the bus has no heartbeat yet (the first one
 * starts it again); 2 when a scope is incomplete (the bus lacks entries its
 * head lists: m->error says which); -1 when the bus did not answer.
 */
int sd_reconcile(struct machine *m);

/*
 * Reads scope i's head, the pages that differ and the keys they list anew.
 * 0 complete, 1 not (its why says what the bus lacks), -1 the bus did not
 * answer, -2 it refused this user direct reads.
 */
int sd_repair_scope(struct machine *m, int i);

/* A standby's reconcile: the heartbeat, then the whole bucket by a catch-up consumer. 0, -1. */
int sd_reconcile_all(struct machine *m);

/* Gives the heap back to the system after a large catch-up, once its time has come. */
void sd_trim(struct machine *m);

#endif
