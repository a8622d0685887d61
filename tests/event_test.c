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
#include "verifier.h"
#include "fixture.h"

#define UID "000102030405060708090a0b0c0d0e0f"
#define KEY "0f8fad5b-d9cb-469f-a165-70867728950e"
#define AT  1764950400

static const unsigned char uid_bytes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

#define ALLOW "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t192.0.2.7\n"
#define SESSION                                                                                    \
	"v1\t" UID "\t1764950400\tsession\topen\t\t" KEY                                           \
	"\tann\tsshd\t192.0.2.7\toperator\t0123456789abcdef\tc3\t4242\t0\n"
#define DENY "v1\t" UID "\t1764950400\tlogin\tdeny\tmalformed\t\tb%09%C3%B6%25%0A%7Fx%20y\tsudo\t\n"

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

	assert_int_equal(vk_event_make(&e, uid_bytes, AT, "session", "open", NULL, KEY, "ann",
	                               "sshd", "192.0.2.7"),
	                 0);
	assert_int_equal(vk_event_set_session(&e, "operator", "0123456789abcdef", "c3", 4242, 0),
	                 0);
	vk_event_encode(&e, line);
	assert_string_equal(line, SESSION);
	assert_int_equal(vk_event_decode(line, strlen(line), &d), 0);
	assert_memory_equal(&e, &d, sizeof e);
	assert_int_equal(d.session.pid, 4242);

	/* an end carries what its daemon knows of the session; a close, only which it is */
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "session", "end", "disabled", KEY, NULL, NULL, NULL),
	    0);
	assert_int_equal(vk_event_set_session(&e, NULL, NULL, NULL, 1, 9007199254740992), 0);
	vk_event_encode(&e, line);
	assert_string_equal(line, "v1\t" UID "\t1764950400\tsession\tend\tdisabled\t" KEY
	                          "\t\t\t\t\t\t\t1\t9007199254740992\n");
}

/* What an event wrote of a PAM item, back to its bytes; a NUL or a bad escape refused. */
static void
test_unescape(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(vk_event_unescape("b%09%C3%B6%25%0A%7Fx%20y", out, sizeof out), 0);
	assert_string_equal(out, "b\t\xc3\xb6%\n\x7fx y");
	assert_int_equal(vk_event_unescape("", out, sizeof out), 0);
	assert_string_equal(out, "");
	assert_int_equal(vk_event_unescape("a%00b", out, sizeof out), -1);
	assert_int_equal(vk_event_unescape("a%41", out, sizeof out), -1);
	assert_int_equal(vk_event_unescape("a%4", out, sizeof out), -1);
	assert_int_equal(vk_event_unescape("a b", out, sizeof out), -1);
	assert_int_equal(vk_event_unescape("0123456789abcdef", out, sizeof out), -1); /* too long */
	assert_int_equal(vk_event_unescape("0123456789abcde", out, sizeof out), 0);
}

/* vk_secret_tag(): BLAKE2b-64 of the domain and the salt, as made apart in Python. */
static void
test_secret_tag(void **state)
{
	unsigned char salt[32];
	char tag[VK_SECRET_TAG_LEN + 1];

	(void)state;
	for (int i = 0; i < 32; i++)
		salt[i] = (unsigned char)i;
	vk_secret_tag(salt, sizeof salt, tag);
	assert_string_equal(tag, "6ee51f19bfce126d");
}

/* Only a session takes a session's fields, each as the format says. */
static void
test_session_refused(void **state)
{
	struct vk_event e;

	(void)state;
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "login", "allow", "ok", KEY, "a", "s", NULL), 0);
	assert_int_equal(vk_event_set_session(&e, "operator", NULL, NULL, 5, 5), -1);
	assert_int_equal(
	    vk_event_make(&e, uid_bytes, AT, "session", "open", NULL, KEY, "a", "s", NULL), 0);
	assert_int_equal(vk_event_set_session(&e, "admin", NULL, NULL, 5, 5), -1);
	assert_int_equal(vk_event_set_session(&e, NULL, "0123456789ABCDEF", NULL, 5, 5), -1);
	assert_int_equal(vk_event_set_session(&e, NULL, "0123456789abcde", NULL, 5, 5), -1);
	assert_int_equal(vk_event_set_session(&e, NULL, NULL, "c-3", 5, 5), -1);
	assert_int_equal(vk_event_set_session(&e, NULL, NULL, NULL, 0, 5), -1);
	assert_int_equal(vk_event_set_session(&e, NULL, NULL, NULL, 4194305, 5), -1);
	assert_int_equal(vk_event_set_session(&e, NULL, NULL, NULL, 5, -1), -1);
	assert_int_equal(e.session.pid, 0);
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
	    /* a session's fields: only on a session, all five, each as the format says */
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\n",
	    "v1\t" UID "\t1764950400\tlogin\tallow\tok\t" KEY "\tann\tsshd\t\t\t\t\t1\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t1\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t1\t0\t\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\tadmin\t\t\t1\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t0123\t\t1\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\tc%33\t1\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t0\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t01\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t4194305\t0\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t1\t00\n",
	    "v1\t" UID "\t1764950400\tsession\topen\t\t" KEY "\tann\tsshd\t\t\t\t\t1\t-1\n",
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
	    cmocka_unit_test(test_vectors),         cmocka_unit_test(test_cut),
	    cmocka_unit_test(test_make_refused),    cmocka_unit_test(test_decode_refused),
	    cmocka_unit_test(test_unescape),        cmocka_unit_test(test_secret_tag),
	    cmocka_unit_test(test_session_refused),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
