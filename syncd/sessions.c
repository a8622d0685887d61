/*
 * sessions.c - a revocation ends what the key already opened (SPEC §11).
 *
 * The module records each session it opens with a key (events.c takes
 * the record into the sessions table, trail.c). After every change to
 * the store, and once a second, every open session of this host is
 * checked again as its key would be to open it now (vk_authorize_session:
 * the key, its user, the grant and role for the session's service, the
 * secret it used). One the key could no longer open is recorded ended,
 * then ended: logind terminates it when the process that opened it leads
 * the logind session the module recorded; and that process and every
 * process under it get SIGTERM, and SIGKILL KILL_AFTER_MS later if still
 * there. For sshd the process that opened the session is the connection's
 * privileged process, so its end drops the connection. A session whose
 * process is gone is closed. Each end and close is an event, shipped like
 * the module's.
 *
 * Security rules for this file:
 *  1. Only a denial ends a session: a store that cannot answer, or a
 *     session that cannot be checked (its user was not recorded whole),
 *     ends nothing (it is tried again), and a stale replica is no denial.
 *  2. A process is signalled only through a pidfd opened before its start
 *     time was read again and found to be the one seen (recorded, or under
 *     the session's process and not before it): a reused PID is never hit.
 *     PID 1 and this daemon are never signalled.
 *  3. A process that opened more than one session (a server that opens
 *     its users' sessions itself, trail.c marks it shared) is never
 *     signalled: only logind may end such a session.
 *  4. logind is asked to end only the session that the process's cgroup
 *     says it is in (sd_pid_get_session), when the module recorded that
 *     one and the process leads it (logind.c).
 *  5. [sync] end_sessions = no ends nothing; sessions are still recorded.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include <sodium.h>

#include "authz.h"
#include "duration.h"
#include "event.h"
#include "logind.h"
#include "proc.h"
#include "sessions.h"
#include "store.h"
#include "syncd.h"
#include "trail.h"

#define CHECK_EVERY_MS 1000 /* between checks when the store did not change */
#define KILL_AFTER_MS  5000 /* from SIGTERM to SIGKILL */
#define TREE_MAX       4096 /* processes of one session signalled */

/* One open session, as the sessions table has it. */
struct session {
	int64_t pid, start;
	char key_id[VK_UUID_STRLEN + 1];
	char user[VK_EVENT_USER_MAX + 1]; /* as written: escaped */
	char service[VK_EVENT_SERVICE_MAX + 1];
	char rhost[VK_EVENT_RHOST_MAX + 1];
	char role[12], secret[VK_SECRET_TAG_LEN + 1], logind[VK_EVENT_LOGIND_MAX + 1];
	int shared; /* its process opened other sessions too (rule 3) */
};

void
sd_sessions_open(struct sd_sessions *ss, const struct vk_config *cfg, struct sd_metrics *metrics)
{
	memset(ss, 0, sizeof *ss);
	ss->configured = cfg->machine_id;
	ss->end = cfg->sync.end_sessions;
	ss->data_version = -1;
	ss->open = -1;
	ss->metrics = metrics;
}

void
sd_sessions_close(struct sd_sessions *ss)
{
	sqlite3_finalize(ss->version);
	ss->version = NULL;
}

/* ---- processes ------------------------------------------------------------------- */

static int
may_signal(int64_t pid)
{
	return pid > 1 && pid != (int64_t)getpid();
}

/* Whether pid is still the process that started at start (rule 2). */
static int
same_process(int64_t pid, int64_t start)
{
	struct vk_proc p;

	return vk_proc_read(pid, &p) == 0 && p.start == start;
}

/* Whether out[0..n) holds pid already. */
static int
listed(const struct vk_proc *out, size_t n, int64_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].pid == pid)
			return 1;
	return 0;
}

/*
 * What tree() finds, found by reading every process on the host instead:
 * for a kernel that keeps no children lists (CONFIG_PROC_CHILDREN).
 */
static size_t
scan_tree(const struct vk_proc *root, struct vk_proc *out, size_t max)
{
	struct vk_proc *all = NULL;
	size_t n = 0, cap = 0, found = 1;
	struct dirent *d;
	DIR *dir;

	out[0] = *root;
	if ((dir = opendir("/proc")) == NULL)
		return found;
	while ((d = readdir(dir)) != NULL) {
		char *end;
		long long pid = strtoll(d->d_name, &end, 10);
		struct vk_proc p;

		if (*end != '\0' || pid <= 1 || vk_proc_read(pid, &p) != 0 || p.start < root->start)
			continue;
		if (n == cap) {
			struct vk_proc *grown =
			    realloc(all, (cap = cap ? 2 * cap : 256) * sizeof *all);

			if (grown == NULL)
				break;
			all = grown;
		}
		all[n++] = p;
	}
	closedir(dir);
	/* breadth first: out[0..found) are in the tree; add their children */
	for (size_t i = 0; i < found && found < max; i++)
		for (size_t j = 0; j < n && found < max; j++)
			if (all[j].ppid == out[i].pid && !listed(out, found, all[j].pid))
				out[found++] = all[j];
	free(all);
	return found;
}

/*
 * Every process of the tree under root (itself included, first), none
 * started before it: into out (at most max); how many. Breadth first
 * through the children lists of each process's threads, so that the cost
 * is the tree's and not the host's. A child is kept only if its stat names
 * the parent that listed it, and that parent, read after it, is still the
 * process it was (not a reuse of its PID).
 */
static size_t
tree(const struct vk_proc *root, struct vk_proc *out, size_t max)
{
	static int64_t kids[TREE_MAX];
	size_t found = 1;

	out[0] = *root;
	for (size_t i = 0; i < found && found < max; i++) {
		int n = vk_proc_children(out[i].pid, kids, TREE_MAX);

		if (n < 0 && i == 0)
			return scan_tree(root, out, max);
		for (int k = 0; k < n && found < max; k++) {
			struct vk_proc p;

			/* its parent, read again after it: still the process that listed it */
			if (vk_proc_read(kids[k], &p) == 0 && p.ppid == out[i].pid &&
			    p.start >= root->start && same_process(out[i].pid, out[i].start) &&
			    !listed(out, found, p.pid))
				out[found++] = p;
		}
	}
	return found;
}

/* logind's end of the session, when its process is in the logind session recorded. */
static int
logind_end(const struct session *s)
{
	char err[VK_ERRLEN];

	if (s->logind[0] == '\0')
		return -1;
	if (vk_logind_terminate((pid_t)s->pid, s->logind, err, sizeof err) == 0)
		return 0;
	if (err[0] != '\0')
		sd_log(LOG_WARNING, "session %lld: %s", (long long)s->pid, err);
	return -1;
}

/* sig to pid if it is still the process that started at start (rule 2): 0 sent, -1 not. */
static int
signal_exact(int64_t pid, int64_t start, int sig)
{
	int fd, rc = -1;

	if (!may_signal(pid) || (fd = pidfd_open((pid_t)pid, 0)) < 0)
		return -1;
	if (same_process(pid, start) && pidfd_send_signal(fd, sig, NULL, 0) == 0)
		rc = 0;
	close(fd);
	return rc;
}

/* SIGTERM to the session's tree now, SIGKILL later (rule 2); how many were signalled. */
static size_t
signal_tree(struct sd_sessions *ss, const struct session *s)
{
	static struct vk_proc procs[TREE_MAX];
	struct vk_proc root;
	size_t n, hit = 0;

	if (vk_proc_read(s->pid, &root) != 0 || root.start != s->start)
		return 0;
	n = tree(&root, procs, TREE_MAX);
	for (size_t i = 0; i < n; i++) {
		if (signal_exact(procs[i].pid, procs[i].start, SIGTERM) != 0)
			continue;
		hit++;
		if (ss->nkills < SD_SESSIONS_KILLS)
			ss->kills[ss->nkills++] = (struct sd_kill){procs[i].pid, procs[i].start,
			                                           sd_now_ms() + KILL_AFTER_MS};
		else
			(void)signal_exact(procs[i].pid, procs[i].start, SIGKILL);
	}
	return hit;
}

/* SIGKILL to what SIGTERM left, when due. */
static void
kill_late(struct sd_sessions *ss)
{
	int64_t now = sd_now_ms();
	int kept = 0;

	for (int i = 0; i < ss->nkills; i++) {
		struct sd_kill *k = &ss->kills[i];

		if (k->due_ms > now)
			ss->kills[kept++] = *k;
		else if (signal_exact(k->pid, k->start, SIGKILL) == 0)
			sd_log(LOG_NOTICE, "process %lld outlived SIGTERM by %d s: SIGKILL",
			       (long long)k->pid, KILL_AFTER_MS / 1000);
	}
	ss->nkills = kept;
}

/* ---- the check --------------------------------------------------------------------- */

/* The session's end or close, as an event of this host's (trail.h). */
static int
note(sqlite3 *db, const struct sd_sessions *ss, const struct session *s, const char *what,
     const char *reason, char err[VK_ERRLEN])
{
	struct sd_trail t = {.db = db};
	unsigned char uid[16];
	struct vk_event e;
	int rc;

	randombytes_buf(uid, sizeof uid);
	if (vk_event_make(&e, uid, vk_now(), "session", what, reason, s->key_id, NULL, NULL,
	                  NULL) != 0 ||
	    vk_event_set_session(&e, s->role, s->secret, s->logind, s->pid, s->start) != 0) {
		vk_seterr(err, "session %lld of key %s cannot be recorded", (long long)s->pid,
		          s->key_id);
		return -1;
	}
	/* the PAM items as the open wrote them: already escaped */
	memcpy(e.user, s->user, sizeof e.user);
	memcpy(e.service, s->service, sizeof e.service);
	memcpy(e.rhost, s->rhost, sizeof e.rhost);
	rc = sd_trail_add(&t, &e, ss->configured, err);
	sd_trail_done(&t);
	return rc < 0 ? -1 : 0;
}

/* What becomes of one open session: NULL (it stays), "close" or "end" with *reason. */
static const char *
verdict(struct sd_sessions *ss, sqlite3 *db, const struct session *s, const char **reason)
{
	char user[VK_USER_MAX + 1];
	struct vk_session_ref ref;
	struct vk_result res;

	*reason = NULL;
	if (!same_process(s->pid, s->start)) {
		*reason = "gone";
		return "close";
	}
	if (!ss->end)
		return NULL;
	if (vk_event_unescape(s->user, user, sizeof user) != 0) {
		if (!ss->told)
			sd_log(LOG_WARNING,
			       "session %lld: its user was not recorded whole; not checked",
			       (long long)s->pid);
		ss->told = 1;
		return NULL; /* rule 1 */
	}
	ref = (struct vk_session_ref){s->key_id,
	                              user,
	                              ss->machine,
	                              s->secret,
	                              s->role[0] != '\0' ? vk_role_parse(s->role) : VK_ROLE_NONE,
	                              vk_now()};
	vk_authorize_session(db, &ref, &res);
	if (res.decision == VK_DECISION_ERROR) {
		if (!ss->told)
			sd_log(LOG_ERR, "cannot check this host's sessions: %s", res.err);
		ss->told = 1;
		return NULL;
	}
	ss->told = 0;
	*reason = vk_reason_name(res.reason);
	return res.decision == VK_DECISION_DENY ? "end" : NULL;
}

static void
text_column(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", v != NULL ? (const char *)v : "");
}

/* This host's open sessions: into *out (malloc()ed); how many, or -1. */
static int
open_sessions(sqlite3 *db, const struct sd_sessions *ss, struct session **out)
{
	char err[VK_ERRLEN];
	sqlite3_stmt *st;
	int n = 0, cap = 0, step;

	*out = NULL;
	if (vk_store_prepare(
	        db, "cannot read this host's sessions", err, &st,
	        "SELECT pid, start, key_id, user, service, rhost, role, secret, logind,"
	        " shared FROM sessions WHERE state = 'open'"
	        " AND machine_id = coalesce(?1, '')"
	        " ORDER BY opened_at",
	        "t", ss->configured) != VK_OK) {
		sd_log(LOG_ERR, "%s", err);
		return -1;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		struct session *s;

		if (n == cap) {
			struct session *grown =
			    realloc(*out, (size_t)(cap = cap ? 2 * cap : 16) * sizeof **out);

			if (grown == NULL) {
				sd_log(LOG_ERR, "out of memory for this host's sessions");
				break;
			}
			*out = grown;
		}
		s = &(*out)[n++];
		memset(s, 0, sizeof *s);
		s->pid = sqlite3_column_int64(st, 0);
		s->start = sqlite3_column_int64(st, 1);
		text_column(s->key_id, sizeof s->key_id, st, 2);
		text_column(s->user, sizeof s->user, st, 3);
		text_column(s->service, sizeof s->service, st, 4);
		text_column(s->rhost, sizeof s->rhost, st, 5);
		text_column(s->role, sizeof s->role, st, 6);
		text_column(s->secret, sizeof s->secret, st, 7);
		text_column(s->logind, sizeof s->logind, st, 8);
		s->shared = sqlite3_column_int(st, 9) != 0;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		sd_log(LOG_ERR, "cannot read this host's sessions: %s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return n;
}

/* Whether the store changed since the last look (anyone's writes, ours too). */
static int
changed(struct sd_sessions *ss, sqlite3 *db)
{
	int64_t version = -1, changes = sqlite3_total_changes64(db);
	int was;

	/* a statement kept for the daemon's life: an idle tick prepares nothing */
	if (ss->version == NULL) /* a failed prepare leaves it NULL: tried again next time */
		(void)sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &ss->version, NULL);
	if (ss->version != NULL) {
		if (sqlite3_step(ss->version) == SQLITE_ROW)
			version = sqlite3_column_int64(ss->version, 0);
		sqlite3_reset(ss->version);
	}
	was = version != ss->data_version || changes != ss->changes;
	ss->data_version = version;
	ss->changes = changes;
	return was;
}

/* The end of s, once recorded: logind, then the signals (rules 2 to 4). */
static void
end_session(struct sd_sessions *ss, const struct session *s, const char *reason)
{
	int by_logind = logind_end(s) == 0;
	size_t hit = 0;

	if (s->shared)
		sd_log(
		    LOG_WARNING,
		    "session %lld (key %s): its process opened other sessions too; not signalled",
		    (long long)s->pid, s->key_id);
	else
		hit = signal_tree(ss, s);
	sd_log(LOG_NOTICE, "ended session %lld (key %s, %s): %s; %s%zu processes signalled",
	       (long long)s->pid, s->key_id, s->service[0] ? s->service : "-", reason,
	       by_logind ? "logind ended it, " : "", hit);
	ss->metrics->sessions_ended++;
}

/*
 * The records of one look's ends and closes are committed without waiting
 * for the disk (synchronous = NORMAL: each survives this daemon's crash),
 * and the log is synced once, after the signals: a revocation that ends a
 * session on each of 1,000 machines sharing a disk no longer waits for
 * 1,000 more flushes before the signals go. A power cut in between loses
 * only the record of an end whose session went with the power. The level
 * the store had (FULL), or -1 when it cannot be read or set (then nothing
 * changes).
 */
static int64_t
lazy_commits(sqlite3 *db)
{
	char err[VK_ERRLEN];
	int64_t level;

	if (vk_store_query_int(db, "", err, &level, "PRAGMA synchronous", "") != VK_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	return level;
}

static void
durable_again(sqlite3 *db, int64_t level)
{
	char sql[64];

	snprintf(sql, sizeof sql, "PRAGMA synchronous = %d", (int)level);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		sd_log(LOG_ERR, "cannot make the store's commits durable again: %s",
		       sqlite3_errmsg(db));
}

void
sd_sessions_tick(struct sd_sessions *ss, sqlite3 *db)
{
	struct session *open = NULL;
	char err[VK_ERRLEN];
	int64_t level = -2; /* the store's synchronous level, once set lazy (-1: it could not be) */
	int n, noted = 0;

	kill_late(ss);
	/* unchanged: only open sessions are looked at again, once a second, for expiries */
	if (!changed(ss, db) && (ss->open == 0 || sd_now_ms() < ss->next_ms))
		return;
	ss->next_ms = sd_now_ms() + CHECK_EVERY_MS;
	if (ss->machine[0] == '\0' &&
	    vk_store_host_machine(db, ss->configured, ss->machine, err) != VK_OK) {
		ss->machine[0] = '\0';
		return; /* a store not bound to a machine yet: no session to check */
	}
	ss->open = n = open_sessions(db, ss, &open);
	if (n <= 0) {
		free(open);
		return;
	}
	for (int i = 0; i < n; i++) {
		const char *reason, *what = verdict(ss, db, &open[i], &reason);

		if (what == NULL)
			continue;
		if (level == -2)
			level = lazy_commits(db);
		/* recorded first: a session is ended once, whatever befalls the signals */
		if (vk_store_begin(db, err) != VK_OK ||
		    note(db, ss, &open[i], what, reason, err) != 0 ||
		    vk_store_commit(db, err) != VK_OK) {
			vk_store_rollback(db);
			sd_log(LOG_ERR, "%s", err);
			continue;
		}
		noted++;
		if (strcmp(what, "end") == 0)
			end_session(ss, &open[i], reason);
	}
	free(open);
	if (level >= 0)
		durable_again(db, level);
	if (noted > 0 && vk_store_sync_log(db) != 0)
		sd_log(LOG_ERR, "cannot write the record of the sessions ended to the disk");
}
