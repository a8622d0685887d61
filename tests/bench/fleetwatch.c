/*
 * fleetwatch - for `make bench-fleet`: when a change is in force on every
 * machine, read from the machines' replicas themselves rather than from
 * their acknowledgements (which also wait for the bucket: see fleetwait).
 *
 *   fleetwatch REPLICAS name|disabled VALUE TIMEOUT_MS
 *
 * REPLICAS is a file naming one replica (a machine's store) a line. name
 * VALUE: a key of that name is in the replica; disabled VALUE: the key of
 * that ID is there and disabled. Opens every replica read-only, prints
 * "ready" on its own line once it watches them all, and then prints the
 * CLOCK_REALTIME nanoseconds at which it saw the last replica holding the
 * change (exit 0), or "timeout COUNT" with the count of replicas that did
 * not, TIMEOUT_MS after it was ready (exit 1).
 *
 * A commit writes the replica's write-ahead log, which inotify reports (no
 * polling of idle replicas); the commit is visible once its fsync is done,
 * so a replica whose log was written is read every millisecond until it
 * holds the change.
 */
#include "autoconfig.h"

#include <limits.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

/* how long after a write of its log a replica is read every millisecond */
#define HOT_NS 2000000000LL

struct replica {
	sqlite3 *db;
	sqlite3_stmt *st;
	int wd;              /* inotify watch of its directory */
	long long hot_until; /* read until then: its log was written HOT_NS before */
	int done;            /* holds the change */
};

static long long
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Whether r holds the change; -1 when it cannot be read. */
static int
holds(struct replica *r)
{
	int rc = sqlite3_step(r->st), yes = rc == SQLITE_ROW && sqlite3_column_int64(r->st, 0) > 0;

	sqlite3_reset(r->st);
	return rc == SQLITE_ROW || rc == SQLITE_BUSY ? yes : -1;
}

/* Reads the inotify events: each replica whose log was written is hot. */
static void
drain(int fd, struct replica *r, int n)
{
	char buf[64 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t len;

	while ((len = read(fd, buf, sizeof buf)) > 0)
		for (char *p = buf; p < buf + len;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			size_t nl = ev->len > 0 ? strlen(ev->name) : 0;

			if (nl > 4 && strcmp(ev->name + nl - 4, "-wal") == 0)
				for (int i = 0; i < n; i++)
					if (r[i].wd == ev->wd)
						r[i].hot_until = realtime_ns() + HOT_NS;
			p += sizeof *ev + ev->len;
		}
}

int
main(int argc, char **argv)
{
	const char *sql;
	struct replica *r = NULL;
	char line[4096];
	long long deadline, last = 0;
	int n = 0, cap = 0, left, fd, rc = 1;
	FILE *f;

	if (argc != 5 || (strcmp(argv[2], "name") != 0 && strcmp(argv[2], "disabled") != 0)) {
		fputs("usage: fleetwatch REPLICAS name|disabled VALUE TIMEOUT_MS\n", stderr);
		return 2;
	}
	sql = strcmp(argv[2], "name") == 0
	          ? "SELECT count(*) FROM keys WHERE name = ?1"
	          : "SELECT count(*) FROM keys WHERE id = ?1 AND disabled = 1";
	if ((fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 ||
	    (f = fopen(argv[1], "r")) == NULL) {
		perror("fleetwatch");
		return 2;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		char *slash;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (n == cap) {
			struct replica *more =
			    realloc(r, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *r);

			if (more == NULL) {
				perror("fleetwatch");
				goto out;
			}
			r = more;
		}
		memset(&r[n], 0, sizeof r[n]);
		if (sqlite3_open_v2(line, &r[n].db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
		    sqlite3_prepare_v2(r[n].db, sql, -1, &r[n].st, NULL) != SQLITE_OK ||
		    sqlite3_bind_text(r[n].st, 1, argv[3], -1, SQLITE_STATIC) != SQLITE_OK) {
			fprintf(stderr, "fleetwatch: %s: %s\n", line, sqlite3_errmsg(r[n].db));
			n++;
			goto out;
		}
		sqlite3_busy_timeout(r[n].db, 0);
		if ((slash = strrchr(line, '/')) != NULL)
			*slash = '\0';
		if ((r[n].wd = inotify_add_watch(fd, slash != NULL ? line : ".", IN_MODIFY)) < 0) {
			perror("fleetwatch: inotify_add_watch");
			n++;
			goto out;
		}
		n++;
	}
	fclose(f);
	f = NULL;
	printf("ready\n");
	fflush(stdout);
	deadline = realtime_ns() + atoll(argv[4]) * 1000000LL;
	left = n;
	/* each replica is read once first: a change already there counts from now */
	for (int i = 0; i < n; i++) {
		int h = holds(&r[i]);

		if (h < 0) {
			fprintf(stderr, "fleetwatch: %s\n", sqlite3_errmsg(r[i].db));
			goto out;
		}
		if (h) {
			r[i].done = 1;
			last = realtime_ns();
			left--;
		}
	}
	while (left > 0 && realtime_ns() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		long long now = realtime_ns();
		int any_hot = 0;

		drain(fd, r, n);
		for (int i = 0; i < n; i++) {
			int h;

			if (r[i].done || r[i].hot_until < now)
				continue;
			if ((h = holds(&r[i])) < 0) {
				fprintf(stderr, "fleetwatch: %s\n", sqlite3_errmsg(r[i].db));
				goto out;
			}
			if (h) {
				r[i].done = 1;
				last = realtime_ns();
				left--;
			} else {
				any_hot = 1;
			}
		}
		/* a hot replica's commit becomes visible after its fsync: read again in 1 ms */
		(void)poll(&p, 1, any_hot ? 1 : 100);
	}
	if (left == 0) {
		printf("%lld\n", last);
		rc = 0;
	} else {
		printf("timeout %d\n", left);
	}
out:
	if (f != NULL)
		fclose(f);
	for (int i = 0; i < n; i++) {
		sqlite3_finalize(r[i].st);
		sqlite3_close(r[i].db);
	}
	free(r);
	close(fd);
	return rc;
}
