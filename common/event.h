/*
 * event.h - one thing that happened on a machine (SPEC §11): a login
 * decision, or a session opened or closed. Pure functions without I/O.
 *
 * The module appends an event to the journal beside the store as one line,
 * the machine's daemon sends the same line to the authority, and the
 * authority checks it with vk_event_decode() before it stores it:
 *
 *   v1 TAB UID TAB AT TAB KIND TAB WHAT TAB REASON TAB KEY TAB USER TAB SERVICE TAB RHOST LF
 *
 * and a session's line has five fields more:
 *
 *   ... TAB RHOST TAB ROLE TAB SECRET TAB LOGIND TAB PID TAB START LF
 *
 * UID is 32 lower-case hex digits, random (what deduplicates the event on
 * its way); AT decimal seconds since the epoch, 1 to 2^53; KIND "login"
 * (WHAT "allow", "deny" or "error") or "session" (WHAT "open", "close",
 * or "end": its daemon ended it, REASON saying why);
 * REASON lower-case letters and '_' (the decision's reason, or empty); KEY
 * a key ID's characters (hex digits and '-') or empty. USER, SERVICE and
 * RHOST are the PAM items, each written with every byte outside '!'..'~'
 * (the space too) and every '%' as %XX (upper-case hex), and no other
 * byte so; cut before the first byte whose writing would pass the field's
 * limit. They stay so written (always printable ASCII, one spelling for
 * one value) wherever the event goes. An empty field is absent.
 *
 * A session's fields say which session it is and what opened it: ROLE the
 * role its service required ("viewer", "operator", "owner") or empty;
 * SECRET the tag of the key's secret it used (vk_secret_tag(), 16
 * lower-case hex digits) or empty; LOGIND its logind session ID
 * (XDG_SESSION_ID: 1 to 32 letters and digits) or empty; PID the process
 * that opened it, 1 to 2^22, and START that process's start time (clock
 * ticks after boot, /proc/PID/stat's 22nd field), 0 to 2^53, both decimal
 * without leading zeros. PID and START name the session on its machine:
 * its close, and its end, carry the same.
 */
#ifndef VK_EVENT_H
#define VK_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "vk.h"

#define VK_EVENT_UID_LEN     32
#define VK_EVENT_REASON_MAX  32 /* bytes, each field as written, NUL excluded */
#define VK_EVENT_USER_MAX    256
#define VK_EVENT_SERVICE_MAX 128
#define VK_EVENT_RHOST_MAX   256
#define VK_EVENT_LOGIND_MAX  32
#define VK_EVENT_LINE_MAX    1024 /* a whole line, LF included: one write(2), under PIPE_BUF */

struct vk_event {
	char uid[VK_EVENT_UID_LEN + 1];
	int64_t at;
	char kind[8]; /* "login" | "session" */
	char what[8]; /* login: "allow" | "deny" | "error"; session: "open" | "close" | "end" */
	char reason[VK_EVENT_REASON_MAX + 1];
	char key_id[VK_UUID_STRLEN + 1];
	char user[VK_EVENT_USER_MAX + 1]; /* as written: %XX-escaped */
	char service[VK_EVENT_SERVICE_MAX + 1];
	char rhost[VK_EVENT_RHOST_MAX + 1];
	struct vk_event_session { /* kind "session" only */
		char role[12];    /* "" | "viewer" | "operator" | "owner" */
		char secret[VK_SECRET_TAG_LEN + 1];
		char logind[VK_EVENT_LOGIND_MAX + 1];
		int64_t pid, start;
	} session;
};

/*
 * Fills e from raw values (NULL or "" for an absent one): the uid as hex of
 * the 16 bytes given, the PAM items escaped and cut. 0, or -1 when a fixed
 * field is not as the format says (e is then zeroed).
 */
int vk_event_make(struct vk_event *e, const unsigned char uid[16], int64_t at, const char *kind,
                  const char *what, const char *reason, const char *key_id, const char *user,
                  const char *service, const char *rhost);

/*
 * A session event's own fields, into e made with kind "session": 0, or -1
 * when one is not as the format says (e unchanged).
 */
int vk_event_set_session(struct vk_event *e, const char *role, const char *secret,
                         const char *logind, int64_t pid, int64_t start);

/*
 * A PAM item as written in an event (escaped) back to its bytes, into out
 * (size bytes, NUL-terminated): 0, or -1 when it does not fit, holds a
 * NUL, or is not as vk_event_make() writes it.
 */
int vk_event_unescape(const char *in, char *out, size_t size);

/* Writes e's line (LF included, NUL-terminated) into out; its length. */
size_t vk_event_encode(const struct vk_event *e, char out[VK_EVENT_LINE_MAX + 1]);

/*
 * Reads one line (with or without its LF; nothing after it) into e: 0, or
 * -1 when it is not exactly as the format says (e is then zeroed). What
 * decodes, vk_event_encode() writes again byte for byte (with the LF).
 */
int vk_event_decode(const char *line, size_t len, struct vk_event *e);

#endif
