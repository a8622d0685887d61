/*
 * canon.c - a cursor over the canonical JSON the fleet signs.
 */
#include "autoconfig.h"

#include <string.h>

#include "canon.h"

#define HEX "0123456789abcdef"

void
vk_canon_start(struct vk_cursor *c, const char *text, size_t len)
{
	c->p = text;
	c->end = text + len;
	c->bad = 0;
}

void
vk_canon_lit(struct vk_cursor *c, const char *s)
{
	size_t n = strlen(s);

	if (c->bad || (size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		c->bad = 1;
	else
		c->p += n;
}

int64_t
vk_canon_num(struct vk_cursor *c)
{
	int64_t v = 0;
	const char *start = c->p;

	if (c->bad)
		return 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9' && v <= VK_CANON_NUM_MAX)
		v = v * 10 + (*c->p++ - '0');
	if (c->p == start || (*start == '0' && c->p - start > 1) || v > VK_CANON_NUM_MAX)
		c->bad = 1;
	return v;
}

void
vk_canon_str(struct vk_cursor *c, char *out, size_t size)
{
	size_t n = 0;

	vk_canon_lit(c, "\"");
	while (!c->bad && c->p < c->end && *c->p != '"') {
		if (*c->p == '\\' || *c->p == '\0' || n + 1 == size) {
			c->bad = 1;
			break;
		}
		out[n++] = *c->p++;
	}
	out[n] = '\0';
	vk_canon_lit(c, "\"");
}

void
vk_canon_hex(struct vk_cursor *c, unsigned char *out, size_t n)
{
	char text[130];

	if (2 * n + 2 > sizeof text) {
		c->bad = 1;
		return;
	}
	vk_canon_str(c, text, 2 * n + 2);
	if (!c->bad && strlen(text) != 2 * n)
		c->bad = 1;
	for (size_t i = 0; !c->bad && i < n; i++) {
		const char *hi = strchr(HEX, text[2 * i]), *lo = strchr(HEX, text[2 * i + 1]);

		if (hi == NULL || lo == NULL)
			c->bad = 1;
		else
			out[i] = (unsigned char)((hi - HEX) << 4 | (lo - HEX));
	}
}

int
vk_canon_done(const struct vk_cursor *c)
{
	return !c->bad && c->p == c->end;
}
