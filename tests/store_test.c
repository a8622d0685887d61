/*
 * store_test.c - opening, creating and querying the store (store.h).
 */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "duration.h"
#include "fixture.h"
#include "store.h"
#include "token.h"
#include "txn.h"

struct st_fx {
	char *dir;
	char *sub;  /* the store's directory, not created by setup */
	char *path; /* sub/keys.db */
	char err[VK_ERRLEN];
};

static int
setup(void **state)
{
	struct st_fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	f->dir = fx_tmpdir();
	f->sub = fx_join(f->dir, "store");
	f->path = fx_join(f->sub, "keys.db");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct st_fx *f = *state;

	fx_rmtree(f->dir);
	free(f->sub);
	free(f->path);
	free(f);
	return 0;
}

static sqlite3 *
open_ok(struct st_fx *f, enum vk_open_mode mode)
{
	sqlite3 *db;

	if (vk_store_open(f->path, mode, 100, &db, f->err) != VK_OK)
		fail_msg("%s", f->err);
	assert_non_null(db);
	return db;
}

static void
close_ok(sqlite3 *db)
{
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* A new, empty store at f->path. */
static void
make_store(struct st_fx *f)
{
	close_ok(open_ok(f, VK_OPEN_INIT));
}

static void
expect_refused(struct st_fx *f, enum vk_open_mode mode, const char *needle)
{
	sqlite3 *db = (sqlite3 *)f; /* poisoned: a refusal must reset it to NULL */

	f->err[0] = '\0';
	assert_int_equal(vk_store_open(f->path, mode, 100, &db, f->err), VK_ERR_STORE);
	assert_null(db);
	if (strstr(f->err, needle) == NULL)
		fail_msg("\"%s\" not in \"%s\"", needle, f->err);
}

/* Like expect_refused(), for refusals that need not be VK_ERR_STORE. */
static void
expect_refused_rc(struct st_fx *f, enum vk_open_mode mode, const char *needle)
{
	sqlite3 *db = (sqlite3 *)f;

	f->err[0] = '\0';
	assert_int_not_equal(vk_store_open(f->path, mode, 100, &db, f->err), VK_OK);
	assert_null(db);
	if (strstr(f->err, needle) == NULL)
		fail_msg("\"%s\" not in \"%s\"", needle, f->err);
}

/* Runs sql on path over a plain SQLite connection, as a foreign program would. */
static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	fx_sql(db, sql);
	close_ok(db);
}

static int64_t
query(sqlite3 *db, const char *sql)
{
	char err[VK_ERRLEN];
	int64_t n;

	if (vk_store_query_int(db, "query", err, &n, sql, "") != VK_OK)
		fail_msg("%s", err);
	return n;
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return st.st_mode;
}

static void
test_init_creates_private_dir_and_file(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db;

	umask(0); /* the modes must not depend on the caller's umask */
	db = open_ok(f, VK_OPEN_INIT);
	umask(077);
	assert_int_equal(mode_of(f->sub), S_IFDIR | 0700);
	assert_int_equal(mode_of(f->path), S_IFREG | 0600);
	assert_int_equal(query(db, "SELECT user_version FROM pragma_user_version"),
	                 VK_SCHEMA_VERSION);
	assert_int_equal(query(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(query(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND"
	                           " name IN ('organizations', 'locations', 'machines', 'keys',"
	                           " 'key_users', 'grants', 'secrets', 'events', 'meta')"),
	                 9);
	close_ok(db);
}

static void
test_init_again_keeps_data(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);

	fx_sql(db, "INSERT INTO organizations VALUES ('3f2504e0-4f89-41d3-9a0c-0305e82c3301',"
	           " 'acme', 1)");
	close_ok(db);
	for (int mode = VK_OPEN_LOGIN; mode <= VK_OPEN_INIT; mode++) {
		db = open_ok(f, (enum vk_open_mode)mode);
		assert_int_equal(query(db, "SELECT count(*) FROM organizations"), 1);
		close_ok(db);
	}
}

static void
test_missing_store_refused(void **state)
{
	struct st_fx *f = *state;

	/* no directory either: the message names it (it no longer says "keyadm init") */
	expect_refused(f, VK_OPEN_LOGIN, f->sub);
	expect_refused(f, VK_OPEN_ADMIN, f->sub);
	assert_int_equal(access(f->sub, F_OK), -1); /* only init creates anything */
	/* vk_store_check_perms() is gone: vk_store_open() checks by descriptor */
	assert_int_equal(mkdir(f->sub, 0700), 0);
	expect_refused(f, VK_OPEN_LOGIN, "does not exist");
	expect_refused(f, VK_OPEN_ADMIN, "keyadm init");
	assert_int_equal(access(f->path, F_OK), -1);
}

static void
test_writable_file_or_directory_refused(void **state)
{
	static const mode_t bad_file[] = {0606, 0620, 0666};
	static const mode_t bad_dir[] = {0770, 0707, 0777};
	struct st_fx *f = *state;

	make_store(f);
	for (size_t i = 0; i < sizeof bad_file / sizeof bad_file[0]; i++) {
		assert_int_equal(chmod(f->path, bad_file[i]), 0);
		expect_refused(f, VK_OPEN_LOGIN, "chmod 600");
		expect_refused(f, VK_OPEN_ADMIN, "readable or writable by group or others");
		/* anyone may have changed a file others could write: init refuses it too */
		expect_refused(f, VK_OPEN_INIT, "chmod 600");
		assert_int_equal(mode_of(f->path), S_IFREG | bad_file[i]);
	}
	assert_int_equal(chmod(f->path, 0600), 0);
	for (size_t i = 0; i < sizeof bad_dir / sizeof bad_dir[0]; i++) {
		assert_int_equal(chmod(f->sub, bad_dir[i]), 0);
		expect_refused(f, VK_OPEN_LOGIN, "chmod go-w");
		expect_refused(f, VK_OPEN_ADMIN, "store directory");
		expect_refused(f, VK_OPEN_INIT, "writable by group or others");
		assert_int_equal(mode_of(f->sub), S_IFDIR | bad_dir[i]); /* init leaves it alone */
	}
	assert_int_equal(chmod(f->sub, 0755), 0); /* readable is fine */
	close_ok(open_ok(f, VK_OPEN_LOGIN));
}

/* Group or others may not even read the store: it holds verifiers and the audit trail. */
static void
test_readable_file_refused(void **state)
{
	static const mode_t bad_file[] = {0644, 0640, 0604, 0440};
	static const enum vk_open_mode modes[] = {VK_OPEN_LOGIN, VK_OPEN_ADMIN};
	struct st_fx *f = *state;

	make_store(f);
	for (size_t i = 0; i < sizeof bad_file / sizeof bad_file[0]; i++) {
		assert_int_equal(chmod(f->path, bad_file[i]), 0);
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			expect_refused(f, modes[m], "chmod 600");
			expect_refused(f, modes[m], f->path);
		}
		assert_int_equal(mode_of(f->path), S_IFREG | bad_file[i]); /* left as it was */
	}
	assert_int_equal(chmod(f->path, 0600), 0);
	close_ok(open_ok(f, VK_OPEN_LOGIN));
	close_ok(open_ok(f, VK_OPEN_ADMIN));
}

static const char *const side_suffixes[] = {"-wal", "-shm", "-journal"};

/* f->path + suffix, which the caller frees. */
static char *
side_path(const struct st_fx *f, const char *suffix)
{
	char *p;

	assert_true(asprintf(&p, "%s%s", f->path, suffix) > 0);
	return p;
}

/* Makes sure the side file exists (empty if it did not), with this mode. */
static void
touch_side(const struct st_fx *f, const char *suffix, mode_t mode)
{
	char *p = side_path(f, suffix);

	if (access(p, F_OK) != 0)
		fx_write(p, 0600, "", 0);
	assert_int_equal(chmod(p, mode), 0);
	free(p);
}

static void
test_side_file_modes_checked(void **state)
{
	static const mode_t bad[] = {0644, 0640, 0660, 0604, 0602};
	static const enum vk_open_mode modes[] = {VK_OPEN_LOGIN, VK_OPEN_ADMIN};
	struct st_fx *f = *state;

	make_store(f);
	for (size_t s = 0; s < sizeof side_suffixes / sizeof side_suffixes[0]; s++) {
		char *p = side_path(f, side_suffixes[s]);

		for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			touch_side(f, side_suffixes[s], bad[i]);
			for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
				expect_refused(f, modes[m], "chmod 600");
				expect_refused(f, modes[m], p); /* names the side file */
			}
			assert_int_equal(mode_of(p), S_IFREG | bad[i]);
		}
		touch_side(f, side_suffixes[s], 0600);
		close_ok(open_ok(f, VK_OPEN_LOGIN));
		free(p);
	}
}

static void
test_side_file_symlink_refused(void **state)
{
	static const enum vk_open_mode modes[] = {VK_OPEN_LOGIN, VK_OPEN_ADMIN, VK_OPEN_INIT};
	struct st_fx *f = *state;
	char *target = fx_join(f->dir, "elsewhere");

	make_store(f);
	fx_write(target, 0600, "", 0);
	for (size_t s = 0; s < sizeof side_suffixes / sizeof side_suffixes[0]; s++) {
		char *p = side_path(f, side_suffixes[s]);

		(void)unlink(p);
		assert_int_equal(symlink(target, p), 0);
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
			expect_refused(f, modes[m], "symbolic link");
		assert_int_equal(unlink(p), 0);
		/* a dangling link is no better */
		assert_int_equal(symlink("/nonexistent/viamkey-test", p), 0);
		expect_refused(f, VK_OPEN_LOGIN, "symbolic link");
		assert_int_equal(unlink(p), 0);
		free(p);
	}
	assert_int_equal(mode_of(target), S_IFREG | 0600);
	close_ok(open_ok(f, VK_OPEN_LOGIN));
	free(target);
}

static void
test_side_file_not_regular_refused(void **state)
{
	struct st_fx *f = *state;
	char *p = side_path(f, "-shm");

	make_store(f);
	(void)unlink(p);
	assert_int_equal(mkdir(p, 0700), 0);
	expect_refused(f, VK_OPEN_LOGIN, "not a regular file");
	expect_refused(f, VK_OPEN_INIT, "not a regular file");
	assert_int_equal(rmdir(p), 0);
	free(p);
}

static void
test_init_fixes_modes(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db;

	db = open_ok(f, VK_OPEN_INIT);
	fx_sql(db, "INSERT INTO meta VALUES ('kept', 'yes')");
	close_ok(db);
	assert_int_equal(chmod(f->path, 0644), 0);
	for (size_t s = 0; s < sizeof side_suffixes / sizeof side_suffixes[0]; s++)
		touch_side(f, side_suffixes[s], 0644);
	expect_refused(f, VK_OPEN_LOGIN, "chmod 600");

	db = open_ok(f, VK_OPEN_INIT);
	assert_int_equal(mode_of(f->path), S_IFREG | 0600);
	for (size_t s = 0; s < sizeof side_suffixes / sizeof side_suffixes[0]; s++) {
		char *p = side_path(f, side_suffixes[s]);

		assert_int_equal(mode_of(p), S_IFREG | 0600);
		free(p);
	}
	assert_int_equal(query(db, "SELECT count(*) FROM meta WHERE name = 'kept'"), 1);
	close_ok(db);
	close_ok(open_ok(f, VK_OPEN_LOGIN));
}

static void
test_foreign_owner_refused(void **state)
{
	struct st_fx *f = *state;

	if (geteuid() != 0)
		fx_skip("only root can give a file away");
	make_store(f);
	assert_int_equal(chown(f->path, 1, 1), 0);
	expect_refused(f, VK_OPEN_LOGIN, "owned by uid 1");
	assert_int_equal(chown(f->path, 0, 0), 0);
	for (size_t s = 0; s < sizeof side_suffixes / sizeof side_suffixes[0]; s++) {
		char *p = side_path(f, side_suffixes[s]);

		touch_side(f, side_suffixes[s], 0600);
		assert_int_equal(chown(p, 1, 1), 0);
		expect_refused(f, VK_OPEN_LOGIN, "owned by uid 1");
		expect_refused(f, VK_OPEN_INIT,
		               "owned by uid 1"); /* init fixes modes, not owners */
		assert_int_equal(chown(p, 0, 0), 0);
		free(p);
	}
	assert_int_equal(chown(f->sub, 1, 1), 0);
	expect_refused(f, VK_OPEN_LOGIN, "owned by uid 1");
}

static void
test_symlink_refused(void **state)
{
	struct st_fx *f = *state;
	char *real = fx_join(f->dir, "real.db"), *nowhere = fx_join(f->dir, "nowhere.db");
	char *saved = f->path;

	make_store(f);
	assert_int_equal(rename(f->path, real), 0);
	assert_int_equal(symlink(real, f->path), 0);
	expect_refused(f, VK_OPEN_LOGIN, "not a regular file");
	expect_refused(f, VK_OPEN_INIT, "not a regular file");

	/* init must not create a store where a dangling link points */
	f->path = fx_join(f->sub, "dangling.db");
	assert_int_equal(symlink(nowhere, f->path), 0);
	expect_refused(f, VK_OPEN_INIT, "not a regular file");
	assert_int_equal(access(nowhere, F_OK), -1);
	free(f->path);
	f->path = saved;
	free(real);
	free(nowhere);
}

/*
 * A VFS that passes everything to the default one, except that it refuses
 * to open a rollback journal while `fail_journal` is set: the first write
 * of a new store (its migration) then fails, deterministically, after init
 * created the directory and the file.
 */
static sqlite3_vfs *real_vfs;
static sqlite3_vfs fault_vfs;
static int fail_journal, journal_refusals;

static int
fault_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	(void)vfs;
	if (fail_journal && (flags & SQLITE_OPEN_MAIN_JOURNAL) != 0) {
		journal_refusals++;
		file->pMethods = NULL;
		return SQLITE_CANTOPEN;
	}
	return real_vfs->xOpen(real_vfs, name, file, flags, out_flags);
}

/* Makes fault_vfs the default VFS; fault_vfs_off() restores the real one. */
static void
fault_vfs_on(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(real_vfs);
	fault_vfs = *real_vfs;
	fault_vfs.zName = "viamkey-test-fault";
	fault_vfs.xOpen = fault_open;
	assert_int_equal(sqlite3_vfs_register(&fault_vfs, 1), SQLITE_OK);
	fail_journal = 1;
	journal_refusals = 0;
}

static void
fault_vfs_off(void)
{
	fail_journal = 0;
	assert_int_equal(sqlite3_vfs_unregister(&fault_vfs), SQLITE_OK);
	assert_int_equal(sqlite3_vfs_register(real_vfs, 1), SQLITE_OK);
}

/* Init fails after creating the store's directory and file: both are removed again. */
static void
test_failed_init_removes_what_it_created(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = (sqlite3 *)f;
	vk_rc rc;

	fault_vfs_on();
	rc = vk_store_open(f->path, VK_OPEN_INIT, 100, &db, f->err);
	fault_vfs_off();
	assert_int_not_equal(rc, VK_OK);
	assert_null(db);
	assert_true(journal_refusals > 0); /* it failed where the test made it fail */
	assert_true(f->err[0] != '\0');
	assert_int_equal(access(f->path, F_OK), -1);
	for (size_t s = 0; s < sizeof side_suffixes / sizeof side_suffixes[0]; s++) {
		char *p = side_path(f, side_suffixes[s]);

		assert_int_equal(access(p, F_OK), -1);
		free(p);
	}
	assert_int_equal(access(f->sub, F_OK), -1);

	/* the same in a directory that was already there: the file goes, the directory stays */
	assert_int_equal(mkdir(f->sub, 0700), 0);
	fault_vfs_on();
	rc = vk_store_open(f->path, VK_OPEN_INIT, 100, &db, f->err);
	fault_vfs_off();
	assert_int_not_equal(rc, VK_OK);
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(mode_of(f->sub), S_IFDIR | 0700);

	/* and nothing is left in the way of the next init */
	close_ok(open_ok(f, VK_OPEN_INIT));
	assert_int_equal(mode_of(f->path), S_IFREG | 0600);
}

/* Init refuses a new store whose -wal is not a regular file, and removes the file it made. */
static void
test_failed_init_side_file_removes_store(void **state)
{
	struct st_fx *f = *state;
	char *wal = side_path(f, "-wal");

	assert_int_equal(mkdir(f->sub, 0700), 0);
	assert_int_equal(mkdir(wal, 0700), 0);
	expect_refused(f, VK_OPEN_INIT, "not a regular file");
	assert_int_equal(access(f->path, F_OK), -1);
	assert_int_equal(mode_of(wal), S_IFDIR | 0700); /* not init's to remove */
	assert_int_equal(mode_of(f->sub), S_IFDIR | 0700);
	free(wal);
}

/* A failed migration of an existing store leaves it as it was: init did not create it. */
static void
test_failed_migration_keeps_existing_store(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db;

	make_store(f);
	/* a v1 store that already has what v2 adds: the v2 migration fails */
	raw_exec(f->path, "INSERT INTO meta VALUES ('kept', 'yes'); PRAGMA user_version = 1;");
	expect_refused_rc(f, VK_OPEN_INIT, "migrate");
	assert_int_equal(mode_of(f->path), S_IFREG | 0600);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(query(db, "PRAGMA user_version"), 1);
	assert_int_equal(query(db, "SELECT count(*) FROM meta WHERE name = 'kept'"), 1);
	close_ok(db);
}

static void
test_not_a_database_refused(void **state)
{
	struct st_fx *f = *state;
	char garbage[8192];
	struct stat st;

	memset(garbage, 'x', sizeof garbage);
	assert_int_equal(mkdir(f->sub, 0700), 0);
	fx_write(f->path, 0600, garbage, sizeof garbage);
	expect_refused(f, VK_OPEN_LOGIN, "not a database");
	expect_refused(f, VK_OPEN_INIT, "not a database");
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_size, sizeof garbage); /* left alone */
}

static void
test_other_sqlite_database_refused(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db;

	assert_int_equal(mkdir(f->sub, 0700), 0);
	raw_exec(f->path, "CREATE TABLE photos (id INTEGER PRIMARY KEY); INSERT INTO photos"
	                  " VALUES (1)");
	expect_refused(f, VK_OPEN_LOGIN, "not a viamkey store");
	expect_refused(f, VK_OPEN_INIT, "not a viamkey store");
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(query(db, "SELECT count(*) FROM photos"), 1);
	assert_int_equal(query(db, "SELECT count(*) FROM sqlite_schema"), 1);
	close_ok(db);
}

static void
test_newer_schema_refused(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db;
	char sql[64];

	make_store(f);
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d", VK_SCHEMA_VERSION + 1);
	raw_exec(f->path, sql);
	expect_refused(f, VK_OPEN_LOGIN, "newer");
	expect_refused(f, VK_OPEN_ADMIN, "newer");
	expect_refused(f, VK_OPEN_INIT, "newer");
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(query(db, "PRAGMA user_version"), VK_SCHEMA_VERSION + 1);
	close_ok(db);
}

static void
test_older_schema_needs_init(void **state)
{
	struct st_fx *f = *state;

	make_store(f);
	raw_exec(f->path, "PRAGMA user_version = 0");
	expect_refused(f, VK_OPEN_LOGIN, "keyadm init");
	expect_refused(f, VK_OPEN_ADMIN, "migrate");
	/* what a login reads is the same since VK_SCHEMA_LOGIN: such a store serves logins */
	{
		char sql[64], err[VK_ERRLEN];
		sqlite3 *db;

		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", VK_SCHEMA_LOGIN - 1);
		raw_exec(f->path, sql);
		expect_refused(f, VK_OPEN_LOGIN, "keyadm init");
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d", VK_SCHEMA_LOGIN);
		raw_exec(f->path, sql);
		expect_refused(f, VK_OPEN_ADMIN, "migrate");
		assert_int_equal(vk_store_open(f->path, VK_OPEN_LOGIN, 100, &db, err), VK_OK);
		close_ok(db);
	}
}

static void
test_damaged_store_refused(void **state)
{
	static const char tail[100] = "trailing bytes";
	struct st_fx *f = *state;
	FILE *fp;

	make_store(f);
	assert_non_null(fp = fopen(f->path, "ab"));
	assert_int_equal(fwrite(tail, 1, sizeof tail, fp), sizeof tail);
	assert_int_equal(fclose(fp), 0);
	expect_refused(f, VK_OPEN_LOGIN, "damaged");
	expect_refused(f, VK_OPEN_INIT, "damaged");
}

static void
test_truncated_store_refused(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	int64_t page = query(db, "PRAGMA page_size");

	assert_true(query(db, "PRAGMA page_count") > 2);
	close_ok(db);
	assert_int_equal(truncate(f->path, 2 * page), 0);
	assert_int_equal(vk_store_open(f->path, VK_OPEN_LOGIN, 100, &db, f->err), VK_ERR_STORE);
	assert_null(db);
}

static void
test_exec_binds_parameters(void **state)
{
	static const char evil[] = "x'); DROP TABLE meta; --";
	static const unsigned char blob[5] = {1, 0, 2, 0, 3};
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	int64_t n;
	int changes = -1;

	assert_int_equal(vk_store_exec(db, "insert", f->err, &changes,
	                               "INSERT INTO meta (name, value) VALUES (?1, ?2), (?2, ?1)",
	                               "tt", "a", evil),
	                 VK_OK);
	assert_int_equal(changes, 2);
	assert_int_equal(vk_store_query_int(db, "q", f->err, &n,
	                                    "SELECT count(*) FROM meta WHERE value = ?1", "t",
	                                    evil),
	                 VK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(
	    vk_store_query_int(db, "q", f->err, &n, "SELECT length(?1)", "b", blob, sizeof blob),
	    VK_OK);
	assert_int_equal(n, sizeof blob);
	assert_int_equal(
	    vk_store_query_int(db, "q", f->err, &n, "SELECT ?1 + 1", "i", (int64_t)1 << 40), VK_OK);
	assert_int_equal(n, ((int64_t)1 << 40) + 1);
	assert_int_equal(
	    vk_store_query_int(db, "q", f->err, &n, "SELECT ?1 IS NULL", "t", (char *)NULL), VK_OK);
	assert_int_equal(n, 1);
	n = 7;
	assert_int_equal(vk_store_query_int(db, "q", f->err, &n, "SELECT 9 WHERE 0", ""), VK_OK);
	assert_int_equal(n, 0); /* no row */
	assert_int_equal(vk_store_exec(db, "update", f->err, &changes,
	                               "UPDATE meta SET value = 'b' WHERE name = 'nothing'", ""),
	                 VK_OK);
	assert_int_equal(changes, 0);
	close_ok(db);
}

static void
expect_failure(sqlite3 *db, vk_rc want, const char *sql, const char *arg)
{
	char err[VK_ERRLEN] = "";

	assert_int_equal(vk_store_exec(db, "cannot frob", err, NULL, sql, "t", arg), want);
	assert_memory_equal(err, "cannot frob: ", 13);
}

static void
test_exec_errors(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);

	fx_sql(db, "INSERT INTO meta VALUES ('a', 'b')");
	expect_failure(db, VK_ERR_CONFLICT, "INSERT INTO meta (name, value) VALUES (?1, 'c')", "a");
	/* foreign keys are enforced */
	expect_failure(db, VK_ERR_CONFLICT,
	               "INSERT INTO locations (id, org_id, name, created_at)"
	               " VALUES (?1, 'no such org', 'l', 1)",
	               "3f2504e0-4f89-41d3-9a0c-0305e82c3301");
	expect_failure(db, VK_ERR_CONFLICT,
	               "INSERT INTO grants VALUES (?1, 'admin', 'machine', 'x')", "k");
	assert_int_not_equal(vk_store_exec(db, "cannot frob", f->err, NULL, "SELEKT ?1", "t", "x"),
	                     VK_OK);
	assert_memory_equal(f->err, "cannot frob: ", 13);
	close_ok(db);
}

static void
test_transactions(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT), *other = open_ok(f, VK_OPEN_ADMIN);

	assert_int_equal(vk_store_begin(db, f->err), VK_OK);
	fx_sql(db, "INSERT INTO meta VALUES ('a', 'b')");
	vk_store_rollback(db);
	assert_int_equal(query(db, "SELECT count(*) FROM meta"), 0);

	assert_int_equal(vk_store_begin(db, f->err), VK_OK);
	fx_sql(db, "INSERT INTO meta VALUES ('a', 'b')");
	/* a second writer waits out its busy timeout, then gives up */
	assert_int_equal(vk_store_begin(other, f->err), VK_ERR_IO);
	assert_int_equal(query(other, "SELECT count(*) FROM meta"), 0);
	assert_int_equal(vk_store_commit(db, f->err), VK_OK);
	assert_int_equal(query(other, "SELECT count(*) FROM meta"), 1);
	vk_store_rollback(db); /* no transaction: harmless */
	close_ok(other);
	close_ok(db);
}

/* The value of a meta record, which must exist. */
static void
meta_value(sqlite3 *db, const char *name, char *out, size_t size)
{
	sqlite3_stmt *st;

	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL),
	    SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, size, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
}

static void
test_host_machine(void **state)
{
	static const char m1[] = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
	static const char m2[] = "9b2d6c1e-0a7f-4e3b-8c5d-1f2e3d4c5b6a";
	static const char m3[] = "0c1d2e3f-4a5b-4c6d-9e8f-a0b1c2d3e4f5";
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	char got[VK_UUID_STRLEN + 1], machine_id[33] = "";
	FILE *fp;

	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_ERR_NOTFOUND);
	assert_string_equal(got, "");
	assert_non_null(strstr(f->err, "machine"));
	/* [machine] id in the config wins over the store, recorded or not */
	assert_int_equal(vk_store_host_machine(db, m3, got, f->err), VK_OK);
	assert_string_equal(got, m3);
	if (!fx_have_machine_id()) {
		assert_int_equal(vk_store_set_host_machine(db, m1, f->err), VK_ERR_CONFLICT);
		close_ok(db);
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	}
	assert_int_equal(vk_store_set_host_machine(db, m1, f->err), VK_OK);
	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_OK);
	assert_string_equal(got, m1);
	assert_int_equal(vk_store_set_host_machine(db, m2, f->err), VK_OK);
	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_OK);
	assert_string_equal(got, m2);
	assert_int_equal(vk_store_host_machine(db, m3, got, f->err), VK_OK);
	assert_string_equal(got, m3);
	/* the binding is a keyed hash: /etc/machine-id itself is not copied into the store */
	assert_non_null(fp = fopen("/etc/machine-id", "r"));
	assert_non_null(fgets(machine_id, sizeof machine_id, fp));
	fclose(fp);
	assert_int_equal(fx_count(db,
	                          "SELECT count(*) FROM meta WHERE name = 'host_binding'"
	                          " AND length(value) >= 32 AND instr(value, ?1) = 0",
	                          machine_id),
	                 1);
	fx_sql(db, "UPDATE meta SET value = 'not-a-uuid' WHERE name = 'host_machine_id'");
	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_ERR_STORE);
	close_ok(db);
}

/* A store copied from another host does not make this host that machine. */
static void
test_host_machine_bound_to_host(void **state)
{
	static const char m1[] = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
	static const char m3[] = "0c1d2e3f-4a5b-4c6d-9e8f-a0b1c2d3e4f5";
	static const char *const foreign[] = {"0123456789abcdef0123456789abcdef", "", "x"};
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	char got[VK_UUID_STRLEN + 1], binding[128];

	if (!fx_have_machine_id()) {
		close_ok(db);
		fx_skip("this host has no /etc/machine-id to bind the store's record to");
	}
	assert_int_equal(vk_store_set_host_machine(db, m1, f->err), VK_OK);
	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_OK);
	assert_string_equal(got, m1);
	meta_value(db, "host_binding", binding, sizeof binding);
	for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
		fx_sql1(db, "UPDATE meta SET value = ?1 WHERE name = 'host_binding'", foreign[i]);
		memset(got, 'x', sizeof got);
		f->err[0] = '\0';
		assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_ERR_NOTFOUND);
		assert_string_equal(got, "");
		if (strstr(f->err, "another host") == NULL)
			fail_msg("\"another host\" not in \"%s\"", f->err);
		/* a configured ID always wins */
		assert_int_equal(vk_store_host_machine(db, m3, got, f->err), VK_OK);
		assert_string_equal(got, m3);
	}
	/* a record without any binding (as a hand-made store has) is not this host's either */
	fx_sql(db, "DELETE FROM meta WHERE name = 'host_binding'");
	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_ERR_NOTFOUND);
	assert_non_null(strstr(f->err, "another host"));
	/* and the binding this host wrote is accepted again */
	fx_sql1(db, "INSERT INTO meta (name, value) VALUES ('host_binding', ?1)", binding);
	assert_int_equal(vk_store_host_machine(db, NULL, got, f->err), VK_OK);
	assert_string_equal(got, m1);
	close_ok(db);
}

static void
test_preview_function(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	unsigned char id[VK_KEY_ID_BYTES];
	char uuid[VK_UUID_STRLEN + 1], preview[VK_PREVIEW_LEN + 1];
	int64_t n;

	assert_int_equal(vk_store_register_functions(db, f->err), VK_OK);
	vk_uuid_generate(id);
	vk_uuid_format(id, uuid);
	vk_token_preview(id, preview);
	assert_int_equal(vk_store_query_int(db, "q", f->err, &n, "SELECT vk_preview(?1) = ?2", "tt",
	                                    uuid, preview),
	                 VK_OK);
	assert_int_equal(n, 1);
	assert_int_equal(vk_store_query_int(db, "q", f->err, &n,
	                                    "SELECT vk_preview(?1) IS NULL AND vk_preview(NULL)"
	                                    " IS NULL",
	                                    "t", "not-a-uuid"),
	                 VK_OK);
	assert_int_equal(n, 1);
	close_ok(db);
}

static void
test_event_recorded(void **state)
{
	static const char key[] = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	struct vk_txn t = {.db = db, .actor = "alice", .effective = "root", .now = FX_NOW};
	int64_t n;

	/* vk_store_event() is gone: events are recorded in a vk_txn, at its time */
	assert_int_equal(vk_txn_begin(&t, f->err), VK_OK);
	assert_int_equal(vk_txn_event(&t, "keys.rotate", key, f->err, "{\"grace\":%d}", 60), VK_OK);
	assert_int_equal(vk_txn_commit(&t, f->err), VK_OK);
	assert_int_equal(vk_store_query_int(db, "q", f->err, &n,
	                                    "SELECT at FROM events WHERE actor = 'alice' AND"
	                                    " effective = 'root' AND"
	                                    " action = 'keys.rotate' AND key_id = ?1 AND"
	                                    " detail = '{\"grace\":60}'",
	                                    "t", key),
	                 VK_OK);
	assert_int_equal(n, FX_NOW);

	/* no effective user: NULL; no key: NULL; a rolled-back event is not kept */
	t.effective = NULL;
	assert_int_equal(vk_txn_begin(&t, f->err), VK_OK);
	assert_int_equal(vk_txn_event(&t, "init", NULL, f->err, "%s", "x"), VK_OK);
	assert_int_equal(vk_txn_commit(&t, f->err), VK_OK);
	assert_int_equal(vk_txn_begin(&t, f->err), VK_OK);
	assert_int_equal(vk_txn_event(&t, "gone", NULL, f->err, "%s", "y"), VK_OK);
	vk_txn_rollback(&t);
	assert_true(sqlite3_get_autocommit(db));
	assert_int_equal(query(db, "SELECT count(*) FROM events WHERE action = 'init' AND"
	                           " effective IS NULL AND key_id IS NULL AND actor = 'alice'"),
	                 1);
	assert_int_equal(query(db, "SELECT count(*) FROM events WHERE action = 'gone'"), 0);
	close_ok(db);
}

static void
test_prepare_binds_for_caller(void **state)
{
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);
	sqlite3_stmt *st = (sqlite3_stmt *)f; /* poisoned: a failure must reset it to NULL */

	assert_int_equal(vk_store_prepare(db, "q", f->err, &st, "SELECT ?1 || ?2, ?3", "tti", "a'",
	                                  "b", (int64_t)42),
	                 VK_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "a'b");
	assert_int_equal(sqlite3_column_int64(st, 1), 42);
	assert_int_equal(sqlite3_finalize(st), SQLITE_OK);
	assert_int_not_equal(vk_store_prepare(db, "cannot frob", f->err, &st, "SELEKT", ""), VK_OK);
	assert_null(st);
	assert_memory_equal(f->err, "cannot frob: ", 13);
	close_ok(db);
}

/* 1 when the key's last use is exactly (at, service, user, rhost). */
static int
last_use_is(sqlite3 *db, int64_t at, const char *service, const char *user, const char *rhost)
{
	char err[VK_ERRLEN];
	int64_t n;

	assert_int_equal(vk_store_query_int(db, "q", err, &n,
	                                    "SELECT count(*) FROM keys WHERE last_used_at = ?1 AND"
	                                    " last_used_service = ?2 AND last_used_user = ?3 AND"
	                                    " last_used_rhost IS ?4",
	                                    "ittt", at, service, user, rhost),
	                 VK_OK);
	return n == 1;
}

static void
test_last_use_throttled(void **state)
{
	static const char key[] = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
	struct st_fx *f = *state;
	sqlite3 *db = open_ok(f, VK_OPEN_INIT);

	fx_sql1(db,
	        "INSERT INTO keys (id, name, created_at, created_by) VALUES (?1, 'k', 1, 'root')",
	        key);
	assert_int_equal(
	    vk_store_note_use(db, key, NULL, "sshd", "ann", "192.0.2.7", FX_NOW, 60, f->err),
	    VK_OK);
	assert_true(last_use_is(db, FX_NOW, "sshd", "ann", "192.0.2.7"));
	assert_int_equal(
	    vk_store_note_use(db, key, NULL, "sudo", "bob", NULL, FX_NOW + 59, 60, f->err), VK_OK);
	assert_true(last_use_is(db, FX_NOW, "sshd", "ann", "192.0.2.7"));
	assert_int_equal(
	    vk_store_note_use(db, key, NULL, "sudo", "bob", NULL, FX_NOW + 60, 60, f->err), VK_OK);
	assert_true(last_use_is(db, FX_NOW + 60, "sudo", "bob", NULL));
	assert_int_equal(
	    vk_store_note_use(db, key, NULL, "login", "ann", NULL, FX_NOW + 60, 0, f->err), VK_OK);
	assert_true(last_use_is(db, FX_NOW + 60, "login", "ann", NULL));
	assert_true(sqlite3_get_autocommit(db));
	close_ok(db);
}

/*
 * Whether another process could take a write lock on the range of the
 * store file where SQLite's connections hold their shared locks (its
 * "shared range", PENDING_BYTE + 2, 510 bytes): 1 when it could, i.e.
 * no connection in this process holds its lock there.
 */
static int
shared_range_free(const char *path)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock fl = {.l_type = F_WRLCK,
		                   .l_whence = SEEK_SET,
		                   .l_start = 0x40000000 + 2,
		                   .l_len = 510};
		int fd = open(path, O_RDWR | O_CLOEXEC);

		_exit(fd >= 0 && fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * Opening the store again in the same process (a second login in a
 * threaded PAM application, keyadm check beside a kept connection) MUST
 * NOT drop the locks of a connection that is already open: closing any
 * descriptor of a file drops every POSIX lock the process holds on it,
 * and without its shared lock another process's SQLite could checkpoint
 * and delete the log under the open connection.
 */
static void
test_open_keeps_other_connections_locks(void **state)
{
	struct st_fx *f = *state;
	struct vk_store_stamp stamp;
	sqlite3 *held, *second;
	int64_t n;

	make_store(f);
	held = open_ok(f, VK_OPEN_LOGIN);
	/* a WAL connection keeps its shared lock on the store once it has read it */
	assert_int_equal(vk_store_query_int(held, "", f->err, &n, "SELECT count(*) FROM keys", ""),
	                 VK_OK);
	assert_false(shared_range_free(f->path));
	for (int mode = VK_OPEN_LOGIN; mode <= VK_OPEN_INIT; mode++) {
		second = open_ok(f, (enum vk_open_mode)mode);
		close_ok(second);
		assert_false(shared_range_free(f->path));
	}
	assert_int_equal(vk_store_stamp(f->path, &stamp, f->err), VK_OK);
	assert_false(shared_range_free(f->path));
	close_ok(held);
	assert_true(shared_range_free(f->path));
}

/* ---- stamps ------------------------------------------------------------- */

static void
stamp_ok(struct st_fx *f, struct vk_store_stamp *s)
{
	if (vk_store_stamp(f->path, s, f->err) != VK_OK)
		fail_msg("%s", f->err);
}

static off_t
size_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/*
 * A stamp sees every write, including one that leaves every size as it
 * was: a commit that keyadm's checkpoint folds into the store before it
 * empties the log again. So does one left in the log.
 */
static void
test_stamp_sees_writes(void **state)
{
	struct st_fx *f = *state;
	char *wal = fx_join(f->sub, "keys.db-wal");
	struct vk_store_stamp then, now;
	off_t size;
	sqlite3 *db;

	make_store(f);
	db = open_ok(f, VK_OPEN_ADMIN);
	fx_sql(db, "INSERT INTO meta (name, value) VALUES ('a', '1')");
	vk_store_checkpoint(db, 1);
	size = size_of(f->path);
	fx_backdate(f->path, 60);
	stamp_ok(f, &then);
	stamp_ok(f, &now);
	assert_true(vk_store_unchanged(&then, &now));

	fx_sql(db, "UPDATE meta SET value = '2' WHERE name = 'a'");
	vk_store_checkpoint(db, 1);
	assert_int_equal(size_of(f->path), size);
	assert_int_equal(size_of(wal), 0);
	stamp_ok(f, &now);
	assert_false(vk_store_unchanged(&then, &now));

	fx_backdate(f->path, 60);
	stamp_ok(f, &then);
	fx_sql(db, "UPDATE meta SET value = '3' WHERE name = 'a'"); /* left in the log */
	stamp_ok(f, &now);
	assert_false(vk_store_unchanged(&then, &now));
	close_ok(db);
	free(wal);
}

static void
shift(struct timespec *t, int64_t ns)
{
	int64_t v = (int64_t)t->tv_sec * 1000000000 + t->tv_nsec + ns;

	t->tv_sec = (time_t)(v / 1000000000);
	t->tv_nsec = (long)(v % 1000000000);
}

/* Sets the modification time of path to 60 s ago, cut to `granularity` nanoseconds. */
static void
modified_a_minute_ago(const char *path, int64_t granularity)
{
	struct timespec now, times[2];
	int64_t t;

	assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
	t = ((int64_t)now.tv_sec - 60) * 1000000000 + now.tv_nsec;
	t -= t % granularity;
	times[0].tv_sec = (time_t)(t / 1000000000);
	times[0].tv_nsec = (long)(t % 1000000000);
	times[1] = times[0];
	assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
}

/* Whether `then` and `now` find the store unchanged when `then` was taken `after` ns after file i
 * changed. */
static int
unchanged_after(struct vk_store_stamp then, const struct vk_store_stamp *now, size_t i,
                int64_t after)
{
	then.at = then.file[i].mtime;
	shift(&then.at, after);
	return vk_store_unchanged(&then, now);
}

/*
 * A store modified shortly before the first stamp never counts as
 * unchanged, since a later write within the clock's tick or the file
 * system's granularity may leave the same time: 50 ms for a time with a
 * fraction of a second, 3 s for one in whole seconds (a file system that
 * keeps no fraction, such as ext4 with small inodes, or FAT).
 */
static void
test_stamp_needs_settled_files(void **state)
{
	struct st_fx *f = *state;
	char *wal = fx_join(f->sub, "keys.db-wal");
	struct vk_store_stamp then, now;

	make_store(f);
	close_ok(open_ok(f, VK_OPEN_LOGIN)); /* which makes the -wal */
	stamp_ok(f, &then);
	stamp_ok(f, &now);
	assert_false(vk_store_unchanged(&then, &now)); /* just written */

	modified_a_minute_ago(f->path, 1);
	modified_a_minute_ago(wal, 1);
	stamp_ok(f, &then);
	stamp_ok(f, &now);
	assert_true(vk_store_unchanged(&then, &now));
	assert_false(unchanged_after(then, &now, 0, 20000000));
	assert_true(unchanged_after(then, &now, 0, 100000000));

	modified_a_minute_ago(wal, 1000000000);
	stamp_ok(f, &then);
	stamp_ok(f, &now);
	assert_false(unchanged_after(then, &now, 1, 2000000000));
	assert_true(unchanged_after(then, &now, 1, 4000000000));
	free(wal);
}

/*
 * The real-time clock, which the kernel stamps changes with, going back
 * between two stamps by more than 10 ms next to the monotonic clock: a
 * later change could carry an earlier time, so nothing counts as
 * unchanged.
 */
static void
test_stamp_clock_going_back(void **state)
{
	struct st_fx *f = *state;
	struct vk_store_stamp then, now;

	make_store(f);
	fx_backdate(f->path, 60);
	stamp_ok(f, &then);
	stamp_ok(f, &now);
	shift(&now.at, -5000000);
	assert_true(vk_store_unchanged(&then, &now));
	shift(&now.at, -10000000);
	assert_false(vk_store_unchanged(&then, &now));
	shift(&now.at, 3000000000);
	assert_true(vk_store_unchanged(&then, &now));
}

/*
 * A store replaced between two stamps, even by a copy with the same size
 * and times, and a side file that appears, are changes.
 */
static void
test_stamp_sees_replacement(void **state)
{
	struct st_fx *f = *state;
	char *copy = fx_join(f->sub, "copy.db"), *journal = fx_join(f->sub, "keys.db-journal");
	struct vk_store_stamp then, now;
	struct timespec times[2];
	struct stat st;
	char buf[4096];
	ssize_t n;
	int in, out;

	make_store(f);
	fx_backdate(f->path, 60);
	stamp_ok(f, &then);
	in = open(f->path, O_RDONLY);
	out = open(copy, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof buf)) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(close(in), 0);
	assert_int_equal(close(out), 0);
	assert_int_equal(stat(f->path, &st), 0);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	assert_int_equal(utimensat(AT_FDCWD, copy, times, 0), 0);
	assert_int_equal(rename(copy, f->path), 0);
	stamp_ok(f, &now);
	assert_int_equal(now.file[0].size, then.file[0].size);
	assert_int_equal(now.file[0].mtime.tv_nsec, then.file[0].mtime.tv_nsec);
	assert_false(vk_store_unchanged(&then, &now));

	fx_backdate(f->path, 60);
	stamp_ok(f, &then);
	fx_write(journal, 0600, "", 0);
	times[0] = times[1] = then.file[0].mtime;
	assert_int_equal(utimensat(AT_FDCWD, journal, times, 0), 0);
	stamp_ok(f, &now);
	assert_false(vk_store_unchanged(&then, &now));
	assert_int_equal(unlink(journal), 0);
	free(copy);
	free(journal);
}

/* A stamp makes the checks of an open, and refuses what an open refuses. */
static void
test_stamp_checks_as_open(void **state)
{
	struct st_fx *f = *state;
	char *wal = fx_join(f->sub, "keys.db-wal");
	struct vk_store_stamp s;

	assert_int_equal(vk_store_stamp(f->path, &s, f->err), VK_ERR_STORE);
	assert_non_null(strstr(f->err, "does not exist"));
	make_store(f);
	close_ok(open_ok(f, VK_OPEN_LOGIN)); /* which makes the -wal */
	stamp_ok(f, &s);
	assert_int_equal(chmod(f->path, 0640), 0);
	assert_int_equal(vk_store_stamp(f->path, &s, f->err), VK_ERR_STORE);
	assert_non_null(strstr(f->err, "chmod 600"));
	assert_int_equal(chmod(f->path, 0600), 0);
	assert_int_equal(chmod(wal, 0644), 0);
	assert_int_equal(vk_store_stamp(f->path, &s, f->err), VK_ERR_STORE);
	assert_non_null(strstr(f->err, "-wal"));
	assert_int_equal(chmod(wal, 0600), 0);
	assert_int_equal(chmod(f->sub, 0770), 0);
	assert_int_equal(vk_store_stamp(f->path, &s, f->err), VK_ERR_STORE);
	assert_non_null(strstr(f->err, "go-w"));
	assert_int_equal(chmod(f->sub, 0700), 0);
	free(wal);
}

/*
 * What an open stamps before SQLite opens the store is what a stamp finds
 * once it has read the store and closed it: reading moves nothing stamped
 * (not even as root, when SQLite chowns the -wal it opens).
 */
static void
test_open_stamped_then_read(void **state)
{
	struct st_fx *f = *state;
	struct vk_store_stamp then, now;
	sqlite3 *db;

	make_store(f);
	close_ok(open_ok(f, VK_OPEN_LOGIN)); /* the first login makes the -wal and -shm */
	fx_backdate(f->path, 60);
	if (vk_store_open_stamped(f->path, VK_OPEN_LOGIN, 100, &db, &then, f->err) != VK_OK)
		fail_msg("%s", f->err);
	assert_int_equal(query(db, "SELECT count(*) FROM keys"), 0);
	close_ok(db);
	stamp_ok(f, &now);
	assert_true(vk_store_unchanged(&then, &now));
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    TEST(test_init_creates_private_dir_and_file),
	    TEST(test_init_again_keeps_data),
	    TEST(test_missing_store_refused),
	    TEST(test_writable_file_or_directory_refused),
	    TEST(test_readable_file_refused),
	    TEST(test_side_file_modes_checked),
	    TEST(test_side_file_symlink_refused),
	    TEST(test_side_file_not_regular_refused),
	    TEST(test_init_fixes_modes),
	    TEST(test_failed_init_removes_what_it_created),
	    TEST(test_failed_init_side_file_removes_store),
	    TEST(test_failed_migration_keeps_existing_store),
	    TEST(test_foreign_owner_refused),
	    TEST(test_symlink_refused),
	    TEST(test_not_a_database_refused),
	    TEST(test_other_sqlite_database_refused),
	    TEST(test_newer_schema_refused),
	    TEST(test_older_schema_needs_init),
	    TEST(test_damaged_store_refused),
	    TEST(test_truncated_store_refused),
	    TEST(test_exec_binds_parameters),
	    TEST(test_exec_errors),
	    TEST(test_transactions),
	    TEST(test_host_machine),
	    TEST(test_host_machine_bound_to_host),
	    TEST(test_preview_function),
	    TEST(test_event_recorded),
	    TEST(test_prepare_binds_for_caller),
	    TEST(test_last_use_throttled),
	    TEST(test_open_keeps_other_connections_locks),
	    TEST(test_stamp_sees_writes),
	    TEST(test_stamp_needs_settled_files),
	    TEST(test_stamp_clock_going_back),
	    TEST(test_stamp_sees_replacement),
	    TEST(test_stamp_checks_as_open),
	    TEST(test_open_stamped_then_read),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
