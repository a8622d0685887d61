/*
 * head.c - scope heads and index pages: their text and their digests.
 *
 * Security rules for this file:
 *  1. The decoders accept only the exact text the encoders write: no
 *     spaces, no other field order, no escapes, canonical numbers, and
 *     nothing after the closing brace. One head or page has one text, so
 *     what a machine checks is what the authority signed.
 *  2. A decoded head's count and digest are those of its pages, and a
 *     decoded page's keys are valid IDs of that page in strictly increasing
 *     order with revisions from 1 to the page's: a head or page that does
 *     not add up is refused, not repaired.
 *  3. Nothing is read beyond `len` bytes, whatever the text holds.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canon.h"
#include "head.h"
#include "token.h"

#define HEX "0123456789abcdef"

int
vk_scope_valid(const char *scope)
{
	return (scope[0] == 'o' || scope[0] == 'l' || scope[0] == 'm') && scope[1] == '.' &&
	       vk_uuid_valid(scope + 2);
}

int
vk_page_of(const char *id)
{
	if (!vk_uuid_valid(id))
		return -1;
	return id[0] <= '9' ? id[0] - '0' : id[0] - 'a' + 10;
}

void
vk_digest_start(struct vk_digest *d)
{
	crypto_generichash_init(&d->st, NULL, 0, VK_DIGEST_BYTES);
}

void
vk_digest_key(struct vk_digest *d, const char *id, int64_t rev, int tomb)
{
	char line[VK_UUID_STRLEN + 32];
	int n = snprintf(line, sizeof line, "%s %lld %c\n", id, (long long)rev, tomb ? 'x' : 'k');

	crypto_generichash_update(&d->st, (const unsigned char *)line, (unsigned long long)n);
}

void
vk_digest_end(struct vk_digest *d, unsigned char out[VK_DIGEST_BYTES])
{
	crypto_generichash_final(&d->st, out, VK_DIGEST_BYTES);
}

void
vk_page_digest(const struct vk_page_key *keys, size_t n, unsigned char out[VK_DIGEST_BYTES])
{
	struct vk_digest d;

	vk_digest_start(&d);
	for (size_t i = 0; i < n; i++)
		vk_digest_key(&d, keys[i].id, keys[i].rev, keys[i].tomb);
	vk_digest_end(&d, out);
}

static void
hex(const unsigned char *bin, char out[2 * VK_DIGEST_BYTES + 1])
{
	for (size_t i = 0; i < VK_DIGEST_BYTES; i++) {
		out[2 * i] = HEX[bin[i] >> 4];
		out[2 * i + 1] = HEX[bin[i] & 15];
	}
	out[2 * VK_DIGEST_BYTES] = '\0';
}

void
vk_head_seal(struct vk_head *h)
{
	crypto_generichash_state st;
	char line[64], digest[2 * VK_DIGEST_BYTES + 1];
	int n;

	crypto_generichash_init(&st, NULL, 0, VK_DIGEST_BYTES);
	h->count = 0;
	for (int p = 0; p < VK_HEAD_PAGES; p++) {
		hex(h->pages[p].digest, digest);
		n = snprintf(line, sizeof line, "%x %lld %s\n", p, (long long)h->pages[p].count,
		             digest);
		crypto_generichash_update(&st, (const unsigned char *)line, (unsigned long long)n);
		h->count += h->pages[p].count;
	}
	n = snprintf(line, sizeof line, "t %lld\n", (long long)h->tree);
	crypto_generichash_update(&st, (const unsigned char *)line, (unsigned long long)n);
	crypto_generichash_final(&st, h->digest, VK_DIGEST_BYTES);
}

char *
vk_head_encode(const struct vk_head *h)
{
	size_t size = 256 + VK_HEAD_PAGES * (24 + 2 * VK_DIGEST_BYTES);
	char *text = malloc(size), digest[2 * VK_DIGEST_BYTES + 1];
	size_t o;

	if (text == NULL)
		return NULL;
	hex(h->digest, digest);
	o = (size_t)snprintf(
	    text, size,
	    "{\"v\":2,\"type\":\"head\",\"scope\":\"%s\",\"epoch\":%lld,\"rev\":%lld,"
	    "\"at\":%lld,\"tree\":%lld,\"count\":%lld,\"digest\":\"%s\",\"pages\":[",
	    h->scope, (long long)h->epoch, (long long)h->rev, (long long)h->at, (long long)h->tree,
	    (long long)h->count, digest);
	for (int p = 0; p < VK_HEAD_PAGES; p++) {
		hex(h->pages[p].digest, digest);
		o += (size_t)snprintf(text + o, size - o, "%s[%lld,\"%s\"]", p ? "," : "",
		                      (long long)h->pages[p].count, digest);
	}
	snprintf(text + o, size - o, "]}");
	return text;
}

int
vk_head_decode(const char *json, size_t len, struct vk_head *h)
{
	struct vk_cursor c;
	unsigned char count_digest[VK_DIGEST_BYTES];
	int64_t count;

	memset(h, 0, sizeof *h);
	vk_canon_start(&c, json, len);
	vk_canon_lit(&c, "{\"v\":2,\"type\":\"head\",\"scope\":");
	vk_canon_str(&c, h->scope, sizeof h->scope);
	vk_canon_lit(&c, ",\"epoch\":");
	h->epoch = vk_canon_num(&c);
	vk_canon_lit(&c, ",\"rev\":");
	h->rev = vk_canon_num(&c);
	vk_canon_lit(&c, ",\"at\":");
	h->at = vk_canon_num(&c);
	vk_canon_lit(&c, ",\"tree\":");
	h->tree = vk_canon_num(&c);
	vk_canon_lit(&c, ",\"count\":");
	count = vk_canon_num(&c);
	vk_canon_lit(&c, ",\"digest\":");
	vk_canon_hex(&c, count_digest, VK_DIGEST_BYTES);
	vk_canon_lit(&c, ",\"pages\":[");
	for (int p = 0; p < VK_HEAD_PAGES && !c.bad; p++) {
		vk_canon_lit(&c, p ? ",[" : "[");
		h->pages[p].count = vk_canon_num(&c);
		vk_canon_lit(&c, ",");
		vk_canon_hex(&c, h->pages[p].digest, VK_DIGEST_BYTES);
		vk_canon_lit(&c, "]");
	}
	vk_canon_lit(&c, "]}");
	if (!vk_canon_done(&c) || !vk_scope_valid(h->scope) || h->rev < h->tree)
		return -1;
	vk_head_seal(h);
	/* rule 2: what it says of itself is what its pages add up to */
	if (h->count != count || sodium_memcmp(h->digest, count_digest, VK_DIGEST_BYTES) != 0)
		return -1;
	return 0;
}

char *
vk_page_encode(const char *scope, int page, int64_t rev, const struct vk_page_key *keys, size_t n)
{
	size_t size = 128 + VK_SCOPE_MAX + n * (VK_UUID_STRLEN + 32), o;
	char *text = malloc(size);

	if (text == NULL)
		return NULL;
	o = (size_t)snprintf(
	    text, size,
	    "{\"v\":2,\"type\":\"page\",\"scope\":\"%s\",\"page\":\"%x\",\"rev\":%lld,"
	    "\"keys\":[",
	    scope, page, (long long)rev);
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(text + o, size - o, "%s[\"%s\",%lld,%d]", i ? "," : "",
		                      keys[i].id, (long long)keys[i].rev, keys[i].tomb ? 1 : 0);
	snprintf(text + o, size - o, "]}");
	return text;
}

int
vk_page_decode(const char *json, size_t len, char scope[VK_SCOPE_MAX], int *page, int64_t *rev,
               struct vk_page_key **keys, size_t *n)
{
	struct vk_cursor c;
	struct vk_page_key *list = NULL;
	size_t count = 0, cap = 0;
	char letter[3];

	*keys = NULL;
	*n = 0;
	vk_canon_start(&c, json, len);
	vk_canon_lit(&c, "{\"v\":2,\"type\":\"page\",\"scope\":");
	vk_canon_str(&c, scope, VK_SCOPE_MAX);
	vk_canon_lit(&c, ",\"page\":");
	vk_canon_str(&c, letter, sizeof letter);
	vk_canon_lit(&c, ",\"rev\":");
	*rev = vk_canon_num(&c);
	vk_canon_lit(&c, ",\"keys\":[");
	*page = strlen(letter) == 1 && strchr(HEX, letter[0]) != NULL
	            ? (int)(strchr(HEX, letter[0]) - HEX)
	            : -1;
	if (c.bad || *page < 0 || !vk_scope_valid(scope))
		return -1;
	while (!c.bad && c.p < c.end && *c.p != ']') {
		struct vk_page_key k;

		vk_canon_lit(&c, count ? ",[" : "[");
		vk_canon_str(&c, k.id, sizeof k.id);
		vk_canon_lit(&c, ",");
		k.rev = vk_canon_num(&c);
		vk_canon_lit(&c, ",");
		if (c.p < c.end && (*c.p == '0' || *c.p == '1'))
			k.tomb = *c.p++ - '0';
		else
			c.bad = 1;
		vk_canon_lit(&c, "]");
		/* rule 2: of this page, in order, within the page's revision */
		if (c.bad || vk_page_of(k.id) != *page || k.rev < 1 || k.rev > *rev ||
		    (count > 0 && strcmp(list[count - 1].id, k.id) >= 0)) {
			c.bad = 1;
			break;
		}
		if (count == cap) {
			struct vk_page_key *grown;

			cap = cap ? cap * 2 : 64;
			if ((grown = realloc(list, cap * sizeof *list)) == NULL) {
				c.bad = 1;
				break;
			}
			list = grown;
		}
		list[count++] = k;
	}
	vk_canon_lit(&c, "]}");
	if (c.bad || c.p != c.end) {
		free(list);
		return -1;
	}
	*keys = list;
	*n = count;
	return 0;
}
