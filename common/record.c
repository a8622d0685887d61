/*
 * record.c - the fleet's signed records: built and signed on the authority,
 * verified and applied on a machine's replica.
 *
 * Security rules for this file:
 *  1. A record is applied only after its signature verifies with the
 *     configured authority key (vk_record_verify before vk_replica_apply):
 *     a bus that is taken over cannot create or widen a key.
 *  2. A record is applied only if its revision is newer than the one the
 *     replica holds for that entity, tombstones included: a replayed old
 *     record cannot bring back a revoked key or secret. A full record of
 *     the same revision as a held tombstone completes it (both describe
 *     the same change).
 *  3. A replica holds a key only while one of its grants covers its
 *     machine; the coverage rule is model.h's.
 *  4. A key leaves the replica only on a signed statement: a tombstone, or
 *     a record whose grants no longer cover the machine.
 *  5. Records carry verifiers and salts, never a secret; the signing key is
 *     read by descriptor, lives in sodium_malloc() memory, and is never
 *     written anywhere but its own file.
 *  6. A value is applied only when its entry is under one of this machine's
 *     scopes and the record is what that entry holds (the scope's own tree
 *     record; a key's record that grants something in the scope, or its
 *     tombstone there): anything else is dropped and changes nothing, so a
 *     record copied under another entry, or delivered to the wrong
 *     machine, cannot place or prune a key. A key record that still does
 *     not cover the machine is held as a tombstone, so that the same
 *     revision's record that covers it is applied when it comes.
 *  7. The newest revision seen under each entry of this machine's scopes is
 *     recorded, so that the replica can be compared with the scope heads
 *     (head.h, scope.h).
 *  8. Heartbeats are ordered by epoch and counter, never by the clock, and
 *     one signed more than VK_CLOCK_SKEW ahead of this machine's clock is
 *     refused without changing anything.
 *  9. A value older than the revision its scope's index page lists for its
 *     entry is refused: a machine that learns its scopes from their heads
 *     (a new or re-imaged one) cannot be handed replayed old records.
 * 10. A record or heartbeat of an epoch below the one the replica trusts
 *     (trust.h) changes nothing: a former authority's, however it came. A
 *     record of a higher epoch than the one held of its entity replaces it,
 *     whatever its revision: the epoch's authority published everything
 *     anew.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fleet.h"
#include "head.h"
#include "trust.h"
#include "model.h"
#include "record.h"
#include "store.h"
#include "token.h"

#define MAGIC        "vk1."
#define MAGIC_LEN    4
#define DOMAIN       "viamkey record v1\n"
#define SIG_B64_LEN  86 /* 64 bytes, base64url without padding */
#define KEY_FILE_MAX 256

/* ---- the signing key ------------------------------------------------------ */

void
vk_public_key_b64(const unsigned char *sk, char out[VK_PUBLIC_KEY_B64])
{
	unsigned char pk[VK_PUBLIC_KEY_BYTES];

	crypto_sign_ed25519_sk_to_pk(pk, sk);
	sodium_bin2base64(out, VK_PUBLIC_KEY_B64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
}

int
vk_public_key_parse(const char *b64, unsigned char pk[VK_PUBLIC_KEY_BYTES])
{
	size_t n;

	if (b64 == NULL ||
	    sodium_base642bin(pk, VK_PUBLIC_KEY_BYTES, b64, strlen(b64), NULL, &n, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    n != VK_PUBLIC_KEY_BYTES)
		return -1;
	return 0;
}

/* fsync() of the directory that holds path: what was made or renamed there is on disk. */
static int
sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd = -1, rc = -1;

	if (copy != NULL && (fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		rc = fsync(fd);
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

int
vk_file_rename(const char *from, const char *to)
{
	return rename(from, to) == 0 ? sync_dir(to) : -1;
}

vk_rc
vk_file_write(const char *path, const char *text, size_t len, mode_t mode, int replace,
              char err[VK_ERRLEN])
{
	char *tmp = NULL;
	const char *target = path;
	vk_rc rc = VK_ERR_IO;
	int fd = -1;

	if (replace) {
		if ((tmp = malloc(strlen(path) + 5)) == NULL) {
			vk_seterr(err, "out of memory");
			return VK_ERR_NOMEM;
		}
		sprintf(tmp, "%s.tmp", path);
		(void)unlink(tmp); /* left by a write cut short: never read */
		target = tmp;
	}
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0) {
		vk_seterr(err,
		          errno == EEXIST ? "%s already exists; it is never overwritten"
		                          : "cannot create %s: %s",
		          target, strerror(errno));
		rc = errno == EEXIST ? VK_ERR_CONFLICT : VK_ERR_IO;
		goto out;
	}
	/* the mode asked for, whatever the umask took from it */
	if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0 ||
	    (replace ? vk_file_rename(tmp, path) : sync_dir(path)) != 0) {
		vk_seterr(err, "cannot write %s: %s", path, strerror(errno));
		(void)unlink(target);
	} else {
		rc = VK_OK;
	}
	close(fd);
out:
	free(tmp);
	return rc;
}

vk_rc
vk_key_file_write(const char *path, const unsigned char *sk, const char *trailer, int replace,
                  char err[VK_ERRLEN])
{
	char *text = sodium_malloc(KEY_FILE_MAX);
	size_t len;
	vk_rc rc;

	if (text == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	sodium_bin2base64(text, KEY_FILE_MAX, sk, VK_SIGNING_KEY_BYTES,
	                  sodium_base64_VARIANT_ORIGINAL);
	len = strlen(text);
	len += (size_t)snprintf(text + len, KEY_FILE_MAX - len, "\n%s%s", trailer ? trailer : "",
	                        trailer ? "\n" : "");
	rc = vk_file_write(path, text, len, 0600, replace, err);
	sodium_free(text);
	return rc;
}

vk_rc
vk_signing_key_create(const char *path, char public_b64[VK_PUBLIC_KEY_B64], char err[VK_ERRLEN])
{
	unsigned char *sk = sodium_malloc(VK_SIGNING_KEY_BYTES);
	unsigned char pk[VK_PUBLIC_KEY_BYTES];
	vk_rc rc;

	if (sk == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	crypto_sign_keypair(pk, sk);
	if ((rc = vk_key_file_write(path, sk, NULL, 0, err)) == VK_OK)
		vk_public_key_b64(sk, public_b64);
	sodium_free(sk);
	return rc;
}

vk_rc
vk_secret_file_read(const char *path, char *text, size_t size, size_t *len, char err[VK_ERRLEN])
{
	vk_rc rc = VK_ERR_STORE;
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		vk_seterr(err, "%s: %s", path, strerror(errno));
		return VK_ERR_STORE;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		vk_seterr(err, "%s is not a regular file", path);
	} else if (st.st_uid != 0 && st.st_uid != geteuid()) {
		vk_seterr(err, "%s is owned by uid %u; chown root %s", path, (unsigned)st.st_uid,
		          path);
	} else if ((st.st_mode & 077) != 0) {
		vk_seterr(err, "%s is readable or writable by group or others; run chmod 600 %s",
		          path, path);
	} else if ((n = read(fd, text, size - 1)) <= 0 || (size_t)n == size - 1) {
		vk_seterr(err, "cannot read %s, or it is too long", path);
	} else {
		text[n] = '\0';
		*len = (size_t)n;
		rc = VK_OK;
	}
	close(fd);
	return rc;
}

vk_rc
vk_key_file_read(const char *path, unsigned char *sk, char *trailer, size_t size,
                 char err[VK_ERRLEN])
{
	char *text = sodium_malloc(KEY_FILE_MAX);
	size_t len, n;
	vk_rc rc;

	if (text == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	if (trailer != NULL)
		trailer[0] = '\0';
	if ((rc = vk_secret_file_read(path, text, KEY_FILE_MAX, &n, err)) == VK_OK) {
		len = strcspn(text, "\r\n");
		if (trailer != NULL && text[len] != '\0')
			snprintf(trailer, size, "%.*s", (int)strcspn(text + len + 1, "\r\n"),
			         text + len + 1);
		if (sodium_base642bin(sk, VK_SIGNING_KEY_BYTES, text, len, NULL, &len, NULL,
		                      sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    len != VK_SIGNING_KEY_BYTES) {
			vk_seterr(err, "key file %s is malformed", path);
			rc = VK_ERR_STORE;
		}
	}
	sodium_free(text);
	return rc;
}

vk_rc
vk_signing_key_load(const char *path, unsigned char *sk, char err[VK_ERRLEN])
{
	vk_rc rc = vk_key_file_read(path, sk, NULL, 0, err);

	if (rc != VK_OK && access(path, F_OK) != 0)
		vk_seterr(err, "signing key %s: %s (create it with keyadm authority init)", path,
		          strerror(ENOENT));
	return rc;
}

/* ---- signing and verifying ------------------------------------------------ */

/* "vk1." base64url(Ed25519(DOMAIN || json)) "." json. */
char *
vk_record_sign(const unsigned char *sk, const char *json)
{
	size_t jlen = strlen(json), mlen = sizeof DOMAIN - 1 + jlen;
	unsigned char sig[crypto_sign_BYTES];
	unsigned char *msg = malloc(mlen);
	char *value = malloc(MAGIC_LEN + SIG_B64_LEN + 1 + jlen + 1);

	if (msg == NULL || value == NULL) {
		free(msg);
		free(value);
		return NULL;
	}
	memcpy(msg, DOMAIN, sizeof DOMAIN - 1);
	memcpy(msg + sizeof DOMAIN - 1, json, jlen);
	crypto_sign_detached(sig, NULL, msg, mlen, sk);
	free(msg);
	memcpy(value, MAGIC, MAGIC_LEN);
	sodium_bin2base64(value + MAGIC_LEN, SIG_B64_LEN + 1, sig, sizeof sig,
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	value[MAGIC_LEN + SIG_B64_LEN] = '.';
	memcpy(value + MAGIC_LEN + SIG_B64_LEN + 1, json, jlen + 1);
	return value;
}

vk_rc
vk_record_verify(const unsigned char pk[VK_PUBLIC_KEY_BYTES], const char *value, size_t len,
                 const char **json, size_t *json_len, char err[VK_ERRLEN])
{
	const size_t head = MAGIC_LEN + SIG_B64_LEN + 1, jlen = len - head;
	unsigned char sig[crypto_sign_BYTES], *msg;
	size_t n;
	int ok;

	*json = NULL;
	*json_len = 0;
	if (len < head + 2 || len > VK_RECORD_MAX || memcmp(value, MAGIC, MAGIC_LEN) != 0 ||
	    value[head - 1] != '.' ||
	    sodium_base642bin(sig, sizeof sig, value + MAGIC_LEN, SIG_B64_LEN, NULL, &n, NULL,
	                      sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    n != sizeof sig) {
		vk_seterr(err, "not a viamkey record");
		return VK_ERR_USAGE;
	}
	if ((msg = malloc(sizeof DOMAIN - 1 + jlen)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	memcpy(msg, DOMAIN, sizeof DOMAIN - 1);
	memcpy(msg + sizeof DOMAIN - 1, value + head, jlen);
	ok = crypto_sign_verify_detached(sig, msg, sizeof DOMAIN - 1 + jlen, pk) == 0;
	free(msg);
	if (!ok) {
		vk_seterr(err, "the record's signature does not verify with the authority key");
		return VK_ERR_USAGE;
	}
	*json = value + head;
	*json_len = jlen;
	return VK_OK;
}

/* ---- building: the authority --------------------------------------------- */

/* The entry prefix of a grant's resource type: o, l or m. */
#define PREFIX_SQL(type)                                                                           \
	"(CASE " type " WHEN 'organization' THEN 'o.' WHEN 'location' THEN 'l.' ELSE 'm.' END)"

/* The entries an entity is filed under now; ?1 its ID. */
#define ORG_ENTRIES      "SELECT 'o.' || id || '.t' FROM organizations WHERE id = ?1"
#define LOCATION_ENTRIES "SELECT 'l.' || id || '.t' FROM locations WHERE id = ?1"
#define MACHINE_ENTRIES  "SELECT 'm.' || id || '.t' FROM machines WHERE id = ?1"
#define KEY_ENTRIES                                                                                \
	"SELECT " PREFIX_SQL("resource_type") " || resource_id || '.k.' || key_id"                 \
	                                      " FROM grants WHERE key_id = ?1"
/* The entries it was filed under before and is not now; ?1 its ID, ?2 its kind. */
#define GONE(entries) "SELECT entry FROM sync_published WHERE kind = ?2 AND id = ?1 EXCEPT " entries

/* How each kind of entity becomes a record; ?1 id, ?2 rev, ?3 at, ?4 now, ?5 epoch. */
static const struct kind {
	const char *name;
	const char *record_sql;  /* the record, no row when the entity is gone */
	const char *entries_sql; /* ?1 id */
	const char *gone_sql;    /* ?1 id, ?2 kind */
	const char *tombstone_sql;
} kinds[] = {
    {"organization",
     "SELECT json_object('v', 1, 'type', 'organization', 'id', id, 'rev', ?2, 'epoch', ?5, 'at', "
     "?3,"
     " 'organization', json_object('name', name, 'created_at', created_at))"
     " FROM organizations WHERE id = ?1",
     ORG_ENTRIES, GONE(ORG_ENTRIES),
     "SELECT json_object('v', 1, 'type', 'organization', 'id', ?1, 'rev', ?2, 'epoch', ?5, 'at', "
     "?3,"
     " 'tombstone', json('true'))"},
    {"location",
     "SELECT json_object('v', 1, 'type', 'location', 'id', id, 'rev', ?2, 'epoch', ?5, 'at', ?3,"
     " 'location', json_object('name', name, 'org_id', org_id, 'created_at', created_at))"
     " FROM locations WHERE id = ?1",
     LOCATION_ENTRIES, GONE(LOCATION_ENTRIES),
     "SELECT json_object('v', 1, 'type', 'location', 'id', ?1, 'rev', ?2, 'epoch', ?5, 'at', ?3,"
     " 'tombstone', json('true'))"},
    {"machine",
     "SELECT json_object('v', 1, 'type', 'machine', 'id', m.id, 'rev', ?2, 'epoch', ?5, 'at', ?3,"
     " 'machine', json_object('name', m.name, 'location_id', m.location_id,"
     " 'org_id', l.org_id, 'created_at', m.created_at, 'jwt', i.jwt))"
     " FROM machines m JOIN locations l ON l.id = m.location_id"
     " LEFT JOIN machine_identities i ON i.machine_id = m.id WHERE m.id = ?1",
     MACHINE_ENTRIES, GONE(MACHINE_ENTRIES),
     "SELECT json_object('v', 1, 'type', 'machine', 'id', ?1, 'rev', ?2, 'epoch', ?5, 'at', ?3,"
     " 'tombstone', json('true'))"},
    {"key",
     "SELECT json_object('v', 1, 'type', 'key', 'id', k.id, 'rev', ?2, 'epoch', ?5, 'at', ?3,"
     " 'key', json_object('name', k.name, 'created_at', k.created_at,"
     "  'created_by', k.created_by, 'disabled', k.disabled, 'protected', k.protected,"
     "  'break_glass', k.break_glass, 'expires_at', k.expires_at,"
     "  'users', (SELECT json_group_array(user) FROM"
     "   (SELECT user FROM key_users WHERE key_id = k.id ORDER BY user)),"
     "  'grants', (SELECT json_group_array(json_object('role', role,"
     "   'resource_type', resource_type, 'resource_id', resource_id)) FROM"
     "   (SELECT * FROM grants WHERE key_id = k.id ORDER BY resource_type, resource_id)),"
     "  'secrets', (SELECT json_group_array(json_object('alg', s.alg, 'salt', hex(s.salt),"
     "   'verifier', hex(s.verifier), 'created_at', s.created_at, 'expires_at', s.expires_at))"
     "   FROM (SELECT * FROM secrets s WHERE s.key_id = k.id"
     "   AND " VK_SQL_SECRET_LIVE("s", "?4") " ORDER BY s.id) s)))"
                                             " FROM keys k WHERE k.id = ?1",
     KEY_ENTRIES, GONE(KEY_ENTRIES),
     /* what is left: the scopes the key is still filed under */
     "SELECT json_object('v', 1, 'type', 'key', 'id', ?1, 'rev', ?2, 'epoch', ?5, 'at', ?3,"
     " 'tombstone', json('true'), 'scopes', (SELECT json_group_array(p) FROM"
     "  (SELECT " PREFIX_SQL("resource_type") " || resource_id AS p FROM grants"
                                              "   WHERE key_id = ?1 ORDER BY 1)))"},
};

static const struct kind *
kind_named(const char *name)
{
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

/* The first column of sql's first row, malloc()ed; NULL with *rc VK_OK when there is none. */
static char *
query_text(sqlite3 *db, const char *sql, const char *id, int64_t rev, int64_t now, int64_t epoch,
           vk_rc *rc, char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	char *text = NULL;
	int step;

	if ((*rc = vk_store_prepare(db, "cannot build the record", err, &st, sql, "tiiii", id, rev,
	                            now, now, epoch)) != VK_OK)
		return NULL;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL &&
	    (text = strdup((const char *)sqlite3_column_text(st, 0))) == NULL) {
		vk_seterr(err, "out of memory");
		*rc = VK_ERR_NOMEM;
	} else if (step != SQLITE_ROW && step != SQLITE_DONE) {
		*rc = vk_store_error(db, "cannot build the record", err);
	}
	sqlite3_finalize(st);
	return text;
}

/* Appends every row's first column of sql (?1 id, ?2 kind) to list. */
static vk_rc
entries(sqlite3 *db, const char *sql, const char *id, const char *kind, char (**list)[VK_ENTRY_MAX],
        size_t *n, char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	vk_rc rc;
	int step;

	if ((rc = vk_store_prepare(db, "cannot list the record's entries", err, &st, sql, "tt", id,
	                           kind)) != VK_OK)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char(*grown)[VK_ENTRY_MAX] = realloc(*list, (*n + 1) * sizeof **list);
		const char *e = (const char *)sqlite3_column_text(st, 0);

		if (grown == NULL) {
			vk_seterr(err, "out of memory");
			rc = VK_ERR_NOMEM;
			break;
		}
		*list = grown;
		snprintf((*list)[(*n)++], VK_ENTRY_MAX, "%s", e != NULL ? e : "");
	}
	if (rc == VK_OK && step != SQLITE_DONE)
		rc = vk_store_error(db, "cannot list the record's entries", err);
	sqlite3_finalize(st);
	return rc;
}

void
vk_publication_free(struct vk_publication *pub)
{
	free(pub->value);
	free(pub->tombstone);
	free(pub->entries);
	free(pub->gone);
	memset(pub, 0, sizeof *pub);
}

vk_rc
vk_record_build(sqlite3 *db, const unsigned char *sk, int64_t epoch, const char *kind,
                const char *id, int64_t rev, int64_t now, struct vk_publication *pub,
                char err[VK_ERRLEN])
{
	const struct kind *k = kind_named(kind);
	char *json;
	vk_rc rc;

	memset(pub, 0, sizeof *pub);
	if (k == NULL || !vk_uuid_valid(id)) {
		vk_seterr(err, "the outbox names an unknown %s %s", kind, id);
		return VK_ERR_STORE;
	}
	snprintf(pub->kind, sizeof pub->kind, "%s", kind);
	snprintf(pub->id, sizeof pub->id, "%s", id);
	pub->rev = rev;
	if ((json = query_text(db, k->record_sql, id, rev, now, epoch, &rc, err)) != NULL) {
		pub->value = vk_record_sign(sk, json);
		free(json);
		if (pub->value == NULL)
			goto nomem;
		if ((rc = entries(db, k->entries_sql, id, kind, &pub->entries, &pub->nentries,
		                  err)) != VK_OK)
			goto fail;
	} else if (rc != VK_OK) {
		goto fail;
	}
	if ((rc = entries(db, k->gone_sql, id, kind, &pub->gone, &pub->ngone, err)) != VK_OK)
		goto fail;
	if (pub->ngone > 0) {
		if ((json = query_text(db, k->tombstone_sql, id, rev, now, epoch, &rc, err)) ==
		    NULL) {
			if (rc == VK_OK)
				rc = VK_ERR_STORE;
			goto fail;
		}
		pub->tombstone = vk_record_sign(sk, json);
		free(json);
		if (pub->tombstone == NULL)
			goto nomem;
	}
	return VK_OK;
nomem:
	vk_seterr(err, "out of memory");
	rc = VK_ERR_NOMEM;
fail:
	vk_publication_free(pub);
	return rc;
}

/*
 * Whether entry is a scope's (its tree record or one of its keys); its
 * scope, and its page (-1 for the tree record).
 */
static int
entry_scope(const char *entry, char scope[VK_SCOPE_MAX], int *page)
{
	const char *rest = entry + VK_SCOPE_MAX;

	if (strlen(entry) < VK_SCOPE_MAX + 1 || entry[VK_SCOPE_MAX - 1] != '.')
		return 0;
	memcpy(scope, entry, VK_SCOPE_MAX - 1);
	scope[VK_SCOPE_MAX - 1] = '\0';
	if (!vk_scope_valid(scope))
		return 0;
	*page = strcmp(rest, "t") == 0        ? -1
	        : strncmp(rest, "k.", 2) == 0 ? vk_page_of(rest + 2)
	                                      : -2;
	return *page >= -1;
}

vk_rc
vk_record_sending(sqlite3 *db, const struct vk_publication *pub, char err[VK_ERRLEN])
{
	vk_rc rc = VK_OK;

	for (size_t i = 0; i < pub->nentries && rc == VK_OK; i++)
		rc = vk_store_exec(db, "cannot record what is being published", err, NULL,
		                   "INSERT INTO sync_published (kind, id, entry, rev, tomb)"
		                   " VALUES (?1, ?2, ?3, ?4, 0) ON CONFLICT (kind, id, entry)"
		                   " DO NOTHING",
		                   "ttti", pub->kind, pub->id, pub->entries[i], pub->rev);
	return rc;
}

vk_rc
vk_record_published(sqlite3 *db, const struct vk_publication *pub, char err[VK_ERRLEN])
{
	char scope[VK_SCOPE_MAX];
	vk_rc rc = VK_OK;
	int page;

	for (size_t i = 0; i < pub->nentries + pub->ngone && rc == VK_OK; i++) {
		const char *entry =
		    i < pub->nentries ? pub->entries[i] : pub->gone[i - pub->nentries];

		rc = vk_store_exec(db, "cannot record what was published", err, NULL,
		                   "INSERT INTO sync_published (kind, id, entry, rev, tomb)"
		                   " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (kind, id, entry)"
		                   " DO UPDATE SET rev = excluded.rev, tomb = excluded.tomb",
		                   "tttii", pub->kind, pub->id, entry, pub->rev,
		                   (int64_t)(i >= pub->nentries));
		/* its scope's head and page are published again (scope.h) */
		if (rc == VK_OK && entry_scope(entry, scope, &page))
			rc = vk_store_exec(
			    db, "cannot record what was published", err, NULL,
			    "INSERT INTO sync_dirty (scope, page, rev) VALUES (?1, ?2, ?3)"
			    " ON CONFLICT (scope, page) DO UPDATE SET rev = excluded.rev",
			    "tii", scope, (int64_t)page, pub->rev);
	}
	if (rc == VK_OK)
		rc = vk_store_exec(
		    db, "cannot update the outbox", err, NULL,
		    "DELETE FROM sync_outbox WHERE kind = ?1 AND id = ?2 AND rev = ?3", "tti",
		    pub->kind, pub->id, pub->rev);
	return rc;
}

char *
vk_record_heartbeat(const unsigned char *sk, int64_t rev, int64_t now, const char *name,
                    int64_t seq, int64_t epoch, const char *cert)
{
	char clean[128], *json, *value;
	size_t size = 512 + (cert != NULL ? strlen(cert) : 0);

	if ((json = malloc(size)) == NULL)
		return NULL;
	vk_text_clean(name, clean, sizeof clean);
	/* the host name is cleaned text: no quote or backslash needs escaping but these two */
	for (char *p = clean; *p != '\0'; p++)
		if (*p == '"' || *p == '\\')
			*p = '?';
	/* the certificate is base64url: nothing to escape */
	snprintf(json, size,
	         "{\"v\":1,\"type\":\"heartbeat\",\"rev\":%lld,\"at\":%lld,\"authority\":\"%s\","
	         "\"seq\":%lld,\"epoch\":%lld,\"format\":%d%s%s%s}",
	         (long long)rev, (long long)now, clean, (long long)seq, (long long)epoch, VK_FORMAT,
	         cert != NULL ? ",\"cert\":\"" : "", cert != NULL ? cert : "",
	         cert != NULL ? "\"" : "");
	value = vk_record_sign(sk, json);
	free(json);
	return value;
}

/* ---- applying: a machine's replica ---------------------------------------- */

/* Every statement the replica runs, prepared once and kept (SQLITE_PREPARE_PERSISTENT). */
enum {
	S_HEAD,
	S_LOCATE,
	S_KEY_UNUSERS,
	S_KEY_UNGRANTS,
	S_KEY_UNSECRETS,
	S_KEY_UPSERT,
	S_KEY_USERS,
	S_KEY_GRANTS,
	S_KEY_SECRETS,
	S_TOMB_STAYS,
	S_TOMB_ANYWHERE,
	S_KEY_DELETE,
	S_TOMB_GRANTS,
	S_ORG_UPSERT,
	S_ORG_PLACE,
	S_LOC_PLACE,
	S_LOC_UPSERT,
	S_MACHINE_UPSERT,
	S_ORG_DELETE,
	S_LOC_DELETE,
	S_MACHINE_DELETE,
	S_PRUNE_KEY,
	S_PRUNE_ALL,
	S_HELD,
	S_FILED,
	S_ENTRY,
	S_HB_HELD,
	S_HB_META,
	S_SAVEPOINT,
	S_ROLLBACK_TO,
	S_RELEASE,
	S_COUNT
};

static const char *const sqls[S_COUNT] = {
    /* ?1 the record: its version, type, ID, revision, tombstone, and what is held of it */
    [S_HEAD] =
        "SELECT json_extract(?1, '$.v'), json_extract(?1, '$.type'),"
        " json_extract(?1, '$.id'), json_extract(?1, '$.rev'),"
        " coalesce(json_extract(?1, '$.tombstone'), 0), h.rev, h.full,"
        " coalesce(json_extract(?1, '$.epoch'), 0), h.epoch,"
        " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_TRUST_EPOCH
        "'), 0)"
        " FROM (SELECT 1) LEFT JOIN sync_held h ON h.kind = json_extract(?1, '$.type')"
        " AND h.id = json_extract(?1, '$.id')",
    [S_LOCATE] = "SELECT m.location_id, l.org_id FROM machines m"
                 " LEFT JOIN locations l ON l.id = m.location_id WHERE m.id = ?1",
    /* a key's whole state, replacing what the replica holds of it (its last use excepted) */
    [S_KEY_UNUSERS] = "DELETE FROM key_users WHERE key_id = ?1",
    [S_KEY_UNGRANTS] = "DELETE FROM grants WHERE key_id = ?1",
    [S_KEY_UNSECRETS] = "DELETE FROM secrets WHERE key_id = ?1",
    [S_KEY_UPSERT] =
        "INSERT INTO keys (id, name, created_at, created_by, disabled, protected, break_glass,"
        " expires_at) SELECT ?1, json_extract(?2, '$.key.name'),"
        " json_extract(?2, '$.key.created_at'), json_extract(?2, '$.key.created_by'),"
        " json_extract(?2, '$.key.disabled'), json_extract(?2, '$.key.protected'),"
        " json_extract(?2, '$.key.break_glass'), json_extract(?2, '$.key.expires_at')"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at,"
        " created_by = excluded.created_by, disabled = excluded.disabled,"
        " protected = excluded.protected, break_glass = excluded.break_glass,"
        " expires_at = excluded.expires_at",
    [S_KEY_USERS] = "INSERT INTO key_users (key_id, user)"
                    " SELECT ?1, value FROM json_each(?2, '$.key.users')",
    [S_KEY_GRANTS] =
        "INSERT INTO grants (key_id, role, resource_type, resource_id)"
        " SELECT ?1, json_extract(value, '$.role'), json_extract(value, '$.resource_type'),"
        " json_extract(value, '$.resource_id') FROM json_each(?2, '$.key.grants')",
    [S_KEY_SECRETS] =
        "INSERT INTO secrets (key_id, alg, salt, verifier, created_at, expires_at)"
        " SELECT ?1, json_extract(value, '$.alg'), vk_unhex(json_extract(value, '$.salt')),"
        " vk_unhex(json_extract(value, '$.verifier')), json_extract(value, '$.created_at'),"
        " json_extract(value, '$.expires_at') FROM json_each(?2, '$.key.secrets')",
    /* a key's tombstone: does what it is still filed under cover this machine? */
    [S_TOMB_STAYS] = "SELECT EXISTS (SELECT 1 FROM json_each(?1, '$.scopes')"
                     " WHERE value IN ('m.' || ?2, 'l.' || ?3, 'o.' || ?4))",
    [S_TOMB_ANYWHERE] = "SELECT json_array_length(?1, '$.scopes') > 0",
    [S_KEY_DELETE] = "DELETE FROM keys WHERE id = ?1",
    [S_TOMB_GRANTS] = "DELETE FROM grants WHERE key_id = ?1 AND " PREFIX_SQL(
        "resource_type") " || resource_id NOT IN (SELECT value FROM json_each(?2, '$.scopes'))",
    /*
     * The tree. Rows it needs but has not received yet (this machine's
     * location and organization, named by its own record) are placeholders,
     * which their own records fill in.
     */
    [S_ORG_UPSERT] =
        "INSERT INTO organizations (id, name, created_at) VALUES (?1,"
        " json_extract(?2, '$.organization.name'), json_extract(?2, '$.organization.created_at'))"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at",
    [S_ORG_PLACE] = "INSERT OR IGNORE INTO organizations (id, name, created_at) VALUES (?1, '', 0)",
    [S_LOC_PLACE] = "INSERT OR IGNORE INTO locations (id, org_id, name, created_at)"
                    " VALUES (?1, ?2, '', 0)",
    [S_LOC_UPSERT] = "INSERT INTO locations (id, org_id, name, created_at) VALUES (?1,"
                     " json_extract(?2, '$.location.org_id'), json_extract(?2, '$.location.name'),"
                     " json_extract(?2, '$.location.created_at')) ON CONFLICT (id) DO UPDATE SET"
                     " org_id = excluded.org_id, name = excluded.name,"
                     " created_at = excluded.created_at",
    [S_MACHINE_UPSERT] =
        "INSERT INTO machines (id, location_id, name, created_at) VALUES (?1,"
        " json_extract(?2, '$.machine.location_id'), json_extract(?2, '$.machine.name'),"
        " json_extract(?2, '$.machine.created_at')) ON CONFLICT (id) DO UPDATE SET"
        " location_id = excluded.location_id, name = excluded.name,"
        " created_at = excluded.created_at",
    [S_ORG_DELETE] = "DELETE FROM organizations WHERE id = ?1",
    [S_LOC_DELETE] = "DELETE FROM locations WHERE id = ?1",
    [S_MACHINE_DELETE] = "DELETE FROM machines WHERE id = ?1",
    /*
     * rule 3: drops the key ?1 (or every key: two statements, so that the
     * first uses the primary key) when no grant of it covers this machine
     */
    [S_PRUNE_KEY] = "DELETE FROM keys WHERE id = ?1 AND NOT EXISTS"
                    " (SELECT 1 FROM grants g WHERE g.key_id = keys.id AND " VK_SQL_GRANT_COVERS(
                        "g", "?2", "?3", "?4") ")",
    [S_PRUNE_ALL] = "DELETE FROM keys WHERE ?1 IS NULL AND NOT EXISTS"
                    " (SELECT 1 FROM grants g WHERE g.key_id = keys.id AND " VK_SQL_GRANT_COVERS(
                        "g", "?2", "?3", "?4") ")",
    [S_HELD] = "INSERT INTO sync_held (kind, id, rev, full, epoch) VALUES (?1, ?2, ?3, ?4, ?5)"
               " ON CONFLICT (kind, id) DO UPDATE SET rev = excluded.rev, full = excluded.full,"
               " epoch = excluded.epoch",
    /*
     * rule 6: the record ?1 belongs under scope ?2: a key's record grants
     * something there, a key's tombstone says it left it
     */
    [S_FILED] = "SELECT CASE WHEN coalesce(json_extract(?1, '$.tombstone'), 0)"
                " THEN NOT EXISTS (SELECT 1 FROM json_each(?1, '$.scopes') WHERE value = ?2)"
                " ELSE EXISTS (SELECT 1 FROM json_each(?1, '$.key.grants') WHERE " PREFIX_SQL(
                    "json_extract(value, '$.resource_type')") " || json_extract(value,"
                                                              " '$.resource_id') = ?2) END",
    /* the newest revision seen under each entry of this machine's scopes (rule 7) */
    [S_ENTRY] = "INSERT INTO sync_entries (entry, rev, tomb) VALUES (?1, ?2, ?3)"
                " ON CONFLICT (entry) DO UPDATE SET rev = excluded.rev, tomb = excluded.tomb"
                " WHERE excluded.rev > sync_entries.rev",
    /* ?1 a heartbeat: its fields, and what the replica holds of the last one */
    [S_HB_HELD] =
        "SELECT json_extract(?1, '$.epoch'), json_extract(?1, '$.seq'), json_extract(?1, '$.rev'),"
        " json_extract(?1, '$.at'), (SELECT CAST(value AS INTEGER) FROM meta WHERE name = "
        "'" VK_META_HEARTBEAT_EPOCH
        "'), (SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_HEARTBEAT_SEQ
        "'), (SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_HEARTBEAT_AT
        "'), (SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_HEARTBEAT_REV
        "'), (SELECT CAST(value AS INTEGER) FROM meta WHERE name = '" VK_META_TRUST_EPOCH "')",
    /* ?1 the heartbeat, ?2 now, ?3 whether it is counted (it has a seq) */
    [S_HB_META] = "INSERT INTO meta (name, value) SELECT * FROM (VALUES"
                  " ('" VK_META_HEARTBEAT_REV "', json_extract(?1, '$.rev')),"
                  " ('" VK_META_HEARTBEAT_AT "', json_extract(?1, '$.at')),"
                  " ('" VK_META_HEARTBEAT_SEEN "', ?2),"
                  " ('" VK_META_AUTHORITY "', json_extract(?1, '$.authority')),"
                  " ('" VK_META_HEARTBEAT_EPOCH "', coalesce(json_extract(?1, '$.epoch'), 0)),"
                  " ('" VK_META_HEARTBEAT_FORMAT "', coalesce(json_extract(?1, '$.format'), 1)))"
                  " UNION ALL SELECT '" VK_META_HEARTBEAT_SEQ "', json_extract(?1, '$.seq')"
                  " WHERE ?3 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    /* each record is applied whole or not at all, inside the caller's transaction */
    [S_SAVEPOINT] = "SAVEPOINT vk_record",
    [S_ROLLBACK_TO] = "ROLLBACK TO vk_record",
    [S_RELEASE] = "RELEASE vk_record",
};

/* Where this machine is: its location and organization, "" while unknown. */
struct place {
	char location[VK_UUID_STRLEN + 1];
	char org[VK_UUID_STRLEN + 1];
};

struct vk_replica {
	sqlite3 *db;
	char machine[VK_UUID_STRLEN + 1];
	struct place place;
	int placed; /* place is what the tree says now */
	sqlite3_stmt *st[S_COUNT];
};

static void
unhex_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *hex = (const char *)sqlite3_value_text(argv[0]);
	unsigned char buf[256];
	size_t n;

	(void)argc;
	if (hex == NULL || sodium_hex2bin(buf, sizeof buf, hex, strlen(hex), NULL, &n, NULL) != 0) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_blob(ctx, buf, (int)n, SQLITE_TRANSIENT);
}

vk_rc
vk_replica_open(sqlite3 *db, const char *machine_id, struct vk_replica **out, char err[VK_ERRLEN])
{
	struct vk_replica *r;

	*out = NULL;
	if (machine_id != NULL && !vk_uuid_valid(machine_id)) {
		vk_seterr(err, "machine ID \"%s\" is not a lowercase UUIDv4", machine_id);
		return VK_ERR_USAGE;
	}
	if (sqlite3_create_function(db, "vk_unhex", 1,
	                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                            unhex_fn, NULL, NULL) != SQLITE_OK)
		return vk_store_error(db, "cannot register SQL functions", err);
	if ((r = calloc(1, sizeof *r)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	r->db = db;
	if (machine_id != NULL)
		memcpy(r->machine, machine_id, sizeof r->machine);
	*out = r;
	return VK_OK;
}

void
vk_replica_close(struct vk_replica *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(r->st[i]);
	free(r);
}

/* Statement i, prepared on first use, reset, with ?1.. bound from the varargs. */
static vk_rc
bind(struct vk_replica *r, int i, char err[VK_ERRLEN], const char *types, va_list ap)
{
	if (r->st[i] == NULL && sqlite3_prepare_v3(r->db, sqls[i], -1, SQLITE_PREPARE_PERSISTENT,
	                                           &r->st[i], NULL) != SQLITE_OK)
		return vk_store_error(r->db, "cannot prepare the replica's statements", err);
	sqlite3_reset(r->st[i]);
	sqlite3_clear_bindings(r->st[i]);
	if (vk_store_vbind(r->st[i], types, ap) != SQLITE_OK)
		return vk_store_error(r->db, "cannot apply the record", err);
	return VK_OK;
}

/* Runs statement i to its end; *changes, when asked for, the rows it changed. */
static vk_rc
run(struct vk_replica *r, int i, int *changes, char err[VK_ERRLEN], const char *types, ...)
{
	va_list ap;
	vk_rc rc;
	int step;

	va_start(ap, types);
	rc = bind(r, i, err, types, ap);
	va_end(ap);
	if (rc != VK_OK)
		return rc;
	while ((step = sqlite3_step(r->st[i])) == SQLITE_ROW)
		;
	rc = step == SQLITE_DONE ? VK_OK : vk_store_error(r->db, "cannot apply the record", err);
	if (rc == VK_OK && changes != NULL)
		*changes = sqlite3_changes(r->db);
	sqlite3_reset(r->st[i]);
	return rc;
}

/* Runs statement i and leaves it on its first row (SQLITE_ROW) or done; the caller resets it. */
static int
first_row(struct vk_replica *r, int i, vk_rc *rc, char err[VK_ERRLEN], const char *types, ...)
{
	va_list ap;
	int step;

	va_start(ap, types);
	*rc = bind(r, i, err, types, ap);
	va_end(ap);
	if (*rc != VK_OK)
		return SQLITE_ERROR;
	step = sqlite3_step(r->st[i]);
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		*rc = vk_store_error(r->db, "cannot read the replica", err);
	return step;
}

static void
copy_column(sqlite3_stmt *st, int col, char *out, size_t size)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(out, size, "%s", v != NULL ? (const char *)v : "");
}

/* The text at path in json (a one-off: only placeholders of the tree need it), or "". */
static vk_rc
json_text(sqlite3 *db, const char *json, const char *path, char *out, size_t size,
          char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	vk_rc rc;

	out[0] = '\0';
	if ((rc = vk_store_prepare(db, "a malformed record", err, &st,
	                           "SELECT json_extract(?1, ?2)", "tt", json, path)) != VK_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW)
		copy_column(st, 0, out, size);
	sqlite3_finalize(st);
	if (!vk_uuid_valid(out)) {
		vk_seterr(err, "a record names a malformed %s", path + 2);
		return VK_ERR_USAGE;
	}
	return VK_OK;
}

/* This machine's place in the tree, read again when a tree record may have changed it. */
static vk_rc
locate(struct vk_replica *r, struct place *p, char err[VK_ERRLEN])
{
	vk_rc rc = VK_OK;

	if (!r->placed) {
		memset(&r->place, 0, sizeof r->place);
		if (first_row(r, S_LOCATE, &rc, err, "t", r->machine) == SQLITE_ROW) {
			copy_column(r->st[S_LOCATE], 0, r->place.location,
			            sizeof r->place.location);
			copy_column(r->st[S_LOCATE], 1, r->place.org, sizeof r->place.org);
		}
		sqlite3_reset(r->st[S_LOCATE]);
		r->placed = rc == VK_OK;
	}
	*p = r->place;
	return rc;
}

vk_rc
vk_replica_scopes(struct vk_replica *r, char scopes[3][VK_ENTRY_MAX], int *n, char err[VK_ERRLEN])
{
	struct place p;
	vk_rc rc = locate(r, &p, err);

	*n = 0;
	if (rc != VK_OK)
		return rc;
	snprintf(scopes[(*n)++], VK_ENTRY_MAX, "m.%s", r->machine);
	if (p.location[0] != '\0')
		snprintf(scopes[(*n)++], VK_ENTRY_MAX, "l.%s", p.location);
	if (p.org[0] != '\0')
		snprintf(scopes[(*n)++], VK_ENTRY_MAX, "o.%s", p.org);
	return VK_OK;
}

static vk_rc
apply_key(struct vk_replica *r, const char *id, const char *json, char err[VK_ERRLEN])
{
	static const int steps[] = {S_KEY_UNUSERS, S_KEY_UNGRANTS, S_KEY_UNSECRETS, S_KEY_UPSERT,
	                            S_KEY_USERS,   S_KEY_GRANTS,   S_KEY_SECRETS};
	vk_rc rc = VK_OK;

	for (size_t i = 0; i < sizeof steps / sizeof steps[0] && rc == VK_OK; i++)
		rc = run(r, steps[i], NULL, err, "tt", id, json);
	return rc;
}

/*
 * A key's tombstone: what is left of its filings is in $.scopes. If one of
 * them is this machine's, the key stays, without the grants on what it
 * left (the full record of the same change completes it); else it goes.
 */
static vk_rc
apply_key_tombstone(struct vk_replica *r, const struct place *p, const char *id, const char *json,
                    char err[VK_ERRLEN])
{
	int stays = 0;
	vk_rc rc;

	/* a full copy (r->machine ""): the key stays while it is filed anywhere */
	if (r->machine[0] == '\0') {
		if (first_row(r, S_TOMB_ANYWHERE, &rc, err, "t", json) == SQLITE_ROW)
			stays = sqlite3_column_int(r->st[S_TOMB_ANYWHERE], 0);
		sqlite3_reset(r->st[S_TOMB_ANYWHERE]);
	} else {
		if (first_row(r, S_TOMB_STAYS, &rc, err, "tttt", json, r->machine, p->location,
		              p->org) == SQLITE_ROW)
			stays = sqlite3_column_int(r->st[S_TOMB_STAYS], 0);
		sqlite3_reset(r->st[S_TOMB_STAYS]);
	}
	if (rc != VK_OK)
		return rc;
	if (!stays)
		return run(r, S_KEY_DELETE, NULL, err, "t", id);
	return run(r, S_TOMB_GRANTS, NULL, err, "tt", id, json);
}

/* A tree record, or its tombstone. */
static vk_rc
apply_tree(struct vk_replica *r, const char *type, const char *id, const char *json, int tombstone,
           char err[VK_ERRLEN])
{
	char org[VK_UUID_STRLEN + 1], loc[VK_UUID_STRLEN + 1];
	vk_rc rc = VK_OK;

	r->placed = 0; /* a tree record may move this machine */
	if (strcmp(type, "organization") == 0)
		return run(r, tombstone ? S_ORG_DELETE : S_ORG_UPSERT, NULL, err, "tt", id, json);
	if (strcmp(type, "location") == 0) {
		if (tombstone)
			return run(r, S_LOC_DELETE, NULL, err, "t", id);
		if ((rc = json_text(r->db, json, "$.location.org_id", org, sizeof org, err)) !=
		        VK_OK ||
		    (rc = run(r, S_ORG_PLACE, NULL, err, "t", org)) != VK_OK)
			return rc;
		return run(r, S_LOC_UPSERT, NULL, err, "tt", id, json);
	}
	if (strcmp(type, "machine") == 0) {
		if (tombstone)
			return run(r, S_MACHINE_DELETE, NULL, err, "t", id);
		if ((rc = json_text(r->db, json, "$.machine.org_id", org, sizeof org, err)) !=
		        VK_OK ||
		    (rc = json_text(r->db, json, "$.machine.location_id", loc, sizeof loc, err)) !=
		        VK_OK ||
		    (rc = run(r, S_ORG_PLACE, NULL, err, "t", org)) != VK_OK ||
		    (rc = run(r, S_LOC_PLACE, NULL, err, "tt", loc, org)) != VK_OK)
			return rc;
		return run(r, S_MACHINE_UPSERT, NULL, err, "tt", id, json);
	}
	vk_seterr(err, "a record of unknown type \"%s\"", type);
	return VK_ERR_USAGE;
}

/* Column i of st as an integer, or `none` when it is NULL or not an integer. */
static int64_t
column_int(sqlite3_stmt *st, int i, int64_t none)
{
	return sqlite3_column_type(st, i) == SQLITE_INTEGER ? sqlite3_column_int64(st, i) : none;
}

/*
 * Rule 8: heartbeats are ordered by their epoch and counter, never by the
 * clock; one signed further ahead of this machine's clock than VK_CLOCK_SKEW
 * is refused and changes nothing, so it cannot hold back the ones after it.
 * A heartbeat without a counter (an authority of format 1) is ordered by
 * time and revision, as that format was, until a counted one has come.
 */
static vk_rc
apply_heartbeat(struct vk_replica *r, const char *json, int64_t now, struct vk_apply_result *out,
                char err[VK_ERRLEN])
{
	int64_t epoch, seq, rev, at, held_epoch, held_seq, held_at, held_rev, trusted;
	sqlite3_stmt *st;
	int newer;
	vk_rc rc;

	if (first_row(r, S_HB_HELD, &rc, err, "t", json) != SQLITE_ROW) {
		sqlite3_reset(r->st[S_HB_HELD]);
		return rc;
	}
	st = r->st[S_HB_HELD];
	epoch = column_int(st, 0, 0);
	seq = column_int(st, 1, -1);
	rev = column_int(st, 2, -1);
	at = column_int(st, 3, -1);
	held_epoch = column_int(st, 4, 0);
	held_seq = column_int(st, 5, -1);
	held_at = column_int(st, 6, 0);
	held_rev = column_int(st, 7, -1);
	trusted = column_int(st, 8, 0);
	sqlite3_reset(st);
	if (rev < 0 || at < 0 || sqlite3_column_type(st, 1) == SQLITE_FLOAT) {
		vk_seterr(err, "a malformed heartbeat");
		return VK_ERR_USAGE;
	}
	out->rev = rev;
	out->beat_epoch = epoch;
	out->beat_seq = seq;
	if (epoch < trusted) {
		out->what = VK_APPLIED_FORMER;
		return VK_OK;
	}
	if (at > now + VK_CLOCK_SKEW) {
		out->what = VK_APPLIED_FUTURE;
		return VK_OK;
	}
	if (seq >= 0)
		newer =
		    held_seq < 0 || epoch > held_epoch || (epoch == held_epoch && seq > held_seq);
	else
		newer = held_seq < 0 && (at > held_at || (at == held_at && rev > held_rev));
	if (!newer)
		return VK_OK;
	out->what = VK_APPLIED_HEARTBEAT;
	return run(r, S_HB_META, NULL, err, "tii", json, now, (int64_t)(seq >= 0));
}

/*
 * Rules 6 and 7: an entry's value concerns this machine only when the entry
 * is under one of its scopes and the record is what that entry holds: the
 * tree record of that very scope, or a record of the key the entry names
 * that grants something in that scope (a tombstone: that left it). 1 when
 * it fits.
 */
static int
filed(struct vk_replica *r, const struct place *p, const char *entry, const char *type,
      const char *id, const char *json, vk_rc *rc, char err[VK_ERRLEN])
{
	char scope[VK_SCOPE_MAX], mine[3][VK_SCOPE_MAX];
	const char *rest;
	int fits = 0;

	*rc = VK_OK;
	if (strlen(entry) < VK_SCOPE_MAX + 1 || entry[VK_SCOPE_MAX - 1] != '.')
		return 0;
	memcpy(scope, entry, VK_SCOPE_MAX - 1);
	scope[VK_SCOPE_MAX - 1] = '\0';
	rest = entry + VK_SCOPE_MAX;
	snprintf(mine[0], sizeof mine[0], "m.%s", r->machine);
	snprintf(mine[1], sizeof mine[1], "l.%s", p->location);
	snprintf(mine[2], sizeof mine[2], "o.%s", p->org);
	/* a full copy (r->machine "") holds every scope */
	if (r->machine[0] == '\0' ? !vk_scope_valid(scope)
	                          : strcmp(scope, mine[0]) != 0 &&
	                                (p->location[0] == '\0' || strcmp(scope, mine[1]) != 0) &&
	                                (p->org[0] == '\0' || strcmp(scope, mine[2]) != 0))
		return 0;
	if (strcmp(rest, "t") == 0)
		return strcmp(id, scope + 2) == 0 &&
		       strcmp(type, scope[0] == 'o'   ? "organization"
		                    : scope[0] == 'l' ? "location"
		                                      : "machine") == 0;
	if (strncmp(rest, "k.", 2) != 0 || strcmp(rest + 2, id) != 0 || strcmp(type, "key") != 0)
		return 0;
	if (first_row(r, S_FILED, rc, err, "tt", json, scope) == SQLITE_ROW)
		fits = sqlite3_column_int(r->st[S_FILED], 0);
	sqlite3_reset(r->st[S_FILED]);
	return fits;
}

vk_rc
vk_replica_apply(struct vk_replica *r, const char *entry, int64_t floor, const char *json,
                 size_t len, int64_t now, struct vk_apply_result *out, char err[VK_ERRLEN])
{
	char *text = NULL, type[16] = "", err2[VK_ERRLEN];
	int saved = 0, is_hb, pruned = 0, held_changes = 0;
	int64_t held_rev = -1, held_full = 0, tombstone = 0, epoch, held_epoch = -1, trusted;
	struct place before, after;
	sqlite3_stmt *head = NULL;
	vk_rc rc;
	int step;

	memset(out, 0, sizeof *out);
	out->what = VK_APPLIED_OLD;
	if ((text = malloc(len + 1)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	memcpy(text, json, len);
	text[len] = '\0';
	step = first_row(r, S_HEAD, &rc, err, "t", text);
	head = r->st[S_HEAD];
	if (rc != VK_OK) {
		vk_seterr(err, "a malformed record (%s)", sqlite3_errmsg(r->db));
		rc = VK_ERR_USAGE;
		goto out;
	}
	if (step != SQLITE_ROW || sqlite3_column_int(head, 0) != 1 ||
	    sqlite3_column_type(head, 3) != SQLITE_INTEGER || sqlite3_column_int64(head, 3) <= 0) {
		vk_seterr(err, "a malformed record (version, type or revision)");
		rc = VK_ERR_USAGE;
		goto out;
	}
	copy_column(head, 1, type, sizeof type);
	copy_column(head, 1, out->kind, sizeof out->kind);
	copy_column(head, 2, out->id, sizeof out->id);
	out->rev = sqlite3_column_int64(head, 3);
	tombstone = sqlite3_column_int64(head, 4);
	if (sqlite3_column_type(head, 5) == SQLITE_INTEGER) {
		held_rev = sqlite3_column_int64(head, 5);
		held_full = sqlite3_column_int64(head, 6);
		held_epoch = sqlite3_column_int64(head, 8);
	}
	epoch = sqlite3_column_int64(head, 7);
	trusted = sqlite3_column_int64(head, 9);
	sqlite3_reset(head);
	/* rule 10: a former authority's values change nothing */
	if (epoch < trusted) {
		out->what = VK_APPLIED_FORMER;
		goto out;
	}

	is_hb = strcmp(type, "heartbeat") == 0;
	if (is_hb != (strcmp(entry, "hb") == 0)) {
		out->what = VK_APPLIED_MISFILED;
		goto out;
	}
	if (!is_hb && !vk_uuid_valid(out->id)) {
		vk_seterr(err, "a %s record with a malformed ID", type);
		rc = VK_ERR_USAGE;
		goto out;
	}
	if ((rc = run(r, S_SAVEPOINT, NULL, err, "")) != VK_OK)
		goto out;
	saved = 1;
	if (is_hb) {
		rc = apply_heartbeat(r, text, now, out, err);
		goto out;
	}
	if ((rc = locate(r, &before, err)) != VK_OK)
		goto out;
	if (!filed(r, &before, entry, type, out->id, text, &rc, err)) {
		if (rc == VK_OK)
			out->what = VK_APPLIED_MISFILED;
		goto out;
	}
	/* rule 9: a value older than its scope's head says the entry is, is a replay */
	if (out->rev < floor) {
		out->what = VK_APPLIED_STALE;
		goto out;
	}
	/* rule 7: the newest value seen under this entry, whatever the entity's state */
	if ((rc = run(r, S_ENTRY, NULL, err, "tii", entry, out->rev, tombstone)) != VK_OK)
		goto out;
	/* rule 2: newer only (a higher epoch is); a full record completes a tombstone of its own */
	if (epoch < held_epoch ||
	    (epoch == held_epoch &&
	     (out->rev < held_rev || (out->rev == held_rev && (held_full || tombstone)))))
		goto out;
	if (strcmp(type, "key") == 0)
		rc = tombstone ? apply_key_tombstone(r, &before, out->id, text, err)
		               : apply_key(r, out->id, text, err);
	else
		rc = apply_tree(r, type, out->id, text, (int)tombstone, err);
	if (rc != VK_OK || (rc = locate(r, &after, err)) != VK_OK)
		goto out;
	out->moved =
	    strcmp(before.location, after.location) != 0 || strcmp(before.org, after.org) != 0;
	if (strcmp(type, "key") != 0)
		r->placed = 0; /* the caller may yet roll the tree record back: read it again */
	/* rule 3, for this key, or for every key once the machine's place changed */
	if (r->machine[0] != '\0' && (strcmp(type, "key") == 0 || out->moved) &&
	    (rc = run(r, out->moved ? S_PRUNE_ALL : S_PRUNE_KEY, &held_changes, err, "tttt",
	              out->moved ? NULL : out->id, r->machine, after.location, after.org)) != VK_OK)
		goto out;
	pruned = !out->moved && strcmp(type, "key") == 0 && !tombstone && held_changes > 0;
	/*
	 * A key record that does not cover this machine is held as a
	 * tombstone would be: an older record stays refused, and the full
	 * record of this same revision, should one come that covers it, is
	 * still applied.
	 */
	if ((rc = run(r, S_HELD, NULL, err, "ttiii", type, out->id, out->rev,
	              (int64_t)(!tombstone && !pruned), epoch)) != VK_OK)
		goto out;
	out->what = VK_APPLIED;
out:
	sqlite3_reset(r->st[S_HEAD]);
	if (saved) {
		vk_rc released;

		if (rc != VK_OK)
			(void)run(r, S_ROLLBACK_TO, NULL, err2, "");
		released = run(r, S_RELEASE, NULL, rc == VK_OK ? err : err2, "");
		if (rc == VK_OK)
			rc = released;
	}
	if (rc != VK_OK) {
		r->placed = 0;
		out->what = VK_APPLIED_OLD;
	}
	free(text);
	return rc;
}
