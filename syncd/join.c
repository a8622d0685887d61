/*
 * join.c - `viamkey-syncd join`: a new host joins the fleet with a join
 * token (SPEC §9).
 *
 *   viamkey-syncd join (--token TOKEN | --token-file FILE | --token -)
 *                      [--name NAME] [--config FILE] [--db FILE] [--force] [--verbose]
 *
 * It makes the machine's bus key pair, asks the authority with the bus user
 * the token carries, and once the authority's signed answer admits it,
 * writes the config (0644) and, beside the store, the credentials
 * nats.creds (0600: the daemon rewrites them when the machine moves, and
 * may write only in the store's directory), then brings the new replica in
 * step (one pass of the daemon) and prints the machine's ID.
 *
 * Security rules for this file:
 *  1. Nothing is written before the authority admitted the host: a token
 *     refused, a bus not reached, an answer the token's key did not sign,
 *     a directory missing, a config or credentials that exist (without
 *     --force), or a store at the replica's path that the daemon would not
 *     take as its replica (the authority's, or one with keys of its own)
 *     leave the host as it was. Every such case exits 1 saying why. A
 *     config of comments only (the package's) is no config: it is
 *     replaced.
 *  2. The token, and the seed of the key pair, never reach a log, the
 *     config or the store; they are wiped from memory once used. The seed
 *     goes only into the credentials file.
 *  3. From then on the host trusts what the token named (the root, or the
 *     authority's key), as [sync] root_key or authority_key.
 */
#include "autoconfig.h"

#include <getopt.h>
#include <libgen.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dial.h"
#include "join.h"
#include "jwt.h"
#include "record.h"
#include "store.h"
#include "syncd.h"

#define TOKEN_MAX   16384
#define ANSWER_WAIT 30000 /* ms: the authority admits a burst of joins one at a time */
#define PATH_BYTES  4096
#define CONF_MAX    (VK_JOIN_SERVERS_MAX + 2048)

static void
usage(FILE *f)
{
	fprintf(f,
	        "Usage: viamkey-syncd join (--token TOKEN | --token-file FILE | --token -)\n"
	        "                          [--name NAME] [--config FILE] [--db FILE] [--force]\n\n"
	        "Joins this host to the fleet with a join token (keyadm machines join-token):\n"
	        "writes the config and the bus credentials, and brings the replica in step.\n"
	        "  --token TOKEN     the token (shown by ps: prefer --token-file, or - for stdin)\n"
	        "  --token-file FILE read it from FILE\n"
	        "  --name NAME       the machine's name (default: the host name)\n"
	        "  --config FILE     the config to write (default %s)\n"
	        "  --db FILE         the replica's store ([store] path; default %s)\n"
	        "  --force           replace an existing config and credentials\n"
	        "See viamkey-syncd(8).\n",
	        VK_DEFAULT_CONFIG, VK_DEFAULT_STORE);
}

static int __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	fputs("viamkey-syncd join: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/*
 * The token's text from --token, a file or stdin ("-"), into sodium memory;
 * NULL after saying why. A token given on the command line is wiped there
 * once copied, so that ps shows it no longer (it may have, before).
 */
static char *
read_token(char *given, const char *file, size_t *len)
{
	char *text = sodium_malloc(TOKEN_MAX);
	FILE *f = NULL;

	if (text == NULL) {
		fail("%s", "out of memory");
		return NULL;
	}
	if (given != NULL && strcmp(given, "-") != 0) {
		*len = strlen(given);
		if (*len >= TOKEN_MAX)
			goto bad;
		memcpy(text, given, *len + 1);
		sodium_memzero(given, *len);
		return text;
	}
	if (file != NULL && (f = fopen(file, "re")) == NULL) {
		fail("cannot read the token file %s", file);
		sodium_free(text);
		return NULL;
	}
	*len = fread(text, 1, TOKEN_MAX - 1, f != NULL ? f : stdin);
	if (f != NULL)
		fclose(f);
	if (*len == 0 || *len == TOKEN_MAX - 1)
		goto bad;
	text[*len] = '\0';
	return text;
bad:
	fail("%s", "that is not a join token");
	sodium_free(text);
	return NULL;
}

static const char *
refusal_text(enum vk_join_refusal why)
{
	switch (why) {
	case VK_JOIN_WRONG:
		return "the authority does not know this token, or it was altered";
	case VK_JOIN_EXPIRED:
		return "this join token has expired: make a new one (keyadm machines join-token)";
	case VK_JOIN_USED:
		return "this join token is used up: make a new one (keyadm machines join-token)";
	case VK_JOIN_REVOKED:
		return "this join token was revoked";
	case VK_JOIN_NAME:
		return "the name is not one a machine may have: give --name";
	case VK_JOIN_BUSY:
	default:
		return "the authority could not admit this host now: try again";
	}
}

/*
 * Asks the authority to admit the host as name, with the bus user of the
 * token; its answer (verified with the token's signer) into a. 0, or 1
 * after saying why.
 */
static int
ask(const struct vk_join_token *tok, const char *name, const char user[VK_NKEY_PUBLIC_LEN + 1],
    struct vk_join_answer *a)
{
	struct vk_join_request r;
	char inbox[64], subject[VK_JOIN_BUCKET_MAX + 16], body[512], err[512], *reply = NULL;
	const char *json;
	natsConnection *nc;
	size_t len, json_len;
	int rc = 1, refused = 0;

	memset(&r, 0, sizeof r);
	snprintf(r.token, sizeof r.token, "%s", tok->id);
	memcpy(r.secret, tok->secret, sizeof r.secret);
	snprintf(r.name, sizeof r.name, "%.*s", (int)sizeof r.name - 1, name);
	snprintf(r.user, sizeof r.user, "%s", user);
	if (vk_join_request_encode(&r, body, sizeof body) != 0) {
		sodium_memzero(&r, sizeof r);
		return fail("\"%s\" is not a name a machine may have: give --name", name);
	}
	sodium_memzero(&r, sizeof r);
	snprintf(inbox, sizeof inbox, "_INBOX.join-%s", tok->id);
	snprintf(subject, sizeof subject, "vkjoin.%s", tok->bucket);
	if ((nc = sd_dial(tok->servers, NULL, tok->jwt, tok->seed, inbox, &refused, err,
	                  sizeof err)) == NULL) {
		sodium_memzero(body, sizeof body);
		if (refused)
			return fail(
			    "the bus refused the token's user: the token expired, was used up"
			    " or revoked, or is not this bus's (keyadm machines join-tokens"
			    " list tells; make a new one with keyadm machines join-token): %s",
			    err);
		return fail("%s", err);
	}
	if (sd_dial_request(nc, subject, body, strlen(body), ANSWER_WAIT, &reply, &len, err,
	                    sizeof err) != 0)
		fail("the authority did not answer: %s", err);
	else if (vk_record_verify(tok->signer, reply, len, &json, &json_len, err) != VK_OK ||
	         vk_join_answer_decode(json, json_len, a) != 0)
		fail("%s", "the answer is not signed by the key the token names (was the authority"
		           " rekeyed since the token was made? make a new one)");
	else if (a->why != VK_JOIN_OK)
		fail("%s", refusal_text(a->why));
	else
		rc = 0;
	sodium_memzero(body, sizeof body);
	free(reply);
	natsConnection_Close(nc);
	natsConnection_Destroy(nc);
	return rc;
}

/* The config of the new machine: rule 3. */
static int
config_text(const struct vk_join_token *tok, const struct vk_join_answer *a, const char *store,
            const char *creds, char out[CONF_MAX])
{
	char key[VK_PUBLIC_KEY_B64];
	int n;

	sodium_bin2base64(key, sizeof key, tok->key, sizeof tok->key,
	                  sodium_base64_VARIANT_ORIGINAL);
	n = snprintf(out, CONF_MAX,
	             "; viamkey.conf for machine %s of location %s, written by viamkey-syncd join\n"
	             "[store]\npath = %s\n"
	             "[machine]\nid = %s\n"
	             "[sync]\nservers = %s\nbucket = %s\ncredentials = %s\n%s = %s\n",
	             a->machine, a->location, store, a->machine, tok->servers, tok->bucket, creds,
	             tok->rooted ? "root_key" : "authority_key", key);
	return n > 0 && n < CONF_MAX ? 0 : -1;
}

/*
 * Whether the config at path sets nothing: a regular file of comments and
 * blank lines only, as the package installs it. Such a file is replaced.
 */
static int
sets_nothing(const char *path)
{
	char line[1024];
	const char *p;
	struct stat st;
	int nothing = 1;
	FILE *f = fopen(path, "re");

	if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		if (f != NULL)
			fclose(f);
		return 0;
	}
	while (nothing && fgets(line, sizeof line, f) != NULL) {
		for (p = line; *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'; p++)
			;
		nothing = *p == '\0' || *p == ';' || *p == '#';
	}
	fclose(f);
	return nothing;
}

/* Rule 1: the directory of path exists and is writable, before anything is asked; 0, or 1. */
static int
dir_ready(const char *path)
{
	char dir[PATH_BYTES];
	struct stat st;

	snprintf(dir, sizeof dir, "%s", path);
	if (stat(dirname(dir), &st) != 0 || !S_ISDIR(st.st_mode))
		return fail(
		    "%s is not a directory: make it first (the package makes /etc/viamkey and"
		    " /var/lib/viamkey)",
		    dir);
	if (access(dir, W_OK) != 0)
		return fail("cannot write in %s", dir);
	return 0;
}

/*
 * Rule 1: a store already at path is one the daemon takes as its replica,
 * before anything is asked; 0, or 1. None there is fine: the daemon's pass
 * makes it.
 */
static int
store_ready(const char *path)
{
	char err[VK_ERRLEN];
	struct stat st;
	sqlite3 *db = NULL;
	int rc = 0;

	if (lstat(path, &st) != 0)
		return 0;
	if (vk_store_open(path, VK_OPEN_LOGIN, 5000, &db, err) != VK_OK ||
	    sd_replica_usable(db, path, err) != 0)
		rc = fail("%s", err);
	sqlite3_close(db);
	return rc;
}

/* Rule 1: writes the credentials, then the config; neither is left if the other fails. */
static int
write_files(const char *config, const char *conf, const char *creds_path, const char *jwt,
            const char *seed, int force, int replace_config)
{
	char err[VK_ERRLEN], *creds = vk_creds_format(jwt, seed);
	vk_rc rc;

	if (creds == NULL)
		return fail("%s", "out of memory");
	rc = vk_file_write(creds_path, creds, strlen(creds), 0600, force, err);
	sodium_memzero(creds, strlen(creds));
	free(creds);
	if (rc != VK_OK)
		return fail("%s", err);
	if ((rc = vk_file_write(config, conf, strlen(conf), 0644, force || replace_config, err)) !=
	    VK_OK) {
		(void)unlink(creds_path);
		return fail("%s", err);
	}
	return 0;
}

int
sd_join(int argc, char **argv)
{
	static const struct option options[] = {
	    {"token", required_argument, NULL, 't'},
	    {"token-file", required_argument, NULL, 'f'},
	    {"name", required_argument, NULL, 'n'},
	    {"config", required_argument, NULL, 'c'},
	    {"db", required_argument, NULL, 'd'},
	    {"force", no_argument, NULL, 'F'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *token = NULL;
	const char *file = NULL, *name = NULL, *store = VK_DEFAULT_STORE,
	           *config = getenv("VIAMKEY_CONFIG");
	char host[VK_JOIN_NAME_MAX + 1], creds_path[PATH_BYTES], dir[PATH_BYTES], conf[CONF_MAX],
	    user[VK_NKEY_PUBLIC_LEN + 1], seed_text[VK_NKEY_SEED_LEN + 1], err[VK_ERRLEN];
	unsigned char seed[32], pk[32], sk[crypto_sign_SECRETKEYBYTES];
	struct vk_join_token *tok = NULL;
	struct vk_join_answer a;
	struct vk_config cfg;
	struct stat st;
	char *text = NULL;
	size_t len;
	int c, force = 0, status = 1;

	if (config == NULL || *config == '\0')
		config = VK_DEFAULT_CONFIG;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 't':
			token = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'd':
			store = optarg;
			break;
		case 'F':
			force = 1;
			break;
		case 'v':
			sd_log_verbose(1);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || (token == NULL) == (file == NULL)) {
		usage(stderr);
		return 2;
	}
	if (config[0] != '/' || store[0] != '/')
		return fail("%s", "--config and --db must be absolute paths");
	/* beside the store: the daemon may write there (a new JWT), not in /etc */
	snprintf(dir, sizeof dir, "%s", store);
	snprintf(creds_path, sizeof creds_path, "%s/nats.creds", dirname(dir));
	/* rule 1: what exists stays, unless --force or it sets nothing */
	if (!force && lstat(config, &st) == 0 && !sets_nothing(config))
		return fail("%s exists: --force replaces it", config);
	if (!force && lstat(creds_path, &st) == 0)
		return fail("%s exists: --force replaces it", creds_path);
	if (dir_ready(config) != 0 || dir_ready(store) != 0 || store_ready(store) != 0)
		return 1;
	if (name == NULL) {
		if (gethostname(host, sizeof host - 1) != 0)
			return fail("%s", "cannot read the host name: give --name");
		host[sizeof host - 1] = '\0';
		name = host;
	}
	if (!vk_join_name_valid(name))
		return fail("\"%s\" is not a name a machine may have (letters, digits, '.', '-',"
		            " '_'): give --name",
		            name);
	if ((tok = sodium_malloc(sizeof *tok)) == NULL)
		return fail("%s", "out of memory");
	if ((text = read_token(token, file, &len)) == NULL)
		goto out;
	if (vk_join_token_decode(text, len, tok) != 0) {
		fail("%s", "that is not a join token (keyadm machines join-token prints one)");
		goto out;
	}
	/* the machine's key pair: rule 2 */
	randombytes_buf(seed, sizeof seed);
	crypto_sign_seed_keypair(pk, sk, seed);
	vk_nkey_public(VK_NKEY_USER, pk, user);
	vk_nkey_seed(VK_NKEY_USER, seed, seed_text);
	if (ask(tok, name, user, &a) != 0)
		goto out;
	if (config_text(tok, &a, store, creds_path, conf) != 0) {
		fail("%s", "the config does not fit");
		goto out;
	}
	if (write_files(config, conf, creds_path, a.jwt, seed_text, force,
	                lstat(config, &st) == 0) != 0)
		goto out;
	fprintf(stderr,
	        "viamkey-syncd join: joined as machine %s (%s) of location %s; wrote %s"
	        " and %s; bringing the replica in step\n",
	        a.machine, name, a.location, config, creds_path);
	if (vk_config_load(config, &cfg, err) != VK_OK) {
		fail("%s", err);
		goto out;
	}
	/* joined either way: the daemon, once started, goes on from where this pass got */
	if (sd_machine(&cfg, cfg.store_path, 1) != 0)
		fprintf(stderr, "viamkey-syncd join: joined, but the replica is not in step yet;"
		                " start viamkey-syncd, which goes on\n");
	vk_config_free(&cfg);
	printf("%s\n", a.machine);
	status = 0;
out:
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(sk, sizeof sk);
	sodium_memzero(seed_text, sizeof seed_text);
	if (text != NULL)
		sodium_free(text);
	if (tok != NULL)
		sodium_free(tok);
	return status;
}
