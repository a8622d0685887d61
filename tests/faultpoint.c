/*
 * faultpoint.so - an LD_PRELOAD shim that stops or kills a process at an
 * exact, numbered write or sync call (or a look, or a statement prepared),
 * for the crash and freeze tests.
 *
 * It interposes the calls through which SQLite changes files: write,
 * pwrite, pwrite64, ftruncate, ftruncate64, fsync, fdatasync and unlink, and
 * rename, through which key files are replaced; and fstat, but only when
 * VK_FAULT_CALLS names it (a look, not a write), and sqlite3_prepare_v2,
 * only when VK_FAULT_CALLS names it and VK_FAULT_SQL is set: the statements
 * that begin with VK_FAULT_SQL (a place in a program's loop, between two
 * transactions, where another writer may commit). Each call in
 * the process named by VK_FAULT_PROG (program_invocation_short_name; other
 * processes, such as `env` before it execs, are left alone) is one point,
 * numbered from 1:
 *
 *   VK_FAULT_REPEAT=1    with stop: stops again at every later point, writing
 *                        the marker anew each time (a test continues the
 *                        process point by point until the state it wants)
 *   VK_FAULT_CALLS=LIST  counts only the calls named in LIST (separated by
 *                        spaces or commas, e.g. "fdatasync,fsync"); all by default
 *   VK_FAULT_COUNT=FILE  at exit, writes the number of points reached to FILE
 *   VK_FAULT_AT=N        at point N, before the call is made:
 *   VK_FAULT_ACTION=kill   writes "pid P point N CALL" to VK_FAULT_MARK and
 *                          raises SIGKILL, so the call never happens
 *                  =stop   writes the same line and raises SIGSTOP; once
 *                          continued (SIGCONT), makes the call and goes on
 *
 * The marker names the process and the point, so that a test can check
 * that the process it meant to stop is the one that stopped, there.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static long points;
static long fault_at = -1;
static int armed;
static int action_stop;
static int repeat;
static const char *calls; /* VK_FAULT_CALLS, or NULL: every call counts */
static const char *sql;   /* VK_FAULT_SQL: the statements sqlite3_prepare_v2 counts */

__attribute__((constructor)) static void
setup(void)
{
	const char *prog = getenv("VK_FAULT_PROG"), *at = getenv("VK_FAULT_AT");
	const char *action = getenv("VK_FAULT_ACTION");

	armed = prog != NULL && strcmp(prog, program_invocation_short_name) == 0;
	if (at != NULL)
		fault_at = strtol(at, NULL, 10);
	action_stop = action != NULL && strcmp(action, "stop") == 0;
	calls = getenv("VK_FAULT_CALLS");
	sql = getenv("VK_FAULT_SQL");
	repeat = getenv("VK_FAULT_REPEAT") != NULL && strcmp(getenv("VK_FAULT_REPEAT"), "1") == 0;
}

/* Whether call is one VK_FAULT_CALLS names (as a whole word). */
static int
counted(const char *call)
{
	size_t n = strlen(call);

	if (calls == NULL)
		return 1;
	for (const char *p = calls; (p = strstr(p, call)) != NULL; p += n)
		if ((p == calls || p[-1] == ',' || p[-1] == ' ') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
	return 0;
}

/* Writes one line to the file named by variable `var`, with raw system calls only. */
static void
note(const char *var, const char *line)
{
	const char *path = getenv(var);
	int fd;

	if (path == NULL)
		return;
	fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	                  0600);
	if (fd < 0)
		return;
	(void)syscall(SYS_write, fd, line, strlen(line));
	(void)syscall(SYS_fsync, fd);
	(void)syscall(SYS_close, fd);
}

static void
point(const char *call)
{
	char line[128];
	int saved = errno;

	if (!armed || !counted(call))
		return;
	if (++points == fault_at || (repeat && action_stop && fault_at > 0 && points > fault_at)) {
		snprintf(line, sizeof line, "pid %ld point %ld %s\n", (long)getpid(), points, call);
		note("VK_FAULT_MARK", line);
		raise(action_stop ? SIGSTOP : SIGKILL);
	}
	errno = saved;
}

__attribute__((destructor)) static void
report(void)
{
	char line[32];

	if (!armed)
		return;
	snprintf(line, sizeof line, "%ld\n", points);
	note("VK_FAULT_COUNT", line);
}

#define REAL(name, type) ((type)dlsym(RTLD_NEXT, name))

ssize_t
write(int fd, const void *buf, size_t n)
{
	point("write");
	return REAL("write", ssize_t(*)(int, const void *, size_t))(fd, buf, n);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	point("pwrite");
	return REAL("pwrite", ssize_t(*)(int, const void *, size_t, off_t))(fd, buf, n, off);
}

ssize_t
pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	point("pwrite64");
	return REAL("pwrite64", ssize_t(*)(int, const void *, size_t, off64_t))(fd, buf, n, off);
}

int
ftruncate(int fd, off_t len)
{
	point("ftruncate");
	return REAL("ftruncate", int (*)(int, off_t))(fd, len);
}

int
ftruncate64(int fd, off64_t len)
{
	point("ftruncate64");
	return REAL("ftruncate64", int (*)(int, off64_t))(fd, len);
}

int
fsync(int fd)
{
	point("fsync");
	return REAL("fsync", int (*)(int))(fd);
}

int
fdatasync(int fd)
{
	point("fdatasync");
	return REAL("fdatasync", int (*)(int))(fd);
}

int
unlink(const char *path)
{
	point("unlink");
	return REAL("unlink", int (*)(const char *))(path);
}

int
rename(const char *from, const char *to)
{
	point("rename");
	return REAL("rename", int (*)(const char *, const char *))(from, to);
}

int
fstat(int fd, struct stat *st)
{
	if (calls != NULL)
		point("fstat");
	return REAL("fstat", int (*)(int, struct stat *))(fd, st);
}

typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef int (*prepare_fn)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
int sqlite3_prepare_v2(sqlite3 *db, const char *text, int n, sqlite3_stmt **st, const char **tail);

/*
 * SQLite's own sqlite3_prepare_v2: the next one in the global scope, or,
 * in a program that does not link SQLite (pam_login: its PAM module brings
 * it, loaded with RTLD_LOCAL, where RTLD_NEXT does not look), the loaded
 * library's. Looked up at each call: a module unloaded and loaded again
 * may bring it at another address.
 */
static prepare_fn
real_prepare(void)
{
	void *f = dlsym(RTLD_NEXT, "sqlite3_prepare_v2"), *lib;

	if (f == NULL && (lib = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_NOLOAD)) != NULL) {
		f = dlsym(lib, "sqlite3_prepare_v2");
		dlclose(lib);
	}
	if (f == NULL)
		abort();
	return (prepare_fn)f;
}

int
sqlite3_prepare_v2(sqlite3 *db, const char *text, int n, sqlite3_stmt **st, const char **tail)
{
	if (calls != NULL && sql != NULL && text != NULL && strncmp(text, sql, strlen(sql)) == 0)
		point("sqlite3_prepare_v2");
	return real_prepare()(db, text, n, st, tail);
}
