/*
 * join.h - joining a machine to the fleet (SPEC §9): the join token, the
 * request a new host sends, and the authority's answer. Pure functions
 * without I/O.
 *
 * A join token is "vkj1." and the unpadded base64url of one exact JSON text:
 *   {"v":1,"id":ID,"secret":HEX64,"servers":S,"bucket":B,"trust":"root"|"authority",
 *    "key":TRUST,"signer":SIGNER,"jwt":JWT,"seed":SEED}
 * It carries all a new host needs: the bus's addresses and bucket, the key
 * the host is to trust from then on (the root's first version, or the
 * authority's key; base64), the key that signs the authority's answer
 * (base64), and a bus credential (a user JWT and its seed) that may do
 * nothing but send a join request and read the answer. It is a bearer
 * secret until used up: whoever holds it may join a host.
 *
 * A request is the exact JSON text
 *   {"v":1,"type":"join","token":ID,"secret":HEX64,"name":NAME,"user":UKEY}
 * with the new host's name (1 to VK_JOIN_NAME_MAX - 1 characters of a host
 * name: letters, digits, '.', '-', '_') and the public nkey of the bus user
 * it made. The answer is signed by the authority (vk_record_sign()):
 *   {"v":1,"type":"joined","machine":ID,"location":ID,"org":ID,"jwt":JWT}
 * or {"v":1,"type":"refused","why":WHY}, WHY one of the vk_join_refusal
 * names.
 */
#ifndef VK_JOIN_H
#define VK_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "nkey.h"
#include "vk.h"

#define VK_JOIN_SECRET_BYTES 32
#define VK_JOIN_SERVERS_MAX  1024
#define VK_JOIN_BUCKET_MAX   128
#define VK_JOIN_JWT_MAX      4096
#define VK_JOIN_NAME_MAX     64
#define VK_JOIN_KEY_BYTES    32
#define VK_JOIN_PREFIX       "vkj1."

struct vk_join_token {
	char id[VK_UUID_STRLEN + 1];
	unsigned char secret[VK_JOIN_SECRET_BYTES];
	char servers[VK_JOIN_SERVERS_MAX];
	char bucket[VK_JOIN_BUCKET_MAX];
	int rooted;                              /* key is the root's (else the authority's) */
	unsigned char key[VK_JOIN_KEY_BYTES];    /* what the host trusts from then on */
	unsigned char signer[VK_JOIN_KEY_BYTES]; /* what signs the answer */
	char jwt[VK_JOIN_JWT_MAX];
	char seed[VK_NKEY_SEED_LEN + 1];
};

/*
 * The token's text, malloc()ed (a secret: the caller wipes it before
 * free), or NULL when a string field holds a quote, a backslash or a
 * control character, or when out of memory.
 */
char *vk_join_token_encode(const struct vk_join_token *t);

/* Decodes a token's text (len bytes; surrounding blanks allowed) into t: 0, or -1. */
int vk_join_token_decode(const char *text, size_t len, struct vk_join_token *t);

/* Whether name is a host name a request may carry. */
int vk_join_name_valid(const char *name);

struct vk_join_request {
	char token[VK_UUID_STRLEN + 1];
	unsigned char secret[VK_JOIN_SECRET_BYTES];
	char name[VK_JOIN_NAME_MAX];
	char user[VK_NKEY_PUBLIC_LEN + 1];
};

/* The request's JSON text into out (size bytes); 0, or -1 when it does not fit or a field is bad.
 */
int vk_join_request_encode(const struct vk_join_request *r, char *out, size_t size);

/* Decodes a request's exact text (len bytes) into r: 0, or -1. */
int vk_join_request_decode(const char *text, size_t len, struct vk_join_request *r);

enum vk_join_refusal {
	VK_JOIN_OK,
	VK_JOIN_WRONG,   /* no such token, or not its secret */
	VK_JOIN_EXPIRED, /* past its time */
	VK_JOIN_USED,    /* every use taken */
	VK_JOIN_REVOKED, /* revoked on the authority */
	VK_JOIN_NAME,    /* the name is taken in the location, or not a host name */
	VK_JOIN_BUSY,    /* the authority could not do it now: try again */
};

/* The refusal's name in an answer ("wrong", "expired", ...), and back: VK_JOIN_OK for none. */
const char *vk_join_refusal_name(enum vk_join_refusal why);
enum vk_join_refusal vk_join_refusal_parse(const char *name);

struct vk_join_answer {
	enum vk_join_refusal why; /* VK_JOIN_OK: joined, and the fields below say how */
	char machine[VK_UUID_STRLEN + 1];
	char location[VK_UUID_STRLEN + 1];
	char org[VK_UUID_STRLEN + 1];
	char jwt[VK_JOIN_JWT_MAX];
};

/* The answer's JSON text (to be signed) into out; 0, or -1 when it does not fit. */
int vk_join_answer_encode(const struct vk_join_answer *a, char *out, size_t size);

/* Decodes an answer's exact JSON text (len bytes, verified by the caller) into a: 0, or -1. */
int vk_join_answer_decode(const char *text, size_t len, struct vk_join_answer *a);

#endif
