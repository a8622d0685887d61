/*
 * busid.c - the "nats" claims of the fleet's JWTs (busid.h).
 *
 * Security rules for this file:
 *  1. A machine's user may read only its own scopes, and a join token's
 *     user may only ask to join: nothing here widens what
 *     docs/examples/viamkey-accounts.conf gives a machine by hand.
 *  2. Only plain names go into a claim, so that no name can add a subject
 *     or a field to it.
 */
#include "autoconfig.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busid.h"

static const enum vk_nkey_type key_types[VK_BUS_KEYS] = {VK_NKEY_OPERATOR, VK_NKEY_ACCOUNT,
                                                         VK_NKEY_ACCOUNT};

int
vk_bus_keys_text(const struct vk_bus_keys *k, char out[VK_BUS_KEYS_TEXT_MAX])
{
	size_t len = 0;

	for (int i = 0; i < VK_BUS_KEYS; i++) {
		vk_nkey_seed(key_types[i], k->seed[i], out + len);
		len += VK_NKEY_SEED_LEN;
		out[len++] = '\n';
	}
	out[len] = '\0';
	return 0;
}

int
vk_bus_keys_parse(const char *text, size_t len, struct vk_bus_keys *k)
{
	enum vk_nkey_type t;

	if (len != VK_BUS_KEYS * (VK_NKEY_SEED_LEN + 1))
		return -1;
	for (int i = 0; i < VK_BUS_KEYS; i++) {
		const char *line = text + i * (VK_NKEY_SEED_LEN + 1);

		if (line[VK_NKEY_SEED_LEN] != '\n' ||
		    vk_nkey_seed_parse(line, VK_NKEY_SEED_LEN, &t, k->seed[i]) != 0 ||
		    t != key_types[i]) {
			sodium_memzero(k, sizeof *k); /* the seeds read before it */
			return -1;
		}
	}
	return 0;
}

#define CLAIMS_MAX 4096 /* every claim but MACHINES' revocations */

/* No limit on what a user or account does, the JetStream limits aside. */
#define LIMITS                                                                                     \
	"\"subs\":-1,\"data\":-1,\"payload\":-1,\"imports\":-1,\"exports\":-1,"                    \
	"\"wildcards\":true,\"conn\":-1,\"leaf\":-1"

/* Letters, digits, '.', '-', '_': nothing JSON escapes, no NATS wildcard. */
static int
plain(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* printf into a new buffer of CLAIMS_MAX bytes; NULL when out of memory or it does not fit. */
static char *__attribute__((format(printf, 1, 2))) claims(const char *fmt, ...)
{
	char *out = malloc(CLAIMS_MAX);
	va_list ap;
	int n;

	if (out == NULL)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(out, CLAIMS_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= CLAIMS_MAX) {
		free(out);
		return NULL;
	}
	return out;
}

char *
vk_busid_operator(const char *signing_key, const char *system_account)
{
	if (!plain(system_account) || (signing_key != NULL && !plain(signing_key)))
		return NULL;
	return claims("{%s%s%s\"system_account\":\"%s\",\"type\":\"operator\",\"version\":2}",
	              signing_key != NULL ? "\"signing_keys\":[\"" : "",
	              signing_key != NULL ? signing_key : "", signing_key != NULL ? "\"]," : "",
	              system_account);
}

char *
vk_busid_system(void)
{
	return claims("{\"limits\":{" LIMITS "},\"type\":\"account\",\"version\":2}");
}

char *
vk_busid_vk(const char *bucket, const char *machines)
{
	if (!plain(bucket) || !plain(machines))
		return NULL;
	return claims("{\"limits\":{" LIMITS
	              ",\"mem_storage\":-1,\"disk_storage\":-1,\"streams\":-1,"
	              "\"consumer\":-1},"
	              "\"exports\":["
	              "{\"name\":\"live\",\"subject\":\"vk.%s.>\",\"type\":\"stream\"},"
	              "{\"name\":\"read\",\"subject\":\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.>\","
	              "\"type\":\"service\"},"
	              "{\"name\":\"join\",\"subject\":\"vkjoin.%s\",\"type\":\"service\"},"
	              "{\"name\":\"events\",\"subject\":\"vkev.%s.*\",\"type\":\"service\"}],"
	              "\"imports\":["
	              "{\"name\":\"acks\",\"subject\":\"vkack.%s.>\",\"account\":\"%s\",\"type\":"
	              "\"stream\"}],"
	              "\"type\":\"account\",\"version\":2}",
	              bucket, bucket, bucket, bucket, bucket, bucket, machines);
}

char *
vk_busid_machines(const char *bucket, const char *vk, const char *signing_key,
                  const struct vk_busid_revocation *rev, size_t n)
{
	char *head, *out;
	size_t size, len;

	if (!plain(bucket) || !plain(vk) || !plain(signing_key))
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!plain(rev[i].user) || strlen(rev[i].user) > 64 || rev[i].at < 0)
			return NULL;
	if ((head = claims("{\"limits\":{" LIMITS ",\"mem_storage\":0,\"disk_storage\":0},"
	                   "\"signing_keys\":[\"%s\"],"
	                   "\"exports\":["
	                   "{\"name\":\"acks\",\"subject\":\"vkack.%s.>\",\"type\":\"stream\"}],"
	                   "\"imports\":["
	                   "{\"name\":\"live\",\"subject\":\"vk.%s.>\",\"account\":\"%s\","
	                   "\"type\":\"stream\"},"
	                   "{\"name\":\"read\",\"subject\":\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.>\","
	                   "\"account\":\"%s\",\"type\":\"service\"},"
	                   "{\"name\":\"join\",\"subject\":\"vkjoin.%s\",\"account\":\"%s\","
	                   "\"type\":\"service\"},"
	                   "{\"name\":\"events\",\"subject\":\"vkev.%s.*\",\"account\":\"%s\","
	                   "\"type\":\"service\"}],"
	                   "\"revocations\":{",
	                   signing_key, bucket, bucket, vk, bucket, bucket, vk, bucket, vk, bucket,
	                   vk)) == NULL)
		return NULL;
	/* each revocation: "U...":T, at most 64 + 24 bytes */
	size = strlen(head) + n * 96 + 64;
	if ((out = malloc(size)) == NULL) {
		free(head);
		return NULL;
	}
	len = (size_t)snprintf(out, size, "%s", head);
	free(head);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, size - len, "%s\"%s\":%lld", i > 0 ? "," : "",
		                        rev[i].user, (long long)rev[i].at);
	snprintf(out + len, size - len, "},\"type\":\"account\",\"version\":2}");
	return out;
}

char *
vk_busid_user(void)
{
	return claims("{\"pub\":{},\"sub\":{},\"subs\":-1,\"data\":-1,\"payload\":-1,"
	              "\"type\":\"user\",\"version\":2}");
}

char *
vk_busid_machine(const char *bucket, const char *machine, const char *location, const char *org,
                 const char *machines_account)
{
	const char *b = bucket;

	if (!plain(bucket) || !plain(machine) || !plain(location) || !plain(org) ||
	    !plain(machines_account))
		return NULL;
	return claims("{\"pub\":{\"allow\":["
	              "\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.m.%s.>\","
	              "\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.l.%s.>\","
	              "\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.o.%s.>\","
	              "\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.hb\","
	              "\"$JS.API.DIRECT.GET.KV_%s.$KV.%s.root.>\","
	              "\"vkack.%s.%s\",\"vkev.%s.%s\"]},"
	              "\"sub\":{\"allow\":["
	              "\"vk.%s.m.%s.>\",\"vk.%s.l.%s.>\",\"vk.%s.o.%s.>\",\"vk.%s.hb\","
	              "\"_INBOX.%s.>\"]},"
	              "\"subs\":-1,\"data\":-1,\"payload\":-1,\"issuer_account\":\"%s\","
	              "\"type\":\"user\",\"version\":2}",
	              b, b, machine, b, b, location, b, b, org, b, b, b, b, b, machine, b, machine,
	              b, machine, b, location, b, org, b, machine, machines_account);
}

char *
vk_busid_joiner(const char *bucket, const char *token, const char *machines_account)
{
	if (!plain(bucket) || !plain(token) || !plain(machines_account))
		return NULL;
	return claims("{\"pub\":{\"allow\":[\"vkjoin.%s\"]},"
	              "\"sub\":{\"allow\":[\"_INBOX.join-%s.>\"]},"
	              "\"subs\":-1,\"data\":-1,\"payload\":-1,\"issuer_account\":\"%s\","
	              "\"type\":\"user\",\"version\":2}",
	              bucket, token, machines_account);
}
