/*
 * cmd_authority.c - the fleet's authority and its root of trust (SPEC §8,
 * §10): root init and rotate; authority init (with or without a root,
 * standby or not), keygen, certify, promote and rekey.
 *
 * Security rules for this file:
 *  1. A key file is created once and never overwritten (O_EXCL), except a
 *     root key's own file, rewritten whole (a new file renamed over it) to
 *     record its version; no secret half is ever printed.
 *  2. A certificate is made only with a root key of the version the fleet
 *     holds, and only for the epoch above the authority's: an epoch is
 *     never certified twice by this command for different keys.
 *  3. A rekey leaves either the old key and epoch in force, or the new
 *     ones, wherever it is cut short: the new key is written beside the old
 *     one first, the store then names it, and only then does it replace the
 *     old one (signer.h); running it again finishes what was left.
 *  4. A promotion changes the standby's store only through its daemon,
 *     once the daemon holds the authority lease (syncd/standby.c).
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cert.h"
#include "fleet.h"
#include "keyadm.h"
#include "record.h"
#include "signer.h"

#define HOST_NAME_BYTES 256
#define PROMOTE_WAIT_S  30
#define PROMOTE_STEP_MS 200
#define CERT_FILE_MAX   1024

/* ---- root key files: the key, and "version N" ------------------------------------ */

struct root_key {
	unsigned char *sk; /* sodium_malloc()ed */
	unsigned char pk[VK_PUBLIC_KEY_BYTES];
	int64_t version;
};

static void
root_free(struct root_key *r)
{
	sodium_free(r->sk);
	r->sk = NULL;
}

static int
root_load(const char *path, struct root_key *r)
{
	char err[VK_ERRLEN], trailer[64];
	vk_rc rc;

	memset(r, 0, sizeof *r);
	if ((r->sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	if ((rc = vk_key_file_read(path, r->sk, trailer, sizeof trailer, err)) != VK_OK) {
		root_free(r);
		return ka_fail(rc, err);
	}
	if (sscanf(trailer, "version %" SCNd64, &r->version) != 1 || r->version < 1) {
		root_free(r);
		snprintf(err, sizeof err, "%s is not a root key file (keyadm root init makes one)",
		         path);
		return ka_fail(VK_ERR_USAGE, err);
	}
	crypto_sign_ed25519_sk_to_pk(r->pk, r->sk);
	return KA_OK;
}

static void
b64(const unsigned char pk[VK_PUBLIC_KEY_BYTES], char out[VK_PUBLIC_KEY_B64])
{
	sodium_bin2base64(out, VK_PUBLIC_KEY_B64, pk, VK_PUBLIC_KEY_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
}

static void
host_name(char out[HOST_NAME_BYTES])
{
	if (gethostname(out, HOST_NAME_BYTES - 1) != 0)
		snprintf(out, HOST_NAME_BYTES, "unknown");
	out[HOST_NAME_BYTES - 1] = '\0';
	/* a certificate names it: printable ASCII, no quote or backslash, no space */
	for (char *p = out; *p != '\0'; p++)
		if (*p < 0x21 || *p > 0x7e || *p == '"' || *p == '\\')
			*p = '-';
	out[VK_CERT_NAME_MAX - 1] = '\0';
}

/*
 * Root init, keygen and certify need no store: their JSON is made by an
 * SQLite of no file (ka_print_json), so that it is escaped the one way.
 */
static int
no_store(struct ka_ctx *ctx)
{
	if (ctx->json && sqlite3_open(":memory:", &ctx->db) != SQLITE_OK)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	return KA_OK;
}

/* ---- root init ---------------------------------------------------------------------- */

static int
root_init(struct ka_ctx *ctx)
{
	const char *out = ctx->args.val[O_OUT];
	unsigned char *sk, pk[VK_PUBLIC_KEY_BYTES];
	char err[VK_ERRLEN], pub[VK_PUBLIC_KEY_B64];
	vk_rc rc;

	if (ka_require(ctx, O_OUT))
		return KA_USAGE;
	if (no_store(ctx) != KA_OK)
		return KA_FAIL;
	if ((sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	crypto_sign_keypair(pk, sk);
	rc = vk_key_file_write(out, sk, "version 1", 0, err);
	sodium_free(sk);
	if (rc != VK_OK)
		return ka_fail(rc, err);
	b64(pk, pub);
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('public_key', ?1, 'version', 1)", "t",
		                     pub);
	printf("The fleet's root key is in %s (version 1). Keep it offline: it is needed only\n"
	       "to certify signing keys and to rotate the root. Its public half, for every\n"
	       "machine's [sync] root_key:\n%s\n",
	       out, pub);
	return ka_flush("");
}

/* ---- authority init ------------------------------------------------------------------- */

struct init {
	int standby, rooted;
	char public_key[VK_PUBLIC_KEY_B64], root_origin[VK_PUBLIC_KEY_B64];
	char *cert;
	struct vk_cert c;
};

static struct init init;

static vk_rc
do_authority_init(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	char host[HOST_NAME_BYTES] = "";
	vk_rc rc;

	(void)ctx;
	host_name(host);
	if ((rc = vk_store_exec(t->db, "cannot make the store the authority", err, NULL,
	                        "INSERT INTO meta (name, value) VALUES ('" VK_META_ROLE "', ?1),"
	                        " ('" VK_META_AUTHORITY "', ?2)"
	                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                        "tt", init.standby ? "standby" : "authority", host)) != VK_OK)
		return rc;
	if (init.rooted &&
	    (rc = vk_store_exec(t->db, "cannot record the certificate", err, NULL,
	                        "INSERT INTO meta (name, value) VALUES ('" VK_META_AUTHORITY_EPOCH
	                        "', ?1), ('" VK_META_AUTHORITY_CERT "', ?2), ('" VK_META_ROOT_VER
	                        "', ?3) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                        "iti", init.c.epoch, init.cert, init.c.root)) != VK_OK)
		return rc;
	if (init.root_origin[0] != '\0' &&
	    (rc = vk_store_exec(t->db, "cannot record the root", err, NULL,
	                        "INSERT INTO meta (name, value) VALUES ('" VK_META_ROOT_ORG "', ?1)"
	                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                        "t", init.root_origin)) != VK_OK)
		return rc;
	if (init.standby)
		return vk_txn_event(t, "authority.init", NULL, err,
		                    "standby, epoch %lld, public key %s", (long long)init.c.epoch,
		                    init.public_key);
	t->authority = 1;
	if ((rc = vk_txn_changed_all(t, err)) != VK_OK)
		return rc;
	return vk_txn_event(t, "authority.init", NULL, err, "epoch %lld, public key %s",
	                    (long long)init.c.epoch, init.public_key);
}

static int
report_authority(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_object('public_key', ?1, 'epoch', ?2, 'standby',"
		                     " json(?3), 'root_key', ?4)",
		                     "titt", init.public_key, init.c.epoch,
		                     init.standby ? "true" : "false",
		                     init.root_origin[0] ? init.root_origin : NULL);
	if (init.standby)
		printf("This store is now a standby of the fleet's authority, certified for epoch "
		       "%lld.\n"
		       "Its daemon follows everything the authority publishes; keyadm authority\n"
		       "promote makes it the authority. Its public key:\n%s\n",
		       (long long)init.c.epoch, init.public_key);
	else if (init.rooted)
		printf("This store is now the fleet's authority, certified for epoch %lld. Its "
		       "public\n"
		       "key:\n%s\n",
		       (long long)init.c.epoch, init.public_key);
	else
		printf(
		    "This store is now the fleet's authority. Its public key, for every machine's\n"
		    "[sync] authority_key:\n%s\n",
		    init.public_key);
	if (init.root_origin[0] != '\0')
		printf("Every machine's [sync] root_key:\n%s\n", init.root_origin);
	return KA_OK;
}

/* The certificate in path: its value (malloc()ed) and what it says. */
static int
read_cert(const char *path, char **value, struct vk_cert *c)
{
	char text[CERT_FILE_MAX], err[VK_ERRLEN];
	FILE *f = fopen(path, "re");
	size_t n;

	if (f == NULL) {
		snprintf(err, sizeof err, "certificate %s: %s", path, strerror(errno));
		return ka_fail(VK_ERR_USAGE, err);
	}
	n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	text[strcspn(text, "\r\n")] = '\0';
	if (vk_cert_read(text, strlen(text), c) != 0) {
		snprintf(err, sizeof err,
		         "%s is not a certificate (keyadm authority certify makes one)", path);
		return ka_fail(VK_ERR_USAGE, err);
	}
	if ((*value = strdup(text)) == NULL)
		return ka_fail(VK_ERR_NOMEM, "out of memory");
	return KA_OK;
}

/* Whether rk is the root of [sync] root_key, when the config names one. */
static int
configured_root(struct ka_ctx *ctx, const struct root_key *rk)
{
	unsigned char pk[VK_PUBLIC_KEY_BYTES];

	return ctx->cfg.sync.root_key == NULL ||
	       (vk_public_key_parse(ctx->cfg.sync.root_key, pk) == 0 &&
	        sodium_memcmp(pk, rk->pk, sizeof pk) == 0);
}

/*
 * The key made by keyadm authority keygen, with its certificate made where
 * the root key is (into init): the certificate must name that key, and the
 * config's root_key, the root machines trust, must have signed a version-1
 * one. Sets init.public_key and init.root_origin.
 */
static int
take_cert(struct ka_ctx *ctx, const char *path)
{
	unsigned char pk[VK_PUBLIC_KEY_BYTES], root[VK_PUBLIC_KEY_BYTES], *sk;
	const char *root_key = ctx->cfg.sync.root_key;
	char err[VK_ERRLEN];
	int status;
	vk_rc rc;

	if (root_key == NULL || vk_public_key_parse(root_key, root) != 0)
		return ka_fail(VK_ERR_USAGE,
		               "with --certificate, [sync] root_key must be the fleet's"
		               " root (its public key, as keyadm root init printed it)");
	if ((status = read_cert(path, &init.cert, &init.c)) != KA_OK)
		return status;
	if ((sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "out of memory");
		goto fail;
	}
	rc = vk_signing_key_load(ctx->cfg.sync.signing_key, sk, err);
	if (rc == VK_OK)
		crypto_sign_ed25519_sk_to_pk(pk, sk);
	sodium_free(sk);
	if (rc != VK_OK) {
		status = ka_fail(rc, err);
		goto fail;
	}
	if (sodium_memcmp(pk, init.c.key, sizeof pk) != 0) {
		status = ka_fail(VK_ERR_CONFLICT,
		                 "the certificate is for another key than [sync] signing_key's");
		goto fail;
	}
	if (init.c.root == 1 && vk_cert_verify(root, init.cert, strlen(init.cert), &init.c) != 0) {
		status =
		    ka_fail(VK_ERR_CONFLICT, "the certificate is not signed by [sync] root_key");
		goto fail;
	}
	b64(pk, init.public_key);
	b64(root, init.root_origin);
	return KA_OK;
fail:
	free(init.cert);
	init.cert = NULL;
	return status;
}

static int
authority_init(struct ka_ctx *ctx)
{
	const char *path = ctx->cfg.sync.signing_key, *root = ctx->args.val[O_ROOT_KEY],
	           *cert = ctx->args.val[O_CERTIFICATE];
	struct root_key rk = {0};
	enum vk_fleet_role role;
	int64_t held = 0;
	char err[VK_ERRLEN], host[HOST_NAME_BYTES];
	int status, created = 0, recertify;
	vk_rc rc;

	memset(&init, 0, sizeof init);
	init.standby = ctx->args.val[O_STANDBY] != NULL;
	init.rooted = root != NULL || cert != NULL;
	if (root != NULL && cert != NULL)
		return ka_usage_error(ctx, "give --root-key or --certificate, not both");
	if (init.standby && !init.rooted)
		return ka_usage_error(ctx, "a standby needs --root-key or --certificate: it is"
		                           " certified for the next epoch in advance");
	if (ctx->args.val[O_EPOCH] != NULL && root == NULL)
		return ka_usage_error(ctx, "--epoch goes with --root-key");
	if (ka_number(ctx, O_EPOCH, 1, INT32_MAX, &init.c.epoch))
		return KA_USAGE;
	if ((status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	if ((rc = vk_fleet_role(ctx->db, &role, err)) != VK_OK)
		return ka_fail(rc, err);
	/*
	 * A certificate for a store that is already in the fleet: a standby's
	 * again (after a root rotation, or an epoch past its own), or the first
	 * of an authority of [sync] authority_key alone, which adopts a root.
	 */
	recertify = cert != NULL && ((role == VK_FLEET_STANDBY && init.standby) ||
	                             (role == VK_FLEET_AUTHORITY && !init.standby));
	if (recertify && role == VK_FLEET_AUTHORITY &&
	    (vk_store_query_int(ctx->db, "cannot read the store", err, &held,
	                        "SELECT count(*) FROM meta WHERE name = '" VK_META_AUTHORITY_EPOCH
	                        "'",
	                        "") != VK_OK ||
	     held > 0))
		return ka_fail(VK_ERR_CONFLICT, "this authority is certified already: a new key for"
		                                " the next epoch is keyadm authority rekey");
	ctx->own_cert = role == VK_FLEET_STANDBY && recertify;
	if (role != VK_FLEET_STANDALONE && !recertify)
		return ka_fail(VK_ERR_CONFLICT, role == VK_FLEET_AUTHORITY
		                                    ? "this store is already the fleet's authority"
		                                : role == VK_FLEET_STANDBY
		                                    ? "this store is already a standby"
		                                    : "this store is a replica; the authority is"
		                                      " another host");
	if (init.standby && !recertify &&
	    (vk_store_query_int(ctx->db, "cannot read the store", err, &held,
	                        "SELECT (SELECT count(*) FROM keys) + (SELECT"
	                        " count(*) FROM organizations)",
	                        "") != VK_OK ||
	     held > 0))
		return ka_fail(VK_ERR_CONFLICT,
		               "a standby starts empty: its daemon fills it from the"
		               " bus; this store holds keys or a tree of its own");
	if (cert != NULL) {
		if ((status = take_cert(ctx, cert)) != KA_OK)
			return status;
	} else {
		if (root != NULL && (status = root_load(root, &rk)) != KA_OK)
			return status;
		if (root != NULL && rk.version == 1 && !configured_root(ctx, &rk)) {
			root_free(&rk);
			return ka_fail(VK_ERR_CONFLICT,
			               "the root key given is not [sync] root_key");
		}
		if ((rc = vk_signing_key_create(path, init.public_key, err)) != VK_OK) {
			root_free(&rk);
			return ka_fail(rc, err);
		}
		created = 1;
		if (root != NULL) {
			if (init.c.epoch == 0)
				init.c.epoch = init.standby ? 2 : 1;
			init.c.root = rk.version;
			init.c.at = ctx->now;
			host_name(host);
			snprintf(init.c.name, sizeof init.c.name, "%.*s", VK_CERT_NAME_MAX - 1,
			         host);
			if (vk_public_key_parse(init.public_key, init.c.key) != 0 ||
			    (init.cert = vk_cert_make(rk.sk, &init.c)) == NULL) {
				root_free(&rk);
				(void)unlink(path);
				return ka_fail(VK_ERR_NOMEM, "cannot make the certificate");
			}
			if (rk.version == 1)
				b64(rk.pk, init.root_origin);
		}
		root_free(&rk);
	}
	if ((status = ka_write(ctx, do_authority_init, report_authority)) != KA_OK && created)
		(void)unlink(path); /* nothing refers to it: the next init may make a new one */
	free(init.cert);
	return status;
}

/* ---- keygen and certify -------------------------------------------------------------------- */

static int
authority_keygen(struct ka_ctx *ctx)
{
	char err[VK_ERRLEN], pub[VK_PUBLIC_KEY_B64];
	vk_rc rc;

	if (no_store(ctx) != KA_OK)
		return KA_FAIL;
	if ((rc = vk_signing_key_create(ctx->cfg.sync.signing_key, pub, err)) != VK_OK)
		return ka_fail(rc, err);
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('public_key', ?1)", "t", pub);
	printf("Signing key %s made. Certify its public half where the root key is\n"
	       "(keyadm authority certify --public-key ...), then give the certificate to\n"
	       "keyadm authority init --certificate:\n%s\n",
	       ctx->cfg.sync.signing_key, pub);
	return ka_flush("");
}

static int
authority_certify(struct ka_ctx *ctx)
{
	struct vk_cert c = {0};
	struct root_key rk;
	char err[VK_ERRLEN], *value;
	int status;

	if (ka_require(ctx, O_ROOT_KEY) || ka_require(ctx, O_PUBLIC_KEY) ||
	    ka_require(ctx, O_EPOCH))
		return KA_USAGE;
	if (ka_number(ctx, O_EPOCH, 1, INT32_MAX, &c.epoch))
		return KA_USAGE;
	if (vk_public_key_parse(ctx->args.val[O_PUBLIC_KEY], c.key) != 0)
		return ka_usage_error(ctx, "--public-key must be an Ed25519 public key in base64");
	if (no_store(ctx) != KA_OK)
		return KA_FAIL;
	snprintf(c.name, sizeof c.name, "%s",
	         ctx->args.val[O_NAME] != NULL ? ctx->args.val[O_NAME] : "authority");
	if ((status = root_load(ctx->args.val[O_ROOT_KEY], &rk)) != KA_OK)
		return status;
	c.root = rk.version;
	c.at = ctx->now;
	value = vk_cert_make(rk.sk, &c);
	root_free(&rk);
	if (value == NULL) {
		snprintf(err, sizeof err,
		         "--name must be printable ASCII without spaces or quotes");
		return ka_fail(VK_ERR_USAGE, err);
	}
	if (ctx->json)
		status = ka_print_json(
		    ctx,
		    "SELECT json_object('certificate', ?1, 'epoch', ?2, 'root_version',"
		    " ?3)",
		    "tii", value, c.epoch, c.root);
	else
		printf("%s\n", value);
	free(value);
	return status == KA_OK ? ka_flush("") : status;
}

/* ---- promote ------------------------------------------------------------------------------- */

static int
authority_promote(struct ka_ctx *ctx)
{
	struct timespec step = {0, PROMOTE_STEP_MS * 1000000L};
	int64_t timeout = PROMOTE_WAIT_S, waited = 0;
	enum vk_fleet_role role;
	char err[VK_ERRLEN], *result = NULL;
	int status;
	vk_rc rc;

	if (ka_duration(ctx, O_TIMEOUT, &timeout))
		return KA_USAGE;
	if (ctx->args.val[O_TIMEOUT] == NULL)
		timeout = PROMOTE_WAIT_S;
	if ((status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	if ((rc = vk_fleet_role(ctx->db, &role, err)) != VK_OK)
		return ka_fail(rc, err);
	if (role != VK_FLEET_STANDBY)
		return ka_fail(VK_ERR_CONFLICT, "this store is not a standby (keyadm authority init"
		                                " --standby)");
	/* rule 4: the request, for the daemon, which answers once it has done it or why not */
	if ((rc = vk_store_exec(ctx->db, "cannot ask for the promotion", err, NULL,
	                        "DELETE FROM meta WHERE name = '" VK_META_PROMOTED "';", "")) !=
	        VK_OK ||
	    (rc = vk_store_exec(ctx->db, "cannot ask for the promotion", err, NULL,
	                        "INSERT INTO meta (name, value) VALUES ('" VK_META_PROMOTE "', ?1)"
	                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                        "t", ctx->args.val[O_FORCE] != NULL ? "force" : "wait")) != VK_OK)
		return ka_fail(rc, err);
	for (;;) {
		sqlite3_stmt *st;

		if ((rc = vk_store_prepare(ctx->db, "cannot read the promotion", err, &st,
		                           "SELECT value FROM meta WHERE name = '" VK_META_PROMOTED
		                           "'",
		                           "")) != VK_OK)
			return ka_fail(rc, err);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			result = strdup((const char *)sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
		if (result != NULL || waited >= timeout * 1000)
			break;
		nanosleep(&step, NULL);
		waited += PROMOTE_STEP_MS;
	}
	if (result == NULL)
		return ka_fail(VK_ERR_IO, "the standby's viamkey-syncd did not answer in time; the"
		                          " request stands until it does (is it running?)");
	if (strcmp(result, "ok") != 0) {
		snprintf(err, sizeof err, "not promoted: %s", result);
		free(result);
		return ka_fail(VK_ERR_CONFLICT, err);
	}
	free(result);
	if (ctx->json)
		return ka_print_json(ctx,
		                     "SELECT json_object('promoted', json('true'), 'epoch',"
		                     " (SELECT CAST(value AS INTEGER) FROM meta WHERE name = "
		                     "'" VK_META_AUTHORITY_EPOCH "'))",
		                     "");
	printf("This host is now the fleet's authority; keyadm changes are made here.\n");
	return ka_flush("");
}

/* ---- rekey and root rotate ----------------------------------------------------------------- */

static struct rekey {
	int64_t epoch;
	char *cert;
	char public_key[VK_PUBLIC_KEY_B64];
	char *root_doc; /* root rotate: the new root version's document */
	int64_t root_version;
} rk_state;

/* The store's authority: rooted, and what it holds. */
static int
rooted_authority(struct ka_ctx *ctx, int64_t *epoch, int64_t *root_version)
{
	enum vk_fleet_role role;
	char err[VK_ERRLEN];
	int status;
	vk_rc rc;

	if ((status = ka_open(ctx, VK_OPEN_ADMIN)) != KA_OK)
		return status;
	if ((rc = vk_fleet_role(ctx->db, &role, err)) != VK_OK)
		return ka_fail(rc, err);
	if (role != VK_FLEET_AUTHORITY)
		return ka_fail(VK_ERR_CONFLICT, "this store is not the fleet's authority");
	if ((rc = vk_store_query_int(
	         ctx->db, "cannot read the epoch", err, epoch,
	         "SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_AUTHORITY_EPOCH
	         "'",
	         "")) != VK_OK ||
	    (rc = vk_store_query_int(
	         ctx->db, "cannot read the root version", err, root_version,
	         "SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_ROOT_VER "'",
	         "")) != VK_OK)
		return ka_fail(rc, err);
	if (*epoch < 1)
		return ka_fail(
		    VK_ERR_CONFLICT,
		    "this fleet trusts [sync] authority_key alone, with no root to certify a"
		    " new key (keyadm root init, and authority init --root-key, set one up)");
	return KA_OK;
}

/*
 * Whether the root key file rk is the fleet's root of the version held:
 * version 1's public key, as the store recorded it, followed through the
 * store's root versions, each signed by the one before (cert.h).
 */
static int
fleet_root(struct ka_ctx *ctx, const struct root_key *rk, int64_t version)
{
	unsigned char pk[VK_PUBLIC_KEY_BYTES];
	char err[VK_ERRLEN], *value = NULL;
	struct vk_root r;
	sqlite3_stmt *st;
	int ok;

	if (rk->version != version) {
		snprintf(err, sizeof err,
		         "the root key given is of version %lld; the fleet holds %lld",
		         (long long)rk->version, (long long)version);
		return ka_fail(VK_ERR_CONFLICT, err);
	}
	if (vk_store_prepare(ctx->db, "cannot read the root", err, &st,
	                     "SELECT value FROM meta WHERE name = '" VK_META_ROOT_ORG "'",
	                     "") != VK_OK)
		return ka_fail(VK_ERR_STORE, err);
	ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	     vk_public_key_parse((const char *)sqlite3_column_text(st, 0), pk) == 0;
	sqlite3_finalize(st);
	for (int64_t v = 2; ok && v <= version; v++) {
		ok = vk_store_prepare(ctx->db, "cannot read the root", err, &st,
		                      "SELECT value FROM sync_roots WHERE version = ?1", "i",
		                      v) == VK_OK;
		if (ok && sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
			value = strdup((const char *)sqlite3_column_text(st, 0));
		if (ok)
			sqlite3_finalize(st);
		ok = value != NULL && vk_root_verify(pk, value, strlen(value), &r) == 0 &&
		     r.version == v;
		if (ok)
			memcpy(pk, r.key, sizeof pk);
		free(value);
		value = NULL;
	}
	if (!ok) {
		snprintf(err, sizeof err,
		         "this store does not hold the fleet's root versions 1 to %lld",
		         (long long)version);
		return ka_fail(VK_ERR_STORE, err);
	}
	if (sodium_memcmp(pk, rk->pk, sizeof pk) != 0) {
		snprintf(err, sizeof err,
		         "the root key given is not the fleet's root (version %lld)",
		         (long long)version);
		return ka_fail(VK_ERR_CONFLICT, err);
	}
	return KA_OK;
}

static vk_rc
do_rekey(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	vk_rc rc;

	(void)ctx;
	if ((rc = vk_store_exec(t->db, "cannot record the new key", err, NULL,
	                        "INSERT INTO meta (name, value) VALUES ('" VK_META_AUTHORITY_EPOCH
	                        "', ?1), ('" VK_META_AUTHORITY_CERT "', ?2)"
	                        " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                        "it", rk_state.epoch, rk_state.cert)) != VK_OK ||
	    (rc = vk_txn_changed_all(t, err)) != VK_OK)
		return rc;
	return vk_txn_event(t, "authority.rekey", NULL, err, "epoch %lld, public key %s",
	                    (long long)rk_state.epoch, rk_state.public_key);
}

static int
report_rekey(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('public_key', ?1, 'epoch', ?2)", "ti",
		                     rk_state.public_key, rk_state.epoch);
	printf("Signing in epoch %lld with a new key; machines refuse the old one from its first\n"
	       "heartbeat on. Public key:\n%s\n",
	       (long long)rk_state.epoch, rk_state.public_key);
	return KA_OK;
}

static int
authority_rekey(struct ka_ctx *ctx)
{
	const char *path = ctx->cfg.sync.signing_key;
	struct vk_cert c = {0};
	struct vk_signer sig;
	struct root_key rk;
	unsigned char *sk = NULL;
	int64_t epoch, version;
	char err[VK_ERRLEN], host[HOST_NAME_BYTES], *next = NULL;
	int status;
	vk_rc rc;

	memset(&rk_state, 0, sizeof rk_state);
	if (ka_require(ctx, O_ROOT_KEY))
		return KA_USAGE;
	if ((status = rooted_authority(ctx, &epoch, &version)) != KA_OK)
		return status;
	/* rule 3: a rekey cut short after the store named the new key is finished here */
	if ((rc = vk_signer_load(ctx->db, path, &sig, err)) != VK_OK)
		return ka_fail(rc, err);
	vk_signer_free(&sig);
	if ((status = root_load(ctx->args.val[O_ROOT_KEY], &rk)) != KA_OK)
		return status;
	if ((status = fleet_root(ctx, &rk, version)) != KA_OK) {
		root_free(&rk);
		return status;
	}
	if ((next = vk_signer_next_path(path)) == NULL ||
	    (sk = sodium_malloc(VK_SIGNING_KEY_BYTES)) == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* one left by a rekey cut short before the store named it: never used */
	(void)unlink(next);
	crypto_sign_keypair(c.key, sk);
	if ((rc = vk_key_file_write(next, sk, NULL, 0, err)) != VK_OK) {
		status = ka_fail(rc, err);
		goto out;
	}
	c.epoch = epoch + 1;
	c.root = rk.version;
	c.at = ctx->now;
	host_name(host);
	snprintf(c.name, sizeof c.name, "%.*s", VK_CERT_NAME_MAX - 1, host);
	b64(c.key, rk_state.public_key);
	rk_state.epoch = c.epoch;
	if ((rk_state.cert = vk_cert_make(rk.sk, &c)) == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "cannot make the certificate");
		(void)unlink(next);
		goto out;
	}
	if ((status = ka_write(ctx, do_rekey, report_rekey)) != KA_OK) {
		(void)unlink(next);
		goto out;
	}
	/* the store names the new key: put it in place (signer.h) */
	if ((rc = vk_signer_load(ctx->db, path, &sig, err)) != VK_OK) {
		status = ka_fail(rc, err);
		goto out;
	}
	vk_signer_free(&sig);
out:
	sodium_free(sk);
	root_free(&rk);
	free(next);
	free(rk_state.cert);
	return status;
}

static vk_rc
do_rotate(struct ka_ctx *ctx, struct vk_txn *t, char *err)
{
	vk_rc rc;

	(void)ctx;
	if ((rc = vk_store_exec(t->db, "cannot record the root version", err, NULL,
	                        "INSERT INTO sync_roots (version, value) VALUES (?1, ?2)", "it",
	                        rk_state.root_version, rk_state.root_doc)) != VK_OK ||
	    (rc =
	         vk_store_exec(t->db, "cannot record the root version", err, NULL,
	                       "INSERT INTO meta (name, value) VALUES ('" VK_META_ROOT_VER "', ?1),"
	                       " ('" VK_META_AUTHORITY_CERT "', ?2)"
	                       " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
	                       "it", rk_state.root_version, rk_state.cert)) != VK_OK)
		return rc;
	return vk_txn_event(t, "root.rotate", NULL, err, "root version %lld, public key %s",
	                    (long long)rk_state.root_version, rk_state.public_key);
}

static int
report_rotate(struct ka_ctx *ctx)
{
	if (ctx->json)
		return ka_print_json(ctx, "SELECT json_object('public_key', ?1, 'version', ?2)",
		                     "ti", rk_state.public_key, rk_state.root_version);
	printf("The fleet's root is version %lld now, signed by the one before; machines take it\n"
	       "from the bus. Certify standbys again with it. Its public key:\n%s\n",
	       (long long)rk_state.root_version, rk_state.public_key);
	return KA_OK;
}

static int
root_rotate(struct ka_ctx *ctx)
{
	struct root_key old = {0}, new = {0};
	struct vk_signer sig = {0};
	struct vk_cert c;
	int64_t epoch, version;
	char err[VK_ERRLEN], trailer[32];
	int status;
	vk_rc rc;

	memset(&rk_state, 0, sizeof rk_state);
	if (ka_require(ctx, O_ROOT_KEY) || ka_require(ctx, O_NEW_ROOT_KEY))
		return KA_USAGE;
	if ((status = rooted_authority(ctx, &epoch, &version)) != KA_OK)
		return status;
	if ((status = root_load(ctx->args.val[O_ROOT_KEY], &old)) != KA_OK)
		goto out;
	if ((status = root_load(ctx->args.val[O_NEW_ROOT_KEY], &new)) != KA_OK)
		goto out;
	if ((status = fleet_root(ctx, &old, version)) != KA_OK)
		goto out;
	status = KA_FAIL;
	if (sodium_memcmp(old.pk, new.pk, sizeof old.pk) == 0) {
		status = ka_fail(VK_ERR_USAGE, "--new-root-key is the same key");
		goto out;
	}
	if ((rc = vk_signer_load(ctx->db, ctx->cfg.sync.signing_key, &sig, err)) != VK_OK ||
	    vk_cert_read(sig.cert, strlen(sig.cert), &c) != 0) {
		status = ka_fail(rc != VK_OK ? rc : VK_ERR_STORE, err);
		goto out;
	}
	rk_state.root_version = version + 1;
	/* the authority's key, certified again under the new root: the same epoch */
	c.root = rk_state.root_version;
	c.at = ctx->now;
	b64(new.pk, rk_state.public_key);
	if ((rk_state.root_doc = vk_root_make(old.sk, new.sk, rk_state.root_version, ctx->now)) ==
	        NULL ||
	    (rk_state.cert = vk_cert_make(new.sk, &c)) == NULL) {
		status = ka_fail(VK_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* rule 1: the new root's file says its version from now on */
	snprintf(trailer, sizeof trailer, "version %lld", (long long)rk_state.root_version);
	if ((rc = vk_key_file_write(ctx->args.val[O_NEW_ROOT_KEY], new.sk, trailer, 1, err)) !=
	    VK_OK) {
		status = ka_fail(rc, err);
		goto out;
	}
	status = ka_write(ctx, do_rotate, report_rotate);
out:
	vk_signer_free(&sig);
	root_free(&old);
	root_free(&new);
	free(rk_state.root_doc);
	free(rk_state.cert);
	return status;
}

const struct ka_command ka_authority_commands[] = {
    {"root", "init", root_init, OPT(O_OUT), "--out FILE",
     "Make the fleet's root key (keep it offline); print its public half."},
    {"root", "rotate", root_rotate, OPT(O_ROOT_KEY) | OPT(O_NEW_ROOT_KEY),
     "--root-key FILE --new-root-key FILE",
     "Make the next root version, signed by the current root key and the new one."},
    {"authority", "init", authority_init,
     OPT(O_ROOT_KEY) | OPT(O_CERTIFICATE) | OPT(O_STANDBY) | OPT(O_EPOCH),
     "[--standby] [--root-key FILE [--epoch N] | --certificate FILE]",
     "Make this store the fleet's authority (or a standby): create the signing key,"
     " certified by the root when one is given."},
    {"authority", "keygen", authority_keygen, 0, "",
     "Make the signing key alone, to be certified where the root key is."},
    {"authority", "certify", authority_certify,
     OPT(O_ROOT_KEY) | OPT(O_PUBLIC_KEY) | OPT(O_EPOCH) | OPT(O_NAME),
     "--root-key FILE --public-key KEY --epoch N [--name HOST]",
     "Certify a signing key made elsewhere for an epoch; print the certificate."},
    {"authority", "promote", authority_promote, OPT(O_FORCE) | OPT(O_TIMEOUT),
     "[--force] [--timeout DUR]",
     "Make this standby the fleet's authority: take the lease, start its epoch."},
    {"authority", "rekey", authority_rekey, OPT(O_ROOT_KEY), "--root-key FILE",
     "Replace the signing key: a new key certified for the next epoch."},
    {NULL, NULL, NULL, 0, NULL, NULL},
};
