/*
 * store.c - opening, creating and migrating the SQLite key store.
 *
 * Security rules for this file:
 *  1. A store MUST NOT be opened unless its directory is owned by root or
 *     the euid and not writable by group or others, and its file and every
 *     side file that exists (-wal, -shm, -journal) is a regular file owned
 *     by root or the euid that group and others can neither read nor write.
 *     The directory is checked on its opened descriptor, the files through
 *     it (fstatat, links not followed); the file SQLite then opens by path
 *     MUST be the one checked. The store's files MUST NOT be opened (and
 *     closed) outside SQLite once it may hold them: closing a descriptor
 *     drops the process's POSIX locks on that file, and with them SQLite's.
 *  2. Only VK_OPEN_INIT creates anything (directory 0700, file 0600) or
 *     changes a mode (to 0600, and only that of a file group and others
 *     could read but not write), and a failed init removes what it created.
 *     Inits of one store take turns (an exclusive flock(2) on its
 *     directory), so no init sees another's half-made store or removes a
 *     file another init has open.
 *  3. A store whose schema is newer than VK_SCHEMA_VERSION, that is not a
 *     viamkey store, or whose size disagrees with its header is refused.
 *  4. No connection checkpoints when it closes: a reader never waits for
 *     a checkpoint's exclusive lock.
 *  5. SQL is static text with bound parameters only.
 *  6. A stamp MUST be taken with the checks of rule 1, before SQLite opens
 *     the store, and two stamps MUST NOT compare unchanged unless the same
 *     files are there with the same sizes and modification times, none of
 *     them modified so shortly before the first stamp that a later change
 *     could carry the same time, and the real-time clock has not gone back
 *     between the two.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "store.h"
#include "token.h"

#define APPLICATION_ID 0x766b6579 /* "vkey" */

static const char schema_v1[] =
    "CREATE TABLE organizations ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " created_at INTEGER NOT NULL) STRICT;"
    "CREATE TABLE locations ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " org_id TEXT NOT NULL REFERENCES organizations(id),"
    " name TEXT NOT NULL,"
    " created_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX locations_org ON locations(org_id);"
    "CREATE TABLE machines ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " location_id TEXT NOT NULL REFERENCES locations(id),"
    " name TEXT NOT NULL,"
    " created_at INTEGER NOT NULL) STRICT;"
    "CREATE INDEX machines_location ON machines(location_id);"
    "CREATE TABLE keys ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " name TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL,"
    " disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
    " protected INTEGER NOT NULL DEFAULT 0 CHECK (protected IN (0, 1)),"
    " expires_at INTEGER,"
    " last_used_at INTEGER,"
    " last_used_service TEXT,"
    " last_used_user TEXT,"
    " last_used_rhost TEXT) STRICT;"
    "CREATE TABLE key_users ("
    " key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,"
    " user TEXT NOT NULL,"
    " PRIMARY KEY (key_id, user)) STRICT, WITHOUT ROWID;"
    /* key columns first: SQLite 3.40's integrity_check misreads WITHOUT ROWID tables otherwise */
    "CREATE TABLE grants ("
    " key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,"
    " resource_type TEXT NOT NULL"
    "  CHECK (resource_type IN ('organization', 'location', 'machine')),"
    " resource_id TEXT NOT NULL,"
    " role TEXT NOT NULL CHECK (role IN ('owner', 'operator', 'viewer')),"
    " PRIMARY KEY (key_id, resource_type, resource_id)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX grants_resource ON grants(resource_type, resource_id);"
    "CREATE TABLE secrets ("
    " id INTEGER PRIMARY KEY,"
    " key_id TEXT NOT NULL REFERENCES keys(id) ON DELETE CASCADE,"
    " alg TEXT NOT NULL,"
    " salt BLOB NOT NULL,"
    " verifier BLOB NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " expires_at INTEGER) STRICT;"
    "CREATE INDEX secrets_key ON secrets(key_id);"
    "CREATE TABLE events ("
    " id INTEGER PRIMARY KEY,"
    " at INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " key_id TEXT,"
    " detail TEXT) STRICT;"
    "CREATE INDEX events_key ON events(key_id);"
    "CREATE TABLE meta ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " value TEXT NOT NULL) STRICT;";

/*
 * migrations[v] takes a store from schema v to v + 1.
 *
 * v2: the audit trail names the effective user beside the person
 * (events.effective); keys are listed by an index on their creation.
 */
static const char schema_v2[] = "ALTER TABLE events ADD COLUMN effective TEXT;"
                                "CREATE INDEX keys_created ON keys(created_at, id);";

/*
 * v3: the fleet (SPEC §8). The break-glass flag; on the authority, the
 * outbox of changes still to publish (one row per organization, location,
 * machine or key, with the revision of its latest change), the bus entries
 * that hold each one's record, and the revision each machine acknowledged;
 * on a replica, the revision of each record it holds (full record or
 * tombstone). Key columns come first in WITHOUT ROWID tables (see v1).
 */
static const char schema_v3[] = "ALTER TABLE keys ADD COLUMN break_glass INTEGER NOT NULL DEFAULT 0"
                                " CHECK (break_glass IN (0, 1));"
                                "CREATE TABLE sync_outbox ("
                                " kind TEXT NOT NULL,"
                                " id TEXT NOT NULL,"
                                " rev INTEGER NOT NULL,"
                                " PRIMARY KEY (kind, id)) STRICT, WITHOUT ROWID;"
                                "CREATE INDEX sync_outbox_rev ON sync_outbox(rev);"
                                "CREATE TABLE sync_published ("
                                " kind TEXT NOT NULL,"
                                " id TEXT NOT NULL,"
                                " entry TEXT NOT NULL,"
                                " PRIMARY KEY (kind, id, entry)) STRICT, WITHOUT ROWID;"
                                "CREATE TABLE sync_machines ("
                                " machine_id TEXT PRIMARY KEY NOT NULL,"
                                " revision INTEGER NOT NULL,"
                                " reported_at INTEGER NOT NULL) STRICT;"
                                "CREATE TABLE sync_held ("
                                " kind TEXT NOT NULL,"
                                " id TEXT NOT NULL,"
                                " rev INTEGER NOT NULL,"
                                " full INTEGER NOT NULL,"
                                " PRIMARY KEY (kind, id)) STRICT, WITHOUT ROWID;";

/*
 * v4: a bus that cannot lie (SPEC §8, rules 7 to 11), and an authority
 * that survives its host (§10). On the authority,
 * each published entry's revision and whether it holds a tombstone, the
 * index pages it last published for each scope (head.h) and the pages
 * whose scope head must be published again; each machine's format and last
 * error. On a replica, the epoch of each record it holds, the revision of
 * every entry of its scopes it has seen, and the latest head of each scope.
 * An authority publishes
 * everything again, so that every entry's revision is known.
 */
static const char schema_v4[] =
    "ALTER TABLE sync_published ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sync_held ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE sync_published ADD COLUMN tomb INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX sync_published_entry ON sync_published(entry);"
    "CREATE TABLE sync_pages ("
    " scope TEXT NOT NULL,"
    " page INTEGER NOT NULL,"
    " count INTEGER NOT NULL,"
    " digest BLOB NOT NULL,"
    " rev INTEGER NOT NULL,"
    " PRIMARY KEY (scope, page)) STRICT, WITHOUT ROWID;"
    "CREATE TABLE sync_dirty ("
    " scope TEXT NOT NULL,"
    " page INTEGER NOT NULL,"
    " rev INTEGER NOT NULL,"
    " PRIMARY KEY (scope, page)) STRICT, WITHOUT ROWID;"
    "CREATE INDEX sync_dirty_rev ON sync_dirty(rev);"
    "ALTER TABLE sync_machines ADD COLUMN format INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE sync_machines ADD COLUMN last_error TEXT;"
    "CREATE TABLE sync_roots ("
    " version INTEGER PRIMARY KEY NOT NULL,"
    " value TEXT NOT NULL) STRICT;"
    "CREATE TABLE sync_entries ("
    " entry TEXT PRIMARY KEY NOT NULL,"
    " rev INTEGER NOT NULL,"
    " tomb INTEGER NOT NULL) STRICT, WITHOUT ROWID;"
    "CREATE TABLE sync_heads ("
    " scope TEXT PRIMARY KEY NOT NULL,"
    " epoch INTEGER NOT NULL,"
    " rev INTEGER NOT NULL,"
    " value TEXT NOT NULL) STRICT, WITHOUT ROWID;"
    /* the authority's bus identities (SPEC §9, busid.h) */
    "CREATE TABLE join_tokens ("
    " id TEXT PRIMARY KEY NOT NULL,"
    " location_id TEXT NOT NULL REFERENCES locations(id) ON DELETE CASCADE,"
    " verifier BLOB NOT NULL,"
    " user_key TEXT NOT NULL,"
    " created_at INTEGER NOT NULL,"
    " created_by TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " uses INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0,"
    " revoked_at INTEGER) STRICT;"
    "CREATE TABLE machine_identities ("
    " machine_id TEXT PRIMARY KEY NOT NULL,"
    " user_key TEXT NOT NULL UNIQUE,"
    " jwt TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL) STRICT;"
    "CREATE TABLE bus_revocations ("
    " user_key TEXT PRIMARY KEY NOT NULL,"
    " at INTEGER NOT NULL,"
    " machine_id TEXT,"
    " after_rev INTEGER) STRICT;"
    /* a machine deleted, by keyadm or replicated: its bus identity ends with it */
    "CREATE TRIGGER machines_identity_end AFTER DELETE ON machines BEGIN"
    " INSERT INTO bus_revocations (user_key, at) SELECT user_key, unixepoch()"
    "  FROM machine_identities WHERE machine_id = OLD.id"
    "  ON CONFLICT (user_key) DO UPDATE SET at = excluded.at, machine_id = NULL,"
    "  after_rev = NULL;"
    " DELETE FROM machine_identities WHERE machine_id = OLD.id;"
    " END;"
    /* a token that goes (with its location) takes its bus user with it */
    "CREATE TRIGGER join_tokens_end AFTER DELETE ON join_tokens BEGIN"
    " INSERT INTO bus_revocations (user_key, at) VALUES (OLD.user_key, unixepoch())"
    "  ON CONFLICT (user_key) DO UPDATE SET at = max(at, excluded.at), machine_id = NULL,"
    "  after_rev = NULL;"
    " END;"
    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'fleet_revision'"
    " AND EXISTS (SELECT 1 FROM meta WHERE name = 'fleet_role' AND value = 'authority');"
    "INSERT INTO sync_outbox (kind, id, rev) SELECT DISTINCT kind, id,"
    " (SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'fleet_revision')"
    " FROM sync_published WHERE EXISTS (SELECT 1 FROM meta WHERE name = 'fleet_role'"
    " AND value = 'authority') ON CONFLICT (kind, id) DO UPDATE SET rev = excluded.rev;";

/*
 * v5: machines report back (SPEC §11). The audit trail holds what happened
 * on the machines too: each event's kind, the machine it happened on, the
 * PAM items, the decision and its reason, and the random ID that
 * deduplicates it on its way (unique per machine). Its IDs are never used
 * again (AUTOINCREMENT), so that a replica's "shipped up to" mark stays
 * true when old events are pruned; an admin event has no machine, and a
 * machine's event no actor. A key's last use names the machine it was on.
 */
static const char schema_v5[] =
    "CREATE TABLE events_v5 ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " at INTEGER NOT NULL,"
    " kind TEXT NOT NULL DEFAULT 'admin' CHECK (kind IN ('admin', 'login', 'session')),"
    " actor TEXT,"
    " effective TEXT,"
    " action TEXT NOT NULL,"
    " key_id TEXT,"
    " detail TEXT,"
    " machine_id TEXT,"
    " user TEXT,"
    " service TEXT,"
    " rhost TEXT,"
    " decision TEXT,"
    " reason TEXT,"
    " uid TEXT) STRICT;"
    "INSERT INTO events_v5 (id, at, actor, effective, action, key_id, detail)"
    " SELECT id, at, actor, effective, action, key_id, detail FROM events;"
    "DROP TABLE events;"
    "ALTER TABLE events_v5 RENAME TO events;"
    "CREATE INDEX events_key ON events(key_id);"
    "CREATE INDEX events_at ON events(at);"
    "CREATE INDEX events_machine ON events(machine_id, id);"
    "CREATE UNIQUE INDEX events_uid ON events(uid, coalesce(machine_id, '')) WHERE uid IS NOT NULL;"
    "ALTER TABLE keys ADD COLUMN last_used_machine TEXT;";

/*
 * v6: sessions (SPEC §11). A session event names its session (the process
 * that opened it and that process's start time), the role its service
 * required, the tag of the secret it used and its logind session. The
 * sessions table holds each session's state, per machine, from those
 * events: open, closed (the module closed it, or its process is gone) or
 * ended (its daemon ended it, with the reason); shared when its process
 * opened another session too.
 */
static const char schema_v6[] =
    "ALTER TABLE events ADD COLUMN session_pid INTEGER;"
    "ALTER TABLE events ADD COLUMN session_start INTEGER;"
    "ALTER TABLE events ADD COLUMN session_role TEXT;"
    "ALTER TABLE events ADD COLUMN session_secret TEXT;"
    "ALTER TABLE events ADD COLUMN session_logind TEXT;"
    "CREATE TABLE sessions ("
    " machine_id TEXT NOT NULL,"
    " pid INTEGER NOT NULL,"
    " start INTEGER NOT NULL,"
    " id TEXT NOT NULL,"
    " opened_at INTEGER NOT NULL,"
    " key_id TEXT NOT NULL,"
    " user TEXT,"
    " service TEXT,"
    " rhost TEXT,"
    " role TEXT,"
    " secret TEXT,"
    " logind TEXT,"
    " state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'ended')),"
    " ended_at INTEGER,"
    " reason TEXT,"
    " shared INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY (machine_id, pid, start)) STRICT;"
    "CREATE INDEX sessions_open ON sessions(state, machine_id);";

static const char *const migrations[VK_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                          schema_v4, schema_v5, schema_v6};

vk_rc
vk_store_error(sqlite3 *db, const char *what, char err[VK_ERRLEN])
{
	int code = sqlite3_errcode(db) & 0xff;

	vk_seterr(err, "%s: %s", what, sqlite3_errmsg(db));
	switch (code) {
	case SQLITE_CONSTRAINT:
		return VK_ERR_CONFLICT;
	case SQLITE_NOMEM:
		return VK_ERR_NOMEM;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
	case SQLITE_SCHEMA:
	case SQLITE_FORMAT:
		return VK_ERR_STORE;
	default:
		return VK_ERR_IO;
	}
}

static vk_rc
exec(sqlite3 *db, const char *sql, const char *what, char err[VK_ERRLEN])
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return vk_store_error(db, what, err);
	return VK_OK;
}

vk_rc
vk_store_begin(sqlite3 *db, char err[VK_ERRLEN])
{
	return exec(db, "BEGIN IMMEDIATE", "cannot start a write transaction", err);
}

vk_rc
vk_store_commit(sqlite3 *db, char err[VK_ERRLEN])
{
	vk_rc rc = exec(db, "COMMIT", "cannot commit", err);

	if (rc != VK_OK)
		vk_store_rollback(db);
	return rc;
}

void
vk_store_rollback(sqlite3 *db)
{
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

struct header {
	int user_version;
	int application_id;
	sqlite3_int64 pages;
	sqlite3_int64 page_size;
	sqlite3_int64 file_size;
	int wal; /* the file header says write-ahead log */
};

static int
header_row(void *arg, int ncols, char **values, char **names)
{
	struct header *h = arg;

	if (ncols != 1 || values[0] == NULL)
		return 0;
	if (strcmp(names[0], "user_version") == 0)
		h->user_version = atoi(values[0]);
	else if (strcmp(names[0], "application_id") == 0)
		h->application_id = atoi(values[0]);
	else if (strcmp(names[0], "page_count") == 0)
		h->pages = strtoll(values[0], NULL, 10);
	else if (strcmp(names[0], "page_size") == 0)
		h->page_size = strtoll(values[0], NULL, 10);
	return 0;
}

/*
 * Reads what identifies the store inside one read transaction. Plain
 * PRAGMA statements: the pragma_*() table-valued functions would build a
 * virtual table each, which cost more than the rest of a login together.
 * With keep_txn, a read transaction this call began stays open when it
 * succeeds, for the caller's reads to share.
 */
static vk_rc
read_header(sqlite3 *db, const char *path, struct header *h, int keep_txn, char err[VK_ERRLEN])
{
	static const char sql[] = "PRAGMA user_version; PRAGMA application_id;"
	                          " PRAGMA page_count; PRAGMA page_size";
	sqlite3_file *file = NULL;
	unsigned char head[100];
	vk_rc rc = VK_ERR_STORE;
	int read;
	int own_txn = sqlite3_get_autocommit(db);

	memset(h, 0, sizeof *h);
	h->pages = -1;
	if ((own_txn && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) ||
	    sqlite3_exec(db, sql, header_row, h, NULL) != SQLITE_OK || h->pages < 0) {
		rc = vk_store_error(db, path, err);
		if (rc != VK_ERR_IO && rc != VK_ERR_NOMEM)
			vk_seterr(err, "store %s is unreadable or not a database (%s)", path,
			          sqlite3_errmsg(db));
		goto out;
	}
	/* a new, empty file reads short: its header is then all zeros */
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
	    file == NULL || file->pMethods == NULL ||
	    file->pMethods->xFileSize(file, &h->file_size) != SQLITE_OK ||
	    ((read = file->pMethods->xRead(file, head, sizeof head, 0)) != SQLITE_OK &&
	     read != SQLITE_IOERR_SHORT_READ)) {
		vk_seterr(err, "store %s: cannot read its size", path);
		goto out;
	}
	h->wal = head[18] == 2 && head[19] == 2; /* file format write and read versions */
	rc = VK_OK;
out:
	if (own_txn && (rc != VK_OK || !keep_txn))
		vk_store_rollback(db);
	return rc;
}

static vk_rc
validate_header(const char *path, const struct header *h, enum vk_open_mode mode,
                char err[VK_ERRLEN])
{
	if (h->user_version == 0 && h->application_id == 0 && h->pages <= 1 && mode == VK_OPEN_INIT)
		return VK_OK; /* a new, empty file */
	if (h->application_id != APPLICATION_ID) {
		vk_seterr(err, "store %s is not a viamkey store", path);
		return VK_ERR_STORE;
	}
	if (h->user_version > VK_SCHEMA_VERSION) {
		vk_seterr(err,
		          "store %s has schema version %d, newer than this viamkey knows (%d);"
		          " upgrade viamkey",
		          path, h->user_version, VK_SCHEMA_VERSION);
		return VK_ERR_STORE;
	}
	/* a login reads only what schema VK_SCHEMA_LOGIN already had: an upgrade fails none */
	if (h->user_version < (mode == VK_OPEN_LOGIN ? VK_SCHEMA_LOGIN : VK_SCHEMA_VERSION) &&
	    mode != VK_OPEN_INIT) {
		vk_seterr(err, "store %s has schema version %d; run keyadm init to migrate it",
		          path, h->user_version);
		return VK_ERR_STORE;
	}
	/*
	 * Inside a read transaction a rollback-journal store is exactly
	 * pages * page_size bytes; in WAL mode the newest pages may still be
	 * in the log, so the file may be shorter, never longer or ragged.
	 */
	if (h->page_size <= 0 || h->file_size % h->page_size != 0 ||
	    (h->wal ? h->file_size > h->pages * h->page_size
	            : h->file_size != h->pages * h->page_size)) {
		vk_seterr(err, "store %s is damaged: %lld bytes where its header says %lld", path,
		          (long long)h->file_size, (long long)(h->pages * h->page_size));
		return VK_ERR_STORE;
	}
	return VK_OK;
}

static vk_rc
migrate(sqlite3 *db, const char *path, char err[VK_ERRLEN])
{
	struct header h;
	char sql[64];
	vk_rc rc;

	if ((rc = vk_store_begin(db, err)) != VK_OK)
		return rc;
	/* read again under the write lock: another keyadm may have migrated meanwhile */
	if ((rc = read_header(db, path, &h, 0, err)) != VK_OK ||
	    (rc = validate_header(path, &h, VK_OPEN_INIT, err)) != VK_OK)
		goto out;
	for (int v = h.user_version; v < VK_SCHEMA_VERSION; v++) {
		if ((rc = exec(db, migrations[v], "cannot migrate the store", err)) != VK_OK)
			goto out;
	}
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d; PRAGMA application_id = %d",
	         VK_SCHEMA_VERSION, APPLICATION_ID);
	if ((rc = exec(db, sql, "cannot migrate the store", err)) != VK_OK)
		goto out;
	return vk_store_commit(db, err);
out:
	vk_store_rollback(db);
	return rc;
}

/*
 * Waits for a lock in steps of BUSY_STEP_US until the busy timeout has
 * passed, measured on the monotonic clock from the first call of this wait
 * (count 0): SQLite's own handler sleeps 1, 2, 5, 10, 15, 20, 25 ms...
 * between tries, so a login that meets a keyadm commit would wait far
 * longer than the commit's few milliseconds; and counting tries instead of
 * time would stretch the bound whenever a try itself waits (SQLite retries
 * a WAL read for up to seconds before it reports that it is busy).
 */
#define BUSY_STEP_US 250

static __thread int64_t wait_started_us; /* one wait happens on one thread */

static int64_t
monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
busy_wait(void *arg, int count)
{
	int64_t timeout_us = (int64_t)(intptr_t)arg * 1000, now = monotonic_us();
	struct timespec step = {0, BUSY_STEP_US * 1000};

	if (count == 0)
		wait_started_us = now;
	if (now - wait_started_us >= timeout_us)
		return 0;
	nanosleep(&step, NULL);
	return 1;
}

/*
 * The files of one store, checked through the descriptor of their
 * directory before SQLite opens them. The store's own files are never
 * opened here once SQLite may hold them: closing any descriptor of a file
 * drops every POSIX lock the process holds on it (fcntl(2)), the locks
 * SQLite's connections in this process depend on.
 */
struct files {
	const char *path;
	char *dir;           /* the directory's path */
	const char *base;    /* the file's name in it */
	int dfd;             /* the directory */
	struct stat dir_st;  /* of the directory */
	struct stat st;      /* of the store's entry */
	int dir_created;     /* init created the directory */
	int created;         /* init created the file (both are removed again if init fails) */
	struct stat side[3]; /* of side_files[i] when found[i] */
	int found[3];
};

enum { SIDE_WAL, SIDE_SHM, SIDE_JOURNAL };
static const char *const side_files[] = {
    [SIDE_WAL] = "-wal", [SIDE_SHM] = "-shm", [SIDE_JOURNAL] = "-journal"};

static vk_rc
check_owner(const char *what, const char *path, const struct stat *st, char err[VK_ERRLEN])
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		vk_seterr(err, "%s %s is owned by uid %u; it must be owned by root (chown root %s)",
		          what, path, (unsigned)st->st_uid, path);
		return VK_ERR_STORE;
	}
	return VK_OK;
}

/* The directory: owned by root or the euid, not writable by group or others. */
static vk_rc
check_dir(const char *path, const struct stat *st, char err[VK_ERRLEN])
{
	vk_rc rc = check_owner("store directory", path, st, err);

	if (rc == VK_OK && (st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		vk_seterr(err,
		          "store directory %s is writable by group or others; run chmod go-w %s",
		          path, path);
		rc = VK_ERR_STORE;
	}
	return rc;
}

/*
 * The store or a side file, named `name` in the checked directory and
 * looked at without following a link: a regular file, owned by root or the
 * euid, that group and others can neither read nor write. `fix` (init)
 * brings a file others could only read to 0600; one that others could
 * write is refused even then, since anyone may have changed it. Sets *st;
 * VK_ERR_NOTFOUND when there is no such entry.
 */
static vk_rc
check_file(const struct files *f, const char *what, const char *name, const char *shown,
           struct stat *st, int fix, char err[VK_ERRLEN])
{
	vk_rc rc;

	if (fstatat(f->dfd, name, st, AT_SYMLINK_NOFOLLOW) != 0) {
		vk_seterr(err, "%s %s: %s", what, shown, strerror(errno));
		return errno == ENOENT ? VK_ERR_NOTFOUND : VK_ERR_STORE;
	}
	if (S_ISLNK(st->st_mode)) {
		vk_seterr(err, "%s %s is not a regular file (a symbolic link)", what, shown);
		return VK_ERR_STORE;
	}
	if (!S_ISREG(st->st_mode)) {
		vk_seterr(err, "%s %s is not a regular file", what, shown);
		return VK_ERR_STORE;
	}
	if ((rc = check_owner(what, shown, st, err)) != VK_OK)
		return rc;
	if ((st->st_mode & 077) == 0)
		return VK_OK;
	if (fix && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0 &&
	    fchmodat(f->dfd, name, 0600, 0) == 0) {
		st->st_mode &= ~(mode_t)077;
		return VK_OK;
	}
	vk_seterr(err, "%s %s is readable or writable by group or others; run chmod 600 %s", what,
	          shown, shown);
	return VK_ERR_STORE;
}

/* Closes the directory; a failed init removes the files it created. */
static void
files_close(struct files *f, int failed)
{
	if (failed && f->created && f->dfd >= 0) {
		char name[PATH_MAX];

		(void)unlinkat(f->dfd, f->base, 0);
		for (size_t i = 0; i < sizeof side_files / sizeof side_files[0]; i++) {
			snprintf(name, sizeof name, "%s%s", f->base, side_files[i]);
			(void)unlinkat(f->dfd, name, 0);
		}
	}
	if (failed && f->dir_created)
		(void)rmdir(f->dir);
	if (f->dfd >= 0)
		close(f->dfd);
	free(f->dir);
	f->dfd = -1;
	f->dir = NULL;
}

/*
 * Takes the directory's init lock, waiting up to timeout_ms for another
 * init to finish; closing f->dfd releases it.
 */
static vk_rc
lock_for_init(const struct files *f, int timeout_ms, char err[VK_ERRLEN])
{
	int64_t until = monotonic_us() + (int64_t)timeout_ms * 1000;
	const struct timespec step = {0, 10 * 1000000};

	while (flock(f->dfd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			vk_seterr(err, "cannot lock store directory %s: %s", f->dir,
			          strerror(errno));
			return VK_ERR_IO;
		}
		if (monotonic_us() >= until) {
			vk_seterr(err,
			          "store %s: another keyadm init is still creating or migrating it",
			          f->path);
			return VK_ERR_IO;
		}
		nanosleep(&step, NULL);
	}
	return VK_OK;
}

/*
 * Splits path into its directory and name, and opens and checks the
 * directory; init also creates it, and takes its init lock.
 */
static vk_rc
open_dir(struct files *f, const char *path, enum vk_open_mode mode, int busy_timeout_ms,
         char err[VK_ERRLEN])
{
	vk_rc rc;

	const char *slash = strrchr(path, '/');

	f->path = path;
	f->base = slash != NULL ? slash + 1 : path;
	if (*f->base == '\0' || strcmp(f->base, ".") == 0 || strcmp(f->base, "..") == 0) {
		vk_seterr(err, "store %s does not name a file", path);
		return VK_ERR_STORE;
	}
	if (slash == NULL)
		f->dir = strdup(".");
	else if (slash == path)
		f->dir = strdup("/");
	else
		f->dir = strndup(path, (size_t)(slash - path));
	if (f->dir == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	if (mode == VK_OPEN_INIT) {
		f->dir_created = mkdir(f->dir, 0700) == 0;
		if (!f->dir_created && errno != EEXIST) {
			vk_seterr(err, "cannot create store directory %s: %s", f->dir,
			          strerror(errno));
			return VK_ERR_IO;
		}
	}
	f->dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dfd < 0 && errno == ENOENT) {
		vk_seterr(err, "store %s does not exist; create it with keyadm init", path);
		return VK_ERR_NOTFOUND;
	}
	if (f->dfd < 0 || fstat(f->dfd, &f->dir_st) != 0) {
		vk_seterr(err, "store directory %s: %s", f->dir, strerror(errno));
		return VK_ERR_STORE;
	}
	if ((rc = check_dir(f->dir, &f->dir_st, err)) != VK_OK || mode != VK_OPEN_INIT)
		return rc;
	return lock_for_init(f, busy_timeout_ms, err);
}

/* Checks the store's entry; only init creates it (the new file is closed at once, unlocked). */
static vk_rc
check_store_file(struct files *f, enum vk_open_mode mode, char err[VK_ERRLEN])
{
	vk_rc rc;

	if (mode == VK_OPEN_INIT) {
		int fd =
		    openat(f->dfd, f->base,
		           O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);

		if (fd >= 0) {
			f->created = 1;
			close(fd);
		} else if (errno != EEXIST) {
			vk_seterr(err, "cannot create store %s: %s", f->path, strerror(errno));
			return VK_ERR_IO;
		}
	}
	rc = check_file(f, "store", f->base, f->path, &f->st, mode == VK_OPEN_INIT, err);
	if (rc == VK_ERR_NOTFOUND)
		vk_seterr(err, "store %s does not exist; create it with keyadm init", f->path);
	return rc;
}

/* Checks whichever of -wal, -shm and -journal exist. */
static vk_rc
check_side_files(struct files *f, enum vk_open_mode mode, char err[VK_ERRLEN])
{
	char name[PATH_MAX], shown[PATH_MAX];

	for (size_t i = 0; i < sizeof side_files / sizeof side_files[0]; i++) {
		vk_rc rc;

		snprintf(name, sizeof name, "%s%s", f->base, side_files[i]);
		snprintf(shown, sizeof shown, "%s%s", f->path, side_files[i]);
		rc = check_file(f, "store file", name, shown, &f->side[i], mode == VK_OPEN_INIT,
		                err);
		f->found[i] = rc == VK_OK;
		if (rc != VK_OK && rc != VK_ERR_NOTFOUND)
			return rc;
		err[0] = '\0'; /* a side file that is not there is no error */
	}
	return VK_OK;
}

/* "file:" URI for path with immutable=1 (percent-encoding what a URI reserves). */
static char *
immutable_uri(const char *path)
{
	static const char suffix[] = "?immutable=1";
	char *uri = malloc(sizeof "file:" + 3 * strlen(path) + sizeof suffix), *o;

	if (uri == NULL)
		return NULL;
	o = uri + sprintf(uri, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
		if (*p == '?' || *p == '#' || *p == '%' || *p <= ' ' || *p >= 0x7f)
			o += sprintf(o, "%%%02X", *p);
		else
			*o++ = (char)*p;
	}
	memcpy(o, suffix, sizeof suffix);
	return uri;
}

/*
 * How SQLite opens the checked file. On a read-only file system a store
 * copied alone (no -wal, no -shm) is opened immutable: nothing can change
 * it and no log can hold newer pages. With both side files SQLite reads
 * the log read-only. A non-empty log without its index cannot be read, and
 * is refused rather than ignored.
 */
static vk_rc
sqlite_open(const struct files *f, sqlite3 **db, char err[VK_ERRLEN])
{
	int flags = SQLITE_OPEN_NOFOLLOW;
	char *uri = NULL;
	struct statvfs vfs;
	int rc;

	if (fstatvfs(f->dfd, &vfs) != 0 || (vfs.f_flag & ST_RDONLY) == 0) {
		flags |= SQLITE_OPEN_READWRITE;
	} else if (!f->found[SIDE_SHM] && (!f->found[SIDE_WAL] || f->side[SIDE_WAL].st_size == 0)) {
		if ((uri = immutable_uri(f->path)) == NULL) {
			vk_seterr(err, "out of memory");
			return VK_ERR_NOMEM;
		}
		flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
	} else if (!f->found[SIDE_SHM]) {
		vk_seterr(err,
		          "store %s is on a read-only file system with a non-empty -wal file but"
		          " no -shm beside it; copy keys.db alone after keyadm init, which folds"
		          " the log into it",
		          f->path);
		return VK_ERR_STORE;
	} else {
		flags |= SQLITE_OPEN_READONLY;
	}
	rc = sqlite3_open_v2(uri != NULL ? uri : f->path, db, flags, NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		vk_seterr(err, "cannot open store %s: %s", f->path,
		          *db ? sqlite3_errmsg(*db) : "out of memory");
		return *db ? VK_ERR_STORE : VK_ERR_NOMEM;
	}
	return VK_OK;
}

/*
 * The file SQLite opened by path is the one checked: the directory's path
 * still names the checked directory, its entry the checked file, and
 * SQLite's open file is that entry (SQLITE_FCNTL_HAS_MOVED). Only someone
 * who may rename entries of a directory on the path could swap a file in
 * and out between the check and the open; the checked directory admits
 * only root and the euid.
 */
static vk_rc
same_file(sqlite3 *db, const struct files *f, char err[VK_ERRLEN])
{
	struct stat dir_now, entry;
	int moved = 1;

	if (stat(f->dir, &dir_now) != 0 ||
	    fstatat(f->dfd, f->base, &entry, AT_SYMLINK_NOFOLLOW) != 0 ||
	    dir_now.st_dev != f->dir_st.st_dev || dir_now.st_ino != f->dir_st.st_ino ||
	    entry.st_dev != f->st.st_dev || entry.st_ino != f->st.st_ino ||
	    sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK ||
	    moved) {
		vk_seterr(err, "store %s was replaced while it was being opened", f->path);
		return VK_ERR_STORE;
	}
	return VK_OK;
}

/*
 * Readers never wait for a checkpoint: no connection checkpoints when it
 * closes (which takes an exclusive lock on the database file while it
 * syncs), and keyadm checkpoints after its commits instead
 * (vk_store_checkpoint), in a mode that never blocks readers.
 */
static vk_rc
configure(sqlite3 *db, const struct files *f, int busy_timeout_ms, char err[VK_ERRLEN])
{
	sqlite3_busy_handler(db, busy_wait,
	                     (void *)(intptr_t)(busy_timeout_ms > 0 ? busy_timeout_ms : 0));
	sqlite3_extended_result_codes(db, 0);
	(void)sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	/* the log and its index stay beside the store between uses */
	(void)sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &(int){1});
	return exec(db, "PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 0", f->path, err);
}

/*
 * Stamps. Every change to a store writes its file, its -wal or its
 * -journal, and so moves that file's modification time. (Not its change
 * time: SQLite run as root chowns the -wal to the store's owner each time
 * it opens it, which moves the change time of a file no one wrote.) The
 * kernel takes that time from the real-time clock as of its last tick (at
 * most 10 ms old), cut to the file system's granularity: a nanosecond on
 * most, 10 ms on exFAT, whole seconds (two on FAT) on those whose times
 * carry no fraction of a second. So a change may carry the same time as
 * the one before it, and only a file last modified more than
 * STAMP_SETTLED_NS before it was stamped (STAMP_SETTLED_WHOLE_NS for a time
 * in whole seconds) is sure to show any later change, as long as the
 * real-time clock does not go back by more than STAMP_CLOCK_SLACK_NS next
 * to the monotonic clock (which steps of the real-time clock leave alone).
 * The -shm is left out: it is SQLite's index of the log, which readers
 * rewrite.
 */
#define STAMP_CLOCK_SLACK_NS   10000000   /* 10 ms */
#define STAMP_SETTLED_NS       50000000   /* the slack, a tick and 10 ms, with room */
#define STAMP_SETTLED_WHOLE_NS 3000000000 /* the slack, a tick and 2 s, with room */

static int64_t
ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Before the files are looked at. */
static void
stamp_clocks(struct vk_store_stamp *s)
{
	memset(s, 0, sizeof *s);
	clock_gettime(CLOCK_REALTIME, &s->at);
	clock_gettime(CLOCK_MONOTONIC, &s->mono);
}

static void
stamp_file(struct vk_file_stamp *fs, const struct stat *st, int found)
{
	fs->found = found;
	if (found) {
		fs->dev = st->st_dev;
		fs->ino = st->st_ino;
		fs->size = st->st_size;
		fs->mtime = st->st_mtim;
	}
}

/* The checked files, as the checks saw them. */
static void
stamp_files(const struct files *f, struct vk_store_stamp *s)
{
	s->dir_dev = f->dir_st.st_dev;
	s->dir_ino = f->dir_st.st_ino;
	stamp_file(&s->file[0], &f->st, 1);
	stamp_file(&s->file[1], &f->side[SIDE_WAL], f->found[SIDE_WAL]);
	stamp_file(&s->file[2], &f->side[SIDE_JOURNAL], f->found[SIDE_JOURNAL]);
}

int
vk_store_unchanged(const struct vk_store_stamp *then, const struct vk_store_stamp *now)
{
	/* the real-time clock went back: a later change may carry an earlier time */
	if (ns(&now->at) - ns(&then->at) < ns(&now->mono) - ns(&then->mono) - STAMP_CLOCK_SLACK_NS)
		return 0;
	if (then->dir_dev != now->dir_dev || then->dir_ino != now->dir_ino)
		return 0;
	for (size_t i = 0; i < sizeof then->file / sizeof then->file[0]; i++) {
		const struct vk_file_stamp *a = &then->file[i], *b = &now->file[i];
		int64_t settled = ns(&then->at) - (a->mtime.tv_nsec != 0 ? STAMP_SETTLED_NS
		                                                         : STAMP_SETTLED_WHOLE_NS);

		if (a->found != b->found)
			return 0;
		if (a->found && (a->dev != b->dev || a->ino != b->ino || a->size != b->size ||
		                 ns(&a->mtime) != ns(&b->mtime) || ns(&a->mtime) >= settled))
			return 0;
	}
	return 1;
}

vk_rc
vk_store_stamp(const char *path, struct vk_store_stamp *stamp, char err[VK_ERRLEN])
{
	struct files f = {.dfd = -1};
	vk_rc rc;

	stamp_clocks(stamp);
	if ((rc = open_dir(&f, path, VK_OPEN_LOGIN, 0, err)) == VK_OK &&
	    (rc = check_store_file(&f, VK_OPEN_LOGIN, err)) == VK_OK &&
	    (rc = check_side_files(&f, VK_OPEN_LOGIN, err)) == VK_OK)
		stamp_files(&f, stamp);
	files_close(&f, 0);
	return rc == VK_ERR_NOTFOUND ? VK_ERR_STORE : rc;
}

vk_rc
vk_store_open(const char *path, enum vk_open_mode mode, int busy_timeout_ms, sqlite3 **out,
              char err[VK_ERRLEN])
{
	return vk_store_open_stamped(path, mode, busy_timeout_ms, out, NULL, err);
}

vk_rc
vk_store_open_stamped(const char *path, enum vk_open_mode mode, int busy_timeout_ms, sqlite3 **out,
                      struct vk_store_stamp *stamp, char err[VK_ERRLEN])
{
	struct files f = {.dfd = -1};
	sqlite3 *db = NULL;
	struct header h;
	vk_rc rc;

	*out = NULL;
	if (stamp != NULL)
		stamp_clocks(stamp);
	if ((rc = open_dir(&f, path, mode, busy_timeout_ms, err)) != VK_OK ||
	    (rc = check_store_file(&f, mode, err)) != VK_OK ||
	    (rc = check_side_files(&f, mode, err)) != VK_OK)
		goto fail;
	if (stamp != NULL)
		stamp_files(&f, stamp);
	if ((rc = sqlite_open(&f, &db, err)) != VK_OK || (rc = same_file(db, &f, err)) != VK_OK ||
	    (rc = configure(db, &f, busy_timeout_ms, err)) != VK_OK ||
	    (rc = read_header(db, path, &h, mode == VK_OPEN_LOGIN, err)) != VK_OK ||
	    (rc = validate_header(path, &h, mode, err)) != VK_OK)
		goto fail;
	/*
	 * The side files SQLite made for this open follow the same rules. With
	 * -wal and -shm there before, it made none: a read makes no -journal
	 * in WAL mode, and the checked directory lets no one else make one.
	 */
	if ((!f.found[SIDE_WAL] || !f.found[SIDE_SHM] || !h.wal) &&
	    (rc = check_side_files(&f, VK_OPEN_LOGIN, err)) != VK_OK)
		goto fail;
	if (mode == VK_OPEN_INIT && h.user_version < VK_SCHEMA_VERSION &&
	    (rc = migrate(db, path, err)) != VK_OK)
		goto fail;
	if (mode == VK_OPEN_INIT && !h.wal &&
	    (rc = exec(db, "PRAGMA journal_mode = WAL", "cannot switch the store to WAL", err)) !=
	        VK_OK)
		goto fail;
	files_close(&f, 0);
	*out = db;
	return VK_OK;
fail:
	if (rc == VK_ERR_NOTFOUND)
		rc = VK_ERR_STORE;
	sqlite3_close(db);
	files_close(&f, 1);
	return rc;
}

void
vk_store_checkpoint(sqlite3 *db, int truncate)
{
	(void)sqlite3_wal_checkpoint_v2(
	    db, NULL, truncate ? SQLITE_CHECKPOINT_TRUNCATE : SQLITE_CHECKPOINT_FULL, NULL, NULL);
}

int
vk_store_sync_log(sqlite3 *db)
{
	sqlite3_file *log = NULL;

	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &log) != SQLITE_OK ||
	    log == NULL || log->pMethods == NULL)
		return -1;
	return log->pMethods->xSync(log, SQLITE_SYNC_NORMAL) == SQLITE_OK ? 0 : -1;
}

int
vk_store_vbind(sqlite3_stmt *st, const char *types, va_list ap)
{
	int i = 1, ok = SQLITE_OK, used = sqlite3_bind_parameter_count(st);

	/* a statement may use fewer parameters than its caller passes */
	for (const char *t = types; *t != '\0' && ok == SQLITE_OK; t++, i++) {
		if (*t == 't') {
			const char *v = va_arg(ap, const char *);

			ok = i > used ? SQLITE_OK : sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
		} else if (*t == 'i') {
			int64_t v = va_arg(ap, int64_t);

			ok = i > used ? SQLITE_OK : sqlite3_bind_int64(st, i, v);
		} else {
			const void *p = va_arg(ap, const void *);
			int n = (int)va_arg(ap, size_t);

			ok = i > used ? SQLITE_OK : sqlite3_bind_blob(st, i, p, n, SQLITE_STATIC);
		}
	}
	return ok;
}

static vk_rc
prepare_bind(sqlite3 *db, const char *sql, const char *types, va_list ap, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;

	*out = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return VK_ERR_STORE;
	if (vk_store_vbind(st, types, ap) != SQLITE_OK) {
		sqlite3_finalize(st);
		return VK_ERR_STORE;
	}
	*out = st;
	return VK_OK;
}

vk_rc
vk_store_vprepare(sqlite3 *db, const char *what, char err[VK_ERRLEN], sqlite3_stmt **st,
                  const char *sql, const char *types, va_list ap)
{
	if (prepare_bind(db, sql, types, ap, st) != VK_OK)
		return vk_store_error(db, what, err);
	return VK_OK;
}

vk_rc
vk_store_prepare(sqlite3 *db, const char *what, char err[VK_ERRLEN], sqlite3_stmt **st,
                 const char *sql, const char *types, ...)
{
	va_list ap;
	vk_rc rc;

	va_start(ap, types);
	rc = vk_store_vprepare(db, what, err, st, sql, types, ap);
	va_end(ap);
	return rc;
}

/* Steps st to its end: VK_OK, with the rows it changed in *changes when asked. */
static vk_rc
step_done(sqlite3 *db, sqlite3_stmt *st, const char *what, char err[VK_ERRLEN], int *changes)
{
	int step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (step != SQLITE_DONE)
		return vk_store_error(db, what, err);
	if (changes != NULL)
		*changes = sqlite3_changes(db);
	return VK_OK;
}

vk_rc
vk_store_exec(sqlite3 *db, const char *what, char err[VK_ERRLEN], int *changes, const char *sql,
              const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	vk_rc rc;

	va_start(ap, types);
	rc = prepare_bind(db, sql, types, ap, &st);
	va_end(ap);
	if (rc != VK_OK)
		return vk_store_error(db, what, err);
	rc = step_done(db, st, what, err, changes);
	sqlite3_finalize(st);
	return rc;
}

vk_rc
vk_store_exec_kept(sqlite3 *db, sqlite3_stmt **kept, const char *what, char err[VK_ERRLEN],
                   int *changes, const char *sql, const char *types, ...)
{
	va_list ap;
	vk_rc rc;
	int bound;

	if (*kept == NULL &&
	    sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, kept, NULL) != SQLITE_OK) {
		sqlite3_finalize(*kept);
		*kept = NULL;
		return vk_store_error(db, what, err);
	}
	va_start(ap, types);
	bound = vk_store_vbind(*kept, types, ap);
	va_end(ap);
	rc = bound == SQLITE_OK ? step_done(db, *kept, what, err, changes)
	                        : vk_store_error(db, what, err);
	/* the next call binds anew: nothing bound outlives the caller's values */
	sqlite3_reset(*kept);
	sqlite3_clear_bindings(*kept);
	return rc;
}

vk_rc
vk_store_query_int(sqlite3 *db, const char *what, char err[VK_ERRLEN], int64_t *out,
                   const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	vk_rc rc;
	int step;

	*out = 0;
	va_start(ap, types);
	rc = prepare_bind(db, sql, types, ap, &st);
	va_end(ap);
	if (rc != VK_OK)
		return vk_store_error(db, what, err);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	else if (step != SQLITE_DONE)
		rc = vk_store_error(db, what, err);
	sqlite3_finalize(st);
	return rc;
}

vk_rc
vk_store_query_text(sqlite3 *db, const char *what, char err[VK_ERRLEN], char **out, const char *sql,
                    const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	vk_rc rc;
	int step;

	*out = NULL;
	va_start(ap, types);
	rc = prepare_bind(db, sql, types, ap, &st);
	va_end(ap);
	if (rc != VK_OK)
		return vk_store_error(db, what, err);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL &&
	    (*out = strdup((const char *)sqlite3_column_text(st, 0))) == NULL) {
		vk_seterr(err, "out of memory");
		rc = VK_ERR_NOMEM;
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = vk_store_error(db, what, err);
	}
	sqlite3_finalize(st);
	return rc;
}

int
vk_store_use_due(int64_t last_used_at, int64_t now, int64_t interval)
{
	return last_used_at == 0 || last_used_at <= now - interval;
}

vk_rc
vk_store_note_use(sqlite3 *db, const char *key_id, const char *machine_id, const char *service,
                  const char *user, const char *rhost, int64_t now, int64_t interval,
                  char err[VK_ERRLEN])
{
	char clean_service[VK_TEXT_FIELD], clean_rhost[VK_TEXT_FIELD];
	int changes = 0;
	vk_rc rc;

	/* what PAM reports is stored only as printable text */
	vk_text_clean(service, clean_service, sizeof clean_service);
	if (rhost != NULL)
		vk_text_clean(rhost, clean_rhost, sizeof clean_rhost);
	rc = vk_store_exec(db, "cannot record the key's last use", err, &changes,
	                   "UPDATE keys SET last_used_at = ?2, last_used_service = ?3,"
	                   " last_used_user = ?4, last_used_rhost = ?5, last_used_machine = ?7"
	                   " WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?2 - ?6)",
	                   "titttit", key_id, now, clean_service, user,
	                   rhost != NULL ? clean_rhost : NULL, interval, machine_id);
	/*
	 * Empty the log again, as keyadm does after its changes: every process
	 * that opens an idle store reads the whole log to rebuild its index,
	 * so a log left to grow by logins would slow every later login. Without
	 * a busy handler the checkpoint gives up at once when another login or
	 * a writer is in the way (the next one empties the log), so the UPDATE
	 * above stays the only wait, within the busy timeout (SPEC section 4).
	 */
	if (rc == VK_OK && changes > 0) {
		sqlite3_busy_handler(db, NULL, NULL);
		vk_store_checkpoint(db, 1);
	}
	return rc;
}

/*
 * This host's binding: a keyed BLAKE2b-128 of /etc/machine-id (which
 * machine-id(5) asks to keep confidential), as 32 hex digits. A store
 * records the binding of the host that recorded its machine, so that a
 * copy of the store on another host does not name that host's machine.
 */
#define MACHINE_ID_FILE "/etc/machine-id"
#define BINDING_HEX     32

static vk_rc
host_binding(char out[BINDING_HEX + 1], char err[VK_ERRLEN])
{
	static const unsigned char key[] = "viamkey host binding v1";
	unsigned char buf[64], hash[BINDING_HEX / 2];
	ssize_t n = -1;
	int fd = open(MACHINE_ID_FILE, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	if (n >= 0)
		buf[n] = '\0';
	if (n != 32 || strspn((const char *)buf, "0123456789abcdef") != 32) {
		vk_seterr(err, "this host has no readable " MACHINE_ID_FILE);
		return VK_ERR_NOTFOUND;
	}
	crypto_generichash(hash, sizeof hash, buf, (size_t)n, key, sizeof key - 1);
	sodium_bin2hex(out, BINDING_HEX + 1, hash, sizeof hash);
	return VK_OK;
}

vk_rc
vk_store_host_machine(sqlite3 *db, const char *configured, char out[VK_UUID_STRLEN + 1],
                      char err[VK_ERRLEN])
{
	char here[BINDING_HEX + 1], v[VK_UUID_STRLEN + 1] = "";
	sqlite3_stmt *st = NULL;
	vk_rc rc = VK_ERR_NOTFOUND;
	int step;

	out[0] = '\0';
	if (configured != NULL) {
		snprintf(out, VK_UUID_STRLEN + 1, "%s", configured);
		return VK_OK;
	}
	/* one statement for both rows: SQLite prepares a self-join of meta at twice the cost */
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_bind_text(st, 1, "host_machine_id", -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = vk_store_error(db, "cannot read the host machine", err);
		goto out;
	}
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		int valid = id != NULL && vk_uuid_valid(id);
		const char *bound = NULL;

		if (valid)
			memcpy(v, id, VK_UUID_STRLEN + 1);
		if (sqlite3_reset(st) != SQLITE_OK ||
		    sqlite3_bind_text(st, 1, "host_binding", -1, SQLITE_STATIC) != SQLITE_OK ||
		    ((step = sqlite3_step(st)) != SQLITE_ROW && step != SQLITE_DONE)) {
			rc = vk_store_error(db, "cannot read the host machine", err);
			goto out;
		}
		if (step == SQLITE_ROW)
			bound = (const char *)sqlite3_column_text(st, 0);
		if (!valid) {
			vk_seterr(err, "the store's host machine ID is malformed");
			rc = VK_ERR_STORE;
		} else if (bound == NULL || host_binding(here, err) != VK_OK ||
		           strcmp(bound, here) != 0) {
			vk_seterr(
			    err,
			    "the store's machine %s was recorded on another host; set [machine] id"
			    " in the config",
			    v);
		} else {
			memcpy(out, v, VK_UUID_STRLEN + 1);
			rc = VK_OK;
		}
	} else if (step == SQLITE_DONE) {
		vk_seterr(err, "no machine ID: set [machine] id in the config or run keyadm init"
		               " with --machine");
	} else {
		rc = vk_store_error(db, "cannot read the host machine", err);
	}
out:
	sqlite3_finalize(st);
	return rc;
}

vk_rc
vk_store_set_host_machine(sqlite3 *db, const char *machine_id, char err[VK_ERRLEN])
{
	char here[BINDING_HEX + 1];
	vk_rc rc;

	if ((rc = host_binding(here, err)) != VK_OK) {
		vk_seterr(err,
		          "cannot record this host's machine: " MACHINE_ID_FILE
		          " is missing or not a machine ID; give the host one"
		          " (systemd-machine-id-setup, or dbus-uuidgen --ensure=" MACHINE_ID_FILE
		          "), or set [machine] id instead");
		return VK_ERR_CONFLICT;
	}
	return vk_store_exec(db, "cannot record the host machine", err, NULL,
	                     "INSERT INTO meta (name, value) VALUES ('host_machine_id', ?1),"
	                     " ('host_binding', ?2)"
	                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                     "tt", machine_id, here);
}

static void
preview_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	unsigned char id[VK_KEY_ID_BYTES];
	char preview[VK_PREVIEW_LEN + 1];
	const char *s = (const char *)sqlite3_value_text(argv[0]);

	(void)argc;
	if (s == NULL || vk_uuid_parse(s, id) != 0) {
		sqlite3_result_null(ctx);
		return;
	}
	vk_token_preview(id, preview);
	sqlite3_result_text(ctx, preview, -1, SQLITE_TRANSIENT);
}

vk_rc
vk_store_register_functions(sqlite3 *db, char err[VK_ERRLEN])
{
	if (sqlite3_create_function(db, "vk_preview", 1,
	                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                            preview_fn, NULL, NULL) != SQLITE_OK)
		return vk_store_error(db, "cannot register SQL functions", err);
	return VK_OK;
}
