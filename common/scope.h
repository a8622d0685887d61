/*
 * scope.h - scope heads and index pages on the store's side (SPEC §8,
 * rule 8; head.h has their text).
 *
 * On the authority, every entry published with its revision in
 * sync_published marks its scope's page in sync_dirty (record.h);
 * vk_heads_build() makes the signed heads and changed pages those rows
 * call for, and vk_heads_published() records them once the bus took them.
 *
 * On a replica, sync_entries holds the newest revision seen under each
 * entry of its scopes (record.h) and sync_heads the newest head of each
 * scope. vk_scope_compare() tells which pages of a scope differ from its
 * head, vk_scope_behind() which keys of a page the replica has not seen at
 * the page's revision.
 */
#ifndef VK_SCOPE_H
#define VK_SCOPE_H

#include <sqlite3.h>
#include <stdint.h>

#include "head.h"
#include "vk.h"

/* A scope's new head and the pages that changed since the last one. */
struct vk_head_pub {
	char scope[VK_SCOPE_MAX];
	int64_t dirty_rev;          /* the newest sync_dirty revision it answers */
	struct vk_head head;        /* what it says */
	char *value;                /* the head, signed */
	char *pages[VK_HEAD_PAGES]; /* each changed page, signed; NULL for the others */
	int64_t page_rev[VK_HEAD_PAGES];
};

/*
 * The authority: builds, in the caller's read transaction, the heads of up
 * to `max` scopes that sync_dirty names (those dirtied first), signed with
 * sk in `epoch` at time `now`. *out (*n of them) is freed with
 * vk_heads_free(); none is built when nothing is due.
 */
vk_rc vk_heads_build(sqlite3 *db, const unsigned char *sk, int64_t epoch, int64_t now, size_t max,
                     struct vk_head_pub **out, size_t *n, char err[VK_ERRLEN]);

/*
 * After every value of pubs is on the bus, in the caller's write
 * transaction: records their pages in sync_pages and clears the sync_dirty
 * rows they answered (not those dirtied again since).
 */
vk_rc vk_heads_published(sqlite3 *db, const struct vk_head_pub *pubs, size_t n,
                         char err[VK_ERRLEN]);

void vk_heads_free(struct vk_head_pub *pubs, size_t n);

/*
 * A replica: the pages (bit p for page p) whose keys in sync_entries do not
 * add up to h's digest of that page, and whether the tree record's
 * revision differs from h's.
 */
vk_rc vk_scope_compare(sqlite3 *db, const struct vk_head *h, unsigned *pages, int *tree,
                       char err[VK_ERRLEN]);

/*
 * A replica: the indices into keys (a page of scope, in ID order) of those
 * it has not seen at the page's revision: none, or an older one, under
 * "<scope>.k.<id>". *want is malloc()ed (*nwant of them; may be NULL when
 * there are none).
 */
vk_rc vk_scope_behind(sqlite3 *db, const char *scope, const struct vk_page_key *keys, size_t n,
                      size_t **want, size_t *nwant, char err[VK_ERRLEN]);

/*
 * A replica: keeps h (value: its verified text) as scope's head unless the
 * one held is newer (a head of a lower epoch, or of the same epoch and a
 * lower revision, is never kept); *kept says whether it was. In the
 * caller's transaction.
 */
vk_rc vk_scope_hold(sqlite3 *db, const struct vk_head *h, const char *value, int *kept,
                    char err[VK_ERRLEN]);

/* A replica: the head held for scope; VK_ERR_NOTFOUND when it holds none. */
vk_rc vk_scope_held(sqlite3 *db, const char *scope, struct vk_head *h, char err[VK_ERRLEN]);

#endif
