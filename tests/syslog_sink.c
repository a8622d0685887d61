/*
 * syslog_sink - a stand-in for syslogd, for tests that read what the
 * module logs.
 *
 *   syslog_sink SOCKET OUTPUT
 *
 * Binds a Unix datagram socket at SOCKET (a test mounts a private /dev and
 * uses /dev/log), then appends every datagram it receives to OUTPUT as one
 * line, flushed at once, until it is killed. OUTPUT is created only after
 * the socket is bound, so a test waits for OUTPUT to appear before logging.
 */
#include "autoconfig.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un sa;
	char buf[8192];
	int s, out;

	if (argc != 3 || strlen(argv[1]) >= sizeof sa.sun_path) {
		fputs("usage: syslog_sink SOCKET OUTPUT\n", stderr);
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	(void)unlink(argv[1]);
	if ((s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(s, (const struct sockaddr *)&sa, sizeof sa) != 0) {
		perror("syslog_sink: socket");
		return 1;
	}
	if ((out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		perror("syslog_sink: output");
		return 1;
	}
	for (;;) {
		ssize_t n = recv(s, buf, sizeof buf - 1, 0);

		if (n < 0)
			continue;
		buf[n++] = '\n';
		if (write(out, buf, (size_t)n) != n) {
			perror("syslog_sink: write");
			return 1;
		}
	}
}
