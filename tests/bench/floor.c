/*
 * floor - for `make bench-fleet`: the floor under any fleet's change, on
 * the same bus: N processes, each receiving one plain NATS message and
 * committing one durable SQLite transaction.
 *
 *   floor [--user U --password-file F] SERVERS N ROUNDS DIR
 *
 * Forks N processes before anything connects. Each opens DIR/floor-<i>.db
 * (WAL, synchronous=FULL, one table), connects to SERVERS (nats.c picks
 * one of them at random, as a machine's daemon does), subscribes to
 * floor.go and says it is ready through a pipe. On each message it inserts
 * one row (one transaction), takes CLOCK_REALTIME once the commit has
 * returned, and publishes "ROUND INDEX NS" on floor.done.
 *
 * The driver publishes one message on floor.go per round, ROUNDS rounds
 * 200 ms apart, after a warm-up round that every process must have
 * answered (sent again each second until then, while the cluster spreads
 * the subscriptions' interest; a process commits and answers a round once,
 * and the driver counts each answer to any of the warm-up's messages). For
 * each round it prints on stdout the milliseconds from just before its
 * publish until the last of the N processes had committed, and appends
 * each process's own milliseconds to DIR/floor-samples, one a line; on
 * stderr, how long the warm-up took.
 *
 * The processes end when the driver closes its end of their pipe, also
 * when the driver is killed. Exit 2 on a usage error, 1 when the bus
 * cannot be reached, the warm-up is not answered by every process in
 * 180 s or a round in 60 s.
 */
#include "autoconfig.h"

#include <errno.h>
#include <nats/nats.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SERVERS  8
#define PASSWORD_MAX 256
#define ROUND_WAIT   60000  /* ms for every process to answer a round */
#define WARMUP_WAIT  180000 /* ms for every process to answer the warm-up */
#define WARMUP_EVERY 1000   /* ms between the warm-up round's messages */
#define PAUSE_MS     200    /* between rounds */
#define CONNECT_TRY  10     /* a process's connection attempts, 500 ms apart */

struct bus {
	const char *servers[MAX_SERVERS];
	int nservers;
	const char *user;
	char password[PASSWORD_MAX];
};

/* One process's state, for its message handler. */
struct proc {
	int index;
	long long done; /* the last round committed and answered (-1: none) */
	sqlite3 *db;
	sqlite3_stmt *insert;
	natsConnection *nc;
};

static long long
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
connect_bus(struct bus *b, natsConnection **nc)
{
	natsOptions *o = NULL;
	natsStatus s = NATS_ERR;

	if (natsOptions_Create(&o) != NATS_OK ||
	    natsOptions_SetServers(o, b->servers, b->nservers) != NATS_OK ||
	    natsOptions_SetTimeout(o, 10000) != NATS_OK ||
	    (b->user != NULL && natsOptions_SetUserInfo(o, b->user, b->password) != NATS_OK)) {
		natsOptions_Destroy(o);
		return -1;
	}
	for (int i = 0; i < CONNECT_TRY && (s = natsConnection_Connect(nc, o)) != NATS_OK; i++)
		sleep_ms(500);
	natsOptions_Destroy(o);
	if (s != NATS_OK)
		fprintf(stderr, "floor: cannot connect: %s\n", natsStatus_GetText(s));
	return s == NATS_OK ? 0 : -1;
}

/* A process: one message, one committed row, then its commit time on floor.done. */
static void
on_go(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
	struct proc *p = closure;
	long long round = atoll(natsMsg_GetData(msg) != NULL ? natsMsg_GetData(msg) : "0");
	char reply[96];
	int rc;

	(void)nc;
	(void)sub;
	/* the warm-up's message again, once answered: no commit for it to queue behind */
	if (round <= p->done) {
		natsMsg_Destroy(msg);
		return;
	}
	sqlite3_bind_int64(p->insert, 1, round);
	sqlite3_bind_int64(p->insert, 2, realtime_ns());
	rc = sqlite3_step(p->insert);
	sqlite3_reset(p->insert);
	if (rc == SQLITE_DONE) {
		snprintf(reply, sizeof reply, "%lld %d %lld", round, p->index, realtime_ns());
		(void)natsConnection_PublishString(p->nc, "floor.done", reply);
		p->done = round;
	} else {
		fprintf(stderr, "floor: process %d: %s\n", p->index, sqlite3_errmsg(p->db));
	}
	natsMsg_Destroy(msg);
}

/* A process's life: ready once subscribed, ended by EOF on ctl. Never returns. */
static void
process(struct bus *b, int index, const char *dir, int ctl, int ready)
{
	struct proc p = {.index = index, .done = -1};
	natsSubscription *sub = NULL;
	char path[4096], c;

	snprintf(path, sizeof path, "%s/floor-%d.db", dir, index);
	if (sqlite3_open(path, &p.db) != SQLITE_OK ||
	    sqlite3_exec(
	        p.db,
	        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	        " CREATE TABLE IF NOT EXISTS t (round INTEGER NOT NULL, at INTEGER NOT NULL)",
	        NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(p.db, "INSERT INTO t (round, at) VALUES (?1, ?2)", -1, &p.insert,
	                       NULL) != SQLITE_OK) {
		fprintf(stderr, "floor: %s: %s\n", path, sqlite3_errmsg(p.db));
		_exit(1);
	}
	if (connect_bus(b, &p.nc) != 0 ||
	    natsConnection_Subscribe(&sub, p.nc, "floor.go", on_go, &p) != NATS_OK ||
	    natsConnection_FlushTimeout(p.nc, ROUND_WAIT) != NATS_OK) {
		fprintf(stderr, "floor: process %d cannot subscribe\n", index);
		_exit(1);
	}
	if (write(ready, "r", 1) != 1)
		_exit(1);
	close(ready); /* the driver sees EOF once every process is ready or gone */
	for (;;) {
		ssize_t r = read(ctl, &c, 1);

		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	/*
	 * Exits without destroying the subscription: nats.c 3.4.1 can crash
	 * when one is destroyed while messages for it arrive (FLEET-FACTS).
	 */
	_exit(0);
}

struct driver {
	natsConnection *nc;
	natsSubscription *done;
	int n;
	long long *at; /* each process's commit time in the current round; 0: not yet */
	int answered;  /* processes that answered the current round */
};

/* Collects floor.done answers to round until every process has answered or deadline_ns. */
static void
collect(struct driver *d, long long round, long long deadline_ns)
{
	while (d->answered < d->n && realtime_ns() < deadline_ns) {
		long long r, ns;
		natsMsg *m = NULL;
		int i;

		if (natsSubscription_NextMsg(&m, d->done, 100) != NATS_OK)
			continue;
		if (natsMsg_GetData(m) != NULL &&
		    sscanf(natsMsg_GetData(m), "%lld %d %lld", &r, &i, &ns) == 3 && r == round &&
		    i >= 0 && i < d->n && d->at[i] == 0) {
			d->at[i] = ns;
			d->answered++;
		}
		natsMsg_Destroy(m);
	}
}

/* Forgets the answers: a new round. */
static void
reset(struct driver *d)
{
	memset(d->at, 0, (size_t)d->n * sizeof *d->at);
	d->answered = 0;
}

static int
publish_round(struct driver *d, long long round, long long *t0)
{
	char body[32];
	natsStatus s;

	snprintf(body, sizeof body, "%lld", round);
	*t0 = realtime_ns();
	if ((s = natsConnection_PublishString(d->nc, "floor.go", body)) != NATS_OK ||
	    (s = natsConnection_FlushTimeout(d->nc, ROUND_WAIT)) != NATS_OK) {
		fprintf(stderr, "floor: round %lld: cannot publish: %s\n", round,
		        natsStatus_GetText(s));
		return -1;
	}
	return 0;
}

static int
drive(struct bus *b, int n, int rounds, const char *dir)
{
	struct driver d = {.n = n};
	char path[4096];
	FILE *samples = NULL;
	long long t0;
	int rc = 1;

	snprintf(path, sizeof path, "%s/floor-samples", dir);
	if ((d.at = calloc((size_t)n, sizeof *d.at)) == NULL ||
	    (samples = fopen(path, "a")) == NULL || connect_bus(b, &d.nc) != 0 ||
	    natsConnection_SubscribeSync(&d.done, d.nc, "floor.done") != NATS_OK ||
	    natsSubscription_SetPendingLimits(d.done, -1, -1) != NATS_OK ||
	    natsConnection_FlushTimeout(d.nc, ROUND_WAIT) != NATS_OK) {
		fprintf(stderr, "floor: cannot start the driver (%s)\n", path);
		goto out;
	}
	/*
	 * The warm-up: round 0 until every process has answered it once. A
	 * process answers a round once, so the answers are kept across the
	 * warm-up's messages: forgetting them each second would never see a
	 * warm-up that takes longer than a second.
	 */
	reset(&d);
	for (long long start = realtime_ns(), deadline = start + WARMUP_WAIT * 1000000LL;;) {
		if (publish_round(&d, 0, &t0) != 0)
			goto out;
		collect(&d, 0, t0 + WARMUP_EVERY * 1000000LL);
		if (d.answered == n) {
			fprintf(stderr, "floor: every process answered the warm-up in %.0f ms\n",
			        (double)(realtime_ns() - start) / 1e6);
			break;
		}
		if (realtime_ns() > deadline) {
			fprintf(stderr, "floor: %d of %d processes answered the warm-up\n",
			        d.answered, n);
			goto out;
		}
	}
	for (long long r = 1; r <= rounds; r++) {
		long long last = 0;

		sleep_ms(PAUSE_MS);
		reset(&d);
		if (publish_round(&d, r, &t0) != 0)
			goto out;
		collect(&d, r, t0 + ROUND_WAIT * 1000000LL);
		if (d.answered < n) {
			fprintf(stderr, "floor: round %lld: %d of %d processes answered\n", r,
			        d.answered, n);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			fprintf(samples, "%.1f\n", (double)(d.at[i] - t0) / 1e6);
			if (d.at[i] > last)
				last = d.at[i];
		}
		printf("%.1f\n", (double)(last - t0) / 1e6);
		fflush(stdout);
	}
	rc = 0;
out:
	if (samples != NULL && fclose(samples) != 0)
		rc = 1;
	natsSubscription_Destroy(d.done);
	natsConnection_Destroy(d.nc);
	free(d.at);
	return rc;
}

static int
usage(void)
{
	fputs("usage: floor [--user U --password-file F] SERVERS N ROUNDS DIR\n", stderr);
	return 2;
}

int
main(int argc, char **argv)
{
	struct bus b = {.nservers = 0};
	const char *password_file = NULL, *dir;
	int i = 1, n, rounds, ctl[2], ready[2], rc, started = 0;
	pid_t *pids;
	char c;

	while (i + 1 < argc && strncmp(argv[i], "--", 2) == 0) {
		if (strcmp(argv[i], "--user") == 0)
			b.user = argv[i + 1];
		else if (strcmp(argv[i], "--password-file") == 0)
			password_file = argv[i + 1];
		else
			return usage();
		i += 2;
	}
	if (argc - i != 4)
		return usage();
	for (char *tok = strtok(argv[i], ", "); tok != NULL && b.nservers < MAX_SERVERS;
	     tok = strtok(NULL, ", "))
		b.servers[b.nservers++] = tok;
	n = atoi(argv[i + 1]);
	rounds = atoi(argv[i + 2]);
	dir = argv[i + 3];
	if (b.nservers == 0 || n < 1 || rounds < 1)
		return usage();
	if (password_file != NULL) {
		FILE *f = fopen(password_file, "r");

		if (f == NULL || fgets(b.password, sizeof b.password, f) == NULL) {
			fprintf(stderr, "floor: cannot read %s\n", password_file);
			return 1;
		}
		fclose(f);
		b.password[strcspn(b.password, "\r\n")] = '\0';
	}
	if ((pids = calloc((size_t)n, sizeof *pids)) == NULL || pipe(ctl) != 0 ||
	    pipe(ready) != 0) {
		perror("floor");
		return 1;
	}
	/* every process forked before nats.c starts a thread in this one */
	for (; started < n; started++) {
		if ((pids[started] = fork()) < 0) {
			perror("floor: fork");
			break;
		}
		if (pids[started] == 0) {
			close(ctl[1]);
			close(ready[0]);
			process(&b, started, dir, ctl[0], ready[1]);
		}
	}
	close(ctl[0]);
	close(ready[1]);
	rc = started == n ? 0 : 1;
	for (int k = 0; rc == 0 && k < n; k++)
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "floor: %d of %d processes started\n", k, n);
			rc = 1;
		}
	if (rc == 0)
		rc = drive(&b, n, rounds, dir);
	/* EOF on their pipe ends the processes */
	close(ctl[1]);
	for (int k = 0; k < started; k++)
		while (waitpid(pids[k], NULL, 0) < 0 && errno == EINTR)
			;
	free(pids);
	nats_Close();
	return rc;
}
