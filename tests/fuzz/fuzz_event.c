/*
 * fuzz_event.c - libFuzzer target for an event's line (event.h).
 *
 * Input: any bytes, taken two ways.
 *  - As a line: what vk_event_decode() accepts, vk_event_encode() writes
 *    again byte for byte (with the LF, whether the input had it or not);
 *    a refusal leaves zeros.
 *  - As USER\0SERVICE\0RHOST\0REST: vk_event_make() takes any PAM items,
 *    and what it makes encodes to a line that decodes back to the same
 *    event, at most VK_EVENT_LINE_MAX bytes, with exactly nine tabs (a
 *    login's) or fourteen (a session's, its own fields at their longest).
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
as_line(const uint8_t *data, size_t size)
{
	char out[VK_EVENT_LINE_MAX + 1];
	struct vk_event e;
	size_t n;

	if (vk_event_decode((const char *)data, size, &e) != 0) {
		if (!fz_all_zero(&e, sizeof e))
			fz_die("a refused line left fields behind");
		return;
	}
	n = vk_event_encode(&e, out);
	if (size > 0 && data[size - 1] == '\n')
		size--;
	if (n != size + 1 || memcmp(out, data, size) != 0 || out[size] != '\n')
		fz_die("a line decoded is not written again as it was");
}

static void
as_fields(const uint8_t *data, size_t size)
{
	static const unsigned char uid[16] = {1, 2,  3,  4,  5,  6,  7,  8,
	                                      9, 10, 11, 12, 13, 14, 15, 16};
	char out[VK_EVENT_LINE_MAX + 1], *s = malloc(size + 1), *field[3];
	struct vk_event e, d;
	size_t n, tabs;

	if (s == NULL)
		fz_die("out of memory");
	memcpy(s, data, size);
	s[size] = '\0';
	field[0] = s;
	for (int i = 1; i < 3; i++) {
		char *nul = field[i - 1] + strlen(field[i - 1]);

		field[i] = nul < s + size ? nul + 1 : nul;
	}
	for (int session = 0; session < 2; session++) {
		if (vk_event_make(&e, uid, 1764950400, session ? "session" : "login",
		                  session ? "open" : "deny", "user_not_allowed",
		                  "0f8fad5b-d9cb-469f-a165-70867728950e", field[0], field[1],
		                  field[2]) != 0 ||
		    (session && vk_event_set_session(&e, "operator", "0123456789abcdef",
		                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", 4194304,
		                                     (int64_t)1 << 53) != 0))
			fz_die("valid fixed fields refused");
		n = vk_event_encode(&e, out);
		tabs = 0;
		for (size_t i = 0; i < n; i++)
			tabs += out[i] == '\t';
		if (n > VK_EVENT_LINE_MAX || tabs != (session ? 14u : 9u) ||
		    vk_event_decode(out, n, &d) != 0 || memcmp(&e, &d, sizeof e) != 0)
			fz_die("what vk_event_make() made does not come back");
	}
	free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_line(data, size);
	as_fields(data, size);
	return 0;
}
