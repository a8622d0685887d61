/*
 * logind.h - logind's side of ending a session (sessions.c). Apart from
 * the rest of the daemon because libsystemd's names (sd_bus, sd_*) meet
 * the daemon's own.
 */
#ifndef SD_LOGIND_H
#define SD_LOGIND_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Asks logind to terminate the session process pid is in, when that is
 * the session `expected` (what the module recorded) and pid leads it: 0
 * done; -1 not (no such session, another one, another leader, or no
 * logind: err says why, "" for "not in a logind session"). Each call to
 * logind waits 2 s at most.
 */
int vk_logind_terminate(pid_t pid, const char *expected, char *err, size_t errlen);

#endif
