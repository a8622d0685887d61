/*
 * journal.h - the events journal beside the store (SPEC §11).
 *
 * The module appends each decision it makes to the journal, one
 * vk_event_encode() line each, and never waits for anything else than the
 * append; viamkey-syncd, which made the journal, moves it into the store
 * and on to the authority. A host without the daemon has no journal, and
 * nothing is written there.
 *
 * The journal is the store's path with VK_JOURNAL_SUFFIX appended: a
 * regular file of root (or the euid) that group and others can neither
 * read nor write, with one link (two while the daemon takes it). Each
 * record in it is an LF and then the line, so that empty lines separate
 * records and a fragment spoils only itself. To take what it holds, the daemon links
 * it to VK_JOURNAL_WORK_SUFFIX, puts an empty journal in its place
 * (rename(2)), and reads the work file under an exclusive flock(2). An
 * append holds a shared flock(2) and writes only when the journal's path
 * still names the file it holds, so that no line goes to a file already
 * read.
 */
#ifndef VK_JOURNAL_H
#define VK_JOURNAL_H

#include <stddef.h>

#include "vk.h"

#define VK_JOURNAL_SUFFIX      ".events"
#define VK_JOURNAL_WORK_SUFFIX ".events.work"
#define VK_JOURNAL_MAX         (16 << 20) /* bytes a journal may hold; more is refused */

/*
 * Appends line (len bytes, one whole line of at most VK_EVENT_LINE_MAX
 * bytes) to the journal of the store at store_path, LF first, in one
 * write(2). 0 written; 1 there is no journal (no
 * daemon collects events here); -1 with why in err (the journal is
 * unsafe, full, or the write failed).
 */
int vk_journal_append(const char *store_path, const char *line, size_t len, char err[VK_ERRLEN]);

/* The journal's path (or, work set, the work file's) into out: 0, or -1 when too long. */
int vk_journal_path(const char *store_path, int work, char *out, size_t size);

#endif
