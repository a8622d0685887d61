/*
 * metrics.c - the daemon's figures in Prometheus's text format (metrics.h).
 *
 * The file is what node_exporter's textfile collector reads: each write
 * replaces it whole through a rename, so a scrape never sees half of one.
 * Every figure is either a counter this daemon keeps since it started or
 * read from the store when the file is written; none is a secret.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "record.h"
#include "store.h"

#define WRITE_EVERY_MS 5000
#define TEXT_MAX       4096

void
sd_timing_add(struct sd_timing *t, int64_t start_us)
{
	t->count++;
	t->sum += (double)(sd_now_us() - start_us) / 1e6;
}

struct text {
	char buf[TEXT_MAX];
	size_t len;
};

static void __attribute__((format(printf, 2, 3))) add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len >= sizeof t->buf)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof t->buf - t->len, fmt, ap);
	va_end(ap);
	t->len = n < 0 ? sizeof t->buf : t->len + (size_t)n;
}

/* One figure with its HELP and TYPE lines. */
static void
figure(struct text *t, const char *name, const char *type, const char *help, int64_t value)
{
	add(t, "# HELP viamkey_sync_%s %s\n# TYPE viamkey_sync_%s %s\nviamkey_sync_%s %lld\n", name,
	    help, name, type, name, (long long)value);
}

static void
timing(struct text *t, const char *name, const char *help, const struct sd_timing *s)
{
	add(t,
	    "# HELP viamkey_sync_%s %s\n# TYPE viamkey_sync_%s summary\n"
	    "viamkey_sync_%s_sum %.6f\nviamkey_sync_%s_count %llu\n",
	    name, help, name, name, s->sum, name, (unsigned long long)s->count);
}

void
sd_metrics_tick(struct sd_metrics *m, sqlite3 *db, int64_t applied)
{
	int authority = strcmp(m->role, "authority") == 0;
	int64_t revision = applied;

	char err[VK_ERRLEN], here[VK_UUID_STRLEN + 1];
	struct text t = {.len = 0};
	int64_t hb_at = -1, n = -1;

	if (m->path == NULL || sd_now_ms() < m->next_ms)
		return;
	m->next_ms = sd_now_ms() + WRITE_EVERY_MS;
	if (authority &&
	    vk_store_query_int(db, "", err, &revision,
	                       "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
	                       " WHERE name = '" VK_META_REVISION "'), 0)",
	                       "") != VK_OK)
		revision = -1;
	add(&t,
	    "# HELP viamkey_sync_info The daemon's role, and the machine it follows.\n"
	    "# TYPE viamkey_sync_info gauge\nviamkey_sync_info{role=\"%s\",machine=\"%s\"} 1\n",
	    m->role, m->machine != NULL ? m->machine : "");
	figure(&t, "revision", "gauge",
	       authority ? "The store's latest revision." : "The revision the replica has applied.",
	       revision);
	figure(&t, "errors_total", "counter", "Errors logged since the daemon started.",
	       (int64_t)sd_log_count(LOG_ERR));
	figure(&t, "warnings_total", "counter", "Warnings logged since the daemon started.",
	       (int64_t)sd_log_count(LOG_WARNING));
	if (authority) {
		figure(&t, "published_total", "counter",
		       "Changes published to the bus since the daemon started.",
		       (int64_t)m->published);
		timing(&t, "publish_round_seconds",
		       "Rounds of publishing: the signed records built, put and acknowledged by"
		       " the bus.",
		       &m->publish);
		if (vk_store_query_int(db, "", err, &n, "SELECT count(*) FROM sync_outbox", "") ==
		    VK_OK)
			figure(&t, "unpublished", "gauge", "Changes committed, not yet published.",
			       n);
		/* as keyadm sync wait counts them: this host's own machine aside */
		if (vk_store_host_machine(db, m->machine, here, err) != VK_OK)
			here[0] = '\0';
		if (vk_store_query_int(db, "", err, &n,
		                       "SELECT count(*) FROM machines m LEFT JOIN sync_machines s"
		                       " ON s.machine_id = m.id WHERE m.id != ?1"
		                       " AND coalesce(s.revision, -1) < ?2",
		                       "ti", here, revision) == VK_OK)
			figure(&t, "machines_behind", "gauge",
			       "Machines that have not acknowledged the latest revision.", n);
	} else {
		figure(&t, "records_applied_total", "counter",
		       "Records applied to the replica since the daemon started.",
		       (int64_t)m->applied);
		timing(&t, "apply_seconds", "Records applied: each checked and written.",
		       &m->apply);
		if (vk_store_query_int(db, "", err, &hb_at,
		                       "SELECT CAST(value AS INTEGER) FROM meta WHERE name = "
		                       "'" VK_META_HEARTBEAT_AT "'",
		                       "") == VK_OK &&
		    hb_at > 0)
			figure(&t, "heartbeat_age_seconds", "gauge",
			       "Seconds since the authority signed the last heartbeat held.",
			       vk_now() - hb_at);
	}
	figure(&t, "events_collected_total", "counter",
	       "Events taken from this host's journal into the store since the daemon started.",
	       (int64_t)m->events_collected);
	figure(&t, "sessions_ended_total", "counter",
	       "Sessions on this host ended because their key could no longer open them, since"
	       " the daemon started.",
	       (int64_t)m->sessions_ended);
	if (authority) {
		figure(&t, "events_received_total", "counter",
		       "Events taken from the machines into the audit trail since the daemon"
		       " started.",
		       (int64_t)m->events_received);
	} else if (m->machine != NULL) {
		figure(&t, "events_shipped_total", "counter",
		       "Events the bus confirmed, sent to the authority since the daemon started.",
		       (int64_t)m->events_shipped);
		if (m->events_pending >= 0)
			figure(&t, "events_pending", "gauge",
			       "Events of this host's not yet confirmed by the bus.",
			       m->events_pending);
	}
	if (t.len >= sizeof t.buf) {
		sd_log(LOG_ERR, "the metrics do not fit in %d bytes", TEXT_MAX);
		return;
	}
	if (vk_file_write(m->path, t.buf, t.len, 0644, 1, err) != VK_OK) {
		if (!m->failed)
			sd_log(LOG_ERR, "cannot write the metrics: %s", err);
		m->failed = 1;
		return;
	}
	m->failed = 0;
}
