/*
 * vk.c - roles, names and error messages.
 */
#include "autoconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vk.h"

static const char *const role_names[] = {
    [VK_ROLE_NONE] = "none",
    [VK_ROLE_VIEWER] = "viewer",
    [VK_ROLE_OPERATOR] = "operator",
    [VK_ROLE_OWNER] = "owner",
};

vk_role
vk_role_parse(const char *s)
{
	for (int r = VK_ROLE_VIEWER; r <= VK_ROLE_OWNER; r++)
		if (s != NULL && strcmp(s, role_names[r]) == 0)
			return (vk_role)r;
	return VK_ROLE_NONE;
}

const char *
vk_role_name(vk_role r)
{
	if (r < VK_ROLE_NONE || r > VK_ROLE_OWNER)
		return role_names[VK_ROLE_NONE];
	return role_names[r];
}

/*
 * Decodes one UTF-8 sequence at s, rejecting overlong forms, surrogates and
 * values above U+10FFFF. Returns its length and the code point, or 0.
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

		/* C0 and C1 controls, DEL, and line/paragraph separators */
		if (n == 0 || cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 ||
		    cp == 0x2029)
			return 0;
		if (++count > VK_NAME_MAX)
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

void
vk_seterr(char *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err, VK_ERRLEN, fmt, ap);
	va_end(ap);
}
