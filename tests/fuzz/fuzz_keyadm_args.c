/*
 * fuzz_keyadm_args.c - libFuzzer target for keyadm's command line.
 *
 * Input: the words of argv, separated by NUL bytes; argv[0] is "keyadm".
 * keyadm's own main(), compiled as keyadm_main(), parses them and runs the
 * command. The linker's --wrap sends every vk_store_open() and
 * vk_config_load() to this target's fixtures, whatever --db and --config
 * say, so no input reaches another file:
 *  - a store with fixed IDs, so that seeds name real rows, restored to its
 *    first state before every run;
 *  - a config naming that store and its host machine.
 * stdin is empty, stdout is discarded and stderr is captured.
 *
 * keyadm must exit 0, 1 or 2, never crash or leak, and a failure (1) of any
 * command but check must say why on one stderr line starting "keyadm: ".
 */
#include "autoconfig.h"

#include <getopt.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz_util.h"
#include "keyadm_main.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

vk_rc __real_vk_store_open(const char *path, enum vk_open_mode mode, int busy_timeout_ms,
                           sqlite3 **out, char err[VK_ERRLEN]);
vk_rc __wrap_vk_store_open(const char *path, enum vk_open_mode mode, int busy_timeout_ms,
                           sqlite3 **out, char err[VK_ERRLEN]);
vk_rc __real_vk_config_load(const char *path, struct vk_config *cfg, char err[VK_ERRLEN]);
vk_rc __wrap_vk_config_load(const char *path, struct vk_config *cfg, char err[VK_ERRLEN]);

#define MAX_WORDS 64

/* Fixed IDs, listed in the seed corpus. */
#define ORG1 "0a000000-0000-4000-8000-000000000001"
#define ORG2 "0a000000-0000-4000-8000-000000000002" /* empty */
#define LOC1 "1c000000-0000-4000-8000-000000000001"
#define LOC2 "1c000000-0000-4000-8000-000000000002" /* empty */
#define M1   "3a000000-0000-4000-8000-000000000001" /* this host */
#define M2   "3a000000-0000-4000-8000-000000000002"
#define K1   "4e000000-0000-4000-8000-000000000001" /* two grants, two users */
#define K2   "4e000000-0000-4000-8000-000000000002" /* protected */
#define K3   "4e000000-0000-4000-8000-000000000003" /* disabled */
#define K4   "4e000000-0000-4000-8000-000000000004" /* rotation window open */
#define K5   "4e000000-0000-4000-8000-000000000005" /* expired */
#define T    "1700000000"

static const char fixture_sql[] =
    "INSERT INTO organizations (id, name, created_at) VALUES"
    " ('" ORG1 "', 'acme', " T "), ('" ORG2 "', 'empty', " T ");"
    "INSERT INTO locations (id, org_id, name, created_at) VALUES"
    " ('" LOC1 "', '" ORG1 "', 'berlin', " T "), ('" LOC2 "', '" ORG1 "', 'empty', " T ");"
    "INSERT INTO machines (id, location_id, name, created_at) VALUES"
    " ('" M1 "', '" LOC1 "', 'host', " T "), ('" M2 "', '" LOC1 "', 'spare', " T ");"
    "INSERT INTO keys (id, name, created_at, created_by, disabled, protected, expires_at)"
    " VALUES ('" K1 "', 'deploy', " T ", 'root', 0, 0, NULL),"
    " ('" K2 "', 'system', " T ", 'root', 0, 1, NULL),"
    " ('" K3 "', 'off', " T ", 'root', 1, 0, NULL),"
    " ('" K4 "', 'rotating', " T ", 'root', 0, 0, NULL),"
    " ('" K5 "', 'old', " T ", 'root', 0, 0, " T " + 60);"
    "INSERT INTO key_users (key_id, user) VALUES ('" K1 "', 'ann'), ('" K1 "', 'bob'),"
    " ('" K2 "', 'root'), ('" K3 "', 'ann'), ('" K4 "', 'ann'), ('" K5 "', 'ann');"
    "INSERT INTO grants (key_id, role, resource_type, resource_id) VALUES"
    " ('" K1 "', 'owner', 'organization', '" ORG1 "'),"
    " ('" K1 "', 'viewer', 'machine', '" M2 "'),"
    " ('" K2 "', 'operator', 'location', '" LOC1 "'),"
    " ('" K3 "', 'viewer', 'machine', '" M1 "'),"
    " ('" K4 "', 'owner', 'machine', '" M1 "'),"
    " ('" K5 "', 'operator', 'organization', '" ORG1 "');"
    "INSERT INTO secrets (key_id, alg, salt, verifier, created_at, expires_at)"
    " SELECT id, 'b2k256-v1', randomblob(32), randomblob(32), " T ", NULL FROM keys;"
    "UPDATE secrets SET expires_at = 4102444800 WHERE key_id = '" K4 "';" /* 2100 */
    "INSERT INTO secrets (key_id, alg, salt, verifier, created_at, expires_at)"
    " VALUES ('" K4 "', 'b2k256-v1', randomblob(32), randomblob(32), " T ", NULL);"
    "INSERT INTO events (at, actor, action, key_id, detail)"
    " VALUES (" T ", 'root', 'create', '" K1 "', 'fixture');";

static const char config_fmt[] = "[store]\npath = %s\n[machine]\nid = " M1 "\n"
                                 "[services]\nsudo = owner\nsshd = operator\n";

static char *store_path, *config_path;
static void *pristine; /* the store's bytes before any run */
static size_t pristine_len;
static int store_used;
static FILE *devnull;

vk_rc
__wrap_vk_store_open(const char *path, enum vk_open_mode mode, int busy_timeout_ms, sqlite3 **out,
                     char err[VK_ERRLEN])
{
	vk_rc rc;

	(void)path;
	store_used = 1;
	rc = __real_vk_store_open(store_path, mode, busy_timeout_ms, out, err);
	/* the store is thrown away after each run: no need to wait for the disk */
	if (rc == VK_OK)
		sqlite3_exec(*out, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
	return rc;
}

vk_rc
__wrap_vk_config_load(const char *path, struct vk_config *cfg, char err[VK_ERRLEN])
{
	(void)path;
	return __real_vk_config_load(config_path, cfg, err);
}

/* Removes the store's -wal and -shm, so that the store file alone is its state. */
static void
remove_side_files(void)
{
	static const char *const suffixes[] = {"-wal", "-shm", "-journal"};

	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char *p;

		if (asprintf(&p, "%s%s", store_path, suffixes[i]) < 0)
			fz_die("out of memory");
		(void)unlink(p);
		free(p);
	}
}

static void
build_store(void)
{
	char err[VK_ERRLEN];
	sqlite3 *db;
	FILE *f;
	long n;

	if (__real_vk_store_open(store_path, VK_OPEN_INIT, 1000, &db, err) != VK_OK)
		fz_die("fixture: %s", err);
	if (sqlite3_exec(db, fixture_sql, NULL, NULL, NULL) != SQLITE_OK)
		fz_die("fixture: %s", sqlite3_errmsg(db));
	if (vk_store_set_host_machine(db, M1, err) != VK_OK)
		fz_die("fixture: %s", err);
	/* no connection checkpoints on close: fold the log into the file now */
	if (sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) !=
	    SQLITE_OK)
		fz_die("fixture: cannot checkpoint: %s", sqlite3_errmsg(db));
	if (sqlite3_close(db) != SQLITE_OK)
		fz_die("fixture: cannot close the store");
	remove_side_files();
	if ((f = fopen(store_path, "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
	    (n = ftell(f)) <= 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (pristine = malloc((size_t)n)) == NULL ||
	    fread(pristine, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0)
		fz_die("fixture: cannot read %s", store_path);
	pristine_len = (size_t)n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *text;
	int n;

	(void)argc, (void)argv;
	fz_setup();
	store_path = fz_path("store/keys.db");
	config_path = fz_path("viamkey.conf");
	build_store();
	if ((n = asprintf(&text, config_fmt, store_path)) < 0)
		fz_die("out of memory");
	fz_write_file(config_path, text, (size_t)n);
	free(text);
	if (freopen("/dev/null", "r", stdin) == NULL || (devnull = fopen("/dev/null", "w")) == NULL)
		fz_die("cannot open /dev/null");
	return 0;
}

/*
 * keyadm sets optind = 1 before it parses, which does not reset glibc's
 * getopt; optind = 0 does. Without this, a run that stopped inside a
 * cluster of short options ("-xy") would leave getopt pointing into the
 * previous run's freed argv.
 */
static void
reset_getopt(void)
{
	static char name[] = "keyadm";
	char *argv[] = {name, NULL};

	optind = 0;
	(void)getopt(1, argv, "+");
}

static int
run_keyadm(int argc, char **argv, char **errout, size_t *errlen)
{
	FILE *out = stdout, *errf = stderr, *capture;
	int rc;

	if ((capture = open_memstream(errout, errlen)) == NULL)
		fz_die("out of memory");
	/* the file alone: a log left by the previous run would lay its pages over it */
	if (store_used) {
		remove_side_files();
		fz_write_file(store_path, pristine, pristine_len);
	}
	store_used = 0;
	reset_getopt();
	/* the streams, not fds 1 and 2, where libFuzzer and the sanitizers report */
	stdout = devnull;
	stderr = capture;
	rc = keyadm_main(argc, argv);
	stdout = out;
	stderr = errf;
	fflush(devnull);
	if (fclose(capture) != 0)
		fz_die("out of memory");
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[MAX_WORDS + 1], *argv[MAX_WORDS + 2], *errtext = NULL;
	int nwords = 0, check = 0, rc;
	size_t errlen = 0;

	words[nwords++] = fz_strndup((const uint8_t *)"keyadm", 6);
	for (const uint8_t *p = size != 0 ? data : NULL; p != NULL && nwords <= MAX_WORDS;) {
		size_t left = size - (size_t)(p - data), n;
		const uint8_t *next = fz_split(p, left, &n);

		words[nwords] = fz_strndup(p, n);
		check |= strcmp(words[nwords], "check") == 0;
		nwords++;
		p = next;
	}
	/* keyadm may rearrange argv's pointers, never the strings */
	memcpy(argv, words, (size_t)nwords * sizeof *argv);
	argv[nwords] = NULL;

	rc = run_keyadm(nwords, argv, &errtext, &errlen);
	FZ_CHECK(rc == 0 || rc == 1 || rc == 2);
	if (rc == 1 && !check) {
		FZ_CHECK(strncmp(errtext, "keyadm: ", 8) == 0);
		FZ_CHECK(strchr(errtext, '\n') == errtext + errlen - 1);
	}
	free(errtext);
	for (int i = 0; i < nwords; i++)
		free(words[i]);
	return 0;
}
