/*
 * duration.c - durations and time.
 */
#include "autoconfig.h"

#include <time.h>

#include "duration.h"

int
vk_duration_parse(const char *s, int64_t *out)
{
	int64_t n = 0, unit;
	const char *p = s;

	if (s == NULL || *p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (*p - '0');
		if (n > VK_DURATION_MAX)
			return -1;
	}
	switch (*p) {
	case 's':
		unit = 1;
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	case 'w':
		unit = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (p[1] != '\0' || n == 0 || n > VK_DURATION_MAX / unit)
		return -1;
	*out = n * unit;
	return 0;
}

int64_t
vk_now(void)
{
	return (int64_t)time(NULL);
}

void
vk_time_format(int64_t t, char out[VK_RFC3339_LEN + 1])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, VK_RFC3339_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) != VK_RFC3339_LEN)
		out[0] = '\0';
}
