/*
 * record.h - the fleet's signed records (SPEC §8).
 *
 * The authority turns each changed organization, location, machine or key
 * into one record: a JSON document with the entity's whole state (never a
 * secret: a key's live secrets travel as verifiers with their salts), the
 * authority's revision of that change and its time. It is filed on the bus
 * under every entry that names it (a key: one per grant, under the
 * organization, location or machine the grant names), and a tombstone, which
 * says what is left, under every entry that named it before and no longer
 * does. Each value is signed with the authority's Ed25519 key:
 *
 *     "vk1." base64url(signature) "." JSON
 *
 * where the detached signature covers "viamkey record v1\n" and the JSON.
 * A machine applies a record only after the signature verifies, and only if
 * its revision is newer than what it holds of that entity (vk_replica_apply).
 *
 * Entries (the Key-Value bucket's keys): o.<org>.t, l.<location>.t,
 * m.<machine>.t, o.<org>.k.<key>, l.<location>.k.<key>, m.<machine>.k.<key>,
 * hb (the heartbeat) and a.<machine> (a machine's acknowledgement, unsigned).
 */
#ifndef VK_RECORD_H
#define VK_RECORD_H

#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <sys/types.h>

#include "vk.h"

#define VK_SIGNING_KEY_BYTES crypto_sign_SECRETKEYBYTES
#define VK_PUBLIC_KEY_BYTES  crypto_sign_PUBLICKEYBYTES
#define VK_PUBLIC_KEY_B64                                                                          \
	(sodium_base64_ENCODED_LEN(VK_PUBLIC_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL))
#define VK_ENTRY_MAX  96            /* "o." + UUID + ".k." + UUID, with room */
#define VK_RECORD_MAX (1024 * 1024) /* the bus's largest message */

/*
 * Creates the signing key file at path (mode 0600, O_EXCL: an existing file
 * is never overwritten) and writes its public half, base64, into
 * public_b64. The secret key is generated and written from sodium_malloc()
 * memory, wiped before returning.
 */
vk_rc vk_signing_key_create(const char *path, char public_b64[VK_PUBLIC_KEY_B64],
                            char err[VK_ERRLEN]);

/*
 * The key files of signing and root keys: the secret key in base64 on the
 * first line, and a trailer line (a root key's "version N") when given.
 * vk_key_file_write() creates path (mode 0600, O_EXCL: an existing file is
 * never overwritten) or, with replace, writes "<path>.tmp" and renames it
 * over path; the file and then its directory fsync()ed either way, so that
 * the key is on disk once this returns. vk_key_file_read() checks the opened
 * file (regular, owned by root or the euid, no access for group or others)
 * and reads the key and, into trailer when not NULL, the trailer line.
 */
vk_rc vk_key_file_write(const char *path, const unsigned char *sk, const char *trailer, int replace,
                        char err[VK_ERRLEN]);
/*
 * The same for any text (len bytes), with exactly mode, whatever the umask (0600 for a secret: a
 * .creds file, the bus's keys). vk_secret_file_read() checks the opened file as vk_key_file_read()
 * does and reads it whole into text (size bytes, NUL-terminated; a file that does not fit is
 * refused), its length into *len.
 */
vk_rc vk_file_write(const char *path, const char *text, size_t len, mode_t mode, int replace,
                    char err[VK_ERRLEN]);
vk_rc vk_secret_file_read(const char *path, char *text, size_t size, size_t *len,
                          char err[VK_ERRLEN]);

/* rename(from, to), then fsync() of to's directory; 0, or -1 with errno set. */
int vk_file_rename(const char *from, const char *to);

vk_rc vk_key_file_read(const char *path, unsigned char *sk, char *trailer, size_t size,
                       char err[VK_ERRLEN]);

/*
 * Reads the signing key at path into sk (VK_SIGNING_KEY_BYTES of
 * sodium_malloc() memory owned by the caller), after checking the opened
 * file: regular, owned by root or the euid, no access for group or others.
 */
vk_rc vk_signing_key_load(const char *path, unsigned char *sk, char err[VK_ERRLEN]);

/* The public half of sk, base64. */
void vk_public_key_b64(const unsigned char *sk, char out[VK_PUBLIC_KEY_B64]);

/* Decodes [sync] authority_key; -1 when it is not 32 bytes of base64. */
int vk_public_key_parse(const char *b64, unsigned char pk[VK_PUBLIC_KEY_BYTES]);

/* What the authority publishes for one entity. */
struct vk_publication {
	char kind[16];
	char id[VK_UUID_STRLEN + 1];
	int64_t rev;
	char *value;     /* the signed record, for every entry in `entries` */
	char *tombstone; /* the signed tombstone, for every entry in `gone` */
	char (*entries)[VK_ENTRY_MAX];
	size_t nentries;
	char (*gone)[VK_ENTRY_MAX];
	size_t ngone;
};

/*
 * Builds, from the store's current state, the publication of entity
 * (kind, id) at revision rev, signed with sk in `epoch`: its record and
 * entries if it exists, and a tombstone for each entry sync_published lists
 * for it that it no longer has. Runs in the caller's read transaction.
 * vk_publication_free() frees it.
 */
vk_rc vk_record_build(sqlite3 *db, const unsigned char *sk, int64_t epoch, const char *kind,
                      const char *id, int64_t rev, int64_t now, struct vk_publication *pub,
                      char err[VK_ERRLEN]);

void vk_publication_free(struct vk_publication *pub);

/*
 * After every entry of pub is on the bus: records its entries, with their
 * revision, in sync_published, marks their scopes' pages for a new head
 * (sync_dirty, scope.h), and removes its outbox row unless a newer change
 * of the entity came meanwhile. Runs in the caller's write transaction.
 */
vk_rc vk_record_published(sqlite3 *db, const struct vk_publication *pub, char err[VK_ERRLEN]);

/*
 * Before any entry of pub goes out (live, or into the bucket): records in
 * sync_published each of its entries that is not there yet, at pub's
 * revision, so that a later change of the entity that leaves one of them
 * puts a tombstone there even when this publication is never confirmed (a
 * record sent live while the bucket refused it, then deleted: the machines
 * that got it live must hear of the delete). Such a row lives only while
 * the entity's outbox row does: vk_record_published() of a later
 * publication overwrites it. Runs in the caller's write transaction.
 */
vk_rc vk_record_sending(sqlite3 *db, const struct vk_publication *pub, char err[VK_ERRLEN]);

/*
 * The signed heartbeat: the authority's revision, its time, its name, the
 * counter that orders heartbeats, the epoch and the format it publishes,
 * and the certificate of its key (cert, base64url of its value; NULL for a
 * fleet of [sync] authority_key alone). malloc()ed; NULL when out of memory.
 */
char *vk_record_heartbeat(const unsigned char *sk, int64_t rev, int64_t now, const char *name,
                          int64_t seq, int64_t epoch, const char *cert);

/* Any JSON text, signed as a value of the bus; malloc()ed, NULL when out of memory. */
char *vk_record_sign(const unsigned char *sk, const char *json);

/*
 * Verifies a value taken from the bus against the authority's public key;
 * on success *json points into value at the signed JSON (json_len bytes).
 * VK_ERR_USAGE for anything malformed or not signed by that key.
 */
vk_rc vk_record_verify(const unsigned char pk[VK_PUBLIC_KEY_BYTES], const char *value, size_t len,
                       const char **json, size_t *json_len, char err[VK_ERRLEN]);

/* What applying one record did. */
enum vk_applied {
	VK_APPLIED,           /* the replica now holds the record's state */
	VK_APPLIED_OLD,       /* not newer than what the replica holds: ignored */
	VK_APPLIED_ELSEWHERE, /* concerns no entity this machine holds: ignored */
	VK_APPLIED_HEARTBEAT, /* a newer heartbeat, recorded */
	VK_APPLIED_MISFILED,  /* not this machine's entry, or not what that entry holds: dropped */
	VK_APPLIED_FUTURE,    /* a heartbeat signed beyond VK_CLOCK_SKEW ahead: refused */
	VK_APPLIED_STALE,     /* older than its scope's head says the entry is: refused */
	VK_APPLIED_FORMER,    /* of an epoch below the one the replica trusts: refused */
};

struct vk_apply_result {
	enum vk_applied what;
	char kind[16];
	char id[VK_UUID_STRLEN + 1];
	int64_t rev;
	int moved; /* this machine's place in the tree changed: its scopes may have too */
	/* a heartbeat's place in their order, newer than the replica's or not (seq -1: uncounted)
	 */
	int64_t beat_epoch, beat_seq;
};

/*
 * A machine's replica, as its daemon applies records to it: the store's
 * connection (the caller's, which must outlive it), this machine's ID, and
 * the statements it runs, prepared once.
 */
struct vk_replica;

/*
 * machine_id NULL: a full copy, a standby's (SPEC §10), which holds every
 * scope: no key is pruned for its coverage, and one leaves only when its
 * tombstone says it is filed nowhere.
 */
vk_rc vk_replica_open(sqlite3 *db, const char *machine_id, struct vk_replica **out,
                      char err[VK_ERRLEN]);
void vk_replica_close(struct vk_replica *r);

/*
 * Applies one verified record (its JSON), the value of `entry` on the bus,
 * to the replica, in the caller's write transaction. A record that is not
 * what that entry of this machine's scopes holds (a tree record of another
 * scope, a key's record under a scope it grants nothing in) is
 * VK_APPLIED_MISFILED and changes nothing, and so does one older than
 * `floor`, the revision the scope's index page lists for the entry (0 when
 * none is known): VK_APPLIED_STALE. Otherwise the entry's revision is
 * recorded, and the record applied only if its revision is newer than
 * the one sync_held records for the entity (a full record also replaces a
 * tombstone of the same revision); then the replica holds a key only while
 * one of its grants covers this machine. `now` is the local time, recorded
 * with a heartbeat (entry "hb"). A record is applied whole or not at all (a
 * savepoint): on an error nothing of it stays, and the caller's
 * transaction goes on.
 */
vk_rc vk_replica_apply(struct vk_replica *r, const char *entry, int64_t floor, const char *json,
                       size_t len, int64_t now, struct vk_apply_result *out, char err[VK_ERRLEN]);

/*
 * This machine's scopes, as entry prefixes ("m.<machine>", "l.<location>",
 * "o.<org>"): those the replica knows; *n is 1 until the machine's own
 * record has arrived.
 */
vk_rc vk_replica_scopes(struct vk_replica *r, char scopes[3][VK_ENTRY_MAX], int *n,
                        char err[VK_ERRLEN]);

#endif
