/*
 * names_test.c - names, Unix users and text shown to people (text.h), roles and
 * error messages (vk.h).
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "text.h"
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

/* Format characters (Cf) and other invisible code points that could reorder or hide text. */
static void
test_name_format_characters_rejected(void **state)
{
	static const char *const bad[] = {
	    "txt.\xe2\x80\xaegnp", /* U+202E RIGHT-TO-LEFT OVERRIDE */
	    "x\xe2\x80\xaay",      /* U+202A LEFT-TO-RIGHT EMBEDDING */
	    "x\xe2\x81\xa6y",      /* U+2066 LEFT-TO-RIGHT ISOLATE */
	    "x\xe2\x81\xa9y",      /* U+2069 POP DIRECTIONAL ISOLATE */
	    "pay\xe2\x80\x8bpal",  /* U+200B ZERO WIDTH SPACE */
	    "x\xe2\x80\x8dy",      /* U+200D ZERO WIDTH JOINER */
	    "x\xe2\x80\x8fy",      /* U+200F RIGHT-TO-LEFT MARK */
	    "x\xe2\x81\xa0y",      /* U+2060 WORD JOINER */
	    "\xef\xbb\xbfprod",    /* U+FEFF BYTE ORDER MARK */
	    "in\xc2\xadvisible",   /* U+00AD SOFT HYPHEN */
	    "csi\xc2\x9bK",        /* U+009B, a C1 control */
	    "\x1b",                /* ESC alone */
	    "esc\x1b]0;title\x07", /* an OSC sequence */
	    "tag\xf3\xa0\x81\x81", /* U+E0041 TAG LATIN CAPITAL LETTER A */
	    "\xd8\x9c",            /* U+061C ARABIC LETTER MARK */
	};

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (vk_name_valid(bad[i]))
			fail_msg("name #%zu with a format or control character accepted", i);
}

static void
test_name_multilingual_accepted(void **state)
{
	static const char *const ok[] = {
	    "M\xc3\xbcnchen",                                           /* München */
	    "S\xc3\xa3o Paulo",                                         /* São Paulo */
	    "\xe6\x9d\xb1\xe4\xba\xac",                                 /* 東京 */
	    "\xce\x91\xce\xb8\xce\xae\xce\xbd\xce\xb1",                 /* Αθήνα */
	    "\xd7\xaa\xd7\x9c \xd7\x90\xd7\x91\xd7\x99\xd7\x91",        /* תל אביב */
	    "\xd8\xa7\xd9\x84\xd9\x82\xd8\xa7\xd9\x87\xd8\xb1\xd8\xa9", /* القاهرة */
	    "\xe0\xa4\xa6\xe0\xa4\xbf\xe0\xa4\xb2\xe0\xa5\x8d\xe0\xa4\xb2\xe0\xa5\x80", /* दिल्ली */
	    "\xec\x84\x9c\xec\x9a\xb8",                                                 /* 서울 */
	    "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0", /* Москва */
	    "prod \xf0\x9f\x94\x91 keys",                       /* an emoji */
	    "na\xc3\xafve caf\xc3\xa9",
	};

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!vk_name_valid(ok[i]))
			fail_msg("\"%s\" rejected", ok[i]);
}

/*
 * Strict UTF-8 (RFC 3629), written independently of text.c: 1 when the
 * string is valid.
 */
static int
utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;

	while (*s != '\0') {
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;

		if (s[0] <= 0x7f) {
			s++;
			continue;
		} else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
			n = 2;
		} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
			n = 3;
			if (s[0] == 0xe0)
				lo = 0xa0;
			else if (s[0] == 0xed)
				hi = 0x9f;
		} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
			n = 4;
			if (s[0] == 0xf0)
				lo = 0x90;
			else if (s[0] == 0xf4)
				hi = 0x8f;
		} else {
			return 0;
		}
		if (s[1] < lo || s[1] > hi)
			return 0;
		for (size_t i = 2; i < n; i++)
			if (s[i] < 0x80 || s[i] > 0xbf)
				return 0;
		s += n;
	}
	return 1;
}

/* No C0 control, DEL or C1 control (as UTF-8) is left, and the text is valid UTF-8. */
static void
assert_printable(const char *s)
{
	assert_true(utf8_valid(s));
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		assert_true(*p >= 0x20 && *p != 0x7f);
		if (p[0] == 0xc2)
			assert_false(p[1] >= 0x80 && p[1] <= 0x9f);
	}
}

static void
expect_clean(const char *in, const char *want)
{
	char out[256];

	memset(out, '#', sizeof out);
	vk_text_clean(in, out, sizeof out);
	if (strcmp(out, want) != 0)
		fail_msg("cleaned \"%s\" to \"%s\", want \"%s\"", in, out, want);
	assert_printable(out);
}

static void
test_text_clean(void **state)
{
	char out[64];

	(void)state;
	expect_clean("ann@example.com", "ann@example.com");
	expect_clean("M\xc3\xbcnchen", "M\xc3\xbcnchen");
	expect_clean("\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x94\x91",
	             "\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x94\x91");
	expect_clean("", "");
	expect_clean(NULL, "");
	expect_clean("\x1b[31mred", "?[31mred");
	expect_clean("a\x9b"
	             "31m",
	             "a?31m"); /* the single byte 0x9b: invalid UTF-8 */
	expect_clean("a\xc2\x9b"
	             "31m",
	             "a?31m"); /* U+009B, the C1 control */
	expect_clean("txt.\xe2\x80\xae"
	             "exe",
	             "txt.?exe");                      /* U+202E */
	expect_clean("pay\xe2\x80\x8bpal", "pay?pal"); /* U+200B */
	expect_clean("a\xe2\x81\xa6"
	             "b",
	             "a?b");                  /* U+2066 */
	expect_clean("\xef\xbb\xbfx", "?x");  /* U+FEFF */
	expect_clean("a\xc3(b", "a?(b");      /* a bad continuation byte */
	expect_clean("\xc0\xaf", "??");       /* an overlong '/' */
	expect_clean("\xed\xa0\x80", "???");  /* a surrogate */
	expect_clean("cut\xe2\x82", "cut??"); /* cut by the end */
	expect_clean("a\tb\nc\rd\x7f", "a?b?c?d?");
	expect_clean("line\xe2\x80\xa8sep", "line?sep"); /* U+2028 */

	/* the count is of code points written */
	assert_int_equal(vk_text_clean("M\xc3\xbcn\x1b", out, sizeof out), 4);
	assert_string_equal(out, "M\xc3\xbcn?");
}

static void
test_text_clean_never_writes_past_size(void **state)
{
	static const char in[] = "M\xc3\xbcnchen \xe6\x9d\xb1 \xf0\x9f\x94\x91\x1b\xe2\x80\xae!";
	char out[sizeof in + 16];

	(void)state;
	for (size_t size = 0; size <= sizeof in + 8; size++) {
		memset(out, '#', sizeof out);
		(void)vk_text_clean(in, out, size);
		for (size_t i = size; i < sizeof out; i++)
			if (out[i] != '#')
				fail_msg("size %zu: byte %zu written", size, i);
		if (size == 0)
			continue;
		assert_non_null(memchr(out, '\0', size));
		assert_printable(out); /* no code point is cut in half */
		/* what is there is a prefix of the full result */
		{
			char full[sizeof in + 16];

			vk_text_clean(in, full, sizeof full);
			assert_memory_equal(out, full, strlen(out));
		}
	}
	memset(out, '#', sizeof out);
	vk_text_clean(in, out, 3); /* "M" + "ü" needs 3 bytes and a NUL: only "M" fits */
	assert_string_equal(out, "M");
	vk_text_clean(in, out, 4);
	assert_string_equal(out, "M\xc3\xbc");
	vk_text_clean(in, out, 1);
	assert_string_equal(out, "");
}

static void
expect_repair(const char *in, const char *want)
{
	char *out = vk_text_utf8_repair(in);

	assert_non_null(out);
	if (strcmp(out, want) != 0)
		fail_msg("repaired \"%s\" to \"%s\", want \"%s\"", in, out, want);
	assert_true(utf8_valid(out));
	free(out);
}

#define FFFD "\xef\xbf\xbd"

static void
test_text_utf8_repair(void **state)
{
	unsigned char random[512];

	(void)state;
	expect_repair("ann@example.com", "ann@example.com");
	expect_repair("M\xc3\xbcnchen \xf0\x9f\x94\x91", "M\xc3\xbcnchen \xf0\x9f\x94\x91");
	expect_repair("", "");
	expect_repair("\xff", FFFD);
	expect_repair("a\x9b"
	              "b",
	              "a" FFFD "b");
	expect_repair("a\xc3(b", "a" FFFD "(b");
	expect_repair("\xc0\xaf", FFFD FFFD);
	expect_repair("\xed\xa0\x80", FFFD FFFD FFFD);
	expect_repair("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	expect_repair("cut\xe2\x82", "cut" FFFD FFFD);
	/* valid text is kept as it is, controls included: JSON escapes those */
	expect_repair("a\x1b[31m\xe2\x80\xae", "a\x1b[31m\xe2\x80\xae");

	/* whatever the bytes, the result is valid UTF-8 (by this test's decoder and by
	 * vk_text_utf8_valid), and cleaning it leaves it printable */
	for (int round = 0; round < 200; round++) {
		char *out, clean[sizeof random * 3 + 1];

		randombytes_buf(random, sizeof random);
		for (size_t i = 0; i < sizeof random; i++)
			if (random[i] == 0)
				random[i] = 0x80;
		random[sizeof random - 1] = '\0';
		out = vk_text_utf8_repair((const char *)random);
		assert_non_null(out);
		assert_true(utf8_valid(out));
		assert_true(vk_text_utf8_valid(out, strlen(out)));
		free(out);
		vk_text_clean((const char *)random, clean, sizeof clean);
		assert_printable(clean);
	}
}

/* vk_text_utf8_valid() says "valid" exactly when vk_text_utf8_repair() would change nothing. */
static void
expect_valid_as_repair(const char *s)
{
	char *out = vk_text_utf8_repair(s);

	assert_non_null(out);
	assert_int_equal(vk_text_utf8_valid(s, strlen(s)), strcmp(out, s) == 0);
	free(out);
}

static void
test_text_utf8_valid(void **state)
{
	static const char *const bad[] = {
	    "\xff", "\x9b", "\xc3(", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"};
	static const char preview[] = "{\"preview\":\"vk_x_\xe2\x80\xa6\"}";
	static const char controls[] = "a\x1b[31m\xe2\x80\xae"; /* valid: JSON escapes controls */
	unsigned char random[300];
	char text[64];

	(void)state;
	assert_true(vk_text_utf8_valid("", 0));
	assert_true(vk_text_utf8_valid(preview, strlen(preview)));
	assert_true(vk_text_utf8_valid(controls, strlen(controls)));
	/* a NUL inside the length is not text */
	assert_false(vk_text_utf8_valid("abcdefgh\0ijklmnop", 17));
	assert_false(vk_text_utf8_valid("ab\0c", 4));
	/* a bad sequence anywhere in a long ASCII run, on either side of a word boundary */
	for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++)
		for (size_t at = 0; at + strlen(bad[b]) < sizeof text; at++) {
			memset(text, 'a', sizeof text);
			memcpy(text + at, bad[b], strlen(bad[b]));
			text[sizeof text - 1] = '\0';
			assert_false(vk_text_utf8_valid(text, strlen(text)));
			expect_valid_as_repair(text);
		}
	/* a sequence cut by the end of the text */
	assert_false(vk_text_utf8_valid("abcdefgh\xe2\x80", 10));
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + (size_t)randombytes_uniform(sizeof random - 1);

		randombytes_buf(random, n);
		for (size_t i = 0; i < n; i++)
			if (random[i] == 0 ||
			    (round % 2 == 0 && random[i] >= 0x80 && randombytes_uniform(16) != 0))
				random[i] = (unsigned char)('a' + i % 26); /* mostly ASCII */
		random[n - 1] = '\0';
		expect_valid_as_repair((const char *)random);
	}
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
	    cmocka_unit_test(test_name_format_characters_rejected),
	    cmocka_unit_test(test_name_multilingual_accepted),
	    cmocka_unit_test(test_text_clean),
	    cmocka_unit_test(test_text_clean_never_writes_past_size),
	    cmocka_unit_test(test_text_utf8_repair),
	    cmocka_unit_test(test_text_utf8_valid),
	    cmocka_unit_test(test_user_names),
	    cmocka_unit_test(test_roles),
	    cmocka_unit_test(test_seterr_truncates_and_terminates),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
