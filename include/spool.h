/*
 * spool — the directory evgen writes into and evstream reads from.
 *
 * A file is ready when its final name appears: evgen writes a hidden
 * ".NAME.tmp" and renames it, so a name that does not start with '.' and
 * ends in ".csv" (or ".csv.gz", a gzip archive of one: gz.h) is a whole file.  evgen's names begin with a UTC timestamp
 * of fixed width, so byte order (strcmp) is creation order, and that is the
 * order spool_scan returns.
 *
 * Files leave the spool in three ways, each durable before the call returns
 * (the directories involved are fsync'ed): moved into a subdirectory
 * (archive/, quarantine/), quarantined with a reason file beside them, or
 * removed.  A move never overwrites: a name already taken in the
 * subdirectory gets ".1", ".2", ... appended.
 *
 * All calls take the spool as a directory fd opened O_RDONLY | O_DIRECTORY
 * (not O_PATH: fsync needs a readable descriptor), so the spool may be
 * renamed or be reached through a symlink without changing what we read.
 */
#ifndef EVPIPE_SPOOL_H
#define EVPIPE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_MUSTCHECK __attribute__((warn_unused_result))
#define SPOOL_SUFFIX	".csv"
#define SPOOL_SUFFIX_GZ	".csv.gz"
#define SPOOL_QUARANTINE "quarantine"
#define SPOOL_ARCHIVE	"archive"

/* Names, owned.  Zero-initialise it; scans reuse its array. */
struct spool_list {
	char	**names;
	size_t	  n, cap;
};

/*
 * The names of regular files in the spool that do not start with '.' and end
 * in ".csv" or ".csv.gz", sorted by strcmp, into out (its old contents are freed, its array
 * reused).  Entries with such a name that are not regular files (symlinks,
 * FIFOs, directories, sockets) are not returned; *ignored counts them (ignored
 * may be NULL).  A file that vanishes during the scan is left out silently.
 * -1 with errno on failure, and out is then empty.
 */
int	spool_scan(int dirfd, struct spool_list *out, size_t *ignored) SPOOL_MUSTCHECK;

/*
 * The same, but the names of the non-regular entries go into skipped (sorted,
 * reused like out), so the caller can warn once per name and process.
 */
int	spool_scan_skipped(int dirfd, struct spool_list *out, struct spool_list *skipped)
	    SPOOL_MUSTCHECK;

void	spool_list_free(struct spool_list *l);

/*
 * The spool is named by a path, but read through *dirfd.  If the directory at
 * path now is not the one *dirfd holds (another device or inode, or the held
 * one was deleted: a removed directory's inode number can come back at once),
 * open the one at path, close the old descriptor and return SPOOL_REPLACED;
 * SPOOL_SAME when nothing changed.  -1 with errno when path names no
 * directory that can be opened (removed and not created again yet): *dirfd is
 * left as it was.  Two stat calls: cheap enough for every trigger.
 */
enum { SPOOL_SAME = 0, SPOOL_REPLACED = 1 };
int	spool_follow(const char *path, int *dirfd) SPOOL_MUSTCHECK;

/*
 * spool_follow for both daemons' loops, said once per change: a warning when the
 * directory at path was replaced (the new one is used), one warning when none is
 * there (*gone remembers it; zero it at start), a line when it is back.
 * SPOOL_SAME or SPOOL_REPLACED: use *dirfd (what was known of the old one, a
 * listing or a watch, is not of the new); -1: there is no spool now, skip this
 * step and call again at the next.
 */
int	spool_follow_logged(const char *path, int *dirfd, int *gone) SPOOL_MUSTCHECK;

/*
 * Knowing what changed without listing the spool again (inotify): a listing
 * of a spool that holds every file ever committed costs as much as the
 * history, each trigger.  spool_watch_open watches the directory dirfd is
 * (not a path: the same directory the other calls read); -1 with errno when
 * inotify is not to be had (the caller then lists every time).  Open it
 * before the listing it will extend, so nothing falls between the two.
 *
 * spool_watch_read takes the changes queued since the last call into d (its
 * lists sorted, reused as spool_scan's), the last word per name winning:
 * names of regular files that appeared into added, names that left into
 * gone, appeared entries that are not regular files into odd, and names
 * written to (modified, closed after writing, attributes changed) into
 * written, whatever else happened to them.  1 when the queue overflowed or
 * the directory itself went away or moved: the changes are unknown and the
 * caller must list the spool again.  -1 with errno on failure (the caller
 * lists again too).
 */
struct spool_delta {
	struct spool_list added, gone, odd, written;
};
int	spool_watch_open(int dirfd) SPOOL_MUSTCHECK;
int	spool_watch_read(int wfd, int dirfd, struct spool_delta *d) SPOOL_MUSTCHECK;
void	spool_delta_free(struct spool_delta *d);

/*
 * Apply d's added and gone to l (sorted, no duplicates): gone names leave,
 * added names not there yet come in at their place.  *from is an index into l
 * that the caller keeps (the first name it has not yet seen committed); it
 * moves with the names and back to the first name added before it.  -1 with
 * errno (ENOMEM): l is then unchanged.
 */
int	spool_list_apply(struct spool_list *l, const struct spool_delta *d, size_t *from)
	    SPOOL_MUSTCHECK;

/*
 * Which file a spool name held when it was read: a name that now holds a
 * different inode, a different size or modification time is no longer that
 * file (appended to, or replaced by a rename), whatever its name says.
 * ino == 0 means unknown (no real file has inode 0).  size is the bytes read,
 * so a file that grew while it was read differs too.
 */
struct spool_id {
	int64_t	dev, ino;
	int64_t	size, mtime_ns;
};
struct stat;
void	spool_id_from_stat(const struct stat *st, struct spool_id *id);
int	spool_id_same(const struct spool_id *a, const struct spool_id *b);

/* The identity name has now (not following a symlink).  -1 with errno (ENOENT: gone). */
int	spool_id_of(int dirfd, const char *name, struct spool_id *id) SPOOL_MUSTCHECK;

/*
 * What a spool entry is when it is not a regular file, as a phrase for a log
 * line ("a symbolic link", "a FIFO", "a directory"...; a symlink is not
 * followed).  NULL when it is a regular file or cannot be examined (gone).
 */
const char *spool_entry_kind(int dirfd, const char *name);

/*
 * Rename name into dirfd/subdir/ (created 0750 if missing; subdir is one path
 * component), never replacing a file there: the first free name of name,
 * name.1, name.2 ... is taken.  Then fsync the subdirectory and the spool.
 * -1 with errno: nothing moved.
 */
int	spool_move(int dirfd, const char *name, const char *subdir) SPOOL_MUSTCHECK;

/*
 * spool_move into quarantine/, then write quarantine/<moved name>.reason, one
 * line "<UTC time> <reason>\n", with durable_write_file.  -1 with errno:
 * nothing moved.  Once the file is moved the call returns 0 even if the
 * reason file cannot be written (that is logged): the file is out of the
 * spool, which is what the caller must know.
 */
int	spool_quarantine(int dirfd, const char *name, const char *reason) SPOOL_MUSTCHECK;

/* Unlink name and fsync the spool (clean_source = delete). */
int	spool_remove(int dirfd, const char *name) SPOOL_MUSTCHECK;

/*
 * What waits to be loaded: the names of l for which done(arg, name) is 0 and
 * that are still there, and the oldest of them.  by_mtime: every such file is
 * examined and the oldest is by modification time (a hand-made name may sort
 * anywhere), for `evstream status`.  Otherwise only the first such name is
 * examined and is the oldest (evgen's names sort in creation order), so a
 * backlog of n files costs one stat, not n; the later names are counted as
 * listed.  out->oldest points into l.  -1 with errno if a file cannot be
 * examined.
 */
struct spool_pending {
	size_t		 n;
	const char	*oldest;		/* NULL when n == 0 */
	int64_t		 oldest_mtime_us;	/* microseconds since 1970 */
};
int	spool_pending(int dirfd, const struct spool_list *l,
	    int (*done)(void *arg, const char *name), void *arg, int by_mtime,
	    struct spool_pending *out) SPOOL_MUSTCHECK;

/*
 * The quarantine, for the operator.  spool_quarantine_scan: the regular files
 * in quarantine/ (hidden names and the .reason files left out), sorted; no
 * quarantine/ yet is an empty list.  spool_quarantine_reason: the first line
 * of quarantine/NAME.reason ("<UTC time> <reason>") without its newline,
 * truncated to fit; -1 with errno (ENOENT: there is none).
 */
int	spool_quarantine_scan(int dirfd, struct spool_list *out) SPOOL_MUSTCHECK;
int	spool_quarantine_reason(int dirfd, const char *name, char *line, size_t len)
	    SPOOL_MUSTCHECK;

/*
 * The spool name a quarantined file goes back under: the same, less the
 * ".N" spool_move added when the name was taken in quarantine/.  -1 (EINVAL)
 * if that is not a name the spool reads (hidden, or not ending in ".csv" or
 * ".csv.gz").
 */
int	spool_requeue_name(const char *qname, char *name, size_t len) SPOOL_MUSTCHECK;

/*
 * Move quarantine/qname back into the spool as name, never replacing a file
 * there (EEXIST), fsync both directories, then remove its .reason file.  The
 * caller checks first that name was never committed: the spool itself cannot
 * know.  -1 with errno: nothing moved.
 */
int	spool_requeue(int dirfd, const char *qname, const char *name) SPOOL_MUSTCHECK;

#endif
