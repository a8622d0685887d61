/*
 * watch.h - the events journal watched (watch.c): a machine's daemon
 * takes what the module appends as it is appended, instead of looking
 * several times a second.
 */
#ifndef SD_WATCH_H
#define SD_WATCH_H

#include <limits.h>
#include <pthread.h>

#include "syncd.h"

struct sd_watch {
	int fd;      /* inotify; -1: nothing is watched */
	int stop[2]; /* a pipe: a byte on it ends the thread */
	pthread_t thread;
	int started;        /* the thread was made: joined by sd_watch_stop() */
	int running;        /* atomic: it watches (0 once it stopped on an error) */
	struct sd_queue *q; /* woken when the journal is written */
	int grew;           /* atomic: the journal was written since sd_watch_grew() */
	char name[NAME_MAX + 1];
};

/* w, watching nothing (sd_watch_grew() says no, sd_watch_stop() does nothing). */
void sd_watch_init(struct sd_watch *w);

/*
 * Watches the journal at path: each write to it marks w and wakes q's
 * sd_queue_wait(). 0, or -1 after logging why (w then watches nothing).
 */
int sd_watch_start(struct sd_watch *w, const char *path, struct sd_queue *q);

/* Whether the journal was written since the last call (and forgets it). */
int sd_watch_grew(struct sd_watch *w);
/* The same, without forgetting it. */
int sd_watch_pending(struct sd_watch *w);

/* Whether w watches the journal (its thread runs). */
int sd_watch_running(struct sd_watch *w);

void sd_watch_stop(struct sd_watch *w);

#endif
