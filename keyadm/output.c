/*
 * output.c - human tables and JSON documents.
 *
 * JSON is built by SQLite's JSON functions, so nothing is escaped by hand;
 * the one exception is the token, whose alphabet [A-Za-z0-9_] needs no
 * escaping. Text from the store reaches a terminal only after control
 * characters are replaced, since a damaged store may hold any bytes.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyadm.h"

#define MAX_COLUMNS 10

/* Code points in s, for column widths. */
static size_t
display_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void
print_sanitized(const char *s)
{
	for (; *s != '\0'; s++)
		putchar(((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s);
}

void
ka_print_plain(const char *s)
{
	print_sanitized(s);
	putchar('\n');
}

static void
print_cell(const char *s, size_t width, int last)
{
	print_sanitized(s);
	if (!last)
		printf("%*s", (int)(width - display_width(s) + 2), "");
}

struct rows {
	char **cells; /* nrows * ncols */
	size_t nrows, ncols;
};

static void
rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->nrows * r->ncols; i++)
		free(r->cells[i]);
	free(r->cells);
}

/* Steps st to the end, copying every cell; returns KA_OK or KA_FAIL. */
static int
rows_read(struct ka_ctx *ctx, sqlite3_stmt *st, struct rows *r)
{
	char err[VK_ERRLEN];
	int step;

	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		char **grown = realloc(r->cells, (r->nrows + 1) * r->ncols * sizeof *grown);

		if (grown == NULL)
			return ka_fail(VK_ERR_NOMEM, "out of memory");
		r->cells = grown;
		for (size_t c = 0; c < r->ncols; c++) {
			const char *v = (const char *)sqlite3_column_text(st, (int)c);
			char *copy = strdup(v ? v : "-");

			if (copy == NULL)
				return ka_fail(VK_ERR_NOMEM, "out of memory");
			r->cells[r->nrows * r->ncols + c] = copy;
		}
		r->nrows++;
	}
	if (step != SQLITE_DONE)
		return ka_fail(vk_store_error(ctx->db, "cannot read the store", err), err);
	return KA_OK;
}

int
ka_print_table(struct ka_ctx *ctx, const char *const *headers, const char *sql, const char *types,
               ...)
{
	size_t width[MAX_COLUMNS] = {0};
	struct rows r = {NULL, 0, 0};
	sqlite3_stmt *st = NULL;
	char err[VK_ERRLEN];
	va_list ap;
	vk_rc vrc;
	int rc;

	while (headers[r.ncols] != NULL && r.ncols < MAX_COLUMNS)
		r.ncols++;
	va_start(ap, types);
	vrc = vk_store_vprepare(ctx->db, "cannot read the store", err, &st, sql, types, ap);
	va_end(ap);
	if (vrc != VK_OK)
		return ka_fail(vrc, err);
	rc = rows_read(ctx, st, &r);
	sqlite3_finalize(st);
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

/* Runs sql and returns a copy of the first column of its first row in *out. */
static int
vquery_text(struct ka_ctx *ctx, char **out, const char *sql, const char *types, va_list ap)
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
		if ((*out = strdup((const char *)sqlite3_column_text(st, 0))) == NULL)
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
query_text(struct ka_ctx *ctx, char **out, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vquery_text(ctx, out, sql, types, ap);
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
	rc = vquery_text(ctx, &doc, sql, types, ap);
	va_end(ap);
	if (rc == KA_OK) {
		puts(doc);
		free(doc);
	}
	return rc;
}

/* The same, one line per field, for people. */
static const char key_human_sql[] =
    "SELECT k.id, k.name, vk_preview(k.id), " KA_STATUS_SQL ","
    " " KA_TIME_SQL(
        "k.created_at") ", k.created_by,"
                        " coalesce(" KA_TIME_SQL(
                            "k.expires_at") ", 'never'),"
                                            " iif(k.protected, 'yes', 'no'),"
                                            " (SELECT group_concat(user, ', ') FROM"
                                            "  (SELECT user FROM key_users WHERE key_id = k.id "
                                            "ORDER BY user)),"
                                            " (SELECT group_concat(role || ' on ' || resource_type "
                                            "|| ' ' || resource_id, '; ') FROM"
                                            "  (SELECT * FROM grants WHERE key_id = k.id ORDER BY "
                                            "resource_type, resource_id)),"
                                            " (SELECT group_concat('created ' || " KA_TIME_SQL(
                                                "created_at") ""
                                                              "  || coalesce(', valid until ' "
                                                              "|| " KA_TIME_SQL(
                                                                  "expires_at") ", ''), '; ') FROM"
                                                                                "  (SELECT * FROM "
                                                                                "secrets WHERE "
                                                                                "key_id = k.id"
                                                                                "   AND "
                                                                                "(expires_at IS "
                                                                                "NULL OR "
                                                                                "expires_at > ?1) "
                                                                                "ORDER BY id)),"
                                                                                " iif(k.last_used_"
                                                                                "at IS NULL, "
                                                                                "'never',"
                                                                                " " KA_TIME_SQL(
                                                                                    "k.last_used_"
                                                                                    "at") ""
                                                                                          "  || ' "
                                                                                          "by ' || "
                                                                                          "k.last_"
                                                                                          "used_"
                                                                                          "user || "
                                                                                          "' via ' "
                                                                                          "|| "
                                                                                          "k.last_"
                                                                                          "used_"
                                                                                          "service"
                                                                                          "  || "
                                                                                          "coalesce"
                                                                                          "(' from "
                                                                                          "' || "
                                                                                          "k.last_"
                                                                                          "used_"
                                                                                          "rhost, "
                                                                                          "''))"
                                                                                          " FROM "
                                                                                          "keys k "
                                                                                          "WHERE "
                                                                                          "k.id = "
                                                                                          "?2";

int
ka_print_key(struct ka_ctx *ctx, const char *key_id)
{
	static const char *const labels[] = {"ID",      "Name",       "Preview", "Status",
	                                     "Created", "Created by", "Expires", "Protected",
	                                     "Users",   "Grants",     "Secrets", "Last used"};
	struct rows r = {NULL, 0, sizeof labels / sizeof labels[0]};
	sqlite3_stmt *st = NULL;
	char err[VK_ERRLEN];
	vk_rc vrc;
	int rc;

	if (ctx->json)
		return ka_print_json(ctx, "SELECT " KA_KEY_JSON " FROM keys k WHERE k.id = ?2",
		                     "it", ctx->now, key_id);
	vrc = vk_store_prepare(ctx->db, "cannot read the store", err, &st, key_human_sql, "it",
	                       ctx->now, key_id);
	if (vrc != VK_OK)
		return ka_fail(vrc, err);
	rc = rows_read(ctx, st, &r);
	sqlite3_finalize(st);
	for (size_t i = 0; rc == KA_OK && i < r.nrows * r.ncols; i++) {
		printf("%-11s ", labels[i % r.ncols]);
		ka_print_plain(r.cells[i]);
	}
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
		rc = query_text(ctx, &doc, "SELECT " KA_KEY_JSON " FROM keys k WHERE k.id = ?2",
		                "it", ctx->now, key_id);
		if (rc == KA_OK) {
			printf("{\"key\":\"%s\",%s\n", token, doc + 1);
			free(doc);
		}
	} else {
		printf("Key ID: %s\nToken:  %s\n", key_id, token);
	}
	fputs("keyadm: warning: this token is shown only once and cannot be recovered;"
	      " store it now\n",
	      stderr);
	return rc;
}
