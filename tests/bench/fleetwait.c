/*
 * fleetwait - for `make bench-fleet`: how long until a revision is durable
 * on the bus, and until every machine has applied it, as the authority's
 * store records them.
 *
 *   fleetwait STORE REVISION SINCE_NS TIMEOUT_MS
 *
 * Polls the store every millisecond: sync_outbox (by its index on rev)
 * until no row of REVISION or older is left, which the authority's daemon
 * deletes once JetStream has acknowledged its every put; and sync_machines
 * (a table scan of at most a few thousand rows) until no machine of the
 * tree but this host's own acknowledged less than REVISION. Prints the
 * milliseconds since SINCE_NS (CLOCK_REALTIME nanoseconds, as `date +%s%N`
 * gives them) of both, "PUBLISHED APPLIED", and exits 0; after TIMEOUT_MS
 * prints "PUBLISHED timeout BEHIND" (PUBLISHED "-" when the outbox still
 * held it), with the count of machines behind, and exits 1.
 */
#include "autoconfig.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long
realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int
main(int argc, char **argv)
{
	struct timespec step = {0, 1000000};
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL, *ob = NULL;
	long long since, timeout_ns, behind = -1, pending = -1;
	double published = -1;

	if (argc != 5) {
		fputs("usage: fleetwait STORE REVISION SINCE_NS TIMEOUT_MS\n", stderr);
		return 2;
	}
	since = atoll(argv[3]);
	timeout_ns = atoll(argv[4]) * 1000000LL;
	if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "SELECT count(*) FROM machines m LEFT JOIN sync_machines s"
	                       " ON s.machine_id = m.id WHERE coalesce(s.revision, -1) < ?1"
	                       " AND m.id NOT IN (SELECT value FROM meta"
	                       " WHERE name = 'host_machine_id')",
	                       -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM sync_outbox WHERE rev <= ?1", -1, &ob,
	                       NULL) != SQLITE_OK) {
		fprintf(stderr, "fleetwait: %s\n", sqlite3_errmsg(db));
		return 2;
	}
	sqlite3_bind_int64(st, 1, atoll(argv[2]));
	sqlite3_bind_int64(ob, 1, atoll(argv[2]));
	for (;;) {
		if (published < 0) {
			if (sqlite3_step(ob) == SQLITE_ROW)
				pending = sqlite3_column_int64(ob, 0);
			sqlite3_reset(ob);
			if (pending == 0)
				published = (double)(realtime_ns() - since) / 1e6;
		}
		if (sqlite3_step(st) == SQLITE_ROW)
			behind = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		/* a machine acknowledges a revision only once it is in the bucket */
		if (behind == 0 && published >= 0) {
			printf("%.1f %.1f\n", published, (double)(realtime_ns() - since) / 1e6);
			break;
		}
		if (realtime_ns() - since > timeout_ns) {
			if (published >= 0)
				printf("%.1f timeout %lld\n", published, behind);
			else
				printf("- timeout %lld\n", behind);
			break;
		}
		nanosleep(&step, NULL);
	}
	sqlite3_finalize(ob);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return behind == 0 && published >= 0 ? 0 : 1;
}
