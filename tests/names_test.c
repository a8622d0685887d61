/*
 * names_test.c - names, Unix users, roles and error messages (vk.h).
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "vk.h"

/* count copies of unit, NUL-terminated; the caller frees it. */
static char *
repeat(const char *unit, size_t count)
{
	size_t n = strlen(unit);
	char *s = malloc(n * count + 1);

	assert_non_null(s);
	for (size_t i = 0; i < count; i++)
		memcpy(s + i * n, unit, n);
	s[n * count] = '\0';
	return s;
}

static void
expect_name_len(const char *unit, size_t count, int valid)
{
	char *s = repeat(unit, count);

	if (vk_name_valid(s) != valid)
		fail_msg("%zu x \"%s\": expected %s", count, unit, valid ? "valid" : "invalid");
	free(s);
}

static void
test_name_length_in_characters(void **state)
{
	static const char *const units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x91"};

	(void)state;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		expect_name_len(units[i], 1, 1);
		expect_name_len(units[i], VK_NAME_MAX, 1);
		expect_name_len(units[i], VK_NAME_MAX + 1, 0);
	}
	assert_false(vk_name_valid(""));
	assert_false(vk_name_valid(NULL));
}

static void
test_name_text_accepted(void **state)
{
	static const char *const ok[] = {
	    "prod fleet",
	    "it's \"quoted\"",
	    "Robert'); DROP TABLE keys;--",
	    "%s%n%x",
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
	    "a\xc2\xa0\x62", /* "a", a no-break space, "b" */
	};

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!vk_name_valid(ok[i]))
			fail_msg("\"%s\" rejected", ok[i]);
}

static void
test_name_controls_and_bad_utf8_rejected(void **state)
{
	static const char *const bad[] = {
	    "a\nb",
	    "a\tb",
	    "a\rb",
	    "\x1b[31mred",
	    "del\x7f",
	    "\x01",
	    "nel\xc2\x85",          /* U+0085 */
	    "csi\xc2\x9b",          /* U+009B */
	    "ls\xe2\x80\xa8",       /* U+2028 */
	    "ps\xe2\x80\xa9",       /* U+2029 */
	    "\xff",                 /* never valid */
	    "\x80",                 /* lone continuation byte */
	    "trunc\xc3",            /* truncated 2-byte sequence */
	    "trunc\xe2\x82",        /* truncated 3-byte sequence */
	    "\xc3(",                /* bad continuation */
	    "\xc0\xaf",             /* overlong '/' */
	    "\xc1\xbf",             /* overlong DEL */
	    "\xe0\x80\xaf",         /* overlong, 3 bytes */
	    "\xf0\x80\x80\xaf",     /* overlong, 4 bytes */
	    "\xed\xa0\x80",         /* surrogate U+D800 */
	    "\xf4\x90\x80\x80",     /* above U+10FFFF */
	    "\xf8\x88\x80\x80\x80", /* 5-byte form */
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (vk_name_valid(bad[i]))
			fail_msg("bad name #%zu accepted", i);
}

static void
test_user_names(void **state)
{
	static const char *const ok[] = {
	    "root", "ann", "ann@example.com", "first.last", "svc_backup-2", "DOMAIN\\ann", "x"};
	static const char *const bad[] = {"",     "-root",  "a b",   "a\tb", "a:b",
	                                  "a/b",  "../etc", "ann\n", "\x7f", "\xc3\xa9t\xc3\xa9",
	                                  " ann", "ann ",   "a\x01"};
	char *longest = repeat("u", VK_USER_MAX), *too_long = repeat("u", VK_USER_MAX + 1);

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!vk_user_valid(ok[i]))
			fail_msg("\"%s\" rejected", ok[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (vk_user_valid(bad[i]))
			fail_msg("\"%s\" accepted", bad[i]);
	assert_true(vk_user_valid(longest));
	assert_false(vk_user_valid(too_long));
	assert_false(vk_user_valid(NULL));
	free(longest);
	free(too_long);
}

static void
test_roles(void **state)
{
	static const char *const not_roles[] = {"admin",  "",    "none",  "owner ",
	                                        " owner", "own", "ownerx"};

	(void)state;
	assert_int_equal(vk_role_parse("owner"), VK_ROLE_OWNER);
	assert_int_equal(vk_role_parse("operator"), VK_ROLE_OPERATOR);
	assert_int_equal(vk_role_parse("viewer"), VK_ROLE_VIEWER);
	for (size_t i = 0; i < sizeof not_roles / sizeof not_roles[0]; i++)
		assert_int_equal(vk_role_parse(not_roles[i]), VK_ROLE_NONE);
	assert_int_equal(vk_role_parse(NULL), VK_ROLE_NONE);

	for (vk_role r = VK_ROLE_VIEWER; r <= VK_ROLE_OWNER; r++)
		assert_int_equal(vk_role_parse(vk_role_name(r)), r);
	assert_string_equal(vk_role_name(VK_ROLE_OWNER), "owner");
	assert_string_equal(vk_role_name(VK_ROLE_NONE), "none");
	assert_string_equal(vk_role_name((vk_role)42), "none");
	assert_string_equal(vk_role_name((vk_role)-1), "none");

	/* the decision compares roles numerically */
	assert_true(VK_ROLE_OWNER > VK_ROLE_OPERATOR);
	assert_true(VK_ROLE_OPERATOR > VK_ROLE_VIEWER);
	assert_true(VK_ROLE_VIEWER > VK_ROLE_NONE);
}

static void
test_seterr_truncates_and_terminates(void **state)
{
	char err[VK_ERRLEN + 8];
	char *longer = repeat("x", 2 * VK_ERRLEN);

	(void)state;
	memset(err, '#', sizeof err);
	vk_seterr(err, "%s", longer);
	assert_int_equal(strlen(err), VK_ERRLEN - 1);
	assert_int_equal(err[VK_ERRLEN], '#'); /* nothing written past VK_ERRLEN */
	vk_seterr(err, "store %s: %d", "/x", 7);
	assert_string_equal(err, "store /x: 7");
	vk_seterr(NULL, "%s", "ignored");
	free(longer);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_length_in_characters),
	    cmocka_unit_test(test_name_text_accepted),
	    cmocka_unit_test(test_name_controls_and_bad_utf8_rejected),
	    cmocka_unit_test(test_user_names),
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_seterr_truncates_and_terminates),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
