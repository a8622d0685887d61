/*
 * logind.c - TerminateSession over D-Bus (logind.h).
 *
 * Security rule for this file: the session ended is the one the
 * process's cgroup places it in (sd_pid_get_session), never a name the
 * caller passes alone; the caller's name must match it.
 */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-login.h>

#include "logind.h"

int
vk_logind_terminate(pid_t pid, const char *expected, char *err, size_t errlen)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus *bus = NULL;
	char *in = NULL;
	int r;

	err[0] = '\0';
	if (sd_pid_get_session(pid, &in) < 0)
		return -1;
	if (strcmp(in, expected) != 0) {
		snprintf(err, errlen, "process %d is in logind session %s, not %s", (int)pid, in,
		         expected);
		free(in);
		return -1;
	}
	if ((r = sd_bus_open_system(&bus)) < 0)
		snprintf(err, errlen, "cannot reach the system bus: %s", strerror(-r));
	else if ((r = sd_bus_call_method(bus, "org.freedesktop.login1", "/org/freedesktop/login1",
	                                 "org.freedesktop.login1.Manager", "TerminateSession",
	                                 &error, NULL, "s", in)) < 0)
		snprintf(err, errlen, "logind did not end session %s: %s", in,
		         error.message != NULL ? error.message : strerror(-r));
	sd_bus_error_free(&error);
	sd_bus_flush_close_unref(bus);
	free(in);
	return r < 0 ? -1 : 0;
}
