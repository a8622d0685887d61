/*
 * vkpopulate - builds a benchmark store of N keys in bulk through common/.
 *
 *   vkpopulate --db PATH --keys N --user USER --out DIR
 *   vkpopulate --db PATH --touch N
 *
 * The store gets 20 organizations, 10 locations each and 20 machines per
 * location (4,000 machines); this host is the first machine. Every key has
 * 1-3 users from a pool of 1,000, one grant made by vk_key_create (half on
 * a machine, 30% on a location, 20% on an organization, any role) and, for
 * a third of them, a second grant; 10% expire in the future and 5% are in a
 * rotation window still open a week from now (two live secrets). Creation times spread over two
 * years.
 *
 * One key in the middle of the run is the benchmark's: user USER, operator
 * on this host's machine. DIR receives its token (token), a token with its
 * key ID and a wrong secret (wrong), a token of a key that does not exist
 * (unknown), its key ID (key_id) and the host machine's ID (machine_id).
 *
 * Keys are made as keyadm makes them, in a struct vk_txn (actor
 * "vkpopulate"), so each creation and rotation records its audit event.
 *
 * Speed: keys are written in transactions of 50,000 with
 * PRAGMA synchronous = OFF on this connection only (it is not stored in the
 * file, whose journal mode is the one vk_store_open() gives every store); a
 * crash mid-build may leave a broken file, which is why bench.sh builds
 * under a temporary name and renames it when done. A progress bar goes to
 * stderr.
 *
 * --touch N records a use of N keys of an existing store, as N logins
 * would (vk_store_note_use, one commit each, no checkpoint on close): the
 * store's write-ahead log then holds N commits, which every connection
 * that opens the store first reads back (bench.sh times logins so).
 */
#include "autoconfig.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "keys.h"
#include "store.h"
#include "token.h"
#include "txn.h"

#define ORGS      20
#define LOCS_PER  10
#define MACH_PER  20
#define USER_POOL 1000
#define BATCH     50000
#define TWO_YEARS (2 * 365 * 86400)

static char orgs[ORGS][VK_UUID_STRLEN + 1];
static char locs[ORGS * LOCS_PER][VK_UUID_STRLEN + 1];
static char machines[ORGS * LOCS_PER * MACH_PER][VK_UUID_STRLEN + 1];

/* Choices of the data (not secrets): xorshift64*, seeded from libsodium. */
static uint64_t rng_state;

static uint32_t
pick(uint32_t n)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ull) >> 32) % n;
}

static void
fail(const char *what, const char *err)
{
	fprintf(stderr, "vkpopulate: %s: %s\n", what, err);
	exit(1);
}

static void
check(vk_rc rc, const char *what, const char *err)
{
	if (rc != VK_OK)
		fail(what, err);
}

static void
new_id(char out[VK_UUID_STRLEN + 1])
{
	unsigned char id[VK_KEY_ID_BYTES];

	vk_uuid_generate(id);
	vk_uuid_format(id, out);
}

static void
tree(sqlite3 *db, int64_t now)
{
	char err[VK_ERRLEN], name[64];
	size_t m = 0;

	for (int o = 0; o < ORGS; o++) {
		new_id(orgs[o]);
		snprintf(name, sizeof name, "org-%02d", o);
		check(vk_store_exec(
		          db, "org", err, NULL,
		          "INSERT INTO organizations (id, name, created_at) VALUES (?1, ?2, ?3)",
		          "tti", orgs[o], name, now),
		      "organizations", err);
		for (int l = 0; l < LOCS_PER; l++) {
			char *loc = locs[o * LOCS_PER + l];

			new_id(loc);
			snprintf(name, sizeof name, "loc-%02d-%02d", o, l);
			check(vk_store_exec(db, "loc", err, NULL,
			                    "INSERT INTO locations (id, org_id, name, created_at)"
			                    " VALUES (?1, ?2, ?3, ?4)",
			                    "ttti", loc, orgs[o], name, now),
			      "locations", err);
			for (int k = 0; k < MACH_PER; k++, m++) {
				new_id(machines[m]);
				snprintf(name, sizeof name, "machine-%04zu", m);
				check(vk_store_exec(db, "machine", err, NULL,
				                    "INSERT INTO machines (id, location_id, name,"
				                    " created_at) VALUES (?1, ?2, ?3, ?4)",
				                    "ttti", machines[m], loc, name, now),
				      "machines", err);
			}
		}
	}
	check(vk_store_set_host_machine(db, machines[0], err), "host machine", err);
}

/* A resource for a grant: 50% machine, 30% location, 20% organization. */
static void
pick_resource(const char **type, const char **id)
{
	uint32_t r = pick(100);

	if (r < 50) {
		*type = "machine";
		*id = machines[pick(ORGS * LOCS_PER * MACH_PER)];
	} else if (r < 80) {
		*type = "location";
		*id = locs[pick(ORGS * LOCS_PER)];
	} else {
		*type = "organization";
		*id = orgs[pick(ORGS)];
	}
}

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	if ((fp = fopen(path, "w")) == NULL || fprintf(fp, "%s\n", text) < 0 || fclose(fp) != 0)
		fail(path, "cannot write");
}

static void
progress(long done, long total, time_t start)
{
	int width = 40, fill = (int)(done * width / total);
	long el = (long)(time(NULL) - start);

	fprintf(stderr, "\r  %8ld/%ld keys [%.*s%*s] %3ld%% %lds", done, total, fill,
	        "########################################", width - fill, "", done * 100 / total,
	        el);
	if (done == total)
		fputc('\n', stderr);
}

static void
bench_key(struct vk_txn *t, const char *user, const char *out, int64_t now)
{
	const char *users[] = {user};
	struct vk_key_spec spec = {
	    .name = "bench",
	    .role = VK_ROLE_OPERATOR,
	    .resource_type = "machine",
	    .resource_id = machines[0],
	    .users = users,
	    .nusers = 1,
	};
	char id[VK_UUID_STRLEN + 1], token[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	struct vk_token tok;

	t->now = now;
	check(vk_key_create(t, &spec, id, token, err), "bench key", err);
	write_file(out, "token", token);
	write_file(out, "key_id", id);
	write_file(out, "machine_id", machines[0]);
	/* the same key ID with another secret: a well-formed token, wrong secret */
	vk_uuid_parse(id, tok.key_id);
	vk_token_new_secret(&tok);
	vk_token_format(&tok, token);
	write_file(out, "wrong", token);
	vk_token_generate(&tok);
	vk_token_format(&tok, token);
	write_file(out, "unknown", token);
	vk_token_wipe(&tok);
	sodium_memzero(token, sizeof token);
}

/* N last-use writes to N keys, as logins make them; the log keeps them. */
static int
touch(const char *path, long n)
{
	char err[VK_ERRLEN];
	sqlite3_stmt *st;
	sqlite3 *db;
	long done = 0;

	check(vk_store_open(path, VK_OPEN_ADMIN, 5000, &db, err), "open", err);
	/* no automatic checkpoint (in use, SQLite lets 1,000 pages gather before one) */
	check(vk_store_exec(db, "pragma", err, NULL, "PRAGMA wal_autocheckpoint = 0", ""), "pragma",
	      err);
	check(vk_store_prepare(db, "keys", err, &st, "SELECT id FROM keys ORDER BY rowid LIMIT ?1",
	                       "i", (int64_t)n),
	      "keys", err);
	while (sqlite3_step(st) == SQLITE_ROW) {
		check(vk_store_note_use(db, (const char *)sqlite3_column_text(st, 0), NULL, "sshd",
		                        "vkbench", "192.0.2.1", vk_now(), 0, err),
		      "last use", err);
		done++;
	}
	sqlite3_finalize(st);
	if (sqlite3_close(db) != SQLITE_OK || done != n)
		fail(path, "cannot record the uses");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"db", required_argument, NULL, 'd'},    {"keys", required_argument, NULL, 'k'},
	    {"user", required_argument, NULL, 'u'},  {"out", required_argument, NULL, 'o'},
	    {"touch", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
	};
	const char *path = NULL, *user = "vkbench", *out = NULL;
	char err[VK_ERRLEN], id[VK_UUID_STRLEN + 1], token[VK_TOKEN_LEN + 1];
	char userpool[USER_POOL][16], name[32];
	long nkeys = 0, ntouch = 0;
	int64_t now = vk_now();
	time_t start = time(NULL);
	struct vk_txn t = {.actor = "vkpopulate"};
	sqlite3 *db;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'd')
			path = optarg;
		else if (c == 'k')
			nkeys = atol(optarg);
		else if (c == 'u')
			user = optarg;
		else if (c == 'o')
			out = optarg;
		else if (c == 't')
			ntouch = atol(optarg);
		else
			return 2;
	}
	if (path != NULL && ntouch > 0 && sodium_init() >= 0)
		return touch(path, ntouch);
	if (path == NULL || out == NULL || nkeys < 1 || sodium_init() < 0) {
		fputs("usage: vkpopulate --db PATH --keys N [--user USER] --out DIR\n"
		      "       vkpopulate --db PATH --touch N\n",
		      stderr);
		return 2;
	}
	randombytes_buf(&rng_state, sizeof rng_state);
	rng_state |= 1;
	for (int i = 0; i < USER_POOL; i++)
		snprintf(userpool[i], sizeof userpool[i], "user%04d", i);

	check(vk_store_open(path, VK_OPEN_INIT, 5000, &db, err), "open", err);
	check(vk_store_exec(db, "pragma", err, NULL, "PRAGMA synchronous = OFF", ""), "pragma",
	      err);
	check(vk_store_exec(db, "pragma", err, NULL, "PRAGMA cache_size = -1048576", ""), "pragma",
	      err);
	t.db = db;
	check(vk_txn_begin(&t, err), "begin", err);
	tree(db, now - TWO_YEARS);

	for (long k = 0; k < nkeys; k++) {
		const char *users[3];
		struct vk_key_spec spec = {.users = users};
		int64_t created = now - TWO_YEARS + (int64_t)pick(TWO_YEARS);

		if (k == nkeys / 2) {
			bench_key(&t, user, out, now);
			continue;
		}
		snprintf(name, sizeof name, "key-%ld", k);
		spec.name = name;
		spec.role = (vk_role)(1 + pick(3));
		pick_resource(&spec.resource_type, &spec.resource_id);
		spec.nusers = 1 + pick(3);
		for (size_t u = 0; u < spec.nusers; u++)
			users[u] = userpool[pick(USER_POOL)];
		if (pick(10) == 0)
			spec.expires_at = now + 1 + pick(TWO_YEARS);
		t.now = created;
		check(vk_key_create(&t, &spec, id, token, err), "create", err);
		if (pick(3) == 0) {
			const char *type, *rid;

			pick_resource(&type, &rid);
			check(vk_store_exec(db, "grant", err, NULL,
			                    "INSERT OR IGNORE INTO grants (key_id, role,"
			                    " resource_type, resource_id) VALUES (?1, ?2, ?3, ?4)",
			                    "tttt", id, vk_role_name(1 + pick(3)), type, rid),
			      "grant", err);
		}
		if (pick(20) == 0) {
			/* rotated a minute after creation, the old secret valid a week from now */
			t.now = created + 60;
			check(vk_key_rotate(&t, id, now + 7 * 86400 - t.now, token, err), "rotate",
			      err);
		}
		if ((k + 1) % BATCH == 0) {
			check(vk_txn_commit(&t, err), "commit", err);
			check(vk_txn_begin(&t, err), "begin", err);
		}
		if ((k + 1) % 1000 == 0 || k + 1 == nkeys)
			progress(k + 1, nkeys, start);
	}
	sodium_memzero(token, sizeof token);
	check(vk_txn_commit(&t, err), "commit", err);
	if (sqlite3_close(db) != SQLITE_OK)
		fail(path, "cannot close");
	return 0;
}
