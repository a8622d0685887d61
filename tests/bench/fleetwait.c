/*
 * fleetwait - for `make bench-fleet`: how long until every machine has
 * applied a revision, as the authority's store records their
 * acknowledgements.
 *
 *   fleetwait STORE REVISION SINCE_NS TIMEOUT_MS
 *
 * Polls sync_machines every millisecond (one read, by the primary key's
 * table scan of at most a few thousand rows) until no machine of the tree
 * but this host's own is below REVISION, then prints the milliseconds
 * since SINCE_NS (CLOCK_REALTIME nanoseconds, as `date +%s%N` gives them)
 * and exits 0; exits 1 after TIMEOUT_MS, printing how many are behind.
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
	sqlite3_stmt *st = NULL;
	long long since, timeout_ns, behind = -1;

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
	                       -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "fleetwait: %s\n", sqlite3_errmsg(db));
		return 2;
	}
	sqlite3_bind_int64(st, 1, atoll(argv[2]));
	for (;;) {
		if (sqlite3_step(st) == SQLITE_ROW)
			behind = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (behind == 0) {
			printf("%.1f\n", (double)(realtime_ns() - since) / 1e6);
			break;
		}
		if (realtime_ns() - since > timeout_ns) {
			printf("timeout %lld\n", behind);
			break;
		}
		nanosleep(&step, NULL);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return behind == 0 ? 0 : 1;
}
