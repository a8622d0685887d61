/*
 * proc.c - /proc/PID/stat (proc.h).
 *
 * Security rule for this file: the command name is the process's own
 * choice; nothing in it counts as a field (the fields follow its last
 * ')'), and the parser never reads past len.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define NUMBER_MAX ((int64_t)1 << 53)

/* A decimal field at *s (before end), then one space or the end; -1 when it is not one. */
static int
number(const char **s, const char *end, int64_t *out)
{
	const char *p = *s;
	int64_t v = 0;

	if (p >= end || *p < '0' || *p > '9')
		return -1;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > NUMBER_MAX)
			return -1;
	}
	if (p < end && *p != ' ' && *p != '\n')
		return -1;
	*s = p < end ? p + 1 : p;
	*out = v;
	return 0;
}

/* Past one field of any bytes but the space. */
static int
skip(const char **s, const char *end)
{
	const char *p = *s;

	if (p >= end || *p == ' ')
		return -1;
	while (p < end && *p != ' ')
		p++;
	*s = p < end ? p + 1 : p;
	return 0;
}

int
vk_proc_parse(const char *buf, size_t len, struct vk_proc *p)
{
	const char *end = buf + len, *s = buf, *close = NULL;

	memset(p, 0, sizeof *p);
	for (const char *c = buf; c < end; c++)
		if (*c == ')')
			close = c;
	/* 1 pid, 2 (comm), 3 state, 4 ppid, 5 pgrp, 6 session, 7..21, 22 starttime */
	if (number(&s, end, &p->pid) != 0 || s >= end || *s != '(' || close == NULL || close < s ||
	    close + 1 >= end || close[1] != ' ')
		goto bad;
	s = close + 2;
	if (skip(&s, end) != 0 || number(&s, end, &p->ppid) != 0 ||
	    number(&s, end, &p->pgid) != 0 || number(&s, end, &p->sid) != 0)
		goto bad;
	for (int field = 7; field < 22; field++)
		if (skip(&s, end) != 0)
			goto bad;
	if (number(&s, end, &p->start) != 0 || p->pid < 1)
		goto bad;
	return 0;
bad:
	memset(p, 0, sizeof *p);
	return -1;
}

int
vk_proc_read(int64_t pid, struct vk_proc *p)
{
	char path[48], buf[1024];
	ssize_t n;
	int fd;

	memset(p, 0, sizeof *p);
	if (pid == 0)
		snprintf(path, sizeof path, "/proc/self/stat");
	else
		snprintf(path, sizeof path, "/proc/%lld/stat", (long long)pid);
	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	do
		n = read(fd, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	close(fd);
	/* the kernel writes the line in one read; a longer one is not a stat line */
	if (n <= 0 || (size_t)n >= sizeof buf)
		return -1;
	return vk_proc_parse(buf, (size_t)n, p);
}
