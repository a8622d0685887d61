/*
 * metrics.h - the daemon's figures in Prometheus's text format, at [sync]
 * metrics_file (SPEC §11), for node_exporter's textfile collector.
 */
#ifndef SYNCD_METRICS_H
#define SYNCD_METRICS_H

#include <sqlite3.h>
#include <stdint.h>

/* A summary: how many, and their sum in seconds. */
struct sd_timing {
	uint64_t count;
	double sum;
};

struct sd_metrics {
	const char *path; /* [sync] metrics_file; NULL: nothing is written */
	const char *role; /* "authority", "machine" */
	const char *machine;
	int64_t next_ms; /* the next write */
	int failed;      /* the last write failed (said once) */
	uint64_t applied, published;
	uint64_t events_collected, events_shipped, events_received; /* events.c */
	int64_t events_pending;                                     /* -1: not known */
	uint64_t sessions_ended;                                    /* sessions.c */
	struct sd_timing apply, publish;
};

/* Adds one duration, from start_us (sd_now_us()) to now. */
void sd_timing_add(struct sd_timing *t, int64_t start_us);

/*
 * Writes the file when it is due (every 5 s): the counters of m, and what
 * the store db says (on a machine or a standby the heartbeat's age, with
 * applied the revision it has applied; on the authority the store's
 * revision, what is unpublished and how many machines are behind). The
 * file is replaced whole (a .tmp renamed over it), mode 0644.
 */
void sd_metrics_tick(struct sd_metrics *m, sqlite3 *db, int64_t applied);

#endif
