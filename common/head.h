/*
 * head.h - a scope's signed head and its index pages (SPEC §8, rule 8).
 *
 * A scope is what a machine follows: "o.<org>", "l.<location>" or
 * "m.<machine>". Its entries on the bus are its tree record "<scope>.t" and
 * one "<scope>.k.<key>" for every key ever filed there: the key's record
 * while it is, a tombstone once it left. The authority describes each scope
 * in a head, "<scope>.h", and lists its keys in sixteen index pages,
 * "<scope>.i.<p>", page p holding the keys whose ID starts with the hex
 * digit p. They are of the fleet's format 2 (a machine of format 1 refuses
 * them as a version it does not know):
 *
 *   {"v":2,"type":"head","scope":S,"epoch":E,"rev":R,"at":T,"tree":RT,
 *    "count":N,"digest":"D","pages":[[N0,"D0"],...,[N15,"D15"]]}
 *   {"v":2,"type":"page","scope":S,"page":"p","rev":R,
 *    "keys":[["ID",REV,TOMB],...]}
 *
 * R is the newest revision of any entry of the scope (of the page, in a
 * page), T the authority's time, RT the tree record's revision (0 while it
 * has none), Np and Dp the number of keys of page p and their digest, N the
 * sum of the Np and D the digest of the pages. A page's digest is
 * BLAKE2b-128 over "<id> <rev> <k|x>\n" for each of its keys in ID order
 * (x: a tombstone); the head's over "<p> <Np> <Dp>\n" for p = 0..15, then
 * "t <RT>\n". Digests are lowercase hex.
 *
 * Both are written in exactly this form, without spaces, and the decoders
 * refuse any other text, a head whose count and digest do not add up, and
 * a page whose keys are not of it or not in order. Like every value on the
 * bus they travel signed (record.h). Pure functions: no I/O.
 */
#ifndef VK_HEAD_H
#define VK_HEAD_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "vk.h"

#define VK_HEAD_PAGES   16
#define VK_DIGEST_BYTES 16
#define VK_SCOPE_MAX    (2 + VK_UUID_STRLEN + 1) /* "o." UUID NUL */

/* Whether scope is "o.", "l." or "m." and a lowercase UUIDv4. */
int vk_scope_valid(const char *scope);

/* The page (0..15) of a key ID; -1 when id is not a lowercase UUIDv4. */
int vk_page_of(const char *id);

/* A page's digest, fed one key at a time in ID order. */
struct vk_digest {
	crypto_generichash_state st;
};
void vk_digest_start(struct vk_digest *d);
void vk_digest_key(struct vk_digest *d, const char *id, int64_t rev, int tomb);
void vk_digest_end(struct vk_digest *d, unsigned char out[VK_DIGEST_BYTES]);

struct vk_head {
	char scope[VK_SCOPE_MAX];
	int64_t epoch, rev, at, tree, count;
	unsigned char digest[VK_DIGEST_BYTES];
	struct {
		int64_t count;
		unsigned char digest[VK_DIGEST_BYTES];
	} pages[VK_HEAD_PAGES];
};

/* Sets h->count and h->digest from its pages and tree. */
void vk_head_seal(struct vk_head *h);

/* The head's text, malloc()ed; NULL when out of memory. */
char *vk_head_encode(const struct vk_head *h);

/* Parses a head's text; 0, or -1 for anything but a sealed head's exact text. */
int vk_head_decode(const char *json, size_t len, struct vk_head *h);

struct vk_page_key {
	char id[VK_UUID_STRLEN + 1];
	int64_t rev;
	int tomb;
};

/* The digest of n keys of one page, in ID order. */
void vk_page_digest(const struct vk_page_key *keys, size_t n, unsigned char out[VK_DIGEST_BYTES]);

/* Page `page` of scope, listing n keys in ID order; malloc()ed, NULL when out of memory. */
char *vk_page_encode(const char *scope, int page, int64_t rev, const struct vk_page_key *keys,
                     size_t n);

/*
 * Parses a page's text into scope, page, rev and *keys (malloc()ed, *n of
 * them; the caller frees it); 0, or -1 for anything but a page's exact
 * text, its keys all of that page, in strictly increasing ID order, with
 * revisions from 1 to rev.
 */
int vk_page_decode(const char *json, size_t len, char scope[VK_SCOPE_MAX], int *page, int64_t *rev,
                   struct vk_page_key **keys, size_t *n);

#endif
