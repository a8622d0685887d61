/*
 * journal.c - appending to the events journal (journal.h).
 *
 * Security rules for this file:
 *  1. The journal is opened without following a link and checked on its
 *     descriptor (regular, at most two links, owned by root or the euid,
 *     no access for group or others) before a byte is written to it, and
 *     written only while its path still names it.
 *  2. An append never creates the journal and never waits but on the
 *     daemon's exclusive lock, which it holds only to read. O_NONBLOCK:
 *     whatever is at the path, opening it does not wait.
 *  3. Each record is one write(2) of an LF and the line: a write cut short
 *     (by a file-size limit, say) leaves a fragment that the next record's
 *     LF ends, so it spoils no line but its own.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event.h"
#include "journal.h"

#define TRIES 4 /* opens when the daemon keeps taking the journal away meanwhile */

int
vk_journal_path(const char *store_path, int work, char *out, size_t size)
{
	int n = snprintf(out, size, "%s%s", store_path,
	                 work ? VK_JOURNAL_WORK_SUFFIX : VK_JOURNAL_SUFFIX);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* Whether fd is a journal rule 1 allows; why in err if not. */
static int
safe(int fd, const char *path, struct stat *st, char err[VK_ERRLEN])
{
	if (fstat(fd, st) != 0) {
		vk_seterr(err, "cannot examine %s: %s", path, strerror(errno));
		return 0;
	}
	/*
	 * two links while the daemon takes it (link(2), then rename(2)); none
	 * once it took it and removed it after this open: current() then
	 * sends the append to the new journal
	 */
	if (!S_ISREG(st->st_mode) || st->st_nlink > 2 ||
	    (st->st_uid != 0 && st->st_uid != geteuid()) || (st->st_mode & 077) != 0) {
		vk_seterr(err,
		          "%s is not a regular file of root with at most two links and mode 0600:"
		          " not written",
		          path);
		return 0;
	}
	if (st->st_size >= VK_JOURNAL_MAX) {
		vk_seterr(err, "%s is full (is viamkey-syncd running?): event not recorded", path);
		return 0;
	}
	return 1;
}

/* Whether path still names the file st describes. */
static int
current(const char *path, const struct stat *st)
{
	struct stat now;

	return lstat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

int
vk_journal_append(const char *store_path, const char *line, size_t len, char err[VK_ERRLEN])
{
	char path[4096], record[VK_EVENT_LINE_MAX + 2];
	struct stat st;

	if (vk_journal_path(store_path, 0, path, sizeof path) != 0) {
		vk_seterr(err, "the journal's path is too long");
		return -1;
	}
	if (len > VK_EVENT_LINE_MAX) {
		vk_seterr(err, "an event of %zu bytes is too long for the journal", len);
		return -1;
	}
	/* rule 3: an LF first, ending whatever fragment an append cut short left */
	record[0] = '\n';
	memcpy(record + 1, line, len);
	for (int i = 0; i < TRIES; i++) {
		int fd = open(path,
		              O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		ssize_t w;

		if (fd < 0 && errno == ENOENT)
			return 1;
		if (fd < 0) {
			vk_seterr(err, "cannot open %s: %s", path, strerror(errno));
			return -1;
		}
		if (!safe(fd, path, &st, err)) {
			close(fd);
			return -1;
		}
		if (flock(fd, LOCK_SH) != 0) {
			vk_seterr(err, "cannot lock %s: %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (!current(path, &st)) { /* taken by the daemon meanwhile: the new one */
			close(fd);
			continue;
		}
		w = write(fd, record, len + 1);
		close(fd); /* and with it the lock */
		if (w == (ssize_t)len + 1)
			return 0;
		vk_seterr(err, "cannot write %s: %s", path,
		          w < 0 ? strerror(errno) : "short write");
		return -1;
	}
	vk_seterr(err, "%s kept changing: event not recorded", path);
	return -1;
}
