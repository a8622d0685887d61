/*
 * fuzz_util.h - what the libFuzzer targets share.
 *
 * fz_setup() makes a private 0700 directory that is removed at exit; paths
 * from fz_path() live in it and belong to the caller. A fixture that cannot
 * be built is a harness bug, so the helpers abort rather than return errors.
 */
#ifndef VK_FUZZ_UTIL_H
#define VK_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Prints a message and aborts, so that libFuzzer reports it with the input. */
void fz_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* An invariant of the code under test; its failure is a finding. */
#define FZ_CHECK(cond)                                                                             \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fz_die("%s:%d: invariant failed: %s", __FILE__, __LINE__, #cond);          \
	} while (0)

/* umask(077), sodium_init() and the private directory; returns its path. */
const char *fz_setup(void);

/* A path inside the private directory (malloc'd). */
char *fz_path(const char *name);

/* Creates or replaces path with exactly these bytes, mode 0600. */
void fz_write_file(const char *path, const void *data, size_t len);

/* Whether the n bytes at p are all zero (what a decoder leaves after refusing). */
int fz_all_zero(const void *p, size_t n);

/* A copy of data[0..len) in a buffer of exactly len + 1 bytes, NUL-terminated. */
char *fz_strndup(const uint8_t *data, size_t len);

/*
 * Splits data at its first NUL: *head is what comes before (head_len bytes),
 * and the result is what follows, or NULL when there is no NUL.
 */
const uint8_t *fz_split(const uint8_t *data, size_t size, size_t *head_len);

#endif
