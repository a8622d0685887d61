/*
 * event_test.c - an event's line (event.h): fixed vectors, what decodes
 * is written again byte for byte, and every other line refused.
 *
 * The vectors were made apart from this code, in Python: the fields
 * joined by tabs, the PAM items escaped by a function written from
 * event.h's rule (every byte outside '!'..'~', and '%', as %XX; cut
 * before the byte whose writing would pass the limit).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "fixture.h"

#define UID "000102030405060708090a0b0c0d0e0f"
#define KEY "0f8fad5b-d9cb-469f-a165-70867728950e"
#define AT  1764950400

static const unsigned char uid_bytes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

#define ALLOW "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t192.0.2.7\n"
#define DENY  "v1\t" UID "\t1764950400\tlogin\tdeny\tmalformed\t\tb%09%C3%B6%25%0A%7Fx%20y\tsudo\t\n"

static void
test_vectors(void **state)
{
	char line[VK_EVENT_LINE_MAX + 1];
	struct vk_event e, d;

	(void)state;
	assert_int_equal(vk_event_make(&e, uid_bytes, AT, "login", "allow", "ok", KEY, "ann",
	                               "sshd", "192.0.2.7"),
	                 0);
	assert_int_equal(vk_event_encode(&e, line), strlen(ALLOW));
	assert_string_equal(line, ALLOW);
	assert_int_equal(vk_event_decode(line, strlen(line), &d), 0);
	assert_memory_equal(&e, &d, sizeof e);

	assert_int_equal(vk_event_make(&e, uid_bytes, AT, "login", "deny", "malformed", NULL,
	                               "b\t\xc3\xb6%\n\x7fx y", "sudo", NULL),
	                 0);
	vk_event_encode(&e, line);
	assert_string_equal(line, DENY);
	assert_string_equal(e.user, "b%09%C3%B6%25%0A%7Fx%20y");
	/* without its LF too */
	assert_int_equal(vk_event_decode(DENY, strlen(DENY) - 1, &d), 0);
	assert_memory_equal(&e, &d, sizeof e);

	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "session", "open", NULL, KEY, "ann", "sshd", NULL), 0);
	vk_event_encode(&e, line);
	assert_string_equal(line,
	                    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\n");
}

/* A field is cut before the escape that would pass its limit, never inside one. */
static void
test_cut(void **state)
{
	char user[101], expect[VK_EVENT_USER_MAX + 1] = "";
	struct vk_event e;

	(void)state;
	memset(user, '%', 100);
	user[100] = '\0';
	for (int i = 0; i < 85; i++)
		strcat(expect, "%25");
	assert_int_equal(vk_event_make(&e, uid_bytes, AT, "login", "deny", "user_not_allowed", KEY,
	                               user, "sshd", NULL),
	                 0);
	assert_string_equal(e.user, expect);
	assert_int_equal(strlen(e.user), 255);
}

static void
test_make_refused(void **state)
{
	struct vk_event e;

	(void)state;
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, 0, "login", "allow", "ok", KEY, "a", "s", NULL), -1);
	assert_int_equal(vk_event_make(&e, uid_bytes, ((int64_t)1 << 53) + 1, "login", "allow",
	                               "ok", KEY, "a", "s", NULL),
	                 -1);
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "login", "open", "ok", KEY, "a", "s", NULL), -1);
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "session", "allow", NULL, KEY, "a", "s", NULL), -1);
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "admin", "allow", NULL, KEY, "a", "s", NULL), -1);
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "login", "deny", "Bad", KEY, "a", "s", NULL), -1);
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "login", "deny", "ok", "KEY\tX", "a", "s", NULL), -1);
	assert_int_equal(e.at, 0);
	assert_int_equal(e.uid[0], '\0');
}

static void
test_decode_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "\n",
	    "v2\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t192.0.2.7\n",
	    "v1\t" UID "0\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t192.0.2.7\n",
	    "v1\t000102030405060708090A0B0C0D0E0F\t1764950400\tlogin\tallow\tok\t" KEY
	    "\tann\tsshd\t\n",
	    "v1\t" UID "\t01764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t0\tlogin\tallow\tok\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t9007199254740993\tlogin\tallow\tok\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t-5\tlogin\tallow\tok\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tadmin\tallow\tok\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tsession\tallow\tok\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tOK\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "X\tann\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\ta%41\tsshd\t\n",  /* 'A' escaped */
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\ta%0a\tsshd\t\n",  /* lower hex */
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\ta%0\tsshd\t\n",   /* cut */
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\ta\x7f\tsshd\t\n", /* raw DEL */
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\ta\xc3\xb6\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\ta b\tsshd\t\n", /* raw space */
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t192.0.2.7\t\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t192.0.2.7\n\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t\r\n",
	};
	struct vk_event e;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (vk_event_decode(bad[i], strlen(bad[i]), &e) != -1)
			fail_msg("line %zu decoded", i);
		assert_int_equal(e.at, 0);
	}
	/* a NUL inside the line, and a field over its limit */
	{
		char line[] = "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tan\0n\tsshd\t\n";
		char big[VK_EVENT_LINE_MAX * 2];
		int n = snprintf(
		    big, sizeof big,
		    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\t%0257d\tsshd\t\n", 0);

		assert_int_equal(vk_event_decode(line, sizeof line - 1, &e), -1);
		assert_int_equal(vk_event_decode(big, (size_t)n, &e), -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_cut),
	    cmocka_unit_test(test_make_refused),
	    cmocka_unit_test(test_decode_refused),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
