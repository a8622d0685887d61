/*
 * ini.c - the INI text of viamkey.conf (see ini.h for what it accepts).
 *
 * Rules for this file:
 *  1. Accept only what iniparser 4.1 reads the same way; anything in doubt
 *     is refused with its line, never guessed.
 *  2. No I/O and no global state: the caller owns the text and the output.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"

#define NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.@+"

/* What iniparser's isspace() cuts from both ends of a line (a tab inside is kept). */
static int
space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static int refuse(struct vk_ini_error *e, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct vk_ini_error *e, int line, const char *fmt, ...)
{
	va_list ap;

	e->line = line;
	va_start(ap, fmt);
	vsnprintf(e->what, sizeof e->what, fmt, ap);
	va_end(ap);
	return -1;
}

const char *
vk_ini_shown(const char *name, char buf[VK_INI_SHOWN + 4])
{
	if (strlen(name) <= VK_INI_SHOWN)
		return name;
	memcpy(buf, name, VK_INI_SHOWN);
	memcpy(buf + VK_INI_SHOWN, "...", 4);
	return buf;
}

/* [s, e) without white space at either end, NUL-terminated; returns the new start. */
static char *
cut(char *s, char *e)
{
	while (s < e && space(*s))
		s++;
	while (e > s && space(e[-1]))
		e--;
	*e = '\0';
	return s;
}

/* Whether s is a name; lowercases it. */
static int
name(char *s)
{
	if (*s == '\0' || strspn(s, NAME_CHARS) != strlen(s))
		return 0;
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
	return 1;
}

/* The value after "=" in v: quoted, or up to a comment; NULL when refused. */
static const char *
value(char *v, int line, struct vk_ini_error *e)
{
	char *close, *rest;

	while (space(*v))
		v++;
	if (*v != '"' && *v != '\'') {
		rest = v + strcspn(v, ";#");
		return cut(v, rest);
	}
	if ((close = strchr(v + 1, *v)) == NULL) {
		refuse(e, line, "syntax error: the value's %s is not closed",
		       *v == '"' ? "double quote" : "quote");
		return NULL;
	}
	for (rest = close + 1; space(*rest); rest++)
		;
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		refuse(e, line, "syntax error: text after the value's closing quote");
		return NULL;
	}
	*close = '\0';
	return v + 1;
}

int
vk_ini_parse(char *text, vk_ini_fn fn, void *ctx, struct vk_ini_error *e)
{
	struct vk_ini_entry seen[VK_INI_KEYS];
	const char *section = NULL;
	char shown_section[VK_INI_SHOWN + 4], shown_key[VK_INI_SHOWN + 4];
	size_t nseen = 0;
	int line = 0;

	memset(e, 0, sizeof *e);
	for (char *p = text; *p != '\0';) {
		char *nl = strchr(p, '\n'), *end = nl != NULL ? nl : p + strlen(p), *s, *eq;
		struct vk_ini_entry en = {section, NULL, NULL, ++line};
		int rc;

		if (end - p > VK_INI_LINE_MAX)
			return refuse(e, line, "a line of more than %d bytes", VK_INI_LINE_MAX);
		s = cut(p, end);
		p = nl != NULL ? nl + 1 : end;
		for (const char *c = s; *c != '\0'; c++)
			if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
				return refuse(e, line, "a control character (byte %d)",
				              (unsigned char)*c);
		if (*s != '\0' && s[strlen(s) - 1] == '\\')
			return refuse(e, line,
			              "a line may not end in '\\' (iniparser would join it to"
			              " the next one)");
		if (*s == '\0' || *s == ';' || *s == '#')
			continue;
		if (*s == '[') {
			char *last = s + strlen(s) - 1, *header;

			if (*last != ']')
				return refuse(
				    e, line, "syntax error: a header is [name], alone on its line");
			if (!name(header = cut(s + 1, last)))
				return refuse(e, line,
				              "syntax error: a section name is letters, digits"
				              " and _-.@+");
			en.section = section = header;
		} else {
			char *key;

			if ((eq = strchr(s, '=')) == NULL)
				return refuse(e, line,
				              "syntax error: not [section], name = value, or a"
				              " comment");
			key = cut(s, eq);
			if (!name(key))
				return refuse(e, line,
				              "syntax error: a key name is letters, digits and"
				              " _-.@+");
			if (section == NULL)
				return refuse(e, line, "key \"%s\" is outside any [section]",
				              vk_ini_shown(key, shown_key));
			if ((en.value = value(eq + 1, line, e)) == NULL)
				return -1;
			en.key = key;
			for (size_t i = 0; i < nseen; i++)
				if (strcmp(seen[i].section, section) == 0 &&
				    strcmp(seen[i].key, key) == 0)
					return refuse(e, line, "[%s] %s is already set on line %d",
					              vk_ini_shown(section, shown_section),
					              vk_ini_shown(key, shown_key), seen[i].line);
			if (nseen == VK_INI_KEYS)
				return refuse(e, line, "more than %d keys", VK_INI_KEYS);
			seen[nseen++] = en;
		}
		if ((rc = fn(ctx, &en)) != 0)
			return rc;
	}
	return 0;
}
