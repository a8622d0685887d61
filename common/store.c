/*
 * store.c - opening, creating and migrating the SQLite key store.
 *
 * Security rules for this file:
 *  1. A store MUST NOT be opened unless its file and directory are owned by
 *     root or the euid and not writable by group or others; a symbolic link
 *     is refused (SQLITE_OPEN_NOFOLLOW).
 *  2. Only VK_OPEN_INIT creates anything: directory 0700, file 0600.
 *  3. A store whose schema is newer than VK_SCHEMA_VERSION, that is not a
 *     viamkey store, or whose size disagrees with its header is refused.
 *  4. SQL is static text with bound parameters only.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* migrations[v] takes a store from schema v to v + 1 */
static const char *const migrations[VK_SCHEMA_VERSION] = {schema_v1};

static vk_rc
check_owner_mode(const char *what, const char *path, const struct stat *st, char err[VK_ERRLEN])
{
	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		vk_seterr(err, "%s %s is owned by uid %u; it must be owned by root (chown root %s)",
		          what, path, (unsigned)st->st_uid, path);
		return VK_ERR_STORE;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		vk_seterr(err, "%s %s is writable by group or others; run chmod go-w %s", what,
		          path, path);
		return VK_ERR_STORE;
	}
	return VK_OK;
}

vk_rc
vk_store_check_perms(const char *path, char err[VK_ERRLEN])
{
	struct stat st;
	char *copy, *dir;
	vk_rc rc;

	if (lstat(path, &st) != 0) {
		vk_seterr(err, "store %s: %s", path, strerror(errno));
		return errno == ENOENT ? VK_ERR_NOTFOUND : VK_ERR_STORE;
	}
	if (!S_ISREG(st.st_mode)) {
		vk_seterr(err, "store %s is not a regular file", path);
		return VK_ERR_STORE;
	}
	if ((rc = check_owner_mode("store", path, &st, err)) != VK_OK)
		return rc;
	if ((copy = strdup(path)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	dir = dirname(copy);
	if (stat(dir, &st) != 0) {
		vk_seterr(err, "store directory %s: %s", dir, strerror(errno));
		rc = VK_ERR_STORE;
	} else {
		rc = check_owner_mode("store directory", dir, &st, err);
	}
	free(copy);
	return rc;
}

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
 */
static vk_rc
read_header(sqlite3 *db, const char *path, struct header *h, char err[VK_ERRLEN])
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
	if (own_txn)
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
	if (h->user_version < VK_SCHEMA_VERSION && mode != VK_OPEN_INIT) {
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
	if ((rc = read_header(db, path, &h, err)) != VK_OK ||
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
 * Waits for a lock in steps of BUSY_STEP_US, up to the busy timeout (at
 * least that long: each step sleeps at least its length). SQLite's own
 * handler sleeps 1, 2, 5, 10, 15, 20, 25 ms... between tries, so a login
 * that meets a keyadm commit would wait far longer than the commit's few
 * milliseconds under the exclusive lock.
 */
#define BUSY_STEP_US 250

static int
busy_wait(void *arg, int count)
{
	int64_t timeout_us = (int64_t)(intptr_t)arg * 1000;
	struct timespec step = {0, BUSY_STEP_US * 1000};

	if ((int64_t)count * BUSY_STEP_US >= timeout_us)
		return 0;
	nanosleep(&step, NULL);
	return 1;
}

/* Creates the directory (0700) and an empty file (0600) for a new store. */
static vk_rc
create_files(const char *path, char err[VK_ERRLEN])
{
	char *copy = strdup(path), *dir;
	vk_rc rc = VK_OK;
	int fd;

	if (copy == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	dir = dirname(copy);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		vk_seterr(err, "cannot create store directory %s: %s", dir, strerror(errno));
		rc = VK_ERR_IO;
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST) {
		vk_seterr(err, "cannot create store %s: %s", path, strerror(errno));
		rc = VK_ERR_IO;
		goto out;
	}
	if (fd >= 0)
		close(fd);
out:
	free(copy);
	return rc;
}

vk_rc
vk_store_open(const char *path, enum vk_open_mode mode, int busy_timeout_ms, sqlite3 **out,
              char err[VK_ERRLEN])
{
	sqlite3 *db = NULL;
	struct header h;
	vk_rc rc;

	*out = NULL;
	if (mode == VK_OPEN_INIT && (rc = create_files(path, err)) != VK_OK)
		return rc;
	if ((rc = vk_store_check_perms(path, err)) != VK_OK) {
		if (rc == VK_ERR_NOTFOUND) {
			vk_seterr(err, "store %s does not exist; create it with keyadm init", path);
			rc = VK_ERR_STORE;
		}
		return rc;
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
	    SQLITE_OK) {
		vk_seterr(err, "cannot open store %s: %s", path,
		          db ? sqlite3_errmsg(db) : "out of memory");
		rc = db ? VK_ERR_STORE : VK_ERR_NOMEM;
		goto fail;
	}
	sqlite3_busy_handler(db, busy_wait,
	                     (void *)(intptr_t)(busy_timeout_ms > 0 ? busy_timeout_ms : 0));
	sqlite3_extended_result_codes(db, 0);
	/*
	 * WAL: a login reads while keyadm writes, never waiting for it. The log
	 * and its index stay on disk between uses (cheaper opens, and a store
	 * on a read-only mount stays readable) but are emptied after each
	 * checkpoint, so at rest keys.db holds everything.
	 */
	(void)sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &(int){1});
	if ((rc = exec(db, "PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = 0", path, err)) !=
	        VK_OK ||
	    (rc = read_header(db, path, &h, err)) != VK_OK ||
	    (rc = validate_header(path, &h, mode, err)) != VK_OK)
		goto fail;
	if (mode == VK_OPEN_INIT && h.user_version < VK_SCHEMA_VERSION &&
	    (rc = migrate(db, path, err)) != VK_OK)
		goto fail;
	if (mode == VK_OPEN_INIT && !h.wal &&
	    (rc = exec(db, "PRAGMA journal_mode = WAL", "cannot switch the store to WAL", err)) !=
	        VK_OK)
		goto fail;
	*out = db;
	return VK_OK;
fail:
	sqlite3_close(db);
	return rc;
}

vk_rc
vk_store_revalidate(sqlite3 *db, const char *path, enum vk_open_mode mode, char err[VK_ERRLEN])
{
	struct header h;
	int moved = 1;
	vk_rc rc;

	if ((rc = vk_store_check_perms(path, err)) != VK_OK) {
		if (rc == VK_ERR_NOTFOUND) {
			vk_seterr(err, "store %s does not exist; create it with keyadm init", path);
			rc = VK_ERR_STORE;
		}
		return rc;
	}
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK ||
	    moved) {
		vk_seterr(err, "store %s was moved or replaced since it was opened", path);
		return VK_ERR_STORE;
	}
	if ((rc = read_header(db, path, &h, err)) != VK_OK)
		return rc;
	return validate_header(path, &h, mode, err);
}

static vk_rc
prepare_bind(sqlite3 *db, const char *sql, const char *types, va_list ap, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;
	int i = 1, ok, used;

	*out = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return VK_ERR_STORE;
	/* a statement may use fewer parameters than its caller passes */
	used = sqlite3_bind_parameter_count(st);
	for (const char *t = types; *t != '\0'; t++, i++) {
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
		if (ok != SQLITE_OK) {
			sqlite3_finalize(st);
			return VK_ERR_STORE;
		}
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

vk_rc
vk_store_exec(sqlite3 *db, const char *what, char err[VK_ERRLEN], int *changes, const char *sql,
              const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	vk_rc rc;
	int step;

	va_start(ap, types);
	rc = prepare_bind(db, sql, types, ap, &st);
	va_end(ap);
	if (rc != VK_OK)
		return vk_store_error(db, what, err);
	while ((step = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (step != SQLITE_DONE)
		rc = vk_store_error(db, what, err);
	else if (changes != NULL)
		*changes = sqlite3_changes(db);
	sqlite3_finalize(st);
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
vk_store_event(sqlite3 *db, const char *actor, const char *action, const char *key_id,
               const char *detail, char err[VK_ERRLEN])
{
	return vk_store_exec(db, "cannot record the audit event", err, NULL,
	                     "INSERT INTO events (at, actor, action, key_id, detail)"
	                     " VALUES (unixepoch(), ?1, ?2, ?3, ?4)",
	                     "tttt", actor, action, key_id, detail);
}

vk_rc
vk_store_note_use(sqlite3 *db, const char *key_id, const char *service, const char *user,
                  const char *rhost, int64_t now, int64_t interval, char err[VK_ERRLEN])
{
	int64_t due;
	vk_rc rc;

	/*
	 * Decide with a read first: the UPDATE takes the write lock even when it
	 * changes nothing, and would wait behind a keyadm write for it.
	 */
	rc = vk_store_query_int(db, "cannot read the key's last use", err, &due,
	                        "SELECT 1 FROM keys WHERE id = ?1"
	                        " AND (last_used_at IS NULL OR last_used_at <= ?2 - ?3)",
	                        "tii", key_id, now, interval);
	if (rc != VK_OK || !due)
		return rc;
	return vk_store_exec(db, "cannot record the key's last use", err, NULL,
	                     "UPDATE keys SET last_used_at = ?2, last_used_service = ?3,"
	                     " last_used_user = ?4, last_used_rhost = ?5 WHERE id = ?1"
	                     " AND (last_used_at IS NULL OR last_used_at <= ?2 - ?6)",
	                     "tittti", key_id, now, service, user, rhost, interval);
}

vk_rc
vk_store_host_machine(sqlite3 *db, const char *configured, char out[VK_UUID_STRLEN + 1],
                      char err[VK_ERRLEN])
{
	sqlite3_stmt *st = NULL;
	vk_rc rc = VK_ERR_NOTFOUND;
	int step;

	out[0] = '\0';
	if (configured != NULL) {
		snprintf(out, VK_UUID_STRLEN + 1, "%s", configured);
		return VK_OK;
	}
	if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = 'host_machine_id'", -1, &st,
	                       NULL) != SQLITE_OK)
		return vk_store_error(db, "cannot read the host machine", err);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (v != NULL && vk_uuid_valid(v)) {
			memcpy(out, v, VK_UUID_STRLEN + 1);
			rc = VK_OK;
		} else {
			vk_seterr(err, "the store's host machine ID is malformed");
			rc = VK_ERR_STORE;
		}
	} else if (step == SQLITE_DONE) {
		vk_seterr(err, "no machine ID: set [machine] id in the config or run keyadm init"
		               " with --machine");
	} else {
		rc = vk_store_error(db, "cannot read the host machine", err);
	}
	sqlite3_finalize(st);
	return rc;
}

vk_rc
vk_store_set_host_machine(sqlite3 *db, const char *machine_id, char err[VK_ERRLEN])
{
	return vk_store_exec(db, "cannot record the host machine", err, NULL,
	                     "INSERT INTO meta (name, value) VALUES ('host_machine_id', ?1)"
	                     " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                     "t", machine_id);
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
