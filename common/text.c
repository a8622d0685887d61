/*
 * text.c - UTF-8, names, user names and text shown to people.
 *
 * Security rules for this file:
 *  1. A name MUST be valid UTF-8 without control or format characters, so
 *     that no name can rewrite a terminal or reorder what an admin reads.
 *  2. vk_text_clean() MUST NOT let through any byte that is invalid UTF-8
 *     or any code point that vk_name_valid() refuses.
 *  3. Nothing here reads past the terminating NUL.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "vk.h"

/*
 * Decodes one UTF-8 sequence at s, rejecting overlong forms, surrogates,
 * values above U+10FFFF and sequences cut by the NUL. Returns its length
 * and the code point, or 0.
 */
static size_t
utf8_decode(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t c = s[0], min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/*
 * Controls (Cc), format characters (Cf, Unicode 15: bidi embeddings,
 * overrides and isolates, zero-width characters, invisible operators,
 * tags...) and the line and paragraph separators.
 */
static const struct {
	uint32_t lo, hi;
} invisible[] = {
    {0x0000, 0x001f},   {0x007f, 0x009f},   {0x00ad, 0x00ad},   {0x0600, 0x0605},
    {0x061c, 0x061c},   {0x06dd, 0x06dd},   {0x070f, 0x070f},   {0x0890, 0x0891},
    {0x08e2, 0x08e2},   {0x180e, 0x180e},   {0x200b, 0x200f},   {0x2028, 0x202e},
    {0x2060, 0x2064},   {0x2066, 0x206f},   {0xfeff, 0xfeff},   {0xfff9, 0xfffb},
    {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x1343f}, {0x1bca0, 0x1bca3},
    {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f},
};

static int
is_invisible(uint32_t cp)
{
	if (cp < 0x80) /* ASCII, the common case: the table's first two ranges */
		return cp < 0x20 || cp == 0x7f;
	for (size_t i = 0; i < sizeof invisible / sizeof invisible[0]; i++)
		if (cp >= invisible[i].lo && cp <= invisible[i].hi)
			return 1;
	return 0;
}

int
vk_name_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t count = 0;

	if (s == NULL || *s == '\0')
		return 0;
	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0 || is_invisible(cp) || ++count > VK_NAME_MAX)
			return 0;
		p += n;
	}
	return 1;
}

int
vk_user_valid(const char *s)
{
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n > VK_USER_MAX || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] >= 0x7f || s[i] == ':' || s[i] == '/')
			return 0;
	return 1;
}

size_t
vk_text_clean(const char *s, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
	size_t len = 0, count = 0;

	if (size == 0)
		return 0;
	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);
		const unsigned char *src = p;
		size_t take = n;

		if (n == 0 || is_invisible(cp)) {
			src = (const unsigned char *)"?";
			take = 1;
		}
		if (len + take >= size)
			break;
		if (take == 1)
			out[len] = (char)*src;
		else
			memcpy(out + len, src, take);
		len += take;
		count++;
		p += n != 0 ? n : 1;
	}
	out[len] = '\0';
	return count;
}

char *
vk_text_utf8_repair(const char *s)
{
	static const char replacement[] = "\xef\xbf\xbd";
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	char *out = malloc(3 * len + 1), *o = out;

	if (out == NULL)
		return NULL;
	while (*p != '\0') {
		uint32_t cp;
		size_t n = utf8_decode(p, &cp);

		if (n == 0) {
			memcpy(o, replacement, 3);
			o += 3;
			p++;
		} else {
			memcpy(o, p, n);
			o += n;
			p += n;
		}
	}
	*o = '\0';
	return out;
}

int
vk_text_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		uint32_t cp;
		uint64_t w;
		size_t n;

		/* eight ASCII bytes, none of them NUL, at a time (within len) */
		if (end - p >= 8) {
			memcpy(&w, p, sizeof w);
			if (((w | (w - 0x0101010101010101ull)) & 0x8080808080808080ull) == 0) {
				p += 8;
				continue;
			}
		}
		if (*p == '\0')
			return 0;
		if (*p < 0x80) {
			p++;
			continue;
		}
		if ((n = utf8_decode(p, &cp)) == 0 || n > (size_t)(end - p))
			return 0;
		p += n;
	}
	return 1;
}
