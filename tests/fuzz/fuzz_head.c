/*
 * fuzz_head.c - libFuzzer target for scope heads and index pages (head.h).
 *
 * Input: any bytes, taken as a head's text and as a page's text.
 *  - The decoders must not read past the input, and what they accept must
 *    encode back to exactly the same bytes: a head or a page has one
 *    spelling, the one the authority signs.
 *  - An accepted head's count and digest are those of its pages; an
 *    accepted page's keys are of that page, in strictly increasing order,
 *    within its revision, and its digest is what vk_page_digest() gives.
 *  - A refused page leaves nothing allocated behind.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_head(const char *text, size_t len)
{
	struct vk_head h, sealed;
	char *again;

	if (vk_head_decode(text, len, &h) != 0)
		return;
	sealed = h;
	vk_head_seal(&sealed);
	FZ_CHECK(sealed.count == h.count);
	FZ_CHECK(memcmp(sealed.digest, h.digest, VK_DIGEST_BYTES) == 0);
	FZ_CHECK(vk_scope_valid(h.scope));
	again = vk_head_encode(&h);
	FZ_CHECK(again != NULL);
	FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
	free(again);
}

static void
check_page(const char *text, size_t len)
{
	struct vk_page_key *keys = NULL;
	char scope[VK_SCOPE_MAX], *again;
	unsigned char digest[VK_DIGEST_BYTES];
	int64_t rev;
	size_t n;
	int page;

	if (vk_page_decode(text, len, scope, &page, &rev, &keys, &n) != 0) {
		FZ_CHECK(keys == NULL);
		return;
	}
	FZ_CHECK(page >= 0 && page < VK_HEAD_PAGES && vk_scope_valid(scope));
	for (size_t i = 0; i < n; i++) {
		FZ_CHECK(vk_page_of(keys[i].id) == page);
		FZ_CHECK(keys[i].rev >= 1 && keys[i].rev <= rev);
		FZ_CHECK(i == 0 || strcmp(keys[i - 1].id, keys[i].id) < 0);
	}
	vk_page_digest(keys, n, digest);
	again = vk_page_encode(scope, page, rev, keys, n);
	FZ_CHECK(again != NULL);
	FZ_CHECK(strlen(again) == len && memcmp(again, text, len) == 0);
	free(again);
	free(keys);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size copy: a read past the input is ASan's to find */
	char *text = malloc(size ? size : 1);

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	check_head(text, size);
	check_page(text, size);
	free(text);
	return 0;
}
