/*
 * busid.h - the fleet's bus identities (SPEC §9): what the "nats" claims
 * of each JWT of the bus say, pure functions without I/O (jwt.h signs
 * them).
 *
 * The bus runs in NATS's operator mode with three accounts, as the two of
 * docs/examples/viamkey-accounts.conf and the system account:
 *  - the operator, whose key signs the accounts (and may sign them again:
 *    a machine's identity is revoked in its account's JWT);
 *  - VK: JetStream, the bucket and the authority's user, which may do
 *    anything there; it exports the live subjects vk.B.>, the direct gets
 *    of the bucket's entries, the join service vkjoin.B and the events
 *    subjects vkev.B.* (a service: the events stream's confirmations go
 *    back to MACHINES), and imports the machines' acknowledgements
 *    vkack.B.>;
 *  - MACHINES: no JetStream; one user per machine, with the permissions of
 *    its scopes only (vk_busid_machine()), and one per join token, which
 *    may only ask to join (vk_busid_joiner()); their JWTs are signed by the
 *    account's signing key;
 *  - SYS, the system account, through whose user the authority sends a
 *    new MACHINES JWT to every node ($SYS.REQ.CLAIMS.UPDATE).
 * B is the bucket; every name and key given must be plain (letters,
 * digits, '.', '-', '_'), or the functions return NULL.
 */
#ifndef VK_BUSID_H
#define VK_BUSID_H

#include <stddef.h>
#include <stdint.h>

#include "nkey.h"

/*
 * The keys the authority keeps online, in [sync] account_key: the
 * operator's signing key (it signs the accounts' JWTs again), VK's key (it
 * signs the authority's and a standby's users) and MACHINES' signing key
 * (it signs machines' and join tokens' users). Their seeds, in that order.
 */
enum { VK_BUS_OPERATOR_SIGNING, VK_BUS_VK, VK_BUS_MACHINES_SIGNING, VK_BUS_KEYS };

struct vk_bus_keys {
	unsigned char seed[VK_BUS_KEYS][32];
};

#define VK_BUS_KEYS_TEXT_MAX 256

/* The file's text: one seed nkey a line, in that order (SO..., SA..., SA...). 0, or -1. */
int vk_bus_keys_text(const struct vk_bus_keys *k, char out[VK_BUS_KEYS_TEXT_MAX]);

/* Reads that text (len bytes) into k: 0, or -1 for anything else. */
int vk_bus_keys_parse(const char *text, size_t len, struct vk_bus_keys *k);

/* One revocation of a MACHINES account's JWT: a user's key, and the time before which it is
 * revoked. */
struct vk_busid_revocation {
	const char *user;
	int64_t at;
};

/* Each returns the "nats" object's JSON text, malloc()ed, or NULL. */

/* The operator's: its signing key (a public operator nkey, or NULL) and the system account. */
char *vk_busid_operator(const char *signing_key, const char *system_account);

/* The system account's. */
char *vk_busid_system(void);

/* VK's: JetStream, and what it shares with MACHINES (machines, its public nkey). */
char *vk_busid_vk(const char *bucket, const char *machines);

/*
 * MACHINES': no JetStream, signed for by signing_key (a public account
 * nkey), what it shares with VK (vk, its public nkey), and the n
 * revocations of rev.
 */
char *vk_busid_machines(const char *bucket, const char *vk, const char *signing_key,
                        const struct vk_busid_revocation *rev, size_t n);

/* A user of the account itself: no limits (the authority's, the system's). */
char *vk_busid_user(void);

/*
 * A machine's user, issued by MACHINES' signing key for the account
 * machines_account: direct gets of its scopes' entries, of the heartbeat
 * and of the root versions; the live subjects of its scopes and of the
 * heartbeat; its acknowledgement; its inbox _INBOX.<machine>.>.
 */
char *vk_busid_machine(const char *bucket, const char *machine, const char *location,
                       const char *org, const char *machines_account);

/* A join token's user: the join request, and the inbox _INBOX.join-<token>.>. */
char *vk_busid_joiner(const char *bucket, const char *token, const char *machines_account);

#endif
