/*
 * watch.c - the events journal watched (watch.h).
 *
 * The module appends each decision and session to the journal beside the
 * store (journal.h); the daemon takes it into the store and on to the
 * authority (events.c). A thread of its own here waits on the journal's
 * directory with inotify: the directory, because the daemon replaces the
 * journal there by rename(2) each time it takes it. A write to a file of
 * the journal's name (or events lost by inotify's queue) marks the watch
 * and wakes the main loop's wait, so that the journal is looked at within
 * milliseconds of an append while an idle daemon sleeps for a second
 * between looks (events.c). Without inotify (its limits reached, say)
 * nothing is watched and the daemon looks as often as it did before.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"
#include "watch.h"

void
sd_watch_init(struct sd_watch *w)
{
	memset(w, 0, sizeof *w);
	w->fd = w->stop[0] = w->stop[1] = -1;
}

/* Whether the events in buf[0..n) name the journal, or say that some were lost. */
static int
names_journal(const struct sd_watch *w, const char *buf, size_t n)
{
	size_t at = 0;

	while (at + sizeof(struct inotify_event) <= n) {
		const struct inotify_event *e = (const struct inotify_event *)(buf + at);

		if ((e->mask & IN_Q_OVERFLOW) != 0 || (e->len > 0 && strcmp(e->name, w->name) == 0))
			return 1;
		at += sizeof *e + e->len;
	}
	return 0;
}

static void *
watch_loop(void *arg)
{
	struct sd_watch *w = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (;;) {
		struct pollfd p[2] = {{w->fd, POLLIN, 0}, {w->stop[0], POLLIN, 0}};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			return NULL;
		if ((n = read(w->fd, buf, sizeof buf)) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			break;
		}
		if (names_journal(w, buf, (size_t)n)) {
			__atomic_store_n(&w->grew, 1, __ATOMIC_SEQ_CST);
			sd_queue_wake(w->q);
		}
	}
	sd_log(LOG_WARNING, "the events journal is no longer watched: %s", strerror(errno));
	__atomic_store_n(&w->running, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&w->grew, 1, __ATOMIC_SEQ_CST);
	sd_queue_wake(w->q);
	return NULL;
}

int
sd_watch_start(struct sd_watch *w, const char *path, struct sd_queue *q)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	const char *name = slash != NULL ? slash + 1 : path;

	sd_watch_init(w);
	w->q = q;
	if ((slash != NULL && (size_t)(slash - path) >= sizeof dir) ||
	    strlen(name) >= sizeof w->name) {
		sd_log(LOG_WARNING, "%s: not a journal's path to watch", path);
		return -1;
	}
	if (slash == NULL)
		snprintf(dir, sizeof dir, ".");
	else
		snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	snprintf(w->name, sizeof w->name, "%s", name);
	if ((w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK)) < 0 ||
	    inotify_add_watch(w->fd, dir, IN_MODIFY) < 0 || pipe2(w->stop, O_CLOEXEC) != 0) {
		sd_log(LOG_WARNING, "cannot watch the events journal in %s: %s", dir,
		       strerror(errno));
		sd_watch_stop(w);
		return -1;
	}
	w->running = 1;
	if ((errno = pthread_create(&w->thread, NULL, watch_loop, w)) != 0) {
		sd_log(LOG_WARNING, "cannot watch the events journal: %s", strerror(errno));
		w->running = 0;
		sd_watch_stop(w);
		return -1;
	}
	w->started = 1;
	return 0;
}

int
sd_watch_grew(struct sd_watch *w)
{
	return __atomic_exchange_n(&w->grew, 0, __ATOMIC_SEQ_CST);
}

int
sd_watch_pending(struct sd_watch *w)
{
	return __atomic_load_n(&w->grew, __ATOMIC_SEQ_CST);
}

int
sd_watch_running(struct sd_watch *w)
{
	return __atomic_load_n(&w->running, __ATOMIC_SEQ_CST);
}

void
sd_watch_stop(struct sd_watch *w)
{
	if (w->q == NULL) /* never started: all zero when the daemon failed before */
		return;
	/* a pipe just made holds the byte; the thread may have ended already */
	if (w->started && write(w->stop[1], "", 1) >= 0)
		(void)pthread_join(w->thread, NULL);
	if (w->fd >= 0)
		close(w->fd);
	if (w->stop[0] >= 0)
		close(w->stop[0]);
	if (w->stop[1] >= 0)
		close(w->stop[1]);
	sd_watch_init(w);
}
