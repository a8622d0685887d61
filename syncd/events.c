/*
 * events.c - what happens on the hosts reaches the authority (SPEC §11).
 *
 * Every daemon takes the module's journal (journal.h) into its store's
 * audit trail, with this host's machine ID. A machine's daemon, and a
 * standby's, then send those events to the authority: each on
 * vkev.<bucket>.<machine ID> into the events stream, with its ID as the
 * stream's message ID. The authority's daemon takes them from the stream
 * into its audit trail, with the machine ID of the subject they came on,
 * and keeps each key's last use, fleet-wide. It also takes the logins as
 * they go by on those subjects, so that a stream without a leader holds
 * none up; a machine whose send was not confirmed publishes what came
 * since without waiting, for the same reason.
 *
 * Security rules for this file:
 *  1. An event is stored only as vk_event_decode() accepts it, whoever
 *     wrote it: the journal, and the stream, may hold anything.
 *  2. On the authority an event's machine is the one its subject names,
 *     the only subject that machine's bus user may publish on; nothing in
 *     the event can name another.
 *  3. At least once, and stored once: an event leaves a replica's "sent"
 *     mark only after JetStream confirmed it, a message leaves the stream
 *     only after the authority committed it, and the journal's work file
 *     goes only after its events were committed. Whatever came twice (from
 *     the subjects and the stream, say) is one row: its ID and machine are
 *     unique. A session's events come from the stream only, in order.
 *  4. The events stream, like the bucket, denies purges, deletes and
 *     rollups, and a message leaves it only when the authority took it
 *     (work-queue retention).
 *  5. A login never waits for any of this (journal.c).
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duration.h"
#include "event.h"
#include "events.h"
#include "journal.h"
#include "store.h"
#include "token.h"
#include "trail.h"

#define PRUNE_MS      (10 * 60000)         /* between prunes of events older than [audit] keep */
#define PRUNE_BATCH   10000                /* events deleted in one statement of a prune */
#define LOCK_WAIT_MS  10000                /* how long the journal's appends may hold it up */
#define LOOK_GAP_MS   100                  /* between looks that appends woke */
#define READ_MAX      (4 * VK_JOURNAL_MAX) /* what one look reads of the work file */
#define FUTURE_MAX    300                  /* seconds an event's time may be ahead of ours */
#define PER_MACHINE   100000               /* events of one machine the stream holds at most */
#define ERR_TOO_BIG   10054                /* JetStream: larger than the stream takes */
#define SEND_BATCH    64                   /* events sent in one look */
#define SEND_WAIT_MS  2000                 /* for JetStream to confirm one */
#define RETRY_MIN_MS  1000                 /* before trying again after a failed send, */
#define ELECTION_MS   10000                /* while the sends have failed no longer than this, */
#define REFUSED_MS    60000       /* then doubled up to this: a bus that refuses our events, say */
#define FETCH_WAIT_MS 50          /* a fetch's expiry (see pull()) */
#define ANSWER_MS     50          /* and the wait for the server's answer after it, at first */
#define ANSWER_MAX_MS 1000        /* doubled while the server does not answer in time */
#define FETCH_IDLE_MS 2000        /* between fetches while the subjects carry nothing */
#define LIVE_WAIT_MS  250         /* the intake thread's wait for a message, between looks */
#define LIVE_SLOW_MS  200         /* a take of the logins going by that --verbose tells of */
#define FETCH_BATCH   256         /* events the authority takes in one look, at most */
#define FETCH_FIRST   32          /* and in the first of a run (see fetch_stream()) */
#define ACK_WAIT_S    10          /* before the stream gives again what was not acknowledged */
#define STREAM_BYTES  (1LL << 30) /* the stream's limit: 1 GiB */
#define META_SENT     "events_shipped" /* a replica's: the last event ID JetStream confirmed */
#define CONSUMER      "vk-events"
#define OPT_TEXT(s)   ((s)[0] != '\0' ? (s) : NULL)

/* ---- the journal, into the store ------------------------------------------------ */

/* An empty journal at path, in place of whatever is there (rename(2)). 0, or -1. */
static int
fresh_journal(const char *path)
{
	char tmp[4200];
	int fd, bad;

	snprintf(tmp, sizeof tmp, "%s.new", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		sd_log(LOG_ERR, "cannot make the events journal %s: %s", path, strerror(errno));
		return -1;
	}
	bad = fchmod(fd, 0600) != 0;
	bad |= close(fd) != 0;
	if (bad || rename(tmp, path) != 0) {
		sd_log(LOG_ERR, "cannot make the events journal %s: %s", path, strerror(errno));
		(void)unlink(tmp);
		return -1;
	}
	return 0;
}

/*
 * The journal's lines into buf (malloc()ed, *len bytes), from the work
 * file, which a journal with lines becomes first (journal.h). 0 with *buf
 * NULL: nothing to take; -1 after logging why.
 */
static int
take_journal(struct sd_events *ev, char **buf, size_t *len)
{
	struct stat st;
	ssize_t got;
	int fd;

	*buf = NULL;
	*len = 0;
	if (lstat(ev->work, &st) != 0) {
		if (errno != ENOENT || lstat(ev->journal, &st) != 0)
			return errno == ENOENT ? fresh_journal(ev->journal) : -1;
		if (st.st_size == 0)
			return 0;
		if (link(ev->journal, ev->work) != 0 || fresh_journal(ev->journal) != 0) {
			sd_log(LOG_ERR, "cannot take the events journal %s: %s", ev->journal,
			       strerror(errno));
			return -1;
		}
	}
	fd = open(ev->work, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	/* link(2) done, rename(2) not, before a crash: two links */
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink > 2 ||
	    (st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 077) != 0) {
		sd_log(LOG_ERR, "%s is not a journal of this daemon's: removed", ev->work);
		if (fd >= 0)
			close(fd);
		(void)unlink(ev->work);
		return -1;
	}
	/*
	 * The appends that found this file in place have written once this is
	 * ours. An append held up (its process stopped in it) holds up the looks
	 * for LOCK_WAIT_MS; then the file is read all the same, and that append's
	 * line may be lost.
	 */
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (ev->lock_since_ms == 0)
			ev->lock_since_ms = sd_now_ms();
		if (errno == EWOULDBLOCK && sd_now_ms() - ev->lock_since_ms < LOCK_WAIT_MS) {
			close(fd);
			return 0;
		}
		sd_log(LOG_WARNING, "an append has held the events journal %s for long: reading it",
		       ev->work);
	}
	ev->lock_since_ms = 0;
	if (fstat(fd, &st) != 0) {
		close(fd);
		sd_log(LOG_ERR, "cannot read the events journal %s", ev->work);
		return -1;
	}
	if (st.st_size > READ_MAX) { /* appends that passed the size check at once */
		sd_log(LOG_WARNING,
		       "the events journal %s holds %lld bytes: the first %d are taken", ev->work,
		       (long long)st.st_size, READ_MAX);
		st.st_size = READ_MAX;
	}
	if ((*buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		sd_log(LOG_ERR, "out of memory for the events journal %s", ev->work);
		return -1;
	}
	got = pread(fd, *buf, (size_t)st.st_size, 0);
	close(fd);
	if (got != st.st_size) {
		free(*buf);
		*buf = NULL;
		sd_log(LOG_ERR, "cannot read the events journal %s", ev->work);
		return -1;
	}
	*len = (size_t)got;
	return 0;
}

/*
 * Stores e as machine's (NULL: none), in the caller's transaction: once
 * (rule 3), and on the authority as the key's last use when newer; from
 * the bus (not own: this host's journal), only for a key whose grant
 * covers that machine. 1 stored, 0 held already, -1 failed.
 */
static int
store_event(struct sd_events *ev, struct sd_trail *t, const struct vk_event *e, const char *machine,
            int own, char err[VK_ERRLEN])
{
	int added = sd_trail_add(t, e, machine, err);

	if (added <= 0 || !ev->last_use || strcmp(e->kind, "login") != 0 ||
	    strcmp(e->what, "allow") != 0)
		return added;
	return sd_trail_use(t, e, machine, own, err) == 0 ? 1 : -1;
}

/*
 * The journal's events into the store, in one transaction; then the work
 * file goes. 1 when it went (appends may have reached the new journal
 * meanwhile), else 0.
 */
static int
collect(struct sd_events *ev, sqlite3 *db)
{
	struct sd_trail t = {.db = db};
	char err[VK_ERRLEN], *buf;
	size_t len, start = 0;
	long bad = 0, n = 0;
	struct vk_event e;

	if (take_journal(ev, &buf, &len) != 0 || buf == NULL)
		return 0;
	if (vk_store_begin(db, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		free(buf);
		return 0;
	}
	while (start < len) {
		char *nl = memchr(buf + start, '\n', len - start);
		size_t end = nl != NULL ? (size_t)(nl - buf) + 1 : len;

		/* records are separated by empty lines; a fragment (journal.h) is as bad as any */
		if (nl != NULL && end - start == 1) {
			start = end;
			continue;
		}
		if (nl == NULL || vk_event_decode(buf + start, end - start, &e) != 0)
			bad++;
		else if (store_event(ev, &t, &e, ev->machine, 1, err) < 0)
			goto failed;
		else
			n++;
		start = end;
	}
	free(buf);
	sd_trail_done(&t);
	if (vk_store_commit(db, err) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return 0;
	}
	(void)unlink(ev->work);
	ev->metrics->events_collected += (uint64_t)n;
	if (bad > 0)
		sd_log(LOG_WARNING, "the events journal held %ld lines that are no events: skipped",
		       bad);
	return 1;
failed:
	free(buf);
	sd_trail_done(&t);
	vk_store_rollback(db);
	sd_log(LOG_ERR, "%s", err);
	return 0;
}

/* ---- a replica's events, to the authority --------------------------------------- */

static void
copy_column(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", v != NULL ? (const char *)v : "");
}

/* Row st (as send()'s query reads it) as an event; 0, or -1 when it is not one. */
static int
row_event(sqlite3_stmt *st, struct vk_event *e)
{
	char line[VK_EVENT_LINE_MAX + 1], action[24];
	const char *dot;

	memset(e, 0, sizeof *e);
	copy_column(e->uid, sizeof e->uid, st, 1);
	e->at = sqlite3_column_int64(st, 2);
	copy_column(e->kind, sizeof e->kind, st, 3);
	copy_column(action, sizeof action, st, 4);
	if ((dot = strchr(action, '.')) == NULL)
		return -1;
	snprintf(e->what, sizeof e->what, "%s", dot + 1);
	copy_column(e->reason, sizeof e->reason, st, 5);
	copy_column(e->key_id, sizeof e->key_id, st, 6);
	copy_column(e->user, sizeof e->user, st, 7);
	copy_column(e->service, sizeof e->service, st, 8);
	copy_column(e->rhost, sizeof e->rhost, st, 9);
	if (strcmp(e->kind, "session") == 0) {
		char role[sizeof e->session.role], secret[sizeof e->session.secret],
		    logind[sizeof e->session.logind];

		copy_column(role, sizeof role, st, 10);
		copy_column(secret, sizeof secret, st, 11);
		copy_column(logind, sizeof logind, st, 12);
		if (vk_event_set_session(e, role, secret, logind, sqlite3_column_int64(st, 13),
		                         sqlite3_column_int64(st, 14)) != 0)
			return -1;
	}
	/* what the store holds came through the decoder; a row changed since is refused here */
	return vk_event_decode(line, vk_event_encode(e, line), e);
}

/*
 * One event to the stream; 0 confirmed, 1 refused for good (too large for
 * the stream: it is passed over, said), -1 not (why logged, once while it
 * lasts).
 */
static int
send_one(struct sd_events *ev, struct sd_bus *b, const struct vk_event *e)
{
	char line[VK_EVENT_LINE_MAX + 1];
	size_t len = vk_event_encode(e, line);
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MaxWait = SEND_WAIT_MS;
	po.MsgId = e->uid;
	s = js_Publish(&pa, b->js, ev->subject, line, (int)len, &po, &jerr);
	jsPubAck_Destroy(pa);
	if (s == NATS_OK) {
		if (ev->refused)
			sd_log(LOG_INFO, "the bus takes this host's events again");
		ev->refused = 0;
		ev->retry_ms = 0;
		return 0;
	}
	if (jerr == ERR_TOO_BIG) {
		sd_log(LOG_WARNING, "event %s is larger than the events stream takes: not sent",
		       e->uid);
		ev->retry_ms = 0; /* the stream answered: no failure to count */
		return 1;
	}
	/*
	 * A bus node lost, a stream electing its leader (5 to 7 s): every
	 * second while that may last; a bus that refuses for good: slowly,
	 * after doubling there. "No responders" is both: a stream without a
	 * leader answers so for seconds, and so does an account that does not
	 * import the subject, for ever.
	 */
	if (ev->retry_ms == 0)
		ev->failing_since = sd_now_ms();
	ev->retry_ms = sd_now_ms() - ev->failing_since < ELECTION_MS ? RETRY_MIN_MS
	               : ev->retry_ms * 2 > REFUSED_MS               ? REFUSED_MS
	                                                             : ev->retry_ms * 2;
	if (!ev->refused)
		sd_log(LOG_WARNING,
		       "the bus did not take this host's events on %s: %s (%s); kept, tried again"
		       " (every %d s at most: does the bus's MACHINES account import %s?)",
		       ev->subject, natsStatus_GetText(s), nats_GetLastError(NULL),
		       REFUSED_MS / 1000, ev->subject);
	ev->refused = 1;
	return -1;
}

/*
 * One event on its subject, with no wait for a confirmation: the
 * authority's live subscription takes it at once, and the stream, if it
 * stores it, keeps it once by its ID when it is sent again.
 */
static void
publish_plain(struct sd_events *ev, struct sd_bus *b, const struct vk_event *e)
{
	char line[VK_EVENT_LINE_MAX + 1];
	size_t len = vk_event_encode(e, line);
	natsMsg *m = NULL;

	if (natsMsg_Create(&m, ev->subject, NULL, line, (int)len) == NATS_OK &&
	    natsMsgHeader_Set(m, "Nats-Msg-Id", e->uid) == NATS_OK)
		(void)natsConnection_PublishMsg(b->nc, m);
	natsMsg_Destroy(m);
}

/*
 * This host's events not yet confirmed, to the stream, oldest first.
 * While a failed send's wait runs, those not yet published at all are
 * published plainly, so that a stream without a leader holds up none; on
 * a new connection, those not yet confirmed, from the oldest (what went
 * before it may have been lost), SEND_BATCH of them.
 */
static void
send_events(struct sd_events *ev, sqlite3 *db, struct sd_bus *b)
{
	int64_t sent = 0, last;
	int plain = ev->reconnected || sd_now_ms() < ev->next_send_ms, rc;
	char err[VK_ERRLEN];
	sqlite3_stmt *st;
	struct vk_event e;

	if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
		return;
	/* only this daemon stores events to send: none stored since a look that left none, none */
	if (!ev->unsent && sqlite3_total_changes64(db) == ev->send_changes) {
		ev->reconnected = 0;
		return;
	}
	if (vk_store_query_int(db, "cannot read the events sent", err, &sent,
	                       "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                       " WHERE name = '" META_SENT "'), 0)",
	                       "") != VK_OK ||
	    vk_store_prepare(db, "cannot read the events to send", err, &st,
	                     "SELECT id, uid, at, kind, action, reason, key_id, user, service,"
	                     " rhost, session_role, session_secret, session_logind, session_pid,"
	                     " session_start FROM events WHERE id > ?1 AND uid IS NOT NULL"
	                     " AND machine_id = ?2 ORDER BY id LIMIT ?3",
	                     "iti",
	                     plain && !ev->reconnected && ev->ahead > sent ? ev->ahead : sent,
	                     ev->machine, (int64_t)SEND_BATCH) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return;
	}
	last = sent;
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (plain) {
			if (row_event(st, &e) == 0)
				publish_plain(ev, b, &e);
			ev->ahead = sqlite3_column_int64(st, 0);
			continue;
		}
		if (row_event(st, &e) != 0) {
			sd_log(LOG_WARNING, "event %lld in the store is no event: not sent",
			       (long long)sqlite3_column_int64(st, 0));
		} else if ((rc = send_one(ev, b, &e)) < 0) {
			ev->next_send_ms = sd_now_ms() + ev->retry_ms;
			ev->ahead = sqlite3_column_int64(st, 0); /* published, not confirmed */
			break;
		} else if (rc == 0) {
			ev->metrics->events_shipped++;
		}
		last = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	ev->reconnected = 0;
	if (last > sent &&
	    vk_store_exec(db, "cannot record the events sent", err, NULL,
	                  "INSERT INTO meta (name, value) VALUES ('" META_SENT "', ?1)"
	                  " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                  "i", last) != VK_OK)
		sd_log(LOG_ERR, "%s", err);
	if (vk_store_query_int(db, "", err, &ev->metrics->events_pending,
	                       "SELECT count(*) FROM events WHERE id > ?1 AND uid IS NOT NULL"
	                       " AND machine_id = ?2",
	                       "it", last, ev->machine) != VK_OK)
		ev->metrics->events_pending = -1;
	ev->unsent = ev->metrics->events_pending != 0;
	ev->send_changes = sqlite3_total_changes64(db);
}

/* ---- the authority: the stream, into its audit trail ------------------------------ */

static void
stream_config(const struct sd_events *ev, jsStreamConfig *sc, const char **subjects)
{
	jsStreamConfig_Init(sc);
	subjects[0] = ev->filter;
	sc->Name = ev->stream;
	sc->Subjects = subjects;
	sc->SubjectsLen = 1;
	sd_stream_guard(sc, ev->replicas); /* rule 4; full: the machines keep their events */
	sc->Retention = js_WorkQueuePolicy;
	sc->MaxMsgSize = VK_EVENT_LINE_MAX + 512; /* headers count: the message ID's */
	sc->MaxBytes = STREAM_BYTES;
	sc->MaxMsgsPerSubject = PER_MACHINE; /* one machine's flood fills its share only */
	sc->DiscardNewPerSubject = true;
}

/*
 * Rule 4: the stream, made when missing, the authority's consumer on it,
 * and the subscription its fetches' replies come to (fetch_stream()).
 * 0, or -1.
 */
static int
open_stream(struct sd_events *ev, struct sd_bus *b, jsCtx *js)
{
	const char *subjects[1];
	jsStreamConfig sc;
	jsStreamInfo *si = NULL;
	jsConsumerInfo *ci = NULL, *updated = NULL;
	jsConsumerConfig cc;
	int64_t start = sd_now_ms();
	jsErrCode jerr = 0;
	char replies[160];
	natsStatus s;

	stream_config(ev, &sc, subjects);
	s = js_GetStreamInfo(&si, js, ev->stream, NULL, &jerr);
	if (s == NATS_OK &&
	    !(sd_stream_guarded(si->Config) && si->Config->Retention == js_WorkQueuePolicy &&
	      si->Config->MaxMsgSize == sc.MaxMsgSize &&
	      si->Config->MaxMsgsPerSubject == sc.MaxMsgsPerSubject)) {
		sd_log(LOG_WARNING, "stream %s is not as this viamkey-syncd makes it: updating it",
		       ev->stream);
		jsStreamInfo_Destroy(si);
		si = NULL;
		s = js_UpdateStream(&si, js, &sc, NULL, &jerr);
	} else if (s != NATS_OK) {
		s = js_AddStream(&si, js, &sc, NULL, &jerr);
		if (s == NATS_OK)
			sd_log(LOG_INFO, "made the events stream %s with %d replicas", ev->stream,
			       ev->replicas);
	}
	jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		sd_log(LOG_WARNING, "cannot make the events stream %s: %s (%s)", ev->stream,
		       natsStatus_GetText(s), nats_GetLastError(NULL));
		return -1;
	}
	/*
	 * Rule 3: what a daemon fetched and did not acknowledge (killed between
	 * its fetch and its commit) is given again after ACK_WAIT_S. A consumer
	 * an earlier viamkey-syncd made with another wait gets this one.
	 */
	s = js_GetConsumerInfo(&ci, js, ev->stream, CONSUMER, NULL, &jerr);
	if (s == NATS_OK && ci->Config->AckWait != ACK_WAIT_S * 1000000000LL) {
		ci->Config->AckWait = ACK_WAIT_S * 1000000000LL;
		s = js_UpdateConsumer(&updated, js, ev->stream, ci->Config, NULL, &jerr);
		if (s == NATS_OK)
			sd_log(LOG_INFO,
			       "the events consumer waits %d s for an acknowledgement now",
			       ACK_WAIT_S);
		else
			sd_log(LOG_WARNING, "cannot update the events consumer: %s (%s)",
			       natsStatus_GetText(s), nats_GetLastError(NULL));
		jsConsumerInfo_Destroy(updated);
		s = NATS_OK;
	} else if (s == NATS_NOT_FOUND) {
		jsConsumerConfig_Init(&cc);
		cc.Durable = CONSUMER;
		cc.DeliverPolicy = js_DeliverAll;
		cc.AckPolicy = js_AckExplicit;
		cc.AckWait = ACK_WAIT_S * 1000000000LL;
		cc.FilterSubject = ev->filter;
		s = js_AddConsumer(&updated, js, ev->stream, &cc, NULL, &jerr);
		jsConsumerInfo_Destroy(updated);
	}
	jsConsumerInfo_Destroy(ci);
	snprintf(replies, sizeof replies, "%s.ev.>", b->inbox);
	if (s == NATS_OK)
		s = natsConnection_SubscribeSync(&ev->sub, b->nc, replies);
	if (s != NATS_OK) {
		sd_log(LOG_WARNING, "cannot read the events stream %s: %s (%s)", ev->stream,
		       natsStatus_GetText(s), nats_GetLastError(NULL));
		ev->sub = NULL;
		return -1;
	}
	sd_log(LOG_DEBUG, "reading the events stream %s: its consumer found in %lld ms", ev->stream,
	       (long long)(sd_now_ms() - start));
	return 0;
}

/*
 * Messages of the events subjects into the audit trail, in one
 * transaction (rules 1 and 2); with logins_only, the other events are
 * passed over, to come in order from the stream. How many were stored
 * (not held already), or -1 (logged; nothing stored). Called by the main
 * thread and the intake thread, each with its own connection.
 */
static int
take(struct sd_events *ev, sqlite3 *db, natsMsg **msgs, int n, int logins_only)
{
	size_t prefix = strlen(ev->filter) - 1; /* "vkev.<bucket>." */
	struct sd_trail t = {.db = db};
	char err[VK_ERRLEN];
	struct vk_event e;
	long bad = 0, stored = 0;
	int added;

	if (vk_store_begin(db, err) != VK_OK)
		goto failed;
	for (int i = 0; i < n; i++) {
		const char *subject = natsMsg_GetSubject(msgs[i]);
		const char *machine =
		    strncmp(subject, ev->filter, prefix) == 0 ? subject + prefix : "";

		/* rule 2: the subject's machine, a whole ID; rule 1: not ahead of us */
		if (!vk_uuid_valid(machine) ||
		    vk_event_decode(natsMsg_GetData(msgs[i]),
		                    (size_t)natsMsg_GetDataLength(msgs[i]), &e) != 0 ||
		    e.at > vk_now() + FUTURE_MAX)
			bad++;
		else if (logins_only && strcmp(e.kind, "login") != 0)
			continue;
		else if ((added = store_event(ev, &t, &e, machine, 0, err)) < 0)
			goto failed;
		else
			stored += added;
	}
	sd_trail_done(&t);
	if (vk_store_commit(db, err) != VK_OK)
		goto failed;
	if (bad > 0)
		sd_log(LOG_WARNING, "the events %s held %ld messages that are no events: dropped",
		       logins_only ? "subjects" : "stream", bad);
	return (int)stored;
failed:
	sd_trail_done(&t);
	vk_store_rollback(db);
	sd_log(LOG_ERR, "%s", err);
	return -1;
}

/* Whether the stream is due a fetch: something went by, the last brought some, or it is time. */
static int
fetch_due(const struct sd_events *ev, int seen)
{
	int64_t now = sd_now_ms();

	return now >= ev->next_send_ms && (seen || ev->fetch_more || now >= ev->next_fetch_ms);
}

/* Whether this authority may take events from the stream now: while its lease holds. */
static int
may_take(struct sd_events *ev, struct sd_bus *b)
{
	return vk_now() < __atomic_load_n(&ev->take_until, __ATOMIC_SEQ_CST) &&
	       natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
}

/*
 * One pull request to the consumer for ev->fetch_batch messages (at most
 * FETCH_BATCH), its replies read into msgs[FETCH_BATCH]: NATS_OK with *n
 * messages, or how the request ended without any. The
 * request is this daemon's own, not nats.c's fetch: nats.c 3.4.1 hands a
 * fetch the messages of an earlier one that came late on top of its own,
 * past the end of the array it allocated (seen: 49 messages for a batch
 * of 32, the heap corrupted). Here every message that comes counts
 * against the batch asked for, which the array holds; one of an earlier
 * request is a message of the stream all the same (what comes after the
 * batch is full waits in the subscription for the next request), and
 * only the batch filled or the server's status for this request ends it.
 *
 * NoWait with an expiry: nats-server 2.9.10 answers an empty consumer only
 * when the expiry comes (408), and the wait here lasts ev->answer_ms
 * longer, for that answer to arrive: NATS_NOT_FOUND when the server said
 * it has nothing more, NATS_TIMEOUT when it did not answer in time (a
 * loaded host, or the consumer's leader lost with a node), which says
 * nothing of what the stream holds.
 */
static natsStatus
pull(struct sd_events *ev, struct sd_bus *b, natsMsg **msgs, int *n)
{
	char subject[224], reply[192], body[96], ack[192];
	int64_t deadline = sd_now_ms() + FETCH_WAIT_MS + ev->answer_ms, left;
	const char *status, *r;
	natsStatus s;
	natsMsg *m;

	*n = 0;
	snprintf(subject, sizeof subject, "$JS.API.CONSUMER.MSG.NEXT.%s.%s", ev->stream, CONSUMER);
	snprintf(reply, sizeof reply, "%s.ev.%llu", b->inbox, (unsigned long long)++ev->fetch_gen);
	snprintf(ack, sizeof ack, ".%s.%s.", ev->stream, CONSUMER);
	snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%lld,\"no_wait\":true}",
	         ev->fetch_batch, FETCH_WAIT_MS * 1000000LL);
	s = natsConnection_PublishRequestString(b->nc, subject, reply, body);
	while (s == NATS_OK && *n < ev->fetch_batch) {
		if ((left = deadline - sd_now_ms()) <= 0) {
			s = NATS_TIMEOUT;
			break;
		}
		if ((s = natsSubscription_NextMsg(&m, ev->sub, left)) != NATS_OK)
			break;
		/*
		 * The stream's messages come with the subject to acknowledge them on,
		 * JetStream's own for this stream and consumer ($JS.ACK.<stream>.
		 * <consumer>.…, a domain's two tokens before them in the longer
		 * form): one with another reply is dropped, never answered ("+ACK"
		 * on a subject of the API's would be a request of ours).
		 */
		r = natsMsg_GetReply(m);
		if (r != NULL && strncmp(r, "$JS.ACK.", 8) == 0 && strstr(r + 7, ack) != NULL) {
			msgs[(*n)++] = m;
			continue;
		}
		if (r != NULL) {
			sd_log(LOG_WARNING,
			       "a message on %s that is not the events stream's (its reply %.64s):"
			       " dropped",
			       natsMsg_GetSubject(m), r);
		} else if (strcmp(natsMsg_GetSubject(m), reply) == 0) {
			/* the server's status: 404 or 408 nothing (more) there, else a failure */
			if (natsMsgHeader_Get(m, "Status", &status) != NATS_OK)
				s = NATS_ERR;
			else if (strcmp(status, "404") == 0 || strcmp(status, "408") == 0)
				s = NATS_NOT_FOUND;
			else if (strcmp(status, "503") == 0)
				s = NATS_NO_RESPONDERS;
			else
				s = NATS_ERR;
		}
		natsMsg_Destroy(m);
	}
	return *n > 0 ? NATS_OK : s;
}

/* Whether the stream is open (open_stream()): tried while connected, again REFUSED_MS / 6 after a
 * failure. */
static int
stream_ready(struct sd_events *ev, struct sd_bus *b, jsCtx *js)
{
	if (ev->sub != NULL)
		return 1;
	if (sd_now_ms() < ev->next_send_ms ||
	    natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
		return 0;
	if (open_stream(ev, b, js) != 0) {
		ev->next_send_ms = sd_now_ms() + REFUSED_MS / 6;
		return 0;
	}
	return 1;
}

/*
 * What the stream holds, into the audit trail through db: one transaction,
 * then the acknowledgements. How many were stored (not held already).
 */
static int
fetch_stream(struct sd_events *ev, sqlite3 *db, struct sd_bus *b, jsCtx *js)
{
	natsMsg *msgs[FETCH_BATCH];
	natsStatus s;
	int64_t start = sd_now_ms();
	int n = 0, stored = 0;

	if (!stream_ready(ev, b, js))
		return 0;
	s = pull(ev, b, msgs, &n);
	if (s != NATS_OK && s != NATS_NOT_FOUND && s != NATS_TIMEOUT && s != ev->fetch_status)
		sd_log(LOG_WARNING, "cannot read the events stream %s: %s", ev->stream,
		       natsStatus_GetText(s));
	else if (s == NATS_OK && ev->fetch_status != NATS_OK)
		sd_log(LOG_INFO, "reading the events stream %s again", ev->stream);
	if (s != NATS_NOT_FOUND && s != NATS_TIMEOUT)
		ev->fetch_status = s;
	/*
	 * A server that did not answer in time is given longer, and says
	 * nothing of the stream: a run of fetches goes on, or not, as it was.
	 */
	if (s == NATS_TIMEOUT && n == 0) {
		sd_log(LOG_DEBUG, "the events stream did not answer in %lld ms",
		       (long long)(sd_now_ms() - start));
		ev->answer_ms =
		    2 * ev->answer_ms < ANSWER_MAX_MS ? 2 * ev->answer_ms : ANSWER_MAX_MS;
		ev->next_fetch_ms = sd_now_ms() + FETCH_IDLE_MS;
		return 0;
	}
	ev->answer_ms = ANSWER_MS;
	/* the end of a run: the stream said it has nothing more */
	if (ev->fetch_more && n == 0)
		sd_log(LOG_DEBUG, "the events stream gave nothing more: %s in %lld ms",
		       natsStatus_GetText(s), (long long)(sd_now_ms() - start));
	ev->fetch_more = n > 0;
	/*
	 * What the stream held longest comes first and waits for its whole
	 * take's transaction: a run of fetches starts small, so that the
	 * oldest of a backlog are stored soon, and doubles while the stream
	 * has more.
	 */
	ev->fetch_batch = n == 0                              ? FETCH_FIRST
	                  : 2 * ev->fetch_batch < FETCH_BATCH ? 2 * ev->fetch_batch
	                                                      : FETCH_BATCH;
	ev->next_fetch_ms = sd_now_ms() + FETCH_IDLE_MS;
	/* not acknowledged unless stored: the stream gives them again */
	if (n > 0 && (stored = take(ev, db, msgs, n, 0)) >= 0) {
		for (int i = 0; i < n; i++)
			(void)natsConnection_PublishString(b->nc, natsMsg_GetReply(msgs[i]),
			                                   "+ACK");
		sd_log(LOG_DEBUG,
		       "took %d messages of the events stream, %d events new, in %lld ms", n,
		       stored, (long long)(sd_now_ms() - start));
	}
	for (int i = 0; i < n; i++)
		natsMsg_Destroy(msgs[i]);
	return stored > 0 ? stored : 0;
}

/*
 * The intake thread, through a connection of its own: the logins as they
 * go by on the events subjects, in batches, and then what the stream
 * holds, when something went by, while the last fetch brought messages,
 * and every FETCH_IDLE_MS (what came while this daemon was away, or its
 * subscription missed). It starts before the lease is taken, and looks
 * the stream's consumer up at once: the first fetch goes as soon as the
 * lease holds (a restarted authority's backlog waits for nothing else).
 * While the stream elects a leader, or has none, the logins reach the
 * trail all the same; and while the main loop waits on the bus (a
 * bucket's election holds it for seconds), or publishes what piled up
 * while this daemon was down, the stream is read too. The stream brings
 * each login again, stored once (rule 3).
 */
static void *
intake_loop(void *arg)
{
	struct sd_events *ev = arg;
	natsMsg *msgs[FETCH_BATCH];
	natsStatus s;
	int n, stored, seen = 0, seen_any = 0;
	int64_t start;

	while (!__atomic_load_n(&ev->live_stop, __ATOMIC_SEQ_CST)) {
		s = natsSubscription_NextMsg(&msgs[0], ev->live, ev->fetch_more ? 0 : LIVE_WAIT_MS);
		if (s == NATS_OK) {
			start = sd_now_ms();
			for (n = 1; n < FETCH_BATCH &&
			            natsSubscription_NextMsg(&msgs[n], ev->live, 0) == NATS_OK;)
				n++;
			if ((stored = take(ev, ev->live_db, msgs, n, 1)) > 0)
				__atomic_add_fetch(&ev->live_stored, (uint64_t)stored,
				                   __ATOMIC_SEQ_CST);
			if (!seen_any)
				sd_log(LOG_DEBUG,
				       "took the first %d messages of the events subjects", n);
			else if (sd_now_ms() - start >= LIVE_SLOW_MS)
				sd_log(LOG_DEBUG,
				       "took %d messages of the events subjects, %d events new, in "
				       "%lld ms",
				       n, stored, (long long)(sd_now_ms() - start));
			seen = seen_any = 1;
			for (int i = 0; i < n; i++)
				natsMsg_Destroy(msgs[i]);
		} else if (s != NATS_TIMEOUT && s != NATS_SLOW_CONSUMER) {
			break; /* closed; a slow consumer's dropped messages are the stream's */
		}
		(void)stream_ready(ev, ev->bus, ev->js);
		if (may_take(ev, ev->bus) && fetch_due(ev, seen)) {
			seen = 0;
			if ((stored = fetch_stream(ev, ev->live_db, ev->bus, ev->js)) > 0)
				__atomic_add_fetch(&ev->live_stored, (uint64_t)stored,
				                   __ATOMIC_SEQ_CST);
		}
	}
	return NULL;
}

/* The intake thread, started once: 0, or -1 (said; the main loop reads the stream). */
static int
live_start(struct sd_events *ev, struct sd_bus *b)
{
	char err[VK_ERRLEN];

	if (vk_store_open(ev->store, VK_OPEN_ADMIN, 5000, &ev->live_db, err) != VK_OK) {
		sd_log(LOG_WARNING, "%s; the events come from the stream only", err);
		return -1;
	}
	if (natsConnection_SubscribeSync(&ev->live, b->nc, ev->filter) != NATS_OK) {
		sd_log(LOG_WARNING,
		       "cannot subscribe to %s: %s; the events come from the stream only",
		       ev->filter, nats_GetLastError(NULL));
		goto failed;
	}
	ev->bus = b;
	if (sd_bus_jetstream(b, &ev->js) != 0)
		goto failed;
	if ((errno = pthread_create(&ev->live_thread, NULL, intake_loop, ev)) != 0) {
		sd_log(LOG_WARNING,
		       "cannot start a thread: %s; the events come from the stream only",
		       strerror(errno));
		goto failed;
	}
	return 0;
failed:
	jsCtx_Destroy(ev->js);
	ev->js = NULL;
	natsSubscription_Destroy(ev->live);
	ev->live = NULL;
	sqlite3_close(ev->live_db);
	ev->live_db = NULL;
	return -1;
}

/* The authority's turn: the intake thread started, its count taken; without it, the stream here. */
static void
receive(struct sd_events *ev, sqlite3 *db, struct sd_bus *b)
{
	if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED)
		return;
	sd_events_start(ev, b);
	ev->metrics->events_received += __atomic_exchange_n(&ev->live_stored, 0, __ATOMIC_SEQ_CST);
	if (ev->live == NULL && may_take(ev, b) && fetch_due(ev, 0))
		ev->metrics->events_received += (uint64_t)fetch_stream(ev, db, b, b->js);
}

/* ---- both -------------------------------------------------------------------------- */

int
sd_events_open(struct sd_events *ev, const struct vk_config *cfg, const char *store, int role,
               struct sd_metrics *metrics)
{
	memset(ev, 0, sizeof *ev);
	ev->unsent = 1; /* what an earlier run left: looked at first */
	ev->fetch_batch = FETCH_FIRST;
	ev->answer_ms = ANSWER_MS;
	ev->store = store;
	ev->role = role;
	ev->machine = cfg->machine_id;
	ev->keep = cfg->audit_keep;
	ev->replicas = cfg->sync.replicas;
	ev->last_use = role == SD_EVENTS_AUTHORITY;
	ev->metrics = metrics;
	ev->metrics->events_pending = -1;
	sd_watch_init(&ev->watch);
	sd_sessions_open(&ev->sessions, cfg, metrics);
	if (vk_journal_path(store, 0, ev->journal, sizeof ev->journal) != 0 ||
	    vk_journal_path(store, 1, ev->work, sizeof ev->work) != 0) {
		sd_log(LOG_ERR, "the store's path is too long for its events journal");
		return -1;
	}
	snprintf(ev->filter, sizeof ev->filter, "vkev.%s.*", cfg->sync.bucket);
	snprintf(ev->stream, sizeof ev->stream, "VKEV_%s", cfg->sync.bucket);
	if (ev->machine != NULL)
		snprintf(ev->subject, sizeof ev->subject, "vkev.%s.%s", cfg->sync.bucket,
		         ev->machine);
	return 0;
}

/*
 * The machines' events (logins, sessions) older than [audit] keep, in
 * batches until none is left; admin events are kept.
 */
static void
prune(struct sd_events *ev, sqlite3 *db)
{
	char err[VK_ERRLEN];
	int changed;

	do {
		changed = 0;
		if (vk_store_exec(
		        db, "cannot prune the audit trail", err, &changed,
		        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1"
		        " AND kind != 'admin' ORDER BY at LIMIT ?2)",
		        "ii", vk_now() - ev->keep, (int64_t)PRUNE_BATCH) != VK_OK) {
			sd_log(LOG_ERR, "%s", err);
			return;
		}
	} while (changed == PRUNE_BATCH && !sd_stop);
}

void
sd_events_tick(struct sd_events *ev, sqlite3 *db, struct sd_bus *b)
{
	int64_t now = sd_now_ms();

	/* not due yet, unless an append came and the last look is LOOK_GAP_MS ago */
	if (now < ev->next_ms && (now < ev->last_ms + LOOK_GAP_MS || !sd_watch_pending(&ev->watch)))
		return;
	ev->last_ms = now;
	(void)sd_watch_grew(&ev->watch); /* this look takes what was marked */
	/* what reached the new journal while the old one was being taken, at once */
	if (collect(ev, db) == 1)
		(void)collect(ev, db);
	sd_sessions_tick(&ev->sessions, db);
	if (ev->role == SD_EVENTS_AUTHORITY)
		receive(ev, db, b);
	else if (ev->machine != NULL)
		send_events(ev, db, b);
	if (now >= ev->next_prune_ms) {
		ev->next_prune_ms = now + PRUNE_MS;
		prune(ev, db);
	}
	/*
	 * From the tick's end, so that the sessions' once a second falls on every
	 * tick; soon again while an append holds the journal up or a SIGKILL is due.
	 */
	ev->next_ms = sd_now_ms() + (sd_watch_running(&ev->watch) && ev->lock_since_ms == 0 &&
	                                     ev->sessions.nkills == 0
	                                 ? SD_EVENTS_WATCHED_MS
	                                 : SD_EVENTS_EVERY_MS);
}

void
sd_events_watch(struct sd_events *ev, struct sd_queue *q)
{
	if (sd_watch_start(&ev->watch, ev->journal, q) == 0)
		sd_log(LOG_DEBUG, "watching the events journal %s", ev->journal);
}

int64_t
sd_events_wait_ms(struct sd_events *ev)
{
	int64_t due = ev->next_ms, wait;

	/* an append seen too soon after the last look: the look after the gap */
	if (sd_watch_pending(&ev->watch) && ev->last_ms + LOOK_GAP_MS < due)
		due = ev->last_ms + LOOK_GAP_MS;
	wait = due - sd_now_ms();

	return wait < 1 ? 1 : wait;
}

void
sd_events_connected(struct sd_events *ev)
{
	if (ev->role == SD_EVENTS_AUTHORITY || ev->machine == NULL)
		return;
	ev->reconnected = 1;
	ev->next_ms = 0;
	ev->next_send_ms = 0;
	ev->retry_ms = 0;
}

void
sd_events_start(struct sd_events *ev, struct sd_bus *b)
{
	if (!ev->live_tried && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED) {
		ev->live_tried = 1;
		(void)live_start(ev, b);
	}
}

void
sd_events_allow(struct sd_events *ev, struct sd_bus *b, int64_t until)
{
	__atomic_store_n(&ev->take_until, until, __ATOMIC_SEQ_CST);
	if (until > 0)
		sd_events_start(ev, b);
}

void
sd_events_close(struct sd_events *ev)
{
	if (ev->live != NULL) { /* the intake thread runs */
		__atomic_store_n(&ev->live_stop, 1, __ATOMIC_SEQ_CST);
		(void)pthread_join(ev->live_thread, NULL);
		natsSubscription_Destroy(ev->live);
		sqlite3_close(ev->live_db);
		ev->live = NULL;
		ev->live_db = NULL;
	}
	natsSubscription_Destroy(ev->sub); /* the durable consumer stays, for the next start */
	ev->sub = NULL;
	jsCtx_Destroy(ev->js);
	ev->js = NULL;
	sd_watch_stop(&ev->watch);
	sd_sessions_close(&ev->sessions);
}
