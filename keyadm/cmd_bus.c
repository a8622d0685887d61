/*
 * cmd_bus.c - the bus's identities (SPEC §9): bus init and credentials;
 * join tokens (machines join-token, join-tokens list and revoke).
 *
 * Security rules for this file:
 *  1. Every file made here is created once and never overwritten (O_EXCL);
 *     seeds and credentials with mode 0600. A command that fails removes
 *     the files it made and leaves the store as it was.
 *  2. The operator's own seed goes only into the file bus init writes
 *     beside bus.conf, to be kept offline; what the authority keeps online
 *     is in [sync] account_key (busid.h).
 *  3. A join token is printed once; the store keeps only a verifier of its
 *     secret, and no log or audit event holds either.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "busid.h"
#include "cert.h"
#include "fleet.h"
#include "identity.h"
#include "join.h"
#include "jwt.h"
#include "keyadm.h"
#include "record.h"
#include "signer.h"
#include "token.h"
#include "tree.h"

#define TTL_DEFAULT_S (60 * 60)
#define TTL_MAX_S     (7 * 24 * 60 * 60)
#define USES_MAX      100000
#define PATH_BYTES    4096
#define CONF_MAX      (4 * VK_JOIN_JWT_MAX + 1024)

/* A key pair made from a random seed, in sodium_malloc() memory. */
struct pair {
	unsigned char seed[32], pk[32], sk[crypto_sign_SECRETKEYBYTES];
	char pub[VK_NKEY_PUBLIC_LEN + 1];
};

static struct pair *
pair_new(enum vk_nkey_type t)
{
	struct pair *p = sodium_malloc(sizeof *p);

	if (p != NULL) {
		randombytes_buf(p->seed, sizeof p->seed);
		vk_identity_keypair(p->seed, p->pk, p->sk);
		vk_nkey_public(t, p->pk, p->pub);
	}
	return p;
}

static void
pair_free(struct pair *p)
{
	if (p != NULL)
		sodium_free(p);
}

struct vk_bus_keys *
ka_bus_keys_load(struct ka_ctx *ctx)
{
	struct vk_bus_keys *k = sodium_malloc(sizeof *k);
	char *text = sodium_malloc(VK_BUS_KEYS_TEXT_MAX), err[VK_ERRLEN];
	size_t len;
	vk_rc rc;

	if (k == NULL || text == NULL) {
		ka_fail(VK_ERR_NOMEM, "out of memory");
	} else if ((rc = vk_secret_file_read(ctx->cfg.sync.account_key, text, VK_BUS_KEYS_TEXT_MAX,
	                                     &len, err)) != VK_OK) {
		ka_fail(rc, err);
	} else if (vk_bus_keys_parse(text, len, k) != 0) {
		snprintf(err, sizeof err, "%s is not the bus's keys (keyadm bus init writes them)",
		         ctx->cfg.sync.account_key);
		ka_fail(VK_ERR_STORE, err);
	} else {
		sodium_free(text);
		return k;
	}
	if (text != NULL)
		sodium_free(text);
	if (k != NULL)
		sodium_free(k);
	return NULL;
}

/* A .creds file at path for user p, whose JWT is jwt (rule 1). */
static vk_rc
creds_file(const char *path, const char *jwt, const struct pair *p, char err[VK_ERRLEN])
{
	char seed[VK_NKEY_SEED_LEN + 1], *text;
	vk_rc rc;

	vk_nkey_seed(VK_NKEY_USER, p->seed, seed);
	text = vk_creds_format(jwt, seed);
	sodium_memzero(seed, sizeof seed);
	if (text == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	rc = vk_file_write(path, text, strlen(text), 0600, 0, err);
	sodium_memzero(text, strlen(text));
	free(text);
	return rc;
}

/* ---- bus init ------------------------------------------------------------------------- */

enum {
	P_OPERATOR,
	P_OPERATOR_SIGNING,
	P_SYSTEM,
	P_VK,
	P_MACHINES,
	P_MACHINES_SIGNING,
	P_AUTHORITY,
	P_SYSTEM_USER,
	P_COUNT
};

static const enum vk_nkey_type pair_types[P_COUNT] = {
    VK_NKEY_OPERATOR, VK_NKEY_OPERATOR, VK_NKEY_ACCOUNT, VK_NKEY_ACCOUNT,
    VK_NKEY_ACCOUNT,  VK_NKEY_ACCOUNT,  VK_NKEY_USER,    VK_NKEY_USER,
};

static struct bus_init {
	struct pair *p[P_COUNT];
	char *jwt_operator, *jwt_system, *jwt_vk, *jwt_machines, *claims_machines, *claims_vk;
	char conf[PATH_BYTES], operator_file[PATH_BYTES];
	const char *made[6]; /* the files made so far, removed if the command fails */
	int nmade;
} bi;

/* A JWT signed by pair `by` for subject pair `of`, with the claims made by claims_of. */
static char *
sign(int by, int of, const char *name, int64_t now, char *claims)
{
	char *jwt = NULL;

	if (claims != NULL)
		jwt = vk_jwt_encode(bi.p[by]->sk, pair_types[by], bi.p[of]->pub, name, now, 0,
		                    claims);
	free(claims);
	return jwt;
}

/* A file of bus init's (text, or p's credentials with JWT text): made, or why not. */
static vk_rc
made(const char *path, const char *text, mode_t mode, const struct pair *p, char err[VK_ERRLEN])
{
	vk_rc rc = p != NULL ? creds_file(path, text, p, err)
	                     : vk_file_write(path, text, strlen(text), mode, 0, err);

	if (rc == VK_OK)
		bi.made[bi.nmade++] = path;
	return rc;
}

static vk_rc
do_bus_init(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	static const struct {
		const char *name;
		int pair;
	} metas[] = {
	    {VK_META_BUS_OPERATOR, P_OPERATOR}, {VK_META_BUS_OPERATOR_SIGNING, P_OPERATOR_SIGNING},
	    {VK_META_BUS_SYSTEM, P_SYSTEM},     {VK_META_BUS_VK, P_VK},
	    {VK_META_BUS_MACHINES, P_MACHINES}, {VK_META_BUS_MACHINES_SIGNING, P_MACHINES_SIGNING},
	};
	vk_rc rc;

	(void)ctx;
	for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++)
		if ((rc = vk_store_exec(t->db, "cannot record the bus", err, NULL,
		                        "INSERT INTO meta (name, value) VALUES (?1, ?2)", "tt",
		                        metas[i].name, bi.p[metas[i].pair]->pub)) != VK_OK)
			return rc;
	/* the accounts' claims as bus.conf holds them: nothing to send the bus at first */
	if ((rc = vk_store_exec(t->db, "cannot record the bus", err, NULL,
	                        "INSERT INTO meta (name, value) VALUES (?1, ?2), (?3, ?4)", "tttt",
	                        VK_META_BUS_SENT, bi.claims_machines, VK_META_BUS_VK_SENT,
	                        bi.claims_vk)) != VK_OK)
		return rc;
	return vk_txn_event(t, "bus.init", NULL, err, "operator %s, accounts VK %s, MACHINES %s",
	                    bi.p[P_OPERATOR]->pub, bi.p[P_VK]->pub, bi.p[P_MACHINES]->pub);
}

static int
report_bus_init(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_object('operator', ?1, 'system_account', ?2,"
		                     " 'vk_account', ?3, 'machines_account', ?4, 'bus_conf', ?5,"
		                     " 'operator_seed', ?6)",
		                     "tttttt", bi.p[P_OPERATOR]->pub, bi.p[P_SYSTEM]->pub,
		                     bi.p[P_VK]->pub, bi.p[P_MACHINES]->pub, bi.conf,
		                     bi.operator_file);
	printf("The bus's operator and accounts are made. Include %s in every nats-server\n"
	       "node's config, beside its own server_name, listen, cluster and jetstream\n"
	       "settings, and start the nodes. Keep %s offline: the operator's own seed,\n"
	       "needed only to change the operator. The authority's credentials are in %s,\n"
	       "the system account's in %s, and the keys it keeps online in %s.\n",
	       bi.conf, bi.operator_file, ctx->cfg.sync.credentials,
	       ctx->cfg.sync.system_credentials, ctx->cfg.sync.account_key);
	return KA_OK;
}

/* The text of bus.conf: the operator, the system account, and the resolver with the accounts. */
static char *
bus_conf_text(void)
{
	char *text = malloc(CONF_MAX);
	int n;

	if (text == NULL)
		return NULL;
	n = snprintf(text, CONF_MAX,
	             "# The viamkey fleet's bus, from keyadm bus init: include it in every\n"
	             "# nats-server node's config, beside that node's server_name, listen,\n"
	             "# cluster and jetstream settings. Account JWTs are kept in the\n"
	             "# directory below, relative to the node's working directory, and\n"
	             "# updated over the bus (a deleted machine's user is revoked there).\n"
	             "operator: \"%s\"\n"
	             "system_account: \"%s\"\n"
	             "resolver: {\n"
	             "  type: full\n"
	             "  dir: \"./viamkey-jwt\"\n"
	             "  allow_delete: false\n"
	             "  interval: \"2m\"\n"
	             "  timeout: \"2s\"\n"
	             "}\n"
	             "resolver_preload: {\n"
	             "  %s: \"%s\"\n"
	             "  %s: \"%s\"\n"
	             "  %s: \"%s\"\n"
	             "}\n",
	             bi.jwt_operator, bi.p[P_SYSTEM]->pub, bi.p[P_SYSTEM]->pub, bi.jwt_system,
	             bi.p[P_VK]->pub, bi.jwt_vk, bi.p[P_MACHINES]->pub, bi.jwt_machines);
	if (n < 0 || n >= CONF_MAX) {
		free(text);
		return NULL;
	}
	return text;
}

static int
bus_init(struct ka_ctx *ctx)
{
	const struct vk_sync_config *s = &ctx->cfg.sync;
	struct vk_bus_keys *keys = NULL;
	char err[VK_ERRLEN], *conf = NULL, *jwt_authority = NULL, *jwt_system_user = NULL,
	                     seed[VK_NKEY_SEED_LEN + 2], keys_text[VK_BUS_KEYS_TEXT_MAX];
	struct vk_bus_ids ids;
	int status = KA_FAIL;
	int64_t now = ctx->now;
	vk_rc rc;

	memset(&bi, 0, sizeof bi);
	if (ka_require(ctx, O_OUT))
		return KA_USAGE;
	if (s->credentials == NULL)
		return ka_usage_error(ctx,
		                      "set [sync] credentials: where the authority's .creds goes");
	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	if ((rc = vk_identity_ids(ctx->db, &ids, err)) != VK_ERR_NOTFOUND)
		return rc == VK_OK ? ka_fail(VK_ERR_CONFLICT, "the bus was made already: keyadm bus"
		                                              " init runs once")
		                   : ka_fail(rc, err);
	snprintf(bi.conf, sizeof bi.conf, "%s/bus.conf", ctx->args.val[O_OUT]);
	snprintf(bi.operator_file, sizeof bi.operator_file, "%s/operator.nk", ctx->args.val[O_OUT]);
	status = KA_FAIL;
	for (int i = 0; i < P_COUNT; i++)
		if ((bi.p[i] = pair_new(pair_types[i])) == NULL)
			goto nomem;
	if ((keys = sodium_malloc(sizeof *keys)) == NULL)
		goto nomem;
	memcpy(keys->seed[VK_BUS_OPERATOR_SIGNING], bi.p[P_OPERATOR_SIGNING]->seed, 32);
	memcpy(keys->seed[VK_BUS_VK], bi.p[P_VK]->seed, 32);
	memcpy(keys->seed[VK_BUS_MACHINES_SIGNING], bi.p[P_MACHINES_SIGNING]->seed, 32);
	if ((bi.jwt_operator = sign(
	         P_OPERATOR, P_OPERATOR, "viamkey", now,
	         vk_busid_operator(bi.p[P_OPERATOR_SIGNING]->pub, bi.p[P_SYSTEM]->pub))) == NULL ||
	    (bi.jwt_system = sign(P_OPERATOR_SIGNING, P_SYSTEM, "SYS", now, vk_busid_system())) ==
	        NULL ||
	    (bi.claims_vk = vk_busid_vk(s->bucket, bi.p[P_MACHINES]->pub)) == NULL ||
	    (bi.jwt_vk = sign(P_OPERATOR_SIGNING, P_VK, "VK", now, strdup(bi.claims_vk))) == NULL ||
	    (bi.claims_machines = vk_busid_machines(
	         s->bucket, bi.p[P_VK]->pub, bi.p[P_MACHINES_SIGNING]->pub, NULL, 0)) == NULL ||
	    (bi.jwt_machines = sign(P_OPERATOR_SIGNING, P_MACHINES, "MACHINES", now,
	                            strdup(bi.claims_machines))) == NULL ||
	    (jwt_authority = sign(P_VK, P_AUTHORITY, "authority", now, vk_busid_user())) == NULL ||
	    (jwt_system_user = sign(P_SYSTEM, P_SYSTEM_USER, "system", now, vk_busid_user())) ==
	        NULL ||
	    (conf = bus_conf_text()) == NULL)
		goto nomem;
	vk_nkey_seed(VK_NKEY_OPERATOR, bi.p[P_OPERATOR]->seed, seed);
	strcat(seed, "\n");
	vk_bus_keys_text(keys, keys_text);
	/* rule 1: all files made, or none; then the store */
	if ((rc = made(bi.conf, conf, 0644, NULL, err)) != VK_OK ||
	    (rc = made(bi.operator_file, seed, 0600, NULL, err)) != VK_OK ||
	    (rc = made(s->account_key, keys_text, 0600, NULL, err)) != VK_OK ||
	    (rc = made(s->credentials, jwt_authority, 0600, bi.p[P_AUTHORITY], err)) != VK_OK ||
	    (rc = made(s->system_credentials, jwt_system_user, 0600, bi.p[P_SYSTEM_USER], err)) !=
	        VK_OK) {
		status = ka_fail(rc, err);
		goto out;
	}
	status = ka_write(ctx, do_bus_init, report_bus_init);
	goto out;
nomem:
	status = ka_fail(VK_ERR_NOMEM, "out of memory");
out:
	if (status != KA_OK)
		for (int i = 0; i < bi.nmade; i++)
			(void)unlink(bi.made[i]);
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(keys_text, sizeof keys_text);
	if (keys != NULL)
		sodium_free(keys);
	for (int i = 0; i < P_COUNT; i++)
		pair_free(bi.p[i]);
	free(bi.jwt_operator);
	free(bi.jwt_system);
	free(bi.jwt_vk);
	free(bi.jwt_machines);
	free(bi.claims_machines);
	free(bi.claims_vk);
	free(jwt_authority);
	free(jwt_system_user);
	free(conf);
	return status;
}

/* ---- bus credentials ---------------------------------------------------------------------- */

static struct pair *cred_pair;

static vk_rc
do_bus_credentials(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	return vk_txn_event(t, "bus.credentials", NULL, err, "a VK user %s for %s, in %s",
	                    cred_pair->pub,
	                    ctx->args.val[O_NAME] != NULL ? ctx->args.val[O_NAME] : "authority",
	                    ctx->args.val[O_OUT]);
}

static int
report_bus_credentials(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('user', ?1, 'credentials', ?2)", "tt",
		                     cred_pair->pub, ctx->args.val[O_OUT]);
	printf("Credentials of the authority's account, for a standby or a new authority host,\n"
	       "are in %s (user %s).\n",
	       ctx->args.val[O_OUT], cred_pair->pub);
	return KA_OK;
}

static int
bus_credentials(struct ka_ctx *ctx)
{
	const char *name = ctx->args.val[O_NAME] != NULL ? ctx->args.val[O_NAME] : "authority";
	struct vk_bus_keys *keys = NULL;
	unsigned char pk[32], *sk = NULL;
	char err[VK_ERRLEN], *jwt = NULL;
	struct vk_bus_ids ids;
	int status;
	vk_rc rc;

	if (ka_require(ctx, O_OUT))
		return KA_USAGE;
	if (!vk_join_name_valid(name))
		return ka_usage_error(ctx, "--name must be letters, digits, '.', '-' or '_'");
	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	if ((rc = vk_identity_ids(ctx->db, &ids, err)) != VK_OK)
		return ka_fail(rc, err);
	if ((keys = ka_bus_keys_load(ctx)) == NULL)
		return KA_FAIL;
	status = KA_FAIL;
	if ((cred_pair = pair_new(VK_NKEY_USER)) == NULL ||
	    (sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "out of memory");
		goto out;
	}
	vk_identity_keypair(keys->seed[VK_BUS_VK], pk, sk);
	{
		char *claims = vk_busid_user();

		jwt = claims != NULL ? vk_jwt_encode(sk, VK_NKEY_ACCOUNT, cred_pair->pub, name,
		                                     ctx->now, 0, claims)
		                     : NULL;
		free(claims);
	}
	if (jwt == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = creds_file(ctx->args.val[O_OUT], jwt, cred_pair, err)) != VK_OK) {
		status = ka_fail(rc, err);
		goto out;
	}
	if ((status = ka_write(ctx, do_bus_credentials, report_bus_credentials)) != KA_OK)
		(void)unlink(ctx->args.val[O_OUT]);
out:
	free(jwt);
	if (sk != NULL)
		sodium_free(sk);
	pair_free(cred_pair);
	cred_pair = NULL;
	sodium_free(keys);
	return status;
}

/* ---- join tokens --------------------------------------------------------------------------- */

static struct join {
	struct vk_join_token tok;
	char *text;
	int64_t expires, uses;
	char user[VK_NKEY_PUBLIC_LEN + 1];
	unsigned char verifier[32];
} jt;

static vk_rc
do_join_token(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	vk_rc rc;

	if ((rc = vk_store_exec(t->db, "cannot record the join token", err, NULL,
	                        "INSERT INTO join_tokens (id, location_id, verifier, user_key,"
	                        " created_at, created_by, expires_at, uses)"
	                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	                        "tthtitii", jt.tok.id, ctx->args.val[O_LOCATION_ID], jt.verifier,
	                        sizeof jt.verifier, jt.user, t->now, t->actor, jt.expires,
	                        jt.uses)) != VK_OK)
		return rc;
	/* rule 3: the ID only */
	return vk_txn_event(
	    t, "join_token.create", NULL, err, "%s for location %s, %lld uses, until %lld",
	    jt.tok.id, ctx->args.val[O_LOCATION_ID], (long long)jt.uses, (long long)jt.expires);
}

static int
report_join_token(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(
		    ctx,
		    "SELECT json_object('token', ?1, 'id', ?2, 'expires_at', " KA_TIME_SQL(
		        "?3") ", 'uses', ?4)",
		    "ttii", jt.text, jt.tok.id, jt.expires, jt.uses);
	time_t until = (time_t)jt.expires;
	struct tm tm;
	char when[32] = "?";

	if (gmtime_r(&until, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%s\n", jt.text);
	/* on stderr: what to do with it, so that stdout is the token alone */
	fprintf(stderr,
	        "Join token %s: %lld use(s), until %s. On the new host:\n"
	        "  viamkey-syncd join --token-file FILE    (or --token -, to read it from stdin)\n",
	        jt.tok.id, (long long)jt.uses, when);
	return KA_OK;
}

/* What a new host trusts from then on: the root's first version, or the authority's key. */
static int
trust_of(struct ka_ctx *ctx, struct vk_join_token *t)
{
	struct vk_signer sig;
	sqlite3_stmt *st;
	char err[VK_ERRLEN];
	vk_rc rc;

	if ((rc = vk_signer_load(ctx->db, ctx->cfg.sync.signing_key, &sig, err)) != VK_OK)
		return ka_fail(rc, err);
	memcpy(t->signer, sig.pk, sizeof t->signer);
	memcpy(t->key, sig.pk, sizeof t->key);
	vk_signer_free(&sig);
	t->rooted = 0;
	if ((rc = vk_store_prepare(ctx->db, "cannot read the root", err, &st,
	                           "SELECT value FROM meta WHERE name = '" VK_META_ROOT_ORG "'",
	                           "")) != VK_OK)
		return ka_fail(rc, err);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
		t->rooted =
		    vk_public_key_parse((const char *)sqlite3_column_text(st, 0), t->key) == 0;
	sqlite3_finalize(st);
	return KA_OK;
}

static int
join_token(struct ka_ctx *ctx)
{
	const struct vk_sync_config *s = &ctx->cfg.sync;
	unsigned char pk[32], seed[32], raw[VK_KEY_ID_BYTES], *sk = NULL;
	struct vk_bus_keys *keys = NULL;
	char err[VK_ERRLEN], *claims = NULL;
	struct vk_bus_ids ids;
	int64_t ttl;
	int status;
	vk_rc rc;

	memset(&jt, 0, sizeof jt);
	jt.uses = 1;
	if (ka_require(ctx, O_LOCATION_ID) || ka_id(ctx, O_LOCATION_ID) ||
	    ka_duration(ctx, O_TTL, &ttl))
		return KA_USAGE;
	if (ctx->args.val[O_TTL] == NULL)
		ttl = TTL_DEFAULT_S;
	else if (ttl < 1 || ttl > TTL_MAX_S)
		return ka_usage_error(ctx, "--ttl must be from 1s to 7d");
	if (ka_number(ctx, O_USES, 1, USES_MAX, &jt.uses))
		return KA_USAGE;
	if (s->servers == NULL)
		return ka_usage_error(ctx, "set [sync] servers: a token names the bus to join");
	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	if ((rc = vk_identity_ids(ctx->db, &ids, err)) != VK_OK ||
	    (rc = vk_resource_exists(ctx->db, "location", ctx->args.val[O_LOCATION_ID], err)) !=
	        VK_OK)
		return ka_fail(rc, err);
	if ((status = trust_of(ctx, &jt.tok)) != KA_OK || (keys = ka_bus_keys_load(ctx)) == NULL)
		return KA_FAIL;
	jt.expires = ctx->now + ttl;
	vk_uuid_generate(raw);
	vk_uuid_format(raw, jt.tok.id);
	randombytes_buf(jt.tok.secret, sizeof jt.tok.secret);
	crypto_generichash(jt.verifier, sizeof jt.verifier, jt.tok.secret, sizeof jt.tok.secret,
	                   NULL, 0);
	snprintf(jt.tok.servers, sizeof jt.tok.servers, "%s", s->servers);
	snprintf(jt.tok.bucket, sizeof jt.tok.bucket, "%s", s->bucket);
	/* the token's bus user: made here, its seed in the token only */
	randombytes_buf(seed, sizeof seed);
	status = KA_FAIL;
	if ((sk = sodium_malloc(crypto_sign_SECRETKEYBYTES)) == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "out of memory");
		goto out;
	}
	vk_identity_keypair(seed, pk, sk);
	vk_nkey_public(VK_NKEY_USER, pk, jt.user);
	vk_nkey_seed(VK_NKEY_USER, seed, jt.tok.seed);
	vk_identity_keypair(keys->seed[VK_BUS_MACHINES_SIGNING], pk, sk);
	{
		char name[64], *jwt;

		snprintf(name, sizeof name, "join-%s", jt.tok.id);
		claims = vk_busid_joiner(s->bucket, jt.tok.id, ids.machines);
		jwt = claims != NULL ? vk_jwt_encode(sk, VK_NKEY_ACCOUNT, jt.user, name, ctx->now,
		                                     jt.expires, claims)
		                     : NULL;
		if (jwt == NULL || strlen(jwt) >= sizeof jt.tok.jwt) {
			free(jwt);
			status = ka_fail(VK_ERR_NOMEM, "out of memory");
			goto out;
		}
		snprintf(jt.tok.jwt, sizeof jt.tok.jwt, "%s", jwt);
		free(jwt);
	}
	if ((jt.text = vk_join_token_encode(&jt.tok)) == NULL) {
		status = ka_fail(VK_ERR_USAGE, "[sync] servers cannot be written into a token");
		goto out;
	}
	status = ka_write(ctx, do_join_token, report_join_token);
out:
	sodium_memzero(seed, sizeof seed);
	if (sk != NULL)
		sodium_free(sk);
	sodium_free(keys);
	free(claims);
	if (jt.text != NULL) {
		sodium_memzero(jt.text, strlen(jt.text));
		free(jt.text);
	}
	sodium_memzero(&jt, sizeof jt);
	return status;
}

static int
join_tokens_list(struct ka_ctx *ctx)
{
	static const char *const head[] = {"ID",   "LOCATION", "EXPIRES", "USES",
	                                   "USED", "REVOKED",  NULL};
	int status;

	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	if (ctx->json)
		return ka_print_json_array(
		    ctx,
		    "SELECT json_object('id', id, 'location_id', location_id, "
		    "'expires_at', " KA_TIME_SQL(
		        "expires_at") ", 'uses', uses, 'used', used, 'revoked',"
		                      " json(CASE WHEN revoked_at IS NULL THEN 'false' ELSE 'true' "
		                      "END)),"
		                      " created_at, id FROM join_tokens ORDER BY created_at, id",
		    "");
	return ka_print_table(
	    ctx, head,
	    "SELECT id, location_id, " KA_TIME_SQL(
	        "expires_at") ", uses, used,"
	                      " coalesce(" KA_TIME_SQL(
	                          "revoked_at") ", '-')"
	                                        " FROM join_tokens ORDER BY created_at, id",
	    "");
}

static vk_rc
do_join_revoke(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	const char *id = ctx->args.val[O_ID];
	char user[VK_NKEY_PUBLIC_LEN + 1] = "";
	sqlite3_stmt *st;
	int revoked = 0;
	vk_rc rc;

	if ((rc = vk_store_prepare(t->db, "cannot read the join token", err, &st,
	                           "SELECT user_key, revoked_at IS NOT NULL FROM join_tokens"
	                           " WHERE id = ?1",
	                           "t", id)) != VK_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(user, sizeof user, "%s", (const char *)sqlite3_column_text(st, 0));
		revoked = sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	if (user[0] == '\0') {
		vk_seterr(err, "no join token with ID %s", id);
		return VK_ERR_NOTFOUND;
	}
	if (revoked) {
		vk_seterr(err, "join token %s is revoked already", id);
		return VK_ERR_CONFLICT;
	}
	if ((rc = vk_store_exec(t->db, "cannot revoke the join token", err, NULL,
	                        "UPDATE join_tokens SET revoked_at = ?2 WHERE id = ?1", "ti", id,
	                        t->now)) != VK_OK ||
	    (rc = vk_identity_revoke(t, user, err)) != VK_OK)
		return rc;
	return vk_txn_event(t, "join_token.revoke", NULL, err, "%s", id);
}

static int
report_join_revoke(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('id', ?1, 'revoked', json('true'))",
		                     "t", ctx->args.val[O_ID]);
	printf("Revoked join token %s; its bus user ends with the next update of the bus.\n",
	       ctx->args.val[O_ID]);
	return KA_OK;
}

static int
join_tokens_revoke(struct ka_ctx *ctx)
{
	int status;

	if (ka_require(ctx, O_ID) || ka_id(ctx, O_ID))
		return KA_USAGE;
	if ((status = ka_require_authority(ctx)) != KA_OK)
		return status;
	return ka_write(ctx, do_join_revoke, report_join_revoke);
}

const struct ka_command ka_bus_commands[] = {
    {"bus", "init", bus_init, OPT(O_OUT), "--out DIR",
     "Make the bus's operator, accounts and credentials; write DIR/bus.conf for every node."},
    {"bus", "credentials", bus_credentials, OPT(O_OUT) | OPT(O_NAME), "--out FILE [--name NAME]",
     "Make credentials of the authority's account, for a standby."},
    {"machines", "join-token", join_token, OPT(O_LOCATION_ID) | OPT(O_TTL) | OPT(O_USES),
     "--location-id ID [--ttl DUR] [--uses N]",
     "Print a token that lets new hosts join the location (default 1h, one use)."},
    {"machines", "join-tokens list", join_tokens_list, 0, "", "List the join tokens."},
    {"machines", "join-tokens revoke", join_tokens_revoke, OPT(O_ID), "--id ID",
     "End a join token, and its bus user."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
