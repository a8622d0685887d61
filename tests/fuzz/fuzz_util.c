/*
 * fuzz_util.c - what the libFuzzer targets share.
 */
#include "autoconfig.h"

#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_util.h"

static char *tmpdir;

void
fz_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("fuzz: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

static int
remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void
remove_tmpdir(void)
{
	nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmpdir);
}

const char *
fz_setup(void)
{
	const char *base = getenv("TMPDIR");

	umask(077);
	if (sodium_init() < 0)
		fz_die("sodium_init failed");
	if (asprintf(&tmpdir, "%s/viamkey-fuzz.XXXXXX",
	             base != NULL && *base != '\0' ? base : "/tmp") < 0 ||
	    mkdtemp(tmpdir) == NULL)
		fz_die("cannot make a temporary directory");
	atexit(remove_tmpdir);
	return tmpdir;
}

char *
fz_path(const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s", tmpdir, name) < 0)
		fz_die("out of memory");
	return path;
}

void
fz_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) != 0)
		fz_die("cannot write %s", path);
}

char *
fz_strndup(const uint8_t *data, size_t len)
{
	char *s = malloc(len + 1);

	if (s == NULL)
		fz_die("out of memory");
	memcpy(s, data, len);
	s[len] = '\0';
	return s;
}

const uint8_t *
fz_split(const uint8_t *data, size_t size, size_t *head_len)
{
	const uint8_t *nul = memchr(data, '\0', size);

	*head_len = nul != NULL ? (size_t)(nul - data) : size;
	return nul != NULL ? nul + 1 : NULL;
}

int
fz_all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}
