/*
 * canon.h - reading the canonical JSON the fleet signs (head.h, cert.h).
 *
 * The authority writes its heads, pages, certificates and root documents
 * in one exact text each: fixed field order, no spaces, no escapes,
 * canonical numbers. A cursor reads such a text and fails at the first
 * byte that is not that text; once it failed, every further read is a
 * no-op, so a decoder reads a whole document and checks `bad` once. It
 * never reads past `end`.
 */
#ifndef VK_CANON_H
#define VK_CANON_H

#include <stddef.h>
#include <stdint.h>

struct vk_cursor {
	const char *p, *end;
	int bad;
};

#define VK_CANON_NUM_MAX ((int64_t)1 << 53) /* what a JSON number holds exactly */

/* Starts a cursor on len bytes of text. */
void vk_canon_start(struct vk_cursor *c, const char *text, size_t len);

/* The literal s, exactly. */
void vk_canon_lit(struct vk_cursor *c, const char *s);

/* An integer from 0 to VK_CANON_NUM_MAX: "0", or digits without a leading zero. */
int64_t vk_canon_num(struct vk_cursor *c);

/* A quoted string of at most size - 1 bytes, none a quote, a backslash or a NUL, into out. */
void vk_canon_str(struct vk_cursor *c, char *out, size_t size);

/* A quoted string of exactly 2 * n lowercase hexadecimal digits, into n bytes. */
void vk_canon_hex(struct vk_cursor *c, unsigned char *out, size_t n);

/* Whether the whole text was read, and nothing failed. */
int vk_canon_done(const struct vk_cursor *c);

#endif
