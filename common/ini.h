/*
 * ini.h - the INI text of viamkey.conf (SPEC §5), read without a library.
 *
 * The format is iniparser's, and this reader takes a strict part of it:
 * every text it accepts, libiniparser 4.1 reads into the same sections,
 * keys and values in the C locale (tests/ini_test.c and
 * tests/fuzz/fuzz_ini.c hold it to that; its names are ASCII, which no
 * locale changes here); a text it refuses is refused with its line and
 * why. Per line, after leading and trailing white space is cut:
 *
 *   (empty)                nothing
 *   ; text   or   # text   a comment
 *   [ name ]               a section header
 *   name = value           a key of the last header's section
 *
 * Names are letters, digits and "_-.@+", compared in lowercase, and given
 * in lowercase. A value is either quoted, "..." or '...' (kept as it is
 * between the quotes, which it cannot hold; white space and a comment may
 * follow the closing quote), or the text up to the first ';' or '#', cut
 * of white space (it may be empty). Refused: any other line, a line that
 * ends in '\' (iniparser would join it to the next), a line of more than
 * VK_INI_LINE_MAX bytes, a control character other than a tab, a key
 * before the first header, and a key given twice in one section (iniparser
 * keeps the last one silently), or more than VK_INI_KEYS keys.
 *
 * vk_ini_parse() cuts `text`, a NUL-terminated string, into the names and
 * values it passes on: each header and each key in the order of the text,
 * to fn, which stops the parse by returning a positive value. It returns
 * 0, that value, or -1 when the text is refused, with the line and why in
 * *e. Pure: no I/O.
 */
#ifndef VK_INI_H
#define VK_INI_H

#define VK_INI_LINE_MAX 1000 /* under iniparser's 1,023-byte line */
#define VK_INI_KEYS     256
#define VK_INI_SHOWN    40 /* bytes of a name that a message repeats */

struct vk_ini_entry {
	const char *section;
	const char *key;   /* NULL for a section header */
	const char *value; /* NULL for a section header */
	int line;
};

struct vk_ini_error {
	int line;
	char what[160];
};

typedef int (*vk_ini_fn)(void *ctx, const struct vk_ini_entry *entry);

int vk_ini_parse(char *text, vk_ini_fn fn, void *ctx, struct vk_ini_error *e);

/*
 * name as a message repeats it: whole, or its first VK_INI_SHOWN bytes and
 * "...", in buf. A name may be as long as its line, and a message that
 * repeated it whole would be cut before it said why.
 */
const char *vk_ini_shown(const char *name, char buf[VK_INI_SHOWN + 4]);

#endif
