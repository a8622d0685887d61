/*
 * proc_test.c - /proc/PID/stat and children lists (proc.h): fixed lines, a
 * command name that pretends to be fields, and this process and its
 * children read for real.
 */
#include "autoconfig.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"
#include "proc.h"

/* fields 1-22 of a real line (a shell), and what follows */
#define TAIL                                                                                       \
	" S 812 4242 4242 34816 4242 4194560 1190 0 0 0 1 0 0 0 20 0 1 0 987654 8794112 1094"      \
	" 18446744073709551615 1 1 0 0 0 0 65536 4 65538 0 0 0 17 1 0 0 0 0 0\n"

static void
test_lines(void **state)
{
	static const char plain[] = "4242 (bash)" TAIL;
	static const char tricky[] = "4242 (a) R 1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 5 (x)" TAIL;
	struct vk_proc p;

	(void)state;
	assert_int_equal(vk_proc_parse(plain, sizeof plain - 1, &p), 0);
	assert_int_equal(p.pid, 4242);
	assert_int_equal(p.ppid, 812);
	assert_int_equal(p.pgid, 4242);
	assert_int_equal(p.sid, 4242);
	assert_int_equal(p.start, 987654);
	/* a name with ") R 1 ..." in it: the fields come after the last ')' */
	assert_int_equal(vk_proc_parse(tricky, sizeof tricky - 1, &p), 0);
	assert_int_equal(p.ppid, 812);
	assert_int_equal(p.start, 987654);
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "4242",
	    "4242 (bash)",
	    "4242 (bash) S",
	    "(bash)" TAIL,
	    "0 (bash)" TAIL,
	    "x42 (bash)" TAIL,
	    "4242 bash)" TAIL,
	    "4242 (bash) S 812 4242 4242 34816\n",
	    "4242 (bash) S -1 4242 4242 34816 4242 4194560 1190 0 0 0 1 0 0 0 20 0 1 0 9 8 1\n",
	    "4242 (bash) S 812 4242 4242 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n",
	};
	struct vk_proc p;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (vk_proc_parse(bad[i], strlen(bad[i]), &p) != -1)
			fail_msg("line %zu parsed", i);
		assert_int_equal(p.pid, 0);
	}
}

static void
test_self(void **state)
{
	struct vk_proc self, again;

	(void)state;
	assert_int_equal(vk_proc_read(0, &self), 0);
	assert_int_equal(self.pid, getpid());
	assert_int_equal(self.ppid, getppid());
	assert_int_equal(self.pgid, getpgrp());
	assert_int_equal(vk_proc_read(getpid(), &again), 0);
	assert_int_equal(again.start, self.start);
	assert_int_equal(vk_proc_read(1 << 23, &again), -1); /* above any PID */
}

static void
test_children_lists(void **state)
{
	static const char *const bad[] = {"x ", "12 x", "0 ", "12  13 ", " 12 ", "-4 ", "12 13a "};
	int64_t out[4];

	(void)state;
	assert_int_equal(vk_proc_parse_children("", 0, out, 4), 0);
	assert_int_equal(vk_proc_parse_children("812 4242 ", 9, out, 4), 2);
	assert_int_equal(out[0], 812);
	assert_int_equal(out[1], 4242);
	/* more than max: the first max */
	assert_int_equal(vk_proc_parse_children("1 2 3 4 5 6 ", 12, out, 4), 4);
	assert_int_equal(out[3], 4);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (vk_proc_parse_children(bad[i], strlen(bad[i]), out, 4) != -1)
			fail_msg("list %zu parsed", i);
}

static void
test_children(void **state)
{
	int64_t out[8];
	pid_t kids[2];
	int n, seen = 0;

	(void)state;
	if (vk_proc_children(getpid(), out, 8) < 0)
		fx_skip("no children lists in /proc (CONFIG_PROC_CHILDREN): syncd scans /proc");
	for (int i = 0; i < 2; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			pause();
			_exit(0);
		}
	}
	n = vk_proc_children(getpid(), out, 8);
	for (int i = 0; i < n; i++)
		seen += out[i] == kids[0] || out[i] == kids[1];
	for (int i = 0; i < 2; i++) {
		kill(kids[i], SIGKILL);
		waitpid(kids[i], NULL, 0);
	}
	assert_int_equal(seen, 2);
	assert_int_equal(vk_proc_children(1 << 23, out, 8), -1); /* above any PID */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines),    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_self),     cmocka_unit_test(test_children_lists),
	    cmocka_unit_test(test_children),
	};

	fx_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
