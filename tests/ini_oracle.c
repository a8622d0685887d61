/*
 * ini_oracle.c - libiniparser 4.1 as the oracle of common/ini.c (see
 * ini_oracle.h).
 */
#include "autoconfig.h"

#include <iniparser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ini.h"
#include "ini_oracle.h"

/* What vk_ini_parse() passed on: sections once each, keys (values NULL for a section) */
struct seen {
	struct vk_ini_entry e[2 * VK_INI_KEYS];
	size_t sections, keys, n;
	int overflow;
};

static int
collect(void *ctx, const struct vk_ini_entry *en)
{
	struct seen *s = ctx;

	if (s->n == sizeof s->e / sizeof s->e[0]) {
		s->overflow = 1;
		return 1;
	}
	if (en->key == NULL) {
		for (size_t i = 0; i < s->n; i++)
			if (s->e[i].key == NULL && strcmp(s->e[i].section, en->section) == 0)
				return 0; /* a section named again */
		s->sections++;
	} else {
		s->keys++;
	}
	s->e[s->n++] = *en;
	return 0;
}

static int
quiet(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}

static dictionary *
iniparser_read(const char *text, size_t size)
{
	char path[64];
	dictionary *d = NULL;
	int fd = memfd_create("ini-oracle", MFD_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (write(fd, text, size) == (ssize_t)size) {
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		iniparser_set_error_callback(quiet);
		d = iniparser_load(path);
		iniparser_set_error_callback(NULL);
	}
	close(fd);
	return d;
}

int
ini_oracle_check(const char *text, size_t size, char *why, size_t why_size)
{
	struct seen *s = calloc(1, sizeof *s);
	char *copy = malloc(size + 1);
	struct vk_ini_error e;
	dictionary *d = NULL;
	size_t sections = 0, keys = 0;
	int rc = -1;

	if (s == NULL || copy == NULL) {
		snprintf(why, why_size, "out of memory");
		goto out;
	}
	memcpy(copy, text, size);
	copy[size] = '\0';
	if (memchr(text, '\0', size) != NULL) {
		rc = 0;
		snprintf(why, why_size, "a NUL byte");
		goto out;
	}
	if (vk_ini_parse(copy, collect, s, &e) != 0) {
		rc = 0;
		snprintf(why, why_size, "%s",
		         s->overflow ? "more headers than are compared" : e.what);
		goto out;
	}
	if ((d = iniparser_read(text, size)) == NULL) {
		snprintf(why, why_size, "accepted, but iniparser refuses it");
		goto out;
	}
	for (ssize_t i = 0; i < d->size; i++)
		if (d->key[i] != NULL)
			*(strchr(d->key[i], ':') != NULL ? &keys : &sections) += 1;
	if (sections != s->sections || keys != s->keys) {
		snprintf(why, why_size, "%zu sections and %zu keys, iniparser %zu and %zu",
		         s->sections, s->keys, sections, keys);
		goto out;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct vk_ini_entry *en = &s->e[i];
		char name[2 * VK_INI_LINE_MAX + 2];
		const char *v;

		snprintf(name, sizeof name, "%s%s%s", en->section, en->key != NULL ? ":" : "",
		         en->key != NULL ? en->key : "");
		v = iniparser_getstring(d, name, NULL);
		if (en->key == NULL ? iniparser_find_entry(d, name) == 0
		                    : v == NULL || strcmp(v, en->value) != 0) {
			snprintf(why, why_size, "%s: \"%s\", iniparser \"%s\"", name,
			         en->value != NULL ? en->value : "(section)",
			         v != NULL ? v : "(none)");
			goto out;
		}
	}
	rc = 1;
out:
	if (d != NULL)
		iniparser_freedict(d);
	free(copy);
	free(s);
	return rc;
}
