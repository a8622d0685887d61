/*
 * fuzz_ini.c - libFuzzer target for the INI text of viamkey.conf (ini.h).
 *
 * Input: any bytes, as the text of a config file. Whatever they are,
 * vk_ini_parse() must not crash or leak; what it passes on must be
 * lowercase names of its characters and values without control
 * characters, on lines of the text; a refusal must name a line of the
 * text; and every text it accepts, libiniparser 4.1 must read into the
 * same sections, keys and values (ini_oracle.h).
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "ini.h"
#include "ini_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_-.@+"

static int
check_entry(void *ctx, const struct vk_ini_entry *en)
{
	const int *lines = ctx;

	FZ_CHECK(en->line >= 1 && en->line <= *lines);
	FZ_CHECK(en->section[0] != '\0' && strspn(en->section, NAME_CHARS) == strlen(en->section));
	FZ_CHECK((en->key == NULL) == (en->value == NULL));
	if (en->key != NULL) {
		FZ_CHECK(en->key[0] != '\0' && strspn(en->key, NAME_CHARS) == strlen(en->key));
		for (const char *v = en->value; *v != '\0'; v++)
			FZ_CHECK(((unsigned char)*v >= 0x20 || *v == '\t') && *v != 0x7f);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text, why[256];
	struct vk_ini_error e;
	int lines = 1, rc;

	if (memchr(data, '\0', size) != NULL)
		return 0; /* the config refuses a NUL byte before it parses */
	if ((text = malloc(size + 1)) == NULL)
		fz_die("out of memory");
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i + 1 < size; i++)
		lines += data[i] == '\n';
	rc = vk_ini_parse(text, check_entry, &lines, &e);
	FZ_CHECK(rc == 0 || rc == -1);
	if (rc == -1)
		FZ_CHECK(e.line >= 1 && e.line <= lines && e.what[0] != '\0');
	free(text);
	if (ini_oracle_check((const char *)data, size, why, sizeof why) < 0)
		fz_die("read otherwise than libiniparser: %s", why);
	return 0;
}
