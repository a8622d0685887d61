/*
 * timing_test - an unknown key ID must cost what a wrong secret costs.
 *
 * Builds a real store file with common/ (a machine, the key under test and
 * some others) and times vk_authorize(), which opens and closes the store
 * for each decision as the module does, for tokens with a valid checksum
 * and a random key ID, and for tokens of the known key with a wrong secret.
 * The two kinds are interleaved call by call, in ROUNDS rounds of CALLS
 * calls each, after a warm-up; the test compares the medians of the
 * per-round medians and passes when they are within 10% of each other.
 * Noise on a shared machine is met with up to ATTEMPTS attempts; it fails
 * only when every attempt is out of bounds.
 *
 * It then holds vk_verifier_check() to the same bound for a dummy
 * verification (an unknown key's, or a missing secret's) against a real
 * one, and prints one verification's share of a decision, which shows how
 * small a difference the first comparison can miss.
 */
#include "autoconfig.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authz.h"
#include "duration.h"
#include "keys.h"
#include "store.h"
#include "txn.h"
#include "verifier.h"

#define ROUNDS    20
#define CALLS     200
#define WARMUP    500
#define ATTEMPTS  3
#define TOKENS    16 /* distinct tokens of each kind, used in turn */
#define OTHERS    100
#define MAX_RATIO 1.10

static char dir[4096];
static char path[sizeof dir + 16];
static int64_t last_median; /* of the wrong-secret decisions, in the last attempt */

/* Removes the store, whatever files SQLite left beside it, and the directory. */
static void
cleanup(void)
{
	static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};

	if (dir[0] == '\0' || path[0] == '\0')
		return;
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		char file[sizeof path + 16];

		snprintf(file, sizeof file, "%s%s", path, suffixes[i]);
		(void)unlink(file);
	}
	(void)rmdir(dir);
}

static void
die(const char *what, const char *err)
{
	fprintf(stderr, "timing_test: %s: %s\n", what, err);
	cleanup();
	exit(99);
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t
median(int64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_i64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void
new_id(char out[VK_UUID_STRLEN + 1])
{
	unsigned char id[VK_KEY_ID_BYTES];

	vk_uuid_generate(id);
	vk_uuid_format(id, out);
}

/* A store with one organization > location > machine and 1 + OTHERS keys; the key's token. */
static void
make_store(char machine[VK_UUID_STRLEN + 1], char token[VK_TOKEN_LEN + 1])
{
	static const char *const users[] = {"vkt-user"};
	char org[VK_UUID_STRLEN + 1], loc[VK_UUID_STRLEN + 1], id[VK_UUID_STRLEN + 1];
	char other[VK_TOKEN_LEN + 1], err[VK_ERRLEN];
	int64_t now = vk_now();
	sqlite3 *db;
	struct vk_txn t = {.actor = "timing_test", .now = now};
	struct vk_key_spec spec = {
	    .name = "timed",
	    .role = VK_ROLE_OPERATOR,
	    .resource_type = "machine",
	    .users = users,
	    .nusers = 1,
	};

	if (vk_store_open(path, VK_OPEN_INIT, 5000, &db, err) != VK_OK)
		die("create the store", err);
	new_id(org);
	new_id(loc);
	new_id(machine);
	spec.resource_id = machine;
	t.db = db;
	if (vk_txn_begin(&t, err) != VK_OK ||
	    vk_store_exec(db, "org", err, NULL,
	                  "INSERT INTO organizations (id, name, created_at) VALUES (?1, 'o', ?2)",
	                  "ti", org, now) != VK_OK ||
	    vk_store_exec(db, "location", err, NULL,
	                  "INSERT INTO locations (id, org_id, name, created_at)"
	                  " VALUES (?1, ?2, 'l', ?3)",
	                  "tti", loc, org, now) != VK_OK ||
	    vk_store_exec(db, "machine", err, NULL,
	                  "INSERT INTO machines (id, location_id, name, created_at)"
	                  " VALUES (?1, ?2, 'm', ?3)",
	                  "tti", machine, loc, now) != VK_OK)
		die("fill the store", err);
	for (int i = 0; i < OTHERS / 2; i++)
		if (vk_key_create(&t, &spec, id, other, err) != VK_OK)
			die("create a key", err);
	if (vk_key_create(&t, &spec, id, token, err) != VK_OK)
		die("create the key", err);
	for (int i = 0; i < OTHERS / 2; i++)
		if (vk_key_create(&t, &spec, id, other, err) != VK_OK)
			die("create a key", err);
	sodium_memzero(other, sizeof other);
	if (vk_txn_commit(&t, err) != VK_OK)
		die("commit", err);
	sqlite3_close(db);
}

struct kind {
	const char *name;
	vk_reason expect;
	char tokens[TOKENS][VK_TOKEN_LEN + 1];
};

static void
decide(const struct vk_login *lg, const char *machine, const char *token, struct vk_result *res)
{
	struct vk_request req = {
	    .token = token,
	    .token_len = strlen(token),
	    .user = "vkt-user",
	    .machine_id = machine,
	    .required = VK_ROLE_OPERATOR,
	    .now = vk_now(),
	};

	vk_authorize(lg, &req, res);
}

static int64_t
timed(const struct vk_login *lg, const char *machine, const char *token)
{
	struct vk_result res;
	int64_t t0 = now_ns();

	decide(lg, machine, token, &res);
	return now_ns() - t0;
}

/* One attempt; returns 1 when the medians are within bounds. */
static int
attempt(const struct vk_login *lg, const char *machine, struct kind *a, struct kind *b, int n)
{
	static int64_t ra[ROUNDS], rb[ROUNDS], ca[CALLS], cb[CALLS];
	int64_t ma, mb;
	double ratio;

	for (int i = 0; i < WARMUP; i++) {
		(void)timed(lg, machine, a->tokens[i % TOKENS]);
		(void)timed(lg, machine, b->tokens[i % TOKENS]);
	}
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < CALLS; i++) {
			const char *ta = a->tokens[(r + i) % TOKENS],
			           *tb = b->tokens[(r + i) % TOKENS];

			if (i % 2 == 0) {
				ca[i] = timed(lg, machine, ta);
				cb[i] = timed(lg, machine, tb);
			} else {
				cb[i] = timed(lg, machine, tb);
				ca[i] = timed(lg, machine, ta);
			}
		}
		ra[r] = median(ca, CALLS);
		rb[r] = median(cb, CALLS);
	}
	ma = median(ra, ROUNDS);
	mb = median(rb, ROUNDS);
	last_median = mb;
	ratio = ma > mb ? (double)ma / (double)mb : (double)mb / (double)ma;
	printf("attempt %d: median %s %lld ns, %s %lld ns, ratio %.3f (at most %.2f)\n", n, a->name,
	       (long long)ma, b->name, (long long)mb, ratio, MAX_RATIO);
	return ratio <= MAX_RATIO;
}

/*
 * A dummy verification (what an unknown key or a missing secret slot runs)
 * must cost what a real one costs; and one verification's share of a
 * decision shows how large a difference the 10% bound can catch.
 */
static int
verifier_attempt(const char *token, int64_t decision_ns, int n)
{
	static int64_t ra[ROUNDS], rb[ROUNDS], ca[CALLS], cb[CALLS];
	unsigned char salt[VK_SALT_BYTES], v[VK_VERIFY_BYTES];
	struct vk_token t;
	int64_t ma, mb, t0;
	double ratio;

	if (vk_token_parse(token, strlen(token), &t) != VK_TOKEN_OK)
		die("parse", "the wrong-secret token does not parse");
	vk_verifier_make(&t, salt, v);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < CALLS; i++) {
			t0 = now_ns();
			(void)vk_verifier_check(&t, VK_ALG_CURRENT, salt, sizeof salt, v, sizeof v);
			ca[i] = now_ns() - t0;
			t0 = now_ns();
			(void)vk_verifier_check(&t, NULL, NULL, 0, NULL, 0);
			cb[i] = now_ns() - t0;
		}
		ra[r] = median(ca, CALLS);
		rb[r] = median(cb, CALLS);
	}
	vk_token_wipe(&t);
	ma = median(ra, ROUNDS);
	mb = median(rb, ROUNDS);
	ratio = ma > mb ? (double)ma / (double)mb : (double)mb / (double)ma;
	printf("attempt %d: median verification %lld ns, dummy verification %lld ns, ratio %.3f"
	       " (at most %.2f); one verification is %.1f%% of a decision\n",
	       n, (long long)ma, (long long)mb, ratio, MAX_RATIO,
	       100.0 * (double)ma / (double)decision_ns);
	return ratio <= MAX_RATIO;
}

int
main(void)
{
	static struct kind unknown = {"unknown key", VK_REASON_UNKNOWN_KEY, {{0}}};
	static struct kind wrong = {"wrong secret", VK_REASON_WRONG_SECRET, {{0}}};
	char machine[VK_UUID_STRLEN + 1], token[VK_TOKEN_LEN + 1];
	const char *tmp = getenv("TMPDIR");
	int n;
	struct vk_token t;
	struct vk_result res;
	struct vk_login lg = {path, 100, -1, 0}; /* no last-use writes, no staleness */
	int ok = 0, vok = 0;

	if (sodium_init() < 0)
		die("libsodium", "cannot initialise");
	umask(077);
	n = snprintf(dir, sizeof dir, "%s/vk-timing.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof dir || mkdtemp(dir) == NULL)
		die("a temporary directory",
		    n < 0 || (size_t)n >= sizeof dir ? "TMPDIR is too long" : strerror(errno));
	snprintf(path, sizeof path, "%s/keys.db", dir);
	make_store(machine, token);

	/* the same key ID with other secrets; random key IDs with valid checksums */
	if (vk_token_parse(token, strlen(token), &t) != VK_TOKEN_OK)
		die("parse", "the new token does not parse");
	for (int i = 0; i < TOKENS; i++) {
		vk_token_new_secret(&t);
		vk_token_format(&t, wrong.tokens[i]);
	}
	for (int i = 0; i < TOKENS; i++) {
		vk_token_generate(&t);
		vk_token_format(&t, unknown.tokens[i]);
	}
	vk_token_wipe(&t);

	/* both kinds are denied, for the reason they stand for; the real token is allowed */
	decide(&lg, machine, token, &res);
	if (res.decision != VK_DECISION_ALLOW)
		die("the key's own token",
		    res.err[0] != '\0' ? res.err : vk_reason_name(res.reason));
	for (int i = 0; i < TOKENS; i++) {
		decide(&lg, machine, unknown.tokens[i], &res);
		if (res.decision != VK_DECISION_DENY || res.reason != unknown.expect)
			die("an unknown key", vk_reason_name(res.reason));
		decide(&lg, machine, wrong.tokens[i], &res);
		if (res.decision != VK_DECISION_DENY || res.reason != wrong.expect)
			die("a wrong secret", vk_reason_name(res.reason));
	}
	sodium_memzero(token, sizeof token);

	printf("%d rounds of %d calls of each kind, interleaved, after %d warm-up calls\n", ROUNDS,
	       CALLS, WARMUP);
	for (n = 1; n <= ATTEMPTS && !ok; n++)
		ok = attempt(&lg, machine, &unknown, &wrong, n);
	for (n = 1; n <= ATTEMPTS && !vok; n++)
		vok = verifier_attempt(wrong.tokens[0], last_median, n);

	cleanup();
	printf("%s: unknown key and wrong secret: medians %swithin 10%% of each other\n",
	       ok ? "PASS" : "FAIL", ok ? "" : "not ");
	printf("%s: dummy and real verification: medians %swithin 10%% of each other\n",
	       vok ? "PASS" : "FAIL", vok ? "" : "not ");
	return ok && vok ? 0 : 1;
}
