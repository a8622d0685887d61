/*
 * fleetjournal - for `make bench-fleet`: what the module writes into the
 * machines' events journals (journal.h), written there at fleet scale
 * without a PAM transaction per machine.
 *
 *   fleetjournal logins STORES RATE SECONDS PREFIX
 *   fleetjournal sessions STORES KEY_ID USER TIMEOUT_MS [PIDS]
 *   fleetjournal stored STORE PREFIX COUNT TIMEOUT_S
 *
 * STORES is a file naming one machine's store a line. Each record is made
 * and appended exactly as pam_viamkey.so does (vk_event_make(),
 * vk_event_encode(), vk_journal_append()).
 *
 * logins: RATE login events a second for SECONDS seconds, spread over the
 * stores in turn, each refused (reason user_not_allowed) under a user of
 * its own, "PREFIX-I" for the I-th; prints that user and NS once it is
 * appended, NS the CLOCK_REALTIME nanoseconds taken just before the append
 * (after it, a writer descheduled on a loaded host would take a time later
 * than the event's arrival). Exit 0, or 1 when an append failed.
 *
 * sessions: one child process per store, each recorded in that store's
 * journal as a session opened with KEY_ID by USER (service sshd, role
 * operator, no secret tag, no logind session), as the module records the
 * process that opens a session. Prints "ready" once every record is
 * appended, then "PID NS" as each child ends (the machine's daemon ends its
 * session with SIGTERM), and exits 0 once all have ended; TIMEOUT_MS after
 * "ready" it prints "timeout COUNT" with the count still alive, kills them
 * and exits 1. Killed itself, its children die with it (PR_SET_PDEATHSIG).
 * With PIDS, a file naming a process a line beside STORES (each machine's
 * daemon, run by tests/bench/pidns), each child is forked into the PID
 * namespace of its machine's daemon, and recorded under the PID that
 * daemon sees: a session of that machine's own process table.
 *
 * stored: the other end, on the authority: looks at STORE (read-only)
 * every POLL_MS and prints "USER MS" for each login event of a user
 * PREFIX-* the first time it sees one, MS the CLOCK_REALTIME milliseconds
 * of that look. A row is seen once its transaction committed, so MS is
 * when the event could be read there (within POLL_MS, and the time this
 * process takes to be scheduled: run it at a real-time priority on a
 * loaded host), not when it was inserted. Exits 0 once COUNT users were
 * seen, 1 after TIMEOUT_S seconds, 2 when the store cannot be read.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "event.h"
#include "journal.h"
#include "proc.h"

static long long
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The lines of path, each without its LF, into a malloc()ed array; their count, or -1. */
static long
read_lines(const char *path, char ***out)
{
	FILE *f = fopen(path, "r");
	char **v = NULL, *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long n = 0;

	if (f == NULL) {
		fprintf(stderr, "fleetjournal: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		char **grown = realloc(v, (size_t)(n + 1) * sizeof *v);

		if (grown == NULL)
			abort();
		v = grown;
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		if ((v[n++] = strdup(line)) == NULL)
			abort();
	}
	free(line);
	fclose(f);
	*out = v;
	return n;
}

/* e appended to the journal of store as the module appends it: 0, or -1 said. */
static int
append(const char *store, const struct vk_event *e)
{
	char line[VK_EVENT_LINE_MAX + 1], err[VK_ERRLEN];
	size_t len = vk_event_encode(e, line);
	int rc = vk_journal_append(store, line, len, err);

	if (rc != 0)
		fprintf(stderr, "fleetjournal: %s: %s\n", store,
		        rc > 0 ? "no journal (no daemon made one)" : err);
	return rc == 0 ? 0 : -1;
}

static int
logins(char **stores, long n, long rate, long seconds, const char *prefix)
{
	struct timespec at;
	long long t0 = realtime_ns() + 100000000LL, period = 1000000000LL / rate;
	int failed = 0;

	for (long i = 0; i < rate * seconds; i++) {
		unsigned char uid[16];
		char user[VK_EVENT_USER_MAX + 1];
		struct vk_event e;
		long long when = t0 + i * period, made;

		at.tv_sec = (time_t)(when / 1000000000LL);
		at.tv_nsec = (long)(when % 1000000000LL);
		while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, NULL) == EINTR)
			;
		snprintf(user, sizeof user, "%.200s-%ld", prefix, i);
		randombytes_buf(uid, sizeof uid);
		made = realtime_ns();
		if (vk_event_make(&e, uid, (int64_t)time(NULL), "login", "deny", "user_not_allowed",
		                  NULL, user, "bench", NULL) != 0 ||
		    append(stores[i % n], &e) != 0) {
			failed = 1;
			continue;
		}
		printf("%s %lld\n", user, made);
		fflush(stdout);
	}
	return failed;
}

/* The children forked next go into the PID namespace of process pid (NULL: this one's). */
static int
pid_namespace(const char *pid)
{
	char path[64];
	int fd, rc;

	snprintf(path, sizeof path, "/proc/%s/ns/pid", pid != NULL ? pid : "self");
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	rc = setns(fd, CLONE_NEWPID);
	close(fd);
	return rc;
}

/* Process pid as its own PID namespace names it (the last of NSpid), or -1. */
static long long
pid_inside(pid_t pid)
{
	char path[64], line[256];
	long long inside = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "NSpid:", 6) == 0) {
			char *last = strrchr(line, '\t');

			inside = last != NULL ? atoll(last + 1) : -1;
		}
	fclose(f);
	return inside;
}

static int
sessions(char **stores, long n, char **daemons, const char *key_id, const char *user,
         long timeout_ms)
{
	pid_t *kids = calloc((size_t)n, sizeof *kids), parent = getpid();
	long alive = 0, i;
	long long deadline;
	int ready;

	if (kids == NULL)
		abort();
	for (i = 0; i < n; i++) {
		unsigned char uid[16];
		struct vk_event e;
		struct vk_proc p;
		long long pid;

		if (daemons != NULL && pid_namespace(daemons[i]) != 0) {
			fprintf(stderr, "fleetjournal: the PID namespace of %s: %s\n", daemons[i],
			        strerror(errno));
			break;
		}
		if ((kids[i] = fork()) < 0) {
			perror("fleetjournal: fork");
			break;
		}
		if (kids[i] == 0) {
			/* a bench stopped by hand (SIGTERM here) leaves no session behind; in a
			 * namespace of its own the parent has no PID there (0) */
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
			    getppid() != (daemons != NULL ? 0 : parent))
				_exit(1);
			for (;;)
				pause();
		}
		alive++;
		randombytes_buf(uid, sizeof uid);
		pid = daemons != NULL ? pid_inside(kids[i]) : kids[i];
		if (vk_proc_read(kids[i], &p) != 0 || pid < 0 ||
		    vk_event_make(&e, uid, (int64_t)time(NULL), "session", "open", NULL, key_id,
		                  user, "sshd", NULL) != 0 ||
		    vk_event_set_session(&e, "operator", NULL, NULL, pid, p.start) != 0 ||
		    append(stores[i], &e) != 0) {
			fprintf(stderr, "fleetjournal: cannot record the session of %s\n",
			        stores[i]);
			break;
		}
	}
	ready = i == n;
	if (daemons != NULL && pid_namespace(NULL) != 0) {
		perror("fleetjournal: back to its own PID namespace");
		ready = 0;
	}
	if (ready) {
		printf("ready\n");
		fflush(stdout);
	}
	/* a session that could not be recorded: none is waited for */
	deadline = ready ? realtime_ns() + timeout_ms * 1000000LL : 0;
	while (alive > 0 && realtime_ns() < deadline) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);

		if (pid > 0) {
			printf("%d %lld\n", (int)pid, realtime_ns());
			fflush(stdout);
			for (i = 0; i < n; i++)
				if (kids[i] == pid)
					kids[i] = 0; /* reaped: its PID may be another's now */
			alive--;
		} else {
			struct timespec ms = {0, 1000000};

			nanosleep(&ms, NULL);
		}
	}
	if (alive > 0) {
		printf("timeout %ld\n", alive);
		for (i = 0; i < n; i++)
			if (kids[i] > 0)
				kill(kids[i], SIGKILL);
		while (wait(NULL) > 0)
			;
	}
	free(kids);
	return alive > 0;
}

#define POLL_MS 5

static int
stored(const char *store, const char *prefix, long count, long timeout_s)
{
	long long deadline = realtime_ns() + timeout_s * 1000000000LL;
	struct timespec poll = {0, POLL_MS * 1000000L};
	sqlite3_int64 last = 0;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	long seen = 0;
	char like[256];

	snprintf(like, sizeof like, "%.200s-%%", prefix);
	if (sqlite3_open_v2(store, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 1000) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "SELECT id, kind = 'login' AND user LIKE ?2, user FROM events"
	                       " WHERE id > ?1 ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fleetjournal: %s: %s\n", store, sqlite3_errmsg(db));
		sqlite3_close(db);
		return 2;
	}
	while (seen < count && realtime_ns() < deadline) {
		long long now;
		int rc;

		sqlite3_bind_int64(st, 1, last);
		sqlite3_bind_text(st, 2, like, -1, SQLITE_STATIC);
		now = realtime_ns();
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			last = sqlite3_column_int64(st, 0);
			if (sqlite3_column_int(st, 1)) {
				printf("%s %.1f\n", (const char *)sqlite3_column_text(st, 2),
				       (double)now / 1e6);
				seen++;
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE && rc != SQLITE_BUSY) {
			fprintf(stderr, "fleetjournal: %s: %s\n", store, sqlite3_errmsg(db));
			break;
		}
		fflush(stdout);
		nanosleep(&poll, NULL);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return seen < count;
}

int
main(int argc, char **argv)
{
	char **stores;
	long n;

	if (sodium_init() < 0)
		return 2;
	if (argc == 6 && strcmp(argv[1], "logins") == 0 && atol(argv[3]) > 0 && atol(argv[4]) > 0) {
		if ((n = read_lines(argv[2], &stores)) <= 0)
			return 2;
		return logins(stores, n, atol(argv[3]), atol(argv[4]), argv[5]);
	}
	if ((argc == 6 || argc == 7) && strcmp(argv[1], "sessions") == 0) {
		char **daemons = NULL;

		if ((n = read_lines(argv[2], &stores)) <= 0 ||
		    (argc == 7 && read_lines(argv[6], &daemons) != n))
			return 2;
		return sessions(stores, n, daemons, argv[3], argv[4], atol(argv[5]));
	}
	if (argc == 6 && strcmp(argv[1], "stored") == 0 && atol(argv[4]) > 0 && atol(argv[5]) > 0)
		return stored(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	fprintf(stderr, "usage: fleetjournal logins STORES RATE SECONDS PREFIX\n"
	                "       fleetjournal sessions STORES KEY_ID USER TIMEOUT_MS [PIDS]\n"
	                "       fleetjournal stored STORE PREFIX COUNT TIMEOUT_S\n");
	return 2;
}
