/*
 * trail.c - events and sessions into the store (trail.h).
 *
 * A session is named on its machine by the process that opened it and
 * that process's start time (event.h): its close and its end find it so,
 * wherever the events arrive (the machine's store, the authority's).
 * The user, service and remote host stay as the event wrote them
 * (%XX-escaped).
 */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "store.h"
#include "trail.h"

#define OPT_TEXT(s) ((s)[0] != '\0' ? (s) : NULL)

static int
session_state(sqlite3 *db, const struct vk_event *e, const char *machine, char err[VK_ERRLEN])
{
	const struct vk_event_session *s = &e->session;
	const char *m = machine != NULL ? machine : "";
	vk_rc rc;

	if (strcmp(e->what, "open") == 0)
		rc = e->key_id[0] == '\0'
		         ? VK_OK
		         : vk_store_exec(
		               db, "cannot record a session", err, NULL,
		               "INSERT INTO sessions (machine_id, pid, start, id, opened_at,"
		               " key_id, user, service, rhost, role, secret, logind)"
		               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
		               " ON CONFLICT (machine_id, pid, start) DO UPDATE SET shared = 1",
		               "tiitittttttt", m, s->pid, s->start, e->uid, e->at, e->key_id,
		               OPT_TEXT(e->user), OPT_TEXT(e->service), OPT_TEXT(e->rhost),
		               OPT_TEXT(s->role), OPT_TEXT(s->secret), OPT_TEXT(s->logind));
	else
		rc = vk_store_exec(db, "cannot record a session's end", err, NULL,
		                   "UPDATE sessions SET state = ?4, ended_at = ?5, reason = ?6"
		                   " WHERE machine_id = ?1 AND pid = ?2 AND start = ?3"
		                   " AND state = 'open'",
		                   "tiitit", m, s->pid, s->start,
		                   strcmp(e->what, "end") == 0 ? "ended" : "closed", e->at,
		                   OPT_TEXT(e->reason));
	return rc == VK_OK ? 0 : -1;
}

int
sd_trail_add(sqlite3 *db, const struct vk_event *e, const char *machine, char err[VK_ERRLEN])
{
	int session = strcmp(e->kind, "session") == 0, added = 0;
	const struct vk_event_session *s = &e->session;
	char action[24];

	snprintf(action, sizeof action, "%s.%s", e->kind, e->what);
	if (vk_store_exec(db, "cannot record an event", err, &added,
	                  "INSERT INTO events (at, kind, action, key_id, machine_id, user, service,"
	                  " rhost, decision, reason, uid, session_pid, session_start, session_role,"
	                  " session_secret, session_logind) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,"
	                  " ?8, ?9, ?10, ?11, CASE ?2 WHEN 'session' THEN ?12 END,"
	                  " CASE ?2 WHEN 'session' THEN ?13 END, ?14, ?15, ?16)"
	                  " ON CONFLICT DO NOTHING",
	                  "ittttttttttiittt", e->at, e->kind, action, OPT_TEXT(e->key_id), machine,
	                  OPT_TEXT(e->user), OPT_TEXT(e->service), OPT_TEXT(e->rhost),
	                  session ? NULL : e->what, OPT_TEXT(e->reason), e->uid, s->pid, s->start,
	                  OPT_TEXT(s->role), OPT_TEXT(s->secret), OPT_TEXT(s->logind)) != VK_OK)
		return -1;
	if (added == 0)
		return 0;
	return session && session_state(db, e, machine, err) != 0 ? -1 : 1;
}
