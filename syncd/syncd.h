/*
 * syncd.h - what viamkey-syncd's parts share.
 *
 * One daemon, two jobs (SPEC §8): on the authority it publishes the
 * outbox to the bus and a heartbeat; on a machine it follows its scopes
 * into its replica. bus.c is the NATS side of both; authority.c and
 * machine.c are the two jobs; common/ knows what the records mean.
 * Everything that touches the store runs on the main thread; nats.c's
 * delivery thread only queues messages, checking them on the way on a
 * machine (struct sd_queue).
 */
#ifndef SYNCD_H
#define SYNCD_H

#include <nats/nats.h>
#include <pthread.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdint.h>
#include <syslog.h>

#include "config.h"
#include "log.h"

/*
 * Set by SIGTERM and SIGINT (sd_request_stop(), from main.c's signal
 * thread): the loops finish what they do and return. bus.c owns it.
 */
extern volatile sig_atomic_t sd_stop;

/* Sets sd_stop and wakes the main thread if it waits for the bus. */
void sd_request_stop(void);

/*
 * A message from the bus, with what the queue's check made of it in the
 * delivery thread: the verified record's JSON (pointing into the
 * message's data), or NULL.
 */
struct sd_item {
	natsMsg *msg;
	const char *json;
	size_t json_len;
};

/*
 * Messages handed over by nats.c's delivery thread, and what happened to
 * the connection. `check`, when set before the first subscription, runs on
 * each message in the delivery thread, beside the main thread's work (a
 * machine verifies signatures there while it applies the records before).
 */
struct sd_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sd_item *items; /* a ring */
	size_t head, count, cap;
	int connected; /* set on (re)connect: everything is to be read again */
	int waiting;   /* the main thread waits: signal it */
	int woken;     /* sd_queue_wake() since the last sd_queue_wait() */
	void (*check)(void *ctx, struct sd_item *it);
	void *check_ctx;
};

#define SD_MAX_SUBS 8 /* a machine's: heartbeat, catch-up, three scopes */

struct sd_bus {
	natsConnection *nc;
	jsCtx *js;
	struct sd_queue q;
	const struct vk_sync_config *cfg;
	char stream[96];      /* KV_<bucket> */
	char kv_prefix[96];   /* $KV.<bucket>. */
	char live_prefix[96]; /* vk.<bucket>. : the live subjects the authority publishes on */
	char ack_prefix[96];  /* vkack.<bucket>. : machines' acknowledgements */
	char inbox[128];      /* this daemon's private inbox prefix */
	int pub_failed;       /* async publishes JetStream refused (atomic; see sd_bus_open) */
	int denied_get;       /* direct gets the server refused to this user (atomic) */
	natsSubscription *subs[SD_MAX_SUBS]; /* the live ones, destroyed by sd_bus_close */
	natsSubscription *fetch_sub;         /* sd_bus_fetch()'s replies, kept until the close */
	uint64_t fetch_gen;                  /* tells one fetch's replies from a late one's */
};

/*
 * Connects (or goes on trying in the background: nats.c reconnects for
 * ever, with jitter) with [sync]'s servers and credentials; `name` names
 * the connection; `inbox` is the private inbox prefix (a machine's
 * subscriptions are confined to it). 0, or -1 after logging why.
 */
int sd_bus_open(struct sd_bus *b, const struct vk_sync_config *cfg, const char *name,
                const char *inbox);

/*
 * A JetStream context of its own on b's connection, with the same waits, for
 * another thread than the one using b->js. 0, or -1 after logging why.
 */
int sd_bus_jetstream(struct sd_bus *b, jsCtx **js);
/* Closes the connection; no callback reaches the bus or its queue after it. */
void sd_bus_close(struct sd_bus *b);

/*
 * Whether nats.c closed the connection for good (it does after the same
 * authentication error twice, as an overloaded server can give): said in
 * the log. The daemon then connects again from the start (SD_RECONNECT).
 */
int sd_bus_closed(struct sd_bus *b);

/*
 * Subscribes subject into the queue. The bus keeps the subscription until
 * sd_bus_unsubscribe, or sd_bus_close, destroys it.
 */
int sd_bus_subscribe(struct sd_bus *b, const char *subject, natsSubscription **sub);
void sd_bus_unsubscribe(struct sd_bus *b, natsSubscription *sub);

/*
 * The next message, waiting at most timeout_ms; NULL when none came. A
 * (re)connection sets *connected (and the queue's flag is cleared). `it`,
 * when not NULL, receives the message with what the check found.
 */
natsMsg *sd_queue_pop(struct sd_queue *q, int64_t timeout_ms, int *connected, struct sd_item *it);
/*
 * sd_queue_pop() that sd_queue_wake() also ends (the main loop's idle
 * wait): NULL then. A wake is kept for the next sd_queue_wait(); other
 * pops ignore it.
 */
natsMsg *sd_queue_wait(struct sd_queue *q, int64_t timeout_ms, int *connected, struct sd_item *it);
void sd_queue_wake(struct sd_queue *q);

/*
 * A JetStream API request; the reply's JSON in *reply (malloc()ed) when
 * it carries no error. 0, or -1 with why in err.
 */
int sd_bus_request(struct sd_bus *b, const char *subject, const char *body, char **reply, char *err,
                   size_t errlen);

/*
 * The latest value of entry, read straight from the stream (a JetStream
 * direct get, which any node holding the stream answers: no consumer is
 * made), waiting at most wait_ms. 0 with *value NULL when the entry has
 * none; -1 with why in err (a bucket that is not there yet gives no
 * answer: a timeout).
 */
int sd_bus_last(struct sd_bus *b, const char *entry, int64_t wait_ms, natsMsg **value, char *err,
                size_t errlen);

/* Publishes data on subject, plain NATS (no JetStream): 0, or -1. */
int sd_bus_publish(struct sd_bus *b, const char *subject, const char *data, size_t len);

/*
 * Reads the latest values of n entries straight from the stream (JetStream
 * direct gets, several in flight at once, which any node holding the
 * stream answers), calling got(ctx, i, m) for entry i: m is NULL when the
 * entry has none, and got destroys it otherwise. 0 once every entry was
 * answered; -1 with why in err (a timeout, no bucket on the bus), or -2
 * when the server refused this bus user the reads (a bus set up by the
 * first format's docs, which allowed it only the heartbeat's).
 */
int sd_bus_fetch(struct sd_bus *b, const char *const *entries, size_t n,
                 void (*got)(void *ctx, size_t i, natsMsg *m), void *ctx, char *err, size_t errlen);

/*
 * Catch-up: creates a consumer named `name` on the bucket's entries
 * matching `filter` (an entry pattern such as "m.<id>.>"), delivering the
 * latest value of each to `deliver` (a subject the caller subscribed), and
 * returns how many are pending, or -1 (after 2 s without an answer: a
 * "Timeout"). sd_bus_consumer_done() deletes it.
 */
int64_t sd_bus_consumer(struct sd_bus *b, const char *name, const char *filter, const char *deliver,
                        char *err, size_t errlen);
void sd_bus_consumer_done(struct sd_bus *b, const char *name);

/*
 * A stream of the authority's that whoever may publish into it, or make
 * the server answer into it, cannot wipe (SPEC §8, rule 7): on disk,
 * replicated, refusing new messages when full, without rollups, purges or
 * message deletes. sd_stream_guard() sets that in sc;
 * sd_stream_guarded() says whether a stream's config has it.
 */
void sd_stream_guard(jsStreamConfig *sc, int replicas);
int sd_stream_guarded(const jsStreamConfig *sc);

/*
 * Sixteen random hex digits, for catch-up consumers' names: unguessable,
 * so that no other bus user can take or delete a machine's consumer by name.
 */
void sd_random_tag(char tag[17]);

/* Messages still to come from a consumer, from a delivered message's reply subject; -1 if none. */
int64_t sd_msg_pending(natsMsg *m);

/* The entry a message is about ("m.<id>.k.<id>"), from its subject; NULL if it is not the bucket's.
 */
const char *sd_msg_entry(const struct sd_bus *b, natsMsg *m);

/*
 * The authority's bucket (bucket.c): made when it is missing, made again
 * when an older viamkey-syncd made it otherwise; *made says whether it was
 * (then everything must be published again). 0, or -1 after logging why.
 */
int sd_bucket_ensure(struct sd_bus *b, const struct vk_sync_config *cfg, int *made);

/*
 * The machines' acknowledgements, on the authority (acks.c): subscribed
 * (both ways machines send them), recorded (m and whatever is queued behind
 * it, in one transaction; with a catch-up consumer's counts as
 * sd_acks_read() uses them), and read again from the bucket after a
 * (re)connect (tag: the consumer's random name part). 0, or -1.
 */
int sd_acks_subscribe(struct sd_bus *b);
/* The machine an acknowledgement's subject names, or NULL when m is none. */
const char *sd_ack_machine(const struct sd_bus *b, natsMsg *m);
/* Records one: {"machine", "rev", "at", "format", "error"}, in the caller's transaction. */
void sd_ack_record(sqlite3 *db, const struct sd_bus *b, natsMsg *m);
int sd_acks_record(sqlite3 *db, struct sd_bus *b, natsMsg *m, int *connected, int64_t *got,
                   int64_t pending);
int sd_acks_read(sqlite3 *db, struct sd_bus *b, char tag[17]);

/* The authority lease (lease.c): who holds it, and the stream sequence of its value. */
struct sd_lease {
	int present;
	uint64_t seq;
	char holder[192];
	int64_t epoch, until;
};

/* Reads the lease into l (l->present 0: there is none). 0, or -1 with why in err. */
int sd_lease_read(struct sd_bus *b, sqlite3 *db, struct sd_lease *l, char *err, size_t errlen);

/* How the lease names a host's authority: the host, and the start of its key. */
void sd_lease_holder(const char *host, const unsigned char *pk, char *out, size_t size);

/*
 * Takes the lease for holder in epoch until `until`, signed with sk, if it
 * is still as l says (compare-and-swap); l then says it is held so. 0
 * taken, 1 someone changed it first (read it again), -1 with why in err.
 */
int sd_lease_take(struct sd_bus *b, const unsigned char *sk, struct sd_lease *l, const char *holder,
                  int64_t epoch, int64_t until, char *err, size_t errlen);

/*
 * The authority's side of the bus's identities (admit.c): join requests
 * answered, and the MACHINES account's JWT kept on the bus as the store
 * says, once keyadm bus init made them. Polled by the authority's loop;
 * nothing to do for a bus set up by hand.
 */
struct vk_bus_keys;
struct sd_admit {
	natsSubscription *sub;    /* vkjoin.<bucket>, read on the main thread */
	struct vk_bus_keys *keys; /* [sync] account_key, sodium_malloc()ed, once loaded */
	int64_t next_look_ms;     /* when to look at the revocations (and for the keys) again */
	int said;                 /* why the keys cannot be loaded, logged once */
	int refreshed;            /* older machines' identities issued again (admit.c) */
};
void sd_admit_poll(struct sd_admit *ad, sqlite3 *db, natsConnection *nc, const unsigned char *sk,
                   const struct vk_config *cfg);
void sd_admit_close(struct sd_admit *ad);

/*
 * The jobs; each returns the exit status. `once`: one full pass, then
 * exit. SD_RECONNECT: to be run again, to connect again from the start: a
 * machine whose bus identity changed (with its new credentials), or any
 * daemon whose connection nats.c closed for good.
 */
#define SD_RECONNECT 100
int sd_authority(const struct vk_config *cfg, const char *store, int once);
int sd_machine(const struct vk_config *cfg, const char *store, int once);

/*
 * Whether the store db, at path, may be a machine's replica: a replica, or
 * a standalone store that holds no key (it becomes one), not the
 * authority's. 0, or -1 with why.
 */
int sd_replica_usable(sqlite3 *db, const char *path, char why[VK_ERRLEN]);

/*
 * `viamkey-syncd join` (join.c): a new host joins the fleet with a join
 * token; argv from its own name on. The exit status.
 */
int sd_join(int argc, char **argv);
/* A standby (standby.c): follows everything; promoted, it runs sd_authority() on. */
int sd_standby(const struct vk_config *cfg, const char *store, int once);

#endif
