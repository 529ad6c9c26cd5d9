/*
 * ckpt — evstream's record of which spool files are committed, so a restart
 * neither loads a file twice nor forgets one.  It lives in the checkpoint
 * directory:
 *
 * DIR/lock
 *	Opened and flock(LOCK_EX | LOCK_NB)'d by ckpt_open for the life of the
 *	process, and holds the holder's pid as text so a second evstream can say
 *	who is in the way.  flock locks belong to the open file description, so a
 *	second ckpt_open in the same process fails as well.  The fd is O_CLOEXEC;
 *	a child forked while the lock is held shares it until it exits.  The file
 *	is never removed: unlinking a lock file lets two processes lock two files.
 *
 * DIR/checkpoint
 *	Written only by ckpt_save, through durable_write_file (temporary, fsync,
 *	rename, directory fsync): after a crash it is the old or the new one,
 *	whole.  A missing file is a fresh start.  Its bytes (text, a line per
 *	record, a crc32 in the end line) are include/ckpt_format.h's.  A file the
 *	format refuses is refused whole with "DIR/checkpoint: line N: what is
 *	wrong": a damaged checkpoint stops evstream rather than loading part of
 *	it, which could load a file twice.
 *
 * DIR/checkpoint.journal
 *	What was committed since the file was last written, so a batch costs a
 *	write of its own names, not of the history: records (ckpt_format.h)
 *	appended and fdatasync'ed by ckpt_save.  A torn last record is taken as not
 *	written (the database then says what it held); damage before another
 *	record is refused as above.  The file is rewritten and the journal removed
 *	when the journal has grown as big as the file (at least 1 MiB), so disk use
 *	and the bytes written per batch stay bounded, when a change is not an
 *	append (names forgotten or dropped), and at the first save after a load.
 *
 * In memory: the names in the order added (batch order, which is what
 * ckpt_save writes) plus an index over them for ckpt_is_committed
 * (include/ckpt_names.h).
 *
 * The database's batch log is the truth.  The checkpoint can be behind it (a
 * crash between the commit and ckpt_save): the caller adds the missing
 * batches with ckpt_add_batch.  It can be ahead (the database was restored):
 * ckpt_drop_after forgets the batches the database does not have.
 */
#ifndef EVPIPE_CKPT_H
#define EVPIPE_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "spool.h"
#include "util.h"


struct ckpt;

/*
 * Create dir (and its parents, 0750) if missing, lock it, load the
 * checkpoint.  NULL with a message in err (and errno set) on failure; a
 * locked directory gives "checkpoint DIR is locked by another evstream (pid N)".
 */
struct ckpt *ckpt_open(const char *dir, char *err, size_t errlen) MUSTCHECK;
void	ckpt_close(struct ckpt *c);	/* unlock and free; does not save */

/*
 * Load the checkpoint for reading only (evstream status, quarantine requeue),
 * without the lock, so it works beside a running evstream: the file changes
 * only by rename, so this sees one whole version.  Creates nothing; a missing
 * directory or file reads as a fresh start.  ckpt_save on it fails (EROFS).
 * NULL with err as ckpt_open when the file is unreadable or damaged.
 */
struct ckpt *ckpt_read(const char *dir, char *err, size_t errlen) MUSTCHECK;

int64_t	ckpt_last_batch(const struct ckpt *c);		/* 0 when fresh */
int64_t	ckpt_max_event_time(const struct ckpt *c);	/* EVENT_TIME_NONE when none */
int	ckpt_is_committed(const struct ckpt *c, const char *name);
size_t	ckpt_count(const struct ckpt *c);		/* names remembered */

/*
 * 1 and the batch and identity (ino 0: unknown) of a committed name, 0 if the
 * name is not remembered.  ckpt_set_file_id records the identity of a
 * committed name whose identity was unknown (a no-op for other names).
 */
int	ckpt_file_id(const struct ckpt *c, const char *name, int64_t *batch, struct spool_id *id);
void	ckpt_set_file_id(struct ckpt *c, const char *name, const struct spool_id *id);

/*
 * 1 if name sorts after every name ever committed (as far as the checkpoint
 * knows: last_name), so it cannot be a committed name that was forgotten.
 */
int	ckpt_is_beyond(const struct ckpt *c, const char *name);

/*
 * Record, in memory, that batch_id committed these files, each as ids[i]
 * identifies it (ids NULL: unknown, e.g. taken from the database).  batch_id must be
 * above ckpt_last_batch (EINVAL), no name may be committed already or listed
 * twice (EEXIST), and a name must be a file name: 1..255 bytes, no '/'
 * (EINVAL).  The maximum event time becomes max(current, max_event_time_us).
 * On -1 nothing changed.
 */
int	ckpt_add_batch(struct ckpt *c, int64_t batch_id, char *const *files,
	    const struct spool_id *ids, size_t nfiles, int64_t max_event_time_us) MUSTCHECK;

/*
 * Record, in memory, that an earlier batch (1..ckpt_last_batch, else EINVAL)
 * committed one more name: a file another evstream on the same spool committed,
 * that this checkpoint had not heard of.  EEXIST if the name is committed
 * already.  On -1 nothing changed.
 */
int	ckpt_add_file(struct ckpt *c, const char *name, int64_t batch_id) MUSTCHECK;

/*
 * The database is behind the checkpoint and wins: forget the files of
 * batches above batch_id and make batch_id the last batch.  0 <= batch_id <=
 * ckpt_last_batch, else EINVAL.  The maximum event time is left alone; the
 * caller sets it from the database with ckpt_set_max_event_time.
 */
int	ckpt_drop_after(struct ckpt *c, int64_t batch_id) MUSTCHECK;
void	ckpt_set_max_event_time(struct ckpt *c, int64_t us);

/*
 * Compaction: forget every name for which still_needed(arg, name) returns 0
 * (the caller knows the file has left the spool and cannot be seen again, or
 * that the database never committed it).
 * Returns how many were forgotten.  Takes effect on disk at the next save.
 */
size_t	ckpt_forget(struct ckpt *c, int (*still_needed)(void *arg, const char *name), void *arg);

/*
 * Write the checkpoint durably: the batches added since the last save as one
 * record appended to the journal (O(batch)), or the whole file when the
 * journal has grown as big as the file or cannot say a change (names forgotten
 * or dropped).  Nothing new: nothing written.  -1 with err and errno: the
 * caller must not advance.  ckpt_rewrite writes the whole file now.
 *
 * A failed write or fsync (of a temporary, of a journal record, of the
 * directory) is final: that save did not happen, and the next ckpt_save writes
 * the whole file again from memory into a new temporary (the journal, whose
 * last record is now in doubt, is removed once the file says everything), never
 * fsyncing what was written before again (tests/system/checkpoint_fsync_failure_final.sh).
 */
int	ckpt_save(struct ckpt *c, char *err, size_t errlen) MUSTCHECK;
int	ckpt_rewrite(struct ckpt *c, char *err, size_t errlen) MUSTCHECK;

#endif
