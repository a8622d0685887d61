/*
 * duration_test.c - durations and RFC 3339 times (duration.h).
 */
#include "autoconfig.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "duration.h"
#include "fixture.h"

static void
test_durations_accepted(void **state)
{
	static const struct {
		const char *s;
		int64_t seconds;
	} cases[] = {
	    {"90s", 90},
	    {"15m", 15 * 60},
	    {"24h", 24 * 3600},
	    {"7d", 7 * 86400},
	    {"2w", 14 * 86400},
	    {"1s", 1},
	    {"3162240000s", VK_DURATION_MAX},
	    {"36600d", VK_DURATION_MAX},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t out = -1;

		if (vk_duration_parse(cases[i].s, &out) != 0)
			fail_msg("\"%s\" rejected", cases[i].s);
		assert_int_equal(out, cases[i].seconds);
	}
}

static void
test_durations_rejected(void **state)
{
	static const char *const cases[] = {
	    "0s",
	    "0w",
	    "-1s",
	    "+1s",
	    "1x",
	    "",
	    "s",
	    "1",
	    "1 s",
	    " 1s",
	    "1s ",
	    "1s\n",
	    "1.5h",
	    "1ss",
	    "1hs",
	    "0x10s",
	    "1e3s",
	    "3162240001s",
	    "36601d",
	    "5229w",
	    "9223372036854775807s",     /* INT64_MAX */
	    "9223372036854775808s",     /* INT64_MAX + 1 */
	    "18446744073709551617s",    /* wraps to 1 in 64 bits */
	    "99999999999999999999999w", /* way over */
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t out = 12345;

		if (vk_duration_parse(cases[i], &out) != -1)
			fail_msg("\"%s\" accepted as %lld", cases[i], (long long)out);
		assert_int_equal(out, 12345);
	}
	assert_int_equal(vk_duration_parse(NULL, &(int64_t){0}), -1);
}

static void
test_time_format_rfc3339_utc(void **state)
{
	static const struct {
		int64_t t;
		const char *s;
	} cases[] = {
	    {0, "1970-01-01T00:00:00Z"},
	    {FX_NOW, "2023-11-14T22:13:20Z"},
	    {951782400, "2000-02-29T00:00:00Z"},
	    {4102444799, "2099-12-31T23:59:59Z"},
	};

	(void)state;
	/* UTC whatever the local zone */
	assert_int_equal(setenv("TZ", "America/New_York", 1), 0);
	tzset();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char out[VK_RFC3339_LEN + 1];

		vk_time_format(cases[i].t, out);
		assert_string_equal(out, cases[i].s);
	}
}

static void
test_now_is_seconds(void **state)
{
	int64_t before = (int64_t)time(NULL), now = vk_now();

	(void)state;
	assert_in_range(now, before, before + 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_durations_accepted),
	    cmocka_unit_test(test_durations_rejected),
	    cmocka_unit_test(test_time_format_rfc3339_utc),
	    cmocka_unit_test(test_now_is_seconds),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
