/*
 * stamp - for `make bench-fleet`: runs a command and writes the time it
 * exited, so that a change is timed from keyadm's exit itself rather than
 * from a `date` run after it (on a busy host, tens of milliseconds later).
 *
 *   stamp [-s START_FILE] [-c CPU_FILE] FILE COMMAND [ARG...]
 *
 * Runs COMMAND with this process's standard input, output and error, and
 * once it has exited writes into FILE the CLOCK_REALTIME nanoseconds (as
 * `date +%s%N` gives them) taken right after waitpid() returned. With -s,
 * the time taken right before the fork goes into START_FILE, so that a
 * command started among many others is timed from its own start; with -c,
 * the CPU time COMMAND used (user and system, milliseconds) goes into
 * CPU_FILE. Exits
 * with COMMAND's status (128 + the signal that ended it), 127 when it
 * cannot be run, 2 on a usage error.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Writes the time now into path: 0, or -1 after saying why. */
static int
write_now(const char *path)
{
	struct timespec ts;
	FILE *f;

	clock_gettime(CLOCK_REALTIME, &ts);
	if ((f = fopen(path, "w")) == NULL ||
	    fprintf(f, "%lld\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec) < 0 ||
	    fclose(f) != 0) {
		fprintf(stderr, "stamp: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cpu_file = NULL;
	struct rusage ru;
	int status = 0;
	pid_t pid;
	FILE *f;

	while (argc >= 3 && (strcmp(argv[1], "-s") == 0 || strcmp(argv[1], "-c") == 0)) {
		if (argv[1][1] == 's' && write_now(argv[2]) != 0)
			return 127;
		if (argv[1][1] == 'c')
			cpu_file = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 3) {
		fputs("usage: stamp [-s START_FILE] [-c CPU_FILE] FILE COMMAND [ARG...]\n", stderr);
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
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			perror("stamp: wait4");
			return 127;
		}
	if (write_now(argv[1]) != 0)
		return 127;
	if (cpu_file != NULL &&
	    ((f = fopen(cpu_file, "w")) == NULL ||
	     fprintf(f, "%.1f\n",
	             (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3) < 0 ||
	     fclose(f) != 0)) {
		fprintf(stderr, "stamp: cannot write %s\n", cpu_file);
		return 127;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
