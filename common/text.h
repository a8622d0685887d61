/*
 * text.h - names, user names and text shown to people.
 *
 * Everything a user can influence (names, user names, PAM_RHOST, the
 * PAM service) may hold bytes meant for a terminal rather than for a
 * reader: escape sequences, C1 controls, bidi overrides, zero-width
 * characters, invalid UTF-8. Names refuse them; text that is shown is
 * cleaned with vk_text_clean(); JSON is made valid UTF-8 with
 * vk_text_utf8_repair().
 */
#ifndef VK_TEXT_H
#define VK_TEXT_H

#include <stddef.h>

#define VK_TEXT_FIELD 256 /* bytes kept of a PAM service or remote host */

/*
 * Names of organizations, locations, machines and keys: 1-VK_NAME_MAX code
 * points of valid UTF-8, none of them a control or format character.
 */
int vk_name_valid(const char *s);

/*
 * Unix login names as PAM may hand them over, directory users such as
 * "ann@example.com" included: 1-VK_USER_MAX printable ASCII bytes, no
 * white space, ':' or '/', not starting with '-'.
 */
int vk_user_valid(const char *s);

/*
 * Copies s (NULL reads as "") into out (size bytes, always NUL-terminated),
 * replacing each invalid UTF-8 byte and each control or format character
 * (C0, DEL, C1, bidi controls, zero-width and other invisible characters,
 * line and paragraph separators) with '?'. A code point that does not fit
 * is left out whole. Returns the number of code points written.
 */
size_t vk_text_clean(const char *s, char *out, size_t size);

/*
 * A malloc()ed copy of s in which every invalid UTF-8 sequence is replaced
 * by U+FFFD; NULL when out of memory.
 */
char *vk_text_utf8_repair(const char *s);

/*
 * 1 when the len bytes at s, which s[len] == '\0' ends, hold no NUL and are
 * valid UTF-8 as vk_text_utf8_repair() judges it (it would copy them
 * unchanged); 0 otherwise.
 */
int vk_text_utf8_valid(const char *s, size_t len);

#endif
