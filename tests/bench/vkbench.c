/*
 * vkbench - times PAM transactions and whole keyadm processes for
 * `make bench` (tests/bench/bench.sh runs it; see docs/BENCHMARKS.md).
 *
 *   vkbench login [--rounds R] [--procs P --seconds S] [--maps] SPEC...
 *   vkbench spawn --label L --iters N [--stdin FILE] [--ok-status N] -- ARGV...
 *   vkbench writer --seconds S --keyadm PATH --config FILE --machine-id ID --key-id ID
 *   vkbench dlopen --label L --iters N PATH
 *   vkbench sink PATH
 *   vkbench yescrypt PASSWORD
 *
 * A login SPEC is "label:confdir:service:user:kind:value:expect:iters", where
 * kind is "text" (answer every prompt with value), "file" (with the first
 * line of the file value) or "totp" (with the current TOTP code of the
 * base32 secret value, made per transaction with liboath, outside the
 * timed part), and expect is "ok" or "fail". Each transaction is
 * pam_start_confdir, pam_authenticate, pam_acct_mgmt (only after a
 * successful authentication, as sshd does) and pam_end, timed as a whole.
 * libpam dlopens every module of the stack in pam_start and dlcloses it in
 * pam_end, so each transaction pays for loading the module, as each sshd
 * connection does. This program links nothing a module links (no SQLite,
 * no libsodium), so nothing keeps a module's libraries loaded between
 * transactions; --maps proves it by listing what is still mapped after
 * pam_end.
 *
 * Sequential mode interleaves the specs: R rounds, each running every spec
 * for iters/R transactions, so that drift of the machine hits them alike.
 * --procs P runs the first spec in P processes at once for S seconds.
 *
 * spawn replaces "%n" in its arguments with the run's number (for names).
 *
 * Results are CSV lines on stdout:
 *   label,procs,n,p50_us,p99_us,mean_us,min_us,max_us,per_s,errors
 * where errors counts transactions whose result differed from `expect`;
 * the exit status is then 1.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <liboath/oath.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pam_answer.h"

extern char **environ;

#define MAX_SPECS   64
#define ANSWER_MAX  512
#define MAX_SAMPLES (1u << 22)

struct spec {
	char *label, *confdir, *service, *user, *kind, *value;
	int expect_ok;
	long iters;
	char secret[64]; /* decoded TOTP secret */
	size_t secret_len;
	char answer[ANSWER_MAX];
	double *samples;
	long n;
	long errors;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fputs("vkbench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Prints one CSV result line from n samples in microseconds; sorts them. */
static void
report(const char *label, int procs, double *v, long n, double seconds, long errors)
{
	double sum = 0;
	long i99;

	if (n == 0) {
		printf("%s,%d,0,,,,,,,%ld\n", label, procs, errors);
		return;
	}
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	for (long i = 0; i < n; i++)
		sum += v[i];
	i99 = (long)((double)n * 0.99 + 0.999999) - 1;
	if (i99 < 0)
		i99 = 0;
	printf("%s,%d,%ld,%.1f,%.1f,%.1f,%.1f,%.1f,%.1f,%ld\n", label, procs, n, v[n / 2], v[i99],
	       sum / (double)n, v[0], v[n - 1],
	       seconds > 0 ? (double)n / seconds : 1e6 / (sum / (double)n), errors);
	fflush(stdout);
}

/* ---- PAM transactions ------------------------------------------------------ */

static void
spec_parse(struct spec *s, char *text)
{
	char *f[8];
	int i = 0;

	for (char *p = text; i < 8; i++) {
		f[i] = p;
		if (i < 7) {
			if ((p = strchr(p, ':')) == NULL)
				die("bad login spec \"%s\"", text);
			*p++ = '\0';
		}
	}
	memset(s, 0, sizeof *s);
	s->label = f[0], s->confdir = f[1], s->service = f[2], s->user = f[3];
	s->kind = f[4], s->value = f[5];
	s->expect_ok = strcmp(f[6], "ok") == 0;
	s->iters = strtol(f[7], NULL, 10);
	if (s->iters <= 0)
		die("bad iteration count in \"%s\"", s->label);
	if (strcmp(s->kind, "text") == 0) {
		snprintf(s->answer, sizeof s->answer, "%s", s->value);
	} else if (strcmp(s->kind, "file") == 0) {
		FILE *fp = fopen(s->value, "r");

		if (fp == NULL || fgets(s->answer, sizeof s->answer, fp) == NULL)
			die("cannot read %s", s->value);
		fclose(fp);
		s->answer[strcspn(s->answer, "\r\n")] = '\0';
	} else if (strcmp(s->kind, "totp") == 0) {
		char *raw = NULL;

		if (oath_base32_decode(s->value, strlen(s->value), &raw, &s->secret_len) !=
		        OATH_OK ||
		    s->secret_len > sizeof s->secret)
			die("bad base32 TOTP secret for %s", s->label);
		memcpy(s->secret, raw, s->secret_len);
		free(raw);
	} else {
		die("unknown answer kind \"%s\"", s->kind);
	}
}

/* The answer for the next transaction (outside the timed part). */
static void
spec_answer(struct spec *s)
{
	if (strcmp(s->kind, "totp") == 0 && oath_totp_generate(s->secret, s->secret_len, time(NULL),
	                                                       30, 0, 6, s->answer) != OATH_OK)
		die("cannot make a TOTP code for %s", s->label);
}

/* One whole transaction; returns its time in microseconds, *ok whether it succeeded. */
static double
transaction(const struct spec *s, int *ok)
{
	struct pam_answer answer = {s->answer, NULL, 0};
	struct pam_conv conv = {pam_answer_converse, &answer};
	pam_handle_t *ph = NULL;
	uint64_t t0 = now_ns();
	int rc = pam_start_confdir(s->service, s->user, &conv, s->confdir, &ph);

	if (rc == PAM_SUCCESS) {
		rc = pam_authenticate(ph, 0);
		if (rc == PAM_SUCCESS)
			rc = pam_acct_mgmt(ph, 0);
		pam_end(ph, rc);
	}
	*ok = rc == PAM_SUCCESS;
	return (double)(now_ns() - t0) / 1000.0;
}

static void
run_one(struct spec *s)
{
	int ok;
	double us;

	spec_answer(s);
	us = transaction(s, &ok);
	if (ok != s->expect_ok) {
		if (s->errors++ < 3)
			fprintf(stderr, "vkbench: %s: transaction %s, expected %s\n", s->label,
			        ok ? "succeeded" : "failed", s->expect_ok ? "success" : "failure");
	}
	s->samples[s->n++] = us;
}

/* Mapped files that would make dlopen cheaper if they stayed loaded. */
static int
show_maps(const char *when)
{
	static const char *const watch[] = {"pam_viamkey", "pam_vkref",  "sqlite",
	                                    "sodium",      "pam_google", NULL};
	char line[4096];
	FILE *fp = fopen("/proc/self/maps", "r");
	int found = 0;

	if (fp == NULL)
		return 0;
	while (fgets(line, sizeof line, fp) != NULL)
		for (int i = 0; watch[i] != NULL; i++)
			if (strstr(line, watch[i]) != NULL) {
				fprintf(stderr, "vkbench: %s: still mapped: %s", when, line);
				found = 1;
				break;
			}
	fclose(fp);
	return found;
}

static int
login_sequential(struct spec *specs, int nspecs, int rounds, int maps)
{
	int errors = 0;

	for (int i = 0; i < nspecs; i++) {
		specs[i].samples = calloc((size_t)specs[i].iters + 1, sizeof(double));
		if (specs[i].samples == NULL)
			die("%s", "out of memory");
		/* warm-up: page cache, NSS modules, the first last-use write */
		for (int w = 0; w < 3; w++)
			run_one(&specs[i]);
		specs[i].n = 0;
		if (maps && show_maps(specs[i].label))
			errors++;
	}
	for (int r = 0; r < rounds; r++)
		for (int i = 0; i < nspecs; i++) {
			long end = specs[i].iters * (r + 1) / rounds;

			while (specs[i].n < end)
				run_one(&specs[i]);
		}
	for (int i = 0; i < nspecs; i++) {
		report(specs[i].label, 1, specs[i].samples, specs[i].n, 0, specs[i].errors);
		errors += specs[i].errors > 0;
	}
	return errors ? 1 : 0;
}

/* P processes run spec for `seconds`; samples come back through a shared mapping. */
static int
login_parallel(struct spec *s, int procs, double seconds)
{
	size_t per = MAX_SAMPLES / (size_t)procs;
	size_t bytes = sizeof(long) * (size_t)procs * 2 + sizeof(double) * per * (size_t)procs;
	long *counts = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	double *all, *merged;
	long total = 0, errors = 0, k = 0;
	uint64_t start, deadline;
	int status, failed = 0;

	if (counts == MAP_FAILED)
		die("%s", "mmap failed");
	all = (double *)(counts + 2 * procs);
	start = now_ns() + 50000000u; /* everyone starts together */
	deadline = start + (uint64_t)(seconds * 1e9);
	for (int p = 0; p < procs; p++) {
		pid_t pid = fork();

		if (pid < 0)
			die("%s", "fork failed");
		if (pid == 0) {
			double *mine = all + per * (size_t)p;

			s->samples = calloc(per, sizeof(double));
			if (s->samples == NULL)
				_exit(3);
			run_one(s); /* warm-up */
			s->n = 0;
			while (now_ns() < start)
				;
			while (now_ns() < deadline && (size_t)s->n < per)
				run_one(s);
			memcpy(mine, s->samples, sizeof(double) * (size_t)s->n);
			counts[2 * p] = s->n;
			counts[2 * p + 1] = s->errors;
			_exit(0);
		}
	}
	for (int p = 0; p < procs; p++) {
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failed = 1;
	}
	for (int p = 0; p < procs; p++)
		total += counts[2 * p], errors += counts[2 * p + 1];
	if ((merged = calloc((size_t)total + 1, sizeof(double))) == NULL)
		die("%s", "out of memory");
	for (int p = 0; p < procs; p++)
		for (long i = 0; i < counts[2 * p]; i++)
			merged[k++] = all[per * (size_t)p + (size_t)i];
	report(s->label, procs, merged, total, seconds, errors);
	if (errors)
		fprintf(stderr, "vkbench: %s: %ld transactions had the wrong result\n", s->label,
		        errors);
	return failed || errors ? 1 : 0;
}

static int
cmd_login(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"rounds", required_argument, NULL, 'r'},
	    {"procs", required_argument, NULL, 'p'},
	    {"seconds", required_argument, NULL, 's'},
	    {"maps", no_argument, NULL, 'm'},
	    {NULL, 0, NULL, 0},
	};
	static struct spec specs[MAX_SPECS];
	int c, rounds = 5, procs = 0, maps = 0, n = 0;
	double seconds = 5;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			rounds = atoi(optarg);
		else if (c == 'p')
			procs = atoi(optarg);
		else if (c == 's')
			seconds = atof(optarg);
		else if (c == 'm')
			maps = 1;
		else
			return 2;
	}
	for (; optind < argc && n < MAX_SPECS; optind++)
		spec_parse(&specs[n++], argv[optind]);
	if (n == 0 || rounds < 1)
		die("%s", "login needs at least one SPEC");
	if (procs > 0)
		return login_parallel(&specs[0], procs, seconds);
	return login_sequential(specs, n, rounds, maps);
}

/* ---- whole processes --------------------------------------------------------- */

/* Runs argv once, stdout and stderr to /dev/null, stdin from `in`; returns microseconds. */
static double
spawn_once(char *const *argv, const char *in, int *status)
{
	posix_spawn_file_actions_t fa;
	uint64_t t0;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, in != NULL ? in : "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	t0 = now_ns();
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
		die("cannot run %s", argv[0]);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	posix_spawn_file_actions_destroy(&fa);
	return (double)(now_ns() - t0) / 1000.0;
}

/* Replaces "%n" in each argument with the run's number. */
static char **
vary_args(char **argv, int argc, long i)
{
	char **out = calloc((size_t)argc + 1, sizeof *out);

	for (int a = 0; a < argc; a++) {
		char *p = strstr(argv[a], "%n");

		if (p == NULL) {
			out[a] = strdup(argv[a]);
		} else if (asprintf(&out[a], "%.*s%ld%s", (int)(p - argv[a]), argv[a], i, p + 2) <
		           0) {
			die("%s", "out of memory");
		}
	}
	return out;
}

static int
cmd_spawn(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"iters", required_argument, NULL, 'n'},
	    {"stdin", required_argument, NULL, 'i'},
	    {"ok-status", required_argument, NULL, 'k'},
	    {NULL, 0, NULL, 0},
	};
	const char *label = "spawn", *in = NULL;
	long iters = 100, bad = 0;
	int c, ok_status = 0;
	double *v;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 'l')
			label = optarg;
		else if (c == 'n')
			iters = atol(optarg);
		else if (c == 'i')
			in = optarg;
		else if (c == 'k')
			ok_status = atoi(optarg);
		else
			return 2;
	}
	if (optind >= argc || iters < 1)
		die("%s", "spawn needs -- ARGV");
	if ((v = calloc((size_t)iters, sizeof *v)) == NULL)
		die("%s", "out of memory");
	for (long i = 0; i < iters; i++) {
		char **args = vary_args(argv + optind, argc - optind, i);
		int status;

		v[i] = spawn_once(args, in, &status);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != ok_status) {
			if (bad++ < 3)
				fprintf(stderr, "vkbench: %s: %s exited with %d\n", label, args[0],
				        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		}
		for (int a = 0; args[a] != NULL; a++)
			free(args[a]);
		free(args);
	}
	report(label, 1, v, iters, 0, bad);
	return bad ? 1 : 0;
}

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * keyadm writing continuously: create a key, rotate another, again and
 * again, until SIGTERM or `seconds`. Reports the keyadm runs' times.
 */
static int
cmd_writer(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"seconds", required_argument, NULL, 's'},
	    {"keyadm", required_argument, NULL, 'k'},
	    {"config", required_argument, NULL, 'c'},
	    {"machine-id", required_argument, NULL, 'm'},
	    {"key-id", required_argument, NULL, 'i'},
	    {"label", required_argument, NULL, 'l'},
	    {NULL, 0, NULL, 0},
	};
	const char *keyadm = NULL, *config = NULL, *machine = NULL, *key = NULL, *label = "writer";
	double seconds = 10, *v;
	long n = 0, bad = 0, cap = 1 << 20;
	uint64_t deadline;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			seconds = atof(optarg);
			break;
		case 'k':
			keyadm = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 'm':
			machine = optarg;
			break;
		case 'i':
			key = optarg;
			break;
		case 'l':
			label = optarg;
			break;
		default:
			return 2;
		}
	}
	if (!keyadm || !config || !machine || !key)
		die("%s", "writer needs --keyadm, --config, --machine-id and --key-id");
	signal(SIGTERM, on_term);
	if ((v = calloc((size_t)cap, sizeof *v)) == NULL)
		die("%s", "out of memory");
	deadline = now_ns() + (uint64_t)(seconds * 1e9);
	while (!stop && now_ns() < deadline && n + 2 < cap) {
		char name[32];
		const char *create[] = {keyadm,   "--config",     config,  "machines", "api-key",
		                        "create", "--machine-id", machine, "--user",   "vkbench-w",
		                        "--name", name,           NULL};
		const char *rotate[] = {keyadm,   "--config", config, "keys",
		                        "rotate", "--key-id", key,    NULL};
		int status;

		snprintf(name, sizeof name, "writer-%ld", n);
		v[n++] = spawn_once((char *const *)create, NULL, &status);
		bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
		v[n++] = spawn_once((char *const *)rotate, NULL, &status);
		bad += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	}
	report(label, 1, v, n, 0, bad);
	if (bad)
		fprintf(stderr, "vkbench: writer: %ld keyadm runs failed\n", bad);
	return bad ? 1 : 0;
}

/* ---- loading a module alone ----------------------------------------------- */

static int
cmd_dlopen(int argc, char **argv)
{
	const char *label = "dlopen";
	long iters = 1000;
	int c;
	double *v;
	static const struct option opts[] = {
	    {"label", required_argument, NULL, 'l'},
	    {"iters", required_argument, NULL, 'n'},
	    {NULL, 0, NULL, 0},
	};

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'l')
			label = optarg;
		else if (c == 'n')
			iters = atol(optarg);
		else
			return 2;
	}
	if (optind + 1 != argc)
		die("%s", "dlopen needs one PATH");
	if ((v = calloc((size_t)iters, sizeof *v)) == NULL)
		die("%s", "out of memory");
	for (long i = -10; i < iters; i++) {
		uint64_t t0 = now_ns();
		void *h = dlopen(argv[optind], RTLD_NOW | RTLD_LOCAL);

		if (h == NULL)
			die("%s", dlerror());
		dlclose(h);
		if (i >= 0)
			v[i] = (double)(now_ns() - t0) / 1000.0;
	}
	report(label, 1, v, iters, 0, 0);
	return 0;
}

/*
 * A syslog daemon that discards: binds a datagram socket at PATH (e.g.
 * /dev/log in a private /dev) and reads until killed, so that modules log
 * as they would on a host with journald, not to /dev/console.
 */
static int
cmd_sink(int argc, char **argv)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[8192];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof sa.sun_path)
		die("%s", "sink needs PATH");
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || chmod(argv[1], 0666) != 0)
		die("cannot bind %s", argv[1]);
	for (;;)
		if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR)
			return 1;
}

/* A yescrypt hash with libcrypt's default cost, for the pam_unix test user. */
static int
cmd_yescrypt(int argc, char **argv)
{
	char *salt, *hash;

	if (argc != 2)
		die("%s", "yescrypt needs PASSWORD");
	if ((salt = crypt_gensalt_ra("$y$", 0, NULL, 0)) == NULL ||
	    (hash = crypt(argv[1], salt)) == NULL || hash[0] == '*')
		die("%s", "yescrypt is not available");
	puts(hash);
	free(salt);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		fputs("usage: vkbench login|spawn|writer|dlopen|sink|yescrypt ...\n", stderr);
		return 2;
	}
	oath_init();
	if (strcmp(argv[1], "login") == 0)
		return cmd_login(argc - 1, argv + 1);
	if (strcmp(argv[1], "spawn") == 0)
		return cmd_spawn(argc - 1, argv + 1);
	if (strcmp(argv[1], "writer") == 0)
		return cmd_writer(argc - 1, argv + 1);
	if (strcmp(argv[1], "dlopen") == 0)
		return cmd_dlopen(argc - 1, argv + 1);
	if (strcmp(argv[1], "sink") == 0)
		return cmd_sink(argc - 1, argv + 1);
	if (strcmp(argv[1], "yescrypt") == 0)
		return cmd_yescrypt(argc - 1, argv + 1);
	die("unknown command \"%s\"", argv[1]);
	return 2;
}
