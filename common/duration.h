/*
 * duration.h - durations ("90s", "15m", "24h", "7d", "2w") and time.
 */
#ifndef VK_DURATION_H
#define VK_DURATION_H

#include <stdint.h>

#define VK_DURATION_MAX (100LL * 366 * 86400) /* a century */
#define VK_RFC3339_LEN  20                    /* "2026-11-22T04:07:31Z" */

/*
 * A positive decimal count followed by exactly one unit of s, m, h, d or w.
 * Returns 0 and stores seconds in *out, or -1 for anything else, including
 * zero, a sign, white space and values above VK_DURATION_MAX.
 */
int vk_duration_parse(const char *s, int64_t *out);

/* Current time in seconds since the epoch. */
int64_t vk_now(void);

/* RFC 3339 UTC, e.g. "2026-11-22T04:07:31Z". */
void vk_time_format(int64_t t, char out[VK_RFC3339_LEN + 1]);

#endif
