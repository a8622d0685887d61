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
session_state(struct sd_trail *t, const struct vk_event *e, const char *machine,
              char err[VK_ERRLEN])
{
	const struct vk_event_session *s = &e->session;
	const char *m = machine != NULL ? machine : "";
	vk_rc rc;

	if (strcmp(e->what, "open") == 0)
		rc = e->key_id[0] == '\0'
		         ? VK_OK
		         : vk_store_exec_kept(
		               t->db, &t->opened, "cannot record a session", err, NULL,
		               "INSERT INTO sessions (machine_id, pid, start, id, opened_at,"
		               " key_id, user, service, rhost, role, secret, logind)"
		               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
		               " ON CONFLICT (machine_id, pid, start) DO UPDATE SET shared = 1",
		               "tiitittttttt", m, s->pid, s->start, e->uid, e->at, e->key_id,
		               OPT_TEXT(e->user), OPT_TEXT(e->service), OPT_TEXT(e->rhost),
		               OPT_TEXT(s->role), OPT_TEXT(s->secret), OPT_TEXT(s->logind));
	else
		rc = vk_store_exec_kept(
		    t->db, &t->ended, "cannot record a session's end", err, NULL,
		    "UPDATE sessions SET state = ?4, ended_at = ?5, reason = ?6"
		    " WHERE machine_id = ?1 AND pid = ?2 AND start = ?3"
		    " AND state = 'open'",
		    "tiitit", m, s->pid, s->start, strcmp(e->what, "end") == 0 ? "ended" : "closed",
		    e->at, OPT_TEXT(e->reason));
	return rc == VK_OK ? 0 : -1;
}

int
sd_trail_add(struct sd_trail *t, const struct vk_event *e, const char *machine, char err[VK_ERRLEN])
{
	int session = strcmp(e->kind, "session") == 0, added = 0;
	const struct vk_event_session *s = &e->session;
	char action[24];

	snprintf(action, sizeof action, "%s.%s", e->kind, e->what);
	if (vk_store_exec_kept(
	        t->db, &t->event, "cannot record an event", err, &added,
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
	return session && session_state(t, e, machine, err) != 0 ? -1 : 1;
}

int
sd_trail_use(struct sd_trail *t, const struct vk_event *e, const char *machine, int own,
             char err[VK_ERRLEN])
{
	return vk_store_exec_kept(
	           t->db, &t->used, "cannot record a key's last use", err, NULL,
	           "UPDATE keys SET last_used_at = ?2, last_used_machine = ?3,"
	           " last_used_service = ?4, last_used_user = ?5, last_used_rhost = ?6"
	           " WHERE id = ?1 AND coalesce(last_used_at, 0) < ?2 AND (?7 OR EXISTS"
	           " (SELECT 1 FROM grants g, machines m JOIN locations l ON l.id ="
	           " m.location_id WHERE m.id = ?3 AND g.key_id = ?1 AND ((g.resource_type"
	           " = 'machine' AND g.resource_id = m.id) OR (g.resource_type = 'location'"
	           " AND g.resource_id = m.location_id) OR (g.resource_type ="
	           " 'organization' AND g.resource_id = l.org_id))))",
	           "titttti", e->key_id, e->at, machine, OPT_TEXT(e->service), OPT_TEXT(e->user),
	           OPT_TEXT(e->rhost), (int64_t)own) == VK_OK
	           ? 0
	           : -1;
}

void
sd_trail_done(struct sd_trail *t)
{
	sqlite3_finalize(t->event);
	sqlite3_finalize(t->opened);
	sqlite3_finalize(t->ended);
	sqlite3_finalize(t->used);
	t->event = t->opened = t->ended = t->used = NULL;
}
