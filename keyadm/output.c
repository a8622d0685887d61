/*
 * output.c - human tables and JSON documents.
 *
 * Security rules for this file:
 *  1. JSON is built by SQLite's JSON functions, so nothing is escaped by
 *     hand; the one exception is the token, whose alphabet [A-Za-z0-9_]
 *     needs no escaping. Every document is made valid UTF-8 before it is
 *     printed (a damaged store or a crafted PAM_RHOST may hold any bytes).
 *  2. Text reaches a terminal only through vk_text_clean(): no control,
 *     bidi or zero-width character, and no invalid UTF-8, is ever printed.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyadm.h"
#include "model.h"

#define MAX_COLUMNS 10
#define CELL_MAX    4096 /* bytes of one cleaned cell */

/* The same as KA_KEY_JSON, one line per field, for people; ?1 now, ?2 key ID. */
// clang-format off
static const char key_human_sql[] =
    "SELECT k.id, k.name, vk_preview(k.id), " VK_SQL_KEY_STATUS("k", "?1") ","
    " " KA_TIME_SQL("k.created_at") ", k.created_by,"
    " coalesce(" KA_TIME_SQL("k.expires_at") ", 'never'), iif(k.protected, 'yes', 'no'),"
    " iif(k.break_glass, 'yes', 'no'),"
    " (SELECT group_concat(user, ', ') FROM"
    "  (SELECT user FROM key_users WHERE key_id = k.id ORDER BY user)),"
    " (SELECT group_concat(role || ' on ' || resource_type || ' ' || resource_id, '; ') FROM"
    "  (SELECT * FROM grants WHERE key_id = k.id ORDER BY resource_type, resource_id)),"
    " (SELECT group_concat('created ' || " KA_TIME_SQL("s.created_at") " ||"
    "  coalesce(', valid until ' || " KA_TIME_SQL("s.expires_at") ", ''), '; ') FROM"
    "  (SELECT * FROM secrets s WHERE s.key_id = k.id AND " VK_SQL_SECRET_LIVE("s", "?1")
    "   ORDER BY s.id) s),"
    " iif(k.last_used_at IS NULL, 'never', " KA_TIME_SQL("k.last_used_at")
    "  || ' by ' || k.last_used_user || ' via ' || k.last_used_service"
    "  || coalesce(' from ' || k.last_used_rhost, ''))"
    " FROM keys k WHERE k.id = ?2";
// clang-format on

int
ka_flush(const char *then)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return KA_OK;
	fprintf(stderr, "keyadm: cannot write the output: %s%s\n",
	        errno != 0 ? strerror(errno) : "write error", then);
	return KA_FAIL;
}

/* Code points in s (already cleaned, so valid UTF-8), for column widths. */
static size_t
display_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

struct rows {
	char **cells; /* nrows * ncols, each cleaned */
	size_t nrows, ncols;
};

static void
rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->nrows * r->ncols; i++)
		free(r->cells[i]);
	free(r->cells);
}

/* Steps st to the end, copying every cell cleaned for a terminal; KA_OK or KA_FAIL. */
static int
rows_read(struct ka_ctx *ctx, sqlite3_stmt *st, struct rows *r)
{
	char err[VK_ERRLEN], cell[CELL_MAX];
	int step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char **grown = realloc(r->cells, (r->nrows + 1) * r->ncols * sizeof *grown);

		if (grown == NULL)
			return ka_fail(VK_ERR_NOMEM, "out of memory");
		r->cells = grown;
		for (size_t c = 0; c < r->ncols; c++) {
			const char *v = (const char *)sqlite3_column_text(st, (int)c);

			vk_text_clean(v != NULL ? v : "-", cell, sizeof cell);
			if ((r->cells[r->nrows * r->ncols + c] = strdup(cell)) == NULL) {
				for (size_t done = 0; done < c; done++)
					free(r->cells[r->nrows * r->ncols + done]);
				return ka_fail(VK_ERR_NOMEM, "out of memory");
			}
		}
		r->nrows++;
	}
	if (step != SQLITE_DONE)
		return ka_fail(vk_store_error(ctx->db, "cannot read the store", err), err);
	return KA_OK;
}

static int
vread_rows(struct ka_ctx *ctx, struct rows *r, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	char err[VK_ERRLEN];
	vk_rc vrc;
	int rc;

	vrc = vk_store_vprepare(ctx->db, "cannot read the store", err, &st, sql, types, ap);
	if (vrc != VK_OK)
		return ka_fail(vrc, err);
	rc = rows_read(ctx, st, r);
	sqlite3_finalize(st);
	return rc;
}

static int
read_rows(struct ka_ctx *ctx, struct rows *r, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vread_rows(ctx, r, sql, types, ap);
	va_end(ap);
	return rc;
}

static void
print_cell(const char *s, size_t width, int last)
{
	fputs(s, stdout);
	if (!last)
		printf("%*s", (int)(width - display_width(s) + 2), "");
}

int
ka_print_table(struct ka_ctx *ctx, const char *const *headers, const char *sql, const char *types,
               ...)
{
	size_t width[MAX_COLUMNS] = {0};
	struct rows r = {NULL, 0, 0};
	va_list ap;
	int rc;

	while (headers[r.ncols] != NULL && r.ncols < MAX_COLUMNS)
		r.ncols++;
	va_start(ap, types);
	rc = vread_rows(ctx, &r, sql, types, ap);
	va_end(ap);
	if (rc != KA_OK)
		goto out;
	for (size_t c = 0; c < r.ncols; c++) {
		width[c] = display_width(headers[c]);
		for (size_t i = 0; i < r.nrows; i++) {
			size_t w = display_width(r.cells[i * r.ncols + c]);

			if (w > width[c])
				width[c] = w;
		}
	}
	for (size_t c = 0; c < r.ncols; c++)
		print_cell(headers[c], width[c], c + 1 == r.ncols);
	putchar('\n');
	for (size_t i = 0; i < r.nrows; i++) {
		for (size_t c = 0; c < r.ncols; c++)
			print_cell(r.cells[i * r.ncols + c], width[c], c + 1 == r.ncols);
		putchar('\n');
	}
out:
	rows_free(&r);
	return rc;
}

/* Runs sql and returns the first column of its first row, as valid UTF-8, in *out. */
static int
vquery_json(struct ka_ctx *ctx, char **out, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	char err[VK_ERRLEN];
	vk_rc vrc;
	int step, rc = KA_OK;

	*out = NULL;
	vrc = vk_store_vprepare(ctx->db, "cannot read the store", err, &st, sql, types, ap);
	if (vrc != VK_OK)
		return ka_fail(vrc, err);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
		if ((*out = vk_text_utf8_repair((const char *)sqlite3_column_text(st, 0))) == NULL)
			rc = ka_fail(VK_ERR_NOMEM, "out of memory");
	} else if (step == SQLITE_ROW || step == SQLITE_DONE) {
		rc = ka_fail(VK_ERR_NOTFOUND, "not found");
	} else {
		rc = ka_fail(vk_store_error(ctx->db, "cannot read the store", err), err);
	}
	sqlite3_finalize(st);
	return rc;
}

static int
query_json(struct ka_ctx *ctx, char **out, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vquery_json(ctx, out, sql, types, ap);
	va_end(ap);
	return rc;
}

int
ka_print_json(struct ka_ctx *ctx, const char *sql, const char *types, ...)
{
	char *doc;
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vquery_json(ctx, &doc, sql, types, ap);
	va_end(ap);
	if (rc == KA_OK) {
		puts(doc);
		free(doc);
	}
	return rc;
}

int
ka_print_key(struct ka_ctx *ctx, const char *key_id)
{
	static const char *const labels[] = {"ID",      "Name",        "Preview", "Status",
	                                     "Created", "Created by",  "Expires", "Protected",
	                                     "Break-glass", "Users",  "Grants",  "Secrets",
	                                     "Last used"};
	struct rows r = {NULL, 0, sizeof labels / sizeof labels[0]};
	int rc;

	if (ctx->json)
		return ka_print_json(ctx, "SELECT " KA_KEY_JSON " FROM keys k WHERE k.id = ?2", "it",
		                     ctx->now, key_id);
	rc = read_rows(ctx, &r, key_human_sql, "it", ctx->now, key_id);
	for (size_t i = 0; rc == KA_OK && i < r.nrows * r.ncols; i++)
		printf("%-12s %s\n", labels[i % r.ncols], r.cells[i]);
	rows_free(&r);
	return rc;
}

int
ka_print_token(struct ka_ctx *ctx, const char *key_id, const char *token)
{
	int rc = KA_OK;

	if (ctx->json) {
		char *doc;

		/* the key object, with the token spliced in as its first field */
		rc = query_json(ctx, &doc, "SELECT " KA_KEY_JSON " FROM keys k WHERE k.id = ?2", "it",
		                ctx->now, key_id);
		if (rc == KA_OK) {
			printf("{\"key\":\"%s\",%s\n", token, doc + 1);
			free(doc);
		}
	} else {
		printf("Key ID: %s\nToken:  %s\n", key_id, token);
	}
	return rc;
}
