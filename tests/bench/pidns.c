/*
 * pidns - for `make bench-fleet`: a command with a process table of its
 * own, as a machine of a real fleet has.
 *
 *   pidns PIDFILE COMMAND [ARG...]
 *
 * COMMAND runs as the first process of a new PID namespace, in a mount
 * namespace of its own where /proc is that namespace's: it sees its own
 * processes and those forked into its namespace (fleetjournal sessions),
 * not the other simulated machines'. PIDFILE gets COMMAND's PID as this
 * host's /proc names it (written whole, then renamed into place). pidns
 * stays its parent: SIGTERM, SIGINT and SIGHUP are passed on, COMMAND dies
 * with pidns (PR_SET_PDEATHSIG), and pidns exits as COMMAND did (128 + the
 * signal that killed it). Run as root.
 */
#include "autoconfig.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t child;

static void
pass_on(int sig)
{
	if (child > 0)
		kill(child, sig);
}

static void
run(char **argv)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		_exit(127);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
		perror("pidns: mount");
		_exit(127);
	}
	execvp(argv[0], argv);
	perror("pidns: exec");
	_exit(127);
}

static int
write_pid(const char *path, pid_t pid)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return -1;
	fprintf(f, "%d\n", (int)pid);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	int status;

	if (argc < 3) {
		fputs("usage: pidns PIDFILE COMMAND [ARG...]\n", stderr);
		return 2;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = pass_on;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
		perror("pidns: unshare");
		return 127;
	}
	if ((child = fork()) < 0) {
		perror("pidns: fork");
		return 127;
	}
	if (child == 0)
		run(argv + 2);
	if (write_pid(argv[1], child) != 0) {
		perror("pidns: PIDFILE");
		kill(child, SIGKILL);
	}
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return 127;
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}
