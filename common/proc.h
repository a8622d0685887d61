/*
 * proc.h - a process as /proc/PID/stat describes it: what names a session
 * on its machine (the PID and the process's start time, which a reused PID
 * does not share) and how the daemon ends it.
 */
#ifndef VK_PROC_H
#define VK_PROC_H

#include <stddef.h>
#include <stdint.h>

struct vk_proc {
	int64_t pid, ppid, pgid, sid;
	int64_t start; /* clock ticks after boot (field 22) */
};

/*
 * Reads one /proc/PID/stat line (len bytes) into p: 0, or -1 when it is
 * not one. The command name (field 2) is whatever the process chose, ')'
 * and spaces included: the fields are counted from its last ')'. Pure.
 */
int vk_proc_parse(const char *buf, size_t len, struct vk_proc *p);

/* /proc/PID/stat of pid (0: this process) into p: 0, or -1 (gone, or unreadable). */
int vk_proc_read(int64_t pid, struct vk_proc *p);

/*
 * Reads one /proc/PID/task/TID/children list (len bytes: PIDs, each
 * followed by a space) into out, at most max of them: how many, or -1
 * when it is not one. Pure.
 */
int vk_proc_parse_children(const char *buf, size_t len, int64_t *out, size_t max);

/*
 * The children of every thread of pid into out (at most max): how many,
 * or -1 when none of its threads' children lists can be read (pid gone,
 * or a kernel built without CONFIG_PROC_CHILDREN).
 */
int vk_proc_children(int64_t pid, int64_t *out, size_t max);

#endif
