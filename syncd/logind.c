/*
 * logind.c - TerminateSession over D-Bus (logind.h).
 *
 * Security rule for this file: the session ended is the one the
 * process's cgroup places it in (sd_pid_get_session), it must be the
 * session the caller names, and the process must be its leader (the one
 * that opened it, as pam_systemd registered it): a process of a session
 * nested in another (sudo inside an SSH login) never ends the outer one.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "logind.h"

#define LOGIN1    "org.freedesktop.login1"
#define MANAGER   "org.freedesktop.login1.Manager"
#define CALL_WAIT (2 * 1000000ULL) /* µs a call to logind may take */

/* Whether pid leads logind session id: 1, 0, or -1 (err says why). */
static int
leads(sd_bus *bus, const char *id, pid_t pid, char *err, size_t errlen)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path = NULL;
	uint32_t leader = 0;
	int r;

	r = sd_bus_call_method(bus, LOGIN1, "/org/freedesktop/login1", MANAGER, "GetSession",
	                       &error, &reply, "s", id);
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		r = sd_bus_get_property_trivial(bus, LOGIN1, path, LOGIN1 ".Session", "Leader",
		                                &error, 'u', &leader);
	if (r < 0)
		snprintf(err, errlen, "cannot read logind session %s: %s", id,
		         error.message != NULL ? error.message : strerror(-r));
	else if (leader != (uint32_t)pid)
		snprintf(err, errlen, "logind session %s is led by process %u, not %d", id,
		         (unsigned)leader, (int)pid);
	sd_bus_error_free(&error);
	sd_bus_message_unref(reply);
	return r < 0 ? -1 : leader == (uint32_t)pid;
}

int
vk_logind_terminate(pid_t pid, const char *expected, char *err, size_t errlen)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	char *in = NULL;
	int r, done = 0;

	err[0] = '\0';
	if (sd_pid_get_session(pid, &in) < 0)
		return -1;
	if (strcmp(in, expected) != 0) {
		snprintf(err, errlen, "process %d is in logind session %s, not %s", (int)pid, in,
		         expected);
		free(in);
		return -1;
	}
	if ((r = sd_bus_open_system(&bus)) < 0 ||
	    (r = sd_bus_set_method_call_timeout(bus, CALL_WAIT)) < 0)
		snprintf(err, errlen, "cannot reach the system bus: %s", strerror(-r));
	else if (leads(bus, in, pid, err, errlen) == 1) {
		r = sd_bus_call_method(bus, LOGIN1, "/org/freedesktop/login1", MANAGER,
		                       "TerminateSession", &error, NULL, "s", in);
		if (r < 0)
			snprintf(err, errlen, "logind did not end session %s: %s", in,
			         error.message != NULL ? error.message : strerror(-r));
		done = r >= 0;
	}
	sd_bus_error_free(&error);
	sd_bus_flush_close_unref(bus);
	free(in);
	return done ? 0 : -1;
}
