/*
 * log.h - viamkey-syncd's log and clock.
 *
 * Every line goes to syslog (facility LOG_DAEMON, as openlog() in main.c
 * set it). With --verbose each line also goes to standard error, stamped
 * with the time (UTC, to the millisecond), which syslog would add but a
 * terminal or a test's log file does not; LOG_DEBUG lines are written only
 * then.
 */
#ifndef SD_LOG_H
#define SD_LOG_H

#include <stdint.h>
#include <syslog.h>

/* Also write every line, debug ones included, to standard error. */
void sd_log_verbose(int on);

void sd_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* How many lines of that priority were logged since the daemon started. */
uint64_t sd_log_count(int priority);

/* Milliseconds on the monotonic clock, for waits and intervals; microseconds, for timings. */
int64_t sd_now_ms(void);
int64_t sd_now_us(void);

#endif
