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
    "  || coalesce(' from ' || k.last_used_rhost, '')"
    "  || coalesce(' on machine ' || k.last_used_machine, ''))"
    " FROM keys k WHERE k.id = ?2";
// clang-format on

/* The end of the year 9999: the last second strftime() formats as four digits. */
#define TIME_END 253402300800LL

/* Writes n digits of v ending before p. */
static void
digits(char *p, int n, int64_t v)
{
	while (n-- > 0) {
		*--p = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * ka_time(t): "YYYY-MM-DDTHH:MM:SSZ" for an integer t in [0, TIME_END),
 * else NULL (and KA_TIME_SQL asks strftime()). The date is the proleptic
 * Gregorian one of t / 86400 days after 1970-01-01 (H. Hinnant's
 * civil_from_days), as SQLite's julian-day arithmetic gives it.
 */
static void
time_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	char out[] = "0000-00-00T00:00:00Z";
	int64_t t, z, era, doe, yoe, doy, mp, y, m, d, sec;

	(void)argc;
	if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER ||
	    (t = sqlite3_value_int64(argv[0])) < 0 || t >= TIME_END) {
		sqlite3_result_null(ctx);
		return;
	}
	z = t / 86400 + 719468;
	sec = t % 86400;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (m <= 2);
	digits(out + 4, 4, y);
	digits(out + 7, 2, m);
	digits(out + 10, 2, d);
	digits(out + 13, 2, sec / 3600);
	digits(out + 16, 2, sec / 60 % 60);
	digits(out + 19, 2, sec % 60);
	sqlite3_result_text(ctx, out, (int)sizeof out - 1, SQLITE_TRANSIENT);
}

vk_rc
ka_register_functions(sqlite3 *db, char *err)
{
	if (sqlite3_create_function(db, "ka_time", 1,
	                            SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
	                            time_fn, NULL, NULL) != SQLITE_OK)
		return vk_store_error(db, "cannot register SQL functions", err);
	return VK_OK;
}

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

/*
 * Rows read in one order and shown in another (keys list reads keys in ID
 * order, the order of their users', grants' and secrets' indexes, and
 * shows them by creation): each row's two sort columns, an integer and a
 * text, kept as ORDER BY compares them.
 */
struct sort_keys {
	struct sort_key {
		int64_t order;
		size_t text;  /* offset in `texts` */
		size_t index; /* the row's position as read */
	} * v;
	size_t n, cap;
	char *texts; /* NUL-terminated, one after another */
	size_t len, size;
};

/* Appends s and its NUL to the texts; its offset in *off. -1 when out of memory. */
static int
texts_add(struct sort_keys *k, const char *s, size_t *off)
{
	size_t n = strlen(s) + 1;

	if (k->len + n > k->size) {
		size_t want = k->size ? k->size : 1 << 16;
		char *grown;

		while (want < k->len + n)
			want *= 2;
		if ((grown = realloc(k->texts, want)) == NULL)
			return -1;
		k->texts = grown;
		k->size = want;
	}
	memcpy(k->texts + k->len, s, n);
	*off = k->len;
	k->len += n;
	return 0;
}

/* Records the sort columns of row `index` of st: columns `col` and `col + 1`. */
static int
sort_keys_add(struct sort_keys *k, sqlite3_stmt *st, int col, size_t index)
{
	const char *text = (const char *)sqlite3_column_text(st, col + 1);
	struct sort_key *e;

	if (k->n == k->cap) {
		size_t want = k->cap ? k->cap * 2 : 1024;
		struct sort_key *grown = realloc(k->v, want * sizeof *grown);

		if (grown == NULL)
			return -1;
		k->v = grown;
		k->cap = want;
	}
	e = &k->v[k->n];
	e->order = sqlite3_column_int64(st, col);
	e->index = index;
	if (texts_add(k, text != NULL ? text : "", &e->text) != 0)
		return -1;
	k->n++;
	return 0;
}

static const char *sort_texts; /* for sort_key_cmp(); one thread */

/* ORDER BY the integer, then the text in BINARY collation (memcmp). */
static int
sort_key_cmp(const void *x, const void *y)
{
	const struct sort_key *a = x, *b = y;

	if (a->order != b->order)
		return a->order < b->order ? -1 : 1;
	return strcmp(sort_texts + a->text, sort_texts + b->text);
}

static void
sort_keys_sort(struct sort_keys *k)
{
	sort_texts = k->texts;
	if (k->n > 1)
		qsort(k->v, k->n, sizeof *k->v, sort_key_cmp);
}

static void
sort_keys_free(struct sort_keys *k)
{
	free(k->v);
	free(k->texts);
	memset(k, 0, sizeof *k);
}

struct rows {
	char **cells; /* nrows * ncols, each cleaned */
	size_t nrows, ncols, cap;
	struct sort_keys *sort; /* when set, two more columns to sort by, not shown */
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
		if (r->nrows == r->cap) {
			size_t want = r->cap ? r->cap * 2 : 64;
			char **grown = realloc(r->cells, want * r->ncols * sizeof *grown);

			if (grown == NULL)
				return ka_fail(VK_ERR_NOMEM, "out of memory");
			r->cells = grown;
			r->cap = want;
		}
		if (r->sort != NULL && sort_keys_add(r->sort, st, (int)r->ncols, r->nrows) != 0)
			return ka_fail(VK_ERR_NOMEM, "out of memory");
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

static int
vprint_table(struct ka_ctx *ctx, const char *const *headers, int sorted, const char *sql,
             const char *types, va_list ap)
{
	size_t width[MAX_COLUMNS] = {0};
	struct sort_keys keys = {0};
	struct rows r = {NULL, 0, 0, 0, sorted ? &keys : NULL};
	int rc;

	while (headers[r.ncols] != NULL && r.ncols < MAX_COLUMNS)
		r.ncols++;
	if ((rc = vread_rows(ctx, &r, sql, types, ap)) != KA_OK)
		goto out;
	if (sorted)
		sort_keys_sort(&keys);
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
		size_t row = sorted ? keys.v[i].index : i;

		for (size_t c = 0; c < r.ncols; c++)
			print_cell(r.cells[row * r.ncols + c], width[c], c + 1 == r.ncols);
		putchar('\n');
	}
out:
	rows_free(&r);
	sort_keys_free(&keys);
	return rc;
}

int
ka_print_table(struct ka_ctx *ctx, const char *const *headers, const char *sql, const char *types,
               ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vprint_table(ctx, headers, 0, sql, types, ap);
	va_end(ap);
	return rc;
}

int
ka_print_table_sorted(struct ka_ctx *ctx, const char *const *headers, const char *sql,
                      const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = vprint_table(ctx, headers, 1, sql, types, ap);
	va_end(ap);
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
ka_print_json_array(struct ka_ctx *ctx, const char *sql, const char *types, ...)
{
	struct sort_keys keys = {0};
	size_t *json = NULL, n = 0, cap = 0; /* each row's JSON: an offset in keys.texts */
	sqlite3_stmt *st = NULL;
	char err[VK_ERRLEN];
	int step, rc = KA_OK;
	va_list ap;
	vk_rc vrc;

	va_start(ap, types);
	vrc = vk_store_vprepare(ctx->db, "cannot read the store", err, &st, sql, types, ap);
	va_end(ap);
	if (vrc != VK_OK)
		return ka_fail(vrc, err);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *o = (const char *)sqlite3_column_text(st, 0);
		char *fixed = NULL;
		int failed;

		if (n == cap) {
			size_t want = cap ? cap * 2 : 1024;
			size_t *grown = realloc(json, want * sizeof *grown);

			if (grown == NULL)
				goto nomem;
			json = grown;
			cap = want;
		}
		/* valid UTF-8 is kept as it is, anything else repaired (rule 1); NULL is null */
		if (o != NULL && !vk_text_utf8_valid(o, (size_t)sqlite3_column_bytes(st, 0)) &&
		    (o = fixed = vk_text_utf8_repair(o)) == NULL)
			goto nomem;
		failed = texts_add(&keys, o != NULL ? o : "null", &json[n]) != 0 ||
		         sort_keys_add(&keys, st, 1, n) != 0;
		free(fixed);
		if (failed)
			goto nomem;
		n++;
	}
	if (step != SQLITE_DONE) {
		rc = ka_fail(vk_store_error(ctx->db, "cannot read the store", err), err);
		goto out;
	}
	sort_keys_sort(&keys);
	putchar('[');
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			putchar(',');
		fputs(keys.texts + json[keys.v[i].index], stdout);
	}
	puts("]");
	goto out;
nomem:
	rc = ka_fail(VK_ERR_NOMEM, "out of memory");
out:
	sqlite3_finalize(st);
	free(json);
	sort_keys_free(&keys);
	return rc;
}

int
ka_print_key(struct ka_ctx *ctx, const char *key_id)
{
	static const char *const labels[] = {
	    "ID",        "Name",        "Preview", "Status", "Created", "Created by", "Expires",
	    "Protected", "Break-glass", "Users",   "Grants", "Secrets", "Last used"};
	struct rows r = {NULL, 0, sizeof labels / sizeof labels[0], 0, NULL};
	int rc;

	if (ctx->json)
		return ka_print_json(ctx, "SELECT " KA_KEY_JSON " FROM keys k WHERE k.id = ?2",
		                     "it", ctx->now, key_id);
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
		rc = query_json(ctx, &doc, "SELECT " KA_KEY_JSON " FROM keys k WHERE k.id = ?2",
		                "it", ctx->now, key_id);
		if (rc == KA_OK) {
			printf("{\"key\":\"%s\",%s\n", token, doc + 1);
			free(doc);
		}
	} else {
		printf("Key ID: %s\nToken:  %s\n", key_id, token);
	}
	return rc;
}
