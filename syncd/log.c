/*
 * log.c - viamkey-syncd's log: syslog, and standard error with a time
 * stamp under --verbose.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int verbose;
static uint64_t counts[LOG_DEBUG + 1]; /* by priority; atomic: several threads log */

void
sd_log_verbose(int on)
{
	verbose = on;
}

void
sd_log(int priority, const char *fmt, ...)
{
	va_list ap;

	if (priority >= 0 && priority <= LOG_DEBUG)
		__atomic_add_fetch(&counts[priority], 1, __ATOMIC_RELAXED);
	if (priority == LOG_DEBUG && !verbose)
		return;
	va_start(ap, fmt);
	vsyslog(priority, fmt, ap);
	va_end(ap);
	if (verbose) {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		/* one call per line: lines of several threads do not mix */
		flockfile(stderr);
		fprintf(stderr, "%s.%03ldZ viamkey-syncd[%ld]: ", stamp, ts.tv_nsec / 1000000,
		        (long)getpid());
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
		funlockfile(stderr);
	}
}

uint64_t
sd_log_count(int priority)
{
	return priority >= 0 && priority <= LOG_DEBUG
	           ? __atomic_load_n(&counts[priority], __ATOMIC_RELAXED)
	           : 0;
}

int64_t
sd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
sd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
