/*
 * ini_test.c - the INI text of viamkey.conf (common/ini.h): fixed texts,
 * what vk_ini_parse() gives or why it refuses them, and for each text it
 * accepts, that libiniparser 4.1 reads the same (ini_oracle.h).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "ini.h"
#include "ini_oracle.h"

/* What a parse passed on, one "line section key=value" (or "line [section]") per entry. */
struct got {
	char text[4096];
	int stop_at; /* return 7 at this entry (from 1), or 0 */
	int n;
};

static int
record(void *ctx, const struct vk_ini_entry *en)
{
	struct got *g = ctx;
	size_t len = strlen(g->text);

	if (en->key == NULL)
		snprintf(g->text + len, sizeof g->text - len, "%d [%s]\n", en->line, en->section);
	else
		snprintf(g->text + len, sizeof g->text - len, "%d %s %s=%s\n", en->line,
		         en->section, en->key, en->value);
	return ++g->n == g->stop_at ? 7 : 0;
}

/* text must parse (to `want`, unless NULL) and be read the same by libiniparser. */
static void
expect_parsed(const char *text, const char *want)
{
	struct got g = {.text = "", .stop_at = 0, .n = 0};
	struct vk_ini_error e;
	char *copy = strdup(text), why[256];

	assert_non_null(copy);
	if (vk_ini_parse(copy, record, &g, &e) != 0)
		fail_msg("refused at line %d: %s\n%s", e.line, e.what, text);
	if (want != NULL && strcmp(g.text, want) != 0)
		fail_msg("parsed\n%s\nas\n%s\nnot\n%s", text, g.text, want);
	if (ini_oracle_check(text, strlen(text), why, sizeof why) != 1)
		fail_msg("libiniparser reads\n%s\notherwise: %s", text, why);
	free(copy);
}

/* text must be refused at `line` with a reason holding `needle`. */
static void
expect_refused(const char *text, int line, const char *needle)
{
	struct got g = {.text = "", .stop_at = 0, .n = 0};
	struct vk_ini_error e;
	char *copy = strdup(text);

	assert_non_null(copy);
	if (vk_ini_parse(copy, record, &g, &e) != -1)
		fail_msg("accepted\n%s", text);
	if (e.line != line || strstr(e.what, needle) == NULL)
		fail_msg("refused at line %d (\"%s\"), not line %d with \"%s\":\n%s", e.line,
		         e.what, line, needle, text);
	free(copy);
}

static void
test_sections_keys_and_values(void **state)
{
	(void)state;
	expect_parsed("; viamkey\n"
	              "# comment\n"
	              "\n"
	              "[store]\n"
	              "path = /var/lib/viamkey/keys.db\n"
	              "  busy_timeout_ms\t=\t100   ; ms\n"
	              "[PAM]\r\n"
	              "Role = owner\r\n"
	              "prompt = \"API key: \"   # kept as quoted\n"
	              "empty =\n"
	              "comment_only = ; nothing\n"
	              "quotes = ''\n"
	              "dquotes = \"\"\n"
	              "single = 'a \"b\" ; #c'\n"
	              "eq = a=b\n"
	              "[ services ]\n"
	              "sshd-kbd = viewer\n"
	              "[store]\n"
	              "other.key@x+y = v  v\n",
	              "4 [store]\n"
	              "5 store path=/var/lib/viamkey/keys.db\n"
	              "6 store busy_timeout_ms=100\n"
	              "7 [pam]\n"
	              "8 pam role=owner\n"
	              "9 pam prompt=API key: \n"
	              "10 pam empty=\n"
	              "11 pam comment_only=\n"
	              "12 pam quotes=\n"
	              "13 pam dquotes=\n"
	              "14 pam single=a \"b\" ; #c\n"
	              "15 pam eq=a=b\n"
	              "16 [services]\n"
	              "17 services sshd-kbd=viewer\n"
	              "18 [store]\n"
	              "19 store other.key@x+y=v  v\n");
	/* no newline at the end, and nothing at all */
	expect_parsed("[a]\nk = v", "1 [a]\n2 a k=v\n");
	expect_parsed("", "");
	expect_parsed("\n\n;\n", "");
}

static void
test_refused_with_line(void **state)
{
	char long_line[VK_INI_LINE_MAX + 16];

	(void)state;
	expect_refused("key = v\n[a]\n", 1, "outside any [section]");
	expect_refused("[a]\nk = v \\\nw\n", 2, "may not end in '\\'");
	expect_refused("[a]\n; a comment \\\nk = v\n", 2, "may not end in '\\'");
	expect_refused("[a]\nk = \"abc\n", 2, "double quote is not closed");
	expect_refused("[a]\nk = 'abc\n", 2, "quote is not closed");
	expect_refused("[a]\nk = \"abc\" x\n", 2, "text after the value's closing quote");
	expect_refused("[a]\nk = 1\nK = 2\n", 3, "[a] k is already set on line 2");
	expect_refused("[a]\nk = 1\n[b]\n[a]\nk = 2\n", 5, "already set on line 2");
	expect_refused("[a]\nk v\n", 2, "syntax error");
	expect_refused("[a]\n= v\n", 2, "key name");
	expect_refused("[a]\nk k = v\n", 2, "key name");
	expect_refused("[a b]\n", 1, "section name");
	expect_refused("[]\n", 1, "section name");
	expect_refused("[a:b]\n", 1, "section name");
	expect_refused("[a] ; comment\n", 1, "alone on its line");
	expect_refused("[a\n", 1, "syntax error");
	expect_refused("[a]\nk = v\x01w\n", 2, "control character (byte 1)");
	expect_refused("[a]\nk = v\rw\n", 2, "control character (byte 13)");
	memset(long_line, 'x', sizeof long_line);
	memcpy(long_line, "[a]\nk = ", 8);
	long_line[4 + VK_INI_LINE_MAX + 1] = '\0';
	expect_refused(long_line, 2, "more than 1000 bytes");
	long_line[4 + VK_INI_LINE_MAX] = '\0';
	expect_parsed(long_line, NULL);
}

/* A message repeats at most VK_INI_SHOWN bytes of a name, and so always says why. */
static void
test_long_names_shown_short(void **state)
{
	char text[3 * VK_INI_LINE_MAX], name[VK_INI_LINE_MAX - 8];

	(void)state;
	memset(name, 'k', sizeof name - 1);
	name[sizeof name - 1] = '\0';
	snprintf(text, sizeof text, "[%s]\n%s = 1\n%s = 2\n", name, name, name);
	expect_refused(text, 3,
	               "[kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...] "
	               "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk... is already set on line 2");
	snprintf(text, sizeof text, "%s = 1\n", name);
	expect_refused(text, 1, "k...\" is outside any [section]");
}

static void
test_key_limit(void **state)
{
	char *text = malloc(16 * (VK_INI_KEYS + 2)), *o = text;

	(void)state;
	assert_non_null(text);
	o += sprintf(o, "[a]\n");
	for (int i = 0; i < VK_INI_KEYS; i++)
		o += sprintf(o, "k%d = %d\n", i, i);
	expect_parsed(text, NULL);
	sprintf(o, "last = 1\n");
	expect_refused(text, VK_INI_KEYS + 2, "more than 256 keys");
	free(text);
}

/* A callback that returns non-zero stops the parse there, and that is what it returns. */
static void
test_callback_stops(void **state)
{
	struct got g = {.text = "", .stop_at = 2, .n = 0};
	struct vk_ini_error e;
	char text[] = "[a]\nk = 1\nthis is not read\n";

	(void)state;
	assert_int_equal(vk_ini_parse(text, record, &g, &e), 7);
	assert_string_equal(g.text, "1 [a]\n2 a k=1\n");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sections_keys_and_values),
	    cmocka_unit_test(test_refused_with_line),
	    cmocka_unit_test(test_long_names_shown_short),
	    cmocka_unit_test(test_key_limit),
	    cmocka_unit_test(test_callback_stops),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
