/*
 * dial.h - a connection to the bus for one short exchange (dial.c).
 */
#ifndef SYNCD_DIAL_H
#define SYNCD_DIAL_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Connects to servers ("a, b"), trying each once (but dial.c rule 3), and
 * not those a server tells of, as the user of the .creds
 * file creds or, when creds is NULL, of jwt and seed held in memory, with
 * inbox as its inbox prefix. The connection, or NULL with why in err and,
 * unless refused is NULL, *refused set when a server refused the user (its
 * JWT expired, revoked, or of no account the bus knows).
 */
natsConnection *sd_dial(const char *servers, const char *creds, const char *jwt, const char *seed,
                        const char *inbox, int *refused, char *err, size_t errlen);

/* Whether s is nats.c's word for a server that refused the user. */
int sd_dial_refusal(natsStatus s);

/*
 * How many signatures of a server's nonce sd_dial() made since the process
 * began whose first byte is zero: those libnats 3.4.1 leaves out of its
 * CONNECT (dial.c rule 3).
 */
unsigned long sd_dial_zero_signatures(void);

/*
 * One request (len bytes of body) and its answer, waiting at most wait_ms:
 * 0 with the answer in *reply (malloc()ed, NUL-terminated, *reply_len
 * bytes), or -1 with why in err.
 */
int sd_dial_request(natsConnection *nc, const char *subject, const char *body, size_t len,
                    int64_t wait_ms, char **reply, size_t *reply_len, char *err, size_t errlen);

#endif
