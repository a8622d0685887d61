/*
 * event.c - an event's line (event.h).
 *
 * Security rules for this file:
 *  1. No byte of a PAM item (the user, the service and the remote host,
 *     which a client chooses) reaches a line unescaped unless it is
 *     printable ASCII other than '%' and the space: a line has exactly nine
 *     tabs (a session's fourteen) and one LF, a value has one spelling, and
 *     no value can pass for more words in a table.
 *  2. The decoder accepts only what the encoder writes, and never reads
 *     past len.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "event.h"

#define AT_MAX       ((int64_t)1 << 53)
#define PID_MAX      ((int64_t)1 << 22) /* the kernel's PID_MAX_LIMIT */
#define FIELDS       10
#define FIELDS_MAX   15 /* a session's */
#define LINE_VERSION "v1"

static const char hex_upper[] = "0123456789ABCDEF";

static int
plain(unsigned char c)
{
	return c >= '!' && c <= '~' && c != '%';
}

/* Writes src escaped into dst (size max + 1), cut before passing max. */
static void
escape(char *dst, size_t max, const char *src)
{
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p != '\0'; p++) {
		if (plain(*p)) {
			if (o + 1 > max)
				break;
			dst[o++] = (char)*p;
		} else {
			if (o + 3 > max)
				break;
			dst[o++] = '%';
			dst[o++] = hex_upper[*p >> 4];
			dst[o++] = hex_upper[*p & 15];
		}
	}
	dst[o] = '\0';
}

static int
upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static unsigned
hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

/* Whether s[0..n) is a field as escape() writes it, of at most max bytes. */
static int
escaped_ok(const char *s, size_t n, size_t max)
{
	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n || !upper_hex(s[i + 1]) || !upper_hex(s[i + 2]) ||
			    plain((unsigned char)(hex_value(s[i + 1]) << 4 | hex_value(s[i + 2]))))
				return 0;
			i += 2;
		} else if (!plain((unsigned char)s[i])) {
			return 0;
		}
	}
	return 1;
}

/* Whether s[0..n) has 0 to max bytes, each in set. */
static int
span_ok(const char *s, size_t n, size_t max, const char *set)
{
	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return 0;
	return 1;
}

static int
kind_ok(const char *kind, const char *what)
{
	if (strcmp(kind, "login") == 0)
		return strcmp(what, "allow") == 0 || strcmp(what, "deny") == 0 ||
		       strcmp(what, "error") == 0;
	if (strcmp(kind, "session") == 0)
		return strcmp(what, "open") == 0 || strcmp(what, "close") == 0 ||
		       strcmp(what, "end") == 0;
	return 0;
}

#define HEX_LOWER  "0123456789abcdef"
#define REASON_SET "abcdefghijklmnopqrstuvwxyz_"
#define KEY_SET    HEX_LOWER "-"
#define LOGIND_SET "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static int
session_ok(const char *role, const char *secret, const char *logind, int64_t pid, int64_t start)
{
	size_t n = strlen(secret);

	return (role[0] == '\0' || vk_role_parse(role) != VK_ROLE_NONE) &&
	       (n == 0 || n == VK_SECRET_TAG_LEN) && span_ok(secret, n, n, HEX_LOWER) &&
	       span_ok(logind, strlen(logind), VK_EVENT_LOGIND_MAX, LOGIND_SET) && pid >= 1 &&
	       pid <= PID_MAX && start >= 0 && start <= AT_MAX;
}

static void
copy(char *dst, size_t size, const char *src, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int
vk_event_make(struct vk_event *e, const unsigned char uid[16], int64_t at, const char *kind,
              const char *what, const char *reason, const char *key_id, const char *user,
              const char *service, const char *rhost)
{
	memset(e, 0, sizeof *e);
	reason = reason ? reason : "";
	key_id = key_id ? key_id : "";
	if (at < 1 || at > AT_MAX || kind == NULL || what == NULL || !kind_ok(kind, what) ||
	    !span_ok(reason, strlen(reason), VK_EVENT_REASON_MAX, REASON_SET) ||
	    !span_ok(key_id, strlen(key_id), VK_UUID_STRLEN, KEY_SET))
		return -1;
	for (int i = 0; i < 16; i++) {
		e->uid[2 * i] = HEX_LOWER[uid[i] >> 4];
		e->uid[2 * i + 1] = HEX_LOWER[uid[i] & 15];
	}
	e->at = at;
	copy(e->kind, sizeof e->kind, kind, strlen(kind));
	copy(e->what, sizeof e->what, what, strlen(what));
	copy(e->reason, sizeof e->reason, reason, strlen(reason));
	copy(e->key_id, sizeof e->key_id, key_id, strlen(key_id));
	escape(e->user, VK_EVENT_USER_MAX, user);
	escape(e->service, VK_EVENT_SERVICE_MAX, service);
	escape(e->rhost, VK_EVENT_RHOST_MAX, rhost);
	return 0;
}

int
vk_event_set_session(struct vk_event *e, const char *role, const char *secret, const char *logind,
                     int64_t pid, int64_t start)
{
	role = role ? role : "";
	secret = secret ? secret : "";
	logind = logind ? logind : "";
	if (strcmp(e->kind, "session") != 0 || !session_ok(role, secret, logind, pid, start))
		return -1;
	copy(e->session.role, sizeof e->session.role, role, strlen(role));
	copy(e->session.secret, sizeof e->session.secret, secret, strlen(secret));
	copy(e->session.logind, sizeof e->session.logind, logind, strlen(logind));
	e->session.pid = pid;
	e->session.start = start;
	return 0;
}

int
vk_event_unescape(const char *in, char *out, size_t size)
{
	size_t n = strlen(in), o = 0;

	if (size == 0 || !escaped_ok(in, n, n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (o + 1 >= size)
			return -1;
		if (in[i] == '%') {
			out[o] = (char)(hex_value(in[i + 1]) << 4 | hex_value(in[i + 2]));
			if (out[o++] == '\0')
				return -1;
			i += 2;
		} else {
			out[o++] = in[i];
		}
	}
	out[o] = '\0';
	return 0;
}

size_t
vk_event_encode(const struct vk_event *e, char out[VK_EVENT_LINE_MAX + 1])
{
	int n = snprintf(out, VK_EVENT_LINE_MAX + 1,
	                 LINE_VERSION "\t%s\t%lld\t%s\t%s\t%s\t%s\t%s\t%s\t%s", e->uid,
	                 (long long)e->at, e->kind, e->what, e->reason, e->key_id, e->user,
	                 e->service, e->rhost);
	int m;

	if (n < 0 || n > VK_EVENT_LINE_MAX)
		return 0;
	if (strcmp(e->kind, "session") == 0)
		m = snprintf(out + n, VK_EVENT_LINE_MAX + 1 - (size_t)n,
		             "\t%s\t%s\t%s\t%lld\t%lld\n", e->session.role, e->session.secret,
		             e->session.logind, (long long)e->session.pid,
		             (long long)e->session.start);
	else
		m = snprintf(out + n, VK_EVENT_LINE_MAX + 1 - (size_t)n, "\n");
	return m < 0 || (size_t)m > VK_EVENT_LINE_MAX - (size_t)n ? 0 : (size_t)n + (size_t)m;
}

/* Decimal digits without a leading zero ("0" alone when min is 0), min to max. */
static int
parse_number(const char *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;

	if (n == 0 || n > 16 || (s[0] == '0' && n > 1))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A session line's last five fields (f, n) into e; 0, or -1. */
static int
decode_session(const char *const *f, const size_t *n, struct vk_event *e)
{
	char role[sizeof e->session.role], secret[VK_SECRET_TAG_LEN + 1],
	    logind[VK_EVENT_LOGIND_MAX + 1];
	int64_t pid, start;

	if (n[0] >= sizeof role || n[1] > VK_SECRET_TAG_LEN || n[2] > VK_EVENT_LOGIND_MAX ||
	    memchr(f[0], '\0', n[0]) != NULL || memchr(f[1], '\0', n[1]) != NULL ||
	    memchr(f[2], '\0', n[2]) != NULL || parse_number(f[3], n[3], 1, PID_MAX, &pid) != 0 ||
	    parse_number(f[4], n[4], 0, AT_MAX, &start) != 0)
		return -1;
	copy(role, sizeof role, f[0], n[0]);
	copy(secret, sizeof secret, f[1], n[1]);
	copy(logind, sizeof logind, f[2], n[2]);
	return vk_event_set_session(e, role, secret, logind, pid, start);
}

int
vk_event_decode(const char *line, size_t len, struct vk_event *e)
{
	const char *f[FIELDS_MAX];
	size_t n[FIELDS_MAX], k = 0, start = 0;

	memset(e, 0, sizeof *e);
	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len + 1 > VK_EVENT_LINE_MAX)
		return -1;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && line[i] != '\t')
			continue;
		if (k == FIELDS_MAX)
			return -1;
		f[k] = line + start;
		n[k++] = i - start;
		start = i + 1;
	}
	if ((k != FIELDS && k != FIELDS_MAX) || n[0] != 2 || memcmp(f[0], LINE_VERSION, 2) != 0 ||
	    !span_ok(f[1], n[1], VK_EVENT_UID_LEN, HEX_LOWER) || n[1] != VK_EVENT_UID_LEN ||
	    parse_number(f[2], n[2], 1, AT_MAX, &e->at) != 0 || n[3] >= sizeof e->kind ||
	    n[4] >= sizeof e->what || !span_ok(f[5], n[5], VK_EVENT_REASON_MAX, REASON_SET) ||
	    !span_ok(f[6], n[6], VK_UUID_STRLEN, KEY_SET) ||
	    !escaped_ok(f[7], n[7], VK_EVENT_USER_MAX) ||
	    !escaped_ok(f[8], n[8], VK_EVENT_SERVICE_MAX) ||
	    !escaped_ok(f[9], n[9], VK_EVENT_RHOST_MAX))
		goto bad;
	copy(e->uid, sizeof e->uid, f[1], n[1]);
	copy(e->kind, sizeof e->kind, f[3], n[3]);
	copy(e->what, sizeof e->what, f[4], n[4]);
	if (memchr(f[3], '\0', n[3]) != NULL || memchr(f[4], '\0', n[4]) != NULL ||
	    !kind_ok(e->kind, e->what) || (k == FIELDS_MAX) != (strcmp(e->kind, "session") == 0))
		goto bad;
	copy(e->reason, sizeof e->reason, f[5], n[5]);
	copy(e->key_id, sizeof e->key_id, f[6], n[6]);
	copy(e->user, sizeof e->user, f[7], n[7]);
	copy(e->service, sizeof e->service, f[8], n[8]);
	copy(e->rhost, sizeof e->rhost, f[9], n[9]);
	if (k == FIELDS_MAX && decode_session(f + FIELDS, n + FIELDS, e) != 0)
		goto bad;
	return 0;
bad:
	memset(e, 0, sizeof *e);
	return -1;
}
