/*
 * proc.c - /proc/PID/stat (proc.h).
 *
 * Security rule for this file: the command name is the process's own
 * choice; nothing in it counts as a field (the fields follow its last
 * ')'), and the parser never reads past len.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc.h"

#define NUMBER_MAX ((int64_t)1 << 53)
#define LIST_MAX   32768 /* bytes of one children list read; the rest is not */

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

int
vk_proc_parse_children(const char *buf, size_t len, int64_t *out, size_t max)
{
	const char *end = buf + len, *s = buf;
	size_t n = 0;

	while (s < end && n < max) {
		if (number(&s, end, &out[n]) != 0 || out[n] < 1)
			return -1;
		n++;
	}
	return (int)n;
}

/*
 * One thread's children list into buf: at most LIST_MAX bytes, cut after
 * its last space; how many bytes, or -1.
 */
static ssize_t
read_list(const char *path, char *buf)
{
	size_t len = 0;
	ssize_t n;
	int fd;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -1;
	while (len < LIST_MAX) {
		n = read(fd, buf + len, LIST_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	while (len > 0 && buf[len - 1] != ' ')
		len--;
	return (ssize_t)len;
}

int
vk_proc_children(int64_t pid, int64_t *out, size_t max)
{
	char path[96], *buf;
	size_t n = 0;
	int read_one = 0;
	struct dirent *d;
	DIR *dir;

	snprintf(path, sizeof path, "/proc/%lld/task", (long long)pid);
	if ((dir = opendir(path)) == NULL)
		return -1;
	if ((buf = malloc(LIST_MAX)) == NULL) {
		closedir(dir);
		return -1;
	}
	while ((d = readdir(dir)) != NULL && n < max) {
		ssize_t len;
		int got;

		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof path, "/proc/%lld/task/%.16s/children", (long long)pid,
		         d->d_name);
		if ((len = read_list(path, buf)) < 0 ||
		    (got = vk_proc_parse_children(buf, (size_t)len, out + n, max - n)) < 0)
			continue; /* unreadable, or not a list: as if missing */
		read_one = 1;
		n += (size_t)got;
	}
	closedir(dir);
	free(buf);
	return read_one ? (int)n : -1;
}
