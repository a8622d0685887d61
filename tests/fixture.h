/*
 * fixture.h - temporary files and stores for the unit tests of common/.
 *
 * Every helper fails the running cmocka test when a step goes wrong, so a
 * test reads as a list of steps. Strings returned by fx_tmpdir() and
 * fx_join() belong to the caller (free()).
 */
#ifndef VK_FIXTURE_H
#define VK_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <sys/types.h>

#include "authz.h"
#include "keys.h"
#include "tree.h"
#include "txn.h"

#define FX_NOW ((int64_t)1700000000) /* 2023-11-14T22:13:20Z */

/* umask(077), as the store and config rules require, and sodium_init(). */
void fx_init(void);

/*
 * Skips the running test, saying why; under VK_STRICT=1 (scripts/run-tests.sh),
 * where every test must run, fails it instead. A cmocka skip is not a
 * failure of the program, so without this a strict run could not see it.
 */
#define fx_skip(why) fx_skip_at((why), __FILE__, __LINE__)
void fx_skip_at(const char *why, const char *file, int line);

/* 1 when this host has the /etc/machine-id that a store's host record is bound to. */
int fx_have_machine_id(void);

/* A fresh 0700 directory under $TMPDIR (or /tmp); fx_rmtree() removes and frees it. */
char *fx_tmpdir(void);
void fx_rmtree(char *dir);
char *fx_join(const char *dir, const char *name);

/* Creates or replaces path with exactly these bytes and this mode. */
void fx_write(const char *path, mode_t mode, const void *data, size_t len);
void fx_write_str(const char *path, mode_t mode, const char *text);

/*
 * Sets the modification time of the store at path, and of its -wal and
 * -journal where they exist, `seconds` into the past, so that to
 * vk_store_unchanged() the store looks as if nothing had written it
 * lately; or ahead, for a negative value.
 */
void fx_backdate(const char *path, int seconds);

/* A fresh UUIDv4 string; a copy of in with letters in upper case. */
void fx_random_uuid(char out[VK_UUID_STRLEN + 1]);
void fx_uppercase(const char *in, char *out);

/* Runs SQL that must succeed; fx_sql1() binds arg to ?1, as fx_count() does unless arg is NULL. */
void fx_sql(sqlite3 *db, const char *sql);
void fx_sql1(sqlite3 *db, const char *sql, const char *arg);
int64_t fx_count(sqlite3 *db, const char *sql, const char *arg);

/*
 * A store holding two organizations:
 *   org  > loc1 > m1a, m1b
 *        > loc2 > m2
 *   org2 > loc3 > m3
 */
struct fx_store {
	char *dir;
	char *path;
	sqlite3 *db;
	char org[VK_UUID_STRLEN + 1], org2[VK_UUID_STRLEN + 1];
	char loc1[VK_UUID_STRLEN + 1], loc2[VK_UUID_STRLEN + 1], loc3[VK_UUID_STRLEN + 1];
	char m1a[VK_UUID_STRLEN + 1], m1b[VK_UUID_STRLEN + 1], m2[VK_UUID_STRLEN + 1],
	    m3[VK_UUID_STRLEN + 1];
};

/* cmocka group or test setup and teardown; *state is a struct fx_store. */
int fx_store_setup(void **state);
int fx_store_teardown(void **state);

struct fx_key {
	char id[VK_UUID_STRLEN + 1];
	char token[VK_TOKEN_LEN + 1];
};

#define FX_ACTOR "tester"

/*
 * A change made as keyadm makes one: vk_txn_begin() on fx->db with actor
 * FX_ACTOR (no effective user) at `now`; fx_end() commits after success and
 * rolls back after failure, and returns rc.
 */
void fx_begin(struct fx_store *fx, struct vk_txn *t, int64_t now);
vk_rc fx_end(struct vk_txn *t, vk_rc rc);

/* Creates a key in its own transaction at FX_NOW; the spec must be valid. */
void fx_key_spec(struct fx_store *fx, const struct vk_key_spec *spec, struct fx_key *out);
/* A key named "test key" for user "ann", never expiring, with one grant. */
void fx_key(struct fx_store *fx, vk_role role, const char *type, const char *resource_id,
            struct fx_key *out);
/* Adds a grant to an existing key (plain SQL, no event). */
void fx_grant(struct fx_store *fx, const char *key_id, vk_role role, const char *type,
              const char *resource_id);

/* vk_key_rotate() and vk_key_finish_rotation(), each in its own transaction at `now`. */
vk_rc fx_rotate(struct fx_store *fx, const char *key_id, int64_t grace, int64_t now,
                char token[VK_TOKEN_LEN + 1], char err[VK_ERRLEN]);
vk_rc fx_finish(struct fx_store *fx, const char *key_id, int64_t now, char err[VK_ERRLEN]);

/* Where the decision reads: fx->path, never recording last use. */
struct vk_login fx_login(const struct fx_store *fx);
/* The usual login: user ann on m1a over sshd, needing viewer, at FX_NOW + 1. */
struct vk_request fx_request(const struct fx_store *fx, const char *token);

/*
 * PRAGMA data_version of fx->db: it changes when another connection
 * commits, so equal values around a call show that the call wrote nothing.
 */
int64_t fx_data_version(struct fx_store *fx);
/* Fails unless nothing was committed since `before` and fx->db has no transaction open. */
void fx_assert_unchanged(struct fx_store *fx, int64_t before);

/* vk_authorize() with fx_login(), failing the test if it wrote. */
void fx_authorize(struct fx_store *fx, const struct vk_request *req, struct vk_result *res);
/* vk_authorize_recheck() with fx_login(), failing the test if it wrote. */
void fx_recheck(struct fx_store *fx, const char *key_id, const struct vk_request *req,
                struct vk_result *res);
/* The reason given for token in the usual login at `now`. */
vk_reason fx_reason(struct fx_store *fx, const char *token, int64_t now);

#endif
