/*
 * scope.c - scope heads and index pages: built from the authority's
 * store, compared with a replica's.
 *
 * Security rules for this file:
 *  1. A head describes exactly what the authority last published under its
 *     scope: every key entry, record or tombstone, with the revision it was
 *     published at (sync_published), and the tree record's revision.
 *  2. A replica is compared with a head only through what it has seen under
 *     each entry (sync_entries): a page that does not add up, or a key the
 *     replica has not seen at the page's revision, is reported, never
 *     guessed at.
 *  3. A replica never keeps a head older than the one it holds (a lower
 *     epoch, or the same epoch and a lower revision): a replayed head
 *     cannot lower what it expects.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "scope.h"
#include "store.h"

/* The range of entries "<scope>.k.<c>..." (c: one hex digit, or "" for all keys). */
static void
key_range(const char *scope, const char *c, char lo[VK_ENTRY_MAX], char hi[VK_ENTRY_MAX])
{
	snprintf(lo, VK_ENTRY_MAX, "%s.k.%s", scope, c);
	/* IDs are lowercase hex and '-', all below '~' */
	snprintf(hi, VK_ENTRY_MAX, "%s.k.%s~", scope, c);
}

/* The revision published (or seen, on a replica) under entry "<scope>.t"; 0 when none. */
static vk_rc
tree_rev(sqlite3 *db, const char *table, const char *scope, int64_t *rev, char err[VK_ERRLEN])
{
	char entry[VK_ENTRY_MAX], sql[128];

	snprintf(entry, sizeof entry, "%s.t", scope);
	snprintf(sql, sizeof sql, "SELECT max(rev) FROM %s WHERE entry = ?1", table);
	return vk_store_query_int(db, "cannot read the scope's tree record", err, rev, sql, "t",
	                          entry);
}

/* ---- the authority ------------------------------------------------------------- */

void
vk_heads_free(struct vk_head_pub *pubs, size_t n)
{
	for (size_t i = 0; pubs != NULL && i < n; i++) {
		free(pubs[i].value);
		for (int p = 0; p < VK_HEAD_PAGES; p++)
			free(pubs[i].pages[p]);
	}
	free(pubs);
}

/* Page p of pub's scope, from sync_published: its head entry, its signed text, its revision. */
static vk_rc
build_page(sqlite3 *db, const unsigned char *sk, struct vk_head_pub *pub, int p,
           char err[VK_ERRLEN])
{
	char lo[VK_ENTRY_MAX], hi[VK_ENTRY_MAX], c[2] = {"0123456789abcdef"[p], '\0'}, *text;
	struct vk_page_key *keys = NULL;
	size_t n = 0, cap = 0, skip = strlen(pub->scope) + 3;
	int64_t rev = 0;
	sqlite3_stmt *st;
	vk_rc rc;
	int step;

	key_range(pub->scope, c, lo, hi);
	if ((rc = vk_store_prepare(
	         db, "cannot read a scope's keys", err, &st,
	         "SELECT entry, rev, tomb FROM sync_published"
	         " WHERE entry > ?1 AND entry < ?2 AND kind = 'key' ORDER BY entry",
	         "tt", lo, hi)) != VK_OK)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *entry = (const char *)sqlite3_column_text(st, 0);

		if (entry == NULL || strlen(entry) != skip + VK_UUID_STRLEN)
			continue;
		if (n == cap) {
			struct vk_page_key *grown =
			    realloc(keys, (cap = cap ? cap * 2 : 64) * sizeof *keys);

			if (grown == NULL) {
				rc = VK_ERR_NOMEM;
				vk_seterr(err, "out of memory");
				break;
			}
			keys = grown;
		}
		memcpy(keys[n].id, entry + skip, VK_UUID_STRLEN + 1);
		keys[n].rev = sqlite3_column_int64(st, 1);
		keys[n].tomb = sqlite3_column_int(st, 2) != 0;
		if (keys[n].rev > rev)
			rev = keys[n].rev;
		n++;
	}
	if (rc == VK_OK && step != SQLITE_DONE)
		rc = vk_store_error(db, "cannot read a scope's keys", err);
	sqlite3_finalize(st);
	if (rc != VK_OK)
		goto out;
	pub->head.pages[p].count = (int64_t)n;
	vk_page_digest(keys, n, pub->head.pages[p].digest);
	pub->page_rev[p] = rev;
	if ((text = vk_page_encode(pub->scope, p, rev, keys, n)) == NULL ||
	    (pub->pages[p] = vk_record_sign(sk, text)) == NULL) {
		vk_seterr(err, "out of memory");
		rc = VK_ERR_NOMEM;
	}
	free(text);
out:
	free(keys);
	return rc;
}

/* The rest of pub's head: its unchanged pages as sync_pages last recorded them, and its tree. */
static vk_rc
build_head(sqlite3 *db, const unsigned char *sk, int64_t epoch, int64_t now,
           struct vk_head_pub *pub, char err[VK_ERRLEN])
{
	unsigned char empty[VK_DIGEST_BYTES];
	sqlite3_stmt *st;
	char *text;
	vk_rc rc;
	int step;

	/* a page never published is empty */
	vk_page_digest(NULL, 0, empty);
	for (int p = 0; p < VK_HEAD_PAGES; p++)
		if (pub->pages[p] == NULL)
			memcpy(pub->head.pages[p].digest, empty, VK_DIGEST_BYTES);
	if ((rc = vk_store_prepare(
	         db, "cannot read a scope's pages", err, &st,
	         "SELECT page, count, digest, rev FROM sync_pages WHERE scope = ?1", "t",
	         pub->scope)) != VK_OK)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int p = sqlite3_column_int(st, 0);

		if (p < 0 || p >= VK_HEAD_PAGES || pub->pages[p] != NULL ||
		    sqlite3_column_bytes(st, 2) != VK_DIGEST_BYTES)
			continue;
		pub->head.pages[p].count = sqlite3_column_int64(st, 1);
		memcpy(pub->head.pages[p].digest, sqlite3_column_blob(st, 2), VK_DIGEST_BYTES);
		pub->page_rev[p] = sqlite3_column_int64(st, 3);
	}
	if (step != SQLITE_DONE)
		rc = vk_store_error(db, "cannot read a scope's pages", err);
	sqlite3_finalize(st);
	if (rc != VK_OK ||
	    (rc = tree_rev(db, "sync_published", pub->scope, &pub->head.tree, err)) != VK_OK)
		return rc;
	memcpy(pub->head.scope, pub->scope, sizeof pub->head.scope);
	pub->head.epoch = epoch;
	pub->head.at = now;
	pub->head.rev = pub->head.tree;
	for (int p = 0; p < VK_HEAD_PAGES; p++)
		if (pub->page_rev[p] > pub->head.rev)
			pub->head.rev = pub->page_rev[p];
	vk_head_seal(&pub->head);
	if ((text = vk_head_encode(&pub->head)) == NULL ||
	    (pub->value = vk_record_sign(sk, text)) == NULL) {
		vk_seterr(err, "out of memory");
		rc = VK_ERR_NOMEM;
	}
	free(text);
	return rc;
}

vk_rc
vk_heads_build(sqlite3 *db, const unsigned char *sk, int64_t epoch, int64_t now, size_t max,
               struct vk_head_pub **out, size_t *n, char err[VK_ERRLEN])
{
	struct vk_head_pub *pubs = NULL;
	sqlite3_stmt *st = NULL, *pages = NULL;
	size_t count = 0;
	vk_rc rc;
	int step;

	*out = NULL;
	*n = 0;
	if ((rc = vk_store_prepare(db, "cannot read the scopes due", err, &st,
	                           "SELECT scope, max(rev) FROM sync_dirty GROUP BY scope"
	                           " ORDER BY min(rev), scope LIMIT ?1",
	                           "i", (int64_t)max)) != VK_OK)
		return rc;
	if ((pubs = calloc(max ? max : 1, sizeof *pubs)) == NULL) {
		vk_seterr(err, "out of memory");
		rc = VK_ERR_NOMEM;
		goto out;
	}
	while (rc == VK_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct vk_head_pub *pub = &pubs[count];
		const char *scope = (const char *)sqlite3_column_text(st, 0);

		if (scope == NULL || !vk_scope_valid(scope))
			continue;
		count++;
		snprintf(pub->scope, sizeof pub->scope, "%s", scope);
		pub->dirty_rev = sqlite3_column_int64(st, 1);
		if ((rc = vk_store_prepare(db, "cannot read the pages due", err, &pages,
		                           "SELECT DISTINCT page FROM sync_dirty WHERE scope = ?1"
		                           " AND page >= 0",
		                           "t", scope)) != VK_OK)
			break;
		while (rc == VK_OK && sqlite3_step(pages) == SQLITE_ROW) {
			int p = sqlite3_column_int(pages, 0);

			if (p < VK_HEAD_PAGES)
				rc = build_page(db, sk, pub, p, err);
		}
		sqlite3_finalize(pages);
		pages = NULL;
		if (rc == VK_OK)
			rc = build_head(db, sk, epoch, now, pub, err);
	}
	if (rc == VK_OK && step != SQLITE_DONE)
		rc = vk_store_error(db, "cannot read the scopes due", err);
out:
	sqlite3_finalize(st);
	if (rc != VK_OK || count == 0) {
		vk_heads_free(pubs, count);
		return rc;
	}
	*out = pubs;
	*n = count;
	return VK_OK;
}

vk_rc
vk_heads_published(sqlite3 *db, const struct vk_head_pub *pubs, size_t n, char err[VK_ERRLEN])
{
	vk_rc rc = VK_OK;

	for (size_t i = 0; i < n && rc == VK_OK; i++) {
		for (int p = 0; p < VK_HEAD_PAGES && rc == VK_OK; p++)
			if (pubs[i].pages[p] != NULL)
				rc = vk_store_exec(
				    db, "cannot record the published pages", err, NULL,
				    "INSERT INTO sync_pages (scope, page, count, digest, rev)"
				    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (scope, page) DO "
				    "UPDATE"
				    " SET count = excluded.count, digest = excluded.digest,"
				    " rev = excluded.rev",
				    "tiibi", pubs[i].scope, (int64_t)p, pubs[i].head.pages[p].count,
				    pubs[i].head.pages[p].digest, (size_t)VK_DIGEST_BYTES,
				    pubs[i].page_rev[p]);
		if (rc == VK_OK)
			rc = vk_store_exec(db, "cannot record the published heads", err, NULL,
			                   "DELETE FROM sync_dirty WHERE scope = ?1 AND rev <= ?2",
			                   "ti", pubs[i].scope, pubs[i].dirty_rev);
	}
	return rc;
}

/* ---- a replica ----------------------------------------------------------------- */

vk_rc
vk_scope_compare(sqlite3 *db, const struct vk_head *h, unsigned *pages, int *tree,
                 char err[VK_ERRLEN])
{
	char lo[VK_ENTRY_MAX], hi[VK_ENTRY_MAX];
	unsigned char digest[VK_DIGEST_BYTES];
	size_t skip = strlen(h->scope) + 3;
	struct vk_digest d[VK_HEAD_PAGES];
	int64_t count[VK_HEAD_PAGES] = {0}, t;
	sqlite3_stmt *st;
	vk_rc rc;
	int step;

	*pages = 0;
	*tree = 0;
	for (int p = 0; p < VK_HEAD_PAGES; p++)
		vk_digest_start(&d[p]);
	key_range(h->scope, "", lo, hi);
	if ((rc = vk_store_prepare(db, "cannot read the replica's entries", err, &st,
	                           "SELECT entry, rev, tomb FROM sync_entries"
	                           " WHERE entry > ?1 AND entry < ?2 ORDER BY entry",
	                           "tt", lo, hi)) != VK_OK)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *entry = (const char *)sqlite3_column_text(st, 0);
		int p;

		if (entry == NULL || strlen(entry) != skip + VK_UUID_STRLEN ||
		    (p = vk_page_of(entry + skip)) < 0)
			continue;
		vk_digest_key(&d[p], entry + skip, sqlite3_column_int64(st, 1),
		              sqlite3_column_int(st, 2));
		count[p]++;
	}
	if (step != SQLITE_DONE)
		rc = vk_store_error(db, "cannot read the replica's entries", err);
	sqlite3_finalize(st);
	for (int p = 0; p < VK_HEAD_PAGES; p++) {
		vk_digest_end(&d[p], digest);
		if (count[p] != h->pages[p].count ||
		    sodium_memcmp(digest, h->pages[p].digest, VK_DIGEST_BYTES) != 0)
			*pages |= 1u << p;
	}
	if (rc == VK_OK && (rc = tree_rev(db, "sync_entries", h->scope, &t, err)) == VK_OK)
		*tree = t != h->tree;
	return rc;
}

vk_rc
vk_scope_behind(sqlite3 *db, const char *scope, const struct vk_page_key *keys, size_t n,
                size_t **want, size_t *nwant, char err[VK_ERRLEN])
{
	char entry[VK_ENTRY_MAX];
	sqlite3_stmt *st;
	vk_rc rc;

	*want = NULL;
	*nwant = 0;
	if (n == 0)
		return VK_OK;
	if ((*want = malloc(n * sizeof **want)) == NULL) {
		vk_seterr(err, "out of memory");
		return VK_ERR_NOMEM;
	}
	if ((rc = vk_store_prepare(db, "cannot read the replica's entries", err, &st,
	                           "SELECT rev FROM sync_entries WHERE entry = ?1", "t", "")) !=
	    VK_OK) {
		free(*want);
		*want = NULL;
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t seen = 0;
		int step;

		snprintf(entry, sizeof entry, "%s.k.%s", scope, keys[i].id);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, entry, -1, SQLITE_TRANSIENT);
		if ((step = sqlite3_step(st)) == SQLITE_ROW)
			seen = sqlite3_column_int64(st, 0);
		else if (step != SQLITE_DONE) {
			rc = vk_store_error(db, "cannot read the replica's entries", err);
			break;
		}
		if (seen < keys[i].rev)
			(*want)[(*nwant)++] = i;
	}
	sqlite3_finalize(st);
	if (rc != VK_OK) {
		free(*want);
		*want = NULL;
		*nwant = 0;
	}
	return rc;
}

vk_rc
vk_scope_hold(sqlite3 *db, const struct vk_head *h, const char *value, int *kept,
              char err[VK_ERRLEN])
{
	int changes = 0;
	vk_rc rc;

	/* rule 3: a lower epoch, or a lower revision of the same, is never kept */
	rc = vk_store_exec(
	    db, "cannot keep the scope's head", err, &changes,
	    "INSERT INTO sync_heads (scope, epoch, rev, value) VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (scope) DO UPDATE SET epoch = excluded.epoch,"
	    " rev = excluded.rev, value = excluded.value"
	    " WHERE excluded.epoch > sync_heads.epoch OR (excluded.epoch ="
	    " sync_heads.epoch AND excluded.rev >= sync_heads.rev)",
	    "tiit", h->scope, h->epoch, h->rev, value);
	*kept = rc == VK_OK && changes > 0;
	return rc;
}

vk_rc
vk_scope_held(sqlite3 *db, const char *scope, struct vk_head *h, char err[VK_ERRLEN])
{
	sqlite3_stmt *st;
	vk_rc rc;
	int step;

	if ((rc = vk_store_prepare(db, "cannot read the scope's head", err, &st,
	                           "SELECT value FROM sync_heads WHERE scope = ?1", "t", scope)) !=
	    VK_OK)
		return rc;
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const char *value = (const char *)sqlite3_column_text(st, 0);

		/* what was kept had been verified and decoded: a row that no longer decodes is
		 * corrupt */
		if (value == NULL || vk_head_decode(value, strlen(value), h) != 0 ||
		    strcmp(h->scope, scope) != 0) {
			vk_seterr(err, "the replica's head of %s is corrupt", scope);
			rc = VK_ERR_STORE;
		}
	} else if (step == SQLITE_DONE) {
		vk_seterr(err, "no head of %s yet", scope);
		rc = VK_ERR_NOTFOUND;
	} else {
		rc = vk_store_error(db, "cannot read the scope's head", err);
	}
	sqlite3_finalize(st);
	return rc;
}
