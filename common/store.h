/*
 * store.h - the SQLite key store.
 *
 * Schema (PRAGMA user_version = VK_SCHEMA_VERSION, foreign keys on):
 *   organizations(id, name, created_at)
 *   locations(id, org_id -> organizations, name, created_at)
 *   machines(id, location_id -> locations, name, created_at)
 *   keys(id, name, created_at, created_by, disabled, protected, expires_at,
 *        last_used_at, last_used_service, last_used_user, last_used_rhost,
 *        last_used_machine)
 *   key_users(key_id -> keys, user)
 *   grants(key_id -> keys, role, resource_type, resource_id)
 *   secrets(id, key_id -> keys, alg, salt, verifier, created_at, expires_at)
 *   events(id, at, kind, actor, effective, action, key_id, detail, machine_id,
 *          user, service, rhost, decision, reason, uid) -- admin, login and
 *          session events (SPEC §11; event.h)
 *   meta(name, value)     -- "host_machine_id" and "host_binding": this host's machine;
 *                            the fleet's role, revision and heartbeat (fleet.h)
 *   keys.break_glass; sync_outbox, sync_published, sync_pages, sync_dirty,
 *   sync_machines (the authority); sync_held, sync_entries, sync_heads (a
 *   replica): the fleet, SPEC §8 (fleet.h, record.h, scope.h); join_tokens,
 *   machine_identities, bus_revocations (the authority): bus identities,
 *   SPEC §9 (busid.h); a deleted machine's identity is revoked by a trigger
 * Times are integer seconds since the epoch. Rows of keys' children go with
 * the key (ON DELETE CASCADE); resources with children or grants cannot be
 * deleted (the caller checks and says why).
 *
 * vk_store_open() checks the store's directory on the descriptor it opened,
 * and the file and side files (-wal, -shm, -journal) with fstatat() through
 * it, without following links, then opens the store with SQLite and checks
 * that SQLite's file is the one checked; on a read-only file system it opens
 * it read-only. It returns a connection or an error naming the path and,
 * for permission problems, the command that fixes them. The caller closes
 * it with sqlite3_close(). A VK_OPEN_LOGIN connection is returned inside
 * the read transaction in which the open read the store's header, so that
 * a login's reads see the snapshot whose schema was checked and begin no
 * transaction of their own; the caller ends it (COMMIT) before it writes.
 */
#ifndef VK_STORE_H
#define VK_STORE_H

#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "vk.h"

#define VK_SCHEMA_VERSION 6
/*
 * The oldest schema a login reads: what the decision needs has not changed
 * since, so that a login works from the moment a package upgrade replaces
 * the module to the moment the store is migrated (SPEC §8, rule 11).
 */
#define VK_SCHEMA_LOGIN 3

enum vk_open_mode {
	VK_OPEN_LOGIN, /* existing, schema VK_SCHEMA_LOGIN or later; the module and `check`;
	                  returned inside the read transaction that read its header */
	VK_OPEN_ADMIN, /* existing, current schema; keyadm's other commands */
	VK_OPEN_INIT,  /* create directory (0700) and file (0600) if missing, migrate */
};

vk_rc vk_store_open(const char *path, enum vk_open_mode mode, int busy_timeout_ms, sqlite3 **out,
                    char err[VK_ERRLEN]);

/*
 * A stamp: the store's directory, file, -wal and -journal as the checks of
 * an open saw them, and when. (The -shm, SQLite's index of the log, which
 * readers rewrite, is checked but not stamped.)
 */
struct vk_file_stamp {
	int found;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct vk_store_stamp {
	struct timespec at;   /* CLOCK_REALTIME, read before the files were looked at */
	struct timespec mono; /* CLOCK_MONOTONIC, read with it */
	dev_t dir_dev;
	ino_t dir_ino;
	struct vk_file_stamp file[3]; /* the store, its -wal, its -journal */
};

/* vk_store_open(), which also stamps the files it checked before SQLite opened them. */
vk_rc vk_store_open_stamped(const char *path, enum vk_open_mode mode, int busy_timeout_ms,
                            sqlite3 **out, struct vk_store_stamp *stamp, char err[VK_ERRLEN]);

/*
 * The checks vk_store_open() makes of the directory, the file and the side
 * files, without opening the store: their stamp, or the error the open
 * would report.
 */
vk_rc vk_store_stamp(const char *path, struct vk_store_stamp *stamp, char err[VK_ERRLEN]);

/*
 * 1 when nothing has changed the store between the stamps `then` and
 * `now`: the same directory, the same files present (by device and inode),
 * each with the same size and modification time; none of them modified in
 * the 50 ms before `then`, or the 3 s before it for a time in whole seconds
 * (a change within the clock's tick or the file system's granularity of
 * the one before may carry the same time); and the real-time clock, which
 * the kernel stamps changes with, not gone back between them by more than
 * 10 ms next to the monotonic clock. 0 otherwise: the caller reads the
 * store.
 */
int vk_store_unchanged(const struct vk_store_stamp *then, const struct vk_store_stamp *now);

/*
 * Folds the write-ahead log into the store file without blocking readers
 * (SQLITE_CHECKPOINT_FULL: waits, up to the busy timeout, only for readers
 * of an older state, while new readers read the store file), so that at
 * rest the file holds every committed change; `truncate` then also empties
 * the log, so that the next first opener has no log to recover. Best
 * effort: a failure leaves the log for the next checkpoint.
 */
void vk_store_checkpoint(sqlite3 *db, int truncate);

/*
 * The write-ahead log to the disk now, with what every commit before held,
 * those made with synchronous = NORMAL too: 0, or -1.
 */
int vk_store_sync_log(sqlite3 *db);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
vk_rc vk_store_begin(sqlite3 *db, char err[VK_ERRLEN]);
vk_rc vk_store_commit(sqlite3 *db, char err[VK_ERRLEN]);
void vk_store_rollback(sqlite3 *db);

/*
 * Maps the last SQLite error on db to a vk_rc and a message prefixed with
 * `what`: constraint failures are VK_ERR_CONFLICT, full or read-only disks
 * and lock timeouts VK_ERR_IO, corruption VK_ERR_STORE.
 */
vk_rc vk_store_error(sqlite3 *db, const char *what, char err[VK_ERRLEN]);

/*
 * Prepares sql, binds parameters ?1.. from the varargs as described by
 * `types` (one letter each: 't' const char * or NULL, 'i' int64_t,
 * 'b' const void * followed by size_t), and steps it to completion.
 * Returns the number of changed rows in *changes when changes != NULL.
 * On failure the message is prefixed with `what`.
 */
vk_rc vk_store_exec(sqlite3 *db, const char *what, char err[VK_ERRLEN], int *changes,
                    const char *sql, const char *types, ...);

/*
 * vk_store_exec() through a statement the caller keeps in *kept: prepared
 * at the first call (*kept NULL), bound anew and stepped at each, reset
 * after it. For a statement run many times on one connection (a batch);
 * the caller finalizes *kept before it closes db.
 */
vk_rc vk_store_exec_kept(sqlite3 *db, sqlite3_stmt **kept, const char *what, char err[VK_ERRLEN],
                         int *changes, const char *sql, const char *types, ...);

/* Binds ?1.. of st from ap as vk_store_exec() does; an SQLite result code. */
int vk_store_vbind(sqlite3_stmt *st, const char *types, va_list ap);

/* Prepares and binds like vk_store_exec(); the caller steps and finalizes *st. */
vk_rc vk_store_prepare(sqlite3 *db, const char *what, char err[VK_ERRLEN], sqlite3_stmt **st,
                       const char *sql, const char *types, ...);
vk_rc vk_store_vprepare(sqlite3 *db, const char *what, char err[VK_ERRLEN], sqlite3_stmt **st,
                        const char *sql, const char *types, va_list ap);

/*
 * Like vk_store_exec() for a query whose first row's first column is an
 * integer; *out is 0 when there is no row.
 */
vk_rc vk_store_query_int(sqlite3 *db, const char *what, char err[VK_ERRLEN], int64_t *out,
                         const char *sql, const char *types, ...);

/* The same for text: *out malloc()ed, or NULL when there is no row or it is NULL. */
vk_rc vk_store_query_text(sqlite3 *db, const char *what, char err[VK_ERRLEN], char **out,
                          const char *sql, const char *types, ...);

/*
 * Whether a login at `now` on a key last used at last_used_at (0: never)
 * is to be recorded: `interval` seconds or more have passed since.
 */
int vk_store_use_due(int64_t last_used_at, int64_t now, int64_t interval);

/*
 * Records a successful login on key_id (time, PAM service, user, remote
 * host; rhost may be NULL) unless one was recorded less than `interval`
 * seconds before `now`: one UPDATE in its own transaction, bounded by the
 * connection's busy timeout, then, when it recorded, a checkpoint that
 * never waits. The UPDATE takes the write lock even when it changes
 * nothing, so a caller that has read the key's last use calls this only
 * when vk_store_use_due() says so. It is the last use of the connection:
 * it leaves it without a busy handler. The module treats a failure as
 * harmless.
 */
vk_rc vk_store_note_use(sqlite3 *db, const char *key_id, const char *machine_id,
                        const char *service, const char *user, const char *rhost, int64_t now,
                        int64_t interval, char err[VK_ERRLEN]);

/*
 * This host's machine ID: `configured` ([machine] id) when set, else the
 * one `keyadm init` recorded in the store, if it recorded it on this host
 * (the store keeps a keyed hash of /etc/machine-id beside it);
 * VK_ERR_NOTFOUND otherwise. vk_store_set_host_machine() records a machine
 * as this host's, with this host's binding; VK_ERR_CONFLICT when the host
 * has no /etc/machine-id, with an error that names the commands that make one.
 */
vk_rc vk_store_host_machine(sqlite3 *db, const char *configured, char out[VK_UUID_STRLEN + 1],
                            char err[VK_ERRLEN]);
vk_rc vk_store_set_host_machine(sqlite3 *db, const char *machine_id, char err[VK_ERRLEN]);

/*
 * Registers the SQL function vk_preview(id) -> "vk_<key-id part>_…" on db,
 * for listings and searches.
 */
vk_rc vk_store_register_functions(sqlite3 *db, char err[VK_ERRLEN]);

#endif
