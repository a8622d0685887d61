/*
 * stamp - for `make bench-fleet`: runs a command and writes the time it
 * exited, so that a change is timed from keyadm's exit itself rather than
 * from a `date` run after it (on a busy host, tens of milliseconds later).
 *
 *   stamp FILE COMMAND [ARG...]
 *
 * Runs COMMAND with this process's standard input, output and error, and
 * once it has exited writes into FILE the CLOCK_REALTIME nanoseconds (as
 * `date +%s%N` gives them) taken right after waitpid() returned. Exits
 * with COMMAND's status (128 + the signal that ended it), 127 when it
 * cannot be run, 2 on a usage error.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct timespec ts;
	int status = 0;
	FILE *f;
	pid_t pid;

	if (argc < 3) {
		fputs("usage: stamp FILE COMMAND [ARG...]\n", stderr);
		return 2;
	}
	if ((pid = fork()) < 0) {
		perror("stamp: fork");
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "stamp: %s: ", argv[2]);
		perror(NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("stamp: waitpid");
			return 127;
		}
	clock_gettime(CLOCK_REALTIME, &ts);
	if ((f = fopen(argv[1], "w")) == NULL ||
	    fprintf(f, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec) < 0 ||
	    fclose(f) != 0) {
		fprintf(stderr, "stamp: cannot write %s\n", argv[1]);
		return 127;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
