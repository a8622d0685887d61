/*
 * jwt.h - the JWTs and .creds files of NATS's decentralized authentication
 * (SPEC §9), pure functions without I/O.
 *
 * A JWT is base64url (unpadded) of the header {"typ":"JWT","alg":"ed25519-nkey"},
 * a dot, base64url of the claims, a dot, and base64url of the Ed25519
 * signature of the first two parts by the issuer's key. The claims are
 *   {"jti":J,"iat":T,"iss":ISSUER,"name":NAME,"sub":SUBJECT[,"exp":E],"nats":{...}}
 * where ISSUER is the public nkey of the signing key and J the unpadded
 * base32 of the SHA-256 of the claims written with "jti":"" (nats-server
 * does not check it; it names the JWT). What "nats" holds (an operator's,
 * an account's or a user's claims) is the caller's: busid.h builds those.
 */
#ifndef VK_JWT_H
#define VK_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "nkey.h"

/*
 * The JWT of subject (a public nkey of any type) named name, issued at iat,
 * expiring at exp (0: never), with nats the "nats" object's JSON text as
 * is, signed by sk (libsodium's 64-byte secret key), whose public nkey of
 * type issuer_type (VK_NKEY_OPERATOR or VK_NKEY_ACCOUNT) is the issuer.
 * name must hold no quote, backslash or control character; iat and exp
 * lie between 0 and 2^53; nats is one JSON object (RFC 8259, nested 32
 * deep at most, nothing before or after it). malloc()ed; NULL when out of
 * memory or an argument is not so.
 */
char *vk_jwt_encode(const unsigned char *sk, enum vk_nkey_type issuer_type, const char *subject,
                    const char *name, int64_t iat, int64_t exp, const char *nats);

/*
 * Checks jwt (len bytes): the header above, claims exactly as
 * vk_jwt_encode() writes them (their "jti" included) whatever "nats"
 * object they hold, and an "iss" that is a public nkey (operator,
 * account) whose key signed the first two parts. 0 with *claims the
 * claims' JSON text (malloc()ed), or -1 with *claims NULL.
 */
int vk_jwt_decode(const char *jwt, size_t len, char **claims);

/*
 * A .creds file, as nats.c reads it (natsOptions_SetUserCredentialsFromFiles):
 *   -----BEGIN NATS USER JWT-----\n JWT \n------END NATS USER JWT------\n\n
 *   ************************* IMPORTANT *************************\n ... \n\n
 *   -----BEGIN USER NKEY SEED-----\n SEED \n------END USER NKEY SEED------\n
 * malloc()ed (it holds a seed: the caller wipes it with sodium_memzero
 * before free), or NULL when out of memory or when vk_creds_parse() would
 * not read jwt and seed back.
 */
char *vk_creds_format(const char *jwt, const char seed[VK_NKEY_SEED_LEN + 1]);

/*
 * Reads a .creds text (len bytes): its JWT (malloc()ed, into *jwt) and its
 * user seed (into seed). 0, or -1 with *jwt NULL for any text that
 * vk_creds_format() does not write: the JWT must be three non-empty parts
 * of base64url characters joined by two dots, the seed a user's.
 */
int vk_creds_parse(const char *text, size_t len, char **jwt, char seed[VK_NKEY_SEED_LEN + 1]);

#endif
